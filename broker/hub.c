/*
 * hub: the broker's loop (include/sharehub/hub.h). Read this file top-down:
 * set-up, then one turn of the loop (shub_hub_poll), then one handler per
 * message type, then timers (redelivery, backlog, heartbeats).
 *
 * A turn is a group commit. The hub drains up to batch_max messages from the
 * ROUTER (which fair-queues between peers, so one flooding peer cannot starve
 * the rest; a per-peer cap on SHAREs per batch bounds it further), handles
 * each inside one store transaction, commits once, and only then sends what
 * the commit made true: RECEIPTs and DELIVERs wait in `outq` until COMMIT has
 * returned. If the store fails, the transaction is rolled back, `outq` is
 * dropped, and every SHARE of the batch is answered ERROR unavailable: nothing
 * is acknowledged that is not durable, and the next turn tries again.
 *
 * Peers are keyed by ZeroMQ routing id, which the client chooses and which
 * proves nothing: each routing id is bound to the organisation the ZAP
 * handler authenticated (User-Id) on its first message, and every later
 * message must carry the same User-Id. Linear scans over peers: a region has
 * tens of organisations, not thousands.
 */
#include "sharehub/hub.h"

#include "sharehub/alloc.h"
#include "sharehub/config.h"
#include "sharehub/keys.h"
#include "sharehub/log.h"
#include "sharehub/msg.h"
#include "sharehub/policy.h"
#include "sharehub/seal.h"
#include "sharehub/store.h"
#include "sharehub/transport.h"
#include "zap.h"

#include <errno.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define TIMER_MS         100  /* how often the redelivery timer runs */
#define IDLE_MAINTAIN_MS 1000 /* quiet time before a WAL checkpoint */
#define BUSY_MAINTAIN_MS 5000 /* ... or this long under traffic that never stops */
#define DUE_BATCH        256  /* redeliveries handled per timer turn */
#define MAX_RECIPIENTS   SHUB_MSG_MAX_OUTCOMES
#define FIELDS_TEXT_MAX  4096 /* names of shared/stripped fields in one audit row */

typedef struct peer {
    uint8_t rid[SHUB_TRANSPORT_MAX_RID];
    size_t rid_len;
    char org[SHUB_MSG_MAX_NAME + 1]; /* bound on first message, never changes */
    bool welcomed;                   /* said HELLO; receives DELIVERs */
    int64_t last_in_ms, last_out_ms;
    uint32_t window;       /* DELIVERs it accepts un-ACKed */
    uint32_t inflight;     /* DELIVERs sent and not yet ACKed */
    uint32_t batch_shares; /* SHAREs accepted in the current batch */
    bool backlog;          /* queued deliveries wait to be pumped, in id order */
} peer_t;

typedef struct outmsg { /* a message that may be sent once the batch commits */
    uint8_t rid[SHUB_TRANSPORT_MAX_RID];
    size_t rid_len;
    size_t off, len; /* its encoded bytes in outbuf */
    bool deliver;    /* a DELIVER: counts against the peer's window */
} outmsg_t;

typedef struct pending_share { /* answered ERROR unavailable if the commit fails */
    uint8_t rid[SHUB_TRANSPORT_MAX_RID];
    size_t rid_len;
    shub_id_t id;
} pending_share_t;

typedef struct share_ctx share_ctx_t;

typedef struct {
    char text[FIELDS_TEXT_MAX];
    size_t len;
    bool cut;
} names_t;

/* Everything one SHARE's recipients have in common, for the audit rows, and
 * the receipt being built. About half a megabyte at the outcome limit, so
 * the hub allocates one and reuses it for every SHARE. */
struct share_ctx {
    shub_hub_t *hub;
    peer_t *sender;
    const shub_share_t *share;
    int64_t now;
    shub_outcome_item_t items[MAX_RECIPIENTS];
    char details[MAX_RECIPIENTS][SHUB_MSG_MAX_LINE + 1];
    uint32_t n_items;
    /* The minimised copy last built for this SHARE (its bytes in hub->plain),
     * and the flow lists that chose it: recipients reached by the same flow
     * keep the same fields, so a fan-out minimises and encodes once and
     * only seals per recipient. */
    bool min_valid;
    const char *const *min_fields, *const *min_report;
    size_t min_n_fields, min_n_report;
    names_t shared, stripped, facts;
    uint8_t payload_hash[32];
};

struct shub_hub {
    shub_hub_opts_t opts;
    shub_config_t *cfg;
    const shub_hub_settings_t *set; /* borrowed from cfg */
    shub_store_t *store;
    void *ctx, *router, *zap;
    void *monitor; /* failed handshakes (forged keys fail before ZAP) */
    char endpoint[SHUB_TRANSPORT_MAX_ENDPOINT];
    char key_dir[4096];
    shub_curve_keys_t keys;
    uint8_t sign_secret[SHUB_SIGN_SECRET];
    uint8_t subject_key[32];

    peer_t *peers;
    size_t n_peers, cap_peers;

    bool in_txn;     /* a store transaction is open for this batch */
    bool txn_failed; /* something in it failed: roll back, refuse the batch */
    outmsg_t *outq;
    size_t n_out, cap_out;
    shub_buf_t outbuf;
    pending_share_t *pending;
    size_t n_pending, cap_pending;

    shub_frame_in_t in;
    share_ctx_t *sc; /* one SHARE's working set, reused: it is large */
    shub_buf_t scratch, plain;
    int64_t next_timer_ms;
    bool store_down; /* last commit failed; logged once until it recovers */
    bool idle_maintained;
    int64_t last_traffic_ms, last_maintain_ms;
    shub_sealer_t *sealer; /* this batch's ephemeral key; wiped when it ends */
};

/* ---- small helpers ---------------------------------------------------- */

static int grow(void **arr, size_t *cap, size_t need, size_t width)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 16;
    while (n < need)
        n *= 2;
    void *p = shub_realloc(*arr, n * width);
    if (!p)
        return SHUB_ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static const char *idtext(const shub_id_t *id, char buf[SHUB_ID_TEXT])
{
    shub_id_format(id, buf);
    return buf;
}

static peer_t *peer_by_rid(shub_hub_t *hub, const uint8_t *rid, size_t len)
{
    for (size_t i = 0; i < hub->n_peers; i++)
        if (hub->peers[i].rid_len == len && memcmp(hub->peers[i].rid, rid, len) == 0)
            return &hub->peers[i];
    return NULL;
}

/* The connection an organisation is reachable on: its latest HELLO. */
static peer_t *peer_online(shub_hub_t *hub, const char *org)
{
    for (size_t i = 0; i < hub->n_peers; i++)
        if (hub->peers[i].welcomed && strcmp(hub->peers[i].org, org) == 0)
            return &hub->peers[i];
    return NULL;
}

static void peer_forget(shub_hub_t *hub, peer_t *p)
{
    size_t i = (size_t)(p - hub->peers);
    hub->peers[i] = hub->peers[--hub->n_peers];
}

