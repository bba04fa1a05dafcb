/* tapegrad/dist.h — data-parallel training over MPI: every process (rank) holds the
 * whole model, trains on its share of each global batch, and the ranks average their
 * gradients before each optimiser step, so N ranks take the steps one process would
 * take on the whole batch (up to float32 reduction order).
 *
 *   tg_dist *d = tg_dist_init(&argc, &argv);           // MPI_Init unless it ran already
 *   tg_dist_broadcast_model(d, model);                  // rank 0's parameters everywhere
 *   tg_dist_sync_batch_norm(d, tp, true);               // optional: one batch's statistics
 *   for each global batch of B images:
 *       int64_t first, count;
 *       tg_dist_shard(d, B, &first, &count);            // this rank's images: B / size of them
 *       ... forward and backward on those images (mean loss over them) ...
 *       tg_dist_average_grads(d, model);                // MPI_Allreduce, then / size
 *       tg_optim_step(opt);
 *   tg_dist_free(d);                                    // MPI_Finalize if tg_dist_init ran MPI_Init
 *
 * Built only when meson finds MPI (Debian: libopenmpi-dev, openmpi-bin); it is its own
 * library, `pkg-config --cflags --libs tapegrad-dist`, so that programs without it do
 * not link MPI. Run with `mpirun -np N program ...`.
 *
 * Batch norm: by default each rank normalises with its own shard's statistics (what
 * PyTorch's DistributedDataParallel does); tg_dist_sync_batch_norm makes the tape's
 * fused batch norm use every rank's batch together (one MPI_Allgather of per-channel
 * moments in forward, one MPI_Allreduce of two per-channel sums in backward), which
 * gives the single-process numbers.
 *
 * Errors: functions return a tg_status and leave a message in tg_last_error() naming
 * the function, the rank and MPI's own error string; MPI is told to return errors
 * instead of aborting. A rank that exits with an error makes `mpirun` end the job.
 * Every function here is collective unless it says otherwise: all ranks call it, in the
 * same order, with the same model shapes.
 */
#ifndef TAPEGRAD_DIST_H
#define TAPEGRAD_DIST_H

#include "tapegrad/autograd.h"
#include "tapegrad/nn.h"
#include "tapegrad/tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_dist tg_dist;

/* Joins the job: MPI_Init_thread (funneled) unless MPI is initialised already, and a
 * communicator of its own (a duplicate of MPI_COMM_WORLD). NULL + tg_last_error on
 * failure. argc/argv may be NULL. */
tg_dist *tg_dist_init(int *argc, char ***argv);
/* Leaves the job: frees the communicator, and finalises MPI if tg_dist_init
 * initialised it. NULL is ignored. Not collective when MPI stays initialised. */
void tg_dist_free(tg_dist *d);
/* Ends every rank of the job at once with exit status `status` (MPI_Abort): for a
 * rank that failed while the others may be waiting in a collective call, where a
 * plain exit would leave them waiting. Not collective; does not return. */
_Noreturn void tg_dist_abort(tg_dist *d, int status);
int tg_dist_rank(const tg_dist *d); /* 0 .. size - 1; not collective */
int tg_dist_size(const tg_dist *d); /* not collective */

/* The share of a global batch of `global` items that this rank takes: items
 * [*first, *first + *count), count = global / size. TG_ERR_ARG (a message naming the
 * batch size and the number of ranks) unless global is a positive multiple of size:
 * equal shares are what makes the ranks' averaged gradient the global batch's. Not
 * collective. */
tg_status tg_dist_shard(const tg_dist *d, int64_t global, int64_t *first, int64_t *count);

/* Rank 0's parameters and buffers (batch norm's running statistics) replace every
 * other rank's: call after building the model, before the first step. TG_ERR_SHAPE if
 * the ranks' models differ (parameter count, names, shapes or dtypes), checked first. */
tg_status tg_dist_broadcast_model(tg_dist *d, tg_model *m);
/* Rank 0's n tensors (contiguous or not) replace every rank's, e.g. an optimiser's
 * state after a checkpoint was loaded on rank 0 alone. Same shapes on every rank. */
tg_status tg_dist_broadcast_tensors(tg_dist *d, int n, tg_tensor *const *t);

/* Every parameter's gradient becomes the mean over the ranks of that gradient, in one
 * MPI_Allreduce over a flat buffer per dtype. A parameter no backward reached counts
 * as zeros on that rank; if it has no gradient on any rank it stays without one. */
tg_status tg_dist_average_grads(tg_dist *d, tg_model *m);

/* values[i] = the sum over the ranks of values[i], in f64: for evaluation totals
 * (correct counts, summed losses, image counts). */
tg_status tg_dist_sum(tg_dist *d, double *values, int n);

/* The tape's fused batch norm uses the statistics of every rank's batch together
 * (tg_tape_set_stat_sync); off restores per-rank statistics. Not collective itself,
 * but every rank must set the same. */
void tg_dist_sync_batch_norm(tg_dist *d, tg_tape *tp, bool on);

/* TG_OK when every rank passed the same bytes (a configuration, a library version),
 * else TG_ERR_ARG naming `what` and the first rank that differs from rank 0. */
tg_status tg_dist_check_same(tg_dist *d, const char *what, const void *bytes, size_t n);

#ifdef __cplusplus
}
#endif

#endif
