/* autograd/gradcheck.c — gradients against central differences in float64.
 *
 * The function's output is projected on a fixed random direction v, L(x) = <v, f(x)>,
 * so one backward (seeded with v) gives the analytic dL/dx for every input element,
 * and two evaluations of L per element give the numeric one. That checks v^T J rather
 * than all of J, as torch.autograd's fast mode does; a wrong backward shows up for any
 * v but a measure-zero set.
 *
 * Kinks (ReLU at 0, max at a tie) make the central difference the mean of two
 * one-sided slopes. An element that fails the central test but whose one-sided slopes
 * disagree with each other, with the analytic value equal to one of them, is counted
 * as a kink and skipped, not reported as a wrong gradient. */
#include "internal.h"

#include <math.h>
#include <string.h>

typedef struct checker {
    tg_gradcheck_fn fn;
    void *user;
    int nin;
    tg_tensor **x;   /* the f64 leaves (float inputs) or the inputs as given */
    tg_tensor *v;    /* the projection, heap, shaped as the output */
    tg_tape *tp;
    tg_rng rng0;     /* the tape's generator at the start of every evaluation */
    tg_gradcheck_report *rep;
} checker;

/* L(x) = <v, f(x)>, with the same dropout masks every time. Gradients stay enabled
 * (nothing is walked back): ops that act differently in evaluation mode, as dropout
 * does, must compute the function whose gradient was taken. */
static bool evaluate(checker *c, double *out)
{
    tg_tape_reset(c->tp);
    *tg_tape_rng(c->tp) = c->rng0;
    tg_tensor *y = c->fn(c->tp, c->x, c->user);
    if (tg_tape_status(c->tp) != TG_OK || !y)
        return false;
    tg_arena *ar = tg_tape_arena(c->tp);
    tg_tensor *p = tg_tensor_sum(ar, tg_tensor_mul(ar, tg_tensor_to_dtype(ar, y, TG_F64), c->v), 0,
                                 NULL, false);
    if (!p)
        return false;
    *out = tg_tensor_item(p);
    return true;
}

static bool is_float(const tg_tensor *t) { return t->dtype == TG_F32 || t->dtype == TG_F64; }

/* "[1,2]" for flat index j of a shape */
static void index_str(char *buf, size_t size, const tg_tensor *t, int64_t j)
{
    int64_t idx[TG_MAX_DIMS];
    for (int d = t->ndim - 1; d >= 0; d--) {
        idx[d] = t->shape[d] ? j % t->shape[d] : 0;
        j = t->shape[d] ? j / t->shape[d] : 0;
    }
    tg_shape_str(buf, size, t->ndim, idx);
}

/* The distinct op names on the tape, "add, mul", for the report. */
static void op_names(const tg_tape *tp, char *buf, size_t size)
{
    size_t used = 0;
    buf[0] = '\0';
    for (int id = 0; id < tg_tape_size(tp) && used + 1 < size; id++) {
        const char *name = tg_tape_record(tp, id)->op->name;
        bool seen = false;
        for (int k = 0; k < id && !seen; k++)
            seen = strcmp(tg_tape_record(tp, k)->op->name, name) == 0;
        if (!seen)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", name);
    }
}

/* Frees what the check made; a failure that happened before any comparison leaves
 * its message in the report too, so the report alone always says what went wrong. */
static tg_status finish(checker *c, tg_status st)
{
    if (st != TG_OK && !c->rep->message[0])
        snprintf(c->rep->message, sizeof c->rep->message, "%s", tg_last_error());
    for (int i = 0; c->x && i < c->nin; i++)
        if (c->x[i] && tg_is_leaf(c->x[i]))
            tg_tensor_free(c->x[i]);
    tg_mem_free(c->x);
    tg_tensor_free(c->v);
    tg_tape_free(c->tp);
    return st;
}

