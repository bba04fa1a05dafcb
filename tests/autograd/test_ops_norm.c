/* tests/autograd/test_ops_norm.c — the fused batch norm op (autograd/ops_norm.c):
 * gradients against central differences (f64) on strided inputs; the fused op against
 * nn's composed batch norm (tg_tape_set_fused(tp, false)) in f32 and f64: outputs,
 * gradients of x, gamma and beta, running statistics; only the gradients asked for;
 * bitwise the same on 1 and 2 threads; one full-size tensor kept; error messages. */
#include "ag_check.h"

/* ------------------------------------------------------------------ test data */

/* How x reaches the op: the stored tensor (a leaf) made [N,C,H,W] by a view on the tape. */
typedef enum layout {
    PLAIN,         /* stored [N,C,H,W] */
    NHWC,          /* stored [N,H,W,C], permuted: every row strided (stride C) */
    CNHW,          /* stored [C,N,H,W], permuted: contiguous planes, unusual N and C strides */
    EVERY_OTHER_W, /* stored [N,C,H,2W], every other column: stride 2 along W */
    N_LAYOUTS
} layout;

static const char *const layout_name[N_LAYOUTS] = {"plain", "NHWC", "CNHW", "every other W"};

/* The stored shape for an [n,c,h,w] input in layout l. */
static void stored_shape(layout l, const int64_t *s, int64_t *out)
{
    const int64_t n = s[0], c = s[1], h = s[2], w = s[3];
    const int64_t shapes[N_LAYOUTS][4] = {{n, c, h, w}, {n, h, w, c}, {c, n, h, w}, {n, c, h, 2 * w}};
    memcpy(out, shapes[l], sizeof shapes[l]);
}

static tg_tensor *present(tg_tape *tp, tg_tensor *x, layout l)
{
    switch (l) {
    case NHWC:
        return tg_permute(tp, x, TG_AXES(0, 3, 1, 2));
    case CNHW:
        return tg_permute(tp, x, TG_AXES(1, 0, 2, 3));
    case EVERY_OTHER_W:
        return tg_slice(tp, x, 3, 0, x->shape[3], 2);
    default:
        return x;
    }
}

/* A heap tensor of dtype dt with values a + b * U[-1, 1). */
static tg_tensor *rand_affine(tg_dtype dt, int ndim, const int64_t *shape, double a, double b)
{
    tg_tensor *u = tt_rand_tensor(dt, ndim, shape), *t = tg_tensor_affine(NULL, u, b, a);
    ck_assert_msg(t != NULL, "%s", tg_last_error());
    tg_tensor_free(u);
    return t;
}

/* ------------------------------------------------------------------ gradcheck */

typedef struct op_args {
    layout l;
    double eps;
} op_args;

static tg_tensor *bn_op(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const op_args *a = user;
    return tg_batch_norm2d(tp, present(tp, in[0], a->l), in[1], in[2], a->eps, NULL, NULL);
}

/* Every layout, a channel mean far from 0 with a large eps (so that eps is seen), and a
 * height of 1 (strided rows that are also whole planes). */
