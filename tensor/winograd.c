/* tensor/winograd.c — 3x3 stride-1 convolutions by Winograd's minimal filtering
 * F(2x2, 3x3) (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", 2015).
 *
 * A 2x2 block of outputs of one (output, input) channel pair is A^T [U . V] A, with
 * V = B^T d B the transform of the 4x4 input tile d under it and U = G g G^T the
 * transform of the 3x3 filter g: 16 multiplications instead of 36. Summed over input
 * channels, the 16 products become 16 GEMMs, M[k] = U[k] [OC, C] @ V[k] [C, tiles],
 * and the output transform A^T M A gives the 2x2 block. So a convolution is
 *   filters  -> U [16][OC][C]          once per call (in double, then rounded)
 *   tiles    -> V [16][C][tiles]       B^T d B: additions only
 *   16 GEMMs -> M [16][OC][tiles]      2.25x fewer multiply-adds than direct
 *   M        -> y                       A^T M A (+ bias): additions only, edges clipped
 *
 * Work is cut into chunks of whole tile rows (a tile row: 2 output rows of one image),
 * as many as make V and M of one chunk about 1 MiB (CHUNK_BYTES); the chunks are
 * shared among OpenMP threads, and each runs its 16 GEMMs on its own thread. Where a
 * chunk starts depends on the shapes alone, so every output element is computed by
 * the same operations whatever the thread count (the transforms are sums in a fixed
 * order; a one-thread GEMM of a given shape is deterministic): results are bitwise the
 * same for any number of threads.
 *
 * The input gradient of a stride-1 convolution is itself one (of the output gradient
 * with the filter turned 180 degrees and its channel axes swapped, padding 2 - pad), so
 * it runs through the same routine, reading the filter through negative strides.
 *
 * The weight gradient is not a convolution of that shape, but the adjoint of the
 * forward's product: over the same chunks, the input transform V and the output
 * gradient's transform A dY A^T give 16 GEMMs per chunk, [OC, tiles] @ [tiles, C],
 * summed over the tiles and turned into dw by G^T . G (see "the weight gradient"). */
#include "winograd.h"

#include "internal.h"

#include <blis.h>
#include <omp.h>
#include <string.h>

/* ------------------------------------------------------------------ the problem */

/* A filter [out, in, 3, 3] as element strides from the address of tap (0, 0, 0, 0);
 * negative strides read it turned, so the backward's filter needs no copy. */
typedef struct filter_view {
    const char *base;
    int64_t s_out, s_in, s_h, s_w;
} filter_view;

typedef struct plan {
    tg_dtype dt;
    int64_t cin, cout;      /* channels in and out */
    int64_t h, w, oh, ow;   /* one image, one output plane */
    int ph, pw;             /* zero padding */
    int64_t th, tw;         /* tiles per image: th rows of tw, each 2x2 outputs */
    int64_t rows;           /* tile rows of the batch, N * th */
    int64_t chunk_rows;     /* tile rows per chunk */
    const char *x;          /* input [N, cin, h, w] at element strides xs */
    int64_t xs[4];
    char *y;                /* output [N, cout, oh, ow], contiguous */
    const char *bias;       /* [cout] at stride bs, or NULL */
    int64_t bs;
    const char *u;          /* transformed filters [16][cout][cin] */
    const char *dy;         /* weight gradient: the output gradient [N, cout, oh, ow] at */
    int64_t dys[4];         /* element strides dys */
    const struct kernels *k; /* the transforms' copy for this call's instruction set */
} plan;

/* The scratch a chunk needs in V and M (elements). */
static int64_t chunk_elems(const plan *p, int64_t tiles)
{
    return 16 * (p->cin + p->cout) * tiles;
}

/* V and M of a chunk in about this many bytes. Measured on one zen3 core (512 KiB L2)
 * for N = 100, C = OC = 32, 32x32, f32, ms per forward: 512 KiB 22.7, 1 MiB 20.2,
 * 2 MiB 20.6 (and 128 or 256 KiB slower still, 4 MiB too, with an earlier version of
 * the transforms): longer GEMMs (more tiles) win until V and M spill far out of L2.
 * 1 MiB is one 32x32 image's 256 tiles there. Again with the faster transforms (split
 * rows, prefetching), input transform + GEMMs + output transform over all chunks, ms:
 * 32x32 256 KiB 23.5, 512 KiB 18.7, 1 MiB 17.4, 2 MiB 18.2; 16x16 4.9, 4.4, 4.3: the
 * transforms barely change with the chunk (they wait on x, y and L2, not on V's fit),
 * the GEMMs do. */
#define CHUNK_BYTES ((int64_t)1024 * 1024)

/* ------------------------------------------------------------------ transforms */

/* U[k][o][i] = (G g G^T)[k] for g = filter (o, i), with
 *   G = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1],
 * computed in double (the halves are exact) and rounded once to dt. */
