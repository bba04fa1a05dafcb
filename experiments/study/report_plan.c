/* experiments/study/report_plan.c — one plan of `study report`: its runs' numbers, the
 * table (mean ± sd over seeds), the report's comparisons tested against seed noise,
 * the report's own numbers, the figures and the gradient-flow verdicts. */
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* first conv / last conv mean |dL/dW| below this is "vanishing" */
#define VANISHING_RATIO 1e-2

/* ------------------------------------------------------------------ one run's numbers */

static const char *const metric_names[NMETRIC] = {"train acc", "val acc", "test acc",
                                                  "train loss", "val loss", "test loss"};


static void read_run(run_result *r)
{
    for (int i = 0; i < NMETRIC; i++)
        r->m[i] = NAN;
    study_csv *c = study_read_csv_in(r->dir, STUDY_SUMMARY_CSV);
    if (!c) {
        snprintf(r->problem, sizeof r->problem, "not started (no %s)", STUDY_SUMMARY_CSV);
    } else {
        r->epochs = c->nrows;
        int last = c->nrows - 1;
        r->m[0] = study_csv_num(c, last, "train_acc");
        r->m[1] = study_csv_num(c, last, "val_acc");
        r->m[3] = study_csv_num(c, last, "train_loss");
        r->m[4] = study_csv_num(c, last, "val_loss");
        study_csv_free(c);
        c = study_read_csv_in(r->dir, STUDY_TEST_SUMMARY_CSV);
        if (!c) {
            snprintf(r->problem, sizeof r->problem, "incomplete (%d epoch%s, no %s)", r->epochs,
                     r->epochs == 1 ? "" : "s", STUDY_TEST_SUMMARY_CSV);
        } else {
            r->m[2] = study_csv_num(c, c->nrows - 1, "test_acc");
            r->m[5] = study_csv_num(c, c->nrows - 1, "test_loss");
            study_csv_free(c);
            r->complete = r->epochs > 0;
            for (int i = 0; i < NMETRIC && r->complete; i++)
                if (isnan(r->m[i])) {
                    snprintf(r->problem, sizeof r->problem, "its CSV files have no %s", metric_names[i]);
                    r->complete = false;
                }
        }
    }
    /* gradient flow: the first and the last convolution's weight row of the last epoch */
    r->have_grad = study_read_grad_ends(r->dir, &r->grad) && r->grad.nconv > 1;
}

/* ------------------------------------------------------------------ formatting */

/* one table cell: accuracies (fractions) as percent with one decimal, losses with three */
static void put_cell(study_buf *b, int metric, const double *v, int n)
{
    double scale = metric < 3 ? 100 : 1;
    const char *unit = metric < 3 ? "%" : "";
    int digits = metric < 3 ? 1 : 3;
    double sv[MAX_PLAN_RUNS];
    for (int i = 0; i < n; i++)
        sv[i] = v[i] * scale;
    double mean, std;
    study_mean_std(sv, n, &mean, &std);
    if (n == 0 || isnan(mean))
        study_buf_printf(b, " — |");
    else if (n == 1)
        study_buf_printf(b, " %.*f%s |", digits, mean, unit);
    else
        study_buf_printf(b, " %.*f ± %.*f%s |", digits, mean, digits, std, unit);
}

static void put_report_cell(study_buf *b, int metric, double v)
{
    if (isnan(v))
        study_buf_printf(b, " — |");
    else
        study_buf_printf(b, metric < 3 ? " %.1f%% |" : " %.3f |", v);
}

/* a path relative to the report when dir is inside root, else dir itself */
const char *report_md_path(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (!strcmp(root, "."))
        return path;
    return !strncmp(path, root, n) && path[n] == '/' ? path + n + 1 : path;
}

/* ------------------------------------------------------------------ one plan */


