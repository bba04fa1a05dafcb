/* cli/cli.c: what a number on a command line may be, and the one message a wrong one gets. */
#include "check_util.h"
#include "cli.h"

#include <unistd.h>

/* what expr writes to stderr, into said */
static char said[512];
#define CAPTURE(expr)                                                                              \
    do {                                                                                           \
        fflush(stderr);                                                                            \
        FILE *f_ = tmpfile();                                                                      \
        int saved_ = dup(2);                                                                       \
        dup2(fileno(f_), 2);                                                                       \
        (void)(expr);                                                                              \
        fflush(stderr);                                                                            \
        dup2(saved_, 2);                                                                           \
        close(saved_);                                                                             \
        rewind(f_);                                                                                \
        said[fread(said, 1, sizeof said - 1, f_)] = '\0';                                          \
        fclose(f_);                                                                                \
    } while (0)

START_TEST(test_integers)
{
    int64_t v = 7;
    ck_assert(tg__parse_integer("42", 0, 100, &v) && v == 42);
    ck_assert(tg__parse_integer("-3", -5, 5, &v) && v == -3);
    ck_assert(tg__parse_integer("9223372036854775807", 0, INT64_MAX, &v) && v == INT64_MAX);
    v = 7;
    static const char *const bad[] = {"", " 4", "+4", "4 ", "4x", "0x10", "1e3", "101", "-1",
                                      "99999999999999999999", "-", NULL};
    for (int i = 0; bad[i]; i++)
        ck_assert_msg(!tg__parse_integer(bad[i], 0, 100, &v), "'%s' was taken", bad[i]);
    ck_assert(!tg__parse_integer(NULL, 0, 100, &v));
    ck_assert_int_eq(v, 7); /* untouched */

    int n = 0;
    long l = 0;
    CAPTURE(ck_assert(tg__cli_int("prog", "--jobs", "300", 1, 256, &n) == false));
    ck_assert_str_eq(said, "prog: --jobs wants an integer in 1..256, got '300'\n");
    CAPTURE(ck_assert(!tg__cli_long("prog sub", "--epochs", NULL, 1, 9, &l)));
    ck_assert_str_eq(said, "prog sub: --epochs wants an integer in 1..9, got ''\n");
    ck_assert(tg__cli_int("prog", "--jobs", "256", 1, 256, &n) && n == 256);
    ck_assert(tg__cli_long("prog", "--jobs", "1", 1, 256, &l) && l == 1);
}
END_TEST

START_TEST(test_doubles)
{
    double d = 0;
    ck_assert(tg__cli_double("p", "--lr", "1e-3", 0, true, INFINITY, false, &d) && d == 1e-3);
    ck_assert(tg__cli_double("p", "--dropout", "0", 0, false, 1, true, &d) && d == 0);
    CAPTURE(ck_assert(!tg__cli_double("p", "--lr", "0", 0, true, INFINITY, false, &d)));
    ck_assert_str_eq(said, "p: --lr wants a number > 0, got '0'\n");
    CAPTURE(ck_assert(!tg__cli_double("p", "--dropout", "1", 0, false, 1, true, &d)));
    ck_assert_str_eq(said, "p: --dropout wants a number in [0, 1), got '1'\n");
    static const char *const bad[] = {"", " 1", "1x", "nan", "inf", "1e999", NULL};
    for (int i = 0; bad[i]; i++) {
        CAPTURE(ck_assert_msg(!tg__cli_double("p", "--x", bad[i], 0, false, INFINITY, false, &d),
                              "'%s' was taken", bad[i]));
        ck_assert_ptr_nonnull(strstr(said, "p: --x wants a number >= 0, got '"));
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cli");
    TCase *tc = tt_tcase("cli");
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_doubles);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
