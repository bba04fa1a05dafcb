/* datasets/idx.c — IDX files as MNIST and Fashion-MNIST ship them, gzip or not.
 *
 * An IDX file is a big-endian header (magic 0x0000TTNN: type TT, NN dimensions; then NN
 * 32-bit sizes) followed by the data, row-major. Images are type 0x08 (u8) with three
 * dimensions (count, rows, cols): magic 0x00000803; labels u8 with one: 0x00000801.
 * The header is checked against the bytes present before anything is copied: the
 * declared sizes must account for every byte, no more, no fewer. */
#include "internal.h"

#include <string.h>
#include <unistd.h>

#define MODULE "datasets/idx"

/* Inflated files larger than this are refused (MNIST's largest is 47 MB). */
#define IDX_MAX_INFLATED ((size_t)1 << 32)

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static const char *idx_type_name(uint32_t t)
{
    switch (t) {
    case 0x08: return "u8";
    case 0x09: return "i8";
    case 0x0B: return "i16";
    case 0x0C: return "i32";
    case 0x0D: return "f32";
    case 0x0E: return "f64";
    default: return NULL;
    }
}

/* The magic number and the sizes (the first 4 + 4 * ndims bytes, fewer only if size is
 * smaller); *item the bytes of one item. Sizes are not yet compared with the file's. */
static tg_status idx_header(const char *path, const uint8_t *data, size_t size, int ndims, tg__idx *out,
                            uint64_t *item_out)
{
    const char *what = ndims == 3 ? "images" : "labels";
    const uint32_t want = 0x0800u | (uint32_t)ndims;
    if (size == 0)
        return tg_set_error_in(TG_ERR_FORMAT, MODULE, "%s: empty file (expected IDX %s, magic 0x%08x)",
                            path, what, want);
    if (size < 4)
        return tg_set_error_in(TG_ERR_FORMAT,
                            MODULE, "%s: %zu bytes is too short for an IDX magic number (4 bytes)",
                            path, size);
    uint32_t magic = be32(data);
    if (magic != want) {
        /* say what the file is, if it is IDX at all: swapped images and labels files
         * are a likelier mistake than a random file */
        const char *type = (magic >> 16) == 0 ? idx_type_name((magic >> 8) & 0xff) : NULL;
        char found[64] = "not an IDX magic number";
        if (type)
            snprintf(found, sizeof found, "IDX %s data of %u dimension%s", type, magic & 0xff,
                     (magic & 0xff) == 1 ? "" : "s");
        return tg_set_error_in(TG_ERR_FORMAT,
                            MODULE, "%s: magic number 0x%08x at byte 0 (%s), expected 0x%08x (IDX "
                            "u8 %s, %d dimension%s)",
                            path, magic, found, want, what, ndims, ndims == 1 ? "" : "s");
    }
    size_t header = 4 + 4 * (size_t)ndims;
    if (size < header)
        return tg_set_error_in(TG_ERR_FORMAT,
                            MODULE, "%s: %zu bytes is too short for the %zu-byte IDX header", path,
                            size, header);
    memset(out, 0, sizeof *out);
    out->ndims = ndims;
    uint64_t item = 1;
    for (int i = 0; i < ndims; i++) {
        out->dims[i] = be32(data + 4 + 4 * i);
        if (out->dims[i] == 0)
            return tg_set_error_in(TG_ERR_FORMAT, MODULE, "%s: size %d (byte %d) is 0, expected at least 1",
                                path, i, 4 + 4 * i);
        if (i > 0)
            item *= (uint64_t)out->dims[i]; /* two 32-bit factors: no overflow */
    }
    *item_out = item;
    return TG_OK;
}

