/*
 * msg: the wire protocol's messages as plain C structs, and the codec that
 * turns them into msgpack and back (protocol/SPEC.md is the normative text).
 *
 * Every ZeroMQ message after the ROUTER envelope is one msgpack map with the
 * keys "v" (protocol version) and "type" (HELLO, SHARE, ...) plus the fields of
 * that type. The decoder distrusts its input completely: it walks the buffer
 * with a bounded reader, checks every declared length against the bytes that
 * remain, caps sizes, counts and depth, validates UTF-8 and refuses duplicate
 * keys and trailing bytes. An error names the field path and the rule broken,
 * e.g. `SHARE.payload.victim.name: text of 20000 bytes exceeds limit 16384`.
 * Unknown top-level keys are skipped (forward compatibility, SPEC section 4).
 *
 * Ownership: a decoded shub_msg_t owns everything its pointers reach (one
 * arena); free it with shub_msg_destroy. A message the caller builds for
 * shub_msg_encode borrows the caller's strings and leaves arena NULL.
 * Optional fields are absent when their pointer is NULL, a number is 0, or a
 * flag is false.
 */
#ifndef SHAREHUB_MSG_H
#define SHAREHUB_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/name.h" /* shub_is_name: ids, areas, kinds, event types */
#include "sharehub/time.h" /* shub_now_ms, the wall clock */
#include "sharehub/val.h"

/* ---- limits (SPEC section 9); each is checked on decode and on encode ---- */
#define SHUB_PROTOCOL_VERSION 2
#define SHUB_MSG_MAX_BYTES 1048576  /* one encoded message */
#define SHUB_MSG_MAX_DEPTH 12       /* nested maps/arrays; the message map is 1 */
#define SHUB_MSG_MAX_NODES 32768    /* values in one message */
#define SHUB_MSG_MAX_ITEMS 4096     /* entries in one map or array */
#define SHUB_MSG_MAX_TEXT 16384     /* bytes in one text value */
#define SHUB_MSG_MAX_BIN 1044480    /* bytes in one binary value (1 MiB - 4 KiB, so a
                                       sealed event plus its DELIVER envelope fits) */
#define SHUB_MSG_MAX_EVENT 1044408  /* bytes of an encoded event: sealed (72 bytes
                                       more, seal.h) it is one DELIVER's binary value */
#define SHUB_MSG_MAX_NAME SHUB_NAME_MAX /* ids, event types, areas, codes, selectors */
#define SHUB_MSG_MAX_REF 128        /* case and subject references, legal basis */
#define SHUB_MSG_MAX_LINE 512       /* explanations and error messages */
#define SHUB_MSG_MAX_TO 64          /* entries in a SHARE's `to` */
#define SHUB_MSG_MAX_OUTCOMES 1024  /* recipients in one receipt */
#define SHUB_MSG_MAX_BATCH 1024     /* receipts, deliveries, updates or ids in one
                                       RECEIPT, DELIVER, UPDATE or ACK */
#define SHUB_HASH_SIZE 32           /* a chain head (BLAKE2b-256) */
#define SHUB_SIGN_PUBLIC_SIZE 32    /* an Ed25519 public key */
#define SHUB_SIGNATURE_SIZE 64      /* an Ed25519 signature */

#define SHUB_ID_SIZE 16
#define SHUB_ID_TEXT 37 /* "0190a5b2-...": 36 characters and a NUL */

typedef enum {
    SHUB_MSG_HELLO = 1,
    SHUB_MSG_WELCOME,
    SHUB_MSG_SHARE,
    SHUB_MSG_RECEIPT,
    SHUB_MSG_DELIVER,
    SHUB_MSG_ACK,
    SHUB_MSG_HEARTBEAT,
    SHUB_MSG_ERROR,
    SHUB_MSG_BYE,
    SHUB_MSG_UPDATE,     /* v2: later outcomes, durable until CONFIRMed */
    SHUB_MSG_CONFIRM,    /* v2: the agent has applied updates up to a seq */
    SHUB_MSG_CHECKPOINT, /* v2: a signed chain head, for the agent to witness */
    SHUB_MSG_WITNESS,    /* v2: the agent's countersignature of a checkpoint */
} shub_msg_type_t;

