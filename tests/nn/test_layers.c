/* Layers: linear, conv2d (against a direct convolution, every geometry's gradients
 * against central differences, fused and composed, and the two against each other in
 * f32), batch norm (training gradients through the batch
 * statistics, the running statistics after three steps against a hand computation,
 * evaluation with them), cross-entropy, dropout, accuracy, initialisers' statistics,
 * scopes and error messages. Gradient checks run in f64 on a model whose dtype is f64. */
#include "check_util.h"

/* tg_gradcheck of fn on the inputs: every element agrees, none skipped as a kink. */
static void gradcheck_ok(const char *what, tg_gradcheck_fn fn, void *user, int n, tg_tensor *const *in)
{
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(fn, user, n, in, NULL, &rep);
    ck_assert_msg(st == TG_OK && rep.ok, "%s: %s (%s)", what, rep.message, tg_last_error());
    ck_assert_int_gt(rep.checked, 0);
    ck_assert_int_eq(rep.kinks, 0);
}

static tg_model *f64_model(void)
{
    tg_model *m = tg_model_new();
    ck_assert_int_eq(tg_model_set_dtype(m, TG_F64), TG_OK);
    return m;
}

/* ------------------------------------------------------------------ linear */

static tg_tensor *linear_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_nn_linear l = *(const tg_nn_linear *)user; /* the layer with the checked tensors in it */
    l.weight = in[1];
    if (l.bias)
        l.bias = in[2];
    return tg_nn_linear_forward(tp, &l, in[0]);
}

