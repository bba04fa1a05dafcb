/* tensor/conv2d.c — the fused 2-D convolution and its two gradients, on [N, C, H, W]:
 *
 *   forward          x [N,C,H,W], w [OC,C,kh,kw], b [OC] -> y [N,OC,OH,OW]
 *                      y_n = W [OC, C*kh*kw] @ cols_n + b
 *   backward_input   gy [N,OC,OH,OW], w -> dx [N,C,H,W]:   dx_n = col2im(W^T @ gy_n)
 *   backward_weight  gy, x -> dw [OC,C,kh,kw]:             dW = sum_n gy_n @ cols_n^T
 *
 * 3x3 stride-1 convolutions with 8 channels or more take Winograd's F(2x2, 3x3) instead
 * (tensor/winograd.c), all three kernels; the rest the path below.
 *
 * The products of im2col + matmul (tg_tensor_im2col, tg_tensor_matmul, tg_tensor_col2im:
 * the reference the tests compare with) without the batch's columns, which are 118 MB for
 * a VGG layer of 100 images of 32 channels at 32x32, written once and read back from
 * memory. Here a thread lays out one tile of one image's columns at a time (output rows
 * [r0, r1), about TILE_BYTES, so the tile is still in the core's L2 cache when the GEMM
 * reads it) and multiplies it on its own core (tg__gemm: BLIS with one thread, measured
 * 60-85 GFLOP/s on such tiles against 45-65 for a whole image's columns). The OpenMP
 * loop runs over images; scratch for every thread is taken once, before it.
 *
 * Determinism: each output element is computed by one thread in an order fixed by the
 * shapes. The weight gradient sums over images: the images are cut into at most TG__CONV_PARTS
 * ranges fixed by N alone, each range sums into its own partial in image order, and the
 * partials are added in range order (in f64), so the bits do not depend on the thread
 * count.
 *
 * Inputs may have any strides: images are read through them by im2col, the output
 * gradient by a copy of each tile (gather_grad, which the GEMM wants anyway); the weight
 * (small) is copied whole when it is not contiguous. Scratch comes from the arena and is
 * given back before returning (tg_arena_release), or from the allocator hook when ar is
 * NULL. */
#include "internal.h"
#include "winograd.h"

#include <omp.h>
#include <string.h>

#define TILE_BYTES ((size_t)256 * 1024) /* a tile of columns; zen3's L2 is 512 KiB */
#define TILE_MIN 128                    /* columns of a tile, whatever C*kh*kw is */
#define TILE_MAX 512                    /* beyond this BLIS's sup path slows (matmul.c) */
#define GRAD_PAD 16                     /* elements after each row of a gradient tile */

/* 3x3 stride-1 convolutions (every one of the study's but the entry layer) go to
 * Winograd's F(2x2, 3x3) (tensor/winograd.c: 2.25x fewer multiplies, measured ~1.7x
 * faster than the tiles below at 32 channels, within float32 rounding of them). With
 * few channels its transforms cost more than they save: the entry layer's 3 input
 * channels run ~40% slower that way, and the measured break-even is about 8. */
#define WINOGRAD_MIN_CHANNELS 8

static bool winograd(const tg_tensor *x, const tg_tensor *w, const tg_conv2d_geom *g)
{
    return w->shape[0] >= WINOGRAD_MIN_CHANNELS && w->shape[1] >= WINOGRAD_MIN_CHANNELS &&
           tg__winograd_applies(x, w, g);
}

/* ------------------------------------------------------------------ the plan */

typedef struct plan {
    tg_dtype dt;
    size_t es;
    int64_t n, c, oc, ck, ohw; /* ck = C*kh*kw: the GEMM's inner size */
    tg__conv_dims d;
    int64_t rows; /* output rows per tile (the last tile may have fewer) */
    size_t tile;  /* bytes of one tile of columns */
    int64_t ld;   /* row stride of a tile of the output gradient (backward) */
    size_t gtile; /* its bytes */
    int threads;  /* the OpenMP team */
} plan;

/* Fills p for images [n, c, d->h, d->w] and oc filters; `tasks` independent pieces of work
 * (images, or partials) decide the team. */