/* Sends now (ERROR, WELCOME, HEARTBEAT: nothing that depends on a commit). */
static void send_now(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                     const shub_msg_t *msg)
{
    shub_err_t err;
    int rc = shub_transport_send_msg(hub->router, rid, rid_len, msg, &hub->scratch, &err);
    if (rc)
        shub_debug("send %s failed: %s", shub_msg_type_name(msg->type), err.msg);
    else if (p)
        p->last_out_ms = shub_now_ms();
}

static void send_error(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                       const char *code, const shub_id_t *id, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static void send_error(shub_hub_t *hub, peer_t *p, const uint8_t *rid, size_t rid_len,
                       const char *code, const shub_id_t *id, const char *fmt, ...)
{
    char text[SHUB_MSG_MAX_LINE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    /* Keep the line printable whatever went into it. */
    for (char *c = text; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    shub_msg_t msg = {.type = SHUB_MSG_ERROR};
    msg.error.code = code;
    msg.error.message = text;
    msg.error.id = id;
    send_now(hub, p, rid, rid_len, &msg);
}

/* Queues msg to be sent after the batch commits. */
static int queue_msg(shub_hub_t *hub, const peer_t *p, const shub_msg_t *msg)
{
    shub_err_t err;
    int rc = shub_msg_encode(msg, &hub->scratch, &err);
    if (rc) {
        shub_error("cannot encode %s: %s", shub_msg_type_name(msg->type), err.msg);
        return rc;
    }
    if ((rc = grow((void **)&hub->outq, &hub->cap_out, hub->n_out + 1,
                   sizeof *hub->outq)) ||
        (rc = shub_buf_append(&hub->outbuf, hub->scratch.data, hub->scratch.len)))
        return rc;
    outmsg_t *o = &hub->outq[hub->n_out++];
    memcpy(o->rid, p->rid, p->rid_len);
    o->rid_len = p->rid_len;
    o->off = hub->outbuf.len - hub->scratch.len;
    o->len = hub->scratch.len;
    o->deliver = msg->type == SHUB_MSG_DELIVER;
    return 0;
}

/* Marks the batch failed when a store call returns a database error. */
static int store_check(shub_hub_t *hub, int rc, const shub_err_t *err, const char *what)
{
    if (rc == SHUB_EDB || rc == SHUB_EIO || rc == SHUB_ENOMEM) {
        if (!hub->txn_failed)
            shub_error("store: %s: %s", what, err->msg);
        hub->txn_failed = true;
    }
    return rc;
}

static int ensure_txn(shub_hub_t *hub)
{
    if (hub->in_txn)
        return hub->txn_failed ? SHUB_EDB : 0;
    shub_err_t err;
    int rc = shub_store_begin(hub->store, &err);
    if (rc) {
        if (!hub->store_down)
            shub_error("store: begin: %s", err.msg);
        hub->store_down = true;
        hub->txn_failed = true;
        hub->in_txn = true; /* so the batch is closed as failed */
        return SHUB_EDB;
    }
    hub->in_txn = true;
    return 0;
}

/* ---- set-up ----------------------------------------------------------- */

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
    int rc = shub_store_begin(hub->store, &err);
    for (size_t i = 0; rc == 0 && i < shub_config_agreement_count(hub->cfg); i++) {
        shub_agreement_info_t a;
        if (shub_config_agreement_info(hub->cfg, i, &a) != 0)
            continue;
        rc = shub_store_agreement_seen(hub->store, a.id, a.version, a.content_hash,
                                       a.title, a.status, a.valid_from_ms,
                                       a.valid_until_ms, a.review_ms, now, &err);
    }
    if (rc == 0)
        rc = shub_store_commit(hub->store, &err);
    else
        shub_store_rollback(hub->store);
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

int shub_hub_new(const shub_hub_opts_t *opts, shub_hub_t **hub_p, shub_err_t *err)
{
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO, "libsodium failed to initialise");
    shub_hub_t *hub = shub_calloc(1, sizeof *hub);
    if (!hub)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    hub->sc = shub_calloc(1, sizeof *hub->sc);
    if (!hub->sc) {
        shub_free(hub);
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    }
    hub->opts = *opts;
    int rc;

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
        .subject_key = hub->subject_key,
        .sign_secret = hub->sign_secret,
        .checkpoint_every = hub->set->checkpoint_every,
    };
    const char *db = opts->database ? opts->database : hub->set->database;
    if ((rc = shub_store_open(db, &sopts, &hub->store, err)))
        goto fail;
    if ((rc = record_agreements(hub))) {
        shub_err_set(err, rc, "cannot record agreement versions in '%s'", db);
        goto fail;
    }

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
    hub->monitor = shub_transport_monitor(hub->ctx, hub->router, "inproc://shub-handshakes", err);
    if (!hub->monitor) {
        rc = err ? err->code : SHUB_EIO;
        goto fail;
    }
    if (opts->ready_file) {
        FILE *f = fopen(opts->ready_file, "w");
        if (!f || fprintf(f, "%s\n", hub->endpoint) < 0 || fclose(f) != 0) {
            rc = shub_err_set(err, SHUB_EIO, "cannot write ready file '%s'",
                              opts->ready_file);
            goto fail;
        }
    }
    shub_info("listening endpoint=%s db=%s orgs=%zu agreements=%zu key=%s", hub->endpoint,
              db, shub_config_org_count(hub->cfg), shub_config_agreement_count(hub->cfg),
              hub->keys.public_z85);
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
     * keys cannot change under a running socket); swap orgs and agreements. */
    shub_config_destroy(&hub->cfg);
    hub->cfg = fresh;
    hub->set = shub_config_hub(hub->cfg);
    record_agreements(hub);
    shub_info("reloaded orgs=%zu agreements=%zu", shub_config_org_count(hub->cfg),
              shub_config_agreement_count(hub->cfg));
    return 0;
}

/* ---- SHARE ------------------------------------------------------------ */

/* Appends a field path to a comma-separated list, once. */
static void names_add(names_t *n, const char *path)
{
    size_t plen = strlen(path);
    for (const char *s = n->text; n->len && *s;) {
        const char *e = strchr(s, ',');
        size_t l = e ? (size_t)(e - s) : strlen(s);
        if (l == plen && memcmp(s, path, l) == 0)
            return;
        if (!e)
            break;
        s = e + 1;
    }
    if (n->len + plen + 2 > sizeof n->text) {
        n->cut = true;
        return;
    }
    if (n->len)
        n->text[n->len++] = ',';
    memcpy(n->text + n->len, path, plen + 1);
    n->len += plen;
}

static void on_stripped(const char *path, void *ctx)
{
    names_add(ctx, path);
}

