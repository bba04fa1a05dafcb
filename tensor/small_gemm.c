/* tensor/small_gemm.c — the one-thread GEMMs inside the convolution kernels (Winograd's
 * 16 products per chunk, the tiles of the fused convolution) through libxsmm's JIT
 * kernels, where libxsmm was found at build time.
 *
 * Why. These products are small and flat (K = channels, 32 to 256; N = a chunk's tiles,
 * 64 to 1024), the shapes BLIS's blocked kernels serve worst: on a Zen 5 core BLIS
 * 0.9's AVX2 "sup" path ran them at 40-70 GFLOP/s, libxsmm 1.17's AVX-512 code,
 * generated for the exact shape, at 120-210 (bench: 16 GEMMs of M=OC, N=256, K=C;
 * same inputs, alternating). libxsmm picks the ISA from cpuid (LIBXSMM_TARGET forces
 * one: "hsw" for AVX2, "skx"/"cpx" for AVX-512, "wsm" for SSE4), and the kernel for a
 * shape on a machine is fixed, so results stay the same for any thread count.
 *
 * libxsmm 1.17 multiplies with alpha = 1 and beta 0 or 1, operands stored with one
 * unit stride, and has no kernel for a B stored by columns (in our row-major terms: b
 * with rsb = 1, the weight gradients' dY @ cols^T); such a b is transposed into
 * libxsmm's scratch first (libxsmm_otrans), which measured 2.3-4x faster than BLIS
 * on the Winograd weight gradient's shapes all the same. Anything else, or a shape it
 * declines, returns false and the caller uses BLIS. TG_SMALL_GEMM=blis turns libxsmm
 * off (the tests compare both paths). */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

#ifdef TG_HAVE_LIBXSMM
#include <libxsmm.h>

static atomic_int enabled = -1; /* -1 until TG_SMALL_GEMM is read */

bool tg__small_gemm_enabled(void)
{
    int e = atomic_load_explicit(&enabled, memory_order_relaxed);
    if (e < 0) { /* every thread reads the same variable, so the same answer */
        const char *env = getenv("TG_SMALL_GEMM");
        e = !(env && strcmp(env, "blis") == 0);
        atomic_store_explicit(&enabled, e, memory_order_relaxed);
    }
    return e == 1;
}

const char *tg__small_gemm_name(void)
{
    return tg__small_gemm_enabled() ? libxsmm_get_target_arch() : NULL;
}

/* Row-major c [m, n] = a [m, k] @ b [k, n] is column-major c^T [n, m] = b^T a^T: libxsmm's
 * M = n, N = m, its A is b (no transpose when b's rows are contiguous, csb = 1) and its
 * B is a (likewise). A side stored the other way round is a transpose flag. */
bool tg__small_gemm(tg_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa,
                    int64_t csa, const void *b, int64_t rsb, int64_t csb, double beta, void *c,
                    int64_t rsc, int64_t csc)
{
    if (!tg__small_gemm_enabled() || (beta != 0.0 && beta != 1.0) || csc != 1 || m <= 0 ||
        n <= 0 || k <= 0 || m > INT32_MAX || n > INT32_MAX || k > INT32_MAX)
        return false;
    int flags = beta == 0.0 ? LIBXSMM_GEMM_FLAG_BETA_0 : 0;
    const int prefetch = LIBXSMM_GEMM_PREFETCH_NONE; /* kernels of three arguments */
    libxsmm_blasint ldb, ldc = (libxsmm_blasint)rsc;
    if (csb != 1 && rsb != 1)
        return false;
    if (csa == 1)
        ldb = (libxsmm_blasint)rsa;
    else if (rsa == 1)
        ldb = (libxsmm_blasint)csa, flags |= LIBXSMM_GEMM_FLAG_TRANS_B;
    else
        return false;
    /* b stored by columns is copied by rows first (libxsmm has no kernel for it): ld n */
    libxsmm_blasint lda = csb == 1 ? (libxsmm_blasint)rsb : (libxsmm_blasint)n;
    libxsmm_blasint M = (libxsmm_blasint)n, N = (libxsmm_blasint)m, K = (libxsmm_blasint)k;
    /* the kernel first: a shape libxsmm declines costs no copy */
    libxsmm_smmfunction fs = NULL;
    libxsmm_dmmfunction fd = NULL;
    if (dt == TG_F32) {
        float alpha1 = 1, beta1 = (float)beta;
        fs = libxsmm_smmdispatch(M, N, K, &lda, &ldb, &ldc, &alpha1, &beta1, &flags, &prefetch);
    } else {
        double alpha1 = 1, beta1 = beta;
        fd = libxsmm_dmmdispatch(M, N, K, &lda, &ldb, &ldc, &alpha1, &beta1, &flags, &prefetch);
    }
    if (!fs && !fd)
        return false;
    void *bt = NULL;
    if (csb != 1) {
        size_t es = tg_dtype_size(dt);
        bt = libxsmm_aligned_scratch((size_t)(k * n) * es, 64);
        if (!bt)
            return false;
        libxsmm_otrans(bt, b, (unsigned)es, (libxsmm_blasint)k, (libxsmm_blasint)n,
                       (libxsmm_blasint)csb, (libxsmm_blasint)n);
        b = bt;
    }
    if (fs)
        fs(b, a, c);
    else
        fd(b, a, c);
    libxsmm_free(bt);
#if defined(__x86_64__) || defined(__i386__)
    /* libxsmm's JIT kernels return with the upper halves of the vector registers
     * dirty (no vzeroupper); the SSE code compiled for baseline x86-64 that runs next
     * (batch norm, activations) then pays for every instruction: measured on Zen 5,
     * batch norm 40% slower in a VGG_38 step. vzeroupper exists from AVX on (libxsmm
     * also runs SSE4 kernels on older CPUs, which need none). */
    if (__builtin_cpu_supports("avx"))
        __asm__ volatile("vzeroupper" ::: "memory");
#endif
    return true;
}
#else
bool tg__small_gemm_enabled(void) { return false; }
const char *tg__small_gemm_name(void) { return NULL; }
bool tg__small_gemm(tg_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa,
                    int64_t csa, const void *b, int64_t rsb, int64_t csb, double beta, void *c,
                    int64_t rsc, int64_t csc)
{
    return false;
}
#endif