tg_status tg_gradcheck(tg_gradcheck_fn fn, void *user, int nin, tg_tensor *const *inputs,
                       const tg_gradcheck_options *opts, tg_gradcheck_report *report)
{
    tg_gradcheck_options o = opts ? *opts : (tg_gradcheck_options){0};
    double eps = o.eps > 0 ? o.eps : 1e-6, atol = o.atol > 0 ? o.atol : 1e-5;
    double rtol = o.rtol > 0 ? o.rtol : 1e-3;
    int64_t max_elements = o.max_elements > 0 ? o.max_elements : 4096;
    tg_gradcheck_report rep_local, *rep = report ? report : &rep_local;
    memset(rep, 0, sizeof *rep);
    rep->input = -1;
    rep->index = -1;
    checker c = {.fn = fn, .user = user, .nin = nin, .rep = rep};
    if (!fn || nin < 1 || !inputs)
        return finish(&c, tg_set_error(TG_ERR_ARG, "tg_gradcheck: needs a function and at least one input"));

    c.x = tg_mem_alloc((size_t)nin * sizeof *c.x, _Alignof(tg_tensor *));
    c.tp = tg_tape_new(o.seed);
    if (!c.x || !c.tp)
        return finish(&c, TG_ERR_NOMEM);
    memset(c.x, 0, (size_t)nin * sizeof *c.x);
    c.rng0 = *tg_tape_rng(c.tp);
    for (int i = 0; i < nin; i++) {
        if (!inputs[i])
            return finish(&c, tg_set_error(TG_ERR_ARG, "tg_gradcheck: input %d is NULL", i));
        if (!is_float(inputs[i])) {
            c.x[i] = inputs[i]; /* labels, indices: passed through */
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "input %d", i);
        c.x[i] = tg_tensor_to_dtype(NULL, inputs[i], TG_F64);
        if (!c.x[i] || tg_requires_grad(c.x[i], name) != TG_OK)
            return finish(&c, tg_last_status());
    }

    int leaves = 0;
    for (int i = 0; i < nin; i++)
        leaves += tg_is_leaf(c.x[i]);
    if (!leaves)
        return finish(&c, tg_set_error(TG_ERR_ARG, "tg_gradcheck: no input is f32 or f64, so there "
                                       "is no gradient to check"));

    /* analytic: one backward of <v, f(x)> */
    tg_tensor *y = fn(c.tp, c.x, user);
    if (tg_tape_status(c.tp) != TG_OK || !y)
        return finish(&c, tg_set_error(tg_tape_status(c.tp) ? tg_tape_status(c.tp) : TG_ERR_ARG,
                                       "tg_gradcheck: the function failed: %s", tg_tape_error(c.tp)));
    if (!is_float(y))
        return finish(&c, tg_set_error(TG_ERR_DTYPE, "tg_gradcheck: the output is %s, not a float",
                                       tg_dtype_name(y->dtype)));
    tg_rng vr = tg_rng_split(&c.rng0, 0x67726164u /* "grad" */);
    c.v = tg_tensor_empty(NULL, TG_F64, y->ndim, y->shape);
    tg_tensor *vy = c.v ? tg_tensor_to_dtype(tg_tape_arena(c.tp), c.v, y->dtype) : NULL;
    if (!c.v || tg_tensor_uniform_(c.v, &vr, -1, 1) != TG_OK || !vy ||
        tg_tensor_copy_(vy, c.v) != TG_OK)
        return finish(&c, tg_last_status());
    if (tg_backward_from(c.tp, y, vy) != TG_OK)
        return finish(&c, tg_set_error(tg_tape_status(c.tp), "tg_gradcheck: backward failed: %s",
                                       tg_tape_error(c.tp)));
    char ops[160];
    op_names(c.tp, ops, sizeof ops);

    /* numeric, element by element, against the analytic gradients */
    double L0;
    if (!evaluate(&c, &L0))
        return finish(&c, tg_set_error(TG_ERR_STATE, "tg_gradcheck: evaluating the function failed: %s",
                                       tg_tape_error(c.tp)));
    double worst = -1;
    tg_rng pick = tg_rng_split(&c.rng0, 0x7069636bu /* "pick" */);
    for (int i = 0; i < nin; i++) {
        if (!tg_is_leaf(c.x[i]))
            continue;
        tg_tensor *xi = c.x[i], *gi = tg_grad(xi);
        double *xd = tg_tensor_data(xi);
        const double *gd = gi ? tg_tensor_data(gi) : NULL; /* NULL: no path, gradient 0 */
        int64_t n = tg_tensor_numel(xi), count = n < max_elements ? n : max_elements;
        for (int64_t k = 0; k < count; k++) {
            /* all elements, or a random sample (with repeats; cheap and unbiased) */
            int64_t j = count == n ? k : (int64_t)(tg_rng_uniform(&pick) * (double)n);
            double orig = xd[j], Lp, Lm;
            xd[j] = orig + eps;
            bool okp = evaluate(&c, &Lp);
            xd[j] = orig - eps;
            bool okm = evaluate(&c, &Lm);
            xd[j] = orig;
            if (!okp || !okm)
                return finish(&c, tg_set_error(TG_ERR_STATE, "tg_gradcheck: evaluating the function "
                                               "failed: %s", tg_tape_error(c.tp)));
            double numeric = (Lp - Lm) / (2 * eps), analytic = gd ? gd[j] : 0;
            double err = fabs(analytic - numeric), tol = atol + rtol * fabs(numeric);
            if (!(err <= tol)) {
                double right = (Lp - L0) / eps, left = (L0 - Lm) / eps;
                double side_tol = atol + rtol * fmax(fabs(right), fabs(left));
                bool kink = fabs(right - left) > 10 * side_tol &&
                            (fabs(analytic - right) <= side_tol || fabs(analytic - left) <= side_tol);
                if (kink) {
                    rep->kinks++;
                    continue;
                }
            }
            rep->checked++;
            double ratio = err / tol;
            if (ratio > worst || ratio != ratio) {
                worst = ratio != ratio ? INFINITY : ratio;
                rep->input = i;
                rep->index = j;
                rep->analytic = analytic;
                rep->numeric = numeric;
                rep->error = err;
            }
        }
    }
    rep->ok = worst <= 1;
    char where[160] = "";
    if (rep->input >= 0)
        index_str(where, sizeof where, c.x[rep->input], rep->index);
    if (rep->ok) {
        snprintf(rep->message, sizeof rep->message, "tg_gradcheck: ok, %lld elements agree "
                 "(%lld at kinks skipped; ops: %s)", (long long)rep->checked, (long long)rep->kinks, ops);
        return finish(&c, TG_OK);
    }
    snprintf(rep->message, sizeof rep->message, "tg_gradcheck: the gradient of input %d at %s "
             "disagrees: analytic %.9g, numeric %.9g (error %.3g > %.3g = atol + rtol*|numeric|); "
             "ops: %s", rep->input, where, rep->analytic, rep->numeric, rep->error,
             atol + rtol * fabs(rep->numeric), ops);
    tg_set_error(TG_ERR_CHECK, "%s", rep->message);
    return finish(&c, TG_ERR_CHECK);
}
