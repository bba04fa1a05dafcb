/* In-place writes between a forward and tg_backward: the tape refuses when a value a
 * backward reads (tg_op.reads) changed version since it was recorded, names the op,
 * its scope, the input and both versions, and touches no gradient; values no backward
 * reads, records the backward does not reach, and the tape's own writes to gradients
 * are not refused. Then the in-place ops tg_relu_ and tg_leaky_relu_: the same bits as
 * the out-of-place ones, values and gradients, gradchecked; refused when they are
 * recorded where the write would make a gradient wrong, or at backward when a write
 * after them would; and an op given the stale input of one refuses. */
#include "ag_check.h"

static void assert_has(const char *s, const char *part)
{
    ck_assert_msg(strstr(s, part) != NULL, "'%s' not in '%s'", part, s);
}

/* The example: y = sum(x * w), w overwritten, backward. */
START_TEST(test_overwritten_input_is_refused)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x"), *w = tt_leaf(TG_F64, TG_DIMS(3), "w");
    uint64_t v0 = tg_tensor_version(w);
    tg_scope_push(tp, "layer");
    tg_tensor *y = tg_sum(tp, tg_mul(tp, x, w), 0, NULL, false);
    tg_scope_pop(tp);
    ck_assert_int_eq(tg_tensor_fill_(w, 0.0), TG_OK);
    ck_assert_uint_eq(tg_tensor_version(w), v0 + 1);
    ck_assert_int_eq(tg_backward(tp, y), TG_ERR_STATE);
    const char *msg = tg_tape_error(tp);
    assert_has(msg, "tg_backward: tg_mul (record 0, in layer) needs input 1 ('w') as it was when "
                    "recorded, but it was written in place since");
    char versions[80];
    snprintf(versions, sizeof versions, "(version %llu then, %llu now)", (unsigned long long)v0,
             (unsigned long long)v0 + 1);
    assert_has(msg, versions);
    ck_assert_str_eq(tg_last_error(), msg);
    /* refused before anything ran: no gradient anywhere */
    ck_assert_ptr_null(tg_grad(x));
    ck_assert_ptr_null(tg_grad(w));
    ck_assert_ptr_null(tg_tape_record(tp, 1)->grad);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
}
END_TEST

/* Every kind of write through the library is seen: copy_, axpy_, set, the _out forms,
 * a random fill, a bump after a raw write; on the leaf or on a view of it. */
START_TEST(test_every_library_write_is_seen)
{
    for (int k = 0; k < 8; k++) {
        tg_tape *tp = tg_tape_new(0);
        tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2, 3), "x"), *w = tt_leaf(TG_F64, TG_DIMS(2, 3), "w");
        tg_tensor *y = tg_sum(tp, tg_mul(tp, x, w), 0, NULL, false);
        tg_tensor *other = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
        tg_tensor *row = tg_tensor_select(NULL, w, 0, 1); /* a view: one storage, one version */
        tg_rng g = tg_rng_new(1);
        tg_status st = TG_OK;
        switch (k) {
        case 0: st = tg_tensor_copy_(w, other); break;
        case 1: st = tg_tensor_axpy_(w, 0.5, other); break;
        case 2: st = tg_tensor_set(w, (int64_t[]){1, 2}, 7.0); break;
        case 3: st = tg_tensor_unary_out(w, TG_EXP, w, 0, 0); break;
        case 4: st = tg_tensor_binary_out(w, TG_ADD, w, other); break;
        case 5: st = tg_tensor_normal_(row, &g, 0, 1); break;
        case 6: st = tg_tensor_fill_(row, 2.0); break;
        case 7:
            ((double *)tg_tensor_data(w))[0] = 5; /* raw: unseen ... */
            tg_tensor_bump_version(w);            /* ... until said */
            break;
        }
        ck_assert_int_eq(st, TG_OK);
        ck_assert_msg(tg_backward(tp, y) == TG_ERR_STATE, "write %d was not seen", k);
        assert_has(tg_tape_error(tp), "needs input 1 ('w')");
        tg_tensor_free(row);
        tg_tensor_free(other);
        tg_tape_free(tp);
        tg_tensor_free(x);
        tg_tensor_free(w);
    }
}
END_TEST

