/*
 * test_cli: the programs' shared edge. Every SHUB_E* result maps to the exit
 * code the table says, and only to codes the table lists (so --help and the
 * man pages never miss one); the help prints each row; a required file that
 * is missing, or of the wrong kind, is named with its role and is "no
 * input" (66); --help is 0 and a wrong option 64; a signal reaches the
 * handler installed for it; a whole input is read, and one longer than the
 * limit is seen to be.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sysexits.h>
#include <unistd.h>

#include "sharehub/alloc.h"
#include "sharehub/cli.h"
#include "sharehub/version.h"

static const struct {
    int rc, code;
} mapping[] = {
    {SHUB_OK, EX_OK},
    {SHUB_ECONFIG, EX_CONFIG},
    {SHUB_ECRYPTO, EX_CONFIG},
    {SHUB_ENOTFOUND, EX_NOINPUT},
    {SHUB_EIO, EX_IOERR},
    {SHUB_EDB, EX_IOERR},
    {SHUB_EEXIST, EX_CANTCREAT},
    {SHUB_EBUSY, EX_UNAVAILABLE},
    {SHUB_EPROTO, EX_UNAVAILABLE},
    {SHUB_ENOMEM, EX_OSERR},
    {SHUB_EINVAL, EX_SOFTWARE},
    {SHUB_EMALFORMED, EX_DATAERR},
    {SHUB_ETYPE, EX_DATAERR},
    {SHUB_EMISSING, EX_DATAERR},
    {SHUB_EDUPKEY, EX_DATAERR},
    {SHUB_ELIMIT, EX_DATAERR},
    {SHUB_EUTF8, EX_DATAERR},
    {SHUB_EUNKNOWN, EX_DATAERR},
    {SHUB_EVERSION, EX_DATAERR},
    {SHUB_EVALUE, EX_DATAERR},
    {-999, EX_SOFTWARE},
};

static bool in_table(int code)
{
#define ROW(c, name, meaning)                                                            \
    if (code == (c))                                                                     \
        return true;
    SHUB_EXIT_CODES(ROW)
#undef ROW
    return false;
}

static void test_shub_cli_exit_every_result_maps_to_a_row_of_the_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof mapping / sizeof mapping[0]; i++) {
        assert_int_equal(shub_cli_exit(mapping[i].rc), mapping[i].code);
        assert_true(in_table(shub_cli_exit(mapping[i].rc)));
    }
}

static void test_shub_cli_exit_table_rows_are_the_sysexits_codes(void **state)
{
    (void)state;
#define ROW(c, name, meaning)                                                            \
    assert_true(strcmp(name, "-") == 0 || (c) == EX_OK ||                                \
                ((c) >= EX__BASE && (c) <= EX__MAX));
    SHUB_EXIT_CODES(ROW)
#undef ROW
    assert_true(in_table(EX_NOINPUT) && in_table(EX_CONFIG) && in_table(EX_UNAVAILABLE));
}

/* Captures what fn writes to a FILE. */
static char *captured(void (*fn)(FILE *))
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    fn(f);
    fclose(f);
    return text;
}

static void test_shub_cli_exit_help_prints_every_row(void **state)
{
    (void)state;
    char *text = captured(shub_cli_exit_help);
    assert_non_null(strstr(text, "exit status:\n"));
    char line[160];
#define ROW(c, name, meaning)                                                            \
    snprintf(line, sizeof line, "  %3d  %s\n", c, meaning);                              \
    assert_non_null(strstr(text, line));
    SHUB_EXIT_CODES(ROW)
#undef ROW
    free(text);
}

static void test_shub_cli_need_missing_file_is_named_66(void **state)
{
    (void)state;
    shub_err_t err;
    assert_int_equal(shub_cli_need("/nonexistent/orgs.yaml", SHUB_CLI_FILE,
                                   "the partnership's organisations", &err),
                     EX_NOINPUT);
    assert_string_equal(err.msg,
                        "cannot open '/nonexistent/orgs.yaml' (the partnership's "
                        "organisations): No such file or directory");
}