/* Names the leaves kept in a minimised payload (arrays are transparent). */
static void collect_leaves(const shub_val_t *v, char *path, size_t plen, names_t *out)
{
    if (v->type == SHUB_VAL_ARRAY) {
        for (uint32_t i = 0; i < v->len; i++)
            collect_leaves(&v->as.items[i], path, plen, out);
        return;
    }
    if (v->type != SHUB_VAL_MAP) {
        if (plen)
            names_add(out, path);
        return;
    }
    for (uint32_t i = 0; i < v->len; i++) {
        const shub_pair_t *p = &v->as.pairs[i];
        if (plen + 1 + p->key_len >= SHUB_VAL_MAX_PATH * 2)
            continue;
        size_t n = plen ? plen + 1 + p->key_len : p->key_len;
        if (plen)
            path[plen] = '.';
        memcpy(path + (plen ? plen + 1 : 0), p->key, p->key_len + 1);
        collect_leaves(&p->val, path, n, out);
        path[plen] = '\0';
    }
}

/* The flow's `report` fields as "path=value,...". Only codes are recorded
 * (names, integers, booleans): the agreement classes these fields anonymous,
 * and free text never reaches the audit log even if a sender puts it there. */
static void collect_facts(const shub_val_t *payload, const shub_decision_t *d,
                          names_t *out)
{
    for (size_t i = 0; i < d->n_report; i++) {
        const shub_val_t *v = shub_val_at(payload, d->report[i]);
        char fact[SHUB_VAL_MAX_PATH + SHUB_MSG_MAX_NAME + 2];
        if (!v)
            continue;
        if (v->type == SHUB_VAL_STR && shub_is_name(v->as.str))
            snprintf(fact, sizeof fact, "%s=%s", d->report[i], v->as.str);
        else if (v->type == SHUB_VAL_INT)
            snprintf(fact, sizeof fact, "%s=%lld", d->report[i], (long long)v->as.i);
        else if (v->type == SHUB_VAL_BOOL)
            snprintf(fact, sizeof fact, "%s=%s", d->report[i],
                     v->as.b ? "true" : "false");
        else
            snprintf(fact, sizeof fact, "%s=(not a code)", d->report[i]);
        names_add(out, fact);
    }
}

static void audit_base(const share_ctx_t *sc, shub_audit_row_t *row)
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
    row->case_ref = ev->case_ref;
    row->area = ev->area;
    row->subject_ref = ev->subject_ref;
}

static void add_item(share_ctx_t *sc, const char *to, shub_outcome_t outcome,
                     const char *reason, const char *detail, const shub_decision_t *d)
{
    uint32_t i = sc->n_items++;
    snprintf(sc->details[i], sizeof sc->details[i], "%s", detail ? detail : "");
    sc->items[i] = (shub_outcome_item_t){
        .to = to,
        .outcome = outcome,
        .reason = reason,
        .detail = detail ? sc->details[i] : NULL,
        .agreement = d ? d->agreement : NULL,
        .version = d ? d->version : 0,
        .flow = d ? d->flow : NULL,
    };
}

static int deny_recipient(share_ctx_t *sc, const char *recipient,
                          const shub_decision_t *d)
{
    shub_hub_t *hub = sc->hub;
    shub_err_t err;
    shub_audit_row_t row;
    audit_base(sc, &row);
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
    shub_delivery_t del = {
        .event_id = sc->share->ev.id,
        .recipient = recipient,
        .sender = sc->sender->org,
        .event_type = sc->share->ev.type,
        .state = SHUB_OUTCOME_DENIED,
        .reason = d->reason,
        .detail = d->explanation,
        .agreement = d->agreement,
        .agreement_version = d->version,
        .flow = d->flow,
        .created_ms = sc->now,
    };
    if ((rc = shub_store_delivery_put(hub->store, &del, &err)))
        return store_check(hub, rc, &err, "outbox");
    add_item(sc, recipient, SHUB_OUTCOME_DENIED, d->reason, d->explanation, d);
    char idt[SHUB_ID_TEXT];
    shub_info("deny event=%s type=%s from=%s to=%s reason=%s",
              idtext(&sc->share->ev.id, idt), sc->share->ev.type, sc->sender->org,
              recipient, d->reason);
    return 0;
}

/* Minimise: only the flow's fields leave the hub. Leaves the encoded copy in
 * hub->plain, its hash and the audit row's field lists in sc; reuses them
 * when the last recipient's flow chose the same fields. */
static int minimise(share_ctx_t *sc, const shub_decision_t *d)
{
    shub_hub_t *hub = sc->hub;
    const shub_event_t *ev = &sc->share->ev;
    if (sc->min_valid && sc->min_fields == d->fields && sc->min_n_fields == d->n_fields &&
        sc->min_report == d->report && sc->min_n_report == d->n_report)
        return 0;
    sc->min_valid = false;
    sc->shared.len = sc->stripped.len = sc->facts.len = 0;
    sc->shared.text[0] = sc->stripped.text[0] = sc->facts.text[0] = '\0';
    sc->shared.cut = sc->stripped.cut = sc->facts.cut = false;
    shub_err_t err;
    shub_arena_t *arena = shub_arena_new(4096);
    if (!arena)
        return store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"},
                           "minimise");
    shub_event_t copy = *ev;
    int rc = shub_val_select(arena, &ev->payload, d->fields, d->n_fields, &copy.payload,
                             on_stripped, &sc->stripped);
    char path[SHUB_VAL_MAX_PATH * 2 + 2] = "";
    if (rc == 0) {
        collect_leaves(&copy.payload, path, 0, &sc->shared);
        collect_facts(&copy.payload, d, &sc->facts);
    }
    if (rc == 0)
        rc = shub_event_encode(&copy, &hub->plain, &err);
    shub_arena_destroy(&arena);
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

