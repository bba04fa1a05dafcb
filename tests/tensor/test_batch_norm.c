/* tests/tensor/test_batch_norm.c — the batch norm kernels (tg_tensor_batch_norm2d, its
 * backward, and the same in steps) against a plain f64 reference on small random
 * inputs: contiguous, channels-last (a permuted view), every other column (a sliced
 * view), one image, a channel of one constant value, planes that cut the 128-value
 * summation chunks mid-row; f64 to 1e-12, f32 to float32 rounding. The statistics of
 * contiguous planes are tg_tensor_mean's and tg_tensor_var's bits (one summation rule);
 * the steps give the fused kernels' bits; 1, 2 and 3 threads give the same bits; every
 * instruction-set copy of the kernels the CPU runs gives the generic copy's bits; an
 * empty batch; heap results; error messages. */
#include "check_util.h"
#include "internal.h" /* tg__isa_* */

enum layout { DENSE, CHANNELS_LAST, SLICED };

typedef struct bn_case {
    const char *what;
    int64_t n, c, h, w;
    enum layout layout;
    bool constant_channel; /* channel 1 holds one value everywhere */
} bn_case;

static const bn_case cases[] = {
    {"dense", 3, 4, 5, 6, DENSE, false},
    {"one image", 1, 3, 4, 4, DENSE, false},
    {"chunks cut rows", 9, 2, 5, 7, DENSE, false}, /* 315 values a channel, 35-value planes */
    {"long planes", 2, 2, 16, 20, DENSE, false},   /* 320-value planes: chunks within a row */
    {"constant channel", 4, 3, 3, 3, DENSE, true},
    {"channels last", 3, 4, 5, 6, CHANNELS_LAST, false},
    {"sliced", 2, 3, 7, 5, SLICED, true},
    {"1x1 planes", 37, 3, 1, 1, DENSE, false},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

/* x [n, c, h, w] in dt, laid out as the case says, random but for the constant channel */
static tg_tensor *make_x(const bn_case *bc, tg_dtype dt)
{
    const int64_t n = bc->n, c = bc->c, h = bc->h, w = bc->w;
    tg_tensor *x;
    if (bc->layout == CHANNELS_LAST) {
        x = tt_rand_tensor(dt, TG_DIMS(n, h, w, c));
        tt_become(&x, tg_tensor_permute(NULL, x, TG_AXES(0, 3, 1, 2)));
    } else if (bc->layout == SLICED) {
        x = tt_rand_tensor(dt, TG_DIMS(n, c, h, 2 * w));
        tt_become(&x, tg_tensor_slice(NULL, x, 3, 0, INT64_MAX, 2));
    } else {
        x = tt_rand_tensor(dt, TG_DIMS(n, c, h, w));
    }
    if (bc->constant_channel) {
        tg_tensor *ch = tg_tensor_select(NULL, x, 1, 1);
        ck_assert_int_eq(tg_tensor_fill_(ch, 0.375), TG_OK);
        tg_tensor_free(ch);
    }
    return x;
}

/* ------------------------------------------------------------------ the reference */

typedef struct reference {
    double *mean, *var, *invstd, *y, *sg, *sgx, *dx; /* sg = sum(g), sgx = sum(g * xhat) */
} reference;

static reference make_reference(const tg_tensor *x, const tg_tensor *gamma, const tg_tensor *beta,
                                const tg_tensor *gy, double eps)
{
    const int64_t N = x->shape[0], C = x->shape[1], HW = x->shape[2] * x->shape[3], M = N * HW;
    double *xv = tt_values(x), *gv = tt_values(gy), *ga = tt_values(gamma), *be = tt_values(beta);
    reference r = {calloc(C, 8), calloc(C, 8), calloc(C, 8), calloc(N * C * HW + 1, 8), calloc(C, 8),
                   calloc(C, 8), calloc(N * C * HW + 1, 8)};
#define AT(v, n, c, i) (v)[((n) * C + (c)) * HW + (i)]
    for (int64_t c = 0; c < C; c++) {
        double s = 0, ss = 0, sg = 0, sgx = 0;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++)
                s += AT(xv, n, c, i);
        double mean = s / (double)M;
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++)
                ss += (AT(xv, n, c, i) - mean) * (AT(xv, n, c, i) - mean);
        double var = ss / (double)M, invstd = 1 / sqrt(var + eps);
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                double xhat = (AT(xv, n, c, i) - mean) * invstd;
                AT(r.y, n, c, i) = xhat * ga[c] + be[c];
                sg += AT(gv, n, c, i);
                sgx += AT(gv, n, c, i) * xhat;
            }
        for (int64_t n = 0; n < N; n++)
            for (int64_t i = 0; i < HW; i++) {
                double xhat = (AT(xv, n, c, i) - mean) * invstd;
                double g = AT(gv, n, c, i);
                AT(r.dx, n, c, i) = ga[c] * invstd / (double)M * ((double)M * g - sg - xhat * sgx);
            }
        r.mean[c] = mean;
        r.var[c] = var;
        r.invstd[c] = invstd;
        r.sg[c] = sg;
        r.sgx[c] = sgx;
    }
