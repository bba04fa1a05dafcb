/* IDX files (MNIST, Fashion-MNIST), plain and gzip: small files the tests write read
 * back exactly; every way a header, a body or a gzip stream can be wrong gives its
 * message, with the offset. */
#include "ds_util.h"
#include "internal.h"

static uint8_t pix(int i, int k)
{
    return (uint8_t)(i * 13 + k * 3);
}

/* An IDX images file: n images of rows x cols, `declared` in the header. */
static uint8_t *idx_images(int n, int declared, int rows, int cols, size_t *size)
{
    *size = 16 + (size_t)n * rows * cols;
    uint8_t *p = malloc(*size);
    ds_be32(p, 0x803);
    ds_be32(p + 4, (uint32_t)declared);
    ds_be32(p + 8, (uint32_t)rows);
    ds_be32(p + 12, (uint32_t)cols);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < rows * cols; k++)
            p[16 + (size_t)i * rows * cols + k] = pix(i, k);
    return p;
}

static uint8_t *idx_labels(int n, size_t *size)
{
    *size = 8 + (size_t)n;
    uint8_t *p = malloc(*size);
    ds_be32(p, 0x801);
    ds_be32(p + 4, (uint32_t)n);
    for (int i = 0; i < n; i++)
        p[8 + i] = (uint8_t)((i * 7) % 10);
    return p;
}

static void expect_data(const tg_dataset *d, int n, int rows, int cols)
{
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    tt_assert_shape(d->images, n, 1, rows, cols);
    tt_assert_shape(d->labels, n);
    const uint8_t *px = tg_tensor_data(d->images);
    const int32_t *y = tg_tensor_data(d->labels);
    int bad = 0;
    for (int i = 0; i < n; i++) {
        bad += y[i] != (i * 7) % 10;
        for (int k = 0; k < rows * cols; k++)
            bad += px[(size_t)i * rows * cols + k] != pix(i, k);
    }
    ck_assert_int_eq(bad, 0);
}

