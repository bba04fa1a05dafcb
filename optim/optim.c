/* optim/optim.c — SGD, Adam and AdamW over a model's parameters.
 *
 * The update rules are PyTorch 1.13's single-tensor implementations (foreach=False:
 * torch/optim/sgd.py _single_tensor_sgd, adam.py _single_tensor_adam, adamw.py
 * _single_tensor_adamw), operation for operation and in the same order, so that a
 * trajectory here and there agree to rounding (tests/optim/test_optim.c compares five
 * steps of each against tests/fixtures/optim_reference.inc to 1e-12 in f64).
 *
 * The state is allocated once, by tg_optim_new, as zero-filled heap tensors with names
 * (what a checkpoint saves and loads into): per parameter its update count "<p>/step"
 * (f64 []), then "<p>/momentum_buffer" (SGD with momentum) or "<p>/exp_avg",
 * "<p>/exp_avg_sq" and, with AMSGrad, "<p>/max_exp_avg_sq" (Adam, AdamW), each of
 * the parameter's shape and dtype; and "optim/step" (f64 []), the number of
 * tg_optim_step calls. The count is kept per parameter because PyTorch keeps it per
 * parameter: a parameter without a gradient is skipped, its count does not advance,
 * and its bias correction later uses its own count; SGD's momentum buffer starts as the
 * first gradient (no dampening), which the count 0 signals here as PyTorch's missing
 * buffer does there.
 *
 * The arithmetic is done in double per element and stored in the parameter's dtype
 * (the state has that dtype too, as in PyTorch). tg_optim_step allocates nothing.
 */
#include "tapegrad/optim.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* A parameter's update is shared among threads when tg_parallel_worth says so (32768
 * elements, the tensor module's threshold). The study's parameters are all smaller (VGG_38's largest tensor
 * has 9,216 elements), so there the update runs on one thread, and that is right: an
 * Adam step over all 336,196 f32 parameters of VGG_38 took 1.3-1.9 ms on one core of
 * the (busy, 2-core) build machine, limited by the divider, against seconds for one
 * batch's forward and backward there. An OpenMP region around each small tensor cost
 * more than it saved (2.2 ms against 1.3 ms for 47 tensors on one thread), hence the
 * plain loop below the threshold; what threads gain above it could not be measured on
 * that machine (two threads on two busy cores were slower than one). */

typedef struct slot {
    tg_tensor *param;
    tg_tensor *step;          /* f64 []: updates this parameter has had */
    tg_tensor *m, *v, *vmax;  /* Adam: exp_avg, exp_avg_sq, max_exp_avg_sq (AMSGrad);
                                 SGD: m is the momentum buffer; NULL where unused */
} slot;

struct tg_optim {
    tg_model *model;
    tg_optim_config cfg; /* with the defaults filled in; cfg.lr is the current lr */
    int nparams;
    slot *slots;
    int nstate;
    tg_tensor **state;   /* "optim/step" first, then per parameter in model order */
    char **names;
    tg_tensor *step;     /* "optim/step" */
};

/* ------------------------------------------------------------------ the kernels
 * One parameter's update, or a contiguous piece of it: n elements of type T, read into
 * double, computed as PyTorch computes them, written back as T. The macros below define
 * each kernel for float and double, with and without its optional buffer (momentum;
 * AMSGrad's maximum), so that the loop body has no branch, only selects on
 * loop-invariant values, and `omp simd` vectorises it (IEEE sqrt and division are exact
 * in either form: the bits are those of the scalar loop). */

typedef struct hyper {
    double lr, wd, momentum, dampening, beta1, beta2, eps;
    bool sgd;                   /* SGD, or Adam and AdamW */
    bool decoupled;             /* AdamW's weight decay */
    /* SGD's flags, 0 or 1, as doubles: gcc 12 vectorises no select on a bool */
    double nesterov;
    double first;               /* the momentum buffer is not there yet */
    double step_size, bc2_sqrt; /* Adam: lr / (1 - beta1^t), sqrt(1 - beta2^t) */
} hyper;

/* SGD (sgd.py):
 *   d_p = grad + wd * param                                   (if wd != 0)
 *   buf = d_p on its first step, else buf = momentum * buf + (1 - dampening) * d_p
 *   d_p = d_p + momentum * buf (Nesterov), or d_p = buf       (if momentum != 0)
 *   param = param - lr * d_p */
