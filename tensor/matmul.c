/* tensor/matmul.c — matrix products through BLIS: a [..., M, K] @ b [..., K, N] with
 * broadcast batch axes. Every operand goes to bli_?gemm_ex as a pointer and a row and
 * column stride, so transposed and sliced views are multiplied without a copy.
 *
 * Determinism. BLIS's threaded GEMM splits only the m and n loops, never k, so its
 * conventional (packing) path gives the same bits for any thread count. Its path for
 * small matrices ("sup") does not: when A is row-stored and B column-stored it uses
 * dot-product kernels whose edge cases follow the thread partition (BLIS 0.9.0 on
 * zen3: 1 and 2 threads differ in the last bits for e.g. 17x33x9 f32 and f64). So a
 * GEMM under SMALL_GEMM multiply-adds runs the sup path on one thread, a batch of
 * them in parallel over the batch, and a larger one the conventional path on all
 * threads; which path a product takes depends on its size only. The sup path is the
 * faster one on small products (about 2x at 32^3) and the slower one on large, flat
 * ones (about 2x at 64x576x1024, a convolution's GEMM), so the split costs little: a
 * lone small product gives up threading, on at most SMALL_GEMM multiply-adds. */
#include "internal.h"

#include <blis.h>
#include <omp.h>
#include <string.h>

#define SMALL_GEMM (INT64_C(1) << 21) /* m*n*k; about 30 us on one core */

/* ------------------------------------------------------------------ strides */

/* BLIS's contract for a matrix's strides (bli_check_matrix_strides): both at least 1
 * and, unless a dimension is 1, "tilted" one way, the larger stride stepping over the
 * whole of the other dimension. The typed API of 0.9.0 does not check it, so views
 * outside it (a broadcast view's stride 0, some sliced views) are copied first. The
 * stride of a size-1 axis is never followed, so it is set to what BLIS accepts.
 * Returns false when the matrix needs a copy. */
static bool blis_strides(int64_t m, int64_t n, int64_t *rs, int64_t *cs)
{
    if (m <= 1 && n <= 1) {
        *rs = *cs = 1;
        return true;
    }
    if (m == 0 || n == 0) { /* nothing is read; any valid pair */
        *rs = n > 1 ? n : 1;
        *cs = 1;
        return true;
    }
    if (m == 1)
        *rs = n * *cs;
    if (n == 1)
        *cs = m * *rs;
    if (*rs <= 0 || *cs <= 0 || *rs == *cs)
        return false;
    return *rs < *cs ? m * *rs <= *cs : n * *cs <= *rs;
}

static bool matrix_ok(const tg_tensor *t)
{
    int d = t->ndim;
    int64_t rs = t->strides[d - 2], cs = t->strides[d - 1];
    return blis_strides(t->shape[d - 2], t->shape[d - 1], &rs, &cs);
}

/* ------------------------------------------------------------------ checks */

static bool float_dtype(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* Checks a and b for fn and writes the product's shape; false (and an error) if they
 * do not multiply. */
static bool product_shape(const char *fn, const tg_tensor *a, const tg_tensor *b, int *ndim,
                          int64_t *shape)
{
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR];
    TG__SHAPE(sa, a);
    TG__SHAPE(sb, b);
    if (a->dtype != b->dtype) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "%s x %s: dtypes %s and %s differ", sa, sb,
                     tg_dtype_name(a->dtype), tg_dtype_name(b->dtype));
        return false;
    }
    if (!float_dtype(a->dtype)) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "%s x %s: dtype %s (f32 or f64 expected)", sa, sb,
                     tg_dtype_name(a->dtype));
        return false;
    }
    if (a->ndim < 2 || b->ndim < 2) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s x %s: both operands need at least 2 axes (a vector "
                                   "is not promoted; unsqueeze it to a matrix)", sa, sb);
        return false;
    }
    int64_t k = a->shape[a->ndim - 1], kb = b->shape[b->ndim - 2];
    if (k != kb) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s x %s: inner dimensions %lld and %lld differ", sa,
                     sb, (long long)k, (long long)kb);
        return false;
    }
    int nb = tg_broadcast_shape(fn, a->ndim - 2, a->shape, b->ndim - 2, b->shape, shape);
    if (nb < 0) { /* the batch axes' shapes alone would not say which operands they are */
        char ba[TG__SHAPE_STR], bb[TG__SHAPE_STR];
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s x %s, batch axes: shapes %s and %s cannot be broadcast",
                        sa, sb, tg_shape_str(ba, sizeof ba, a->ndim - 2, a->shape),
                        tg_shape_str(bb, sizeof bb, b->ndim - 2, b->shape));
        return false;
    }
    shape[nb] = a->shape[a->ndim - 2];
    shape[nb + 1] = b->shape[b->ndim - 1];
    *ndim = nb + 2;
    return true;
}

/* ------------------------------------------------------------------ the products */

