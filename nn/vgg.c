/* nn/vgg.c — the MLP coursework's ConvolutionalNetwork (Edinburgh, 2020-21), the network
 * of the study, with the variants the report tries.
 *
 *   input_conv:            conv_0 (3x3, pad 1, no bias) -> bn_0 -> act
 *   block_{s}_{b}:         conv_0 -> act -> conv_1 -> act              (no bias)
 *   reduction_block_{s}:   conv_0 -> act -> avg pool 2x2 -> conv_1 -> act (bias)
 *   then global average pooling and logit_linear_layer (num_filters -> classes, bias).
 *
 * Variants: batch norm after every conv of the blocks, before the activation
 * (conv -> bn -> act) or after it (conv -> act -> bn), named bn_0 / bn_1 after the conv
 * they follow; dropout after every batch norm (the entry's included); ReLU instead of
 * leaky ReLU; residual connections x + block(x) around the processing blocks. The entry
 * block is the same in every variant (conv -> bn -> act), as in the original.
 *
 * Layers are named by their full path ("block_0_0/conv_0"), which is both their scope
 * on the tape and the prefix of their parameters' names. The ops that belong to a block
 * itself (activations, pooling, dropout, the residual add) are recorded in the block's
 * scope ("block_0_0"); global pooling is at the root, as in the original's forward.
 *
 * Parameters are drawn from g in the order PyTorch's modules construct them: the entry
 * conv, then each block's conv_0, conv_1 (weight, then bias), stage by stage, then the
 * linear layer's weight and bias. */
#include "tapegrad/nn.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

typedef struct block {
    char scope[64];
    tg_nn_conv2d conv[2];
    tg_nn_batch_norm2d bn[2]; /* used when cfg.bn != TG_BN_NONE */
} block;

struct tg_vgg {
    tg_vgg_config cfg;
    tg_model *model;
    tg_nn_conv2d entry_conv;
    tg_nn_batch_norm2d entry_bn;
    block *blocks;     /* num_stages * num_blocks_per_stage, stage-major */
    block *reductions; /* num_stages */
    tg_nn_linear logits;
};

void tg_vgg_free(tg_vgg *net)
{
    if (!net)
        return;
    tg_model_free(net->model);
    tg_mem_free(net->blocks);
    tg_mem_free(net->reductions);
    tg_mem_free(net);
}

tg_model *tg_vgg_model(tg_vgg *net) { return net ? net->model : NULL; }
const tg_vgg_config *tg_vgg_config_of(const tg_vgg *net) { return net ? &net->cfg : NULL; }

int tg_vgg_depth(const tg_vgg_config *cfg)
{
    if (!cfg || cfg->num_stages < 1 || cfg->num_blocks_per_stage < 0 ||
        cfg->num_blocks_per_stage > (INT_MAX / 2 - 2) / cfg->num_stages - 2)
        return 0;
    /* the entry conv; per stage 2 per processing block and 2 in the reduction block; the linear */
    return 1 + cfg->num_stages * (2 * cfg->num_blocks_per_stage + 2) + 1;
}

static tg_status check_config(const tg_vgg_config *c)
{
    static const char fn[] = "tg_vgg_new";
    if (c->num_stages < 0 || c->num_blocks_per_stage < 0)
        return tg_set_error_in(TG_ERR_ARG, fn, "num_stages and num_blocks_per_stage must be >= 0, got %d and %d",
                            c->num_stages, c->num_blocks_per_stage);
    if (c->num_stages > 99 || c->num_blocks_per_stage > 999)
        return tg_set_error_in(TG_ERR_ARG, fn, "at most 99 stages of 999 blocks, got %d and %d",
                            c->num_stages, c->num_blocks_per_stage);
    if (c->num_filters < 1 || c->in_channels < 1 || c->num_classes < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "num_filters, in_channels and num_classes must be >= 1, "
                            "got %d, %d and %d", c->num_filters, c->in_channels, c->num_classes);
    if (c->bn != TG_BN_NONE && c->bn != TG_BN_BEFORE && c->bn != TG_BN_AFTER)
        return tg_set_error_in(TG_ERR_ARG, fn, "bn must be TG_BN_NONE, TG_BN_BEFORE or TG_BN_AFTER, got %d",
                            (int)c->bn);
    if (c->activation != TG_ACT_LEAKY_RELU && c->activation != TG_ACT_RELU)
        return tg_set_error_in(TG_ERR_ARG, fn, "activation must be TG_ACT_LEAKY_RELU or TG_ACT_RELU, got %d",
                            (int)c->activation);
    if (!(c->dropout >= 0 && c->dropout < 1))
        return tg_set_error_in(TG_ERR_ARG, fn, "dropout must be in [0, 1), got %g", c->dropout);
    if (c->dtype != TG_F32 && c->dtype != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, fn, "dtype must be f32 or f64, got %s",
                            (unsigned)c->dtype < TG_DTYPE_COUNT ? tg_dtype_name(c->dtype) : "?");
    return TG_OK;
}

