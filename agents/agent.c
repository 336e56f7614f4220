/*
 * agent: the agent runtime (include/sharehub/agent.h). Read top-down:
 * set-up, the session (connect, HELLO, liveness, reconnect), one handler per
 * message from the broker, sending the outbox, the profile and --on-receive
 * hooks, one turn of the loop, and last the store commands the CLI uses.
 *
 * The rule everything here follows: say nothing to the broker that the
 * store does not already hold. A SHARE is sent from its outbox row (the same
 * bytes, the same id, every time) and the row is pending until a RECEIPT is
 * committed; a DELIVER is ACKed only after its inbox row is committed. The
 * broker dedupes SHAREs by id and the inbox dedupes DELIVERs by id, so any
 * message may be lost or repeated, in either direction, at any moment,
 * without losing or doubling an event: resending is always safe.
 *
 * Failures of the store are logged and survived: an unrecorded RECEIPT is
 * earned again by the next resend (the broker answers a duplicate with the
 * original receipt), an uncommitted DELIVER is not ACKed, so the broker sends
 * it again, and an unapplied UPDATE is not CONFIRMed, so the broker sends it
 * again after the next HELLO.
 *
 * The agent is also a witness (SPEC 5.13): it checks each checkpoint the
 * broker signs against the broker's checkpoint.pub, keeps it, and
 * countersigns it with a key derived from its own CURVE key; a checkpoint
 * that contradicts one it keeps is logged as a fork and kept as evidence.
 *
 * --on-receive hooks run at least once: a new inbox row's hook is pending in
 * the same transaction as the row, so after a crash the agent runs it again;
 * a failure is retried with backoff and given up on (dead) after
 * hook_attempts. The command gets the event as JSON, id included, so the
 * case system can drop the repeats that at-least-once implies.
 */
#include "sharehub/agent.h"

#include "agent_internal.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/seal.h"
#include "sharehub/json.h"
#include "sharehub/keys.h"
#include "sharehub/log.h"
#include "sharehub/profile.h"
#include "sharehub/time.h"
#include "sharehub/transport.h"
#include "sharehub/version.h"
#include "sharehub/witness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define AGENT_NAME     "sharehub-agent/" SHUB_VERSION
#define DELIVER_WINDOW 64  /* DELIVERs we accept un-ACKed (HELLO.window) */
#define RESEND_SCAN_MS 250 /* how often the outbox is scanned for retries */
#define WEEK_MS        (7LL * 24 * 3600 * 1000)
#define HOOK_WAIT_MS   5000 /* how long destroy waits for running hooks */
#define HOOK_SCAN_MS   200  /* how often due hooks are looked for */
#define PURGE_EVERY_MS 10000 /* how often retention is applied */
#define PURGE_BATCH    256   /* rows stripped per pass */
#define DAY_MS         (24LL * 3600 * 1000)
#define HOOK_RETRY_MIN_MS 1000   /* a failed hook is tried again after this, */
#define HOOK_RETRY_MAX_MS 300000 /* doubling up to this */
#define WAKE_MIN_MS       10     /* wake-ups acted on at most this often */

typedef struct hook {
    pid_t pid;
    shub_id_t id;
    uint32_t attempts; /* failed runs before this one */
} hook_t;

struct shub_agent {
    shub_agent_opts_t opts; /* strings borrowed from the caller */
    shub_agent_config_t *cfg;
    char *db_path;
    char endpoint[SHUB_TRANSPORT_MAX_ENDPOINT]; /* the one being tried or used */
    char endpoints[SHUB_AGENT_MAX_BROKERS][SHUB_TRANSPORT_MAX_ENDPOINT];
    size_t n_endpoints, ep; /* ep: the index of endpoint */
    bool tried;             /* a connection to endpoint was made */
    shub_curve_keys_t keys, broker;
    shub_agentdb_t *db;
    shub_scenario_t *scenario;
    shub_profile_t *profile;
    void *ctx, *sock;

    /* the session */
    agent_link_t link; /* what the log says about the connection */
    bool welcomed;
    int64_t session_ms; /* WELCOME received: rows sent before it are resent */
    int64_t last_in_ms, last_out_ms;
    int64_t last_deliver_ms; /* a DELIVER arrived; --until-done waits for quiet */
    shub_opener_t *opener;   /* opens sealed events with this org's key */
    bool can_witness;        /* checkpoint.pub was found */
    uint8_t checkpoint_pub[SHUB_SIGN_PUBLIC_SIZE];  /* the broker's checkpoint key */
    uint8_t witness_pk[SHUB_SIGN_PUBLIC_SIZE], witness_sk[SHUB_SIGN_SECRET_SIZE];
    /* Profile progress: the due time of the last job whose event is in the
     * outbox, and how many events jobs due at that time emitted. After a
     * restart, `resume_*` is what the previous run committed: the rebuilt
     * profile's events up to there are skipped (`skipped_at_due` counts the
     * ties). */
    int64_t emitted_due_ms, emitted_at_due;
    int64_t resume_due_ms, resume_at_due, skipped_at_due;
    int64_t next_hello_ms; /* not welcomed: when to reconnect and say HELLO again */
    int backoff_ms;
    uint32_t heartbeat_ms; /* from WELCOME */
    uint32_t window;       /* SHAREs the broker takes un-RECEIPTed */
    uint32_t max_bytes;    /* largest message the broker takes */

    /* the outbox */
    int64_t next_outbox_ms; /* next data_version check */
    int64_t next_purge_ms;  /* next retention pass (0: at once) */
    int64_t next_scan_ms;   /* next scan for retries */
    bool outbox_dirty;      /* something new to send: scan now */

    /* the simulated clock and the profile */
    int64_t start_real_ms, sim_start_ms;
    double speedup;
    int64_t next_tick_ms;
    int64_t week;

    hook_t hooks[SHUB_AGENT_MAX_HOOKS];
    size_t n_hooks;
    int64_t next_hook_scan_ms;
    bool crash_after_commit; /* test hook: see agent.h */

    shub_frame_in_t in;
    shub_buf_t scratch, plain;
    uint64_t n_sent, n_received;

    /* an observer (the local API) and its wake-up */
    shub_agent_observer_fn *observer;
    void *observer_ctx;
    shub_agent_state_t told; /* what the observer was told last */
    bool store_changed;      /* this turn committed what the observer may wait for */
    uint32_t broker_backlog; /* the last WELCOME's */
    atomic_bool woken;       /* shub_agent_wake, from another thread */
    int64_t woken_ms;        /* the last wake-up acted on */
};

static const char *idtext(const shub_id_t *id, char buf[SHUB_ID_TEXT])
{
    shub_id_format(id, buf);
    return buf;
}

static int64_t sim_now(const shub_agent_t *a, int64_t real_ms)
{
    return a->sim_start_ms + (int64_t)((double)(real_ms - a->start_real_ms) * a->speedup);
}

/* ---- the session ------------------------------------------------------- */

static void close_socket(shub_agent_t *a)
{
    if (!a->sock)
        return;
    shub_agent_link_release(&a->link);
    /* whatever is queued is resent from the store on the next session */
    shub_transport_close(&a->sock, 0);
}

static int send_msg(shub_agent_t *a, const shub_msg_t *msg)
{
    shub_err_t err;
    if (!a->sock)
        return SHUB_EIO;
    int rc = shub_transport_send_msg(a->sock, NULL, 0, msg, &a->scratch, &err);
    if (rc)
        shub_debug("send %s failed: %s", shub_msg_type_name(msg->type), err.msg);
    else
        a->last_out_ms = shub_now_ms();
    return rc;
}

static void send_hello(shub_agent_t *a)
{
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.agent = AGENT_NAME;
    hello.hello.window = DELIVER_WINDOW;
    send_msg(a, &hello);
}

/* A fresh connection and a HELLO; the next attempt waits twice as long. A
 * new socket rather than libzmq's own reconnect: it drops whatever the old
 * one still queued (stale SHAREs and ACKs) and starts a clean handshake. */
static void reconnect(shub_agent_t *a, int64_t now)
{
    close_socket(a);
    a->welcomed = false;
    /* Several brokers (an active one and standbys): the one that did not
     * welcome us, or went away, gives way to the next. Only the active one
     * has its endpoint bound. */
    if (a->n_endpoints > 1 && a->tried) {
        a->ep = (a->ep + 1) % a->n_endpoints;
        snprintf(a->endpoint, sizeof a->endpoint, "%s", a->endpoints[a->ep]);
        shub_info("trying the next broker endpoint=%s", a->endpoint);
    }
    a->tried = true;
    shub_err_t err;
    shub_transport_opts_t o = {
        .endpoint = a->endpoint,
        .public_key = a->keys.public_key,
        .secret_key = a->keys.secret_key,
        .server_key = a->broker.public_key,
        .max_message_bytes = SHUB_MSG_MAX_BYTES,
        .heartbeat_ms = 1000,
    };
    a->sock = shub_transport_connect(a->ctx, &o, &err);
    if (!a->sock) {
        shub_error("connect endpoint=%s: %s", a->endpoint, err.msg);
    } else {
        shub_agent_link_attach(&a->link, a->sock);
        send_hello(a);
    }
    a->next_hello_ms = now + (a->n_endpoints > 1 && a->backoff_ms > SHUB_AGENT_SWITCH_MS
                                  ? SHUB_AGENT_SWITCH_MS
                                  : a->backoff_ms);
    a->backoff_ms = a->backoff_ms * 2 > SHUB_AGENT_BACKOFF_MAX_MS
                        ? SHUB_AGENT_BACKOFF_MAX_MS
                        : a->backoff_ms * 2;
}

