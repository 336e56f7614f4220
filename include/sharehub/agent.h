/*
 * agent: the process each partner organisation runs (sharehub-agent). It
 * connects to the broker with the organisation's CURVE keys, says HELLO, and
 * then, until stopped:
 *
 *   - sends every pending outbox event as a SHARE (the same event id every
 *     time) until a RECEIPT for it has been committed, then records each
 *     recipient's outcome, including later updates (acknowledged, dead);
 *   - opens each DELIVER, commits it to the inbox, and only then ACKs it; a
 *     redelivered id is not stored twice but is ACKed again;
 *   - heartbeats, notices a silent or restarted broker, and reconnects with
 *     backoff; the outbox is resent on every new session;
 *   - picks up events queued by `sharehub-agent submit` within ~50 ms;
 *   - drives the organisation's profile (profile.h): ticks it on a simulated
 *     clock, feeds it each new inbox event, and queues what it emits.
 *
 * Durability is the SQLite store (agentdb.h): killed at any instant, the
 * agent loses nothing it accepted (a submitted event is in the outbox; a
 * delivery is ACKed only once durable) and duplicates nothing in its inbox.
 *
 * Test hook: with SHUB_AGENT_CRASH_AFTER_COMMIT=1 in the environment, the
 * agent _exit(9)s right after committing a new inbox row and before sending
 * its ACK, the worst moment for a crash, so tests can show the redelivery
 * that follows is stored once.
 */
#ifndef SHAREHUB_AGENT_H
#define SHAREHUB_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "sharehub/agentdb.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"

#define SHUB_AGENT_TICK_MS              20 /* profile tick, and the longest poll wait */
#define SHUB_AGENT_OUTBOX_POLL_MS       50 /* how often another process's submit is noticed */
#define SHUB_AGENT_RETRY_MIN_MS         3000 /* an unanswered SHARE is resent after this */
#define SHUB_AGENT_BUSY_RETRY_MS        1000 /* after ERROR busy/unavailable */
#define SHUB_AGENT_BACKOFF_MIN_MS       200 /* first HELLO retry; doubles up to the max */
#define SHUB_AGENT_BACKOFF_MAX_MS       5000
#define SHUB_AGENT_MAX_BROKERS          8    /* endpoints an agent tries in turn */
#define SHUB_AGENT_SWITCH_MS            1000 /* with several: an unanswered HELLO
                                                moves on to the next after this */
#define SHUB_AGENT_DEFAULT_HEARTBEAT_MS 2000 /* until the WELCOME names one */
#define SHUB_AGENT_MAX_HOOKS            16   /* --on-receive commands running at once */
#define SHUB_AGENT_HOOK_ATTEMPTS        10   /* runs of a failing hook before it is dead */
#define SHUB_AGENT_GIVE_UP_MS                                                            \
    30000 /* --until-done: exit 69 after this long without a                             \
             session (the CLI's --give-up-after) */

/* ---- configuration (agent_config.c) ----------------------------------- */

/* What an agent needs from the partnership's config directory: hub.yaml's
 * endpoint and key_dir, the partnership's areas and this organisation's
 * kind and areas from orgs.yaml. Strings are owned by the config. */
typedef struct shub_agent_config {
    char *endpoint; /* hub.yaml `endpoint`; NULL if absent */
    char **brokers; /* hub.yaml `brokers`: the endpoints of an active broker and
                       its standbys, tried in turn; NULL if absent */
    size_t n_brokers;
    char *key_dir;  /* hub.yaml `key_dir`, resolved against DIR (default DIR/keys) */
    char *org;      /* the organisation's id */
    char *kind;
    char **areas; /* the areas it serves; every area if it serves `all` */
    size_t n_areas;
    char **all_areas; /* the partnership's areas */
    size_t n_all_areas;
} shub_agent_config_t;

/* Loads DIR/hub.yaml (optional: defaults if absent) and DIR/orgs.yaml, and
 * finds `org`. SHUB_EIO if orgs.yaml cannot be read, SHUB_ECONFIG for a
 * mistake in either file (err->file, line and column: the first in line
 * order), SHUB_ENOTFOUND if org is not listed, SHUB_ENOMEM. orgs.yaml is
 * checked with the broker's own schema (orgs.h); hub.yaml keys other than
 * endpoint, brokers and key_dir are ignored. */
int shub_agent_config_load(const char *dir, const char *org, shub_agent_config_t **cfg_p,
                           shub_err_t *err);

void shub_agent_config_destroy(shub_agent_config_t **cfg_p);

/* ---- the running agent (agent.c) -------------------------------------- */

typedef struct shub_agent shub_agent_t;

/* How long an agent with --until-done waits, after its work is done, for
 * deliveries still on their way (a MARAC's last decisions, say). */
#define SHUB_AGENT_QUIET_MS 3000

typedef struct shub_agent_opts {
    const char *org;        /* required */
    const char *config_dir; /* required */
    const char *db_path;    /* NULL: ./ORG.db */
    const char *endpoint;   /* NULL: hub.yaml's brokers, else its endpoint */
    const char *const *endpoints; /* several (repeated --broker): an active broker
                                     and its standbys, tried in turn until one
                                     WELCOMEs; overrides endpoint */
    size_t n_endpoints;
    const char *key_dir;    /* NULL: hub.yaml's key_dir */
    const char *on_receive; /* NULL: none; else run via /bin/sh -c per new event, at
                               least once (again after a crash or a failure) */
    uint32_t hook_attempts; /* runs before a failing hook is dead; 0: the default */
    bool simulate;          /* run the organisation's profile: it originates
                               synthetic events. Off, the agent only relays */
    const char *scenario;   /* a simulation driven by this scenario (implies
                               simulate); NULL: the profile runs in real time */
    uint64_t seed;
    bool until_done; /* shub_agent_done may become true: after the scenario's
                        end, with nothing pending and nothing delivered for
                        SHUB_AGENT_QUIET_MS */
} shub_agent_opts_t;

