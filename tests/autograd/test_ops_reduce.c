/* Reductions and losses on the tape: gradients of sum, mean, var, max, logsumexp,
 * log_softmax, gather and nll_loss against central differences (f64, over single,
 * multiple, negative and all axes, keepdim or not, on non-contiguous views), tied
 * maxima sharing their gradient, cross-entropy's gradient in closed form, f32 against
 * f64, and the tape's messages for bad axes and labels. */
#include "check_util.h"

#include <stdint.h>

/* Asserts that fn's gradients agree with central differences and that elements were
 * really compared (none skipped as kinks: these inputs are smooth). */
static void assert_gradcheck(tg_gradcheck_fn fn, void *user, int nin, tg_tensor *const *in,
                             const char *what)
{
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(fn, user, nin, in, NULL, &rep);
    ck_assert_msg(st == TG_OK && rep.ok, "%s: %s (%s)", what, rep.message, tg_last_error());
    ck_assert_msg(rep.checked > 0, "%s: nothing checked", what);
    ck_assert_msg(rep.kinks == 0, "%s: %lld kinks", what, (long long)rep.kinks);
}

/* ------------------------------------------------------------------ the cases */

enum { R_SUM, R_MEAN, R_VAR, R_MAX, R_LSE, R_COUNT };
static const char *const reduce_name[R_COUNT] = {"sum", "mean", "var", "max", "logsumexp"};

/* How the gradcheck fn makes its input non-contiguous, on the tape. The input is
 * [4,3,5] for the first two, [1,3,5] for the expand; the op sees a 3-D view. */
enum { V_TRANSPOSE, V_SLICE, V_EXPAND, V_COUNT };
static const char *const view_name[V_COUNT] = {"transpose", "slice", "expand"};

static tg_tensor *make_view(tg_tape *tp, tg_tensor *x, int view)
{
    switch (view) {
    case V_TRANSPOSE: return tg_transpose(tp, x, 0, 2);                 /* [5,3,4] */
    case V_SLICE: return tg_slice(tp, x, 1, 0, INT64_MAX, 2);           /* [4,2,5] */
    default: return tg_expand(tp, x, TG_DIMS(4, 3, 5));                /* [4,3,5], stride 0 */
    }
}

static tg_tensor *view_input(int view)
{
    return view == V_EXPAND ? tt_rand_tensor(TG_F64, TG_DIMS(1, 3, 5))
                            : tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 5));
}

typedef struct axes_case {
    int naxes, axes[3];
} axes_case;

/* single, multiple, negative, negative multiple, all (as 0) and all (listed) */
static const axes_case axes_cases[] = {
    {1, {1}}, {2, {0, 2}}, {1, {-1}}, {2, {-3, -2}}, {0, {0}}, {3, {2, 0, 1}},
};
#define N_AXES_CASES ((int)(sizeof axes_cases / sizeof axes_cases[0]))

typedef struct reduce_case {
    int kind, view, correction;
    axes_case ax;
    bool keepdim;
} reduce_case;

static tg_tensor *apply_reduce(tg_tape *tp, tg_tensor *x, const reduce_case *c)
{
    const int *axes = c->ax.axes;
    switch (c->kind) {
    case R_SUM: return tg_sum(tp, x, c->ax.naxes, axes, c->keepdim);
    case R_MEAN: return tg_mean(tp, x, c->ax.naxes, axes, c->keepdim);
    case R_VAR: return tg_var(tp, x, c->ax.naxes, axes, c->correction, c->keepdim);
    case R_MAX: return tg_max(tp, x, c->ax.naxes, axes, c->keepdim);
    default: return tg_logsumexp(tp, x, c->ax.naxes, axes, c->keepdim);
    }
}

static tg_tensor *reduce_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const reduce_case *c = user;
    return apply_reduce(tp, make_view(tp, in[0], c->view), c);
}

