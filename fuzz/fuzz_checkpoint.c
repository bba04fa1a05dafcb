/* fuzz/fuzz_checkpoint.c — the checkpoint loader: arbitrary bytes through the safetensors
 * parser (header length, JSON, entries, offsets, tensors, metadata) and, when they parse,
 * into a small model with an extra tensor. A failed parse must say why and name the
 * input; a failed load must leave the model and the extra tensor exactly as they were
 * (all or nothing); a load that succeeds must have taken every tensor from the file. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the bytes of every tensor of m and of x, concatenated, into buf (at most cap) */
static size_t snapshot(const tg_model *m, const tg_tensor *x, uint8_t *buf, size_t cap)
{
    size_t at = 0;
    int np = tg_model_num_params(m), nb = tg_model_num_buffers(m);
    for (int i = 0; i <= np + nb; i++) {
        const tg_tensor *t = i < np ? tg_model_param(m, i) : i < np + nb ? tg_model_buffer(m, i - np) : x;
        size_t n = (size_t)tg_tensor_numel(t) * tg_dtype_size(t->dtype);
        if (at + n > cap)
            abort();
        memcpy(buf + at, tg_tensor_data(t), n);
        at += n;
    }
    return at;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tg_clear_error();
    tg_safetensors *st = tg__safetensors_parse(data, size, "fuzz.safetensors");
    if (!st) {
        if (tg_last_status() == TG_OK || !strstr(tg_last_error(), "fuzz.safetensors"))
            abort();
        return 0;
    }
    /* "w" F32 [2,3], "b" F32 [3], buffer "n" I32 [], extra "step" F64 [2]: names and
     * shapes a seed input can hit */
    tg_model *m = tg_model_new();
    tg_tensor *x = tg_tensor_full(NULL, TG_F64, 1, (const int64_t[]){2}, 7);
    if (!m || !x || !tg_model_add_param(m, "w", TG_F32, 2, (const int64_t[]){2, 3}) ||
        !tg_model_add_param(m, "b", TG_F32, 1, (const int64_t[]){3}) ||
        !tg_model_add_buffer(m, "n", TG_I32, 0, NULL))
        abort();
    uint8_t before[256], after[256];
    size_t n = snapshot(m, x, before, sizeof before);
    const char *names[] = {"step"};
    tg_tensor *extra[] = {x};
    tg_status s = tg__checkpoint_apply("fuzz", "fuzz.safetensors", st, m, 1, names, extra);
    snapshot(m, x, after, sizeof after);
    if (s != TG_OK && (tg_last_status() != s || memcmp(before, after, n) != 0))
        abort(); /* a failed load changed the model */
    if (s == TG_OK && tg_safetensors_count(st) != 4)
        abort(); /* it loaded although the file has other tensors */
    tg_tensor_free(x);
    tg_model_free(m);
    tg_safetensors_free(st);
    return 0;
}
