/* bench/allreduce — the cost of data parallelism's one collective per step: averaging
 * a VGG model's gradients across the ranks (tg_dist_average_grads).
 *
 *   mpirun -np 2 build/bench/allreduce [--net VGG_08|VGG_38] [--reps N]
 *   allreduce ranks=2 net=VGG_38 params=336196 bytes=1344784 ms_median=... gbs=...
 *
 * gbs is the bus bandwidth of a ring all-reduce, 2 (N - 1) / N x bytes over the time:
 * the figure to compare with a link's, for the cluster model in docs/performance.md.
 */
#include <tapegrad.h>

#include "bench_util.h"
#include "cli.h"
#include <tapegrad/dist.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int main(int argc, char **argv)
{
    tg_dist *d = tg_dist_init(&argc, &argv);
    if (!d)
        return fprintf(stderr, "allreduce: %s\n", tg_last_error()), 1;
    int blocks = 5, reps = 50;
    const char *net = "VGG_38";
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--net") && i + 1 < argc && (!strcmp(argv[i + 1], "VGG_08") || !strcmp(argv[i + 1], "VGG_38"))) {
            net = argv[++i];
            blocks = !strcmp(net, "VGG_08") ? 0 : 5;
        } else if (!strcmp(argv[i], "--reps")) {
            if (!tg__cli_int("allreduce", argv[i], i + 1 < argc ? argv[i + 1] : NULL, 1, 1000000, &reps)) {
                tg_dist_free(d);
                return 2;
            }
            i++;
        } else {
            if (tg_dist_rank(d) == 0)
                fprintf(stderr, "usage: mpirun -np N allreduce [--net VGG_08|VGG_38] [--reps N]\n");
            tg_dist_free(d);
            return strcmp(argv[i], "--help") ? 2 : 0;
        }
    }
    tg_rng g = tg_rng_new(0);
    tg_vgg *vgg = tg_vgg_new(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = blocks, .num_filters = 32,
                                              .in_channels = 3, .num_classes = 100},
                             &g);
    tg_model *m = tg_vgg_model(vgg);
    /* every parameter gets a gradient: one backward of the sum of all parameters */
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *total = NULL;
    for (int i = 0; i < tg_model_num_params(m); i++) {
        tg_tensor *s = tg_sum(tp, tg_model_param(m, i), 0, NULL, false);
        total = total ? tg_add(tp, total, s) : s;
    }
    if (tg_backward(tp, total) != TG_OK)
        return fprintf(stderr, "allreduce: %s\n", tg_tape_error(tp)), 1;
    double *t = malloc(sizeof *t * (size_t)reps);
    for (int r = -5; r < reps; r++) { /* 5 warm-up */
        double t0 = bench_now();
        if (tg_dist_average_grads(d, m) != TG_OK)
            return fprintf(stderr, "allreduce: %s\n", tg_last_error()), 1;
        if (r >= 0)
            t[r] = bench_now() - t0;
    }
    qsort(t, (size_t)reps, sizeof *t, bench_cmp_double);
    double med = t[reps / 2], bytes = 4.0 * (double)tg_model_param_count(m), n = tg_dist_size(d);
    if (tg_dist_rank(d) == 0)
        printf("allreduce ranks=%d net=%s params=%lld bytes=%.0f ms_median=%.3f gbs=%.2f\n", tg_dist_size(d), net,
               (long long)tg_model_param_count(m), bytes, 1e3 * med, 2 * (n - 1) / n * bytes / med / 1e9);
    free(t);
    tg_tape_free(tp);
    tg_vgg_free(vgg);
    tg_dist_free(d);
    return 0;
}
