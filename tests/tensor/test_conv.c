/* tests/tensor/test_conv.c — im2col, col2im and pooling against naive index formulas
 * in f64: several geometries (padding, stride, dilation, non-square kernels), inputs in
 * any layout, a convolution as im2col + matmul against the direct loop, the adjoint
 * identities that make col2im and the pooling backwards the right gradients, thread-
 * count independence and the error messages. */
#include "check_util.h"

#include <stdint.h>

/* ------------------------------------------------------------------ helpers */

static int64_t numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    return n;
}

enum layout { NCHW, NHWC, W_STEP2, C_BCAST, LAYOUTS };

/* A random [n, c, h, w] image batch of dt in one of several memory layouts. */
static tg_tensor *image(tg_dtype dt, const int64_t *s, enum layout l)
{
    tg_tensor *t;
    switch (l) {
    case NCHW: return tt_rand_tensor(dt, 4, s);
    case NHWC: /* channels last, viewed as NCHW */
        t = tt_rand_tensor(dt, 4, (int64_t[]){s[0], s[2], s[3], s[1]});
        tt_become(&t, tg_tensor_permute(NULL, t, 4, (int[]){0, 3, 1, 2}));
        return t;
    case W_STEP2: /* every other column */
        t = tt_rand_tensor(dt, 4, (int64_t[]){s[0], s[1], s[2], 2 * s[3]});
        tt_become(&t, tg_tensor_slice(NULL, t, 3, 1, INT64_MAX, 2));
        return t;
    case C_BCAST: /* one channel seen C times (stride 0) */
        t = tt_rand_tensor(dt, 4, (int64_t[]){s[0], 1, s[2], s[3]});
        tt_become(&t, tg_tensor_expand(NULL, t, 4, s));
        return t;
    default: ck_abort();
    }
    return NULL;
}

static double dot(const tg_tensor *a, const tg_tensor *b, double *scale)
{
    ck_assert_int_eq(tg_tensor_numel(a), tg_tensor_numel(b));
    double *av = tt_values(a), *bv = tt_values(b), s = 0, sc = 0;
    for (int64_t i = 0; i < tg_tensor_numel(a); i++) {
        s += av[i] * bv[i];
        sc += fabs(av[i] * bv[i]);
    }
    free(av);
    free(bv);
    *scale = sc;
    return s;
}

static const tg_conv2d_geom geoms[] = {
    /* kh kw sh sw ph pw dh dw */
    {3, 3, 1, 1, 1, 1, 1, 1}, /* the hot case */
    {3, 3, 2, 2, 0, 0, 1, 1},
    {2, 3, 2, 1, 1, 0, 1, 2},
    {1, 1, 1, 1, 0, 0, 1, 1},
    {3, 3, 1, 2, 2, 2, 2, 2}, /* dilation with padding */
    {3, 3, 3, 3, 2, 2, 1, 1}, /* on a 1x1 image: kernel columns that see only padding */
};
#define NGEOMS (int)(sizeof geoms / sizeof geoms[0])

static const int64_t images[][4] = {{2, 3, 7, 6}, {1, 2, 5, 9}, {2, 2, 1, 1}};
#define NIMAGES (int)(sizeof images / sizeof images[0])

static bool fits(const int64_t *s, const tg_conv2d_geom *g, int64_t *oh, int64_t *ow)
{
    *oh = tg_conv2d_out_size(s[2], g->kh, g->stride_h, g->pad_h, g->dil_h);
    *ow = tg_conv2d_out_size(s[3], g->kw, g->stride_w, g->pad_w, g->dil_w);
    return *oh >= 1 && *ow >= 1;
}

/* x[n, c, oh*sh - ph + i*dh, ow*sw - pw + j*dw] or 0, from row-major values xv */
static double tap(const double *xv, const int64_t *s, const tg_conv2d_geom *g, int64_t n, int64_t c,
                  int64_t oh, int64_t ow, int i, int j)
{
    int64_t ih = oh * g->stride_h - g->pad_h + (int64_t)i * g->dil_h;
    int64_t iw = ow * g->stride_w - g->pad_w + (int64_t)j * g->dil_w;
    if (ih < 0 || ih >= s[2] || iw < 0 || iw >= s[3])
        return 0;
    return xv[((n * s[1] + c) * s[2] + ih) * s[3] + iw];
}

/* ------------------------------------------------------------------ im2col, col2im */

