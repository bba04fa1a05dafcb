/* The coursework's ConvolutionalNetwork: parameter counts of VGG_08 and VGG_38 (and
 * their batch-norm variants), names and shapes in construction order, initialisation
 * drawn in that order, forward shapes of every variant, the tape's scopes, gradients
 * with respect to the input of a tiny f64 network, one SGD step that lowers the loss,
 * and training steps that are the same bits at 1, 2 and 3 threads. */
#include "check_util.h"

#include <limits.h>

static tg_vgg_config config(int blocks, tg_bn_placement bn)
{
    return (tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = blocks, .num_filters = 32,
                           .in_channels = 3, .num_classes = 100, .bn = bn};
}

static tg_vgg *new_vgg(const tg_vgg_config *c, uint64_t seed)
{
    tg_rng g = tg_rng_new(seed);
    tg_vgg *net = tg_vgg_new(c, &g);
    ck_assert_msg(net != NULL, "%s", tg_last_error());
    return net;
}

/* ------------------------------------------------------------------ parameters */

START_TEST(test_parameter_counts)
{
    /* VGG_08 (B = 0): entry conv 3*32*9 = 864, entry bn 2*32 = 64, per stage a reduction
     * block of two convs with bias 2*(32*32*9 + 32) = 18,496 (x3 = 55,488), linear
     * 32*100 + 100 = 3,300: 59,716. VGG_38 (B = 5) adds 3*5 blocks of two convs without
     * bias, 30 * 9,216 = 276,480: 336,196.
     * Batch norm after every conv adds 2*32 = 64 per conv: VGG_08 has 6 more convs
     * (+384 = 60,100), VGG_38 36 more (+2,304 = 338,500). Before or after the
     * activation, residual or not, ReLU or leaky: the same counts. */
    static const struct {
        int blocks;
        tg_bn_placement bn;
        bool residual;
        int64_t params;
        int tensors;
    } cases[] = {
        {0, TG_BN_NONE, false, 59716, 1 + 2 + 3 * 4 + 2},
        {5, TG_BN_NONE, false, 336196, 1 + 2 + 3 * (5 * 2 + 4) + 2},
        {0, TG_BN_BEFORE, false, 60100, 17 + 6 * 2},
        {0, TG_BN_AFTER, false, 60100, 17 + 6 * 2},
        {5, TG_BN_BEFORE, false, 338500, 47 + 36 * 2},
        {5, TG_BN_AFTER, true, 338500, 47 + 36 * 2},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_vgg_config c = config(cases[i].blocks, cases[i].bn);
        c.residual = cases[i].residual;
        tg_vgg *net = new_vgg(&c, 0);
        tg_model *m = tg_vgg_model(net);
        ck_assert_msg(tg_model_param_count(m) == cases[i].params, "case %zu: %lld parameters", i,
                      (long long)tg_model_param_count(m));
        ck_assert_int_eq(tg_model_num_params(m), cases[i].tensors);
        /* three buffers (running mean and variance, batches tracked) a batch norm */
        ck_assert_int_eq(tg_model_num_buffers(m), 3 * (cases[i].bn == TG_BN_NONE
                                                           ? 1 : 1 + 3 * 2 * (cases[i].blocks + 1)));
        ck_assert_int_eq(tg_vgg_config_of(net)->num_blocks_per_stage, cases[i].blocks);
        /* the depth in the name: every weight tensor but batch norm's is one layer */
        int bn_weights = cases[i].bn == TG_BN_NONE ? 1 : 1 + 3 * 2 * (cases[i].blocks + 1);
        int biases = 3 * 2 + 1;
        ck_assert_int_eq(tg_vgg_depth(&c), cases[i].tensors - 2 * bn_weights - biases);
        ck_assert_int_eq(tg_vgg_depth(&c), cases[i].blocks == 0 ? 8 : 38);
        tg_vgg_free(net);
    }
    /* the depth of other shapes, and of configs no network has */
    ck_assert_int_eq(tg_vgg_depth(&(tg_vgg_config){.num_stages = 4, .num_blocks_per_stage = 1}), 18);
    ck_assert_int_eq(tg_vgg_depth(&(tg_vgg_config){.num_stages = 1, .num_blocks_per_stage = 0}), 4);
    ck_assert_int_eq(tg_vgg_depth(&(tg_vgg_config){.num_stages = 0}), 0);
    ck_assert_int_eq(tg_vgg_depth(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = -1}), 0);
    ck_assert_int_eq(tg_vgg_depth(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = INT_MAX}), 0);
    ck_assert_int_eq(tg_vgg_depth(NULL), 0);
}
END_TEST