/* The broker no longer knows this session: HELLO again now, on the same
 * connection, and let the HELLO timer reconnect if that goes unanswered. */
static void session_lost(shub_agent_t *a, const char *why, int64_t now)
{
    if (!a->welcomed)
        return;
    shub_warn("session lost (%s); saying HELLO again", why);
    shub_agent_link_lost(&a->link, now);
    a->welcomed = false;
    a->backoff_ms = SHUB_AGENT_BACKOFF_MIN_MS;
    send_hello(a);
    a->next_hello_ms = now + a->backoff_ms;
}

static void session_timers(shub_agent_t *a, int64_t now)
{
    if (!a->welcomed) {
        if (now >= a->next_hello_ms)
            reconnect(a, now);
        return;
    }
    int64_t silent = now - a->last_in_ms;
    int64_t limit =
        3 * (int64_t)a->heartbeat_ms < 1000 ? 1000 : 3 * (int64_t)a->heartbeat_ms;
    if (shub_agent_link_dropped(&a->link)) {
        shub_warn("the connection to the broker closed; reconnecting endpoint=%s",
                  a->endpoint);
        shub_agent_link_lost(&a->link, now);
        a->welcomed = false;
        a->backoff_ms = SHUB_AGENT_BACKOFF_MIN_MS;
        reconnect(a, now);
        return;
    }
    if (silent > limit) {
        shub_warn("broker silent for %lld ms; reconnecting endpoint=%s",
                  (long long)silent, a->endpoint);
        shub_agent_link_lost(&a->link, now);
        a->welcomed = false;
        a->backoff_ms = SHUB_AGENT_BACKOFF_MIN_MS;
        reconnect(a, now);
        return;
    }
    if (now - a->last_out_ms >= (int64_t)a->heartbeat_ms) {
        shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
        hb.heartbeat.time_ms = now;
        send_msg(a, &hb);
    }
}

/* ---- set-up ------------------------------------------------------------ */

static int load_keys(shub_agent_t *a, shub_err_t *err)
{
    char path[4200];
    int rc = shub_keys_read_pair(a->cfg->key_dir, a->opts.org, &a->keys, err);
    if (rc)
        return rc;
    a->opener = shub_opener_new(a->keys.public_key, a->keys.secret_key);
    if (!a->opener)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    if (snprintf(path, sizeof path, "%s/broker.pub", a->cfg->key_dir) >= (int)sizeof path)
        return shub_err_set(err, SHUB_EINVAL, "key directory path too long");
    if ((rc = shub_keys_read_public(path, &a->broker, err)))
        return rc;
    if (shub_witness_keypair(a->keys.secret_key, a->witness_pk, a->witness_sk) != 0)
        return shub_err_set(err, SHUB_ECRYPTO, "cannot derive the witness key");
    /* Witnessing needs the broker's checkpoint key; an agent without it still
     * relays, and says so once. */
    shub_err_t cerr;
    snprintf(path, sizeof path, "%s/checkpoint.pub", a->cfg->key_dir);
    a->can_witness = shub_keys_read_hex(path, a->checkpoint_pub, sizeof a->checkpoint_pub,
                                        false, &cerr) == 0;
    if (!a->can_witness)
        shub_warn("no broker checkpoint key (%s): this agent will not witness the "
                  "broker's audit log",
                  cerr.msg);
    return 0;
}

/* Meta keys: the simulated clock's epoch (real ms at simulated start), the
 * scenario it belongs to, and the latest `occurred` a profile emitted. */
#define META_SIM_EPOCH "sim_epoch_ms"
#define META_SIM_IDENTITY "sim_identity"
#define META_EMITTED_DUE "profile_emitted_due_ms"
#define META_EMITTED_AT_DUE "profile_emitted_at_due"

static int replay_inbox(shub_agent_t *a, shub_err_t *err);

/* The simulated clock survives a restart: its epoch (the real time the
 * scenario started) is kept in the store, for as long as the same scenario
 * and seed are run, so a restarted agent carries on with its quarter. */
static int resume_clock(shub_agent_t *a, shub_err_t *err)
{
    uint64_t ident = a->opts.seed ^ (uint64_t)shub_scenario_start_ms(a->scenario) ^
                     ((uint64_t)shub_scenario_end_ms(a->scenario) << 1) ^
                     ((uint64_t)(shub_scenario_speedup(a->scenario) * 1000.0) << 2);
    int64_t stored_ident = 0, epoch = 0;
    if (shub_agentdb_meta_get(a->db, META_SIM_IDENTITY, &stored_ident, err) == 0 &&
        stored_ident == (int64_t)ident &&
        shub_agentdb_meta_get(a->db, META_SIM_EPOCH, &epoch, err) == 0) {
        a->start_real_ms = epoch;
        shub_info("resuming the scenario's clock from %lld s ago",
                  (long long)((shub_now_ms() - epoch) / 1000));
        return 0;
    }
    int rc = shub_agentdb_meta_set(a->db, META_SIM_IDENTITY, (int64_t)ident, err);
    if (rc == 0)
        rc = shub_agentdb_meta_set(a->db, META_SIM_EPOCH, a->start_real_ms, err);
    if (rc == 0)
        rc = shub_agentdb_meta_set(a->db, META_EMITTED_DUE, 0, err);
    if (rc == 0)
        rc = shub_agentdb_meta_set(a->db, META_EMITTED_AT_DUE, 0, err);
    return rc;
}

/* Only a simulation has a profile: a partner's agent relays what its people
 * submit and what the broker delivers, and originates nothing by itself. */
static int make_profile(shub_agent_t *a, shub_err_t *err)
{
    int rc;
    a->start_real_ms = shub_now_ms();
    a->sim_start_ms = a->start_real_ms;
    a->speedup = 1.0;
    if (!a->opts.simulate && !a->opts.scenario)
        return 0;
    if (a->opts.scenario) {
        if ((rc = shub_scenario_load(a->opts.scenario, &a->scenario, err)))
            return rc;
        a->sim_start_ms = shub_scenario_start_ms(a->scenario);
        double s = shub_scenario_speedup(a->scenario);
        a->speedup = s > 0 ? s : 1.0;
        if ((rc = resume_clock(a, err)))
            return rc;
    }
    shub_profile_org_t org = {
        .id = a->cfg->org,
        .kind = a->cfg->kind,
        .areas = (const char *const *)a->cfg->areas,
        .n_areas = a->cfg->n_areas,
        .all_areas = (const char *const *)a->cfg->all_areas,
        .n_all_areas = a->cfg->n_all_areas,
    };
    shub_err_t perr;
    shub_err_clear(&perr);
    rc = shub_profile_new(&org, a->scenario, a->opts.seed, &a->profile, &perr);
    if (rc == SHUB_ENOTFOUND) {
        /* Not every kind originates events (a treatment service, the VRP):
         * such an organisation still receives, stores and acknowledges. */
        shub_info("no profile for kind=%s: the agent only stores what it receives",
                  a->cfg->kind);
        return 0;
    }
    if (rc) {
        if (err)
            *err = perr;
        return rc;
    }
    return replay_inbox(a, err);
}

/* Says on start which of the two things this agent is. */
static void log_mode(const shub_agent_t *a)
{
    if (!a->opts.simulate && !a->opts.scenario)
        shub_info("started org=%s kind=%s version=%s db=%s mode=relay: sends what is "
                  "submitted, stores what is delivered%s; originates nothing",
                  a->cfg->org, a->cfg->kind, SHUB_VERSION, a->db_path,
                  a->opts.on_receive ? ", runs --on-receive" : "");
    else
        shub_info("started org=%s kind=%s version=%s db=%s mode=simulate profile=%s "
                  "scenario=%s: originates synthetic events",
                  a->cfg->org, a->cfg->kind, SHUB_VERSION, a->db_path,
                  a->profile ? a->cfg->kind : "none",
                  a->opts.scenario ? a->opts.scenario : "none (real time)");
}