START_TEST(test_linear)
{
    tg_model *m = f64_model();
    tg_rng g = tg_rng_new(1);
    tg_nn_linear l;
    ck_assert_int_eq(tg_nn_linear_init(&l, m, "fc", 5, 3, true, &g), TG_OK);
    ck_assert_str_eq(l.name, "fc");
    ck_assert_ptr_eq(l.weight, tg_model_find(m, "fc/weight"));
    ck_assert_ptr_eq(l.bias, tg_model_find(m, "fc/bias"));
    tt_assert_shape(l.weight, 3, 5);
    tt_assert_shape(l.bias, 3);
    ck_assert_int_eq(l.weight->dtype, TG_F64);

    /* forward: x @ W^T + b, by hand */
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(4, 5));
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_nn_linear_forward(tp, &l, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_shape(y, 4, 3);
    double *xv = tt_values(x), *wv = tt_values(l.weight), *bv = tt_values(l.bias), ref[12];
    for (int i = 0; i < 4; i++)
        for (int o = 0; o < 3; o++) {
            ref[i * 3 + o] = bv[o];
            for (int k = 0; k < 5; k++)
                ref[i * 3 + o] += xv[i * 5 + k] * wv[o * 5 + k];
        }
    tt_assert_close(y, ref, 1e-14);
    /* every record is in the layer's scope */
    for (int i = 0; i < tg_tape_size(tp); i++)
        ck_assert_str_eq(tg_tape_record(tp, i)->scope, "fc");
    ck_assert_str_eq(tg_scope_current(tp), "");
    free(xv);
    free(wv);
    free(bv);

    gradcheck_ok("linear", linear_fn, &l, 3, (tg_tensor *[]){x, l.weight, l.bias});
    tg_nn_linear nb;
    ck_assert_int_eq(tg_nn_linear_init(&nb, m, "fc_nobias", 5, 3, false, &g), TG_OK);
    ck_assert_ptr_null(nb.bias);
    ck_assert_ptr_null(tg_model_find(m, "fc_nobias/bias"));
    gradcheck_ok("linear without bias", linear_fn, &nb, 2, (tg_tensor *[]){x, nb.weight});

    /* a wrong input is the tape's error, naming the layer and its scope */
    tg_tape_reset(tp);
    tg_tensor *bad = tt_rand_tensor(TG_F64, TG_DIMS(4, 6));
    tg_tensor *out = tg_nn_linear_forward(tp, &l, bad);
    ck_assert_ptr_nonnull(out);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_nn_linear_forward", "'fc' takes [N,5], got [4,6]", "");
    tg_tensor_free(bad);
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

START_TEST(test_init_errors)
{
    tg_model *m = tg_model_new();
    tg_rng g = tg_rng_new(1);
    tg_nn_linear l;
    tg_nn_conv2d c;
    ck_assert_int_eq(tg_nn_linear_init(&l, m, "fc", 5, 3, true, &g), TG_OK);
    ck_assert_int_eq(tg_nn_linear_init(&l, m, "fc", 5, 3, true, &g), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_nn_linear_init", "'fc/weight' already exists");
    /* a bias that exists already stops the init before the weight is made */
    ck_assert_ptr_nonnull(tg_model_add_param(m, "c/bias", TG_F32, TG_DIMS(2)));
    ck_assert_int_eq(tg_nn_conv2d_init(&c, m, "c", 3, 2, 3, 1, 1, 1, true, &g), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_nn_conv2d_init", "'c/bias' already exists");
    ck_assert_ptr_null(tg_model_find(m, "c/weight"));
    ck_assert_int_eq(tg_nn_conv2d_init(&c, m, "c2", 3, 2, 3, 0, 1, 1, true, &g), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_nn_conv2d_init",
                   "'c2': kernel, stride and dilation must be >= 1 and padding");
    ck_assert_int_eq(tg_nn_linear_init(&l, m, "fc2", 0, 3, true, &g), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_nn_linear_init", "'fc2': in and out must be >= 1, got 0 and 3");
    char longname[120];
    memset(longname, 'n', 100);
    longname[100] = '\0';
    ck_assert_int_eq(tg_nn_linear_init(&l, m, longname, 5, 3, true, &g), TG_ERR_ARG);
    ck_assert_int_eq(tg_model_num_params(m), 3); /* fc/weight, fc/bias, c/bias */
    /* the model's failure (its status and detail) under the name of the layer's function */
    tt_count_allocations();
    tt_alloc_limit = 1 << 20;
    ck_assert_int_eq(tg_nn_linear_init(&l, m, "huge", 1000, 1000, true, &g), TG_ERR_NOMEM);
    tg_set_allocator(NULL);
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    ck_assert_str_eq(tg_last_error_info()->function, "tg_nn_linear_init");
    tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ conv2d */

typedef struct conv_case {
    int64_t n, c, h, w, oc;
    int k, stride, pad, dil;
    bool bias;
} conv_case;

static const conv_case conv_cases[] = {
    {2, 3, 5, 5, 4, 3, 1, 1, 1, true},  /* the VGG's 3x3, pad 1 */
    {2, 3, 5, 5, 4, 3, 1, 1, 1, false}, /* without bias */
    {1, 2, 7, 6, 3, 3, 2, 0, 1, true},  /* stride 2, no padding, not square */
    {2, 2, 6, 6, 3, 3, 2, 1, 1, false}, /* stride 2 with padding */
    {1, 2, 7, 7, 2, 3, 1, 2, 2, true},  /* dilation 2 */
    {2, 3, 4, 4, 2, 1, 1, 0, 1, true},  /* 1x1 */
};

/* The layer, on a fused tape or (composed) with the tape's fusion off. */
typedef struct conv_layer {
    tg_nn_conv2d c;
    bool composed;
} conv_layer;

static tg_tensor *conv_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const conv_layer *l = user;
    tg_nn_conv2d c = l->c;
    c.weight = in[1];
    if (c.bias)
        c.bias = in[2];
    tg_tape_set_fused(tp, !l->composed);
    return tg_nn_conv2d_forward(tp, &c, in[0]);
}

/* out[n,o,i,j] = b[o] + sum_{c,p,q} W[o,c,p,q] x[n, c, i*s - pad + p*d, j*s - pad + q*d] */
static double *direct_conv(const conv_case *cc, const double *x, const double *w, const double *b,
                           int64_t oh, int64_t ow)
{
    double *out = calloc((size_t)(cc->n * cc->oc * oh * ow), sizeof *out);
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t o = 0; o < cc->oc; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = b ? b[o] : 0;
                    for (int64_t c = 0; c < cc->c; c++)
                        for (int p = 0; p < cc->k; p++)
                            for (int q = 0; q < cc->k; q++) {
                                int64_t y = i * cc->stride - cc->pad + p * cc->dil;
                                int64_t z = j * cc->stride - cc->pad + q * cc->dil;
                                if (y < 0 || y >= cc->h || z < 0 || z >= cc->w)
                                    continue;
                                s += w[((o * cc->c + c) * cc->k + p) * cc->k + q] *
                                     x[((n * cc->c + c) * cc->h + y) * cc->w + z];
                            }
                    out[((n * cc->oc + o) * oh + i) * ow + j] = s;
                }
    return out;
}

START_TEST(test_conv2d_matches_direct_convolution_and_gradcheck)
{
    const conv_case *cc = &conv_cases[_i];
    tg_model *m = f64_model();
    tg_rng g = tg_rng_new(7);
    tg_nn_conv2d conv;
    ck_assert_int_eq(tg_nn_conv2d_init(&conv, m, "block_0_0/conv_0", cc->c, cc->oc, cc->k, cc->stride,
                                    cc->pad, cc->dil, cc->bias, &g), TG_OK);
    tt_assert_shape(conv.weight, cc->oc, cc->c, cc->k, cc->k);
    ck_assert_int_eq(conv.geom.stride_w, cc->stride);
    ck_assert_int_eq(conv.geom.pad_h, cc->pad);
    ck_assert_int_eq(conv.geom.dil_w, cc->dil);
    ck_assert(cc->bias == (conv.bias != NULL));
    tg_tensor *x = tt_rand_tensor(TG_F64, 4, (int64_t[]){cc->n, cc->c, cc->h, cc->w});

    int64_t oh = (cc->h + 2 * cc->pad - cc->dil * (cc->k - 1) - 1) / cc->stride + 1;
    int64_t ow = (cc->w + 2 * cc->pad - cc->dil * (cc->k - 1) - 1) / cc->stride + 1;
    double *xv = tt_values(x), *wv = tt_values(conv.weight), *bv = conv.bias ? tt_values(conv.bias) : NULL;
    double *ref = direct_conv(cc, xv, wv, bv, oh, ow);
    for (int composed = 0; composed < 2; composed++) {
        tg_tape *tp = tg_tape_new(0);
        ck_assert(tg_tape_fused(tp)); /* the default */
        tg_tape_set_fused(tp, !composed);
        tg_tensor *y = tg_nn_conv2d_forward(tp, &conv, x);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
        tt_assert_shape(y, cc->n, cc->oc, oh, ow);
        tt_assert_close(y, ref, 1e-13);
        /* one fused record, or the primitives; all in the layer's scope */
        const char *fused[] = {"conv2d"};
        const char *ops[] = {"im2col", "reshape", "matmul", "reshape", "reshape", "add"};
        ck_assert_int_eq(tg_tape_size(tp), !composed ? 1 : cc->bias ? 6 : 4);
        for (int i = 0; i < tg_tape_size(tp); i++) {
            ck_assert_str_eq(tg_tape_record(tp, i)->op->name, composed ? ops[i] : fused[i]);
            ck_assert_str_eq(tg_tape_record(tp, i)->scope, "block_0_0/conv_0");
        }
        tg_tape_free(tp);

        conv_layer l = {conv, composed};
        if (cc->bias)
            gradcheck_ok("conv2d", conv_fn, &l, 3, (tg_tensor *[]){x, conv.weight, conv.bias});
        else
            gradcheck_ok("conv2d", conv_fn, &l, 2, (tg_tensor *[]){x, conv.weight});
    }
    free(xv);
    free(wv);
    free(bv);
    free(ref);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

START_TEST(test_conv2d_errors)
{
    tg_model *m = tg_model_new();
    tg_rng g = tg_rng_new(7);
    tg_nn_conv2d conv;
    ck_assert_int_eq(tg_nn_conv2d_init(&conv, m, "reduction_block_0/conv_0", 3, 4, 3, 1, 1, 1, true, &g), TG_OK);
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 5, 8, 8));
    ck_assert_ptr_nonnull(tg_nn_conv2d_forward(tp, &conv, x));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_nn_conv2d_forward",
                   "'reduction_block_0/conv_0' takes [N,3,H,W], got [2,5,8,8]", "");
    /* later calls pass the placeholder on */
    ck_assert_ptr_nonnull(tg_nn_conv2d_forward(tp, &conv, tg_nn_conv2d_forward(tp, &conv, x)));
    tg_tape_reset(tp);
    /* a kernel larger than the (padded) input: the fused op's error, or im2col's with
     * fusion off, in the layer's scope */
    tg_nn_conv2d big;
    ck_assert_int_eq(tg_nn_conv2d_init(&big, m, "big", 5, 2, 7, 1, 0, 1, false, &g), TG_OK);
    tg_tensor_free(x);
    x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 5, 4, 4));
    tg_nn_conv2d_forward(tp, &big, x);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_conv2d",
                   "kernel 7x7, stride 1x1, padding 0x0, dilation 1x1 is larger", "big");
    tg_tape_reset(tp);
    tg_tape_set_fused(tp, false);
    tg_nn_conv2d_forward(tp, &big, x);
    ck_assert_int_ne(tg_tape_status(tp), TG_OK);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_im2col", "is larger than the padded input [1,5,4,4]", "big");
    ck_assert_ptr_null(tg_nn_conv2d_forward(NULL, &conv, x));
    tt_expect_last(TG_ERR_ARG, "tg_nn_conv2d_forward", "the tape is NULL");
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