typedef struct gemm_args {
    tg_dtype dt;
    int64_t m, n, k;
    double alpha, beta;
    int nbatch;                       /* batch axes */
    int64_t batch[TG_MAX_DIMS];       /* their sizes */
    int64_t bstride[3][TG_MAX_DIMS];  /* c, a, b: batch strides in elements */
    char *base[3];                    /* c, a, b: element [0,...,0] */
    int64_t rs[3], cs[3];             /* c, a, b: matrix strides */
} gemm_args;

/* One GEMM: matrix `index` of the batch. */
static void gemm_one(const gemm_args *g, int64_t index, rntm_t *rntm)
{
    size_t es = tg_dtype_size(g->dt);
    int64_t off[3] = {0, 0, 0};
    for (int d = g->nbatch - 1; d >= 0; d--) {
        int64_t i = index % g->batch[d];
        index /= g->batch[d];
        for (int o = 0; o < 3; o++)
            off[o] += i * g->bstride[o][d];
    }
    char *p[3];
    for (int o = 0; o < 3; o++)
        p[o] = g->base[o] + off[o] * (int64_t)es;
    if (g->dt == TG_F32) {
        float alpha = (float)g->alpha, beta = (float)g->beta;
        bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, g->m, g->n, g->k, &alpha,
                     (float *)p[1], g->rs[1], g->cs[1], (float *)p[2], g->rs[2], g->cs[2], &beta,
                     (float *)p[0], g->rs[0], g->cs[0], NULL, rntm);
    } else {
        double alpha = g->alpha, beta = g->beta;
        bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, g->m, g->n, g->k, &alpha,
                     (double *)p[1], g->rs[1], g->cs[1], (double *)p[2], g->rs[2], g->cs[2], &beta,
                     (double *)p[0], g->rs[0], g->cs[0], NULL, rntm);
    }
}

static void run_batch(const gemm_args *g, int64_t count)
{
    tg__threads_init();
    int threads = omp_in_parallel() ? 1 : tg_get_active_threads();
    double mnk = (double)g->m * (double)g->n * (double)g->k; /* no overflow */
    if (mnk >= (double)SMALL_GEMM) {
        rntm_t rntm = BLIS_RNTM_INITIALIZER;
        bli_rntm_set_num_threads(threads, &rntm);
        bli_rntm_disable_l3_sup(&rntm);
        for (int64_t i = 0; i < count; i++)
            gemm_one(g, i, &rntm);
        return;
    }
    bool par = threads > 1 && count > 1 && (double)count * mnk >= TG__PAR_MIN;
#pragma omp parallel for schedule(static) if (par)
    for (int64_t i = 0; i < count; i++) {
        rntm_t one = BLIS_RNTM_INITIALIZER; /* BLIS takes it non-const: one per GEMM */
        bli_rntm_set_num_threads(1, &one);
        gemm_one(g, i, &one);
    }
}

/* One GEMM on this thread, for kernels with their own OpenMP loop (the fused
 * convolution's tiles). Single-threaded, both BLIS paths give the same bits for any
 * thread count, so the path is chosen for speed alone: measured single-threaded f32 on
 * zen3 (BLIS 0.9.0) for a convolution's tile shapes, sup / packing in GFLOP/s: forward
 * 32x288x256 81 / 60, 32x288x1024 64 / 64; input gradient 288x32x256 83 / 72,
 * 288x32x1024 67 / 75; weight gradient 32x256x288 78 / 62, 32x1024x288 49 / 61; and
 * with K = 27 (3 input channels) sup is ahead at every size up to 2048 columns. So sup
 * below ONE_THREAD_SUP multiply-adds (a 512-column tile of a 288-row problem is 4.7M),
 * packing above. */
#define ONE_THREAD_SUP (INT64_C(1) << 23)

void tg__gemm(tg_dtype dt, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
              int64_t rsa, int64_t csa, const void *b, int64_t rsb, int64_t csb, double beta,
              void *c, int64_t rsc, int64_t csc)
{
    gemm_args g = {.dt = dt, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
                   .base = {c, (char *)a, (char *)b}, .rs = {rsc, rsa, rsb}, .cs = {csc, csa, csb}};
    const int64_t mat[3][2] = {{m, n}, {m, k}, {k, n}};
    for (int o = 0; o < 3; o++)
        blis_strides(mat[o][0], mat[o][1], &g.rs[o], &g.cs[o]); /* the size-1 axes' strides */
    if (alpha == 1.0 && tg__small_gemm(dt, m, n, k, a, g.rs[1], g.cs[1], b, g.rs[2], g.cs[2], beta,
                                       c, g.rs[0], g.cs[0]))
        return;
    tg__blis_setup();
    rntm_t one = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &one);
    if ((double)m * (double)n * (double)k >= (double)ONE_THREAD_SUP)
        bli_rntm_disable_l3_sup(&one);
    gemm_one(&g, 0, &one);
}

