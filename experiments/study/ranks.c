/* experiments/study/ranks.c — `study train` as one rank of an MPI job.
 *
 *   mpirun -np 2 study train --batch-size 100 --sync-bn ...
 *
 * Started by mpirun (or srun), `study train` joins the job through tapegrad-dist: each
 * rank takes its share of every global batch, the ranks average their gradients before
 * each step, evaluation sums are added across ranks, and rank 0 alone owns the run
 * directory (lock, CSV files, checkpoints, plots, progress lines). Started any other
 * way it is one process, exactly as without MPI. Built without MPI (meson found none),
 * these functions are those of a job of one rank, and a start by mpirun is refused
 * rather than letting N copies train the same run.
 */
#include "train.h"

#include <stdlib.h>
#include <string.h>

#ifdef STUDY_HAVE_MPI
#include <tapegrad/dist.h>
static tg_dist *job; /* NULL: one process */
#endif

/* mpirun (Open MPI), PMI (MPICH, Slurm's srun) and PMIx set one of these in every rank */
static bool started_by_mpi(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i]))
            return true;
    return false;
}

tg_status study_ranks_join(void)
{
    if (!started_by_mpi())
        return TG_OK;
#ifdef STUDY_HAVE_MPI
    if (!job && !(job = tg_dist_init(NULL, NULL)))
        return tg_last_status();
    return TG_OK;
#else
    return tg_set_error(TG_ERR_STATE, "started by mpirun, but this study was built without MPI (install "
                        "libopenmpi-dev and rebuild); N copies would train the same run");
#endif
}

void study_ranks_leave(int status)
{
#ifdef STUDY_HAVE_MPI
    if (job && status != 0 && tg_dist_size(job) > 1)
        tg_dist_abort(job, status); /* the other ranks may be waiting in a collective */
    tg_dist_free(job);
    job = NULL;
#else
    (void)status;
#endif
}

int study_ranks_rank(void)
{
#ifdef STUDY_HAVE_MPI
    return tg_dist_rank(job);
#else
    return 0;
#endif
}

int study_ranks_size(void)
{
#ifdef STUDY_HAVE_MPI
    return tg_dist_size(job);
#else
    return 1;
#endif
}

void study_ranks_share(int64_t n, int64_t *first, int64_t *count)
{
    int64_t size = study_ranks_size(), rank = study_ranks_rank();
    *first = n * rank / size;
    *count = n * (rank + 1) / size - *first;
}

tg_status study_ranks_sum(double *values, int n)
{
#ifdef STUDY_HAVE_MPI
    if (job)
        return tg_dist_sum(job, values, n);
#endif
    (void)values, (void)n;
    return TG_OK;
}

tg_status study_ranks_average_grads(tg_model *m)
{
#ifdef STUDY_HAVE_MPI
    if (job)
        return tg_dist_average_grads(job, m);
#endif
    (void)m;
    return TG_OK;
}

tg_status study_ranks_broadcast(tg_model *m, int n, tg_tensor *const *state)
{
#ifdef STUDY_HAVE_MPI
    if (job) {
        tg_status st = tg_dist_broadcast_model(job, m);
        return st == TG_OK ? tg_dist_broadcast_tensors(job, n, state) : st;
    }
#endif
    (void)m, (void)n, (void)state;
    return TG_OK;
}

void study_ranks_sync_batch_norm(tg_tape *tp, bool on)
{
#ifdef STUDY_HAVE_MPI
    if (job)
        tg_dist_sync_batch_norm(job, tp, on);
#endif
    (void)tp, (void)on;
}
