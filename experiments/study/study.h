/* experiments/study/study.h — what the parts of the `study` program share.
 *
 *   study train --num-blocks-per-stage 5 --bn before --experiment-dir runs/vgg38_bn
 *   study sweep ...     (sweep.c)      study report ...     (report.c)
 *
 * `study train` writes one experiment directory:
 *
 *   config.txt             the flags of the run, "--flag value" one a line
 *   summary.csv            epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds
 *                          (epoch counts from 1; lr is the rate used in that epoch;
 *                          accuracies are fractions in [0, 1])
 *   gradflow.csv           epoch,layer,kind,mean_abs,rms,max_abs,zero_frac: per epoch, one
 *                          row a weight tensor (kind "weight" or "bn_weight"; biases left
 *                          out) then one row a layer output (kind "activation"), from the
 *                          epoch's last training batch; layer is the scope with '/' -> '_'
 *                          ("input_conv_conv_0", "block_0_0_conv_1", "logit_linear_layer")
 *   checkpoint_latest.safetensors, checkpoint_best.safetensors
 *   test_summary.csv       test_acc,test_loss of the best-validation model, written last
 *                          (after the plots): a run is complete exactly when it exists
 *   curves.png/.gp, gradflow.png/.gp   the plots and the gnuplot scripts that drew them
 *
 *   .lock                  held (flock) by the process that owns the directory; holds its pid
 *
 * Every file is replaced atomically (a temporary file of a unique name beside it, fsync,
 * rename), so a run killed at any moment leaves whole files, and `--resume` continues
 * from the last checkpoint after checking that the files agree with it. One process
 * owns a directory at a time: `study train` locks its run and `study sweep` its runs
 * directory, for as long as they run; a second is refused at once.
 *
 * Errors: functions here return TG_OK or a tg_status and leave one message in
 * tg_last_error() (as the library's own functions do), never exit.
 */
#ifndef STUDY_STUDY_H
#define STUDY_STUDY_H

#include <tapegrad.h>

#include <stdbool.h>
#include <stddef.h>

/* ------------------------------------------------------------------ subcommands */

/* Each takes its subcommand's arguments with argv[0] = the subcommand's name and
 * returns the exit status: 0 success, 1 failure, 2 usage error (one line on stderr).
 * study_train_main resets getopt (optind = 0), so it may be called more than once in a
 * process; it keeps no state between calls. */
int study_train_main(int argc, char **argv);
int study_sweep_main(int argc, char **argv);  /* sweep.c */
int study_report_main(int argc, char **argv); /* report.c */

/* ------------------------------------------------------------------ an experiment directory */

#define STUDY_CONFIG_TXT "config.txt"
#define STUDY_SUMMARY_CSV "summary.csv"
#define STUDY_GRADFLOW_CSV "gradflow.csv"
#define STUDY_TEST_SUMMARY_CSV "test_summary.csv"
#define STUDY_CHECKPOINT_LATEST "checkpoint_latest.safetensors"
#define STUDY_CHECKPOINT_BEST "checkpoint_best.safetensors"
#define STUDY_CURVES_PNG "curves.png"
#define STUDY_GRADFLOW_PNG "gradflow.png"

/* Paths longer than STUDY_PATH_MAX (Linux's PATH_MAX) are refused, never cut; a
 * directory that holds a run may have at most STUDY_DIR_MAX bytes, so that each of its
 * files, temporary names included, fits. */
#define STUDY_PATH_MAX 4096
#define STUDY_DIR_MAX (STUDY_PATH_MAX - 128)
#define STUDY_LOCK_FILE ".lock"

/* dir/name into buf (always NUL-terminated); false if it did not fit */
bool study_path(char *buf, size_t size, const char *dir, const char *name);
bool study_file_exists(const char *path);
/* A run is complete when dir/test_summary.csv exists. */
bool study_run_complete(const char *dir);
/* mkdir -p; TG_OK if it exists already */
tg_status study_mkdirs(const char *dir);

/* ------------------------------------------------------------------ files (files.c) */

/* Makes this process the owner of dir (which must exist): an exclusive flock on
 * dir/.lock, taken without waiting, and this process's pid written into it. Returns the
 * descriptor to keep open while the directory is owned (study_unlock_dir, or the
 * process's exit, releases it); -1 with tg_last_error naming the holder's pid if
 * another process owns it. `what` names the directory in messages ("run", "runs
 * directory"). Advisory: only `study` asks for it, and it needs a file system whose
 * flock works across the processes (not every NFS does). */
int study_lock_dir(const char *dir, const char *what);
void study_unlock_dir(int fd); /* -1 is ignored */

/* Seconds on the monotonic clock, for durations (train's epochs, sweep's runs). */
double study_now(void);

/* Files are read whole and replaced atomically by the library's one implementation
 * (tensor/fileio.h: tg__read_file, tg__write_file_atomic, tg__atomic_begin/commit);
 * the study reads no file longer than this. */
