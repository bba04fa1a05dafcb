/* tests/autograd/test_stat_sync.c — synchronised batch norm (tg_stat_sync) without MPI:
 * P threads stand for P processes, each with its own tape and its shard of one batch,
 * their gather and sum meeting at a barrier. Batch norm over the shards together must
 * give what one tape gives over the whole batch: the same output, the same input
 * gradient, and gamma/beta gradients that add up to the whole batch's (each process
 * keeps its own, for the caller to average). In f64 to 1e-11, with a large offset in x
 * that a sum of squares would lose; and the running statistics of nn's layer equal. */
#include "check_util.h"

#include <pthread.h>

enum { MAX_P = 4, N = 8, C = 3, H = 5, W = 4 };

typedef struct meeting {
    int p;
    pthread_barrier_t barrier;
    double *slot[MAX_P]; /* each process's contribution */
    int n;
    int calls; /* gathers + sums seen by process 0 */
} meeting;

typedef struct member {
    meeting *m;
    int rank;
} member;

static tg_status gather(void *ctx, const double *mine, double *all, int n)
{
    member *me = ctx;
    meeting *m = me->m;
    m->slot[me->rank] = (double *)mine;
    pthread_barrier_wait(&m->barrier);
    for (int k = 0; k < m->p; k++)
        memcpy(all + (size_t)k * n, m->slot[k], (size_t)n * sizeof *all);
    m->calls += me->rank == 0;
    pthread_barrier_wait(&m->barrier);
    return TG_OK;
}

static tg_status sum(void *ctx, double *values, int n)
{
    member *me = ctx;
    meeting *m = me->m;
    double *copy = malloc((size_t)n * sizeof *copy);
    memcpy(copy, values, (size_t)n * sizeof *copy);
    m->slot[me->rank] = copy;
    pthread_barrier_wait(&m->barrier);
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int k = 0; k < m->p; k++) /* process order: every process gets the same bits */
            s += m->slot[k][i];
        values[i] = s;
    }
    m->calls += me->rank == 0;
    pthread_barrier_wait(&m->barrier);
    free(copy);
    return TG_OK;
}

/* The whole batch on one tape: y, dx, dgamma, dbeta of loss = sum(y * w). */
typedef struct result {
    double *y, *dx, *dgamma, *dbeta;
} result;

static void free_result(result *r)
{
    free(r->y), free(r->dx), free(r->dgamma), free(r->dbeta);
}

static result run(tg_tape *tp, const tg_tensor *x_in, const tg_tensor *w, const tg_tensor *gamma_in,
                  const tg_tensor *beta_in)
{
    tg_tensor *x = tg_tensor_clone(NULL, x_in), *gamma = tg_tensor_clone(NULL, gamma_in);
    tg_tensor *beta = tg_tensor_clone(NULL, beta_in);
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(gamma, "gamma"), TG_OK);
    ck_assert_int_eq(tg_requires_grad(beta, "beta"), TG_OK);
    tg_tensor *y = tg_batch_norm2d(tp, x, gamma, beta, 1e-5, NULL, NULL);
    tg_tensor *loss = tg_sum(tp, tg_mul(tp, y, (tg_tensor *)w), 0, NULL, false);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    result r = {tt_values(y), tt_values(tg_grad(x)), tt_values(tg_grad(gamma)), tt_values(tg_grad(beta))};
    tg_tape_reset(tp);
    tg_tensor_free(x), tg_tensor_free(gamma), tg_tensor_free(beta);
    return r;
}

typedef struct job {
    member me;
    const tg_tensor *x, *w, *gamma, *beta; /* this process's shard of x and w */
    result r;
} job;

static void *process(void *arg)
{
    job *j = arg;
    tg_tape *tp = tg_tape_new(0);
    tg_tape_set_stat_sync(tp, &(tg_stat_sync){.size = j->me.m->p, .gather = gather, .sum = sum, .ctx = &j->me});
    j->r = run(tp, j->x, j->w, j->gamma, j->beta);
    tg_tape_free(tp);
    return NULL;
}