/* The layer's output and its input, weight and bias gradients (row-major f64 copies), in
 * f32, from a fixed output gradient, on a fused tape or with fusion off. */
static double **conv_run_f32(const tg_nn_conv2d *conv, const tg_tensor *x64, bool fused)
{
    tg_tensor *x = tg_tensor_to_dtype(NULL, x64, TG_F32);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_zero_grad(conv->weight);
    if (conv->bias)
        tg_zero_grad(conv->bias);
    tg_tape *tp = tg_tape_new(0);
    tg_tape_set_fused(tp, fused);
    tg_tensor *y = tg_nn_conv2d_forward(tp, conv, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tg_rng g = tg_rng_new(3);
    tg_tensor *gout = tg_tensor_empty(tg_tape_arena(tp), TG_F32, y->ndim, y->shape);
    ck_assert_int_eq(tg_tensor_uniform_(gout, &g, -1, 1), TG_OK);
    ck_assert_msg(tg_backward_from(tp, y, gout) == TG_OK, "%s", tg_tape_error(tp));
    double **v = calloc(4, sizeof *v);
    v[0] = tt_values(y);
    v[1] = tt_values(tg_grad(x));
    v[2] = tt_values(tg_grad(conv->weight));
    v[3] = conv->bias ? tt_values(tg_grad(conv->bias)) : NULL;
    tg_tape_free(tp);
    tg_tensor_free(x);
    return v;
}

START_TEST(test_conv2d_fused_matches_composed)
{
    /* f32: the same output and gradients within float32 rounding of their scale */
    const conv_case *cc = &conv_cases[_i];
    tg_model *m = tg_model_new(); /* f32 */
    tg_rng g = tg_rng_new(11);
    tg_nn_conv2d conv;
    ck_assert_int_eq(tg_nn_conv2d_init(&conv, m, "conv", cc->c, cc->oc, cc->k, cc->stride, cc->pad,
                                    cc->dil, cc->bias, &g), TG_OK);
    tg_tensor *x = tt_rand_tensor(TG_F64, 4, (int64_t[]){cc->n, cc->c, cc->h, cc->w});
    double **fused = conv_run_f32(&conv, x, true), **composed = conv_run_f32(&conv, x, false);
    int64_t oh = (cc->h + 2 * cc->pad - cc->dil * (cc->k - 1) - 1) / cc->stride + 1;
    int64_t ow = (cc->w + 2 * cc->pad - cc->dil * (cc->k - 1) - 1) / cc->stride + 1;
    const int64_t sizes[4] = {cc->n * cc->oc * oh * ow, tg_tensor_numel(x),
                              tg_tensor_numel(conv.weight), cc->oc};
    const char *names[4] = {"output", "input gradient", "weight gradient", "bias gradient"};
    for (int k = 0; k < (cc->bias ? 4 : 3); k++) {
        double scale = 1, err = 0;
        for (int64_t i = 0; i < sizes[k]; i++)
            scale = fmax(scale, fabs(composed[k][i]));
        for (int64_t i = 0; i < sizes[k]; i++)
            err = fmax(err, fabs(fused[k][i] - composed[k][i]));
        ck_assert_msg(err <= 1e-5 * scale, "case %d, %s: fused and composed differ by %g (scale %g)",
                      _i, names[k], err, scale);
    }
    for (int k = 0; k < 4; k++) {
        free(fused[k]);
        free(composed[k]);
    }
    free(fused);
    free(composed);
    tg_tensor_free(x);
    tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ batch norm */

static tg_tensor *bn_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_nn_batch_norm2d bn = *(const tg_nn_batch_norm2d *)user;
    bn.weight = in[1];
    bn.bias = in[2];
    return tg_nn_batch_norm2d_forward(tp, &bn, in[0]);
}

/* per-channel mean and biased variance of x [N,C,H,W] */
static void channel_stats(const double *x, int64_t n, int64_t c, int64_t hw, double *mean, double *var)
{
    for (int64_t ch = 0; ch < c; ch++) {
        double s = 0, q = 0;
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++)
                s += x[(i * c + ch) * hw + j];
        mean[ch] = s / (double)(n * hw);
        for (int64_t i = 0; i < n; i++)
            for (int64_t j = 0; j < hw; j++) {
                double d = x[(i * c + ch) * hw + j] - mean[ch];
                q += d * d;
            }
        var[ch] = q / (double)(n * hw);
    }
}