#define DEFINE_SGD(T, name, MOMENTUM)                                                     \
    static void name(const hyper *h, int64_t n, T *restrict p, const T *restrict g,       \
                     T *restrict buf)                                                     \
    {                                                                                     \
        const double lr = h->lr, wd = h->wd, mom = h->momentum, keep = 1 - h->dampening; \
        const double first = h->first, nesterov = h->nesterov;                            \
        _Pragma("omp simd")                                                               \
        for (int64_t j = 0; j < n; j++) {                                                 \
            double d = g[j];                                                              \
            d = wd != 0 ? d + wd * (double)p[j] : d;                                      \
            if (MOMENTUM) {                                                               \
                double later = (double)buf[j] * mom + keep * d;                           \
                T b = (T)(first != 0 ? d : later);                                        \
                double ahead = d + mom * (double)b;                                       \
                buf[j] = b;                                                               \
                d = nesterov != 0 ? ahead : (double)b;                                    \
            }                                                                             \
            p[j] = (T)((double)p[j] + -lr * d);                                           \
        }                                                                                 \
    }

/* Adam (adam.py) and AdamW (adamw.py):
 *   AdamW: param = param * (1 - lr * wd);  Adam: grad = grad + wd * param (if wd != 0)
 *   m = beta1 * m + (1 - beta1) * grad
 *   v = beta2 * v + (1 - beta2) * grad * grad
 *   vmax = max(vmax, v), and v below means vmax                    (AMSGrad)
 *   denom = sqrt(v) / sqrt(1 - beta2^t) + eps
 *   param = param - lr / (1 - beta1^t) * m / denom
 * PyTorch's addcdiv is self + value * t1 / t2, evaluated left to right. For Adam the
 * factor `shrink` is 1, which changes no bits. */
#define DEFINE_ADAM(T, name, AMSGRAD)                                                     \
    static void name(const hyper *h, int64_t n, T *restrict p, const T *restrict g,       \
                     T *restrict m, T *restrict v, T *restrict vmax)                      \
    {                                                                                     \
        const double b1 = h->beta1, b2 = h->beta2, eps = h->eps, bc2 = h->bc2_sqrt;      \
        const double wd = h->decoupled ? 0 : h->wd;                                       \
        const double shrink = h->decoupled ? 1 - h->lr * h->wd : 1;                       \
        const double neg_step = -h->step_size;                                            \
        _Pragma("omp simd")                                                               \
        for (int64_t j = 0; j < n; j++) {                                                 \
            double pj = (T)(p[j] * shrink), gj = g[j];                                    \
            gj = wd != 0 ? gj + wd * pj : gj;                                             \
            T mj = (T)((double)m[j] * b1 + (1 - b1) * gj);                                \
            T vj = (T)((double)v[j] * b2 + (1 - b2) * gj * gj);                           \
            m[j] = mj;                                                                    \
            v[j] = vj;                                                                    \
            if (AMSGRAD) {                                                                \
                T cur = vmax[j]; /* torch.maximum: NaN wins */                            \
                vj = (isnan(cur) || cur >= vj) ? cur : vj;                                \
                vmax[j] = vj;                                                             \
            }                                                                             \
            double denom = sqrt((double)vj) / bc2 + eps;                                  \
            p[j] = (T)(pj + neg_step * (double)mj / denom);                               \
        }                                                                                 \
    }

DEFINE_SGD(float, sgd_f32, false)
DEFINE_SGD(double, sgd_f64, false)
DEFINE_SGD(float, sgd_momentum_f32, true)
DEFINE_SGD(double, sgd_momentum_f64, true)
DEFINE_ADAM(float, adam_f32, false)
DEFINE_ADAM(double, adam_f64, false)
DEFINE_ADAM(float, adam_amsgrad_f32, true)
DEFINE_ADAM(double, adam_amsgrad_f64, true)

/* ------------------------------------------------------------------ configuration */

static const char *kind_name(tg_optim_kind k)
{
    return k == TG_SGD ? "SGD" : k == TG_ADAM ? "Adam" : "AdamW";
}

/* The defaults filled in, then PyTorch's checks (and a few of its TypeErrors: a
 * setting the optimiser does not have must be left at 0). */
