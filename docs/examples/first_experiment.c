/* first_experiment.c — the program docs/guide.md builds, section by section: a
 * two-layer perceptron trained on Fashion-MNIST with Adam, evaluated each epoch,
 * checkpointed, its results and gradient flow written as CSV files.
 *
 *   first_experiment [--out DIR] [--epochs N] [--seed S] [--resume] [--synthetic]
 *
 *   --out DIR     where summary.csv, gradflow.csv and checkpoint.safetensors go
 *                 (default: first_experiment_out; created if missing)
 *   --epochs N    epochs to train, 1..1000 (default 3)
 *   --seed S      seed of the weights, the order of the batches (default 0)
 *   --resume      continue from DIR/checkpoint.safetensors
 *   --synthetic   a small made-up data set instead of Fashion-MNIST (for tests)
 *
 * Only <tapegrad.h> and the C library: build it in the tree (docs/meson.build) or
 * outside with  cc -std=c11 first_experiment.c $(pkg-config --cflags --libs tapegrad). */
#include <tapegrad.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define PROG "first_experiment"
#define HIDDEN 128
#define CLASSES 10

/* ------------------------------------------------------------------ the model */

typedef struct mlp {
    tg_model *model; /* owns the parameters */
    tg_nn_linear fc1, fc2;
} mlp;

static tg_status mlp_init(mlp *net, int64_t inputs, tg_rng *g)
{
    net->model = tg_model_new();
    if (!net->model)
        return tg_last_status();
    tg_status st = tg_nn_linear_init(&net->fc1, net->model, "fc1", inputs, HIDDEN, true, g);
    if (st == TG_OK)
        st = tg_nn_linear_init(&net->fc2, net->model, "fc2", HIDDEN, CLASSES, true, g);
    return st;
}

/* x [N, C, H, W] -> logits [N, CLASSES] */
static tg_tensor *mlp_forward(tg_tape *tp, const mlp *net, tg_tensor *x)
{
    tg_tensor *flat = tg_reshape(tp, x, TG_DIMS(x->shape[0], -1));
    tg_tensor *h = tg_relu(tp, tg_nn_linear_forward(tp, &net->fc1, flat));
    return tg_nn_linear_forward(tp, &net->fc2, h);
}

/* ------------------------------------------------------------------ data */

/* 600 made-up 28x28 images whose brightness is their label: learnable in an epoch. */
static tg_dataset *synthetic(tg_rng *g)
{
    enum { N = 600 };
    tg_tensor *images = tg_tensor_empty(NULL, TG_U8, TG_DIMS(N, 1, 28, 28));
    tg_tensor *labels = tg_tensor_empty(NULL, TG_I32, TG_DIMS(N));
    tg_dataset *d = NULL;
    if (images && labels) {
        uint8_t *px = tg_tensor_data(images);
        int32_t *lb = tg_tensor_data(labels);
        for (int i = 0; i < N; i++) {
            lb[i] = (int32_t)tg_rng_below(g, CLASSES);
            for (int k = 0; k < 28 * 28; k++)
                px[i * 28 * 28 + k] = (uint8_t)(lb[i] * 25 + tg_rng_below(g, 20));
        }
        d = tg_dataset_from_tensors("synthetic", images, labels, CLASSES, NULL);
    }
    tg_tensor_free(images); /* the data set keeps its own views */
    tg_tensor_free(labels);
    return d;
}

/* ------------------------------------------------------------------ files */

/* Writes text to path whole or not at all: tg_write_file_atomic writes a temporary
 * file of a unique name beside it, then renames it over path. */
static int write_atomic(const char *path, const char *text)
{
    if (tg_write_file_atomic(path, text, strlen(text)) != TG_OK) {
        fprintf(stderr, PROG ": %s\n", tg_last_error());
        return 1;
    }
    return 0;
}

/* A growing string for a CSV file's contents. */
typedef struct text {
    char *s;
    size_t len, cap;
} text;

static int appendf(text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return 1;
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return 0;
        }
        size_t cap = 2 * (t->cap + (size_t)n + 64);
        char *s = realloc(t->s, cap);
        if (!s)
            return 1;
        t->s = s;
        t->cap = cap;
    }
}

/* On --resume: the rows written so far, so that the files go on where they stopped. */
static int append_file(text *t, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 1;
    char buf[4096];
    size_t n;
    int rc = 0;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf - 1, f)) > 0) {
        buf[n] = '\0';
        rc = appendf(t, "%s", buf);
    }
    fclose(f);
    return rc;
}

/* ------------------------------------------------------------------ training */

typedef struct run {
    mlp net;
    tg_optim *opt;
    tg_tape *tp;
    tg_batcher *train, *val;
    text summary, gradflow;
} run;

/* The gradient flow of the step just back-propagated: mean |dL/dW| of each weight. */
static int record_gradflow(run *r, int epoch)
{
    for (int i = 0; i < tg_model_num_params(r->net.model); i++) {
        const char *name = tg_model_param_name(r->net.model, i);
        if (!strstr(name, "/weight"))
            continue; /* biases are left out, as in the study */
        tg_grad_stats s = tg_tensor_stats(tg_grad(tg_model_param(r->net.model, i)));
        if (appendf(&r->gradflow, "%d,%s,%.6g,%.6g\n", epoch, name, s.mean_abs, s.max_abs))
            return 1;
    }
    return 0;
}

