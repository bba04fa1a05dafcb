/* Views, concat and matmul on the tape: gradients against central differences (f64),
 * with non-contiguous inputs made on the tape; f32 against f64; error messages. */
#include "ag_check.h"

/* ------------------------------------------------------------------ views */

static tg_tensor *reshape_of_permuted(tg_tape *tp, tg_tensor *const *in, void *user)
{
    /* [3,4,2] -> permute -> [2,3,4] (not contiguous) -> reshape (a copy) -> [6,-1] */
    tg_tensor *p = tg_permute(tp, in[0], TG_AXES(2, 0, 1));
    return tg_reshape(tp, p, TG_DIMS(6, -1));
}

static tg_tensor *reshape_view(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_reshape(tp, tg_reshape(tp, in[0], TG_DIMS(2, 2, 6)), TG_DIMS(4, 3, 2));
}

START_TEST(test_reshape)
{
    GRADCHECK(reshape_of_permuted, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 4, 2)));
    GRADCHECK(reshape_view, NULL, tt_rand_tensor(TG_F64, TG_DIMS(4, 6)));
}
END_TEST

static tg_tensor *permute_twice(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *t = tg_transpose(tp, in[0], 0, 2);                /* [4,3,2] */
    return tg_mul(tp, tg_permute(tp, t, TG_AXES(1, -1, 0)), in[1]); /* [3,2,4] * [3,1,4] */
}

START_TEST(test_permute)
{
    GRADCHECK(permute_twice, NULL, tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 4)),
              tt_rand_tensor(TG_F64, TG_DIMS(3, 1, 4)));
}
END_TEST

static tg_tensor *transpose_slice(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_transpose(tp, tg_slice(tp, in[0], 1, 1, 5, 2), -1, 0); /* [3,6] -> [3,2] -> [2,3] */
}

START_TEST(test_transpose)
{
    GRADCHECK(transpose_slice, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 6)));
}
END_TEST

typedef struct slice_case {
    int dim;
    int64_t start, stop, step;
} slice_case;

static tg_tensor *slice_of_permuted(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const slice_case *c = user;
    tg_tensor *p = tg_permute(tp, in[0], TG_AXES(2, 0, 1)); /* [4,5,6] -> [6,4,5] */
    return tg_exp(tp, tg_slice(tp, p, c->dim, c->start, c->stop, c->step));
}

START_TEST(test_slice)
{
    const slice_case cases[] = {
        {0, 1, 6, 2},    /* step 2 */
        {0, -4, 6, 3},   /* negative start, step 3: rows 2 and 5 */
        {-1, -3, -1, 1}, /* negative dim, start and stop */
        {1, 0, 100, 2},  /* stop clamped */
        {2, 4, 2, 1},    /* empty */
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(4, 5, 6));
        tg_gradcheck_report rep;
        tg_status st = tg_gradcheck(slice_of_permuted, (void *)&cases[k], 1, (tg_tensor *[]){x}, NULL, &rep);
        ck_assert_msg(st == TG_OK, "case %zu: %s %s", k, rep.message, tg_last_error());
        ck_assert_int_eq(rep.checked, 120);
        tg_tensor_free(x);
    }
}
END_TEST

START_TEST(test_slice_gradient_lands_in_place)
{
    /* x [2,5], out = x[:, -4::2] = columns 1 and 3: their gradient is g, the rest 0 */
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(2, 5), (double[10]){0});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_slice(tp, x, 1, -4, 5, 2);
    tt_assert_shape(y, 2, 2);
    ck_assert_ptr_eq(y->storage, x->storage); /* a view of the leaf, no copy */
    tg_tensor *g = tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(2, 2), (double[]){1, 2, 3, 4});
    ck_assert_int_eq(tg_backward_from(tp, y, g), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){0, 1, 0, 2, 0, 0, 3, 0, 4, 0}), 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *select_then_sum(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *t = tg_transpose(tp, in[0], 0, 1); /* [3,4,2] -> [4,3,2] */
    tg_tensor *a = tg_select(tp, t, 1, -1);       /* [4,2]: x[2] */
    tg_tensor *b = tg_select(tp, in[0], 0, -3);   /* [4,2]: x[0] */
    return tg_mul(tp, a, b);
}

