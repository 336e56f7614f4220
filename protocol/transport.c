/*
 * transport: ZeroMQ sockets (include/sharehub/transport.h). Options that
 * affect security or limits are set before bind/connect, because libzmq
 * applies them per connection at handshake time.
 *
 * A CURVE server admits any client key when no ZAP handler is bound on the
 * context: the caller must bind its handler (inproc://zeromq.zap.01) before
 * calling shub_transport_bind. libzmq 4.3 has no stable option to enforce
 * this, so the order is the guarantee.
 */
#include "sharehub/transport.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

static int setopt(void *sock, int opt, const void *val, size_t len, const char *name,
                  shub_err_t *err)
{
    if (zmq_setsockopt(sock, opt, val, len) != 0)
        return shub_err_set(err, SHUB_EIO, "setting %s: %s", name, zmq_strerror(errno));
    return 0;
}

static int setint(void *sock, int opt, int val, const char *name, shub_err_t *err)
{
    return setopt(sock, opt, &val, sizeof val, name, err);
}

/* Options both ends share: limits, linger, heartbeats. */
static int common_opts(void *sock, const shub_transport_opts_t *o, shub_err_t *err)
{
    int64_t max = (int64_t)o->max_message_bytes + SHUB_TRANSPORT_FRAME_SLACK;
    int rc;
    if ((rc = setopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max, "ZMQ_MAXMSGSIZE", err)) ||
        (rc = setint(sock, ZMQ_LINGER, 1000, "ZMQ_LINGER", err)) ||
        (rc = setint(sock, ZMQ_SNDHWM, 100000, "ZMQ_SNDHWM", err)) ||
        (rc = setint(sock, ZMQ_RCVHWM, 100000, "ZMQ_RCVHWM", err)) ||
        (rc = setint(sock, ZMQ_HANDSHAKE_IVL, 10000, "ZMQ_HANDSHAKE_IVL", err)))
        return rc;
    if (o->heartbeat_ms > 0 &&
        ((rc = setint(sock, ZMQ_HEARTBEAT_IVL, o->heartbeat_ms, "ZMQ_HEARTBEAT_IVL", err)) ||
         (rc = setint(sock, ZMQ_HEARTBEAT_TIMEOUT, o->heartbeat_ms * 3,
                      "ZMQ_HEARTBEAT_TIMEOUT", err))))
        return rc;
    return 0;
}

/* The process listening on the unix socket at path, for the message that
 * refuses a second broker: the socket's inode from /proc/net/unix, then the
 * process holding a descriptor to it. Linux only, and only the processes
 * this user may inspect; 0 when it cannot tell. */
static long socket_holder(const char *path)
{
    FILE *f = fopen("/proc/net/unix", "r");
    char line[4352];
    unsigned long inode = 0;
    while (f && !inode && fgets(line, sizeof line, f)) {
        unsigned long flags, ino;
        int at = 0;
        line[strcspn(line, "\n")] = '\0';
        if (sscanf(line, "%*s %*s %*s %lx %*s %*s %lu %n", &flags, &ino, &at) == 2 &&
            at > 0 && (flags & 0x10000) && strcmp(line + at, path) == 0) /* listening */
            inode = ino;
    }
    if (f)
        fclose(f);
    DIR *procs = inode ? opendir("/proc") : NULL;
    struct dirent *p;
    long holder = 0;
    char want[64];
    snprintf(want, sizeof want, "socket:[%lu]", inode);
    while (procs && !holder && (p = readdir(procs))) {
        char dir[300], link[64];
        long pid = strtol(p->d_name, NULL, 10);
        if (pid <= 0 || pid == (long)getpid())
            continue;
        snprintf(dir, sizeof dir, "/proc/%s/fd", p->d_name);
        DIR *fds = opendir(dir);
        struct dirent *fd;
        while (fds && !holder && (fd = readdir(fds))) {
            char at[600];
            snprintf(at, sizeof at, "%s/%s", dir, fd->d_name);
            ssize_t n = readlink(at, link, sizeof link - 1);
            if (n > 0) {
                link[n] = '\0';
                if (strcmp(link, want) == 0)
                    holder = pid;
            }
        }
        if (fds)
            closedir(fds);
    }
    if (procs)
        closedir(procs);
    return holder;
}

