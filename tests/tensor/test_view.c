/* Views and strides: every view shares storage and reads the right elements; reshape
 * copies only when it must; copy_ moves data between any two layouts and dtypes. */
#include "check_util.h"

static tg_tensor *iota(tg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)n * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = (double)i;
    tg_tensor *t = tt_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

static double at(const tg_tensor *t, int64_t i0, int64_t i1, int64_t i2)
{
    int64_t idx[3] = {i0, i1, i2};
    return tg_tensor_get(t, idx);
}

START_TEST(test_create)
{
    tg_tensor *z = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    tg_tensor *o = tg_tensor_ones(NULL, TG_F64, TG_DIMS(4));
    tg_tensor *f = tg_tensor_full(NULL, TG_I32, TG_DIMS(2, 2), -7.9);
    tg_tensor *s = tg_tensor_scalar(NULL, TG_F64, 2.5);
    tg_tensor *a = tg_tensor_arange(NULL, TG_F32, 1, 2, 0.25);
    tg_tensor *d = tg_tensor_arange(NULL, TG_I32, 5, 0, -2);
    tt_assert_shape(z, 2, 3);
    ck_assert(tg_tensor_is_contiguous(z));
    ck_assert_int_eq(z->strides[0], 3);
    ck_assert_double_eq(at(z, 1, 2, 0), 0);
    ck_assert_double_eq(tg_tensor_get(o, (int64_t[]){3}), 1);
    ck_assert_double_eq(tg_tensor_get(f, (int64_t[]){1, 1}), -7); /* truncation toward zero */
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_double_eq(tg_tensor_item(s), 2.5);
    tt_assert_close(a, ((double[]){1, 1.25, 1.5, 1.75}), 0);
    tt_assert_close(d, ((double[]){5, 3, 1}), 0);
    ck_assert_uint_eq((uintptr_t)tg_tensor_data(z) % 64, 0);
    tg_tensor *e = tg_tensor_empty(NULL, TG_U8, TG_DIMS(0, 5));
    ck_assert_int_eq(tg_tensor_numel(e), 0);
    tg_tensor *list[] = {z, o, f, s, a, d, e};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_from_data_and_borrow)
{
    float buf[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *c = tg_tensor_from_data(NULL, TG_F32, TG_DIMS(2, 3), buf);
    tg_tensor *b = tg_tensor_borrow(NULL, TG_F32, TG_DIMS(3, 2), buf);
    buf[0] = 100; /* the copy keeps 1, the borrowed view sees 100 */
    ck_assert_double_eq(at(c, 0, 0, 0), 1);
    ck_assert_double_eq(tg_tensor_get(b, (int64_t[]){0, 0}), 100);
    ck_assert_double_eq(tg_tensor_get(b, (int64_t[]){2, 1}), 6);
    tg_tensor_free(c);
    tg_tensor_free(b); /* must not free buf */
    ck_assert_float_eq(buf[5], 6);
}
END_TEST

START_TEST(test_refcount_shared_storage)
{
    tg_tensor *t = iota(TG_F32, TG_DIMS(2, 3));
    tg_tensor *v = tg_tensor_transpose(NULL, t, 0, 1);
    ck_assert_ptr_eq(v->storage, t->storage);
    ck_assert_int_eq(tg_storage_refcount(t->storage), 2);
    tg_tensor_free(t); /* the view keeps the storage alive */
    ck_assert_double_eq(tg_tensor_get(v, (int64_t[]){2, 1}), 5);
    tg_tensor_set(v, (int64_t[]){0, 1}, 42);
    ck_assert_double_eq(tg_tensor_get(v, (int64_t[]){0, 1}), 42);
    tg_tensor_free(v);
}
END_TEST

START_TEST(test_permute_transpose)
{
    tg_tensor *t = iota(TG_F64, TG_DIMS(2, 3, 4));
    tg_tensor *p = tg_tensor_permute(NULL, t, TG_AXES(2, 0, 1));
    tt_assert_shape(p, 4, 2, 3);
    ck_assert(!tg_tensor_is_contiguous(p));
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 3; j++)
            for (int k = 0; k < 4; k++)
                ck_assert_double_eq(at(p, k, i, j), at(t, i, j, k));
    tg_tensor *tr = tg_tensor_transpose(NULL, t, -1, 0);
    tt_assert_shape(tr, 4, 3, 2);
    ck_assert_double_eq(at(tr, 3, 1, 1), at(t, 1, 1, 3));
    ck_assert_ptr_null(tg_tensor_permute(NULL, t, TG_AXES(0, 0, 1)));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_permute", "axis list is not a permutation of 0..2");
    tg_tensor_free(t);
    tg_tensor_free(p);
    tg_tensor_free(tr);
}
END_TEST

