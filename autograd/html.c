/* autograd/html.c — the tape as one self-contained web page that steps through backward.
 *
 * tg_tape_write_html writes a page (autograd/html/page.html, with page.css and page.js
 * inlined at build time by embed.py) into which it puts three things:
 *   the graph  tg_tape_write_dot's drawing, laid out by Graphviz (`dot -Tsvg`, run as a
 *              child process now, so the page needs nothing at reading time);
 *   the data   one JSON object (built with cJSON): every record and every leaf or
 *              constant it reads, each tensor as its numbers when it is small and as
 *              statistics and a histogram when it is not, and for each record that
 *              backward ran, the gradient it handed each input (its share);
 *   the title.
 * The page's script does the rest (stepping, the gradient-flow view), in the browser.
 *
 * Shares. After backward a tape holds the sum of the shares each value received, not
 * the shares. So the writer runs each record's backward a second time, in the order
 * tg_backward ran them, with a gradient sink on the tape (autograd/internal.h): every
 * share goes through tg_accumulate_grad's checks as before and then to the sink, which
 * summarises it, instead of being added. What the replay allocates large is given back
 * after each record; the tape's gradients do not change.
 *
 * The JSON ("tapegrad-tape-html-1"), which the tests read too:
 *   {format, title, error, fused, backward, max_numbers,
 *    sources: [{kind: "leaf"|"const", name, shape, dtype, value: T, grad: T|null}],
 *    records: [{op, scope, shape, dtype, inputs: ["r3"|"s0"|null], needs: [bool],
 *               value: T, grad: T|null, shares: [{input, grad: T|ref}]}],
 *    order:   [record ids, in the order backward ran them]}
 *   T = {n, v: [numbers] (n <= max_numbers), min, max, mean, mean_abs, rms, max_abs,
 *        zero_frac, nonfinite, hist: [counts over min..max] (n > max_numbers)}
 * mean_abs, rms, max_abs, zero_frac and nonfinite are tg_tensor_stats's, the numbers
 * tg_tape_print and the study's gradflow.csv show. A number that is not finite is
 * null in the statistics and "NaN", "Infinity" or "-Infinity" in v. A share that is
 * bit for bit its input's whole gradient is that input's reference (ref, "r3" or
 * "s0") instead of a second copy of the same summary. */
#include "internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#define MAX_NUMBERS_DEFAULT 64
#define BINS_DEFAULT 32

extern char **environ; /* for posix_spawnp: dot runs in the caller's environment */

typedef struct page {
    tg_tape *tp;
    int max_numbers, bins;
    const tg_tensor **src; /* tg__tape_sources */
    int nsrc;
    cJSON *shares; /* the running record's "shares" array, for the sink */
    bool failed;   /* a cJSON allocation failed */
} page;

/* ------------------------------------------------------------------ tensors */

/* A number for the statistics: null when it is not finite (JSON has no NaN). */
static void add_number(page *P, cJSON *o, const char *key, double v)
{
    cJSON *item = isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull();
    if (!item || !cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        P->failed = true;
    }
}

/* An element of v: a number, or the name JavaScript's Number() reads back. */
static cJSON *element(double v)
{
    if (isfinite(v))
        return cJSON_CreateNumber(v);
    return cJSON_CreateString(v != v ? "NaN" : v > 0 ? "Infinity" : "-Infinity");
}

static cJSON *shape_json(page *P, const tg_tensor *t)
{
    cJSON *a = cJSON_CreateArray();
    for (int d = 0; a && d < t->ndim; d++) {
        cJSON *n = cJSON_CreateNumber((double)t->shape[d]);
        if (!n || !cJSON_AddItemToArray(a, n)) {
            cJSON_Delete(n);
            P->failed = true;
        }
    }
    P->failed |= !a;
    return a;
}

/* The elements of t in row-major order, as doubles: t's own data when it is a
 * contiguous float tensor, else a contiguous f64 copy (*copy, for the caller to free). */
typedef struct elements {
    const float *f;
    const double *d;
    int64_t n;
} elements;