/* zmq_bind on ipc:// unlinks whatever socket file is there and binds anew,
 * so a second broker would silently take the endpoint from the first. If a
 * connection to the path succeeds, someone is listening: refuse, naming it. */
static int ipc_in_use(const char *endpoint, shub_err_t *err)
{
    if (strncmp(endpoint, "ipc://", 6) != 0)
        return 0;
    const char *path = endpoint + 6;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path || path[0] == '@' || strcmp(path, "*") == 0)
        return 0; /* libzmq judges these itself */
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    int rc = connect(fd, (const struct sockaddr *)&addr, sizeof addr);
    close(fd);
    if (rc != 0)
        return 0;
    long holder = socket_holder(path);
    if (holder)
        return shub_err_set(err, SHUB_EBUSY,
                            "cannot bind '%s': process %ld is listening on it (a second "
                            "broker?)",
                            endpoint, holder);
    return shub_err_set(err, SHUB_EBUSY,
                        "cannot bind '%s': another process is listening on it (a second "
                        "broker?)",
                        endpoint);
}

/* What a failed bind or connect means for whoever must act on it: an address
 * in use or not on this host is a service that is unavailable (try later, or
 * elsewhere); an endpoint libzmq cannot parse is a configuration error. */
static int endpoint_error(int e)
{
    switch (e) {
    case EADDRINUSE:
    case EADDRNOTAVAIL:
        return SHUB_EBUSY;
    case EINVAL:
    case EPROTONOSUPPORT:
    case ENODEV:
        return SHUB_ECONFIG;
    default:
        return SHUB_EIO;
    }
}