int shub_agent_new(const shub_agent_opts_t *opts, shub_agent_t **agent_p, shub_err_t *err)
{
    if (!opts || !opts->org || !opts->config_dir || !agent_p)
        return shub_err_set(err, SHUB_EINVAL, "no organisation or config directory");
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO, "libsodium failed to initialise");
    shub_agent_t *a = shub_calloc(1, sizeof *a);
    if (!a)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    a->opts = *opts;
    a->backoff_ms = SHUB_AGENT_BACKOFF_MIN_MS;
    a->heartbeat_ms = SHUB_AGENT_DEFAULT_HEARTBEAT_MS;
    a->window = 1;
    a->max_bytes = SHUB_MSG_MAX_BYTES;
    const char *hook = getenv("SHUB_AGENT_CRASH_AFTER_COMMIT");
    a->crash_after_commit = hook && strcmp(hook, "1") == 0;
    int rc;

    if ((rc = shub_agent_config_load(opts->config_dir, opts->org, &a->cfg, err)))
        goto fail;
    if (opts->key_dir) {
        char *kd = shub_strdup(opts->key_dir);
        if (!kd) {
            rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
            goto fail;
        }
        shub_free(a->cfg->key_dir);
        a->cfg->key_dir = kd;
    }
    /* The brokers to try: --broker (repeated), else hub.yaml's brokers, else
     * its endpoint. */
    const char *one = opts->endpoint ? opts->endpoint : a->cfg->endpoint;
    const char *const *eps = &one;
    size_t n_eps = one ? 1 : 0;
    if (opts->n_endpoints) {
        eps = opts->endpoints;
        n_eps = opts->n_endpoints;
    } else if (!opts->endpoint && a->cfg->n_brokers) {
        eps = (const char *const *)a->cfg->brokers;
        n_eps = a->cfg->n_brokers;
    }
    if (n_eps == 0) {
        rc = shub_err_set(err, SHUB_ECONFIG,
                          "no broker endpoint: give --broker or set hub.yaml's endpoint");
        goto fail;
    }
    if (n_eps > SHUB_AGENT_MAX_BROKERS) {
        rc = shub_err_set(err, SHUB_ECONFIG, "%zu broker endpoints exceed limit %d",
                          n_eps, SHUB_AGENT_MAX_BROKERS);
        goto fail;
    }
    for (size_t i = 0; i < n_eps; i++) {
        const char *ep = eps[i];
        if (!ep || strchr(ep, '*')) {
            rc = shub_err_set(err, SHUB_ECONFIG,
                              "endpoint '%s' is a wildcard to bind, not an address to "
                              "connect to; give --broker",
                              ep ? ep : "");
            goto fail;
        }
        if (strlen(ep) >= sizeof a->endpoints[i]) {
            rc = shub_err_set(err, SHUB_ECONFIG, "endpoint too long");
            goto fail;
        }
        snprintf(a->endpoints[i], sizeof a->endpoints[i], "%s", ep);
    }
    a->n_endpoints = n_eps;
    snprintf(a->endpoint, sizeof a->endpoint, "%s", a->endpoints[0]);
    if ((rc = load_keys(a, err)))
        goto fail;

    if (opts->db_path) {
        a->db_path = shub_strdup(opts->db_path);
    } else {
        size_t n = strlen(opts->org) + 8;
        if ((a->db_path = shub_malloc(n)))
            snprintf(a->db_path, n, "./%s.db", opts->org);
    }
    if (!a->db_path) {
        rc = shub_err_set(err, SHUB_ENOMEM, "out of memory");
        goto fail;
    }
    if ((rc = shub_agentdb_open(a->db_path, true, &a->db, err)))
        goto fail;
    if ((rc = make_profile(a, err)))
        goto fail;

    if (!(a->ctx = zmq_ctx_new())) {
        rc = shub_err_set(err, SHUB_EIO, "zmq context: %s", zmq_strerror(errno));
        goto fail;
    }
    int64_t now = shub_now_ms();
    log_mode(a);
    shub_agent_link_init(&a->link, a->ctx, a->endpoint, a->keys.public_z85, now);
    reconnect(a, now);
    if (!a->sock) {
        rc = shub_err_set(err, SHUB_ECONFIG, "cannot connect to '%s'", a->endpoint);
        goto fail;
    }
    a->outbox_dirty = true;
    a->week = -1;
    *agent_p = a;
    return 0;
fail:
    shub_agent_destroy(&a);
    return rc;
}

/* ---- the outbox -------------------------------------------------------- */

/* An outbox row set aside for good instead of sent, and why. */
typedef struct {
    shub_id_t id;
    const char *code;
    char msg[SHUB_ERR_MSG_MAX + 64];
} reject_t;

typedef struct {
    shub_agent_t *a;
    shub_id_t *ids;
    size_t n, cap;
    bool blocked; /* the socket's queue is full: stop for this turn */
    reject_t *rejects;
    size_t n_rejects;
} send_ctx_t;

/* Whether the row's stored SHARE can ever be settled: within the broker's
 * size limit (a message over it would cost the connection, every session),
 * a SHARE that decodes, and one for the row's own event (the broker's
 * receipt names the event inside; a row whose SHARE carries another would be
 * resent without end). Only a store edited by hand holds the last two. */
static bool sendable(const shub_agent_t *a, const shub_outbox_row_t *row, reject_t *r)
{
    shub_msg_t *m = NULL;
    shub_err_t err;
    char inner[SHUB_ID_TEXT], own[SHUB_ID_TEXT];
    r->id = row->id;
    if (row->share_len > a->max_bytes) {
        r->code = "limit";
        snprintf(r->msg, sizeof r->msg, "SHARE of %zu bytes exceeds the broker's limit %u",
                 row->share_len, a->max_bytes);
        return false;
    }
    if (shub_msg_decode(row->share, row->share_len, &m, &err) != 0) {
        r->code = "malformed";
        snprintf(r->msg, sizeof r->msg, "the stored SHARE does not decode: %s", err.msg);
        return false;
    }
    bool ok = m->type == SHUB_MSG_SHARE &&
              memcmp(m->share.ev.id.bytes, row->id.bytes, SHUB_ID_SIZE) == 0;
    if (!ok) {
        r->code = "bad-value";
        if (m->type != SHUB_MSG_SHARE)
            snprintf(r->msg, sizeof r->msg, "the stored message is a %s, not a SHARE",
                     shub_msg_type_name(m->type));
        else
            snprintf(r->msg, sizeof r->msg,
                     "the stored SHARE is for event %s, not this row's %s: its receipt "
                     "could never settle the row",
                     idtext(&m->share.ev.id, inner), idtext(&row->id, own));
    }
    shub_msg_destroy(&m);
    return ok;
}

static int on_due(const shub_outbox_row_t *row, void *ctx)
{
    send_ctx_t *sc = ctx;
    shub_agent_t *a = sc->a;
    if (!sendable(a, row, &sc->rejects[sc->n_rejects])) {
        sc->n_rejects++;
        return 0;
    }
    shub_err_t err;
    int rc = shub_transport_send(a->sock, NULL, 0, row->share, row->share_len, &err);
    if (rc) {
        shub_debug("share not sent now: %s", err.msg);
        sc->blocked = true;
        return 1;
    }
    a->last_out_ms = shub_now_ms();
    char idt[SHUB_ID_TEXT];
    shub_info("share event=%s type=%s attempt=%u", idtext(&row->id, idt), row->event_type,
              row->attempts + 1);
    sc->ids[sc->n++] = row->id;
    return 0;
}

static int retry_ms(const shub_agent_t *a)
{
    int64_t r = 4 * (int64_t)a->heartbeat_ms;
    return r < SHUB_AGENT_RETRY_MIN_MS ? SHUB_AGENT_RETRY_MIN_MS : (int)r;
}

/* Sends what is due, within the broker's window. */
static void send_due(shub_agent_t *a, int64_t now)
{
    shub_err_t err;
    uint32_t inflight = 0;
    if (shub_agentdb_outbox_inflight(a->db, a->session_ms, now, &inflight, &err)) {
        shub_error("store: %s", err.msg);
        return;
    }
    if (inflight >= a->window)
        return;
    size_t room = a->window - inflight;
    send_ctx_t sc = {.a = a, .cap = room};
    sc.ids = shub_calloc(room, sizeof *sc.ids);
    sc.rejects = shub_calloc(room, sizeof *sc.rejects);
    if (!sc.ids || !sc.rejects)
        goto done;
    if (shub_agentdb_outbox_due(a->db, a->session_ms, now, room, on_due, &sc, &err))
        shub_error("store: %s", err.msg);
    if (sc.n &&
        shub_agentdb_outbox_sent(a->db, sc.ids, sc.n, now, now + retry_ms(a), &err))
        shub_error("store: recording sends: %s", err.msg);
    a->n_sent += sc.n;
    /* Rows that could never be settled are failed for good, with the reason,
     * rather than resent. */
    for (size_t i = 0; i < sc.n_rejects; i++) {
        const reject_t *r = &sc.rejects[i];
        char idt[SHUB_ID_TEXT];
        shub_warn("failed event=%s code=%s: %s", idtext(&r->id, idt), r->code, r->msg);
        if (shub_agentdb_outbox_fail(a->db, &r->id, r->code, r->msg, now, &err))
            shub_error("store: %s", err.msg);
    }
done:
    shub_free(sc.ids);
    shub_free(sc.rejects);
}

static void purge(shub_agent_t *a, int64_t now);

static void outbox_timers(shub_agent_t *a, int64_t now)
{
    shub_err_t err;
    /* A wake-up sends at once, but not more often than WAKE_MIN_MS: under a
     * stream of submissions, events go out in batches rather than one SHARE,
     * RECEIPT and commit each. */
    if (now - a->woken_ms >= WAKE_MIN_MS && atomic_exchange(&a->woken, false)) {
        a->woken_ms = now;
        a->outbox_dirty = true;
    }
    if (now >= a->next_outbox_ms) {
        a->next_outbox_ms = now + SHUB_AGENT_OUTBOX_POLL_MS;
        bool changed = false;
        if (shub_agentdb_changed(a->db, &changed, &err))
            shub_error("store: %s", err.msg);
        a->outbox_dirty = a->outbox_dirty || changed;
    }
    if (!a->welcomed)
        return;
    if (a->outbox_dirty || now >= a->next_scan_ms) {
        a->outbox_dirty = false;
        a->next_scan_ms = now + RESEND_SCAN_MS;
        send_due(a, now);
    }
}

/* Encodes a share (in scratch) and commits it to the outbox; with a
 * profile's progress (due, at_due non-NULL), records it in the same
 * transaction. */
static int queue_share(shub_agentdb_t *db, shub_buf_t *scratch, const shub_share_t *share,
                       const int64_t *progress, shub_err_t *err)
{
    shub_msg_t msg = {.type = SHUB_MSG_SHARE, .share = *share};
    int rc = shub_msg_encode(&msg, scratch, err);
    if (rc)
        return rc;
    char to[SHUB_MSG_MAX_TO * (SHUB_MSG_MAX_NAME + 2) + 1];
    size_t n = 0;
    to[0] = '\0';
    for (uint32_t i = 0; i < share->to_count; i++)
        n += (size_t)snprintf(to + n, sizeof to - n, "%s%s", i ? ", " : "", share->to[i]);
    static const char *const keys[] = {META_EMITTED_DUE, META_EMITTED_AT_DUE};
    if (progress)
        return shub_agentdb_outbox_add_marked(db, &share->ev.id, share->ev.type, to,
                                              scratch->data, scratch->len, shub_now_ms(),
                                              keys, progress, 2, err);
    return shub_agentdb_outbox_add(db, &share->ev.id, share->ev.type, to, scratch->data,
                                   scratch->len, shub_now_ms(), err);
}

