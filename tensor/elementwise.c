/* tensor/elementwise.c — unary and binary elementwise kernels with NumPy broadcasting,
 * affine, axpy_ and where.
 *
 * Every kernel is a row function run by the strided iterator (internal.h). Each row
 * function has a contiguous fast path, a plain indexed loop that gcc vectorises, and a
 * general loop over byte strides for everything else (transposed, sliced, stride-0).
 * (Loops that call libm, exp/log/tanh/pow/sigmoid, stay scalar without a vector math
 * library; sqrt/rsqrt and leaky_relu vectorise only under -fno-math-errno and
 * -fno-trapping-math, which meson.build sets: relu and leaky_relu are one vectorised,
 * threaded pass, checked in the object code with gcc 12 at -O2.)
 * The row functions are generated from one expression per op and dtype by the macros
 * below; <tgmath.h> makes exp(x) on a float call expf, so one expression serves both
 * dtypes and f32 is computed in float throughout.
 *
 * Output aliasing: an _out call (and axpy_) may write into exactly one of its inputs
 * (the same view: same storage, offset, shape and strides), which works because each
 * element is read before it is written at the same index. An output that partially
 * overlaps an input (a shifted or transposed view of the same memory) is not
 * supported and gives unspecified results. */
#include "internal.h"

#include <tgmath.h>

/* Iterations are independent, which is true even when out is exactly an input (in
 * place), so the pragma, not restrict (which in-place calls would make undefined),
 * lets gcc vectorise without runtime alias checks. */
#define EW_SIMD _Pragma("omp simd")

#define ELEM(T, p, s, i) (*(T *)((p) + (i) * (s)))

