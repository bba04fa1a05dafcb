/* tg_tape_write_html: the page is one self-contained file; its data (the JSON the page's
 * script reads) holds every record, the order backward ran them in and each share a
 * value received, numbers for small tensors and statistics for large ones; writing it
 * leaves the tape's gradients as they were; Graphviz missing or failing is a clear
 * error. What the page shows in a browser is tests/browser/test_tape_html.py's. */
#include "check_util.h"

#include <cjson/cJSON.h>
#include <unistd.h>

/* ------------------------------------------------------------------ helpers */

static bool have_dot(void) { return system("command -v dot >/dev/null 2>&1") == 0; }

#define SKIP_WITHOUT_DOT()                                                                   \
    do {                                                                                     \
        if (!have_dot()) {                                                                   \
            fprintf(stderr, "%s: skipped: Graphviz's dot is not installed\n", __func__);   \
            return;                                                                          \
        }                                                                                    \
    } while (0)

/* The page for tp, as one string (malloc'd); st receives the status. */
static char *page_of(tg_tape *tp, const tg_html_options *opt, tg_status *st)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    ck_assert_ptr_nonnull(f);
    *st = tg_tape_write_html(tp, f, opt);
    ck_assert_int_eq(fclose(f), 0);
    return buf;
}

/* The JSON the page carries, parsed (the '<' escapes are JSON's own \u003c). */
static cJSON *data_of(const char *page)
{
    const char *open = "<script type=\"application/json\" id=\"tape-data\">";
    const char *start = strstr(page, open);
    ck_assert_ptr_nonnull(start);
    start += strlen(open);
    const char *end = strstr(start, "</script>");
    ck_assert_ptr_nonnull(end);
    cJSON *j = cJSON_ParseWithLength(start, (size_t)(end - start));
    ck_assert_msg(j != NULL, "the page's JSON does not parse");
    return j;
}

static cJSON *at(const cJSON *o, const char *key)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    ck_assert_msg(v != NULL, "no \"%s\" in the JSON", key);
    return v;
}

static double num(const cJSON *o, const char *key) { return cJSON_GetNumberValue(at(o, key)); }
static cJSON *record(const cJSON *data, int id) { return cJSON_GetArrayItem(at(data, "records"), id); }

/* The n values of T's "v", as doubles */
static void values_of(const cJSON *T, double *out, int n)
{
    const cJSON *v = at(T, "v");
    ck_assert_int_eq(cJSON_GetArraySize(v), n);
    for (int i = 0; i < n; i++)
        out[i] = cJSON_GetNumberValue(cJSON_GetArrayItem(v, i));
}

#define assert_has(text, needle) \
    ck_assert_msg(strstr((text), (needle)) != NULL, "'%s' not found", (needle))

/* ------------------------------------------------------------------ the page */

/* y = sum(tanh(x) * x): x is read twice (by tanh and by mul), so it receives two
 * shares whose sum is its gradient; the page has both, in the order backward added
 * them, and the gradient each record read. */
