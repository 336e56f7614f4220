/*
 * api_http: the local API's server (include/sharehub/api.h), libmicrohttpd
 * with a thread per connection. It reads requests and writes answers;
 * shub_api_handle decides everything in between.
 *
 * The listening socket is made here, not by libmicrohttpd, so that the
 * address is exactly the one given (no wildcard unless asked for), port 0
 * can be read back, and a unix socket gets mode 0600 before anyone can
 * connect. Bounds, each with its reason:
 *
 *   connections   SHUB_API_MAX_CONNECTIONS, a thread each: a slow client
 *                 holds one thread, never the agent's loop or another client
 *   idle time     SHUB_API_TIMEOUT_S without a byte, then the connection is
 *                 closed (a client that stops halfway through a request)
 *   headers, URL  32 KiB per connection (libmicrohttpd answers 431/414)
 *   body          SHUB_API_MAX_BODY: a declared length over it is answered
 *                 413 before a byte of the body is read; a chunked body that
 *                 grows past it is dropped, and past twice it the connection
 *                 is closed
 *   long polls    SHUB_API_MAX_WAITERS (api.c), so that waiting clients
 *                 always leave threads for the others
 */
#include "sharehub/api.h"

#include "sharehub/alloc.h"
#include "sharehub/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CONNECTION_MEMORY (32 * 1024) /* request line and headers, per connection */
#define THREAD_STACK      (512 * 1024)
#define LISTEN_BACKLOG    64

struct shub_api_server {
    shub_api_t *api;           /* borrowed */
    struct MHD_Daemon *daemon;
    char unix_path[sizeof ((struct sockaddr_un *)0)->sun_path]; /* "" for TCP */
    char address[160];         /* http://HOST:PORT or unix:PATH */
};

/* One request's state, from its request line to its answer. */
typedef struct {
    char *target; /* the request target as sent */
    char *body;
    size_t len, cap;
    size_t dropped; /* body bytes over the limit, not kept */
    bool started;   /* the headers were looked at */
} request_t;

/* ---- requests ------------------------------------------------------------ */

/* libmicrohttpd hands the raw target here before it decodes anything: the
 * handler parses it itself, as the fuzz target feeds it. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    (void)cls;
    (void)c;
    request_t *r = shub_calloc(1, sizeof *r);
    /* Kept up to one byte past the limit: enough for the handler to say
     * the target is too long. */
    size_t n = uri ? strnlen(uri, SHUB_API_MAX_TARGET + 1) : 0;
    if (r && (r->target = shub_malloc(n + 1))) {
        memcpy(r->target, uri ? uri : "", n);
        r->target[n] = '\0';
    }
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    request_t *r = *req_cls;
    if (!r)
        return;
    shub_free(r->target);
    shub_free(r->body);
    shub_free(r);
    *req_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_log(void *cls, const char *fmt,
                                                         va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    shub_debug("api http: %s", line);
}

static void free_body(void *p)
{
    shub_free(p);
}

static enum MHD_Result send_answer(struct MHD_Connection *c, shub_api_response_t *a)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(a->body_len, a->body, free_body);
    if (!resp) {
        shub_api_response_free(a);
        return MHD_NO;
    }
    a->body = NULL; /* the response owns it now */
    char retry[16];
    snprintf(retry, sizeof retry, "%d", a->retry_after);
    bool ok = MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                      "application/json") == MHD_YES &&
              MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store") ==
                  MHD_YES &&
              (!a->location[0] || MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION,
                                                          a->location) == MHD_YES) &&
              (!a->allow ||
               MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, a->allow) == MHD_YES) &&
              (!a->retry_after || MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER,
                                                          retry) == MHD_YES) &&
              (!a->authenticate ||
               MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE,
                                       "Bearer realm=\"sharehub-agent\"") == MHD_YES);
    enum MHD_Result rc = ok ? MHD_queue_response(c, (unsigned)a->status, resp) : MHD_NO;
    MHD_destroy_response(resp);
    return rc;
}

/* The declared body length, -1 if none or unreadable (libmicrohttpd itself
 * refuses a malformed one). */
static int64_t content_length(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_HEADER_KIND,
                                                MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (!v)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    return errno || end == v || *end || n < 0 ? -1 : (int64_t)n;
}

