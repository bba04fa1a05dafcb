/* tensor_demo — a tour of the tensor core: random images through a convolution written as im2col +
 * matmul, batch statistics, pooling and a softmax, each step printed with its shape.
 *
 *   build/examples/tensor_demo [--threads N] [--batch N]
 */
#include <tapegrad.h>

#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void show(const char *what, const tg_tensor *t)
{
    char shape[64];
    printf("%-44s %-16s %s\n", what, tg_shape_str(shape, sizeof shape, t->ndim, t->shape),
           tg_dtype_name(t->dtype));
}

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: tensor_demo [--threads N] [--batch N]\n"
               "  A tour of tapegrad's tensor core on random CIFAR-sized images.\n"
               "  --threads N  OpenMP and BLIS threads (default: OMP_NUM_THREADS or the cores)\n"
               "  --batch N    images in the batch, 1..1000 (default 100)\n");
    return status;
}

int main(int argc, char **argv)
{
    int threads = 0, batch = 100;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout, 0);
        else if (!strcmp(argv[i], "--threads")) {
            if (!tg__cli_int("tensor_demo", "--threads", i + 1 < argc ? argv[++i] : NULL, 1, 256, &threads))
                return 2;
        } else if (!strcmp(argv[i], "--batch")) {
            if (!tg__cli_int("tensor_demo", "--batch", i + 1 < argc ? argv[++i] : NULL, 1, 1000, &batch))
                return 2;
        } else {
            fprintf(stderr, "tensor_demo: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    if (threads)
        tg_set_num_threads(threads);
    printf("tapegrad tensor demo: %d threads, batch %d\n\n", tg_get_num_threads(), batch);

    tg_arena *ar = tg_arena_new(0);
    tg_rng g = tg_rng_new(0);
    tg_rng init = tg_rng_split(&g, 1), data = tg_rng_split(&g, 2);
    if (!ar)
        goto fail;

    /* a batch of images and the entry convolution of the study's network */
    tg_tensor *x = tg_tensor_rand(ar, &data, TG_F32, TG_DIMS(batch, 3, 32, 32));
    tg_tensor *w = tg_tensor_randn(ar, &init, TG_F32, TG_DIMS(32, 3 * 3 * 3));
    if (!x || !w)
        goto fail;
    show("images x = U[0,1)", x);
    show("weights w = N(0,1)", w);

    tg_conv2d_geom geom = {.kh = 3, .kw = 3, .stride_h = 1, .stride_w = 1,
                           .pad_h = 1, .pad_w = 1, .dil_h = 1, .dil_w = 1};
    double t0 = now();
    tg_tensor *cols = tg_tensor_im2col(ar, x, &geom);
    double t1 = now();
    tg_tensor *y = tg_tensor_matmul(ar, w, cols); /* [32,27] x [N,27,1024] -> [N,32,1024] */
    double t2 = now();
    tg_tensor *conv = tg_tensor_view(ar, y, TG_DIMS(batch, 32, 32, 32));
    if (!conv)
        goto fail;
    show("im2col(x), 3x3 pad 1", cols);
    show("conv = w @ im2col(x)", conv);
    double flops = 2.0 * 32 * 27 * 1024 * batch;
    printf("  im2col %.2f ms, matmul %.2f ms (%.1f GFLOP/s)\n", 1e3 * (t1 - t0), 1e3 * (t2 - t1),
           flops / (t2 - t1) / 1e9);

    /* batch statistics per channel, as batch norm computes them */
    tg_tensor *mean = tg_tensor_mean(ar, conv, TG_AXES(0, 2, 3), true);
    tg_tensor *var = tg_tensor_var(ar, conv, TG_AXES(0, 2, 3), 0, true);
    tg_tensor *norm = tg_tensor_mul(ar, tg_tensor_sub(ar, conv, mean),
                                    tg_tensor_rsqrt(ar, tg_tensor_affine(ar, var, 1, 1e-5)));
    tg_tensor *act = tg_tensor_leaky_relu(ar, norm, 0.01);
    tg_tensor *pooled = tg_tensor_avg_pool2d(ar, act, &(tg_conv2d_geom){.kh = 2, .kw = 2,
                        .stride_h = 2, .stride_w = 2, .dil_h = 1, .dil_w = 1});
    if (!pooled)
        goto fail;
    show("per-channel mean over (N,H,W)", mean);
    show("normalised, leaky relu", act);
    show("2x2 average pooling", pooled);
    tg_tensor *check_mean = tg_tensor_mean(ar, norm, TG_AXES(0, 2, 3), false);
    tg_tensor *check_var = tg_tensor_var(ar, norm, TG_AXES(0, 2, 3), 0, false);
    if (!check_var)
        goto fail;
    printf("  after normalising: channel 0 mean %.2e, variance %.6f\n",
           tg_tensor_get(check_mean, (int64_t[]){0}), tg_tensor_get(check_var, (int64_t[]){0}));

    /* a softmax over the channels of the global average, stable through logsumexp */
    tg_tensor *feat = tg_tensor_mean(ar, pooled, TG_AXES(2, 3), false);
    tg_tensor *logp = tg_tensor_sub(ar, feat, tg_tensor_logsumexp(ar, feat, TG_AXES(1), true));
    tg_tensor *prob = tg_tensor_exp(ar, logp);
    tg_tensor *top = tg_tensor_argmax(ar, prob, 1, false);
    tg_tensor *rowsum = tg_tensor_sum(ar, prob, TG_AXES(1), false);
    if (!rowsum || !top)
        goto fail;
    show("global average pool", feat);
    show("softmax over channels", prob);
    printf("  softmax rows sum to %.6f; image 0's top channel is %d\n\n",
           tg_tensor_get(rowsum, (int64_t[]){0}), (int)tg_tensor_get(top, (int64_t[]){0}));

    printf("the first two images' softmax, first entries:\n");
    tg_tensor_print(stdout, tg_tensor_narrow(ar, prob, 0, 0, batch < 2 ? batch : 2));
    printf("\narena: %.1f MiB used by this step (%.1f MiB held)\n",
           (double)tg_arena_used(ar) / (1 << 20), (double)tg_arena_capacity(ar) / (1 << 20));
    tg_arena_free(ar);
    return 0;

fail:
    fprintf(stderr, "tensor_demo: %s\n", tg_last_error());
    tg_arena_free(ar);
    return 1;
}
