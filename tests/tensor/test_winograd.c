/* tests/tensor/test_winograd.c — the Winograd F(2x2, 3x3) convolution and its input and
 * weight gradients (tensor/winograd.c) against the reference they replace, computed in
 * f64: the forward as im2col + matmul (+ bias), the input gradient as weight^T @ gy then
 * col2im, the weight gradient as the sum over images of gy_n @ im2col(x)_n^T.
 *
 * Errors are measured as max |result - reference| / rms(reference). In f64 the
 * transforms add a few roundings of 1e-16: 1e-13 is the bound. In f32 the bound is
 * relative to what the GEMM path it replaces gets on the same data (im2col + matmul in
 * f32 against the same f64 reference), since "no result may change beyond float32
 * rounding": measured over [100,32,32,32] x [32,32,3,3], pad 1, N(0,1) data, the
 * Winograd forward's error is 1.5e-6 of the output's RMS against the GEMM path's
 * 3.8e-6, the input gradient's 1.5e-6 against 0.9e-6 (the forward's GEMM sums 288
 * products per output, the gradient's 32 then col2im's 9; Winograd sums 32 per GEMM
 * and rounds in its transforms). On this test's smaller problem the same figures are
 * 1.1e-6 against 2.5e-6 and 0.9e-6 against 0.6e-6; it asserts each within 3x the
 * GEMM path's error and under 1e-5 of the RMS (about 80 float32 ulps of a typical
 * output). F(4x4, 3x3), simulated in f32 on [4,32,32,32], has 2.0e-5: more than 5x
 * the GEMM path's, which is why it is not used. F(3x3, 3x3) (5x5 tiles), simulated the
 * same way, is best with the points 0, 1, -1, 2, -2 (no infinity; with infinity and 2,
 * -2, 1/2 or -1/2 it is 2-3x worse): forward 3.5-4.2e-6 against the GEMM path's
 * 2.7-3.0e-6, but input gradient 3.4-5.6e-6 against 0.80-0.85e-6, 4-6.5x, over three
 * seeds; with both transforms in double it is still 3.6e-6 (the f32 GEMM sums, then
 * A^T's entries up to 4), so it is not used either.
 *
 * The weight gradient sums N*OH*OW products per element, so its error was measured at
 * several sizes (N(0,1) data, x also clipped at 0 as after a relu; max error / RMS,
 * Winograd against tg_tensor_conv2d_backward_weight): [4,32,16,16] 0.9e-6 / 0.4e-6,
 * [100,32,8,8] 1.0e-6 / 0.4e-6, [100,32,32,32] 1.05e-6 / 0.6e-6, [400,32,16,16]
 * 1.1e-6 / 0.75e-6, C = 3 1.0e-6 / 0.6e-6; the RMS errors are 1.3 to 2.3x apart
 * (2.2e-7 / 1.5e-7 at [100,32,32,32]). Both are float32 sums in BLIS's register
 * chains of about 250 terms (Winograd's over tiles, the GEMM path's over output
 * columns), then a few per part; Winograd's M[k] carry about twice dw's magnitude (a
 * transformed 2x2 gradient tile times a transformed 4x4 input tile), so about twice
 * the error is its structure, and it does not grow with N (the GEMM path's grows
 * slowly, by its tiles added per part). On this test's problem, 0.85e-6 against
 * 0.40e-6; asserted, as above, within 3x the GEMM path's and under 1e-5. */
#include "check_util.h"

#include "internal.h" /* tg__isa_* */
#include "winograd.h"

#include <stdint.h>
#include <unistd.h>

static const tg_conv2d_geom pad1 = {3, 3, 1, 1, 1, 1, 1, 1};

/* ------------------------------------------------------------------ references */

/* y = w [OC, C*9] @ im2col(x) + b, in x's dtype, into ar */
static tg_tensor *ref_conv(tg_arena *ar, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b,
                           const tg_conv2d_geom *g)
{
    int64_t n = x->shape[0], oc = w->shape[0];
    int64_t oh = tg_conv2d_out_size(x->shape[2], 3, 1, g->pad_h, 1);
    int64_t ow = tg_conv2d_out_size(x->shape[3], 3, 1, g->pad_w, 1);
    tg_tensor *cols = tg_tensor_im2col(ar, x, g);
    tg_tensor *y = tg_tensor_matmul(ar, tg_tensor_reshape(ar, w, TG_DIMS(oc, -1)), cols);
    y = tg_tensor_reshape(ar, y, TG_DIMS(n, oc, oh, ow));
    if (b)
        y = tg_tensor_add(ar, y, tg_tensor_reshape(ar, b, TG_DIMS(oc, 1, 1)));
    ck_assert_msg(y != NULL, "%s", tg_last_error());
    return y;
}

