/*
 * profile_internal: what the organisation profiles share inside the module.
 *
 * A profile is a small state machine driven by simulated time. Everything it
 * will emit later sits in one time-ordered schedule (a binary heap of jobs);
 * shub_profile_tick pops the jobs that are due and asks the kind to fire
 * each, and each job emits at most one share. That rule is what makes a
 * failed emit (or an allocation failure) safe to retry: the job goes back on
 * the heap unchanged, the random streams it used are restored, and the next
 * tick produces exactly the same event.
 *
 * Randomness is our own xoshiro256** seeded by splitmix64 from a hash of the
 * run's seed, the organisation id and the stream's name, so each origination
 * stream is a pure function of (scenario, seed, org id) and does not shift
 * when the organisation happens to receive something. Reactions draw from a
 * separate generator advanced in the order events are received.
 *
 * The scenario struct lives here rather than in scenario.c because every
 * kind reads its rates; a profile keeps its own copy (plain arrays, no
 * pointers), so a scenario may be destroyed while profiles built from it run.
 */
#ifndef SHAREHUB_PROFILE_INTERNAL_H
#define SHAREHUB_PROFILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/buf.h"
#include "sharehub/profile.h"
#include "sharehub/time.h"

#define NAME_CAP            (SHUB_MSG_MAX_NAME + 1) /* an id, area or kind and its NUL */
#define REF_CAP             (SHUB_MSG_MAX_REF + 1) /* a case or subject ref and its NUL */
#define SC_MAX_AREAS        64                     /* areas named in one weights map */
#define SC_MAX_LIST         16      /* ids in an origin or external_areas list */
#define PROFILE_MAX_STREAMS 4       /* origination streams per profile */
#define PROFILE_MAX_JOBS    1000000 /* pending jobs; a flood of input stops here */
#define PROFILE_MAX_RECORDS 200000  /* cases or referrals one profile remembers */

#define MS_MINUTE INT64_C(60000)
#define MS_HOUR   (60 * MS_MINUTE)
#define MS_DAY    (24 * MS_HOUR)
#define MS_WEEK   (7 * MS_DAY)

/* ---- the scenario ------------------------------------------------------ */

typedef struct sc_weights { /* area -> relative load; n == 0: not given */
    size_t n;
    char name[SC_MAX_AREAS][NAME_CAP];
    double w[SC_MAX_AREAS];
} sc_weights_t;

typedef struct sc_list { /* org ids (origin) or area names (external_areas) */
    size_t n;
    char item[SC_MAX_LIST][NAME_CAP];
} sc_list_t;

typedef struct sc_rate {
    double per_week;  /* region-wide events per simulated week */
    sc_list_t origin; /* org ids sharing the stream; empty: every org of the kind */
} sc_rate_t;

typedef enum { ISTV_OFF = 0, ISTV_MONTHLY, ISTV_WEEKLY } istv_period_t;

struct shub_scenario {
    int64_t start_ms, end_ms;
    double speedup;
    sc_weights_t weights; /* top-level area_weights: every stream but marac's */
    struct {
        sc_rate_t referrals;
        sc_weights_t weights; /* marac.area_weights; falls back to the top level */
        double withdrawn, move, external_move, missing_minutes, repeat, consent_given;
        sc_list_t external_areas; /* where external moves go; default "outside" */
    } marac;
    struct {
        sc_rate_t releases;
        double mappa; /* fraction of releases managed under MAPPA */
    } probation;
    struct {
        istv_period_t istv;
        double assaults_per_week; /* per site and area served */
    } health;
    sc_rate_t mash;    /* mash.referrals originated by councils */
    sc_rate_t missing; /* missing.report by police */
    sc_rate_t custody; /* custody.arrest_referral by custody suites */
};

/* The defaults every key falls back to (all origination rates zero). */
void shub_scenario_defaults(shub_scenario_t *s);

/* ---- random numbers ---------------------------------------------------- */

typedef struct rng {
    uint64_t s[4];
} rng_t;

uint64_t shub_rng_mix(uint64_t x); /* splitmix64's finaliser */
uint64_t shub_rng_hash(uint64_t h,
                       const char *s); /* FNV-1a, chained through shub_rng_mix */
