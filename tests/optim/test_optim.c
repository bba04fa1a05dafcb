/* optim: SGD, Adam and AdamW against PyTorch 1.13's trajectories (five steps of nine
 * configurations, tests/fixtures/optim_reference.inc) in f64 to 1e-12 and in f32 to
 * 1e-6; parameters without a gradient are skipped, with their own step count; the
 * state copied out mid-run and into a fresh model and optimiser continues bitwise as
 * the uninterrupted run; a step allocates nothing; bad configurations fail with a
 * message. */
#include "check_util.h"

#include <inttypes.h>

static const char fixture_text[] =
#include "../fixtures/optim_reference.inc"
    ;

/* ------------------------------------------------------------------ the fixture */

#define NSTEPS 5
#define NPARAMS 2
#define MAXN 12
#define MAXCFG 16

static const char *const pname[NPARAMS] = {"a", "b"};

typedef struct fx_config {
    char id[48];
    tg_optim_config cfg;
    double lr_factor; /* lr *= lr_factor after each step */
    int skip;         /* bit k: b has no gradient at step k */
    int nvalues;      /* value records read: NSTEPS * NPARAMS */
    double value[NSTEPS][NPARAMS][MAXN];
} fx_config;

static struct {
    bool loaded;
    int ndim[NPARAMS];
    int64_t shape[NPARAMS][2], numel[NPARAMS];
    double init[NPARAMS][MAXN], grad[NSTEPS][NPARAMS][MAXN];
    fx_config cfg[MAXCFG];
    int ncfg;
} fx;

static int param_index(const char *name)
{
    for (int i = 0; i < NPARAMS; i++)
        if (strcmp(name, pname[i]) == 0)
            return i;
    ck_abort_msg("fixture: unknown parameter '%s'", name);
    return -1;
}

/* n numbers from s into out; nothing may follow */
static void read_values(const char *s, double *out, int64_t n, const char *line)
{
    char *end;
    for (int64_t j = 0; j < n; j++) {
        out[j] = strtod(s, &end);
        ck_assert_msg(end != s, "fixture: %" PRId64 " values expected in '%.60s...'", n, line);
        s = end;
    }
    while (*s == ' ')
        s++;
    ck_assert_msg(*s == '\0', "fixture: more than %" PRId64 " values in '%.60s...'", n, line);
}

static tg_optim_kind kind_of(const char *k)
{
    if (strcmp(k, "sgd") == 0)
        return TG_SGD;
    if (strcmp(k, "adam") == 0)
        return TG_ADAM;
    ck_assert_str_eq(k, "adamw");
    return TG_ADAMW;
}

