/* safetensors files and checkpoints: bit-exact round trips (every dtype, 0-d, empty,
 * non-contiguous, awkward metadata), a file written by Python, every kind of corrupt
 * file refused with a message naming the file and tensor (every truncation point, every
 * flipped header byte, never a crash), all-or-nothing checkpoint loads, and atomic
 * saves that leave the old file intact and no temporary behind. */
#include "check_util.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ scratch directory */

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/tg_ckpt_XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void remove_tree(const char *path)
{
    struct stat sb;
    if (lstat(path, &sb) != 0)
        return;
    if (S_ISDIR(sb.st_mode)) {
        chmod(path, 0700);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char sub[512];
            snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
            remove_tree(sub);
        }
        if (d)
            closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static void remove_tmpdir(void) { remove_tree(tmpdir); }

/* tmpdir/name in a static buffer (one of a few, so two can be live at once) */
static const char *in_tmp(const char *name)
{
    static char bufs[4][512];
    static int k;
    char *b = bufs[k++ % 4];
    snprintf(b, 512, "%s/%s", tmpdir, name);
    return b;
}

/* Number of entries of dir whose name contains ".tmp." */
static int count_temporaries(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

/* A file with the given header text (unpadded unless the text is) and data. */
static void write_st(const char *path, const char *header, const void *data, size_t dlen)
{
    size_t hlen = strlen(header), n = 8 + hlen + dlen;
    uint8_t *p = calloc(n + 1, 1);
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)((uint64_t)hlen >> (8 * i));
    memcpy(p + 8, header, hlen);
    if (dlen)
        memcpy(p + 8 + hlen, data, dlen);
    tt_write_file(path, p, n);
    free(p);
}

/* tg_safetensors_load(path) must fail: TG_ERR_FORMAT, a message that starts with the
 * function and the file and contains `part`. */
static void expect_bad(const char *path, const char *part)
{
    tg_clear_error();
    tg_safetensors *st = tg_safetensors_load(path);
    if (st)
        tg_safetensors_free(st);
    ck_assert_msg(st == NULL, "%s loaded; expected an error with \"%s\"", path, part);
    ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "tg_safetensors_load: %s: ", path);
    ck_assert_msg(strncmp(tg_last_error(), prefix, strlen(prefix)) == 0, "message: %s",
                  tg_last_error());
    ck_assert_msg(strstr(tg_last_error(), part) != NULL, "\"%s\" not in: %s", part,
                  tg_last_error());
}

/* ------------------------------------------------------------------ comparing */

/* Same dtype, shape and bytes (row-major), whatever a's layout. */
static void assert_bit_equal(const tg_tensor *a, const tg_tensor *b, const char *what)
{
    ck_assert_msg(a->dtype == b->dtype, "%s: dtype %d vs %d", what, a->dtype, b->dtype);
    ck_assert_msg(tg_tensor_same_shape(a, b), "%s: shapes differ", what);
    tg_tensor *ca = tg_tensor_clone(NULL, a), *cb = tg_tensor_clone(NULL, b);
    ck_assert(ca && cb);
    size_t n = (size_t)tg_tensor_numel(a) * tg_dtype_size(a->dtype);
    ck_assert_msg(n == 0 || memcmp(tg_tensor_data(ca), tg_tensor_data(cb), n) == 0,
                  "%s: bytes differ", what);
    tg_tensor_free(ca);
    tg_tensor_free(cb);
}

static tg_tensor *from_f32(int ndim, const int64_t *shape, const float *v)
{
    tg_tensor *t = tg_tensor_from_data(NULL, TG_F32, ndim, shape, v);
    ck_assert_msg(t != NULL, "%s", tg_last_error());
    return t;
}

/* ------------------------------------------------------------------ round trips */

