/* bench/bench_util.h — what the benchmark programs share: a monotonic clock, a
 * comparison for sorting timings and an integer flag's parser (each program is one
 * file plus this). */
#ifndef TAPEGRAD_BENCH_UTIL_H
#define TAPEGRAD_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The integer value s of flag into *out if it lies in lo..hi; else a message naming
 * the program and the flag, and 0. */
static inline int bench_parse_int(const char *prog, const char *flag, const char *s, int lo, int hi,
                                  int *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < lo || v > hi) {
        fprintf(stderr, "%s: %s wants an integer in %d..%d, got '%s'\n", prog, flag, lo, hi, s ? s : "");
        return 0;
    }
    *out = (int)v;
    return 1;
}

#endif
