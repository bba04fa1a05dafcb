/* tapegrad/optim.h — optimisers over a model's parameters, and learning-rate schedules.
 *
 *   tg_optim *opt = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3,
 *                                                      .weight_decay = 5e-4});
 *   tg_lr_schedule sched = {.kind = TG_LR_COSINE, .lr0 = 1e-3, .eta_min = 2e-5, .t_max = 100};
 *   for (int epoch = 0; epoch < 100; epoch++) {
 *       tg_optim_set_lr(opt, tg_lr_at(&sched, epoch));    // once per epoch, as the original
 *       for (each batch) { ...forward, tg_backward...; tg_optim_step(opt); tg_model_zero_grad(m); }
 *   }
 *
 * The update rules are PyTorch's (torch.optim.SGD, Adam, AdamW of 1.13) step for step,
 * so that a run here and there can be compared; the state (moments, momentum buffers,
 * step count) is a list of named tensors that checkpoints save and restore.
 */
#ifndef TAPEGRAD_OPTIM_H
#define TAPEGRAD_OPTIM_H

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum tg_optim_kind {
    TG_SGD = 0, /* momentum, dampening, Nesterov, coupled weight decay */
    TG_ADAM,    /* coupled L2 weight decay (added to the gradient), AMSGrad */
    TG_ADAMW    /* decoupled weight decay (p -= lr * wd * p) */
} tg_optim_kind;

typedef struct tg_optim_config {
    tg_optim_kind kind;
    double lr;
    /* 0 (none) unless set, for every kind. PyTorch's AdamW defaults to 0.01 and its
     * Adam and SGD to 0; here a field left out of the initialiser means "none" for all
     * three, since 0 is also the value most runs set on purpose and so cannot stand for
     * a default. For PyTorch's AdamW, set .weight_decay = 0.01. */
    double weight_decay;
    double momentum, dampening; /* SGD */
    bool nesterov;              /* SGD */
    double beta1, beta2, eps;   /* Adam/AdamW; 0 means the defaults 0.9, 0.999, 1e-8 */
    bool amsgrad;               /* Adam/AdamW */
} tg_optim_config;

typedef struct tg_optim tg_optim;

/* NULL (and tg_last_error) on a bad configuration (negative lr, betas outside [0,1),
 * Nesterov without momentum, ...). The optimiser refers to m's parameters; free it
 * before the model. */
tg_optim *tg_optim_new(tg_model *m, const tg_optim_config *cfg);
void tg_optim_free(tg_optim *o); /* with its state; NULL is ignored */
/* One update of every parameter that has a gradient (parameters without one are
 * skipped, as PyTorch skips p.grad is None). */
tg_status tg_optim_step(tg_optim *o);
/* The learning rate the next steps use (a schedule sets it once per epoch). */
void tg_optim_set_lr(tg_optim *o, double lr);
double tg_optim_lr(const tg_optim *o);
const tg_optim_config *tg_optim_config_of(const tg_optim *o); /* its settings, lr as last set */

/* The state as named tensors ("<param name>/exp_avg", ".../exp_avg_sq",
 * ".../max_exp_avg_sq", ".../momentum_buffer", and "optim/step" (f64 []) ), all
 * allocated by tg_optim_new so that a checkpoint can be loaded into them. Each
 * parameter also has ".../step" (f64 []), the updates it has had: PyTorch counts steps
 * per parameter (one without a gradient is skipped and its count stays) and Adam's bias
 * correction uses that count. "optim/step" counts tg_optim_step calls. */
int tg_optim_num_state(const tg_optim *o);
const char *tg_optim_state_name(const tg_optim *o, int i);
tg_tensor *tg_optim_state(const tg_optim *o, int i);

/* ------------------------------------------------------------------ schedules */

typedef enum tg_lr_kind {
    TG_LR_CONSTANT = 0,
    TG_LR_STEP,   /* lr0 * gamma^(floor(epoch / step_size)) */
    TG_LR_COSINE  /* eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / t_max)) / 2 */
} tg_lr_kind;

typedef struct tg_lr_schedule {
    tg_lr_kind kind;
    double lr0;
    double eta_min;  /* cosine */
    int t_max;       /* cosine: epochs */
    int step_size;   /* step */
    double gamma;    /* step */
} tg_lr_schedule;

/* The learning rate for epoch e (0-based), in closed form. */
double tg_lr_at(const tg_lr_schedule *s, int epoch);

#ifdef __cplusplus
}
#endif
#endif
