/* tests/tensor/test_matmul.c — tg_tensor_matmul and tg_tensor_matmul_out against a
 * triple loop in f64: every operand layout a view can have (transposed, sliced,
 * broadcast, strides BLIS cannot take), broadcast batch axes, alpha and beta, empty
 * dimensions, thread-count independence and the error messages. */
#include "check_util.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ helpers */

enum layout {
    CONTIGUOUS,  /* strides (c, 1) */
    TRANSPOSED,  /* a transposed [c, r]: strides (1, r) */
    STEP2,       /* every other row and column: strides (4c, 2) */
    ROWS_BCAST,  /* one row expanded: strides (0, 1) */
    SCALAR,      /* one element expanded: strides (0, 0) */
    STEP3,       /* columns step 3 of [r, 3c-2]: strides (3c-2, 3), which BLIS refuses */
    TRANS_STEP2, /* transposed of every other row: strides (1, 2r) */
    LAYOUTS
};

/* A random r x c matrix of dt viewed with the given layout (a heap view). */
static tg_tensor *operand(tg_dtype dt, int64_t r, int64_t c, enum layout l)
{
    tg_tensor *t = NULL;
    switch (l) {
    case CONTIGUOUS: return tt_rand_tensor(dt, 2, (int64_t[]){r, c});
    case TRANSPOSED:
        t = tt_rand_tensor(dt, 2, (int64_t[]){c, r});
        tt_become(&t, tg_tensor_transpose(NULL, t, 0, 1));
        break;
    case STEP2:
        t = tt_rand_tensor(dt, 2, (int64_t[]){2 * r, 2 * c});
        tt_become(&t, tg_tensor_slice(NULL, t, 0, 0, 2 * r, 2));
        tt_become(&t, tg_tensor_slice(NULL, t, 1, 0, 2 * c, 2));
        break;
    case ROWS_BCAST:
        t = tt_rand_tensor(dt, 2, (int64_t[]){1, c});
        tt_become(&t, tg_tensor_expand(NULL, t, 2, (int64_t[]){r, c}));
        break;
    case SCALAR:
        t = tt_rand_tensor(dt, 2, (int64_t[]){1, 1});
        tt_become(&t, tg_tensor_expand(NULL, t, 2, (int64_t[]){r, c}));
        break;
    case STEP3:
        t = tt_rand_tensor(dt, 2, (int64_t[]){r, c > 1 ? 3 * c - 2 : c});
        tt_become(&t, tg_tensor_slice(NULL, t, 1, 0, INT64_MAX, 3));
        break;
    case TRANS_STEP2:
        t = tt_rand_tensor(dt, 2, (int64_t[]){2 * c, r});
        tt_become(&t, tg_tensor_slice(NULL, t, 0, 0, 2 * c, 2));
        tt_become(&t, tg_tensor_transpose(NULL, t, 0, 1));
        break;
    default: ck_abort();
    }
    ck_assert_int_eq(t->shape[0], r);
    ck_assert_int_eq(t->shape[1], c);
    return t;
}

/* Element offset of the matrix at batch index idx (of an nb-axis batch) within the
 * row-major values of t, whose batch axes broadcast to it. */
static int64_t matrix_offset(const tg_tensor *t, const int64_t *idx, int nb)
{
    int tb = t->ndim - 2;
    int64_t off = 0;
    for (int d = 0; d < tb; d++)
        off = off * t->shape[d] + (t->shape[d] == 1 ? 0 : idx[d + nb - tb]);
    return off * t->shape[tb] * t->shape[tb + 1];
}

/* Checks c == alpha * a @ b + beta * c0 (c0: c's values before, or NULL for 0) to tol
 * relative to sum |alpha a b| + |beta c0| of each element. */
