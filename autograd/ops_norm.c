/* autograd/ops_norm.c — batch normalisation in training mode as one op, forward and
 * backward side by side.
 *
 * nn's batch norm composed from primitives (mean, var, add_scalar, rsqrt, sub, mul,
 * mul, add) keeps about five full-size tensors per layer and passes over memory about
 * ten times, forward and backward. Here the forward keeps nothing full-size but its
 * output (the per-channel mean and 1/sqrt(var + eps) go in the record's params), and
 * the backward recomputes xhat from x, reading g and x twice: once for the channel
 * sums, once to write dx.
 *
 * Work is split by channel: each channel's statistics and sums are taken by one thread
 * in one fixed order, so results are bitwise the same for any thread count. Sums are
 * accumulated in f64, as the library's reductions are; elementwise results are
 * computed in x's dtype, as the composition computes them. */
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
    return (char *)tg_tensor_data(t) + off * (int64_t)es;
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

/* The row kernels, one set per dtype T. Sums run in double; `omp simd reduction` lets
 * gcc vectorise them in an order fixed at compile time (not by the thread count). */
#define DEFINE_ROWS(T)                                                                     \
    /* sum of x */                                                                         \
    static double sum_##T(int64_t n, const T *x, int64_t s)                                \
    {                                                                                      \
        double acc = 0;                                                                    \
        if (s == 1) {                                                                      \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < n; i++)         \
                acc += (double)x[i];                                                       \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++)                                                \
                acc += (double)x[i * s];                                                   \
        }                                                                                  \
        return acc;                                                                        \
    }                                                                                      \
    /* sum of (x - m)^2 */                                                                 \
    static double sqdev_##T(int64_t n, const T *x, int64_t s, double m)                    \
    {                                                                                      \
        double acc = 0;                                                                    \
        if (s == 1) {                                                                      \
            _Pragma("omp simd reduction(+ : acc)") for (int64_t i = 0; i < n; i++)         \
            {                                                                              \
                double d = (double)x[i] - m;                                               \
                acc += d * d;                                                              \
            }                                                                              \
        } else {                                                                           \
            for (int64_t i = 0; i < n; i++) {                                              \
                double d = (double)x[i * s] - m;                                           \
                acc += d * d;                                                              \
            }                                                                              \
        }                                                                                  \
        return acc;                                                                        \
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
    /* *sg += sum of g, *sgx += sum of g * (x - m) */                                      \
    static void gsums_##T(int64_t n, const T *g, int64_t gs, const T *x, int64_t xs,       \
                          double m, double *sg, double *sgx)                               \
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
        *sg += a;                                                                          \
        *sgx += b;                                                                         \
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
DEFINE_ROWS(float)
DEFINE_ROWS(double)

/* element i of a [C] tensor of dtype dt, any stride */
static double at(const tg_tensor *t, int64_t i)
{
    const char *p = (const char *)tg_tensor_data(t) + i * t->strides[0] * (int64_t)tg_dtype_size(t->dtype);
    return t->dtype == TG_F32 ? (double)*(const float *)p : *(const double *)p;
}

static void put(tg_tensor *t, int64_t i, double v)
{
    if (t->dtype == TG_F32)
        ((float *)tg_tensor_data(t))[i] = (float)v;
    else
        ((double *)tg_tensor_data(t))[i] = v;
}

/* ------------------------------------------------------------------ batch_norm2d
 * x [N,C,H,W], gamma, beta [C]; per channel, over M = N*H*W values:
 *   mean = sum(x) / M, var = sum((x - mean)^2) / M (biased; two passes, as tg_tensor_var),
 *   invstd = 1 / sqrt(var + eps), y = (x - mean) * (invstd * gamma) + beta.
 * backward, with xhat = (x - mean) * invstd recomputed from x:
 *   dbeta = sum(g), dgamma = sum(g * xhat),
 *   dx = gamma * invstd / M * (M g - sum(g) - xhat sum(g * xhat))
 *      = gamma * invstd * (g - mean(g)) - gamma * invstd^2 * sum(g * xhat) / M * (x - mean)
 * (the second form: each term is a difference of nearby values, as precise as the
 * first and one pass). */
typedef struct batch_norm_params {
    double eps;
    /* the caller's out-pointers for the batch statistics (may be NULL); forward fills
     * them and clears these, so the record keeps no pointer into the caller's frame */
    tg_tensor **mean_out, **var_out;
    tg_tensor *stats; /* set by forward: f64 [3, C], per channel the mean, the biased
                       * variance and invstd */
    double count;      /* values per channel the statistics are over: M, or every
                        * process's M together under a tg_stat_sync */
    bool synced;       /* forward ran under a tg_stat_sync: backward sums across processes */
} batch_norm_params;