/* ---- the profile -------------------------------------------------------- */

static int on_emit(void *ctx, const shub_share_t *share)
{
    shub_agent_t *a = ctx;
    shub_share_t s = *share;
    shub_err_t err;
    char idt[SHUB_ID_TEXT], line[600];
    /* After a restart the profile is rebuilt and fires again what it had
     * already emitted. Jobs fire in due order, so everything due before the
     * last committed job, and as many as were committed at its due time, are
     * already in the outbox. */
    int64_t due = shub_profile_due_ms(a->profile);
    if (due < a->resume_due_ms ||
        (due == a->resume_due_ms && a->skipped_at_due < a->resume_at_due)) {
        if (due == a->resume_due_ms)
            a->skipped_at_due++;
        shub_debug("skipped type=%s due=%lld: emitted before the restart",
                   share->ev.type ? share->ev.type : "-", (long long)due);
        return 0;
    }
    int64_t progress[2] = {due, due == a->emitted_due_ms ? a->emitted_at_due + 1 : 1};
    if (shub_id_generate(&s.ev.id, shub_now_ms()) != 0) {
        shub_error("random source failed; event not queued");
        return -1;
    }
    int rc = queue_share(a->db, &a->scratch, &s, progress, &err);
    if (rc == 0) {
        a->emitted_due_ms = progress[0];
        a->emitted_at_due = progress[1];
    }
    if (rc == SHUB_EDB || rc == SHUB_ENOMEM) {
        shub_error("store: cannot queue type=%s: %s", s.ev.type ? s.ev.type : "-",
                   err.msg);
        return -1;
    }
    if (rc) { /* the profile built something the protocol refuses: skip it */
        shub_error("profile emitted an invalid share type=%s: %s",
                   s.ev.type ? s.ev.type : "-", shub_err_format(&err, line, sizeof line));
        return 0;
    }
    shub_info("queued event=%s type=%s to=%u recipient(s) (profile)",
              idtext(&s.ev.id, idt), s.ev.type, s.to_count);
    a->outbox_dirty = true;
    return 0;
}

/* A profile's state lives in memory. After a restart it is rebuilt by
 * replaying the inbox at the (simulated) times each event arrived; what that
 * makes it fire again, up to the last emission already committed, on_emit
 * skips. */
typedef struct {
    shub_agent_t *a;
    size_t n;
    int rc;
} replay_t;

static int on_replay(const shub_inbox_row_t *row, void *ctx)
{
    replay_t *r = ctx;
    shub_arena_t *arena = shub_arena_new(row->event_len * 2 + 256);
    shub_event_t ev;
    shub_err_t err;
    if (!arena) {
        r->rc = SHUB_ENOMEM;
        return 1;
    }
    if (shub_event_decode(arena, row->event, row->event_len, &ev, &err) == 0) {
        shub_profile_receive(r->a->profile, sim_now(r->a, row->received_ms), row->sender, &ev,
                             on_emit, r->a);
        r->n++;
    }
    shub_arena_destroy(&arena);
    return 0;
}

static int replay_inbox(shub_agent_t *a, shub_err_t *err)
{
    int rc = shub_agentdb_meta_get(a->db, META_EMITTED_DUE, &a->emitted_due_ms, err);
    if (rc == 0)
        rc = shub_agentdb_meta_get(a->db, META_EMITTED_AT_DUE, &a->emitted_at_due, err);
    if (rc == SHUB_ENOTFOUND)
        a->emitted_due_ms = a->emitted_at_due = 0, rc = 0;
    if (rc)
        return rc;
    a->resume_due_ms = a->emitted_due_ms;
    a->resume_at_due = a->emitted_at_due;
    replay_t r = {a, 0, 0};
    if ((rc = shub_agentdb_inbox_list(a->db, 0, on_replay, &r, err)))
        return rc;
    if (r.rc)
        return shub_err_set(err, r.rc, "out of memory replaying the inbox");
    if (r.n)
        shub_info("replayed %zu received events into the profile", r.n);
    return 0;
}

static void tick_profile(shub_agent_t *a, int64_t now)
{
    if (now < a->next_tick_ms)
        return;
    a->next_tick_ms = now + SHUB_AGENT_TICK_MS;
    int64_t sim = sim_now(a, now);
    if (a->profile && shub_profile_tick(a->profile, sim, on_emit, a) != 0)
        shub_warn("profile tick stopped early; it resumes next tick");
    if (!a->scenario)
        return;
    int64_t week = (sim - a->sim_start_ms) / WEEK_MS;
    if (week > a->week) {
        a->week = week;
        char t[SHUB_TIME_TEXT];
        uint64_t pending = 0;
        shub_err_t err;
        shub_agentdb_outbox_count(a->db, SHUB_OUTBOX_PENDING, &pending, &err);
        shub_info("progress week=%lld sim=%.10s sent=%llu received=%llu pending=%llu",
                  (long long)week, shub_time_format(sim, t),
                  (unsigned long long)a->n_sent, (unsigned long long)a->n_received,
                  (unsigned long long)pending);
    }
}

/* ---- --on-receive hooks ------------------------------------------------ */

static uint32_t hook_attempts(const shub_agent_t *a)
{
    return a->opts.hook_attempts ? a->opts.hook_attempts : SHUB_AGENT_HOOK_ATTEMPTS;
}

/* The wait before the next try after `attempts` failed ones. */
static int64_t hook_backoff(uint32_t attempts)
{
    int64_t ms = HOOK_RETRY_MIN_MS;
    for (uint32_t i = 1; i < attempts && ms < HOOK_RETRY_MAX_MS; i++)
        ms *= 2;
    return ms < HOOK_RETRY_MAX_MS ? ms : HOOK_RETRY_MAX_MS;
}

static void hook_record(shub_agent_t *a, const hook_t *h, bool ok, const char *why)
{
    shub_err_t err;
    char idt[SHUB_ID_TEXT];
    shub_hook_state_t state = SHUB_HOOK_PENDING;
    idtext(&h->id, idt);
    int rc = shub_agentdb_hook_result(a->db, &h->id, ok, why, shub_now_ms(),
                                      hook_attempts(a), hook_backoff(h->attempts + 1),
                                      &state, &err);
    if (rc && rc != SHUB_ENOTFOUND) {
        shub_error("store: hook event=%s: %s (it runs again)", idt, err.msg);
        return;
    }
    if (ok)
        shub_debug("on-receive command done event=%s", idt);
    else if (state == SHUB_HOOK_DEAD)
        shub_error("on-receive command failed event=%s attempts=%u: %s; given up (see "
                   "`sharehub-agent inbox`)",
                   idt, h->attempts + 1, why);
    else
        shub_warn("on-receive command failed event=%s attempt=%u: %s; trying again", idt,
                  h->attempts + 1, why);
}

