/* experiments/study/train_gradflow.c — what `study train` reads off the tape of an
 * epoch's last training batch: the gradient flow (gradflow.csv's rows: each weight's
 * gradient, then each layer's output gradient) and, with --tape-html, the tape as a page. */
#include "train.h"
#include "../../tensor/fileio.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "block_0_0/conv_1/weight" -> layer "block_0_0/conv_1" */
static void layer_of(const char *param, char *buf, size_t size)
{
    const char *slash = strrchr(param, '/');
    snprintf(buf, size, "%.*s", slash ? (int)(slash - param) : (int)strlen(param), param);
}

static void underscored(const char *s, char *buf, size_t size)
{
    snprintf(buf, size, "%s", s);
    for (char *p = buf; *p; p++)
        if (*p == '/')
            *p = '_';
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* The weights (biases left out, batch norm's gamma in) and the layers they belong to:
 * r->weight_param, r->layers (allocated by the caller for every parameter). */
void study_gradflow_find_weights(run *r)
{
    int np = tg_model_num_params(r->model);
    for (int i = 0; i < np; i++) {
        const char *name = tg_model_param_name(r->model, i);
        if (!ends_with(name, "/weight"))
            continue;
        r->weight_param[r->nweights++] = i;
        char layer[96];
        layer_of(name, layer, sizeof layer);
        bool seen = false;
        for (int k = 0; k < r->nlayers && !seen; k++)
            seen = !strcmp(r->layers[k], layer);
        if (!seen)
            snprintf(r->layers[r->nlayers++], sizeof r->layers[0], "%s", layer);
    }
}

/* "bn_weight" for batch norm's gamma (its layer's last part starts "bn"), else "weight" */
static const char *weight_kind(const char *layer)
{
    const char *last = strrchr(layer, '/');
    last = last ? last + 1 : layer;
    return !strncmp(last, "bn", 2) ? "bn_weight" : "weight";
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

/* The gradient flow of the step just back-propagated: every weight's gradient (before
 * the update and the zeroing), then every layer's output gradient, read off the tape. */
void study_gradflow_record(run *r, int epoch)
{
    for (int k = 0; k < r->nweights; k++) {
        int i = r->weight_param[k];
        char layer[96];
        layer_of(tg_model_param_name(r->model, i), layer, sizeof layer);
        tg_tensor *g = tg_grad(tg_model_param(r->model, i));
        tg_grad_stats s = g ? tg_tensor_stats(g) : (tg_grad_stats){0};
        stats_row(&r->gradflow, epoch, layer, weight_kind(layer), s);
    }
    for (int k = 0; k < r->nlayers; k++)
        r->layer_record[k] = -1;
    int n = tg_tape_size(r->tp);
    for (int id = 0; id < n; id++) {
        const char *scope = tg_tape_record(r->tp, id)->scope;
        for (int k = 0; k < r->nlayers; k++)
            if (!strcmp(scope, r->layers[k])) {
                r->layer_record[k] = id;
                break;
            }
    }
    for (int k = 0; k < r->nlayers; k++) {
        tg_grad_stats s = {0};
        if (r->layer_record[k] >= 0)
            s = tg_record_grad_stats(tg_tape_record(r->tp, r->layer_record[k]));
        stats_row(&r->gradflow, epoch, r->layers[k], "activation", s);
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

