/* tensor/conv.c — the kernels under 2-D convolution and pooling on [N, C, H, W]
 * tensors: im2col and its adjoint col2im (a convolution is then one GEMM), average
 * and max pooling and their backwards.
 *
 * Inputs may have any strides; outputs are contiguous. The work is split by image
 * plane (n, c), or by rows of columns for im2col, so no two threads write the same
 * element and every sum is taken in the same order whatever the thread count. Each
 * kernel first finds, for a kernel offset, the run of output positions whose input
 * lies inside the image (valid_range), so the inner loops carry no bounds tests and
 * a stride-1 row is one memcpy or one vectorisable loop. The per-plane pieces work on a
 * range of output rows, so the fused convolution (conv2d.c) lays out and sums back one
 * image's columns a cache-sized tile at a time (tg__im2col_tile, tg__col2im_tile). */
#include "internal.h"

#include <math.h>
#include <string.h>

/* A kernel body written once over `tg_dtype dt` and called with a constant dt, so the
 * compiler makes an f32 and an f64 copy with the dtype tests folded away. */
#define SPECIALISED static inline __attribute__((always_inline))

SPECIALISED double ld(tg_dtype dt, const char *p, int64_t i)
{
    return dt == TG_F32 ? (double)((const float *)p)[i] : ((const double *)p)[i];
}

SPECIALISED void st(tg_dtype dt, char *p, int64_t i, double v)
{
    if (dt == TG_F32)
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = v;
}

/* ------------------------------------------------------------------ geometry */

int64_t tg_conv2d_out_size(int64_t in, int k, int stride, int pad, int dil)
{
    if (in < 0 || k < 1 || stride < 1 || pad < 0 || dil < 1)
        return -1;
    int64_t room = in + 2 * (int64_t)pad - (int64_t)dil * (k - 1) - 1;
    return room < 0 ? -1 : room / stride + 1;
}

/* The output positions o in [*lo, *hi) whose input position o * stride + off lies
 * inside [0, in); the others read padding. */
static void valid_range(int64_t in, int64_t out, int64_t stride, int64_t off, int64_t *lo,
                        int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + stride - 1) / stride;
    int64_t h = in - 1 - off < 0 ? 0 : (in - 1 - off) / stride + 1;
    *hi = h < out ? h : out;
    *lo = l < *hi ? l : *hi;
}

typedef tg__conv_dims dims; /* internal.h: the sizes of one plane's problem */

char *tg__conv_geom_str(char *buf, size_t size, const tg_conv2d_geom *g, bool pool)
{
    int n = snprintf(buf, size, "kernel %dx%d, stride %dx%d, padding %dx%d", g->kh, g->kw,
                     g->stride_h, g->stride_w, g->pad_h, g->pad_w);
    if (!pool && n >= 0 && (size_t)n < size)
        snprintf(buf + n, size - (size_t)n, ", dilation %dx%d", g->dil_h, g->dil_w);
    return buf;
}

/* Checks geometry g for fn on an h x w image (`input` names it in messages) and fills
 * d; pooling ignores dilation and wants padding at most half the kernel. */
bool tg__conv_check_geom(const char *fn, const tg_conv2d_geom *g, bool pool, const char *input,
                         int64_t h, int64_t w, dims *d)
{
    if (!g) {
        tg_set_error_in(TG_ERR_ARG, fn, "the geometry is NULL");
        return false;
    }
    d->g = *g;
    if (pool)
        d->g.dil_h = d->g.dil_w = 1;
    g = &d->g;
    char gs[160];
    tg__conv_geom_str(gs, sizeof gs, g, pool);
    if (g->kh < 1 || g->kw < 1 || g->stride_h < 1 || g->stride_w < 1 || g->pad_h < 0 ||
        g->pad_w < 0 || g->dil_h < 1 || g->dil_w < 1) {
        tg_set_error_in(TG_ERR_ARG, fn, "%s: %s must be at least 1 and padding at least 0 (%s)",
                     gs, pool ? "kernel and stride" : "kernel, stride and dilation", input);
        return false;
    }
    if (pool && (g->pad_h > g->kh / 2 || g->pad_w > g->kw / 2)) {
        tg_set_error_in(TG_ERR_ARG, fn, "%s: padding must be at most half the kernel (%s)", gs,
                     input);
        return false;
    }
    if (h < 1 || w < 1) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s is empty (height and width must be at least 1)",
                     input);
        return false;
    }
    d->h = h;
    d->w = w;
    d->oh = tg_conv2d_out_size(h, g->kh, g->stride_h, g->pad_h, g->dil_h);
    d->ow = tg_conv2d_out_size(w, g->kw, g->stride_w, g->pad_w, g->dil_w);
    if (d->oh < 1 || d->ow < 1) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s is larger than the padded %s", gs, input);
        return false;
    }
    return true;
}

