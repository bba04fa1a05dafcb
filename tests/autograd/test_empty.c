/* Empty tensors (a size-0 axis) through every op family, forward and backward: the
 * result has the shape PyTorch gives, the loss of an empty sum is 0, and every leaf
 * gets a gradient of its own shape (empty, or zeros where the leaf is not empty, as a
 * convolution's weight with a batch of 0). Functions undefined on nothing (the max of
 * no element) are errors that say so. */
#include "check_util.h"

/* One case: fn builds an output from the leaves; `want` is its shape. */
typedef tg_tensor *(*case_fn)(tg_tape *tp, tg_tensor *const *in);

typedef struct empty_case {
    const char *name;
    case_fn fn;
    int nin;
    int ndim[3];
    int64_t shape[3][4];
    int out_ndim;
    int64_t out_shape[4];
} empty_case;

static tg_tensor *run_case(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const empty_case *c = user;
    return c->fn(tp, in);
}

/* fn on zero-filled f64 leaves of the case's shapes: the output's shape, then
 * backward of sum(output), which must be 0, with a gradient of each leaf's shape and
 * every element 0; then tg_gradcheck over the same inputs. */
static void check_case(const empty_case *c)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *in[3] = {NULL};
    for (int i = 0; i < c->nin; i++) {
        in[i] = tg_tensor_zeros(NULL, TG_F64, c->ndim[i], c->shape[i]);
        ck_assert_msg(in[i] != NULL, "%s: %s", c->name, tg_last_error());
        ck_assert_int_eq(tg_requires_grad(in[i], "in"), TG_OK);
    }
    tg_tensor *y = c->fn(tp, in);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s forward: %s", c->name, tg_tape_error(tp));
    ck_assert_int_eq(y->ndim, c->out_ndim);
    for (int d = 0; d < c->out_ndim; d++)
        ck_assert_msg(y->shape[d] == c->out_shape[d], "%s: axis %d is %lld, want %lld", c->name, d,
                      (long long)y->shape[d], (long long)c->out_shape[d]);
    tg_tensor *loss = tg_sum(tp, y, 0, NULL, false);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s backward: %s", c->name, tg_tape_error(tp));
    if (tg_tensor_numel(y) == 0)
        ck_assert_double_eq(tg_tensor_item(loss), 0);
    for (int i = 0; i < c->nin; i++) {
        const tg_tensor *g = tg_grad(in[i]);
        ck_assert_msg(g != NULL, "%s: input %d got no gradient", c->name, i);
        ck_assert(tg_tensor_same_shape(g, in[i]));
        tg_grad_stats st = tg_tensor_stats(g);
        ck_assert_msg(st.max_abs == 0 && st.nonfinite == 0, "%s: input %d's gradient is not 0", c->name, i);
    }
    tg_gradcheck_report rep;
    ck_assert_msg(tg_gradcheck(run_case, (void *)c, c->nin, in, NULL, &rep) == TG_OK, "%s: %s", c->name,
                  rep.message);
    tg_tape_free(tp);
    for (int i = 0; i < c->nin; i++)
        tg_tensor_free(in[i]);
}

