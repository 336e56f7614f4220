/*
 * policy: decide one share, (sender, recipient, event), against the loaded
 * agreements. Default deny: a share is allowed only by a flow of an agreement
 * that passes every check, and a deny names the reason and, in words, the
 * nearest thing that would have permitted it.
 *
 * The function is pure: no I/O, no allocation, no global state, and the clock
 * is an argument, so the same inputs give the same decision years later (an
 * audit row can be re-derived from the agreement text its hash names).
 *
 * Order of checks, per flow (agreements in id order, flows in file order):
 *   sender is a party -> recipient is a party -> status active -> within
 *   validity -> `from` matches the sender -> `to` matches the recipient ->
 *   event type -> purpose -> legal basis -> consent -> condition.
 * The first flow passing all allows. Otherwise the closest flow decides the
 * reason, its first failed check. Closest: a flow whose agreement names both
 * sender and recipient beats one naming only the sender, which beats the
 * rest; then the flow passing more checks; then the one failing later in the
 * order; then the first in order. So a draft agreement that fits in every
 * other way is what a deny names, rather than an active one differing in
 * three ways. Reason codes:
 *   no-agreement               no agreement names the sender, or no flow goes
 *                              from the sender (also: unknown sender/recipient)
 *   recipient-not-party        the recipient is not a party, or not in any
 *                              flow's `to` from this sender
 *   agreement-not-active       status is draft, suspended or expired
 *   outside-validity           now is before valid_from or after valid_until
 *   event-type-not-permitted   the flow does not carry this event type
 *   purpose-not-permitted      the event's purpose is not the flow's
 *   legal-basis-not-permitted  the basis claimed is not one the flow lists
 *   consent-missing            consent required, not given, no allowed override
 *   condition-failed           the flow's condition is false (or undecidable)
 *   agreement-expired          (recheck only) past valid_until
 *   agreement-changed          (recheck of a copy only) the agreement loaded now
 *                              has no flow that still carries the copy
 */
#ifndef SHAREHUB_POLICY_H
#define SHAREHUB_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/config.h"
#include "sharehub/msg.h"

#define SHUB_POLICY_MAX_EXPLAIN 512

typedef struct shub_decision {
    bool allow;
    const char *reason; /* deny: stable reason code (above); allow: NULL */
    char explanation[SHUB_POLICY_MAX_EXPLAIN]; /* one line a person reads; a deny
                                  also names what would have permitted it, if anything */
    const char *agreement;      /* deciding agreement id (deny: the closest, or NULL) */
    uint32_t version;           /* its version (0 when agreement is NULL) */
    const char *agreement_hash; /* its content hash, 64 hex (NULL with agreement) */
    const char *flow;           /* flow id (deny: the closest, or NULL) */
    const char *const *fields;  /* allow: the flow's allowed dotted paths (borrowed) */
    size_t n_fields;
    const char *legal_basis;   /* allow: the basis id the event claimed and the flow
                                  lists, one id (borrowed from cfg); deny: NULL */
    uint32_t ack_within_hours; /* allow: the flow's deadline to acknowledge, 0: none */
    uint32_t act_within_hours; /* allow: the flow's deadline to act, 0: none */
    bool onward_sharing;       /* allow: may the recipient pass it on */
    const char *const *report; /* allow: fields whose values the audit row records
                                  as facts (anonymous codes only; borrowed) */
    size_t n_report;
} shub_decision_t;

/* Decides one share. Pure: no I/O, no allocation, no global state; now_ms is
 * the broker's clock. Returns 0 and fills out (allow or deny), or SHUB_EINVAL
 * for NULL cfg, sender, recipient, ev or out. Borrowed strings live as long
 * as cfg. */
int shub_policy_decide(const shub_config_t *cfg, const char *sender,
                       const char *recipient, const shub_event_t *ev, int64_t now_ms,
                       shub_decision_t *out);

/* What the live decision already told of one condition: the flow that
 * allowed a share had a condition, which held on the event itself; the flow
 * a condition-failed deny names had one which did not. A draft flow with the
 * very same text holds or fails alike on the same event. */
typedef struct shub_policy_hint {
    const char *condition; /* the condition's text, or NULL: nothing known */
    bool holds;
} shub_policy_hint_t;

/* What-if: decides as shub_policy_decide an event rebuilt from an audit row
 * (shub_condition_eval_partial says how its missing values are read; hint,
 * which may be NULL, settles a condition of the same text). Sets
 * *undecidable when a flow's condition needs a value the row does not hold
 * and the decision would differ with it; out is then the decision taking
 * that condition as false. 0, or SHUB_EINVAL for NULLs. */
int shub_policy_decide_partial(const shub_config_t *cfg, const char *sender,
                               const char *recipient, const shub_event_t *ev,
                               int64_t now_ms, const shub_policy_hint_t *hint,
                               shub_decision_t *out, bool *undecidable);

/* At delivery: is agreement `agreement_id` still in force (active and within
 * validity) at now_ms? Fills out: allow, or deny with agreement-expired (past
 * valid_until), agreement-not-active (not active, or not yet valid) or
 * no-agreement (unknown id). 0, or SHUB_EINVAL for NULLs. */
int shub_policy_recheck(const shub_config_t *cfg, const char *agreement_id,
                        int64_t now_ms, shub_decision_t *out);

/* What a stored copy was allowed under: what delivery re-decides. */
typedef struct shub_policy_copy {
    const char *sender, *recipient, *event_type, *area, *purpose, *basis;
    const char *agreement, *agreement_hash, *flow; /* as decided */
    uint32_t version;
    const char *fields_shared; /* comma-separated leaf paths the copy carries */
} shub_policy_copy_t;

/* At delivery of a stored copy: re-decides it against the agreement as
 * loaded now. The agreement (same id) must be active and in force; if its
 * text changed since the copy was decided, one of its flows must still let
 * the sender send this event type to the recipient (parties, from, to),
 * for the copy's purpose and basis, with every field the copy carries
 * allowed: a sealed copy cannot be minimised again, so a narrowed flow
 * dead-letters it (agreement-changed). Conditions and consent are not
 * re-evaluated: they were judged on the event itself, which the broker can
 * no longer read. On allow, out names the agreement version and flow now in
 * force. 0, or SHUB_EINVAL for NULLs. */
int shub_policy_recheck_copy(const shub_config_t *cfg, const shub_policy_copy_t *c,
                             int64_t now_ms, shub_decision_t *out);

#endif