static int allow_recipient(share_ctx_t *sc, const shub_org_t *org,
                           const shub_decision_t *d)
{
    shub_hub_t *hub = sc->hub;
    const shub_event_t *ev = &sc->share->ev;
    shub_err_t err;
    int rc = minimise(sc, d);
    if (rc)
        return rc;
    const names_t *shared = &sc->shared, *stripped = &sc->stripped, *facts = &sc->facts;

    /* Seal to the recipient with this batch's ephemeral key: once the batch
     * ends and the key is wiped, the stored copy is unreadable to the broker. */
    size_t sealed_len = hub->plain.len + SHUB_SEAL_OVERHEAD;
    if (!hub->sealer)
        hub->sealer = shub_sealer_new();
    uint8_t *sealed = hub->sealer ? shub_malloc(sealed_len) : NULL;
    if (!sealed)
        return store_check(hub, SHUB_ENOMEM, &(shub_err_t){.msg = "out of memory"},
                           "seal");
    if (shub_seal(hub->sealer, org->public_key, hub->plain.data, hub->plain.len,
                  sealed)) {
        shub_free(sealed);
        return store_check(hub, SHUB_ENOMEM,
                           &(shub_err_t){.msg = "cannot seal to the recipient's key"},
                           "seal");
    }

    /* Straight out only when nothing older waits for this recipient and its
     * window has room; otherwise it queues behind the backlog, in order. */
    peer_t *online = peer_online(hub, org->id);
    bool send = online && !online->backlog && online->inflight < online->window;
    if (online && !send)
        online->backlog = true;

    shub_audit_row_t row;
    audit_base(sc, &row);
    row.recipient = org->id;
    row.decision = "allow";
    row.explanation = d->explanation;
    row.agreement = d->agreement;
    row.agreement_version = d->version;
    row.agreement_hash = d->agreement_hash;
    row.flow = d->flow;
    if (d->legal_basis)
        row.legal_basis = d->legal_basis;
    row.fields_shared = shared->text;
    row.fields_stripped = stripped->text;
    row.facts = facts->len ? facts->text : NULL;
    row.payload_hash = sc->payload_hash;
    rc = shub_store_audit_append(hub->store, &row, &err);
    if (rc) {
        shub_free(sealed);
        return store_check(hub, rc, &err, "audit");
    }
    shub_delivery_t del = {
        .event_id = ev->id,
        .recipient = org->id,
        .sender = sc->sender->org,
        .event_type = ev->type,
        .state = send ? SHUB_OUTCOME_DELIVERED : SHUB_OUTCOME_QUEUED,
        .agreement = d->agreement,
        .agreement_version = d->version,
        .flow = d->flow,
        .attempts = send ? 1 : 0,
        .next_at_ms = send ? sc->now + hub->set->redeliver_ms : 0,
        .created_ms = sc->now,
        .sealed = sealed,
        .sealed_len = sealed_len,
    };
    rc = shub_store_delivery_put(hub->store, &del, &err);
    if (rc == 0 && send) {
        shub_msg_t msg = {.type = SHUB_MSG_DELIVER};
        msg.deliver = (shub_deliver_t){
            .id = ev->id,
            .type = ev->type,
            .from = sc->sender->org,
            .agreement = d->agreement,
            .version = d->version,
            .flow = d->flow,
            .attempt = 1,
            .sealed = sealed,
            .sealed_len = (uint32_t)sealed_len,
        };
        rc = queue_msg(hub, online, &msg);
        if (rc == 0)
            online->inflight++;
    }
    shub_free(sealed);
    if (rc)
        return store_check(hub, rc, &err, "outbox");
    add_item(sc, org->id, send ? SHUB_OUTCOME_DELIVERED : SHUB_OUTCOME_QUEUED, NULL, NULL,
             d);
    char idt[SHUB_ID_TEXT];
    shub_info("allow event=%s type=%s from=%s to=%s agreement=%s v%u flow=%s %s%s%s",
              idtext(&ev->id, idt), ev->type, sc->sender->org, org->id, d->agreement,
              d->version, d->flow, send ? "delivered" : "queued",
              stripped->len ? " stripped=" : "", stripped->len ? stripped->text : "");
    return 0;
}

/* A selector that names nobody is audited and reported, not silently lost. */
static int no_recipient(share_ctx_t *sc, const char *selector)
{
    shub_decision_t d = {.allow = false, .reason = "no-recipient"};
    snprintf(d.explanation, sizeof d.explanation,
             "'%s' matches no organisation in the registry other than the sender",
             selector);
    shub_err_t err;
    shub_audit_row_t row;
    audit_base(sc, &row);
    row.recipient = selector;
    row.decision = "deny";
    row.reason = d.reason;
    row.explanation = d.explanation;
    int rc = shub_store_audit_append(sc->hub->store, &row, &err);
    if (rc)
        return store_check(sc->hub, rc, &err, "audit");
    shub_delivery_t del = {
        .event_id = sc->share->ev.id,
        .recipient = selector,
        .sender = sc->sender->org,
        .event_type = sc->share->ev.type,
        .state = SHUB_OUTCOME_DENIED,
        .reason = d.reason,
        .detail = d.explanation,
        .created_ms = sc->now,
    };
    if ((rc = shub_store_delivery_put(sc->hub->store, &del, &err)))
        return store_check(sc->hub, rc, &err, "outbox");
    add_item(sc, selector, SHUB_OUTCOME_DENIED, d.reason, d.explanation, NULL);
    return 0;
}

/* Rebuilds a receipt from the store: a resent SHARE gets the original
 * outcomes (as they stand now), never a second delivery. */
typedef struct {
    share_ctx_t *sc;
    shub_arena_t *arena;
} dup_ctx_t;

static const char *dup_str(shub_arena_t *a, const char *s)
{
    return s ? shub_arena_strndup(a, s, strlen(s)) : NULL;
}

static int on_outcome(const shub_delivery_t *d, void *ctx)
{
    dup_ctx_t *dc = ctx;
    share_ctx_t *sc = dc->sc;
    if (sc->n_items >= MAX_RECIPIENTS)
        return 1;
    shub_outcome_item_t *it = &sc->items[sc->n_items++];
    *it = (shub_outcome_item_t){
        .to = dup_str(dc->arena, d->recipient),
        .outcome = d->state,
        .reason = dup_str(dc->arena, d->reason),
        .agreement = dup_str(dc->arena, d->agreement),
        .version = d->agreement_version,
        .flow = dup_str(dc->arena, d->flow),
    };
    if (d->detail)
        it->detail = dup_str(dc->arena, d->detail);
    return 0;
}

static void handle_duplicate(shub_hub_t *hub, share_ctx_t *sc)
{
    shub_err_t err;
    dup_ctx_t dc = {sc, shub_arena_new(4096)};
    if (!dc.arena)
        return;
    int rc = shub_store_outcomes(hub->store, &sc->share->ev.id, on_outcome, &dc, &err);
    if (rc > 0)
        rc = 0; /* the receipt is full: the first MAX_RECIPIENTS outcomes */
    if (rc == 0) {
        shub_msg_t r = {.type = SHUB_MSG_RECEIPT};
        r.receipt = (shub_receipt_t){.id = sc->share->ev.id,
                                     .duplicate = true,
                                     .items = sc->items,
                                     .count = sc->n_items};
        queue_msg(hub, sc->sender, &r);
        char idt[SHUB_ID_TEXT];
        shub_info("duplicate event=%s from=%s: original receipt resent",
                  idtext(&sc->share->ev.id, idt), sc->sender->org);
    } else {
        store_check(hub, rc, &err, "outcomes");
    }
    shub_arena_destroy(&dc.arena);
}