START_TEST(test_slice_narrow_select)
{
    tg_tensor *t = iota(TG_F32, TG_DIMS(4, 10));
    tg_tensor *s = tg_tensor_slice(NULL, t, 1, 1, 10, 3); /* columns 1, 4, 7 */
    tt_assert_shape(s, 4, 3);
    ck_assert_double_eq(tg_tensor_get(s, (int64_t[]){2, 2}), 27);
    tg_tensor *neg = tg_tensor_slice(NULL, t, -1, -3, 100, 1); /* python: t[:, -3:] */
    tt_assert_shape(neg, 4, 3);
    ck_assert_double_eq(tg_tensor_get(neg, (int64_t[]){0, 0}), 7);
    tg_tensor *empty = tg_tensor_slice(NULL, t, 0, 3, 1, 1);
    tt_assert_shape(empty, 0, 10);
    tg_tensor *n = tg_tensor_narrow(NULL, t, 0, 1, 2);
    tt_assert_shape(n, 2, 10);
    ck_assert_double_eq(tg_tensor_get(n, (int64_t[]){0, 0}), 10);
    tg_tensor *row = tg_tensor_select(NULL, t, 0, -1);
    tt_assert_shape(row, 10);
    ck_assert_double_eq(tg_tensor_get(row, (int64_t[]){9}), 39);
    tg_tensor *col = tg_tensor_select(NULL, s, 1, 1); /* a view of a view */
    tt_assert_shape(col, 4);
    tt_assert_close(col, ((double[]){4, 14, 24, 34}), 0);
    ck_assert_ptr_null(tg_tensor_narrow(NULL, t, 0, 3, 2));
    tt_expect_last(TG_ERR_ARG, "tg_tensor_narrow", "[3, 5) along axis 0 is outside shape [4,10]");
    ck_assert_ptr_null(tg_tensor_select(NULL, t, 2, 0));
    tg_tensor *list[] = {t, s, neg, empty, n, row, col};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_expand_squeeze_unsqueeze)
{
    tg_tensor *t = iota(TG_F32, TG_DIMS(3, 1));
    tg_tensor *e = tg_tensor_expand(NULL, t, TG_DIMS(2, 3, 4));
    tt_assert_shape(e, 2, 3, 4);
    ck_assert_int_eq(e->strides[0], 0);
    ck_assert_int_eq(e->strides[2], 0);
    ck_assert_double_eq(at(e, 1, 2, 3), 2);
    ck_assert_ptr_null(tg_tensor_expand(NULL, t, TG_DIMS(2, 4)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_expand", "shape [3,1] cannot be broadcast to [2,4]");
    tg_tensor *u = tg_tensor_unsqueeze(NULL, t, 0);
    tt_assert_shape(u, 1, 3, 1);
    tg_tensor *u2 = tg_tensor_unsqueeze(NULL, t, -1);
    tt_assert_shape(u2, 3, 1, 1);
    tg_tensor *sq = tg_tensor_squeeze(NULL, u, TG_ALL_AXES);
    tt_assert_shape(sq, 3);
    tg_tensor *sq1 = tg_tensor_squeeze(NULL, u, 0);
    tt_assert_shape(sq1, 3, 1);
    ck_assert_ptr_null(tg_tensor_squeeze(NULL, u, 1));
    tg_tensor *last = tg_tensor_squeeze(NULL, u, -1); /* -1 is the last axis, as everywhere */
    tt_assert_shape(last, 1, 3);
    tg_tensor_free(last);
    tg_tensor *list[] = {t, e, u, u2, sq, sq1};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_reshape_view_or_copy)
{
    tg_tensor *t = iota(TG_F32, TG_DIMS(2, 3, 4));
    tg_tensor *r = tg_tensor_reshape(NULL, t, TG_DIMS(6, -1));
    tt_assert_shape(r, 6, 4);
    ck_assert_ptr_eq(r->storage, t->storage); /* a view */
    tg_tensor *tr = tg_tensor_transpose(NULL, t, 1, 2); /* [2,4,3], not contiguous */
    /* merging the last two axes of a transposed tensor needs a copy */
    ck_assert_ptr_null(tg_tensor_view(NULL, tr, TG_DIMS(2, 12)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_view",
                   "a tensor of shape [2,4,3] with these strides cannot be");
    tg_tensor *c = tg_tensor_reshape(NULL, tr, TG_DIMS(2, 12));
    ck_assert_ptr_ne(c->storage, t->storage);
    ck_assert(tg_tensor_is_contiguous(c));
    ck_assert_double_eq(tg_tensor_get(c, (int64_t[]){1, 4}), at(tr, 1, 1, 1));
    /* splitting the leading axis of the transposed tensor is still a view */
    tg_tensor *v = tg_tensor_view(NULL, tr, TG_DIMS(1, 2, 4, 3));
    ck_assert_ptr_nonnull(v);
    ck_assert_ptr_eq(v->storage, t->storage);
    tg_tensor *f = tg_tensor_flatten(NULL, tr);
    tt_assert_shape(f, 24);
    ck_assert_double_eq(tg_tensor_get(f, (int64_t[]){1}), 4);
    ck_assert_ptr_null(tg_tensor_reshape(NULL, t, TG_DIMS(5, -1)));
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_reshape", "cannot reshape [2,3,4]");
    tg_tensor *list[] = {t, r, tr, c, v, f};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_copy_between_layouts_and_dtypes)
{
    tg_tensor *t = iota(TG_F64, TG_DIMS(3, 4));
    tg_tensor *tr = tg_tensor_transpose(NULL, t, 0, 1);
    tg_tensor *dst = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(4, 3));
    ck_assert_int_eq(tg_tensor_copy_(dst, tr), TG_OK);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 3; j++)
            ck_assert_double_eq(tg_tensor_get(dst, (int64_t[]){i, j}), 4 * j + i);
    /* into a strided destination: every other column of a wider tensor */
    tg_tensor *wide = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 8));
    tg_tensor *cols = tg_tensor_slice(NULL, wide, 1, 0, 8, 2);
    ck_assert_int_eq(tg_tensor_copy_(cols, t), TG_OK);
    ck_assert_double_eq(tg_tensor_get(wide, (int64_t[]){2, 6}), 11);
    ck_assert_double_eq(tg_tensor_get(wide, (int64_t[]){2, 7}), 0);
    /* broadcast source */
    tg_tensor *row = tg_tensor_arange(NULL, TG_F64, 0, 4, 1);
    ck_assert_int_eq(tg_tensor_copy_(t, row), TG_OK);
    ck_assert_double_eq(tg_tensor_get(t, (int64_t[]){2, 3}), 3);
    /* u8 saturates, f32 -> i32 truncates */
    tg_tensor *fl = tt_tensor(TG_F32, TG_DIMS(4), (double[]){-3.7, 300, 2.9, NAN});
    tg_tensor *u8 = tg_tensor_to_dtype(NULL, fl, TG_U8);
    tt_assert_close(u8, ((double[]){0, 255, 2, 0}), 0);
    tg_tensor *i32 = tg_tensor_to_dtype(NULL, fl, TG_I32);
    tt_assert_close(i32, ((double[]){-3, 300, 2, 0}), 0);
    /* contiguous() returns a view when it can and a copy when it must */
    tg_tensor *same = tg_tensor_contiguous(NULL, t);
    ck_assert_ptr_eq(same->storage, t->storage);
    tg_tensor *copy = tg_tensor_contiguous(NULL, tr);
    ck_assert_ptr_ne(copy->storage, t->storage);
    ck_assert(tg_tensor_is_contiguous(copy));
    ck_assert_int_ne(tg_tensor_copy_(dst, wide), TG_OK);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_copy_", "shape [3,8] cannot be broadcast to [4,3]");
    tg_tensor *list[] = {t, tr, dst, wide, cols, row, fl, u8, i32, same, copy};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_large_strided_copy_threads)
{
    /* above the parallel threshold, a transposed copy is the same with 1 and 2 threads */
    tg_tensor *t = iota(TG_F32, TG_DIMS(300, 257));
    tg_tensor *tr = tg_tensor_transpose(NULL, t, 0, 1);
    tg_set_num_threads(1);
    tg_tensor *a = tg_tensor_clone(NULL, tr);
    tg_set_num_threads(2);
    tg_tensor *b = tg_tensor_clone(NULL, tr);
    ck_assert_int_eq(memcmp(tg_tensor_data(a), tg_tensor_data(b), 300 * 257 * sizeof(float)), 0);
    ck_assert_double_eq(tg_tensor_get(b, (int64_t[]){256, 299}), 299 * 257 + 256);
    tg_tensor_free(t);
    tg_tensor_free(tr);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_parallel_worth)
{
    tg_set_num_threads(2);
    ck_assert(tg_parallel_worth(32768));
    ck_assert(!tg_parallel_worth(32767)); /* too little work */
    bool nested = true;
#pragma omp parallel num_threads(2)
#pragma omp single
    nested = tg_parallel_worth(1 << 20); /* already in a parallel region */
    ck_assert(!nested);
    tg_set_num_threads(1);
    ck_assert(!tg_parallel_worth(1 << 20)); /* one thread */
    tg_set_num_threads(2);
}
END_TEST