START_TEST(test_select)
{
    GRADCHECK(select_then_sum, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 4, 2)));

    /* the gradient lands in the selected row only */
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(3, 2), (double[6]){0});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_select(tp, x, 0, -2);
    tt_assert_shape(y, 2);
    tg_tensor *g = tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(2), (double[]){5, 6});
    ck_assert_int_eq(tg_backward_from(tp, y, g), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){0, 0, 5, 6, 0, 0}), 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *expand_3x1(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *e = tg_expand(tp, in[0], TG_DIMS(2, 3, 4)); /* [3,1] -> [2,3,4] */
    return tg_mul(tp, e, in[1]);
}

static tg_tensor *expand_transposed(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *t = tg_transpose(tp, in[0], 0, 1); /* [1,3] -> [3,1] */
    return tg_exp(tp, tg_expand(tp, t, TG_DIMS(2, 3, 4)));
}

START_TEST(test_expand)
{
    GRADCHECK(expand_3x1, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 1)),
              tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 4)));
    GRADCHECK(expand_transposed, NULL, tt_rand_tensor(TG_F64, TG_DIMS(1, 3)));
}
END_TEST

static tg_tensor *squeeze_unsqueeze(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *t = tg_transpose(tp, in[0], 0, 2);  /* [3,1,4] -> [4,1,3] */
    tg_tensor *s = tg_squeeze(tp, t, 1);           /* [4,3] */
    tg_tensor *u = tg_unsqueeze(tp, s, -1);        /* [4,3,1] */
    tg_tensor *all = tg_squeeze(tp, tg_unsqueeze(tp, u, 0), TG_ALL_AXES); /* [1,4,3,1] -> [4,3] */
    return tg_mul(tp, all, tg_squeeze(tp, u, 2));
}

START_TEST(test_squeeze_unsqueeze)
{
    GRADCHECK(squeeze_unsqueeze, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 1, 4)));
}
END_TEST

/* ------------------------------------------------------------------ concat */

static tg_tensor *concat3(tg_tape *tp, tg_tensor *const *in, void *user)
{
    int axis = *(const int *)user;
    /* the middle input is a transposed view: concat copies any layout */
    tg_tensor *mid = tg_transpose(tp, in[1], 0, 1);
    tg_tensor *y = tg_concat(tp, 3, (tg_tensor *[]){in[0], mid, in[2]}, axis);
    return tg_mul(tp, y, y); /* not linear, so a misplaced gradient shows */
}

START_TEST(test_concat_axis0)
{
    int axis = 0; /* [2,3] + [1,3] (from [3,1]) + [3,3] -> [6,3] */
    GRADCHECK(concat3, &axis, tt_rand_tensor(TG_F64, TG_DIMS(2, 3)), tt_rand_tensor(TG_F64, TG_DIMS(3, 1)),
              tt_rand_tensor(TG_F64, TG_DIMS(3, 3)));
}
END_TEST

START_TEST(test_concat_axis1)
{
    int axis = -1; /* [2,1] + [2,4] (from [4,2]) + [2,2] -> [2,7] */
    GRADCHECK(concat3, &axis, tt_rand_tensor(TG_F64, TG_DIMS(2, 1)), tt_rand_tensor(TG_F64, TG_DIMS(4, 2)),
              tt_rand_tensor(TG_F64, TG_DIMS(2, 2)));
}
END_TEST

