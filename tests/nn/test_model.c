/* tg_model: parameters and buffers under unique names, in creation order; counts,
 * find, zero_grad, the training flag, the dtype layers use, printing, and that freeing
 * the model frees everything it allocated (counted through the allocator hook). */
#include "check_util.h"

START_TEST(test_add_find_list)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(m);
    tg_tensor *w = tg_model_add_param(m, "fc/weight", TG_F32, TG_DIMS(3, 4));
    tg_tensor *b = tg_model_add_param(m, "fc/bias", TG_F64, TG_DIMS(3));
    tg_tensor *rm = tg_model_add_buffer(m, "bn/running_mean", TG_F32, TG_DIMS(5));
    tg_tensor *nbt = tg_model_add_buffer(m, "bn/num_batches_tracked", TG_I32, 0, NULL);
    ck_assert_ptr_nonnull(w);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_nonnull(rm);
    ck_assert_ptr_nonnull(nbt);

    ck_assert_int_eq(tg_model_num_params(m), 2);
    ck_assert_int_eq(tg_model_num_buffers(m), 2);
    ck_assert_ptr_eq(tg_model_param(m, 0), w);
    ck_assert_ptr_eq(tg_model_param(m, 1), b);
    ck_assert_str_eq(tg_model_param_name(m, 0), "fc/weight");
    ck_assert_str_eq(tg_model_param_name(m, 1), "fc/bias");
    ck_assert_ptr_eq(tg_model_buffer(m, 1), nbt);
    ck_assert_str_eq(tg_model_buffer_name(m, 0), "bn/running_mean");
    ck_assert_ptr_null(tg_model_param(m, 2));
    ck_assert_ptr_null(tg_model_param_name(m, -1));
    ck_assert_ptr_null(tg_model_buffer(m, 2));

    ck_assert_ptr_eq(tg_model_find(m, "fc/bias"), b);
    ck_assert_ptr_eq(tg_model_find(m, "bn/num_batches_tracked"), nbt);
    ck_assert_ptr_null(tg_model_find(m, "fc"));

    /* parameters are zero-filled heap leaves named as in the model; buffers are not leaves */
    tt_assert_shape(w, 3, 4);
    ck_assert_int_eq(w->dtype, TG_F32);
    ck_assert_int_eq(b->dtype, TG_F64);
    ck_assert_ptr_null(w->arena);
    ck_assert(tg_is_leaf(w));
    ck_assert_str_eq(tg_leaf_name(w), "fc/weight");
    ck_assert(!tg_is_leaf(rm));
    ck_assert_int_eq(nbt->ndim, 0);
    ck_assert_int_eq(nbt->dtype, TG_I32);
    double *v = tt_values(w);
    for (int i = 0; i < 12; i++)
        ck_assert(v[i] == 0);
    free(v);

    ck_assert_int_eq(tg_model_param_count(m), 12 + 3); /* buffers are not parameters */
    tg_model_free(m);
}
END_TEST

START_TEST(test_bad_names_and_shapes_are_rejected)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(tg_model_add_param(m, "fc/weight", TG_F32, TG_DIMS(2, 2)));
    ck_assert_ptr_nonnull(tg_model_add_buffer(m, "bn/running_var", TG_F32, TG_DIMS(2)));
    tt_expect_error(tg_model_add_param(m, "fc/weight", TG_F32, TG_DIMS(2, 2)), TG_ERR_ARG,
                    "tg_model_add_param", "'fc/weight' already exists");
    /* one namespace for parameters and buffers */
    tt_expect_error(tg_model_add_param(m, "bn/running_var", TG_F32, TG_DIMS(2)), TG_ERR_ARG,
                    "tg_model_add_param", "'bn/running_var' already exists");
    tt_expect_error(tg_model_add_buffer(m, "fc/weight", TG_F32, TG_DIMS(2)), TG_ERR_ARG,
                    "tg_model_add_buffer", "'fc/weight' already exists");
    tt_expect_error(tg_model_add_param(m, "", TG_F32, TG_DIMS(2)), TG_ERR_ARG,
                    "tg_model_add_param", "a name must have 1 to 127 bytes, '' has 0");
    char longname[200];
    memset(longname, 'a', 128);
    longname[128] = '\0';
    ck_assert_ptr_null(tg_model_add_param(m, longname, TG_F32, TG_DIMS(2)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tt_expect_error(tg_model_add_param(m, "x", TG_F32, TG_DIMS(2, -1)), TG_ERR_SHAPE,
                    "tg_model_add_param", "'x': shape [2,-1] has a negative size");
    tt_expect_error(tg_model_add_param(m, "x", TG_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1}),
                    TG_ERR_SHAPE, "tg_model_add_param",
                    "'x': ndim must be 0..8 with a shape, got 9");
    tt_expect_error(tg_model_add_param(m, "labels", TG_I32, TG_DIMS(2)), TG_ERR_DTYPE,
                    "tg_model_add_param", "'labels' is i32; a parameter must be f32 or f64");
    tt_expect_error(tg_model_add_param(NULL, "x", TG_F32, TG_DIMS(2)), TG_ERR_ARG,
                    "tg_model_add_param", "the model is NULL");
    /* nothing failed was added */
    ck_assert_int_eq(tg_model_num_params(m), 1);
    ck_assert_int_eq(tg_model_num_buffers(m), 1);
    ck_assert_ptr_null(tg_model_find(m, "x"));
    tg_model_free(m);
}
END_TEST