START_TEST(test_roundtrip_every_kind_of_tensor)
{
    /* f32 with the values that reveal a conversion: NaN (with a payload), -0, inf,
     * denormals, and a value float rounding would change */
    uint32_t bits[6] = {0x7fc01234u, 0x80000000u, 0x7f800000u, 0x00000001u, 0x3f800001u, 0xff7fffffu};
    float fv[6];
    memcpy(fv, bits, sizeof fv);
    tg_tensor *f32 = from_f32(TG_DIMS(2, 3), fv);
    tg_tensor *f64 = tt_rand_tensor(TG_F64, TG_DIMS(2, 3, 2));
    uint8_t u8v[5] = {0, 1, 127, 128, 255};
    tg_tensor *u8 = tg_tensor_from_data(NULL, TG_U8, TG_DIMS(5), u8v);
    int32_t i32v[4] = {0, -1, INT32_MAX, INT32_MIN};
    tg_tensor *i32 = tg_tensor_from_data(NULL, TG_I32, TG_DIMS(4), i32v);
    tg_tensor *scalar = tg_tensor_scalar(NULL, TG_F64, -3.5);          /* 0-d */
    tg_tensor *empty = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3));  /* no bytes */
    tg_tensor *empty_u8 = tg_tensor_zeros(NULL, TG_U8, TG_DIMS(2, 0, 5));
    tg_tensor *base = tt_rand_tensor(TG_F32, TG_DIMS(3, 5));
    tg_tensor *transposed = tg_tensor_transpose(NULL, base, 0, 1);      /* [5,3], strided */
    tg_tensor *base64 = tt_rand_tensor(TG_F64, TG_DIMS(4, 6));
    tg_tensor *stepped = tg_tensor_slice(NULL, base64, 1, 1, 6, 2);    /* [4,3], gaps */
    tg_tensor *bcast = tg_tensor_expand(NULL, u8, TG_DIMS(2, 5));      /* stride 0 */
    ck_assert(!tg_tensor_is_contiguous(transposed) && !tg_tensor_is_contiguous(stepped));
    const char *names[] = {"f32", "block_0/f64", "u8", "i32", "scalar", "empty", "empty_u8",
                           "transposed", "stepped", "broadcast", "ünïcode/名前 \"quoted\""};
    const tg_tensor *ts[] = {f32, f64, u8, i32, scalar, empty, empty_u8, transposed, stepped,
                             bcast, scalar};
    const tg_kv meta[] = {{"quote", "say \"hi\" \\ back\\slash"},
                          {"unicode", "ünïcode ✓ 名前 🙂"},
                          {"lines", "one\ntwo\r\nthree\tfour\x01"},
                          {"empty", ""}};
    int n = (int)(sizeof names / sizeof names[0]);
    const char *path = in_tmp("all.safetensors");
    ck_assert_msg(tg_safetensors_save(path, n, names, ts, 4, meta) == TG_OK, "%s", tg_last_error());

    /* the header is padded so that the data starts 8-aligned */
    size_t len;
    uint8_t *raw = tt_read_file(path, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    ck_assert_uint_eq(hlen % 8, 0);
    ck_assert_int_eq(raw[8], '{');
    free(raw);

    tg_safetensors *st = tg_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(st), n);
    for (int i = 0; i < n; i++) {
        ck_assert_str_eq(tg_safetensors_name(st, i), names[i]); /* the order they were given */
        tg_tensor *t = tg_safetensors_find(st, names[i]);
        ck_assert_ptr_eq(t, tg_safetensors_tensor(st, i));
        ck_assert(tg_tensor_is_contiguous(t));
        assert_bit_equal(ts[i], t, names[i]);
    }
    ck_assert_ptr_null(tg_safetensors_find(st, "nope"));
    ck_assert_ptr_null(tg_safetensors_tensor(st, n));
    ck_assert_ptr_null(tg_safetensors_name(st, -1));
    for (int i = 0; i < 4; i++)
        ck_assert_str_eq(tg_safetensors_meta(st, meta[i].key), meta[i].value);
    ck_assert_ptr_null(tg_safetensors_meta(st, "absent"));
    ck_assert_int_eq(tg_safetensors_find(st, "scalar")->ndim, 0);
    tg_safetensors_free(st);

    /* no tensors, no metadata: still a valid file ("{}" padded) */
    const char *none = in_tmp("none.safetensors");
    ck_assert_int_eq(tg_safetensors_save(none, 0, NULL, NULL, 0, NULL), TG_OK);
    st = tg_safetensors_load(none);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(st), 0);
    ck_assert_ptr_null(tg_safetensors_meta(st, "quote"));
    tg_safetensors_free(st);
    ck_assert_int_eq(count_temporaries(tmpdir), 0);

    tg_tensor *all[] = {f32, f64, u8, i32, scalar, empty, empty_u8, base, transposed, base64,
                        stepped, bcast};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        tg_tensor_free(all[i]);
}
END_TEST

START_TEST(test_save_rejects_bad_arguments)
{
    tg_tensor *a = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(2));
    const char *path = in_tmp("args.safetensors");
    const tg_tensor *two[] = {a, a};
    ck_assert_int_eq(tg_safetensors_save(path, 2, (const char *[]){"w", "w"}, two, 0, NULL), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tensor 'w' is given twice"));
    ck_assert_int_eq(tg_safetensors_save(path, 1, (const char *[]){"__metadata__"}, two, 0, NULL),
                     TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "reserved"));
    ck_assert_int_eq(tg_safetensors_save(path, 1, (const char *[]){"w"}, (const tg_tensor *[]){NULL},
                                         0, NULL), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tg_safetensors_save: /tmp/"));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tensor 'w' is NULL"));
    ck_assert_int_eq(tg_safetensors_save(path, 1, (const char *[]){"\xff\xfe"}, two, 0, NULL),
                     TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "not valid UTF-8"));
    const tg_kv dup[] = {{"k", "1"}, {"k", "2"}};
    ck_assert_int_eq(tg_safetensors_save(path, 0, NULL, NULL, 2, dup), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "metadata key 'k' is given twice"));
    ck_assert_int_eq(tg_safetensors_save(NULL, 0, NULL, NULL, 0, NULL), TG_ERR_ARG);
    /* none of these created a file or a temporary */
    ck_assert_int_ne(access(path, F_OK), 0);
    ck_assert_int_eq(count_temporaries(tmpdir), 0);
    tg_tensor_free(a);
}
END_TEST

/* ------------------------------------------------------------------ a file from Python */

