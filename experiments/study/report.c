/* experiments/study/report.c — `study report`: the report's tables and figures from the
 * runs of `study sweep`, written to REPORT.md beside them.
 *
 *   study report runs/depth runs/bn-placement     (plan folders)
 *   study report runs                             (every plan folder in it)
 *
 * For each plan: the report's table (train, validation and test accuracy and loss per
 * configuration: the last epoch's train/val from summary.csv, test from test_summary.csv,
 * the mean ± sample standard deviation over seeds when there are several), the numbers
 * the report itself gives for CIFAR-100, a comparison plot RUNS/<plan>_compare.png, each
 * run's curves.png and gradflow.png, and a gradient-flow verdict per configuration.
 * REPORT.md and the plots are replaced atomically.
 */
#include "study.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* ------------------------------------------------------------------ the report's numbers
 *
 * Copied from the student report (shared/seed/000_22097fe93f5cd507.txt), CIFAR-100,
 * 100 epochs, seed 0. Accuracies in percent, losses as printed; NAN where the report
 * gives no number. Labels are the plans' row labels (sweep.c). */
typedef struct report_row {
    const char *plan, *label, *source;
    double train_acc, val_acc, test_acc, train_loss, val_loss, test_loss;
} report_row;

static const report_row report_rows[] = {
    /* Figures 1 and 2 have no table; section 5.1's text gives VGG_38's test accuracy as
     * "1%" and its test loss as 4.609 (Figure 1: "about 0 accuracy") */
    {"depth", "VGG_08", "Figure 1 (no numbers)", NAN, NAN, NAN, NAN, NAN, NAN},
    {"depth", "VGG_38", "section 5.1", NAN, NAN, 1.0, NAN, NAN, 4.609},
    /* section 5.1: "test accuracy increased from 1% to 47.43%, test loss decreased from
     * 4.609 to 1.968"; the BN run is Table 1's "BN before ReLU" row */
    {"bn", "VGG_38 without BN", "section 5.1", NAN, NAN, 1.0, NAN, NAN, 4.609},
    {"bn", "VGG_38 with BN", "Table 1, section 5.1", 55.5, 47.2, 47.4, 1.571, 1.952, 1.968},
    /* Table 1 */
    {"bn-placement", "BN before ReLU", "Table 1", 55.5, 47.2, 47.4, 1.571, 1.952, 1.968},
    {"bn-placement", "BN after ReLU", "Table 1", 64.1, 50.7, 51.9, 1.211, 1.861, 1.852},
    /* Table 2 */
    {"weight-decay", "decay coefficient=0", "Table 2", 64.1, 50.7, 51.9, 1.211, 1.861, 1.852},
    {"weight-decay", "decay coefficient=0.001", "Table 2", 62.9, 54.1, 52.7, 1.278, 1.692, 1.707},
    {"weight-decay", "decay coefficient=0.005", "Table 2", 46.7, 42.4, 43.0, 1.963, 2.084, 2.089},
    /* Table 3 */
    {"dropout", "Without Dropout", "Table 3", 64.1, 50.7, 51.9, 1.211, 1.861, 1.852},
    {"dropout", "Dropout(p=0.5)", "Table 3", 0.7, 0.5, 0.5, 4.608, 4.610, 4.611},
    {"dropout", "Dropout(p=0.2)", "Table 3", 0.9, 0.6, 0.5, 4.605, 4.607, 4.610},
    /* Table 4 */
    {"batch-size", "Batch size=100", "Table 4", 64.1, 50.7, 51.9, 1.211, 1.861, 1.852},
    {"batch-size", "Batch size=80", "Table 4", 61.7, 51.3, 51.5, 1.318, 1.843, 1.850},
    {"batch-size", "Batch size=50", "Table 4", 62.1, 51.6, 52.2, 1.305, 1.811, 1.785},
    /* Table 5 (the report spells "Weitght decay") */
    {"combined", "Default setting", "Table 5", 64.1, 50.7, 51.9, 1.211, 1.861, 1.852},
    {"combined", "Weight decay=0.001; batch size=50", "Table 5", 53.1, 49.4, 50.0, 1.696, 1.853, 1.828},
    {"combined", "Weight decay=0.001; batch size=80", "Table 5", 59.4, 52.0, 51.7, 1.435, 1.741, 1.777},
};

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

