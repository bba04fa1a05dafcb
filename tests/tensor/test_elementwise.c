/* tests/tensor/test_elementwise.c — unary and binary kernels, affine, axpy_ and where,
 * against reference loops in f64, on every layout the row iterator distinguishes:
 * contiguous, transposed, sliced with step 2, expanded (stride 0) and 0-d. */
#include "check_util.h"

#include <stdbool.h>

/* ------------------------------------------------------------------ inputs */

enum layout { L_CONTIG, L_TRANSPOSED, L_STEP2, L_EXPAND_ROW, L_EXPAND_COL, L_SCALAR, L_COUNT };
static const char *const layout_names[L_COUNT] = {"contiguous", "transposed", "step-2 slice",
                                                  "expanded row", "expanded column", "0-d"};

/* How sample values are spread: signed in [-3, 3], positive in [0.2, 3.2] (for log,
 * sqrt, division), or coarse (multiples of 0.5 in [-3, 3], so comparisons see ties). */
enum spread { SIGNED, POSITIVE, COARSE };

static double sample(int64_t k, int seed, enum spread sp)
{
    double v = 3 * sin(0.7 * (double)k + 1.3 * seed);
    return sp == POSITIVE ? 0.2 + fabs(v) : sp == COARSE ? round(2 * v) / 2 : v;
}

typedef struct input {
    tg_tensor *base; /* what was allocated */
    tg_tensor *view; /* the operand: [5,7] in the given layout, or 0-d */
} input;

static input make_input(tg_dtype dt, enum layout l, int seed, enum spread sp)
{
    static const int64_t shapes[L_COUNT][2] = {{5, 7}, {7, 5}, {5, 14}, {7, 0}, {5, 1}, {0, 0}};
    static const int ndims[L_COUNT] = {2, 2, 2, 1, 2, 0};
    const int64_t full[2] = {5, 7};
    int64_t n = 1;
    for (int i = 0; i < ndims[l]; i++)
        n *= shapes[l][i];
    double v[70];
    for (int64_t k = 0; k < n; k++)
        v[k] = sample(k, seed, sp);
    input in = {tt_tensor(dt, ndims[l], shapes[l], v), NULL};
    switch (l) {
    case L_TRANSPOSED: in.view = tg_tensor_transpose(NULL, in.base, 0, 1); break;
    case L_STEP2: in.view = tg_tensor_slice(NULL, in.base, 1, 0, 14, 2); break;
    case L_EXPAND_ROW:
    case L_EXPAND_COL: in.view = tg_tensor_expand(NULL, in.base, 2, full); break;
    default: in.view = in.base; break;
    }
    ck_assert_msg(in.view != NULL, "%s", tg_last_error());
    return in;
}

static void free_input(input in)
{
    if (in.view != in.base)
        tg_tensor_free(in.view);
    tg_tensor_free(in.base);
}

static int64_t shape_numel(int nd, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < nd; i++)
        n *= shape[i];
    return n;
}

/* The values of t broadcast to (nd, shape), by index arithmetic; malloc'd, row-major. */
static double *broadcast_values(const tg_tensor *t, int nd, const int64_t *shape)
{
    double *v = tt_values(t);
    int64_t n = shape_numel(nd, shape);
    double *out = malloc((size_t)(n ? n : 1) * sizeof *out);
    for (int64_t i = 0; i < n; i++) {
        int64_t rem = i, src = 0, mul = 1;
        for (int d = nd - 1; d >= 0; d--) {
            int64_t idx = rem % shape[d];
            rem /= shape[d];
            int td = d - (nd - t->ndim);
            if (td >= 0) {
                if (t->shape[td] != 1)
                    src += idx * mul;
                mul *= t->shape[td];
            }
        }
        out[i] = v[src];
    }
    free(v);
    return out;
}

/* Frees heap tensors (NULL is ignored): FREE_TENSORS(a, b, c) */
static void free_tensors(tg_tensor *const *ts, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tg_tensor_free(ts[i]);
}
#define FREE_TENSORS(...)                                                              \
    free_tensors((tg_tensor *[]){__VA_ARGS__},                                         \
                 sizeof((tg_tensor *[]){__VA_ARGS__}) / sizeof(tg_tensor *))

static double tol(tg_dtype dt) { return dt == TG_F32 ? 1e-6 : 1e-14; }

/* tt_assert_close, with a failure saying which case it was */
static void expect_close(const tg_tensor *t, const double *ref, double tl, const char *what)
{
    double err = tt_max_rel_err(t, ref);
    ck_assert_msg(err <= tl, "%s: max relative error %g > %g", what, err, tl);
}

/* ------------------------------------------------------------------ references */

/* affine is tested as one more unary op: x * a + b */
#define T_AFFINE TG_UNARY_OP_COUNT

static double ref_unary(tg_unary_op op, double x, double a, double b)
{
    switch ((int)op) {
    case T_AFFINE: return x * a + b;
    case TG_NEG: return -x;
    case TG_ABS: return fabs(x);
    case TG_EXP: return exp(x);
    case TG_LOG: return log(x);
    case TG_SQRT: return sqrt(x);
    case TG_RSQRT: return 1 / sqrt(x);
    case TG_TANH: return tanh(x);
    case TG_SIGMOID: return 1 / (1 + exp(-x));
    case TG_RELU: return x < 0 ? 0 : x;
    case TG_SQUARE: return x * x;
    case TG_RECIPROCAL: return 1 / x;
    case TG_SIGN: return x > 0 ? 1 : x < 0 ? -1 : x;
    case TG_LEAKY_RELU: return x > 0 ? x : a * x;
    case TG_POW: return pow(x, a);
    case TG_CLAMP: {
        double lo = isnan(a) ? -INFINITY : a, hi = isnan(b) ? INFINITY : b;
        double y = x < lo ? lo : x;
        return y > hi ? hi : y;
    }
    default: ck_abort_msg("no reference for unary op %d", (int)op); return 0;
    }
}

