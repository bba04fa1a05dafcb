/* tensor/reduce.c — reductions over axes: sum, mean, max, min, var, logsumexp, argmax,
 * and sum_to (the backward of broadcasting).
 *
 * How a reduction runs. The input is seen as two lists of axes: the kept ones (in
 * order, one output element per index) and the reduced ones (sorted by stride, so the
 * innermost is the densest, and merged where contiguous). Each output reduces a
 * sequence of m elements: rows of the innermost reduced axis, walked by an odometer
 * over the outer reduced axes (for NCHW statistics: per channel, n rows of h*w).
 *
 * Numerics. Everything accumulates in double. Sums are pairwise: the sequence is cut
 * into chunks of CHUNK elements summed by a simple loop, and chunk sums are combined
 * as a binary counter combines its carries (a balanced tree, log2(m/CHUNK) deep), so
 * the error grows with log m rather than m. var is two-pass (mean, then the sum of
 * squared deviations); logsumexp is m + log(sum(exp(x - m))) with m the max.
 *
 * Edges. An empty sum is 0, an empty mean NaN, an empty logsumexp -inf; max/min of
 * nothing is an error. max, min and logsumexp propagate NaN (logsumexp: all -inf gives
 * -inf, any +inf gives +inf). var with n - correction <= 0 is NaN, also where PyTorch
 * gives inf (a positive sum over zero degrees of freedom): the estimate is undefined.
 *
 * Threads. The value of an output depends only on the layout, never on the threads:
 * outputs are shared among threads whole; when there are few outputs and long
 * reductions, the sequence is cut into blocks of CHUNK * 2^k elements (k from the sizes
 * only), and because such a block is exactly a subtree of the pairwise tree, combining
 * the block sums with the same binary counter gives the serial result bit for bit.
 * Outputs that sit side by side in memory while their reduction strides over rows
 * (column sums, sum_to a bias) are computed TILE at a time, one lane per output, with
 * each lane doing exactly the operations the output would get alone. */
#include "internal.h"

#include <math.h>
#include <omp.h>

enum {
    CHUNK = TG__SUM_CHUNK, /* elements summed in a simple loop before pairwise combining */
    TILE = 64,           /* outputs reduced side by side when they are adjacent in memory */
    BLOCK_MIN = CHUNK << 6, /* smallest block when one reduction is split among threads */
    MAX_PARTS = 1024,    /* block partials held at once (on the stack) */
    BLOCK_OUTS = 64,     /* at most this many outputs take the split-reduction path */
};

typedef enum rop { OP_SUM, OP_SQDEV, OP_SUMEXP, OP_MAX, OP_MIN, OP_COUNT } rop;

typedef enum kind { K_SUM, K_MEAN, K_MAX, K_MIN, K_VAR, K_LSE } kind;

/* The input, arranged for reducing. Strides in bytes; both lists have >= 1 axis. */
typedef struct plan {
    tg_dtype dt;
    int64_t es;
    const char *base;
    int nk, nr;
    int64_t kshape[TG_MAX_DIMS], kstride[TG_MAX_DIMS]; /* kept axes, merged */
    int64_t rshape[TG_MAX_DIMS], rstride[TG_MAX_DIMS]; /* reduced axes, innermost last */
    int64_t nout, m;                                   /* outputs, elements per output */
    bool tile; /* adjacent outputs are adjacent in memory, their reduction is not */
} plan;

typedef struct job {
    plan pl;
    kind k;
    int correction;
    char *out; /* contiguous, the input's dtype */
} job;

/* ------------------------------------------------------------------ spans */
/* A span function reduces n elements p, p+st, ... (st in bytes) for nt lanes (lane t
 * reads the element t places further on) into acc[t]; c[t] is the lane's centre for
 * the second pass of var and logsumexp. With one lane and a contiguous span, sums use
 * eight accumulators so that the loop vectorises; otherwise each lane is one plain
 * sequential sum, the same whether it runs alone or in a tile. */
