/* tapegrad/tensor.h — strided tensors, their kernels and the arena they live in.
 *
 *   tg_arena  *ar = tg_arena_new(0);                     // one step's memory
 *   tg_rng     g  = tg_rng_new(0);                       // seed 0, stream 0
 *   tg_tensor *x  = tg_tensor_randn(ar, &g, TG_F32, TG_DIMS(100, 288));
 *   tg_tensor *w  = tg_tensor_randn(ar, &g, TG_F32, TG_DIMS(32, 288));
 *   tg_tensor *y  = tg_tensor_matmul(ar, x, tg_tensor_transpose(ar, w, 0, 1)); // no copy
 *   tg_tensor *m  = tg_tensor_mean(ar, y, TG_AXES(0), true);     // [1,32]
 *   tg_tensor *c  = tg_tensor_sub(ar, y, m);                      // broadcast
 *   if (!c) fprintf(stderr, "%s\n", tg_last_error());             // once, at the end
 *   tg_tensor_print(stdout, c);
 *   tg_arena_reset(ar);      // frees x..c at once; the memory is kept for the next step
 *
 * A tensor is a view: dtype, shape, strides (in elements, 0 for a broadcast axis),
 * offset, and a reference-counted storage. Views (reshape, permute, slice, expand, ...)
 * share storage and copy nothing; every kernel takes any strides.
 *
 * Memory. Every function that makes a tensor takes an arena first. With an arena, the
 * tensor and its storage come from it and die with tg_arena_reset/tg_arena_free: a
 * training step allocates from one arena and resets it, so a steady-state step calls
 * no malloc. With NULL, the tensor is on the heap: tg_tensor_free it; its storage is
 * freed when the last view of it is freed. A view must not outlive the storage it
 * looks at (a heap view of an arena tensor dies with the arena; an arena view of a heap
 * tensor does not keep its storage alive).
 *
 * Errors. A function that fails returns NULL (or a tg_status) and leaves one error on
 * this thread: a value (tg_last_error_info: status, function, detail) whose message,
 * tg_last_error(), names the function and the shapes,
 *   "tg_tensor_add: shapes [100,32] and [3,32] cannot be broadcast".
 * A NULL input makes a function return NULL without touching the message, so a chain
 * of calls is checked once, at its end (the first failure's message survives).
 * TG_ABORT_ON_ERROR=1 in the environment aborts at the first error, for debugging.
 * Nothing here calls exit().
 *
 * Threads. Kernels run OpenMP loops above a size threshold and BLIS for GEMM;
 * tg_set_num_threads sets both. On one machine and build, results are the same bits
 * for any thread count; another CPU (another BLIS kernel set) rounds float32
 * differently (docs/guide.md, "Threads and reproducibility").
 */
#ifndef TAPEGRAD_TENSOR_H
#define TAPEGRAD_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "version.h" /* TG_VERSION_MAJOR, _MINOR, _PATCH, _STRING */

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ dtypes */

typedef enum tg_dtype {
    TG_F32 = 0, /* computation */
    TG_F64,     /* computation, gradient checks */
    TG_U8,      /* images, masks (comparisons produce u8 0/1) */
    TG_I32,     /* labels, indices */
    TG_DTYPE_COUNT
} tg_dtype;

size_t tg_dtype_size(tg_dtype dt);      /* bytes per element */
const char *tg_dtype_name(tg_dtype dt); /* "f32", "f64", "u8", "i32" */

#define TG_MAX_DIMS 8

/* Shape and axis lists as (count, pointer) argument pairs:
 *   tg_tensor_zeros(ar, TG_F32, TG_DIMS(2, 3))  ==  tg_tensor_zeros(ar, TG_F32, 2, (int64_t[]){2, 3})
 * TG_DIMS() with no arguments is not valid C; pass 0, NULL for a scalar. */
#define TG_DIMS(...)                                                                  \
    (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), (const int64_t[]) { __VA_ARGS__ }
#define TG_AXES(...)                                                                  \
    (int)(sizeof((int[]){__VA_ARGS__}) / sizeof(int)), (const int[]) { __VA_ARGS__ }

/* ------------------------------------------------------------------ version */

/* The version of the library the program runs with, "0.1.0": the shared library may
 * be newer than the headers it was compiled with, whose version TG_VERSION_MAJOR,
 * TG_VERSION_MINOR, TG_VERSION_PATCH and TG_VERSION_STRING give (tapegrad/version.h).
 * Versions follow semantic versioning; before 1.0, a minor version may change the API
 * (CHANGELOG.md says how). */
const char *tg_version(void);