static void check_product(const tg_tensor *c, const tg_tensor *a, const tg_tensor *b, double alpha,
                          double beta, const double *c0, double tol)
{
    int nd = c->ndim, nb = nd - 2;
    int64_t m = c->shape[nb], n = c->shape[nb + 1], k = a->shape[a->ndim - 1];
    ck_assert_int_eq(m, a->shape[a->ndim - 2]);
    ck_assert_int_eq(n, b->shape[b->ndim - 1]);
    int64_t count = 1;
    for (int d = 0; d < nb; d++)
        count *= c->shape[d];
    double *av = tt_values(a), *bv = tt_values(b), *cv = tt_values(c);
    /* one assertion at the end: Check does a write() for every passing one */
    double worst = 0, got = 0, expected = 0;
    int64_t where = -1;
    for (int64_t t = 0; t < count; t++) {
        int64_t idx[TG_MAX_DIMS], r = t;
        for (int d = nb - 1; d >= 0; d--) {
            idx[d] = r % c->shape[d];
            r /= c->shape[d];
        }
        const double *am = av + matrix_offset(a, idx, nb), *bm = bv + matrix_offset(b, idx, nb);
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0, scale = 0;
                for (int64_t p = 0; p < k; p++) {
                    s += am[i * k + p] * bm[p * n + j];
                    scale += fabs(am[i * k + p] * bm[p * n + j]);
                }
                int64_t e = (t * m + i) * n + j;
                double want = alpha * s + (c0 ? beta * c0[e] : 0);
                scale = fabs(alpha) * scale + (c0 ? fabs(beta * c0[e]) : 0) + 1e-300;
                double err = fabs(cv[e] - want) / scale;
                if (!(err <= worst)) { /* NaN counts as the worst */
                    worst = err == err ? err : INFINITY;
                    where = e;
                    got = cv[e];
                    expected = want;
                }
            }
    }
    ck_assert_msg(worst <= tol, "element %lld of shape [..,%lld,%lld]: %.17g, expected %.17g "
                  "(error %g of the scale)", (long long)where, (long long)m, (long long)n, got,
                  expected, worst);
    free(av);
    free(bv);
    free(cv);
}

static double tol_of(tg_dtype dt) { return dt == TG_F32 ? 1e-5 : 1e-13; }

/* c = a @ b, checked against the reference; returns c (heap). */
static tg_tensor *product(const tg_tensor *a, const tg_tensor *b)
{
    tg_tensor *c = tg_tensor_matmul(NULL, a, b);
    ck_assert_msg(c != NULL, "%s", tg_last_error());
    ck_assert(tg_tensor_is_contiguous(c));
    check_product(c, a, b, 1, 0, NULL, tol_of(a->dtype));
    return c;
}

static const int64_t shapes[][3] = {/* M, K, N */
                                    {1, 1, 1},    {3, 5, 7},   {17, 33, 9}, {64, 288, 100},
                                    {100, 288, 32}, {1, 40, 30}, {30, 40, 1}, {130, 150, 120}};
#define NSHAPES (int)(sizeof shapes / sizeof shapes[0])

/* ------------------------------------------------------------------ 2-D products */

START_TEST(test_layouts)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    for (int s = 0; s < NSHAPES; s++)
        for (int la = 0; la < LAYOUTS; la++)
            for (int lb = 0; lb < LAYOUTS; lb++) {
                /* the big shapes with the plain layouts only, to stay quick */
                if (shapes[s][0] * shapes[s][1] * shapes[s][2] > 100000 && la > TRANSPOSED &&
                    lb > TRANSPOSED)
                    continue;
                int64_t m = shapes[s][0], k = shapes[s][1], n = shapes[s][2];
                tg_tensor *a = operand(dt, m, k, (enum layout)la);
                tg_tensor *b = operand(dt, k, n, (enum layout)lb);
                tg_tensor_free(product(a, b));
                tg_tensor_free(a);
                tg_tensor_free(b);
            }
}
END_TEST

START_TEST(test_empty_dims)
{
    /* M, N or K of 0: an empty product, or zeros for K = 0 */
    const int64_t cases[][3] = {{0, 3, 4}, {3, 4, 0}, {3, 0, 4}, {0, 0, 0}};
    for (int i = 0; i < 4; i++) {
        int64_t m = cases[i][0], k = cases[i][1], n = cases[i][2];
        tg_tensor *a = tt_rand_tensor(TG_F64, 2, (int64_t[]){m, k});
        tg_tensor *b = tt_rand_tensor(TG_F32, 2, (int64_t[]){k, n});
        tg_tensor *b64 = tg_tensor_to_dtype(NULL, b, TG_F64);
        tg_tensor *c = tg_tensor_matmul(NULL, a, b64);
        ck_assert_msg(c != NULL, "%s", tg_last_error());
        tt_assert_shape(c, m, n);
        double *cv = tt_values(c);
        for (int64_t e = 0; e < m * n; e++)
            ck_assert(cv[e] == 0);
        free(cv);
        tg_tensor *at = tg_tensor_transpose(NULL, a, 0, 1); /* [k, m] */
        tg_tensor *a32 = tg_tensor_to_dtype(NULL, at, TG_F32);
        tg_tensor *bt = tg_tensor_transpose(NULL, b, 0, 1);
        tg_tensor *d = tg_tensor_matmul(NULL, bt, a32); /* [n, k] x [k, m] */
        ck_assert_msg(d != NULL, "%s", tg_last_error());
        tt_assert_shape(d, n, m);
        tg_tensor *list[] = {a, b, b64, c, at, a32, bt, d};
        for (int j = 0; j < 8; j++)
            tg_tensor_free(list[j]);
    }
}
END_TEST