static tg_status check_config(const tg_optim_config *in, tg_optim_config *c)
{
    static const char fn[] = "tg_optim_new";
    *c = *in;
    if (c->kind != TG_SGD && c->kind != TG_ADAM && c->kind != TG_ADAMW)
        return tg_set_error_in(TG_ERR_ARG, fn, "kind is %d; expected TG_SGD, TG_ADAM or TG_ADAMW",
                            (int)c->kind);
    if (!(c->lr >= 0) || isinf(c->lr))
        return tg_set_error_in(TG_ERR_ARG, fn, "lr is %g; expected a finite value >= 0", c->lr);
    if (!(c->weight_decay >= 0) || isinf(c->weight_decay))
        return tg_set_error_in(TG_ERR_ARG, fn, "weight_decay is %g; expected a finite value >= 0",
                            c->weight_decay);
    if (c->kind == TG_SGD) {
        if (c->beta1 != 0 || c->beta2 != 0 || c->eps != 0 || c->amsgrad)
            return tg_set_error_in(TG_ERR_ARG, fn, "beta1, beta2, eps and amsgrad are Adam's "
                                "settings; SGD expects them 0");
        if (!(c->momentum >= 0) || isinf(c->momentum))
            return tg_set_error_in(TG_ERR_ARG, fn, "momentum is %g; expected a finite value >= 0",
                                c->momentum);
        if (!isfinite(c->dampening))
            return tg_set_error_in(TG_ERR_ARG, fn, "dampening is %g; expected a finite value",
                                c->dampening);
        if (c->nesterov && (c->momentum <= 0 || c->dampening != 0))
            return tg_set_error_in(TG_ERR_ARG, fn, "Nesterov momentum requires momentum > 0 and "
                                "dampening 0; found momentum %g, dampening %g",
                                c->momentum, c->dampening);
        return TG_OK;
    }
    if (c->momentum != 0 || c->dampening != 0 || c->nesterov)
        return tg_set_error_in(TG_ERR_ARG, fn, "momentum, dampening and nesterov are SGD's "
                            "settings; %s expects them 0", kind_name(c->kind));
    if (c->beta1 == 0)
        c->beta1 = 0.9;
    if (c->beta2 == 0)
        c->beta2 = 0.999;
    if (c->eps == 0)
        c->eps = 1e-8;
    if (!(c->beta1 >= 0 && c->beta1 < 1))
        return tg_set_error_in(TG_ERR_ARG, fn, "beta1 is %g; expected a value in [0, 1)",
                            c->beta1);
    if (!(c->beta2 >= 0 && c->beta2 < 1))
        return tg_set_error_in(TG_ERR_ARG, fn, "beta2 is %g; expected a value in [0, 1)",
                            c->beta2);
    if (!(c->eps > 0) || isinf(c->eps))
        return tg_set_error_in(TG_ERR_ARG, fn, "eps is %g; expected a finite value > 0 "
                            "(0 means the default 1e-8)", c->eps);
    return TG_OK;
}

/* ------------------------------------------------------------------ creation */

/* A heap copy of prefix + suffix ("fc/weight" + "/exp_avg"), or NULL. */
static char *join_name(const char *prefix, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(suffix);
    char *s = tg_mem_alloc(a + b + 1, 1);
    if (s) {
        memcpy(s, prefix, a);
        memcpy(s + a, suffix, b + 1);
    }
    return s;
}

/* Appends a zero tensor named prefix + suffix to the state; NULL on failure. */
static tg_tensor *add_state(tg_optim *o, const char *prefix, const char *suffix, tg_dtype dt,
                            int ndim, const int64_t *shape)
{
    char *name = join_name(prefix, suffix);
    tg_tensor *t = name ? tg_tensor_zeros(NULL, dt, ndim, shape) : NULL;
    if (!t) {
        tg_mem_free(name);
        return NULL;
    }
    o->names[o->nstate] = name;
    o->state[o->nstate++] = t;
    return t;
}

/* A state name must not repeat another or one of the model's (a checkpoint holds both). */
static tg_status check_names(const tg_optim *o)
{
    for (int i = 0; i < o->nstate; i++) {
        if (tg_model_find(o->model, o->names[i]))
            return tg_set_error_in(TG_ERR_ARG, "tg_optim_new", "state '%s' has the name of one of "
                                "the model's tensors", o->names[i]);
        for (int j = 0; j < i; j++)
            if (strcmp(o->names[i], o->names[j]) == 0)
                return tg_set_error_in(TG_ERR_ARG, "tg_optim_new", "two state tensors would be "
                                    "named '%s' (rename the parameter)", o->names[i]);
    }
    return TG_OK;
}

