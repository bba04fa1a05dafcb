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
#include "report.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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
                     report_md_path(root, run), STUDY_CONFIG_TXT, budget);
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
    report_put_comparison_header(b, true);
    for (int i = 0; i < n; i++)
        report_put_comparison_row(b, &cmp[i], true);
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
        ok = report_read_plan(o.root, o.plans[p], &all[p]);
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
            report_write_plan(&sections, o.root, o.plans[p], &all[p], gnuplot, o.run_plots, &nplot_fail, &nincomplete, cmp, &ncmp);
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

