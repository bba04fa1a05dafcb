/* datasets/dataset.c — the data set in memory: construction, class names, loading by
 * name, the train/validation split, subsets, and normalisation constants. */
#include "internal.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ construction */

static tg_dataset *dataset_shell(const char *name, int num_classes)
{
    tg_dataset *d = tg_mem_alloc(sizeof *d, 16);
    if (!d)
        return NULL;
    memset(d, 0, sizeof *d);
    snprintf(d->name, sizeof d->name, "%s", name ? name : "");
    d->num_classes = num_classes;
    return d;
}

tg_dataset *tg__dataset_alloc(const char *name, int64_t n, int64_t c, int64_t h, int64_t w,
                              int num_classes)
{
    tg_dataset *d = dataset_shell(name, num_classes);
    if (!d)
        return NULL;
    d->images = tg_tensor_empty(NULL, TG_U8, TG_DIMS(n, c, h, w));
    d->labels = tg_tensor_empty(NULL, TG_I32, TG_DIMS(n));
    if (!d->images || !d->labels) {
        tg_dataset_free(d);
        return NULL;
    }
    return d;
}

void tg_dataset_free(tg_dataset *d)
{
    if (!d)
        return;
    tg_tensor_free(d->images);
    tg_tensor_free(d->labels);
    tg_mem_free((void *)d->class_names); /* one block: the pointers, then the strings */
    tg_mem_free(d);
}

int64_t tg_dataset_size(const tg_dataset *d)
{
    return d && d->labels ? d->labels->shape[0] : 0;
}

tg_status tg__dataset_set_names(tg_dataset *d, const char *const *names, int count)
{
    if (count != d->num_classes)
        return tg_set_error(TG_ERR_ARG, "datasets: %d class names for %d classes", count,
                            d->num_classes);
    size_t bytes = (size_t)count * sizeof(char *);
    for (int i = 0; i < count; i++)
        bytes += strlen(names[i]) + 1;
    char **block = tg_mem_alloc(bytes, 16);
    if (!block)
        return tg_last_status();
    char *s = (char *)(block + count);
    for (int i = 0; i < count; i++) {
        size_t len = strlen(names[i]) + 1;
        memcpy(s, names[i], len);
        block[i] = s;
        s += len;
    }
    tg_mem_free((void *)d->class_names);
    d->class_names = (const char *const *)block;
    return TG_OK;
}

tg_status tg__dataset_read_names(const char *module, tg_dataset *d, const char *path)
{
    uint8_t *data;
    size_t size;
    tg_status st = tg__read_file(module, path, SIZE_MAX, &data, &size);
    if (st != TG_OK)
        return st;
    /* split into lines in place (the buffer ends in a NUL) */
    int count = 0;
    const char *names[256];
    char *p = (char *)data, *end = p + size;
    *end = '\0';
    while (p < end) {
        char *eol = memchr(p, '\n', (size_t)(end - p));
        char *next = eol ? eol + 1 : end;
        char *e = eol ? eol : end;
        while (e > p && isspace((unsigned char)e[-1]))
            e--;
        while (p < e && isspace((unsigned char)*p))
            p++;
        *e = '\0';
        if (p < e) {
            if (count == (int)(sizeof names / sizeof *names) || count == d->num_classes) {
                count++;
                break;
            }
            names[count++] = p;
        }
        p = next;
    }
    if (count != d->num_classes) {
        tg_mem_free(data);
        return tg_set_error_in(TG_ERR_FORMAT, module, "%s: %s class names, expected %d (one per line)",
                            path, count > d->num_classes ? "more" : count ? "fewer" : "no",
                            d->num_classes);
    }
    st = tg__dataset_set_names(d, names, count);
    tg_mem_free(data);
    return st;
}

tg_dataset *tg_dataset_from_tensors(const char *name, const tg_tensor *images, const tg_tensor *labels,
                                    int num_classes, const char *const *class_names)
{
    const char *fn = "tg_dataset_from_tensors";
    if (!images || !labels) {
        if (tg_last_status() == TG_OK)
            tg_set_error_in(TG_ERR_ARG, fn, "%s is NULL", images ? "labels" : "images");
        return NULL;
    }
    char a[160], b[160];
    tg_shape_str(a, sizeof a, images->ndim, images->shape);
    tg_shape_str(b, sizeof b, labels->ndim, labels->shape);
    if (images->dtype != TG_U8 || images->ndim != 4 || !tg_tensor_is_contiguous(images) ||
        images->shape[1] < 1 || images->shape[1] > TG_DATASET_MAX_CHANNELS) {
        tg_set_error_in(TG_ERR_ARG, fn, "images must be contiguous u8 [N,C,H,W] with 1..%d channels, got %s %s%s",
                     TG_DATASET_MAX_CHANNELS, tg_dtype_name(images->dtype), a,
                     tg_tensor_is_contiguous(images) ? "" : " (not contiguous)");
        return NULL;
    }
    if (labels->dtype != TG_I32 || labels->ndim != 1 || labels->shape[0] != images->shape[0]) {
        tg_set_error_in(TG_ERR_ARG, fn, "labels must be i32 [%lld] for images %s, got %s %s",
                     (long long)images->shape[0], a, tg_dtype_name(labels->dtype), b);
        return NULL;
    }
    if (num_classes < 1) {
        tg_set_error_in(TG_ERR_ARG, fn, "num_classes = %d (at least 1)", num_classes);
        return NULL;
    }
    int64_t n = labels->shape[0];
    for (int64_t i = 0; i < n; i++) {
        double v = tg_tensor_get(labels, &i);
        if (v < 0 || v >= num_classes) {
            tg_set_error_in(TG_ERR_ARG, fn, "label %g at index %lld is out of range 0..%d", v,
                         (long long)i, num_classes - 1);
            return NULL;
        }
    }
    tg_dataset *d = dataset_shell(name, num_classes);
    if (!d)
        return NULL;
    d->images = tg_tensor_view(NULL, images, images->ndim, images->shape);
    d->labels = tg_tensor_contiguous(NULL, labels);
    if (!d->images || !d->labels ||
        (class_names && tg__dataset_set_names(d, class_names, num_classes) != TG_OK)) {
        tg_dataset_free(d);
        return NULL;
    }
    return d;
}

