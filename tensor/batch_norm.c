/* tensor/batch_norm.c — batch normalisation of images in training mode: the
 * per-channel statistics and normalisation, and the gradient's channel sums and input
 * gradient (autograd/ops_norm.c records them as one op, tg_batch_norm2d).
 *
 * x [N,C,H,W], gamma, beta [C]; per channel, over its M = N*H*W values:
 *   mean = sum(x) / M, var = sum((x - mean)^2) / M (biased; two passes, as tg_tensor_var),
 *   invstd = 1 / sqrt(var + eps), y = (x - mean) * (invstd * gamma) + beta.
 * backward from gy = dL/dy, with xhat = (x - mean) * invstd recomputed from x:
 *   dbeta = sum(gy), dgamma = sum(gy * xhat),
 *   dx = gamma * invstd / M * (M gy - sum(gy) - xhat sum(gy * xhat))
 *      = gamma * invstd * (gy - mean(gy)) - gamma * invstd^2 * sum(gy * xhat) / M * (x - mean)
 * (the second form: each term is a difference of nearby values, as precise as the
 * first and one pass).
 *
 * The composition from tensor ops keeps about five full-size tensors per layer and
 * passes over memory about ten times; here nothing full-size is kept but the output
 * (the statistics are an f64 [3, C] tensor), and the backward recomputes xhat from x,
 * reading gy and x twice: once for the channel sums, once to write dx.
 *
 * Work is split by channel: one thread takes a channel's sums and then writes its
 * output while the channel is still in its cache. Sums follow the library's rule
 * (tg__sum: f64, chunks of 128 values, chunk sums combined pairwise), the same for any
 * thread count. Elementwise results are computed in x's dtype, as the composition
 * computes them. */
#include "internal.h"

#include <math.h>

/* ------------------------------------------------------------------ channel walks
 * A channel of an [N,C,H,W] view is walked as `rows` rows of `len` elements: one row a
 * plane when every operand's plane is contiguous (the usual case), else one row per
 * (n, h), each operand with its own element stride along the row. */
typedef struct walk {
    int64_t rows, len, per_plane; /* per_plane: rows in one plane (1 or H) */
    bool by_row;                  /* rows are (n, h), strided along W */
} walk;

static bool plane_contiguous(const tg_tensor *t)
{
    return (t->shape[3] == 1 || t->strides[3] == 1) &&
           (t->shape[2] == 1 || t->strides[2] == t->shape[3]);
}

static walk walk_of(const tg_tensor *a, const tg_tensor *b)
{
    const int64_t n = a->shape[0], h = a->shape[2], w = a->shape[3];
    if (plane_contiguous(a) && (!b || plane_contiguous(b)))
        return (walk){n, h * w, 1, false};
    return (walk){n * h, w, h, true};
}

/* Address of row r of channel c of t (whose dtype has es bytes), and its element stride. */
static char *row_ptr(const tg_tensor *t, const walk *wk, int64_t c, int64_t r, size_t es)
{
    int64_t n = r / wk->per_plane, h = r % wk->per_plane;
    int64_t off = n * t->strides[0] + c * t->strides[1] + (wk->by_row ? h * t->strides[2] : 0);
    return tg__ptr(t) + off * (int64_t)es;
}

static int64_t row_stride(const tg_tensor *t, const walk *wk)
{
    return wk->by_row ? t->strides[3] : 1;
}

/* Element offset of row r of channel c in a contiguous [N,C,H,W] output (y, dx) with C
 * channels of `plane` elements: (n*C + c) * plane + h*W. */
static int64_t out_offset(const walk *wk, int64_t C, int64_t plane, int64_t c, int64_t r)
{
    return (r / wk->per_plane * C + c) * plane + r % wk->per_plane * wk->len;
}

/* element i of a [C] tensor, any stride, f32 or f64 */
static double at(const tg_tensor *t, int64_t i)
{
    return tg__load(t->dtype, tg__ptr(t) + i * t->strides[0] * (int64_t)tg_dtype_size(t->dtype));
}