static double ref_binary(tg_binary_op op, double x, double y)
{
    switch (op) {
    case TG_ADD: return x + y;
    case TG_SUB: return x - y;
    case TG_MUL: return x * y;
    case TG_DIV: return x / y;
    case TG_MAXIMUM: return isnan(x) || isnan(y) ? NAN : x > y ? x : y;
    case TG_MINIMUM: return isnan(x) || isnan(y) ? NAN : x < y ? x : y;
    case TG_EQ: return x == y;
    case TG_NE: return x != y;
    case TG_LT: return x < y;
    case TG_LE: return x <= y;
    case TG_GT: return x > y;
    case TG_GE: return x >= y;
    default: ck_abort_msg("no reference for binary op %d", (int)op); return 0;
    }
}

static bool is_comparison(tg_binary_op op) { return op >= TG_EQ && op <= TG_GE; }

/* The op through its named function where it has one. */
static tg_tensor *call_unary(tg_arena *ar, tg_unary_op op, const tg_tensor *x, double a, double b)
{
    switch ((int)op) {
    case T_AFFINE: return tg_tensor_affine(ar, x, a, b);
    case TG_NEG: return tg_tensor_neg(ar, x);
    case TG_ABS: return tg_tensor_abs(ar, x);
    case TG_EXP: return tg_tensor_exp(ar, x);
    case TG_LOG: return tg_tensor_log(ar, x);
    case TG_SQRT: return tg_tensor_sqrt(ar, x);
    case TG_RSQRT: return tg_tensor_rsqrt(ar, x);
    case TG_TANH: return tg_tensor_tanh(ar, x);
    case TG_SIGMOID: return tg_tensor_sigmoid(ar, x);
    case TG_RELU: return tg_tensor_relu(ar, x);
    case TG_SQUARE: return tg_tensor_square(ar, x);
    case TG_LEAKY_RELU: return tg_tensor_leaky_relu(ar, x, a);
    case TG_POW: return tg_tensor_pow_scalar(ar, x, a);
    case TG_CLAMP: return tg_tensor_clamp(ar, x, a, b);
    default: return tg_tensor_unary(ar, op, x, a, b); /* reciprocal, sign */
    }
}

static tg_tensor *call_binary(tg_arena *ar, tg_binary_op op, const tg_tensor *a, const tg_tensor *b)
{
    switch (op) {
    case TG_ADD: return tg_tensor_add(ar, a, b);
    case TG_SUB: return tg_tensor_sub(ar, a, b);
    case TG_MUL: return tg_tensor_mul(ar, a, b);
    case TG_DIV: return tg_tensor_div(ar, a, b);
    case TG_MAXIMUM: return tg_tensor_maximum(ar, a, b);
    case TG_MINIMUM: return tg_tensor_minimum(ar, a, b);
    default: return tg_tensor_binary(ar, op, a, b);
    }
}

/* ------------------------------------------------------------------ unary */

typedef struct unary_case {
    tg_unary_op op;
    double a, b;
    enum spread sp;
} unary_case;

static const unary_case unary_cases[] = {
    {TG_NEG, 0, 0, SIGNED},        {TG_ABS, 0, 0, SIGNED},       {TG_EXP, 0, 0, SIGNED},
    {TG_LOG, 0, 0, POSITIVE},      {TG_SQRT, 0, 0, POSITIVE},    {TG_RSQRT, 0, 0, POSITIVE},
    {TG_TANH, 0, 0, SIGNED},       {TG_SIGMOID, 0, 0, SIGNED},   {TG_RELU, 0, 0, SIGNED},
    {TG_SQUARE, 0, 0, SIGNED},     {TG_RECIPROCAL, 0, 0, POSITIVE}, {TG_SIGN, 0, 0, COARSE},
    {TG_LEAKY_RELU, 0.01, 0, SIGNED}, {TG_LEAKY_RELU, 0.2, 0, SIGNED},
    {TG_POW, 2, 0, SIGNED},        {TG_POW, 0.5, 0, POSITIVE},   {TG_POW, 1, 0, SIGNED},
    {TG_POW, 3, 0, SIGNED},        {TG_POW, -1.5, 0, POSITIVE},
    {TG_CLAMP, -1, 1.5, SIGNED},   {TG_CLAMP, NAN, 0.5, SIGNED}, {TG_CLAMP, -0.5, NAN, SIGNED},
    {TG_CLAMP, NAN, NAN, SIGNED},  {TG_CLAMP, 2, 1, SIGNED}, /* lo > hi: all hi, as torch */
    {T_AFFINE, -1.75, 0.3, SIGNED},
};
#define N_UNARY_CASES (int)(sizeof unary_cases / sizeof unary_cases[0])