/* A raw write through tg_tensor_data without a bump cannot be seen (the documented
 * limit): backward runs, on the new value. */
START_TEST(test_raw_write_is_not_seen)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2), "x"), *w = tt_leaf(TG_F64, TG_DIMS(2), "w");
    tg_tensor *y = tg_sum(tp, tg_mul(tp, x, w), 0, NULL, false);
    double *wd = tg_tensor_data(w);
    wd[0] = 3, wd[1] = 4;
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){3, 4}), 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
}
END_TEST

/* exp's backward reads its output: writing the output is refused, naming it. */
START_TEST(test_overwritten_output_is_refused)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(4), "x");
    tg_tensor *e = tg_exp(tp, x);
    tg_tensor *y = tg_sum(tp, e, 0, NULL, false);
    ck_assert_int_eq(tg_tensor_fill_(e, 1.0), TG_OK);
    ck_assert_int_eq(tg_backward(tp, y), TG_ERR_STATE);
    assert_has(tg_tape_error(tp), "tg_backward: tg_exp (record 0) needs its output as it was");
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* What no backward reads may change: add's inputs (its backward needs shapes only),
 * sum's input, and any input of a record the backward does not reach. */
START_TEST(test_writes_no_backward_reads_are_allowed)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x"), *c = tt_rand_tensor(TG_F64, TG_DIMS(3));
    tg_tensor *w2 = tt_leaf(TG_F64, TG_DIMS(3), "w2");
    tg_tensor *s = tg_add(tp, x, c);
    tg_tensor *y = tg_sum(tp, s, 0, NULL, false);
    tg_tensor *unused = tg_mul(tp, x, w2); /* another branch: not reached from y */
    ck_assert_ptr_nonnull(unused);
    ck_assert_int_eq(tg_tensor_fill_(c, 5.0), TG_OK);
    ck_assert_int_eq(tg_tensor_fill_(s, 0.0), TG_OK);
    ck_assert_int_eq(tg_tensor_fill_(w2, 0.0), TG_OK);
    ck_assert_msg(tg_backward(tp, y) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(x), ((double[]){1, 1, 1}), 0);
    ck_assert_ptr_null(tg_grad(w2));
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(c);
    tg_tensor_free(w2);
}
END_TEST

/* The tape's own writes are to gradients, which no backward reads as values: a value
 * used three times accumulates its gradient in place (axpy_) while exp's backward,
 * which reads that value, still finds it unchanged; likewise with gradients given back
 * as soon as used, and a leaf's grad accumulated over two tapes. */
static tg_tensor *used_thrice(tg_tape *tp, tg_tensor *x)
{
    tg_tensor *a = tg_exp(tp, x);
    return tg_sum(tp, tg_mul(tp, tg_mul(tp, a, a), a), 0, NULL, false);
}

START_TEST(test_the_tapes_own_writes_are_not_refused)
{
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2, 3), "x");
    double *xv = tt_values(x), want[6];
    for (int i = 0; i < 6; i++)
        want[i] = 3 * exp(3 * xv[i]);
    for (int keep = 0; keep < 2; keep++) {
        tg_tape *tp = tg_tape_new(0);
        tg_tape_set_keep_grads(tp, keep);
        tg_zero_grad(x);
        ck_assert_msg(tg_backward(tp, used_thrice(tp, x)) == TG_OK, "%s", tg_tape_error(tp));
        tt_assert_close(tg_grad(x), want, 1e-14);
        tg_tape *tp2 = tg_tape_new(0); /* the leaf's grad, written by tp, is read by nothing */
        ck_assert_int_eq(tg_backward(tp2, used_thrice(tp2, x)), TG_OK);
        tg_tape_free(tp2);
        tg_tape_free(tp);
    }
    free(xv);
    tg_tensor_free(x);
}
END_TEST

/* A user op that does not say what its backward reads is checked on every input and
 * its output; TG_READS_NONE checks nothing. */
