/*
 * err: see include/sharehub/err.h. Messages are truncated, never overflowed:
 * an error about hostile input must not become a second bug.
 */
#include "sharehub/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const struct {
    int code;
    const char *token;
    const char *text;
} codes[] = {
    {SHUB_OK, "ok", "success"},
    {SHUB_ENOMEM, "no-memory", "out of memory"},
    {SHUB_EINVAL, "invalid", "invalid argument"},
    {SHUB_EPROTO, "protocol", "protocol violation"},
    {SHUB_ECONFIG, "config", "configuration error"},
    {SHUB_EIO, "io", "input/output error"},
    {SHUB_EDB, "database", "database error"},
    {SHUB_ECRYPTO, "crypto", "cryptographic failure"},
    {SHUB_ENOTFOUND, "not-found", "not found"},
    {SHUB_EEXIST, "exists", "already exists"},
    {SHUB_EBUSY, "busy", "busy, try again later"},
    {SHUB_EMALFORMED, "malformed", "malformed message"},
    {SHUB_ETYPE, "wrong-type", "field has the wrong type"},
    {SHUB_EMISSING, "missing-field", "required field missing"},
    {SHUB_EDUPKEY, "duplicate-key", "duplicate map key"},
    {SHUB_ELIMIT, "limit", "limit exceeded"},
    {SHUB_EUTF8, "bad-utf8", "text is not valid UTF-8"},
    {SHUB_EUNKNOWN, "unknown-type", "unknown message type"},
    {SHUB_EVERSION, "version", "unsupported protocol version"},
    {SHUB_EVALUE, "bad-value", "value not allowed"},
};

static int find(int code)
{
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (codes[i].code == code)
            return (int)i;
    return -1;
}

const char *shub_strerror(int code)
{
    int i = find(code);
    return i < 0 ? "unknown error" : codes[i].text;
}

const char *shub_err_token(int code)
{
    int i = find(code);
    return i < 0 ? "error" : codes[i].token;
}

void shub_err_clear(shub_err_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

static void copy_cut(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n < size) {
        memcpy(dst, src, n + 1);
        return;
    }
    /* Keep the tail: the deepest part of a path is the most telling. */
    memcpy(dst, "...", 3);
    memcpy(dst + 3, src + n - (size - 4), size - 4);
    dst[size - 1] = '\0';
}

/* The format attribute lets the compiler check every caller's arguments, and
 * keeps clang's -Wformat-nonliteral quiet about the vsnprintf below. */
__attribute__((format(printf, 7, 0))) static int vset(shub_err_t *err, int code,
                                                      const char *path, const char *file,
                                                      int line, int column,
                                                      const char *fmt, va_list ap)
{
    if (!err)
        return code;
    shub_err_clear(err);
    err->code = code;
    if (path)
        copy_cut(err->path, sizeof err->path, path);
    if (file)
        copy_cut(err->file, sizeof err->file, file);
    err->line = line;
    err->column = column;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    return code;
}

int shub_err_set(shub_err_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int shub_err_set_path(shub_err_t *err, int code, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, path, NULL, 0, 0, fmt, ap);
    va_end(ap);
    return code;
}

int shub_err_set_at(shub_err_t *err, int code, const char *file, int line, int column,
                    const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vset(err, code, NULL, file, line, column, fmt, ap);
    va_end(ap);
    return code;
}

const char *shub_err_format(const shub_err_t *err, char *buf, size_t size)
{
    if (!buf || size == 0)
        return buf;
    if (!err || err->code == 0) {
        snprintf(buf, size, "no error");
    } else if (err->file[0] && err->line > 0 && err->column > 0) {
        snprintf(buf, size, "%s:%d:%d: %s", err->file, err->line, err->column, err->msg);
    } else if (err->file[0] && err->line > 0) {
        snprintf(buf, size, "%s:%d: %s", err->file, err->line, err->msg);
    } else if (err->file[0]) {
        snprintf(buf, size, "%s: %s", err->file, err->msg);
    } else if (err->path[0]) {
        snprintf(buf, size, "%s: %s", err->path, err->msg);
    } else {
        snprintf(buf, size, "%s", err->msg[0] ? err->msg : shub_strerror(err->code));
    }
    return buf;
}
