/* The tape itself: what a record holds, how gradients flow and accumulate, evaluation
 * mode, a deep chain without recursion, a steady-state step without allocation, sticky
 * errors, anomaly mode, user ops, and the table and DOT views of a tape. */
#include "check_util.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

/* dL/d(out) = 1 everywhere, in the tape's arena */
static tg_status backward_ones(tg_tape *tp, tg_tensor *out)
{
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), out->dtype, out->ndim, out->shape);
    ck_assert_ptr_nonnull(ones);
    return tg_backward_from(tp, out, ones);
}

/* What f receives, as one string (malloc'd). */
typedef void (*writer)(const tg_tape *tp, FILE *f);
static char *capture(writer w, const tg_tape *tp)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    w(tp, f);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

static void dot_writer(const tg_tape *tp, FILE *f) { ck_assert_int_eq(tg_tape_write_dot(tp, f), TG_OK); }

#define assert_has(text, needle) \
    ck_assert_msg(strstr((text), (needle)) != NULL, "'%s' not found in:\n%s", (needle), (text))
#define assert_lacks(text, needle) \
    ck_assert_msg(strstr((text), (needle)) == NULL, "'%s' found in:\n%s", (needle), (text))

/* ------------------------------------------------------------------ records */

START_TEST(test_records_ops_scopes_inputs)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_leaf(TG_F64, TG_DIMS(2, 3), "a");
    tg_tensor *b = tt_leaf(TG_F64, TG_DIMS(3), "b");
    tg_tensor *c = tt_rand_tensor(TG_F64, TG_DIMS(2, 3)); /* a constant: not a leaf */
    ck_assert(tg_is_leaf(a) && !tg_is_leaf(c));
    ck_assert_str_eq(tg_leaf_name(b), "b");
    ck_assert_ptr_null(tg_leaf_name(c));
    ck_assert_str_eq(tg_scope_current(tp), "");

    tg_scope_push(tp, "a");
    tg_scope_push(tp, "b");
    ck_assert_str_eq(tg_scope_current(tp), "a/b");
    tg_tensor *r0 = tg_add(tp, a, c);
    tg_scope_pop(tp);
    tg_tensor *r1 = tg_mul(tp, r0, b);
    tg_scope_pop(tp);
    tg_scope_pop(tp); /* past the root: ignored */
    ck_assert_str_eq(tg_scope_current(tp), "");
    tg_tensor *r2 = tg_exp(tp, c);     /* constants only */
    tg_tensor *r3 = tg_add(tp, r2, c); /* a record without grad, and a constant */
    tg_tensor *r4 = tg_mul(tp, r3, r1);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_str_eq(tg_tape_error(tp), "");
    ck_assert_int_eq(tg_tape_size(tp), 5);
    ck_assert_ptr_null(tg_tape_record(tp, 5));
    ck_assert_ptr_null(tg_tape_record(tp, -1));

    static const char *const ops[] = {"add", "mul", "exp", "add", "mul"};
    static const char *const scopes[] = {"a/b", "a", "", "", ""};
    static const int ins[5][2] = {{-1, -1}, {0, -1}, {-1, 0}, {2, -1}, {3, 1}};
    static const int nins[] = {2, 2, 1, 2, 2};
    static const bool req[] = {true, true, false, false, true};
    tg_tensor *outs[] = {r0, r1, r2, r3, r4};
    for (int id = 0; id < 5; id++) {
        const tg_record *r = tg_tape_record(tp, id);
        ck_assert_int_eq(r->id, id);
        ck_assert_str_eq(r->op->name, ops[id]);
        ck_assert_str_eq(r->scope, scopes[id]);
        ck_assert_int_eq(r->nin, nins[id]);
        for (int i = 0; i < r->nin; i++)
            ck_assert_int_eq(r->in_record[i], ins[id][i]);
        ck_assert_ptr_eq(r->out, outs[id]);
        ck_assert_ptr_eq(tg_tape_record_of(tp, outs[id]), r);
        ck_assert_ptr_eq(outs[id]->arena, tg_tape_arena(tp));
        ck_assert_int_eq(r->requires_grad, req[id]);
        ck_assert_ptr_null(r->grad);
    }
    ck_assert_ptr_eq(tg_tape_record(tp, 0)->in[0], a);
    ck_assert_ptr_eq(tg_tape_record(tp, 0)->in[1], c);
    ck_assert_ptr_null(tg_tape_record_of(tp, a)); /* a leaf */
    ck_assert_ptr_null(tg_tape_record_of(tp, c)); /* a constant */
    const tg_record *last = tg_tape_record(tp, 4);
    ck_assert(!tg_needs_grad(tp, last, 0) && tg_needs_grad(tp, last, 1));
    ck_assert(!tg_needs_grad(tp, last, 2) && !tg_needs_grad(tp, last, -1));
    ck_assert(!tg_needs_grad(tp, tg_tape_record(tp, 2), 0));

    /* r4 = (exp(c) + c) * ((a + c) * b): da = (exp(c) + c) * b, db = sum_rows((exp(c) + c) * (a + c)) */
    ck_assert_int_eq(backward_ones(tp, r4), TG_OK);
    ck_assert_ptr_null(tg_tape_record(tp, 2)->grad); /* no gradient needed there */
    ck_assert_ptr_null(tg_tape_record(tp, 3)->grad);
    ck_assert_ptr_nonnull(tg_tape_record(tp, 0)->grad);
    ck_assert_ptr_null(tg_grad(c));
    double *av = tt_values(a), *bv = tt_values(b), *cv = tt_values(c);
    double da[6], db[3] = {0};
    for (int i = 0; i < 6; i++) {
        double e = exp(cv[i]) + cv[i];
        da[i] = e * bv[i % 3];
        db[i % 3] += e * (av[i] + cv[i]);
    }
    tt_assert_close(tg_grad(a), da, 1e-14);
    tt_assert_close(tg_grad(b), db, 1e-14);
    ck_assert(tg_tensor_is_contiguous(tg_grad(a)));
    ck_assert_ptr_null(tg_grad(a)->arena); /* a leaf's grad lives on the heap */
    free(av), free(bv), free(cv);

    tg_scope_push(tp, "left/open");
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_tape_size(tp), 0);
    ck_assert_str_eq(tg_scope_current(tp), "");
    ck_assert_ptr_nonnull(tg_grad(a)); /* leaves keep their grads */
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
    tg_tensor_free(c);
}
END_TEST

