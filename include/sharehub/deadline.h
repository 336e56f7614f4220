/*
 * deadline: which allowed shares are waiting for an answer, and when each is
 * overdue. A flow may set ack_within_hours (the recipient answers the share:
 * any event it sends whose reply_to names it) and act_within_hours (the
 * recipient answers the share's sender: such an event addressed to the
 * sender). The hub adds one deadline per allowed share and kind, tells the
 * tracker of every accepted event that names another in reply_to, and asks it
 * each second which deadlines have passed unmet and not yet escalated.
 *
 * Everything is measured on the hub's clock (when the broker accepted the
 * share, when it accepted the answer), which no partner sets; one hour of a
 * deadline is hub.yaml's limits.deadline_hour_ms, 3600000 except in
 * simulations and tests that run faster. The tracker does no I/O: the hub
 * writes each change to the store (shub_store_deadline_*) in the same
 * transaction as the event that caused it, and rebuilds the tracker from the
 * store on start, so an escalation happens once, across restarts too.
 *
 * An answer finds its share's deadlines by event id (a hash index), however
 * many are open. The overdue scan reads them all, but only once the earliest
 * due time has come; a region has hundreds to a few thousand waiting at once
 * (about 100 MARAC referrals a week, answered in two days).
 */
#ifndef SHAREHUB_DEADLINE_H
#define SHAREHUB_DEADLINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/arena.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/store.h"

#define SHUB_DEADLINE_MAX_OPEN                                                           \
    1000000 /* open deadlines held: beyond, new ones are                                 \
               refused (SHUB_ELIMIT) and logged */

typedef struct shub_deadline shub_deadline_t;

/* Called for each deadline met or overdue; non-zero stops the walk. The
 * entry is the tracker's and valid for the call. */
typedef int(shub_deadline_fn)(const shub_store_deadline_t *d, void *ctx);

/* ---- lifecycle --------------------------------------------------------- */

/* An empty tracker. NULL when out of memory. */
shub_deadline_t *shub_deadline_new(void);

/* Frees the tracker; accepts NULL; nulls the caller's pointer. */
void shub_deadline_destroy(shub_deadline_t **dl_p);

/* Forgets every deadline (the hub reloads them from the store after a
 * failed commit). */
void shub_deadline_clear(shub_deadline_t *dl);

/* ---- operations -------------------------------------------------------- */

/* Tracks one deadline (copied; its strings must outlive it: the store's
 * interned ones do). An answered one is ignored. SHUB_ELIMIT past
 * SHUB_DEADLINE_MAX_OPEN, SHUB_ENOMEM, SHUB_EINVAL. */
int shub_deadline_add(shub_deadline_t *dl, const shub_store_deadline_t *d);

/* An event from `from`, addressed to to[0..n_to), names `reply_to`: fn is
 * called for each open deadline of that share held by `from` which this
 * answer meets (acknowledge: any answer; act: one addressed to the share's
 * sender), with answered_ms set to now_ms; those deadlines are then closed.
 * Returns the number met, or fn's non-zero value (negative) if it stopped:
 * then nothing is closed, so a failed store write can be retried. */
int shub_deadline_answer(shub_deadline_t *dl, const shub_id_t *reply_to, const char *from,
                         const char *const *to, size_t n_to, int64_t now_ms,
                         shub_deadline_fn *fn, void *ctx);

/* fn for each open deadline due at or before now_ms and not escalated, at
 * most `max` of them; each for which fn returns 0 is marked escalated (it
 * stays open: a late answer still closes it). Returns the number escalated,
 * or fn's value (negative) when it failed (that deadline stays unescalated). */
int shub_deadline_overdue(shub_deadline_t *dl, int64_t now_ms, size_t max,
                          shub_deadline_fn *fn, void *ctx);

/* The notice the hub sends when deadline d is overdue: an event of type
 * SHUB_DEADLINE_NOTICE_TYPE, dated now_ms, in d's area, whose reply_to is
 * the overdue share and whose payload says which share (its id, type, sender,
 * recipient, agreement and flow), which deadline, the target in hours and
 * when it fell due; nothing of the share's own payload. The event's strings
 * and payload live in arena, and *reply_to must outlive *ev. id is the
 * notice's own event id. SHUB_ENOMEM. */
#define SHUB_DEADLINE_NOTICE_TYPE "deadline.overdue"
#define SHUB_DEADLINE_PURPOSE     "deadline-escalation"
int shub_deadline_notice(shub_arena_t *arena, const shub_store_deadline_t *d,
                         const shub_id_t *id, int64_t now_ms, shub_id_t *reply_to,
                         shub_event_t *ev);

/* The one-line explanation an audit row and the log give for an escalation,
 * into buf: "'marac.referral' from wmp not answered by marac-coventry within
 * 24 h (due 2026-07-02T10:00:00.000Z)". */
void shub_deadline_explain(const shub_store_deadline_t *d, char *buf, size_t size);

/* ---- accessors --------------------------------------------------------- */

/* Open deadlines; of those, how many are past due at now_ms. */
size_t shub_deadline_open(const shub_deadline_t *dl);
size_t shub_deadline_past_due(const shub_deadline_t *dl, int64_t now_ms);

/* The due time of deadline kind (SHUB_STORE_DEADLINE_*) of a share accepted
 * at started_ms under a flow's `hours`, with hour_ms per hour; 0 hours: none
 * (returns 0). Saturates instead of overflowing. */
int64_t shub_deadline_due(int64_t started_ms, uint32_t hours, uint32_t hour_ms);

/* "ack" or "act": the kind as the audit and the notices name it. */
const char *shub_deadline_kind_name(int kind);

#endif