typedef void span_fn(double *acc, int nt, const char *p, int64_t n, int64_t st, const double *c);

#define TERM_SUM TG__TERM_SUM
#define TERM_SQDEV TG__TERM_SQDEV
#define TERM_SUMEXP(v, c) exp((v) - (c))
TG__DEFINE_SUM8(sumexp8_f32, float, TERM_SUMEXP)
TG__DEFINE_SUM8(sumexp8_f64, double, TERM_SUMEXP)

/* SUM8: the contiguous one-lane loop of internal.h for this T and TERM */
#define DEFINE_SUM_SPAN(name, T, TERM, SUM8)                                              \
    static void name(double *acc, int nt, const char *p, int64_t n, int64_t st,           \
                     const double *c)                                                     \
    {                                                                                     \
        if (nt == 1 && st == (int64_t)sizeof(T)) {                                        \
            acc[0] += SUM8((const T *)p, n, c[0]);                                        \
            return;                                                                       \
        }                                                                                 \
        double a[TILE] = {0};                                                             \
        if (nt == TILE) { /* a constant trip count, so the lanes vectorise */             \
            for (int64_t i = 0; i < n; i++, p += st)                                      \
                for (int t = 0; t < TILE; t++)                                            \
                    a[t] += TERM((double)((const T *)p)[t], c[t]);                        \
        } else {                                                                          \
            for (int64_t i = 0; i < n; i++, p += st)                                      \
                for (int t = 0; t < nt; t++)                                              \
                    a[t] += TERM((double)((const T *)p)[t], c[t]);                        \
        }                                                                                 \
        for (int t = 0; t < nt; t++)                                                      \
            acc[t] += a[t];                                                               \
    }

#define EXT_LANES(count, BETTER)                                                          \
    do {                                                                                  \
        for (int t = 0; t < (count); t++) {                                               \
            m[t] = BETTER(x[t], m[t]) ? x[t] : m[t];                                      \
            bad[t] |= x[t] != x[t];                                                       \
        }                                                                                 \
    } while (0)

/* max/min are exact, so any order gives the same value; a NaN anywhere makes the
 * result NaN (tracked apart, so that the comparison loop stays a plain max). */
#define DEFINE_EXT_SPAN(name, T, BETTER)                                                  \
    static void name(double *acc, int nt, const char *p, int64_t n, int64_t st,           \
                     const double *c)                                                     \
    {                                                                                     \
        (void)c;                                                                          \
        int lanes = nt, bad[TILE] = {0};                                                  \
        T m[TILE];                                                                        \
        int64_t i = 0;                                                                    \
        if (nt == 1 && st == (int64_t)sizeof(T)) { /* 8 lanes down one contiguous span */ \
            const T *x = (const T *)p;                                                    \
            lanes = n < 8 ? (int)n : 8;                                                   \
            for (int k = 0; k < lanes; k++)                                               \
                m[k] = x[0];                                                              \
            for (; i + 8 <= n; i += 8)                                                    \
                for (int k = 0; k < 8; k++) {                                             \
                    T v = x[i + k];                                                       \
                    m[k] = BETTER(v, m[k]) ? v : m[k];                                    \
                    bad[k] |= v != v;                                                     \
                }                                                                         \
            for (; i < n; i++) {                                                          \
                m[0] = BETTER(x[i], m[0]) ? x[i] : m[0];                                  \
                bad[0] |= x[i] != x[i];                                                   \
            }                                                                             \
            for (int k = 1; k < lanes; k++) {                                             \
                m[0] = BETTER(m[k], m[0]) ? m[k] : m[0];                                  \
                bad[0] |= bad[k];                                                         \
            }                                                                             \
            lanes = 1;                                                                    \
        } else {                                                                          \
            for (int t = 0; t < nt; t++)                                                  \
                m[t] = ((const T *)p)[t];                                                 \
            for (; i < n; i++, p += st) {                                                 \
                const T *x = (const T *)p;                                                \
                if (nt == TILE) /* a constant trip count, so the lanes vectorise */       \
                    EXT_LANES(TILE, BETTER);                                              \
                else                                                                      \
                    EXT_LANES(nt, BETTER);                                                \
            }                                                                             \
        }                                                                                 \
        for (int t = 0; t < lanes; t++) {                                                 \
            double r = bad[t] ? NAN : (double)m[t];                                       \
            acc[t] = acc[t] != acc[t] || r != r ? NAN : BETTER(r, acc[t]) ? r : acc[t];   \
        }                                                                                 \
    }

