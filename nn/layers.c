/* nn/layers.c — linear and conv2d layers, and the dropout wrapper.
 *
 *   linear:  x [N,in] -> matmul(x, transpose(W)) [N,out] -> add(b [out])
 *   conv2d, on a fused tape (the default): one "conv2d" record, tg_conv2d, whose
 *            kernels never hold the batch's im2col columns (118 MB for a VGG layer of 100
 *            images of 32x32x32) and skip the input gradient of a first layer;
 *   conv2d, fusion off (tg_tape_set_fused), the same values from primitives, every step
 *            on the tape:
 *            x [N,C,H,W] -> im2col [N, C*kh*kw, OH*OW]
 *              -> matmul(reshape(W, [OC, C*kh*kw]), cols) [N, OC, OH*OW]
 *              -> reshape [N,OC,OH,OW] -> add(reshape(b, [1,OC,1,1]))
 *
 * The composed backward is the primitives': col2im of W^T @ g for the input, g @ cols^T
 * summed over the batch for the weight, the sum of g over (N,OH,OW) for the bias; the
 * fused op computes the same per image. Each forward runs inside the scope named after
 * its layer ("block_0_0/conv_0"), and allocates only from the tape's arena. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ shared pieces
 * (declared in nn/internal.h; batchnorm.c uses them too) */

tg_status tg__layer_name(char *dst, size_t size, const char *fn, const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len >= size)
        return tg_set_error_in(TG_ERR_ARG, fn, "a layer name must have 1 to %zu bytes, '%s' has %zu",
                            size - 1, name, len);
    memcpy(dst, name, len + 1);
    return TG_OK;
}

tg_status tg__layer_check_new(const char *fn, const tg_model *m, const char *layer, const char *what)
{
    char full[160];
    snprintf(full, sizeof full, "%s/%s", layer, what);
    if (tg_model_find(m, full))
        return tg_set_error_in(TG_ERR_ARG, fn, "'%s' already exists", full);
    return TG_OK;
}

tg_tensor *tg__layer_add(const char *fn, tg_model *m, bool param, const char *layer,
                         const char *what, tg_dtype dt, int ndim, const int64_t *shape)
{
    char full[160];
    snprintf(full, sizeof full, "%s/%s", layer, what);
    tg_tensor *t = param ? tg_model_add_param(m, full, dt, ndim, shape)
                         : tg_model_add_buffer(m, full, dt, ndim, shape);
    if (!t) {
        /* the model's reason (status and detail), under the name of the layer's function
         * the user called */
        tg_error e = *tg_last_error_info();
        snprintf(e.function, sizeof e.function, "%s", fn);
        tg_set_error_value(&e);
    }
    return t;
}


/* A parameter "<layer>/<what>" in the model's dtype; NULL + error naming fn. */
static tg_tensor *add_param(const char *fn, tg_model *m, const char *layer, const char *what,
                            int ndim, const int64_t *shape)
{
    return tg__layer_add(fn, m, true, layer, what, tg_model_dtype(m), ndim, shape);
}

/* ------------------------------------------------------------------ linear */