/* x + offset, P processes of N / P images each */
static void check_sharded(int p, double offset)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, 4, (int64_t[]){N, C, H, W});
    tg_tensor *w = tt_rand_tensor(TG_F64, 4, (int64_t[]){N, C, H, W});
    tg_tensor *gamma = tt_rand_tensor(TG_F64, 1, (int64_t[]){C}), *beta = tt_rand_tensor(TG_F64, 1, (int64_t[]){C});
    tg_tensor *shift = tg_tensor_empty(NULL, TG_F64, 4, (int64_t[]){N, C, H, W});
    ck_assert_int_eq(tg_tensor_fill_(shift, offset), TG_OK);
    ck_assert_int_eq(tg_tensor_axpy_(x, 1, shift), TG_OK);
    tg_tensor_free(shift);
    tg_tape *tp = tg_tape_new(0);
    result whole = run(tp, x, w, gamma, beta);
    tg_tape_free(tp);

    meeting m = {.p = p};
    pthread_barrier_init(&m.barrier, NULL, (unsigned)p);
    job jobs[MAX_P];
    pthread_t th[MAX_P];
    const int64_t per = N / p;
    for (int k = 0; k < p; k++) {
        jobs[k] = (job){.me = {&m, k}, .gamma = gamma, .beta = beta,
                        .x = tg_tensor_slice(NULL, x, 0, k * per, (k + 1) * per, 1),
                        .w = tg_tensor_slice(NULL, w, 0, k * per, (k + 1) * per, 1)};
        ck_assert(pthread_create(&th[k], NULL, process, &jobs[k]) == 0);
    }
    for (int k = 0; k < p; k++)
        pthread_join(th[k], NULL);
    ck_assert_int_eq(m.calls, 2); /* one gather forward, one sum backward */

    const int64_t shard = per * C * H * W;
    double dgamma[C] = {0}, dbeta[C] = {0};
    for (int k = 0; k < p; k++) {
        for (int64_t i = 0; i < shard; i++) {
            double ye = fabs(jobs[k].r.y[i] - whole.y[k * shard + i]);
            double de = fabs(jobs[k].r.dx[i] - whole.dx[k * shard + i]);
            ck_assert_msg(ye < 1e-11 && de < 1e-11, "p %d offset %g process %d element %lld: y %.17g vs %.17g, "
                          "dx %.17g vs %.17g", p, offset, k, (long long)i, jobs[k].r.y[i], whole.y[k * shard + i],
                          jobs[k].r.dx[i], whole.dx[k * shard + i]);
        }
        for (int c = 0; c < C; c++) {
            dgamma[c] += jobs[k].r.dgamma[c];
            dbeta[c] += jobs[k].r.dbeta[c];
        }
    }
    for (int c = 0; c < C; c++) {
        ck_assert_double_eq_tol(dgamma[c], whole.dgamma[c], 1e-10); /* sums of 160 terms, x at 1e4 */
        ck_assert_double_eq_tol(dbeta[c], whole.dbeta[c], 1e-10);
        /* and one process's own is not the whole batch's: they are shards' sums */
        if (p > 1)
            ck_assert(fabs(jobs[0].r.dbeta[c] - whole.dbeta[c]) > 1e-6);
    }
    for (int k = 0; k < p; k++) {
        free_result(&jobs[k].r);
        tg_tensor_free((tg_tensor *)jobs[k].x), tg_tensor_free((tg_tensor *)jobs[k].w);
    }
    pthread_barrier_destroy(&m.barrier);
    free_result(&whole);
    tg_tensor_free(x), tg_tensor_free(w), tg_tensor_free(gamma), tg_tensor_free(beta);
}

START_TEST(test_sharded_equals_whole)
{
    static const int ps[] = {1, 2, 4};
    check_sharded(ps[_i % 3], _i < 3 ? 0 : 1e4);
}
END_TEST

/* Without a sync the shards normalise with their own statistics: not the whole batch's
 * (so the test above can fail). */
START_TEST(test_unsynced_differs)
{
    tg_tensor *x = tt_rand_tensor(TG_F64, 4, (int64_t[]){N, C, H, W});
    tg_tensor *w = tt_rand_tensor(TG_F64, 4, (int64_t[]){N, C, H, W});
    tg_tensor *gamma = tt_rand_tensor(TG_F64, 1, (int64_t[]){C}), *beta = tt_rand_tensor(TG_F64, 1, (int64_t[]){C});
    tg_tape *tp = tg_tape_new(0);
    result whole = run(tp, x, w, gamma, beta);
    tg_tensor *half = tg_tensor_slice(NULL, x, 0, 0, N / 2, 1), *whalf = tg_tensor_slice(NULL, w, 0, 0, N / 2, 1);
    result own = run(tp, half, whalf, gamma, beta);
    ck_assert(fabs(own.y[0] - whole.y[0]) > 1e-6);
    free_result(&whole), free_result(&own);
    tg_tape_free(tp);
    tg_tensor_free(x), tg_tensor_free(w), tg_tensor_free(gamma), tg_tensor_free(beta), tg_tensor_free(half),
        tg_tensor_free(whalf);
}
END_TEST

static tg_status failing_gather(void *ctx, const double *mine, double *all, int n)
{
    (void)ctx, (void)mine, (void)all, (void)n;
    return tg_set_error(TG_ERR_IO, "the other process is gone");
}

/* A failing gather is the tape's sticky error; the composed batch norm refuses a sync. */
START_TEST(test_errors)
{
    tg_tensor *x = tt_rand_tensor(TG_F32, 4, (int64_t[]){N, C, H, W});
    tg_tensor *gamma = tt_rand_tensor(TG_F32, 1, (int64_t[]){C}), *beta = tt_rand_tensor(TG_F32, 1, (int64_t[]){C});
    tg_tape *tp = tg_tape_new(0);
    tg_tape_set_stat_sync(tp, &(tg_stat_sync){.size = 2, .gather = failing_gather, .sum = sum});
    ck_assert_ptr_nonnull(tg_tape_stat_sync(tp));
    tg_batch_norm2d(tp, x, gamma, beta, 1e-5, NULL, NULL);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "gathering the batch statistics of 2 processes: the other "
                                                    "process is gone"));
    tg_tape_reset(tp);

    tg_model *m = tg_model_new();
    tg_nn_batch_norm2d bn;
    ck_assert_int_eq(tg_nn_batch_norm2d_init(&bn, m, "bn", C), TG_OK);
    tg_tape_set_fused(tp, false);
    tg_nn_batch_norm2d_forward(tp, &bn, x);
    ck_assert_int_eq(tg_tape_status(tp), TG_ERR_STATE);
    ck_assert_ptr_nonnull(strstr(tg_tape_error(tp), "need the fused batch norm"));
    tg_tape_reset(tp);
    tg_tape_set_stat_sync(tp, NULL);
    ck_assert_ptr_null(tg_tape_stat_sync(tp));
    ck_assert_ptr_nonnull(tg_nn_batch_norm2d_forward(tp, &bn, x));
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    tg_tape_free(tp);
    tg_model_free(m);
    tg_tensor_free(x), tg_tensor_free(gamma), tg_tensor_free(beta);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/stat_sync");
    TCase *tc = tt_tcase("batch norm");
    tcase_add_loop_test(tc, test_sharded_equals_whole, 0, 6);
    tcase_add_test(tc, test_unsynced_differs);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
