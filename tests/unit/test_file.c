/*
 * test_file: reading a whole small file. The bytes come back with a NUL
 * after them; a missing file, a directory, a device and a file over the cap
 * each get an error that names the file and says why; out of memory leaks
 * nothing. A directory tree is removed whole, without following a link out
 * of it.
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

#include "sharehub/alloc.h"
#include "sharehub/file.h"

/* A temporary file holding text; the caller unlinks path. */
static void make_file(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/test_file.XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
}

static void test_shub_file_read_whole_file_nul_terminated(void **state)
{
    (void)state;
    char path[64];
    make_file(path, "areas: [coventry]\norgs: []\n");
    char *data = NULL;
    size_t len = 0;
    shub_err_t err;
    assert_int_equal(shub_file_read(path, 1024, &data, &len, &err), 0);
    assert_int_equal(len, 27);
    assert_string_equal(data, "areas: [coventry]\norgs: []\n");
    shub_free(data);
    /* exactly at the cap is within it */
    assert_int_equal(shub_file_read(path, 27, &data, &len, &err), 0);
    shub_free(data);
    unlink(path);

    make_file(path, "");
    assert_int_equal(shub_file_read(path, 10, &data, &len, &err), 0);
    assert_int_equal(len, 0);
    assert_string_equal(data, "");
    shub_free(data);
    unlink(path);
}

static void test_shub_file_read_each_failure_names_file_and_reason(void **state)
{
    (void)state;
    char *data = NULL;
    size_t len = 0;
    shub_err_t err;
    char line[512];

    assert_int_equal(shub_file_read("/nonexistent/hub.yaml", 10, &data, &len, &err),
                     SHUB_ENOTFOUND);
    assert_string_equal(shub_err_format(&err, line, sizeof line),
                        "/nonexistent/hub.yaml: cannot open: No such file or directory");
    assert_null(data);

    assert_int_equal(shub_file_read("/tmp", 10, &data, &len, &err), SHUB_EIO);
    assert_string_equal(shub_err_format(&err, line, sizeof line),
                        "/tmp: not a regular file");
    assert_int_equal(shub_file_read("/dev/null", 10, &data, &len, &err), SHUB_EIO);
    assert_string_equal(err.msg, "not a regular file");

    char path[64];
    make_file(path, "0123456789abc");
    assert_int_equal(shub_file_read(path, 12, &data, &len, &err), SHUB_ELIMIT);
    assert_string_equal(err.file, path);
    assert_string_equal(err.msg, "file of 13 bytes exceeds limit 12");
    assert_null(data);
    assert_int_equal(shub_file_read(NULL, 12, &data, &len, &err), SHUB_EINVAL);
    assert_int_equal(shub_file_read(path, 12, &data, &len, NULL), SHUB_ELIMIT);
    unlink(path);
}

static void test_shub_file_read_out_of_memory_returns_enomem(void **state)
{
    (void)state;
    char path[64];
    make_file(path, "text");
    char *data = NULL;
    size_t len = 0;
    shub_err_t err;
    shub_alloc_fail_after(0);
    int rc = shub_file_read(path, 100, &data, &len, &err);
    shub_alloc_fail_after(-1);
    assert_int_equal(rc, SHUB_ENOMEM);
    assert_null(data);
    assert_string_equal(err.msg, "out of memory reading the file");
    unlink(path);
}

static void test_shub_file_remove_tree_removes_all_below_not_through_links(void **state)
{
    (void)state;
    char outside[64], dir[] = "/tmp/test_file_tree.XXXXXX", path[128];
    make_file(outside, "kept");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/sub", dir);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/sub/file", dir);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    snprintf(path, sizeof path, "%s/link", dir);
    assert_int_equal(symlink(outside, path), 0);

    assert_int_equal(shub_file_remove_tree(dir), 0);
    assert_int_not_equal(access(dir, F_OK), 0);
    assert_int_equal(access(outside, F_OK), 0);
    unlink(outside);
    assert_int_equal(shub_file_remove_tree(dir), SHUB_EIO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_file_read_whole_file_nul_terminated),
        cmocka_unit_test(test_shub_file_read_each_failure_names_file_and_reason),
        cmocka_unit_test(test_shub_file_read_out_of_memory_returns_enomem),
        cmocka_unit_test(test_shub_file_remove_tree_removes_all_below_not_through_links),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