static void filter_transform(const plan *p, const filter_view *f, char *u)
{
    size_t es = tg_dtype_size(p->dt);
    for (int64_t o = 0; o < p->cout; o++)
        for (int64_t i = 0; i < p->cin; i++) {
            double g[3][3], t[4][3], r[4][4];
            for (int a = 0; a < 3; a++)
                for (int b = 0; b < 3; b++) {
                    const char *e = f->base + (o * f->s_out + i * f->s_in + a * f->s_h +
                                               b * f->s_w) * (int64_t)es;
                    g[a][b] = p->dt == TG_F32 ? *(const float *)e : *(const double *)e;
                }
            for (int b = 0; b < 3; b++) { /* t = G g */
                t[0][b] = g[0][b];
                t[1][b] = (g[0][b] + g[1][b] + g[2][b]) * 0.5;
                t[2][b] = (g[0][b] - g[1][b] + g[2][b]) * 0.5;
                t[3][b] = g[2][b];
            }
            for (int a = 0; a < 4; a++) { /* r = t G^T */
                r[a][0] = t[a][0];
                r[a][1] = (t[a][0] + t[a][1] + t[a][2]) * 0.5;
                r[a][2] = (t[a][0] - t[a][1] + t[a][2]) * 0.5;
                r[a][3] = t[a][2];
            }
            for (int k = 0; k < 16; k++) {
                char *e = u + ((k * p->cout + o) * p->cin + i) * (int64_t)es;
                if (p->dt == TG_F32)
                    *(float *)e = (float)r[k / 4][k % 4];
                else
                    *(double *)e = r[k / 4][k % 4];
            }
        }
}

/* The loops' iterations are independent and their operands do not overlap; the pragma
 * has gcc vectorise them at -O2 (whose cost model alone leaves loops of unknown
 * length scalar). */
#define SIMD _Pragma("omp simd")

/* The library is built for baseline x86-64 (SSE2). The transforms are compiled three
 * times: for that baseline, for AVX2 and for AVX-512F (GCC's target attribute on every
 * function of winograd_kernels.h), and one copy is chosen once per process by cpuid or
 * TG_ISA (tensor/isa.c; `kernels` below holds each copy's entry points). AVX2 gives 8
 * floats per instruction instead of 4: measured 21.2-22.2 -> 19.6-20.1 ms for the
 * forward above on one zen3 core (8x8 images: 1.90 -> 1.82 ms), when it was a
 * target_clones pair. target_clones chose by cpuid alone, and so could not be forced:
 * one machine could test only the copy it picked. Additions and subtractions round the
 * same in any width, and there is no multiplication to fuse, so every copy gives the
 * same bits (tests/tensor/test_winograd.c compares them). The AVX-512 copy asks GCC
 * for 512-bit vectors outright: GCC 12's generic tuning uses them already, but its
 * tunings for Intel's AVX-512 cores prefer 256 bits, and a -mtune must not turn this
 * copy into the AVX2 one. */
#if TG__ISA_X86
#define TARGET_AVX2 __attribute__((target("avx2")))
#ifdef __clang__
#define TARGET_AVX512 __attribute__((target("avx512f")))
#else
#define TARGET_AVX512 __attribute__((target("avx512f,prefer-vector-width=512")))
#endif
#endif
#define INLINE static inline __attribute__((always_inline))

/* Asks for the lines of a row of w elements of `size` bytes at element stride ws, to be
 * read (or, `write`, written) soon. The transforms go through their planes one after
 * another, and the hardware's prefetcher alone left them waiting on memory: the input
 * rows' loads took a third of the input transform's time, the output rows' stores and
 * the output gradient's loads as much of theirs. */
static inline void prefetch_row(const void *row, int64_t w, int64_t ws, size_t size, bool write)
{
    const char *a = row;
    int64_t step = ws == 1 ? 64 : ws * (int64_t)size, end = w * ws * (int64_t)size;
    if (step <= 0)
        return; /* a broadcast or a turned row: leave it to the hardware */
    for (int64_t b = 0; b < end; b += step) {
        if (write)
            __builtin_prefetch(a + b, 1);
        else
            __builtin_prefetch(a + b);
    }
}

/* The input and output transforms, written once for float and double. Both are sums
 * and differences only (B and A hold 0 and +-1), so a vector lane and a scalar compute
 * the same bits. Each 4x4 transform is done as a horizontal pass on image rows and a
 * vertical pass that runs over all the tile rows of an image in the chunk at once, so
 * that on small images (8x8: 4 tiles a row) the loops are still long; every loop
 * has restrict operands and the SIMD pragma.
 *
 * input_S: V for tile rows [row0, row0 + nrows) of the batch, V[k][c][r * tw + t].
 *   Each input row, split into the even and odd columns of the padded row
 *   (e[u] = row[2u - pw], o[u] = row[2u + 1 - pw], u <= tw, 0 in the padding, so that
 *   tile t covers e[t], o[t], e[t+1], o[t+1]), gives h = d B for its tw tiles; the
 *   rows' h, split into even and odd rows the same way, give V = B^T h, with
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1] in both passes.
 * output_S: y for the same tile rows from M[k][oc][r * tw + t], plus the bias:
 *   s = A^T M over the chunk, then y = s A row by row, with A^T = [1 1 1 0; 0 1 -1 -1].
 *   The second output row of a tile past the plane's end goes to `spare` (a row of
 *   scratch), so that the loops have no test.
 * grad_S: the weight gradient's transform of the output gradient for the same tile rows,
 *   D[k][oc][r * tw + t] = (A dY A^T)[k] for the 2x2 tile dY of output gradient plane
 *   oc (0 where the tile is clipped at the plane's edge): h = dY A^T on each row, then
 *   A h over the chunk, A^T as above. */

