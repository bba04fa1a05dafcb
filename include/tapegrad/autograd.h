/* tapegrad/autograd.h — the tape: reverse-mode automatic differentiation.
 *
 *   tg_tape *tp = tg_tape_new(0);                          // seed for dropout masks
 *   tg_tensor *w = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(10, 784));
 *   tg_requires_grad(w, "fc/weight");                      // a parameter: owns a grad
 *   for (step...) {
 *       tg_scope_push(tp, "fc");
 *       tg_tensor *logits = tg_matmul(tp, x, tg_transpose(tp, w, 0, 1));
 *       tg_scope_pop(tp);
 *       tg_tensor *loss = tg_nll_loss(tp, tg_log_softmax(tp, logits, 1), labels);
 *       if (tg_backward(tp, loss) != TG_OK)                // one check for the whole step
 *           fprintf(stderr, "%s\n", tg_tape_error(tp));
 *       ... update w from tg_grad(w), then tg_zero_grad(w) ...
 *       tg_tape_reset(tp);                                 // the step's memory, at once
 *   }
 *
 * Every differentiable call takes the tape first, computes its result into the tape's
 * arena and appends one record (op, inputs, output, scope). tg_backward walks the
 * records once in reverse, without recursion, accumulating each gradient where the
 * value was used. Parameters (leaves) live outside the tape, on the heap, and keep
 * their gradients across steps until tg_zero_grad, as in PyTorch.
 *
 * Errors are sticky on the tape, as in cairo: the first bad call records one error, a
 * tg_error whose parts the kernel (status, detail), the op the user called (function)
 * and the tape (scope) each fill in, read whole as a message,
 *   "tg_matmul: [100,288] x [32,288]: inner dimensions 288 and 32 differ (called in
 *    reduction_block_0/conv_0)";
 * later calls do nothing and return the tape's placeholder (tg_tape_placeholder), safe
 * to pass on; tg_backward refuses. tg_tape_reset clears it.
 *
 * Every op, built-in or yours, is a tg_op (a name, a forward and a backward side by
 * side) run by tg_apply; see "Your own ops" below.
 */
#ifndef TAPEGRAD_AUTOGRAD_H
#define TAPEGRAD_AUTOGRAD_H

#include "tensor.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tg_tape tg_tape;
typedef struct tg_record tg_record;

/* ------------------------------------------------------------------ the tape */

tg_tape *tg_tape_new(uint64_t seed); /* NULL (and tg_last_error) on allocation failure */
void tg_tape_free(tg_tape *tp); /* with its records and arena; NULL is ignored */
/* Forgets every record and frees every tensor made on the tape at once (the arena
 * keeps its memory); clears a sticky error. Leaves and their grads are untouched. */
void tg_tape_reset(tg_tape *tp);
/* The arena the tape's ops allocate from; what a program allocates there (a step's
 * constants) dies at the next tg_tape_reset too. */
tg_arena *tg_tape_arena(tg_tape *tp);
/* The generator dropout masks are drawn from; copy it to save, assign to restore. */
tg_rng *tg_tape_rng(tg_tape *tp);
/* Evaluation mode: ops compute (into the arena) but record nothing. Returns the old
 * setting, so a scope can restore it. */
bool tg_tape_set_grad_enabled(tg_tape *tp, bool enabled);
bool tg_tape_grad_enabled(const tg_tape *tp);

tg_status tg_tape_status(const tg_tape *tp); /* TG_OK or the sticky error's status */
/* The sticky error's message, composed from its parts as tg_last_error composes one:
 * "function: detail (called in scope)"; "" when fine. */
const char *tg_tape_error(const tg_tape *tp);
/* The sticky error as a value (status TG_OK when fine): function is the public function
 * the user called ("tg_matmul" for a kernel failing under tg_matmul; a layer's own name,
 * "tg_nn_conv2d_forward"), detail what the code that found the problem said, scope the
 * tape's scope at the failing call. The tape owns it and tg_tape_reset clears it; never
 * NULL. An op's backward failing reads "tg_<op> backward: ..." with no function yet. */