bool report_read_plan(const char *root, const study_plan *p, plan_runs *pr)
{
    char path[4400];
    snprintf(path, sizeof path, "%s/%s/%s", root, p->name, STUDY_PLAN_CSV);
    study_csv *c = study_read_csv(path);
    if (!c) {
        fprintf(stderr, "study report: %s\n", tg_last_error());
        return false;
    }
    int cl = study_csv_col(c, "label"), cr = study_csv_col(c, "run");
    if (cl < 0 || cr < 0 || study_csv_col(c, "seed") < 0) {
        fprintf(stderr, "study report: %s: expected the columns label,run,seed\n", path);
        study_csv_free(c);
        return false;
    }
    pr->runs = calloc(MAX_PLAN_RUNS, sizeof *pr->runs);
    pr->n = 0;
    if (!pr->runs) {
        fprintf(stderr, "study report: out of memory\n");
        study_csv_free(c);
        return false;
    }
    int unknown = 0;
    for (int row = 0; row < c->nrows && pr->n < MAX_PLAN_RUNS; row++) {
        run_result *r = &pr->runs[pr->n];
        const char *label = study_csv_cell(c, row, cl), *rel = study_csv_cell(c, row, cr);
        snprintf(r->rel, sizeof r->rel, "%s", rel);
        snprintf(r->dir, sizeof r->dir, "%s/%s", root, rel);
        if (!strcmp(root, "."))
            snprintf(r->dir, sizeof r->dir, "%s", rel);
        r->seed = (int)study_csv_num(c, row, "seed");
        snprintf(pr->labels[pr->n], sizeof pr->labels[0], "%s", label);
        int g = -1;
        for (int m = 0; m < p->n; m++)
            if (!strcmp(label, p->members[m].label))
                g = m;
        for (int k = 0; k < pr->n && g < 0; k++)
            if (!strcmp(pr->labels[k], label))
                g = pr->group[k];
        pr->group[pr->n] = g >= 0 ? g : STUDY_PLAN_MAX_MEMBERS + unknown++;
        read_run(r);
        pr->n++;
    }
    study_csv_free(c);
    return true;
}

/* the groups in table order: the plan's members, then unknown labels */
static int group_order(const plan_runs *pr, int *order)
{
    int n = 0;
    for (int g = 0; g < STUDY_PLAN_MAX_MEMBERS + MAX_PLAN_RUNS; g++)
        for (int i = 0; i < pr->n; i++)
            if (pr->group[i] == g) {
                order[n++] = g;
                break;
            }
    return n;
}

static const char *group_label(const plan_runs *pr, int g)
{
    for (int i = 0; i < pr->n; i++)
        if (pr->group[i] == g)
            return pr->labels[i];
    return "?";
}

/* the run's curves.png and gradflow.png, drawn now if a finished epoch has none yet */
static void ensure_run_plots(const run_result *r, bool gnuplot, int *nplot_fail)
{
    char p[4400];
    if (!gnuplot)
        return;
    if (r->epochs > 0 && study_path(p, sizeof p, r->dir, STUDY_CURVES_PNG) && !study_file_exists(p) &&
        study_plot_curves(r->dir) != TG_OK) {
        fprintf(stderr, "study report: %s\n", tg_last_error());
        ++*nplot_fail;
    }
    if (r->have_grad && study_path(p, sizeof p, r->dir, STUDY_GRADFLOW_PNG) && !study_file_exists(p) &&
        study_plot_gradflow(r->dir) != TG_OK) {
        fprintf(stderr, "study report: %s\n", tg_last_error());
        ++*nplot_fail;
    }
}

/* ------------------------------------------------------------------ comparisons */

/* One configuration's complete runs. */
typedef struct group_stats {
    int g;          /* group id (plan member index, or an unknown label's) */
    const char *label;
    int n, seeds[MAX_PLAN_RUNS];
    int emin, emax; /* epochs */
    double v[NMETRIC][MAX_PLAN_RUNS];
} group_stats;

static void gather_group(const plan_runs *pr, int g, group_stats *gs)
{
    gs->g = g;
    gs->label = group_label(pr, g);
    gs->n = 0;
    for (int i = 0; i < pr->n; i++) {
        const run_result *r = &pr->runs[i];
        if (pr->group[i] != g || !r->complete)
            continue;
        for (int m = 0; m < NMETRIC; m++)
            gs->v[m][gs->n] = r->m[m];
        gs->emin = gs->n == 0 || r->epochs < gs->emin ? r->epochs : gs->emin;
        gs->emax = gs->n == 0 || r->epochs > gs->emax ? r->epochs : gs->emax;
        gs->seeds[gs->n++] = r->seed;
    }
}

/* the report's numbers for the row labelled `label` of plan p, or NULL */
static const study_reported *reported(const study_plan *p, const char *label)
{
    int m = study_plan_member(p, label);
    return m < 0 ? NULL : &p->members[m].reported;
}



