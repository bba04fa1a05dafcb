/* autograd/ops_elementwise.c — differentiable elementwise ops, each as a tg_op with its
 * forward and backward side by side. Broadcasting ops reduce their input gradients
 * back to the input's shape with tg_tensor_sum_to. Where the derivative is a function
 * of the output (exp, sqrt, rsqrt, tanh, sigmoid, div), backward reads r->out instead
 * of recomputing from the input. Piecewise ops (maximum, clamp) pick their gradient with
 * a u8 mask and tg_tensor_where; relu and leaky_relu, which every network here runs on
 * full-size activations, take theirs in one pass with no mask (tg_tensor_relu_backward,
 * tensor/elementwise.c). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

/* x OP s as a u8 mask, s a scalar of x's dtype */
static tg_tensor *compare_scalar(tg_arena *ar, tg_binary_op op, const tg_tensor *x, double s)
{
    return tg_tensor_binary(ar, op, x, tg_tensor_scalar(ar, x->dtype, s));
}

/* mask ? g : 0 */
static tg_tensor *masked(tg_arena *ar, const tg_tensor *mask, const tg_tensor *g)
{
    return tg_tensor_where(ar, mask, g, tg_tensor_scalar(ar, g->dtype, 0));
}

/* g (shaped as the output) summed back to the shape of input i */
static tg_tensor *sum_to_input(tg_arena *ar, const tg_tensor *g, const tg_record *r, int i)
{
    return tg_tensor_sum_to(ar, g, r->in[i]->ndim, r->in[i]->shape);
}

/* One double parameter: a slope, a scalar, an exponent. */
typedef struct scalar_params {
    double s;
} scalar_params;

/* ------------------------------------------------------------------ add
 * out = a + b (broadcast); da = sum_to(g), db = sum_to(g) */
static tg_tensor *add_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_add(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status add_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    for (int i = 0; i < 2; i++)
        if (tg_needs_grad(tp, r, i))
            tg_accumulate_grad(tp, r, i, sum_to_input(TG__AR(tp), g, r, i));
    return tg_tape_status(tp);
}

static const tg_op op_add = {"add", add_forward, add_backward, TG_READS_NONE};

tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_add, a, b, (const void *)NULL);
}

/* ------------------------------------------------------------------ sub
 * out = a - b (broadcast); da = sum_to(g), db = -sum_to(g) */
static tg_tensor *sub_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_sub(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status sub_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    if (tg_needs_grad(tp, r, 0))
        tg_accumulate_grad(tp, r, 0, sum_to_input(ar, g, r, 0));
    if (tg_needs_grad(tp, r, 1)) /* negate after the reduction: fewer elements */
        tg_accumulate_grad(tp, r, 1, tg_tensor_neg(ar, sum_to_input(ar, g, r, 1)));
    return tg_tape_status(tp);
}

static const tg_op op_sub = {"sub", sub_forward, sub_backward, TG_READS_NONE};

tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_sub, a, b, (const void *)NULL);
}

/* ------------------------------------------------------------------ mul
 * out = a * b (broadcast); da = sum_to(g * b), db = sum_to(g * a) */
static tg_tensor *mul_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_mul(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status mul_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    for (int i = 0; i < 2; i++)
        if (tg_needs_grad(tp, r, i))
            tg_accumulate_grad(tp, r, i, sum_to_input(ar, tg_tensor_mul(ar, g, r->in[1 - i]), r, i));
    return tg_tape_status(tp);
}

static const tg_op op_mul = {"mul", mul_forward, mul_backward, TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_mul, a, b, (const void *)NULL);
}

/* ------------------------------------------------------------------ div
 * out = a / b (broadcast); da = sum_to(g / b), db = sum_to(-(g / b) * out)
 * (-(g / b) * out = -g * a / b^2, sharing g / b with da) */
