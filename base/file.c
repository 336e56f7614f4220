/*
 * file: see include/sharehub/file.h. The size from fstat is only a first
 * guess for the buffer: the file is read to its end, so one that grows or
 * shrinks while it is read gives what was there, within the cap.
 */
#include "sharehub/file.h"

#include "sharehub/alloc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int fail(shub_err_t *err, int code, const char *path, const char *what, int errnum)
{
    if (errnum)
        return shub_err_set_at(err, code, path, 0, 0, "%s: %s", what, strerror(errnum));
    return shub_err_set_at(err, code, path, 0, 0, "%s", what);
}

int shub_file_read(const char *path, size_t max_bytes, char **data_p, size_t *len_p,
                   shub_err_t *err)
{
    if (!path || !data_p || !len_p)
        return shub_err_set(err, SHUB_EINVAL, "no file to read");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(err, errno == ENOENT ? SHUB_ENOTFOUND : SHUB_EIO, path, "cannot open",
                    errno);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return fail(err, SHUB_EIO, path, "not a regular file", 0);
    }
    if ((unsigned long long)st.st_size > max_bytes) {
        close(fd);
        return shub_err_set_at(err, SHUB_ELIMIT, path, 0, 0,
                               "file of %lld bytes exceeds limit %zu",
                               (long long)st.st_size, max_bytes);
    }
    size_t cap = (size_t)st.st_size + 1, len = 0;
    char *data = shub_malloc(cap + 1);
    int rc = 0;
    while (data && rc == 0) {
        ssize_t r = read(fd, data + len, cap - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = fail(err, SHUB_EIO, path, "cannot read", errno);
        } else if (r == 0) {
            break;
        } else if ((len += (size_t)r) > max_bytes) {
            rc = shub_err_set_at(err, SHUB_ELIMIT, path, 0, 0,
                                 "file of more than %zu bytes exceeds limit %zu",
                                 max_bytes, max_bytes);
        } else if (len == cap) { /* it grew since fstat */
            char *more = shub_realloc(data, cap * 2 + 1);
            if (!more)
                break;
            data = more;
            cap *= 2;
        }
    }
    close(fd);
    if (!data || (rc == 0 && len == cap)) {
        shub_free(data);
        return fail(err, SHUB_ENOMEM, path, "out of memory reading the file", 0);
    }
    if (rc) {
        shub_free(data);
        return rc;
    }
    data[len] = '\0';
    *data_p = data;
    *len_p = len;
    return 0;
}

int shub_file_remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[4096];
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path)
            continue; /* never a shortened name: it could be another file */
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            shub_file_remove_tree(path);
        else
            unlink(path);
    }
    if (d)
        closedir(d);
    return rmdir(dir) == 0 ? 0 : SHUB_EIO;
}
