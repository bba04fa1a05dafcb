/* tests/tensor/test_conv2d.c — the fused convolution (tg_tensor_conv2d and its input and
 * weight gradients) against its reference, im2col + matmul (+ col2im), computed in f64:
 * several geometries (the VGG's 3x3 pad 1 scaled down, stride 2, no padding, dilation 2,
 * a non-square kernel and image, images cut into several tiles; with 8 channels or more,
 * the 3x3 stride-1 cases that run on Winograd's F(2x2, 3x3)), strided views of the
 * input, weight and gradient, with and without bias, one image; f64 to 1e-12 and f32 to
 * float32 rounding; bitwise the same results for 1, 2 and 3 threads; scratch given back
 * to the arena; error messages. */
#include "check_util.h"

/* ------------------------------------------------------------------ cases */

enum layout {
    DENSE,     /* contiguous x, w and gy */
    STRIDED,   /* x channels-last (a permuted view), w a transposed copy seen back through a
                  permute, gy with OH and OW stored swapped */
    SLICED,    /* x every other column of a wider image, gy every other image of a batch */
};

typedef struct conv_case {
    const char *what;
    int64_t n, c, h, w, oc;
    tg_conv2d_geom g; /* kh kw sh sw ph pw dh dw */
    bool bias;
    enum layout layout;
} conv_case;

static const conv_case cases[] = {
    {"vgg 3x3 pad 1", 3, 4, 8, 8, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE},
    {"vgg, no bias", 3, 4, 8, 8, 5, {3, 3, 1, 1, 1, 1, 1, 1}, false, DENSE},
    {"stride 2, no padding", 2, 3, 9, 9, 4, {3, 3, 2, 2, 0, 0, 1, 1}, true, DENSE},
    {"dilation 2", 2, 2, 9, 9, 3, {3, 3, 1, 1, 2, 2, 2, 2}, false, DENSE},
    {"non-square", 2, 3, 7, 10, 4, {2, 3, 2, 1, 1, 0, 1, 1}, true, DENSE},
    {"one image", 1, 4, 6, 6, 3, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE},
    {"several tiles", 2, 8, 37, 37, 6, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE},
    {"1x1", 2, 5, 4, 3, 2, {1, 1, 1, 1, 0, 0, 1, 1}, true, DENSE},
    {"strided views", 3, 4, 8, 8, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true, STRIDED},
    {"strided, stride 2", 2, 3, 9, 7, 4, {3, 3, 2, 2, 1, 1, 1, 1}, false, STRIDED},
    {"sliced views", 3, 4, 8, 8, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true, SLICED},
    {"sliced, dilation", 2, 3, 9, 9, 2, {3, 2, 1, 2, 2, 1, 2, 1}, true, SLICED},
    /* 8 channels and more on both sides: 3x3 stride 1 takes the Winograd path */
    {"winograd 3x3 pad 1", 3, 8, 8, 8, 9, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE},
    {"winograd, odd image, pad 0", 2, 9, 7, 9, 8, {3, 3, 1, 1, 0, 0, 1, 1}, false, DENSE},
    {"winograd, strided views", 2, 8, 8, 8, 8, {3, 3, 1, 1, 1, 1, 1, 1}, true, STRIDED},
    {"winograd, sliced, pad 2", 2, 8, 6, 6, 10, {3, 3, 1, 1, 2, 2, 1, 1}, true, SLICED},
};
#define NCASES (int)(sizeof cases / sizeof cases[0])

static void out_size(const conv_case *cc, int64_t *oh, int64_t *ow)
{
    const tg_conv2d_geom *g = &cc->g;
    *oh = tg_conv2d_out_size(cc->h, g->kh, g->stride_h, g->pad_h, g->dil_h);
    *ow = tg_conv2d_out_size(cc->w, g->kw, g->stride_w, g->pad_w, g->dil_w);
    ck_assert(*oh >= 1 && *ow >= 1);
}

/* A random tensor of `shape` in dt, laid out as `layout` says for operand `which`
 * ('x', 'w' or 'g'). */