void shub_rng_seed(rng_t *r, uint64_t seed);
uint64_t shub_rng_next(rng_t *r);
double shub_rng_unit(rng_t *r);                           /* [0, 1) */
uint64_t shub_rng_below(rng_t *r, uint64_t n);            /* [0, n); 0 when n == 0 */
int64_t shub_rng_range(rng_t *r, int64_t lo, int64_t hi); /* [lo, hi] */
bool shub_rng_chance(rng_t *r, double p);
double shub_rng_exp(rng_t *r, double mean); /* exponential, for Poisson gaps */
const char *shub_rng_pick(rng_t *r, const char *const *list, size_t n);
#define PICK(r, list) shub_rng_pick((r), (list), sizeof(list) / sizeof((list)[0]))

/* ---- the schedule ------------------------------------------------------ */

/* One pending emission. `what`, `ref` and `arg` mean what the kind says. */
typedef struct job {
    int64_t due_ms;
    uint64_t seq;       /* scheduling order: equal times fire in the order queued */
    uint32_t what;      /* the kind's action code */
    uint32_t ref;       /* the kind's index: a case, a stream, an area */
    int64_t arg;        /* the kind's number: a period start, ... */
    shub_id_t reply_to; /* the event being answered, when has_reply */
    bool has_reply;
} job_t;

typedef struct sched { /* binary min-heap on (due_ms, seq) */
    job_t *jobs;
    size_t n, cap;
} sched_t;

/* ---- origination streams ----------------------------------------------- */

typedef struct stream_area {
    const char *name; /* borrowed from the profile's scenario copy or org areas */
    double cum;       /* cumulative weight, for picking */
} stream_area_t;

typedef struct stream {
    double per_ms; /* events per simulated ms this org originates; 0: off */
    rng_t rng;
    stream_area_t areas[SC_MAX_AREAS];
    size_t n_areas;
} stream_t;

/* ---- the profile ------------------------------------------------------- */

typedef struct profile_ops {
    const char *kind;
    /* Sets up the kind's state and queues its first origination jobs. */
    int (*init)(shub_profile_t *p, shub_err_t *err);
    void (*fini)(shub_profile_t *p);
    /* Emits the one share `job` stands for and queues what follows from it.
     * Must not change state before emit succeeds (the job is retried). */
    int (*fire)(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx);
    /* Records a received event and queues the reactions; emits nothing. */
    int (*receive)(shub_profile_t *p, int64_t now_ms, const char *from,
                   const shub_event_t *ev);
} profile_ops_t;

struct shub_profile {
    const profile_ops_t *ops;
    char id[NAME_CAP];
    char kind[NAME_CAP];
    char (*areas)[NAME_CAP]; /* the areas it serves */
    size_t n_areas;
    char (*all_areas)[NAME_CAP];
    size_t n_all_areas;
    shub_scenario_t sc; /* own copy; defaults with zero rates when none given */
    bool has_scenario;
    uint64_t seed; /* hash of the run's seed and the org id */
    rng_t react;   /* reactions, in the order events arrive */
    sched_t sched;
    uint64_t next_seq;
    stream_t streams[PROFILE_MAX_STREAMS];
    int64_t firing_due_ms; /* the job being fired (shub_profile_due_ms); 0 otherwise */
    void *state;           /* the kind's own */
};

extern const profile_ops_t shub_profile_police_ops;
extern const profile_ops_t shub_profile_custody_ops;
extern const profile_ops_t shub_profile_marac_ops;
extern const profile_ops_t shub_profile_la_ops;
extern const profile_ops_t shub_profile_probation_ops;
extern const profile_ops_t shub_profile_health_ops;
extern const profile_ops_t shub_profile_idva_ops;

/* Queues a job (seq assigned here). SHUB_ENOMEM; SHUB_EBUSY past the cap. */
int shub_profile_schedule(shub_profile_t *p, int64_t due_ms, uint32_t what, uint32_t ref,
                          int64_t arg, const shub_id_t *reply_to);

/* Makes room for `extra` more jobs so pushes after an emit cannot fail. */
int shub_profile_reserve(shub_profile_t *p, size_t extra);

