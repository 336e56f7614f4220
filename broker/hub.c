/*
 * hub: the broker's loop (include/sharehub/hub.h). Read this file top-down:
 * sessions and pending copies (the state the hub keeps in memory), set-up,
 * one handler per message type, the timers (backlog, redelivery, updates,
 * checkpoints), and last one turn of the loop, which ties them together.
 *
 * A turn is a group commit. The hub reads messages from the ROUTER (which
 * fair-queues between peers; a per-peer cap on SHAREs bounds a flood
 * further) a chunk at a time, reads the socket monitor (so a connection that
 * closed is no longer anyone's session), and handles each chunk's
 * acknowledgements, confirmations, witnesses and backlog sends first and its
 * SHAREs last inside one store transaction; it closes the turn once the
 * writer has nothing waiting (or at batch_max messages), commits once, and
 * only then sends what the commit made true, batched per peer: one RECEIPT
 * for the receipts of all its SHAREs, DELIVERs for its copies, one UPDATE
 * for its new outcomes, a CHECKPOINT when one was signed. Nothing is
 * acknowledged that is not durable.
 *
 * If a commit fails (a full disk, an I/O error), the transaction is rolled
 * back, every SHARE of the turn is answered ERROR unavailable, and what the
 * hub holds in memory is rebuilt from the store, so the two cannot disagree.
 * Until a turn commits again the hub refuses SHAREs at once and goes on with
 * acknowledgements and deliveries, which free space rather than take it:
 * progress that a failing SHARE can never roll back. One line is logged when
 * the store goes down and one when it comes back.
 *
 * Sessions are bound to connections (SPEC section 11): to the file
 * descriptor and routing id the HELLO came on and the organisation the ZAP
 * handler authenticated. A client-chosen routing id claimed by another
 * connection therefore reaches no session, and nothing addressed to an
 * organisation goes to a connection that has not said HELLO as it.
 *
 * Pending copies live in memory (metadata only; the sealed bytes stay in the
 * store until sent): per recipient a queue in the order the broker accepted
 * them and a list of those sent and not yet acknowledged, in the order sent,
 * plus a hash map by (event id, recipient) for ACKs. They are rebuilt from the
 * store on start. Linear scans over peers and recipients: a region has tens
 * of organisations, not thousands.
 */
#include "sharehub/hub.h"

#include "sharehub/alloc.h"
#include "sharehub/config.h"
#include "sharehub/deadline.h"
#include "sharehub/http.h"
#include "sharehub/keys.h"
#include "sharehub/lifecycle.h"
#include "sharehub/log.h"
#include "sharehub/metrics.h"
#include "sharehub/minimise.h"
#include "sharehub/msg.h"
#include "sharehub/policy.h"
#include "sharehub/seal.h"
#include "sharehub/store.h"
#include "sharehub/time.h"
#include "sharehub/transport.h"
#include "sharehub/witness.h"
#include "zap.h"

#include <errno.h>
#include <poll.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#define TIMER_MS          100    /* redelivery and update timers */
#define TURN_CHUNK        64     /* messages read and handled between looks at the writer */
#define IDLE_MAINTAIN_MS  1000   /* quiet time before indexing and a WAL truncate */
#define BUSY_MAINTAIN_MS  5000   /* ... or this long under traffic that never stops */
#define DEGRADED_RETRY_MS 1000   /* how soon SHAREs are tried again after a failure */
#define MAX_RECIPIENTS    SHUB_MSG_MAX_OUTCOMES
#define TURN_DELIVER_BYTES (8u << 20) /* sealed bytes sent to one peer per turn */
#define BATCH_BYTES       (SHUB_MSG_MAX_BYTES - 65536) /* room in one DELIVER */
#define RECEIPT_NODES     24000  /* values in one RECEIPT (limit 32768) */
#define NOTICE_EVERY_MS   60000  /* how often agreements' dates are looked at */
#define RETENTION_EVERY_MS 3600000 /* how often retention is applied */
#define RETENTION_BATCH   10000  /* receipts purged per pass */
#define DAY_MS            (24LL * 3600 * 1000)
/* How long one ephemeral sealing key serves (SPEC 5.6). A new key costs a
 * scalar multiplication, and one more per recipient: per turn that was a
 * fifth of the hub's time under load. Held for a second at most, then wiped
 * as its turn ends, so a stored copy becomes unreadable to the broker within
 * about a second of its sealing. */
#define SEAL_KEY_MS       1000

/* ---- pending copies -------------------------------------------------------- */

typedef struct orgq orgq_t;

typedef struct copy copy_t;
struct copy {
    shub_store_copy_t c; /* strings interned by the store: valid until it closes */
    uint64_t ticket;     /* the store batch that holds it (0: loaded, committed) */
    uint32_t attempts;   /* sends in this run of the broker */
    int64_t next_at;     /* sent: when to send it again */
    bool sent;           /* on its queue's sent list (else the queued list) */
    copy_t *prev, *next; /* on that list */
    copy_t *hnext;       /* the pending map's chain */
    orgq_t *q;
};

/* One recipient's pending copies. */
struct orgq {
    char org[SHUB_MSG_MAX_NAME + 1];
    copy_t *qhead, *qtail; /* queued: not sent in this session, in store order */
    copy_t *shead, *stail; /* sent, awaiting ACK, in the order sent */
    size_t nq, ns;
    bool upd_unheld;       /* an update for it as a sender was recorded this turn
                              while it had no session */
};

/* ---- sessions ---------------------------------------------------------------- */

typedef struct refusal { /* an ERROR for a refused message, sent after the commit */
    const char *code;    /* static */
    const char *text;    /* in the turn's arena */
    shub_id_t id;
    bool has_id;
} refusal_t;

typedef struct out {           /* what a turn sends one peer once it commits */
    refusal_t *refusals;
    size_t nf, cf;
    shub_receipt_t *receipts;
    size_t nr, cr;
    shub_deliver_t *delivers;
    size_t nd, cd, deliver_bytes;
    shub_update_t *updates;
    size_t nu, cu;
} out_t;

/* Turns are pipelined: while the store's writer commits one, the hub builds
 * the next. What a turn sends waits for its commit, and turns are sent in
 * order: TURNS slots, one being built and the rest committing. With three
 * the hub waited for a free slot a fifth of its time at full load (the
 * writer takes every batch waiting in one group, so more slots make larger
 * groups, not more commits); five made 1 and 3 recipients 11% and 7% faster
 * in bench_broker, and eight no faster than five while holding more memory. */
#define TURNS 5

typedef struct peer {
    uint8_t rid[SHUB_TRANSPORT_MAX_RID];
    size_t rid_len;
    int fd;                          /* the connection (ZMQ_SRCFD) */
    char org[SHUB_MSG_MAX_NAME + 1]; /* authenticated by the ZAP handler */
    bool welcomed;                   /* said HELLO on this connection */
    int64_t last_in_ms, last_out_ms;
    uint32_t window;       /* deliveries it accepts un-ACKed */
    uint32_t turn_shares;  /* SHAREs accepted in this turn */
    int64_t upd_cursor;    /* the highest update seq given to it this session */
    bool upd_more;         /* stored updates beyond the cursor may wait */
    shub_update_t *held;   /* updates for it recorded this turn while upd_more */
    size_t n_held, cap_held;
    bool ended;            /* to be forgotten at the end of the turn */
    out_t out[TURNS];      /* by turn slot */
} peer_t;

/* One message read this turn. */
typedef struct inmsg {
    shub_frame_in_t f;
    peer_t *p;       /* its session (may be unwelcomed), or NULL: dropped */
    shub_msg_t *msg; /* decoded, or NULL */
} inmsg_t;

typedef struct share_ans { /* a SHARE of this turn: answered unavailable if it fails */
    uint8_t rid[SHUB_TRANSPORT_MAX_RID];
    size_t rid_len;
    shub_id_t id;
} share_ans_t;

/* One turn from its first message until what it made true is sent. */
typedef struct turn {
    bool wrote;           /* it has a store batch ... */
    uint64_t ticket;      /* ... this one */
    shub_arena_t *arena;  /* outgoing strings and sealed bytes */
    share_ans_t *shares;  /* its SHAREs: answered unavailable if it fails */
    size_t n_shares, cap_shares;
    bool have_checkpoint; /* signed in it: broadcast when it is sent */
    shub_signed_head_t checkpoint;
    shub_metrics_turn_t *m; /* what it counted, published once it commits (NULL:
                               metrics off) */
    int64_t submit_us;      /* when its batch went to the writer */
    uint32_t writes;      /* SHAREs accepted and copies finished in it: its commit
                             proves the store writes again */
} turn_t;

/* Everything one SHARE's recipients have in common, and its receipt being
 * built. About half a megabyte at the outcome limit, so one is reused. */
typedef struct share_ctx {
    peer_t *sender;
    const shub_share_t *share;
    int64_t now;
    shub_arena_t *arena; /* this SHARE's working memory */
    const char *fields;  /* every leaf of the payload */
    shub_outcome_item_t items[MAX_RECIPIENTS];
    uint32_t n_items;
    /* The minimised copy last built (bytes in hub->plain), and the lists that
     * chose it: recipients of the same flow get the same copy, sealed to each. */
    bool min_valid;
    const char *const *min_fields, *const *min_report;
    size_t min_n_fields, min_n_report;
    shub_minimised_t min;
    uint8_t payload_hash[32];
} share_ctx_t;

struct shub_hub {
    shub_hub_opts_t opts;
    shub_config_t *cfg;
    const shub_hub_settings_t *set; /* borrowed from cfg */
    shub_store_t *store;
    void *ctx, *router, *zap, *monitor;
    char endpoint[SHUB_TRANSPORT_MAX_ENDPOINT];
    char key_dir[4096];
    shub_curve_keys_t keys;
    uint8_t sign_secret[SHUB_SIGN_SECRET];
    uint8_t subject_key[32];

    peer_t **peers;
    size_t n_peers, cap_peers;

    orgq_t **queues;
    size_t n_queues, cap_queues;
    copy_t **map; /* pending copies by (event id, recipient) */
    size_t map_size, n_copies;
    uint8_t map_key[crypto_shorthash_KEYBYTES]; /* copy_hash's */

    inmsg_t *in;
    size_t n_in, cap_in, cap_in_used; /* entries with their buffers set up */

    turn_t turns[TURNS];
    uint64_t building, sending; /* turn numbers: the one being built, the oldest not
                                   yet sent (building - sending turns wait) */
    size_t cur;                 /* building % TURNS */
    turn_t *t;                  /* &turns[cur] */
    shub_arena_t *turn;         /* t->arena */

    bool in_txn, txn_failed;
    bool degraded;        /* the store failed: SHAREs refused until a retry */
    bool outage;          /* reported unavailable; over at a commit that wrote */
    bool lost;            /* PostgreSQL: the database lock is gone; stop */
    char fail_why[320];   /* what failed first in the turn, for the one log line */
    int64_t degraded_since, degraded_try_ms;
    share_ctx_t *sc;
    shub_buf_t scratch, plain, sealbuf;
    shub_sealer_t *sealer; /* the ephemeral sealing key: wiped at the end of the
                              turn in which it turned SEAL_KEY_MS old */
    int64_t sealer_born_ms;
    int64_t next_timer_ms;
    shub_deadline_t *deadlines; /* open deadlines of allowed shares (deadline.h) */
    shub_metrics_t *metrics;    /* NULL: hub.yaml names no metrics address */
    shub_http_t *metrics_http;
    int64_t next_gauges_ms, checkpoint_at_ms;
    int64_t next_notice_ms; /* lifecycle_tick: 0 on the first turn */
    int64_t next_retention_ms; /* retention_tick: 0 on the first turn */
    bool idle_maintained;
    int64_t last_traffic_ms, last_maintain_ms;
};

/* ---- small helpers ----------------------------------------------------------- */

static void turn_start(shub_hub_t *hub);
static void store_down(shub_hub_t *hub, int64_t now, size_t refused);


static const char *idtext(const shub_id_t *id, char buf[SHUB_ID_TEXT])
{
    shub_id_format(id, buf);
    return buf;
}

/* The ephemeral sealing key (SEAL_KEY_MS): made on first use, NULL if it
 * cannot be. */
static shub_sealer_t *sealer_get(shub_hub_t *hub, int64_t now)
{
    if (!hub->sealer) {
        hub->sealer = shub_sealer_new();
        hub->sealer_born_ms = now;
    }
    return hub->sealer;
}

static const char *turn_strdup(shub_hub_t *hub, const char *s)
{
    return s ? shub_arena_strndup(hub->turn, s, strlen(s)) : NULL;
}

/* ---- pending copies -------------------------------------------------------- */

/* SipHash under a key of the hub's own: event ids are partners' choice, and
 * ids made to collide under a fixed hash would pile a backlog of a hundred
 * thousand copies into one chain, each ACK then a walk of it. */
static uint64_t copy_hash(const shub_hub_t *hub, const shub_id_t *id, const char *recipient)
{
    uint8_t in[SHUB_ID_SIZE + SHUB_MSG_MAX_NAME], out[crypto_shorthash_BYTES];
    size_t n = strnlen(recipient, SHUB_MSG_MAX_NAME);
    uint64_t h;
    memcpy(in, id->bytes, SHUB_ID_SIZE);
    memcpy(in + SHUB_ID_SIZE, recipient, n);
    crypto_shorthash(out, in, SHUB_ID_SIZE + n, hub->map_key);
    memcpy(&h, out, sizeof h);
    return h;
}

static copy_t **map_slot(shub_hub_t *hub, const shub_id_t *id, const char *recipient)
{
    copy_t **pp = &hub->map[copy_hash(hub, id, recipient) & (hub->map_size - 1)];
    while (*pp && (memcmp((*pp)->c.event_id.bytes, id->bytes, SHUB_ID_SIZE) != 0 ||
                   strcmp((*pp)->c.recipient, recipient) != 0))
        pp = &(*pp)->hnext;
    return pp;
}

/* The pending copy of (event, recipient), or NULL. The map is made with the
 * first copy, so a broker that has held none (started with none pending)
 * has no map to look in. */
static copy_t *copy_find(shub_hub_t *hub, const shub_id_t *id, const char *recipient)
{
    return hub->map_size ? *map_slot(hub, id, recipient) : NULL;
}

