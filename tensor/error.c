/* tensor/error.c — the last error of each thread, as errno and dlerror keep it.
 *
 * A failing call records one message naming the function and the shapes; a call that
 * only received a NULL produced by an earlier failure keeps that first message, so a
 * chain of calls is checked once at its end. The tape builds its sticky errors on
 * this (it copies the message into the tape at the failing record). */
#include "internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local tg_status last_status = TG_OK;
static _Thread_local char last_message[1024];

const char *tg_last_error(void) { return last_message; }
tg_status tg_last_status(void) { return last_status; }

void tg_clear_error(void)
{
    last_status = TG_OK;
    last_message[0] = '\0';
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

tg_status tg_set_error(tg_status s, const char *fmt, ...)
{
    char msg[sizeof last_message]; /* the arguments may include tg_last_error() itself */
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    memcpy(last_message, msg, sizeof msg);
    last_status = s == TG_OK ? TG_ERR_STATE : s;
    if (abort_on_error()) {
        fprintf(stderr, "tapegrad: %s (TG_ABORT_ON_ERROR is set)\n", last_message);
        abort();
    }
    return last_status;
}

void tg__null_input(const char *fn)
{
    if (last_status == TG_OK)
        tg_set_error(TG_ERR_ARG, "%s: an input tensor is NULL", fn);
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