#undef AT
    free(xv);
    free(gv);
    free(ga);
    free(be);
    return r;
}

static void free_reference(reference *r)
{
    free(r->mean);
    free(r->var);
    free(r->invstd);
    free(r->y);
    free(r->sg);
    free(r->sgx);
    free(r->dx);
}

/* Row `row` of an f64 [k, C] table against ref, to tol relative. */
static void check_row(const tg_tensor *table, int64_t row, const double *ref, double tol, const char *what)
{
    tg_tensor *r = tg_tensor_select(NULL, table, 0, row);
    double e = tt_max_rel_err(r, ref);
    ck_assert_msg(e <= tol, "%s: row %lld off by %g (> %g)", what, (long long)row, e, tol);
    tg_tensor_free(r);
}

/* ------------------------------------------------------------------ tests */

START_TEST(test_batch_norm_matches_reference)
{
    const bn_case *bc = &cases[_i / 2];
    const tg_dtype dt = _i % 2 ? TG_F64 : TG_F32;
    /* f64: rounding of sums over a few hundred values; f32: the output is computed in
     * f32 from f64 statistics, a few ulp of values near 1 */
    const double tol = dt == TG_F64 ? 1e-12 : 2e-6, stat_tol = 1e-12;
    const double eps = 1e-5;
    /* gy in another layout than x's, so that the walk takes both row strides */
    const bn_case gy_case = {.n = bc->n, .c = bc->c, .h = bc->h, .w = bc->w,
                             .layout = bc->layout == DENSE ? SLICED : DENSE};
    tg_tensor *x = make_x(bc, dt), *gy = make_x(&gy_case, dt);
    tg_tensor *gamma = tt_rand_tensor(dt, TG_DIMS(bc->c)), *beta = tt_rand_tensor(dt, TG_DIMS(bc->c));
    reference ref = make_reference(x, gamma, beta, gy, eps);
    tg_arena *ar = tg_arena_new(0);

    tg_tensor *stats, *sums;
    tg_tensor *y = tg_tensor_batch_norm2d(ar, x, gamma, beta, eps, &stats);
    ck_assert_msg(y && stats, "%s: %s", bc->what, tg_last_error());
    ck_assert(tg_tensor_is_contiguous(y) && y->dtype == dt);
    tt_assert_shape(stats, 3, bc->c);
    ck_assert_int_eq(stats->dtype, TG_F64);
    /* statistics in f64 from the values as stored: as exact for f32 as for f64 */
    check_row(stats, 0, ref.mean, stat_tol, bc->what);
    check_row(stats, 1, ref.var, stat_tol, bc->what);
    check_row(stats, 2, ref.invstd, bc->constant_channel ? 1e-9 : stat_tol, bc->what);
    tt_assert_close(y, ref.y, tol);

    tg_tensor *dx = tg_tensor_batch_norm2d_backward(ar, gy, x, gamma, stats, &sums);
    ck_assert_msg(dx && sums, "%s: %s", bc->what, tg_last_error());
    ck_assert(tg_tensor_is_contiguous(dx) && dx->dtype == dt);
    tt_assert_shape(sums, 2, bc->c);
    check_row(sums, 0, ref.sg, tol, bc->what);
    check_row(sums, 1, ref.sgx, tol, bc->what);
    /* f32: dx is a difference of terms of size |g| * gamma * invstd, each rounded in f32 */
    tt_assert_close(dx, ref.dx, dt == TG_F64 ? 1e-10 : 1e-5);

    tg_arena_free(ar);
    free_reference(&ref);
    tg_tensor_free(x);
    tg_tensor_free(gy);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}