static tg_tensor *operand(tg_dtype dt, const int64_t *s, enum layout layout, char which)
{
    tg_tensor *t;
    if (layout == DENSE)
        return tt_rand_tensor(dt, 4, s);
    if (layout == STRIDED) {
        if (which == 'g') { /* stored [N, C, W, H] */
            t = tt_rand_tensor(dt, TG_DIMS(s[0], s[1], s[3], s[2]));
            tt_become(&t, tg_tensor_transpose(NULL, t, 2, 3));
        } else { /* stored [N, H, W, C] (x) or [kh, kw, C, OC] (w) */
            t = which == 'x' ? tt_rand_tensor(dt, TG_DIMS(s[0], s[2], s[3], s[1]))
                             : tt_rand_tensor(dt, TG_DIMS(s[2], s[3], s[1], s[0]));
            tt_become(&t, which == 'x' ? tg_tensor_permute(NULL, t, TG_AXES(0, 3, 1, 2))
                                       : tg_tensor_permute(NULL, t, TG_AXES(3, 2, 0, 1)));
        }
        return t;
    }
    if (which == 'x') { /* every other column */
        t = tt_rand_tensor(dt, TG_DIMS(s[0], s[1], s[2], 2 * s[3]));
        tt_become(&t, tg_tensor_slice(NULL, t, 3, 1, INT64_MAX, 2));
    } else if (which == 'g') { /* every other image */
        t = tt_rand_tensor(dt, TG_DIMS(2 * s[0], s[1], s[2], s[3]));
        tt_become(&t, tg_tensor_slice(NULL, t, 0, 0, INT64_MAX, 2));
    } else { /* one channel in two */
        t = tt_rand_tensor(dt, TG_DIMS(s[0], 2 * s[1], s[2], s[3]));
        tt_become(&t, tg_tensor_slice(NULL, t, 1, 0, INT64_MAX, 2));
    }
    return t;
}

typedef struct operands {
    tg_tensor *x, *w, *b, *gy;
} operands;

static operands make_operands(const conv_case *cc, tg_dtype dt)
{
    int64_t oh, ow;
    out_size(cc, &oh, &ow);
    operands o = {
        .x = operand(dt, (int64_t[]){cc->n, cc->c, cc->h, cc->w}, cc->layout, 'x'),
        .w = operand(dt, (int64_t[]){cc->oc, cc->c, cc->g.kh, cc->g.kw}, cc->layout, 'w'),
        .b = cc->bias ? tt_rand_tensor(dt, TG_DIMS(cc->oc)) : NULL,
        .gy = operand(dt, (int64_t[]){cc->n, cc->oc, oh, ow}, cc->layout, 'g'),
    };
    if (cc->layout != DENSE) {
        ck_assert(!tg_tensor_is_contiguous(o.x));
        ck_assert(!tg_tensor_is_contiguous(o.w));
        ck_assert(!tg_tensor_is_contiguous(o.gy));
    }
    return o;
}

static void free_operands(operands *o)
{
    tg_tensor_free(o->x);
    tg_tensor_free(o->w);
    tg_tensor_free(o->b);
    tg_tensor_free(o->gy);
}

/* ------------------------------------------------------------------ the reference */
/* im2col + matmul in f64 on the heap, as the composed layer records it; each returns a
 * malloc'd row-major array. */

static tg_tensor *f64(const tg_tensor *t)
{
    tg_tensor *c = tg_tensor_to_dtype(NULL, t, TG_F64);
    ck_assert_msg(c != NULL, "%s", tg_last_error());
    return c;
}

/* w [OC, C, kh, kw] as the matrix [OC, C*kh*kw] (f64, contiguous) */
static tg_tensor *weight_matrix(const tg_tensor *w)
{
    tg_tensor *w64 = f64(w);
    tt_become(&w64, tg_tensor_reshape(NULL, w64, TG_DIMS(w->shape[0], w->shape[1] * w->shape[2] *
                                                                           w->shape[3])));
    return w64;
}