START_TEST(test_conv_out_size)
{
    ck_assert_int_eq(tg_conv2d_out_size(32, 3, 1, 1, 1), 32);
    ck_assert_int_eq(tg_conv2d_out_size(32, 3, 2, 1, 1), 16);
    ck_assert_int_eq(tg_conv2d_out_size(5, 2, 2, 0, 1), 2);
    ck_assert_int_eq(tg_conv2d_out_size(7, 3, 1, 0, 2), 3);
    ck_assert_int_eq(tg_conv2d_out_size(4, 5, 1, 0, 1), -1);
    ck_assert_int_eq(tg_conv2d_out_size(4, 5, 1, 1, 1), 2);
    ck_assert_int_eq(tg_conv2d_out_size(4, 0, 1, 0, 1), -1);
    ck_assert_int_eq(tg_conv2d_out_size(4, 3, 0, 0, 1), -1);
    ck_assert_int_eq(tg_conv2d_out_size(4, 3, 1, -1, 1), -1);
    ck_assert_int_eq(tg_conv2d_out_size(4, 3, 1, 0, 0), -1);
}
END_TEST

START_TEST(test_im2col)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    int checked = 0;
    for (int gi = 0; gi < NGEOMS; gi++)
        for (int si = 0; si < NIMAGES; si++)
            for (int l = 0; l < LAYOUTS; l++) {
                const tg_conv2d_geom *g = &geoms[gi];
                const int64_t *s = images[si];
                int64_t oh, ow;
                if (!fits(s, g, &oh, &ow))
                    continue;
                tg_tensor *x = image(dt, s, (enum layout)l);
                tg_tensor *cols = tg_tensor_im2col(NULL, x, g);
                ck_assert_msg(cols != NULL, "%s", tg_last_error());
                int64_t kk = (int64_t)g->kh * g->kw;
                tt_assert_shape(cols, s[0], s[1] * kk, oh * ow);
                ck_assert(tg_tensor_is_contiguous(cols));
                double *xv = tt_values(x);
                double *ref = malloc((size_t)tg_tensor_numel(cols) * sizeof *ref);
                for (int64_t n = 0; n < s[0]; n++)
                    for (int64_t c = 0; c < s[1]; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++)
                                for (int64_t p = 0; p < oh * ow; p++)
                                    ref[((n * s[1] * kk) + (c * g->kh + i) * g->kw + j) * oh * ow + p] =
                                        tap(xv, s, g, n, c, p / ow, p % ow, i, j);
                tt_assert_close(cols, ref, 0); /* a copy: exact */
                free(xv);
                free(ref);
                tg_tensor_free(cols);
                tg_tensor_free(x);
                checked++;
            }
    ck_assert_int_ge(checked, 40);
}
END_TEST

START_TEST(test_conv_via_matmul)
{
    /* y[n, o, oh, ow] = sum over c, i, j of w[o, c, i, j] * x[...]: weight [OC, C*kh*kw]
     * @ columns [N, C*kh*kw, OH*OW] against the direct loop */
    for (int gi = 0; gi < NGEOMS; gi++) {
        const tg_conv2d_geom *g = &geoms[gi];
        const int64_t *s = images[0];
        int64_t oh, ow, oc = 4, kk = (int64_t)g->kh * g->kw;
        if (!fits(s, g, &oh, &ow))
            continue;
        tg_tensor *x = image(TG_F64, s, NHWC);
        tg_tensor *w = tt_rand_tensor(TG_F64, 2, (int64_t[]){oc, s[1] * kk});
        tg_tensor *cols = tg_tensor_im2col(NULL, x, g);
        tg_tensor *y = tg_tensor_matmul(NULL, w, cols);
        ck_assert_msg(y != NULL, "%s", tg_last_error());
        tt_assert_shape(y, s[0], oc, oh * ow);
        double *xv = tt_values(x), *wv = tt_values(w);
        double *ref = calloc((size_t)(s[0] * oc * oh * ow), sizeof *ref);
        for (int64_t n = 0; n < s[0]; n++)
            for (int64_t o = 0; o < oc; o++)
                for (int64_t a = 0; a < oh; a++)
                    for (int64_t b = 0; b < ow; b++)
                        for (int64_t c = 0; c < s[1]; c++)
                            for (int i = 0; i < g->kh; i++)
                                for (int j = 0; j < g->kw; j++)
                                    ref[((n * oc + o) * oh + a) * ow + b] +=
                                        wv[o * s[1] * kk + (c * g->kh + i) * g->kw + j] *
                                        tap(xv, s, g, n, c, a, b, i, j);
        tt_assert_close(y, ref, 1e-12);
        free(xv);
        free(wv);
        free(ref);
        tg_tensor *list[] = {x, w, cols, y};
        for (int i = 0; i < 4; i++)
            tg_tensor_free(list[i]);
    }
}
END_TEST

