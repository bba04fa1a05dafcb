/* nn/init.c — initialisers, as torch.nn.init computes them, drawn from an explicit
 * generator (bitwise equality with PyTorch's draws is not a goal: the generators
 * differ; the distributions and their bounds are the same).
 *
 * A weight [out, in, k...] has fan_in = in * prod(k) and fan_out = out * prod(k), as
 * torch.nn.init._calculate_fan_in_and_fan_out. Gains follow calculate_gain for
 * 'leaky_relu' with slope a: sqrt(2 / (1 + a^2)). */
#include "tapegrad/nn.h"

#include <math.h>

static int64_t receptive_field(const tg_tensor *w)
{
    int64_t r = 1;
    for (int d = 2; d < w->ndim; d++)
        r *= w->shape[d];
    return r;
}

int64_t tg_fan_in(const tg_tensor *w)
{
    if (!w || w->ndim < 2) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_fan_in", "a weight needs at least 2 dimensions, got %d",
                     w ? w->ndim : -1);
        return -1;
    }
    return w->shape[1] * receptive_field(w);
}

int64_t tg_fan_out(const tg_tensor *w)
{
    if (!w || w->ndim < 2) {
        tg_set_error_in(TG_ERR_SHAPE, "tg_fan_out", "a weight needs at least 2 dimensions, got %d",
                     w ? w->ndim : -1);
        return -1;
    }
    return w->shape[0] * receptive_field(w);
}

/* The weight must be a float tensor of >= 2 dims with no empty fan. */
static tg_status check_weight(const char *fn, const tg_tensor *w, const tg_rng *g)
{
    if (!w || !g)
        return tg_set_error_in(TG_ERR_ARG, fn, "the %s is NULL", w ? "generator" : "tensor");
    if (w->dtype != TG_F32 && w->dtype != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, fn, "expected an f32 or f64 tensor, got %s",
                            tg_dtype_name(w->dtype));
    if (w->ndim < 2) {
        char buf[160];
        return tg_set_error_in(TG_ERR_SHAPE, fn, "a weight needs at least 2 dimensions ([out, in, ...]), got %s",
                            tg_shape_str(buf, sizeof buf, w->ndim, w->shape));
    }
    if (tg_fan_in(w) == 0 || tg_fan_out(w) == 0) {
        char buf[160];
        return tg_set_error_in(TG_ERR_SHAPE, fn, "weight %s has an empty fan",
                            tg_shape_str(buf, sizeof buf, w->ndim, w->shape));
    }
    return TG_OK;
}

static double leaky_gain(double a) { return sqrt(2.0 / (1.0 + a * a)); }

tg_status tg_init_kaiming_uniform(tg_tensor *w, double a, tg_rng *g)
{
    tg_status st = check_weight("tg_init_kaiming_uniform", w, g);
    if (st != TG_OK)
        return st;
    double bound = leaky_gain(a) * sqrt(3.0 / (double)tg_fan_in(w));
    return tg_tensor_uniform_(w, g, -bound, bound);
}

tg_status tg_init_kaiming_normal(tg_tensor *w, double a, tg_rng *g)
{
    tg_status st = check_weight("tg_init_kaiming_normal", w, g);
    if (st != TG_OK)
        return st;
    return tg_tensor_normal_(w, g, 0.0, leaky_gain(a) / sqrt((double)tg_fan_in(w)));
}

tg_status tg_init_xavier_uniform(tg_tensor *w, double gain, tg_rng *g)
{
    tg_status st = check_weight("tg_init_xavier_uniform", w, g);
    if (st != TG_OK)
        return st;
    double bound = gain * sqrt(6.0 / (double)(tg_fan_in(w) + tg_fan_out(w)));
    return tg_tensor_uniform_(w, g, -bound, bound);
}

tg_status tg_init_bias(tg_tensor *b, int64_t fan_in, tg_rng *g)
{
    if (!b || !g)
        return tg_set_error_in(TG_ERR_ARG, "tg_init_bias", "the %s is NULL", b ? "generator" : "tensor");
    if (b->dtype != TG_F32 && b->dtype != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, "tg_init_bias", "expected an f32 or f64 tensor, got %s",
                            tg_dtype_name(b->dtype));
    if (fan_in < 0)
        return tg_set_error_in(TG_ERR_ARG, "tg_init_bias", "fan_in must be >= 0, got %lld", (long long)fan_in);
    double bound = fan_in > 0 ? 1.0 / sqrt((double)fan_in) : 0.0; /* as nn.Linear / nn.Conv2d */
    return tg_tensor_uniform_(b, g, -bound, bound);
}