static int map_grow(shub_hub_t *hub)
{
    if (hub->map && hub->n_copies < hub->map_size)
        return 0;
    size_t size = hub->map_size ? hub->map_size * 2 : 1024;
    copy_t **map = shub_calloc(size, sizeof *map);
    if (!map)
        return SHUB_ENOMEM;
    for (size_t i = 0; i < hub->map_size; i++)
        for (copy_t *c = hub->map[i], *next; c; c = next) {
            next = c->hnext;
            copy_t **slot = &map[copy_hash(hub, &c->c.event_id, c->c.recipient) & (size - 1)];
            c->hnext = *slot;
            *slot = c;
        }
    shub_free(hub->map);
    hub->map = map;
    hub->map_size = size;
    return 0;
}

static orgq_t *queue_for(shub_hub_t *hub, const char *org, bool create)
{
    for (size_t i = 0; i < hub->n_queues; i++)
        if (strcmp(hub->queues[i]->org, org) == 0)
            return hub->queues[i];
    if (!create || shub_grow((void **)&hub->queues, &hub->cap_queues, hub->n_queues + 1,
                        sizeof *hub->queues))
        return NULL;
    orgq_t *q = shub_calloc(1, sizeof *q);
    if (!q)
        return NULL;
    snprintf(q->org, sizeof q->org, "%s", org);
    hub->queues[hub->n_queues++] = q;
    return q;
}

static void list_unlink(copy_t *c)
{
    orgq_t *q = c->q;
    copy_t **head = c->sent ? &q->shead : &q->qhead, **tail = c->sent ? &q->stail : &q->qtail;
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    else
        *tail = c->prev;
    c->prev = c->next = NULL;
    if (c->sent)
        q->ns--;
    else
        q->nq--;
}

static void list_append(copy_t *c, bool sent)
{
    orgq_t *q = c->q;
    copy_t **head = sent ? &q->shead : &q->qhead, **tail = sent ? &q->stail : &q->qtail;
    c->sent = sent;
    c->prev = *tail;
    c->next = NULL;
    if (*tail)
        (*tail)->next = c;
    else
        *head = c;
    *tail = c;
    if (sent)
        q->ns++;
    else
        q->nq++;
}

/* Puts every copy sent in the ended session back in the queue, in store
 * order, so the next session receives everything in one order. */
static void requeue_sent(orgq_t *q)
{
    while (q->shead) {
        copy_t *c = q->shead;
        list_unlink(c);
        copy_t *at = q->qhead; /* the first queued copy stored after c */
        while (at && at->c.seq < c->c.seq)
            at = at->next;
        c->sent = false;
        if (!at) {
            list_append(c, false);
            continue;
        }
        c->next = at;
        c->prev = at->prev;
        if (at->prev)
            at->prev->next = c;
        else
            q->qhead = c;
        at->prev = c;
        q->nq++;
    }
}

/* Adds a pending copy (strings interned by the store) to memory. */
static copy_t *copy_add(shub_hub_t *hub, const shub_store_copy_t *sc)
{
    orgq_t *q = queue_for(hub, sc->recipient, true);
    copy_t *c = q && map_grow(hub) == 0 ? shub_calloc(1, sizeof *c) : NULL;
    if (!c)
        return NULL;
    c->c = *sc;
    c->c.sealed = NULL;
    c->c.sealed_len = 0;
    c->q = q;
    copy_t **slot =
        &hub->map[copy_hash(hub, &c->c.event_id, c->c.recipient) & (hub->map_size - 1)];
    c->hnext = *slot;
    *slot = c;
    hub->n_copies++;
    list_append(c, false);
    return c;
}

static void copy_remove(shub_hub_t *hub, copy_t *c)
{
    copy_t **slot = map_slot(hub, &c->c.event_id, c->c.recipient);
    if (*slot == c)
        *slot = c->hnext;
    list_unlink(c);
    hub->n_copies--;
    shub_free(c);
}

static void copies_clear(shub_hub_t *hub)
{
    for (size_t i = 0; i < hub->map_size; i++)
        for (copy_t *c = hub->map[i], *next; c; c = next) {
            next = c->hnext;
            shub_free(c);
        }
    if (hub->map)
        memset(hub->map, 0, hub->map_size * sizeof *hub->map);
    hub->n_copies = 0;
    for (size_t i = 0; i < hub->n_queues; i++)
        shub_free(hub->queues[i]);
    hub->n_queues = 0;
}

static int on_stored_copy(const shub_store_copy_t *c, void *ctx)
{
    return copy_add(ctx, c) ? 0 : SHUB_ENOMEM;
}

/* Reads every pending copy from the store: on start, and after a failed
 * commit, when memory must forget the turn that did not happen. */
static int copies_load(shub_hub_t *hub, shub_err_t *err)
{
    copies_clear(hub);
    int rc = shub_store_copies(hub->store, on_stored_copy, hub, err);
    if (rc == SHUB_ENOMEM)
        shub_err_set(err, rc, "loading pending copies: out of memory");
    return rc;
}

/* ---- sessions ---------------------------------------------------------------- */

static peer_t *peer_by_rid(shub_hub_t *hub, const uint8_t *rid, size_t len)
{
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *p = hub->peers[i];
        if (!p->ended && p->rid_len == len && memcmp(p->rid, rid, len) == 0)
            return p;
    }
    return NULL;
}

/* The session an organisation is reachable on. */
static peer_t *peer_online(shub_hub_t *hub, const char *org)
{
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *p = hub->peers[i];
        if (p->welcomed && !p->ended && strcmp(p->org, org) == 0)
            return p;
    }
    return NULL;
}

static void out_clear(out_t *o)
{
    o->nf = o->nr = o->nd = o->nu = 0;
    o->deliver_bytes = 0;
}

/* Ends a session: whatever was sent in it and not acknowledged waits for the
 * organisation's next HELLO, and nothing more goes to this connection. The
 * peer is freed at the end of the turn (messages of the turn point at it). */
static void session_end(shub_hub_t *hub, peer_t *p, const char *why)
{
    if (p->ended)
        return;
    if (p->welcomed) {
        orgq_t *q = queue_for(hub, p->org, false);
        if (q)
            requeue_sent(q);
        shub_info("offline org=%s (%s)", p->org, why);
    }
    p->welcomed = false;
    p->ended = true;
    for (size_t i = 0; i < TURNS; i++)
        out_clear(&p->out[i]);
    p->n_held = 0;
}

static void peers_sweep(shub_hub_t *hub)
{
    for (size_t i = 0; i < hub->n_peers;) {
        peer_t *p = hub->peers[i];
        if (!p->ended) {
            i++;
            continue;
        }
        for (size_t k = 0; k < TURNS; k++) {
            shub_free(p->out[k].refusals);
            shub_free(p->out[k].receipts);
            shub_free(p->out[k].delivers);
            shub_free(p->out[k].updates);
        }
        shub_free(p->held);
        shub_free(p);
        hub->peers[i] = hub->peers[--hub->n_peers];
    }
}

static peer_t *peer_new(shub_hub_t *hub, const shub_frame_in_t *f)
{
    if (shub_grow((void **)&hub->peers, &hub->cap_peers, hub->n_peers + 1, sizeof *hub->peers))
        return NULL;
    peer_t *p = shub_calloc(1, sizeof *p);
    if (!p)
        return NULL;
    memcpy(p->rid, f->rid, f->rid_len);
    p->rid_len = f->rid_len;
    p->fd = f->fd;
    snprintf(p->org, sizeof p->org, "%s", f->user_id);
    hub->peers[hub->n_peers++] = p;
    return p;
}

/* A connection closed: its session, if it had one, is over. */
static void connection_closed(shub_hub_t *hub, int fd)
{
    for (size_t i = 0; i < hub->n_peers; i++)
        if (hub->peers[i]->fd == fd && !hub->peers[i]->ended)
            session_end(hub, hub->peers[i], "connection closed");
}

static void monitor_drain(shub_hub_t *hub)
{
    shub_monitor_event_t ev;
    while (shub_transport_monitor_read(hub->monitor, &ev) == 0) {
        if (ev.type == SHUB_CONN_CLOSED)
            connection_closed(hub, ev.fd);
        else if (ev.type == SHUB_CONN_HANDSHAKE_FAILED)
            shub_warn("%s", ev.line);
    }
}

/* Sends now: ERROR, WELCOME, HEARTBEAT, a CHECKPOINT already committed. A
 * peer whose queue is full or gone loses its session. */
static void send_now(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                     const shub_msg_t *msg)
{
    shub_err_t err;
    int rc = shub_transport_send_msg(hub->router, rid, rid_len, msg, &hub->scratch, &err);
    if (rc == 0) {
        if (p)
            p->last_out_ms = shub_now_ms();
        return;
    }
    shub_debug("send %s failed: %s", shub_msg_type_name(msg->type), err.msg);
    if (p && rc != SHUB_EINVAL && rc != SHUB_ELIMIT)
        session_end(hub, p, "cannot send to it");
}

static void send_error(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                       const char *code, const shub_id_t *id, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

/* Keeps an ERROR line printable whatever went into it. */
static void printable(char *text)
{
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
}

static void send_error(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                       const char *code, const shub_id_t *id, const char *fmt, ...)
{
    char text[SHUB_MSG_MAX_LINE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    printable(text);
    shub_msg_t msg = {.type = SHUB_MSG_ERROR};
    msg.error.code = code;
    msg.error.message = text;
    msg.error.id = id;
    send_now(hub, p, rid, rid_len, &msg);
}

/* ---- the store transaction --------------------------------------------------- */

/* Marks the turn failed when a store call returns a database error. */
static int store_check(shub_hub_t *hub, int rc, const shub_err_t *err, const char *what)
{
    if (rc == SHUB_EDB || rc == SHUB_EIO || rc == SHUB_ENOMEM) {
        if (!hub->txn_failed) /* said once, by close_turn, for the whole outage */
            snprintf(hub->fail_why, sizeof hub->fail_why, "%s: %s", what, err->msg);
        hub->txn_failed = true;
    }
    return rc;
}

static int ensure_txn(shub_hub_t *hub)
{
    if (hub->in_txn)
        return hub->txn_failed ? SHUB_EDB : 0;
    shub_err_t err;
    hub->in_txn = true;
    int rc = shub_store_begin(hub->store, &err);
    if (rc)
        return store_check(hub, rc, &err, "begin");
    return 0;
}

/* Audits a refused message of an authenticated peer: the reason code, the
 * organisation, the event id when one was readable; the error text names
 * fields and sizes, never values. */
static void audit_refusal(shub_hub_t *hub, const peer_t *p, const char *code,
                          const shub_id_t *id, const char *event_type, const char *text)
{
    if (ensure_txn(hub) != 0)
        return;
    shub_err_t err;
    shub_audit_row_t row = {
        .at_ms = shub_now_ms(),
        .action = "refuse",
        .decision = "refused",
        .sender = p->org,
        .event_type = event_type,
        .reason = code,
        .explanation = text,
    };
    if (id)
        row.event_id = *id;
    store_check(hub, shub_store_audit_append(hub->store, &row, &err), &err, "audit");
}

/* Refuses a message of an authenticated peer: audited (audit_refusal), and
 * answered with ERROR `code` when the turn's batch has committed, like every
 * other answer, so a peer never holds a refusal the log could still lose to
 * a crash. (If the turn fails the ERROR still goes: turn_refuse.) */
static void refuse(shub_hub_t *hub, peer_t *p, const char *code, const shub_id_t *id,
                   const char *event_type, const char *text)
{
    char line[SHUB_MSG_MAX_LINE + 1];
    snprintf(line, sizeof line, "%s", text);
    printable(line);
    audit_refusal(hub, p, code, id, event_type, line);
    out_t *o = &p->out[hub->cur];
    const char *kept = turn_strdup(hub, line);
    if (!kept || shub_grow((void **)&o->refusals, &o->cf, o->nf + 1, sizeof *o->refusals)) {
        send_error(hub, p, p->rid, p->rid_len, code, id, "%s", line);
        return;
    }
    refusal_t *r = &o->refusals[o->nf++];
    memset(r, 0, sizeof *r);
    r->code = code;
    r->text = kept;
    if (id) {
        r->id = *id;
        r->has_id = true;
    }
}

/* The ERRORs of turn slot k's refusals (refuse): after its commit, or when
 * it failed. */
static void send_refusals(shub_hub_t *hub, peer_t *p, size_t k)
{
    out_t *o = &p->out[k];
    for (size_t i = 0; i < o->nf && !p->ended; i++) {
        const refusal_t *r = &o->refusals[i];
        shub_msg_t msg = {.type = SHUB_MSG_ERROR};
        msg.error.code = r->code;
        msg.error.message = r->text;
        msg.error.id = r->has_id ? &r->id : NULL;
        send_now(hub, p, p->rid, p->rid_len, &msg);
    }
    o->nf = 0;
}

/* ---- outgoing, batched per peer ------------------------------------------------ */

static int out_receipt(shub_hub_t *hub, peer_t *p, const shub_id_t *id, bool duplicate,
                       const shub_outcome_item_t *items, uint32_t n)
{
    out_t *o = &p->out[hub->cur];
    if (shub_grow((void **)&o->receipts, &o->cr, o->nr + 1, sizeof *o->receipts))
        return SHUB_ENOMEM;
    shub_outcome_item_t *copy = shub_arena_alloc(hub->turn, (n ? n : 1) * sizeof *copy);
    if (!copy)
        return SHUB_ENOMEM;
    for (uint32_t i = 0; i < n; i++) { /* the turn outlives the SHARE's memory */
        copy[i] = items[i];
        copy[i].to = turn_strdup(hub, items[i].to);
        copy[i].detail = turn_strdup(hub, items[i].detail);
        copy[i].reason = turn_strdup(hub, items[i].reason);
        copy[i].agreement = turn_strdup(hub, items[i].agreement);
        copy[i].flow = turn_strdup(hub, items[i].flow);
    }
    o->receipts[o->nr++] =
        (shub_receipt_t){.id = *id, .duplicate = duplicate, .items = copy, .count = n};
    return 0;
}

/* The days the recipient keeps the copy's payload: its flow's retention in
 * the agreement as loaded now (a shortened retention applies to copies still
 * pending too); 0 for none, or a flow no longer there. */
static uint32_t keep_days(const shub_hub_t *hub, const copy_t *c)
{
    long i = shub_config_agreement_find(hub->cfg, c->c.agreement);
    const shub_agreement_t *ag = i >= 0 ? shub_config_agreement_at(hub->cfg, (size_t)i) : NULL;
    for (size_t k = 0; ag && k < ag->n_flows; k++)
        if (strcmp(ag->flows[k].id, c->c.flow) == 0)
            return ag->flows[k].retention_days;
    return 0;
}

/* A copy to send after commit; `sealed` is copied into the turn's memory. */
static int out_deliver(shub_hub_t *hub, peer_t *p, const copy_t *c, const uint8_t *sealed,
                       size_t len)
{
    out_t *o = &p->out[hub->cur];
    uint8_t *bytes = shub_arena_alloc(hub->turn, len);
    if (!bytes || shub_grow((void **)&o->delivers, &o->cd, o->nd + 1, sizeof *o->delivers))
        return SHUB_ENOMEM;
    memcpy(bytes, sealed, len);
    o->delivers[o->nd++] = (shub_deliver_t){
        .id = c->c.event_id,
        .type = c->c.event_type,
        .from = c->c.sender,
        .agreement = c->c.agreement,
        .version = c->c.agreement_version,
        .flow = c->c.flow,
        .attempt = c->attempts,
        .sealed = bytes,
        .sealed_len = (uint32_t)len,
        .keep_days = keep_days(hub, c),
    };
    o->deliver_bytes += len;
    return 0;
}

/* An update as the wire carries it, its strings in the turn's memory. */
static shub_update_t update_item(shub_hub_t *hub, const shub_store_update_t *u)
{
    return (shub_update_t){
        .seq = u->seq,
        .id = u->event_id,
        .item = {.to = turn_strdup(hub, u->recipient),
                 .outcome = u->state,
                 .reason = turn_strdup(hub, u->reason),
                 .detail = turn_strdup(hub, u->detail),
                 .agreement = turn_strdup(hub, u->agreement),
                 .version = u->agreement_version,
                 .flow = turn_strdup(hub, u->flow)},
    };
}

static int out_update_item(shub_hub_t *hub, peer_t *p, const shub_update_t *it)
{
    out_t *o = &p->out[hub->cur];
    if (shub_grow((void **)&o->updates, &o->cu, o->nu + 1, sizeof *o->updates))
        return SHUB_ENOMEM;
    o->updates[o->nu++] = *it;
    if (it->seq > p->upd_cursor)
        p->upd_cursor = it->seq;
    return 0;
}

static int out_update(shub_hub_t *hub, peer_t *p, const shub_store_update_t *u)
{
    shub_update_t it = update_item(hub, u);
    return out_update_item(hub, p, &it);
}

/* Records a later outcome durably. A sender online that has had every
 * earlier update gets it with this turn; one still being fed stored updates
 * has it held, to follow them (its open batch cannot be read back yet). */
static int record_update(shub_hub_t *hub, const shub_store_update_t *u)
{
    shub_err_t err;
    int rc = shub_store_update_add(hub->store, u, &err);
    if (rc)
        return store_check(hub, rc, &err, "update");
    peer_t *sp = peer_online(hub, u->sender);
    if (!sp) {
        orgq_t *q = queue_for(hub, u->sender, true);
        if (q)
            q->upd_unheld = true;
        return 0;
    }
    if (!sp->upd_more) {
        if (out_update(hub, sp, u) != 0)
            sp->upd_more = true; /* out of memory: read it from the store later */
        return 0;
    }
    if (shub_grow((void **)&sp->held, &sp->cap_held, sp->n_held + 1, sizeof *sp->held) == 0)
        sp->held[sp->n_held++] = update_item(hub, u);
    return 0;
}

/* ---- set-up -------------------------------------------------------------------- */

static int deadlines_load(shub_hub_t *hub, shub_err_t *err); /* deadlines, below */
static int metrics_start(shub_hub_t *hub, shub_err_t *err);  /* metrics, below */

static void report_config_error(const shub_err_t *err, void *ctx)
{
    (void)ctx;
    char line[1024];
    shub_error("config: %s", shub_err_format(err, line, sizeof line));
}

static int record_agreements(shub_hub_t *hub)
{
    shub_err_t err;
    int64_t now = shub_now_ms();
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < shub_config_agreement_count(hub->cfg); i++) {
        shub_agreement_info_t a;
        if (shub_config_agreement_info(hub->cfg, i, &a) != 0)
            continue;
        rc = shub_store_agreement_seen(hub->store, a.id, a.version, a.content_hash,
                                       a.title, a.status, a.valid_from_ms,
                                       a.valid_until_ms, a.review_ms, now, &err);
    }
    if (rc)
        shub_error("store: recording agreement versions: %s", err.msg);
    return rc;
}

static int load_keys(shub_hub_t *hub, shub_err_t *err)
{
    char path[4200];
    int rc = shub_keys_read_pair(hub->key_dir, "broker", &hub->keys, err);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "%s/checkpoint.key", hub->key_dir);
    if ((rc = shub_keys_read_hex(path, hub->sign_secret, sizeof hub->sign_secret, true,
                                 err)))
        return rc;
    snprintf(path, sizeof path, "%s/subject.key", hub->key_dir);
    return shub_keys_read_hex(path, hub->subject_key, sizeof hub->subject_key, true, err);
}

