/* experiments/study/sweep_children.c — each run as a `study train` child process of this program
 * (command line, log file, how it ended), or, with --emit-slurm, as a task of a Slurm job
 * array. */
#include "sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ children */

/* This program's path, for messages and exec; false (with a message) if unknown. */
bool sweep_self_path(char *buf, size_t size)
{
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n < 0) {
        fprintf(stderr, "study sweep: cannot find this program (/proc/self/exe): %s\n", strerror(errno));
        return false;
    }
    buf[n] = '\0';
    return true;
}

/* argv of `study train` for r: the program, "train", r's flags, the directory, threads
 * (formatted into threads_text), resume */
void sweep_child_argv(const run *r, const char *self, long threads, char *threads_text, size_t size,
                       char **argv)
{
    int k = 0;
    argv[k++] = (char *)self;
    argv[k++] = (char *)"train";
    for (int i = 0; i < r->nargs; i++)
        argv[k++] = (char *)r->args[i];
    argv[k++] = (char *)"--experiment-dir";
    argv[k++] = (char *)r->dir;
    if (threads > 0) {
        snprintf(threads_text, size, "%ld", threads);
        argv[k++] = (char *)"--threads";
        argv[k++] = threads_text;
    }
    if (r->state == RUN_RESUME)
        argv[k++] = (char *)"--resume";
    argv[k] = NULL;
}

/* argv as one shell command line, each word quoted where the shell would split or
 * expand it */
void sweep_quote_command(study_buf *b, char **argv)
{
    for (int i = 0; argv[i]; i++) {
        const char *a = argv[i];
        bool quote = !*a || strpbrk(a, " \t\n'\"\\$`*?[]{}();&|<>~#!") != NULL;
        if (!quote) {
            study_buf_printf(b, "%s%s", i ? " " : "", a);
            continue;
        }
        study_buf_printf(b, "%s'", i ? " " : "");
        for (; *a; a++)
            *a == '\'' ? study_buf_printf(b, "'\\''") : study_buf_append(b, a, 1);
        study_buf_printf(b, "'");
    }
}

void sweep_print_command(FILE *f, char **argv)
{
    study_buf b = {0};
    sweep_quote_command(&b, argv);
    fprintf(f, "%s\n", b.data ? b.data : "");
    study_buf_free(&b);
}

/* Starts r as a child process; false (with a message) if it could not. With a log, the
 * child's stdout and stderr go to RUN/train.log (appended, so a resumed run keeps its
 * first part). */
bool sweep_start_child(run *r, long threads, bool log)
{
    char self[4096], threads_text[32];
    if (!sweep_self_path(self, sizeof self))
        return false;
    char *argv[MAX_ARGS + 8];
    sweep_child_argv(r, self, threads, threads_text, sizeof threads_text, argv);
    char logpath[4400];
    if (study_mkdirs(r->dir) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    study_buf b = {0};
    sweep_args_text(r, &b);
    char argspath[4400];
    bool ok = sweep_path_in(argspath, sizeof argspath, r->dir, STUDY_SWEEP_ARGS) &&
              sweep_path_in(logpath, sizeof logpath, r->dir, "train.log");
    if (ok && study_buf_write(&b, argspath) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        ok = false;
    }
    study_buf_free(&b);
    if (!ok)
        return false;
    int logfd = -1;
    if (log && (logfd = open(logpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0666)) < 0) {
        fprintf(stderr, "study sweep: cannot write %s: %s\n", logpath, strerror(errno));
        return false;
    }
    fflush(NULL); /* nothing buffered may be written twice */
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "study sweep: cannot start %s: fork: %s\n", r->name, strerror(errno));
        if (logfd >= 0)
            close(logfd);
        return false;
    }
    if (pid == 0) {
        if (logfd >= 0 && (dup2(logfd, STDOUT_FILENO) < 0 || dup2(logfd, STDERR_FILENO) < 0))
            _exit(127);
        /* /proc/self/exe, not the resolved path: the binary may have been rebuilt (and its
         * path replaced) since the sweep started; this is still the same program */
        execv("/proc/self/exe", argv);
        execv(self, argv);
        static const char msg[] = "study sweep: cannot run study train (exec failed)\n";
        ssize_t w = write(STDERR_FILENO, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    if (logfd >= 0)
        close(logfd);
    r->pid = pid;
    r->started = study_now();
    return true;
}

/* one line on stderr for a finished child */
void sweep_report_child(const run *r, int wstatus, int total, bool log)
{
    int k = r->index;
    double secs = study_now() - r->started;
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0)
        fprintf(stderr, "study sweep: [%d/%d] %s: done in %.1f s\n", k, total, r->name, secs);
    else if (WIFEXITED(wstatus))
        fprintf(stderr, "study sweep: [%d/%d] %s: FAILED with exit status %d after %.1f s%s%s%s\n", k,
                total, r->name, WEXITSTATUS(wstatus), secs, log ? " (see " : "", log ? r->dir : "",
                log ? "/train.log)" : "");
    else
        fprintf(stderr, "study sweep: [%d/%d] %s: FAILED, killed by signal %d (%s) after %.1f s%s%s%s\n",
                k, total, r->name, WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)), secs,
                log ? " (see " : "", log ? r->dir : "", log ? "/train.log)" : "");
}

