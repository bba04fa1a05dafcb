/* autograd/ops_reduce.c — differentiable reductions and losses: sum, mean, var, max,
 * logsumexp, log_softmax, gather and nll_loss, each as a tg_op with its forward and
 * backward side by side.
 *
 * A reduction's gradient goes back to every element that was reduced: the backward
 * reshapes g to the keepdim shape of the output (size 1 on each reduced axis) and lets
 * broadcasting (tg_tensor_expand, or the binary kernels) spread it over x's shape.
 * Axis lists are copied into the record's params, since the caller's array need not
 * outlive the call. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ shared */

/* The axes of a reduction, as the caller gave them (the kernel checks them), and what
 * forward works out once they are known to be good. */
typedef struct reduce_params {
    int naxes;                   /* 0: all axes; -1: a list that could not be copied */
    int bad_naxes;               /* then: the count the caller passed */
    bool null_list;              /* then: with a NULL list */
    int axes[TG_MAX_DIMS];
    bool keepdim;
    int correction;              /* var only */
    /* filled by forward */
    int64_t kshape[TG_MAX_DIMS]; /* the output's shape with keepdim: 1 on reduced axes */
    int64_t n;                   /* elements reduced into each output element */
} reduce_params;

static reduce_params reduce_params_of(int naxes, const int *axes, bool keepdim, int correction)
{
    reduce_params p = {.naxes = naxes, .keepdim = keepdim, .correction = correction};
    if (naxes < 0 || naxes > TG_MAX_DIMS || (naxes > 0 && !axes)) {
        p.naxes = -1; /* forward reports it: the tape has the op's name then */
        p.bad_naxes = naxes;
        p.null_list = naxes > 0 && !axes;
    } else if (naxes > 0) {
        memcpy(p.axes, axes, (size_t)naxes * sizeof *axes);
    }
    return p;
}

/* Before the kernel: an axis list that could not be copied is an error of its own. */
static bool reduce_axes_ok(const tg_record *r)
{
    const reduce_params *p = r->params;
    if (p->naxes >= 0)
        return true;
    char b[160];
    /* the detail only: the tape names the op (tg_sum, tg_mean, ...) as the function */
    tg_set_error(TG_ERR_ARG, "%d axes given%s for shape %s (a list of 0..%d axes expected)",
                 p->bad_naxes, p->null_list ? " in a NULL list" : "",
                 tg_shape_str(b, sizeof b, r->in[0]->ndim, r->in[0]->shape), TG_MAX_DIMS);
    return false;
}

/* After the kernel accepted the axes: the keepdim shape and the reduced count. */
static tg_tensor *reduce_done(tg_record *r, tg_tensor *out)
{
    reduce_params *p = r->params;
    const tg_tensor *x = r->in[0];
    if (!out)
        return NULL;
    bool reduced[TG_MAX_DIMS];
    for (int d = 0; d < x->ndim; d++)
        reduced[d] = p->naxes == 0;
    for (int i = 0; i < p->naxes; i++)
        reduced[p->axes[i] < 0 ? p->axes[i] + x->ndim : p->axes[i]] = true;
    p->n = 1;
    for (int d = 0; d < x->ndim; d++) {
        p->kshape[d] = reduced[d] ? 1 : x->shape[d];
        if (reduced[d])
            p->n *= x->shape[d];
    }
    return out;
}

/* t (the output or its gradient) seen with the keepdim shape, so it broadcasts over x. */
static tg_tensor *keepdim_view(tg_tape *tp, const tg_record *r, const tg_tensor *t)
{
    const reduce_params *p = r->params;
    return tg_tensor_reshape(TG__AR(tp), t, r->in[0]->ndim, p->kshape);
}

/* ------------------------------------------------------------------ sum
 * out = sum_axes x; dx = expand(g) */
static tg_tensor *sum_forward(tg_tape *tp, tg_record *r)
{
    const reduce_params *p = r->params;
    if (!reduce_axes_ok(r))
        return NULL;
    return reduce_done(r, tg_tensor_sum(TG__AR(tp), r->in[0], p->naxes, p->axes, p->keepdim));
}