/* Signs what a crash left unsigned before anything else happens. */
static int sign_tail(shub_hub_t *hub, shub_err_t *err)
{
    bool made = false;
    int rc = shub_store_begin(hub->store, err);
    if (rc == 0)
        rc = shub_store_checkpoint(hub->store, shub_now_ms(), true, NULL, &made, err);
    if (rc == 0)
        rc = shub_store_commit(hub->store, err);
    else
        shub_store_rollback(hub->store);
    if (rc == 0 && made) {
        int64_t seq;
        shub_store_head(hub->store, &seq, NULL);
        shub_info("signed the audit log up to row %lld", (long long)seq);
    }
    return rc;
}

int shub_hub_new(const shub_hub_opts_t *opts, shub_hub_t **hub_p, shub_err_t *err)
{
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO, "libsodium failed to initialise");
    shub_hub_t *hub = shub_calloc(1, sizeof *hub);
    if (!hub)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    hub->opts = *opts;
    randombytes_buf(hub->map_key, sizeof hub->map_key);
    int rc;
    if (!(hub->sc = shub_calloc(1, sizeof *hub->sc))) {
        rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
        goto fail;
    }

    shub_config_opts_t copts = {.key_dir = opts->key_dir};
    if ((rc = shub_config_load(opts->config_dir, &copts, &hub->cfg, report_config_error,
                               NULL))) {
        shub_err_set(err, rc, "configuration in '%s' is not valid (errors above)",
                     opts->config_dir);
        goto fail;
    }
    hub->set = shub_config_hub(hub->cfg);
    snprintf(hub->key_dir, sizeof hub->key_dir, "%s",
             opts->key_dir ? opts->key_dir : hub->set->key_dir);
    if ((rc = load_keys(hub, err)))
        goto fail;

    shub_store_opts_t sopts = {
        .synchronous_full = hub->set->synchronous_full,
        .exclusive = true,
        .subject_key = hub->subject_key,
        .sign_secret = hub->sign_secret,
        .checkpoint_every = hub->set->checkpoint_every,
        .checkpoint_ms = hub->set->checkpoint_ms,
        .writer_thread = true,
        .names_budget = (size_t)hub->set->names_memory_mib << 20,
        .wait_lock = opts->wait_lock,
        .wait_ctx = opts->wait_ctx,
    };
    const char *db = opts->database ? opts->database : hub->set->database;
    char shown[512];
    shub_store_display(db, shown, sizeof shown);
    if ((rc = shub_store_open(db, &sopts, &hub->store, err)))
        goto fail;
    if ((rc = record_agreements(hub))) {
        shub_err_set(err, rc, "cannot record agreement versions in '%s'", shown);
        goto fail;
    }
    if ((rc = copies_load(hub, err)) || (rc = deadlines_load(hub, err)))
        goto fail;
    shub_err_t tail_err;
    if ((rc = sign_tail(hub, &tail_err))) {
        if (rc != SHUB_EDB) {
            if (err)
                *err = tail_err;
            goto fail;
        }
        /* A full disk must not keep the broker down: it starts unable to
         * store, refusing SHAREs and sending what it holds, and signs the
         * tail with the checkpoint that falls due once it can write. */
        snprintf(hub->fail_why, sizeof hub->fail_why, "signing the crash's tail: %s",
                 tail_err.msg);
        store_down(hub, shub_now_ms(), 0);
        rc = 0;
    }
    turn_start(hub);

    hub->ctx = zmq_ctx_new();
    if (!hub->ctx) {
        rc = shub_err_set(err, SHUB_EIO, "zmq context: %s", zmq_strerror(errno));
        goto fail;
    }
    /* The ZAP handler first: a CURVE server with no handler admits anyone. */
    hub->zap = shub_zap_bind(hub->ctx, err);
    if (!hub->zap) {
        rc = err ? err->code : SHUB_EIO;
        goto fail;
    }
    shub_transport_opts_t topts = {
        .endpoint = opts->endpoint ? opts->endpoint : hub->set->endpoint,
        .public_key = hub->keys.public_key,
        .secret_key = hub->keys.secret_key,
        .max_message_bytes = hub->set->max_message_bytes,
        .heartbeat_ms = (int)hub->set->heartbeat_ms,
    };
    hub->router =
        shub_transport_bind(hub->ctx, &topts, hub->endpoint, sizeof hub->endpoint, err);
    if (!hub->router) {
        rc = err ? err->code : SHUB_EIO;
        goto fail;
    }
    hub->monitor = shub_transport_monitor(hub->ctx, hub->router, "inproc://shub-conns", err);
    if (!hub->monitor) {
        rc = err ? err->code : SHUB_EIO;
        goto fail;
    }
    if ((rc = metrics_start(hub, err)))
        goto fail;
    if (opts->ready_file) {
        FILE *f = fopen(opts->ready_file, "w");
        if (!f || fprintf(f, "%s\n", hub->endpoint) < 0 || fclose(f) != 0) {
            rc = shub_err_set(err, SHUB_EIO, "cannot write ready file '%s'",
                              opts->ready_file);
            goto fail;
        }
    }
    shub_info("listening endpoint=%s db=%s orgs=%zu agreements=%zu pending=%zu key=%s",
              hub->endpoint, shown, shub_config_org_count(hub->cfg),
              shub_config_agreement_count(hub->cfg), hub->n_copies, hub->keys.public_z85);
    *hub_p = hub;
    return 0;
fail:
    shub_hub_destroy(&hub);
    return rc;
}

const char *shub_hub_endpoint(const shub_hub_t *hub)
{
    return hub->endpoint;
}

int shub_hub_reload(shub_hub_t *hub)
{
    shub_config_t *fresh = NULL;
    shub_config_opts_t copts = {.key_dir = hub->opts.key_dir};
    int rc =
        shub_config_load(hub->opts.config_dir, &copts, &fresh, report_config_error, NULL);
    if (rc) {
        shub_error("reload failed; the previous configuration stays in force");
        return rc;
    }
    /* Keep the hub settings the broker started with (endpoint, database,
     * keys cannot change under a running socket); swap orgs and agreements.
     * Pending copies keep their own (interned) strings, and are decided again
     * against the new agreements when they are next sent. */
    shub_config_destroy(&hub->cfg);
    hub->cfg = fresh;
    hub->set = shub_config_hub(hub->cfg);
    record_agreements(hub);
    shub_info("reloaded orgs=%zu agreements=%zu", shub_config_org_count(hub->cfg),
              shub_config_agreement_count(hub->cfg));
    return 0;
}

/* ---- metrics (broker/metrics.c) ---------------------------------------------------- */

#define GAUGES_MS 1000 /* how often the gauges are published */

/* The HTTP thread's only surface: the snapshot, never the store. */
static void serve_metrics(const shub_http_request_t *req, shub_http_response_t *resp,
                          void *ctx)
{
    if (strcmp(req->path, "/metrics") != 0) {
        resp->status = 404;
        resp->type = "text/plain; charset=utf-8";
        shub_buf_puts(&resp->body, "404 not found: the metrics are at /metrics\n");
        return;
    }
    resp->type = "text/plain; version=0.0.4; charset=utf-8";
    shub_metrics_render(ctx, &resp->body);
}

static int metrics_start(shub_hub_t *hub, shub_err_t *err)
{
    shub_signed_head_t cp;
    if (shub_store_checkpoint_latest(hub->store, &cp, NULL) == 0)
        hub->checkpoint_at_ms = cp.at_ms;
    if (!hub->set->metrics)
        return 0;
    if (!(hub->metrics = shub_metrics_new()))
        return shub_err_set(err, SHUB_ENOMEM, "metrics: out of memory");
    for (size_t k = 0; k < TURNS; k++)
        if (!(hub->turns[k].m = shub_metrics_turn_new()))
            return shub_err_set(err, SHUB_ENOMEM, "metrics: out of memory");
    int rc = shub_http_start(hub->set->metrics, "default-src 'none'", serve_metrics,
                             hub->metrics, &hub->metrics_http, err);
    if (rc == 0)
        shub_info("metrics endpoint=http://%.*s:%u/metrics",
                  (int)(strrchr(hub->set->metrics, ':') - hub->set->metrics), hub->set->metrics,
                  (unsigned)shub_http_port(hub->metrics_http));
    return rc;
}

static void count_share(shub_hub_t *hub, const char *decision, const shub_decision_t *d)
{
    if (hub->t->m &&
        shub_metrics_turn_share(hub->t->m, decision, d ? d->agreement : NULL,
                                d && !d->allow ? d->reason : NULL) != 0)
        shub_debug("metrics: out of memory");
    if (strcmp(decision, "allow") == 0)
        shub_metrics_turn_delivery(hub->t->m, "queued");
}

/* Backlog per recipient, sessions, checkpoint age, deadlines, the names
 * held: once a second. */
