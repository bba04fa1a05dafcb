/* tensor/fileio.h — reading a file whole and replacing a file atomically: the one
 * place where the library (datasets/, nn/) and the programs built with it
 * (experiments/study) touch files. Internal: never installed; the others include it by
 * its relative path ("../tensor/fileio.h", "../../tensor/fileio.h"). The writer is public
 * as tg_atomic_begin/commit/cancel (tensor.h) for programs outside the tree; these
 * forms take the name of the function to blame in messages.
 *
 *   uint8_t *data; size_t n;
 *   if (tg__read_file("datasets/cifar", path, 1u << 30, &data, &n) != TG_OK) ...;
 *   ... tg_mem_free(data);
 *
 *   tg_atomic_file w;                     (tensor.h's public type)
 *   if (tg__atomic_begin(&w, "tg_safetensors_save", path) != TG_OK) return tg_last_status();
 *   fwrite(..., w.f);                     (any stdio calls on w.f)
 *   return tg__atomic_commit(&w);         (or tg__atomic_cancel(&w) to give up)
 *
 * Reading opens with O_NONBLOCK (a FIFO or a device in a file's place is refused at
 * once instead of waited on forever), then refuses anything but a regular file, a file
 * over the caller's limit, and one that changes size while being read.
 *
 * Writing goes to a temporary file of a unique name beside the target
 * (PATH.tmp.XXXXXX, mkstemp: two writers, or a stale file of a fixed name, cannot
 * collide), which gets the mode of the file it replaces (else rw-r--r--), is flushed
 * and fsynced, renamed over the target, and then the directory is fsynced so that the
 * rename itself survives a crash. A reader sees the old file or the new one, never half
 * of one; a failure at any step removes the temporary and leaves the target as it was.
 *
 * Every error is set with tg_set_error and names `module` (what the user called) and
 * the path: "MODULE: PATH: what went wrong". */
#ifndef TAPEGRAD_TENSOR_FILEIO_H
#define TAPEGRAD_TENSOR_FILEIO_H

#include "tapegrad/tensor.h"

#include <stdint.h>
#include <stdio.h>

/* ------------------------------------------------------------------ reading */

/* Opens path for reading without blocking and checks that it is a regular file. The
 * descriptor (close it), *size its length; -1 and an error otherwise. */
int tg__open_regular(const char *module, const char *path, uint64_t *size);
/* Up to n bytes at offset `off` of fd into buf (retrying short reads); *got says how
 * many there were before the end of the file. */
tg_status tg__read_at(const char *module, const char *path, int fd, uint64_t off, void *buf, size_t n,
                      size_t *got);
/* The whole of a file tg__open_regular opened (fsize bytes, at most max) into a new
 * tg_mem_alloc'd buffer (*data, *size; free with tg_mem_free) with a NUL byte after
 * it, so text can be read as a string. A file that changed size meanwhile, or is
 * longer than max, is an error. */
tg_status tg__read_open_file(const char *module, const char *path, int fd, uint64_t fsize, size_t max,
                             uint8_t **data, size_t *size);
/* tg__open_regular, then tg__read_open_file. */
tg_status tg__read_file(const char *module, const char *path, size_t max, uint8_t **data, size_t *size);

/* ------------------------------------------------------------------ writing */

/* tg_atomic_begin naming `module` in its messages; on failure *w is empty. */
tg_status tg__atomic_begin(tg_atomic_file *w, const char *module, const char *path);
/* Checks that every write to w->f succeeded, flushes, fsyncs and closes it, renames it
 * over the target and fsyncs the directory. On any failure the temporary is removed and
 * the target is as it was. Either way *w is finished with. */
tg_status tg__atomic_commit(tg_atomic_file *w);
/* Gives up: closes and removes the temporary (a NULL or empty w is ignored). */
void tg__atomic_cancel(tg_atomic_file *w);
/* Replaces path with len bytes of data: begin, one write, commit. */
tg_status tg__write_file_atomic(const char *module, const char *path, const void *data, size_t len);

#endif