static void assert_param(const tg_model *m, int i, const char *name, int ndim, const int64_t *shape)
{
    ck_assert_str_eq(tg_model_param_name(m, i), name);
    tg_tensor *t = tg_model_param(m, i);
    ck_assert_int_eq(t->ndim, ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_int_eq(t->shape[d], shape[d]);
    ck_assert_str_eq(tg_leaf_name(t), name);
}

START_TEST(test_parameter_names)
{
    tg_vgg_config c = config(5, TG_BN_NONE);
    tg_vgg *net = new_vgg(&c, 0);
    tg_model *m = tg_vgg_model(net);
    int n = tg_model_num_params(m);
    assert_param(m, 0, "input_conv/conv_0/weight", TG_DIMS(32, 3, 3, 3));
    assert_param(m, 1, "input_conv/bn_0/weight", TG_DIMS(32));
    assert_param(m, 2, "input_conv/bn_0/bias", TG_DIMS(32));
    assert_param(m, 3, "block_0_0/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 4, "block_0_0/conv_1/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 5, "block_0_1/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 13, "reduction_block_0/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 14, "reduction_block_0/conv_0/bias", TG_DIMS(32));
    assert_param(m, 15, "reduction_block_0/conv_1/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 16, "reduction_block_0/conv_1/bias", TG_DIMS(32));
    assert_param(m, 17, "block_1_0/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, n - 6, "reduction_block_2/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, n - 3, "reduction_block_2/conv_1/bias", TG_DIMS(32));
    assert_param(m, n - 2, "logit_linear_layer/weight", TG_DIMS(100, 32));
    assert_param(m, n - 1, "logit_linear_layer/bias", TG_DIMS(100));
    ck_assert_str_eq(tg_model_buffer_name(m, 0), "input_conv/bn_0/running_mean");
    ck_assert_str_eq(tg_model_buffer_name(m, 2), "input_conv/bn_0/num_batches_tracked");
    ck_assert_int_eq(tg_model_param(m, 0)->dtype, TG_F32);
    tg_vgg_free(net);

    /* the batch norms follow the conv they normalise */
    c = config(1, TG_BN_AFTER);
    net = new_vgg(&c, 0);
    m = tg_vgg_model(net);
    assert_param(m, 3, "block_0_0/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 4, "block_0_0/bn_0/weight", TG_DIMS(32));
    assert_param(m, 5, "block_0_0/bn_0/bias", TG_DIMS(32));
    assert_param(m, 6, "block_0_0/conv_1/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 7, "block_0_0/bn_1/weight", TG_DIMS(32));
    assert_param(m, 9, "reduction_block_0/conv_0/weight", TG_DIMS(32, 32, 3, 3));
    assert_param(m, 10, "reduction_block_0/conv_0/bias", TG_DIMS(32));
    assert_param(m, 11, "reduction_block_0/bn_0/weight", TG_DIMS(32));
    ck_assert_ptr_nonnull(tg_model_find(m, "reduction_block_2/bn_1/running_var"));
    ck_assert_ptr_nonnull(tg_model_find(m, "block_2_0/bn_0/num_batches_tracked"));
    tg_vgg_free(net);
}
END_TEST

/* Weights and biases come from g in construction order: redrawing them by hand, in
 * the model's order, from the same seed gives the same values. */
START_TEST(test_init_order)
{
    tg_vgg_config c = config(1, TG_BN_BEFORE);
    tg_vgg *net = new_vgg(&c, 42);
    tg_model *m = tg_vgg_model(net);
    tg_rng g = tg_rng_new(42);
    int64_t fan_in = 0;
    for (int i = 0; i < tg_model_num_params(m); i++) {
        const char *name = tg_model_param_name(m, i);
        tg_tensor *p = tg_model_param(m, i);
        tg_tensor *mine = tg_tensor_empty(NULL, TG_F32, p->ndim, p->shape);
        if (strstr(name, "/bn_")) {
            tg_tensor_fill_(mine, strstr(name, "/weight") ? 1 : 0); /* gamma 1, beta 0: no draw */
        } else if (strstr(name, "/weight")) {
            ck_assert_int_eq(tg_init_kaiming_uniform(mine, sqrt(5.0), &g), TG_OK);
            fan_in = tg_fan_in(mine);
        } else {
            ck_assert_int_eq(tg_init_bias(mine, fan_in, &g), TG_OK);
        }
        double *v = tt_values(mine);
        ck_assert_msg(tt_max_rel_err(p, v) == 0, "%s differs", name);
        free(v);
        tg_tensor_free(mine);
    }
    /* a different seed, different weights */
    tg_vgg *other = new_vgg(&c, 43);
    double *v = tt_values(tg_model_param(tg_vgg_model(other), 0));
    ck_assert(tt_max_rel_err(tg_model_param(m, 0), v) > 0);
    free(v);
    tg_vgg_free(other);
    tg_vgg_free(net);
}
END_TEST

START_TEST(test_config_errors)
{
    tg_rng g = tg_rng_new(0);
    tg_vgg_config c = config(0, TG_BN_NONE);
    c.num_filters = 0;
    tt_expect_error(tg_vgg_new(&c, &g), TG_ERR_ARG, "tg_vgg_new",
                    "num_filters, in_channels and num_classes must be >= 1, got");
    c = config(0, TG_BN_NONE);
    c.dropout = 1;
    tt_expect_error(tg_vgg_new(&c, &g), TG_ERR_ARG, "tg_vgg_new",
                    "dropout must be in [0, 1), got 1");
    c = config(0, (tg_bn_placement)7);
    tt_expect_error(tg_vgg_new(&c, &g), TG_ERR_ARG, "tg_vgg_new",
                    "bn must be TG_BN_NONE, TG_BN_BEFORE or TG_BN_AFTER, got 7");
    c = config(0, TG_BN_NONE);
    c.dtype = TG_I32;
    tt_expect_error(tg_vgg_new(&c, &g), TG_ERR_DTYPE, "tg_vgg_new",
                    "dtype must be f32 or f64, got i32");
    tt_expect_error(tg_vgg_new(NULL, &g), TG_ERR_ARG, "tg_vgg_new", "the config is NULL");
    tg_vgg_free(NULL);
}
END_TEST

/* ------------------------------------------------------------------ forward */

static bool has_scope(const tg_tape *tp, const char *scope, const char *op)
{
    for (int i = 0; i < tg_tape_size(tp); i++) {
        const tg_record *r = tg_tape_record(tp, i);
        if (strcmp(r->scope, scope) == 0 && (!op || strcmp(r->op->name, op) == 0))
            return true;
    }
    return false;
}

/* the number of records of op `op` on the tape */
static int count_op(const tg_tape *tp, const char *op)
{
    int n = 0;
    for (int i = 0; i < tg_tape_size(tp); i++)
        n += strcmp(tg_tape_record(tp, i)->op->name, op) == 0;
    return n;
}

START_TEST(test_forward_shapes_of_every_variant)
{
    static const struct {
        int blocks;
        tg_bn_placement bn;
        double dropout;
        tg_activation act;
        bool residual;
    } cases[] = {
        {0, TG_BN_NONE, 0, TG_ACT_LEAKY_RELU, false},
        {1, TG_BN_NONE, 0, TG_ACT_LEAKY_RELU, false},
        {1, TG_BN_BEFORE, 0, TG_ACT_LEAKY_RELU, false},
        {1, TG_BN_AFTER, 0, TG_ACT_LEAKY_RELU, false},
        {1, TG_BN_AFTER, 0.2, TG_ACT_LEAKY_RELU, false},
        {1, TG_BN_NONE, 0, TG_ACT_RELU, false},
        {1, TG_BN_NONE, 0, TG_ACT_LEAKY_RELU, true},
        {1, TG_BN_BEFORE, 0.5, TG_ACT_RELU, true},
    };
    tg_rng g = tg_rng_new(9);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 3, 32, 32));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(2), (double[]){3, 99});
    tg_tape *tp = tg_tape_new(1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_vgg_config c = config(cases[i].blocks, cases[i].bn);
        c.dropout = cases[i].dropout;
        c.activation = cases[i].act;
        c.residual = cases[i].residual;
        tg_vgg *net = new_vgg(&c, i);
        tg_tensor *y = tg_vgg_forward(tp, net, x);
        tg_tensor *loss = tg_nn_cross_entropy(tp, y, labels);
        ck_assert_msg(tg_backward(tp, loss) == TG_OK, "case %zu: %s", i, tg_tape_error(tp));
        tt_assert_shape(y, 2, 100);
        ck_assert_int_eq(y->dtype, TG_F32);
        ck_assert(isfinite(tg_tensor_item(loss)));
        /* every parameter got a gradient */
        tg_model *m = tg_vgg_model(net);
        for (int p = 0; p < tg_model_num_params(m); p++)
            ck_assert_msg(tg_grad(tg_model_param(m, p)) != NULL, "case %zu: no gradient for %s", i,
                          tg_model_param_name(m, p));
        ck_assert(has_scope(tp, "input_conv/conv_0", "conv2d")); /* fused by default */
        ck_assert(has_scope(tp, "input_conv/bn_0", "batch_norm2d"));
        ck_assert(has_scope(tp, "reduction_block_0", "avg_pool2d"));
        ck_assert(has_scope(tp, "logit_linear_layer", "matmul"));
        ck_assert(has_scope(tp, "", "global_avg_pool2d"));
        /* fused: the activation is written over its input (tg_relu_) */
        const char *act = c.activation == TG_ACT_RELU ? "relu_" : "leaky_relu_";
        ck_assert(has_scope(tp, "input_conv", act));
        ck_assert(has_scope(tp, "reduction_block_2", act));
        ck_assert(has_scope(tp, "block_0_0", act) == (c.num_blocks_per_stage > 0));
        ck_assert(has_scope(tp, "block_0_0/bn_1", "batch_norm2d") == (c.bn != TG_BN_NONE));
        ck_assert(has_scope(tp, "block_0_0", "dropout") == (c.dropout > 0 && c.bn != TG_BN_NONE));
        ck_assert(has_scope(tp, "input_conv", "dropout") == (c.dropout > 0));
        ck_assert(has_scope(tp, "block_2_0", "add") == c.residual);
        /* the order of bn and activation: which comes first in block_0_0's conv_0 unit */
        if (c.bn != TG_BN_NONE) {
            int first_bn = -1, first_act = -1;
            for (int r = tg_tape_size(tp) - 1; r >= 0; r--) {
                const tg_record *rec = tg_tape_record(tp, r);
                if (strcmp(rec->scope, "block_0_0/bn_0") == 0)
                    first_bn = r;
                if (strcmp(rec->scope, "block_0_0") == 0 && strstr(rec->op->name, "relu"))
                    first_act = r;
            }
            ck_assert((first_bn < first_act) == (c.bn == TG_BN_BEFORE));
        }
        tg_tape_reset(tp);
        tg_vgg_free(net);
    }
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(labels);
}
END_TEST

START_TEST(test_vgg38_scopes_and_errors)
{
    tg_vgg_config c = config(5, TG_BN_NONE);
    tg_vgg *net = new_vgg(&c, 0);
    tg_rng g = tg_rng_new(9);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 3, 32, 32));
    tg_tape *tp = tg_tape_new(1);
    tg_tensor *y = tg_vgg_forward(tp, net, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_shape(y, 2, 100);
    /* fused: one conv2d record per convolution, 37 of them */
    ck_assert_int_eq(count_op(tp, "conv2d"), 37);
    ck_assert(has_scope(tp, "block_2_4/conv_1", "conv2d"));
    /* composed: the primitives, in the layers' scopes */
    tg_tape_reset(tp);
    tg_tape_set_fused(tp, false);
    y = tg_vgg_forward(tp, net, x);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert(has_scope(tp, "input_conv/conv_0", "im2col"));
    ck_assert(has_scope(tp, "input_conv/bn_0", "var"));
    ck_assert(has_scope(tp, "block_0_0/conv_0", "matmul"));
    ck_assert(has_scope(tp, "block_2_4/conv_1", "matmul"));
    ck_assert(has_scope(tp, "reduction_block_2/conv_1", "add"));
    ck_assert(!has_scope(tp, "block_3_0/conv_0", NULL));
    /* 37 convolutions, each one matmul; 1 more for the linear layer */
    ck_assert_int_eq(count_op(tp, "matmul"), 38);
    tg_tape_reset(tp);
    /* wrong channels: the entry conv says so */
    tg_tensor *gray = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 1, 32, 32));
    tg_vgg_forward(tp, net, gray);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_nn_conv2d_forward",
                   "'input_conv/conv_0' takes [N,3,H,W], got [2,1,32,32]", "");
    tg_tensor_free(gray);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_vgg_free(net);
}
END_TEST

