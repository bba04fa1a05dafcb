/* dist/dist.c — data-parallel training over MPI (tapegrad/dist.h).
 *
 * One communicator of our own (a duplicate of MPI_COMM_WORLD) with MPI_ERRORS_RETURN,
 * so that a failing call comes back as a tg_status with MPI's message instead of
 * aborting inside MPI. Gradients travel in one flat buffer per dtype (one MPI_Allreduce
 * a step for a float32 model), kept between steps so that a step allocates nothing.
 */
#include "tapegrad/dist.h"

#include <mpi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct tg_dist {
    MPI_Comm comm;
    int rank, size;
    bool we_initialised; /* tg_dist_init ran MPI_Init_thread: tg_dist_free finalises */
    void *buf;           /* the flat gradient buffer, grown as needed */
    size_t buf_size;
};

/* a failed MPI call: TG_ERR_IO, naming the function, the rank and MPI's reason */
static tg_status mpi_fail(const tg_dist *d, const char *fn, const char *call, int rc)
{
    char why[MPI_MAX_ERROR_STRING] = "";
    int len = 0;
    MPI_Error_string(rc, why, &len);
    return tg_set_error_in(TG_ERR_IO, fn, "rank %d of %d: %s failed: %s", d ? d->rank : -1, d ? d->size : -1,
                        call, why);
}

tg_dist *tg_dist_init(int *argc, char ***argv)
{
    int initialised = 0, provided = 0;
    MPI_Initialized(&initialised);
    tg_dist *d = calloc(1, sizeof *d);
    if (!d) {
        tg_set_error_in(TG_ERR_NOMEM, "tg_dist_init", "out of memory");
        return NULL;
    }
    d->comm = MPI_COMM_NULL;
    if (!initialised) {
        int rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided);
        if (rc != MPI_SUCCESS) {
            mpi_fail(NULL, "tg_dist_init", "MPI_Init_thread", rc);
            free(d);
            return NULL;
        }
        d->we_initialised = true;
    }
    int rc = MPI_Comm_dup(MPI_COMM_WORLD, &d->comm);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_set_errhandler(d->comm, MPI_ERRORS_RETURN);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_rank(d->comm, &d->rank);
    if (rc == MPI_SUCCESS)
        rc = MPI_Comm_size(d->comm, &d->size);
    if (rc != MPI_SUCCESS) {
        mpi_fail(d, "tg_dist_init", "setting up the communicator", rc);
        tg_dist_free(d);
        return NULL;
    }
    return d;
}

void tg_dist_free(tg_dist *d)
{
    if (!d)
        return;
    int finalised = 0;
    MPI_Finalized(&finalised);
    if (!finalised && d->comm != MPI_COMM_NULL)
        MPI_Comm_free(&d->comm);
    if (!finalised && d->we_initialised)
        MPI_Finalize();
    free(d->buf);
    free(d);
}

_Noreturn void tg_dist_abort(tg_dist *d, int status)
{
    fflush(NULL);
    MPI_Abort(d ? d->comm : MPI_COMM_WORLD, status);
    _Exit(status); /* MPI_Abort does not return; this is for a broken MPI */
}

int tg_dist_rank(const tg_dist *d) { return d ? d->rank : 0; }
int tg_dist_size(const tg_dist *d) { return d ? d->size : 1; }

tg_status tg_dist_shard(const tg_dist *d, int64_t global, int64_t *first, int64_t *count)
{
    if (!d || !first || !count)
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_shard", "%s is NULL", !d ? "the job" : "an output");
    if (global <= 0 || global % d->size)
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_shard", "a global batch of %lld does not split into %d equal "
                            "shares (one per rank); choose a batch size that is a multiple of %d",
                            (long long)global, d->size, d->size);
    *count = global / d->size;
    *first = *count * d->rank;
    return TG_OK;
}

/* ------------------------------------------------------------------ agreement */