static void check_unary(const unary_case *c, enum layout l)
{
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        input in = make_input(dt, l, 1, c->sp);
        const tg_tensor *x = in.view;
        double *xs = tt_values(x);
        int64_t n = tg_tensor_numel(x);
        double ref[35];
        for (int64_t i = 0; i < n; i++)
            ref[i] = ref_unary(c->op, xs[i], c->a, c->b);

        char what[96];
        snprintf(what, sizeof what, "%s(%g, %g) on %s %s",
                 c->op == T_AFFINE ? "affine" : tg_unary_op_name(c->op), c->a, c->b,
                 tg_dtype_name(dt), layout_names[l]);
        tg_tensor *y = call_unary(NULL, c->op, x, c->a, c->b);
        ck_assert_msg(y != NULL, "%s: %s", what, tg_last_error());
        ck_assert_int_eq(y->dtype, dt);
        ck_assert(tg_tensor_same_shape(y, x));
        ck_assert(tg_tensor_is_contiguous(y));
        expect_close(y, ref, tol(dt), what);

        tg_tensor_free(y);
        /* the generic entry point, and _out into a transposed (strided) output */
        if (c->op != T_AFFINE) { /* affine has neither */
            tg_tensor *g = tg_tensor_unary(NULL, c->op, x, c->a, c->b);
            ck_assert_msg(g != NULL, "%s: %s", what, tg_last_error());
            expect_close(g, ref, tol(dt), what);
            tg_tensor_free(g);
        }
        if (c->op != T_AFFINE && x->ndim == 2) {
            tg_tensor *obase = tg_tensor_zeros(NULL, dt, TG_DIMS(7, 5));
            tg_tensor *out = tg_tensor_transpose(NULL, obase, 0, 1);
            ck_assert_int_eq(tg_tensor_unary_out(out, c->op, x, c->a, c->b), TG_OK);
            expect_close(out, ref, tol(dt), what);
            FREE_TENSORS(out, obase);
        }
        free(xs);
        free_input(in);
    }
}

/* _i indexes the case; a failure names the case, dtype and layout */
START_TEST(test_unary_ops)
{
    const unary_case *c = &unary_cases[_i];
    for (int l = 0; l < L_COUNT; l++)
        check_unary(c, (enum layout)l);
}
END_TEST

/* ------------------------------------------------------------------ binary */

static void check_binary(tg_binary_op op, enum layout la, enum layout lb)
{
    bool cmp = is_comparison(op);
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        input a = make_input(dt, la, 1, cmp ? COARSE : SIGNED);
        input b = make_input(dt, lb, 2, cmp ? COARSE : op == TG_DIV ? POSITIVE : SIGNED);
        int nd = a.view->ndim > b.view->ndim ? a.view->ndim : b.view->ndim;
        const int64_t shape[2] = {5, 7};
        double *av = broadcast_values(a.view, nd, shape), *bv = broadcast_values(b.view, nd, shape);
        int64_t n = shape_numel(nd, shape);
        double ref[35];
        for (int64_t i = 0; i < n; i++)
            ref[i] = ref_binary(op, av[i], bv[i]);

        char what[96];
        snprintf(what, sizeof what, "%s on %s %s and %s", tg_binary_op_name(op), tg_dtype_name(dt),
                 layout_names[la], layout_names[lb]);
        double tl = cmp ? 0 : tol(dt);
        tg_tensor *y = call_binary(NULL, op, a.view, b.view);
        ck_assert_msg(y != NULL, "%s: %s", what, tg_last_error());
        ck_assert_int_eq(y->dtype, cmp ? TG_U8 : dt);
        ck_assert_int_eq(y->ndim, nd);
        if (nd == 2)
            tt_assert_shape(y, 5, 7);
        expect_close(y, ref, tl, what);

        /* the generic entry point, and _out into a transposed (strided) output */
        tg_tensor *g = tg_tensor_binary(NULL, op, a.view, b.view);
        ck_assert_msg(g != NULL, "%s: %s", what, tg_last_error());
        expect_close(g, ref, tl, what);
        if (nd == 2) {
            tg_tensor *obase = tg_tensor_zeros(NULL, y->dtype, TG_DIMS(7, 5));
            tg_tensor *out = tg_tensor_transpose(NULL, obase, 0, 1);
            ck_assert_int_eq(tg_tensor_binary_out(out, op, a.view, b.view), TG_OK);
            expect_close(out, ref, tl, what);
            FREE_TENSORS(out, obase);
        }
        FREE_TENSORS(g, y);
        free(av);
        free(bv);
        free_input(a);
        free_input(b);
    }
}

/* _i indexes the op; every pair of layouts for a and b */
START_TEST(test_binary_ops)
{
    for (int la = 0; la < L_COUNT; la++)
        for (int lb = 0; lb < L_COUNT; lb++)
            check_binary((tg_binary_op)_i, (enum layout)la, (enum layout)lb);
}
END_TEST

START_TEST(test_broadcast_shapes)
{
    static const struct {
        int an, bn, on;
        int64_t as[3], bs[3], os[3];
    } cases[] = {
        {2, 2, 2, {3, 1}, {1, 4}, {3, 4}},
        {1, 3, 3, {4}, {2, 3, 4}, {2, 3, 4}},
        {0, 2, 2, {0}, {2, 3}, {2, 3}},
        {3, 2, 3, {2, 1, 5}, {3, 1}, {2, 3, 5}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int d = 0; d < 2; d++) {
            tg_dtype dt = d ? TG_F64 : TG_F32;
            double va[30], vb[30];
            for (int k = 0; k < 30; k++) {
                va[k] = sample(k, 4, SIGNED);
                vb[k] = sample(k, 5, POSITIVE);
            }
            tg_tensor *a = tt_tensor(dt, cases[c].an, cases[c].as, va);
            tg_tensor *b = tt_tensor(dt, cases[c].bn, cases[c].bs, vb);
            int on = cases[c].on;
            const int64_t *os = cases[c].os;
            double *av = broadcast_values(a, on, os), *bv = broadcast_values(b, on, os);
            for (int op = TG_ADD; op < TG_BINARY_OP_COUNT; op++) {
                /* both orders: the broadcast operand on either side */
                for (int swap = 0; swap < 2; swap++) {
                    tg_tensor *y = swap ? call_binary(NULL, (tg_binary_op)op, b, a)
                                        : call_binary(NULL, (tg_binary_op)op, a, b);
                    ck_assert_msg(y != NULL, "%s", tg_last_error());
                    ck_assert_int_eq(y->ndim, on);
                    for (int i = 0; i < on; i++)
                        ck_assert_int_eq(y->shape[i], os[i]);
                    double ref[30];
                    for (int64_t i = 0; i < shape_numel(on, os); i++)
                        ref[i] = swap ? ref_binary((tg_binary_op)op, bv[i], av[i])
                                      : ref_binary((tg_binary_op)op, av[i], bv[i]);
                    tt_assert_close(y, ref, is_comparison((tg_binary_op)op) ? 0 : tol(dt));
                    tg_tensor_free(y);
                }
            }
            free(av);
            free(bv);
            FREE_TENSORS(a, b);
        }
    }
}
END_TEST

