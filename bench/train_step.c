/* bench/train_step — times full training steps of the study's networks.
 *
 * A step is what the study repeats 47,500 / 100 times an epoch: the next batch from
 * the batcher (random crop and flip of synthetic uint8 images, normalised, prepared
 * on a background thread), forward through the VGG, cross-entropy, backward, an Adam
 * update, zeroing the gradients and resetting the tape. The tape keeps no record's
 * gradient (a training loop's setting; --keep-grads keeps them, the tape's default)
 * and times every record, so the step's time can be split by layer type. After warm-up steps it prints the line bench/compare and
 * bench/torch_train_step.py share, then the shares:
 *
 *   network=VGG_38 bn=none ms_median=... ms_min=... images_per_s=... gflops=... peak_rss_mb=...
 *   shares conv_fwd=41.0 conv_bwd=38.2 bn=0.0 act=6.1 pool=1.0 optim=0.4 data=0.1 other=13.2
 *
 * (percent of the median step; each category's median over the timed steps). Run one
 * network per process, so that peak resident memory is that network's.
 */
#include <tapegrad.h>

#include "bench_util.h"
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

/* Multiply-adds x 2 of the conv and linear layers for forward + backward (3x the
 * forward), the figure PyTorch's side prints too. */
static double gflop_per_step(const tg_vgg_config *c, int batch)
{
    double f = c->num_filters, hw = 32.0 * 32.0;
    double macs = 3 * f * 9 * hw;                          /* entry conv */
    for (int s = 0; s < c->num_stages; s++) {
        macs += 2.0 * c->num_blocks_per_stage * f * f * 9 * hw; /* processing blocks */
        macs += f * f * 9 * hw;                             /* reduction conv_0 */
        hw /= 4;
        macs += f * f * 9 * hw;                             /* reduction conv_1, pooled */
    }
    macs += f * c->num_classes;
    return 3 * 2 * macs * batch / 1e9;
}

/* The multiply-adds x 2 the step really performs: a 3x3 convolution on Winograd
 * F(2x2, 3x3) (tensor/winograd.c: >= 8 input channels; the forward also >= 8 output
 * channels) does 16 GEMMs of out x in x tiles per kernel (tiles = N * ceil(H/2) *
 * ceil(W/2)) instead of 9 x out x in x H x W; the entry convolution's input gradient is
 * not computed (the images need none). Transforms are not counted: they are additions,
 * bound by memory. For the roofline line against the FMA peak. */
static double real_gflop_per_step(const tg_vgg_config *c, int batch)
{
    double f = c->num_filters, side = 32;
    double macs = 2 * 3 * f * 9 * side * side; /* entry conv: forward and weight gradient */
    for (int s = 0; s < c->num_stages; s++) {
        double tiles = ((int)side + 1) / 2 * (double)(((int)side + 1) / 2);
        double per_conv = f >= 8 ? 16 * f * f * tiles : 9 * f * f * side * side;
        macs += 3 * per_conv * (2.0 * c->num_blocks_per_stage + 1); /* blocks and reduction conv_0 */
        side /= 2;
        tiles = ((int)side + 1) / 2 * (double)(((int)side + 1) / 2);
        per_conv = f >= 8 ? 16 * f * f * tiles : 9 * f * f * side * side;
        macs += 3 * per_conv; /* reduction conv_1, after pooling */
    }
    macs += 3 * f * c->num_classes;
    return 2 * macs * batch / 1e9;
}

/* The least memory traffic (GB) of the step's batch norm, activation and pooling
 * kernels: each reads its input and writes its output once forward (8 bytes an f32
 * element) and reads the output gradient and its input and writes the input gradient
 * once backward (12 bytes); pooling moves a quarter of that on its output side. Against
 * the triad bandwidth, for the roofline line of the kernels that are not GEMMs. */
static double nongemm_gb_per_step(const tg_vgg_config *c, int batch)
{
    double f = c->num_filters, side = 32, elems = 0, pooled = 0;
    int layers_at_side;
    for (int s = 0; s < c->num_stages; s++) {
        layers_at_side = 2 * c->num_blocks_per_stage + 1 + (s == 0); /* + the entry conv */
        elems += layers_at_side * f * side * side;
        pooled += f * side * side;
        side /= 2;
        elems += f * side * side; /* reduction conv_1 */
    }
    double per_layer = c->bn != TG_BN_NONE ? 2 : 1; /* activation, and batch norm after every conv */
    double bytes = elems * batch * 20 * per_layer + (c->bn == TG_BN_NONE ? f * 32 * 32 * batch * 20 : 0) +
                   pooled * batch * 10; /* the entry conv's batch norm exists in every variant */
    return bytes / 1e9;
}

/* ------------------------------------------------------------------ time shares */

