/* autograd/ops_shape.c — differentiable views and joins, each as a tg_op with its
 * forward and backward side by side.
 *
 * A view op's forward returns the tensor kernel's view, allocated in the tape's arena;
 * it shares storage with its input (a leaf's included), which is safe because nothing
 * on the tape writes in place. Each backward routes g back to the input's shape: a
 * reshape, the inverse permutation, a copy into a zero tensor's matching sub-view, or a
 * sum over broadcast axes (tg_tensor_sum_to). */
#include "internal.h"

#include <string.h>

/* dx = g reshaped back to x's shape: the backward of reshape, squeeze and unsqueeze,
 * which keep the elements in order and only change the axes. */
static tg_status reshape_back(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_reshape(TG__AR(tp), g, x->ndim, x->shape));
}

/* dx = zeros(x.shape) with g copied into part, a view of dx made by the same view op as
 * the forward's: the backward of slice and select. NULL (the error set) on failure. */
static tg_tensor *zeros_with(tg_tensor *dx, tg_tensor *part, const tg_tensor *g)
{
    return dx && part && tg_tensor_copy_(part, g) == TG_OK ? dx : NULL;
}

/* ------------------------------------------------------------------ reshape
 * out = x viewed as shape (a copy when the strides do not allow a view); dx = reshape(g, x.shape) */
typedef struct shape_params {
    int ndim;   /* as passed; checked by check_shape_params in forward */
    bool given; /* shape was copied (ndim in 0..TG_MAX_DIMS and a shape where one is needed) */
    int64_t shape[TG_MAX_DIMS];
} shape_params;

static shape_params shape_params_of(int ndim, const int64_t *shape)
{
    shape_params p = {.ndim = ndim};
    p.given = ndim >= 0 && ndim <= TG_MAX_DIMS && (ndim == 0 || shape);
    if (p.given && ndim > 0)
        memcpy(p.shape, shape, (size_t)ndim * sizeof *shape);
    return p;
}

static bool check_shape_params(const shape_params *p, const char *fn)
{
    if (!p->given)
        tg_set_error_in(TG_ERR_ARG, fn, "%d axes (0..%d allowed, with a shape)", p->ndim, TG_MAX_DIMS);
    return p->given;
}

static tg_tensor *reshape_forward(tg_tape *tp, tg_record *r)
{
    const shape_params *p = r->params;
    if (!check_shape_params(p, "tg_reshape"))
        return NULL;
    return tg_tensor_reshape(TG__AR(tp), r->in[0], p->ndim, p->shape);
}

static const tg_op op_reshape = {"reshape", reshape_forward, reshape_back, TG_READS_NONE};

tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape)
{
    shape_params p = shape_params_of(ndim, shape);
    return TG__APPLY1(tp, op_reshape, x, &p);
}

/* ------------------------------------------------------------------ permute
 * out = x with axes reordered, out.axis[i] = x.axis[perm[i]]; dx = permute(g, perm^-1) */
typedef struct perm_params {
    int ndim;
    bool given; /* as shape_params */
    int perm[TG_MAX_DIMS];
} perm_params;

static tg_tensor *permute_forward(tg_tape *tp, tg_record *r)
{
    const perm_params *p = r->params;
    if (!p->given) {
        tg_set_error_in(TG_ERR_ARG, "tg_permute", "%d axes (0..%d allowed, with a permutation)", p->ndim,
                     TG_MAX_DIMS);
        return NULL;
    }
    return tg_tensor_permute(TG__AR(tp), r->in[0], p->ndim, p->perm);
}

static tg_status permute_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const perm_params *p = r->params;
    int inv[TG_MAX_DIMS];
    for (int i = 0; i < p->ndim; i++) /* the forward accepted perm: a permutation of 0..ndim-1 */
        inv[p->perm[i] < 0 ? p->perm[i] + p->ndim : p->perm[i]] = i;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_permute(TG__AR(tp), g, p->ndim, inv));
}

static const tg_op op_permute = {"permute", permute_forward, permute_backward, TG_READS_NONE};

tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, int ndim, const int *perm)
{
    perm_params p = {.ndim = ndim};
    p.given = ndim >= 0 && ndim <= TG_MAX_DIMS && (ndim == 0 || perm);
    if (p.given && ndim > 0)
        memcpy(p.perm, perm, (size_t)ndim * sizeof *perm);
    return TG__APPLY1(tp, op_permute, x, &p);
}