static void publish_gauges(shub_hub_t *hub, int64_t now)
{
    if (!hub->metrics || now < hub->next_gauges_ms)
        return;
    hub->next_gauges_ms = now + GAUGES_MS;
    uint64_t names = 0, names_bytes = 0;
    shub_store_names_held(hub->store, &names, &names_bytes);
    const char *orgs[256];
    uint64_t backlog[256];
    size_t n = 0;
    for (size_t i = 0; i < hub->n_queues && n < 256; i++, n++) {
        orgs[n] = hub->queues[i]->org;
        backlog[n] = hub->queues[i]->nq + hub->queues[i]->ns;
    }
    uint64_t connected = 0;
    for (size_t i = 0; i < hub->n_peers; i++) {
        const peer_t *p = hub->peers[i];
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++)
            seen = hub->peers[j]->welcomed && strcmp(hub->peers[j]->org, p->org) == 0;
        connected += p->welcomed && !p->ended && !seen;
    }
    shub_metrics_gauges_t g = {
        .orgs = orgs,
        .backlog = backlog,
        .n_orgs = n,
        .connected = connected,
        .checkpoint_at_ms = hub->checkpoint_at_ms,
        .now_ms = now,
        .deadlines_open = shub_deadline_open(hub->deadlines),
        .deadlines_overdue = shub_deadline_past_due(hub->deadlines, now),
        .names = names,
        .names_bytes = names_bytes,
    };
    shub_metrics_gauges(hub->metrics, &g);
}

/* ---- events from the hub itself: what one holds ------------------------------- */

/* A notice the broker sends on its own account (hub_notice, below). */
typedef struct notice {
    const shub_org_t *to;
    const shub_event_t *ev;      /* id, type, purpose, area, occurred */
    const char *agreement, *agreement_hash, *flow; /* the agreement it concerns */
    uint32_t agreement_version;
    const char *reason, *why;    /* the audit row's reason code and explanation */
    const shub_id_t *reply_to;   /* the share it is about, if one */
} notice_t;
static int hub_notice(shub_hub_t *hub, const notice_t *n, int64_t now);
static int queue_copy(shub_hub_t *hub, shub_store_copy_t *cs, int64_t now, bool *sent);

/* ---- deadlines (broker/deadline.c) ------------------------------------------------- */

/* A new copy goes straight out only when nothing older waits for its
 * recipient and the recipient's window has room; otherwise it waits its turn
 * in the queue. True if it was sent. */
static bool send_or_queue(shub_hub_t *hub, copy_t *c, const uint8_t *sealed, size_t len,
                          int64_t now)
{
    peer_t *online = peer_online(hub, c->c.recipient);
    bool send = online && c->q->nq == 1 && c->q->ns < online->window &&
                online->out[hub->cur].deliver_bytes < TURN_DELIVER_BYTES;
    if (send) {
        c->attempts = 1;
        c->next_at = now + hub->set->redeliver_ms;
        list_unlink(c);
        list_append(c, true);
        if (out_deliver(hub, online, c, sealed, len))
            session_end(hub, online, "out of memory");
    }
    return send;
}

static int on_open_deadline(const shub_store_deadline_t *d, void *ctx)
{
    return shub_deadline_add(ctx, d) == SHUB_ENOMEM ? SHUB_ENOMEM : 0;
}

/* The deadlines not yet answered, from the store: on start, and after a
 * failed commit. */
static int deadlines_load(shub_hub_t *hub, shub_err_t *err)
{
    if (!hub->deadlines && !(hub->deadlines = shub_deadline_new()))
        return shub_err_set(err, SHUB_ENOMEM, "loading deadlines: out of memory");
    shub_deadline_clear(hub->deadlines);
    int rc = shub_store_deadlines_open(hub->store, on_open_deadline, hub->deadlines, err);
    if (rc == SHUB_ENOMEM)
        shub_err_set(err, rc, "loading deadlines: out of memory");
    return rc;
}

/* An allowed copy under a flow with deadlines: one per kind, stored with the
 * share's decision. */
static int deadlines_start(shub_hub_t *hub, const share_ctx_t *sc, const char *recipient,
                           const shub_decision_t *d)
{
    const uint32_t hours[2] = {d->ack_within_hours, d->act_within_hours};
    const int kinds[2] = {SHUB_STORE_DEADLINE_ACK, SHUB_STORE_DEADLINE_ACT};
    const shub_event_t *ev = &sc->share->ev;
    for (int k = 0; k < 2; k++) {
        if (!hours[k])
            continue;
        shub_err_t err;
        shub_store_deadline_t dl = {
            .event_id = ev->id,
            .recipient = recipient,
            .sender = sc->sender->org,
            .event_type = ev->type,
            .area = ev->area,
            .agreement = d->agreement,
            .agreement_hash = d->agreement_hash,
            .agreement_version = d->version,
            .flow = d->flow,
            .kind = kinds[k],
            .hours = hours[k],
            .started_ms = sc->now,
            .due_ms = shub_deadline_due(sc->now, hours[k], hub->set->deadline_hour_ms),
        };
        int rc = shub_store_deadline_put(hub->store, &dl, &err);
        if (rc)
            return store_check(hub, rc, &err, "deadline");
        rc = shub_deadline_add(hub->deadlines, &dl);
        if (rc == SHUB_ELIMIT)
            shub_warn("deadline not tracked: %d open deadlines already", SHUB_DEADLINE_MAX_OPEN);
        else if (rc)
            return store_check(hub, rc, &(shub_err_t){.msg = "out of memory"}, "deadline");
    }
    return 0;
}

static int on_answered(const shub_store_deadline_t *d, void *ctx)
{
    shub_hub_t *hub = ctx;
    shub_err_t err;
    char idt[SHUB_ID_TEXT];
    int rc = shub_store_deadline_mark(hub->store, &d->event_id, d->recipient, d->kind,
                                      d->answered_ms, 0, &err);
    if (rc && rc != SHUB_ENOTFOUND)
        return store_check(hub, rc, &err, "deadline") ? -1 : 0;
    shub_info("answered event=%s type=%s from=%s by=%s deadline=%s %s", idtext(&d->event_id, idt),
              d->event_type, d->sender, d->recipient, shub_deadline_kind_name(d->kind),
              d->answered_ms <= d->due_ms ? "in-time" : "late");
    return 0;
}

/* A SHARE that names another event in reply_to, from the organisation that
 * event went to: the deadlines it meets. `to` are its allowed recipients. */
static void deadlines_answer(shub_hub_t *hub, const share_ctx_t *sc, const char *const *to,
                             size_t n_to)
{
    const shub_event_t *ev = &sc->share->ev;
    if (ev->reply_to && hub->deadlines && !hub->txn_failed)
        shub_deadline_answer(hub->deadlines, ev->reply_to, sc->sender->org, to, n_to, sc->now,
                             on_answered, hub);
}

/* One notice of an overdue deadline to one organisation: audited, stored
 * sealed to it and delivered like any copy (from SHUB_HUB_SENDER). */
static int notify_overdue(shub_hub_t *hub, const shub_store_deadline_t *d,
                          const shub_org_t *org, int64_t now)
{
    shub_id_t id, reply_to;
    shub_event_t ev;
    char why[SHUB_MSG_MAX_LINE], reason[32];
    if (shub_id_generate(&id, now) != 0 ||
        shub_deadline_notice(hub->turn, d, &id, now, &reply_to, &ev) != 0)
        return store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "cannot build a notice"},
                           "notice");
    shub_deadline_explain(d, why, sizeof why);
    snprintf(reason, sizeof reason, "overdue-%s", shub_deadline_kind_name(d->kind));
    notice_t n = {
        .to = org,
        .ev = &ev,
        .agreement = d->agreement,
        .agreement_hash = d->agreement_hash,
        .agreement_version = d->agreement_version,
        .flow = d->flow,
        .reason = reason,
        .why = why,
        .reply_to = &d->event_id,
    };
    int rc = hub_notice(hub, &n, now);
    if (rc == 0)
        shub_metrics_turn_escalation(hub->t->m);
    return rc;
}

/* An overdue deadline: a notice to the share's sender and to its agreement's
 * escalation contact, and the deadline marked escalated, in one transaction. */
static int on_overdue(const shub_store_deadline_t *d, void *ctx)
{
    shub_hub_t *hub = ctx;
    shub_err_t err;
    char idt[SHUB_ID_TEXT];
    if (ensure_txn(hub) != 0)
        return -1;
    long ai = shub_config_agreement_find(hub->cfg, d->agreement);
    const shub_agreement_t *ag = ai >= 0 ? shub_config_agreement_at(hub->cfg, (size_t)ai) : NULL;
    const char *targets[2] = {d->sender, ag ? ag->escalation : NULL};
    if (targets[1] && strcmp(targets[1], d->sender) == 0)
        targets[1] = NULL;
    for (int i = 0; i < 2; i++) {
        const shub_org_t *org = targets[i] ? shub_config_org(hub->cfg, targets[i]) : NULL;
        if (org && notify_overdue(hub, d, org, d->escalated_ms) != 0)
            return -1;
    }
    int rc = shub_store_deadline_mark(hub->store, &d->event_id, d->recipient, d->kind, 0,
                                      d->escalated_ms, &err);
    if (rc && rc != SHUB_ENOTFOUND)
        return store_check(hub, rc, &err, "deadline") ? -1 : 0;
    shub_warn("overdue event=%s type=%s from=%s to=%s deadline=%s hours=%u escalated=%s%s%s",
              idtext(&d->event_id, idt), d->event_type, d->sender, d->recipient,
              shub_deadline_kind_name(d->kind), d->hours, d->sender, targets[1] ? "," : "",
              targets[1] ? targets[1] : "");
    return 0;
}

/* Escalates what has fallen due, a bounded number per turn. */
static void deadlines_check(shub_hub_t *hub, int64_t now)
{
    if (hub->deadlines && !hub->txn_failed)
        shub_deadline_overdue(hub->deadlines, now, 256, on_overdue, hub);
}

/* ---- SHARE --------------------------------------------------------------------- */

static void audit_share_base(const share_ctx_t *sc, shub_audit_row_t *row)
{
    const shub_event_t *ev = &sc->share->ev;
    memset(row, 0, sizeof *row);
    row->at_ms = sc->now;
    row->action = "decide";
    row->event_id = ev->id;
    row->event_type = ev->type;
    row->sender = sc->sender->org;
    row->purpose = ev->purpose;
    row->legal_basis = ev->basis;
    row->consent = shub_consent_name(ev->consent);
    row->override = ev->override;
    row->area = ev->area;
    row->occurred_ms = ev->occurred_ms;
    row->reply_to = ev->reply_to;
    row->fields = sc->fields;
    row->subject_ref = ev->subject_ref;
    row->case_ref = ev->case_ref;
    row->actor_ref = ev->actor;
}

/* The receipt's item. The decision lives on the caller's stack, so its
 * explanation is copied into the share's arena; the other texts are the
 * configuration's or the message's, which outlive the turn. */
static void add_item(share_ctx_t *sc, const char *to, shub_outcome_t outcome,
                     const char *reason, const char *detail, const shub_decision_t *d)
{
    sc->items[sc->n_items++] = (shub_outcome_item_t){
        .to = to,
        .outcome = outcome,
        .reason = reason,
        .detail = detail ? shub_arena_strndup(sc->arena, detail, strlen(detail)) : NULL,
        .agreement = d ? d->agreement : NULL,
        .version = d ? d->version : 0,
        .flow = d ? d->flow : NULL,
    };
}

/* A denied recipient, or a selector that named nobody: audited, kept as the
 * receipt's outcome, never delivered. */
static int deny_recipient(shub_hub_t *hub, share_ctx_t *sc, const char *recipient,
                          const shub_decision_t *d)
{
    shub_err_t err;
    shub_audit_row_t row;
    audit_share_base(sc, &row);
    row.recipient = recipient;
    row.decision = "deny";
    row.reason = d->reason;
    row.explanation = d->explanation;
    row.agreement = d->agreement;
    row.agreement_version = d->version;
    row.agreement_hash = d->agreement_hash;
    row.flow = d->flow;
    int rc = shub_store_audit_append(hub->store, &row, &err);
    if (rc)
        return store_check(hub, rc, &err, "audit");
    shub_store_outcome_t o = {
        .event_id = sc->share->ev.id,
        .recipient = recipient,
        .state = SHUB_OUTCOME_DENIED,
        .reason = d->reason,
        .detail = d->explanation,
        .agreement = d->agreement,
        .agreement_version = d->version,
        .agreement_hash = d->agreement_hash,
        .flow = d->flow,
    };
    if ((rc = shub_store_outcome_put(hub->store, &o, &err)))
        return store_check(hub, rc, &err, "receipt");
    add_item(sc, recipient, SHUB_OUTCOME_DENIED, d->reason, d->explanation, d);
    count_share(hub, "deny", d);
    char idt[SHUB_ID_TEXT];
    shub_info("deny event=%s type=%s from=%s to=%s reason=%s",
              idtext(&sc->share->ev.id, idt), sc->share->ev.type, sc->sender->org,
              recipient, d->reason);
    return 0;
}

/* The flow's copy, encoded in hub->plain with its hash and account in sc;
 * reused when the last recipient's flow chose the same fields. */
static int minimise_for(shub_hub_t *hub, share_ctx_t *sc, const shub_decision_t *d)
{
    const shub_event_t *ev = &sc->share->ev;
    if (sc->min_valid && sc->min_fields == d->fields && sc->min_n_fields == d->n_fields &&
        sc->min_report == d->report && sc->min_n_report == d->n_report)
        return 0;
    sc->min_valid = false;
    shub_err_t err;
    int rc = shub_minimise(sc->arena, &ev->payload, d->fields, d->n_fields, d->report,
                           d->n_report, &sc->min, &err);
    shub_event_t copy = *ev;
    copy.payload = sc->min.payload;
    if (rc == 0)
        rc = shub_event_encode(&copy, &hub->plain, &err);
    if (rc)
        return store_check(hub, SHUB_ENOMEM, &err, "minimise");
    crypto_generichash(sc->payload_hash, sizeof sc->payload_hash, hub->plain.data,
                       hub->plain.len, NULL, 0);
    sc->min_fields = d->fields;
    sc->min_n_fields = d->n_fields;
    sc->min_report = d->report;
    sc->min_n_report = d->n_report;
    sc->min_valid = true;
    return 0;
}

/* Stores a sealed copy and holds it pending; sends it at once only when
 * nothing older waits for its recipient and the window has room, otherwise
 * it waits its turn in the queue. *sent says which. */
