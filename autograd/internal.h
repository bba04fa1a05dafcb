/* autograd/internal.h — what the autograd sources share: the public headers (the
 * advanced tensor one too), and the short forms built-in ops use to call tg_apply.
 * Nothing here reaches into tensor/'s internals: autograd is built on the public
 * tensor API only. */
#ifndef TAPEGRAD_AUTOGRAD_INTERNAL_H
#define TAPEGRAD_AUTOGRAD_INTERNAL_H

#include "tapegrad/autograd.h"
#include "tapegrad/tensor.h"
#include "tapegrad/tensor_advanced.h" /* arena marks for backward's scratch; the tensor hooks */

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

/* A gradient sink. While one is set, tg_accumulate_grad checks each gradient as usual
 * and then hands it to the sink (input i of record r) instead of adding it where the
 * input came from. tg_tape_write_html (html.c) sets one to run each record's backward
 * a second time and show the shares a value receives one by one; NULL puts accumulation
 * back. */
typedef tg_status (*tg__grad_sink)(void *ctx, const tg_record *r, int i, const tg_tensor *g);
void tg__tape_set_grad_sink(tg_tape *tp, tg__grad_sink sink, void *ctx);

/* The tensors outside the tape that the records `only` selects (NULL: all) read
 * (leaves and constants), each once, in the order of first use (inspect.c): a
 * tg_mem_alloc'd array, NULL when there are none or the allocation failed (*ok tells
 * which). tg__source_index finds one. */
const tg_tensor **tg__tape_sources(const tg_tape *tp, const tg_print_options *only, int *count, bool *ok);
int tg__source_index(const tg_tensor **src, int n, const tg_tensor *t);

/* The web page tg_tape_write_html fills in: autograd/html/page.html with page.css and
 * page.js inlined, and @@TITLE@@, @@GRAPH@@ and @@DATA@@ where the tape's parts go
 * (html_page.c, which autograd/html/embed.py writes at build time). */
extern const char tg__html_page[];

/* The arena of the tape, for forward and backward code. */
#define TG__AR(tp) tg_tape_arena(tp)

/* Whether op's backward reads input i (i == nin: the output), by its tg_op.reads (0:
 * everything). tg_backward's in-place check and tg_relu_'s refusal both ask it. */
static inline bool tg__op_reads(const tg_op *op, int i, int nin)
{
    unsigned want = i == nin ? TG_READS_OUT : TG_READS_IN(i);
    return op->reads == 0 || (op->reads & want);
}

#endif