END_TEST

/* A constant channel: variance 0, so xhat is 0, y is beta, and dx is gamma * invstd *
 * (g - mean(g)) with invstd = 1/sqrt(eps). */
START_TEST(test_batch_norm_constant_channel)
{
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 1, 1, 2), (double[]){3, 3, 3, 3});
    tg_tensor *gy = tt_tensor(TG_F64, TG_DIMS(2, 1, 1, 2), (double[]){1, 2, 3, 6});
    tg_tensor *gamma = tt_tensor(TG_F64, TG_DIMS(1), (double[]){2});
    tg_tensor *beta = tt_tensor(TG_F64, TG_DIMS(1), (double[]){-1});
    tg_tensor *stats, *sums;
    tg_tensor *y = tg_tensor_batch_norm2d(NULL, x, gamma, beta, 0.25, &stats);
    tt_assert_close(y, ((double[]){-1, -1, -1, -1}), 0);
    tt_assert_close(stats, ((double[]){3, 0, 2}), 0);
    tg_tensor *dx = tg_tensor_batch_norm2d_backward(NULL, gy, x, gamma, stats, &sums);
    tt_assert_close(dx, ((double[]){-8, -4, 0, 12}), 1e-15); /* 2 * 2 * (g - 3) */
    tt_assert_close(sums, ((double[]){12, 0}), 0);
    tg_tensor *list[] = {x, gy, gamma, beta, stats, sums, y, dx};
    for (int i = 0; i < 8; i++)
        tg_tensor_free(list[i]);
}
END_TEST

/* The statistics follow the reductions' summation rule: for contiguous planes they
 * are tg_tensor_mean's and tg_tensor_var's (correction 0) bits. */
START_TEST(test_batch_norm_statistics_are_the_reductions)
{
    static const int64_t shapes[][4] = {{3, 4, 5, 6}, {9, 2, 5, 7}, {2, 3, 16, 20}, {40, 2, 4, 4}};
    for (int k = 0; k < 4; k++)
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            tg_tensor *x = tt_rand_tensor(dt, 4, shapes[k]);
            tg_tensor *moments = tg_tensor_batch_norm2d_moments(NULL, x);
            tg_tensor *mean = tg_tensor_mean(NULL, x, TG_AXES(0, 2, 3), false);
            tg_tensor *var = tg_tensor_var(NULL, x, TG_AXES(0, 2, 3), 0, false);
            tg_tensor *m64 = tg_tensor_to_dtype(NULL, mean, TG_F64);
            tg_tensor *v64 = tg_tensor_to_dtype(NULL, var, TG_F64);
            const double *mo = tg_tensor_data(moments), *mv = tg_tensor_data(m64), *vv = tg_tensor_data(v64);
            const int64_t C = shapes[k][1], M = shapes[k][0] * shapes[k][2] * shapes[k][3];
            for (int64_t c = 0; c < C; c++) {
                /* the reductions store in x's dtype: compare after the same rounding */
                double mean_c = dt == TG_F32 ? (double)(float)mo[c] : mo[c];
                double var_c = mo[C + c] / (double)M;
                var_c = dt == TG_F32 ? (double)(float)var_c : var_c;
                ck_assert_msg(mean_c == mv[c] && var_c == vv[c], "shape %d, %s, channel %lld: mean %.17g "
                              "against %.17g, var %.17g against %.17g", k, tg_dtype_name(dt), (long long)c,
                              mean_c, mv[c], var_c, vv[c]);
            }
            tg_tensor *list[] = {x, moments, mean, var, m64, v64};
            for (int i = 0; i < 6; i++)
                tg_tensor_free(list[i]);
        }
}
END_TEST

