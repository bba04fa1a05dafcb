/* tests/tensor/test_reduce.c — reductions (sum, mean, max, min, var, logsumexp, argmax,
 * sum_to) against f64/long double reference loops written here: every axis choice on
 * contiguous, transposed, sliced and expanded inputs; long axes against compensated
 * sums; batch-norm statistics; edge values (inf, NaN, ties); results that must not
 * change with the thread count; and the error messages. */
#include "check_util.h"

#include <float.h>

/* ------------------------------------------------------------------ helpers */

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static double urand(void) /* splitmix64: [0, 1) */
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1.0p-53;
}

static tg_tensor *random_tensor(tg_dtype dt, int ndim, const int64_t *shape, double lo, double hi)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = lo + (hi - lo) * urand();
    tg_tensor *t = tt_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

typedef enum rkind { R_SUM, R_MEAN, R_MAX, R_MIN, R_VAR0, R_VAR1, R_LSE, R_COUNT } rkind;
static const char *const KIND_NAMES[] = {"sum", "mean", "max", "min", "var0", "var1", "logsumexp"};

static tg_tensor *call(rkind k, const tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    switch (k) {
    case R_SUM: return tg_tensor_sum(NULL, x, naxes, axes, keepdim);
    case R_MEAN: return tg_tensor_mean(NULL, x, naxes, axes, keepdim);
    case R_MAX: return tg_tensor_max(NULL, x, naxes, axes, keepdim);
    case R_MIN: return tg_tensor_min(NULL, x, naxes, axes, keepdim);
    case R_VAR0: return tg_tensor_var(NULL, x, naxes, axes, 0, keepdim);
    case R_VAR1: return tg_tensor_var(NULL, x, naxes, axes, 1, keepdim);
    default: return tg_tensor_logsumexp(NULL, x, naxes, axes, keepdim);
    }
}

/* Which output element x's element at idx belongs to (kept axes, row-major). */
static int64_t out_index(const tg_tensor *x, const bool *mask, const int64_t *idx)
{
    int64_t o = 0;
    for (int i = 0; i < x->ndim; i++)
        if (!mask[i])
            o = o * x->shape[i] + idx[i];
    return o;
}

static void next_index(const tg_tensor *x, int64_t *idx)
{
    for (int i = x->ndim - 1; i >= 0; i--) {
        if (++idx[i] < x->shape[i])
            return;
        idx[i] = 0;
    }
}

/* The reference reduction of x over the masked axes, in long double (malloc'd). */
static double *reference(const tg_tensor *x, const bool *mask, rkind k)
{
    int64_t n = tg_tensor_numel(x), nout = 1;
    for (int i = 0; i < x->ndim; i++)
        if (!mask[i])
            nout *= x->shape[i];
    int64_t m = nout ? n / nout : 0;
    double *v = tt_values(x), *res = malloc((size_t)(nout ? nout : 1) * sizeof *res);
    long double *s = calloc((size_t)(nout ? nout : 1), sizeof *s);
    long double *s2 = calloc((size_t)(nout ? nout : 1), sizeof *s2);
    double *mx = malloc((size_t)(nout ? nout : 1) * sizeof *mx);
    double *mn = malloc((size_t)(nout ? nout : 1) * sizeof *mn);
    for (int64_t o = 0; o < nout; o++) {
        mx[o] = -INFINITY;
        mn[o] = INFINITY;
    }
    int64_t idx[TG_MAX_DIMS] = {0};
    for (int64_t e = 0; e < n; e++, next_index(x, idx)) {
        int64_t o = out_index(x, mask, idx);
        s[o] += v[e];
        mx[o] = isnan(v[e]) || isnan(mx[o]) ? NAN : fmax(mx[o], v[e]);
        mn[o] = isnan(v[e]) || isnan(mn[o]) ? NAN : fmin(mn[o], v[e]);
    }
    memset(idx, 0, sizeof idx);
    for (int64_t e = 0; e < n; e++, next_index(x, idx)) {
        int64_t o = out_index(x, mask, idx);
        long double d = v[e] - s[o] / m;
        s2[o] += k == R_LSE ? expl((long double)v[e] - mx[o]) : d * d;
    }
    for (int64_t o = 0; o < nout; o++) {
        switch (k) {
        case R_SUM: res[o] = (double)s[o]; break;
        case R_MEAN: res[o] = (double)(s[o] / m); break;
        case R_MAX: res[o] = mx[o]; break;
        case R_MIN: res[o] = mn[o]; break;
        case R_VAR0: res[o] = m > 0 ? (double)(s2[o] / m) : NAN; break;
        case R_VAR1: res[o] = m > 1 ? (double)(s2[o] / (m - 1)) : NAN; break;
        default: res[o] = isfinite(mx[o]) ? (double)(mx[o] + logl(s2[o])) : mx[o]; break;
        }
    }
    free(v);
    free(s);
    free(s2);
    free(mx);
    free(mn);
    return res;
}

