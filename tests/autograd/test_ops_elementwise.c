/* tests/autograd/test_ops_elementwise.c — every op of autograd/ops_elementwise.c:
 * gradients against central differences (tg_gradcheck, f64) on contiguous, broadcast
 * and non-contiguous inputs (views made on the tape inside the checked function), kinks,
 * gradient reuse, dropout's mask, f32 against f64, and the tape's sticky errors. */
#include "check_util.h"

#include <stdio.h>

typedef tg_tensor *(*unary_fn)(tg_tape *tp, tg_tensor *x);
typedef tg_tensor *(*binary_fn)(tg_tape *tp, tg_tensor *a, tg_tensor *b);

/* ------------------------------------------------------------------ test data */

/* Where an op's inputs are drawn, so that central differences (eps 1e-6) never straddle
 * a kink or leave the domain. */
typedef enum domain {
    ANY,        /* [-1, 1) */
    POSITIVE,   /* [0.2, 1.7): log, sqrt, rsqrt, a divisor, fractional powers */
    AWAY_FROM_0,      /* |x| >= 0.1: relu, leaky_relu */
    AWAY_FROM_BOUNDS, /* at least 0.02 from the clamp bounds used below */
    GRID_A,     /* 0.2 n + [0, 0.05) */
    GRID_B      /* 0.2 n + 0.1 + [0, 0.05): at least 0.05 from every GRID_A value (maximum) */
} domain;

static const double clamp_bounds[] = {-0.5, 0.5, 0.3, -0.2};

static double draw(domain d)
{
    double v = tt_rnd();
    switch (d) {
    case ANY:
        return v;
    case POSITIVE:
        return 0.2 + 0.75 * (v + 1);
    case AWAY_FROM_0:
        return copysign(0.1 + 0.9 * fabs(v), v);
    case AWAY_FROM_BOUNDS:
        for (size_t k = 0; k < sizeof clamp_bounds / sizeof *clamp_bounds; k++)
            if (fabs(v - clamp_bounds[k]) < 0.02)
                v = clamp_bounds[k] + (v < clamp_bounds[k] ? -0.02 : 0.02);
        return v;
    case GRID_A:
    case GRID_B: {
        double n = floor(5 * v); /* -5 .. 4 */
        return 0.2 * n + (d == GRID_B ? 0.1 : 0) + 0.025 * (tt_rnd() + 1);
    }
    }
    return v;
}