/* false + error naming tg_batch_norm2d unless the inputs fit together. */
static bool check_inputs(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta, double eps)
{
    char xs[160], ps[160];
    tg_shape_str(xs, sizeof xs, x->ndim, x->shape);
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_set_error_in(TG_ERR_DTYPE, "tg_batch_norm2d", "x %s is %s (f32 or f64)", xs, tg_dtype_name(x->dtype));
        return false;
    }
    if (x->ndim != 4) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_batch_norm2d", "x %s must be 4-D [N,C,H,W]", xs);
        return false;
    }
    const tg_tensor *p[2] = {gamma, beta};
    for (int i = 0; i < 2; i++) {
        const char *name = i ? "beta" : "gamma";
        tg_shape_str(ps, sizeof ps, p[i]->ndim, p[i]->shape);
        if (p[i]->ndim != 1 || p[i]->shape[0] != x->shape[1]) {
            tg_set_error_in(TG_ERR_SHAPE, "tg_batch_norm2d", "%s %s must be [%lld], one value per channel "
                         "of x %s", name, ps, (long long)x->shape[1], xs);
            return false;
        }
        if (p[i]->dtype != x->dtype) {
            tg_set_error_in(TG_ERR_DTYPE, "tg_batch_norm2d", "%s is %s, x is %s", name,
                         tg_dtype_name(p[i]->dtype), tg_dtype_name(x->dtype));
            return false;
        }
    }
    if (!(eps >= 0)) {
        tg_set_error_in(TG_ERR_ARG, "tg_batch_norm2d", "eps = %g must be >= 0", eps);
        return false;
    }
    return true;
}


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
    char *out = tg_tensor_data(y);
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

/* Channel c's mean and sum of squared deviations from it, over this batch. */
static void channel_moments(const tg_tensor *x, const walk *wk, int64_t c, double *mean_out, double *ss_out)
{
    const int64_t M = x->shape[0] * x->shape[2] * x->shape[3];
    const int64_t xs = row_stride(x, wk);
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    double s = 0, ss = 0;
    for (int64_t r = 0; r < wk->rows; r++) {
        const char *p = row_ptr(x, wk, c, r, es);
        s += f32 ? sum_float(wk->len, (const float *)p, xs) : sum_double(wk->len, (const double *)p, xs);
    }
    const double mean = s / (double)M; /* M == 0: NaN, as the mean of nothing */
    for (int64_t r = 0; r < wk->rows; r++) {
        const char *p = row_ptr(x, wk, c, r, es);
        ss += f32 ? sqdev_float(wk->len, (const float *)p, xs, mean)
                  : sqdev_double(wk->len, (const double *)p, xs, mean);
    }
    *mean_out = mean;
    *ss_out = ss;
}

/* Channel c: its statistics into st (rows mean, var, invstd of [3, C]), its output into y. */
static void forward_channel(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta,
                            double eps, const walk *wk, int64_t c, double *st, tg_tensor *y)
{
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    double mean, ss;
    channel_moments(x, wk, c, &mean, &ss);
    st[c] = mean;
    st[C + c] = ss / (double)M;
    st[2 * C + c] = 1 / sqrt(st[C + c] + eps);
    normalize_channel(x, gamma, beta, wk, c, st, y);
}

/* Under a tg_stat_sync: every process's count, channel means and sums of squared
 * deviations, gathered and combined in process order (Chan, Golub and LeVeque's
 * pairwise update: no sum of squares, so a large mean costs no precision), into st
 * and p->count. False + the tape's error if the gather fails. */
