/* experiments/tape_tour.c — a guided tour of the tape on a two-layer network.
 *
 *   ./tape_tour            prints the tour, writes tape_tour.dot and tape_tour.html in the
 *                          current folder
 *   dot -Tsvg tape_tour.dot -o tape_tour.svg
 *   open tape_tour.html in a browser: backward, one record at a time
 *
 * A batch of 4 examples of 3 features goes through linear -> relu -> linear into a
 * cross-entropy loss (log_softmax + nll_loss). The program prints the tape before and
 * after backward, then walks the records from the loss back to the weights and, for
 * one or two elements of each, recomputes the gradient of the record's inputs by hand
 * from the record's own gradient (the one the next record handed it), next to the
 * value the tape holds. It ends with tg_gradcheck on the whole network as a function
 * of its weights and writes the graph as Graphviz DOT and as a web page that steps
 * through the same backward pass (tg_tape_write_html). Everything is f64, so that the
 * numbers match gradcheck's float64 to the last printed digit. */
#include <tapegrad.h>
/* the one internal header: the library's atomic file writer (not the tour's subject) */
#include "../tensor/fileio.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 4 /* examples */
#define D 3 /* features */
#define H 5 /* hidden units */
#define C 2 /* classes */

#define DOT_PATH "tape_tour.dot"
#define HTML_PATH "tape_tour.html"

/* ------------------------------------------------------------------ the network */

typedef struct batch {
    tg_tensor *x;      /* [N, D] f64, a constant on the tape */
    tg_tensor *labels; /* [N] i32 */
} batch;

enum { W1, B1, W2, B2, NPARAMS };
static const char *const param_names[NPARAMS] = {"layer1/weight", "layer1/bias", "layer2/weight",
                                                 "layer2/bias"};

/* loss = nll(log_softmax(relu(x @ w1 + b1) @ w2 + b2), labels); also gradcheck's fn */
static tg_tensor *network(tg_tape *tp, tg_tensor *const *w, void *user)
{
    const batch *b = user;
    tg_scope_push(tp, "layer1");
    tg_tensor *h = tg_relu(tp, tg_add(tp, tg_matmul(tp, b->x, w[W1]), w[B1]));
    tg_scope_pop(tp);
    tg_scope_push(tp, "layer2");
    tg_tensor *logits = tg_add(tp, tg_matmul(tp, h, w[W2]), w[B2]);
    tg_scope_pop(tp);
    tg_scope_push(tp, "loss");
    tg_tensor *loss = tg_nll_loss(tp, tg_log_softmax(tp, logits, 1), b->labels);
    tg_scope_pop(tp);
    return loss;
}

/* ------------------------------------------------------------------ explaining */

typedef struct tour {
    tg_tape *tp;
    const batch *b;
    double worst; /* largest |by hand - tape| seen */
} tour;

static double at2(const tg_tensor *t, int64_t i, int64_t j) { return tg_tensor_get(t, (int64_t[]){i, j}); }
static double at1(const tg_tensor *t, int64_t i) { return tg_tensor_get(t, (int64_t[]){i}); }

/* Appends term k of a sum to buf: "v", then " + v" or " - |v|". */
static void sum_term(char *buf, size_t size, int *len, int k, double v)
{
    if (*len >= 0 && (size_t)*len < size)
        *len += snprintf(buf + *len, size - (size_t)*len, k == 0 ? "%.6f" : v < 0 ? " - %.6f" : " + %.6f",
                         k == 0 ? v : fabs(v));
}

/* Appends term k of a sum of products: "a*b", negative factors in parentheses. */
static void prod_term(char *buf, size_t size, int *len, int k, double a, double b)
{
    if (*len >= 0 && (size_t)*len < size)
        *len += snprintf(buf + *len, size - (size_t)*len, a < 0 ? "%s(%.4f)*" : "%s%.4f*", k ? " + " : "", a);
    if (*len >= 0 && (size_t)*len < size)
        *len += snprintf(buf + *len, size - (size_t)*len, b < 0 ? "(%.4f)" : "%.4f", b);
}

/* What input i of r is called in the text: "#3", "layer1/bias", "x", "labels". */
static const char *input_name(char *buf, size_t size, const tour *T, const tg_record *r, int i)
{
    if (r->in_record[i] >= 0)
        snprintf(buf, size, "#%d", r->in_record[i]);
    else if (tg_is_leaf(r->in[i]))
        snprintf(buf, size, "%s", tg_leaf_name(r->in[i]));
    else
        snprintf(buf, size, "%s", r->in[i] == T->b->x ? "x" : r->in[i] == T->b->labels ? "labels" : "const");
    return buf;
}

