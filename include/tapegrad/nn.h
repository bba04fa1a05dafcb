/* tapegrad/nn.h — layers composed from autograd primitives, the models that own their
 * parameters, initialisers, the coursework's VGG network, and checkpoint files.
 *
 *   tg_rng g = tg_rng_new(0);
 *   tg_vgg *net = tg_vgg_new(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = 5,
 *                                             .num_filters = 32, .in_channels = 3,
 *                                             .num_classes = 100, .bn = TG_BN_BEFORE}, &g);
 *   tg_model *m = tg_vgg_model(net);
 *   tg_model_set_training(m, true);
 *   tg_tensor *logits = tg_vgg_forward(tp, net, x);           // x [N,3,32,32] f32
 *   tg_tensor *loss   = tg_nn_cross_entropy(tp, logits, labels); // labels [N] i32
 *   tg_backward(tp, loss);
 *
 * Every layer records itself on the tape inside a named scope, so tg_tape_print shows
 * it and the gradient flow is read per layer off the tape: conv2d and batch norm as one
 * fused record each ("conv2d", "batch_norm2d"), or, with tg_tape_set_fused(tp, false), as
 * the primitives they are made of (im2col -> matmul -> add; mean, var, sub, mul, add).
 */
#ifndef TAPEGRAD_NN_H
#define TAPEGRAD_NN_H

#include "autograd.h"
#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ models */

/* A model owns named parameters (heap leaves that get gradients) and buffers (state
 * with no gradient, as batch norm's running statistics), in creation order, and
 * frees them all with itself. Names are hierarchical with '/' ("input_conv/conv_0/weight"). */
typedef struct tg_model tg_model;

tg_model *tg_model_new(void);   /* empty, f32, in training mode; NULL on allocation failure */
void tg_model_free(tg_model *m); /* with every parameter, buffer and grad; NULL is ignored */
/* A new zero-filled parameter; NULL (and tg_last_error) on a duplicate name or bad shape. */
tg_tensor *tg_model_add_param(tg_model *m, const char *name, tg_dtype dt, int ndim, const int64_t *shape);
/* The same for a buffer (no gradient). */
tg_tensor *tg_model_add_buffer(tg_model *m, const char *name, tg_dtype dt, int ndim, const int64_t *shape);
/* The parameters and buffers by position (creation order), or NULL for i out of range;
 * the model owns them. */
int tg_model_num_params(const tg_model *m);
tg_tensor *tg_model_param(const tg_model *m, int i);
const char *tg_model_param_name(const tg_model *m, int i);
int tg_model_num_buffers(const tg_model *m);
tg_tensor *tg_model_buffer(const tg_model *m, int i);
const char *tg_model_buffer_name(const tg_model *m, int i);
tg_tensor *tg_model_find(const tg_model *m, const char *name); /* a parameter or a buffer */
int64_t tg_model_param_count(const tg_model *m);                /* elements of all parameters */
void tg_model_zero_grad(tg_model *m);                          /* tg_zero_grad of every parameter */
void tg_model_set_training(tg_model *m, bool training); /* batch norm statistics, dropout */
bool tg_model_training(const tg_model *m);              /* a new model is in training mode */
/* The dtype that layer init functions give new parameters and float buffers: TG_F32
 * unless set (TG_F64 for gradient checks of whole layers and networks). */
tg_status tg_model_set_dtype(tg_model *m, tg_dtype dt);
tg_dtype tg_model_dtype(const tg_model *m);
/* name, shape, count per parameter and the total, one line each */
void tg_model_print(const tg_model *m, FILE *f);

/* The layers of a model, in the order they were made (each tg_nn_*_init adds its own):
 * what a program that reads gradients per layer (the study's gradient flow) walks,
 * instead of taking parameter names apart. A layer's forward records in the scope of
 * its name, so tg_tape_last_in_scope(tp, layer.name) is its output's record when the
 * forward is called at the root scope (as tg_vgg_forward calls its layers). */
typedef enum tg_nn_kind { TG_NN_LINEAR, TG_NN_CONV2D, TG_NN_BATCH_NORM2D } tg_nn_kind;
typedef struct tg_nn_layer_info {
    const char *name;  /* its parameters are "<name>/weight", "<name>/bias", ... */
    tg_nn_kind kind;
    tg_tensor *weight; /* batch norm's: gamma */
    tg_tensor *bias;   /* NULL when the layer has none */
} tg_nn_layer_info;
int tg_model_num_layers(const tg_model *m); /* linear, conv2d and batch norm layers */
/* Layer i, 0 .. tg_model_num_layers - 1 (the model owns the name); all zero (name NULL)
 * for any other i. */
tg_nn_layer_info tg_model_layer(const tg_model *m, int i);
/* "linear", "conv2d", "batch_norm2d" */
const char *tg_nn_kind_name(tg_nn_kind kind);

/* ------------------------------------------------------------------ initialisers */
/* Each fills t in place from g (heap or not). fan_in of a weight [out, in, kh, kw] is
 * in*kh*kw, fan_out out*kh*kw (tg_fan_in / tg_fan_out). */
