/* experiments/study/train_gradflow.c — what `study train` reads off the tape of an
 * epoch's last training batch: the gradient flow (gradflow.csv's rows: each weight's
 * gradient, then each layer's output gradient) and, with --tape-html, the tape as a page. */
#include "train.h"
#include "../../tensor/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void underscored(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s);
    for (char *p = buf; *p; p++)
        if (*p == '/')
            *p = '_';
}

static void stats_row(study_buf *b, int epoch, const char *layer, const char *kind, tg_grad_stats s)
{
    char name[128];
    underscored(layer, name, sizeof name);
    if (s.count == 0) /* no gradient reached it */
        study_buf_printf(b, "%d,%s,%s,0,0,0,1\n", epoch, name, kind);
    else
        study_buf_printf(b, "%d,%s,%s,%.9g,%.9g,%.9g,%.9g\n", epoch, name, kind, s.mean_abs, s.rms, s.max_abs,
                         s.zero_frac);
}

/* The gradient flow of the step just back-propagated, layer by layer in the order the
 * model made them (tg_model_layer): every layer's weight gradient (batch norm's gamma as
 * "bn_weight"; biases left out), before the update and the zeroing, then every layer's
 * output gradient, read off the record the layer made last in its scope. */
void study_gradflow_record(run *r, int epoch)
{
    int n = tg_model_num_layers(r->model);
    for (int k = 0; k < n; k++) {
        tg_nn_layer_info l = tg_model_layer(r->model, k);
        tg_tensor *g = tg_grad(l.weight);
        tg_grad_stats s = g ? tg_tensor_stats(g) : (tg_grad_stats){0};
        stats_row(&r->gradflow, epoch, l.name, l.kind == TG_NN_BATCH_NORM2D ? "bn_weight" : "weight", s);
    }
    for (int k = 0; k < n; k++) {
        tg_nn_layer_info l = tg_model_layer(r->model, k);
        int id = tg_tape_last_in_scope(r->tp, l.name);
        tg_grad_stats s = id >= 0 ? tg_record_grad_stats(tg_tape_record(r->tp, id)) : (tg_grad_stats){0};
        stats_row(&r->gradflow, epoch, l.name, "activation", s);
    }
}

/* --tape-html: the tape of the step whose gradient flow was just read, as a web page
 * that steps through its backward (tg_tape_write_html), replaced whole or not at all. */
int study_tape_html_write(run *r, int epoch)
{
    char *text = NULL, title[STUDY_PATH_MAX + 64], what[STUDY_PATH_MAX + 16];
    size_t len = 0;
    snprintf(title, sizeof title, "study train %s: epoch %d, last batch", r->dir, epoch);
    snprintf(what, sizeof what, "--tape-html %s", r->opt.tape_html);
    FILE *f = open_memstream(&text, &len);
    tg_status st = f ? tg_tape_write_html(r->tp, f, &(tg_html_options){.title = title})
                     : tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (f && fclose(f) != 0 && st == TG_OK)
        st = tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (st == TG_OK)
        st = tg__write_file_atomic("study", r->opt.tape_html, text, len);
    free(text);
    if (st != TG_OK)
        return study_train_fail(what);
    r->tape_html_written = true;
    fprintf(stderr, "%s" PROG ": wrote %s (%zu bytes): the tape of epoch %d's last batch, to open in a browser\n",
            r->tty ? "\r\033[K" : "", r->opt.tape_html, len, epoch);
    return 0;
}

/* --tape-html needs Graphviz's dot: the empty tape's page, thrown away, says before
 * training whether it can be written, not after the first epoch. */
int study_tape_html_check(run *r)
{
    char *text = NULL, what[STUDY_PATH_MAX + 16];
    size_t len = 0;
    snprintf(what, sizeof what, "--tape-html %s", r->opt.tape_html);
    FILE *f = open_memstream(&text, &len);
    tg_status st = f ? tg_tape_write_html(r->tp, f, NULL) : tg_set_error(TG_ERR_NOMEM, "out of memory");
    if (f)
        fclose(f);
    free(text);
    return st == TG_OK ? 0 : study_train_fail(what);
}