/* gy [N, OC, OH, OW] as [N, OC, OH*OW] (f64) */
static tg_tensor *grad_matrices(const tg_tensor *gy)
{
    tg_tensor *g64 = f64(gy);
    tt_become(&g64, tg_tensor_reshape(NULL, g64, TG_DIMS(gy->shape[0], gy->shape[1],
                                                         gy->shape[2] * gy->shape[3])));
    return g64;
}

static double *ref_forward(const operands *o, const tg_conv2d_geom *g)
{
    tg_tensor *x = f64(o->x), *w2 = weight_matrix(o->w);
    tg_tensor *cols = tg_tensor_im2col(NULL, x, g);
    tg_tensor *y = tg_tensor_matmul(NULL, w2, cols); /* [N, OC, OH*OW] */
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    if (o->b) {
        tg_tensor *b = f64(o->b);
        tt_become(&b, tg_tensor_reshape(NULL, b, TG_DIMS(1, o->b->shape[0], 1)));
        tt_become(&y, tg_tensor_add(NULL, y, b));
        tg_tensor_free(b);
    }
    double *v = tt_values(y);
    tg_tensor *list[] = {x, w2, cols, y};
    for (int i = 0; i < 4; i++)
        tg_tensor_free(list[i]);
    return v;
}

static double *ref_backward_input(const operands *o, const tg_conv2d_geom *g)
{
    tg_tensor *w2 = weight_matrix(o->w), *gy = grad_matrices(o->gy);
    tg_tensor *wt = tg_tensor_transpose(NULL, w2, 0, 1);
    tg_tensor *dcols = tg_tensor_matmul(NULL, wt, gy); /* [N, C*kh*kw, OH*OW] */
    tg_tensor *dx = tg_tensor_col2im(NULL, dcols, o->x->shape[1], o->x->shape[2], o->x->shape[3], g);
    ck_assert_msg(dx != NULL, "%s", tg_last_error());
    double *v = tt_values(dx);
    tg_tensor *list[] = {w2, gy, wt, dcols, dx};
    for (int i = 0; i < 5; i++)
        tg_tensor_free(list[i]);
    return v;
}

static double *ref_backward_weight(const operands *o, const tg_conv2d_geom *g)
{
    tg_tensor *x = f64(o->x), *gy = grad_matrices(o->gy);
    tg_tensor *cols = tg_tensor_im2col(NULL, x, g);
    tg_tensor *ct = tg_tensor_transpose(NULL, cols, 1, 2);
    tg_tensor *dw = tg_tensor_matmul(NULL, gy, ct); /* [N, OC, C*kh*kw] */
    tt_become(&dw, tg_tensor_sum(NULL, dw, TG_AXES(0), false));
    ck_assert_msg(dw != NULL, "%s", tg_last_error());
    double *v = tt_values(dw);
    tg_tensor *list[] = {x, gy, cols, ct, dw};
    for (int i = 0; i < 5; i++)
        tg_tensor_free(list[i]);
    return v;
}

/* max |t - ref| <= tol * max(1, max |ref|): the error against the output's scale, as
 * float32 rounding of a sum is against its terms' */
static void assert_near(const char *what, const tg_tensor *t, const double *ref, double tol)
{
    ck_assert_msg(t != NULL, "%s: %s", what, tg_last_error());
    ck_assert(tg_tensor_is_contiguous(t));
    double *v = tt_values(t), scale = 1, err = 0;
    int64_t n = tg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++)
        scale = fabs(ref[i]) > scale ? fabs(ref[i]) : scale;
    for (int64_t i = 0; i < n; i++) {
        double e = fabs(v[i] - ref[i]);
        err = e > err || e != e ? e : err;
    }
    free(v);
    ck_assert_msg(err <= tol * scale, "%s: max error %g > %g * %g", what, err, tol, scale);
}

/* ------------------------------------------------------------------ against the reference */

