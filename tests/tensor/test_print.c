/* tests/tensor/test_print.c — tg_tensor_format and tg_tensor_print: exact text for
 * every dtype and rank, the notation switch, nan/inf, scalars, empty tensors,
 * NumPy-style abbreviation, strided views, truncation and NULL. */
#include "check_util.h"

#include <stdio.h>

/* t's text, compared whole; frees t. */
static void expect_text(tg_tensor *t, const char *want)
{
    char buf[4096];
    size_t n = tg_tensor_format(buf, sizeof buf, t);
    ck_assert_msg(n == strlen(want) && strcmp(buf, want) == 0, "got\n%s\nwant\n%s", buf, want);
    tg_tensor_free(t);
}

static tg_tensor *arange(tg_dtype dt, int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    tg_tensor *flat = tg_tensor_arange(NULL, dt, 0, (double)n, 1);
    tg_tensor *t = tg_tensor_reshape(NULL, flat, ndim, shape);
    ck_assert_msg(t != NULL, "%s", tg_last_error());
    tg_tensor_free(flat);
    return t;
}

START_TEST(test_floats)
{
    expect_text(tt_tensor(TG_F32, TG_DIMS(3), (double[]){0, 1, 2}),
                "tensor([0.0000, 1.0000, 2.0000], shape=[3], dtype=f32)");
    expect_text(arange(TG_F32, TG_DIMS(2, 3)),
                "tensor([[0.0000, 1.0000, 2.0000],\n"
                "        [3.0000, 4.0000, 5.0000]], shape=[2,3], dtype=f32)");
    /* one width for all, negative signs included */
    expect_text(tt_tensor(TG_F64, TG_DIMS(3), (double[]){-1.5, 2.25, -0.125}),
                "tensor([-1.5000,  2.2500, -0.1250], shape=[3], dtype=f64)");
    expect_text(tt_tensor(TG_F64, TG_DIMS(2, 1, 2), (double[]){10.5, -3, 0.25, 100}),
                "tensor([[[ 10.5000,  -3.0000]],\n"
                "\n"
                "        [[  0.2500, 100.0000]]], shape=[2,1,2], dtype=f64)");
}
END_TEST

START_TEST(test_integers)
{
    expect_text(tt_tensor(TG_U8, TG_DIMS(2, 2), (double[]){0, 255, 7, 10}),
                "tensor([[  0, 255],\n"
                "        [  7,  10]], shape=[2,2], dtype=u8)");
    expect_text(tt_tensor(TG_I32, TG_DIMS(4), (double[]){-7, 0, 123456, 2}),
                "tensor([    -7,      0, 123456,      2], shape=[4], dtype=i32)");
    expect_text(arange(TG_I32, TG_DIMS(2, 2, 3)),
                "tensor([[[ 0,  1,  2],\n"
                "         [ 3,  4,  5]],\n"
                "\n"
                "        [[ 6,  7,  8],\n"
                "         [ 9, 10, 11]]], shape=[2,2,3], dtype=i32)");
}
END_TEST

START_TEST(test_scientific)
{
    expect_text(tt_tensor(TG_F64, TG_DIMS(3), (double[]){1e8, 1, -2.5}),
                "tensor([ 1.0000e+08,  1.0000e+00, -2.5000e+00], shape=[3], dtype=f64)");
    expect_text(tt_tensor(TG_F64, TG_DIMS(3), (double[]){1e-5, 0, 1}),
                "tensor([1.0000e-05, 0.0000e+00, 1.0000e+00], shape=[3], dtype=f64)");
    /* just inside both bounds: fixed */
    expect_text(tt_tensor(TG_F64, TG_DIMS(2), (double[]){1e-4, 99999999}),
                "tensor([       0.0001, 99999999.0000], shape=[2], dtype=f64)");
    /* zeros and non-finite values do not decide the notation */
    expect_text(tt_tensor(TG_F32, TG_DIMS(3), (double[]){0, INFINITY, 1}),
                "tensor([0.0000,    inf, 1.0000], shape=[3], dtype=f32)");
}
END_TEST

START_TEST(test_nan_inf)
{
    expect_text(tt_tensor(TG_F32, TG_DIMS(4), (double[]){NAN, INFINITY, -INFINITY, 1}),
                "tensor([   nan,    inf,   -inf, 1.0000], shape=[4], dtype=f32)");
    expect_text(tt_tensor(TG_F64, TG_DIMS(2), (double[]){NAN, 1e-5}),
                "tensor([       nan, 1.0000e-05], shape=[2], dtype=f64)");
}
END_TEST

