/* tests/check_util.h — what every Check suite here shares: building tensors from
 * f64 literals, comparing tensors against f64 references, and a main() body. */
#ifndef TAPEGRAD_TESTS_CHECK_UTIL_H
#define TAPEGRAD_TESTS_CHECK_UTIL_H

#include <check.h>
#include <math.h>
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

/* Runs one suite; the exit status is the number of failures (0: all passed). */
static inline int tt_run(Suite *s)
{
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

#endif
