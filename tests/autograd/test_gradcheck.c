/* tg_gradcheck: passes a correct backward, fails a wrong one with a report that names
 * the op and the element, skips kinks, samples large inputs, passes labels through. */
#include "check_util.h"

/* softplus(x) = log(1 + exp(x)), with a backward scaled by `k` (1: right, else wrong) */
static tg_tensor *softplus_forward(tg_tape *tp, tg_record *r)
{
    tg_arena *ar = tg_tape_arena(tp);
    return tg_tensor_log(ar, tg_tensor_affine(ar, tg_tensor_exp(ar, r->in[0]), 1, 1));
}

static tg_status softplus_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    double k = *(const double *)r->params;
    tg_tensor *dydx = tg_tensor_affine(ar, tg_tensor_sigmoid(ar, r->in[0]), k, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, dydx));
}

static const tg_op softplus_op = {"softplus", softplus_forward, softplus_backward, TG_READS_IN(0)};

static tg_tensor *softplus_times(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *s = tg_apply(tp, &softplus_op, 1, (tg_tensor *[]){in[0]}, user, sizeof(double));
    return tg_mul(tp, s, in[1]); /* [3,4] * [3,1]: broadcasting in the mix */
}

START_TEST(test_correct_backward_passes)
{
    double k = 1;
    tg_tensor *a = tt_rand_tensor(TG_F32, TG_DIMS(3, 4)), *b = tt_rand_tensor(TG_F64, TG_DIMS(3, 1));
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(softplus_times, &k, 2, (tg_tensor *[]){a, b}, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert(rep.ok);
    ck_assert_int_eq(rep.checked, 12 + 3);
    ck_assert_int_eq(rep.kinks, 0);
    ck_assert_ptr_nonnull(strstr(rep.message, "softplus"));
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_wrong_backward_fails_and_says_where)
{
    double k = 1.5; /* a backward off by a factor */
    tg_tensor *a = tt_rand_tensor(TG_F64, TG_DIMS(3, 4)), *b = tt_rand_tensor(TG_F64, TG_DIMS(3, 1));
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(softplus_times, &k, 2, (tg_tensor *[]){a, b}, NULL, &rep);
    ck_assert_int_eq(st, TG_ERR_CHECK);
    ck_assert(!rep.ok);
    ck_assert_int_eq(rep.input, 0); /* b's gradient does not go through softplus' backward */
    ck_assert(rep.index >= 0 && rep.index < 12);
    ck_assert(fabs(rep.analytic - 1.5 * rep.numeric) < 1e-6 * (1 + fabs(rep.numeric)));
    ck_assert_ptr_nonnull(strstr(rep.message, "gradient of input 0 at ["));
    ck_assert_ptr_nonnull(strstr(rep.message, "ops: softplus, mul"));
    ck_assert_str_eq(tg_last_error(), rep.message);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* a transposed gradient: right values, wrong places */
static tg_status transposed_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *gt = tg_tensor_reshape(ar, tg_tensor_transpose(ar, g, 0, 1), g->ndim, g->shape);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, gt, tg_tensor_exp(ar, r->in[0])));
}

static tg_tensor *exp_forward(tg_tape *tp, tg_record *r) { return tg_tensor_exp(tg_tape_arena(tp), r->in[0]); }
static const tg_op transposed_exp = {"transposed_exp", exp_forward, transposed_backward, TG_READS_IN(0)};

static tg_tensor *call_transposed(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_apply(tp, &transposed_exp, 1, in, NULL, 0);
}

START_TEST(test_transposed_gradient_is_caught)
{
    tg_tensor *a = tt_rand_tensor(TG_F64, TG_DIMS(3, 3));
    tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(call_transposed, NULL, 1, &a, NULL, &rep), TG_ERR_CHECK);
    ck_assert_ptr_nonnull(strstr(rep.message, "transposed_exp"));
    tg_tensor_free(a);
}
END_TEST

/* a gradient of the wrong shape is the tape's error, reported through gradcheck */
static tg_status wrong_shape_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_sum(tg_tape_arena(tp), g, 0, NULL, false));
}

static const tg_op wrong_shape_exp = {"wrong_shape_exp", exp_forward, wrong_shape_backward, TG_READS_NONE};

static tg_tensor *call_wrong_shape(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_apply(tp, &wrong_shape_exp, 1, in, NULL, 0);
}

