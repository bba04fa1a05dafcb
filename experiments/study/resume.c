/* experiments/study/resume.c — `study train --resume`: a run's files checked against
 * each other before the run continues, and nothing written until they agree.
 *
 * An epoch writes summary.csv and gradflow.csv, then the latest checkpoint, then the best
 * one if the epoch is the best. So the states a kill can leave are: CSV files one epoch
 * ahead of the latest checkpoint (that epoch runs again and its rows are dropped); a
 * latest checkpoint that names itself the best, ahead of the best file (the best is
 * written again from it); no checkpoint yet and at most one epoch of rows; and, from
 * versions that wrote the best before the latest, a best file one epoch ahead (that
 * epoch runs again and writes it again). Anything else — an epoch out of range or not
 * a number, another configuration or seed, rows cut, malformed, repeated or missing, a
 * best checkpoint the latest does not name — is refused with the file and what is
 * wrong: training on from files that disagree would lose or mix results. */
#include "train.h"
#include "cli.h"

#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* A refusal to resume: one line naming the run, the file and what is wrong; returns 1. */
static int refuse_resume(const run *r, const char *file, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static int refuse_resume(const run *r, const char *file, const char *fmt, ...)
{
    char why[1200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    fprintf(stderr, PROG ": cannot resume %s: %s%s%s; nothing was written\n", r->dir, file ? file : "",
            file ? ": " : "", why);
    return 1;
}

/* A checkpoint's metadata, as the run reads it */
typedef struct ckpt_meta {
    int epoch, best_epoch;
    double best_acc;
    char best_acc_text[40];
} ckpt_meta;

/* The study's metadata of a checkpoint (file, in r's directory) checked against r: the
 * format, epoch 1..--epochs, best_epoch 1..epoch, best_val_acc in [0, 1], the seed and
 * every option that changes results. 0, or 1 after a message. */
static int check_meta(const run *r, const char *file, const tg_safetensors *meta, ckpt_meta *out)
{
    const char *format = tg_safetensors_meta(meta, "format"), *ep = tg_safetensors_meta(meta, "epoch"),
               *be = tg_safetensors_meta(meta, "best_epoch"), *ba = tg_safetensors_meta(meta, "best_val_acc"),
               *seed = tg_safetensors_meta(meta, "seed"), *config = tg_safetensors_meta(meta, "config");
    int64_t epoch, best_epoch;
    char *end = NULL, want_seed[32];
    if (!format || strcmp(format, STUDY_CHECKPOINT_FORMAT))
        return refuse_resume(r, file, "format '%s' is not %s", format ? format : "(missing)",
                             STUDY_CHECKPOINT_FORMAT);
    if (!tg__parse_integer(ep, 1, r->opt.epochs, &epoch))
        return refuse_resume(r, file, "epoch '%s' is not an integer in 1..%d (--epochs)", ep ? ep : "(missing)",
                             r->opt.epochs);
    if (!tg__parse_integer(be, 1, epoch, &best_epoch))
        return refuse_resume(r, file, "best_epoch '%s' is not an integer in 1..%" PRId64 " (its epoch)",
                             be ? be : "(missing)", epoch);
    double acc = ba && *ba ? strtod(ba, &end) : NAN;
    if (!end || *end || !(acc >= 0 && acc <= 1) || strlen(ba) >= sizeof out->best_acc_text)
        return refuse_resume(r, file, "best_val_acc '%s' is not a number in [0, 1]", ba ? ba : "(missing)");
    snprintf(want_seed, sizeof want_seed, "%" PRIu64, r->opt.seed);
    if (!seed || strcmp(seed, want_seed))
        return refuse_resume(r, file, "seed '%s' is not the run's %s", seed ? seed : "(missing)", want_seed);
    if (!config)
        return refuse_resume(r, file, "it has no config (the flags it was trained with)");
    /* the flags it was saved with, read as config.txt is */
    char *text = strdup(config), where[STUDY_PATH_MAX + 64];
    options saved = study_train_defaults();
    snprintf(where, sizeof where, " in the config of %s/%s", r->dir, file);
    int pr = text ? study_train_parse_config(text, where + 4, &saved, NULL) : 1;
    char va[4200], vb[4200];
    int id = pr ? 0 : study_train_differing_option(&saved, &r->opt, NULL, va, vb, sizeof va);
    free(text);
    if (pr)
        return refuse_resume(r, file, "its config is not a config.txt");
    if (id)
        return refuse_resume(r, file, "it was saved with --%s %s, the run's %s has --%s %s",
                             study_train_option_name(id), va, STUDY_CONFIG_TXT, study_train_option_name(id), vb);
    *out = (ckpt_meta){.epoch = (int)epoch, .best_epoch = (int)best_epoch, .best_acc = acc};
    snprintf(out->best_acc_text, sizeof out->best_acc_text, "%s", ba);
    return 0;
}

/* A CSV cell other than the epoch: 'n' a number as %.9g writes it (nan and inf
 * included), 's' a name, 'k' a gradient-flow kind. */
static bool cell_ok(char type, const char *cell)
{
    char *end;
    switch (type) {
    case 'n': return *cell && !isspace((unsigned char)*cell) && (strtod(cell, &end), !*end);
    case 's': return *cell != '\0';
    default: return !strcmp(cell, "weight") || !strcmp(cell, "bn_weight") || !strcmp(cell, "activation");
    }
}

/* dir/name checked as a file of the run: exactly `header`, whole lines, epochs 1, 2, ...
 * in column 0, in order, per_epoch rows each, and each other cell of the type `types`
 * gives its column (cell_ok). *epochs_out the number of epochs it holds (0 if the file is
 * missing). NULL without a file or after a message (*failed). */
static study_csv *check_csv(const run *r, const char *name, const char *header, const char *types,
                            int per_epoch, int *epochs_out, bool *failed)
{
    char path[STUDY_PATH_MAX];
    *epochs_out = 0;
    *failed = false;
    if (!study_file_exists(run_path(path, r, name)))
        return NULL;
    study_csv *c = study_read_csv(path);
    *failed = true;
    if (!c) {
        refuse_resume(r, NULL, "%s", tg_last_error());
        return NULL;
    }
    study_buf h = {0};
    for (int i = 0; i < c->ncols; i++)
        study_buf_printf(&h, "%s%s", i ? "," : "", c->names[i]);
    bool same = h.data && !strcmp(h.data, header);
    study_buf_free(&h);
    if (!same)
        refuse_resume(r, name, "its header is not %s", header);
    else if (c->cut)
        refuse_resume(r, name, "its last line has no line break: the file was cut short");
    else if (c->nrows % per_epoch)
        refuse_resume(r, name, "%d rows are not whole epochs of %d rows", c->nrows, per_epoch);
    else
        *failed = false;
    for (int row = 0; !*failed && row < c->nrows; row++) {
        int want = row / per_epoch + 1;
        const char *ep = study_csv_cell(c, row, 0);
        int64_t e;
        if (!tg__parse_integer(ep, 1, INT32_MAX, &e) || e != want) {
            refuse_resume(r, name, "row %d has epoch '%s', expected %d (epochs 1, 2, ... in order, %d row%s "
                          "each)", row + 1, ep, want, per_epoch, per_epoch == 1 ? "" : "s");
            *failed = true;
        }
        for (int col = 1; !*failed && col < c->ncols; col++)
            if (!cell_ok(types[col], study_csv_cell(c, row, col))) {
                const char *kind = types[col] == 'n'   ? "a number"
                                   : types[col] == 's' ? "a name"
                                                       : "weight, bn_weight or activation";
                refuse_resume(r, name, "row %d, column %s: '%s' is not %s", row + 1, c->names[col],
                              study_csv_cell(c, row, col), kind);
                *failed = true;
            }
    }
    if (*failed) {
        study_csv_free(c);
        return NULL;
    }
    *epochs_out = c->nrows / per_epoch;
    return c;
}

/* The header and the rows of epochs 1..epochs of c (checked by check_csv) into b. */
static void keep_rows(const study_csv *c, const char *header, int epochs, int per_epoch, study_buf *b)
{
    study_buf_printf(b, "%s\n", header);
    for (int row = 0; c && row < epochs * per_epoch && row < c->nrows; row++)
        for (int col = 0; col < c->ncols; col++)
            study_buf_printf(b, "%s%c", study_csv_cell(c, row, col), col + 1 < c->ncols ? ',' : '\n');
}

/* Where the run in r->dir stands, with nothing written: loads the best checkpoint (to
 * check it fits the model) and then the latest (the state to continue from), checks
 * their metadata and both CSV files against each other, and keeps the CSV rows of the
 * epochs done in r->summary and r->gradflow. *start is the epochs done, *rewrite_best
 * set when the best checkpoint must be written again from the latest (a run killed
 * between the two). 0, or 1 after a message. */
int study_train_check_resume(run *r, int *start, int *best_epoch, double *best_acc, bool *rewrite_best)
{
    char latest[STUDY_PATH_MAX], best[STUDY_PATH_MAX];
    run_path(latest, r, STUDY_CHECKPOINT_LATEST);
    run_path(best, r, STUDY_CHECKPOINT_BEST);
    bool have_latest = study_file_exists(latest), have_best = study_file_exists(best);
    *start = 0;
    *best_epoch = 0;
    *best_acc = -1;
    *rewrite_best = false;

    /* both are loaded into the model (each must fit it), the latest last: its state is
     * the one to continue from. Without a latest the run starts again from its
     * initialisation, which must stay in the model: the best is only read. The latest's
     * problems are reported first. */
    char best_error[1400] = "";
    tg_safetensors *best_meta = NULL;
    ckpt_meta bm = {0}, lm = {0};
    if (have_best) {
        if (have_latest)
            tg_checkpoint_load(best, r->model, r->nstate, r->state_names, r->state, &best_meta);
        else
            best_meta = tg_safetensors_load(best);
        if (!best_meta)
            snprintf(best_error, sizeof best_error, "%s", tg_last_error());
    }
    int bad = 0;
    if (have_latest) {
        tg_safetensors *meta = NULL;
        if (tg_checkpoint_load(latest, r->model, r->nstate, r->state_names, r->state, &meta) != TG_OK)
            bad = refuse_resume(r, NULL, "%s", tg_last_error());
        else
            bad = check_meta(r, STUDY_CHECKPOINT_LATEST, meta, &lm);
        tg_safetensors_free(meta);
    }
    if (!bad && best_error[0])
        bad = refuse_resume(r, NULL, "%s", best_error);
    if (!bad && best_meta)
        bad = check_meta(r, STUDY_CHECKPOINT_BEST, best_meta, &bm);
    tg_safetensors_free(best_meta);
    if (bad)
        return 1;
    int done = lm.epoch; /* 0 without a latest checkpoint */

    /* the CSV files: rows of epochs 1..done, or one epoch more (written before a
     * checkpoint that a kill prevented; it runs again) */
    int per_epoch = 2 * tg_model_num_layers(r->model), ns, ng; /* gradflow.csv: 2 rows a layer */
    bool failed;
    study_csv *sc = check_csv(r, STUDY_SUMMARY_CSV, STUDY_SUMMARY_HEADER, "ennnnnn", 1, &ns, &failed);
    if (failed)
        return 1;
    study_csv *gc = check_csv(r, STUDY_GRADFLOW_CSV, STUDY_GRADFLOW_HEADER, "esknnnn", per_epoch, &ng, &failed);
    int status = failed;
    for (int k = 0; !status && k < 2; k++) {
        int n = k ? ng : ns;
        const char *file = k ? STUDY_GRADFLOW_CSV : STUDY_SUMMARY_CSV;
        if (done && !(k ? gc : sc))
            status = refuse_resume(r, file, "it is missing, but %s is at epoch %d", STUDY_CHECKPOINT_LATEST, done);
        else if (n < done || n > done + 1)
            status = done ? refuse_resume(r, file, "it holds %d epoch%s, but %s is at epoch %d (expected %d, or "
                                          "%d of an epoch to run again)", n, n == 1 ? "" : "s",
                                          STUDY_CHECKPOINT_LATEST, done, done, done + 1)
                          : refuse_resume(r, file, "it holds %d epochs, but there is no %s (at most 1 epoch, "
                                          "to run again, without one)", n, STUDY_CHECKPOINT_LATEST);
    }
    /* the best checkpoint: the one the latest names, or one the run will write again */
    if (!status && !done && have_best && !(bm.epoch == 1 && ns == 1))
        status = refuse_resume(r, STUDY_CHECKPOINT_BEST, "it holds epoch %d, but there is no %s", bm.epoch,
                               STUDY_CHECKPOINT_LATEST);
    if (!status && done) {
        bool named = have_best && bm.epoch == lm.best_epoch && !strcmp(bm.best_acc_text, lm.best_acc_text);
        /* killed after the latest, before the best: the latest is the best */
        bool behind = lm.best_epoch == done && (!have_best || bm.epoch < done);
        /* killed after the best, before the latest (the order of earlier versions): the
         * epoch runs again and writes it again */
        bool ahead = have_best && bm.epoch == done + 1 && ns == done + 1;
        *rewrite_best = !named && behind;
        if (!named && !behind && !ahead)
            status = have_best ? refuse_resume(r, STUDY_CHECKPOINT_BEST, "it holds epoch %d (best_val_acc %s), "
                                               "but %s names epoch %d (best_val_acc %s) the best", bm.epoch,
                                               bm.best_acc_text, STUDY_CHECKPOINT_LATEST, lm.best_epoch,
                                               lm.best_acc_text)
                               : refuse_resume(r, STUDY_CHECKPOINT_BEST, "it is missing, but %s names epoch %d "
                                               "the best", STUDY_CHECKPOINT_LATEST, lm.best_epoch);
    }
    if (!status) {
        keep_rows(sc, STUDY_SUMMARY_HEADER, done, 1, &r->summary);
        keep_rows(gc, STUDY_GRADFLOW_HEADER, done, per_epoch, &r->gradflow);
        *start = done;
        if (done) {
            *best_epoch = lm.best_epoch;
            *best_acc = lm.best_acc;
        }
    }
    study_csv_free(sc);
    study_csv_free(gc);
    return status;
}