/* Every view, every axis list, keepdim both ways, for one reduction. */
static void gradcheck_reduction(int kind)
{
    for (int view = 0; view < V_COUNT; view++) {
        tg_tensor *x = view_input(view);
        for (int a = 0; a < N_AXES_CASES; a++)
            for (int keep = 0; keep < 2; keep++) {
                reduce_case c = {.kind = kind, .view = view, .correction = (a + keep) % 2,
                                 .ax = axes_cases[a], .keepdim = keep};
                char what[128];
                snprintf(what, sizeof what, "%s of a %s view, axes case %d, keepdim %d", reduce_name[kind],
                         view_name[view], a, keep);
                assert_gradcheck(reduce_fn, &c, 1, &x, what);
            }
        tg_tensor_free(x);
    }
}

START_TEST(test_gradcheck_sum) { gradcheck_reduction(R_SUM); }
END_TEST
START_TEST(test_gradcheck_mean) { gradcheck_reduction(R_MEAN); }
END_TEST
START_TEST(test_gradcheck_var) { gradcheck_reduction(R_VAR); }
END_TEST
START_TEST(test_gradcheck_max) { gradcheck_reduction(R_MAX); }
END_TEST
START_TEST(test_gradcheck_logsumexp) { gradcheck_reduction(R_LSE); }
END_TEST

/* ------------------------------------------------------------------ shapes, values */

START_TEST(test_output_shapes_and_values)
{
    tg_tape *tp = tg_tape_new(0);
    double v[6] = {1, -2, 3, 4, 5, -6};
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 3), v);
    tg_tensor *s = tg_sum(tp, x, TG_AXES(-1), false);
    tt_assert_shape(s, 2);
    tt_assert_close(s, ((double[]){2, 3}), 1e-12);
    tg_tensor *sk = tg_sum(tp, x, TG_AXES(0), true);
    tt_assert_shape(sk, 1, 3);
    tt_assert_close(sk, ((double[]){5, 3, -3}), 1e-12);
    tg_tensor *all = tg_mean(tp, x, 0, NULL, false);
    ck_assert_int_eq(all->ndim, 0);
    ck_assert_double_eq_tol(tg_tensor_item(all), 5.0 / 6, 1e-12);
    tg_tensor *allk = tg_max(tp, x, 0, NULL, true);
    tt_assert_shape(allk, 1, 1);
    ck_assert_double_eq(tg_tensor_item(allk), 5);
    tg_tensor *var = tg_var(tp, x, TG_AXES(1), 1, false); /* rows: var(1,-2,3) = 19/3 */
    tt_assert_close(var, ((double[]){19.0 / 3, 37}), 1e-12);
    tg_tensor *lse = tg_logsumexp(tp, x, TG_AXES(1), false);
    tt_assert_close(lse, ((double[]){log(exp(1) + exp(-2) + exp(3)), log(exp(4) + exp(5) + exp(-6))}),
                    1e-12);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_int_eq(tg_tape_size(tp), 6);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ max ties */

/* The gradient of sum(max(x, axes)) for a leaf with the given values. */
static double *max_grad(int ndim, const int64_t *shape, const double *v, int naxes, const int *axes)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_tensor(TG_F64, ndim, shape, v);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tensor *loss = tg_sum(tp, tg_max(tp, x, naxes, axes, false), 0, NULL, false);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    double *g = tt_values(tg_grad(x));
    tg_tensor_free(x);
    tg_tape_free(tp);
    return g;
}

START_TEST(test_max_ties_share_the_gradient)
{
    double *g = max_grad(TG_DIMS(3), (double[]){1, 3, 3}, 0, NULL);
    ck_assert_double_eq(g[0], 0);
    ck_assert_double_eq(g[1], 0.5);
    ck_assert_double_eq(g[2], 0.5);
    free(g);

    g = max_grad(TG_DIMS(3), (double[]){4, 4, 4}, TG_AXES(0));
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq_tol(g[i], 1.0 / 3, 1e-15);
    free(g);

    /* per row: a tie of two, a single maximum, and a tie across a column axis */
    g = max_grad(TG_DIMS(3, 3), (double[]){2, 2, 1, 0, 5, -1, 7, 7, 7}, TG_AXES(-1));
    const double want[9] = {.5, .5, 0, 0, 1, 0, 1.0 / 3, 1.0 / 3, 1.0 / 3};
    for (int i = 0; i < 9; i++)
        ck_assert_double_eq_tol(g[i], want[i], 1e-15);
    free(g);

    g = max_grad(TG_DIMS(2, 2), (double[]){1, 9, 9, 2}, 0, NULL); /* ties in different rows */
    const double want2[4] = {0, .5, .5, 0};
    for (int i = 0; i < 4; i++)
        ck_assert_double_eq(g[i], want2[i]);
    free(g);
}
END_TEST