const tg_error *tg_tape_error_info(const tg_tape *tp);
/* The tensor every call returns once the tape is in error: a heap 0-d f32 tensor the tape
 * owns (freed with it), safe to pass to any call on the tape, which then does nothing.
 * Code that returns a tensor (a layer) returns it after a failure of its own. */
tg_tensor *tg_tape_placeholder(tg_tape *tp);

/* Names the records that follow, hierarchically: push "block_0" then "conv_0" and
 * records are in scope "block_0/conv_0". Pops past the root are ignored. */
void tg_scope_push(tg_tape *tp, const char *name);
void tg_scope_pop(tg_tape *tp);
const char *tg_scope_current(const tg_tape *tp); /* "" at the root */

/* Anomaly mode: backward stops at the first gradient with a NaN or Inf and the sticky
 * error names the record that produced it. */
void tg_tape_set_check_finite(tg_tape *tp, bool on);

/* Layers (nn's conv2d and batch norm) record themselves as one fused op each
 * ("conv2d", "batch_norm2d"): fast, and still one record per layer, whose gradient is
 * the layer's output gradient. With fusion off they record the primitives they are made
 * of (im2col, matmul, mean, ...), slower, to show every step; both give the same values
 * and gradients within float32 rounding (the tests compare them). On by default;
 * returns the old setting. */
bool tg_tape_set_fused(tg_tape *tp, bool fused);
bool tg_tape_fused(const tg_tape *tp);

/* Keeps every record's gradient after backward, for tg_record_grad_stats and
 * tg_tape_print (the default). Off, a record's gradient is given back to the arena as
 * soon as its own backward has used it, so a training step's peak memory is the
 * forward's values plus the gradients alive at once. Leaves' gradients are kept either
 * way. Scratch tensors a backward makes in the arena are given back when it returns,
 * whatever this says. Returns the old setting. */
bool tg_tape_set_keep_grads(tg_tape *tp, bool keep);

/* Allows a second tg_backward on the tape before tg_tape_reset (PyTorch's
 * retain_graph): off by default, when a second one is the tape's error, since it would
 * add to the leaves' gradients a second time. On, each backward starts the records'
 * gradients afresh and adds to the leaves' again (two backwards from one loss give the
 * leaves twice its gradient; from two losses, the gradient of their sum). Returns the
 * old setting. */
bool tg_tape_set_retain_graph(tg_tape *tp, bool retain);

/* Profiling: with it on, each record's forward_s and backward_s hold the wall time of
 * its forward and backward, in seconds (0 when off). */
void tg_tape_set_profile(tg_tape *tp, bool on);

/* Batch statistics across processes: synchronised batch norm for data-parallel
 * training (tapegrad/dist.h installs one over MPI). With one set, the fused
 * batch_norm2d normalises with the statistics of all processes' batches together:
 * forward gathers each process's per-channel count, mean and sum of squared deviations
 * and combines them in process order (Chan et al.'s pairwise update, as precise as one
 * batch), and backward sums across processes the two per-channel sums its input
 * gradient needs. gamma's and beta's gradients stay this process's own: the caller
 * averages them with the other gradients. Every process must run the same layers in
 * the same order. A failing callback is the tape's sticky error. NULL turns it off;
 * the composed batch norm (fusion off) refuses to run while one is set. The struct is
 * copied. */
typedef struct tg_stat_sync {
    int size; /* processes, >= 1 */
    /* all[k * n + i] = process k's mine[i], for every process k < size */
    tg_status (*gather)(void *ctx, const double *mine, double *all, int n);
    /* values[i] = the sum over the processes of their values[i] */
    tg_status (*sum)(void *ctx, double *values, int n);
    void *ctx;
} tg_stat_sync;
/* Sets (a copy of *sync) or clears (NULL) the tape's tg_stat_sync, and reads it. */
void tg_tape_set_stat_sync(tg_tape *tp, const tg_stat_sync *sync);
const tg_stat_sync *tg_tape_stat_sync(const tg_tape *tp); /* NULL when off */