START_TEST(test_leaves_and_scope_limits)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *w = tt_leaf(TG_F32, TG_DIMS(3), "w");
    ck_assert_int_eq(backward_ones(tp, tg_exp(tp, w)), TG_OK);
    tg_tensor *g = tg_grad(w);
    ck_assert_ptr_nonnull(g);
    ck_assert_int_eq(tg_requires_grad(w, "renamed"), TG_OK); /* again: a new name, the same grad */
    ck_assert_str_eq(tg_leaf_name(w), "renamed");
    ck_assert_ptr_eq(tg_grad(w), g);
    ck_assert_int_eq(tg_requires_grad(w, NULL), TG_OK);
    ck_assert_str_eq(tg_leaf_name(w), "");

    tg_tensor *in_arena = tg_tensor_zeros(tg_tape_arena(tp), TG_F32, TG_DIMS(2));
    ck_assert_int_eq(tg_requires_grad(in_arena, "p"), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_requires_grad", "'p' lives in an arena");
    tg_tensor *ints = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2));
    ck_assert_int_eq(tg_requires_grad(ints, "labels"), TG_ERR_DTYPE);
    ck_assert_int_eq(tg_requires_grad(NULL, "x"), TG_ERR_ARG);
    ck_assert(!tg_is_leaf(ints) && !tg_is_leaf(NULL));
    ck_assert_ptr_null(tg_grad(ints));
    tg_tensor_free(ints);

    /* 64 levels of scope, not 65 */
    tg_tape_reset(tp);
    for (int i = 0; i < 64; i++)
        tg_scope_push(tp, "s");
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_int_eq((int)strlen(tg_scope_current(tp)), 64 * 2 - 1);
    tg_scope_push(tp, "deeper");
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    ck_assert_int_eq(strncmp(tg_tape_error(tp), "tg_scope_push: scopes nest deeper than 64 (called in s/s/", 57), 0);
    tg_scope_pop(tp);
    ck_assert_int_eq((int)strlen(tg_scope_current(tp)), 63 * 2 - 1);
    tg_tape_reset(tp);
    char name[700];
    memset(name, 'n', sizeof name - 1);
    name[sizeof name - 1] = '\0';
    tg_scope_push(tp, name);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_scope_push(tp, name); /* 1399 bytes */
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    ck_assert_str_eq(tg_scope_current(tp), name); /* the scope before the failing push */
    ck_assert_int_eq(strncmp(tg_tape_error(tp), "tg_scope_push: scope 'nnn", 25), 0);
    tg_tape_free(tp);
    tg_tensor_free(w);
}
END_TEST

START_TEST(test_reuse_accumulates_exactly)
{
    for (int dt = TG_F32; dt <= TG_F64; dt++) {
        tg_tape *tp = tg_tape_new(0);
        tg_tensor *a = tt_leaf((tg_dtype)dt, TG_DIMS(7), "a");
        tg_tensor *b = tg_add(tp, a, a);
        tg_tensor *c = tg_mul(tp, b, b); /* c = 4 a^2, dc/da = 8 a */
        ck_assert_int_eq(backward_ones(tp, c), TG_OK);
        double *av = tt_values(a), *gv = tt_values(tg_grad(a));
        for (int i = 0; i < 7; i++)
            ck_assert_double_eq(gv[i], 8 * av[i]);
        /* b's gradient is the sum of both uses in c: 2b */
        double *bg = tt_values(tg_tape_record(tp, 0)->grad);
        for (int i = 0; i < 7; i++)
            ck_assert_double_eq(bg[i], 4 * av[i]);
        free(av), free(gv), free(bg);
        tg_tape_free(tp);
        tg_tensor_free(a);
    }
}
END_TEST

START_TEST(test_grads_accumulate_until_zero_grad)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *w = tt_leaf(TG_F64, TG_DIMS(2, 3), "w");
    double *wv = tt_values(w), twice[6], four[6], zero[6] = {0};
    for (int i = 0; i < 6; i++)
        twice[i] = 2 * wv[i], four[i] = 4 * wv[i];
    ck_assert_ptr_null(tg_grad(w));
    tg_zero_grad(w); /* no grad yet: nothing to do */
    ck_assert_ptr_null(tg_grad(w));

    tg_tensor *loss = tg_sum(tp, tg_mul(tp, w, w), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tt_assert_close(tg_grad(w), twice, 0);
    tg_tensor *g = tg_grad(w);
    /* a second backward on the same tape (allowed): intermediate gradients start
     * afresh, the leaf's accumulates */
    tg_tape_set_retain_graph(tp, true);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tt_assert_close(tg_grad(w), four, 0);
    tt_assert_close(tg_tape_record(tp, 0)->grad, ((double[]){1, 1, 1, 1, 1, 1}), 0);
    ck_assert_ptr_eq(tg_grad(w), g); /* the same tensor, added into */

    /* the next step, on a reset tape: still accumulating */
    tg_tape_reset(tp);
    loss = tg_sum(tp, tg_mul(tp, w, w), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    double six[6];
    for (int i = 0; i < 6; i++)
        six[i] = 6 * wv[i];
    tt_assert_close(tg_grad(w), six, 1e-15);

    tg_zero_grad(w);
    tt_assert_close(tg_grad(w), zero, 0);
    ck_assert_ptr_eq(tg_grad(w), g);
    tg_tape_reset(tp);
    loss = tg_sum(tp, tg_mul(tp, w, w), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    tt_assert_close(tg_grad(w), twice, 0);
    free(wv);
    tg_tape_free(tp);
    tg_tensor_free(w);
}
END_TEST

START_TEST(test_backward_from_output_gradient)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2, 3), "x");
    tg_tensor *y = tg_mul_scalar(tp, tg_add_scalar(tp, x, 5), 3);
    double gv[6] = {1, -2, 0.5, 4, 0, -1}, want[6];
    for (int i = 0; i < 6; i++)
        want[i] = 3 * gv[i];
    tg_tensor *gout = tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(2, 3), gv);
    tg_tape_set_retain_graph(tp, true); /* walked twice below */
    ck_assert_int_eq(tg_backward_from(tp, y, gout), TG_OK);
    tt_assert_close(tg_grad(x), want, 0);
    tt_assert_close(tg_tape_record(tp, 1)->grad, gv, 0); /* the seed, copied */
    /* the gradient also arrives when the output gradient is a non-contiguous view */
    tg_zero_grad(x);
    tg_tensor *gt = tg_tensor_transpose(tg_tape_arena(tp),
                                        tg_tensor_from_data(tg_tape_arena(tp), TG_F64, TG_DIMS(3, 2),
                                                            (double[]){1, 4, -2, 0, 0.5, -1}),
                                        0, 1);
    ck_assert_int_eq(tg_backward_from(tp, y, gt), TG_OK);
    tt_assert_close(tg_grad(x), want, 0);

    /* an output gradient of the wrong shape, a non-scalar loss */
    tg_tensor *bad = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(3, 2));
    ck_assert_int_eq(tg_backward_from(tp, y, bad), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_backward",
                   "the output gradient is [3,2], the output f64 [2,3]", "");
    tg_tape_reset(tp);
    y = tg_mul_scalar(tp, x, 3);
    ck_assert_int_eq(tg_backward(tp, y), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_backward",
                   "the loss must have one element, not shape [2,3]", "");
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_backward_from(tp, x, x), TG_ERR_ARG); /* a leaf was not recorded */
    tt_expect_tape(tp, TG_ERR_ARG, "tg_backward", "the output is a leaf", "");
    tg_tape_reset(tp);
    tg_tensor *k = tg_sum(tp, tg_exp(tp, tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(2))), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, k), TG_ERR_ARG);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_backward", "nothing that 'sum'", "");
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_no_grad_mode_records_nothing)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_leaf(TG_F64, TG_DIMS(4), "a");
    ck_assert(tg_tape_grad_enabled(tp));
    ck_assert(tg_tape_set_grad_enabled(tp, false) == true);
    ck_assert(!tg_tape_grad_enabled(tp));
    tg_tensor *y = tg_add(tp, tg_mul(tp, a, a), a);
    ck_assert_ptr_nonnull(y);
    ck_assert_int_eq(tg_tape_size(tp), 0);
    ck_assert_ptr_eq(y->arena, tg_tape_arena(tp));
    ck_assert_ptr_null(tg_tape_record_of(tp, y));
    double *av = tt_values(a), want[4];
    for (int i = 0; i < 4; i++)
        want[i] = av[i] * av[i] + av[i];
    tt_assert_close(y, want, 1e-15);
    ck_assert(tg_tape_set_grad_enabled(tp, true) == false);

    /* its result is a constant on the tape */
    tg_tensor *z = tg_mul(tp, y, a);
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert_int_eq(tg_tape_record(tp, 0)->in_record[0], -1);
    ck_assert_int_eq(backward_ones(tp, z), TG_OK);
    tt_assert_close(tg_grad(a), want, 1e-15); /* d(y*a)/da with y constant: y */
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    y = tg_exp(tp, a);
    tg_tape_set_grad_enabled(tp, true);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, y, 0, NULL, false)), TG_ERR_ARG);
    tg_tape_reset(tp);
    tg_tape_set_grad_enabled(tp, false);
    y = tg_sum(tp, a, 0, NULL, false);
    tg_tape_set_grad_enabled(tp, true);
    ck_assert_int_eq(tg_backward(tp, y), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "made with gradients disabled"));
    free(av);
    tg_tape_free(tp);
    tg_tensor_free(a);
}
END_TEST