static tg_tensor *copy_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_clone(tg_tape_arena(tp), r->in[0]);
}

static tg_status copy_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, g);
}

static const tg_op op_says_nothing = {"says_nothing", copy_forward, copy_backward, 0};
static const tg_op op_reads_none = {"reads_none", copy_forward, copy_backward, TG_READS_NONE};

START_TEST(test_user_op_default_checks_everything)
{
    const tg_op *ops[2] = {&op_says_nothing, &op_reads_none};
    for (int k = 0; k < 2; k++) {
        for (int out = 0; out < 2; out++) {
            tg_tape *tp = tg_tape_new(0);
            tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x");
            tg_tensor *o = tg_apply(tp, ops[k], 1, &x, NULL, 0);
            tg_tensor *y = tg_sum(tp, o, 0, NULL, false);
            ck_assert_int_eq(tg_tensor_fill_(out ? o : x, 1.0), TG_OK);
            tg_status st = tg_backward(tp, y);
            if (k == 0) {
                ck_assert_int_eq(st, TG_ERR_STATE);
                assert_has(tg_tape_error(tp), out ? "tg_says_nothing (record 0) needs its output"
                                                  : "tg_says_nothing (record 0) needs input 0 ('x')");
            } else {
                ck_assert_msg(st == TG_OK, "%s", tg_tape_error(tp));
            }
            tg_tape_free(tp);
            tg_tensor_free(x);
        }
    }
}
END_TEST

/* ------------------------------------------------------------------ relu_, leaky_relu_ */

enum { RELU, LEAKY, LEAKY0, NACT };
static const char *const act_name[NACT] = {"relu", "leaky_relu 0.01", "leaky_relu 0"};

static tg_tensor *act(tg_tape *tp, int which, bool inplace, tg_tensor *x)
{
    double slope = which == LEAKY ? 0.01 : 0;
    if (which == RELU)
        return inplace ? tg_relu_(tp, x) : tg_relu(tp, x);
    return inplace ? tg_leaky_relu_(tp, x, slope) : tg_leaky_relu(tp, x, slope);
}

/* x * 1: a fresh tensor of the tape, which no backward reads (mul_scalar's reads
 * nothing), for the in-place op to write over; transposed when `strided` */
static tg_tensor *fresh_copy(tg_tape *tp, tg_tensor *x, bool strided)
{
    tg_tensor *h = tg_mul_scalar(tp, x, 1);
    return strided ? tg_transpose(tp, h, 0, 1) : h;
}

/* The in-place op gives the out-of-place one's values and input gradient bit for bit,
 * at the kinks and on specials too (0, -0, a negative that the slope takes below the
 * smallest float, NaN, infinities), f32 and f64, on a contiguous and a transposed
 * input; and it wrote its result into that input's storage. */
