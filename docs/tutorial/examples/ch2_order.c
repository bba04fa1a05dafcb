/* ch2_order.c — chapter 2 of docs/tutorial: why the reverse sweep needs a topological
 * order and accumulation.
 *
 *   1. y = x * x: one value used twice by one record; its gradient is the sum of two shares.
 *   2. A chain of "diamonds", v_{k+1} = tanh(v_k) + v_k * c, where every v_k is read by
 *      two records. Four ways of sweeping the same tape backwards, on plain doubles read
 *      off the records: the tape's reverse order with += (what tg_backward does), the
 *      same with = instead of +=, a depth-first walk that visits each record once as
 *      soon as it is reached, and a recursive walk that follows every path.
 *   3. How many visits each correct method needs as the chain grows.
 * It also writes the chain's tape as ch2_diamonds.html in the current folder, a page
 * that steps through the backward pass one record at a time.
 * f64 throughout, fixed precision: the output is compared with ch2_order.expected. */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ 1. x * x */

static int used_twice(void)
{
    printf("1. A value used twice: y = x * x at x = 3.\n\n");
    int rc = 1;
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_scalar(NULL, TG_F64, 3.0);
    if (!tp || !x || tg_requires_grad(x, "x") != TG_OK)
        goto done;
    tg_tensor *y = tg_mul(tp, x, x);
    if (tg_backward(tp, y) != TG_OK)
        goto done;
    const tg_record *r = tg_tape_record_of(tp, y);
    printf("   record #%d %s has in[0] == in[1] == x (in_record = {%d, %d}).\n", r->id, r->op->name,
           r->in_record[0], r->in_record[1]);
    printf("   mul's backward hands in[0] the share g * in[1] = 1 * 3 and in[1] the share g * in[0] = 1 * 3;\n"
           "   both land in x's gradient, which adds them: dy/dx = %.6f (= 2x).\n", tg_tensor_item(tg_grad(x)));
    printf("   Had the second share overwritten the first, dy/dx would read 3.\n");
    rc = 0;
done:
    if (rc)
        fprintf(stderr, "ch2_order: %s\n", tp && tg_tape_status(tp) ? tg_tape_error(tp) : tg_last_error());
    tg_tensor_free(x);
    tg_tape_free(tp);
    return rc;
}

/* ------------------------------------------------------------------ 2. the diamonds */

/* The tape read into plain arrays, so that the sweeps below are a few lines of C each:
 * for record k, input i: where it comes from (a record, or -1 for x, -2 for the
 * constant) and the local derivative d out_k / d in_i. */
typedef struct graph {
    int n;              /* records */
    int nin[1024];
    int src[1024][2];
    double partial[1024][2];
} graph;

#define SRC_X (-1)
#define SRC_CONST (-2)

static int read_graph(const tg_tape *tp, const tg_tensor *x, graph *G)
{
    G->n = tg_tape_size(tp);
    if (G->n > 1024)
        return 1;
    for (int k = 0; k < G->n; k++) {
        const tg_record *r = tg_tape_record(tp, k);
        G->nin[k] = r->nin;
        for (int i = 0; i < r->nin; i++) {
            G->src[k][i] = r->in_record[i] >= 0 ? r->in_record[i] : r->in[i] == x ? SRC_X : SRC_CONST;
            double d;
            if (!strcmp(r->op->name, "add"))
                d = 1;
            else if (!strcmp(r->op->name, "mul"))
                d = tg_tensor_item(r->in[1 - i]); /* d(a*b)/da = b */
            else if (!strcmp(r->op->name, "tanh"))
                d = 1 - tg_tensor_item(r->out) * tg_tensor_item(r->out);
            else
                return 1;
            G->partial[k][i] = d;
        }
    }
    return 0;
}

/* The tape's order, last record first. accumulate: += (correct) or = (wrong). */
static double sweep_tape_order(const graph *G, bool accumulate, long *visits)
{
    double adj[1024] = {0}, dx = 0;
    adj[G->n - 1] = 1;
    *visits = 0;
    for (int k = G->n - 1; k >= 0; k--) {
        ++*visits;
        for (int i = 0; i < G->nin[k]; i++) {
            double share = adj[k] * G->partial[k][i];
            int s = G->src[k][i];
            double *slot = s >= 0 ? &adj[s] : s == SRC_X ? &dx : NULL;
            if (slot)
                *slot = accumulate ? *slot + share : share;
        }
    }
    return dx;
}

/* Depth-first from the output, each record visited once, as soon as a first share
 * reaches it. A record read by two others hands its gradient on before the second
 * share has arrived: that share is added later but never passed on. */
static void dfs_once(const graph *G, int k, double *adj, bool *seen, double *dx, long *visits)
{
    seen[k] = true;
    ++*visits;
    for (int i = 0; i < G->nin[k]; i++) {
        double share = adj[k] * G->partial[k][i];
        int s = G->src[k][i];
        if (s == SRC_X)
            *dx += share;
        if (s < 0)
            continue;
        adj[s] += share;
        if (!seen[s])
            dfs_once(G, s, adj, seen, dx, visits);
    }
}

/* Every path from the output to x, each followed separately: correct (the chain rule
 * sums over paths), but a record is visited once per path that reaches it. */
static void every_path(const graph *G, int k, double g, double *dx, long *visits)
{
    ++*visits;
    for (int i = 0; i < G->nin[k]; i++) {
        int s = G->src[k][i];
        double share = g * G->partial[k][i];
        if (s >= 0)
            every_path(G, s, share, dx, visits);
        else if (s == SRC_X)
            *dx += share;
    }
}