START_TEST(test_conv2d_matches_reference)
{
    const conv_case *cc = &cases[_i];
    for (int d = 0; d < 2; d++) {
        tg_dtype dt = d ? TG_F64 : TG_F32;
        double tol = dt == TG_F64 ? 1e-12 : 1e-5;
        char what[96];
        int64_t oh, ow;
        out_size(cc, &oh, &ow);
        operands o = make_operands(cc, dt);

        tg_tensor *y = tg_tensor_conv2d(NULL, o.x, o.w, o.b, &cc->g);
        ck_assert_msg(y != NULL, "%s: %s", cc->what, tg_last_error());
        tt_assert_shape(y, cc->n, cc->oc, oh, ow);
        ck_assert_int_eq(y->dtype, dt);
        double *ref = ref_forward(&o, &cc->g);
        snprintf(what, sizeof what, "%s, %s, forward", cc->what, tg_dtype_name(dt));
        assert_near(what, y, ref, tol);
        free(ref);

        tg_tensor *dx = tg_tensor_conv2d_backward_input(NULL, o.gy, o.w, cc->h, cc->w, &cc->g);
        ck_assert_msg(dx != NULL, "%s: %s", cc->what, tg_last_error());
        tt_assert_shape(dx, cc->n, cc->c, cc->h, cc->w);
        ref = ref_backward_input(&o, &cc->g);
        snprintf(what, sizeof what, "%s, %s, input gradient", cc->what, tg_dtype_name(dt));
        assert_near(what, dx, ref, tol);
        free(ref);

        tg_tensor *dw = tg_tensor_conv2d_backward_weight(NULL, o.gy, o.x, &cc->g);
        ck_assert_msg(dw != NULL, "%s: %s", cc->what, tg_last_error());
        tt_assert_shape(dw, cc->oc, cc->c, cc->g.kh, cc->g.kw);
        ref = ref_backward_weight(&o, &cc->g);
        snprintf(what, sizeof what, "%s, %s, weight gradient", cc->what, tg_dtype_name(dt));
        assert_near(what, dw, ref, tol);
        free(ref);

        tg_tensor_free(y);
        tg_tensor_free(dx);
        tg_tensor_free(dw);
        free_operands(&o);
    }
}
END_TEST

START_TEST(test_conv2d_values)
{
    /* one channel, a 3x3 all-ones kernel with padding 1 and bias 0.5: each output is its
     * 3x3 neighbourhood's sum of [[1,2,3],[4,5,6],[7,8,9]] + 0.5; the gradients of
     * sum(y) by hand: dx counts the kernel positions that see each pixel, dw sums the
     * pixels each weight sees */
    tg_tensor *x = tg_tensor_arange(NULL, TG_F64, 1, 10, 1);
    tt_become(&x, tg_tensor_reshape(NULL, x, TG_DIMS(1, 1, 3, 3)));
    tg_tensor *w = tg_tensor_ones(NULL, TG_F64, TG_DIMS(1, 1, 3, 3));
    tg_tensor *b = tg_tensor_full(NULL, TG_F64, TG_DIMS(1), 0.5);
    tg_tensor *gy = tg_tensor_ones(NULL, TG_F64, TG_DIMS(1, 1, 3, 3));
    const tg_conv2d_geom g = {3, 3, 1, 1, 1, 1, 1, 1};
    tg_tensor *y = tg_tensor_conv2d(NULL, x, w, b, &g);
    tg_tensor *dx = tg_tensor_conv2d_backward_input(NULL, gy, w, 3, 3, &g);
    tg_tensor *dw = tg_tensor_conv2d_backward_weight(NULL, gy, x, &g);
    ck_assert_msg(y && dx && dw, "%s", tg_last_error());
    tt_assert_close(y, ((double[]){12.5, 21.5, 16.5, 27.5, 45.5, 33.5, 24.5, 39.5, 28.5}), 0);
    tt_assert_close(dx, ((double[]){4, 6, 4, 6, 9, 6, 4, 6, 4}), 0);
    tt_assert_close(dw, ((double[]){12, 21, 16, 27, 45, 33, 24, 39, 28}), 0);
    tg_tensor *list[] = {x, w, b, gy, y, dx, dw};
    for (int i = 0; i < 7; i++)
        tg_tensor_free(list[i]);
}
END_TEST