static tg_status sum_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *x = r->in[0];
    return tg_accumulate_grad(tp, r, 0, tg_tensor_expand(TG__AR(tp), keepdim_view(tp, r, g),
                                                         x->ndim, x->shape));
}

static const tg_op op_sum = {"sum", sum_forward, sum_backward, TG_READS_NONE};

tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    reduce_params p = reduce_params_of(naxes, axes, keepdim, 0);
    return TG__APPLY1(tp, op_sum, x, &p);
}

/* ------------------------------------------------------------------ mean
 * out = sum_axes x / n; dx = expand(g / n) */
static tg_tensor *mean_forward(tg_tape *tp, tg_record *r)
{
    const reduce_params *p = r->params;
    if (!reduce_axes_ok(r))
        return NULL;
    return reduce_done(r, tg_tensor_mean(TG__AR(tp), r->in[0], p->naxes, p->axes, p->keepdim));
}

static tg_status mean_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const reduce_params *p = r->params;
    const tg_tensor *x = r->in[0];
    tg_arena *ar = TG__AR(tp);
    tg_tensor *gk = tg_tensor_affine(ar, keepdim_view(tp, r, g), 1.0 / (double)p->n, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_expand(ar, gk, x->ndim, x->shape));
}

static const tg_op op_mean = {"mean", mean_forward, mean_backward, TG_READS_NONE};

tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    reduce_params p = reduce_params_of(naxes, axes, keepdim, 0);
    return TG__APPLY1(tp, op_mean, x, &p);
}

/* ------------------------------------------------------------------ var
 * out = sum_axes (x - mean)^2 / (n - c); dx = g * 2 (x - mean) / (n - c)
 * (the mean's own dependence on x drops out: sum_axes (x - mean) = 0) */
static tg_tensor *var_forward(tg_tape *tp, tg_record *r)
{
    const reduce_params *p = r->params;
    if (!reduce_axes_ok(r))
        return NULL;
    return reduce_done(r, tg_tensor_var(TG__AR(tp), r->in[0], p->naxes, p->axes, p->correction,
                                        p->keepdim));
}

static tg_status var_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const reduce_params *p = r->params;
    const tg_tensor *x = r->in[0];
    tg_arena *ar = TG__AR(tp);
    tg_tensor *centred = tg_tensor_sub(ar, x, tg_tensor_mean(ar, x, p->naxes, p->axes, true));
    /* n - c <= 0: the forward gave NaN, and so does this (inf * 0 or inf * x) */
    tg_tensor *gk = tg_tensor_affine(ar, keepdim_view(tp, r, g),
                                     2.0 / (double)(p->n - p->correction), 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, centred, gk));
}

static const tg_op op_var = {"var", var_forward, var_backward, TG_READS_IN(0)};

tg_tensor *tg_var(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, int correction,
                  bool keepdim)
{
    reduce_params p = reduce_params_of(naxes, axes, keepdim, correction);
    return TG__APPLY1(tp, op_var, x, &p);
}

/* ------------------------------------------------------------------ max
 * out = max_axes x; dx = g * (x == out) / count(x == out): tied maxima share g equally,
 * so that max(x, x) and max over [3, 3] behave like the mean of the tied values */
static tg_tensor *max_forward(tg_tape *tp, tg_record *r)
{
    const reduce_params *p = r->params;
    if (!reduce_axes_ok(r))
        return NULL;
    return reduce_done(r, tg_tensor_max(TG__AR(tp), r->in[0], p->naxes, p->axes, p->keepdim));
}

static tg_status max_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const reduce_params *p = r->params;
    const tg_tensor *x = r->in[0];
    tg_arena *ar = TG__AR(tp);
    /* out is one of x's values, so == is exact */
    tg_tensor *hit = tg_tensor_to_dtype(ar, tg_tensor_binary(ar, TG_EQ, x, keepdim_view(tp, r, r->out)),
                                        x->dtype);
    tg_tensor *ties = tg_tensor_sum(ar, hit, p->naxes, p->axes, true);
    tg_tensor *share = tg_tensor_div(ar, keepdim_view(tp, r, g), ties);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, hit, share));
}