static void fx_load(void)
{
    if (fx.loaded)
        return;
    const char *s = fixture_text;
    char line[1024], rec[16], name[48];
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t len = nl ? (size_t)(nl - s) : strlen(s);
        ck_assert(len < sizeof line);
        memcpy(line, s, len);
        line[len] = '\0';
        s += len + (nl != NULL);
        int at = 0, step, i;
        if (line[0] == '#' || sscanf(line, "%15s%n", rec, &at) != 1)
            continue;
        if (strcmp(rec, "param") == 0) {
            int nd = 0, k = 0;
            double sh[2];
            ck_assert(sscanf(line + at, "%47s %d%n", name, &nd, &k) == 2);
            ck_assert(nd >= 1 && nd <= 2);
            i = param_index(name);
            fx.ndim[i] = nd;
            read_values(line + at + k, sh, nd, line);
            fx.numel[i] = 1;
            for (int d = 0; d < nd; d++)
                fx.numel[i] *= fx.shape[i][d] = (int64_t)sh[d];
            ck_assert(fx.numel[i] <= MAXN);
        } else if (strcmp(rec, "init") == 0) {
            int k = 0;
            ck_assert(sscanf(line + at, "%47s%n", name, &k) == 1);
            i = param_index(name);
            read_values(line + at + k, fx.init[i], fx.numel[i], line);
        } else if (strcmp(rec, "grad") == 0) {
            int k = 0;
            ck_assert(sscanf(line + at, "%d %47s%n", &step, name, &k) == 2);
            i = param_index(name);
            ck_assert(step >= 0 && step < NSTEPS);
            read_values(line + at + k, fx.grad[step][i], fx.numel[i], line);
        } else if (strcmp(rec, "config") == 0) {
            ck_assert(fx.ncfg < MAXCFG);
            fx_config *c = &fx.cfg[fx.ncfg++];
            char kind[8];
            int nesterov, amsgrad;
            tg_optim_config *o = &c->cfg;
            ck_assert(sscanf(line + at, "%47s %7s %lf %lf %lf %lf %d %lf %lf %lf %d %lf %d", c->id,
                             kind, &o->lr, &o->weight_decay, &o->momentum, &o->dampening,
                             &nesterov, &o->beta1, &o->beta2, &o->eps, &amsgrad, &c->lr_factor,
                             &c->skip) == 13);
            o->kind = kind_of(kind);
            o->nesterov = nesterov;
            o->amsgrad = amsgrad;
        } else if (strcmp(rec, "value") == 0) {
            int k = 0;
            char id[48];
            ck_assert(sscanf(line + at, "%47s %d %47s%n", id, &step, name, &k) == 3);
            ck_assert(fx.ncfg > 0);
            fx_config *c = &fx.cfg[fx.ncfg - 1];
            ck_assert_str_eq(id, c->id);
            ck_assert(step >= 0 && step < NSTEPS);
            i = param_index(name);
            read_values(line + at + k, c->value[step][i], fx.numel[i], line);
            c->nvalues++;
        }
    }
    ck_assert_int_eq(fx.ncfg, 9);
    for (int k = 0; k < fx.ncfg; k++)
        ck_assert_int_eq(fx.cfg[k].nvalues, NSTEPS * NPARAMS);
    fx.loaded = true;
}

static const fx_config *fx_find(const char *id)
{
    fx_load();
    for (int i = 0; i < fx.ncfg; i++)
        if (strcmp(fx.cfg[i].id, id) == 0)
            return &fx.cfg[i];
    ck_abort_msg("fixture: no config '%s'", id);
    return NULL;
}

/* ------------------------------------------------------------------ a run */

/* Two parameters a [3,4] and b [5] in a model, an optimiser over them, and a tape that
 * gives a parameter its gradient tensor the first time it needs one. */
typedef struct run {
    tg_model *m;
    tg_tensor *p[NPARAMS];
    tg_optim *o;
    tg_tape *tp;
} run;

static void set_values(tg_tensor *t, const double *v)
{
    tg_tensor *src = tg_tensor_borrow(NULL, TG_F64, t->ndim, t->shape, (void *)v);
    ck_assert_msg(src != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_copy_(t, src), TG_OK);
    tg_tensor_free(src);
}

static void run_init(run *r, const tg_optim_config *cfg, tg_dtype dt)
{
    fx_load();
    r->m = tg_model_new();
    ck_assert_ptr_nonnull(r->m);
    for (int i = 0; i < NPARAMS; i++) {
        r->p[i] = tg_model_add_param(r->m, pname[i], dt, fx.ndim[i], fx.shape[i]);
        ck_assert_msg(r->p[i] != NULL, "%s", tg_last_error());
        set_values(r->p[i], fx.init[i]);
    }
    r->o = tg_optim_new(r->m, cfg);
    ck_assert_msg(r->o != NULL, "%s", tg_last_error());
    r->tp = tg_tape_new(0);
    ck_assert_ptr_nonnull(r->tp);
}

static void run_free(run *r)
{
    tg_optim_free(r->o);
    tg_model_free(r->m);
    tg_tape_free(r->tp);
}

static void set_grad(run *r, tg_tensor *p, const double *g)
{
    if (!tg_grad(p)) { /* a backward that reaches p makes its gradient tensor */
        tg_tape_reset(r->tp);
        ck_assert_int_eq(tg_backward(r->tp, tg_sum(r->tp, p, 0, NULL, false)), TG_OK);
    }
    ck_assert_ptr_nonnull(tg_grad(p));
    set_values(tg_grad(p), g);
}

/* step `step` of configuration c: the fixture's gradients (b's left out where c says),
 * one update, then the learning rate scaled as the reference did */
