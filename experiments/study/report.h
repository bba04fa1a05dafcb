/* experiments/study/report.h — what the two files of `study report` share (report.c
 * says what the report holds):
 *   report_plan.c  one plan's runs read, its table, comparisons, figures and sections
 *   report.c       the arguments, the budget check, the findings, results.csv, main */
#ifndef STUDY_REPORT_H
#define STUDY_REPORT_H

#include "study.h"

enum { NMETRIC = 6, MAX_PLAN_RUNS = 256 }; /* train acc, val acc, test acc, train loss, val loss, test loss */

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

/* the runs of plan.csv, grouped by label: group[i] is the member index, or
 * STUDY_PLAN_MAX_MEMBERS + k for the k-th label the plan does not know */
typedef struct plan_runs {
    run_result *runs;
    int n;
    int group[MAX_PLAN_RUNS];
    char labels[MAX_PLAN_RUNS][96]; /* each run's label */
} plan_runs;

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

/* ------------------------------------------------------------------ report_plan.c */

/* path relative to root (where REPORT.md is), for links in it */
const char *report_md_path(const char *root, const char *path);
/* reads the runs of plan p under root (RUNS/PLAN/plan.csv and each run's files) into pr */
bool report_read_plan(const char *root, const study_plan *p, plan_runs *pr);
/* one row, and the header, of a table of comparisons (with_plan: a plan column first) */
void report_put_comparison_row(study_buf *b, const comparison *c, bool with_plan);
void report_put_comparison_header(study_buf *b, bool with_plan);
/* plan p's section of REPORT.md into b: its table, the report's numbers, comparisons
 * (appended to cmp), figures; counts failed plots and incomplete runs */
void report_write_plan(study_buf *b, const char *root, const study_plan *p, plan_runs *pr, bool gnuplot,
                       bool run_plots, int *nplot_fail, int *nincomplete, comparison *cmp, int *ncmp);

#endif