static bool synced_statistics(tg_tape *tp, const tg_stat_sync *sync, const tg_tensor *x, const walk *wk,
                              batch_norm_params *p, double *st)
{
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    const int n = (int)(1 + 2 * C);
    if (sync->size < 1 || 2 * C + 1 > INT32_MAX / (sync->size > 0 ? sync->size : 1)) {
        tg_tape_fail_in(tp, TG_ERR_ARG, "tg_batch_norm2d", "synchronised statistics over %d processes of %lld channels",
                     sync->size, (long long)C);
        return false;
    }
    tg_arena *ar = TG__AR(tp);
    tg_tensor *buf = tg_tensor_empty(ar, TG_F64, TG_DIMS((int64_t)n * (1 + sync->size)));
    if (!buf) {
        tg_tape_fail_in(tp, tg_last_status(), "tg_batch_norm2d", "%s", tg_last_error());
        return false;
    }
    double *mine = tg_tensor_data(buf), *all = mine + n;
    mine[0] = (double)M;
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
    for (int64_t c = 0; c < C; c++)
        channel_moments(x, wk, c, &mine[1 + c], &mine[1 + C + c]);
    tg_status st_gather = sync->gather(sync->ctx, mine, all, n);
    if (st_gather != TG_OK) {
        tg_tape_fail_in(tp, st_gather, "tg_batch_norm2d", "gathering the batch statistics of %d processes: %s",
                     sync->size, tg_last_error());
        return false;
    }
    double count = 0;
    for (int k = 0; k < sync->size; k++)
        count += all[(int64_t)k * n];
    for (int64_t c = 0; c < C; c++) {
        double total = 0, mean = 0, ss = 0;
        for (int k = 0; k < sync->size; k++) {
            const double *a = all + (int64_t)k * n;
            double nk = a[0];
            if (nk <= 0)
                continue;
            double delta = a[1 + c] - mean, both = total + nk;
            mean += delta * (nk / both);
            ss += a[1 + C + c] + delta * delta * (total * nk / both);
            total = both;
        }
        if (total == 0)
            mean = NAN; /* the mean of nothing, as without a sync */
        st[c] = mean;
        st[C + c] = ss / total;
        st[2 * C + c] = 1 / sqrt(st[C + c] + p->eps);
    }
    p->count = count;
    return true;
}

/* Row `row` of st ([3, C]) as a new [C] tensor of dtype dt. */
static tg_tensor *stat_row(tg_arena *ar, tg_dtype dt, const double *st, int64_t C, int row)
{
    tg_tensor *t = tg_tensor_empty(ar, dt, TG_DIMS(C));
    for (int64_t c = 0; t && c < C; c++)
        put(t, c, st[row * C + c]);
    return t;
}

static tg_tensor *batch_norm2d_forward(tg_tape *tp, tg_record *r)
{
    batch_norm_params *p = r->params;
    const tg_tensor *x = r->in[0], *gamma = r->in[1], *beta = r->in[2];
    tg_tensor **mean_out = p->mean_out, **var_out = p->var_out;
    p->mean_out = p->var_out = NULL;
    if (!check_inputs(x, gamma, beta, p->eps))
        return NULL;
    tg_arena *ar = TG__AR(tp);
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    p->stats = tg_tensor_empty(ar, TG_F64, TG_DIMS(3, C));
    tg_tensor *y = tg_tensor_empty(ar, x->dtype, 4, x->shape);
    if (!p->stats || !y)
        return NULL;
    double *st = tg_tensor_data(p->stats);
    const walk wk = walk_of(x, NULL);
    const tg_stat_sync *sync = tg_tape_stat_sync(tp);
    p->count = (double)M;
    p->synced = sync != NULL;
    if (!sync) {
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            forward_channel(x, gamma, beta, p->eps, &wk, c, st, y);
    } else if (!synced_statistics(tp, sync, x, &wk, p, st)) {
        return NULL;
    } else {
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            normalize_channel(x, gamma, beta, &wk, c, st, y);
    }
    /* constants in x's dtype, for a layer's running averages */
    tg_tensor *mean = mean_out ? stat_row(ar, x->dtype, st, C, 0) : NULL;
    tg_tensor *var = var_out ? stat_row(ar, x->dtype, st, C, 1) : NULL;
    if ((mean_out && !mean) || (var_out && !var))
        return NULL;
    if (mean_out)
        *mean_out = mean;
    if (var_out)
        *var_out = var;
    return y;
}

/* Channel c: sums[c] = sum(g), sums[C + c] = sum(g * xhat) (when want_gx), over this
 * batch. */
static void channel_grad_sums(const tg_record *rec, const tg_tensor *g, const walk *wk, int64_t c, bool want_gx,
                              double *sums)
{
    const tg_tensor *x = rec->in[0];
    const batch_norm_params *p = rec->params;
    const double *st = tg_tensor_data(p->stats);
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    const int64_t xs = row_stride(x, wk), gs = row_stride(g, wk);
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    const double mean = st[c], invstd = st[2 * C + c];
    double sg = 0, sgx = 0; /* sum(g), sum(g * (x - mean)) */
    for (int64_t r = 0; r < wk->rows; r++) {
        const char *gp = row_ptr(g, wk, c, r, es), *xp = row_ptr(x, wk, c, r, es);
        if (!want_gx)
            sg += f32 ? sum_float(wk->len, (const float *)gp, gs) : sum_double(wk->len, (const double *)gp, gs);
        else if (f32)
            gsums_float(wk->len, (const float *)gp, gs, (const float *)xp, xs, mean, &sg, &sgx);
        else
            gsums_double(wk->len, (const double *)gp, gs, (const double *)xp, xs, mean, &sg, &sgx);
    }
    sums[c] = sg;
    sums[C + c] = M ? sgx * invstd : 0; /* M == 0: a sum of nothing, not 0 * NaN */
}