/* Runs CALL(S, tw) with tw a constant where `usual` (padding 1, an even width, unit
 * stride) and the tile row is 16, 8, 4 or 2 tiles long (VGG's 32x32 to 4x4 planes), so
 * that the transforms' short row loops are compiled for that count and unrolled: their
 * set-up and remainder handling had cost as much as their work. Input, output and
 * gradient transforms of one call, N = 100, C = 32, one zen3 core, min of 9, ms:
 *   32x32  2.6-2.7 / 2.0 / 2.3   -> 2.3-2.4 / 1.9-1.95 / 2.05
 *   16x16  0.79-0.81 / 0.53 / 0.7 -> 0.50 / 0.39-0.40 / 0.49
 *   8x8    0.40 / 0.20 / 0.23     -> 0.19-0.22 / 0.11 / 0.12
 *   4x4    0.32 / 0.08 / 0.10     -> 0.20 / 0.04 / 0.05
 * The macros named CALL below are each used once, inside the kernels, and read that
 * kernel's variables. */
#define BY_WIDTH(usual, tw, CALL)                                                             \
    do {                                                                                      \
        if ((usual) && (tw) == 16)                                                            \
            CALL(16);                                                                         \
        else if ((usual) && (tw) == 8)                                                        \
            CALL(8);                                                                          \
        else if ((usual) && (tw) == 4)                                                        \
            CALL(4);                                                                          \
        else if ((usual) && (tw) == 2)                                                        \
            CALL(2);                                                                          \
        else                                                                                  \
            CALL(tw);                                                                         \
    } while (0)
#define INPUT_ROWS(TW)                                                                        \
    FN(rows_bt)(plane, next, ih0, rs, usual ? 1 : p->xs[3], usual ? 2 * (TW) : p->w,          \
                usual ? 1 : p->pw, TW, i0, i1, nr, split, h, hs)
#define OUTPUT_ROWS(TW) FN(out_rows)(p, row0, nrows, oc, s, spare, bias, 2 * (TW), TW, ld)
#define GRAD_ROWS(TW) FN(grad_rows)(p, row0, nrows, oc, h, ld, 1, 2 * (TW), TW)
#define OUTPUT_ROWS_ANY(TW) FN(out_rows)(p, row0, nrows, oc, s, spare, bias, p->ow, TW, ld)
#define GRAD_ROWS_ANY(TW) FN(grad_rows)(p, row0, nrows, oc, h, ld, p->dys[3], p->ow, TW)

/* The kernels, for float and for double, once per instruction set: winograd_kernels.h
 * is included once per pair, with T the element type, TARGET the copy's target
 * attribute and FN(name) the copy's name (input_f32_avx2, ...). The call sites above
 * pass the width through BY_WIDTH; their FN names the copy being compiled. */
#define FN_CAT(name, type, isa) name##_##type##_##isa
#define FN_NAME(name, type, isa) FN_CAT(name, type, isa)

#define TARGET
#define T float
#define FN(name) FN_NAME(name, f32, generic)
#include "winograd_kernels.h"
#undef FN
#undef T
#define T double
#define FN(name) FN_NAME(name, f64, generic)
#include "winograd_kernels.h"
#undef FN
#undef T
#undef TARGET

#if TG__ISA_X86
#define TARGET TARGET_AVX2
#define T float
#define FN(name) FN_NAME(name, f32, avx2)
#include "winograd_kernels.h"
#undef FN
#undef T
#define T double
#define FN(name) FN_NAME(name, f64, avx2)
#include "winograd_kernels.h"
#undef FN
#undef T
#undef TARGET

#define TARGET TARGET_AVX512
#define T float
#define FN(name) FN_NAME(name, f32, avx512)
#include "winograd_kernels.h"
#undef FN
#undef T
#define T double
#define FN(name) FN_NAME(name, f64, avx512)
#include "winograd_kernels.h"
#undef FN
#undef T
#undef TARGET
#endif

/* One copy's transforms (the chunk's input and output transforms, the weight
 * gradient's transform of the output gradient), by element type. */
typedef struct kernels {
    void (*input_f32)(const plan *p, int64_t row0, int64_t nrows, float *v, float *buf);
    void (*output_f32)(const plan *p, int64_t row0, int64_t nrows, const float *m, float *buf);
    void (*grad_f32)(const plan *p, int64_t row0, int64_t nrows, float *d, float *buf);
    void (*input_f64)(const plan *p, int64_t row0, int64_t nrows, double *v, double *buf);
    void (*output_f64)(const plan *p, int64_t row0, int64_t nrows, const double *m,
                       double *buf);
    void (*grad_f64)(const plan *p, int64_t row0, int64_t nrows, double *d, double *buf);
} kernels;

