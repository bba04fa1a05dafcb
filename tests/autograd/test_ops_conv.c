/* Convolution pieces and pooling on the tape: im2col, a convolution built from it, the
 * fused conv2d op, average, max and global average pooling; gradients against central
 * differences (f64) with strided inputs made on the tape, f32 against f64, and error
 * messages. */
#include "ag_check.h"

/* ------------------------------------------------------------------ im2col */

static const tg_conv2d_geom k3_pad1 = {.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                                       .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1};
static const tg_conv2d_geom k3_pad1_stride2 = {.kh = 3, .kw = 3, .stride_h = 2, .stride_w = 2,
                                               .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1};

/* x stored NHWC, made NCHW by a permute on the tape: im2col reads a strided view */
static tg_tensor *im2col_of_nhwc(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *x = tg_permute(tp, in[0], TG_AXES(0, 3, 1, 2));
    return tg_im2col(tp, x, user);
}

START_TEST(test_im2col)
{
    GRADCHECK(im2col_of_nhwc, (void *)&k3_pad1, tt_rand_tensor(TG_F64, TG_DIMS(2, 4, 4, 2)));
    GRADCHECK(im2col_of_nhwc, (void *)&k3_pad1_stride2, tt_rand_tensor(TG_F64, TG_DIMS(1, 5, 5, 2)));
    /* dilation 2, asymmetric kernel and stride */
    tg_conv2d_geom g = {.kh = 2, .kw = 3, .stride_h = 1, .stride_w = 2, .pad_h = 0, .pad_w = 2,
                        .dil_h = 2, .dil_w = 2};
    GRADCHECK(im2col_of_nhwc, &g, tt_rand_tensor(TG_F64, TG_DIMS(1, 5, 4, 2)));
}
END_TEST

/* A convolution as the network builds it: im2col -> weight [OC, C*kh*kw] @ cols
 * [N, C*kh*kw, OH*OW] (a 2-D times batched matmul) -> reshape to [N, OC, OH, OW]. */
static tg_tensor *conv_layer(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const tg_conv2d_geom *g = user;
    tg_tensor *x = in[0], *w = in[1];
    int64_t oh = tg_conv2d_out_size(x->shape[2], g->kh, g->stride_h, g->pad_h, g->dil_h);
    int64_t ow = tg_conv2d_out_size(x->shape[3], g->kw, g->stride_w, g->pad_w, g->dil_w);
    tg_tensor *cols = tg_im2col(tp, x, g);
    return tg_reshape(tp, tg_matmul(tp, w, cols), TG_DIMS(x->shape[0], w->shape[0], oh, ow));
}

START_TEST(test_conv_layer)
{
    /* N=2, C=2, 5x5, OC=3: gradients w.r.t. both the input and the weight */
    GRADCHECK(conv_layer, (void *)&k3_pad1, tt_rand_tensor(TG_F64, TG_DIMS(2, 2, 5, 5)),
              tt_rand_tensor(TG_F64, TG_DIMS(3, 2 * 3 * 3)));
    GRADCHECK(conv_layer, (void *)&k3_pad1_stride2, tt_rand_tensor(TG_F64, TG_DIMS(2, 2, 5, 5)),
              tt_rand_tensor(TG_F64, TG_DIMS(3, 2 * 3 * 3)));
}
END_TEST

START_TEST(test_conv_layer_values)
{
    /* one channel, a 3x3 all-ones kernel with padding 1: each output sums its 3x3
     * neighbourhood of [[1,2,3],[4,5,6],[7,8,9]] */
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *x = tg_tensor_arange(ar, TG_F64, 1, 10, 1);
    x = tg_tensor_reshape(ar, x, TG_DIMS(1, 1, 3, 3));
    tg_tensor *w = tg_tensor_ones(ar, TG_F64, TG_DIMS(1, 9));
    tg_tensor *y = conv_layer(tp, (tg_tensor *[]){x, w}, (void *)&k3_pad1);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_shape(y, 1, 1, 3, 3);
    tt_assert_close(y, ((double[]){12, 21, 16, 27, 45, 33, 24, 39, 28}), 0);
    tg_tape_free(tp);
}
END_TEST

START_TEST(test_conv_f32_matches_f64)
{
    tg_tensor *in[2] = {tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 6, 6)), tt_rand_tensor(TG_F64, TG_DIMS(4, 27))};
    f32_matches_f64_and_free(conv_layer, (void *)&k3_pad1, 2, in, 1e-4);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 6, 6, 3));
    f32_matches_f64_and_free(im2col_of_nhwc, (void *)&k3_pad1_stride2, 1, &x, 1e-5);
}
END_TEST