/* ------------------------------------------------------------------ by name */

tg_dataset *tg_dataset_load(const char *name, const char *dir, tg_dataset_part part)
{
    if (!name) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_load", "name is NULL");
        return NULL;
    }
    if (!dir)
        dir = tg_dataset_default_dir(name);
    bool known = !strcmp(name, "cifar100") || !strcmp(name, "cifar100-coarse") ||
                 !strcmp(name, "cifar10") || !strcmp(name, "fashion-mnist") || !strcmp(name, "mnist");
    if (!known) {
        tg_set_error_in(TG_ERR_ARG,
                     "tg_dataset_load", "unknown data set '%s' (cifar100, cifar100-coarse, cifar10, "
                     "fashion-mnist, mnist)",
                     name);
        return NULL;
    }
    if (!dir) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_load", "%s has no default data directory; give one", name);
        return NULL;
    }
    if (part != TG_DATASET_TRAIN && part != TG_DATASET_TEST) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_load", "part %d is neither train nor test", (int)part);
        return NULL;
    }
    if (!strcmp(name, "cifar100"))
        return tg_dataset_load_cifar100(dir, part, false);
    if (!strcmp(name, "cifar100-coarse"))
        return tg_dataset_load_cifar100(dir, part, true);
    if (!strcmp(name, "cifar10"))
        return tg_dataset_load_cifar10(dir, part);
    if (!strcmp(name, "fashion-mnist"))
        return tg_dataset_load_fashion_mnist(dir, part);
    return tg_dataset_load_mnist(dir, part);
}

const char *tg_dataset_default_dir(const char *name)
{
    if (name && !strcmp(name, "fashion-mnist"))
        return "/usr/share/datasets/fashion-mnist"; /* Debian's dataset-fashion-mnist */
    return NULL;
}

/* ------------------------------------------------------------------ subsets */

tg_dataset *tg_dataset_head(const tg_dataset *d, int64_t n)
{
    if (!d) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_head", "data set is NULL");
        return NULL;
    }
    if (n < 0) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_head", "n = %lld (0 or more)", (long long)n);
        return NULL;
    }
    if (n > tg_dataset_size(d))
        n = tg_dataset_size(d);
    tg_dataset *h = dataset_shell(d->name, d->num_classes);
    if (!h)
        return NULL;
    /* views of the first n rows: they share (and retain) d's storage */
    h->images = tg_tensor_narrow(NULL, d->images, 0, 0, n);
    h->labels = tg_tensor_narrow(NULL, d->labels, 0, 0, n);
    if (!h->images || !h->labels ||
        (d->class_names && tg__dataset_set_names(h, d->class_names, d->num_classes) != TG_OK)) {
        tg_dataset_free(h);
        return NULL;
    }
    return h;
}

tg_dataset *tg_dataset_select(const tg_dataset *d, const int32_t *indices, int64_t n)
{
    if (!d || (!indices && n > 0) || n < 0) {
        tg_set_error_in(TG_ERR_ARG, "tg_dataset_select", "%s", !d ? "data set is NULL"
                                                           : n < 0 ? "n is negative"
                                                                   : "indices is NULL");
        return NULL;
    }
    int64_t size = tg_dataset_size(d);
    for (int64_t i = 0; i < n; i++)
        if (indices[i] < 0 || indices[i] >= size) {
            tg_set_error_in(TG_ERR_ARG, "tg_dataset_select", "index %d at position %lld is out of range 0..%lld",
                         (int)indices[i], (long long)i, (long long)size - 1);
            return NULL;
        }
    const int64_t *s = d->images->shape;
    tg_dataset *out = tg__dataset_alloc(d->name, n, s[1], s[2], s[3], d->num_classes);
    if (!out || (d->class_names && tg__dataset_set_names(out, d->class_names, d->num_classes) != TG_OK)) {
        tg_dataset_free(out);
        return NULL;
    }
    size_t img = (size_t)(s[1] * s[2] * s[3]);
    const uint8_t *src = tg_tensor_data(d->images);
    const int32_t *lsrc = tg_tensor_data(d->labels);
    uint8_t *dst = tg_tensor_data(out->images);
    int32_t *ldst = tg_tensor_data(out->labels);
    for (int64_t i = 0; i < n; i++) {
        memcpy(dst + (size_t)i * img, src + (size_t)indices[i] * img, img);
        ldst[i] = lsrc[indices[i]];
    }
    return out;
}