START_TEST(test_batchnorm_init)
{
    tg_model *m = tg_model_new();
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "input_conv/bn_0", 4), TG_OK);
    ck_assert_int_eq(tg_model_num_params(m), 2);
    ck_assert_int_eq(tg_model_num_buffers(m), 3);
    ck_assert_str_eq(tg_model_param_name(m, 0), "input_conv/bn_0/weight");
    ck_assert_str_eq(tg_model_param_name(m, 1), "input_conv/bn_0/bias");
    ck_assert_str_eq(tg_model_buffer_name(m, 0), "input_conv/bn_0/running_mean");
    ck_assert_str_eq(tg_model_buffer_name(m, 1), "input_conv/bn_0/running_var");
    ck_assert_str_eq(tg_model_buffer_name(m, 2), "input_conv/bn_0/num_batches_tracked");
    tt_assert_close(bn.weight, ((double[]){1, 1, 1, 1}), 0);
    tt_assert_close(bn.bias, ((double[]){0, 0, 0, 0}), 0);
    tt_assert_close(bn.running_mean, ((double[]){0, 0, 0, 0}), 0);
    tt_assert_close(bn.running_var, ((double[]){1, 1, 1, 1}), 0);
    ck_assert_int_eq(bn.num_batches_tracked->dtype, TG_I32);
    ck_assert(tg_tensor_item(bn.num_batches_tracked) == 0);
    ck_assert(bn.eps == 1e-5 && bn.momentum == 0.1);
    ck_assert_ptr_eq(bn.model, m);
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "input_conv/bn_0", 4), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_nn_batch_norm2d_init", "'input_conv/bn_0/weight' already exists");
    tg_model_free(m);
}
END_TEST