/* ------------------------------------------------------------------ log_softmax */

typedef struct axis_case {
    int view, axis;
} axis_case;

static tg_tensor *log_softmax_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const axis_case *c = user;
    return tg_log_softmax(tp, make_view(tp, in[0], c->view), c->axis);
}

START_TEST(test_log_softmax_normalises)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(4, 6));
    tg_tensor *big = tg_tensor_affine(NULL, x, 300, 500); /* exp would overflow naively */
    for (int axis = -2; axis < 2; axis++) {
        tg_tensor *ls = tg_log_softmax(tp, big, axis);
        tt_assert_shape(ls, 4, 6);
        tg_tensor *rows = tg_tensor_sum(NULL, tg_tensor_exp(tg_tape_arena(tp), ls), TG_AXES(axis), false);
        ck_assert_ptr_nonnull(rows);
        double *r = tt_values(rows);
        for (int64_t i = 0; i < tg_tensor_numel(rows); i++)
            ck_assert_double_eq_tol(r[i], 1, 1e-12);
        free(r);
        tg_tensor_free(rows);
    }
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_tensor_free(big);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_gradcheck_log_softmax)
{
    for (int view = 0; view < V_COUNT; view++) {
        tg_tensor *x = view_input(view);
        for (int axis = -3; axis < 3; axis++) {
            axis_case c = {view, axis};
            char what[96];
            snprintf(what, sizeof what, "log_softmax of a %s view along axis %d", view_name[view], axis);
            assert_gradcheck(log_softmax_fn, &c, 1, &x, what);
        }
        tg_tensor_free(x);
    }
}
END_TEST

/* ------------------------------------------------------------------ gather */

static tg_tensor *gather_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const axis_case *c = user;
    return tg_gather(tp, make_view(tp, in[0], c->view), c->axis, in[1]);
}

/* An i32 index shaped as `shape` without `axis`, values in 0..size-1 (with repeats). */
static tg_tensor *rand_index(int ndim, const int64_t *shape, int axis)
{
    int a = axis < 0 ? axis + ndim : axis;
    int64_t ishape[TG_MAX_DIMS], n = 1;
    for (int d = 0, k = 0; d < ndim; d++)
        if (d != a) {
            ishape[k++] = shape[d];
            n *= shape[d];
        }
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = floor((tt_rnd() + 1) / 2 * (double)shape[a]);
    tg_tensor *idx = tt_tensor(TG_I32, ndim - 1, ishape, v);
    free(v);
    return idx;
}

START_TEST(test_gradcheck_gather)
{
    static const int64_t view_shape[V_COUNT][3] = {{5, 3, 4}, {4, 2, 5}, {4, 3, 5}};
    for (int view = 0; view < V_COUNT; view++) {
        tg_tensor *x = view_input(view);
        for (int axis = -3; axis < 3; axis++) {
            axis_case c = {view, axis};
            tg_tensor *idx = rand_index(3, view_shape[view], axis);
            char what[96];
            snprintf(what, sizeof what, "gather of a %s view along axis %d", view_name[view], axis);
            assert_gradcheck(gather_fn, &c, 2, (tg_tensor *[]){x, idx}, what);
            tg_tensor_free(idx);
        }
        tg_tensor_free(x);
    }
}
END_TEST

