/* tensor/batch_norm_kernels.h — batch norm's row and channel kernels, included by
 * tensor/batch_norm.c once per instruction set with FN(name) and TARGET defined (the
 * baseline x86-64 copy and an AVX2 one; tensor/isa.c chooses). Every sum keeps eight
 * lanes in a fixed order and the elementwise loops have no multiply-add to fuse, so
 * the copies give the same bits (tests/tensor/test_batch_norm.c compares them). */

/* The row kernels, one set per dtype T. The sums take a piece of a row (no more than
 * the open chunk has room for, see tg__sum): contiguous, in the reductions' own loop
 * (tg__sum8), else in one sequential loop, as the reductions' strided pieces are. gsums
 * is two sums over two inputs in tg__sum8's eight lanes each. */
#define DEFINE_ROWS(T, SUFFIX)                                                             \
    /* sum of x */                                                                         \
    TARGET static double FN(sum_##T)(int64_t n, const T *x, int64_t s)                                \
    {                                                                                      \
        if (s == 1)                                                                        \
            return tg__sum8_##SUFFIX(x, n, 0);                                             \
        double a = 0;                                                                      \
        for (int64_t i = 0; i < n; i++)                                                    \
            a += (double)x[i * s];                                                         \
        return a;                                                                          \
    }                                                                                      \
    /* sum of (x - m)^2 */                                                                 \
    TARGET static double FN(sqdev_##T)(int64_t n, const T *x, int64_t s, double m)                    \
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
    TARGET static void FN(affine_##T)(int64_t n, T *y, const T *x, int64_t s, T m, T k, T b)          \
    {                                                                                      \
        if (s == 1) {                                                                      \
            _Pragma("omp simd") for (int64_t i = 0; i < n; i++) y[i] = (x[i] - m) * k + b; \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                y[i] = (x[i * s] - m) * k + b;                                             \
        }                                                                                  \
    }                                                                                      \
    /* acc[0] += sum of g, acc[1] += sum of g * (x - m): eight lanes of each, as      \
     * tg__sum8, so that every instruction-set copy adds in the same order */          \
    TARGET static void FN(gsums_##T)(int64_t n, const T *g, int64_t gs, const T *x,        \
                                     int64_t xs, double m, double *acc)                    \
    {                                                                                      \
        double a[8] = {0}, b[8] = {0};                                                     \
        int64_t i = 0;                                                                     \
        if (gs == 1 && xs == 1) {                                                          \
            for (; i + 8 <= n; i += 8)                                                     \
                for (int j = 0; j < 8; j++) {                                              \
                    double gi = (double)g[i + j];                                          \
                    a[j] += gi;                                                            \
                    b[j] += gi * ((double)x[i + j] - m);                                   \
                }                                                                          \
        }                                                                                  \
        for (; i < n; i++) {                                                               \
            double gi = (double)g[i * gs];                                                 \
            a[0] += gi;                                                                    \
            b[0] += gi * ((double)x[i * xs] - m);                                          \
        }                                                                                  \
        acc[0] += ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));       \
        acc[1] += ((b[0] + b[1]) + (b[2] + b[3])) + ((b[4] + b[5]) + (b[6] + b[7]));       \
    }                                                                                      \
    /* dx = a * (g - gm) + b * (x - xm), dx contiguous */                                  \
    TARGET static void FN(dx_##T)(int64_t n, T *dx, const T *g, int64_t gs, const T *x, int64_t xs,   \
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
#undef DEFINE_ROWS

/* Channel c of x: sum(x) (moment 1) or sum((x - m)^2) (moment 2), by the library's
 * summation rule and with its reductions' own loop, so that for a channel of
 * contiguous planes the mean and the variance are tg_tensor_mean's and tg_tensor_var's
 * bits. The open chunk is a local: a channel of short rows (4x4 planes) costs little
 * more than a loop per row. */
TARGET static double FN(channel_sum)(const tg_tensor *x, const walk *wk, int64_t c, int moment, double m)
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
                chunk += moment == 1 ? FN(sum_float)(k, (const float *)p + i * xs, xs)
                                     : FN(sqdev_float)(k, (const float *)p + i * xs, xs, m);
            else
                chunk += moment == 1 ? FN(sum_double)(k, (const double *)p + i * xs, xs)
                                     : FN(sqdev_double)(k, (const double *)p + i * xs, xs, m);
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
TARGET static void FN(channel_moments)(const tg_tensor *x, const walk *wk, int64_t c, double *mean_out, double *ss_out)
{
    const int64_t M = x->shape[0] * x->shape[2] * x->shape[3];
    const double mean = FN(channel_sum)(x, wk, c, 1, 0) / (double)M; /* M == 0: NaN, the mean of nothing */
    *mean_out = mean;
    *ss_out = FN(channel_sum)(x, wk, c, 2, mean);
}

/* Channel c: sums[c] = sum(g), sums[C + c] = sum(g * xhat), from st (mean, var, invstd
 * rows of [3, C]); two lanes of one summation. */
TARGET static void FN(channel_grad_sums)(const tg_tensor *g, const tg_tensor *x, const walk *wk, const double *st,
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
                FN(gsums_float)(k, (const float *)gp + i * gs, gs, (const float *)xp + i * xs, xs, mean, chunk);
            else
                FN(gsums_double)(k, (const double *)gp + i * gs, gs, (const double *)xp + i * xs, xs, mean, chunk);
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

/* channel outputs */

/* Channel c of y from x with the statistics in st (rows mean, var, invstd of [3, C]). */
TARGET static void FN(normalize_channel)(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta, const walk *wk,
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
            FN(affine_float)(wk->len, (float *)out + yoff, (const float *)p, xs, (float)mean, (float)k,
                         (float)b);
        else
            FN(affine_double)(wk->len, (double *)out + yoff, (const double *)p, xs, mean, k, b);
    }
}

/* Channel c of dx from the channel's gradient sums sg = sum(g), sgxhat = sum(g * xhat)
 * over all `count` values the statistics cover. */
TARGET static void FN(channel_dx)(const tg_tensor *g, const tg_tensor *x, const tg_tensor *gamma, const walk *wk,
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
            FN(dx_float)(wk->len, (float *)out + off, (const float *)gp, gs, (const float *)xp, xs,
                     (float)gm, (float)a, (float)mean, (float)b);
        else
            FN(dx_double)(wk->len, (double *)out + off, (const double *)gp, gs, (const double *)xp, xs,
                      gm, a, mean, b);
    }
}

