/* autograd/inspect.c — the tape as a table and as a Graphviz graph, and the statistics
 * (tg_tensor_stats) both print for gradients.
 *
 * tg_tape_print writes one line a record (id, op, scope, output, inputs and, after
 * backward, the statistics of dL/d(out)), then the leaves the tape reached with the
 * statistics of their grads; tg_tape_print_with shows a scope's or a range's records
 * only, or one line a scope. tg_tape_write_dot draws the same graph, each node filled
 * by log10 of its mean |gradient|, so that a vanishing gradient shows as a pale chain.
 * Both read the tape only; the one allocation is a small array of the distinct leaves
 * and constants (tg_mem_alloc), freed before returning. */
#include "internal.h"

#include <math.h>
#include <string.h>

#define GRAD_LO (-10.0) /* log10 mean |g| at and below which a node is white */
#define GRAD_HI 0.0     /* ... and at and above which it is full red */
#define MAX_INPUTS_COL 48

/* ------------------------------------------------------------------ shared */

/* A backward has run on this tape: some record holds a gradient. */
static bool has_grads(const tg_tape *tp)
{
    for (int id = tg_tape_size(tp) - 1; id >= 0; id--)
        if (tg_tape_record(tp, id)->grad)
            return true;
    return false;
}

/* Whether o (NULL: everything) selects r: its id range, then its scope or one below. */
static bool shown(const tg_record *r, const tg_print_options *o)
{
    if (!o)
        return true;
    if (r->id < o->first || (o->count > 0 && (int64_t)r->id >= (int64_t)o->first + o->count))
        return false;
    if (!o->scope || !*o->scope)
        return true;
    size_t n = strlen(o->scope);
    return !strncmp(r->scope, o->scope, n) && (r->scope[n] == '\0' || r->scope[n] == '/');
}

/* autograd/internal.h says what it returns; html.c shares it */
const tg_tensor **tg__tape_sources(const tg_tape *tp, const tg_print_options *only, int *count, bool *ok)
{
    int total = 0, n = 0;
    for (int id = 0; id < tg_tape_size(tp); id++)
        total += tg_tape_record(tp, id)->nin;
    *count = 0;
    *ok = true;
    if (total == 0)
        return NULL;
    const tg_tensor **src = tg_mem_alloc((size_t)total * sizeof *src, _Alignof(const tg_tensor *));
    if (!src) {
        *ok = false;
        return NULL;
    }
    for (int id = 0; id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        if (!shown(r, only))
            continue;
        for (int i = 0; i < r->nin; i++) {
            if (r->in_record[i] >= 0 || !r->in[i])
                continue;
            int k = 0;
            while (k < n && src[k] != r->in[i])
                k++;
            if (k == n)
                src[n++] = r->in[i];
        }
    }
    *count = n;
    return src;
}

int tg__source_index(const tg_tensor **src, int n, const tg_tensor *t)
{
    for (int k = 0; k < n; k++)
        if (src[k] == t)
            return k;
    return -1;
}

/* "[4,8] f32" */
static char *shape_dtype(char *buf, size_t size, const tg_tensor *t)
{
    if (!t) {
        snprintf(buf, size, "?");
        return buf;
    }
    char s[160];
    snprintf(buf, size, "%s %s", tg_shape_str(s, sizeof s, t->ndim, t->shape), tg_dtype_name(t->dtype));
    return buf;
}

static const char *leaf_label(const tg_tensor *t)
{
    const char *name = tg_leaf_name(t);
    return name && *name ? name : "(unnamed)";
}

/* ------------------------------------------------------------------ statistics */

tg_grad_stats tg_record_grad_stats(const tg_record *r)
{
    return r && r->grad ? tg_tensor_stats(r->grad) : (tg_grad_stats){0};
}

static void stats_add(tg_grad_stats *s, double v, double *sum_abs, double *sum_sq, int64_t *zeros)
{
    if (!isfinite(v)) {
        s->nonfinite++;
        return;
    }
    double a = fabs(v);
    *sum_abs += a;
    *sum_sq += v * v;
    *zeros += v == 0;
    if (a > s->max_abs)
        s->max_abs = a;
}

