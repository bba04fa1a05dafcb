/* nn/safetensors_write.c — safetensors files written atomically (tensor/fileio.c's
 * writer): the arguments checked, the header built with cJSON, then the tensors'
 * elements, row-major and little-endian whatever their layout. */
#include "safetensors.h"
#include "../tensor/fileio.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool utf8_valid(const char *s)
{
    size_t n = strlen(s);
    return tg__st_utf8_valid_prefix((const uint8_t *)s, n) == n;
}


/* ------------------------------------------------------------------ writing */

static cJSON *json_int(int64_t v)
{
    char num[32];
    snprintf(num, sizeof num, "%" PRId64, v);
    return cJSON_CreateRaw(num); /* exact for any size, where a double would round */
}

/* Checks the arguments; names and keys unique, valid UTF-8. */
static tg_status check_args(const char *fn, const char *path, int n, const char *const *names,
                            const tg_tensor *const *tensors, int nmeta, const tg_kv *meta)
{
    if (!path)
        return tg_set_error_in(TG_ERR_ARG, fn, "path is NULL");
    if (n < 0 || nmeta < 0)
        return tg_set_error_in(TG_ERR_ARG, fn, "%s: %d tensors and %d metadata entries; counts are "
                            "non-negative", path, n, nmeta);
    if ((n > 0 && (!names || !tensors)) || (nmeta > 0 && !meta))
        return tg_set_error_in(TG_ERR_ARG, fn, "%s: %s is NULL", path,
                            nmeta > 0 && !meta ? "meta" : !names ? "names" : "tensors");
    for (int i = 0; i < n; i++) {
        if (!names[i])
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: name %d is NULL", path, i);
        if (!tensors[i])
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: tensor '%s' is NULL", path, names[i]);
        if ((unsigned)tensors[i]->dtype >= TG_DTYPE_COUNT)
            return tg_set_error_in(TG_ERR_DTYPE, fn, "%s: tensor '%s' has no safetensors dtype",
                                path, names[i]);
        if (!utf8_valid(names[i]))
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: tensor name %d is not valid UTF-8", path, i);
        if (strcmp(names[i], "__metadata__") == 0)
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: '__metadata__' is reserved for the metadata, "
                                "not a tensor name", path);
    }
    for (int i = 0; i < nmeta; i++) {
        if (!meta[i].key || !meta[i].value)
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: metadata %d has a NULL %s", path, i,
                                meta[i].key ? "value" : "key");
        if (!utf8_valid(meta[i].key) || !utf8_valid(meta[i].value))
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: metadata '%s' is not valid UTF-8", path,
                                utf8_valid(meta[i].key) ? meta[i].key : "?");
    }
    /* duplicates: sort copies of the pointers */
    int most = n > nmeta ? n : nmeta;
    if (most < 2)
        return TG_OK;
    const char **sorted = tg_mem_alloc((size_t)most * sizeof *sorted, _Alignof(char *));
    if (!sorted)
        return tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory", path);
    tg_status s = TG_OK;
    for (int pass = 0; pass < 2 && s == TG_OK; pass++) {
        int k = pass == 0 ? n : nmeta;
        for (int i = 0; i < k; i++)
            sorted[i] = pass == 0 ? names[i] : meta[i].key;
        qsort(sorted, (size_t)k, sizeof *sorted, tg__st_cmp_str_ptr);
        for (int i = 1; i < k && s == TG_OK; i++)
            if (strcmp(sorted[i - 1], sorted[i]) == 0)
                s = tg_set_error_in(TG_ERR_ARG, fn, "%s: %s '%s' is given twice", path,
                                 pass == 0 ? "tensor" : "metadata key", sorted[i]);
    }
    tg_mem_free(sorted);
    return s;
}