/* The fixture lives in the source tree: tests/fixtures/python_written.safetensors. This
 * file's __FILE__ is relative to the build directory (three levels above the test
 * executable) or absolute; TG_FIXTURES (a directory) overrides both. */
static bool fixture_path(const char *name, char *out, size_t size)
{
    char src_dir[512];
    snprintf(src_dir, sizeof src_dir, "%s", __FILE__);
    char *slash = strrchr(src_dir, '/');
    if (slash)
        *slash = '\0';
    else
        strcpy(src_dir, ".");
    const char *env = getenv("TG_FIXTURES");
    if (env && (snprintf(out, size, "%.500s/%s", env, name), access(out, R_OK) == 0))
        return true;
    if (src_dir[0] == '/')
        return snprintf(out, size, "%s/../fixtures/%s", src_dir, name), access(out, R_OK) == 0;
    char exe[512];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        for (int up = 0; up < 3; up++) /* build/tests/nn/test_nn_checkpoint -> build */
            if ((slash = strrchr(exe, '/')) != NULL)
                *slash = '\0';
        snprintf(out, size, "%s/%s/../fixtures/%s", exe, src_dir, name);
        if (access(out, R_OK) == 0)
            return true;
    }
    snprintf(out, size, "tests/fixtures/%s", name); /* from the source root */
    return access(out, R_OK) == 0;
}

START_TEST(test_python_written_file_loads)
{
    char path[1100];
    ck_assert_msg(fixture_path("python_written.safetensors", path, sizeof path),
                  "tests/fixtures/python_written.safetensors not found (set TG_FIXTURES)");
    tg_safetensors *st = tg_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(st), 7);

    const float w[] = {1.5f, -2.0f, 0.25f, 1024.0f, -0.125f, 3.0f};
    tg_tensor *t = tg_safetensors_find(st, "fc/weight");
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq(t->dtype, TG_F32);
    tt_assert_shape(t, 2, 3);
    ck_assert(memcmp(tg_tensor_data(t), w, sizeof w) == 0);

    const double b[] = {0.1, -0.2, 1e-300};
    t = tg_safetensors_find(st, "fc/bias");
    ck_assert_int_eq(t->dtype, TG_F64);
    tt_assert_shape(t, 3);
    ck_assert(memcmp(tg_tensor_data(t), b, sizeof b) == 0);

    const int32_t labels[] = {0, -1, INT32_MAX, INT32_MIN};
    t = tg_safetensors_find(st, "labels");
    ck_assert_int_eq(t->dtype, TG_I32);
    ck_assert(memcmp(tg_tensor_data(t), labels, sizeof labels) == 0);

    const uint8_t pixels[] = {0, 1, 128, 255};
    t = tg_safetensors_find(st, "pixels");
    ck_assert_int_eq(t->dtype, TG_U8);
    tt_assert_shape(t, 2, 2);
    ck_assert(memcmp(tg_tensor_data(t), pixels, sizeof pixels) == 0);

    t = tg_safetensors_find(st, "step");
    ck_assert_int_eq(t->ndim, 0);
    ck_assert_int_eq(*(const int32_t *)tg_tensor_data(t), 7);

    t = tg_safetensors_find(st, "empty");
    tt_assert_shape(t, 0, 4);
    ck_assert_int_eq(tg_tensor_numel(t), 0);

    t = tg_safetensors_find(st, "näme/名前");
    ck_assert_ptr_nonnull(t);
    ck_assert(tg_tensor_item(t) == 42.0);

    ck_assert_str_eq(tg_safetensors_meta(st, "format"), "pt");
    ck_assert_str_eq(tg_safetensors_meta(st, "note"), "written by Python \"by hand\"\nline 2 ✓");
    /* Python orders tensors by dtype size then name: the file's data order is kept */
    ck_assert_str_eq(tg_safetensors_name(st, 0), "fc/bias");
    tg_safetensors_free(st);
}
END_TEST

/* ------------------------------------------------------------------ corrupt files */

