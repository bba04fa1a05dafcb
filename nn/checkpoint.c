/* nn/checkpoint.c — a model's state in one safetensors file.
 *
 * A checkpoint holds every parameter and buffer of a model under its name
 * ("input_conv/conv_0/weight", "input_conv/bn_0/running_mean", ...), plus extra named
 * tensors the caller owns (an optimiser's moments, a step count), plus string metadata
 * (epoch, seed, configuration). It opens in Python as any safetensors file does.
 *
 * Loading is all or nothing: the file is read and validated whole, then every model
 * tensor and every requested extra is looked up and its dtype and shape compared, and
 * a file holding tensors the model does not have is refused (it was saved from another
 * architecture) — all before the first value is copied, so a failed load leaves the
 * model exactly as it was. */
#include "internal.h"

#include <string.h>

/* ------------------------------------------------------------------ saving */

/* What save and load both require of their arguments. */
static tg_status check_args(const char *fn, const char *path, const tg_model *m, int nextra,
                            const char *const *extra_names, const void *extra)
{
    if (!path || !m)
        return tg_set_error_in(TG_ERR_ARG, fn, "%s is NULL", !path ? "path" : "the model");
    if (nextra < 0 || (nextra > 0 && (!extra_names || !extra)))
        return tg_set_error_in(TG_ERR_ARG, fn, "%s: %d extra tensors with %s", path, nextra,
                            nextra < 0 ? "a negative count" : "NULL names or tensors");
    return TG_OK;
}

tg_status tg_checkpoint_save(const char *path, const tg_model *m, int nextra,
                             const char *const *extra_names, const tg_tensor *const *extra,
                             int nmeta, const tg_kv *meta)
{
    const char *fn = "tg_checkpoint_save";
    if (check_args(fn, path, m, nextra, extra_names, extra) != TG_OK)
        return tg_last_status();
    for (int i = 0; i < nextra; i++)
        if (extra_names[i] && tg_model_find(m, extra_names[i]))
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: extra tensor '%s' has the name of a model "
                                "tensor", path, extra_names[i]);
    int np = tg_model_num_params(m), nb = tg_model_num_buffers(m);
    int total = np + nb + nextra;
    size_t cap = (size_t)(total ? total : 1);
    const char **names = tg_mem_alloc(cap * sizeof *names, _Alignof(char *));
    const tg_tensor **tensors = tg_mem_alloc(cap * sizeof *tensors, _Alignof(tg_tensor *));
    tg_status s;
    if (!names || !tensors) {
        s = tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory", path);
        goto out;
    }
    int k = 0;
    for (int i = 0; i < np; i++, k++)
        names[k] = tg_model_param_name(m, i), tensors[k] = tg_model_param(m, i);
    for (int i = 0; i < nb; i++, k++)
        names[k] = tg_model_buffer_name(m, i), tensors[k] = tg_model_buffer(m, i);
    for (int i = 0; i < nextra; i++, k++)
        names[k] = extra_names[i], tensors[k] = extra[i];
    s = tg__safetensors_write(fn, path, total, names, tensors, nmeta, meta);
out:
    tg_mem_free(names);
    tg_mem_free(tensors);
    return s;
}

/* ------------------------------------------------------------------ loading */

/* The file's tensor for `name` if it fits dst (dtype and shape), marking it used;
 * else NULL with an error. `what` says whose it is ("the model's parameter", "extra tensor"). */
static const tg_tensor *match(const char *fn, const char *path, const tg_safetensors *st,
                              bool *used, const char *what, const char *name, const tg_tensor *dst)
{
    int i = tg__safetensors_index(st, name);
    if (i < 0) {
        tg_set_error_in(TG_ERR_FORMAT, fn, "%s: %s '%s' is not in the file", path, what,
                     name);
        return NULL;
    }
    if (used[i]) {
        tg_set_error_in(TG_ERR_ARG, fn, "%s: %s '%s' is asked for twice (an extra tensor with a "
                     "model tensor's name?)", path, what, name);
        return NULL;
    }
    const tg_tensor *src = tg_safetensors_tensor(st, i);
    if (src->dtype != dst->dtype || !tg_tensor_same_shape(src, dst)) {
        char fs[160], ms[160];
        tg_shape_str(fs, sizeof fs, src->ndim, src->shape);
        tg_shape_str(ms, sizeof ms, dst->ndim, dst->shape);
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s: tensor '%s' is %s %s in the file but %s %s in the %s",
                     path, name, tg_dtype_name(src->dtype), fs, tg_dtype_name(dst->dtype), ms,
                     what[0] == 'e' ? "caller's extra tensor" : "model");
        return NULL;
    }
    used[i] = true;
    return src;
}

