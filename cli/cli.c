/* cli/cli.c — command-line numbers, one parser and one message for every program
 * (cli/cli.h). */
#include "cli.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

bool tg__parse_integer(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    /* strtoll alone would take " 5", "+5" and "0x5"'s "0" */
    if (!s || !(isdigit((unsigned char)s[0]) || (s[0] == '-' && isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

bool tg__cli_int64(const char *prog, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    if (tg__parse_integer(s, lo, hi, out))
        return true;
    fprintf(stderr, "%s: %s wants an integer in %" PRId64 "..%" PRId64 ", got '%s'\n", prog, flag, lo, hi,
            s ? s : "");
    return false;
}

bool tg__cli_long(const char *prog, const char *flag, const char *s, long lo, long hi, long *out)
{
    int64_t v;
    if (!tg__cli_int64(prog, flag, s, lo, hi, &v))
        return false;
    *out = (long)v;
    return true;
}

bool tg__cli_int(const char *prog, const char *flag, const char *s, int lo, int hi, int *out)
{
    int64_t v;
    if (!tg__cli_int64(prog, flag, s, lo, hi, &v))
        return false;
    *out = (int)v;
    return true;
}

bool tg__cli_double(const char *prog, const char *flag, const char *s, double lo, bool lo_open, double hi,
                    bool hi_open, double *out)
{
    char *end = NULL;
    double v = s && *s && !isspace((unsigned char)*s) ? strtod(s, &end) : NAN;
    bool ok = end && !*end && isfinite(v) && (lo_open ? v > lo : v >= lo) && (hi_open ? v < hi : v <= hi);
    if (ok) {
        *out = v;
        return true;
    }
    char range[80];
    if (isinf(hi))
        snprintf(range, sizeof range, "%s %g", lo_open ? ">" : ">=", lo);
    else
        snprintf(range, sizeof range, "in %c%g, %g%c", lo_open ? '(' : '[', lo, hi, hi_open ? ')' : ']');
    fprintf(stderr, "%s: %s wants a number %s, got '%s'\n", prog, flag, range, s ? s : "");
    return false;
}