START_TEST(test_gradcheck)
{
    const int64_t shapes[2][4] = {{3, 2, 3, 4}, {3, 2, 1, 5}};
    for (int l = 0; l < N_LAYOUTS; l++) {
        for (int k = 0; k < 3; k++) {
            op_args a = {(layout)l, k == 1 ? 0.5 : 1e-5};
            int64_t s[4];
            stored_shape(a.l, shapes[k == 2], s);
            tg_tensor *in[3] = {rand_affine(TG_F64, 4, s, k == 1 ? 3 : 0, 2), tt_rand_tensor(TG_F64, TG_DIMS(2)),
                                tt_rand_tensor(TG_F64, TG_DIMS(2))};
            tg_gradcheck_report rep;
            tg_status st = tg_gradcheck(bn_op, &a, 3, in, NULL, &rep);
            ck_assert_msg(st == TG_OK && rep.ok, "%s, eps %g: %s (%s)", layout_name[l], a.eps,
                          rep.message, tg_last_error());
            ck_assert_int_eq(rep.kinks, 0);
            ck_assert_int_eq(rep.checked, tg_tensor_numel(in[0]) + 4);
            for (int i = 0; i < 3; i++)
                tg_tensor_free(in[i]);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ fused against composed */

/* What one training step of nn's batch norm layer gives (row-major f64 copies). */
typedef struct step_result {
    double *y, *dx, *dgamma, *dbeta, *rmean, *rvar;
    int64_t ny, nx, c;
    int tracked;   /* num_batches_tracked after the step */
    int records;   /* records in the layer's scope */
    const char *op; /* the op of its last record */
} step_result;

static void free_result(step_result *r)
{
    free(r->y);
    free(r->dx);
    free(r->dgamma);
    free(r->dbeta);
    free(r->rmean);
    free(r->rvar);
}

/* The layer on x (stored in layout l; values from x64) with gamma, beta and running
 * statistics from the f64 tensors given, backward from gout64, on a tape with fusion
 * on or off. */
static step_result layer_step(bool fused, tg_dtype dt, layout l, const tg_tensor *x64,
                              const tg_tensor *const *params64, const tg_tensor *gout64, double eps)
{
    int64_t c = params64[0]->shape[0];
    tg_model *m = tg_model_new();
    ck_assert_int_eq(tg_model_set_dtype(m, dt), TG_OK);
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", c), TG_OK);
    bn.eps = eps;
    tg_tensor *state[4] = {bn.weight, bn.bias, bn.running_mean, bn.running_var};
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(tg_tensor_copy_(state[i], params64[i]), TG_OK);
    tg_tensor *xs = tg_tensor_to_dtype(NULL, x64, dt);
    ck_assert_int_eq(tg_requires_grad(xs, "x"), TG_OK);

    tg_tape *tp = tg_tape_new(0);
    tg_tape_set_fused(tp, fused);
    tg_tensor *y = tg_nn_batch_norm2d_forward(tp, &bn, present(tp, xs, l));
    tg_tensor *g = tg_tensor_to_dtype(tg_tape_arena(tp), gout64, dt);
    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_int_eq(y->dtype, dt);

    step_result r = {.y = tt_values(y), .dx = tt_values(tg_grad(xs)), .dgamma = tt_values(tg_grad(bn.weight)),
                     .dbeta = tt_values(tg_grad(bn.bias)), .rmean = tt_values(bn.running_mean),
                     .rvar = tt_values(bn.running_var), .ny = tg_tensor_numel(y),
                     .nx = tg_tensor_numel(xs), .c = c,
                     .tracked = (int)tg_tensor_item(bn.num_batches_tracked)};
    for (int i = 0; i < tg_tape_size(tp); i++) {
        const tg_record *rec = tg_tape_record(tp, i);
        if (strcmp(rec->scope, "bn") == 0) {
            r.records++;
            r.op = rec->op->name; /* a static string */
        }
    }
    tg_tape_free(tp);
    tg_tensor_free(xs);
    tg_model_free(m);
    return r;
}

/* Largest |a - b| relative to max(1, |b|) over n values. */
static double max_err(const double *a, const double *b, int64_t n)
{
    double worst = 0;
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs(b[i]) > 1 ? fabs(b[i]) : 1, e = fabs(a[i] - b[i]) / scale;
        if (!(e <= worst))
            worst = e; /* NaN counts as the worst */
    }
    return worst;
}

/* Fused and composed on the same data agree within tol (outputs, the three gradients,
 * running statistics); one record against the composition's ten. */
static void expect_fused_matches_composed(tg_dtype dt, layout l, const int64_t *shape, double shift,
                                          double eps, double tol)
{
    int64_t s[4], c = shape[1];
    stored_shape(l, shape, s);
    tg_tensor *x64 = rand_affine(TG_F64, 4, s, shift, 2);
    tg_tensor *params[4] = {rand_affine(TG_F64, 1, &c, 1, 0.5), tt_rand_tensor(TG_F64, 1, &c),
                            tt_rand_tensor(TG_F64, 1, &c), rand_affine(TG_F64, 1, &c, 2, 0.5)};
    tg_tensor *gout = tt_rand_tensor(TG_F64, 4, shape);
    step_result f = layer_step(true, dt, l, x64, (const tg_tensor *const *)params, gout, eps);
    step_result k = layer_step(false, dt, l, x64, (const tg_tensor *const *)params, gout, eps);
    const char *what = dt == TG_F32 ? "f32" : "f64";
    struct {
        const char *name;
        double *a, *b;
        int64_t n;
    } cmp[] = {{"output", f.y, k.y, f.ny},           {"dx", f.dx, k.dx, f.nx},
               {"dgamma", f.dgamma, k.dgamma, c},    {"dbeta", f.dbeta, k.dbeta, c},
               {"running_mean", f.rmean, k.rmean, c}, {"running_var", f.rvar, k.rvar, c}};
    for (size_t i = 0; i < sizeof cmp / sizeof cmp[0]; i++) {
        double e = max_err(cmp[i].a, cmp[i].b, cmp[i].n);
        ck_assert_msg(e <= tol, "%s, %s, shift %g, eps %g: %s differs by %g > %g", what, layout_name[l],
                      shift, eps, cmp[i].name, e, tol);
    }
    ck_assert_int_eq(f.tracked, 1);
    ck_assert_int_eq(k.tracked, 1);
    ck_assert_int_eq(f.records, 1);
    ck_assert_str_eq(f.op, "batch_norm2d");
    ck_assert_int_eq(k.records, 10);
    free_result(&f);
    free_result(&k);
    tg_tensor_free(x64);
    tg_tensor_free(gout);
    for (int i = 0; i < 4; i++)
        tg_tensor_free(params[i]);
}

START_TEST(test_fused_matches_composed_f64)
{
    for (int l = 0; l < N_LAYOUTS; l++) {
        expect_fused_matches_composed(TG_F64, (layout)l, (int64_t[]){4, 3, 5, 6}, 0, 1e-5, 1e-12);
        expect_fused_matches_composed(TG_F64, (layout)l, (int64_t[]){4, 3, 5, 6}, 5, 0.1, 1e-12);
        expect_fused_matches_composed(TG_F64, (layout)l, (int64_t[]){4, 3, 1, 6}, 0, 1e-5, 1e-12);
    }
}
END_TEST

/* f32: within float32 rounding. The shapes include one above the threads' threshold
 * (32768 elements), and a channel mean of 5 std (where sum(x^2) - n mean^2 would lose
 * digits; two passes do not). */
START_TEST(test_fused_matches_composed_f32)
{
    for (int l = 0; l < N_LAYOUTS; l++) {
        expect_fused_matches_composed(TG_F32, (layout)l, (int64_t[]){4, 3, 5, 6}, 0, 1e-5, 2e-6);
        expect_fused_matches_composed(TG_F32, (layout)l, (int64_t[]){4, 3, 5, 6}, 10, 1e-5, 2e-6);
    }
    expect_fused_matches_composed(TG_F32, PLAIN, (int64_t[]){20, 8, 16, 16}, 1, 1e-5, 2e-6);
    expect_fused_matches_composed(TG_F32, NHWC, (int64_t[]){20, 8, 16, 16}, 1, 1e-5, 2e-6);
}
END_TEST

/* ------------------------------------------------------------------ the op itself */

/* The op's results: y, then the gradients of those inputs that are leaves (row-major
 * f64 copies, NULL for a constant), with gout = g. */
typedef struct op_result {
    double *v[4];
} op_result;

static op_result run_op(tg_tensor *const *in, bool const *leaf, layout l, const tg_tensor *g)
{
    tg_tensor *t[3];
    for (int i = 0; i < 3; i++) {
        t[i] = tg_tensor_clone(NULL, in[i]);
        if (leaf[i])
            ck_assert_int_eq(tg_requires_grad(t[i], "in"), TG_OK);
    }
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *mean = NULL, *var = NULL;
    tg_tensor *y = tg_batch_norm2d(tp, present(tp, t[0], l), t[1], t[2], 1e-5, &mean, &var);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_ptr_nonnull(mean);
    ck_assert_ptr_nonnull(var);
    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
    op_result r = {{tt_values(y)}};
    for (int i = 0; i < 3; i++) {
        if (leaf[i])
            r.v[i + 1] = tt_values(tg_grad(t[i]));
        else
            ck_assert_ptr_null(tg_grad(t[i]));
        tg_tensor_free(t[i]);
    }
    tg_tape_free(tp);
    return r;
}

/* Backward computes only what is asked for, and the same values as when all three are. */
START_TEST(test_only_needed_gradients)
{
    const int64_t shape[4] = {3, 4, 5, 5};
    tg_tensor *in[3] = {rand_affine(TG_F64, 4, shape, 2, 1), tt_rand_tensor(TG_F64, TG_DIMS(4)),
                        tt_rand_tensor(TG_F64, TG_DIMS(4))};
    tg_tensor *g = tt_rand_tensor(TG_F64, 4, shape);
    const bool cases[4][3] = {{true, true, true}, {false, true, true}, {true, false, false},
                              {false, false, true}};
    op_result all = run_op(in, cases[0], PLAIN, g);
    const int64_t n[4] = {75 * 4, 75 * 4, 4, 4};
    for (int k = 1; k < 4; k++) {
        op_result r = run_op(in, cases[k], PLAIN, g);
        for (int i = 0; i < 4; i++) {
            if (r.v[i])
                ck_assert_msg(max_err(r.v[i], all.v[i], n[i]) <= 1e-13, "case %d, result %d", k, i);
            free(r.v[i]);
        }
    }
    for (int i = 0; i < 4; i++)
        free(all.v[i]);
    for (int i = 0; i < 3; i++)
        tg_tensor_free(in[i]);
    tg_tensor_free(g);
}
END_TEST

/* Channels are split among threads, each summed by one in a fixed order: 1 and 2 threads
 * give the same bits, for 8 channels and for 3 (an odd split), contiguous and strided. */
START_TEST(test_threads_bitwise)
{
    const int64_t shapes[2][4] = {{20, 8, 16, 16}, {48, 3, 16, 16}}; /* above 32768 elements */
    for (int k = 0; k < 2; k++) {
        for (int l = 0; l < 2; l++) {
            layout lay = l ? NHWC : PLAIN;
            int64_t s[4], c = shapes[k][1];
            stored_shape(lay, shapes[k], s);
            tg_tensor *in[3] = {rand_affine(TG_F32, 4, s, 1, 2), rand_affine(TG_F32, 1, &c, 1, 0.5),
                                tt_rand_tensor(TG_F32, 1, &c)};
            tg_tensor *g = tt_rand_tensor(TG_F32, 4, shapes[k]);
            const bool leaf[3] = {true, true, true};
            tg_set_num_threads(1);
            op_result one = run_op(in, leaf, lay, g);
            tg_set_num_threads(2);
            op_result two = run_op(in, leaf, lay, g);
            int64_t n[4] = {tg_tensor_numel(g), tg_tensor_numel(g), c, c};
            for (int i = 0; i < 4; i++) {
                ck_assert_msg(memcmp(one.v[i], two.v[i], (size_t)n[i] * sizeof(double)) == 0,
                              "shape %d, %s: result %d differs between 1 and 2 threads", k,
                              layout_name[lay], i);
                free(one.v[i]);
                free(two.v[i]);
            }
            for (int i = 0; i < 3; i++)
                tg_tensor_free(in[i]);
            tg_tensor_free(g);
        }
    }
}
END_TEST

/* The forward keeps one full-size tensor (its output) where the composition keeps
 * several, and hands back the batch statistics: mean and biased variance. */
START_TEST(test_memory_and_statistics)
{
    const int64_t shape[4] = {16, 8, 16, 16};
    tg_tensor *x = rand_affine(TG_F32, 4, shape, 3, 2);
    tg_tensor *gamma = tg_tensor_ones(NULL, TG_F32, TG_DIMS(8)), *beta = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(8));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    const size_t bytes = (size_t)tg_tensor_numel(x) * sizeof(float);
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *mean = NULL, *var = NULL;
    size_t before = tg_arena_used(ar);
    tg_batch_norm2d(tp, x, gamma, beta, 1e-5, &mean, &var);
    size_t fused = tg_arena_used(ar) - before;
    ck_assert_msg(fused < bytes + 16384, "fused forward took %zu bytes for a %zu-byte input", fused, bytes);

    /* the statistics against tg_tensor_mean and tg_tensor_var (f64 accumulation both) */
    tt_assert_shape(mean, 8);
    tt_assert_shape(var, 8);
    ck_assert_int_eq(mean->dtype, TG_F32);
    double *ref_mean = tt_values(tg_tensor_mean(ar, x, TG_AXES(0, 2, 3), false));
    double *ref_var = tt_values(tg_tensor_var(ar, x, TG_AXES(0, 2, 3), 0, false));
    tt_assert_close(mean, ref_mean, 1e-7);
    tt_assert_close(var, ref_var, 1e-7);
    free(ref_mean);
    free(ref_var);

    tg_tape_reset(tp);
    tg_tensor *m4 = tg_mean(tp, x, TG_AXES(0, 2, 3), true), *v4 = tg_var(tp, x, TG_AXES(0, 2, 3), 0, true);
    before = tg_arena_used(ar);
    tg_mul(tp, tg_sub(tp, x, m4), tg_rsqrt(tp, tg_add_scalar(tp, v4, 1e-5)));
    size_t composed = tg_arena_used(ar) - before;
    ck_assert_msg(composed >= 2 * bytes, "composed took %zu bytes", composed);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}
END_TEST

/* The statistics keep f64's accuracy where a one-pass sum of squares loses all of it:
 * values 1e6 + U[-1, 1) in f64, against a two-pass reference in long double. It holds a
 * faster forward to that (one that splits rows into cached segments and combines their
 * moments must combine them about a shift, not about their raw means): planes of 80x80
 * are 6400 values, and in NHWC every row is strided. */
START_TEST(test_statistics_f64)
{
    const int64_t n = 3, c = 2, h = 80, w = 80, M = n * h * w;
    for (layout l = PLAIN; l <= NHWC; l++) {
        int64_t stored[4];
        stored_shape(l, (int64_t[]){n, c, h, w}, stored);
        tg_tensor *xs = rand_affine(TG_F64, 4, stored, 1e6, 1);
        tg_tensor *gamma = tg_tensor_ones(NULL, TG_F64, TG_DIMS(c)), *beta = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(c));
        tg_tape *tp = tg_tape_new(0);
        tg_tensor *x = present(tp, xs, l), *mean = NULL, *var = NULL;
        tg_batch_norm2d(tp, x, gamma, beta, 1e-5, &mean, &var);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
        double *v = tt_values(x), ref_mean[2], ref_var[2];
        for (int64_t ch = 0; ch < c; ch++) {
            long double s = 0, ss = 0;
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < h * w; k++)
                    s += v[(i * c + ch) * h * w + k];
            long double m = s / M;
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < h * w; k++) {
                    long double d = v[(i * c + ch) * h * w + k] - m;
                    ss += d * d;
                }
            ref_mean[ch] = (double)m;
            ref_var[ch] = (double)(ss / M);
        }
        tt_assert_close(mean, ref_mean, 1e-13); /* a sum of 19200 values near 1e6 */
        /* relative to the variance (about 1/3), not to max(1, |ref|) */
        double *got = tt_values(var);
        for (int64_t ch = 0; ch < c; ch++)
            ck_assert_msg(fabs(got[ch] - ref_var[ch]) <= 1e-12 * ref_var[ch], "%s: var %.17g, reference %.17g",
                          layout_name[l], got[ch], ref_var[ch]);
        free(got);
        free(v);
        tg_tape_free(tp);
        tg_tensor_free(xs);
        tg_tensor_free(gamma);
        tg_tensor_free(beta);
    }
}
END_TEST

