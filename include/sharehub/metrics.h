/*
 * metrics: the broker's live figures in the Prometheus text exposition
 * format (version 0.0.4), for a local scraper. The hub counts what a turn
 * did in a turn object and publishes it only once the turn has committed,
 * so every counter agrees with the audit log (a rolled-back turn counts
 * nothing); it publishes its gauges (backlog, connections, checkpoint age,
 * deadlines) at most once a second. Publishing takes a mutex for the time of
 * a few additions; the HTTP thread renders from the same snapshot under the
 * same mutex and never touches the hub's store.
 *
 * Exposed (docs/man/sharehub-broker.1.md lists them for people):
 *   sharehub_shares_total{decision,agreement,reason}   counter
 *   sharehub_deliveries_total{outcome}                 counter (queued, acknowledged,
 * dead) sharehub_escalations_total                         counter sharehub_backlog{org}
 * gauge: copies waiting per recipient sharehub_connected_organisations gauge
 *   sharehub_checkpoint_age_seconds                    gauge
 *   sharehub_deadlines_open, sharehub_deadlines_overdue gauges
 *   sharehub_commit_seconds                            histogram
 */
#ifndef SHAREHUB_METRICS_H
#define SHAREHUB_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/buf.h"
#include "sharehub/err.h"

#define SHUB_METRICS_MAX_SERIES                                                          \
    512                         /* label sets per family: agreements x reasons and       \
                                   organisations are tens; beyond, one "other" */
#define SHUB_METRICS_BUCKETS 12 /* commit latency histogram buckets */

typedef struct shub_metrics shub_metrics_t;
typedef struct shub_metrics_turn shub_metrics_turn_t;

/* ---- lifecycle --------------------------------------------------------- */

shub_metrics_t *shub_metrics_new(void);
void shub_metrics_destroy(shub_metrics_t **m_p);
shub_metrics_turn_t *shub_metrics_turn_new(void);
void shub_metrics_turn_destroy(shub_metrics_turn_t **t_p);

/* ---- a turn (the hub's thread only, no lock) --------------------------- */

/* One decision: "allow" or "deny", the agreement (may be NULL) and the reason
 * code (NULL for an allow). SHUB_ENOMEM. */
int shub_metrics_turn_share(shub_metrics_turn_t *t, const char *decision,
                            const char *agreement, const char *reason);

/* Copies queued (stored for delivery), acknowledged, dead; escalations. */
void shub_metrics_turn_delivery(shub_metrics_turn_t *t, const char *outcome);
void shub_metrics_turn_escalation(shub_metrics_turn_t *t);

/* Forgets the turn (it rolled back). */
void shub_metrics_turn_discard(shub_metrics_turn_t *t);

/* ---- publishing (the hub's thread, briefly under the lock) -------------- */

/* Adds the committed turn to the counters, observes its commit time, and
 * empties the turn. commit_s < 0: the turn committed nothing. */
int shub_metrics_commit(shub_metrics_t *m, shub_metrics_turn_t *t, double commit_s);

/* The gauges as of now. backlog: n_orgs pairs of org id and copies waiting. */
typedef struct shub_metrics_gauges {
    const char *const *orgs;
    const uint64_t *backlog;
    size_t n_orgs;
    uint64_t connected;
    int64_t checkpoint_at_ms; /* 0: none signed yet */
    int64_t now_ms;
    uint64_t deadlines_open, deadlines_overdue;
    uint64_t names, names_bytes; /* shub_store_names_held */
} shub_metrics_gauges_t;

int shub_metrics_gauges(shub_metrics_t *m, const shub_metrics_gauges_t *g);

/* ---- rendering (any thread, under the lock) ----------------------------- */

/* Appends the exposition text to out. SHUB_ENOMEM. */
int shub_metrics_render(shub_metrics_t *m, shub_buf_t *out);

#endif
