/* tests/autograd/ag_check.h — what the op suites share: a gradcheck that asserts every
 * element agreed with no kinks, and an f32-against-f64 comparison of an op's output and
 * input gradients. Include after check_util.h. */
#ifndef TAPEGRAD_TESTS_AG_CHECK_H
#define TAPEGRAD_TESTS_AG_CHECK_H

#include "check_util.h"

/* tg_gradcheck of fn on the inputs (which it frees): every element agrees, no kinks. */
static inline void gradcheck_and_free(const char *what, tg_gradcheck_fn fn, void *user, int n,
                               tg_tensor *const *in)
{
    tg_gradcheck_report rep;
    tg_status st = tg_gradcheck(fn, user, n, in, NULL, &rep);
    ck_assert_msg(st == TG_OK && rep.ok, "%s: %s (%s)", what, rep.message, tg_last_error());
    ck_assert_int_gt(rep.checked, 0);
    ck_assert_int_eq(rep.kinks, 0);
    for (int i = 0; i < n; i++)
        tg_tensor_free(in[i]);
}
#define GRADCHECK(fn, user, ...)                                                            \
    gradcheck_and_free(#fn, fn, user, (int)(sizeof((tg_tensor *[]){__VA_ARGS__}) / sizeof(tg_tensor *)), \
                       (tg_tensor *[]){__VA_ARGS__})

/* Runs fn on leaves of dtype dt copied from in, then backward from a fixed random gout;
 * returns the output's and the input gradients' values (malloc'd, row-major f64). */
static inline double **run_in(tg_dtype dt, tg_gradcheck_fn fn, void *user, int n, tg_tensor *const *in,
                       int64_t *out_numel)
{
    double **vals = calloc((size_t)n + 1, sizeof *vals);
    tg_tensor **x = calloc((size_t)n, sizeof *x);
    tg_tape *tp = tg_tape_new(0);
    for (int i = 0; i < n; i++) {
        x[i] = tg_tensor_to_dtype(NULL, in[i], dt);
        ck_assert_int_eq(tg_requires_grad(x[i], "x"), TG_OK);
    }
    tg_tensor *y = fn(tp, x, user);
    ck_assert_msg(tg_tape_status(tp) == TG_OK, "%s", tg_tape_error(tp));
    ck_assert_int_eq(y->dtype, dt);
    tg_arena *ar = tg_tape_arena(tp);
    tg_rng g = tg_rng_new(42);
    tg_tensor *g64 = tg_tensor_empty(ar, TG_F64, y->ndim, y->shape);
    ck_assert_int_eq(tg_tensor_uniform_(g64, &g, -1, 1), TG_OK);
    ck_assert_msg(tg_backward_from(tp, y, tg_tensor_to_dtype(ar, g64, dt)) == TG_OK, "%s",
                  tg_tape_error(tp));
    vals[0] = tt_values(y);
    *out_numel = tg_tensor_numel(y);
    for (int i = 0; i < n; i++) {
        ck_assert_ptr_nonnull(tg_grad(x[i]));
        vals[i + 1] = tt_values(tg_grad(x[i]));
        tg_tensor_free(x[i]);
    }
    tg_tape_free(tp);
    free(x);
    return vals;
}

/* fn's f32 output and input gradients agree with its f64 ones within tol (relative to
 * max(1, |f64 value|)); frees the inputs. */
static inline void f32_matches_f64_and_free(tg_gradcheck_fn fn, void *user, int n, tg_tensor *const *in,
                                     double tol)
{
    int64_t ny;
    double **v32 = run_in(TG_F32, fn, user, n, in, &ny);
    double **v64 = run_in(TG_F64, fn, user, n, in, &ny);
    for (int k = 0; k <= n; k++) {
        int64_t m = k == 0 ? ny : tg_tensor_numel(in[k - 1]);
        for (int64_t j = 0; j < m; j++) {
            double ref = v64[k][j], scale = fabs(ref) > 1 ? fabs(ref) : 1;
            ck_assert_msg(fabs(v32[k][j] - ref) <= tol * scale, "%s %d, element %lld: f32 %.9g, f64 %.9g",
                          k ? "gradient of input" : "output", k - 1, (long long)j, v32[k][j], ref);
        }
        free(v32[k]);
        free(v64[k]);
    }
    free(v32);
    free(v64);
    for (int i = 0; i < n; i++)
        tg_tensor_free(in[i]);
}

#endif