static tg_tensor *div_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_div(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status div_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *g_b = tg_tensor_div(ar, g, r->in[1]);
    if (tg_needs_grad(tp, r, 0))
        tg_accumulate_grad(tp, r, 0, sum_to_input(ar, g_b, r, 0));
    if (tg_needs_grad(tp, r, 1)) {
        tg_tensor *db = sum_to_input(ar, tg_tensor_mul(ar, g_b, r->out), r, 1);
        tg_accumulate_grad(tp, r, 1, tg_tensor_neg(ar, db));
    }
    return tg_tape_status(tp);
}

static const tg_op op_div = {"div", div_forward, div_backward, TG_READS_IN(1) | TG_READS_OUT};

tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_div, a, b, (const void *)NULL);
}

/* ------------------------------------------------------------------ maximum
 * out = max(a, b) (broadcast); with share = a == b ? g / 2 : g (ties: half to each),
 * da = sum_to(a < b ? 0 : share), db = sum_to(a > b ? 0 : share), as PyTorch */
static tg_tensor *maximum_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_maximum(TG__AR(tp), r->in[0], r->in[1]);
}

static tg_status maximum_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *a = r->in[0], *b = r->in[1];
    tg_tensor *zero = tg_tensor_scalar(ar, g->dtype, 0);
    tg_tensor *tie = tg_tensor_binary(ar, TG_EQ, a, b);
    tg_tensor *share = tg_tensor_where(ar, tie, tg_tensor_affine(ar, g, 0.5, 0), g);
    if (tg_needs_grad(tp, r, 0)) {
        tg_tensor *a_lost = tg_tensor_binary(ar, TG_LT, a, b);
        tg_tensor *da = tg_tensor_where(ar, a_lost, zero, share);
        tg_accumulate_grad(tp, r, 0, sum_to_input(ar, da, r, 0));
    }
    if (tg_needs_grad(tp, r, 1)) {
        tg_tensor *b_lost = tg_tensor_binary(ar, TG_GT, a, b);
        tg_tensor *db = tg_tensor_where(ar, b_lost, zero, share);
        tg_accumulate_grad(tp, r, 1, sum_to_input(ar, db, r, 1));
    }
    return tg_tape_status(tp);
}

static const tg_op op_maximum = {"maximum", maximum_forward, maximum_backward,
                                 TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_maximum(tg_tape *tp, tg_tensor *a, tg_tensor *b)
{
    return TG__APPLY2(tp, op_maximum, a, b, (const void *)NULL);
}

/* ------------------------------------------------------------------ neg
 * out = -x; dx = -g */
static tg_tensor *neg_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_neg(TG__AR(tp), r->in[0]);
}

static tg_status neg_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_neg(TG__AR(tp), g));
}

static const tg_op op_neg = {"neg", neg_forward, neg_backward, TG_READS_NONE};

tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_neg, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ add_scalar
 * out = x + s; dx = g */
static tg_tensor *add_scalar_forward(tg_tape *tp, tg_record *r)
{
    const scalar_params *p = r->params;
    return tg_tensor_affine(TG__AR(tp), r->in[0], 1, p->s);
}

static tg_status add_scalar_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, g);
}

static const tg_op op_add_scalar = {"add_scalar", add_scalar_forward, add_scalar_backward,
                                    TG_READS_NONE};

tg_tensor *tg_add_scalar(tg_tape *tp, tg_tensor *x, double s)
{
    return TG__APPLY1(tp, op_add_scalar, x, &(scalar_params){s});
}

/* ------------------------------------------------------------------ mul_scalar
 * out = x * s; dx = g * s */
static tg_tensor *mul_scalar_forward(tg_tape *tp, tg_record *r)
{
    const scalar_params *p = r->params;
    return tg_tensor_affine(TG__AR(tp), r->in[0], p->s, 0);
}

static tg_status mul_scalar_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const scalar_params *p = r->params;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_affine(TG__AR(tp), g, p->s, 0));
}

static const tg_op op_mul_scalar = {"mul_scalar", mul_scalar_forward, mul_scalar_backward,
                                    TG_READS_NONE};