static void mean_std(const double *v, int n, double *mean, double *std)
{
    double s = 0;
    for (int i = 0; i < n; i++)
        s += v[i];
    *mean = n ? s / n : NAN;
    double q = 0;
    for (int i = 0; i < n; i++)
        q += (v[i] - *mean) * (v[i] - *mean);
    *std = n > 1 ? sqrt(q / (n - 1)) : NAN;
}

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
    mean_std(sv, n, &mean, &std);
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
} report_opts;

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: study report DIR...\n"
               "  Writes REPORT.md beside the runs of `study sweep`: per plan the report's table\n"
               "  (last epoch's train/val, test of the best-validation model; mean ± std over\n"
               "  seeds), the report's own CIFAR-100 numbers, plots and a gradient-flow verdict.\n"
               "  DIR is a plan folder (RUNS/depth, RUNS/bn-placement, ...) or a runs directory\n"
               "  (every plan folder in it). All must be in one runs directory: REPORT.md and\n"
               "  the comparison plots RUNS/<plan>_compare.png are written there.\n"
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
    *o = (report_opts){.nplans = 0};
    int ndirs = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
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
                fprintf(stderr, "study report: %s is neither a plan folder (depth, bn, bn-placement, "
                                "weight-decay, dropout, batch-size, combined) nor a runs directory "
                                "holding one\n", a);
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

