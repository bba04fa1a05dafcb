/* experiments/study/sweep.c — `study sweep PLAN`: the report's experiments, one child
 * process of `study train` per configuration and seed.
 *
 *   study sweep depth --epochs 100 --dataset cifar100 --data-dir data --jobs 2
 *
 * Where runs live. A configuration (depth, batch norm placement, weight decay, dropout,
 * batch size) and a seed make one experiment directory whose name is derived from them,
 * so that two plans sharing a configuration share its run:
 *
 *   runs/configs/VGG_38_bn-after_seed0/      the run (study train --experiment-dir)
 *   runs/configs/VGG_38_bn-after_wd0.001_seed0/
 *   runs/bn-placement/plan.csv               label,run,seed: the plan's members, in the
 *                                            report's row order (run relative to runs/)
 *   runs/bn-placement/VGG_38_bn-after_seed0  -> ../configs/VGG_38_bn-after_seed0
 *
 * The canonical name is "VGG_08" or "VGG_38" followed by each factor that differs from
 * the report's baseline (no batch norm inside the blocks, weight decay 0, no dropout,
 * batch size 100): "_bn-before" / "_bn-after", "_wd<w>", "_dropout<p>", "_bs<n>", then
 * "_seed<s>". The plan folder's links make runs/depth/VGG_38_seed0 a path to the run,
 * and plan.csv is what `study report` reads (labels included, links need not survive a
 * copy). `sweep all` runs the union of every plan, each configuration once, and writes
 * every plan's folder.
 *
 * The budget flags (--epochs, --train-limit, --dataset, --data-dir, --num-filters) do not
 * enter the name: one runs directory holds one budget. Each run keeps the exact train
 * flags the sweep gave it in sweep_args.txt, and a later sweep that would give a
 * complete or interrupted run different flags stops before starting anything (a quick
 * 1-epoch run must never pass for the 100-epoch one): use another --runs-dir.
 *
 * A run is complete when test_summary.csv exists (skipped), interrupted when
 * summary.csv exists without it (run again with --resume), otherwise run from scratch.
 */
#include "study.h"
#include "cli.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ options */

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

static int usage(FILE *f, int status)
{
    fprintf(f,
            "usage: study sweep PLAN [--epochs N] [--train-limit N] [--seeds 0,1,2] [--jobs J]\n"
            "                        [--dataset NAME] [--data-dir DIR] [--runs-dir DIR] [--threads N]\n"
            "                        [--emit-slurm FILE [--ranks N]]\n"
            "                        [--num-filters N] [--batch-size N] [--dry-run]\n"
            "  Runs the report's experiments: each configuration of PLAN and seed is one\n"
            "  `study train` child process in RUNS/configs/<name>_seed<S>, linked from RUNS/PLAN/.\n"
            "  Complete runs (test_summary.csv) are skipped, interrupted ones resumed.\n");
    for (int i = 0; i < study_num_plans(); i++)
        fprintf(f, "  %s %-13s %s\n", i ? "     " : "PLAN:", study_plan_at(i)->name, study_plan_at(i)->summary);
    fprintf(f, "        %-13s %s\n", "all", "every plan above, each configuration once");
    fprintf(f,
            "  --epochs, --train-limit, --dataset, --data-dir, --num-filters are passed to\n"
            "  `study train` (its defaults when absent); --batch-size replaces 100 except where\n"
            "  the plan sets the batch size.\n"
            "  --seeds LIST   comma-separated training seeds (default 0)\n"
            "  --jobs J       runs at once (default 1); with J > 1 each gets threads / J\n"
            "                 threads and writes its output to its train.log\n"
            "  --runs-dir DIR where runs go (default runs)\n"
            "  --threads N    threads for a run (default: OMP_NUM_THREADS or the cores)\n"
            "  --dry-run      print the commands and what would be skipped; run nothing\n"
            "  --emit-slurm FILE  run nothing: write the plan folders and FILE, an sbatch script\n"
            "                 with one Slurm array task per run not yet complete (each resumes\n"
            "                 an interrupted run); submit it with `sbatch FILE`, then\n"
            "                 `study report RUNS` when the array has finished\n"
            "  --ranks N      with --emit-slurm: each run is N MPI ranks (srun, --ntasks N);\n"
            "                 the batch size must split into N\n"
            "  Exit status: 0 all runs complete, 1 a run failed, 2 usage error.\n");
    return status;
}

