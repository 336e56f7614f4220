/*
 * buf: see include/sharehub/buf.h. Capacity doubles from 256 bytes, so n
 * appended bytes cost O(log n) reallocations.
 */
#include "sharehub/buf.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int shub_buf_reserve(shub_buf_t *buf, size_t extra)
{
    if (buf->cap - buf->len >= extra)
        return 0;
    size_t cap = buf->cap ? buf->cap : 256;
    while (cap - buf->len < extra) {
        if (cap > SIZE_MAX / 2)
            return SHUB_ENOMEM;
        cap *= 2;
    }
    uint8_t *data = shub_realloc(buf->data, cap);
    if (!data)
        return SHUB_ENOMEM;
    buf->data = data;
    buf->cap = cap;
    return 0;
}

int shub_buf_append(shub_buf_t *buf, const void *data, size_t len)
{
    int rc = shub_buf_reserve(buf, len);
    if (rc)
        return rc;
    if (len)
        memcpy(buf->data + buf->len, data, len);
    buf->len += len;
    return 0;
}

int shub_buf_puts(shub_buf_t *buf, const char *s)
{
    return shub_buf_append(buf, s, strlen(s));
}

int shub_buf_vprintf(shub_buf_t *buf, const char *fmt, va_list ap)
{
    va_list again;
    va_copy(again, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    int rc = n < 0 ? SHUB_EINVAL : 0;
    /* Room for vsnprintf's NUL too; it is written but not counted. */
    if (rc == 0)
        rc = shub_buf_reserve(buf, (size_t)n + 1);
    if (rc == 0) {
        vsnprintf((char *)buf->data + buf->len, (size_t)n + 1, fmt, again);
        buf->len += (size_t)n;
    }
    va_end(again);
    return rc;
}

int shub_buf_printf(shub_buf_t *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = shub_buf_vprintf(buf, fmt, ap);
    va_end(ap);
    return rc;
}

const char *shub_buf_text(shub_buf_t *buf)
{
    if (shub_buf_reserve(buf, 1) != 0)
        return NULL;
    buf->data[buf->len] = '\0';
    return (const char *)buf->data;
}

void shub_buf_free(shub_buf_t *buf)
{
    if (!buf)
        return;
    shub_free(buf->data);
    *buf = (shub_buf_t){0};
}

void shub_str_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}
