/* autograd/tape.c — the tape: records, leaves, scopes, sticky errors, and backward.
 *
 * A record is appended by tg_apply for every op, built-in or user-defined (one path).
 * The output tensor's `user` field points back at its record, and a leaf's at its
 * grad bookkeeping, so an op's input tells where its gradient must go. Records,
 * outputs and intermediate gradients all live in the tape's arena; the array of
 * record pointers lives on the heap and keeps its capacity across resets, so a
 * repeated step allocates nothing. Backward is one reverse loop over that array. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REC_MAGIC 0x52454344u  /* "RECD" */
#define LEAF_MAGIC 0x4c454146u /* "LEAF" */
#define MAX_SCOPE 1024
#define MAX_SCOPE_DEPTH 64

/* What `tensor->user` points at: a record's wrapper, or a leaf's bookkeeping. */
typedef struct rec {
    uint32_t magic;
    const tg_tape *tape;
    uint64_t *version; /* of in[0..nin-1] and out (at [nin]) when recorded */
    bool reached;      /* the running backward will reach it (check_unchanged) */
    tg_record pub;
} rec;

typedef struct leaf {
    uint32_t magic;
    tg_tensor *grad; /* heap, contiguous; NULL until a backward reaches the leaf */
    char name[128];
} leaf;

struct tg_tape {
    tg_arena *arena;
    tg_rng rng;
    bool grad_enabled, check_finite;
    bool fused, keep_grads, profile;
    bool have_sync;
    tg_stat_sync sync; /* tg_tape_set_stat_sync's copy, when have_sync */
    bool retain_graph; /* a second backward before reset is allowed */
    bool walked;       /* a backward has run since the last reset */
    uint64_t backward_mark; /* arena mark before the running op's backward; UINT64_MAX outside */
    const void **keep;      /* scratch for tg_arena_release_since (heap, grows) */
    int keep_cap;
    tg_status status;
    tg_error error; /* the sticky error, its fields as the failing call left them */
    char message[sizeof(tg_error) + 16]; /* composed from `error` once, when it sticks */
    rec **records;
    int nrec, cap;
    char scope[MAX_SCOPE];
    int scope_len[MAX_SCOPE_DEPTH], depth;
    const char *scope_copy; /* the scope string in the arena, for the records; NULL: stale */
    tg_tensor *placeholder; /* what calls return once the tape is in error */
    tg__grad_sink sink;     /* tg__tape_set_grad_sink's; NULL: gradients accumulate */
    void *sink_ctx;
};

/* ------------------------------------------------------------------ nodes */

static rec *rec_of(const tg_tape *tp, const tg_tensor *t)
{
    rec *R = t ? t->user : NULL;
    return R && R->magic == REC_MAGIC && R->tape == tp ? R : NULL;
}

static leaf *leaf_of(const tg_tensor *t)
{
    leaf *L = t ? t->user : NULL;
    return L && L->magic == LEAF_MAGIC ? L : NULL;
}

static bool needs_grad(const tg_tape *tp, const tg_tensor *t)
{
    rec *R = rec_of(tp, t);
    return R ? R->pub.requires_grad : leaf_of(t) != NULL;
}

/* ------------------------------------------------------------------ the tape */

tg_tape *tg_tape_new(uint64_t seed)
{
    tg_tape *tp = tg_mem_alloc(sizeof *tp, _Alignof(tg_tape));
    if (!tp)
        return NULL;
    memset(tp, 0, sizeof *tp);
    tp->arena = tg_arena_new(0);
    tp->placeholder = tg_tensor_zeros(NULL, TG_F32, 0, NULL);
    if (!tp->arena || !tp->placeholder) {
        tg_tape_free(tp);
        return NULL;
    }
    tp->rng = tg_rng_new(seed);
    tp->grad_enabled = true;
    tp->fused = true;
    tp->keep_grads = true;
    tp->backward_mark = UINT64_MAX;
    return tp;
}