START_TEST(test_concat_values)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *a = tg_tensor_from_data(ar, TG_F64, TG_DIMS(2, 1), (double[]){1, 2});
    tg_tensor *b = tg_tensor_from_data(ar, TG_F64, TG_DIMS(2, 2), (double[]){3, 4, 5, 6});
    tg_tensor *y = tg_concat(tp, 2, (tg_tensor *[]){a, b}, 1);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tt_assert_close(y, ((double[]){1, 3, 4, 2, 5, 6}), 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_concat_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *a = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3));
    tg_tensor *b = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 4));
    tg_tensor *c = tg_tensor_zeros(ar, TG_F32, TG_DIMS(3, 3));
    tg_tensor *y = tg_concat(tp, 3, (tg_tensor *[]){a, c, b}, 0);
    ck_assert_ptr_nonnull(y); /* the placeholder, safe to pass on */
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_concat", "input 0 is [2,3] and input 2 is [2,4]", "");
    tg_tape_reset(tp);

    a = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3));
    tg_tensor *d = tg_tensor_zeros(ar, TG_F64, TG_DIMS(2, 3));
    tg_concat(tp, 2, (tg_tensor *[]){a, d}, 1);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_DTYPE);
    tt_expect_tape(tp, TG_ERR_DTYPE, "tg_concat", "input 0 is f32 and input 1 is f64", "");
    tg_tape_reset(tp);

    a = tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3));
    tg_concat(tp, 1, (tg_tensor *[]){a}, 2);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_concat", "axis 2 for shape [2,3]", "");
    tg_tape_reset(tp);

    tg_concat(tp, 0, NULL, 0);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_concat", "0 inputs (at least 1 needed)", "");
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ matmul */

/* in[0], in[1] are stored transposed where the case says; tg_transpose on the tape
 * brings them to [M,K] and [K,N]: all four BLIS transpose combinations. */
static tg_tensor *matmul_tt(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const int *t = user;
    tg_tensor *a = t[0] ? tg_transpose(tp, in[0], 0, 1) : in[0];
    tg_tensor *b = t[1] ? tg_transpose(tp, in[1], 0, 1) : in[1];
    return tg_matmul(tp, a, b);
}

START_TEST(test_matmul_2d_transposes)
{
    const int64_t M = 3, K = 4, N = 5;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int t[2] = {ta, tb};
            tg_tensor *a = ta ? tt_rand_tensor(TG_F64, TG_DIMS(K, M)) : tt_rand_tensor(TG_F64, TG_DIMS(M, K));
            tg_tensor *b = tb ? tt_rand_tensor(TG_F64, TG_DIMS(N, K)) : tt_rand_tensor(TG_F64, TG_DIMS(K, N));
            GRADCHECK(matmul_tt, t, a, b);
        }
}
END_TEST

static tg_tensor *matmul_plain(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_matmul(tp, in[0], in[1]);
}

START_TEST(test_matmul_batched)
{
    GRADCHECK(matmul_plain, NULL, tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 4)), tt_rand_tensor(TG_F64, TG_DIMS(4, 5)));
    GRADCHECK(matmul_plain, NULL, tt_rand_tensor(TG_F64, TG_DIMS(3, 4)), tt_rand_tensor(TG_F64, TG_DIMS(2, 4, 2)));
}
END_TEST

START_TEST(test_matmul_broadcast_batch)
{
    /* [2,1,3,4] x [5,4,6] -> [2,5,3,6]: da sums over the 5, db over the 2 */
    GRADCHECK(matmul_plain, NULL, tt_rand_tensor(TG_F64, TG_DIMS(2, 1, 3, 4)),
              tt_rand_tensor(TG_F64, TG_DIMS(5, 4, 6)));
}
END_TEST

static tg_tensor *matmul_bt(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_matmul(tp, in[0], tg_transpose(tp, in[1], -1, -2));
}

START_TEST(test_matmul_f32_matches_f64)
{
    tg_tensor *in[2] = {tt_rand_tensor(TG_F64, TG_DIMS(2, 7, 9)), tt_rand_tensor(TG_F64, TG_DIMS(5, 9))};
    f32_matches_f64_and_free(matmul_bt, NULL, 2, in, 1e-4);
}
END_TEST