static int queue_copy(shub_hub_t *hub, shub_store_copy_t *cs, int64_t now, bool *sent)
{
    shub_err_t err;
    const uint8_t *sealed = cs->sealed;
    size_t sealed_len = cs->sealed_len;
    int rc = shub_store_copy_put(hub->store, cs, &err);
    if (rc)
        return store_check(hub, rc, &err, "stored copy");
    copy_t *c = copy_add(hub, cs);
    if (!c)
        return store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"},
                           "pending copy");
    c->ticket = shub_store_ticket(hub->store);
    *sent = send_or_queue(hub, c, sealed, sealed_len, now);
    return 0;
}

/* hub->plain sealed to the recipient with the ephemeral key of the moment:
 * once it is wiped (SEAL_KEY_MS), the stored copy is unreadable to the
 * broker. In arena; NULL if it cannot be. */
static uint8_t *seal_plain(shub_hub_t *hub, shub_arena_t *arena, const shub_org_t *to,
                           int64_t now, size_t *len)
{
    *len = hub->plain.len + SHUB_SEAL_OVERHEAD;
    shub_sealer_t *sealer = sealer_get(hub, now);
    uint8_t *sealed = sealer ? shub_arena_alloc(arena, *len) : NULL;
    if (!sealed || shub_seal(sealer, to->public_key, hub->plain.data, hub->plain.len, sealed))
        return NULL;
    return sealed;
}

static int allow_recipient(shub_hub_t *hub, share_ctx_t *sc, const shub_org_t *org,
                           const shub_decision_t *d)
{
    const shub_event_t *ev = &sc->share->ev;
    shub_err_t err;
    int rc = minimise_for(hub, sc, d);
    if (rc)
        return rc;

    size_t sealed_len;
    uint8_t *sealed = seal_plain(hub, sc->arena, org, sc->now, &sealed_len);
    if (!sealed)
        return store_check(hub, SHUB_ENOMEM,
                           &(shub_err_t){.msg = "cannot seal to the recipient's key"},
                           "seal");

    shub_audit_row_t row;
    audit_share_base(sc, &row);
    row.recipient = org->id;
    row.decision = "allow";
    row.explanation = d->explanation;
    row.agreement = d->agreement;
    row.agreement_version = d->version;
    row.agreement_hash = d->agreement_hash;
    row.flow = d->flow;
    if (d->legal_basis)
        row.legal_basis = d->legal_basis;
    long ai = shub_config_agreement_find(hub->cfg, d->agreement);
    row.actor_clear = ai >= 0 && shub_config_agreement_at(hub->cfg, (size_t)ai)->actor_clear;
    row.fields_shared = sc->min.shared;
    row.fields_stripped = sc->min.stripped;
    row.facts = sc->min.facts;
    row.payload_hash = sc->payload_hash;
    if ((rc = shub_store_audit_append(hub->store, &row, &err)))
        return store_check(hub, rc, &err, "audit");
    shub_store_outcome_t o = {
        .event_id = ev->id,
        .recipient = org->id,
        .state = SHUB_OUTCOME_QUEUED,
        .agreement = d->agreement,
        .agreement_version = d->version,
        .agreement_hash = d->agreement_hash,
        .flow = d->flow,
    };
    shub_store_copy_t cs = {
        .event_id = ev->id,
        .recipient = org->id,
        .sender = sc->sender->org,
        .event_type = ev->type,
        .agreement = d->agreement,
        .agreement_hash = d->agreement_hash,
        .agreement_version = d->version,
        .flow = d->flow,
        .area = ev->area,
        .purpose = ev->purpose,
        .basis = row.legal_basis,
        .fields_shared = sc->min.shared,
        .created_ms = sc->now,
        .sealed = sealed,
        .sealed_len = sealed_len,
    };
    bool send = false;
    if ((rc = shub_store_outcome_put(hub->store, &o, &err)))
        return store_check(hub, rc, &err, "receipt");
    if ((rc = queue_copy(hub, &cs, sc->now, &send)))
        return rc;
    if (deadlines_start(hub, sc, org->id, d) != 0)
        return SHUB_EDB;
    count_share(hub, "allow", d);
    add_item(sc, org->id, send ? SHUB_OUTCOME_DELIVERED : SHUB_OUTCOME_QUEUED, NULL, NULL,
             d);
    char idt[SHUB_ID_TEXT];
    shub_info("allow event=%s type=%s from=%s to=%s agreement=%s v%u flow=%s %s%s%s",
              idtext(&ev->id, idt), ev->type, sc->sender->org, org->id, d->agreement,
              d->version, d->flow, send ? "delivered" : "queued",
              sc->min.stripped[0] ? " stripped=" : "", sc->min.stripped);
    return 0;
}

/* ---- events from the hub itself ------------------------------------------------ */

/*
 * An event the broker sends on its own account (from SHUB_HUB_SENDER) to one
 * organisation: encoded whole (it carries no one's personal data, so nothing
 * is minimised), sealed to the recipient, audited as action `notice`,
 * decision `sent`, under the agreement it concerns, then stored and
 * delivered like any copy (store and forward, ACK, redelivery). No receipt
 * and no update: nobody sent it. Inside the turn's transaction. The owner's
 * expiry notice goes through here; so can any other notice from the hub.
 */

static int hub_notice(shub_hub_t *hub, const notice_t *n, int64_t now)
{
    shub_err_t err;
    uint8_t hash[32];
    int rc;
    const shub_event_t *ev = n->ev;
    if ((rc = ensure_txn(hub)) != 0)
        return rc;
    if ((rc = shub_event_encode(ev, &hub->plain, &err)))
        return store_check(hub, SHUB_ENOMEM, &err, "notice");
    crypto_generichash(hash, sizeof hash, hub->plain.data, hub->plain.len, NULL, 0);
    size_t sealed_len;
    uint8_t *sealed = seal_plain(hub, hub->turn, n->to, now, &sealed_len);
    if (!sealed)
        return store_check(hub, SHUB_ENOMEM,
                           &(shub_err_t){.msg = "cannot seal to the recipient's key"},
                           "seal");
    shub_audit_row_t row = {
        .at_ms = now,
        .action = "notice",
        .decision = "sent",
        .event_id = ev->id,
        .event_type = ev->type,
        .sender = SHUB_HUB_SENDER,
        .recipient = n->to->id,
        .reason = n->reason,
        .explanation = n->why,
        .agreement = n->agreement,
        .agreement_version = n->agreement_version,
        .agreement_hash = n->agreement_hash,
        .flow = n->flow,
        .purpose = ev->purpose,
        .area = ev->area,
        .occurred_ms = ev->occurred_ms,
        .reply_to = n->reply_to,
        .payload_hash = hash,
    };
    if ((rc = shub_store_audit_append(hub->store, &row, &err)))
        return store_check(hub, rc, &err, "audit");
    shub_store_copy_t cs = {
        .event_id = ev->id,
        .recipient = n->to->id,
        .sender = SHUB_HUB_SENDER,
        .event_type = ev->type,
        .agreement = n->agreement,
        .agreement_hash = n->agreement_hash,
        .agreement_version = n->agreement_version,
        .flow = n->flow,
        .area = ev->area,
        .purpose = ev->purpose,
        .created_ms = now,
        .sealed = sealed,
        .sealed_len = sealed_len,
    };
    bool sent = false;
    if ((rc = queue_copy(hub, &cs, now, &sent)))
        return rc;
    shub_metrics_turn_delivery(hub->t->m, "queued");
    char idt[SHUB_ID_TEXT];
    shub_info("notice event=%s type=%s to=%s agreement=%s v%u %s: %s", idtext(&ev->id, idt),
              ev->type, n->to->id, n->agreement, n->agreement_version,
              sent ? "delivered" : "queued", n->why);
    return 0;
}

/* Once a minute: every active agreement within notice_days of its expiry
 * whose owner has not been told yet is told, once (the store's notices
 * table remembers across restarts), and the broker's log says so. */
static void lifecycle_tick(shub_hub_t *hub, int64_t now)
{
    if (now < hub->next_notice_ms)
        return;
    hub->next_notice_ms = now + NOTICE_EVERY_MS;
    for (size_t i = 0; i < shub_config_agreement_count(hub->cfg) && !hub->txn_failed; i++) {
        const shub_agreement_t *ag = shub_config_agreement_at(hub->cfg, i);
        const shub_org_t *owner = shub_config_org(hub->cfg, ag->info.owner);
        if (!owner || !shub_lifecycle_notice_due(ag, now, hub->set->notice_days))
            continue;
        char subject[SHUB_MSG_MAX_NAME + 48], until[SHUB_TIME_DATE_TEXT], why[256];
        snprintf(subject, sizeof subject, "%s v%u until %s", ag->info.id, ag->info.version,
                 shub_time_format_date(ag->info.valid_until_ms, until));
        shub_err_t err;
        bool sent = false;
        int rc = shub_store_notice_sent(hub->store, SHUB_LIFECYCLE_NOTICE_TYPE, subject,
                                        &sent, &err);
        if (rc || sent) {
            if (rc)
                shub_warn("agreement notices: %s", err.msg);
            continue;
        }
        shub_arena_t *arena = shub_arena_new(1024);
        shub_event_t ev;
        snprintf(why, sizeof why, "agreement '%s' v%u expires at the end of %s; told its owner",
                 ag->info.id, ag->info.version, until);
        notice_t n = {
            .to = owner,
            .ev = &ev,
            .agreement = ag->info.id,
            .agreement_hash = ag->info.content_hash,
            .agreement_version = ag->info.version,
            .flow = SHUB_LIFECYCLE_NOTICE_FLOW,
            .why = why,
        };
        if (arena && shub_lifecycle_notice(arena, ag, now, &ev, &err) == 0 &&
            hub_notice(hub, &n, now) == 0)
            store_check(hub,
                        shub_store_notice_add(hub->store, SHUB_LIFECYCLE_NOTICE_TYPE, subject,
                                              owner->id, &ev.id, now, &err),
                        &err, "notice");
        shub_arena_destroy(&arena);
    }
}

/* A resent SHARE gets the outcomes as they stand, never a second decision. */
typedef struct dup_ctx {
    shub_hub_t *hub;
    share_ctx_t *sc;
} dup_ctx_t;

static int on_outcome(const shub_store_outcome_t *o, void *ctx)
{
    dup_ctx_t *dc = ctx;
    share_ctx_t *sc = dc->sc;
    if (sc->n_items >= MAX_RECIPIENTS)
        return 1;
    shub_outcome_t state = o->state;
    if (state == SHUB_OUTCOME_QUEUED) { /* allowed: pending, or acknowledged */
        copy_t *c = copy_find(dc->hub, &o->event_id, o->recipient);
        state = !c ? SHUB_OUTCOME_ACKNOWLEDGED
                   : c->sent ? SHUB_OUTCOME_DELIVERED : SHUB_OUTCOME_QUEUED;
    }
    sc->items[sc->n_items++] = (shub_outcome_item_t){
        .to = shub_arena_strndup(sc->arena, o->recipient, strlen(o->recipient)),
        .outcome = state,
        .reason = o->reason ? shub_arena_strndup(sc->arena, o->reason, strlen(o->reason))
                            : NULL,
        .detail = o->detail ? shub_arena_strndup(sc->arena, o->detail, strlen(o->detail))
                            : NULL,
        .agreement = o->agreement ? shub_arena_strndup(sc->arena, o->agreement,
                                                       strlen(o->agreement))
                                  : NULL,
        .version = o->agreement_version,
        .flow = o->flow ? shub_arena_strndup(sc->arena, o->flow, strlen(o->flow)) : NULL,
    };
    return 0;
}

static void handle_duplicate(shub_hub_t *hub, share_ctx_t *sc)
{
    shub_err_t err;
    dup_ctx_t dc = {hub, sc};
    int rc = shub_store_outcomes(hub->store, &sc->share->ev.id, on_outcome, &dc, &err);
    if (rc > 0)
        rc = 0; /* the receipt is full: the first MAX_RECIPIENTS outcomes */
    if (store_check(hub, rc, &err, "receipts") != 0)
        return;
    if (out_receipt(hub, sc->sender, &sc->share->ev.id, true, sc->items, sc->n_items)) {
        store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"}, "receipt");
        return;
    }
    char idt[SHUB_ID_TEXT];
    shub_info("duplicate event=%s from=%s: the receipt as it stands is resent",
              idtext(&sc->share->ev.id, idt), sc->sender->org);
}

/* Expands the selectors into recipients, each once; a selector that matches
 * nobody at all (not even an organisation an earlier selector already named)
 * is its own `no-recipient` outcome. */
static size_t expand(shub_hub_t *hub, share_ctx_t *sc, const shub_org_t **orgs)
{
    const shub_share_t *share = sc->share;
    size_t n = 0;
    for (uint32_t i = 0; i < share->to_count && !hub->txn_failed; i++) {
        const shub_org_t *found[MAX_RECIPIENTS];
        size_t nf = 0;
        shub_config_expand(hub->cfg, share->to[i], sc->sender->org, found, MAX_RECIPIENTS,
                           &nf);
        if (nf == 0) {
            shub_decision_t d = {.allow = false, .reason = "no-recipient"};
            snprintf(d.explanation, sizeof d.explanation,
                     "'%s' matches no organisation in the registry other than the sender",
                     share->to[i]);
            deny_recipient(hub, sc, share->to[i], &d);
            continue;
        }
        for (size_t k = 0; k < nf; k++) {
            bool dup = false;
            for (size_t j = 0; j < n && !dup; j++)
                dup = orgs[j] == found[k];
            if (!dup && n < MAX_RECIPIENTS)
                orgs[n++] = found[k];
        }
    }
    return n;
}

