/* ch1_tape.c — chapter 1 of docs/tutorial: a tape by hand.
 *
 * f(x, y) = x*y + tanh(x) at x = 0.5, y = 2, three ways:
 *   1. as a Wengert list of plain C doubles, forward and then the reverse sweep by hand;
 *   2. on a tapegrad tape: what each record holds, and the reverse sweep one record at
 *      a time (the loop of tg_backward, written out), with tg_tape_print after each step;
 *   3. with tg_backward, which must agree with both.
 * Everything is f64 and printed with a fixed number of digits, so the output is the
 * same on every run (tests/docs compares it with ch1_tape.expected). */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>

/* ------------------------------------------------------------------ 1. by hand */

static void by_hand(double x, double y, double *dx, double *dy)
{
    printf("1. The Wengert list: one line per elementary operation, each value named once.\n\n");
    double v0 = x, v1 = y;
    double v2 = v0 * v1;
    double v3 = tanh(v0);
    double v4 = v2 + v3;
    printf("   v0 = x           = %9.6f\n", v0);
    printf("   v1 = y           = %9.6f\n", v1);
    printf("   v2 = v0 * v1     = %9.6f\n", v2);
    printf("   v3 = tanh(v0)    = %9.6f\n", v3);
    printf("   v4 = v2 + v3     = %9.6f   = f(x, y)\n\n", v4);

    printf("   The reverse sweep: a_i = df/dv_i (the adjoint of v_i), from the last line up.\n"
           "   Each line hands its adjoint to the values it read, times the local derivative,\n"
           "   and adds (+=) it there: v0 is read twice, so it receives two shares.\n\n");
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 1;
    printf("   a4 = 1                                    (df/df)\n");
    a2 += a4 * 1;
    a3 += a4 * 1;
    printf("   v4 = v2 + v3:   a2 += a4 * 1             -> a2 = %9.6f\n", a2);
    printf("                   a3 += a4 * 1             -> a3 = %9.6f\n", a3);
    a0 += a3 * (1 - v3 * v3);
    printf("   v3 = tanh(v0):  a0 += a3 * (1 - v3^2)    -> a0 = %9.6f\n", a0);
    a0 += a2 * v1;
    a1 += a2 * v0;
    printf("   v2 = v0 * v1:   a0 += a2 * v1            -> a0 = %9.6f\n", a0);
    printf("                   a1 += a2 * v0            -> a1 = %9.6f\n", a1);
    printf("\n   df/dx = a0 = %.6f   (y + 1 - tanh(x)^2)\n", a0);
    printf("   df/dy = a1 = %.6f   (x)\n", a1);
    *dx = a0;
    *dy = a1;
}

/* ------------------------------------------------------------------ 2. the tape */

/* "x", "y", "#2": what an input of a record is called */
static const char *input_name(char *buf, size_t size, const tg_record *r, int i)
{
    if (r->in_record[i] >= 0)
        snprintf(buf, size, "#%d", r->in_record[i]);
    else
        snprintf(buf, size, "%s", tg_is_leaf(r->in[i]) ? tg_leaf_name(r->in[i]) : "const");
    return buf;
}

static void show_records(const tg_tape *tp)
{
    printf("   What each record holds (struct tg_record, autograd.h):\n");
    for (int id = 0; id < tg_tape_size(tp); id++) {
        const tg_record *r = tg_tape_record(tp, id);
        printf("   #%d  op=%-4s nin=%d  in_record={", r->id, r->op->name, r->nin);
        for (int i = 0; i < r->nin; i++)
            printf("%s%d", i ? ", " : "", r->in_record[i]);
        printf("}  in={");
        for (int i = 0; i < r->nin; i++) {
            char nm[32];
            printf("%s%s = %.6f", i ? ", " : "", input_name(nm, sizeof nm, r, i), tg_tensor_item(r->in[i]));
        }
        printf("}\n        out = %.6f  requires_grad = %s  grad = %s\n", tg_tensor_item(r->out),
               r->requires_grad ? "true" : "false", r->grad ? "set" : "NULL");
    }
}

/* The loop at the heart of tg_backward, written out with public fields: visit the
 * records from the last to the first; each calls its op's backward with the gradient
 * that reached its output, which adds a share to each input (tg_accumulate_grad).
 * A record is skipped, as tg_backward skips it, when no gradient reached its output
 * (nothing after it used it), none of its inputs needs one (it only read constants),
 * or its op has no backward. tg_backward also seeds the last record's own grad with 1, which a program cannot
 * do (the record is read-only), so here the seed is passed by hand and the last
 * row of the table stays empty. */