static void make_plan(plan *p, tg_dtype dt, int64_t n, int64_t c, int64_t oc,
                      const tg__conv_dims *d, int64_t tasks)
{
    *p = (plan){.dt = dt, .es = tg_dtype_size(dt), .n = n, .c = c, .oc = oc, .d = *d,
                .ck = c * d->g.kh * d->g.kw, .ohw = d->oh * d->ow};
    int64_t cols = p->ck ? (int64_t)(TILE_BYTES / ((size_t)p->ck * p->es)) : TILE_MAX;
    cols = cols < TILE_MIN ? TILE_MIN : cols > TILE_MAX ? TILE_MAX : cols;
    int64_t rows = cols / d->ow;
    rows = rows < 1 ? 1 : rows > d->oh ? d->oh : rows;
    int64_t tiles = (d->oh + rows - 1) / rows;
    p->rows = (d->oh + tiles - 1) / tiles; /* tiles of equal height but the last */
    p->tile = (size_t)(p->ck * p->rows * d->ow) * p->es;
    p->ld = p->rows * d->ow + GRAD_PAD;
    p->gtile = (size_t)(oc * p->ld) * p->es;
    tg__threads_init();
    double flops = 2.0 * (double)n * (double)oc * (double)p->ck * (double)p->ohw;
    int t = tg_get_active_threads();
    p->threads = tasks < 2 || omp_in_parallel() || flops < TG__PAR_MIN ? 1
                 : t < tasks ? t : (int)tasks;
}

/* The end of the tile that starts at output row r0. */
static int64_t tile_end(const plan *p, int64_t r0)
{
    return r0 + p->rows < p->d.oh ? r0 + p->rows : p->d.oh;
}

/* ------------------------------------------------------------------ memory */

/* Gives back a tensor made here (a copy, or a result abandoned after a failure). */
static void give_back(tg_arena *ar, tg_tensor *t)
{
    if (t && ar)
        tg_arena_release_tensor(ar, t);
    else
        tg_tensor_free(t);
}

/* t itself when `ok`, else a contiguous copy in ar that *copy holds for give_back. */
static const tg_tensor *dense(tg_arena *ar, const tg_tensor *t, bool ok, tg_tensor **copy)
{
    *copy = ok ? NULL : tg_tensor_clone(ar, t);
    return ok ? t : *copy;
}

/* Output rows [r0, r1) of image n of gy [N, OC, OH, OW] (any strides) into dst, [OC, (r1 -
 * r0) * OW] with rows ld elements apart. The copy is a few percent of the GEMM that reads
 * it, and pays for itself: read in place, rows 1024 floats apart (a 32x32 image) alias in
 * the cache, and BLIS's sup kernel ran at 51 GFLOP/s on the input gradient's 288x32x256
 * tiles, against 82 with rows 1040 apart (measured, one zen3 core); it also takes any
 * layout of gy without a whole copy. GRAD_PAD keeps ld off such strides. */
static void gather_grad(const plan *p, char *dst, const tg_tensor *gy, int64_t n, int64_t r0,
                        int64_t r1)
{
    int64_t ow = p->d.ow, s1 = gy->strides[1], s2 = gy->strides[2], s3 = gy->strides[3];
    const char *img = tg__ptr(gy) + (size_t)(n * gy->strides[0]) * p->es;
    for (int64_t o = 0; o < p->oc; o++)
        for (int64_t h = r0; h < r1; h++) {
            char *row = dst + (size_t)(o * p->ld + (h - r0) * ow) * p->es;
            const char *src = img + (size_t)(o * s1 + h * s2) * p->es;
            if (s3 == 1)
                memcpy(row, src, (size_t)ow * p->es);
            else if (p->dt == TG_F32)
                for (int64_t k = 0; k < ow; k++)
                    ((float *)row)[k] = ((const float *)src)[k * s3];
            else
                for (int64_t k = 0; k < ow; k++)
                    ((double *)row)[k] = ((const double *)src)[k * s3];
        }
}

/* ------------------------------------------------------------------ checks */

/* w must be [OC, C, kh, kw] of dtype dt with g's kernel; `other` names what it is used
 * with ("input [2,3,8,8]"). */