/* x must be [N, C, H, W] of f32 or f64; `input` receives "input [N,C,H,W]". */
bool tg__conv_check_image(const char *fn, const char *what, const tg_tensor *x, char *input,
                          size_t size)
{
    char s[TG__SHAPE_STR];
    snprintf(input, size, "%s %s", what, TG__SHAPE(s, x));
    if (x->ndim != 4) {
        tg_set_error_in(TG_ERR_SHAPE, fn, "%s must be 4-D [N, C, H, W]", input);
        return false;
    }
    if (x->dtype != TG_F32 && x->dtype != TG_F64) {
        tg_set_error_in(TG_ERR_DTYPE, fn, "%s is %s (f32 or f64 expected)", input,
                     tg_dtype_name(x->dtype));
        return false;
    }
    return true;
}

/* The columns of one image must stay far from int64 overflow (tg__new checks the rest). */
bool tg__conv_check_size(const char *fn, int64_t channels, const dims *d, const char *what)
{
    if ((double)channels * d->g.kh * d->g.kw <= 1e15 && (double)d->oh * (double)d->ow <= 1e15)
        return true;
    tg_set_error_in(TG_ERR_SHAPE, fn, "the columns of %s are too large", what);
    return false;
}

/* The gradient gout must have exactly `want`'s shape. */
bool tg__conv_check_grad_shape(const char *fn, const tg_tensor *gout, const int64_t *want,
                               const char *against)
{
    if (memcmp(gout->shape, want, 4 * sizeof *want) == 0)
        return true;
    char s1[TG__SHAPE_STR], s2[TG__SHAPE_STR];
    tg_set_error_in(TG_ERR_SHAPE, fn, "gradient %s does not match %s (expected %s)",
                 TG__SHAPE(s1, gout), against, tg_shape_str(s2, sizeof s2, 4, want));
    return false;
}

void *tg__conv_scratch(const char *fn, tg_arena *ar, size_t size)
{
    size = size ? size : 1;
    void *s = ar ? tg_arena_alloc(ar, size, 64) : tg_mem_alloc(size, 64);
    if (!s)
        tg_set_error_in(TG_ERR_NOMEM, fn, "out of memory for %zu bytes of scratch", size);
    return s;
}

void tg__conv_scratch_free(tg_arena *ar, void *s)
{
    if (ar)
        tg_arena_release(ar, s);
    else
        tg_mem_free(s);
}

static char *plane_ptr(const tg_tensor *t, int64_t n, int64_t c)
{
    return tg__ptr(t) + (n * t->strides[0] + c * t->strides[1]) * (int64_t)tg_dtype_size(t->dtype);
}

/* ------------------------------------------------------------------ im2col, col2im */

/* o[k] = 0 for k < lo and hi <= k < n, s[k * step] between */
#define COPY_ROW(name, T)                                                                    \
    static inline void name(T *restrict o, const T *restrict s, int64_t step, int64_t lo,    \
                            int64_t hi, int64_t n)                                           \
    {                                                                                        \
        for (int64_t k = 0; k < lo; k++)                                                     \
            o[k] = 0;                                                                        \
        if (step == 1)                                                                       \
            for (int64_t k = lo; k < hi; k++)                                                \
                o[k] = s[k];                                                                 \
        else                                                                                 \
            for (int64_t k = lo; k < hi; k++)                                                \
                o[k] = s[k * step];                                                          \
        for (int64_t k = hi; k < n; k++)                                                     \
            o[k] = 0;                                                                        \
    }
COPY_ROW(copy_row_f32, float)
COPY_ROW(copy_row_f64, double)