#define SHUB_MSG_TYPE_LAST SHUB_MSG_WITNESS

typedef enum {
    SHUB_CONSENT_GIVEN = 1,
    SHUB_CONSENT_REFUSED,
    SHUB_CONSENT_NOT_SOUGHT,
} shub_consent_t;

typedef enum {
    SHUB_OUTCOME_QUEUED = 1,  /* durable at the broker, recipient not connected */
    SHUB_OUTCOME_DELIVERED,   /* durable and sent to the connected recipient */
    SHUB_OUTCOME_ACKNOWLEDGED,/* the recipient committed it to its inbox */
    SHUB_OUTCOME_DENIED,      /* no agreement allows it; `reason` says why */
    SHUB_OUTCOME_DEAD,        /* allowed, but given up on (attempts, expiry) */
} shub_outcome_t;

/* Event id: 16 bytes, UUIDv7 layout: 48-bit big-endian Unix milliseconds,
 * version 7, then random bits. Time-ordered, so the broker's unique index
 * appends instead of scattering. */
typedef struct shub_id {
    uint8_t bytes[SHUB_ID_SIZE];
} shub_id_t;

/* ---- messages ---------------------------------------------------------- */

typedef struct shub_hello { /* agent -> broker: start (or resume) a session */
    const char *agent;      /* optional: software and version, for logs */
    uint32_t window;        /* optional: DELIVERs it accepts un-ACKed (0: default) */
} shub_hello_t;

typedef struct shub_welcome { /* broker -> agent: the session is open */
    const char *org;          /* the organisation the key authenticated */
    uint32_t heartbeat_ms;    /* interval each side sends HEARTBEAT when idle */
    uint32_t max_bytes;       /* largest message the broker accepts */
    uint32_t window;          /* SHAREs this peer may have un-RECEIPTed */
    int64_t time_ms;          /* broker clock, ms since the Unix epoch */
    uint32_t backlog;         /* optional: deliveries queued for this org */
} shub_welcome_t;

/*
 * The event envelope, shared by SHARE and DELIVER. It says what happened
 * (type, time), to whom (case and subject references, area), and why it may
 * be shared (purpose, legal basis, consent); the payload carries the named
 * fields. The sender is deliberately absent: it is the peer the broker
 * authenticated, and the broker states it in DELIVER.
 */
typedef struct shub_event {
    shub_id_t id;              /* unique and time-ordered; dedupe key forever */
    const char *type;          /* event type, e.g. "marac.transfer" */
    int64_t occurred_ms;       /* when it happened, ms since the Unix epoch */
    const char *case_ref;      /* optional: the sender's case reference */
    const char *subject_ref;   /* optional: the person it is about */
    const char *area;          /* the subject's current area, e.g. "coventry" */
    const char *purpose;       /* purpose id, e.g. "marac-risk-management" */
    const char *basis;         /* legal basis claimed, e.g. "uk-gdpr-6-1-e" */
    shub_consent_t consent;    /* given, refused or not sought */
    const char *override;      /* optional: reason consent was overridden */
    const shub_id_t *reply_to; /* optional: the event this one answers */
    const char *actor;         /* optional: the person who shared it, as the sender's
                                  own system names them (v2) */
    shub_val_t payload;        /* a map of named fields */
} shub_event_t;

typedef struct shub_share { /* agent -> broker: share this event */
    shub_event_t ev;
    const char *const *to;  /* org ids, "@area" or "kind@area"; 1..SHUB_MSG_MAX_TO */
    uint32_t to_count;
    const char *from;       /* optional: a claimed sender; the broker refuses the
                               SHARE unless it names the authenticated org */
} shub_share_t;

/* broker -> recipient: an allowed, minimised copy. The event (envelope and
 * payload, encoded with shub_event_encode) travels sealed to the recipient's
 * public key: it is stored that way in the broker's outbox, which the broker
 * cannot read back, and only the recipient opens it (include/sharehub/seal.h). */