/* Evaluation with grad disabled: nothing recorded, the entry bn normalises with its
 * running statistics (moved once by a training pass), so the logits differ from the
 * training pass's; and the statistics do not move. (VGG_08: through VGG_38 without
 * batch norm the signal vanishes, and the logits are the linear layer's bias.) */
START_TEST(test_evaluation_mode)
{
    tg_vgg_config c = config(0, TG_BN_NONE);
    tg_vgg *net = new_vgg(&c, 0);
    tg_rng g = tg_rng_new(9);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(2, 3, 32, 32));
    tg_tape *tp = tg_tape_new(1);
    tg_tensor *y = tg_vgg_forward(tp, net, x);
    double *train = tt_values(y);
    tg_tape_reset(tp);
    tg_model *m = tg_vgg_model(net);
    tg_model_set_training(m, false);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *nbt = tg_model_find(m, "input_conv/bn_0/num_batches_tracked");
    ck_assert(tg_tensor_item(nbt) == 1);
    y = tg_vgg_forward(tp, net, x);
    ck_assert_int_eq(tg_tape_size(tp), 0);
    tt_assert_shape(y, 2, 100);
    ck_assert_msg(tt_max_rel_err(y, train) > 1e-5, "%g", tt_max_rel_err(y, train));
    ck_assert(tg_tensor_item(nbt) == 1);
    free(train);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_vgg_free(net);
}
END_TEST

