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

/* The row kernels, one set per dtype T. The sums take a piece of a row (no more than
 * the open chunk has room for, see tg__sum): contiguous, in the reductions' own loop
 * (tg__sum8), else in one sequential loop, as the reductions' strided pieces are. gsums
 * is two sums over two inputs, which `omp simd reduction` vectorises in an order fixed
 * at compile time (not by the thread count). */
#define DEFINE_ROWS(T, SUFFIX)                                                             \
    /* sum of x */                                                                         \
    static double sum_##T(int64_t n, const T *x, int64_t s)                                \
    {                                                                                      \
        if (s == 1)                                                                        \
            return tg__sum8_##SUFFIX(x, n, 0);                                             \
        double a = 0;                                                                      \
        for (int64_t i = 0; i < n; i++)                                                    \
            a += (double)x[i * s];                                                         \
        return a;                                                                          \
    }                                                                                      \
    /* sum of (x - m)^2 */                                                                 \
    static double sqdev_##T(int64_t n, const T *x, int64_t s, double m)                    \
    {                                                                                      \
        if (s == 1)                                                                        \
            return tg__sqdev8_##SUFFIX(x, n, m);                                           \
        double a = 0;                                                                      \
        for (int64_t i = 0; i < n; i++) {                                                  \
            double d = (double)x[i * s] - m;                                               \
            a += d * d;                                                                    \
        }                                                                                  \
        return a;                                                                          \
    }                                                                                      \
    /* y = (x - m) * k + b, y contiguous */                                                \
    static void affine_##T(int64_t n, T *y, const T *x, int64_t s, T m, T k, T b)          \
    {                                                                                      \
        if (s == 1) {                                                                      \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * k + b; \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                y[i] = (x[i * s] - m) * k + b;                                             \
        }                                                                                  \
    }                                                                                      \
    /* acc[0] += sum of g, acc[1] += sum of g * (x - m) */                                 \
    static void gsums_##T(int64_t n, const T *g, int64_t gs, const T *x, int64_t xs,       \
                          double m, double *acc)                                           \
    {                                                                                      \
        double a = 0, b = 0;                                                               \
        if (gs == 1 && xs == 1) {                                                          \
            _Pragma("omp simd reduction(+ : a, b)") for (int64_t i = 0; i < n; i++)        \
            {                                                                              \
                double gi = (double)g[i];                                                  \
                a += gi;                                                                   \
                b += gi * ((double)x[i] - m);                                              \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                double gi = (double)g[i * gs];                                             \
                a += gi;                                                                   \
                b += gi * ((double)x[i * xs] - m);                                         \
            }                                                                              \
        }                                                                                  \
        acc[0] += a;                                                                       \
        acc[1] += b;                                                                       \
    }                                                                                      \
    /* dx = a * (g - gm) + b * (x - xm), dx contiguous */                                  \
    static void dx_##T(int64_t n, T *dx, const T *g, int64_t gs, const T *x, int64_t xs,   \
                       T gm, T a, T xm, T b)                                               \
    {                                                                                      \
        if (gs == 1 && xs == 1) {                                                          \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++)                            \
                dx[i] = a * (g[i] - gm) + b * (x[i] - xm);                                 \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                dx[i] = a * (g[i * gs] - gm) + b * (x[i * xs] - xm);                       \
        }                                                                                  \
    }
DEFINE_ROWS(float, f32)
DEFINE_ROWS(double, f64)

/* element i of a [C] tensor, any stride, f32 or f64 */
static double at(const tg_tensor *t, int64_t i)
{
    return tg__load(t->dtype, tg__ptr(t) + i * t->strides[0] * (int64_t)tg_dtype_size(t->dtype));
}

/* ------------------------------------------------------------------ channel sums */

/* Channel c of x: sum(x) (moment 1) or sum((x - m)^2) (moment 2), by the library's
 * summation rule and with its reductions' own loop, so that for a channel of
 * contiguous planes the mean and the variance are tg_tensor_mean's and tg_tensor_var's
 * bits. The open chunk is a local: a channel of short rows (4x4 planes) costs little
 * more than a loop per row. */