/* ------------------------------------------------------------------ leaves */

/* Makes a heap tensor a leaf that collects gradients (a parameter), with a name for
 * reports. Its grad (same shape and dtype, contiguous) appears at the first backward
 * that reaches it and accumulates until tg_zero_grad. tg_tensor_free frees it too. */
tg_status tg_requires_grad(tg_tensor *t, const char *name);
bool tg_is_leaf(const tg_tensor *t);         /* made a leaf by tg_requires_grad */
const char *tg_leaf_name(const tg_tensor *t); /* its name; NULL if t is not a leaf */
tg_tensor *tg_grad(const tg_tensor *t); /* NULL until a backward reached it */
void tg_zero_grad(tg_tensor *t); /* zeros a leaf's grad (keeping its memory); else nothing */

/* ------------------------------------------------------------------ backward */

/* Gradients of a one-element loss (seeded with 1) with respect to everything on the
 * tape that needs one; accumulates into leaves' grads.
 *
 * What it refuses, each as the tape's sticky error: a loss of more than one element
 * (there is no implicit seed; tg_backward_from takes one), a tensor that is not an op's
 * output on this tape (a leaf, a result of a tg_tensor_ function or of evaluation mode,
 * an output of another tape: the message says which), a graph with nothing that needs
 * a gradient, and a second backward on the tape before tg_tape_reset unless
 * tg_tape_set_retain_graph allows it.
 *
 * In-place writes. Before any backward runs, every record it will reach must find the
 * values its backward reads (tg_op.reads) at the versions they had when it was recorded
 * (tg_tensor_version): a parameter overwritten by an optimiser step, tg_tensor_fill_,
 * copy_, axpy_ or any other write through the library between the forward and
 * tg_backward would make the gradient silently wrong, so it is the tape's sticky error
 * instead, naming the op, its scope, the input and both versions, and no gradient is
 * touched. Writes through tg_tensor_data's raw pointer cannot be seen (unless followed
 * by tg_tensor_bump_version). The tape's own writes to gradients are not values any
 * backward reads, and what happens after tg_backward (an optimiser step) is not
 * checked until the next backward. */
tg_status tg_backward(tg_tape *tp, tg_tensor *loss);
/* The same from any output of any shape, seeded with `gout` = dL/d(out) (same shape and
 * dtype as out; NULL is an error). */
tg_status tg_backward_from(tg_tape *tp, tg_tensor *out, const tg_tensor *gout);

/* ------------------------------------------------------------------ inspecting */

typedef struct tg_grad_stats {
    int64_t count;     /* elements; 0 when no gradient reached it */
    double mean_abs;   /* mean |g| */
    double rms;        /* sqrt(mean g^2) */
    double max_abs;    /* max |g| over the finite values */
    double zero_frac;  /* fraction of exact zeros */
    int64_t nonfinite; /* NaN and Inf values (left out of the other numbers) */
    double l2;         /* sqrt(sum g^2): the Euclidean norm, for clipping and logs */
} tg_grad_stats;

/* A record: one call on the tape. Read its fields; the tape owns it. */
struct tg_record {
    int id;                /* position on the tape, from 0 */
    const struct tg_op *op;
    const char *scope;     /* "" at the root */
    int nin;
    tg_tensor **in;        /* the inputs as passed */
    int *in_record;        /* the record that made each input, -1 for leaves and constants */
    tg_tensor *out;
    bool requires_grad;    /* some input needs a gradient */
    tg_tensor *grad;       /* after backward: dL/d(out), or NULL if none reached it */
    void *params;          /* the op's parameters (a copy made by tg_apply), its scratch */
    double forward_s, backward_s; /* with tg_tape_set_profile on: wall time of each */
};

