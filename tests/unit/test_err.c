/*
 * test_err: the error module as its callers use it. Every code has a text and
 * a wire token, the detail is filled and cleared, and the one-line form has
 * the right shape for each kind of error (config position, wire field path,
 * plain). Long paths and files are cut, never overflowed, and a cut path
 * keeps its tail, the part that says which field was wrong.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include "sharehub/err.h"

/* The tokens travel on the wire, so each is pinned here; the texts are for
 * people, so the tests check their grammar rather than their words. */
static const struct {
    int code;
    const char *token;
} every_code[] = {
    {SHUB_OK, "ok"},
    {SHUB_ENOMEM, "no-memory"},
    {SHUB_EINVAL, "invalid"},
    {SHUB_EPROTO, "protocol"},
    {SHUB_ECONFIG, "config"},
    {SHUB_EIO, "io"},
    {SHUB_EDB, "database"},
    {SHUB_ECRYPTO, "crypto"},
    {SHUB_ENOTFOUND, "not-found"},
    {SHUB_EEXIST, "exists"},
    {SHUB_EBUSY, "busy"},
    {SHUB_EMALFORMED, "malformed"},
    {SHUB_ETYPE, "wrong-type"},
    {SHUB_EMISSING, "missing-field"},
    {SHUB_EDUPKEY, "duplicate-key"},
    {SHUB_ELIMIT, "limit"},
    {SHUB_EUTF8, "bad-utf8"},
    {SHUB_EUNKNOWN, "unknown-type"},
    {SHUB_EVERSION, "version"},
    {SHUB_EVALUE, "bad-value"},
};
#define N_CODES (sizeof every_code / sizeof every_code[0])

static void test_shub_strerror_every_code_has_its_own_text(void **state)
{
    (void)state;
    const char *generic = shub_strerror(-9999);
    for (size_t i = 0; i < N_CODES; i++) {
        const char *text = shub_strerror(every_code[i].code);
        size_t len = strlen(text);
        assert_true(len > 0);
        assert_string_not_equal(text, generic);
        assert_false(text[0] >= 'A' && text[0] <= 'Z');
        assert_int_not_equal(text[len - 1], '.');
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(text, shub_strerror(every_code[j].code));
    }
    assert_string_equal(shub_strerror(SHUB_ENOMEM), "out of memory");
}

static void test_shub_err_token_every_code_has_its_token(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++)
        assert_string_equal(shub_err_token(every_code[i].code), every_code[i].token);
}

static void test_shub_err_token_tokens_are_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < N_CODES; i++)
        for (size_t j = i + 1; j < N_CODES; j++)
            assert_string_not_equal(every_code[i].token, every_code[j].token);
}

static void test_shub_strerror_unknown_code_is_generic(void **state)
{
    (void)state;
    assert_string_equal(shub_strerror(-999), "unknown error");
    assert_string_equal(shub_strerror(7), "unknown error");
    assert_string_equal(shub_err_token(-999), "error");
    assert_string_equal(shub_err_token(-11), "error");
}

static void test_shub_err_set_fills_code_and_message_returns_code(void **state)
{
    (void)state;
    shub_err_t err;
    memset(&err, 0x5a, sizeof err);
    int rc = shub_err_set(&err, SHUB_EINVAL, "frame of %d bytes exceeds limit %d",
                          9000000, 1048576);
    assert_int_equal(rc, SHUB_EINVAL);
    assert_int_equal(err.code, SHUB_EINVAL);
    assert_string_equal(err.msg, "frame of 9000000 bytes exceeds limit 1048576");
    assert_string_equal(err.path, "");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_int_equal(err.column, 0);
}

static void test_shub_err_set_null_err_returns_code(void **state)
{
    (void)state;
    assert_int_equal(shub_err_set(NULL, SHUB_EIO, "x"), SHUB_EIO);
    assert_int_equal(shub_err_set_path(NULL, SHUB_ETYPE, "a.b", "x"), SHUB_ETYPE);
    assert_int_equal(shub_err_set_at(NULL, SHUB_ECONFIG, "f", 1, 2, "x"), SHUB_ECONFIG);
    shub_err_clear(NULL);
}