static int64_t numel_of(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

/* n values from domain d (malloc'd) */
static double *draw_values(int64_t n, domain d)
{
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = draw(d);
    return v;
}

static tg_tensor *draw_tensor(tg_dtype dt, int ndim, const int64_t *shape, domain d)
{
    double *v = draw_values(numel_of(ndim, shape), d);
    tg_tensor *t = tt_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

/* ------------------------------------------------------------------ the ops under test */

static tg_tensor *u_neg(tg_tape *tp, tg_tensor *x) { return tg_neg(tp, x); }
static tg_tensor *u_add_scalar(tg_tape *tp, tg_tensor *x) { return tg_add_scalar(tp, x, 0.7); }
static tg_tensor *u_mul_scalar(tg_tape *tp, tg_tensor *x) { return tg_mul_scalar(tp, x, -1.3); }
static tg_tensor *u_pow3(tg_tape *tp, tg_tensor *x) { return tg_pow_scalar(tp, x, 3); }
static tg_tensor *u_pow2(tg_tape *tp, tg_tensor *x) { return tg_pow_scalar(tp, x, 2); }
static tg_tensor *u_pow_2_5(tg_tape *tp, tg_tensor *x) { return tg_pow_scalar(tp, x, 2.5); }
static tg_tensor *u_pow_m1_5(tg_tape *tp, tg_tensor *x) { return tg_pow_scalar(tp, x, -1.5); }
static tg_tensor *u_pow0(tg_tape *tp, tg_tensor *x) { return tg_pow_scalar(tp, x, 0); }
static tg_tensor *u_exp(tg_tape *tp, tg_tensor *x) { return tg_exp(tp, x); }
static tg_tensor *u_log(tg_tape *tp, tg_tensor *x) { return tg_log(tp, x); }
static tg_tensor *u_sqrt(tg_tape *tp, tg_tensor *x) { return tg_sqrt(tp, x); }
static tg_tensor *u_rsqrt(tg_tape *tp, tg_tensor *x) { return tg_rsqrt(tp, x); }
static tg_tensor *u_tanh(tg_tape *tp, tg_tensor *x) { return tg_tanh(tp, x); }
static tg_tensor *u_sigmoid(tg_tape *tp, tg_tensor *x) { return tg_sigmoid(tp, x); }
static tg_tensor *u_relu(tg_tape *tp, tg_tensor *x) { return tg_relu(tp, x); }
static tg_tensor *u_leaky_relu(tg_tape *tp, tg_tensor *x) { return tg_leaky_relu(tp, x, 0.1); }
static tg_tensor *u_clamp(tg_tape *tp, tg_tensor *x) { return tg_clamp(tp, x, -0.5, 0.5); }
static tg_tensor *u_clamp_hi(tg_tape *tp, tg_tensor *x) { return tg_clamp(tp, x, NAN, 0.3); }
static tg_tensor *u_clamp_lo(tg_tape *tp, tg_tensor *x) { return tg_clamp(tp, x, -0.2, NAN); }
static tg_tensor *u_clamp_crossed(tg_tape *tp, tg_tensor *x) { return tg_clamp(tp, x, 0.5, -0.5); }
static tg_tensor *u_dropout0(tg_tape *tp, tg_tensor *x) { return tg_dropout(tp, x, 0); }
static tg_tensor *u_dropout(tg_tape *tp, tg_tensor *x) { return tg_dropout(tp, x, 0.4); }

typedef struct unary_case {
    const char *name;
    unary_fn f;
    domain d;
} unary_case;

/* Every unary op; dropout with p > 0 is left out of the gradchecks (see test_dropout_grad). */
static const unary_case unary_cases[] = {
    {"neg", u_neg, ANY},
    {"add_scalar", u_add_scalar, ANY},
    {"mul_scalar", u_mul_scalar, ANY},
    {"pow_scalar 3", u_pow3, ANY},
    {"pow_scalar 2", u_pow2, ANY},
    {"pow_scalar 2.5", u_pow_2_5, POSITIVE},
    {"pow_scalar -1.5", u_pow_m1_5, POSITIVE},
    {"pow_scalar 0", u_pow0, ANY},
    {"exp", u_exp, ANY},
    {"log", u_log, POSITIVE},
    {"sqrt", u_sqrt, POSITIVE},
    {"rsqrt", u_rsqrt, POSITIVE},
    {"tanh", u_tanh, ANY},
    {"sigmoid", u_sigmoid, ANY},
    {"relu", u_relu, AWAY_FROM_0},
    {"leaky_relu", u_leaky_relu, AWAY_FROM_0},
    {"clamp", u_clamp, AWAY_FROM_BOUNDS},
    {"clamp hi only", u_clamp_hi, AWAY_FROM_BOUNDS},
    {"clamp lo only", u_clamp_lo, AWAY_FROM_BOUNDS},
    {"dropout p=0", u_dropout0, ANY},
};
#define N_UNARY ((int)(sizeof unary_cases / sizeof unary_cases[0]))

typedef struct binary_case {
    const char *name;
    binary_fn f;
    domain da, db;
} binary_case;

static const binary_case binary_cases[] = {
    {"add", tg_add, ANY, ANY},
    {"sub", tg_sub, ANY, ANY},
    {"mul", tg_mul, ANY, ANY},
    {"div", tg_div, ANY, POSITIVE},
    {"maximum", tg_maximum, GRID_A, GRID_B},
};
#define N_BINARY ((int)(sizeof binary_cases / sizeof binary_cases[0]))

/* ------------------------------------------------------------------ gradcheck helpers */

/* How the checked function presents its (contiguous f64) inputs to the op. */
typedef enum layout {
    PLAIN,     /* as given */
    TRANSPOSE, /* tg_transpose(x, 0, 1): an input [n, m] becomes a strided [m, n] */
    SLICE,     /* tg_slice(x, 1, 1, stop, 2): every other column */
    EXPAND     /* tg_expand to [3, 4]: stride-0 axes */
} layout;

static tg_tensor *present(tg_tape *tp, tg_tensor *x, layout l)
{
    switch (l) {
    case PLAIN:
        return x;
    case TRANSPOSE:
        return tg_transpose(tp, x, 0, 1);
    case SLICE:
        return tg_slice(tp, x, 1, 1, x->shape[1], 2);
    case EXPAND:
        return tg_expand(tp, x, TG_DIMS(3, 4));
    }
    return x;
}

typedef struct check_fn_args {
    unary_fn u;
    binary_fn b;
    layout la, lb;
} check_fn_args;

static tg_tensor *check_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const check_fn_args *a = user;
    if (a->u)
        return a->u(tp, present(tp, in[0], a->la));
    return a->b(tp, present(tp, in[0], a->la), present(tp, in[1], a->lb));
}

/* Gradchecks the op on the inputs, which keep away from kinks: no element may be
 * skipped as one, and every element is compared. */
static void expect_gradcheck(const char *what, check_fn_args args, int nin, tg_tensor *const *in)
{
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(check_fn, &args, nin, in, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s: %s (%s)", what, rep.message, tg_last_error());
    ck_assert_msg(rep.kinks == 0, "%s: %lld kinks where the inputs avoid them", what,
                  (long long)rep.kinks);
    int64_t total = 0;
    for (int i = 0; i < nin; i++)
        total += tg_tensor_numel(in[i]);
    ck_assert_msg(rep.checked == total, "%s: checked %lld of %lld elements", what,
                  (long long)rep.checked, (long long)total);
}

/* ------------------------------------------------------------------ unary gradchecks */

/* Each unary op (one loop iteration each) on a random 2-D shape, a 0-d scalar, and
 * transposed, sliced and expanded views. */
START_TEST(test_unary_gradcheck)
{
    const unary_case *c = &unary_cases[_i];
    int64_t rows = 1 + (int64_t)(2.5 * (tt_rnd() + 1)), cols = 1 + (int64_t)(3 * (tt_rnd() + 1));
    struct {
        const char *name;
        layout l;
        int ndim;
        int64_t shape[2];
    } variants[] = {
        {"random shape", PLAIN, 2, {rows, cols}}, /* 1..5 x 1..6 */
        {"0-d", PLAIN, 0, {0, 0}},
        {"transposed", TRANSPOSE, 2, {4, 3}},
        {"sliced", SLICE, 2, {3, 9}},
        {"expanded", EXPAND, 2, {3, 1}},
    };
    for (size_t v = 0; v < sizeof variants / sizeof *variants; v++) {
        tg_tensor *x = draw_tensor(TG_F64, variants[v].ndim, variants[v].shape, c->d);
        char what[96];
        snprintf(what, sizeof what, "%s, %s", c->name, variants[v].name);
        expect_gradcheck(what, (check_fn_args){.u = c->f, .la = variants[v].l}, 1, &x);
        tg_tensor_free(x);
    }
}
END_TEST

/* ------------------------------------------------------------------ binary gradchecks */

typedef struct shape_pair {
    const char *name;
    layout la, lb;
    int an, bn;
    int64_t as[3], bs[3];
} shape_pair;

static const shape_pair shape_pairs[] = {
    {"same shape", PLAIN, PLAIN, 2, 2, {3, 4}, {3, 4}},
    {"[3,1] with [1,4]", PLAIN, PLAIN, 2, 2, {3, 1}, {1, 4}},
    {"[4] with [2,3,4]", PLAIN, PLAIN, 1, 3, {4}, {2, 3, 4}},
    {"[2,3,4] with [4]", PLAIN, PLAIN, 3, 1, {2, 3, 4}, {4}},
    {"0-d with [2,3]", PLAIN, PLAIN, 0, 2, {0}, {2, 3}},
    {"[2,3] with 0-d", PLAIN, PLAIN, 2, 0, {2, 3}, {0}},
    {"both transposed", TRANSPOSE, TRANSPOSE, 2, 2, {4, 3}, {4, 3}},
    {"sliced with expanded", SLICE, EXPAND, 2, 2, {3, 9}, {3, 1}},
    {"transposed with broadcast [4]", TRANSPOSE, PLAIN, 2, 1, {4, 3}, {4}},
};
#define N_PAIRS ((int)(sizeof shape_pairs / sizeof shape_pairs[0]))

START_TEST(test_binary_gradcheck)
{
    const binary_case *c = &binary_cases[_i];
    for (int k = 0; k < N_PAIRS; k++) {
        const shape_pair *s = &shape_pairs[k];
        tg_tensor *in[2] = {draw_tensor(TG_F64, s->an, s->as, c->da),
                            draw_tensor(TG_F64, s->bn, s->bs, c->db)};
        char what[96];
        snprintf(what, sizeof what, "%s, %s", c->name, s->name);
        expect_gradcheck(what, (check_fn_args){.b = c->f, .la = s->la, .lb = s->lb}, 2, in);
        tg_tensor_free(in[0]);
        tg_tensor_free(in[1]);
    }
}
END_TEST

/* Both inputs the same tensor: a * a, a / a, maximum(a, a) (a tie everywhere, half to
 * each side, adding up to the whole gradient). */
static tg_tensor *same_input_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    binary_fn f = *(binary_fn *)user;
    return f(tp, in[0], in[0]);
}

START_TEST(test_binary_same_input)
{
    binary_fn f = binary_cases[_i].f;
    tg_tensor *x = draw_tensor(TG_F64, TG_DIMS(2, 3), POSITIVE);
    tg_gradcheck_report rep;
    ck_assert_msg(tg_gradcheck(same_input_fn, &f, 1, &x, NULL, &rep) == TG_OK, "%s: %s",
                  binary_cases[_i].name, rep.message);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ kinks */

/* relu at exactly 0: the one-sided slopes differ there; gradcheck reports the kinks
 * and passes (the analytic 0 is the left slope). */
START_TEST(test_relu_kinks_reported)
{
    double v[8] = {0, -0.5, 0, 0.25, 0, 0.75, -1, 0};
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 4), v);
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(check_fn, &(check_fn_args){.u = u_relu}, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.kinks, 4);
    ck_assert_int_eq(rep.checked, 4);
    tg_tensor_free(x);
}
END_TEST