#define GREATER(a, b) ((a) > (b))
#define LESS(a, b) ((a) < (b))

DEFINE_SUM_SPAN(sum_f32, float, TERM_SUM, tg__sum8_f32)
DEFINE_SUM_SPAN(sum_f64, double, TERM_SUM, tg__sum8_f64)
DEFINE_SUM_SPAN(sqdev_f32, float, TERM_SQDEV, tg__sqdev8_f32)
DEFINE_SUM_SPAN(sqdev_f64, double, TERM_SQDEV, tg__sqdev8_f64)
DEFINE_SUM_SPAN(sumexp_f32, float, TERM_SUMEXP, sumexp8_f32)
DEFINE_SUM_SPAN(sumexp_f64, double, TERM_SUMEXP, sumexp8_f64)
DEFINE_EXT_SPAN(max_f32, float, GREATER)
DEFINE_EXT_SPAN(max_f64, double, GREATER)
DEFINE_EXT_SPAN(min_f32, float, LESS)
DEFINE_EXT_SPAN(min_f64, double, LESS)

static span_fn *const SPANS[OP_COUNT][2] = {
    [OP_SUM] = {sum_f32, sum_f64},       [OP_SQDEV] = {sqdev_f32, sqdev_f64},
    [OP_SUMEXP] = {sumexp_f32, sumexp_f64}, [OP_MAX] = {max_f32, max_f64},
    [OP_MIN] = {min_f32, min_f64},
};

/* ------------------------------------------------------------------ streams */
/* One reduction (of nt lanes) fed span by span in sequence order. For sums, the open
 * chunk collects up to CHUNK elements and closed chunks go to the pairwise counter
 * (tg__sum, internal.h: the library's one summation rule), so a block of CHUNK * 2^j
 * elements starting at a multiple of its size enters it as one entry, the pairwise sum
 * of its chunks: the property the split reduction relies on. For max/min the open
 * chunk is simply the running extreme. */
typedef struct stream {
    span_fn *fn;
    bool extreme; /* max/min: no chunks, no stack */
    int nt;
    const double *c;
    int64_t fill;
    tg__sum sum; /* its stack is the array below */
    double chunk[TILE];
    double stack[TG__SUM_LEVELS * TILE];
} stream;

static void stream_init(stream *s, rop op, tg_dtype dt, int nt, const double *c)
{
    s->fn = SPANS[op][dt == TG_F64];
    s->extreme = op == OP_MAX || op == OP_MIN;
    s->nt = nt;
    s->c = c;
    s->fill = 0;
    tg__sum_init(&s->sum, nt, s->stack);
    double id = op == OP_MAX ? -INFINITY : op == OP_MIN ? INFINITY : 0;
    for (int t = 0; t < nt; t++)
        s->chunk[t] = id;
}

static void stream_push(stream *s, const double *v) { tg__sum_push(&s->sum, v); }

static void stream_feed(stream *s, const char *p, int64_t n, int64_t st)
{
    if (s->extreme) {
        if (n > 0)
            s->fn(s->chunk, s->nt, p, n, st, s->c);
        return;
    }
    while (n > 0) {
        int64_t k = CHUNK - s->fill < n ? CHUNK - s->fill : n;
        s->fn(s->chunk, s->nt, p, k, st, s->c);
        s->fill += k;
        p += k * st;
        n -= k;
        if (s->fill == CHUNK) {
            stream_push(s, s->chunk);
            for (int t = 0; t < s->nt; t++)
                s->chunk[t] = 0;
            s->fill = 0;
        }
    }
}