START_TEST(test_arena)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *a = tt_rand_tensor(TG_F32, 2, (int64_t[]){5, 6});
    tg_tensor *b = tt_rand_tensor(TG_F32, 2, (int64_t[]){6, 7});
    tg_tensor *c = tg_tensor_matmul(ar, a, b);
    ck_assert_msg(c != NULL, "%s", tg_last_error());
    ck_assert_ptr_eq(c->arena, ar);
    ck_assert_int_eq(tg_storage_refcount(c->storage), -1);
    check_product(c, a, b, 1, 0, NULL, 1e-5);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_arena_free(ar);
}
END_TEST

/* ------------------------------------------------------------------ batches */

START_TEST(test_batched)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    struct {
        int na, nb;
        int64_t a[4], b[4], c[4];
        int nc;
    } cases[] = {
        {4, 3, {2, 1, 3, 4}, {5, 4, 6}, {2, 5, 3, 6}, 4},   /* broadcast both ways */
        {3, 3, {4, 3, 5}, {4, 5, 2}, {4, 3, 2}, 3},         /* plain batch */
        {3, 2, {3, 4, 5}, {5, 6}, {3, 4, 6}, 3},            /* a batch of a, one b */
        {2, 4, {7, 3}, {2, 2, 3, 5}, {2, 2, 7, 5}, 4},      /* one a, a batch of b */
        {3, 3, {1, 6, 5}, {3, 5, 1}, {3, 6, 1}, 3},         /* size-1 batch, N = 1 */
        {3, 3, {64, 8, 9}, {64, 9, 7}, {64, 8, 7}, 3},      /* many small: parallel batch */
        {3, 3, {3, 128, 128}, {3, 128, 160}, {3, 128, 160}, 3}, /* large: threaded GEMMs */
        {3, 3, {2, 0, 4}, {2, 4, 3}, {2, 0, 3}, 3},         /* empty matrices */
        {3, 3, {0, 2, 4}, {1, 4, 3}, {0, 2, 3}, 3},         /* empty batch */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tg_tensor *a = tt_rand_tensor(dt, cases[i].na, cases[i].a);
        tg_tensor *b = tt_rand_tensor(dt, cases[i].nb, cases[i].b);
        tg_tensor *c = product(a, b);
        ck_assert_int_eq(c->ndim, cases[i].nc);
        for (int d = 0; d < c->ndim; d++)
            ck_assert_int_eq(c->shape[d], cases[i].c[d]);
        tg_tensor_free(c);
        tg_tensor_free(a);
        tg_tensor_free(b);
    }
}
END_TEST

START_TEST(test_batched_views)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    /* a: [6, 3, 5] stored as [6, 5, 3]; b: one [5, 4] stored transposed, expanded to
     * [6, 5, 4] (batch stride 0) */
    tg_tensor *a = tt_rand_tensor(dt, 3, (int64_t[]){6, 5, 3});
    tt_become(&a, tg_tensor_transpose(NULL, a, 1, 2));
    tg_tensor *b = tt_rand_tensor(dt, 3, (int64_t[]){1, 4, 5});
    tt_become(&b, tg_tensor_transpose(NULL, b, 1, 2));
    tt_become(&b, tg_tensor_expand(NULL, b, 3, (int64_t[]){6, 5, 4}));
    tg_tensor_free(product(a, b));
    /* batch axes that are themselves a permuted view: [4, 2, 3, 5] from [2, 4, 5, 3] */
    tg_tensor *p = tt_rand_tensor(dt, 4, (int64_t[]){2, 4, 5, 3});
    tt_become(&p, tg_tensor_permute(NULL, p, 4, (int[]){1, 0, 3, 2}));
    tg_tensor *q = operand(dt, 5, 2, STEP3);
    tg_tensor_free(product(p, q));
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(p);
    tg_tensor_free(q);
}
END_TEST

