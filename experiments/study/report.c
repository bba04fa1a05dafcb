/* experiments/study/report.c — `study report`: the report's tables and figures from the
 * runs of `study sweep`, written to REPORT.md beside them.
 *
 *   study report runs/depth runs/bn-placement     (plan folders)
 *   study report runs                             (every plan folder in it)
 *
 * For each plan: the report's table (train, validation and test accuracy and loss per
 * configuration: the last epoch's train/val from summary.csv, test from test_summary.csv,
 * the mean ± sample standard deviation over seeds when there are several, each seed's
 * test accuracy), the numbers the report itself gives for CIFAR-100, the report's
 * comparisons tested against the seed-to-seed noise (stats.c: Welch's t-test on test
 * accuracy, a verdict against the report's direction, the seeds a difference would
 * need), a comparison plot RUNS/<plan>_compare.png, the per-layer gradient flow of the
 * configurations side by side (RUNS/<plan>_gradflow.png), each run's curves.png and
 * gradflow.png, and a gradient-flow verdict per configuration. Every run's numbers go to
 * RUNS/results.csv. Runs made with different budgets (config.txt beyond the flags the
 * plans vary) are refused: their numbers do not belong in one table.
 * REPORT.md, results.csv and the plots are replaced atomically.
 */
#include "study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* first conv / last conv mean |dL/dW| below this is "vanishing" */
#define VANISHING_RATIO 1e-2

/* ------------------------------------------------------------------ one run's numbers */

enum { NMETRIC = 6, MAX_PLAN_RUNS = 256 }; /* train acc, val acc, test acc, train loss, val loss, test loss */
static const char *const metric_names[NMETRIC] = {"train acc", "val acc", "test acc",
                                                  "train loss", "val loss", "test loss"};

typedef struct run_result {
    char dir[4200];   /* RUNS/configs/<name> */
    char rel[300];    /* configs/<name>, relative to REPORT.md */
    int seed;
    bool complete;    /* test_summary.csv read */
    int epochs;       /* rows of summary.csv */
    double m[NMETRIC];
    /* gradient flow at the last epoch of gradflow.csv */
    bool have_grad; /* two conv rows or more */
    study_grad_ends grad;
    char problem[300]; /* why it is not in the table */
} run_result;

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
static const char *md_path(const char *root, const char *path)
{
    size_t n = strlen(root);
    if (!strcmp(root, "."))
        return path;
    return !strncmp(path, root, n) && path[n] == '/' ? path + n + 1 : path;
}

/* ------------------------------------------------------------------ arguments */

typedef struct report_opts {
    char root[4096];                 /* the runs directory: REPORT.md goes here */
    const study_plan *plans[32];
    int nplans;
    bool run_plots; /* each run's curves.png and gradflow.png in REPORT.md (drawn if missing) */
} report_opts;

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: study report [--no-run-plots] DIR...\n"
               "  Writes REPORT.md beside the runs of `study sweep`: per plan the report's table\n"
               "  (last epoch's train/val, test of the best-validation model; mean ± std over\n"
               "  seeds) beside the report's own CIFAR-100 numbers; each of the report's\n"
               "  comparisons tested against the seed noise (Welch's t-test on test accuracy)\n"
               "  with a verdict; plots; a gradient-flow verdict per configuration.\n"
               "  DIR is a plan folder (RUNS/depth, RUNS/bn-placement, ...) or a runs directory\n"
               "  (every plan folder in it). All must be in one runs directory: REPORT.md and\n"
               "  the plans' figures RUNS/<plan>_compare.png and RUNS/<plan>_gradflow.png are\n"
               "  written there, every run's numbers to RUNS/results.csv. Runs made with\n"
               "  different budgets (config.txt beyond the flags the plans vary) are refused.\n"
               "  --no-run-plots  leave each run's own curves.png and gradflow.png out (the\n"
               "                  plans' figures stay): for a copy of the results without them\n"
               "  Exit status: 0 written, 1 failure, 2 usage error.\n");
    return status;
}