#define KERNELS(isa)                                                                          \
    {input_f32_##isa, output_f32_##isa, grad_f32_##isa,                                       \
     input_f64_##isa, output_f64_##isa, grad_f64_##isa}

/* By tg__isa; a build without the x86-64 copies has the generic one in every slot
 * (tg__isa_chosen never picks them there, but the table stays total). */
static const kernels by_isa[TG__ISA_COUNT] = {
    KERNELS(generic),
#if TG__ISA_X86
    KERNELS(avx2),
    KERNELS(avx512),
#else
    KERNELS(generic),
    KERNELS(generic),
#endif
};

/* ------------------------------------------------------------------ one chunk */

/* The 16 GEMMs of a chunk of `tiles` tiles, M[k] = U[k] @ V[k], on this thread alone:
 * libxsmm's kernel for the shape where it is built in (small_gemm.c: 2.0-5.3x BLIS on a
 * Zen 5 core), else BLIS's small-matrix path ("sup"), which for these shapes (K = C =
 * 32, OC = 32, 100 to 1000 columns) ran 2 to 3x faster single-threaded than the
 * packing path (measured on zen3, BLIS 0.9.0). One thread, so the bits do not depend
 * on the thread count. */
static void gemms(const plan *p, int64_t tiles, const char *v, char *m)
{
    tg__blis_setup();
    rntm_t one = BLIS_RNTM_INITIALIZER;
    bli_rntm_set_num_threads(1, &one);
    int64_t es = (int64_t)tg_dtype_size(p->dt), mo = p->cout, ki = p->cin;
    for (int k = 0; k < 16; k++) {
        /* BLIS 0.9's typed API takes its inputs as non-const pointers */
        char *a = (char *)p->u + k * mo * ki * es, *b = (char *)v + k * ki * tiles * es;
        char *c = m + k * mo * tiles * es;
        if (tg__small_gemm(p->dt, mo, tiles, ki, a, ki, 1, b, tiles, 1, 0.0, c, tiles, 1))
            continue;
        if (p->dt == TG_F32) {
            float alpha = 1, beta = 0;
            bli_sgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, mo, tiles, ki, &alpha,
                         (float *)a, ki, 1, (float *)b, tiles, 1, &beta, (float *)c,
                         tiles, 1, NULL, &one);
        } else {
            double alpha = 1, beta = 0;
            bli_dgemm_ex(BLIS_NO_TRANSPOSE, BLIS_NO_TRANSPOSE, mo, tiles, ki, &alpha,
                         (double *)a, ki, 1, (double *)b, tiles, 1, &beta,
                         (double *)c, tiles, 1, NULL, &one);
        }
    }
}

/* The rows input_S and output_S work in (elements): h and the split rows in; s and a
 * spare output row out. */
static int64_t buf_elems(const plan *p)
{
    int64_t in = 8 * (p->chunk_rows + 1) * p->tw + (2 * p->chunk_rows + 2) * 2 * (p->tw + 1);
    int64_t out = 8 * p->chunk_rows * p->tw + p->ow;
    return in > out ? in : out;
}

static void run_chunk(const plan *p, int64_t chunk, char *scratch)
{
    int64_t row0 = chunk * p->chunk_rows;
    int64_t nrows = p->rows - row0 < p->chunk_rows ? p->rows - row0 : p->chunk_rows;
    int64_t tiles = nrows * p->tw, es = (int64_t)tg_dtype_size(p->dt);
    char *v = scratch, *m = v + 16 * p->cin * tiles * es;
    char *buf = m + 16 * p->cout * tiles * es; /* the transforms' rows: buf_elems */
    if (p->dt == TG_F32)
        p->k->input_f32(p, row0, nrows, (float *)v, (float *)buf);
    else
        p->k->input_f64(p, row0, nrows, (double *)v, (double *)buf);
    gemms(p, tiles, v, m);
    if (p->dt == TG_F32)
        p->k->output_f32(p, row0, nrows, (const float *)m, (float *)buf);
    else
        p->k->output_f64(p, row0, nrows, (const double *)m, (double *)buf);
}

/* Cuts the batch's tile rows into chunks, fixed by the shapes alone: as many tile rows as
 * make a chunk's V and M about CHUNK_BYTES, and an even count of chunks, so that 2
 * threads share a small problem evenly (2 threads, N = 100, C = OC = 32: 8x8 images, 7
 * chunks -> 8, 1.28 -> 0.96 ms; 16x16, 25 -> 26, 3.24 -> 3.04 ms). Sets p->chunk_rows;
 * returns the count. */
