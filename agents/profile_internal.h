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

/* One kind of partner's part of the MARAC referrals (marac.sources). */
typedef struct sc_source {
    char kind[NAME_CAP]; /* police, idva, local-authority, health, probation */
    double share;        /* of marac.referrals_per_week */
    sc_list_t origin;    /* orgs of the kind that share the part equally; empty:
                            every org of the kind, for the areas it serves */
} sc_source_t;

#define SC_MAX_SOURCES 8

typedef struct sc_sources { /* n == 0: not given, the police refer alone */
    size_t n;
    sc_source_t item[SC_MAX_SOURCES];
} sc_sources_t;

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
        sc_weights_t withdrawn_by_area; /* area -> fraction; others: withdrawn */
        sc_sources_t sources;           /* who refers, by kind */
        double withdrawn, move, external_move, missing_minutes, repeat, consent_given;
        sc_list_t external_areas; /* where external moves go; default "outside" */
    } marac;
    struct {
        double engaged, declined; /* IDVA engagement outcomes; the rest: no contact */
    } idva;
    struct {
        double late, undone; /* MARAC actions done after their due date, or not
                                done within the period; the rest: done on time */
    } actions;
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

/* ---- MARAC referral sequences (profile.c) ---------------------------------- */

/* Every partner kind that refers to MARACs originates its part of the
 * region's referrals (marac.sources) as one sequence of jobs per area it
 * serves: job `what` is the kind's code, `ref` the area's index here and
 * `arg` the referral's number in that area's sequence. Each gap is drawn
 * between half and one and a half times the area's mean, from a generator
 * seeded by (org, area, number) alone, so a sequence is a pure function of
 * the scenario and seed, and a quarter's count per area stays close to its
 * rate: a Poisson count would stray by its square root (±8, or 12 %, at
 * Solihull's 64 a quarter), this one by about a third of that. */
typedef struct refseq {
    size_t n;
    const char *area[SC_MAX_AREAS]; /* borrowed from the profile's scenario copy */
    double mean_ms[SC_MAX_AREAS];   /* mean gap between referrals in the area */
} refseq_t;

/* Sets up this org's sequences (none if its kind refers no one) and queues
 * the first job of each. SHUB_ENOMEM, SHUB_EBUSY. */
int shub_profile_refseq_init(shub_profile_t *p, uint32_t what);

/* Queues the job after `job` in its area's sequence, unless past the end. */
int shub_profile_refseq_next(shub_profile_t *p, const job_t *job);

/* The area of a sequence job, and the generator for its referral's content
 * (the same on every retry of the job). */
const char *shub_profile_refseq_area(const shub_profile_t *p, const job_t *job);
rng_t shub_profile_refseq_rng(const shub_profile_t *p, const job_t *job);

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
    refseq_t refseq;       /* MARAC referrals, when the kind refers */
    void *actions;         /* MARAC actions this org owns (profile_action.c) */
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

/* Job codes from here up belong to the shared part (profile_action.c), which
 * fires them before the kind sees them. */
#define PROFILE_SHARED_JOBS 0x1000u

/* Queues a job (seq assigned here). SHUB_ENOMEM; SHUB_EBUSY past the cap. */
int shub_profile_schedule(shub_profile_t *p, int64_t due_ms, uint32_t what, uint32_t ref,
                          int64_t arg, const shub_id_t *reply_to);

/* Room for one more entry in a growing array of records (cap entries, n
 * used, `size` bytes each), doubling from `first`: *items is replaced by a
 * larger copy when full. SHUB_ENOMEM, or SHUB_EBUSY at PROFILE_MAX_RECORDS
 * (a flood of input stops there); *items and *cap are untouched then. */
int shub_profile_grow(void **items, size_t *cap, size_t n, size_t size, size_t first);

/* Makes room for `extra` more jobs so pushes after an emit cannot fail. */
int shub_profile_reserve(shub_profile_t *p, size_t extra);

/* Sets up stream `i` at `per_week` region-wide: this org's share (by origin
 * list or kind, and by the weight of the areas it serves), its generator,
 * and its first job (what = `what`, ref = i) if one falls in the period. */
int shub_profile_stream_init(shub_profile_t *p, size_t i, const char *name,
                             const sc_rate_t *rate, const sc_weights_t *weights,
                             bool kind_default, uint32_t what);

/* As shub_profile_schedule, but only if due_ms falls before the scenario's
 * end (always without a scenario): follow-ups that would run past the
 * simulated period are left undone, as they would be when it closes. */
int shub_profile_schedule_in_period(shub_profile_t *p, int64_t due_ms, uint32_t what,
                                    uint32_t ref, int64_t arg, const shub_id_t *reply_to);

/* Queues the stream's next job after `from_ms` (none past the scenario end). */
int shub_profile_stream_next(shub_profile_t *p, size_t i, uint32_t what, int64_t from_ms);

/* An area of the stream, by weight. */
const char *shub_profile_stream_area(stream_t *s);

/* One of the n records at items (each `size` bytes) of which in_area says
 * they live in `area`, chosen by r; NULL if none, and then r is not drawn
 * on. Linear: fine for the thousands one organisation refers in a quarter. */
void *shub_profile_pick_in_area(void *items, size_t n, size_t size, const char *area,
                                bool (*in_area)(const void *rec, const char *area),
                                rng_t *r);

/* True if the org serves `area`. */
bool shub_profile_serves(const shub_profile_t *p, const char *area);