START_TEST(test_col2im)
{
    /* against the naive scatter, and the adjoint identity <col2im(y), x> = <y, im2col(x)> */
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    double tol = dt == TG_F32 ? 1e-5 : 1e-12;
    for (int gi = 0; gi < NGEOMS; gi++)
        for (int si = 0; si < NIMAGES; si++)
            for (int transposed = 0; transposed < 2; transposed++) {
                const tg_conv2d_geom *g = &geoms[gi];
                const int64_t *s = images[si];
                int64_t oh, ow, kk = (int64_t)g->kh * g->kw;
                if (!fits(s, g, &oh, &ow))
                    continue;
                tg_tensor *y;
                if (transposed) { /* columns stored as [N, OH*OW, C*kh*kw] */
                    y = tt_rand_tensor(dt, 3, (int64_t[]){s[0], oh * ow, s[1] * kk});
                    tt_become(&y, tg_tensor_transpose(NULL, y, 1, 2));
                } else {
                    y = tt_rand_tensor(dt, 3, (int64_t[]){s[0], s[1] * kk, oh * ow});
                }
                tg_tensor *img = tg_tensor_col2im(NULL, y, s[1], s[2], s[3], g);
                ck_assert_msg(img != NULL, "%s", tg_last_error());
                tt_assert_shape(img, s[0], s[1], s[2], s[3]);
                ck_assert(tg_tensor_is_contiguous(img));

                double *yv = tt_values(y);
                double *ref = calloc((size_t)numel(4, s), sizeof *ref);
                for (int64_t n = 0; n < s[0]; n++)
                    for (int64_t c = 0; c < s[1]; c++)
                        for (int i = 0; i < g->kh; i++)
                            for (int j = 0; j < g->kw; j++)
                                for (int64_t a = 0; a < oh; a++)
                                    for (int64_t b = 0; b < ow; b++) {
                                        int64_t ih = a * g->stride_h - g->pad_h + (int64_t)i * g->dil_h;
                                        int64_t iw = b * g->stride_w - g->pad_w + (int64_t)j * g->dil_w;
                                        if (ih >= 0 && ih < s[2] && iw >= 0 && iw < s[3])
                                            ref[((n * s[1] + c) * s[2] + ih) * s[3] + iw] +=
                                                yv[((n * s[1] * kk) + (c * g->kh + i) * g->kw + j) *
                                                       oh * ow + a * ow + b];
                                    }
                tt_assert_close(img, ref, tol);

                tg_tensor *x = image(dt, s, NHWC);
                tg_tensor *cols = tg_tensor_im2col(NULL, x, g);
                double s1, s2, left = dot(img, x, &s1), right = dot(y, cols, &s2);
                ck_assert_msg(fabs(left - right) <= tol * (s1 + s2),
                              "geometry %d image %d: <col2im(y), x> = %.17g, <y, im2col(x)> = %.17g",
                              gi, si, left, right);
                free(yv);
                free(ref);
                tg_tensor *list[] = {y, img, x, cols};
                for (int i = 0; i < 4; i++)
                    tg_tensor_free(list[i]);
            }
}
END_TEST

/* ------------------------------------------------------------------ pooling */

static const tg_conv2d_geom pools[] = {
    {2, 2, 2, 2, 0, 0, 1, 1},
    {3, 3, 2, 2, 1, 1, 1, 1},
    {3, 3, 1, 1, 1, 1, 1, 1},
    {2, 3, 1, 2, 1, 1, 0, 0}, /* dilation is ignored, even 0 */
};
#define NPOOLS (int)(sizeof pools / sizeof pools[0])

static const int64_t pool_images[][4] = {{2, 3, 8, 8}, {1, 2, 7, 5}, {2, 1, 9, 9}};

