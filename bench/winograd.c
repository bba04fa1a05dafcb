/* bench/winograd — times the Winograd convolution's three kernels (forward, input
 * gradient, weight gradient; tensor/winograd.c) with each copy of its transforms the
 * CPU can run (tensor/isa.c: generic, avx2, avx512), on VGG's shapes, so that the
 * copies are compared in one process on the same data.
 *
 *   build/bench/winograd [--threads N] [--batch N] [--channels C] [--reps N] [--side S]
 *   side=32 kernel=forward generic_ms=... avx2_ms=... avx512_ms=...
 *   ...
 *   kernels BLIS 0.9.0, ...; avx512 Winograd transforms   (the default copy)
 *
 * Each figure is the least of --reps calls; the copies take turns call by call, so a
 * machine whose load changes slows them alike. The GEMMs between the transforms are the
 * same calls for every copy, so the differences are the transforms'; under
 * `perf record` the transforms' own time appears per copy (input_f32_avx2, ...), the
 * calls being the same in number. Results are the same bits for every copy (tested in
 * tests/tensor/test_winograd.c), so nothing is checked here.
 */
#include <tapegrad.h>

#include "bench_util.h"
#include "cli.h"
#include "internal.h" /* tg__isa_force */
#include "winograd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { KERNELS = 3 };
static const char *const kernel_names[KERNELS] = {"forward", "input_grad", "weight_grad"};

static tg_tensor *filled(tg_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d, float seed)
{
    tg_tensor *t = tg_tensor_empty(NULL, dt, 4, (int64_t[]){a, b, c, d});
    if (!t)
        return NULL;
    float *v = tg_tensor_data(t);
    uint32_t s = 2463534242u + (uint32_t)(seed * 1000);
    for (int64_t i = 0; i < tg_tensor_numel(t); i++) { /* xorshift32 in [-1, 1) */
        s ^= s << 13;
        s ^= s >> 17;
        s ^= s << 5;
        v[i] = (float)s / 2147483648.0f - 1.0f;
    }
    return t;
}

static double time_kernel(int kernel, tg_tensor *x, tg_tensor *w, tg_tensor *y, tg_tensor *gy,
                          tg_tensor *dx, tg_tensor *dw, const tg_conv2d_geom *g)
{
    double t0 = bench_now();
    tg_status st = kernel == 0   ? tg__winograd_conv2d(NULL, y, x, w, NULL, g)
                   : kernel == 1 ? tg__winograd_conv2d_backward_input(NULL, dx, gy, w, g)
                                 : tg__winograd_conv2d_backward_weight(NULL, dw, gy, x, g);
    double t = bench_now() - t0;
    if (st != TG_OK) {
        fprintf(stderr, "winograd: %s\n", tg_last_error());
        exit(1);
    }
    return t;
}

int main(int argc, char **argv)
{
    int threads = 1, reps = 9;
    int64_t batch = 100, channels = 32, only_side = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            printf("usage: winograd [--threads N] [--batch N] [--channels C] [--reps N] [--side S]\n"
                   "  ms per call (least of N) of the Winograd forward, input and weight\n"
                   "  gradients with each copy of the transforms this CPU can run, on\n"
                   "  32x32 to 4x4 images (--side: SxS only); defaults 1 thread, batch 100,\n"
                   "  32 channels, 9 reps\n");
            return 0;
        }
        bool ok;
        if (strcmp(a, "--threads") == 0)
            ok = tg__cli_int("winograd", a, v, 1, 1024, &threads);
        else if (strcmp(a, "--reps") == 0)
            ok = tg__cli_int("winograd", a, v, 1, 100000, &reps);
        else if (strcmp(a, "--batch") == 0)
            ok = tg__cli_int64("winograd", a, v, 1, 100000, &batch);
        else if (strcmp(a, "--channels") == 0)
            ok = tg__cli_int64("winograd", a, v, 8, 4096, &channels);
        else if (strcmp(a, "--side") == 0)
            ok = tg__cli_int64("winograd", a, v, 2, 4096, &only_side);
        else {
            fprintf(stderr, "winograd: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (!ok)
            return 2;
        i++;
    }
    tg_set_num_threads(threads);
    tg__isa def = tg__isa_chosen(); /* the default copy (or TG_ISA's), named at the end */
    const tg_conv2d_geom g = {3, 3, 1, 1, 1, 1, 1, 1};
    for (int64_t side = only_side ? only_side : 32; side >= 4 || side == only_side;
         side = only_side ? 0 : side / 2) {
        tg_tensor *x = filled(TG_F32, batch, channels, side, side, 1);
        tg_tensor *w = filled(TG_F32, channels, channels, 3, 3, 2);
        tg_tensor *gy = filled(TG_F32, batch, channels, side, side, 3);
        tg_tensor *y = tg_tensor_empty(NULL, TG_F32, 4, x->shape);
        tg_tensor *dx = tg_tensor_empty(NULL, TG_F32, 4, x->shape);
        tg_tensor *dw = tg_tensor_empty(NULL, TG_F32, 4, w->shape);
        if (!x || !w || !gy || !y || !dx || !dw) {
            fprintf(stderr, "winograd: %s\n", tg_last_error());
            return 1;
        }
        double best[KERNELS][TG__ISA_COUNT];
        for (int k = 0; k < KERNELS; k++)
            for (int i = 0; i < TG__ISA_COUNT; i++)
                best[k][i] = 1e30;
        for (int r = 0; r <= reps; r++) /* round 0 warms up: not counted */
            for (int k = 0; k < KERNELS; k++)
                for (int i = 0; i < TG__ISA_COUNT; i++) {
                    if (!tg__isa_force((tg__isa)i))
                        continue;
                    double t = time_kernel(k, x, w, y, gy, dx, dw, &g);
                    if (r > 0 && t < best[k][i])
                        best[k][i] = t;
                }
        for (int k = 0; k < KERNELS; k++) {
            printf("side=%lld kernel=%s", (long long)side, kernel_names[k]);
            for (int i = 0; i < TG__ISA_COUNT; i++)
                if (tg__isa_supported((tg__isa)i))
                    printf(" %s_ms=%.3f", tg__isa_name((tg__isa)i), 1e3 * best[k][i]);
            printf("\n");
        }
        tg_tensor *all[] = {x, w, gy, y, dx, dw};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            tg_tensor_free(all[i]);
    }
    tg__isa_force(def);
    printf("threads=%d batch=%lld channels=%lld reps=%d\n", threads, (long long)batch,
           (long long)channels, reps);
    printf("kernels %s\n", tg_gemm_kernels());
    return 0;
}