static void handle_share(shub_hub_t *hub, peer_t *p, const shub_share_t *share)
{
    const shub_event_t *ev = &share->ev;
    int64_t now = shub_now_ms();
    char idt[SHUB_ID_TEXT];
    idtext(&ev->id, idt);

    if (share->from && strcmp(share->from, p->org) != 0) {
        shub_warn("refused event=%s: body claims sender '%s' but the key is %s's", idt,
                  share->from, p->org);
        send_error(hub, p, p->rid, p->rid_len, "sender-mismatch", &ev->id,
                   "SHARE.from: names '%s' but this connection is authenticated as '%s'",
                   share->from, p->org);
        return;
    }
    if (ev->occurred_ms > now + (int64_t)hub->set->future_skew_ms) {
        shub_warn("refused event=%s from=%s: occurred %lld ms in the future", idt, p->org,
                  (long long)(ev->occurred_ms - now));
        send_error(hub, p, p->rid, p->rid_len, "future-event", &ev->id,
                   "SHARE.occurred: %lld ms ahead of the broker clock (limit %u)",
                   (long long)(ev->occurred_ms - now), hub->set->future_skew_ms);
        return;
    }
    if (++p->batch_shares > hub->set->window) {
        send_error(hub, p, p->rid, p->rid_len, "busy", &ev->id,
                   "more than %u unreceipted SHAREs; resend after the receipts arrive",
                   hub->set->window);
        return;
    }
    /* The sealed copy must fit in a DELIVER: check the whole event once
     * (a minimised copy is never larger). The SHARE inlines the event, and
     * re-encoding grows no value more than 9/5 (a float32 comes back as a
     * float64), so a frame under half the limit needs no trial encode. */
    shub_err_t err;
    bool small = hub->in.body.len <= (SHUB_MSG_MAX_BIN - SHUB_SEAL_OVERHEAD) / 2;
    if (!small && (shub_event_encode(ev, &hub->plain, &err) != 0 ||
                   hub->plain.len + SHUB_SEAL_OVERHEAD > SHUB_MSG_MAX_BIN)) {
        send_error(hub, p, p->rid, p->rid_len, "payload-too-large", &ev->id,
                   "SHARE.payload: event of %zu bytes exceeds limit %d", hub->plain.len,
                   SHUB_MSG_MAX_BIN - SHUB_SEAL_OVERHEAD);
        return;
    }
    if (ensure_txn(hub) != 0)
        goto unavailable;

    share_ctx_t *sc = hub->sc;
    sc->hub = hub;
    sc->sender = p;
    sc->share = share;
    sc->now = now;
    sc->n_items = 0;
    sc->min_valid = false;
    char orig[SHUB_MSG_MAX_NAME + 1] = "";
    int rc = shub_store_event_add(hub->store, &ev->id, p->org, ev->type, now, orig, &err);
    if (rc == SHUB_EEXIST) {
        if (strcmp(orig, p->org) == 0)
            handle_duplicate(hub, sc);
        else
            send_error(hub, p, p->rid, p->rid_len, "bad-value", &ev->id,
                       "SHARE.id: this event id is already in use; generate a new one");
        return;
    }
    if (store_check(hub, rc, &err, "dedupe") != 0)
        goto unavailable;
    if (grow((void **)&hub->pending, &hub->cap_pending, hub->n_pending + 1,
             sizeof *hub->pending) == 0) {
        pending_share_t *ps = &hub->pending[hub->n_pending++];
        memcpy(ps->rid, p->rid, p->rid_len);
        ps->rid_len = p->rid_len;
        ps->id = ev->id;
    }

    /* Expand selectors into concrete recipients, each decided on its own. */
    const shub_org_t *orgs[MAX_RECIPIENTS];
    size_t n = 0;
    for (uint32_t i = 0; i < share->to_count && !hub->txn_failed; i++) {
        size_t before = n;
        rc = shub_config_expand(hub->cfg, share->to[i], p->org, orgs, MAX_RECIPIENTS, &n);
        if (rc == 0 && n == before) {
            bool named_before = false; /* an org already reached by an earlier selector */
            for (size_t k = 0; k < n && !named_before; k++)
                named_before = strcmp(orgs[k]->id, share->to[i]) == 0;
            if (!named_before)
                no_recipient(sc, share->to[i]);
        }
    }
    size_t allowed = 0, denied = 0;
    for (size_t i = 0; i < n && !hub->txn_failed; i++) {
        shub_decision_t d;
        shub_policy_decide(hub->cfg, p->org, orgs[i]->id, ev, now, &d);
        if (d.allow) {
            allow_recipient(sc, orgs[i], &d);
            allowed++;
        } else {
            deny_recipient(sc, orgs[i]->id, &d);
            denied++;
        }
    }
    if (!hub->txn_failed) {
        shub_msg_t r = {.type = SHUB_MSG_RECEIPT};
        r.receipt =
            (shub_receipt_t){.id = ev->id, .items = sc->items, .count = sc->n_items};
        queue_msg(hub, p, &r);
        shub_info("share event=%s type=%s from=%s recipients=%zu allowed=%zu denied=%zu",
                  idt, ev->type, p->org, n, allowed, denied);
    }
    return;
unavailable:
    send_error(
        hub, p, p->rid, p->rid_len, "unavailable", &ev->id,
        "the broker cannot store shares right now; nothing was accepted, resend later");
}

/* ---- ACK -------------------------------------------------------------- */

typedef struct {
    const char *recipient;
    char sender[SHUB_MSG_MAX_NAME + 1];
    char type[SHUB_MSG_MAX_NAME + 1];
    char agreement[SHUB_MSG_MAX_NAME + 1];
    char flow[SHUB_MSG_MAX_NAME + 1];
    uint32_t version;
} find_ctx_t;

static int on_find(const shub_delivery_t *d, void *ctx)
{
    find_ctx_t *f = ctx;
    if (strcmp(d->recipient, f->recipient) != 0)
        return 0;
    f->version = d->agreement_version;
    snprintf(f->sender, sizeof f->sender, "%s", d->sender ? d->sender : "");
    snprintf(f->type, sizeof f->type, "%s", d->event_type ? d->event_type : "");
    snprintf(f->agreement, sizeof f->agreement, "%s", d->agreement ? d->agreement : "");
    snprintf(f->flow, sizeof f->flow, "%s", d->flow ? d->flow : "");
    return 1;
}

/* Tells the sender, if connected, of a later outcome (acknowledged, dead). */
static void queue_update(shub_hub_t *hub, const shub_id_t *id, const char *sender,
                         const char *recipient, shub_outcome_t outcome,
                         const char *reason, const char *detail)
{
    peer_t *sp = peer_online(hub, sender);
    if (!sp)
        return;
    shub_outcome_item_t item = {
        .to = recipient, .outcome = outcome, .reason = reason, .detail = detail};
    shub_msg_t r = {.type = SHUB_MSG_RECEIPT};
    r.receipt = (shub_receipt_t){.id = *id, .update = true, .items = &item, .count = 1};
    queue_msg(hub, sp, &r);
}

/* Audits the end of a delivery the store has just finished, and tells the
 * sender. */
static int audit_finished(shub_hub_t *hub, const shub_id_t *id, const find_ctx_t *f,
                          shub_outcome_t state, const char *action, const char *decision,
                          const char *reason, const char *explanation, int64_t now)
{
    shub_err_t err;
    int rc;
    shub_audit_row_t row = {
        .at_ms = now,
        .action = action,
        .decision = decision,
        .event_id = *id,
        .event_type = f->type,
        .sender = f->sender,
        .recipient = f->recipient,
        .reason = reason,
        .explanation = explanation,
        .agreement = f->agreement[0] ? f->agreement : NULL,
        .agreement_version = f->version,
        .flow = f->flow[0] ? f->flow : NULL,
    };
    if ((rc = shub_store_audit_append(hub->store, &row, &err)))
        return store_check(hub, rc, &err, "audit");
    queue_update(hub, id, f->sender, f->recipient, state, reason, explanation);
    return 0;
}