START_TEST(test_scalar_and_empty)
{
    expect_text(tg_tensor_scalar(NULL, TG_F64, 3.5), "tensor(3.5000, shape=[], dtype=f64)");
    expect_text(tg_tensor_scalar(NULL, TG_I32, -7), "tensor(-7, shape=[], dtype=i32)");
    expect_text(tg_tensor_zeros(NULL, TG_F32, TG_DIMS(0, 3)), "tensor([], shape=[0,3], dtype=f32)");
    expect_text(tg_tensor_zeros(NULL, TG_U8, TG_DIMS(0)), "tensor([], shape=[0], dtype=u8)");
}
END_TEST

START_TEST(test_abbreviation)
{
    expect_text(arange(TG_F32, TG_DIMS(40, 40)),
                "tensor([[   0.0000,    1.0000,    2.0000, ...,   37.0000,   38.0000,   39.0000],\n"
                "        [  40.0000,   41.0000,   42.0000, ...,   77.0000,   78.0000,   79.0000],\n"
                "        [  80.0000,   81.0000,   82.0000, ...,  117.0000,  118.0000,  119.0000],\n"
                "        ...,\n"
                "        [1480.0000, 1481.0000, 1482.0000, ..., 1517.0000, 1518.0000, 1519.0000],\n"
                "        [1520.0000, 1521.0000, 1522.0000, ..., 1557.0000, 1558.0000, 1559.0000],\n"
                "        [1560.0000, 1561.0000, 1562.0000, ..., 1597.0000, 1598.0000, 1599.0000]], "
                "shape=[40,40], dtype=f32)");
    /* 1000 elements are shown whole (wrapped at 80 columns), 1001 are cut */
    expect_text(arange(TG_I32, TG_DIMS(1001)),
                "tensor([   0,    1,    2, ...,  998,  999, 1000], shape=[1001], dtype=i32)");
    tg_tensor *t = arange(TG_I32, TG_DIMS(1000));
    char buf[16384];
    tg_tensor_format(buf, sizeof buf, t);
    ck_assert_ptr_null(strstr(buf, "..."));
    ck_assert_ptr_nonnull(strstr(buf, "tensor([  0,   1,   2,"));
    ck_assert_ptr_nonnull(strstr(buf, " 998, 999], shape=[1000], dtype=i32)"));
    for (char *line = buf; line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        const char *end = strchr(line, '\n');
        if (end) /* the last line carries the suffix; every other stays within 80 */
            ck_assert_int_le(end - line, 80);
    }
    tg_tensor_free(t);
    /* a short axis is never cut; a cut 3-D tensor keeps its blank lines */
    expect_text(arange(TG_I32, TG_DIMS(8, 2, 70)),
                "tensor([[[   0,    1,    2, ...,   67,   68,   69],\n"
                "         [  70,   71,   72, ...,  137,  138,  139]],\n"
                "\n"
                "        [[ 140,  141,  142, ...,  207,  208,  209],\n"
                "         [ 210,  211,  212, ...,  277,  278,  279]],\n"
                "\n"
                "        [[ 280,  281,  282, ...,  347,  348,  349],\n"
                "         [ 350,  351,  352, ...,  417,  418,  419]],\n"
                "\n"
                "        ...,\n"
                "\n"
                "        [[ 700,  701,  702, ...,  767,  768,  769],\n"
                "         [ 770,  771,  772, ...,  837,  838,  839]],\n"
                "\n"
                "        [[ 840,  841,  842, ...,  907,  908,  909],\n"
                "         [ 910,  911,  912, ...,  977,  978,  979]],\n"
                "\n"
                "        [[ 980,  981,  982, ..., 1047, 1048, 1049],\n"
                "         [1050, 1051, 1052, ..., 1117, 1118, 1119]]], shape=[8,2,70], dtype=i32)");
}
END_TEST

START_TEST(test_hidden_values_do_not_decide)
{
    /* as NumPy: notation and width come from the entries shown */
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(2000));
    ck_assert_int_eq(tg_tensor_set(t, (int64_t[]){1000}, 1e12), TG_OK);
    ck_assert_int_eq(tg_tensor_set(t, (int64_t[]){1}, -1), TG_OK);
    expect_text(t, "tensor([ 0.0000, -1.0000,  0.0000, ...,  0.0000,  0.0000,  0.0000], "
                   "shape=[2000], dtype=f64)");
}
END_TEST

