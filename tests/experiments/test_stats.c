/* tests/experiments/test_stats.c — the statistics `study report` bases its verdicts on
 * (experiments/study/stats.c), against values known independently of this code: the
 * t table's two-sided 5% and 1% critical values, closed forms of the t distribution at
 * 1 and 2 degrees of freedom, and Welch's test worked by hand on crafted seeds. */
#include "check_util.h"

#include "study.h"

#include <math.h>

/* t-table critical values: P(|T| >= t) = p exactly (to the table's 3 decimals) */
START_TEST(test_t_table)
{
    static const struct {
        double df, t, p;
    } table[] = {
        {1, 12.706, 0.05}, {2, 4.303, 0.05}, {3, 3.182, 0.05}, {4, 2.776, 0.05}, {10, 2.228, 0.05},
        {30, 2.042, 0.05}, {1, 63.657, 0.01}, {4, 4.604, 0.01}, {10, 3.169, 0.01}, {120, 1.980, 0.05},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        double p = study_t_two_sided_p(table[i].t, table[i].df);
        ck_assert_msg(fabs(p - table[i].p) < 2e-4 * (table[i].p / 0.01), "df %g t %g: p %.6f, table %g",
                      table[i].df, table[i].t, p, table[i].p);
        /* the sign of t does not matter for a two-sided p */
        ck_assert_double_eq_tol(study_t_two_sided_p(-table[i].t, table[i].df), p, 1e-15);
    }
}
END_TEST

/* closed forms: df = 1 is Cauchy, p = 1 - 2 atan(t) / pi; df = 2: p = 1 - t / sqrt(t^2 + 2) */
START_TEST(test_t_closed_forms)
{
    for (double t = 0; t < 50; t += 0.37) {
        ck_assert_double_eq_tol(study_t_two_sided_p(t, 1), 1 - 2 * atan(t) / acos(-1.0), 1e-12);
        ck_assert_double_eq_tol(study_t_two_sided_p(t, 2), 1 - t / sqrt(t * t + 2), 1e-12);
    }
    /* a non-integer df lies between its neighbours */
    double p25 = study_t_two_sided_p(3, 2.5);
    ck_assert(p25 < study_t_two_sided_p(3, 2) && p25 > study_t_two_sided_p(3, 3));
    ck_assert_double_eq(study_t_two_sided_p(INFINITY, 3), 0);
    ck_assert(isnan(study_t_two_sided_p(NAN, 3)));
    ck_assert(isnan(study_t_two_sided_p(1, 0)));
    /* I_x(a, b) at its ends and a symmetric point */
    ck_assert_double_eq(study_incomplete_beta(2, 3, 0), 0);
    ck_assert_double_eq(study_incomplete_beta(2, 3, 1), 1);
    ck_assert_double_eq_tol(study_incomplete_beta(4, 4, 0.5), 0.5, 1e-14);
    ck_assert(isnan(study_incomplete_beta(0, 1, 0.5)));
}
END_TEST

START_TEST(test_mean_std)
{
    double v[] = {0.50, 0.52, 0.54}, m, s;
    study_mean_std(v, 3, &m, &s);
    ck_assert_double_eq_tol(m, 0.52, 1e-15);
    ck_assert_double_eq_tol(s, 0.02, 1e-15);
    study_mean_std(v, 1, &m, &s);
    ck_assert_double_eq(m, 0.50);
    ck_assert(isnan(s));
    study_mean_std(v, 0, &m, &s);
    ck_assert(isnan(m) && isnan(s));
}
END_TEST

/* base {50, 52, 54}: mean 52, sd 2; other {60, 61, 62}: mean 61, sd 1.
 * se = sqrt(4/3 + 1/3) = sqrt(5/3); t = 9 / sqrt(5/3) = 6.97137;
 * df = (5/3)^2 / ((4/3)^2 / 2 + (1/3)^2 / 2) = (25/9) / (17/18) = 50/17 = 2.941176;
 * p from the t distribution at that df (bracketed by df 2 and 3 below). */