static tg_tensor *f_add(tg_tape *tp, tg_tensor *const *in) { return tg_add(tp, in[0], in[1]); }
static tg_tensor *f_sub(tg_tape *tp, tg_tensor *const *in) { return tg_sub(tp, in[0], in[1]); }
static tg_tensor *f_mul(tg_tape *tp, tg_tensor *const *in) { return tg_mul(tp, in[0], in[1]); }
static tg_tensor *f_div(tg_tape *tp, tg_tensor *const *in) { return tg_div(tp, in[0], in[1]); }
static tg_tensor *f_maximum(tg_tape *tp, tg_tensor *const *in) { return tg_maximum(tp, in[0], in[1]); }
static tg_tensor *f_unary(tg_tape *tp, tg_tensor *const *in)
{
    /* every unary op, chained */
    tg_tensor *x = tg_neg(tp, tg_add_scalar(tp, tg_mul_scalar(tp, in[0], 2), 1));
    x = tg_pow_scalar(tp, tg_exp(tp, x), 2);
    x = tg_sqrt(tp, tg_rsqrt(tp, tg_log(tp, x)));
    x = tg_tanh(tp, tg_sigmoid(tp, tg_relu(tp, tg_leaky_relu(tp, x, 0.1))));
    return tg_dropout(tp, tg_clamp(tp, x, -1, 1), 0.5);
}
static tg_tensor *f_sum_all(tg_tape *tp, tg_tensor *const *in) { return tg_sum(tp, in[0], 0, NULL, false); }
static tg_tensor *f_sum_1(tg_tape *tp, tg_tensor *const *in) { return tg_sum(tp, in[0], TG_AXES(1), false); }
static tg_tensor *f_mean_0(tg_tape *tp, tg_tensor *const *in) { return tg_mean(tp, in[0], TG_AXES(0), true); }
static tg_tensor *f_var_0(tg_tape *tp, tg_tensor *const *in) { return tg_var(tp, in[0], TG_AXES(0), 1, false); }
static tg_tensor *f_max_0(tg_tape *tp, tg_tensor *const *in) { return tg_max(tp, in[0], TG_AXES(0), false); }
static tg_tensor *f_lse_0(tg_tape *tp, tg_tensor *const *in) { return tg_logsumexp(tp, in[0], TG_AXES(0), false); }
static tg_tensor *f_log_softmax(tg_tape *tp, tg_tensor *const *in) { return tg_log_softmax(tp, in[0], 1); }
static tg_tensor *f_matmul(tg_tape *tp, tg_tensor *const *in) { return tg_matmul(tp, in[0], in[1]); }
static tg_tensor *f_views(tg_tape *tp, tg_tensor *const *in)
{
    tg_tensor *x = tg_transpose(tp, tg_reshape(tp, in[0], TG_DIMS(3, 0, 2)), 0, 2); /* [2,0,3] */
    x = tg_unsqueeze(tp, tg_select(tp, tg_slice(tp, x, 2, 1, 3, 1), 0, 1), 0);   /* [1,0,2] */
    x = tg_squeeze(tp, tg_expand(tp, x, TG_DIMS(1, 0, 2)), 0);                     /* [0,2] */
    return tg_concat(tp, 2, (tg_tensor *[]){x, tg_permute(tp, in[1], TG_AXES(1, 0))}, 0);
}
static const tg_conv2d_geom geom3 = {3, 3, 1, 1, 1, 1, 1, 1}, pool2 = {2, 2, 2, 2, 0, 0, 1, 1};
static tg_tensor *f_conv(tg_tape *tp, tg_tensor *const *in) { return tg_conv2d(tp, in[0], in[1], in[2], &geom3); }
static tg_tensor *f_im2col(tg_tape *tp, tg_tensor *const *in) { return tg_im2col(tp, in[0], &geom3); }
static tg_tensor *f_pools(tg_tape *tp, tg_tensor *const *in)
{
    tg_tensor *a = tg_avg_pool2d(tp, in[0], &pool2), *m = tg_max_pool2d(tp, in[0], &pool2);
    return tg_global_avg_pool2d(tp, tg_add(tp, a, m));
}
static tg_tensor *f_batch_norm(tg_tape *tp, tg_tensor *const *in)
{
    return tg_batch_norm2d(tp, in[0], in[1], in[2], 1e-5, NULL, NULL);
}
static tg_tensor *f_cross_entropy(tg_tape *tp, tg_tensor *const *in)
{
    tg_tensor *labels = tg_tensor_zeros(tg_tape_arena(tp), TG_I32, TG_DIMS(0));
    tg_tensor *logp = tg_log_softmax(tp, in[0], 1);
    return tg_gather(tp, logp, 1, labels); /* nll_loss's pick, without its mean over nothing */
}

#define SHAPE(...) {__VA_ARGS__}