/* Audits the end of a delivery (acknowledged, dead) and drops its payload. */
static int finish_delivery(shub_hub_t *hub, const shub_id_t *id, const find_ctx_t *f,
                           shub_outcome_t state, const char *action, const char *decision,
                           const char *reason, const char *explanation, int64_t now)
{
    shub_err_t err;
    int rc = shub_store_delivery_finish(hub->store, id, f->recipient, state, reason, now,
                                        &err);
    if (rc)
        return rc == SHUB_ENOTFOUND ? rc : store_check(hub, rc, &err, "finish delivery");
    return audit_finished(hub, id, f, state, action, decision, reason, explanation, now);
}

static void handle_ack(shub_hub_t *hub, peer_t *p, const shub_ack_t *ack)
{
    if (ensure_txn(hub) != 0)
        return; /* not acknowledged: the DELIVER is resent, the inbox dedupes */
    shub_err_t err;
    find_ctx_t f = {.recipient = p->org};
    char idt[SHUB_ID_TEXT];
    int64_t now = shub_now_ms();
    /* The store finishes the pending row and hands back only what the audit
     * row needs; a row that is not pending (a repeated ACK) is left alone. */
    int rc = shub_store_delivery_end(hub->store, &ack->id, p->org,
                                     SHUB_OUTCOME_ACKNOWLEDGED, NULL, now, on_find, &f,
                                     &err);
    if (rc == SHUB_ENOTFOUND) {
        shub_debug("ack event=%s by=%s: nothing pending (a repeat)",
                   idtext(&ack->id, idt), p->org);
        return;
    }
    if (store_check(hub, rc, &err, "finish delivery") != 0)
        return;
    rc = audit_finished(hub, &ack->id, &f, SHUB_OUTCOME_ACKNOWLEDGED, "ack",
                        "acknowledged", NULL, NULL, now);
    if (rc == 0) {
        idtext(&ack->id, idt);
        if (p->inflight)
            p->inflight--;
        shub_info("ack event=%s type=%s from=%s by=%s", idt, f.type, f.sender, p->org);
    }
}

/* ---- HELLO, dispatch -------------------------------------------------- */

static void handle_hello(shub_hub_t *hub, peer_t *p, const shub_hello_t *hello)
{
    /* One live session per organisation: a new HELLO takes over. */
    for (size_t i = 0; i < hub->n_peers; i++) {
        peer_t *q = &hub->peers[i];
        if (q != p && q->welcomed && strcmp(q->org, p->org) == 0)
            q->welcomed = false;
    }
    p->welcomed = true;
    p->window = hello->window ? hello->window : 64;
    if (p->window > 1024)
        p->window = 1024;
    p->inflight = 0;
    p->backlog = true;

    /* What an earlier session was sent but never acknowledged goes back in
     * the queue, so this session gets everything in event-id order. */
    shub_err_t err;
    uint32_t backlog = 0;
    if (ensure_txn(hub) == 0)
        store_check(hub, shub_store_requeue(hub->store, p->org, shub_now_ms(), &err),
                    &err, "requeue");
    if (shub_store_backlog_count(hub->store, p->org, &backlog, &err) != 0)
        shub_warn("store: counting backlog of org=%s: %s", p->org, err.msg);
    shub_msg_t w = {.type = SHUB_MSG_WELCOME};
    w.welcome = (shub_welcome_t){
        .org = p->org,
        .heartbeat_ms = hub->set->heartbeat_ms,
        .max_bytes = hub->set->max_message_bytes,
        .window = hub->set->window,
        .time_ms = shub_now_ms(),
        .backlog = backlog,
    };
    send_now(hub, p, p->rid, p->rid_len, &w);
    shub_info("online org=%s agent=%s backlog=%u window=%u", p->org,
              hello->agent ? hello->agent : "-", backlog, p->window);
    hub->next_timer_ms = 0; /* pump the backlog this turn */
}

static void dispatch(shub_hub_t *hub)
{
    shub_frame_in_t *in = &hub->in;
    int64_t now = shub_now_ms();
    if (in->user_id[0] == '\0') {
        shub_warn("message without an authenticated organisation dropped");
        return;
    }
    peer_t *p = peer_by_rid(hub, in->rid, in->rid_len);
    if (p && strcmp(p->org, in->user_id) != 0) {
        shub_warn("refused: routing id bound to org=%s claimed by org=%s", p->org,
                  in->user_id);
        send_error(hub, NULL, in->rid, in->rid_len, "not-welcome", NULL,
                   "routing id already bound to another organisation; do not set one");
        return;
    }
    if (!shub_config_org(hub->cfg, in->user_id)) {
        send_error(hub, NULL, in->rid, in->rid_len, "not-welcome", NULL,
                   "organisation '%s' is no longer in the registry", in->user_id);
        if (p)
            peer_forget(hub, p);
        return;
    }
    if (!p) {
        if (grow((void **)&hub->peers, &hub->cap_peers, hub->n_peers + 1,
                 sizeof *hub->peers))
            return;
        p = &hub->peers[hub->n_peers++];
        memset(p, 0, sizeof *p);
        memcpy(p->rid, in->rid, in->rid_len);
        p->rid_len = in->rid_len;
        snprintf(p->org, sizeof p->org, "%s", in->user_id);
    }
    p->last_in_ms = now;
    if (in->extra_frames) {
        send_error(hub, p, p->rid, p->rid_len, "malformed", NULL,
                   "message: one frame expected after the envelope");
        return;
    }
    shub_msg_t *msg = NULL;
    shub_err_t err;
    int rc = shub_msg_decode(in->body.data, in->body.len, &msg, &err);
    if (rc) {
        char line[512];
        shub_warn("bad message from org=%s bytes=%zu: %s (%s)", p->org, in->body.len,
                  shub_err_format(&err, line, sizeof line), shub_err_token(rc));
        send_error(hub, p, p->rid, p->rid_len, shub_err_token(rc), NULL, "%s", line);
        return;
    }
    if (!p->welcomed && msg->type != SHUB_MSG_HELLO && msg->type != SHUB_MSG_HEARTBEAT &&
        msg->type != SHUB_MSG_BYE) {
        send_error(hub, p, p->rid, p->rid_len, "not-welcome", NULL, "%s: say HELLO first",
                   shub_msg_type_name(msg->type));
    } else {
        switch (msg->type) {
        case SHUB_MSG_HELLO:
            handle_hello(hub, p, &msg->hello);
            break;
        case SHUB_MSG_SHARE:
            handle_share(hub, p, &msg->share);
            break;
        case SHUB_MSG_ACK:
            handle_ack(hub, p, &msg->ack);
            break;
        case SHUB_MSG_HEARTBEAT:
            break;
        case SHUB_MSG_BYE:
            shub_info("offline org=%s (bye)", p->org);
            peer_forget(hub, p);
            break;
        default:
            send_error(hub, p, p->rid, p->rid_len, "protocol", NULL,
                       "%s: not a message a broker accepts",
                       shub_msg_type_name(msg->type));
        }
    }
    shub_msg_destroy(&msg);
}

