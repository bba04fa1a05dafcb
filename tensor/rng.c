/* tensor/rng.c — the counter-based generator (Philox 4x32-10) and the random fills.
 *
 * Philox (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11, the
 * Random123 library) turns a 128-bit counter and a 64-bit key into 128 random bits,
 * "a block". Here the key is the seed and the counter is (block index, stream id):
 *   counter words (g->counter lo, g->counter hi, g->stream lo, g->stream hi).
 * Nothing else is state, so element i of a fill is a pure function of
 * (key, stream, counter + i / per_block) and fills split across threads freely.
 *
 * What each draw uses (the layout is part of the reproducibility contract):
 *   tg_rng_u32, tg_rng_uniform, tg_rng_below: one block each (below takes another in
 *     the rare case that all four words of a block are rejected);
 *   f32, u8, i32 fills: 4 elements per block. uniform and bernoulli read one word per
 *     element (24 bits, [0,1)); normal takes Box-Muller, in float, on the word pairs
 *     (w0,w1), (w2,w3): u1 = (w0 + 1) / 2^32 in (0,1] so log never sees 0;
 *   f64 fills: 2 elements per block. uniform and bernoulli read a word pair each
 *     (53 bits); normal takes Box-Muller on the block's two 53-bit uniforms.
 * A fill of n elements advances g->counter by ceil(n / per_block) blocks. */
#include "internal.h"

#include <math.h>
#include <omp.h>
#include <string.h>

/* ------------------------------------------------------------------ Philox 4x32-10 */

#define PHILOX_M0 0xD2511F53u /* round multipliers */
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u /* key schedule: golden ratio, sqrt(3) - 1 */
#define PHILOX_W1 0xBB67AE85u

/* Splits derive a child's stream id from a block under this tweak of the key (sqrt(2)
 * and sqrt(5) fractions), so that the id is not a value the parent itself draws. */
#define SPLIT_K0 0x6A09E667u
#define SPLIT_K1 0x3C6EF372u

void tg__philox4x32_10(const uint32_t ctr[4], const uint32_t key[2], uint32_t out[4])
{
    uint32_t x0 = ctr[0], x1 = ctr[1], x2 = ctr[2], x3 = ctr[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int r = 0; r < 10; r++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * x0, p1 = (uint64_t)PHILOX_M1 * x2;
        x0 = (uint32_t)(p1 >> 32) ^ x1 ^ k0;
        x1 = (uint32_t)p1;
        x2 = (uint32_t)(p0 >> 32) ^ x3 ^ k1;
        x3 = (uint32_t)p0;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = x0, out[1] = x1, out[2] = x2, out[3] = x3;
}

/* Blocks ctr .. ctr+BATCH-1 of one stream in draw order, word k of block j at
 * out[4 * j + k]. The rounds sweep all lanes at once: that loop vectorises. */
#define BATCH 64

static void philox_batch(uint32_t k0, uint32_t k1, uint64_t ctr, uint64_t stream,
                         uint32_t out[4 * BATCH])
{
    uint32_t x0[BATCH], x1[BATCH], x2[BATCH], x3[BATCH];
    for (int j = 0; j < BATCH; j++) {
        uint64_t c = ctr + (uint64_t)j;
        x0[j] = (uint32_t)c;
        x1[j] = (uint32_t)(c >> 32);
        x2[j] = (uint32_t)stream;
        x3[j] = (uint32_t)(stream >> 32);
    }
    for (int r = 0; r < 10; r++) {
        for (int j = 0; j < BATCH; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * x0[j], p1 = (uint64_t)PHILOX_M1 * x2[j];
            uint32_t y0 = (uint32_t)(p1 >> 32) ^ x1[j] ^ k0;
            uint32_t y2 = (uint32_t)(p0 >> 32) ^ x3[j] ^ k1;
            x0[j] = y0, x1[j] = (uint32_t)p1, x2[j] = y2, x3[j] = (uint32_t)p0;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int j = 0; j < BATCH; j++)
        out[4 * j] = x0[j], out[4 * j + 1] = x1[j], out[4 * j + 2] = x2[j], out[4 * j + 3] = x3[j];
}

/* ------------------------------------------------------------------ the generator */

static void key_words(uint64_t key, uint32_t k[2])
{
    k[0] = (uint32_t)key;
    k[1] = (uint32_t)(key >> 32);
}

/* The block at g's counter; g moves past it. */
static void next_block(tg_rng *g, uint32_t out[4])
{
    const uint32_t ctr[4] = {(uint32_t)g->counter, (uint32_t)(g->counter >> 32),
                             (uint32_t)g->stream, (uint32_t)(g->stream >> 32)};
    uint32_t key[2];
    key_words(g->key, key);
    tg__philox4x32_10(ctr, key, out);
    g->counter++;
}

#define TWO_M24 (1.0 / 16777216.0)          /* 2^-24 */
#define TWO_M32 (1.0 / 4294967296.0)        /* 2^-32 */
#define TWO_M53 (1.0 / 9007199254740992.0)  /* 2^-53 */

static inline double u53(uint32_t hi, uint32_t lo) /* [0, 1) */
{
    return (double)((((uint64_t)hi << 32) | lo) >> 11) * TWO_M53;
}

tg_rng tg_rng_new(uint64_t seed)
{
    return (tg_rng){.key = seed, .stream = 0, .counter = 0};
}

tg_rng tg_rng_split(const tg_rng *g, uint64_t index)
{
    if (!g) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_split", "generator is NULL");
        return tg_rng_new(0);
    }
    const uint32_t ctr[4] = {(uint32_t)index, (uint32_t)(index >> 32), (uint32_t)g->stream,
                             (uint32_t)(g->stream >> 32)};
    uint32_t key[2], out[4];
    key_words(g->key, key);
    key[0] ^= SPLIT_K0;
    key[1] ^= SPLIT_K1;
    tg__philox4x32_10(ctr, key, out);
    return (tg_rng){.key = g->key, .stream = ((uint64_t)out[1] << 32) | out[0], .counter = 0};
}

uint32_t tg_rng_u32(tg_rng *g)
{
    if (!g) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_u32", "generator is NULL");
        return 0;
    }
    uint32_t w[4];
    next_block(g, w);
    return w[0];
}

