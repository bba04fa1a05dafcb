/* experiments/study/sweep_runs.c — the runs a plan needs (canonical names, train flags, state from
 * their files, the check that a reused run was made with the same flags) and the plan
 * folders (plan.csv and the links to the runs). */
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

/* ------------------------------------------------------------------ runs */


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
bool sweep_make_run(run *r, const study_config *c, int seed, const sweep_opts *o)
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
void sweep_args_text(const run *r, study_buf *b)
{
    for (int i = 0; i + 1 < r->nargs; i += 2)
        if (strcmp(r->args[i], "--data-dir"))
            study_buf_printf(b, "%s %s\n", r->args[i], r->args[i + 1]);
}

bool sweep_path_in(char *buf, size_t size, const char *dir, const char *name)
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
bool sweep_inspect_run(run *r)
{
    char p[4400];
    if (study_run_complete(r->dir))
        r->state = RUN_COMPLETE;
    else if (sweep_path_in(p, sizeof p, r->dir, STUDY_SUMMARY_CSV) && study_file_exists(p))
        r->state = RUN_RESUME;
    else
        r->state = RUN_NEW;
    if (r->state == RUN_NEW || !sweep_path_in(p, sizeof p, r->dir, STUDY_SWEEP_ARGS) || !study_file_exists(p))
        return true; /* nothing to keep, or a run made by `study train` by hand */
    char *old = study_read_file(p, NULL);
    if (!old) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    study_buf want = {0};
    sweep_args_text(r, &want);
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
bool sweep_write_plan_dir(const study_plan *p, const sweep_opts *o)
{
    char dir[4200], path[4400];
    if (!sweep_path_in(dir, sizeof dir, o->runs_dir, p->name))
        return false;
    if (study_mkdirs(dir) != TG_OK) {
        fprintf(stderr, "study sweep: %s\n", tg_last_error());
        return false;
    }
    if (!sweep_path_in(path, sizeof path, dir, STUDY_PLAN_CSV))
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
            if (!sweep_path_in(link, sizeof link, dir, name)) {
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