typedef struct shub_deliver {
    shub_id_t id;             /* the event id, in clear for ACK and dedupe */
    const char *type;         /* the event type, in clear for routing and logs */
    const char *from;         /* the authenticated sending organisation */
    const char *agreement;    /* agreement id that allowed this copy */
    uint32_t version;         /* agreement version */
    const char *flow;         /* the agreement's flow id */
    uint32_t attempt;         /* 1 on first send, more on redelivery */
    const uint8_t *sealed;    /* the sealed, minimised event */
    uint32_t sealed_len;
} shub_deliver_t;

typedef struct shub_deliver_batch { /* DELIVER: one or more copies for one recipient */
    const shub_deliver_t *list;
    uint32_t count;                 /* 1..SHUB_MSG_MAX_BATCH */
} shub_deliver_batch_t;

typedef struct shub_outcome_item {
    const char *to;           /* recipient org id, or a selector that matched none */
    shub_outcome_t outcome;
    const char *reason;       /* optional: reason code (denied, dead) */
    const char *detail;       /* optional: one-line explanation for a person */
    const char *agreement;    /* optional: agreement id that decided it */
    uint32_t version;         /* optional: its version */
    const char *flow;         /* optional: its flow id */
} shub_outcome_item_t;

typedef struct shub_receipt { /* the outcome per recipient of one SHARE */
    shub_id_t id;             /* the SHARE's event id */
    bool duplicate;           /* optional: the event id was seen before; these are
                                 the current outcomes, nothing was decided again */
    const shub_outcome_item_t *items;
    uint32_t count;           /* 0..SHUB_MSG_MAX_OUTCOMES */
} shub_receipt_t;

typedef struct shub_receipt_batch { /* RECEIPT: broker -> sender, after commit */
    const shub_receipt_t *list;
    uint32_t count;                 /* 1..SHUB_MSG_MAX_BATCH */
} shub_receipt_batch_t;

typedef struct shub_ack { /* ACK: recipient -> broker: committed to my inbox */
    const shub_id_t *ids;
    uint32_t count;       /* 1..SHUB_MSG_MAX_BATCH */
} shub_ack_t;

/* A later outcome of one recipient of an event this agent shared
 * (acknowledged, dead). The broker keeps each update durably, numbered by
 * `seq` (increasing, per broker store), and sends it again on every new
 * session until the agent CONFIRMs a seq at or above it. */
typedef struct shub_update {
    int64_t seq;              /* >= 1 */
    shub_id_t id;             /* the event */
    shub_outcome_item_t item; /* its fields sit in the update's own map */
} shub_update_t;

typedef struct shub_update_batch { /* UPDATE: broker -> sender */
    const shub_update_t *list;
    uint32_t count;                /* 1..SHUB_MSG_MAX_BATCH */
} shub_update_batch_t;

typedef struct shub_confirm { /* CONFIRM: every UPDATE up to `upto` is durable here */
    int64_t upto;             /* >= 0 */
} shub_confirm_t;

/* CHECKPOINT (broker -> agent): the broker's Ed25519 signature over its audit
 * chain head, as the store signs it. WITNESS (agent -> broker): the agent's
 * countersignature of a checkpoint it checked and keeps, with its own key. */
typedef struct shub_signed_head {
    int64_t seq;                              /* the last audit row covered, >= 1 */
    uint8_t head[SHUB_HASH_SIZE];             /* that row's hash */
    int64_t at_ms;                            /* when the broker signed */
    uint8_t key[SHUB_SIGN_PUBLIC_SIZE];       /* the signer's public key */
    uint8_t sig[SHUB_SIGNATURE_SIZE];         /* the signature */
} shub_signed_head_t;

typedef struct shub_heartbeat {
    int64_t time_ms; /* optional: sender's clock */
} shub_heartbeat_t;

typedef struct shub_error_msg { /* broker -> agent: a message was refused */
    const char *code;    /* stable token: "malformed", "limit", "not-welcome"... */
    const char *message; /* one line naming the field and the rule */
    const shub_id_t *id; /* optional: the event the error is about */
} shub_error_msg_t;

