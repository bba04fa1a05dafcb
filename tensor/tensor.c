/* tensor/tensor.c — tensor headers and storages: creation, freeing, copying between
 * layouts and dtypes, element access. */
#include "internal.h"

#include <math.h>
#include <string.h>

size_t tg_dtype_size(tg_dtype dt)
{
    static const size_t sizes[] = {4, 8, 1, 4};
    return (unsigned)dt < TG_DTYPE_COUNT ? sizes[dt] : 0;
}

const char *tg_dtype_name(tg_dtype dt)
{
    static const char *const names[] = {"f32", "f64", "u8", "i32"};
    return (unsigned)dt < TG_DTYPE_COUNT ? names[dt] : "?";
}

int64_t tg_tensor_numel(const tg_tensor *t)
{
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++)
        n *= t->shape[i];
    return n;
}

bool tg_tensor_is_contiguous(const tg_tensor *t)
{
    if (tg_tensor_numel(t) == 0)
        return true; /* no element is out of place */
    int64_t expect = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->strides[i] != expect)
            return false;
        expect *= t->shape[i];
    }
    return true;
}

bool tg_tensor_same_shape(const tg_tensor *a, const tg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return false;
    return true;
}

void *tg_tensor_data(const tg_tensor *t) { return tg__ptr(t); }
size_t tg_storage_nbytes(const tg_storage *s) { return s->nbytes; }
int tg_storage_refcount(const tg_storage *s) { return atomic_load(&s->refcount); }
uint64_t tg_tensor_version(const tg_tensor *t) { return t->storage->version; }
void tg_tensor_bump_version(tg_tensor *t) { tg__written(t); }

void tg__set_contiguous_strides(tg_tensor *t)
{
    /* a size-0 axis counts as 1, as in PyTorch: [2,0] gets strides [1,1], not [0,1],
     * which would read as a broadcast axis */
    int64_t s = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        t->strides[i] = s;
        s *= t->shape[i] ? t->shape[i] : 1;
    }
}

/* ------------------------------------------------------------------ headers, storages */

static tg_tensor *header_alloc(tg_arena *ar)
{
    tg_tensor *t = ar ? tg_arena_alloc(ar, sizeof *t, _Alignof(tg_tensor))
                      : tg__alloc(sizeof *t, _Alignof(tg_tensor));
    if (t) {
        memset(t, 0, sizeof *t);
        t->arena = ar;
    }
    return t;
}

static void storage_release(tg_storage *s)
{
    if (!s || atomic_load(&s->refcount) < 0)
        return;
    if (atomic_fetch_sub(&s->refcount, 1) == 1)
        tg__free(s); /* one block: the storage header, then (unless borrowed) the data */
}

static void storage_retain(tg_storage *s)
{
    if (s && atomic_load(&s->refcount) >= 0)
        atomic_fetch_add(&s->refcount, 1);
}

/* Storage header and data in one allocation; the data starts 64 bytes in, aligned. */
#define STORAGE_HEADER 64
_Static_assert(sizeof(tg_storage) <= STORAGE_HEADER, "storage header must fit its slot");

static tg_storage *storage_new(tg_arena *ar, size_t nbytes, void *borrowed)
{
    size_t total = STORAGE_HEADER + (borrowed ? 0 : nbytes);
    tg_storage *s = ar ? tg_arena_alloc(ar, total, 64) : tg__alloc(total, 64);
    if (!s)
        return NULL;
    s->data = borrowed ? borrowed : (char *)s + STORAGE_HEADER;
    s->nbytes = nbytes;
    s->borrowed = borrowed != NULL;
    s->version = 0;
    atomic_init(&s->refcount, ar ? -1 : 1);
    return s;
}

static bool check_shape(const char *fn, tg_dtype dt, int ndim, const int64_t *shape, size_t *nbytes)
{
    if ((unsigned)dt >= TG_DTYPE_COUNT) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "unknown dtype %d", (int)dt);
        return false;
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg_set_error_in(TG_ERR_ARG, fn, "%d axes (0..%d allowed, with a shape)", ndim, TG_MAX_DIMS);
        return false;
    }
    uint64_t n = 1, nz = 1; /* nz: the product of the nonzero sizes, which bounds the strides */
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0) {
            char b[TG__SHAPE_STR];
            tg_set_error_in(TG_ERR_SHAPE, fn, "negative size in shape %s",
                         tg_shape_str(b, sizeof b, ndim, shape));
            return false;
        }
        if (shape[i] && nz > (UINT64_C(1) << 46) / (uint64_t)shape[i]) {
            char b[TG__SHAPE_STR];
            tg_set_error_in(TG_ERR_SHAPE, fn, "shape %s is too large",
                         tg_shape_str(b, sizeof b, ndim, shape));
            return false;
        }
        n *= (uint64_t)shape[i];
        nz *= shape[i] ? (uint64_t)shape[i] : 1;
    }
    *nbytes = (size_t)n * tg_dtype_size(dt);
    return true;
}

