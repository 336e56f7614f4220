/*
 * transport: ZeroMQ socket set-up and framing, and nothing about what the
 * messages mean. The broker binds a ROUTER as a CURVE server; each agent
 * connects a DEALER as a CURVE client. Every message after the ROUTER
 * envelope is exactly one frame (SPEC section 3); a peer that sends more is
 * told so by the caller. Socket pointers are libzmq's `void *`.
 */
#ifndef SHAREHUB_TRANSPORT_H
#define SHAREHUB_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#define SHUB_TRANSPORT_ZAP_DOMAIN "sharehub"
#define SHUB_TRANSPORT_MAX_RID 255     /* ZeroMQ routing ids are at most 255 bytes */
#define SHUB_TRANSPORT_MAX_ENDPOINT 256
/* libzmq drops a connection that sends a frame over ZMQ_MAXMSGSIZE without a
 * word; the limit is set this much above the protocol's, so a frame a little
 * too large reaches the broker and is answered ERROR limit instead. */
#define SHUB_TRANSPORT_FRAME_SLACK 65536

typedef struct shub_transport_opts {
    const char *endpoint;        /* "tcp://127.0.0.1:7400", "tcp://127.0.0.1:*", "ipc://..." */
    const uint8_t *public_key;   /* own CURVE public key (32 bytes) */
    const uint8_t *secret_key;   /* own CURVE secret key (32 bytes) */
    const uint8_t *server_key;   /* client only: the broker's CURVE public key */
    size_t max_message_bytes;    /* the protocol's limit; ZMQ_MAXMSGSIZE is set to it
                                    plus SHUB_TRANSPORT_FRAME_SLACK before bind/connect */
    int heartbeat_ms;            /* ZMTP-level PING interval; 0 leaves libzmq's default */
} shub_transport_opts_t;

/* Creates a ROUTER socket as CURVE server with ZAP domain "sharehub",
 * ROUTER_MANDATORY on, the size limit set, and binds it. The bound endpoint
 * (the real port for "tcp://...:*") is written to bound[size]. The ZAP
 * handler must already be bound on the context. An ipc:// endpoint another
 * process is listening on is refused (libzmq would unlink it and take it
 * over), naming it; a stale socket file left by a dead process is replaced.
 * Returns NULL on failure: err->code SHUB_EBUSY if the address is in use or
 * not this host's, SHUB_ECONFIG if the endpoint does not parse, SHUB_EIO
 * otherwise. */
void *shub_transport_bind(void *ctx, const shub_transport_opts_t *opts, char *bound,
                          size_t size, shub_err_t *err);

/* Creates a DEALER socket as CURVE client and connects it (libzmq reconnects
 * with exponential backoff by itself). Returns NULL on failure, with
 * SHUB_ECONFIG for an endpoint that does not parse. */
void *shub_transport_connect(void *ctx, const shub_transport_opts_t *opts, shub_err_t *err);

/* Closes *sock_p (NULL is fine) and nulls it, letting what is still queued go
 * for at most linger_ms (0: dropped), so that terminating the context after
 * it never waits longer than that. */
void shub_transport_close(void **sock_p, int linger_ms);

/* One received message. */
typedef struct shub_frame_in {
    uint8_t rid[SHUB_TRANSPORT_MAX_RID]; /* ROUTER: the peer's routing id */
    size_t rid_len;
    char user_id[SHUB_MSG_MAX_NAME + 1]; /* ZAP User-Id: the authenticated org, or "" */
    bool extra_frames;                   /* the peer sent more than one body frame */
    int fd;                              /* the connection it came on (ZMQ_SRCFD), or -1:
                                            sessions are bound to it, not to the
                                            client-chosen routing id */
    shub_buf_t body;                     /* the body bytes (owned, reused across calls) */
} shub_frame_in_t;

/* Receives one message without blocking. `router` says whether a routing id
 * frame comes first. 0 on success, SHUB_EBUSY if nothing is waiting (or the
 * call was interrupted), SHUB_EIO on socket failure. */
int shub_transport_recv(void *sock, bool router, shub_frame_in_t *in, shub_err_t *err);

/* Frees the frame's buffer. */
void shub_frame_in_free(shub_frame_in_t *in);

/* Sends one body frame, after the routing id if rid is not NULL, without
 * blocking. SHUB_ENOTFOUND if the ROUTER has no such peer any more,
 * SHUB_EBUSY if its queue is full, SHUB_EIO otherwise. */
int shub_transport_send(void *sock, const uint8_t *rid, size_t rid_len, const void *data,
                        size_t len, shub_err_t *err);

/* Encodes msg into scratch and sends it as shub_transport_send does. */
int shub_transport_send_msg(void *sock, const uint8_t *rid, size_t rid_len,
                            const shub_msg_t *msg, shub_buf_t *scratch, shub_err_t *err);

/* One event from a socket monitor: libzmq's ZMQ_EVENT_* code, its value
 * (an errno, a status code, a file descriptor, depending on the event) and
 * the endpoint it concerns. */
typedef struct shub_transport_event {
    uint16_t event;
    uint32_t value;
    char endpoint[SHUB_TRANSPORT_MAX_ENDPOINT];
} shub_transport_event_t;

/* Reports sock's `events` (a mask of ZMQ_EVENT_*) on a PAIR socket bound to
 * the inproc endpoint `name`, which must be unique in ctx. Poll it like any
 * socket; stop with zmq_socket_monitor(sock, NULL, 0) and zmq_close. NULL and
 * SHUB_EIO on failure. */
void *shub_transport_watch(void *ctx, void *sock, const char *name, int events,
                           shub_err_t *err);

/* Reads one waiting event without blocking. 0, or SHUB_EBUSY if none. */
int shub_transport_watch_read(void *monitor, shub_transport_event_t *ev);

/* Watches sock's connections and returns a socket (PAIR, inproc `name`) on
 * which libzmq reports each handshake that fails (a key that does not prove
 * its secret fails inside CURVE, before the ZAP handler is ever asked, so
 * only this sees it), each connection that closes, and, on a connecting
 * socket, each one made. Poll it like any socket; NULL on failure. */
void *shub_transport_monitor(void *ctx, void *sock, const char *name, shub_err_t *err);

typedef enum {
    SHUB_CONN_HANDSHAKE_FAILED = 1, /* line says why */
    SHUB_CONN_CLOSED,               /* the connection on fd is gone */
    SHUB_CONN_CONNECTED,            /* a connecting socket reached its peer */
    SHUB_CONN_OTHER,
} shub_conn_event_t;

typedef struct shub_monitor_event {
    shub_conn_event_t type;
    int fd;                                 /* the connection's descriptor, or -1 */
    char line[SHUB_TRANSPORT_MAX_ENDPOINT + 128]; /* for the log: "failed handshake
                                                     endpoint=... reason=..." */
} shub_monitor_event_t;

/* Reads one waiting monitor event. 0, or SHUB_EBUSY if none is waiting. */
int shub_transport_monitor_read(void *monitor, shub_monitor_event_t *ev);

#endif