double tg_rng_uniform(tg_rng *g)
{
    if (!g) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_uniform", "generator is NULL");
        return 0;
    }
    uint32_t w[4];
    next_block(g, w);
    return u53(w[0], w[1]);
}

/* Lemire's multiply-shift ("Fast random integer generation in an interval", 2019): the
 * high word of w * n is uniform in [0, n) once the low words below 2^32 mod n, which
 * would favour some results, are rejected. */
uint32_t tg_rng_below(tg_rng *g, uint32_t n)
{
    if (!g) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_below", "generator is NULL");
        return 0;
    }
    const uint32_t threshold = n ? (uint32_t)(-n) % n : 0;
    for (;;) {
        uint32_t w[4];
        next_block(g, w);
        for (int k = 0; k < 4; k++) {
            uint64_t m = (uint64_t)w[k] * n;
            if ((uint32_t)m >= threshold)
                return (uint32_t)(m >> 32);
        }
    }
}

void tg_rng_permutation(tg_rng *g, int32_t *perm, int64_t n)
{
    if (!g || (!perm && n > 0)) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_permutation", "%s is NULL", g ? "perm" : "generator");
        return;
    }
    if (n < 0 || n > (int64_t)INT32_MAX + 1) {
        tg_set_error_in(TG_ERR_ARG, "tg_rng_permutation", "n = %lld (0..2^31 allowed)", (long long)n);
        return;
    }
    for (int64_t i = 0; i < n; i++)
        perm[i] = (int32_t)i;
    for (int64_t i = n - 1; i > 0; i--) {
        int64_t j = tg_rng_below(g, (uint32_t)(i + 1));
        int32_t tmp = perm[i];
        perm[i] = perm[j];
        perm[j] = tmp;
    }
}

/* ------------------------------------------------------------------ tensor fills */

#define TWO_PI 6.283185307179586476925286766559

typedef enum fill_kind { FILL_UNIFORM, FILL_NORMAL, FILL_BERNOULLI } fill_kind;

typedef struct fill_job {
    fill_kind kind;
    tg_dtype dt;
    int per_block;    /* elements per Philox block: 2 for f64, else 4 */
    double a, b;      /* uniform: lo, hi - lo; normal: mean, std; bernoulli: p */
    double cap;       /* uniform: the largest double below hi (rounding may reach hi) */
    float fcap;       /* the same for f32 */
    uint32_t k0, k1;  /* key */
    uint64_t stream, counter;
    char *out;        /* contiguous */
    int64_t n;
} fill_job;

#define PER_CHUNK_BATCHES 16 /* a fixed work unit: 4096 f32 or 2048 f64 elements */

static inline double u24(uint32_t w) /* [0, 1) */
{
    return (double)(int32_t)(w >> 8) * TWO_M24; /* (int32_t): a conversion SSE2 has */
}