static void run_step(run *r, const fx_config *c, int step)
{
    for (int i = 0; i < NPARAMS; i++)
        if (!(i == 1 && (c->skip >> step) & 1))
            set_grad(r, r->p[i], fx.grad[step][i]);
    ck_assert_msg(tg_optim_step(r->o) == TG_OK, "%s", tg_last_error());
    tg_optim_set_lr(r->o, tg_optim_lr(r->o) * c->lr_factor);
}

static tg_tensor *state_named(const tg_optim *o, const char *name)
{
    for (int i = 0; i < tg_optim_num_state(o); i++)
        if (strcmp(tg_optim_state_name(o, i), name) == 0)
            return tg_optim_state(o, i);
    return NULL;
}

/* ------------------------------------------------------------------ against PyTorch */

static void check_trajectories(tg_dtype dt, double tol)
{
    fx_load();
    for (int k = 0; k < fx.ncfg; k++) {
        const fx_config *c = &fx.cfg[k];
        run r;
        run_init(&r, &c->cfg, dt);
        for (int step = 0; step < NSTEPS; step++) {
            run_step(&r, c, step);
            for (int i = 0; i < NPARAMS; i++) {
                double err = tt_max_rel_err(r.p[i], c->value[step][i]);
                ck_assert_msg(err <= tol, "%s (%s): '%s' after step %d differs from PyTorch "
                              "by %g > %g", c->id, tg_dtype_name(dt), pname[i], step, err, tol);
            }
        }
        /* the step counts: the optimiser's, and b's, which skips its gradless steps */
        int skipped = 0;
        for (int step = 0; step < NSTEPS; step++)
            skipped += (c->skip >> step) & 1;
        ck_assert(skipped > 0 || c->skip == 0);
        ck_assert_double_eq(tg_tensor_item(state_named(r.o, "optim/step")), NSTEPS);
        ck_assert_double_eq(tg_tensor_item(state_named(r.o, "a/step")), NSTEPS);
        ck_assert_double_eq(tg_tensor_item(state_named(r.o, "b/step")), NSTEPS - skipped);
        run_free(&r);
    }
}

START_TEST(test_f64_matches_pytorch) { check_trajectories(TG_F64, 1e-12); }
END_TEST

START_TEST(test_f32_matches_pytorch) { check_trajectories(TG_F32, 1e-6); }
END_TEST

/* The comparison can fail: an lr off by one part in 10^4 puts the first step far
 * outside the tolerance. */
START_TEST(test_reference_is_discriminating)
{
    const fx_config *c = fx_find("adam_default");
    tg_optim_config wrong = c->cfg;
    wrong.lr *= 1.0001;
    run r;
    run_init(&r, &wrong, TG_F64);
    run_step(&r, c, 0);
    ck_assert(tt_max_rel_err(r.p[0], c->value[0][0]) > 1e-9);
    run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ skipping */

/* A parameter no backward reached has no gradient: it, and its state, stay as they
 * were, even with weight decay (coupled or decoupled) that would otherwise move it. */
START_TEST(test_params_without_grad_are_skipped)
{
    const tg_optim_kind kinds[] = {TG_SGD, TG_ADAM, TG_ADAMW};
    for (int k = 0; k < 3; k++) {
        tg_optim_config cfg = {.kind = kinds[k], .lr = 0.1, .weight_decay = 0.1};
        if (kinds[k] == TG_SGD)
            cfg.momentum = 0.9;
        else
            cfg.amsgrad = true;
        run r;
        run_init(&r, &cfg, TG_F64);
        double *b0 = tt_values(r.p[1]);
        for (int step = 0; step < 3; step++) {
            set_grad(&r, r.p[0], fx.grad[step][0]);
            ck_assert_int_eq(tg_optim_step(r.o), TG_OK);
        }
        ck_assert_ptr_null(tg_grad(r.p[1]));
        ck_assert(tt_max_rel_err(r.p[1], b0) == 0);
        ck_assert(tt_max_rel_err(r.p[0], fx.init[0]) > 1e-3); /* a moved */
        for (int i = 0; i < tg_optim_num_state(r.o); i++) {
            const char *name = tg_optim_state_name(r.o, i);
            tg_grad_stats st = tg_tensor_stats(tg_optim_state(r.o, i));
            if (name[0] == 'b')
                ck_assert_msg(st.zero_frac == 1, "%s moved", name);
            else
                ck_assert_msg(st.zero_frac < 1, "%s did not move", name);
        }
        free(b0);
        run_free(&r);
    }
}
END_TEST

/* ------------------------------------------------------------------ the state */

static void check_names(const tg_optim_config *cfg, const char *const *want, int n)
{
    run r;
    run_init(&r, cfg, TG_F32);
    ck_assert_int_eq(tg_optim_num_state(r.o), n);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(tg_optim_state_name(r.o, i), want[i]);
        const tg_tensor *t = tg_optim_state(r.o, i);
        ck_assert_ptr_null(t->arena);
        ck_assert(tg_tensor_is_contiguous(t));
        ck_assert_double_eq(tg_tensor_stats(t).zero_frac, 1); /* zeros at first */
        if (strstr(want[i], "step")) {
            ck_assert_int_eq(t->dtype, TG_F64);
            ck_assert_int_eq(t->ndim, 0);
        } else {
            const tg_tensor *p = r.p[want[i][0] == 'b'];
            ck_assert_int_eq(t->dtype, TG_F32);
            ck_assert(tg_tensor_same_shape(t, p));
        }
    }
    ck_assert_ptr_null(tg_optim_state_name(r.o, n));
    ck_assert_ptr_null(tg_optim_state(r.o, -1));
    run_free(&r);
}