START_TEST(test_wrong_gradient_shape_is_an_error)
{
    tg_tensor *a = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
    tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(call_wrong_shape, NULL, 1, &a, NULL, &rep), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_gradcheck",
                   "backward failed: tg_wrong_shape_exp backward: the gradient");
    tg_tensor_free(a);
}
END_TEST

static tg_tensor *leaky0(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_leaky_relu(tp, in[0], 0.0);
}

START_TEST(test_kinks_are_skipped_not_failed)
{
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(4), (double[]){0, 0.5, 0, -0.5});
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(leaky0, NULL, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.kinks, 2);
    ck_assert_int_eq(rep.checked, 2);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *sum_exp(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_exp(tp, in[0]);
}

START_TEST(test_large_inputs_are_sampled)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(50, 40));
    tg_gradcheck_report rep;
    tg_gradcheck_options o = {.max_elements = 100, .seed = 3};
    ck_assert_int_eq(tg_gradcheck(sum_exp, NULL, 1, &x, &o, &rep), TG_OK);
    ck_assert_int_eq(rep.checked, 100);
    tg_tensor_free(x);
}
END_TEST

/* labels (i32) pass through; here they pick a column scale */
static tg_tensor *scaled_by_label(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    tg_tensor *w = tg_tensor_to_dtype(tg_tape_arena(tp), in[1], TG_F64); /* a constant */
    return tg_mul(tp, tg_exp(tp, in[0]), w);
}

START_TEST(test_integer_inputs_pass_through)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(3), (double[]){1, 2, 0});
    tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(scaled_by_label, NULL, 2, (tg_tensor *[]){x, labels}, NULL, &rep), TG_OK);
    ck_assert_int_eq(rep.checked, 6);
    ck_assert_int_ne(tg_gradcheck(scaled_by_label, NULL, 1, (tg_tensor *[]){labels}, NULL, &rep), TG_OK);
    tt_expect_last(TG_ERR_ARG, "tg_gradcheck",
                   "no input is f32 or f64, so there is no gradient to check");
    tg_tensor_free(x);
    tg_tensor_free(labels);
}
END_TEST

static tg_tensor *dropped(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_dropout(tp, tg_exp(tp, in[0]), 0.3);
}

START_TEST(test_dropout_is_checked_with_a_fixed_mask)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(4, 5));
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(dropped, NULL, 1, &x, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.checked, 20);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *bad_function(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    tg_tensor *wrong = tg_tensor_zeros(tg_tape_arena(tp), TG_F64, TG_DIMS(7));
    return tg_add(tp, in[0], wrong);
}

START_TEST(test_failing_function_is_reported)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
    tg_gradcheck_report rep;
    ck_assert_int_eq(tg_gradcheck(bad_function, NULL, 1, &x, NULL, &rep), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_gradcheck",
                   "the function failed: tg_add: shapes [2,3] and [7] cannot be");
    ck_assert_str_eq(rep.message, tg_last_error()); /* the report says it too */
    ck_assert_int_eq(tg_gradcheck(NULL, NULL, 1, &x, NULL, &rep), TG_ERR_ARG);
    ck_assert_str_eq(rep.message, "tg_gradcheck: needs a function and at least one input");
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ layouts */

/* exp with a stride bug: its backward reads x's data as if x were contiguous, which
 * is right only when it is. */
static tg_status raw_exp_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    const tg_tensor *x = r->in[0];
    tg_tensor *as_if = tg_tensor_borrow(ar, x->dtype, x->ndim, x->shape, tg_tensor_data(x));
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, tg_tensor_exp(ar, as_if)));
}

static const tg_op raw_exp = {"raw_exp", exp_forward, raw_exp_backward, TG_READS_IN(0)};

/* raw_exp(in[0]) * in[1]; *user (when not NULL) receives in[0]'s layout as fn saw it */
static tg_tensor *call_raw_exp(tg_tape *tp, tg_tensor *const *in, void *user)
{
    if (user)
        *(tg_tensor *)user = *in[0];
    return tg_mul(tp, tg_apply(tp, &raw_exp, 1, in, NULL, 0), in[1]);
}

/* the same function, right for any layout */
static tg_tensor *call_exp(tg_tape *tp, tg_tensor *const *in, void *user)
{
    if (user)
        *(tg_tensor *)user = *in[0];
    return tg_mul(tp, tg_exp(tp, in[0]), in[1]);
}

/* gradcheck checks fn on the layout given: the stride bug passes on a contiguous
 * input and is caught on a transposed one, and on a column slice (an offset) */