/* Values of the first m elements of a batch whose words, in draw order, are w. */
static void batch_values(const fill_job *job, const uint32_t *w, int64_t m, double *v)
{
    const double a = job->a, b = job->b, cap = job->cap;
    if (job->per_block == 4) {
        switch (job->kind) {
        case FILL_UNIFORM:
#pragma omp simd
            for (int64_t i = 0; i < m; i++) {
                double x = a + b * u24(w[i]);
                v[i] = x < cap ? x : cap;
            }
            break;
        case FILL_BERNOULLI:
#pragma omp simd
            for (int64_t i = 0; i < m; i++)
                v[i] = u24(w[i]) < a ? 1.0 : 0.0;
            break;
        case FILL_NORMAL:
            /* float precision suffices for 4-byte results and costs half of double's */
            for (int64_t i = 0; i < m; i += 2) {
                float u1 = (float)((uint64_t)w[i] + 1) * (float)TWO_M32; /* (0, 1] */
                float th = (float)TWO_PI * ((float)(w[i + 1] >> 8) * (float)TWO_M24);
                float r = sqrtf(-2.0f * logf(u1));
                v[i] = a + b * (double)(r * cosf(th));
                v[i + 1] = a + b * (double)(r * sinf(th));
            }
            break;
        }
        return;
    }
    switch (job->kind) {
    case FILL_UNIFORM:
        for (int64_t i = 0; i < m; i++) {
            double x = a + b * u53(w[2 * i], w[2 * i + 1]);
            v[i] = x < cap ? x : cap;
        }
        break;
    case FILL_BERNOULLI:
        for (int64_t i = 0; i < m; i++)
            v[i] = u53(w[2 * i], w[2 * i + 1]) < a ? 1.0 : 0.0;
        break;
    case FILL_NORMAL:
        for (int64_t i = 0; i < m; i += 2) {
            double u1 = u53(w[2 * i], w[2 * i + 1]) + TWO_M53; /* (0, 1] */
            double th = TWO_PI * u53(w[2 * i + 2], w[2 * i + 3]);
            double r = sqrt(-2.0 * log(u1));
            v[i] = a + b * (r * cos(th));
            v[i + 1] = a + b * (r * sin(th));
        }
        break;
    }
}

/* Elements [e0, e1) of the fill; e0 is a multiple of a batch's elements. */
static void fill_range(const fill_job *job, int64_t e0, int64_t e1)
{
    uint32_t w[4 * BATCH];
    double tmp[4 * BATCH]; /* normal pairs may write v[m] for an odd m < 4 * BATCH */
    const int64_t per_batch = (int64_t)BATCH * job->per_block;
    const size_t es = tg_dtype_size(job->dt);
    for (int64_t e = e0; e < e1; e += per_batch) {
        philox_batch(job->k0, job->k1, job->counter + (uint64_t)(e / job->per_block),
                     job->stream, w);
        int64_t m = e1 - e < per_batch ? e1 - e : per_batch;
        char *dst = job->out + (size_t)e * es;
        /* f64 values go straight to the tensor, unless a pair would overrun it */
        double *v = job->dt == TG_F64 && m % 2 == 0 ? (double *)dst : tmp;
        batch_values(job, w, m, v);
        switch (job->dt) {
        case TG_F32:
#pragma omp simd
            for (int64_t i = 0; i < m; i++) {
                float f = (float)v[i];
                ((float *)dst)[i] = f < job->fcap ? f : job->fcap;
            }
            break;
        case TG_F64:
            if (v != (double *)dst)
                memcpy(dst, v, (size_t)m * sizeof(double));
            break;
        default:
            for (int64_t i = 0; i < m; i++)
                tg__store(job->dt, dst + (size_t)i * es, v[i]);
            break;
        }
    }
}

static void fill_contiguous(const fill_job *job)
{
    const int64_t chunk = (int64_t)PER_CHUNK_BATCHES * BATCH * job->per_block;
    const int64_t nchunks = (job->n + chunk - 1) / chunk;
    if (!tg_parallel_worth(job->n)) {
        fill_range(job, 0, job->n);
        return;
    }
    /* every element depends on its index only, so any split gives the same bits */
#pragma omp parallel for schedule(static)
    for (int64_t c = 0; c < nchunks; c++)
        fill_range(job, c * chunk, (c + 1) * chunk < job->n ? (c + 1) * chunk : job->n);
}

