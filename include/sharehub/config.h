/*
 * config: the broker's configuration, loaded once from a directory and
 * immutable afterwards.
 *
 *   DIR/hub.yaml            broker settings (endpoint, database, keys, limits)
 *   DIR/orgs.yaml           the partnership's areas and organisations
 *   DIR/agreements/NAME.yaml  information-sharing agreements, one per file
 *
 * Loading parses every file against a schema (unknown and duplicate keys are
 * refused), then checks what a schema cannot: ids that must exist, keys that
 * must be unique, dates in order, conditions that must parse. Every error is
 * reported with its file, line and column (yaml.h), and all of them are
 * reported, not just the first, so one edit-and-reload cycle fixes a whole
 * batch. orgs.yaml's schema is the one the agents read too (orgs.h). A reload builds a
 * new object and the caller swaps it in only if loading succeeded.
 *
 * After load nothing here does I/O: the policy function and selector
 * expansion read the object from the hub loop without locks or allocation.
 * docs/agreements.md describes the agreement format with a full example.
 */
#ifndef SHAREHUB_CONFIG_H
#define SHAREHUB_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"

#define SHUB_CONFIG_MAX_CONDITION 1024 /* bytes in one flow condition */

typedef struct shub_config shub_config_t; /* opaque, immutable after load */

/* Called once per configuration error, file by file and in line order
 * within a file; err->file, err->line and err->column say where (line 0
 * only when a file cannot be read at all). */
typedef void(shub_config_report_fn)(const shub_err_t *err, void *ctx);

typedef struct shub_config_opts {
    const char *key_dir; /* NULL: hub.yaml's key_dir; else used as given */
    const char *agreements_dir; /* NULL: DIR/agreements; else these agreements
                                   (a draft for what-if) with DIR's orgs */
} shub_config_opts_t;

/* ---- lifecycle ---------------------------------------------------------- */

/* Loads DIR. On success *cfg_p is a new config the caller destroys. On
 * failure returns SHUB_ECONFIG after reporting each error through `report`
 * (may be NULL), or SHUB_ENOMEM; *cfg_p is untouched. SHUB_EINVAL for NULL
 * dir or cfg_p. opts may be NULL. */
int shub_config_load(const char *dir, const shub_config_opts_t *opts,
                     shub_config_t **cfg_p, shub_config_report_fn *report, void *ctx);

/* Frees the config; accepts NULL; nulls the caller's pointer. */
void shub_config_destroy(shub_config_t **cfg_p);

/* ---- hub settings ------------------------------------------------------- */

typedef struct shub_hub_settings {
    const char *endpoint;       /* ZeroMQ endpoint the broker binds */
    const char *database;       /* absolute, or relative to the working directory */
    const char *key_dir;        /* resolved the same way; opts->key_dir wins */
    bool synchronous_full;      /* SQLite synchronous=FULL (else NORMAL) */
    uint32_t max_message_bytes; /* <= SHUB_MSG_MAX_BYTES */
    uint32_t window;            /* per-peer un-RECEIPTed SHAREs */
    uint32_t batch_max;         /* messages drained per group commit */
    uint32_t heartbeat_ms;
    uint32_t peer_timeout_ms; /* > heartbeat_ms */
    uint32_t redeliver_ms;
    uint32_t max_attempts;     /* deliveries before an outbox row is dead */
    uint32_t future_skew_ms;   /* how far ahead of the broker's clock an event may be */
    uint32_t checkpoint_every; /* audit rows between signed checkpoints */
    uint32_t checkpoint_ms;    /* ms the oldest unsigned row may wait for one */
    uint32_t deadline_hour_ms; /* how long one hour of a flow's deadline lasts: 3600000
                                  except in simulations and tests, which run faster */
    const char *metrics;       /* "127.0.0.1:PORT" for Prometheus metrics, NULL: off */
    uint32_t notice_days;      /* days before an agreement's expiry or review that
                                  --check warns and the owner is told */
    uint32_t delivery_days;    /* days the broker keeps an event's receipt (its
                                  outcomes) once no copy of it is pending */
    uint32_t names_memory_mib; /* MiB the audit log's texts may take in memory;
                                  past it, those not in use are read back when needed */
} shub_hub_settings_t;