static bool check_weight(const char *fn, const tg_tensor *w, tg_dtype dt, const tg_conv2d_geom *g,
                         const char *other)
{
    char s[TG__SHAPE_STR];
    TG__SHAPE(s, w);
    if (w->ndim != 4) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "weight %s must be 4-D [OC, C, kh, kw]", s);
        return false;
    }
    if (w->dtype != dt) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "weight %s is %s, %s is %s", s, tg_dtype_name(w->dtype),
                     other, tg_dtype_name(dt));
        return false;
    }
    if (w->shape[2] != g->kh || w->shape[3] != g->kw) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "weight %s is a %lldx%lld kernel, the geometry's is %dx%d",
                     s, (long long)w->shape[2], (long long)w->shape[3], g->kh, g->kw);
        return false;
    }
    return true;
}

/* ------------------------------------------------------------------ forward */

/* Rows [0, rows) of y (contiguous, len each) = b[row] */
static void fill_bias(tg_dtype dt, char *y, int64_t rows, int64_t len, const tg_tensor *b)
{
    size_t es = tg_dtype_size(dt);
    for (int64_t o = 0; o < rows; o++) {
        double v = tg__load(dt, tg__ptr(b) + (size_t)(o * b->strides[0]) * es);
        if (dt == TG_F32) {
            float *r = (float *)y + o * len;
            for (int64_t k = 0; k < len; k++)
                r[k] = (float)v;
        } else {
            double *r = (double *)y + o * len;
            for (int64_t k = 0; k < len; k++)
                r[k] = v;
        }
    }
}

tg_tensor *tg_tensor_conv2d(tg_arena *ar, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b,
                            const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_conv2d";
    TG__CHECK_NULL(fn, x && w);
    char input[TG__SHAPE_STR + 16], s1[TG__SHAPE_STR], s2[TG__SHAPE_STR];
    tg__conv_dims d;
    if (!tg__conv_check_image(fn, "input", x, input, sizeof input) ||
        !tg__conv_check_geom(fn, g, false, input, x->shape[2], x->shape[3], &d) ||
        !check_weight(fn, w, x->dtype, &d.g, input) ||
        !tg__conv_check_size(fn, x->shape[1], &d, input))
        return NULL;
    if (w->shape[1] != x->shape[1])
        return TG__FAIL(TG_ERR_SHAPE, fn, "weight %s takes %lld channels, %s has %lld",
                        TG__SHAPE(s1, w), (long long)w->shape[1], input, (long long)x->shape[1]);
    if (b && b->dtype != x->dtype)
        return TG__FAIL(TG_ERR_DTYPE, fn, "bias %s is %s, %s is %s", TG__SHAPE(s1, b),
                        tg_dtype_name(b->dtype), input, tg_dtype_name(x->dtype));
    if (b && (b->ndim != 1 || b->shape[0] != w->shape[0]))
        return TG__FAIL(TG_ERR_SHAPE, fn, "bias %s does not match weight %s (expected [%lld])",
                        TG__SHAPE(s1, b), TG__SHAPE(s2, w), (long long)w->shape[0]);
    int64_t n = x->shape[0], oc = w->shape[0];
    tg_tensor *y = tg__new(ar, x->dtype, 4, (int64_t[]){n, oc, d.oh, d.ow});
    if (!y || n * oc == 0)
        return y;
    if (winograd(x, w, g)) {
        if (tg__winograd_conv2d(ar, y, x, w, b, g) == TG_OK)
            return y;
        give_back(ar, y);
        return NULL;
    }
    plan p;
    make_plan(&p, x->dtype, n, x->shape[1], oc, &d, n);
    tg_tensor *wcopy;
    const tg_tensor *wd = dense(ar, w, tg_tensor_is_contiguous(w), &wcopy);
    char *buf = wd ? tg__conv_scratch(fn, ar, (size_t)p.threads * p.tile) : NULL;
    if (!buf) {
        give_back(ar, wcopy);
        give_back(ar, y);
        return NULL;
    }
    const char *wm = tg__ptr(wd); /* [OC, C*kh*kw] */
    char *out = tg__ptr(y);
#pragma omp parallel for schedule(static) num_threads(p.threads) if (p.threads > 1)
    for (int64_t i = 0; i < n; i++) {
        char *cols = buf + (size_t)omp_get_thread_num() * p.tile;
        char *yi = out + (size_t)(i * oc * p.ohw) * p.es;
        if (b) /* the bias first, then the product added to it (beta 1) */
            fill_bias(p.dt, yi, oc, p.ohw, b);
        else if (p.ck == 0)
            memset(yi, 0, (size_t)(oc * p.ohw) * p.es);
        if (p.ck == 0)
            continue;
        for (int64_t r0 = 0; r0 < d.oh; r0 = tile_end(&p, r0)) {
            int64_t r1 = tile_end(&p, r0), t = (r1 - r0) * d.ow;
            tg__im2col_tile(cols, x, i, &d, r0, r1);
            tg__gemm(p.dt, oc, t, p.ck, 1.0, wm, p.ck, 1, cols, t, 1, b ? 1.0 : 0.0,
                     yi + (size_t)(r0 * d.ow) * p.es, p.ohw, 1);
        }
    }
    tg__conv_scratch_free(ar, buf);
    give_back(ar, wcopy);
    return y;
}

