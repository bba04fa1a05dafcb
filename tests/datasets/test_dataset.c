/* The data set in memory: construction from tensors, the train/validation split (sizes,
 * reproducibility, disjointness), head and select, channel statistics and presets, and
 * clean failure (no leak, NULL + message) when any allocation fails. */
#include "ds_util.h"

/* n images of 1x1x3 whose pixels spell the index (little-endian), label index % 10. */
static tg_dataset *indexed(int64_t n)
{
    tg_tensor *im = tg_tensor_empty(NULL, TG_U8, TG_DIMS(n, 1, 1, 3));
    tg_tensor *lb = tg_tensor_empty(NULL, TG_I32, TG_DIMS(n));
    uint8_t *p = tg_tensor_data(im);
    int32_t *y = tg_tensor_data(lb);
    for (int64_t i = 0; i < n; i++) {
        p[3 * i] = (uint8_t)i, p[3 * i + 1] = (uint8_t)(i >> 8), p[3 * i + 2] = (uint8_t)(i >> 16);
        y[i] = (int32_t)(i % 10);
    }
    tg_dataset *d = tg_dataset_from_tensors("indexed", im, lb, 10, NULL);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    tg_tensor_free(im); /* the data set holds its own views */
    tg_tensor_free(lb);
    return d;
}

static int32_t index_of(const tg_dataset *d, int64_t i)
{
    const uint8_t *p = (const uint8_t *)tg_tensor_data(d->images) + 3 * i;
    return p[0] | p[1] << 8 | p[2] << 16;
}

START_TEST(test_split_sizes_disjoint_reproducible)
{
    tg_dataset *full = indexed(50000);
    tg_dataset *tr, *va, *tr2, *va2, *tr3, *va3;
    ck_assert_int_eq(tg_dataset_split(full, 0.05, 0, &tr, &va), TG_OK);
    ck_assert_int_eq(tg_dataset_size(tr), 47500);
    ck_assert_int_eq(tg_dataset_size(va), 2500);
    ck_assert_str_eq(tr->name, "indexed");
    char *seen = calloc(50000, 1);
    int bad = 0; /* counted, not asserted per image: each Check assert costs a message */
    for (int64_t i = 0; i < 47500; i++) {
        int32_t k = index_of(tr, i);
        bad += ((int32_t *)tg_tensor_data(tr->labels))[i] != k % 10; /* labels follow */
        seen[k]++;
    }
    int32_t prev = -1;
    for (int64_t i = 0; i < 2500; i++) {
        int32_t k = index_of(va, i);
        bad += k <= prev; /* validation keeps the original order */
        prev = k;
        seen[k]++;
    }
    for (int i = 0; i < 50000; i++)
        bad += seen[i] != 1; /* in one of the two, once */
    ck_assert_int_eq(bad, 0);
    free(seen);
    /* the same seed gives the same split; another seed another */
    ck_assert_int_eq(tg_dataset_split(full, 0.05, 0, &tr2, &va2), TG_OK);
    ck_assert_int_eq(memcmp(tg_tensor_data(tr->images), tg_tensor_data(tr2->images), 47500 * 3), 0);
    ck_assert_int_eq(memcmp(tg_tensor_data(va->images), tg_tensor_data(va2->images), 2500 * 3), 0);
    ck_assert_int_eq(tg_dataset_split(full, 0.05, 1, &tr3, &va3), TG_OK);
    ck_assert_int_ne(memcmp(tg_tensor_data(va->images), tg_tensor_data(va3->images), 2500 * 3), 0);
    /* the training set is in permutation order: not the original order */
    ck_assert(index_of(tr, 0) != 0 || index_of(tr, 1) != 1 || index_of(tr, 2) != 2);
    tg_dataset_free(full); /* the splits are copies */
    ck_assert_int_eq(index_of(va, 2499), index_of(va2, 2499));

    /* a subset: the first n training images, sharing their storage */
    tg_dataset *sub = tg_dataset_head(tr, 1000);
    ck_assert_int_eq(tg_dataset_size(sub), 1000);
    ck_assert_ptr_eq(sub->images->storage, tr->images->storage);
    ck_assert_int_eq(index_of(sub, 999), index_of(tr, 999));
    tg_dataset_free(tr); /* the head keeps the storage alive */
    ck_assert_int_eq(index_of(sub, 999), index_of(tr2, 999));
    tg_dataset *all = tg_dataset_head(sub, 5000);
    ck_assert_int_eq(tg_dataset_size(all), 1000);
    tg_dataset *list[] = {sub, all, va, tr2, va2, tr3, va3};
    for (size_t i = 0; i < sizeof list / sizeof *list; i++)
        tg_dataset_free(list[i]);
}
END_TEST