static void handle_share(shub_hub_t *hub, peer_t *p, const shub_share_t *share)
{
    const shub_event_t *ev = &share->ev;
    int64_t now = shub_now_ms();
    char idt[SHUB_ID_TEXT];
    idtext(&ev->id, idt);

    if (share->from && strcmp(share->from, p->org) != 0) {
        char text[SHUB_MSG_MAX_LINE];
        snprintf(text, sizeof text,
                 "SHARE.from: names '%s' but this connection is authenticated as '%s'",
                 share->from, p->org);
        shub_warn("refused event=%s: body claims sender '%s' but the key is %s's", idt,
                  share->from, p->org);
        refuse(hub, p, "sender-mismatch", &ev->id, ev->type, text);
        return;
    }
    if (ev->occurred_ms > now + (int64_t)hub->set->future_skew_ms) {
        char text[SHUB_MSG_MAX_LINE];
        snprintf(text, sizeof text, "SHARE.occurred: %lld ms ahead of the broker clock (limit %u)",
                 (long long)(ev->occurred_ms - now), hub->set->future_skew_ms);
        shub_warn("refused event=%s from=%s: occurred %lld ms in the future", idt, p->org,
                  (long long)(ev->occurred_ms - now));
        refuse(hub, p, "future-event", &ev->id, ev->type, text);
        return;
    }
    if (++p->turn_shares > hub->set->window) {
        send_error(hub, p, p->rid, p->rid_len, "busy", &ev->id,
                   "more than %u unreceipted SHAREs; resend after the receipts arrive",
                   hub->set->window);
        return;
    }
    if (hub->degraded) {
        send_error(hub, p, p->rid, p->rid_len, "unavailable", &ev->id,
                   "the broker cannot store shares right now; nothing was accepted, "
                   "resend later");
        return;
    }
    /* The sealed copy must fit in a DELIVER: the whole event is checked once
     * (a minimised copy is never larger); re-encoding grows no value more
     * than 9/5, so a small SHARE needs no trial encode. */
    shub_err_t err;
    share_ctx_t *sc = hub->sc;
    bool small = false;
    for (size_t i = 0; i < hub->n_in; i++)
        if (hub->in[i].msg && &hub->in[i].msg->share == share)
            small = hub->in[i].f.body.len <= (SHUB_MSG_MAX_BIN - SHUB_SEAL_OVERHEAD) / 2;
    if (!small && (shub_event_encode(ev, &hub->plain, &err) != 0 ||
                   hub->plain.len + SHUB_SEAL_OVERHEAD > SHUB_MSG_MAX_BIN)) {
        char text[SHUB_MSG_MAX_LINE];
        snprintf(text, sizeof text, "SHARE.payload: event of %zu bytes exceeds limit %d",
                 hub->plain.len, SHUB_MSG_MAX_BIN - SHUB_SEAL_OVERHEAD);
        refuse(hub, p, "payload-too-large", &ev->id, ev->type, text);
        return;
    }
    if (ensure_txn(hub) != 0)
        return; /* answered unavailable with the turn */

    sc->sender = p;
    sc->share = share;
    sc->now = now;
    sc->n_items = 0;
    sc->min_valid = false;
    shub_arena_destroy(&sc->arena);
    if (!(sc->arena = shub_arena_new(8192))) {
        store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"}, "share");
        return;
    }
    turn_t *t = hub->t;
    if (shub_grow((void **)&t->shares, &t->cap_shares, t->n_shares + 1, sizeof *t->shares) == 0) {
        share_ans_t *a = &t->shares[t->n_shares++];
        memcpy(a->rid, p->rid, p->rid_len);
        a->rid_len = p->rid_len;
        a->id = ev->id;
    }
    char orig[SHUB_MSG_MAX_NAME + 1] = "";
    int rc = shub_store_event_add(hub->store, &ev->id, p->org, now, orig, &err);
    if (rc == SHUB_EBUSY) {
        /* Resent before its first copy committed: the receipt of that one
         * answers it. */
        t->n_shares--;
        send_error(hub, p, p->rid, p->rid_len, "busy", &ev->id,
                   "this event is being decided; its receipt follows");
        return;
    }
    if (rc == SHUB_EEXIST) {
        t->n_shares--; /* nothing of it is at stake in this turn */
        if (strcmp(orig, p->org) == 0) {
            handle_duplicate(hub, sc);
        } else {
            refuse(hub, p, "bad-value", &ev->id, ev->type,
                   "SHARE.id: this event id is already in use; generate a new one");
        }
        return;
    }
    if (store_check(hub, rc, &err, "dedupe") != 0 ||
        (rc = shub_minimise_leaves(sc->arena, &ev->payload, &sc->fields, &err))) {
        store_check(hub, SHUB_ENOMEM, &err, "share");
        return;
    }

    const shub_org_t *orgs[MAX_RECIPIENTS];
    const char *allowed_to[MAX_RECIPIENTS];
    size_t n = expand(hub, sc, orgs), allowed = 0, denied = 0;
    for (size_t i = 0; i < n && !hub->txn_failed; i++) {
        shub_decision_t d;
        shub_policy_decide(hub->cfg, p->org, orgs[i]->id, ev, now, &d);
        if (d.allow) {
            allow_recipient(hub, sc, orgs[i], &d);
            allowed_to[allowed++] = orgs[i]->id;
        } else {
            deny_recipient(hub, sc, orgs[i]->id, &d);
            denied++;
        }
    }
    deadlines_answer(hub, sc, allowed_to, allowed);
    if (hub->txn_failed)
        return;
    if (out_receipt(hub, p, &ev->id, false, sc->items, sc->n_items)) {
        store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"}, "receipt");
        return;
    }
    hub->t->writes++;
    shub_info("share event=%s type=%s from=%s recipients=%zu allowed=%zu denied=%zu", idt,
              ev->type, p->org, n, allowed, denied);
}

/* ---- ACK, the end of a copy ------------------------------------------------------- */

/* Audits the end of a copy (acknowledged, or dead), records the sender's
 * update, drops the stored copy, and forgets it. `d` is the decision of a
 * re-check that refused it (the agreement version that did), or NULL. */
static int copy_finish(shub_hub_t *hub, copy_t *c, shub_outcome_t state, const char *action,
                       const char *reason, const char *explanation,
                       const shub_decision_t *d, int64_t now)
{
    shub_err_t err;
    int rc;
    shub_audit_row_t row = {
        .at_ms = now,
        .action = action,
        .decision = state == SHUB_OUTCOME_ACKNOWLEDGED ? "acknowledged" : "dead",
        .event_id = c->c.event_id,
        .event_type = c->c.event_type,
        .sender = c->c.sender,
        .recipient = c->c.recipient,
        .reason = reason,
        .explanation = explanation,
        .agreement = d && d->agreement ? d->agreement : c->c.agreement,
        .agreement_version = d && d->agreement ? d->version : c->c.agreement_version,
        .agreement_hash = d && d->agreement ? d->agreement_hash : c->c.agreement_hash,
        .flow = d && d->agreement ? d->flow : c->c.flow,
    };
    if ((rc = shub_store_audit_append(hub->store, &row, &err)))
        return store_check(hub, rc, &err, "audit");
    if (state == SHUB_OUTCOME_DEAD &&
        (rc = shub_store_outcome_dead(hub->store, &c->c.event_id, c->c.recipient, reason,
                                      explanation, &err)) &&
        rc != SHUB_ENOTFOUND)
        return store_check(hub, rc, &err, "receipt");
    shub_store_update_t u = {
        .seq = row.seq,
        .sender = c->c.sender,
        .event_id = c->c.event_id,
        .recipient = c->c.recipient,
        .state = state,
        .reason = reason,
        .detail = explanation,
        .agreement = c->c.agreement,
        .agreement_version = c->c.agreement_version,
        .flow = c->c.flow,
    };
    bool from_hub = strcmp(c->c.sender, SHUB_HUB_SENDER) == 0; /* no one to update */
    if ((!from_hub && (rc = record_update(hub, &u))) ||
        (rc = store_check(hub, shub_store_copy_drop(hub->store, c->c.seq, &err), &err,
                          "drop copy")))
        return rc;
    shub_metrics_turn_delivery(hub->t->m,
                               state == SHUB_OUTCOME_ACKNOWLEDGED ? "acknowledged" : "dead");
    copy_remove(hub, c);
    hub->t->writes++;
    return 0;
}

static void handle_ack(shub_hub_t *hub, peer_t *p, const shub_ack_t *ack)
{
    if (ensure_txn(hub) != 0)
        return; /* not acknowledged: sent again, and the inbox dedupes */
    int64_t now = shub_now_ms();
    uint32_t done = 0, repeats = 0;
    for (uint32_t i = 0; i < ack->count && !hub->txn_failed; i++) {
        copy_t *c = copy_find(hub, &ack->ids[i], p->org);
        if (!c) {
            repeats++; /* a repeated ACK, or an id that was never this org's */
            continue;
        }
        char idt[SHUB_ID_TEXT];
        idtext(&c->c.event_id, idt);
        shub_info("ack event=%s type=%s from=%s by=%s", idt, c->c.event_type, c->c.sender,
                  p->org);
        if (copy_finish(hub, c, SHUB_OUTCOME_ACKNOWLEDGED, "ack", NULL, NULL, NULL, now) == 0)
            done++;
    }
    if (repeats)
        shub_debug("ack by=%s: %u ids not pending (repeats)", p->org, repeats);
}

/* ---- HELLO, CONFIRM, WITNESS ---------------------------------------------------------- */

static void handle_hello(shub_hub_t *hub, peer_t *p, const shub_hello_t *hello)
{
    /* One session per organisation: a new HELLO takes over. */
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *q = hub->peers[i];
        if (q != p && q->welcomed && !q->ended && strcmp(q->org, p->org) == 0)
            session_end(hub, q, "replaced by a new session");
    }
    orgq_t *q = queue_for(hub, p->org, false);
    if (p->welcomed && q)
        requeue_sent(q); /* HELLO again: everything from the start */
    p->welcomed = true;
    p->window = hello->window ? hello->window : 64;
    if (p->window > SHUB_MSG_MAX_BATCH)
        p->window = SHUB_MSG_MAX_BATCH;
    p->upd_cursor = 0;
    p->upd_more = true;
    p->n_held = 0;
    size_t backlog = q ? q->nq + q->ns : 0;
    shub_msg_t w = {.type = SHUB_MSG_WELCOME};
    w.welcome = (shub_welcome_t){
        .org = p->org,
        .heartbeat_ms = hub->set->heartbeat_ms,
        .max_bytes = hub->set->max_message_bytes,
        .window = hub->set->window,
        .time_ms = shub_now_ms(),
        .backlog = backlog > UINT32_MAX ? UINT32_MAX : (uint32_t)backlog,
    };
    send_now(hub, p, p->rid, p->rid_len, &w);
    shub_err_t err;
    shub_msg_t cp = {.type = SHUB_MSG_CHECKPOINT};
    if (!p->ended && shub_store_checkpoint_latest(hub->store, &cp.checkpoint, &err) == 0)
        send_now(hub, p, p->rid, p->rid_len, &cp);
    shub_info("online org=%s agent=%s backlog=%zu window=%u", p->org,
              hello->agent ? hello->agent : "-", backlog, p->window);
    hub->next_timer_ms = 0; /* backlog and updates this turn */
}

static void handle_confirm(shub_hub_t *hub, peer_t *p, const shub_confirm_t *c)
{
    shub_err_t err;
    if (ensure_txn(hub) == 0)
        store_check(hub, shub_store_updates_confirm(hub->store, p->org, c->upto, &err), &err,
                    "confirm");
}

static void handle_witness(shub_hub_t *hub, peer_t *p, const shub_signed_head_t *w)
{
    shub_err_t err;
    if (shub_witness_verify(p->org, w) != 0) {
        shub_warn("witness from org=%s of rows up to %lld does not verify: ignored", p->org,
                  (long long)w->seq);
        refuse(hub, p, "bad-value", NULL, NULL,
               "WITNESS.sig: the countersignature does not verify");
        return;
    }
    if (ensure_txn(hub) != 0)
        return;
    int rc = shub_store_witness_add(hub->store, p->org, w, shub_now_ms(), &err);
    if (rc == SHUB_ENOTFOUND) {
        shub_warn("witness from org=%s names no checkpoint of this log (rows up to %lld)",
                  p->org, (long long)w->seq);
        refuse(hub, p, "bad-value", NULL, NULL,
               "WITNESS: countersigns no checkpoint of this log");
        return;
    }
    if (store_check(hub, rc, &err, "witness") == 0)
        shub_debug("witness org=%s upto=%lld", p->org, (long long)w->seq);
}

/* ---- one message ------------------------------------------------------------------ */

/* Finds or opens the session a message belongs to, bound to its connection.
 * NULL: the message is dropped (answered if it could be). */
static peer_t *session_for(shub_hub_t *hub, const shub_frame_in_t *f)
{
    if (f->user_id[0] == '\0') {
        shub_warn("message without an authenticated organisation dropped");
        return NULL;
    }
    peer_t *p = peer_by_rid(hub, f->rid, f->rid_len);
    if (p && (p->fd != f->fd || strcmp(p->org, f->user_id) != 0)) {
        /* Another connection under this routing id: the old session is over,
         * and this connection has said nothing yet. */
        shub_warn("routing id of org=%s now used by a new connection of org=%s: the "
                  "old session ends",
                  p->org, f->user_id);
        session_end(hub, p, "its routing id was claimed by another connection");
        p = NULL;
    }
    if (!shub_config_org(hub->cfg, f->user_id)) {
        send_error(hub, NULL, f->rid, f->rid_len, "not-welcome", NULL,
                   "organisation '%s' is no longer in the registry", f->user_id);
        if (p)
            session_end(hub, p, "no longer in the registry");
        return NULL;
    }
    if (!p && !(p = peer_new(hub, f)))
        return NULL;
    p->last_in_ms = shub_now_ms();
    return p;
}

/* Phase one: everything but SHAREs, in arrival order. A SHARE is judged
 * against the session as it stands here (a SHARE before HELLO is refused
 * even if a HELLO follows in the same turn) and kept for phase two. */