/* Sets up stream `i` at `per_week` region-wide: this org's share (by origin
 * list or kind, and by the weight of the areas it serves), its generator,
 * and its first job (what = `what`, ref = i) if one falls in the period. */
int shub_profile_stream_init(shub_profile_t *p, size_t i, const char *name,
                             const sc_rate_t *rate, const sc_weights_t *weights,
                             bool kind_default, uint32_t what);

/* Queues the stream's next job after `from_ms` (none past the scenario end). */
int shub_profile_stream_next(shub_profile_t *p, size_t i, uint32_t what, int64_t from_ms);

/* An area of the stream, by weight. */
const char *shub_profile_stream_area(stream_t *s);

/* True if the org serves `area`. */
bool shub_profile_serves(const shub_profile_t *p, const char *area);

/* Weights a marac stream uses: marac.area_weights, else the top level; and
 * the weights every other stream uses: the top level, else marac's (both
 * stand for where people live). Empty: all areas equal. */
const sc_weights_t *shub_profile_marac_weights(const shub_profile_t *p);
const sc_weights_t *shub_profile_area_weights(const shub_profile_t *p);

/* Year of a time, two digits, for references ("26"). */
int shub_profile_year2(int64_t ms);

/* Sends one share built on the stack; the kind's payload is in ev->payload. */
int shub_profile_emit(shub_profile_emit_fn *emit, void *ctx, const shub_event_t *ev,
                      const char *const *to, uint32_t n_to);

/* ---- payload building: the first error sticks ---------------------------- */

typedef struct pb {
    shub_arena_t *arena;
    int rc;
} pb_t;

/* Emits ev, whose payload was built with b, unless building it failed, and
 * frees b's arena either way: b's error, or the emit's. */
int shub_profile_emit_built(pb_t *b, const shub_event_t *ev, const char *const *to,
                            uint32_t n_to, shub_profile_emit_fn *emit, void *ctx);

void shub_pb_str(pb_t *b, shub_val_t *map, const char *key, const char *s);
void shub_pb_strf(pb_t *b, shub_val_t *map, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void shub_pb_int(pb_t *b, shub_val_t *map, const char *key, int64_t i);
void shub_pb_bool(pb_t *b, shub_val_t *map, const char *key, bool v);
void shub_pb_put(pb_t *b, shub_val_t *map, const char *key, shub_val_t v);
void shub_pb_push(pb_t *b, shub_val_t *array, shub_val_t v);
void shub_pb_push_str(pb_t *b, shub_val_t *array, const char *s);
/* Deep copy of a received value into the builder's arena. */
shub_val_t shub_pb_copy(pb_t *b, const shub_val_t *v);

/* ---- calendar (UTC; the arithmetic itself is time.h's) ------------------- */

/* ms plus `work_ms` of weekday time (Saturdays and Sundays do not count). */
int64_t shub_profile_add_working_time(int64_t ms, int64_t work_ms);

/* ---- synthetic people and places (profile.c) ------------------------------ */

typedef struct person {
    char name[64];
    char first[24];
    char surname[32];
    char dob[SHUB_TIME_DATE_TEXT];
    const char *gender;
    char line1[64];
    char postcode[12];
    char phone[16];
    char subject[20]; /* "P-" and 16 hex digits: the same person everywhere */
} person_t;

/* Everything about one person follows from `seed`; `area` picks the postcode
 * district and ages run from min_age to max_age on 2026-01-01. `female` is
 * the chance the person is female. */
void shub_profile_person_make(uint64_t seed, const char *area, int min_age, int max_age,
                              double female, person_t *out);
/* An address in `area` from r: line1 and postcode. */
void shub_profile_address_make(rng_t *r, const char *area, char line1[64],
                               char postcode[12]);
/* The first part of an org id in capitals, for case references: "WMP" from
 * "wmp-custody"; cut to fit out[cap]. */
void shub_profile_id_prefix(const char *id, char *out, size_t cap);
/* A short uppercase code for an area, for case references ("COV"). */
void shub_profile_area_code(const char *area, char out[8]);

#endif