/* ------------------------------------------------------------------ errors */

typedef enum tg_status {
    TG_OK = 0,
    TG_ERR_SHAPE,   /* shapes do not fit the operation */
    TG_ERR_DTYPE,   /* a dtype the operation does not take */
    TG_ERR_ARG,     /* a bad argument: axis out of range, negative size, NULL input */
    TG_ERR_NOMEM,   /* an allocation failed */
    TG_ERR_IO,      /* a file could not be read or written */
    TG_ERR_FORMAT,  /* a file's contents are not what its format promises */
    TG_ERR_STATE,   /* the call is not valid now (a tape in error, a reset arena) */
    TG_ERR_CHECK    /* a numerical check failed (tg_gradcheck: gradients disagree) */
} tg_status;

/* An error, as a value: each part written by the one place that knows it, and the
 * message composed from them when it is read. A kernel names itself and says what was
 * wrong; when it fails inside an op, the tape puts the op the user called in `function`
 * and adds its scope; a layer (nn) names itself the same way. Tests and programs that
 * need to tell errors apart read the fields, not the message. */
typedef struct tg_error {
    tg_status status;   /* TG_OK: no error */
    char function[64];  /* the public function the user called: "tg_matmul" (a data
                         * set reader: its module, "datasets/cifar"); "" when the
                         * error was set without one (tg_set_error) */
    char detail[1024];  /* what was wrong, with the shapes: "[2,3] x [4,5]: inner
                         * dimensions 3 and 4 differ" */
    char scope[1024];   /* the tape's scope at the failing call: "block_0/conv_0"; "" */
} tg_error;

/* The last error on this thread (status TG_OK and empty fields if none since
 * tg_clear_error); never NULL, and overwritten by the next failing call. */
const tg_error *tg_last_error_info(void);
/* Its message, "function: detail (called in scope)" with the absent parts left out
 * ("" when there is none): the text to show a user. The string stays valid until the
 * next failing call. */
const char *tg_last_error(void);
tg_status tg_last_status(void); /* tg_last_error_info()->status */
void tg_clear_error(void);
const char *tg_status_name(tg_status s); /* "shape mismatch", ...; never NULL */
/* e's message, as tg_last_error composes it, into buf (size bytes, cut to fit); returns
 * buf. For an error kept past the next failing call (a copy of *tg_last_error_info()). */
const char *tg_error_str(const tg_error *e, char *buf, size_t size);

/* Records an error as the last one on this thread and returns its status, for layers
 * built on this one and for user code (an op's forward, a data loader):
 * tg_set_error_in names the public function the user called and formats the detail
 *   tg_set_error_in(TG_ERR_ARG, "my_load", "%s: no such file", path);
 * tg_set_error records a message that names no function (function ""): its text is the
 * whole message, as it always was. A status of TG_OK is recorded as TG_ERR_STATE. */