/* The kernels, compiled twice: for baseline x86-64 and for AVX2 (GCC's target
 * attribute), one copy chosen once per process by tensor/isa.c (cpuid, or TG_ISA).
 * Batch norm reads each channel from cache a second and third time, so its loops are
 * bound by arithmetic more than by memory: the f32 -> f64 conversions and sums went
 * from 125 to about 100 ms of a VGG_38 step (BN before, 1 thread, Zen 5) with AVX2.
 * An AVX-512 copy measured the same as AVX2, so CPUs with AVX-512 run the AVX2 one. */
#define FN_CAT2(name, isa) name##_##isa
#define FN_CAT(name, isa) FN_CAT2(name, isa)
#define FN(name) FN_CAT(name, BN_ISA)

#define TARGET
#define BN_ISA generic
#include "batch_norm_kernels.h"
#undef BN_ISA
#undef TARGET
#if TG__ISA_X86
#define TARGET __attribute__((target("avx2")))
#define BN_ISA avx2
#include "batch_norm_kernels.h"
#undef BN_ISA
#undef TARGET
#endif

typedef struct bn_kernels {
    void (*moments)(const tg_tensor *x, const walk *wk, int64_t c, double *mean_out, double *ss_out);
    void (*grad_sums)(const tg_tensor *g, const tg_tensor *x, const walk *wk, const double *st, int64_t c,
                      double *sums);
    void (*normalize)(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta, const walk *wk,
                      int64_t c, const double *st, tg_tensor *y);
    void (*dx)(const tg_tensor *g, const tg_tensor *x, const tg_tensor *gamma, const walk *wk,
               const double *st, int64_t c, double sg, double sgxhat, double count, tg_tensor *dx);
} bn_kernels;

static const bn_kernels *chosen_kernels(void)
{
    static const bn_kernels generic = {channel_moments_generic, channel_grad_sums_generic,
                                       normalize_channel_generic, channel_dx_generic};
#if TG__ISA_X86
    static const bn_kernels avx2 = {channel_moments_avx2, channel_grad_sums_avx2, normalize_channel_avx2,
                                    channel_dx_avx2};
    if (tg__isa_chosen() != TG__ISA_GENERIC)
        return &avx2;
#endif
    return &generic;
}

/* ------------------------------------------------------------------ checks */

/* x: f32 or f64, 4-D. */
static bool check_x(const char *fn, const tg_tensor *x)
{
    char xs[TG__SHAPE_STR];
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "x %s is %s (f32 or f64)", TG__SHAPE(xs, x), tg_dtype_name(x->dtype));
        return false;
    }
    if (x->ndim != 4) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "x %s must be 4-D [N,C,H,W]", TG__SHAPE(xs, x));
        return false;
    }
    return true;
}

/* p (named `name`): [C], one value per channel of x, in x's dtype. */
static bool check_per_channel(const char *fn, const char *name, const tg_tensor *p, const tg_tensor *x)
{
    char xs[TG__SHAPE_STR], ps[TG__SHAPE_STR];
    if (p->ndim != 1 || p->shape[0] != x->shape[1]) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s %s must be [%lld], one value per channel of x %s", name,
                     TG__SHAPE(ps, p), (long long)x->shape[1], TG__SHAPE(xs, x));
        return false;
    }
    if (p->dtype != x->dtype) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "%s is %s, x is %s", name, tg_dtype_name(p->dtype),
                     tg_dtype_name(x->dtype));
        return false;
    }
    return true;
}

/* t (named `name`): f64 [rows, C]. */
static bool check_table(const char *fn, const char *name, const tg_tensor *t, int64_t rows, const tg_tensor *x)
{
    char ts[TG__SHAPE_STR], xs[TG__SHAPE_STR];
    if (t->dtype != TG_F64 || t->ndim != 2 || t->shape[0] != rows || t->shape[1] != x->shape[1]) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s %s %s must be f64 [%lld,%lld] for x %s", name,
                     tg_dtype_name(t->dtype), TG__SHAPE(ts, t), (long long)rows, (long long)x->shape[1],
                     TG__SHAPE(xs, x));
        return false;
    }
    return true;
}

/* A checked table's values as one contiguous array: the table itself, or a contiguous
 * heap copy in *copy (tg_tensor_free it; NULL when none was needed); NULL + error when
 * the copy cannot be made. */