/* True if text is "HOST:PORT" with HOST a loopback address (127.x.y.z,
 * localhost or [::1]) and PORT 0 to 65535: the metrics are for a local
 * scraper, never the partners' network. */
bool shub_config_metrics_address_ok(const char *text);

const shub_hub_settings_t *shub_config_hub(const shub_config_t *cfg);

/* ---- organisations ------------------------------------------------------ */

typedef struct shub_org {
    const char *id;           /* a name (shub_is_name) */
    const char *name;         /* for people */
    const char *kind;         /* police, marac, idva, ... (a name) */
    const char *const *areas; /* declared areas it serves; empty if all_areas */
    size_t n_areas;
    bool all_areas;         /* `areas: [all]` */
    uint8_t public_key[32]; /* CURVE public key: how the broker knows it */
    char public_z85[41];    /* the same, Z85 text */
} shub_org_t;

size_t shub_config_org_count(const shub_config_t *cfg);

/* The i-th organisation in orgs.yaml order; NULL if i is out of range. */
const shub_org_t *shub_config_org_at(const shub_config_t *cfg, size_t i);

/* The organisation with this id, or NULL. */
const shub_org_t *shub_config_org(const shub_config_t *cfg, const char *id);

/* The organisation holding this CURVE public key, or NULL. */
const shub_org_t *shub_config_org_by_key(const shub_config_t *cfg, const uint8_t key[32]);

/* True if org serves area (all_areas or listed). False for NULLs. An
 * all-areas org serves any text: check the area with shub_config_area_known
 * first when it comes from outside. */
bool shub_org_serves(const shub_org_t *org, const char *area);

/* True if area is one of orgs.yaml's declared areas. */
bool shub_config_area_known(const shub_config_t *cfg, const char *area);

/* Expands one selector ("id", "@area", "kind@area") into orgs, excluding
 * `sender` (may be NULL), appending to out[] and skipping orgs already in
 * out[0..*n). An unknown id, area or kind expands to nothing (returns 0).
 * SHUB_ELIMIT if more than max would be needed (out[] then holds the first
 * max), SHUB_EINVAL for a malformed selector or NULL arguments. */
int shub_config_expand(const shub_config_t *cfg, const char *selector, const char *sender,
                       const shub_org_t **out, size_t max, size_t *n);

/* ---- agreements --------------------------------------------------------- */

size_t shub_config_agreement_count(const shub_config_t *cfg);

typedef struct shub_agreement_info {
    const char *id;
    const char *title;
    const char *status;       /* draft | active | suspended | expired */
    const char *content_hash; /* 64 hex: BLAKE2b-256 of the file's bytes */
    const char *file;         /* the path it was loaded from */
    uint32_t version;
    int64_t valid_from_ms;  /* 00:00:00.000 UTC of valid_from */
    int64_t valid_until_ms; /* 23:59:59.999 UTC of valid_until: the last ms in force */
    int64_t review_ms;      /* 00:00:00.000 UTC of review_date */
    const char *owner;      /* the party org that answers for it and hears before it
                               expires; NULL: none named */
} shub_agreement_info_t;

/* Fills out for the i-th agreement, in id order (strings borrowed from cfg).
 * SHUB_ENOTFOUND if i is out of range, SHUB_EINVAL for NULLs. */
int shub_config_agreement_info(const shub_config_t *cfg, size_t i,
                               shub_agreement_info_t *out);

/* Index of the agreement with this id, or -1. */
long shub_config_agreement_find(const shub_config_t *cfg, const char *id);

/* ---- what the policy reads ---------------------------------------------- */

typedef struct shub_condition shub_condition_t; /* see "conditions" below */

typedef enum {
    SHUB_AGREEMENT_DRAFT = 1,
    SHUB_AGREEMENT_ACTIVE,
    SHUB_AGREEMENT_SUSPENDED,
    SHUB_AGREEMENT_EXPIRED,
} shub_agreement_status_t;

/* A set of organisations: listed by id, or of a listed kind, and with
 * serving_subject_area only those serving the event's area. No ids and no
 * kinds with serving_subject_area: any party serving the area. */
typedef struct shub_party_set {
    const char *const *orgs;
    size_t n_orgs;
    const char *const *kinds;
    size_t n_kinds;
    bool serving_subject_area;
} shub_party_set_t;