/* dx = col2im(w^T [C*9, OC] @ gy [N, OC, OH*OW]), the adjoint of ref_conv in x */
static tg_tensor *ref_backward(tg_arena *ar, const tg_tensor *gy, const tg_tensor *w, int64_t h,
                               int64_t wd, const tg_conv2d_geom *g)
{
    int64_t n = gy->shape[0], oc = w->shape[0];
    tg_tensor *wt = tg_tensor_transpose(ar, tg_tensor_reshape(ar, w, TG_DIMS(oc, -1)), 0, 1);
    tg_tensor *cols = tg_tensor_matmul(ar, wt, tg_tensor_reshape(ar, gy, TG_DIMS(n, oc, -1)));
    tg_tensor *dx = tg_tensor_col2im(ar, cols, w->shape[1], h, wd, g);
    ck_assert_msg(dx != NULL, "%s", tg_last_error());
    return dx;
}

/* dw = sum_n gy_n [OC, OH*OW] @ im2col(x)_n^T [OH*OW, C*9], in gy's dtype, into ar */
static tg_tensor *ref_backward_weight(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                      const tg_conv2d_geom *g)
{
    int64_t n = gy->shape[0], oc = gy->shape[1];
    tg_tensor *cols = tg_tensor_transpose(ar, tg_tensor_im2col(ar, x, g), 1, 2);
    tg_tensor *per = tg_tensor_matmul(ar, tg_tensor_reshape(ar, gy, TG_DIMS(n, oc, -1)), cols);
    tg_tensor *dw = tg_tensor_sum(ar, per, 1, (int[]){0}, false);
    dw = tg_tensor_reshape(ar, dw, TG_DIMS(oc, x->shape[1], 3, 3));
    ck_assert_msg(dw != NULL, "%s", tg_last_error());
    return dw;
}

/* max |a - ref| / rms(ref) */
static double err_rms(const tg_tensor *a, const tg_tensor *ref)
{
    ck_assert(tg_tensor_same_shape(a, ref));
    double *av = tt_values(a), *rv = tt_values(ref), ss = 0, worst = 0;
    int64_t n = tg_tensor_numel(ref);
    for (int64_t i = 0; i < n; i++) {
        ss += rv[i] * rv[i];
        double e = fabs(av[i] - rv[i]);
        worst = e > worst || e != e ? e : worst;
    }
    free(av);
    free(rv);
    return worst / sqrt(ss / (double)(n ? n : 1));
}

static tg_tensor *rand_in(tg_arena *ar, tg_dtype dt, int64_t a, int64_t b, int64_t c, int64_t d)
{
    tg_tensor *h = tt_rand_tensor(dt, 4, (int64_t[]){a, b, c, d});
    tg_tensor *t = tg_tensor_clone(ar, h);
    tg_tensor_free(h);
    return t;
}

static tg_tensor *winograd(tg_arena *ar, const tg_tensor *x, const tg_tensor *w, const tg_tensor *b,
                           const tg_conv2d_geom *g)
{
    ck_assert(tg__winograd_applies(x, w, g));
    int64_t oh = tg_conv2d_out_size(x->shape[2], 3, 1, g->pad_h, 1);
    int64_t ow = tg_conv2d_out_size(x->shape[3], 3, 1, g->pad_w, 1);
    tg_tensor *y = tg_tensor_full(ar, x->dtype, TG_DIMS(x->shape[0], w->shape[0], oh, ow), NAN);
    ck_assert_int_eq(tg__winograd_conv2d(ar, y, x, w, b, g), TG_OK);
    return y;
}

static tg_tensor *winograd_backward(tg_arena *ar, const tg_tensor *gy, const tg_tensor *w,
                                    int64_t h, int64_t wd, const tg_conv2d_geom *g)
{
    tg_tensor *dx = tg_tensor_full(ar, gy->dtype, TG_DIMS(gy->shape[0], w->shape[1], h, wd), NAN);
    ck_assert_int_eq(tg__winograd_conv2d_backward_input(ar, dx, gy, w, g), TG_OK);
    return dx;
}

static tg_tensor *winograd_weight(tg_arena *ar, const tg_tensor *gy, const tg_tensor *x,
                                  const tg_conv2d_geom *g)
{
    tg_tensor *dw = tg_tensor_full(ar, gy->dtype, TG_DIMS(gy->shape[1], x->shape[1], 3, 3), NAN);
    ck_assert_int_eq(tg__winograd_conv2d_backward_weight(ar, dw, gy, x, g), TG_OK);
    return dw;
}

/* ------------------------------------------------------------------ f64 against the reference */

