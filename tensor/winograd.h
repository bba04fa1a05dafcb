/* tensor/winograd.h — 3x3 stride-1 convolutions by Winograd's F(2x2, 3x3), private to
 * the library: a convolution kernel calls tg__winograd_applies and, when it says yes,
 * the routines below instead of its im2col + GEMM path.
 *
 *   if (tg__winograd_applies(x, w, g))
 *       st = tg__winograd_conv2d(ar, y, x, w, b, g);   // y preallocated, contiguous
 *
 * Results are within float32 rounding of the direct convolution (measured in
 * tests/tensor/test_winograd.c) and bitwise the same for any thread count. */
#ifndef TAPEGRAD_TENSOR_WINOGRAD_H
#define TAPEGRAD_TENSOR_WINOGRAD_H

#include "tapegrad/tensor.h"

/* Whether x [N, C, H, W] and w [OC, C, kh, kw] under g can take the routines below:
 * a 3x3 kernel, stride 1, dilation 1, padding 0..2 on each axis, x and w both f32 or
 * both f64, a non-empty output. Sets no error. */
bool tg__winograd_applies(const tg_tensor *x, const tg_tensor *w, const tg_conv2d_geom *g);

/* y [N, OC, OH, OW] = conv2d(x [N, C, H, W], w [OC, C, 3, 3]) + b [OC] (b may be NULL).
 * y is allocated by the caller and contiguous; x, w and b may have any strides. Scratch
 * comes from ar (given back before returning) or, with ar NULL, from the heap. */
tg_status tg__winograd_conv2d(tg_arena *ar, tg_tensor *y, const tg_tensor *x, const tg_tensor *w,
                              const tg_tensor *b, const tg_conv2d_geom *g);

/* dx [N, C, H, W] = the gradient of that convolution with respect to x, from
 * gy [N, OC, OH, OW]: for stride 1 a convolution of gy with w turned 180 degrees and its
 * two channel axes swapped, padding 2 - pad. dx is allocated by the caller, contiguous,
 * and overwritten. */
tg_status tg__winograd_conv2d_backward_input(tg_arena *ar, tg_tensor *dx, const tg_tensor *gy,
                                             const tg_tensor *w, const tg_conv2d_geom *g);

/* dw [OC, C, 3, 3] = the gradient of that convolution with respect to w, from
 * gy [N, OC, OH, OW] and x [N, C, H, W]: per 2x2 output tile, the output gradient's
 * transform times the forward's input transform, summed over the tiles as 16 GEMMs.
 * Applies where tg__winograd_applies(x, dw, g) does. dw is allocated by the caller,
 * contiguous, and overwritten; gy and x may have any strides. */
tg_status tg__winograd_conv2d_backward_weight(tg_arena *ar, tg_tensor *dw, const tg_tensor *gy,
                                              const tg_tensor *x, const tg_conv2d_geom *g);

#endif