/* Evaluation mode (grad disabled): the same values, statistics handed back, no record. */
START_TEST(test_no_grad)
{
    tg_tensor *x = rand_affine(TG_F64, TG_DIMS(2, 3, 2, 2), 1, 1);
    tg_tensor *gamma = tt_rand_tensor(TG_F64, TG_DIMS(3)), *beta = tt_rand_tensor(TG_F64, TG_DIMS(3));
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y1 = tg_batch_norm2d(tp, x, gamma, beta, 1e-5, NULL, NULL);
    ck_assert_int_eq(tg_tape_size(tp), 1);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *mean = NULL;
    tg_tensor *y2 = tg_batch_norm2d(tp, x, gamma, beta, 1e-5, &mean, NULL);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert_ptr_nonnull(mean);
    double *v1 = tt_values(y1);
    tt_assert_close(y2, v1, 0);
    free(v1);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}
END_TEST

/* An empty batch: an empty output and NaN statistics (the mean of nothing), no error. */
START_TEST(test_empty_batch)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *mean = NULL;
    tg_tensor *y = tg_batch_norm2d(tp, tg_tensor_zeros(ar, TG_F32, TG_DIMS(0, 2, 3, 3)),
                                   tg_tensor_ones(ar, TG_F32, TG_DIMS(2)),
                                   tg_tensor_zeros(ar, TG_F32, TG_DIMS(2)), 1e-5, &mean, NULL);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_shape(y, 0, 2, 3, 3);
    ck_assert(isnan(tg_tensor_get(mean, (int64_t[]){1})));
    tg_tape_free(tp);
}
END_TEST

