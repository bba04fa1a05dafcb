/* Learning-rate schedules: constant; step (lr0 0.1, step 3, gamma 0.5) over epochs 0..10;
 * cosine with the study's values (lr0 1e-3, eta_min 2e-5, T_max 100), against the
 * closed form computed here and against PyTorch's CosineAnnealingLR, both the closed
 * form the coursework's framework used (step(epoch=e)) and the recursive one of
 * step() once per epoch (tests/fixtures/optim_reference.inc); bad schedules. */
#include "check_util.h"

static const char fixture_text[] =
#include "../fixtures/optim_reference.inc"
    ;

/* PyTorch's lr for each epoch 0..100 of the named sequence ("lr <name> <epoch> <value>") */
static int pytorch_lrs(const char *name, double *out, int max)
{
    int n = 0;
    for (const char *s = fixture_text; (s = strstr(s, "lr ")) != NULL; s++) {
        if (s != fixture_text && s[-1] != '\n')
            continue;
        char seq[32];
        int epoch;
        double v;
        if (sscanf(s, "lr %31s %d %lf", seq, &epoch, &v) != 3 || strcmp(seq, name) != 0)
            continue;
        ck_assert_int_eq(epoch, n); /* in order, none missing */
        ck_assert(n < max);
        out[n++] = v;
    }
    return n;
}

static const tg_lr_schedule study = {.kind = TG_LR_COSINE, .lr0 = 1e-3, .eta_min = 2e-5,
                                     .t_max = 100};

static double rel(double a, double b) { return fabs(a - b) / fabs(b); }

START_TEST(test_constant)
{
    tg_lr_schedule s = {.kind = TG_LR_CONSTANT, .lr0 = 0.05};
    for (int e = 0; e < 200; e += 7)
        ck_assert_double_eq(tg_lr_at(&s, e), 0.05);
}
END_TEST

START_TEST(test_step)
{
    tg_lr_schedule s = {.kind = TG_LR_STEP, .lr0 = 0.1, .step_size = 3, .gamma = 0.5};
    const double want[11] = {0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025, 0.025, 0.0125, 0.0125};
    double torch[16];
    ck_assert_int_eq(pytorch_lrs("step_recursive", torch, 16), 11);
    for (int e = 0; e <= 10; e++) {
        ck_assert_double_eq(tg_lr_at(&s, e), want[e]);
        ck_assert_double_eq(tg_lr_at(&s, e), torch[e]); /* gamma 0.5: exact either way */
    }
}
END_TEST

/* epochs 0, 1, 50, 99, 100 against the formula, written out here */
START_TEST(test_cosine_study_values)
{
    const double pi = 3.14159265358979323846;
    const int epochs[] = {0, 1, 50, 99, 100};
    for (int i = 0; i < 5; i++) {
        int e = epochs[i];
        double want = 2e-5 + (1e-3 - 2e-5) * (1 + cos(pi * e / 100)) / 2;
        ck_assert_double_eq_tol(tg_lr_at(&study, e), want, 1e-12 * want);
    }
    ck_assert_double_eq(tg_lr_at(&study, 0), 1e-3);           /* epoch 0 trains at lr0 */
    ck_assert_double_eq_tol(tg_lr_at(&study, 50), 5.1e-4, 1e-18); /* halfway: the mean */
    ck_assert_double_eq(tg_lr_at(&study, 100), 2e-5);         /* T_max: eta_min exactly */
    ck_assert(tg_lr_at(&study, 99) > 2e-5 && tg_lr_at(&study, 99) < 2.1e-5);
    /* beyond T_max the cosine rises again, as PyTorch's does */
    ck_assert_double_eq_tol(tg_lr_at(&study, 150), tg_lr_at(&study, 50), 1e-18);
    for (int e = 1; e <= 100; e++)
        ck_assert(tg_lr_at(&study, e) < tg_lr_at(&study, e - 1));
}
END_TEST

/* PyTorch's closed form (step(epoch=e), what the coursework's framework called): the
 * same operations, the same doubles. Its recursive form (step() once per epoch) drifts
 * by rounding only: 5e-16 relative at most here, far below 1e-12 (see optim/schedule.c). */
START_TEST(test_cosine_against_pytorch)
{
    double closed[128], recursive[128];
    ck_assert_int_eq(pytorch_lrs("cosine_closed", closed, 128), 101);
    ck_assert_int_eq(pytorch_lrs("cosine_recursive", recursive, 128), 101);
    double worst = 0;
    for (int e = 0; e <= 100; e++) {
        double lr = tg_lr_at(&study, e);
        ck_assert_msg(lr == closed[e], "epoch %d: %.17g, PyTorch %.17g", e, lr, closed[e]);
        ck_assert_msg(rel(lr, recursive[e]) <= 1e-12, "epoch %d: %.17g, PyTorch (recursive) %.17g",
                      e, lr, recursive[e]);
        worst = fmax(worst, rel(lr, recursive[e]));
    }
    ck_assert(worst > 0);      /* the two forms do differ in the last bits... */
    ck_assert(worst < 1e-15);  /* ...and only there */
}
END_TEST

START_TEST(test_bad_schedules)
{
    ck_assert(isnan(tg_lr_at(NULL, 0)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "the schedule is NULL");
    ck_assert(isnan(tg_lr_at(&study, -1)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "epoch is -1; expected >= 0");
    tg_lr_schedule s = study;
    s.t_max = 0;
    ck_assert(isnan(tg_lr_at(&s, 3)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "t_max is 0; expected > 0");
    s = (tg_lr_schedule){.kind = TG_LR_STEP, .lr0 = 0.1, .gamma = 0.5};
    ck_assert(isnan(tg_lr_at(&s, 3)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "step_size is 0; expected > 0");
    s = (tg_lr_schedule){.kind = TG_LR_CONSTANT, .lr0 = -1};
    ck_assert(isnan(tg_lr_at(&s, 0)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "lr0 is -1; expected a finite value >= 0");
    s = (tg_lr_schedule){.kind = (tg_lr_kind)9, .lr0 = 0.1};
    ck_assert(isnan(tg_lr_at(&s, 0)));
    tt_expect_last(TG_ERR_ARG, "tg_lr_at", "kind is 9; expected TG_LR_CONSTANT, TG_LR_STEP or");
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
}
END_TEST

static Suite *schedule_suite(void)
{
    Suite *s = suite_create("schedule");
    TCase *tc = tt_tcase("schedule");
    tcase_add_test(tc, test_constant);
    tcase_add_test(tc, test_step);
    tcase_add_test(tc, test_cosine_study_values);
    tcase_add_test(tc, test_cosine_against_pytorch);
    tcase_add_test(tc, test_bad_schedules);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tt_run(schedule_suite()); }
