/* Batches: every image once per epoch in an order reproducible from (rng, epoch);
 * crops that are translations within the padding, flips that are exact mirrors,
 * normalisation to the stated mean and std, Pad before Normalize; the same bits for 1
 * and 2 threads, with and without prefetch, for any batch size; no allocation per batch. */
#include "ds_util.h"

/* n images of c x h x w, from fn(i, ch, y, x); label i % 10. */
static tg_dataset *make(int64_t n, int64_t c, int64_t h, int64_t w,
                        uint8_t (*fn)(int64_t, int64_t, int64_t, int64_t))
{
    tg_tensor *im = tg_tensor_empty(NULL, TG_U8, TG_DIMS(n, c, h, w));
    tg_tensor *lb = tg_tensor_empty(NULL, TG_I32, TG_DIMS(n));
    uint8_t *p = tg_tensor_data(im);
    for (int64_t i = 0; i < n; i++) {
        ((int32_t *)tg_tensor_data(lb))[i] = (int32_t)(i % 10);
        for (int64_t ch = 0; ch < c; ch++)
            for (int64_t y = 0; y < h; y++)
                for (int64_t x = 0; x < w; x++)
                    *p++ = fn(i, ch, y, x);
    }
    tg_dataset *d = tg_dataset_from_tensors("test", im, lb, 10, NULL);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    tg_tensor_free(im);
    tg_tensor_free(lb);
    return d;
}

static uint8_t px_hash(int64_t i, int64_t c, int64_t y, int64_t x)
{
    uint64_t h = (uint64_t)(((i * 3 + c) * 64 + y) * 64 + x) * 0x9E3779B97F4A7C15u;
    return (uint8_t)(h >> 56);
}

static uint8_t px_255(int64_t i, int64_t c, int64_t y, int64_t x)
{
    (void)i, (void)c, (void)y, (void)x;
    return 255;
}

/* channel 0 says the row (1..), channel 1 the column (1..), channel 2 is 200 */
static uint8_t px_coord(int64_t i, int64_t c, int64_t y, int64_t x)
{
    (void)i;
    return (uint8_t)(c == 0 ? y + 1 : c == 1 ? x + 1 : 200);
}

static tg_batcher *batcher(const tg_dataset *d, tg_batcher_config cfg)
{
    tg_batcher *b = tg_batcher_new(d, &cfg);
    ck_assert_msg(b != NULL, "%s", tg_last_error());
    return b;
}

/* One epoch's batches, concatenated: x (floats) and the data set indices. */
static float *run_epoch(tg_batcher *b, int64_t epoch, int64_t n, int64_t img, int32_t *order)
{
    float *all = malloc((size_t)(n * img) * sizeof *all);
    int64_t at = 0;
    tg_tensor *x, *y;
    ck_assert_int_eq(tg_batcher_start_epoch(b, epoch), TG_OK);
    while (tg_batcher_next(b, &x, &y)) {
        int64_t k;
        const int32_t *idx = tg_batcher_indices(b, &k);
        ck_assert_int_eq(x->shape[0], k);
        ck_assert_int_eq(tg_tensor_numel(x), k * img);
        ck_assert_int_le(at + k, n);
        memcpy(all + at * img, tg_tensor_data(x), (size_t)(k * img) * sizeof(float));
        if (order)
            memcpy(order + at, idx, (size_t)k * sizeof *idx);
        at += k;
    }
    ck_assert_int_eq(at, n);
    return all;
}

