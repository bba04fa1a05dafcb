/* tests/tensor/test_rng.c — the Philox generator and the random fills: Random123's
 * known answers, the documented layout of draws on the counter, reproducibility
 * (seeds, splits, thread counts, strides) and the statistics of each distribution. */
#include "check_util.h"

#include "internal.h" /* tg__philox4x32_10 */

#define N_BIG 1000000

/* ------------------------------------------------------------------ Philox */

START_TEST(test_philox_known_answers)
{
    /* Random123 kat_vectors, "philox4x32 10": counter, key, expected output */
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff,
         0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0,
         0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int v = 0; v < 3; v++) {
        uint32_t out[4];
        tg__philox4x32_10(kat[v], kat[v] + 4, out);
        for (int k = 0; k < 4; k++)
            ck_assert_msg(out[k] == kat[v][6 + k], "vector %d word %d: %08x, want %08x", v, k,
                          out[k], kat[v][6 + k]);
    }
}
END_TEST

/* The block a generator in state (key, stream, counter) draws next. */
static void block_at(uint64_t key, uint64_t stream, uint64_t counter, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)counter, (uint32_t)(counter >> 32), (uint32_t)stream,
                             (uint32_t)(stream >> 32)};
    const uint32_t k[2] = {(uint32_t)key, (uint32_t)(key >> 32)};
    tg__philox4x32_10(ctr, k, out);
}

static double u53_of(uint32_t hi, uint32_t lo)
{
    return (double)((((uint64_t)hi << 32) | lo) >> 11) / 9007199254740992.0;
}

START_TEST(test_scalar_layout)
{
    /* key and stream words across their halves; the counter's low word carries */
    tg_rng g = {.key = 0x0123456789abcdefULL, .stream = 0xfedcba9876543210ULL,
                .counter = 0xfffffffeULL};
    for (int i = 0; i < 4; i++) {
        uint32_t w[4];
        uint64_t c = g.counter;
        block_at(g.key, g.stream, c, w);
        ck_assert_uint_eq(tg_rng_u32(&g), w[0]);
        ck_assert_uint_eq(g.counter, c + 1);
        block_at(g.key, g.stream, c + 1, w);
        double u = tg_rng_uniform(&g);
        ck_assert(u == u53_of(w[0], w[1]));
        ck_assert(u >= 0 && u < 1);
        ck_assert_uint_eq(g.counter, c + 2);
    }
    /* 53 bits: some draws have bits below 2^-32 */
    tg_rng h = tg_rng_new(5);
    int fine = 0;
    for (int i = 0; i < 100; i++) {
        double u = tg_rng_uniform(&h) * 4294967296.0;
        fine += u != floor(u);
    }
    ck_assert_int_gt(fine, 90);
}
END_TEST

START_TEST(test_fill_layout)
{
    /* a fill of n elements: f32 element i is word i%4 of block counter + i/4 (24 bits);
     * f64 element i reads the word pair i%2 of block counter + i/2 (53 bits). The
     * sizes cover several SIMD batches and a ragged end. */
    const int64_t n = 10007;
    tg_rng g = {.key = 42, .stream = 7, .counter = 0xffffff00ULL};
    tg_rng start = g;
    tg_tensor *t = tg_tensor_empty(NULL, TG_F32, 1, &n);
    ck_assert_int_eq(tg_tensor_uniform_(t, &g, 0, 1), TG_OK);
    ck_assert_uint_eq(g.counter, start.counter + (uint64_t)(n + 3) / 4);
    const float *f = tg_tensor_data(t);
    int64_t bad = -1; /* the first element off (one assertion: Check's are slow in loops) */
    for (int64_t i = 0; i < n && bad < 0; i++) {
        uint32_t w[4];
        block_at(start.key, start.stream, start.counter + (uint64_t)i / 4, w);
        if (f[i] != (float)((w[i % 4] >> 8) / 16777216.0))
            bad = i;
    }
    ck_assert_msg(bad < 0, "f32 element %lld", (long long)bad);
    tg_tensor_free(t);

    start = g;
    t = tg_tensor_empty(NULL, TG_F64, 1, &n);
    ck_assert_int_eq(tg_tensor_uniform_(t, &g, -1, 3), TG_OK);
    ck_assert_uint_eq(g.counter, start.counter + (uint64_t)(n + 1) / 2);
    const double *d = tg_tensor_data(t);
    for (int64_t i = 0; i < n && bad < 0; i++) {
        uint32_t w[4];
        block_at(start.key, start.stream, start.counter + (uint64_t)i / 2, w);
        int k = 2 * (int)(i % 2);
        if (d[i] != -1 + 4 * u53_of(w[k], w[k + 1]))
            bad = i;
    }
    ck_assert_msg(bad < 0, "f64 element %lld", (long long)bad);
    tg_tensor_free(t);

    /* normal f64: Box-Muller on the block's two uniforms, u1 in (0,1] */
    start = g;
    t = tg_tensor_empty(NULL, TG_F64, TG_DIMS(2));
    ck_assert_int_eq(tg_tensor_normal_(t, &g, 0, 1), TG_OK);
    uint32_t w[4];
    block_at(start.key, start.stream, start.counter, w);
    double r = sqrt(-2 * log(u53_of(w[0], w[1]) + 1.0 / 9007199254740992.0));
    double th = 2 * 3.14159265358979323846 * u53_of(w[2], w[3]);
    d = tg_tensor_data(t);
    ck_assert_double_eq_tol(d[0], r * cos(th), 1e-12);
    ck_assert_double_eq_tol(d[1], r * sin(th), 1e-12);
    tg_tensor_free(t);
}
END_TEST