START_TEST(test_corrupt_files_are_refused_with_a_reason)
{
    const char *p = in_tmp("bad.safetensors");
    float d[120] = {0};

    tt_write_file(p, "", 0);
    expect_bad(p, "the file is empty");
    tt_write_file(p, "\x10\0\0\0\0", 5);
    expect_bad(p, "the file is 5 bytes, shorter than the 8-byte header length");
    tt_write_file(p, "\xff\0\0\0\0\0\0\0{}      ", 16);
    expect_bad(p, "header length 255 is larger than the 8 bytes that follow it");
    tt_write_file(p, "\xff\xff\xff\xff\xff\xff\xff\xff{}", 10);
    expect_bad(p, "header length 18446744073709551615 is larger than");

    write_st(p, "{\"a\": ", NULL, 0);
    expect_bad(p, "the header is not JSON");
    write_st(p, "{\"a\": {}} x", NULL, 0);
    expect_bad(p, "the header has something after its JSON (at byte 10 of 11)");
    write_st(p, "[1, 2]  ", NULL, 0);
    expect_bad(p, "the header is an array, not a JSON object");
    write_st(p, "{\"\xc3\x28\": 1}", NULL, 0);
    expect_bad(p, "the header is not valid UTF-8 (at byte 2 of 9)");
    write_st(p, "{\"a\": [1]}", NULL, 0);
    expect_bad(p, "tensor 'a': the entry is an array, not an object");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", d, 4);
    expect_bad(p, "tensor 'a': the entry has no \"data_offsets\"");

    write_st(p, "{\"a\": {\"dtype\": \"F16\", \"shape\": [2], \"data_offsets\": [0, 4]}}", d, 4);
    expect_bad(p, "tensor 'a': dtype \"F16\" is not one tapegrad reads (F32, F64, U8, I32)");
    write_st(p, "{\"a\": {\"dtype\": 3, \"shape\": [2], \"data_offsets\": [0, 4]}}", d, 4);
    expect_bad(p, "tensor 'a': dtype is a number, not a string");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2, -1], \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "tensor 'a': shape dimension 1 is -1, negative");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2.5], \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "tensor 'a': shape dimension 0 is 2.5, not an integer");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [\"2\"], \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "tensor 'a': shape dimension 0 is a string");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": 2, \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "tensor 'a': shape is a number, not an array");
    write_st(p, "{\"a\": {\"dtype\": \"U8\", \"shape\": [1,1,1,1,1,1,1,1,1], \"data_offsets\": [0, 1]}}",
             d, 1);
    expect_bad(p, "tensor 'a': shape has 9 dimensions, more than 8");
    write_st(p, "{\"a\": {\"dtype\": \"F64\", \"shape\": [4294967296, 4294967296], "
             "\"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "tensor 'a': F64 [4294967296,4294967296] has too many elements");

    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [3], \"data_offsets\": [0, 12]}}", d, 8);
    expect_bad(p, "tensor 'a': data_offsets [0, 12] run past the end of the data (8 bytes)");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [0], \"data_offsets\": [8, 4]}}", d, 8);
    expect_bad(p, "tensor 'a': data_offsets [8, 4] end before they begin");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}", d, 4);
    expect_bad(p, "tensor 'a': data_offsets is an array of another length");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [-4, 0]}}", d, 4);
    expect_bad(p, "tensor 'a': a data offset is -4, negative");
    write_st(p, "{\"fc/weight\": {\"dtype\": \"F32\", \"shape\": [10, 12], \"data_offsets\": [0, 400]}}",
             d, 400);
    expect_bad(p, "tg_safetensors_load: /"); /* the whole message, exactly: */
    char want[700];
    snprintf(want, sizeof want, "tg_safetensors_load: %s: tensor 'fc/weight': data_offsets "
             "[0, 400] hold 400 bytes, but F32 [10,12] needs 480", p);
    ck_assert_str_eq(tg_last_error(), want);

    /* the offsets must tile the data: overlap, gap, bytes at the end */
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", d, 12);
    expect_bad(p, "tensor 'b': data_offsets [4, 12] overlap tensor 'a' [0, 8]");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]},"
             " \"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", d, 8);
    expect_bad(p, "overlap tensor 'a' [0, 8]");
    write_st(p, "{\"b\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [12, 20]},"
             " \"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", d, 20);
    expect_bad(p, "tensor 'b': data_offsets [12, 20] leave a gap of 4 bytes after byte 8");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [4, 12]}}", d, 12);
    expect_bad(p, "tensor 'a': data_offsets [4, 12] leave a gap of 4 bytes after byte 0");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", d, 10);
    expect_bad(p, "the tensors cover 8 bytes of data but 10 follow the header "
                  "(2 bytes belong to no tensor)");

    /* names and metadata */
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
             " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 8]}}", d, 8);
    expect_bad(p, "tensor 'a' appears twice in the header");
    write_st(p, "{\"__metadata__\": {\"epoch\": 3}}", NULL, 0);
    expect_bad(p, "__metadata__ 'epoch' is a number, not a string");
    write_st(p, "{\"__metadata__\": [\"x\"]}", NULL, 0);
    expect_bad(p, "__metadata__ is an array, not an object of strings");
    write_st(p, "{\"__metadata__\": {}, \"__metadata__\": {}}", NULL, 0);
    expect_bad(p, "two __metadata__ entries");
    write_st(p, "{\"__metadata__\": {\"k\": \"1\", \"k\": \"2\"}}", NULL, 0);
    expect_bad(p, "__metadata__ has the key 'k' twice");

    /* not a file at all */
    tg_clear_error();
    ck_assert_ptr_null(tg_safetensors_load(in_tmp("missing.safetensors")));
    ck_assert_int_eq(tg_last_status(), TG_ERR_IO);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "missing.safetensors: cannot open: No such file"));
    ck_assert_ptr_null(tg_safetensors_load(tmpdir));
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "not a regular file"));
    ck_assert_ptr_null(tg_safetensors_load(NULL));
    ck_assert_int_eq(tg_last_status(), TG_ERR_ARG);

    /* a well-formed hand-written file does load (the helpers above are not the cause) */
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}, "
             "\"e\": {\"dtype\": \"I32\", \"shape\": [0, 2], \"data_offsets\": [8, 8]}, "
             "\"x\": {\"dtype\": \"F32\", \"shape\": [], \"data_offsets\": [8, 12], \"extra\": 1}}",
             d, 12);
    tg_safetensors *st = tg_safetensors_load(p);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    ck_assert_int_eq(tg_safetensors_count(st), 3);
    tg_safetensors_free(st);
}
END_TEST