/* The gradient at the kinks themselves, as PyTorch defines it: relu 0 at 0, leaky_relu
 * slope at 0, clamp 1 at its bounds (a NaN bound: no bound; lo > hi: 0 everywhere),
 * maximum half to each side of a tie, pow_scalar(0) 0 everywhere (not NaN at 0). */
static void expect_grad_at(unary_fn f, const double *x, const double *expect, int n)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *t = tt_tensor(TG_F64, 1, (int64_t[]){n}, x);
    ck_assert_int_eq(tg_requires_grad(t, "x"), TG_OK);
    tg_tensor *y = f(tp, t);
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, y->ndim, y->shape);
    ck_assert_msg(tg_backward_from(tp, y, ones) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(t), expect, 0);
    tg_tensor_free(t);
    tg_tape_free(tp);
}

START_TEST(test_grad_at_kinks)
{
    expect_grad_at(u_relu, (double[]){0, -0.0, 1, -1}, (double[]){0, 0, 1, 0}, 4);
    expect_grad_at(u_leaky_relu, (double[]){0, 2, -2}, (double[]){0.1, 1, 0.1}, 3);
    expect_grad_at(u_clamp, (double[]){-0.5, 0.5, -0.6, 0.6, 0}, (double[]){1, 1, 0, 0, 1}, 5);
    expect_grad_at(u_clamp_hi, (double[]){-100, 0.3, 0.31}, (double[]){1, 1, 0}, 3);
    expect_grad_at(u_clamp_lo, (double[]){100, -0.2, -0.21}, (double[]){1, 1, 0}, 3);
    expect_grad_at(u_clamp_crossed, (double[]){-0.5, 0, 0.5, 1}, (double[]){0, 0, 0, 0}, 4);
    expect_grad_at(u_pow0, (double[]){0, 2, -3}, (double[]){0, 0, 0}, 3);

    /* maximum: a tie gives half to each side; the broadcast b sums its shares */
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 2, 3});
    tg_tensor *b = tt_tensor(TG_F64, 0, NULL, (double[]){2});
    ck_assert_int_eq(tg_requires_grad(a, "a"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(b, "b"), TG_OK);
    tg_tensor *y = tg_maximum(tp, a, b);
    tt_assert_close(y, ((double[]){2, 2, 3}), 0);
    tg_tensor *g = tt_tensor(TG_F64, TG_DIMS(3), (double[]){10, 20, 40});
    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(a), ((double[]){0, 10, 40}), 0);
    tt_assert_close(tg_grad(b), ((double[]){10 + 10}), 0);
    tg_tensor_free(g);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