/* An empty batch's gradients: gamma and beta change nothing, so theirs are 0 (as the
 * composed layer gives), not 0 * NaN from the statistics of nothing; x has none to take. */
START_TEST(test_empty_batch_gradients)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 2, 3, 3));
    tg_tensor *gamma = tg_tensor_ones(NULL, TG_F32, TG_DIMS(2)), *beta = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(gamma, "gamma"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(beta, "beta"), TG_OK);
    tg_tensor *y = tg_batch_norm2d(tp, x, gamma, beta, 1e-5, NULL, NULL);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y, 0, NULL, false)), TG_OK);
    for (int64_t c = 0; c < 2; c++) {
        ck_assert_double_eq(tg_tensor_get(tg_grad(gamma), (int64_t[]){c}), 0);
        ck_assert_double_eq(tg_tensor_get(tg_grad(beta), (int64_t[]){c}), 0);
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
}
END_TEST

/* ------------------------------------------------------------------ errors */

static void expect_error(tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps, tg_status st,
                         const char *msg)
{
    tg_tape *tp = tg_tape_new(0);
    tg_scope_push(tp, "stem");
    tg_tensor *mean = x, *var = x; /* not NULL: the call must clear them */
    tg_tensor *y = tg_batch_norm2d(tp, x, gamma, beta, eps, &mean, &var);
    ck_assert_ptr_nonnull(y); /* the placeholder */
    ck_assert_int_eq(tg_tape_status(tp), st);
    ck_assert_str_eq(tg_tape_error(tp), msg);
    ck_assert_ptr_null(mean);
    ck_assert_ptr_null(var);
    ck_assert_int_eq(tg_tape_size(tp), 0);
    tg_tape_free(tp);
}

