/*
 * whatif: what a draft set of agreements would have decided about shares
 * already made. An information-governance lead changes an agreement, points
 * `sharehub-audit what-if` at the draft, and sees, per agreement and flow,
 * which past shares would now be denied or allowed and which fields would
 * now be stripped or shared, before the draft goes live.
 *
 * It re-decides each audit row of action `decide` with the broker's own
 * policy function (policy.h) under the draft, at the time the share was
 * decided, from the decision inputs the row holds: sender, recipient, event
 * type, area, purpose, legal basis, consent and override, the names of every
 * payload leaf (`fields`) and the values of the flow's report fields
 * (`facts`, anonymous codes). The log never holds a payload value otherwise,
 * so a condition that reads one (`payload.risk.dash_score >= 14`) cannot be
 * evaluated again, except where the row's own decision settled the same
 * text (the flow that allowed it had that condition, which therefore held):
 * where the draft's decision depends on a value nobody kept, the row is
 * counted as undecidable, never guessed (shub_policy_decide_partial).
 *
 * The module does no I/O but reading the store through shub_store_audit_read,
 * and its answer is a query result (query.h), rendered like a report.
 */
#ifndef SHAREHUB_WHATIF_H
#define SHAREHUB_WHATIF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/arena.h"
#include "sharehub/config.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/query.h"
#include "sharehub/store.h"

typedef struct shub_whatif shub_whatif_t;

/* Totals over every row added. */
typedef struct shub_whatif_totals {
    uint64_t decisions;     /* decide rows re-decided */
    uint64_t unchanged;     /* same decision (allow by the same or another flow,
                               or deny) */
    uint64_t newly_denied;  /* allowed then, denied under the draft */
    uint64_t newly_allowed; /* denied then, allowed under the draft */
    uint64_t undecidable;   /* the draft's answer needs a value the log lacks */
    uint64_t fields_changed; /* allowed both times, with another set of fields */
} shub_whatif_totals_t;

/* A what-if over `draft`; `live` (may be NULL) is the configuration in force,
 * whose agreements say what a row's own decision proved about a condition
 * (policy.h's hint). Both borrowed: they must outlive the object.
 * SHUB_EINVAL, SHUB_ENOMEM. */
int shub_whatif_new(const shub_config_t *draft, const shub_config_t *live,
                    shub_whatif_t **out, shub_err_t *err);

/* Frees it; accepts NULL; nulls the caller's pointer. */
void shub_whatif_destroy(shub_whatif_t **w_p);

/* Re-decides one audit row (rows of other actions are ignored). SHUB_ENOMEM;
 * a row whose texts do not parse (the store is not trusted) is counted as
 * undecidable, not an error. */
int shub_whatif_add(shub_whatif_t *w, const shub_audit_row_t *row, shub_err_t *err);

/* Every decide row of the store with since_ms <= at < until_ms (has_* false:
 * no bound), oldest first. SHUB_EDB, SHUB_ENOMEM. */
int shub_whatif_run(shub_whatif_t *w, shub_store_t *s, bool has_since, int64_t since_ms,
                    bool has_until, int64_t until_ms, shub_err_t *err);

void shub_whatif_totals(const shub_whatif_t *w, shub_whatif_totals_t *out);

/* The answer as a result with sections "whatif" (the totals), "flows"
 * (agreement, flow, change, reason, shares: one row per agreement, flow and
 * kind of change, `unchanged` included) and "fields" (agreement, flow, field,
 * change, shares: fields newly stripped or newly shared). SHUB_ENOMEM. */
int shub_whatif_result(const shub_whatif_t *w, shub_query_result_t **out,
                       shub_err_t *err);

/* The event an audit row describes, as far as the row holds it: type, area,
 * purpose, basis, consent, override, times, and a payload with every leaf the
 * row's `fields` names (nil) and the values its `facts` give. In arena.
 * SHUB_EVALUE if a list does not parse, SHUB_ENOMEM. *complete (may be NULL)
 * is false when the row's field list was cut short. */
int shub_whatif_event(shub_arena_t *arena, const shub_audit_row_t *row, shub_event_t *ev,
                      bool *complete, shub_err_t *err);

#endif