/* moments -> stats -> normalize, and backward_sums -> backward_input, are the fused
 * kernels bit for bit. */
START_TEST(test_batch_norm_steps_are_the_fused_kernels)
{
    for (int k = 0; k < NCASES; k++)
        for (int d = 0; d < 2; d++) {
            const bn_case *bc = &cases[k];
            tg_dtype dt = d ? TG_F64 : TG_F32;
            tg_tensor *x = make_x(bc, dt), *gy = make_x(bc, dt);
            tg_tensor *gamma = tt_rand_tensor(dt, TG_DIMS(bc->c));
            tg_tensor *beta = tt_rand_tensor(dt, TG_DIMS(bc->c));
            tg_arena *ar = tg_arena_new(0);
            const int64_t C = bc->c, M = bc->n * bc->h * bc->w;
            const double eps = 1e-3;
            tg_tensor *stats, *sums;
            tg_tensor *y = tg_tensor_batch_norm2d(ar, x, gamma, beta, eps, &stats);
            tg_tensor *dx = tg_tensor_batch_norm2d_backward(ar, gy, x, gamma, stats, &sums);

            tg_tensor *mo = tg_tensor_batch_norm2d_moments(ar, x);
            tg_tensor *st = tg_tensor_empty(ar, TG_F64, TG_DIMS(3, C));
            ck_assert(mo && st);
            const double *mv = tg_tensor_data(mo);
            double *sv = tg_tensor_data(st);
            for (int64_t c = 0; c < C; c++) {
                sv[c] = mv[c];
                sv[C + c] = mv[C + c] / (double)M;
                sv[2 * C + c] = 1 / sqrt(sv[C + c] + eps);
            }
            ck_assert(tt_same_bits(st, stats));
            /* the stats through a transposed copy: any layout of the table is read */
            tg_tensor *st_c = tg_tensor_contiguous(ar, tg_tensor_transpose(ar, st, 0, 1));
            tg_tensor *st_t = tg_tensor_transpose(ar, st_c, 0, 1);
            ck_assert(st_t && !tg_tensor_is_contiguous(st_t));
            tg_tensor *y2 = tg_tensor_batch_norm2d_normalize(ar, x, gamma, beta, st_t);
            tg_tensor *sums2 = tg_tensor_batch_norm2d_backward_sums(ar, gy, x, st);
            tg_tensor *dx2 = tg_tensor_batch_norm2d_backward_input(ar, gy, x, gamma, st, sums2, (double)M);
            ck_assert_msg(y2 && sums2 && dx2, "%s", tg_last_error());
            ck_assert_msg(tt_same_bits(y, y2) && tt_same_bits(sums, sums2) && tt_same_bits(dx, dx2), "%s, %s",
                          bc->what, tg_dtype_name(dt));
            tg_arena_free(ar);
            tg_tensor *list[] = {x, gy, gamma, beta};
            for (int i = 0; i < 4; i++)
                tg_tensor_free(list[i]);
        }
}
END_TEST

START_TEST(test_batch_norm_thread_count_independent)
{
    /* 8 * 16 * 16 * 16 = 32768 values: the channel loops go parallel */
    const int saved = tg_get_num_threads();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *x = tt_rand_tensor(dt, TG_DIMS(8, 16, 16, 16));
        tg_tensor *gy = tt_rand_tensor(dt, TG_DIMS(8, 16, 16, 16));
        tg_tensor *gamma = tt_rand_tensor(dt, TG_DIMS(16)), *beta = tt_rand_tensor(dt, TG_DIMS(16));
        tg_tensor *r[3][4];
        for (int t = 0; t < 3; t++) {
            tg_set_num_threads(t + 1);
            r[t][0] = tg_tensor_batch_norm2d(NULL, x, gamma, beta, 1e-5, &r[t][1]);
            r[t][2] = tg_tensor_batch_norm2d_backward(NULL, gy, x, gamma, r[t][1], &r[t][3]);
        }
        for (int t = 1; t < 3; t++)
            for (int k = 0; k < 4; k++)
                ck_assert_msg(tt_same_bits(r[0][k], r[t][k]), "%s: result %d differs between 1 and %d threads",
                              tg_dtype_name(dt), k, t + 1);
        for (int t = 0; t < 3; t++)
            for (int k = 0; k < 4; k++)
                tg_tensor_free(r[t][k]);
        tg_tensor *list[] = {x, gy, gamma, beta};
        for (int i = 0; i < 4; i++)
            tg_tensor_free(list[i]);
    }
    tg_set_num_threads(saved);
}
END_TEST