/* clamp at its bounds: the one-sided slopes differ, the analytic gradient (1) is the
 * inner one, so gradcheck counts kinks and passes. */
START_TEST(test_clamp_kinks_reported)
{
    double v[6] = {-0.5, 0.5, 0.1, -0.5, 0.9, 0.5};
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(6), v);
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(check_fn, &(check_fn_args){.u = u_clamp}, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.kinks, 4);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ reuse */

/* b = a + a; c = b * b: a's gradient from both uses of a and of b, 8a exactly. */
START_TEST(test_reuse_accumulates)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = draw_tensor(TG_F64, TG_DIMS(2, 3), ANY);
    ck_assert_int_eq(tg_requires_grad(a, "a"), TG_OK);
    tg_tensor *b = tg_add(tp, a, a);
    tg_tensor *c = tg_mul(tp, b, b);
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(2, 3));
    ck_assert_msg(tg_backward_from(tp, c, ones) == TG_OK, "%s", tg_tape_error(tp));
    double *av = tt_values(a), expect[6];
    for (int i = 0; i < 6; i++)
        expect[i] = 8 * av[i];
    tt_assert_close(tg_grad(a), expect, 0);

    /* a second backward on a new tape accumulates into the leaf: 16a */
    tg_tape_reset(tp);
    b = tg_add(tp, a, a);
    c = tg_mul(tp, b, b);
    ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(2, 3));
    ck_assert_msg(tg_backward_from(tp, c, ones) == TG_OK, "%s", tg_tape_error(tp));
    for (int i = 0; i < 6; i++)
        expect[i] = 16 * av[i];
    tt_assert_close(tg_grad(a), expect, 0);
    free(av);
    tg_tensor_free(a);
    tg_tape_free(tp);
}
END_TEST

/* Only the inputs that need a gradient get one: a constant operand is left alone. */
START_TEST(test_constant_operand)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_tensor(TG_F64, TG_DIMS(2), (double[]){1, 2});
    tg_tensor *k = tt_tensor(TG_F64, TG_DIMS(2), (double[]){3, 5});
    ck_assert_int_eq(tg_requires_grad(a, "a"), TG_OK);
    tg_tensor *y = tg_div(tp, k, a); /* k / a: da = -k / a^2 */
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(2));
    ck_assert_msg(tg_backward_from(tp, y, ones) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(a), ((double[]){-3, -5.0 / 4}), 1e-15);
    ck_assert_ptr_null(tg_grad(k));
    /* nothing needs a gradient: the op is recorded, but backward refuses */
    tg_tape_reset(tp);
    y = tg_exp(tp, k);
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert(!tg_tape_record(tp, 0)->requires_grad);
    ck_assert_int_eq(tg_backward_from(tp, y, y), TG_ERR_ARG);
    tg_tensor_free(a);
    tg_tensor_free(k);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ dropout */

/* On a 10k-element tensor the kept fraction is 1 - p (within 5 standard deviations),
 * every kept element is x / (1 - p), and the mask is fixed in the record. */