/* Keeps what fits in the body; drops the rest, counting it. */
static bool keep_body(request_t *r, const char *data, size_t n)
{
    if (r->dropped || r->len + n > SHUB_API_MAX_BODY) {
        r->dropped += n;
        return r->dropped <= 2 * (size_t)SHUB_API_MAX_BODY;
    }
    if (r->len + n > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n)
            cap *= 2;
        char *more = shub_realloc(r->body, cap);
        if (!more)
            return false;
        r->body = more;
        r->cap = cap;
    }
    memcpy(r->body + r->len, data, n);
    r->len += n;
    return true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version,
                                  const char *upload, size_t *upload_size, void **req_cls)
{
    (void)url;
    (void)version;
    shub_api_server_t *srv = cls;
    request_t *r = *req_cls;
    if (!r || !r->target)
        return MHD_NO; /* out of memory: drop the connection */
    shub_api_request_t req = {
        .method = method,
        .target = r->target,
        .authorization =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION),
        .content_type =
            MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE),
    };
    shub_api_response_t answer;
    if (!r->started) {
        r->started = true;
        if (shub_api_refuse_early(srv->api, &req, content_length(c), &answer))
            return send_answer(c, &answer);
        return MHD_YES;
    }
    if (*upload_size) {
        bool go_on = keep_body(r, upload, *upload_size);
        *upload_size = 0;
        return go_on ? MHD_YES : MHD_NO;
    }
    req.body = r->body;
    req.body_len = r->len;
    req.body_too_large = r->dropped > 0;
    shub_api_handle(srv->api, &req, &answer);
    return send_answer(c, &answer);
}

/* ---- the listening socket ------------------------------------------------ */

static bool loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    const struct in6_addr *a = &((const struct sockaddr_in6 *)ss)->sin6_addr;
    return IN6_IS_ADDR_LOOPBACK(a);
}

/* HOST:PORT, [HOST]:PORT or PORT into *ss. */
static int parse_inet(const char *text, struct sockaddr_storage *ss, socklen_t *len,
                      shub_err_t *err)
{
    char host[64] = "127.0.0.1";
    const char *port = text;
    const char *colon = strrchr(text, ':');
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close || close[1] != ':' || (size_t)(close - text - 1) >= sizeof host)
            goto bad;
        memcpy(host, text + 1, (size_t)(close - text - 1));
        host[close - text - 1] = '\0';
        port = close + 2;
    } else if (colon) {
        if ((size_t)(colon - text) >= sizeof host)
            goto bad;
        memcpy(host, text, (size_t)(colon - text));
        host[colon - text] = '\0';
        port = colon + 1;
    }
    size_t digits = strspn(port, "0123456789");
    if (digits == 0 || digits > 5 || port[digits] || atoi(port) > 65535)
        goto bad;
    memset(ss, 0, sizeof *ss);
    struct sockaddr_in *in4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)atoi(port));
        *len = sizeof *in4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)atoi(port));
        *len = sizeof *in6;
        return 0;
    }
bad:
    return shub_err_set(err, SHUB_ECONFIG,
                        "'%s' is not an address to listen on: give HOST:PORT (an IP "
                        "address), PORT, or unix:PATH",
                        text);
}

static int tcp_socket(shub_api_server_t *srv, const char *text, int *fd_p, shub_err_t *err)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int rc = parse_inet(text, &ss, &len, err);
    if (rc)
        return rc;
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&ss, len) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        rc = shub_err_set(err, SHUB_EIO, "cannot listen on '%s': %s", text, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    len = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &len);
    char host[INET6_ADDRSTRLEN] = "?";
    int port;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
        snprintf(srv->address, sizeof srv->address, "http://%s:%d", host, port);
    } else {
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
        snprintf(srv->address, sizeof srv->address, "http://[%s]:%d", host, port);
    }
    if (!loopback(&ss))
        shub_warn("api: listening on %s, not a loopback address: the token travels in "
                  "clear text to anyone who can reach it",
                  srv->address);
    *fd_p = fd;
    return 0;
}

/* A unix socket at path with mode 0600. A socket file nobody answers on is
 * what a killed agent leaves: replaced. One somebody answers on is refused. */