/* The kernels' copies (tensor/isa.c: baseline x86-64, AVX2; AVX-512 CPUs run the AVX2
 * one) give the same bits, on dense planes and on a strided walk, both dtypes. */
START_TEST(test_batch_norm_isa_copies_same_bits)
{
    tg__isa saved = tg__isa_chosen();
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *x = tt_rand_tensor(dt, TG_DIMS(5, 6, 9, 13)); /* rows not a multiple of 8 */
        tg_tensor *gy = tt_rand_tensor(dt, TG_DIMS(5, 6, 9, 13));
        tg_tensor *gamma = tt_rand_tensor(dt, TG_DIMS(6)), *beta = tt_rand_tensor(dt, TG_DIMS(6));
        tg_tensor *xs = tg_tensor_permute(NULL, x, TG_AXES(0, 1, 3, 2)); /* strided along the rows */
        tg_tensor *gs = tg_tensor_permute(NULL, gy, TG_AXES(0, 1, 3, 2));
        for (int v = 0; v < 2; v++) {
            const tg_tensor *in = v ? xs : x, *g = v ? gs : gy;
            tg_tensor *ref[4] = {NULL, NULL, NULL, NULL};
            for (int i = 0; i < TG__ISA_COUNT; i++) {
                if (!tg__isa_force((tg__isa)i))
                    continue; /* a copy this CPU cannot run */
                tg_tensor *r[4];
                r[0] = tg_tensor_batch_norm2d(NULL, in, gamma, beta, 1e-5, &r[1]);
                r[2] = tg_tensor_batch_norm2d_backward(NULL, g, in, gamma, r[1], &r[3]);
                for (int k = 0; k < 4; k++) {
                    ck_assert_msg(r[k], "%s", tg_last_error());
                    if (!ref[k])
                        ref[k] = r[k]; /* generic, always the first */
                    else {
                        ck_assert_msg(tt_same_bits(r[k], ref[k]), "%s, %s%s: result %d differs from generic",
                                      tg__isa_name((tg__isa)i), tg_dtype_name(dt), v ? " strided" : "", k);
                        tg_tensor_free(r[k]);
                    }
                }
            }
            for (int k = 0; k < 4; k++)
                tg_tensor_free(ref[k]);
        }
        tg_tensor *list[] = {x, gy, gamma, beta, xs, gs};
        for (int i = 0; i < 6; i++)
            tg_tensor_free(list[i]);
    }
    ck_assert(tg__isa_force(saved));
}
END_TEST

