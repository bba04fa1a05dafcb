/* The allocator hook and the arena: every allocation goes through the hook; an arena
 * reset keeps the memory so that the same step again allocates nothing. */
#include "check_util.h"
#include "tapegrad/tensor_advanced.h" /* the arena marks */

#include <stdint.h>

static void setup(void) { tt_count_allocations(); }

static void teardown(void) { tg_set_allocator(NULL); }

/* a pretend step: a few tensors of mixed sizes, views, and copies */
static void step(tg_arena *ar)
{
    tg_tensor *a = tg_tensor_ones(ar, TG_F32, TG_DIMS(256, 512));
    tg_tensor *b = tg_tensor_transpose(ar, a, 0, 1);
    tg_tensor *c = tg_tensor_clone(ar, b);
    for (int i = 0; i < 20; i++)
        c = tg_tensor_reshape(ar, tg_tensor_transpose(ar, c, 0, 1), TG_DIMS(512, 256));
    ck_assert_ptr_nonnull(c);
}

START_TEST(test_steady_state_allocates_nothing)
{
    tg_arena *ar = tg_arena_new(64 * 1024); /* small chunks: the first step needs several */
    step(ar);
    tg_arena_reset(ar);
    step(ar);
    tg_arena_reset(ar);
    int64_t before = tt_n_alloc;
    step(ar);
    tg_arena_reset(ar);
    step(ar);
    ck_assert_int_eq(tt_n_alloc, before); /* the third and fourth steps took nothing */
    ck_assert_uint_ge(tg_arena_capacity(ar), tg_arena_peak(ar));
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

/* memory for layers above and user code goes through the same hook */
START_TEST(test_mem_alloc_uses_the_hook)
{
    void *p = tg_mem_alloc(1000, 64);
    ck_assert_ptr_nonnull(p);
    ck_assert_uint_eq((uintptr_t)p % 64, 0);
    ck_assert_int_eq(tt_n_alloc, 1);
    tg_mem_free(p);
    ck_assert_int_eq(tt_n_free, 1);
    tt_fail_in = 1;
    tg_clear_error();
    ck_assert_ptr_null(tg_mem_alloc(1000, 16));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    ck_assert_str_eq(tg_last_error(), "tapegrad: out of memory allocating 1000 bytes");
    tg_mem_free(NULL);
    ck_assert_int_eq(tt_n_free, 1);
}
END_TEST

START_TEST(test_heap_tensors_balance)
{
    tg_tensor *t = tg_tensor_zeros(NULL, TG_F64, TG_DIMS(10, 10));
    tg_tensor *v = tg_tensor_slice(NULL, t, 0, 0, 10, 2);
    ck_assert_int_gt(tt_n_alloc, 0);
    tg_tensor_free(t);
    tg_tensor_free(v);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

START_TEST(test_arena_alignment_and_accounting)
{
    tg_arena *ar = tg_arena_new(0);
    void *p = tg_arena_alloc(ar, 3, 1);
    void *q = tg_arena_alloc(ar, 100, 64);
    ck_assert_uint_eq((uintptr_t)p % 16, 0);
    ck_assert_uint_eq((uintptr_t)q % 64, 0);
    ck_assert_uint_eq(tg_arena_used(ar), 103);
    void *big = tg_arena_alloc(ar, 8u << 20, 64); /* larger than a chunk */
    ck_assert_ptr_nonnull(big);
    memset(big, 1, 8u << 20);
    ck_assert_uint_ge(tg_arena_peak(ar), (8u << 20) + 103);
    tg_arena_reset(ar);
    ck_assert_uint_eq(tg_arena_used(ar), 0);
    ck_assert_ptr_null(tg_arena_alloc(ar, 8, 128));
    tt_expect_last(TG_ERR_ARG, "tg_arena_alloc", "alignment 128 is above 64");
    tg_arena_free(ar);
}
END_TEST

START_TEST(test_allocation_failure_is_reported)
{
    tt_fail_in = 1; /* the header allocation fails */
    tg_clear_error();
    ck_assert_ptr_null(tg_tensor_zeros(NULL, TG_F32, TG_DIMS(4, 4)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    ck_assert_ptr_nonnull(strstr(tg_last_error(), "out of memory"));
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
    tg_arena *ar = tg_arena_new(1024);
    tt_fail_in = 1; /* the arena's first chunk */
    ck_assert_ptr_null(tg_tensor_ones(ar, TG_F32, TG_DIMS(4)));
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    ck_assert_ptr_nonnull(tg_tensor_ones(ar, TG_F32, TG_DIMS(4))); /* and it recovers */
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

/* peak must count alignment padding, or the merged chunk is too small for the same step
 * and every step allocates again */
START_TEST(test_steady_state_with_padding)
{
    tg_arena *ar = tg_arena_new(64 * 1024);
    for (int s = 0; s < 3; s++) {
        int64_t before = tt_n_alloc;
        for (int i = 0; i < 20000; i++)
            ck_assert_ptr_nonnull(tg_arena_alloc(ar, 8, 64)); /* 8 bytes handed out, 64 taken */
        if (s > 0)
            ck_assert_int_eq(tt_n_alloc, before);
        tg_arena_reset(ar);
    }
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

START_TEST(test_arena_rejects_bad_sizes_and_alignments)
{
    tg_arena *ar = tg_arena_new(0);
    ck_assert_ptr_null(tg_arena_alloc(ar, SIZE_MAX - 16, 16)); /* header + size overflows */
    ck_assert_int_eq(tg_last_status(), TG_ERR_NOMEM);
    ck_assert_uint_eq(tg_arena_capacity(ar), 0);
    ck_assert_ptr_null(tg_arena_alloc(ar, 24, 48));
    tt_expect_last(TG_ERR_ARG, "tg_arena_alloc", "alignment 48 is not a power of two");
    tg_arena_free(ar);
}
END_TEST

START_TEST(test_reset_keeps_the_callers_error)
{
    tg_arena *ar = tg_arena_new(1024);
    ck_assert_ptr_nonnull(tg_tensor_zeros(ar, TG_F32, TG_DIMS(1000))); /* a second chunk */
    tg_set_error(TG_ERR_SHAPE, "earlier failure");
    tt_fail_in = 1; /* the merge in reset fails: the arena keeps its chunks */
    tg_arena_reset(ar);
    ck_assert_int_eq(tg_last_status(), TG_ERR_SHAPE);
    ck_assert_str_eq(tg_last_error(), "earlier failure");
    ck_assert_ptr_nonnull(tg_tensor_zeros(ar, TG_F32, TG_DIMS(1000)));
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

/* ------------------------------------------------------------------ large blocks */

START_TEST(test_large_blocks_are_given_back_and_reused)
{
    tg_arena *ar = tg_arena_new(0);
    size_t big = 4 * TG_ARENA_LARGE;
    void *a = tg_arena_alloc(ar, big, 64);
    ck_assert_ptr_nonnull(a);
    ck_assert_uint_eq(tg_arena_used(ar), big);
    tg_arena_release(ar, a);
    ck_assert_uint_eq(tg_arena_used(ar), 0);
    int64_t before = tt_n_alloc;
    ck_assert_ptr_eq(tg_arena_alloc(ar, big - 100, 64), a); /* reused: no allocation */
    ck_assert_int_eq(tt_n_alloc, before);
    /* not a block more than twice the request: a small request does not pin a big one */
    void *c = tg_arena_alloc(ar, TG_ARENA_LARGE, 64);
    ck_assert_ptr_ne(c, a);
    ck_assert_uint_eq(tg_arena_peak(ar), big + TG_ARENA_LARGE);
    /* a small block or a foreign pointer is ignored */
    void *small = tg_arena_alloc(ar, 100, 16);
    size_t used = tg_arena_used(ar);
    tg_arena_release(ar, small);
    tg_arena_release(ar, &used);
    tg_arena_release(ar, NULL);
    ck_assert_uint_eq(tg_arena_used(ar), used);
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

START_TEST(test_release_since_a_mark_keeps_what_is_asked)
{
    tg_arena *ar = tg_arena_new(0);
    tg_tensor *before = tg_tensor_zeros(ar, TG_F32, TG_DIMS(256, 512)); /* 512 KiB */
    uint64_t mark = tg_arena_mark(ar);
    tg_tensor *keep = tg_tensor_ones(ar, TG_F32, TG_DIMS(256, 512));
    tg_tensor *scratch = tg_tensor_ones(ar, TG_F32, TG_DIMS(512, 512));
    ck_assert(!tg_arena_taken_since(ar, mark, before->storage));
    ck_assert(tg_arena_taken_since(ar, mark, keep->storage));
    ck_assert(tg_arena_taken_since(ar, mark, scratch->storage));
    const void *keep_list[1] = {keep->storage};
    tg_arena_release_since(ar, mark, keep_list, 1);
    ck_assert(tg_arena_taken_since(ar, mark, keep->storage));
    ck_assert(!tg_arena_taken_since(ar, mark, scratch->storage)); /* given back */
    ck_assert_float_eq(tg_tensor_item(tg_tensor_sum(ar, keep, 0, NULL, false)), 256 * 512);
    ck_assert_uint_eq(tg_arena_used(ar) >= 2 * 256 * 512 * 4, true);
    tg_arena_release_tensor(ar, before);
    tg_arena_release_tensor(ar, keep);
    ck_assert_uint_lt(tg_arena_used(ar), TG_ARENA_LARGE); /* only small blocks are left */
    tg_arena_free(ar);
}
END_TEST

/* giving back and taking again in a repeated pattern allocates nothing after the first */
START_TEST(test_steady_state_with_releases)
{
    tg_arena *ar = tg_arena_new(0);
    for (int s = 0; s < 3; s++) {
        int64_t before = tt_n_alloc;
        for (int i = 0; i < 10; i++) {
            tg_tensor *t = tg_tensor_zeros(ar, TG_F32, TG_DIMS(100 + i, 1024));
            ck_assert_ptr_nonnull(t);
            if (i % 2)
                tg_arena_release_tensor(ar, t);
        }
        if (s > 0)
            ck_assert_int_eq(tt_n_alloc, before);
        tg_arena_reset(ar);
    }
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

/* a large block no step since the last reset took is freed at the reset, so the sizes
 * a program stopped using do not pile up */
START_TEST(test_unused_large_blocks_are_freed_at_reset)
{
    tg_arena *ar = tg_arena_new(0);
    ck_assert_ptr_nonnull(tg_arena_alloc(ar, 8 * TG_ARENA_LARGE, 64)); /* a big batch, once */
    tg_arena_reset(ar);
    ck_assert_uint_ge(tg_arena_capacity(ar), 8 * TG_ARENA_LARGE); /* kept for a repeat */
    int64_t freed = tt_n_free;
    ck_assert_ptr_nonnull(tg_arena_alloc(ar, TG_ARENA_LARGE, 64)); /* smaller batches from now */
    tg_arena_reset(ar);
    ck_assert_int_eq(tt_n_free, freed + 1);
    ck_assert_uint_lt(tg_arena_capacity(ar), 2 * TG_ARENA_LARGE);
    int64_t before = tt_n_alloc;
    ck_assert_ptr_nonnull(tg_arena_alloc(ar, TG_ARENA_LARGE, 64)); /* the kept one */
    ck_assert_int_eq(tt_n_alloc, before);
    tg_arena_free(ar);
    ck_assert_int_eq(tt_n_alloc, tt_n_free);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("tensor/arena");
    TCase *tc = tt_tcase("arena");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_steady_state_allocates_nothing);
    tcase_add_test(tc, test_heap_tensors_balance);
    tcase_add_test(tc, test_mem_alloc_uses_the_hook);
    tcase_add_test(tc, test_arena_alignment_and_accounting);
    tcase_add_test(tc, test_allocation_failure_is_reported);
    tcase_add_test(tc, test_steady_state_with_padding);
    tcase_add_test(tc, test_arena_rejects_bad_sizes_and_alignments);
    tcase_add_test(tc, test_reset_keeps_the_callers_error);
    tcase_add_test(tc, test_large_blocks_are_given_back_and_reused);
    tcase_add_test(tc, test_release_since_a_mark_keeps_what_is_asked);
    tcase_add_test(tc, test_steady_state_with_releases);
    tcase_add_test(tc, test_unused_large_blocks_are_freed_at_reset);
    suite_add_tcase(s, tc);
    return tt_run(s);
}
