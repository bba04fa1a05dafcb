/* datasets/batches.c — epochs of shuffled, augmented, normalised batches.
 *
 * What a batch is (torchvision's order, which the study used):
 *   Pad(pad_to) -> RandomCrop(size, padding=p) -> RandomHorizontalFlip -> ToTensor ->
 *   Normalize(mean, std)
 * all on u8 pixels before the float conversion, so every padded pixel is a 0 pixel
 * and normalises to (0 - mean) / std. One output pixel is
 *   out[c][y][x] = lut[c][ src[c][sy][sx] ]  (lut[c][0] where (sy, sx) is outside)
 *   sy = y + oy - p - top,  sx = (flip ? W'-1-x : x) + ox - p - left
 * with (oy, ox) in [0, 2p]^2 the crop's corner in the padded image (as RandomCrop
 * draws it), (top, left) the pad_to margins, and lut[c][v] = (v / 255.f - mean) / std
 * in f32, which is what ToTensor then Normalize compute, operation for operation.
 *
 * Randomness. Epoch e draws from E = tg_rng_split(&rng, e): its order from
 * tg_rng_split(&E, 0), and the image at position i of the epoch its crop and flip from
 * tg_rng_split(tg_rng_split(&E, 1), i). Nothing depends on the batch size, the thread
 * count, which epochs ran before, or whether a batch was prepared ahead.
 *
 * Threads. A batch is prepared by an OpenMP loop over its images (one image per
 * iteration: no shared writes, no reductions, so any thread count gives the same
 * bits), above the tensor module's size threshold and never inside another parallel
 * region. With prefetch, a background thread prepares batch k+1 while the caller
 * trains on batch k; it runs the loop on one thread, because the training step is
 * using the cores and a batch costs a few milliseconds against a step's 100 or more. */
#include "internal.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#define MAX_CROP_PADDING 1024

typedef struct slot {
    tg_tensor *x_full, *y_full; /* [B, C, H', W'] f32 and [B] i32, allocated once */
    tg_tensor *x_last, *y_last; /* views of their first `last` rows, for the short batch */
    int32_t *idx;               /* data set indices of the batch in the slot */
    int64_t count;
} slot;