static const double *table_values(const tg_tensor *t, tg_tensor **copy)
{
    *copy = NULL;
    if (tg_tensor_is_contiguous(t))
        return (const double *)tg__ptr(t);
    *copy = tg_tensor_contiguous(NULL, t);
    return *copy ? (const double *)tg__ptr(*copy) : NULL;
}

/* gy: x's shape and dtype. */
static bool check_grad(const char *fn, const tg_tensor *gy, const tg_tensor *x)
{
    char gs[TG__SHAPE_STR], xs[TG__SHAPE_STR];
    if (!tg_tensor_same_shape(gy, x) || gy->dtype != x->dtype) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "gy %s %s must have x's shape and dtype, %s %s",
                     tg_dtype_name(gy->dtype), TG__SHAPE(gs, gy), tg_dtype_name(x->dtype), TG__SHAPE(xs, x));
        return false;
    }
    return true;
}

static int64_t values_per_channel(const tg_tensor *x) { return x->shape[0] * x->shape[2] * x->shape[3]; }

/* ------------------------------------------------------------------ public */

tg_tensor *tg_tensor_batch_norm2d(tg_arena *ar, const tg_tensor *x, const tg_tensor *gamma,
                                  const tg_tensor *beta, double eps, tg_tensor **stats)
{
    const char *fn = "tg_tensor_batch_norm2d";
    if (stats)
        *stats = NULL;
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, gamma);
    TG__CHECK_NULL(fn, beta);
    if (!check_x(fn, x) || !check_per_channel(fn, "gamma", gamma, x) || !check_per_channel(fn, "beta", beta, x))
        return NULL;
    if (!(eps >= 0))
        return TG__FAIL(TG_ERR_ARG, fn, "eps = %g must be >= 0", eps);
    const int64_t C = x->shape[1], M = values_per_channel(x);
    tg_tensor *st = tg__new(ar, TG_F64, TG_DIMS(3, C));
    tg_tensor *y = st ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (!y) {
        tg_tensor_free(st);
        return NULL;
    }
    double *sv = (double *)tg__ptr(st);
    const walk wk = walk_of(x, NULL);
    const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
    for (int64_t c = 0; c < C; c++) {
        double mean, ss;
        k->moments(x, &wk, c, &mean, &ss);
        sv[c] = mean;
        sv[C + c] = ss / (double)M;
        sv[2 * C + c] = 1 / sqrt(sv[C + c] + eps);
        k->normalize(x, gamma, beta, &wk, c, sv, y);
    }
    if (stats)
        *stats = st;
    else
        tg_tensor_free(st);
    return y;
}

tg_tensor *tg_tensor_batch_norm2d_moments(tg_arena *ar, const tg_tensor *x)
{
    const char *fn = "tg_tensor_batch_norm2d_moments";
    TG__CHECK_NULL(fn, x);
    if (!check_x(fn, x))
        return NULL;
    const int64_t C = x->shape[1], M = values_per_channel(x);
    tg_tensor *mo = tg__new(ar, TG_F64, TG_DIMS(2, C));
    if (!mo)
        return NULL;
    double *mv = (double *)tg__ptr(mo);
    const walk wk = walk_of(x, NULL);
    const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
    for (int64_t c = 0; c < C; c++)
        k->moments(x, &wk, c, &mv[c], &mv[C + c]);
    return mo;
}

tg_tensor *tg_tensor_batch_norm2d_normalize(tg_arena *ar, const tg_tensor *x, const tg_tensor *gamma,
                                            const tg_tensor *beta, const tg_tensor *stats)
{
    const char *fn = "tg_tensor_batch_norm2d_normalize";
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, gamma);
    TG__CHECK_NULL(fn, beta);
    TG__CHECK_NULL(fn, stats);
    if (!check_x(fn, x) || !check_per_channel(fn, "gamma", gamma, x) ||
        !check_per_channel(fn, "beta", beta, x) || !check_table(fn, "stats", stats, 3, x))
        return NULL;
    const int64_t C = x->shape[1], M = values_per_channel(x);
    tg_tensor *buf;
    const double *sv = table_values(stats, &buf);
    tg_tensor *y = sv ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (y) {
        const walk wk = walk_of(x, NULL);
        const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            k->normalize(x, gamma, beta, &wk, c, sv, y);
    }
    tg_tensor_free(buf);
    return y;
}