tg_grad_stats tg_tensor_stats(const tg_tensor *t)
{
    tg_grad_stats s = {0};
    if (!t || (t->dtype != TG_F32 && t->dtype != TG_F64))
        return s;
    /* contiguous in the common case; otherwise read through a contiguous copy */
    tg_tensor *c = tg_tensor_is_contiguous(t) ? NULL : tg_tensor_clone(NULL, t);
    if (!c && !tg_tensor_is_contiguous(t))
        return s; /* the copy failed: reading t's data in order would run past it */
    const tg_tensor *src = c ? c : t;
    int64_t n = tg_tensor_numel(src), zeros = 0;
    double sum_abs = 0, sum_sq = 0;
    if (src->dtype == TG_F32) {
        const float *p = tg_tensor_data(src);
        for (int64_t i = 0; i < n; i++)
            stats_add(&s, p[i], &sum_abs, &sum_sq, &zeros);
    } else {
        const double *p = tg_tensor_data(src);
        for (int64_t i = 0; i < n; i++)
            stats_add(&s, p[i], &sum_abs, &sum_sq, &zeros);
    }
    tg_tensor_free(c);
    s.count = n;
    int64_t finite = n - s.nonfinite;
    if (finite > 0) {
        s.mean_abs = sum_abs / (double)finite;
        s.rms = sqrt(sum_sq / (double)finite);
        s.l2 = sqrt(sum_sq);
        s.zero_frac = (double)zeros / (double)finite;
    }
    return s;
}

/* ------------------------------------------------------------------ queries */

int tg_tape_last_in_scope(const tg_tape *tp, const char *scope)
{
    if (!tp || !scope)
        return -1;
    for (int id = tg_tape_size(tp) - 1; id >= 0; id--)
        if (strcmp(tg_tape_record(tp, id)->scope, scope) == 0)
            return id;
    return -1;
}

/* ------------------------------------------------------------------ the table */

/* "#3, leaf:fc/weight, const", cut with "..." to fit size (at least 4) */
static void inputs_str(char *buf, size_t size, const tg_record *r)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int i = 0; i < r->nin && len < size; i++) {
        const char *sep = i ? ", " : "";
        int k;
        if (r->in_record[i] >= 0)
            k = snprintf(buf + len, size - len, "%s#%d", sep, r->in_record[i]);
        else if (tg_is_leaf(r->in[i]))
            k = snprintf(buf + len, size - len, "%sleaf:%s", sep, leaf_label(r->in[i]));
        else
            k = snprintf(buf + len, size - len, "%sconst", sep);
        len += k > 0 ? (size_t)k : 0;
    }
    if (len >= size) /* cut: end with "..." */
        memcpy(buf + size - 4, "...", 4);
}

static void print_stats(FILE *f, const tg_grad_stats *s, bool show)
{
    if (!show || s->count == 0)
        fprintf(f, "  %10s %10s %10s %6s %6s\n", "-", "-", "-", "-", "-");
    else
        fprintf(f, "  %10.3e %10.3e %10.3e %5.1f%% %6lld\n", s->mean_abs, s->rms, s->max_abs,
                100.0 * s->zero_frac, (long long)s->nonfinite);
}

static void print_stats_header(FILE *f)
{
    fprintf(f, "  %10s %10s %10s %6s %6s\n", "mean|g|", "rms", "max|g|", "zero", "nonfin");
}

static int imax(int a, int b) { return a > b ? a : b; }

/* One scope of tg_tape_print's summary: its records among those shown. */
typedef struct scope_row {
    const char *scope;
    int records, first, last; /* how many, and the first and last ids */
} scope_row;

/* The scopes of the shown records: a tg_mem_alloc'd array of *n rows, NULL when there
 * are none or the allocation failed (*ok). */
static scope_row *scope_rows(const tg_tape *tp, const tg_print_options *o, int *n, bool *ok)
{
    int total = tg_tape_size(tp);
    *n = 0;
    *ok = true;
    if (total == 0)
        return NULL;
    scope_row *rows = tg_mem_alloc((size_t)total * sizeof *rows, _Alignof(scope_row));
    if (!rows) {
        *ok = false;
        return NULL;
    }
    for (int id = 0; id < total; id++) {
        const tg_record *r = tg_tape_record(tp, id);
        if (!shown(r, o))
            continue;
        int k = *n - 1;
        while (k >= 0 && strcmp(rows[k].scope, r->scope) != 0)
            k--;
        if (k < 0) {
            k = (*n)++;
            rows[k] = (scope_row){r->scope, 0, id, id};
        }
        rows[k].records++;
        rows[k].last = id;
    }
    /* in the order of their last records: a network's layers in order, and the root
     * scope, whose records are spread between them, where its last one is */
    for (int k = 1; k < *n; k++)
        for (int j = k; j > 0 && rows[j - 1].last > rows[j].last; j--) {
            scope_row t = rows[j];
            rows[j] = rows[j - 1];
            rows[j - 1] = t;
        }
    return rows;
}

