/* tensor/threads.c — one thread count for OpenMP loops and BLIS, and fewer threads
 * while other processes keep this process's cores busy.
 *
 * Why adapt. A kernel's OpenMP or BLIS team waits at its barriers for its slowest
 * thread; when another process holds one of two cores, the thread that shares it is
 * descheduled for whole time slices, and every barrier waits that long (BLIS's own
 * barrier spins without yielding). Measured on 2 cores with one busy loop beside it,
 * before this file adapted: a VGG_38 step 4.5x its quiet time, a small MLP's 100x.
 * The kernels give the same bits for any thread count, so the count can follow the
 * load without changing a result: every second, the main thread reads how busy the
 * cores it may run on were (/proc/stat) minus what this process used
 * (CLOCK_PROCESS_CPUTIME_ID), and uses the cores left, rounded, at most the count set. */
#define _GNU_SOURCE /* sched_getaffinity, CLOCK_MONOTONIC_COARSE */
#include "internal.h"

#include <blis.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#ifdef __linux__
#include <fcntl.h>
#include <sched.h>
#include <unistd.h>
#endif

static atomic_int configured; /* 0 until the first tg_set_num_threads or kernel */
static atomic_int current = 1; /* the count set: the most threads a kernel uses */
static atomic_int active = 1;  /* what kernels use now: current, or fewer under load */
static atomic_int dynamic = -1; /* -1 until decided (OMP_DYNAMIC), then 0 or 1 */
/* omp_set_num_threads sets only the calling thread's count: each thread that runs a
 * kernel applies `active` to itself when it last saw an older generation */
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

/* OpenMP's OMP_DYNAMIC names the same choice (may the runtime use fewer threads than
 * asked); unset, tapegrad adapts. */
static bool default_dynamic(void)
{
    const char *env = getenv("OMP_DYNAMIC");
    return !(env && (strcasecmp(env, "false") == 0 || strcmp(env, "0") == 0));
}

/* Makes n the count kernels use from their next call on, on every thread. */
static void use_threads(int n)
{
    omp_set_num_threads(n);
    bli_thread_set_num_threads(n);
    atomic_store(&active, n);
    applied_generation = atomic_fetch_add(&generation, 1) + 1;
}

int tg__threads_for_load(int wanted, int cores, double others_busy)
{
    double free_cores = (double)cores - others_busy;
    int n = (int)(free_cores + 0.5); /* rounded: a core half taken still pays */
    if (n > wanted)
        n = wanted;
    return n >= 1 ? n : 1;
}

/* ------------------------------------------------------------------ load */

#ifdef __linux__
typedef struct load_sample {
    double busy;  /* clock ticks the allowed cores were busy, every process */
    double total; /* clock ticks of those cores, busy or idle */
    double self;  /* clock ticks this process ran */
    int cores;
} load_sample;

/* Reads the first part of a /proc file into buf (NUL-terminated); false if it cannot. */
static bool read_proc(const char *path, char *buf, size_t size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    size_t got = 0;
    ssize_t r;
    while (got + 1 < size && (r = read(fd, buf + got, size - 1 - got)) > 0)
        got += (size_t)r;
    close(fd);
    buf[got] = '\0';
    return got > 0;
}

static bool take_sample(load_sample *s)
{
    /* the cpu lines come first; 64 KiB holds them for ~700 cores */
    static char buf[1 << 16];
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof allowed, &allowed) != 0 || !read_proc("/proc/stat", buf, sizeof buf))
        return false;
    *s = (load_sample){0};
    char *line = buf;
    while (strncmp(line, "cpu", 3) == 0) {
        char *p = line + 3;
        long cpu = *p >= '0' && *p <= '9' ? strtol(p, &p, 10) : -1; /* -1: the total line */
        if (cpu >= 0 && cpu < CPU_SETSIZE && CPU_ISSET((int)cpu, &allowed)) {
            double v[8] = {0}; /* user nice system idle iowait irq softirq steal */
            for (int i = 0; i < 8; i++)
                v[i] = strtod(p, &p);
            s->busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
            s->total += v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
            s->cores++;
        }
        char *end = strchr(line, '\n');
        if (!end)
            break;
        line = end + 1;
    }
    /* this process's CPU time, in /proc/stat's clock ticks */
    struct timespec cpu;
    if (s->cores == 0 || clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu) != 0)
        return false;
    s->self = ((double)cpu.tv_sec + 1e-9 * (double)cpu.tv_nsec) * (double)sysconf(_SC_CLK_TCK);
    return true;
}

/* Every second, on the first thread that gets there outside a parallel region:
 * the cores other processes used since the last sample decide the count. */
static void adapt_to_load(void)
{
    static atomic_llong next_ns; /* when the next sample is due */
    static load_sample last;
    static bool have_last;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    long long now = ts.tv_sec * 1000000000LL + ts.tv_nsec, due = atomic_load(&next_ns);
    if (now < due || !atomic_compare_exchange_strong(&next_ns, &due, now + 1000000000LL))
        return;
    load_sample s;
    if (!take_sample(&s)) {
        have_last = false;
        return;
    }
    if (have_last && s.cores == last.cores && s.total > last.total) {
        double per_core = (s.total - last.total) / s.cores; /* ticks of one core */
        double others = ((s.busy - last.busy) - (s.self - last.self)) / per_core;
        int n = tg__threads_for_load(atomic_load(&current), s.cores, others < 0 ? 0 : others);
        if (n != atomic_load(&active))
            use_threads(n);
    }
    last = s;
    have_last = true;
}
#else
static void adapt_to_load(void) {}
#endif

/* ------------------------------------------------------------------ API */

void tg_set_num_threads(int n)
{
    if (n < 1)
        n = 1;
    tg__blis_setup();
    atomic_store(&current, n);
    atomic_store(&configured, 1);
    use_threads(n);
}

void tg_set_dynamic_threads(bool on)
{
    atomic_store(&dynamic, on ? 1 : 0);
    if (!on && atomic_load(&configured) && atomic_load(&active) != atomic_load(&current))
        use_threads(atomic_load(&current));
}

bool tg_get_dynamic_threads(void)
{
    int d = atomic_load(&dynamic);
    if (d < 0) {
        int decided = default_dynamic() ? 1 : 0;
        atomic_compare_exchange_strong(&dynamic, &d, decided);
        d = atomic_load(&dynamic);
    }
    return d == 1;
}

bool tg_parallel_worth(int64_t work)
{
    return work >= TG__PAR_MIN && !omp_in_parallel() && tg_get_active_threads() > 1;
}

int tg_get_num_threads(void)
{
    tg__threads_init();
    return atomic_load(&current);
}

int tg_get_active_threads(void)
{
    tg__threads_init();
    return atomic_load(&active);
}

void tg__threads_init(void)
{
    tg__blis_setup();
    if (!atomic_load(&configured))
        tg_set_num_threads(default_threads());
    if (!omp_in_parallel() && atomic_load(&current) > 1 && tg_get_dynamic_threads())
        adapt_to_load();
    int g = atomic_load(&generation);
    if (applied_generation != g) {
        omp_set_num_threads(atomic_load(&active));
        applied_generation = g;
    }
}