/* ------------------------------------------------------------------ a deep chain */

#define CHAIN 10000

typedef struct chain_result {
    tg_status st;
    int size;
    double grad0, grad_last;
} chain_result;

/* 10,000 records x -> x * 1.0001 -> ...; dy/dx = 1.0001^10000 */
static void *run_chain(void *arg)
{
    chain_result *res = arg;
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tg_tensor_full(NULL, TG_F64, TG_DIMS(3), 0.5);
    tg_requires_grad(x, "x");
    tg_tensor *y = x;
    for (int i = 0; i < CHAIN; i++)
        y = tg_mul_scalar(tp, y, 1.0001);
    tg_tensor *ones = tg_tensor_ones(tg_tape_arena(tp), TG_F64, TG_DIMS(3));
    res->st = tg_backward_from(tp, y, ones);
    res->size = tg_tape_size(tp);
    res->grad0 = tg_grad(x) ? tg_tensor_get(tg_grad(x), (int64_t[]){0}) : NAN;
    res->grad_last = tg_grad(x) ? tg_tensor_get(tg_grad(x), (int64_t[]){2}) : NAN;
    tg_tape_free(tp);
    tg_tensor_free(x);
    return NULL;
}

static void check_chain(const chain_result *res)
{
    ck_assert_int_eq(res->st, TG_OK);
    ck_assert_int_eq(res->size, CHAIN);
    double want = pow(1.0001, CHAIN);
    ck_assert_double_eq_tol(res->grad0, want, 1e-9 * want);
    ck_assert_double_eq_tol(res->grad_last, want, 1e-9 * want);
}

START_TEST(test_deep_chain_without_recursion)
{
    chain_result res;
    run_chain(&res);
    check_chain(&res);
}
END_TEST

START_TEST(test_deep_chain_on_a_small_stack)
{
    /* 64 KiB of stack: a recursive backward would need far more for 10,000 records */
    pthread_attr_t attr;
    pthread_t th;
    chain_result res = {TG_ERR_STATE, 0, NAN, NAN};
    ck_assert_int_eq(pthread_attr_init(&attr), 0);
    ck_assert_int_eq(pthread_attr_setstacksize(&attr, 64 * 1024), 0);
    ck_assert_int_eq(pthread_create(&th, &attr, run_chain, &res), 0);
    ck_assert_int_eq(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    check_chain(&res);
}
END_TEST

/* ------------------------------------------------------------------ steady state */

/* a training-like step: forward on leaves, backward, SGD, zero_grad, reset */
static void train_step(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b)
{
    tg_scope_push(tp, "fc");
    tg_tensor *h = tg_relu(tp, tg_add(tp, tg_matmul(tp, x, w), b));
    tg_scope_pop(tp);
    tg_tensor *loss = tg_mean(tp, tg_mul(tp, h, h), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    ck_assert_int_eq(tg_tensor_axpy_(w, -0.1, tg_grad(w)), TG_OK);
    ck_assert_int_eq(tg_tensor_axpy_(b, -0.1, tg_grad(b)), TG_OK);
    tg_zero_grad(w);
    tg_zero_grad(b);
    tg_tape_reset(tp);
}

START_TEST(test_steady_state_step_allocates_nothing)
{
    tt_count_allocations();
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(8, 5));
    tg_tensor *w = tt_leaf(TG_F32, TG_DIMS(5, 4), "fc/weight");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(4), "fc/bias");
    train_step(tp, x, w, b);
    train_step(tp, x, w, b);
    int64_t before = tt_n_alloc;
    train_step(tp, x, w, b);
    ck_assert_int_eq(tt_n_alloc, before); /* the third step took nothing */
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
    tg_set_allocator(NULL);
}
END_TEST

/* the same with large tensors (blocks the tape gives back during backward) */
START_TEST(test_steady_state_without_kept_grads_allocates_nothing)
{
    tt_count_allocations();
    tg_tape *tp = tg_tape_new(0);
    tg_tape_set_keep_grads(tp, false);
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(512, 300));
    tg_tensor *w = tt_leaf(TG_F32, TG_DIMS(300, 400), "fc/weight");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(400), "fc/bias");
    train_step(tp, x, w, b);
    train_step(tp, x, w, b);
    int64_t before = tt_n_alloc;
    train_step(tp, x, w, b);
    ck_assert_int_eq(tt_n_alloc, before);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
    tg_set_allocator(NULL);
}
END_TEST

/* ------------------------------------------------------------------ gradient memory */

/* out = a + b; its backward hands ONE fresh tensor to both inputs, which the tape must
 * not adopt twice (a later contribution to one input would leak into the other) */
static tg_tensor *dup_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_add(tg_tape_arena(tp), r->in[0], r->in[1]);
}

static tg_status dup_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    tg_tensor *t = tg_tensor_affine(tg_tape_arena(tp), g, 1, 0);
    tg_status st = tg_accumulate_grad(tp, r, 0, t);
    return st != TG_OK ? st : tg_accumulate_grad(tp, r, 1, t);
}

static const tg_op op_dup = {"dup", dup_forward, dup_backward, TG_READS_NONE};

/* loss = sum(dup(p, q)) + sum(3p), p = q = exp(x): dL/dx = (1 + 3) e^x + e^x = 5 e^x.
 * x is large enough (512 KiB) for its gradients to be large arena blocks. */
static tg_tensor *shared_gradient_graph(tg_tape *tp, tg_tensor *x)
{
    tg_tensor *q = tg_exp(tp, x), *p = tg_exp(tp, x);
    tg_tensor *e = tg_mul_scalar(tp, p, 3);
    tg_tensor *d = tg_apply(tp, &op_dup, 2, (tg_tensor *[]){p, q}, NULL, 0);
    return tg_add(tp, tg_sum(tp, d, 0, NULL, false), tg_sum(tp, e, 0, NULL, false));
}