/* ------------------------------------------------------------------ gradients */

static tg_tensor *vgg_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    return tg_vgg_forward(tp, user, in[0]);
}

START_TEST(test_tiny_vgg_gradcheck)
{
    static const struct {
        tg_bn_placement bn;
        bool residual;
        double dropout;
    } cases[] = {
        {TG_BN_NONE, false, 0},
        {TG_BN_BEFORE, false, 0},
        {TG_BN_AFTER, false, 0},
        {TG_BN_AFTER, true, 0.2}, /* gradcheck replays the same dropout masks */
    };
    const tg_vgg_config c0 = {.num_stages = 3, .num_blocks_per_stage = 1, .num_filters = 4,
                              .in_channels = 3, .num_classes = 5, .dtype = TG_F64};
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 8, 8));
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_vgg_config c = c0;
        c.bn = cases[i].bn;
        c.residual = cases[i].residual;
        c.dropout = cases[i].dropout;
        tg_vgg *net = new_vgg(&c, i);
        ck_assert_int_eq(tg_model_param(tg_vgg_model(net), 0)->dtype, TG_F64);
        tg_gradcheck_report rep;
        tg_gradcheck_options o = {.max_elements = 48, .seed = i};
        tg_status st = tg_gradcheck(vgg_fn, net, 1, &x, &o, &rep);
        ck_assert_msg(st == TG_OK && rep.ok, "case %zu: %s (%s)", i, rep.message, tg_last_error());
        ck_assert_int_ge(rep.checked, 40); /* a kink or two may be skipped, not many */
        tg_vgg_free(net);
    }
    tg_tensor_free(x);
}
END_TEST