START_TEST(test_state_names_shapes_dtypes)
{
    check_names(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1},
                (const char *[]){"optim/step", "a/step", "b/step"}, 3);
    check_names(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .momentum = 0.9},
                (const char *[]){"optim/step", "a/step", "a/momentum_buffer", "b/step",
                                 "b/momentum_buffer"}, 5);
    check_names(&(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3},
                (const char *[]){"optim/step", "a/step", "a/exp_avg", "a/exp_avg_sq", "b/step",
                                 "b/exp_avg", "b/exp_avg_sq"}, 7);
    check_names(&(tg_optim_config){.kind = TG_ADAMW, .lr = 1e-3, .amsgrad = true},
                (const char *[]){"optim/step", "a/step", "a/exp_avg", "a/exp_avg_sq",
                                 "a/max_exp_avg_sq", "b/step", "b/exp_avg", "b/exp_avg_sq",
                                 "b/max_exp_avg_sq"}, 9);
}
END_TEST

/* 3 steps; the parameters and the state copied out (as a checkpoint saves them) and into
 * a fresh model and optimiser; 2 more steps on both: the same bits everywhere. */
static void check_resume(const char *id, tg_dtype dt)
{
    const fx_config *c = fx_find(id);
    run a, b;
    run_init(&a, &c->cfg, dt);
    for (int step = 0; step < 3; step++)
        run_step(&a, c, step);

    int ns = tg_optim_num_state(a.o);
    tg_tensor *saved[32], *params[NPARAMS];
    ck_assert(ns <= 32);
    for (int i = 0; i < ns; i++)
        saved[i] = tg_tensor_clone(NULL, tg_optim_state(a.o, i));
    for (int i = 0; i < NPARAMS; i++)
        params[i] = tg_tensor_clone(NULL, a.p[i]);

    tg_optim_config fresh = c->cfg; /* the lr is the schedule's to restore, not the state's */
    fresh.lr = tg_optim_lr(a.o);
    run_init(&b, &fresh, dt);
    ck_assert_int_eq(tg_optim_num_state(b.o), ns);
    for (int i = 0; i < NPARAMS; i++)
        ck_assert_int_eq(tg_tensor_copy_(tg_model_find(b.m, pname[i]), params[i]), TG_OK);
    for (int i = 0; i < ns; i++) {
        tg_tensor *dst = state_named(b.o, tg_optim_state_name(a.o, i));
        ck_assert_ptr_nonnull(dst);
        ck_assert_int_eq(tg_tensor_copy_(dst, saved[i]), TG_OK);
    }
    ck_assert_double_eq(tg_tensor_item(state_named(b.o, "optim/step")), 3);

    for (int step = 3; step < NSTEPS; step++) {
        run_step(&a, c, step);
        run_step(&b, c, step);
    }
    for (int i = 0; i < NPARAMS; i++)
        ck_assert_msg(tt_same_bits(a.p[i], b.p[i]), "%s (%s): '%s' differs after resuming", id,
                      tg_dtype_name(dt), pname[i]);
    for (int i = 0; i < ns; i++)
        ck_assert_msg(tt_same_bits(tg_optim_state(a.o, i), tg_optim_state(b.o, i)),
                      "%s (%s): state '%s' differs after resuming", id, tg_dtype_name(dt),
                      tg_optim_state_name(a.o, i));
    /* and the resumed run is the reference's too */
    if (dt == TG_F64)
        for (int i = 0; i < NPARAMS; i++)
            tt_assert_close(b.p[i], c->value[NSTEPS - 1][i], 1e-12);

    for (int i = 0; i < ns; i++)
        tg_tensor_free(saved[i]);
    for (int i = 0; i < NPARAMS; i++)
        tg_tensor_free(params[i]);
    run_free(&a);
    run_free(&b);
}