enum { CONV_FWD, CONV_BWD, BN, ACT, POOL, OPTIM, DATA, OTHER, NCAT };
static const char *const cat_name[NCAT] = {"conv_fwd", "conv_bwd", "bn", "act", "pool",
                                            "optim", "data", "other"};

/* A record's layer type: the kind of the model's layer whose scope it was recorded in
 * (conv and batch norm layers record their ops in their own, tg_model_layer), else its
 * op (activations and pooling are recorded in the block's scope). */
static int category(const tg_model *m, const tg_record *r, bool backward)
{
    for (int k = 0; k < tg_model_num_layers(m); k++) {
        tg_nn_layer_info l = tg_model_layer(m, k);
        if (strcmp(l.name, r->scope) != 0)
            continue;
        if (l.kind == TG_NN_CONV2D)
            return backward ? CONV_BWD : CONV_FWD;
        if (l.kind == TG_NN_BATCH_NORM2D)
            return BN;
        break;
    }
    const char *op = r->op->name;
    if (!strcmp(op, "leaky_relu") || !strcmp(op, "relu") || !strcmp(op, "leaky_relu_") ||
        !strcmp(op, "relu_")) /* in place on a fused tape */
        return ACT;
    if (strstr(op, "pool"))
        return POOL;
    return OTHER;
}

static void add_tape_times(const tg_model *m, const tg_tape *tp, double *t)
{
    for (int id = 0; id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        t[category(m, r, false)] += r->forward_s;
        t[category(m, r, true)] += r->backward_s;
    }
}

/* sorts v */
static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* Random pixels and labels, CIFAR-shaped: the step's time does not depend on them. */
static tg_dataset *synthetic_data(int64_t n, tg_rng *g)
{
    tg_tensor *img = tg_tensor_empty(NULL, TG_U8, TG_DIMS(n, 3, 32, 32));
    tg_tensor *lab = tg_tensor_empty(NULL, TG_I32, TG_DIMS(n));
    tg_dataset *d = NULL;
    if (img && lab) {
        uint8_t *p = tg_tensor_data(img);
        int32_t *l = tg_tensor_data(lab);
        for (int64_t i = 0; i < n * 3 * 32 * 32; i++)
            p[i] = (uint8_t)tg_rng_below(g, 256);
        for (int64_t i = 0; i < n; i++)
            l[i] = (int32_t)tg_rng_below(g, 100);
        d = tg_dataset_from_tensors("synthetic", img, lab, 100, NULL);
    }
    tg_tensor_free(img);
    tg_tensor_free(lab);
    return d;
}

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: train_step [--net VGG_08|VGG_38] [--bn none|before|after] [--threads N]\n"
               "                  [--steps N] [--warmup N] [--batch N] [--keep-grads]\n"
               "  Times training steps (forward, cross-entropy, backward, Adam) of the study's\n"
               "  network at 3x32x32 input and 100 classes; prints the median.\n"
               "  defaults: --net VGG_08 --bn none --threads (OMP_NUM_THREADS or cores)\n"
               "            --steps 10 --warmup 2 --batch 100\n"
               "  --keep-grads keeps every record's gradient until the reset (the tape's default,\n"
               "  for inspection) instead of giving each back once used (a training loop's).\n");
    return status;
}