/* The summary's table: one line a scope, with the statistics of the gradient that
 * reached its last record's output. */
static void print_scopes(const tg_tape *tp, FILE *f, const tg_print_options *o, bool grads)
{
    int n;
    bool ok;
    scope_row *rows = scope_rows(tp, o, &n, &ok);
    if (!ok) {
        fprintf(f, "scopes: (not listed: %s)\n", tg_last_error());
        return;
    }
    char buf[256], ids[48];
    int wscope = 5, wop = 7, wout = 6, wids = 3;
    for (int k = 0; k < n; k++) {
        const tg_record *r = tg_tape_record(tp, rows[k].last);
        wscope = imax(wscope, (int)strlen(*rows[k].scope ? rows[k].scope : "-"));
        wop = imax(wop, (int)strlen(r->op->name));
        wout = imax(wout, (int)strlen(shape_dtype(buf, sizeof buf, r->out)));
        wids = imax(wids, snprintf(ids, sizeof ids, "#%d-#%d", rows[k].first, rows[k].last));
    }
    wscope = wscope > 40 ? 40 : wscope;
    fprintf(f, "scopes: %d\n", n);
    if (n > 0) {
        fprintf(f, "  %-*s  %7s  %-*s  %-*s  %-*s", wscope, "scope", "records", wids, "ids", wop,
                "last op", wout, "output");
        print_stats_header(f);
    }
    for (int k = 0; k < n; k++) {
        const tg_record *r = tg_tape_record(tp, rows[k].last);
        snprintf(ids, sizeof ids, "#%d-#%d", rows[k].first, rows[k].last);
        fprintf(f, "  %-*s  %7d  %-*s  %-*s  %-*s", wscope, *rows[k].scope ? rows[k].scope : "-",
                rows[k].records, wids, ids, wop, r->op->name, wout, shape_dtype(buf, sizeof buf, r->out));
        tg_grad_stats st = tg_record_grad_stats(r);
        print_stats(f, &st, grads);
    }
    tg_mem_free(rows);
}

void tg_tape_print(const tg_tape *tp, FILE *f) { tg_tape_print_with(tp, f, NULL); }