static void assert_five_exp(const tg_tensor *x)
{
    const float *xv = tg_tensor_data(x), *gv = tg_tensor_data(tg_grad(x));
    for (int64_t i = 0; i < tg_tensor_numel(x); i++)
        ck_assert_float_eq_tol(gv[i], 5 * expf(xv[i]), 1e-5f * 5 * expf(xv[i]));
}

START_TEST(test_gradients_given_back_when_not_kept)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F32, TG_DIMS(256, 512), "x");

    ck_assert_int_eq(tg_backward(tp, shared_gradient_graph(tp, x)), TG_OK);
    assert_five_exp(x);
    ck_assert_ptr_nonnull(tg_tape_record(tp, 0)->grad); /* kept by default */
    size_t kept_peak = tg_arena_peak(tg_tape_arena(tp));
    tg_tensor *kept = tg_tensor_clone(NULL, tg_grad(x));

    tg_tape_free(tp);
    tp = tg_tape_new(0);
    ck_assert(tg_tape_set_keep_grads(tp, false)); /* returns the old setting */
    tg_zero_grad(x);
    ck_assert_int_eq(tg_backward(tp, shared_gradient_graph(tp, x)), TG_OK);
    assert_five_exp(x);
    ck_assert_mem_eq(tg_tensor_data(kept), tg_tensor_data(tg_grad(x)), 256 * 512 * sizeof(float));
    for (int id = 0; id < tg_tape_size(tp); id++)
        ck_assert_ptr_null(tg_tape_record(tp, id)->grad);
    /* forward values 4 blocks of 512 KiB; kept, the peak holds the gradients of d, p, q
     * and e and 3e's scratch (9 blocks); given back, d's is gone before e's is made (8) */
    ck_assert_uint_le(tg_arena_peak(tg_tape_arena(tp)) + 256 * 512 * sizeof(float), kept_peak);
    tg_tensor_free(kept);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

START_TEST(test_profile_times_records)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F32, TG_DIMS(256, 512), "x");
    tg_tensor *y = shared_gradient_graph(tp, x);
    ck_assert_double_eq(tg_tape_record(tp, 0)->forward_s, 0); /* off by default */
    tg_tape_reset(tp);
    tg_tape_set_profile(tp, true);
    y = shared_gradient_graph(tp, x);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    double fwd = 0, bwd = 0;
    for (int id = 0; id < tg_tape_size(tp); id++) {
        ck_assert_double_ge(tg_tape_record(tp, id)->forward_s, 0);
        fwd += tg_tape_record(tp, id)->forward_s;
        bwd += tg_tape_record(tp, id)->backward_s;
    }
    ck_assert_double_gt(fwd, 0); /* exp of 131,072 floats takes more than a nanosecond */
    ck_assert_double_gt(bwd, 0);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_sticky_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_leaf(TG_F32, TG_DIMS(2, 3), "a");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(4), "b");
    tg_tensor *ok = tg_exp(tp, a);
    tg_scope_push(tp, "block_0");
    tg_tensor *bad = tg_add(tp, a, b);
    const char *msg = "tg_add: shapes [2,3] and [4] cannot be broadcast (called in block_0)";
    ck_assert_ptr_nonnull(bad); /* a placeholder, safe to read and pass on */
    ck_assert_int_eq(bad->ndim, 0);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_tape_error(tp), msg);
    ck_assert_str_eq(tg_last_error(), msg);
    ck_assert_int_eq(tg_tape_size(tp), 1);

    /* later calls do nothing and say nothing new */
    tg_clear_error();
    tg_tensor *c = tg_mul(tp, tg_relu(tp, bad), ok);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(c->ndim, 0);
    tg_tensor *d = tg_matmul(tp, a, a); /* would fail on its own */
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(tg_last_status(), TG_OK);
    ck_assert_str_eq(tg_last_error(), "");
    ck_assert_int_eq(tg_tape_size(tp), 1);
    ck_assert_str_eq(tg_tape_error(tp), msg);
    ck_assert_int_eq(tg_tape_fail(tp, TG_ERR_IO, "something else"), TG_ERR_SHAPE); /* the first stays */
    ck_assert_str_eq(tg_tape_error(tp), msg);
    ck_assert_ptr_eq(tg_tape_fail_tensor(tp, TG_ERR_IO, "nor this"), bad); /* the placeholder */
    ck_assert_str_eq(tg_tape_error(tp), msg);

    /* backward refuses with the same status */
    ck_assert_int_eq(tg_backward(tp, c), TG_ERR_SHAPE);
    ck_assert_int_eq(tg_backward_from(tp, ok, ok), TG_ERR_SHAPE);
    ck_assert_ptr_null(tg_grad(a));
    ck_assert_str_eq(tg_tape_error(tp), msg);

    /* reset clears it, and the tape works again */
    tg_tape_reset(tp);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_str_eq(tg_tape_error(tp), "");
    tg_tensor *s = tg_sum(tp, tg_exp(tp, a), 0, NULL, false);
    ck_assert_int_eq(s->ndim, 0);
    ck_assert_int_eq(tg_backward(tp, s), TG_OK);
    ck_assert_ptr_nonnull(tg_grad(a));

    /* a NULL input, a user's failure, the root scope (no "called in") */
    tg_tape_reset(tp);
    ck_assert_ptr_nonnull(tg_add(tp, NULL, a));
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_ARG);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_add", "input 0 is NULL", "");
    tg_tape_reset(tp);
    tg_scope_push(tp, "net");
    tg_scope_push(tp, "head");
    ck_assert_int_eq(tg_tape_fail(tp, TG_ERR_FORMAT, "mine: %d bad", 3), TG_ERR_FORMAT);
    ck_assert_str_eq(tg_tape_error(tp), "mine: 3 bad (called in net/head)");
    ck_assert_int_eq(tg_backward(tp, s), TG_ERR_FORMAT);
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

/* fails with the error of the kernel it calls (a product of [2,3] by itself) */
static tg_tensor *kernel_fails_forward(tg_tape *tp, tg_record *r)
{
    return tg_tensor_matmul(tg_tape_arena(tp), r->in[0], r->in[0]);
}
static const tg_op op_kernel_fails = {"kernel_fails", kernel_fails_forward, NULL, TG_READS_NONE};

/* fails with a message of its own, as user code writes one (tg_set_error) */
static tg_tensor *says_why_forward(tg_tape *tp, tg_record *r)
{
    (void)tp;
    (void)r;
    tg_set_error(TG_ERR_ARG, "k must be positive, got %d", -1);
    return NULL;
}
static const tg_op op_says_why = {"says_why", says_why_forward, NULL, TG_READS_NONE};

/* The sticky error by its fields: a kernel's detail, the op the user called as the
 * function, the tape's scope; the first one stays; reset clears every field. */