static bool parse_seeds(const char *s, sweep_opts *o)
{
    o->nseeds = 0;
    const char *p = s ? s : "";
    for (;;) {
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno || v < 0 || v > 1000000 || (*end && *end != ',')) {
            fprintf(stderr, "study sweep: --seeds wants integers in 0..1000000 separated by commas, got '%s'\n",
                    s ? s : "");
            return false;
        }
        for (int i = 0; i < o->nseeds; i++)
            if (o->seeds[i] == (int)v) {
                fprintf(stderr, "study sweep: --seeds lists seed %ld twice\n", v);
                return false;
            }
        if (o->nseeds == MAX_SEEDS) {
            fprintf(stderr, "study sweep: --seeds takes at most %d seeds\n", MAX_SEEDS);
            return false;
        }
        o->seeds[o->nseeds++] = (int)v;
        if (!*end)
            return true;
        p = end + 1;
    }
}

/* 0 on success, else the exit status (2) after a message, or -1 for --help */
static int parse_args(int argc, char **argv, sweep_opts *o)
{
    *o = (sweep_opts){.runs_dir = "runs", .jobs = 1, .nseeds = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h"))
            return -1;
        if (a[0] != '-' || !a[1]) {
            if (o->plan) {
                fprintf(stderr, "study sweep: one PLAN only, got '%s' and '%s'\n", o->plan, a);
                return 2;
            }
            o->plan = a;
            continue;
        }
        if (!strcmp(a, "--dry-run")) {
            o->dry_run = true;
            continue;
        }
        if (!strcmp(a, "--emit-slurm")) {
            if (!v || !*v || v[0] == '-') {
                fprintf(stderr, "study sweep: --emit-slurm wants the script's file name\n");
                return 2;
            }
            o->emit_slurm = v;
            i++;
            continue;
        }
        bool ok = true;
        if (!strcmp(a, "--epochs"))
            ok = tg__cli_long("study sweep", a, v, 1, 100000, &o->epochs);
        else if (!strcmp(a, "--train-limit"))
            ok = tg__cli_long("study sweep", a, v, 1, 1L << 30, &o->train_limit);
        else if (!strcmp(a, "--jobs"))
            ok = tg__cli_long("study sweep", a, v, 1, 256, &o->jobs);
        else if (!strcmp(a, "--threads"))
            ok = tg__cli_long("study sweep", a, v, 1, 4096, &o->threads);
        else if (!strcmp(a, "--ranks"))
            ok = tg__cli_long("study sweep", a, v, 1, 100000, &o->ranks);
        else if (!strcmp(a, "--num-filters"))
            ok = tg__cli_long("study sweep", a, v, 1, 4096, &o->num_filters);
        else if (!strcmp(a, "--batch-size"))
            ok = tg__cli_long("study sweep", a, v, 1, 1L << 20, &o->batch_size);
        else if (!strcmp(a, "--seeds"))
            ok = parse_seeds(v, o);
        else if (!strcmp(a, "--dataset") || !strcmp(a, "--data-dir") || !strcmp(a, "--runs-dir")) {
            if (!v || !*v) {
                fprintf(stderr, "study sweep: %s wants a value\n", a);
                return 2;
            }
            *(!strcmp(a, "--dataset") ? &o->dataset : !strcmp(a, "--data-dir") ? &o->data_dir
                                                                                : &o->runs_dir) = v;
        } else {
            fprintf(stderr, "study sweep: unknown option '%s' (try --help)\n", a);
            return 2;
        }
        if (!ok)
            return 2;
        i++;
    }
    if (o->ranks && !o->emit_slurm) {
        fprintf(stderr, "study sweep: --ranks is for --emit-slurm (here, run `mpirun -np N study train` yourself)\n");
        return 2;
    }
    if (!o->plan) {
        fprintf(stderr, "study sweep: which plan? (%s, all; try --help)\n", study_plan_names());
        return 2;
    }
    if (strcmp(o->plan, "all") && !study_plan_find(o->plan)) {
        fprintf(stderr, "study sweep: unknown plan '%s' (%s, all)\n", o->plan, study_plan_names());
        return 2;
    }
    return 0;
}

/* ------------------------------------------------------------------ runs */

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

static void add_arg(run *r, const char *flag, const char *value)
{
    r->args[r->nargs++] = flag;
    r->args[r->nargs++] = value;
}

