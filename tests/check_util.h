/* tests/check_util.h — what every Check suite here shares: building tensors from
 * f64 literals, comparing tensors against f64 references, and a main() body. */
#ifndef TAPEGRAD_TESTS_CHECK_UTIL_H
#define TAPEGRAD_TESTS_CHECK_UTIL_H

#include <check.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tapegrad.h"

/* A heap tensor of dtype dt and the given shape, filled from f64 values (row-major). */
static inline tg_tensor *tt_tensor(tg_dtype dt, int ndim, const int64_t *shape, const double *v)
{
    tg_tensor *t = tg_tensor_empty(NULL, dt, ndim, shape);
    ck_assert_msg(t != NULL, "tg_tensor_empty: %s", tg_last_error());
    int64_t n = tg_tensor_numel(t);
    tg_tensor *src = tg_tensor_from_data(NULL, TG_F64, ndim, shape, v);
    ck_assert_msg(src != NULL || n == 0, "%s", tg_last_error());
    if (src)
        ck_assert_int_eq(tg_tensor_copy_(t, src), TG_OK);
    tg_tensor_free(src);
    return t;
}

/* Uniform in [-1, 1) from xorshift64*: test data that is the same on every run and
 * independent of the library's own generator (which is under test elsewhere). */
static uint64_t tt_rnd_state = 0x9E3779B97F4A7C15u;
static inline double tt_rnd(void)
{
    tt_rnd_state ^= tt_rnd_state >> 12;
    tt_rnd_state ^= tt_rnd_state << 25;
    tt_rnd_state ^= tt_rnd_state >> 27;
    return (double)((tt_rnd_state * 0x2545F4914F6CDD1Du) >> 11) / 4503599627370496.0 - 1.0;
}

/* A heap tensor of uniform [-1, 1) values from tt_rnd. */
static inline tg_tensor *tt_rand_tensor(tg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    for (int64_t i = 0; i < n; i++)
        v[i] = tt_rnd();
    tg_tensor *t = tt_tensor(dt, ndim, shape, v);
    free(v);
    return t;
}

/* tt_rand_tensor made a leaf (tg_requires_grad) with that name. */
static inline tg_tensor *tt_leaf(tg_dtype dt, int ndim, const int64_t *shape, const char *name)
{
    tg_tensor *t = tt_rand_tensor(dt, ndim, shape);
    ck_assert_int_eq(tg_requires_grad(t, name), TG_OK);
    return t;
}

/* Replaces *t by view (freeing the old header; the storage lives on in the view). */
static inline void tt_become(tg_tensor **t, tg_tensor *view)
{
    ck_assert_msg(view != NULL, "%s", tg_last_error());
    tg_tensor_free(*t);
    *t = view;
}

/* The elements of t (any layout, any dtype) as a malloc'd row-major f64 array. */
static inline double *tt_values(const tg_tensor *t)
{
    int64_t n = tg_tensor_numel(t);
    double *out = malloc((size_t)(n ? n : 1) * sizeof *out);
    tg_tensor *dst = tg_tensor_borrow(NULL, TG_F64, t->ndim, t->shape, out);
    ck_assert_msg(dst != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_tensor_copy_(dst, t), TG_OK);
    tg_tensor_free(dst);
    return out;
}

/* Largest |t - ref| relative to max(1, |ref|), over all elements. */
static inline double tt_max_rel_err(const tg_tensor *t, const double *ref)
{
    double *v = tt_values(t), worst = 0;
    int64_t n = tg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        double scale = fabs(ref[i]) > 1 ? fabs(ref[i]) : 1;
        double e = fabs(v[i] - ref[i]) / scale;
        if (e != e || (isnan(v[i]) != isnan(ref[i])))
            e = INFINITY;
        if (isnan(v[i]) && isnan(ref[i]))
            e = 0;
        if (isinf(ref[i]) && v[i] == ref[i])
            e = 0;
        if (e > worst)
            worst = e;
    }
    free(v);
    return worst;
}

