/* tests/tensor/test_threads.c — the thread count: set, dynamic under load (the rule,
 * and a live busy process beside this one), and off when asked. */
#define _GNU_SOURCE /* sched_getaffinity, CPU_COUNT */
#include "check_util.h"

#include "internal.h" /* tg__threads_for_load */

#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

START_TEST(test_threads_for_load_rule)
{
    ck_assert_int_eq(tg__threads_for_load(2, 2, 0.0), 2);
    ck_assert_int_eq(tg__threads_for_load(2, 2, 0.4), 2); /* 1.6 cores left: both */
    ck_assert_int_eq(tg__threads_for_load(2, 2, 0.6), 1);
    ck_assert_int_eq(tg__threads_for_load(2, 2, 1.0), 1); /* one busy loop beside us */
    ck_assert_int_eq(tg__threads_for_load(2, 2, 3.5), 1); /* never fewer than one */
    ck_assert_int_eq(tg__threads_for_load(8, 16, 4.2), 8); /* never more than set */
    ck_assert_int_eq(tg__threads_for_load(16, 16, 4.2), 12);
    ck_assert_int_eq(tg__threads_for_load(1, 4, 0.0), 1);
}
END_TEST

START_TEST(test_set_and_get)
{
    tg_set_dynamic_threads(false);
    tg_set_num_threads(3);
    ck_assert_int_eq(tg_get_num_threads(), 3);
    ck_assert_int_eq(tg_get_active_threads(), 3);
    ck_assert(!tg_get_dynamic_threads());
    tg_set_num_threads(0); /* below 1 means 1 */
    ck_assert_int_eq(tg_get_num_threads(), 1);
    tg_set_dynamic_threads(true);
    ck_assert(tg_get_dynamic_threads());
}
END_TEST

static void sleep_s(double s)
{
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

/* One process spinning beside this one takes at least a core: with as many threads
 * set as there are cores, the kernels must use fewer once the load has been seen (two
 * samples a second apart), and all of them again when dynamic threads are turned off. */
START_TEST(test_busy_neighbour)
{
#ifdef __linux__
    cpu_set_t allowed;
    ck_assert_int_eq(sched_getaffinity(0, sizeof allowed, &allowed), 0);
    int cores = CPU_COUNT(&allowed);
    if (cores < 2)
        return; /* nothing to give up on one core; the rule is tested above */
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        alarm(30); /* never outlives a stuck test */
        for (volatile unsigned long spin = 0;; spin++)
            ;
    }
    tg_set_dynamic_threads(true);
    tg_set_num_threads(cores);
    /* samples are a second apart; two intervals, so that one lies wholly under load */
    for (int i = 0; i < 3; i++) {
        if (i > 0)
            sleep_s(1.1);
        (void)tg_get_active_threads();
    }
    int under_load = tg_get_active_threads();
    kill(child, SIGKILL);
    waitpid(child, NULL, 0);
    ck_assert_msg(under_load < cores, "%d threads of %d with a busy process beside us",
                  under_load, cores);
    ck_assert_int_eq(tg_get_num_threads(), cores); /* the count set is kept */
    tg_set_dynamic_threads(false);
    ck_assert_int_eq(tg_get_active_threads(), cores);
#endif
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/threads");
    TCase *tc = tt_tcase("threads");
    tcase_add_test(tc, test_threads_for_load_rule);
    tcase_add_test(tc, test_set_and_get);
    tcase_add_test(tc, test_busy_neighbour);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