START_TEST(test_conv2d_degenerate)
{
    /* no filters, no images, no input channels (the output is the bias) */
    const tg_conv2d_geom g = {3, 3, 1, 1, 1, 1, 1, 1};
    tg_tensor *x = tt_rand_tensor(TG_F32, TG_DIMS(2, 3, 4, 4));
    tg_tensor *w0 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3, 3, 3));
    tg_tensor *y = tg_tensor_conv2d(NULL, x, w0, NULL, &g);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    tt_assert_shape(y, 2, 0, 4, 4);
    tg_tensor *gy0 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 0, 4, 4));
    tg_tensor *dx = tg_tensor_conv2d_backward_input(NULL, gy0, w0, 4, 4, &g);
    ck_assert_msg(dx != NULL, "%s", tg_last_error());
    tt_assert_close(dx, (double[32 * 3]){0}, 0);
    tg_tensor *x0 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3, 4, 4));
    tg_tensor *gy = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 2, 4, 4));
    tg_tensor *dw = tg_tensor_conv2d_backward_weight(NULL, gy, x0, &g);
    ck_assert_msg(dw != NULL, "%s", tg_last_error());
    tt_assert_shape(dw, 2, 3, 3, 3);
    tt_assert_close(dw, (double[54]){0}, 0);
    tg_tensor *xc = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 0, 2, 2));
    tg_tensor *wc = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 0, 3, 3));
    tg_tensor *b = tt_tensor(TG_F32, TG_DIMS(2), (double[]){1.5, -2});
    tg_tensor *yc = tg_tensor_conv2d(NULL, xc, wc, b, &g);
    ck_assert_msg(yc != NULL, "%s", tg_last_error());
    tt_assert_close(yc, ((double[]){1.5, 1.5, 1.5, 1.5, -2, -2, -2, -2}), 0);
    tg_tensor *list[] = {x, w0, y, gy0, dx, x0, gy, dw, xc, wc, b, yc};
    for (int i = 0; i < 12; i++)
        tg_tensor_free(list[i]);
}
END_TEST

/* ------------------------------------------------------------------ threads, memory */

START_TEST(test_conv2d_thread_count_independent)
{
    /* 17 images: 16 weight-gradient partials of 1 or 2 images, shared unevenly by 3 */
    static const conv_case big[] = {
        {"vgg", 3, 4, 8, 8, 5, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE},
        {"17 images, several tiles", 17, 8, 40, 40, 6, {3, 3, 1, 1, 1, 1, 1, 1}, true, STRIDED},
    };
    for (int ci = 0; ci < 2; ci++)
        for (int d = 0; d < 2; d++) {
            const conv_case *cc = &big[ci];
            tg_dtype dt = d ? TG_F64 : TG_F32;
            operands o = make_operands(cc, dt);
            tg_tensor *r[3][3];
            for (int t = 0; t < 3; t++) {
                tg_set_num_threads(t + 1);
                r[t][0] = tg_tensor_conv2d(NULL, o.x, o.w, o.b, &cc->g);
                r[t][1] = tg_tensor_conv2d_backward_input(NULL, o.gy, o.w, cc->h, cc->w, &cc->g);
                r[t][2] = tg_tensor_conv2d_backward_weight(NULL, o.gy, o.x, &cc->g);
            }
            for (int t = 1; t < 3; t++)
                for (int k = 0; k < 3; k++)
                    ck_assert_msg(tt_same_bits(r[0][k], r[t][k]),
                                  "%s, %s: kernel %d differs between 1 and %d threads", cc->what,
                                  tg_dtype_name(dt), k, t + 1);
            for (int t = 0; t < 3; t++)
                for (int k = 0; k < 3; k++)
                    tg_tensor_free(r[t][k]);
            free_operands(&o);
        }
    tg_set_num_threads(2);
}
END_TEST