/* Row (c, i, j) of the columns from plane (n, c), whose element strides are (hs, ws), for
 * the output rows [r0, r1): dst[(oh - r0) * OW + ow] = src[oh*sh - ph + i*dh, ow*sw - pw + j*dw],
 * 0 outside the plane. Written per element rather than with memcpy/memset: a row is often
 * a few dozen elements (32 for the VGG's 32x32 planes), where the calls cost more than the
 * copy (measured: a third of the fused forward's time went to im2col with them). */
static void im2col_row(tg_dtype dt, char *dst, const char *src, int64_t hs, int64_t ws,
                       const dims *d, int i, int j, int64_t r0, int64_t r1)
{
    const tg_conv2d_geom *g = &d->g;
    int64_t hoff = (int64_t)i * g->dil_h - g->pad_h, woff = (int64_t)j * g->dil_w - g->pad_w;
    int64_t oh0, oh1, ow0, ow1, step = g->stride_w * ws, ow = d->ow;
    valid_range(d->h, d->oh, g->stride_h, hoff, &oh0, &oh1);
    valid_range(d->w, d->ow, g->stride_w, woff, &ow0, &ow1);
    if (ow0 == ow1) /* this column of the kernel only ever sees padding */
        oh1 = oh0;
    oh0 = oh0 < r0 ? r0 : oh0 > r1 ? r1 : oh0; /* the valid rows within [r0, r1) */
    oh1 = oh1 > r1 ? r1 : oh1 < oh0 ? oh0 : oh1;
    size_t es = tg_dtype_size(dt);
    memset(dst, 0, (size_t)((oh0 - r0) * ow) * es);
    for (int64_t oh = oh0; oh < oh1; oh++) {
        char *o = dst + (size_t)((oh - r0) * ow) * es;
        const char *s = src + ((oh * g->stride_h + hoff) * hs + woff * ws) * (int64_t)es;
        if (dt == TG_F32)
            copy_row_f32((float *)o, (const float *)s, step, ow0, ow1, ow);
        else
            copy_row_f64((double *)o, (const double *)s, step, ow0, ow1, ow);
    }
    memset(dst + (size_t)((oh1 - r0) * ow) * es, 0, (size_t)((r1 - oh1) * ow) * es);
}

void tg__im2col_tile(char *dst, const tg_tensor *x, int64_t n, const tg__conv_dims *d, int64_t r0,
                     int64_t r1)
{
    size_t es = tg_dtype_size(x->dtype);
    int64_t kk = (int64_t)d->g.kh * d->g.kw, size = (r1 - r0) * d->ow;
    for (int64_t c = 0; c < x->shape[1]; c++)
        for (int64_t ij = 0; ij < kk; ij++)
            im2col_row(x->dtype, dst + (size_t)((c * kk + ij) * size) * es, plane_ptr(x, n, c),
                       x->strides[2], x->strides[3], d, (int)(ij / d->g.kw), (int)(ij % d->g.kw), r0,
                       r1);
}

tg_tensor *tg_tensor_im2col(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_im2col";
    TG__CHECK_NULL(fn, x);
    char input[TG__SHAPE_STR + 16];
    dims d;
    if (!tg__conv_check_image(fn, "input", x, input, sizeof input) ||
        !tg__conv_check_geom(fn, g, false, input, x->shape[2], x->shape[3], &d) ||
        !tg__conv_check_size(fn, x->shape[1], &d, input))
        return NULL;
    int64_t n = x->shape[0], c = x->shape[1], kk = (int64_t)d.g.kh * d.g.kw;
    int64_t plane = d.oh * d.ow;
    tg_tensor *cols = tg__new(ar, x->dtype, 3, (int64_t[]){n, c * kk, plane});
    if (!cols)
        return NULL;
    tg_dtype dt = x->dtype;
    size_t es = tg_dtype_size(dt);
    int64_t rows = n * c * kk; /* row r = (n*C + c)*kk + i*kw + j: one task each */
    char *out = tg__ptr(cols);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(rows * plane))
    for (int64_t r = 0; r < rows; r++) {
        int64_t p = r / kk, ij = r % kk;
        im2col_row(dt, out + (size_t)(r * plane) * es, plane_ptr(x, p / c, p % c), x->strides[2],
                   x->strides[3], &d, (int)(ij / d.g.kw), (int)(ij % d.g.kw), 0, d.oh);
    }
    return cols;
}

