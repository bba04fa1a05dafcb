/* custom_op — your own differentiable function, from definition to training.
 *
 * Defines softplus(x) = log(1 + exp(x)) as a tg_op (a forward and a backward side by
 * side, exactly as the library defines its own ops), checks its backward with
 * tg_gradcheck, then fits a small network that uses it to a noisy sine by gradient
 * descent. Only <tapegrad.h> is included: nothing here needs the library's sources.
 *
 *   build/experiments/custom_op [--steps N] [--seed S]
 */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ the op
 * softplus(x) = log(1 + exp(x)), computed as max(x, 0) + log(1 + exp(-|x|)) so that
 * exp never overflows; d/dx = sigmoid(x). */
static tg_tensor *softplus_forward(tg_tape *tp, tg_record *r)
{
    tg_arena *ar = tg_tape_arena(tp);
    const tg_tensor *x = r->in[0];
    tg_tensor *tail = tg_tensor_log(ar, tg_tensor_affine(ar, tg_tensor_exp(ar, tg_tensor_neg(ar,
                                    tg_tensor_abs(ar, x))), 1, 1));
    return tg_tensor_add(ar, tg_tensor_relu(ar, x), tail); /* NULL on failure: the tape reports */
}

static tg_status softplus_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = tg_tape_arena(tp);
    return tg_accumulate_grad(tp, r, 0, tg_tensor_mul(ar, g, tg_tensor_sigmoid(ar, r->in[0])));
}

static const tg_op softplus_op = {"softplus", softplus_forward, softplus_backward,
                                  TG_READS_IN(0)};

static tg_tensor *softplus(tg_tape *tp, tg_tensor *x)
{
    return tg_apply(tp, &softplus_op, 1, &x, NULL, 0);
}

/* ------------------------------------------------------------------ a model using it */

typedef struct mlp {
    tg_tensor *w1, *b1, *w2, *b2; /* [1,H], [H], [H,1], [1] */
} mlp;

static tg_tensor *mlp_forward(tg_tape *tp, const mlp *m, tg_tensor *x) /* x [N,1] */
{
    tg_scope_push(tp, "hidden");
    tg_tensor *h = softplus(tp, tg_add(tp, tg_matmul(tp, x, m->w1), m->b1));
    tg_scope_pop(tp);
    tg_scope_push(tp, "out");
    tg_tensor *y = tg_add(tp, tg_matmul(tp, h, m->w2), m->b2);
    tg_scope_pop(tp);
    return y;
}

/* the function gradcheck differentiates: softplus of a transposed view, so the op
 * also sees a non-contiguous input */
static tg_tensor *check_fn(tg_tape *tp, tg_tensor *const *in, void *user)
{
    (void)user;
    return softplus(tp, tg_transpose(tp, in[0], 0, 1));
}

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: custom_op [--steps N] [--seed S]\n"
               "  Defines softplus as a tg_op, gradchecks it, and trains a small network with it.\n"
               "  --steps N  gradient-descent steps, 1..100000 (default 1000)\n"
               "  --seed S   random seed (default 0)\n");
    return status;
}

static int parse_long(const char *flag, const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || *end || v < lo || v > hi) {
        fprintf(stderr, "custom_op: %s wants an integer in %ld..%ld, got '%s'\n", flag, lo, hi,
                s ? s : "");
        return 0;
    }
    *out = v;
    return 1;
}