START_TEST(test_resume_continues_bitwise)
{
    const char *ids[] = {"sgd_momentum_damp_wd", "sgd_nesterov", "sgd_momentum_skip",
                         "adam_wd_amsgrad", "adam_betas_lr_decay_skip", "adamw_amsgrad"};
    for (int i = 0; i < 6; i++) {
        check_resume(ids[i], TG_F64);
        check_resume(ids[i], TG_F32);
    }
}
END_TEST

/* Without the state (a fresh optimiser over the restored parameters) the run differs:
 * the check above can fail. */
START_TEST(test_resume_without_state_differs)
{
    const fx_config *c = fx_find("adam_wd_amsgrad");
    run a, b;
    run_init(&a, &c->cfg, TG_F64);
    for (int step = 0; step < 3; step++)
        run_step(&a, c, step);
    run_init(&b, &c->cfg, TG_F64);
    for (int i = 0; i < NPARAMS; i++)
        ck_assert_int_eq(tg_tensor_copy_(b.p[i], a.p[i]), TG_OK);
    run_step(&a, c, 3);
    run_step(&b, c, 3);
    ck_assert(!tt_same_bits(a.p[0], b.p[0]));
    run_free(&a);
    run_free(&b);
}
END_TEST

/* ------------------------------------------------------------------ no allocation, threads */

START_TEST(test_step_allocates_nothing)
{
    const char *ids[] = {"sgd_nesterov", "adam_wd_amsgrad", "adamw_wd"};
    for (int k = 0; k < 3; k++) {
        const fx_config *c = fx_find(ids[k]);
        run r;
        run_init(&r, &c->cfg, TG_F32);
        for (int i = 0; i < NPARAMS; i++)
            set_grad(&r, r.p[i], fx.grad[0][i]);
        tt_count_allocations(); /* the same malloc underneath as the default */
        for (int step = 0; step < 3; step++)
            ck_assert_int_eq(tg_optim_step(r.o), TG_OK);
        ck_assert_int_eq(tt_n_alloc, 0);
        tg_set_allocator(NULL);
        run_free(&r);
    }
}
END_TEST

/* A step writes its parameters and state in place, through raw pointers, and says so
 * (tg_tensor_version): a backward whose forward ran before the step is refused, one
 * after it is fine. */
START_TEST(test_step_is_an_in_place_write)
{
    const fx_config *c = fx_find("adam_wd_amsgrad");
    run r;
    run_init(&r, &c->cfg, TG_F64);
    for (int i = 0; i < NPARAMS; i++)
        set_grad(&r, r.p[i], fx.grad[0][i]);
    int n = tg_optim_num_state(r.o);
    uint64_t before[16];
    ck_assert_int_le(n, 16);
    for (int i = 0; i < n; i++)
        before[i] = tg_tensor_version(tg_optim_state(r.o, i));
    uint64_t pv = tg_tensor_version(r.p[0]);

    tg_tape_reset(r.tp);
    tg_tensor *loss = tg_sum(r.tp, tg_mul(r.tp, r.p[0], r.p[0]), 0, NULL, false);
    ck_assert_int_eq(tg_optim_step(r.o), TG_OK);
    ck_assert_uint_gt(tg_tensor_version(r.p[0]), pv);
    for (int i = 0; i < n; i++)
        ck_assert_msg(tg_tensor_version(tg_optim_state(r.o, i)) > before[i], "state '%s' not counted",
                      tg_optim_state_name(r.o, i));
    ck_assert_int_eq(tg_backward(r.tp, loss), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(r.tp), "tg_mul (record 0) needs input 0 ('a') as it was "
                                                      "when recorded"));

    tg_tape_reset(r.tp); /* the usual order: forward, backward, step */
    loss = tg_sum(r.tp, tg_mul(r.tp, r.p[0], r.p[0]), 0, NULL, false);
    ck_assert_int_eq(tg_backward(r.tp, loss), TG_OK);
    ck_assert_int_eq(tg_optim_step(r.o), TG_OK);
    run_free(&r);
}
END_TEST