/* The gradient the tape computed for input i of r: a record's grad or a leaf's. */
static const tg_tensor *input_grad(const tour *T, const tg_record *r, int i)
{
    if (r->in_record[i] >= 0)
        return tg_tape_record(T->tp, r->in_record[i])->grad;
    return tg_grad(r->in[i]);
}

/* One line: "    grad layer2/bias[0] = <formula> = 0.123456   (tape 0.123456)" */
static void show(tour *T, double hand, double tape, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("    ", stdout);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" = %.6f   (tape %.6f)\n", hand, tape);
    double e = fabs(hand - tape);
    if (!(e <= T->worst))
        T->worst = e != e ? INFINITY : e;
}

static void explain_nll_loss(tour *T, const tg_record *r)
{
    char lp[32];
    input_name(lp, sizeof lp, T, r, 0);
    const tg_tensor *g = input_grad(T, r, 0);
    double gout = tg_tensor_item(r->grad);
    int y = (int)at1(T->b->labels, 0);
    printf("  loss = -(1/N) sum_i %s[i, label_i], so grad %s[i,j] = -grad #%d / N where j is example i's\n"
           "  label, else 0. Example 0's label is %d:\n", lp, lp, r->id, y);
    show(T, -gout / N, at2(g, 0, y), "grad %s[0,%d] = -(%.6f) / %d", lp, y, gout, N);
    show(T, 0.0, at2(g, 0, 1 - y), "grad %s[0,%d]", lp, 1 - y);
}

static void explain_log_softmax(tour *T, const tg_record *r)
{
    char x[32];
    input_name(x, sizeof x, T, r, 0);
    const tg_tensor *g = r->grad, *gx = input_grad(T, r, 0);
    double sum = 0;
    for (int k = 0; k < C; k++)
        sum += at2(g, 0, k);
    double p = exp(at2(r->out, 0, 0));
    printf("  out = x - logsumexp(x) along the classes; softmax = exp(out), so\n"
           "  grad %s[i,j] = grad #%d[i,j] - softmax[i,j] * sum_k grad #%d[i,k]:\n", x, r->id, r->id);
    char terms[128];
    int len = 0;
    sum_term(terms, sizeof terms, &len, 0, at2(g, 0, 0));
    sum_term(terms, sizeof terms, &len, 1, -p * sum);
    show(T, at2(g, 0, 0) - p * sum, at2(gx, 0, 0), "grad %s[0,0] = %.6f - %.6f * (%.6f) = %s", x, at2(g, 0, 0),
         p, sum, terms);
}

static void explain_add(tour *T, const tg_record *r)
{
    printf("  out = a + b, the bias broadcast over the batch; each input's gradient is\n"
           "  grad #%d summed over the axes that input was broadcast along:\n", r->id);
    for (int i = 0; i < r->nin; i++) {
        char nm[64];
        input_name(nm, sizeof nm, T, r, i);
        const tg_tensor *gi = input_grad(T, r, i);
        if (!tg_needs_grad(T->tp, r, i) || !gi) {
            printf("    %s: a constant, no gradient\n", nm);
        } else if (r->in[i]->ndim == 2) {
            show(T, at2(r->grad, 0, 0), at2(gi, 0, 0), "grad %s[0,0] = grad #%d[0,0]", nm, r->id);
        } else {
            char terms[256];
            int len = 0;
            double sum = 0;
            for (int n = 0; n < N; n++) {
                sum += at2(r->grad, n, 0);
                sum_term(terms, sizeof terms, &len, n, at2(r->grad, n, 0));
            }
            show(T, sum, at1(gi, 0), "grad %s[0] = sum_i grad #%d[i,0] = %s", nm, r->id, terms);
        }
    }
}

static void explain_relu(tour *T, const tg_record *r)
{
    char x[32];
    input_name(x, sizeof x, T, r, 0);
    const tg_tensor *in = r->in[0], *gx = input_grad(T, r, 0);
    printf("  out = max(x, 0), so grad %s = grad #%d * (%s > 0), element by element:\n", x, r->id, x);
    for (int want_pos = 1; want_pos >= 0; want_pos--) { /* one open, one closed, if both occur */
        for (int64_t e = 0; e < N * H; e++) {
            int64_t i = e / H, k = e % H;
            double v = at2(in, i, k);
            if ((v > 0) != want_pos)
                continue;
            show(T, v > 0 ? at2(r->grad, i, k) : 0.0, at2(gx, i, k),
                 "grad %s[%lld,%lld] = %.6f * (%.6f > 0)", x, (long long)i, (long long)k, at2(r->grad, i, k),
                 v);
            break;
        }
    }
}