#define tt_assert_close(t, ref, tol)                                                          \
    do {                                                                                      \
        double tt_err_ = tt_max_rel_err((t), (ref));                                          \
        ck_assert_msg(tt_err_ <= (tol), "max relative error %g > %g", tt_err_, (double)(tol)); \
    } while (0)

#define tt_assert_shape(t, ...)                                                                \
    do {                                                                                       \
        const int64_t tt_s_[] = {__VA_ARGS__};                                                 \
        int tt_n_ = (int)(sizeof tt_s_ / sizeof tt_s_[0]);                                     \
        ck_assert_int_eq((t)->ndim, tt_n_);                                                    \
        for (int tt_i_ = 0; tt_i_ < tt_n_; tt_i_++)                                            \
            ck_assert_int_eq((t)->shape[tt_i_], tt_s_[tt_i_]);                                 \
    } while (0)

/* Errors are checked by their parts, not their wording: the status, the function named
 * (exactly), a key piece of the detail (a substring: a shape, a name), and the scope
 * (exactly; NULL: not checked). The message is composed from these, so the detail's
 * other words may change without a test noticing. */
static inline void tt_check_error(const tg_error *e, tg_status status, const char *function,
                                  const char *detail_part, const char *scope)
{
    char msg[sizeof(tg_error) + 16];
    ck_assert_msg(e->status == status, "status %d (%s), expected %d (%s): %s", (int)e->status,
                  tg_status_name(e->status), (int)status, tg_status_name(status),
                  tg_error_str(e, msg, sizeof msg));
    ck_assert_str_eq(e->function, function);
    ck_assert_msg(strstr(e->detail, detail_part) != NULL, "the detail '%s' does not say '%s'",
                  e->detail, detail_part);
    if (scope)
        ck_assert_str_eq(e->scope, scope);
}

/* A call that must fail (return NULL) with this status, function and piece of detail. */
static inline void tt_expect_error(const void *result, tg_status status, const char *function,
                                   const char *detail_part)
{
    ck_assert_ptr_null(result);
    tt_check_error(tg_last_error_info(), status, function, detail_part, "");
}

/* A call that must fail with this status and exactly this message: for messages that
 * name no function (tg_set_error's, user code's) or are built by the test. */
static inline void tt_expect_message(const void *result, tg_status status, const char *message)
{
    ck_assert_ptr_null(result);
    ck_assert_int_eq(tg_last_status(), status);
    ck_assert_str_eq(tg_last_error(), message);
}

/* The thread's last error, by its parts. */
#define tt_expect_last(status, function, detail_part) \
    tt_check_error(tg_last_error_info(), (status), (function), (detail_part), "")

/* A tape's sticky error, by its parts, scope included ("" at the root). */
#define tt_expect_tape(tp, status, function, detail_part, scope) \
    tt_check_error(tg_tape_error_info(tp), (status), (function), (detail_part), (scope))

/* Writes n bytes to path (replacing it), for tests that build files by hand. */
static inline void tt_write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    ck_assert_msg(f != NULL, "cannot create %s", path);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
}