static bool is_float(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* Checks that `out` can receive a result of dtype dt and shape (ndim, shape). */
static tg_status check_out(const char *fn, const tg_tensor *out, tg_dtype dt, int ndim,
                           const int64_t *shape)
{
    char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
    bool same = out->ndim == ndim;
    for (int i = 0; same && i < ndim; i++)
        same = out->shape[i] == shape[i];
    if (!same)
        return tg_set_error_in(TG_ERR_SHAPE, fn, "out has shape %s, expected %s",
                            TG__SHAPE(b1, out), tg_shape_str(b2, sizeof b2, ndim, shape));
    if (out->dtype != dt)
        return tg_set_error_in(TG_ERR_DTYPE, fn, "out has dtype %s, expected %s",
                            tg_dtype_name(out->dtype), tg_dtype_name(dt));
    if (tg__broadcast_axis(out) >= 0)
        return tg_set_error_in(TG_ERR_ARG, fn, "out of shape %s has a broadcast (stride 0) axis and "
                            "cannot be written", TG__SHAPE(b1, out));
    return TG_OK;
}

static tg_status check_float(const char *fn, tg_dtype dt)
{
    if (is_float(dt))
        return TG_OK;
    return tg_set_error_in(TG_ERR_DTYPE, fn, "dtype %s is not supported (f32 or f64)",
                        tg_dtype_name(dt));
}

/* Runs row on (out, inputs...), all of out's shape already. */
static void run(tg__row_fn row, int nops, const tg_tensor *const *ops, void *ctx)
{
    if (tg_tensor_numel(ops[0]) == 0)
        return;
    tg__iter it;
    tg__iter_init(&it, nops, ops);
    tg__iter_run(&it, row, ctx);
}

/* ------------------------------------------------------------------ unary */

/* The op's scalar parameters (a slope, an exponent, clamp's bounds, affine's s and t). */
typedef struct unary_params {
    double a, b;
} unary_params;

/* Numerically stable for any x: exp never overflows, and NaN stays NaN. */
#define DEFINE_HELPERS(T)                                                 \
    static inline T sigmoid_##T(T x)                                      \
    {                                                                     \
        T e = exp(-fabs(x));                                              \
        return x >= 0 ? 1 / (1 + e) : e / (1 + e);                        \
    }                                                                     \
    /* NaN x stays NaN; a NAN bound compares false, so it bounds nothing; \
     * lo > hi gives hi everywhere, as torch.clamp does */                \
    static inline T clamp_##T(T x, T lo, T hi)                            \
    {                                                                     \
        T y = x < lo ? lo : x;                                            \
        return y > hi ? hi : y;                                           \
    }
DEFINE_HELPERS(float)
DEFINE_HELPERS(double)
#define SIGMOID(x) _Generic((x), float: sigmoid_float, double: sigmoid_double)(x)
#define CLAMP(x, lo, hi) _Generic((x), float: clamp_float, double: clamp_double)(x, lo, hi)

/* Kernels beyond the public ops: pow with exponent 1, and affine. */
enum { K_IDENTITY = TG_UNARY_OP_COUNT, K_AFFINE, K_UNARY_COUNT };

/* Each unary kernel as an expression of x and the parameters pa, pb (all of type T).
 * relu keeps NaN (x < 0 is false for it) as PyTorch does; sign keeps NaN as NumPy does
 * (PyTorch's sign(NaN) = 0 is an open bug, pytorch#41245). */
#define UNARY_KERNELS(X)                               \
    X(TG_NEG, neg, -x)                                 \
    X(TG_ABS, abs, fabs(x))                            \
    X(TG_EXP, exp, exp(x))                             \
    X(TG_LOG, log, log(x))                             \
    X(TG_SQRT, sqrt, sqrt(x))                          \
    X(TG_RSQRT, rsqrt, 1 / sqrt(x))                    \
    X(TG_TANH, tanh, tanh(x))                          \
    X(TG_SIGMOID, sigmoid, SIGMOID(x))                 \
    X(TG_RELU, relu, x < 0 ? 0 : x)                    \
    X(TG_SQUARE, square, x * x)                        \
    X(TG_RECIPROCAL, reciprocal, 1 / x)                \
    X(TG_SIGN, sign, x > 0 ? 1 : x < 0 ? -1 : x)       \
    X(TG_LEAKY_RELU, leaky_relu, x > 0 ? x : pa * x)   \
    X(TG_POW, pow, pow(x, pa))                         \
    X(TG_CLAMP, clamp, CLAMP(x, pa, pb))               \
    X(K_IDENTITY, identity, x)                         \
    X(K_AFFINE, affine, x * pa + pb)

/* p[0] out, p[1] x */
#define UNARY_ROW(T, name, expr)                                                       \
    static void unary_##name##_##T(int64_t n, char **p, const int64_t *s, void *ctx)   \
    {                                                                                  \
        const unary_params *prm = ctx;                                                 \
        const T pa = (T)prm->a, pb = (T)prm->b;                                        \
        (void)pa, (void)pb;                                                            \
        if (s[0] == (int64_t)sizeof(T) && s[1] == (int64_t)sizeof(T)) {                \
            T *o = (T *)p[0];                                                          \
            const T *in = (const T *)p[1];                                             \
            EW_SIMD for (int64_t i = 0; i < n; i++)                                    \
            {                                                                          \
                const T x = in[i];                                                     \
                o[i] = (expr);                                                         \
            }                                                                          \
        } else {                                                                       \
            for (int64_t i = 0; i < n; i++) {                                          \
                const T x = ELEM(const T, p[1], s[1], i);                              \
                ELEM(T, p[0], s[0], i) = (expr);                                       \
            }                                                                          \
        }                                                                              \
    }
#define UNARY_ROW_F32(K, name, expr) UNARY_ROW(float, name, expr)
#define UNARY_ROW_F64(K, name, expr) UNARY_ROW(double, name, expr)
UNARY_KERNELS(UNARY_ROW_F32)
UNARY_KERNELS(UNARY_ROW_F64)

#define UNARY_ENTRY(K, name, expr) [K] = {unary_##name##_float, unary_##name##_double},
static const tg__row_fn unary_rows[K_UNARY_COUNT][2] = {UNARY_KERNELS(UNARY_ENTRY)};

const char *tg_unary_op_name(tg_unary_op op)
{
    static const char *const names[TG_UNARY_OP_COUNT] = {
        [TG_NEG] = "neg",         [TG_ABS] = "abs",           [TG_EXP] = "exp",
        [TG_LOG] = "log",         [TG_SQRT] = "sqrt",         [TG_RSQRT] = "rsqrt",
        [TG_TANH] = "tanh",       [TG_SIGMOID] = "sigmoid",   [TG_RELU] = "relu",
        [TG_SQUARE] = "square",   [TG_RECIPROCAL] = "reciprocal", [TG_SIGN] = "sign",
        [TG_LEAKY_RELU] = "leaky_relu", [TG_POW] = "pow",     [TG_CLAMP] = "clamp",
    };
    return (unsigned)op < TG_UNARY_OP_COUNT ? names[op] : "?";
}

/* The kernel for op; pow's special exponents take exact, faster kernels. */
static int unary_kernel(int op, double a)
{
    if (op == TG_POW) {
        /* the cases PyTorch special-cases too: pow(x, 2) is then exactly x*x */
        if (a == 2)
            return TG_SQUARE;
        if (a == 0.5)
            return TG_SQRT;
        if (a == 1)
            return K_IDENTITY;
    }
    return op;
}

/* The one implementation behind every unary entry point: kernel k of x into out (if
 * given) or into a new tensor from ar; returns the result or NULL. fn is the public
 * name the user called, for the messages. */
static tg_tensor *unary_impl(const char *fn, tg_arena *ar, tg_tensor *out, int k,
                             const tg_tensor *x, double a, double b)
{
    TG__CHECK_NULL(fn, x);
    if (check_float(fn, x->dtype) != TG_OK)
        return NULL;
    if (out && check_out(fn, out, x->dtype, x->ndim, x->shape) != TG_OK)
        return NULL;
    unary_params prm = {a, b};
    k = unary_kernel(k, a);
    tg_tensor *res = out ? out : tg__new(ar, x->dtype, x->ndim, x->shape);
    if (!res)
        return NULL;
    if (out)
        tg__written(out);
    const tg_tensor *ops[2] = {res, x};
    run(unary_rows[k][x->dtype == TG_F64], 2, ops, &prm);
    return res;
}

static bool unary_op_ok(const char *fn, tg_unary_op op)
{
    if ((unsigned)op < TG_UNARY_OP_COUNT)
        return true;
    tg_set_error_in(TG_ERR_ARG, fn, "%d is not a tg_unary_op", (int)op);
    return false;
}

tg_tensor *tg_tensor_unary(tg_arena *ar, tg_unary_op op, const tg_tensor *x, double a, double b)
{
    TG__CHECK_NULL("tg_tensor_unary", x);
    if (!unary_op_ok("tg_tensor_unary", op))
        return NULL;
    return unary_impl("tg_tensor_unary", ar, NULL, (int)op, x, a, b);
}

tg_status tg_tensor_unary_out(tg_tensor *out, tg_unary_op op, const tg_tensor *x, double a, double b)
{
    TG__CHECK_STATUS("tg_tensor_unary_out", out && x);
    if (!unary_op_ok("tg_tensor_unary_out", op))
        return tg_last_status();
    tg_tensor *res = unary_impl("tg_tensor_unary_out", NULL, out, (int)op, x, a, b);
    return res ? TG_OK : tg_last_status();
}

#define UNARY_WRAPPER(name, op)                                       \
    tg_tensor *tg_tensor_##name(tg_arena *ar, const tg_tensor *x)     \
    {                                                                 \
        return unary_impl("tg_tensor_" #name, ar, NULL, op, x, 0, 0); \
    }
UNARY_WRAPPER(neg, TG_NEG)
UNARY_WRAPPER(abs, TG_ABS)
UNARY_WRAPPER(exp, TG_EXP)
UNARY_WRAPPER(log, TG_LOG)
UNARY_WRAPPER(sqrt, TG_SQRT)
UNARY_WRAPPER(rsqrt, TG_RSQRT)
UNARY_WRAPPER(tanh, TG_TANH)
UNARY_WRAPPER(sigmoid, TG_SIGMOID)
UNARY_WRAPPER(relu, TG_RELU)
UNARY_WRAPPER(square, TG_SQUARE)

tg_tensor *tg_tensor_leaky_relu(tg_arena *ar, const tg_tensor *x, double slope)
{
    return unary_impl("tg_tensor_leaky_relu", ar, NULL, TG_LEAKY_RELU, x, slope, 0);
}

tg_tensor *tg_tensor_pow_scalar(tg_arena *ar, const tg_tensor *x, double exponent)
{
    return unary_impl("tg_tensor_pow_scalar", ar, NULL, TG_POW, x, exponent, 0);
}

tg_tensor *tg_tensor_clamp(tg_arena *ar, const tg_tensor *x, double lo, double hi)
{
    return unary_impl("tg_tensor_clamp", ar, NULL, TG_CLAMP, x, lo, hi);
}

tg_tensor *tg_tensor_affine(tg_arena *ar, const tg_tensor *x, double s, double t)
{
    return unary_impl("tg_tensor_affine", ar, NULL, K_AFFINE, x, s, t);
}

/* ------------------------------------------------------------------ relu backward */

/* dx = x > 0 ? g : slope * g (leaky relu) or x > 0 ? g : 0 (relu: not g * 0, which an
 * infinite g would make NaN), one pass over x and g into a fresh contiguous tensor (which
 * the tape adopts as the gradient), instead of a u8 mask, slope * g and a where. x and g
 * (of one shape) are read in place when contiguous, the usual case; any other layout is
 * copied first. Elementwise, so the same bits for any thread count. The loops are
 * `omp simd` over restrict blocks: without them gcc -O2 kept a branch per element
 * (the outputs could alias the inputs), 20 ms instead of 2 for 3.3M floats on one
 * core, where the sign of x is a coin flip for the branch predictor. */
#define PLG_BLOCK 16384 /* elements a task: the split depends on n only */
#define PIECEWISE_LINEAR_GRAD(T)                                                              \
    static void piecewise_linear_block_##T(int64_t n, T *restrict o, const T *restrict x,     \
                                           const T *restrict g, T s)                          \
    {                                                                                         \
        _Pragma("omp simd")                                                                   \
        for (int64_t i = 0; i < n; i++)                                                       \
            o[i] = x[i] > 0 ? g[i] : g[i] * s;                                                \
    }                                                                                         \
    static void piecewise_linear_grad_##T(int64_t n, T *o, const T *x, const T *g, bool relu, \
                                          T s, bool par)                                      \
    {                                                                                         \
        const int64_t blocks = (n + PLG_BLOCK - 1) / PLG_BLOCK;                               \
        _Pragma("omp parallel for schedule(static) if (par)")                                 \
        for (int64_t b = 0; b < blocks; b++) {                                                \
            int64_t lo = b * PLG_BLOCK, len = n - lo < PLG_BLOCK ? n - lo : PLG_BLOCK;         \
            if (relu) {                                                                       \
                T *ob = o + lo;                                                               \
                const T *xb = x + lo, *gb = g + lo;                                           \
                _Pragma("omp simd")                                                           \
                for (int64_t i = 0; i < len; i++)                                             \
                    ob[i] = xb[i] > 0 ? gb[i] : 0;                                            \
            } else {                                                                          \
                piecewise_linear_block_##T(len, o + lo, x + lo, g + lo, s);                   \
            }                                                                                 \
        }                                                                                     \
    }