/* loss on a fixed batch after one step of w -= lr * dL/dw is lower */
START_TEST(test_one_sgd_step_lowers_the_loss)
{
    for (int bn = TG_BN_NONE; bn <= TG_BN_AFTER; bn++) {
        tg_vgg_config c = {.num_stages = 3, .num_blocks_per_stage = 1, .num_filters = 8,
                           .in_channels = 3, .num_classes = 10, .bn = (tg_bn_placement)bn};
        tg_vgg *net = new_vgg(&c, 3);
        tg_model *m = tg_vgg_model(net);
        tg_rng g = tg_rng_new(4);
        tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(8, 3, 16, 16));
        tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(8), (double[]){0, 1, 2, 3, 4, 5, 6, 7});
        tg_tape *tp = tg_tape_new(0);
        double loss0 = 0, loss1 = 0;
        for (int step = 0; step < 2; step++) {
            tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), labels);
            ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
            *(step ? &loss1 : &loss0) = tg_tensor_item(loss);
            for (int p = 0; p < tg_model_num_params(m) && step == 0; p++)
                ck_assert_int_eq(tg_tensor_axpy_(tg_model_param(m, p), -0.1, tg_grad(tg_model_param(m, p))),
                                 TG_OK);
            tg_model_zero_grad(m);
            tg_tape_reset(tp);
        }
        ck_assert_msg(loss1 < loss0 - 1e-4, "bn %d: loss %g -> %g", bn, loss0, loss1);
        tg_tape_free(tp);
        tg_tensor_free(x);
        tg_tensor_free(labels);
        tg_vgg_free(net);
    }
}
END_TEST