/* one case: forward with and without bias, the input and the weight gradient, in f64 */
static void check_f64(int64_t n, int64_t c, int64_t oc, int64_t h, int64_t wd, int ph, int pw)
{
    tg_arena *ar = tg_arena_new(0);
    const tg_conv2d_geom g = {3, 3, 1, 1, ph, pw, 1, 1};
    tg_tensor *x = rand_in(ar, TG_F64, n, c, h, wd), *w = rand_in(ar, TG_F64, oc, c, 3, 3);
    tg_tensor *b = tg_tensor_reshape(ar, rand_in(ar, TG_F64, oc, 1, 1, 1), TG_DIMS(oc));
    for (int bias = 0; bias < 2; bias++) {
        tg_tensor *bb = bias ? b : NULL;
        double e = err_rms(winograd(ar, x, w, bb, &g), ref_conv(ar, x, w, bb, &g));
        ck_assert_msg(e < 1e-13, "forward [%lld,%lld,%lld,%lld] pad %dx%d bias %d: error %g",
                      (long long)n, (long long)c, (long long)h, (long long)wd, ph, pw, bias, e);
    }
    int64_t oh = tg_conv2d_out_size(h, 3, 1, ph, 1), ow = tg_conv2d_out_size(wd, 3, 1, pw, 1);
    tg_tensor *gy = rand_in(ar, TG_F64, n, oc, oh, ow);
    double e = err_rms(winograd_backward(ar, gy, w, h, wd, &g), ref_backward(ar, gy, w, h, wd, &g));
    ck_assert_msg(e < 1e-13, "input gradient [%lld,%lld,%lld,%lld] pad %dx%d: error %g",
                  (long long)n, (long long)c, (long long)h, (long long)wd, ph, pw, e);
    e = err_rms(winograd_weight(ar, gy, x, &g), ref_backward_weight(ar, gy, x, &g));
    ck_assert_msg(e < 1e-13, "weight gradient [%lld,%lld,%lld,%lld] pad %dx%d: error %g",
                  (long long)n, (long long)c, (long long)h, (long long)wd, ph, pw, e);
    tg_arena_free(ar);
}

START_TEST(test_small)
{
    check_f64(3, 4, 5, 8, 8, 1, 1); /* the case in miniature */
}
END_TEST

START_TEST(test_odd_sizes)
{
    /* odd heights and widths clip the last tiles; pads 0 and 2 (and one of each)
     * shift the tiles against the image; 1-pixel and 2-pixel images have tiles that
     * are mostly padding */
    for (int ph = 0; ph <= 2; ph++)
        for (int pw = 0; pw <= 2; pw++)
            check_f64(2, 3, 5, 7, 9, ph, pw);
    check_f64(2, 3, 4, 1, 1, 1, 1);
    check_f64(1, 2, 3, 2, 5, 2, 1);
    check_f64(2, 1, 1, 3, 3, 0, 0); /* a single output */
}
END_TEST

START_TEST(test_chunks)
{
    /* enough channels that a chunk is less than an image and its chunks straddle
     * images (30x30: 15 tile rows of 15 tiles per image; 1 MiB of V and M in f64 holds
     * 93 tiles, so 6 tile rows per chunk) */
    check_f64(3, 48, 40, 30, 30, 1, 1);
    /* the weight gradient's parts: 15x15 images have 8 tile rows of 8 tiles; 1 MiB of
     * V and the gradient's transform in f64 holds 79 tiles, 9 tile rows, so 160 tile
     * rows make 18 chunks that straddle images, summed in 16 parts of 1 or 2 chunks */
    check_f64(20, 3, 100, 15, 15, 1, 1);
}
END_TEST

START_TEST(test_usual_widths)
{
    /* padding 1 with an even width and unit stride, and 2, 4, 8 or 16 tiles a row (4x4 to
     * 32x32 planes), takes transforms compiled for that width; 3 tiles a row (width 6)
     * takes the general ones */
    check_f64(2, 3, 4, 4, 4, 1, 1);
    check_f64(2, 3, 4, 6, 8, 1, 1);
    check_f64(2, 3, 4, 16, 16, 1, 1);
    check_f64(1, 2, 3, 32, 32, 1, 1);
}
END_TEST

/* ------------------------------------------------------------------ f32 error */

START_TEST(test_f32_error)
{
    /* f32 Winograd and f32 GEMM path, both against the f64 reference of the same data */
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = rand_in(ar, TG_F32, 4, 32, 16, 16), *w = rand_in(ar, TG_F32, 32, 32, 3, 3);
    tg_tensor *b = tg_tensor_reshape(ar, rand_in(ar, TG_F32, 32, 1, 1, 1), TG_DIMS(32));
    tg_tensor *gy = rand_in(ar, TG_F32, 4, 32, 16, 16);
    tg_tensor *x64 = tg_tensor_to_dtype(ar, x, TG_F64), *w64 = tg_tensor_to_dtype(ar, w, TG_F64);
    tg_tensor *b64 = tg_tensor_to_dtype(ar, b, TG_F64), *gy64 = tg_tensor_to_dtype(ar, gy, TG_F64);

    tg_tensor *ref = ref_conv(ar, x64, w64, b64, &pad1);
    double wino = err_rms(winograd(ar, x, w, b, &pad1), ref);
    double gemm = err_rms(ref_conv(ar, x, w, b, &pad1), ref);
    ck_assert_msg(wino < 3 * gemm && wino < 1e-5, "forward: Winograd %g, GEMM path %g", wino, gemm);

    ref = ref_backward(ar, gy64, w64, 16, 16, &pad1);
    wino = err_rms(winograd_backward(ar, gy, w, 16, 16, &pad1), ref);
    gemm = err_rms(ref_backward(ar, gy, w, 16, 16, &pad1), ref);
    ck_assert_msg(wino < 3 * gemm && wino < 1e-5, "input gradient: Winograd %g, GEMM path %g",
                  wino, gemm);

    ref = ref_backward_weight(ar, gy64, x64, &pad1);
    wino = err_rms(winograd_weight(ar, gy, x, &pad1), ref);
    gemm = err_rms(tg_tensor_conv2d_backward_weight(ar, gy, x, &pad1), ref);
    ck_assert_msg(wino < 3 * gemm && wino < 1e-5, "weight gradient: Winograd %g, GEMM path %g",
                  wino, gemm);
    tg_arena_free(ar);
}
END_TEST