static void compare_groups(const study_plan *p, const group_stats *base, const group_stats *other, comparison *c)
{
    *c = (comparison){.plan = p->name, .report_diff = NAN};
    snprintf(c->label, sizeof c->label, "%s", other->label);
    snprintf(c->base, sizeof c->base, "%s", base->label);
    const study_reported *rb = reported(p, base->label), *ro = reported(p, other->label);
    if (rb && ro && !isnan(rb->test_acc) && !isnan(ro->test_acc)) {
        c->report_diff = ro->test_acc - rb->test_acc;
        c->report_sign = c->report_diff > 0 ? 1 : c->report_diff < 0 ? -1 : 0;
    }
    int m = study_plan_member(p, other->label);
    if (!c->report_sign && m >= 0 && p->members[m].direction) {
        c->report_sign = p->members[m].direction;
        c->report_why = p->members[m].direction_why;
    }
    double a[MAX_PLAN_RUNS], b[MAX_PLAN_RUNS], mean;
    for (int i = 0; i < base->n; i++)
        a[i] = 100 * base->v[2][i];
    for (int i = 0; i < other->n; i++)
        b[i] = 100 * other->v[2][i];
    c->nbase = base->n;
    c->nother = other->n;
    study_mean_std(a, base->n, &mean, &c->base_sd);
    study_mean_std(b, other->n, &mean, &c->other_sd);
    study_welch_test(a, base->n, b, other->n, &c->w);
    c->verdict = study_judge(&c->w, c->report_sign);
    c->seeds_needed = study_seeds_needed(c->base_sd, c->other_sd, isnan(c->report_diff) ? c->w.diff : c->report_diff);
}

static void put_signed(study_buf *b, double v, int digits)
{
    if (isnan(v))
        study_buf_printf(b, " — |");
    else
        study_buf_printf(b, " %+.*f |", digits, v);
}

void report_put_comparison_row(study_buf *b, const comparison *c, bool with_plan)
{
    study_buf_printf(b, "|");
    if (with_plan)
        study_buf_printf(b, " %s |", c->plan);
    study_buf_printf(b, " %s vs %s |", c->label, c->base);
    if (!isnan(c->report_diff))
        put_signed(b, c->report_diff, 1);
    else
        study_buf_printf(b, " %s |", c->report_sign < 0 ? "lower" : c->report_sign > 0 ? "higher" : "—");
    put_signed(b, c->w.diff, 2);
    if (isnan(c->w.p)) {
        study_buf_printf(b, " %d / %d | — | — | — |", c->nbase, c->nother);
    } else {
        study_buf_printf(b, " %d / %d |", c->nbase, c->nother);
        if (isinf(c->w.t))
            study_buf_printf(b, " %s∞ |", c->w.t < 0 ? "−" : "");
        else
            study_buf_printf(b, " %.2f |", c->w.t);
        study_buf_printf(b, " %.1f |", c->w.df);
        study_buf_printf(b, c->w.p < 0.001 ? " %.1e |" : " %.3f |", c->w.p);
    }
    study_buf_printf(b, " **%s** |", study_verdict_name(c->verdict));
    if (c->seeds_needed > 0)
        study_buf_printf(b, " %d |\n", c->seeds_needed);
    else
        study_buf_printf(b, " — |\n");
}

void report_put_comparison_header(study_buf *b, bool with_plan)
{
    study_buf_printf(b, "|%s comparison | report (CIFAR-100) | ours: difference of means | seeds (base / other) | Welch's t "
                        "| df | p | verdict | seeds a side to tell |\n|%s---|---|---|---|---|---|---|---|---|\n",
                     with_plan ? " plan |" : "", with_plan ? "---|" : "");
}