/* ---- timers: redelivery, backlog, heartbeats --------------------------- */

typedef struct { /* a stored delivery copied out of a store callback */
    shub_delivery_t d;
    char recipient[SHUB_MSG_MAX_NAME + 1], sender[SHUB_MSG_MAX_NAME + 1];
    char type[SHUB_MSG_MAX_NAME + 1], agreement[SHUB_MSG_MAX_NAME + 1];
    char flow[SHUB_MSG_MAX_NAME + 1];
    uint8_t *sealed;
} held_t;

typedef struct {
    held_t *rows;
    size_t n, cap;
} held_list_t;

static int on_hold(const shub_delivery_t *d, void *ctx)
{
    held_list_t *l = ctx;
    if (l->n == l->cap)
        return 1;
    held_t *h = &l->rows[l->n];
    memset(h, 0, sizeof *h);
    h->d = *d;
    snprintf(h->recipient, sizeof h->recipient, "%s", d->recipient ? d->recipient : "");
    snprintf(h->sender, sizeof h->sender, "%s", d->sender ? d->sender : "");
    snprintf(h->type, sizeof h->type, "%s", d->event_type ? d->event_type : "");
    snprintf(h->agreement, sizeof h->agreement, "%s", d->agreement ? d->agreement : "");
    snprintf(h->flow, sizeof h->flow, "%s", d->flow ? d->flow : "");
    if (d->sealed && d->sealed_len) {
        h->sealed = shub_malloc(d->sealed_len);
        if (!h->sealed)
            return 1;
        memcpy(h->sealed, d->sealed, d->sealed_len);
    }
    h->d.recipient = h->recipient;
    h->d.sender = h->sender;
    h->d.event_type = h->type;
    h->d.agreement = h->agreement;
    h->d.flow = h->flow;
    h->d.sealed = h->sealed;
    l->n++;
    return 0;
}

static void held_free(held_list_t *l)
{
    for (size_t i = 0; i < l->n; i++)
        shub_free(l->rows[i].sealed);
    shub_free(l->rows);
    l->rows = NULL;
    l->n = l->cap = 0;
}

static find_ctx_t held_find(const held_t *h)
{
    find_ctx_t f = {.recipient = h->recipient,
                    .version = h->d.agreement_version};
    snprintf(f.sender, sizeof f.sender, "%s", h->sender);
    snprintf(f.type, sizeof f.type, "%s", h->type);
    snprintf(f.agreement, sizeof f.agreement, "%s", h->agreement);
    snprintf(f.flow, sizeof f.flow, "%s", h->flow);
    return f;
}

/* Sends a stored delivery again, after checking its agreement is still in
 * force; past max_attempts, or under an agreement no longer in force, it is
 * dead-lettered instead. */
static void send_stored(shub_hub_t *hub, peer_t *p, held_t *h, int64_t now)
{
    shub_err_t err;
    find_ctx_t f = held_find(h);
    char idt[SHUB_ID_TEXT];
    idtext(&h->d.event_id, idt);
    if (h->d.attempts >= hub->set->max_attempts) {
        char why[160];
        snprintf(why, sizeof why, "no acknowledgement after %u attempts", h->d.attempts);
        if (finish_delivery(hub, &h->d.event_id, &f, SHUB_OUTCOME_DEAD, "dead", "dead",
                            "max-attempts", why, now) == 0)
            shub_warn("dead event=%s to=%s reason=max-attempts", idt, h->recipient);
        return;
    }
    shub_decision_t d;
    shub_policy_recheck(hub->cfg, h->agreement, now, &d);
    if (!d.allow) {
        if (finish_delivery(hub, &h->d.event_id, &f, SHUB_OUTCOME_DEAD, "recheck", "deny",
                            d.reason, d.explanation, now) == 0)
            shub_warn("dead event=%s to=%s reason=%s", idt, h->recipient, d.reason);
        return;
    }
    uint32_t attempt = h->d.attempts + 1;
    int rc = shub_store_delivery_sent(hub->store, &h->d.event_id, h->recipient, attempt,
                                      now + hub->set->redeliver_ms, &err);
    if (store_check(hub, rc, &err, "delivery sent") != 0)
        return;
    shub_msg_t msg = {.type = SHUB_MSG_DELIVER};
    msg.deliver = (shub_deliver_t){
        .id = h->d.event_id,
        .type = h->type,
        .from = h->sender,
        .agreement = h->agreement,
        .version = h->d.agreement_version,
        .flow = h->flow,
        .attempt = attempt,
        .sealed = h->sealed,
        .sealed_len = (uint32_t)h->d.sealed_len,
    };
    if (queue_msg(hub, p, &msg) == 0)
        p->inflight++;
    shub_debug("deliver event=%s to=%s attempt=%u", idt, h->recipient, attempt);
}

static void pump_backlog(shub_hub_t *hub, peer_t *p, int64_t now)
{
    if (!p->welcomed || !p->backlog || p->inflight >= p->window)
        return;
    size_t room = p->window - p->inflight;
    held_list_t l = {.rows = shub_calloc(room, sizeof(held_t)), .cap = room};
    if (!l.rows)
        return;
    shub_err_t err;
    int rc = shub_store_backlog(hub->store, p->org, NULL, room, on_hold, &l, &err);
    if (rc > 0)
        rc = 0; /* on_hold stopped: list full or out of memory; the rest waits */
    if (store_check(hub, rc, &err, "backlog") == 0) {
        /* Each row sent leaves the queue (state delivered), so the next
         * call starts after it: no cursor to keep. */
        for (size_t i = 0; i < l.n && !hub->txn_failed; i++)
            send_stored(hub, p, &l.rows[i], now);
        if (l.n < room)
            p->backlog = false;
    }
    held_free(&l);
}

static void redeliver(shub_hub_t *hub, int64_t now)
{
    held_list_t l = {.rows = shub_calloc(DUE_BATCH, sizeof(held_t)), .cap = DUE_BATCH};
    if (!l.rows)
        return;
    shub_err_t err;
    int rc = shub_store_due(hub->store, now, DUE_BATCH, on_hold, &l, &err);
    if (rc > 0)
        rc = 0;
    if (store_check(hub, rc, &err, "due") == 0) {
        for (size_t i = 0; i < l.n && !hub->txn_failed; i++) {
            held_t *h = &l.rows[i];
            peer_t *p = peer_online(hub, h->recipient);
            if (p && !p->backlog) {
                send_stored(hub, p, h, now);
            } else if (!p) {
                /* Offline: it comes back with the backlog after HELLO. */
                rc = shub_store_delivery_sent(hub->store, &h->d.event_id, h->recipient,
                                              h->d.attempts, now + hub->set->redeliver_ms,
                                              &err);
                store_check(hub, rc, &err, "delivery deferred");
            }
        }
    }
    held_free(&l);
}