/* A parameter large enough for the parallel loop gives the same bits on 1 and 2 threads. */
START_TEST(test_threads_bitwise)
{
    tg_tensor *out[2];
    for (int t = 0; t < 2; t++) {
        tg_set_num_threads(t + 1);
        tg_model *m = tg_model_new();
        tg_tensor *p = tg_model_add_param(m, "w", TG_F32, TG_DIMS(300, 300));
        tt_rnd_state = 42;
        tg_tensor *init = tt_rand_tensor(TG_F32, TG_DIMS(300, 300));
        tg_tensor *g = tt_rand_tensor(TG_F32, TG_DIMS(300, 300));
        ck_assert_int_eq(tg_tensor_copy_(p, init), TG_OK);
        tg_optim *o = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-2,
                                                         .weight_decay = 1e-3, .amsgrad = true});
        tg_tape *tp = tg_tape_new(0);
        ck_assert_int_eq(tg_backward(tp, tg_sum(tp, p, 0, NULL, false)), TG_OK);
        for (int step = 0; step < 3; step++) {
            ck_assert_int_eq(tg_tensor_copy_(tg_grad(p), g), TG_OK);
            ck_assert_int_eq(tg_optim_step(o), TG_OK);
        }
        out[t] = tg_tensor_clone(NULL, p);
        tg_tensor_free(init);
        tg_tensor_free(g);
        tg_tape_free(tp);
        tg_optim_free(o);
        tg_model_free(m);
    }
    ck_assert(tt_same_bits(out[0], out[1]));
    tg_tensor_free(out[0]);
    tg_tensor_free(out[1]);
}
END_TEST

/* ------------------------------------------------------------------ bad configurations */

static void expect_bad(const tg_optim_config *cfg, const char *message)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(tg_model_add_param(m, "w", TG_F64, TG_DIMS(2)));
    tt_expect_message(tg_optim_new(m, cfg), TG_ERR_ARG, message);
    tg_model_free(m);
}