/* ------------------------------------------------------------------ matmul_out */

START_TEST(test_out_alpha_beta)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    const double ab[][2] = {{0.5, -2}, {2, 0}, {1, 0}, {-1.5, 1}, {0, 3}};
    /* out contiguous, transposed (column-major), general strides, or strides BLIS
     * refuses (computed in a copy) */
    const enum layout outs[] = {CONTIGUOUS, TRANSPOSED, STEP2, STEP3};
    const int64_t sizes[][3] = {{17, 33, 9}, {130, 150, 120}}; /* sup and packing paths */
    for (int sz = 0; sz < 2; sz++) {
        for (int layout = 0; layout < 4; layout++)
            for (int i = 0; i < (sz ? 2 : 5); i++) {
                int64_t m = sizes[sz][0], k = sizes[sz][1], n = sizes[sz][2];
                tg_tensor *a = operand(dt, m, k, TRANSPOSED);
                tg_tensor *b = operand(dt, k, n, CONTIGUOUS);
                tg_tensor *out = operand(dt, m, n, outs[layout]);
                double *c0 = tt_values(out);
                ck_assert_int_eq(tg_tensor_matmul_out(out, a, b, ab[i][0], ab[i][1]), TG_OK);
                check_product(out, a, b, ab[i][0], ab[i][1], c0, tol_of(dt));
                free(c0);
                tg_tensor_free(a);
                tg_tensor_free(b);
                tg_tensor_free(out);
            }
    }
}
END_TEST

START_TEST(test_out_beta0_nan)
{
    /* beta 0: out is only written, its NaNs (and infinities) do not leak in; K = 0,
     * small (BLIS's sup path) and large (its packing path) */
    const int64_t cases[][3] = {{4, 0, 5}, {4, 3, 5}, {130, 150, 120}};
    for (int i = 0; i < 3; i++) {
        int64_t m = cases[i][0], k = cases[i][1], n = cases[i][2];
        tg_tensor *a = tt_rand_tensor(TG_F32, 2, (int64_t[]){m, k});
        tg_tensor *b = tt_rand_tensor(TG_F32, 2, (int64_t[]){k, n});
        tg_tensor *out = tg_tensor_full(NULL, TG_F32, 2, (int64_t[]){m, n}, NAN);
        tg_tensor_set(out, (int64_t[]){1, 1}, INFINITY);
        ck_assert_int_eq(tg_tensor_matmul_out(out, a, b, 1, 0), TG_OK);
        check_product(out, a, b, 1, 0, NULL, 1e-5);
        tg_tensor_free(a);
        tg_tensor_free(b);
        tg_tensor_free(out);
    }
}
END_TEST

START_TEST(test_out_k0)
{
    /* K = 0: out = beta * out */
    tg_tensor *a = tt_rand_tensor(TG_F64, 3, (int64_t[]){2, 3, 0});
    tg_tensor *b = tt_rand_tensor(TG_F64, 2, (int64_t[]){0, 4});
    tg_tensor *out = tt_rand_tensor(TG_F64, 3, (int64_t[]){2, 3, 4});
    double *c0 = tt_values(out);
    ck_assert_int_eq(tg_tensor_matmul_out(out, a, b, 1, 2.5), TG_OK);
    double *c1 = tt_values(out);
    for (int e = 0; e < 24; e++)
        ck_assert(c1[e] == 2.5 * c0[e]);
    free(c0);
    free(c1);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(out);
}
END_TEST

START_TEST(test_out_aliased)
{
    /* out is also an input: x = x @ w, and a view of x's storage as b */
    tg_tensor *x = tt_rand_tensor(TG_F64, 2, (int64_t[]){6, 6});
    tg_tensor *w = tt_rand_tensor(TG_F64, 2, (int64_t[]){6, 6});
    tg_tensor *x0 = tg_tensor_clone(NULL, x);
    ck_assert_int_eq(tg_tensor_matmul_out(x, x, w, 1, 0), TG_OK);
    check_product(x, x0, w, 1, 0, NULL, 1e-13);
    tg_tensor *xt = tg_tensor_transpose(NULL, x, 0, 1);
    tg_tensor *x1 = tg_tensor_clone(NULL, x);
    tg_tensor *x1t = tg_tensor_transpose(NULL, x1, 0, 1);
    double *c0 = tt_values(x);
    ck_assert_int_eq(tg_tensor_matmul_out(x, w, xt, 1, 1), TG_OK);
    check_product(x, w, x1t, 1, 1, c0, 1e-13);
    free(c0);
    tg_tensor *list[] = {x, w, x0, xt, x1, x1t};
    for (int i = 0; i < 6; i++)
        tg_tensor_free(list[i]);
}
END_TEST