tg_status tg_nn_linear_init(tg_nn_linear *l, tg_model *m, const char *name, int64_t in, int64_t out,
                         bool bias, tg_rng *g)
{
    static const char fn[] = "tg_nn_linear_init";
    if (!l || !m || !name || !g)
        return tg_set_error_in(TG_ERR_ARG, fn, "the %s is NULL",
                            !l ? "layer" : !m ? "model" : !name ? "name" : "generator");
    memset(l, 0, sizeof *l);
    tg_status st = tg__layer_name(l->name, sizeof l->name, fn, name);
    if (st != TG_OK)
        return st;
    if (in < 1 || out < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "'%s': in and out must be >= 1, got %lld and %lld",
                            name, (long long)in, (long long)out);
    if ((st = tg__layer_check_new(fn, m, name, "weight")) != TG_OK ||
        (bias && (st = tg__layer_check_new(fn, m, name, "bias")) != TG_OK))
        return st;
    /* PyTorch's nn.Linear.reset_parameters: kaiming_uniform_(a = sqrt(5)), then the bias */
    if (!(l->weight = add_param(fn, m, name, "weight", 2, (int64_t[]){out, in})))
        return tg_last_status();
    if ((st = tg_init_kaiming_uniform(l->weight, sqrt(5.0), g)) != TG_OK)
        return st;
    if (bias) {
        if (!(l->bias = add_param(fn, m, name, "bias", 1, (int64_t[]){out})))
            return tg_last_status();
        if ((st = tg_init_bias(l->bias, in, g)) != TG_OK)
            return st;
    }
    return tg__model_add_layer(m, fn, name, TG_NN_LINEAR, l->weight, l->bias);
}

/* x [N,in] -> x @ W^T + b [N,out]; W^T is a view, BLIS reads it through its strides */
tg_tensor *tg_nn_linear_forward(tg_tape *tp, const tg_nn_linear *l, tg_tensor *x)
{
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, "tg_nn_linear_forward", "the tape is NULL");
        return NULL;
    }
    if (!l || !l->weight)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_linear_forward", "the layer is %s",
                          l ? "not initialised" : "NULL");
    if (tg_tape_status(tp) != TG_OK)
        return tg_tape_placeholder(tp);
    if (!x)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_linear_forward", "the input is NULL");
    if (x->ndim != 2 || x->shape[1] != l->weight->shape[1]) {
        char buf[160];
        return tg_tape_fail_tensor_in(tp, TG_ERR_SHAPE, "tg_nn_linear_forward", "'%s' takes [N,%lld], got %s", l->name,
                          (long long)l->weight->shape[1], tg_shape_str(buf, sizeof buf, x->ndim, x->shape));
    }
    tg_scope_push(tp, l->name);
    tg_tensor *out = tg_matmul(tp, x, tg_transpose(tp, l->weight, 0, 1));
    if (l->bias)
        out = tg_add(tp, out, l->bias);
    tg_scope_pop(tp);
    return out;
}

/* ------------------------------------------------------------------ conv2d */

tg_status tg_nn_conv2d_init(tg_nn_conv2d *c, tg_model *m, const char *name, int64_t in, int64_t out,
                         int kernel, int stride, int padding, int dilation, bool bias, tg_rng *g)
{
    static const char fn[] = "tg_nn_conv2d_init";
    if (!c || !m || !name || !g)
        return tg_set_error_in(TG_ERR_ARG, fn, "the %s is NULL",
                            !c ? "layer" : !m ? "model" : !name ? "name" : "generator");
    memset(c, 0, sizeof *c);
    tg_status st = tg__layer_name(c->name, sizeof c->name, fn, name);
    if (st != TG_OK)
        return st;
    if (in < 1 || out < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "'%s': in and out channels must be >= 1, got %lld and %lld",
                            name, (long long)in, (long long)out);
    if (kernel < 1 || stride < 1 || padding < 0 || dilation < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "'%s': kernel, stride and dilation must be >= 1 and "
                            "padding >= 0, got %d, %d, %d and %d", name, kernel, stride,
                            dilation, padding);
    if ((st = tg__layer_check_new(fn, m, name, "weight")) != TG_OK ||
        (bias && (st = tg__layer_check_new(fn, m, name, "bias")) != TG_OK))
        return st;
    c->geom = (tg_conv2d_geom){.kh = kernel, .kw = kernel, .stride_h = stride, .stride_w = stride,
                               .pad_h = padding, .pad_w = padding, .dil_h = dilation, .dil_w = dilation};
    /* PyTorch's nn.Conv2d.reset_parameters: kaiming_uniform_(a = sqrt(5)), then the bias
     * from U(+-1/sqrt(fan_in)) */
    if (!(c->weight = add_param(fn, m, name, "weight", 4, (int64_t[]){out, in, kernel, kernel})))
        return tg_last_status();
    if ((st = tg_init_kaiming_uniform(c->weight, sqrt(5.0), g)) != TG_OK)
        return st;
    if (bias) {
        if (!(c->bias = add_param(fn, m, name, "bias", 1, (int64_t[]){out})))
            return tg_last_status();
        if ((st = tg_init_bias(c->bias, tg_fan_in(c->weight), g)) != TG_OK)
            return st;
    }
    return tg__model_add_layer(m, fn, name, TG_NN_CONV2D, c->weight, c->bias);
}

