/* tapegrad.h — the whole library in one include.
 *
 *   #include <tapegrad.h>
 *   cc prog.c $(pkg-config --cflags --libs tapegrad)
 *
 * Modules, each with its own header and usage example at the top:
 *   tapegrad/tensor.h     strided tensors, kernels (BLIS, OpenMP), arena, random generator
 *   tapegrad/autograd.h   the tape: differentiable ops, backward, gradcheck, inspection
 *   tapegrad/nn.h         layers from primitives, models, initialisers, VGG, checkpoints
 *   tapegrad/optim.h      SGD, Adam, AdamW, learning-rate schedules
 *   tapegrad/datasets.h   CIFAR and IDX readers, train/validation split, augmented batches
 *   tapegrad/version.h    TG_VERSION_MAJOR, _MINOR, _PATCH (tg_version() is the library's)
 *
 * Not included here: tapegrad/tensor_advanced.h (arena marks and the tensor's hooks,
 * for a layer built on the tensor module, as the tape is).
 */
#ifndef TAPEGRAD_H
#define TAPEGRAD_H

#include "tapegrad/tensor.h"
#include "tapegrad/autograd.h"
#include "tapegrad/nn.h"
#include "tapegrad/optim.h"
#include "tapegrad/datasets.h"

#endif