/* A small valid file written by the library, for cutting and flipping. */
static uint8_t *small_file(const char *path, size_t *len)
{
    tg_tensor *w = tt_rand_tensor(TG_F32, TG_DIMS(3, 2));
    tg_tensor *s = tg_tensor_scalar(NULL, TG_I32, 5);
    tg_tensor *e = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(0));
    const char *names[] = {"w", "step", "e"};
    const tg_tensor *ts[] = {w, s, e};
    const tg_kv meta[] = {{"k", "v"}};
    ck_assert_int_eq(tg_safetensors_save(path, 3, names, ts, 1, meta), TG_OK);
    tg_tensor_free(w);
    tg_tensor_free(s);
    tg_tensor_free(e);
    return tt_read_file(path, len);
}

START_TEST(test_every_truncation_is_an_error)
{
    const char *good = in_tmp("good.safetensors"), *cut = in_tmp("cut.safetensors");
    size_t len;
    uint8_t *raw = small_file(good, &len);
    ck_assert_uint_gt(len, 100);
    for (size_t n = 0; n < len; n++) {
        tt_write_file(cut, raw, n);
        tg_safetensors *st = tg_safetensors_load(cut);
        ck_assert_msg(st == NULL, "a file cut to %zu of %zu bytes loaded", n, len);
        ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
    }
    /* and one byte too many */
    uint8_t *longer = calloc(len + 1, 1);
    memcpy(longer, raw, len);
    tt_write_file(cut, longer, len + 1);
    expect_bad(cut, "1 bytes belong to no tensor");
    free(longer);
    free(raw);
}
END_TEST

START_TEST(test_flipped_header_bytes_never_crash)
{
    const char *good = in_tmp("good.safetensors"), *bad = in_tmp("flipped.safetensors");
    size_t len;
    uint8_t *raw = small_file(good, &len);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | raw[i];
    int refused = 0, tried = 0;
    const uint8_t masks[] = {0x01, 0x20, 0x80};
    for (size_t i = 0; i < 8 + hlen; i++)
        for (size_t m = 0; m < sizeof masks; m++) {
            raw[i] ^= masks[m];
            tt_write_file(bad, raw, len);
            raw[i] ^= masks[m];
            tg_clear_error();
            tg_safetensors *st = tg_safetensors_load(bad);
            tried++;
            if (!st) {
                refused++;
                ck_assert_int_eq(tg_last_status(), TG_ERR_FORMAT);
                ck_assert_ptr_nonnull(strstr(tg_last_error(), "flipped.safetensors: "));
            } else {
                /* a flip inside a name or a string value can leave a valid file: then it
                 * must still be whole (every tensor present, with the right size) */
                ck_assert_int_eq(tg_safetensors_count(st), 3);
                tg_safetensors_free(st);
            }
            if (i < 8) /* the length itself: always wrong */
                ck_assert_ptr_null(st);
        }
    /* most flips break the structure; the ones that do not change a name or a value */
    ck_assert_msg(refused > tried * 3 / 4, "only %d of %d flipped files were refused", refused, tried);
    free(raw);
}
END_TEST

/* ------------------------------------------------------------------ checkpoints */

/* 2 parameters, 1 buffer; `wide` makes fc/weight [3,5] instead of [3,4]. */
static tg_model *small_model(bool wide)
{
    tg_model *m = tg_model_new();
    ck_assert_ptr_nonnull(m);
    ck_assert_ptr_nonnull(tg_model_add_param(m, "fc/weight", TG_F32, TG_DIMS(3, wide ? 5 : 4)));
    ck_assert_ptr_nonnull(tg_model_add_param(m, "fc/bias", TG_F32, TG_DIMS(3)));
    ck_assert_ptr_nonnull(tg_model_add_buffer(m, "bn/running_mean", TG_F64, TG_DIMS(3)));
    return m;
}

static void fill_random(tg_tensor *t)
{
    tg_tensor *r = tt_rand_tensor(TG_F64, t->ndim, t->shape);
    ck_assert_int_eq(tg_tensor_copy_(t, r), TG_OK);
    tg_tensor_free(r);
}