START_TEST(test_batchnorm_training_output_and_gradcheck)
{
    tg_model *m = f64_model();
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", 3), TG_OK);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(4, 3, 2, 3));
    tg_tensor *gamma = tt_tensor(TG_F64, TG_DIMS(3), (double[]){1.5, -0.5, 0.8});
    tg_tensor *beta = tt_tensor(TG_F64, TG_DIMS(3), (double[]){0.1, 0.2, -0.3});
    ck_assert_int_eq(tg_tensor_copy_(bn.weight, gamma), TG_OK);
    ck_assert_int_eq(tg_tensor_copy_(bn.bias, beta), TG_OK);

    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_nn_batch_norm2d_forward(tp, &bn, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    double *xv = tt_values(x), mean[3], var[3], ref[72];
    channel_stats(xv, 4, 3, 6, mean, var);
    const double gv[3] = {1.5, -0.5, 0.8}, bv[3] = {0.1, 0.2, -0.3};
    for (int i = 0; i < 72; i++) {
        int ch = (i / 6) % 3;
        ref[i] = (xv[i] - mean[ch]) / sqrt(var[ch] + 1e-5) * gv[ch] + bv[ch];
    }
    tt_assert_close(y, ref, 1e-13);
    for (int i = 0; i < tg_tape_size(tp); i++)
        ck_assert_str_eq(tg_tape_record(tp, i)->scope, "bn");
    free(xv);
    tg_tape_free(tp);

    /* the gradient flows through the batch mean and variance too */
    gradcheck_ok("batchnorm2d (training)", bn_fn, &bn, 3, (tg_tensor *[]){x, gamma, beta});
    tg_tensor_free(x);
    tg_tensor_free(gamma);
    tg_tensor_free(beta);
    tg_model_free(m);
}
END_TEST

START_TEST(test_batchnorm_running_stats_and_evaluation)
{
    tg_model *m = f64_model();
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", 2), TG_OK);
    double rm[2] = {0, 0}, rv[2] = {1, 1};
    tg_tape *tp = tg_tape_new(0);
    for (int step = 0; step < 3; step++) {
        tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(3, 2, 2, 2));
        tg_tensor *shift = tt_tensor(TG_F64, TG_DIMS(1, 2, 1, 1), (double[]){step, -2.0 * step});
        tg_tensor *xs = tg_tensor_add(NULL, x, shift); /* statistics that move */
        tg_nn_batch_norm2d_forward(tp, &bn, xs);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
        tg_tape_reset(tp);
        /* by hand: momentum 0.1, the unbiased variance (n = 3*2*2 = 12 values a channel) */
        double *v = tt_values(xs), mean[2], var[2];
        channel_stats(v, 3, 2, 4, mean, var);
        for (int c = 0; c < 2; c++) {
            rm[c] = 0.9 * rm[c] + 0.1 * mean[c];
            rv[c] = 0.9 * rv[c] + 0.1 * var[c] * 12.0 / 11.0;
        }
        free(v);
        tg_tensor_free(x);
        tg_tensor_free(shift);
        tg_tensor_free(xs);
    }
    tt_assert_close(bn.running_mean, rm, 1e-14);
    tt_assert_close(bn.running_var, rv, 1e-14);
    ck_assert(tg_tensor_item(bn.num_batches_tracked) == 3);
    ck_assert(fabs(rm[1] - rm[0]) > 0.1); /* the reference moved: the test can fail */

    /* evaluation normalises with them, and leaves them alone */
    tg_model_set_training(m, false);
    tg_tensor *gamma = tt_tensor(TG_F64, TG_DIMS(2), (double[]){2, 3});
    ck_assert_int_eq(tg_tensor_copy_(bn.weight, gamma), TG_OK);
    tg_tensor_free(gamma);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(1, 2, 1, 3)); /* one value a channel is fine here */
    tg_tensor *y = tg_nn_batch_norm2d_forward(tp, &bn, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    double *xv = tt_values(x), ref[6];
    for (int i = 0; i < 6; i++) {
        int c = i / 3;
        ref[i] = (xv[i] - rm[c]) / sqrt(rv[c] + 1e-5) * (c ? 3 : 2);
    }
    tt_assert_close(y, ref, 1e-14);
    tt_assert_close(bn.running_mean, rm, 1e-14);
    ck_assert(tg_tensor_item(bn.num_batches_tracked) == 3);
    free(xv);
    tg_tape_reset(tp);

    gradcheck_ok("batchnorm2d (evaluation)", bn_fn, &bn, 3, (tg_tensor *[]){x, bn.weight, bn.bias});
    tt_assert_close(bn.running_mean, rm, 1e-14); /* gradcheck's many calls changed nothing */

    /* training needs two values a channel, as PyTorch says */
    tg_model_set_training(m, true);
    tg_tensor *one = tt_rand_tensor(TG_F64, TG_DIMS(1, 2, 1, 1));
    tg_nn_batch_norm2d_forward(tp, &bn, one);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_nn_batch_norm2d_forward",
                   "'bn' needs more than 1 value per channel in training, got", "");
    tg_tape_reset(tp);
    tg_tensor_free(x);
    x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 2, 2));
    tg_nn_batch_norm2d_forward(tp, &bn, x);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_nn_batch_norm2d_forward",
                   "'bn' takes [N,2,H,W], got [2,3,2,2]", "");
    tg_tensor_free(one);
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

/* f32 in training: the running statistics of a large batch are the batch's */
START_TEST(test_batchnorm_f32_statistics)
{
    tg_model *m = tg_model_new();
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", 2), TG_OK);
    bn.momentum = 1.0; /* running = the batch's, to read them back */
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(8, 2, 4, 4));
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *y = tg_nn_batch_norm2d_forward(tp, &bn, x);
    ck_assert_int_eq(y->dtype, TG_F32);
    double *xv = tt_values(x), mean[2], var[2];
    channel_stats(xv, 8, 2, 16, mean, var);
    tt_assert_close(bn.running_mean, mean, 1e-6);
    double unbiased[2] = {var[0] * 128 / 127, var[1] * 128 / 127};
    tt_assert_close(bn.running_var, unbiased, 1e-6);
    /* the output has mean 0 and (biased) variance 1 per channel, up to eps */
    double *yv = tt_values(y), ym[2], yvar[2];
    channel_stats(yv, 8, 2, 16, ym, yvar);
    for (int c = 0; c < 2; c++) {
        ck_assert(fabs(ym[c]) < 1e-6);
        ck_assert(fabs(yvar[c] - var[c] / (var[c] + 1e-5)) < 1e-5);
    }
    free(xv);
    free(yv);
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ loss, accuracy, dropout */

static tg_tensor *ce_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_nn_cross_entropy(tp, in[0], in[1]);
}

START_TEST(test_cross_entropy)
{
    tg_tensor *logits = tt_rand_tensor(TG_F64, TG_DIMS(4, 5));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(4), (double[]){0, 4, 2, 2});
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *loss = tg_nn_cross_entropy(tp, logits, labels);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_int_eq(loss->ndim, 0);
    double *v = tt_values(logits), ref = 0;
    const int lab[4] = {0, 4, 2, 2};
    for (int i = 0; i < 4; i++) {
        double s = 0;
        for (int j = 0; j < 5; j++)
            s += exp(v[i * 5 + j]);
        ref += (log(s) - v[i * 5 + lab[i]]) / 4;
    }
    ck_assert(fabs(tg_tensor_item(loss) - ref) < 1e-14);
    ck_assert_str_eq(tg_tape_record(tp, 0)->op->name, "log_softmax");
    ck_assert_str_eq(tg_tape_record(tp, 1)->op->name, "nll_loss");
    free(v);
    tg_tape_free(tp);
    gradcheck_ok("cross_entropy", ce_fn, NULL, 2, (tg_tensor *[]){logits, labels});
    tg_tensor_free(logits);
    tg_tensor_free(labels);
}
END_TEST