/* One flow of an agreement: who may send which events to whom, why, and
 * which payload fields the recipient's copy keeps. */
typedef struct shub_flow {
    const char *id;
    shub_party_set_t from, to;
    const char *const *events; /* 1 or more event types */
    size_t n_events;
    const char *const *purposes; /* the flow's own, else the agreement's */
    size_t n_purposes;
    const char *const *bases; /* legal basis ids: the flow's own, else all */
    size_t n_bases;
    const char *const *fields; /* allowed dotted paths */
    size_t n_fields;
    const char *condition_text;        /* NULL: no condition */
    const shub_condition_t *condition; /* parsed; NULL: no condition */
    uint32_t ack_within_hours;         /* 0: none */
    uint32_t act_within_hours;         /* 0: none */
    bool onward_sharing;
    const char *const *report; /* fields whose values the audit row records */
    size_t n_report;
    uint32_t retention_days; /* how long a recipient keeps a copy's payload: the
                                flow's own, else the agreement's, cut by the
                                limit of any data class the flow carries; 0: the
                                agreement sets none */
} shub_flow_t;

/* Who signed an agreement off, for which party, when. */
typedef struct shub_signatory {
    const char *org;  /* a party org id */
    const char *role; /* e.g. "Senior Information Risk Owner" */
    const char *name; /* the person, or NULL */
    int64_t date_ms;  /* 00:00 UTC of the day signed */
} shub_signatory_t;

/* One step of an agreement's life, as its file records it. */
typedef struct shub_status_change {
    const char *status; /* draft | active | suspended | expired */
    int64_t date_ms;
    const char *note; /* or NULL */
} shub_status_change_t;

/* An agreement as the policy decides with it. Everything is borrowed from
 * cfg and immutable. */
typedef struct shub_agreement {
    shub_agreement_info_t info;
    shub_agreement_status_t status;
    shub_party_set_t parties;
    bool consent_required;
    const char *const *override_reasons; /* allowed when consent is not given */
    size_t n_override_reasons;
    const shub_flow_t *flows; /* in file order */
    size_t n_flows;
    const char *escalation; /* org told, with the sender, when a share under one of
                               the flows' deadlines is overdue; NULL: sender only */
    bool actor_clear; /* `actor: clear`: the audit keeps the actor's id as given,
                         not its keyed hash */
    const shub_signatory_t *signatories; /* the sign-off trail, in file order */
    size_t n_signatories;
    const shub_status_change_t *history; /* status changes, oldest first */
    size_t n_history;
} shub_agreement_t;

/* The i-th agreement in id order; NULL if i is out of range. */
const shub_agreement_t *shub_config_agreement_at(const shub_config_t *cfg, size_t i);

/* ---- conditions --------------------------------------------------------- */

/* A flow's condition, e.g. `payload.risk.dash_score >= 14 or
 * payload.criteria.repeat == true`. Agreements parse theirs at load (and
 * own them: never destroy a flow's); this stand-alone form is for tools
 * and tests. */
/* Parses text. SHUB_ECONFIG with err->msg `condition: unexpected 'x' at column
 * N` (column within text), SHUB_ENOMEM, SHUB_EINVAL for NULLs. */
int shub_condition_new(const char *text, shub_condition_t **cond_p, shub_err_t *err);

void shub_condition_destroy(shub_condition_t **cond_p);

/* Pure evaluation: a missing field or a type mismatch makes that comparison
 * false; never fails, never allocates. */
bool shub_condition_eval(const shub_condition_t *cond, const shub_event_t *ev);

/* What a condition says of an event rebuilt from the audit log, whose payload
 * holds the leaves the log names but only the values it keeps (report facts):
 * a leaf it names without a value is nil there. A comparison that reads such
 * a leaf is unknown, and `and`, `or`, `not` follow Kleene's logic, so UNKNOWN
 * means the answer depends on a value nobody kept. Pure, never allocates. */
typedef enum {
    SHUB_COND_FALSE = 0,
    SHUB_COND_TRUE,
    SHUB_COND_UNKNOWN,
} shub_cond_truth_t;

shub_cond_truth_t shub_condition_eval_partial(const shub_condition_t *cond,
                                              const shub_event_t *ev);

#endif