START_TEST(test_matmul_error_names_scope)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *x = tg_tensor_zeros(ar, TG_F32, TG_DIMS(100, 288));
    tg_tensor *w = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(32, 288));
    ck_assert_int_eq(tg_requires_grad(w, "conv_0/weight"), TG_OK);
    tg_scope_push(tp, "reduction_block_0");
    tg_scope_push(tp, "conv_0");
    tg_tensor *y = tg_matmul(tp, x, w); /* forgot the transpose */
    tg_scope_pop(tp);
    tg_scope_pop(tp);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_matmul",
                   "[100,288] x [32,288]: inner dimensions 288 and 32 differ",
                   "reduction_block_0/conv_0");
    /* sticky: the next call does nothing, backward refuses, the first message stays */
    tg_tensor *z = tg_matmul(tp, y, tg_transpose(tp, w, 0, 1));
    ck_assert_ptr_nonnull(z);
    ck_assert_int_ne(tg_backward(tp, tg_sum(tp, z, 0, NULL, false)), TG_OK);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "inner dimensions 288 and 32"));
    ck_assert_ptr_null(tg_grad(w));
    tg_tape_free(tp);
    tg_tensor_free(w);
}
END_TEST

/* ------------------------------------------------------------------ views on the tape */

START_TEST(test_views_record_and_share)
{
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(2, 3));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *t = tg_transpose(tp, x, 0, 1);
    tg_tensor *r = tg_reshape(tp, t, TG_DIMS(6)); /* not a view of t: a copy */
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_ptr_eq(t->storage, x->storage);
    ck_assert_ptr_ne(r->storage, x->storage);
    ck_assert_int_eq(tg_tape_size(tp), 2);
    ck_assert_str_eq(tg_tape_record_of(tp, t)->op->name, "transpose");
    ck_assert_str_eq(tg_tape_record_of(tp, r)->op->name, "reshape");
    ck_assert(tg_is_leaf(x) && !tg_is_leaf(t));

    /* bad arguments become the tape's error, named after the op */
    tg_reshape(tp, x, TG_MAX_DIMS + 1, (int64_t[TG_MAX_DIMS + 1]){0});
    tt_expect_tape(tp, TG_ERR_ARG, "tg_reshape", "9 axes (0..8 allowed, with a shape)", "");
    tg_tape_reset(tp);
    tg_reshape(tp, x, TG_DIMS(4, 2));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "tg_reshape: "));
    tg_tape_reset(tp);
    tg_permute(tp, x, TG_AXES(0, 0));
    tt_expect_tape(tp, TG_ERR_ARG, "tg_permute", "axis list is not a permutation of 0..1", "");
    tg_tape_reset(tp);
    tg_select(tp, x, 1, -4);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_select", "index -1 along axis 1 is outside shape [2,3]", "");
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd_ops_shape");
    TCase *tc = tt_tcase("views");
    tcase_add_test(tc, test_reshape);
    tcase_add_test(tc, test_permute);
    tcase_add_test(tc, test_transpose);
    tcase_add_test(tc, test_slice);
    tcase_add_test(tc, test_slice_gradient_lands_in_place);
    tcase_add_test(tc, test_select);
    tcase_add_test(tc, test_expand);
    tcase_add_test(tc, test_squeeze_unsqueeze);
    tcase_add_test(tc, test_views_record_and_share);
    suite_add_tcase(s, tc);
    tc = tt_tcase("concat");
    tcase_add_test(tc, test_concat_axis0);
    tcase_add_test(tc, test_concat_axis1);
    tcase_add_test(tc, test_concat_values);
    tcase_add_test(tc, test_concat_errors);
    suite_add_tcase(s, tc);
    tc = tt_tcase("matmul");
    tcase_add_test(tc, test_matmul_2d_transposes);
    tcase_add_test(tc, test_matmul_batched);
    tcase_add_test(tc, test_matmul_broadcast_batch);
    tcase_add_test(tc, test_matmul_f32_matches_f64);
    tcase_add_test(tc, test_matmul_error_names_scope);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