static void axes_to_mask(const tg_tensor *x, int naxes, const int *axes, bool *mask)
{
    for (int i = 0; i < x->ndim; i++)
        mask[i] = naxes == 0;
    for (int i = 0; i < naxes; i++)
        mask[axes[i] < 0 ? axes[i] + x->ndim : axes[i]] = true;
}

/* Checks y = k(x, axes, keepdim) against the reference: shape, dtype, values. */
static void check_reduction(const char *what, rkind k, const tg_tensor *x, int naxes,
                            const int *axes, bool keepdim)
{
    bool mask[TG_MAX_DIMS];
    axes_to_mask(x, naxes, axes, mask);
    tg_tensor *y = call(k, x, naxes, axes, keepdim);
    ck_assert_msg(y != NULL, "%s %s: %s", what, KIND_NAMES[k], tg_last_error());
    ck_assert_int_eq(y->dtype, x->dtype);
    int on = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (mask[i] && !keepdim)
            continue;
        ck_assert_msg(on < y->ndim && y->shape[on] == (mask[i] ? 1 : x->shape[i]),
                      "%s %s: wrong shape", what, KIND_NAMES[k]);
        on++;
    }
    ck_assert_int_eq(y->ndim, on);
    double *ref = reference(x, mask, k);
    double err = tt_max_rel_err(y, ref), tol = x->dtype == TG_F32 ? 1e-6 : 1e-12;
    ck_assert_msg(err <= tol, "%s %s keepdim %d: max relative error %g", what, KIND_NAMES[k],
                  keepdim, err);
    free(ref);
    tg_tensor_free(y);
}

/* ------------------------------------------------------------------ every axis, every layout */

/* A [4,5,6] view in one of several layouts; *base is what to free with it. */
static tg_tensor *layout(int which, tg_dtype dt, tg_tensor **base, const char **name)
{
    tg_tensor *b = NULL, *x = NULL;
    switch (which) {
    case 0:
        *name = "contiguous";
        b = random_tensor(dt, TG_DIMS(4, 5, 6), -2, 2);
        x = tg_tensor_view(NULL, b, TG_DIMS(4, 5, 6));
        break;
    case 1:
        *name = "transposed";
        b = random_tensor(dt, TG_DIMS(6, 5, 4), -2, 2);
        x = tg_tensor_permute(NULL, b, 3, (const int[]){2, 1, 0});
        break;
    case 2: {
        *name = "sliced (step 2 on axes 0 and 2)";
        b = random_tensor(dt, TG_DIMS(8, 5, 12), -2, 2);
        tg_tensor *s = tg_tensor_slice(NULL, b, 0, 0, 8, 2);
        x = tg_tensor_slice(NULL, s, 2, 1, 12, 2);
        tg_tensor_free(s);
        break;
    }
    case 3:
        *name = "expanded (axis 1 at stride 0)";
        b = random_tensor(dt, TG_DIMS(4, 1, 6), -2, 2);
        x = tg_tensor_expand(NULL, b, TG_DIMS(4, 5, 6));
        break;
    default:
        *name = "expanded (new leading axis) and transposed";
        b = random_tensor(dt, TG_DIMS(6, 5), -2, 2);
        tg_tensor *t = tg_tensor_transpose(NULL, b, 0, 1);
        x = tg_tensor_expand(NULL, t, TG_DIMS(4, 5, 6));
        tg_tensor_free(t);
        break;
    }
    ck_assert_msg(x != NULL, "%s", tg_last_error());
    tt_assert_shape(x, 4, 5, 6);
    *base = b;
    return x;
}