START_TEST(test_stride_bug_is_caught_on_the_layout_given)
{
    tg_tensor *base = tt_rand_tensor(TG_F32, TG_DIMS(4, 3)), *w = tt_rand_tensor(TG_F64, TG_DIMS(3, 4));
    tg_tensor *t = tg_tensor_transpose(NULL, base, 0, 1);         /* [3,4], strides [1,3] */
    tg_tensor *cols = tg_tensor_slice(NULL, base, 1, 1, 3, 1);    /* [4,2], offset 1 */
    tg_tensor *w2 = tt_rand_tensor(TG_F64, TG_DIMS(4, 2));
    tg_tensor *contiguous = tg_tensor_clone(NULL, t);
    tg_gradcheck_report rep;
    tg_tensor seen;
    ck_assert_int_eq(tg_gradcheck(call_raw_exp, NULL, 2, (tg_tensor *[]){contiguous, w}, NULL, &rep), TG_OK);

    ck_assert_int_eq(tg_gradcheck(call_raw_exp, &seen, 2, (tg_tensor *[]){t, w}, NULL, &rep), TG_ERR_CHECK);
    ck_assert_int_eq(seen.dtype, TG_F64);
    ck_assert_int_eq(seen.strides[0], 1);
    ck_assert_int_eq(seen.strides[1], 3);
    ck_assert_int_eq(rep.input, 0);
    ck_assert_ptr_nonnull(strstr(rep.message, "the gradient of input 0 at ["));
    ck_assert_ptr_nonnull(strstr(rep.message, "ops: raw_exp, mul"));
    ck_assert_int_eq(tg_gradcheck(call_exp, NULL, 2, (tg_tensor *[]){t, w}, NULL, &rep), TG_OK);

    ck_assert_int_eq(tg_gradcheck(call_raw_exp, &seen, 2, (tg_tensor *[]){cols, w2}, NULL, &rep), TG_ERR_CHECK);
    ck_assert_int_eq(seen.offset, 1);
    ck_assert_int_eq(seen.strides[0], 3);
    ck_assert_int_eq(tg_gradcheck(call_exp, NULL, 2, (tg_tensor *[]){cols, w2}, NULL, &rep), TG_OK);
    ck_assert_int_eq(rep.checked, 8 + 8);
    tg_tensor_free(contiguous);
    tg_tensor_free(w2);
    tg_tensor_free(cols);
    tg_tensor_free(t);
    tg_tensor_free(w);
    tg_tensor_free(base);
}
END_TEST

/* A broadcast input (stride 0): its 4 storage elements are checked, each against the
 * sum of the gradients of the 3 positions that share it; the stride bug (which reads
 * the rows of the storage the view does not show) is caught. */