int tg_tape_size(const tg_tape *tp); /* number of records */
/* Record id (0 .. tg_tape_size - 1), or NULL; the tape owns it until tg_tape_reset. */
const tg_record *tg_tape_record(const tg_tape *tp, int id);
/* The id of the last record made directly in scope (not in a scope below it), -1 when
 * there is none: a layer's output record, when the layer records in its own scope (nn's
 * layers record in their names'; tg_model_layer lists them) and its forward was called
 * at the root scope (under a scope the user pushed, ask for "outer/name"). */
int tg_tape_last_in_scope(const tg_tape *tp, const char *scope);
/* The record that made t on this tape, or NULL (a leaf, a constant, another tape). */
const tg_record *tg_tape_record_of(const tg_tape *tp, const tg_tensor *t);
tg_grad_stats tg_record_grad_stats(const tg_record *r); /* of r->grad */
tg_grad_stats tg_tensor_stats(const tg_tensor *t);      /* of any tensor's values */

/* One line a record: id, op, scope, shape, inputs, and after backward the gradient's
 * statistics; then the leaves the tape reached. */
void tg_tape_print(const tg_tape *tp, FILE *f);
/* Which part of the tape tg_tape_print_with shows, and how; zero: all of it, as
 * tg_tape_print. A 20-layer MLP's tape is 125 lines; its summary is 21. */
typedef struct tg_print_options {
    const char *scope; /* records in this scope or below it: "block_0" takes "block_0" and
                        * "block_0/conv_0", not "block_01"; NULL or "": every scope */
    int first, count;  /* records with ids first .. first + count - 1; count 0: to the end */
    bool summary;      /* one line a scope, in the order of their last records: how many
                        * records, the first and last ids, and the statistics of the
                        * gradient of its last record's output (a layer's output
                        * gradient); no leaves */
} tg_print_options;
/* tg_tape_print of the records opts selects (NULL: all); the leaves listed are those
 * the shown records read. */
void tg_tape_print_with(const tg_tape *tp, FILE *f, const tg_print_options *opts);
/* Graphviz DOT: a node a record and a leaf, labelled with op, scope and shape, filled
 * by log10 of mean |g| after backward (pale when it vanishes). */
tg_status tg_tape_write_dot(const tg_tape *tp, FILE *f);

/* The tape as one web page that steps through backward, a record at a time:
 *
 *   tg_backward(tp, loss);                         // gradients kept (the default)
 *   FILE *f = fopen("tape.html", "w");
 *   if (!f || tg_tape_write_html(tp, f, &(tg_html_options){.title = "my net"}) != TG_OK)
 *       fprintf(stderr, "%s\n", tg_last_error());  // e.g. Graphviz's dot is missing
 *   ... fclose(f), then open tape.html in a browser ...
 *
 * One self-contained file (its style, script, graph and data inline; it loads nothing,
 * so it opens from disk, offline). It draws the tape (tg_tape_write_dot's graph, laid
 * out now by Graphviz's `dot -Tsvg`, which must be installed: the error names the
 * command when it is not) and lists the records with their op, scope, shape and
 * gradient statistics. Stepping (buttons, or the right and left arrow keys) follows the
 * records in the order tg_backward ran them: the current record is highlighted, with
 * the gradient it read and the share it added to each input, as numbers for tensors of
 * up to max_numbers elements and as statistics and a histogram for larger ones; a value
 * used twice shows its two shares and their sum. A forward mode steps through the
 * values the same way, and a gradient-flow view shows each scope's (layer's) weight and
 * output mean |gradient| on one log10 colour scale, its records listed under it.
 *
 * Call it after tg_backward with gradients kept (before it, or with
 * tg_tape_set_keep_grads off, the page has the forward mode only). The tape has summed
 * the shares each value received; to show them one by one the writer runs each
 * record's backward again with the shares sent to the page instead of added. The
 * tape's gradients do not change, but that takes about one backward's time and some
 * arena memory until tg_tape_reset: hence tp is not const. Tensors above max_numbers
 * elements are summarised, so a VGG_38 training step at batch 100 makes a page of
 * about 0.3 MB (1.7 MB with batch norm and fusion off). Errors: TG_ERR_IO when dot
 * cannot be run or fails or the file cannot be written, TG_ERR_NOMEM; the message says
 * which. */