static void write_plan(study_buf *b, const char *root, const study_plan *p, plan_runs *pr, bool gnuplot,
                       int *nplot_fail, int *nincomplete)
{
    int order[STUDY_PLAN_MAX_MEMBERS + MAX_PLAN_RUNS];
    int ng = group_order(pr, order);
    study_buf_printf(b, "## %s: %s\n\nThe report's %s. Runs: `%s/%s`.\n\n", p->name, p->title, p->source,
                     p->name, STUDY_PLAN_CSV);

    /* the table, over complete runs */
    study_buf_printf(b, "| configuration | seeds | epochs | train acc | val acc | test acc | train loss "
                        "| val loss | test loss |\n|---|---|---|---|---|---|---|---|---|\n");
    for (int k = 0; k < ng; k++) {
        double v[NMETRIC][MAX_PLAN_RUNS];
        int n = 0, emin = 0, emax = 0;
        study_buf seeds = {0};
        for (int i = 0; i < pr->n; i++) {
            const run_result *r = &pr->runs[i];
            if (pr->group[i] != order[k] || !r->complete)
                continue;
            for (int m = 0; m < NMETRIC; m++)
                v[m][n] = r->m[m];
            emin = n == 0 || r->epochs < emin ? r->epochs : emin;
            emax = n == 0 || r->epochs > emax ? r->epochs : emax;
            study_buf_printf(&seeds, "%s%d", n ? ", " : "", r->seed);
            n++;
        }
        study_buf_printf(b, "| %s | %s |", group_label(pr, order[k]), n ? seeds.data : "—");
        if (n == 0)
            study_buf_printf(b, " — |");
        else if (emin == emax)
            study_buf_printf(b, " %d |", emin);
        else
            study_buf_printf(b, " %d–%d |", emin, emax);
        for (int m = 0; m < NMETRIC; m++)
            put_cell(b, m, v[m], n);
        study_buf_printf(b, "\n");
        study_buf_free(&seeds);
    }
    study_buf_printf(b, "\nAccuracies in percent, losses as cross-entropy; train and validation from the last "
                        "epoch (summary.csv), test from the best-validation checkpoint (test_summary.csv)");
    bool several = false;
    for (int i = 1; i < pr->n; i++)
        several |= pr->group[i] == pr->group[i - 1] && pr->runs[i].complete && pr->runs[i - 1].complete;
    study_buf_printf(b, several ? "; mean ± sample standard deviation over seeds.\n" : ".\n");
    for (int i = 0, listed = 0; i < pr->n; i++)
        if (!pr->runs[i].complete) {
            study_buf_printf(b, "%s- not in the table: `%s` (%s): %s\n", listed++ ? "" : "\n",
                             pr->runs[i].rel, pr->labels[i], pr->runs[i].problem);
            fprintf(stderr, "study report: %s: %s\n", pr->runs[i].dir, pr->runs[i].problem);
            ++*nincomplete;
        }

    /* the report's numbers */
    study_buf_printf(b, "\nThe report's numbers (CIFAR-100, 100 epochs, seed 0):\n\n"
                        "| configuration | source | train acc | val acc | test acc | train loss | val loss "
                        "| test loss |\n|---|---|---|---|---|---|---|---|\n");
    for (size_t i = 0; i < sizeof report_rows / sizeof report_rows[0]; i++) {
        const report_row *rr = &report_rows[i];
        if (strcmp(rr->plan, p->name))
            continue;
        double v[NMETRIC] = {rr->train_acc, rr->val_acc, rr->test_acc, rr->train_loss, rr->val_loss, rr->test_loss};
        study_buf_printf(b, "| %s | %s |", rr->label, rr->source);
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
    int nd = 0;
    for (int k = 0; k < ng; k++)
        for (int i = 0; i < pr->n; i++)
            if (pr->group[i] == order[k] && pr->runs[i].epochs > 0) {
                dirs[nd] = pr->runs[i].dir;
                snprintf(seeded[nd], sizeof seeded[0], "%s (seed %d)", pr->labels[i], pr->runs[i].seed);
                labels[nd] = seeded[nd];
                nd++;
            }
    char png[4400], name[300];
    snprintf(name, sizeof name, "%s_compare.png", p->name);
    study_path(png, sizeof png, root, name);
    study_buf_printf(b, "\n");
    if (nd > 0 && gnuplot) {
        char title[300];
        snprintf(title, sizeof title, "%s: %s", p->name, p->title);
        if (study_plot_compare(png, title, nd, dirs, labels) != TG_OK) {
            fprintf(stderr, "study report: %s\n", tg_last_error());
            ++*nplot_fail;
        }
    }
    if (study_file_exists(png))
        study_buf_printf(b, "![%s: validation accuracy and first-layer gradient per epoch](%s)\n\n", p->name, name);
    for (int k = 0; k < ng; k++)
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

/* the budget the runs were made with: the first run's config.txt on one line */
static void write_budget(study_buf *b, const plan_runs *all, int nplans)
{
    for (int p = 0; p < nplans; p++)
        for (int i = 0; i < all[p].n; i++) {
            char path[4400];
            if (!study_path(path, sizeof path, all[p].runs[i].dir, STUDY_CONFIG_TXT) || !study_file_exists(path))
                continue;
            char *text = study_read_file(path, NULL);
            if (!text)
                continue;
            study_buf_printf(b, "Budget and settings of the runs (from `%s`, per-configuration flags "
                                "aside):\n\n```\n", all[p].runs[i].rel);
            for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                static const char *const skip[] = {"--experiment-dir", "--bn", "--num-blocks-per-stage",
                                                   "--weight-decay", "--dropout", "--batch-size", "--seed",
                                                   "--resume", "--threads"};
                bool s = false;
                for (size_t k = 0; k < sizeof skip / sizeof skip[0]; k++)
                    s |= !strncmp(line, skip[k], strlen(skip[k])) &&
                         (line[strlen(skip[k])] == ' ' || line[strlen(skip[k])] == '\0');
                if (!s)
                    study_buf_printf(b, "%s\n", line);
            }
            study_buf_printf(b, "```\n\n");
            free(text);
            return;
        }
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
    int nplot_fail = 0, nincomplete = 0;
    study_buf b = {0};
    char path[4200];
    if (ok) {
        study_buf_printf(&b, "# The study: reproduction report\n\n"
                             "Written by `study report` from the runs of `study sweep` in `%s`. Each plan "
                             "reproduces a table or figure of the student report "
                             "(`shared/seed/000_22097fe93f5cd507.txt`); the report's own numbers, on "
                             "CIFAR-100 with 100 epochs, follow each table for comparison. Runs on another "
                             "data set or a smaller budget are comparable in their trends, not their "
                             "numbers.\n\n",
                         o.root);
        write_budget(&b, all, o.nplans);
        for (int p = 0; p < o.nplans; p++)
            write_plan(&b, o.root, o.plans[p], &all[p], gnuplot, &nplot_fail, &nincomplete);
        ok = study_path(path, sizeof path, o.root, "REPORT.md");
        if (ok && study_buf_write(&b, path) != TG_OK) {
            fprintf(stderr, "study report: %s\n", tg_last_error());
            ok = false;
        }
    }
    if (ok)
        fprintf(stderr, "study report: wrote %s (%d plan%s%s%s)\n", path, o.nplans, o.nplans == 1 ? "" : "s",
                nincomplete ? ", some runs incomplete" : "", nplot_fail ? ", some plots failed" : "");
    study_buf_free(&b);
    for (int p = 0; all && p < o.nplans; p++)
        free(all[p].runs);
    free(all);
    return ok ? 0 : 1;
}