START_TEST(test_shares_and_order)
{
    SKIP_WITHOUT_DOT();
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(3), (double[]){0.5, -1.0, 2.0});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tensor *t = tg_tanh(tp, x);        /* #0 */
    tg_tensor *m = tg_mul(tp, t, x);      /* #1 */
    tg_tensor *y = tg_sum(tp, m, 0, NULL, false); /* #2 */
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    tg_tensor *before = tg_tensor_clone(NULL, tg_grad(x));
    tg_tensor *g1_before = tg_tensor_clone(NULL, tg_tape_record(tp, 1)->grad);

    tg_status st;
    char *page = page_of(tp, NULL, &st);
    ck_assert_msg(st == TG_OK, "%s", tg_last_error());
    ck_assert_int_eq(tg_tape_status(tp), TG_OK);
    /* the tape's gradients are as they were, bit for bit */
    ck_assert(tt_same_bits(tg_grad(x), before));
    ck_assert(tt_same_bits(tg_tape_record(tp, 1)->grad, g1_before));

    /* one file: no reference to anything outside it */
    assert_has(page, "<!doctype html>");
    assert_has(page, "<svg");
    ck_assert_ptr_null(strstr(page, "src=\""));
    ck_assert_ptr_null(strstr(page, "href=\"http"));
    ck_assert_ptr_null(strstr(page, "@@"));

    cJSON *data = data_of(page);
    ck_assert_str_eq(cJSON_GetStringValue(at(data, "format")), "tapegrad-tape-html-1");
    ck_assert(cJSON_IsTrue(at(data, "backward")));
    ck_assert_int_eq(cJSON_GetArraySize(at(data, "records")), 3);
    const cJSON *order = at(data, "order");
    ck_assert_int_eq(cJSON_GetArraySize(order), 3);
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq((int)cJSON_GetNumberValue(cJSON_GetArrayItem(order, k)), 2 - k);
    ck_assert_str_eq(cJSON_GetStringValue(at(record(data, 1), "op")), "mul");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(at(record(data, 1), "inputs"), 0)), "r0");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(at(record(data, 1), "inputs"), 1)), "s0");

    /* the gradient #1 read: ones (d sum / d m) */
    double v[3];
    values_of(at(record(data, 1), "grad"), v, 3);
    for (int i = 0; i < 3; i++)
        ck_assert_double_eq(v[i], 1.0);
    /* #1 (mul) hands #0 the share g * x and x the share g * tanh(x); #0 (tanh) hands x
     * g0 * (1 - tanh^2) = x * (1 - tanh^2). The two shares of x add up to its grad. */
    const cJSON *mul_shares = at(record(data, 1), "shares"), *tanh_shares = at(record(data, 0), "shares");
    ck_assert_int_eq(cJSON_GetArraySize(mul_shares), 2);
    ck_assert_int_eq(cJSON_GetArraySize(tanh_shares), 1);
    double to_t[3], to_x1[3], to_x2[3];
    ck_assert_int_eq((int)num(cJSON_GetArrayItem(mul_shares, 0), "input"), 0);
    /* #0 is read once: its one share is its whole gradient, written as a reference */
    ck_assert_str_eq(cJSON_GetStringValue(at(cJSON_GetArrayItem(mul_shares, 0), "grad")), "r0");
    values_of(at(record(data, 0), "grad"), to_t, 3);
    values_of(at(cJSON_GetArrayItem(mul_shares, 1), "grad"), to_x1, 3);
    values_of(at(cJSON_GetArrayItem(tanh_shares, 0), "grad"), to_x2, 3);
    const double xs[3] = {0.5, -1.0, 2.0};
    for (int i = 0; i < 3; i++) {
        double th = tanh(xs[i]);
        ck_assert_double_eq_tol(to_t[i], xs[i], 1e-15);
        ck_assert_double_eq_tol(to_x1[i], th, 1e-15);
        ck_assert_double_eq_tol(to_x2[i], xs[i] * (1 - th * th), 1e-15);
        ck_assert_double_eq_tol(to_x1[i] + to_x2[i], tg_tensor_get(tg_grad(x), (int64_t[]){i}), 1e-15);
    }
    /* the leaf, with its value and gradient */
    const cJSON *src = cJSON_GetArrayItem(at(data, "sources"), 0);
    ck_assert_str_eq(cJSON_GetStringValue(at(src, "kind")), "leaf");
    ck_assert_str_eq(cJSON_GetStringValue(at(src, "name")), "x");
    values_of(at(src, "value"), v, 3);
    ck_assert_double_eq(v[2], 2.0);

    cJSON_Delete(data);
    free(page);
    tg_tensor_free(before);
    tg_tensor_free(g1_before);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* Above max_numbers elements a tensor is statistics (tg_tensor_stats's, the numbers
 * tg_tape_print shows) and a histogram of every element; at or below, its numbers. */