/* ------------------------------------------------------------------ layouts, threads, memory */

START_TEST(test_strided_inputs)
{
    /* x channels-last (a permuted view), w with its axes permuted and a bias with
     * stride 2, gy every other column: the same bits as from contiguous copies, for the
     * forward and both gradients */
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = tg_tensor_permute(ar, rand_in(ar, dt, 2, 7, 9, 3), 4, (int[]){0, 3, 1, 2});
    tg_tensor *w = tg_tensor_permute(ar, rand_in(ar, dt, 3, 3, 3, 5), 4, (int[]){3, 2, 0, 1});
    tg_tensor *b = tg_tensor_slice(ar, tg_tensor_reshape(ar, rand_in(ar, dt, 10, 1, 1, 1),
                                                         TG_DIMS(10)), 0, 0, 10, 2);
    tg_tensor *gy = tg_tensor_slice(ar, rand_in(ar, dt, 2, 5, 7, 18), 3, 0, 18, 2);
    ck_assert(!tg_tensor_is_contiguous(x) && !tg_tensor_is_contiguous(w) &&
              !tg_tensor_is_contiguous(b) && !tg_tensor_is_contiguous(gy));
    tg_tensor *xc = tg_tensor_clone(ar, x), *wc = tg_tensor_clone(ar, w);
    tg_tensor *bc = tg_tensor_clone(ar, b), *gyc = tg_tensor_clone(ar, gy);
    ck_assert(tt_same_bits(winograd(ar, x, w, b, &pad1), winograd(ar, xc, wc, bc, &pad1)));
    ck_assert(tt_same_bits(winograd_backward(ar, gy, w, 7, 9, &pad1),
                        winograd_backward(ar, gyc, wc, 7, 9, &pad1)));
    ck_assert(tt_same_bits(winograd_weight(ar, gy, x, &pad1), winograd_weight(ar, gyc, xc, &pad1)));
    tg_arena_free(ar);
}
END_TEST

START_TEST(test_strided_usual_width)
{
    /* a 16x16 input channels-last and an output gradient of every other column take the
     * general transforms; their contiguous copies the ones compiled for 8 tiles a row:
     * the same sums, so the same bits */
    tg_dtype dt = _i ? TG_F64 : TG_F32;
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = tg_tensor_permute(ar, rand_in(ar, dt, 2, 16, 16, 8), 4, (int[]){0, 3, 1, 2});
    tg_tensor *w = rand_in(ar, dt, 8, 8, 3, 3);
    tg_tensor *gy = tg_tensor_slice(ar, rand_in(ar, dt, 2, 8, 16, 32), 3, 0, 32, 2);
    tg_tensor *xc = tg_tensor_clone(ar, x), *gyc = tg_tensor_clone(ar, gy);
    ck_assert(tt_same_bits(winograd(ar, x, w, NULL, &pad1), winograd(ar, xc, w, NULL, &pad1)));
    ck_assert(tt_same_bits(winograd_backward(ar, gy, w, 16, 16, &pad1),
                        winograd_backward(ar, gyc, w, 16, 16, &pad1)));
    ck_assert(tt_same_bits(winograd_weight(ar, gy, x, &pad1), winograd_weight(ar, gyc, xc, &pad1)));
    tg_arena_free(ar);
}
END_TEST

START_TEST(test_threads_bitwise)
{
    /* several chunks, the last one short and straddling images (for the weight gradient,
     * 4 parts of one chunk): 1 and 2 threads give the same bits */
    int saved = tg_get_num_threads();
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = rand_in(ar, TG_F32, 3, 32, 30, 30), *w = rand_in(ar, TG_F32, 24, 32, 3, 3);
    tg_tensor *b = tg_tensor_reshape(ar, rand_in(ar, TG_F32, 24, 1, 1, 1), TG_DIMS(24));
    tg_tensor *gy = rand_in(ar, TG_F32, 3, 24, 30, 30);
    tg_tensor *y[2], *dx[2], *dw[2];
    for (int t = 0; t < 2; t++) {
        tg_set_num_threads(t + 1);
        y[t] = winograd(ar, x, w, b, &pad1);
        dx[t] = winograd_backward(ar, gy, w, 30, 30, &pad1);
        dw[t] = winograd_weight(ar, gy, x, &pad1);
    }
    ck_assert_msg(tt_same_bits(y[0], y[1]), "the forward differs between 1 and 2 threads");
    ck_assert_msg(tt_same_bits(dx[0], dx[1]), "the input gradient differs between 1 and 2 threads");
    ck_assert_msg(tt_same_bits(dw[0], dw[1]), "the weight gradient differs between 1 and 2 threads");
    tg_set_num_threads(saved);
    tg_arena_free(ar);
}
END_TEST

