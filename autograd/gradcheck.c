/* autograd/gradcheck.c — gradients against central differences in float64.
 *
 * By default the function's output is projected on a fixed random direction v,
 * L(x) = <v, f(x)>, so one backward (seeded with v) gives the analytic dL/dx for every
 * input element, and two evaluations of L per element give the numeric one. That checks
 * v^T J rather than all of J, as torch.autograd's fast mode does; a wrong backward
 * shows up for any v but a measure-zero set. With full_jacobian, every output element
 * is a row of its own: one backward per output element (seeded with e_k) and the same
 * two evaluations per input element give all of J.
 *
 * Layout. Each float input is copied to f64 with its layout: its whole storage is
 * converted and the leaf is a view of that copy with the input's shape, strides and
 * offset, so an op meets the transposed, sliced or broadcast (stride 0) input it was
 * handed, as PyTorch's gradcheck does. What is perturbed is a storage element; where
 * several positions share one (a broadcast axis), the function's derivative with
 * respect to it is the sum of their gradients, and that sum is what is compared.
 *
 * Kinks (ReLU at 0, max at a tie) make the central difference the mean of the two
 * one-sided slopes, which a backward need not return: any value between them is a
 * valid gradient there (relu's 0 at 0, max's share of a tie). An element that fails the
 * central test but whose one-sided slopes disagree with each other, with the analytic
 * value between them, is counted as a kink and skipped, not reported as wrong. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* Which storage elements of one f64 leaf the check perturbs: the distinct ones its
 * view reaches, numbered in the order of the first (row-major) position reaching each. */
typedef struct layout {
    int64_t npos;
    int64_t *pos;    /* [npos] offset in the storage */
    int64_t *first;  /* [npos] the first flat row-major index that reaches it */
    int64_t *shared; /* [npos] how many indices reach it (> 1: a broadcast view) */
    int64_t *slot;   /* [numel] each index's number in pos */
    double *grad;    /* [rows * npos] the analytic derivatives, summed over sharing indices */
} layout;

typedef struct checker {
    tg_gradcheck_fn fn;
    void *user;
    int nin;
    bool full;       /* every output element a row (full_jacobian) */
    int64_t rows;    /* 1, or the output's elements */
    int ydim;        /* the output's shape, for reports */
    int64_t yshape[TG_MAX_DIMS];
    tg_tensor **x;   /* the f64 leaves (float inputs) or the inputs as given */
    layout *lay;     /* [nin], for the leaves */
    tg_tensor *v;    /* the projection, heap, shaped as the output */
    tg_tape *tp;
    tg_rng rng0;     /* the tape's generator at the start of every evaluation */
    tg_gradcheck_report *rep;
} checker;

static bool is_float(const tg_tensor *t) { return t->dtype == TG_F32 || t->dtype == TG_F64; }

/* f(x) on a fresh tape, with the same dropout masks every time. Gradients stay enabled
 * (ops that act differently in evaluation mode, as dropout does, must compute the
 * function whose gradient is taken). NULL when the function fails. */
static tg_tensor *run_fn(checker *c)
{
    tg_tape_reset(c->tp);
    *tg_tape_rng(c->tp) = c->rng0;
    tg_tensor *y = c->fn(c->tp, c->x, c->user);
    return tg_tape_status(c->tp) == TG_OK && y ? y : NULL;
}

/* The rows of L(x) into out: <v, f(x)>, or every element of f(x) (full Jacobian). */
static bool evaluate(checker *c, double *out)
{
    tg_tensor *y = run_fn(c);
    if (!y)
        return false;
    tg_arena *ar = tg_tape_arena(c->tp);
    tg_tensor *y64 = tg_tensor_to_dtype(ar, y, TG_F64); /* contiguous */
    if (!y64)
        return false;
    if (c->full) {
        if (tg_tensor_numel(y64) != c->rows) {
            tg_set_error(TG_ERR_SHAPE, "the output's size changed between evaluations");
            return false;
        }
        if (c->rows)
            memcpy(out, tg_tensor_data(y64), (size_t)c->rows * sizeof *out);
        return true;
    }
    tg_tensor *p = tg_tensor_sum(ar, tg_tensor_mul(ar, y64, c->v), 0, NULL, false);
    if (!p)
        return false;
    *out = tg_tensor_item(p);
    return true;
}