/* ------------------------------------------------------------------ reproducibility */

static bool same_data(const tg_tensor *a, const tg_tensor *b)
{
    size_t n = (size_t)tg_tensor_numel(a) * tg_dtype_size(a->dtype);
    return tg_tensor_numel(a) == tg_tensor_numel(b) &&
           memcmp(tg_tensor_data(a), tg_tensor_data(b), n) == 0;
}

START_TEST(test_seeds)
{
    tg_rng a = tg_rng_new(1234), b = tg_rng_new(1234), c = tg_rng_new(1235);
    ck_assert(a.key == 1234 && a.stream == 0 && a.counter == 0);
    int differ = 0;
    for (int i = 0; i < 100; i++) {
        uint32_t x = tg_rng_u32(&a);
        ck_assert_uint_eq(x, tg_rng_u32(&b));
        differ += x != tg_rng_u32(&c);
    }
    ck_assert_int_ge(differ, 99);

    a = tg_rng_new(99), b = tg_rng_new(99), c = tg_rng_new(100);
    tg_tensor *ta = tg_tensor_randn(NULL, &a, TG_F32, TG_DIMS(64, 33));
    tg_tensor *tb = tg_tensor_randn(NULL, &b, TG_F32, TG_DIMS(64, 33));
    tg_tensor *tc = tg_tensor_randn(NULL, &c, TG_F32, TG_DIMS(64, 33));
    ck_assert(same_data(ta, tb));
    ck_assert(!same_data(ta, tc));
    ck_assert(a.counter == b.counter && a.counter == (64 * 33 + 3) / 4);
    tg_tensor_free(ta);
    tg_tensor_free(tb);
    tg_tensor_free(tc);
}
END_TEST

START_TEST(test_split)
{
    tg_rng g = tg_rng_new(7);
    tg_rng_u32(&g);
    const tg_rng before = g;
    tg_rng s1 = tg_rng_split(&g, 1), s1b = tg_rng_split(&g, 1), s2 = tg_rng_split(&g, 2);
    ck_assert(memcmp(&g, &before, sizeof g) == 0); /* g is not advanced */
    ck_assert(memcmp(&s1, &s1b, sizeof s1) == 0);  /* reproducible */
    ck_assert(s1.key == g.key && s1.counter == 0 && s2.counter == 0);
    ck_assert(s1.stream != s2.stream && s1.stream != g.stream && s2.stream != g.stream);
    /* a child of a child is another stream again; and the parent's stream matters */
    tg_rng s11 = tg_rng_split(&s1, 1), other = tg_rng_new(7);
    other.stream = 3;
    ck_assert(s11.stream != s1.stream && s11.stream != g.stream);
    ck_assert(tg_rng_split(&other, 1).stream != s1.stream);

    /* many siblings: all streams distinct, and their draws differ from the parent's */
    enum { KIDS = 256 };
    uint64_t streams[KIDS];
    int clashes = 0;
    for (int i = 0; i < KIDS; i++) {
        streams[i] = tg_rng_split(&g, (uint64_t)i).stream;
        clashes += streams[i] == g.stream;
        for (int j = 0; j < i; j++)
            clashes += streams[i] == streams[j];
    }
    ck_assert_int_eq(clashes, 0);
    tg_rng p = g, c1 = s1, c2 = s2;
    int same = 0;
    for (int i = 0; i < 64; i++) {
        uint32_t x = tg_rng_u32(&p), y = tg_rng_u32(&c1), z = tg_rng_u32(&c2);
        same += (x == y) + (x == z) + (y == z);
    }
    ck_assert_int_eq(same, 0);
    ck_assert_int_eq(tg_last_status(), TG_OK);
}
END_TEST