START_TEST(test_axes_and_layouts)
{
    static const struct {
        int n;
        int axes[3];
    } sets[] = {{0, {0}},    {1, {0}},     {1, {1}},     {1, {2}},       {1, {-1}},
                {1, {-2}},   {2, {0, 1}},  {2, {0, 2}},  {2, {1, 2}},    {2, {2, 0}},
                {2, {-1, -3}}, {3, {0, 1, 2}}, {3, {-1, 0, 1}}};
    char what[160];
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        for (int l = 0; l < 5; l++) {
            tg_tensor *base;
            const char *name;
            tg_tensor *x = layout(l, dt, &base, &name);
            for (size_t s = 0; s < sizeof sets / sizeof sets[0]; s++)
                for (int keep = 0; keep < 2; keep++)
                    for (int k = 0; k < R_COUNT; k++) {
                        snprintf(what, sizeof what, "%s %s, axis set %zu", tg_dtype_name(dt),
                                 name, s);
                        check_reduction(what, (rkind)k, x, sets[s].n, sets[s].axes, keep);
                    }
            tg_tensor_free(x);
            tg_tensor_free(base);
        }
    }
}
END_TEST

/* A tile of adjacent outputs (columns) must give each output exactly what it gets
 * alone, and odd widths leave partial tiles. */
START_TEST(test_columns_match_single_outputs)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *x = random_tensor(dt, TG_DIMS(700, 37), -1, 3);
        for (int k = 0; k < R_COUNT; k++) {
            check_reduction("columns", (rkind)k, x, TG_AXES(0), false);
            tg_tensor *all = call((rkind)k, x, TG_AXES(0), false);
            for (int64_t j = 0; j < 37; j += 9) {
                tg_tensor *col = tg_tensor_slice(NULL, x, 1, j, j + 1, 1);
                tg_tensor *one = call((rkind)k, col, TG_AXES(0), false);
                tt_assert_shape(one, 1);
                double a = tg_tensor_get(all, &j), b = tg_tensor_item(one);
                ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "%s column %lld: %.17g vs %.17g",
                              KIND_NAMES[k], (long long)j, a, b);
                tg_tensor_free(one);
                tg_tensor_free(col);
            }
            tg_tensor_free(all);
        }
        tg_tensor_free(x);
    }
}
END_TEST

START_TEST(test_scalar_and_empty)
{
    tg_tensor *s = tg_tensor_scalar(NULL, TG_F64, 2.5);
    tg_tensor *y = tg_tensor_sum(NULL, s, 0, NULL, true);
    ck_assert_int_eq(y->ndim, 0);
    ck_assert_double_eq(tg_tensor_item(y), 2.5);
    tg_tensor_free(y);
    y = tg_tensor_var(NULL, s, 0, NULL, 0, false);
    ck_assert_double_eq(tg_tensor_item(y), 0);
    tg_tensor_free(y);
    y = tg_tensor_var(NULL, s, 0, NULL, 1, false); /* n - correction = 0 */
    ck_assert(isnan(tg_tensor_item(y)));
    tg_tensor_free(y);
    tg_tensor_free(s);

    tg_tensor *e = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3));
    y = tg_tensor_sum(NULL, e, TG_AXES(0), false);
    tt_assert_shape(y, 3);
    tt_assert_close(y, ((double[]){0, 0, 0}), 0);
    tg_tensor_free(y);
    y = tg_tensor_mean(NULL, e, TG_AXES(0), true);
    tt_assert_shape(y, 1, 3);
    tt_assert_close(y, ((double[]){NAN, NAN, NAN}), 0);
    tg_tensor_free(y);
    y = tg_tensor_logsumexp(NULL, e, TG_AXES(-2), false);
    tt_assert_close(y, ((double[]){-INFINITY, -INFINITY, -INFINITY}), 0);
    tg_tensor_free(y);
    y = tg_tensor_max(NULL, e, TG_AXES(1), false); /* nothing to reduce into: fine */
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    tt_assert_shape(y, 0);
    tg_tensor_free(y);
    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_max(NULL, e, TG_AXES(0), false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_tensor_max: "));
    ck_assert_ptr_null(tg_tensor_min(NULL, e, 0, NULL, false));
    ck_assert_ptr_null(tg_tensor_argmax(NULL, e, 0, false));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_tensor_argmax: "));
    tg_tensor_free(e);
}
END_TEST