PIECEWISE_LINEAR_GRAD(float)
PIECEWISE_LINEAR_GRAD(double)

static tg_tensor *piecewise_linear_grad(const char *fn, tg_arena *ar, const tg_tensor *x, const tg_tensor *g,
                                        bool relu, double slope)
{
    TG__CHECK_NULL(fn, x);
    TG__CHECK_NULL(fn, g);
    if (check_float(fn, x->dtype) != TG_OK)
        return NULL;
    if (!tg_tensor_same_shape(x, g) || g->dtype != x->dtype) {
        char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
        return TG__FAIL(TG_ERR_SHAPE, fn, "g %s %s must have x's shape and dtype, %s %s",
                        tg_dtype_name(g->dtype), TG__SHAPE(b1, g), tg_dtype_name(x->dtype), TG__SHAPE(b2, x));
    }
    tg_tensor *xc = tg_tensor_contiguous(ar, x), *gc = xc ? tg_tensor_contiguous(ar, g) : NULL;
    tg_tensor *dx = gc ? tg__new(ar, g->dtype, g->ndim, g->shape) : NULL;
    if (dx) {
        const int64_t n = tg_tensor_numel(dx);
        const bool par = tg_parallel_worth(n);
        if (g->dtype == TG_F32)
            piecewise_linear_grad_float(n, (float *)tg__ptr(dx), (const float *)tg__ptr(xc),
                                        (const float *)tg__ptr(gc), relu, (float)slope, par);
        else
            piecewise_linear_grad_double(n, (double *)tg__ptr(dx), (const double *)tg__ptr(xc),
                                         (const double *)tg__ptr(gc), relu, slope, par);
    }
    tg_tensor_free(xc); /* heap views or copies (ar NULL); arena ones go with the arena */
    tg_tensor_free(gc);
    return dx;
}