tg_status tg__checkpoint_apply(const char *fn, const char *path, const tg_safetensors *st, tg_model *m,
                               int nextra, const char *const *extra_names, tg_tensor *const *extra)
{
    int n = tg_safetensors_count(st);
    int np = tg_model_num_params(m), nb = tg_model_num_buffers(m);
    int total = np + nb + nextra;
    size_t cap = (size_t)(total ? total : 1);
    bool *used = tg_mem_alloc((size_t)(n ? n : 1) * sizeof *used, _Alignof(bool));
    const tg_tensor **src = tg_mem_alloc(cap * sizeof *src, _Alignof(tg_tensor *));
    tg_tensor **dst = tg_mem_alloc(cap * sizeof *dst, _Alignof(tg_tensor *));
    tg_status s = TG_OK;
    if (!used || !src || !dst) {
        s = tg_set_error_in(TG_ERR_NOMEM, fn, "%s: out of memory", path);
        goto out;
    }
    memset(used, 0, (size_t)(n ? n : 1) * sizeof *used);

    /* every check first ... */
    int k = 0;
    for (int i = 0; i < np + nb; i++, k++) {
        bool param = i < np;
        dst[k] = param ? tg_model_param(m, i) : tg_model_buffer(m, i - np);
        const char *name = param ? tg_model_param_name(m, i) : tg_model_buffer_name(m, i - np);
        src[k] = match(fn, path, st, used, param ? "the model's parameter" : "the model's buffer",
                       name, dst[k]);
        if (!src[k]) {
            s = tg_last_status();
            goto out;
        }
    }
    for (int i = 0; i < nextra; i++, k++) {
        dst[k] = extra[i];
        src[k] = match(fn, path, st, used, "extra tensor", extra_names[i], dst[k]);
        if (!src[k]) {
            s = tg_last_status();
            goto out;
        }
    }
    if (total < n) {
        int first = 0;
        while (used[first])
            first++;
        s = tg_set_error_in(TG_ERR_FORMAT, fn, "%s: the file holds %d tensor%s that the model does "
                         "not have (such as '%s'): it was saved from a different architecture, "
                         "or with extra tensors not asked for", path, n - total,
                         n - total == 1 ? "" : "s", tg_safetensors_name(st, first));
        goto out;
    }
    /* ... then the copies, which cannot fail: dtypes and shapes match */
    for (int i = 0; i < total && s == TG_OK; i++)
        s = tg_tensor_copy_(dst[i], src[i]);
out:
    tg_mem_free(used);
    tg_mem_free(src);
    tg_mem_free(dst);
    return s;
}

tg_status tg_checkpoint_load(const char *path, tg_model *m, int nextra,
                             const char *const *extra_names, tg_tensor *const *extra,
                             tg_safetensors **meta_out)
{
    const char *fn = "tg_checkpoint_load";
    if (meta_out)
        *meta_out = NULL;
    if (check_args(fn, path, m, nextra, extra_names, extra) != TG_OK)
        return tg_last_status();
    for (int i = 0; i < nextra; i++)
        if (!extra_names[i] || !extra[i])
            return tg_set_error_in(TG_ERR_ARG, fn, "%s: extra tensor %d has a NULL %s", path, i,
                                !extra_names[i] ? "name" : "tensor");

    tg_safetensors *st = tg__safetensors_read(fn, path);
    if (!st)
        return tg_last_status();
    tg_status s = tg__checkpoint_apply(fn, path, st, m, nextra, extra_names, extra);
    if (s == TG_OK && meta_out)
        *meta_out = st;
    else
        tg_safetensors_free(st);
    return s;
}