static int64_t plan_chunks(plan *p)
{
    int64_t es = (int64_t)tg_dtype_size(p->dt);
    int64_t want = CHUNK_BYTES / (16 * (p->cin + p->cout) * es) / p->tw;
    want = want < 1 ? 1 : want > p->rows ? p->rows : want;
    int64_t nchunks = (p->rows + want - 1) / want;
    if (nchunks > 1 && nchunks % 2) {
        nchunks++;
        want = (p->rows + nchunks - 1) / nchunks;
        nchunks = (p->rows + want - 1) / want;
    }
    p->chunk_rows = want;
    return nchunks;
}

/* The OpenMP team for `tasks` independent pieces of p's work: one thread for a small
 * problem or inside another parallel region. */
static int team(const plan *p, int64_t tasks)
{
    tg__threads_init();
    int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
    double work = (double)p->rows * (double)p->tw * (double)(p->cin + p->cout) * 16;
    if (work < TG__PAR_MIN)
        threads = 1;
    return threads > tasks ? (int)tasks : threads;
}

/* Bytes of n elements of p's dtype, rounded up to 64 so that the blocks laid one after
 * another in a scratch area all start aligned. */
static size_t aligned_bytes(const plan *p, int64_t n)
{
    return ((size_t)n * tg_dtype_size(p->dt) + 63) / 64 * 64;
}

/* Runs plan p (every field but chunk_rows and u set) with filter f: scratch for U and
 * for each thread's chunk, taken before the parallel loop and given back after it. */
static tg_status run(const char *fn, tg_arena *ar, plan *p, const filter_view *f)
{
    if (p->rows == 0 || p->cout == 0)
        return TG_OK;
    int64_t nchunks = plan_chunks(p);
    int threads = team(p, nchunks);
    p->k = &by_isa[tg__isa_chosen()]; /* once per call: every chunk uses one copy */
    size_t ubytes = aligned_bytes(p, 16 * p->cout * p->cin);
    size_t per = aligned_bytes(p, chunk_elems(p, p->chunk_rows * p->tw) + buf_elems(p));
    char *s = tg__conv_scratch(fn, ar, ubytes + (size_t)threads * per);
    if (!s)
        return tg_last_status();
    filter_transform(p, f, s);
    p->u = s;

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        char *mine = s + ubytes + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(static)
        for (int64_t c = 0; c < nchunks; c++)
            run_chunk(p, c, mine);
    }

    tg__conv_scratch_free(ar, s);
    return TG_OK;
}

/* ------------------------------------------------------------------ the weight gradient */

/* The forward is y_t = A^T [U . V_t] A per tile t, with U = G w G^T, so by adjointness
 *   dw = G^T [ sum over tiles t of (A dY_t A^T) . V_t ] G
 * and the sum, for each of the 16 positions k, is a GEMM over the tiles:
 *   M[k] [cout, cin] += D[k] [cout, tiles] @ V[k]^T [tiles, cin]
 * (D the output gradient's transform, grad_S). The tiles are the forward's chunks;
 * the chunks are cut into at most TG__CONV_PARTS parts, ranges of consecutive chunks fixed by the
 * shapes alone, and each part sums its chunks, in order and in the dtype, into its own
 * M. The parts' Ms are then added in part order in double and turned into dw by G^T . G
 * in double, rounded once: the bits do not depend on the thread count. */

/* One chunk of the weight gradient: its M[k] (+)= D[k] @ V[k]^T into m [16][cout][cin],
 * overwriting m when `first`. V[k] is [cin][tiles], D[k] [cout][tiles]: V[k]^T is read
 * through its strides. (M[k]^T = V[k] @ D[k]^T, with BLIS's 6x16 kernel's 16 along
 * cout, ran no faster for 3 to 8 input channels and 32 output channels.) */
static void wgrad_chunk(const plan *p, int64_t chunk, char *scratch, char *m, bool first)
{
    int64_t row0 = chunk * p->chunk_rows;
    int64_t nrows = p->rows - row0 < p->chunk_rows ? p->rows - row0 : p->chunk_rows;
    int64_t tiles = nrows * p->tw, es = (int64_t)tg_dtype_size(p->dt);
    int64_t ci = p->cin, co = p->cout;
    char *v = scratch, *d = v + 16 * ci * tiles * es, *buf = d + 16 * co * tiles * es;
    if (p->dt == TG_F32) {
        p->k->input_f32(p, row0, nrows, (float *)v, (float *)buf);
        p->k->grad_f32(p, row0, nrows, (float *)d, (float *)buf);
    } else {
        p->k->input_f64(p, row0, nrows, (double *)v, (double *)buf);
        p->k->grad_f64(p, row0, nrows, (double *)d, (double *)buf);
    }
    for (int k = 0; k < 16; k++)
        tg__gemm(p->dt, co, ci, tiles, 1.0, d + k * co * tiles * es, tiles, 1,
                 v + k * ci * tiles * es, 1, tiles, first ? 0.0 : 1.0, m + k * co * ci * es, ci,
                 1);
}

