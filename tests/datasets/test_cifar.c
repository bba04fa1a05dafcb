/* CIFAR-10 and CIFAR-100 binary files: small files the tests write (a few records with
 * known pixels and labels) read back exactly, from the archive's folder or its parent,
 * with class names; and every way a file can be wrong gives its message. */
#include "ds_util.h"
#include "internal.h"

#define REC100 3074
#define REC10 3073

static uint8_t pixel(int record, int k)
{
    return (uint8_t)(record * 31 + k * 7);
}

/* n CIFAR-100 records: coarse (3r mod 20), fine (37r + 5 mod 100), known pixels. */
static uint8_t *cifar100_records(int n)
{
    uint8_t *p = malloc((size_t)n * REC100);
    for (int r = 0; r < n; r++) {
        uint8_t *rec = p + (size_t)r * REC100;
        rec[0] = (uint8_t)(3 * r % 20);
        rec[1] = (uint8_t)((37 * r + 5) % 100);
        for (int k = 0; k < 3072; k++)
            rec[2 + k] = pixel(r, k);
    }
    return p;
}

/* n CIFAR-10 records numbered from `first` (label first+r mod 10). */
static uint8_t *cifar10_records(int first, int n)
{
    uint8_t *p = malloc((size_t)n * REC10);
    for (int r = 0; r < n; r++) {
        uint8_t *rec = p + (size_t)r * REC10;
        rec[0] = (uint8_t)((first + r) % 10);
        for (int k = 0; k < 3072; k++)
            rec[1 + k] = pixel(first + r, k);
    }
    return p;
}

static void expect_images(const tg_dataset *d, int first, int n)
{
    tt_assert_shape(d->images, n, 3, 32, 32);
    tt_assert_shape(d->labels, n);
    const uint8_t *px = tg_tensor_data(d->images);
    int bad = 0; /* counted, not asserted per byte: each Check assert costs a message */
    for (int r = 0; r < n; r++)
        for (int k = 0; k < 3072; k++)
            bad += px[(size_t)r * 3072 + k] != pixel(first + r, k);
    ck_assert_int_eq(bad, 0);
}

static char *names_text(int n, const char *stem)
{
    char *s = malloc((size_t)n * 32 + 8);
    size_t at = 0;
    for (int i = 0; i < n; i++)
        at += (size_t)sprintf(s + at, "%s_%d\n", stem, i);
    strcpy(s + at, "\n"); /* batches.meta.txt ends with a blank line */
    return s;
}

