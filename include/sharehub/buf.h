/*
 * buf: a growable byte buffer, and the text helpers built on it.
 *
 * The codec encodes into one, the audit tool renders tables, CSV and JSON
 * into one, the log formats a line into one. The struct is public so an
 * encoder can write straight into `data` after shub_buf_reserve; everything
 * else goes through the functions, which grow the buffer geometrically
 * through the allocation hook (alloc.h) and leave it unchanged on failure.
 */
#ifndef SHAREHUB_BUF_H
#define SHAREHUB_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct shub_buf {
    uint8_t *data; /* owned; shub_buf_free releases it */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
} shub_buf_t;

/* Ensures room for `extra` more bytes. SHUB_ENOMEM. */
int shub_buf_reserve(shub_buf_t *buf, size_t extra);

/* Appends bytes. SHUB_ENOMEM. */
int shub_buf_append(shub_buf_t *buf, const void *data, size_t len);

/* Appends the text s (without its NUL). SHUB_ENOMEM. */
int shub_buf_puts(shub_buf_t *buf, const char *s);

/* Appends printf-style text of any length. SHUB_ENOMEM, or SHUB_EINVAL for a
 * format the C library refuses. */
int shub_buf_printf(shub_buf_t *buf, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* As shub_buf_printf, with a va_list (for printf-like functions of its
 * callers). */
int shub_buf_vprintf(shub_buf_t *buf, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* The contents as a C string: a NUL is kept after the last byte (not counted
 * in len). Borrowed until the next change; NULL when out of memory. */
const char *shub_buf_text(shub_buf_t *buf);

/* Frees the storage and zeroes the struct; accepts NULL. */
void shub_buf_free(shub_buf_t *buf);

/* Copies src into dst[cap] (cut to fit, always NUL-terminated; "" for NULL).
 * For fixed-size fields such as ids and names in structs. */
void shub_str_copy(char *dst, size_t cap, const char *src);

#endif