START_TEST(test_comparisons_integer)
{
    /* u8 over its whole range, i32 with negatives, the second broadcast as a row */
    const double u8a[6] = {0, 1, 2, 200, 255, 7}, u8b[6] = {0, 2, 1, 200, 254, 8};
    const double i32a[6] = {-5, 0, 7, 2147483647, -2147483648.0, 3}, i32b[3] = {-5, 1, 3};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_I32 : TG_U8;
        tg_tensor *a = tt_tensor(dt, TG_DIMS(2, 3), d ? i32a : u8a);
        tg_tensor *b = d ? tt_tensor(dt, TG_DIMS(3), i32b) : tt_tensor(dt, TG_DIMS(2, 3), u8b);
        const int64_t shape[2] = {2, 3};
        double *av = broadcast_values(a, 2, shape), *bv = broadcast_values(b, 2, shape);
        for (int op = TG_EQ; op <= TG_GE; op++) {
            tg_tensor *y = tg_tensor_binary(NULL, (tg_binary_op)op, a, b);
            ck_assert_msg(y != NULL, "%s", tg_last_error());
            ck_assert_int_eq(y->dtype, TG_U8);
            tt_assert_shape(y, 2, 3);
            const uint8_t *m = tg_tensor_data(y);
            for (int i = 0; i < 6; i++)
                ck_assert_int_eq(m[i], ref_binary((tg_binary_op)op, av[i], bv[i]) ? 1 : 0);
            tg_tensor_free(y);
        }
        /* arithmetic is for floats only */
        tg_clear_error();
        ck_assert_ptr_null(tg_tensor_add(NULL, a, b));
        ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
        free(av);
        free(bv);
        FREE_TENSORS(a, b);
    }
}
END_TEST

