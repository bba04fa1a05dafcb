/* tensor/blis_setup.c — which of BLIS's kernel sets the GEMMs run.
 *
 * BLIS picks a sub-configuration (kernels and block sizes) from cpuid when it first
 * runs. Debian's BLIS 0.9 knows the CPUs of its day only: on an AMD Zen 5 (family 0x1A)
 * it picks 'generic', plain C loops, and a VGG_38 training step took 1667 ms instead of
 * 595-690 ms with the 'haswell' kernels (AVX2 + FMA; measured with bench/train_step,
 * 2 threads, BN after, on a 2-core EPYC family 0x1A). Its 'skx' set (AVX-512) has no
 * small-matrix ("sup") kernels, which the convolutions' per-tile GEMMs use, and was
 * 835-912 ms there.
 *
 * So before BLIS's first call, on an x86-64 CPU with AVX2 and FMA, tapegrad asks for
 * the 'haswell' set unless BLIS would pick one of its AMD Zen sets (families 0x17 and
 * 0x19: zen, zen2, zen3, measured good) or the user chose one with BLIS_ARCH_TYPE,
 * which is always respected. BLIS reads that variable as its numeric arch id (0.9
 * reads "haswell" as 0, which is skx), so the id comes from the blis.h we compiled
 * against. The variable is set in the process environment, where BLIS reads it; child
 * processes inherit the same choice, so a sweep's runs use the same kernels.
 */
#include "internal.h"

#include <blis.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>

/* The display family of cpuid leaf 1 (base family, plus the extended one when the
 * base is 0xF), as BLIS's own detection reads it. */
static unsigned cpu_family(void)
{
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx))
        return 0;
    unsigned family = (eax >> 8) & 0xF;
    if (family == 0xF)
        family += (eax >> 20) & 0xFF;
    return family;
}

static bool blis_knows_this_amd(void)
{
    if (!__builtin_cpu_is("amd"))
        return false;
    unsigned family = cpu_family();
    return family == 0x17 || family == 0x19;
}

static bool want_haswell(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && !blis_knows_this_amd();
}
#else
static bool want_haswell(void)
{
    return false;
}
#endif

static pthread_once_t chosen = PTHREAD_ONCE_INIT;
static bool set_by_us; /* written once, under `chosen` */

static void choose(void)
{
    const char *env = getenv("BLIS_ARCH_TYPE");
    if (env && *env)
        return;
    if (want_haswell()) {
        char id[16];
        snprintf(id, sizeof id, "%d", (int)BLIS_ARCH_HASWELL);
        set_by_us = setenv("BLIS_ARCH_TYPE", id, 0) == 0;
    }
}

void tg__blis_setup(void)
{
    pthread_once(&chosen, choose);
}

static char description[224];
static pthread_once_t described = PTHREAD_ONCE_INIT;

/* The Winograd transforms' copy is named here too (tensor/isa.c), so that a benchmark's
 * one "kernels" line says every dispatched choice its timings depend on. */
static void describe(void)
{
    const char *xsmm = tg__small_gemm_name();
    snprintf(description, sizeof description, "BLIS %s, %s kernels%s%s%s%s; %s Winograd transforms",
             bli_info_get_version_str(), bli_arch_string(bli_arch_query_id()),
             set_by_us ? " (chosen by tapegrad)" : "", xsmm ? "; libxsmm " : "", xsmm ? xsmm : "",
             xsmm ? " kernels in the convolutions" : "", tg__isa_name(tg__isa_chosen()));
}

const char *tg_gemm_kernels(void)
{
    tg__blis_setup();
    /* BLIS 0.9 aborts in bli_arch_query_id ("Accessed uninitialized context in gks")
     * when nothing has called it yet and BLIS_ARCH_TYPE is set, as tg__blis_setup does
     * on CPUs BLIS does not know; bli_init is idempotent. */
    bli_init();
    pthread_once(&described, describe);
    return description;
}