START_TEST(test_large_tensors_are_summarised)
{
    SKIP_WITHOUT_DOT();
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *w = tt_rand_tensor(TG_F32, TG_DIMS(20, 30));
    ck_assert_int_eq(tg_requires_grad(w, "w"), TG_OK);
    tg_tensor *h = tg_relu(tp, w);                            /* #0: 600 elements */
    tg_tensor *y = tg_mean(tp, h, 0, NULL, false);            /* #1: 1 */
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);

    tg_status st;
    char *page = page_of(tp, &(tg_html_options){.max_numbers = 100, .bins = 10}, &st);
    ck_assert_msg(st == TG_OK, "%s", tg_last_error());
    cJSON *data = data_of(page);
    const cJSON *value = at(record(data, 0), "value"), *grad = at(record(data, 0), "grad");
    ck_assert_double_eq(num(value, "n"), 600);
    ck_assert_ptr_null(cJSON_GetObjectItem(value, "v"));
    tg_grad_stats s = tg_tensor_stats(h), gs = tg_record_grad_stats(tg_tape_record(tp, 0));
    ck_assert_double_eq(num(value, "mean_abs"), s.mean_abs); /* the same number, not a recount */
    ck_assert_double_eq(num(grad, "mean_abs"), gs.mean_abs);
    ck_assert_double_eq(num(grad, "zero_frac"), gs.zero_frac);
    ck_assert_double_eq(num(value, "max"), s.max_abs);         /* relu: max |h| = max h */
    ck_assert_double_eq(num(value, "min"), 0.0);
    const cJSON *hist = at(value, "hist");
    ck_assert_int_eq(cJSON_GetArraySize(hist), 10);
    double total = 0;
    for (int b = 0; b < 10; b++)
        total += cJSON_GetNumberValue(cJSON_GetArrayItem(hist, b));
    ck_assert_double_eq(total, 600);
    ck_assert_double_eq(num(at(record(data, 1), "value"), "n"), 1);
    ck_assert_int_eq(cJSON_GetArraySize(at(at(record(data, 1), "value"), "v")), 1);
    cJSON_Delete(data);
    free(page);

    /* with the default of 64, the [20,30] gradient is statistics */
    page = page_of(tp, NULL, &st);
    ck_assert_int_eq(st, TG_OK);
    data = data_of(page);
    ck_assert_ptr_null(cJSON_GetObjectItem(at(record(data, 0), "grad"), "v"));
    ck_assert_int_eq(cJSON_GetArraySize(at(data, "order")), 2);
    cJSON_Delete(data);
    free(page);
    tg_tensor_free(w);
    tg_tape_free(tp);
}
END_TEST

/* Before backward (and with gradients not kept) there is nothing to step backward
 * through: the page has the values only, and says so in its data. */
START_TEST(test_before_backward)
{
    SKIP_WITHOUT_DOT();
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2, 2));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_tensor *y = tg_sum(tp, tg_exp(tp, x), 0, NULL, false);
    tg_status st;
    char *page = page_of(tp, NULL, &st);
    ck_assert_int_eq(st, TG_OK);
    cJSON *data = data_of(page);
    ck_assert(cJSON_IsFalse(at(data, "backward")));
    ck_assert_int_eq(cJSON_GetArraySize(at(data, "order")), 0);
    ck_assert(cJSON_IsNull(at(record(data, 0), "grad")));
    cJSON_Delete(data);
    free(page);

    tg_tape_set_keep_grads(tp, false);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    page = page_of(tp, NULL, &st);
    ck_assert_int_eq(st, TG_OK);
    data = data_of(page);
    ck_assert(cJSON_IsFalse(at(data, "backward"))); /* the gradients were given back */
    cJSON_Delete(data);
    free(page);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* A title or scope with markup in it stays text: escaped in the HTML, and the JSON
 * cannot end its <script> element. Not-finite values survive as names. */
