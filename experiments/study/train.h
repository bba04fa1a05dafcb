/* experiments/study/train.h — what the parts of `study train` share: train.c (the run),
 * train_options.c (its flags and config.txt) and resume.c (a run's files checked before
 * it continues). The rest of the program needs none of it (study.h). */
#ifndef STUDY_TRAIN_H
#define STUDY_TRAIN_H

#include "study.h"

#include <stdint.h>
#include <stdio.h>

#define PROG "study train"

/* ------------------------------------------------------------------ flags (train_options.c) */

typedef struct options {
    const char *dataset;
    const char *data_dir; /* NULL: the data set's usual place */
    int num_stages, blocks, filters;
    tg_bn_placement bn;
    tg_activation activation;
    bool residual;
    double dropout;
    tg_optim_kind optimizer;
    double lr, weight_decay, momentum, lr_min;
    int batch_size, epochs;
    uint64_t seed;
    int64_t train_limit; /* 0: every training image */
    int threads;         /* 0: the library's default */
    bool sync_bn;        /* under mpirun: batch norm over every rank's share of the batch */
    const char *experiment_dir; /* NULL: derived from the configuration */
    bool resume;
    const char *tape_html;      /* --tape-html: NULL, or where the page goes */
} options;

enum {
    OPT_DATASET = 1, OPT_DATA_DIR, OPT_STAGES, OPT_BLOCKS, OPT_FILTERS, OPT_BN, OPT_ACTIVATION,
    OPT_RESIDUAL, OPT_DROPOUT, OPT_OPTIMIZER, OPT_LR, OPT_WEIGHT_DECAY, OPT_MOMENTUM, OPT_BATCH,
    OPT_EPOCHS, OPT_LR_MIN, OPT_SEED, OPT_TRAIN_LIMIT, OPT_THREADS, OPT_SYNC_BN, OPT_EXPERIMENT_DIR, OPT_RESUME, OPT_TAPE_HTML,
    OPT_HELP, OPT_COUNT
};

/* The defaults of every flag. */
options study_train_defaults(void);
/* --help's text. */
void study_train_usage(FILE *f);
/* Parses argv into o; set[id] marks the options given. Returns 0, 2 (usage error,
 * message printed) or -1 (--help). `where` names the source in messages. */
int study_train_parse_args(int argc, char **argv, options *o, bool *set, const char *where);
/* The options of a config.txt ("--flag value" one a line); text is cut in place and
 * must outlive o. 0, or 2 after a message naming path. */
int study_train_parse_config(char *text, const char *path, options *o, bool *set);
/* config.txt's text for o. */
void study_train_config_text(const options *o, study_buf *b);
const char *study_train_option_name(int id);
/* The first option that changes results and differs between a and b (among those
 * marked in `only`, if not NULL): its id, with either value in va and vb ("(unset)" when
 * not written); 0 if they agree. */
int study_train_differing_option(const options *a, const options *b, const bool *only, char *va, char *vb,
                                 size_t size);
/* the shortest of %.15g .. %.17g that reads back as v */
void study_train_fmt_double(char *buf, size_t size, double v);

/* ------------------------------------------------------------------ a run (train.c) */

#define STUDY_CHECKPOINT_FORMAT "tapegrad-study-train-1"
#define STUDY_SUMMARY_HEADER "epoch,train_acc,train_loss,val_acc,val_loss,lr,seconds"
#define STUDY_GRADFLOW_HEADER "epoch,layer,kind,mean_abs,rms,max_abs,zero_frac"

/* Everything one run holds; freed by run_free. */
typedef struct run {
    options opt;
    char dir[STUDY_PATH_MAX]; /* at most STUDY_DIR_MAX bytes (parse_args), so every file fits */
    int lock_fd;              /* the run's lock (study_lock_dir), -1 until taken */
    tg_dataset *train, *val, *test;
    tg_vgg *net;
    tg_model *model;
    tg_optim *optim;
    tg_tape *tp;
    tg_batcher *train_b, *val_b, *test_b;
    int nstate;
    const char **state_names;
    tg_tensor **state;
    study_buf summary, gradflow; /* the CSV files' text so far */
    char *config;                /* config.txt's text (malloc'd), also saved in checkpoints */
    bool tty;
    bool tape_html_written; /* --tape-html: once a run */
    bool agreed; /* under MPI: the ranks have agreed whether and where to start */
} run;

/* One line on stderr, "study train: WHAT: tg_last_error()"; returns 1 (the exit status). */
int study_train_fail(const char *what);

/* ------------------------------------------------------------------ the tape, read (train_gradflow.c) */

/* Appends epoch's rows to r->gradflow: each weight's gradient (before the update), then
 * each layer's output gradient, read off the tape of the step just back-propagated. */
void study_gradflow_record(run *r, int epoch);
/* --tape-html: whether the page can be written (Graphviz), before training; and the
 * page of the tape just back-propagated, written atomically. 0, or 1 after a message. */
int study_tape_html_check(run *r);
int study_tape_html_write(run *r, int epoch);

/* ------------------------------------------------------------------ progress (train_progress.c) */

typedef struct epoch_progress {
    int epoch, epochs;
    int64_t batches, done, images;
    double loss_sum, correct, t0, last_draw;
    double avg_epoch_s; /* of the epochs this process ran, 0 before the first */
} epoch_progress;
/* The progress line, redrawn in place (a terminal only). */
void study_progress_draw(const epoch_progress *p, double t);
/* "42s", "3m05s", "2h10m"; "?" when unknown */
void study_fmt_duration(char *buf, size_t size, double s);

/* r->dir/name into buf (STUDY_PATH_MAX bytes): it fits, as the directory's length is
 * bounded */
static inline char *run_path(char *buf, const run *r, const char *name)
{
    study_path(buf, STUDY_PATH_MAX, r->dir, name);
    return buf;
}

/* ------------------------------------------------------------------ ranks (ranks.c) */

/* Joins the MPI job when mpirun (or srun) started this process; else nothing, and the
 * functions below are those of a job of one rank. */
tg_status study_ranks_join(void);
/* Leaves the job: with a nonzero status and other ranks, ends them all (they may be
 * waiting in a collective call); else finalises MPI. */
void study_ranks_leave(int status);
int study_ranks_rank(void);
int study_ranks_size(void);
/* This rank's rows [*first, *first + *count) of n (shares differ by at most one). */
void study_ranks_share(int64_t n, int64_t *first, int64_t *count);
tg_status study_ranks_sum(double *values, int n);        /* across ranks, in place */
tg_status study_ranks_average_grads(tg_model *m);       /* the mean over ranks */
tg_status study_ranks_broadcast(tg_model *m, int n, tg_tensor *const *state); /* rank 0's */
void study_ranks_sync_batch_norm(tg_tape *tp, bool on);

/* ------------------------------------------------------------------ resuming (resume.c) */

/* Where the run in r->dir stands, with nothing written: loads the best checkpoint (to
 * check it fits the model) and then the latest (the state to continue from), checks
 * their metadata and both CSV files against each other, and keeps the CSV rows of the
 * epochs done in r->summary and r->gradflow. *start is the epochs done, *rewrite_best
 * set when the best checkpoint must be written again from the latest (a run killed
 * between the two). 0, or 1 after a one-line refusal that names the file. */
int study_train_check_resume(run *r, int *start, int *best_epoch, double *best_acc, bool *rewrite_best);

#endif
