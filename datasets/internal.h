/* datasets/internal.h — what the datasets/ sources share, and the in-memory parsers
 * that the file readers call after reading a file and the fuzz targets (fuzz/) call on
 * their inputs. Built on the public tensor API only; internal symbols carry tg__. */
#ifndef TAPEGRAD_DATASETS_INTERNAL_H
#define TAPEGRAD_DATASETS_INTERNAL_H

#include "tapegrad/datasets.h"
#include "tapegrad/tensor.h"
#include "../tensor/fileio.h"

#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------------ files */

/* Paths longer than this are refused with an error rather than cut. */
#define TG__PATH_MAX 4096

/* dir + "/" + file into buf; false (and an error naming `module`) if it does not fit. */
bool tg__path_join(const char *module, char *buf, size_t size, const char *dir, const char *file);
/* True if path names something stat() can see (a missing file is the common failure;
 * anything else is left to the reader, whose message says what went wrong). */
bool tg__path_exists(const char *path);
/* Opening and reading files (tg__open_regular, tg__read_at, tg__read_file,
 * tg__read_open_file) is tensor/fileio.h's. */

/* ------------------------------------------------------------------ gzip */

/* True if the bytes start with gzip's magic number (1f 8b). */
bool tg__is_gzip(const uint8_t *data, size_t size);
/* What a gzip file must inflate to, judged from its first bytes: once head_len bytes are
 * inflated, size_of(path, head, head_len, ctx, &total) returns false (with an error) if
 * they are wrong, else the whole length they declare; inflating then stops there and more
 * output is refused. So a bad magic number costs head_len bytes, and a "bomb" what its
 * header declares, not the limit. A stream that ends sooner is returned as it is. */
typedef struct tg__gz_expect {
    size_t head_len;
    bool (*size_of)(const char *path, const uint8_t *head, size_t n, const void *ctx, size_t *total);
    const void *ctx;
} tg__gz_expect;

/* Inflates a whole gzip file held in memory (one or more members, each CRC- and
 * length-checked by zlib) into a new tg_mem_alloc'd buffer of at most max_out bytes
 * (and what `expect`, if not NULL, allows). Errors name `module`, the path and the
 * compressed offset. */
tg_status tg__gunzip(const char *module, const char *path, const uint8_t *in, size_t in_size,
                     size_t max_out, const tg__gz_expect *expect, uint8_t **out, size_t *out_size);
/* The same for a file tg__open_regular opened (fsize bytes), read 64 KiB at a time. */
tg_status tg__gunzip_file(const char *module, const char *path, int fd, uint64_t fsize,
                          size_t max_out, const tg__gz_expect *expect, uint8_t **out,
                          size_t *out_size);

/* ------------------------------------------------------------------ data sets */

/* A data set with fresh, uninitialised u8 images [n, c, h, w] and i32 labels [n]. */
tg_dataset *tg__dataset_alloc(const char *name, int64_t n, int64_t c, int64_t h, int64_t w,
                              int num_classes);
/* Copies `count` names into d (count must equal d->num_classes). */
tg_status tg__dataset_set_names(tg_dataset *d, const char *const *names, int count);
/* Reads a file of class names, one per line (blank lines skipped), into d: the file
 * must hold exactly d->num_classes names. */
tg_status tg__dataset_read_names(const char *module, tg_dataset *d, const char *path);

/* ------------------------------------------------------------------ CIFAR */

/* A CIFAR record: label_bytes label bytes, then 3072 pixel bytes (3x32x32, channel
 * major). Every label byte is range-checked; `use` picks the one the data set keeps. */
typedef struct tg__cifar_format {
    const char *name; /* the data set's name: "cifar10", "cifar100" */
    int label_bytes;  /* 1 (CIFAR-10) or 2 (CIFAR-100: coarse, fine) */
    int use;          /* which label byte becomes the label */
    const char *label_name[2];
    int label_classes[2];
} tg__cifar_format;

#define TG__CIFAR_PIXELS 3072
extern const tg__cifar_format tg__cifar10_format;
extern const tg__cifar_format tg__cifar100_fine_format;
extern const tg__cifar_format tg__cifar100_coarse_format;

/* The number of records in `size` bytes, or -1 and an error if size is not a whole,
 * nonzero number of records. */
int64_t tg__cifar_count(const char *path, size_t size, const tg__cifar_format *f);
/* Checks every label byte of n records at data. */
tg_status tg__cifar_check_labels(const char *path, const uint8_t *data, int64_t n,
                                 const tg__cifar_format *f);
/* Copies n checked records into images (n x 3072 bytes) and labels. */
void tg__cifar_decode(const uint8_t *data, int64_t n, const tg__cifar_format *f, uint8_t *images,
                      int32_t *labels);
/* All three on one buffer, into a new data set: the fuzz target's entry. */
tg_dataset *tg__cifar_parse(const char *path, const uint8_t *data, size_t size,
                            const tg__cifar_format *f);

/* ------------------------------------------------------------------ IDX */

/* A parsed IDX header of u8 data: dims[0] items of dims[1] x dims[2] (ndims 3) or single
 * bytes (ndims 1); body points into the caller's buffer. */
typedef struct tg__idx {
    int ndims;
    int64_t dims[3];
    const uint8_t *body;
} tg__idx;

/* Checks an inflated IDX file of u8 data with `ndims` dimensions (3: images, 1:
 * labels): magic number, nonzero sizes, and declared sizes against the bytes present. */
tg_status tg__idx_parse(const char *path, const uint8_t *data, size_t size, int ndims, tg__idx *out);
/* The same checks reading only the header: data holds the first min(size, 4 + 4 * ndims)
 * bytes of a file of `size` bytes (body left NULL), so a file is judged before its body
 * is read. */
tg_status tg__idx_check(const char *path, const uint8_t *data, size_t size, int ndims, tg__idx *out);
/* A tg__gz_expect.size_of for gzip IDX files: ctx points to the int ndims, head_len is
 * 4 + 4 * ndims; the total is what the header declares. */
bool tg__idx_gz_size_of(const char *path, const uint8_t *head, size_t n, const void *ctx, size_t *total);
/* Images and labels files (already inflated) into a new data set with labels checked
 * against num_classes. */
tg_dataset *tg__idx_parse_pair(const char *name, const char *images_path, const uint8_t *images,
                               size_t images_size, const char *labels_path, const uint8_t *labels,
                               size_t labels_size, int num_classes);

#endif