static int unix_socket(shub_api_server_t *srv, const char *path, int *fd_p,
                       shub_err_t *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!*path || strlen(path) >= sizeof sa.sun_path)
        return shub_err_set(err, SHUB_ECONFIG, "unix socket path '%s' is empty or longer "
                            "than %zu bytes", path, sizeof sa.sun_path - 1);
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            return shub_err_set(err, SHUB_ECONFIG, "'%s' exists and is not a socket", path);
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        if (probe >= 0)
            close(probe);
        if (live)
            return shub_err_set(err, SHUB_EIO, "'%s' is in use: another agent serves on it",
                                path);
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return shub_err_set(err, SHUB_EIO, "socket: %s", strerror(errno));
    /* The file is made with the umask's mode: none for group and others. */
    mode_t old = umask(0177);
    int brc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (brc != 0 || chmod(path, 0600) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int rc = shub_err_set(err, SHUB_EIO, "cannot listen on '%s': %s", path,
                              strerror(errno));
        close(fd);
        if (brc == 0)
            unlink(path);
        return rc;
    }
    snprintf(srv->unix_path, sizeof srv->unix_path, "%s", path);
    snprintf(srv->address, sizeof srv->address, "unix:%s", path);
    *fd_p = fd;
    return 0;
}

/* Writes the address to path whole (a temporary file renamed), so that a
 * test polling for it never reads half. */
static int write_ready(const char *path, const char *address, shub_err_t *err)
{
    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%s\n", address) < 0 || fclose(f) != 0 || rename(tmp, path) != 0) {
        if (f)
            unlink(tmp);
        return shub_err_set(err, SHUB_EIO, "cannot write the API's ready file '%s'", path);
    }
    return 0;
}

int shub_api_server_start(shub_api_t *api, const char *listen_on, bool have_token,
                          const char *ready_file, shub_api_server_t **srv_p,
                          shub_err_t *err)
{
    if (!api || !listen_on || !srv_p)
        return shub_err_set(err, SHUB_EINVAL, "no API or no address");
    bool is_unix = strncmp(listen_on, "unix:", 5) == 0;
    if (!is_unix && !have_token)
        return shub_err_set(err, SHUB_ECONFIG,
                            "the API on '%s' needs a token (--api-token FILE); only a "
                            "unix socket may go without one",
                            listen_on);
    shub_api_server_t *srv = shub_calloc(1, sizeof *srv);
    if (!srv)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    srv->api = api;
    int fd = -1;
    int rc = is_unix ? unix_socket(srv, listen_on + 5, &fd, err)
                     : tcp_socket(srv, listen_on, &fd, err);
    if (rc)
        goto fail;
    srv->daemon = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO |
            MHD_USE_ERROR_LOG,
        0, NULL, NULL, on_request, srv, MHD_OPTION_LISTEN_SOCKET, fd,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)SHUB_API_MAX_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)SHUB_API_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)CONNECTION_MEMORY,
        MHD_OPTION_THREAD_STACK_SIZE, (size_t)THREAD_STACK, MHD_OPTION_URI_LOG_CALLBACK,
        on_uri, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, on_log, NULL, MHD_OPTION_END);
    if (!srv->daemon) {
        close(fd);
        rc = shub_err_set(err, SHUB_EIO, "cannot start the API's HTTP server on '%s'",
                          listen_on);
        goto fail;
    }
    if (ready_file && (rc = write_ready(ready_file, srv->address, err)))
        goto fail;
    shub_info("api listening on %s%s", srv->address,
              have_token ? " (bearer token required)" : " (the socket's permissions)");
    *srv_p = srv;
    return 0;
fail:
    shub_api_server_stop(&srv);
    return rc;
}

const char *shub_api_server_address(const shub_api_server_t *srv)
{
    return srv->address;
}

void shub_api_server_stop(shub_api_server_t **srv_p)
{
    if (!srv_p || !*srv_p)
        return;
    shub_api_server_t *srv = *srv_p;
    shub_api_stop(srv->api); /* long polls answer now, so their threads can end */
    if (srv->daemon)
        MHD_stop_daemon(srv->daemon);
    if (srv->unix_path[0])
        unlink(srv->unix_path);
    shub_free(srv);
    *srv_p = NULL;
}
