/* autograd/ops_norm.c — batch normalisation in training mode as one op, forward and
 * backward side by side. The numeric kernels are tensor/'s (tensor/batch_norm.c:
 * tg_tensor_batch_norm2d and its backward, with the formulas); this file records them.
 *
 * nn's batch norm composed from primitives (mean, var, add_scalar, rsqrt, sub, mul,
 * mul, add) keeps about five full-size tensors per layer and passes over memory about
 * ten times, forward and backward. Here the forward keeps nothing full-size but its
 * output (the per-channel mean, var and invstd go in the record's params), and the
 * backward recomputes xhat from x.
 *
 * Under a tg_stat_sync the statistics, and the sums the input gradient needs, are those
 * of every process's batch: the kernels run in steps and this file gathers and combines
 * what they return between them. */
#include "internal.h"

#include <math.h>
#include <string.h>

/* ------------------------------------------------------------------ batch_norm2d
 * x [N,C,H,W], gamma, beta [C] -> y [N,C,H,W]; per channel over its M = N*H*W values
 * y = (x - mean) * invstd * gamma + beta (tensor/batch_norm.c has the backward's form). */
typedef struct batch_norm_params {
    double eps;
    /* the caller's out-pointers for the batch statistics (may be NULL); forward fills
     * them and clears these, so the record keeps no pointer into the caller's frame */
    tg_tensor **mean_out, **var_out;
    tg_tensor *stats; /* set by forward: f64 [3, C], per channel the mean, the biased
                       * variance and invstd */
    double count;      /* values per channel the statistics are over: M, or every
                        * process's M together under a tg_stat_sync */
    bool synced;       /* forward ran under a tg_stat_sync: backward sums across processes */
} batch_norm_params;

/* Under a tg_stat_sync: every process's count, channel means and sums of squared
 * deviations, gathered and combined in process order (Chan, Golub and LeVeque's
 * pairwise update: no sum of squares, so a large mean costs no precision), into a new
 * f64 [3, C] (mean, var, invstd) and p->count. NULL + the error (the kernel's, or the
 * tape's if the gather fails). */
static tg_tensor *synced_statistics(tg_tape *tp, const tg_stat_sync *sync, const tg_tensor *x,
                                    batch_norm_params *p)
{
    tg_arena *ar = TG__AR(tp);
    tg_tensor *moments = tg_tensor_batch_norm2d_moments(ar, x); /* checks x */
    if (!moments)
        return NULL;
    if (!(p->eps >= 0)) {
        tg_set_error_in(TG_ERR_ARG, "tg_batch_norm2d", "eps = %g must be >= 0", p->eps);
        return NULL;
    }
    const int64_t C = x->shape[1], M = x->shape[0] * x->shape[2] * x->shape[3];
    const int n = (int)(1 + 2 * C);
    if (sync->size < 1 || 2 * C + 1 > INT32_MAX / (sync->size > 0 ? sync->size : 1)) {
        tg_tape_fail_in(tp, TG_ERR_ARG, "tg_batch_norm2d", "synchronised statistics over %d processes of %lld channels",
                     sync->size, (long long)C);
        return NULL;
    }
    tg_tensor *buf = tg_tensor_empty(ar, TG_F64, TG_DIMS((int64_t)n * (1 + sync->size)));
    tg_tensor *stats = tg_tensor_empty(ar, TG_F64, TG_DIMS(3, C));
    if (!buf || !stats) {
        tg_tape_fail_in(tp, tg_last_status(), "tg_batch_norm2d", "%s", tg_last_error_info()->detail);
        return NULL;
    }
    double *mine = tg_tensor_data(buf), *all = mine + n, *st = tg_tensor_data(stats);
    mine[0] = (double)M;
    memcpy(mine + 1, tg_tensor_data(moments), (size_t)(2 * C) * sizeof(double)); /* means, then sums */
    tg_status st_gather = sync->gather(sync->ctx, mine, all, n);
    if (st_gather != TG_OK) {
        tg_tape_fail_in(tp, st_gather, "tg_batch_norm2d", "gathering the batch statistics of %d processes: %s",
                     sync->size, tg_last_error());
        return NULL;
    }
    double count = 0;
    for (int k = 0; k < sync->size; k++)
        count += all[(int64_t)k * n];
    for (int64_t c = 0; c < C; c++) {
        double total = 0, mean = 0, ss = 0;
        for (int k = 0; k < sync->size; k++) {
            const double *a = all + (int64_t)k * n;
            double nk = a[0];
            if (nk <= 0)
                continue;
            double delta = a[1 + c] - mean, both = total + nk;
            mean += delta * (nk / both);
            ss += a[1 + C + c] + delta * delta * (total * nk / both);
            total = both;
        }
        if (total == 0)
            mean = NAN; /* the mean of nothing, as without a sync */
        st[c] = mean;
        st[C + c] = ss / total;
        st[2 * C + c] = 1 / sqrt(st[C + c] + p->eps);
    }
    p->count = count;
    return stats;
}