START_TEST(test_broadcast_input_is_checked_as_given)
{
    tg_tensor *base = tt_rand_tensor(TG_F64, TG_DIMS(3, 4)), *w = tt_rand_tensor(TG_F64, TG_DIMS(3, 4));
    tg_tensor *row = tg_tensor_slice(NULL, base, 0, 0, 1, 1);
    tg_tensor *x = tg_tensor_expand(NULL, row, TG_DIMS(3, 4)); /* strides [0,1] */
    tg_gradcheck_report rep;
    tg_tensor seen;
    tg_status st = tg_gradcheck(call_exp, &seen, 2, (tg_tensor *[]){x, w}, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(seen.strides[0], 0);
    ck_assert_int_eq(rep.checked, 4 + 12);

    ck_assert_int_eq(tg_gradcheck(call_raw_exp, NULL, 2, (tg_tensor *[]){x, w}, NULL, &rep), TG_ERR_CHECK);
    ck_assert_int_eq(rep.input, 0);
    ck_assert_ptr_nonnull(strstr(rep.message, "(an element 3 positions share, their gradients summed)"));
    tg_tensor_free(x);
    tg_tensor_free(row);
    tg_tensor_free(w);
    tg_tensor_free(base);
}
END_TEST

/* ------------------------------------------------------------------ the full Jacobian */

START_TEST(test_full_jacobian)
{
    double k = 1;
    tg_tensor *a = tt_rand_tensor(TG_F64, TG_DIMS(3, 4)), *b = tt_rand_tensor(TG_F64, TG_DIMS(3, 1));
    tg_gradcheck_report rep;
    tg_gradcheck_options o = {.full_jacobian = true};
    tg_status st = tg_gradcheck(softplus_times, &k, 2, (tg_tensor *[]){a, b}, &o, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.checked, 12 * (12 + 3)); /* every entry of J */
    ck_assert_ptr_nonnull(strstr(rep.message, "180 Jacobian entries agree"));
    k = 1.5;
    ck_assert_int_eq(tg_gradcheck(softplus_times, &k, 2, (tg_tensor *[]){a, b}, &o, &rep), TG_ERR_CHECK);
    ck_assert_int_eq(rep.input, 0);
    ck_assert_int_ge(rep.output_index, 0);
    ck_assert_ptr_nonnull(strstr(rep.message, "(output element ["));
    /* the projection's report has no output element */
    ck_assert_int_eq(tg_gradcheck(softplus_times, &k, 2, (tg_tensor *[]){a, b}, NULL, &rep), TG_ERR_CHECK);
    ck_assert_int_eq(rep.output_index, -1);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* ------------------------------------------------------------------ ties */

static tg_tensor *max_all(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_max(tp, in[0], 0, NULL, false);
}

static tg_tensor *maximum3(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_maximum(tp, tg_maximum(tp, in[0], in[1]), in[2]);
}

/* The gradient of a max at a tie, and gradcheck's verdict on it: tg_max shares it
 * equally among the tied maxima (1/2 each of two, 1/3 of three), tg_maximum gives half
 * to each side (so maximum(maximum(a, b), c) at a 3-way tie gives a and b 1/4, c 1/2).
 * Each is a value between the one-sided slopes, so gradcheck passes it, counting as a
 * kink what the central difference (always 1/2) does not match. */
START_TEST(test_max_ties)
{
    const double two[4] = {1, 3, 3, 2}, three[4] = {3, 3, 1, 3};
    const double want2[4] = {0, 0.5, 0.5, 0}, want3[4] = {1. / 3, 1. / 3, 0, 1. / 3};
    for (int k = 0; k < 2; k++) {
        tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(4), k ? three : two);
        tg_tape *tp = tg_tape_new(0);
        ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
        ck_assert_int_eq(tg_backward(tp, max_all(tp, &x, NULL)), TG_OK);
        tt_assert_close(tg_grad(x), k ? want3 : want2, 1e-15);
        tg_gradcheck_report rep;
        tg_status st = tg_gradcheck(max_all, NULL, 1, &x, NULL, &rep);
        ck_assert_msg(st == TG_OK, "%d-way tie: %s", k + 2, rep.message);
        ck_assert_int_eq(rep.kinks, k ? 3 : 0); /* 1/2 is the central difference */
        tg_tape_free(tp);
        tg_tensor_free(x);
    }

    /* maximum: position 0 ties all three, position 1 ties a and b only, 2 none */
    tg_tensor *in[3] = {tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 2, 0.5}),
                        tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 2, -0.5}),
                        tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, -1, 0.25})};
    const double want[3][3] = {{0.25, 0.5, 1}, {0.25, 0.5, 0}, {0.5, 0, 0}};
    tg_tape *tp = tg_tape_new(0);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(tg_requires_grad(in[i], "in"), TG_OK);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, maximum3(tp, in, NULL), 0, NULL, false)), TG_OK);
    for (int i = 0; i < 3; i++)
        tt_assert_close(tg_grad(in[i]), want[i], 1e-15);
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(maximum3, NULL, 3, in, NULL, &rep);
    ck_assert_msg(st == TG_OK, "%s", rep.message);
    ck_assert_int_eq(rep.kinks, 2); /* a and b at the 3-way tie: 1/4 */
    tg_tape_free(tp);
    for (int i = 0; i < 3; i++)
        tg_tensor_free(in[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/gradcheck");
    TCase *tc = tt_tcase("gradcheck");
    tcase_add_test(tc, test_correct_backward_passes);
    tcase_add_test(tc, test_wrong_backward_fails_and_says_where);
    tcase_add_test(tc, test_transposed_gradient_is_caught);
    tcase_add_test(tc, test_wrong_gradient_shape_is_an_error);
    tcase_add_test(tc, test_kinks_are_skipped_not_failed);
    tcase_add_test(tc, test_large_inputs_are_sampled);
    tcase_add_test(tc, test_integer_inputs_pass_through);
    tcase_add_test(tc, test_failing_function_is_reported);
    tcase_add_test(tc, test_dropout_is_checked_with_a_fixed_mask);
    tcase_add_test(tc, test_stride_bug_is_caught_on_the_layout_given);
    tcase_add_test(tc, test_broadcast_input_is_checked_as_given);
    tcase_add_test(tc, test_full_jacobian);
    tcase_add_test(tc, test_max_ties);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