tg_status tg__idx_check(const char *path, const uint8_t *data, size_t size, int ndims, tg__idx *out)
{
    uint64_t item;
    tg_status st = idx_header(path, data, size, ndims, out, &item);
    if (st != TG_OK)
        return st;
    size_t header = 4 + 4 * (size_t)ndims;
    uint64_t count = (uint64_t)out->dims[0];
    size_t body = size - header;
    char desc[96];
    if (ndims == 3)
        snprintf(desc, sizeof desc, "%llu images of %lldx%lld", (unsigned long long)count,
                 (long long)out->dims[1], (long long)out->dims[2]);
    else
        snprintf(desc, sizeof desc, "%llu labels", (unsigned long long)count);
    if (count > body / item) { /* count * item > body, without overflowing */
        uint64_t cut = body / item;
        char need[40] = "more than 2^64";
        if (count <= (UINT64_MAX - header) / item)
            snprintf(need, sizeof need, "%llu", (unsigned long long)(header + count * item));
        return tg_set_error_in(TG_ERR_FORMAT,
                            MODULE, "%s: header declares %s (%s bytes with the header) but the "
                            "file has %zu bytes (%s %llu is cut at byte %llu)",
                            path, desc, need, size, ndims == 3 ? "image" : "label",
                            (unsigned long long)cut, (unsigned long long)(header + cut * item));
    }
    if (body != count * item)
        return tg_set_error_in(TG_ERR_FORMAT,
                            MODULE, "%s: header declares %s (%llu bytes with the header) but the "
                            "file has %zu bytes (%llu extra from byte %llu)",
                            path, desc, (unsigned long long)(header + count * item), size,
                            (unsigned long long)(body - count * item),
                            (unsigned long long)(header + count * item));
    return TG_OK;
}

tg_status tg__idx_parse(const char *path, const uint8_t *data, size_t size, int ndims, tg__idx *out)
{
    tg_status st = tg__idx_check(path, data, size, ndims, out);
    if (st == TG_OK)
        out->body = data + 4 + 4 * (size_t)ndims;
    return st;
}

bool tg__idx_gz_size_of(const char *path, const uint8_t *head, size_t n, const void *ctx, size_t *total)
{
    int ndims = *(const int *)ctx;
    char shown[TG__PATH_MAX + 16];
    snprintf(shown, sizeof shown, "%s (inflated)", path);
    tg__idx idx;
    uint64_t item;
    if (idx_header(shown, head, n, ndims, &idx, &item) != TG_OK)
        return false;
    uint64_t header = 4 + 4 * (uint64_t)ndims, count = (uint64_t)idx.dims[0];
    *total = count > (SIZE_MAX - header) / item ? SIZE_MAX : (size_t)(header + count * item);
    return true;
}

tg_dataset *tg__idx_parse_pair(const char *name, const char *images_path, const uint8_t *images,
                               size_t images_size, const char *labels_path, const uint8_t *labels,
                               size_t labels_size, int num_classes)
{
    tg__idx im, lb;
    if (tg__idx_parse(images_path, images, images_size, 3, &im) != TG_OK ||
        tg__idx_parse(labels_path, labels, labels_size, 1, &lb) != TG_OK)
        return NULL;
    if (im.dims[0] != lb.dims[0]) {
        tg_set_error_in(TG_ERR_FORMAT, MODULE, "%s holds %lld images but %s holds %lld labels",
                     images_path, (long long)im.dims[0], labels_path, (long long)lb.dims[0]);
        return NULL;
    }
    int64_t n = lb.dims[0];
    for (int64_t i = 0; i < n; i++)
        if (lb.body[i] >= num_classes) {
            tg_set_error_in(TG_ERR_FORMAT, MODULE, "%s: label %lld (byte %lld) is %d, out of range 0..%d",
                         labels_path, (long long)i, (long long)(8 + i), lb.body[i], num_classes - 1);
            return NULL;
        }
    tg_dataset *d = tg__dataset_alloc(name, n, 1, im.dims[1], im.dims[2], num_classes);
    if (!d)
        return NULL;
    memcpy(tg_tensor_data(d->images), im.body, (size_t)(n * im.dims[1] * im.dims[2]));
    int32_t *y = tg_tensor_data(d->labels);
    for (int64_t i = 0; i < n; i++)
        y[i] = lb.body[i];
    return d;
}

/* ------------------------------------------------------------------ files */

/* An IDX file's bytes, inflated if they are gzip; *shown is the path for messages about
 * the inflated data ("x.gz (inflated)"), so offsets are not mistaken for file offsets.
 * The header comes first: a plain file's sizes are checked against the file's length
 * before its body is read, and a gzip file inflates its header first and then only as
 * much as the header declares. */