START_TEST(test_where)
{
    const double mv[3] = {1, 0, 7}, av[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
    const double bv[4] = {13, 14, 15, 16}; /* distinct from av, and fit u8 */
    for (int d = 0; d < TG_DTYPE_COUNT; d++) {
        tg_dtype dt = (tg_dtype)d;
        tg_tensor *mask = tt_tensor(TG_U8, TG_DIMS(3, 1), mv);
        tg_tensor *abase = tt_tensor(dt, TG_DIMS(4, 3), av);
        tg_tensor *a = tg_tensor_transpose(NULL, abase, 0, 1); /* [3,4], strided */
        tg_tensor *b = tt_tensor(dt, TG_DIMS(4), bv);          /* broadcast as a row */
        tg_tensor *b0 = tt_tensor(dt, 0, NULL, bv);            /* 0-d */
        const int64_t shape[2] = {3, 4};
        double *m = broadcast_values(mask, 2, shape), *x = broadcast_values(a, 2, shape);
        double *y = broadcast_values(b, 2, shape);
        double ref[12], ref0[12];
        for (int i = 0; i < 12; i++) {
            ref[i] = m[i] != 0 ? x[i] : y[i];
            ref0[i] = m[i] != 0 ? x[i] : bv[0];
        }
        tg_tensor *w = tg_tensor_where(NULL, mask, a, b);
        ck_assert_msg(w != NULL, "%s", tg_last_error());
        ck_assert_int_eq(w->dtype, dt);
        tt_assert_shape(w, 3, 4);
        tt_assert_close(w, ref, 0);
        tg_tensor *w0 = tg_tensor_where(NULL, mask, a, b0);
        ck_assert_msg(w0 != NULL, "%s", tg_last_error());
        tt_assert_close(w0, ref0, 0);
        /* contiguous, same shape: the fast path */
        tg_tensor *me = tg_tensor_expand(NULL, mask, 2, shape);
        tg_tensor *be = tg_tensor_expand(NULL, b, 2, shape);
        tg_tensor *mc = tg_tensor_contiguous(NULL, me), *bc = tg_tensor_contiguous(NULL, be);
        tg_tensor *ac = tg_tensor_contiguous(NULL, a);
        tg_tensor *wc = tg_tensor_where(NULL, mc, ac, bc);
        ck_assert_msg(wc != NULL, "%s", tg_last_error());
        tt_assert_close(wc, ref, 0);
        FREE_TENSORS(w, w0, me, be, mc, ac, bc, wc, mask, abase, a, b, b0);
        free(m);
        free(x);
        free(y);
    }
    /* a select moves values untouched: NaN, -0 */
    const double sv[2] = {NAN, -0.0}, one[1] = {1};
    tg_tensor *a = tt_tensor(TG_F64, TG_DIMS(2), sv), *b = tt_tensor(TG_F64, TG_DIMS(2), av);
    tg_tensor *mask = tt_tensor(TG_U8, 0, NULL, one);
    tg_tensor *w = tg_tensor_where(NULL, mask, a, b);
    ck_assert_msg(w != NULL, "%s", tg_last_error());
    const double *r = tg_tensor_data(w);
    ck_assert(isnan(r[0]) && r[1] == 0 && signbit(r[1]));
    FREE_TENSORS(w, mask, a, b);
}
END_TEST

/* ------------------------------------------------------------------ special values */

START_TEST(test_special_values)
{
    const double xv[8] = {NAN, -INFINITY, INFINITY, -0.0, 0.0, 100, -100, 1000};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        tg_tensor *x = tt_tensor(dt, TG_DIMS(8), xv);
        tg_tensor *relu = tg_tensor_relu(NULL, x), *sig = tg_tensor_sigmoid(NULL, x);
        tg_tensor *ex = tg_tensor_exp(NULL, x), *lg = tg_tensor_log(NULL, x);
        tg_tensor *sg = tg_tensor_unary(NULL, TG_SIGN, x, 0, 0);
        tg_tensor *cl = tg_tensor_clamp(NULL, x, -1, 1);
        ck_assert(relu && sig && ex && lg && sg && cl);
        double *r = tt_values(relu), *s = tt_values(sig), *e = tt_values(ex), *l = tt_values(lg);
        double *sn = tt_values(sg), *c = tt_values(cl);

        ck_assert(isnan(r[0]));                       /* relu(NaN) = NaN, as PyTorch */
        ck_assert(r[1] == 0 && r[2] == INFINITY && r[5] == 100 && r[6] == 0);

        ck_assert(isnan(s[0]));
        ck_assert(s[1] == 0 && s[2] == 1);
        ck_assert(s[5] == 1);                         /* sigmoid(100) */
        ck_assert(s[6] > 0 && s[6] < 1e-40);          /* sigmoid(-100) = 3.7e-44, not 0/NaN */
        if (dt == TG_F64)
            ck_assert(fabs(s[6] - exp(-100) / (1 + exp(-100))) < 1e-15 * exp(-100));
        ck_assert(s[7] == 1);

        ck_assert(e[2] == INFINITY && e[1] == 0);
        ck_assert(e[7] == INFINITY);                  /* exp(1000) overflows in both */
        ck_assert(dt == TG_F64 ? isfinite(e[5]) : e[5] == INFINITY); /* exp(100) in f32 */
        ck_assert(l[4] == -INFINITY && l[3] == -INFINITY); /* log(+-0) */
        ck_assert(isnan(l[1]) && isnan(l[0]));

        ck_assert(sn[3] == 0 && sn[4] == 0);          /* sign(0) = 0 */
        ck_assert(sn[1] == -1 && sn[2] == 1 && sn[6] == -1 && isnan(sn[0]));
        ck_assert(isnan(c[0]) && c[1] == -1 && c[2] == 1 && c[5] == 1);

        /* maximum/minimum propagate NaN from either side */
        const double av[4] = {NAN, 1, INFINITY, -INFINITY}, bv[4] = {1, NAN, 1, 1};
        tg_tensor *a = tt_tensor(dt, TG_DIMS(4), av), *b = tt_tensor(dt, TG_DIMS(4), bv);
        tg_tensor *mx = tg_tensor_maximum(NULL, a, b), *mn = tg_tensor_minimum(NULL, a, b);
        ck_assert(mx && mn);
        double *vx = tt_values(mx), *vn = tt_values(mn);
        ck_assert(isnan(vx[0]) && isnan(vx[1]) && vx[2] == INFINITY && vx[3] == 1);
        ck_assert(isnan(vn[0]) && isnan(vn[1]) && vn[2] == 1 && vn[3] == -INFINITY);

        FREE_TENSORS(x, relu, sig, ex, lg, sg, cl, a, b, mx, mn);
        double *vals[] = {r, s, e, l, sn, c, vx, vn};
        for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++)
            free(vals[i]);
    }
}
END_TEST

/* pow with exponent 2, 0.5 and 1 is square, sqrt and a copy bit for bit, as in PyTorch
 * (pow itself differs at the edges: pow(-inf, 0.5) = inf but sqrt(-inf) = NaN) */
START_TEST(test_pow_special_exponents)
{
    const double xv[8] = {-INFINITY, -2, -0.0, 0, 0.3, 2.5, INFINITY, NAN};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        size_t nbytes = 8 * tg_dtype_size(dt);
        tg_tensor *x = tt_tensor(dt, TG_DIMS(8), xv);
        tg_tensor *p2 = tg_tensor_pow_scalar(NULL, x, 2), *sq = tg_tensor_square(NULL, x);
        tg_tensor *ph = tg_tensor_pow_scalar(NULL, x, 0.5), *rt = tg_tensor_sqrt(NULL, x);
        tg_tensor *p1 = tg_tensor_pow_scalar(NULL, x, 1);
        ck_assert(p2 && sq && ph && rt && p1);
        ck_assert(memcmp(tg_tensor_data(p2), tg_tensor_data(sq), nbytes) == 0);
        ck_assert(memcmp(tg_tensor_data(ph), tg_tensor_data(rt), nbytes) == 0);
        ck_assert(memcmp(tg_tensor_data(p1), tg_tensor_data(x), nbytes) == 0);
        ck_assert(isnan(tg_tensor_get(ph, (const int64_t[]){0})));
        FREE_TENSORS(x, p2, sq, ph, rt, p1);
    }
}
END_TEST

/* ------------------------------------------------------------------ threads */

