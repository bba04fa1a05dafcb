/* tensor/isa.c — which instruction set tapegrad's own vectorised loops run (today the
 * Winograd transforms, tensor/winograd.c, and batch norm's loops, tensor/batch_norm.c,
 * which has no AVX-512 copy and runs its AVX2 one there).
 *
 * Why. The library is one binary for every x86-64 CPU: it is compiled for baseline
 * x86-64 (SSE2), never -march=native, and the loops that matter are compiled again
 * for AVX2 and for AVX-512 (GCC's target attribute) beside the baseline copy. One of
 * the copies is chosen once per process, here: by default the fastest measured that
 * the CPU has (cpuid, through __builtin_cpu_supports), or the one TG_ISA names.
 * Forcing is what lets one machine test every copy it can run (the suites run under
 * TG_ISA=generic, avx2 and avx512) and lets a user measure or rule out a copy.
 * Choosing once, before any kernel runs, keeps every call of a process on one copy;
 * the copies give the same bits anyway (the transforms add and subtract only; the
 * tests compare them bit for bit).
 *
 * The default is AVX2 wherever the CPU has it, AVX-512 included: on a Zen 5 (EPYC, 2
 * cores, busy) the AVX-512 copy was no faster. The transforms wait on memory, not on
 * arithmetic: CPU time in the transforms over a VGG_38 step (BN before, 2 threads,
 * perf samples, 3 alternating runs each) was input 495-572 ms with AVX2 against
 * 528-626 with AVX-512, output 382-443 against 407-512; bench/winograd's per-layer
 * calls were even within noise (docs/performance.md). Where AVX2 is missing the default
 * is AVX-512 if present (no such CPU is known), else generic.
 *
 * TG_ISA is one of "avx512", "avx2", "generic" (or unset, empty or "auto": the
 * default). A value the CPU cannot run, or one not in that list, is not an error of any
 * call (nothing has failed yet, and the library must not exit): the default copy is
 * used instead and one line says so on stderr, once per process. On a CPU that is not
 * x86-64 only "generic" exists. */
#include "internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const names[TG__ISA_COUNT] = {"generic", "avx2", "avx512"};

const char *tg__isa_name(tg__isa isa)
{
    return (unsigned)isa < TG__ISA_COUNT ? names[isa] : "?";
}

bool tg__isa_supported(tg__isa isa)
{
    switch (isa) {
    case TG__ISA_GENERIC:
        return true;
#if TG__ISA_X86
    /* the same features the copies are compiled for (winograd.c's TARGET_*) */
    case TG__ISA_AVX2:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2");
    case TG__ISA_AVX512:
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f");
#endif
    default:
        return false;
    }
}

unsigned tg__isa_available(void)
{
    unsigned have = 0;
    for (int i = 0; i < TG__ISA_COUNT; i++)
        have |= tg__isa_supported((tg__isa)i) ? 1u << i : 0;
    return have;
}

/* the default copy among `have` (generic is always there): see the top of the file */
static tg__isa preferred(unsigned have)
{
    static const tg__isa order[] = {TG__ISA_AVX2, TG__ISA_AVX512};
    for (size_t i = 0; i < sizeof order / sizeof *order; i++)
        if (have & 1u << order[i])
            return order[i];
    return TG__ISA_GENERIC;
}

tg__isa tg__isa_parse(const char *value, unsigned have, char *why, size_t why_size)
{
    tg__isa def = preferred(have);
    if (why_size)
        why[0] = '\0';
    if (!value || !*value || strcmp(value, "auto") == 0)
        return def;
    for (int i = 0; i < TG__ISA_COUNT; i++) {
        if (strcmp(value, names[i]) != 0)
            continue;
        if (i == TG__ISA_GENERIC || have & 1u << i)
            return (tg__isa)i;
        snprintf(why, why_size, "TG_ISA=%s: this CPU cannot run it; using %s", value,
                 names[def]);
        return def;
    }
    snprintf(why, why_size, "TG_ISA=%.32s: not one of avx512, avx2, generic, auto; using %s",
             value, names[def]);
    return def;
}

static pthread_once_t once = PTHREAD_ONCE_INIT;
static atomic_int chosen = -1; /* set once under `once`, or by tg__isa_force */

static void choose(void)
{
    char why[128];
    tg__isa isa = tg__isa_parse(getenv("TG_ISA"), tg__isa_available(), why, sizeof why);
    if (why[0]) /* a warning, not an error: see the top of this file */
        fprintf(stderr, "tapegrad: %s\n", why);
    int unset = -1; /* a tg__isa_force before the first choice wins */
    atomic_compare_exchange_strong(&chosen, &unset, (int)isa);
}

tg__isa tg__isa_chosen(void)
{
    pthread_once(&once, choose);
    return (tg__isa)atomic_load_explicit(&chosen, memory_order_relaxed);
}

bool tg__isa_force(tg__isa isa)
{
    if (!tg__isa_supported(isa))
        return false;
    pthread_once(&once, choose); /* TG_ISA's warning, if any, is still given once */
    atomic_store(&chosen, (int)isa);
    return true;
}