START_TEST(test_dropout_mask_statistics)
{
    const double ps[] = {0.1, 0.5, 0.8};
    for (size_t k = 0; k < sizeof ps / sizeof *ps; k++) {
        double p = ps[k];
        tg_tape *tp = tg_tape_new(7);
        tg_tensor *x = tg_tensor_full(NULL, TG_F32, TG_DIMS(100, 100), 3);
        tg_tensor *y = tg_dropout(tp, x, p);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
        double *v = tt_values(y);
        int64_t kept = 0;
        for (int i = 0; i < 10000; i++) {
            if (v[i] != 0) {
                kept++;
                ck_assert_msg(fabs(v[i] - 3 / (1 - p)) <= 1e-6 * v[i], "kept value %g", v[i]);
            }
        }
        double frac = (double)kept / 10000, sd = sqrt(p * (1 - p) / 10000);
        ck_assert_msg(fabs(frac - (1 - p)) <= 5 * sd, "p = %g: kept %g", p, frac);
        free(v);
        tg_tensor_free(x);
        tg_tape_free(tp);
    }
}
END_TEST

/* Backward uses forward's mask: grad = gout * mask / (1 - p) with the mask read off the
 * output, checked directly here (tests/autograd/test_gradcheck.c also gradchecks
 * dropout: its evaluations keep gradients on and restore the tape's generator). */