void report_write_plan(study_buf *b, const char *root, const study_plan *p, plan_runs *pr, bool gnuplot,
                       bool run_plots, int *nplot_fail, int *nincomplete, comparison *cmp, int *ncmp)
{
    int order[STUDY_PLAN_MAX_MEMBERS + MAX_PLAN_RUNS];
    int ng = group_order(pr, order);
    study_buf_printf(b, "## %s: %s\n\nThe report's %s. Runs: `%s/%s`.\n\n", p->name, p->title, p->source,
                     p->name, STUDY_PLAN_CSV);
    group_stats *gs = calloc((size_t)(ng ? ng : 1), sizeof *gs);
    if (!gs) {
        study_buf_printf(b, "(out of memory)\n\n");
        return;
    }
    for (int k = 0; k < ng; k++)
        gather_group(pr, order[k], &gs[k]);

    /* the table, over complete runs, with the report's test accuracy beside ours */
    study_buf_printf(b, "| configuration | seeds | epochs | train acc | val acc | test acc | train loss "
                        "| val loss | test loss | report's test acc |\n|---|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < ng; k++) {
        const group_stats *g = &gs[k];
        study_buf_printf(b, "| %s |", g->label);
        if (g->n == 0)
            study_buf_printf(b, " — | — |");
        else {
            for (int i = 0; i < g->n; i++)
                study_buf_printf(b, "%s%d", i ? ", " : " ", g->seeds[i]);
            study_buf_printf(b, g->emin == g->emax ? " | %d |" : " | %d–%d |", g->emin, g->emax);
        }
        for (int m = 0; m < NMETRIC; m++)
            put_cell(b, m, g->v[m], g->n);
        const study_reported *rr = reported(p, g->label);
        put_report_cell(b, 2, rr ? rr->test_acc : NAN);
        study_buf_printf(b, "\n");
    }
    study_buf_printf(b, "\nAccuracies in percent, losses as cross-entropy; train and validation from the last "
                        "epoch (summary.csv), test from the best-validation checkpoint (test_summary.csv)");
    bool several = false;
    for (int k = 0; k < ng; k++)
        several |= gs[k].n > 1;
    study_buf_printf(b, several ? "; mean ± sample standard deviation over seeds.\n" : ".\n");
    if (several) {
        study_buf_printf(b, "\nTest accuracy of each seed:");
        for (int k = 0, shown = 0; k < ng; k++) {
            if (gs[k].n == 0)
                continue;
            study_buf_printf(b, "%s %s:", shown++ ? ";" : "", gs[k].label);
            for (int i = 0; i < gs[k].n; i++)
                study_buf_printf(b, "%s seed %d %.2f%%", i ? "," : "", gs[k].seeds[i], 100 * gs[k].v[2][i]);
        }
        study_buf_printf(b, ".\n");
    }
    for (int i = 0, listed = 0; i < pr->n; i++)
        if (!pr->runs[i].complete) {
            study_buf_printf(b, "%s- not in the table: `%s` (%s): %s\n", listed++ ? "" : "\n",
                             pr->runs[i].rel, pr->labels[i], pr->runs[i].problem);
            fprintf(stderr, "study report: %s: %s\n", pr->runs[i].dir, pr->runs[i].problem);
            ++*nincomplete;
        }

    /* the report's comparisons: each configuration against the plan's first */
    int first = *ncmp;
    for (int k = 1; k < ng && gs[0].g == 0; k++)
        if (gs[k].g < STUDY_PLAN_MAX_MEMBERS && *ncmp < MAX_COMPARISONS)
            compare_groups(p, &gs[0], &gs[k], &cmp[(*ncmp)++]);
    if (*ncmp > first) {
        study_buf_printf(b, "\nThe report's comparisons, on test accuracy (percentage points):\n\n");
        report_put_comparison_header(b, false);
        for (int c = first; c < *ncmp; c++)
            report_put_comparison_row(b, &cmp[c], false);
        for (int c = first; c < *ncmp; c++)
            if (cmp[c].report_why)
                study_buf_printf(b, "\nThe report's direction for %s: %s.\n", cmp[c].label, cmp[c].report_why);
    }
    free(gs);

    /* the report's numbers */
    study_buf_printf(b, "\nThe report's numbers (CIFAR-100, 100 epochs, seed 0):\n\n"
                        "| configuration | source | train acc | val acc | test acc | train loss | val loss "
                        "| test loss |\n|---|---|---|---|---|---|---|---|\n");
    for (int i = 0; i < p->n; i++) {
        const study_reported *rr = &p->members[i].reported;
        double v[NMETRIC] = {rr->train_acc, rr->val_acc, rr->test_acc, rr->train_loss, rr->val_loss, rr->test_loss};
        study_buf_printf(b, "| %s | %s |", p->members[i].label, rr->source);
        for (int m = 0; m < NMETRIC; m++)
            put_report_cell(b, m, v[m]);
        study_buf_printf(b, "\n");
    }

    /* gradient flow */
    study_buf_printf(b, "\nGradient flow at the last epoch (mean |dL/dW| of the first convolution over the "
                        "last one, last training batch; below %g is vanishing):\n\n", VANISHING_RATIO);
    for (int k = 0; k < ng; k++) {
        study_buf_printf(b, "- **%s**:", group_label(pr, order[k]));
        int nr = 0, nvan = 0;
        for (int i = 0; i < pr->n; i++) {
            const run_result *r = &pr->runs[i];
            if (pr->group[i] != order[k] || !r->have_grad)
                continue;
            const study_grad_ends *g = &r->grad;
            double ratio = g->first_grad / g->last_grad;
            const char *verdict = !isfinite(g->first_grad) || !isfinite(g->last_grad) ? "non-finite gradients"
                                  : g->last_grad == 0                                   ? "no gradient at the last conv"
                                  : ratio < VANISHING_RATIO                              ? "vanishing"
                                                                                         : "flowing";
            nvan += ratio < VANISHING_RATIO;
            study_buf_printf(b, "%s seed %d, epoch %d: %s %.3g / %s %.3g = %.3g: %s", nr ? ";" : "", r->seed,
                             g->epoch, g->first, g->first_grad, g->last, g->last_grad, ratio, verdict);
            nr++;
        }
        if (nr == 0)
            study_buf_printf(b, " no gradient flow recorded yet");
        else if (nr > 1)
            study_buf_printf(b, " (vanishing in %d of %d seeds)", nvan, nr);
        study_buf_printf(b, "\n");
    }

    /* plots: the comparison, then each run's own */
    const char *dirs[MAX_PLAN_RUNS], *labels[MAX_PLAN_RUNS];
    char seeded[MAX_PLAN_RUNS][120];
    int colors[MAX_PLAN_RUNS], nd = 0;
    for (int k = 0; k < ng; k++)
        for (int i = 0; i < pr->n; i++)
            if (pr->group[i] == order[k] && pr->runs[i].epochs > 0) {
                dirs[nd] = pr->runs[i].dir;
                snprintf(seeded[nd], sizeof seeded[0], "%s (seed %d)", pr->labels[i], pr->runs[i].seed);
                labels[nd] = seeded[nd];
                colors[nd] = k + 1; /* one colour a configuration */
                nd++;
            }
    study_buf_printf(b, "\n");
    char title[300];
    snprintf(title, sizeof title, "%s: %s", p->name, p->title);
    static const struct {
        const char *suffix, *alt;
    } figures[] = {{"_compare.png", "loss and accuracy (validation solid, training dashed) and first-layer gradient per epoch"},
                   {"_gradflow.png", "mean |dL/dW| per layer at the last epoch, one line a run"}};
    for (int f = 0; f < 2; f++) {
        char png[4400], name[300];
        snprintf(name, sizeof name, "%s%s", p->name, figures[f].suffix);
        study_path(png, sizeof png, root, name);
        if (nd > 0 && gnuplot &&
            (f == 0 ? study_plot_compare(png, title, nd, dirs, labels, colors)
                    : study_plot_gradflow_layers(png, title, nd, dirs, labels, colors)) != TG_OK) {
            fprintf(stderr, "study report: %s\n", tg_last_error());
            ++*nplot_fail;
        }
        if (study_file_exists(png))
            study_buf_printf(b, "![%s: %s](%s)\n\n", p->name, figures[f].alt, name);
    }
    for (int k = 0; k < ng && run_plots; k++)
        for (int i = 0; i < pr->n; i++) {
            const run_result *r = &pr->runs[i];
            if (pr->group[i] != order[k] || r->epochs == 0)
                continue;
            ensure_run_plots(r, gnuplot, nplot_fail);
            char curves[4400], grad[4400];
            study_path(curves, sizeof curves, r->dir, STUDY_CURVES_PNG);
            study_path(grad, sizeof grad, r->dir, STUDY_GRADFLOW_PNG);
            bool hc = study_file_exists(curves), hg = study_file_exists(grad);
            study_buf_printf(b, "%s (seed %d), `%s`:%s\n", pr->labels[i], r->seed, r->rel,
                             hc || hg ? "" : " no plots (gnuplot is not installed)");
            if (hc)
                study_buf_printf(b, "![%s curves](%s)\n", pr->labels[i], report_md_path(root, curves));
            if (hg)
                study_buf_printf(b, "![%s gradient flow](%s)\n", pr->labels[i], report_md_path(root, grad));
            study_buf_printf(b, "\n");
        }
}