/* The whole file (malloc'd, one spare byte); *n its length. */
static inline uint8_t *tt_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *p = malloc((size_t)len + 1);
    ck_assert_uint_eq(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

/* Same dtype, shape and bytes: a and b (contiguous) hold bitwise the same values, for
 * tests that results do not depend on the thread count or the layout. */
static inline bool tt_same_bits(const tg_tensor *a, const tg_tensor *b)
{
    return a && b && a->dtype == b->dtype && tg_tensor_same_shape(a, b) &&
           tg_tensor_is_contiguous(a) && tg_tensor_is_contiguous(b) &&
           memcmp(tg_tensor_data(a), tg_tensor_data(b),
                  (size_t)tg_tensor_numel(a) * tg_dtype_size(a->dtype)) == 0;
}

/* ------------------------------------------------------------------ counting allocations
 * For tests that prove what the library allocates and frees: the hook counts every
 * allocation made (tt_n_alloc) and block freed (tt_n_free), and with tt_fail_in = k > 0
 * the k-th allocation from now fails (and is not counted). With tt_alloc_limit > 0 an
 * allocation of more bytes fails too: a reader that must not read a body before its
 * header is checked shows it by not asking for the body's memory. */
static int64_t tt_n_alloc, tt_n_free, tt_fail_in;
static size_t tt_alloc_limit;

static inline void *tt_counting_alloc(size_t size, size_t align, void *user)
{
    (void)user;
    if (tt_fail_in > 0 && --tt_fail_in == 0)
        return NULL;
    if (tt_alloc_limit > 0 && size > tt_alloc_limit)
        return NULL;
    tt_n_alloc++;
    if (align < sizeof(void *))
        align = sizeof(void *);
    size = (size + align - 1) / align * align;
    return aligned_alloc(align, size ? size : align);
}

static inline void tt_counting_free(void *p, void *user)
{
    (void)user;
    tt_n_free += p != NULL;
    free(p);
}

/* The hook, to install again without touching the counts. */
static inline const tg_allocator *tt_counting_allocator(void)
{
    static const tg_allocator counting = {tt_counting_alloc, tt_counting_free, NULL};
    return &counting;
}

/* Installs the hook with the counts at zero; tg_set_allocator(NULL) restores the default. */
static inline void tt_count_allocations(void)
{
    tt_n_alloc = tt_n_free = tt_fail_in = 0;
    tt_alloc_limit = 0;
    tg_set_allocator(tt_counting_allocator());
}

/* 0 if the kernel set the environment asks for can run here, else 77 (meson's "skipped")
 * with the reason: the suites are run once per kernel set (LIBXSMM_TARGET=hsw asks
 * libxsmm for AVX2 code, which a CPU without AVX2 cannot run; TG_ISA=avx2 or avx512
 * asks for that copy of tapegrad's own loops, tensor/isa.c, which would fall back to
 * another copy there and so test nothing new). */
static inline int tt_kernel_set_available(void)
{
    const char *target = getenv("LIBXSMM_TARGET"), *isa = getenv("TG_ISA");
#if defined(__x86_64__) && defined(__GNUC__)
    if (target && strcmp(target, "hsw") == 0 && !__builtin_cpu_supports("avx2")) {
        printf("skipped: LIBXSMM_TARGET=hsw (AVX2) on a CPU without AVX2\n");
        return 77;
    }
    if (isa && ((strcmp(isa, "avx2") == 0 && !__builtin_cpu_supports("avx2")) ||
                (strcmp(isa, "avx512") == 0 && !__builtin_cpu_supports("avx512f")))) {
        printf("skipped: TG_ISA=%s on a CPU without it\n", isa);
        return 77;
    }
#else
    if (isa && (strcmp(isa, "avx2") == 0 || strcmp(isa, "avx512") == 0)) {
        printf("skipped: TG_ISA=%s: not an x86-64 build\n", isa);
        return 77;
    }
#endif
    return 0;
}

/* Runs one suite; the exit status is the number of failures (0: all passed). */
static inline int tt_run(Suite *s)
{
    int available = tt_kernel_set_available();
    if (available != 0) {
        srunner_free(srunner_create(s)); /* frees the suite */
        return available;
    }
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* A test case with a timeout fit for sanitizer builds. */
static inline TCase *tt_tcase(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_set_timeout(tc, 120);
    return tc;
}

/* Adds a test case in which `test` must die of SIGABRT (TG_ABORT_ON_ERROR). Needs a
 * forked child, Check's default; with CK_FORK=no the case is left out. */
static inline void tt_add_abort_test(Suite *s, const TTest *test)
{
    const char *fork = getenv("CK_FORK");
    if (fork && strcmp(fork, "no") == 0)
        return;
    TCase *ab = tt_tcase("abort");
    tcase_add_test_raise_signal(ab, test, SIGABRT);
    suite_add_tcase(s, ab);
}

#endif