/* FNV-1a over the bytes, and their length beside it */
static uint64_t fnv1a(const void *bytes, size_t n)
{
    const unsigned char *p = bytes;
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 0x100000001b3u;
    return h;
}

tg_status tg_dist_check_same(tg_dist *d, const char *what, const void *bytes, size_t n)
{
    if (!d || (!bytes && n))
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_check_same", "%s is NULL", !d ? "the job" : "the data");
    uint64_t mine[2] = {fnv1a(bytes, n), (uint64_t)n};
    uint64_t *all = malloc(sizeof mine * (size_t)d->size);
    if (!all)
        return tg_set_error_in(TG_ERR_NOMEM, "tg_dist_check_same", "out of memory");
    int rc = MPI_Allgather(mine, 2, MPI_UINT64_T, all, 2, MPI_UINT64_T, d->comm);
    if (rc != MPI_SUCCESS) {
        free(all);
        return mpi_fail(d, "tg_dist_check_same", "MPI_Allgather", rc);
    }
    int differs = -1;
    for (int k = 1; k < d->size && differs < 0; k++)
        if (all[2 * k] != all[0] || all[2 * k + 1] != all[1])
            differs = k;
    free(all);
    if (differs >= 0)
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_check_same", "rank %d's %s differs from rank 0's (all ranks must "
                            "run the same program on the same settings)", differs, what ? what : "data");
    return TG_OK;
}

/* The model's layout (names, dtypes, shapes of parameters and buffers) as text. */
static char *model_layout(const tg_model *m, size_t *len)
{
    size_t cap = 256, n = 0;
    char *s = malloc(cap);
    for (int pass = 0; s && pass < 2; pass++) {
        int count = pass ? tg_model_num_buffers(m) : tg_model_num_params(m);
        for (int i = 0; s && i < count; i++) {
            const tg_tensor *t = pass ? tg_model_buffer(m, i) : tg_model_param(m, i);
            const char *name = pass ? tg_model_buffer_name(m, i) : tg_model_param_name(m, i);
            char shape[160];
            tg_shape_str(shape, sizeof shape, t->ndim, t->shape);
            size_t need = strlen(name) + strlen(shape) + 32;
            if (n + need > cap) {
                char *grown = realloc(s, cap = 2 * (n + need));
                if (!grown) {
                    free(s);
                    return NULL;
                }
                s = grown;
            }
            n += (size_t)snprintf(s + n, cap - n, "%c %s %s %s\n", pass ? 'b' : 'p', name,
                                  tg_dtype_name(t->dtype), shape);
        }
    }
    *len = n;
    return s;
}

/* ------------------------------------------------------------------ broadcasts */