/* dst[k * step] += src[k * sstep] for k < n, elements of dt */
static void scatter_add(tg_dtype dt, char *dst, int64_t step, const char *src, int64_t sstep,
                        int64_t n)
{
    if (dt == TG_F32) {
        float *o = (float *)dst;
        const float *s = (const float *)src;
        if (step == 1 && sstep == 1)
            for (int64_t k = 0; k < n; k++)
                o[k] += s[k];
        else
            for (int64_t k = 0; k < n; k++)
                o[k * step] += s[k * sstep];
    } else {
        double *o = (double *)dst;
        const double *s = (const double *)src;
        if (step == 1 && sstep == 1)
            for (int64_t k = 0; k < n; k++)
                o[k] += s[k];
        else
            for (int64_t k = 0; k < n; k++)
                o[k * step] += s[k * sstep];
    }
}

/* Adds rows (c, i, j) of image n's columns for the output rows [r0, r1) into plane (n, c)
 * of img (contiguous); col points at row (c, 0, 0), rows rs elements apart, positions
 * ps apart, position 0 being output row r0's first. */
static void col2im_plane(tg_dtype dt, char *img, const char *col, int64_t rs, int64_t ps,
                         const dims *d, int64_t r0, int64_t r1)
{
    const tg_conv2d_geom *g = &d->g;
    int64_t es = (int64_t)tg_dtype_size(dt);
    for (int i = 0; i < g->kh; i++)
        for (int j = 0; j < g->kw; j++) {
            const char *row = col + ((int64_t)i * g->kw + j) * rs * es;
            int64_t hoff = (int64_t)i * g->dil_h - g->pad_h, woff = (int64_t)j * g->dil_w - g->pad_w;
            int64_t oh0, oh1, ow0, ow1;
            valid_range(d->h, d->oh, g->stride_h, hoff, &oh0, &oh1);
            valid_range(d->w, d->ow, g->stride_w, woff, &ow0, &ow1);
            if (ow0 == ow1)
                continue;
            oh0 = oh0 < r0 ? r0 : oh0;
            oh1 = oh1 > r1 ? r1 : oh1;
            for (int64_t oh = oh0; oh < oh1; oh++) {
                int64_t at = (oh * g->stride_h + hoff) * d->w + ow0 * g->stride_w + woff;
                scatter_add(dt, img + at * es, g->stride_w,
                            row + ((oh - r0) * d->ow + ow0) * ps * es, ps, ow1 - ow0);
            }
        }
}

void tg__col2im_tile(tg_dtype dt, char *img, const char *cols, int64_t channels,
                     const tg__conv_dims *d, int64_t r0, int64_t r1)
{
    int64_t es = (int64_t)tg_dtype_size(dt), kk = (int64_t)d->g.kh * d->g.kw;
    int64_t size = (r1 - r0) * d->ow;
    for (int64_t c = 0; c < channels; c++)
        col2im_plane(dt, img + c * d->h * d->w * es, cols + c * kk * size * es, size, 1, d, r0, r1);
}

tg_tensor *tg_tensor_col2im(tg_arena *ar, const tg_tensor *cols, int64_t channels, int64_t height,
                            int64_t width, const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_col2im";
    TG__CHECK_NULL(fn, cols);
    char s1[TG__SHAPE_STR], s2[TG__SHAPE_STR], image[96];
    snprintf(image, sizeof image, "image %lldx%lldx%lld", (long long)channels, (long long)height,
             (long long)width);
    if (cols->ndim != 3)
        return TG__FAIL(TG_ERR_SHAPE, fn, "columns %s must be 3-D [N, C*kh*kw, OH*OW]",
                        TG__SHAPE(s1, cols));
    if (cols->dtype != TG_F32 && cols->dtype != TG_F64)
        return TG__FAIL(TG_ERR_DTYPE, fn, "columns %s are %s (f32 or f64 expected)",
                        TG__SHAPE(s1, cols), tg_dtype_name(cols->dtype));
    if (channels < 0)
        return TG__FAIL(TG_ERR_ARG, fn, "%lld channels", (long long)channels);
    dims d;
    if (!tg__conv_check_geom(fn, g, false, image, height, width, &d) ||
        !tg__conv_check_size(fn, channels, &d, image))
        return NULL;
    int64_t n = cols->shape[0], kk = (int64_t)d.g.kh * d.g.kw;
    int64_t want[3] = {n, channels * kk, d.oh * d.ow};
    if (memcmp(cols->shape, want, sizeof want) != 0) {
        char gs[160];
        return TG__FAIL(TG_ERR_SHAPE, fn, "columns %s do not match %s with %s (expected %s)",
                        TG__SHAPE(s1, cols), image, tg__conv_geom_str(gs, sizeof gs, &d.g, false),
                        tg_shape_str(s2, sizeof s2, 3, want));
    }
    tg_tensor *img = tg__new(ar, cols->dtype, 4, (int64_t[]){n, channels, height, width});
    if (!img)
        return NULL;
    tg_dtype dt = cols->dtype;
    int64_t es = (int64_t)tg_dtype_size(dt), planes = n * channels;
    char *out = tg__ptr(img);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(planes * kk * want[2]))
    for (int64_t p = 0; p < planes; p++) {
        const char *col = tg__ptr(cols) + ((p / channels) * cols->strides[0] +
                                           (p % channels) * kk * cols->strides[1]) * es;
        char *plane = out + p * height * width * es;
        memset(plane, 0, (size_t)(height * width * es));
        col2im_plane(dt, plane, col, cols->strides[1], cols->strides[2], &d, 0, d.oh);
    }
    return img;
}

