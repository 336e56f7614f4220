/*
 * http: libmicrohttpd under the read-only surfaces (include/sharehub/http.h).
 * libmicrohttpd parses the request line, headers and query string; this file
 * binds, refuses what is not a GET, gathers the decoded arguments, and adds
 * the headers every page and every scrape carries.
 */
#include "sharehub/http.h"

#include "sharehub/alloc.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct shub_http {
    struct MHD_Daemon *d;
    shub_http_fn *fn;
    void *ctx;
    char *csp;
    uint16_t port;
};

typedef struct gather {
    shub_http_arg_t args[SHUB_HTTP_MAX_ARGS];
    size_t n;
    bool too_many;
} gather_t;

static enum MHD_Result on_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                              const char *value)
{
    gather_t *g = cls;
    (void)kind;
    if (g->n == SHUB_HTTP_MAX_ARGS) {
        g->too_many = true;
        return MHD_NO;
    }
    g->args[g->n++] = (shub_http_arg_t){key ? key : "", value ? value : ""};
    return MHD_YES;
}

static enum MHD_Result answer(shub_http_t *h, struct MHD_Connection *conn, int status,
                              const char *type, const void *body, size_t len, bool head)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(head ? 0 : len, (void *)body,
                                                             MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", type);
    MHD_add_response_header(r, "Content-Security-Policy", h->csp);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "X-Frame-Options", "DENY");
    MHD_add_response_header(r, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(r, "Cache-Control", "no-store");
    if (status == 405)
        MHD_add_response_header(r, "Allow", "GET, HEAD");
    enum MHD_Result rc = MHD_queue_response(conn, (unsigned)status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **con_cls)
{
    shub_http_t *h = cls;
    (void)version;
    (void)upload;
    /* The first call of a request only announces it; a body (which only a
     * method we refuse could carry) is then drained unread. */
    if (*con_cls == NULL) {
        *con_cls = h;
        return MHD_YES;
    }
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    bool head = strcmp(method, "HEAD") == 0;
    if (!head && strcmp(method, "GET") != 0) {
        static const char text[] = "405 method not allowed: these pages are read-only\n";
        return answer(h, conn, 405, "text/plain; charset=utf-8", text, sizeof text - 1,
                      false);
    }
    gather_t g = {.n = 0};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_arg, &g);
    if (g.too_many) {
        static const char text[] = "400 bad request: too many query arguments\n";
        return answer(h, conn, 400, "text/plain; charset=utf-8", text, sizeof text - 1,
                      head);
    }
    shub_http_request_t req = {
        .method = method, .path = url, .args = g.args, .n_args = g.n};
    shub_http_response_t resp = {.status = 200, .type = "text/html; charset=utf-8"};
    h->fn(&req, &resp, h->ctx);
    enum MHD_Result rc;
    if (!shub_buf_text(&resp.body)) {
        static const char text[] = "500 out of memory\n";
        rc = answer(h, conn, 500, "text/plain; charset=utf-8", text, sizeof text - 1,
                    head);
    } else {
        rc = answer(h, conn, resp.status, resp.type, resp.body.data, resp.body.len, head);
    }
    shub_buf_free(&resp.body);
    return rc;
}

/* "HOST:PORT" into a loopback socket address. */
static int parse_address(const char *address, struct sockaddr_storage *ss, socklen_t *len,
                         shub_err_t *err)
{
    const char *colon = address ? strrchr(address, ':') : NULL;
    char host[64];
    unsigned long port = 0;
    if (!colon || (size_t)(colon - address) >= sizeof host || !colon[1])
        goto bad;
    for (const char *p = colon + 1; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            goto bad;
        port = port * 10 + (unsigned long)(*p - '0');
    }
    if (port > 65535)
        goto bad;
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    memset(ss, 0, sizeof *ss);
    if (strcmp(host, "[::1]") == 0) {
        struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        a6->sin6_addr = in6addr_loopback;
        *len = sizeof *a6;
        return 0;
    }
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    a4->sin_family = AF_INET;
    a4->sin_port = htons((uint16_t)port);
    if (strcmp(host, "localhost") == 0)
        a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    else if (inet_pton(AF_INET, host, &a4->sin_addr) != 1 ||
             (ntohl(a4->sin_addr.s_addr) >> 24) != 127)
        goto bad;
    *len = sizeof *a4;
    return 0;
bad:
    return shub_err_set(err, SHUB_EINVAL,
                        "address '%s' is not a loopback address and port such as "
                        "127.0.0.1:8080",
                        address ? address : "(none)");
}

int shub_http_start(const char *address, const char *csp, shub_http_fn *fn, void *ctx,
                    shub_http_t **out, shub_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len = 0;
    int rc;
    if (!fn || !out || !csp)
        return shub_err_set(err, SHUB_EINVAL, "http: missing argument");
    if ((rc = parse_address(address, &ss, &len, err)))
        return rc;
    shub_http_t *h = shub_calloc(1, sizeof *h);
    if (!h || !(h->csp = shub_strdup(csp))) {
        shub_free(h);
        return shub_err_set(err, SHUB_ENOMEM, "http: out of memory");
    }
    h->fn = fn;
    h->ctx = ctx;
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SHUB_HTTP_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SHUB_HTTP_TIMEOUT_S, MHD_OPTION_END);
    if (!h->d) {
        shub_free(h->csp);
        shub_free(h);
        return shub_err_set(
            err, SHUB_EIO,
            "cannot serve HTTP on '%s' (address in use, or not this host's)", address);
    }
    const union MHD_DaemonInfo *info =
        MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return 0;
}

uint16_t shub_http_port(const shub_http_t *h)
{
    return h ? h->port : 0;
}

void shub_http_stop(shub_http_t **h_p)
{
    shub_http_t *h = h_p ? *h_p : NULL;
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    shub_free(h->csp);
    shub_free(h);
    *h_p = NULL;
}

const char *shub_http_arg(const shub_http_request_t *req, const char *key)
{
    for (size_t i = 0; req && key && i < req->n_args; i++)
        if (strcmp(req->args[i].key, key) == 0)
            return req->args[i].value;
    return NULL;
}