START_TEST(test_checkpoint_roundtrip)
{
    tg_model *a = small_model(false);
    for (int i = 0; i < tg_model_num_params(a); i++)
        fill_random(tg_model_param(a, i));
    fill_random(tg_model_buffer(a, 0));
    tg_tensor *m1 = tt_rand_tensor(TG_F32, TG_DIMS(3, 4));
    tg_tensor *step = tg_tensor_scalar(NULL, TG_I32, 1234);
    const char *xnames[] = {"adam/fc/weight/m", "adam/step"};
    const tg_kv meta[] = {{"epoch", "7"}, {"config", "{\"bn\": \"before\"}\n"}};
    const char *path = in_tmp("model.safetensors");
    ck_assert_msg(tg_checkpoint_save(path, a, 2, xnames, (const tg_tensor *[]){m1, step}, 2, meta)
                      == TG_OK, "%s", tg_last_error());

    /* the file is a plain safetensors file holding all five tensors */
    tg_safetensors *st = tg_safetensors_load(path);
    ck_assert_int_eq(tg_safetensors_count(st), 5);
    ck_assert_str_eq(tg_safetensors_name(st, 0), "fc/weight");
    ck_assert_str_eq(tg_safetensors_name(st, 2), "bn/running_mean");
    tg_safetensors_free(st);

    /* into a fresh model and fresh extras; one extra destination is a strided view */
    tg_model *b = small_model(false);
    tg_tensor *m1_base = tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 3));
    tg_tensor *m1_dst = tg_tensor_transpose(NULL, m1_base, 0, 1);
    tg_tensor *step_dst = tg_tensor_scalar(NULL, TG_I32, 0);
    tg_safetensors *meta_out = NULL;
    ck_assert_msg(tg_checkpoint_load(path, b, 2, xnames, (tg_tensor *[]){m1_dst, step_dst}, &meta_out)
                      == TG_OK, "%s", tg_last_error());
    for (int i = 0; i < 2; i++)
        assert_bit_equal(tg_model_param(a, i), tg_model_param(b, i), tg_model_param_name(a, i));
    assert_bit_equal(tg_model_buffer(a, 0), tg_model_buffer(b, 0), "buffer");
    assert_bit_equal(m1, m1_dst, "extra m");
    ck_assert_int_eq((int)tg_tensor_item(step_dst), 1234);
    ck_assert_ptr_nonnull(meta_out);
    ck_assert_str_eq(tg_safetensors_meta(meta_out, "epoch"), "7");
    ck_assert_str_eq(tg_safetensors_meta(meta_out, "config"), "{\"bn\": \"before\"}\n");
    tg_safetensors_free(meta_out);

    /* without extras asked for, the file's extras are tensors the model lacks */
    tg_model *c = small_model(false);
    ck_assert_int_eq(tg_checkpoint_load(path, c, 0, NULL, NULL, NULL), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "the file holds 2 tensors that the model does "
                                                  "not have (such as 'adam/fc/weight/m')"));

    /* an extra may not take a model tensor's name */
    ck_assert_int_eq(tg_checkpoint_save(path, a, 1, (const char *[]){"fc/bias"},
                                        (const tg_tensor *[]){m1}, 0, NULL), TG_ERR_ARG);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "extra tensor 'fc/bias' has the name of a "
                                                  "model tensor"));
    ck_assert_int_eq(count_temporaries(tmpdir), 0);

    tg_model_free(a);
    tg_model_free(b);
    tg_model_free(c);
    tg_tensor_free(m1);
    tg_tensor_free(step);
    tg_tensor_free(m1_dst);
    tg_tensor_free(m1_base);
    tg_tensor_free(step_dst);
}
END_TEST

/* every value of m, row-major, as f64 (to check that nothing changed) */
static double *model_values(const tg_model *m, int *count)
{
    int np = tg_model_num_params(m), nb = tg_model_num_buffers(m), total = 0;
    double *all = malloc(1000 * sizeof *all);
    for (int i = 0; i < np + nb; i++) {
        const tg_tensor *t = i < np ? tg_model_param(m, i) : tg_model_buffer(m, i - np);
        double *v = tt_values(t);
        for (int64_t j = 0; j < tg_tensor_numel(t); j++)
            all[total++] = v[j];
        free(v);
    }
    *count = total;
    return all;
}

static void assert_model_unchanged(const tg_model *m, const double *before, int n)
{
    int k;
    double *now = model_values(m, &k);
    ck_assert_int_eq(k, n);
    ck_assert_msg(memcmp(now, before, (size_t)n * sizeof *now) == 0, "the model changed");
    free(now);
}