/* Backlogs every turn (a recipient's window frees as its ACKs arrive);
 * redelivery on the timer. */
static void run_timers(shub_hub_t *hub, int64_t now)
{
    for (size_t i = 0; i < hub->n_peers && !hub->txn_failed; i++) {
        peer_t *p = &hub->peers[i];
        if (p->welcomed && p->backlog && p->inflight < p->window && ensure_txn(hub) == 0)
            pump_backlog(hub, p, now);
    }
    if (now < hub->next_timer_ms)
        return;
    hub->next_timer_ms = now + TIMER_MS;
    if (ensure_txn(hub) != 0)
        return;
    redeliver(hub, now);
}

static void heartbeats(shub_hub_t *hub, int64_t now)
{
    for (size_t i = 0; i < hub->n_peers;) {
        peer_t *p = &hub->peers[i];
        if (now - p->last_in_ms > (int64_t)hub->set->peer_timeout_ms) {
            if (p->welcomed)
                shub_info("offline org=%s (silent for %u ms)", p->org,
                          hub->set->peer_timeout_ms);
            peer_forget(hub, p); /* frees its routing id for reuse */
            continue;
        }
        if (p->welcomed && now - p->last_out_ms >= (int64_t)hub->set->heartbeat_ms) {
            shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
            hb.heartbeat.time_ms = now;
            send_now(hub, p, p->rid, p->rid_len, &hb);
        }
        i++;
    }
}

/* ---- one turn --------------------------------------------------------- */

/* Ends the batch: commit, then send what the commit made true; or roll back
 * and tell every sender of the batch that nothing was accepted. */
static void close_batch(shub_hub_t *hub)
{
    if (!hub->in_txn)
        return;
    shub_err_t err;
    bool ok = !hub->txn_failed;
    if (ok && shub_store_commit(hub->store, &err) != 0) {
        shub_error("store: commit: %s", err.msg);
        ok = false;
    }
    if (!ok) {
        shub_store_rollback(hub->store);
        if (!hub->store_down)
            shub_error("store unavailable: %zu shares refused, retrying each turn",
                       hub->n_pending);
        hub->store_down = true;
        for (size_t i = 0; i < hub->n_pending; i++)
            send_error(hub, NULL, hub->pending[i].rid, hub->pending[i].rid_len,
                       "unavailable", &hub->pending[i].id,
                       "the broker could not commit; nothing was accepted, resend later");
        for (size_t i = 0; i < hub->n_out; i++) /* undo the windows counted for them */
            if (hub->outq[i].deliver) {
                peer_t *p = peer_by_rid(hub, hub->outq[i].rid, hub->outq[i].rid_len);
                if (p && p->inflight)
                    p->inflight--;
            }
        for (size_t i = 0; i < hub->n_peers; i++)
            hub->peers[i].backlog = hub->peers[i].welcomed; /* re-pump from the store */
    } else {
        if (hub->store_down)
            shub_info("store available again");
        hub->store_down = false;
        int64_t now = shub_now_ms();
        for (size_t i = 0; i < hub->n_out; i++) {
            outmsg_t *o = &hub->outq[i];
            if (shub_transport_send(hub->router, o->rid, o->rid_len,
                                    hub->outbuf.data + o->off, o->len, &err) == 0) {
                peer_t *p = peer_by_rid(hub, o->rid, o->rid_len);
                if (p)
                    p->last_out_ms = now;
            } else if (o->deliver) {
                /* Stored and audited; the redelivery timer sends it again. */
                shub_debug("deliver not sent now: %s", err.msg);
            }
        }
    }
    shub_sealer_destroy(&hub->sealer);
    hub->in_txn = hub->txn_failed = false;
    hub->n_out = hub->n_pending = 0;
    hub->outbuf.len = 0;
    for (size_t i = 0; i < hub->n_peers; i++)
        hub->peers[i].batch_shares = 0;
}

int shub_hub_poll(shub_hub_t *hub, int timeout_ms)
{
    zmq_pollitem_t items[] = {
        {hub->zap, 0, ZMQ_POLLIN, 0},
        {hub->router, 0, ZMQ_POLLIN, 0},
        {hub->monitor, 0, ZMQ_POLLIN, 0},
    };
    int64_t now = shub_now_ms();
    int wait = timeout_ms;
    if (hub->next_timer_ms > now && hub->next_timer_ms - now < wait)
        wait = (int)(hub->next_timer_ms - now);
    if (hub->next_timer_ms <= now)
        wait = 0;
    if (zmq_poll(items, 3, wait) < 0 && errno != EINTR)
        shub_error("poll: %s", zmq_strerror(errno));

    while (shub_zap_handle(hub->zap, hub->cfg) == 0)
        ;
    char line[SHUB_TRANSPORT_MAX_ENDPOINT + 128];
    while (shub_transport_monitor_read(hub->monitor, line, sizeof line) == 0)
        shub_warn("%s", line);
    size_t drained = 0;
    shub_err_t err;
    while (drained < hub->set->batch_max) {
        int rc = shub_transport_recv(hub->router, true, &hub->in, &err);
        if (rc == SHUB_EBUSY)
            break;
        if (rc) {
            shub_error("receive: %s", err.msg);
            break;
        }
        drained++;
        dispatch(hub);
    }
    now = shub_now_ms();
    run_timers(hub, now);
    close_batch(hub);
    heartbeats(hub, now);
    /* WAL checkpoint off the commit path: after a second with no traffic,
     * so a burst never waits behind it; and every few seconds under traffic
     * that never pauses, so the WAL cannot grow without bound. */
    if (drained) {
        hub->last_traffic_ms = now;
        hub->idle_maintained = false;
    }
    bool idle = !drained && !hub->idle_maintained &&
                now - hub->last_traffic_ms >= IDLE_MAINTAIN_MS;
    if (idle || now - hub->last_maintain_ms >= BUSY_MAINTAIN_MS) {
        shub_store_maintain(hub->store);
        hub->last_maintain_ms = now;
        hub->idle_maintained = !drained;
    }
    return 0;
}

void shub_hub_destroy(shub_hub_t **hub_p)
{
    if (!hub_p || !*hub_p)
        return;
    shub_hub_t *hub = *hub_p;
    if (hub->in_txn)
        close_batch(hub);
    if (hub->store) {
        shub_err_t err;
        if (shub_store_checkpoint(hub->store, shub_now_ms(), &err) != 0)
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
    shub_frame_in_free(&hub->in);
    shub_buf_free(&hub->scratch);
    shub_buf_free(&hub->plain);
    shub_buf_free(&hub->outbuf);
    shub_free(hub->outq);
    shub_free(hub->pending);
    shub_free(hub->peers);
    shub_sealer_destroy(&hub->sealer);
    shub_free(hub->sc);
    shub_free(hub);
    *hub_p = NULL;
}