void *shub_transport_bind(void *ctx, const shub_transport_opts_t *o, char *bound,
                          size_t size, shub_err_t *err)
{
    if (ipc_in_use(o->endpoint, err))
        return NULL;
    void *sock = zmq_socket(ctx, ZMQ_ROUTER);
    if (!sock) {
        shub_err_set(err, SHUB_EIO, "creating ROUTER socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (common_opts(sock, o, err) ||
        setint(sock, ZMQ_ROUTER_MANDATORY, 1, "ZMQ_ROUTER_MANDATORY", err) ||
        setint(sock, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER", err) ||
        setopt(sock, ZMQ_CURVE_SECRETKEY, o->secret_key, 32, "ZMQ_CURVE_SECRETKEY", err) ||
        setopt(sock, ZMQ_ZAP_DOMAIN, SHUB_TRANSPORT_ZAP_DOMAIN,
               strlen(SHUB_TRANSPORT_ZAP_DOMAIN), "ZMQ_ZAP_DOMAIN", err))
        goto fail;
    if (zmq_bind(sock, o->endpoint) != 0) {
        int e = errno;
        shub_err_set(err, endpoint_error(e), "cannot bind '%s': %s%s", o->endpoint,
                     zmq_strerror(e),
                     e == EADDRINUSE ? " (another process is listening on it)" : "");
        goto fail;
    }
    if (bound && size) {
        size_t len = size;
        if (zmq_getsockopt(sock, ZMQ_LAST_ENDPOINT, bound, &len) != 0)
            snprintf(bound, size, "%s", o->endpoint);
    }
    return sock;
fail:
    zmq_close(sock);
    return NULL;
}

void *shub_transport_connect(void *ctx, const shub_transport_opts_t *o, shub_err_t *err)
{
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!sock) {
        shub_err_set(err, SHUB_EIO, "creating DEALER socket: %s", zmq_strerror(errno));
        return NULL;
    }
    if (common_opts(sock, o, err) ||
        setopt(sock, ZMQ_CURVE_SERVERKEY, o->server_key, 32, "ZMQ_CURVE_SERVERKEY", err) ||
        setopt(sock, ZMQ_CURVE_PUBLICKEY, o->public_key, 32, "ZMQ_CURVE_PUBLICKEY", err) ||
        setopt(sock, ZMQ_CURVE_SECRETKEY, o->secret_key, 32, "ZMQ_CURVE_SECRETKEY", err) ||
        setint(sock, ZMQ_RECONNECT_IVL, 100, "ZMQ_RECONNECT_IVL", err) ||
        setint(sock, ZMQ_RECONNECT_IVL_MAX, 5000, "ZMQ_RECONNECT_IVL_MAX", err))
        goto fail;
    if (zmq_connect(sock, o->endpoint) != 0) {
        shub_err_set(err, endpoint_error(errno), "cannot connect to '%s': %s",
                     o->endpoint, zmq_strerror(errno));
        goto fail;
    }
    return sock;
fail:
    zmq_close(sock);
    return NULL;
}

void shub_frame_in_free(shub_frame_in_t *in)
{
    if (in)
        shub_buf_free(&in->body);
}

/* Discards the rest of a multipart message. */
static void drain(void *sock)
{
    int more = 1;
    size_t len = sizeof more;
    while (zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        zmq_msg_recv(&m, sock, 0);
        zmq_msg_close(&m);
        len = sizeof more;
    }
}

static bool has_more(void *sock)
{
    int more = 0;
    size_t len = sizeof more;
    return zmq_getsockopt(sock, ZMQ_RCVMORE, &more, &len) == 0 && more;
}

int shub_transport_recv(void *sock, bool router, shub_frame_in_t *in, shub_err_t *err)
{
    zmq_msg_t m;
    zmq_msg_init(&m);
    in->rid_len = 0;
    in->user_id[0] = '\0';
    in->extra_frames = false;
    in->fd = -1;
    in->body.len = 0;
    if (zmq_msg_recv(&m, sock, ZMQ_DONTWAIT) < 0) {
        int e = errno;
        zmq_msg_close(&m);
        if (e == EAGAIN || e == EINTR)
            return SHUB_EBUSY;
        return shub_err_set(err, SHUB_EIO, "receive: %s", zmq_strerror(e));
    }
    if (router) {
        size_t n = zmq_msg_size(&m);
        in->rid_len = n < sizeof in->rid ? n : sizeof in->rid;
        memcpy(in->rid, zmq_msg_data(&m), in->rid_len);
        if (!has_more(sock)) { /* a routing id with no body: nothing to answer */
            zmq_msg_close(&m);
            in->extra_frames = true;
            return 0;
        }
        /* The rest of a multipart message is already queued: no EAGAIN here. */
        if (zmq_msg_recv(&m, sock, 0) < 0) {
            int e = errno;
            zmq_msg_close(&m);
            return shub_err_set(err, SHUB_EIO, "receive: %s", zmq_strerror(e));
        }
    }
    const char *uid = zmq_msg_gets(&m, "User-Id");
    if (uid)
        snprintf(in->user_id, sizeof in->user_id, "%s", uid);
    /* ZMQ_SRCFD is deprecated in libzmq 4.3 but still answers, for tcp and
     * ipc alike; it is the one thing about a message the peer cannot choose. */
    in->fd = zmq_msg_get(&m, ZMQ_SRCFD);
    int rc = shub_buf_append(&in->body, zmq_msg_data(&m), zmq_msg_size(&m));
    if (has_more(sock)) {
        in->extra_frames = true;
        drain(sock);
    }
    zmq_msg_close(&m);
    if (rc)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory receiving a message");
    return 0;
}

int shub_transport_send(void *sock, const uint8_t *rid, size_t rid_len, const void *data,
                        size_t len, shub_err_t *err)
{
    if (rid && zmq_send(sock, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        goto fail;
    if (zmq_send(sock, data, len, ZMQ_DONTWAIT) < 0)
        goto fail;
    return 0;
fail:
    if (errno == EHOSTUNREACH)
        return shub_err_set(err, SHUB_ENOTFOUND, "peer is gone");
    if (errno == EAGAIN)
        return shub_err_set(err, SHUB_EBUSY, "peer's queue is full");
    return shub_err_set(err, SHUB_EIO, "send: %s", zmq_strerror(errno));
}

void *shub_transport_watch(void *ctx, void *sock, const char *name, int events,
                           shub_err_t *err)
{
    if (zmq_socket_monitor(sock, name, events) != 0) {
        shub_err_set(err, SHUB_EIO, "monitoring a socket: %s", zmq_strerror(errno));
        return NULL;
    }
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 0;
    if (mon)
        zmq_setsockopt(mon, ZMQ_LINGER, &linger, sizeof linger);
    if (!mon || zmq_connect(mon, name) != 0) {
        shub_err_set(err, SHUB_EIO, "monitoring a socket: %s", zmq_strerror(errno));
        if (mon)
            zmq_close(mon);
        zmq_socket_monitor(sock, NULL, 0);
        return NULL;
    }
    return mon;
}

int shub_transport_watch_read(void *monitor, shub_transport_event_t *ev)
{
    zmq_msg_t head, addr;
    zmq_msg_init(&head);
    if (zmq_msg_recv(&head, monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&head);
        return SHUB_EBUSY;
    }
    memset(ev, 0, sizeof *ev);
    if (zmq_msg_size(&head) >= 6) { /* 16-bit event, 32-bit value, host order */
        memcpy(&ev->event, zmq_msg_data(&head), 2);
        memcpy(&ev->value, (const char *)zmq_msg_data(&head) + 2, 4);
    }
    zmq_msg_close(&head);
    zmq_msg_init(&addr);
    if (has_more(monitor) && zmq_msg_recv(&addr, monitor, 0) >= 0) {
        size_t n = zmq_msg_size(&addr) < sizeof ev->endpoint - 1
                       ? zmq_msg_size(&addr)
                       : sizeof ev->endpoint - 1;
        memcpy(ev->endpoint, zmq_msg_data(&addr), n);
        ev->endpoint[n] = '\0';
    }
    zmq_msg_close(&addr);
    drain(monitor);
    return 0;
}

void *shub_transport_monitor(void *ctx, void *sock, const char *name, shub_err_t *err)
{
    return shub_transport_watch(ctx, sock, name,
                                ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                    ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                    ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECTED,
                                err);
}

static const char *failure(uint16_t event, uint32_t value)
{
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
        return "refused by the ZAP handler (a key not in orgs.yaml)";
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC)
        return "cryptographic: the client's key does not prove its secret";
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL)
        return "protocol error";
    return "connection closed during the handshake";
}

int shub_transport_monitor_read(void *monitor, shub_monitor_event_t *ev)
{
    shub_transport_event_t raw;
    if (shub_transport_watch_read(monitor, &raw) != 0)
        return SHUB_EBUSY;
    ev->fd = -1;
    switch (raw.event) {
    case ZMQ_EVENT_DISCONNECTED:
        ev->type = SHUB_CONN_CLOSED;
        ev->fd = (int)raw.value; /* the value of a disconnect event is the fd */
        snprintf(ev->line, sizeof ev->line, "connection closed endpoint=%s", raw.endpoint);
        break;
    case ZMQ_EVENT_CONNECTED:
        ev->type = SHUB_CONN_CONNECTED;
        ev->fd = (int)raw.value;
        snprintf(ev->line, sizeof ev->line, "connected endpoint=%s", raw.endpoint);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
        ev->type = SHUB_CONN_HANDSHAKE_FAILED;
        snprintf(ev->line, sizeof ev->line, "failed handshake endpoint=%s reason=%s",
                 raw.endpoint, failure(raw.event, raw.value));
        break;
    default:
        ev->type = SHUB_CONN_OTHER;
        snprintf(ev->line, sizeof ev->line, "event %u endpoint=%s", raw.event,
                 raw.endpoint);
    }
    return 0;
}

int shub_transport_send_msg(void *sock, const uint8_t *rid, size_t rid_len,
                            const shub_msg_t *msg, shub_buf_t *scratch, shub_err_t *err)
{
    int rc = shub_msg_encode(msg, scratch, err);
    if (rc)
        return rc;
    return shub_transport_send(sock, rid, rid_len, scratch->data, scratch->len, err);
}

void shub_transport_close(void **sock_p, int linger_ms)
{
    if (!sock_p || !*sock_p)
        return;
    zmq_setsockopt(*sock_p, ZMQ_LINGER, &linger_ms, sizeof linger_ms);
    zmq_close(*sock_p);
    *sock_p = NULL;
}