START_TEST(test_gather_values_and_repeated_indices)
{
    tg_tape *tp = tg_tape_new(0);
    /* x [2,3]; along axis 1 each row picks one column; along axis 0 each column a row */
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 3), (double[]){10, 11, 12, 20, 21, 22});
    tg_tensor *i1 = tt_tensor(TG_I32, TG_DIMS(2), (double[]){2, 0});
    tg_tensor *i0 = tt_tensor(TG_I32, TG_DIMS(3), (double[]){1, 1, 0});
    tt_assert_close(tg_gather(tp, x, 1, i1), ((double[]){12, 20}), 0);
    tt_assert_close(tg_gather(tp, x, -2, i0), ((double[]){20, 21, 12}), 0);
    tg_tensor *i_1d = tt_tensor(TG_I32, 0, NULL, (double[]){1});
    tg_tensor *row = tt_tensor(TG_F64, TG_DIMS(3), (double[]){5, 6, 7});
    tg_tensor *one = tg_gather(tp, row, 0, i_1d); /* 1-D x: a 0-d index, a 0-d result */
    ck_assert_int_eq(one->ndim, 0);
    ck_assert_double_eq(tg_tensor_item(one), 6);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);

    /* the same element picked several times: its gradient is the sum of theirs. x [3]
     * broadcast to [4,3] (stride 0), so every row is the same storage */
    tg_tensor *base = tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 2, 3});
    ck_assert_int_eq(tg_requires_grad(base, "base"), TG_OK);
    tg_tensor *idx = tt_tensor(TG_I32, TG_DIMS(4), (double[]){2, 2, 0, 2});
    tg_tensor *out = tg_gather(tp, tg_expand(tp, base, TG_DIMS(4, 3)), 1, idx);
    tt_assert_close(out, ((double[]){3, 3, 1, 3}), 0);
    tg_tensor *gout = tt_tensor(TG_F64, TG_DIMS(4), (double[]){1, 2, 3, 4});
    ck_assert_msg(tg_backward_from(tp, out, gout) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(base), ((double[]){3, 0, 1 + 2 + 4}), 0);

    /* and on a leaf directly: a scatter into zeros, untouched elements stay 0 */
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tape_reset(tp);
    tg_tensor *picked = tg_gather(tp, x, 1, i1);
    tg_tensor *g2 = tt_tensor(TG_F64, TG_DIMS(2), (double[]){5, 7});
    ck_assert_int_eq(tg_backward_from(tp, picked, g2), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){0, 0, 5, 7, 0, 0}), 0);

    tg_tensor *tensors[] = {x, i1, i0, i_1d, row, base, idx, gout, g2};
    for (size_t k = 0; k < sizeof tensors / sizeof *tensors; k++)
        tg_tensor_free(tensors[k]);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ nll_loss */

/* logp [5,3]^T -> [3,5]: a transposed view; in[1] the i32 labels, passed through */
static tg_tensor *nll_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_nll_loss(tp, tg_transpose(tp, in[0], 0, 1), in[1]);
}

/* cross-entropy on logits [N,C] given as [C,N] (transposed on the tape) */
static tg_tensor *cross_entropy_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_nll_loss(tp, tg_log_softmax(tp, tg_transpose(tp, in[0], 0, 1), 1), in[1]);
}

START_TEST(test_nll_loss_value)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *logp = tt_tensor(TG_F64, TG_DIMS(2, 3), (double[]){-1, -2, -3, -0.5, -1.5, -2.5});
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(2), (double[]){2, 0});
    ck_assert_int_eq(tg_requires_grad(logp, "logp"), TG_OK);
    tg_tensor *loss = tg_nll_loss(tp, logp, labels);
    ck_assert_int_eq(loss->ndim, 0);
    ck_assert_double_eq_tol(tg_tensor_item(loss), (3 + 0.5) / 2, 1e-15);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tt_assert_close(tg_grad(logp), ((double[]){0, 0, -0.5, -0.5, 0, 0}), 1e-15);
    ck_assert_int_eq(tg_tape_size(tp), 1); /* one op, one record */
    tg_tensor_free(logp);
    tg_tensor_free(labels);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_gradcheck_nll_loss)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(5, 6)); /* [C=5, N=6] */
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(6), (double[]){4, 0, 4, 2, 1, 4});
    assert_gradcheck(nll_fn, NULL, 2, (tg_tensor *[]){x, labels}, "nll_loss of a transposed view");
    assert_gradcheck(cross_entropy_fn, NULL, 2, (tg_tensor *[]){x, labels},
                     "nll_loss(log_softmax) of a transposed view");
    tg_tensor_free(x);
    tg_tensor_free(labels);
}
END_TEST

