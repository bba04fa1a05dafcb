/* The real Fashion-MNIST files, where Debian's dataset-fashion-mnist put them: counts,
 * shapes, the label histogram, and the normalisation constants recomputed. Skipped
 * (passing) when the package is not installed. One test: the train images are 26 MB of
 * gzip and are read once. */
#include "ds_util.h"

START_TEST(test_real_fashion_mnist)
{
    const char *dir = tg_dataset_default_dir(TG_DATASET_DEFAULT_NAME);
    struct stat st;
    if (stat(ds_path(dir, "train-images-idx3-ubyte.gz"), &st) != 0) {
        fprintf(stderr, "%s: not installed, skipped\n", dir);
        return;
    }
    tg_dataset *tr = tg_dataset_load(TG_DATASET_DEFAULT_NAME, NULL, TG_DATASET_TRAIN);
    tg_dataset *te = tg_dataset_load(TG_DATASET_DEFAULT_NAME, NULL, TG_DATASET_TEST);
    ck_assert_msg(tr && te, "%s", tg_last_error());
    tt_assert_shape(tr->images, 60000, 1, 28, 28);
    tt_assert_shape(tr->labels, 60000);
    tt_assert_shape(te->images, 10000, 1, 28, 28);
    tt_assert_shape(te->labels, 10000);
    ck_assert_int_eq(tr->num_classes, 10);
    ck_assert_str_eq(tr->class_names[9], "Ankle boot");
    int64_t hist[2][10] = {{0}};
    for (int s = 0; s < 2; s++) {
        const tg_dataset *d = s ? te : tr;
        const int32_t *y = tg_tensor_data(d->labels);
        for (int64_t i = 0; i < tg_dataset_size(d); i++)
            hist[s][y[i]]++;
    }
    for (int c = 0; c < 10; c++) {
        ck_assert_int_eq(hist[0][c], 6000);
        ck_assert_int_eq(hist[1][c], 1000);
    }
    /* the preset is what the training set gives */
    tg_normalization nm;
    ck_assert_int_eq(tg_dataset_channel_stats(tr, &nm), TG_OK);
    ck_assert_float_eq_tol(nm.mean[0], tg_norm_fashion_mnist.mean[0], 1e-7f);
    ck_assert_float_eq_tol(nm.std[0], tg_norm_fashion_mnist.std[0], 1e-7f);
    /* the study's split scheme on it: 57,000 / 3,000 */
    tg_dataset *a, *b;
    ck_assert_int_eq(tg_dataset_split(tr, 0.05, 0, &a, &b), TG_OK);
    ck_assert_int_eq(tg_dataset_size(a), 57000);
    ck_assert_int_eq(tg_dataset_size(b), 3000);
    tg_dataset_free(a);
    tg_dataset_free(b);
    tg_dataset_free(tr);
    tg_dataset_free(te);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datasets/fashion_mnist");
    TCase *tc = tt_tcase("fashion_mnist");
    tcase_add_test(tc, test_real_fashion_mnist);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
