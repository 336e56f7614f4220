/*
 * lifecycle: an agreement's dates as the people who answer for it need to
 * hear about them. `sharehub-broker --check` lists what is due (an active
 * agreement expiring or due for review within the notice period, past
 * either date, or never signed off) and fails on it with --strict; the
 * broker tells an agreement's owner, once, that it expires soon, with an
 * event from the hub itself (SHUB_HUB_SENDER).
 *
 * Pure: the clock is an argument, nothing here does I/O. The hub keeps the
 * record of notices sent in its store, so "once" survives a restart.
 */
#ifndef SHAREHUB_LIFECYCLE_H
#define SHAREHUB_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/arena.h"
#include "sharehub/config.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"

#define SHUB_LIFECYCLE_NOTICE_TYPE "agreement.expiring" /* the owner's notice event */
#define SHUB_LIFECYCLE_NOTICE_FLOW "expiry-notice"      /* its copy's flow name */
#define SHUB_LIFECYCLE_NOTICE_AREA "all"                 /* the whole partnership */
#define SHUB_LIFECYCLE_NOTICE_PURPOSE "information-governance"
#define SHUB_LIFECYCLE_NOTICE_BASIS "no-personal-data" /* it names an agreement only */
#define SHUB_LIFECYCLE_MAX_TEXT    320

typedef enum {
    SHUB_DUE_EXPIRED = 1, /* active, and past valid_until: everything is denied */
    SHUB_DUE_EXPIRING,    /* active, valid_until within the notice period */
    SHUB_DUE_REVIEW_OVERDUE,
    SHUB_DUE_REVIEW_SOON,
    SHUB_DUE_UNSIGNED, /* active with no signatory */
} shub_due_t;

typedef struct shub_lifecycle_finding {
    const shub_agreement_t *agreement; /* borrowed from the config */
    shub_due_t due;
    const char *code; /* "expired", "expiring", "review-overdue", "review-due",
                         "not-signed-off" */
    int64_t days;     /* whole days to the date (negative: since it) */
    char text[SHUB_LIFECYCLE_MAX_TEXT]; /* one line for a person */
} shub_lifecycle_finding_t;

typedef void(shub_lifecycle_fn)(const shub_lifecycle_finding_t *f, void *ctx);

/* Calls fn for each thing due in cfg's agreements at now_ms, notice_days
 * ahead, agreements in id order. Returns how many. */
size_t shub_lifecycle_check(const shub_config_t *cfg, int64_t now_ms, uint32_t notice_days,
                            shub_lifecycle_fn *fn, void *ctx);

/* Whether an agreement's owner is to be told now that it expires: active,
 * an owner named, and now_ms within notice_days before the end of
 * valid_until (not after). */
bool shub_lifecycle_notice_due(const shub_agreement_t *ag, int64_t now_ms,
                               uint32_t notice_days);

/* The owner's notice as an event (type SHUB_LIFECYCLE_NOTICE_TYPE, a new
 * id, occurred now_ms, the _NOTICE_ area, purpose and basis above; payload
 * agreement, version, title, valid_until, days_left), built in arena.
 * SHUB_ENOMEM. */
int shub_lifecycle_notice(shub_arena_t *arena, const shub_agreement_t *ag, int64_t now_ms,
                          shub_event_t *ev, shub_err_t *err);

#endif
