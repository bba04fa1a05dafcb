/* bench/peak.c — the machine's ceilings, for roofline lines: the float32 FMA peak of
 * each vector ISA this CPU has (AVX-512, AVX2+FMA) and the memory bandwidth of a triad,
 * at the thread count the library would use.
 *
 *   build/bench/peak [--threads N] [--seconds S]
 *   peak isa=avx512 threads=2 gflops=...      one line per ISA the CPU supports
 *   peak isa=avx2 threads=2 gflops=...
 *   bandwidth threads=2 gbs=...               a[i] = b[i] + s * c[i] over 3 x 96 MB
 *   kernels BLIS 0.9.0, haswell kernels (...) the set tapegrad's GEMMs run
 *
 * The FMA loop keeps 12 independent accumulators per thread (more than FMA latency x
 * ports on current x86-64 cores), so it measures throughput, not latency; it is the
 * ceiling that BLIS's kernels for that ISA can reach. Each figure is the best of 5
 * runs; a loaded machine gives lower numbers, so run it on a quiet one.
 */
#include <tapegrad.h>

#include "bench_util.h"
#include "cli.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_X86 1
#endif

#ifdef HAVE_X86
/* n rounds of 12 FMAs on vectors of 16 (AVX-512) or 8 (AVX2) floats; the sum is
 * returned so the loop cannot be dropped */
__attribute__((target("avx512f"))) static float fma_avx512(long n, float seed)
{
    __m512 a = _mm512_set1_ps(1.0f + 1e-7f * seed), b = _mm512_set1_ps(0.999999f);
    __m512 c[12];
    for (int k = 0; k < 12; k++)
        c[k] = _mm512_set1_ps((float)k);
    for (long i = 0; i < n; i++)
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++) /* unrolled, so the accumulators live in registers */
            c[k] = _mm512_fmadd_ps(c[k], b, a);
    __m512 s = c[0];
    for (int k = 1; k < 12; k++)
        s = _mm512_add_ps(s, c[k]);
    return _mm512_reduce_add_ps(s);
}

__attribute__((target("avx2,fma"))) static float fma_avx2(long n, float seed)
{
    __m256 a = _mm256_set1_ps(1.0f + 1e-7f * seed), b = _mm256_set1_ps(0.999999f);
    __m256 c[12];
    for (int k = 0; k < 12; k++)
        c[k] = _mm256_set1_ps((float)k);
    for (long i = 0; i < n; i++)
#pragma GCC unroll 12
        for (int k = 0; k < 12; k++)
            c[k] = _mm256_fmadd_ps(c[k], b, a);
    __m256 s = c[0];
    for (int k = 1; k < 12; k++)
        s = _mm256_add_ps(s, c[k]);
    float out[8];
    _mm256_storeu_ps(out, s);
    return out[0] + out[1] + out[2] + out[3] + out[4] + out[5] + out[6] + out[7];
}

/* GFLOP/s of `threads` threads each running f for n rounds (2 flops per lane per FMA) */
static double fma_peak(float (*f)(long, float), int lanes, int threads, double seconds)
{
    long n = 1000000;
    double best = 0;
    volatile float sink = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now();
#pragma omp parallel num_threads(threads) reduction(+ : sink)
        sink += f(n, (float)omp_get_thread_num());
        double t = bench_now() - t0;
        double gflops = 2.0 * 12 * lanes * (double)n * threads / t / 1e9;
        best = gflops > best ? gflops : best;
        if (rep == 0 && t < seconds / 5) /* size the rounds to the time asked for */
            n = (long)((double)n * (seconds / 5) / (t > 1e-6 ? t : 1e-6));
    }
    return best;
}
#endif

static double triad_bandwidth(int threads)
{
    const size_t n = (size_t)24 << 20; /* 24M floats: 96 MB an array, far beyond the caches */
    float *a = malloc(n * sizeof *a), *b = malloc(n * sizeof *b), *c = malloc(n * sizeof *c);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
#pragma omp parallel for num_threads(threads) schedule(static)
    for (size_t i = 0; i < n; i++) /* first touch by the threads that use them */
        a[i] = 0, b[i] = 1, c[i] = 2;
    double best = 0;
    for (int rep = 0; rep < 5; rep++) {
        double t0 = bench_now();
#pragma omp parallel for num_threads(threads) schedule(static)
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + 0.5f * c[i];
        double t = bench_now() - t0, gbs = 3.0 * (double)n * sizeof(float) / t / 1e9;
        best = gbs > best ? gbs : best;
    }
    volatile float keep = a[n / 2];
    (void)keep;
    free(a), free(b), free(c);
    return best;
}

int main(int argc, char **argv)
{
    int threads = tg_get_num_threads();
    double seconds = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            printf("usage: peak [--threads N] [--seconds S]\n"
                   "  Prints the float32 FMA peak of each vector ISA this CPU has and the memory\n"
                   "  bandwidth of a triad, at N threads (default: OMP_NUM_THREADS or the cores),\n"
                   "  each the best of 5 runs of about S/5 seconds (default 1).\n");
            return 0;
        }
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--threads")) {
            if (!tg__cli_int("peak", argv[i], v, 1, 1024, &threads))
                return 2;
            i++;
        } else if (!strcmp(argv[i], "--seconds")) {
            if (!tg__cli_double("peak", argv[i], v, 0, true, 3600, false, &seconds))
                return 2;
            i++;
        } else {
            fprintf(stderr, "peak: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
#ifdef HAVE_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f"))
        printf("peak isa=avx512 threads=%d gflops=%.1f\n", threads, fma_peak(fma_avx512, 16, threads, seconds));
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"))
        printf("peak isa=avx2 threads=%d gflops=%.1f\n", threads, fma_peak(fma_avx2, 8, threads, seconds));
#else
    printf("peak isa=none: this benchmark measures x86-64 vector units only\n");
#endif
    printf("bandwidth threads=%d gbs=%.1f\n", threads, triad_bandwidth(threads));
    printf("kernels %s\n", tg_gemm_kernels());
    return 0;
}