START_TEST(test_dropout_grad)
{
    const double p = 0.4;
    tg_tape *tp = tg_tape_new(11);
    tg_tensor *x = draw_tensor(TG_F64, TG_DIMS(6, 7), AWAY_FROM_0);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    /* through a transposed view, so that the mask meets a strided input */
    tg_tensor *y = tg_dropout(tp, tg_transpose(tp, x, 0, 1), p);
    tg_tensor *g = draw_tensor(TG_F64, TG_DIMS(7, 6), ANY);
    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
    double *yv = tt_values(y), *gv = tt_values(g), *xv = tt_values(x), *dx = tt_values(tg_grad(x));
    int kept = 0;
    for (int i = 0; i < 6; i++)
        for (int j = 0; j < 7; j++) {
            double mask = yv[j * 6 + i] != 0; /* x is away from 0 */
            kept += (int)mask;
            ck_assert_double_eq_tol(yv[j * 6 + i], xv[i * 7 + j] * mask / (1 - p), 1e-15);
            ck_assert_double_eq_tol(dx[i * 7 + j], gv[j * 6 + i] * mask / (1 - p), 1e-15);
        }
    ck_assert(kept > 0 && kept < 42);
    free(yv);
    free(gv);
    free(xv);
    free(dx);
    tg_tensor_free(g);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* A finite-difference check of dropout with the generator restored before every
 * evaluation and gradients on (as training runs it): dropout is linear in x for a
 * fixed mask, so the differences must match the backward. */
START_TEST(test_dropout_finite_differences)
{
    tg_tape *tp = tg_tape_new(5);
    tg_tensor *x = draw_tensor(TG_F64, TG_DIMS(3, 5), ANY);
    tg_tensor *w = draw_tensor(TG_F64, TG_DIMS(3, 5), ANY);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_rng saved = *tg_tape_rng(tp);
    /* L = sum(w * tanh(dropout(x))) through gout = w */
    tg_tensor *y = tg_tanh(tp, tg_dropout(tp, x, 0.5));
    ck_assert_msg(tg_backward_from(tp, y, w) == TG_OK, "%s", tg_tape_error(tp));
    double *dx = tt_values(tg_grad(x)), *xd = tg_tensor_data(x), *wv = tt_values(w);
    const double eps = 1e-6;
    for (int j = 0; j < 15; j++) {
        double L[2];
        for (int s = 0; s < 2; s++) {
            double orig = xd[j];
            xd[j] = orig + (s ? -eps : eps);
            tg_tape_reset(tp);
            *tg_tape_rng(tp) = saved;
            double *v = tt_values(tg_tanh(tp, tg_dropout(tp, x, 0.5)));
            L[s] = 0;
            for (int i = 0; i < 15; i++)
                L[s] += wv[i] * v[i];
            free(v);
            xd[j] = orig;
        }
        double numeric = (L[0] - L[1]) / (2 * eps);
        ck_assert_msg(fabs(numeric - dx[j]) <= 1e-6 + 1e-4 * fabs(numeric), "element %d: %g vs %g",
                      j, dx[j], numeric);
    }
    free(dx);
    free(wv);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

/* Evaluation mode (and p == 0) is the identity: same values, nothing drawn or recorded. */
START_TEST(test_dropout_identity)
{
    tg_tape *tp = tg_tape_new(3);
    tg_tensor *x = draw_tensor(TG_F32, TG_DIMS(4, 5), ANY);
    double *xv = tt_values(x);
    tg_rng before = *tg_tape_rng(tp);
    bool was = tg_tape_set_grad_enabled(tp, false);
    ck_assert(was);
    tg_tensor *y = tg_dropout(tp, x, 0.5);
    ck_assert_msg(y && tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(y, xv, 0);
    ck_assert_int_eq(tg_tape_size(tp), 0);
    ck_assert(memcmp(&before, tg_tape_rng(tp), sizeof before) == 0);
    tg_tape_set_grad_enabled(tp, true);

    /* p == 0 in training: recorded, the identity, gradient passed through */
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    y = tg_dropout(tp, x, 0);
    tt_assert_close(y, xv, 0);
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert(memcmp(&before, tg_tape_rng(tp), sizeof before) == 0);
    tg_tensor *g = draw_tensor(TG_F32, TG_DIMS(4, 5), ANY);
    double *gv = tt_values(g);
    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(x), gv, 0);
    free(gv);
    free(xv);
    tg_tensor_free(g);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* The mask is a function of the seed and the generator's position only: the same seed
 * gives the same mask (in f32 and f64 alike), the next call and another seed differ. */
static double *dropout_values(uint64_t seed, tg_dtype dt, int calls)
{
    tg_tape *tp = tg_tape_new(seed);
    tg_tensor *x = tg_tensor_ones(NULL, dt, TG_DIMS(50, 20));
    tg_tensor *y = NULL;
    for (int i = 0; i < calls; i++)
        y = tg_dropout(tp, x, 0.5);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    double *v = tt_values(y);
    tg_tensor_free(x);
    tg_tape_free(tp);
    return v;
}

START_TEST(test_dropout_seed)
{
    double *a = dropout_values(42, TG_F32, 1), *b = dropout_values(42, TG_F32, 1);
    double *c = dropout_values(42, TG_F64, 1), *d = dropout_values(43, TG_F32, 1);
    double *e = dropout_values(42, TG_F32, 2);
    ck_assert(memcmp(a, b, 1000 * sizeof *a) == 0);
    ck_assert(memcmp(a, c, 1000 * sizeof *a) == 0);
    ck_assert(memcmp(a, d, 1000 * sizeof *a) != 0);
    ck_assert(memcmp(a, e, 1000 * sizeof *a) != 0);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}
END_TEST

START_TEST(test_dropout_bad_p)
{
    const double bad[] = {1, 1.5, -0.1, NAN};
    const char *msg[] = {"tg_dropout: p = 1 is not in [0, 1)",
                         "tg_dropout: p = 1.5 is not in [0, 1)",
                         "tg_dropout: p = -0.1 is not in [0, 1)",
                         "tg_dropout: p = nan is not in [0, 1)"};
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_ones(NULL, TG_F32, TG_DIMS(3));
    for (int k = 0; k < 4; k++) {
        tg_tape_reset(tp);
        tg_dropout(tp, x, bad[k]);
        ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
        ck_assert_str_eq(tg_tape_error(tp), msg[k]);
    }
    /* checked in evaluation too */
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    tg_dropout(tp, x, 1);
    ck_assert_str_eq(tg_tape_error(tp), msg[0]);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ f32 against f64 */

/* Forward through the op and tg_backward_from with one gout, in f64 and in f32 on the
 * same values: outputs and gradients agree to 1e-4 (relative to max(1, |f64|)). */
static void f32_against_f64(const char *name, unary_fn u, binary_fn bf, int nin, const int *nd,
                            const int64_t (*shapes)[3], const domain *doms)
{
    double *vals[2] = {NULL, NULL}, *out64 = NULL, *grad64[2] = {NULL, NULL};
    for (int i = 0; i < nin; i++)
        vals[i] = draw_values(numel_of(nd[i], shapes[i]), doms[i]);
    double *gvals = NULL;
    for (int pass = 0; pass < 2; pass++) {
        tg_dtype dt = pass == 0 ? TG_F64 : TG_F32;
        tg_tape *tp = tg_tape_new(99);
        tg_tensor *in[2] = {NULL, NULL};
        for (int i = 0; i < nin; i++) {
            in[i] = tt_tensor(dt, nd[i], shapes[i], vals[i]);
            ck_assert_int_eq(tg_requires_grad(in[i], "in"), TG_OK);
        }
        tg_tensor *y = u ? u(tp, in[0]) : bf(tp, in[0], in[1]);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s: %s", name, tg_tape_error(tp));
        ck_assert_int_eq(y->dtype, dt);
        if (!gvals)
            gvals = draw_values(tg_tensor_numel(y), ANY);
        tg_tensor *g = tt_tensor(dt, y->ndim, y->shape, gvals);
        ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s: %s", name, tg_tape_error(tp));
        if (pass == 0) {
            out64 = tt_values(y);
            for (int i = 0; i < nin; i++)
                grad64[i] = tt_values(tg_grad(in[i]));
        } else {
            double e = tt_max_rel_err(y, out64);
            ck_assert_msg(e <= 1e-4, "%s: f32 output off by %g", name, e);
            for (int i = 0; i < nin; i++) {
                ck_assert_int_eq(tg_grad(in[i])->dtype, TG_F32);
                e = tt_max_rel_err(tg_grad(in[i]), grad64[i]);
                ck_assert_msg(e <= 1e-4, "%s: f32 gradient of input %d off by %g", name, i, e);
            }
        }
        tg_tensor_free(g);
        for (int i = 0; i < nin; i++)
            tg_tensor_free(in[i]);
        tg_tape_free(tp);
    }
    free(gvals);
    free(out64);
    for (int i = 0; i < nin; i++) {
        free(vals[i]);
        free(grad64[i]);
    }
}

START_TEST(test_f32_matches_f64)
{
    const int nd1[1] = {2};
    const int64_t s1[1][3] = {{4, 5}};
    for (int k = 0; k < N_UNARY; k++)
        f32_against_f64(unary_cases[k].name, unary_cases[k].f, NULL, 1, nd1, s1, &unary_cases[k].d);
    /* dropout with p > 0: the same seed drops the same elements in both dtypes */
    f32_against_f64("dropout p=0.4", u_dropout, NULL, 1, nd1, s1, (domain[]){ANY});
    const int nd2[2] = {2, 2};
    const int64_t s2[2][3] = {{3, 1}, {1, 4}};
    for (int k = 0; k < N_BINARY; k++)
        f32_against_f64(binary_cases[k].name, NULL, binary_cases[k].f, 2, nd2, s2,
                        (domain[]){binary_cases[k].da, binary_cases[k].db});
}
END_TEST

/* ------------------------------------------------------------------ relu, leaky relu backward */

/* The formulation relu's and leaky_relu's backward had before it became one pass:
 * where(x > 0, g, 0) and where(x > 0, g, affine(g, slope, 0)), on x as the op saw it;
 * returned in x's layout as the op saw it (row-major of that view). */
static tg_tensor *previous_grad(tg_arena *ar, const tg_tensor *x, const tg_tensor *g, bool relu, double slope)
{
    tg_tensor *pos = tg_tensor_binary(ar, TG_GT, x, tg_tensor_scalar(ar, x->dtype, 0));
    tg_tensor *other = relu ? tg_tensor_scalar(ar, g->dtype, 0) : tg_tensor_affine(ar, g, slope, 0);
    tg_tensor *dx = tg_tensor_where(ar, pos, g, other);
    ck_assert_msg(dx != NULL, "%s", tg_last_error());
    return dx;
}

/* Values with the special cases mixed in: 0, -0, NaN, +-inf, a subnormal. */
static double *values_with_specials(int64_t n)
{
    static const double special[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e-310};
    double *v = draw_values(n, ANY);
    for (int64_t i = 0; i < n; i += 7)
        v[i] = special[(i / 7) % 6];
    return v;
}

/* The one-pass backward gives the previous formulation's values element for element
 * (NaN where it gave NaN), for relu and leaky_relu, f32 and f64, a contiguous and a
 * transposed input, a small tensor and one above the threads' threshold. */
START_TEST(test_relu_backward_matches_previous)
{
    const int64_t shapes[2][2] = {{7, 9}, {300, 200}};
    for (int dt = 0; dt < 2; dt++)
        for (int k = 0; k < 2; k++)
            for (int transposed = 0; transposed < 2; transposed++)
                for (int relu = 0; relu < 2; relu++) {
                    tg_dtype dtype = dt ? TG_F64 : TG_F32;
                    int64_t n = shapes[k][0] * shapes[k][1];
                    double *xv = values_with_specials(n), *gv = values_with_specials(n);
                    tg_tensor *x = tt_tensor(dtype, 2, shapes[k], xv);
                    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
                    tg_tape *tp = tg_tape_new(0);
                    tg_arena *ar = tg_tape_arena(tp);
                    tg_tensor *xin = transposed ? tg_transpose(tp, x, 0, 1) : x;
                    tg_tensor *y = relu ? tg_relu(tp, xin) : tg_leaky_relu(tp, xin, 0.01);
                    tg_tensor *g = tt_tensor(dtype, 2, y->shape, gv);
                    ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
                    tg_tensor *prev = previous_grad(ar, xin, g, relu, 0.01);
                    if (transposed) /* back to x's own layout, as tg_grad(x) is */
                        prev = tg_tensor_transpose(ar, prev, 0, 1);
                    double *want = tt_values(prev), *got = tt_values(tg_grad(x));
                    for (int64_t i = 0; i < n; i++)
                        ck_assert_msg(got[i] == want[i] || (isnan(got[i]) && isnan(want[i])),
                                      "%s %s %s [%lld]: element %lld: %g, previously %g",
                                      relu ? "relu" : "leaky_relu", dt ? "f64" : "f32",
                                      transposed ? "transposed" : "contiguous", (long long)n, (long long)i,
                                      got[i], want[i]);
                    free(want);
                    free(got);
                    free(xv);
                    free(gv);
                    tg_tensor_free(g);
                    tg_tensor_free(x);
                    tg_tape_free(tp);
                }
}
END_TEST

/* No temporary mask or slope * g: the backward's arena use is the output gradient the
 * tape copies plus dx, where the mask formulation took 5 (relu) or 9 (leaky_relu) more
 * bytes per f32 element. */
START_TEST(test_relu_backward_memory)
{
    for (int relu = 0; relu < 2; relu++) {
        tg_tensor *x = draw_tensor(TG_F32, TG_DIMS(256, 256), ANY);
        ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
        tg_tape *tp = tg_tape_new(0);
        tg_arena *ar = tg_tape_arena(tp);
        tg_tensor *y = relu ? tg_relu(tp, x) : tg_leaky_relu(tp, x, 0.01);
        tg_tensor *g = tg_tensor_ones(NULL, TG_F32, TG_DIMS(256, 256));
        size_t bytes = 256 * 256 * sizeof(float), before = tg_arena_used(ar);
        ck_assert_msg(tg_backward_from(tp, y, g) == TG_OK, "%s", tg_tape_error(tp));
        size_t grew = tg_arena_peak(ar) - before;
        ck_assert_msg(grew <= 2 * bytes + 4096, "%s backward took %zu bytes for %zu-byte tensors",
                      relu ? "relu" : "leaky_relu", grew, bytes);
        tg_tensor_free(g);
        tg_tensor_free(x);
        tg_tape_free(tp);
    }
}
END_TEST

/* ------------------------------------------------------------------ errors */

/* A bad broadcast: one sticky message naming the op; later calls return the
 * placeholder and record nothing; backward refuses; reset clears it. */
START_TEST(test_bad_broadcast_is_sticky)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tg_tensor_ones(NULL, TG_F32, TG_DIMS(2, 3));
    tg_tensor *b = tg_tensor_ones(NULL, TG_F32, TG_DIMS(4));
    ck_assert_int_eq(tg_requires_grad(a, "a"), TG_OK);
    tg_tensor *ok = tg_exp(tp, a);
    tg_tensor *bad = tg_add(tp, ok, b);
    ck_assert_ptr_nonnull(bad);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_add", "shapes [2,3] and [4] cannot be broadcast", "");
    ck_assert_int_eq(tg_tape_size(tp), 1);

    tg_tensor *next = tg_mul(tp, bad, a);
    ck_assert_ptr_eq(next, bad); /* the placeholder, again */
    ck_assert_ptr_nonnull(tg_relu(tp, next));
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert_int_eq(tg_backward(tp, tg_sigmoid(tp, next)), TG_ERR_SHAPE);
    ck_assert_int_eq(tg_backward(tp, ok), TG_ERR_SHAPE);
    ck_assert_ptr_null(tg_grad(a));
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_add", "shapes [2,3] and [4] cannot be broadcast", "");

    /* in a scope, the message says where */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_scope_push(tp, "block");
    tg_maximum(tp, a, b);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_maximum", "shapes [2,3] and [4] cannot be broadcast",
                   "block");
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_dtype_mismatch)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tg_tensor_ones(NULL, TG_F32, TG_DIMS(2));
    tg_tensor *b = tg_tensor_ones(NULL, TG_F64, TG_DIMS(2));
    tg_sub(tp, a, b);
    ck_assert_int_ne(tg_tape_status(tp), TG_OK);
    ck_assert_msg(strncmp(tg_tape_error(tp), "tg_sub: ", 8) == 0, "%s", tg_tape_error(tp));
    tg_tape_reset(tp);
    tg_tensor *labels = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2));
    tg_log(tp, labels);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_DTYPE);
    ck_assert_msg(strncmp(tg_tape_error(tp), "tg_log: ", 8) == 0, "%s", tg_tape_error(tp));
    tg_tensor_free(labels);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tape_free(tp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/ops_elementwise");
    TCase *tc = tt_tcase("gradcheck");
    tcase_add_loop_test(tc, test_unary_gradcheck, 0, N_UNARY);
    tcase_add_loop_test(tc, test_binary_gradcheck, 0, N_BINARY);
    tcase_add_loop_test(tc, test_binary_same_input, 0, N_BINARY);
    suite_add_tcase(s, tc);

    tc = tt_tcase("semantics");
    tcase_add_test(tc, test_relu_kinks_reported);
    tcase_add_test(tc, test_clamp_kinks_reported);
    tcase_add_test(tc, test_grad_at_kinks);
    tcase_add_test(tc, test_reuse_accumulates);
    tcase_add_test(tc, test_constant_operand);
    tcase_add_test(tc, test_f32_matches_f64);
    tcase_add_test(tc, test_relu_backward_matches_previous);
    tcase_add_test(tc, test_relu_backward_memory);
    suite_add_tcase(s, tc);

    tc = tt_tcase("dropout");
    tcase_add_test(tc, test_dropout_mask_statistics);
    tcase_add_test(tc, test_dropout_grad);
    tcase_add_test(tc, test_dropout_finite_differences);
    tcase_add_test(tc, test_dropout_identity);
    tcase_add_test(tc, test_dropout_seed);
    tcase_add_test(tc, test_dropout_bad_p);
    suite_add_tcase(s, tc);

    tc = tt_tcase("errors");
    tcase_add_test(tc, test_bad_broadcast_is_sticky);
    tcase_add_test(tc, test_dtype_mismatch);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