static int train_epoch(run *r, int epoch, double *loss, double *acc)
{
    tg_model_set_training(r->net.model, true);
    if (tg_batcher_start_epoch(r->train, epoch) != TG_OK)
        return 1;
    int64_t batches = tg_batcher_num_batches(r->train), done = 0, seen = 0;
    double loss_sum = 0, correct = 0;
    tg_tensor *x, *y;
    while (tg_batcher_next(r->train, &x, &y)) {
        tg_tensor *logits = mlp_forward(r->tp, &r->net, x);
        tg_tensor *l = tg_nn_cross_entropy(r->tp, logits, y);
        if (tg_backward(r->tp, l) != TG_OK) { /* one check for the whole step */
            fprintf(stderr, PROG ": epoch %d: %s\n", epoch + 1, tg_tape_error(r->tp));
            return 1;
        }
        int64_t n = y->shape[0];
        loss_sum += tg_tensor_item(l) * (double)n;
        correct += tg_nn_accuracy(logits, y) * (double)n;
        seen += n;
        if (++done == batches && record_gradflow(r, epoch + 1))
            return 1;
        if (tg_optim_step(r->opt) != TG_OK)
            return 1;
        tg_model_zero_grad(r->net.model);
        tg_tape_reset(r->tp); /* the step's tensors, records and gradients, at once */
    }
    *loss = loss_sum / (double)seen;
    *acc = correct / (double)seen;
    return 0;
}

static int evaluate(run *r, double *loss, double *acc)
{
    tg_model_set_training(r->net.model, false);
    bool was = tg_tape_set_grad_enabled(r->tp, false); /* compute, record nothing */
    double loss_sum = 0, correct = 0;
    int64_t seen = 0;
    tg_tensor *x, *y;
    if (tg_batcher_start_epoch(r->val, 0) != TG_OK)
        return 1;
    while (tg_batcher_next(r->val, &x, &y)) {
        tg_tensor *logits = mlp_forward(r->tp, &r->net, x);
        tg_tensor *l = tg_nn_cross_entropy(r->tp, logits, y);
        if (tg_tape_status(r->tp) != TG_OK) {
            fprintf(stderr, PROG ": evaluation: %s\n", tg_tape_error(r->tp));
            return 1;
        }
        loss_sum += tg_tensor_item(l) * (double)y->shape[0];
        correct += tg_nn_accuracy(logits, y) * (double)y->shape[0];
        seen += y->shape[0];
        tg_tape_reset(r->tp);
    }
    tg_tape_set_grad_enabled(r->tp, was);
    *loss = loss_sum / (double)seen;
    *acc = correct / (double)seen;
    return 0;
}

/* The model and the optimiser's state, with the epochs done as metadata. */
static tg_status save_checkpoint(const run *r, const char *path, int epochs_done)
{
    int n = tg_optim_num_state(r->opt);
    const char *names[256];
    const tg_tensor *state[256];
    if (n > 256)
        return tg_set_error(TG_ERR_ARG, PROG ": %d optimiser tensors, at most 256", n);
    for (int i = 0; i < n; i++) {
        names[i] = tg_optim_state_name(r->opt, i);
        state[i] = tg_optim_state(r->opt, i);
    }
    char epoch[16];
    snprintf(epoch, sizeof epoch, "%d", epochs_done);
    const tg_kv meta[] = {{"epoch", epoch}, {"program", PROG}};
    return tg_checkpoint_save(path, r->net.model, n, names, state, 2, meta);
}

static tg_status load_checkpoint(run *r, const char *path, int *epochs_done)
{
    int n = tg_optim_num_state(r->opt);
    const char *names[256];
    tg_tensor *state[256];
    if (n > 256)
        return tg_set_error(TG_ERR_ARG, PROG ": %d optimiser tensors, at most 256", n);
    for (int i = 0; i < n; i++) {
        names[i] = tg_optim_state_name(r->opt, i);
        state[i] = tg_optim_state(r->opt, i);
    }
    tg_safetensors *file;
    tg_status st = tg_checkpoint_load(path, r->net.model, n, names, state, &file);
    if (st == TG_OK) {
        const char *e = tg_safetensors_meta(file, "epoch");
        *epochs_done = e ? atoi(e) : 0;
        tg_safetensors_free(file);
    }
    return st;
}

/* ------------------------------------------------------------------ main */

static int usage(FILE *f, int status)
{
    fprintf(f, "usage: " PROG " [--out DIR] [--epochs N] [--seed S] [--resume] [--synthetic]\n"
               "  Trains a two-layer perceptron on Fashion-MNIST (docs/guide.md).\n");
    return status;
}

