/*
 * http: the read-only HTTP surfaces (the broker's metrics, the audit tool's
 * pages) on libmicrohttpd. It owns what every surface shares: binding to a
 * loopback address only, one thread of its own (libmicrohttpd's internal
 * polling thread), limits on connections and time, GET and HEAD only (any
 * other method is answered 405 with `Allow: GET, HEAD` before the surface
 * sees it), the query arguments as libmicrohttpd decoded them, and headers
 * every answer carries (no caching, no sniffing, no framing; the surface's
 * Content-Security-Policy).
 *
 * A surface is one function from a request to a response. It runs on the
 * HTTP thread: it must read only what is safe to read from there (the broker
 * hands its metrics a snapshot under a mutex; the audit tool's pages open
 * their own read-only store connection).
 */
#ifndef SHAREHUB_HTTP_H
#define SHAREHUB_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/buf.h"
#include "sharehub/err.h"

#define SHUB_HTTP_MAX_ARGS        32 /* query arguments a request may carry */
#define SHUB_HTTP_MAX_CONNECTIONS 16 /* at once: a person or a scraper, not a crowd */
#define SHUB_HTTP_TIMEOUT_S       10 /* an idle connection is closed after this */

typedef struct shub_http shub_http_t;

typedef struct shub_http_arg {
    const char *key, *value; /* decoded; value may be "" but not NULL */
} shub_http_arg_t;

typedef struct shub_http_request {
    const char *method; /* "GET" or "HEAD" */
    const char *path;   /* decoded, without the query */
    const shub_http_arg_t *args;
    size_t n_args;
} shub_http_request_t;

typedef struct shub_http_response {
    int status;       /* 200 unless the surface says otherwise */
    const char *type; /* Content-Type; "text/html; charset=utf-8" unless set */
    shub_buf_t body;  /* the surface appends to it; freed by http */
} shub_http_response_t;

/* The surface: fills resp from req. Called on the HTTP thread, one request
 * at a time. */
typedef void(shub_http_fn)(const shub_http_request_t *req, shub_http_response_t *resp,
                           void *ctx);

/* Starts serving on address ("127.0.0.1:PORT", "localhost:PORT" or
 * "[::1]:PORT"; port 0: any free one). csp is the Content-Security-Policy
 * every response carries. *out gets the server. SHUB_EINVAL for an address
 * that is not loopback, SHUB_EIO if it cannot bind (naming the address and
 * the reason), SHUB_ENOMEM. */
int shub_http_start(const char *address, const char *csp, shub_http_fn *fn, void *ctx,
                    shub_http_t **out, shub_err_t *err);

/* The port actually bound. */
uint16_t shub_http_port(const shub_http_t *h);

/* Stops the thread, closes the socket; accepts NULL; nulls the caller's
 * pointer. */
void shub_http_stop(shub_http_t **h_p);

/* The value of query argument key, or NULL. */
const char *shub_http_arg(const shub_http_request_t *req, const char *key);

#endif