/* Row `row` of a per-channel f64 table ([k, C]) as a new [C] tensor of dtype dt. */
static tg_tensor *table_row(tg_arena *ar, const tg_tensor *table, int64_t row, tg_dtype dt)
{
    return tg_tensor_to_dtype(ar, tg_tensor_select(ar, table, 0, row), dt);
}

static tg_tensor *batch_norm2d_forward(tg_tape *tp, tg_record *r)
{
    batch_norm_params *p = r->params;
    const tg_tensor *x = r->in[0], *gamma = r->in[1], *beta = r->in[2];
    tg_tensor **mean_out = p->mean_out, **var_out = p->var_out;
    p->mean_out = p->var_out = NULL;
    tg_arena *ar = TG__AR(tp);
    const tg_stat_sync *sync = tg_tape_stat_sync(tp);
    p->synced = sync != NULL;
    tg_tensor *y;
    if (!sync) {
        y = tg_tensor_batch_norm2d(ar, x, gamma, beta, p->eps, &p->stats);
        p->count = y ? (double)(x->shape[0] * x->shape[2] * x->shape[3]) : 0;
    } else {
        p->stats = synced_statistics(tp, sync, x, p);
        y = p->stats ? tg_tensor_batch_norm2d_normalize(ar, x, gamma, beta, p->stats) : NULL;
    }
    if (!y)
        return NULL;
    /* constants in x's dtype, for a layer's running averages */
    tg_tensor *mean = mean_out ? table_row(ar, p->stats, 0, x->dtype) : NULL;
    tg_tensor *var = var_out ? table_row(ar, p->stats, 1, x->dtype) : NULL;
    if ((mean_out && !mean) || (var_out && !var))
        return NULL;
    if (mean_out)
        *mean_out = mean;
    if (var_out)
        *var_out = var;
    return y;
}

static tg_status batch_norm2d_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_arena *ar = TG__AR(tp);
    const tg_tensor *x = r->in[0], *gamma = r->in[1];
    const bool need_x = tg_needs_grad(tp, r, 0), need_gamma = tg_needs_grad(tp, r, 1);
    const bool need_beta = tg_needs_grad(tp, r, 2);
    const batch_norm_params *p = r->params;
    tg_tensor *sums = NULL, *dx = NULL; /* sums: f64 [2, C], sum(g) and sum(g * xhat) */
    if (!p->synced) {
        if (need_x)
            dx = tg_tensor_batch_norm2d_backward(ar, g, x, gamma, p->stats, &sums);
        else
            sums = tg_tensor_batch_norm2d_backward_sums(ar, g, x, p->stats);
        if (!sums)
            return tg_tape_fail(tp, tg_last_status(), "tg_batch_norm2d backward: %s", tg_last_error_info()->detail);
    } else {
        /* dx needs the sums over every process's batch; gamma's and beta's gradients
         * keep this batch's (the caller averages them across processes) */
        const tg_stat_sync *sync = tg_tape_stat_sync(tp);
        if (!sync)
            return tg_tape_fail(tp, TG_ERR_STATE, "tg_batch_norm2d backward: forward ran with synchronised "
                                "statistics, and the tape's tg_stat_sync was removed before backward");
        sums = tg_tensor_batch_norm2d_backward_sums(ar, g, x, p->stats);
        tg_tensor *global = need_x && sums ? tg_tensor_clone(ar, sums) : NULL;
        if (!sums || (need_x && !global))
            return tg_tape_fail(tp, tg_last_status(), "tg_batch_norm2d backward: %s", tg_last_error_info()->detail);
        tg_status st = need_x ? sync->sum(sync->ctx, tg_tensor_data(global), (int)(2 * x->shape[1])) : TG_OK;
        if (st != TG_OK)
            return tg_tape_fail(tp, st, "tg_batch_norm2d backward: summing the gradient statistics of %d "
                                "processes: %s", sync->size, tg_last_error());
        dx = need_x ? tg_tensor_batch_norm2d_backward_input(ar, g, x, gamma, p->stats, global, p->count) : NULL;
        if (need_x && !dx)
            return tg_tape_fail(tp, tg_last_status(), "tg_batch_norm2d backward: %s", tg_last_error_info()->detail);
    }
    if (need_x)
        tg_accumulate_grad(tp, r, 0, dx);
    if (need_gamma)
        tg_accumulate_grad(tp, r, 1, table_row(ar, sums, 1, x->dtype));
    if (need_beta)
        tg_accumulate_grad(tp, r, 2, table_row(ar, sums, 0, x->dtype));
    return tg_tape_status(tp);
}

static const tg_op op_batch_norm2d = {"batch_norm2d", batch_norm2d_forward, batch_norm2d_backward,
                                      TG_READS_IN(0) | TG_READS_IN(1)};

tg_tensor *tg_batch_norm2d(tg_tape *tp, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps,
                           tg_tensor **batch_mean, tg_tensor **batch_var)
{
    if (batch_mean)
        *batch_mean = NULL;
    if (batch_var)
        *batch_var = NULL;
    batch_norm_params p = {.eps = eps, .mean_out = batch_mean, .var_out = batch_var};
    return tg_apply(tp, &op_batch_norm2d, 3, (tg_tensor *[]){x, gamma, beta}, &p, sizeof p);
}
