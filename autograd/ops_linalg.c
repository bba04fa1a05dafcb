/* autograd/ops_linalg.c — differentiable linear algebra (autograd.h's "linear algebra"
 * section): matmul, as a tg_op with its forward and backward side by side. The GEMM is
 * tensor/'s (tg_tensor_matmul, BLIS). */
#include "internal.h"

/* ------------------------------------------------------------------ matmul
 * out = a @ b, a [..., M, K], b [..., K, N], batch axes broadcast;
 * da = sum_to(g @ b^T, a.shape), db = sum_to(a^T @ g, b.shape)
 * The transposes are views: BLIS reads them through their strides, nothing is copied. */
static tg_tensor *matmul_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_matmul(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status matmul_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *a = r->in[0], *b = r->in[1];
    if (tg_needs_grad(tp, r, 0)) {
        tg_tensor *bt = tg_tensor_transpose(ar, b, -2, -1);
        tg_accumulate_grad(tp, r, 0, tg_tensor_sum_to(ar, tg_tensor_matmul(ar, g, bt), a->ndim, a->shape));
    }
    if (tg_needs_grad(tp, r, 1)) {
        tg_tensor *at = tg_tensor_transpose(ar, a, -2, -1);
        tg_accumulate_grad(tp, r, 1, tg_tensor_sum_to(ar, tg_tensor_matmul(ar, at, g), b->ndim, b->shape));
    }
    return tg_tape_status(tp);
}

static const tg_op op_matmul = {"matmul", matmul_forward, matmul_backward,
                                TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_matmul, a, b, (const void *)NULL);
}