START_TEST(test_bad_configs)
{
    expect_bad(&(tg_optim_config){.kind = TG_SGD, .lr = -0.1},
               "tg_optim_new: lr is -0.1; expected a finite value >= 0");
    expect_bad(&(tg_optim_config){.kind = TG_ADAM, .lr = NAN},
               "tg_optim_new: lr is nan; expected a finite value >= 0");
    expect_bad(&(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3, .weight_decay = -1e-4},
               "tg_optim_new: weight_decay is -0.0001; expected a finite value >= 0");
    expect_bad(&(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3, .beta1 = 1},
               "tg_optim_new: beta1 is 1; expected a value in [0, 1)");
    expect_bad(&(tg_optim_config){.kind = TG_ADAMW, .lr = 1e-3, .beta2 = -0.5},
               "tg_optim_new: beta2 is -0.5; expected a value in [0, 1)");
    expect_bad(&(tg_optim_config){.kind = TG_ADAMW, .lr = 1e-3, .beta2 = 1.5},
               "tg_optim_new: beta2 is 1.5; expected a value in [0, 1)");
    expect_bad(&(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3, .eps = -1e-8},
               "tg_optim_new: eps is -1e-08; expected a finite value > 0 (0 means the default "
               "1e-8)");
    expect_bad(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .momentum = -0.9},
               "tg_optim_new: momentum is -0.9; expected a finite value >= 0");
    expect_bad(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .nesterov = true},
               "tg_optim_new: Nesterov momentum requires momentum > 0 and dampening 0; "
               "found momentum 0, dampening 0");
    expect_bad(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .nesterov = true, .momentum = 0.9,
                                  .dampening = 0.1},
               "tg_optim_new: Nesterov momentum requires momentum > 0 and dampening 0; "
               "found momentum 0.9, dampening 0.1");
    expect_bad(&(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .amsgrad = true},
               "tg_optim_new: beta1, beta2, eps and amsgrad are Adam's settings; SGD expects "
               "them 0");
    expect_bad(&(tg_optim_config){.kind = TG_ADAM, .lr = 0.1, .momentum = 0.9},
               "tg_optim_new: momentum, dampening and nesterov are SGD's settings; Adam "
               "expects them 0");
    expect_bad(&(tg_optim_config){.kind = (tg_optim_kind)7, .lr = 0.1},
               "tg_optim_new: kind is 7; expected TG_SGD, TG_ADAM or TG_ADAMW");
    tt_expect_error(tg_optim_new(NULL, &(tg_optim_config){.lr = 0.1}), TG_ERR_ARG, "tg_optim_new",
                    "the model is NULL");
    tg_model *m = tg_model_new();
    tt_expect_error(tg_optim_new(m, NULL), TG_ERR_ARG, "tg_optim_new", "the config is NULL");
    /* a parameter whose state name would collide with "optim/step" */
    ck_assert_ptr_nonnull(tg_model_add_param(m, "optim", TG_F64, TG_DIMS(2)));
    tt_expect_error(tg_optim_new(m, &(tg_optim_config){.kind = TG_SGD, .lr = 0.1}), TG_ERR_ARG,
                    "tg_optim_new", "two state tensors would be named 'optim/step'");
    tg_model_free(m);
    /* and one whose state name is the name of another parameter */
    m = tg_model_new();
    ck_assert_ptr_nonnull(tg_model_add_param(m, "w", TG_F64, TG_DIMS(2)));
    ck_assert_ptr_nonnull(tg_model_add_param(m, "w/exp_avg", TG_F64, TG_DIMS(2)));
    tt_expect_error(tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 0.1}), TG_ERR_ARG,
                    "tg_optim_new", "state 'w/exp_avg' has the name of one of the model's tensors");
    tg_model_free(m);
}
END_TEST

/* AdamW's weight decay is 0 unless set, as for SGD and Adam (PyTorch's AdamW defaults
 * to 0.01; include/tapegrad/optim.h says why not here): left out, AdamW's step is
 * Adam's without decay, bit for bit; with .weight_decay = 0.01 the parameter is
 * further shrunk by lr * 0.01 * p. */
static double adam_step_of(tg_optim_kind kind, double wd, int i)
{
    tg_model *m = tg_model_new();
    tg_tensor *w = tg_model_add_param(m, "w", TG_F64, TG_DIMS(2));
    set_values(w, (double[]){1.0, -2.0});
    tg_tape *tp = tg_tape_new(0);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, w, 0, NULL, false)), TG_OK);
    set_values(tg_grad(w), (double[]){0.5, 0.25});
    tg_optim_config cfg = {.kind = kind, .lr = 0.1};
    if (wd >= 0)
        cfg.weight_decay = wd;
    tg_optim *o = tg_optim_new(m, &cfg);
    ck_assert_int_eq(tg_optim_step(o), TG_OK);
    double v = tg_tensor_get(w, (int64_t[]){i});
    tg_optim_free(o);
    tg_tape_free(tp);
    tg_model_free(m);
    return v;
}

START_TEST(test_adamw_weight_decay_default)
{
    for (int i = 0; i < 2; i++) {
        double unset = adam_step_of(TG_ADAMW, -1, i), adam = adam_step_of(TG_ADAM, 0, i);
        ck_assert_msg(unset == adam, "element %d: AdamW without weight_decay %.17g, Adam %.17g", i, unset,
                      adam);
        double p0 = i ? -2.0 : 1.0;
        double decayed = adam_step_of(TG_ADAMW, 0.01, i);
        ck_assert_double_eq_tol(unset - decayed, 0.1 * 0.01 * p0, 1e-15);
    }
}
END_TEST