/* ------------------------------------------------------------------ average pooling */

/* The window of output (oh, ow) clipped to the image: rows [*h0, *h1), columns [*w0, *w1). */
static void window(const dims *d, int64_t oh, int64_t ow, int64_t *h0, int64_t *h1, int64_t *w0,
                   int64_t *w1)
{
    int64_t hs = oh * d->g.stride_h - d->g.pad_h, ws = ow * d->g.stride_w - d->g.pad_w;
    *h0 = hs > 0 ? hs : 0;
    *h1 = hs + d->g.kh < d->h ? hs + d->g.kh : d->h;
    *w0 = ws > 0 ? ws : 0;
    *w1 = ws + d->g.kw < d->w ? ws + d->g.kw : d->w;
}

/* out (contiguous OH x OW) = window sums of src (strides hs, ws) / (kh * kw): the
 * padding's zeros count in the divisor, as PyTorch's count_include_pad. */
SPECIALISED void avg_pool_plane(tg_dtype dt, char *out, const char *src, int64_t hs, int64_t ws,
                                const dims *d)
{
    double divisor = (double)d->g.kh * d->g.kw;
    for (int64_t oh = 0; oh < d->oh; oh++)
        for (int64_t ow = 0; ow < d->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(d, oh, ow, &h0, &h1, &w0, &w1);
            double s = 0;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++)
                    s += ld(dt, src, h * hs + w * ws);
            st(dt, out, oh * d->ow + ow, s / divisor);
        }
}

/* gin (contiguous H x W) = each output's gradient / (kh * kw) added over its window. */
SPECIALISED void avg_pool_backward_plane(tg_dtype dt, char *gin, const char *gout, int64_t hs,
                                         int64_t ws, const dims *d)
{
    double divisor = (double)d->g.kh * d->g.kw;
    memset(gin, 0, (size_t)(d->h * d->w) * tg_dtype_size(dt));
    for (int64_t oh = 0; oh < d->oh; oh++)
        for (int64_t ow = 0; ow < d->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(d, oh, ow, &h0, &h1, &w0, &w1);
            double v = ld(dt, gout, oh * hs + ow * ws) / divisor;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++)
                    st(dt, gin, h * d->w + w, ld(dt, gin, h * d->w + w) + v);
        }
}

/* The common case, 2x2 windows at stride 2 without padding on contiguous planes, in
 * loops of its own: the general ones find each window's bounds and load through the
 * dtype test per element, which made them 6-7x slower than reading the input once
 * ([100,32,32,32], 3.4 ms on one core against 0.5 ms). Every value is computed as the
 * general path computes it (0 + a + b + c + d in double, in that order, / 4; 0 + g / 4
 * for the gradient), so the results are bitwise the same. */
static bool pool2x2_fast(const dims *d, const tg_tensor *t)
{
    const tg_conv2d_geom *g = &d->g;
    return g->kh == 2 && g->kw == 2 && g->stride_h == 2 && g->stride_w == 2 && g->pad_h == 0 &&
           g->pad_w == 0 && (t->shape[3] == 1 || t->strides[3] == 1) &&
           (t->shape[2] == 1 || t->strides[2] == t->shape[3]);
}