tg_optim *tg_optim_new(tg_model *m, const tg_optim_config *cfg)
{
    if (!m || !cfg) {
        tg_set_error_in(TG_ERR_ARG, "tg_optim_new", "the %s is NULL", m ? "config" : "model");
        return NULL;
    }
    tg_optim_config c;
    if (check_config(cfg, &c) != TG_OK)
        return NULL;
    int np = tg_model_num_params(m);
    for (int i = 0; i < np; i++) {
        const tg_tensor *p = tg_model_param(m, i);
        if (!p || (p->dtype != TG_F32 && p->dtype != TG_F64) || !tg_tensor_is_contiguous(p)) {
            tg_set_error_in(TG_ERR_ARG, "tg_optim_new", "parameter '%s' is %s; expected a contiguous "
                         "f32 or f64 tensor", tg_model_param_name(m, i),
                         p ? tg_dtype_name(p->dtype) : "NULL");
            return NULL;
        }
    }

    tg_optim *o = tg_mem_alloc(sizeof *o, _Alignof(tg_optim));
    if (!o)
        return NULL;
    *o = (tg_optim){.model = m, .cfg = c, .nparams = np};
    int per = 1 + (c.kind == TG_SGD ? (c.momentum != 0) : 2 + c.amsgrad);
    int cap = 1 + np * per;
    o->slots = tg_mem_alloc((size_t)(np ? np : 1) * sizeof *o->slots, _Alignof(slot));
    o->state = tg_mem_alloc((size_t)cap * sizeof *o->state, _Alignof(tg_tensor *));
    o->names = tg_mem_alloc((size_t)cap * sizeof *o->names, _Alignof(char *));
    if (!o->slots || !o->state || !o->names)
        goto fail;
    o->step = add_state(o, "optim/step", "", TG_F64, 0, NULL);
    if (!o->step)
        goto fail;
    for (int i = 0; i < np; i++) {
        tg_tensor *p = tg_model_param(m, i);
        const char *pn = tg_model_param_name(m, i);
        slot *s = &o->slots[i];
        *s = (slot){.param = p};
        if (!(s->step = add_state(o, pn, "/step", TG_F64, 0, NULL)))
            goto fail;
        tg_dtype dt = p->dtype;
        if (c.kind == TG_SGD) {
            if (c.momentum != 0 &&
                !(s->m = add_state(o, pn, "/momentum_buffer", dt, p->ndim, p->shape)))
                goto fail;
            continue;
        }
        if (!(s->m = add_state(o, pn, "/exp_avg", dt, p->ndim, p->shape)) ||
            !(s->v = add_state(o, pn, "/exp_avg_sq", dt, p->ndim, p->shape)) ||
            (c.amsgrad && !(s->vmax = add_state(o, pn, "/max_exp_avg_sq", dt, p->ndim, p->shape))))
            goto fail;
    }
    if (check_names(o) != TG_OK)
        goto fail;
    return o;
fail:
    tg_optim_free(o);
    return NULL;
}

void tg_optim_free(tg_optim *o)
{
    if (!o)
        return;
    for (int i = 0; i < o->nstate; i++) {
        tg_tensor_free(o->state[i]);
        tg_mem_free(o->names[i]);
    }
    tg_mem_free(o->state);
    tg_mem_free(o->names);
    tg_mem_free(o->slots);
    tg_mem_free(o);
}

/* ------------------------------------------------------------------ the step */

/* element `at` of t's (contiguous) data, or NULL for no tensor */
static void *at(const tg_tensor *t, int64_t i)
{
    return t ? (char *)tg_tensor_data(t) + (size_t)i * tg_dtype_size(t->dtype) : NULL;
}

/* elements [lo, hi) of one parameter, with h ready for it */
static void update_range(const slot *s, const tg_tensor *grad, const hyper *h, int64_t lo,
                         int64_t hi)
{
    int64_t n = hi - lo;
    void *p = at(s->param, lo), *g = at(grad, lo), *m = at(s->m, lo), *v = at(s->v, lo);
    void *vmax = at(s->vmax, lo);
    bool f32 = s->param->dtype == TG_F32;
    if (h->sgd && !m) {
        if (f32)
            sgd_f32(h, n, p, g, m);
        else
            sgd_f64(h, n, p, g, m);
    } else if (h->sgd) {
        if (f32)
            sgd_momentum_f32(h, n, p, g, m);
        else
            sgd_momentum_f64(h, n, p, g, m);
    } else if (!vmax) {
        if (f32)
            adam_f32(h, n, p, g, m, v, vmax);
        else
            adam_f64(h, n, p, g, m, v, vmax);
    } else {
        if (f32)
            adam_amsgrad_f32(h, n, p, g, m, v, vmax);
        else
            adam_amsgrad_f64(h, n, p, g, m, v, vmax);
    }
}