static int cmp_i32(const void *a, const void *b)
{
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

tg_status tg_dataset_split(const tg_dataset *d, double val_fraction, uint64_t seed,
                           tg_dataset **train, tg_dataset **val)
{
    if (!train || !val)
        return tg_set_error_in(TG_ERR_ARG, "tg_dataset_split", "an output pointer is NULL");
    *train = *val = NULL;
    if (!d)
        return tg_set_error_in(TG_ERR_ARG, "tg_dataset_split", "data set is NULL");
    if (!(val_fraction >= 0 && val_fraction < 1))
        return tg_set_error_in(TG_ERR_ARG, "tg_dataset_split", "val_fraction = %g (0 <= f < 1)", val_fraction);
    int64_t n = tg_dataset_size(d);
    int64_t n_val = (int64_t)llround((double)n * val_fraction);
    int32_t *perm = tg_mem_alloc((size_t)(n ? n : 1) * sizeof *perm, 64);
    if (!perm)
        return tg_last_status();
    /* The study's framework drew the training indices (rng.choice without replacement,
     * seed 0) and kept the rest, in order, for validation: the same shape here, with
     * this library's generator (so the same seed does not pick the same images). */
    tg_rng g = tg_rng_new(seed);
    tg_rng_permutation(&g, perm, n);
    int64_t n_train = n - n_val;
    qsort(perm + n_train, (size_t)n_val, sizeof *perm, cmp_i32);
    *train = tg_dataset_select(d, perm, n_train);
    *val = *train ? tg_dataset_select(d, perm + n_train, n_val) : NULL;
    tg_mem_free(perm);
    if (!*train || !*val) {
        tg_dataset_free(*train);
        *train = NULL;
        return tg_last_status();
    }
    return TG_OK;
}

/* ------------------------------------------------------------------ normalisation */

/* The study's constants (they are the CIFAR-10 ones widely copied with CIFAR-100; the
 * coursework used them for CIFAR-100 and so does the reproduction). */
const tg_normalization tg_norm_cifar = {
    .channels = 3, .mean = {0.4914f, 0.4822f, 0.4465f}, .std = {0.2023f, 0.1994f, 0.2010f}};

/* Computed once with tg_dataset_channel_stats over the 60,000 unpadded 28x28 training
 * images of Debian's dataset-fashion-mnist (pixels / 255, population std, f64 sums):
 * mean 0.28604060, std 0.35302424. tests/datasets/test_fashion_mnist.c recomputes
 * them when the files are installed. */
const tg_normalization tg_norm_fashion_mnist = {.channels = 1, .mean = {0.28604060f}, .std = {0.35302424f}};

const tg_normalization *tg_normalization_preset(const char *name)
{
    if (!name)
        return NULL;
    if (!strncmp(name, "cifar", 5))
        return &tg_norm_cifar;
    if (!strcmp(name, "fashion-mnist"))
        return &tg_norm_fashion_mnist;
    return NULL;
}

tg_status tg_dataset_channel_stats(const tg_dataset *d, tg_normalization *out)
{
    if (!d || !out)
        return tg_set_error_in(TG_ERR_ARG, "tg_dataset_channel_stats", "%s is NULL", d ? "out" : "data set");
    const int64_t *s = d->images->shape;
    int64_t n = s[0], c = s[1], plane = s[2] * s[3];
    if (n * plane == 0)
        return tg_set_error_in(TG_ERR_ARG, "tg_dataset_channel_stats", "the data set has no pixels");
    memset(out, 0, sizeof *out);
    out->channels = (int)c;
    const uint8_t *px = tg_tensor_data(d->images);
    for (int64_t ch = 0; ch < c; ch++) {
        /* a histogram of byte values makes the sums exact whatever the order */
        uint64_t hist[256] = {0};
        for (int64_t i = 0; i < n; i++) {
            const uint8_t *p = px + (i * c + ch) * plane;
            for (int64_t k = 0; k < plane; k++)
                hist[p[k]]++;
        }
        double count = (double)(n * plane), mean = 0, var = 0;
        for (int v = 0; v < 256; v++)
            mean += (double)hist[v] * (v / 255.0);
        mean /= count;
        for (int v = 0; v < 256; v++)
            var += (double)hist[v] * (v / 255.0 - mean) * (v / 255.0 - mean);
        out->mean[ch] = (float)mean;
        out->std[ch] = (float)sqrt(var / count);
    }
    return TG_OK;
}