static void explain_matmul(tour *T, const tg_record *r)
{
    char a[32], b[32];
    input_name(a, sizeof a, T, r, 0);
    input_name(b, sizeof b, T, r, 1);
    const tg_tensor *A = r->in[0], *B = r->in[1], *g = r->grad;
    int64_t M = A->shape[0], P = B->shape[1];
    printf("  out = %s @ %s, so grad %s = grad #%d @ %s^T and grad %s = %s^T @ grad #%d:\n", a, b, a, r->id, b,
           b, a, r->id);
    char terms[512];
    if (tg_needs_grad(T->tp, r, 0)) {
        int len = 0;
        double sum = 0;
        for (int64_t j = 0; j < P; j++) {
            sum += at2(g, 0, j) * at2(B, 0, j);
            prod_term(terms, sizeof terms, &len, (int)j, at2(g, 0, j), at2(B, 0, j));
        }
        show(T, sum, at2(input_grad(T, r, 0), 0, 0), "grad %s[0,0] = sum_j grad #%d[0,j] * %s[0,j] = %s", a,
             r->id, b, terms);
    } else {
        printf("    %s is a constant (the data): no gradient\n", a);
    }
    if (tg_needs_grad(T->tp, r, 1)) {
        int len = 0;
        double sum = 0;
        for (int64_t i = 0; i < M; i++) {
            sum += at2(A, i, 0) * at2(g, i, 0);
            prod_term(terms, sizeof terms, &len, (int)i, at2(A, i, 0), at2(g, i, 0));
        }
        show(T, sum, at2(input_grad(T, r, 1), 0, 0), "grad %s[0,0] = sum_i %s[i,0] * grad #%d[i,0] = %s", b, a,
             r->id, terms);
    }
}

static void explain(tour *T)
{
    printf("\nHow each gradient comes from the next one. Backward visits the records from the last\n"
           "to the first; record #k holds grad #k = dL/d(output of #k), complete by the time it is\n"
           "visited, and hands each input its share. By hand, for one or two elements each:\n");
    for (int id = tg_tape_size(T->tp) - 1; id >= 0; id--) {
        const tg_record *r = tg_tape_record(T->tp, id);
        printf("\n#%d %s (%s)%s\n", id, r->op->name, *r->scope ? r->scope : "root",
               id == tg_tape_size(T->tp) - 1 ? ": the loss, seeded with grad = dL/dL = 1" : "");
        if (!r->grad) {
            printf("  no gradient reached it\n");
            continue;
        }
        const char *op = r->op->name;
        if (!strcmp(op, "nll_loss"))
            explain_nll_loss(T, r);
        else if (!strcmp(op, "log_softmax"))
            explain_log_softmax(T, r);
        else if (!strcmp(op, "add"))
            explain_add(T, r);
        else if (!strcmp(op, "relu"))
            explain_relu(T, r);
        else if (!strcmp(op, "matmul"))
            explain_matmul(T, r);
        else
            printf("  (see the backward of %s in autograd/)\n", op);
    }
}

/* ------------------------------------------------------------------ the program */

static int usage(FILE *f)
{
    fprintf(f, "usage: tape_tour [--help]\n"
               "  Builds a two-layer network on a batch of %d examples, prints its tape before and\n"
               "  after backward, shows how each record's gradient follows from the next one's,\n"
               "  checks the gradients with tg_gradcheck and writes the graph to ./%s and a page\n"
               "  that steps through backward to ./%s.\n",
            N, DOT_PATH, HTML_PATH);
    return 0;
}

/* The tape written to path whole or not at all (the library's atomic writer: a unique
 * temporary beside it, fsync, rename). Returns the bytes written, or -1 after a message. */
typedef tg_status (*tape_writer)(tg_tape *tp, FILE *f);
static long write_file(tg_tape *tp, const char *path, tape_writer write)
{
    tg_atomic_file w;
    if (tg__atomic_begin(&w, "tape_tour", path) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return -1;
    }
    if (write(tp, w.f) != TG_OK) {
        fprintf(stderr, "tape_tour: %s: %s\n", path, tg_last_error());
        tg__atomic_cancel(&w);
        return -1;
    }
    long bytes = ftell(w.f);
    if (tg__atomic_commit(&w) != TG_OK) {
        fprintf(stderr, "%s\n", tg_last_error());
        return -1;
    }
    return bytes;
}

