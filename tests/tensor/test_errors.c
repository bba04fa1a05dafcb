/* The error model: an error is a value (status, function, detail, scope) whose message
 * names the function and the shapes, kept through a chain of calls that received NULL,
 * per thread, cleared on demand; TG_ABORT_ON_ERROR aborts. */
#include "check_util.h"

#include <pthread.h>
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
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_add", "shapes [100,32] and [3,32] cannot be broadcast");
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
    tt_expect_last(TG_ERR_ARG, "tg_tensor_select", "index 0 along axis 5 is outside shape [2,3]");
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_clear_error();
    /* a NULL with no earlier failure still explains itself */
    ck_assert_ptr_null(tg_tensor_clone(NULL, NULL));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_clone", "an input tensor is NULL");
    ck_assert_int_ne(tg_tensor_fill_(NULL, 1), TG_OK);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_bad_shapes_and_dtypes)
{
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, -1)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_zeros", "negative size in shape [2,-1]");
    ck_assert_ptr_null(tg_tensor_empty(NULL, (tg_dtype)9, TG_DIMS(2)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_DTYPE);
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, 9, (int64_t[9]){1, 1, 1, 1, 1, 1, 1, 1, 1}));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_ptr_null(tg_tensor_arange(NULL, TG_F32, 0, 1, 0));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 2));
    ck_assert(isnan(tg_tensor_get(t, (int64_t[]){2, 0})));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_get",
                   "index 2 is out of range for axis 0 of shape [2,2]");
    ck_assert(isnan(tg_tensor_item(t)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_item", "shape [2,2] has 4 elements, not 1");
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_error_is_a_value_composed_when_read)
{
    tg_clear_error();
    const tg_error *e = tg_last_error_info();
    ck_assert_int_eq(e->status, TG_OK);
    ck_assert_str_eq(e->function, "");
    ck_assert_str_eq(e->detail, "");
    tg_tensor *a = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    tg_tensor *b = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 5));
    ck_assert_ptr_null(tg_tensor_matmul(NULL, a, b));
    /* the kernel names itself and says what was wrong, in separate fields */
    ck_assert_ptr_eq(tg_last_error_info(), e);
    ck_assert_int_eq(e->status, TG_ERR_SHAPE);
    ck_assert_str_eq(e->function, "tg_tensor_matmul");
    ck_assert_str_eq(e->detail, "[2,3] x [4,5]: inner dimensions 3 and 4 differ");
    ck_assert_str_eq(e->scope, "");
    /* ... and the message is composed from them, as it always read */
    ck_assert_str_eq(tg_last_error(), "tg_tensor_matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ");

    /* a copy outlives the next error, and composes the same way */
    tg_error kept = *e;
    ck_assert_ptr_null(tg_tensor_reshape(NULL, a, TG_DIMS(7)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_reshape", "[2,3]");
    char buf[sizeof(tg_error) + 16];
    ck_assert_str_eq(tg_error_str(&kept, buf, sizeof buf), "tg_tensor_matmul: [2,3] x [4,5]: inner "
                                                              "dimensions 3 and 4 differ");
    ck_assert_str_eq(tg_error_str(&kept, buf, 10), "tg_tensor"); /* cut to fit */
    snprintf(kept.scope, sizeof kept.scope, "block_0/conv_0");
    ck_assert_str_eq(tg_error_str(&kept, buf, sizeof buf), "tg_tensor_matmul: [2,3] x [4,5]: inner "
                                                              "dimensions 3 and 4 differ (called in "
                                                              "block_0/conv_0)");
    /* recorded again, whole: the thread's error is the copy */
    ck_assert_int_eq(tg_set_error_value(&kept), TG_ERR_SHAPE);
    tt_check_error(tg_last_error_info(), TG_ERR_SHAPE, "tg_tensor_matmul", "inner dimensions",
                   "block_0/conv_0");
    ck_assert_str_eq(tg_last_error(), buf);
    tg_clear_error();
    ck_assert_str_eq(tg_last_error(), "");
    ck_assert_str_eq(tg_error_str(tg_last_error_info(), buf, sizeof buf), "");
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_user_errors)
{
    /* tg_set_error, as user code has always called it: no function named, the text is
     * the whole message */
    ck_assert_int_eq(tg_set_error(TG_ERR_IO, "my_loader: %s: %d bytes missing", "a.bin", 12), TG_ERR_IO);
    tt_check_error(tg_last_error_info(), TG_ERR_IO, "", "a.bin: 12 bytes missing", "");
    ck_assert_str_eq(tg_last_error(), "my_loader: a.bin: 12 bytes missing");
    /* tg_set_error_in names the function */
    ck_assert_int_eq(tg_set_error_in(TG_ERR_FORMAT, "my_load", "%s: bad magic", "b.bin"), TG_ERR_FORMAT);
    tt_expect_last(TG_ERR_FORMAT, "my_load", "b.bin: bad magic");
    ck_assert_str_eq(tg_last_error(), "my_load: b.bin: bad magic");
    /* an error reported with its own message as an argument */
    tg_set_error_in(TG_ERR_IO, "outer", "reading: %s", tg_last_error());
    ck_assert_str_eq(tg_last_error(), "outer: reading: my_load: b.bin: bad magic");
    /* TG_OK is no error: it is recorded as an invalid state */
    ck_assert_int_eq(tg_set_error(TG_OK, "odd"), TG_ERR_STATE);
    ck_assert_int_eq(tg_last_status(), TG_ERR_STATE);
    ck_assert_int_eq(tg_set_error_value(NULL), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_set_error_value", "NULL");
    tg_clear_error();
}
END_TEST

static void *fail_on_another_thread(void *arg)
{
    (void)arg;
    tg_set_error_in(TG_ERR_IO, "other_thread", "its own error");
    static tg_error seen;
    seen = *tg_last_error_info();
    tg_clear_error(); /* clears this thread's, not the main one's */
    return &seen;
}

START_TEST(test_errors_are_per_thread)
{
    tg_set_error_in(TG_ERR_SHAPE, "main_thread", "mine");
    pthread_t t;
    void *res = NULL;
    ck_assert_int_eq(pthread_create(&t, NULL, fail_on_another_thread, NULL), 0);
    ck_assert_int_eq(pthread_join(t, &res), 0);
    tt_check_error(res, TG_ERR_IO, "other_thread", "its own error", "");
    tt_expect_last(TG_ERR_SHAPE, "main_thread", "mine");
    tg_clear_error();
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
    tcase_add_test(tc, test_error_is_a_value_composed_when_read);
    tcase_add_test(tc, test_user_errors);
    tcase_add_test(tc, test_errors_are_per_thread);
    tcase_add_test(tc, test_abort_off_when_zero);
    suite_add_tcase(s, tc);
    tt_add_abort_test(s, test_abort_on_error);
    return tt_run(s);
}