/* ------------------------------------------------------------------ threads */

START_TEST(test_threads_bitwise)
{
    /* 1 and 2 threads give the same bits: BLIS's sup path (small products, where
     * row-stored A with column-stored B uses dot-product kernels that are not
     * partition-invariant) runs on one thread; large ones take the packing path */
    int saved = tg_get_num_threads();
    const int64_t cases[][4] = {/* batch, M, K, N */
                                {1, 17, 33, 9},     {1, 7, 1000, 9},    {1, 1000, 7, 13},
                                {1, 130, 150, 120}, {1, 200, 300, 100}, {16, 20, 30, 10},
                                {4, 64, 576, 100}};
    for (int dt = 0; dt < 2; dt++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            for (int lb = 0; lb < 2; lb++) {
                const int64_t *s = cases[i];
                tg_tensor *a = tt_rand_tensor(dt ? TG_F64 : TG_F32, 3, (int64_t[]){s[0], s[1], s[2]});
                tg_tensor *b = tt_rand_tensor(dt ? TG_F64 : TG_F32, 3,
                                           lb ? (int64_t[]){s[0], s[3], s[2]}
                                              : (int64_t[]){s[0], s[2], s[3]});
                if (lb)
                    tt_become(&b, tg_tensor_transpose(NULL, b, 1, 2));
                tg_tensor *c[2];
                for (int t = 0; t < 2; t++) {
                    tg_set_num_threads(t + 1);
                    c[t] = tg_tensor_matmul(NULL, a, b);
                    ck_assert_msg(c[t] != NULL, "%s", tg_last_error());
                }
                ck_assert_msg(memcmp(tg_tensor_data(c[0]), tg_tensor_data(c[1]),
                                     tg_storage_nbytes(c[0]->storage)) == 0,
                              "case %zu (%s, b %s): 1 and 2 threads differ", i,
                              dt ? "f64" : "f32", lb ? "transposed" : "contiguous");
                check_product(c[1], a, b, 1, 0, NULL, tol_of(a->dtype));
                tg_tensor_free(c[0]);
                tg_tensor_free(c[1]);
                tg_tensor_free(a);
                tg_tensor_free(b);
            }
    tg_set_num_threads(saved);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_errors)
{
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, 2, (int64_t[]){100, 288});
    tg_tensor *w = tg_tensor_zeros(NULL, TG_F32, 2, (int64_t[]){32, 288});
    tg_tensor *w64 = tg_tensor_zeros(NULL, TG_F64, 2, (int64_t[]){288, 32});
    tg_tensor *v = tg_tensor_zeros(NULL, TG_F32, 1, (int64_t[]){288});
    tg_tensor *i32 = tg_tensor_zeros(NULL, TG_I32, 2, (int64_t[]){288, 3});
    tg_tensor *b1 = tg_tensor_zeros(NULL, TG_F32, 3, (int64_t[]){2, 3, 4});
    tg_tensor *b2 = tg_tensor_zeros(NULL, TG_F32, 3, (int64_t[]){5, 4, 6});

    tt_expect_error(tg_tensor_matmul(NULL, x, w), TG_ERR_SHAPE, "tg_tensor_matmul",
                    "[100,288] x [32,288]: inner dimensions 288 and 32 differ");
    tt_expect_error(tg_tensor_matmul(NULL, x, w64), TG_ERR_DTYPE, "tg_tensor_matmul",
                    "[100,288] x [288,32]: dtypes f32 and f64 differ");
    tt_expect_error(tg_tensor_matmul(NULL, x, v), TG_ERR_SHAPE, "tg_tensor_matmul",
                    "[100,288] x [288]: both operands need at least 2 axes");
    tg_tensor *i32a = tg_tensor_zeros(NULL, TG_I32, 2, (int64_t[]){2, 288});
    tt_expect_error(tg_tensor_matmul(NULL, i32a, i32), TG_ERR_DTYPE, "tg_tensor_matmul",
                    "[2,288] x [288,3]: dtype i32");
    tt_expect_error(tg_tensor_matmul(NULL, b1, b2), TG_ERR_SHAPE, "tg_tensor_matmul",
                    "[2,3,4] x [5,4,6], batch axes: shapes [2] and [5] cannot be");

    /* a NULL input keeps the message of the failure that made it */
    tg_set_error(TG_ERR_SHAPE, "earlier failure");
    tt_expect_message(tg_tensor_matmul(NULL, NULL, w), TG_ERR_SHAPE, "earlier failure");
    tg_clear_error();
    tt_expect_error(tg_tensor_matmul(NULL, x, NULL), TG_ERR_ARG, "tg_tensor_matmul",
                    "an input tensor is NULL");

    /* matmul_out: out's shape, dtype and overlap */
    tg_tensor *wt = tg_tensor_transpose(NULL, w, 0, 1);
    tg_tensor *o1 = tg_tensor_zeros(NULL, TG_F32, 2, (int64_t[]){32, 100});
    ck_assert_int_eq(tg_tensor_matmul_out(o1, x, wt, 1, 0), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_matmul_out",
                   "[100,288] x [288,32] is [100,32], but out has shape [32,100]");
    tg_tensor *o2 = tg_tensor_zeros(NULL, TG_F64, 2, (int64_t[]){100, 32});
    ck_assert_int_eq(tg_tensor_matmul_out(o2, x, wt, 1, 0), TG_ERR_DTYPE);
    tt_expect_last(TG_ERR_DTYPE, "tg_tensor_matmul_out", "out is f64, a and b are f32");
    tg_tensor *row = tg_tensor_zeros(NULL, TG_F32, 2, (int64_t[]){1, 32});
    tg_tensor *o3 = tg_tensor_expand(NULL, row, 2, (int64_t[]){100, 32});
    ck_assert_int_eq(tg_tensor_matmul_out(o3, x, wt, 1, 0), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_tensor_matmul_out",
                   "out (shape [100,32]) has a broadcast axis 0");
    ck_assert_int_eq(tg_tensor_matmul_out(o1, x, w, 1, 0), TG_ERR_SHAPE);
    tt_expect_last(TG_ERR_SHAPE, "tg_tensor_matmul_out",
                   "[100,288] x [32,288]: inner dimensions 288 and 32 differ");
    ck_assert_int_eq(tg_tensor_matmul_out(NULL, x, wt, 1, 0), TG_ERR_SHAPE); /* kept */

    tg_tensor *list[] = {x, w, w64, v, i32, b1, b2, i32a, wt, o1, o2, row, o3};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        tg_tensor_free(list[i]);
}
END_TEST