START_TEST(test_counter_advance)
{
    tg_rng g = tg_rng_new(3);
    tg_tensor *a = tg_tensor_empty(NULL, TG_F32, TG_DIMS(10));
    tg_tensor *b = tg_tensor_empty(NULL, TG_F32, TG_DIMS(10));
    ck_assert_int_eq(tg_tensor_uniform_(a, &g, 0, 1), TG_OK);
    ck_assert_uint_eq(g.counter, 3);
    ck_assert_int_eq(tg_tensor_uniform_(b, &g, 0, 1), TG_OK);
    ck_assert_uint_eq(g.counter, 6);
    ck_assert(!same_data(a, b));
    tg_tensor_free(a);
    tg_tensor_free(b);

    /* consecutive fills read the stream back to back where they end on a block:
     * 8 + 8 f32 equal 16 f32, 4 + 4 f64 equal 8 f64, for every distribution */
    for (int dist = 0; dist < 3; dist++)
        for (int dt = 0; dt < 2; dt++) {
            tg_dtype type = dt ? TG_F64 : TG_F32;
            int64_t half = dt ? 4 : 8, whole = 2 * half;
            tg_rng g1 = tg_rng_new(11), g2 = tg_rng_new(11);
            tg_tensor *h1 = tg_tensor_empty(NULL, type, 1, &half);
            tg_tensor *h2 = tg_tensor_empty(NULL, type, 1, &half);
            tg_tensor *w = tg_tensor_empty(NULL, type, 1, &whole);
            tg_tensor *parts[3] = {h1, h2, w};
            tg_rng *gens[3] = {&g1, &g1, &g2};
            for (int k = 0; k < 3; k++) {
                tg_status st = dist == 0   ? tg_tensor_uniform_(parts[k], gens[k], -2, 2)
                               : dist == 1 ? tg_tensor_normal_(parts[k], gens[k], 1, 3)
                                           : tg_tensor_bernoulli_(parts[k], gens[k], 0.5);
                ck_assert_int_eq(st, TG_OK);
            }
            size_t hb = (size_t)half * tg_dtype_size(type);
            ck_assert(memcmp(tg_tensor_data(h1), tg_tensor_data(w), hb) == 0);
            ck_assert(memcmp(tg_tensor_data(h2), (char *)tg_tensor_data(w) + hb, hb) == 0);
            ck_assert_uint_eq(g1.counter, g2.counter);
            ck_assert_uint_eq(g2.counter, 4);
            tg_tensor_free(h1);
            tg_tensor_free(h2);
            tg_tensor_free(w);
        }

    /* a ragged fill still takes whole blocks; an empty one takes none */
    g = tg_rng_new(0);
    tg_tensor *t5 = tg_tensor_empty(NULL, TG_F64, TG_DIMS(5));
    ck_assert_int_eq(tg_tensor_normal_(t5, &g, 0, 1), TG_OK);
    ck_assert_uint_eq(g.counter, 3);
    tg_tensor *e = tg_tensor_empty(NULL, TG_F32, TG_DIMS(0, 4));
    ck_assert_int_eq(tg_tensor_uniform_(e, &g, 0, 1), TG_OK);
    ck_assert_uint_eq(g.counter, 3);
    tg_tensor *s = tg_tensor_scalar(NULL, TG_I32, 0);
    ck_assert_int_eq(tg_tensor_bernoulli_(s, &g, 0.5), TG_OK);
    ck_assert_uint_eq(g.counter, 4);
    tg_tensor_free(t5);
    tg_tensor_free(e);
    tg_tensor_free(s);
}
END_TEST

/* Fills a fresh N_BIG-element tensor from seed 5 with 1 and with 2 threads. */
static void check_threads(tg_dtype dt, int dist)
{
    tg_tensor *t[2];
    tg_rng g[2];
    for (int k = 0; k < 2; k++) {
        tg_set_num_threads(k + 1);
        g[k] = tg_rng_new(5);
        t[k] = tg_tensor_empty(NULL, dt, TG_DIMS(N_BIG));
        tg_status st = dist == 0   ? tg_tensor_uniform_(t[k], &g[k], -1, 1)
                       : dist == 1 ? tg_tensor_normal_(t[k], &g[k], 0, 1)
                                   : tg_tensor_bernoulli_(t[k], &g[k], 0.25);
        ck_assert_int_eq(st, TG_OK);
    }
    ck_assert_msg(same_data(t[0], t[1]), "dtype %s, distribution %d", tg_dtype_name(dt), dist);
    ck_assert_uint_eq(g[0].counter, g[1].counter);
    tg_tensor_free(t[0]);
    tg_tensor_free(t[1]);
}