START_TEST(test_arena_output)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = tg_tensor_full(ar, TG_F32, TG_DIMS(3, 4), 0.5);
    tg_tensor *y = tg_tensor_mean(ar, x, TG_AXES(1), true);
    tg_tensor *z = tg_tensor_sum_to(ar, x, TG_DIMS(4));
    ck_assert_ptr_eq(y->arena, ar);
    tt_assert_close(y, ((double[]){0.5, 0.5, 0.5}), 0);
    tt_assert_close(z, ((double[]){1.5, 1.5, 1.5, 1.5}), 0);
    tg_arena_free(ar);
}
END_TEST

/* ------------------------------------------------------------------ accuracy */

/* Neumaier's compensated sum in long double: the reference for long sums. */
static long double compensated_sum(const double *v, int64_t n)
{
    long double s = 0, c = 0;
    for (int64_t i = 0; i < n; i++) {
        long double t = s + v[i];
        c += fabsl(s) >= fabsl(v[i]) ? (s - t) + v[i] : (v[i] - t) + s;
        s = t;
    }
    return s + c;
}

START_TEST(test_long_f32_sum)
{
    /* 2^20 + 3 floats: one large value and a million 0.1f. Float accumulation loses
     * every 0.1 (the large value's ulp is 2); the exact sum is ~1.01e7 larger. */
    int64_t n = (1 << 20) + 3;
    float *f = malloc((size_t)n * sizeof *f);
    double *d = malloc((size_t)n * sizeof *d);
    for (int64_t i = 0; i < n; i++)
        f[i] = i == 5 ? 3.0e7f : 0.1f;
    float naive = 0;
    for (int64_t i = 0; i < n; i++) {
        naive += f[i];
        d[i] = f[i];
    }
    double ref = (double)compensated_sum(d, n);
    ck_assert_msg(fabs(naive - ref) / ref > 1e-3, "naive float sum should be visibly wrong");
    tg_tensor *x = tg_tensor_borrow(NULL, TG_F32, 1, &n, f);
    tg_tensor *y = tg_tensor_sum(NULL, x, 0, NULL, false);
    ck_assert_int_eq(y->ndim, 0);
    tt_assert_close(y, &ref, 1e-7); /* the f32 rounding of the result is 3e-8 */
    tg_tensor_free(y);
    double mref = ref / (double)n;
    y = tg_tensor_mean(NULL, x, TG_AXES(0), true);
    tt_assert_shape(y, 1);
    tt_assert_close(y, &mref, 1e-7);
    tg_tensor_free(y);
    /* the same down the columns of [n, 2]: a strided axis, two outputs side by side */
    float *f2 = malloc((size_t)n * 2 * sizeof *f2);
    for (int64_t i = 0; i < 2 * n; i++)
        f2[i] = f[i / 2];
    tg_tensor *x2 = tg_tensor_borrow(NULL, TG_F32, TG_DIMS(n, 2), f2);
    y = tg_tensor_sum(NULL, x2, TG_AXES(0), false);
    tt_assert_close(y, ((double[]){ref, ref}), 1e-7);
    tg_tensor_free(y);
    tg_tensor_free(x2);
    tg_tensor_free(x);
    free(f2);
    free(f);
    free(d);
}
END_TEST