/* On a CPU with AVX2 and FMA the GEMMs must not run BLIS's plain-C 'generic' kernels
 * (2.4x slower for a VGG_38 step on an AMD family 0x1A, which BLIS 0.9 does not know). */
START_TEST(test_kernels_not_generic)
{
    tg_tensor *a = tg_tensor_ones(NULL, TG_F32, TG_DIMS(64, 64));
    tg_tensor *c = tg_tensor_matmul(NULL, a, a); /* BLIS has run */
    ck_assert_ptr_nonnull(c);
    ck_assert_double_eq(tg_tensor_get(c, (int64_t[]){0, 0}), 64.0);
    const char *k = tg_gemm_kernels();
    ck_assert_ptr_nonnull(strstr(k, "BLIS "));
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !getenv("BLIS_ARCH_TYPE"))
        ck_assert_msg(!strstr(k, "generic"), "GEMM kernels: %s", k);
#endif
    tg_tensor_free(a);
    tg_tensor_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/matmul");
    TCase *tc = tt_tcase("products");
    tcase_add_loop_test(tc, test_layouts, 0, 2);
    tcase_add_test(tc, test_empty_dims);
    tcase_add_test(tc, test_arena);
    tcase_add_loop_test(tc, test_batched, 0, 2);
    tcase_add_loop_test(tc, test_batched_views, 0, 2);
    suite_add_tcase(s, tc);
    tc = tt_tcase("out");
    tcase_add_loop_test(tc, test_out_alpha_beta, 0, 2);
    tcase_add_test(tc, test_out_beta0_nan);
    tcase_add_test(tc, test_out_k0);
    tcase_add_test(tc, test_out_aliased);
    suite_add_tcase(s, tc);
    tc = tt_tcase("threads");
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_kernels_not_generic);
    suite_add_tcase(s, tc);
    tc = tt_tcase("errors");
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
