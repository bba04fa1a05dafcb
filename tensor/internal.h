/* tensor/internal.h — what the tensor/ sources share and nothing outside the library
 * sees: the storage layout, the allocation and error helpers, the strided iterator
 * that every elementwise kernel runs on, and stack-allocated views. Internal symbols
 * carry the tg__ prefix. */
#ifndef TAPEGRAD_TENSOR_INTERNAL_H
#define TAPEGRAD_TENSOR_INTERNAL_H

#include "tapegrad/tensor.h"
#include "tapegrad/tensor_advanced.h" /* the arena marks alloc.c defines */

#include <stdatomic.h>

/* ------------------------------------------------------------------ storage */

struct tg_storage {
    void *data;
    size_t nbytes;
    atomic_int refcount; /* -1: owned by an arena, not counted */
    bool borrowed;       /* data belongs to the caller */
    /* Writes made to existing data through the library (tg_tensor_version). Not atomic:
     * two threads writing one storage at once race on its data anyway. */
    uint64_t version;
};

/* After a write into t's existing elements (an _ or _out function, tg_tensor_set): the
 * tape's in-place check compares versions. Fresh tensors need not call it. */
static inline void tg__written(const tg_tensor *t) { t->storage->version++; }

/* A new tensor header (from ar, or the heap) with a fresh contiguous storage of
 * numel * dtype size bytes, uninitialised. Same as tg_tensor_empty. */
tg_tensor *tg__new(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape);
/* The same, for a shape the user gave: a bad shape's message names `fn`. */
tg_tensor *tg__new_named(const char *fn, tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape);
/* A new header that is a copy of *view (same storage, retained if counted). */
tg_tensor *tg__header_like(tg_arena *ar, const tg_tensor *view);
/* Fills t's strides for a row-major layout of its shape. */
void tg__set_contiguous_strides(tg_tensor *t);

/* ------------------------------------------------------------------ memory */

void *tg__alloc(size_t size, size_t align); /* through the allocator hook; NULL + error */
void tg__free(void *p);

/* ------------------------------------------------------------------ errors */

/* For a function `fn` that got a NULL tensor: keeps the message of the failure that
 * produced the NULL, or records one if there was none. */
void tg__null_input(const char *fn);
/* The usual guards: return NULL (or the status) from the calling function. */
#define TG__CHECK_NULL(fn, x)      \
    do {                           \
        if (!(x)) {                \
            tg__null_input(fn);    \
            return NULL;           \
        }                          \
    } while (0)
#define TG__CHECK_STATUS(fn, x)        \
    do {                               \
        if (!(x)) {                    \
            tg__null_input(fn);        \
            return tg_last_status();   \
        }                              \
    } while (0)
/* Records the error (fn names the function the user called) and evaluates to NULL:
 * `return TG__FAIL(TG_ERR_SHAPE, fn, "...")`. */
#define TG__FAIL(status, fn, ...) (tg_set_error_in((status), (fn), __VA_ARGS__), (tg_tensor *)NULL)

/* "[2,3]" of a tensor into a caller's buffer of TG__SHAPE_STR bytes */
#define TG__SHAPE_STR 160
#define TG__SHAPE(buf, t) tg_shape_str((buf), sizeof(buf), (t)->ndim, (t)->shape)

/* Normalises a possibly negative axis; -1 if out of range. */
static inline int tg__axis(int axis, int ndim)
{
    if (axis < 0)
        axis += ndim;
    return (axis >= 0 && axis < ndim) ? axis : -1;
}

/* The first axis along which several elements of t are one address (size > 1, stride
 * 0: a broadcast view, which cannot be written), or -1. An empty tensor has no
 * elements to share an address, so it has none, whatever its strides. */
static inline int tg__broadcast_axis(const tg_tensor *t)
{
    if (tg_tensor_numel(t) == 0)
        return -1;
    for (int i = 0; i < t->ndim; i++)
        if (t->strides[i] == 0 && t->shape[i] > 1)
            return i;
    return -1;
}

/* ------------------------------------------------------------------ elements */

static inline double tg__load(tg_dtype dt, const char *p)
{
    switch (dt) {
    case TG_F32: return *(const float *)p;
    case TG_F64: return *(const double *)p;
    case TG_U8: return *(const uint8_t *)p;
    case TG_I32: return *(const int32_t *)p;
    default: return 0;
    }
}

/* Float to integer truncates toward zero and saturates (no UB on out-of-range or NaN,
 * which becomes 0). */