static void stream_finish(stream *s, double *out)
{
    if (s->extreme) {
        for (int t = 0; t < s->nt; t++)
            out[t] = s->chunk[t];
        return;
    }
    if (s->fill > 0)
        stream_push(s, s->chunk);
    tg__sum_result(&s->sum, out);
}

/* Feeds elements [f0, f1) of the sequence of the output at `base` into s. */
static void feed_range(const plan *pl, const char *base, stream *s, int64_t f0, int64_t f1)
{
    if (f0 >= f1)
        return;
    int nr = pl->nr;
    int64_t len = pl->rshape[nr - 1], st = pl->rstride[nr - 1];
    int64_t idx[TG_MAX_DIMS] = {0}, row = f0 / len, col = f0 % len;
    const char *p = base;
    for (int d = nr - 2; d >= 0; d--) {
        idx[d] = row % pl->rshape[d];
        row /= pl->rshape[d];
        p += idx[d] * pl->rstride[d];
    }
    for (int64_t f = f0; f < f1; col = 0) {
        int64_t n = len - col < f1 - f ? len - col : f1 - f;
        stream_feed(s, p + col * st, n, st);
        f += n;
        for (int d = nr - 2; d >= 0; d--) {
            p += pl->rstride[d];
            if (++idx[d] < pl->rshape[d])
                break;
            p -= pl->rshape[d] * pl->rstride[d];
            idx[d] = 0;
        }
    }
}

/* ------------------------------------------------------------------ plans */

static void merge_axes(int *n, int64_t *shape, int64_t *stride)
{
    int out = 0;
    for (int i = 1; i < *n; i++) {
        if (stride[out] == stride[i] * shape[i]) {
            shape[out] *= shape[i];
            stride[out] = stride[i];
        } else {
            out++;
            shape[out] = shape[i];
            stride[out] = stride[i];
        }
    }
    *n = *n > 0 ? out + 1 : 0;
}

static void plan_init(plan *pl, const tg_tensor *x, const bool *reduced)
{
    pl->dt = x->dtype;
    pl->es = (int64_t)tg_dtype_size(x->dtype);
    pl->base = tg__ptr(x);
    pl->nk = pl->nr = 0;
    pl->nout = pl->m = 1;
    for (int i = 0; i < x->ndim; i++) {
        int64_t n = x->shape[i], s = x->strides[i] * pl->es;
        if (reduced[i])
            pl->m *= n;
        else
            pl->nout *= n;
        if (n == 1)
            continue;
        if (!reduced[i]) {
            pl->kshape[pl->nk] = n;
            pl->kstride[pl->nk++] = s;
            continue;
        }
        /* insert by decreasing stride (stable), so the innermost is the densest */
        int j = pl->nr++;
        for (; j > 0 && pl->rstride[j - 1] < s; j--) {
            pl->rshape[j] = pl->rshape[j - 1];
            pl->rstride[j] = pl->rstride[j - 1];
        }
        pl->rshape[j] = n;
        pl->rstride[j] = s;
    }
    merge_axes(&pl->nk, pl->kshape, pl->kstride);
    merge_axes(&pl->nr, pl->rshape, pl->rstride);
    if (pl->nk == 0) {
        pl->nk = 1;
        pl->kshape[0] = 1;
        pl->kstride[0] = 0;
    }
    if (pl->nr == 0) {
        pl->nr = 1;
        pl->rshape[0] = 1;
        pl->rstride[0] = 0;
    }
    pl->tile = pl->kstride[pl->nk - 1] == pl->es && pl->rstride[pl->nr - 1] != pl->es;
}

/* The address of output o's first element. */
static const char *output_base(const plan *pl, int64_t o)
{
    const char *p = pl->base;
    for (int d = pl->nk - 1; d >= 0; d--) {
        p += (o % pl->kshape[d]) * pl->kstride[d];
        o /= pl->kshape[d];
    }
    return p;
}