static void test_shub_err_clear_zeroes_everything(void **state)
{
    (void)state;
    shub_err_t err;
    shub_err_set_at(&err, SHUB_ECONFIG, "a.yaml", 3, 4, "bad");
    shub_err_clear(&err);
    assert_int_equal(err.code, 0);
    assert_string_equal(err.msg, "");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
    assert_int_equal(err.column, 0);
}

static void test_shub_err_set_path_replaces_earlier_detail(void **state)
{
    (void)state;
    shub_err_t err;
    shub_err_set_at(&err, SHUB_ECONFIG, "a.yaml", 3, 4, "bad");
    shub_err_set_path(&err, SHUB_ETYPE, "SHARE.to[2]", "expected text");
    assert_int_equal(err.code, SHUB_ETYPE);
    assert_string_equal(err.path, "SHARE.to[2]");
    assert_string_equal(err.file, "");
    assert_int_equal(err.line, 0);
}

static void test_shub_err_format_file_line_column_shape(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_set_at(&err, SHUB_ECONFIG, "agreements/marac.yaml", 12, 7,
                    "unknown field \"%s\"", "partys");
    assert_string_equal(shub_err_format(&err, buf, sizeof buf),
                        "agreements/marac.yaml:12:7: unknown field \"partys\"");
}

static void test_shub_err_format_file_line_shape(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_set_at(&err, SHUB_ECONFIG, "hub.yaml", 3, 0, "missing key \"bind\"");
    assert_string_equal(shub_err_format(&err, buf, sizeof buf),
                        "hub.yaml:3: missing key \"bind\"");
}

static void test_shub_err_format_file_only_shape(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_set_at(&err, SHUB_EIO, "hub.yaml", 0, 0, "cannot open");
    assert_string_equal(shub_err_format(&err, buf, sizeof buf), "hub.yaml: cannot open");
}

static void test_shub_err_format_path_shape(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_set_path(&err, SHUB_ELIMIT, "SHARE.payload.victim.name",
                      "text of %d bytes exceeds limit %d", 20000, 16384);
    assert_string_equal(
        shub_err_format(&err, buf, sizeof buf),
        "SHARE.payload.victim.name: text of 20000 bytes exceeds limit 16384");
}

static void test_shub_err_format_plain_shape(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_set(&err, SHUB_EDB, "database is locked");
    assert_string_equal(shub_err_format(&err, buf, sizeof buf), "database is locked");
}

static void test_shub_err_format_empty_message_uses_strerror(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[512];
    shub_err_clear(&err);
    err.code = SHUB_ENOMEM;
    assert_string_equal(shub_err_format(&err, buf, sizeof buf), "out of memory");
}

static void test_shub_err_format_no_error_says_so(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[64];
    shub_err_clear(&err);
    assert_string_equal(shub_err_format(&err, buf, sizeof buf), "no error");
    assert_string_equal(shub_err_format(NULL, buf, sizeof buf), "no error");
}

static void test_shub_err_format_small_buffer_truncates_with_nul(void **state)
{
    (void)state;
    shub_err_t err;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    shub_err_set_path(&err, SHUB_ETYPE, "SHARE.id", "expected binary");
    assert_ptr_equal(shub_err_format(&err, buf, sizeof buf), buf);
    assert_string_equal(buf, "SHARE.i");
    assert_null(shub_err_format(&err, NULL, 10));
    char one[1] = {'x'};
    shub_err_format(&err, one, 0);
    assert_int_equal(one[0], 'x'); /* size 0: nothing written */
}