START_TEST(test_scratch)
{
    /* with an arena, the scratch is one large block given back at the end, so a second
     * call takes no more memory; with none, it is the heap's (ASan checks the free) */
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = rand_in(ar, TG_F32, 2, 16, 32, 32), *w = rand_in(ar, TG_F32, 16, 16, 3, 3);
    tg_tensor *y = winograd(ar, x, w, NULL, &pad1), *y2 = tg_tensor_empty(ar, TG_F32, 4, y->shape);
    size_t used = tg_arena_used(ar), cap = tg_arena_capacity(ar);
    ck_assert_int_eq(tg__winograd_conv2d(ar, y2, x, w, NULL, &pad1), TG_OK);
    ck_assert_uint_eq(tg_arena_capacity(ar), cap);
    ck_assert_uint_le(tg_arena_used(ar), used);
    ck_assert(tt_same_bits(y, y2));
    ck_assert_int_eq(tg__winograd_conv2d(NULL, y2, x, w, NULL, &pad1), TG_OK);
    ck_assert(tt_same_bits(y, y2));

    /* the weight gradient's parts, sum and chunks likewise */
    tg_tensor *dw = winograd_weight(ar, y, x, &pad1);
    tg_tensor *dw2 = tg_tensor_empty(ar, TG_F32, 4, dw->shape);
    used = tg_arena_used(ar);
    cap = tg_arena_capacity(ar);
    ck_assert_int_eq(tg__winograd_conv2d_backward_weight(ar, dw2, y, x, &pad1), TG_OK);
    ck_assert_uint_eq(tg_arena_capacity(ar), cap);
    ck_assert_uint_le(tg_arena_used(ar), used);
    ck_assert(tt_same_bits(dw, dw2));
    ck_assert_int_eq(tg__winograd_conv2d_backward_weight(NULL, dw2, y, x, &pad1), TG_OK);
    ck_assert(tt_same_bits(dw, dw2));
    tg_arena_free(ar);
}
END_TEST

/* ------------------------------------------------------------------ the transforms' copies */

/* The transforms are compiled once per instruction set (tensor/isa.c); meson runs this
 * suite under TG_ISA=generic, avx2 and avx512 too, so the tests above check each copy
 * the CPU has against the reference. The copies only add and subtract, so they must
 * also give the same bits as the generic one: checked here in one process for every
 * copy this CPU can run, on shapes that take every path (the widths compiled as
 * constants, an odd one, strided operands, the padding 0 and 2, f32 and f64). */
static void same_bits_every_isa(tg_dtype dt, int64_t n, int64_t c, int64_t oc, int64_t h,
                                int64_t wd, int pad, bool strided)
{
    tg_arena *ar = tg_arena_new(0);
    const tg_conv2d_geom g = {3, 3, 1, 1, pad, pad, 1, 1};
    tg_tensor *x = rand_in(ar, dt, n, c, h, wd), *w = rand_in(ar, dt, oc, c, 3, 3);
    tg_tensor *b = tg_tensor_reshape(ar, rand_in(ar, dt, oc, 1, 1, 1), TG_DIMS(oc));
    int64_t oh = h + 2 * pad - 2, ow = wd + 2 * pad - 2;
    tg_tensor *gy = rand_in(ar, dt, n, oc, oh, ow);
    if (strided) { /* every other column of a wider tensor */
        x = tg_tensor_slice(ar, rand_in(ar, dt, n, c, h, 2 * wd), 3, 0, 2 * wd, 2);
        gy = tg_tensor_slice(ar, rand_in(ar, dt, n, oc, oh, 2 * ow), 3, 0, 2 * ow, 2);
        ck_assert_msg(x && gy, "%s", tg_last_error());
    }
    tg__isa saved = tg__isa_chosen();
    tg_tensor *ref[3] = {NULL, NULL, NULL};
    for (int i = 0; i < TG__ISA_COUNT; i++) {
        if (!tg__isa_force((tg__isa)i))
            continue; /* a copy this CPU cannot run (or this build lacks) */
        ck_assert_int_eq(tg__isa_chosen(), i);
        tg_tensor *got[3] = {winograd(ar, x, w, b, &g), winograd_backward(ar, gy, w, h, wd, &g),
                             winograd_weight(ar, gy, x, &g)};
        for (int k = 0; k < 3; k++) {
            if (!ref[k])
                ref[k] = got[k]; /* generic, always the first */
            ck_assert_msg(tt_same_bits(got[k], ref[k]),
                          "%s: %s, %lldx%lld pad %d%s: %s differs from generic",
                          tg__isa_name((tg__isa)i), tg_dtype_name(dt), (long long)h, (long long)wd,
                          pad, strided ? " strided" : "",
                          k == 0 ? "the forward" : k == 1 ? "the input gradient" : "the weight gradient");
        }
    }
    ck_assert(tg__isa_force(saved));
    tg_arena_free(ar);
}