/* Rows [r0, r1) of sum [16 * cout][cin] (in double) = the parts' m, added in part order. */
static void add_parts(const plan *p, const char *parts, size_t part_bytes, int64_t nparts,
                      int64_t r0, int64_t r1, double *sum)
{
    int64_t n = (r1 - r0) * p->cin, off = r0 * p->cin;
    double *restrict s = sum + off;
    for (int64_t e = 0; e < n; e++)
        s[e] = 0;
    for (int64_t q = 0; q < nparts; q++) {
        const char *src = parts + q * part_bytes;
        if (p->dt == TG_F32) {
            const float *restrict f = (const float *)src + off;
            SIMD for (int64_t e = 0; e < n; e++)
                s[e] += f[e];
        } else {
            const double *restrict d = (const double *)src + off;
            SIMD for (int64_t e = 0; e < n; e++)
                s[e] += d[e];
        }
    }
}

/* dw[o][i] for every i = G^T M G in double, rounded once, M[k] = sum[k][o][i]; with
 *   G^T = [1 1/2 1/2 0; 0 1/2 -1/2 0; 0 1/2 1/2 1]. */
static void filter_gradient(const plan *p, const double *sum, int64_t o, char *dw)
{
    int64_t sk = p->cout * p->cin;
    size_t es = tg_dtype_size(p->dt);
    for (int64_t i = 0; i < p->cin; i++) {
        double m[4][4], t[3][4];
        for (int k = 0; k < 16; k++)
            m[k / 4][k % 4] = sum[k * sk + o * p->cin + i];
        for (int b = 0; b < 4; b++) { /* t = G^T M */
            t[0][b] = m[0][b] + (m[1][b] + m[2][b]) * 0.5;
            t[1][b] = (m[1][b] - m[2][b]) * 0.5;
            t[2][b] = (m[1][b] + m[2][b]) * 0.5 + m[3][b];
        }
        char *out = dw + (size_t)(o * p->cin + i) * 9 * es;
        for (int a = 0; a < 3; a++) { /* dw = t G */
            double r[3] = {t[a][0] + (t[a][1] + t[a][2]) * 0.5, (t[a][1] - t[a][2]) * 0.5,
                           (t[a][1] + t[a][2]) * 0.5 + t[a][3]};
            for (int b = 0; b < 3; b++)
                tg__store(p->dt, out + (size_t)(3 * a + b) * es, r[b]);
        }
    }
}

/* Runs the weight gradient of plan p (every field but chunk_rows, u and y set) into
 * dw [cout, cin, 3, 3], contiguous. Scratch, taken before the parallel region and given
 * back after it: the parts' m, their sum in double, and each thread's chunk. */
static tg_status run_wgrad(const char *fn, tg_arena *ar, plan *p, char *dw)
{
    int64_t nchunks = plan_chunks(p);
    int64_t nparts = nchunks < TG__CONV_PARTS ? nchunks : TG__CONV_PARTS;
    int threads = team(p, nparts);
    p->k = &by_isa[tg__isa_chosen()];
    int64_t rows = 16 * p->cout; /* of each m and of sum, cin long */
    size_t part = aligned_bytes(p, 16 * p->cout * p->cin);
    size_t sum_bytes = ((size_t)(16 * p->cout * p->cin) * sizeof(double) + 63) / 64 * 64;
    size_t per = aligned_bytes(p, chunk_elems(p, p->chunk_rows * p->tw) + buf_elems(p));
    size_t shared = (size_t)nparts * part + sum_bytes;
    char *s = tg__conv_scratch(fn, ar, shared + (size_t)threads * per);
    if (!s)
        return tg_last_status();
    double *sum = (double *)(s + (size_t)nparts * part);

#pragma omp parallel num_threads(threads) if (threads > 1)
    {
        char *mine = s + shared + (size_t)omp_get_thread_num() * per;
#pragma omp for schedule(static)
        for (int64_t q = 0; q < nparts; q++) {
            int64_t c0 = q * nchunks / nparts, c1 = (q + 1) * nchunks / nparts;
            for (int64_t c = c0; c < c1; c++)
                wgrad_chunk(p, c, mine, s + (size_t)q * part, c == c0);
        }
        /* the sums in blocks of 16 rows, each element's in part order whoever adds it */
#pragma omp for schedule(static)
        for (int64_t r = 0; r < rows; r += 16)
            add_parts(p, s, part, nparts, r, r + 16 < rows ? r + 16 : rows, sum);
#pragma omp for schedule(static)
        for (int64_t o = 0; o < p->cout; o++)
            filter_gradient(p, sum, o, dw);
    }

    tg__conv_scratch_free(ar, s);
    return TG_OK;
}

/* ------------------------------------------------------------------ checks */

/* conv.c's description of g, which may be NULL here */
static const char *geom_str(char *buf, size_t size, const tg_conv2d_geom *g)
{
    return g ? tg__conv_geom_str(buf, size, g, false) : "no geometry";
}

static bool geometry_applies(const tg_conv2d_geom *g)
{
    return g && g->kh == 3 && g->kw == 3 && g->stride_h == 1 && g->stride_w == 1 &&
           g->dil_h == 1 && g->dil_w == 1 && g->pad_h >= 0 && g->pad_h <= 2 && g->pad_w >= 0 &&
           g->pad_w <= 2;
}