/* ------------------------------------------------------------------ kinds */
/* Each reduction is a first pass (sum, max or min), an optional second pass centred
 * on the first's result (var: squared deviations from the mean; logsumexp: exp(x - max)),
 * and a final formula. */

static rop first_op(kind k)
{
    return k == K_MAX || k == K_LSE ? OP_MAX : k == K_MIN ? OP_MIN : OP_SUM;
}

static rop second_op(kind k) { return k == K_VAR ? OP_SQDEV : OP_SUMEXP; }

/* The second pass's centre for a first-pass result r1; false when none is needed. */
static bool second_centre(const job *j, double r1, double *c)
{
    int64_t m = j->pl.m;
    *c = 0;
    if (j->k == K_VAR && m > 0 && (double)m - j->correction > 0) {
        *c = r1 / (double)m;
        return true;
    }
    if (j->k == K_LSE && isfinite(r1)) { /* -inf, +inf and NaN are already the answer */
        *c = r1;
        return true;
    }
    return false;
}

static double finish(const job *j, double r1, double r2)
{
    double m = (double)j->pl.m, v = r1;
    switch (j->k) {
    case K_MEAN: v = r1 / m; break; /* 0/0: the mean of nothing is NaN */
    case K_VAR: /* too few elements for the correction: NaN (see the top of the file) */
        v = m > 0 && m - j->correction > 0 ? r2 / (m - j->correction) : NAN;
        break;
    case K_LSE: v = isfinite(r1) ? r1 + log(r2) : r1; break;
    default: break;
    }
    return v != v ? NAN : v; /* one NaN, whichever path produced it */
}

/* Reduces the nt outputs at base, base + es, ... into res. */
static void compute_outputs(const job *j, const char *base, int nt, double *res)
{
    static const double zeros[TILE] = {0};
    const plan *pl = &j->pl;
    double r1[TILE], r2[TILE] = {0}, c[TILE];
    stream s;
    stream_init(&s, first_op(j->k), pl->dt, nt, zeros);
    feed_range(pl, base, &s, 0, pl->m);
    stream_finish(&s, r1);
    if (j->k == K_VAR || j->k == K_LSE) {
        bool any = false;
        for (int t = 0; t < nt; t++)
            any |= second_centre(j, r1[t], &c[t]);
        if (any) {
            stream_init(&s, second_op(j->k), pl->dt, nt, c);
            feed_range(pl, base, &s, 0, pl->m);
            stream_finish(&s, r2);
        }
    }
    for (int t = 0; t < nt; t++)
        res[t] = finish(j, r1[t], r2[t]);
}

/* Outputs [o0, o1), walking the kept axes with an odometer. */
static void run_outputs(const job *j, int64_t o0, int64_t o1)
{
    const plan *pl = &j->pl;
    int nk = pl->nk;
    int64_t idx[TG_MAX_DIMS], rem = o0;
    const char *p = pl->base;
    for (int d = nk - 1; d >= 0; d--) {
        idx[d] = rem % pl->kshape[d];
        rem /= pl->kshape[d];
        p += idx[d] * pl->kstride[d];
    }
    char *dst = j->out + o0 * pl->es;
    double res[TILE];
    for (int64_t o = o0; o < o1;) {
        int64_t nt = 1;
        if (pl->tile) { /* a tile never crosses the end of the innermost kept axis */
            nt = pl->kshape[nk - 1] - idx[nk - 1];
            nt = nt < o1 - o ? nt : o1 - o;
            nt = nt < TILE ? nt : TILE;
        }
        compute_outputs(j, p, (int)nt, res);
        for (int t = 0; t < nt; t++)
            tg__store(pl->dt, dst + t * pl->es, res[t]);
        o += nt;
        dst += nt * pl->es;
        idx[nk - 1] += nt;
        p += nt * pl->kstride[nk - 1];
        for (int d = nk - 1; d > 0 && idx[d] == pl->kshape[d]; d--) {
            p += pl->kstride[d - 1] - pl->kshape[d] * pl->kstride[d];
            idx[d] = 0;
            idx[d - 1]++;
        }
    }
}