void tg_tape_print_with(const tg_tape *tp, FILE *f, const tg_print_options *opts)
{
    if (!f)
        return;
    if (!tp) {
        fprintf(f, "tape: NULL\n");
        return;
    }
    int n = tg_tape_size(tp), nshown = 0;
    for (int id = 0; id < n; id++)
        nshown += shown(tg_tape_record(tp, id), opts);
    bool grads = has_grads(tp);
    fprintf(f, "tape: %d record%s, %s\n", n, n == 1 ? "" : "s",
            grads ? "gradients dL/d(out) after backward" : "no gradients yet (before backward)");
    if (tg_tape_status(tp) != TG_OK)
        fprintf(f, "tape in error (%s): %s\n", tg_status_name(tg_tape_status(tp)), tg_tape_error(tp));
    if (opts && ((opts->scope && *opts->scope) || opts->first > 0 || opts->count > 0)) {
        fprintf(f, "shown: %d record%s", nshown, nshown == 1 ? "" : "s");
        if (opts->scope && *opts->scope)
            fprintf(f, " in scope %s", opts->scope);
        if (opts->first > 0 || opts->count > 0)
            fprintf(f, " from #%d", opts->first > 0 ? opts->first : 0);
        if (opts->count > 0)
            fprintf(f, " to #%lld", (long long)(opts->first > 0 ? opts->first : 0) + opts->count - 1);
        fprintf(f, "\n");
    }
    if (opts && opts->summary) {
        print_scopes(tp, f, opts, grads);
        return;
    }

    /* column widths: the widest entry of each, within reason */
    char buf[256], in[MAX_INPUTS_COL + 1];
    int wid = 3, wop = 2, wscope = 5, wout = 6, win = 6;
    for (int id = 0; id < n; id++) {
        const tg_record *r = tg_tape_record(tp, id);
        if (!shown(r, opts))
            continue;
        wid = imax(wid, snprintf(buf, sizeof buf, "#%d", id));
        wop = imax(wop, (int)strlen(r->op->name));
        wscope = imax(wscope, (int)strlen(*r->scope ? r->scope : "-"));
        wout = imax(wout, (int)strlen(shape_dtype(buf, sizeof buf, r->out)));
        inputs_str(in, sizeof in, r);
        win = imax(win, (int)strlen(in));
    }
    wscope = wscope > 40 ? 40 : wscope;

    if (nshown > 0) {
        fprintf(f, "%*s  %-*s  %-*s  %-*s  %-*s", wid, "id", wop, "op", wscope, "scope", wout,
                "output", win, "inputs");
        print_stats_header(f);
    }
    for (int id = 0; id < n; id++) {
        const tg_record *r = tg_tape_record(tp, id);
        if (!shown(r, opts))
            continue;
        char idbuf[16];
        snprintf(idbuf, sizeof idbuf, "#%d", id);
        inputs_str(in, sizeof in, r);
        fprintf(f, "%*s  %-*s  %-*s  %-*s  %-*s", wid, idbuf, wop, r->op->name, wscope,
                *r->scope ? r->scope : "-", wout, shape_dtype(buf, sizeof buf, r->out), win, in);
        tg_grad_stats s = tg_record_grad_stats(r);
        print_stats(f, &s, grads);
    }

    /* the leaves, with the gradients they hold */
    int ns;
    bool ok;
    const tg_tensor **src = tg__tape_sources(tp, opts, &ns, &ok);
    if (!ok) {
        fprintf(f, "leaves: (not listed: %s)\n", tg_last_error());
        return;
    }
    int nleaves = 0, wname = 4, wshape = 5;
    for (int k = 0; k < ns; k++)
        if (tg_is_leaf(src[k])) {
            nleaves++;
            wname = imax(wname, (int)strlen(leaf_label(src[k])));
            wshape = imax(wshape, (int)strlen(shape_dtype(buf, sizeof buf, src[k])));
        }
    fprintf(f, "leaves: %d\n", nleaves);
    if (nleaves > 0) {
        fprintf(f, "  %-*s  %-*s", wname, "name", wshape, "shape");
        print_stats_header(f);
    }
    for (int k = 0; k < ns; k++) {
        if (!tg_is_leaf(src[k]))
            continue;
        fprintf(f, "  %-*s  %-*s", wname, leaf_label(src[k]), wshape,
                shape_dtype(buf, sizeof buf, src[k]));
        tg_grad_stats s = tg_tensor_stats(tg_grad(src[k]));
        print_stats(f, &s, grads);
    }
    tg_mem_free((void *)src);
}

/* ------------------------------------------------------------------ the graph */

/* s inside a DOT double-quoted string: quotes and backslashes escaped, newlines as \n,
 * other control characters as '?' */
static void dot_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(f, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", f);
        else if (c < 0x20 || c == 0x7f)
            fputc('?', f);
        else
            fputc(c, f);
    }
}

/* White (vanishing, <= 1e-10) to red (>= 1): the fill for log10 of mean |g|. */
static void grad_colour(char *buf, size_t size, double log10_mean)
{
    double t = (log10_mean - GRAD_LO) / (GRAD_HI - GRAD_LO);
    t = t < 0 || t != t ? 0 : t > 1 ? 1 : t;
    int gb = (int)lround(255.0 - 200.0 * t);
    snprintf(buf, size, "#ff%02x%02x", gb, gb);
}

/* The label's gradient line and the node's fill, after backward. */
static void dot_grad_attrs(FILE *f, const tg_grad_stats *s)
{
    if (s->count == 0) {
        fputs("\\nno gradient\", fillcolor=\"#d0d0d0\"", f);
        return;
    }
    double lg = s->mean_abs > 0 ? log10(s->mean_abs) : -INFINITY;
    char colour[16];
    grad_colour(colour, sizeof colour, lg);
    fprintf(f, "\\nmean|g| %.2e (log10 %.1f)", s->mean_abs, isfinite(lg) ? lg : GRAD_LO);
    if (s->nonfinite)
        fprintf(f, "\\n%lld NaN/Inf", (long long)s->nonfinite);
    fprintf(f, "\", fillcolor=\"%s\"", colour);
    if (s->nonfinite)
        fputs(", color=\"#7b00c8\", penwidth=3", f);
}