/* ------------------------------------------------------------------ transpose
 * out = x with axes d0 and d1 swapped; dx = transpose(g, d0, d1) */
typedef struct transpose_params {
    int d0, d1;
} transpose_params;

static tg_tensor *transpose_forward(tg_tape *tp, tg_record *r)
{
    const transpose_params *p = r->params;
    return tg_tensor_transpose(TG__AR(tp), r->in[0], p->d0, p->d1);
}

static tg_status transpose_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const transpose_params *p = r->params;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_transpose(TG__AR(tp), g, p->d0, p->d1));
}

static const tg_op op_transpose = {"transpose", transpose_forward, transpose_backward, TG_READS_NONE};

tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int d0, int d1)
{
    return TG__APPLY1(tp, op_transpose, x, &(transpose_params){d0, d1});
}

/* ------------------------------------------------------------------ slice
 * out = x[start:stop:step] along dim; dx = zeros(x.shape) with g copied into the same slice */
typedef struct slice_params {
    int dim;
    int64_t start, stop, step;
} slice_params;

static tg_tensor *slice_forward(tg_tape *tp, tg_record *r)
{
    const slice_params *p = r->params;
    return tg_tensor_slice(TG__AR(tp), r->in[0], p->dim, p->start, p->stop, p->step);
}

static tg_status slice_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const slice_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    tg_tensor *dx = tg_tensor_zeros(ar, x->dtype, x->ndim, x->shape);
    tg_tensor *part = tg_tensor_slice(ar, dx, p->dim, p->start, p->stop, p->step);
    return tg_accumulate_grad(tp, r, 0, zeros_with(dx, part, g));
}

static const tg_op op_slice = {"slice", slice_forward, slice_backward, TG_READS_NONE};

tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int dim, int64_t start, int64_t stop, int64_t step)
{
    return TG__APPLY1(tp, op_slice, x, &(slice_params){dim, start, stop, step});
}

/* ------------------------------------------------------------------ select
 * out = x[..., index, ...] (dim dropped); dx = zeros(x.shape) with g copied into that sub-view */
typedef struct select_params {
    int dim;
    int64_t index;
} select_params;

static tg_tensor *select_forward(tg_tape *tp, tg_record *r)
{
    const select_params *p = r->params;
    return tg_tensor_select(TG__AR(tp), r->in[0], p->dim, p->index);
}

static tg_status select_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const select_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    tg_tensor *dx = tg_tensor_zeros(ar, x->dtype, x->ndim, x->shape);
    tg_tensor *part = tg_tensor_select(ar, dx, p->dim, p->index);
    return tg_accumulate_grad(tp, r, 0, zeros_with(dx, part, g));
}

static const tg_op op_select = {"select", select_forward, select_backward, TG_READS_NONE};

tg_tensor *tg_select(tg_tape *tp, tg_tensor *x, int dim, int64_t index)
{
    return TG__APPLY1(tp, op_select, x, &(select_params){dim, index});
}

/* ------------------------------------------------------------------ expand
 * out = x broadcast to shape (stride 0, no copy); dx = sum_to(g, x.shape) */
static tg_tensor *expand_forward(tg_tape *tp, tg_record *r)
{
    const shape_params *p = r->params;
    if (!check_shape_params(p, "tg_expand"))
        return NULL;
    return tg_tensor_expand(TG__AR(tp), r->in[0], p->ndim, p->shape);
}

static tg_status expand_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_sum_to(TG__AR(tp), g, x->ndim, x->shape));
}

static const tg_op op_expand = {"expand", expand_forward, expand_backward, TG_READS_NONE};

tg_tensor *tg_expand(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape)
{
    shape_params p = shape_params_of(ndim, shape);
    return TG__APPLY1(tp, op_expand, x, &p);
}

/* ------------------------------------------------------------------ squeeze, unsqueeze
 * out = x without size-1 axis dim (-1: all of them) / with a new size-1 axis at dim;
 * dx = reshape(g, x.shape) */
typedef struct dim_params {
    int dim;
} dim_params;

static tg_tensor *squeeze_forward(tg_tape *tp, tg_record *r)
{
    const dim_params *p = r->params;
    return tg_tensor_squeeze(TG__AR(tp), r->in[0], p->dim);
}