static const tg_op op_max = {"max", max_forward, max_backward, TG_READS_IN(0) | TG_READS_OUT};

tg_tensor *tg_max(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    reduce_params p = reduce_params_of(naxes, axes, keepdim, 0);
    return TG__APPLY1(tp, op_max, x, &p);
}

/* ------------------------------------------------------------------ logsumexp
 * out = log sum_axes exp(x); dx = g * exp(x - out) (g times the softmax) */
static tg_tensor *logsumexp_forward(tg_tape *tp, tg_record *r)
{
    const reduce_params *p = r->params;
    if (!reduce_axes_ok(r))
        return NULL;
    return reduce_done(r, tg_tensor_logsumexp(TG__AR(tp), r->in[0], p->naxes, p->axes, p->keepdim));
}

static tg_status logsumexp_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *softmax = tg_tensor_exp(ar, tg_tensor_sub(ar, r->in[0], keepdim_view(tp, r, r->out)));
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, softmax, keepdim_view(tp, r, g)));
}

static const tg_op op_logsumexp = {"logsumexp", logsumexp_forward, logsumexp_backward,
                                   TG_READS_IN(0) | TG_READS_OUT};

tg_tensor *tg_logsumexp(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    reduce_params p = reduce_params_of(naxes, axes, keepdim, 0);
    return TG__APPLY1(tp, op_logsumexp, x, &p);
}

/* ------------------------------------------------------------------ log_softmax
 * out = x - logsumexp(x, axis, keepdim); dx = g - exp(out) * sum(g, axis, keepdim)
 * (one op rather than sub + logsumexp: one record, and exp(out) is the softmax) */
typedef struct axis_params {
    int axis;
} axis_params;

static tg_tensor *log_softmax_forward(tg_tape *tp, tg_record *r)
{
    const axis_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    return tg_tensor_sub(ar, r->in[0], tg_tensor_logsumexp(ar, r->in[0], 1, &p->axis, true));
}

static tg_status log_softmax_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const axis_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    tg_tensor *gsum = tg_tensor_sum(ar, g, 1, &p->axis, true);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_sub(ar, g, tg_tensor_mul(ar, tg_tensor_exp(ar, r->out),
                                                                        gsum)));
}

static const tg_op op_log_softmax = {"log_softmax", log_softmax_forward, log_softmax_backward,
                                     TG_READS_OUT};

tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis)
{
    return TG__APPLY1(tp, op_log_softmax, x, &(axis_params){axis});
}

/* ------------------------------------------------------------------ gather and scatter
 * The walk both directions share: for every position q of index (x's shape without
 * `axis`), the element of x at q with index[q] inserted at `axis`. Gather copies it to
 * other[q]; scatter adds other[q] into it, so repeated indices accumulate. Any strides;
 * x and other f32 or f64 (the same), index i32. An index outside 0..size-1 fails with
 * a message naming `fn`, the value, the position and the axis. */