static tg_status bcast_bytes(tg_dist *d, const char *fn, void *p, size_t n)
{
    char *c = p;
    while (n > 0) {
        int part = n > (size_t)1 << 30 ? 1 << 30 : (int)n;
        int rc = MPI_Bcast(c, part, MPI_BYTE, 0, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(d, fn, "MPI_Bcast", rc);
        c += part;
        n -= (size_t)part;
    }
    return TG_OK;
}

static tg_status bcast_tensor(tg_dist *d, const char *fn, tg_tensor *t)
{
    size_t n = (size_t)tg_tensor_numel(t) * tg_dtype_size(t->dtype);
    if (tg_tensor_is_contiguous(t))
        return bcast_bytes(d, fn, tg_tensor_data(t), n);
    tg_tensor *tmp = tg_tensor_clone(NULL, t); /* contiguous */
    if (!tmp)
        return tg_last_status();
    tg_status st = bcast_bytes(d, fn, tg_tensor_data(tmp), n);
    if (st == TG_OK)
        st = tg_tensor_copy_(t, tmp);
    tg_tensor_free(tmp);
    return st;
}

tg_status tg_dist_broadcast_model(tg_dist *d, tg_model *m)
{
    if (!d || !m)
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_broadcast_model", "%s is NULL", !d ? "the job" : "the model");
    size_t len = 0;
    char *layout = model_layout(m, &len);
    if (!layout)
        return tg_set_error_in(TG_ERR_NOMEM, "tg_dist_broadcast_model", "out of memory");
    tg_status st = tg_dist_check_same(d, "model (parameter names, dtypes and shapes)", layout, len);
    free(layout);
    if (st != TG_OK) /* models that differ are a shape mismatch; MPI's or memory's failure keeps its status */
        return tg_set_error_in(st == TG_ERR_ARG ? TG_ERR_SHAPE : st, "tg_dist_broadcast_model", "%s",
                               tg_last_error_info()->detail);
    for (int i = 0; st == TG_OK && i < tg_model_num_params(m); i++)
        st = bcast_tensor(d, "tg_dist_broadcast_model", tg_model_param(m, i));
    for (int i = 0; st == TG_OK && i < tg_model_num_buffers(m); i++)
        st = bcast_tensor(d, "tg_dist_broadcast_model", tg_model_buffer(m, i));
    return st;
}

tg_status tg_dist_broadcast_tensors(tg_dist *d, int n, tg_tensor *const *t)
{
    if (!d || (n > 0 && !t))
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_broadcast_tensors", "%s is NULL", !d ? "the job" : "the list");
    tg_status st = TG_OK;
    for (int i = 0; st == TG_OK && i < n; i++)
        st = t[i] ? bcast_tensor(d, "tg_dist_broadcast_tensors", t[i])
                  : tg_set_error_in(TG_ERR_ARG, "tg_dist_broadcast_tensors", "tensor %d is NULL", i);
    return st;
}

/* ------------------------------------------------------------------ reductions */

tg_status tg_dist_sum(tg_dist *d, double *values, int n)
{
    if (!d || (n > 0 && !values))
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_sum", "%s is NULL", !d ? "the job" : "values");
    if (n <= 0)
        return TG_OK;
    int rc = MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, d->comm);
    return rc == MPI_SUCCESS ? TG_OK : mpi_fail(d, "tg_dist_sum", "MPI_Allreduce", rc);
}

static bool grow(tg_dist *d, size_t bytes)
{
    if (bytes <= d->buf_size)
        return true;
    void *p = realloc(d->buf, bytes);
    if (!p)
        return false;
    d->buf = p;
    d->buf_size = bytes;
    return true;
}

/* The gradients of the parameters of dtype dt averaged over the ranks; has[i] says
 * whether parameter i has a gradient on some rank. */