static double channel_sum(const tg_tensor *x, const walk *wk, int64_t c, int moment, double m)
{
    const int64_t xs = row_stride(x, wk);
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    double stack[TG__SUM_LEVELS], chunk = 0, total;
    int64_t fill = 0;
    tg__sum s;
    tg__sum_init(&s, 1, stack);
    for (int64_t r = 0; r < wk->rows; r++) {
        const char *p = row_ptr(x, wk, c, r, es);
        for (int64_t i = 0; i < wk->len;) {
            int64_t k = TG__SUM_CHUNK - fill < wk->len - i ? TG__SUM_CHUNK - fill : wk->len - i;
            if (f32)
                chunk += moment == 1 ? sum_float(k, (const float *)p + i * xs, xs)
                                     : sqdev_float(k, (const float *)p + i * xs, xs, m);
            else
                chunk += moment == 1 ? sum_double(k, (const double *)p + i * xs, xs)
                                     : sqdev_double(k, (const double *)p + i * xs, xs, m);
            i += k;
            if ((fill += k) == TG__SUM_CHUNK) {
                tg__sum_push(&s, &chunk);
                chunk = 0;
                fill = 0;
            }
        }
    }
    if (fill > 0)
        tg__sum_push(&s, &chunk);
    tg__sum_result(&s, &total);
    return total;
}

/* Channel c's mean and sum of squared deviations from it, over this batch. */
static void channel_moments(const tg_tensor *x, const walk *wk, int64_t c, double *mean_out, double *ss_out)
{
    const int64_t M = x->shape[0] * x->shape[2] * x->shape[3];
    const double mean = channel_sum(x, wk, c, 1, 0) / (double)M; /* M == 0: NaN, the mean of nothing */
    *mean_out = mean;
    *ss_out = channel_sum(x, wk, c, 2, mean);
}

/* Channel c: sums[c] = sum(g), sums[C + c] = sum(g * xhat), from st (mean, var, invstd
 * rows of [3, C]); two lanes of one summation. */
static void channel_grad_sums(const tg_tensor *g, const tg_tensor *x, const walk *wk, const double *st,
                              int64_t c, double *sums)
{
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    const int64_t xs = row_stride(x, wk), gs = row_stride(g, wk);
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    const double mean = st[c], invstd = st[2 * C + c];
    double stack[2 * TG__SUM_LEVELS], chunk[2] = {0, 0}, total[2]; /* sum(g), sum(g * (x - mean)) */
    int64_t fill = 0;
    tg__sum s;
    tg__sum_init(&s, 2, stack);
    for (int64_t r = 0; r < wk->rows; r++) {
        const char *gp = row_ptr(g, wk, c, r, es), *xp = row_ptr(x, wk, c, r, es);
        for (int64_t i = 0; i < wk->len;) {
            int64_t k = TG__SUM_CHUNK - fill < wk->len - i ? TG__SUM_CHUNK - fill : wk->len - i;
            if (f32)
                gsums_float(k, (const float *)gp + i * gs, gs, (const float *)xp + i * xs, xs, mean, chunk);
            else
                gsums_double(k, (const double *)gp + i * gs, gs, (const double *)xp + i * xs, xs, mean, chunk);
            i += k;
            if ((fill += k) == TG__SUM_CHUNK) {
                tg__sum_push(&s, chunk);
                chunk[0] = chunk[1] = 0;
                fill = 0;
            }
        }
    }
    if (fill > 0)
        tg__sum_push(&s, chunk);
    tg__sum_result(&s, total);
    sums[c] = total[0];
    sums[C + c] = M ? total[1] * invstd : 0; /* M == 0: a sum of nothing, not 0 * NaN */
}

/* ------------------------------------------------------------------ channel outputs */

/* Channel c of y from x with the statistics in st (rows mean, var, invstd of [3, C]). */
static void normalize_channel(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta, const walk *wk,
                              int64_t c, const double *st, tg_tensor *y)
{
    const int64_t C = x->shape[1], plane = x->shape[2] * x->shape[3];
    const int64_t xs = row_stride(x, wk);
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    const double mean = st[c], invstd = st[2 * C + c];
    const double k = invstd * at(gamma, c), b = at(beta, c);
    char *out = tg__ptr(y);
    for (int64_t r = 0; r < wk->rows; r++) {
        int64_t yoff = out_offset(wk, C, plane, c, r);
        const char *p = row_ptr(x, wk, c, r, es);
        if (f32)
            affine_float(wk->len, (float *)out + yoff, (const float *)p, xs, (float)mean, (float)k,
                         (float)b);
        else
            affine_double(wk->len, (double *)out + yoff, (const double *)p, xs, mean, k, b);
    }
}

/* Channel c of dx from the channel's gradient sums sg = sum(g), sgxhat = sum(g * xhat)
 * over all `count` values the statistics cover. */
