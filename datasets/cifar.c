/* datasets/cifar.c — CIFAR-10 and CIFAR-100, binary version.
 *
 * A file is a run of fixed-size records with no header: CIFAR-10 records are 1 label
 * byte + 3072 pixel bytes, CIFAR-100 records 1 coarse + 1 fine label byte + 3072 pixel
 * bytes; the pixels are 32x32 red, then green, then blue, row-major: already one image
 * of an NCHW tensor. With no header or checksum, what can be checked is that the size
 * is a whole number of records and that every label byte is in range; a file of the
 * other CIFAR (3073- vs 3074-byte records) fails the first check unless its size is a
 * multiple of both, and then almost surely the second. */
#include "internal.h"

#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MODULE "datasets/cifar"

const tg__cifar_format tg__cifar10_format = {
    .name = "cifar10", .label_bytes = 1, .use = 0, .label_name = {"label", NULL}, .label_classes = {10, 0}};
const tg__cifar_format tg__cifar100_fine_format = {.name = "cifar100",
                                                   .label_bytes = 2,
                                                   .use = 1,
                                                   .label_name = {"coarse label", "fine label"},
                                                   .label_classes = {20, 100}};
const tg__cifar_format tg__cifar100_coarse_format = {.name = "cifar100",
                                                     .label_bytes = 2,
                                                     .use = 0,
                                                     .label_name = {"coarse label", "fine label"},
                                                     .label_classes = {20, 100}};

static size_t record_size(const tg__cifar_format *f)
{
    return (size_t)f->label_bytes + TG__CIFAR_PIXELS;
}

int64_t tg__cifar_count(const char *path, size_t size, const tg__cifar_format *f)
{
    size_t rec = record_size(f);
    if (size == 0) {
        tg_set_error_in(TG_ERR_FORMAT, MODULE, "%s: empty file (expected %zu-byte records)", path, rec);
        return -1;
    }
    if (size % rec != 0) {
        size_t cut = size / rec;
        tg_set_error_in(TG_ERR_FORMAT,
                     MODULE, "%s: %zu bytes is not a whole number of %zu-byte records (record %zu "
                     "is cut at byte %zu)",
                     path, size, rec, cut, cut * rec);
        return -1;
    }
    return (int64_t)(size / rec);
}

tg_status tg__cifar_check_labels(const char *path, const uint8_t *data, int64_t n,
                                 const tg__cifar_format *f)
{
    size_t rec = record_size(f);
    for (int64_t i = 0; i < n; i++)
        for (int k = 0; k < f->label_bytes; k++) {
            size_t at = (size_t)i * rec + (size_t)k;
            if (data[at] >= f->label_classes[k])
                return tg_set_error_in(TG_ERR_FORMAT,
                                    MODULE, "%s: record %lld (byte %zu): %s %d is out of range "
                                    "0..%d",
                                    path, (long long)i, at, f->label_name[k], data[at],
                                    f->label_classes[k] - 1);
        }
    return TG_OK;
}

void tg__cifar_decode(const uint8_t *data, int64_t n, const tg__cifar_format *f, uint8_t *images,
                      int32_t *labels)
{
    size_t rec = record_size(f);
    for (int64_t i = 0; i < n; i++) {
        const uint8_t *r = data + (size_t)i * rec;
        labels[i] = r[f->use];
        memcpy(images + (size_t)i * TG__CIFAR_PIXELS, r + f->label_bytes, TG__CIFAR_PIXELS);
    }
}

static int num_classes(const tg__cifar_format *f)
{
    return f->label_classes[f->use];
}

tg_dataset *tg__cifar_parse(const char *path, const uint8_t *data, size_t size,
                            const tg__cifar_format *f)
{
    int64_t n = tg__cifar_count(path, size, f);
    if (n < 0 || tg__cifar_check_labels(path, data, n, f) != TG_OK)
        return NULL;
    tg_dataset *d = tg__dataset_alloc(f->name, n, 3, 32, 32, num_classes(f));
    if (d)
        tg__cifar_decode(data, n, f, tg_tensor_data(d->images), tg_tensor_data(d->labels));
    return d;
}

/* ------------------------------------------------------------------ files */

/* The folder holding `first`: dir itself or dir/sub (the archive's folder). */
static bool find_base(char *base, size_t size, const char *dir, const char *sub, const char *first)
{
    char path[TG__PATH_MAX], alt[TG__PATH_MAX];
    if (!tg__path_join(MODULE, path, sizeof path, dir, first) ||
        !tg__path_join(MODULE, base, size, dir, sub) ||
        !tg__path_join(MODULE, alt, sizeof alt, base, first))
        return false;
    if (tg__path_exists(path)) {
        snprintf(base, size, "%s", dir);
        return true;
    }
    if (tg__path_exists(alt))
        return true;
    tg_set_error_in(TG_ERR_IO, MODULE, "%s: no such file (nor %s): point the data directory at the "
                            "unpacked archive",
                 path, alt);
    return false;
}