/* On a fused tape each activation is written over its input (tg_relu_): after the
 * forward the arena holds the layers' fresh outputs (conv2d's, batch_norm2d's, the
 * pooling's) and records, and no activation-sized tensor more. The bound is half the
 * activations' bytes above the fresh outputs: an activation of its own again (about a
 * third of a BN network's forward memory, half of one without) would break it.
 * (Measured at this size: 3.68 MB after the forward, 3.47 MB of fresh outputs, 2.76 MB
 * of activations, which took 6.4 MB before.) */
START_TEST(test_fused_activations_take_no_memory)
{
    static const tg_bn_placement bns[3] = {TG_BN_NONE, TG_BN_BEFORE, TG_BN_AFTER};
    tg_rng g = tg_rng_new(3);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(8, 3, 32, 32));
    double lab[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(8), lab);
    for (int k = 0; k < 3; k++) {
        tg_vgg_config c = config(1, bns[k]);
        c.num_filters = 16;
        tg_vgg *net = new_vgg(&c, 4);
        tg_tape *tp = tg_tape_new(0);
        tg_tape_set_keep_grads(tp, false);
        ck_assert(tg_tape_fused(tp));
        tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), labels);
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
        size_t used = tg_arena_used(tg_tape_arena(tp)), fresh = 0, acts = 0;
        int nacts = 0;
        for (int id = 0; id < tg_tape_size(tp); id++) {
            const tg_record *r = tg_tape_record(tp, id);
            size_t bytes = (size_t)tg_tensor_numel(r->out) * tg_dtype_size(r->out->dtype);
            bool shared = false; /* a view of an input, or written over it */
            for (int i = 0; i < r->nin; i++)
                shared = shared || r->out->storage == r->in[i]->storage;
            if (strstr(r->op->name, "relu")) {
                ck_assert_msg(shared, "bn %d: record %d (%s) has a tensor of its own", k, id, r->op->name);
                acts += bytes;
                nacts++;
            } else if (!shared) {
                fresh += bytes;
            }
        }
        ck_assert_int_eq(nacts, 13); /* the entry conv, then 4 convs a stage */
        ck_assert_msg(used >= fresh && used < fresh + acts / 2,
                      "bn %d: arena %zu bytes after the forward, fresh outputs %zu, activations %zu", k,
                      used, fresh, acts);
        /* and the backward, which reads each activation's mask from its output */
        ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
        tg_tape_free(tp);
        tg_vgg_free(net);
    }
    tg_tensor_free(x);
    tg_tensor_free(labels);
}
END_TEST

/* Whether two gradients' statistics agree within float32 rounding (the fused and the
 * composed layers round differently). */