static void test_shub_cli_need_wrong_kind_is_named_66(void **state)
{
    (void)state;
    shub_err_t err;
    assert_int_equal(shub_cli_need("/", SHUB_CLI_FILE, "a key", &err), EX_NOINPUT);
    assert_string_equal(err.msg, "cannot open '/' (a key): not a regular file");
    char dir[] = "/tmp/test_cli_XXXXXX";
    int fd = mkstemp(dir);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(shub_cli_need(dir, SHUB_CLI_DIR, "a directory", &err), EX_NOINPUT);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(shub_cli_need(dir, SHUB_CLI_FILE, "a file", &err), 0);
    unlink(dir);
    assert_int_equal(shub_cli_need("/tmp", SHUB_CLI_DIR, "a directory", &err), 0);
}

static void test_shub_cli_version_prints_the_project_version(void **state)
{
    (void)state;
    assert_true(strlen(SHUB_VERSION) >= 5); /* "0.1.0" */
    assert_int_equal(shub_cli_version("sharehub-test"), 0);
}

static FILE *usage_out;

static void note_usage(FILE *out)
{
    usage_out = out;
}

static void
test_shub_cli_usage_help_is_0_on_stdout_wrong_option_64_on_stderr(void **state)
{
    (void)state;
    assert_int_equal(shub_cli_usage(note_usage, true), 0);
    assert_ptr_equal(usage_out, stdout);
    assert_int_equal(shub_cli_usage(note_usage, false), EX_USAGE);
    assert_ptr_equal(usage_out, stderr);
}

static volatile sig_atomic_t signalled;

static void on_signal(int sig)
{
    signalled = sig;
}

static void test_shub_cli_on_signal_handler_sees_the_signal(void **state)
{
    (void)state;
    shub_cli_on_signal(SIGUSR1, on_signal);
    raise(SIGUSR1);
    assert_int_equal(signalled, SIGUSR1);
    signal(SIGUSR1, SIG_DFL);
}

/* A temporary stream holding n bytes of a repeating pattern, rewound. */
static FILE *stream_of(size_t n)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    for (size_t i = 0; i < n; i++)
        fputc('a' + (int)(i % 26), f);
    rewind(f);
    return f;
}

static void test_shub_cli_read_all_reads_the_whole_stream(void **state)
{
    (void)state;
    FILE *f = stream_of(20000); /* past the first buffer, so it grows */
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(shub_cli_read_all(f, 1 << 20, &data, &len), 0);
    assert_int_equal(len, 20000);
    assert_int_equal(data[0], 'a');
    assert_int_equal(data[19999], 'a' + 19999 % 26);
    shub_free(data);
    fclose(f);
}

static void test_shub_cli_read_all_more_than_limit_is_longer_than_limit(void **state)
{
    (void)state;
    FILE *f = stream_of(20000);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(shub_cli_read_all(f, 100, &data, &len), 0);
    assert_true(len > 100);
    shub_free(data);
    fclose(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_cli_exit_every_result_maps_to_a_row_of_the_table),
        cmocka_unit_test(test_shub_cli_exit_table_rows_are_the_sysexits_codes),
        cmocka_unit_test(test_shub_cli_exit_help_prints_every_row),
        cmocka_unit_test(test_shub_cli_need_missing_file_is_named_66),
        cmocka_unit_test(test_shub_cli_need_wrong_kind_is_named_66),
        cmocka_unit_test(test_shub_cli_version_prints_the_project_version),
        cmocka_unit_test(
            test_shub_cli_usage_help_is_0_on_stdout_wrong_option_64_on_stderr),
        cmocka_unit_test(test_shub_cli_on_signal_handler_sees_the_signal),
        cmocka_unit_test(test_shub_cli_read_all_reads_the_whole_stream),
        cmocka_unit_test(test_shub_cli_read_all_more_than_limit_is_longer_than_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