/* Fills t in its logical (row-major) order and advances g by the blocks used. */
static tg_status fill(const char *fn, tg_tensor *t, tg_rng *g, fill_job job)
{
    int i = tg__broadcast_axis(t);
    if (i >= 0) {
        char b[TG__SHAPE_STR];
        return tg_set_error_in(TG_ERR_ARG, fn, "axis %d of the target %s is broadcast (stride 0), "
                            "so its elements share memory", i, TG__SHAPE(b, t));
    }
    job.dt = t->dtype;
    job.per_block = t->dtype == TG_F64 ? 2 : 4;
    job.n = tg_tensor_numel(t);
    uint32_t key[2];
    key_words(g->key, key);
    job.k0 = key[0];
    job.k1 = key[1];
    job.stream = g->stream;
    job.counter = g->counter;
    if (job.n == 0) {
        tg__written(t);
        return TG_OK;
    }
    tg_tensor *tmp = NULL;
    if (tg_tensor_is_contiguous(t)) {
        job.out = tg__ptr(t);
    } else {
        tmp = tg__new(NULL, t->dtype, t->ndim, t->shape);
        if (!tmp)
            return tg_last_status();
        job.out = tg__ptr(tmp);
    }
    fill_contiguous(&job);
    tg_status st = TG_OK;
    if (tmp) {
        st = tg_tensor_copy_(t, tmp); /* which counts the write */
        tg_tensor_free(tmp);
    } else {
        tg__written(t);
    }
    g->counter += (uint64_t)((job.n + job.per_block - 1) / job.per_block);
    return st;
}

static fill_job uniform_job(double lo, double hi)
{
    fill_job job = {.kind = FILL_UNIFORM, .a = lo, .b = hi - lo};
    /* lo + (hi - lo) * u may round up to hi; keep the interval half-open */
    job.cap = lo < hi ? nextafter(hi, -INFINITY) : hi;
    float flo = (float)lo, fhi = (float)hi;
    job.fcap = flo < fhi ? nextafterf(fhi, -INFINITY) : fhi;
    return job;
}

tg_status tg_tensor_uniform_(tg_tensor *t, tg_rng *g, double lo, double hi)
{
    TG__CHECK_STATUS("tg_tensor_uniform_", t);
    if (!g)
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_uniform_", "generator is NULL");
    if (!(lo <= hi) || !isfinite(hi - lo))
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_uniform_", "lo %g, hi %g: expected finite "
                            "lo <= hi", lo, hi);
    return fill("tg_tensor_uniform_", t, g, uniform_job(lo, hi));
}

tg_status tg_tensor_normal_(tg_tensor *t, tg_rng *g, double mean, double std)
{
    TG__CHECK_STATUS("tg_tensor_normal_", t);
    if (!g)
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_normal_", "generator is NULL");
    if (!isfinite(mean) || !(std >= 0) || !isfinite(std))
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_normal_", "mean %g, std %g: expected finite "
                            "mean and std >= 0", mean, std);
    fill_job job = {.kind = FILL_NORMAL, .a = mean, .b = std, .fcap = INFINITY};
    return fill("tg_tensor_normal_", t, g, job);
}

tg_status tg_tensor_bernoulli_(tg_tensor *t, tg_rng *g, double p)
{
    TG__CHECK_STATUS("tg_tensor_bernoulli_", t);
    if (!g)
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_bernoulli_", "generator is NULL");
    if (!(p >= 0 && p <= 1))
        return tg_set_error_in(TG_ERR_ARG, "tg_tensor_bernoulli_", "p = %g is not in [0, 1]", p);
    fill_job job = {.kind = FILL_BERNOULLI, .a = p, .fcap = INFINITY};
    return fill("tg_tensor_bernoulli_", t, g, job);
}

static tg_tensor *make_random(const char *fn, tg_arena *ar, tg_rng *g, tg_dtype dt, int ndim,
                              const int64_t *shape, bool normal)
{
    if (!g)
        return TG__FAIL(TG_ERR_ARG, fn, "generator is NULL");
    tg_tensor *t = tg__new_named(fn, ar, dt, ndim, shape);
    if (!t)
        return NULL;
    fill_job job = normal ? (fill_job){.kind = FILL_NORMAL, .b = 1, .fcap = INFINITY}
                          : uniform_job(0, 1);
    if (fill(fn, t, g, job) != TG_OK) {
        tg_tensor_free(t);
        return NULL;
    }
    return t;
}

tg_tensor *tg_tensor_rand(tg_arena *ar, tg_rng *g, tg_dtype dt, int ndim, const int64_t *shape)
{
    return make_random("tg_tensor_rand", ar, g, dt, ndim, shape, false);
}

tg_tensor *tg_tensor_randn(tg_arena *ar, tg_rng *g, tg_dtype dt, int ndim, const int64_t *shape)
{
    return make_random("tg_tensor_randn", ar, g, dt, ndim, shape, true);
}