static void reap_hooks(shub_agent_t *a, bool block)
{
    for (size_t i = 0; i < a->n_hooks;) {
        int status;
        pid_t r = waitpid(a->hooks[i].pid, &status, block ? 0 : WNOHANG);
        if (r == 0 || (r < 0 && errno == EINTR)) {
            i++;
            continue;
        }
        char why[64] = "";
        bool ok = r > 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0;
        if (r < 0)
            snprintf(why, sizeof why, "lost track of it: %s", strerror(errno));
        else if (WIFEXITED(status))
            snprintf(why, sizeof why, "exit status %d", WEXITSTATUS(status));
        else
            snprintf(why, sizeof why, "killed by signal %d",
                     WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        hook_record(a, &a->hooks[i], ok, why);
        a->hooks[i] = a->hooks[--a->n_hooks];
        block = false; /* one was freed: enough */
    }
}

/* Runs the command with the event's JSON on its stdin, without waiting: the
 * JSON goes through an unlinked temporary file, so a command that never reads
 * its input cannot block the agent on a full pipe. */
static bool start_hook(shub_agent_t *a, const shub_inbox_row_t *row)
{
    char idt[SHUB_ID_TEXT], line[600];
    idtext(&row->id, idt);
    shub_arena_t *arena = shub_arena_new(row->event_len * 2 + 256);
    shub_event_t ev;
    shub_err_t err;
    char *json = NULL;
    const char *why = NULL;
    if (!arena) {
        why = "out of memory";
    } else if (shub_event_decode(arena, row->event, row->event_len, &ev, &err) != 0) {
        why = shub_err_format(&err, line, sizeof line);
    } else {
        shub_json_meta_t meta = {.from = row->sender,
                                 .agreement = row->agreement,
                                 .version = row->version,
                                 .flow = row->flow,
                                 .received_ms = row->received_ms};
        if (shub_json_event_write(&ev, &meta, &json, &err) != 0)
            why = shub_err_format(&err, line, sizeof line);
    }
    int fd = -1;
    char path[4096];
    if (!why) {
        const char *tmpdir = getenv("TMPDIR");
        snprintf(path, sizeof path, "%s/sharehub-hook-XXXXXX",
                 tmpdir && *tmpdir ? tmpdir : "/tmp");
        if ((fd = mkstemp(path)) < 0)
            why = "cannot make its input file";
    }
    if (!why) {
        unlink(path);
        size_t len = strlen(json), off = 0;
        while (off < len) {
            ssize_t w = write(fd, json + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        if (off < len || write(fd, "\n", 1) != 1 || lseek(fd, 0, SEEK_SET) != 0)
            why = "cannot write its input";
    }
    shub_free(json);
    shub_arena_destroy(&arena);
    hook_t h = {.id = row->id, .attempts = row->hook_attempts};
    if (why) {
        if (fd >= 0)
            close(fd);
        hook_record(a, &h, false, why);
        return false;
    }
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd, STDIN_FILENO);
        close(fd);
        execl("/bin/sh", "sh", "-c", a->opts.on_receive, (char *)NULL);
        _exit(127);
    }
    close(fd);
    if (pid < 0) {
        shub_warn("on-receive command not started event=%s: fork: %s; trying later", idt,
                  strerror(errno));
        return false;
    }
    h.pid = pid;
    a->hooks[a->n_hooks++] = h;
    shub_debug("on-receive command started event=%s attempt=%u", idt, h.attempts + 1);
    return true;
}

static int on_due_hook(const shub_inbox_row_t *row, void *ctx)
{
    shub_agent_t *a = ctx;
    for (size_t i = 0; i < a->n_hooks; i++)
        if (memcmp(a->hooks[i].id.bytes, row->id.bytes, SHUB_ID_SIZE) == 0)
            return 0; /* still running */
    if (a->n_hooks == SHUB_AGENT_MAX_HOOKS)
        return 1;
    start_hook(a, row);
    return 0;
}

/* Starts the hooks that are due: new rows, retries, and those a crash left
 * pending (which therefore may run twice: at least once, never never). */
static void run_hooks(shub_agent_t *a, int64_t now)
{
    reap_hooks(a, false);
    if (!a->opts.on_receive || now < a->next_hook_scan_ms ||
        a->n_hooks == SHUB_AGENT_MAX_HOOKS)
        return;
    a->next_hook_scan_ms = now + HOOK_SCAN_MS;
    shub_err_t err;
    if (shub_agentdb_hooks_due(a->db, now, SHUB_AGENT_MAX_HOOKS + a->n_hooks, on_due_hook, a,
                               &err))
        shub_error("store: hooks: %s", err.msg);
}

/* ---- witnessing ---------------------------------------------------------- */

/* Checks a checkpoint of the broker's audit log against what this agent
 * keeps, keeps it, and countersigns it; or keeps it as evidence of a fork. */
static void handle_checkpoint(shub_agent_t *a, const shub_signed_head_t *cp, int64_t now)
{
    shub_err_t err;
    shub_signed_head_t held;
    char note[200];
    if (!a->can_witness)
        return;
    if (shub_checkpoint_verify(cp, a->checkpoint_pub) != 0) {
        shub_warn("checkpoint of rows up to %lld is not signed by the broker's checkpoint "
                  "key: ignored",
                  (long long)cp->seq);
        return;
    }
    /* The same rows with another head, or fewer rows than we hold, is a fork:
     * the broker's log is not the one it showed us before. */
    int rc = shub_agentdb_checkpoint_at(a->db, cp->seq, &held, &err);
    bool fork = false;
    if (rc == 0 && memcmp(held.head, cp->head, SHUB_HASH_SIZE) != 0) {
        snprintf(note, sizeof note,
                 "rows up to %lld end in another head than the checkpoint kept from %lld",
                 (long long)cp->seq, (long long)held.at_ms);
        fork = true;
    } else if (rc == 0) {
        return; /* seen before: already kept and countersigned */
    } else if (rc != SHUB_ENOTFOUND) {
        shub_error("store: checkpoints: %s", err.msg);
        return;
    }
    if (!fork && (rc = shub_agentdb_checkpoint_latest(a->db, &held, &err)) == 0 &&
        held.seq > cp->seq) {
        snprintf(note, sizeof note,
                 "the log ends at row %lld, but a checkpoint of rows up to %lld is kept",
                 (long long)cp->seq, (long long)held.seq);
        fork = true;
    } else if (rc != 0 && rc != SHUB_ENOTFOUND) {
        shub_error("store: checkpoints: %s", err.msg);
        return;
    }
    if (fork) {
        shub_error("FORK in the broker's audit log: %s; kept as evidence, not "
                   "countersigned",
                   note);
        if (shub_agentdb_checkpoint_add(a->db, cp, SHUB_CP_FORK, note, now, &err))
            shub_error("store: keeping the fork: %s", err.msg);
        return;
    }
    if (shub_agentdb_checkpoint_add(a->db, cp, SHUB_CP_WITNESSED, NULL, now, &err)) {
        shub_error("store: keeping a checkpoint: %s", err.msg);
        return;
    }
    shub_msg_t w = {.type = SHUB_MSG_WITNESS};
    if (shub_witness_sign(a->cfg->org, cp, a->witness_sk, a->witness_pk, &w.witness) == 0)
        send_msg(a, &w);
    shub_debug("witnessed checkpoint upto=%lld", (long long)cp->seq);
}

/* ---- messages from the broker ------------------------------------------ */

static void handle_welcome(shub_agent_t *a, const shub_welcome_t *w, int64_t now)
{
    a->welcomed = true;
    a->session_ms = now;
    a->heartbeat_ms = w->heartbeat_ms >= 100 ? w->heartbeat_ms : 100;
    a->window = w->window ? w->window : 1;
    a->max_bytes = w->max_bytes && w->max_bytes < SHUB_MSG_MAX_BYTES ? w->max_bytes
                                                                     : SHUB_MSG_MAX_BYTES;
    a->backoff_ms = SHUB_AGENT_BACKOFF_MIN_MS;
    a->outbox_dirty = true;
    a->last_deliver_ms = now; /* --until-done waits a quiet spell for the backlog */
    a->broker_backlog = w->backlog;
    shub_agent_link_welcomed(&a->link, now);
    if (strcmp(w->org, a->cfg->org) != 0)
        shub_warn("the broker knows this key as org=%s, not %s", w->org, a->cfg->org);
    shub_info("welcomed org=%s endpoint=%s backlog=%u window=%u heartbeat_ms=%u", w->org,
              a->endpoint, w->backlog, w->window, w->heartbeat_ms);
}

static void handle_receipt(shub_agent_t *a, const shub_receipt_batch_t *b, int64_t now)
{
    shub_err_t err;
    size_t unknown = 0;
    int rc = shub_agentdb_receipts(a->db, b->list, b->count, now, &unknown, &err);
    if (rc) { /* the next resends earn them again */
        shub_error("store: %u receipt(s): %s", b->count, err.msg);
        return;
    }
    for (uint32_t k = 0; k < b->count; k++) {
        const shub_receipt_t *r = &b->list[k];
        char idt[SHUB_ID_TEXT];
        idtext(&r->id, idt);
        for (uint32_t i = 0; i < r->count; i++) {
            const shub_outcome_item_t *it = &r->items[i];
            shub_info("receipt event=%s to=%s outcome=%s%s%s%s", idt, it->to,
                      shub_outcome_name(it->outcome), it->reason ? " reason=" : "",
                      it->reason ? it->reason : "", r->duplicate ? " (repeat)" : "");
        }
        if (r->count == 0)
            shub_info("receipt event=%s: no recipients", idt);
    }
    if (unknown)
        shub_warn("%zu receipt(s) for events not in this outbox ignored", unknown);
}

/* Later outcomes: applied in one transaction, then confirmed, so the broker
 * may forget them only once this store holds them. */
static void handle_update(shub_agent_t *a, const shub_update_batch_t *b, int64_t now)
{
    shub_err_t err;
    int64_t upto = 0;
    if (shub_agentdb_updates_apply(a->db, b->list, b->count, now, &upto, &err)) {
        shub_error("store: %u update(s) not applied: %s (the broker sends them again)",
                   b->count, err.msg);
        return;
    }
    for (uint32_t i = 0; i < b->count; i++) {
        const shub_update_t *u = &b->list[i];
        char idt[SHUB_ID_TEXT];
        shub_info("update event=%s to=%s outcome=%s%s%s seq=%lld", idtext(&u->id, idt),
                  u->item.to, shub_outcome_name(u->item.outcome),
                  u->item.reason ? " reason=" : "", u->item.reason ? u->item.reason : "",
                  (long long)u->seq);
    }
    shub_msg_t c = {.type = SHUB_MSG_CONFIRM};
    c.confirm.upto = upto;
    send_msg(a, &c);
}

static void handle_error(shub_agent_t *a, const shub_error_msg_t *e, int64_t now)
{
    shub_err_t err;
    char idt[SHUB_ID_TEXT] = "-";
    if (e->id)
        idtext(e->id, idt);
    if (strcmp(e->code, "not-welcome") == 0) {
        shub_warn("broker: not-welcome: %s", e->message);
        session_lost(a, "not-welcome", now);
        return;
    }
    if (!e->id) {
        shub_warn("broker error code=%s: %s", e->code, e->message);
        return;
    }
    if (strcmp(e->code, "busy") == 0 || strcmp(e->code, "unavailable") == 0) {
        shub_info("broker %s event=%s: resending later", e->code, idt);
        if (shub_agentdb_outbox_retry(a->db, e->id, now + SHUB_AGENT_BUSY_RETRY_MS,
                                      &err) &&
            err.code != SHUB_ENOTFOUND)
            shub_error("store: %s", err.msg);
        return;
    }
    /* Any other ERROR naming an event (malformed, limit, bad-value,
     * sender-mismatch, future-event, payload-too-large, ... SPEC 6.1): that
     * SHARE will never be accepted as it is. Stop resending it; keep it, with
     * the reason, for the operators (`sharehub-agent outbox`). */
    shub_warn("failed event=%s code=%s: %s", idt, e->code, e->message);
    if (shub_agentdb_outbox_fail(a->db, e->id, e->code, e->message, now, &err) &&
        err.code != SHUB_ENOTFOUND)
        shub_error("store: %s", err.msg);
}

/* Opens one delivery into a->plain (an event in arena); false, logged, if
 * it does not open, decode, or carry its own id: then it is not ACKed and the
 * broker's redelivery eventually marks it dead. */
static bool open_delivery(shub_agent_t *a, const shub_deliver_t *d, shub_arena_t *arena,
                          shub_event_t *ev, uint8_t **plain, size_t *len)
{
    char idt[SHUB_ID_TEXT], line[600];
    shub_err_t err;
    idtext(&d->id, idt);
    if (d->sealed_len <= SHUB_SEAL_OVERHEAD) {
        shub_warn("deliver event=%s from=%s: sealed event too short; not acknowledged",
                  idt, d->from);
        return false;
    }
    size_t n = d->sealed_len - SHUB_SEAL_OVERHEAD;
    uint8_t *p = shub_arena_alloc(arena, n);
    if (!p) {
        shub_error("deliver event=%s: out of memory; not acknowledged", idt);
        return false;
    }
    if (shub_unseal(a->opener, d->sealed, d->sealed_len, p) != 0) {
        shub_warn("deliver event=%s from=%s: does not open with this organisation's key; "
                  "not acknowledged",
                  idt, d->from);
        return false;
    }
    if (shub_event_decode(arena, p, n, ev, &err) != 0) {
        shub_warn("deliver event=%s from=%s: sealed event does not decode: %s; not "
                  "acknowledged",
                  idt, d->from, shub_err_format(&err, line, sizeof line));
        return false;
    }
    if (memcmp(ev->id.bytes, d->id.bytes, SHUB_ID_SIZE) != 0) {
        char inner[SHUB_ID_TEXT];
        shub_warn("deliver event=%s from=%s: sealed event has id %s; not acknowledged",
                  idt, d->from, idtext(&ev->id, inner));
        return false;
    }
    *plain = p;
    *len = n;
    return true;
}

/* A DELIVER's copies: every one that opens is committed to the inbox in one
 * transaction (with its hook pending if there is one), then one ACK names
 * them all, repeats included. */
static void handle_deliver(shub_agent_t *a, const shub_deliver_batch_t *b, int64_t now)
{
    a->last_deliver_ms = now;
    shub_err_t err;
    uint32_t n = b->count;
    shub_arena_t *arena = shub_arena_new(65536);
    shub_inbox_row_t *rows = shub_calloc(n, sizeof *rows);
    shub_event_t *evs = shub_calloc(n, sizeof *evs);
    const shub_deliver_t **from = shub_calloc(n, sizeof *from);
    shub_id_t *ids = shub_calloc(n, sizeof *ids);
    bool *added = shub_calloc(n, sizeof *added);
    size_t k = 0;
    if (!arena || !rows || !evs || !from || !ids || !added) {
        shub_error("deliver: out of memory; %u deliveries not acknowledged", n);
        goto done;
    }
    for (uint32_t i = 0; i < n; i++) {
        const shub_deliver_t *d = &b->list[i];
        uint8_t *plain;
        size_t len;
        if (!open_delivery(a, d, arena, &evs[k], &plain, &len))
            continue;
        rows[k] = (shub_inbox_row_t){
            .id = d->id,
            .event_type = evs[k].type,
            .sender = d->from,
            .agreement = d->agreement,
            .version = d->version,
            .flow = d->flow,
            .received_ms = now,
            .event = plain,
            .event_len = len,
            /* The flow's retention runs from the event's own time. */
            .keep_until_ms = d->keep_days && evs[k].occurred_ms > 0
                                 ? evs[k].occurred_ms + (int64_t)d->keep_days * DAY_MS
                                 : 0,
        };
        from[k] = d;
        k++;
    }
    if (k == 0)
        goto done;
    if (shub_agentdb_inbox_add_batch(a->db, rows, k, a->opts.on_receive != NULL, added,
                                     &err) != 0) {
        shub_error("store: inbox: %s; %zu deliveries not acknowledged", err.msg, k);
        goto done;
    }
    for (size_t i = 0; i < k; i++)
        if (added[i] && a->crash_after_commit)
            _exit(9); /* test hook (agent.h): committed, not yet acknowledged */
    for (size_t i = 0; i < k; i++)
        ids[i] = rows[i].id;
    shub_msg_t ack = {.type = SHUB_MSG_ACK};
    ack.ack.ids = ids;
    ack.ack.count = (uint32_t)k;
    send_msg(a, &ack);
    for (size_t i = 0; i < k; i++) {
        char idt[SHUB_ID_TEXT];
        idtext(&rows[i].id, idt);
        if (!added[i]) {
            shub_info("duplicate event=%s from=%s attempt=%u: already in the inbox; "
                      "acknowledged again",
                      idt, from[i]->from, from[i]->attempt);
            continue;
        }
        a->n_received++;
        shub_info("received event=%s type=%s from=%s agreement=%s v%u flow=%s", idt,
                  rows[i].event_type, from[i]->from, from[i]->agreement,
                  from[i]->version, from[i]->flow);
        if (a->profile && shub_profile_receive(a->profile, sim_now(a, now), from[i]->from,
                                               &evs[i], on_emit, a) != 0)
            shub_warn("profile did not take event=%s type=%s", idt, rows[i].event_type);
    }
    a->next_hook_scan_ms = 0; /* new hooks: look now */
done:
    shub_free(rows);
    shub_free(evs);
    shub_free(from);
    shub_free(ids);
    shub_free(added);
    shub_arena_destroy(&arena);
}

static void dispatch(shub_agent_t *a, int64_t now)
{
    shub_msg_t *msg = NULL;
    shub_err_t err;
    a->last_in_ms = now;
    if (a->in.extra_frames) {
        shub_warn("message of more than one frame from the broker ignored");
        return;
    }
    if (shub_msg_decode(a->in.body.data, a->in.body.len, &msg, &err) != 0) {
        char line[600];
        shub_warn("bad message from the broker bytes=%zu: %s", a->in.body.len,
                  shub_err_format(&err, line, sizeof line));
        return;
    }
    /* What these commit, an observer may be waiting for. */
    a->store_changed = a->store_changed || msg->type == SHUB_MSG_RECEIPT ||
                       msg->type == SHUB_MSG_DELIVER || msg->type == SHUB_MSG_UPDATE ||
                       msg->type == SHUB_MSG_ERROR;
    switch (msg->type) {
    case SHUB_MSG_WELCOME:
        handle_welcome(a, &msg->welcome, now);
        break;
    case SHUB_MSG_RECEIPT:
        handle_receipt(a, &msg->receipt, now);
        break;
    case SHUB_MSG_DELIVER:
        handle_deliver(a, &msg->deliver, now);
        break;
    case SHUB_MSG_UPDATE:
        handle_update(a, &msg->update, now);
        break;
    case SHUB_MSG_CHECKPOINT:
        handle_checkpoint(a, &msg->checkpoint, now);
        break;
    case SHUB_MSG_ERROR:
        handle_error(a, &msg->error, now);
        break;
    case SHUB_MSG_HEARTBEAT:
        break;
    case SHUB_MSG_BYE:
        session_lost(a, "the broker said BYE", now);
        break;
    default:
        shub_warn("unexpected %s from the broker ignored", shub_msg_type_name(msg->type));
    }
    shub_msg_destroy(&msg);
}

/* ---- one turn ---------------------------------------------------------- */

/* Tells the observer, once a turn at most, that the store or the connection
 * changed. */
static void tell_observer(shub_agent_t *a)
{
    if (!a->observer)
        return;
    shub_agent_state_t st = {
        .connected = a->link.connected,
        .welcomed = a->welcomed,
        .since_ms = a->welcomed ? a->session_ms : a->link.down_since_ms,
        .broker_backlog = a->broker_backlog,
    };
    if (!a->store_changed && st.connected == a->told.connected &&
        st.welcomed == a->told.welcomed && st.since_ms == a->told.since_ms &&
        st.broker_backlog == a->told.broker_backlog)
        return;
    a->store_changed = false;
    a->told = st;
    a->observer(a->observer_ctx, &st);
}

void shub_agent_observe(shub_agent_t *a, shub_agent_observer_fn *fn, void *ctx)
{
    a->observer = fn;
    a->observer_ctx = ctx;
    a->store_changed = true; /* the first turn tells the state as it is */
}

void shub_agent_wake(shub_agent_t *a)
{
    atomic_store(&a->woken, true);
}

int shub_agent_poll(shub_agent_t *a, int timeout_ms)
{
    if (timeout_ms > SHUB_AGENT_TICK_MS)
        timeout_ms = SHUB_AGENT_TICK_MS;
    if (timeout_ms < 0)
        timeout_ms = 0;
    if (a->sock) {
        zmq_pollitem_t item = {a->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, timeout_ms) < 0 && errno != EINTR)
            shub_error("poll: %s", zmq_strerror(errno));
        shub_err_t err;
        for (int i = 0; i < 256 && a->sock; i++) {
            int rc = shub_transport_recv(a->sock, false, &a->in, &err);
            if (rc == SHUB_EBUSY)
                break;
            if (rc) {
                shub_error("receive: %s", err.msg);
                break;
            }
            dispatch(a, shub_now_ms());
        }
    } else {
        struct timespec ts = {0, (long)timeout_ms * 1000000L};
        nanosleep(&ts, NULL);
    }
    int64_t now = shub_now_ms();
    shub_agent_link_poll(&a->link, now);
    session_timers(a, now);
    tick_profile(a, now);
    outbox_timers(a, now);
    run_hooks(a, now);
    tell_observer(a);
    purge(a, now);
    return 0;
}