/* The header JSON padded with spaces to a multiple of 8 bytes; *hlen its length. */
static char *make_header(const char *fn, const char *path, int n, const char *const *names,
                         const tg_tensor *const *tensors, int nmeta, const tg_kv *meta,
                         size_t *hlen)
{
    cJSON *root = cJSON_CreateObject();
    bool ok = root != NULL;
    if (ok && nmeta > 0) {
        cJSON *m = cJSON_AddObjectToObject(root, "__metadata__");
        ok = m != NULL;
        for (int i = 0; ok && i < nmeta; i++)
            ok = cJSON_AddStringToObject(m, meta[i].key, meta[i].value) != NULL;
    }
    int64_t offset = 0;
    for (int i = 0; ok && i < n; i++) {
        const tg_tensor *t = tensors[i];
        int64_t bytes = tg_tensor_numel(t) * (int64_t)tg_dtype_size(t->dtype);
        cJSON *e = cJSON_AddObjectToObject(root, names[i]);
        cJSON *shape = e ? cJSON_AddArrayToObject(e, "shape") : NULL;
        cJSON *offs = shape ? cJSON_AddArrayToObject(e, "data_offsets") : NULL;
        ok = offs && cJSON_AddStringToObject(e, "dtype", tg__st_dtype_tag(t->dtype));
        for (int d = 0; ok && d < t->ndim; d++)
            ok = cJSON_AddItemToArray(shape, json_int(t->shape[d]));
        ok = ok && cJSON_AddItemToArray(offs, json_int(offset)) &&
             cJSON_AddItemToArray(offs, json_int(offset + bytes));
        offset += bytes;
    }
    char *json = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!json) {
        tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory building the header", path);
        return NULL;
    }
    size_t len = strlen(json), padded = (len + 7) / 8 * 8;
    char *out = tg_mem_alloc(padded + 1, 8);
    if (out) {
        memcpy(out, json, len);
        memset(out + len, ' ', padded - len);
        out[padded] = '\0';
        *hlen = padded;
    } else {
        tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory building the header", path);
    }
    cJSON_free(json);
    return out;
}

/* Writes the tensor's elements, row-major and little-endian, whatever its layout. */
static bool write_tensor(FILE *f, const tg_tensor *t)
{
    int64_t numel = tg_tensor_numel(t);
    if (numel == 0)
        return true;
    size_t es = tg_dtype_size(t->dtype);
    if (tg_tensor_is_contiguous(t) && tg__st_little_endian())
        return fwrite(tg_tensor_data(t), es, (size_t)numel, f) == (size_t)numel;
    tg_tensor *c = tg_tensor_clone(NULL, t);
    if (!c)
        return false;
    if (!tg__st_little_endian())
        tg__st_swap_bytes(tg_tensor_data(c), numel, es);
    bool ok = fwrite(tg_tensor_data(c), es, (size_t)numel, f) == (size_t)numel;
    tg_tensor_free(c);
    return ok;
}

tg_status tg__safetensors_write(const char *fn, const char *path, int n, const char *const *names,
                                const tg_tensor *const *tensors, int nmeta, const tg_kv *meta)
{
    tg_status s = check_args(fn, path, n, names, tensors, nmeta, meta);
    if (s != TG_OK)
        return s;
    size_t hlen = 0;
    char *header = make_header(fn, path, n, names, tensors, nmeta, meta, &hlen);
    if (!header)
        return tg_last_status();

    tg_atomic_file w;
    s = tg__atomic_begin(&w, fn, path);
    if (s == TG_OK) {
        uint8_t len8[8];
        for (int i = 0; i < 8; i++)
            len8[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
        bool ok = fwrite(len8, 1, 8, w.f) == 8 && fwrite(header, 1, hlen, w.f) == hlen;
        for (int i = 0; ok && i < n; i++)
            ok = write_tensor(w.f, tensors[i]);
        /* a failed write leaves the stream's error flag set, which commit reports; a
         * tensor that could not be copied for writing is out of memory */
        if (!ok && !ferror(w.f)) {
            tg__atomic_cancel(&w);
            s = tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory copying a tensor to write it",
                             path);
        } else {
            s = tg__atomic_commit(&w);
        }
    }
    tg_mem_free(header);
    return s;
}

tg_status tg_safetensors_save(const char *path, int n, const char *const *names,
                              const tg_tensor *const *tensors, int nmeta, const tg_kv *meta)
{
    return tg__safetensors_write("tg_safetensors_save", path, n, names, tensors, nmeta, meta);
}

