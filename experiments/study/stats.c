/* experiments/study/stats.c — whether a difference between configurations exceeds the
 * seed-to-seed noise: means, sample standard deviations, Welch's t-test and the number
 * of seeds a difference would need.
 *
 *   study_welch w;
 *   if (study_welch_test(base, nbase, other, nother, &w))
 *       printf("diff %.3f, t = %.2f on %.1f df, p = %.3f\n", w.diff, w.t, w.df, w.p);
 *
 * Welch's test rather than Student's because the configurations' spreads differ by
 * orders of magnitude (a network stuck at chance has almost none); rather than a
 * bootstrap because with 3 seeds a side a bootstrap has only 10 distinct resamples. The
 * p-value needs Student's t distribution at a non-integer number of degrees of freedom:
 * its CDF is the regularised incomplete beta function, evaluated here by its continued
 * fraction (Lentz's method), accurate to ~1e-12 — far below what a verdict needs.
 */
#include "study.h"

#include <float.h>
#include <math.h>

void study_mean_std(const double *v, int n, double *mean, double *sd)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    double m = n > 0 ? s / n : NAN;
    double q = 0;
    for (int i = 0; i < n; i++)
        q += (v[i] - m) * (v[i] - m);
    *mean = m;
    *sd = n > 1 ? sqrt(q / (n - 1)) : NAN;
}

/* The continued fraction of I_x(a, b) (converges fast for x < (a + 1) / (a + b + 2)). */
static double beta_fraction(double a, double b, double x)
{
    const double tiny = 1e-300;
    double c = 1, d = 1 - (a + b) * x / (a + 1);
    if (fabs(d) < tiny)
        d = tiny;
    d = 1 / d;
    double h = d;
    for (int m = 1; m <= 1000; m++) {
        double m2 = 2.0 * m;
        double num = m * (b - m) * x / ((a + m2 - 1) * (a + m2));
        for (int pass = 0; pass < 2; pass++) {
            d = 1 + num * d;
            if (fabs(d) < tiny)
                d = tiny;
            c = 1 + num / c;
            if (fabs(c) < tiny)
                c = tiny;
            d = 1 / d;
            h *= d * c;
            num = -(a + m) * (a + b + m) * x / ((a + m2) * (a + m2 + 1));
        }
        if (fabs(d * c - 1) < 1e-15)
            break;
    }
    return h;
}

double study_incomplete_beta(double a, double b, double x)
{
    if (!(a > 0) || !(b > 0) || isnan(x))
        return NAN;
    if (x <= 0)
        return 0;
    if (x >= 1)
        return 1;
    double front = exp(lgamma(a + b) - lgamma(a) - lgamma(b) + a * log(x) + b * log1p(-x));
    if (x < (a + 1) / (a + b + 2))
        return front * beta_fraction(a, b, x) / a;
    return 1 - front * beta_fraction(b, a, 1 - x) / b;
}

double study_t_two_sided_p(double t, double df)
{
    if (isnan(t) || !(df > 0))
        return NAN;
    if (isinf(t))
        return 0;
    return study_incomplete_beta(df / 2, 0.5, df / (df + t * t));
}

bool study_welch_test(const double *base, int nbase, const double *other, int nother, study_welch *out)
{
    *out = (study_welch){.diff = NAN, .se = NAN, .t = NAN, .df = NAN, .p = NAN};
    double m0, s0, m1, s1;
    study_mean_std(base, nbase, &m0, &s0);
    study_mean_std(other, nother, &m1, &s1);
    out->diff = m1 - m0;
    if (nbase < 2 || nother < 2 || !isfinite(out->diff) || !isfinite(s0) || !isfinite(s1))
        return false;
    double v0 = s0 * s0 / nbase, v1 = s1 * s1 / nother;
    out->se = sqrt(v0 + v1);
    if (out->se == 0) {
        /* no spread on either side: any difference is certain, none is no evidence */
        out->t = out->diff == 0 ? NAN : copysign(INFINITY, out->diff);
        out->df = nbase + nother - 2;
        out->p = out->diff == 0 ? 1 : 0;
        return true;
    }
    out->t = out->diff / out->se;
    /* Welch–Satterthwaite */
    out->df = (v0 + v1) * (v0 + v1) / (v0 * v0 / (nbase - 1) + v1 * v1 / (nother - 1));
    out->p = study_t_two_sided_p(out->t, out->df);
    return true;
}

int study_seeds_needed(double sd0, double sd1, double delta)
{
    /* n per side = (z_{1-alpha/2} + z_{power})^2 (sd0^2 + sd1^2) / delta^2, the normal
     * approximation for a two-sided test at alpha = 0.05 with 80% power */
    const double z = 1.959963984540054 + 0.8416212335729143;
    if (!isfinite(sd0) || !isfinite(sd1) || !isfinite(delta) || delta == 0)
        return -1;
    double n = ceil(z * z * (sd0 * sd0 + sd1 * sd1) / (delta * delta));
    if (n > 1e6)
        return -1;
    return n < 2 ? 2 : (int)n;
}

study_verdict study_judge(const study_welch *w, int expected_sign)
{
    if (isnan(w->p) || expected_sign == 0)
        return STUDY_UNTESTED;
    if (!(w->p < STUDY_ALPHA) || w->diff == 0)
        return STUDY_NOT_DISTINGUISHABLE;
    return (w->diff > 0) == (expected_sign > 0) ? STUDY_REPRODUCED : STUDY_CONTRADICTED;
}

const char *study_verdict_name(study_verdict v)
{
    switch (v) {
    case STUDY_REPRODUCED: return "reproduced";
    case STUDY_CONTRADICTED: return "contradicted";
    case STUDY_NOT_DISTINGUISHABLE: return "not distinguishable from noise";
    default: return "not tested (fewer than 2 seeds a side)";
    }
}