START_TEST(test_accuracy)
{
    tg_tensor *logits = tt_tensor(TG_F32, TG_DIMS(4, 3), (double[]){
        0.1, 0.7, 0.2,  /* 1 */
        3.0, -1., 2.0,  /* 0 */
        0.5, 0.5, 0.1,  /* a tie: the first, 0 */
        -1., -2., -0.5, /* 2 */
    });
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(4), (double[]){1, 0, 1, 2});
    ck_assert(tg_nn_accuracy(logits, labels) == 0.75);
    /* any layout: the transposed view of the transposed values */
    tg_tensor *lt = tt_tensor(TG_F64, TG_DIMS(3, 4), (double[]){0.1, 3.0, 0.5, -1., 0.7, -1., 0.5, -2.,
                                                                0.2, 2.0, 0.1, -0.5});
    tg_tensor *view = tg_tensor_transpose(NULL, lt, 0, 1);
    ck_assert(tg_nn_accuracy(view, labels) == 0.75);
    tg_tensor *wrong = tt_tensor(TG_I32, TG_DIMS(3), (double[]){0, 0, 0});
    ck_assert(isnan(tg_nn_accuracy(logits, wrong)));
    tt_expect_last(TG_ERR_SHAPE, "tg_nn_accuracy",
                   "expected logits [N,C] and labels [N], got [4,3] and [3]");
    ck_assert(isnan(tg_nn_accuracy(labels, labels)));
    tg_tensor_free(logits);
    tg_tensor_free(labels);
    tg_tensor_free(lt);
    tg_tensor_free(view);
    tg_tensor_free(wrong);
}
END_TEST

START_TEST(test_dropout_follows_the_model)
{
    tg_model *m = tg_model_new();
    tg_tensor *x = tg_tensor_ones(NULL, TG_F32, TG_DIMS(100, 100));
    tg_tape *tp = tg_tape_new(3);
    tg_tensor *y = tg_nn_dropout(tp, m, x, 0.2); /* training: inverted dropout */
    double *v = tt_values(y);
    int zeros = 0;
    for (int i = 0; i < 10000; i++) {
        ck_assert(v[i] == 0 || fabs(v[i] - 1.25) < 1e-6);
        zeros += v[i] == 0;
    }
    ck_assert_int_gt(zeros, 1800);
    ck_assert_int_lt(zeros, 2200);
    free(v);
    ck_assert_int_eq(tg_tape_size(tp), 1);
    tg_model_set_training(m, false);
    ck_assert_ptr_eq(tg_nn_dropout(tp, m, x, 0.2), x); /* evaluation: the identity, no record */
    ck_assert_int_eq(tg_tape_size(tp), 1);
    tg_model_set_training(m, true);
    ck_assert_ptr_eq(tg_nn_dropout(tp, m, x, 0), x);
    tg_nn_dropout(tp, m, x, 1.0);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_nn_dropout", "p must be in [0, 1), got 1", "");
    tg_tensor_free(x);
    tg_tape_free(tp);
    tg_model_free(m);
}
END_TEST

/* ------------------------------------------------------------------ initialisers */

typedef struct moments {
    double mean, var, max_abs;
} moments;

static moments moments_of(const tg_tensor *t)
{
    double *v = tt_values(t);
    int64_t n = tg_tensor_numel(t);
    moments r = {0, 0, 0};
    for (int64_t i = 0; i < n; i++) {
        r.mean += v[i] / (double)n;
        r.max_abs = fmax(r.max_abs, fabs(v[i]));
    }
    for (int64_t i = 0; i < n; i++)
        r.var += (v[i] - r.mean) * (v[i] - r.mean) / (double)n;
    free(v);
    return r;
}

/* The records each layer puts on the tape, as docs/guide.md's table lists them (a
 * program that reads a layer's gradient off its records depends on them): the ops in
 * order, each as "op@scope", then the tape is reset. */
static void assert_records(tg_tape *tp, const char *want)
{
    char got[512] = "";
    size_t len = 0;
    for (int i = 0; i < tg_tape_size(tp); i++) {
        const tg_record *r = tg_tape_record(tp, i);
        len += (size_t)snprintf(got + len, sizeof got - len, "%s%s@%s", i ? " " : "", r->op->name, r->scope);
        ck_assert_uint_lt(len, sizeof got);
    }
    ck_assert_str_eq(got, want);
    tg_tape_reset(tp);
}