START_TEST(test_defaults_and_accessors)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(tg_model_add_param(m, "w", TG_F64, TG_DIMS(2)));
    tg_optim *o = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAMW, .lr = 1e-3});
    const tg_optim_config *c = tg_optim_config_of(o);
    ck_assert_double_eq(c->beta1, 0.9);
    ck_assert_double_eq(c->beta2, 0.999);
    ck_assert_double_eq(c->eps, 1e-8);
    ck_assert_double_eq(tg_optim_lr(o), 1e-3);
    tg_optim_set_lr(o, 2e-5);
    ck_assert_double_eq(tg_optim_lr(o), 2e-5);
    ck_assert_double_eq(c->lr, 2e-5);
    tg_optim_free(o);
    tg_optim_free(NULL);
    ck_assert(isnan(tg_optim_lr(NULL)));
    ck_assert_int_eq(tg_optim_num_state(NULL), 0);
    tg_model_free(m);
}
END_TEST

/* Errors found by a step change nothing: a bad lr, a model that grew, a NULL optimiser. */
START_TEST(test_step_errors_change_nothing)
{
    const fx_config *c = fx_find("adam_wd_amsgrad");
    run r;
    run_init(&r, &c->cfg, TG_F64);
    for (int i = 0; i < NPARAMS; i++)
        set_grad(&r, r.p[i], fx.grad[0][i]);
    tg_optim_set_lr(r.o, -1);
    ck_assert_int_eq(tg_optim_step(r.o), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_optim_step", "lr is -1; expected a finite value >= 0");
    tg_optim_set_lr(r.o, c->cfg.lr);
    ck_assert_ptr_nonnull(tg_model_add_param(r.m, "late", TG_F64, TG_DIMS(1)));
    ck_assert_int_eq(tg_optim_step(r.o), TG_ERR_STATE);
    tt_expect_last(TG_ERR_STATE, "tg_optim_step", "the model has 3 parameters");
    ck_assert(tt_max_rel_err(r.p[0], fx.init[0]) == 0);
    ck_assert_double_eq(tg_tensor_item(state_named(r.o, "optim/step")), 0);
    ck_assert_int_eq(tg_optim_step(NULL), TG_ERR_ARG);
    run_free(&r);
}
END_TEST

/* Every allocation of tg_optim_new failing in turn: NULL with an out-of-memory status,
 * and (under ASan) nothing leaked on the way out. */
START_TEST(test_new_out_of_memory)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(tg_model_add_param(m, "a", TG_F32, TG_DIMS(3, 4)));
    ck_assert_ptr_nonnull(tg_model_add_param(m, "b", TG_F64, TG_DIMS(5)));
    tg_optim *o = NULL;
    int64_t fail_at;
    for (fail_at = 1; !o; fail_at++) {
        ck_assert(fail_at < 100);
        tt_count_allocations();
        tt_fail_in = fail_at;
        o = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3, .amsgrad = true});
        tg_set_allocator(NULL);
        if (!o)
            ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    }
    ck_assert_int_ge(fail_at, 10); /* several allocations were each made to fail */
    ck_assert_int_eq(tg_optim_num_state(o), 9);
    tg_optim_free(o);
    tg_model_free(m);
}
END_TEST

static Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    TCase *tc = tt_tcase("optim");
    tcase_add_test(tc, test_f64_matches_pytorch);
    tcase_add_test(tc, test_f32_matches_pytorch);
    tcase_add_test(tc, test_reference_is_discriminating);
    tcase_add_test(tc, test_params_without_grad_are_skipped);
    tcase_add_test(tc, test_state_names_shapes_dtypes);
    tcase_add_test(tc, test_resume_continues_bitwise);
    tcase_add_test(tc, test_resume_without_state_differs);
    tcase_add_test(tc, test_step_allocates_nothing);
    tcase_add_test(tc, test_step_is_an_in_place_write);
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_bad_configs);
    tcase_add_test(tc, test_defaults_and_accessors);
    tcase_add_test(tc, test_adamw_weight_decay_default);
    tcase_add_test(tc, test_step_errors_change_nothing);
    tcase_add_test(tc, test_new_out_of_memory);
    suite_add_tcase(s, tc);
    return s;
}

int main(void) { return tt_run(optim_suite()); }