#define STUDY_READ_MAX ((size_t)1 << 28)
/* The whole file, NUL-terminated (*len_out its length if not NULL): tg__read_file's
 * buffer, freed with tg_mem_free. NULL + tg_last_error on failure ("study: PATH: ..."). */
char *study_read_file(const char *path, size_t *len_out);

/* A growing text buffer for building a file before writing it whole. A failed
 * allocation makes it "failed" and later appends do nothing; check once at the end. */
typedef struct study_buf {
    char *data; /* NUL-terminated; NULL until the first append */
    size_t len, cap;
    bool failed;
} study_buf;
void study_buf_printf(study_buf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
void study_buf_append(study_buf *b, const char *text, size_t len);
void study_buf_free(study_buf *b);
/* the buffer written atomically to path; TG_ERR_NOMEM if it failed to grow */
tg_status study_buf_write(const study_buf *b, const char *path);

/* A CSV file with a header line, read whole. Cells are strings (no quoting: the study's
 * files have none); lines are split on ',' and must all have the header's count. */
typedef struct study_csv {
    int ncols, nrows;
    char **names; /* ncols column names */
    char **cells; /* nrows * ncols, row-major */
    char *text;   /* owns the strings */
    bool cut;     /* the last line has no '\n': the file was cut short (the study's
                   * files always end with one) */
} study_csv;
study_csv *study_read_csv(const char *path); /* NULL + tg_last_error */
study_csv *study_read_csv_in(const char *dir, const char *name); /* dir/name, as study_read_csv */
void study_csv_free(study_csv *c);
int study_csv_col(const study_csv *c, const char *name); /* -1 if there is no such column */
const char *study_csv_cell(const study_csv *c, int row, int col);   /* NULL out of range */
/* the cell as a number; NAN if the column is missing, the row out of range or the
 * cell not a number */
double study_csv_num(const study_csv *c, int row, const char *name);

/* The last epoch of dir/gradflow.csv: the mean |dL/dW| of its first and its last conv
 * layer's weight row (kind "weight", "conv" in the layer's name), which `study train`
 * prints and `study report` tabulates. False if the file, a column or such a row is
 * missing; nconv counts the conv rows (first and last are one row when it is 1). */
typedef struct study_grad_ends {
    int epoch, nconv;
    char first[96], last[96];
    double first_grad, last_grad;
} study_grad_ends;
bool study_read_grad_ends(const char *dir, study_grad_ends *out);

/* ------------------------------------------------------------------ plots (plots.c) */

/* Plots are drawn by gnuplot (pngcairo) from a .gp script written next to the PNG;
 * the PNG replaces the old one only when gnuplot exits with status 0 and wrote a whole
 * PNG (signature, chunks, IEND at the end). When gnuplot is not installed each function
 * returns TG_ERR_STATE with a message that says so; callers check study_have_gnuplot()
 * first to print a one-line note instead. A plot is a picture of results the CSV files
 * hold: `study train` reports a failed one as a warning and completes the run. */
bool study_have_gnuplot(void);
/* dir/curves.png: training and validation loss and accuracy per epoch (summary.csv) */
tg_status study_plot_curves(const char *dir);
/* dir/gradflow.png: mean |dL/dW| per weight tensor, one line an epoch (later darker),
 * linear and log y (gradflow.csv) */
tg_status study_plot_gradflow(const char *dir);
/* out_png (and out_png with .gp for .png): the report's training figures for n runs:
 * loss and accuracy per epoch (validation solid, training dashed) and the first conv
 * layer's (input_conv_conv_0) mean |dL/dW| per epoch (log y); one colour a run,
 * colors[i] (NULL: i + 1), so that a configuration's seeds can share one; labelled
 * labels[i] (NULL: the run's directory). */
tg_status study_plot_compare(const char *out_png, const char *title, int n, const char *const *run_dirs,
                             const char *const *labels, const int *colors);
/* out_png (script beside it, .gp): the report's gradient-flow figure for n runs side by
 * side: mean |dL/dW| of each weight tensor (convolutions and the linear layer, in
 * order; batch norm's left out so that every configuration has the same x axis) at
 * each run's last epoch, log y, one line a run in colour colors[i] (NULL: i + 1). */
tg_status study_plot_gradflow_layers(const char *out_png, const char *title, int n, const char *const *run_dirs,
                                     const char *const *labels, const int *colors);

/* ------------------------------------------------------------------ sweep and report */

/* A runs directory (study sweep --runs-dir, default "runs"):
 *
 *   RUNS/configs/<name>/   one experiment directory per configuration and seed, named by
 *                          study_config_name ("VGG_38_bn-after_wd0.001_seed0"), shared by
 *                          every plan that has that configuration
 *   RUNS/PLAN/plan.csv     label,run,seed: the plan's runs in the report's row order (run is
 *                          relative to RUNS: "configs/VGG_38_seed0")
 *   RUNS/PLAN/<name>       a link to ../configs/<name>, for people
 *   RUNS/REPORT.md, RUNS/<plan>_compare.png    written by study report
 */
#define STUDY_CONFIGS_DIR "configs"
#define STUDY_PLAN_CSV "plan.csv"
/* in each run: the train flags the sweep gave it, "--flag value" one a line (threads,
 * directory, --data-dir and --resume left out); a later sweep refuses to reuse a
 * complete or interrupted run with other flags */
#define STUDY_SWEEP_ARGS "sweep_args.txt"
#define STUDY_PLAN_MAX_MEMBERS 4

/* ------------------------------------------------------------------ the plans (plans.c) */

#define STUDY_MAX_PLANS 16
#define STUDY_BASE_BATCH_SIZE 100 /* the report's baseline, which canonical names leave out */
#define STUDY_NUM_STAGES 3        /* every network of the report has three stages */

/* What one row of a plan varies (the budget — data set, epochs, filters — is the sweep's). */
typedef struct study_config {
    int num_blocks_per_stage; /* 0: VGG_08, 5: VGG_38 */
    tg_bn_placement bn;
    double weight_decay;
    double dropout;
    int batch_size;           /* 0: the sweep's --batch-size, else 100 */
} study_config;

/* The report's own numbers for one row (CIFAR-100, 100 epochs, seed 0): accuracies in
 * percent, losses as printed, NAN where it gives none. */
typedef struct study_reported {
    const char *source; /* "Table 1", "section 5.1" */
    double train_acc, val_acc, test_acc, train_loss, val_loss, test_loss;
} study_reported;

typedef struct study_plan {
    const char *name;    /* "depth", the argument of study sweep and the folder's name */
    const char *title;   /* a line for the report */
    const char *source;  /* where the report shows it: "Table 1, Figures 6 and 7" */
    const char *summary; /* a line for study sweep --help */
    int n;
    struct {
        const char *label; /* the report's row label: "BN after ReLU" */
        study_config config;
        study_reported reported;
        /* the report's direction against the plan's first row where its numbers give
         * none (+1 higher, -1 lower, 0: its numbers say, or nothing does), and why */
        int direction;
        const char *direction_why;
    } members[STUDY_PLAN_MAX_MEMBERS];
} study_plan;

int study_num_plans(void);
const study_plan *study_plan_at(int i);          /* NULL out of range */
const study_plan *study_plan_find(const char *name); /* NULL if unknown */
int study_plan_member(const study_plan *p, const char *label); /* its index, -1 if none */
const char *study_plan_names(void);              /* "depth, bn, ...": every plan's name */
extern const char *const study_bn_names[3];      /* by tg_bn_placement: "none", "before", "after" */
const char *study_bn_name(tg_bn_placement bn);
/* The canonical run name of c at this batch size and seed; false if it did not fit. */
bool study_config_name(char *buf, size_t size, const study_config *c, int batch_size, int seed);

/* ------------------------------------------------------------------ statistics (stats.c) */

/* Mean and sample standard deviation (n - 1); the std is NAN for n < 2. */
void study_mean_std(const double *v, int n, double *mean, double *sd);
/* I_x(a, b), the regularised incomplete beta function; NAN for a or b <= 0. */
double study_incomplete_beta(double a, double b, double x);
/* P(|T| >= |t|) for Student's t with df > 0 degrees of freedom (df need not be whole). */
double study_t_two_sided_p(double t, double df);

/* Welch's t-test of mean(other) - mean(base). */
typedef struct study_welch {
    double diff; /* mean(other) - mean(base) */
    double se;   /* its standard error, sqrt(s0^2/n0 + s1^2/n1) */
    double t;    /* diff / se: +-inf when neither side has any spread and the means differ */
    double df;   /* Welch–Satterthwaite degrees of freedom */
    double p;    /* two-sided */
} study_welch;
/* False (diff set, the rest NAN) when a side has fewer than 2 values or a value is not
 * finite. */
bool study_welch_test(const double *base, int nbase, const double *other, int nother, study_welch *out);
/* Seeds per side for a two-sided test at STUDY_ALPHA to find a difference delta with
 * 80% power when the sides' standard deviations are sd0 and sd1 (normal approximation);
 * at least 2; -1 when it cannot be said (delta 0, a NAN, or more than a million). */
int study_seeds_needed(double sd0, double sd1, double delta);

#define STUDY_ALPHA 0.05
typedef enum study_verdict {
    STUDY_UNTESTED,            /* a side has fewer than 2 seeds, or the report gives no direction */
    STUDY_REPRODUCED,          /* p < STUDY_ALPHA, the report's direction */
    STUDY_CONTRADICTED,        /* p < STUDY_ALPHA, the opposite direction */
    STUDY_NOT_DISTINGUISHABLE, /* p >= STUDY_ALPHA */
} study_verdict;
/* The verdict on a test against the report's direction (+1 other above base, -1 below). */
study_verdict study_judge(const study_welch *w, int expected_sign);
const char *study_verdict_name(study_verdict v);

#endif