/* Writes 5 images of 3x4 and their labels under the MNIST names, gzip or plain. */
static void write_mnist_dir(const char *dir, const char *prefix, bool gz)
{
    size_t ni, nl;
    uint8_t *im = idx_images(5, 5, 3, 4, &ni), *lb = idx_labels(5, &nl);
    char a[64], b[64];
    snprintf(a, sizeof a, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    snprintf(b, sizeof b, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    if (gz) {
        ds_write_gz(dir, a, im, ni);
        ds_write_gz(dir, b, lb, nl);
    } else {
        ds_write(dir, a, im, ni);
        ds_write(dir, b, lb, nl);
    }
    free(im);
    free(lb);
}

START_TEST(test_idx_plain_and_gzip_read_back)
{
    char *dir = ds_tmpdir();
    write_mnist_dir(dir, "train", true);
    write_mnist_dir(dir, "t10k", false);
    tg_dataset *d = tg_dataset_load("fashion-mnist", dir, TG_DATASET_TRAIN);
    expect_data(d, 5, 3, 4);
    ck_assert_str_eq(d->name, "fashion-mnist");
    ck_assert_int_eq(d->num_classes, 10);
    ck_assert_str_eq(d->class_names[0], "T-shirt/top");
    ck_assert_str_eq(d->class_names[9], "Ankle boot");
    tg_dataset_free(d);
    d = tg_dataset_load_mnist(dir, TG_DATASET_TEST); /* only the plain names exist */
    expect_data(d, 5, 3, 4);
    ck_assert_str_eq(d->class_names[7], "7");
    tg_dataset_free(d);
    /* the first bytes decide, not the name: gzip data named plain and plain named .gz */
    rename(ds_path(dir, "train-images-idx3-ubyte.gz"), ds_path(dir, "a"));
    rename(ds_path(dir, "t10k-labels-idx1-ubyte"), ds_path(dir, "b.gz"));
    d = tg_dataset_load_idx(ds_path(dir, "a"), ds_path(dir, "b.gz"), 10);
    expect_data(d, 5, 3, 4);
    ck_assert_str_eq(d->name, "idx");
    ck_assert_ptr_null(d->class_names);
    tg_dataset_free(d);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_gzip_members_concatenated)
{
    /* gzip allows concatenated members (cat a.gz b.gz); zlib's gzread reads them as one */
    char *dir = ds_tmpdir();
    size_t ni, nl, s1, s2;
    uint8_t *im = idx_images(5, 5, 3, 4, &ni), *lb = idx_labels(5, &nl);
    uint8_t *a = tt_read_file(ds_write_gz(dir, "a", im, 30), &s1);
    uint8_t *b = tt_read_file(ds_write_gz(dir, "b", im + 30, ni - 30), &s2);
    uint8_t *both = malloc(s1 + s2);
    memcpy(both, a, s1);
    memcpy(both + s1, b, s2);
    ds_write(dir, "im.gz", both, s1 + s2);
    ds_write(dir, "lb", lb, nl);
    char im_path[1024], lb_path[1024];
    snprintf(im_path, sizeof im_path, "%s", ds_path(dir, "im.gz"));
    snprintf(lb_path, sizeof lb_path, "%s", ds_path(dir, "lb"));
    tg_dataset *d = tg_dataset_load_idx(im_path, lb_path, 10);
    expect_data(d, 5, 3, 4);
    tg_dataset_free(d);
    /* but bytes after the last member that are not a member are an error */
    memcpy(both + s1, "junk", 4);
    ds_write(dir, "im.gz", both, s1 + 4);
    char want[1200];
    snprintf(want, sizeof want, "datasets/idx: %s: 4 bytes after the end of gzip member 1 at byte %zu are not another gzip member",
             im_path, s1);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    free(a), free(b), free(both), free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_missing_and_empty)
{
    char *dir = ds_tmpdir();
    char want[1200];
    snprintf(want, sizeof want,
             "datasets/idx: %s/train-images-idx3-ubyte.gz: cannot open: No such file or directory", dir);
    tt_expect_message(tg_dataset_load_fashion_mnist(dir, TG_DATASET_TRAIN), TG_ERR_IO, want);
    size_t nl;
    uint8_t *lb = idx_labels(3, &nl);
    char im_path[1024], lb_path[1024];
    snprintf(im_path, sizeof im_path, "%s", ds_write(dir, "im", "", 0));
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));
    snprintf(want, sizeof want, "datasets/idx: %s: empty file (expected IDX images, magic 0x00000803)", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    ds_write(dir, "im", "\0\0", 2);
    snprintf(want, sizeof want, "datasets/idx: %s: 2 bytes is too short for an IDX magic number (4 bytes)", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    ds_write(dir, "im", "\0\0\x08\x03\0\0\0\x01", 8);
    snprintf(want, sizeof want, "datasets/idx: %s: 8 bytes is too short for the 16-byte IDX header", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    free(lb);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_wrong_magic)
{
    char *dir = ds_tmpdir();
    size_t ni, nl;
    uint8_t *im = idx_images(3, 3, 2, 2, &ni), *lb = idx_labels(3, &nl);
    char im_path[1024], lb_path[1024], want[2400];
    snprintf(im_path, sizeof im_path, "%s", ds_write(dir, "im", im, ni));
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));
    /* swapped: the labels file where the images belong */
    snprintf(want, sizeof want,
             "datasets/idx: %s: magic number 0x00000801 at byte 0 (IDX u8 data of 1 dimension), "
             "expected 0x00000803 (IDX u8 images, 3 dimensions)",
             lb_path);
    tt_expect_message(tg_dataset_load_idx(lb_path, im_path, 10), TG_ERR_FORMAT, want);
    ds_be32(im, 0x12345678);
    ds_write(dir, "im", im, ni);
    snprintf(want, sizeof want,
             "datasets/idx: %s: magic number 0x12345678 at byte 0 (not an IDX magic number), "
             "expected 0x00000803 (IDX u8 images, 3 dimensions)",
             im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    ds_be32(im, 0x0D03); /* f32 images */
    ds_write(dir, "im", im, ni);
    ds_expect_error_has(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT,
                        "(IDX f32 data of 3 dimensions), expected 0x00000803");
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_counts_against_bytes)
{
    char *dir = ds_tmpdir();
    size_t ni, nl;
    char im_path[1024], lb_path[1024], want[2400];
    uint8_t *lb = idx_labels(3, &nl);
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));
    /* 5 images of 4x4 declared, 3 present */
    uint8_t *im = idx_images(3, 5, 4, 4, &ni);
    snprintf(im_path, sizeof im_path, "%s", ds_write(dir, "im", im, ni));
    snprintf(want, sizeof want,
             "datasets/idx: %s: header declares 5 images of 4x4 (96 bytes with the header) but the "
             "file has 64 bytes (image 3 is cut at byte 64)",
             im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    /* a count so large that count x size overflows 64 bits */
    ds_be32(im + 4, 0xFFFFFFFFu), ds_be32(im + 8, 0xFFFFFFFFu), ds_be32(im + 12, 0xFFFFFFFFu);
    ds_write(dir, "im", im, ni);
    snprintf(want, sizeof want,
             "datasets/idx: %s: header declares 4294967295 images of 4294967295x4294967295 (more "
             "than 2^64 bytes with the header) but the file has 64 bytes (image 0 is cut at byte 16)",
             im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    ds_be32(im + 4, 2), ds_be32(im + 8, 4), ds_be32(im + 12, 4); /* 2 declared, 3 present */
    ds_write(dir, "im", im, ni);
    snprintf(want, sizeof want,
             "datasets/idx: %s: header declares 2 images of 4x4 (48 bytes with the header) but the "
             "file has 64 bytes (16 extra from byte 48)",
             im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    ds_be32(im + 4, 3), ds_be32(im + 8, 0);
    ds_write(dir, "im", im, ni);
    snprintf(want, sizeof want, "datasets/idx: %s: size 1 (byte 8) is 0, expected at least 1", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    /* 3 images, 4 labels */
    free(im), free(lb);
    im = idx_images(3, 3, 4, 4, &ni);
    lb = idx_labels(4, &nl);
    ds_write(dir, "im", im, ni);
    ds_write(dir, "lb", lb, nl);
    snprintf(want, sizeof want, "datasets/idx: %s holds 3 images but %s holds 4 labels", im_path, lb_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    /* labels cut short */
    ds_write(dir, "lb", lb, nl - 2);
    snprintf(want, sizeof want,
             "datasets/idx: %s: header declares 4 labels (12 bytes with the header) but the file "
             "has 10 bytes (label 2 is cut at byte 10)",
             lb_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    char *dir = ds_tmpdir();
    size_t ni, nl;
    uint8_t *im = idx_images(3, 3, 2, 2, &ni), *lb = idx_labels(3, &nl);
    lb[8 + 2] = 10;
    char im_path[1024], lb_path[1024], want[1200];
    snprintf(im_path, sizeof im_path, "%s", ds_write_gz(dir, "im.gz", im, ni));
    snprintf(lb_path, sizeof lb_path, "%s", ds_write_gz(dir, "lb.gz", lb, nl));
    snprintf(want, sizeof want, "datasets/idx: %s (inflated): label 2 (byte 10) is 10, out of range 0..9", lb_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    tg_dataset *d = tg_dataset_load_idx(im_path, lb_path, 11); /* fine with 11 classes */
    ck_assert_msg(d != NULL, "%s", tg_last_error());
    tg_dataset_free(d);
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

/* Writes `data` gzip-compressed, then lets `spoil` change the compressed bytes. */
static const char *spoiled_gz(const char *dir, const uint8_t *data, size_t size, size_t *gz_size,
                              void (*spoil)(uint8_t *gz, size_t *n))
{
    const char *path = ds_write_gz(dir, "im.gz", data, size);
    uint8_t *gz = tt_read_file(path, gz_size);
    spoil(gz, gz_size);
    path = ds_write(dir, "im.gz", gz, *gz_size);
    free(gz);
    return path;
}

static void cut_in_half(uint8_t *gz, size_t *n)
{
    (void)gz;
    *n /= 2;
}

static void flip_crc(uint8_t *gz, size_t *n)
{
    gz[*n - 8] ^= 0x01; /* the CRC-32 is the trailer's first 4 bytes */
}

static void flip_isize(uint8_t *gz, size_t *n)
{
    gz[*n - 1] ^= 0x40; /* ISIZE: the trailer's last 4 bytes */
}

START_TEST(test_idx_gzip_damage)
{
    char *dir = ds_tmpdir();
    size_t ni, nl, gz;
    uint8_t *im = idx_images(50, 50, 8, 8, &ni), *lb = idx_labels(50, &nl);
    char lb_path[1024], im_path[1024], want[1200];
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));

    snprintf(im_path, sizeof im_path, "%s", spoiled_gz(dir, im, ni, &gz, cut_in_half));
    snprintf(want, sizeof want, "datasets/idx: %s: gzip stream is cut short: %zu compressed bytes end inside member 1",
             im_path, gz);
    ds_expect_error_has(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);

    spoiled_gz(dir, im, ni, &gz, flip_crc);
    snprintf(want, sizeof want, "datasets/idx: %s: gzip data is corrupt near compressed byte %zu of member 1 (zlib: incorrect data check)",
             im_path, gz - 4);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);

    spoiled_gz(dir, im, ni, &gz, flip_isize);
    snprintf(want, sizeof want, "datasets/idx: %s: gzip data is corrupt near compressed byte %zu of member 1 (zlib: incorrect length check)",
             im_path, gz);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_gunzip_every_prefix)
{
    /* every prefix of a gzip file but the whole fails cleanly (and names the file) */
    size_t ni;
    uint8_t *im = idx_images(4, 4, 5, 5, &ni);
    char *dir = ds_tmpdir();
    size_t n;
    uint8_t *gz = tt_read_file(ds_write_gz(dir, "x.gz", im, ni), &n);
    for (size_t k = 0; k <= n; k++) {
        uint8_t *copy = malloc(k ? k : 1), *out;
        memcpy(copy, gz, k);
        size_t out_n;
        tg_status st = tg__gunzip("datasets/idx", "x.gz", copy, k, 1 << 20, NULL, &out, &out_n);
        if (k == n) {
            ck_assert_int_eq(st, TG_OK);
            ck_assert_uint_eq(out_n, ni);
            ck_assert_int_eq(memcmp(out, im, ni), 0);
            tg_mem_free(out);
        } else {
            ck_assert_int_eq(st, TG_ERR_FORMAT);
            ck_assert_ptr_null(out);
            ck_assert(strncmp(tg_last_error(), "datasets/idx: x.gz: ", 20) == 0);
        }
        free(copy);
    }
    /* the output limit holds */
    uint8_t *out;
    size_t out_n;
    ck_assert_int_eq(tg__gunzip("datasets/idx", "x.gz", gz, n, 16, NULL, &out, &out_n), TG_ERR_FORMAT);
    tt_expect_last(TG_ERR_FORMAT, "datasets/idx", "x.gz: inflates to more than 16 bytes");
    free(gz), free(im);
    ds_rmtree(dir);
}
END_TEST

/* ------------------------------------------------------------------ what a file costs
 * A reader judges a file by its header before it reads or inflates the body, and reads
 * no more than the header declares: with tt_alloc_limit set, asking for the memory of a
 * body the header does not declare is an allocation failure, so the test sees it. */

START_TEST(test_idx_fifo_is_refused_not_waited_on)
{
    char *dir = ds_tmpdir();
    char want[1200];
    ck_assert_int_eq(mkfifo(ds_path(dir, "train-images-idx3-ubyte.gz"), 0600), 0);
    alarm(10); /* opening a FIFO for reading waits for a writer: fail, do not hang */
    snprintf(want, sizeof want, "datasets/idx: %s/train-images-idx3-ubyte.gz: not a regular file", dir);
    tt_expect_message(tg_dataset_load_fashion_mnist(dir, TG_DATASET_TRAIN), TG_ERR_IO, want);
    alarm(0);
    ds_rmtree(dir);
}
END_TEST

START_TEST(test_idx_plain_header_before_body)
{
    /* 2 images of 3x4 declared in a file of 1 GiB (sparse: it costs no disk) */
    char *dir = ds_tmpdir();
    size_t ni, nl;
    uint8_t *im = idx_images(2, 2, 3, 4, &ni), *lb = idx_labels(2, &nl);
    char im_path[1024], lb_path[1024], want[1200];
    snprintf(im_path, sizeof im_path, "%s", ds_write(dir, "im", im, ni));
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));
    ck_assert_int_eq(truncate(im_path, (off_t)1 << 30), 0);
    tt_count_allocations();
    tt_alloc_limit = (size_t)1 << 20;
    snprintf(want, sizeof want, "datasets/idx: %s: header declares 2 images of 3x4 (40 bytes with the "
             "header) but the file has 1073741824 bytes (1073741784 extra from byte 40)", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    tg_set_allocator(NULL);
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

/* dir/name: gzip of the IDX bytes `head` followed by `zeros` zero bytes */
static const char *write_gz_with_zeros(const char *dir, const char *name, const uint8_t *head,
                                       size_t n, size_t zeros)
{
    const char *path = ds_path(dir, name);
    gzFile f = gzopen(path, "wb9");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(gzwrite(f, head, (unsigned)n), (int)n);
    static const uint8_t z[1 << 16];
    for (size_t done = 0; done < zeros; done += sizeof z)
        ck_assert_int_gt(gzwrite(f, z, (unsigned)(zeros - done < sizeof z ? zeros - done : sizeof z)), 0);
    ck_assert_int_eq(gzclose(f), Z_OK);
    return path;
}

START_TEST(test_idx_gzip_inflates_only_what_the_header_declares)
{
    char *dir = ds_tmpdir();
    size_t ni, nl;
    uint8_t *im = idx_images(2, 2, 3, 4, &ni), *lb = idx_labels(2, &nl);
    char im_path[1024], lb_path[1024], want[1200];
    snprintf(lb_path, sizeof lb_path, "%s", ds_write(dir, "lb", lb, nl));
    tt_count_allocations();
    tt_alloc_limit = (size_t)1 << 20;
    /* a bomb: 40 bytes declared, 16 MiB more behind them */
    snprintf(im_path, sizeof im_path, "%s", write_gz_with_zeros(dir, "bomb.gz", im, ni, (size_t)16 << 20));
    snprintf(want, sizeof want, "datasets/idx: %s: inflates to more than the 40 bytes its header declares",
             im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    /* a bad magic number is seen in the first bytes inflated, not after all of them */
    write_gz_with_zeros(dir, "bomb.gz", NULL, 0, (size_t)16 << 20);
    snprintf(want, sizeof want, "datasets/idx: %s (inflated): magic number 0x00000000 at byte 0 (not an "
             "IDX magic number), expected 0x00000803 (IDX u8 images, 3 dimensions)", im_path);
    tt_expect_message(tg_dataset_load_idx(im_path, lb_path, 10), TG_ERR_FORMAT, want);
    /* and a file that is what it declares still loads, within the limit */
    write_gz_with_zeros(dir, "bomb.gz", im, ni, 0);
    tg_dataset *d = tg_dataset_load_idx(im_path, lb_path, 10);
    expect_data(d, 2, 3, 4);
    tg_dataset_free(d);
    tg_set_allocator(NULL);
    free(im), free(lb);
    ds_rmtree(dir);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("datasets/idx");
    TCase *tc = tt_tcase("idx");
    tcase_add_test(tc, test_idx_plain_and_gzip_read_back);
    tcase_add_test(tc, test_idx_gzip_members_concatenated);
    tcase_add_test(tc, test_idx_missing_and_empty);
    tcase_add_test(tc, test_idx_wrong_magic);
    tcase_add_test(tc, test_idx_counts_against_bytes);
    tcase_add_test(tc, test_idx_label_out_of_range);
    tcase_add_test(tc, test_idx_gzip_damage);
    tcase_add_test(tc, test_gunzip_every_prefix);
    tcase_add_test(tc, test_idx_fifo_is_refused_not_waited_on);
    tcase_add_test(tc, test_idx_plain_header_before_body);
    tcase_add_test(tc, test_idx_gzip_inflates_only_what_the_header_declares);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