START_TEST(test_errors_by_field)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tt_leaf(TG_F32, TG_DIMS(2, 3), "a");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(4, 5), "b");
    ck_assert_int_eq(tg_tape_error_info(tp)->status, TG_OK);
    ck_assert_str_eq(tg_tape_error_info(tp)->function, "");

    tg_scope_push(tp, "block_0");
    tg_scope_push(tp, "conv_0");
    ck_assert_ptr_eq(tg_matmul(tp, a, b), tg_tape_placeholder(tp));
    const tg_error *e = tg_tape_error_info(tp);
    ck_assert_int_eq(e->status, TG_ERR_SHAPE);
    ck_assert_str_eq(e->function, "tg_matmul");           /* not the kernel, tg_tensor_matmul */
    ck_assert_str_eq(e->detail, "[2,3] x [4,5]: inner dimensions 3 and 4 differ"); /* the kernel's */
    ck_assert_str_eq(e->scope, "block_0/conv_0");
    ck_assert_str_eq(tg_tape_error(tp), "tg_matmul: [2,3] x [4,5]: inner dimensions 3 and 4 differ "
                                        "(called in block_0/conv_0)");
    /* the thread's last error is the same value */
    tt_check_error(tg_last_error_info(), TG_ERR_SHAPE, "tg_matmul", "inner dimensions 3 and 4",
                   "block_0/conv_0");
    ck_assert_str_eq(tg_last_error(), tg_tape_error(tp));

    /* the first error sticks: later failures of ops or layers change no field */
    tg_scope_pop(tp);
    ck_assert_ptr_eq(tg_add(tp, a, b), tg_tape_placeholder(tp));
    ck_assert_int_eq(tg_tape_fail_in(tp, TG_ERR_IO, "my_layer", "later"), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_matmul", "inner dimensions 3 and 4", "block_0/conv_0");
    tg_tape_reset(tp);
    e = tg_tape_error_info(tp);
    ck_assert_int_eq(e->status, TG_OK);
    ck_assert(!*e->function && !*e->detail && !*e->scope);
    ck_assert_str_eq(tg_tape_error(tp), "");

    /* an op's forward failing with a kernel's error, or with a message of its own: the
     * op's name is the function either way, and the detail is left as it was said */
    tg_scope_push(tp, "mine");
    tg_apply(tp, &op_kernel_fails, 1, &a, NULL, 0);
    tt_expect_tape(tp, TG_ERR_SHAPE, "tg_kernel_fails", "[2,3] x [2,3]: inner dimensions 3 and 2", "mine");
    tg_tape_reset(tp);
    tg_apply(tp, &op_says_why, 1, &a, NULL, 0);
    tt_expect_tape(tp, TG_ERR_ARG, "tg_says_why", "k must be positive, got -1", "");
    ck_assert_str_eq(tg_tape_error(tp), "tg_says_why: k must be positive, got -1");

    /* a layer names itself (tg_tape_fail_in); tg_tape_fail names no function */
    tg_tape_reset(tp);
    tg_scope_push(tp, "fc");
    ck_assert_int_eq(tg_tape_fail_in(tp, TG_ERR_SHAPE, "my_linear", "'%s' takes [N,%d]", "fc", 5), TG_ERR_SHAPE);
    tt_expect_tape(tp, TG_ERR_SHAPE, "my_linear", "'fc' takes [N,5]", "fc");
    ck_assert_str_eq(tg_tape_error(tp), "my_linear: 'fc' takes [N,5] (called in fc)");
    tg_tape_reset(tp);
    tg_tape_fail(tp, TG_ERR_FORMAT, "mine: bad");
    tt_expect_tape(tp, TG_ERR_FORMAT, "", "mine: bad", "");

    /* the placeholder: a 0-d tensor the tape owns, what every call on a failed tape returns */
    tg_tensor *ph = tg_tape_placeholder(tp);
    ck_assert_ptr_nonnull(ph);
    ck_assert_int_eq(ph->ndim, 0);
    ck_assert_ptr_eq(tg_exp(tp, ph), ph);
    ck_assert_ptr_eq(tg_tape_fail_tensor(tp, TG_ERR_IO, "ignored"), ph);
    tg_tape_reset(tp);
    ph = tg_tape_placeholder(tp);
    ck_assert_ptr_eq(tg_tape_fail_tensor_in(tp, TG_ERR_SHAPE, "my_conv", "'%s' is too small", "c1"), ph);
    tt_expect_tape(tp, TG_ERR_SHAPE, "my_conv", "'c1' is too small", "");
    ck_assert_ptr_null(tg_tape_placeholder(NULL));
    ck_assert_int_eq(tg_tape_error_info(NULL)->status, TG_ERR_ARG);
    tg_tape_free(tp);
    tg_tensor_free(a);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_abort_on_error)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *a = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3));
    tg_tensor *b = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4));
    setenv("TG_ABORT_ON_ERROR", "1", 1);
    tg_add(tp, a, b); /* aborts here */
}
END_TEST

START_TEST(test_check_finite_names_the_record)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(3), (double[]){1, 0, 2});
    tg_requires_grad(x, "x");
    /* without anomaly mode: backward completes, the gradient holds an Inf */
    tg_scope_push(tp, "head");
    tg_tensor *y = tg_mul_scalar(tp, tg_log(tp, x), 2); /* log 0 = -inf; its backward 2/0 = inf */
    tg_scope_pop(tp);
    ck_assert_int_eq(backward_ones(tp, y), TG_OK);
    tg_grad_stats s = tg_tensor_stats(tg_grad(x));
    ck_assert_int_eq(s.count, 3);
    ck_assert_int_eq(s.nonfinite, 1);
    ck_assert_double_eq_tol(s.mean_abs, 1.5, 1e-15); /* (2 + 1) / 2 finite values */
    ck_assert_double_eq_tol(s.max_abs, 2, 1e-15);
    tg_grad_stats ys = tg_record_grad_stats(tg_tape_record(tp, 1));
    ck_assert_int_eq(ys.count, 3);
    ck_assert_int_eq(ys.nonfinite, 0);
    tg_zero_grad(x);

    /* with it: the record that produced the first NaN/Inf gradient is named */
    tg_tape_set_check_finite(tp, true);
    tg_tape_set_retain_graph(tp, true);
    ck_assert_int_eq(backward_ones(tp, y), TG_ERR_STATE);
    tt_expect_tape(tp, TG_ERR_STATE, "tg_backward", "the gradient that record 0", "");
    s = tg_tensor_stats(tg_grad(x));
    ck_assert_int_eq(s.nonfinite, 0); /* stopped before adding it in */

    /* finite gradients pass */
    tg_tape_reset(tp);
    tg_tensor *z = tg_mul_scalar(tp, tg_exp(tp, x), 2);
    ck_assert_int_eq(backward_ones(tp, z), TG_OK);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ user ops */

static tg_tensor *leaked;

static tg_tensor *heap_forward(tg_tape *tp, tg_record *r)
{
    (void)tp;
    return leaked = tg_tensor_clone(NULL, r->in[0]); /* wrong: not from the tape's arena */
}

static const tg_op op_heap = {"heapy", heap_forward, NULL, 0};

typedef struct twice_params {
    double k;
} twice_params;

/* out = k * x; dx = k * g */
static tg_tensor *scale_forward(tg_tape *tp, tg_record *r)
{
    const twice_params *p = r->params;
    return tg_tensor_affine(tg_tape_arena(tp), r->in[0], p->k, 0);
}

static tg_status scale_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    const twice_params *p = r->params;
    return tg_accumulate_grad(tp, r, 0, tg_tensor_affine(tg_tape_arena(tp), g, p->k, 0));
}

static const tg_op op_scale = {"scale", scale_forward, scale_backward, TG_READS_NONE};
static const tg_op op_frozen = {"frozen", scale_forward, NULL, 0}; /* not differentiable */