/* One pass over every output, each reduction split into nb blocks of pb elements that
 * the threads share; res[o] is the pass's result, equal bit for bit to a serial one. */
static void block_pass(const job *j, rop op, const double *c, int64_t pb, int64_t nb, double *res)
{
    const plan *pl = &j->pl;
    double part[MAX_PARTS];
    int64_t ntask = pl->nout * nb;
#pragma omp parallel for schedule(static)
    for (int64_t t = 0; t < ntask; t++) {
        int64_t o = t / nb, b = t % nb, f1 = (b + 1) * pb < pl->m ? (b + 1) * pb : pl->m;
        stream s;
        stream_init(&s, op, pl->dt, 1, &c[o]);
        feed_range(pl, output_base(pl, o), &s, b * pb, f1);
        stream_finish(&s, &part[t]);
    }
    for (int64_t o = 0; o < pl->nout; o++) {
        stream s;
        stream_init(&s, op, pl->dt, 1, &c[o]);
        if (s.extreme) {
            for (int64_t b = 0; b < nb; b++) {
                double v = part[o * nb + b], a = s.chunk[0];
                s.chunk[0] = a != a || v != v ? NAN : (op == OP_MAX ? v > a : v < a) ? v : a;
            }
        } else {
            for (int64_t b = 0; b < nb; b++)
                stream_push(&s, &part[o * nb + b]);
        }
        stream_finish(&s, &res[o]);
    }
}

static void run_blocks(const job *j)
{
    const plan *pl = &j->pl;
    int64_t pb = BLOCK_MIN, nb;
    while ((nb = (pl->m + pb - 1) / pb) * pl->nout > MAX_PARTS)
        pb *= 2;
    double zeros[BLOCK_OUTS] = {0}, r1[BLOCK_OUTS], r2[BLOCK_OUTS] = {0}, c[BLOCK_OUTS];
    block_pass(j, first_op(j->k), zeros, pb, nb, r1);
    if (j->k == K_VAR || j->k == K_LSE) {
        for (int64_t o = 0; o < pl->nout; o++)
            second_centre(j, r1[o], &c[o]);
        block_pass(j, second_op(j->k), c, pb, nb, r2);
    }
    for (int64_t o = 0; o < pl->nout; o++)
        tg__store(pl->dt, j->out + o * pl->es, finish(j, r1[o], r2[o]));
}

/* ------------------------------------------------------------------ the driver */

static bool check_float(const char *fn, const tg_tensor *x)
{
    if (x->dtype == TG_F32 || x->dtype == TG_F64)
        return true;
    tg_set_error_in(TG_ERR_DTYPE, fn, "dtype %s is not supported (f32 or f64 expected)",
                 tg_dtype_name(x->dtype));
    return false;
}

/* Reduces x over the axes marked in `reduced` into a new tensor of shape (ondim,
 * oshape), whose elements in row-major order are the kept axes' in theirs. */
static tg_tensor *reduce(tg_arena *ar, const char *fn, const tg_tensor *x, const bool *reduced,
                         int ondim, const int64_t *oshape, kind k, int correction)
{
    tg_tensor *out = tg__new(ar, x->dtype, ondim, oshape);
    if (!out)
        return NULL;
    job j = {.k = k, .correction = correction, .out = tg__ptr(out)};
    plan_init(&j.pl, x, reduced);
    if (j.pl.nout == 0)
        return out;
    tg_tensor v; /* nothing to reduce (sum_to a same shape): each output is its element */
    if (j.pl.m == 1 && k != K_VAR && tg__view_into(&v, x, ondim, oshape, fn) == TG_OK &&
        tg_tensor_copy_(out, &v) == TG_OK)
        return out;
    tg__threads_init();
    int threads = omp_get_max_threads();
    bool par = j.pl.nout * j.pl.m >= TG__PAR_MIN && !omp_in_parallel() && threads > 1;
    if (!par) {
        run_outputs(&j, 0, j.pl.nout);
    } else if (j.pl.nout <= BLOCK_OUTS && j.pl.nout < 4 * (int64_t)threads &&
               j.pl.m >= 2 * BLOCK_MIN) {
        run_blocks(&j);
    } else {
#pragma omp parallel
        {
            int64_t nt = omp_get_num_threads(), t = omp_get_thread_num();
            run_outputs(&j, j.pl.nout * t / nt, j.pl.nout * (t + 1) / nt);
        }
    }
    return out;
}

