/*
 * test_buf: the growable buffer the codec encodes into and the audit tool
 * renders into. Bytes are kept as appended across growth, text of any length
 * is formatted in, the contents read as a C string, and out of memory leaves
 * the buffer as it was. shub_str_copy cuts to fit and always terminates.
 * shub_grow, the arrays' doubling, keeps elements and refuses sizes that
 * would overflow.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/buf.h"
#include "sharehub/err.h"

static void test_shub_grow_doubles_keeps_elements_refuses_overflow(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    for (int i = 0; i < 1000; i++) {
        assert_int_equal(shub_grow((void **)&a, &cap, (size_t)i + 1, sizeof *a), 0);
        a[i] = i;
    }
    assert_true(cap >= 1000 && cap < 2048);
    for (int i = 0; i < 1000; i++)
        assert_int_equal(a[i], i);
    size_t before = cap;
    assert_int_equal(shub_grow((void **)&a, &cap, SIZE_MAX / 2, sizeof *a), SHUB_ENOMEM);
    assert_int_equal(cap, before); /* unchanged */
    shub_alloc_fail_after(0);
    assert_int_equal(shub_grow((void **)&a, &cap, cap + 1, sizeof *a), SHUB_ENOMEM);
    shub_alloc_fail_after(-1);
    assert_int_equal(cap, before);
    assert_int_equal(a[999], 999);
    shub_free(a);
}

static void test_shub_buf_append_grows_and_keeps_bytes(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    for (int i = 0; i < 5000; i++) {
        uint8_t b = (uint8_t)i;
        assert_int_equal(shub_buf_append(&buf, &b, 1), 0);
    }
    assert_int_equal(buf.len, 5000);
    assert_true(buf.cap >= 5000);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(buf.data[i], (uint8_t)i);
    assert_int_equal(shub_buf_append(&buf, NULL, 0), 0);
    assert_int_equal(buf.len, 5000);
    shub_buf_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
    assert_int_equal(buf.cap, 0);
    shub_buf_free(NULL);
}

static void test_shub_buf_reserve_out_of_memory_keeps_buffer(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    assert_int_equal(shub_buf_append(&buf, "abc", 3), 0);
    shub_alloc_fail_after(0);
    int rc = shub_buf_reserve(&buf, 100000);
    shub_alloc_fail_after(-1);
    assert_int_equal(rc, SHUB_ENOMEM);
    assert_int_equal(buf.len, 3);
    assert_memory_equal(buf.data, "abc", 3);
    assert_int_equal(shub_buf_reserve(&buf, SIZE_MAX - 2), SHUB_ENOMEM);
    shub_buf_free(&buf);
}

static void test_shub_buf_printf_formats_text_of_any_length(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    assert_int_equal(shub_buf_puts(&buf, "event="), 0);
    assert_int_equal(shub_buf_printf(&buf, "%s n=%d", "abc", 42), 0);
    assert_string_equal(shub_buf_text(&buf), "event=abc n=42");
    assert_int_equal(buf.len, strlen("event=abc n=42"));
    /* longer than any first allocation: formatted whole, not cut */
    char big[5000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    assert_int_equal(shub_buf_printf(&buf, "[%s]", big), 0);
    assert_int_equal(buf.len, strlen("event=abc n=42") + 2 + 4999);
    const char *t = shub_buf_text(&buf);
    assert_int_equal(t[buf.len - 1], ']');
    assert_int_equal(t[buf.len], '\0');
    shub_buf_free(&buf);
    assert_null(buf.data);
    assert_int_equal(buf.len, 0);
}

static void test_shub_buf_text_of_empty_buffer_is_empty_string(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    assert_string_equal(shub_buf_text(&buf), "");
    assert_int_equal(buf.len, 0);
    shub_buf_free(&buf);
    shub_buf_free(NULL);
}

static void test_shub_buf_printf_out_of_memory_keeps_buffer(void **state)
{
    (void)state;
    shub_buf_t buf = {0};
    assert_int_equal(shub_buf_puts(&buf, "kept"), 0);
    char big[1000];
    memset(big, 'y', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    shub_alloc_fail_after(0);
    int rc = shub_buf_printf(&buf, "%s", big);
    shub_alloc_fail_after(-1);
    assert_int_equal(rc, SHUB_ENOMEM);
    assert_int_equal(buf.len, 4);
    assert_string_equal(shub_buf_text(&buf), "kept");
    shub_buf_free(&buf);
}

static void test_shub_str_copy_cuts_to_fit_and_terminates(void **state)
{
    (void)state;
    char out[6];
    shub_str_copy(out, sizeof out, "coventry");
    assert_string_equal(out, "coven");
    shub_str_copy(out, sizeof out, "wmp");
    assert_string_equal(out, "wmp");
    shub_str_copy(out, sizeof out, NULL);
    assert_string_equal(out, "");
    out[0] = 'z';
    shub_str_copy(out, 0, "ignored"); /* no room: nothing written */
    assert_int_equal(out[0], 'z');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_grow_doubles_keeps_elements_refuses_overflow),
        cmocka_unit_test(test_shub_buf_append_grows_and_keeps_bytes),
        cmocka_unit_test(test_shub_buf_reserve_out_of_memory_keeps_buffer),
        cmocka_unit_test(test_shub_buf_printf_formats_text_of_any_length),
        cmocka_unit_test(test_shub_buf_text_of_empty_buffer_is_empty_string),
        cmocka_unit_test(test_shub_buf_printf_out_of_memory_keeps_buffer),
        cmocka_unit_test(test_shub_str_copy_cuts_to_fit_and_terminates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