START_TEST(test_errors)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 4, 4));
    tg_tensor *g3 = tg_tensor_ones(ar, TG_F32, TG_DIMS(3)), *b3 = tg_tensor_zeros(ar, TG_F32, TG_DIMS(3));
    expect_error(tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 4)), g3, b3, 1e-5, TG_ERR_SHAPE,
                 "tg_batch_norm2d: x [2,3,4] must be 4-D [N,C,H,W] (called in stem)");
    expect_error(x, tg_tensor_ones(ar, TG_F32, TG_DIMS(4)), b3, 1e-5, TG_ERR_SHAPE,
                 "tg_batch_norm2d: gamma [4] must be [3], one value per channel of x [2,3,4,4] "
                 "(called in stem)");
    expect_error(x, g3, tg_tensor_zeros(ar, TG_F32, TG_DIMS(1, 3)), 1e-5, TG_ERR_SHAPE,
                 "tg_batch_norm2d: beta [1,3] must be [3], one value per channel of x [2,3,4,4] "
                 "(called in stem)");
    expect_error(x, g3, tg_tensor_zeros(ar, TG_F64, TG_DIMS(3)), 1e-5, TG_ERR_DTYPE,
                 "tg_batch_norm2d: beta is f64, x is f32 (called in stem)");
    expect_error(tg_tensor_zeros(ar, TG_I32, TG_DIMS(2, 3, 4, 4)), g3, b3, 1e-5, TG_ERR_DTYPE,
                 "tg_batch_norm2d: x [2,3,4,4] is i32 (f32 or f64) (called in stem)");
    expect_error(x, g3, b3, -1, TG_ERR_ARG, "tg_batch_norm2d: eps = -1 must be >= 0 (called in stem)");
    expect_error(x, g3, b3, NAN, TG_ERR_ARG, "tg_batch_norm2d: eps = nan must be >= 0 (called in stem)");
    expect_error(x, NULL, b3, 1e-5, TG_ERR_ARG, "tg_batch_norm2d: input 1 is NULL (called in stem)");
    tg_arena_free(ar);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd_ops_norm");
    TCase *tc = tt_tcase("batch_norm2d");
    tcase_add_test(tc, test_gradcheck);
    tcase_add_test(tc, test_fused_matches_composed_f64);
    tcase_add_test(tc, test_fused_matches_composed_f32);
    tcase_add_test(tc, test_only_needed_gradients);
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_memory_and_statistics);
    tcase_add_test(tc, test_statistics_f64);
    tcase_add_test(tc, test_no_grad);
    tcase_add_test(tc, test_empty_batch);
    tcase_add_test(tc, test_empty_batch_gradients);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
