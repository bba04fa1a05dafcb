/* nn/model.c — a model: named parameters (heap leaves with gradients) and buffers (heap
 * state without gradients), in creation order, freed with the model.
 *
 * Names are hierarchical with '/' ("block_0_0/conv_0/weight") and unique across
 * parameters and buffers, so tg_model_find and checkpoint files need no second key.
 * The lists are two arrays of (name, tensor) that grow by doubling; a model is built
 * once, so nothing here runs inside a training step except tg_model_zero_grad, which
 * allocates nothing. */
#include "internal.h"

#include <string.h>

#define NAME_MAX_LEN 127 /* a leaf's name holds 127 bytes */

typedef struct entry {
    char name[NAME_MAX_LEN + 1];
    tg_tensor *t;
} entry;

typedef struct list {
    entry *e;
    int n, cap;
} list;

typedef struct layer {
    char name[NAME_MAX_LEN + 1];
    tg_nn_kind kind;
    tg_tensor *weight, *bias; /* owned by the params list */
} layer;

struct tg_model {
    list params, buffers;
    layer *layers;
    int nlayers, layers_cap;
    bool training;
    tg_dtype dtype;
};

tg_model *tg_model_new(void)
{
    tg_model *m = tg_mem_alloc(sizeof *m, _Alignof(tg_model));
    if (!m)
        return NULL;
    *m = (tg_model){.training = true, .dtype = TG_F32}; /* PyTorch's modules start in training */
    return m;
}

static void list_free(list *l)
{
    for (int i = 0; i < l->n; i++)
        tg_tensor_free(l->e[i].t);
    tg_mem_free(l->e);
}

void tg_model_free(tg_model *m)
{
    if (!m)
        return;
    list_free(&m->params);
    list_free(&m->buffers);
    tg_mem_free(m->layers);
    tg_mem_free(m);
}

static const entry *list_find(const list *l, const char *name)
{
    for (int i = 0; i < l->n; i++)
        if (strcmp(l->e[i].name, name) == 0)
            return &l->e[i];
    return NULL;
}

/* Checks the arguments, makes a zero-filled heap tensor; NULL + error naming `fn`. */
static tg_tensor *new_entry_tensor(const tg_model *m, const char *fn, const char *name, tg_dtype dt,
                                   int ndim, const int64_t *shape)
{
    if (!m || !name) {
        tg_set_error_in(TG_ERR_ARG, fn, "the %s is NULL", m ? "name" : "model");
        return NULL;
    }
    size_t len = strlen(name);
    if (len == 0 || len > NAME_MAX_LEN) {
        tg_set_error_in(TG_ERR_ARG, fn, "a name must have 1 to %d bytes, '%s' has %zu",
                     NAME_MAX_LEN, name, len);
        return NULL;
    }
    if (list_find(&m->params, name) || list_find(&m->buffers, name)) {
        tg_set_error_in(TG_ERR_ARG, fn, "'%s' already exists", name);
        return NULL;
    }
    if (ndim < 0 || ndim > TG_MAX_DIMS || (ndim > 0 && !shape)) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "'%s': ndim must be 0..%d with a shape, got %d%s", name,
                     TG_MAX_DIMS, ndim, ndim > 0 && !shape ? " and no shape" : "");
        return NULL;
    }
    for (int d = 0; d < ndim; d++)
        if (shape[d] < 0) {
            char buf[160];
            tg_set_error_in(TG_ERR_SHAPE, fn, "'%s': shape %s has a negative size", name,
                         tg_shape_str(buf, sizeof buf, ndim, shape));
            return NULL;
        }
    if ((unsigned)dt >= TG_DTYPE_COUNT) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "'%s': dtype %d is not a tg_dtype", name, (int)dt);
        return NULL;
    }
    tg_tensor *t = tg_tensor_zeros(NULL, dt, ndim, shape);
    if (!t) {
        /* keep the kernel's reason but name the function the user called */
        tg_set_error_in(tg_last_status(), fn, "'%s': %s", name, tg_last_error_info()->detail);
        return NULL;
    }
    return t;
}

/* Appends (name, t); on failure frees t and returns NULL. */
static tg_tensor *list_add(list *l, const char *name, tg_tensor *t)
{
    if (l->n == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        entry *grown = tg_mem_alloc((size_t)cap * sizeof *grown, _Alignof(entry));
        if (!grown) {
            tg_tensor_free(t);
            return NULL;
        }
        if (l->n)
            memcpy(grown, l->e, (size_t)l->n * sizeof *grown);
        tg_mem_free(l->e);
        l->e = grown;
        l->cap = cap;
    }
    entry *e = &l->e[l->n++];
    memcpy(e->name, name, strlen(name) + 1);
    e->t = t;
    return t;
}