bool tg__winograd_applies(const tg_tensor *x, const tg_tensor *w, const tg_conv2d_geom *g)
{
    if (!x || !w || !geometry_applies(g) || x->ndim != 4 || w->ndim != 4)
        return false;
    if ((x->dtype != TG_F32 && x->dtype != TG_F64) || w->dtype != x->dtype)
        return false;
    if (w->shape[1] != x->shape[1] || w->shape[2] != 3 || w->shape[3] != 3)
        return false;
    for (int d = 0; d < 4; d++)
        if (x->shape[d] < 1 || w->shape[d] < 1)
            return false; /* the empty cases stay with the general path */
    return x->shape[2] + 2 * g->pad_h >= 3 && x->shape[3] + 2 * g->pad_w >= 3;
}

/* The message when tg__winograd_applies said no (`ok` false), naming the user's x, w
 * and g; then that out has the shape want, x's dtype and a contiguous layout. */
static tg_status check(const char *fn, bool ok, const tg_tensor *out, const char *out_name,
                       const int64_t *want, const tg_tensor *x, const char *x_name,
                       const tg_tensor *w, const char *w_name, const tg_conv2d_geom *g)
{
    char sx[TG__SHAPE_STR], sw[TG__SHAPE_STR], so[TG__SHAPE_STR], sx2[TG__SHAPE_STR], gs[160];
    if (!ok)
        return tg_set_error_in(
            TG_ERR_ARG,
            fn, "%s %s (%s), %s %s (%s), %s: not a 3x3 stride-1 convolution with padding at most "
            "2 of non-empty f32 or f64 tensors with matching channels",
            x_name, TG__SHAPE(sx, x), tg_dtype_name(x->dtype), w_name, TG__SHAPE(sw, w),
            tg_dtype_name(w->dtype), geom_str(gs, sizeof gs, g));
    if (out->ndim != 4 || memcmp(out->shape, want, 4 * sizeof *want) != 0 ||
        out->dtype != x->dtype || !tg_tensor_is_contiguous(out))
        return tg_set_error_in(TG_ERR_SHAPE, fn, "%s %s (%s) must be contiguous %s of %s for %s %s",
                            out_name, TG__SHAPE(so, out), tg_dtype_name(out->dtype),
                            tg_shape_str(sx2, sizeof sx2, 4, want), tg_dtype_name(x->dtype),
                            x_name, TG__SHAPE(sx, x));
    return TG_OK;
}

/* ------------------------------------------------------------------ entry points */

static void plan_input(plan *p, const tg_tensor *x)
{
    p->dt = x->dtype;
    p->h = x->shape[2];
    p->w = x->shape[3];
    p->x = tg__ptr(x);
    for (int d = 0; d < 4; d++)
        p->xs[d] = x->strides[d];
}

/* The tiles of n output planes of oh x ow */
static void plan_tiles(plan *p, int64_t n, int64_t oh, int64_t ow)
{
    p->oh = oh;
    p->ow = ow;
    p->th = (oh + 1) / 2;
    p->tw = (ow + 1) / 2;
    p->rows = n * p->th;
}

static void plan_output(plan *p, tg_tensor *y, int64_t n)
{
    plan_tiles(p, n, y->shape[2], y->shape[3]);
    p->y = tg__ptr(y);
}

tg_status tg__winograd_conv2d(tg_arena *ar, tg_tensor *y, const tg_tensor *x, const tg_tensor *w,
                              const tg_tensor *b, const tg_conv2d_geom *g)
{
    const char *fn = "tg__winograd_conv2d";
    TG__CHECK_STATUS(fn, y && x && w);
    int64_t oc = w->shape[0];
    int64_t want[4] = {x->shape[0], oc, 0, 0};
    if (g && x->ndim == 4) {
        want[2] = tg_conv2d_out_size(x->shape[2], 3, 1, g->pad_h, 1);
        want[3] = tg_conv2d_out_size(x->shape[3], 3, 1, g->pad_w, 1);
    }
    tg_status st = check(fn, tg__winograd_applies(x, w, g), y, "output", want, x, "input", w,
                         "weight", g);
    if (st != TG_OK)
        return st;
    char sb[TG__SHAPE_STR];
    if (b && (b->ndim != 1 || b->shape[0] != oc || b->dtype != x->dtype))
        return tg_set_error_in(TG_ERR_SHAPE, fn, "bias %s (%s) must be [%lld] of %s",
                            TG__SHAPE(sb, b), tg_dtype_name(b->dtype), (long long)oc,
                            tg_dtype_name(x->dtype));
    plan p = {.cin = x->shape[1], .cout = oc, .ph = g->pad_h, .pw = g->pad_w};
    plan_input(&p, x);
    plan_output(&p, y, x->shape[0]);
    if (b) {
        p.bias = tg__ptr(b);
        p.bs = b->strides[0];
    }
    filter_view f = {tg__ptr(w), w->strides[0], w->strides[1], w->strides[2], w->strides[3]};
    return run(fn, ar, &p, &f);
}