START_TEST(test_cifar100_fine_coarse_names)
{
    char *dir = ds_tmpdir();
    uint8_t *recs = cifar100_records(3);
    ds_write(dir, "train.bin", recs, 3 * REC100);
    char *fine = names_text(100, "fine"), *coarse = names_text(20, "coarse");
    ds_write(dir, "fine_label_names.txt", fine, strlen(fine));
    ds_write(dir, "coarse_label_names.txt", coarse, strlen(coarse));

    tg_dataset *d = tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    expect_images(d, 0, 3);
    ck_assert_str_eq(d->name, "cifar100");
    ck_assert_int_eq(d->num_classes, 100);
    for (int r = 0; r < 3; r++)
        ck_assert_int_eq(((int32_t *)tg_tensor_data(d->labels))[r], (37 * r + 5) % 100);
    ck_assert_ptr_nonnull(d->class_names);
    ck_assert_str_eq(d->class_names[0], "fine_0");
    ck_assert_str_eq(d->class_names[99], "fine_99");
    tg_dataset_free(d);

    d = tg_dataset_load("cifar100-coarse", dir, TG_DATASET_TRAIN);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    ck_assert_int_eq(d->num_classes, 20);
    for (int r = 0; r < 3; r++)
        ck_assert_int_eq(((int32_t *)tg_tensor_data(d->labels))[r], 3 * r % 20);
    ck_assert_str_eq(d->class_names[19], "coarse_19");
    tg_dataset_free(d);
    free(fine);
    free(coarse);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar100_archive_folder_or_parent)
{
    char *dir = ds_tmpdir();
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/cifar-100-binary", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    uint8_t *recs = cifar100_records(2);
    ds_write(sub, "test.bin", recs, 2 * REC100);
    /* the parent (what --data-dir usually names) and the archive's folder both work */
    tg_dataset *a = tg_dataset_load("cifar100", dir, TG_DATASET_TEST);
    tg_dataset *b = tg_dataset_load_cifar100(sub, TG_DATASET_TEST, false);
    ck_assert_msg(a && b, "%s", tg_last_error());
    expect_images(a, 0, 2);
    expect_images(b, 0, 2);
    ck_assert_ptr_null(a->class_names); /* no names file: no names */
    tg_dataset_free(a);
    tg_dataset_free(b);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar10_batches_in_order)
{
    char *dir = ds_tmpdir();
    char sub[1024];
    snprintf(sub, sizeof sub, "%s/cifar-10-batches-bin", dir);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    for (int i = 0; i < 5; i++) { /* batch i holds records 2i, 2i+1 */
        char name[32];
        snprintf(name, sizeof name, "data_batch_%d.bin", i + 1);
        uint8_t *recs = cifar10_records(2 * i, 2);
        ds_write(sub, name, recs, 2 * REC10);
        free(recs);
    }
    uint8_t *t = cifar10_records(100, 1);
    ds_write(sub, "test_batch.bin", t, REC10);
    free(t);
    const char *meta = "airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n\n";
    ds_write(sub, "batches.meta.txt", meta, strlen(meta));

    tg_dataset *d = tg_dataset_load("cifar10", dir, TG_DATASET_TRAIN);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    expect_images(d, 0, 10);
    for (int r = 0; r < 10; r++)
        ck_assert_int_eq(((int32_t *)tg_tensor_data(d->labels))[r], r % 10);
    ck_assert_str_eq(d->class_names[1], "automobile");
    ck_assert_str_eq(d->class_names[9], "truck");
    tg_dataset_free(d);
    d = tg_dataset_load_cifar10(sub, TG_DATASET_TEST);
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    expect_images(d, 100, 1);
    ck_assert_int_eq(((int32_t *)tg_tensor_data(d->labels))[0], 0);
    tg_dataset_free(d);

    /* one batch missing: the message names it */
    unlink(ds_path(sub, "data_batch_3.bin"));
    char want[2048];
    snprintf(want, sizeof want, "datasets/cifar: %s/data_batch_3.bin: cannot open: No such file or directory",
             sub);
    tt_expect_message(tg_dataset_load_cifar10(dir, TG_DATASET_TRAIN), TG_ERR_IO, want);
    /* a names file with the wrong count */
    ds_write(sub, "batches.meta.txt", "cat\ndog\n", 8);
    snprintf(want, sizeof want, "datasets/cifar: %s/batches.meta.txt: fewer class names, expected 10 (one per line)",
             sub);
    tt_expect_message(tg_dataset_load_cifar10(dir, TG_DATASET_TEST), TG_ERR_FORMAT, want);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_missing_and_empty)
{
    char *dir = ds_tmpdir();
    char want[2048];
    snprintf(want, sizeof want,
             "datasets/cifar: %s/train.bin: no such file (nor %s/cifar-100-binary/train.bin): point "
             "the data directory at the unpacked archive",
             dir, dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_IO, want);

    ds_write(dir, "train.bin", "", 0);
    snprintf(want, sizeof want, "datasets/cifar: %s/train.bin: empty file (expected 3074-byte records)", dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_FORMAT, want);

    char sub[1024];
    snprintf(sub, sizeof sub, "%s/test.bin", dir); /* a directory where the file should be */
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    snprintf(want, sizeof want, "datasets/cifar: %s/test.bin: ", dir); /* "not a regular file" */
    ds_expect_error_has(tg_dataset_load_cifar100(dir, TG_DATASET_TEST, false), TG_ERR_IO, want);
    tt_expect_error(tg_dataset_load("cifar100", NULL, TG_DATASET_TRAIN), TG_ERR_ARG,
                    "tg_dataset_load", "cifar100 has no default data directory");
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_fifo_is_refused_not_waited_on)
{
    /* a FIFO where a record file or the class names belong: refused at once, for a reader
     * that opened it would wait for a writer forever */
    char *dir = ds_tmpdir();
    char want[1200];
    alarm(10);
    ck_assert_int_eq(mkfifo(ds_path(dir, "train.bin"), 0600), 0);
    snprintf(want, sizeof want, "datasets/cifar: %s/train.bin: not a regular file", dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_IO, want);
    unlink(ds_path(dir, "train.bin"));
    uint8_t *recs = cifar100_records(2);
    ds_write(dir, "train.bin", recs, 2 * REC100);
    ck_assert_int_eq(mkfifo(ds_path(dir, "fine_label_names.txt"), 0600), 0);
    snprintf(want, sizeof want, "datasets/cifar: %s/fine_label_names.txt: not a regular file", dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_IO, want);
    alarm(0);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_truncated_mid_record)
{
    char *dir = ds_tmpdir();
    uint8_t *recs = cifar100_records(4);
    ds_write(dir, "train.bin", recs, 10000); /* 3 records and 778 bytes of the fourth */
    char want[2048];
    snprintf(want, sizeof want,
             "datasets/cifar: %s/train.bin: 10000 bytes is not a whole number of 3074-byte records "
             "(record 3 is cut at byte 9222)",
             dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_FORMAT, want);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_label_out_of_range)
{
    char *dir = ds_tmpdir();
    uint8_t *recs = cifar100_records(3);
    recs[REC100 + 1] = 200; /* record 1's fine label */
    ds_write(dir, "train.bin", recs, 3 * REC100);
    char want[2048];
    snprintf(want, sizeof want,
             "datasets/cifar: %s/train.bin: record 1 (byte 3075): fine label 200 is out of range 0..99", dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_FORMAT, want);
    /* both label bytes are checked whichever one is used */
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, true), TG_ERR_FORMAT, want);
    recs[REC100 + 1] = 5;
    recs[2 * REC100] = 20; /* record 2's coarse label */
    ds_write(dir, "train.bin", recs, 3 * REC100);
    snprintf(want, sizeof want,
             "datasets/cifar: %s/train.bin: record 2 (byte 6148): coarse label 20 is out of range 0..19", dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TRAIN, false), TG_ERR_FORMAT, want);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_wrong_format)
{
    /* CIFAR-10 records where CIFAR-100 ones belong: 2 x 3073 bytes is no whole number
     * of 3074-byte records */
    char *dir = ds_tmpdir();
    uint8_t *recs = cifar10_records(0, 2);
    ds_write(dir, "test.bin", recs, 2 * REC10);
    char want[2048];
    snprintf(want, sizeof want,
             "datasets/cifar: %s/test.bin: 6146 bytes is not a whole number of 3074-byte records "
             "(record 1 is cut at byte 3074)",
             dir);
    tt_expect_message(tg_dataset_load_cifar100(dir, TG_DATASET_TEST, false), TG_ERR_FORMAT, want);
    free(recs);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_cifar_parse_every_length)
{
    /* the in-memory parser on every prefix of a 2-record buffer: only whole records
     * parse; everything else fails with a message, without reading past the end */
    uint8_t *recs = cifar100_records(2);
    for (size_t n = 0; n <= 2 * REC100; n++) {
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, recs, n);
        tg_dataset *d = tg__cifar_parse("mem", copy, n, &tg__cifar100_fine_format);
        if (n == REC100 || n == 2 * REC100) {
            ck_assert_msg(d != NULL, "%s", tg_last_error());
            ck_assert_int_eq(tg_dataset_size(d), (int64_t)(n / REC100));
        } else {
            ck_assert_ptr_null(d);
            ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
        }
        tg_dataset_free(d);
        free(copy);
    }
    free(recs);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datasets/cifar");
    TCase *tc = tt_tcase("cifar");
    tcase_add_test(tc, test_cifar100_fine_coarse_names);
    tcase_add_test(tc, test_cifar100_archive_folder_or_parent);
    tcase_add_test(tc, test_cifar10_batches_in_order);
    tcase_add_test(tc, test_cifar_missing_and_empty);
    tcase_add_test(tc, test_cifar_fifo_is_refused_not_waited_on);
    tcase_add_test(tc, test_cifar_truncated_mid_record);
    tcase_add_test(tc, test_cifar_label_out_of_range);
    tcase_add_test(tc, test_cifar_wrong_format);
    tcase_add_test(tc, test_cifar_parse_every_length);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
