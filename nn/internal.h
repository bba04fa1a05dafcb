/* nn/internal.h — what the nn sources share. Built on the public tensor and autograd
 * APIs only; each part below belongs to the file named in its banner. */
#ifndef TAPEGRAD_NN_INTERNAL_H
#define TAPEGRAD_NN_INTERNAL_H

#include "tapegrad/autograd.h"
#include "tapegrad/nn.h"
#include "tapegrad/tensor.h"

/* -------------------------------------------------------- layers (nn/layers.c) */

/* The layer's name into dst (size bytes); an error naming fn when it is empty or does
 * not fit. */
tg_status tg__layer_name(char *dst, size_t size, const char *fn, const char *name);

/* An error naming fn when "<layer>/<what>" is already in m (layers check all their
 * names before making anything, so a failed init adds nothing). */
tg_status tg__layer_check_new(const char *fn, const tg_model *m, const char *layer, const char *what);

/* A parameter (param) or buffer "<layer>/<what>" of m; NULL + the model's error, naming fn. */
tg_tensor *tg__layer_add(const char *fn, tg_model *m, bool param, const char *layer,
                         const char *what, tg_dtype dt, int ndim, const int64_t *shape);


/* -------------------------------------------------------- the model (nn/model.c) */

/* Adds a layer made by fn (its parameters already in m) to m's list of layers; an error
 * naming fn when it cannot grow. */
tg_status tg__model_add_layer(tg_model *m, const char *fn, const char *name, tg_nn_kind kind,
                              tg_tensor *weight, tg_tensor *bias);

/* -------------------------------------------------------- safetensors (nn/safetensors.c) */

/* The safetensors reference implementation's cap on the JSON header. */
#define TG__SAFETENSORS_MAX_HEADER 100000000u

/* Validates a whole safetensors file held in memory (buf, len bytes: the 8-byte
 * length, the header, the data) and returns its tensors (heap copies) and metadata,
 * or NULL with an error "<label>: what was wrong" (label: the file name, or anything
 * naming the input). Never reads outside buf; the entry point for fuzzing. */
tg_safetensors *tg__safetensors_parse(const void *buf, size_t len, const char *label);

/* tg_safetensors_save with `fn` naming the public function in its messages. */
tg_status tg__safetensors_write(const char *fn, const char *path, int n, const char *const *names,
                                const tg_tensor *const *tensors, int nmeta, const tg_kv *meta);

/* tg_safetensors_load with `fn` naming the public function in its messages: the same
 * checks as tg__safetensors_parse, the header read and checked before the data. */
tg_safetensors *tg__safetensors_read(const char *fn, const char *path);

/* Index of the tensor called name, or -1. */
int tg__safetensors_index(const tg_safetensors *st, const char *name);

/* -------------------------------------------------------- end of safetensors */

/* -------------------------------------------------------- checkpoints (nn/checkpoint.c) */

/* The checks and copies of tg_checkpoint_load on a file already read (st, named path in
 * messages): every model tensor and extra present with its dtype and shape, nothing
 * else in the file, then the copies; on failure m and extra are untouched. The fuzz
 * target's entry after tg__safetensors_parse. */
tg_status tg__checkpoint_apply(const char *fn, const char *path, const tg_safetensors *st, tg_model *m,
                               int nextra, const char *const *extra_names, tg_tensor *const *extra);

#endif