/* ---- retention ---------------------------------------------------------------- */

/* The event with every payload value and personal reference gone: id, type,
 * times, area, purpose, basis and consent stay, so the row still says what
 * it was, dedupes and takes receipts. */
static void strip_event(shub_event_t *ev)
{
    ev->payload = shub_val_map();
    ev->subject_ref = NULL;
    ev->case_ref = NULL;
    ev->actor = NULL;
}

typedef struct purge {
    shub_agent_t *a;
    int64_t now;
    size_t inbox, outbox, failed;
} purge_t;

static int purge_inbox_row(const shub_held_t *h, void *ctx)
{
    purge_t *p = ctx;
    shub_err_t err;
    uint8_t hash[32];
    shub_event_t ev;
    shub_arena_t *arena = shub_arena_new(h->len * 2 + 256);
    int rc = arena ? shub_event_decode(arena, h->bytes, h->len, &ev, &err) : SHUB_ENOMEM;
    if (rc == 0) {
        crypto_generichash(hash, sizeof hash, h->bytes, h->len, NULL, 0);
        strip_event(&ev);
        if ((rc = shub_event_encode(&ev, &p->a->scratch, &err)) == 0)
            rc = shub_agentdb_inbox_purge(p->a->db, &h->id, p->a->scratch.data,
                                          p->a->scratch.len, hash, p->now, &err);
    }
    shub_arena_destroy(&arena);
    if (rc)
        p->failed++;
    else
        p->inbox++;
    return 0;
}

