/* tensor/view.c — views: new headers over the same storage (reshape, permute,
 * transpose, slice, select, expand, squeeze, unsqueeze). Nothing here copies data,
 * except tg_tensor_reshape when the strides leave no other way. Each view has an
 * _into form that fills a header on the caller's stack, for kernels that need a
 * temporary view without allocating. */
#include "internal.h"

#include <string.h>

/* Wraps an _into function: the view is built on the stack, then given a header. */
#define VIEW_RETURN(ar, tmp, call)            \
    do {                                      \
        if ((call) != TG_OK)                  \
            return NULL;                      \
        return tg__header_like((ar), &(tmp)); \
    } while (0)

static bool resolve_shape(const char *fn, const tg_tensor *t, int ndim, const int64_t *shape,
                          int64_t *out)
{
    char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg_set_error_in(TG_ERR_ARG, fn, "%d axes (0..%d allowed)", ndim, TG_MAX_DIMS);
        return false;
    }
    int infer = -1;
    int64_t known = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1 && infer < 0) {
            infer = i;
            continue;
        }
        if (shape[i] < 0) {
            tg_set_error_in(TG_ERR_SHAPE, fn, "bad size %lld in shape %s", (long long)shape[i],
                         tg_shape_str(b1, sizeof b1, ndim, shape));
            return false;
        }
        known *= shape[i];
        out[i] = shape[i];
    }
    int64_t numel = tg_tensor_numel(t);
    if (infer >= 0) {
        if (known == 0 || numel % known != 0) {
            tg_set_error_in(TG_ERR_SHAPE, fn, "cannot reshape %s (%lld elements) to %s",
                         TG__SHAPE(b1, t), (long long)numel, tg_shape_str(b2, sizeof b2, ndim, shape));
            return false;
        }
        out[infer] = numel / known;
        known *= out[infer];
    }
    if (known != numel) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "cannot reshape %s (%lld elements) to %s (%lld elements)",
                     TG__SHAPE(b1, t), (long long)numel, tg_shape_str(b2, sizeof b2, ndim, shape),
                     (long long)known);
        return false;
    }
    return true;
}

/* The strides that let `t`'s memory be read with `shape`, if any (PyTorch's rule:
 * each run of new axes must cover a run of old axes that are contiguous with each
 * other). */