static inline void tg__store(tg_dtype dt, char *p, double v)
{
    switch (dt) {
    case TG_F32: *(float *)p = (float)v; break;
    case TG_F64: *(double *)p = v; break;
    case TG_U8: *(uint8_t *)p = v != v ? 0 : v <= 0 ? 0 : v >= 255 ? 255 : (uint8_t)v; break;
    case TG_I32:
        *(int32_t *)p = v != v ? 0 : v <= -2147483648.0 ? INT32_MIN
                        : v >= 2147483647.0             ? INT32_MAX
                                                        : (int32_t)v;
        break;
    default: break;
    }
}

static inline char *tg__ptr(const tg_tensor *t)
{
    return (char *)t->storage->data + (size_t)t->offset * tg_dtype_size(t->dtype);
}

/* ------------------------------------------------------------------ views on the stack */
/* The view functions' logic, writing the result into *dst (which may live on the
 * stack) instead of allocating a header; each returns TG_OK or an error naming fn. */
tg_status tg__expand_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int64_t *shape,
                          const char *fn);
tg_status tg__permute_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int *perm,
                           const char *fn);
tg_status tg__view_into(tg_tensor *dst, const tg_tensor *t, int ndim, const int64_t *shape,
                        const char *fn); /* fails when a reshape needs a copy */

/* ------------------------------------------------------------------ iteration */

/* Elementwise kernels run over rows: the operands (already views of one common shape,
 * broadcast axes at stride 0) are walked with their axes merged where every operand is
 * contiguous across them, and the last axis handed to a row function as (n, pointers,
 * byte strides). The fast path of a kernel is a row whose strides equal the element
 * size. Above TG__PAR_MIN elements the rows (or chunks of one long row) are shared
 * among OpenMP threads; each output element is computed the same way whatever the
 * thread count. Never called from inside a parallel region (it then runs serially). */
#define TG__MAX_OPS 4
#define TG__PAR_MIN 32768

typedef void (*tg__row_fn)(int64_t n, char **ptr, const int64_t *stride, void *ctx);

typedef struct tg__iter {
    int nops;
    int ndim; /* >= 1 after merging */
    int64_t shape[TG_MAX_DIMS];
    int64_t stride[TG__MAX_OPS][TG_MAX_DIMS]; /* bytes */
    char *base[TG__MAX_OPS];
} tg__iter;

/* ops[0] is usually the output; every ops[i] must have shape (ndim, shape). */
void tg__iter_init(tg__iter *it, int nops, const tg_tensor *const *ops);
void tg__iter_run(const tg__iter *it, tg__row_fn fn, void *ctx);

/* ------------------------------------------------------------------ sums
 * The library's one rule for a sum of many values (docs/design.md, "Sums"), shared by
 * the reductions and batch norm: values are added in double by the caller's plain loop
 * (its order fixed at compile time) in chunks of TG__SUM_CHUNK consecutive values (the
 * last may be shorter); each chunk's sum is pushed on a stack where, as a binary
 * counter combines its carries, the k-th push merges the top two entries ctz(k) times;
 * the result folds the stack from the top. So the error grows with log2(m /
 * TG__SUM_CHUNK), not with m, and a block of TG__SUM_CHUNK * 2^j values that starts at
 * a multiple of its size enters the stack as one entry: a sum cut into such blocks
 * among threads, whose block sums are pushed in order, gives the serial bits. nt sums
 * of sequences of one length (lanes) can share a counter: lane t of entry i is
 * stack[i * nt + t]. */
#define TG__SUM_CHUNK 128
#define TG__SUM_LEVELS 48 /* stack entries: enough for 2^46 chunks */

typedef struct tg__sum {
    int nt;          /* lanes */
    int top;         /* entries on the stack */
    uint64_t pushed; /* entries pushed so far */
    double *stack;   /* the caller's, TG__SUM_LEVELS * nt doubles */
} tg__sum;

static inline void tg__sum_init(tg__sum *s, int nt, double *stack)
{
    *s = (tg__sum){.nt = nt, .stack = stack};
}

/* Pushes one entry: a chunk's sums (or an aligned block's), nt of them. */
static inline void tg__sum_push(tg__sum *s, const double *v)
{
    const int nt = s->nt;
    double *e = s->stack + s->top * nt;
    for (int t = 0; t < nt; t++)
        e[t] = v[t];
    s->top++;
    for (uint64_t k = ++s->pushed; !(k & 1); k >>= 1, e -= nt) {
        s->top--;
        for (int t = 0; t < nt; t++)
            e[t - nt] += e[t];
    }
}