int64_t tg_fan_in(const tg_tensor *w);
int64_t tg_fan_out(const tg_tensor *w);
/* U(-b, b), b = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)): PyTorch's
 * kaiming_uniform_(a, mode='fan_in', nonlinearity='leaky_relu'); a = sqrt(5) is the
 * default of nn.Conv2d and nn.Linear weights. */
tg_status tg_init_kaiming_uniform(tg_tensor *w, double a, tg_rng *g);
/* N(0, std), std = gain / sqrt(fan_in), same gain. */
tg_status tg_init_kaiming_normal(tg_tensor *w, double a, tg_rng *g);
/* U(-b, b), b = gain * sqrt(6 / (fan_in + fan_out)). */
tg_status tg_init_xavier_uniform(tg_tensor *w, double gain, tg_rng *g);
/* PyTorch's default bias: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) with the weight's fan_in. */
tg_status tg_init_bias(tg_tensor *b, int64_t fan_in, tg_rng *g);

/* ------------------------------------------------------------------ layers */
/* A layer is a small struct of pointers into its model's parameters; forward records
 * its primitives on the tape under scope `name`. Init functions create the
 * parameters in the model with PyTorch's default initialisation drawn from g. */

typedef struct tg_nn_linear {
    char name[96];
    tg_tensor *weight; /* [out, in] */
    tg_tensor *bias;   /* [out] or NULL */
} tg_nn_linear;
/* Creates name/weight [out, in] and (if bias) name/bias [out] in m. */
tg_status tg_nn_linear_init(tg_nn_linear *l, tg_model *m, const char *name, int64_t in, int64_t out,
                         bool bias, tg_rng *g);
/* [N,in] -> [N,out]: records transpose (of the weight), matmul and, with a bias, add */
tg_tensor *tg_nn_linear_forward(tg_tape *tp, const tg_nn_linear *l, tg_tensor *x);

typedef struct tg_nn_conv2d {
    char name[96];
    tg_tensor *weight; /* [out, in, kh, kw] */
    tg_tensor *bias;   /* [out] or NULL */
    tg_conv2d_geom geom;
} tg_nn_conv2d;
/* Creates name/weight [out, in, kernel, kernel] and (if bias) name/bias [out] in m;
 * square kernel, the same stride, padding and dilation along both axes. */
tg_status tg_nn_conv2d_init(tg_nn_conv2d *c, tg_model *m, const char *name, int64_t in, int64_t out,
                         int kernel, int stride, int padding, int dilation, bool bias, tg_rng *g);
/* [N,in,H,W] -> [N,out,OH,OW]: one fused "conv2d" record (tg_conv2d), or with the
 * tape's fusion off im2col -> matmul -> (add bias), the same values within rounding */
tg_tensor *tg_nn_conv2d_forward(tg_tape *tp, const tg_nn_conv2d *c, tg_tensor *x);

/* As PyTorch's BatchNorm2d: in training, normalise with the batch mean and biased
 * variance over (N,H,W) and update running_mean/running_var (unbiased) with momentum;
 * in evaluation, normalise with the running statistics. Then * weight + bias. */
typedef struct tg_nn_batch_norm2d {
    char name[96];
    const tg_model *model; /* for its training flag */
    tg_tensor *weight, *bias;                /* gamma [C] = 1, beta [C] = 0 */
    tg_tensor *running_mean, *running_var;   /* buffers [C]: 0 and 1 */
    tg_tensor *num_batches_tracked;          /* buffer [] (i32), as PyTorch keeps it */
    double eps, momentum;                    /* 1e-5, 0.1 */
} tg_nn_batch_norm2d;
/* Creates name/weight, name/bias and the three buffers in m, for `channels` channels. */
tg_status tg_nn_batch_norm2d_init(tg_nn_batch_norm2d *bn, tg_model *m, const char *name, int64_t channels);
/* [N,C,H,W] -> the same shape. In training one "batch_norm2d" record (tg_batch_norm2d), or
 * with the tape's fusion off mean, var, add_scalar, rsqrt, sub, mul (and * weight + bias),
 * the same values within rounding; in evaluation sub, mul (the running statistics as
 * constants), reshape, mul, reshape, add, fused or not. docs/guide.md lists every
 * layer's records. */
tg_tensor *tg_nn_batch_norm2d_forward(tg_tape *tp, const tg_nn_batch_norm2d *bn, tg_tensor *x);

/* Inverted dropout in training (tg_dropout), the identity in evaluation. */
tg_tensor *tg_nn_dropout(tg_tape *tp, const tg_model *m, tg_tensor *x, double p);

/* mean over the batch of -log softmax(logits)[label]: logits [N,C], labels i32 [N] */
tg_tensor *tg_nn_cross_entropy(tg_tape *tp, tg_tensor *logits, const tg_tensor *labels);
/* fraction of rows whose argmax is the label (no tape; any float dtype) */
double tg_nn_accuracy(const tg_tensor *logits, const tg_tensor *labels);

