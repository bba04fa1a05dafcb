/* Equivalence with PyTorch: the coursework's VGG (1 block per stage, 8 filters, each
 * batch-norm placement) loaded with PyTorch's weights must give PyTorch's loss and
 * every parameter gradient in training mode, PyTorch's weights and running statistics
 * after 3 Adam steps with weight decay, and PyTorch's logits in evaluation mode.
 * The reference files come from tests/fixtures/make_vgg_fixtures.py (python3-torch);
 * this test only reads them. */
#include "check_util.h"

#ifndef TG_FIXTURES_DIR
#define TG_FIXTURES_DIR "tests/fixtures"
#endif

/* Error of a against b relative to b's largest magnitude, or to 1e-2 if that is
 * smaller: per-element relative errors mean nothing near zero, and some gradients are
 * zero in exact arithmetic (a conv bias followed by batch norm: the normalisation
 * removes it), so both sides hold float noise of ~1e-7 there. */
static double rel_err(const tg_tensor *a, const tg_tensor *b)
{
    ck_assert_msg(tg_tensor_same_shape(a, b), "shapes differ");
    double *va = tt_values(a), *vb = tt_values(b), worst = 0, scale = 0;
    int64_t n = tg_tensor_numel(a);
    for (int64_t i = 0; i < n; i++)
        scale = fmax(scale, fabs(vb[i]));
    for (int64_t i = 0; i < n; i++)
        worst = fmax(worst, fabs(va[i] - vb[i]) / fmax(scale, 1e-2));
    free(va);
    free(vb);
    return worst;
}

static tg_tensor *ref(const tg_safetensors *st, const char *prefix, const char *name)
{
    char key[256];
    snprintf(key, sizeof key, "%s%s", prefix, name);
    tg_tensor *t = tg_safetensors_find(st, key);
    ck_assert_msg(t != NULL, "fixture has no tensor '%s'", key);
    return t;
}

/* A conv bias right before batch norm has a zero gradient in exact arithmetic, so
 * its float gradient is rounding noise, and Adam, which divides by the gradient's own
 * scale, moves it by about lr in the direction of that noise's sign: its values after
 * Adam steps cannot be compared (its gradient, near zero on both sides, still is). */
static bool bias_before_bn(const char *name, tg_bn_placement bn)
{
    size_t n = strlen(name);
    return bn == TG_BN_BEFORE && strstr(name, "/conv_") && n > 5 && !strcmp(name + n - 5, "/bias");
}

/* every parameter (and buffer, if `buffers`) of m against the fixture's prefix */
static void compare_model(const tg_model *m, const tg_safetensors *st, const char *prefix,
                          bool grads, bool buffers, double tol, tg_bn_placement bn)
{
    for (int i = 0; i < tg_model_num_params(m); i++) {
        const char *name = tg_model_param_name(m, i);
        if (!grads && bias_before_bn(name, bn))
            continue;
        tg_tensor *mine = grads ? tg_grad(tg_model_param(m, i)) : tg_model_param(m, i);
        ck_assert_msg(mine != NULL, "%s has no gradient", name);
        double e = rel_err(mine, ref(st, prefix, name));
        ck_assert_msg(e < tol, "%s%s: relative error %g", prefix, name, e);
    }
    for (int i = 0; buffers && i < tg_model_num_buffers(m); i++) {
        const char *name = tg_model_buffer_name(m, i);
        double e = rel_err(tg_model_buffer(m, i), ref(st, prefix, name));
        ck_assert_msg(e < tol, "%s%s: relative error %g", prefix, name, e);
    }
}

static void run(const char *bn_name, tg_bn_placement bn)
{
    char path[512];
    snprintf(path, sizeof path, "%s/vgg_%s.safetensors", TG_FIXTURES_DIR, bn_name);
    tg_safetensors *st = tg_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    ck_assert_str_eq(tg_safetensors_meta(st, "bn"), bn_name);

    tg_rng g = tg_rng_new(0);
    tg_vgg *net = tg_vgg_new(&(tg_vgg_config){.num_stages = 3, .num_blocks_per_stage = 1,
                                              .num_filters = 8, .in_channels = 3, .num_classes = 10,
                                              .bn = bn}, &g);
    ck_assert_msg(net != NULL, "%s", tg_last_error());
    tg_model *m = tg_vgg_model(net);
    for (int i = 0; i < tg_model_num_params(m); i++)
        ck_assert_int_eq(tg_tensor_copy_(tg_model_param(m, i), ref(st, "", tg_model_param_name(m, i))), TG_OK);
    tg_tensor *x = ref(st, "", "input"), *y = ref(st, "", "labels");
    tg_tape *tp = tg_tape_new(0);

    /* training mode: batch statistics */
    tg_model_set_training(m, true);
    tg_tensor *loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), y);
    ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
    double e = rel_err(loss, ref(st, "", "train/loss"));
    ck_assert_msg(e < 1e-5, "train loss: relative error %g", e);
    compare_model(m, st, "train/grad/", true, false, 1e-4, bn);
    tg_model_zero_grad(m);
    tg_tape_reset(tp);

    /* 3 Adam steps with coupled weight decay, as torch.optim.Adam(lr=1e-3, wd=1e-2) */
    tg_optim *opt = tg_optim_new(m, &(tg_optim_config){.kind = TG_ADAM, .lr = 1e-3, .weight_decay = 1e-2});
    ck_assert_msg(opt != NULL, "%s", tg_last_error());
    for (int step = 0; step < 3; step++) {
        loss = tg_nn_cross_entropy(tp, tg_vgg_forward(tp, net, x), y);
        ck_assert_msg(tg_backward(tp, loss) == TG_OK, "%s", tg_tape_error(tp));
        ck_assert_int_eq(tg_optim_step(opt), TG_OK);
        tg_model_zero_grad(m);
        tg_tape_reset(tp);
    }
    compare_model(m, st, "adam/", false, true, 1e-4, bn);

    /* evaluation mode: the running statistics */
    tg_model_set_training(m, false);
    tg_tape_set_grad_enabled(tp, false);
    tg_tensor *logits = tg_vgg_forward(tp, net, x);
    ck_assert_msg(logits != NULL && tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    e = rel_err(logits, ref(st, "", "eval/logits"));
    ck_assert_msg(e < 1e-4, "eval logits: relative error %g", e);
    e = rel_err(tg_nn_cross_entropy(tp, logits, y), ref(st, "", "eval/loss"));
    ck_assert_msg(e < 1e-5, "eval loss: relative error %g", e);

    tg_optim_free(opt);
    tg_tape_free(tp);
    tg_vgg_free(net);
    tg_safetensors_free(st);
}

START_TEST(test_bn_none) { run("none", TG_BN_NONE); }
END_TEST
START_TEST(test_bn_before) { run("before", TG_BN_BEFORE); }
END_TEST
START_TEST(test_bn_after) { run("after", TG_BN_AFTER); }
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/equivalence");
    TCase *tc = tt_tcase("pytorch");
    tcase_add_test(tc, test_bn_none);
    tcase_add_test(tc, test_bn_before);
    tcase_add_test(tc, test_bn_after);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
