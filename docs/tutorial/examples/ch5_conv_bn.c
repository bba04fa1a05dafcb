/* ch5_conv_bn.c — chapter 5 of docs/tutorial: a convolution as im2col + matmul, batch
 * norm as a composition of primitives, both on the tape and drawn as Graphviz DOT.
 *
 *   1. im2col of a 3x3 image for a 2x2 kernel, by hand and by the library; the
 *      convolution as one matmul, against four nested loops.
 *   2. tg_nn_conv2d_forward on the tape (im2col -> matmul -> add), its backward: col2im
 *      sums each window's share back onto the pixels. Writes ch5_conv.dot.
 *   3. tg_nn_batch_norm2d_forward on the tape (mean, var, rsqrt, sub, mul, ...): the output
 *      statistics, the gradient that reaches other examples of the batch, and
 *      tg_gradcheck of the whole composition. Writes ch5_batchnorm.dot.
 * Render the drawings with: dot -Tsvg ch5_conv.dot -o ch5_conv.svg
 * f64, fixed precision: the output is compared with ch5_conv_bn.expected. */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>

/* The tape as DOT, written whole or not at all (tg_atomic_begin: a temporary file of
 * a unique name, then a rename). */
static int write_dot(const tg_tape *tp, const char *path)
{
    tg_atomic_file w;
    if (tg_atomic_begin(&w, path) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        return 1;
    }
    if (tg_tape_write_dot(tp, w.f) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s: %s\n", path, tg_last_error());
        tg_atomic_cancel(&w);
        return 1;
    }
    if (tg_atomic_commit(&w) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        return 1;
    }
    printf("   wrote %s\n", path);
    return 0;
}

/* ------------------------------------------------------------------ 1. im2col */

static const double image[9] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
static const double kernel[4] = {1, 2, 3, 4};
static const tg_conv2d_geom k2 = {.kh = 2, .kw = 2, .stride_h = 1, .stride_w = 1, .dil_h = 1, .dil_w = 1};

static int im2col_by_example(tg_arena *ar)
{
    printf("1. x = [[1,2,3],[4,5,6],[7,8,9]] (one image, one channel), a 2x2 kernel\n"
           "   w = [[1,2],[3,4]], stride 1, no padding: a 2x2 output.\n\n"
           "   im2col copies each window the kernel sees into a column: row (i,j) of the\n"
           "   columns holds x[oh + i, ow + j] for output position (oh, ow):\n");
    tg_tensor *x = tg_tensor_from_data(ar, TG_F64, TG_DIMS(1, 1, 3, 3), image);
    tg_tensor *cols = tg_tensor_im2col(ar, x, &k2); /* [1, 1*2*2, 2*2] */
    tg_tensor *w = tg_tensor_from_data(ar, TG_F64, TG_DIMS(1, 4), kernel); /* [OC, C*kh*kw] */
    tg_tensor *y = tg_tensor_reshape(ar, tg_tensor_matmul(ar, w, cols), TG_DIMS(1, 1, 2, 2));
    if (!y) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        return 1;
    }
    tg_tensor_print(stdout, cols);
    printf("   The convolution is then one matrix product, w [1,4] @ columns [4,4] -> [1,4],\n"
           "   reshaped to [1,1,2,2]:\n");
    tg_tensor_print(stdout, y);
    printf("   The same by four nested loops, out[oh,ow] = sum_ij w[i,j] * x[oh+i, ow+j]:\n   ");
    double worst = 0;
    for (int oh = 0; oh < 2; oh++)
        for (int ow = 0; ow < 2; ow++) {
            double s = 0;
            for (int i = 0; i < 2; i++)
                for (int j = 0; j < 2; j++)
                    s += kernel[i * 2 + j] * image[(oh + i) * 3 + (ow + j)];
            printf(" %.1f", s);
            worst = fmax(worst, fabs(s - tg_tensor_get(y, (int64_t[]){0, 0, oh, ow})));
        }
    printf("   (largest difference %.1g)\n", worst);
    return worst > 1e-12;
}

/* ------------------------------------------------------------------ 2. conv on the tape */

static int conv_on_tape(tg_tape *tp, tg_model *m, tg_rng *g)
{
    printf("\n2. tg_nn_conv2d_forward records the same steps on the tape, then adds the bias\n"
           "   (here 0.5). L = sum(out).\n\n");
    tg_nn_conv2d conv;
    if (tg_nn_conv2d_init(&conv, m, "conv", 1, 1, 2, 1, 0, 1, true, g) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        return 1;
    }
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor_copy_(conv.weight, tg_tensor_from_data(ar, TG_F64, TG_DIMS(1, 1, 2, 2), kernel));
    tg_tensor_fill_(conv.bias, 0.5);
    tg_tensor *x = tg_tensor_from_data(NULL, TG_F64, TG_DIMS(1, 1, 3, 3), image);
    int rc = 1;
    if (!x || tg_requires_grad(x, "x") != TG_OK)
        goto done;
    tg_tensor *out = tg_nn_conv2d_forward(tp, &conv, x);
    if (tg_backward(tp, tg_sum(tp, out, 0, NULL, false)) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_tape_error(tp));
        goto done;
    }
    tg_tensor_print(stdout, out);
    tg_tape_print(tp, stdout);
    printf("\n   Backward: matmul hands the columns w^T @ g, i.e. each column gets w;\n"
           "   im2col's backward (col2im) adds every column entry back onto the pixel it\n"
           "   was copied from. The centre pixel is in all four windows, a corner in one:\n");
    tg_tensor_print(stdout, tg_grad(x));
    printf("   The kernel's gradient: each weight times the pixels it met, summed over windows\n"
           "   (w[0,0] met 1, 2, 4, 5):\n");
    tg_tensor_print(stdout, tg_grad(conv.weight));
    rc = write_dot(tp, "ch5_conv.dot");