static const tg_op op_squeeze = {"squeeze", squeeze_forward, reshape_back, TG_READS_NONE};

tg_tensor *tg_squeeze(tg_tape *tp, tg_tensor *x, int dim)
{
    return TG__APPLY1(tp, op_squeeze, x, &(dim_params){dim});
}

static tg_tensor *unsqueeze_forward(tg_tape *tp, tg_record *r)
{
    const dim_params *p = r->params;
    return tg_tensor_unsqueeze(TG__AR(tp), r->in[0], p->dim);
}

static const tg_op op_unsqueeze = {"unsqueeze", unsqueeze_forward, reshape_back, TG_READS_NONE};

tg_tensor *tg_unsqueeze(tg_tape *tp, tg_tensor *x, int dim)
{
    return TG__APPLY1(tp, op_unsqueeze, x, &(dim_params){dim});
}

/* ------------------------------------------------------------------ concat
 * out = [x_0, x_1, ...] joined along axis (a copy); dx_i = narrow(g, axis, offset_i, len_i) */
typedef struct concat_params {
    int n;    /* inputs as passed (< 1 or without an array: an error) */
    int axis; /* as passed; forward normalizes it for backward */
} concat_params;

static tg_tensor *concat_forward(tg_tape *tp, tg_record *r)
{
    concat_params *p = r->params;
    if (r->nin < 1) {
        tg_set_error_in(TG_ERR_ARG, "tg_concat", "%d inputs%s (at least 1 needed)", p->n,
                     p->n > 0 ? " but no array of them" : "");
        return NULL;
    }
    const tg_tensor *x0 = r->in[0];
    int axis = p->axis < 0 ? p->axis + x0->ndim : p->axis;
    char s0[160], s1[160];
    tg_shape_str(s0, sizeof s0, x0->ndim, x0->shape);
    if (axis < 0 || axis >= x0->ndim) {
        tg_set_error_in(TG_ERR_ARG, "tg_concat", "axis %d for shape %s", p->axis, s0);
        return NULL;
    }
    int64_t shape[TG_MAX_DIMS];
    memcpy(shape, x0->shape, sizeof shape);
    shape[axis] = 0;
    for (int i = 0; i < r->nin; i++) {
        const tg_tensor *x = r->in[i];
        bool fits = x->ndim == x0->ndim;
        for (int d = 0; fits && d < x->ndim; d++)
            fits = d == axis || x->shape[d] == x0->shape[d];
        if (!fits) {
            tg_set_error_in(TG_ERR_SHAPE, "tg_concat", "input 0 is %s and input %d is %s; they must "
                         "agree except along axis %d", s0, i,
                         tg_shape_str(s1, sizeof s1, x->ndim, x->shape), axis);
            return NULL;
        }
        if (x->dtype != x0->dtype) {
            tg_set_error_in(TG_ERR_DTYPE, "tg_concat", "input 0 is %s and input %d is %s",
                         tg_dtype_name(x0->dtype), i, tg_dtype_name(x->dtype));
            return NULL;
        }
        shape[axis] += x->shape[axis];
    }
    p->axis = axis;
    tg_arena *ar = TG__AR(tp);
    tg_tensor *out = tg_tensor_empty(ar, x0->dtype, x0->ndim, shape);
    int64_t at = 0;
    for (int i = 0; out && i < r->nin; i++) {
        int64_t len = r->in[i]->shape[axis];
        tg_tensor *part = tg_tensor_narrow(ar, out, axis, at, len);
        if (!part || tg_tensor_copy_(part, r->in[i]) != TG_OK)
            return NULL;
        at += len;
    }
    return out;
}

static tg_status concat_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const concat_params *p = r->params;
    int64_t at = 0;
    for (int i = 0; i < r->nin; i++) {
        int64_t len = r->in[i]->shape[p->axis];
        if (tg_needs_grad(tp, r, i))
            tg_accumulate_grad(tp, r, i, tg_tensor_narrow(TG__AR(tp), g, p->axis, at, len));
        at += len;
    }
    return tg_tape_status(tp);
}

static const tg_op op_concat = {"concat", concat_forward, concat_backward, TG_READS_NONE};

tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis)
{
    concat_params p = {n, axis};
    return tg_apply(tp, &op_concat, n > 0 && xs ? n : 0, xs, &p, sizeof p);
}