START_TEST(test_arena_views)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *t = tg_tensor_ones(ar, TG_F32, TG_DIMS(5, 6));
    tg_tensor *v = tg_tensor_transpose(ar, t, 0, 1);
    ck_assert_ptr_eq(v->arena, ar);
    ck_assert_int_eq(tg_storage_refcount(t->storage), -1);
    tg_tensor_free(v); /* ignored for arena tensors */
    ck_assert_double_eq(tg_tensor_get(v, (int64_t[]){5, 4}), 1);
    tg_arena_free(ar);
}
END_TEST

/* an arena header is never freed, so it must not hold a reference to heap storage */
START_TEST(test_arena_view_of_heap_tensor)
{
    tg_tensor *w = tg_tensor_ones(NULL, TG_F32, TG_DIMS(4, 4));
    tg_arena *ar = tg_arena_new(0);
    for (int step = 0; step < 3; step++) {
        ck_assert_ptr_nonnull(tg_tensor_transpose(ar, w, 0, 1));
        tg_arena_reset(ar);
    }
    ck_assert_int_eq(tg_storage_refcount(w->storage), 1);
    tg_arena_free(ar);
    tg_tensor_free(w);
}
END_TEST

/* sizes and steps near INT64_MAX: no signed overflow, the right shape or an error */
START_TEST(test_extreme_sizes)
{
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(10));
    tg_tensor *s = tg_tensor_slice(NULL, t, 0, 0, 10, INT64_MAX); /* Python's x[::sys.maxsize] */
    tt_assert_shape(s, 1);
    ck_assert_ptr_null(tg_tensor_narrow(NULL, t, 0, 5, INT64_MAX));
    ck_assert_ptr_null(tg_tensor_empty(NULL, TG_F32, TG_DIMS(0, INT64_C(1) << 40, INT64_C(1) << 40)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_ptr_null(tg_tensor_arange(NULL, TG_F32, 0, 1e300, 1));
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    tg_tensor_free(s);
    tg_tensor_free(t);
}
END_TEST

/* The storage's version: 0 when made, shared by every view, one more for each write
 * through the library into existing elements, and nothing for reads or fresh results. */
START_TEST(test_version_counts_writes)
{
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    tg_tensor *v = tg_tensor_transpose(NULL, t, 0, 1), *src = tg_tensor_ones(NULL, TG_F32, TG_DIMS(3));
    ck_assert_uint_eq(tg_tensor_version(t), 0);
    tg_rng g = tg_rng_new(0);
    uint64_t n = 0;
    /* each call must succeed and count once, on t and its view v alike */
#define WRITE(call)                                        \
    do {                                                   \
        ck_assert_int_eq((call), TG_OK);                   \
        ck_assert_uint_eq(tg_tensor_version(t), ++n);      \
        ck_assert_uint_eq(tg_tensor_version(v), n);        \
    } while (0)
    WRITE(tg_tensor_fill_(v, 1));
    WRITE(tg_tensor_copy_(t, src));
    WRITE(tg_tensor_axpy_(v, 2, v));
    WRITE(tg_tensor_set(t, (int64_t[]){0, 0}, 3));
    WRITE(tg_tensor_unary_out(t, TG_NEG, t, 0, 0));
    WRITE(tg_tensor_binary_out(t, TG_MUL, t, src));
    WRITE(tg_tensor_uniform_(v, &g, 0, 1));
    WRITE(tg_tensor_bernoulli_(t, &g, 0.5));
    tg_tensor *sq = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 2));
    ck_assert_int_eq(tg_tensor_matmul_out(sq, t, v, 1, 0), TG_OK);
    ck_assert_uint_eq(tg_tensor_version(sq), 1);
    tg_tensor_bump_version(t);
    ck_assert_uint_eq(tg_tensor_version(v), ++n);