START_TEST(test_isa_same_bits)
{
    static const int64_t sides[] = {32, 16, 8, 4, 2, 9, 23};
    for (size_t i = 0; i < sizeof sides / sizeof *sides; i++)
        same_bits_every_isa(TG_F32, 2, 8, 8, sides[i], sides[i], 1, false);
    same_bits_every_isa(TG_F32, 3, 9, 10, 30, 30, 1, false); /* several chunks */
    same_bits_every_isa(TG_F32, 2, 8, 8, 17, 12, 0, false);
    same_bits_every_isa(TG_F32, 2, 8, 8, 12, 17, 2, false);
    same_bits_every_isa(TG_F32, 2, 8, 8, 16, 16, 1, true);
    same_bits_every_isa(TG_F64, 2, 8, 8, 16, 16, 1, false);
    same_bits_every_isa(TG_F64, 2, 8, 8, 11, 13, 1, true);
}
END_TEST

START_TEST(test_isa_parse)
{
    /* tg__isa_parse alone, for CPUs this machine may not be: which copy, which warning */
    unsigned all = 7, sse2 = 1, avx2 = 3, avx512_only = 5;
    char why[160];
    /* the default: AVX2 where the CPU has it, AVX-512 too (isa.c says why) */
    ck_assert_int_eq(tg__isa_parse(NULL, all, why, sizeof why), TG__ISA_AVX2);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(tg__isa_parse("", avx2, why, sizeof why), TG__ISA_AVX2);
    ck_assert_int_eq(tg__isa_parse("auto", sse2, why, sizeof why), TG__ISA_GENERIC);
    ck_assert_int_eq(tg__isa_parse("auto", avx512_only, why, sizeof why), TG__ISA_AVX512);
    ck_assert_str_eq(why, "");
    ck_assert_int_eq(tg__isa_parse("generic", all, why, sizeof why), TG__ISA_GENERIC);
    ck_assert_int_eq(tg__isa_parse("avx2", all, why, sizeof why), TG__ISA_AVX2);
    ck_assert_int_eq(tg__isa_parse("avx512", all, why, sizeof why), TG__ISA_AVX512);
    ck_assert_str_eq(why, "");
    /* a copy the CPU cannot run: the default, and why */
    ck_assert_int_eq(tg__isa_parse("avx512", avx2, why, sizeof why), TG__ISA_AVX2);
    ck_assert_str_eq(why, "TG_ISA=avx512: this CPU cannot run it; using avx2");
    ck_assert_int_eq(tg__isa_parse("avx2", sse2, why, sizeof why), TG__ISA_GENERIC);
    ck_assert_str_eq(why, "TG_ISA=avx2: this CPU cannot run it; using generic");
    /* a name it does not know (the names are lower case) */
    ck_assert_int_eq(tg__isa_parse("AVX2", all, why, sizeof why), TG__ISA_AVX2);
    ck_assert_str_eq(why, "TG_ISA=AVX2: not one of avx512, avx2, generic, auto; using avx2");
    ck_assert_int_eq(tg__isa_parse("sse4", sse2, why, sizeof why), TG__ISA_GENERIC);
    ck_assert_str_eq(why, "TG_ISA=sse4: not one of avx512, avx2, generic, auto; using generic");
    /* this machine: generic always, and the names */
    ck_assert(tg__isa_available() & 1u);
    ck_assert(tg__isa_supported(TG__ISA_GENERIC));
    ck_assert(!tg__isa_supported(TG__ISA_COUNT));
    ck_assert(!tg__isa_force(TG__ISA_COUNT));
    ck_assert_str_eq(tg__isa_name(TG__ISA_AVX512), "avx512");
#if !TG__ISA_X86
    ck_assert_uint_eq(tg__isa_available(), 1u); /* the generic copy alone is compiled */
#endif
}
END_TEST

START_TEST(test_isa_env)
{
    /* the copy in use is the one TG_ISA asks for (meson runs this case under an unknown
     * value too), the warning for a value it cannot have is one line on stderr, given
     * once, and the kernels' description names the copy */
    const char *env = getenv("TG_ISA"), *fork = getenv("CK_FORK");
    char why[160], line[200] = "";
    tg__isa want = tg__isa_parse(env, tg__isa_available(), why, sizeof why);
    if (!(fork && strcmp(fork, "no") == 0)) { /* a fresh child: nothing has chosen yet */
        FILE *err = tmpfile();
        ck_assert_ptr_nonnull(err);
        fflush(stderr);
        int saved = dup(fileno(stderr));
        ck_assert_int_ge(saved, 0);
        ck_assert_int_ge(dup2(fileno(err), fileno(stderr)), 0);
        tg__isa first = tg__isa_chosen(), second = tg__isa_chosen();
        fflush(stderr);
        dup2(saved, fileno(stderr));
        close(saved);
        ck_assert_int_eq(first, second);
        rewind(err);
        size_t got = fread(line, 1, sizeof line - 1, err);
        line[got] = '\0';
        fclose(err);
        char expect[200] = "";
        if (why[0])
            snprintf(expect, sizeof expect, "tapegrad: %s\n", why);
        ck_assert_str_eq(line, expect);
    }
    ck_assert_int_eq(tg__isa_chosen(), want);
    char named[64];
    snprintf(named, sizeof named, "; %s Winograd transforms", tg__isa_name(want));
    ck_assert_msg(strstr(tg_gemm_kernels(), named), "%s lacks '%s'", tg_gemm_kernels(), named);
}
END_TEST