void tg_tape_free(tg_tape *tp)
{
    if (!tp)
        return;
    tg_arena_free(tp->arena);
    tg_tensor_free(tp->placeholder);
    tg_mem_free(tp->records);
    tg_mem_free(tp->keep);
    tg_mem_free(tp);
}

void tg_tape_reset(tg_tape *tp)
{
    if (!tp)
        return;
    tg_arena_reset(tp->arena);
    tp->nrec = 0;
    tp->walked = false;
    if (tp->status != TG_OK) { /* 2 KB: not cleared on every step's reset */
        tp->error = (tg_error){.status = TG_OK};
        tp->message[0] = '\0';
    }
    tp->status = TG_OK;
    tp->depth = 0;
    tp->scope[0] = '\0';
    tp->scope_copy = NULL;
}

tg_arena *tg_tape_arena(tg_tape *tp) { return tp->arena; }
tg_rng *tg_tape_rng(tg_tape *tp) { return &tp->rng; }
bool tg_tape_grad_enabled(const tg_tape *tp) { return tp->grad_enabled; }
void tg_tape_set_check_finite(tg_tape *tp, bool on) { tp->check_finite = on; }
bool tg_tape_fused(const tg_tape *tp) { return tp && tp->fused; }
void tg_tape_set_profile(tg_tape *tp, bool on) { tp->profile = on; }
const tg_stat_sync *tg_tape_stat_sync(const tg_tape *tp) { return tp && tp->have_sync ? &tp->sync : NULL; }

void tg_tape_set_stat_sync(tg_tape *tp, const tg_stat_sync *sync)
{
    tp->have_sync = sync != NULL;
    if (sync)
        tp->sync = *sync;
}

bool tg_tape_set_fused(tg_tape *tp, bool fused)
{
    bool old = tp->fused;
    tp->fused = fused;
    return old;
}

bool tg_tape_set_retain_graph(tg_tape *tp, bool retain)
{
    bool old = tp->retain_graph;
    tp->retain_graph = retain;
    return old;
}

bool tg_tape_set_keep_grads(tg_tape *tp, bool keep)
{
    bool old = tp->keep_grads;
    tp->keep_grads = keep;
    return old;
}