/* Naive pooling of row-major xv [N, C, H, W] into out (and argmax indices). */
static void ref_pool(const double *xv, const int64_t *s, const tg_conv2d_geom *g, int64_t oh,
                     int64_t ow, double *avg, double *max, int32_t *arg)
{
    for (int64_t p = 0; p < s[0] * s[1]; p++)
        for (int64_t a = 0; a < oh; a++)
            for (int64_t b = 0; b < ow; b++) {
                double sum = 0, best = -INFINITY;
                int32_t at = -1;
                for (int i = 0; i < g->kh; i++)
                    for (int j = 0; j < g->kw; j++) {
                        int64_t h = a * g->stride_h - g->pad_h + i, w = b * g->stride_w - g->pad_w + j;
                        if (h < 0 || h >= s[2] || w < 0 || w >= s[3])
                            continue;
                        double v = xv[(p * s[2] + h) * s[3] + w];
                        sum += v;
                        if (at < 0 || v > best) {
                            best = v;
                            at = (int32_t)(h * s[3] + w);
                        }
                    }
                int64_t o = (p * oh + a) * ow + b;
                avg[o] = sum / (g->kh * g->kw);
                max[o] = best;
                arg[o] = at;
            }
}

START_TEST(test_pooling)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    double tol = dt == TG_F32 ? 1e-6 : 1e-14;
    for (int gi = 0; gi < NPOOLS; gi++)
        for (int si = 0; si < 3; si++)
            for (int l = 0; l < LAYOUTS; l++) {
                const tg_conv2d_geom *g = &pools[gi];
                const int64_t *s = pool_images[si];
                int64_t oh = tg_conv2d_out_size(s[2], g->kh, g->stride_h, g->pad_h, 1);
                int64_t ow = tg_conv2d_out_size(s[3], g->kw, g->stride_w, g->pad_w, 1);
                tg_tensor *x = image(dt, s, (enum layout)l);
                tg_tensor *idx = NULL;
                tg_tensor *avg = tg_tensor_avg_pool2d(NULL, x, g);
                tg_tensor *max = tg_tensor_max_pool2d(NULL, x, g, &idx);
                ck_assert_msg(avg && max && idx, "%s", tg_last_error());
                tt_assert_shape(avg, s[0], s[1], oh, ow);
                tt_assert_shape(max, s[0], s[1], oh, ow);
                tt_assert_shape(idx, s[0], s[1], oh, ow);
                ck_assert_int_eq(idx->dtype, TG_I32);

                int64_t no = s[0] * s[1] * oh * ow;
                double *xv = tt_values(x), *ravg = malloc((size_t)no * sizeof(double));
                double *rmax = malloc((size_t)no * sizeof(double));
                int32_t *rarg = malloc((size_t)no * sizeof(int32_t));
                ref_pool(xv, s, g, oh, ow, ravg, rmax, rarg);
                tt_assert_close(avg, ravg, tol);
                tt_assert_close(max, rmax, 0);
                const int32_t *iv = tg_tensor_data(idx);
                int64_t wrong = 0;
                for (int64_t o = 0; o < no; o++)
                    wrong += iv[o] != rarg[o];
                ck_assert_int_eq(wrong, 0);

                /* without indices: the same maxima */
                tg_tensor *max2 = tg_tensor_max_pool2d(NULL, x, g, NULL);
                tt_assert_close(max2, rmax, 0);
                free(xv);
                free(ravg);
                free(rmax);
                free(rarg);
                tg_tensor *list[] = {x, idx, avg, max, max2};
                for (int i = 0; i < 5; i++)
                    tg_tensor_free(list[i]);
            }
}
END_TEST