START_TEST(test_cross_entropy_gradient_is_softmax_minus_onehot)
{
    enum { N = 4, C = 5 };
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *logits = tt_rand_tensor(TG_F64, TG_DIMS(N, C));
    const int32_t y[N] = {3, 0, 3, 4};
    tg_tensor *labels = tg_tensor_from_data(NULL, TG_I32, TG_DIMS(N), y);
    ck_assert_int_eq(tg_requires_grad(logits, "logits"), TG_OK);
    tg_tensor *loss = tg_nll_loss(tp, tg_log_softmax(tp, logits, 1), labels);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));

    double *z = tt_values(logits), want[N * C], want_loss = 0;
    for (int i = 0; i < N; i++) {
        double m = z[i * C], s = 0;
        for (int j = 1; j < C; j++)
            m = fmax(m, z[i * C + j]);
        for (int j = 0; j < C; j++)
            s += exp(z[i * C + j] - m);
        for (int j = 0; j < C; j++)
            want[i * C + j] = (exp(z[i * C + j] - m) / s - (j == y[i])) / N;
        want_loss += (m + log(s) - z[i * C + y[i]]) / N;
    }
    ck_assert_double_eq_tol(tg_tensor_item(loss), want_loss, 1e-12);
    tt_assert_close(tg_grad(logits), want, 1e-12);
    free(z);
    tg_tensor_free(logits);
    tg_tensor_free(labels);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ f32 against f64 */

/* fn on an f32 and an f64 leaf with the same values, backward from the same gout:
 * outputs and gradients agree to f32 precision. */
static void assert_f32_matches_f64(tg_gradcheck_fn fn, void *user, const tg_tensor *x,
                                   const tg_tensor *extra, const char *what)
{
    tg_tensor *out[2], *grad[2];
    tg_tape *tp[2];
    const tg_dtype dts[2] = {TG_F64, TG_F32};
    tg_tensor *gout64 = NULL;
    for (int k = 0; k < 2; k++) {
        tp[k] = tg_tape_new(0);
        tg_tensor *leaf = tg_tensor_to_dtype(NULL, x, dts[k]);
        ck_assert_int_eq(tg_requires_grad(leaf, "x"), TG_OK);
        out[k] = fn(tp[k], (tg_tensor *[]){leaf, (tg_tensor *)extra}, user);
        ck_assert_msg(tg_tape_status(tp[k]) == TG_OK, "%s: %s", what, tg_tape_error(tp[k]));
        ck_assert_int_eq(out[k]->dtype, dts[k]);
        if (!gout64) {
            gout64 = tg_tensor_empty(NULL, TG_F64, out[k]->ndim, out[k]->shape);
            for (int64_t i = 0, n = tg_tensor_numel(gout64); i < n; i++)
                ((double *)tg_tensor_data(gout64))[i] = tt_rnd();
        }
        tg_tensor *gout = tg_tensor_to_dtype(tg_tape_arena(tp[k]), gout64, dts[k]);
        ck_assert_msg(tg_backward_from(tp[k], out[k], gout) == TG_OK, "%s: %s", what, tg_tape_error(tp[k]));
        grad[k] = tg_tensor_clone(NULL, tg_grad(leaf));
        tg_tensor_free(leaf);
    }
    double *o64 = tt_values(out[0]), *g64 = tt_values(grad[0]);
    double eo = tt_max_rel_err(out[1], o64), eg = tt_max_rel_err(grad[1], g64);
    ck_assert_msg(eo < 1e-5 && eg < 1e-4, "%s: f32 differs from f64 by %g (output), %g (gradient)",
                  what, eo, eg);
    free(o64);
    free(g64);
    for (int k = 0; k < 2; k++) {
        tg_tensor_free(grad[k]);
        tg_tape_free(tp[k]);
    }
    tg_tensor_free(gout64);
}