/* The sums of everything pushed, lane by lane, into out[0..nt): 0 for nothing. */
static inline void tg__sum_result(const tg__sum *s, double *out)
{
    for (int t = 0; t < s->nt; t++) {
        double r = s->top > 0 ? s->stack[(s->top - 1) * s->nt + t] : 0;
        for (int i = s->top - 2; i >= 0; i--)
            r = s->stack[i * s->nt + t] + r;
        out[t] = r;
    }
}

/* The loop that sums one contiguous piece of a chunk, in the reductions and in batch
 * norm: n values from x, value i into accumulator i mod 8 (the tail into the first),
 * the eight combined as a balanced tree, so that the loop runs at the adder's
 * throughput rather than its latency. TERM(v, c) is what is summed: the value
 * (TG__TERM_SUM) or its squared deviation from c (TG__TERM_SQDEV). Inline, because a
 * piece can be as short as a 4x4 plane. */
#define TG__TERM_SUM(v, c) ((void)(c), (v))
#define TG__TERM_SQDEV(v, c) (((v) - (c)) * ((v) - (c)))
#define TG__DEFINE_SUM8(name, T, TERM)                                                      \
    static inline double name(const T *x, int64_t n, double c)                              \
    {                                                                                       \
        double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;              \
        int64_t i = 0;                                                                      \
        for (; i + 8 <= n; i += 8) {                                                        \
            a0 += TERM((double)x[i], c);                                                    \
            a1 += TERM((double)x[i + 1], c);                                                \
            a2 += TERM((double)x[i + 2], c);                                                \
            a3 += TERM((double)x[i + 3], c);                                                \
            a4 += TERM((double)x[i + 4], c);                                                \
            a5 += TERM((double)x[i + 5], c);                                                \
            a6 += TERM((double)x[i + 6], c);                                                \
            a7 += TERM((double)x[i + 7], c);                                                \
        }                                                                                   \
        for (; i < n; i++)                                                                  \
            a0 += TERM((double)x[i], c);                                                    \
        return ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7));                           \
    }
TG__DEFINE_SUM8(tg__sum8_f32, float, TG__TERM_SUM)
TG__DEFINE_SUM8(tg__sum8_f64, double, TG__TERM_SUM)
TG__DEFINE_SUM8(tg__sqdev8_f32, float, TG__TERM_SQDEV)
TG__DEFINE_SUM8(tg__sqdev8_f64, double, TG__TERM_SQDEV)

/* ------------------------------------------------------------------ convolution */

/* One image's convolution or pooling problem, checked (conv.c). */
typedef struct tg__conv_dims {
    int64_t h, w, oh, ow;
    tg_conv2d_geom g; /* dilation 1 for pooling */
} tg__conv_dims;

/* "kernel 3x3, stride 1x1, padding 1x1[, dilation 1x1]" into buf. */
char *tg__conv_geom_str(char *buf, size_t size, const tg_conv2d_geom *g, bool pool);
/* x must be [N, C, H, W] of f32 or f64; `desc` receives "<what> [N,C,H,W]" for messages. */
bool tg__conv_check_image(const char *fn, const char *what, const tg_tensor *x, char *desc,
                          size_t size);
/* Checks geometry g for fn on an h x w image (`input` names it) and fills d; pooling
 * ignores dilation and wants padding at most half the kernel. */
bool tg__conv_check_geom(const char *fn, const tg_conv2d_geom *g, bool pool, const char *input,
                         int64_t h, int64_t w, tg__conv_dims *d);
/* The columns of one image (channels * kh * kw rows of oh * ow) must stay far from int64
 * overflow; `what` names the image in the message (tg__new checks the whole size). */
bool tg__conv_check_size(const char *fn, int64_t channels, const tg__conv_dims *d,
                         const char *what);
/* The gradient gout must have exactly the 4-D shape `want` (`against` says whose). */
bool tg__conv_check_grad_shape(const char *fn, const tg_tensor *gout, const int64_t *want,
                               const char *against);
/* The most partial sums a weight gradient is cut into (ranges of images, or of
 * Winograd chunks, fixed by the shapes alone): 1, 2, 4, 8 and 16 threads get equal
 * shares, and the partials are added in order, so the bits do not depend on the
 * thread count. */
#define TG__CONV_PARTS 16

/* A convolution kernel's scratch, 64-byte aligned: a block from ar (a large one, given
 * back by tg__conv_scratch_free before the kernel returns) or, with ar NULL, from the
 * allocator hook. NULL, with an error naming fn, when memory runs out. */
void *tg__conv_scratch(const char *fn, tg_arena *ar, size_t size);
void tg__conv_scratch_free(tg_arena *ar, void *s);
/* A tile of image n's columns: output rows [r0, r1) of x ([N, C, H, W], f32/f64, any
 * strides) into dst, contiguous [C*kh*kw, (r1 - r0) * OW]. */
