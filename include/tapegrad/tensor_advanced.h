/* tapegrad/tensor_advanced.h — what a layer built on the tensor module needs and a
 * program using it does not: arena marks, and the tensor's hooks for the layer above.
 *
 * Who needs it: code that manages memory across many kernel calls as the tape does
 * (autograd/ gives back a backward step's scratch with a mark), and a layer that hangs
 * its own bookkeeping on tensors (the tape's records and leaves). A training loop,
 * a custom op or a data pipeline needs only <tapegrad.h>, which does not include this
 * header; include it on purpose:
 *
 *   #include <tapegrad.h>
 *   #include <tapegrad/tensor_advanced.h>
 *
 *   uint64_t mark = tg_arena_mark(ar);
 *   ...                                        // kernels take large scratch blocks
 *   tg_arena_release_since(ar, mark, (const void *[]){result->storage}, 1);
 *
 * The hooks. A tg_tensor (tapegrad/tensor.h) ends with two fields for the layer above,
 * which tensor.h does not document for everyday use:
 *   void *user;                            free for that layer: the tape points it at
 *                                          the record that made the tensor, or at a
 *                                          leaf's gradient bookkeeping
 *   void (*user_free)(struct tg_tensor *); called by tg_tensor_free before the header
 *                                          goes, so the layer can free what it hung on
 *                                          `user` (a leaf's gradient)
 * A new tensor has both NULL, and views do not inherit them (a view is another
 * header). A tensor's hooks belong to one layer: a tensor made a leaf (tg_requires_grad)
 * or recorded on a tape already has them set, and setting them again would make the
 * tape lose track of it.
 */
#ifndef TAPEGRAD_TENSOR_ADVANCED_H
#define TAPEGRAD_TENSOR_ADVANCED_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ arena marks */

/* A scope for scratch: tg_arena_mark, then allocations, then tg_arena_release_since
 * gives back every large block (TG_ARENA_LARGE bytes and up) taken after the mark
 * except the `nkeep` storages or blocks in `keep` (a tensor's storage:
 * (const void *)t->storage). Small blocks stay until the reset. */
uint64_t tg_arena_mark(const tg_arena *ar);
void tg_arena_release_since(tg_arena *ar, uint64_t mark, const void *const *keep, int nkeep);
/* Whether block (a pointer tg_arena_alloc returned, or a tensor's storage) is a large
 * block taken after mark and not given back. */
bool tg_arena_taken_since(const tg_arena *ar, uint64_t mark, const void *block);

#ifdef __cplusplus
}
#endif
#endif
