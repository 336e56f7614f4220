/*
 * test_arena: the bump allocator everything built in one go lives in. It
 * hands out zeroed, aligned memory, grows past its first block, gives a
 * large request a block of its own, refuses impossible sizes without
 * wrapping, and fails cleanly when the allocation hook says no.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/arena.h"

static int setup_arena(void **state)
{
    *state = shub_arena_new(0);
    return *state ? 0 : -1;
}

static int teardown_arena(void **state)
{
    shub_arena_t *arena = *state;
    shub_arena_destroy(&arena);
    return 0;
}

static void test_shub_arena_alloc_zeroed_and_aligned(void **state)
{
    shub_arena_t *a = *state;
    for (size_t n = 1; n < 40; n++) {
        unsigned char *p = shub_arena_alloc(a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 8, 0);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(p[i], 0);
        memset(p, 0xff, n);
    }
}

static void test_shub_arena_alloc_grows_past_first_block(void **state)
{
    shub_arena_t *a = *state;
    assert_int_equal(shub_arena_used(a), 0);
    /* 10,000 small allocations span many blocks; each stays intact. */
    uint32_t *ptrs[10000];
    for (uint32_t i = 0; i < 10000; i++) {
        ptrs[i] = shub_arena_alloc(a, sizeof(uint32_t));
        assert_non_null(ptrs[i]);
        *ptrs[i] = i;
    }
    for (uint32_t i = 0; i < 10000; i++)
        assert_int_equal(*ptrs[i], i);
    assert_int_equal(shub_arena_used(a), 10000 * 8); /* rounded up to 8 */
}

static void test_shub_arena_alloc_larger_than_block_gets_own_block(void **state)
{
    shub_arena_t *a = *state;
    char *small = shub_arena_alloc(a, 16);
    char *big = shub_arena_alloc(a, 3 * 1024 * 1024);
    assert_non_null(small);
    assert_non_null(big);
    big[0] = 1;
    big[3 * 1024 * 1024 - 1] = 2;
    char *after = shub_arena_alloc(a, 16);
    assert_non_null(after);
    assert_int_equal(shub_arena_used(a), 16 + 3 * 1024 * 1024 + 16);
}

static void test_shub_arena_alloc_impossible_size_returns_null(void **state)
{
    shub_arena_t *a = *state;
    assert_null(shub_arena_alloc(a, SIZE_MAX));
    assert_null(shub_arena_alloc(a, SIZE_MAX - 6));
    assert_null(shub_arena_strndup(a, "x", SIZE_MAX));
    assert_non_null(shub_arena_alloc(a, 8)); /* still usable */
}

static void test_shub_arena_strndup_copies_and_terminates(void **state)
{
    shub_arena_t *a = *state;
    char *s = shub_arena_strndup(a, "coventry-cc", 8);
    assert_string_equal(s, "coventry");
    assert_string_equal(shub_arena_strndup(a, "", 0), "");
}

static void test_shub_arena_destroy_null_safe_and_nulls_pointer(void **state)
{
    (void)state;
    shub_arena_destroy(NULL);
    shub_arena_t *a = NULL;
    shub_arena_destroy(&a);
    a = shub_arena_new(64);
    assert_non_null(shub_arena_alloc(a, 100));
    shub_arena_destroy(&a);
    assert_null(a);
    assert_int_equal(shub_arena_used(NULL), 0);
}

static void test_shub_arena_new_out_of_memory_returns_null(void **state)
{
    (void)state;
    shub_alloc_fail_after(0);
    shub_arena_t *a = shub_arena_new(0);
    shub_alloc_fail_after(-1);
    assert_null(a);

    a = shub_arena_new(0);
    shub_alloc_fail_after(0);
    void *p = shub_arena_alloc(a, 10); /* first block cannot be had */
    shub_alloc_fail_after(-1);
    assert_null(p);
    assert_int_equal(shub_arena_used(a), 0);
    shub_arena_destroy(&a);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup_arena, teardown_arena)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_shub_arena_alloc_zeroed_and_aligned),
        T(test_shub_arena_alloc_grows_past_first_block),
        T(test_shub_arena_alloc_larger_than_block_gets_own_block),
        T(test_shub_arena_alloc_impossible_size_returns_null),
        T(test_shub_arena_strndup_copies_and_terminates),
        cmocka_unit_test(test_shub_arena_destroy_null_safe_and_nulls_pointer),
        cmocka_unit_test(test_shub_arena_new_out_of_memory_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