static bool is_dir(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool has_plan_csv(const char *dir)
{
    char p[4400];
    return study_path(p, sizeof p, dir, STUDY_PLAN_CSV) && study_file_exists(p);
}

/* dir without trailing slashes into out; its parent into parent; its last part into base */
static bool split_dir(const char *dir, char *out, char *parent, char *base, size_t size)
{
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/')
        n--;
    if (n + 1 > size)
        return false;
    memcpy(out, dir, n);
    out[n] = '\0';
    const char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(parent, size, ".");
    else if (slash == out)
        snprintf(parent, size, "/");
    else
        snprintf(parent, size, "%.*s", (int)(slash - out), out);
    snprintf(base, size, "%s", slash ? slash + 1 : out);
    return true;
}

static void add_plan(report_opts *o, const study_plan *p)
{
    for (int i = 0; i < o->nplans; i++)
        if (o->plans[i] == p)
            return;
    o->plans[o->nplans++] = p;
}

/* 0, or the exit status after a message, or -1 for --help */
static int parse_args(int argc, char **argv, report_opts *o)
{
    *o = (report_opts){.nplans = 0, .run_plots = true};
    int ndirs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (!strcmp(a, "--no-run-plots")) {
            o->run_plots = false;
            continue;
        }
        if (a[0] == '-' && a[1]) {
            fprintf(stderr, "study report: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        char dir[4096], parent[4096], base[4096], root[4096];
        if (!split_dir(a, dir, parent, base, sizeof dir)) {
            fprintf(stderr, "study report: path too long: %s\n", a);
            return 2;
        }
        if (!is_dir(dir)) {
            fprintf(stderr, "study report: %s is not a directory\n", a);
            return 2;
        }
        const study_plan *p = study_plan_find(base);
        if (p && has_plan_csv(dir)) {
            snprintf(root, sizeof root, "%s", parent);
            add_plan(o, p);
        } else if (p) {
            fprintf(stderr, "study report: %s has no %s (run `study sweep %s` first)\n", a,
                    STUDY_PLAN_CSV, p->name);
            return 1;
        } else {
            /* a runs directory: every plan folder it has, in the report's order */
            snprintf(root, sizeof root, "%s", dir);
            int found = 0;
            for (int k = 0; k < study_num_plans(); k++) {
                char pd[4400];
                if (study_path(pd, sizeof pd, dir, study_plan_at(k)->name) && has_plan_csv(pd)) {
                    add_plan(o, study_plan_at(k));
                    found++;
                }
            }
            if (!found) {
                fprintf(stderr, "study report: %s is neither a plan folder (%s) nor a runs directory "
                                "holding one\n", a, study_plan_names());
                return 2;
            }
        }
        if (ndirs++ && strcmp(root, o->root)) {
            fprintf(stderr, "study report: %s and %s are in different runs directories; report one at a time\n",
                    o->root, root);
            return 2;
        }
        snprintf(o->root, sizeof o->root, "%s", root);
    }
    if (!ndirs) {
        fprintf(stderr, "study report: which runs? give plan folders or a runs directory (try --help)\n");
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ one plan */

/* the runs of plan.csv, grouped by label: group[i] is the member index, or
 * STUDY_PLAN_MAX_MEMBERS + k for the k-th label the plan does not know */
typedef struct plan_runs {
    run_result *runs;
    int n;
    int group[MAX_PLAN_RUNS];
    char labels[MAX_PLAN_RUNS][96]; /* each run's label */
} plan_runs;

static bool read_plan(const char *root, const study_plan *p, plan_runs *pr)
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

/* One of the report's comparisons: a configuration against its plan's first one, on
 * test accuracy in percentage points. */
typedef struct comparison {
    const char *plan;
    char label[96], base[96];
    double report_diff; /* the report's difference in points, NAN if it gives none */
    int report_sign;    /* +1 / -1: the report's direction; 0 unknown */
    const char *report_why; /* where the direction comes from when report_diff is NAN */
    int nbase, nother;
    double base_sd, other_sd; /* points */
    study_welch w;            /* points */
    study_verdict verdict;
    int seeds_needed;         /* to find the report's difference (ours if it gives none) */
} comparison;

enum { MAX_COMPARISONS = 64 };

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

static void put_comparison_row(study_buf *b, const comparison *c, bool with_plan)
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

static void put_comparison_header(study_buf *b, bool with_plan)
{
    study_buf_printf(b, "|%s comparison | report (CIFAR-100) | ours: difference of means | seeds (base / other) | Welch's t "
                        "| df | p | verdict | seeds a side to tell |\n|%s---|---|---|---|---|---|---|---|---|\n",
                     with_plan ? " plan |" : "", with_plan ? "---|" : "");
}

static void write_plan(study_buf *b, const char *root, const study_plan *p, plan_runs *pr, bool gnuplot,
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
        put_comparison_header(b, false);
        for (int c = first; c < *ncmp; c++)
            put_comparison_row(b, &cmp[c], false);
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
                study_buf_printf(b, "![%s curves](%s)\n", pr->labels[i], md_path(root, curves));
            if (hg)
                study_buf_printf(b, "![%s gradient flow](%s)\n", pr->labels[i], md_path(root, grad));
            study_buf_printf(b, "\n");
        }
}

/* ------------------------------------------------------------------ the budget */

/* A run's config.txt without the flags the plans vary (and those that do not change
 * results): what must be equal for two runs to share a table. NULL when the run has no
 * config.txt (not started); tg_mem_free() it (it is study_read_file's buffer). */
static char *budget_of(const char *dir)
{
    char path[4400];
    if (!study_path(path, sizeof path, dir, STUDY_CONFIG_TXT) || !study_file_exists(path))
        return NULL;
    char *text = study_read_file(path, NULL);
    if (!text)
        return NULL;
    static const char *const skip[] = {"--experiment-dir", "--bn", "--num-blocks-per-stage", "--weight-decay",
                                       "--dropout", "--batch-size", "--seed", "--resume", "--threads"};
    char *out = text;
    for (char *line = text, *next; *line; line = next) {
        size_t len = strcspn(line, "\n");
        next = line + len + (line[len] == '\n');
        bool drop = len == 0;
        for (size_t k = 0; k < sizeof skip / sizeof skip[0] && !drop; k++) {
            size_t n = strlen(skip[k]);
            drop = !strncmp(line, skip[k], n) && (line[n] == ' ' || line[n] == '\n' || line[n] == '\0');
        }
        if (!drop) {
            memmove(out, line, len);
            out += len;
            *out++ = '\n';
        }
    }
    *out = '\0';
    return text;
}

/* the first line where a and b differ, into buf */
static void first_difference(const char *a, const char *b, char *buf, size_t size)
{
    while (*a || *b) {
        size_t la = strcspn(a, "\n"), lb = strcspn(b, "\n");
        if (la != lb || strncmp(a, b, la)) {
            snprintf(buf, size, "'%.*s' against '%.*s'", (int)(la < 200 ? la : 200), a, (int)(lb < 200 ? lb : 200),
                     b);
            return;
        }
        a += la + (a[la] == '\n');
        b += lb + (b[lb] == '\n');
    }
    snprintf(buf, size, "(no difference)");
}

/* Every run's budget equals the first's; else a message naming both runs and the first
 * differing flag, and false. *first_budget gets the first budget (NULL if no run has
 * one; free() it) and *first_run its run. */
static bool check_budgets(const plan_runs *all, int nplans, char **first_budget, const char **first_run)
{
    *first_budget = NULL;
    *first_run = NULL;
    for (int p = 0; p < nplans; p++)
        for (int i = 0; i < all[p].n; i++) {
            char *bud = budget_of(all[p].runs[i].dir);
            if (!bud)
                continue;
            if (!*first_budget) {
                *first_budget = bud;
                *first_run = all[p].runs[i].dir;
                continue;
            }
            bool same = !strcmp(bud, *first_budget);
            if (!same) {
                char diff[500];
                first_difference(*first_budget, bud, diff, sizeof diff);
                fprintf(stderr, "study report: %s/%s and %s/%s were made with different budgets or data (%s); "
                                "one report holds runs of one budget: report them from separate runs "
                                "directories\n", *first_run, STUDY_CONFIG_TXT, all[p].runs[i].dir, STUDY_CONFIG_TXT,
                        diff);
            }
            tg_mem_free(bud);
            if (!same)
                return false;
        }
    return true;
}

/* the value of "--flag value" in a budget, or NULL */
static const char *budget_value(const char *budget, const char *flag, char *buf, size_t size)
{
    size_t n = strlen(flag);
    for (const char *line = budget; line && *line;) {
        size_t len = strcspn(line, "\n");
        if (len > n + 1 && !strncmp(line, flag, n) && line[n] == ' ') {
            snprintf(buf, size, "%.*s", (int)(len - n - 1), line + n + 1);
            return buf;
        }
        line += len + (line[len] == '\n');
    }
    return NULL;
}

static void write_budget(study_buf *b, const char *budget, const char *run, const char *root)
{
    if (!budget)
        return;
    study_buf_printf(b, "Budget and settings of every run (`%s/%s`, the flags the plans vary aside; "
                        "`study report` refuses runs whose budgets differ):\n\n```\n%s```\n\n",
                     md_path(root, run), STUDY_CONFIG_TXT, budget);
    /* the data recipe moves the numbers (black or grey padding changed VGG_08's test
     * accuracy by ~3 points at 10,000 images x 5 epochs in a PyTorch implementation) */
    char ds[64];
    if (!budget_value(budget, "--dataset", ds, sizeof ds))
        snprintf(ds, sizeof ds, "fashion-mnist");
    const tg_normalization *nm = tg_normalization_preset(ds);
    study_buf_printf(b, "Data recipe (`study train`, as the original's torchvision transforms): ");
    if (!strcmp(ds, "fashion-mnist"))
        study_buf_printf(b, "the 28x28 images are padded to 32x32 with black (0) pixels, then ");
    study_buf_printf(b, "each training image is cropped at a random 32x32 window of the image padded by 4 black "
                        "(0) pixels on every side (RandomCrop(32, padding=4) in pixel space) and flipped "
                        "horizontally with probability 1/2; every image is then normalised per channel");
    if (nm) {
        study_buf_printf(b, " with mean (");
        for (int c = 0; c < nm->channels; c++)
            study_buf_printf(b, "%s%.4f", c ? ", " : "", nm->mean[c]);
        study_buf_printf(b, ") and std (");
        for (int c = 0; c < nm->channels; c++)
            study_buf_printf(b, "%s%.4f", c ? ", " : "", nm->std[c]);
        study_buf_printf(b, "), so a black padding pixel becomes %.2f, not the mean", -nm->mean[0] / nm->std[0]);
    }
    study_buf_printf(b, ". The validation set is 5%% of the training images (split with seed 0); `--train-limit` "
                        "keeps the first N training images after the split; the test set is the data set's own.\n\n");
}

/* ------------------------------------------------------------------ the findings */

static void write_findings(study_buf *b, const comparison *cmp, int n)
{
    if (n == 0)
        return;
    int count[4] = {0};
    for (int i = 0; i < n; i++)
        count[cmp[i].verdict]++;
    int tested = n - count[STUDY_UNTESTED];
    study_buf_printf(b, "## Findings\n\nEach of the report's comparisons, on test accuracy: the difference of "
                        "our means over seeds (percentage points), Welch's t-test of it against the seed-to-seed "
                        "noise (two-sided, unequal variances), and the verdict against the report's direction: "
                        "**reproduced** (same direction, p < %.2f), **contradicted** (opposite direction, p < %.2f) "
                        "or **not distinguishable from noise** at this budget. The last column is the number of "
                        "seeds a side that would find the report's difference (ours where it gives none) with 80%% "
                        "power at this spread (normal approximation). No verdict is written by hand: `study "
                        "report` computes them from the CSV files.\n\n",
                     STUDY_ALPHA, STUDY_ALPHA);
    put_comparison_header(b, true);
    for (int i = 0; i < n; i++)
        put_comparison_row(b, &cmp[i], true);
    study_buf_printf(b, "\nOf %d comparison%s, %d reproduced, %d contradicted and %d not distinguishable from noise",
                     n, n == 1 ? "" : "s", count[STUDY_REPRODUCED], count[STUDY_CONTRADICTED], count[STUDY_NOT_DISTINGUISHABLE]);
    if (count[STUDY_UNTESTED])
        study_buf_printf(b, "; %d not tested (fewer than 2 complete seeds a side)", count[STUDY_UNTESTED]);
    study_buf_printf(b, ".");
    if (tested > 1)
        study_buf_printf(b, " The p-values are per comparison, not corrected for the %d tests: were there no "
                            "effects at all, about %.1f of them would fall below %.2f by chance.",
                         tested, tested * STUDY_ALPHA, STUDY_ALPHA);
    /* the spread that decides what this budget can tell */
    double sds[MAX_COMPARISONS * 2];
    int nsd = 0;
    for (int i = 0; i < n; i++) {
        if (!isnan(cmp[i].other_sd) && nsd < MAX_COMPARISONS * 2)
            sds[nsd++] = cmp[i].other_sd;
        bool seen = false; /* a baseline is shared by its plan's comparisons: count it once */
        for (int j = 0; j < i; j++)
            seen |= cmp[j].plan == cmp[i].plan;
        if (!seen && !isnan(cmp[i].base_sd) && nsd < MAX_COMPARISONS * 2)
            sds[nsd++] = cmp[i].base_sd;
    }
    if (nsd > 0) {
        double lo = sds[0], hi = sds[0];
        for (int i = 1; i < nsd; i++) {
            lo = sds[i] < lo ? sds[i] : lo;
            hi = sds[i] > hi ? sds[i] : hi;
        }
        study_buf_printf(b, " The seed-to-seed standard deviation of test accuracy is %.2f to %.2f points across "
                            "the configurations; an effect much smaller than that needs the seeds the last "
                            "column gives, or a budget with less spread.", lo, hi);
    }
    study_buf_printf(b, "\n\n");
}

/* RUNS/results.csv: every run of every plan, one row each, for other tools */
static tg_status write_results_csv(const char *root, const report_opts *o, const plan_runs *all)
{
    study_buf b = {0};
    study_buf_printf(&b, "plan,label,run,seed,complete,epochs,train_acc,val_acc,test_acc,train_loss,val_loss,"
                         "test_loss,first_conv_grad,last_conv_grad\n");
    for (int p = 0; p < o->nplans; p++)
        for (int i = 0; i < all[p].n; i++) {
            const run_result *r = &all[p].runs[i];
            study_buf_printf(&b, "%s,%s,%s,%d,%d,%d", o->plans[p]->name, all[p].labels[i], r->rel, r->seed,
                             r->complete, r->epochs);
            for (int m = 0; m < NMETRIC; m++)
                study_buf_printf(&b, isnan(r->m[m]) ? "," : ",%.9g", r->m[m]);
            if (r->have_grad)
                study_buf_printf(&b, ",%.9g,%.9g\n", r->grad.first_grad, r->grad.last_grad);
            else
                study_buf_printf(&b, ",,\n");
        }
    char path[4400];
    tg_status st = study_path(path, sizeof path, root, "results.csv") ? study_buf_write(&b, path)
                                                                      : tg_set_error(TG_ERR_ARG, "path too long: %s", root);
    study_buf_free(&b);
    return st;
}

int study_report_main(int argc, char **argv)
{
    report_opts o;
    int st = parse_args(argc, argv, &o);
    if (st == -1)
        return usage(stdout, 0);
    if (st)
        return st;

    plan_runs *all = calloc((size_t)o.nplans, sizeof *all);
    bool ok = all != NULL;
    if (!ok)
        fprintf(stderr, "study report: out of memory\n");
    for (int p = 0; p < o.nplans && ok; p++)
        ok = read_plan(o.root, o.plans[p], &all[p]);
    bool gnuplot = study_have_gnuplot();
    if (ok && !gnuplot)
        fprintf(stderr, "study report: gnuplot is not installed (apt-get install gnuplot-nox): "
                        "REPORT.md is written without plots\n");
    char *budget = NULL;
    const char *budget_run = NULL;
    if (ok)
        ok = check_budgets(all, o.nplans, &budget, &budget_run);
    int nplot_fail = 0, nincomplete = 0, ncmp = 0;
    comparison *cmp = calloc(MAX_COMPARISONS, sizeof *cmp);
    study_buf b = {0}, sections = {0};
    char path[4200];
    if (ok && !cmp) {
        fprintf(stderr, "study report: out of memory\n");
        ok = false;
    }
    if (ok) {
        for (int p = 0; p < o.nplans; p++)
            write_plan(&sections, o.root, o.plans[p], &all[p], gnuplot, o.run_plots, &nplot_fail, &nincomplete, cmp, &ncmp);
        study_buf_printf(&b, "# The study: reproduction report\n\n"
                             "Written by `study report` from the runs of `study sweep` in `%s`. Each plan "
                             "reproduces a table or figure of the student report (an MLP coursework report, "
                             "summarised in tapegrad's docs/reproduction.md); the report's own numbers, on "
                             "CIFAR-100 with 100 epochs and one seed, stand beside ours. Runs on another "
                             "data set or a smaller budget are comparable in their directions, not their "
                             "numbers. Every run's numbers are in `results.csv`.\n\n",
                         o.root);
        write_budget(&b, budget, budget_run, o.root);
        write_findings(&b, cmp, ncmp);
        study_buf_append(&b, sections.data ? sections.data : "", sections.len);
        ok = study_path(path, sizeof path, o.root, "REPORT.md");
        if (ok && (write_results_csv(o.root, &o, all) != TG_OK || study_buf_write(&b, path) != TG_OK)) {
            fprintf(stderr, "study report: %s\n", tg_last_error());
            ok = false;
        }
    }
    tg_mem_free(budget);
    free(cmp);
    study_buf_free(&sections);
    if (ok)
        fprintf(stderr, "study report: wrote %s (%d plan%s%s%s)\n", path, o.nplans, o.nplans == 1 ? "" : "s",
                nincomplete ? ", some runs incomplete" : "", nplot_fail ? ", some plots failed" : "");
    study_buf_free(&b);
    for (int p = 0; all && p < o.nplans; p++)
        free(all[p].runs);
    free(all);
    return ok ? 0 : 1;
}