tg_tensor *tg_mul_scalar(tg_tape *tp, tg_tensor *x, double s)
{
    return TG__APPLY1(tp, op_mul_scalar, x, &(scalar_params){s});
}

/* ------------------------------------------------------------------ pow_scalar
 * out = x^e; dx = g * e * x^(e-1), and 0 for e == 0 (not 0 * x^-1, NaN at x = 0), as
 * PyTorch. (Not from out: out / x fails at x = 0.) */
static tg_tensor *pow_scalar_forward(tg_tape *tp, tg_record *r)
{
    const scalar_params *p = r->params;
    return tg_tensor_pow_scalar(TG__AR(tp), r->in[0], p->s);
}

static tg_status pow_scalar_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const scalar_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    if (p->s == 0)
        return tg_accumulate_grad(tp, r, 0, tg_tensor_zeros(ar, x->dtype, x->ndim, x->shape));
    tg_tensor *slope = tg_tensor_affine(ar, tg_tensor_pow_scalar(ar, x, p->s - 1), p->s, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, slope));
}

static const tg_op op_pow_scalar = {"pow_scalar", pow_scalar_forward, pow_scalar_backward,
                                    TG_READS_IN(0)};

tg_tensor *tg_pow_scalar(tg_tape *tp, tg_tensor *x, double exponent)
{
    return TG__APPLY1(tp, op_pow_scalar, x, &(scalar_params){exponent});
}

/* ------------------------------------------------------------------ exp
 * out = exp(x); dx = g * out */
static tg_tensor *exp_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_exp(TG__AR(tp), r->in[0]);
}

static tg_status exp_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(TG__AR(tp), g, r->out));
}

static const tg_op op_exp = {"exp", exp_forward, exp_backward, TG_READS_OUT};

tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_exp, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ log
 * out = log(x); dx = g / x */
static tg_tensor *log_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_log(TG__AR(tp), r->in[0]);
}

static tg_status log_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_div(TG__AR(tp), g, r->in[0]));
}

static const tg_op op_log = {"log", log_forward, log_backward, TG_READS_IN(0)};

tg_tensor *tg_log(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_log, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ sqrt
 * out = sqrt(x); dx = g * 0.5 / out */
static tg_tensor *sqrt_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_sqrt(TG__AR(tp), r->in[0]);
}

static tg_status sqrt_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_div(ar, tg_tensor_affine(ar, g, 0.5, 0), r->out));
}

static const tg_op op_sqrt = {"sqrt", sqrt_forward, sqrt_backward, TG_READS_OUT};

tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_sqrt, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ rsqrt
 * out = 1 / sqrt(x); dx = -0.5 * g * out^3 */
static tg_tensor *rsqrt_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_rsqrt(TG__AR(tp), r->in[0]);
}

static tg_status rsqrt_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *cube = tg_tensor_mul(ar, tg_tensor_square(ar, r->out), r->out);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, tg_tensor_affine(ar, g, -0.5, 0), cube));
}

static const tg_op op_rsqrt = {"rsqrt", rsqrt_forward, rsqrt_backward, TG_READS_OUT};

tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_rsqrt, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ tanh
 * out = tanh(x); dx = g * (1 - out^2) */
static tg_tensor *tanh_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_tanh(TG__AR(tp), r->in[0]);
}

static tg_status tanh_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *slope = tg_tensor_affine(ar, tg_tensor_square(ar, r->out), -1, 1);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, slope));
}

static const tg_op op_tanh = {"tanh", tanh_forward, tanh_backward, TG_READS_OUT};

tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_tanh, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ sigmoid
 * out = 1 / (1 + exp(-x)); dx = g * out * (1 - out) */
static tg_tensor *sigmoid_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_sigmoid(TG__AR(tp), r->in[0]);
}

static tg_status sigmoid_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *slope = tg_tensor_mul(ar, r->out, tg_tensor_affine(ar, r->out, -1, 1));
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, slope));
}

static const tg_op op_sigmoid = {"sigmoid", sigmoid_forward, sigmoid_backward, TG_READS_OUT};

tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_sigmoid, x, (const void *)NULL);
}

/* ------------------------------------------------------------------ relu, leaky relu */

/* relu: out = max(x, 0); dx = x > 0 ? g : 0 (0 at x == 0, as PyTorch) */
static tg_tensor *relu_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_relu(TG__AR(tp), r->in[0]);
}

static tg_status relu_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_relu_backward(TG__AR(tp), r->in[0], g));
}

static const tg_op op_relu = {"relu", relu_forward, relu_backward, TG_READS_IN(0)};

tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_relu, x, (const void *)NULL);
}

/* leaky relu: out = x > 0 ? x : slope * x; dx = x > 0 ? g : slope * g */
static tg_tensor *leaky_relu_forward(tg_tape *tp, tg_record *r)
{
    const scalar_params *p = r->params;
    return tg_tensor_leaky_relu(TG__AR(tp), r->in[0], p->s);
}

static tg_status leaky_relu_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const scalar_params *p = r->params;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_leaky_relu_backward(TG__AR(tp), r->in[0], g, p->s));
}

static const tg_op op_leaky_relu = {"leaky_relu", leaky_relu_forward, leaky_relu_backward,
                                    TG_READS_IN(0)};

tg_tensor *tg_leaky_relu(tg_tape *tp, tg_tensor *x, double slope)
{
    return TG__APPLY1(tp, op_leaky_relu, x, &(scalar_params){slope});
}

/* ------------------------------------------------------------------ relu_, leaky_relu_
 * The same values written over x instead of into a new tensor (PyTorch's inplace=True),
 * so that a network's activation costs no memory of its own: VGG_38 keeps one tensor
 * per layer fewer until its backward (docs/performance.md). Their backward takes the
 * sign of x from the output, which has the same sign for relu and for leaky relu with
 * slope >= 0 (hence the check on slope), and reads nothing else: TG_READS_OUT.
 *
 * Writing x is safe only when no gradient still needs what x holds. That is checked
 * here, when the op is recorded, so that the error names the in-place call and not,
 * later, a backward that found its input changed (tg_backward's version check stays as
 * the net for writes made after this). Refused: x a parameter, or a view of one on the
 * tape; x with elements that share memory (an expanded view: leaky relu would be
 * applied twice to them); and x's storage read by a backward already recorded. What is
 * recorded afterwards reads the new values, which is what it was given. */

/* Whether some element of x is also another element (a stride 0, or strides that
 * cross): with the sizes > 1 sorted by stride, each stride must step past everything
 * the smaller ones reach. Strides are >= 0 in this library. */
static bool overlaps_itself(const tg_tensor *x)
{
    int dims[TG_MAX_DIMS], n = 0;
    for (int d = 0; d < x->ndim; d++) {
        if (x->shape[d] <= 1)
            continue;
        int k = n++;
        for (; k > 0 && x->strides[dims[k - 1]] > x->strides[d]; k--)
            dims[k] = dims[k - 1];
        dims[k] = d;
    }
    int64_t reach = 0;
    for (int k = 0; k < n; k++) {
        if (x->strides[dims[k]] <= reach)
            return true;
        reach += x->strides[dims[k]] * (x->shape[dims[k]] - 1);
    }
    return false;
}

/* The first record that can hold x's storage: the one that made it, found by walking
 * back from x's record through views of it (records before it cannot have read it);
 * 0 when it predates the tape (a constant, a leaf's view, another tape's tensor). */
static int storage_born_at(const tg_tape *tp, const tg_tensor *x)
{
    const tg_record *r = tg_tape_record_of(tp, x);
    while (r) {
        int from = -2; /* the record its input of the same storage came from */
        for (int i = 0; i < r->nin && from == -2; i++)
            if (r->in[i]->storage == x->storage)
                from = r->in_record[i];
        if (from == -2)
            return r->id; /* a fresh output: r made the storage */
        r = tg_tape_record(tp, from);
    }
    return 0;
}