struct tg_batcher {
    const tg_dataset *d;
    tg_batcher_config cfg;
    int64_t n, c, h, w;    /* source images */
    int64_t oh, ow;        /* output images */
    int64_t top, left;     /* pad_to margins */
    int64_t batch, last;   /* full batch size, size of the last batch */
    int64_t num_batches;
    float lut[TG_DATASET_MAX_CHANNELS][256];
    int32_t *order;        /* the epoch's order of data set indices */
    int64_t epoch, next;   /* current epoch (-1 before the first), next batch index */
    slot slots[2];         /* two with prefetch: one the caller holds, one being filled */
    int nslots, last_slot; /* last_slot: the slot last returned, -1 if none */
    /* prefetch: one job at a time, handed over under mu */
    bool has_thread, quit, busy;
    int64_t job_epoch, job_batch;
    int job_slot;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

/* ------------------------------------------------------------------ one batch */

static void write_image(const tg_batcher *b, const uint8_t *src, float *dst, int64_t oy, int64_t ox,
                        bool flip)
{
    const int64_t p = b->cfg.crop_padding, H = b->h, W = b->w, OH = b->oh, OW = b->ow;
    const int64_t dy = oy - p - b->top, dx = ox - p - b->left;
    /* the columns x whose source column sx lies in [0, W): sx = x + dx, or OW-1-x + dx */
    int64_t x0 = flip ? OW + dx - W : -dx, x1 = flip ? OW + dx : W - dx;
    if (x0 < 0)
        x0 = 0;
    if (x1 > OW)
        x1 = OW;
    for (int64_t ch = 0; ch < b->c; ch++) {
        const float *lut = b->lut[ch];
        const float zero = lut[0];
        for (int64_t y = 0; y < OH; y++) {
            float *row = dst + (ch * OH + y) * OW;
            int64_t sy = y + dy;
            if (sy < 0 || sy >= H || x0 >= x1) {
                for (int64_t x = 0; x < OW; x++)
                    row[x] = zero;
                continue;
            }
            const uint8_t *srow = src + (ch * H + sy) * W;
            for (int64_t x = 0; x < x0; x++)
                row[x] = zero;
            /* indices, not shifted pointers: srow + dx may point outside the image */
            if (flip) {
                const int64_t r = OW - 1 + dx;
                for (int64_t x = x0; x < x1; x++)
                    row[x] = lut[srow[r - x]];
            } else {
                for (int64_t x = x0; x < x1; x++)
                    row[x] = lut[srow[x + dx]];
            }
            for (int64_t x = x1; x < OW; x++)
                row[x] = zero;
        }
    }
}

/* The crop corner and flip of the image at `pos` of an epoch: a pure function of
 * (aug, pos), so threads and prefetch cannot change it. */
static void image_params(const tg_batcher *b, const tg_rng *aug, int64_t pos, int64_t *oy, int64_t *ox,
                         bool *flip)
{
    const int p = b->cfg.crop_padding;
    *oy = *ox = p;
    *flip = false;
    if (p == 0 && !b->cfg.flip)
        return;
    tg_rng g = tg_rng_split(aug, (uint64_t)pos);
    if (p > 0) {
        *oy = tg_rng_below(&g, (uint32_t)(2 * p + 1));
        *ox = tg_rng_below(&g, (uint32_t)(2 * p + 1));
    }
    if (b->cfg.flip)
        *flip = (tg_rng_u32(&g) >> 31) != 0; /* the top bit: p = 1/2 exactly */
}

/* Image i of the batch that starts at epoch position `start`, into slot s. */
static void prepare_one(const tg_batcher *b, const tg_rng *aug, int64_t start, int64_t i, slot *s)
{
    const int64_t in_size = b->c * b->h * b->w, out_size = b->c * b->oh * b->ow;
    const int32_t src = b->order[start + i];
    int64_t oy, ox;
    bool flip;
    image_params(b, aug, start + i, &oy, &ox, &flip);
    write_image(b, (const uint8_t *)tg_tensor_data(b->d->images) + src * in_size,
                (float *)tg_tensor_data(s->x_full) + i * out_size, oy, ox, flip);
    ((int32_t *)tg_tensor_data(s->y_full))[i] = ((const int32_t *)tg_tensor_data(b->d->labels))[src];
    s->idx[i] = src;
}

/* Batch k of `epoch` into slot s; `parallel` only on the caller's thread (the prefetch
 * thread never enters OpenMP, so it never starts a second thread pool). */
static void prepare(const tg_batcher *b, int64_t epoch, int64_t k, slot *s, bool parallel)
{
    const int64_t start = k * b->batch;
    const int64_t count = k == b->num_batches - 1 ? b->last : b->batch;
    const tg_rng e = tg_rng_split(&b->cfg.rng, (uint64_t)epoch);
    const tg_rng aug = tg_rng_split(&e, 1);
    if (parallel && count > 1 && tg_parallel_worth(count * b->c * b->oh * b->ow)) {
#pragma omp parallel for schedule(static) num_threads(tg_get_active_threads())
        for (int64_t i = 0; i < count; i++)
            prepare_one(b, &aug, start, i, s);
    } else {
        for (int64_t i = 0; i < count; i++)
            prepare_one(b, &aug, start, i, s);
    }
    s->count = count;
    /* written through raw pointers: counted for the tape's in-place check */
    tg_tensor_bump_version(s->x_full);
    tg_tensor_bump_version(s->y_full);
}

/* ------------------------------------------------------------------ prefetch */

static void *worker(void *arg)
{
    tg_batcher *b = arg;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (!b->quit && !b->busy)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->quit)
            break;
        int64_t epoch = b->job_epoch, k = b->job_batch;
        slot *s = &b->slots[b->job_slot];
        pthread_mutex_unlock(&b->mu);
        prepare(b, epoch, k, s, false);
        pthread_mutex_lock(&b->mu);
        b->busy = false;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void submit(tg_batcher *b, int64_t k)
{
    pthread_mutex_lock(&b->mu);
    b->job_epoch = b->epoch;
    b->job_batch = k;
    b->job_slot = (int)(k % b->nslots);
    b->busy = true;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Waits for the job in flight, if any; afterwards the worker touches nothing. */
static void wait_idle(tg_batcher *b)
{
    if (!b->has_thread)
        return;
    pthread_mutex_lock(&b->mu);
    while (b->busy)
        pthread_cond_wait(&b->cv, &b->mu);
    pthread_mutex_unlock(&b->mu);
}

/* ------------------------------------------------------------------ the batcher */

static tg_status check_config(const tg_dataset *d, const tg_batcher_config *cfg)
{
    const char *fn = "tg_batcher_new";
    if (!d || !cfg)
        return tg_set_error_in(TG_ERR_ARG, fn, "%s is NULL", d ? "config" : "data set");
    const tg_tensor *im = d->images;
    if (!im || !d->labels || im->dtype != TG_U8 || im->ndim != 4 || !tg_tensor_is_contiguous(im) ||
        im->shape[1] > TG_DATASET_MAX_CHANNELS || d->labels->dtype != TG_I32 ||
        d->labels->ndim != 1 || d->labels->shape[0] != im->shape[0] ||
        !tg_tensor_is_contiguous(d->labels))
        return tg_set_error_in(TG_ERR_ARG, fn, "the data set's tensors are not u8 [N,C,H,W] (C <= %d) "
                                        "and i32 [N], contiguous",
                            TG_DATASET_MAX_CHANNELS);
    if (im->shape[0] > INT32_MAX)
        return tg_set_error_in(TG_ERR_ARG, fn, "%lld images (at most 2^31 - 1)", (long long)im->shape[0]);
    if (cfg->batch_size < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "batch_size = %lld (at least 1)", (long long)cfg->batch_size);
    if (cfg->crop_padding < 0 || cfg->crop_padding > MAX_CROP_PADDING)
        return tg_set_error_in(TG_ERR_ARG, fn, "crop_padding = %d (0..%d)", cfg->crop_padding,
                            MAX_CROP_PADDING);
    if (cfg->pad_to < 0 || cfg->pad_to > 65536 ||
        (cfg->pad_to > 0 && (cfg->pad_to < im->shape[2] || cfg->pad_to < im->shape[3])))
        return tg_set_error_in(TG_ERR_ARG, fn, "pad_to = %d, but the images are %lldx%lld (0 for none, "
                                        "else at least their size)",
                            cfg->pad_to, (long long)im->shape[2], (long long)im->shape[3]);
    const tg_normalization *nm = cfg->norm;
    if (nm) {
        if (nm->channels != im->shape[1])
            return tg_set_error_in(TG_ERR_ARG, fn, "normalisation for %d channels, images have %lld",
                                nm->channels, (long long)im->shape[1]);
        for (int ch = 0; ch < nm->channels; ch++)
            if (!(nm->std[ch] > 0) || !isfinite(nm->std[ch]) || !isfinite(nm->mean[ch]))
                return tg_set_error_in(TG_ERR_ARG, fn, "channel %d: mean %g, std %g (std must be > 0, both finite)",
                                    ch, nm->mean[ch], nm->std[ch]);
    }
    return TG_OK;
}

static void free_slot(slot *s)
{
    tg_tensor_free(s->x_last);
    tg_tensor_free(s->y_last);
    tg_tensor_free(s->x_full);
    tg_tensor_free(s->y_full);
    tg_mem_free(s->idx);
}

static bool alloc_slot(tg_batcher *b, slot *s)
{
    s->x_full = tg_tensor_empty(NULL, TG_F32, TG_DIMS(b->batch, b->c, b->oh, b->ow));
    s->y_full = tg_tensor_empty(NULL, TG_I32, TG_DIMS(b->batch));
    s->x_last = tg_tensor_narrow(NULL, s->x_full, 0, 0, b->last);
    s->y_last = tg_tensor_narrow(NULL, s->y_full, 0, 0, b->last);
    s->idx = tg_mem_alloc((size_t)b->batch * sizeof *s->idx, 64);
    return s->x_full && s->y_full && s->x_last && s->y_last && s->idx;
}

tg_batcher *tg_batcher_new(const tg_dataset *d, const tg_batcher_config *cfg)
{
    if (check_config(d, cfg) != TG_OK)
        return NULL;
    tg_batcher *b = tg_mem_alloc(sizeof *b, 64);
    if (!b)
        return NULL;
    memset(b, 0, sizeof *b);
    b->d = d;
    b->cfg = *cfg;
    b->cfg.norm = NULL; /* copied into the lookup table; the caller's may go */
    const int64_t *s = d->images->shape;
    b->n = s[0], b->c = s[1], b->h = s[2], b->w = s[3];
    b->oh = cfg->pad_to > b->h ? cfg->pad_to : b->h;
    b->ow = cfg->pad_to > b->w ? cfg->pad_to : b->w;
    b->top = (b->oh - b->h) / 2; /* transforms.Pad(k) pads k each side: the margin */
    b->left = (b->ow - b->w) / 2;
    b->batch = b->n > 0 && cfg->batch_size > b->n ? b->n : cfg->batch_size;
    b->num_batches = (b->n + b->batch - 1) / b->batch;
    b->last = b->n > 0 ? b->n - (b->num_batches - 1) * b->batch : b->batch;
    b->epoch = -1;
    b->last_slot = -1;
    for (int ch = 0; ch < b->c; ch++)
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f; /* ToTensor */
            b->lut[ch][v] = cfg->norm ? (x - cfg->norm->mean[ch]) / cfg->norm->std[ch] : x;
        }
    b->nslots = cfg->prefetch ? 2 : 1;
    b->order = tg_mem_alloc((size_t)(b->n ? b->n : 1) * sizeof *b->order, 64);
    bool ok = b->order != NULL;
    for (int i = 0; i < b->nslots && ok; i++)
        ok = alloc_slot(b, &b->slots[i]);
    if (ok && cfg->prefetch) {
        ok = pthread_mutex_init(&b->mu, NULL) == 0;
        if (ok && pthread_cond_init(&b->cv, NULL) != 0) {
            pthread_mutex_destroy(&b->mu);
            ok = false;
        }
        if (ok && pthread_create(&b->thread, NULL, worker, b) != 0) {
            pthread_cond_destroy(&b->cv);
            pthread_mutex_destroy(&b->mu);
            ok = false;
        }
        if (!ok)
            tg_set_error_in(TG_ERR_STATE, "tg_batcher_new", "cannot start the prefetch thread");
        b->has_thread = ok;
    }
    if (!ok) {
        tg_batcher_free(b);
        return NULL;
    }
    return b;
}

void tg_batcher_free(tg_batcher *b)
{
    if (!b)
        return;
    if (b->has_thread) {
        pthread_mutex_lock(&b->mu);
        b->quit = true;
        pthread_cond_broadcast(&b->cv);
        pthread_mutex_unlock(&b->mu);
        pthread_join(b->thread, NULL);
        pthread_cond_destroy(&b->cv);
        pthread_mutex_destroy(&b->mu);
    }
    for (int i = 0; i < 2; i++)
        free_slot(&b->slots[i]);
    tg_mem_free(b->order);
    tg_mem_free(b);
}

int64_t tg_batcher_num_batches(const tg_batcher *b)
{
    return b ? b->num_batches : 0;
}

tg_status tg_batcher_start_epoch(tg_batcher *b, int64_t epoch)
{
    if (!b)
        return tg_set_error_in(TG_ERR_ARG, "tg_batcher_start_epoch", "batcher is NULL");
    if (epoch < 0)
        return tg_set_error_in(TG_ERR_ARG, "tg_batcher_start_epoch", "epoch = %lld (0 or more)",
                            (long long)epoch);
    wait_idle(b); /* the worker may be reading the old order */
    if (b->cfg.shuffle) {
        tg_rng e = tg_rng_split(&b->cfg.rng, (uint64_t)epoch);
        tg_rng g = tg_rng_split(&e, 0);
        tg_rng_permutation(&g, b->order, b->n);
    } else {
        for (int64_t i = 0; i < b->n; i++)
            b->order[i] = (int32_t)i;
    }
    b->epoch = epoch;
    b->next = 0;
    b->last_slot = -1;
    if (b->has_thread && b->num_batches > 0)
        submit(b, 0);
    return TG_OK;
}

bool tg_batcher_next(tg_batcher *b, tg_tensor **x, tg_tensor **y)
{
    if (!b || !x || !y || b->epoch < 0 || b->next >= b->num_batches)
        return false;
    int64_t k = b->next++;
    int si = (int)(k % b->nslots);
    slot *s = &b->slots[si];
    if (b->has_thread) {
        wait_idle(b); /* the job in flight is batch k, into slot si */
        if (k + 1 < b->num_batches)
            submit(b, k + 1); /* into the other slot, which the caller has let go */
    } else {
        prepare(b, b->epoch, k, s, true);
    }
    bool short_batch = k == b->num_batches - 1 && b->last != b->batch;
    *x = short_batch ? s->x_last : s->x_full;
    *y = short_batch ? s->y_last : s->y_full;
    b->last_slot = si;
    return true;
}

const int32_t *tg_batcher_indices(const tg_batcher *b, int64_t *n)
{
    if (!b || b->last_slot < 0) {
        if (n)
            *n = 0;
        return NULL;
    }
    if (n)
        *n = b->slots[b->last_slot].count;
    return b->slots[b->last_slot].idx;
}