static bool read_elements(const tg_tensor *t, elements *e, tg_tensor **copy)
{
    *copy = NULL;
    if (!tg_tensor_is_contiguous(t) || (t->dtype != TG_F32 && t->dtype != TG_F64)) {
        *copy = tg_tensor_to_dtype(NULL, t, TG_F64);
        if (!*copy)
            return false;
        t = *copy;
    }
    e->n = tg_tensor_numel(t);
    e->f = t->dtype == TG_F32 ? tg_tensor_data(t) : NULL;
    e->d = t->dtype == TG_F64 ? tg_tensor_data(t) : NULL;
    return true;
}

static double element_at(const elements *e, int64_t i) { return e->f ? (double)e->f[i] : e->d[i]; }

/* T (see the top of the file) for t; NULL (and P->failed) when memory runs out. */
static cJSON *tensor_json(page *P, const tg_tensor *t)
{
    elements e;
    tg_tensor *copy;
    cJSON *o = cJSON_CreateObject();
    if (!o || !read_elements(t, &e, &copy)) {
        cJSON_Delete(o);
        P->failed = true;
        return NULL;
    }
    /* min, max and mean of the finite elements; the rest is tg_tensor_stats's */
    double lo = INFINITY, hi = -INFINITY, sum = 0;
    int64_t finite = 0;
    for (int64_t i = 0; i < e.n; i++) {
        double v = element_at(&e, i);
        if (!isfinite(v))
            continue;
        lo = v < lo ? v : lo;
        hi = v > hi ? v : hi;
        sum += v;
        finite++;
    }
    add_number(P, o, "n", (double)e.n);
    if (e.n <= P->max_numbers) {
        cJSON *v = cJSON_AddArrayToObject(o, "v");
        for (int64_t i = 0; v && i < e.n; i++) {
            cJSON *x = element(element_at(&e, i));
            if (!x || !cJSON_AddItemToArray(v, x)) {
                cJSON_Delete(x);
                P->failed = true;
            }
        }
        P->failed |= !v;
    }
    add_number(P, o, "min", lo);
    add_number(P, o, "max", hi);
    add_number(P, o, "mean", finite ? sum / (double)finite : NAN);
    if (t->dtype == TG_F32 || t->dtype == TG_F64) {
        tg_grad_stats s = tg_tensor_stats(t);
        add_number(P, o, "mean_abs", s.mean_abs);
        add_number(P, o, "rms", s.rms);
        add_number(P, o, "max_abs", s.max_abs);
        add_number(P, o, "zero_frac", s.zero_frac);
        add_number(P, o, "nonfinite", (double)s.nonfinite);
    }
    if (e.n > P->max_numbers && finite > 0) {
        int64_t *count = calloc((size_t)P->bins, sizeof *count);
        cJSON *h = count ? cJSON_AddArrayToObject(o, "hist") : NULL;
        if (h) {
            double width = (hi - lo) / P->bins;
            for (int64_t i = 0; i < e.n; i++) {
                double v = element_at(&e, i);
                if (!isfinite(v))
                    continue;
                int b = width > 0 ? (int)((v - lo) / width) : 0;
                count[b < 0 ? 0 : b >= P->bins ? P->bins - 1 : b]++;
            }
            for (int b = 0; b < P->bins; b++) {
                cJSON *c = cJSON_CreateNumber((double)count[b]);
                if (!c || !cJSON_AddItemToArray(h, c)) {
                    cJSON_Delete(c);
                    P->failed = true;
                }
            }
        }
        P->failed |= !h;
        free(count);
    }
    tg_tensor_free(copy);
    return o;
}

/* obj[key] = T of t, or null when t is NULL */
static void add_tensor(page *P, cJSON *obj, const char *key, const tg_tensor *t)
{
    cJSON *item = t ? tensor_json(P, t) : cJSON_CreateNull();
    if (!item || !cJSON_AddItemToObject(obj, key, item)) {
        cJSON_Delete(item);
        P->failed = true;
    }
}

/* ------------------------------------------------------------------ the tape */

static cJSON *source_json(page *P, const tg_tensor *t)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    bool leaf = tg_is_leaf(t);
    P->failed |= !cJSON_AddStringToObject(o, "kind", leaf ? "leaf" : "const");
    if (leaf)
        P->failed |= !cJSON_AddStringToObject(o, "name", tg_leaf_name(t));
    P->failed |= !cJSON_AddItemToObject(o, "shape", shape_json(P, t));
    P->failed |= !cJSON_AddStringToObject(o, "dtype", tg_dtype_name(t->dtype));
    add_tensor(P, o, "value", t);
    add_tensor(P, o, "grad", leaf ? tg_grad(t) : NULL);
    return o;
}