static tg_status average_dtype(tg_dist *d, tg_model *m, tg_dtype dt, const int *has)
{
    const int np = tg_model_num_params(m);
    const size_t es = tg_dtype_size(dt);
    int64_t total = 0;
    for (int i = 0; i < np; i++)
        if (tg_model_param(m, i)->dtype == dt && has[i])
            total += tg_tensor_numel(tg_model_param(m, i));
    if (total == 0)
        return TG_OK;
    if (!grow(d, (size_t)total * es))
        return tg_set_error_in(TG_ERR_NOMEM, "tg_dist_average_grads", "out of memory for %lld gradient values",
                            (long long)total);
    char *p = d->buf;
    for (int i = 0; i < np; i++) {
        const tg_tensor *w = tg_model_param(m, i);
        if (w->dtype != dt || !has[i])
            continue;
        size_t bytes = (size_t)tg_tensor_numel(w) * es;
        const tg_tensor *g = tg_grad(w);
        if (g)
            memcpy(p, tg_tensor_data(g), bytes); /* a leaf's gradient is contiguous */
        else
            memset(p, 0, bytes);
        p += bytes;
    }
    MPI_Datatype type = dt == TG_F32 ? MPI_FLOAT : MPI_DOUBLE;
    for (int64_t done = 0; done < total;) {
        int part = total - done > (INT64_C(1) << 28) ? 1 << 28 : (int)(total - done);
        int rc = MPI_Allreduce(MPI_IN_PLACE, (char *)d->buf + (size_t)done * es, part, type, MPI_SUM, d->comm);
        if (rc != MPI_SUCCESS)
            return mpi_fail(d, "tg_dist_average_grads", "MPI_Allreduce", rc);
        done += part;
    }
    p = d->buf;
    const double scale = 1.0 / d->size;
    for (int i = 0; i < np; i++) {
        const tg_tensor *w = tg_model_param(m, i);
        if (w->dtype != dt || !has[i])
            continue;
        int64_t n = tg_tensor_numel(w);
        tg_tensor *g = tg_grad(w);
        if (!g)
            return tg_set_error_in(TG_ERR_STATE, "tg_dist_average_grads", "parameter '%s' has a gradient on another "
                                "rank and none on rank %d: the ranks ran different graphs",
                                tg_model_param_name(m, i), d->rank);
        if (dt == TG_F32) {
            float *dst = tg_tensor_data(g);
            const float *src = (const float *)p, s = (float)scale;
            for (int64_t k = 0; k < n; k++)
                dst[k] = src[k] * s;
        } else {
            double *dst = tg_tensor_data(g);
            const double *src = (const double *)p;
            for (int64_t k = 0; k < n; k++)
                dst[k] = src[k] * scale;
        }
        p += (size_t)n * es;
    }
    return TG_OK;
}

tg_status tg_dist_average_grads(tg_dist *d, tg_model *m)
{
    if (!d || !m)
        return tg_set_error_in(TG_ERR_ARG, "tg_dist_average_grads", "%s is NULL", !d ? "the job" : "the model");
    const int np = tg_model_num_params(m);
    int *has = calloc((size_t)(np ? np : 1), sizeof *has);
    if (!has)
        return tg_set_error_in(TG_ERR_NOMEM, "tg_dist_average_grads", "out of memory");
    for (int i = 0; i < np; i++)
        has[i] = tg_grad(tg_model_param(m, i)) != NULL;
    int rc = np ? MPI_Allreduce(MPI_IN_PLACE, has, np, MPI_INT, MPI_MAX, d->comm) : MPI_SUCCESS;
    tg_status st = rc == MPI_SUCCESS ? TG_OK : mpi_fail(d, "tg_dist_average_grads", "MPI_Allreduce", rc);
    if (st == TG_OK)
        st = average_dtype(d, m, TG_F32, has);
    if (st == TG_OK)
        st = average_dtype(d, m, TG_F64, has);
    free(has);
    return st;
}

/* ------------------------------------------------------------------ batch norm */

static tg_status sync_gather(void *ctx, const double *mine, double *all, int n)
{
    tg_dist *d = ctx;
    int rc = MPI_Allgather(mine, n, MPI_DOUBLE, all, n, MPI_DOUBLE, d->comm);
    return rc == MPI_SUCCESS ? TG_OK : mpi_fail(d, "synchronised batch norm", "MPI_Allgather", rc);
}

static tg_status sync_sum(void *ctx, double *values, int n)
{
    tg_dist *d = ctx;
    int rc = MPI_Allreduce(MPI_IN_PLACE, values, n, MPI_DOUBLE, MPI_SUM, d->comm);
    return rc == MPI_SUCCESS ? TG_OK : mpi_fail(d, "synchronised batch norm", "MPI_Allreduce", rc);
}

void tg_dist_sync_batch_norm(tg_dist *d, tg_tape *tp, bool on)
{
    if (!d || !tp)
        return;
    if (on)
        tg_tape_set_stat_sync(tp, &(tg_stat_sync){.size = d->size, .gather = sync_gather, .sum = sync_sum, .ctx = d});
    else
        tg_tape_set_stat_sync(tp, NULL);
}