void tg__im2col_tile(char *dst, const tg_tensor *x, int64_t n, const tg__conv_dims *d, int64_t r0,
                     int64_t r1);
/* Its adjoint: adds such a tile (contiguous) into img, one image's contiguous [C, H, W]. */
void tg__col2im_tile(tg_dtype dt, char *img, const char *cols, int64_t channels,
                     const tg__conv_dims *d, int64_t r0, int64_t r1);

/* ------------------------------------------------------------------ matmul */

/* c [m, n] = alpha * a [m, k] @ b [k, n] + beta * c on the calling thread alone, for a
 * kernel that runs its own OpenMP loop around it (matmul.c). Strides are in elements and
 * must follow BLIS's rule (blis_strides in matmul.c; a size-1 axis's stride is fixed up
 * there); the result does not depend on the thread count. */
void tg__gemm(tg_dtype dt, int64_t m, int64_t n, int64_t k, double alpha, const void *a,
              int64_t rsa, int64_t csa, const void *b, int64_t rsb, int64_t csb, double beta,
              void *c, int64_t rsc, int64_t csc);

/* c [m, n] = a [m, k] @ b [k, n] + beta * c (beta 0 or 1) on the calling thread through
 * libxsmm's JIT kernel for the shape (small_gemm.c); false, with nothing written, when
 * libxsmm is not built in, is turned off (TG_SMALL_GEMM=blis) or declines the operands:
 * the caller then uses BLIS. */
bool tg__small_gemm(tg_dtype dt, int64_t m, int64_t n, int64_t k, const void *a, int64_t rsa,
                    int64_t csa, const void *b, int64_t rsb, int64_t csb, double beta, void *c,
                    int64_t rsc, int64_t csc);
bool tg__small_gemm_enabled(void);
/* libxsmm's target ISA ("cpx", "hsw", ...) while it is in use, else NULL. */
const char *tg__small_gemm_name(void);

/* ------------------------------------------------------------------ random */

/* One Philox 4x32-10 block (Random123's philox4x32(ctr, key)); exposed for the
 * known-answer test. */
void tg__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4]);

/* ------------------------------------------------------------------ threads */

/* Applies the default thread count once (OMP_NUM_THREADS or the cores) to OpenMP and
 * BLIS; called by kernels before their first parallel work. */
void tg__threads_init(void);
/* The threads to use when `others_busy` of the `cores` this process may run on are
 * taken by other processes: the cores left, rounded, between 1 and `wanted`. */
int tg__threads_for_load(int wanted, int cores, double others_busy);
/* Chooses BLIS's kernel set before its first call (blis_setup.c); once per process.
 * Everything here that calls BLIS calls this first (tg__threads_init does). */
void tg__blis_setup(void);

/* ------------------------------------------------------------------ instruction sets */

/* The copies of tapegrad's own vectorised loops (the Winograd transforms), in the order
 * of their vectors' width (isa.c). */
typedef enum tg__isa { TG__ISA_GENERIC, TG__ISA_AVX2, TG__ISA_AVX512, TG__ISA_COUNT } tg__isa;
/* Whether this build has the x86-64 copies (GCC or Clang on x86-64); elsewhere only
 * the generic copy is compiled. -DTG__ISA_X86=0 builds that portable path on x86-64
 * too, to check that it compiles and passes. */
#ifndef TG__ISA_X86
#if defined(__x86_64__) && defined(__GNUC__)
#define TG__ISA_X86 1
#else
#define TG__ISA_X86 0
#endif
#endif
/* "generic", "avx2", "avx512": TG_ISA's values and the names logs print. */
const char *tg__isa_name(tg__isa isa);
/* Whether this build has that copy and this CPU can run it. */
bool tg__isa_supported(tg__isa isa);
/* The copies this CPU can run, bit i for tg__isa i (generic's bit always set). */
unsigned tg__isa_available(void);
/* The copy TG_ISA's value asks for on a CPU that can run the copies in `have`: the
 * default (AVX2 where present, isa.c says why) for NULL, "" or "auto"; for a value it
 * cannot run or does not know, also the default, with the warning written into why
 * (else why is ""). No side effects. */
tg__isa tg__isa_parse(const char *value, unsigned have, char *why, size_t why_size);
/* The copy in use: chosen on the first call (tg__isa_parse of TG_ISA, its warning on
 * stderr), the same afterwards. */
tg__isa tg__isa_chosen(void);
/* For tests and benchmarks: use `isa` from now on; false, changing nothing, when the
 * CPU cannot run it. Not for use while kernels run on other threads. */
bool tg__isa_force(tg__isa isa);

#endif