START_TEST(test_f32_matches_f64)
{
    for (int kind = 0; kind < R_COUNT; kind++)
        for (int view = 0; view < V_COUNT; view++) {
            tg_tensor *x = view_input(view);
            reduce_case c = {.kind = kind, .view = view, .correction = 1, .ax = {2, {0, -1}},
                             .keepdim = view == V_SLICE};
            assert_f32_matches_f64(reduce_fn, &c, x, NULL, reduce_name[kind]);
            tg_tensor_free(x);
        }
    tg_tensor *x = view_input(V_TRANSPOSE);
    assert_f32_matches_f64(log_softmax_fn, &(axis_case){V_TRANSPOSE, 1}, x, NULL, "log_softmax");
    tg_tensor *idx = rand_index(3, (int64_t[]){5, 3, 4}, 2);
    assert_f32_matches_f64(gather_fn, &(axis_case){V_TRANSPOSE, 2}, x, idx, "gather");
    tg_tensor_free(x);
    tg_tensor_free(idx);
    tg_tensor *logits = tt_rand_tensor(TG_F64, TG_DIMS(5, 6));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(6), (double[]){1, 0, 4, 2, 1, 3});
    assert_f32_matches_f64(cross_entropy_fn, NULL, logits, labels, "nll_loss(log_softmax)");
    tg_tensor_free(logits);
    tg_tensor_free(labels);
}
END_TEST

/* ------------------------------------------------------------------ errors */

/* The call put the tape in error with exactly this message and status. */
static void assert_tape_error(tg_tape *tp, tg_status st, const char *msg)
{
    ck_assert_int_eq(tg_tape_status(tp), st);
    ck_assert_str_eq(tg_tape_error(tp), msg);
    tg_tape_reset(tp);
}