static tg_status read_idx(const char *path, int ndims, uint8_t **data, size_t *size, char *shown,
                          size_t shown_size)
{
    static const int ndims_of[4] = {0, 1, 2, 3}; /* what tg__idx_gz_size_of's ctx points to */
    *data = NULL;
    *size = 0;
    snprintf(shown, shown_size, "%s", path);
    uint64_t fsize;
    int fd = tg__open_regular(MODULE, path, &fsize);
    if (fd < 0)
        return tg_last_status();
    uint8_t head[16];
    size_t head_len = 4 + 4 * (size_t)ndims, got;
    tg_status st = tg__read_at(MODULE, path, fd, 0, head, head_len, &got);
    if (st == TG_OK && tg__is_gzip(head, got)) {
        tg__gz_expect expect = {head_len, tg__idx_gz_size_of, &ndims_of[ndims]};
        st = tg__gunzip_file(MODULE, path, fd, fsize, IDX_MAX_INFLATED, &expect, data, size);
        snprintf(shown, shown_size, "%s (inflated)", path);
    } else if (st == TG_OK) {
        tg__idx idx;
        size_t checked = got < head_len || fsize > SIZE_MAX ? got : (size_t)fsize;
        st = tg__idx_check(path, head, checked, ndims, &idx);
        if (st == TG_OK)
            st = tg__read_open_file(MODULE, path, fd, fsize, SIZE_MAX, data, size);
    }
    close(fd);
    return st;
}

static tg_dataset *load_pair(const char *name, const char *images_path, const char *labels_path,
                             int num_classes)
{
    uint8_t *im = NULL, *lb = NULL;
    size_t im_size = 0, lb_size = 0;
    char im_shown[TG__PATH_MAX + 16], lb_shown[TG__PATH_MAX + 16];
    tg_dataset *d = NULL;
    if (read_idx(images_path, 3, &im, &im_size, im_shown, sizeof im_shown) == TG_OK &&
        read_idx(labels_path, 1, &lb, &lb_size, lb_shown, sizeof lb_shown) == TG_OK)
        d = tg__idx_parse_pair(name, im_shown, im, im_size, lb_shown, lb, lb_size, num_classes);
    tg_mem_free(im);
    tg_mem_free(lb);
    return d;
}

tg_dataset *tg_dataset_load_idx(const char *images_path, const char *labels_path, int num_classes)
{
    if (!images_path || !labels_path || num_classes < 1 || num_classes > 256) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_load_idx", "%s",
                     !images_path   ? "images_path is NULL"
                     : !labels_path ? "labels_path is NULL"
                                    : "num_classes must be 1..256 (labels are bytes)");
        return NULL;
    }
    return load_pair("idx", images_path, labels_path, num_classes);
}

/* dir/<prefix>-<kind>-ubyte.gz, or without .gz when only that exists. */
static bool find_idx(char *path, size_t size, const char *dir, const char *prefix, const char *kind)
{
    char file[64], plain[TG__PATH_MAX];
    snprintf(file, sizeof file, "%s-%s-ubyte", prefix, kind);
    if (!tg__path_join(MODULE, plain, sizeof plain, dir, file))
        return false;
    int n = snprintf(path, size, "%s.gz", plain);
    if (n < 0 || (size_t)n >= size) {
        tg_set_error_in(TG_ERR_ARG, MODULE, "path %s.gz is too long", plain);
        return false;
    }
    if (!tg__path_exists(path) && tg__path_exists(plain))
        snprintf(path, size, "%s", plain);
    /* if neither exists, reading the .gz name reports it missing */
    return true;
}

static tg_dataset *load_mnist_like(const char *fn, const char *name, const char *dir,
                                   tg_dataset_part part, const char *const *names)
{
    if (!dir || (part != TG_DATASET_TRAIN && part != TG_DATASET_TEST)) {
        tg_set_error_in(TG_ERR_ARG, fn, "%s", !dir ? "dir is NULL" : "part is neither train nor test");
        return NULL;
    }
    const char *prefix = part == TG_DATASET_TRAIN ? "train" : "t10k";
    char im[TG__PATH_MAX], lb[TG__PATH_MAX];
    if (!find_idx(im, sizeof im, dir, prefix, "images-idx3") ||
        !find_idx(lb, sizeof lb, dir, prefix, "labels-idx1"))
        return NULL;
    tg_dataset *d = load_pair(name, im, lb, 10);
    if (d && tg__dataset_set_names(d, names, 10) != TG_OK) {
        tg_dataset_free(d);
        return NULL;
    }
    return d;
}

tg_dataset *tg_dataset_load_fashion_mnist(const char *dir, tg_dataset_part part)
{
    /* the names Zalando's README gives, in label order */
    static const char *const names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                          "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
    return load_mnist_like("tg_dataset_load_fashion_mnist", "fashion-mnist", dir, part, names);
}

tg_dataset *tg_dataset_load_mnist(const char *dir, tg_dataset_part part)
{
    static const char *const names[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
    return load_mnist_like("tg_dataset_load_mnist", "mnist", dir, part, names);
}