#define POOL2X2(T)                                                                           \
    /* out [oh, ow] = mean of src's 2x2 window at (2 oh, 2 ow); src rows of w elements */    \
    static void avg_pool2x2_plane_##T(T *restrict out, const T *restrict src, int64_t w,     \
                                      int64_t oh, int64_t ow)                                \
    {                                                                                        \
        for (int64_t i = 0; i < oh; i++) {                                                   \
            const T *r0 = src + 2 * i * w, *r1 = r0 + w;                                     \
            T *o = out + i * ow;                                                             \
            _Pragma("omp simd") for (int64_t j = 0; j < ow; j++)                             \
                o[j] = (T)(((((0.0 + r0[2 * j]) + r0[2 * j + 1]) + r1[2 * j]) + r1[2 * j + 1]) / 4); \
        }                                                                                    \
    }                                                                                        \
    /* gin [h, w] = gout / 4 spread over each window; rows and columns no window covers     \
     * (an odd h or w) are 0 */                                                              \
    static void avg_pool2x2_backward_plane_##T(T *restrict gin, const T *restrict gout,      \
                                               int64_t h, int64_t w, int64_t oh, int64_t ow) \
    {                                                                                        \
        if (h != 2 * oh || w != 2 * ow)                                                      \
            memset(gin, 0, (size_t)(h * w) * sizeof(T));                                     \
        for (int64_t i = 0; i < oh; i++) {                                                   \
            T *r0 = gin + 2 * i * w, *r1 = r0 + w;                                           \
            const T *gr = gout + i * ow;                                                     \
            _Pragma("omp simd") for (int64_t j = 0; j < ow; j++)                             \
            {                                                                                \
                T v = (T)(0.0 + (double)gr[j] / 4);                                          \
                r0[2 * j] = r0[2 * j + 1] = r1[2 * j] = r1[2 * j + 1] = v;                   \
            }                                                                                \
        }                                                                                    \
    }
POOL2X2(float)
POOL2X2(double)

tg_tensor *tg_tensor_avg_pool2d(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_avg_pool2d";
    TG__CHECK_NULL(fn, x);
    char input[TG__SHAPE_STR + 16];
    dims d;
    if (!tg__conv_check_image(fn, "input", x, input, sizeof input) ||
        !tg__conv_check_geom(fn, g, true, input, x->shape[2], x->shape[3], &d))
        return NULL;
    int64_t n = x->shape[0], c = x->shape[1], planes = n * c;
    tg_tensor *y = tg__new(ar, x->dtype, 4, (int64_t[]){n, c, d.oh, d.ow});
    if (!y)
        return NULL;
    int64_t es = (int64_t)tg_dtype_size(x->dtype), size = d.oh * d.ow;
    bool f32 = x->dtype == TG_F32, fast = pool2x2_fast(&d, x);
#pragma omp parallel for schedule(static) if (tg_parallel_worth(planes * size * d.g.kh * d.g.kw))
    for (int64_t p = 0; p < planes; p++) {
        char *out = tg__ptr(y) + p * size * es;
        const char *src = plane_ptr(x, p / c, p % c);
        if (fast && f32)
            avg_pool2x2_plane_float((float *)out, (const float *)src, d.w, d.oh, d.ow);
        else if (fast)
            avg_pool2x2_plane_double((double *)out, (const double *)src, d.w, d.oh, d.ow);
        else if (f32)
            avg_pool_plane(TG_F32, out, src, x->strides[2], x->strides[3], &d);
        else
            avg_pool_plane(TG_F64, out, src, x->strides[2], x->strides[3], &d);
    }
    return y;
}