static bool stats_close(tg_grad_stats a, tg_grad_stats b)
{
    double m[3][2] = {{a.mean_abs, b.mean_abs}, {a.rms, b.rms}, {a.max_abs, b.max_abs}};
    for (int i = 0; i < 3; i++)
        if (fabs(m[i][0] - m[i][1]) > 1e-4 * fabs(m[i][1]) + 1e-12)
            return false;
    return a.count == b.count && a.nonfinite == b.nonfinite && fabs(a.zero_frac - b.zero_frac) < 1e-3;
}

/* The gradient flow reads the same on a fused tape, where the activations are written
 * in place, as on a composed one, where each is a tensor of its own: per scope, the
 * last record's gradient (what the study's gradflow.csv logs as a layer's output
 * gradient) and, in order, every activation record's gradient have the same
 * statistics within float32 rounding. */
START_TEST(test_gradient_flow_same_fused_and_composed)
{
    static const tg_bn_placement bns[3] = {TG_BN_NONE, TG_BN_BEFORE, TG_BN_AFTER};
    tg_rng g = tg_rng_new(12);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(4, 3, 32, 32));
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(4), (double[]){3, 1, 4, 1});
    for (int k = 0; k < 3; k++) {
        tg_vgg_config c = config(1, bns[k]);
        c.num_filters = 8;
        tg_vgg *net = new_vgg(&c, 13);
        tg_tape *tp[2];
        for (int fused = 0; fused < 2; fused++) {
            tp[fused] = tg_tape_new(0);
            tg_tape_set_fused(tp[fused], fused);
            tg_tensor *loss = tg_nn_cross_entropy(tp[fused], tg_vgg_forward(tp[fused], net, x), labels);
            ck_assert_msg(tg_backward(tp[fused], loss) == TG_OK, "%s", tg_tape_error(tp[fused]));
            tg_model_zero_grad(tg_vgg_model(net));
        }
        for (int id = 0; id < tg_tape_size(tp[1]); id++) {
            const char *scope = tg_tape_record(tp[1], id)->scope;
            const tg_record *f = tg_tape_record(tp[1], tg_tape_last_in_scope(tp[1], scope)),
                           *comp = tg_tape_record(tp[0], tg_tape_last_in_scope(tp[0], scope));
            ck_assert_msg(comp != NULL, "bn %d: scope '%s' is not on the composed tape", k, scope);
            ck_assert_msg(stats_close(tg_record_grad_stats(f), tg_record_grad_stats(comp)),
                          "bn %d: scope '%s': fused %s and composed %s gradients differ", k, scope,
                          f->op->name, comp->op->name);
        }
        int ids[2] = {-1, -1}, nacts = 0;
        for (;;) {
            for (int t = 0; t < 2; t++) /* the next activation record on each tape */
                do
                    ids[t]++;
                while (ids[t] < tg_tape_size(tp[t]) && !strstr(tg_tape_record(tp[t], ids[t])->op->name, "relu"));
            if (ids[0] == tg_tape_size(tp[0]) || ids[1] == tg_tape_size(tp[1]))
                break;
            const tg_record *comp = tg_tape_record(tp[0], ids[0]), *f = tg_tape_record(tp[1], ids[1]);
            ck_assert_str_eq(comp->op->name, "leaky_relu");
            ck_assert_str_eq(f->op->name, "leaky_relu_");
            ck_assert_str_eq(comp->scope, f->scope);
            ck_assert_msg(stats_close(tg_record_grad_stats(f), tg_record_grad_stats(comp)),
                          "bn %d: activation %d in '%s': gradients differ", k, nacts, f->scope);
            nacts++;
        }
        ck_assert_int_eq(ids[0], tg_tape_size(tp[0])); /* as many on both tapes */
        ck_assert_int_eq(ids[1], tg_tape_size(tp[1]));
        ck_assert_int_eq(nacts, 13);
        tg_tape_free(tp[0]);
        tg_tape_free(tp[1]);
        tg_vgg_free(net);
    }
    tg_tensor_free(x);
    tg_tensor_free(labels);
}
END_TEST

/* The promise docs/guide.md makes ("Reproducibility"): on one machine and build, a run
 * is the same bits for any thread count. Three Adam steps of a small VGG with batch
 * norm and dropout, fused layers (the default), at 1, 2 and 3 threads: every loss and
 * every parameter afterwards are bitwise equal. The activations (8 images of 16
 * channels at 32x32, 131,072 elements) are well above the size at which loops are
 * shared among threads. */