/* inp [N,C,H,W], weight [OC,C,kh,kw], bias [OC] -> out [N,OC,OH,OW] */
tg_tensor *tg_nn_conv2d_forward(tg_tape *tp, const tg_nn_conv2d *c, tg_tensor *x)
{
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, "tg_nn_conv2d_forward", "the tape is NULL");
        return NULL;
    }
    if (!c || !c->weight)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_conv2d_forward", "the layer is %s",
                          c ? "not initialised" : "NULL");
    if (tg_tape_status(tp) != TG_OK)
        return tg_tape_placeholder(tp);
    if (!x)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_conv2d_forward", "the input is NULL");
    const tg_tensor *w = c->weight;
    const tg_conv2d_geom *gm = &c->geom;
    if (x->ndim != 4 || x->shape[1] != w->shape[1]) {
        char buf[160];
        return tg_tape_fail_tensor_in(tp, TG_ERR_SHAPE, "tg_nn_conv2d_forward", "'%s' takes [N,%lld,H,W], got %s", c->name,
                          (long long)w->shape[1], tg_shape_str(buf, sizeof buf, x->ndim, x->shape));
    }
    int64_t n = x->shape[0], oc = w->shape[0], k = w->shape[1] * w->shape[2] * w->shape[3];
    int64_t oh = tg_conv2d_out_size(x->shape[2], gm->kh, gm->stride_h, gm->pad_h, gm->dil_h);
    int64_t ow = tg_conv2d_out_size(x->shape[3], gm->kw, gm->stride_w, gm->pad_w, gm->dil_w);

    tg_scope_push(tp, c->name);
    if (tg_tape_fused(tp)) {
        tg_tensor *y = tg_conv2d(tp, x, c->weight, c->bias, gm);
        tg_scope_pop(tp);
        return y;
    }
    tg_tensor *cols = tg_im2col(tp, x, gm); /* [N, C*kh*kw, OH*OW]; fails if the kernel does not fit */
    tg_tensor *w2 = tg_reshape(tp, c->weight, 2, (int64_t[]){oc, k});
    tg_tensor *out = tg_matmul(tp, w2, cols); /* [N, OC, OH*OW]: already NCHW */
    out = tg_reshape(tp, out, 4, (int64_t[]){n, oc, oh, ow});
    if (c->bias)
        out = tg_add(tp, out, tg_reshape(tp, c->bias, 4, (int64_t[]){1, oc, 1, 1}));
    tg_scope_pop(tp);
    return out;
}

/* ------------------------------------------------------------------ dropout */

tg_tensor *tg_nn_dropout(tg_tape *tp, const tg_model *m, tg_tensor *x, double p)
{
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, "tg_nn_dropout", "the tape is NULL");
        return NULL;
    }
    if (tg_tape_status(tp) != TG_OK)
        return tg_tape_placeholder(tp);
    if (!m || !x)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_dropout", "the %s is NULL", m ? "input" : "model");
    if (!(p >= 0 && p < 1))
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, "tg_nn_dropout", "p must be in [0, 1), got %g", p);
    if (!tg_model_training(m) || p == 0)
        return x; /* evaluation: the identity, nothing recorded */
    return tg_dropout(tp, x, p);
}