tg_tensor *tg_tensor_relu_backward(tg_arena *ar, const tg_tensor *x, const tg_tensor *g)
{
    return piecewise_linear_grad("tg_tensor_relu_backward", ar, x, g, true, 0);
}

tg_tensor *tg_tensor_leaky_relu_backward(tg_arena *ar, const tg_tensor *x, const tg_tensor *g, double slope)
{
    return piecewise_linear_grad("tg_tensor_leaky_relu_backward", ar, x, g, false, slope);
}

/* ------------------------------------------------------------------ binary */

enum { K_AXPY = TG_BINARY_OP_COUNT, K_BINARY_COUNT }; /* x + c*y, for tg_tensor_axpy_ */

/* Each kernel as an expression of x (from a), y (from b) and c (axpy's alpha), all of
 * type T. maximum and minimum return NaN when either side is NaN, as PyTorch does
 * (fmax/fmin would drop it). */
#define ARITH_KERNELS(X)                            \
    X(TG_ADD, add, x + y)                           \
    X(TG_SUB, sub, x - y)                           \
    X(TG_MUL, mul, x * y)                           \
    X(TG_DIV, div, x / y)                           \
    X(TG_MAXIMUM, maximum, x != x || x > y ? x : y) \
    X(TG_MINIMUM, minimum, x != x || x < y ? x : y) \
    X(K_AXPY, axpy, x + c * y)