/* Results over the parallel threshold, computed with 1 and 2 threads, bit for bit. */
static void run_large(int threads, tg_tensor **res, const tg_tensor *xt, const tg_tensor *bias,
                      const tg_tensor *col, const tg_tensor *lng, const tg_tensor *lng2)
{
    tg_set_num_threads(threads);
    res[0] = tg_tensor_tanh(NULL, xt);                     /* many strided rows */
    res[1] = tg_tensor_add(NULL, xt, bias);                /* broadcast row */
    res[2] = tg_tensor_maximum(NULL, xt, col);             /* broadcast column */
    res[3] = tg_tensor_sigmoid(NULL, lng);                 /* one long contiguous row */
    res[4] = tg_tensor_mul(NULL, lng2, lng2);              /* one long strided row */
    res[5] = tg_tensor_binary(NULL, TG_LT, xt, col);
    for (int i = 0; i < 6; i++)
        ck_assert_msg(res[i] != NULL, "%s", tg_last_error());
}

START_TEST(test_thread_count_invariance)
{
    int saved = tg_get_num_threads();
    const int64_t R = 300, C = 260, L = 100000;
    double *v = malloc((size_t)(2 * L) * sizeof *v);
    for (int64_t k = 0; k < 2 * L; k++)
        v[k] = sample(k, 6, SIGNED);
    tg_tensor *base = tt_tensor(TG_F32, TG_DIMS(R, C), v);
    tg_tensor *xt = tg_tensor_transpose(NULL, base, 0, 1); /* [260,300], 78000 elements */
    tg_tensor *bias = tt_tensor(TG_F32, TG_DIMS(R), v + 7);
    tg_tensor *col = tt_tensor(TG_F32, TG_DIMS(C, 1), v + 11);
    tg_tensor *lng = tt_tensor(TG_F32, TG_DIMS(L), v);
    tg_tensor *lbase = tt_tensor(TG_F32, TG_DIMS(2 * L), v);
    tg_tensor *lng2 = tg_tensor_slice(NULL, lbase, 0, 1, 2 * L, 2);
    tg_tensor *r1[6], *r2[6];
    run_large(1, r1, xt, bias, col, lng, lng2);
    run_large(2, r2, xt, bias, col, lng, lng2);
    tg_set_num_threads(saved);
    for (int i = 0; i < 6; i++) {
        ck_assert(tg_tensor_same_shape(r1[i], r2[i]));
        size_t nbytes = (size_t)tg_tensor_numel(r1[i]) * tg_dtype_size(r1[i]->dtype);
        ck_assert_msg(memcmp(tg_tensor_data(r1[i]), tg_tensor_data(r2[i]), nbytes) == 0,
                      "result %d differs between 1 and 2 threads", i);
    }
    /* and they are right: tanh over the transposed view */
    double *xs = tt_values(xt);
    int64_t n = R * C;
    double *ref = malloc((size_t)n * sizeof *ref);
    for (int64_t i = 0; i < n; i++)
        ref[i] = tanh(xs[i]);
    tt_assert_close(r2[0], ref, 1e-6);
    free(ref);
    free(xs);
    free_tensors(r1, 6);
    free_tensors(r2, 6);
    FREE_TENSORS(base, xt, bias, col, lng, lbase, lng2);
    free(v);
}
END_TEST

/* ------------------------------------------------------------------ in place */