START_TEST(test_escaping_and_special_values)
{
    SKIP_WITHOUT_DOT();
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_tensor(TG_F64, TG_DIMS(3), (double[]){-1.0, 0.0, 4.0});
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    tg_scope_push(tp, "</script><b>\"scope\"");
    tg_tensor *l = tg_log(tp, x); /* NaN, -inf, log 4 */
    tg_scope_pop(tp);
    tg_tensor *y = tg_sum(tp, l, 0, NULL, false);
    ck_assert_int_eq(tg_backward(tp, y), TG_OK);
    tg_status st;
    char *page = page_of(tp, &(tg_html_options){.title = "a <b>bold</b> & \"quoted\" title"}, &st);
    ck_assert_msg(st == TG_OK, "%s", tg_last_error());
    assert_has(page, "<title>a &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot; title</title>");
    ck_assert_ptr_null(strstr(page, "</script><b>"));
    cJSON *data = data_of(page);
    ck_assert_str_eq(cJSON_GetStringValue(at(record(data, 0), "scope")), "</script><b>\"scope\"");
    const cJSON *v = at(at(record(data, 0), "value"), "v");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(v, 0)), "NaN");
    ck_assert_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(v, 1)), "-Infinity");
    ck_assert_double_eq_tol(cJSON_GetNumberValue(cJSON_GetArrayItem(v, 2)), log(4.0), 1e-15);
    ck_assert_double_eq(num(at(record(data, 0), "value"), "nonfinite"), 2);
    cJSON_Delete(data);
    free(page);
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

/* ------------------------------------------------------------------ errors */

START_TEST(test_errors)
{
    tg_tape *tp = tg_tape_new(0);
    tg_tensor *x = tt_rand_tensor(TG_F64, TG_DIMS(2));
    ck_assert_int_eq(tg_requires_grad(x, "x"), TG_OK);
    ck_assert_int_eq(tg_backward(tp, tg_sum(tp, tg_exp(tp, x), 0, NULL, false)), TG_OK);

    tg_status st;
    char *page = page_of(tp, &(tg_html_options){.dot = "/nonexistent/graphviz/dot"}, &st);
    ck_assert_int_eq(st, TG_ERR_IO);
    tt_expect_last(TG_ERR_IO, "tg_tape_write_html",
                   "cannot run `/nonexistent/graphviz/dot -Tsvg` to lay out the");
    ck_assert_str_eq(page, ""); /* nothing written */
    free(page);

    page = page_of(tp, &(tg_html_options){.dot = "false"}, &st);
    ck_assert_int_eq(st, TG_ERR_IO);
    tt_expect_last(TG_ERR_IO, "tg_tape_write_html", "`false -Tsvg` exited with status 1");
    free(page);

    page = page_of(tp, &(tg_html_options){.max_numbers = -1}, &st);
    ck_assert_int_eq(st, TG_ERR_ARG);
    free(page);
    ck_assert_int_eq(tg_tape_write_html(NULL, stdout, NULL), TG_ERR_ARG);
    tt_expect_last(TG_ERR_ARG, "tg_tape_write_html", "the tape is NULL");
    ck_assert_int_eq(tg_tape_write_html(tp, NULL, NULL), TG_ERR_ARG);

    if (have_dot()) { /* a file that cannot be written */
        FILE *ro = fopen("/dev/null", "r");
        ck_assert_ptr_nonnull(ro);
        ck_assert_int_eq(tg_tape_write_html(tp, ro, NULL), TG_ERR_IO);
        tt_expect_last(TG_ERR_IO, "tg_tape_write_html", "writing the page failed");
        fclose(ro);
    }
    ck_assert_int_eq(tg_tape_status(tp), TG_OK); /* none of it is the tape's error */
    tg_tensor_free(x);
    tg_tape_free(tp);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("autograd/html");
    TCase *tc = tt_tcase("html");
    tcase_add_test(tc, test_shares_and_order);
    tcase_add_test(tc, test_large_tensors_are_summarised);
    tcase_add_test(tc, test_before_backward);
    tcase_add_test(tc, test_escaping_and_special_values);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
