/* ch6_vanishing.c — chapter 6 of docs/tutorial: vanishing gradients, read off the tape.
 *
 * The study's networks (tg_vgg: 3 stages; 0 processing blocks per stage is VGG_08,
 * 5 is VGG_38), made small enough to run in a fraction of a second: 8 filters, 16x16
 * random images, a batch of 8, 10 classes, f64. Each network is built with PyTorch's
 * default initialisation and does one forward and backward on the same batch; nothing
 * is trained. Three networks:
 *   VGG_08, no BN          (only the entry convolution has batch norm, as the original)
 *   VGG_38, no BN
 *   VGG_38, BN before each activation
 * For every convolution of VGG_38 (and the final linear layer) the program prints the
 * RMS of its output, the mean |dL/d(output)| that reached it (the record's gradient)
 * and the mean |dL/dW| of its weight, then writes both VGG_38 tapes as DOT, coloured by
 * gradient magnitude, and as web pages whose gradient-flow view shows the same layer by
 * layer. Output compared with ch6_vanishing.expected. */
#include <tapegrad.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#define BATCH 8
#define SIZE 16
#define CLASSES 10

typedef struct run {
    const char *label;
    tg_vgg *net;
    tg_tape *tp;
    double loss;
} run;

/* Builds the network (weights from seed 0), runs forward and backward on x, y. */
static int run_net(run *R, const char *label, int blocks, tg_bn_placement bn, tg_tensor *x, tg_tensor *y)
{
    R->label = label;
    tg_rng g = tg_rng_new(0);
    R->net = tg_vgg_new(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = blocks, .num_filters = 8,
                                         .in_channels = 3, .num_classes = CLASSES, .bn = bn,
                                         .dtype = TG_F64},
                        &g);
    R->tp = tg_tape_new(0);
    if (!R->net || !R->tp) {
        fprintf(stderr, "ch6_vanishing: %s\n", tg_last_error());
        return 1;
    }
    tg_tape_set_fused(R->tp, false); /* every primitive on the tape, as in chapter 5 */
    tg_tensor *loss = tg_nn_cross_entropy(R->tp, tg_vgg_forward(R->tp, R->net, x), y);
    if (tg_backward(R->tp, loss) != TG_OK) {
        fprintf(stderr, "ch6_vanishing: %s: %s\n", label, tg_tape_error(R->tp));
        return 1;
    }
    R->loss = tg_tensor_item(loss);
    return 0;
}

static double weight_grad(const run *R, const char *layer)
{
    char name[128];
    snprintf(name, sizeof name, "%s/weight", layer);
    tg_tensor *w = tg_model_find(tg_vgg_model(R->net), name);
    return w ? tg_tensor_stats(tg_grad(w)).mean_abs : NAN;
}

/* The matmul record of each layer: a convolution's (scope ".../conv_k") or the linear
 * layer's; its output is the layer's output before the bias. The i-th one, or NULL. */
static const tg_record *layer_record(const run *R, int i)
{
    for (int id = 0; id < tg_tape_size(R->tp); id++) {
        const tg_record *r = tg_tape_record(R->tp, id);
        if (!strcmp(r->op->name, "matmul") && i-- == 0)
            return r;
    }
    return NULL;
}

/* The tape drawn: as Graphviz DOT, or (html) as the page that steps through backward
 * and shows the gradient flow layer by layer (tg_tape_write_html). */
static int write_drawing(const run *R, const char *path, bool html)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "ch6_vanishing: %s: cannot open for writing\n", path);
        return 1;
    }
    tg_status st = html ? tg_tape_write_html(R->tp, f, &(tg_html_options){.title = R->label})
                        : tg_tape_write_dot(R->tp, f);
    if (fclose(f) != 0 || st != TG_OK) {
        fprintf(stderr, "ch6_vanishing: %s: %s\n", path, st != TG_OK ? tg_last_error() : "write failed");
        return 1;
    }
    printf("wrote %s (%d records)\n", path, tg_tape_size(R->tp));
    return 0;
}