static tg_status gather_walk(const char *fn, tg_tensor *x, int axis, const tg_tensor *index,
                             tg_tensor *other, bool scatter)
{
    int nd = index->ndim;
    int64_t n = tg_tensor_numel(index), size = x->shape[axis];
    size_t es = tg_dtype_size(x->dtype);
    char *xd = tg_tensor_data(x), *od = tg_tensor_data(other);
    const char *id = tg_tensor_data(index);
    int64_t q[TG_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        int64_t xo = 0, oo = 0, io = 0;
        for (int d = 0; d < nd; d++) {
            xo += q[d] * x->strides[d < axis ? d : d + 1];
            oo += q[d] * other->strides[d];
            io += q[d] * index->strides[d];
        }
        int32_t j = *(const int32_t *)(id + io * (int64_t)sizeof(int32_t));
        if (j < 0 || j >= size) {
            char qs[160], xs[160];
            return tg_set_error_in(TG_ERR_ARG, fn, "index %d at %s is outside 0..%lld (axis %d of x, "
                                "shape %s, has size %lld)", (int)j, tg_shape_str(qs, sizeof qs, nd, q),
                                (long long)size - 1, axis, tg_shape_str(xs, sizeof xs, x->ndim, x->shape),
                                (long long)size);
        }
        xo += j * x->strides[axis];
        char *px = xd + xo * (int64_t)es, *po = od + oo * (int64_t)es;
        if (x->dtype == TG_F32) {
            if (scatter)
                *(float *)px += *(const float *)po;
            else
                *(float *)po = *(const float *)px;
        } else {
            if (scatter)
                *(double *)px += *(const double *)po;
            else
                *(double *)po = *(const double *)px;
        }
        for (int d = nd - 1; d >= 0; d--) { /* the odometer over index's positions */
            if (++q[d] < index->shape[d])
                break;
            q[d] = 0;
        }
    }
    return TG_OK;
}

/* dx for a gather: zeros of x's shape with g added at the gathered places. */
static tg_tensor *scatter_add(tg_arena *ar, const char *fn, const tg_tensor *x, int axis,
                              const tg_tensor *index, tg_tensor *g)
{
    tg_tensor *dx = tg_tensor_zeros(ar, x->dtype, x->ndim, x->shape);
    if (!dx || !g || gather_walk(fn, dx, axis, index, g, true) != TG_OK)
        return NULL;
    return dx;
}

/* ------------------------------------------------------------------ gather
 * out[q] = x[q with index[q] at axis]; dx = scatter_add(zeros like x, index, g)
 * The index is input 1 (a constant: it gets no gradient), so the tape shows it. */
static tg_tensor *gather_forward(tg_tape *tp, tg_record *r)
{
    const axis_params *p = r->params;
    tg_tensor *x = r->in[0];
    const tg_tensor *index = r->in[1];
    char xs[160], is[160];
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_set_error_in(TG_ERR_DTYPE, "tg_gather", "x is %s; f32 or f64 expected", tg_dtype_name(x->dtype));
        return NULL;
    }
    if (index->dtype != TG_I32) {
        tg_set_error_in(TG_ERR_DTYPE, "tg_gather", "the index is %s; i32 expected", tg_dtype_name(index->dtype));
        return NULL;
    }
    int axis = p->axis < 0 ? p->axis + x->ndim : p->axis;
    if (axis < 0 || axis >= x->ndim) {
        tg_set_error_in(TG_ERR_ARG, "tg_gather", "axis %d is out of range for shape %s", p->axis,
                     tg_shape_str(xs, sizeof xs, x->ndim, x->shape));
        return NULL;
    }
    bool fits = index->ndim == x->ndim - 1;
    for (int d = 0; fits && d < index->ndim; d++)
        fits = index->shape[d] == x->shape[d < axis ? d : d + 1];
    if (!fits) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_gather", "the index has shape %s; x's shape %s without axis %d "
                     "expected", tg_shape_str(is, sizeof is, index->ndim, index->shape),
                     tg_shape_str(xs, sizeof xs, x->ndim, x->shape), p->axis);
        return NULL;
    }
    tg_tensor *out = tg_tensor_empty(TG__AR(tp), x->dtype, index->ndim, index->shape);
    if (!out || gather_walk("tg_gather", x, axis, index, out, false) != TG_OK)
        return NULL;
    return out;
}

static tg_status gather_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const axis_params *p = r->params;
    const tg_tensor *x = r->in[0];
    int axis = p->axis < 0 ? p->axis + x->ndim : p->axis; /* forward checked it */
    tg_tensor *gc = (tg_tensor *)g; /* read only: scatter reads g, writes the zeros */
    return tg_accumulate_grad(tp, r, 0, scatter_add(TG__AR(tp), "tg_gather backward", x, axis,
                                                    r->in[1], gc));
}