static void update(const slot *s, const tg_tensor *grad, hyper *h)
{
    double *count = tg_tensor_data(s->step);
    double t = *count + 1; /* PyTorch: step_t += 1 before the update */
    h->first = *count == 0;
    /* Python's float ** float is C's pow */
    h->step_size = h->lr / (1 - pow(h->beta1, t));
    h->bc2_sqrt = sqrt(1 - pow(h->beta2, t));
    int64_t n = tg_tensor_numel(s->param);
    if (tg_parallel_worth(n)) {
#pragma omp parallel
        {
            /* one contiguous piece a thread; elementwise, so any split gives the same bits */
            int64_t nt = omp_get_num_threads(), id = omp_get_thread_num();
            update_range(s, grad, h, n * id / nt, n * (id + 1) / nt);
        }
    } else {
        update_range(s, grad, h, 0, n);
    }
    *count = t;
    /* written through raw pointers: counted for the tape's in-place check */
    tg_tensor *written[] = {s->param, s->step, s->m, s->v, s->vmax};
    for (size_t i = 0; i < sizeof written / sizeof *written; i++)
        if (written[i])
            tg_tensor_bump_version(written[i]);
}

tg_status tg_optim_step(tg_optim *o)
{
    static const char fn[] = "tg_optim_step";
    if (!o)
        return tg_set_error_in(TG_ERR_ARG, fn, "the optimiser is NULL");
    const tg_optim_config *c = &o->cfg;
    if (!(c->lr >= 0) || isinf(c->lr))
        return tg_set_error_in(TG_ERR_ARG, fn, "lr is %g; expected a finite value >= 0 "
                            "(set by tg_optim_set_lr)", c->lr);
    if (tg_model_num_params(o->model) != o->nparams)
        return tg_set_error_in(TG_ERR_STATE, fn, "the model has %d parameters; it had %d at "
                            "tg_optim_new", tg_model_num_params(o->model), o->nparams);
    /* everything is checked before anything changes */
    for (int i = 0; i < o->nparams; i++) {
        const slot *s = &o->slots[i];
        if (tg_model_param(o->model, i) != s->param)
            return tg_set_error_in(TG_ERR_STATE, fn, "parameter %d ('%s') is not the tensor it was "
                                "at tg_optim_new", i, tg_model_param_name(o->model, i));
        const tg_tensor *g = tg_grad(s->param);
        if (g && (g->dtype != s->param->dtype || !tg_tensor_same_shape(g, s->param) ||
                  !tg_tensor_is_contiguous(g)))
            return tg_set_error_in(TG_ERR_SHAPE, fn, "the gradient of '%s' is not a contiguous "
                                "tensor of its parameter's shape and dtype",
                                tg_model_param_name(o->model, i));
    }
    hyper h = {.lr = c->lr, .wd = c->weight_decay, .momentum = c->momentum,
               .dampening = c->dampening, .beta1 = c->beta1, .beta2 = c->beta2, .eps = c->eps,
               .sgd = c->kind == TG_SGD, .nesterov = c->nesterov,
               .decoupled = c->kind == TG_ADAMW};
    for (int i = 0; i < o->nparams; i++) {
        const tg_tensor *g = tg_grad(o->slots[i].param);
        if (g) /* no gradient: skipped, as PyTorch skips p.grad is None */
            update(&o->slots[i], g, &h);
    }
    *(double *)tg_tensor_data(o->step) += 1;
    tg_tensor_bump_version(o->step);
    return TG_OK;
}

/* ------------------------------------------------------------------ accessors */

void tg_optim_set_lr(tg_optim *o, double lr)
{
    if (o)
        o->cfg.lr = lr; /* checked by the next tg_optim_step */
}

double tg_optim_lr(const tg_optim *o) { return o ? o->cfg.lr : NAN; }

const tg_optim_config *tg_optim_config_of(const tg_optim *o) { return o ? &o->cfg : NULL; }

int tg_optim_num_state(const tg_optim *o) { return o ? o->nstate : 0; }

const char *tg_optim_state_name(const tg_optim *o, int i)
{
    return o && i >= 0 && i < o->nstate ? o->names[i] : NULL;
}

tg_tensor *tg_optim_state(const tg_optim *o, int i)
{
    return o && i >= 0 && i < o->nstate ? o->state[i] : NULL;
}