START_TEST(test_thread_count_invariance)
{
    for (int dist = 0; dist < 3; dist++) {
        check_threads(TG_F32, dist);
        check_threads(TG_F64, dist);
    }
    check_threads(TG_U8, 2);
    tg_set_num_threads(2);
}
END_TEST

START_TEST(test_strided_targets)
{
    /* a transposed view and a stepped slice get the values a contiguous tensor of their
     * shape gets, in logical (row-major) order */
    tg_tensor *base = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(300, 200));
    tg_tensor *tv = tg_tensor_transpose(NULL, base, 0, 1);
    tg_tensor *ref = tg_tensor_empty(NULL, TG_F32, TG_DIMS(200, 300));
    ck_assert(!tg_tensor_is_contiguous(tv));
    tg_rng g1 = tg_rng_new(21), g2 = tg_rng_new(21);
    ck_assert_int_eq(tg_tensor_normal_(tv, &g1, 0, 1), TG_OK);
    ck_assert_int_eq(tg_tensor_normal_(ref, &g2, 0, 1), TG_OK);
    ck_assert_uint_eq(g1.counter, g2.counter);
    double *want = tt_values(ref);
    tt_assert_close(tv, want, 0);
    free(want);

    tg_tensor *base2 = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(300, 200));
    tg_tensor *sl = tg_tensor_slice(NULL, base2, 1, 1, 200, 3); /* [300, 67] */
    tg_tensor *ref2 = tg_tensor_empty(NULL, TG_F32, TG_DIMS(300, 67));
    ck_assert_int_eq(tg_tensor_uniform_(sl, &g1, 0, 1), TG_OK);
    ck_assert_int_eq(tg_tensor_uniform_(ref2, &g2, 0, 1), TG_OK);
    want = tt_values(ref2);
    tt_assert_close(sl, want, 0);
    free(want);
    /* the untouched columns stay untouched */
    ck_assert(tg_tensor_get(base2, (int64_t[]){5, 0}) == 0.0f);
    ck_assert(tg_tensor_get(base2, (int64_t[]){5, 2}) == 0.0f);
    ck_assert(tg_tensor_get(base2, (int64_t[]){5, 1}) != 0.0f);

    /* a broadcast target has elements sharing memory: refused */
    tg_tensor *row = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(1, 4));
    tg_tensor *ex = tg_tensor_expand(NULL, row, TG_DIMS(3, 4));
    tg_rng g = tg_rng_new(0);
    ck_assert_int_eq(tg_tensor_uniform_(ex, &g, 0, 1), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_tensor_uniform_"));
    ck_assert_uint_eq(g.counter, 0);
    tg_clear_error();
    tg_tensor_free(ex);
    tg_tensor_free(row);
    tg_tensor_free(sl);
    tg_tensor_free(ref2);
    tg_tensor_free(tv);
    tg_tensor_free(ref);
    tg_tensor_free(base);
    tg_tensor_free(base2);
}
END_TEST

/* ------------------------------------------------------------------ statistics */

static void moments(const double *v, int64_t n, double *mean, double *var, double *lo, double *hi)
{
    double s = 0, ss = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < n; i++) {
        s += v[i];
        *lo = fmin(*lo, v[i]);
        *hi = fmax(*hi, v[i]);
    }
    *mean = s / (double)n;
    for (int64_t i = 0; i < n; i++)
        ss += (v[i] - *mean) * (v[i] - *mean);
    *var = ss / (double)(n - 1);
}

