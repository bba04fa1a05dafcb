/* autograd/internal.h — what the autograd sources share: the public headers, and the
 * short forms built-in ops use to call tg_apply. Nothing here reaches into tensor/'s
 * internals: autograd is built on the public tensor API only. */
#ifndef TAPEGRAD_AUTOGRAD_INTERNAL_H
#define TAPEGRAD_AUTOGRAD_INTERNAL_H

#include "tapegrad/autograd.h"
#include "tapegrad/tensor.h"

/* Calls with one or two tensor inputs and a params pointer, whose pointee is copied
 * for the record: TG__APPLY1(tp, op_exp, x, NULL) or
 * TG__APPLY1(tp, op_leaky_relu, x, &(slope_params){slope}). The size comes from the
 * pointer's type (0 for a void pointer, so NULL copies nothing); the macros are
 * variadic only so that a compound literal's commas do not split the argument. */
#define TG__PARAMS_IS_VOID(p) _Generic((p), const void *: 1, void *: 1, default: 0)
#define TG__PARAMS_AS_OBJ(p) _Generic((p), const void *: (const char *)0, void *: (char *)0, default: (p))
#define TG__PARAMS_SIZE(...) \
    ((size_t)!TG__PARAMS_IS_VOID((__VA_ARGS__)) * sizeof *TG__PARAMS_AS_OBJ((__VA_ARGS__)))
#define TG__APPLY1(tp, op, x, ...) \
    tg_apply((tp), &(op), 1, (tg_tensor *[]){(x)}, (__VA_ARGS__), TG__PARAMS_SIZE(__VA_ARGS__))
#define TG__APPLY2(tp, op, a, b, ...) \
    tg_apply((tp), &(op), 2, (tg_tensor *[]){(a), (b)}, (__VA_ARGS__), TG__PARAMS_SIZE(__VA_ARGS__))

/* The arena of the tape, for forward and backward code. */
#define TG__AR(tp) tg_tape_arena(tp)

#endif