/* "r3" for record 3's output, "s0" for source 0, null for a NULL input */
static cJSON *input_ref(page *P, const tg_record *r, int i)
{
    char ref[24];
    if (r->in_record[i] >= 0)
        snprintf(ref, sizeof ref, "r%d", r->in_record[i]);
    else if (r->in[i])
        snprintf(ref, sizeof ref, "s%d", tg__source_index(P->src, P->nsrc, r->in[i]));
    else
        return cJSON_CreateNull();
    return cJSON_CreateString(ref);
}

static cJSON *record_json(page *P, const tg_record *r)
{
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    P->failed |= !cJSON_AddStringToObject(o, "op", r->op->name);
    P->failed |= !cJSON_AddStringToObject(o, "scope", r->scope);
    P->failed |= !cJSON_AddItemToObject(o, "shape", shape_json(P, r->out));
    P->failed |= !cJSON_AddStringToObject(o, "dtype", tg_dtype_name(r->out->dtype));
    cJSON *in = cJSON_AddArrayToObject(o, "inputs");
    cJSON *needs = cJSON_AddArrayToObject(o, "needs");
    P->failed |= !in || !needs;
    for (int i = 0; in && needs && i < r->nin; i++) {
        P->failed |= !cJSON_AddItemToArray(in, input_ref(P, r, i));
        P->failed |= !cJSON_AddItemToArray(needs, cJSON_CreateBool(tg_needs_grad(P->tp, r, i)));
    }
    add_tensor(P, o, "value", r->out);
    add_tensor(P, o, "grad", r->grad);
    P->failed |= !cJSON_AddArrayToObject(o, "shares");
    return o;
}

/* Whether a and b hold the same bits (both contiguous, one shape and dtype). */
static bool same_values(const tg_tensor *a, const tg_tensor *b)
{
    return a && b && a->dtype == b->dtype && tg_tensor_same_shape(a, b) && tg_tensor_is_contiguous(a) &&
           tg_tensor_is_contiguous(b) &&
           !memcmp(tg_tensor_data(a), tg_tensor_data(b), (size_t)tg_tensor_numel(a) * tg_dtype_size(a->dtype));
}

/* The sink during the replay: input i's share, summarised, not added. A share equal
 * to the whole gradient of its input (the input is read once, as most are) is written
 * as that gradient's reference ("r3", "s0"), not summarised a second time. */
static tg_status share_sink(void *ctx, const tg_record *r, int i, const tg_tensor *g)
{
    page *P = ctx;
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddItemToArray(P->shares, s)) {
        cJSON_Delete(s);
        P->failed = true;
        return TG_OK; /* reported once the replay is over */
    }
    P->failed |= !cJSON_AddNumberToObject(s, "input", i);
    const tg_tensor *whole = r->in_record[i] >= 0 ? tg_tape_record(P->tp, r->in_record[i])->grad : tg_grad(r->in[i]);
    if (same_values(g, whole))
        P->failed |= !cJSON_AddItemToObject(s, "grad", input_ref(P, r, i));
    else
        add_tensor(P, s, "grad", g);
    return TG_OK;
}

/* Whether tg_backward ran r's backward (the loop in tape.c skips the others). */
static bool backward_ran(const tg_record *r) { return r->grad && r->requires_grad && r->op->backward; }

/* Runs the backward of every record backward ran, last first, with the sink on;
 * appends the order to `order` and each record's shares to its "shares". */
static tg_status replay(page *P, cJSON *records, cJSON *order)
{
    tg_tape *tp = P->tp;
    tg_arena *ar = tg_tape_arena(tp);
    tg_status st = TG_OK;
    tg__tape_set_grad_sink(tp, share_sink, P);
    for (int id = tg_tape_size(tp) - 1; id >= 0 && st == TG_OK; id--) {
        const tg_record *r = tg_tape_record(tp, id);
        if (!backward_ran(r))
            continue;
        P->failed |= !cJSON_AddItemToArray(order, cJSON_CreateNumber(id));
        P->shares = cJSON_GetObjectItem(cJSON_GetArrayItem(records, id), "shares");
        if (!P->shares) {
            st = TG_ERR_NOMEM;
            break;
        }
        tg_clear_error();
        uint64_t mark = tg_arena_mark(ar);
        st = r->op->backward(tp, r, r->grad);
        tg_arena_release_since(ar, mark, NULL, 0);
        if (st == TG_OK && tg_tape_status(tp) != TG_OK)
            st = tg_tape_status(tp);
        if (st != TG_OK)
            tg_set_error_in(st, "tg_tape_write_html", "running the backward of record %d (%s) again: %s", id,
                         r->op->name, tg_tape_status(tp) != TG_OK ? tg_tape_error(tp) : tg_last_error());
    }
    tg__tape_set_grad_sink(tp, NULL, NULL);
    return st;
}