START_TEST(test_uniform_statistics)
{
    const double lo = -2, hi = 3, w = hi - lo, n = N_BIG;
    for (int dt = 0; dt < 2; dt++) {
        tg_rng g = tg_rng_new(100 + (uint64_t)dt);
        tg_tensor *t = tg_tensor_empty(NULL, dt ? TG_F64 : TG_F32, TG_DIMS(N_BIG));
        ck_assert_int_eq(tg_tensor_uniform_(t, &g, lo, hi), TG_OK);
        double *v = tt_values(t), mean, var, mn, mx;
        moments(v, N_BIG, &mean, &var, &mn, &mx);
        /* 6 standard errors: sd(mean) = w / sqrt(12 n); sd(var) = w^2 sqrt(1/180 / n) */
        ck_assert_double_eq_tol(mean, (lo + hi) / 2, 6 * w / sqrt(12 * n));
        ck_assert_double_eq_tol(var, w * w / 12, 6 * w * w * sqrt(1.0 / 180 / n));
        ck_assert(mn >= lo && mx < hi);
        ck_assert(mn < lo + 1e-3 && mx > hi - 1e-3);

        /* chi-square on 16 equal bins, 15 degrees of freedom (mean 15, sd 5.5) */
        double count[16] = {0}, chi2 = 0;
        for (int64_t i = 0; i < N_BIG; i++)
            count[(int)((v[i] - lo) / w * 16)]++;
        for (int b = 0; b < 16; b++)
            chi2 += (count[b] - n / 16) * (count[b] - n / 16) / (n / 16);
        ck_assert_msg(chi2 < 60, "chi-square %g on 15 degrees of freedom", chi2);
        free(v);
        tg_tensor_free(t);
    }
    /* tg_tensor_rand is U[0,1) */
    tg_rng g = tg_rng_new(8);
    tg_tensor *r = tg_tensor_rand(NULL, &g, TG_F64, TG_DIMS(1000, 10));
    double *v = tt_values(r), mean, var, mn, mx;
    moments(v, tg_tensor_numel(r), &mean, &var, &mn, &mx);
    free(v);
    ck_assert(mn >= 0 && mx < 1);
    ck_assert_double_eq_tol(mean, 0.5, 6 / sqrt(12 * 1e4));
    ck_assert_uint_eq(g.counter, 5000);
    tg_tensor_free(r);
}
END_TEST

START_TEST(test_uniform_half_open)
{
    /* hi is never reached, even where lo + (hi - lo) * u rounds up to it in f32 */
    tg_rng g = tg_rng_new(2);
    tg_tensor *t = tg_tensor_empty(NULL, TG_F32, TG_DIMS(100000));
    ck_assert_int_eq(tg_tensor_uniform_(t, &g, 1000, 1000.0001), TG_OK);
    const float *f = tg_tensor_data(t);
    int outside = 0;
    for (int i = 0; i < 100000; i++)
        outside += !(f[i] >= 1000.0f && f[i] < (float)1000.0001);
    ck_assert_int_eq(outside, 0);
    /* lo == hi fills the constant */
    ck_assert_int_eq(tg_tensor_uniform_(t, &g, 2.5, 2.5), TG_OK);
    ck_assert(f[0] == 2.5f && f[99999] == 2.5f);
    tg_tensor_free(t);
}
END_TEST

/* Phi(z), the standard normal CDF */
static double phi(double z) { return 0.5 * erfc(-z / sqrt(2.0)); }

START_TEST(test_normal_statistics)
{
    const double mu = 1.5, sigma = 2, n = N_BIG;
    for (int dt = 0; dt < 2; dt++) {
        tg_rng g = tg_rng_new(200 + (uint64_t)dt);
        tg_tensor *t = dt ? tg_tensor_empty(NULL, TG_F64, TG_DIMS(1000, 1000))
                          : tg_tensor_empty(NULL, TG_F32, TG_DIMS(1000, 1000));
        ck_assert_int_eq(tg_tensor_normal_(t, &g, mu, sigma), TG_OK);
        double *v = tt_values(t), mean, var, mn, mx;
        moments(v, N_BIG, &mean, &var, &mn, &mx);
        /* sd(mean) = sigma / sqrt(n); sd(var) = sigma^2 sqrt(2 / n) */
        ck_assert_double_eq_tol(mean, mu, 6 * sigma / sqrt(n));
        ck_assert_double_eq_tol(var, sigma * sigma, 6 * sigma * sigma * sqrt(2 / n));
        ck_assert(isfinite(mn) && isfinite(mx));
        ck_assert(mn < mu - 4 * sigma && mx > mu + 4 * sigma); /* tails exist */

        /* the shape: chi-square on 16 bins equiprobable under N(mu, sigma) */
        double count[16] = {0}, chi2 = 0;
        for (int64_t i = 0; i < N_BIG; i++) {
            int b = (int)(phi((v[i] - mu) / sigma) * 16);
            count[b < 16 ? b : 15]++;
        }
        for (int b = 0; b < 16; b++)
            chi2 += (count[b] - n / 16) * (count[b] - n / 16) / (n / 16);
        ck_assert_msg(chi2 < 60, "chi-square %g on 15 degrees of freedom", chi2);
        free(v);
        tg_tensor_free(t);
    }
    /* tg_tensor_randn is N(0, 1) */
    tg_rng g = tg_rng_new(9);
    tg_tensor *r = tg_tensor_randn(NULL, &g, TG_F32, TG_DIMS(100, 100));
    double *v = tt_values(r), mean, var, mn, mx;
    moments(v, tg_tensor_numel(r), &mean, &var, &mn, &mx);
    free(v);
    ck_assert_double_eq_tol(mean, 0, 6 / sqrt(1e4));
    ck_assert_double_eq_tol(var, 1, 6 * sqrt(2 / 1e4));
    tg_tensor_free(r);
    /* std 0 gives the mean */
    tg_tensor *c = tg_tensor_empty(NULL, TG_F64, TG_DIMS(3));
    ck_assert_int_eq(tg_tensor_normal_(c, &g, -4, 0), TG_OK);
    ck_assert(tg_tensor_get(c, (int64_t[]){2}) == -4);
    tg_tensor_free(c);
}
END_TEST