static tg_status dot_writer(tg_tape *tp, FILE *f) { return tg_tape_write_dot(tp, f); }
static tg_status html_writer(tg_tape *tp, FILE *f)
{
    return tg_tape_write_html(tp, f, &(tg_html_options){.title = "tape_tour: linear -> relu -> linear -> cross-entropy"});
}

/* The graph as DOT, and the page that steps through backward. */
static int write_drawings(tg_tape *tp)
{
    long bytes = write_file(tp, DOT_PATH, dot_writer);
    if (bytes < 0)
        return 1;
    printf("\nwrote %s (%ld bytes): %d records and the leaves, filled by log10 mean |grad|;\n"
           "render it with: dot -Tsvg %s -o tape_tour.svg\n",
           DOT_PATH, bytes, tg_tape_size(tp), DOT_PATH);
    if ((bytes = write_file(tp, HTML_PATH, html_writer)) < 0)
        return 1;
    printf("wrote %s (%ld bytes): open it in a browser to step through backward record by\n"
           "record (right and left arrow keys), the values (forward) and the gradient flow\n",
           HTML_PATH, bytes);
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h"))
            return usage(stdout);
        fprintf(stderr, "tape_tour: unknown argument '%s' (try --help)\n", argv[i]);
        return 2;
    }

    static const double xv[N * D] = {0.5, -1.0, 0.3, 1.2, 0.4, -0.7, -0.3, 0.8, 0.9, 0.0, -0.5, 1.1};
    static const int32_t yv[N] = {0, 1, 1, 0};
    batch b = {tg_tensor_from_data(NULL, TG_F64, TG_DIMS(N, D), xv),
               tg_tensor_from_data(NULL, TG_I32, TG_DIMS(N), yv)};
    static const int64_t shapes[NPARAMS][2] = {{D, H}, {H, 0}, {H, C}, {C, 0}};
    tg_tensor *w[NPARAMS] = {0};
    tg_rng g = tg_rng_new(7);
    tg_tape *tp = tg_tape_new(0);
    int rc = 1;
    if (!b.x || !b.labels || !tp)
        goto fail;
    for (int p = 0; p < NPARAMS; p++) {
        w[p] = tg_tensor_empty(NULL, TG_F64, shapes[p][1] ? 2 : 1, shapes[p]);
        if (!w[p] || tg_tensor_uniform_(w[p], &g, -1, 1) != TG_OK || tg_requires_grad(w[p], param_names[p]) != TG_OK)
            goto fail;
    }

    printf("A two-layer network, linear(%d->%d) -> relu -> linear(%d->%d), and a cross-entropy\n"
           "loss (log_softmax + nll_loss) on %d examples. Each call appends one record to the tape.\n\n",
           D, H, H, C, N);
    tg_tensor *loss = network(tp, w, &b);
    if (tg_tape_status(tp) != TG_OK) {
        fprintf(stderr, "tape_tour: %s\n", tg_tape_error(tp));
        goto done;
    }
    printf("Forward: loss = %.6f\n", tg_tensor_item(loss));
    tg_tape_print(tp, stdout);

    if (tg_backward(tp, loss) != TG_OK) {
        fprintf(stderr, "tape_tour: %s\n", tg_tape_error(tp));
        goto done;
    }
    printf("\nAfter tg_backward(tp, loss): each record's gradient dL/d(out), and the leaves'\n");
    tg_tape_print(tp, stdout);

    tour T = {tp, &b, 0};
    explain(&T);
    printf("\nlargest difference between by hand and the tape: %.3g\n", T.worst);
    if (!(T.worst <= 1e-12)) {
        fprintf(stderr, "tape_tour: a gradient computed by hand differs from the tape's by %.3g\n", T.worst);
        goto done;
    }

    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(network, &b, NPARAMS, w, &(tg_gradcheck_options){.seed = 1}, &rep);
    printf("\ntg_gradcheck of the loss as a function of the four weights, against central\n"
           "differences: %s\n  %s\n", st == TG_OK ? "ok" : "FAILED", rep.message);
    if (st != TG_OK) {
        fprintf(stderr, "tape_tour: gradcheck failed: %s\n", rep.message);
        goto done;
    }

    rc = write_drawings(tp);
    goto done;
fail:
    fprintf(stderr, "tape_tour: %s\n", tg_last_error());
done:
    for (int p = 0; p < NPARAMS; p++)
        tg_tensor_free(w[p]);
    tg_tensor_free(b.x);
    tg_tensor_free(b.labels);
    tg_tape_free(tp);
    return rc;
}