START_TEST(test_records_of_each_layer)
{
    tg_rng g = tg_rng_new(0);
    tg_model *m = tg_model_new();
    tg_nn_linear fc, fcnb;
    tg_nn_conv2d conv;
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_linear_init(&fc, m, "fc", 8, 4, true, &g), TG_OK);
    ck_assert_int_eq(tg_nn_linear_init(&fcnb, m, "fcnb", 8, 4, false, &g), TG_OK);
    ck_assert_int_eq(tg_nn_conv2d_init(&conv, m, "conv", 2, 3, 3, 1, 1, 1, true, &g), TG_OK);
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", 3), TG_OK);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 8));
    tg_tensor *xc = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 2, 4, 4));
    tg_tensor *xb = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 3, 4, 4));
    tg_tensor *labels = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2));
    tg_tape *tp = tg_tape_new(0);

    tg_nn_linear_forward(tp, &fc, x);
    assert_records(tp, "transpose@fc matmul@fc add@fc");
    tg_nn_linear_forward(tp, &fcnb, x);
    assert_records(tp, "transpose@fcnb matmul@fcnb");
    tg_nn_conv2d_forward(tp, &conv, xc);
    assert_records(tp, "conv2d@conv");
    tg_nn_batch_norm2d_forward(tp, &bn, xb);
    assert_records(tp, "batch_norm2d@bn");
    tg_nn_dropout(tp, m, xb, 0.5);
    assert_records(tp, "dropout@");
    tg_nn_cross_entropy(tp, x, labels);
    assert_records(tp, "log_softmax@ nll_loss@");

    tg_tape_set_fused(tp, false);
    tg_nn_conv2d_forward(tp, &conv, xc);
    assert_records(tp, "im2col@conv reshape@conv matmul@conv reshape@conv reshape@conv add@conv");
    tg_nn_batch_norm2d_forward(tp, &bn, xb);
    assert_records(tp, "mean@bn var@bn add_scalar@bn rsqrt@bn sub@bn mul@bn reshape@bn mul@bn "
                       "reshape@bn add@bn");

    tg_model_set_training(m, false); /* evaluation: the same records fused or not */
    for (int fused = 0; fused < 2; fused++) {
        tg_tape_set_fused(tp, fused);
        tg_nn_batch_norm2d_forward(tp, &bn, xb);
        assert_records(tp, "sub@bn mul@bn reshape@bn mul@bn reshape@bn add@bn");
        tg_nn_dropout(tp, m, xb, 0.5);
        assert_records(tp, "");
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(xc);
    tg_tensor_free(xb);
    tg_tensor_free(labels);
    tg_model_free(m);
}
END_TEST

/* The model lists its layers (tg_model_layer), and a layer's output record is found by
 * its scope (tg_tape_last_in_scope): what the study's gradient flow reads. */
START_TEST(test_model_layers_and_their_records)
{
    tg_rng g = tg_rng_new(0);
    tg_model *m = tg_model_new();
    ck_assert_int_eq(tg_model_num_layers(m), 0);
    tg_nn_linear fc;
    tg_nn_conv2d conv, dup;
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_conv2d_init(&conv, m, "block/conv", 2, 3, 3, 1, 1, 1, false, &g), TG_OK);
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "block/bn", 3), TG_OK);
    ck_assert_int_eq(tg_nn_linear_init(&fc, m, "fc", 8, 4, true, &g), TG_OK);
    ck_assert_int_ne(tg_nn_conv2d_init(&dup, m, "block/conv", 2, 3, 3, 1, 1, 1, false, &g), TG_OK);
    ck_assert_int_eq(tg_model_num_layers(m), 3); /* a failed init adds no layer */
    const struct {
        const char *name;
        tg_nn_kind kind;
        const tg_tensor *weight, *bias;
    } want[3] = {{"block/conv", TG_NN_CONV2D, conv.weight, NULL},
                 {"block/bn", TG_NN_BATCH_NORM2D, bn.weight, bn.bias},
                 {"fc", TG_NN_LINEAR, fc.weight, fc.bias}};
    for (int i = 0; i < 3; i++) {
        tg_nn_layer_info l = tg_model_layer(m, i);
        ck_assert_str_eq(l.name, want[i].name);
        ck_assert_int_eq(l.kind, want[i].kind);
        ck_assert_ptr_eq(l.weight, want[i].weight);
        ck_assert_ptr_eq(l.bias, want[i].bias);
    }
    ck_assert_ptr_null(tg_model_layer(m, 3).name);
    ck_assert_ptr_null(tg_model_layer(m, -1).name);
    ck_assert_ptr_null(tg_model_layer(NULL, 0).name);
    ck_assert_str_eq(tg_nn_kind_name(TG_NN_BATCH_NORM2D), "batch_norm2d");

    tg_tape *tp = tg_tape_new(0);
    tg_tensor *xc = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 2, 4, 4));
    tg_tape_set_fused(tp, false); /* several records in the layer's scope: the last one */
    tg_tensor *y = tg_nn_conv2d_forward(tp, &conv, xc);
    int id = tg_tape_last_in_scope(tp, "block/conv");
    ck_assert_int_eq(id, tg_tape_size(tp) - 1);
    ck_assert_ptr_eq(tg_tape_record(tp, id)->out, y);
    tg_scope_push(tp, "block");
    tg_relu(tp, y); /* in "block", not in "block/conv" */
    tg_scope_pop(tp);
    ck_assert_int_eq(tg_tape_last_in_scope(tp, "block/conv"), id);
    ck_assert_int_eq(tg_tape_last_in_scope(tp, "block"), id + 1);
    ck_assert_int_eq(tg_tape_last_in_scope(tp, "block/bn"), -1);
    ck_assert_int_eq(tg_tape_last_in_scope(NULL, "block"), -1);
    ck_assert_int_eq(tg_tape_last_in_scope(tp, NULL), -1);
    tg_tape_free(tp);
    tg_tensor_free(xc);
    tg_model_free(m);
}
END_TEST

