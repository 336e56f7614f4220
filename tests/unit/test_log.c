/*
 * test_log: what an operator sees on stderr. Each test points stderr at a
 * file of its own and reads the lines back: on a terminal or in a file, a
 * line starts with the time; when stderr is the journal (JOURNAL_STREAM
 * names its device and inode), with the journal's priority and no time.
 * Levels below the one set are not written, and a message holding newlines
 * is still one line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "sharehub/log.h"
#include "sharehub/time.h"

typedef struct capture {
    char path[64];
    int saved; /* the real stderr */
} capture_t;

/* Sends stderr to a new temporary file. */
static void capture_start(capture_t *c)
{
    snprintf(c->path, sizeof c->path, "/tmp/test_log.XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    fflush(stderr);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
    close(fd);
}

/* Restores stderr and returns what was written (static storage). */
static const char *capture_end(capture_t *c)
{
    static char text[8192];
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    FILE *f = fopen(c->path, "rb");
    assert_non_null(f);
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    unlink(c->path);
    text[n] = '\0';
    return text;
}

/* Sets JOURNAL_STREAM to stderr's own device and inode. */
static void journal_is_stderr(void)
{
    struct stat st;
    char value[64];
    assert_int_equal(fstat(STDERR_FILENO, &st), 0);
    snprintf(value, sizeof value, "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", value, 1);
}

static void log_every_level(void)
{
    shub_debug("checkpoint seq=%d", 7);
    shub_info("share event=%s from=%s", "e1", "wmp");
    shub_warn("peer silent peer=%s", "wmp");
    shub_error("store failed: %s", "disk full");
}

static void test_shub_log_journal_lines_carry_priority_not_time(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr();
    shub_log_init("/usr/bin/sharehub-broker", SHUB_LOG_DEBUG);
    log_every_level();
    const char *out = capture_end(&c);
    unsetenv("JOURNAL_STREAM");
    assert_string_equal(out, "<7>sharehub-broker debug: checkpoint seq=7\n"
                             "<6>sharehub-broker info: share event=e1 from=wmp\n"
                             "<4>sharehub-broker warn: peer silent peer=wmp\n"
                             "<3>sharehub-broker error: store failed: disk full\n");
}

static void test_shub_log_elsewhere_lines_start_with_the_time(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    unsetenv("JOURNAL_STREAM");
    int64_t before = shub_now_ms();
    shub_log_init("sharehub-agent", SHUB_LOG_INFO);
    log_every_level();
    int64_t after = shub_now_ms();
    const char *out = capture_end(&c);
    static const char *const want[] = {
        " sharehub-agent info: share event=e1 from=wmp",
        " sharehub-agent warn: peer silent peer=wmp",
        " sharehub-agent error: store failed: disk full",
    };
    const char *line = out;
    for (size_t i = 0; i < 3; i++) {
        const char *nl = strchr(line, '\n');
        assert_non_null(nl);
        char stamp[SHUB_TIME_TEXT];
        memcpy(stamp, line, SHUB_TIME_TEXT - 1);
        stamp[SHUB_TIME_TEXT - 1] = '\0';
        int64_t ms = 0;
        assert_int_equal(shub_time_parse(stamp, &ms, NULL), 0);
        assert_true(ms >= before && ms <= after);
        assert_int_equal((size_t)(nl - line), SHUB_TIME_TEXT - 1 + strlen(want[i]));
        assert_memory_equal(line + SHUB_TIME_TEXT - 1, want[i], strlen(want[i]));
        line = nl + 1;
    }
    assert_string_equal(line, ""); /* debug was below the level set */
}

static void test_shub_log_journal_stream_of_another_file_is_ignored(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    setenv("JOURNAL_STREAM", "1:2", 1); /* inherited, but stderr was redirected */
    shub_log_init("sharehub-broker", SHUB_LOG_INFO);
    shub_info("started");
    const char *out = capture_end(&c);
    unsetenv("JOURNAL_STREAM");
    assert_true(out[0] >= '0' && out[0] <= '9'); /* a time, not "<6>" */
    assert_non_null(strstr(out, " sharehub-broker info: started\n"));
}

static void test_shub_log_newlines_in_a_message_stay_one_line(void **state)
{
    (void)state;
    capture_t c;
    capture_start(&c);
    journal_is_stderr();
    shub_log_init("sharehub-broker", SHUB_LOG_INFO);
    shub_warn("peer said %s", "line one\nline two\r\n");
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    shub_info("%s", big);
    const char *out = capture_end(&c);
    unsetenv("JOURNAL_STREAM");
    const char *second = strchr(out, '\n') + 1;
    assert_memory_equal(
        out, "<4>sharehub-broker warn: peer said line one line two  \n",
        strlen("<4>sharehub-broker warn: peer said line one line two  \n"));
    assert_non_null(strchr(second, '\n'));
    assert_string_equal(strchr(second, '\n'), "\n"); /* cut, and still one line */
    assert_int_equal(strlen(second), 1023);
}

static void test_shub_log_level_parse_names(void **state)
{
    (void)state;
    assert_int_equal(shub_log_level_parse("debug"), SHUB_LOG_DEBUG);
    assert_int_equal(shub_log_level_parse("info"), SHUB_LOG_INFO);
    assert_int_equal(shub_log_level_parse("warn"), SHUB_LOG_WARN);
    assert_int_equal(shub_log_level_parse("error"), SHUB_LOG_ERROR);
    assert_int_equal(shub_log_level_parse("off"), SHUB_LOG_OFF);
    assert_int_equal(shub_log_level_parse("loud"), -1);
    assert_int_equal(shub_log_level_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_log_journal_lines_carry_priority_not_time),
        cmocka_unit_test(test_shub_log_elsewhere_lines_start_with_the_time),
        cmocka_unit_test(test_shub_log_journal_stream_of_another_file_is_ignored),
        cmocka_unit_test(test_shub_log_newlines_in_a_message_stay_one_line),
        cmocka_unit_test(test_shub_log_level_parse_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