static tg_tensor *param(tg_rng *g, const char *name, int ndim, const int64_t *shape, double scale)
{
    tg_tensor *t = tg_tensor_empty(NULL, TG_F32, ndim, shape);
    if (!t || tg_tensor_uniform_(t, g, -scale, scale) != TG_OK || tg_requires_grad(t, name) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

int main(int argc, char **argv)
{
    long steps = 1000, seed = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout, 0);
        if (!strcmp(argv[i], "--steps")) {
            if (!parse_long("--steps", i + 1 < argc ? argv[++i] : NULL, 1, 100000, &steps))
                return 2;
        } else if (!strcmp(argv[i], "--seed")) {
            if (!parse_long("--seed", i + 1 < argc ? argv[++i] : NULL, 0, 1L << 30, &seed))
                return 2;
        } else {
            fprintf(stderr, "custom_op: unknown option '%s' (try --help)\n", argv[i]);
            return 2;
        }
    }
    int status = 1;
    tg_rng g = tg_rng_new((uint64_t)seed);
    tg_tape *tp = tg_tape_new((uint64_t)seed);
    tg_tensor *probe = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(4, 3));
    tg_tensor *x = tg_tensor_empty(NULL, TG_F32, TG_DIMS(64, 1));
    tg_tensor *y = tg_tensor_empty(NULL, TG_F32, TG_DIMS(64, 1));
    enum { H = 16 };
    mlp m = {param(&g, "hidden/weight", TG_DIMS(1, H), 3.0), param(&g, "hidden/bias", TG_DIMS(H), 3.0),
             param(&g, "out/weight", TG_DIMS(H, 1), 1.0 / H), param(&g, "out/bias", TG_DIMS(1), 0.1)};
    tg_tensor *params[] = {m.w1, m.b1, m.w2, m.b2}, *velocity[4] = {NULL};
    if (!tp || !probe || !x || !y || !m.w1 || !m.b1 || !m.w2 || !m.b2)
        goto fail;
    for (int k = 0; k < 4; k++)
        if (!(velocity[k] = tg_tensor_zeros(NULL, TG_F32, params[k]->ndim, params[k]->shape)))
            goto fail;

    /* 1. the backward against central differences */
    tg_gradcheck_report rep;
    if (tg_gradcheck(check_fn, NULL, 1, &probe, NULL, &rep) != TG_OK) {
        fprintf(stderr, "custom_op: %s\n", rep.message);
        goto done;
    }
    printf("gradcheck: %s\n", rep.message);

    /* 2. data: y = sin(2x) + noise on x in [-1, 1] */
    float *xd = tg_tensor_data(x), *yd = tg_tensor_data(y);
    for (int i = 0; i < 64; i++) {
        xd[i] = -1.0f + 2.0f * (float)i / 63.0f;
        yd[i] = sinf(2 * xd[i]) + 0.05f * (float)(tg_rng_uniform(&g) - 0.5);
    }

    /* 3. training: mean squared error, gradient descent with momentum 0.9, a tape
     *    reset per step (tapegrad/optim.h has the real optimisers) */
    double first = 0, last = 0, lr = 0.05;
    for (long step = 0; step < steps; step++) {
        tg_tensor *err = tg_sub(tp, mlp_forward(tp, &m, x), y);
        tg_tensor *loss = tg_mean(tp, tg_mul(tp, err, err), 0, NULL, false);
        if (tg_backward(tp, loss) != TG_OK) {
            fprintf(stderr, "custom_op: step %ld: %s\n", step, tg_tape_error(tp));
            goto done;
        }
        last = tg_tensor_item(loss);
        if (step == 0) {
            first = last;
            printf("\nthe tape of one step (softplus is a record like any other):\n");
            tg_tape_print(tp, stdout);
            printf("\n");
        }
        for (int k = 0; k < 4; k++) {
            tg_tensor_axpy_(velocity[k], -0.1, velocity[k]); /* v = 0.9 v + g */
            tg_tensor_axpy_(velocity[k], 1.0, tg_grad(params[k]));
            tg_tensor_axpy_(params[k], -lr, velocity[k]);
            tg_zero_grad(params[k]);
        }
        if (step % 200 == 0 || step == steps - 1)
            printf("step %4ld  loss %.5f\n", step, last);
        tg_tape_reset(tp);
    }
    if (!(last < first)) {
        fprintf(stderr, "custom_op: the loss did not go down (%.5f -> %.5f)\n", first, last);
        goto done;
    }
    printf("loss %.5f -> %.5f in %ld steps\n", first, last, steps);
    status = 0;
    goto done;
fail:
    fprintf(stderr, "custom_op: %s\n", tg_last_error());
done:
    for (int k = 0; k < 4; k++) {
        tg_tensor_free(params[k]);
        tg_tensor_free(velocity[k]);
    }
    tg_tensor_free(probe);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tp);
    return status;
}
