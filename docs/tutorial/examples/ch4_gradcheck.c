/* ch4_gradcheck.c — chapter 4 of docs/tutorial: checking gradients.
 *
 *   1. Finite differences by hand on f(x, y) = x*y + tanh(x): forward and central
 *      differences for steps h = 1e-1 .. 1e-10, in double and in float. The error first
 *      falls with h (truncation) and then rises (rounding): why float64, why h = 1e-6.
 *   2. tg_gradcheck on a function written from built-in ops.
 *   3. A new op, cube(x) = x^3, defined as a tg_op with a correct backward and three
 *      wrong ones; tg_gradcheck passes the first and catches the others.
 *   4. A kink: relu at exactly 0 is reported as skipped, not as a failure.
 * experiments/custom_op.c is the complete program around a new op (softplus, checked
 * and then trained). Output compared with ch4_gradcheck.expected. */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>

/* ------------------------------------------------------------------ 1. by hand */

static double f64(double x, double y) { return x * y + tanh(x); }
static float f32(float x, float y) { return x * y + tanhf(x); }

static void by_hand(void)
{
    const double x = 0.5, y = 2.0, exact = y + 1 - tanh(x) * tanh(x);
    printf("1. df/dx of f(x, y) = x*y + tanh(x) at x = 0.5, y = 2; exact %.12f.\n"
           "   |error| of the forward difference (f(x+h) - f(x)) / h and of the central\n"
           "   difference (f(x+h) - f(x-h)) / 2h, in double and in float:\n\n", exact);
    printf("   %7s  %12s %12s  %12s %12s\n", "h", "fwd double", "central dbl", "fwd float", "central flt");
    for (int e = 1; e <= 10; e++) {
        double h = pow(10.0, -e);
        double fwd = (f64(x + h, y) - f64(x, y)) / h;
        double cen = (f64(x + h, y) - f64(x - h, y)) / (2 * h);
        float hf = (float)h, xf = (float)x, yf = (float)y;
        float fwdf = (f32(xf + hf, yf) - f32(xf, yf)) / hf;
        float cenf = (f32(xf + hf, yf) - f32(xf - hf, yf)) / (2 * hf);
        printf("   %7.0e  %12.1e %12.1e  %12.1e %12.1e\n", h, fabs(fwd - exact), fabs(cen - exact),
               fabs((double)fwdf - exact), fabs((double)cenf - exact));
    }
}

/* ------------------------------------------------------------------ 2. a function of built-in ops */

/* a dense layer, tanh(x @ w + b); gradcheck differentiates it with respect to all three */
static tg_tensor *dense(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_tanh(tp, tg_add(tp, tg_matmul(tp, in[0], in[1]), in[2]));
}

/* ------------------------------------------------------------------ 3. an op of your own */

/* cube: out = x^3. forward computes from r->in into the tape's arena. */
static tg_tensor *cube_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_pow_scalar(tg_tape_arena(tp), r->in[0], 3);
}

/* right: dx = g * 3x^2 */
static tg_status cube_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *d = tg_tensor_affine(ar, tg_tensor_square(ar, r->in[0]), 3, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, d));
}

/* wrong: the power rule misremembered, dx = g * 2x^2 */
static tg_status cube_backward_wrong_factor(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *d = tg_tensor_affine(ar, tg_tensor_square(ar, r->in[0]), 2, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, d));
}

/* wrong: forgets the chain rule, dx = 3x^2 whatever g is. Right only when g is 1
 * everywhere, so a test that seeds with ones misses it; gradcheck seeds with a random v. */
static tg_status cube_backward_forgets_g(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    (void)g;
    tg_arena *ar = tg_tape_arena(tp);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_affine(ar, tg_tensor_square(ar, r->in[0]), 3, 0));
}

/* wrong: hands back a gradient of the wrong shape (summed to a scalar) */
static tg_status cube_backward_wrong_shape(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    tg_tensor *d = tg_tensor_affine(ar, tg_tensor_square(ar, r->in[0]), 3, 0);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_sum(ar, tg_tensor_mul(ar, g, d), 0, NULL, false));
}

static const tg_op cube_ops[] = {
    {"cube", cube_forward, cube_backward, TG_READS_IN(0)},
    {"cube", cube_forward, cube_backward_wrong_factor, TG_READS_IN(0)},
    {"cube", cube_forward, cube_backward_forgets_g, TG_READS_IN(0)},
    {"cube", cube_forward, cube_backward_wrong_shape, TG_READS_IN(0)},
};
static const char *const cube_what[] = {
    "right: g * 3x^2",
    "wrong factor: g * 2x^2",
    "forgets g: 3x^2",
    "wrong shape: sum(g * 3x^2)",
};

/* the function under test: cube(x), with the variant of the op that user points at */
static tg_tensor *cube_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const tg_op *op = user;
    return tg_apply(tp, op, 1, &in[0], NULL, 0);
}

/* ------------------------------------------------------------------ 4. a kink */

static tg_tensor *relu_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return tg_relu(tp, in[0]);
}

int main(void)
{
    by_hand();

    int rc = 1;
    tg_rng g = tg_rng_new(4);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(4, 3));
    tg_tensor *w = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(3, 2));
    tg_tensor *b = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(2));
    tg_tensor *c = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(2, 3));
    static const double kv[] = {-1.5, -0.5, 0.0, 0.25, 1.0, 2.0};
    tg_tensor *k = tg_tensor_from_data(NULL, TG_F64, TG_DIMS(6), kv);
    if (!x || !w || !b || !c || !k) {
        fprintf(stderr, "ch4_gradcheck: %s\n", tg_last_error());
        goto done;
    }
    tg_gradcheck_report rep;

    printf("\n2. tg_gradcheck(dense, ...) for tanh(x @ w + b), x [4,3], w [3,2], b [2],\n"
           "   default options (eps 1e-6, atol 1e-5, rtol 1e-3):\n");
    tg_status st = tg_gradcheck(dense, NULL, 3, (tg_tensor *[]){x, w, b}, NULL, &rep);
    printf("   %s: %s\n", tg_status_name(st), rep.message);
    if (st != TG_OK)
        goto done;

    printf("\n3. cube(x) = x^3 as a tg_op, x [2,3], with four backwards:\n");
    for (int v = 0; v < 4; v++) {
        st = tg_gradcheck(cube_fn, (void *)&cube_ops[v], 1, &c, NULL, &rep);
        /* the report's message describes the comparison; when the function or its
         * backward fails before anything is compared, tg_last_error() says why */
        printf("\n   %s\n   -> %s: %s\n", cube_what[v], tg_status_name(st),
               rep.message[0] ? rep.message : tg_last_error());
        if ((st == TG_OK) != (v == 0)) {
            fprintf(stderr, "ch4_gradcheck: variant %d: gradcheck should have %s\n", v, v ? "failed" : "passed");
            goto done;
        }
    }

    printf("\n4. relu at x = [-1.5, -0.5, 0, 0.25, 1, 2]: at 0 the slope is 0 on the left and 1\n"
           "   on the right; the central difference gives their mean, 0.5, which no backward\n"
           "   returns. tg_gradcheck sees the one-sided slopes disagree and skips the element:\n");
    st = tg_gradcheck(relu_fn, NULL, 1, &k, NULL, &rep);
    printf("   %s: %s\n", tg_status_name(st), rep.message);
    if (st != TG_OK || rep.kinks != 1)
        goto done;
    rc = 0;
done:
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    tg_tensor_free(c);
    tg_tensor_free(k);
    return rc;
}
