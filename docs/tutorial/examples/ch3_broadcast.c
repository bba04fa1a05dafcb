/* ch3_broadcast.c — chapter 3 of docs/tutorial: views and strides, broadcasting, and
 * the backward of both.
 *
 *   1. Views: one storage of 12 numbers seen as a matrix, its transpose, a strided
 *      slice, a row, a broadcast; shape, strides and offset of each.
 *   2. Broadcasting forward: A [2,3] + b [3] and A [2,3] + c [2,1].
 *   3. Its backward: b[j] was used once per row, so its gradient sums over the rows
 *      (tg_tensor_sum_to), and c's over the columns.
 *   4. The backward of views: the gradient goes back through a slice of a transpose
 *      to the elements the view looked at; the others get 0.
 * f64, fixed precision: the output is compared with ch3_broadcast.expected. */
#include <tapegrad.h>

#include <stdio.h>

/* shape, strides, offset, contiguous?, and whose storage it looks at */
static void describe(const char *what, const tg_tensor *t, const tg_tensor *a, const tg_tensor *b)
{
    char shape[64], strides[64];
    tg_shape_str(shape, sizeof shape, t->ndim, t->shape);
    tg_shape_str(strides, sizeof strides, t->ndim, t->strides); /* the same "[4,1]" format */
    printf("   %-28s shape %-6s  strides %-6s  offset %lld  %-14s  storage: %s\n", what, shape, strides,
           (long long)t->offset, tg_tensor_is_contiguous(t) ? "contiguous" : "not contiguous",
           t->storage == a->storage ? "a's" : t->storage == b->storage ? "b's" : "new (a copy)");
}

static int views(tg_arena *ar)
{
    printf("1. Views. a = arange(12) as [3,4]; element [i,j] is at offset + i*strides[0] + j*strides[1].\n\n");
    tg_tensor *a = tg_tensor_reshape(ar, tg_tensor_arange(ar, TG_F64, 0, 12, 1), TG_DIMS(3, 4));
    tg_tensor *t = tg_tensor_transpose(ar, a, 0, 1);
    tg_tensor *s = tg_tensor_slice(ar, a, 1, 1, 4, 2);
    tg_tensor *row = tg_tensor_select(ar, a, 0, 2);
    tg_tensor *b = tg_tensor_arange(ar, TG_F64, 0, 4, 1);
    tg_tensor *e = tg_tensor_expand(ar, b, TG_DIMS(3, 4));
    tg_tensor *flat = tg_tensor_reshape(ar, t, TG_DIMS(12));
    if (!flat || !e || !row || !s) {
        fprintf(stderr, "ch3_broadcast: %s\n", tg_last_error());
        return 1;
    }
    tg_tensor_print(stdout, a);
    describe("a", a, a, b);
    describe("transpose(a, 0, 1)", t, a, b);
    describe("slice(a, dim 1, 1:4:2)", s, a, b);
    describe("select(a, dim 0, 2)", row, a, b);
    describe("reshape(transpose(a), [12])", flat, a, b);
    describe("b = arange(4)", b, a, b);
    describe("expand(b, [3,4])", e, a, b);
    printf("\n   transpose(a)[1,2] = a[2,1] = %.0f: offset 0 + 1*1 + 2*4 = 9.\n",
           tg_tensor_get(t, (int64_t[]){1, 2}));
    printf("   slice(a, dim 1, 1:4:2)[2,1] = a[2,3] = %.0f: offset 1 + 2*4 + 1*2 = 11.\n",
           tg_tensor_get(s, (int64_t[]){2, 1}));
    printf("   expand(b, [3,4])[2,3] = b[3] = %.0f: stride 0 along the new axis, so every row reads b.\n",
           tg_tensor_get(e, (int64_t[]){2, 3}));
    printf("   reshape of the transpose cannot be a view (no single stride walks it in order): a copy.\n");
    printf("   The slice, the transpose and the flattened copy:\n");
    tg_tensor_print(stdout, s);
    tg_tensor_print(stdout, t);
    tg_tensor_print(stdout, flat);
    return 0;
}

