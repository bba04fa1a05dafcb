/* In-place writes between a forward and tg_backward: the tape refuses when a value a
 * backward reads (tg_op.reads) changed version since it was recorded, names the op,
 * its scope, the input and both versions, and touches no gradient; values no backward
 * reads, records the backward does not reach, and the tape's own writes to gradients
 * are not refused. */
#include "check_util.h"

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
    suite_add_tcase(s, tc);
    return tt_run(s);
}