START_TEST(test_many_params_grow_the_lists)
{
    tg_model *m = tg_model_new();
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "layer_%d/weight", i);
        ck_assert_ptr_nonnull(tg_model_add_param(m, name, TG_F32, TG_DIMS(i + 1)));
    }
    ck_assert_int_eq(tg_model_num_params(m), 100);
    ck_assert_int_eq(tg_model_param_count(m), 100 * 101 / 2);
    ck_assert_str_eq(tg_model_param_name(m, 57), "layer_57/weight");
    ck_assert_int_eq(tg_model_find(m, "layer_99/weight")->shape[0], 100);
    tg_model_free(m);
}
END_TEST

/* y = sum(w * x): dL/dw = x */
START_TEST(test_zero_grad)
{
    tg_model *m = tg_model_new();
    tg_tensor *w = tg_model_add_param(m, "w", TG_F64, TG_DIMS(3));
    tg_tensor *unused = tg_model_add_param(m, "unused", TG_F64, TG_DIMS(2));
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 2, 3});
    tg_tape *tp = tg_tape_new(0);
    for (int step = 0; step < 2; step++) {
        tg_tensor *y = tg_sum(tp, tg_mul(tp, w, x), 0, NULL, false);
        ck_assert_int_eq(tg_backward(tp, y), TG_OK);
        tg_tape_reset(tp);
    }
    tt_assert_close(tg_grad(w), ((double[]){2, 4, 6}), 0); /* accumulated twice */
    ck_assert_ptr_null(tg_grad(unused));
    tg_model_zero_grad(m); /* a parameter without a grad yet is fine */
    tt_assert_close(tg_grad(w), ((double[]){0, 0, 0}), 0);
    ck_assert_ptr_null(tg_grad(unused));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

START_TEST(test_training_flag_and_dtype)
{
    tg_model *m = tg_model_new();
    ck_assert(tg_model_training(m)); /* as a new PyTorch module */
    tg_model_set_training(m, false);
    ck_assert(!tg_model_training(m));
    tg_model_set_training(m, true);
    ck_assert(tg_model_training(m));
    ck_assert(!tg_model_training(NULL));

    ck_assert_int_eq(tg_model_dtype(m), TG_F32);
    ck_assert_int_eq(tg_model_set_dtype(m, TG_F64), TG_OK);
    ck_assert_int_eq(tg_model_dtype(m), TG_F64);
    ck_assert_int_eq(tg_model_set_dtype(m, TG_U8), TG_ERR_DTYPE);
    tt_expect_last(TG_ERR_DTYPE, "tg_model_set_dtype", "parameters must be f32 or f64, got u8");
    ck_assert_int_eq(tg_model_dtype(m), TG_F64);
    tg_model_free(m);
}
END_TEST

START_TEST(test_print)
{
    tg_model *m = tg_model_new();
    tg_model_add_param(m, "conv/weight", TG_F32, TG_DIMS(32, 3, 3, 3));
    tg_model_add_param(m, "conv/bias", TG_F32, TG_DIMS(32));
    tg_model_add_buffer(m, "bn/running_mean", TG_F32, TG_DIMS(32));
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tg_model_print(m, f);
    rewind(f);
    char text[1024];
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    ck_assert_str_eq(text, "conv/weight  [32,3,3,3]  864\n"
                           "conv/bias    [32]         32\n"
                           "total                    896 parameters in 2 tensors\n");
    tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ no leaks */

START_TEST(test_free_releases_everything)
{
    tt_count_allocations();
    tg_model *m = tg_model_new();
    char name[32];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "p%d", i);
        tg_model_add_param(m, name, TG_F32, TG_DIMS(4, 4));
        snprintf(name, sizeof name, "b%d", i);
        tg_model_add_buffer(m, name, TG_F32, TG_DIMS(4));
    }
    /* gradients hang on the parameters: they go with them */
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_sum(tp, tg_model_param(m, 3), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    ck_assert_ptr_nonnull(tg_grad(tg_model_param(m, 3)));
    tg_tape_free(tp);
    ck_assert_int_gt((tt_n_alloc - tt_n_free), 80);
    tg_model_free(m);
    ck_assert_int_eq((tt_n_alloc - tt_n_free), 0);
    tg_model_free(NULL);
    tg_set_allocator(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/model");
    TCase *tc = tt_tcase("model");
    tcase_add_test(tc, test_add_find_list);
    tcase_add_test(tc, test_bad_names_and_shapes_are_rejected);
    tcase_add_test(tc, test_many_params_grow_the_lists);
    tcase_add_test(tc, test_zero_grad);
    tcase_add_test(tc, test_training_flag_and_dtype);
    tcase_add_test(tc, test_print);
    tcase_add_test(tc, test_free_releases_everything);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