/* Marks the listed axes (all for naxes 0); false with an error naming fn otherwise. */
static bool axes_mask(const char *fn, const tg_tensor *x, int naxes, const int *axes, bool *mask)
{
    char b[TG__SHAPE_STR];
    if (naxes < 0 || (naxes > 0 && !axes)) {
        tg_set_error_in(TG_ERR_ARG, fn, "%d axes given for shape %s (a list of 0..%d axes expected)",
                     naxes, TG__SHAPE(b, x), x->ndim);
        return false;
    }
    int first[TG_MAX_DIMS];
    for (int i = 0; i < x->ndim; i++)
        mask[i] = naxes == 0;
    for (int i = 0; i < naxes; i++) {
        int a = tg__axis(axes[i], x->ndim);
        if (a < 0) {
            tg_set_error_in(TG_ERR_ARG, fn, "axis %d is out of range for shape %s", axes[i],
                         TG__SHAPE(b, x));
            return false;
        }
        if (mask[a]) {
            if (axes[i] == first[a])
                tg_set_error_in(TG_ERR_ARG, fn, "axis %d is listed twice for shape %s", axes[i],
                             TG__SHAPE(b, x));
            else
                tg_set_error_in(TG_ERR_ARG, fn, "axes %d and %d are the same axis of shape %s",
                             first[a], axes[i], TG__SHAPE(b, x));
            return false;
        }
        mask[a] = true;
        first[a] = axes[i];
    }
    return true;
}

static tg_tensor *reduce_axes(tg_arena *ar, const char *fn, const tg_tensor *x, int naxes,
                              const int *axes, bool keepdim, kind k, int correction)
{
    TG__CHECK_NULL(fn, x);
    bool mask[TG_MAX_DIMS];
    if (!check_float(fn, x) || !axes_mask(fn, x, naxes, axes, mask))
        return NULL;
    int64_t oshape[TG_MAX_DIMS], m = 1;
    int on = 0;
    for (int i = 0; i < x->ndim; i++) {
        if (mask[i])
            m *= x->shape[i];
        if (!mask[i] || keepdim)
            oshape[on++] = mask[i] ? 1 : x->shape[i];
    }
    if ((k == K_MAX || k == K_MIN) && m == 0) {
        char b[TG__SHAPE_STR];
        return TG__FAIL(TG_ERR_SHAPE, fn, "the reduced axes of shape %s hold no elements "
                                      "(the %s of nothing is undefined)",
                        TG__SHAPE(b, x), k == K_MAX ? "max" : "min");
    }
    return reduce(ar, fn, x, mask, on, oshape, k, correction);
}

/* ------------------------------------------------------------------ public */

tg_tensor *tg_tensor_sum(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_sum", x, naxes, axes, keepdim, K_SUM, 0);
}

tg_tensor *tg_tensor_mean(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_mean", x, naxes, axes, keepdim, K_MEAN, 0);
}

tg_tensor *tg_tensor_max(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_max", x, naxes, axes, keepdim, K_MAX, 0);
}

tg_tensor *tg_tensor_min(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes, bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_min", x, naxes, axes, keepdim, K_MIN, 0);
}

tg_tensor *tg_tensor_var(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes,
                         int correction, bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_var", x, naxes, axes, keepdim, K_VAR, correction);
}

tg_tensor *tg_tensor_logsumexp(tg_arena *ar, const tg_tensor *x, int naxes, const int *axes,
                               bool keepdim)
{
    return reduce_axes(ar, "tg_tensor_logsumexp", x, naxes, axes, keepdim, K_LSE, 0);
}

