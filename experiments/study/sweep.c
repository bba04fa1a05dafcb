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

/* ------------------------------------------------------------------ the sweep */

int study_sweep_main(int argc, char **argv)
{
    sweep_opts o;
    int st = sweep_parse_args(argc, argv, &o);
    if (st == -1)
        return sweep_usage(stdout, 0);
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
                if (!sweep_make_run(r, &todo[p]->members[m].config, o.seeds[s], &o)) {
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
        clash |= !sweep_inspect_run(&runs[i]);
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
        bool ok = sweep_self_path(self, sizeof self);
        for (int i = 0; ok && i < nruns; i++) {
            if (runs[i].state == RUN_COMPLETE) {
                fprintf(stderr, "study sweep: %s: complete, would be skipped\n", runs[i].name);
                continue;
            }
            char *cargv[MAX_ARGS + 8];
            sweep_child_argv(&runs[i], self, threads, threads_text, sizeof threads_text, cargv);
            sweep_print_command(stdout, cargv);
        }
        status = ok ? 0 : 1;
        goto done;
    }

    if (o.emit_slurm && !sweep_batches_split(&o, runs, nruns)) {
        status = 2;
        goto done;
    }
    /* plan folders first, so that a report can find the runs while they train */
    bool ok = true;
    for (int p = 0; ok && p < nplans; p++)
        ok = sweep_write_plan_dir(todo[p], &o);
    if (!ok)
        goto done;
    if (o.emit_slurm) {
        status = sweep_emit_slurm(&o, runs, nruns, o.threads);
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
            if (!sweep_start_child(r, threads, log)) {
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
                sweep_report_child(&runs[i], wstatus, total, log);
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
