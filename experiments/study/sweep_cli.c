/* experiments/study/sweep_cli.c — `study sweep`'s options: parsing them, and --help. */
#include "sweep.h"

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


int sweep_usage(FILE *f, int status)
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
int sweep_parse_args(int argc, char **argv, sweep_opts *o)
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