START_TEST(test_bernoulli)
{
    const double p = 0.3, n = N_BIG;
    tg_rng g = tg_rng_new(300);
    tg_tensor *t = tg_tensor_empty(NULL, TG_U8, TG_DIMS(N_BIG));
    ck_assert_int_eq(tg_tensor_bernoulli_(t, &g, p), TG_OK);
    const uint8_t *m = tg_tensor_data(t);
    double ones = 0;
    int other = 0;
    for (int i = 0; i < N_BIG; i++) {
        other += m[i] > 1;
        ones += m[i];
    }
    ck_assert_int_eq(other, 0);
    ck_assert_double_eq_tol(ones / n, p, 6 * sqrt(p * (1 - p) / n));

    /* bernoulli(p) is (uniform < p) on the same draws */
    tg_rng g1 = tg_rng_new(301), g2 = tg_rng_new(301);
    tg_tensor *b = tg_tensor_empty(NULL, TG_F64, TG_DIMS(999));
    tg_tensor *u = tg_tensor_empty(NULL, TG_F64, TG_DIMS(999));
    ck_assert_int_eq(tg_tensor_bernoulli_(b, &g1, p), TG_OK);
    ck_assert_int_eq(tg_tensor_uniform_(u, &g2, 0, 1), TG_OK);
    const double *bv = tg_tensor_data(b), *uv = tg_tensor_data(u);
    int differ = 0;
    for (int i = 0; i < 999; i++)
        differ += bv[i] != (uv[i] < p ? 1.0 : 0.0);
    ck_assert_int_eq(differ, 0);

    /* the ends are exact */
    ck_assert_int_eq(tg_tensor_bernoulli_(t, &g, 0), TG_OK);
    for (int i = 0; i < N_BIG; i++)
        other += m[i] != 0;
    ck_assert_int_eq(tg_tensor_bernoulli_(t, &g, 1), TG_OK);
    for (int i = 0; i < N_BIG; i++)
        other += m[i] != 1;
    ck_assert_int_eq(other, 0);
    tg_tensor_free(t);
    tg_tensor_free(b);
    tg_tensor_free(u);
}
END_TEST

START_TEST(test_integer_dtypes)
{
    /* integers get the truncated value: uniform [0, 10) gives 0..9 evenly */
    tg_rng g = tg_rng_new(400);
    tg_tensor *t = tg_tensor_empty(NULL, TG_I32, TG_DIMS(100000));
    ck_assert_int_eq(tg_tensor_uniform_(t, &g, 0, 10), TG_OK);
    const int32_t *v = tg_tensor_data(t);
    double count[10] = {0};
    int outside = 0;
    for (int i = 0; i < 100000; i++) {
        if (v[i] >= 0 && v[i] < 10)
            count[v[i]]++;
        else
            outside++;
    }
    ck_assert_int_eq(outside, 0);
    for (int k = 0; k < 10; k++)
        ck_assert_double_eq_tol(count[k] / 1e5, 0.1, 6 * sqrt(0.09 / 1e5));

    /* u8 [0, 256) reaches every value */
    tg_tensor *u = tg_tensor_empty(NULL, TG_U8, TG_DIMS(20000));
    ck_assert_int_eq(tg_tensor_uniform_(u, &g, 0, 256), TG_OK);
    int seen[256] = {0};
    const uint8_t *uv = tg_tensor_data(u);
    for (int i = 0; i < 20000; i++)
        seen[uv[i]] = 1;
    for (int k = 0; k < 256; k++)
        ck_assert_msg(seen[k], "u8 value %d never drawn", k);

    /* i32 normal: the f32 layout, truncated toward zero */
    tg_rng g1 = tg_rng_new(401), g2 = tg_rng_new(401);
    tg_tensor *ni = tg_tensor_empty(NULL, TG_I32, TG_DIMS(1000));
    tg_tensor *nf = tg_tensor_empty(NULL, TG_F32, TG_DIMS(1000));
    ck_assert_int_eq(tg_tensor_normal_(ni, &g1, 0, 100), TG_OK);
    ck_assert_int_eq(tg_tensor_normal_(nf, &g2, 0, 100), TG_OK);
    const int32_t *iv = tg_tensor_data(ni);
    const float *fv = tg_tensor_data(nf);
    int off = -1;
    for (int i = 0; i < 1000 && off < 0; i++) {
        /* f32 rounding may cross an integer that the double value had not reached */
        bool near = fabs(fv[i] - round(fv[i])) < 1e-4;
        if (iv[i] != trunc(fv[i]) && !near)
            off = i;
    }
    ck_assert_msg(off < 0, "element %d: %d vs %g", off, off < 0 ? 0 : iv[off],
                  off < 0 ? 0.0 : (double)fv[off]);
    tg_tensor_free(t);
    tg_tensor_free(u);
    tg_tensor_free(ni);
    tg_tensor_free(nf);
}
END_TEST

