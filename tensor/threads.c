/* tensor/threads.c — one thread count for OpenMP loops and BLIS. */
#include "internal.h"

#include <blis.h>
#include <omp.h>
#include <stdlib.h>

static atomic_int configured; /* 0 until the first tg_set_num_threads or kernel */
static atomic_int current = 1;
/* omp_set_num_threads sets only the calling thread's count: each thread that runs a
 * kernel applies `current` to itself when it last saw an older generation */
static atomic_int generation;
static _Thread_local int applied_generation;

static int default_threads(void)
{
    const char *env = getenv("OMP_NUM_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (n >= 1 && n <= 4096 && (*end == '\0' || *end == ','))
            return (int)n;
    }
    int n = omp_get_num_procs();
    return n >= 1 ? n : 1;
}

void tg_set_num_threads(int n)
{
    if (n < 1)
        n = 1;
    tg__blis_setup();
    omp_set_num_threads(n);
    bli_thread_set_num_threads(n);
    atomic_store(&current, n);
    atomic_store(&configured, 1);
    applied_generation = atomic_fetch_add(&generation, 1) + 1;
}

bool tg_parallel_worth(int64_t work)
{
    return work >= TG__PAR_MIN && !omp_in_parallel() && tg_get_num_threads() > 1;
}

int tg_get_num_threads(void)
{
    tg__threads_init();
    return atomic_load(&current);
}

void tg__threads_init(void)
{
    tg__blis_setup();
    if (!atomic_load(&configured))
        tg_set_num_threads(default_threads());
    int g = atomic_load(&generation);
    if (applied_generation != g) {
        omp_set_num_threads(atomic_load(&current));
        applied_generation = g;
    }
}