static void handle_first(shub_hub_t *hub, inmsg_t *m)
{
    peer_t *p = m->p = session_for(hub, &m->f);
    if (!p)
        return;
    if (m->f.extra_frames) {
        refuse(hub, p, "malformed", NULL, NULL,
               "message: one frame expected after the envelope");
        return;
    }
    shub_err_t err;
    int rc;
    if (m->f.body.len > hub->set->max_message_bytes) {
        rc = shub_err_set_path(&err, SHUB_ELIMIT, "message",
                               "message of %zu bytes exceeds limit %u", m->f.body.len,
                               hub->set->max_message_bytes);
    } else {
        rc = shub_msg_decode(m->f.body.data, m->f.body.len, &m->msg, &err);
    }
    if (rc) {
        char line[512];
        shub_err_format(&err, line, sizeof line);
        shub_warn("bad message from org=%s bytes=%zu: %s (%s)", p->org, m->f.body.len, line,
                  shub_err_token(rc));
        refuse(hub, p, shub_err_token(rc), NULL, NULL, line);
        return;
    }
    shub_msg_t *msg = m->msg;
    bool any_state = msg->type == SHUB_MSG_HELLO || msg->type == SHUB_MSG_HEARTBEAT ||
                     msg->type == SHUB_MSG_BYE;
    if (!p->welcomed && !any_state) {
        send_error(hub, p, p->rid, p->rid_len, "not-welcome",
                   msg->type == SHUB_MSG_SHARE ? &msg->share.ev.id : NULL,
                   "%s: say HELLO first", shub_msg_type_name(msg->type));
        shub_msg_destroy(&m->msg);
        return;
    }
    switch (msg->type) {
    case SHUB_MSG_HELLO:
        handle_hello(hub, p, &msg->hello);
        break;
    case SHUB_MSG_SHARE:
        return; /* phase two */
    case SHUB_MSG_ACK:
        handle_ack(hub, p, &msg->ack);
        break;
    case SHUB_MSG_CONFIRM:
        handle_confirm(hub, p, &msg->confirm);
        break;
    case SHUB_MSG_WITNESS:
        handle_witness(hub, p, &msg->witness);
        break;
    case SHUB_MSG_HEARTBEAT:
        break;
    case SHUB_MSG_BYE:
        session_end(hub, p, "bye");
        break;
    default: {
        char text[SHUB_MSG_MAX_LINE];
        snprintf(text, sizeof text, "%s: not a message a broker accepts",
                 shub_msg_type_name(msg->type));
        refuse(hub, p, "protocol", NULL, NULL, text);
    }
    }
    shub_msg_destroy(&m->msg);
}

/* ---- timers: backlog, redelivery, updates, checkpoints ------------------------------- */

/* Decides a stored copy again before it is sent (SPEC 8): dead-lettered if
 * its agreement no longer carries it. True if it may go. */
static bool recheck(shub_hub_t *hub, copy_t *c, int64_t now)
{
    if (strcmp(c->c.sender, SHUB_HUB_SENDER) == 0)
        return true; /* the hub's own notice: no agreement carries it, and an
                        expiry notice must reach its owner after the expiry too */
    shub_policy_copy_t pc = {
        .sender = c->c.sender,
        .recipient = c->c.recipient,
        .event_type = c->c.event_type,
        .area = c->c.area,
        .purpose = c->c.purpose,
        .basis = c->c.basis,
        .agreement = c->c.agreement,
        .agreement_hash = c->c.agreement_hash,
        .flow = c->c.flow,
        .version = c->c.agreement_version,
        .fields_shared = c->c.fields_shared,
    };
    shub_decision_t d;
    shub_policy_recheck_copy(hub->cfg, &pc, now, &d);
    if (d.allow)
        return true;
    char idt[SHUB_ID_TEXT];
    shub_warn("dead event=%s to=%s reason=%s: %s", idtext(&c->c.event_id, idt),
              c->c.recipient, d.reason, d.explanation);
    copy_finish(hub, c, SHUB_OUTCOME_DEAD, "recheck", d.reason, d.explanation, &d, now);
    return false;
}

/* Sends a stored copy (again): its sealed bytes come from the store. */
static void send_stored(shub_hub_t *hub, peer_t *p, copy_t *c, int64_t now)
{
    shub_err_t err;
    if (c->attempts >= hub->set->max_attempts) {
        char why[160], idt[SHUB_ID_TEXT];
        snprintf(why, sizeof why, "no acknowledgement after %u attempts", c->attempts);
        shub_warn("dead event=%s to=%s reason=max-attempts", idtext(&c->c.event_id, idt),
                  c->c.recipient);
        copy_finish(hub, c, SHUB_OUTCOME_DEAD, "dead", "max-attempts", why, NULL, now);
        return;
    }
    if (!recheck(hub, c, now))
        return;
    int rc = shub_store_copy_sealed(hub->store, c->c.seq, &hub->sealbuf, &err);
    if (store_check(hub, rc, &err, "read copy") != 0)
        return;
    c->attempts++;
    c->next_at = now + hub->set->redeliver_ms;
    list_unlink(c);
    list_append(c, true);
    if (out_deliver(hub, p, c, hub->sealbuf.data, hub->sealbuf.len))
        session_end(hub, p, "out of memory");
}

/* Sends queued copies in order while the window has room. A copy whose
 * batch has not committed yet waits (its sealed bytes are not readable yet,
 * and it must not overtake: the queue is in store order). */
static void pump(shub_hub_t *hub, peer_t *p, orgq_t *q, int64_t now)
{
    while (q->qhead && q->qhead->ticket <= shub_store_settled(hub->store) &&
           q->ns < p->window && !hub->txn_failed && !p->ended &&
           p->out[hub->cur].deliver_bytes < TURN_DELIVER_BYTES) {
        if (ensure_txn(hub) != 0)
            return;
        send_stored(hub, p, q->qhead, now);
    }
}

static void redeliver(shub_hub_t *hub, peer_t *p, orgq_t *q, int64_t now)
{
    while (q->shead && q->shead->next_at <= now && !hub->txn_failed && !p->ended &&
           p->out[hub->cur].deliver_bytes < TURN_DELIVER_BYTES) {
        if (ensure_txn(hub) != 0)
            return;
        send_stored(hub, p, q->shead, now);
    }
}

static int on_update(const shub_store_update_t *u, void *ctx)
{
    void **args = ctx;
    return out_update(args[0], args[1], u) ? SHUB_ENOMEM : 0;
}

/* Unconfirmed updates a session has not had yet: the committed ones from the
 * store (which waits for what was submitted), then those held this turn. It
 * is caught up only if nothing of its was recorded this turn unheld: one
 * seq confirms every update below it, so none may be skipped. */
static void feed_updates(shub_hub_t *hub, peer_t *p)
{
    shub_err_t err;
    out_t *o = &p->out[hub->cur];
    size_t before = o->nu;
    void *args[] = {hub, p};
    int rc = shub_store_updates(hub->store, p->org, p->upd_cursor, SHUB_MSG_MAX_BATCH,
                                on_update, args, &err);
    if (rc == SHUB_ENOMEM)
        return; /* the rest next turn */
    if (store_check(hub, rc, &err, "updates") != 0)
        return;
    orgq_t *q = queue_for(hub, p->org, false);
    if (o->nu - before == SHUB_MSG_MAX_BATCH || (q && q->upd_unheld))
        return; /* more next turn, read from the store */
    for (size_t i = 0; i < p->n_held; i++)
        if (p->held[i].seq > p->upd_cursor && out_update_item(hub, p, &p->held[i]) != 0)
            return;
    p->n_held = 0;
    p->upd_more = false;
}

/* Once an hour: a pending copy older than its flow's retention is dead-
 * lettered (its recipient would have to drop it at once: it goes no
 * further), and receipts of events done with for hub.yaml's delivery_days
 * are deleted. The audit log and the event ids stay. */
static void retention_tick(shub_hub_t *hub, int64_t now)
{
    if (now < hub->next_retention_ms)
        return;
    hub->next_retention_ms = now + RETENTION_EVERY_MS;
    size_t dead = 0;
    for (size_t i = 0; i < hub->n_queues && !hub->txn_failed; i++) {
        orgq_t *q = hub->queues[i];
        for (int list = 0; list < 2; list++) {
            for (copy_t *c = list ? q->shead : q->qhead, *next; c && !hub->txn_failed;
                 c = next) {
                next = c->next;
                uint32_t days = strcmp(c->c.sender, SHUB_HUB_SENDER) ? keep_days(hub, c) : 0;
                if (!days || c->c.created_ms + (int64_t)days * DAY_MS > now ||
                    ensure_txn(hub) != 0)
                    continue;
                char why[160];
                snprintf(why, sizeof why, "held past its flow's retention of %u days", days);
                if (copy_finish(hub, c, SHUB_OUTCOME_DEAD, "dead", "retention-expired", why,
                                NULL, now) == 0)
                    dead++;
            }
        }
    }
    shub_err_t err;
    if (!hub->txn_failed && ensure_txn(hub) == 0)
        store_check(hub,
                    shub_store_purge_outcomes(hub->store,
                                              now - (int64_t)hub->set->delivery_days * DAY_MS,
                                              RETENTION_BATCH, &err),
                    &err, "purge receipts");
    if (dead)
        shub_info("retention: copies dead-lettered=%zu (held past their flow's retention)",
                  dead);
}

static void run_timers(shub_hub_t *hub, int64_t now)
{
    bool tick = now >= hub->next_timer_ms;
    if (tick)
        hub->next_timer_ms = now + TIMER_MS;
    for (size_t i = 0; i < hub->n_peers && !hub->txn_failed; i++) {
        peer_t *p = hub->peers[i];
        if (!p->welcomed || p->ended)
            continue;
        orgq_t *q = queue_for(hub, p->org, false);
        if (q && tick)
            redeliver(hub, p, q, now);
        if (q)
            pump(hub, p, q, now);
        if (p->upd_more && p->out[hub->cur].nu < SHUB_MSG_MAX_BATCH)
            feed_updates(hub, p);
    }
    deadlines_check(hub, now);
    publish_gauges(hub, now);
    if (!hub->txn_failed && !hub->degraded)
        lifecycle_tick(hub, now);
    if (!hub->txn_failed && !hub->degraded)
        retention_tick(hub, now);
    /* Not while the store is down: a checkpoint is a write, and a turn that
     * carries one fails whole, deliveries and all. Once a second, when
     * SHAREs may try again, the checkpoint tries too. */
    if (!hub->txn_failed && !hub->degraded && shub_store_checkpoint_due(hub->store, now) &&
        ensure_txn(hub) == 0) {
        shub_err_t err;
        bool made = false;
        int rc =
            shub_store_checkpoint(hub->store, now, false, &hub->t->checkpoint, &made, &err);
        if (store_check(hub, rc, &err, "checkpoint") == 0 && made)
            hub->t->have_checkpoint = true;
    }
}

static void heartbeats(shub_hub_t *hub, int64_t now)
{
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *p = hub->peers[i];
        if (p->ended)
            continue;
        if (now - p->last_in_ms > (int64_t)hub->set->peer_timeout_ms) {
            if (p->welcomed)
                session_end(hub, p, "silent too long");
            else
                p->ended = true;
            continue;
        }
        if (p->welcomed && now - p->last_out_ms >= (int64_t)hub->set->heartbeat_ms) {
            shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
            hb.heartbeat.time_ms = now;
            send_now(hub, p, p->rid, p->rid_len, &hb);
        }
    }
}

/* ---- the end of a turn ---------------------------------------------------------------- */

/* Sends one message to a peer, ending its session if it cannot take it. */
static bool send_to(shub_hub_t *hub, peer_t *p, const shub_msg_t *msg)
{
    shub_err_t err;
    if (p->ended)
        return false;
    int rc = shub_transport_send_msg(hub->router, p->rid, p->rid_len, msg, &hub->scratch,
                                     &err);
    if (rc) {
        shub_warn("cannot send %s to org=%s: %s", shub_msg_type_name(msg->type), p->org,
                  err.msg);
        session_end(hub, p, "cannot send to it");
        return false;
    }
    p->last_out_ms = shub_now_ms();
    return true;
}

/* Everything a peer is owed from turn slot k, in as few messages as the
 * limits allow. */
static void flush_peer(shub_hub_t *hub, peer_t *p, size_t k, const turn_t *t)
{
    out_t *o = &p->out[k];
    send_refusals(hub, p, k);
    for (size_t i = 0; i < o->nr && !p->ended;) {
        size_t n = 0, nodes = 4;
        while (i + n < o->nr && n < SHUB_MSG_MAX_BATCH &&
               nodes + 4 + 8 * (size_t)o->receipts[i + n].count <= RECEIPT_NODES) {
            nodes += 4 + 8 * (size_t)o->receipts[i + n].count;
            n++;
        }
        if (n == 0)
            n = 1; /* one receipt alone always fits (SHUB_MSG_MAX_OUTCOMES) */
        shub_msg_t m = {.type = SHUB_MSG_RECEIPT};
        m.receipt = (shub_receipt_batch_t){.list = &o->receipts[i], .count = (uint32_t)n};
        send_to(hub, p, &m);
        i += n;
    }
    for (size_t i = 0; i < o->nd && !p->ended;) {
        size_t n = 0, bytes = 0;
        while (i + n < o->nd && n < SHUB_MSG_MAX_BATCH &&
               (n == 0 || bytes + o->delivers[i + n].sealed_len + 512 <= BATCH_BYTES)) {
            bytes += o->delivers[i + n].sealed_len + 512;
            n++;
        }
        shub_msg_t m = {.type = SHUB_MSG_DELIVER};
        m.deliver = (shub_deliver_batch_t){.list = &o->delivers[i], .count = (uint32_t)n};
        send_to(hub, p, &m);
        i += n;
    }
    for (size_t i = 0; i < o->nu && !p->ended; i += SHUB_MSG_MAX_BATCH) {
        size_t n = o->nu - i < SHUB_MSG_MAX_BATCH ? o->nu - i : SHUB_MSG_MAX_BATCH;
        shub_msg_t m = {.type = SHUB_MSG_UPDATE};
        m.update = (shub_update_batch_t){.list = &o->updates[i], .count = (uint32_t)n};
        send_to(hub, p, &m);
    }
    if (t->have_checkpoint && p->welcomed && !p->ended) {
        shub_msg_t m = {.type = SHUB_MSG_CHECKPOINT};
        m.checkpoint = t->checkpoint;
        send_to(hub, p, &m);
    }
    out_clear(o);
}

/* What memory holds goes back to what the store holds, after a failure:
 * pending copies reloaded, sessions' sends and update cursors reset. */
static void recover(shub_hub_t *hub)
{
    shub_err_t err;
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *p = hub->peers[i];
        for (size_t k = 0; k < TURNS; k++)
            out_clear(&p->out[k]);
        p->upd_cursor = 0;
        p->upd_more = p->welcomed;
        p->n_held = 0;
    }
    if (copies_load(hub, &err) != 0)
        shub_error("store: cannot reload pending copies: %s (retrying each turn)", err.msg);
    if (deadlines_load(hub, &err) != 0)
        shub_error("store: cannot reload deadlines: %s", err.msg);
}