#define CMP_KERNELS(X)    \
    X(TG_EQ, eq, x == y)  \
    X(TG_NE, ne, x != y)  \
    X(TG_LT, lt, x < y)   \
    X(TG_LE, le, x <= y)  \
    X(TG_GT, gt, x > y)   \
    X(TG_GE, ge, x >= y)

/* p[0] out (of type R), p[1] a, p[2] b (of type T). Besides the all-contiguous row,
 * a row where one input is a broadcast scalar (stride 0: a bias, a mean, a constant)
 * gets its own vectorised loop. */
#define BINARY_ROW(T, R, name, expr)                                                    \
    static void binary_##name##_##T(int64_t n, char **p, const int64_t *s, void *ctx)   \
    {                                                                                   \
        const T c = (T)(*(const double *)ctx);                                          \
        const int64_t es = (int64_t)sizeof(T);                                          \
        R *o = (R *)p[0];                                                               \
        const T *pa = (const T *)p[1], *pb = (const T *)p[2];                           \
        (void)c;                                                                        \
        if (s[0] == (int64_t)sizeof(R) && s[1] == es && s[2] == es) {                   \
            EW_SIMD for (int64_t i = 0; i < n; i++)                                     \
            {                                                                           \
                const T x = pa[i], y = pb[i];                                           \
                o[i] = (expr);                                                          \
            }                                                                           \
        } else if (s[0] == (int64_t)sizeof(R) && s[1] == es && s[2] == 0) {            \
            const T y = pb[0];                                                          \
            EW_SIMD for (int64_t i = 0; i < n; i++)                                     \
            {                                                                           \
                const T x = pa[i];                                                      \
                o[i] = (expr);                                                          \
            }                                                                           \
        } else if (s[0] == (int64_t)sizeof(R) && s[1] == 0 && s[2] == es) {            \
            const T x = pa[0];                                                          \
            EW_SIMD for (int64_t i = 0; i < n; i++)                                     \
            {                                                                           \
                const T y = pb[i];                                                      \
                o[i] = (expr);                                                          \
            }                                                                           \
        } else {                                                                        \
            for (int64_t i = 0; i < n; i++) {                                           \
                const T x = ELEM(const T, p[1], s[1], i), y = ELEM(const T, p[2], s[2], i); \
                ELEM(R, p[0], s[0], i) = (expr);                                        \
            }                                                                           \
        }                                                                               \
    }