/* ------------------------------------------------------------------ the graph */

/* The whole of f (a temporary file) from its start, NUL-terminated; NULL if it fails. */
static char *slurp(FILE *f, size_t *len)
{
    if (fseek(f, 0, SEEK_END) != 0)
        return NULL;
    long size = ftell(f);
    char *buf = size >= 0 ? malloc((size_t)size + 1) : NULL;
    if (!buf)
        return NULL;
    rewind(f);
    *len = fread(buf, 1, (size_t)size, f);
    buf[*len] = '\0';
    return buf;
}

/* The tape drawn by Graphviz: tg_tape_write_dot's text through `dot -Tsvg`, from the
 * <svg> element on (dot's XML prologue and doctype are not HTML). malloc'd; NULL and
 * an error naming the command when dot cannot be run or fails. */
static char *render_svg(const tg_tape *tp, const char *dot)
{
    char *svg = NULL;
    FILE *in = tmpfile(), *out = tmpfile(), *err = tmpfile();
    if (!in || !out || !err) {
        tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "cannot make a temporary file for `%s -Tsvg`: %s", dot,
                     strerror(errno));
        goto done;
    }
    if (tg_tape_write_dot(tp, in) != TG_OK)
        goto done; /* its message */
    rewind(in);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fileno(in), 0);
    posix_spawn_file_actions_adddup2(&fa, fileno(out), 1);
    posix_spawn_file_actions_adddup2(&fa, fileno(err), 2);
    char *argv[] = {(char *)dot, "-Tsvg", NULL};
    pid_t pid;
    int e = posix_spawnp(&pid, dot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (e != 0) {
        tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "cannot run `%s -Tsvg` to lay out the graph (%s): %s", dot,
                     strerror(e), e == ENOENT ? "install Graphviz (apt-get install graphviz)" : "is it a program?");
        goto done;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "waiting for `%s -Tsvg`: %s", dot, strerror(errno));
            goto done;
        }
    size_t len = 0, elen = 0;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        char *msg = slurp(err, &elen);
        if (msg)
            msg[strcspn(msg, "\n")] = '\0';
        tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "`%s -Tsvg` %s %d%s%s", dot,
                     WIFEXITED(status) ? "exited with status" : "was killed by signal",
                     WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), msg && *msg ? ": " : "",
                     msg ? msg : "");
        free(msg);
        goto done;
    }
    char *text = slurp(out, &len);
    char *start = text ? strstr(text, "<svg") : NULL;
    if (!start) {
        tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "`%s -Tsvg` wrote no <svg> element (%zu bytes)", dot, len);
        free(text);
        goto done;
    }
    memmove(text, start, len - (size_t)(start - text) + 1);
    svg = text;
done:
    if (in)
        fclose(in);
    if (out)
        fclose(out);
    if (err)
        fclose(err);
    return svg;
}

/* ------------------------------------------------------------------ the page */

/* s as HTML text (also inside an attribute's quotes) */
static void html_escaped(FILE *f, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': fputs("&amp;", f); break;
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '"': fputs("&quot;", f); break;
        case '\'': fputs("&#39;", f); break;
        default: fputc(*s, f);
        }
    }
}

/* JSON inside <script>: '<' only occurs in strings, where \u003c means the same, so no
 * "</script>" in a scope name can end the element. */
static void json_in_script(FILE *f, const char *json)
{
    for (; *json; json++) {
        if (*json == '<')
            fputs("\\u003c", f);
        else
            fputc(*json, f);
    }
}

/* The template with each @@NAME@@ replaced (embed.py checked at build time that it
 * holds exactly these names). */