static tg_tensor *leaf(const double *v, int ndim, const int64_t *shape, const char *name)
{
    tg_tensor *t = tg_tensor_from_data(NULL, TG_F64, ndim, shape, v);
    if (t && tg_requires_grad(t, name) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

static int broadcasting(tg_tape *tp)
{
    tg_arena *ar = tg_tape_arena(tp); /* constants of this step live with its records */
    printf("\n2. Broadcasting: shapes are aligned on the right; an axis of size 1, or a missing\n"
           "   one, is stretched (stride 0) to the other operand's size.\n\n");
    static const double av[] = {1, 2, 3, 4, 5, 6}, bv[] = {10, 20, 30}, cv[] = {100, 200};
    static const double wv[] = {1, 2, 3, 4, 5, 6};
    tg_tensor *A = leaf(av, TG_DIMS(2, 3), "A"), *b = leaf(bv, TG_DIMS(3), "b"), *c = leaf(cv, TG_DIMS(2, 1), "c");
    tg_tensor *W = tg_tensor_from_data(ar, TG_F64, TG_DIMS(2, 3), wv);
    int rc = 1;
    if (!A || !b || !c || !W)
        goto fail;
    tg_tensor *ab = tg_add(tp, A, b); /* [2,3] + [3]   -> [2,3] */
    tg_tensor *ac = tg_add(tp, A, c); /* [2,3] + [2,1] -> [2,3] */
    printf("   A + b, b of shape [3] read as [1,3] then stretched over 2 rows:\n");
    tg_tensor_print(stdout, ab);
    printf("   A + c, c of shape [2,1] stretched over 3 columns:\n");
    tg_tensor_print(stdout, ac);

    printf("\n3. The backward. L = sum((A + b) * W) + sum((A + c) * W), with W = [[1,2,3],[4,5,6]],\n"
           "   so dL/d(A + b) = dL/d(A + c) = W. b[j] was used in both rows: it gets the sum\n"
           "   of column j of W. c[i] was used in all three columns: row i's sum.\n\n");
    tg_tensor *L = tg_add(tp, tg_sum(tp, tg_mul(tp, ab, W), 0, NULL, false),
                          tg_sum(tp, tg_mul(tp, ac, W), 0, NULL, false));
    if (tg_backward(tp, L) != TG_OK)
        goto fail;
    printf("   dL/dA (W twice: A is used, unstretched, by both sums):\n");
    tg_tensor_print(stdout, tg_grad(A));
    printf("   dL/db = sum of W over axis 0:\n");
    tg_tensor_print(stdout, tg_grad(b));
    printf("   dL/dc = sum of W over axis 1, kept as [2,1]:\n");
    tg_tensor_print(stdout, tg_grad(c));
    printf("   The kernel the add's backward calls: tg_tensor_sum_to(arena, g, ndim, shape) of each input.\n");
    tg_tensor_print(stdout, tg_tensor_sum_to(ar, W, TG_DIMS(3)));
    tg_tensor_print(stdout, tg_tensor_sum_to(ar, W, TG_DIMS(2, 1)));
    tg_tensor_print(stdout, tg_tensor_sum_to(ar, W, TG_DIMS(1, 3)));
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ch3_broadcast: %s\n", tg_tape_status(tp) ? tg_tape_error(tp) : tg_last_error());
done:
    tg_tensor_free(A);
    tg_tensor_free(b);
    tg_tensor_free(c);
    return rc;
}

static int view_backward(tg_tape *tp)
{
    tg_arena *ar = tg_tape_arena(tp);
    printf("\n4. The backward of views. x [3,4]; v = slice(transpose(x), dim 0, 1:4:2) [2,3]\n"
           "   (columns 1 and 3 of x, as rows); L = sum(v * W).\n\n");
    static const double wv[] = {1, 2, 3, 4, 5, 6};
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(3, 4));
    tg_tensor *W = tg_tensor_from_data(ar, TG_F64, TG_DIMS(2, 3), wv);
    int rc = 1;
    if (!x || !W || tg_requires_grad(x, "x") != TG_OK)
        goto fail;
    tg_tensor *v = tg_slice(tp, tg_transpose(tp, x, 0, 1), 0, 1, 4, 2);
    tg_tensor *L = tg_sum(tp, tg_mul(tp, v, W), 0, NULL, false);
    if (tg_backward(tp, L) != TG_OK)
        goto fail;
    tg_tape_print(tp, stdout);
    printf("\n   dL/dv = W; slice's backward puts it into zeros of the transpose's shape [4,3]\n"
           "   (rows 1 and 3), transpose's backward transposes that back to [3,4]:\n");
    tg_tensor_print(stdout, tg_tape_record(tp, 0)->grad);
    tg_tensor_print(stdout, tg_grad(x));
    rc = 0;
    goto done;
fail:
    fprintf(stderr, "ch3_broadcast: %s\n", tg_tape_status(tp) ? tg_tape_error(tp) : tg_last_error());
done:
    tg_tensor_free(x);
    return rc;
}

int main(void)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tape *tp = tg_tape_new(0);
    int rc = 1;
    if (!ar || !tp) {
        fprintf(stderr, "ch3_broadcast: %s\n", tg_last_error());
        goto done;
    }
    if (views(ar) != 0 || broadcasting(tp) != 0)
        goto done;
    tg_tape_reset(tp); /* a new computation on the same tape */
    rc = view_backward(tp);
done:
    tg_tape_free(tp);
    tg_arena_free(ar);
    return rc;
}
