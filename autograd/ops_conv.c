/* autograd/ops_conv.c — differentiable convolution pieces and pooling, each as a tg_op
 * with its forward and backward side by side.
 *
 * A convolution is here twice: as one fused op ("conv2d", the tensor core's kernels that
 * never hold the batch's columns), and as pieces the layer above composes when the tape
 * is not fused (im2col, a matmul with the weight [OC, C*kh*kw] and a reshape, whose
 * backward is theirs: col2im of W^T @ g for the input, g @ cols^T for the weight).
 * Pooling ops are primitives with the tensor core's backward kernels. */
#include "internal.h"

/* ------------------------------------------------------------------ im2col
 * x [N,C,H,W] -> cols [N, C*kh*kw, OH*OW]; dx = col2im(g) with x's C, H, W (the adjoint:
 * each column entry adds back to the pixel it was read from) */
static tg_tensor *im2col_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_im2col(TG__AR(tp), r->in[0], r->params);
}

static tg_status im2col_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_col2im(TG__AR(tp), g, x->shape[1], x->shape[2],
                                                         x->shape[3], r->params));
}

static const tg_op op_im2col = {"im2col", im2col_forward, im2col_backward, TG_READS_NONE};

/* The geometry is copied into the record; a NULL one reaches the kernel, which says so. */
static tg_tensor *apply_geom(tg_tape *tp, const tg_op *op, tg_tensor *x, const tg_conv2d_geom *g)
{
    return tg_apply(tp, op, 1, (tg_tensor *[]){x}, g, g ? sizeof *g : 0);
}

tg_tensor *tg_im2col(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g)
{
    return apply_geom(tp, &op_im2col, x, g);
}

/* ------------------------------------------------------------------ conv2d
 * y = conv(x [N,C,H,W], w [OC,C,kh,kw]) + b [OC] -> [N,OC,OH,OW]
 * dx = conv2d_backward_input(g, w), dw = conv2d_backward_weight(g, x), db = sum of g over
 * (N, OH, OW); each only when its input needs it (a network's first layer has no dx to
 * compute, the costliest of the three). Inputs {x, w} or {x, w, b}. */
static tg_tensor *conv2d_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_conv2d(TG__AR(tp), r->in[0], r->in[1], r->nin > 2 ? r->in[2] : NULL, r->params);
}

static tg_status conv2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0], *w = r->in[1];
    tg_status st = TG_OK;
    if (tg_needs_grad(tp, r, 0))
        st = tg_accumulate_grad(tp, r, 0, tg_tensor_conv2d_backward_input(ar, g, w, x->shape[2],
                                                                          x->shape[3], r->params));
    if (st == TG_OK && tg_needs_grad(tp, r, 1))
        st = tg_accumulate_grad(tp, r, 1, tg_tensor_conv2d_backward_weight(ar, g, x, r->params));
    if (st == TG_OK && r->nin > 2 && tg_needs_grad(tp, r, 2))
        st = tg_accumulate_grad(tp, r, 2, tg_tensor_sum(ar, g, TG_AXES(0, 2, 3), false));
    return st;
}

static const tg_op op_conv2d = {"conv2d", conv2d_forward, conv2d_backward,
                                TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b, const tg_conv2d_geom *g)
{
    return tg_apply(tp, &op_conv2d, b ? 3 : 2, (tg_tensor *[]){x, w, b}, g, g ? sizeof *g : 0);
}

/* ------------------------------------------------------------------ avg pool
 * out[n,c,oh,ow] = mean of x over the window (padding counted as zeros);
 * dx = g[window] / (kh*kw) spread back over each window */
static tg_tensor *avg_pool2d_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_avg_pool2d(TG__AR(tp), r->in[0], r->params);
}

static tg_status avg_pool2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_avg_pool2d_backward(TG__AR(tp), g, x->shape[2],
                                                                      x->shape[3], r->params));
}

static const tg_op op_avg_pool2d = {"avg_pool2d", avg_pool2d_forward, avg_pool2d_backward,
                                    TG_READS_NONE};

tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g)
{
    return apply_geom(tp, &op_avg_pool2d, x, g);
}

/* ------------------------------------------------------------------ max pool
 * out[n,c,oh,ow] = max of x over the window; dx = g routed to each window's argmax (the
 * i32 indices forward keeps in the record) */
typedef struct max_pool_params {
    tg_conv2d_geom geom;
    bool given;         /* a geometry was passed (else the kernel reports the NULL) */
    tg_tensor *indices; /* set by forward: flat h*W + w of each maximum, in the arena */
} max_pool_params;

static tg_tensor *max_pool2d_forward(tg_tape *tp, tg_record *r)
{
    max_pool_params *p = r->params;
    return tg_tensor_max_pool2d(TG__AR(tp), r->in[0], p->given ? &p->geom : NULL, &p->indices);
}

static tg_status max_pool2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const max_pool_params *p = r->params;
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_max_pool2d_backward(TG__AR(tp), g, p->indices,
                                                                      x->shape[2], x->shape[3]));
}

static const tg_op op_max_pool2d = {"max_pool2d", max_pool2d_forward, max_pool2d_backward,
                                    TG_READS_NONE};

tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g)
{
    max_pool_params p = {.given = g != NULL};
    if (g)
        p.geom = *g;
    return TG__APPLY1(tp, op_max_pool2d, x, &p);
}

/* ------------------------------------------------------------------ global average pool
 * out[n,c] = mean over h, w of x[n,c,h,w]; dx = g[n,c] / (H*W) broadcast over H, W
 * A primitive rather than tg_mean(x, {2,3}): one record that reads as what the network
 * does, and a 4-D check with a message that names it. */
static tg_tensor *global_avg_pool2d_forward(tg_tape *tp, tg_record *r)
{
    const tg_tensor *x = r->in[0];
    if (x->ndim != 4) {
        char s[160];
        tg_set_error_in(TG_ERR_SHAPE, "tg_global_avg_pool2d", "input %s must be 4-D [N, C, H, W]",
                     tg_shape_str(s, sizeof s, x->ndim, x->shape));
        return NULL;
    }
    return tg_tensor_mean(TG__AR(tp), x, TG_AXES(2, 3), false);
}

static tg_status global_avg_pool2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    double n = (double)(x->shape[2] * x->shape[3]);
    tg_tensor *g4 = tg_tensor_reshape(ar, g, TG_DIMS(x->shape[0], x->shape[1], 1, 1));
    tg_tensor *dx = tg_tensor_expand(ar, tg_tensor_affine(ar, g4, 1.0 / n, 0), x->ndim, x->shape);
    return tg_accumulate_grad(tp, r, 0, dx);
}

static const tg_op op_global_avg_pool2d = {"global_avg_pool2d", global_avg_pool2d_forward,
                                           global_avg_pool2d_backward, TG_READS_NONE};

tg_tensor *tg_global_avg_pool2d(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_global_avg_pool2d, x, (const void *)NULL);
}