/* Channel c of dx from the channel's gradient sums sg = sum(g), sgxhat = sum(g * xhat)
 * over all `count` values the statistics cover (this batch's, or every process's). */
static void channel_dx(const tg_record *rec, const tg_tensor *g, const walk *wk, int64_t c, double sg,
                       double sgxhat, double count, tg_tensor *dx)
{
    const tg_tensor *x = rec->in[0], *gamma = rec->in[1];
    const batch_norm_params *p = rec->params;
    const double *st = tg_tensor_data(p->stats);
    const int64_t C = x->shape[1];
    const int64_t xs = row_stride(x, wk), gs = row_stride(g, wk), plane = x->shape[2] * x->shape[3];
    const size_t es = tg_dtype_size(x->dtype);
    const bool f32 = x->dtype == TG_F32;
    const double mean = st[c], invstd = st[2 * C + c];
    const double gm = sg / count, a = at(gamma, c) * invstd, b = -a * invstd * sgxhat / count;
    char *out = tg_tensor_data(dx);
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

static tg_status batch_norm2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    const bool need_x = tg_needs_grad(tp, r, 0), need_gamma = tg_needs_grad(tp, r, 1);
    const bool need_beta = tg_needs_grad(tp, r, 2);
    tg_tensor *sums = tg_tensor_empty(ar, TG_F64, TG_DIMS(2, C));
    tg_tensor *dx = need_x ? tg_tensor_empty(ar, x->dtype, 4, x->shape) : NULL;
    if (!sums || (need_x && !dx))
        return tg_tape_fail(tp, tg_last_status(), "tg_batch_norm2d backward: %s", tg_last_error());
    double *sv = tg_tensor_data(sums);
    const walk wk = walk_of(x, g);
    const batch_norm_params *p = r->params;
    const bool want_gx = need_x || need_gamma;
    if (!p->synced) {
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++) {
            channel_grad_sums(r, g, &wk, c, want_gx, sv);
            if (dx && M > 0)
                channel_dx(r, g, &wk, c, sv[c], sv[C + c], (double)M, dx);
        }
    } else {
        /* dx needs the sums over every process's batch; gamma's and beta's gradients
         * keep this batch's (the caller averages them across processes) */
        const tg_stat_sync *sync = tg_tape_stat_sync(tp);
        if (!sync)
            return tg_tape_fail(tp, TG_ERR_STATE, "tg_batch_norm2d backward: forward ran with synchronised "
                                "statistics, and the tape's tg_stat_sync was removed before backward");
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
        for (int64_t c = 0; c < C; c++)
            channel_grad_sums(r, g, &wk, c, true, sv);
        tg_tensor *global = need_x ? tg_tensor_clone(ar, sums) : NULL;
        if (need_x && !global)
            return tg_tape_fail(tp, tg_last_status(), "tg_batch_norm2d backward: %s", tg_last_error());
        tg_status st = need_x ? sync->sum(sync->ctx, tg_tensor_data(global), (int)(2 * C)) : TG_OK;
        if (st != TG_OK)
            return tg_tape_fail(tp, st, "tg_batch_norm2d backward: summing the gradient statistics of %d "
                                "processes: %s", sync->size, tg_last_error());
        const double *gv = need_x ? tg_tensor_data(global) : NULL;
        if (need_x && p->count > 0) {
#pragma omp parallel for schedule(static) if (tg_parallel_worth(C * M))
            for (int64_t c = 0; c < C; c++)
                channel_dx(r, g, &wk, c, gv[c], gv[C + c], p->count, dx);
        } else if (need_x) {
            tg_tensor_fill_(dx, 0);
        }
    }
    if (need_x)
        tg_accumulate_grad(tp, r, 0, dx);
    if (need_gamma)
        tg_accumulate_grad(tp, r, 1, stat_row(ar, x->dtype, sv, C, 1));
    if (need_beta)
        tg_accumulate_grad(tp, r, 2, stat_row(ar, x->dtype, sv, C, 0));
    return tg_tape_status(tp);
}

static const tg_op op_batch_norm2d = {"batch_norm2d", batch_norm2d_forward, batch_norm2d_backward,
                                      TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_batch_norm2d(tg_tape *tp, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps,
                           tg_tensor **batch_mean, tg_tensor **batch_var)
{
    if (batch_mean)
        *batch_mean = NULL;
    if (batch_var)
        *batch_var = NULL;
    batch_norm_params p = {.eps = eps, .mean_out = batch_mean, .var_out = batch_var};
    return tg_apply(tp, &op_batch_norm2d, 3, (tg_tensor *[]){x, gamma, beta}, &p, sizeof p);
}