done:
    tg_tensor_free(x);
    return rc;
}

/* ------------------------------------------------------------------ 3. batch norm */

/* tg_gradcheck makes its own tape: the composed layer, then the fused one */
static tg_tensor *bn_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tape_set_fused(tp, false);
    return tg_nn_batch_norm2d_forward(tp, user, in[0]);
}

static tg_tensor *bn_fused_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    tg_tape_set_fused(tp, true);
    return tg_nn_batch_norm2d_forward(tp, user, in[0]);
}

static int batchnorm_on_tape(tg_tape *tp, tg_model *m, tg_rng *g)
{
    printf("\n3. Batch norm of x [4,2,1,2] (4 examples, 2 channels, 1x2 pixels) in training mode:\n"
           "   per channel, subtract the batch mean, divide by sqrt(var + eps), then * gamma + beta.\n\n");
    tg_nn_batch_norm2d bn;
    if (tg_nn_batch_norm2d_init(&bn, m, "bn", 2) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        return 1;
    }
    tg_tensor *x = tg_tensor_empty(NULL, TG_F64, TG_DIMS(4, 2, 1, 2));
    int rc = 1;
    if (!x || tg_tensor_normal_(x, g, 3.0, 2.0) != TG_OK || tg_requires_grad(x, "x") != TG_OK)
        goto done;
    tg_tensor *y = tg_nn_batch_norm2d_forward(tp, &bn, x);
    /* L = sum(y * e) with e one-hot at [0,0,0,0]: the loss looks at one output of example 0 */
    tg_tensor *e = tg_tensor_zeros(tg_tape_arena(tp), TG_F64, TG_DIMS(4, 2, 1, 2));
    tg_tensor_set(e, (int64_t[]){0, 0, 0, 0}, 1.0);
    tg_tensor *L = tg_sum(tp, tg_mul(tp, y, e), 0, NULL, false);
    if (tg_backward(tp, L) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_tape_error(tp));
        goto done;
    }
    tg_tape_print(tp, stdout);
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *mean = tg_tensor_mean(ar, y, TG_AXES(0, 2, 3), false);
    tg_tensor *var = tg_tensor_var(ar, y, TG_AXES(0, 2, 3), 0, false);
    printf("\n   the output's mean and variance per channel (eps = 1e-5 keeps var just under 1):\n");
    printf("   mean %.6f %.6f   var %.6f %.6f\n", fabs(tg_tensor_get(mean, (int64_t[]){0})),
           fabs(tg_tensor_get(mean, (int64_t[]){1})), tg_tensor_get(var, (int64_t[]){0}),
           tg_tensor_get(var, (int64_t[]){1}));
    printf("\n   L = sum(y * e) with e one-hot at [0,0,0,0], so L = y[0,0,0,0], one output of\n"
           "   example 0. Yet dL/dx reaches every example of channel 0: the batch mean and\n"
           "   variance that normalised example 0 were computed from all of them. Channel 1\n"
           "   gets nothing (its statistics are its own):\n");
    tg_tensor_print(stdout, tg_grad(x));
    /* the closed form's consequence: a channel's input gradients sum to zero */
    tg_tensor *sums = tg_tensor_sum(ar, tg_grad(x), TG_AXES(0, 2, 3), false);
    printf("   dL/dx summed over each channel: %.6f %.6f\n", fabs(tg_tensor_get(sums, (int64_t[]){0})),
           fabs(tg_tensor_get(sums, (int64_t[]){1})));
    if (write_dot(tp, "ch5_batchnorm.dot") != 0)
        goto done;

    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(bn_fn, &bn, 1, &x, &(tg_gradcheck_options){.seed = 1}, &rep);
    printf("\n   tg_gradcheck of batch norm as a function of x (f64 leaves, random v):\n   %s\n", rep.message);
    tg_status fused = tg_gradcheck(bn_fused_fn, &bn, 1, &x, &(tg_gradcheck_options){.seed = 1}, &rep);
    printf("   the same, fused into one op:\n   %s\n", rep.message);
    rc = st != TG_OK || fused != TG_OK;
done:
    tg_tensor_free(x);
    return rc;
}

int main(void)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tape *tp = tg_tape_new(0);
    tg_model *m = tg_model_new();
    tg_rng g = tg_rng_new(5);
    int rc = 1;
    if (!ar || !tp || !m || tg_model_set_dtype(m, TG_F64) != TG_OK) {
        fprintf(stderr, "ch5_conv_bn: %s\n", tg_last_error());
        goto done;
    }
    /* the layers as the primitives they are made of (by default each is one fused record) */
    tg_tape_set_fused(tp, false);
    if (im2col_by_example(ar) != 0 || conv_on_tape(tp, m, &g) != 0)
        goto done;
    tg_tape_reset(tp);
    rc = batchnorm_on_tape(tp, m, &g);
done:
    tg_model_free(m);
    tg_tape_free(tp);
    tg_arena_free(ar);
    return rc;
}