START_TEST(test_initialisers)
{
    tg_rng g = tg_rng_new(11);
    tg_tensor *w = tg_tensor_empty(NULL, TG_F64, TG_DIMS(128, 64, 3, 3)); /* 73,728 values */
    ck_assert_int_eq(tg_fan_in(w), 576);
    ck_assert_int_eq(tg_fan_out(w), 1152);

    /* kaiming uniform, a = sqrt(5) (PyTorch's conv default): bound sqrt(6 / ((1 + a^2) fan_in)) */
    double a = sqrt(5.0), bound = sqrt(6.0 / ((1 + a * a) * 576));
    ck_assert_int_eq(tg_init_kaiming_uniform(w, a, &g), TG_OK);
    moments mo = moments_of(w);
    ck_assert(mo.max_abs <= bound);
    ck_assert(mo.max_abs > 0.999 * bound);
    ck_assert(fabs(mo.mean) < 0.01 * bound);
    ck_assert(fabs(mo.var / (bound * bound / 3) - 1) < 0.02);

    /* kaiming normal, a = 0: std sqrt(2 / fan_in) */
    ck_assert_int_eq(tg_init_kaiming_normal(w, 0, &g), TG_OK);
    mo = moments_of(w);
    ck_assert(fabs(sqrt(mo.var) / sqrt(2.0 / 576) - 1) < 0.02);
    ck_assert(mo.max_abs > 3 * sqrt(2.0 / 576)); /* not a uniform */

    /* xavier uniform: bound gain sqrt(6 / (fan_in + fan_out)) */
    bound = 2.0 * sqrt(6.0 / (576 + 1152));
    ck_assert_int_eq(tg_init_xavier_uniform(w, 2.0, &g), TG_OK);
    mo = moments_of(w);
    ck_assert(mo.max_abs <= bound && mo.max_abs > 0.999 * bound);
    ck_assert(fabs(mo.var / (bound * bound / 3) - 1) < 0.02);

    /* bias: U(+-1/sqrt(fan_in)) */
    tg_tensor *b = tg_tensor_empty(NULL, TG_F32, TG_DIMS(10000));
    ck_assert_int_eq(tg_init_bias(b, 576, &g), TG_OK);
    mo = moments_of(b);
    ck_assert(mo.max_abs <= 1 / 24.0 && mo.max_abs > 0.99 / 24);
    ck_assert_int_eq(tg_init_bias(b, 0, &g), TG_OK); /* PyTorch: bound 0 */
    ck_assert(moments_of(b).max_abs == 0);

    /* errors */
    ck_assert_int_eq(tg_init_kaiming_uniform(b, a, &g), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_init_kaiming_uniform", "a weight needs at least 2 dimensions");
    ck_assert_int_eq(tg_fan_in(b), -1);
    tg_tensor *labels = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(3, 3));
    ck_assert_int_eq(tg_init_xavier_uniform(labels, 1, &g), TG_ERR_DTYPE);
    tg_tensor_free(labels);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

/* Layers draw their parameters from g in order, weight before bias, with PyTorch's
 * default bounds: 1/sqrt(fan_in) for both (a = sqrt(5) makes the weight's bound that). */
START_TEST(test_layer_init_draws_in_order)
{
    tg_model *m = tg_model_new();
    tg_rng g = tg_rng_new(5), g2 = g;
    tg_nn_conv2d c;
    ck_assert_int_eq(tg_nn_conv2d_init(&c, m, "conv", 16, 32, 3, 1, 1, 1, true, &g), TG_OK);
    double bound = 1 / sqrt(16 * 9.0);
    moments mw = moments_of(c.weight), mb = moments_of(c.bias);
    ck_assert(mw.max_abs <= bound * (1 + 1e-6) && mw.max_abs > 0.99 * bound);
    ck_assert(mb.max_abs <= bound * (1 + 1e-6) && mb.max_abs > 0.5 * bound);
    /* the same draws by hand */
    tg_tensor *w = tg_tensor_empty(NULL, TG_F32, TG_DIMS(32, 16, 3, 3));
    tg_tensor *b = tg_tensor_empty(NULL, TG_F32, TG_DIMS(32));
    ck_assert_int_eq(tg_init_kaiming_uniform(w, sqrt(5.0), &g2), TG_OK);
    ck_assert_int_eq(tg_init_bias(b, 144, &g2), TG_OK);
    double *wv = tt_values(w), *bv = tt_values(b);
    tt_assert_close(c.weight, wv, 0);
    tt_assert_close(c.bias, bv, 0);
    ck_assert(memcmp(&g, &g2, sizeof g) == 0);
    free(wv);
    free(bv);
    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_model_free(m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/layers");
    TCase *tc = tt_tcase("layers");
    tcase_add_test(tc, test_linear);
    tcase_add_test(tc, test_init_errors);
    tcase_add_loop_test(tc, test_conv2d_matches_direct_convolution_and_gradcheck, 0,
                        (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_loop_test(tc, test_conv2d_fused_matches_composed, 0,
                        (int)(sizeof conv_cases / sizeof conv_cases[0]));
    tcase_add_test(tc, test_conv2d_errors);
    tcase_add_test(tc, test_batchnorm_init);
    tcase_add_test(tc, test_batchnorm_training_output_and_gradcheck);
    tcase_add_test(tc, test_batchnorm_running_stats_and_evaluation);
    tcase_add_test(tc, test_batchnorm_f32_statistics);
    tcase_add_test(tc, test_cross_entropy);
    tcase_add_test(tc, test_accuracy);
    tcase_add_test(tc, test_dropout_follows_the_model);
    tcase_add_test(tc, test_records_of_each_layer);
    tcase_add_test(tc, test_model_layers_and_their_records);
    tcase_add_test(tc, test_initialisers);
    tcase_add_test(tc, test_layer_init_draws_in_order);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