static bool view_strides(const tg_tensor *t, int ndim, const int64_t *shape, int64_t *strides)
{
    if (tg_tensor_numel(t) == 0 || t->ndim == 0) {
        int64_t s = 1;
        for (int i = ndim - 1; i >= 0; i--) {
            strides[i] = s;
            s *= shape[i] ? shape[i] : 1;
        }
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_base = t->strides[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 && t->strides[d - 1] != tensor_numel * chunk_base)) {
            while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_base;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (d > 0) {
                chunk_base = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

tg_status tg__view_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int64_t *shape,
                        const char *fn)
{
    int64_t resolved[TG_MAX_DIMS], strides[TG_MAX_DIMS];
    if (!resolve_shape(fn, t, ndim, shape, resolved))
        return tg_last_status();
    if (!view_strides(t, ndim, resolved, strides)) {
        char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
        return tg_set_error_in(TG_ERR_SHAPE, fn, "a tensor of shape %s with these strides cannot be "
                                          "viewed as %s without a copy (use tg_tensor_reshape)",
                            TG__SHAPE(b1, t), tg_shape_str(b2, sizeof b2, ndim, resolved));
    }
    *dst = *t;
    dst->ndim = ndim;
    for (int i = 0; i < ndim; i++) {
        dst->shape[i] = resolved[i];
        dst->strides[i] = strides[i];
    }
    return TG_OK;
}

tg_tensor *tg_tensor_view(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape)
{
    TG__CHECK_NULL("tg_tensor_view", t);
    tg_tensor v;
    VIEW_RETURN(ar, v, tg__view_into(&v, t, ndim, shape, "tg_tensor_view"));
}

tg_tensor *tg_tensor_reshape(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape)
{
    TG__CHECK_NULL("tg_tensor_reshape", t);
    int64_t resolved[TG_MAX_DIMS], strides[TG_MAX_DIMS];
    if (!resolve_shape("tg_tensor_reshape", t, ndim, shape, resolved))
        return NULL;
    if (view_strides(t, ndim, resolved, strides)) {
        tg_tensor v = *t;
        v.ndim = ndim;
        for (int i = 0; i < ndim; i++) {
            v.shape[i] = resolved[i];
            v.strides[i] = strides[i];
        }
        return tg__header_like(ar, &v);
    }
    tg_tensor *c = tg_tensor_clone(ar, t);
    if (!c)
        return NULL;
    c->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        c->shape[i] = resolved[i];
    tg__set_contiguous_strides(c);
    return c;
}

tg_tensor *tg_tensor_flatten(tg_arena *ar, const tg_tensor *t)
{
    TG__CHECK_NULL("tg_tensor_flatten", t);
    int64_t n = -1;
    return tg_tensor_reshape(ar, t, 1, &n);
}

tg_status tg__permute_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int *perm, const char *fn)
{
    char b[TG__SHAPE_STR];
    if (ndim != t->ndim || (ndim > 0 && !perm))
        return tg_set_error_in(TG_ERR_ARG, fn, "%d axes given for shape %s", ndim, TG__SHAPE(b, t));
    bool seen[TG_MAX_DIMS] = {false};
    tg_tensor v = *t;
    for (int i = 0; i < ndim; i++) {
        int a = tg__axis(perm[i], ndim);
        if (a < 0 || seen[a])
            return tg_set_error_in(TG_ERR_ARG, fn, "axis list is not a permutation of 0..%d (shape %s)",
                                ndim - 1, TG__SHAPE(b, t));
        seen[a] = true;
        v.shape[i] = t->shape[a];
        v.strides[i] = t->strides[a];
    }
    *dst = v;
    return TG_OK;
}

tg_tensor *tg_tensor_permute(tg_arena *ar, const tg_tensor *t, int ndim, const int *perm)
{
    TG__CHECK_NULL("tg_tensor_permute", t);
    tg_tensor v;
    VIEW_RETURN(ar, v, tg__permute_into(&v, t, ndim, perm, "tg_tensor_permute"));
}

tg_tensor *tg_tensor_transpose(tg_arena *ar, const tg_tensor *t, int d0, int d1)
{
    TG__CHECK_NULL("tg_tensor_transpose", t);
    int a = tg__axis(d0, t->ndim), b = tg__axis(d1, t->ndim);
    if (a < 0 || b < 0) {
        char s[TG__SHAPE_STR];
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_transpose", "axes %d and %d for shape %s", d0, d1,
                        TG__SHAPE(s, t));
    }
    tg_tensor v = *t;
    v.shape[a] = t->shape[b];
    v.strides[a] = t->strides[b];
    v.shape[b] = t->shape[a];
    v.strides[b] = t->strides[a];
    return tg__header_like(ar, &v);
}

tg_tensor *tg_tensor_slice(tg_arena *ar, const tg_tensor *t, int dim, int64_t start, int64_t stop,
                           int64_t step)
{
    TG__CHECK_NULL("tg_tensor_slice", t);
    char s[TG__SHAPE_STR];
    int d = tg__axis(dim, t->ndim);
    if (d < 0)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_slice", "axis %d for shape %s", dim, TG__SHAPE(s, t));
    if (step < 1)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_slice", "step %lld must be at least 1", (long long)step);
    int64_t n = t->shape[d];
    if (start < 0)
        start += n;
    if (stop < 0)
        stop += n;
    start = start < 0 ? 0 : start > n ? n : start;
    stop = stop < start ? start : stop > n ? n : stop;
    tg_tensor v = *t;
    v.shape[d] = stop > start ? 1 + (stop - start - 1) / step : 0; /* no overflow for any step */
    if (v.shape[d] > 1)
        v.strides[d] = t->strides[d] * step;
    if (v.shape[d] > 0)
        v.offset += start * t->strides[d];
    return tg__header_like(ar, &v);
}

