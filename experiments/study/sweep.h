/* experiments/study/sweep.h — what the files of `study sweep` share (sweep.c says what
 * the sweep does): its options, one run, and the functions each file gives the others.
 *   sweep_cli.c       the options and --help
 *   sweep_runs.c      the runs a plan needs, their flags and state, the plan folders
 *   sweep_children.c  `study train` child processes, and the Slurm script instead
 *   sweep.c           study_sweep_main */
#ifndef STUDY_SWEEP_H
#define STUDY_SWEEP_H

#include "study.h"

#include <stdio.h>
#include <sys/types.h>

enum { MAX_SEEDS = 64, MAX_ARGS = 32 };

typedef struct sweep_opts {
    const char *plan;
    long epochs, train_limit, jobs, threads, num_filters, batch_size; /* 0: not given */
    int seeds[MAX_SEEDS], nseeds;
    const char *dataset, *data_dir, *runs_dir;
    bool dry_run;
    const char *emit_slurm; /* write an sbatch script here instead of running */
    long ranks;             /* MPI ranks a run of the script (0: not given, 1) */
} sweep_opts;

typedef enum run_state { RUN_NEW, RUN_RESUME, RUN_COMPLETE } run_state;

typedef struct run {
    char name[160];   /* canonical name, seed included */
    char dir[4200];   /* runs/configs/<name> */
    /* the train flags that define the run (not threads, directory, resume): flag, value,
     * ...; each a literal, a string of the sweep's argv, or one of text[] */
    const char *args[MAX_ARGS];
    char text[MAX_ARGS][48];
    int nargs, ntext;
    run_state state;
    pid_t pid;
    int index; /* k of "[k/total]" in messages */
    double started;
    int status; /* exit status; -1 not run yet */
} run;

/* ------------------------------------------------------------------ sweep_cli.c */

/* --help to f; returns status */
int sweep_usage(FILE *f, int status);
/* 0, -1 for --help, or 2 after a usage message */
int sweep_parse_args(int argc, char **argv, sweep_opts *o);

/* ------------------------------------------------------------------ sweep_runs.c */

/* dir/name into buf; false (and a message) if it does not fit */
bool sweep_path_in(char *buf, size_t size, const char *dir, const char *name);
/* r for configuration c at this seed: its name, directory and train flags */
bool sweep_make_run(run *r, const study_config *c, int seed, const sweep_opts *o);
/* r's train flags as sweep_args.txt holds them, into b */
void sweep_args_text(const run *r, study_buf *b);
/* r's state from its files; false (and a message) if an existing run was made with other flags */
bool sweep_inspect_run(run *r);
/* RUNS/PLAN: plan.csv and the links to the runs */
bool sweep_write_plan_dir(const study_plan *p, const sweep_opts *o);

/* ------------------------------------------------------------------ sweep_children.c */

/* the path of this program, to run `study train` as a child */
bool sweep_self_path(char *buf, size_t size);
/* the child's argv for r */
void sweep_child_argv(const run *r, const char *self, long threads, char *threads_text, size_t size,
                       char **argv);
/* argv as one shell-quoted line, into b */
void sweep_quote_command(study_buf *b, char **argv);
/* argv as one shell-quoted line, to f */
void sweep_print_command(FILE *f, char **argv);
/* starts r as a child process */
bool sweep_start_child(run *r, long threads, bool log);
/* one line on how r's child ended */
void sweep_report_child(const run *r, int wstatus, int total, bool log);
/* with --ranks: whether every run's batch splits into the ranks (else a message) */
bool sweep_batches_split(const sweep_opts *o, const run *runs, int nruns);
/* the sbatch script of --emit-slurm; the exit status */
int sweep_emit_slurm(const sweep_opts *o, run *runs, int nruns, long threads);

#endif