tg_tensor *tg_tensor_avg_pool2d_backward(tg_arena *ar, const tg_tensor *gout, int64_t height,
                                         int64_t width, const tg_conv2d_geom *g)
{
    const char *fn = "tg_tensor_avg_pool2d_backward";
    TG__CHECK_NULL(fn, gout);
    char grad[TG__SHAPE_STR + 16], input[64];
    snprintf(input, sizeof input, "input %lldx%lld", (long long)height, (long long)width);
    dims d;
    if (!tg__conv_check_image(fn, "gradient", gout, grad, sizeof grad) ||
        !tg__conv_check_geom(fn, g, true, input, height, width, &d))
        return NULL;
    int64_t n = gout->shape[0], c = gout->shape[1], planes = n * c;
    char gs[160], against[240];
    snprintf(against, sizeof against, "%s with %s", input, tg__conv_geom_str(gs, sizeof gs, &d.g, true));
    if (!tg__conv_check_grad_shape(fn, gout, (int64_t[]){n, c, d.oh, d.ow}, against))
        return NULL;
    tg_tensor *gin = tg__new(ar, gout->dtype, 4, (int64_t[]){n, c, height, width});
    if (!gin)
        return NULL;
    int64_t es = (int64_t)tg_dtype_size(gout->dtype), size = height * width;
    bool f32 = gout->dtype == TG_F32, fast = pool2x2_fast(&d, gout);
#pragma omp parallel for schedule(static) \
    if (tg_parallel_worth(planes * d.oh * d.ow * d.g.kh * d.g.kw))
    for (int64_t p = 0; p < planes; p++) {
        char *out = tg__ptr(gin) + p * size * es;
        const char *src = plane_ptr(gout, p / c, p % c);
        if (fast && f32)
            avg_pool2x2_backward_plane_float((float *)out, (const float *)src, height, width, d.oh, d.ow);
        else if (fast)
            avg_pool2x2_backward_plane_double((double *)out, (const double *)src, height, width, d.oh, d.ow);
        else if (f32)
            avg_pool_backward_plane(TG_F32, out, src, gout->strides[2], gout->strides[3], &d);
        else
            avg_pool_backward_plane(TG_F64, out, src, gout->strides[2], gout->strides[3], &d);
    }
    return gin;
}

/* ------------------------------------------------------------------ max pooling */

/* out = window maxima of src, idx = where each is (h * W + w). The padding never wins:
 * each window holds at least one pixel (padding is at most half the kernel), which
 * starts as the candidate. Ties keep the first in scan order; the first NaN wins. */
SPECIALISED void max_pool_plane(tg_dtype dt, char *out, int32_t *idx, const char *src, int64_t hs,
                                int64_t ws, const dims *d)
{
    for (int64_t oh = 0; oh < d->oh; oh++)
        for (int64_t ow = 0; ow < d->ow; ow++) {
            int64_t h0, h1, w0, w1;
            window(d, oh, ow, &h0, &h1, &w0, &w1);
            double best = -INFINITY;
            int64_t at = h0 * d->w + w0;
            for (int64_t h = h0; h < h1; h++)
                for (int64_t w = w0; w < w1; w++) {
                    double v = ld(dt, src, h * hs + w * ws);
                    if (v > best || (v != v && best == best)) {
                        best = v;
                        at = h * d->w + w;
                    }
                }
            st(dt, out, oh * d->ow + ow, best);
            if (idx)
                idx[oh * d->ow + ow] = (int32_t)at;
        }
}

tg_tensor *tg_tensor_max_pool2d(tg_arena *ar, const tg_tensor *x, const tg_conv2d_geom *g,
                                tg_tensor **indices)
{
    const char *fn = "tg_tensor_max_pool2d";
    if (indices)
        *indices = NULL;
    TG__CHECK_NULL(fn, x);
    char input[TG__SHAPE_STR + 16];
    dims d;
    if (!tg__conv_check_image(fn, "input", x, input, sizeof input) ||
        !tg__conv_check_geom(fn, g, true, input, x->shape[2], x->shape[3], &d))
        return NULL;
    if (indices && d.h * d.w > INT32_MAX)
        return TG__FAIL(TG_ERR_SHAPE, fn, "%s: a plane of %lld elements is too large for i32 "
                                      "indices", input, (long long)(d.h * d.w));
    int64_t n = x->shape[0], c = x->shape[1], planes = n * c;
    int64_t shape[4] = {n, c, d.oh, d.ow};
    tg_tensor *y = tg__new(ar, x->dtype, 4, shape);
    tg_tensor *ix = y && indices ? tg__new(ar, TG_I32, 4, shape) : NULL;
    if (!y || (indices && !ix)) {
        tg_tensor_free(y);
        return NULL;
    }
    int64_t es = (int64_t)tg_dtype_size(x->dtype), size = d.oh * d.ow;
    bool f32 = x->dtype == TG_F32;
#pragma omp parallel for schedule(static) if (tg_parallel_worth(planes * size * d.g.kh * d.g.kw))
    for (int64_t p = 0; p < planes; p++) {
        char *out = tg__ptr(y) + p * size * es;
        int32_t *idx = ix ? (int32_t *)tg__ptr(ix) + p * size : NULL;
        const char *src = plane_ptr(x, p / c, p % c);
        if (f32)
            max_pool_plane(TG_F32, out, idx, src, x->strides[2], x->strides[3], &d);
        else
            max_pool_plane(TG_F64, out, idx, src, x->strides[2], x->strides[3], &d);
    }
    if (indices)
        *indices = ix;
    return y;
}