static void test_shub_err_set_path_long_path_keeps_tail(void **state)
{
    (void)state;
    char path[301];
    for (int i = 0; i < 300; i++)
        path[i] = (char)('a' + i % 26);
    path[300] = '\0';
    shub_err_t err;
    shub_err_set_path(&err, SHUB_ELIMIT, path, "too deep");
    assert_int_equal(strlen(err.path), SHUB_ERR_PATH_MAX - 1);
    assert_memory_equal(err.path, "...", 3);
    /* the last SHUB_ERR_PATH_MAX - 4 characters survive */
    assert_string_equal(err.path + 3, path + 300 - (SHUB_ERR_PATH_MAX - 4));
}

static void test_shub_err_set_path_path_at_limit_is_not_cut(void **state)
{
    (void)state;
    char path[SHUB_ERR_PATH_MAX];
    memset(path, 'p', sizeof path - 1);
    path[sizeof path - 1] = '\0'; /* 127 characters: fits with its NUL */
    shub_err_t err;
    shub_err_set_path(&err, SHUB_ELIMIT, path, "x");
    assert_string_equal(err.path, path);

    char over[SHUB_ERR_PATH_MAX + 1];
    memset(over, 'q', sizeof over - 1);
    over[sizeof over - 1] = '\0'; /* 128 characters: one too many */
    over[sizeof over - 2] = 'z';
    shub_err_set_path(&err, SHUB_ELIMIT, over, "x");
    assert_int_equal(strlen(err.path), SHUB_ERR_PATH_MAX - 1);
    assert_memory_equal(err.path, "...", 3);
    assert_int_equal(err.path[SHUB_ERR_PATH_MAX - 2], 'z');
}

static void test_shub_err_set_at_long_file_keeps_tail(void **state)
{
    (void)state;
    char file[600];
    memset(file, 'd', sizeof file - 1);
    file[sizeof file - 1] = '\0';
    memcpy(file + sizeof file - 11, "marac.yaml", 10);
    shub_err_t err;
    shub_err_set_at(&err, SHUB_ECONFIG, file, 1, 1, "x");
    assert_int_equal(strlen(err.file), SHUB_ERR_FILE_MAX - 1);
    assert_memory_equal(err.file, "...", 3);
    assert_string_equal(err.file + strlen(err.file) - 10, "marac.yaml");
}

static void test_shub_err_set_long_message_truncated(void **state)
{
    (void)state;
    char text[1000];
    memset(text, 'm', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    shub_err_t err;
    shub_err_set(&err, SHUB_EINVAL, "%s", text);
    assert_int_equal(strlen(err.msg), SHUB_ERR_MSG_MAX - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_strerror_every_code_has_its_own_text),
        cmocka_unit_test(test_shub_err_token_every_code_has_its_token),
        cmocka_unit_test(test_shub_err_token_tokens_are_distinct),
        cmocka_unit_test(test_shub_strerror_unknown_code_is_generic),
        cmocka_unit_test(test_shub_err_set_fills_code_and_message_returns_code),
        cmocka_unit_test(test_shub_err_set_null_err_returns_code),
        cmocka_unit_test(test_shub_err_clear_zeroes_everything),
        cmocka_unit_test(test_shub_err_set_path_replaces_earlier_detail),
        cmocka_unit_test(test_shub_err_format_file_line_column_shape),
        cmocka_unit_test(test_shub_err_format_file_line_shape),
        cmocka_unit_test(test_shub_err_format_file_only_shape),
        cmocka_unit_test(test_shub_err_format_path_shape),
        cmocka_unit_test(test_shub_err_format_plain_shape),
        cmocka_unit_test(test_shub_err_format_empty_message_uses_strerror),
        cmocka_unit_test(test_shub_err_format_no_error_says_so),
        cmocka_unit_test(test_shub_err_format_small_buffer_truncates_with_nul),
        cmocka_unit_test(test_shub_err_set_path_long_path_keeps_tail),
        cmocka_unit_test(test_shub_err_set_path_path_at_limit_is_not_cut),
        cmocka_unit_test(test_shub_err_set_at_long_file_keeps_tail),
        cmocka_unit_test(test_shub_err_set_long_message_truncated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