/* passes its input through unchanged */
static tg_tensor *identity_forward(tg_tape *tp, tg_record *r)
{
    (void)tp;
    return r->in[0];
}

static tg_status identity_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, g);
}

static const tg_op op_identity = {"identity", identity_forward, identity_backward, TG_READS_NONE};

/* hands back a gradient of the wrong shape */
static tg_status wrong_backward(tg_tape *tp, const tg_record *r, const tg_tensor *g)
{
    return tg_accumulate_grad(tp, r, 0, tg_tensor_sum(tg_tape_arena(tp), g, 0, NULL, false));
}

static const tg_op op_wrong = {"wrong", scale_forward, wrong_backward, TG_READS_NONE};

START_TEST(test_user_ops)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(2, 2), "x");
    double *xv = tt_values(x);

    /* params are copied: changing the caller's struct afterwards changes nothing */
    twice_params p = {3};
    tg_tensor *y = tg_apply(tp, &op_scale, 1, &x, &p, sizeof p);
    p.k = 100;
    ck_assert_double_eq(((const twice_params *)tg_tape_record(tp, 0)->params)->k, 3);
    ck_assert_int_eq(backward_ones(tp, y), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){3, 3, 3, 3}), 0);

    /* an op without backward stops the gradient there, without an error */
    tg_tape_reset(tp);
    tg_zero_grad(x);
    tg_tensor *f = tg_apply(tp, &op_frozen, 1, &x, &p, sizeof p);
    tg_tensor *out = tg_add(tp, f, x);
    ck_assert_int_eq(backward_ones(tp, out), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){1, 1, 1, 1}), 0);

    /* an op passing an arena tensor through gets its own output header and record */
    tg_tape_reset(tp);
    tg_zero_grad(x);
    tg_tensor *e = tg_exp(tp, x);
    tg_tensor *id = tg_apply(tp, &op_identity, 1, &e, NULL, 0);
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_ptr_ne(id, e);
    ck_assert_ptr_eq(tg_tape_record_of(tp, e), tg_tape_record(tp, 0));
    ck_assert_ptr_eq(tg_tape_record_of(tp, id), tg_tape_record(tp, 1));
    ck_assert_int_eq(backward_ones(tp, id), TG_OK);
    double ex[4];
    for (int i = 0; i < 4; i++)
        ex[i] = exp(xv[i]);
    tt_assert_close(tg_grad(x), ex, 1e-15);

    /* ... and so does a heap leaf, or a non-contiguous view, passed through */
    tg_tape_reset(tp);
    tg_zero_grad(x);
    tg_tensor *xt = tg_transpose(tp, x, 0, 1);
    tg_tensor *ids[] = {tg_apply(tp, &op_identity, 1, &x, NULL, 0), tg_apply(tp, &op_identity, 1, &xt, NULL, 0)};
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    ck_assert_ptr_ne(ids[0], x);
    ck_assert_ptr_eq(ids[0]->arena, tg_tape_arena(tp));
    ck_assert_ptr_eq(tg_tape_record_of(tp, xt), tg_tape_record(tp, 0));
    ck_assert_int_eq(tg_tape_record(tp, 1)->in_record[0], -1);
    ck_assert_int_eq(tg_tape_record(tp, 2)->in_record[0], 0);
    tg_tensor *sum = tg_add(tp, ids[0], tg_mul_scalar(tp, tg_transpose(tp, ids[1], 0, 1), 2));
    ck_assert_int_eq(backward_ones(tp, sum), TG_OK);
    tt_assert_close(tg_grad(x), ((double[]){3, 3, 3, 3}), 0);
    ck_assert(tg_is_leaf(x) && !tg_is_leaf(ids[0]));

    /* a backward that hands back the wrong shape is caught, naming the op */
    tg_tape_reset(tp);
    y = tg_apply(tp, &op_wrong, 1, &x, &(twice_params){2}, sizeof(twice_params));
    ck_assert_int_eq(backward_ones(tp, y), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_tape_error(tp), "tg_wrong backward: the gradient for input 0 is f64 [], but the "
                                        "input is f64 [2,2]");

    /* a forward returning a heap tensor is rejected */
    tg_tape_reset(tp);
    tg_scope_push(tp, "mine");
    tg_tensor *h = tg_apply(tp, &op_heap, 1, &x, NULL, 0);
    ck_assert_ptr_nonnull(h);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_STATE);
    tt_expect_tape(tp, TG_ERR_STATE, "tg_heapy",
                   "forward returned a tensor that is not from tg_tape_arena(tp)", "mine");
    ck_assert_int_eq(tg_tape_size(tp), 0);
    tg_tensor_free(leaked);
    free(xv);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

/* ------------------------------------------------------------------ print and DOT */

static void print_writer(const tg_tape *tp, FILE *f) { tg_tape_print(tp, f); }

/* loss = sum(relu(x @ w + b) * 2) in scopes "net/fc" and "head" */
static tg_tensor *small_net(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b)
{
    tg_scope_push(tp, "net");
    tg_scope_push(tp, "fc");
    tg_tensor *h = tg_add(tp, tg_matmul(tp, x, w), b);
    tg_scope_pop(tp);
    tg_scope_pop(tp);
    tg_scope_push(tp, "head");
    tg_tensor *loss = tg_sum(tp, tg_mul_scalar(tp, h, 2), 0, NULL, false);
    tg_scope_pop(tp);
    return loss;
}

static int count_lines(const char *t)
{
    int lines = 0;
    for (const char *p = t; *p; p++)
        lines += *p == '\n';
    return lines;
}

START_TEST(test_print_before_and_after_backward)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(4, 3));
    tg_tensor *w = tt_leaf(TG_F32, TG_DIMS(3, 2), "fc/weight");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(2), "fc/bias");
    tg_tensor *loss = small_net(tp, x, w, b);
    char *before = capture(print_writer, tp);
    assert_has(before, "tape: 4 records, no gradients yet (before backward)");
    assert_has(before, "#0  matmul");
    assert_has(before, "const, leaf:fc/weight");
    assert_has(before, "#0, leaf:fc/bias");
    assert_has(before, "net/fc");
    assert_has(before, "head");
    assert_has(before, "[4,2] f32");
    assert_has(before, "[] f32");
    assert_has(before, "mean|g|");
    assert_has(before, "leaves: 2\n");
    assert_has(before, "\n  fc/bias    [2] f32 ");
    assert_lacks(before, "e+00"); /* no statistics yet */
    assert_lacks(before, "e-0");
    /* each line a record: the header, 4 records, the leaves' title and header and 2 leaves */
    ck_assert_int_eq(count_lines(before), 1 + 1 + 4 + 2 + 2);

    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    char *after = capture(print_writer, tp);
    assert_has(after, "gradients dL/d(out) after backward");
    /* dloss/d(mul_scalar) = 1, d/dh = 2, db = sum over 4 rows of 2 = 8 */
    const char *line = strstr(after, "#2  mul_scalar");
    ck_assert_ptr_nonnull(line);
    assert_has(line, "1.000e+00  1.000e+00  1.000e+00   0.0%      0\n");
    line = strstr(after, "\n  fc/bias");
    ck_assert_ptr_nonnull(line);
    assert_has(line, "8.000e+00  8.000e+00  8.000e+00   0.0%      0\n");
    /* the columns of statistics line up: every "e+00" of the records at one column */
    const char *h = strstr(after, "mean|g|"), *l0 = strstr(after, "\n #0");
    const char *l3 = strstr(after, "\n #3");
    ck_assert_ptr_nonnull(l0);
    ck_assert_ptr_nonnull(l3);
    const char *hstart = h;
    while (hstart > after && hstart[-1] != '\n')
        hstart--;
    ck_assert_int_eq(strchr(l0 + 1, '\n') - (l0 + 1), strchr(l3 + 1, '\n') - (l3 + 1));
    ck_assert_int_eq(strchr(hstart, '\n') - hstart, strchr(l0 + 1, '\n') - (l0 + 1));
    free(before);
    free(after);

    /* a tape in error says so */
    tg_matmul(tp, x, x);
    char *err = capture(print_writer, tp);
    assert_has(err, "tape in error (");
    assert_has(err, "tg_matmul: ");
    free(err);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