START_TEST(test_conv2d_gives_scratch_back)
{
    /* 8 images of 32 channels of 16x16 on 2 threads: each kernel's column tiles (and the
     * weight gradient's partials) are large blocks; after a call the arena holds the
     * result (in a block up to twice its size: a given-back block is reused so) and
     * small headers only */
    tg_set_num_threads(2);
    const conv_case cc = {"", 8, 32, 16, 16, 32, {3, 3, 1, 1, 1, 1, 1, 1}, true, DENSE};
    operands o = make_operands(&cc, TG_F32);
    tg_arena *ar = tg_arena_new(0);
    size_t before = tg_arena_used(ar);
    tg_tensor *y = tg_tensor_conv2d(ar, o.x, o.w, o.b, &cc.g);
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    ck_assert_uint_le(tg_arena_used(ar) - before, 2 * (size_t)tg_tensor_numel(y) * 4 + 1024);
    ck_assert_uint_gt(tg_arena_peak(ar), tg_arena_used(ar) + 256 * 1024); /* there was scratch */
    before = tg_arena_used(ar);
    tg_tensor *dx = tg_tensor_conv2d_backward_input(ar, o.gy, o.w, 16, 16, &cc.g);
    ck_assert_msg(dx != NULL, "%s", tg_last_error());
    ck_assert_uint_le(tg_arena_used(ar) - before, 2 * (size_t)tg_tensor_numel(dx) * 4 + 1024);
    before = tg_arena_used(ar);
    tg_tensor *dw = tg_tensor_conv2d_backward_weight(ar, o.gy, o.x, &cc.g);
    ck_assert_msg(dw != NULL, "%s", tg_last_error());
    ck_assert_uint_le(tg_arena_used(ar) - before, 2 * (size_t)tg_tensor_numel(dw) * 4 + 1024);
    /* the same values as on the heap */
    tg_tensor *y2 = tg_tensor_conv2d(NULL, o.x, o.w, o.b, &cc.g);
    ck_assert(tt_same_bits(y, y2));
    tg_tensor_free(y2);
    tg_arena_free(ar);
    free_operands(&o);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_conv2d_errors)
{
    const tg_conv2d_geom g = {3, 3, 1, 1, 1, 1, 1, 1};
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 3, 8, 8));
    tg_tensor *w = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 3, 3, 3));
    tg_tensor *gy = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 4, 8, 8));
    tg_tensor *w5 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 5, 3, 3));
    tg_tensor *wk = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 3, 5, 5));
    tg_tensor *w64 = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(4, 3, 3, 3));
    tg_tensor *w3 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 27));
    tg_tensor *b5 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(5));
    tg_tensor *b64 = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(4));
    tg_tensor *x3 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 8, 8));
    tg_tensor *xi = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2, 3, 8, 8));
    tg_tensor *g7 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 4, 7, 7));
    tg_tensor *g64 = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(2, 4, 8, 8));
    tg_tensor *gn = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(3, 4, 8, 8));

    tt_expect_error(tg_tensor_conv2d(NULL, x, w5, NULL, &g), TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "weight [4,5,3,3] takes 5 channels, input [2,3,8,8] has 3");
    tt_expect_error(tg_tensor_conv2d(NULL, x, wk, NULL, &g), TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "weight [4,3,5,5] is a 5x5 kernel, the geometry's is 3x3");
    tt_expect_error(tg_tensor_conv2d(NULL, x, w64, NULL, &g), TG_ERR_DTYPE, "tg_tensor_conv2d",
                    "weight [4,3,3,3] is f64, input [2,3,8,8] is f32");
    tt_expect_error(tg_tensor_conv2d(NULL, x, w3, NULL, &g), TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "weight [4,27] must be 4-D [OC, C, kh, kw]");
    tt_expect_error(tg_tensor_conv2d(NULL, x, w, b5, &g), TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "bias [5] does not match weight [4,3,3,3]");
    tt_expect_error(tg_tensor_conv2d(NULL, x, w, b64, &g), TG_ERR_DTYPE, "tg_tensor_conv2d",
                    "bias [4] is f64, input [2,3,8,8] is f32");
    tt_expect_error(tg_tensor_conv2d(NULL, x3, w, NULL, &g), TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "input [3,8,8] must be 4-D [N, C, H, W]");
    tt_expect_error(tg_tensor_conv2d(NULL, xi, w, NULL, &g), TG_ERR_DTYPE, "tg_tensor_conv2d",
                    "input [2,3,8,8] is i32");
    tt_expect_error(tg_tensor_conv2d(NULL, x, w, NULL, NULL), TG_ERR_ARG, "tg_tensor_conv2d",
                    "the geometry is NULL");
    tg_tensor *tiny = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 1, 2, 2));
    tg_tensor *w1 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 1, 3, 3));
    tt_expect_error(tg_tensor_conv2d(NULL, tiny, w1, NULL, &(tg_conv2d_geom){3, 3, 1, 1, 0, 0, 1, 1}),
                    TG_ERR_SHAPE, "tg_tensor_conv2d",
                    "kernel 3x3, stride 1x1, padding 0x0, dilation 1x1 is larger");
    tg_tensor_free(tiny);
    tg_tensor_free(w1);
    tg_clear_error(); /* a NULL input keeps the last error; with none, it says so */
    tt_expect_error(tg_tensor_conv2d(NULL, x, NULL, NULL, &g), TG_ERR_ARG, "tg_tensor_conv2d",
                    "an input tensor is NULL");

    tt_expect_error(tg_tensor_conv2d_backward_input(NULL, g7, w, 8, 8, &g), TG_ERR_SHAPE,
                    "tg_tensor_conv2d_backward_input",
                    "gradient [2,4,7,7] does not match input 8x8 with kernel");
    tt_expect_error(tg_tensor_conv2d_backward_input(NULL, gy, w64, 8, 8, &g), TG_ERR_DTYPE,
                    "tg_tensor_conv2d_backward_input",
                    "weight [4,3,3,3] is f64, gradient [2,4,8,8] is f32");
    tt_expect_error(tg_tensor_conv2d_backward_input(NULL, gy, w, 0, 8, &g), TG_ERR_SHAPE,
                    "tg_tensor_conv2d_backward_input", "input 0x8 is empty");

    tt_expect_error(tg_tensor_conv2d_backward_weight(NULL, g64, x, &g), TG_ERR_DTYPE,
                    "tg_tensor_conv2d_backward_weight",
                    "gradient [2,4,8,8] is f64, input [2,3,8,8] is f32");
    tt_expect_error(tg_tensor_conv2d_backward_weight(NULL, gn, x, &g), TG_ERR_SHAPE,
                    "tg_tensor_conv2d_backward_weight",
                    "gradient [3,4,8,8] does not match input [2,3,8,8] with");
    tt_expect_error(tg_tensor_conv2d_backward_weight(NULL, gy, x, &(tg_conv2d_geom){3, 3, 0, 1, 1, 1, 1, 1}),
                    TG_ERR_ARG, "tg_tensor_conv2d_backward_weight",
                    "kernel 3x3, stride 0x1, padding 1x1, dilation 1x1: kernel");
    tg_tensor *list[] = {x, w, gy, w5, wk, w64, w3, b5, b64, x3, xi, g7, g64, gn};
    for (int i = 0; i < 14; i++)
        tg_tensor_free(list[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/conv2d");
    TCase *tc = tt_tcase("conv2d");
    tcase_add_loop_test(tc, test_conv2d_matches_reference, 0, NCASES);
    tcase_add_test(tc, test_conv2d_values);
    tcase_add_test(tc, test_conv2d_degenerate);
    tcase_add_test(tc, test_conv2d_thread_count_independent);
    tcase_add_test(tc, test_conv2d_gives_scratch_back);
    tcase_add_test(tc, test_conv2d_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