/* Weights a marac stream uses: marac.area_weights, else the top level; and
 * the weights every other stream uses: the top level, else marac's (both
 * stand for where people live). Empty: all areas equal. */
const sc_weights_t *shub_profile_marac_weights(const shub_profile_t *p);
const sc_weights_t *shub_profile_area_weights(const shub_profile_t *p);

/* The share of a scenario fraction for an area in a per-area map (the
 * map's value for `area`, else `dflt`). */
double shub_profile_area_fraction(const sc_weights_t *map, const char *area, double dflt);

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

/* As shub_profile_emit_built, to the service that serves the event's area,
 * "<service>@<ev->area>" such as marac@birmingham, and to a second one,
 * `also`, unless it is NULL. */
int shub_profile_emit_to_area(pb_t *b, const shub_event_t *ev, const char *service,
                              const char *also, shub_profile_emit_fn *emit, void *ctx);

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
/* ---- people referred to a MARAC (profile_referral.c) ---------------------- */

/* Someone an organisation has referred, as its records know her: enough to
 * make her again (the seed), where she lives now, and when she was last
 * referred. A move someone tells us of changes the area and, through
 * `moves`, the address. */
typedef struct victim {
    uint64_t seed;             /* shub_profile_person_make */
    char first_area[NAME_CAP]; /* where she lived when first referred */
    char area[NAME_CAP];       /* where she lives now, as far as we know */
    char subject[20];
    uint32_t moves; /* moves heard of: the address is redrawn on each */
    int64_t last_referral_ms;
} victim_t;

typedef struct victims { /* up to PROFILE_MAX_RECORDS */
    victim_t *v;
    size_t n, cap;
} victims_t;

/* Room for one more; SHUB_ENOMEM, or SHUB_EBUSY at the cap. */
int shub_victims_reserve(victims_t *vs);
void shub_victims_free(victims_t *vs);
victim_t *shub_victims_find(victims_t *vs, const char *subject);
/* One of the victims living in `area`, chosen by r; NULL if none. Linear:
 * fine for the thousands one organisation refers in a quarter. */
victim_t *shub_victims_pick(victims_t *vs, const char *area, rng_t *r);
/* The person v is, living at her current address. */
void shub_victim_person(const victim_t *v, person_t *out);

/* How a kind of referrer fills in the referral form. */
typedef struct referrer {
    const char *officer;   /* the person referring, with rank or role */
    const char *contact;   /* a telephone number */
    const char *crime_ref; /* police only; NULL: none */
    double judgement;      /* fraction referred on professional judgement */
    double escalation;     /* ... on escalation; the rest score DASH 14 or more */
    const char *const *summaries;
    size_t n_summaries;
} referrer_t;

/* Emits a marac.referral about `victim` to the MARAC of `area`, as of
 * at_ms, the incident drawn from r: DASH score and criteria (at least one
 * the MARAC threshold accepts), the risk factors the board counts, the
 * perpetrators and children (from family_seed; `family` false leaves the
 * children out, for a referrer that does not know them). `repeat` is the
 * referrer's own knowledge that she was referred within 12 months. */
int shub_profile_referral_emit(shub_profile_t *p, int64_t at_ms, rng_t *r,
                               const person_t *victim, const char *area,
                               uint64_t family_seed, bool family, const char *case_ref,
                               const referrer_t *who, bool repeat,
                               shub_profile_emit_fn *emit, void *ctx);

/* Who signs a referral a sequence job makes: a member of staff of `role`
 * (a made-up name), a mobile number, and a case reference made from the
 * job (PREFIX-MR-yy-area-number), drawn from r. */
typedef struct referral_signature {
    char officer[96];
    char contact[24];
    char case_ref[48];
} referral_signature_t;
void shub_profile_referral_sign(const shub_profile_t *p, const job_t *job, rng_t *r,
                                const char *role, const char *area,
                                referral_signature_t *out);

/* A referral job of a kind that refers people it has not referred before
 * (councils, health, probation, an IDVA service's own clients): a new
 * person in the job's area, signed by `role` and a made-up name of ours,
 * its case reference made from the job (prefix-MR-yy-area-number). Queues
 * the sequence's next job once the referral has gone. */
int shub_profile_referral_fire_new(shub_profile_t *p, const job_t *job, const char *role,
                                   const referrer_t *how, shub_profile_emit_fn *emit,
                                   void *ctx);

/* ---- MARAC actions owned by member agencies (profile_action.c) ------------ */

/* Records a marac.action addressed to this org and queues its update (done
 * on time, late, or not within the period, by the scenario's fractions); a
 * status of `transferred` withdraws it. For every kind a MARAC gives actions
 * to. SHUB_ENOMEM, SHUB_EBUSY. */
int shub_profile_action_receive(shub_profile_t *p, int64_t now, const char *from,
                                const shub_event_t *ev);
/* Fires a shared job (what >= PROFILE_SHARED_JOBS). */
int shub_profile_action_fire(shub_profile_t *p, const job_t *job,
                             shub_profile_emit_fn *emit, void *ctx);
void shub_profile_action_free(shub_profile_t *p);

/* The first part of an org id in capitals, for case references: "WMP" from
 * "wmp-custody"; cut to fit out[cap]. */
void shub_profile_id_prefix(const char *id, char *out, size_t cap);
/* A short uppercase code for an area, for case references ("COV"). */
void shub_profile_area_code(const char *area, char out[8]);

#endif