START_TEST(test_inplace_act_same_bits_as_out_of_place)
{
    static const double special[8] = {0, -0.0, -1e-300, NAN, INFINITY, -INFINITY, 2, -3};
    for (int dt = 0; dt < 2; dt++)
        for (int which = 0; which < NACT; which++)
            for (int strided = 0; strided < 2; strided++) {
                tg_dtype d = dt ? TG_F64 : TG_F32;
                tg_tensor *x = tt_leaf(d, TG_DIMS(6, 8), "x");
                for (int i = 0; i < 8; i++)
                    ck_assert_int_eq(tg_tensor_set(x, (int64_t[]){i % 6, i}, special[i]), TG_OK);
                tg_tensor *gx[2], *y[2];
                tg_tape *tp[2];
                for (int inplace = 0; inplace < 2; inplace++) {
                    tp[inplace] = tg_tape_new(0);
                    tg_tensor *h = fresh_copy(tp[inplace], x, strided);
                    y[inplace] = act(tp[inplace], which, inplace, h);
                    ck_assert_msg(tg_tape_status(tp[inplace]) == TG_OK, "%s", tg_tape_error(tp[inplace]));
                    ck_assert(!inplace || (y[1]->storage == h->storage && y[1] != h));
                    ck_assert(inplace || y[0]->storage != h->storage);
                    tg_rng g = tg_rng_new(5);
                    tg_tensor *gout = tg_tensor_empty(tg_tape_arena(tp[inplace]), d, y[inplace]->ndim,
                                                      y[inplace]->shape);
                    ck_assert_int_eq(tg_tensor_uniform_(gout, &g, -1, 1), TG_OK);
                    ck_assert_msg(tg_backward_from(tp[inplace], y[inplace], gout) == TG_OK, "%s",
                                  tg_tape_error(tp[inplace]));
                    gx[inplace] = tg_tensor_clone(NULL, tg_grad(x));
                    tg_zero_grad(x);
                }
                tg_tensor *y0 = tg_tensor_contiguous(NULL, y[0]), *y1 = tg_tensor_contiguous(NULL, y[1]);
                ck_assert_msg(tt_same_bits(y0, y1), "%s %s strided %d: values", act_name[which],
                              tg_dtype_name(d), strided);
                ck_assert_msg(tt_same_bits(gx[0], gx[1]), "%s %s strided %d: gradient", act_name[which],
                              tg_dtype_name(d), strided);
                tg_tensor_free(y0); /* before the tapes: they may be views of their arenas */
                tg_tensor_free(y1);
                for (int k = 0; k < 2; k++) {
                    tg_tape_free(tp[k]);
                    tg_tensor_free(gx[k]);
                }
                tg_tensor_free(x);
            }
}
END_TEST

/* gradcheck perturbs its f64 leaves and evaluates the function again on each: the
 * leaf itself may not be written (refused below), so the function writes over a copy
 * the tape made, as a network's activation writes over a conv's output. */
static tg_tensor *gc_act(tg_tape *tp, tg_tensor *const *in, void *user)
{
    const int *which = user;
    return act(tp, which[0], true, fresh_copy(tp, in[0], which[1]));
}

START_TEST(test_inplace_act_gradcheck)
{
    for (int which = 0; which < NACT; which++)
        for (int strided = 0; strided < 2; strided++) {
            tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(5, 7));
            double *v = tt_values(x); /* away from the kink at 0: |x| >= 0.1 */
            for (int i = 0; i < 35; i++)
                ck_assert_int_eq(tg_tensor_set(x, (int64_t[]){i / 7, i % 7},
                                               v[i] < 0 ? v[i] - 0.1 : v[i] + 0.1), TG_OK);
            free(v);
            GRADCHECK(gc_act, ((int[]){which, strided}), x);
        }
}
END_TEST

/* A refused in-place call: the tape's error is `message` plus the scope, the result is
 * the placeholder, and x was not written. */
static void expect_refused(tg_tape *tp, tg_tensor *result, tg_tensor *x, const double *before,
                           uint64_t version, const char *message)
{
    ck_assert_int_ne(tg_tape_status(tp), TG_OK);
    ck_assert_str_eq(tg_tape_error(tp), message);
    ck_assert_int_eq(tg_tensor_numel(result), 1);
    ck_assert_int_eq(result->ndim, 0);
    ck_assert_uint_eq(tg_tensor_version(x), version);
    tt_assert_close(x, before, 0);
}