/* a flag with a formatted value */
static void add_num(run *r, const char *flag, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void add_num(run *r, const char *flag, const char *fmt, ...)
{
    char *t = r->text[r->ntext++];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t, sizeof r->text[0], fmt, ap);
    va_end(ap);
    add_arg(r, flag, t);
}

/* the batch size a member runs with: the plan's own, else --batch-size, else 100 */
static int effective_batch_size(const study_config *c, const sweep_opts *o)
{
    return c->batch_size > 0 ? c->batch_size : o->batch_size > 0 ? (int)o->batch_size : STUDY_BASE_BATCH_SIZE;
}

/* fills r for configuration c and seed; false if a name or path does not fit */
static bool make_run(run *r, const study_config *c, int seed, const sweep_opts *o)
{
    *r = (run){.status = -1};
    int bs = effective_batch_size(c, o);
    if (!study_config_name(r->name, sizeof r->name, c, bs, seed))
        return false;
    int n = snprintf(r->dir, sizeof r->dir, "%s/%s/%s", o->runs_dir, STUDY_CONFIGS_DIR, r->name);
    if (n < 0 || (size_t)n >= sizeof r->dir || (size_t)n > STUDY_DIR_MAX) /* what study train takes */
        return false;
    /* budget first, then the configuration: the same name and budget always give the same
     * flags, so sweep_args.txt compares equal between plans and sweeps */
    if (o->dataset)
        add_arg(r, "--dataset", o->dataset);
    if (o->data_dir)
        add_arg(r, "--data-dir", o->data_dir);
    if (o->epochs)
        add_num(r, "--epochs", "%ld", o->epochs);
    if (o->train_limit)
        add_num(r, "--train-limit", "%ld", o->train_limit);
    if (o->num_filters)
        add_num(r, "--num-filters", "%ld", o->num_filters);
    add_num(r, "--num-blocks-per-stage", "%d", c->num_blocks_per_stage);
    add_arg(r, "--bn", study_bn_name(c->bn));
    add_num(r, "--weight-decay", "%g", c->weight_decay);
    add_num(r, "--dropout", "%g", c->dropout);
    add_num(r, "--batch-size", "%d", bs);
    add_num(r, "--seed", "%d", seed);
    return true;
}

/* the flags as sweep_args.txt holds them: one "--flag value" a line, --data-dir left out
 * (the same data may move, as `study train --resume` allows) */
static void args_text(const run *r, study_buf *b)
{
    for (int i = 0; i + 1 < r->nargs; i += 2)
        if (strcmp(r->args[i], "--data-dir"))
            study_buf_printf(b, "%s %s\n", r->args[i], r->args[i + 1]);
}

static bool path_in(char *buf, size_t size, const char *dir, const char *name)
{
    if (!study_path(buf, size, dir, name)) {
        fprintf(stderr, "study sweep: path too long: %s/%s\n", dir, name);
        return false;
    }
    return true;
}

/* the value of --flag in an args text ("--flag value" lines) into buf; false if absent */
static bool flag_value(const char *text, const char *flag, char *buf, size_t size)
{
    size_t n = strlen(flag);
    for (const char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0))
        if (!strncmp(line, flag, n) && (line[n] == ' ' || line[n] == '\n' || !line[n])) {
            const char *v = line[n] == ' ' ? line + n + 1 : line + n;
            snprintf(buf, size, "%.*s", (int)strcspn(v, "\n"), v);
            return true;
        }
    return false;
}

/* the first flag whose value differs between two args texts, as a phrase */
static bool first_difference(const char *then, const char *now, char *msg, size_t size)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *text = pass ? now : then, *other = pass ? then : now;
        for (const char *line = text; *line; line += strcspn(line, "\n") + (line[strcspn(line, "\n")] != 0)) {
            char flag[64], v[512], w[512];
            snprintf(flag, sizeof flag, "%.*s", (int)strcspn(line, " \n"), line);
            flag_value(text, flag, v, sizeof v);
            if (!flag_value(other, flag, w, sizeof w)) {
                if (pass)
                    snprintf(msg, size, "was made without %s, this sweep gives %s %s", flag, flag, v);
                else
                    snprintf(msg, size, "was made with %s %s, this sweep gives no %s", flag, v, flag);
                return true;
            }
            if (strcmp(v, w)) {
                snprintf(msg, size, "was made with %s %s, this sweep gives %s %s", flag, v, flag, w);
                return true;
            }
        }
    }
    return false;
}

/* Classifies r from its directory; false (with a message) when the directory holds a
 * run made with other flags. */
