/* tensor/print.c — tensors as text, the way PyTorch and NumPy show them:
 *
 *   tensor([[0.0000, 1.0000, 2.0000],
 *           [3.0000, 4.0000, 5.0000]], shape=[2,3], dtype=f32)
 *
 * One bracket per axis; the rows of the last axis each on a line, aligned under the
 * first element, and blank lines between blocks of higher axes. Every element is
 * padded to one width. Floats get 4 decimals, or %.4e for the whole tensor when a
 * finite |x| >= 1e8 or the smallest nonzero |x| < 1e-4; u8 and i32 print as integers.
 * Above 1000 elements, each axis longer than 6 shows its first and last 3 entries
 * around "...", and the width and notation are decided on what is shown (NumPy's
 * summarisation). Long rows wrap at 80 columns. */
#include "internal.h"

#include <math.h>
#include <string.h>

#define SUMMARY_THRESHOLD 1000 /* numel above which long axes are cut */
#define EDGE 3                 /* entries shown at each end of a cut axis */
#define LINE_WIDTH 80
#define PREFIX "tensor("
#define PREFIX_LEN 7

/* ------------------------------------------------------------------ output */

/* A FILE or a buffer with snprintf's contract: len counts everything written, what
 * fits in size - 1 bytes is kept. */
typedef struct sink {
    FILE *f;
    char *buf;
    size_t size, len;
} sink;

static void put(sink *o, const char *s, size_t n)
{
    if (o->f) {
        fwrite(s, 1, n, o->f);
    } else if (o->len + 1 < o->size) {
        size_t room = o->size - 1 - o->len;
        memcpy(o->buf + o->len, s, n < room ? n : room);
    }
    o->len += n;
}

static void puts_(sink *o, const char *s) { put(o, s, strlen(s)); }

static void put_repeat(sink *o, char c, int n)
{
    char run[32];
    memset(run, c, sizeof run);
    for (; n > 0; n -= (int)sizeof run)
        put(o, run, n < (int)sizeof run ? (size_t)n : sizeof run);
}

/* ------------------------------------------------------------------ layout */

typedef struct layout {
    const tg_tensor *t;
    const char *base;
    size_t es;
    bool cut;  /* summarise axes longer than 2 * EDGE */
    bool sci;  /* floats as %.4e */
    int width; /* of every element */
    /* pass 1's findings about the shown floats */
    double max_abs, min_nonzero;
} layout;

/* Entries shown along an axis of n, and which index the k-th is (-1: the "..."). */
static int64_t shown(const layout *L, int64_t n)
{
    return L->cut && n > 2 * EDGE ? 2 * EDGE + 1 : n;
}

static int64_t shown_index(const layout *L, int64_t n, int64_t k)
{
    if (!(L->cut && n > 2 * EDGE) || k < EDGE)
        return k;
    return k == EDGE ? -1 : n - (2 * EDGE + 1) + k;
}

static bool is_float(tg_dtype dt) { return dt == TG_F32 || dt == TG_F64; }

/* The text of one element into b, its length returned (32 bytes: "%.4f" of the
 * |x| < 1e8 it is used for and "%.4e" of any double fit). */
static int format_element(const layout *L, double v, char *b)
{
    int n;
    if (!is_float(L->t->dtype))
        n = snprintf(b, 32, "%lld", (long long)v);
    else if (isnan(v))
        n = snprintf(b, 32, "nan");
    else if (isinf(v))
        n = snprintf(b, 32, v > 0 ? "inf" : "-inf");
    else
        n = snprintf(b, 32, L->sci ? "%.4e" : "%.4f", v);
    return n < 32 ? n : 31;
}

typedef void (*element_fn)(layout *L, double v);

