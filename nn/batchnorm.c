/* nn/batchnorm.c — 2-d batch normalisation as PyTorch's BatchNorm2d computes it:
 *
 *   training:   mean = mean(x, (N,H,W))   var = var(x, (N,H,W), biased)
 *               y = (x - mean) * rsqrt(var + eps) * gamma + beta
 *   evaluation: y = (x - running_mean) * rsqrt(running_var + eps) * gamma + beta
 *
 * In training with tg_tape_fused (the default) this is one op, tg_batch_norm2d
 * (autograd/ops_norm.c): one record, one full-size tensor kept, three passes over x
 * forward and two over (g, x) backward. With fusion off it is composed from tape
 * primitives (mean, var, add_scalar, rsqrt, sub, mul, mul, add), so the gradient
 * through the batch statistics is the primitives' and the tape shows each step; the
 * two agree within float32 rounding (tests/autograd/test_ops_norm.c).
 *
 * In training the running statistics move towards the batch's (running = (1 - momentum)
 * running + momentum batch, the variance unbiased: n / (n - 1) times the biased one) and
 * num_batches_tracked counts the batch. That update is state, not part of the function:
 * it is done with tensor kernels on the buffers, from the values of the batch
 * statistics either path hands back, and nothing is recorded for it. Evaluation uses
 * the running statistics as constants (computed into the arena), composed either way. */
#include "internal.h"

#include <string.h>

static const char *const state_names[5] = {"weight", "bias", "running_mean", "running_var",
                                           "num_batches_tracked"};

tg_status tg_nn_batch_norm2d_init(tg_nn_batch_norm2d *bn, tg_model *m, const char *name, int64_t channels)
{
    static const char fn[] = "tg_nn_batch_norm2d_init";
    if (!bn || !m || !name)
        return tg_set_error_in(TG_ERR_ARG, fn, "the %s is NULL", !bn ? "layer" : !m ? "model" : "name");
    memset(bn, 0, sizeof *bn);
    tg_status st = tg__layer_name(bn->name, sizeof bn->name, fn, name);
    if (st != TG_OK)
        return st;
    if (channels < 1)
        return tg_set_error_in(TG_ERR_ARG, fn, "'%s': channels must be >= 1, got %lld", name,
                            (long long)channels);
    for (int i = 0; i < 5; i++) /* all names free before anything is made */
        if ((st = tg__layer_check_new(fn, m, name, state_names[i])) != TG_OK)
            return st;
    tg_dtype dt = tg_model_dtype(m);
    const int64_t c[1] = {channels};
    bn->model = m;
    bn->eps = 1e-5;
    bn->momentum = 0.1;
    if (!(bn->weight = tg__layer_add(fn, m, true, name, "weight", dt, 1, c)) ||
        !(bn->bias = tg__layer_add(fn, m, true, name, "bias", dt, 1, c)) ||
        !(bn->running_mean = tg__layer_add(fn, m, false, name, "running_mean", dt, 1, c)) ||
        !(bn->running_var = tg__layer_add(fn, m, false, name, "running_var", dt, 1, c)) ||
        !(bn->num_batches_tracked = tg__layer_add(fn, m, false, name, "num_batches_tracked",
                                                  TG_I32, 0, NULL)))
        return tg_last_status();
    tg_tensor_fill_(bn->weight, 1);
    tg_tensor_fill_(bn->running_var, 1);
    return tg__model_add_layer(m, fn, name, TG_NN_BATCH_NORM2D, bn->weight, bn->bias);
}

/* running = (1 - momentum) running + momentum * batch * scale, in place, from values */
static tg_status move_towards(tg_arena *ar, tg_tensor *running, const tg_tensor *batch,
                              double momentum, double scale)
{
    tg_tensor *b = tg_tensor_reshape(ar, batch, 1, running->shape);
    tg_tensor *keep = tg_tensor_scalar(ar, running->dtype, 1 - momentum);
    if (!b || !keep)
        return tg_last_status();
    tg_status st = tg_tensor_binary_out(running, TG_MUL, running, keep);
    return st != TG_OK ? st : tg_tensor_axpy_(running, momentum * scale, b);
}