START_TEST(test_inplace_act_refused_when_recorded)
{
    for (int k = 0; k < 7; k++) {
        tg_tape *tp = tg_tape_new(0);
        tg_tensor *w = tt_leaf(TG_F64, TG_DIMS(2, 3), "w");
        tg_tensor *h = tg_mul_scalar(tp, w, 1), *x = NULL, *y = NULL;
        const char *want = NULL;
        tg_scope_push(tp, "layer");
        switch (k) {
        case 0: /* a parameter */
            x = w;
            want = "tg_relu_: x is the parameter 'w', whose value its gradient is taken at; use tg_relu "
                   "(called in layer)";
            break;
        case 1: /* a view of one on the tape */
            x = tg_reshape(tp, w, 1, (int64_t[]){6});
            want = "tg_relu_: x is a view of the parameter 'w' (as record 0, tg_mul_scalar, read it); "
                   "writing it would change the parameter; use tg_relu (called in layer)";
            break;
        case 2: /* elements that share memory */
            x = tg_expand(tp, tg_select(tp, h, 0, 0), 2, (int64_t[]){4, 3});
            want = "tg_relu_: x has elements that share memory (an expanded or broadcast view), which "
                   "one write would change together; use tg_relu, or write a contiguous copy "
                   "(tg_tensor_contiguous) (called in layer)";
            break;
        case 3: /* read as an input by a recorded backward */
            ck_assert_ptr_nonnull(tg_mul(tp, h, w));
            x = h;
            want = "tg_relu_: the backward of record 1 (tg_mul, in layer) reads x as its input 0, and "
                   "would find it overwritten; use tg_relu, or apply this one to a value no recorded "
                   "backward reads (a conv2d's or batch_norm2d's output) (called in layer)";
            break;
        case 4: /* read as an output (a view of it is written) */
            x = tg_transpose(tp, tg_exp(tp, h), 0, 1);
            want = "tg_relu_: the backward of record 1 (tg_exp, in layer) reads x as its output, and "
                   "would find it overwritten; use tg_relu, or apply this one to a value no recorded "
                   "backward reads (a conv2d's or batch_norm2d's output) (called in layer)";
            break;
        case 5: /* twice: the first one's backward reads its output */
            x = tg_relu_(tp, h);
            want = "tg_relu_: the backward of record 1 (tg_relu_, in layer) reads x as its output, and "
                   "would find it overwritten; use tg_relu, or apply this one to a value no recorded "
                   "backward reads (a conv2d's or batch_norm2d's output) (called in layer)";
            break;
        case 6: /* a slope that flips the sign */
            x = h;
            want = "tg_leaky_relu_: slope -0.1 < 0 flips the sign of negative inputs, so the backward "
                   "could not tell them from the output; use tg_leaky_relu (called in layer)";
            break;
        }
        ck_assert_msg(tg_tape_status(tp) == TG_OK, "case %d: %s", k, tg_tape_error(tp));
        double *before = tt_values(x);
        uint64_t version = tg_tensor_version(x);
        int nrec = tg_tape_size(tp);
        y = k == 6 ? tg_leaky_relu_(tp, x, -0.1) : tg_relu_(tp, x);
        expect_refused(tp, y, x, before, version, want);
        ck_assert_int_eq(tg_tape_size(tp), nrec); /* nothing recorded */
        ck_assert_int_ne(tg_backward(tp, tg_sum(tp, h, 0, NULL, false)), TG_OK); /* sticky */
        ck_assert_ptr_null(tg_grad(w));
        free(before);
        tg_tape_free(tp);
        tg_tensor_free(w);
    }
}
END_TEST

/* Passing on the in-place op's input instead of its result: the input's header still
 * belongs to the record that made it, so the gradient would skip the activation. The
 * op given it refuses; the result is what works. */
START_TEST(test_stale_input_of_inplace_is_refused)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *w = tt_leaf(TG_F64, TG_DIMS(4), "w");
    tg_tensor *h = tg_mul_scalar(tp, w, 1);
    tg_tensor *y = tg_relu_(tp, h);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tg_scope_push(tp, "head");
    ck_assert_ptr_nonnull(tg_sum(tp, y, 0, NULL, false));
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tg_sum(tp, h, 0, NULL, false);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_STATE);
    ck_assert_str_eq(tg_tape_error(tp), "tg_sum: input 0 was written in place after record 0 "
                                        "(tg_mul_scalar) made it (version 0 then, 1 now), so its "
                                        "gradient would skip that write; pass on the result of the "
                                        "in-place op (y = tg_relu_(tp, x), then y, not x), or write a "
                                        "copy (tg_tensor_clone) (called in head)");
    tg_tape_free(tp);
    tg_tensor_free(w);
}
END_TEST

/* A write after the in-place op, to its result or (the same storage) its input, is
 * tg_backward's version error naming the in-place record, before any gradient. */