tg_tensor *tg_tensor_narrow(tg_arena *ar, const tg_tensor *t, int dim, int64_t start, int64_t length)
{
    TG__CHECK_NULL("tg_tensor_narrow", t);
    char s[TG__SHAPE_STR];
    int d = tg__axis(dim, t->ndim);
    if (d < 0 || start < 0 || length < 0 || start > t->shape[d] || length > t->shape[d] - start)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_narrow", "[%lld, %lld) along axis %d is outside shape %s",
                        (long long)start, (long long)((uint64_t)start + (uint64_t)length), dim,
                        TG__SHAPE(s, t)); /* the end without signed overflow */
    return tg_tensor_slice(ar, t, d, start, start + length, 1);
}

tg_tensor *tg_tensor_select(tg_arena *ar, const tg_tensor *t, int dim, int64_t index)
{
    TG__CHECK_NULL("tg_tensor_select", t);
    char s[TG__SHAPE_STR];
    int d = tg__axis(dim, t->ndim);
    if (d >= 0 && index < 0)
        index += t->shape[d];
    if (d < 0 || index < 0 || index >= t->shape[d])
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_select", "index %lld along axis %d is outside shape %s",
                        (long long)index, dim, TG__SHAPE(s, t));
    tg_tensor v = *t;
    v.offset += index * t->strides[d];
    for (int i = d; i < t->ndim - 1; i++) {
        v.shape[i] = t->shape[i + 1];
        v.strides[i] = t->strides[i + 1];
    }
    v.ndim--;
    return tg__header_like(ar, &v);
}

int tg_broadcast_shape(const char *caller, int an, const int64_t *ashape, int bn,
                       const int64_t *bshape, int64_t *out)
{
    int n = an > bn ? an : bn;
    for (int i = 0; i < n; i++) {
        int64_t a = i < n - an ? 1 : ashape[i - (n - an)];
        int64_t b = i < n - bn ? 1 : bshape[i - (n - bn)];
        if (a != b && a != 1 && b != 1) {
            char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
            tg_set_error_in(TG_ERR_SHAPE, caller, "shapes %s and %s cannot be broadcast",
                         tg_shape_str(b1, sizeof b1, an, ashape), tg_shape_str(b2, sizeof b2, bn, bshape));
            return -1;
        }
        out[i] = a == 1 ? b : a;
    }
    return n;
}

tg_status tg__expand_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int64_t *shape,
                          const char *fn)
{
    char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
    if (ndim < t->ndim || ndim > TG_MAX_DIMS)
        goto bad;
    tg_tensor v = *t;
    v.ndim = ndim;
    for (int i = ndim - 1, j = t->ndim - 1; i >= 0; i--, j--) {
        int64_t have = j >= 0 ? t->shape[j] : 1;
        if (shape[i] < 0)
            goto bad;
        if (have == shape[i]) {
            v.shape[i] = have;
            v.strides[i] = j >= 0 ? t->strides[j] : 0;
        } else if (have == 1) {
            v.shape[i] = shape[i];
            v.strides[i] = 0;
        } else {
            goto bad;
        }
    }
    *dst = v;
    return TG_OK;
bad:
    return tg_set_error_in(TG_ERR_SHAPE, fn, "shape %s cannot be broadcast to %s", TG__SHAPE(b1, t),
                        tg_shape_str(b2, sizeof b2, ndim, shape));
}

tg_tensor *tg_tensor_expand(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape)
{
    TG__CHECK_NULL("tg_tensor_expand", t);
    tg_tensor v;
    VIEW_RETURN(ar, v, tg__expand_into(&v, t, ndim, shape, "tg_tensor_expand"));
}