int main(int argc, char **argv)
{
    const char *out = "first_experiment_out";
    int epochs = 3;
    unsigned long seed = 0;
    bool resume = false, synth = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!strcmp(a, "--help"))
            return usage(stdout, 0);
        else if (!strcmp(a, "--resume"))
            resume = true;
        else if (!strcmp(a, "--synthetic"))
            synth = true;
        else if (!strcmp(a, "--out") && v)
            out = argv[++i];
        else if (!strcmp(a, "--epochs") && v && (epochs = (int)strtol(argv[++i], &end, 10), !*end) &&
                 epochs >= 1 && epochs <= 1000)
            continue;
        else if (!strcmp(a, "--seed") && v && (seed = strtoul(argv[++i], &end, 10), !*end))
            continue;
        else {
            fprintf(stderr, PROG ": bad argument '%s' (try --help)\n", a);
            return 2;
        }
    }
    if (mkdir(out, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, PROG ": %s: %s\n", out, strerror(errno));
        return 1;
    }
    char ckpt[4096], summary_path[4096], gradflow_path[4096];
    snprintf(ckpt, sizeof ckpt, "%s/checkpoint.safetensors", out);
    snprintf(summary_path, sizeof summary_path, "%s/summary.csv", out);
    snprintf(gradflow_path, sizeof gradflow_path, "%s/gradflow.csv", out);

    int status = 1;
    run r = {0};
    tg_dataset *full = NULL, *train = NULL, *val = NULL;
    tg_rng root = tg_rng_new(seed), init = tg_rng_split(&root, 0);
    tg_rng data_rng = tg_rng_split(&root, 9);

    /* data: 95% to train on, 5% to validate with; pixels normalised per channel */
    full = synth ? synthetic(&data_rng) : tg_dataset_load("fashion-mnist", NULL, TG_DATASET_TRAIN);
    if (!full || tg_dataset_split(full, 0.05, 0, &train, &val) != TG_OK)
        goto fail;
    tg_normalization norm;
    if (tg_dataset_channel_stats(train, &norm) != TG_OK)
        goto fail;
    r.train = tg_batcher_new(train, &(tg_batcher_config){.batch_size = 100, .shuffle = true, .norm = &norm,
                                                         .rng = tg_rng_split(&root, 1)});
    r.val = tg_batcher_new(val, &(tg_batcher_config){.batch_size = 500, .norm = &norm});
    if (!r.train || !r.val)
        goto fail;

    /* model, optimiser, tape */
    int64_t inputs = train->images->shape[1] * train->images->shape[2] * train->images->shape[3];
    if (mlp_init(&r.net, inputs, &init) != TG_OK)
        goto fail;
    r.opt = tg_optim_new(r.net.model, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3});
    r.tp = tg_tape_new(seed);
    if (!r.opt || !r.tp)
        goto fail;
    tg_lr_schedule sched = {.kind = TG_LR_COSINE, .lr0 = 1e-3, .eta_min = 1e-5, .t_max = epochs};

    int first = 0;
    if (resume && load_checkpoint(&r, ckpt, &first) != TG_OK)
        goto fail;
    if (first > 0 ? append_file(&r.summary, summary_path) || append_file(&r.gradflow, gradflow_path)
                  : appendf(&r.summary, "epoch,train_loss,train_acc,val_loss,val_acc\n") ||
                        appendf(&r.gradflow, "epoch,weight,mean_abs_grad,max_abs_grad\n")) {
        fprintf(stderr, PROG ": cannot read or start the CSV files in %s\n", out);
        goto done;
    }
    printf("%lld training and %lld validation images, %lld parameters%s\n", (long long)tg_dataset_size(train),
           (long long)tg_dataset_size(val), (long long)tg_model_param_count(r.net.model),
           first ? ", resumed" : "");

    for (int e = first; e < epochs; e++) {
        tg_optim_set_lr(r.opt, tg_lr_at(&sched, e));
        double tl, ta, vl, va;
        if (train_epoch(&r, e, &tl, &ta) != 0 || evaluate(&r, &vl, &va) != 0)
            goto fail;
        printf("epoch %d/%d  train loss %.4f acc %.4f  val loss %.4f acc %.4f\n", e + 1, epochs, tl, ta, vl, va);
        if (appendf(&r.summary, "%d,%.6f,%.6f,%.6f,%.6f\n", e + 1, tl, ta, vl, va) ||
            write_atomic(summary_path, r.summary.s) || write_atomic(gradflow_path, r.gradflow.s))
            goto done;
        if (save_checkpoint(&r, ckpt, e + 1) != TG_OK)
            goto fail;
    }
    status = 0;
    goto done;
fail:
    fprintf(stderr, PROG ": %s\n", r.tp && tg_tape_status(r.tp) ? tg_tape_error(r.tp) : tg_last_error());
done:
    free(r.summary.s);
    free(r.gradflow.s);
    tg_tape_free(r.tp);
    tg_optim_free(r.opt); /* before the model it refers to */
    tg_model_free(r.net.model);
    tg_batcher_free(r.train);
    tg_batcher_free(r.val);
    tg_dataset_free(full);
    tg_dataset_free(train);
    tg_dataset_free(val);
    return status;
}