enum { MAX_PARAMS = 64 };
typedef struct run {
    double loss[3];
    int nparams;
    double *param[MAX_PARAMS]; /* each parameter's values after the steps, as f64 */
    int64_t numel[MAX_PARAMS];
} run;

static void train_at(int threads, run *r)
{
    tg_set_num_threads(threads);
    tg_vgg_config c = {.num_stages = 3, .num_blocks_per_stage = 1, .num_filters = 16,
                       .in_channels = 3, .num_classes = 10, .bn = TG_BN_AFTER, .dropout = 0.1};
    tg_vgg *net = new_vgg(&c, 5);
    tg_model *m = tg_vgg_model(net);
    tg_rng g = tg_rng_new(6);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(8, 3, 32, 32));
    double lab[8];
    for (int i = 0; i < 8; i++)
        lab[i] = i;
    tg_tensor *labels = tt_tensor(TG_I32, TG_DIMS(8), lab);
    tg_optim *opt = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-2, .weight_decay = 1e-3});
    tg_tape *tp = tg_tape_new(7);
    ck_assert(tg_tape_fused(tp));
    for (int step = 0; step < 3; step++) {
        tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), labels);
        ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
        r->loss[step] = tg_tensor_item(loss);
        ck_assert_int_eq(tg_optim_step(opt), TG_OK);
        tg_model_zero_grad(m);
        tg_tape_reset(tp);
    }
    r->nparams = tg_model_num_params(m);
    ck_assert_int_le(r->nparams, MAX_PARAMS);
    for (int p = 0; p < r->nparams; p++) {
        r->param[p] = tt_values(tg_model_param(m, p));
        r->numel[p] = tg_tensor_numel(tg_model_param(m, p));
    }
    tg_tape_free(tp);
    tg_optim_free(opt);
    tg_tensor_free(x);
    tg_tensor_free(labels);
    tg_vgg_free(net);
}

START_TEST(test_same_bits_for_any_thread_count)
{
    int saved = tg_get_num_threads();
    run r[3];
    for (int t = 0; t < 3; t++)
        train_at(t + 1, &r[t]);
    tg_set_num_threads(saved);
    ck_assert_msg(r[0].loss[2] < r[0].loss[0], "loss %g -> %g: the steps did nothing", r[0].loss[0],
                  r[0].loss[2]);
    for (int t = 1; t < 3; t++) {
        ck_assert_int_eq(r[t].nparams, r[0].nparams);
        ck_assert_msg(memcmp(r[t].loss, r[0].loss, sizeof r[0].loss) == 0,
                      "%d threads: losses %.17g %.17g %.17g, 1 thread: %.17g %.17g %.17g", t + 1,
                      r[t].loss[0], r[t].loss[1], r[t].loss[2], r[0].loss[0], r[0].loss[1], r[0].loss[2]);
        for (int p = 0; p < r[0].nparams; p++)
            ck_assert_msg(memcmp(r[t].param[p], r[0].param[p], (size_t)r[0].numel[p] * sizeof(double)) == 0,
                          "%d threads: parameter %d differs from 1 thread's", t + 1, p);
    }
    for (int t = 0; t < 3; t++)
        for (int p = 0; p < r[t].nparams; p++)
            free(r[t].param[p]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/vgg");
    TCase *tc = tt_tcase("vgg");
    tcase_add_test(tc, test_parameter_counts);
    tcase_add_test(tc, test_parameter_names);
    tcase_add_test(tc, test_init_order);
    tcase_add_test(tc, test_config_errors);
    tcase_add_test(tc, test_forward_shapes_of_every_variant);
    tcase_add_test(tc, test_vgg38_scopes_and_errors);
    tcase_add_test(tc, test_evaluation_mode);
    tcase_add_test(tc, test_tiny_vgg_gradcheck);
    tcase_add_test(tc, test_one_sgd_step_lowers_the_loss);
    tcase_add_test(tc, test_same_bits_for_any_thread_count);
    tcase_add_test(tc, test_fused_activations_take_no_memory);
    tcase_add_test(tc, test_gradient_flow_same_fused_and_composed);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