static tg_tensor *make(const char *fn, tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape,
                       void *borrowed)
{
    size_t nbytes;
    if (!check_shape(fn, dt, ndim, shape, &nbytes))
        return NULL;
    tg_tensor *t = header_alloc(ar);
    if (!t)
        return NULL;
    t->storage = storage_new(ar, nbytes, borrowed);
    if (!t->storage) {
        if (!ar)
            tg__free(t);
        return NULL;
    }
    t->dtype = dt;
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++)
        t->shape[i] = shape[i];
    tg__set_contiguous_strides(t);
    return t;
}

tg_tensor *tg__new(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape)
{
    return make("tg_tensor_empty", ar, dt, ndim, shape, NULL);
}

tg_tensor *tg__new_named(const char *fn, tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape)
{
    return make(fn, ar, dt, ndim, shape, NULL);
}

tg_tensor *tg__header_like(tg_arena *ar, const tg_tensor *view)
{
    tg_tensor *t = header_alloc(ar);
    if (!t)
        return NULL;
    *t = *view;
    t->arena = ar;
    t->user = NULL;
    t->user_free = NULL;
    if (!ar) /* an arena header is never freed, so only a heap header may hold a reference */
        storage_retain(t->storage);
    return t;
}

void tg_tensor_free(tg_tensor *t)
{
    if (!t || t->arena)
        return;
    if (t->user_free)
        t->user_free(t);
    storage_release(t->storage);
    tg__free(t);
}

/* ------------------------------------------------------------------ creation */

tg_tensor *tg_tensor_empty(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape)
{
    return make("tg_tensor_empty", ar, dt, ndim, shape, NULL);
}

tg_tensor *tg_tensor_full(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape, double value)
{
    tg_tensor *t = make("tg_tensor_full", ar, dt, ndim, shape, NULL);
    if (t)
        tg_tensor_fill_(t, value);
    return t;
}

tg_tensor *tg_tensor_zeros(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape)
{
    tg_tensor *t = make("tg_tensor_zeros", ar, dt, ndim, shape, NULL);
    if (t)
        memset(t->storage->data, 0, t->storage->nbytes); /* 0.0 is all-zero bits */
    return t;
}

tg_tensor *tg_tensor_ones(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape)
{
    return tg_tensor_full(ar, dt, ndim, shape, 1.0);
}

tg_tensor *tg_tensor_scalar(tg_arena *ar, tg_dtype dt, double value)
{
    return tg_tensor_full(ar, dt, 0, NULL, value);
}

tg_tensor *tg_tensor_arange(tg_arena *ar, tg_dtype dt, double start, double stop, double step)
{
    if (step == 0 || !isfinite(start) || !isfinite(stop) || !isfinite(step))
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_arange", "start %g, stop %g, step %g: step must be "
                                    "nonzero and all finite", start, stop, step);
    double count = ceil((stop - start) / step);
    if (count > 0x1p46)
        return TG__FAIL(TG_ERR_SHAPE, "tg_tensor_arange", "start %g, stop %g, step %g: %g elements is "
                                      "too many", start, stop, step, count);
    int64_t n = count > 0 ? (int64_t)count : 0;
    tg_tensor *t = make("tg_tensor_arange", ar, dt, 1, &n, NULL);
    if (!t)
        return NULL;
    size_t es = tg_dtype_size(dt);
    for (int64_t i = 0; i < n; i++)
        tg__store(dt, (char *)t->storage->data + (size_t)i * es, start + (double)i * step);
    return t;
}

tg_tensor *tg_tensor_from_data(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape,
                               const void *data)
{
    if (!data)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_from_data", "data is NULL");
    tg_tensor *t = make("tg_tensor_from_data", ar, dt, ndim, shape, NULL);
    if (t && t->storage->nbytes)
        memcpy(t->storage->data, data, t->storage->nbytes);
    return t;
}

tg_tensor *tg_tensor_borrow(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape, void *data)
{
    if (!data)
        return TG__FAIL(TG_ERR_ARG, "tg_tensor_borrow", "data is NULL");
    return make("tg_tensor_borrow", ar, dt, ndim, shape, data);
}

/* ------------------------------------------------------------------ copying */