/* "[1,2]" for flat row-major index j of a shape */
static void index_str(char *buf, size_t size, int ndim, const int64_t *shape, int64_t j)
{
    int64_t idx[TG_MAX_DIMS];
    for (int d = ndim - 1; d >= 0; d--) {
        idx[d] = shape[d] ? j % shape[d] : 0;
        j = shape[d] ? j / shape[d] : 0;
    }
    tg_shape_str(buf, size, ndim, idx);
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

/* ------------------------------------------------------------------ the inputs */

/* An f64 leaf with t's layout: t's whole storage converted, viewed with t's shape,
 * strides and offset. */
static tg_tensor *f64_with_layout(const tg_tensor *t)
{
    int64_t n = (int64_t)(tg_storage_nbytes(t->storage) / tg_dtype_size(t->dtype));
    tg_tensor *all = tg_tensor_as_strided(NULL, t, 1, &n, (const int64_t[]){1}, 0);
    tg_tensor *copy = tg_tensor_to_dtype(NULL, all, TG_F64);
    tg_tensor *x = tg_tensor_as_strided(NULL, copy, t->ndim, t->shape, t->strides, t->offset);
    tg_tensor_free(all);
    tg_tensor_free(copy); /* x holds the storage */
    return x;
}

static void layout_free(layout *L)
{
    tg_mem_free(L->pos);
    tg_mem_free(L->first);
    tg_mem_free(L->shared);
    tg_mem_free(L->slot);
    tg_mem_free(L->grad);
}

static void *zeroed(int64_t n, size_t size)
{
    void *p = tg_mem_alloc((size_t)(n > 0 ? n : 1) * size, 16);
    if (p)
        memset(p, 0, (size_t)(n > 0 ? n : 1) * size);
    return p;
}

/* Numbers the storage elements x reaches (see layout). */
static tg_status layout_init(layout *L, const tg_tensor *x)
{
    int64_t numel = tg_tensor_numel(x), nstore = (int64_t)(tg_storage_nbytes(x->storage) / sizeof(double));
    int64_t *slot_of = tg_mem_alloc((size_t)(nstore > 0 ? nstore : 1) * sizeof *slot_of, 16);
    L->pos = zeroed(numel, sizeof *L->pos);
    L->first = zeroed(numel, sizeof *L->first);
    L->shared = zeroed(numel, sizeof *L->shared);
    L->slot = zeroed(numel, sizeof *L->slot);
    if (!slot_of || !L->pos || !L->first || !L->shared || !L->slot) {
        tg_mem_free(slot_of);
        return TG_ERR_NOMEM;
    }
    for (int64_t s = 0; s < nstore; s++)
        slot_of[s] = -1;
    int64_t idx[TG_MAX_DIMS] = {0};
    for (int64_t j = 0; j < numel; j++) {
        int64_t off = x->offset;
        for (int d = 0; d < x->ndim; d++)
            off += idx[d] * x->strides[d];
        if (slot_of[off] < 0) {
            slot_of[off] = L->npos;
            L->pos[L->npos] = off;
            L->first[L->npos++] = j;
        }
        L->slot[j] = slot_of[off];
        L->shared[slot_of[off]]++;
        for (int d = x->ndim - 1; d >= 0; d--) { /* the next row-major index */
            if (++idx[d] < x->shape[d])
                break;
            idx[d] = 0;
        }
    }
    tg_mem_free(slot_of);
    return TG_OK;
}

/* ------------------------------------------------------------------ analytic */

/* Row r of every leaf's analytic derivatives: one backward of f seeded with `seed`,
 * each leaf's gradient summed into its storage elements. */
static tg_status analytic_row(checker *c, tg_tensor *y, const tg_tensor *seed, int64_t r)
{
    for (int i = 0; i < c->nin; i++)
        tg_zero_grad(c->x[i]);
    if (tg_backward_from(c->tp, y, seed) != TG_OK)
        return tg_set_error_in(tg_tape_status(c->tp), "tg_gradcheck", "backward failed: %s",
                            tg_tape_error(c->tp));
    for (int i = 0; i < c->nin; i++) {
        const tg_tensor *g = tg_grad(c->x[i]);
        if (!tg_is_leaf(c->x[i]) || !g)
            continue; /* no path: the gradient is 0 */
        const double *gd = tg_tensor_data(g); /* contiguous, f64 */
        layout *L = &c->lay[i];
        for (int64_t j = 0; j < tg_tensor_numel(g); j++)
            L->grad[r * L->npos + L->slot[j]] += gd[j];
    }
    return TG_OK;
}

/* All rows: the projection's one backward, or one per output element. y is the first
 * run's output, on c->tp. */
static tg_status analytic(checker *c, tg_tensor *y)
{
    for (int i = 0; i < c->nin; i++) {
        if (!tg_is_leaf(c->x[i]))
            continue;
        c->lay[i].grad = zeroed(c->rows * c->lay[i].npos, sizeof(double));
        if (!c->lay[i].grad)
            return TG_ERR_NOMEM;
    }
    if (!c->full) {
        tg_tensor *vy = tg_tensor_to_dtype(tg_tape_arena(c->tp), c->v, y->dtype);
        return vy ? analytic_row(c, y, vy, 0) : tg_last_status();
    }
    for (int64_t r = 0; r < c->rows; r++) {
        if (!(y = run_fn(c)))
            return tg_set_error_in(TG_ERR_STATE, "tg_gradcheck", "the function failed: %s", tg_tape_error(c->tp));
        tg_tensor *e = tg_tensor_zeros(tg_tape_arena(c->tp), y->dtype, y->ndim, y->shape);
        tg_tensor *flat = e ? tg_tensor_reshape(tg_tape_arena(c->tp), e, 1, &c->rows) : NULL;
        if (!flat || tg_tensor_set(flat, &r, 1.0) != TG_OK)
            return tg_last_status();
        tg_status st = analytic_row(c, y, e, r);
        if (st != TG_OK)
            return st;
    }
    return TG_OK;
}

/* ------------------------------------------------------------------ the check */

/* Frees what the check made; a failure that happened before any comparison leaves
 * its message in the report too, so the report alone always says what went wrong. */
static tg_status finish(checker *c, tg_status st)
{
    if (st != TG_OK && !c->rep->message[0])
        snprintf(c->rep->message, sizeof c->rep->message, "%s", tg_last_error());
    for (int i = 0; c->x && i < c->nin; i++)
        if (c->x[i] && tg_is_leaf(c->x[i]))
            tg_tensor_free(c->x[i]);
    for (int i = 0; c->lay && i < c->nin; i++)
        layout_free(&c->lay[i]);
    tg_mem_free(c->lay);
    tg_mem_free(c->x);
    tg_tensor_free(c->v);
    tg_tape_free(c->tp);
    return st;
}

/* Compares row r of storage element k of input i; keeps the worst in the report. */
typedef struct tolerances {
    double eps, atol, rtol;
} tolerances;

static void compare(checker *c, const tolerances *t, int i, int64_t k, int64_t r, double L0, double Lp,
                    double Lm, double *worst)
{
    tg_gradcheck_report *rep = c->rep;
    const layout *L = &c->lay[i];
    double numeric = (Lp - Lm) / (2 * t->eps), analytic = L->grad[r * L->npos + k];
    double err = fabs(analytic - numeric), tol = t->atol + t->rtol * fabs(numeric);
    if (!(err <= tol)) {
        double right = (Lp - L0) / t->eps, left = (L0 - Lm) / t->eps;
        double side_tol = t->atol + t->rtol * fmax(fabs(right), fabs(left));
        bool kink = fabs(right - left) > 10 * side_tol &&
                    analytic >= fmin(left, right) - side_tol && analytic <= fmax(left, right) + side_tol;
        if (kink) {
            rep->kinks++;
            return;
        }
    }
    rep->checked++;
    double ratio = err / tol;
    if (ratio > *worst || ratio != ratio) {
        *worst = ratio != ratio ? INFINITY : ratio;
        rep->input = i;
        rep->index = L->first[k];
        rep->output_index = c->full ? r : -1;
        rep->analytic = analytic;
        rep->numeric = numeric;
        rep->error = err;
    }
}

tg_status tg_gradcheck(tg_gradcheck_fn fn, void *user, int nin, tg_tensor *const *inputs,
                       const tg_gradcheck_options *opts, tg_gradcheck_report *report)
{
    tg_gradcheck_options o = opts ? *opts : (tg_gradcheck_options){0};
    tolerances tol = {o.eps > 0 ? o.eps : 1e-6, o.atol > 0 ? o.atol : 1e-5, o.rtol > 0 ? o.rtol : 1e-3};
    int64_t max_elements = o.max_elements > 0 ? o.max_elements : 4096;
    tg_gradcheck_report rep_local, *rep = report ? report : &rep_local;
    memset(rep, 0, sizeof *rep);
    rep->input = -1;
    rep->index = rep->output_index = -1;
    checker c = {.fn = fn, .user = user, .nin = nin, .full = o.full_jacobian, .rep = rep};
    if (!fn || nin < 1 || !inputs)
        return finish(&c, tg_set_error_in(TG_ERR_ARG, "tg_gradcheck", "needs a function and at least one input"));

    c.x = zeroed(nin, sizeof *c.x);
    c.lay = zeroed(nin, sizeof *c.lay);
    c.tp = tg_tape_new(o.seed);
    if (!c.x || !c.lay || !c.tp)
        return finish(&c, TG_ERR_NOMEM);
    c.rng0 = *tg_tape_rng(c.tp);
    int leaves = 0;
    for (int i = 0; i < nin; i++) {
        if (!inputs[i])
            return finish(&c, tg_set_error_in(TG_ERR_ARG, "tg_gradcheck", "input %d is NULL", i));
        if (!is_float(inputs[i])) {
            c.x[i] = inputs[i]; /* labels, indices: passed through */
            continue;
        }
        char name[32];
        snprintf(name, sizeof name, "input %d", i);
        c.x[i] = f64_with_layout(inputs[i]);
        if (!c.x[i] || tg_requires_grad(c.x[i], name) != TG_OK || layout_init(&c.lay[i], c.x[i]) != TG_OK)
            return finish(&c, tg_last_status() ? tg_last_status() : TG_ERR_NOMEM);
        leaves++;
    }
    if (!leaves)
        return finish(&c, tg_set_error_in(TG_ERR_ARG, "tg_gradcheck", "no input is f32 or f64, so there "
                                       "is no gradient to check"));

    /* analytic: the first run fixes the output's shape */
    tg_tensor *y = run_fn(&c);
    if (!y)
        return finish(&c, tg_set_error_in(tg_tape_status(c.tp) ? tg_tape_status(c.tp) : TG_ERR_ARG,
                                       "tg_gradcheck", "the function failed: %s", tg_tape_error(c.tp)));
    if (!is_float(y))
        return finish(&c, tg_set_error_in(TG_ERR_DTYPE, "tg_gradcheck", "the output is %s, not a float",
                                       tg_dtype_name(y->dtype)));
    c.ydim = y->ndim;
    memcpy(c.yshape, y->shape, sizeof c.yshape);
    c.rows = c.full ? tg_tensor_numel(y) : 1;
    tg_rng vr = tg_rng_split(&c.rng0, 0x67726164u /* "grad" */);
    c.v = tg_tensor_empty(NULL, TG_F64, y->ndim, y->shape);
    if (!c.v || tg_tensor_uniform_(c.v, &vr, -1, 1) != TG_OK)
        return finish(&c, tg_last_status());
    tg_status st = analytic(&c, y);
    if (st != TG_OK)
        return finish(&c, st);
    char ops[160];
    op_names(c.tp, ops, sizeof ops);

    /* numeric, storage element by element, against the analytic derivatives */
    double *L = zeroed(3 * c.rows, sizeof *L), *L0 = L, *Lp = L + c.rows, *Lm = L + 2 * c.rows;
    if (!L)
        return finish(&c, TG_ERR_NOMEM);
    if (!evaluate(&c, L0)) {
        tg_mem_free(L);
        return finish(&c, tg_set_error_in(TG_ERR_STATE, "tg_gradcheck", "evaluating the function failed: %s",
                                       *tg_tape_error(c.tp) ? tg_tape_error(c.tp) : tg_last_error()));
    }
    double worst = -1;
    tg_rng pick = tg_rng_split(&c.rng0, 0x7069636bu /* "pick" */);
    for (int i = 0; i < nin; i++) {
        if (!tg_is_leaf(c.x[i]))
            continue;
        const layout *lay = &c.lay[i];
        double *xd = (double *)tg_tensor_data(c.x[i]) - c.x[i]->offset; /* the storage */
        int64_t n = lay->npos, count = n < max_elements ? n : max_elements;
        for (int64_t s = 0; s < count; s++) {
            /* all elements, or a random sample (with repeats; cheap and unbiased) */
            int64_t k = count == n ? s : (int64_t)(tg_rng_uniform(&pick) * (double)n);
            double *e = xd + lay->pos[k], orig = *e;
            *e = orig + tol.eps;
            bool ok = evaluate(&c, Lp);
            *e = orig - tol.eps;
            ok = ok && evaluate(&c, Lm);
            *e = orig;
            if (!ok) {
                tg_mem_free(L);
                return finish(&c, tg_set_error_in(TG_ERR_STATE, "tg_gradcheck", "evaluating the function "
                                               "failed: %s", *tg_tape_error(c.tp) ? tg_tape_error(c.tp)
                                                                                  : tg_last_error()));
            }
            for (int64_t r = 0; r < c.rows; r++)
                compare(&c, &tol, i, k, r, L0[r], Lp[r], Lm[r], &worst);
        }
    }
    tg_mem_free(L);

    rep->ok = worst <= 1;
    if (rep->ok) {
        snprintf(rep->message, sizeof rep->message, "tg_gradcheck: ok, %lld %s agree "
                 "(%lld at kinks skipped; ops: %s)", (long long)rep->checked,
                 c.full ? "Jacobian entries" : "elements", (long long)rep->kinks, ops);
        return finish(&c, TG_OK);
    }
    const tg_tensor *xi = c.x[rep->input];
    char where[160], out[200] = "", shared[120] = "";
    index_str(where, sizeof where, xi->ndim, xi->shape, rep->index);
    if (c.full) {
        char oi[160];
        index_str(oi, sizeof oi, c.ydim, c.yshape, rep->output_index);
        snprintf(out, sizeof out, " (output element %s)", oi);
    }
    int64_t nshared = c.lay[rep->input].shared[c.lay[rep->input].slot[rep->index]];
    if (nshared > 1)
        snprintf(shared, sizeof shared, " (an element %lld positions share, their gradients summed)",
                 (long long)nshared);
    snprintf(rep->message, sizeof rep->message, "tg_gradcheck: the gradient of input %d at %s%s%s "
             "disagrees: analytic %.9g, numeric %.9g (error %.3g > %.3g = atol + rtol*|numeric|); "
             "ops: %s", rep->input, where, shared, out, rep->analytic, rep->numeric, rep->error,
             tol.atol + tol.rtol * fabs(rep->numeric), ops);
    tg_set_error(TG_ERR_CHECK, "%s", rep->message);
    return finish(&c, TG_ERR_CHECK);
}