/* ------------------------------------------------------------------ the coursework's network */

typedef enum tg_bn_placement {
    TG_BN_NONE = 0, /* the original: only the entry convolution has batch norm */
    TG_BN_BEFORE,   /* conv -> bn -> activation, after every conv */
    TG_BN_AFTER     /* conv -> activation -> bn, after every conv */
} tg_bn_placement;

typedef enum tg_activation { TG_ACT_LEAKY_RELU = 0, TG_ACT_RELU } tg_activation;

typedef struct tg_vgg_config {
    int num_stages;           /* 3 */
    int num_blocks_per_stage; /* 0: VGG_08, 5: VGG_38 */
    int num_filters;          /* 32 */
    int in_channels;          /* 3 */
    int num_classes;          /* 100 */
    tg_bn_placement bn;
    double dropout;           /* p after every batch norm; 0: none */
    tg_activation activation; /* leaky relu, slope 0.01 */
    bool residual;            /* x + block(x) around each processing block */
    tg_dtype dtype;           /* of the parameters: TG_F32 (0, the default) or TG_F64 */
} tg_vgg_config;

/* ConvolutionalNetwork of the MLP coursework (2020-21): entry conv (no bias) -> BN ->
 * activation; per stage, num_blocks_per_stage processing blocks (conv, act, conv, act;
 * no bias) then a reduction block (conv, act, avg-pool 2x2, conv, act; with bias);
 * global average pooling; linear to the classes. Scopes and parameter names follow
 * the original's layer names: input_conv/conv_0, input_conv/bn_0, block_0_0/conv_0,
 * ..., reduction_block_2/conv_1, logit_linear_layer. */
typedef struct tg_vgg tg_vgg;
tg_vgg *tg_vgg_new(const tg_vgg_config *cfg, tg_rng *g); /* NULL + tg_last_error on a bad config */
void tg_vgg_free(tg_vgg *net);                          /* with its model; NULL is ignored */
tg_model *tg_vgg_model(tg_vgg *net);                    /* its parameters; net owns the model */
const tg_vgg_config *tg_vgg_config_of(const tg_vgg *net);
tg_tensor *tg_vgg_forward(tg_tape *tp, tg_vgg *net, tg_tensor *x); /* [N,C,H,W] -> logits [N,classes] */
/* The depth in the network's name: its layers with weights, num_stages * (2 *
 * num_blocks_per_stage + 2) + 1 convolutions and the linear layer (8 for VGG_08, 38 for
 * VGG_38); 0 for a config with fewer than 1 stage or blocks below 0. */
int tg_vgg_depth(const tg_vgg_config *cfg);

/* ------------------------------------------------------------------ checkpoints */

typedef struct tg_kv {
    const char *key, *value;
} tg_kv;

/* The safetensors format: an 8-byte little-endian header length, a JSON header (per
 * tensor: dtype "F32" "F64" "U8" "I32", shape, data_offsets; a "__metadata__" map of
 * strings), then the raw little-endian data. Written atomically (temporary file,
 * fsync, rename). */
tg_status tg_safetensors_save(const char *path, int n, const char *const *names,
                              const tg_tensor *const *tensors, int nmeta, const tg_kv *meta);

/* A loaded file: every tensor (heap, contiguous) and the metadata, all validated
 * (header length against the file size, offsets in range, contiguous and not
 * overlapping, dtype sizes against shapes) before anything is returned. */
typedef struct tg_safetensors tg_safetensors;
tg_safetensors *tg_safetensors_load(const char *path); /* NULL + tg_last_error naming the file */
void tg_safetensors_free(tg_safetensors *st); /* with its tensors; NULL is ignored */
/* The tensors by position (file order) or name, NULL if absent; st owns them. */
int tg_safetensors_count(const tg_safetensors *st);
const char *tg_safetensors_name(const tg_safetensors *st, int i);
tg_tensor *tg_safetensors_tensor(const tg_safetensors *st, int i);
tg_tensor *tg_safetensors_find(const tg_safetensors *st, const char *name);
const char *tg_safetensors_meta(const tg_safetensors *st, const char *key); /* NULL if absent */

/* A model's parameters and buffers under their names, plus `extra` named tensors (an
 * optimiser's state), plus metadata. */
tg_status tg_checkpoint_save(const char *path, const tg_model *m, int nextra,
                             const char *const *extra_names, const tg_tensor *const *extra,
                             int nmeta, const tg_kv *meta);
/* Loads into the model's existing tensors (and the extra ones, by name) after checking
 * that every one is present with its dtype and shape; on any error nothing is changed.
 * *meta_out (if not NULL) receives the loaded file for its metadata; free it. */
tg_status tg_checkpoint_load(const char *path, tg_model *m, int nextra,
                             const char *const *extra_names, tg_tensor *const *extra,
                             tg_safetensors **meta_out);

#ifdef __cplusplus
}
#endif
#endif