/* ------------------------------------------------------------------ backward */

tg_tensor *tg_tensor_conv2d_backward_input(tg_arena *ar, const tg_tensor *gy, const tg_tensor *w,
                                           int64_t height, int64_t width, const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_conv2d_backward_input";
    TG__CHECK_NULL(fn, gy && w);
    char grad[TG__SHAPE_STR + 16], input[64], s1[TG__SHAPE_STR], gs[160], against[400];
    snprintf(input, sizeof input, "input %lldx%lld", (long long)height, (long long)width);
    tg__conv_dims d;
    if (!tg__conv_check_image(fn, "gradient", gy, grad, sizeof grad) ||
        !tg__conv_check_geom(fn, g, false, input, height, width, &d) ||
        !check_weight(fn, w, gy->dtype, &d.g, grad) ||
        !tg__conv_check_size(fn, w->shape[1], &d, input))
        return NULL;
    int64_t n = gy->shape[0], oc = w->shape[0], c = w->shape[1];
    snprintf(against, sizeof against, "%s with %s and weight %s", input,
             tg__conv_geom_str(gs, sizeof gs, &d.g, false), TG__SHAPE(s1, w));
    if (!tg__conv_check_grad_shape(fn, gy, (int64_t[]){n, oc, d.oh, d.ow}, against))
        return NULL;
    tg_tensor *dx = tg__new(ar, gy->dtype, 4, (int64_t[]){n, c, height, width});
    if (!dx || n * c == 0)
        return dx;
    if (winograd(dx, w, g)) {
        if (tg__winograd_conv2d_backward_input(ar, dx, gy, w, g) == TG_OK)
            return dx;
        give_back(ar, dx);
        return NULL;
    }
    plan p;
    make_plan(&p, gy->dtype, n, c, oc, &d, n);
    tg_tensor *wcopy;
    const tg_tensor *wd = dense(ar, w, tg_tensor_is_contiguous(w), &wcopy);
    size_t per_thread = p.tile + p.gtile;
    char *buf = wd ? tg__conv_scratch(fn, ar, (size_t)p.threads * per_thread) : NULL;
    if (!buf) {
        give_back(ar, wcopy);
        give_back(ar, dx);
        return NULL;
    }
    const char *wm = tg__ptr(wd);
    size_t image = (size_t)(c * height * width) * p.es;
    char *out = tg__ptr(dx);
#pragma omp parallel for schedule(static) num_threads(p.threads) if (p.threads > 1)
    for (int64_t i = 0; i < n; i++) {
        char *cols = buf + (size_t)omp_get_thread_num() * per_thread, *gt = cols + p.tile;
        char *dxi = out + (size_t)i * image;
        memset(dxi, 0, image);
        if (oc == 0)
            continue;
        for (int64_t r0 = 0; r0 < d.oh; r0 = tile_end(&p, r0)) {
            int64_t r1 = tile_end(&p, r0), t = (r1 - r0) * d.ow;
            gather_grad(&p, gt, gy, i, r0, r1);
            /* dcols [C*kh*kw, t] = W^T (W read through transposed strides) @ gy_i's tile */
            tg__gemm(p.dt, p.ck, t, oc, 1.0, wm, 1, p.ck, gt, p.ld, 1, 0.0, cols, t, 1);
            tg__col2im_tile(p.dt, dxi, cols, c, &d, r0, r1);
        }
    }
    tg__conv_scratch_free(ar, buf);
    give_back(ar, wcopy);
    return dx;
}