static int sweep_by_steps(tg_tape *tp, tg_tensor *f)
{
    tg_tensor *seed = tg_tensor_scalar(tg_tape_arena(tp), TG_F64, 1.0);
    if (!seed)
        return 1;
    int last = tg_tape_record_of(tp, f)->id;
    for (int id = last; id >= 0; id--) {
        const tg_record *r = tg_tape_record(tp, id);
        const tg_tensor *gout = id == last ? seed : r->grad;
        if (!gout || !r->requires_grad || !r->op->backward)
            continue; /* no gradient reached it, or it has nothing to pass on */
        printf("\n   step %d: record #%d (%s) receives dL/d(out) = %.6f and calls %s's backward\n",
               last - id + 1, id, r->op->name, tg_tensor_item(gout), r->op->name);
        if (r->op->backward(tp, r, gout) != TG_OK || tg_tape_status(tp) != TG_OK) {
            fprintf(stderr, "ch1_tape: %s\n", tg_tape_error(tp));
            return 1;
        }
        tg_tape_print(tp, stdout);
    }
    return 0;
}

static tg_tensor *leaf(double v, const char *name)
{
    tg_tensor *t = tg_tensor_scalar(NULL, TG_F64, v);
    if (t && tg_requires_grad(t, name) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

int main(void)
{
    const double X = 0.5, Y = 2.0;
    double hand_dx, hand_dy;
    by_hand(X, Y, &hand_dx, &hand_dy);

    int rc = 1;
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = leaf(X, "x"), *y = leaf(Y, "y");
    if (!tp || !x || !y) {
        fprintf(stderr, "ch1_tape: %s\n", tg_last_error());
        goto done;
    }

    printf("\n2. The same function on a tape. Each call computes its value and appends a record.\n\n");
    /* one call per statement: the records are in the order of the calls, and C leaves
     * the order in which a call's arguments are evaluated unspecified */
    tg_tensor *xy = tg_mul(tp, x, y);
    tg_tensor *t = tg_tanh(tp, x);
    tg_tensor *f = tg_add(tp, xy, t);
    if (tg_tape_status(tp) != TG_OK) {
        fprintf(stderr, "ch1_tape: %s\n", tg_tape_error(tp));
        goto done;
    }
    printf("   xy = tg_mul(tp, x, y);  t = tg_tanh(tp, x);  f = tg_add(tp, xy, t);   f = %.6f\n\n",
           tg_tensor_item(f));
    tg_tape_print(tp, stdout);
    printf("\n");
    show_records(tp);

    printf("\n   The reverse sweep, one record at a time (the mean|g| column is |dL/d(out)|):\n");
    if (sweep_by_steps(tp, f) != 0)
        goto done;
    double step_dx = tg_tensor_item(tg_grad(x)), step_dy = tg_tensor_item(tg_grad(y));
    printf("\n   by steps:    dx = %.6f  dy = %.6f\n", step_dx, step_dy);

    printf("\n3. tg_backward does the same loop (after zeroing the leaves' gradients, which\n"
           "   accumulate across backward calls until tg_zero_grad):\n\n");
    tg_zero_grad(x);
    tg_zero_grad(y);
    if (tg_backward(tp, f) != TG_OK) {
        fprintf(stderr, "ch1_tape: %s\n", tg_tape_error(tp));
        goto done;
    }
    tg_tape_print(tp, stdout);
    double dx = tg_tensor_item(tg_grad(x)), dy = tg_tensor_item(tg_grad(y));
    printf("\n   tg_backward: dx = %.6f  dy = %.6f\n", dx, dy);
    printf("   by hand:     dx = %.6f  dy = %.6f\n", hand_dx, hand_dy);
    if (fabs(dx - hand_dx) > 1e-12 || fabs(dy - hand_dy) > 1e-12 || fabs(step_dx - dx) > 1e-12 ||
        fabs(step_dy - dy) > 1e-12) {
        fprintf(stderr, "ch1_tape: the three answers differ\n");
        goto done;
    }
    printf("   all three agree\n");
    rc = 0;
done:
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tape_free(tp);
    return rc;
}