/* ------------------------------------------------------------------ which problems, errors */

START_TEST(test_applies)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = rand_in(ar, TG_F32, 2, 4, 8, 8), *w = rand_in(ar, TG_F32, 5, 4, 3, 3);
    ck_assert(tg__winograd_applies(x, w, &pad1));
    ck_assert(tg__winograd_applies(x, w, &(tg_conv2d_geom){3, 3, 1, 1, 0, 2, 1, 1}));
    ck_assert(tg__winograd_applies(tg_tensor_to_dtype(ar, x, TG_F64),
                                   tg_tensor_to_dtype(ar, w, TG_F64), &pad1));
    const tg_conv2d_geom refused[] = {
        {3, 3, 2, 2, 1, 1, 1, 1}, /* stride 2 */
        {3, 3, 1, 2, 1, 1, 1, 1}, /* stride 2 along one axis */
        {3, 3, 1, 1, 1, 1, 2, 2}, /* dilation */
        {3, 3, 1, 1, 3, 1, 1, 1}, /* padding 3 */
        {3, 3, 1, 1, -1, 1, 1, 1},
        {5, 5, 1, 1, 2, 2, 1, 1}, /* a 5x5 kernel */
        {1, 3, 1, 1, 0, 1, 1, 1},
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        ck_assert_msg(!tg__winograd_applies(x, w, &refused[i]), "geometry %zu accepted", i);
    ck_assert(!tg__winograd_applies(x, w, NULL));
    ck_assert(!tg__winograd_applies(NULL, w, &pad1));
    ck_assert(!tg__winograd_applies(x, rand_in(ar, TG_F32, 5, 3, 3, 3), &pad1)); /* channels */
    ck_assert(!tg__winograd_applies(x, rand_in(ar, TG_F32, 5, 4, 5, 5), &pad1)); /* 5x5 weight */
    ck_assert(!tg__winograd_applies(x, tg_tensor_to_dtype(ar, w, TG_F64), &pad1));
    ck_assert(!tg__winograd_applies(tg_tensor_to_dtype(ar, x, TG_I32),
                                    tg_tensor_to_dtype(ar, w, TG_I32), &pad1));
    ck_assert(!tg__winograd_applies(tg_tensor_zeros(ar, TG_F32, TG_DIMS(0, 4, 8, 8)), w, &pad1));
    ck_assert(!tg__winograd_applies(tg_tensor_zeros(ar, TG_F32, TG_DIMS(8, 4, 8)), w, &pad1));
    /* a 1x1 image without padding has no 3x3 window */
    ck_assert(!tg__winograd_applies(tg_tensor_zeros(ar, TG_F32, TG_DIMS(1, 4, 1, 1)), w,
                                    &(tg_conv2d_geom){3, 3, 1, 1, 0, 0, 1, 1}));
    tg_arena_free(ar);
}
END_TEST

static void expect_status(tg_status got, tg_status want, const char *message)
{
    ck_assert_int_eq(got, want);
    ck_assert_str_eq(tg_last_error(), message);
}