static bool inspect_run(run *r)
{
    char p[4400];
    if (study_run_complete(r->dir))
        r->state = RUN_COMPLETE;
    else if (path_in(p, sizeof p, r->dir, STUDY_SUMMARY_CSV) && study_file_exists(p))
        r->state = RUN_RESUME;
    else
        r->state = RUN_NEW;
    if (r->state == RUN_NEW || !path_in(p, sizeof p, r->dir, STUDY_SWEEP_ARGS) || !study_file_exists(p))
        return true; /* nothing to keep, or a run made by `study train` by hand */
    char *old = study_read_file(p, NULL);
    if (!old) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    study_buf want = {0};
    args_text(r, &want);
    char msg[1200];
    bool differs = first_difference(old, want.data ? want.data : "", msg, sizeof msg);
    if (differs)
        fprintf(stderr, "study sweep: %s %s; use another --runs-dir or delete it\n", r->dir, msg);
    tg_mem_free(old);
    study_buf_free(&want);
    return !differs;
}

/* ------------------------------------------------------------------ plan folders */

/* RUNS/PLAN/plan.csv (the union of its old rows and this sweep's, in member order then
 * seed) and a relative link RUNS/PLAN/<run> -> ../configs/<run> per row. */
static bool write_plan_dir(const study_plan *p, const sweep_opts *o)
{
    char dir[4200], path[4400];
    if (!path_in(dir, sizeof dir, o->runs_dir, p->name))
        return false;
    if (study_mkdirs(dir) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    if (!path_in(path, sizeof path, dir, STUDY_PLAN_CSV))
        return false;
    /* seeds already listed by an earlier sweep stay listed */
    int extra[STUDY_PLAN_MAX_MEMBERS][MAX_SEEDS], nextra[STUDY_PLAN_MAX_MEMBERS] = {0};
    study_csv *old = NULL;
    if (study_file_exists(path) && !(old = study_read_csv(path)))
        fprintf(stderr, "study sweep: %s; writing it anew\n", tg_last_error());
    for (int row = 0; old && row < old->nrows; row++) {
        const char *label = study_csv_cell(old, row, study_csv_col(old, "label"));
        double seed = study_csv_num(old, row, "seed");
        for (int m = 0; label && m < p->n && seed >= 0 && seed <= 1000000; m++)
            if (!strcmp(label, p->members[m].label)) {
                bool dup = false;
                for (int k = 0; k < o->nseeds; k++)
                    dup |= o->seeds[k] == (int)seed;
                for (int k = 0; k < nextra[m]; k++)
                    dup |= extra[m][k] == (int)seed;
                if (!dup && nextra[m] < MAX_SEEDS)
                    extra[m][nextra[m]++] = (int)seed;
            }
    }
    /* an old row keeps the run directory it named (the batch size may have come from
     * another --batch-size then) */
    study_buf b = {0};
    study_buf_printf(&b, "label,run,seed\n");
    bool ok = true;
    for (int m = 0; m < p->n; m++) {
        int seeds[2 * MAX_SEEDS], ns = 0;
        for (int k = 0; k < o->nseeds; k++)
            seeds[ns++] = o->seeds[k];
        for (int k = 0; k < nextra[m]; k++)
            seeds[ns++] = extra[m][k];
        for (int k = 1; k < ns; k++) /* insertion sort: a handful of seeds */
            for (int j = k; j > 0 && seeds[j - 1] > seeds[j]; j--) {
                int t = seeds[j];
                seeds[j] = seeds[j - 1];
                seeds[j - 1] = t;
            }
        for (int k = 0; k < ns; k++) {
            char name[160], target[200], link[4400];
            const char *old_run = NULL;
            for (int row = 0; old && row < old->nrows; row++) {
                const char *label = study_csv_cell(old, row, study_csv_col(old, "label"));
                if (label && !strcmp(label, p->members[m].label) &&
                    study_csv_num(old, row, "seed") == seeds[k])
                    old_run = study_csv_cell(old, row, study_csv_col(old, "run"));
            }
            bool mine = false;
            for (int j = 0; j < o->nseeds; j++)
                mine |= o->seeds[j] == seeds[k];
            if (mine || !old_run) {
                study_config_name(name, sizeof name, &p->members[m].config,
                                  effective_batch_size(&p->members[m].config, o), seeds[k]);
                snprintf(target, sizeof target, "%s/%s", STUDY_CONFIGS_DIR, name);
            } else {
                snprintf(target, sizeof target, "%s", old_run);
                const char *slash = strrchr(old_run, '/');
                snprintf(name, sizeof name, "%s", slash ? slash + 1 : old_run);
            }
            study_buf_printf(&b, "%s,%s,%d\n", p->members[m].label, target, seeds[k]);
            /* the link, relative so that the runs directory can move */
            char rel[220];
            snprintf(rel, sizeof rel, "../%s", target);
            if (!path_in(link, sizeof link, dir, name)) {
                ok = false;
                continue;
            }
            char cur[256];
            ssize_t len = readlink(link, cur, sizeof cur - 1);
            if (len >= 0) {
                cur[len] = '\0';
                if (!strcmp(cur, rel))
                    continue;
                unlink(link);
            }
            if (symlink(rel, link) != 0 && errno != EEXIST) {
                fprintf(stderr, "study sweep: cannot link %s -> %s: %s\n", link, rel, strerror(errno));
                ok = false;
            }
        }
    }
    study_csv_free(old);
    if (study_buf_write(&b, path) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        ok = false;
    }
    study_buf_free(&b);
    return ok;
}

/* ------------------------------------------------------------------ children */

/* This program's path, for messages and exec; false (with a message) if unknown. */
static bool self_path(char *buf, size_t size)
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
static void child_argv(const run *r, const char *self, long threads, char *threads_text, size_t size,
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
static void quote_command(study_buf *b, char **argv)
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

static void print_command(FILE *f, char **argv)
{
    study_buf b = {0};
    quote_command(&b, argv);
    fprintf(f, "%s\n", b.data ? b.data : "");
    study_buf_free(&b);
}

/* Starts r as a child process; false (with a message) if it could not. With a log, the
 * child's stdout and stderr go to RUN/train.log (appended, so a resumed run keeps its
 * first part). */
static bool start_child(run *r, long threads, bool log)
{
    char self[4096], threads_text[32];
    if (!self_path(self, sizeof self))
        return false;
    char *argv[MAX_ARGS + 8];
    child_argv(r, self, threads, threads_text, sizeof threads_text, argv);
    char logpath[4400];
    if (study_mkdirs(r->dir) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    study_buf b = {0};
    args_text(r, &b);
    char argspath[4400];
    bool ok = path_in(argspath, sizeof argspath, r->dir, STUDY_SWEEP_ARGS) &&
              path_in(logpath, sizeof logpath, r->dir, "train.log");
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
static void report_child(const run *r, int wstatus, int total, bool log)
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
static bool batches_split(const sweep_opts *o, const run *runs, int nruns)
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
static int emit_slurm(const sweep_opts *o, run *runs, int nruns, long threads)
{
    char self[4096], threads_text[32];
    if (!self_path(self, sizeof self))
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
        child_argv(&r, self, threads, threads_text, sizeof threads_text, argv);
        study_buf_printf(&b, "  %d) train=(", k++);
        quote_command(&b, argv);
        char *dirv[] = {r.dir, NULL};
        study_buf_printf(&b, ")\n     dir=");
        quote_command(&b, dirv);
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

/* ------------------------------------------------------------------ the sweep */

int study_sweep_main(int argc, char **argv)
{
    sweep_opts o;
    int st = parse_args(argc, argv, &o);
    if (st == -1)
        return usage(stdout, 0);
    if (st)
        return st;

    /* the plans to run and the distinct runs they need, in plan order */
    const study_plan *todo[STUDY_MAX_PLANS];
    int nplans = 0;
    if (!strcmp(o.plan, "all"))
        for (int i = 0; i < study_num_plans(); i++)
            todo[nplans++] = study_plan_at(i);
    else
        todo[nplans++] = study_plan_find(o.plan);
    int most = 0;
    for (int p = 0; p < nplans; p++)
        most += todo[p]->n * o.nseeds;
    run *runs = calloc((size_t)most, sizeof *runs);
    if (!runs) {
        fprintf(stderr, "study sweep: out of memory\n");
        return 1;
    }
    int nruns = 0;
    for (int p = 0; p < nplans; p++)
        for (int m = 0; m < todo[p]->n; m++)
            for (int s = 0; s < o.nseeds; s++) {
                /* built in place: its args point into its own text */
                run *r = &runs[nruns];
                if (!make_run(r, &todo[p]->members[m].config, o.seeds[s], &o)) {
                    fprintf(stderr, "study sweep: --runs-dir '%s' is too long\n", o.runs_dir);
                    free(runs);
                    return 2;
                }
                bool seen = false;
                for (int i = 0; i < nruns && !seen; i++)
                    seen = !strcmp(runs[i].name, r->name);
                nruns += !seen;
            }

    /* the runs directory is this sweep's until it ends: a second sweep on it would train
     * the same runs at once (a dry run only looks) */
    int lock = -1, status = 1;
    if (!o.dry_run &&
        (study_mkdirs(o.runs_dir) != TG_OK || (lock = study_lock_dir(o.runs_dir, "runs directory")) < 0)) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        goto done;
    }

    /* what is there already; any run made with other flags stops the sweep */
    int nskip = 0, nresume = 0;
    bool clash = false;
    for (int i = 0; i < nruns; i++) {
        clash |= !inspect_run(&runs[i]);
        nskip += runs[i].state == RUN_COMPLETE;
        nresume += runs[i].state == RUN_RESUME;
    }
    if (clash)
        goto done;

    long threads = o.threads;
    if (o.jobs > 1) {
        long total = threads > 0 ? threads : tg_get_num_threads();
        threads = total / o.jobs > 1 ? total / o.jobs : 1;
    }
    bool log = o.jobs > 1;
    fprintf(stderr, "study sweep: %s: %d run%s in %s/%s (%d complete, %d to resume, %d to start)%s\n",
            o.plan, nruns, nruns == 1 ? "" : "s", o.runs_dir, STUDY_CONFIGS_DIR, nskip, nresume,
            nruns - nskip - nresume, o.dry_run ? "; dry run" : "");

    if (o.dry_run) {
        char self[4096], threads_text[32];
        bool ok = self_path(self, sizeof self);
        for (int i = 0; ok && i < nruns; i++) {
            if (runs[i].state == RUN_COMPLETE) {
                fprintf(stderr, "study sweep: %s: complete, would be skipped\n", runs[i].name);
                continue;
            }
            char *cargv[MAX_ARGS + 8];
            child_argv(&runs[i], self, threads, threads_text, sizeof threads_text, cargv);
            print_command(stdout, cargv);
        }
        status = ok ? 0 : 1;
        goto done;
    }

    if (o.emit_slurm && !batches_split(&o, runs, nruns)) {
        status = 2;
        goto done;
    }
    /* plan folders first, so that a report can find the runs while they train */
    bool ok = true;
    for (int p = 0; ok && p < nplans; p++)
        ok = write_plan_dir(todo[p], &o);
    if (!ok)
        goto done;
    if (o.emit_slurm) {
        status = emit_slurm(&o, runs, nruns, o.threads);
        goto done;
    }

    int total = nruns - nskip, started = 0, failed = 0, running = 0, next = 0;
    for (int i = 0; i < nruns; i++)
        if (runs[i].state == RUN_COMPLETE)
            fprintf(stderr, "study sweep: %s: complete, skipped\n", runs[i].name);
    for (;;) {
        while (running < o.jobs && next < nruns) {
            run *r = &runs[next++];
            if (r->state == RUN_COMPLETE)
                continue;
            r->index = ++started;
            fprintf(stderr, "study sweep: [%d/%d] %s: %s%s\n", started, total, r->name,
                    r->state == RUN_RESUME ? "resuming" : "starting", log ? " (output in train.log)" : "");
            if (!start_child(r, threads, log)) {
                failed++;
                continue;
            }
            running++;
        }
        if (running == 0)
            break;
        int wstatus;
        pid_t pid = waitpid(-1, &wstatus, 0);
        if (pid < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "study sweep: waitpid: %s\n", strerror(errno));
            goto done;
        }
        for (int i = 0; i < nruns; i++)
            if (runs[i].pid == pid) {
                running--;
                runs[i].status = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : 128 + WTERMSIG(wstatus);
                failed += runs[i].status != 0;
                report_child(&runs[i], wstatus, total, log);
                runs[i].pid = 0;
            }
    }
    if (failed)
        fprintf(stderr, "study sweep: %s: %d of %d run%s failed\n", o.plan, failed, total, total == 1 ? "" : "s");
    else
        fprintf(stderr, "study sweep: %s: all %d run%s complete (%d trained now, %d skipped)\n", o.plan, nruns,
                nruns == 1 ? "" : "s", total, nskip);
    status = failed ? 1 : 0;
done:
    study_unlock_dir(lock);
    free(runs);
    return status;
}