typedef struct shub_bye { /* either side: closing the session */
    const char *reason;   /* optional */
} shub_bye_t;

typedef struct shub_arena shub_arena_t;

typedef struct shub_msg {
    shub_msg_type_t type;
    union {
        shub_hello_t hello;
        shub_welcome_t welcome;
        shub_share_t share;
        shub_receipt_batch_t receipt;
        shub_deliver_batch_t deliver;
        shub_ack_t ack;
        shub_update_batch_t update;
        shub_confirm_t confirm;
        shub_signed_head_t checkpoint;
        shub_signed_head_t witness;
        shub_heartbeat_t heartbeat;
        shub_error_msg_t error;
        shub_bye_t bye;
    };
    shub_arena_t *arena; /* decoded messages own their memory here; else NULL */
} shub_msg_t;

/* ---- codec ------------------------------------------------------------- */

/* Decodes one message of `size` bytes. On success *msg_p is a new message the
 * caller frees with shub_msg_destroy. On failure returns a SHUB_E* code and
 * fills err with the field path (`SHARE.to[2]`) and the rule broken. */
int shub_msg_decode(const void *data, size_t size, shub_msg_t **msg_p, shub_err_t *err);

/* Frees a decoded message; accepts NULL; nulls the caller's pointer. */
void shub_msg_destroy(shub_msg_t **msg_p);

/* Encodes msg into out (replacing its contents). Checks the same rules the
 * decoder checks, so nothing is sent that a peer would refuse: SHUB_EMISSING,
 * SHUB_ELIMIT, SHUB_EVALUE, SHUB_EUTF8, SHUB_ENOMEM, with the field path. */
int shub_msg_encode(const shub_msg_t *msg, shub_buf_t *out, shub_err_t *err);

/* Encodes an event (envelope and payload, no recipients) as one map: what a
 * DELIVER seals. Same checks as in a SHARE, paths under `event`. */
int shub_event_encode(const shub_event_t *ev, shub_buf_t *out, shub_err_t *err);

/* Decodes an encoded event into `ev`, its memory in `arena`. */
int shub_event_decode(shub_arena_t *arena, const void *data, size_t size, shub_event_t *ev,
                      shub_err_t *err);

/* Decodes a bare payload map (as stored in an outbox) into `arena`, with the
 * same limits as in a message; errors are reported under `payload`. */
int shub_payload_decode(shub_arena_t *arena, const void *data, size_t size,
                        shub_val_t *out, shub_err_t *err);

/* Encodes a bare payload map into out (replacing its contents). */
int shub_payload_encode(const shub_val_t *payload, shub_buf_t *out, shub_err_t *err);

/* "SHARE", "RECEIPT", ...; "?" for an unknown type. */
const char *shub_msg_type_name(shub_msg_type_t type);

const char *shub_consent_name(shub_consent_t consent);
int shub_consent_parse(const char *name); /* the enum value, or -1 */

const char *shub_outcome_name(shub_outcome_t outcome);
int shub_outcome_parse(const char *name); /* the enum value, or -1 */

/* True if s is a recipient selector: "org-id", "@area" or "kind@area". */
bool shub_is_selector(const char *s);

/* ---- event ids --------------------------------------------------------- */

/* New UUIDv7-style id for `now_ms` with 74 random bits. SHUB_ECRYPTO if the
 * system's random source fails. */
int shub_id_generate(shub_id_t *id, int64_t now_ms);

/* Canonical text form, 8-4-4-4-12 lowercase hex, into out[SHUB_ID_TEXT]. */
void shub_id_format(const shub_id_t *id, char out[SHUB_ID_TEXT]);

/* Parses the canonical form (or 32 bare hex digits). SHUB_EVALUE if bad. */
int shub_id_parse(const char *text, shub_id_t *id);

/* The millisecond timestamp in the id's first 48 bits. */
int64_t shub_id_time_ms(const shub_id_t *id);

#endif
