/* tests/tensor/test_small_gemm.c — the convolutions' one-thread GEMMs through libxsmm
 * (tensor/small_gemm.c) against an f64 reference, for every operand layout the kernels
 * use, and the fallback to BLIS where libxsmm declines. meson runs this suite (and the
 * convolution suites) once per kernel set the machine has: libxsmm's own choice,
 * LIBXSMM_TARGET=hsw (AVX2) and TG_SMALL_GEMM=blis. */
#include "check_util.h"

#include "internal.h" /* tg__small_gemm, tg__gemm */

/* c = a @ b (+ c when beta = 1) in f64, a [m, k] and b [k, n] with the given strides. */
static void reference(int64_t m, int64_t n, int64_t k, const double *a, int64_t rsa, int64_t csa,
                      const double *b, int64_t rsb, int64_t csb, double beta, double *c, int64_t rsc)
{
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double s = beta * c[i * rsc + j];
            for (int64_t p = 0; p < k; p++)
                s += a[i * rsa + p * csa] * b[p * rsb + j * csb];
            c[i * rsc + j] = s;
        }
}

typedef struct layout {
    const char *name;
    int64_t m, n, k;
    bool a_trans, b_trans; /* stored column by column */
    int64_t pad;           /* extra elements at the end of each stored row (leading dimension) */
    double beta;
    bool xsmm_takes;       /* libxsmm 1.17 has a kernel for it */
} layout;

static const layout layouts[] = {
    {"winograd forward", 32, 256, 32, false, false, 0, 0.0, true},
    {"winograd forward, odd sizes", 7, 45, 19, false, false, 0, 0.0, true},
    {"tile with bias (beta 1), padded rows", 16, 100, 27, false, false, 3, 1.0, true},
    {"input gradient (a transposed)", 72, 64, 16, true, false, 0, 0.0, true},
    {"weight gradient (b transposed: copied by rows)", 16, 24, 200, false, true, 0, 1.0, true},
    {"both transposed, padded", 9, 40, 33, true, true, 5, 0.0, true},
};

/* Random values into t (dtype dt) and, as t holds them, into v. */
static void fill(char *t, double *v, int64_t n, tg_dtype dt)
{
    for (int64_t i = 0; i < n; i++) {
        v[i] = tt_rnd();
        if (dt == TG_F32)
            ((float *)t)[i] = (float)v[i], v[i] = ((float *)t)[i];
        else
            ((double *)t)[i] = v[i];
    }
}

static void check_layout(const layout *l, tg_dtype dt)
{
    int64_t m = l->m, n = l->n, k = l->k;
    int64_t lda = (l->a_trans ? m : k) + l->pad, ldb = (l->b_trans ? k : n) + l->pad, ldc = n + l->pad;
    int64_t rsa = l->a_trans ? 1 : lda, csa = l->a_trans ? lda : 1;
    int64_t rsb = l->b_trans ? 1 : ldb, csb = l->b_trans ? ldb : 1;
    int64_t na = (l->a_trans ? k : m) * lda, nb = (l->b_trans ? n : k) * ldb, nc = m * ldc;
    double *a = malloc(sizeof(double) * (size_t)na), *b = malloc(sizeof(double) * (size_t)nb);
    double *want = malloc(sizeof(double) * (size_t)nc);
    size_t es = tg_dtype_size(dt);
    char *ta = malloc(es * (size_t)na), *tb = malloc(es * (size_t)nb), *tc = malloc(es * (size_t)nc);
    ck_assert(a && b && want && ta && tb && tc);
    fill(ta, a, na, dt);
    fill(tb, b, nb, dt);
    fill(tc, want, nc, dt);
    reference(m, n, k, a, rsa, csa, b, rsb, csb, l->beta, want, ldc);
    bool took = tg__small_gemm(dt, m, n, k, ta, rsa, csa, tb, rsb, csb, l->beta, tc, ldc, 1);
    ck_assert_msg(took == (l->xsmm_takes && tg__small_gemm_enabled()),
                  "%s, %s: libxsmm %s it", l->name, tg_dtype_name(dt), took ? "took" : "declined");
    if (!took) /* what the kernels then do */
        tg__gemm(dt, m, n, k, 1.0, ta, rsa, csa, tb, rsb, csb, l->beta, tc, ldc, 1);
    double tol = (dt == TG_F32 ? 1e-5 : 1e-13) * (double)k;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < ldc; j++) {
            double got = dt == TG_F32 ? ((float *)tc)[i * ldc + j] : ((double *)tc)[i * ldc + j];
            /* the padding past n must be untouched: it still holds its random value */
            ck_assert_msg(fabs(got - want[i * ldc + j]) <= tol, "%s, %s: c[%lld][%lld] = %g, want %g",
                          l->name, tg_dtype_name(dt), (long long)i, (long long)j, got,
                          want[i * ldc + j]);
        }
    free(a), free(b), free(want), free(ta), free(tb), free(tc);
}

START_TEST(test_layouts_f32)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        check_layout(&layouts[i], TG_F32);
}
END_TEST

START_TEST(test_layouts_f64)
{
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0]; i++)
        check_layout(&layouts[i], TG_F64);
}
END_TEST

/* What libxsmm 1.17 cannot do is left to BLIS: another beta, a C stored by columns. */
START_TEST(test_declines)
{
    float a[4] = {1, 2, 3, 4}, b[4] = {1, 0, 0, 1}, c[4] = {0};
    ck_assert(!tg__small_gemm(TG_F32, 2, 2, 2, a, 2, 1, b, 2, 1, 0.5, c, 2, 1));
    ck_assert(!tg__small_gemm(TG_F32, 2, 2, 2, a, 2, 1, b, 2, 1, 0.0, c, 1, 2));
    ck_assert(!tg__small_gemm(TG_F32, 0, 2, 2, a, 2, 1, b, 2, 1, 0.0, c, 2, 1));
    for (int i = 0; i < 4; i++)
        ck_assert(c[i] == 0); /* nothing written */
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/small_gemm");
    TCase *tc = tt_tcase("small_gemm");
    tcase_add_test(tc, test_layouts_f32);
    tcase_add_test(tc, test_layouts_f64);
    tcase_add_test(tc, test_declines);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