int main(int argc, char **argv)
{
    tg_vgg_config cfg = {.num_stages = 3, .num_blocks_per_stage = 0, .num_filters = 32,
                         .in_channels = 3, .num_classes = 100, .bn = TG_BN_NONE};
    const char *net_name = "VGG_08", *bn_name = "none";
    int threads = 0, steps = 10, warmup = 2, batch = 100;
    bool keep_grads = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout, 0);
        if (!strcmp(a, "--net") && v) {
            net_name = argv[++i];
            if (!strcmp(v, "VGG_08"))
                cfg.num_blocks_per_stage = 0;
            else if (!strcmp(v, "VGG_38"))
                cfg.num_blocks_per_stage = 5;
            else {
                fprintf(stderr, "train_step: --net wants VGG_08 or VGG_38, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--bn") && v) {
            bn_name = argv[++i];
            if (!strcmp(v, "none"))
                cfg.bn = TG_BN_NONE;
            else if (!strcmp(v, "before"))
                cfg.bn = TG_BN_BEFORE;
            else if (!strcmp(v, "after"))
                cfg.bn = TG_BN_AFTER;
            else {
                fprintf(stderr, "train_step: --bn wants none, before or after, got '%s'\n", v);
                return 2;
            }
        } else if (!strcmp(a, "--threads")) {
            if (!tg__cli_int("train_step", a, v, 1, 256, &threads))
                return 2;
            i++;
        } else if (!strcmp(a, "--steps")) {
            if (!tg__cli_int("train_step", a, v, 1, 100000, &steps))
                return 2;
            i++;
        } else if (!strcmp(a, "--warmup")) {
            if (!tg__cli_int("train_step", a, v, 0, 1000, &warmup))
                return 2;
            i++;
        } else if (!strcmp(a, "--keep-grads")) {
            keep_grads = true;
        } else if (!strcmp(a, "--batch")) {
            if (!tg__cli_int("train_step", a, v, 1, 10000, &batch))
                return 2;
            i++;
        } else {
            fprintf(stderr, "train_step: unknown option '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (threads)
        tg_set_num_threads(threads);

    int status = 1;
    tg_rng g = tg_rng_new(0);
    tg_vgg *net = tg_vgg_new(&cfg, &g);
    tg_tape *tp = tg_tape_new(0);
    tg_dataset *data = synthetic_data(10 * (int64_t)batch, &g);
    tg_batcher *batches = data ? tg_batcher_new(data, &(tg_batcher_config){
        .batch_size = batch, .shuffle = true, .crop_padding = 4, .flip = true,
        .norm = tg_normalization_preset("cifar100"), .rng = tg_rng_split(&g, 1), .prefetch = true}) : NULL;
    double *times = malloc((size_t)steps * (NCAT + 1) * sizeof *times);
    tg_optim *opt = net ? tg_optim_new(tg_vgg_model(net), &(tg_optim_config){.kind = TG_ADAM,
                                                                                .lr = 1e-3}) : NULL;
    if (!net || !tp || !batches || !times || !opt) {
        fprintf(stderr, "train_step: %s\n", tg_last_error());
        goto done;
    }
    double *cat_times = times + steps; /* [NCAT][steps] */
    tg_tape_set_keep_grads(tp, keep_grads);
    tg_tape_set_profile(tp, true);
    tg_model *m = tg_vgg_model(net);
    tg_model_set_training(m, true);
    int64_t epoch = 0;
    tg_batcher_start_epoch(batches, epoch);
    for (int step = 0; step < warmup + steps; step++) {
        double t[NCAT] = {0};
        double t0 = bench_now();
        tg_tensor *x, *y;
        while (!tg_batcher_next(batches, &x, &y))
            tg_batcher_start_epoch(batches, ++epoch);
        double t1 = bench_now();
        tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), y);
        if (tg_backward(tp, loss) != TG_OK) {
            fprintf(stderr, "train_step: step %d: %s\n", step, tg_tape_error(tp));
            goto done;
        }
        double t2 = bench_now();
        if (tg_optim_step(opt) != TG_OK) {
            fprintf(stderr, "train_step: step %d: %s\n", step, tg_last_error());
            goto done;
        }
        tg_model_zero_grad(m);
        double t3 = bench_now();
        add_tape_times(m, tp, t);
        t[DATA] = t1 - t0;
        t[OPTIM] = t3 - t2;
        tg_tape_reset(tp);
        if (step >= warmup) {
            times[step - warmup] = bench_now() - t0;
            for (int c = 0; c < NCAT; c++)
                cat_times[c * steps + step - warmup] = t[c];
        }
    }
    double med = median(times, steps), fastest = times[0]; /* sorted by median */
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("network=%s bn=%s ms_median=%.1f ms_min=%.1f images_per_s=%.1f gflops=%.1f peak_rss_mb=%.1f "
           "real_gflops=%.1f\n",
           net_name, bn_name, 1e3 * med, 1e3 * fastest, batch / med, gflop_per_step(&cfg, batch) / med,
           (double)ru.ru_maxrss / 1024, real_gflop_per_step(&cfg, batch) / med);
    printf("kernels %s\n", tg_gemm_kernels());
    printf("threads set=%d active=%d dynamic=%s\n", tg_get_num_threads(), tg_get_active_threads(),
           tg_get_dynamic_threads() ? "on" : "off");
    double nongemm_s = 0;
    for (int c = BN; c <= POOL; c++)
        nongemm_s += median(cat_times + c * steps, steps);
    printf("nongemm bn+act+pool ms=%.1f least_gb=%.3f gbs=%.1f\n", 1e3 * nongemm_s,
           nongemm_gb_per_step(&cfg, batch), nongemm_s > 0 ? nongemm_gb_per_step(&cfg, batch) / nongemm_s : 0);
    printf("shares");
    for (int c = 0; c < NCAT; c++)
        printf(" %s=%.1f", cat_name[c], 100 * median(cat_times + c * steps, steps) / med);
    printf("\n");
    status = 0;
done:
    tg_optim_free(opt);
    tg_vgg_free(net);
    tg_tape_free(tp);
    tg_batcher_free(batches);
    tg_dataset_free(data);
    free(times);
    return status;
}