START_TEST(test_checkpoint_load_is_all_or_nothing)
{
    const char *path = in_tmp("model.safetensors");
    tg_model *a = small_model(false);
    fill_random(tg_model_param(a, 0));
    tg_tensor *m1 = tt_rand_tensor(TG_F32, TG_DIMS(3, 4));
    ck_assert_int_eq(tg_checkpoint_save(path, a, 1, (const char *[]){"m"}, (const tg_tensor *[]){m1},
                                        0, NULL), TG_OK);

    /* a model whose fc/weight is [3,5]: the mismatch is found before anything is copied */
    tg_model *b = small_model(true);
    for (int i = 0; i < tg_model_num_params(b); i++)
        tg_tensor_fill_(tg_model_param(b, i), 42);
    tg_tensor_fill_(tg_model_buffer(b, 0), -1);
    int n;
    double *before = model_values(b, &n);
    tg_tensor *m1_dst = tg_tensor_full(NULL, TG_F32, TG_DIMS(3, 4), 9);
    char want[700];
    snprintf(want, sizeof want, "tg_checkpoint_load: %s: tensor 'fc/weight' is f32 [3,4] in the "
             "file but f32 [3,5] in the model", path);
    ck_assert_int_eq(tg_checkpoint_load(path, b, 1, (const char *[]){"m"}, (tg_tensor *[]){m1_dst},
                                        NULL), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), want);
    assert_model_unchanged(b, before, n);
    double *mv = tt_values(m1_dst);
    for (int i = 0; i < 12; i++)
        ck_assert(mv[i] == 9);
    free(mv);

    /* the extra's shape is checked too, and its dtype */
    tg_model *c = small_model(false);
    tg_tensor_fill_(tg_model_param(c, 0), 42);
    double *before_c = model_values(c, &n);
    tg_tensor *wrong = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(3, 4));
    ck_assert_int_eq(tg_checkpoint_load(path, c, 1, (const char *[]){"m"}, (tg_tensor *[]){wrong},
                                        NULL), TG_ERR_SHAPE);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "tensor 'm' is f32 [3,4] in the file but f64 [3,4] "
                                                  "in the caller's extra tensor"));
    assert_model_unchanged(c, before_c, n);

    /* an extra the file lacks */
    ck_assert_int_eq(tg_checkpoint_load(path, c, 1, (const char *[]){"v"}, (tg_tensor *[]){m1_dst},
                                        NULL), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "extra tensor 'v' is not in the file"));
    assert_model_unchanged(c, before_c, n);

    /* a model with a tensor the file lacks */
    tg_model *d = small_model(false);
    ck_assert_ptr_nonnull(tg_model_add_param(d, "fc2/weight", TG_F32, TG_DIMS(2)));
    ck_assert_int_eq(tg_checkpoint_load(path, d, 1, (const char *[]){"m"}, (tg_tensor *[]){m1_dst},
                                        NULL), TG_ERR_FORMAT);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "the model's parameter 'fc2/weight' is not in "
                                                  "the file"));

    /* a corrupt file: the file's name and the reason, under the checkpoint's function */
    tt_write_file(path, "\x01\0\0\0", 4);
    ck_assert_int_eq(tg_checkpoint_load(path, c, 0, NULL, NULL, NULL), TG_ERR_FORMAT);
    snprintf(want, sizeof want, "tg_checkpoint_load: %s: the file is 4 bytes", path);
    ck_assert_msg(strncmp(tg_last_error(), want, strlen(want)) == 0, "%s", tg_last_error());
    assert_model_unchanged(c, before_c, n);

    free(before);
    free(before_c);
    tg_model_free(a);
    tg_model_free(b);
    tg_model_free(c);
    tg_model_free(d);
    tg_tensor_free(m1);
    tg_tensor_free(m1_dst);
    tg_tensor_free(wrong);
}
END_TEST

/* ------------------------------------------------------------------ atomic saves */

/* Saves one f32 value under "x"; returns the status. */
static tg_status save_value(const char *path, float v)
{
    tg_tensor *t = tg_tensor_full(NULL, TG_F32, TG_DIMS(4), v);
    tg_status s = tg_safetensors_save(path, 1, (const char *[]){"x"}, (const tg_tensor *[]){t}, 0, NULL);
    tg_tensor_free(t);
    return s;
}

static float load_value(const char *path)
{
    tg_safetensors *st = tg_safetensors_load(path);
    ck_assert_msg(st != NULL, "%s", tg_last_error());
    float v = ((const float *)tg_tensor_data(tg_safetensors_find(st, "x")))[3];
    tg_safetensors_free(st);
    return v;
}

START_TEST(test_saves_are_atomic)
{
    char sub[600];
    snprintf(sub, sizeof sub, "%s/ro", tmpdir);
    ck_assert_int_eq(mkdir(sub, 0755), 0);
    char path[700];
    snprintf(path, sizeof path, "%s/ckpt.safetensors", sub);

    /* overwriting replaces the contents and keeps the old file's mode */
    ck_assert_int_eq(save_value(path, 1), TG_OK);
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0644);
    ck_assert_int_eq(chmod(path, 0640), 0);
    ck_assert_int_eq(save_value(path, 2), TG_OK);
    ck_assert(load_value(path) == 2);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_int_eq(sb.st_mode & 0777, 0640);

    /* (1) the target is a directory (what root can always provoke): the rename fails,
     * the temporary is removed, the directory is untouched */
    char dirpath[700];
    snprintf(dirpath, sizeof dirpath, "%s/a_directory", sub);
    ck_assert_int_eq(mkdir(dirpath, 0755), 0);
    ck_assert_int_eq(save_value(dirpath, 3), TG_ERR_IO);
    char want[900];
    snprintf(want, sizeof want, "tg_safetensors_save: %s: cannot rename the temporary file onto "
             "it: Is a directory", dirpath);
    ck_assert_str_eq(tg_last_error(), want);
    ck_assert_int_eq(stat(dirpath, &sb), 0);
    ck_assert(S_ISDIR(sb.st_mode));
    ck_assert_int_eq(count_temporaries(sub), 0);
    ck_assert_int_eq(rmdir(dirpath), 0);

    /* (2) the directory is not writable: no temporary can be made, the old file stays.
     * As root, permissions do not stop us, so the check runs in a child that has
     * dropped to an unprivileged user (skipped if it cannot). */
    ck_assert_int_eq(chmod(sub, 0555), 0);
    ck_assert_int_eq(chmod(tmpdir, 0755), 0);
    if (geteuid() != 0) {
        ck_assert_int_eq(save_value(path, 4), TG_ERR_IO);
        char msg[900];
        snprintf(msg, sizeof msg, "tg_safetensors_save: %s: cannot create a temporary file beside "
                 "it: Permission denied", path);
        ck_assert_str_eq(tg_last_error(), msg);
    } else {
        fflush(NULL);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            if (setgid(65534) != 0 || setuid(65534) != 0)
                _exit(77); /* cannot drop privileges here: skip */
            tg_status s = save_value(path, 4);
            bool named = strstr(tg_last_error(), "cannot create a temporary file beside it: "
                                                 "Permission denied") != NULL;
            _exit(s == TG_ERR_IO && named ? 0 : 1);
        }
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status));
        int code = WEXITSTATUS(status);
        if (code == 77)
            fprintf(stderr, "test_saves_are_atomic: root cannot drop privileges here; the "
                            "read-only directory check is skipped (the directory check ran)\n");
        ck_assert_msg(code == 0 || code == 77, "as an unprivileged user, saving into a read-only "
                      "directory did not fail with EACCES (child exit %d)", code);
    }
    ck_assert_int_eq(chmod(sub, 0755), 0);
    ck_assert_int_eq(chmod(tmpdir, 0700), 0);
    ck_assert(load_value(path) == 2);
    ck_assert_int_eq(count_temporaries(sub), 0);

    /* (3) bad arguments fail before anything is written */
    ck_assert_int_eq(tg_safetensors_save(path, 1, (const char *[]){"x"}, (const tg_tensor *[]){NULL},
                                         0, NULL), TG_ERR_ARG);
    ck_assert(load_value(path) == 2);
    ck_assert_int_eq(count_temporaries(sub), 0);
}
END_TEST