START_TEST(test_max_pool_ties)
{
    /* all equal, all -inf: the first pixel of the clipped window; NaN wins */
    const tg_conv2d_geom g = {3, 3, 2, 2, 1, 1, 1, 1};
    const double fills[] = {2.5, -INFINITY};
    for (int f = 0; f < 2; f++) {
        tg_tensor *x = tg_tensor_full(NULL, TG_F32, 4, (int64_t[]){1, 1, 5, 5}, fills[f]);
        tg_tensor *idx;
        tg_tensor *y = tg_tensor_max_pool2d(NULL, x, &g, &idx);
        ck_assert_msg(y != NULL, "%s", tg_last_error());
        const int32_t want[] = {0, 1, 3, 5, 6, 8, 15, 16, 18};
        const int32_t *iv = tg_tensor_data(idx);
        const float *yv = tg_tensor_data(y);
        for (int o = 0; o < 9; o++) {
            ck_assert_int_eq(iv[o], want[o]);
            ck_assert(yv[o] == (float)fills[f]);
        }
        tg_tensor_free(x);
        tg_tensor_free(y);
        tg_tensor_free(idx);
    }
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F64, 4, (int64_t[]){1, 1, 2, 2});
    tg_tensor_set(x, (int64_t[]){0, 0, 0, 1}, NAN);
    tg_tensor_set(x, (int64_t[]){0, 0, 1, 1}, 5);
    tg_tensor *idx;
    tg_tensor *y = tg_tensor_max_pool2d(NULL, x, &(tg_conv2d_geom){2, 2, 2, 2, 0, 0, 1, 1}, &idx);
    ck_assert(isnan(tg_tensor_item(y)));
    ck_assert_int_eq(((const int32_t *)tg_tensor_data(idx))[0], 1);
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(idx);
}
END_TEST

START_TEST(test_pool_backward)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    double tol = dt == TG_F32 ? 1e-5 : 1e-12;
    for (int gi = 0; gi < NPOOLS; gi++)
        for (int si = 0; si < 3; si++) {
            const tg_conv2d_geom *g = &pools[gi];
            const int64_t *s = pool_images[si];
            int64_t oh = tg_conv2d_out_size(s[2], g->kh, g->stride_h, g->pad_h, 1);
            int64_t ow = tg_conv2d_out_size(s[3], g->kw, g->stride_w, g->pad_w, 1);
            tg_tensor *x = image(dt, s, NCHW);
            /* the gradient in a strided layout: a transposed [N, C, OW, OH] */
            tg_tensor *gout = tt_rand_tensor(dt, 4, (int64_t[]){s[0], s[1], ow, oh});
            tt_become(&gout, tg_tensor_transpose(NULL, gout, 2, 3));

            /* average: <avg_backward(g), x> = <g, avg_pool(x)> */
            tg_tensor *gin = tg_tensor_avg_pool2d_backward(NULL, gout, s[2], s[3], g);
            ck_assert_msg(gin != NULL, "%s", tg_last_error());
            tt_assert_shape(gin, s[0], s[1], s[2], s[3]);
            tg_tensor *y = tg_tensor_avg_pool2d(NULL, x, g);
            double s1, s2, left = dot(gin, x, &s1), right = dot(gout, y, &s2);
            ck_assert_msg(fabs(left - right) <= tol * (s1 + s2), "avg pool %d image %d: %.17g vs %.17g",
                          gi, si, left, right);

            /* max: the gradient goes, summed, to the indices */
            tg_tensor *idx;
            tg_tensor *m = tg_tensor_max_pool2d(NULL, x, g, &idx);
            tg_tensor *gmax = tg_tensor_max_pool2d_backward(NULL, gout, idx, s[2], s[3]);
            ck_assert_msg(gmax != NULL, "%s", tg_last_error());
            tt_assert_shape(gmax, s[0], s[1], s[2], s[3]);
            double *gv = tt_values(gout), *ref = calloc((size_t)numel(4, s), sizeof *ref);
            const int32_t *iv = tg_tensor_data(idx);
            for (int64_t p = 0; p < s[0] * s[1]; p++)
                for (int64_t o = 0; o < oh * ow; o++)
                    ref[p * s[2] * s[3] + iv[p * oh * ow + o]] += gv[p * oh * ow + o];
            tt_assert_close(gmax, ref, tol);
            free(gv);
            free(ref);
            tg_tensor *list[] = {x, gout, gin, y, idx, m, gmax};
            for (int i = 0; i < 7; i++)
                tg_tensor_free(list[i]);
        }
}
END_TEST

/* 2x2 windows at stride 2 on contiguous planes take a path of their own (avg_pool2x2_*):
 * bitwise the general path's results, which the same values as a strided view (every
 * other column of a wider tensor) still take. Odd sizes leave a row and a column out;
 * a -0 (whose sum from 0 is +0) and a large value are planted; the parallel size runs on 1 and 2 threads. */