START_TEST(test_welch_by_hand)
{
    double base[] = {50, 52, 54}, other[] = {60, 61, 62};
    study_welch w;
    ck_assert(study_welch_test(base, 3, other, 3, &w));
    ck_assert_double_eq_tol(w.diff, 9, 1e-12);
    ck_assert_double_eq_tol(w.se, sqrt(5.0 / 3), 1e-12);
    ck_assert_double_eq_tol(w.t, 9 / sqrt(5.0 / 3), 1e-12);
    ck_assert_double_eq_tol(w.df, 50.0 / 17, 1e-12);
    ck_assert(w.p > study_t_two_sided_p(w.t, 3) && w.p < study_t_two_sided_p(w.t, 2));
    ck_assert(w.p < 0.01);
    ck_assert_int_eq(study_judge(&w, +1), STUDY_REPRODUCED);
    ck_assert_int_eq(study_judge(&w, -1), STUDY_CONTRADICTED);
    ck_assert_int_eq(study_judge(&w, 0), STUDY_UNTESTED);
    /* swapped sides: the same test, the other sign */
    study_welch s;
    ck_assert(study_welch_test(other, 3, base, 3, &s));
    ck_assert_double_eq_tol(s.t, -w.t, 1e-12);
    ck_assert_double_eq_tol(s.p, w.p, 1e-15);
    ck_assert_int_eq(study_judge(&s, -1), STUDY_REPRODUCED);
}
END_TEST

/* overlapping seeds: {70, 78, 80} vs {72, 75, 77}; diff 74.667 - 76 = -1.333 with sds
 * 5.292 and 2.517: t = -1.333 / sqrt(28/3 + 6.333/3) = -0.3944, p far above 0.05 */
START_TEST(test_welch_noise)
{
    double base[] = {70, 78, 80}, other[] = {72, 75, 77};
    study_welch w;
    ck_assert(study_welch_test(base, 3, other, 3, &w));
    ck_assert_double_eq_tol(w.diff, -4.0 / 3, 1e-12);
    ck_assert_double_eq_tol(w.t, (-4.0 / 3) / sqrt((28.0 + 19.0 / 3) / 3), 1e-12);
    ck_assert(w.p > 0.5);
    ck_assert_int_eq(study_judge(&w, +1), STUDY_NOT_DISTINGUISHABLE);
    ck_assert_int_eq(study_judge(&w, -1), STUDY_NOT_DISTINGUISHABLE);
}
END_TEST

START_TEST(test_welch_edges)
{
    double a[] = {10, 10, 10}, b[] = {20, 20, 20}, c[] = {1, 2}, one[] = {5};
    study_welch w;
    /* no spread on either side, different means: certain */
    ck_assert(study_welch_test(a, 3, b, 3, &w));
    ck_assert(isinf(w.t) && w.t > 0);
    ck_assert_double_eq(w.p, 0);
    ck_assert_int_eq(study_judge(&w, +1), STUDY_REPRODUCED);
    /* no spread, equal means: no evidence */
    ck_assert(study_welch_test(a, 3, a, 3, &w));
    ck_assert_double_eq(w.p, 1);
    ck_assert_int_eq(study_judge(&w, +1), STUDY_NOT_DISTINGUISHABLE);
    /* one side without spread: the other's alone sets the error, df = n - 1 */
    ck_assert(study_welch_test(a, 3, c, 2, &w));
    ck_assert_double_eq_tol(w.df, 1, 1e-12);
    ck_assert_double_eq_tol(w.t, (1.5 - 10) / sqrt(0.5 / 2), 1e-12);
    /* one seed: no test */
    ck_assert(!study_welch_test(one, 1, b, 3, &w));
    ck_assert_double_eq_tol(w.diff, 15, 1e-12);
    ck_assert(isnan(w.p));
    ck_assert_int_eq(study_judge(&w, +1), STUDY_UNTESTED);
    double nan_seed[] = {1, NAN};
    ck_assert(!study_welch_test(nan_seed, 2, b, 3, &w));
}
END_TEST

/* n = (1.96 + 0.8416)^2 (sd0^2 + sd1^2) / delta^2 = 7.849 * 2 = 15.7 -> 16 seeds a side
 * for a difference of one standard deviation */
START_TEST(test_seeds_needed)
{
    ck_assert_int_eq(study_seeds_needed(1, 1, 1), 16);
    ck_assert_int_eq(study_seeds_needed(1, 1, -1), 16);
    ck_assert_int_eq(study_seeds_needed(1, 1, 2), 4);
    ck_assert_int_eq(study_seeds_needed(0.1, 0.1, 5), 2); /* at least 2 */
    ck_assert_int_eq(study_seeds_needed(1, 1, 0), -1);
    ck_assert_int_eq(study_seeds_needed(NAN, 1, 1), -1);
    ck_assert_int_eq(study_seeds_needed(1000, 1000, 1e-3), -1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("experiments/stats");
    TCase *tc = tt_tcase("t distribution");
    tcase_add_test(tc, test_t_table);
    tcase_add_test(tc, test_t_closed_forms);
    suite_add_tcase(s, tc);
    tc = tt_tcase("welch");
    tcase_add_test(tc, test_mean_std);
    tcase_add_test(tc, test_welch_by_hand);
    tcase_add_test(tc, test_welch_noise);
    tcase_add_test(tc, test_welch_edges);
    tcase_add_test(tc, test_seeds_needed);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
