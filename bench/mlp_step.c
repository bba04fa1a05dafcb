/* bench/mlp_step.c — the training step of a small MLP (784-256-10, ReLU, batch 100,
 * Adam): steps of about 2 ms, so each of its few parallel regions is short and a
 * thread that waits for a descheduled peer shows at once. bench/contended runs it
 * beside a busy process.
 *
 *   mlp_step [--threads N] [--seconds S] [--batch N]
 *
 * Steps for S seconds (default 4) after one second of warm-up (dynamic threads judge
 * the load once a second), then prints the median step time and the thread counts. */
#include "bench_util.h"
#include "cli.h"

#include <tapegrad.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_STEPS 200000

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: mlp_step [--threads N] [--seconds S] [--batch N]\n"
               "  Times training steps of a 784-256-10 MLP with ReLU and Adam on random data\n"
               "  for S seconds after 1 s of warm-up; prints the median step time and the\n"
               "  threads set and in use. defaults: --threads (OMP_NUM_THREADS or cores)\n"
               "  --seconds 4 --batch 100\n");
    return status;
}

int main(int argc, char **argv)
{
    int threads = 0, seconds = 4, batch = 100;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return usage(stdout, 0);
        int *target = !strcmp(a, "--threads") ? &threads : !strcmp(a, "--seconds") ? &seconds
                      : !strcmp(a, "--batch") ? &batch : NULL;
        if (!target) {
            fprintf(stderr, "mlp_step: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (!tg__cli_int("mlp_step", a, v, 1, target == &batch ? 100000 : 3600, target))
            return 2;
        i++;
    }
    if (threads)
        tg_set_num_threads(threads);

    int status = 1;
    tg_rng g = tg_rng_new(0);
    tg_model *m = tg_model_new();
    tg_nn_linear fc1, fc2;
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, 2, (int64_t[]){batch, 784});
    tg_tensor *y = tg_tensor_empty(NULL, TG_I32, 1, (int64_t[]){batch});
    double *times = malloc(MAX_STEPS * sizeof *times);
    tg_optim *opt = NULL;
    if (!m || !tp || !x || !y || !times ||
        tg_nn_linear_init(&fc1, m, "fc1", 784, 256, true, &g) != TG_OK ||
        tg_nn_linear_init(&fc2, m, "fc2", 256, 10, true, &g) != TG_OK ||
        !(opt = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3}))) {
        fprintf(stderr, "mlp_step: %s\n", tg_last_error());
        goto done;
    }
    int32_t *labels = tg_tensor_data(y);
    for (int i = 0; i < batch; i++)
        labels[i] = (int32_t)tg_rng_below(&g, 10);
    tg_tape_set_keep_grads(tp, false);
    int n = 0;
    double start = bench_now(), measure_from = start + 1.0, end = measure_from + seconds;
    for (double t0 = start; t0 < end && n < MAX_STEPS; t0 = bench_now()) {
        tg_tensor *h = tg_relu(tp, tg_nn_linear_forward(tp, &fc1, x));
        tg_tensor *loss = tg_nn_cross_entropy(tp, tg_nn_linear_forward(tp, &fc2, h), y);
        if (tg_backward(tp, loss) != TG_OK || tg_optim_step(opt) != TG_OK) {
            fprintf(stderr, "mlp_step: %s\n", tg_tape_error(tp)[0] ? tg_tape_error(tp) : tg_last_error());
            goto done;
        }
        tg_model_zero_grad(m);
        tg_tape_reset(tp);
        if (t0 >= measure_from)
            times[n++] = bench_now() - t0;
    }
    if (n == 0) {
        fprintf(stderr, "mlp_step: no step finished in %d s\n", seconds);
        goto done;
    }
    qsort(times, (size_t)n, sizeof *times, bench_cmp_double);
    printf("network=MLP_784_256_10 batch=%d steps=%d ms_median=%.3f ms_p90=%.3f threads_set=%d "
           "threads_active=%d dynamic=%s\n",
           batch, n, 1e3 * times[n / 2], 1e3 * times[n * 9 / 10], tg_get_num_threads(),
           tg_get_active_threads(), tg_get_dynamic_threads() ? "on" : "off");
    status = 0;
done:
    tg_optim_free(opt);
    tg_model_free(m);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(y);
    free(times);
    return status;
}