/* ------------------------------------------------------------------ below, permutation */

START_TEST(test_below)
{
    tg_rng g = tg_rng_new(500);
    ck_assert_uint_eq(tg_rng_below(&g, 0), 0);
    ck_assert_uint_eq(tg_rng_below(&g, 1), 0);
    /* chi-square over 7 values, 6 degrees of freedom (mean 6, sd 3.5) */
    double count[7] = {0}, chi2 = 0;
    const int draws = 70000;
    int outside = 0;
    for (int i = 0; i < draws; i++) {
        uint32_t x = tg_rng_below(&g, 7);
        if (x < 7)
            count[x]++;
        else
            outside++;
    }
    for (int k = 0; k < 7; k++)
        chi2 += (count[k] - draws / 7.0) * (count[k] - draws / 7.0) / (draws / 7.0);
    ck_assert_msg(chi2 < 40, "chi-square %g on 6 degrees of freedom", chi2);

    /* n = 3 * 2^30: a plain modulo would favour [0, 2^30) and pull the mean to 1.25 *
     * 2^30 instead of 1.5 * 2^30; the sd of the mean of 20000 draws is ~0.006 * 2^30 */
    const uint32_t big = 3u << 30;
    double s = 0;
    for (int i = 0; i < 20000; i++) {
        uint32_t x = tg_rng_below(&g, big);
        outside += x >= big;
        s += x;
    }
    ck_assert_double_eq_tol(s / 20000 / (1 << 30), 1.5, 0.05);
    for (int i = 0; i < 1000; i++)
        outside += tg_rng_below(&g, UINT32_MAX) == UINT32_MAX;
    ck_assert_int_eq(outside, 0);
}
END_TEST

START_TEST(test_permutation)
{
    enum { N = 1000 };
    int32_t *p = malloc(N * sizeof *p), *q = malloc(N * sizeof *q);
    tg_rng g = tg_rng_new(600), h = tg_rng_new(600);
    tg_rng_permutation(&g, p, N);
    tg_rng_permutation(&h, q, N);
    ck_assert(memcmp(p, q, N * sizeof *p) == 0);
    int seen[N] = {0}, fixed = 0;
    bool ok = true;
    for (int i = 0; i < N && ok; i++) {
        ok = p[i] >= 0 && p[i] < N && seen[p[i]]++ == 0;
        fixed += p[i] == i;
    }
    ck_assert_msg(ok, "not a permutation of 0..%d", N - 1);
    ck_assert_int_lt(fixed, 10); /* about 1 expected */
    tg_rng_permutation(&g, q, N);
    ck_assert(memcmp(p, q, N * sizeof *p) != 0);

    /* each of the 6 orders of 3 comes up about equally often */
    double count[6] = {0};
    for (int i = 0; i < 6000; i++) {
        int32_t r[3];
        tg_rng_permutation(&g, r, 3);
        count[r[0] * 2 + (r[1] > r[2])]++;
    }
    for (int k = 0; k < 6; k++)
        ck_assert_double_eq_tol(count[k], 1000, 6 * sqrt(1000 * 5.0 / 6));

    int32_t one = -1;
    tg_rng_permutation(&g, &one, 1);
    ck_assert_int_eq(one, 0);
    tg_rng_permutation(&g, NULL, 0);
    ck_assert_int_eq(tg_last_status(), TG_OK);
    free(p);
    free(q);
}
END_TEST

/* ------------------------------------------------------------------ errors */

#define EXPECT_ERR(call, status, fn)                                                    \
    do {                                                                                \
        tg_clear_error();                                                               \
        ck_assert_int_eq((call), (status));                                             \
        ck_assert_int_eq(tg_last_status(), (status));                                   \
        ck_assert_msg(strstr(tg_last_error(), fn ":") != NULL, "%s", tg_last_error());   \
    } while (0)