#undef WRITE
    /* reads and new tensors leave it alone; a failed write too */
    tg_tensor *c = tg_tensor_clone(NULL, t), *e = tg_tensor_exp(NULL, t);
    ck_assert_ptr_nonnull(c);
    ck_assert_ptr_nonnull(e);
    ck_assert_int_ne(tg_tensor_copy_(t, sq), TG_OK);
    ck_assert_uint_eq(tg_tensor_version(t), n);
    tg_tensor_fill_(c, 0);
    ck_assert_uint_eq(tg_tensor_version(t), n);
    tg_tensor_free(c);
    tg_tensor_free(e);
    tg_tensor_free(sq);
    tg_tensor_free(src);
    tg_tensor_free(v);
    tg_tensor_free(t);
}
END_TEST

/* Any strides over a storage, bounds-checked against it; overlapping views read. */
START_TEST(test_as_strided)
{
    tg_tensor *t = iota(TG_F32, TG_DIMS(3, 4));
    tg_tensor *win = tg_tensor_as_strided(NULL, t, TG_DIMS(2, 2), (int64_t[]){4, 1}, 5); /* [1:3, 1:3] */
    ck_assert_ptr_nonnull(win);
    tt_assert_close(win, ((double[]){5, 6, 9, 10}), 0);
    ck_assert_ptr_eq(win->storage, t->storage);
    tg_tensor *rows = tg_tensor_as_strided(NULL, t, TG_DIMS(3, 2), (int64_t[]){0, 1}, 10); /* overlapping */
    tt_assert_close(rows, ((double[]){10, 11, 10, 11, 10, 11}), 0);
    tg_tensor *last = tg_tensor_as_strided(NULL, t, TG_DIMS(2, 2), (int64_t[]){1, 10}, 0); /* to the end */
    tt_assert_close(last, ((double[]){0, 10, 1, 11}), 0);
    tg_tensor *none = tg_tensor_as_strided(NULL, t, TG_DIMS(0, 5), (int64_t[]){1, 1}, 12); /* empty */
    ck_assert_ptr_nonnull(none);
    tt_expect_error(tg_tensor_as_strided(NULL, t, TG_DIMS(2, 2), (int64_t[]){1, 10}, 1),
                    TG_ERR_SHAPE, "tg_tensor_as_strided",
                    "shape [2,2], strides [1,10] and offset 1 reach past the end");
    tt_expect_error(tg_tensor_as_strided(NULL, t, TG_DIMS(1), (int64_t[]){1}, 12), TG_ERR_SHAPE,
                    "tg_tensor_as_strided",
                    "shape [1], strides [1] and offset 12 reach past the end of");
    tt_expect_error(tg_tensor_as_strided(NULL, t, TG_DIMS(2), (int64_t[]){-1}, 5), TG_ERR_ARG,
                    "tg_tensor_as_strided",
                    "shape [2], strides [-1]: sizes and strides must be >= 0");
    tt_expect_error(tg_tensor_as_strided(NULL, t, TG_DIMS(2, INT64_C(1) << 62), (int64_t[]){1, INT64_C(1) << 62}, 0),
                    TG_ERR_SHAPE, "tg_tensor_as_strided", "shape [2,4611686018427387904], strides");
    tg_tensor_free(none);
    tg_tensor_free(last);
    tg_tensor_free(rows);
    tg_tensor_free(win);
    tg_tensor_free(t);
}
END_TEST