/* tg_dataset_head's subset outlives the data set it was taken from: the images and
 * labels, the name and the class names (under ASan, a read of freed memory fails). */
START_TEST(test_head_outlives_its_data_set)
{
    tg_tensor *im = tg_tensor_zeros(NULL, TG_U8, TG_DIMS(4, 1, 1, 3));
    tg_tensor *lb = tt_tensor(TG_I32, TG_DIMS(4), (double[]){0, 1, 1, 0});
    const char *const names[] = {"cat", "dog"};
    tg_dataset *d = tg_dataset_from_tensors("pets", im, lb, 2, names);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    tg_tensor_free(im);
    tg_tensor_free(lb);
    tg_dataset *h = tg_dataset_head(d, 3);
    ck_assert_ptr_nonnull(h);
    tg_dataset_free(d);
    ck_assert_int_eq(tg_dataset_size(h), 3);
    ck_assert_str_eq(h->name, "pets");
    ck_assert_str_eq(h->class_names[1], "dog");
    ck_assert_int_eq(((const int32_t *)tg_tensor_data(h->labels))[2], 1);
    tg_dataset_free(h);
}
END_TEST

START_TEST(test_split_edges_and_errors)
{
    tg_dataset *d = indexed(10), *tr, *va;
    ck_assert_int_eq(tg_dataset_split(d, 0, 0, &tr, &va), TG_OK);
    ck_assert_int_eq(tg_dataset_size(tr), 10);
    ck_assert_int_eq(tg_dataset_size(va), 0);
    tg_dataset_free(tr);
    tg_dataset_free(va);
    ck_assert_int_eq(tg_dataset_split(d, 1.0, 0, &tr, &va), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_dataset_split", "val_fraction = 1");
    ck_assert_ptr_null(tr);
    ck_assert_ptr_null(va);
    tt_expect_error(tg_dataset_select(d, (int32_t[]){3, 10}, 2), TG_ERR_ARG, "tg_dataset_select",
                    "index 10 at position 1 is out of range 0..9");
    tg_dataset *s = tg_dataset_select(d, (int32_t[]){7, 7, 2}, 3);
    ck_assert_int_eq(index_of(s, 0), 7);
    ck_assert_int_eq(index_of(s, 1), 7);
    ck_assert_int_eq(index_of(s, 2), 2);
    tg_dataset_free(s);
    tg_dataset_free(d);
}
END_TEST

START_TEST(test_from_tensors_checks)
{
    tg_tensor *im = tg_tensor_zeros(NULL, TG_U8, TG_DIMS(2, 1, 2, 2));
    tg_tensor *f = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2, 1, 2, 2));
    tg_tensor *lb = tt_tensor(TG_I32, TG_DIMS(2), (double[]){1, 5});
    tt_expect_error(tg_dataset_from_tensors("x", f, lb, 10, NULL), TG_ERR_ARG,
                    "tg_dataset_from_tensors",
                    "images must be contiguous u8 [N,C,H,W] with 1..4 channels");
    tt_expect_error(tg_dataset_from_tensors("x", im, lb, 5, NULL), TG_ERR_ARG,
                    "tg_dataset_from_tensors", "label 5 at index 1 is out of range 0..4");
    const char *names[6] = {"a", "b", "c", "d", "e", "f"};
    tg_dataset *d = tg_dataset_from_tensors("x", im, lb, 6, names);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    ck_assert_str_eq(d->class_names[5], "f");
    tg_tensor_free(im);
    tg_tensor_free(f);
    tg_tensor_free(lb);
    tg_dataset_free(d);
    tt_expect_error(tg_dataset_load("imagenet", "x", TG_DATASET_TRAIN), TG_ERR_ARG,
                    "tg_dataset_load", "unknown data set 'imagenet'");
    ck_assert_str_eq(tg_dataset_default_dir(TG_DATASET_DEFAULT_NAME), "/usr/share/datasets/fashion-mnist");
    ck_assert_ptr_null(tg_dataset_default_dir("cifar100"));
}
END_TEST