static int purge_outbox_row(const shub_held_t *h, void *ctx)
{
    purge_t *p = ctx;
    shub_err_t err;
    uint8_t hash[32];
    shub_msg_t *msg = NULL;
    int rc = shub_msg_decode(h->bytes, h->len, &msg, &err);
    if (rc == 0 && msg->type != SHUB_MSG_SHARE)
        rc = SHUB_EPROTO;
    if (rc == 0) {
        crypto_generichash(hash, sizeof hash, h->bytes, h->len, NULL, 0);
        strip_event(&msg->share.ev);
        if ((rc = shub_msg_encode(msg, &p->a->scratch, &err)) == 0)
            rc = shub_agentdb_outbox_drop(p->a->db, &h->id, p->a->scratch.data,
                                          p->a->scratch.len, hash, p->now, &err);
    }
    shub_msg_destroy(&msg);
    if (rc)
        p->failed++;
    else
        p->outbox++;
    return 0;
}

/* Applies retention: received events past their flow's retention lose their
 * payload values, and an event this organisation shared loses its
 * unminimised payload once every recipient's outcome is final. Then the WAL
 * is truncated, so the old pages leave the disk too. */
static void purge(shub_agent_t *a, int64_t now)
{
    shub_err_t err;
    purge_t p = {.a = a, .now = now};
    if (now < a->next_purge_ms)
        return;
    a->next_purge_ms = now + PURGE_EVERY_MS;
    if (shub_agentdb_inbox_expired(a->db, now, PURGE_BATCH, purge_inbox_row, &p, &err) ||
        shub_agentdb_outbox_settled(a->db, PURGE_BATCH, purge_outbox_row, &p, &err))
        shub_warn("retention: %s", err.msg);
    if (p.inbox + p.outbox == 0)
        return;
    int rc = shub_agentdb_shrink(a->db, &err);
    if (rc == SHUB_EBUSY)
        a->next_purge_ms = now; /* the pages are not off the disk yet: again soon */
    shub_info("retention: payloads dropped inbox=%zu (past retention) outbox=%zu (outcomes "
              "final)%s",
              p.inbox, p.outbox, rc ? "; the log file is truncated next time" : "");
    if (p.failed)
        shub_warn("retention: %zu rows could not be stripped (not decodable); kept", p.failed);
}

bool shub_agent_done(shub_agent_t *a)
{
    /* Never welcomed: the broker may hold a backlog for us still. */
    if (!a->opts.until_done || a->n_hooks || a->session_ms == 0)
        return false;
    int64_t now = shub_now_ms();
    if (a->profile && !shub_profile_done(a->profile, sim_now(a, now)))
        return false;
    if (a->scenario && sim_now(a, now) < shub_scenario_end_ms(a->scenario))
        return false; /* partners may still send to us until the period ends */
    if (now - a->last_deliver_ms < SHUB_AGENT_QUIET_MS)
        return false;
    uint64_t pending = 1;
    shub_err_t err;
    if (shub_agentdb_outbox_count(a->db, SHUB_OUTBOX_PENDING, &pending, &err) != 0)
        return false;
    return pending == 0;
}

int64_t shub_agent_offline_ms(const shub_agent_t *a)
{
    return shub_agent_link_down_ms(&a->link, shub_now_ms());
}

void shub_agent_destroy(shub_agent_t **agent_p)
{
    if (!agent_p || !*agent_p)
        return;
    shub_agent_t *a = *agent_p;
    if (a->welcomed) {
        shub_msg_t bye = {.type = SHUB_MSG_BYE};
        bye.bye.reason = "stopping";
        send_msg(a, &bye);
    }
    for (int waited = 0; a->n_hooks && waited < HOOK_WAIT_MS; waited += 10) {
        reap_hooks(a, false);
        struct timespec ts = {0, 10 * 1000000L};
        if (a->n_hooks)
            nanosleep(&ts, NULL);
    }
    if (a->n_hooks)
        shub_warn("%zu on-receive command(s) still running at exit", a->n_hooks);
    if (a->db) { /* what is due goes before we stop, not at the next start */
        a->next_purge_ms = 0;
        purge(a, shub_now_ms());
    }
    shub_agent_link_release(&a->link);
    /* long enough for the BYE, not for a dead broker */
    shub_transport_close(&a->sock, 200);
    if (a->ctx)
        zmq_ctx_term(a->ctx);
    shub_profile_destroy(&a->profile);
    shub_scenario_destroy(&a->scenario);
    shub_opener_destroy(&a->opener);
    shub_agentdb_close(&a->db);
    shub_agent_config_destroy(&a->cfg);
    sodium_memzero(&a->keys, sizeof a->keys);
    sodium_memzero(a->witness_sk, sizeof a->witness_sk);
    shub_frame_in_free(&a->in);
    shub_buf_free(&a->scratch);
    shub_buf_free(&a->plain);
    shub_free(a->db_path);
    shub_free(a);
    *agent_p = NULL;
}

/* ---- store commands ---------------------------------------------------- */

static bool area_known(const shub_agent_config_t *cfg, const char *area)
{
    for (size_t i = 0; i < cfg->n_all_areas; i++)
        if (strcmp(cfg->all_areas[i], area) == 0)
            return true;
    return false;
}

/* An event about an area the partnership does not have, or addressed to one,
 * is a typo the broker could only answer with "no recipients": refuse it
 * here, naming the field, before anything is queued. */
static int check_areas(const shub_agent_config_t *cfg, const shub_share_t *share,
                       shub_err_t *err)
{
    static const char why[] =
        "'%s' is not an area in orgs.yaml: no organisation serves it";
    if (share->ev.area && !area_known(cfg, share->ev.area))
        return shub_err_set_path(err, SHUB_EVALUE, "area", why, share->ev.area);
    for (uint32_t i = 0; i < share->to_count; i++) {
        const char *at = strchr(share->to[i], '@');
        char path[32];
        snprintf(path, sizeof path, "to[%u]", i);
        if (at && !area_known(cfg, at + 1))
            return shub_err_set_path(err, SHUB_EVALUE, path, why, at + 1);
    }
    return 0;
}

/* Whether the queued row holds exactly the SHARE in ctx (a shub_buf_t). */
static int same_share(const shub_outbox_row_t *row, void *ctx)
{
    shub_buf_t *b = ctx;
    if (row->share_len != b->len || memcmp(row->share, b->data, b->len) != 0)
        b->len = 0;
    return 1;
}

/* shub_agent_submit and shub_agent_submit_once: with repeat, an id already
 * queued with the very bytes this JSON encodes to is a repeat, not an error. */
static int submit(shub_agentdb_t *db, const shub_agent_config_t *cfg, const char *json,
                  size_t len, int64_t now_ms, shub_id_t *id, bool *repeat, shub_err_t *err)
{
    shub_arena_t *arena = shub_arena_new(len * 2 + 1024);
    if (!arena)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    shub_share_t share;
    shub_buf_t scratch = {0};
    bool again = false;
    int rc = shub_json_share_parse(json, len, now_ms, arena, &share, err);
    if (rc == 0 && cfg)
        rc = check_areas(cfg, &share, err);
    if (rc == 0)
        rc = queue_share(db, &scratch, &share, NULL, err);
    if (rc == SHUB_EEXIST && repeat) {
        shub_err_t gerr;
        size_t encoded = scratch.len;
        if (shub_agentdb_outbox_get(db, &share.ev.id, same_share, &scratch, &gerr) == 0 &&
            encoded && scratch.len == encoded) {
            again = true;
            rc = 0;
        } else {
            char idt[SHUB_ID_TEXT];
            rc = shub_err_set_path(err, SHUB_EEXIST, "id",
                                   "event %s is already queued with other content",
                                   idtext(&share.ev.id, idt));
        }
    }
    if (rc == 0) {
        if (id)
            *id = share.ev.id;
        if (repeat)
            *repeat = again;
    }
    shub_buf_free(&scratch);
    shub_arena_destroy(&arena);
    return rc;
}