tg_status tg__winograd_conv2d_backward_input(tg_arena *ar, tg_tensor *dx, const tg_tensor *gy,
                                             const tg_tensor *w, const tg_conv2d_geom *g)
{
    const char *fn = "tg__winograd_conv2d_backward_input";
    TG__CHECK_STATUS(fn, dx && gy && w);
    if (!g || !geometry_applies(g) || w->ndim != 4 || dx->ndim != 4) {
        char sw[TG__SHAPE_STR], sd[TG__SHAPE_STR], gs[160];
        return tg_set_error_in(TG_ERR_ARG, fn, "weight %s, input gradient %s, %s: not a 3x3 "
                                        "stride-1 convolution with padding at most 2",
                            TG__SHAPE(sw, w), TG__SHAPE(sd, dx),
                            geom_str(gs, sizeof gs, g));
    }
    /* the input gradient's convolution: gy [N, OC, OH, OW] with the turned filter
     * [C, OC, 3, 3] and padding 2 - pad gives [N, C, H, W] */
    tg_conv2d_geom back = *g;
    back.pad_h = 2 - g->pad_h;
    back.pad_w = 2 - g->pad_w;
    tg_tensor turned = *w; /* its shape only, for the check: [C, OC, 3, 3] */
    turned.shape[0] = w->shape[1];
    turned.shape[1] = w->shape[0];
    int64_t want[4] = {gy->ndim == 4 ? gy->shape[0] : 0, w->shape[1], 0, 0};
    if (gy->ndim == 4) {
        want[2] = tg_conv2d_out_size(gy->shape[2], 3, 1, back.pad_h, 1);
        want[3] = tg_conv2d_out_size(gy->shape[3], 3, 1, back.pad_w, 1);
    }
    tg_status st = check(fn, tg__winograd_applies(gy, &turned, &back), dx, "input gradient", want,
                         gy, "output gradient", w, "weight", g);
    if (st != TG_OK)
        return st;
    plan p = {.cin = w->shape[0], .cout = w->shape[1], .ph = back.pad_h, .pw = back.pad_w};
    plan_input(&p, gy);
    plan_output(&p, dx, gy->shape[0]);
    /* turned[c][o][a][b] = w[o][c][2 - a][2 - b] */
    int64_t es = (int64_t)tg_dtype_size(w->dtype);
    filter_view f = {tg__ptr(w) + (2 * w->strides[2] + 2 * w->strides[3]) * es, w->strides[1],
                     w->strides[0], -w->strides[2], -w->strides[3]};
    return run(fn, ar, &p, &f);
}

tg_status tg__winograd_conv2d_backward_weight(tg_arena *ar, tg_tensor *dw, const tg_tensor *gy,
                                              const tg_tensor *x, const tg_conv2d_geom *g)
{
    const char *fn = "tg__winograd_conv2d_backward_weight";
    TG__CHECK_STATUS(fn, dw && gy && x);
    /* dw's own shape when the first check passes: its contiguity is what is checked */
    int64_t want[4] = {dw->shape[0], x->ndim == 4 ? x->shape[1] : 0, 3, 3};
    tg_status st = check(fn, tg__winograd_applies(x, dw, g), dw, "weight gradient", want, x,
                         "input", dw, "weight gradient", g);
    if (st != TG_OK)
        return st;
    int64_t n = x->shape[0], oc = dw->shape[0];
    int64_t oh = tg_conv2d_out_size(x->shape[2], 3, 1, g->pad_h, 1);
    int64_t ow = tg_conv2d_out_size(x->shape[3], 3, 1, g->pad_w, 1);
    const int64_t gwant[4] = {n, oc, oh, ow};
    if (gy->ndim != 4 || memcmp(gy->shape, gwant, sizeof gwant) != 0 || gy->dtype != x->dtype) {
        char sg[TG__SHAPE_STR], sw[TG__SHAPE_STR], sx[TG__SHAPE_STR], sd[TG__SHAPE_STR], gs[160];
        return tg_set_error_in(TG_ERR_SHAPE,
                            fn, "output gradient %s (%s) must be %s of %s for input %s, weight "
                            "gradient %s and %s",
                            TG__SHAPE(sg, gy), tg_dtype_name(gy->dtype),
                            tg_shape_str(sw, sizeof sw, 4, gwant), tg_dtype_name(x->dtype),
                            TG__SHAPE(sx, x), TG__SHAPE(sd, dw), geom_str(gs, sizeof gs, g));
    }
    plan p = {.cin = x->shape[1], .cout = oc, .ph = g->pad_h, .pw = g->pad_w};
    plan_input(&p, x);
    plan_tiles(&p, n, oh, ow);
    p.dy = tg__ptr(gy);
    for (int d = 0; d < 4; d++)
        p.dys[d] = gy->strides[d];
    return run_wgrad(fn, ar, &p, tg__ptr(dw));
}
