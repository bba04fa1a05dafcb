/* nn/loss.c — cross-entropy (log-softmax then negative log-likelihood, both tape
 * primitives, so the tape shows the two steps) and accuracy (plain C over the values:
 * it runs every training step and allocates nothing). */
#include "tapegrad/nn.h"

#include <math.h>

/* logits [N,C], labels i32 [N] -> mean_i -log softmax(logits)[i, labels[i]] [] */
tg_tensor *tg_nn_cross_entropy(tg_tape *tp, tg_tensor *logits, const tg_tensor *labels)
{
    if (!tp) {
        tg_set_error_in(TG_ERR_ARG, "tg_nn_cross_entropy", "the tape is NULL");
        return NULL;
    }
    return tg_nll_loss(tp, tg_log_softmax(tp, logits, 1), labels);
}

static double value_at(const tg_tensor *t, const char *base, int64_t elem)
{
    switch (t->dtype) {
    case TG_F32:
        return ((const float *)(const void *)base)[elem];
    case TG_F64:
        return ((const double *)(const void *)base)[elem];
    case TG_U8:
        return ((const uint8_t *)(const void *)base)[elem];
    case TG_I32:
        return ((const int32_t *)(const void *)base)[elem];
    default:
        return NAN;
    }
}

/* Row i's argmax as tg_tensor_argmax picks it (the first maximum; a NaN wins) equals
 * labels[i], counted over the rows. */
double tg_nn_accuracy(const tg_tensor *logits, const tg_tensor *labels)
{
    if (!logits || !labels) {
        tg_set_error_in(TG_ERR_ARG, "tg_nn_accuracy", "the %s is NULL", logits ? "labels tensor" : "logits tensor");
        return NAN;
    }
    char s1[160], s2[160];
    if (logits->ndim != 2 || labels->ndim != 1 || labels->shape[0] != logits->shape[0]) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_nn_accuracy", "expected logits [N,C] and labels [N], got %s and %s",
                     tg_shape_str(s1, sizeof s1, logits->ndim, logits->shape),
                     tg_shape_str(s2, sizeof s2, labels->ndim, labels->shape));
        return NAN;
    }
    if ((logits->dtype != TG_F32 && logits->dtype != TG_F64) ||
        (labels->dtype != TG_I32 && labels->dtype != TG_U8)) {
        tg_set_error_in(TG_ERR_DTYPE, "tg_nn_accuracy", "expected f32/f64 logits and i32 labels, got %s and %s",
                     tg_dtype_name(logits->dtype), tg_dtype_name(labels->dtype));
        return NAN;
    }
    int64_t n = logits->shape[0], c = logits->shape[1];
    if (n == 0 || c == 0) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_nn_accuracy", "no %s (logits %s)", n == 0 ? "rows" : "classes",
                     tg_shape_str(s1, sizeof s1, logits->ndim, logits->shape));
        return NAN;
    }
    const char *lg = tg_tensor_data(logits), *lb = tg_tensor_data(labels);
    int64_t hits = 0;
    for (int64_t i = 0; i < n; i++) {
        const char *row = lg + (ptrdiff_t)(i * logits->strides[0]) * (ptrdiff_t)tg_dtype_size(logits->dtype);
        int64_t best = 0;
        double bv = value_at(logits, row, 0);
        for (int64_t j = 1; j < c && !isnan(bv); j++) {
            double v = value_at(logits, row, j * logits->strides[1]);
            if (v > bv || isnan(v)) {
                bv = v;
                best = j;
            }
        }
        hits += value_at(labels, lb, i * labels->strides[0]) == (double)best;
    }
    return (double)hits / (double)n;
}