START_TEST(test_epochs_cover_every_image_once)
{
    tg_dataset *d = make(1003, 1, 2, 2, px_hash);
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 100, .shuffle = true, .rng = tg_rng_new(7)});
    ck_assert_int_eq(tg_batcher_num_batches(b), 11);
    tg_tensor *x, *y;
    ck_assert(!tg_batcher_next(b, &x, &y)); /* no epoch started */
    int32_t orders[3][1003];
    for (int e = 0; e < 3; e++) {
        ck_assert_int_eq(tg_batcher_start_epoch(b, e), TG_OK);
        char seen[1003] = {0};
        int64_t at = 0, nb = 0;
        while (tg_batcher_next(b, &x, &y)) {
            int64_t k;
            const int32_t *idx = tg_batcher_indices(b, &k);
            tt_assert_shape(x, k, 1, 2, 2);
            tt_assert_shape(y, k);
            ck_assert_int_eq(x->dtype, TG_F32);
            ck_assert_int_eq(y->dtype, TG_I32);
            ck_assert_int_eq(k, nb == 10 ? 3 : 100); /* the last partial batch is kept */
            int bad = 0;
            for (int64_t j = 0; j < k; j++) {
                bad += ((int32_t *)tg_tensor_data(y))[j] != idx[j] % 10; /* labels follow */
                bad += seen[idx[j]]++ != 0;                              /* once each */
                orders[e][at++] = idx[j];
            }
            ck_assert_int_eq(bad, 0);
            nb++;
        }
        ck_assert_int_eq(nb, 11);
        ck_assert_int_eq(at, 1003);
        ck_assert(!tg_batcher_next(b, &x, &y));
    }
    ck_assert_int_ne(memcmp(orders[0], orders[1], sizeof orders[0]), 0);
    /* epoch 2's order depends on (rng, 2) only: a fresh batcher starting there agrees */
    tg_batcher *b2 = batcher(d, (tg_batcher_config){.batch_size = 33, .shuffle = true, .rng = tg_rng_new(7)});
    int32_t again[1003];
    free(run_epoch(b2, 2, 1003, 4, again));
    ck_assert_int_eq(memcmp(orders[2], again, sizeof again), 0);
    /* without shuffle, the data set's order */
    tg_batcher *b3 = batcher(d, (tg_batcher_config){.batch_size = 1000});
    free(run_epoch(b3, 5, 1003, 4, again));
    for (int i = 0; i < 1003; i++)
        ck_assert_int_eq(again[i], i);
    tg_batcher_free(b);
    tg_batcher_free(b2);
    tg_batcher_free(b3);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_crop_of_ones_has_a_thin_zero_border)
{
    tg_dataset *d = make(400, 3, 32, 32, px_255);
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 64, .crop_padding = 4, .rng = tg_rng_new(1)});
    float *x = run_epoch(b, 0, 400, 3 * 32 * 32, NULL);
    int shifts_seen[9][9] = {{0}};
    for (int i = 0; i < 400; i++) {
        const float *im = x + (size_t)i * 3072;
        /* the ones form one rectangle [y0, y1) x [x0, x1), the same in each channel */
        int y0 = 32, y1 = 0, x0 = 32, x1 = 0;
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++)
                if (im[y * 32 + xx] == 1.0f) {
                    y0 = y < y0 ? y : y0, y1 = y + 1 > y1 ? y + 1 : y1;
                    x0 = xx < x0 ? xx : x0, x1 = xx + 1 > x1 ? xx + 1 : x1;
                }
        int bad = 0; /* counted, not asserted per pixel: Check's asserts are slow */
        for (int c = 0; c < 3; c++)
            for (int y = 0; y < 32; y++)
                for (int xx = 0; xx < 32; xx++) {
                    bool inside = y >= y0 && y < y1 && xx >= x0 && xx < x1;
                    bad += im[c * 1024 + y * 32 + xx] != (inside ? 1.0f : 0.0f);
                }
        ck_assert_msg(bad == 0, "image %d: %d pixels outside the rectangle disagree", i, bad);
        /* a border of at most 4 on one side of each axis: the crop offset */
        ck_assert_int_le(y0, 4);
        ck_assert_int_ge(y1, 28);
        ck_assert(y0 == 0 || y1 == 32);
        ck_assert(x0 == 0 || x1 == 32);
        ck_assert_int_le(x0, 4);
        ck_assert_int_ge(x1, 28);
        shifts_seen[y0 - (32 - y1) + 4][x0 - (32 - x1) + 4]++;
    }
    int seen = 0;
    for (int i = 0; i < 9; i++)
        for (int j = 0; j < 9; j++)
            seen += shifts_seen[i][j] > 0;
    ck_assert_int_ge(seen, 75); /* 400 draws of 81 offsets: almost all appear */
    free(x);
    tg_batcher_free(b);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_crop_and_flip_are_translations_and_mirrors)
{
    /* from each output pixel's (row, column) code, the source pixel it came from: a
     * crop is one shift (dy, dx) in [-4, 4]^2, a flip mirrors columns; outside the
     * image the pixel is 0 in every channel */
    tg_dataset *d = make(600, 3, 32, 32, px_coord);
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 100, .crop_padding = 4, .flip = true,
                                                   .shuffle = true, .rng = tg_rng_new(3)});
    float *x = run_epoch(b, 1, 600, 3072, NULL);
    int flips = 0;
    for (int i = 0; i < 600; i++) {
        const float *im = x + (size_t)i * 3072;
        int dy = 99, dx = 99, flip = -1;
        for (int y = 0; y < 32 && flip < 0; y++)
            for (int xx = 0; xx < 31; xx++) {
                int r = (int)lroundf(im[y * 32 + xx] * 255), c0 = (int)lroundf(im[1024 + y * 32 + xx] * 255),
                    c1 = (int)lroundf(im[1024 + y * 32 + xx + 1] * 255);
                if (r && c0 && c1) {
                    flip = c1 < c0;
                    dy = r - 1 - y;
                    dx = flip ? c0 - 1 - (31 - xx) : c0 - 1 - xx;
                    break;
                }
            }
        ck_assert_int_ge(flip, 0);
        ck_assert_int_le(abs(dy), 4);
        ck_assert_int_le(abs(dx), 4);
        flips += flip;
        int bad = 0;
        for (int y = 0; y < 32; y++)
            for (int xx = 0; xx < 32; xx++) {
                int sy = y + dy, sx = (flip ? 31 - xx : xx) + dx;
                bool in = sy >= 0 && sy < 32 && sx >= 0 && sx < 32;
                float want[3] = {in ? (float)(sy + 1) / 255.0f : 0, in ? (float)(sx + 1) / 255.0f : 0,
                                 in ? 200.0f / 255.0f : 0};
                for (int c = 0; c < 3; c++)
                    bad += im[c * 1024 + y * 32 + xx] != want[c];
            }
        ck_assert_msg(bad == 0, "image %d (dy %d, dx %d, flip %d): %d values differ", i, dy, dx, flip, bad);
    }
    ck_assert_int_gt(flips, 240); /* p = 0.5 over 600 images */
    ck_assert_int_lt(flips, 360);
    free(x);
    tg_batcher_free(b);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_flip_alone_is_an_exact_mirror)
{
    tg_dataset *d = make(200, 3, 5, 7, px_hash);
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 200, .flip = true, .rng = tg_rng_new(9)});
    float *x = run_epoch(b, 0, 200, 105, NULL);
    const uint8_t *src = tg_tensor_data(d->images);
    int mirrored = 0;
    for (int i = 0; i < 200; i++) {
        bool same = true, mirror = true;
        for (int k = 0; k < 105; k++) {
            int c = k / 35, y = k / 7 % 5, xx = k % 7;
            float v = x[i * 105 + k];
            same &= v == (float)src[i * 105 + k] / 255.0f;
            mirror &= v == (float)src[i * 105 + c * 35 + y * 7 + (6 - xx)] / 255.0f;
        }
        ck_assert(same || mirror);
        mirrored += mirror;
    }
    ck_assert_int_gt(mirrored, 70);
    ck_assert_int_lt(mirrored, 130);
    free(x);
    tg_batcher_free(b);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_normalisation_gives_mean_0_std_1)
{
    tg_dataset *d = make(300, 3, 8, 8, px_hash);
    tg_normalization nm;
    ck_assert_int_eq(tg_dataset_channel_stats(d, &nm), TG_OK);
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 128, .norm = &nm});
    nm.mean[0] = 99; /* the batcher copied it */
    float *x = run_epoch(b, 0, 300, 192, NULL);
    for (int c = 0; c < 3; c++) {
        double s = 0, s2 = 0;
        for (int i = 0; i < 300; i++)
            for (int k = 0; k < 64; k++) {
                double v = x[i * 192 + c * 64 + k];
                s += v, s2 += v * v;
            }
        double mean = s / 19200, std = sqrt(s2 / 19200 - mean * mean);
        ck_assert_double_eq_tol(mean, 0, 1e-5);
        ck_assert_double_eq_tol(std, 1, 1e-5);
    }
    free(x);
    tg_batcher_free(b);
    /* one pixel, operation for operation as ToTensor then Normalize in f32 */
    b = batcher(d, (tg_batcher_config){.batch_size = 1, .norm = &tg_norm_cifar});
    tg_tensor *xt, *y;
    ck_assert_int_eq(tg_batcher_start_epoch(b, 0), TG_OK);
    ck_assert(tg_batcher_next(b, &xt, &y));
    const uint8_t *src = tg_tensor_data(d->images);
    int bad = 0;
    for (int k = 0; k < 192; k++) {
        int c = k / 64;
        float want = ((float)src[k] / 255.0f - tg_norm_cifar.mean[c]) / tg_norm_cifar.std[c];
        bad += ((float *)tg_tensor_data(xt))[k] != want;
    }
    ck_assert_int_eq(bad, 0);
    tg_batcher_free(b);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_pad_to_32_before_normalize)
{
    /* Pad -> ToTensor -> Normalize: the 2-pixel margin holds (0 - mean) / std */
    tg_dataset *d = make(3, 1, 28, 28, px_255);
    const tg_normalization *nm = &tg_norm_fashion_mnist;
    tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 3, .pad_to = 32, .norm = nm});
    tg_tensor *x, *y;
    ck_assert_int_eq(tg_batcher_start_epoch(b, 0), TG_OK);
    ck_assert(tg_batcher_next(b, &x, &y));
    tt_assert_shape(x, 3, 1, 32, 32);
    float pad = (0.0f - nm->mean[0]) / nm->std[0], one = (1.0f - nm->mean[0]) / nm->std[0];
    int bad = 0;
    for (int i = 0; i < 3; i++)
        for (int yy = 0; yy < 32; yy++)
            for (int xx = 0; xx < 32; xx++) {
                bool in = yy >= 2 && yy < 30 && xx >= 2 && xx < 30;
                bad += ((float *)tg_tensor_data(x))[(i * 32 + yy) * 32 + xx] != (in ? one : pad);
            }
    ck_assert_int_eq(bad, 0);
    tg_batcher_free(b);
    tt_expect_error(tg_batcher_new(d, &(tg_batcher_config){.batch_size = 3, .pad_to = 16}),
                    TG_ERR_ARG, "tg_batcher_new", "pad_to = 16, but the images are 28x28");
    tt_expect_error(tg_batcher_new(d, &(tg_batcher_config){.batch_size = 0}), TG_ERR_ARG,
                    "tg_batcher_new", "batch_size = 0 (at least 1)");
    tt_expect_error(tg_batcher_new(d, &(tg_batcher_config){.batch_size = 1, .norm = &tg_norm_cifar}),
                    TG_ERR_ARG, "tg_batcher_new", "normalisation for 3 channels, images have 1");
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_same_bits_for_threads_prefetch_and_batch_size)
{
    tg_dataset *d = make(1000, 3, 32, 32, px_hash);
    tg_batcher_config cfg = {.batch_size = 100, .shuffle = true, .crop_padding = 4, .flip = true,
                             .norm = &tg_norm_cifar, .rng = tg_rng_split(&(tg_rng){5, 0, 0}, 2)};
    const int64_t img = 3072;
    tg_set_num_threads(1);
    tg_batcher *b = batcher(d, cfg);
    float *ref0 = run_epoch(b, 0, 1000, img, NULL), *ref3 = run_epoch(b, 3, 1000, img, NULL);
    tg_batcher_free(b);
    tg_set_num_threads(2);
    for (int variant = 0; variant < 3; variant++) {
        tg_batcher_config c = cfg;
        c.prefetch = variant == 1;
        c.batch_size = variant == 2 ? 37 : 100;
        b = batcher(d, c);
        float *x0 = run_epoch(b, 0, 1000, img, NULL), *x3 = run_epoch(b, 3, 1000, img, NULL);
        ck_assert_msg(memcmp(ref0, x0, 1000 * img * sizeof(float)) == 0, "variant %d epoch 0", variant);
        ck_assert_msg(memcmp(ref3, x3, 1000 * img * sizeof(float)) == 0, "variant %d epoch 3", variant);
        ck_assert_int_ne(memcmp(x0, x3, 1000 * img * sizeof(float)), 0);
        free(x0), free(x3);
        tg_batcher_free(b);
    }
    free(ref0), free(ref3);
    tg_dataset_free(d);
}
END_TEST