START_TEST(test_im2col_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_conv2d_geom g = k3_pad1;
    g.pad_h = g.pad_w = 0;
    tg_scope_push(tp, "stem");
    tg_im2col(tp, tg_tensor_zeros(ar, TG_F32, TG_DIMS(1, 1, 2, 2)), &g);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_im2col",
                   "kernel 3x3, stride 1x1, padding 0x0, dilation 1x1 is larger", "stem");
    tg_tape_reset(tp);
    tg_max_pool2d(tp, tg_tensor_zeros(ar, TG_F32, TG_DIMS(1, 1, 2, 2)), NULL);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_max_pool2d", "the geometry is NULL", "");
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ conv2d (fused) */

typedef struct conv2d_args {
    tg_conv2d_geom g;
    bool bias;
    bool nhwc; /* x stored [N, H, W, C], made NCHW by a permute on the tape */
} conv2d_args;

static tg_tensor *fused_conv(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const conv2d_args *a = user;
    tg_tensor *x = a->nhwc ? tg_permute(tp, in[0], TG_AXES(0, 3, 1, 2)) : in[0];
    return tg_conv2d(tp, x, in[1], a->bias ? in[2] : NULL, &a->g);
}

START_TEST(test_conv2d)
{
    conv2d_args a = {k3_pad1, true, false};
    GRADCHECK(fused_conv, &a, tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 5, 5)),
              tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 3, 3)), tt_rand_tensor(TG_F64, TG_DIMS(4)));
    a.bias = false;
    GRADCHECK(fused_conv, &a, tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 5, 5)),
              tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 3, 3)));
    a = (conv2d_args){k3_pad1_stride2, true, false};
    GRADCHECK(fused_conv, &a, tt_rand_tensor(TG_F64, TG_DIMS(2, 2, 6, 5)),
              tt_rand_tensor(TG_F64, TG_DIMS(3, 2, 3, 3)), tt_rand_tensor(TG_F64, TG_DIMS(3)));
    /* a strided input; dilation 2 with a non-square kernel and stride */
    a = (conv2d_args){{.kh = 2, .kw = 3, .stride_h = 1, .stride_w = 2, .pad_h = 1, .pad_w = 2,
                       .dil_h = 2, .dil_w = 2}, true, true};
    GRADCHECK(fused_conv, &a, tt_rand_tensor(TG_F64, TG_DIMS(2, 5, 6, 3)),
              tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 2, 3)), tt_rand_tensor(TG_F64, TG_DIMS(2)));
    tg_tensor *in[3] = {tt_rand_tensor(TG_F64, TG_DIMS(2, 6, 6, 3)),
                        tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 3, 3)), tt_rand_tensor(TG_F64, TG_DIMS(4))};
    a = (conv2d_args){k3_pad1, true, true};
    f32_matches_f64_and_free(fused_conv, &a, 3, in, 1e-5);
}
END_TEST

START_TEST(test_conv2d_record_and_needs)
{
    /* one record; with the input a constant (a first layer's images) backward computes
     * the weight's and bias's gradients only, the same as with the input a leaf */
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 6, 6));
    tg_tensor *w = tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 3, 3));
    tg_tensor *b = tt_rand_tensor(TG_F64, TG_DIMS(4));
    ck_assert_int_eq(tg_requires_grad(w, "w"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(b, "b"), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_scope_push(tp, "conv_0");
    tg_tensor *y = tg_conv2d(tp, x, w, b, &k3_pad1);
    tg_scope_pop(tp);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_int_eq(tg_tape_size(tp), 1);
    const tg_record *r = tg_tape_record(tp, 0);
    ck_assert_str_eq(r->op->name, "conv2d");
    ck_assert_str_eq(r->scope, "conv_0");
    ck_assert_int_eq(r->nin, 3);
    ck_assert(!tg_needs_grad(tp, r, 0) && tg_needs_grad(tp, r, 1) && tg_needs_grad(tp, r, 2));
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, y, y), 0, NULL, false)), TG_OK);
    double *dw = tt_values(tg_grad(w)), *db = tt_values(tg_grad(b));
    tg_zero_grad(w);
    tg_zero_grad(b);
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    y = tg_conv2d(tp, x, w, b, &k3_pad1);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_mul(tp, y, y), 0, NULL, false)), TG_OK);
    ck_assert_ptr_nonnull(tg_grad(x));
    tt_assert_close(tg_grad(w), dw, 0);
    tt_assert_close(tg_grad(b), db, 0);
    free(dw);
    free(db);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_conv2d_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_arena *ar = tg_tape_arena(tp);
    tg_scope_push(tp, "stem");
    tg_conv2d(tp, tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 8, 8)),
              tg_tensor_zeros(ar, TG_F32, TG_DIMS(4, 5, 3, 3)), NULL, &k3_pad1);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_conv2d",
                   "weight [4,5,3,3] takes 5 channels, input [2,3,8,8] has 3", "stem");
    tg_tape_reset(tp);
    tg_conv2d(tp, tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3, 8, 8)),
              tg_tensor_zeros(ar, TG_F32, TG_DIMS(4, 3, 3, 3)), NULL, NULL);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_conv2d", "the geometry is NULL", "");
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ pooling */