static const tg_op op_gather = {"gather", gather_forward, gather_backward, TG_READS_IN(1)};

tg_tensor *tg_gather(tg_tape *tp, tg_tensor *x, int axis, const tg_tensor *index)
{
    /* the tape never writes its inputs; the cast only fits tg_apply's input array */
    return TG__APPLY2(tp, op_gather, x, (tg_tensor *)index, &(axis_params){axis});
}

/* ------------------------------------------------------------------ nll_loss
 * out = -(1/N) sum_i logp[i, labels[i]]; dlogp = scatter_add(zeros [N,C], labels, -g/N)
 * One op, not gather + mean + neg: one record on the tape for the loss, an error that
 * names the label and the example (not a gather index), and a backward that is one
 * scatter of a constant, without the intermediate [N] gradients. */
static tg_tensor *nll_loss_forward(tg_tape *tp, tg_record *r)
{
    tg_tensor *logp = r->in[0];
    const tg_tensor *labels = r->in[1];
    tg_arena *ar = TG__AR(tp);
    char b[160];
    if (logp->ndim != 2 || (logp->dtype != TG_F32 && logp->dtype != TG_F64)) {
        tg_set_error_in(logp->ndim != 2 ? TG_ERR_SHAPE : TG_ERR_DTYPE,
                     "tg_nll_loss", "logp is %s %s; [N, C] f32 or f64 expected",
                     tg_dtype_name(logp->dtype), tg_shape_str(b, sizeof b, logp->ndim, logp->shape));
        return NULL;
    }
    int64_t N = logp->shape[0], C = logp->shape[1];
    if (labels->dtype != TG_I32 || labels->ndim != 1 || labels->shape[0] != N) {
        char lb[160];
        tg_set_error_in(labels->dtype != TG_I32 ? TG_ERR_DTYPE : TG_ERR_SHAPE,
                     "tg_nll_loss", "labels are %s %s; i32 [%lld] expected for logp %s",
                     tg_dtype_name(labels->dtype), tg_shape_str(lb, sizeof lb, labels->ndim, labels->shape),
                     (long long)N, tg_shape_str(b, sizeof b, logp->ndim, logp->shape));
        return NULL;
    }
    const char *ld = tg_tensor_data(labels);
    for (int64_t i = 0; i < N; i++) {
        int32_t y = *(const int32_t *)(ld + i * labels->strides[0] * (int64_t)sizeof(int32_t));
        if (y < 0 || y >= C) {
            tg_set_error_in(TG_ERR_ARG, "tg_nll_loss", "label %d of example %lld is outside 0..%lld", (int)y,
                         (long long)i, (long long)C - 1);
            return NULL;
        }
    }
    tg_tensor *picked = tg_tensor_empty(ar, logp->dtype, 1, &N);
    if (!picked || gather_walk("tg_nll_loss", logp, 1, labels, picked, false) != TG_OK)
        return NULL;
    return tg_tensor_affine(ar, tg_tensor_sum(ar, picked, 0, NULL, false), -1.0 / (double)N, 0);
}

static tg_status nll_loss_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const tg_tensor *logp = r->in[0];
    tg_arena *ar = TG__AR(tp);
    int64_t N = logp->shape[0];
    tg_tensor *each = tg_tensor_expand(ar, tg_tensor_affine(ar, g, -1.0 / (double)N, 0), 1, &N);
    return tg_accumulate_grad(tp, r, 0, scatter_add(ar, "tg_nll_loss backward", logp, 1, r->in[1], each));
}

static const tg_op op_nll_loss = {"nll_loss", nll_loss_forward, nll_loss_backward, TG_READS_IN(1)};

tg_tensor *tg_nll_loss(tg_tape *tp, tg_tensor *logp, const tg_tensor *labels)
{
    return TG__APPLY2(tp, op_nll_loss, logp, (tg_tensor *)labels, (const void *)NULL);
}