tg_tensor *tg_tensor_squeeze(tg_arena *ar, const tg_tensor *t, int dim)
{
    TG__CHECK_NULL("tg_tensor_squeeze", t);
    char s[TG__SHAPE_STR];
    int d = dim == TG_ALL_AXES ? -1 : tg__axis(dim, t->ndim);
    if (dim != TG_ALL_AXES && (d < 0 || t->shape[d] != 1))
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_squeeze", "axis %d of shape %s is not of size 1", dim,
                        TG__SHAPE(s, t));
    tg_tensor v = *t;
    v.ndim = 0;
    for (int i = 0; i < t->ndim; i++) {
        bool drop = d < 0 ? t->shape[i] == 1 : i == d;
        if (!drop) {
            v.shape[v.ndim] = t->shape[i];
            v.strides[v.ndim] = t->strides[i];
            v.ndim++;
        }
    }
    return tg__header_like(ar, &v);
}

tg_tensor *tg_tensor_unsqueeze(tg_arena *ar, const tg_tensor *t, int dim)
{
    TG__CHECK_NULL("tg_tensor_unsqueeze", t);
    char s[TG__SHAPE_STR];
    int d = tg__axis(dim, t->ndim + 1);
    if (d < 0 || t->ndim >= TG_MAX_DIMS)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_unsqueeze", "axis %d for shape %s", dim, TG__SHAPE(s, t));
    tg_tensor v = *t;
    for (int i = t->ndim; i > d; i--) {
        v.shape[i] = t->shape[i - 1];
        v.strides[i] = t->strides[i - 1];
    }
    v.shape[d] = 1;
    v.strides[d] = d < t->ndim ? t->shape[d] * t->strides[d] : 1;
    v.ndim++;
    return tg__header_like(ar, &v);
}

tg_tensor *tg_tensor_as_strided(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape,
                                const int64_t *strides, int64_t offset)
{
    const char *fn = "tg_tensor_as_strided";
    TG__CHECK_NULL(fn, t);
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && (!shape || !strides)))
        return TG__FAIL(TG_ERR_ARG, fn, "%d axes (0..%d allowed, with a shape and strides)", ndim,
                        TG_MAX_DIMS);
    char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
    bool empty = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0 || strides[i] < 0)
            return TG__FAIL(TG_ERR_ARG, fn, "shape %s, strides %s: sizes and strides must be >= 0",
                            tg_shape_str(b1, sizeof b1, ndim, shape),
                            tg_shape_str(b2, sizeof b2, ndim, strides));
        empty = empty || shape[i] == 0;
    }
    /* the last element reached, each step checked against the storage before it is
     * taken, so nothing overflows */
    int64_t have = (int64_t)(t->storage->nbytes / tg_dtype_size(t->dtype)), last = offset;
    bool fits = offset >= 0 && (empty ? offset <= have : offset < have);
    for (int i = 0; fits && !empty && i < ndim; i++) {
        if (shape[i] > 1 && strides[i] > 0) {
            fits = shape[i] - 1 <= (have - 1 - last) / strides[i];
            last += fits ? (shape[i] - 1) * strides[i] : 0;
        }
    }
    if (!fits)
        return TG__FAIL(TG_ERR_SHAPE, fn, "shape %s, strides %s and offset %lld reach past the end of "
                        "a storage of %lld %s elements", tg_shape_str(b1, sizeof b1, ndim, shape),
                        tg_shape_str(b2, sizeof b2, ndim, strides), (long long)offset, (long long)have,
                        tg_dtype_name(t->dtype));
    tg_tensor v = *t;
    v.ndim = ndim;
    v.offset = offset;
    for (int i = 0; i < ndim; i++) {
        v.shape[i] = shape[i];
        v.strides[i] = strides[i];
    }
    return tg__header_like(ar, &v);
}