/* Starts building the turn in slot building % TURNS, which is free. */
static void turn_start(shub_hub_t *hub)
{
    hub->cur = hub->building % TURNS;
    turn_t *t = hub->t = &hub->turns[hub->cur];
    t->wrote = t->have_checkpoint = false;
    t->ticket = 0;
    t->writes = 0;
    t->n_shares = 0;
    shub_arena_destroy(&t->arena);
    t->arena = shub_arena_new(65536);
    hub->turn = t->arena;
    for (size_t i = 0; i < hub->n_peers; i++)
        out_clear(&hub->peers[i]->out[hub->cur]);
}

/* Tells every sender of turn t that nothing of its SHAREs was accepted, and
 * sends the turn's refusals all the same (their audit rows are lost with
 * it, but the messages are refused whether or not the store can say so). */
static void turn_refuse(shub_hub_t *hub, turn_t *t)
{
    shub_metrics_turn_discard(t->m); /* none of it happened */
    for (size_t i = 0; i < t->n_shares; i++)
        send_error(hub, NULL, t->shares[i].rid, t->shares[i].rid_len, "unavailable",
                   &t->shares[i].id,
                   "the broker could not commit; nothing was accepted, resend later");
    t->n_shares = 0;
    monitor_drain(hub);
    for (size_t i = 0; i < hub->n_peers; i++)
        send_refusals(hub, hub->peers[i], (size_t)(t - hub->turns));
}

/* The store cannot commit: one error line for the whole outage (the first
 * failure's cause, hub->fail_why), however many turns and retries fail
 * before it ends; SHAREs are refused for a while, then tried again. */
static void store_down(shub_hub_t *hub, int64_t now, size_t refused)
{
    if (!hub->outage) {
        shub_error("store unavailable: %s; shares are refused until a commit succeeds "
                   "(%zu refused now)",
                   hub->fail_why, refused);
        hub->outage = true;
        hub->degraded_since = now;
    } else {
        shub_debug("store still unavailable: %s", hub->fail_why);
    }
    hub->degraded = true;
    hub->degraded_try_ms = now + DEGRADED_RETRY_MS;
}

/* SHAREs may be tried again; the outage is over, and said so once, only
 * when a turn that wrote something has committed (`proven`): an empty
 * commit succeeds on a full disk too. */
static void store_up(shub_hub_t *hub, int64_t now, bool proven)
{
    hub->degraded = false;
    if (hub->outage && proven) {
        hub->outage = false;
        shub_info("store available again after %lld ms",
                  (long long)(now - hub->degraded_since));
    }
}

/* Sends every turn whose batch has committed, oldest first, stopping at the
 * first still committing. If the writer reports a failure, every turn not
 * yet sent is lost: each assumed the one before. Their senders are told,
 * and memory is rebuilt from the file. */
static void complete_turns(shub_hub_t *hub, int64_t now)
{
    shub_err_t err;
    uint64_t done = 0;
    int rc = shub_store_poll(hub->store, &done, &err);
    bool drained = false;
    while (hub->sending < hub->building) {
        size_t k = hub->sending % TURNS;
        turn_t *t = &hub->turns[k];
        if (t->wrote && t->ticket > done)
            break;
        if (!drained) {
            monitor_drain(hub); /* a connection closed meanwhile gets nothing */
            drained = true;
        }
        for (size_t i = 0; i < hub->n_peers; i++)
            flush_peer(hub, hub->peers[i], k, t);
        shub_arena_destroy(&t->arena); /* sent: its sealed bytes are not kept
                                           until the slot's next turn */
        if (t->have_checkpoint)
            hub->checkpoint_at_ms = t->checkpoint.at_ms;
        shub_metrics_commit(hub->metrics, t->m,
                            t->wrote ? (double)(shub_mono_us() - t->submit_us) / 1e6 : -1);
        if (t->wrote && hub->outage && t->writes)
            store_up(hub, now, true); /* a turn that wrote has committed */
        else if (hub->degraded && t->wrote && t->n_shares == 0 && now >= hub->degraded_try_ms)
            store_up(hub, now, false); /* acknowledgements committed: SHAREs may try */
        hub->sending++;
    }
    if (rc == 0)
        return;
    size_t refused = 0;
    for (; hub->sending < hub->building; hub->sending++) {
        turn_t *t = &hub->turns[hub->sending % TURNS];
        refused += t->n_shares;
        turn_refuse(hub, t);
    }
    snprintf(hub->fail_why, sizeof hub->fail_why, "%s", err.msg);
    store_down(hub, now, refused);
    if ((rc = shub_store_recover(hub->store, &err)) == SHUB_EBUSY) {
        shub_error("store: %s", err.msg);
        hub->lost = true;
        return;
    }
    if (rc != 0)
        shub_error("store: cannot recover: %s", err.msg);
    recover(hub);
}

/* Waits until the oldest turn waiting has been sent (or lost). */
static void wait_turn(shub_hub_t *hub)
{
    uint64_t before = hub->sending;
    while (hub->sending == before && hub->sending < hub->building) {
        struct pollfd pfd = {.fd = shub_store_fd(hub->store), .events = POLLIN};
        if (pfd.fd >= 0)
            poll(&pfd, 1, 100);
        complete_turns(hub, shub_now_ms());
    }
}

/* Ends the turn being built: its batch goes to the store's writer (or, if it
 * failed, is forgotten and its senders told), then the next turn starts in a
 * free slot. */
static void close_turn(shub_hub_t *hub, int64_t now)
{
    shub_err_t err;
    turn_t *t = hub->t;
    if (hub->in_txn) {
        int rc = hub->txn_failed ? SHUB_EDB : shub_store_submit(hub->store, &t->ticket, &err);
        if (rc == 0) {
            t->wrote = true;
            t->submit_us = shub_mono_us();
        } else {
            /* Failed while being recorded: it never reached the writer. The
             * turns before it may still commit; memory is rebuilt once they
             * have (copies_load waits for them). */
            shub_store_rollback(hub->store);
            if (rc != SHUB_EDB) /* else store_check has said what failed */
                snprintf(hub->fail_why, sizeof hub->fail_why, "submit: %s", err.msg);
            store_down(hub, now, t->n_shares);
            turn_refuse(hub, t);
            for (size_t i = 0; i < hub->n_peers; i++)
                out_clear(&hub->peers[i]->out[hub->cur]);
            t->have_checkpoint = false;
            hub->in_txn = hub->txn_failed = false;
            while (hub->sending < hub->building)
                wait_turn(hub);
            recover(hub);
        }
    } else if (hub->degraded && now >= hub->degraded_try_ms) {
        store_up(hub, now, false); /* nothing to prove it with: the next SHARE will */
    }
    if (now - hub->sealer_born_ms >= SEAL_KEY_MS)
        shub_sealer_destroy(&hub->sealer);
    hub->in_txn = hub->txn_failed = false;
    for (size_t i = 0; i < hub->n_peers; i++) {
        hub->peers[i]->turn_shares = 0;
        hub->peers[i]->n_held = 0;
    }
    for (size_t i = 0; i < hub->n_queues; i++)
        hub->queues[i]->upd_unheld = false;
    for (size_t i = 0; i < hub->n_in; i++)
        shub_msg_destroy(&hub->in[i].msg);
    hub->n_in = 0;

    hub->building++;
    complete_turns(hub, now);
    while (hub->building - hub->sending >= TURNS)
        wait_turn(hub);
    peers_sweep(hub);
    turn_start(hub);
}

/* Reads what the socket holds into the turn, up to `max` messages in all. */
static size_t read_turn(shub_hub_t *hub, size_t max)
{
    shub_err_t err;
    while (hub->n_in < max) {
        if (shub_grow((void **)&hub->in, &hub->cap_in, hub->n_in + 1, sizeof *hub->in))
            break;
        inmsg_t *m = &hub->in[hub->n_in]; /* its buffer is kept across turns */
        if (hub->n_in >= hub->cap_in_used) {
            memset(m, 0, sizeof *m);
            hub->cap_in_used = hub->n_in + 1;
        }
        int rc = shub_transport_recv(hub->router, true, &m->f, &err);
        if (rc == SHUB_EBUSY)
            break;
        if (rc) {
            shub_error("receive: %s", err.msg);
            break;
        }
        m->p = NULL;
        m->msg = NULL;
        hub->n_in++;
    }
    return hub->n_in;
}

int shub_hub_poll(shub_hub_t *hub, int timeout_ms)
{
    if (hub->lost)
        return SHUB_EBUSY;
    zmq_pollitem_t items[] = {
        {hub->zap, 0, ZMQ_POLLIN, 0},
        {hub->router, 0, ZMQ_POLLIN, 0},
        {hub->monitor, 0, ZMQ_POLLIN, 0},
        {NULL, shub_store_fd(hub->store), ZMQ_POLLIN, 0}, /* a commit finished */
    };
    int64_t now = shub_now_ms();
    int wait = timeout_ms;
    if (hub->next_timer_ms > now && hub->next_timer_ms - now < wait)
        wait = (int)(hub->next_timer_ms - now);
    if (hub->next_timer_ms <= now)
        wait = 0;
    if (zmq_poll(items, 4, wait) < 0 && errno != EINTR)
        shub_error("poll: %s", zmq_strerror(errno));
    complete_turns(hub, shub_now_ms()); /* what committed meanwhile goes out first */

    while (shub_zap_handle(hub->zap, hub->cfg) == 0)
        ;
    /* The turn is read and handled a chunk at a time. It is closed as soon
     * as the writer has nothing waiting, so that the next group is ready
     * when a commit ends (and an idle writer starts at once); while a batch
     * waits for the writer, the turn grows, up to batch_max, into the group
     * after it. A fixed batch of batch_max left the writer idle while the
     * hub decided a thousand messages, and a small fixed one made the groups
     * too small for forty senders. */
    size_t drained = 0;
    for (;;) {
        size_t from = hub->n_in, max = hub->set->batch_max;
        if (max - from > TURN_CHUNK)
            max = from + TURN_CHUNK;
        if (read_turn(hub, max) == from)
            break;
        drained = hub->n_in;
        monitor_drain(hub); /* after reading, before handling: SPEC 11 */
        for (size_t i = from; i < hub->n_in; i++)
            handle_first(hub, &hub->in[i]);
        for (size_t i = from; i < hub->n_in; i++) {
            inmsg_t *m = &hub->in[i];
            if (m->msg && m->msg->type == SHUB_MSG_SHARE && m->p && !m->p->ended &&
                m->p->welcomed && !hub->txn_failed)
                handle_share(hub, m->p, &m->msg->share);
            else if (m->msg && m->msg->type == SHUB_MSG_SHARE && m->p && !m->p->ended &&
                     hub->txn_failed)
                send_error(hub, m->p, m->p->rid, m->p->rid_len, "unavailable",
                           &m->msg->share.ev.id,
                           "the broker could not commit; nothing was accepted, resend later");
        }
        if (hub->n_in >= hub->set->batch_max || !shub_store_queued(hub->store))
            break;
    }
    now = shub_now_ms();
    run_timers(hub, now);
    close_turn(hub, now);
    heartbeats(hub, now);
    peers_sweep(hub);

    /* Background work off the commit path: after a second with no traffic,
     * so a burst never waits behind it, and every few seconds under traffic
     * that never pauses, so the audit tools' index keeps up. */
    if (drained) {
        hub->last_traffic_ms = now;
        hub->idle_maintained = false;
    }
    bool idle = !drained && !hub->idle_maintained &&
                now - hub->last_traffic_ms >= IDLE_MAINTAIN_MS;
    if (idle || now - hub->last_maintain_ms >= BUSY_MAINTAIN_MS) {
        shub_err_t err;
        bool more = false;
        if (shub_store_maintain(hub->store, idle, &more, &err) != 0)
            shub_debug("store maintenance: %s", err.msg);
        hub->last_maintain_ms = now;
        hub->idle_maintained = idle && !more;
    }
    return hub->lost ? SHUB_EBUSY : 0;
}

void shub_hub_destroy(shub_hub_t **hub_p)
{
    if (!hub_p || !*hub_p)
        return;
    shub_hub_t *hub = *hub_p;
    if (hub->store && hub->t) {
        close_turn(hub, shub_now_ms());
        while (hub->sending < hub->building)
            wait_turn(hub); /* every committed turn is sent before the end */
    }
    if (hub->store) {
        shub_err_t err;
        if (sign_tail(hub, &err) != 0)
            shub_error("store: final checkpoint: %s", err.msg);
        shub_store_close(&hub->store);
    }
    if (hub->monitor) {
        zmq_socket_monitor(hub->router, NULL, 0);
        zmq_close(hub->monitor);
    }
    if (hub->router)
        zmq_close(hub->router);
    if (hub->zap)
        zmq_close(hub->zap);
    if (hub->ctx)
        zmq_ctx_term(hub->ctx);
    shub_config_destroy(&hub->cfg);
    sodium_memzero(&hub->keys, sizeof hub->keys);
    sodium_memzero(hub->sign_secret, sizeof hub->sign_secret);
    sodium_memzero(hub->subject_key, sizeof hub->subject_key);
    for (size_t i = 0; i < hub->cap_in_used; i++) {
        shub_frame_in_free(&hub->in[i].f);
        shub_msg_destroy(&hub->in[i].msg);
    }
    shub_free(hub->in);
    for (size_t i = 0; i < hub->n_peers; i++)
        hub->peers[i]->ended = true;
    peers_sweep(hub);
    shub_free(hub->peers);
    copies_clear(hub);
    shub_deadline_destroy(&hub->deadlines);
    shub_http_stop(&hub->metrics_http); /* before the snapshot it reads */
    shub_metrics_destroy(&hub->metrics);
    for (size_t k = 0; k < TURNS; k++)
        shub_metrics_turn_destroy(&hub->turns[k].m);
    shub_free(hub->queues);
    shub_free(hub->map);
    for (size_t i = 0; i < TURNS; i++) {
        shub_free(hub->turns[i].shares);
        shub_arena_destroy(&hub->turns[i].arena);
    }
    shub_buf_free(&hub->scratch);
    shub_buf_free(&hub->plain);
    shub_buf_free(&hub->sealbuf);
    shub_sealer_destroy(&hub->sealer);
    if (hub->sc)
        shub_arena_destroy(&hub->sc->arena);
    shub_free(hub->sc);
    shub_free(hub);
    *hub_p = NULL;
}