START_TEST(test_channel_stats_and_presets)
{
    /* channel 0: half 0, half 255 (mean 0.5, std 0.5); channel 1: all 51 (0.2, 0) */
    tg_tensor *im = tg_tensor_empty(NULL, TG_U8, TG_DIMS(2, 2, 2, 2));
    uint8_t *p = tg_tensor_data(im);
    for (int i = 0; i < 2; i++)
        for (int k = 0; k < 4; k++) {
            p[i * 8 + k] = (uint8_t)(k % 2 ? 255 : 0);
            p[i * 8 + 4 + k] = 51;
        }
    tg_tensor *lb = tg_tensor_zeros(NULL, TG_I32, TG_DIMS(2));
    tg_dataset *d = tg_dataset_from_tensors("x", im, lb, 1, NULL);
    tg_normalization nm;
    ck_assert_int_eq(tg_dataset_channel_stats(d, &nm), TG_OK);
    ck_assert_int_eq(nm.channels, 2);
    ck_assert_float_eq_tol(nm.mean[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(nm.std[0], 0.5f, 1e-7f);
    ck_assert_float_eq_tol(nm.mean[1], 0.2f, 1e-7f);
    ck_assert_float_eq_tol(nm.std[1], 0.0f, 1e-7f);
    ck_assert_ptr_eq(tg_normalization_preset("cifar100"), &tg_norm_cifar);
    ck_assert_ptr_eq(tg_normalization_preset("cifar10"), &tg_norm_cifar);
    ck_assert_ptr_eq(tg_normalization_preset("fashion-mnist"), &tg_norm_fashion_mnist);
    ck_assert_ptr_null(tg_normalization_preset("mnist"));
    ck_assert_float_eq(tg_norm_cifar.std[2], 0.2010f);
    tg_tensor_free(im);
    tg_tensor_free(lb);
    tg_dataset_free(d);
}
END_TEST

/* ------------------------------------------------------------------ failing allocations */

START_TEST(test_loaders_fail_cleanly_on_any_allocation)
{
    /* write a CIFAR-100 file with names and a gzip IDX pair, then fail the k-th
     * allocation of each load for every k: NULL, an error, and nothing leaked */
    char *dir = ds_tmpdir();
    uint8_t rec[2 * 3074] = {0};
    rec[1] = 7, rec[3074 + 1] = 9;
    ds_write(dir, "test.bin", rec, sizeof rec);
    char names[400] = "";
    for (int i = 0; i < 100; i++)
        sprintf(names + strlen(names), "n%d\n", i);
    ds_write(dir, "fine_label_names.txt", names, strlen(names));
    uint8_t im[16 + 2 * 4] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 2};
    uint8_t lb[8 + 2] = {0, 0, 8, 1, 0, 0, 0, 2, 3, 4};
    ds_write_gz(dir, "t10k-images-idx3-ubyte.gz", im, sizeof im);
    ds_write_gz(dir, "t10k-labels-idx1-ubyte.gz", lb, sizeof lb);
    for (int which = 0; which < 3; which++) {
        bool done = false;
        int64_t fail_at;
        for (fail_at = 0; !done; fail_at++) {
            tt_count_allocations();
            tt_fail_in = fail_at + 1; /* allocation number fail_at, from 0 */
            tg_clear_error();
            tg_dataset *d = which == 0   ? tg_dataset_load_cifar100(dir, TG_DATASET_TEST, false)
                            : which == 1 ? tg_dataset_load_fashion_mnist(dir, TG_DATASET_TEST)
                                         : NULL;
            if (which == 2) { /* split and select */
                tg_set_allocator(NULL);
                tg_dataset *full = indexed(20);
                tt_count_allocations();
                tt_fail_in = fail_at + 1;
                tg_dataset *va = NULL;
                if (tg_dataset_split(full, 0.25, 0, &d, &va) == TG_OK)
                    tg_dataset_free(va);
                else
                    ck_assert_ptr_null(va);
                tg_dataset_free(d);
                tg_set_allocator(NULL);
                tg_dataset_free(full);
                tg_set_allocator(tt_counting_allocator());
                d = NULL;
                done = tt_fail_in > 0; /* the failure never came: past the last allocation */
            } else if (d) {
                done = true; /* fail_at is past the last allocation */
                tg_dataset_free(d);
            } else {
                ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
            }
            ck_assert_msg(tt_n_alloc == tt_n_free,
                          "load %d failing allocation %lld: %lld allocations, %lld frees", which,
                          (long long)fail_at, (long long)tt_n_alloc, (long long)tt_n_free);
        }
        ck_assert_int_gt(fail_at, 2);
    }
    tg_set_allocator(NULL);
    ds_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datasets/dataset");
    TCase *tc = tt_tcase("dataset");
    tcase_add_test(tc, test_split_sizes_disjoint_reproducible);
    tcase_add_test(tc, test_split_edges_and_errors);
    tcase_add_test(tc, test_head_outlives_its_data_set);
    tcase_add_test(tc, test_from_tensors_checks);
    tcase_add_test(tc, test_channel_stats_and_presets);
    tcase_add_test(tc, test_loaders_fail_cleanly_on_any_allocation);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