/* Loads config, keys, the store, the scenario and the profile, and starts
 * connecting. SHUB_ECONFIG / SHUB_ENOTFOUND (config, org, scenario),
 * SHUB_EIO (keys, store), SHUB_EDB, SHUB_ECRYPTO, SHUB_ENOMEM. */
int shub_agent_new(const shub_agent_opts_t *opts, shub_agent_t **agent_p,
                   shub_err_t *err);

/* One turn: waits up to timeout_ms (capped at SHUB_AGENT_TICK_MS) for the
 * broker, handles what arrived, sends what is due, ticks the profile. Returns
 * 0, or SHUB_EDB / SHUB_EIO when the store fails (the caller decides whether
 * to stop). */
int shub_agent_poll(shub_agent_t *agent, int timeout_ms);

/* With until_done: true once the broker has welcomed the agent at least once,
 * the profile (if any) is done, no outbox event is pending and no
 * --on-receive command is still running. */
bool shub_agent_done(shub_agent_t *agent);

/* How long the agent has been without a session with the broker (since it
 * started, or lost the last one); 0 while it has one. The agent never gives
 * up by itself: its caller decides how long is too long. */
int64_t shub_agent_offline_ms(const shub_agent_t *agent);

/* Says BYE if connected, waits briefly for running hooks, closes all. */
void shub_agent_destroy(shub_agent_t **agent_p);

/* What the agent tells an observer (the local API, api.h) about itself. */
typedef struct shub_agent_state {
    bool connected;          /* a transport connection to the broker exists */
    bool welcomed;           /* the broker has welcomed the current session */
    int64_t since_ms;        /* welcomed: since when; else without a session since */
    uint32_t broker_backlog; /* deliveries the broker held for us at its last WELCOME */
} shub_agent_state_t;

/* Called on the agent's thread at the end of a turn that committed what a
 * local API client may wait for (deliveries, receipts, updates, a failure)
 * or that changed the state; must return quickly and not call the agent. */
typedef void(shub_agent_observer_fn)(void *ctx, const shub_agent_state_t *state);

/* Sets the observer (NULL: none); the next turn tells it the state. Call
 * between turns, on the agent's thread. */
void shub_agent_observe(shub_agent_t *agent, shub_agent_observer_fn *fn, void *ctx);

/* Safe from any thread: the outbox has new events, so the next turn sends
 * them without waiting for SHUB_AGENT_OUTBOX_POLL_MS. */
void shub_agent_wake(shub_agent_t *agent);

/* ---- commands on a store (agent.c), for the CLI and tests -------------- */

/* Queues one event given as JSON (json.h) into the outbox; *id is its id.
 * With cfg, the event's area and every area in its `to` selectors must be
 * one of orgs.yaml's (SHUB_EVALUE naming the field). Errors as
 * shub_json_share_parse, then SHUB_EEXIST (id already queued), SHUB_EDB.
 * Nothing is queued on error. */
int shub_agent_submit(shub_agentdb_t *db, const shub_agent_config_t *cfg,
                      const char *json, size_t len, int64_t now_ms, shub_id_t *id,
                      shub_err_t *err);

/* As shub_agent_submit, for a caller that may repeat a submission (the local
 * API's clients retry): an id already queued with the very SHARE this JSON
 * encodes to is not an error, *repeat (may be NULL) says so, and nothing is
 * written. SHUB_EEXIST (path "id") only for an id queued with other content. */
int shub_agent_submit_once(shub_agentdb_t *db, const shub_agent_config_t *cfg,
                           const char *json, size_t len, int64_t now_ms, shub_id_t *id,
                           bool *repeat, shub_err_t *err);

/* Writes the inbox received at or after since_ms: a table, or one JSON
 * object per line (json.h, with from/agreement/version/flow/received). */
int shub_agent_print_inbox(shub_agentdb_t *db, int64_t since_ms, bool json, FILE *out,
                           shub_err_t *err);

/* One inbox row as `inbox --format json` writes it (json.h, with from,
 * agreement, version, flow, received, hook, and taken once taken): one line,
 * *text the caller's to free with shub_free. The stored event's decoding
 * errors (it does not decode), SHUB_ENOMEM. */
int shub_agent_inbox_json(const shub_inbox_row_t *row, char **text, shub_err_t *err);

/* Writes the outbox as a table: each event with its state, then one line per
 * recipient outcome (queued, delivered, acknowledged, denied and why, dead). */
int shub_agent_print_outbox(shub_agentdb_t *db, FILE *out, shub_err_t *err);

/* How shub_agent_print_checkpoints writes: a table for a person, one JSON
 * object per line, or the export format an auditor gives sharehub-audit
 * (witness.h). */
typedef enum {
    SHUB_AGENT_CP_TABLE,
    SHUB_AGENT_CP_JSON,
    SHUB_AGENT_CP_EXPORT,
} shub_agent_cp_format_t;

/* Writes every checkpoint the store keeps (witnessed and forks, by seq) as
 * kept by `org`, in `fmt`; *witnessed and *forks (may be NULL) count them.
 * SHUB_EINVAL (org not a name), SHUB_EDB. Write errors are the caller's to
 * find (ferror). */
int shub_agent_print_checkpoints(shub_agentdb_t *db, const char *org,
                                 shub_agent_cp_format_t fmt, FILE *out, size_t *witnessed,
                                 size_t *forks, shub_err_t *err);

#endif
