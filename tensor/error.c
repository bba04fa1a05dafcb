/* tensor/error.c — the last error of each thread, as errno and dlerror keep it.
 *
 * An error is a value (tg_error): its status, the public function the user called, the
 * detail that the code which found the problem wrote, and the tape's scope. Each part is
 * written by the one place that knows it (a kernel its detail, the tape the op's name
 * and the scope), and the message is composed from the parts only when it is read
 * (tg_last_error, tg_error_str), so no layer ever edits another's text. A call that only
 * received a NULL produced by an earlier failure keeps that first error, so a chain of
 * calls is checked once at its end. The tape keeps its sticky error as a tg_error too. */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local tg_error last;
/* tg_last_error's text: composed from `last` when read; valid until the next error */
static _Thread_local char last_message[sizeof last.function + sizeof last.detail + sizeof last.scope + 16];

const tg_error *tg_last_error_info(void) { return &last; }
tg_status tg_last_status(void) { return last.status; }

const char *tg_last_error(void)
{
    return tg_error_str(&last, last_message, sizeof last_message);
}

void tg_clear_error(void)
{
    last.status = TG_OK;
    last.function[0] = last.detail[0] = last.scope[0] = '\0';
}

const char *tg_error_str(const tg_error *e, char *buf, size_t size)
{
    if (size == 0)
        return buf;
    if (!e || e->status == TG_OK) {
        buf[0] = '\0';
        return buf;
    }
    snprintf(buf, size, "%s%s%s%s%s%s", e->function, *e->function ? ": " : "", e->detail,
             *e->scope ? " (called in " : "", e->scope, *e->scope ? ")" : "");
    return buf;
}

const char *tg_status_name(tg_status s)
{
    static const char *const names[] = {"ok",           "shape mismatch", "dtype mismatch",
                                        "bad argument", "out of memory",  "i/o error",
                                        "bad format",   "invalid state",  "check failed"};
    return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown status";
}

static bool abort_on_error(void)
{
    const char *v = getenv("TG_ABORT_ON_ERROR");
    return v && *v && strcmp(v, "0") != 0;
}

/* Every error is recorded here: the one place TG_ABORT_ON_ERROR is honoured. */
tg_status tg_set_error_value(const tg_error *e)
{
    if (!e)
        return tg_set_error_in(TG_ERR_ARG, "tg_set_error_value", "the error is NULL");
    if (e != &last) /* tg_last_error_info() itself is fine */
        last = *e;
    if (last.status == TG_OK)
        last.status = TG_ERR_STATE;
    /* the arrays are the caller's: keep them terminated whatever it wrote */
    last.function[sizeof last.function - 1] = '\0';
    last.detail[sizeof last.detail - 1] = '\0';
    last.scope[sizeof last.scope - 1] = '\0';
    if (abort_on_error()) {
        fprintf(stderr, "tapegrad: %s (TG_ABORT_ON_ERROR is set)\n", tg_last_error());
        abort();
    }
    return last.status;
}

static tg_status vset(tg_status s, const char *function, const char *fmt, va_list ap)
{
    /* formatted into a copy first: the arguments may include tg_last_error() or the
     * fields of the error being replaced */
    tg_error e = {.status = s};
    snprintf(e.function, sizeof e.function, "%s", function ? function : "");
    vsnprintf(e.detail, sizeof e.detail, fmt, ap);
    return tg_set_error_value(&e);
}

tg_status tg_set_error_in(tg_status s, const char *function, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tg_status r = vset(s, function, fmt, ap);
    va_end(ap);
    return r;
}

tg_status tg_set_error(tg_status s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tg_status r = vset(s, NULL, fmt, ap);
    va_end(ap);
    return r;
}

void tg__null_input(const char *fn)
{
    if (last.status == TG_OK)
        tg_set_error_in(TG_ERR_ARG, fn, "an input tensor is NULL");
}

char *tg_shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, i ? ",%lld" : "%lld", (long long)shape[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}