START_TEST(test_errors)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *x = rand_in(ar, TG_F32, 2, 4, 8, 8), *w = rand_in(ar, TG_F32, 5, 4, 3, 3);
    tg_tensor *y = tg_tensor_empty(ar, TG_F32, TG_DIMS(2, 5, 8, 8));
    const tg_conv2d_geom s2 = {3, 3, 2, 2, 1, 1, 1, 1};
    expect_status(tg__winograd_conv2d(ar, y, x, w, NULL, &s2), TG_ERR_ARG,
                  "tg__winograd_conv2d: input [2,4,8,8] (f32), weight [5,4,3,3] (f32), kernel 3x3, "
                  "stride 2x2, padding 1x1, dilation 1x1: not a 3x3 stride-1 convolution with "
                  "padding at most 2 of non-empty f32 or f64 tensors with matching channels");
    expect_status(tg__winograd_conv2d(ar, tg_tensor_empty(ar, TG_F32, TG_DIMS(2, 5, 6, 6)), x, w,
                                      NULL, &pad1),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d: output [2,5,6,6] (f32) must be contiguous [2,5,8,8] of f32 "
                  "for input [2,4,8,8]");
    expect_status(tg__winograd_conv2d(ar, tg_tensor_transpose(ar, y, 2, 3), x, w, NULL, &pad1),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d: output [2,5,8,8] (f32) must be contiguous [2,5,8,8] of f32 "
                  "for input [2,4,8,8]");
    expect_status(tg__winograd_conv2d(ar, y, x, w, tg_tensor_zeros(ar, TG_F32, TG_DIMS(4)), &pad1),
                  TG_ERR_SHAPE, "tg__winograd_conv2d: bias [4] (f32) must be [5] of f32");
    tg_tensor *dx = tg_tensor_empty(ar, TG_F32, TG_DIMS(2, 4, 8, 8));
    expect_status(tg__winograd_conv2d_backward_input(ar, dx, y, w, &s2), TG_ERR_ARG,
                  "tg__winograd_conv2d_backward_input: weight [5,4,3,3], input gradient [2,4,8,8], "
                  "kernel 3x3, stride 2x2, padding 1x1, dilation 1x1: not a 3x3 stride-1 "
                  "convolution with padding at most 2");
    expect_status(tg__winograd_conv2d_backward_input(ar, dx, x, w, &pad1), TG_ERR_ARG,
                  "tg__winograd_conv2d_backward_input: output gradient [2,4,8,8] (f32), weight "
                  "[5,4,3,3] (f32), kernel 3x3, stride 1x1, padding 1x1, dilation 1x1: not a 3x3 "
                  "stride-1 convolution with padding at most 2 of non-empty f32 or f64 tensors "
                  "with matching channels");
    expect_status(tg__winograd_conv2d_backward_input(ar, dx, y, w,
                                                     &(tg_conv2d_geom){3, 3, 1, 1, 0, 0, 1, 1}),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d_backward_input: input gradient [2,4,8,8] (f32) must be "
                  "contiguous [2,4,10,10] of f32 for output gradient [2,5,8,8]");
    tg_tensor *dw = tg_tensor_empty(ar, TG_F32, TG_DIMS(5, 4, 3, 3));
    expect_status(tg__winograd_conv2d_backward_weight(ar, dw, y, x, &s2), TG_ERR_ARG,
                  "tg__winograd_conv2d_backward_weight: input [2,4,8,8] (f32), weight gradient "
                  "[5,4,3,3] (f32), kernel 3x3, stride 2x2, padding 1x1, dilation 1x1: not a 3x3 "
                  "stride-1 convolution with padding at most 2 of non-empty f32 or f64 tensors "
                  "with matching channels");
    expect_status(tg__winograd_conv2d_backward_weight(
                      ar, tg_tensor_empty(ar, TG_F32, TG_DIMS(5, 3, 3, 3)), y, x, &pad1),
                  TG_ERR_ARG,
                  "tg__winograd_conv2d_backward_weight: input [2,4,8,8] (f32), weight gradient "
                  "[5,3,3,3] (f32), kernel 3x3, stride 1x1, padding 1x1, dilation 1x1: not a 3x3 "
                  "stride-1 convolution with padding at most 2 of non-empty f32 or f64 tensors "
                  "with matching channels");
    expect_status(tg__winograd_conv2d_backward_weight(ar, tg_tensor_permute(ar, dw, 4,
                                                                            (int[]){0, 1, 3, 2}),
                                                      y, x, &pad1),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d_backward_weight: weight gradient [5,4,3,3] (f32) must be "
                  "contiguous [5,4,3,3] of f32 for input [2,4,8,8]");
    expect_status(tg__winograd_conv2d_backward_weight(
                      ar, dw, tg_tensor_empty(ar, TG_F32, TG_DIMS(2, 5, 6, 6)), x, &pad1),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d_backward_weight: output gradient [2,5,6,6] (f32) must be "
                  "[2,5,8,8] of f32 for input [2,4,8,8], weight gradient [5,4,3,3] and kernel "
                  "3x3, stride 1x1, padding 1x1, dilation 1x1");
    expect_status(tg__winograd_conv2d_backward_weight(
                      ar, dw, tg_tensor_to_dtype(ar, y, TG_F64), x, &pad1),
                  TG_ERR_SHAPE,
                  "tg__winograd_conv2d_backward_weight: output gradient [2,5,8,8] (f64) must be "
                  "[2,5,8,8] of f32 for input [2,4,8,8], weight gradient [5,4,3,3] and kernel "
                  "3x3, stride 1x1, padding 1x1, dilation 1x1");
    tg_set_error(TG_ERR_NOMEM, "earlier failure");
    expect_status(tg__winograd_conv2d(ar, y, NULL, w, NULL, &pad1), TG_ERR_NOMEM, "earlier failure");
    expect_status(tg__winograd_conv2d_backward_weight(ar, NULL, y, x, &pad1), TG_ERR_NOMEM,
                  "earlier failure");
    tg_arena_free(ar);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/winograd");
    TCase *tc = tt_tcase("winograd");
    tcase_add_test(tc, test_small);
    tcase_add_test(tc, test_odd_sizes);
    tcase_add_test(tc, test_chunks);
    tcase_add_test(tc, test_usual_widths);
    tcase_add_test(tc, test_f32_error);
    tcase_add_loop_test(tc, test_strided_inputs, 0, 2);
    tcase_add_loop_test(tc, test_strided_usual_width, 0, 2);
    tcase_add_test(tc, test_threads_bitwise);
    tcase_add_test(tc, test_scratch);
    tcase_add_test(tc, test_applies);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    TCase *isa = tt_tcase("isa"); /* its own case, for CK_RUN_CASE=isa (tests/tensor/meson.build) */
    tcase_add_test(isa, test_isa_same_bits);
    tcase_add_test(isa, test_isa_parse);
    tcase_add_test(isa, test_isa_env);
    suite_add_tcase(s, isa);
    return tt_run(s);
}