/* An empty batch: an empty output, the mean of nothing (NaN), zero sums, an empty dx. */
START_TEST(test_batch_norm_empty_batch)
{
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 2, 3, 3));
    tg_tensor *gamma = tg_tensor_ones(NULL, TG_F32, TG_DIMS(2));
    tg_tensor *beta = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2));
    tg_tensor *stats, *sums;
    tg_tensor *y = tg_tensor_batch_norm2d(NULL, x, gamma, beta, 1e-5, &stats);
    ck_assert_msg(y && stats, "%s", tg_last_error());
    tt_assert_shape(y, 0, 2, 3, 3);
    ck_assert(isnan(((double *)tg_tensor_data(stats))[0]));
    tg_tensor *dx = tg_tensor_batch_norm2d_backward(NULL, x, x, gamma, stats, &sums);
    ck_assert_msg(dx && sums, "%s", tg_last_error());
    tt_assert_shape(dx, 0, 2, 3, 3);
    tt_assert_close(sums, ((double[]){0, 0, 0, 0}), 0);
    tg_tensor *list[] = {x, gamma, beta, stats, y, dx, sums};
    for (int i = 0; i < 7; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_batch_norm_errors)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 4, 4));
    tg_tensor *x3 = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 4));
    tg_tensor *xi = tg_tensor_zeros(ar, TG_I32, TG_DIMS(2, 3, 4, 4));
    tg_tensor *g3 = tg_tensor_ones(ar, TG_F32, TG_DIMS(3)), *g4 = tg_tensor_ones(ar, TG_F32, TG_DIMS(4));
    tg_tensor *b64 = tg_tensor_zeros(ar, TG_F64, TG_DIMS(3));
    tg_tensor *stats, *sums;
    ck_assert_ptr_nonnull(tg_tensor_batch_norm2d(ar, x, g3, g3, 1e-5, &stats));
    ck_assert_ptr_nonnull(tg_tensor_batch_norm2d_backward(ar, x, x, g3, stats, &sums));

    tt_expect_error(tg_tensor_batch_norm2d(ar, x3, g3, g3, 1e-5, NULL), TG_ERR_SHAPE,
                    "tg_tensor_batch_norm2d", "x [2,3,4] must be 4-D [N,C,H,W]");
    tt_expect_error(tg_tensor_batch_norm2d(ar, xi, g3, g3, 1e-5, NULL), TG_ERR_DTYPE,
                    "tg_tensor_batch_norm2d", "x [2,3,4,4] is i32 (f32 or f64)");
    tt_expect_error(tg_tensor_batch_norm2d(ar, x, g4, g3, 1e-5, NULL), TG_ERR_SHAPE,
                    "tg_tensor_batch_norm2d", "gamma [4] must be [3], one value per channel of x [2,3,4,4]");
    tt_expect_error(tg_tensor_batch_norm2d(ar, x, g3, b64, 1e-5, NULL), TG_ERR_DTYPE,
                    "tg_tensor_batch_norm2d", "beta is f64, x is f32");
    tt_expect_error(tg_tensor_batch_norm2d(ar, x, g3, g3, -1, NULL), TG_ERR_ARG,
                    "tg_tensor_batch_norm2d", "eps = -1 must be >= 0");
    tt_expect_error(tg_tensor_batch_norm2d_normalize(ar, x, g3, g3, sums), TG_ERR_SHAPE,
                    "tg_tensor_batch_norm2d_normalize", "stats f64 [2,3] must be f64 [3,3] for x [2,3,4,4]");
    tt_expect_error(tg_tensor_batch_norm2d_backward(ar, x3, x, g3, stats, NULL), TG_ERR_SHAPE,
                    "tg_tensor_batch_norm2d_backward",
                    "gy f32 [2,3,4] must have x's shape and dtype, f32 [2,3,4,4]");
    tt_expect_error(tg_tensor_batch_norm2d_backward_input(ar, x, x, g3, stats, sums, 31), TG_ERR_ARG,
                    "tg_tensor_batch_norm2d_backward_input",
                    "count = 31, fewer than the 32 values per channel of x");
    tg_clear_error();
    tt_expect_error(tg_tensor_batch_norm2d_moments(ar, NULL), TG_ERR_ARG,
                    "tg_tensor_batch_norm2d_moments", "NULL");
    tg_arena_free(ar);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/batch_norm");
    TCase *tc = tt_tcase("batch_norm");
    tcase_add_loop_test(tc, test_batch_norm_matches_reference, 0, 2 * NCASES);
    tcase_add_test(tc, test_batch_norm_constant_channel);
    tcase_add_test(tc, test_batch_norm_statistics_are_the_reductions);
    tcase_add_test(tc, test_batch_norm_steps_are_the_fused_kernels);
    tcase_add_test(tc, test_batch_norm_thread_count_independent);
    tcase_add_test(tc, test_batch_norm_isa_copies_same_bits);
    tcase_add_test(tc, test_batch_norm_empty_batch);
    tcase_add_test(tc, test_batch_norm_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