tg_status tg_set_error_in(tg_status s, const char *function, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
tg_status tg_set_error(tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* Records a copy of e, all its fields (the tape reports its sticky error with it). */
tg_status tg_set_error_value(const tg_error *e);

/* ------------------------------------------------------------------ memory */

/* Every allocation the library makes goes through this hook; set it before anything
 * else (a test counts calls with it; an application may plug its own allocator).
 * alloc returns memory aligned to `align` (a power of two, at most 4096) or NULL. */
typedef struct tg_allocator {
    void *(*alloc)(size_t size, size_t align, void *user);
    void (*free)(void *ptr, void *user);
    void *user;
} tg_allocator;
void tg_set_allocator(const tg_allocator *a); /* NULL restores the default */
/* Memory through that hook, for layers above and user code: NULL + error on failure. */
void *tg_mem_alloc(size_t size, size_t align);
void tg_mem_free(void *p);

/* An arena hands out blocks from large chunks and frees them all at once; a block is
 * aligned to `align` (a power of two, at most 64; 16 at least), tensor data to 64.
 * After a reset it keeps its memory (merged into one chunk as large as the peak), so
 * that the same sequence of allocations again calls no malloc. */
typedef struct tg_arena tg_arena;
tg_arena *tg_arena_new(size_t chunk_bytes); /* 0: a 1 MiB first chunk; NULL on failure */
void tg_arena_free(tg_arena *ar);  /* with everything allocated from it; NULL is ignored */
void tg_arena_reset(tg_arena *ar); /* frees every block at once, keeping the memory */
void *tg_arena_alloc(tg_arena *ar, size_t size, size_t align); /* NULL + error on failure */
size_t tg_arena_used(const tg_arena *ar);     /* bytes handed out since the last reset */
size_t tg_arena_capacity(const tg_arena *ar); /* bytes held */
size_t tg_arena_peak(const tg_arena *ar);     /* largest tg_arena_used so far */

/* Large blocks (TG_ARENA_LARGE bytes and up: activations, gradients, a kernel's
 * scratch) are held apart from the chunks and can be given back before the reset;
 * the next large request of at most twice its size reuses it, so that a backward pass
 * that gives back each gradient once it is used needs no more memory than the
 * gradients alive at once. A reset keeps the large blocks taken since the previous
 * reset (a repeated step reuses them all) and frees the others. Giving back a small block, or NULL, does nothing (it is
 * freed at the reset); a block must not be used after it is given back. */
#define TG_ARENA_LARGE ((size_t)256 * 1024)
void tg_arena_release(tg_arena *ar, const void *block);
/* The same for a tensor made in ar: gives back its storage (every view of it dies). */
typedef struct tg_tensor tg_tensor; /* below */
void tg_arena_release_tensor(tg_arena *ar, const tg_tensor *t);
/* Giving back every large block taken since a mark, for layers that manage a whole
 * pass's scratch (the tape's backward): tapegrad/tensor_advanced.h. */

/* ------------------------------------------------------------------ the tensor */

typedef struct tg_storage tg_storage; /* opaque: data, size, reference count */

/* Fields are for reading; change them only through the functions below. */
typedef struct tg_tensor {
    tg_dtype dtype;
    int ndim;                      /* 0 (a scalar) .. TG_MAX_DIMS */
    int64_t shape[TG_MAX_DIMS];
    int64_t strides[TG_MAX_DIMS];  /* in elements; 0 on a broadcast axis */
    int64_t offset;                /* in elements from the storage's start */
    tg_storage *storage;
    tg_arena *arena;               /* where this header lives; NULL on the heap */
    /* The layer above's (the tape's bookkeeping), not for reading or writing here:
     * tapegrad/tensor_advanced.h says what they are for. */
    void *user;
    void (*user_free)(struct tg_tensor *t);
} tg_tensor;

int64_t tg_tensor_numel(const tg_tensor *t);     /* the product of the shape; 1 for a scalar */
bool tg_tensor_is_contiguous(const tg_tensor *t); /* row-major, no gaps, no broadcast */
bool tg_tensor_same_shape(const tg_tensor *a, const tg_tensor *b); /* same ndim and sizes */
/* Address of element [0,...,0]. Writes through it are invisible to the version below
 * (and so to the tape's in-place check): call tg_tensor_bump_version after them. */
void *tg_tensor_data(const tg_tensor *t);
size_t tg_storage_nbytes(const tg_storage *s);    /* bytes of data it holds */
int tg_storage_refcount(const tg_storage *s);     /* -1 for arena storage (not counted) */

/* The version of t's storage, shared by every view of it: how many times the library
 * has written into its existing elements (every function ending in _, the _out forms,
 * tg_tensor_set, an optimiser step, a checkpoint load, a data batch), as PyTorch's
 * version counter. A new tensor starts at 0. The tape remembers the versions of what
 * each backward reads and tg_backward refuses when one changed (autograd.h). A write
 * through tg_tensor_data's raw pointer cannot be seen; tg_tensor_bump_version after
 * such a write makes it count. */
uint64_t tg_tensor_version(const tg_tensor *t);
void tg_tensor_bump_version(tg_tensor *t);

/* Frees a heap tensor's header and drops its reference to the storage. NULL and
 * arena tensors are ignored, so cleanup code need not know where a tensor lives. */
void tg_tensor_free(tg_tensor *t);

/* Formats "[2,3]" into buf (always NUL-terminated); returns buf. */
char *tg_shape_str(char *buf, size_t size, int ndim, const int64_t *shape);

/* ------------------------------------------------------------------ creation */

/* A new contiguous tensor of that shape: uninitialised (empty), 0, 1 or value. Each
 * returns NULL (and an error) on a negative size or a failed allocation. */
tg_tensor *tg_tensor_empty(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_zeros(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_ones(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_full(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape, double value);
tg_tensor *tg_tensor_scalar(tg_arena *ar, tg_dtype dt, double value); /* ndim 0 */
/* start, start+step, ... while < stop (> stop for a negative step); 1-D */
tg_tensor *tg_tensor_arange(tg_arena *ar, tg_dtype dt, double start, double stop, double step);
/* A contiguous tensor holding a copy of `data` (numel elements of dt). */
tg_tensor *tg_tensor_from_data(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape,
                               const void *data);
/* A contiguous tensor that looks at `data` without copying or ever freeing it; the
 * caller keeps `data` alive (and 64-byte aligned if kernels should be fast). */
tg_tensor *tg_tensor_borrow(tg_arena *ar, tg_dtype dt, int ndim, const int64_t *shape, void *data);

/* A new contiguous tensor equal to t (any layout in, row-major out). */
tg_tensor *tg_tensor_clone(tg_arena *ar, const tg_tensor *t);
/* t itself as a new view if already contiguous, else a contiguous copy. */
tg_tensor *tg_tensor_contiguous(tg_arena *ar, const tg_tensor *t);
/* A contiguous copy converted to dtype dt (float to integer truncates toward zero). */
tg_tensor *tg_tensor_to_dtype(tg_arena *ar, const tg_tensor *t, tg_dtype dt);
/* Copies src into dst, any two layouts and dtypes; src broadcasts to dst's shape.
 * dst must not overlap src unless they are the same view. */
tg_status tg_tensor_copy_(tg_tensor *dst, const tg_tensor *src);
tg_status tg_tensor_fill_(tg_tensor *dst, double value);

/* Element access by index, for tests and small programs (slow; checks bounds). */
double tg_tensor_get(const tg_tensor *t, const int64_t *index);
tg_status tg_tensor_set(tg_tensor *t, const int64_t *index, double value);
double tg_tensor_item(const tg_tensor *t); /* the only element of a 1-element tensor */

/* ------------------------------------------------------------------ views */
/* Each returns a new header over the same storage; none copies (but reshape may). */

/* One size may be -1 (inferred). A view when the strides allow, else a contiguous copy. */
tg_tensor *tg_tensor_reshape(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape);
/* As reshape, but fails instead of copying. */
tg_tensor *tg_tensor_view(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape);
tg_tensor *tg_tensor_flatten(tg_arena *ar, const tg_tensor *t); /* 1-D, view when possible */
/* Axis k of the result is t's axis perm[k]; transpose swaps axes d0 and d1. */
tg_tensor *tg_tensor_permute(tg_arena *ar, const tg_tensor *t, int ndim, const int *perm);
tg_tensor *tg_tensor_transpose(tg_arena *ar, const tg_tensor *t, int d0, int d1);
/* Elements start, start+step, ... < stop along dim. Negative start/stop count from the
 * end; both are clamped to the axis, as Python slicing does; step >= 1. */
tg_tensor *tg_tensor_slice(tg_arena *ar, const tg_tensor *t, int dim, int64_t start,
                           int64_t stop, int64_t step);
/* length elements from start along dim: a slice with step 1 */
tg_tensor *tg_tensor_narrow(tg_arena *ar, const tg_tensor *t, int dim, int64_t start,
                            int64_t length);
tg_tensor *tg_tensor_select(tg_arena *ar, const tg_tensor *t, int dim, int64_t index); /* drops dim */
/* Broadcasts to `shape` (NumPy rules; new leading axes and size-1 axes get stride 0). */
tg_tensor *tg_tensor_expand(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape);
/* Drops axis dim (negative counts from the end), which must have size 1; with
 * TG_ALL_AXES, drops every size-1 axis. */
#define TG_ALL_AXES (-1000)
tg_tensor *tg_tensor_squeeze(tg_arena *ar, const tg_tensor *t, int dim);
tg_tensor *tg_tensor_unsqueeze(tg_arena *ar, const tg_tensor *t, int dim);

/* Any view of t's storage: shape, strides (in elements) and offset as given, all >= 0,
 * as PyTorch's as_strided; NULL (and an error) if an element would lie outside the
 * storage. Elements may overlap (a stride 0, or strides that cross): such a view is
 * for reading, since writing one element writes all that share it. */
tg_tensor *tg_tensor_as_strided(tg_arena *ar, const tg_tensor *t, int ndim, const int64_t *shape,
                                const int64_t *strides, int64_t offset);

/* The broadcast shape of a and b into out_shape (TG_MAX_DIMS entries); returns its ndim,
 * or -1 (and an error naming `caller`) when they cannot be broadcast. */
int tg_broadcast_shape(const char *caller, int an, const int64_t *ashape, int bn,
                       const int64_t *bshape, int64_t *out_shape);

/* ------------------------------------------------------------------ elementwise */
/* f32 and f64 in, the same dtype out; any strides. */

typedef enum tg_unary_op {
    TG_NEG, TG_ABS, TG_EXP, TG_LOG, TG_SQRT, TG_RSQRT, TG_TANH, TG_SIGMOID,
    TG_RELU, TG_SQUARE, TG_RECIPROCAL, TG_SIGN,
    TG_LEAKY_RELU, /* param a: the negative slope */
    TG_POW,        /* param a: the exponent */
    TG_CLAMP,      /* params a, b: the bounds (NAN for none) */
    TG_UNARY_OP_COUNT
} tg_unary_op;
const char *tg_unary_op_name(tg_unary_op op); /* "neg", "abs", ...; "?" if out of range */

/* op applied to each element of x, with the op's parameters a and b (0 where unused):
 * into a new contiguous tensor, or into out (x's shape and dtype; out may be x). */
tg_tensor *tg_tensor_unary(tg_arena *ar, tg_unary_op op, const tg_tensor *x, double a, double b);
tg_status tg_tensor_unary_out(tg_tensor *out, tg_unary_op op, const tg_tensor *x, double a, double b);

/* tg_tensor_unary with one op each: a new contiguous tensor, NULL (and an error) for a
 * NULL or non-float x or a failed allocation. */
tg_tensor *tg_tensor_neg(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_abs(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_exp(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_log(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_sqrt(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_rsqrt(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_tanh(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_sigmoid(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_relu(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_square(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_leaky_relu(tg_arena *ar, const tg_tensor *x, double slope);
tg_tensor *tg_tensor_pow_scalar(tg_arena *ar, const tg_tensor *x, double exponent);
tg_tensor *tg_tensor_clamp(tg_arena *ar, const tg_tensor *x, double lo, double hi);
/* The gradients of relu and leaky_relu from g = dL/d(out) (x's shape and dtype), in one
 * pass without a mask: dx = x > 0 ? g : 0 (not g * 0, which an infinite g would make
 * NaN), or x > 0 ? g : slope * g; at x == 0 the negative side's slope, as PyTorch. */
tg_tensor *tg_tensor_relu_backward(tg_arena *ar, const tg_tensor *x, const tg_tensor *g);
tg_tensor *tg_tensor_leaky_relu_backward(tg_arena *ar, const tg_tensor *x, const tg_tensor *g, double slope);

/* Binary ops broadcast as NumPy does. Arithmetic takes f32/f64 (both the same dtype);
 * comparisons take any dtype (both the same) and produce a u8 mask of 0 and 1. */
typedef enum tg_binary_op {
    TG_ADD, TG_SUB, TG_MUL, TG_DIV, TG_MAXIMUM, TG_MINIMUM,
    TG_EQ, TG_NE, TG_LT, TG_LE, TG_GT, TG_GE,
    TG_BINARY_OP_COUNT
} tg_binary_op;
const char *tg_binary_op_name(tg_binary_op op); /* "add", "sub", ...; "?" if out of range */

/* a op b into a new contiguous tensor of the broadcast shape. */
tg_tensor *tg_tensor_binary(tg_arena *ar, tg_binary_op op, const tg_tensor *a, const tg_tensor *b);
/* out's shape must be the broadcast shape; out may be a or b (in place). */
tg_status tg_tensor_binary_out(tg_tensor *out, tg_binary_op op, const tg_tensor *a, const tg_tensor *b);

/* tg_tensor_binary with one op each: a + b, a - b, a * b, a / b, max(a, b), min(a, b). */
tg_tensor *tg_tensor_add(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
tg_tensor *tg_tensor_sub(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
tg_tensor *tg_tensor_mul(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
tg_tensor *tg_tensor_div(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
tg_tensor *tg_tensor_maximum(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
tg_tensor *tg_tensor_minimum(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
/* x * s + t elementwise with scalars, f32/f64 */
tg_tensor *tg_tensor_affine(tg_arena *ar, const tg_tensor *x, double s, double t);
/* dst += alpha * src (src broadcasts to dst); the accumulation gradients need. */
tg_status tg_tensor_axpy_(tg_tensor *dst, double alpha, const tg_tensor *src);

/* mask ? a : b, all three broadcast together; mask is u8 (nonzero = true). */
tg_tensor *tg_tensor_where(tg_arena *ar, const tg_tensor *mask, const tg_tensor *a, const tg_tensor *b);

/* ------------------------------------------------------------------ reductions */
/* Over the listed axes (negative counts from the end; naxes 0 = all axes); keepdim
 * keeps them as size 1. f32/f64 in, same dtype out; f32 accumulates in f64, long
 * axes are summed pairwise, so the result does not depend on the thread count. */

/* The sum, mean, largest and smallest element: new tensors; NULL (and an error) for a
 * bad axis, a non-float x, or max/min over nothing. */
tg_tensor *tg_tensor_sum(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_tensor_mean(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_tensor_max(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_tensor_min(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim);
/* sum((x - mean)^2) / (n - correction); correction 1 is the unbiased estimate;
 * NaN where n - correction <= 0 */
tg_tensor *tg_tensor_var(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes,
                         int correction, bool keepdim);
/* log(sum(exp(x))), computed as m + log(sum(exp(x - m))) with m the max */
tg_tensor *tg_tensor_logsumexp(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes,
                               bool keepdim);
/* Index (i32) of the largest element along one axis; the first on ties; NaN wins. */
tg_tensor *tg_tensor_argmax(tg_arena *ar, const tg_tensor *x, int axis, bool keepdim);
/* Sums x over the axes that were broadcast to reach x's shape from `shape`: the
 * backward of broadcasting. Result has exactly `shape`. */
tg_tensor *tg_tensor_sum_to(tg_arena *ar, const tg_tensor *x, int ndim, const int64_t *shape);

/* ------------------------------------------------------------------ matmul */
/* a [..., M, K] x b [..., K, N] -> [..., M, N]; 2-D or batched with broadcast batch
 * axes; f32/f64. Transposed views (from tg_tensor_transpose) go to BLIS as strides,
 * without a copy. */
tg_tensor *tg_tensor_matmul(tg_arena *ar, const tg_tensor *a, const tg_tensor *b);
/* out = alpha * a @ b + beta * out, out already shaped [..., M, N] (beta 0: out is
 * only written). */
tg_status tg_tensor_matmul_out(tg_tensor *out, const tg_tensor *a, const tg_tensor *b,
                               double alpha, double beta);

/* ------------------------------------------------------------------ convolution */

typedef struct tg_conv2d_geom {
    int kh, kw;             /* kernel */
    int stride_h, stride_w; /* >= 1 */
    int pad_h, pad_w;       /* zero padding, >= 0 */
    int dil_h, dil_w;       /* dilation, >= 1 */
} tg_conv2d_geom;
/* Output size along one axis, or -1 if the kernel does not fit. */
int64_t tg_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil);

/* x [N, C, H, W] -> columns [N, C*kh*kw, OH*OW], row (c, i, j) holding
 * x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] (0 outside), so that a convolution is
 * weight [OC, C*kh*kw] @ columns -> [N, OC, OH*OW]. */
tg_tensor *tg_tensor_im2col(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g);
/* The adjoint: sums columns [N, C*kh*kw, OH*OW] back into an image [N, C, H, W]. */
tg_tensor *tg_tensor_col2im(tg_arena *ar, const tg_tensor *cols, int64_t channels, int64_t height,
                            int64_t width, const tg_conv2d_geom *g);

/* A convolution in one call, without the batch's columns (per image and tile of output
 * rows, threaded over images; the same values as im2col + matmul within rounding):
 * x [N, C, H, W], w [OC, C, kh, kw] (kh, kw as g's), b [OC] or NULL -> y [N, OC, OH, OW]. */
tg_tensor *tg_tensor_conv2d(tg_arena *ar, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b,
                            const tg_conv2d_geom *g);
/* Its gradients from gy = dL/dy [N, OC, OH, OW]: with respect to the input, of height x
 * width (dx [N, C, H, W]), and to the weight (dw [OC, C, kh, kw]). The bias's is
 * tg_tensor_sum(gy) over axes 0, 2, 3. Both are bitwise the same for any thread count. */
tg_tensor *tg_tensor_conv2d_backward_input(tg_arena *ar, const tg_tensor *gy, const tg_tensor *w,
                                           int64_t height, int64_t width, const tg_conv2d_geom *g);
tg_tensor *tg_tensor_conv2d_backward_weight(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                            const tg_conv2d_geom *g);

/* Pooling over x [N, C, H, W] with kernel, stride and zero padding from g (dilation
 * ignored). Average pooling counts the padding in its divisor, as PyTorch's default. */
tg_tensor *tg_tensor_avg_pool2d(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g);
/* Its adjoint: gout [N, C, OH, OW] spread back over an input of height x width. */
tg_tensor *tg_tensor_avg_pool2d_backward(tg_arena *ar, const tg_tensor *gout, int64_t height,
                                         int64_t width, const tg_conv2d_geom *g);
/* Max pooling; *indices (if not NULL) receives an i32 tensor shaped as the output with
 * the flat index h*W + w of each maximum within its input plane, as PyTorch returns. */
tg_tensor *tg_tensor_max_pool2d(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g,
                                tg_tensor **indices);
/* Its adjoint: gout [N, C, OH, OW] added at the maxima's indices of a height x width input. */
tg_tensor *tg_tensor_max_pool2d_backward(tg_arena *ar, const tg_tensor *gout,
                                         const tg_tensor *indices, int64_t height, int64_t width);

/* ------------------------------------------------------------------ batch normalisation */
/* Training-mode batch norm of images, the kernels of autograd's tg_batch_norm2d. x
 * [N, C, H, W] (f32/f64, any strides), gamma and beta [C] of x's dtype; per channel, over
 * its M = N*H*W values: mean = sum(x) / M, var = sum((x - mean)^2) / M (biased),
 * invstd = 1 / sqrt(var + eps), y = (x - mean) * invstd * gamma + beta. Sums run in f64
 * (pairwise, as the reductions'); each channel is one thread's, so the results are the
 * same bits for any thread count. Outputs are new contiguous tensors. */

/* y, and in *stats (if not NULL) an f64 [3, C] tensor: rows mean, var and invstd, which
 * the backward reads (and a layer's running averages use). eps >= 0. */
tg_tensor *tg_tensor_batch_norm2d(tg_arena *ar, const tg_tensor *x, const tg_tensor *gamma,
                                  const tg_tensor *beta, double eps, tg_tensor **stats);
/* dx from gy = dL/dy (x's shape and dtype), with xhat = (x - mean) * invstd:
 *   dx = gamma * invstd * (gy - sum(gy) / M) - gamma * invstd^2 * sum(gy * xhat) / M * (x - mean)
 * and in *sums (if not NULL) an f64 [2, C] tensor: rows sum(gy) (beta's gradient) and
 * sum(gy * xhat) (gamma's). */
tg_tensor *tg_tensor_batch_norm2d_backward(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                           const tg_tensor *gamma, const tg_tensor *stats, tg_tensor **sums);

/* The same in steps, for statistics over several processes' batches (tg_stat_sync):
 * moments are this batch's f64 [2, C] rows mean and sum((x - mean)^2), which the caller
 * combines into stats; normalize is the forward with given stats (rows mean and invstd
 * read); backward_sums is the f64 [2, C] sums of tg_tensor_batch_norm2d_backward, and
 * backward_input its dx from sums over `count` values per channel (every batch's
 * sums added up; count at least this batch's M). */
tg_tensor *tg_tensor_batch_norm2d_moments(tg_arena *ar, const tg_tensor *x);
tg_tensor *tg_tensor_batch_norm2d_normalize(tg_arena *ar, const tg_tensor *x, const tg_tensor *gamma,
                                            const tg_tensor *beta, const tg_tensor *stats);
tg_tensor *tg_tensor_batch_norm2d_backward_sums(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                                const tg_tensor *stats);
tg_tensor *tg_tensor_batch_norm2d_backward_input(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                                 const tg_tensor *gamma, const tg_tensor *stats,
                                                 const tg_tensor *sums, double count);

/* ------------------------------------------------------------------ random */

/* A counter-based generator (Philox 4x32-10): the value at position i of a stream is a
 * pure function of (key, stream, i), so tensors fill in parallel with results that do
 * not depend on the thread count, and independent streams come from splitting. Plain
 * data: copy it to save a state, compare it to check one. */
typedef struct tg_rng {
    uint64_t key;     /* from the seed */
    uint64_t stream;  /* which stream of that seed */
    uint64_t counter; /* how many 128-bit blocks of this stream are used */
} tg_rng;

tg_rng tg_rng_new(uint64_t seed); /* stream 0 of seed, at its start */
/* An independent generator for sub-stream `index` of g (g is not advanced): the same
 * (g, index) always gives the same stream, e.g. one per module or per epoch. */
tg_rng tg_rng_split(const tg_rng *g, uint64_t index);
uint32_t tg_rng_u32(tg_rng *g);                 /* 32 random bits */
double tg_rng_uniform(tg_rng *g);               /* [0, 1) with 53 random bits */
uint32_t tg_rng_below(tg_rng *g, uint32_t n);   /* uniform in [0, n), unbiased */
/* Fisher-Yates permutation of 0..n-1 into perm. */
void tg_rng_permutation(tg_rng *g, int32_t *perm, int64_t n);

/* Fill with U[lo, hi), N(mean, std) or Bernoulli(p) (1 with probability p, else 0).
 * Any dtype (integer dtypes get the truncated value). Each advances g by the blocks
 * it used, so consecutive fills differ. */
tg_status tg_tensor_uniform_(tg_tensor *t, tg_rng *g, double lo, double hi);
tg_status tg_tensor_normal_(tg_tensor *t, tg_rng *g, double mean, double std);
tg_status tg_tensor_bernoulli_(tg_tensor *t, tg_rng *g, double p);
tg_tensor *tg_tensor_rand(tg_arena *ar, tg_rng *g, tg_dtype dt, int ndim, const int64_t *shape); /* U[0,1) */
tg_tensor *tg_tensor_randn(tg_arena *ar, tg_rng *g, tg_dtype dt, int ndim, const int64_t *shape); /* N(0,1) */

/* ------------------------------------------------------------------ threads */

/* Sets the threads of both OpenMP loops and BLIS (n >= 1). The default is
 * OMP_NUM_THREADS if set, else the number of cores. */
void tg_set_num_threads(int n);
int tg_get_num_threads(void);
/* Dynamic threads (on unless OMP_DYNAMIC=false): while other processes keep some of
 * this process's cores busy, kernels use only the cores left (rounded, at least 1, at
 * most the count set), re-judged every second from /proc/stat on Linux. A team that
 * shares a core with another process waits a time slice at every barrier, so on a
 * busy machine fewer threads are faster; the kernels give the same bits for any
 * count, so no result changes. tg_get_active_threads() is the count in use now. */
void tg_set_dynamic_threads(bool on);
bool tg_get_dynamic_threads(void);
int tg_get_active_threads(void);
/* The GEMM kernels in use, for logs and benchmark reports: "BLIS 0.9.0, haswell kernels
 * (chosen by tapegrad); libxsmm cpx kernels in the convolutions; avx512 Winograd
 * transforms" (libxsmm where it was built in and TG_SMALL_GEMM is not "blis"; its ISA
 * from cpuid or LIBXSMM_TARGET; the transforms' copy, generic, avx2 or avx512, from
 * cpuid or TG_ISA, docs/design.md). tapegrad picks BLIS's AVX2
 * kernels on x86-64 CPUs that BLIS itself does not know (it would run plain C loops
 * there) unless BLIS_ARCH_TYPE is set (BLIS's numeric arch id), which is respected. */
const char *tg_gemm_kernels(void);
/* Whether a loop over `work` elements should be shared among the threads, by the rule
 * the library's own kernels follow: enough work to pay for waking the team (32768
 * elements), more than one thread, and not already inside a parallel region. For
 * kernels written outside tensor/ (ops, optimisers, data preparation). */
bool tg_parallel_worth(int64_t work);

/* ------------------------------------------------------------------ files */

/* A result a program cares about (a CSV, a report, a drawing) replaced whole or not at
 * all, so that a crash or a full disk never leaves half a file:
 *
 *   tg_atomic_file w;
 *   if (tg_atomic_begin(&w, "runs/summary.csv") != TG_OK) return report(tg_last_error());
 *   fprintf(w.f, "epoch,loss\n");                    // any stdio writes to w.f
 *   if (tg_atomic_commit(&w) != TG_OK) return report(tg_last_error());
 *
 * The writes go to a temporary file of a unique name beside the target (two writers
 * cannot collide), which keeps the mode of the file it replaces; commit checks every
 * write, fsyncs, renames it over the target and fsyncs the directory. On any failure
 * the temporary is removed and the target is as it was. The library's own writers
 * (checkpoints, the study's CSV files and reports) are these. */
typedef struct tg_atomic_file {
    FILE *f;            /* write here between begin and commit */
    char *tmp;          /* the temporary's name */
    const char *module; /* the function named in messages */
    const char *path;   /* the target: the caller's string, kept alive until commit */
} tg_atomic_file;

/* Creates the temporary beside path; on failure nothing exists (an error names path). */
tg_status tg_atomic_begin(tg_atomic_file *w, const char *path);
/* Finishes the file and puts it in place; either way w is done with. */
tg_status tg_atomic_commit(tg_atomic_file *w);
/* Gives up: closes and removes the temporary (NULL, or a w already done with: nothing). */
void tg_atomic_cancel(tg_atomic_file *w);
/* Replaces path with len bytes of data. */
tg_status tg_write_file_atomic(const char *path, const void *data, size_t len);

/* ------------------------------------------------------------------ printing */

/* tensor([[0.0000, 1.0000], ...], shape=[2,3], dtype=f32). Large tensors are cut to
 * their first and last 3 entries per axis ("...") as NumPy prints them. */
void tg_tensor_print(FILE *f, const tg_tensor *t);
/* The same into buf (NUL-terminated, cut to size); returns the length it wanted. */
size_t tg_tensor_format(char *buf, size_t size, const tg_tensor *t);

#ifdef __cplusplus
}
#endif
#endif
