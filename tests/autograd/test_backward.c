/* What tg_backward accepts and what it refuses: a second backward on one tape (an
 * error unless tg_tape_set_retain_graph allows it, and then what it adds up), an output
 * of another tape, a leaf, a constant, and a loss of more than one element without a
 * seed. Every refusal is the tape's sticky error and leaves the leaves' gradients as
 * they were. */
#include "check_util.h"

/* loss = sum(x * x) */
static tg_tensor *square_sum(tg_tape *tp, tg_tensor *x)
{
    return tg_sum(tp, tg_mul(tp, x, x), 0, NULL, false);
}

START_TEST(test_second_backward_is_refused)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x");
    double *xv = tt_values(x), twice[3], four[3];
    for (int i = 0; i < 3; i++)
        twice[i] = 2 * xv[i], four[i] = 4 * xv[i];
    tg_tensor *loss = square_sum(tp, x);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tt_assert_close(tg_grad(x), twice, 0);
    ck_assert_int_eq(tg_backward(tp, loss), TG_ERR_STATE);
    tt_expect_tape(tp, TG_ERR_STATE, "tg_backward",
                   "this tape was walked back already, and a second backward", "");
    tt_assert_close(tg_grad(x), twice, 0); /* untouched */
    /* the next step, after a reset: accumulates into the leaf, as always */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward(tp, square_sum(tp, x)), TG_OK);
    tt_assert_close(tg_grad(x), four, 0);
    free(xv);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* With retain_graph: two backwards from one loss give twice its gradient; from two
 * losses, the gradient of their sum; intermediate gradients are the last backward's. */
START_TEST(test_retain_graph_adds_up)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x");
    double *xv = tt_values(x), want[3];
    ck_assert(!tg_tape_set_retain_graph(tp, true));
    tg_tensor *sq = tg_mul(tp, x, x);
    tg_tensor *l1 = tg_sum(tp, sq, 0, NULL, false), *l2 = tg_sum(tp, tg_exp(tp, x), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, l1), TG_OK);
    ck_assert_int_eq(tg_backward(tp, l1), TG_OK);
    for (int i = 0; i < 3; i++)
        want[i] = 4 * xv[i];
    tt_assert_close(tg_grad(x), want, 0);
    tt_assert_close(tg_tape_record(tp, 0)->grad, ((double[]){1, 1, 1}), 0); /* not 2: afresh */
    tg_zero_grad(x);
    ck_assert_int_eq(tg_backward(tp, l1), TG_OK);
    ck_assert_int_eq(tg_backward(tp, l2), TG_OK);
    for (int i = 0; i < 3; i++)
        want[i] = 2 * xv[i] + exp(xv[i]);
    tt_assert_close(tg_grad(x), want, 1e-15);
    ck_assert(tg_tape_set_retain_graph(tp, false));
    ck_assert_int_eq(tg_backward(tp, l2), TG_ERR_STATE);
    free(xv);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* Where a backward cannot start: each case names what the tensor is. */
START_TEST(test_backward_from_what_is_not_an_output_of_this_tape)
{
    tg_tape *tp = tg_tape_new(0), *other = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x");
    const char *tail = "; a backward starts from an op's output on this tape";
    char want[256];

    tg_tensor *elsewhere = square_sum(other, x);
    ck_assert_int_eq(tg_backward(tp, elsewhere), TG_ERR_ARG);
    snprintf(want, sizeof want, "tg_backward: the output was recorded on another tape%s", tail);
    ck_assert_str_eq(tg_tape_error(tp), want);
    ck_assert_ptr_null(tg_grad(x));
    ck_assert_int_eq(tg_backward(other, elsewhere), TG_OK); /* its own tape takes it */

    tg_tape_reset(tp);
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(3));
    ck_assert_int_eq(tg_backward_from(tp, x, ones), TG_ERR_ARG);
    snprintf(want, sizeof want, "tg_backward: the output is a leaf (a parameter), not an op's output%s", tail);
    ck_assert_str_eq(tg_tape_error(tp), want);

    tg_tape_reset(tp);
    tg_tensor *constant = tg_tensor_sum(tg_tape_arena(tp), x, 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, constant), TG_ERR_ARG);
    snprintf(want, sizeof want, "tg_backward: the output was not recorded (made with gradients disabled, "
             "or by a tg_tensor_ function)%s", tail);
    ck_assert_str_eq(tg_tape_error(tp), want);

    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *evaluated = square_sum(tp, x);
    tg_tape_set_grad_enabled(tp, true);
    ck_assert_int_eq(tg_backward(tp, evaluated), TG_ERR_ARG);
    ck_assert_str_eq(tg_tape_error(tp), want);

    tg_tape_free(other);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* A loss of more than one element has no implicit seed; tg_backward_from wants one. */
START_TEST(test_non_scalar_needs_a_seed)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2, 3), "x");
    tg_tensor *y = tg_exp(tp, x);
    ck_assert_int_eq(tg_backward(tp, y), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_backward",
                   "the loss must have one element, not shape [2,3]", "");
    tg_tape_reset(tp);
    y = tg_exp(tp, x);
    ck_assert_int_eq(tg_backward_from(tp, y, NULL), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_backward",
                   "the output gradient is NULL, the output f64 [2,3]", "");
    ck_assert_ptr_null(tg_grad(x));
    /* one element in any shape is a loss */
    tg_tape_reset(tp);
    y = tg_exp(tp, x);
    tg_tensor *one = tg_sum(tp, y, TG_AXES(0, 1), true); /* [1,1] */
    ck_assert_int_eq(tg_backward(tp, one), TG_OK);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/backward");
    TCase *tc = tt_tcase("backward");
    tcase_add_test(tc, test_second_backward_is_refused);
    tcase_add_test(tc, test_retain_graph_adds_up);
    tcase_add_test(tc, test_backward_from_what_is_not_an_output_of_this_tape);
    tcase_add_test(tc, test_non_scalar_needs_a_seed);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