/* x [N,C,H,W], gamma and beta [C] -> y [N,C,H,W] */
tg_tensor *tg_nn_batch_norm2d_forward(tg_tape *tp, const tg_nn_batch_norm2d *bn, tg_tensor *x)
{
    static const char fn[] = "tg_nn_batch_norm2d_forward";
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, fn, "the tape is NULL");
        return NULL;
    }
    if (!bn || !bn->weight || !bn->bias || !bn->running_mean || !bn->running_var || !bn->model)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, fn, "the layer is %s", bn ? "not initialised" : "NULL");
    if (tg_tape_status(tp) != TG_OK)
        return tg_tape_placeholder(tp);
    if (!x)
        return tg_tape_fail_tensor_in(tp, TG_ERR_ARG, fn, "the input is NULL");
    int64_t c = bn->weight->shape[0];
    char buf[160];
    if (x->ndim != 4 || x->shape[1] != c)
        return tg_tape_fail_tensor_in(tp, TG_ERR_SHAPE, fn, "'%s' takes [N,%lld,H,W], got %s", bn->name,
                          (long long)c, tg_shape_str(buf, sizeof buf, x->ndim, x->shape));
    bool training = tg_model_training(bn->model);
    int64_t n = x->shape[0] * x->shape[2] * x->shape[3]; /* values per channel */
    const tg_stat_sync *sync = training ? tg_tape_stat_sync(tp) : NULL;
    if (sync && !tg_tape_fused(tp))
        return tg_tape_fail_tensor_in(tp, TG_ERR_STATE, fn, "'%s': synchronised batch statistics (tg_stat_sync) "
                          "need the fused batch norm; turn fusion on (tg_tape_set_fused)", bn->name);
    /* the unbiased running variance counts every process's values (equal batches) */
    const double n_all = (double)n * (sync ? sync->size : 1);
    if (training && n <= 1) /* PyTorch refuses too: the unbiased variance needs two */
        return tg_tape_fail_tensor_in(tp, TG_ERR_SHAPE, fn, "'%s' needs more than 1 value per channel in "
                          "training, got input %s", bn->name,
                          tg_shape_str(buf, sizeof buf, x->ndim, x->shape));

    const int64_t c4[4] = {1, c, 1, 1};
    tg_arena *ar = tg_tape_arena(tp);
    tg_scope_push(tp, bn->name);
    tg_tensor *xhat = NULL, *y = NULL;
    if (training) {
        tg_tensor *mean, *var; /* [C] fused, [1,C,1,1] composed; var biased */
        if (tg_tape_fused(tp)) {
            y = tg_batch_norm2d(tp, x, bn->weight, bn->bias, bn->eps, &mean, &var);
        } else {
            mean = tg_mean(tp, x, TG_AXES(0, 2, 3), true);
            var = tg_var(tp, x, TG_AXES(0, 2, 3), 0, true);
            tg_tensor *inv_std = tg_rsqrt(tp, tg_add_scalar(tp, var, bn->eps));
            xhat = tg_mul(tp, tg_sub(tp, x, mean), inv_std);
        }
        if (tg_tape_status(tp) == TG_OK) {
            tg_status st = move_towards(ar, bn->running_mean, mean, bn->momentum, 1);
            if (st == TG_OK)
                st = move_towards(ar, bn->running_var, var, bn->momentum, n_all / (n_all - 1));
            if (st != TG_OK) {
                tg_tape_fail_tensor_in(tp, st, fn, "'%s': updating the running statistics: %s", bn->name,
                               tg_last_error_info()->detail); /* formatted before it is replaced */
            } else if (bn->num_batches_tracked) {
                tg_tensor_fill_(bn->num_batches_tracked, tg_tensor_item(bn->num_batches_tracked) + 1);
            }
        }
    } else {
        /* constants: no record, no gradient */
        tg_tensor *rm = tg_tensor_view(ar, bn->running_mean, 4, c4);
        tg_tensor *inv_std = tg_tensor_rsqrt(ar, tg_tensor_affine(ar, tg_tensor_view(ar, bn->running_var, 4, c4),
                                                                  1, bn->eps));
        if (!rm || !inv_std) {
            tg_tape_fail_tensor_in(tp, tg_last_status(), fn, "'%s': %s", bn->name, tg_last_error_info()->detail);
        }
        xhat = tg_mul(tp, tg_sub(tp, x, rm), inv_std);
    }
    if (!y) { /* composed: the affine part */
        y = tg_mul(tp, xhat, tg_reshape(tp, bn->weight, 4, c4));
        y = tg_add(tp, y, tg_reshape(tp, bn->bias, 4, c4));
    }
    tg_scope_pop(tp);
    return y;
}