START_TEST(test_avg_pool_2x2_fast)
{
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    const tg_conv2d_geom g = {2, 2, 2, 2, 0, 0, 1, 1};
    const int64_t shapes[][4] = {{2, 3, 8, 8}, {2, 3, 7, 9}, {1, 1, 2, 2}, {4, 16, 32, 32}};
    int saved = tg_get_num_threads();
    for (int si = 0; si < 4; si++) {
        const int64_t *s = shapes[si], oh = s[2] / 2, ow = s[3] / 2;
        tg_tensor *wide = tt_rand_tensor(dt, 4, (int64_t[]){s[0], s[1], s[2], 2 * s[3]});
        tg_tensor_set(wide, (int64_t[]){0, 0, 0, 0}, -0.0);
        tg_tensor_set(wide, (int64_t[]){0, 0, 0, 2}, 1e30);
        tg_tensor *strided = tg_tensor_slice(NULL, wide, 3, 0, 2 * s[3], 2);
        tg_tensor *x = tg_tensor_contiguous(NULL, strided);
        tg_tensor *gwide = tt_rand_tensor(dt, 4, (int64_t[]){s[0], s[1], oh, 2 * ow});
        tg_tensor_set(gwide, (int64_t[]){0, 0, 0, 0}, -0.0);
        tg_tensor *gstrided = tg_tensor_slice(NULL, gwide, 3, 0, 2 * ow, 2);
        tg_tensor *gout = tg_tensor_contiguous(NULL, gstrided);
        ck_assert_msg(x && gout, "%s", tg_last_error());
        tg_tensor *ref = tg_tensor_avg_pool2d(NULL, strided, &g);
        tg_tensor *gref = tg_tensor_avg_pool2d_backward(NULL, gstrided, s[2], s[3], &g);
        for (int t = 1; t <= 2; t++) {
            tg_set_num_threads(t);
            tg_tensor *y = tg_tensor_avg_pool2d(NULL, x, &g);
            tg_tensor *gin = tg_tensor_avg_pool2d_backward(NULL, gout, s[2], s[3], &g);
            ck_assert_msg(ref && gref && y && gin, "%s", tg_last_error());
            tt_assert_shape(y, s[0], s[1], oh, ow);
            ck_assert_msg(memcmp(tg_tensor_data(y), tg_tensor_data(ref), tg_storage_nbytes(ref->storage)) == 0,
                          "shape %d, %d threads: fast forward differs from the general path", si, t);
            ck_assert_msg(memcmp(tg_tensor_data(gin), tg_tensor_data(gref), tg_storage_nbytes(gref->storage)) == 0,
                          "shape %d, %d threads: fast backward differs from the general path", si, t);
            tg_tensor_free(y);
            tg_tensor_free(gin);
        }
        tg_tensor_free(ref);
        tg_tensor_free(gref);
        tg_tensor_free(x);
        tg_tensor_free(strided);
        tg_tensor_free(wide);
        tg_tensor_free(gout);
        tg_tensor_free(gstrided);
        tg_tensor_free(gwide);
    }
    tg_set_num_threads(saved);
}
END_TEST

/* ------------------------------------------------------------------ threads, arenas */

START_TEST(test_threads_bitwise)
{
    /* big enough to run in parallel; 1 and 2 threads must give the same bits */
    int saved = tg_get_num_threads();
    const tg_conv2d_geom g = {3, 3, 1, 1, 1, 1, 1, 1}, pg = {3, 3, 2, 2, 1, 1, 1, 1};
    tg_tensor *x = tt_rand_tensor(TG_F32, 4, (int64_t[]){4, 16, 32, 32});
    tg_tensor *y = tt_rand_tensor(TG_F32, 3, (int64_t[]){4, 16 * 9, 32 * 32});
    tg_tensor *gp = tt_rand_tensor(TG_F32, 4, (int64_t[]){4, 16, 16, 16});
    tg_tensor *r[2][6];
    for (int t = 0; t < 2; t++) {
        tg_set_num_threads(t + 1);
        tg_tensor *idx;
        r[t][0] = tg_tensor_im2col(NULL, x, &g);
        r[t][1] = tg_tensor_col2im(NULL, y, 16, 32, 32, &g);
        r[t][2] = tg_tensor_avg_pool2d(NULL, x, &pg);
        r[t][3] = tg_tensor_max_pool2d(NULL, x, &pg, &idx);
        r[t][4] = tg_tensor_avg_pool2d_backward(NULL, gp, 32, 32, &pg);
        r[t][5] = tg_tensor_max_pool2d_backward(NULL, gp, idx, 32, 32);
        tg_tensor_free(idx);
    }
    for (int k = 0; k < 6; k++) {
        ck_assert_msg(r[0][k] && r[1][k], "%s", tg_last_error());
        ck_assert_msg(memcmp(tg_tensor_data(r[0][k]), tg_tensor_data(r[1][k]),
                             tg_storage_nbytes(r[0][k]->storage)) == 0,
                      "result %d differs between 1 and 2 threads", k);
        tg_tensor_free(r[0][k]);
        tg_tensor_free(r[1][k]);
    }
    tg_tensor_free(x);
    tg_tensor_free(y);
    tg_tensor_free(gp);
    tg_set_num_threads(saved);
}
END_TEST