START_TEST(test_errors)
{
    tg_rng g = tg_rng_new(0);
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4));
    EXPECT_ERR(tg_tensor_uniform_(t, &g, 2, 1), TG_ERR_ARG, "tg_tensor_uniform_");
    EXPECT_ERR(tg_tensor_uniform_(t, &g, NAN, 1), TG_ERR_ARG, "tg_tensor_uniform_");
    EXPECT_ERR(tg_tensor_uniform_(t, &g, 0, INFINITY), TG_ERR_ARG, "tg_tensor_uniform_");
    EXPECT_ERR(tg_tensor_normal_(t, &g, 0, -1), TG_ERR_ARG, "tg_tensor_normal_");
    EXPECT_ERR(tg_tensor_normal_(t, &g, NAN, 1), TG_ERR_ARG, "tg_tensor_normal_");
    EXPECT_ERR(tg_tensor_normal_(t, &g, 0, NAN), TG_ERR_ARG, "tg_tensor_normal_");
    EXPECT_ERR(tg_tensor_bernoulli_(t, &g, 1.5), TG_ERR_ARG, "tg_tensor_bernoulli_");
    EXPECT_ERR(tg_tensor_bernoulli_(t, &g, -0.1), TG_ERR_ARG, "tg_tensor_bernoulli_");
    EXPECT_ERR(tg_tensor_bernoulli_(t, &g, NAN), TG_ERR_ARG, "tg_tensor_bernoulli_");
    EXPECT_ERR(tg_tensor_uniform_(t, NULL, 0, 1), TG_ERR_ARG, "tg_tensor_uniform_");
    /* nothing was written or drawn */
    ck_assert_uint_eq(g.counter, 0);
    ck_assert(tg_tensor_get(t, (int64_t[]){3}) == 0);

    /* a NULL tensor keeps the earlier message */
    tg_set_error(TG_ERR_SHAPE, "earlier: failure");
    ck_assert_int_eq(tg_tensor_normal_(NULL, &g, 0, 1), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "earlier: failure");

    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_rand(NULL, &g, TG_F32, TG_DIMS(2, -3)));
    ck_assert_msg(strstr(tg_last_error(), "tg_tensor_rand:") == tg_last_error(), "%s",
                  tg_last_error());
    ck_assert_ptr_null(tg_tensor_randn(NULL, NULL, TG_F32, TG_DIMS(2)));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_tensor_randn:"));
    ck_assert_uint_eq(g.counter, 0);

    tg_clear_error();
    tg_rng_permutation(&g, NULL, 5);
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_clear_error();
    int32_t perm[2] = {7, 7};
    tg_rng_permutation(&g, perm, -1);
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_rng_permutation:"));
    ck_assert_int_eq(perm[0], 7);
    tg_clear_error();
    ck_assert_uint_eq(tg_rng_u32(NULL), 0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);
    tg_clear_error();
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_arena)
{
    tg_arena *ar = tg_arena_new(0);
    tg_rng g1 = tg_rng_new(77), g2 = tg_rng_new(77);
    tg_tensor *a = tg_tensor_randn(ar, &g1, TG_F64, TG_DIMS(17, 3));
    tg_tensor *b = tg_tensor_randn(NULL, &g2, TG_F64, TG_DIMS(17, 3));
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a->arena, ar);
    ck_assert(same_data(a, b));
    tg_tensor_free(b);
    tg_arena_free(ar);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/rng");
    TCase *gen = tt_tcase("generator");
    tcase_add_test(gen, test_philox_known_answers);
    tcase_add_test(gen, test_scalar_layout);
    tcase_add_test(gen, test_fill_layout);
    tcase_add_test(gen, test_seeds);
    tcase_add_test(gen, test_split);
    tcase_add_test(gen, test_counter_advance);
    tcase_add_test(gen, test_thread_count_invariance);
    tcase_add_test(gen, test_strided_targets);
    tcase_add_test(gen, test_below);
    tcase_add_test(gen, test_permutation);
    tcase_add_test(gen, test_errors);
    tcase_add_test(gen, test_arena);
    suite_add_tcase(s, gen);
    TCase *stats = tt_tcase("statistics");
    tcase_add_test(stats, test_uniform_statistics);
    tcase_add_test(stats, test_uniform_half_open);
    tcase_add_test(stats, test_normal_statistics);
    tcase_add_test(stats, test_bernoulli);
    tcase_add_test(stats, test_integer_dtypes);
    suite_add_tcase(s, stats);
    return tt_run(s);
}