/* ------------------------------------------------------------------ Slurm */

/* Every run's batch splits into --ranks equal shares, as study train wants; else a
 * message and false. */
bool sweep_batches_split(const sweep_opts *o, const run *runs, int nruns)
{
    long ranks = o->ranks > 0 ? o->ranks : 1;
    for (int i = 0; i < nruns; i++)
        for (int a = 0; a + 1 < runs[i].nargs; a += 2)
            if (!strcmp(runs[i].args[a], "--batch-size") && atol(runs[i].args[a + 1]) % ranks) {
                fprintf(stderr, "study sweep: --ranks %ld: %s has --batch-size %s, which does not split into %ld "
                        "equal shares; choose a number of ranks that divides every batch size of the plan\n",
                        ranks, runs[i].name, runs[i].args[a + 1], ranks);
                return false;
            }
    return true;
}

/* FILE: an sbatch script with one array task per run of runs[] not yet complete. Each
 * task runs its `study train` through srun (N ranks with --ranks N: the run is then an
 * MPI job) and adds --resume when the run was interrupted, which it decides when it
 * starts, not now. The program path is this one's: the cluster's nodes must see it. */
int sweep_emit_slurm(const sweep_opts *o, run *runs, int nruns, long threads)
{
    char self[4096], threads_text[32];
    if (!sweep_self_path(self, sizeof self))
        return 1;
    study_buf b = {0};
    int ntasks = 0;
    for (int i = 0; i < nruns; i++)
        ntasks += runs[i].state != RUN_COMPLETE;
    if (ntasks == 0) {
        fprintf(stderr, "study sweep: %s: every run is complete: no script written; `study report %s`\n", o->plan,
                o->runs_dir);
        return 0;
    }
    long ranks = o->ranks > 0 ? o->ranks : 1;
    study_buf_printf(&b, "#!/bin/bash\n"
                         "# Written by `study sweep %s --emit-slurm`: one Slurm array task per run of the plan\n"
                         "# that was not complete then (%d of %d). Submit with `sbatch %s`; when the array has\n"
                         "# finished, `study report %s`. A task whose run is complete by then does nothing,\n"
                         "# one whose run was interrupted resumes it: resubmitting is safe.\n",
                     o->plan, ntasks, nruns, o->emit_slurm, o->runs_dir);
    study_buf_printf(&b, "#SBATCH --job-name=study-%s\n#SBATCH --array=0-%d\n#SBATCH --ntasks=%ld\n", o->plan,
                     ntasks - 1, ranks);
    if (threads > 0)
        study_buf_printf(&b, "#SBATCH --cpus-per-task=%ld\n", threads);
    study_buf_printf(&b, "#SBATCH --output=%s/slurm-%%A_%%a.out\nset -euo pipefail\n\n"
                         "case ${SLURM_ARRAY_TASK_ID:?run this script with sbatch} in\n",
                     o->runs_dir);
    for (int i = 0, k = 0; i < nruns; i++) {
        if (runs[i].state == RUN_COMPLETE)
            continue;
        run r = runs[i];
        r.state = RUN_NEW; /* --resume is decided when the task starts */
        char *argv[MAX_ARGS + 8];
        sweep_child_argv(&r, self, threads, threads_text, sizeof threads_text, argv);
        study_buf_printf(&b, "  %d) train=(", k++);
        sweep_quote_command(&b, argv);
        char *dirv[] = {r.dir, NULL};
        study_buf_printf(&b, ")\n     dir=");
        sweep_quote_command(&b, dirv);
        study_buf_printf(&b, " ;;\n");
    }
    study_buf_printf(&b, "  *) echo \"no run for array task $SLURM_ARRAY_TASK_ID\" >&2; exit 2 ;;\nesac\n"
                         "if [ -f \"$dir/%s\" ]; then echo \"$dir is complete\"; exit 0; fi\n"
                         "resume=()\n[ -f \"$dir/%s\" ] && resume=(--resume)\n"
                         "srun \"${train[@]}\" \"${resume[@]}\"\n",
                     STUDY_TEST_SUMMARY_CSV, STUDY_SUMMARY_CSV);
    tg_status st = study_buf_write(&b, o->emit_slurm);
    study_buf_free(&b);
    if (st != TG_OK || chmod(o->emit_slurm, 0755) != 0) {
        fprintf(stderr, "study sweep: %s\n", st != TG_OK ? tg_last_error() : strerror(errno));
        return 1;
    }
    fprintf(stderr, "study sweep: %s: wrote %s, %d array task%s of %ld rank%s each; submit it with `sbatch %s`\n",
            o->plan, o->emit_slurm, ntasks, ntasks == 1 ? "" : "s", ranks, ranks == 1 ? "" : "s", o->emit_slurm);
    return 0;
}