/* ------------------------------------------------------------------ what a load costs */

START_TEST(test_fifo_is_refused_not_waited_on)
{
    /* opening a FIFO for reading waits for a writer: the reader must not */
    const char *p = in_tmp("fifo.safetensors");
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    alarm(10);
    tg_clear_error();
    ck_assert_ptr_null(tg_safetensors_load(p));
    alarm(0);
    ck_assert_int_eq(tg_last_status(), TG_ERR_IO);
    char want[600];
    snprintf(want, sizeof want, "tg_safetensors_load: %s: not a regular file", p);
    ck_assert_str_eq(tg_last_error(), want);
    unlink(p);
}
END_TEST

START_TEST(test_header_is_checked_before_the_data_is_read)
{
    /* with allocations over 1 MiB failing, a reader that asked for the whole file's
     * memory would report "out of memory", not what is wrong with the file */
    const char *p = in_tmp("big.safetensors");
    tt_write_file(p, "", 0);
    ck_assert_int_eq(truncate(p, (off_t)4 << 30), 0); /* 4 GiB of zeros, sparse */
    tt_count_allocations();
    tt_alloc_limit = (size_t)1 << 20;
    expect_bad(p, "the header is not JSON");
    /* a small valid header and 4 GiB of data it does not declare */
    float d[2] = {1, 2};
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}", d, 8);
    ck_assert_int_eq(truncate(p, (off_t)4 << 30), 0);
    expect_bad(p, "the tensors cover 8 bytes of data but 4294967227 follow the header");
    /* a header length that needs more than the file */
    tt_write_file(p, "\0\0\0\0\x01\0\0\0", 8);
    ck_assert_int_eq(truncate(p, (off_t)1 << 30), 0);
    expect_bad(p, "header length 4294967296 is larger than the 1073741816 bytes that follow it");
    tg_set_allocator(NULL);
}
END_TEST

START_TEST(test_shape_no_tensor_can_hold_is_a_format_error)
{
    /* [2^47, 0] holds no data, so the offsets agree, but no tensor has such a size */
    const char *p = in_tmp("shape.safetensors");
    write_st(p, "{\"a\": {\"dtype\": \"F32\", \"shape\": [140737488355328, 0], \"data_offsets\": [0, 0]}}",
             NULL, 0);
    expect_bad(p, "tensor 'a': F32 [140737488355328,0] is not a shape tapegrad can hold");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("nn/checkpoint");
    TCase *tc = tt_tcase("checkpoint");
    tcase_add_unchecked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, test_roundtrip_every_kind_of_tensor);
    tcase_add_test(tc, test_save_rejects_bad_arguments);
    tcase_add_test(tc, test_python_written_file_loads);
    tcase_add_test(tc, test_corrupt_files_are_refused_with_a_reason);
    tcase_add_test(tc, test_every_truncation_is_an_error);
    tcase_add_test(tc, test_flipped_header_bytes_never_crash);
    tcase_add_test(tc, test_checkpoint_roundtrip);
    tcase_add_test(tc, test_checkpoint_load_is_all_or_nothing);
    tcase_add_test(tc, test_saves_are_atomic);
    tcase_add_test(tc, test_fifo_is_refused_not_waited_on);
    tcase_add_test(tc, test_header_is_checked_before_the_data_is_read);
    tcase_add_test(tc, test_shape_no_tensor_can_hold_is_a_format_error);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