#define ARITH_ROW_F32(K, name, expr) BINARY_ROW(float, float, name, expr)
#define ARITH_ROW_F64(K, name, expr) BINARY_ROW(double, double, name, expr)
#define CMP_ROW_F32(K, name, expr) BINARY_ROW(float, uint8_t, name, expr)
#define CMP_ROW_F64(K, name, expr) BINARY_ROW(double, uint8_t, name, expr)
#define CMP_ROW_U8(K, name, expr) BINARY_ROW(uint8_t, uint8_t, name, expr)
#define CMP_ROW_I32(K, name, expr) BINARY_ROW(int32_t, uint8_t, name, expr)
ARITH_KERNELS(ARITH_ROW_F32)
ARITH_KERNELS(ARITH_ROW_F64)
CMP_KERNELS(CMP_ROW_F32)
CMP_KERNELS(CMP_ROW_F64)
CMP_KERNELS(CMP_ROW_U8)
CMP_KERNELS(CMP_ROW_I32)

/* [kernel][dtype of the inputs]; NULL where the dtype is not supported */
#define ARITH_ENTRY(K, name, expr) \
    [K] = {[TG_F32] = binary_##name##_float, [TG_F64] = binary_##name##_double},
#define CMP_ENTRY(K, name, expr)                                                   \
    [K] = {[TG_F32] = binary_##name##_float, [TG_F64] = binary_##name##_double,    \
           [TG_U8] = binary_##name##_uint8_t, [TG_I32] = binary_##name##_int32_t},
static const tg__row_fn binary_rows[K_BINARY_COUNT][TG_DTYPE_COUNT] = {
    ARITH_KERNELS(ARITH_ENTRY) CMP_KERNELS(CMP_ENTRY)};

const char *tg_binary_op_name(tg_binary_op op)
{
    static const char *const names[TG_BINARY_OP_COUNT] = {
        [TG_ADD] = "add", [TG_SUB] = "sub", [TG_MUL] = "mul",         [TG_DIV] = "div",
        [TG_MAXIMUM] = "maximum",           [TG_MINIMUM] = "minimum", [TG_EQ] = "eq",
        [TG_NE] = "ne",   [TG_LT] = "lt",   [TG_LE] = "le",           [TG_GT] = "gt",
        [TG_GE] = "ge",
    };
    return (unsigned)op < TG_BINARY_OP_COUNT ? names[op] : "?";
}

static bool same_dtype(const char *fn, const tg_tensor *a, const tg_tensor *b)
{
    if (a->dtype == b->dtype)
        return true;
    tg_set_error_in(TG_ERR_DTYPE, fn, "dtypes %s and %s differ (convert one with tg_tensor_to_dtype)",
                 tg_dtype_name(a->dtype), tg_dtype_name(b->dtype));
    return false;
}

/* The one implementation behind every binary entry point: kernel k of a and b,
 * broadcast, into out (if given) or a new tensor from ar; returns the result or NULL. */
static tg_tensor *binary_impl(const char *fn, tg_arena *ar, tg_tensor *out, int k,
                              const tg_tensor *a, const tg_tensor *b)
{
    TG__CHECK_NULL(fn, a);
    TG__CHECK_NULL(fn, b);
    if (!same_dtype(fn, a, b))
        return NULL;
    tg__row_fn row = binary_rows[k][a->dtype];
    if (!row) {
        check_float(fn, a->dtype);
        return NULL;
    }
    int64_t shape[TG_MAX_DIMS];
    int nd = tg_broadcast_shape(fn, a->ndim, a->shape, b->ndim, b->shape, shape);
    if (nd < 0)
        return NULL;
    tg_dtype rdt = k >= TG_EQ && k <= TG_GE ? TG_U8 : a->dtype;
    if (out && check_out(fn, out, rdt, nd, shape) != TG_OK)
        return NULL;
    tg_tensor ea, eb;
    if (tg__expand_into(&ea, a, nd, shape, fn) != TG_OK ||
        tg__expand_into(&eb, b, nd, shape, fn) != TG_OK)
        return NULL;
    tg_tensor *res = out ? out : tg__new(ar, rdt, nd, shape);
    if (!res)
        return NULL;
    if (out)
        tg__written(out);
    const tg_tensor *ops[3] = {res, &ea, &eb};
    double alpha = 0;
    run(row, 3, ops, &alpha);
    return res;
}

static bool binary_op_ok(const char *fn, tg_binary_op op)
{
    if ((unsigned)op < TG_BINARY_OP_COUNT)
        return true;
    tg_set_error_in(TG_ERR_ARG, fn, "%d is not a tg_binary_op", (int)op);
    return false;
}

tg_tensor *tg_tensor_binary(tg_arena *ar, tg_binary_op op, const tg_tensor *a, const tg_tensor *b)
{
    TG__CHECK_NULL("tg_tensor_binary", a && b);
    if (!binary_op_ok("tg_tensor_binary", op))
        return NULL;
    return binary_impl("tg_tensor_binary", ar, NULL, (int)op, a, b);
}

tg_status tg_tensor_binary_out(tg_tensor *out, tg_binary_op op, const tg_tensor *a, const tg_tensor *b)
{
    TG__CHECK_STATUS("tg_tensor_binary_out", out && a && b);
    if (!binary_op_ok("tg_tensor_binary_out", op))
        return tg_last_status();
    tg_tensor *res = binary_impl("tg_tensor_binary_out", NULL, out, (int)op, a, b);
    return res ? TG_OK : tg_last_status();
}

#define BINARY_WRAPPER(name, op)                                                     \
    tg_tensor *tg_tensor_##name(tg_arena *ar, const tg_tensor *a, const tg_tensor *b) \
    {                                                                                \
        return binary_impl("tg_tensor_" #name, ar, NULL, op, a, b);                  \
    }
BINARY_WRAPPER(add, TG_ADD)
BINARY_WRAPPER(sub, TG_SUB)
BINARY_WRAPPER(mul, TG_MUL)
BINARY_WRAPPER(div, TG_DIV)
BINARY_WRAPPER(maximum, TG_MAXIMUM)
BINARY_WRAPPER(minimum, TG_MINIMUM)

tg_status tg_tensor_axpy_(tg_tensor *dst, double alpha, const tg_tensor *src)
{
    const char *fn = "tg_tensor_axpy_";
    TG__CHECK_STATUS(fn, dst && src);
    if (!same_dtype(fn, dst, src) || check_float(fn, dst->dtype) != TG_OK)
        return tg_last_status();
    if (tg__broadcast_axis(dst) >= 0) {
        char b[TG__SHAPE_STR];
        return tg_set_error_in(TG_ERR_ARG, fn, "dst of shape %s has a broadcast (stride 0) axis and "
                            "cannot be written", TG__SHAPE(b, dst));
    }
    tg_tensor esrc;
    tg_status st = tg__expand_into(&esrc, src, dst->ndim, dst->shape, fn);
    if (st != TG_OK)
        return st;
    tg__written(dst);
    const tg_tensor *ops[3] = {dst, dst, &esrc};
    run(binary_rows[K_AXPY][dst->dtype], 3, ops, &alpha);
    return TG_OK;
}

/* ------------------------------------------------------------------ where */

/* p[0] out, p[1] mask (u8), p[2] a, p[3] b. Both sides are loaded before the select,
 * so that the contiguous loop has no branch and vectorises. */
#define WHERE_ROW(T)                                                                     \
    static void where_##T(int64_t n, char **p, const int64_t *s, void *ctx)              \
    {                                                                                    \
        (void)ctx;                                                                       \
        const int64_t es = (int64_t)sizeof(T);                                           \
        if (s[0] == es && s[1] == 1 && s[2] == es && s[3] == es) {                       \
            T *o = (T *)p[0];                                                            \
            const uint8_t *m = (const uint8_t *)p[1];                                    \
            const T *pa = (const T *)p[2], *pb = (const T *)p[3];                        \
            EW_SIMD for (int64_t i = 0; i < n; i++)                                      \
            {                                                                            \
                const T va = pa[i], vb = pb[i];                                          \
                o[i] = m[i] ? va : vb;                                                   \
            }                                                                            \
        } else {                                                                         \
            for (int64_t i = 0; i < n; i++)                                              \
                ELEM(T, p[0], s[0], i) = ELEM(const uint8_t, p[1], s[1], i)              \
                                             ? ELEM(const T, p[2], s[2], i)              \
                                             : ELEM(const T, p[3], s[3], i);             \
        }                                                                                \
    }
WHERE_ROW(float)
WHERE_ROW(double)
WHERE_ROW(uint8_t)
WHERE_ROW(int32_t)
static const tg__row_fn where_rows[TG_DTYPE_COUNT] = {
    [TG_F32] = where_float, [TG_F64] = where_double, [TG_U8] = where_uint8_t,
    [TG_I32] = where_int32_t};

tg_tensor *tg_tensor_where(tg_arena *ar, const tg_tensor *mask, const tg_tensor *a, const tg_tensor *b)
{
    const char *fn = "tg_tensor_where";
    TG__CHECK_NULL(fn, mask && a && b);
    if (mask->dtype != TG_U8)
        return TG__FAIL(TG_ERR_DTYPE, fn, "mask has dtype %s, expected u8",
                        tg_dtype_name(mask->dtype));
    if (!same_dtype(fn, a, b))
        return NULL;
    int64_t s1[TG_MAX_DIMS], shape[TG_MAX_DIMS];
    int n1 = tg_broadcast_shape(fn, mask->ndim, mask->shape, a->ndim, a->shape, s1);
    int nd = n1 < 0 ? -1 : tg_broadcast_shape(fn, n1, s1, b->ndim, b->shape, shape);
    if (nd < 0) {
        char bm[TG__SHAPE_STR], ba[TG__SHAPE_STR], bb[TG__SHAPE_STR];
        return TG__FAIL(TG_ERR_SHAPE, fn, "shapes %s (mask), %s (a) and %s (b) cannot be broadcast",
                        TG__SHAPE(bm, mask), TG__SHAPE(ba, a), TG__SHAPE(bb, b));
    }
    tg_tensor em, ea, eb;
    if (tg__expand_into(&em, mask, nd, shape, fn) != TG_OK ||
        tg__expand_into(&ea, a, nd, shape, fn) != TG_OK ||
        tg__expand_into(&eb, b, nd, shape, fn) != TG_OK)
        return NULL;
    tg_tensor *res = tg__new(ar, a->dtype, nd, shape);
    if (!res)
        return NULL;
    const tg_tensor *ops[4] = {res, &em, &ea, &eb};
    run(where_rows[a->dtype], 4, ops, NULL);
    return res;
}