static const tg_conv2d_geom pool2 = {.kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1};

/* the pool of x with H and W swapped on the tape (a strided input) */
static tg_tensor *avg_pool_transposed(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_avg_pool2d(tp, tg_transpose(tp, in[0], 2, 3), user);
}

static tg_tensor *max_pool_transposed(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_max_pool2d(tp, tg_transpose(tp, in[0], 2, 3), user);
}

START_TEST(test_avg_pool)
{
    GRADCHECK(avg_pool_transposed, (void *)&pool2, tt_rand_tensor(TG_F64, TG_DIMS(2, 2, 4, 3)));
    /* overlapping windows with padding, counted in the divisor */
    GRADCHECK(avg_pool_transposed, (void *)&k3_pad1_stride2, tt_rand_tensor(TG_F64, TG_DIMS(1, 2, 5, 5)));
}
END_TEST

/* 0.1 * a random permutation of 0..n-1, shifted to straddle 0: distinct values with gaps
 * far above gradcheck's eps, so no window has a tie and no step moves its maximum */
static tg_tensor *distinct_tensor(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = 0.1 * (double)i - 0.05 * (double)n;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = (int64_t)((tt_rnd() + 1) / 2 * (double)(i + 1));
        double t = v[i];
        v[i] = v[j];
        v[j] = t;
    }
    tg_tensor *t = tt_tensor(TG_F64, ndim, shape, v);
    free(v);
    return t;
}

START_TEST(test_max_pool)
{
    GRADCHECK(max_pool_transposed, (void *)&pool2, distinct_tensor(TG_DIMS(2, 2, 4, 3)));
    GRADCHECK(max_pool_transposed, (void *)&k3_pad1_stride2, distinct_tensor(TG_DIMS(1, 2, 5, 5)));
    tg_tensor *x = distinct_tensor(TG_DIMS(2, 1, 6, 5));
    f32_matches_f64_and_free(max_pool_transposed, (void *)&k3_pad1_stride2, 1, &x, 1e-6);
}
END_TEST

START_TEST(test_max_pool_routes_to_argmax)
{
    /* windows [[1,4],[3,2]] and [[0,5],[9,-1]]: the gradient goes to the 4 and the 9 */
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(1, 1, 2, 4), (double[]){1, 4, 0, 5, 3, 2, 9, -1});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_max_pool2d(tp, x, &pool2);
    tt_assert_close(y, ((double[]){4, 9}), 0);
    tg_tensor *g = tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(1, 1, 1, 2), (double[]){10, 20});
    ck_assert_int_eq(tg_backward_from(tp, y, g), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){0, 10, 0, 0, 0, 0, 20, 0}), 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

static tg_tensor *global_pool_permuted(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tensor *x = tg_permute(tp, in[0], TG_AXES(0, 3, 1, 2)); /* NHWC -> NCHW */
    tg_tensor *y = tg_global_avg_pool2d(tp, x);               /* [N, C] */
    return tg_mul(tp, y, y);
}

START_TEST(test_global_avg_pool)
{
    GRADCHECK(global_pool_permuted, NULL, tt_rand_tensor(TG_F64, TG_DIMS(2, 2, 3, 3)));

    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(1, 2, 1, 3), (double[]){1, 2, 3, 4, 5, 9});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tensor *y = tg_global_avg_pool2d(tp, x);
    tt_assert_shape(y, 1, 2);
    tt_assert_close(y, ((double[]){2, 6}), 1e-15);
    ck_assert_str_eq(tg_tape_record_of(tp, y)->op->name, "global_avg_pool2d");
    tg_tensor *g = tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(1, 2), (double[]){3, 6});
    ck_assert_int_eq(tg_backward_from(tp, y, g), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){1, 1, 1, 2, 2, 2}), 1e-15);

    tg_tape_reset(tp);
    tg_global_avg_pool2d(tp, tg_tensor_zeros(tg_tape_arena(tp), TG_F32, TG_DIMS(2, 3, 4)));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_global_avg_pool2d",
                   "input [2,3,4] must be 4-D [N, C, H, W]", "");
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd_ops_conv");
    TCase *tc = tt_tcase("im2col");
    tcase_add_test(tc, test_im2col);
    tcase_add_test(tc, test_conv_layer);
    tcase_add_test(tc, test_conv_layer_values);
    tcase_add_test(tc, test_conv_f32_matches_f64);
    tcase_add_test(tc, test_im2col_errors);
    tcase_add_test(tc, test_conv2d);
    tcase_add_test(tc, test_conv2d_record_and_needs);
    tcase_add_test(tc, test_conv2d_errors);
    suite_add_tcase(s, tc);
    tc = tt_tcase("pooling");
    tcase_add_test(tc, test_avg_pool);
    tcase_add_test(tc, test_max_pool);
    tcase_add_test(tc, test_max_pool_routes_to_argmax);
    tcase_add_test(tc, test_global_avg_pool);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