/* conv_0, conv_1 (and bn_0, bn_1) of one block, in construction order */
static tg_status block_init(block *b, tg_model *m, const tg_vgg_config *c, bool bias, tg_rng *g)
{
    char name[96];
    tg_status st = TG_OK;
    for (int i = 0; i < 2 && st == TG_OK; i++) {
        snprintf(name, sizeof name, "%s/conv_%d", b->scope, i);
        st = tg_nn_conv2d_init(&b->conv[i], m, name, c->num_filters, c->num_filters, 3, 1, 1, 1, bias, g);
        if (st == TG_OK && c->bn != TG_BN_NONE) {
            snprintf(name, sizeof name, "%s/bn_%d", b->scope, i);
            st = tg_nn_batch_norm2d_init(&b->bn[i], m, name, c->num_filters);
        }
    }
    return st;
}

tg_vgg *tg_vgg_new(const tg_vgg_config *cfg, tg_rng *g)
{
    if (!cfg || !g) {
        tg_set_error_in(TG_ERR_ARG, "tg_vgg_new", "the %s is NULL", cfg ? "generator" : "config");
        return NULL;
    }
    if (check_config(cfg) != TG_OK)
        return NULL;
    int ns = cfg->num_stages, nb = cfg->num_blocks_per_stage;
    tg_vgg *net = tg_mem_alloc(sizeof *net, _Alignof(tg_vgg));
    if (!net)
        return NULL;
    *net = (tg_vgg){.cfg = *cfg};
    net->model = tg_model_new();
    size_t nblocks = (size_t)ns * (size_t)nb + 1, nred = (size_t)ns + 1; /* +1: never 0 bytes */
    net->blocks = tg_mem_alloc(nblocks * sizeof(block), _Alignof(block));
    net->reductions = tg_mem_alloc(nred * sizeof(block), _Alignof(block));
    if (!net->model || !net->blocks || !net->reductions || tg_model_set_dtype(net->model, cfg->dtype) != TG_OK)
        goto fail;
    memset(net->blocks, 0, nblocks * sizeof(block));
    memset(net->reductions, 0, nred * sizeof(block));

    tg_model *m = net->model;
    if (tg_nn_conv2d_init(&net->entry_conv, m, "input_conv/conv_0", cfg->in_channels, cfg->num_filters,
                       3, 1, 1, 1, false, g) != TG_OK ||
        tg_nn_batch_norm2d_init(&net->entry_bn, m, "input_conv/bn_0", cfg->num_filters) != TG_OK)
        goto fail;
    for (int s = 0; s < ns; s++) {
        for (int b = 0; b < nb; b++) {
            block *blk = &net->blocks[s * nb + b];
            snprintf(blk->scope, sizeof blk->scope, "block_%d_%d", s, b);
            if (block_init(blk, m, cfg, false, g) != TG_OK)
                goto fail;
        }
        block *red = &net->reductions[s];
        snprintf(red->scope, sizeof red->scope, "reduction_block_%d", s);
        if (block_init(red, m, cfg, true, g) != TG_OK)
            goto fail;
    }
    if (tg_nn_linear_init(&net->logits, m, "logit_linear_layer", cfg->num_filters, cfg->num_classes,
                       true, g) != TG_OK)
        goto fail;
    return net;
fail:
    tg_vgg_free(net); /* keeps the message of the call that failed */
    return NULL;
}

