/* tapegrad/datasets.h — image data sets in memory, the train/validation split, and
 * shuffled, augmented, normalised batches.
 *
 *   tg_dataset *full = tg_dataset_load("cifar100", "data", TG_DATASET_TRAIN);
 *   tg_dataset *test = tg_dataset_load("cifar100", "data", TG_DATASET_TEST);
 *   tg_dataset *train, *val;
 *   tg_dataset_split(full, 0.05, 0, &train, &val);     // 47,500 / 2,500, seed 0
 *   tg_dataset_free(full);
 *   if (!test || !train) { fprintf(stderr, "%s\n", tg_last_error()); return 1; }
 *
 *   tg_rng g = tg_rng_new(training_seed);
 *   tg_batcher *tb = tg_batcher_new(train, &(tg_batcher_config){
 *       .batch_size = 100, .shuffle = true, .crop_padding = 4, .flip = true,
 *       .norm = tg_normalization_preset("cifar100"), .rng = tg_rng_split(&g, 1),
 *       .prefetch = true});              // val/test: no shuffle, no crop, no flip
 *   for (int64_t epoch = 0; epoch < 100; epoch++) {
 *       tg_batcher_start_epoch(tb, epoch);
 *       tg_tensor *x, *y;                               // f32 [B,3,32,32], i32 [B]
 *       while (tg_batcher_next(tb, &x, &y))
 *           train_step(x, y);
 *   }
 *   tg_batcher_free(tb);
 *
 * Formats: CIFAR-10 and CIFAR-100 binary versions (the unpacked official archives) and
 * IDX files as MNIST and Fashion-MNIST ship them, gzip-compressed or not. Every reader
 * checks sizes, magic numbers, counts, label ranges and gzip integrity before it trusts
 * a byte; a bad file gives NULL and one message (tg_last_error) naming the file, what
 * was expected, what was found and the offset, e.g.
 *   "datasets/cifar: data/train.bin: 10000 bytes is not a whole number of 3074-byte
 *    records (record 3 is cut at byte 9222)".
 *
 * A batch is what torchvision's Pad -> RandomCrop(padding) -> RandomHorizontalFlip ->
 * ToTensor -> Normalize gives: padding is zero *pixels*, so after normalisation it is
 * (0 - mean) / std, not 0. Each image's crop and flip are a pure function of (rng,
 * epoch, position in the epoch), so batches are bitwise the same for any thread count,
 * with or without prefetch, and do not depend on the batch size.
 */
#ifndef TAPEGRAD_DATASETS_H
#define TAPEGRAD_DATASETS_H

#include "tapegrad/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ data sets */

typedef enum tg_dataset_part {
    TG_DATASET_TRAIN = 0, /* the official training images (before any split) */
    TG_DATASET_TEST       /* the official test images */
} tg_dataset_part;

#define TG_DATASET_MAX_CHANNELS 4

/* Fields are for reading. Images and labels are heap tensors owned by the data set. */
typedef struct tg_dataset {
    char name[32];         /* "cifar100", "cifar10", "fashion-mnist", "mnist", "idx", ... */
    tg_tensor *images;     /* u8 [N, C, H, W], contiguous */
    tg_tensor *labels;     /* i32 [N], each in 0 .. num_classes-1 */
    int num_classes;
    const char *const *class_names; /* num_classes names, or NULL when none are known */
} tg_dataset;

/* The name of the data set a fresh machine has (Debian's dataset-fashion-mnist). */
#define TG_DATASET_DEFAULT_NAME "fashion-mnist"

/* Loads one part of a data set by name:
 *   "cifar100"        CIFAR-100, fine labels (100 classes)
 *   "cifar100-coarse" CIFAR-100, coarse labels (20 superclasses)
 *   "cifar10"         CIFAR-10
 *   "fashion-mnist"   Fashion-MNIST (IDX, .gz or not)
 *   "mnist"           MNIST (IDX, .gz or not)
 * dir is the unpacked archive's folder or its parent; NULL means
 * tg_dataset_default_dir(name). NULL + error on failure. */
tg_dataset *tg_dataset_load(const char *name, const char *dir, tg_dataset_part part);
/* Where a data set lives on a fresh machine, or NULL if it has no usual place
 * ("fashion-mnist": /usr/share/datasets/fashion-mnist). */
const char *tg_dataset_default_dir(const char *name);

/* CIFAR-100 binary version: dir holds train.bin / test.bin (or dir/cifar-100-binary
 * does); class names from fine_label_names.txt / coarse_label_names.txt if present. */
tg_dataset *tg_dataset_load_cifar100(const char *dir, tg_dataset_part part, bool coarse);
/* CIFAR-10 binary version: data_batch_1..5.bin / test_batch.bin in dir or
 * dir/cifar-10-batches-bin; class names from batches.meta.txt if present. */