START_TEST(test_write_after_inplace_is_refused_at_backward)
{
    for (int through_input = 0; through_input < 2; through_input++) {
        tg_tape *tp = tg_tape_new(0);
        tg_tensor *w = tt_leaf(TG_F64, TG_DIMS(4), "w");
        tg_tensor *h = tg_mul_scalar(tp, w, 1);
        tg_scope_push(tp, "act");
        tg_tensor *y = tg_leaky_relu_(tp, h, 0.1);
        tg_scope_pop(tp);
        tg_tensor *loss = tg_sum(tp, y, 0, NULL, false);
        ck_assert_int_eq(tg_tensor_fill_(through_input ? h : y, 1.0), TG_OK);
        ck_assert_int_eq(tg_backward(tp, loss), TG_ERR_STATE);
        assert_has(tg_tape_error(tp), "tg_backward: tg_leaky_relu_ (record 1, in act) needs its output "
                                      "as it was when recorded, but it was written in place since "
                                      "(version 1 then, 2 now)");
        ck_assert_ptr_null(tg_grad(w));
        tg_tape_free(tp);
        tg_tensor_free(w);
    }
}
END_TEST

/* What may be written in place: a value only add's backward reads (nothing), which then
 * received the pre-activation gradient as add saw it, plus the mask on the rest; a
 * constant; a value whose readers need no gradient; anything in evaluation mode (not
 * recorded). */
START_TEST(test_inplace_act_allowed)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *w = tt_tensor(TG_F64, TG_DIMS(4), (double[]){-2, -0.5, 0.5, 2});
    ck_assert_int_eq(tg_requires_grad(w, "w"), TG_OK);
    tg_tensor *c = tt_tensor(TG_F64, TG_DIMS(4), (double[]){1, 1, 1, 1});
    tg_tensor *h = tg_mul_scalar(tp, w, 1);
    tg_tensor *s = tg_add(tp, h, c); /* add reads neither input */
    tg_tensor *y = tg_relu_(tp, h);
    tg_tensor *loss = tg_add(tp, tg_sum(tp, s, 0, NULL, false), tg_sum(tp, y, 0, NULL, false));
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    tt_assert_close(tg_grad(w), ((double[]){1, 1, 2, 2}), 0); /* 1 from s, the mask from y */
    tt_assert_close(s, ((double[]){-1, 0.5, 1.5, 3}), 0);    /* computed before the write */
    tg_tape_reset(tp);

    tg_tensor *p = tg_mul(tp, c, c); /* constants: its backward never runs */
    ck_assert_ptr_nonnull(tg_leaky_relu_(tp, c, 0.5));
    ck_assert_ptr_nonnull(p);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    tg_tape_reset(tp);

    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *e = tg_mul_scalar(tp, w, -1);
    ck_assert_ptr_nonnull(tg_relu_(tp, e));
    ck_assert_int_eq(tg_tape_size(tp), 0);
    tt_assert_close(e, ((double[]){2, 0.5, 0, 0}), 0);
    tg_tape_free(tp);
    tg_tensor_free(w);
    tg_tensor_free(c);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/inplace");
    TCase *tc = tt_tcase("inplace");
    tcase_add_test(tc, test_overwritten_input_is_refused);
    tcase_add_test(tc, test_every_library_write_is_seen);
    tcase_add_test(tc, test_raw_write_is_not_seen);
    tcase_add_test(tc, test_overwritten_output_is_refused);
    tcase_add_test(tc, test_writes_no_backward_reads_are_allowed);
    tcase_add_test(tc, test_the_tapes_own_writes_are_not_refused);
    tcase_add_test(tc, test_user_op_default_checks_everything);
    tcase_add_test(tc, test_inplace_act_same_bits_as_out_of_place);
    tcase_add_test(tc, test_inplace_act_gradcheck);
    tcase_add_test(tc, test_inplace_act_refused_when_recorded);
    tcase_add_test(tc, test_stale_input_of_inplace_is_refused);
    tcase_add_test(tc, test_write_after_inplace_is_refused_at_backward);
    tcase_add_test(tc, test_inplace_act_allowed);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