/* v_0 = x; v_{k+1} = tanh(v_k) + v_k * c, for `stages` stages, on tp. */
static tg_tensor *diamonds(tg_tape *tp, tg_tensor *x, tg_tensor *c, int stages)
{
    tg_tensor *v = x;
    for (int k = 0; k < stages; k++) {
        tg_tensor *t = tg_tanh(tp, v);
        tg_tensor *m = tg_mul(tp, v, c);
        v = tg_add(tp, t, m);
    }
    return v;
}

/* The tape as a page that steps through its backward pass, each share and each sum of
 * two shares on screen (tg_tape_write_html). */
static int write_page(tg_tape *tp, const char *path)
{
    FILE *f = fopen(path, "w");
    tg_status st = f ? tg_tape_write_html(tp, f, &(tg_html_options){.title = "chapter 2: a chain of diamonds"})
                     : TG_ERR_IO;
    if (!f || fclose(f) != 0 || st != TG_OK) {
        fprintf(stderr, "ch2_order: %s: %s\n", path, st != TG_OK && f ? tg_last_error() : "cannot write");
        return 1;
    }
    printf("\n   wrote %s: open it in a browser to step through this backward pass\n", path);
    return 0;
}

typedef struct results {
    double backward, tape_add, tape_set, dfs, paths;
    long v_tape, v_set, v_dfs, v_paths;
    int records;
} results;

static int run_chain(int stages, bool print, results *R)
{
    int rc = 1;
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_scalar(NULL, TG_F64, 0.5);
    tg_tensor *c = tg_tensor_scalar(NULL, TG_F64, 0.5);
    graph *G = malloc(sizeof *G);
    if (!tp || !x || !c || !G || tg_requires_grad(x, "x") != TG_OK)
        goto done;
    tg_tensor *out = diamonds(tp, x, c, stages);
    if (tg_backward(tp, out) != TG_OK)
        goto done;
    if (print) {
        printf("   v_3 = %.6f; its tape:\n\n", tg_tensor_item(out));
        tg_tape_print(tp, stdout);
        if (write_page(tp, "ch2_diamonds.html") != 0)
            goto done;
    }
    R->backward = tg_tensor_item(tg_grad(x));
    R->records = tg_tape_size(tp);
    if (read_graph(tp, x, G) != 0) {
        fprintf(stderr, "ch2_order: an op this program does not know\n");
        goto done;
    }
    R->tape_add = sweep_tape_order(G, true, &R->v_tape);
    R->tape_set = sweep_tape_order(G, false, &R->v_set);
    double adj[1024] = {0};
    bool seen[1024] = {0};
    adj[G->n - 1] = 1;
    R->dfs = 0;
    R->v_dfs = 0;
    dfs_once(G, G->n - 1, adj, seen, &R->dfs, &R->v_dfs);
    R->paths = 0;
    R->v_paths = 0;
    every_path(G, G->n - 1, 1.0, &R->paths, &R->v_paths);
    rc = 0;
done:
    if (rc && tp && tg_tape_status(tp) != TG_OK)
        fprintf(stderr, "ch2_order: %s\n", tg_tape_error(tp));
    else if (rc && !G)
        fprintf(stderr, "ch2_order: out of memory\n");
    free(G);
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tape_free(tp);
    return rc;
}

int main(void)
{
    if (used_twice() != 0)
        return 1;

    printf("\n2. A chain of diamonds: v_0 = x = 0.5, v_{k+1} = tanh(v_k) + v_k * c with c = 0.5,\n"
           "   three stages. Each v_k is read twice (by tanh and by mul).\n\n");
    results R;
    if (run_chain(3, true, &R) != 0)
        return 1;
    printf("\n   dv_3/dx, sweeping the same records four ways:\n\n");
    printf("   %-52s %7s  %12s\n", "method", "visits", "dv_3/dx");
    printf("   %-52s %7ld  %12.9f\n", "tg_backward", (long)R.records, R.backward);
    printf("   %-52s %7ld  %12.9f\n", "tape order, last record first, +=", R.v_tape, R.tape_add);
    printf("   %-52s %7ld  %12.9f   wrong\n", "tape order, last record first, = (overwrite)", R.v_set,
           R.tape_set);
    printf("   %-52s %7ld  %12.9f   wrong\n", "depth-first, each record once, as soon as reached", R.v_dfs,
           R.dfs);
    printf("   %-52s %7ld  %12.9f\n", "recursive, every path separately", R.v_paths, R.paths);
    if (fabs(R.tape_add - R.backward) > 1e-12 || fabs(R.paths - R.backward) > 1e-12) {
        fprintf(stderr, "ch2_order: the correct methods disagree\n");
        return 1;
    }

    printf("\n3. Visits as the chain grows (both methods give the same gradient):\n\n");
    printf("   %6s %8s %14s %14s %12s\n", "stages", "records", "tape visits", "path visits", "dv/dx");
    for (int stages = 4; stages <= 20; stages += 4) {
        if (run_chain(stages, false, &R) != 0)
            return 1;
        if (fabs(R.paths - R.backward) > 1e-12 * fabs(R.backward) + 1e-300) {
            fprintf(stderr, "ch2_order: %d stages: the path sum differs from tg_backward\n", stages);
            return 1;
        }
        printf("   %6d %8d %14ld %14ld %12.4e\n", stages, R.records, R.v_tape, R.v_paths, R.backward);
    }
    return 0;
}
