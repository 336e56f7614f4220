/*
 * profile: what an organisation does with events, standing in for its real
 * case system. One implementation per kind of organisation (police, MARAC,
 * local authority, probation, health/A&E, IDVA service) behind this one
 * interface. Profiles know no sockets and no SQL: the agent runtime calls
 * them with a simulated clock and the events received, and they answer by
 * emitting SHAREs through a callback. Given the same scenario, seed and
 * inputs, a profile emits exactly the same events (tests depend on it).
 *
 * The simulated clock runs `speedup` times faster than real time from the
 * scenario's start; every time here is simulated ms since the Unix epoch.
 */
#ifndef SHAREHUB_PROFILE_H
#define SHAREHUB_PROFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

typedef struct shub_profile shub_profile_t;
typedef struct shub_scenario shub_scenario_t;

/* Who the agent is, from orgs.yaml. */
typedef struct shub_profile_org {
    const char *id;
    const char *kind;                /* police, marac, local-authority, ... */
    const char *const *areas;        /* the areas it serves */
    size_t n_areas;
    const char *const *all_areas;    /* every area of the partnership */
    size_t n_all_areas;
} shub_profile_org_t;

/* Called for each event a profile originates. The share, its strings and
 * payload are valid only during the call: the runtime encodes and queues it
 * in its durable outbox before returning. The profile fills everything but
 * the id: the runtime assigns a fresh time-ordered id. Non-zero stops. */
typedef int(shub_profile_emit_fn)(void *ctx, const shub_share_t *share);

/* Loads a scenario file (YAML; see agents/scenario.c for the format).
 * SHUB_ECONFIG with the first mistake, in line order, in err (file, line,
 * column); SHUB_EIO if the file cannot be read; SHUB_ENOMEM. */
int shub_scenario_load(const char *path, shub_scenario_t **scenario_p, shub_err_t *err);
void shub_scenario_destroy(shub_scenario_t **scenario_p);

/* Simulated start and end (ms since epoch) and the clock speed-up. */
int64_t shub_scenario_start_ms(const shub_scenario_t *s);
int64_t shub_scenario_end_ms(const shub_scenario_t *s);
double shub_scenario_speedup(const shub_scenario_t *s);

/* A profile for org (by its kind), driven by scenario (may be NULL: the
 * profile then only reacts to what it receives) and seed. SHUB_ENOTFOUND if
 * no profile serves the kind. The profile copies what it keeps of org. */
int shub_profile_new(const shub_profile_org_t *org, const shub_scenario_t *scenario,
                     uint64_t seed, shub_profile_t **profile_p, shub_err_t *err);
void shub_profile_destroy(shub_profile_t **profile_p);

/* Originates every event due at or before now_ms (simulated), in order. */
int shub_profile_tick(shub_profile_t *p, int64_t now_ms, shub_profile_emit_fn *emit,
                      void *ctx);

/* Inside an emit callback during shub_profile_tick: the (simulated) time the
 * firing job was due. Jobs fire in due order, so this, not the event's
 * `occurred` (a move notice is dated with the move), orders a profile's
 * emissions; 0 outside a callback. */
int64_t shub_profile_due_ms(const shub_profile_t *p);

/* Reacts to one event received (already committed to the inbox): `from` is
 * the authenticated sender. Reactions that are due later (a MARAC decides
 * within 48 simulated hours) are scheduled and emitted by later ticks. */
int shub_profile_receive(shub_profile_t *p, int64_t now_ms, const char *from,
                         const shub_event_t *ev, shub_profile_emit_fn *emit, void *ctx);

/* True once the profile has nothing more scheduled and its scenario period
 * has ended (the demo waits for every agent to be done). */
bool shub_profile_done(const shub_profile_t *p, int64_t now_ms);

#endif