static void dot_legend(FILE *f, bool grads)
{
    if (!grads) {
        fputs("  legend [shape=plaintext, style=\"\", label=\"before backward: no gradients yet\"];\n", f);
        return;
    }
    fputs("  legend [shape=plaintext, style=\"\", label=<<table border=\"0\" cellborder=\"1\" "
          "cellspacing=\"0\" cellpadding=\"4\"><tr><td colspan=\"7\">fill: log10 mean |dL/d(out)|</td></tr><tr>",
          f);
    for (int e = 0; e >= -10; e -= 2) {
        char colour[16];
        grad_colour(colour, sizeof colour, e);
        fprintf(f, "<td bgcolor=\"%s\">%s%d</td>", colour, e == -10 ? "&lt;=" : "", e);
    }
    fputs("<td bgcolor=\"#d0d0d0\">none</td></tr></table>>];\n", f);
}

tg_status tg_tape_write_dot(const tg_tape *tp, FILE *f)
{
    if (!tp || !f)
        return tg_set_error_in(TG_ERR_ARG, "tg_tape_write_dot", "the %s is NULL", tp ? "file" : "tape");
    int ns;
    bool ok;
    const tg_tensor **src = tg__tape_sources(tp, NULL, &ns, &ok);
    if (!ok)
        return tg_set_error_in(TG_ERR_NOMEM, "tg_tape_write_dot", "%s", tg_last_error_info()->detail);
    bool grads = has_grads(tp);
    char buf[256];

    fputs("digraph tape {\n  rankdir=LR;\n", f);
    fputs("  node [fontname=\"Helvetica\", fontsize=10, style=filled, fillcolor=white];\n", f);
    fputs("  edge [color=\"#555555\"];\n", f);
    if (tg_tape_status(tp) != TG_OK) {
        fputs("  label=\"tape in error: ", f);
        dot_escaped(f, tg_tape_error(tp));
        fputs("\";\n", f);
    }

    /* leaves and constants */
    for (int k = 0; k < ns; k++) {
        const tg_tensor *t = src[k];
        shape_dtype(buf, sizeof buf, t);
        if (tg_is_leaf(t)) {
            fprintf(f, "  s%d [shape=box, label=\"", k);
            dot_escaped(f, leaf_label(t));
            fprintf(f, "\\n%s", buf);
            if (grads) {
                tg_grad_stats s = tg_tensor_stats(tg_grad(t));
                dot_grad_attrs(f, &s);
            } else {
                fputc('"', f);
            }
            fputs("];\n", f);
        } else {
            fprintf(f, "  s%d [shape=note, fontcolor=\"#666666\", color=\"#999999\", "
                    "label=\"const\\n%s\"];\n", k, buf);
        }
    }

    /* records */
    for (int id = 0; id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        fprintf(f, "  r%d [label=\"#%d ", id, id);
        dot_escaped(f, r->op->name);
        if (*r->scope) {
            fputs("\\n", f);
            dot_escaped(f, r->scope);
        }
        fprintf(f, "\\n%s", shape_dtype(buf, sizeof buf, r->out));
        if (grads) {
            tg_grad_stats s = tg_record_grad_stats(r);
            dot_grad_attrs(f, &s);
        } else {
            fputc('"', f);
        }
        fputs("];\n", f);
    }

    /* edges: where each input came from */
    for (int id = 0; id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        for (int i = 0; i < r->nin; i++) {
            if (r->in_record[i] >= 0)
                fprintf(f, "  r%d -> r%d", r->in_record[i], id);
            else if (r->in[i])
                fprintf(f, "  s%d -> r%d", tg__source_index(src, ns, r->in[i]), id);
            else
                continue;
            if (r->nin > 1) /* which input: matters for sub, div, matmul */
                fprintf(f, " [headlabel=\"%d\", labelfontsize=8]", i);
            fputs(";\n", f);
        }
    }
    dot_legend(f, grads);
    fputs("}\n", f);
    tg_mem_free((void *)src);

    if (fflush(f) != 0 || ferror(f))
        return tg_set_error_in(TG_ERR_IO, "tg_tape_write_dot", "writing the graph failed");
    return TG_OK;
}
