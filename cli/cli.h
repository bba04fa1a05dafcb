/* cli/cli.h — the numbers on the command lines of tapegrad's programs (study, the
 * benches, the examples), parsed one way and refused in one message style:
 *
 *   study train: --epochs wants an integer in 1..1000000, got '1e3'
 *   study train: --lr wants a number > 0, got 'fast'
 *   study train: --dropout wants a number in [0, 1), got '1'
 *
 * A number is the whole argument: no sign where the range has none to give, no
 * leading space, no trailing text, no overflow, and for doubles a finite value. The
 * message goes to stderr (a usage error: the program then exits with status 2).
 * Internal to the programs; not part of the installed library. */
#ifndef TAPEGRAD_CLI_H
#define TAPEGRAD_CLI_H

#include <stdbool.h>
#include <stdint.h>

/* s as a decimal integer in lo..hi into *out; false (and *out untouched) otherwise.
 * Silent: for values read from files, whose messages say more than a flag's. */
bool tg__parse_integer(const char *s, int64_t lo, int64_t hi, int64_t *out);

/* The value of `flag` (as the user wrote it: "--epochs") for program `prog` ("study
 * train"); false after one line on stderr if it is not an integer in lo..hi. */
bool tg__cli_int64(const char *prog, const char *flag, const char *s, int64_t lo, int64_t hi, int64_t *out);
bool tg__cli_long(const char *prog, const char *flag, const char *s, long lo, long hi, long *out);
bool tg__cli_int(const char *prog, const char *flag, const char *s, int lo, int hi, int *out);

/* The same for a finite number between lo and hi, each bound open or closed (hi may be
 * INFINITY: then the message says "> lo" or ">= lo"). */
bool tg__cli_double(const char *prog, const char *flag, const char *s, double lo, bool lo_open, double hi,
                    bool hi_open, double *out);

#endif