static void copy_row(int64_t n, char **p, const int64_t *s, void *ctx)
{
    const tg_dtype *dts = ctx; /* dst, src */
    tg_dtype dd = dts[0], sd = dts[1];
    if (dd == sd) {
        size_t es = tg_dtype_size(dd);
        if (s[0] == (int64_t)es && s[1] == (int64_t)es) {
            memmove(p[0], p[1], (size_t)n * es);
            return;
        }
        if (dd == TG_F32) {
            for (int64_t i = 0; i < n; i++)
                *(float *)(p[0] + i * s[0]) = *(const float *)(p[1] + i * s[1]);
            return;
        }
        if (dd == TG_F64) {
            for (int64_t i = 0; i < n; i++)
                *(double *)(p[0] + i * s[0]) = *(const double *)(p[1] + i * s[1]);
            return;
        }
    }
    for (int64_t i = 0; i < n; i++)
        tg__store(dd, p[0] + i * s[0], tg__load(sd, p[1] + i * s[1]));
}

tg_status tg_tensor_copy_(tg_tensor *dst, const tg_tensor *src)
{
    TG__CHECK_STATUS("tg_tensor_copy_", dst && src);
    tg_tensor bsrc;
    tg_status st = tg__expand_into(&bsrc, src, dst->ndim, dst->shape, "tg_tensor_copy_");
    if (st)
        return st;
    tg__written(dst);
    if (tg_tensor_numel(dst) == 0)
        return TG_OK;
    const tg_tensor *ops[2] = {dst, &bsrc};
    tg__iter it;
    tg__iter_init(&it, 2, ops);
    tg_dtype dts[2] = {dst->dtype, src->dtype};
    tg__iter_run(&it, copy_row, dts);
    return TG_OK;
}

tg_status tg_tensor_fill_(tg_tensor *dst, double value)
{
    TG__CHECK_STATUS("tg_tensor_fill_", dst);
    union { double f64; float f32; int32_t i32; uint8_t u8; } one; /* aligned for any dtype */
    tg_tensor v = {.dtype = dst->dtype, .ndim = 0};
    tg_storage s = {.data = &one, .nbytes = sizeof one};
    atomic_init(&s.refcount, -1);
    v.storage = &s;
    tg__store(dst->dtype, (char *)&one, value);
    return tg_tensor_copy_(dst, &v);
}

tg_tensor *tg_tensor_clone(tg_arena *ar, const tg_tensor *t)
{
    TG__CHECK_NULL("tg_tensor_clone", t);
    tg_tensor *c = make("tg_tensor_clone", ar, t->dtype, t->ndim, t->shape, NULL);
    if (c && tg_tensor_copy_(c, t) != TG_OK) {
        tg_tensor_free(c);
        return NULL;
    }
    return c;
}

tg_tensor *tg_tensor_contiguous(tg_arena *ar, const tg_tensor *t)
{
    TG__CHECK_NULL("tg_tensor_contiguous", t);
    return tg_tensor_is_contiguous(t) ? tg__header_like(ar, t) : tg_tensor_clone(ar, t);
}

tg_tensor *tg_tensor_to_dtype(tg_arena *ar, const tg_tensor *t, tg_dtype dt)
{
    TG__CHECK_NULL("tg_tensor_to_dtype", t);
    tg_tensor *c = make("tg_tensor_to_dtype", ar, dt, t->ndim, t->shape, NULL);
    if (c && tg_tensor_copy_(c, t) != TG_OK) {
        tg_tensor_free(c);
        return NULL;
    }
    return c;
}

/* ------------------------------------------------------------------ elements */

static char *element(const char *fn, const tg_tensor *t, const int64_t *index)
{
    int64_t off = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (index[i] < 0 || index[i] >= t->shape[i]) {
            char b[TG__SHAPE_STR];
            tg_set_error_in(TG_ERR_ARG, fn, "index %lld is out of range for axis %d of shape %s",
                         (long long)index[i], i, TG__SHAPE(b, t));
            return NULL;
        }
        off += index[i] * t->strides[i];
    }
    return tg__ptr(t) + off * (int64_t)tg_dtype_size(t->dtype);
}

double tg_tensor_get(const tg_tensor *t, const int64_t *index)
{
    if (!t) {
        tg__null_input("tg_tensor_get");
        return NAN;
    }
    char *p = element("tg_tensor_get", t, index);
    return p ? tg__load(t->dtype, p) : NAN;
}

tg_status tg_tensor_set(tg_tensor *t, const int64_t *index, double value)
{
    TG__CHECK_STATUS("tg_tensor_set", t);
    char *p = element("tg_tensor_set", t, index);
    if (!p)
        return tg_last_status();
    tg__store(t->dtype, p, value);
    tg__written(t);
    return TG_OK;
}

double tg_tensor_item(const tg_tensor *t)
{
    if (!t) {
        tg__null_input("tg_tensor_item");
        return NAN;
    }
    if (tg_tensor_numel(t) != 1) {
        char b[TG__SHAPE_STR];
        tg_set_error_in(TG_ERR_SHAPE, "tg_tensor_item", "shape %s has %lld elements, not 1",
                     TG__SHAPE(b, t), (long long)tg_tensor_numel(t));
        return NAN;
    }
    return tg__load(t->dtype, tg__ptr(t));
}