/* ------------------------------------------------------------------ no allocation per batch */

START_TEST(test_no_allocation_per_batch)
{
    tt_count_allocations();
    tg_dataset *d = make(250, 3, 32, 32, px_hash);
    for (int prefetch = 0; prefetch < 2; prefetch++) {
        tg_batcher *b = batcher(d, (tg_batcher_config){.batch_size = 100, .shuffle = true, .crop_padding = 4,
                                                       .flip = true, .prefetch = prefetch});
        int64_t before = tt_n_alloc;
        tg_tensor *x, *y;
        for (int e = 0; e < 3; e++) {
            ck_assert_int_eq(tg_batcher_start_epoch(b, e), TG_OK);
            int nb = 0;
            while (tg_batcher_next(b, &x, &y))
                nb++;
            ck_assert_int_eq(nb, 3);
            ck_assert_int_eq(x->shape[0], 50);
        }
        /* starting an epoch and abandoning it halfway is fine too */
        ck_assert_int_eq(tg_batcher_start_epoch(b, 9), TG_OK);
        ck_assert(tg_batcher_next(b, &x, &y));
        ck_assert_int_eq(tt_n_alloc, before);
        tg_batcher_free(b);
    }
    tg_dataset_free(d);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
    tg_set_allocator(NULL);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datasets/batches");
    TCase *tc = tt_tcase("batches");
    tcase_add_test(tc, test_epochs_cover_every_image_once);
    tcase_add_test(tc, test_crop_of_ones_has_a_thin_zero_border);
    tcase_add_test(tc, test_crop_and_flip_are_translations_and_mirrors);
    tcase_add_test(tc, test_flip_alone_is_an_exact_mirror);
    tcase_add_test(tc, test_normalisation_gives_mean_0_std_1);
    tcase_add_test(tc, test_pad_to_32_before_normalize);
    tcase_add_test(tc, test_same_bits_for_threads_prefetch_and_batch_size);
    tcase_add_test(tc, test_no_allocation_per_batch);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