/* TG_OK when fn may write x in place; else the error, for the record's forward. */
static tg_status check_inplace(const char *fn, const tg_tape *tp, const tg_tensor *x)
{
    const int plain = (int)strlen(fn) - 1; /* "use %.*s": the out-of-place op, fn without its _ */
    if (tg_is_leaf(x))
        return tg_set_error_in(TG_ERR_ARG, fn, "x is the parameter '%s', whose value its gradient is "
                            "taken at; use %.*s", tg_leaf_name(x), plain, fn);
    if (x->dtype != TG_F32 && x->dtype != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, fn, "x is %s; it takes f32 or f64", tg_dtype_name(x->dtype));
    if (overlaps_itself(x))
        return tg_set_error_in(TG_ERR_ARG, fn, "x has elements that share memory (an expanded or "
                            "broadcast view), which one write would change together; use %.*s, or "
                            "write a contiguous copy (tg_tensor_contiguous)", plain, fn);
    for (int id = storage_born_at(tp, x); id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        const char *in = *r->scope ? ", in " : "";
        for (int i = 0; i <= r->nin; i++) {
            const tg_tensor *t = i < r->nin ? r->in[i] : r->out;
            if (t->storage != x->storage)
                continue;
            if (i < r->nin && tg_is_leaf(t))
                return tg_set_error_in(TG_ERR_ARG, fn, "x is a view of the parameter '%s' (as record %d, "
                                    "tg_%s%s%s, read it); writing it would change the parameter; use %.*s",
                                       tg_leaf_name(t), id, r->op->name, in, r->scope, plain, fn);
            if (!r->requires_grad || !r->op->backward ||
                !tg__op_reads(r->op, i, r->nin))
                continue;
            char what[32] = "output";
            if (i < r->nin)
                snprintf(what, sizeof what, "input %d", i);
            return tg_set_error_in(TG_ERR_STATE, fn, "the backward of record %d (tg_%s%s%s) reads x as "
                                "its %s, and would find it overwritten; use %.*s, or apply this one to "
                                "a value no recorded backward reads (a conv2d's or batch_norm2d's "
                                "output)", id, r->op->name, in, r->scope, what, plain, fn);
        }
    }
    return TG_OK;
}

/* out = x = relu(x) or leaky_relu(x, slope): x's own storage, version bumped by the
 * _out write; tg_apply gives the result a header of its own */
static tg_tensor *piecewise_linear_inplace(tg_tape *tp, tg_record *r, bool relu)
{
    const scalar_params *p = r->params;
    tg_tensor *x = r->in[0];
    const char *fn = relu ? "tg_relu_" : "tg_leaky_relu_";
    if (!relu && !(p->s >= 0)) {
        tg_set_error_in(TG_ERR_ARG, fn, "slope %g < 0 flips the sign of negative inputs, so the "
                     "backward could not tell them from the output; use tg_leaky_relu", p->s);
        return NULL;
    }
    if (check_inplace(fn, tp, x) != TG_OK ||
        tg_tensor_unary_out(x, relu ? TG_RELU : TG_LEAKY_RELU, x, p->s, 0) != TG_OK)
        return NULL;
    return x;
}

static tg_tensor *relu_inplace_forward(tg_tape *tp, tg_record *r)
{
    return piecewise_linear_inplace(tp, r, true);
}

static tg_tensor *leaky_relu_inplace_forward(tg_tape *tp, tg_record *r)
{
    return piecewise_linear_inplace(tp, r, false);
}

/* out > 0 exactly where x > 0 (NaN: neither), so the mask is the output's */
static tg_status relu_inplace_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_relu_backward(TG__AR(tp), r->out, g));
}

static tg_status leaky_relu_inplace_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const scalar_params *p = r->params;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_leaky_relu_backward(TG__AR(tp), r->out, g, p->s));
}

static const tg_op op_relu_inplace = {"relu_", relu_inplace_forward, relu_inplace_backward,
                                      TG_READS_OUT};