START_TEST(test_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
    ck_assert_ptr_nonnull(tg_sum(tp, x, TG_AXES(2), false)); /* the placeholder */
    assert_tape_error(tp, TG_ERR_ARG, "tg_sum: axis 2 is out of range for shape [2,3]");
    tg_var(tp, x, TG_AXES(-3), 1, true);
    assert_tape_error(tp, TG_ERR_ARG, "tg_var: axis -3 is out of range for shape [2,3]");
    tg_max(tp, x, TG_AXES(1, -1), false);
    assert_tape_error(tp, TG_ERR_ARG, "tg_max: axes 1 and -1 are the same axis of shape [2,3]");
    tg_mean(tp, x, 9, (int[9]){0}, false);
    assert_tape_error(tp, TG_ERR_ARG, "tg_mean: 9 axes given for shape [2,3] (a list of 0..8 axes expected)");
    tg_logsumexp(tp, x, 1, NULL, false);
    assert_tape_error(tp, TG_ERR_ARG,
                      "tg_logsumexp: 1 axes given in a NULL list for shape [2,3] (a list of 0..8 axes expected)");
    tg_log_softmax(tp, x, 2);
    assert_tape_error(tp, TG_ERR_ARG, "tg_log_softmax: axis 2 is out of range for shape [2,3]");

    /* in a scope, and backward refuses afterwards */
    tg_scope_push(tp, "head");
    tg_tensor *bad = tg_max(tp, x, TG_AXES(5), true);
    tg_scope_pop(tp);
    ck_assert_int_eq(tg_backward(tp, bad), TG_ERR_ARG);
    assert_tape_error(tp, TG_ERR_ARG, "tg_max: axis 5 is out of range for shape [2,3] (called in head)");
    tg_tensor *empty = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(0, 3));
    tg_max(tp, empty, TG_AXES(0), false);
    assert_tape_error(tp, TG_ERR_SHAPE, "tg_max: the reduced axes of shape [0,3] hold no elements "
                                        "(the max of nothing is undefined)");

    /* nll_loss labels */
    tg_tensor *logp = tt_rand_tensor(TG_F64, TG_DIMS(4, 5));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(4), (double[]){0, 4, 1, 7});
    tg_nll_loss(tp, logp, labels);
    assert_tape_error(tp, TG_ERR_ARG, "tg_nll_loss: label 7 of example 3 is outside 0..4");
    tg_tensor *neg = tt_tensor(TG_I32, TG_DIMS(4), (double[]){0, -1, 1, 2});
    tg_nll_loss(tp, logp, neg);
    assert_tape_error(tp, TG_ERR_ARG, "tg_nll_loss: label -1 of example 1 is outside 0..4");
    tg_tensor *short_labels = tt_tensor(TG_I32, TG_DIMS(3), (double[]){0, 1, 2});
    tg_nll_loss(tp, logp, short_labels);
    assert_tape_error(tp, TG_ERR_SHAPE, "tg_nll_loss: labels are i32 [3]; i32 [4] expected for logp [4,5]");
    tg_nll_loss(tp, x, x);
    assert_tape_error(tp, TG_ERR_DTYPE, "tg_nll_loss: labels are f64 [2,3]; i32 [2] expected for logp [2,3]");
    tg_nll_loss(tp, tg_tensor_select(tg_tape_arena(tp), logp, 0, 0), labels);
    assert_tape_error(tp, TG_ERR_SHAPE, "tg_nll_loss: logp is f64 [5]; [N, C] f32 or f64 expected");

    /* gather indices and shapes */
    tg_tensor *idx = tt_tensor(TG_I32, TG_DIMS(2), (double[]){1, 3});
    tg_gather(tp, x, 1, idx);
    assert_tape_error(tp, TG_ERR_ARG, "tg_gather: index 3 at [1] is outside 0..2 (axis 1 of x, shape [2,3], "
                                      "has size 3)");
    tg_gather(tp, x, 0, idx);
    assert_tape_error(tp, TG_ERR_SHAPE, "tg_gather: the index has shape [2]; x's shape [2,3] without axis 0 "
                                        "expected");
    tg_gather(tp, x, -3, idx);
    assert_tape_error(tp, TG_ERR_ARG, "tg_gather: axis -3 is out of range for shape [2,3]");
    tg_gather(tp, x, 1, x);
    assert_tape_error(tp, TG_ERR_DTYPE, "tg_gather: the index is f64; i32 expected");

    tg_tensor *tensors[] = {x, empty, logp, labels, neg, short_labels, idx};
    for (size_t k = 0; k < sizeof tensors / sizeof *tensors; k++)
        tg_tensor_free(tensors[k]);
    tg_tape_free(tp);
}
END_TEST

static Suite *ops_reduce_suite(void)
{
    Suite *s = suite_create("autograd/ops_reduce");
    TCase *tc = tt_tcase("gradcheck");
    tcase_add_test(tc, test_gradcheck_sum);
    tcase_add_test(tc, test_gradcheck_mean);
    tcase_add_test(tc, test_gradcheck_var);
    tcase_add_test(tc, test_gradcheck_max);
    tcase_add_test(tc, test_gradcheck_logsumexp);
    tcase_add_test(tc, test_gradcheck_log_softmax);
    tcase_add_test(tc, test_gradcheck_gather);
    tcase_add_test(tc, test_gradcheck_nll_loss);
    suite_add_tcase(s, tc);
    tc = tt_tcase("values");
    tcase_add_test(tc, test_output_shapes_and_values);
    tcase_add_test(tc, test_max_ties_share_the_gradient);
    tcase_add_test(tc, test_log_softmax_normalises);
    tcase_add_test(tc, test_gather_values_and_repeated_indices);
    tcase_add_test(tc, test_nll_loss_value);
    tcase_add_test(tc, test_cross_entropy_gradient_is_softmax_minus_onehot);
    tcase_add_test(tc, test_f32_matches_f64);
    suite_add_tcase(s, tc);
    tc = tt_tcase("errors");
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tt_run(ops_reduce_suite()); }