/* An empty tensor gets PyTorch's strides (a size-0 axis counts as 1), is contiguous,
 * and has no broadcast axis, so every in-place write accepts it (and does nothing);
 * an expanded view of one with a genuine stride 0 is writable too: it has no element. */
START_TEST(test_empty_has_no_broadcast_axis)
{
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 0));
    ck_assert_int_eq(t->strides[0], 1);
    ck_assert_int_eq(t->strides[1], 1);
    ck_assert(tg_tensor_is_contiguous(t));
    tg_tensor *e = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3, 0));
    ck_assert_int_eq(e->strides[0], 3);
    ck_assert_int_eq(e->strides[1], 1);
    tg_tensor *row = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 0));
    tg_tensor *x = tg_tensor_expand(NULL, row, TG_DIMS(4, 0));
    ck_assert_int_eq(x->strides[0], 0);
    tg_rng g = tg_rng_new(0);
    tg_tensor *targets[3] = {t, e, x};
    for (int i = 0; i < 3; i++) {
        tg_tensor *u = targets[i];
        ck_assert_int_eq(tg_tensor_axpy_(u, 2, u), TG_OK);
        ck_assert_int_eq(tg_tensor_fill_(u, 1), TG_OK);
        ck_assert_int_eq(tg_tensor_unary_out(u, TG_EXP, u, 0, 0), TG_OK);
        ck_assert_int_eq(tg_tensor_binary_out(u, TG_ADD, u, u), TG_OK);
        ck_assert_int_eq(tg_tensor_normal_(u, &g, 0, 1), TG_OK);
    }
    tg_tensor *p = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3)), *q = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 0));
    tg_tensor *r = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 0));
    ck_assert_int_eq(tg_tensor_matmul_out(r, p, q, 1, 0), TG_OK); /* [2,3] @ [3,0] */
    tg_tensor_free(r);
    tg_tensor_free(q);
    tg_tensor_free(p);
    tg_tensor_free(x);
    tg_tensor_free(row);
    tg_tensor_free(e);
    tg_tensor_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/view");
    TCase *tc = tt_tcase("views");
    tcase_add_test(tc, test_create);
    tcase_add_test(tc, test_from_data_and_borrow);
    tcase_add_test(tc, test_refcount_shared_storage);
    tcase_add_test(tc, test_permute_transpose);
    tcase_add_test(tc, test_slice_narrow_select);
    tcase_add_test(tc, test_expand_squeeze_unsqueeze);
    tcase_add_test(tc, test_reshape_view_or_copy);
    tcase_add_test(tc, test_copy_between_layouts_and_dtypes);
    tcase_add_test(tc, test_large_strided_copy_threads);
    tcase_add_test(tc, test_arena_views);
    tcase_add_test(tc, test_arena_view_of_heap_tensor);
    tcase_add_test(tc, test_extreme_sizes);
    tcase_add_test(tc, test_parallel_worth);
    tcase_add_test(tc, test_version_counts_writes);
    tcase_add_test(tc, test_as_strided);
    tcase_add_test(tc, test_empty_has_no_broadcast_axis);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