static double now_s(void)
{
    struct timespec ts;
    timespec_get(&ts, TIME_UTC);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
tg_status tg_tape_status(const tg_tape *tp) { return tp ? tp->status : TG_ERR_ARG; }
const char *tg_tape_error(const tg_tape *tp) { return tp ? tp->message : "tape is NULL"; }

const tg_error *tg_tape_error_info(const tg_tape *tp)
{
    static const tg_error null_tape = {.status = TG_ERR_ARG, .function = "tg_tape_error_info",
                                       .detail = "the tape is NULL"};
    return tp ? &tp->error : &null_tape;
}

tg_tensor *tg_tape_placeholder(tg_tape *tp) { return tp ? tp->placeholder : NULL; }

bool tg_tape_set_grad_enabled(tg_tape *tp, bool enabled)
{
    bool old = tp->grad_enabled;
    tp->grad_enabled = enabled;
    return old;
}

/* Makes e (whose status, function and detail the caller filled in) the tape's sticky
 * error, unless it has one: the tape adds only what it knows, the scope. */
static tg_status stick(tg_tape *tp, const tg_error *e)
{
    if (tp->status != TG_OK)
        return tp->status; /* the first error is the one worth reading */
    tp->error = *e;
    snprintf(tp->error.scope, sizeof tp->error.scope, "%s", tp->scope);
    /* also the thread's last error, and TG_ABORT_ON_ERROR handling, in one place */
    tp->status = tp->error.status = tg_set_error_value(&tp->error);
    tg_error_str(&tp->error, tp->message, sizeof tp->message);
    return tp->status;
}

static tg_status vfail(tg_tape *tp, tg_status s, const char *function, const char *fmt, va_list ap)
{
    if (tp->status != TG_OK)
        return tp->status; /* before formatting: a failed tape's calls cost nothing */
    tg_error e = {.status = s};
    snprintf(e.function, sizeof e.function, "%s", function ? function : "");
    vsnprintf(e.detail, sizeof e.detail, fmt, ap);
    return stick(tp, &e);
}

tg_status tg_tape_fail(tg_tape *tp, tg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(tp, s, NULL, fmt, ap);
    va_end(ap);
    return tp->status;
}

tg_status tg_tape_fail_in(tg_tape *tp, tg_status s, const char *function, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(tp, s, function, fmt, ap);
    va_end(ap);
    return tp->status;
}

tg_tensor *tg_tape_fail_tensor(tg_tape *tp, tg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(tp, s, NULL, fmt, ap);
    va_end(ap);
    return tp->placeholder;
}

tg_tensor *tg_tape_fail_tensor_in(tg_tape *tp, tg_status s, const char *function, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfail(tp, s, function, fmt, ap);
    va_end(ap);
    return tp->placeholder;
}

/* ------------------------------------------------------------------ scopes */

void tg_scope_push(tg_tape *tp, const char *name)
{
    int len = tp->depth ? tp->scope_len[tp->depth - 1] : 0;
    if (tp->depth == MAX_SCOPE_DEPTH) {
        tg_tape_fail_in(tp, TG_ERR_ARG, "tg_scope_push", "scopes nest deeper than %d", MAX_SCOPE_DEPTH);
        return;
    }
    int n = snprintf(tp->scope + len, sizeof tp->scope - (size_t)len, "%s%s", len ? "/" : "", name);
    if (n < 0 || len + n >= MAX_SCOPE) {
        tp->scope[len] = '\0';
        tg_tape_fail_in(tp, TG_ERR_ARG, "tg_scope_push", "scope '%s/%s' is longer than %d bytes",
                     tp->scope, name, MAX_SCOPE - 1);
        return;
    }
    tp->scope_len[tp->depth++] = len + n;
    tp->scope_copy = NULL;
}

void tg_scope_pop(tg_tape *tp)
{
    if (tp->depth == 0)
        return;
    tp->depth--;
    tp->scope[tp->depth ? tp->scope_len[tp->depth - 1] : 0] = '\0';
    tp->scope_copy = NULL;
}

const char *tg_scope_current(const tg_tape *tp) { return tp->scope; }

static const char *scope_for_record(tg_tape *tp)
{
    if (!tp->scope_copy) {
        size_t n = strlen(tp->scope) + 1;
        char *c = tg_arena_alloc(tp->arena, n, 1);
        if (!c)
            return NULL;
        memcpy(c, tp->scope, n);
        tp->scope_copy = c;
    }
    return tp->scope_copy;
}

/* ------------------------------------------------------------------ recording */

static bool append(tg_tape *tp, rec *R)
{
    if (tp->nrec == tp->cap) {
        int cap = tp->cap ? 2 * tp->cap : 256;
        rec **grown = tg_mem_alloc((size_t)cap * sizeof *grown, _Alignof(rec *));
        if (!grown)
            return false;
        if (tp->nrec)
            memcpy(grown, tp->records, (size_t)tp->nrec * sizeof *grown);
        tg_mem_free(tp->records);
        tp->records = grown;
        tp->cap = cap;
    }
    tp->records[tp->nrec++] = R;
    return true;
}

/* The public function that records op: "tg_" and its name, as tg_op.name promises. */
static void op_function(const tg_op *op, char *buf, size_t size)
{
    snprintf(buf, size, "tg_%s", op->name);
}

/* An error of the tape's own about op, naming it: built only on failure, so that
 * tg_apply's ordinary path formats nothing. */
static void fail_op(tg_tape *tp, const tg_op *op, tg_status s, const char *fmt, ...)
{
    char fn[sizeof tp->error.function];
    op_function(op, fn, sizeof fn);
    va_list ap;
    va_start(ap, fmt);
    vfail(tp, s, fn, fmt, ap);
    va_end(ap);
}

/* The kernel under op's forward said what was wrong (tg_tensor_matmul: "[..] x [..]:
 * inner dimensions differ"); the user called tg_matmul: the error keeps the kernel's
 * status and detail and names the op. */
static void fail_from_kernel(tg_tape *tp, const tg_op *op)
{
    tg_error e = *tg_last_error_info();
    if (e.status == TG_OK) {
        e.status = TG_ERR_STATE;
        snprintf(e.detail, sizeof e.detail, "forward returned NULL without an error message");
    }
    op_function(op, e.function, sizeof e.function);
    stick(tp, &e);
}

tg_tensor *tg_apply(tg_tape *tp, const tg_op *op, int nin, tg_tensor *const *in,
                    const void *params, size_t params_size)
{
    if (!tp || !op) {
        tg_set_error_in(TG_ERR_ARG, "tg_apply", "%s is NULL", tp ? "the op" : "the tape");
        return NULL;
    }
    if (tp->status != TG_OK)
        return tp->placeholder;
    for (int i = 0; i < nin; i++)
        if (!in[i]) {
            fail_op(tp, op, TG_ERR_ARG, "input %d is NULL", i);
            return tp->placeholder;
        }

    tg_arena *ar = tp->arena;
    rec *R = tg_arena_alloc(ar, sizeof *R, _Alignof(rec));
    tg_tensor **ins = tg_arena_alloc(ar, (size_t)(nin ? nin : 1) * sizeof *ins, _Alignof(tg_tensor *));
    int *ids = tg_arena_alloc(ar, (size_t)(nin ? nin : 1) * sizeof *ids, _Alignof(int));
    uint64_t *version = tg_arena_alloc(ar, (size_t)(nin + 1) * sizeof *version, _Alignof(uint64_t));
    void *pcopy = params_size ? tg_arena_alloc(ar, params_size, 16) : NULL;
    const char *scope = scope_for_record(tp);
    if (!R || !ins || !ids || !version || (params_size && !pcopy) || !scope) {
        fail_from_kernel(tp, op); /* the arena's error, under the op's name */
        return tp->placeholder;
    }
    if (params_size)
        memcpy(pcopy, params, params_size);
    bool requires = false;
    for (int i = 0; i < nin; i++) {
        ins[i] = in[i];
        rec *src = rec_of(tp, in[i]);
        ids[i] = src ? src->pub.id : -1;
        if (src && tg_tensor_version(in[i]) != src->version[src->pub.nin]) {
            /* its values are no longer what src made: a gradient sent to src through
             * it would skip the write (an in-place op's input passed on, not its result) */
            fail_op(tp, op, TG_ERR_STATE, "input %d was written in place after record %d "
                    "(tg_%s%s%s) made it (version %llu then, %llu now), so its gradient "
                    "would skip that write; pass on the result of the in-place op (y = "
                    "tg_relu_(tp, x), then y, not x), or write a copy (tg_tensor_clone)",
                    i, src->pub.id, src->pub.op->name, *src->pub.scope ? ", in " : "",
                    src->pub.scope, (unsigned long long)src->version[src->pub.nin],
                    (unsigned long long)tg_tensor_version(in[i]));
            return tp->placeholder;
        }
        requires = requires || needs_grad(tp, in[i]);
    }
    *R = (rec){.magic = REC_MAGIC, .tape = tp, .version = version};
    R->pub = (tg_record){.id = tp->nrec, .op = op, .scope = scope, .nin = nin, .in = ins,
                         .in_record = ids, .requires_grad = requires && tp->grad_enabled,
                         .params = pcopy};

    tg_clear_error();
    double t0 = tp->profile ? now_s() : 0;
    tg_tensor *out = op->forward(tp, &R->pub);
    if (tp->profile)
        R->pub.forward_s = now_s() - t0;
    if (!out) {
        fail_from_kernel(tp, op);
        return tp->placeholder;
    }
    bool passed = false; /* an input handed back as it is (a heap leaf, say) */
    for (int i = 0; i < nin; i++)
        passed = passed || out == in[i];
    if (out->arena != ar && !passed) {
        fail_op(tp, op, TG_ERR_STATE, "forward returned a tensor that is not from "
                "tg_tape_arena(tp) (the tape frees its outputs at reset)");
        return tp->placeholder;
    }
    if (out->user || passed) {
        /* an input, or another record's output, passed through: give the result its
         * own header so that it can point at this record */
        out = tg_tensor_view(ar, out, out->ndim, out->shape);
        if (!out) {
            fail_from_kernel(tp, op);
            return tp->placeholder;
        }
    }
    R->pub.out = out;
    if (!tp->grad_enabled)
        return out; /* evaluation: nothing recorded, the output is a constant */
    if (!append(tp, R)) {
        fail_op(tp, op, TG_ERR_NOMEM, "out of memory growing the tape");
        return tp->placeholder;
    }
    for (int i = 0; i < nin; i++) /* after the forward: its own writes (a fresh output) count */
        version[i] = tg_tensor_version(in[i]);
    version[nin] = tg_tensor_version(out);
    out->user = R;
    return out;
}

/* ------------------------------------------------------------------ leaves */

static void leaf_free(tg_tensor *t)
{
    leaf *L = leaf_of(t);
    if (L) {
        tg_tensor_free(L->grad);
        tg_mem_free(L);
    }
    t->user = NULL;
    t->user_free = NULL;
}

tg_status tg_requires_grad(tg_tensor *t, const char *name)
{
    if (!t)
        return tg_set_error_in(TG_ERR_ARG, "tg_requires_grad", "the tensor is NULL");
    if (t->arena)
        return tg_set_error_in(TG_ERR_ARG, "tg_requires_grad", "'%s' lives in an arena; a parameter "
                            "must be a heap tensor (made with a NULL arena)", name ? name : "");
    if (t->dtype != TG_F32 && t->dtype != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, "tg_requires_grad", "'%s' is %s; gradients need f32 or f64",
                            name ? name : "", tg_dtype_name(t->dtype));
    leaf *L = leaf_of(t);
    if (!L) {
        if (t->user)
            return tg_set_error_in(TG_ERR_ARG, "tg_requires_grad", "'%s' is already in use by a layer "
                                "above the tensor (its user field is set)", name ? name : "");
        L = tg_mem_alloc(sizeof *L, _Alignof(leaf));
        if (!L)
            return TG_ERR_NOMEM;
        *L = (leaf){.magic = LEAF_MAGIC};
        t->user = L;
        t->user_free = leaf_free;
    }
    snprintf(L->name, sizeof L->name, "%s", name ? name : "");
    return TG_OK;
}

bool tg_is_leaf(const tg_tensor *t) { return leaf_of(t) != NULL; }

const char *tg_leaf_name(const tg_tensor *t)
{
    leaf *L = leaf_of(t);
    return L ? L->name : NULL;
}

tg_tensor *tg_grad(const tg_tensor *t)
{
    leaf *L = leaf_of(t);
    return L ? L->grad : NULL;
}

void tg_zero_grad(tg_tensor *t)
{
    leaf *L = leaf_of(t);
    if (L && L->grad)
        tg_tensor_fill_(L->grad, 0);
}

/* ------------------------------------------------------------------ backward */

bool tg_needs_grad(const tg_tape *tp, const tg_record *r, int i)
{
    return i >= 0 && i < r->nin && r->requires_grad && needs_grad(tp, r->in[i]);
}

static int64_t count_nonfinite(const tg_tensor *g)
{
    tg_grad_stats s = tg_tensor_stats(g);
    return s.nonfinite;
}

/* Whether the running backward made g afresh for this gradient alone, so that the
 * record can take it as its gradient instead of a copy: a contiguous tensor that owns
 * a large block taken during this backward, not on the tape, and not already another
 * input's gradient (a backward may pass one tensor to two inputs). */
static bool can_adopt(const tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    if (g->arena != tp->arena || g->user || g->offset != 0 || !tg_tensor_is_contiguous(g) ||
        !tg_arena_taken_since(tp->arena, tp->backward_mark, g->storage))
        return false;
    for (int j = 0; j < r->nin; j++) {
        rec *S = rec_of(tp, r->in[j]);
        if (S && S->pub.grad && S->pub.grad->storage == g->storage)
            return false;
    }
    return true;
}

/* Adds g into *slot: the first time, g itself when it can be adopted, else a
 * contiguous copy. */
static tg_status add_into(tg_arena *ar, tg_tensor **slot, const tg_tensor *g, bool adopt)
{
    if (*slot)
        return tg_tensor_axpy_(*slot, 1.0, g);
    *slot = adopt ? (tg_tensor *)g : tg_tensor_clone(ar, g);
    return *slot ? TG_OK : tg_last_status();
}

tg_status tg_accumulate_grad(tg_tape *tp, const tg_record *r, int i, const tg_tensor *g)
{
    if (tp->status != TG_OK)
        return tp->status;
    if (i < 0 || i >= r->nin)
        return tg_tape_fail(tp, TG_ERR_ARG, "tg_%s backward: input %d does not exist (the op has %d)",
                            r->op->name, i, r->nin);
    const tg_tensor *x = r->in[i];
    if (!g)
        return tg_tape_fail(tp, TG_ERR_ARG, "tg_%s backward: the gradient for input %d is NULL (%s)",
                            r->op->name, i, tg_last_error());
    if (!tg_tensor_same_shape(g, x) || g->dtype != x->dtype) {
        char gs[160], xs[160];
        return tg_tape_fail(tp, TG_ERR_SHAPE, "tg_%s backward: the gradient for input %d is %s %s, "
                            "but the input is %s %s", r->op->name, i, tg_dtype_name(g->dtype),
                            tg_shape_str(gs, sizeof gs, g->ndim, g->shape), tg_dtype_name(x->dtype),
                            tg_shape_str(xs, sizeof xs, x->ndim, x->shape));
    }
    if (tp->sink) /* a replay (tg_tape_write_html): the share is shown, not added */
        return tp->sink(tp->sink_ctx, r, i, g);
    if (tp->check_finite) {
        int64_t bad = count_nonfinite(g);
        if (bad)
            return tg_tape_fail_in(tp, TG_ERR_STATE, "tg_backward", "the gradient that record %d (%s%s%s) "
                                "passes to its input %d has %lld NaN/Inf values", r->id, r->op->name,
                                *r->scope ? " in " : "", r->scope, i, (long long)bad);
    }
    rec *R = rec_of(tp, x);
    leaf *L = leaf_of(x);
    tg_status st = TG_OK;
    if (R && R->pub.requires_grad)
        st = add_into(tp->arena, &R->pub.grad, g, !R->pub.grad && can_adopt(tp, r, g));
    else if (L)
        st = add_into(NULL, &L->grad, g, false);
    if (st != TG_OK)
        return tg_tape_fail(tp, st, "tg_%s backward: %s", r->op->name, tg_last_error());
    return TG_OK;
}

void tg__tape_set_grad_sink(tg_tape *tp, tg__grad_sink sink, void *ctx)
{
    tp->sink = sink;
    tp->sink_ctx = ctx;
}

/* After r's backward: every large block it took is scratch except its inputs'
 * gradients; and r's own gradient is spent unless the tape keeps gradients. */
static tg_status release_scratch(tg_tape *tp, tg_record *r)
{
    if (r->nin > tp->keep_cap) {
        int cap = r->nin > 16 ? r->nin : 16;
        const void **grown = tg_mem_alloc((size_t)cap * sizeof *grown, _Alignof(const void *));
        if (!grown)
            return tg_last_status();
        tg_mem_free(tp->keep);
        tp->keep = grown;
        tp->keep_cap = cap;
    }
    int n = 0;
    for (int i = 0; i < r->nin; i++) {
        rec *S = rec_of(tp, r->in[i]);
        if (S && S->pub.grad)
            tp->keep[n++] = S->pub.grad->storage;
    }
    tg_arena_release_since(tp->arena, tp->backward_mark, tp->keep, n);
    if (!tp->keep_grads) {
        tg_arena_release_tensor(tp->arena, r->grad);
        r->grad = NULL;
    }
    return TG_OK;
}

/* Before a backward from record `from` runs: every record it will reach (a reverse
 * walk over the inputs that need a gradient, which is the order backward runs in) must
 * find what its backward reads at the version it was recorded with. A mismatch is the
 * sticky error, before any gradient is touched. */
static tg_status check_unchanged(tg_tape *tp, rec *from)
{
    for (int id = 0; id < from->pub.id; id++)
        tp->records[id]->reached = false;
    from->reached = true;
    for (int id = from->pub.id; id >= 0; id--) {
        rec *R = tp->records[id];
        const tg_record *r = &R->pub;
        if (!R->reached || !r->requires_grad || !r->op->backward)
            continue;
        for (int i = 0; i <= r->nin; i++) {
            const tg_tensor *t = i < r->nin ? r->in[i] : r->out;
            uint64_t then = R->version[i], now = tg_tensor_version(t);
            if (now == then || !tg__op_reads(r->op, i, r->nin))
                continue;
            char what[160];
            if (i == r->nin)
                snprintf(what, sizeof what, "its output");
            else if (tg_is_leaf(t))
                snprintf(what, sizeof what, "input %d ('%s')", i, tg_leaf_name(t));
            else
                snprintf(what, sizeof what, "input %d", i);
            return tg_tape_fail_in(tp, TG_ERR_STATE, "tg_backward", "tg_%s (record %d%s%s) needs %s as "
                                "it was when recorded, but it was written in place since (version "
                                "%llu then, %llu now); write it after tg_backward, or write a copy "
                                "(tg_tensor_clone)", r->op->name, r->id, *r->scope ? ", in " : "",
                                r->scope, what, (unsigned long long)then, (unsigned long long)now);
        }
        for (int i = 0; i < r->nin; i++)
            if (r->in_record[i] >= 0 && needs_grad(tp, r->in[i]))
                tp->records[r->in_record[i]]->reached = true;
    }
    return TG_OK;
}

tg_status tg_backward_from(tg_tape *tp, tg_tensor *out, const tg_tensor *gout)
{
    if (!tp)
        return tg_set_error_in(TG_ERR_ARG, "tg_backward", "the tape is NULL");
    if (tp->status != TG_OK)
        return tp->status; /* refuses: the sticky error says why */
    rec *R = rec_of(tp, out);
    if (!R) {
        const rec *other = out ? out->user : NULL;
        const char *why = "was not recorded (made with gradients disabled, or by a tg_tensor_ function)";
        if (!out)
            why = "is NULL";
        else if (leaf_of(out))
            why = "is a leaf (a parameter), not an op's output";
        else if (other && other->magic == REC_MAGIC)
            why = "was recorded on another tape";
        return tg_tape_fail_in(tp, TG_ERR_ARG, "tg_backward", "the output %s; a backward starts from an "
                            "op's output on this tape", why);
    }
    if (!R->pub.requires_grad)
        return tg_tape_fail_in(tp, TG_ERR_ARG, "tg_backward", "nothing that '%s' (record %d) depends on "
                            "requires a gradient", R->pub.op->name, R->pub.id);
    if (!gout || !tg_tensor_same_shape(gout, out) || gout->dtype != out->dtype) {
        char a[160], b[160];
        return tg_tape_fail_in(tp, TG_ERR_SHAPE, "tg_backward", "the output gradient is %s, the output %s %s",
                            gout ? tg_shape_str(a, sizeof a, gout->ndim, gout->shape) : "NULL",
                            tg_dtype_name(out->dtype), tg_shape_str(b, sizeof b, out->ndim, out->shape));
    }
    if (tp->walked && !tp->retain_graph)
        return tg_tape_fail_in(tp, TG_ERR_STATE, "tg_backward", "this tape was walked back already, and a "
                            "second backward would add to the leaves' gradients again; call tg_tape_reset "
                            "before the next forward, or tg_tape_set_retain_graph(tp, true) to walk it "
                            "again on purpose");
    if (check_unchanged(tp, R) != TG_OK)
        return tp->status;
    tp->walked = true;
    /* a second backward (retain_graph) starts the intermediate gradients afresh */
    for (int id = 0; id < tp->nrec; id++)
        tp->records[id]->pub.grad = NULL;
    R->pub.grad = tg_tensor_clone(tp->arena, gout);
    if (!R->pub.grad)
        return tg_tape_fail_in(tp, tg_last_status(), "tg_backward", "%s", tg_last_error_info()->detail);
    for (int id = R->pub.id; id >= 0; id--) {
        tg_record *r = &tp->records[id]->pub;
        if (!r->grad || !r->requires_grad || !r->op->backward)
            continue;
        tg_clear_error();
        tp->backward_mark = tg_arena_mark(tp->arena);
        double t0 = tp->profile ? now_s() : 0;
        tg_status st = r->op->backward(tp, r, r->grad);
        if (tp->profile)
            r->backward_s = now_s() - t0;
        if (st == TG_OK && tp->status == TG_OK)
            st = release_scratch(tp, r);
        tp->backward_mark = UINT64_MAX;
        if (st != TG_OK || tp->status != TG_OK) {
            if (tp->status == TG_OK) /* the op failed without telling the tape */
                tg_tape_fail(tp, st, "tg_%s backward: %s", r->op->name,
                             *tg_last_error() ? tg_last_error() : "failed");
            return tp->status;
        }
    }
    return TG_OK;
}

tg_status tg_backward(tg_tape *tp, tg_tensor *loss)
{
    if (!tp)
        return tg_set_error_in(TG_ERR_ARG, "tg_backward", "the tape is NULL");
    if (tp->status != TG_OK)
        return tp->status;
    if (!loss || tg_tensor_numel(loss) != 1) {
        char s[160];
        return tg_tape_fail_in(tp, TG_ERR_SHAPE, "tg_backward", "the loss must have one element, not shape %s "
                            "(use tg_backward_from with an output gradient)",
                            loss ? tg_shape_str(s, sizeof s, loss->ndim, loss->shape) : "NULL");
    }
    tg_tensor *one = tg_tensor_full(tp->arena, loss->dtype, loss->ndim, loss->shape, 1.0);
    if (!one)
        return tg_tape_fail_in(tp, tg_last_status(), "tg_backward", "%s", tg_last_error_info()->detail);
    return tg_backward_from(tp, loss, one);
}

/* ------------------------------------------------------------------ inspection */

int tg_tape_size(const tg_tape *tp) { return tp->nrec; }

const tg_record *tg_tape_record(const tg_tape *tp, int id)
{
    return id >= 0 && id < tp->nrec ? &tp->records[id]->pub : NULL;
}

const tg_record *tg_tape_record_of(const tg_tape *tp, const tg_tensor *t)
{
    rec *R = rec_of(tp, t);
    return R ? &R->pub : NULL;
}