static const empty_case cases[] = {
    /* elementwise, with broadcasting: [2,0] op [1,0] and [2,0] op [2,1] */
    {"add", f_add, 2, {2, 2}, {SHAPE(2, 0), SHAPE(1, 0)}, 2, SHAPE(2, 0)},
    {"sub", f_sub, 2, {2, 2}, {SHAPE(2, 0), SHAPE(2, 1)}, 2, SHAPE(2, 0)},
    {"mul", f_mul, 2, {2, 1}, {SHAPE(2, 0), SHAPE(0)}, 2, SHAPE(2, 0)},
    {"div", f_div, 2, {2, 2}, {SHAPE(2, 0), SHAPE(2, 1)}, 2, SHAPE(2, 0)},
    {"maximum", f_maximum, 2, {2, 2}, {SHAPE(2, 0), SHAPE(2, 0)}, 2, SHAPE(2, 0)},
    {"unary", f_unary, 1, {3}, {SHAPE(0, 3, 2)}, 3, SHAPE(0, 3, 2)},
    /* reductions */
    {"sum all", f_sum_all, 1, {2}, {SHAPE(2, 0)}, 0, SHAPE(0)},
    {"sum over the empty axis", f_sum_1, 1, {2}, {SHAPE(2, 0)}, 1, SHAPE(2)},
    {"mean over a full axis", f_mean_0, 1, {2}, {SHAPE(2, 0)}, 2, SHAPE(1, 0)},
    {"var", f_var_0, 1, {2}, {SHAPE(3, 0)}, 1, SHAPE(0)},
    {"max", f_max_0, 1, {2}, {SHAPE(3, 0)}, 1, SHAPE(0)},
    {"logsumexp", f_lse_0, 1, {2}, {SHAPE(3, 0)}, 1, SHAPE(0)},
    {"log_softmax", f_log_softmax, 1, {2}, {SHAPE(0, 5)}, 2, SHAPE(0, 5)},
    /* matmul: an empty inner dimension (a product of zeros), an empty batch of rows */
    {"matmul, K = 0", f_matmul, 2, {2, 2}, {SHAPE(2, 0), SHAPE(0, 3)}, 2, SHAPE(2, 3)},
    {"matmul, M = 0", f_matmul, 2, {2, 2}, {SHAPE(0, 4), SHAPE(4, 3)}, 2, SHAPE(0, 3)},
    {"matmul, batched", f_matmul, 2, {3, 2}, {SHAPE(0, 2, 4), SHAPE(4, 3)}, 3, SHAPE(0, 2, 3)},
    /* views and concat */
    {"views", f_views, 2, {2, 2}, {SHAPE(3, 0), SHAPE(2, 0)}, 2, SHAPE(0, 2)},
    /* a batch of 0 images through convolution, pooling and batch norm */
    {"conv2d", f_conv, 3, {4, 4, 1}, {SHAPE(0, 3, 6, 6), SHAPE(4, 3, 3, 3), SHAPE(4)}, 4, SHAPE(0, 4, 6, 6)},
    {"im2col", f_im2col, 1, {4}, {SHAPE(0, 2, 4, 4)}, 3, SHAPE(0, 18, 16)},
    {"pooling", f_pools, 1, {4}, {SHAPE(0, 3, 4, 4)}, 2, SHAPE(0, 3)},
    {"batch_norm2d", f_batch_norm, 3, {4, 1, 1}, {SHAPE(0, 2, 3, 3), SHAPE(2), SHAPE(2)}, 4, SHAPE(0, 2, 3, 3)},
    /* a loss over no examples */
    {"log_softmax + gather", f_cross_entropy, 1, {2}, {SHAPE(0, 10)}, 1, SHAPE(0)},
};

START_TEST(test_empty_through_every_op)
{
    check_case(&cases[_i]);
}
END_TEST

/* The issue's example: zeros [2,0], sum(x * x), backward: loss 0, an empty gradient. */
START_TEST(test_issue_example)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 0));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, x, x), 0, NULL, false);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_double_eq(tg_tensor_item(loss), 0);
    tt_assert_shape(tg_grad(x), 2, 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* What is undefined on nothing stays an error that says so; an empty mean is NaN. */
START_TEST(test_undefined_on_nothing)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(2, 0));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_max(tp, x, TG_AXES(1), false);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "tg_max: "));
    tg_tape_reset(tp);
    tg_tensor *m = tg_mean(tp, x, 0, NULL, false);
    ck_assert(isnan(tg_tensor_item(m)));
    ck_assert_int_eq(tg_backward(tp, m), TG_OK);
    tt_assert_shape(tg_grad(x), 2, 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/empty");
    TCase *tc = tt_tcase("empty");
    tcase_add_loop_test(tc, test_empty_through_every_op, 0, (int)(sizeof cases / sizeof cases[0]));
    tcase_add_test(tc, test_issue_example);
    tcase_add_test(tc, test_undefined_on_nothing);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