START_TEST(test_views)
{
    tg_tensor *base = arange(TG_F32, TG_DIMS(2, 3));
    expect_text(tg_tensor_transpose(NULL, base, 0, 1),
                "tensor([[0.0000, 3.0000],\n"
                "        [1.0000, 4.0000],\n"
                "        [2.0000, 5.0000]], shape=[3,2], dtype=f32)");
    expect_text(tg_tensor_slice(NULL, base, 1, 0, 3, 2),
                "tensor([[0.0000, 2.0000],\n"
                "        [3.0000, 5.0000]], shape=[2,2], dtype=f32)");
    tg_tensor *row = tg_tensor_select(NULL, base, 0, 1);
    expect_text(tg_tensor_expand(NULL, row, TG_DIMS(2, 3)),
                "tensor([[3.0000, 4.0000, 5.0000],\n"
                "        [3.0000, 4.0000, 5.0000]], shape=[2,3], dtype=f32)");
    expect_text(tg_tensor_select(NULL, row, 0, 2), "tensor(5.0000, shape=[], dtype=f32)");
    tg_tensor_free(row);
    tg_tensor_free(base);
}
END_TEST

START_TEST(test_truncation)
{
    tg_tensor *t = tt_tensor(TG_F32, TG_DIMS(2), (double[]){1, 2});
    const char *full = "tensor([1.0000, 2.0000], shape=[2], dtype=f32)";
    size_t len = strlen(full);
    ck_assert_uint_eq(tg_tensor_format(NULL, 0, t), len);
    char buf[64];
    memset(buf, 'x', sizeof buf);
    ck_assert_uint_eq(tg_tensor_format(buf, 0, t), len);
    ck_assert_int_eq(buf[0], 'x'); /* size 0: nothing written */
    ck_assert_uint_eq(tg_tensor_format(buf, 1, t), len);
    ck_assert_str_eq(buf, "");
    ck_assert_uint_eq(tg_tensor_format(buf, 10, t), len);
    ck_assert_str_eq(buf, "tensor([1");
    ck_assert_int_eq(buf[10], 'x');
    ck_assert_uint_eq(tg_tensor_format(buf, len, t), len); /* one short of the NUL */
    ck_assert_uint_eq(strlen(buf), len - 1);
    ck_assert_int_eq(strncmp(buf, full, len - 1), 0);
    ck_assert_uint_eq(tg_tensor_format(buf, len + 1, t), len);
    ck_assert_str_eq(buf, full);
    tg_tensor_free(t);
}
END_TEST

START_TEST(test_print_and_null)
{
    char buf[64];
    ck_assert_uint_eq(tg_tensor_format(buf, sizeof buf, NULL), strlen("tensor(NULL)"));
    ck_assert_str_eq(buf, "tensor(NULL)");

    tg_tensor *t = arange(TG_U8, TG_DIMS(2, 2));
    char *text = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&text, &size);
    ck_assert_ptr_nonnull(f);
    tg_tensor_print(f, t);
    tg_tensor_print(f, NULL);
    fclose(f);
    ck_assert_str_eq(text, "tensor([[0, 1],\n"
                           "        [2, 3]], shape=[2,2], dtype=u8)\n"
                           "tensor(NULL)\n");
    free(text);
    tg_tensor_free(t);
}
END_TEST

/* The version a program logs: the library's, the headers' macros, and meson.build's
 * project version (which the build compares with the macros) agree. */
START_TEST(test_version)
{
    char want[32];
    snprintf(want, sizeof want, "%d.%d.%d", TG_VERSION_MAJOR, TG_VERSION_MINOR, TG_VERSION_PATCH);
    ck_assert_str_eq(tg_version(), want);
    ck_assert_str_eq(tg_version(), TG_VERSION_STRING);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/print");
    TCase *tc = tt_tcase("print");
    tcase_add_test(tc, test_floats);
    tcase_add_test(tc, test_integers);
    tcase_add_test(tc, test_scientific);
    tcase_add_test(tc, test_nan_inf);
    tcase_add_test(tc, test_scalar_and_empty);
    tcase_add_test(tc, test_abbreviation);
    tcase_add_test(tc, test_hidden_values_do_not_decide);
    tcase_add_test(tc, test_views);
    tcase_add_test(tc, test_truncation);
    tcase_add_test(tc, test_print_and_null);
    tcase_add_test(tc, test_version);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