START_TEST(test_long_f64_sum)
{
    /* 2^20 positive values spread over 12 decades: well conditioned, so a pairwise sum
     * is within a few ulps, where a running sum drifts by ~n * eps / 2 in the worst case */
    int64_t n = 1 << 20;
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (1 + urand()) * pow(10, (double)(i % 13) - 6);
    double ref = (double)compensated_sum(v, n);
    tg_tensor *x = tg_tensor_borrow(NULL, TG_F64, 1, &n, v);
    tg_tensor *y = tg_tensor_sum(NULL, x, 0, NULL, false);
    double got = tg_tensor_item(y);
    ck_assert_msg(fabs(got - ref) <= 4 * DBL_EPSILON * ref, "sum %.17g, reference %.17g", got, ref);
    tg_tensor_free(y);
    /* mixed signs: the error is bounded relative to sum |x| */
    double abs_sum = 0;
    for (int64_t i = 0; i < n; i++) {
        v[i] = urand() < 0.5 ? -v[i] : v[i];
        abs_sum += fabs(v[i]);
    }
    ref = (double)compensated_sum(v, n);
    tg_tensor *m = tg_tensor_reshape(NULL, x, TG_DIMS(1024, 1024));
    y = tg_tensor_sum(NULL, m, TG_AXES(0, 1), false);
    got = tg_tensor_item(y);
    ck_assert_msg(fabs(got - ref) <= 4 * DBL_EPSILON * abs_sum, "sum %.17g, reference %.17g", got,
                  ref);
    tg_tensor_free(y);
    tg_tensor_free(m);
    tg_tensor_free(x);
    free(v);
}
END_TEST

START_TEST(test_batchnorm_statistics)
{
    /* per-channel statistics over N, H, W; values far from 0 so that a one-pass
     * E[x^2] - E[x]^2 would lose the variance in f32 */
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *x = random_tensor(dt, TG_DIMS(8, 16, 12, 12), 97, 103);
        for (int keep = 0; keep < 2; keep++) {
            check_reduction("NCHW", R_SUM, x, TG_AXES(0, 2, 3), keep);
            check_reduction("NCHW", R_MEAN, x, TG_AXES(0, 2, 3), keep);
            check_reduction("NCHW", R_VAR0, x, TG_AXES(0, 2, 3), keep);
            check_reduction("NCHW", R_VAR1, x, TG_AXES(0, -2, -1), keep);
        }
        /* the same statistics of an NHWC buffer seen as NCHW: channels adjacent */
        tg_tensor *nhwc = random_tensor(dt, TG_DIMS(8, 12, 12, 16), 97, 103);
        tg_tensor *v = tg_tensor_permute(NULL, nhwc, 4, (const int[]){0, 3, 1, 2});
        check_reduction("NHWC as NCHW", R_MEAN, v, TG_AXES(0, 2, 3), true);
        check_reduction("NHWC as NCHW", R_VAR0, v, TG_AXES(0, 2, 3), true);
        tg_tensor *y = tg_tensor_var(NULL, x, TG_AXES(0, 2, 3), 0, true);
        tt_assert_shape(y, 1, 16, 1, 1);
        tg_tensor_free(y);
        tg_tensor_free(v);
        tg_tensor_free(nhwc);
        tg_tensor_free(x);
    }
}
END_TEST

START_TEST(test_var_corrections)
{
    double v[] = {1, 2, 3, 4, 10, 10, 10, 10};
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 4), v);
    tg_tensor *y0 = tg_tensor_var(NULL, x, TG_AXES(1), 0, false);
    tg_tensor *y1 = tg_tensor_var(NULL, x, TG_AXES(1), 1, false);
    tg_tensor *y4 = tg_tensor_var(NULL, x, TG_AXES(1), 4, false); /* n - correction = 0 */
    tg_tensor *ya = tg_tensor_var(NULL, x, 0, NULL, 1, false);
    tt_assert_close(y0, ((double[]){1.25, 0}), 1e-15);
    tt_assert_close(y1, ((double[]){5.0 / 3, 0}), 1e-15);
    tt_assert_close(y4, ((double[]){NAN, NAN}), 0);
    /* all 8: mean 6.25, squared deviations 27.5625+18.0625+10.5625+5.0625+4*14.0625 */
    tt_assert_close(ya, ((double[]){117.5 / 7}), 1e-15);
    tg_tensor_free(y0);
    tg_tensor_free(y1);
    tg_tensor_free(y4);
    tg_tensor_free(ya);
    tg_tensor_free(x);
    /* f32 with a large mean: the variance survives */
    tg_tensor *big = random_tensor(TG_F32, TG_DIMS(3, 5000), 1e4, 1e4 + 1e-2);
    check_reduction("large mean", R_VAR0, big, TG_AXES(1), false);
    check_reduction("large mean", R_VAR1, big, 0, NULL, true);
    tg_tensor_free(big);
}
END_TEST