tg_tensor *tg_tensor_sum_to(tg_arena *ar, const tg_tensor *x, int ndim, const int64_t *shape)
{
    const char *fn = "tg_tensor_sum_to";
    TG__CHECK_NULL(fn, x);
    if (!check_float(fn, x))
        return NULL;
    char b1[TG__SHAPE_STR], b2[TG__SHAPE_STR];
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape))
        return TG__FAIL(TG_ERR_ARG, fn, "%d axes (0..%d allowed, with a shape)", ndim,
                        TG_MAX_DIMS);
    bool mask[TG_MAX_DIMS];
    int lead = x->ndim - ndim;
    for (int i = 0; i < x->ndim && lead >= 0; i++) {
        int64_t want = i < lead ? 1 : shape[i - lead];
        mask[i] = i < lead || (want == 1 && x->shape[i] != 1);
        if (want != 1 && want != x->shape[i])
            lead = -1;
    }
    if (lead < 0)
        return TG__FAIL(TG_ERR_SHAPE, fn, "shape %s does not broadcast to the input's shape %s",
                        tg_shape_str(b1, sizeof b1, ndim, shape), TG__SHAPE(b2, x));
    return reduce(ar, fn, x, mask, ndim, shape, K_SUM, 0);
}

/* ------------------------------------------------------------------ argmax */

#define ARGMAX_SCAN(T, p, n, st, best_i)                                                   \
    do {                                                                                   \
        T best = *(const T *)(p);                                                          \
        best_i = 0;                                                                        \
        for (int64_t i = 1; i < (n) && best == best; i++) {                                \
            T v = *(const T *)((p) + i * (st));                                            \
            if (v > best || v != v) { /* the first NaN ends the search */                  \
                best = v;                                                                  \
                best_i = i;                                                                \
            }                                                                              \
        }                                                                                  \
    } while (0)

tg_tensor *tg_tensor_argmax(tg_arena *ar, const tg_tensor *x, int axis, bool keepdim)
{
    const char *fn = "tg_tensor_argmax";
    TG__CHECK_NULL(fn, x);
    if (!check_float(fn, x))
        return NULL;
    char b[TG__SHAPE_STR];
    int a = tg__axis(axis, x->ndim);
    if (a < 0)
        return TG__FAIL(TG_ERR_ARG, fn, "axis %d is out of range for shape %s", axis,
                        TG__SHAPE(b, x));
    if (x->shape[a] == 0 || x->shape[a] > INT32_MAX)
        return TG__FAIL(TG_ERR_SHAPE, fn, "axis %d of shape %s must hold 1..%d elements", axis,
                        TG__SHAPE(b, x), INT32_MAX);
    bool mask[TG_MAX_DIMS] = {false};
    mask[a] = true;
    int64_t oshape[TG_MAX_DIMS];
    int on = 0;
    for (int i = 0; i < x->ndim; i++)
        if (i != a || keepdim)
            oshape[on++] = i == a ? 1 : x->shape[i];
    tg_tensor *out = tg__new(ar, TG_I32, on, oshape);
    if (!out)
        return NULL;
    plan pl;
    plan_init(&pl, x, mask);
    int32_t *dst = (int32_t *)tg__ptr(out);
    int64_t n = pl.rshape[0], st = pl.rstride[0];
    tg__threads_init();
    bool par = pl.nout * n >= TG__PAR_MIN && pl.nout > 1 && !omp_in_parallel();
#pragma omp parallel for schedule(static) if (par)
    for (int64_t o = 0; o < pl.nout; o++) {
        const char *p = output_base(&pl, o);
        int64_t best_i;
        if (pl.dt == TG_F32)
            ARGMAX_SCAN(float, p, n, st, best_i);
        else
            ARGMAX_SCAN(double, p, n, st, best_i);
        dst[o] = (int32_t)best_i;
    }
    return out;
}