START_TEST(test_print_zero_and_unreached)
{
    /* a record the backward never reached shows '-', a zero gradient 100% zeros */
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_leaf(TG_F64, TG_DIMS(3), "x");
    tg_tensor *side = tg_exp(tp, x); /* not on the loss's path */
    (void)side;
    tg_tensor *loss = tg_sum(tp, tg_mul_scalar(tp, x, 0), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    char *t = capture(print_writer, tp);
    const char *l0 = strstr(t, "#0  exp");
    ck_assert_ptr_nonnull(l0);
    ck_assert_int_eq(strncmp(strchr(l0, '\n') - 5, "    -", 5), 0);
    const char *lx = strstr(t, "\n  x ");
    ck_assert_ptr_nonnull(lx);
    assert_has(lx, "0.000e+00  0.000e+00  0.000e+00 100.0%      0\n");
    free(t);

    /* a long list of inputs is cut to its column */
    tg_tensor *many[20];
    for (int i = 0; i < 20; i++)
        many[i] = x;
    tg_concat(tp, 20, many, 0);
    t = capture(print_writer, tp);
    assert_has(t, "  leaf:x, leaf:x, leaf:x, leaf:x, leaf:x, leaf:...  ");
    assert_has(t, "leaves: 1\n");
    free(t);
    tg_tape_free(tp);
    tg_tensor_free(x);
}
END_TEST

static bool have_dot(void) { return access("/usr/bin/dot", X_OK) == 0 || system("command -v dot >/dev/null 2>&1") == 0; }

/* Renders text with `dot -Tsvg`; true on success. */
static bool dot_renders(const char *text)
{
    char path[] = "/tmp/tg_test_tape_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fputs(text, f);
    fclose(f);
    char cmd[256];
    snprintf(cmd, sizeof cmd, "dot -Tsvg '%s' -o /dev/null", path);
    int rc = system(cmd);
    remove(path);
    return rc == 0;
}

/* tg_tape_print_with on a 3-layer net in scopes "l1", "l1/act", "l2", "l10": a scope
 * takes itself and what is below it (not "l10" for "l1"), a range takes its ids, and
 * the summary is one line a scope with its last record's gradient. */
static tg_print_options print_opts;
static void print_with_writer(const tg_tape *tp, FILE *f) { tg_tape_print_with(tp, f, &print_opts); }


START_TEST(test_print_filtered_and_summary)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 3));
    tg_tensor *w1 = tt_leaf(TG_F64, TG_DIMS(3, 3), "l1/weight");
    tg_tensor *w2 = tt_leaf(TG_F64, TG_DIMS(3, 3), "l2/weight");
    tg_tensor *w10 = tt_leaf(TG_F64, TG_DIMS(3, 3), "l10/weight");
    tg_scope_push(tp, "l1");
    tg_tensor *h = tg_matmul(tp, x, w1);      /* #0 l1 */
    tg_scope_push(tp, "act");
    h = tg_tanh(tp, h);                       /* #1 l1/act */
    tg_scope_pop(tp);
    tg_scope_pop(tp);
    tg_scope_push(tp, "l2");
    h = tg_matmul(tp, h, w2);                 /* #2 l2 */
    h = tg_tanh(tp, h);                       /* #3 l2 */
    tg_scope_pop(tp);
    tg_scope_push(tp, "l10");
    h = tg_matmul(tp, h, w10);                /* #4 l10 */
    tg_scope_pop(tp);
    tg_tensor *loss = tg_sum(tp, h, 0, NULL, false); /* #5 root */
    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);

    print_opts = (tg_print_options){.scope = "l1"};
    char *t = capture(print_with_writer, tp);
    assert_has(t, "tape: 6 records, gradients dL/d(out) after backward\nshown: 2 records in scope l1\n");
    assert_has(t, "#0  matmul");
    assert_has(t, "#1  tanh");
    assert_lacks(t, "l10");
    assert_lacks(t, "l2/weight");
    assert_has(t, "leaves: 1\n"); /* what the shown records read: l1/weight (x is a constant) */
    ck_assert_int_eq(count_lines(t), 2 + 1 + 2 + 2 + 1);
    free(t);

    print_opts = (tg_print_options){.first = 2, .count = 3};
    t = capture(print_with_writer, tp);
    assert_has(t, "shown: 3 records from #2 to #4\n");
    assert_lacks(t, "#1 ");
    assert_lacks(t, "#5 ");
    assert_has(t, "#4  matmul");
    assert_has(t, "leaves: 2\n"); /* l2/weight and l10/weight */
    free(t);

    /* both: l2's records within #3.. */
    print_opts = (tg_print_options){.scope = "l2", .first = 3};
    t = capture(print_with_writer, tp);
    assert_has(t, "shown: 1 record in scope l2 from #3\n");
    assert_has(t, "#3  tanh");
    assert_has(t, "leaves: 0\n");
    free(t);

    /* the summary: one line a scope, in order, with the last record's gradient */
    print_opts = (tg_print_options){.summary = true};
    t = capture(print_with_writer, tp);
    assert_has(t, "scopes: 5\n");
    ck_assert_int_eq(count_lines(t), 1 + 1 + 1 + 5);
    const char *l2 = strstr(t, "\n  l2 ");
    ck_assert_ptr_nonnull(l2);
    assert_has(l2, "      2  #2-#3  tanh ");
    /* the sum's backward hands 1 to every element of l10's output: that is l10's line */
    const char *l10 = strstr(t, "\n  l10 ");
    ck_assert_ptr_nonnull(l10);
    ck_assert_ptr_nonnull(strstr(l10, "1.000e+00  1.000e+00  1.000e+00   0.0%      0\n"));
    assert_has(l10, "\n  -             1  #5-#5  sum "); /* the root scope, last */
    assert_lacks(t, "leaves");
    free(t);

    /* a summary of one scope */
    print_opts = (tg_print_options){.scope = "l1", .summary = true};
    t = capture(print_with_writer, tp);
    assert_has(t, "scopes: 2\n");
    assert_has(t, "\n  l1      ");
    assert_has(t, "\n  l1/act  ");
    free(t);

    /* a zero filter is tg_tape_print */
    print_opts = (tg_print_options){0};
    t = capture(print_with_writer, tp);
    char *all = capture(print_writer, tp);
    ck_assert_str_eq(t, all);
    free(t);
    free(all);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w1);
    tg_tensor_free(w2);
    tg_tensor_free(w10);
}
END_TEST