START_TEST(test_in_place)
{
    const double av[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, bv[4] = {0.5, -1, 2, 4};
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        /* out == a, b broadcast */
        tg_tensor *a = tt_tensor(dt, TG_DIMS(3, 4), av), *b = tt_tensor(dt, TG_DIMS(4), bv);
        ck_assert_int_eq(tg_tensor_binary_out(a, TG_MUL, a, b), TG_OK);
        double ref[12];
        for (int i = 0; i < 12; i++)
            ref[i] = av[i] * bv[i % 4];
        tt_assert_close(a, ref, 0);
        /* out == b, both the same transposed view */
        tg_tensor *cbase = tt_tensor(dt, TG_DIMS(4, 3), av);
        tg_tensor *c = tg_tensor_transpose(NULL, cbase, 0, 1);
        double *cv = tt_values(c);
        tg_tensor *one = tt_tensor(dt, 0, NULL, (const double[]){1});
        ck_assert_int_eq(tg_tensor_binary_out(c, TG_SUB, one, c), TG_OK);
        for (int i = 0; i < 12; i++)
            ref[i] = 1 - cv[i];
        tt_assert_close(c, ref, 0);
        /* unary in place on the strided view */
        ck_assert_int_eq(tg_tensor_unary_out(c, TG_SQUARE, c, 0, 0), TG_OK);
        for (int i = 0; i < 12; i++)
            ref[i] = (1 - cv[i]) * (1 - cv[i]);
        tt_assert_close(c, ref, 0);
        /* axpy_ with a broadcast src, into a contiguous and into a strided dst */
        tg_tensor *dst = tt_tensor(dt, TG_DIMS(3, 4), av);
        ck_assert_int_eq(tg_tensor_axpy_(dst, 0.25, b), TG_OK);
        for (int i = 0; i < 12; i++)
            ref[i] = av[i] + 0.25 * bv[i % 4];
        tt_assert_close(dst, ref, tol(dt));
        tg_tensor *col = tt_tensor(dt, TG_DIMS(3, 1), bv);
        ck_assert_int_eq(tg_tensor_axpy_(c, -2, col), TG_OK);
        for (int i = 0; i < 12; i++)
            ref[i] = (1 - cv[i]) * (1 - cv[i]) - 2 * bv[i / 4];
        tt_assert_close(c, ref, tol(dt));
        ck_assert_int_eq(tg_tensor_axpy_(dst, 3, one), TG_OK); /* 0-d src */
        for (int i = 0; i < 12; i++)
            ref[i] = av[i] + 0.25 * bv[i % 4] + 3;
        tt_assert_close(dst, ref, tol(dt));

        FREE_TENSORS(a, b, cbase, c, one, dst, col);
        free(cv);
    }
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_errors)
{
    tg_tensor *big = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(100, 32));
    tg_tensor *small = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 32));
    tg_tensor *d64 = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(3, 32));
    tg_tensor *u8 = tg_tensor_zeros(NULL, TG_U8, TG_DIMS(3, 32));
    tg_tensor *i32 = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(3, 32));

    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_add(NULL, big, small));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_add", "shapes [100,32] and [3,32] cannot be broadcast");
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);

    /* a NULL input keeps the message of the failure that produced it */
    ck_assert_ptr_null(tg_tensor_exp(NULL, NULL));
    ck_assert_ptr_null(tg_tensor_mul(NULL, small, NULL));
    ck_assert_ptr_null(tg_tensor_where(NULL, NULL, small, small));
    ck_assert_int_eq(tg_tensor_binary_out(NULL, TG_ADD, small, small), TG_ERR_SHAPE);
    ck_assert_int_eq(tg_tensor_axpy_(small, 1, NULL), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_add", "shapes [100,32] and [3,32] cannot be broadcast");
    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_relu(NULL, NULL));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_relu", "an input tensor is NULL");

    ck_assert_ptr_null(tg_tensor_sub(NULL, small, d64));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_sub", "dtypes f32 and f64 differ");

    ck_assert_ptr_null(tg_tensor_exp(NULL, u8));
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_exp", "dtype u8 is not supported");
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_tensor_clamp(NULL, i32, 0, 1));
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_clamp", "dtype i32 is not supported");
    ck_assert_ptr_null(tg_tensor_affine(NULL, i32, 2, 1));
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_affine", "dtype i32 is not supported");
    ck_assert_ptr_null(tg_tensor_maximum(NULL, u8, u8));
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_maximum", "dtype u8 is not supported");
    ck_assert_ptr_null(tg_tensor_unary(NULL, TG_UNARY_OP_COUNT, small, 0, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_ptr_null(tg_tensor_binary(NULL, (tg_binary_op)-1, small, small));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);

    /* _out: shape, dtype, and an output with a broadcast axis */
    tg_tensor *o33 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 33));
    ck_assert_int_eq(tg_tensor_binary_out(o33, TG_ADD, small, small), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_binary_out", "out has shape [3,33], expected [3,32]");
    ck_assert_int_eq(tg_tensor_unary_out(o33, TG_EXP, small, 0, 0), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_unary_out", "out has shape [3,33], expected [3,32]");
    ck_assert_int_eq(tg_tensor_binary_out(small, TG_LT, small, small), TG_ERR_DTYPE);
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_binary_out", "out has dtype f32, expected u8");
    tg_tensor *row = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(32));
    tg_tensor *bcast = tg_tensor_expand(NULL, row, 2, small->shape);
    ck_assert_int_eq(tg_tensor_binary_out(bcast, TG_ADD, small, small), TG_ERR_ARG);
    ck_assert_int_eq(tg_tensor_axpy_(bcast, 1, small), TG_ERR_ARG);

    /* axpy_: src must broadcast to dst, same dtype */
    ck_assert_int_eq(tg_tensor_axpy_(small, 1, big), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_axpy_", "shape [100,32] cannot be broadcast to [3,32]");
    ck_assert_int_eq(tg_tensor_axpy_(small, 1, d64), TG_ERR_DTYPE);
    ck_assert_int_eq(tg_tensor_axpy_(u8, 1, u8), TG_ERR_DTYPE);

    /* where: mask dtype, a/b dtypes, three shapes */
    ck_assert_ptr_null(tg_tensor_where(NULL, small, small, small));
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_where", "mask has dtype f32, expected u8");
    ck_assert_ptr_null(tg_tensor_where(NULL, u8, small, d64));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_tensor_where(NULL, u8, big, big));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_where", "shapes [3,32] (mask), [100,32]");

    FREE_TENSORS(big, small, d64, u8, i32, o33, row, bcast);
}
END_TEST

START_TEST(test_op_names)
{
    ck_assert_str_eq(tg_unary_op_name(TG_LEAKY_RELU), "leaky_relu");
    ck_assert_str_eq(tg_binary_op_name(TG_GE), "ge");
    ck_assert_str_eq(tg_unary_op_name(TG_UNARY_OP_COUNT), "?");
    ck_assert_str_eq(tg_binary_op_name(TG_BINARY_OP_COUNT), "?");
    for (int op = 0; op < TG_UNARY_OP_COUNT; op++)
        ck_assert_str_ne(tg_unary_op_name((tg_unary_op)op), "?");
    for (int op = 0; op < TG_BINARY_OP_COUNT; op++)
        ck_assert_str_ne(tg_binary_op_name((tg_binary_op)op), "?");
}
END_TEST

/* ------------------------------------------------------------------ arena */

