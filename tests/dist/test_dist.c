/* tests/dist/test_dist.c — tapegrad/dist.h under `mpirun -np 2` (or more).
 *
 * A plain program rather than a Check suite: Check forks for each test, and an MPI
 * process must not fork and go on. Every rank runs every check; a failure prints the
 * rank and the check and makes the rank exit 1, which makes mpirun end the job.
 *
 * The main check is the one data-parallel training rests on: N ranks, each training on
 * its 1/N of a global batch with synchronised batch norm and averaged gradients, end 3
 * SGD steps with the parameters one process gets on the whole batch (float32: within
 * 1e-4 of each tensor's scale); with per-rank batch norm they differ, as documented. */
#include "tapegrad.h"
#include "tapegrad/dist.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int rank_ = -1;
#define CHECK(cond, ...)                                                            \
    do {                                                                            \
        if (!(cond)) {                                                              \
            fprintf(stderr, "test_dist: rank %d: %s:%d: check failed: %s: ", rank_, \
                    __FILE__, __LINE__, #cond);                                     \
            fprintf(stderr, __VA_ARGS__);                                           \
            fprintf(stderr, "\n");                                                  \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static void test_shard(tg_dist *d)
{
    int p = tg_dist_size(d), r = tg_dist_rank(d);
    int64_t first = -1, count = -1;
    CHECK(tg_dist_shard(d, 10 * p, &first, &count) == TG_OK, "%s", tg_last_error());
    CHECK(first == 10 * r && count == 10, "shard of %d: first %lld count %lld", 10 * p, (long long)first,
          (long long)count);
    if (p > 1) {
        CHECK(tg_dist_shard(d, 10 * p + 1, &first, &count) == TG_ERR_ARG, "an uneven batch was split");
        char want[200];
        snprintf(want, sizeof want, "a global batch of %d does not split into %d equal shares", 10 * p + 1, p);
        CHECK(strstr(tg_last_error(), want), "message: %s", tg_last_error());
    }
}

static void test_check_same_and_sum(tg_dist *d)
{
    const char same[] = "--epochs 5";
    CHECK(tg_dist_check_same(d, "config", same, sizeof same) == TG_OK, "%s", tg_last_error());
    char mine[32];
    snprintf(mine, sizeof mine, "--seed %d", tg_dist_rank(d));
    tg_status st = tg_dist_check_same(d, "config", mine, strlen(mine));
    if (tg_dist_size(d) > 1)
        CHECK(st == TG_ERR_ARG && strstr(tg_last_error(), "rank 1's config differs from rank 0's"), "%s",
              tg_last_error());
    double v[2] = {1, tg_dist_rank(d)};
    CHECK(tg_dist_sum(d, v, 2) == TG_OK, "%s", tg_last_error());
    int p = tg_dist_size(d);
    CHECK(v[0] == p && v[1] == p * (p - 1) / 2.0, "sum %g %g", v[0], v[1]);
}

static tg_vgg *small_net(tg_bn_placement bn, uint64_t seed)
{
    tg_rng g = tg_rng_new(seed);
    tg_vgg *net = tg_vgg_new(&(tg_vgg_config){.num_stages = 2, .num_blocks_per_stage = 1, .num_filters = 8,
                                              .in_channels = 1, .num_classes = 10, .bn = bn},
                             &g);
    CHECK(net, "%s", tg_last_error());
    return net;
}

/* every parameter and buffer of a against b: the worst |a - b| / max|b| */
static double model_diff(const tg_model *a, const tg_model *b)
{
    double worst = 0;
    for (int pass = 0; pass < 2; pass++) {
        int n = pass ? tg_model_num_buffers(a) : tg_model_num_params(a);
        for (int i = 0; i < n; i++) {
            const tg_tensor *x = pass ? tg_model_buffer(a, i) : tg_model_param(a, i);
            const tg_tensor *y = pass ? tg_model_buffer(b, i) : tg_model_param(b, i);
            int64_t k = tg_tensor_numel(x);
            const float *xv = tg_tensor_data(x), *yv = tg_tensor_data(y);
            double scale = 0, err = 0;
            if (x->dtype != TG_F32)
                continue; /* num_batches_tracked and such */
            for (int64_t j = 0; j < k; j++) {
                scale = fmax(scale, fabs(yv[j]));
                err = fmax(err, fabs((double)xv[j] - yv[j]));
            }
            worst = fmax(worst, scale > 0 ? err / scale : err);
        }
    }
    return worst;
}

/* 3 SGD steps on images [first, first + count) of the global batch (x, y) */
static void train(tg_vgg *net, tg_dist *d, bool sync, const tg_tensor *x, const tg_tensor *y, int64_t first,
                  int64_t count)
{
    tg_model *m = tg_vgg_model(net);
    /* SGD, not Adam: a conv bias right before batch norm has a gradient of rounding
     * noise (zero in exact arithmetic), which Adam would turn into full steps of either
     * sign */
    tg_optim *opt = tg_optim_new(m, &(tg_optim_config){.kind = TG_SGD, .lr = 0.1, .momentum = 0.9});
    tg_tape *tp = tg_tape_new(0);
    if (d)
        tg_dist_sync_batch_norm(d, tp, sync);
    tg_tensor *xs = tg_tensor_slice(NULL, x, 0, first, first + count, 1);
    tg_tensor *ys = tg_tensor_slice(NULL, y, 0, first, first + count, 1);
    for (int step = 0; step < 3; step++) {
        tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, xs), ys);
        CHECK(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
        if (d)
            CHECK(tg_dist_average_grads(d, m) == TG_OK, "%s", tg_last_error());
        CHECK(tg_optim_step(opt) == TG_OK, "%s", tg_last_error());
        tg_model_zero_grad(m);
        tg_tape_reset(tp);
    }
    tg_tensor_free(xs), tg_tensor_free(ys);
    tg_tape_free(tp);
    tg_optim_free(opt);
}

static void test_training_equals_one_process(tg_dist *d)
{
    const int p = tg_dist_size(d);
    const int64_t batch = 4 * p;
    tg_rng g = tg_rng_new(7); /* the same data on every rank */
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(batch, 1, 8, 8));
    tg_tensor *y = tg_tensor_empty(NULL, TG_I32, TG_DIMS(batch));
    int32_t *yl = tg_tensor_data(y);
    for (int64_t i = 0; i < batch; i++)
        yl[i] = (int32_t)(i % 10);

    /* the reference: one process, the whole batch */
    tg_vgg *ref = small_net(TG_BN_BEFORE, 1);
    train(ref, NULL, false, x, y, 0, batch);

    int64_t first, count;
    CHECK(tg_dist_shard(d, batch, &first, &count) == TG_OK, "%s", tg_last_error());
    for (int sync = 1; sync >= 0; sync--) {
        /* every rank starts from other weights, then takes rank 0's */
        tg_vgg *net = small_net(TG_BN_BEFORE, 1 + 100 * (uint64_t)tg_dist_rank(d));
        CHECK(tg_dist_broadcast_model(d, tg_vgg_model(net)) == TG_OK, "%s", tg_last_error());
        tg_vgg *start = small_net(TG_BN_BEFORE, 1);
        CHECK(model_diff(tg_vgg_model(net), tg_vgg_model(start)) == 0, "the broadcast did not give rank 0's weights");
        tg_vgg_free(start);
        train(net, d, sync, x, y, first, count);
        double diff = model_diff(tg_vgg_model(net), tg_vgg_model(ref));
        if (sync)
            CHECK(diff < 1e-4, "%d ranks with synchronised batch norm differ from one process by %g", p, diff);
        else if (p > 1)
            CHECK(diff > 1e-3, "per-rank batch norm should differ from one process, differs by %g", diff);
        /* and every rank holds the same model */
        const tg_model *m = tg_vgg_model(net);
        for (int i = 0; i < tg_model_num_params(m); i++) {
            const tg_tensor *w = tg_model_param(m, i);
            CHECK(tg_dist_check_same(d, tg_model_param_name(m, i), tg_tensor_data(w),
                                     (size_t)tg_tensor_numel(w) * tg_dtype_size(w->dtype)) == TG_OK,
                  "%s", tg_last_error());
        }
        if (tg_dist_rank(d) == 0)
            printf("test_dist: %d ranks, %s batch norm: 3 SGD steps within %.2g of one process\n", p,
                   sync ? "synchronised" : "per-rank", diff);
        tg_vgg_free(net);
    }
    tg_vgg_free(ref);
    tg_tensor_free(x), tg_tensor_free(y);
}

static void test_mismatched_models(tg_dist *d)
{
    if (tg_dist_size(d) < 2)
        return;
    tg_rng g = tg_rng_new(3);
    tg_vgg *net = tg_vgg_new(&(tg_vgg_config){.num_stages = 2, .num_filters = tg_dist_rank(d) ? 8 : 4,
                                              .in_channels = 1, .num_classes = 10},
                             &g);
    tg_status st = tg_dist_broadcast_model(d, tg_vgg_model(net));
    CHECK(st == TG_ERR_SHAPE && strstr(tg_last_error(), "model (parameter names, dtypes and shapes)"),
          "status %d: %s", (int)st, tg_last_error());
    tg_vgg_free(net);
}

int main(int argc, char **argv)
{
    tg_dist *d = tg_dist_init(&argc, &argv);
    CHECK(d, "%s", tg_last_error());
    rank_ = tg_dist_rank(d);
    test_shard(d);
    test_check_same_and_sum(d);
    test_training_equals_one_process(d);
    test_mismatched_models(d);
    if (rank_ == 0)
        printf("test_dist: all checks passed on %d ranks\n", tg_dist_size(d));
    tg_dist_free(d);
    return 0;
}
