/* optim/schedule.c — learning rate as a function of the epoch, in closed form.
 *
 * Each schedule is the closed form of a PyTorch scheduler, with the same operations in
 * the same order (so the same doubles):
 *   step:   StepLR._get_closed_form_lr, lr0 * gamma ** (epoch // step_size)
 *   cosine: CosineAnnealingLR._get_closed_form_lr,
 *           eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / t_max)) / 2
 *
 * Closed form versus PyTorch's recursive form. Calling scheduler.step() once per epoch
 * makes PyTorch update the lr recursively from the previous one (CosineAnnealingLR:
 * lr_e = (1 + cos(pi e/T)) / (1 + cos(pi (e-1)/T)) * (lr_{e-1} - eta_min) + eta_min),
 * which is the same function up to rounding: for lr0 1e-3, eta_min 2e-5, T 100 the two
 * differ by at most 5e-16 relative over epochs 0..100 (largest at epoch 55), and both
 * end at exactly eta_min at epoch 100; for StepLR with gamma 0.5 they are identical.
 * The coursework's framework (mlpractical's ExperimentBuilder) calls
 * scheduler.step(epoch=current_epoch) before every optimizer.step(), and given an epoch
 * PyTorch evaluates _get_closed_form_lr: so the original trained with exactly the closed
 * form at the 0-based epoch, which is what tg_lr_at returns. tests/optim/test_schedule.c
 * checks it against both sequences (tests/fixtures/optim_reference.txt).
 */
#include "tapegrad/optim.h"

#include <math.h>

#define PI 3.14159265358979323846 /* Python's math.pi is the same double */

/* NAN, after the message "tg_lr_at: <what> is <found>; expected <expected>" */
static double fail(const char *what, double found, const char *expected)
{
    tg_set_error_in(TG_ERR_ARG, "tg_lr_at", "%s is %g; expected %s", what, found, expected);
    return NAN;
}

double tg_lr_at(const tg_lr_schedule *s, int epoch)
{
    if (!s) {
        tg_set_error_in(TG_ERR_ARG, "tg_lr_at", "the schedule is NULL");
        return NAN;
    }
    if (epoch < 0)
        return fail("epoch", epoch, ">= 0");
    if (!(s->lr0 >= 0) || isinf(s->lr0))
        return fail("lr0", s->lr0, "a finite value >= 0");
    switch (s->kind) {
    case TG_LR_CONSTANT:
        return s->lr0;
    case TG_LR_STEP:
        if (s->step_size <= 0)
            return fail("step_size", s->step_size, "> 0");
        return s->lr0 * pow(s->gamma, (double)(epoch / s->step_size));
    case TG_LR_COSINE:
        if (s->t_max <= 0)
            return fail("t_max", s->t_max, "> 0");
        return s->eta_min + (s->lr0 - s->eta_min) * (1 + cos(PI * epoch / s->t_max)) / 2;
    }
    tg_set_error_in(TG_ERR_ARG, "tg_lr_at", "kind is %d; expected TG_LR_CONSTANT, TG_LR_STEP or "
                 "TG_LR_COSINE", (int)s->kind);
    return NAN;
}