/* c = alpha * a @ b + beta * c, c already of the product's shape and dtype. */
static tg_status matmul_into(const char *fn, tg_tensor *c, const tg_tensor *a, const tg_tensor *b,
                             double alpha, double beta)
{
    int nd = c->ndim, nb = nd - 2;
    int64_t m = c->shape[nd - 2], n = c->shape[nd - 1], k = a->shape[a->ndim - 1];
    int64_t count = 1;
    for (int d = 0; d < nb; d++)
        count *= c->shape[d];
    if (m == 0 || n == 0 || count == 0)
        return TG_OK;

    /* Copies: an operand BLIS cannot take as it is, an input that shares out's storage
     * (BLIS reads it while writing c), an out BLIS cannot write as it is. */
    tg_tensor *tmp[3] = {NULL, NULL, NULL};
    const tg_tensor *op[3] = {c, a, b};
    tg_status st = TG_OK;
    for (int o = 1; o < 3 && st == TG_OK; o++) {
        if (matrix_ok(op[o]) && op[o]->storage != c->storage)
            continue;
        tmp[o] = tg_tensor_clone(NULL, op[o]);
        op[o] = tmp[o];
        st = tmp[o] ? TG_OK : tg_last_status();
    }
    if (st == TG_OK && !matrix_ok(c)) {
        tmp[0] = beta == 0 ? tg__new(NULL, c->dtype, nd, c->shape) : tg_tensor_clone(NULL, c);
        op[0] = tmp[0];
        st = tmp[0] ? TG_OK : tg_last_status();
    }

    gemm_args g = {.dt = c->dtype, .m = m, .n = n, .k = k, .alpha = alpha, .beta = beta,
                   .nbatch = nb};
    for (int d = 0; d < nb; d++)
        g.batch[d] = c->shape[d];
    const int64_t mat[3][2] = {{m, n}, {m, k}, {k, n}};
    for (int o = 0; o < 3 && st == TG_OK; o++) {
        int64_t shape[TG_MAX_DIMS];
        for (int d = 0; d < nb; d++)
            shape[d] = c->shape[d];
        shape[nb] = mat[o][0];
        shape[nb + 1] = mat[o][1];
        tg_tensor v; /* the operand with its batch axes broadcast to c's */
        st = tg__expand_into(&v, op[o], nd, shape, fn);
        if (st != TG_OK)
            break;
        for (int d = 0; d < nb; d++)
            g.bstride[o][d] = v.strides[d];
        g.base[o] = tg__ptr(&v);
        g.rs[o] = v.strides[nb];
        g.cs[o] = v.strides[nb + 1];
        blis_strides(mat[o][0], mat[o][1], &g.rs[o], &g.cs[o]);
    }
    if (st == TG_OK) {
        run_batch(&g, count);
        if (tmp[0])
            st = tg_tensor_copy_(c, tmp[0]);
    }
    for (int o = 0; o < 3; o++)
        tg_tensor_free(tmp[o]);
    return st;
}

tg_tensor *tg_tensor_matmul(tg_arena *ar, const tg_tensor *a, const tg_tensor *b)
{
    TG__CHECK_NULL("tg_tensor_matmul", a && b);
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!product_shape("tg_tensor_matmul", a, b, &nd, shape))
        return NULL;
    tg_tensor *c = tg__new(ar, a->dtype, nd, shape);
    if (c && matmul_into("tg_tensor_matmul", c, a, b, 1.0, 0.0) != TG_OK) {
        tg_tensor_free(c);
        return NULL;
    }
    return c;
}

tg_status tg_tensor_matmul_out(tg_tensor *out, const tg_tensor *a, const tg_tensor *b,
                               double alpha, double beta)
{
    const char *fn = "tg_tensor_matmul_out";
    TG__CHECK_STATUS(fn, out && a && b);
    int nd;
    int64_t shape[TG_MAX_DIMS];
    if (!product_shape(fn, a, b, &nd, shape))
        return tg_last_status();
    char sa[TG__SHAPE_STR], sb[TG__SHAPE_STR], sc[TG__SHAPE_STR], so[TG__SHAPE_STR];
    if (out->ndim != nd || memcmp(out->shape, shape, (size_t)nd * sizeof *shape) != 0)
        return tg_set_error_in(TG_ERR_SHAPE, fn, "%s x %s is %s, but out has shape %s",
                            TG__SHAPE(sa, a), TG__SHAPE(sb, b), tg_shape_str(sc, sizeof sc, nd, shape),
                            TG__SHAPE(so, out));
    if (out->dtype != a->dtype)
        return tg_set_error_in(TG_ERR_DTYPE, fn, "out is %s, a and b are %s",
                            tg_dtype_name(out->dtype), tg_dtype_name(a->dtype));
    int d = tg__broadcast_axis(out);
    if (d >= 0)
        return tg_set_error_in(TG_ERR_ARG, fn, "out (shape %s) has a broadcast axis %d (stride 0), "
                                        "so its elements overlap", TG__SHAPE(so, out), d);
    tg__written(out);
    return matmul_into(fn, out, a, b, alpha, beta);
}