static void channel_dx(const tg_tensor *g, const tg_tensor *x, const tg_tensor *gamma, const walk *wk,
                       const double *st, int64_t c, double sg, double sgxhat, double count, tg_tensor *dx)
{
    const int64_t C = x->shape[1];
    const int64_t xs = row_stride(x, wk), gs = row_stride(g, wk), plane = x->shape[2] * x->shape[3];
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    const double mean = st[c], invstd = st[2 * C + c];
    const double gm = sg / count, a = at(gamma, c) * invstd, b = -a * invstd * sgxhat / count;
    char *out = tg__ptr(dx);
    for (int64_t r = 0; r < wk->rows; r++) {
        int64_t off = out_offset(wk, C, plane, c, r);
        const char *gp = row_ptr(g, wk, c, r, es), *xp = row_ptr(x, wk, c, r, es);
        if (f32)
            dx_float(wk->len, (float *)out + off, (const float *)gp, gs, (const float *)xp, xs,
                     (float)gm, (float)a, (float)mean, (float)b);
        else
            dx_double(wk->len, (double *)out + off, (const double *)gp, gs, (const double *)xp, xs,
                      gm, a, mean, b);
    }
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

/* A checked table's values as one contiguous array, copied from any layout into buf
 * (rows * C doubles from the allocator hook; the caller tg__frees it) unless already
 * contiguous; NULL + error when the copy cannot be made. */
static const double *table_values(const tg_tensor *t, double **buf)
{
    *buf = NULL;
    if (tg_tensor_is_contiguous(t))
        return (const double *)tg__ptr(t);
    const int64_t rows = t->shape[0], C = t->shape[1];
    *buf = tg__alloc((size_t)(rows * C > 0 ? rows * C : 1) * sizeof(double), 64);
    for (int64_t r = 0; *buf && r < rows; r++)
        for (int64_t c = 0; c < C; c++)
            (*buf)[r * C + c] = *(const double *)(tg__ptr(t) + (r * t->strides[0] + c * t->strides[1]) * 8);
    return *buf;
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
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
    for (int64_t c = 0; c < C; c++) {
        double mean, ss;
        channel_moments(x, &wk, c, &mean, &ss);
        sv[c] = mean;
        sv[C + c] = ss / (double)M;
        sv[2 * C + c] = 1 / sqrt(sv[C + c] + eps);
        normalize_channel(x, gamma, beta, &wk, c, sv, y);
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
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
    for (int64_t c = 0; c < C; c++)
        channel_moments(x, &wk, c, &mv[c], &mv[C + c]);
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
    double *buf;
    const double *sv = table_values(stats, &buf);
    tg_tensor *y = sv ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (y) {
        const walk wk = walk_of(x, NULL);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            normalize_channel(x, gamma, beta, &wk, c, sv, y);
    }
    tg__free(buf);
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
    double *buf;
    const double *stv = table_values(stats, &buf);
    tg_tensor *sums = stv ? tg__new(ar, TG_F64, TG_DIMS(2, C)) : NULL;
    if (sums) {
        double *sv = (double *)tg__ptr(sums);
        const walk wk = walk_of(x, gy);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            channel_grad_sums(gy, x, &wk, stv, c, sv);
    }
    tg__free(buf);
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
    double *buf1, *buf2 = NULL;
    const double *stv = table_values(stats, &buf1), *suv = stv ? table_values(sums, &buf2) : NULL;
    tg_tensor *dx = suv ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (dx && M > 0) {
        const walk wk = walk_of(x, gy);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            channel_dx(gy, x, gamma, &wk, stv, c, suv[c], suv[C + c], count, dx);
    }
    tg__free(buf1);
    tg__free(buf2);
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
    double *buf;
    const double *stv = table_values(stats, &buf);
    tg_tensor *su = stv ? tg__new(ar, TG_F64, TG_DIMS(2, C)) : NULL;
    tg_tensor *dx = su ? tg__new(ar, x->dtype, 4, x->shape) : NULL;
    if (dx) {
        double *sv = (double *)tg__ptr(su);
        const walk wk = walk_of(x, gy);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++) {
            channel_grad_sums(gy, x, &wk, stv, c, sv);
            if (M > 0)
                channel_dx(gy, x, gamma, &wk, stv, c, sv[c], sv[C + c], (double)M, dx);
        }
    }
    tg__free(buf);
    if (!dx || !sums)
        tg_tensor_free(su);
    else
        *sums = su;
    return dx;
}