START_TEST(test_arena_results)
{
    tg_arena *ar = tg_arena_new(0);
    ck_assert_ptr_nonnull(ar);
    const double xv[6] = {-1, 0.5, 2, -3, 0, 1.5};
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 3), xv);
    for (int round = 0; round < 2; round++) {
        tg_tensor *e = tg_tensor_exp(ar, x);
        tg_tensor *s = tg_tensor_add(ar, e, x);
        tg_tensor *m = tg_tensor_binary(ar, TG_GT, x, tg_tensor_scalar(ar, TG_F64, 0));
        tg_tensor *w = tg_tensor_where(ar, m, s, tg_tensor_affine(ar, x, 2, 0));
        ck_assert_msg(w != NULL, "%s", tg_last_error());
        ck_assert_ptr_eq(e->arena, ar);
        ck_assert_ptr_eq(w->arena, ar);
        ck_assert_uint_gt(tg_arena_used(ar), 0);
        double ref[6];
        for (int i = 0; i < 6; i++)
            ref[i] = xv[i] > 0 ? exp(xv[i]) + xv[i] : 2 * xv[i];
        tt_assert_close(w, ref, 1e-14);
        tg_tensor_free(w); /* ignored for arena tensors */
        tg_arena_reset(ar);
        ck_assert_uint_eq(tg_arena_used(ar), 0);
    }
    tg_tensor_free(x);
    tg_arena_free(ar);
}
END_TEST

/* The relu and leaky_relu gradients against x > 0 ? g : (slope * g or 0), on contiguous
 * and transposed operands, f32 and f64, above the threading threshold too; an infinite
 * g where x <= 0 gives relu 0, not NaN; x == 0 takes the negative side's slope. */
START_TEST(test_relu_backward)
{
    static const int64_t shapes[][2] = {{3, 5}, {300, 130}};
    for (int k = 0; k < 2; k++)
        for (int d = 0; d < 2; d++)
            for (int layout = 0; layout < 2; layout++) {
                tg_dtype dt = d ? TG_F64 : TG_F32;
                const int64_t r = shapes[k][0], c = shapes[k][1];
                tg_tensor *x = tt_rand_tensor(dt, TG_DIMS(r, c)), *g = tt_rand_tensor(dt, TG_DIMS(c, r));
                tt_become(&g, tg_tensor_transpose(NULL, g, 0, 1)); /* g read through strides */
                if (layout) {                                        /* x too */
                    tt_become(&x, tg_tensor_transpose(NULL, x, 0, 1));
                    tt_become(&g, tg_tensor_transpose(NULL, g, 0, 1));
                }
                ck_assert_int_eq(tg_tensor_set(x, (int64_t[]){0, 0}, 0), TG_OK);
                double *xv = tt_values(x), *gv = tt_values(g);
                int64_t n = tg_tensor_numel(x);
                double *want = malloc((size_t)n * sizeof *want), *want_leaky = malloc((size_t)n * sizeof *want);
                for (int64_t i = 0; i < n; i++) {
                    want[i] = xv[i] > 0 ? gv[i] : 0;
                    want_leaky[i] = xv[i] > 0 ? gv[i] : (dt == TG_F32 ? (double)((float)gv[i] * 0.1f) : gv[i] * 0.1);
                }
                tg_tensor *dx = tg_tensor_relu_backward(NULL, x, g);
                tg_tensor *dxl = tg_tensor_leaky_relu_backward(NULL, x, g, 0.1);
                ck_assert_msg(dx && dxl, "%s", tg_last_error());
                ck_assert(tg_tensor_is_contiguous(dx) && dx->dtype == dt);
                tt_assert_close(dx, want, 0);
                tt_assert_close(dxl, want_leaky, 0);
                tg_tensor *list[] = {x, g, dx, dxl};
                for (int i = 0; i < 4; i++)
                    tg_tensor_free(list[i]);
                free(xv);
                free(gv);
                free(want);
                free(want_leaky);
            }
    tg_tensor *x = tt_tensor(TG_F32, TG_DIMS(3), (double[]){-1, 0, 2});
    tg_tensor *g = tt_tensor(TG_F32, TG_DIMS(3), (double[]){INFINITY, INFINITY, 3});
    tg_tensor *dx = tg_tensor_relu_backward(NULL, x, g);
    tt_assert_close(dx, ((double[]){0, 0, 3}), 0);
    tg_tensor *g2 = tt_tensor(TG_F32, TG_DIMS(1, 3), (double[]){1, 2, 3});
    tg_tensor *gi = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(3));
    tt_expect_error(tg_tensor_leaky_relu_backward(NULL, x, g2, 0.1), TG_ERR_SHAPE, "tg_tensor_leaky_relu_backward",
                    "g f32 [1,3] must have x's shape and dtype, f32 [3]");
    tt_expect_error(tg_tensor_relu_backward(NULL, gi, gi), TG_ERR_DTYPE, "tg_tensor_relu_backward", "");
    tg_tensor *list[] = {x, g, dx, g2, gi};
    for (int i = 0; i < 5; i++)
        tg_tensor_free(list[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/elementwise");
    TCase *tc = tt_tcase("unary");
    tcase_add_loop_test(tc, test_unary_ops, 0, N_UNARY_CASES);
    suite_add_tcase(s, tc);
    tc = tt_tcase("binary");
    tcase_add_loop_test(tc, test_binary_ops, 0, TG_BINARY_OP_COUNT);
    tcase_add_test(tc, test_broadcast_shapes);
    tcase_add_test(tc, test_comparisons_integer);
    tcase_add_test(tc, test_where);
    suite_add_tcase(s, tc);
    tc = tt_tcase("edges");
    tcase_add_test(tc, test_special_values);
    tcase_add_test(tc, test_pow_special_exponents);
    tcase_add_test(tc, test_thread_count_invariance);
    tcase_add_test(tc, test_in_place);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_op_names);
    tcase_add_test(tc, test_arena_results);
    tcase_add_test(tc, test_relu_backward);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
