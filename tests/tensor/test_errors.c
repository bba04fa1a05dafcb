/* The error model: one message naming the function and the shapes, kept through a
 * chain of calls that received NULL, cleared on demand; TG_ABORT_ON_ERROR aborts. */
#include "check_util.h"

#include <signal.h>

START_TEST(test_message_names_function_and_shapes)
{
    tg_clear_error();
    ck_assert_int_eq(tg_last_status(), TG_OK);
    ck_assert_str_eq(tg_last_error(), "");
    tg_tensor *a = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(100, 32));
    tg_tensor *b = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 32));
    int64_t out[TG_MAX_DIMS];
    ck_assert_int_eq(tg_broadcast_shape("tg_tensor_add", a->ndim, a->shape, b->ndim, b->shape, out), -1);
    ck_assert_str_eq(tg_last_error(), "tg_tensor_add: shapes [100,32] and [3,32] cannot be broadcast");
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_status_name(tg_last_status()), "shape mismatch");
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_first_failure_survives_a_chain)
{
    tg_clear_error();
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    /* the first call fails; the next ones only see its NULL */
    tg_tensor *v = tg_tensor_transpose(NULL, tg_tensor_unsqueeze(NULL, tg_tensor_select(NULL, t, 5, 0), 0), 0, 1);
    ck_assert_ptr_null(v);
    ck_assert_str_eq(tg_last_error(), "tg_tensor_select: index 0 along axis 5 is outside shape [2,3]");
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_clear_error();
    /* a NULL with no earlier failure still explains itself */
    ck_assert_ptr_null(tg_tensor_clone(NULL, NULL));
    ck_assert_str_eq(tg_last_error(), "tg_tensor_clone: an input tensor is NULL");
    ck_assert_int_ne(tg_tensor_fill_(NULL, 1), TG_OK);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_bad_shapes_and_dtypes)
{
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, -1)));
    ck_assert_str_eq(tg_last_error(), "tg_tensor_zeros: negative size in shape [2,-1]");
    ck_assert_ptr_null(tg_tensor_empty(NULL, (tg_dtype)9, TG_DIMS(2)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_ptr_null(tg_tensor_arange(NULL, TG_F32, 0, 1, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 2));
    ck_assert(isnan(tg_tensor_get(t, (int64_t[]){2, 0})));
    ck_assert_str_eq(tg_last_error(), "tg_tensor_get: index 2 is out of range for axis 0 of shape [2,2]");
    ck_assert(isnan(tg_tensor_item(t)));
    ck_assert_str_eq(tg_last_error(), "tg_tensor_item: shape [2,2] has 4 elements, not 1");
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_abort_on_error)
{
    setenv("TG_ABORT_ON_ERROR", "1", 1);
    tg_tensor_zeros(NULL, TG_F32, TG_DIMS(-1)); /* aborts here */
}
END_TEST

START_TEST(test_abort_off_when_zero)
{
    setenv("TG_ABORT_ON_ERROR", "0", 1);
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, TG_DIMS(-1)));
    unsetenv("TG_ABORT_ON_ERROR");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/errors");
    TCase *tc = tt_tcase("errors");
    tcase_add_test(tc, test_message_names_function_and_shapes);
    tcase_add_test(tc, test_first_failure_survives_a_chain);
    tcase_add_test(tc, test_bad_shapes_and_dtypes);
    tcase_add_test(tc, test_abort_off_when_zero);
    suite_add_tcase(s, tc);
    tt_add_abort_test(s, test_abort_on_error);
    return tt_run(s);
}