tg_tensor *tg_model_add_param(tg_model *m, const char *name, tg_dtype dt, int ndim, const int64_t *shape)
{
    if (m && (dt != TG_F32 && dt != TG_F64)) {
        tg_set_error_in(TG_ERR_DTYPE, "tg_model_add_param", "'%s' is %s; a parameter must be f32 or f64",
                     name ? name : "(null)", (unsigned)dt < TG_DTYPE_COUNT ? tg_dtype_name(dt) : "?");
        return NULL;
    }
    tg_tensor *t = new_entry_tensor(m, "tg_model_add_param", name, dt, ndim, shape);
    if (!t)
        return NULL;
    if (tg_requires_grad(t, name) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return list_add(&m->params, name, t);
}

tg_tensor *tg_model_add_buffer(tg_model *m, const char *name, tg_dtype dt, int ndim, const int64_t *shape)
{
    tg_tensor *t = new_entry_tensor(m, "tg_model_add_buffer", name, dt, ndim, shape);
    return t ? list_add(&m->buffers, name, t) : NULL;
}

int tg_model_num_params(const tg_model *m) { return m ? m->params.n : 0; }
int tg_model_num_buffers(const tg_model *m) { return m ? m->buffers.n : 0; }

tg_tensor *tg_model_param(const tg_model *m, int i)
{
    return m && i >= 0 && i < m->params.n ? m->params.e[i].t : NULL;
}

const char *tg_model_param_name(const tg_model *m, int i)
{
    return m && i >= 0 && i < m->params.n ? m->params.e[i].name : NULL;
}

tg_tensor *tg_model_buffer(const tg_model *m, int i)
{
    return m && i >= 0 && i < m->buffers.n ? m->buffers.e[i].t : NULL;
}

const char *tg_model_buffer_name(const tg_model *m, int i)
{
    return m && i >= 0 && i < m->buffers.n ? m->buffers.e[i].name : NULL;
}

tg_tensor *tg_model_find(const tg_model *m, const char *name)
{
    if (!m || !name)
        return NULL;
    const entry *e = list_find(&m->params, name);
    if (!e)
        e = list_find(&m->buffers, name);
    return e ? e->t : NULL;
}

int64_t tg_model_param_count(const tg_model *m)
{
    int64_t n = 0;
    for (int i = 0; m && i < m->params.n; i++)
        n += tg_tensor_numel(m->params.e[i].t);
    return n;
}

void tg_model_zero_grad(tg_model *m)
{
    for (int i = 0; m && i < m->params.n; i++)
        tg_zero_grad(m->params.e[i].t);
}

void tg_model_set_training(tg_model *m, bool training)
{
    if (m)
        m->training = training;
}

bool tg_model_training(const tg_model *m) { return m && m->training; }

tg_status tg_model_set_dtype(tg_model *m, tg_dtype dt)
{
    if (!m)
        return tg_set_error_in(TG_ERR_ARG, "tg_model_set_dtype", "the model is NULL");
    if (dt != TG_F32 && dt != TG_F64)
        return tg_set_error_in(TG_ERR_DTYPE, "tg_model_set_dtype", "parameters must be f32 or f64, got %s",
                            (unsigned)dt < TG_DTYPE_COUNT ? tg_dtype_name(dt) : "?");
    m->dtype = dt;
    return TG_OK;
}

tg_dtype tg_model_dtype(const tg_model *m) { return m ? m->dtype : TG_F32; }

/* input_conv/conv_0/weight  [32,3,3,3]    864
 * ...
 * total                                 59716 parameters in 17 tensors */
void tg_model_print(const tg_model *m, FILE *f)
{
    if (!m || !f)
        return;
    int wname = 5, wshape = 2; /* "total", "[]" */
    char buf[160];
    for (int i = 0; i < m->params.n; i++) {
        const tg_tensor *t = m->params.e[i].t;
        int ln = (int)strlen(m->params.e[i].name);
        int ls = (int)strlen(tg_shape_str(buf, sizeof buf, t->ndim, t->shape));
        wname = ln > wname ? ln : wname;
        wshape = ls > wshape ? ls : wshape;
    }
    long long total = (long long)tg_model_param_count(m);
    int wcount = snprintf(buf, sizeof buf, "%lld", total);
    for (int i = 0; i < m->params.n; i++) {
        const tg_tensor *t = m->params.e[i].t;
        fprintf(f, "%-*s  %-*s  %*lld\n", wname, m->params.e[i].name, wshape,
                tg_shape_str(buf, sizeof buf, t->ndim, t->shape), wcount, (long long)tg_tensor_numel(t));
    }
    fprintf(f, "%-*s  %-*s  %lld parameters in %d tensors\n", wname, "total", wshape, "", total,
            m->params.n);
}

/* ------------------------------------------------------------------ layers */

tg_status tg__model_add_layer(tg_model *m, const char *fn, const char *name, tg_nn_kind kind,
                              tg_tensor *weight, tg_tensor *bias)
{
    if (m->nlayers == m->layers_cap) {
        int cap = m->layers_cap ? 2 * m->layers_cap : 16;
        layer *grown = tg_mem_alloc((size_t)cap * sizeof *grown, _Alignof(layer));
        if (!grown)
            return tg_set_error_in(TG_ERR_NOMEM, fn, "'%s': out of memory adding it to the model's layers", name);
        if (m->nlayers)
            memcpy(grown, m->layers, (size_t)m->nlayers * sizeof *grown);
        tg_mem_free(m->layers);
        m->layers = grown;
        m->layers_cap = cap;
    }
    layer *l = &m->layers[m->nlayers++];
    snprintf(l->name, sizeof l->name, "%s", name); /* shorter than its parameters' names */
    l->kind = kind;
    l->weight = weight;
    l->bias = bias;
    return TG_OK;
}

int tg_model_num_layers(const tg_model *m) { return m ? m->nlayers : 0; }

tg_nn_layer_info tg_model_layer(const tg_model *m, int i)
{
    if (!m || i < 0 || i >= m->nlayers)
        return (tg_nn_layer_info){0};
    const layer *l = &m->layers[i];
    return (tg_nn_layer_info){.name = l->name, .kind = l->kind, .weight = l->weight, .bias = l->bias};
}

const char *tg_nn_kind_name(tg_nn_kind kind)
{
    switch (kind) {
    case TG_NN_LINEAR: return "linear";
    case TG_NN_CONV2D: return "conv2d";
    case TG_NN_BATCH_NORM2D: return "batch_norm2d";
    }
    return "unknown";
}