int main(void)
{
    int rc = 1;
    tg_rng g = tg_rng_new(1);
    tg_tensor *x = tg_tensor_randn(NULL, &g, TG_F64, TG_DIMS(BATCH, 3, SIZE, SIZE));
    tg_tensor *y = tg_tensor_empty(NULL, TG_I32, TG_DIMS(BATCH));
    run runs[3] = {{0}};
    if (!x || !y) {
        fprintf(stderr, "ch6_vanishing: %s\n", tg_last_error());
        goto done;
    }
    for (int i = 0; i < BATCH; i++)
        tg_tensor_set(y, (int64_t[]){i}, tg_rng_below(&g, CLASSES));

    if (run_net(&runs[0], "VGG_08, no BN", 0, TG_BN_NONE, x, y) != 0 ||
        run_net(&runs[1], "VGG_38, no BN", 5, TG_BN_NONE, x, y) != 0 ||
        run_net(&runs[2], "VGG_38, BN before act", 5, TG_BN_BEFORE, x, y) != 0)
        goto done;

    printf("One batch of %d random %dx%d images, 8 filters, %d classes, f64, weights as PyTorch\n"
           "initialises them (seed 0), no training:\n\n", BATCH, SIZE, SIZE, CLASSES);
    printf("  %-22s %8s %10s %9s   %s\n", "network", "records", "parameters", "loss", "mean|dL/dW| first conv, last layer");
    for (int k = 0; k < 3; k++) {
        const run *R = &runs[k];
        printf("  %-22s %8d %10lld %9.6f   %.3e  %.3e\n", R->label, tg_tape_size(R->tp),
               (long long)tg_model_param_count(tg_vgg_model(R->net)), R->loss,
               weight_grad(R, "input_conv/conv_0"), weight_grad(R, "logit_linear_layer"));
    }
    printf("  (the loss of a network that knows nothing is log(10) = %.6f)\n", log(10.0));

    printf("\nVGG_38, layer by layer, from the input to the output. rms(out): the size of the\n"
           "layer's output (before bias); dL/d(out): mean |gradient| of the layer's matmul record;\n"
           "dL/dW: mean |gradient| of its weight.\n\n");
    printf("  %-4s %-26s | %10s %12s %11s | %11s\n", "rec", "layer", "no BN: rms", "dL/d(out)", "dL/dW",
           "BN: dL/dW");
    for (int i = 0;; i++) {
        const tg_record *a = layer_record(&runs[1], i), *b = layer_record(&runs[2], i);
        if (!a || !b)
            break;
        printf("  #%-3d %-26s | %10.3e %12.3e %11.3e | %11.3e\n", a->id, a->scope, tg_tensor_stats(a->out).rms,
               tg_record_grad_stats(a).mean_abs, weight_grad(&runs[1], a->scope), weight_grad(&runs[2], b->scope));
    }

    double plain = weight_grad(&runs[1], "input_conv/conv_0"), bn = weight_grad(&runs[2], "input_conv/conv_0");
    double shallow = weight_grad(&runs[0], "input_conv/conv_0");
    printf("\nFirst convolution, mean |dL/dW|: VGG_38 without BN %.3e, with BN %.3e: %.0f orders of\n"
           "magnitude apart; VGG_08 without BN %.3e.\n", plain, bn, floor(log10(bn / plain)), shallow);
    if (!(plain * 1e6 < bn && plain < shallow)) {
        fprintf(stderr, "ch6_vanishing: the gradients do not vanish as the chapter says\n");
        goto done;
    }
    printf("\n");
    if (write_drawing(&runs[1], "ch6_vgg38_plain.dot", false) != 0 ||
        write_drawing(&runs[2], "ch6_vgg38_bn.dot", false) != 0 ||
        write_drawing(&runs[1], "ch6_vgg38_plain.html", true) != 0 ||
        write_drawing(&runs[2], "ch6_vgg38_bn.html", true) != 0)
        goto done;
    rc = 0;
done:
    for (int k = 0; k < 3; k++) {
        tg_tape_free(runs[k].tp);
        tg_vgg_free(runs[k].net);
    }
    tg_tensor_free(x);
    tg_tensor_free(y);
    return rc;
}