START_TEST(test_arena)
{
    tg_arena *ar = tg_arena_new(0);
    const tg_conv2d_geom g = {2, 2, 2, 2, 0, 0, 1, 1};
    tg_tensor *x = tt_rand_tensor(TG_F32, 4, (int64_t[]){1, 2, 4, 4});
    tg_tensor *idx;
    tg_tensor *outs[] = {tg_tensor_im2col(ar, x, &g), tg_tensor_avg_pool2d(ar, x, &g),
                         tg_tensor_max_pool2d(ar, x, &g, &idx)};
    for (int i = 0; i < 3; i++) {
        ck_assert_msg(outs[i] != NULL, "%s", tg_last_error());
        ck_assert_ptr_eq(outs[i]->arena, ar);
    }
    ck_assert_ptr_eq(idx->arena, ar);
    tg_tensor *back = tg_tensor_col2im(ar, outs[0], 2, 4, 4, &g); /* non-overlapping: x again */
    ck_assert_ptr_eq(back->arena, ar);
    double *xv = tt_values(x);
    tt_assert_close(back, xv, 0);
    free(xv);
    tg_tensor_free(x);
    tg_arena_free(ar);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_errors)
{
    const tg_conv2d_geom g3 = {3, 3, 1, 1, 1, 1, 1, 1}, g5 = {5, 5, 1, 1, 0, 0, 1, 1};
    const tg_conv2d_geom p2 = {2, 2, 2, 2, 2, 0, 1, 1}, bad = {2, 2, 0, 2, 0, 0, 1, 1};
    tg_tensor *x3 = tg_tensor_zeros(NULL, TG_F32, 3, (int64_t[]){3, 8, 8});
    tg_tensor *x = tg_tensor_zeros(NULL, TG_F32, 4, (int64_t[]){1, 1, 4, 4});
    tg_tensor *xi = tg_tensor_zeros(NULL, TG_I32, 4, (int64_t[]){1, 1, 4, 4});
    tg_tensor *empty = tg_tensor_zeros(NULL, TG_F32, 4, (int64_t[]){1, 1, 0, 4});

    tt_expect_error(tg_tensor_im2col(NULL, x3, &g3), TG_ERR_SHAPE, "tg_tensor_im2col",
                    "input [3,8,8] must be 4-D [N, C, H, W]");
    tt_expect_error(tg_tensor_avg_pool2d(NULL, x3, &g3), TG_ERR_SHAPE, "tg_tensor_avg_pool2d",
                    "input [3,8,8] must be 4-D [N, C, H, W]");
    tt_expect_error(tg_tensor_im2col(NULL, x, &g5), TG_ERR_SHAPE, "tg_tensor_im2col",
                    "kernel 5x5, stride 1x1, padding 0x0, dilation 1x1 is larger");
    tt_expect_error(tg_tensor_max_pool2d(NULL, x, &g5, NULL), TG_ERR_SHAPE, "tg_tensor_max_pool2d",
                    "kernel 5x5, stride 1x1, padding 0x0 is larger than the");
    tg_tensor *idx = (tg_tensor *)1;
    tt_expect_error(tg_tensor_max_pool2d(NULL, x, &p2, &idx), TG_ERR_ARG, "tg_tensor_max_pool2d",
                    "kernel 2x2, stride 2x2, padding 2x0: padding must be at");
    ck_assert_ptr_null(idx);
    tt_expect_error(tg_tensor_avg_pool2d(NULL, x, &bad), TG_ERR_ARG, "tg_tensor_avg_pool2d",
                    "kernel 2x2, stride 0x2, padding 0x0: kernel and stride must");
    tt_expect_error(tg_tensor_im2col(NULL, x, &(tg_conv2d_geom){3, 3, 1, 1, 0, 0, 0, 1}),
                    TG_ERR_ARG, "tg_tensor_im2col",
                    "kernel 3x3, stride 1x1, padding 0x0, dilation 0x1: kernel");
    tt_expect_error(tg_tensor_im2col(NULL, x, NULL), TG_ERR_ARG, "tg_tensor_im2col",
                    "the geometry is NULL");
    tt_expect_error(tg_tensor_im2col(NULL, xi, &g3), TG_ERR_DTYPE, "tg_tensor_im2col",
                    "input [1,1,4,4] is i32");
    tt_expect_error(tg_tensor_im2col(NULL, empty, &g3), TG_ERR_SHAPE, "tg_tensor_im2col",
                    "input [1,1,0,4] is empty");

    /* col2im: the columns must match the image and the geometry */
    tg_tensor *cols = tg_tensor_zeros(NULL, TG_F32, 3, (int64_t[]){2, 27, 60});
    tt_expect_error(tg_tensor_col2im(NULL, cols, 3, 8, 8, &g3), TG_ERR_SHAPE, "tg_tensor_col2im",
                    "columns [2,27,60] do not match image 3x8x8 with kernel 3x3");
    tt_expect_error(tg_tensor_col2im(NULL, x, 3, 8, 8, &g3), TG_ERR_SHAPE, "tg_tensor_col2im",
                    "columns [1,1,4,4] must be 3-D [N, C*kh*kw, OH*OW]");

    /* pooling backwards */
    tg_tensor *gout = tg_tensor_zeros(NULL, TG_F32, 4, (int64_t[]){1, 1, 3, 3});
    const tg_conv2d_geom p = {2, 2, 2, 2, 0, 0, 1, 1};
    tt_expect_error(tg_tensor_avg_pool2d_backward(NULL, gout, 4, 4, &p), TG_ERR_SHAPE,
                    "tg_tensor_avg_pool2d_backward",
                    "gradient [1,1,3,3] does not match input 4x4 with kernel");
    tg_tensor *fidx = tg_tensor_zeros(NULL, TG_F32, 4, (int64_t[]){1, 1, 3, 3});
    tt_expect_error(tg_tensor_max_pool2d_backward(NULL, gout, fidx, 6, 6), TG_ERR_DTYPE,
                    "tg_tensor_max_pool2d_backward", "indices are f32 (i32 expected)");
    tg_tensor *iidx = tg_tensor_zeros(NULL, TG_I32, 4, (int64_t[]){1, 1, 3, 3});
    tg_tensor_set(iidx, (int64_t[]){0, 0, 2, 2}, 36);
    tg_tensor_set(iidx, (int64_t[]){0, 0, 0, 1}, -1);
    tt_expect_error(tg_tensor_max_pool2d_backward(NULL, gout, iidx, 6, 6), TG_ERR_ARG,
                    "tg_tensor_max_pool2d_backward",
                    "2 of the indices [1,1,3,3] are outside the 6x6 input plane");

    /* a NULL input keeps the earlier message */
    tg_set_error(TG_ERR_NOMEM, "earlier failure");
    tt_expect_message(tg_tensor_im2col(NULL, NULL, &g3), TG_ERR_NOMEM, "earlier failure");
    tt_expect_message(tg_tensor_max_pool2d_backward(NULL, gout, NULL, 6, 6), TG_ERR_NOMEM,
                 "earlier failure");

    tg_tensor *list[] = {x3, x, xi, empty, cols, gout, fidx, iidx};
    for (size_t i = 0; i < sizeof list / sizeof list[0]; i++)
        tg_tensor_free(list[i]);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/conv");
    TCase *tc = tt_tcase("im2col");
    tcase_add_test(tc, test_conv_out_size);
    tcase_add_loop_test(tc, test_im2col, 0, 2);
    tcase_add_test(tc, test_conv_via_matmul);
    tcase_add_loop_test(tc, test_col2im, 0, 2);
    suite_add_tcase(s, tc);
    tc = tt_tcase("pooling");
    tcase_add_loop_test(tc, test_pooling, 0, 2);
    tcase_add_test(tc, test_max_pool_ties);
    tcase_add_loop_test(tc, test_pool_backward, 0, 2);
    tcase_add_loop_test(tc, test_avg_pool_2x2_fast, 0, 2);
    suite_add_tcase(s, tc);
    tc = tt_tcase("threads");
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_arena);
    suite_add_tcase(s, tc);
    tc = tt_tcase("errors");
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