/* Reads the record files in order into one data set. Sizes come first from stat, so
 * the data set is allocated once and each file is parsed straight into it: the peak is
 * the data set plus one file, not twice the data set. */
static tg_dataset *load_files(const char *dir, const char *sub, const char *const *files,
                              int nfiles, const tg__cifar_format *f, const char *names_file)
{
    char base[TG__PATH_MAX], path[TG__PATH_MAX];
    if (!find_base(base, sizeof base, dir, sub, files[0]))
        return NULL;
    int64_t counts[8], total = 0;
    for (int i = 0; i < nfiles; i++) {
        struct stat st;
        if (!tg__path_join(MODULE, path, sizeof path, base, files[i]))
            return NULL;
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
            /* the reader's message says why (missing, not a file, no permission) */
            uint64_t unused;
            int fd = tg__open_regular(MODULE, path, &unused);
            if (fd >= 0) {
                close(fd);
                tg_set_error_in(TG_ERR_IO, MODULE, "%s: cannot stat", path);
            }
            return NULL;
        }
        counts[i] = tg__cifar_count(path, (size_t)st.st_size, f);
        if (counts[i] < 0)
            return NULL;
        total += counts[i];
    }
    tg_dataset *d = tg__dataset_alloc(f->name, total, 3, 32, 32, num_classes(f));
    if (!d)
        return NULL;
    uint8_t *images = tg_tensor_data(d->images);
    int32_t *labels = tg_tensor_data(d->labels);
    int64_t at = 0;
    for (int i = 0; i < nfiles; i++) {
        uint8_t *data;
        size_t size;
        tg__path_join(MODULE, path, sizeof path, base, files[i]); /* fitted above */
        if (tg__read_file(MODULE, path, SIZE_MAX, &data, &size) != TG_OK)
            goto fail;
        int64_t n = tg__cifar_count(path, size, f);
        if (n >= 0 && n != counts[i])
            tg_set_error_in(TG_ERR_IO, MODULE, "%s: changed size while being read", path);
        if (n != counts[i] || tg__cifar_check_labels(path, data, n, f) != TG_OK) {
            tg_mem_free(data);
            goto fail;
        }
        tg__cifar_decode(data, n, f, images + (size_t)at * TG__CIFAR_PIXELS, labels + at);
        tg_mem_free(data);
        at += n;
    }
    if (names_file) {
        if (!tg__path_join(MODULE, path, sizeof path, base, names_file))
            goto fail;
        if (tg__path_exists(path) && tg__dataset_read_names(MODULE, d, path) != TG_OK)
            goto fail;
    }
    return d;
fail:
    tg_dataset_free(d);
    return NULL;
}

static bool check_args(const char *fn, const char *dir, tg_dataset_part part)
{
    if (!dir) {
        tg_set_error_in(TG_ERR_ARG, fn, "dir is NULL");
        return false;
    }
    if (part != TG_DATASET_TRAIN && part != TG_DATASET_TEST) {
        tg_set_error_in(TG_ERR_ARG, fn, "part %d is neither train nor test", (int)part);
        return false;
    }
    return true;
}

tg_dataset *tg_dataset_load_cifar100(const char *dir, tg_dataset_part part, bool coarse)
{
    if (!check_args("tg_dataset_load_cifar100", dir, part))
        return NULL;
    const char *file[] = {part == TG_DATASET_TRAIN ? "train.bin" : "test.bin"};
    return load_files(dir, "cifar-100-binary", file, 1,
                      coarse ? &tg__cifar100_coarse_format : &tg__cifar100_fine_format,
                      coarse ? "coarse_label_names.txt" : "fine_label_names.txt");
}

tg_dataset *tg_dataset_load_cifar10(const char *dir, tg_dataset_part part)
{
    if (!check_args("tg_dataset_load_cifar10", dir, part))
        return NULL;
    static const char *const train[] = {"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin",
                                        "data_batch_4.bin", "data_batch_5.bin"};
    static const char *const test[] = {"test_batch.bin"};
    bool tr = part == TG_DATASET_TRAIN;
    return load_files(dir, "cifar-10-batches-bin", tr ? train : test, tr ? 5 : 1, &tg__cifar10_format,
                      "batches.meta.txt");
}