START_TEST(test_logsumexp_edges)
{
    double inf = INFINITY;
    double v[] = {1000, 1001, -inf, -inf, -inf, 0, inf, 1, NAN, 1, inf, -inf, NAN, inf};
    double want[] = {1001 + log1p(exp(-1)), -inf, 0, inf, NAN, inf, NAN};
    for (int d = 0; d < 2; d++) {
        tg_tensor *x = tt_tensor(d ? TG_F64 : TG_F32, TG_DIMS(7, 2), v);
        tg_tensor *y = tg_tensor_logsumexp(NULL, x, TG_AXES(-1), false);
        tt_assert_shape(y, 7);
        tt_assert_close(y, want, d ? 1e-15 : 1e-7);
        tg_tensor_free(y);
        tg_tensor_free(x);
    }
    /* a long row where exp(x) overflows double everywhere */
    tg_tensor *x = random_tensor(TG_F64, TG_DIMS(2, 3000), 800, 900);
    check_reduction("large values", R_LSE, x, TG_AXES(1), true);
    check_reduction("large values", R_LSE, x, 0, NULL, false);
    tg_tensor_free(x);
    /* max/min propagate NaN and see infinities */
    double w[] = {1, NAN, 3, -inf, 2, inf};
    x = tt_tensor(TG_F32, TG_DIMS(2, 3), w);
    tg_tensor *mx = tg_tensor_max(NULL, x, TG_AXES(1), false);
    tg_tensor *mn = tg_tensor_min(NULL, x, TG_AXES(0), false);
    tt_assert_close(mx, ((double[]){NAN, inf}), 0);
    tt_assert_close(mn, ((double[]){-inf, NAN, 3}), 0);
    tg_tensor_free(mx);
    tg_tensor_free(mn);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ argmax */

START_TEST(test_argmax)
{
    double nan = NAN, inf = INFINITY;
    double v[] = {1, 3, 3, 2, nan, 1, nan, 5, 1, 2, nan, nan, -inf, -inf, -inf, -inf, 0, -1, 7, 7};
    for (int d = 0; d < 2; d++) {
        tg_tensor *x = tt_tensor(d ? TG_F64 : TG_F32, TG_DIMS(5, 4), v);
        tg_tensor *y = tg_tensor_argmax(NULL, x, -1, false);
        ck_assert_int_eq(y->dtype, TG_I32);
        tt_assert_shape(y, 5);
        tt_assert_close(y, ((double[]){1, 0, 2, 0, 2}), 0);
        tg_tensor_free(y);
        y = tg_tensor_argmax(NULL, x, 0, true);
        tt_assert_shape(y, 1, 4);
        tt_assert_close(y, ((double[]){1, 0, 1, 2}), 0);
        tg_tensor_free(y);
        tg_tensor_free(x);
    }
    /* random, strided and expanded inputs against a first-maximum reference */
    tg_tensor *b = random_tensor(TG_F32, TG_DIMS(70, 100), 0, 1);
    tg_tensor *s = tg_tensor_slice(NULL, b, 1, 0, 100, 2);
    tg_tensor *t = tg_tensor_transpose(NULL, s, 0, 1); /* [50, 70], strides (2, 100) */
    tg_tensor *row = tg_tensor_select(NULL, t, 0, 3);
    tg_tensor *e = tg_tensor_expand(NULL, row, TG_DIMS(5, 70)); /* all rows tie */
    const tg_tensor *inputs[] = {t, e};
    for (int in = 0; in < 2; in++) {
        const tg_tensor *x = inputs[in];
        double *xv = tt_values(x);
        int64_t r = x->shape[0], c = x->shape[1];
        for (int axis = 0; axis < 2; axis++) {
            tg_tensor *y = tg_tensor_argmax(NULL, x, axis - 2, axis == 0);
            int64_t nout = axis ? r : c, len = axis ? c : r;
            double *ref = malloc((size_t)nout * sizeof *ref);
            for (int64_t o = 0; o < nout; o++) {
                int64_t best = 0;
                for (int64_t i = 1; i < len; i++)
                    if (xv[axis ? o * c + i : i * c + o] > xv[axis ? o * c + best : best * c + o])
                        best = i;
                ref[o] = (double)best;
            }
            ck_assert_int_eq(tg_tensor_numel(y), nout);
            ck_assert_int_eq(y->ndim, axis == 0 ? 2 : 1);
            tt_assert_close(y, ref, 0);
            free(ref);
            tg_tensor_free(y);
        }
        free(xv);
    }
    tg_tensor_free(e);
    tg_tensor_free(row);
    tg_tensor_free(t);
    tg_tensor_free(s);
    tg_tensor_free(b);
}
END_TEST

/* ------------------------------------------------------------------ sum_to */

START_TEST(test_sum_to)
{
    tg_tensor *x = random_tensor(TG_F64, TG_DIMS(2, 3, 4), -1, 1);
    static const struct {
        int ndim;
        int64_t shape[3];
        bool mask[3];
    } cases[] = {
        {2, {3, 1}, {true, false, true}},    {1, {4}, {true, true, false}},
        {3, {1, 1, 1}, {true, true, true}},  {0, {0}, {true, true, true}},
        {3, {2, 1, 4}, {false, true, false}}, {3, {2, 3, 4}, {false, false, false}},
    };
    tg_tensor *tbase = random_tensor(TG_F32, TG_DIMS(4, 3, 2), -1, 1);
    tg_tensor *tr = tg_tensor_permute(NULL, tbase, 3, (const int[]){2, 1, 0});
    const tg_tensor *inputs[] = {x, tr};
    for (int in = 0; in < 2; in++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            const tg_tensor *xi = inputs[in];
            tg_tensor *y = tg_tensor_sum_to(NULL, xi, cases[i].ndim,
                                            cases[i].ndim ? cases[i].shape : NULL);
            ck_assert_msg(y != NULL, "%s", tg_last_error());
            ck_assert_int_eq(y->ndim, cases[i].ndim);
            for (int k = 0; k < cases[i].ndim; k++)
                ck_assert_int_eq(y->shape[k], cases[i].shape[k]);
            double *ref = reference(xi, cases[i].mask, R_SUM);
            tt_assert_close(y, ref, xi->dtype == TG_F32 ? 1e-6 : 1e-14);
            free(ref);
            tg_tensor_free(y);
        }
    tg_tensor_free(tr);
    tg_tensor_free(tbase);

    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_sum_to(NULL, x, TG_DIMS(3)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_sum_to",
                   "shape [3] does not broadcast to the input's shape [2,3,4]");
    ck_assert_ptr_null(tg_tensor_sum_to(NULL, x, TG_DIMS(5, 2, 3, 4)));
    ck_assert_ptr_null(tg_tensor_sum_to(NULL, x, TG_DIMS(2, 2, 4)));
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ threads */

/* k over the axes with 1, 2 and 3 threads: the three results must be the same bits. */
static void check_threads(const char *what, const tg_tensor *x, rkind k, int naxes, const int *axes)
{
    tg_tensor *y[3];
    for (int i = 0; i < 3; i++) {
        tg_set_num_threads(i + 1);
        y[i] = call(k, x, naxes, axes, false);
    }
    tg_set_num_threads(2);
    ck_assert_msg(y[0] != NULL, "%s: %s", what, tg_last_error());
    ck_assert_msg(tt_same_bits(y[0], y[1]) && tt_same_bits(y[0], y[2]),
                  "%s %s: results depend on threads", what, KIND_NAMES[k]);
    for (int i = 0; i < 3; i++)
        tg_tensor_free(y[i]);
}

START_TEST(test_thread_count_independence)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *flat = random_tensor(dt, TG_DIMS(1000003), -1, 2);
        check_threads("full", flat, R_SUM, 0, NULL);
        check_threads("full", flat, R_VAR1, 0, NULL);
        check_threads("full", flat, R_LSE, 0, NULL);
        check_threads("full", flat, R_MAX, 0, NULL);
        tg_tensor *rows = random_tensor(dt, TG_DIMS(512, 1000), -1, 2);
        check_threads("rows", rows, R_SUM, TG_AXES(-1));
        check_threads("rows", rows, R_LSE, TG_AXES(-1));
        check_threads("rows", rows, R_VAR0, TG_AXES(-1));
        /* three long rows: each reduction is split into blocks among the threads */
        tg_tensor *one = tg_tensor_reshape(NULL, flat, TG_DIMS(1, 1000003));
        tg_tensor *three = tg_tensor_expand(NULL, one, TG_DIMS(3, 1000003));
        check_threads("3 long rows", three, R_SUM, TG_AXES(1));
        check_threads("3 long rows", three, R_VAR0, TG_AXES(1));
        /* 37 columns: tiles of adjacent outputs, cut differently by each thread count */
        tg_tensor *cols = random_tensor(dt, TG_DIMS(20000, 37), -1, 2);
        check_threads("columns", cols, R_MEAN, TG_AXES(0));
        tg_tensor *nchw = random_tensor(dt, TG_DIMS(16, 32, 16, 16), -1, 2);
        check_threads("NCHW", nchw, R_VAR0, TG_AXES(0, 2, 3));
        tg_tensor_free(nchw);
        tg_tensor_free(cols);
        tg_tensor_free(three);
        tg_tensor_free(one);
        tg_tensor_free(rows);
        tg_tensor_free(flat);
    }
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_errors)
{
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    ck_assert_ptr_null(tg_tensor_sum(NULL, x, TG_AXES(3), false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_tensor_sum", "axis 3 is out of range for shape [2,3]");
    ck_assert_ptr_null(tg_tensor_max(NULL, x, TG_AXES(0, -3), false));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_max", "axis -3 is out of range for shape [2,3]");
    ck_assert_ptr_null(tg_tensor_mean(NULL, x, TG_AXES(1, 1), false));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_mean", "axis 1 is listed twice for shape [2,3]");
    ck_assert_ptr_null(tg_tensor_var(NULL, x, TG_AXES(1, -1), 1, false));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_var", "axes 1 and -1 are the same axis of shape [2,3]");
    ck_assert_ptr_null(tg_tensor_logsumexp(NULL, x, -1, NULL, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_ptr_null(tg_tensor_argmax(NULL, x, 2, false));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_argmax", "axis 2 is out of range for shape [2,3]");

    tg_tensor *i = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2, 3));
    tg_tensor *u = tg_tensor_zeros(NULL, TG_U8, TG_DIMS(4));
    for (int k = 0; k < R_COUNT; k++) {
        tg_clear_error();
        ck_assert_ptr_null(call((rkind)k, i, 0, NULL, false));
        ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    }
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_logsumexp", "dtype i32 is not supported");
    ck_assert_ptr_null(tg_tensor_argmax(NULL, u, 0, false));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_tensor_sum_to(NULL, u, TG_DIMS(1)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);

    /* a NULL input keeps the message of the failure that produced it */
    tg_set_error(TG_ERR_SHAPE, "earlier failure");
    for (int k = 0; k < R_COUNT; k++)
        ck_assert_ptr_null(call((rkind)k, NULL, 0, NULL, false));
    ck_assert_ptr_null(tg_tensor_argmax(NULL, NULL, 0, false));
    ck_assert_ptr_null(tg_tensor_sum_to(NULL, NULL, TG_DIMS(1)));
    ck_assert_str_eq(tg_last_error(), "earlier failure");
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_sum(NULL, NULL, 0, NULL, false));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_tensor_sum"));

    tg_tensor_free(u);
    tg_tensor_free(i);
    tg_tensor_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/reduce");
    TCase *tc = tt_tcase("shapes");
    tcase_add_test(tc, test_axes_and_layouts);
    tcase_add_test(tc, test_columns_match_single_outputs);
    tcase_add_test(tc, test_scalar_and_empty);
    tcase_add_test(tc, test_arena_output);
    tcase_add_test(tc, test_sum_to);
    tcase_add_test(tc, test_argmax);
    suite_add_tcase(s, tc);
    tc = tt_tcase("numerics");
    tcase_add_test(tc, test_long_f32_sum);
    tcase_add_test(tc, test_long_f64_sum);
    tcase_add_test(tc, test_batchnorm_statistics);
    tcase_add_test(tc, test_var_corrections);
    tcase_add_test(tc, test_logsumexp_edges);
    suite_add_tcase(s, tc);
    tc = tt_tcase("threads and errors");
    tcase_add_test(tc, test_thread_count_independence);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