int shub_agent_submit(shub_agentdb_t *db, const shub_agent_config_t *cfg,
                      const char *json, size_t len, int64_t now_ms, shub_id_t *id,
                      shub_err_t *err)
{
    return submit(db, cfg, json, len, now_ms, id, NULL, err);
}

int shub_agent_submit_once(shub_agentdb_t *db, const shub_agent_config_t *cfg,
                           const char *json, size_t len, int64_t now_ms, shub_id_t *id,
                           bool *repeat, shub_err_t *err)
{
    bool again = false;
    return submit(db, cfg, json, len, now_ms, id, repeat ? repeat : &again, err);
}

typedef struct {
    FILE *out;
    bool json;
    size_t rows;
} print_ctx_t;

static int print_inbox_row(const shub_inbox_row_t *r, void *ctx)
{
    print_ctx_t *pc = ctx;
    char idt[SHUB_ID_TEXT], t[SHUB_TIME_TEXT];
    idtext(&r->id, idt);
    pc->rows++;
    if (!pc->json) {
        char taken[SHUB_TIME_TEXT] = "-";
        if (r->taken_ms)
            shub_time_format(r->taken_ms, taken);
        fprintf(pc->out, "%-24s  %-36s  %-28s  %-20s  %-8s  %-24s  %s v%u %s\n",
                shub_time_format(r->received_ms, t), idt, r->event_type, r->sender,
                shub_hook_state_name(r->hook), taken, r->agreement, r->version, r->flow);
        if (r->hook == SHUB_HOOK_DEAD || (r->hook == SHUB_HOOK_PENDING && r->hook_error))
            fprintf(pc->out, "    hook: %u attempt(s), last: %s\n", r->hook_attempts,
                    r->hook_error ? r->hook_error : "-");
        return 0;
    }
    shub_err_t err;
    char *text = NULL;
    int rc = shub_agent_inbox_json(r, &text, &err);
    if (rc == SHUB_ENOMEM) {
        shub_error("inbox: out of memory");
        return 1;
    }
    if (rc)
        shub_warn("inbox event=%s: stored event does not decode: %s", idt, err.msg);
    else
        fprintf(pc->out, "%s\n", text);
    shub_free(text);
    return 0;
}

int shub_agent_inbox_json(const shub_inbox_row_t *r, char **text, shub_err_t *err)
{
    shub_arena_t *arena = shub_arena_new(r->event_len * 2 + 256);
    shub_event_t ev;
    if (!arena)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    int rc = shub_event_decode(arena, r->event, r->event_len, &ev, err);
    if (rc == 0) {
        shub_json_meta_t meta = {.from = r->sender,
                                 .agreement = r->agreement,
                                 .version = r->version,
                                 .flow = r->flow,
                                 .received_ms = r->received_ms,
                                 .hook = shub_hook_state_name(r->hook),
                                 .taken_ms = r->taken_ms};
        rc = shub_json_event_write(&ev, &meta, text, err);
    }
    shub_arena_destroy(&arena);
    return rc;
}

int shub_agent_print_inbox(shub_agentdb_t *db, int64_t since_ms, bool json, FILE *out,
                           shub_err_t *err)
{
    print_ctx_t pc = {.out = out, .json = json};
    if (!json)
        fprintf(out, "%-24s  %-36s  %-28s  %-20s  %-8s  %-24s  %s\n", "RECEIVED", "ID",
                "EVENT", "FROM", "HOOK", "TAKEN", "AGREEMENT");
    return shub_agentdb_inbox_list(db, since_ms, print_inbox_row, &pc, err);
}

typedef struct {
    shub_agentdb_t *db;
    FILE *out;
    int rc;
    shub_err_t *err;
} outbox_ctx_t;

static int print_outcome(const shub_outcome_row_t *o, void *ctx)
{
    FILE *out = ctx;
    fprintf(out, "    -> %-28s %s", o->recipient, shub_outcome_name(o->outcome));
    if (o->reason)
        fprintf(out, " (%s%s%s)", o->reason, o->detail ? ": " : "",
                o->detail ? o->detail : "");
    if (o->agreement)
        fprintf(out, "  [%s v%u %s]", o->agreement, o->version, o->flow ? o->flow : "-");
    fputc('\n', out);
    return 0;
}

static int print_outbox_row(const shub_outbox_row_t *r, void *ctx)
{
    outbox_ctx_t *oc = ctx;
    char idt[SHUB_ID_TEXT], t[SHUB_TIME_TEXT];
    idtext(&r->id, idt);
    fprintf(oc->out, "%-24s  %-36s  %-28s  %-9s  %-8u  %s\n",
            shub_time_format(r->created_ms, t), idt, r->event_type,
            shub_outbox_state_name(r->state), r->attempts, r->recipients);
    if (r->state == SHUB_OUTBOX_FAILED)
        fprintf(oc->out, "    failed: %s: %s\n", r->error_code ? r->error_code : "error",
                r->error ? r->error : "");
    /* A second statement while the outbox query is open: SQLite allows it
     * on one connection for reads. */
    if ((oc->rc = shub_agentdb_outcomes(oc->db, &r->id, print_outcome, oc->out, oc->err)))
        return 1;
    return 0;
}

int shub_agent_print_outbox(shub_agentdb_t *db, FILE *out, shub_err_t *err)
{
    outbox_ctx_t oc = {.db = db, .out = out, .err = err};
    fprintf(out, "%-24s  %-36s  %-28s  %-9s  %-8s  %s\n", "QUEUED", "ID", "EVENT",
            "STATE", "ATTEMPTS", "TO");
    int rc = shub_agentdb_outbox_list(db, print_outbox_row, &oc, err);
    return rc ? rc : oc.rc;
}

typedef struct {
    FILE *out;
    const char *org;
    shub_agent_cp_format_t fmt;
    size_t witnessed, forks;
} cp_print_t;

/* A note as a JSON string: the agent writes its notes, but the store is a
 * file anyone with access can edit, so every byte is escaped that needs it. */
static void json_string(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20 || *p == 0x7f)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

static int print_checkpoint(const shub_signed_head_t *cp, shub_cp_state_t state,
                            const char *note, int64_t received_ms, void *ctx)
{
    cp_print_t *pc = ctx;
    shub_kept_cp_t k = {.state = state, .cp = *cp};
    char line[SHUB_CP_EXPORT_LINE_MAX];
    size_t len;
    snprintf(k.org, sizeof k.org, "%s", pc->org);
    if (shub_cp_export_line(&k, line, &len) != 0) {
        shub_warn("checkpoint of rows up to %lld in the store is malformed: left out",
                  (long long)cp->seq);
        return 0;
    }
    if (state == SHUB_CP_FORK)
        pc->forks++;
    else
        pc->witnessed++;
    char head[2 * SHUB_HASH_SIZE + 1], at[SHUB_TIME_TEXT], got[SHUB_TIME_TEXT];
    sodium_bin2hex(head, sizeof head, cp->head, SHUB_HASH_SIZE);
    switch (pc->fmt) {
    case SHUB_AGENT_CP_EXPORT:
        fwrite(line, 1, len, pc->out);
        break;
    case SHUB_AGENT_CP_TABLE:
        fprintf(pc->out, "%12lld  %-24s  %-9s  %.16s  %-24s  %s\n", (long long)cp->seq,
                shub_time_format(cp->at_ms, at), shub_cp_state_name(state), head,
                shub_time_format(received_ms, got), note ? note : "");
        break;
    case SHUB_AGENT_CP_JSON: {
        char key[2 * SHUB_SIGN_PUBLIC_SIZE + 1], sig[2 * SHUB_SIGNATURE_SIZE + 1];
        sodium_bin2hex(key, sizeof key, cp->key, SHUB_SIGN_PUBLIC_SIZE);
        sodium_bin2hex(sig, sizeof sig, cp->sig, SHUB_SIGNATURE_SIZE);
        fprintf(pc->out,
                "{\"org\":\"%s\",\"state\":\"%s\",\"seq\":%lld,\"at_ms\":%lld,"
                "\"head\":\"%s\",\"key\":\"%s\",\"sig\":\"%s\",\"received_ms\":%lld,"
                "\"note\":",
                k.org, shub_cp_state_name(state), (long long)cp->seq,
                (long long)cp->at_ms, head, key, sig, (long long)received_ms);
        json_string(pc->out, note);
        fputs("}\n", pc->out);
        break;
    }
    }
    return 0;
}

int shub_agent_print_checkpoints(shub_agentdb_t *db, const char *org,
                                 shub_agent_cp_format_t fmt, FILE *out, size_t *witnessed,
                                 size_t *forks, shub_err_t *err)
{
    if (!shub_is_name(org))
        return shub_err_set(err, SHUB_EINVAL, "'%s' is not an organisation id",
                            org ? org : "");
    cp_print_t pc = {.out = out, .org = org, .fmt = fmt};
    if (fmt == SHUB_AGENT_CP_EXPORT)
        fprintf(out, "%s\n", SHUB_CP_EXPORT_HEADER);
    else if (fmt == SHUB_AGENT_CP_TABLE)
        fprintf(out, "%12s  %-24s  %-9s  %-16s  %-24s  %s\n", "ROWS UP TO", "SIGNED AT",
                "STATE", "HEAD", "RECEIVED", "NOTE");
    int rc = shub_agentdb_checkpoints(db, print_checkpoint, &pc, err);
    if (rc == 0 && fmt == SHUB_AGENT_CP_TABLE)
        fprintf(out, "(%zu witnessed, %zu fork%s)\n", pc.witnessed, pc.forks,
                pc.forks == 1 ? "" : "s");
    if (witnessed)
        *witnessed = pc.witnessed;
    if (forks)
        *forks = pc.forks;
    return rc;
}