typedef struct tg_html_options {
    const char *title; /* the page's heading; NULL: "tapegrad tape" */
    const char *dot;   /* Graphviz's dot program; NULL: "dot", looked up on PATH */
    int max_numbers;   /* tensors of up to this many elements are shown as numbers; 0: 64 */
    int bins;          /* histogram bars for the larger ones; 0: 32 */
} tg_html_options;
tg_status tg_tape_write_html(tg_tape *tp, FILE *f, const tg_html_options *opt); /* opt NULL: defaults */

/* ------------------------------------------------------------------ elementwise ops */

/* Elementwise ops on the tape, as the tensor module's kernels of the same name
 * (tg_tensor_add, ...). Each computes its result into the tape's arena (valid until
 * tg_tape_reset) and records itself; inputs are f32 or f64, binary ones of one dtype.
 * A failure is the tape's sticky error, and the result a placeholder safe to pass on. */
tg_tensor *tg_add(tg_tape *tp, tg_tensor *a, tg_tensor *b); /* broadcasting */
tg_tensor *tg_sub(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_mul(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_div(tg_tape *tp, tg_tensor *a, tg_tensor *b);
tg_tensor *tg_maximum(tg_tape *tp, tg_tensor *a, tg_tensor *b); /* a tie gives each side half */
tg_tensor *tg_neg(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_add_scalar(tg_tape *tp, tg_tensor *x, double s);
tg_tensor *tg_mul_scalar(tg_tape *tp, tg_tensor *x, double s);
tg_tensor *tg_pow_scalar(tg_tape *tp, tg_tensor *x, double exponent);
tg_tensor *tg_exp(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_log(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_sqrt(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_rsqrt(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_tanh(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_sigmoid(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_relu(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_leaky_relu(tg_tape *tp, tg_tensor *x, double slope);
/* The same, in place (PyTorch's relu_ and inplace=True): the result is written over x's
 * elements and returned as a new tensor of the tape, which is what must be passed on; x
 * itself is stale after the call (an op given x refuses: the gradient would skip the
 * activation). The backward reads the result only, so a conv2d's or batch_norm2d's
 * output, which no backward reads, can take its activation without a tensor of its own
 * (nn's VGG does on a fused tape). Refused, as the tape's error naming the op and scope:
 * x a parameter or a view of one, x with elements that share memory (an expanded
 * view), x read by the backward of an op already recorded (tg_exp's output, tg_mul's
 * input), and a negative slope (the sign of the output would no longer be the input's).
 * A write made to the result later, before tg_backward, is its error (see tg_backward). */
tg_tensor *tg_relu_(tg_tape *tp, tg_tensor *x);
tg_tensor *tg_leaky_relu_(tg_tape *tp, tg_tensor *x, double slope); /* slope >= 0 */
tg_tensor *tg_clamp(tg_tape *tp, tg_tensor *x, double lo, double hi); /* NAN: no bound */
/* x * mask / (1 - p) with mask ~ Bernoulli(1 - p) from the tape's generator; the
 * identity when grad is disabled (evaluation) or p == 0. */
tg_tensor *tg_dropout(tg_tape *tp, tg_tensor *x, double p);

/* ------------------------------------------------------------------ reductions */

/* Reductions on the tape, as tg_tensor_sum and the others: over the listed axes
 * (negative counts from the end; naxes 0 = all axes), keepdim keeps them as size 1;
 * tg_var's correction as tg_tensor_var's; log_softmax along one axis. Results and
 * errors as for the elementwise ops. */
tg_tensor *tg_sum(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_mean(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_var(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, int correction,
                  bool keepdim);
/* Tied maxima share the gradient equally (1/2 each of two, 1/3 each of three). */
tg_tensor *tg_max(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_logsumexp(tg_tape *tp, tg_tensor *x, int naxes, const int *axes, bool keepdim);
tg_tensor *tg_log_softmax(tg_tape *tp, tg_tensor *x, int axis);
/* out[i...] = x[i..., index[i...], ...] along axis; index is i32, shaped as x without
 * axis. The classifier's pick of each example's label. */
tg_tensor *tg_gather(tg_tape *tp, tg_tensor *x, int axis, const tg_tensor *index);
/* -mean_i logp[i, labels[i]]: logp [N, C] (log-probabilities), labels i32 [N] in 0..C-1 */
tg_tensor *tg_nll_loss(tg_tape *tp, tg_tensor *logp, const tg_tensor *labels);

/* ------------------------------------------------------------------ linear algebra */

tg_tensor *tg_matmul(tg_tape *tp, tg_tensor *a, tg_tensor *b); /* 2-D or batched */

/* ------------------------------------------------------------------ views */

/* Views on the tape, as tg_tensor_reshape and the others (same arguments): the result
 * shares x's storage wherever the tensor module's would (tg_reshape copies when the
 * strides do not allow a view), and the gradient flows back to x's elements. */
tg_tensor *tg_reshape(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
tg_tensor *tg_permute(tg_tape *tp, tg_tensor *x, int ndim, const int *perm);
tg_tensor *tg_transpose(tg_tape *tp, tg_tensor *x, int d0, int d1);
tg_tensor *tg_slice(tg_tape *tp, tg_tensor *x, int dim, int64_t start, int64_t stop, int64_t step);
tg_tensor *tg_select(tg_tape *tp, tg_tensor *x, int dim, int64_t index);
tg_tensor *tg_expand(tg_tape *tp, tg_tensor *x, int ndim, const int64_t *shape);
tg_tensor *tg_squeeze(tg_tape *tp, tg_tensor *x, int dim); /* or TG_ALL_AXES */
tg_tensor *tg_unsqueeze(tg_tape *tp, tg_tensor *x, int dim);
/* n tensors of one shape but along `axis`, joined along it (a copy) */
tg_tensor *tg_concat(tg_tape *tp, int n, tg_tensor *const *xs, int axis);

/* ------------------------------------------------------------------ convolution */

/* Convolution's pieces and pooling on the tape, as tg_tensor_im2col and the tensor
 * module's pooling kernels, over x [N, C, H, W] with the geometry in g. */
tg_tensor *tg_im2col(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g); /* backward: col2im */
tg_tensor *tg_avg_pool2d(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g);
tg_tensor *tg_max_pool2d(tg_tape *tp, tg_tensor *x, const tg_conv2d_geom *g);
tg_tensor *tg_global_avg_pool2d(tg_tape *tp, tg_tensor *x); /* [N,C,H,W] -> [N,C] */

/* A whole convolution as one op, recorded as "conv2d" (tg_tensor_conv2d's kernels):
 * x [N,C,H,W], w [OC,C,kh,kw], b [OC] or NULL -> [N,OC,OH,OW]. Its backward computes only
 * the gradients its inputs need (no input gradient for a first layer). nn's conv2d layer
 * (tg_nn_conv2d_forward) calls it when the tape is fused. */
tg_tensor *tg_conv2d(tg_tape *tp, tg_tensor *x, tg_tensor *w, tg_tensor *b, const tg_conv2d_geom *g);

/* ------------------------------------------------------------------ normalisation */

/* Batch normalisation in training mode as one op ("batch_norm2d"): x [N,C,H,W] (any
 * strides), gamma and beta [C] of x's dtype. Per channel, with the batch mean and the
 * biased variance over (N,H,W), accumulated in f64:
 *   y = (x - mean) / sqrt(var + eps) * gamma + beta
 * Gradients reach x, gamma and beta. *batch_mean and *batch_var (either may be NULL)
 * receive those statistics as [C] tensors of x's dtype in the tape's arena, constants
 * for a layer's running averages; NULL when the call fails. Results do not depend on
 * the thread count. nn's batch norm layer uses it in training when tg_tape_fused. */
tg_tensor *tg_batch_norm2d(tg_tape *tp, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta, double eps,
                           tg_tensor **batch_mean, tg_tensor **batch_var);

/* ------------------------------------------------------------------ your own ops */

/* An op: what the tape records and runs. Built-in ops are tg_op values defined the
 * same way (one table, one path through the tape).
 *
 * forward computes r->out from r->in[0..r->nin-1] and r->params, allocating from
 * tg_tape_arena(tp); it may keep what backward needs in r->params (a writable copy)
 * or read r->out later. It returns the output, or NULL after an error (tg_set_error,
 * or a kernel's): the tape makes it its sticky error with the function set to the op's
 * ("tg_" and its name), the status and detail kept, and the scope added.
 *
 * backward receives gout = dL/d(out) (the shape and dtype of out) and hands each input
 * that needs it (tg_needs_grad) its gradient with tg_accumulate_grad, which checks
 * shape and dtype and adds it where the input came from. NULL: not differentiable.
 *
 * reads says which values backward reads, so that tg_backward can refuse when one of
 * them was written in place after the forward (see tg_backward): TG_READS_IN(i) for
 * input i, TG_READS_OUT for the output, or TG_READS_NONE for a backward that needs
 * only shapes and params (add, sum, the views). Left 0, every input and the output
 * are checked: always safe, but it refuses in-place writes a backward would not see.
 */
typedef struct tg_op {
    const char *name; /* "matmul": its errors' function is "tg_matmul" */
    tg_tensor *(*forward)(tg_tape *tp, tg_record *r);
    tg_status (*backward)(tg_tape *tp, const tg_record *r, const tg_tensor *gout);
    unsigned reads;   /* TG_READS_* flags; 0: everything */
} tg_op;
#define TG_READS_IN(i) (1u << ((i) < 29 ? (i) : 29)) /* inputs 29 and up share a flag */
#define TG_READS_OUT (1u << 30)
#define TG_READS_NONE (1u << 31)

/* Runs op on the inputs (params_size bytes at params are copied for the record) and
 * records it. Inputs may be NULL only where the op says so; the tape checks nothing
 * else about them, the op's forward does. */
tg_tensor *tg_apply(tg_tape *tp, const tg_op *op, int nin, tg_tensor *const *in,
                    const void *params, size_t params_size);
/* Whether input i of r wants a gradient (a leaf, or made from one on this tape). */
bool tg_needs_grad(const tg_tape *tp, const tg_record *r, int i);
/* Adds g, input i's gradient, to what that input has received (a copy the first time);
 * g of the wrong shape or dtype is the tape's sticky error, naming the op. */
tg_status tg_accumulate_grad(tg_tape *tp, const tg_record *r, int i, const tg_tensor *g);
/* Records the first error on the tape (as a failing op would) and returns its status:
 * tg_tape_fail_in names the public function the user called (a layer names itself) and
 * formats the detail; the tape adds the scope. tg_tape_fail names no function (its
 * text is the whole message, before the scope). A tape already in error keeps its own. */
tg_status tg_tape_fail_in(tg_tape *tp, tg_status s, const char *function, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;
tg_status tg_tape_fail(tg_tape *tp, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* tg_tape_fail for code that returns a tensor: records the error and returns
 * tg_tape_placeholder(tp). */
tg_tensor *tg_tape_fail_tensor(tg_tape *tp, tg_status s, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
/* tg_tape_fail_in for code that returns a tensor (a layer's forward): records the error
 * naming `function` and returns tg_tape_placeholder(tp). */
tg_tensor *tg_tape_fail_tensor_in(tg_tape *tp, tg_status s, const char *function, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 4, 5)))
#endif
    ;

/* ------------------------------------------------------------------ gradient checking */

/* The function under test: builds its output on tp from the inputs. */
typedef tg_tensor *(*tg_gradcheck_fn)(tg_tape *tp, tg_tensor *const *inputs, void *user);

typedef struct tg_gradcheck_options {
    double eps;           /* central-difference step; 0: 1e-6 */
    double atol, rtol;    /* |analytic - numeric| <= atol + rtol * |numeric|; 0: 1e-5, 1e-3 */
    int64_t max_elements; /* per input, a random sample above this; 0: 4096 */
    uint64_t seed;        /* for the sample and the projection */
    bool full_jacobian;   /* every output element, not a random projection (see below) */
} tg_gradcheck_options;

typedef struct tg_gradcheck_report {
    bool ok;
    int64_t checked;      /* elements compared (Jacobian entries with full_jacobian) */
    int64_t kinks;        /* skipped: f is not differentiable within eps there */
    /* the worst comparison: input number, flat row-major index into it, the output
     * element's flat index (full_jacobian; -1 otherwise), both values, their difference */
    int input;
    int64_t index;
    int64_t output_index;
    double analytic, numeric, error;
    char message[512];    /* what failed and where, or a one-line summary */
} tg_gradcheck_report;

/* Checks fn's gradients against central differences in float64, as
 * torch.autograd.gradcheck does.
 *
 * Inputs. Each f32 or f64 input is copied to an f64 leaf with its layout (shape,
 * strides, including 0 on a broadcast axis, and offset, over a copy of its storage), so
 * an op is checked on the transposed, sliced or broadcast input it is given. Integer
 * inputs (labels) pass through unchanged. A storage element that several positions
 * share (a broadcast axis) is perturbed once, and compared with the sum of their
 * gradients.
 *
 * What is compared. By default not the whole Jacobian J but a random projection of it,
 * PyTorch's "fast mode": the output is projected on a fixed random direction v (from
 * seed), L = <v, fn(x)>; the analytic dL/dx is one tg_backward_from seeded with v, and
 * dL/dx_j is (L(x + eps e_j) - L(x - eps e_j)) / 2 eps numerically, for every element j
 * of every input, or for max_elements of them drawn at random with repeats (so a
 * sample may check an element twice and miss another). v^T J is wrong for almost every
 * v when J is, and a backward that ignores its incoming gradient fails. With
 * full_jacobian, every output element is a row of its own: one backward per output
 * element, every entry of J (or of the sampled columns) compared, and the report names
 * the output element too; that costs one backward per output element.
 *
 * Kinks. Where an element's one-sided differences disagree (relu at 0, a tie of max or
 * maximum), the central difference is their mean, which a backward need not return:
 * any value between the two slopes is a valid gradient there. Such an element, with the
 * analytic value between the slopes, is counted in report->kinks and skipped. So
 * tg_max's tied maxima sharing the gradient equally (1/2 each for two, 1/3 for three)
 * and tg_maximum's half to each pass, as relu's 0 at 0 does.
 *
 * Returns TG_OK if every checked element agrees; TG_ERR_CHECK and the report (also
 * tg_last_error) say which did not; another status when fn or its backward fails. */
tg_status tg_gradcheck(tg_gradcheck_fn fn, void *user, int nin, tg_tensor *const *inputs,
                       const tg_gradcheck_options *opts, tg_gradcheck_report *report);

#ifdef __cplusplus
}
#endif
#endif