static void write_page(FILE *f, const char *title, const char *svg, const char *json)
{
    const char *p = tg__html_page;
    for (const char *m; (m = strstr(p, "@@")) != NULL;) {
        fwrite(p, 1, (size_t)(m - p), f);
        const char *name = m + 2, *end = strstr(name, "@@");
        size_t n = (size_t)(end - name);
        if (n == 5 && !strncmp(name, "TITLE", n))
            html_escaped(f, title);
        else if (n == 5 && !strncmp(name, "GRAPH", n))
            fputs(svg, f);
        else if (n == 4 && !strncmp(name, "DATA", n))
            json_in_script(f, json);
        p = end + 2;
    }
    fputs(p, f);
}

tg_status tg_tape_write_html(tg_tape *tp, FILE *f, const tg_html_options *opt)
{
    if (!tp || !f)
        return tg_set_error_in(TG_ERR_ARG, "tg_tape_write_html", "the %s is NULL", tp ? "file" : "tape");
    tg_html_options o = opt ? *opt : (tg_html_options){0};
    if (o.max_numbers < 0 || o.bins < 0)
        return tg_set_error_in(TG_ERR_ARG, "tg_tape_write_html", "max_numbers %d and bins %d must be >= 0 (0: %d and %d)",
                            o.max_numbers, o.bins, MAX_NUMBERS_DEFAULT, BINS_DEFAULT);
    page P = {.tp = tp, .max_numbers = o.max_numbers ? o.max_numbers : MAX_NUMBERS_DEFAULT,
              .bins = o.bins ? o.bins : BINS_DEFAULT};
    const char *title = o.title ? o.title : "tapegrad tape";
    tg_status st = TG_OK;
    char *svg = NULL, *json = NULL;
    bool ok;
    P.src = tg__tape_sources(tp, NULL, &P.nsrc, &ok);
    cJSON *root = cJSON_CreateObject();
    if (!ok || !root) {
        st = tg_set_error_in(TG_ERR_NOMEM, "tg_tape_write_html", "out of memory");
        goto done;
    }
    /* the graph first: without Graphviz there is no page, and it says so at once */
    svg = render_svg(tp, o.dot ? o.dot : "dot");
    if (!svg) {
        st = tg_last_status();
        goto done;
    }

    bool grads = false;
    for (int id = 0; id < tg_tape_size(tp) && !grads; id++)
        grads = tg_tape_record(tp, id)->grad != NULL;
    P.failed |= !cJSON_AddStringToObject(root, "format", "tapegrad-tape-html-1");
    P.failed |= !cJSON_AddStringToObject(root, "title", title);
    P.failed |= !cJSON_AddStringToObject(root, "error", tg_tape_error(tp));
    P.failed |= !cJSON_AddBoolToObject(root, "fused", tg_tape_fused(tp));
    P.failed |= !cJSON_AddBoolToObject(root, "backward", grads);
    P.failed |= !cJSON_AddNumberToObject(root, "max_numbers", P.max_numbers);
    cJSON *sources = cJSON_AddArrayToObject(root, "sources");
    for (int k = 0; sources && k < P.nsrc; k++)
        P.failed |= !cJSON_AddItemToArray(sources, source_json(&P, P.src[k]));
    cJSON *records = cJSON_AddArrayToObject(root, "records");
    for (int id = 0; records && id < tg_tape_size(tp); id++)
        P.failed |= !cJSON_AddItemToArray(records, record_json(&P, tg_tape_record(tp, id)));
    cJSON *order = cJSON_AddArrayToObject(root, "order");
    if (!sources || !records || !order || P.failed) {
        st = tg_set_error_in(TG_ERR_NOMEM, "tg_tape_write_html", "out of memory");
        goto done;
    }
    if (grads && tg_tape_status(tp) == TG_OK && (st = replay(&P, records, order)) != TG_OK)
        goto done;
    json = P.failed ? NULL : cJSON_PrintUnformatted(root);
    if (!json) {
        st = tg_set_error_in(TG_ERR_NOMEM, "tg_tape_write_html", "out of memory");
        goto done;
    }
    write_page(f, title, svg, json);
    if (fflush(f) != 0 || ferror(f))
        st = tg_set_error_in(TG_ERR_IO, "tg_tape_write_html", "writing the page failed");
done:
    cJSON_Delete(root);
    free(json);
    free(svg);
    tg_mem_free((void *)P.src);
    return st;
}