tg_tensor *tg_tensor_batch_norm2d_backward_sums(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                                const tg_tensor *stats)
{
    const char *fn = "tg_tensor_batch_norm2d_backward_sums";
    TG__CHECK_NULL(fn, gy);
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, stats);
    if (!check_x(fn, x) || !check_grad(fn, gy, x) || !check_table(fn, "stats", stats, 3, x))
        return NULL;
    const int64_t C = x->shape[1], M = values_per_channel(x);
    tg_tensor *buf;
    const double *stv = table_values(stats, &buf);
    tg_tensor *sums = stv ? tg__new(ar, TG_F64, TG_DIMS(2, C)) : NULL;
    if (sums) {
        double *sv = (double *)tg__ptr(sums);
        const walk wk = walk_of(x, gy);
        const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            k->grad_sums(gy, x, &wk, stv, c, sv);
    }
    tg_tensor_free(buf);
    return sums;
}

tg_tensor *tg_tensor_batch_norm2d_backward_input(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                                 const tg_tensor *gamma, const tg_tensor *stats,
                                                 const tg_tensor *sums, double count)
{
    const char *fn = "tg_tensor_batch_norm2d_backward_input";
    TG__CHECK_NULL(fn, gy);
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, gamma);
    TG__CHECK_NULL(fn, stats);
    TG__CHECK_NULL(fn, sums);
    if (!check_x(fn, x) || !check_grad(fn, gy, x) || !check_per_channel(fn, "gamma", gamma, x) ||
        !check_table(fn, "stats", stats, 3, x) || !check_table(fn, "sums", sums, 2, x))
        return NULL;
    const int64_t C = x->shape[1], M = values_per_channel(x);
    if (M > 0 && !(count >= (double)M))
        return TG__FAIL(TG_ERR_ARG, fn, "count = %g, fewer than the %lld values per channel of x",
                        count, (long long)M);
    tg_tensor *buf1, *buf2 = NULL;
    const double *stv = table_values(stats, &buf1), *suv = stv ? table_values(sums, &buf2) : NULL;
    tg_tensor *dx = suv ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (dx && M > 0) {
        const walk wk = walk_of(x, gy);
        const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            k->dx(gy, x, gamma, &wk, stv, c, suv[c], suv[C + c], count, dx);
    }
    tg_tensor_free(buf1);
    tg_tensor_free(buf2);
    return dx;
}

tg_tensor *tg_tensor_batch_norm2d_backward(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                           const tg_tensor *gamma, const tg_tensor *stats, tg_tensor **sums)
{
    const char *fn = "tg_tensor_batch_norm2d_backward";
    if (sums)
        *sums = NULL;
    TG__CHECK_NULL(fn, gy);
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, gamma);
    TG__CHECK_NULL(fn, stats);
    if (!check_x(fn, x) || !check_grad(fn, gy, x) || !check_per_channel(fn, "gamma", gamma, x) ||
        !check_table(fn, "stats", stats, 3, x))
        return NULL;
    const int64_t C = x->shape[1], M = values_per_channel(x);
    tg_tensor *buf;
    const double *stv = table_values(stats, &buf);
    tg_tensor *su = stv ? tg__new(ar, TG_F64, TG_DIMS(2, C)) : NULL;
    tg_tensor *dx = su ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (dx) {
        double *sv = (double *)tg__ptr(su);
        const walk wk = walk_of(x, gy);
        const bn_kernels *k = chosen_kernels();
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++) {
            k->grad_sums(gy, x, &wk, stv, c, sv);
            if (M > 0)
                k->dx(gy, x, gamma, &wk, stv, c, sv[c], sv[C + c], (double)M, dx);
        }
    }
    tg_tensor_free(buf);
    if (!dx || !sums)
        tg_tensor_free(su);
    else
        *sums = su;
    return dx;
}