tg_tensor *tg_tensor_conv2d_backward_weight(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                            const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_conv2d_backward_weight";
    TG__CHECK_NULL(fn, gy && x);
    char input[TG__SHAPE_STR + 16], grad[TG__SHAPE_STR + 16], gs[160], against[400];
    tg__conv_dims d;
    if (!tg__conv_check_image(fn, "input", x, input, sizeof input) ||
        !tg__conv_check_image(fn, "gradient", gy, grad, sizeof grad) ||
        !tg__conv_check_geom(fn, g, false, input, x->shape[2], x->shape[3], &d) ||
        !tg__conv_check_size(fn, x->shape[1], &d, input))
        return NULL;
    if (gy->dtype != x->dtype)
        return TG__FAIL(TG_ERR_DTYPE, fn, "%s is %s, %s is %s", grad, tg_dtype_name(gy->dtype),
                        input, tg_dtype_name(x->dtype));
    int64_t n = x->shape[0], c = x->shape[1], oc = gy->shape[1];
    snprintf(against, sizeof against, "%s with %s", input,
             tg__conv_geom_str(gs, sizeof gs, &d.g, false));
    if (!tg__conv_check_grad_shape(fn, gy, (int64_t[]){n, oc, d.oh, d.ow}, against))
        return NULL;
    tg_tensor *dw = tg__new(ar, x->dtype, 4, (int64_t[]){oc, c, d.g.kh, d.g.kw});
    int64_t nparts = n < TG__CONV_PARTS ? n : TG__CONV_PARTS;
    if (!dw || tg_tensor_numel(dw) == 0)
        return dw;
    /* Winograd here needs only the input's channels: the output gradient's transform
     * is a fixed cost, so few output channels still gain (measured) */
    if (c >= WINOGRAD_MIN_CHANNELS && tg__winograd_applies(x, dw, g)) {
        if (tg__winograd_conv2d_backward_weight(ar, dw, gy, x, g) == TG_OK)
            return dw;
        give_back(ar, dw);
        return NULL;
    }
    if (nparts == 0) {
        tg_tensor_fill_(dw, 0);
        return dw;
    }
    plan p;
    make_plan(&p, x->dtype, n, c, oc, &d, nparts);
    size_t part = (size_t)(oc * p.ck) * p.es, per_thread = p.tile + p.gtile;
    char *buf = tg__conv_scratch(fn, ar, (size_t)p.threads * per_thread);
    /* one partial straight into dw */
    char *parts = buf && nparts > 1 ? tg__conv_scratch(fn, ar, (size_t)nparts * part) : NULL;
    if (!buf || (nparts > 1 && !parts)) {
        if (buf)
            tg__conv_scratch_free(ar, buf);
        give_back(ar, dw);
        return NULL;
    }
#pragma omp parallel for schedule(static) num_threads(p.threads) if (p.threads > 1)
    for (int64_t q = 0; q < nparts; q++) {
        char *cols = buf + (size_t)omp_get_thread_num() * per_thread, *gt = cols + p.tile;
        char *acc = nparts > 1 ? parts + (size_t)q * part : tg__ptr(dw);
        double beta = 0; /* the range's first product initialises its partial */
        for (int64_t i = q * n / nparts; i < (q + 1) * n / nparts; i++)
            for (int64_t r0 = 0; r0 < d.oh; r0 = tile_end(&p, r0)) {
                int64_t r1 = tile_end(&p, r0), t = (r1 - r0) * d.ow;
                tg__im2col_tile(cols, x, i, &d, r0, r1);
                gather_grad(&p, gt, gy, i, r0, r1);
                /* dW [OC, C*kh*kw] += gy_i's tile @ the tile's columns, transposed by strides */
                tg__gemm(p.dt, oc, p.ck, t, 1.0, gt, p.ld, 1, cols, 1, t, beta, acc, p.ck, 1);
                beta = 1;
            }
    }
    if (nparts > 1) { /* the partials in range order, summed in f64 */
        int64_t m = oc * p.ck;
        char *out = tg__ptr(dw);
        for (int64_t k = 0; k < m; k++) {
            double s = 0;
            for (int64_t q = 0; q < nparts; q++)
                s += tg__load(p.dt, parts + (size_t)q * part + (size_t)k * p.es);
            tg__store(p.dt, out + (size_t)k * p.es, s);
        }
        tg__conv_scratch_free(ar, parts);
    }
    tg__conv_scratch_free(ar, buf);
    return dw;
}