/* tg_grad_stats's l2 is the Euclidean norm of the finite values, by hand */
START_TEST(test_stats_l2_norm)
{
    tg_tensor *t = tt_tensor(TG_F32, TG_DIMS(2, 3), (double[]){3, -4, 0, 12, NAN, INFINITY});
    tg_grad_stats s = tg_tensor_stats(t);
    ck_assert_double_eq_tol(s.l2, 13.0, 1e-12); /* sqrt(9 + 16 + 144) */
    ck_assert_int_eq(s.nonfinite, 2);
    ck_assert_double_eq_tol(s.rms, 13.0 / 2.0, 1e-12); /* l2 / sqrt(4 finite values) */
    tg_tensor *v = tg_tensor_transpose(NULL, t, 0, 1);  /* the same through a strided view */
    ck_assert_double_eq_tol(tg_tensor_stats(v).l2, 13.0, 1e-12);
    ck_assert_double_eq(tg_tensor_stats(NULL).l2, 0.0);
    tg_tensor_free(v);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_dot_graph)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(4, 3));
    tg_tensor *w = tt_leaf(TG_F32, TG_DIMS(3, 2), "fc/we\"ird\\name");
    tg_tensor *b = tt_leaf(TG_F32, TG_DIMS(2), "fc/bias");
    tg_scope_push(tp, "q\"uote");
    tg_tensor *loss = small_net(tp, x, w, b);
    tg_scope_pop(tp);
    tg_tensor *unused = tg_exp(tp, w); /* after the loss: backward does not reach it */
    (void)unused;

    char *before = capture(dot_writer, tp);
    ck_assert_int_eq(strncmp(before, "digraph tape {\n  rankdir=LR;\n", 29), 0);
    ck_assert_int_eq(before[strlen(before) - 2], '}');
    assert_has(before, "r0 [label=\"#0 matmul\\nq\\\"uote/net/fc\\n[4,2] f32\"];");
    assert_has(before, "[shape=box, label=\"fc/we\\\"ird\\\\name\\n[3,2] f32\"];");
    assert_has(before, "label=\"fc/bias\\n[2] f32\"");
    assert_has(before, "label=\"const\\n[4,3] f32\"");
    assert_has(before, "#2 mul_scalar");
    assert_has(before, "#3 sum");
    assert_has(before, "s0 -> r0");
    assert_has(before, "s1 -> r0");
    assert_has(before, "r0 -> r1");
    assert_has(before, "s2 -> r1");
    assert_has(before, "s1 -> r4;"); /* the same leaf, one node */
    assert_has(before, "legend");
    assert_lacks(before, "mean|g|");
    assert_lacks(before, "s3 ");
    if (have_dot())
        ck_assert_msg(dot_renders(before), "dot could not render:\n%s", before);

    ck_assert_int_eq(tg_backward(tp, loss), TG_OK);
    char *after = capture(dot_writer, tp);
    /* dloss/dsum = 1: log10 0, full red; d/dh = 2; the unreached record is grey */
    assert_has(after, "#3 sum\\nq\\\"uote/head\\n[] f32\\nmean|g| 1.00e+00 (log10 0.0)\", fillcolor=\"#ff3737\"");
    assert_has(after, "mean|g| 2.00e+00 (log10 0.3)\", fillcolor=\"#ff3737\"");
    assert_has(after, "#4 exp\\n[3,2] f32\\nno gradient\", fillcolor=\"#d0d0d0\"");
    assert_has(after, "label=\"fc/bias\\n[2] f32\\nmean|g| 8.00e+00 (log10 0.9)\"");
    assert_has(after, "fill: log10 mean |dL/d(out)|");
    if (have_dot())
        ck_assert_msg(dot_renders(after), "dot could not render:\n%s", after);
    free(before);
    free(after);

    /* a vanishing gradient is pale, a NaN one is marked */
    tg_tape_reset(tp);
    tg_zero_grad(b);
    tg_tensor *tiny = tg_sum(tp, tg_mul_scalar(tp, b, 1e-9), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, tiny), TG_OK);
    char *pale = capture(dot_writer, tp);
    assert_has(pale, "mean|g| 1.00e-09 (log10 -9.0)\", fillcolor=\"#ffebeb\"");
    free(pale);
    tg_tape_reset(tp);
    tg_tensor *nan = tg_sum(tp, tg_mul_scalar(tp, b, NAN), 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, nan), TG_OK);
    char *bad = capture(dot_writer, tp);
    assert_has(bad, "2 NaN/Inf");
    assert_has(bad, "penwidth=3");
    free(bad);

    /* write errors */
    char path[] = "/tmp/tg_test_tape_ro_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    close(fd);
    FILE *ro = fopen(path, "r");
    ck_assert_ptr_nonnull(ro);
    ck_assert_int_eq(tg_tape_write_dot(tp, ro), TG_ERR_IO);
    tt_expect_last(TG_ERR_IO, "tg_tape_write_dot", "writing the graph failed");
    fclose(ro);
    remove(path);
    ck_assert_int_eq(tg_tape_write_dot(tp, NULL), TG_ERR_ARG);
    ck_assert_int_eq(tg_tape_write_dot(NULL, stdout), TG_ERR_ARG);

    /* an empty tape is an empty graph */
    tg_tape_reset(tp);
    char *empty = capture(dot_writer, tp);
    assert_lacks(empty, "->");
    if (have_dot())
        ck_assert(dot_renders(empty));
    free(empty);
    tg_tape_free(tp);
    tg_tensor_free(x);
    tg_tensor_free(w);
    tg_tensor_free(b);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/tape");
    TCase *tc = tt_tcase("tape");
    tcase_add_test(tc, test_records_ops_scopes_inputs);
    tcase_add_test(tc, test_leaves_and_scope_limits);
    tcase_add_test(tc, test_reuse_accumulates_exactly);
    tcase_add_test(tc, test_grads_accumulate_until_zero_grad);
    tcase_add_test(tc, test_backward_from_output_gradient);
    tcase_add_test(tc, test_no_grad_mode_records_nothing);
    tcase_add_test(tc, test_deep_chain_without_recursion);
    tcase_add_test(tc, test_deep_chain_on_a_small_stack);
    tcase_add_test(tc, test_steady_state_step_allocates_nothing);
    tcase_add_test(tc, test_steady_state_without_kept_grads_allocates_nothing);
    tcase_add_test(tc, test_gradients_given_back_when_not_kept);
    tcase_add_test(tc, test_profile_times_records);
    tcase_add_test(tc, test_sticky_errors);
    tcase_add_test(tc, test_errors_by_field);
    tcase_add_test(tc, test_check_finite_names_the_record);
    tcase_add_test(tc, test_user_ops);
    suite_add_tcase(s, tc);
    TCase *io = tt_tcase("inspect");
    tcase_add_test(io, test_print_before_and_after_backward);
    tcase_add_test(io, test_print_zero_and_unreached);
    tcase_add_test(io, test_print_filtered_and_summary);
    tcase_add_test(io, test_stats_l2_norm);
    tcase_add_test(io, test_dot_graph);
    suite_add_tcase(s, io);
    tt_add_abort_test(s, test_abort_on_error);
    return tt_run(s);
}