/* gin (contiguous plane of `size`) = gout scattered to its indices and summed; returns
 * how many indices fell outside the plane (skipped). */
SPECIALISED int64_t max_pool_backward_plane(tg_dtype dt, char *gin, int64_t size, const char *gout,
                                            const char *idx, const int64_t *gs, const int64_t *is,
                                            int64_t oh, int64_t ow)
{
    int64_t bad = 0;
    memset(gin, 0, (size_t)size * tg_dtype_size(dt));
    for (int64_t h = 0; h < oh; h++)
        for (int64_t w = 0; w < ow; w++) {
            int32_t k = ((const int32_t *)idx)[h * is[0] + w * is[1]];
            if (k < 0 || k >= size) {
                bad++;
                continue;
            }
            st(dt, gin, k, ld(dt, gin, k) + ld(dt, gout, h * gs[0] + w * gs[1]));
        }
    return bad;
}

tg_tensor *tg_tensor_max_pool2d_backward(tg_arena *ar, const tg_tensor *gout,
                                         const tg_tensor *indices, int64_t height, int64_t width)
{
    const char *fn = "tg_tensor_max_pool2d_backward";
    TG__CHECK_NULL(fn, gout && indices);
    char grad[TG__SHAPE_STR + 16], s1[TG__SHAPE_STR];
    if (!tg__conv_check_image(fn, "gradient", gout, grad, sizeof grad))
        return NULL;
    if (indices->dtype != TG_I32)
        return TG__FAIL(TG_ERR_DTYPE, fn, "indices are %s (i32 expected)",
                        tg_dtype_name(indices->dtype));
    if (!tg_tensor_same_shape(indices, gout))
        return TG__FAIL(TG_ERR_SHAPE, fn, "indices %s do not match %s", TG__SHAPE(s1, indices),
                        grad);
    if (height < 1 || width < 1 || height > INT32_MAX / width)
        return TG__FAIL(TG_ERR_ARG, fn, "input %lldx%lld is empty or too large for i32 indices",
                        (long long)height, (long long)width);
    int64_t n = gout->shape[0], c = gout->shape[1], planes = n * c, size = height * width;
    tg_tensor *gin = tg__new(ar, gout->dtype, 4, (int64_t[]){n, c, height, width});
    if (!gin)
        return NULL;
    int64_t es = (int64_t)tg_dtype_size(gout->dtype), bad = 0;
    int64_t oh = gout->shape[2], ow = gout->shape[3];
    bool f32 = gout->dtype == TG_F32;
#pragma omp parallel for schedule(static) reduction(+ : bad) \
    if (tg_parallel_worth(planes * (size + oh * ow)))
    for (int64_t p = 0; p < planes; p++) {
        char *out = tg__ptr(gin) + p * size * es;
        const char *gp = plane_ptr(gout, p / c, p % c), *ip = plane_ptr(indices, p / c, p % c);
        if (f32)
            bad += max_pool_backward_plane(TG_F32, out, size, gp, ip, gout->strides + 2,
                                           indices->strides + 2, oh, ow);
        else
            bad += max_pool_backward_plane(TG_F64, out, size, gp, ip, gout->strides + 2,
                                           indices->strides + 2, oh, ow);
    }
    if (bad) {
        tg_tensor_free(gin);
        return TG__FAIL(TG_ERR_ARG, fn, "%lld of the indices %s are outside the %lldx%lld input "
                                    "plane", (long long)bad, TG__SHAPE(s1, indices),
                        (long long)height, (long long)width);
    }
    return gin;
}