tg_dataset *tg_dataset_load_cifar10(const char *dir, tg_dataset_part part);
/* MNIST / Fashion-MNIST: {train,t10k}-{images-idx3,labels-idx1}-ubyte[.gz] in dir. */
tg_dataset *tg_dataset_load_mnist(const char *dir, tg_dataset_part part);
tg_dataset *tg_dataset_load_fashion_mnist(const char *dir, tg_dataset_part part);
/* Any pair of IDX files: u8 images (N, H, W) and u8 labels (N), each gzip-compressed
 * or not (decided by the file's first bytes, not its name); labels must be below
 * num_classes. The data set has one channel and no class names. */
tg_dataset *tg_dataset_load_idx(const char *images_path, const char *labels_path, int num_classes);

/* A data set of the caller's tensors (u8 [N,C,H,W] contiguous, i32 [N] in range); it
 * holds its own views of them, so the caller still frees its tensors (views of arena
 * tensors die with the arena: pass heap tensors). class_names may be NULL; the names
 * are copied. */
tg_dataset *tg_dataset_from_tensors(const char *name, const tg_tensor *images, const tg_tensor *labels,
                                    int num_classes, const char *const *class_names);
void tg_dataset_free(tg_dataset *d); /* NULL is ignored */
int64_t tg_dataset_size(const tg_dataset *d); /* N; 0 for NULL */

/* ------------------------------------------------------------------ split, subset */

/* Splits d into training and validation sets from a permutation drawn with
 * tg_rng_new(seed) (the study: seed 0, independent of the training seed): the
 * validation set takes round(N * val_fraction) images, the training set the rest.
 * Training images are in the permutation's order (so a head of it is a random subset),
 * validation images in their original order, as the study's framework left them.
 * Both are copies: d may be freed afterwards. On failure both outputs are NULL. */
tg_status tg_dataset_split(const tg_dataset *d, double val_fraction, uint64_t seed,
                           tg_dataset **train, tg_dataset **val);
/* The first n images (n > N: all of them), sharing d's storage (no copy). d may be
 * freed before the subset: the subset holds its own reference to the storage and its
 * own copies of the name and class names. */
tg_dataset *tg_dataset_head(const tg_dataset *d, int64_t n);
/* A copy of the images at indices[0..n-1] in that order. */
tg_dataset *tg_dataset_select(const tg_dataset *d, const int32_t *indices, int64_t n);

/* ------------------------------------------------------------------ normalisation */

/* Per-channel normalisation of pixels scaled to [0, 1]: x = (p / 255 - mean) / std. */
typedef struct tg_normalization {
    int channels;
    float mean[TG_DATASET_MAX_CHANNELS];
    float std[TG_DATASET_MAX_CHANNELS];
} tg_normalization;

extern const tg_normalization tg_norm_cifar;         /* the study's CIFAR constants */
extern const tg_normalization tg_norm_fashion_mnist; /* from its 60,000 training images */
/* The preset for a data set name (cifar*, fashion-mnist), or NULL if there is none. */
const tg_normalization *tg_normalization_preset(const char *name);
/* Mean and (population) standard deviation of each channel of d's pixels in [0, 1]. */
tg_status tg_dataset_channel_stats(const tg_dataset *d, tg_normalization *out);

/* ------------------------------------------------------------------ batches */

typedef struct tg_batcher_config {
    int64_t batch_size;  /* > 0; the last batch of an epoch may be smaller */
    bool shuffle;        /* a new order each epoch; else the data set's order */
    int crop_padding;    /* > 0: random crop back to size after this much zero padding */
    bool flip;           /* random horizontal flip with p = 0.5 */
    int pad_to;          /* > 0: first zero-pad smaller images to pad_to x pad_to, centred
                            (28x28 -> 32x32), as transforms.Pad before ToTensor */
    const tg_normalization *norm; /* copied; NULL: x = p / 255 */
    tg_rng rng;          /* shuffles and augmentation: epoch e uses tg_rng_split(&rng, e) */
    bool prefetch;       /* prepare the next batch on a background thread */
} tg_batcher_config;

typedef struct tg_batcher tg_batcher;

/* A batcher over d, which must outlive it. Allocates every buffer now: no batch
 * allocates. NULL + error on a bad configuration. */
tg_batcher *tg_batcher_new(const tg_dataset *d, const tg_batcher_config *cfg);
void tg_batcher_free(tg_batcher *b); /* NULL is ignored */

/* Starts epoch `epoch` (>= 0, any order): its order and augmentation depend only on
 * (rng, epoch). Abandons what is left of the previous epoch. */
tg_status tg_batcher_start_epoch(tg_batcher *b, int64_t epoch);
/* The epoch's next batch: *x f32 [B, C, H', W'] and *y i32 [B]; false when the epoch
 * is done (or none was started). The tensors belong to the batcher and stay valid
 * until the next call on it; do not free them. */
bool tg_batcher_next(tg_batcher *b, tg_tensor **x, tg_tensor **y);
/* The data set indices of the batch last returned by tg_batcher_next; *n its size. */
const int32_t *tg_batcher_indices(const tg_batcher *b, int64_t *n);
int64_t tg_batcher_num_batches(const tg_batcher *b); /* per epoch */

#ifdef __cplusplus
}
#endif
#endif