/* ------------------------------------------------------------------ forward */

/* The block-level ops run in the block's scope; layers push their own full names.
 * On a fused tape the activation is written over its input, a conv2d's, batch_norm2d's
 * or dropout's output, whose backward does not read it: one activation-sized tensor a
 * layer less until backward (tg_relu_ refuses, as the tape's error, where that would
 * not hold). Composed, it stays a tensor of its own, so that the records of the two
 * tapes can be compared one by one. Values and gradients are the same bits either way. */
static tg_tensor *activation(tg_tape *tp, const tg_vgg *net, tg_tensor *x)
{
    bool relu = net->cfg.activation == TG_ACT_RELU;
    if (tg_tape_fused(tp))
        return relu ? tg_relu_(tp, x) : tg_leaky_relu_(tp, x, 0.01);
    return relu ? tg_relu(tp, x) : tg_leaky_relu(tp, x, 0.01);
}

static tg_tensor *in_scope_act(tg_tape *tp, const tg_vgg *net, const char *scope, tg_tensor *x)
{
    tg_scope_push(tp, scope);
    x = activation(tp, net, x);
    tg_scope_pop(tp);
    return x;
}

/* bn, then dropout (in the block's scope) if the config asks for it */
static tg_tensor *bn_dropout(tg_tape *tp, const tg_vgg *net, const char *scope,
                             const tg_nn_batch_norm2d *bn, tg_tensor *x)
{
    x = tg_nn_batch_norm2d_forward(tp, bn, x);
    if (net->cfg.dropout > 0) {
        tg_scope_push(tp, scope);
        x = tg_nn_dropout(tp, net->model, x, net->cfg.dropout);
        tg_scope_pop(tp);
    }
    return x;
}

/* conv -> [bn before] -> act -> [bn after] */
static tg_tensor *conv_unit(tg_tape *tp, const tg_vgg *net, const block *b, int i, tg_tensor *x)
{
    x = tg_nn_conv2d_forward(tp, &b->conv[i], x);
    if (net->cfg.bn == TG_BN_BEFORE)
        x = bn_dropout(tp, net, b->scope, &b->bn[i], x);
    x = in_scope_act(tp, net, b->scope, x);
    if (net->cfg.bn == TG_BN_AFTER)
        x = bn_dropout(tp, net, b->scope, &b->bn[i], x);
    return x;
}

tg_tensor *tg_vgg_forward(tg_tape *tp, tg_vgg *net, tg_tensor *x)
{
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, "tg_vgg_forward", "the tape is NULL");
        return NULL;
    }
    if (!net) {
        tg_tape_fail_in(tp, TG_ERR_ARG, "tg_vgg_forward", "the network is NULL");
        return tg_tape_placeholder(tp);
    }
    const tg_vgg_config *c = &net->cfg;
    static const tg_conv2d_geom pool2 = {.kh = 2, .kw = 2, .stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1};

    x = tg_nn_conv2d_forward(tp, &net->entry_conv, x);
    x = bn_dropout(tp, net, "input_conv", &net->entry_bn, x);
    x = in_scope_act(tp, net, "input_conv", x);
    for (int s = 0; s < c->num_stages; s++) {
        for (int bi = 0; bi < c->num_blocks_per_stage; bi++) {
            const block *b = &net->blocks[s * c->num_blocks_per_stage + bi];
            tg_tensor *h = conv_unit(tp, net, b, 0, x);
            h = conv_unit(tp, net, b, 1, h);
            if (c->residual) {
                tg_scope_push(tp, b->scope);
                h = tg_add(tp, x, h);
                tg_scope_pop(tp);
            }
            x = h;
        }
        const block *r = &net->reductions[s];
        x = conv_unit(tp, net, r, 0, x);
        tg_scope_push(tp, r->scope);
        x = tg_avg_pool2d(tp, x, &pool2);
        tg_scope_pop(tp);
        x = conv_unit(tp, net, r, 1, x);
    }
    x = tg_global_avg_pool2d(tp, x); /* [N,C,H,W] -> [N,C] */
    return tg_nn_linear_forward(tp, &net->logits, x);
}