static const tg_op op_leaky_relu_inplace = {"leaky_relu_", leaky_relu_inplace_forward,
                                            leaky_relu_inplace_backward, TG_READS_OUT};

tg_tensor *tg_relu_(tg_tape *tp, tg_tensor *x)
{
    return TG__APPLY1(tp, op_relu_inplace, x, &(scalar_params){0});
}

tg_tensor *tg_leaky_relu_(tg_tape *tp, tg_tensor *x, double slope)
{
    return TG__APPLY1(tp, op_leaky_relu_inplace, x, &(scalar_params){slope});
}

/* ------------------------------------------------------------------ clamp
 * out = min(max(x, lo), hi), a NAN bound bounding nothing; dx = lo <= x <= hi ? g : 0,
 * as PyTorch (the gradient passes at the bounds themselves, and nowhere if lo > hi). */
typedef struct clamp_params {
    double lo, hi;
} clamp_params;

static tg_tensor *clamp_forward(tg_tape *tp, tg_record *r)
{
    const clamp_params *p = r->params;
    return tg_tensor_clamp(TG__AR(tp), r->in[0], p->lo, p->hi);
}

static tg_status clamp_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const clamp_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    const tg_tensor *dx = g;
    if (!isnan(p->lo))
        dx = masked(ar, compare_scalar(ar, TG_GE, x, p->lo), dx);
    if (!isnan(p->hi))
        dx = masked(ar, compare_scalar(ar, TG_LE, x, p->hi), dx);
    return tg_accumulate_grad(tp, r, 0, dx);
}

static const tg_op op_clamp = {"clamp", clamp_forward, clamp_backward, TG_READS_IN(0)};

tg_tensor *tg_clamp(tg_tape *tp, tg_tensor *x, double lo, double hi)
{
    return TG__APPLY1(tp, op_clamp, x, &(clamp_params){lo, hi});
}

/* ------------------------------------------------------------------ dropout
 * out = x * scale with scale = mask / (1 - p), mask ~ Bernoulli(1 - p) drawn from the
 * tape's generator in forward; dx = g * scale, the same scale kept in the params. The
 * mask is drawn as u8, which takes the same draws as f32, so one seed drops the same
 * elements in an f32 and an f64 model. The identity (no draw) when grad is disabled
 * (evaluation) or p == 0. p must be in [0, 1): p == 1 would keep nothing and scale by
 * 1/0, so it is an error rather than a silent zero tensor. */
typedef struct dropout_params {
    double p;
    tg_tensor *scale; /* mask / (1 - p) in x's dtype and shape; NULL for the identity */
} dropout_params;

static tg_tensor *dropout_forward(tg_tape *tp, tg_record *r)
{
    dropout_params *p = r->params;
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0];
    if (!(p->p >= 0 && p->p < 1)) {
        tg_set_error_in(TG_ERR_ARG, "tg_dropout", "p = %g is not in [0, 1)", p->p);
        return NULL;
    }
    if (!tg_tape_grad_enabled(tp) || p->p == 0)
        return tg_tensor_view(ar, x, x->ndim, x->shape);
    tg_tensor *mask = tg_tensor_empty(ar, TG_U8, x->ndim, x->shape);
    if (!mask || tg_tensor_bernoulli_(mask, tg_tape_rng(tp), 1 - p->p) != TG_OK)
        return NULL;
    p->scale = tg_tensor_where(ar, mask, tg_tensor_scalar(ar, x->dtype, 1 / (1 - p->p)),
                               tg_tensor_scalar(ar, x->dtype, 0));
    return tg_tensor_mul(ar, x, p->scale);
}

static tg_status dropout_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const dropout_params *p = r->params;
    if (!p->scale)
        return tg_accumulate_grad(tp, r, 0, g);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(TG__AR(tp), g, p->scale));
}

static const tg_op op_dropout = {"dropout", dropout_forward, dropout_backward, TG_READS_NONE};

tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p)
{
    return TG__APPLY1(tp, op_dropout, x, &(dropout_params){p, NULL});
}