/* Calls fn on every shown element, in order. */
static void walk(layout *L, int depth, int64_t off, element_fn fn)
{
    const tg_tensor *t = L->t;
    if (depth == t->ndim) {
        fn(L, tg__load(t->dtype, L->base + (size_t)off * L->es));
        return;
    }
    int64_t n = t->shape[depth];
    for (int64_t k = 0; k < shown(L, n); k++) {
        int64_t i = shown_index(L, n, k);
        if (i >= 0)
            walk(L, depth + 1, off + i * t->strides[depth], fn);
    }
}

static void scan_range(layout *L, double v)
{
    double a = fabs(v);
    if (!isfinite(a))
        return;
    if (a > L->max_abs)
        L->max_abs = a;
    if (a > 0 && a < L->min_nonzero)
        L->min_nonzero = a;
}

static void scan_width(layout *L, double v)
{
    char b[32];
    int n = format_element(L, v, b);
    if (n > L->width)
        L->width = n;
}

static void emit(sink *o, const layout *L, int depth, int64_t off)
{
    const tg_tensor *t = L->t;
    char b[32];
    if (depth == t->ndim) {
        int n = format_element(L, tg__load(t->dtype, L->base + (size_t)off * L->es), b);
        put_repeat(o, ' ', L->width - n);
        put(o, b, (size_t)n);
        return;
    }
    const int64_t n = t->shape[depth];
    const bool last = depth == t->ndim - 1;
    const int indent = PREFIX_LEN + depth + 1; /* the column of this axis' entries */
    int col = indent;                          /* on the last axis, where the line is */
    put(o, "[", 1);
    for (int64_t k = 0; k < shown(L, n); k++) {
        int64_t i = shown_index(L, n, k);
        int len = i < 0 ? 3 : L->width;
        /* a row goes on while the entry and its "," or "]" fit in the line */
        if (k > 0 && last && col + 2 + len + 1 <= LINE_WIDTH) {
            put(o, ", ", 2);
            col += 2;
        } else if (k > 0) {
            put(o, ",", 1);
            put_repeat(o, '\n', last ? 1 : t->ndim - depth - 1);
            put_repeat(o, ' ', indent);
            col = indent;
        }
        if (i < 0)
            put(o, "...", 3);
        else
            emit(o, L, depth + 1, off + i * t->strides[depth]);
        col += len;
    }
    put(o, "]", 1);
}

static void format_tensor(sink *o, const tg_tensor *t)
{
    if (!t) {
        puts_(o, PREFIX "NULL)");
        return;
    }
    int64_t numel = tg_tensor_numel(t);
    puts_(o, PREFIX);
    if (numel == 0) {
        puts_(o, "[]");
    } else {
        layout L = {.t = t, .base = tg__ptr(t), .es = tg_dtype_size(t->dtype),
                    .cut = numel > SUMMARY_THRESHOLD, .min_nonzero = INFINITY};
        if (is_float(t->dtype)) {
            walk(&L, 0, 0, scan_range);
            L.sci = L.max_abs >= 1e8 || L.min_nonzero < 1e-4;
        }
        walk(&L, 0, 0, scan_width);
        emit(o, &L, 0, 0);
    }
    char shape[TG__SHAPE_STR];
    puts_(o, ", shape=");
    puts_(o, TG__SHAPE(shape, t));
    puts_(o, ", dtype=");
    puts_(o, tg_dtype_name(t->dtype));
    puts_(o, ")");
}

/* ------------------------------------------------------------------ public */

size_t tg_tensor_format(char *buf, size_t size, const tg_tensor *t)
{
    sink o = {.buf = buf, .size = buf ? size : 0};
    format_tensor(&o, t);
    if (o.size > 0)
        buf[o.len < o.size ? o.len : o.size - 1] = '\0';
    return o.len;
}

void tg_tensor_print(FILE *f, const tg_tensor *t)
{
    if (!f) {
        tg_set_error_in(TG_ERR_ARG, "tg_tensor_print", "the FILE is NULL");
        return;
    }
    sink o = {.f = f};
    format_tensor(&o, t);
    put(&o, "\n", 1);
}
