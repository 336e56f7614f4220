/*
 * json: events to and from JSON, for people and shell scripts. `submit` reads
 * a SHARE written as JSON; `inbox --format json` and `--on-receive` write each
 * received event as one JSON object. The wire format stays msgpack: JSON is
 * only the agent's human-facing edge.
 *
 * A SHARE in JSON:
 *   {"event": "marac.referral", "occurred": "2026-07-01T10:00:00Z",
 *    "case": "...", "subject": "...", "area": "coventry", "purpose": "...",
 *    "basis": "...", "consent": "given", "override": "...",
 *    "reply_to": "<uuid>", "to": ["marac@coventry"], "payload": {...}}
 * "id" is optional (a fresh UUIDv7 when absent); "occurred" is an RFC 3339
 * time, a date (midnight UTC) or integer ms since the epoch, not before
 * 2000-01-01. Payload numbers: integers become INT, reals FLOAT; object keys
 * must be field names. Every field is then checked by the
 * codec itself (shub_msg_encode), so JSON input obeys exactly the rules a
 * broker applies, and the error path names the field: `to[1]: not an org id,
 * @area or kind@area`.
 *
 * Binary payload values (which JSON lacks) are written as base64 text; NaN
 * and infinities as null.
 */
#ifndef SHAREHUB_JSON_H
#define SHAREHUB_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#define SHUB_JSON_MAX_INPUT (4 * 1024 * 1024) /* bytes of JSON accepted for one event */
/* The earliest `occurred` a submitted event may have: 2000-01-01T00:00:00Z.
 * Nothing the partnership shares happened before it; a time before it is a
 * mistake, most often seconds given where milliseconds are meant. */
#define SHUB_JSON_MIN_OCCURRED_MS 946684800000LL

/* Parses one SHARE from text[0..len) into share, its strings and payload in
 * arena. A missing "id" is generated for now_ms. Then encodes it with the
 * codec to apply every protocol rule, and checks that its sealed copy fits
 * in a DELIVER. Errors (err->path is the field, without the "SHARE." root):
 *   JSON syntax   SHUB_EMALFORMED, msg "line L column C: <jansson's text>"
 *   not an object SHUB_ETYPE
 *   unknown key   SHUB_EVALUE "unknown field"
 *   wrong type    SHUB_ETYPE; missing SHUB_EMISSING; bad value SHUB_EVALUE;
 *   too long/big  SHUB_ELIMIT; and SHUB_ENOMEM. */
int shub_json_share_parse(const char *text, size_t len, int64_t now_ms,
                          shub_arena_t *arena, shub_share_t *share, shub_err_t *err);

/* What the broker said about a received event, beside the event itself. */
typedef struct shub_json_meta {
    const char *from;      /* the authenticated sender */
    const char *agreement; /* that allowed this copy */
    uint32_t version;
    const char *flow;
    int64_t received_ms;
    const char *hook; /* the --on-receive hook's state, or NULL (left out) */
    int64_t taken_ms; /* when the case system took it (local API); 0: left out */
} shub_json_meta_t;

/* Writes ev (and meta, if not NULL) as one line of compact JSON with keys in
 * a fixed order. *out_p is the caller's to free with shub_free. SHUB_ENOMEM. */
int shub_json_event_write(const shub_event_t *ev, const shub_json_meta_t *meta,
                          char **out_p, shub_err_t *err);

/* Reads a time as JSON input and --since give it: a plain integer of ms
 * since the epoch, or anything shub_time_parse takes (time.h: a date or an
 * RFC 3339 time). SHUB_EVALUE if it is neither. Times are written with
 * shub_time_format. */
int shub_json_time_parse(const char *text, int64_t *ms);

#endif
