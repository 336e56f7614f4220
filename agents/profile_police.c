/*
 * profile_police: a police force (kind police) and its custody suites (kind
 * custody). Police raise a MARAC referral for each high-risk domestic abuse
 * incident, to the MARAC of the area where the victim lives now, and report
 * missing people to the council of their area; custody refers detainees who
 * test positive to the arrest referral (treatment) service.
 *
 * The force remembers every victim it has referred (as the seed that
 * regenerates the person, the area and the last referral date), so a share
 * of referrals are about the same person again, with the same subject
 * reference; one within 12 months of the last is flagged a repeat. A move
 * the MARAC learns of is not fed back here: repeats go to the area the force
 * last knew, which is what happens when records lag behind.
 *
 * The police profile acts on nothing it receives (decisions and release
 * notices go into its case system, not back onto the wire).
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

enum { S_REFERRAL = 0, S_MISSING = 1, S_CUSTODY = 2 }; /* stream index == job code */

typedef struct victim {
    uint64_t seed;    /* regenerates the person (shub_profile_person_make) */
    const char *area; /* borrowed from the stream's area table */
    int64_t last_referral_ms;
} victim_t;

typedef struct police {
    victim_t *victims; /* everyone referred so far, up to PROFILE_MAX_RECORDS */
    size_t n, cap;
    uint32_t serial; /* for case references */
    char prefix[12]; /* "WMP" from "wmp-custody" */
} police_t;

static const char *const relationships[] = {
    "ex-partner", "partner",    "husband", "wife",   "boyfriend",
    "girlfriend", "ex-husband", "son",     "father", "brother",
};
static const char *const summaries[] = {
    "Assault at home after an argument; visible injuries to face and arms",
    "Threats to kill made by phone after separation; breach of non-molestation order",
    "Non-fatal strangulation disclosed; children in the house at the time",
    "Forced entry to the victim's home; door and victim's phone damaged",
    "Stalking: repeated unwanted contact and following the victim to work",
    "Controlling and coercive behaviour disclosed, including control of money",
    "Assault with a weapon during an argument over child contact",
};
static const char *const safe_contacts[] = {
    "text first; no voicemail",
    "call via sister, ask for a callback",
    "email only",
    "call weekdays 10:00-14:00 only",
};
static const char *const trigger_offences[] = {
    "theft-shoplifting",  "burglary", "robbery",
    "possession-class-a", "fraud",    "vehicle-crime",
};
static const char *const test_results[] = {
    "positive-opiates",
    "positive-cocaine",
    "positive-both",
};
static const char *const landlines[] = {"0121 496 0", "024 7696 0", "01902 49"};

static int state_new(shub_profile_t *p)
{
    police_t *st = shub_calloc(1, sizeof *st);
    if (!st)
        return SHUB_ENOMEM;
    p->state = st;
    shub_profile_id_prefix(p->id, st->prefix, sizeof st->prefix);
    return 0;
}

static int init(shub_profile_t *p, bool custody)
{
    int rc = state_new(p);
    if (rc == 0)
        rc = shub_profile_stream_init(
            p, S_REFERRAL, "marac.referral", &p->sc.marac.referrals,
            shub_profile_marac_weights(p), !custody, S_REFERRAL);
    if (rc == 0)
        rc = shub_profile_stream_init(p, S_MISSING, "missing.report", &p->sc.missing,
                                      shub_profile_area_weights(p), !custody, S_MISSING);
    if (rc == 0)
        rc = shub_profile_stream_init(p, S_CUSTODY, "custody.arrest_referral",
                                      &p->sc.custody, shub_profile_area_weights(p),
                                      custody, S_CUSTODY);
    return rc;
}

static int police_init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    return init(p, false);
}

static int custody_init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    return init(p, true);
}

static void fini(shub_profile_t *p)
{
    police_t *st = p->state;
    if (st)
        shub_free(st->victims);
    shub_free(st);
    p->state = NULL;
}

/* ---- marac.referral ---------------------------------------------------- */

static shub_val_t child_list(pb_t *b, uint64_t seed, const person_t *victim,
                             const char *area)
{
    rng_t r;
    shub_rng_seed(&r, shub_rng_mix(seed ^ UINT64_C(0x6368696c64)));
    shub_val_t children = shub_val_array();
    int n = shub_rng_chance(&r, 0.55) ? (int)shub_rng_range(&r, 1, 3) : 0;
    for (int k = 0; k < n; k++) {
        person_t c;
        shub_profile_person_make(shub_rng_mix(seed + (uint64_t)k + 1), area, 0, 15, 0.5,
                                 &c);
        shub_val_t child = shub_val_map();
        shub_pb_strf(b, &child, "name", "%s %s", c.first, victim->surname);
        shub_pb_str(b, &child, "dob", c.dob);
        shub_pb_push(b, &children, child);
    }
    return children;
}

static shub_val_t perpetrator_list(pb_t *b, uint64_t seed, const char *area)
{
    rng_t r;
    shub_rng_seed(&r, shub_rng_mix(seed ^ UINT64_C(0x70657270)));
    shub_val_t perps = shub_val_array();
    int n = shub_rng_chance(&r, 0.07) ? 2 : 1;
    for (int k = 0; k < n; k++) {
        person_t x;
        shub_profile_person_make(shub_rng_mix(seed ^ (UINT64_C(0xbad0) + (uint64_t)k)),
                                 area, 18, 65, k ? 0.4 : 0.12, &x);
        shub_val_t perp = shub_val_map();
        shub_pb_str(b, &perp, "name", x.name);
        shub_pb_str(b, &perp, "dob", x.dob);
        shub_pb_str(b, &perp, "relationship",
                    k ? shub_rng_pick(&r, relationships + 7, 3)
                      : PICK(&r, relationships));
        shub_pb_push(b, &perps, perp);
    }
    return perps;
}

static int fire_referral(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                         void *ctx)
{
    police_t *st = p->state;
    stream_t *s = &p->streams[S_REFERRAL];
    rng_t *r = &s->rng;
    if (st->n == st->cap && st->cap < PROFILE_MAX_RECORDS) {
        size_t cap = st->cap ? st->cap * 2 : 256;
        victim_t *v = shub_realloc(st->victims, cap * sizeof *v);
        if (!v)
            return SHUB_ENOMEM;
        st->victims = v;
        st->cap = cap;
    }

    victim_t v;
    size_t idx = SIZE_MAX;
    if (st->n && shub_rng_chance(r, p->sc.marac.repeat)) {
        idx = (size_t)shub_rng_below(r, st->n);
        v = st->victims[idx];
    } else {
        v = (victim_t){.seed = shub_rng_next(r),
                       .area = shub_profile_stream_area(s),
                       .last_referral_ms = INT64_MIN};
    }
    bool repeat = idx != SIZE_MAX && job->due_ms - v.last_referral_ms <= 365 * MS_DAY;
    person_t victim;
    shub_profile_person_make(v.seed, v.area, 16, 70, 0.86, &victim);
    rng_t pr; /* what belongs to the person, not to this incident */
    shub_rng_seed(&pr, shub_rng_mix(v.seed ^ UINT64_C(0x73616665)));

    int dash;
    bool judgement = false, escalation = false;
    double u = shub_rng_unit(r);
    if (u < 0.72) {
        double x = shub_rng_unit(r);
        dash = 14 + (int)(x * x * 11); /* most high-risk scores sit just above 14 */
    } else if (u < 0.88) {
        dash = (int)shub_rng_range(r, 8, 13);
        judgement = true;
    } else {
        dash = (int)shub_rng_range(r, 6, 13);
        escalation = true;
    }
    bool consent = shub_rng_chance(r, p->sc.marac.consent_given);
    char incident_date[SHUB_TIME_DATE_TEXT], crime_ref[24], case_ref[40], code[8];
    shub_time_format_date(job->due_ms - shub_rng_range(r, 0, 2 * MS_DAY), incident_date);
    shub_profile_area_code(v.area, code);
    snprintf(crime_ref, sizeof crime_ref, "%.2s%06u/%02d", code,
             (unsigned)shub_rng_below(r, 1000000), shub_profile_year2(job->due_ms));
    snprintf(case_ref, sizeof case_ref, "%s-%02d-%06u", st->prefix,
             shub_profile_year2(job->due_ms), st->serial + 1);

    pb_t b = {.arena = shub_arena_new(4096)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), vm = shub_val_map(), addr = shub_val_map();
    shub_pb_str(&b, &vm, "name", victim.name);
    shub_pb_str(&b, &vm, "dob", victim.dob);
    shub_pb_str(&b, &vm, "gender", victim.gender);
    shub_pb_str(&b, &addr, "line1", victim.line1);
    shub_pb_str(&b, &addr, "postcode", victim.postcode);
    shub_pb_put(&b, &vm, "address", addr);
    shub_pb_str(&b, &vm, "phone", victim.phone);
    shub_pb_str(&b, &vm, "safe_contact", PICK(&pr, safe_contacts));
    shub_pb_put(&b, &payload, "victim", vm);
    shub_pb_put(&b, &payload, "perpetrators", perpetrator_list(&b, v.seed, v.area));
    shub_pb_put(&b, &payload, "children", child_list(&b, v.seed, &victim, v.area));

    shub_val_t risk = shub_val_map(), criteria = shub_val_array();
    shub_pb_int(&b, &risk, "dash_score", dash);
    if (dash >= 14)
        shub_pb_push_str(&b, &criteria, "dash");
    if (escalation)
        shub_pb_push_str(&b, &criteria, "escalation");
    if (judgement)
        shub_pb_push_str(&b, &criteria, "professional_judgement");
    if (repeat)
        shub_pb_push_str(&b, &criteria, "repeat");
    shub_pb_put(&b, &risk, "criteria", criteria);
    shub_pb_bool(&b, &risk, "repeat", repeat);
    shub_pb_put(&b, &payload, "risk", risk);

    shub_val_t incident = shub_val_map();
    shub_pb_str(&b, &incident, "date", incident_date);
    shub_pb_str(&b, &incident, "summary", PICK(r, summaries));
    shub_pb_str(&b, &incident, "crime_ref", crime_ref);
    shub_pb_put(&b, &payload, "incident", incident);

    person_t officer;
    shub_profile_person_make(shub_rng_next(r), v.area, 25, 55, 0.4, &officer);
    shub_val_t referrer = shub_val_map();
    shub_pb_strf(&b, &referrer, "officer", "PC %d %s", (int)shub_rng_range(r, 1000, 9999),
                 officer.surname);
    shub_pb_strf(&b, &referrer, "contact", "%s%03d", PICK(r, landlines),
                 (int)shub_rng_below(r, 1000));
    shub_pb_put(&b, &payload, "referrer", referrer);

    char to0[NAME_CAP + 8];
    snprintf(to0, sizeof to0, "marac@%s", v.area);
    const char *to[] = {to0};
    shub_event_t ev = {
        .type = "marac.referral",
        .occurred_ms = job->due_ms,
        .case_ref = case_ref,
        .subject_ref = victim.subject,
        .area = v.area,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = consent ? SHUB_CONSENT_GIVEN : SHUB_CONSENT_NOT_SOUGHT,
        .override = consent ? NULL : "risk-of-serious-harm",
        .payload = payload,
    };
    int rc = shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
    if (rc)
        return rc;

    st->serial++;
    if (idx != SIZE_MAX) {
        st->victims[idx].last_referral_ms = job->due_ms;
    } else if (st->n < st->cap) {
        v.last_referral_ms = job->due_ms;
        st->victims[st->n++] = v;
    }
    (void)shub_profile_stream_next(p, S_REFERRAL, S_REFERRAL,
                                   job->due_ms); /* room reserved by tick */
    return 0;
}

/* ---- missing.report and custody.arrest_referral ------------------------- */

static int fire_missing(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                        void *ctx)
{
    police_t *st = p->state;
    stream_t *s = &p->streams[S_MISSING];
    rng_t *r = &s->rng;
    const char *area = shub_profile_stream_area(s);
    person_t who;
    if (shub_rng_chance(r, 0.6)) /* most missing episodes are children, often from care */
        shub_profile_person_make(shub_rng_next(r), area, 12, 17, 0.5, &who);
    else
        shub_profile_person_make(shub_rng_next(r), area, 18, 80, 0.45, &who);
    double u = shub_rng_unit(r);
    const char *level = u < 0.5 ? "low" : u < 0.85 ? "medium" : "high";
    char case_ref[40];
    snprintf(case_ref, sizeof case_ref, "%s-MIS-%02d-%06u", st->prefix,
             shub_profile_year2(job->due_ms), st->serial + 1);

    pb_t b = {.arena = shub_arena_new(1024)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), person = shub_val_map();
    shub_pb_str(&b, &person, "name", who.name);
    shub_pb_str(&b, &person, "dob", who.dob);
    shub_pb_put(&b, &payload, "person", person);
    shub_pb_str(&b, &payload, "risk_level", level);
    char to0[NAME_CAP + 20];
    snprintf(to0, sizeof to0, "local-authority@%s", area);
    const char *to[] = {to0};
    shub_event_t ev = {
        .type = "missing.report",
        .occurred_ms = job->due_ms,
        .case_ref = case_ref,
        .subject_ref = who.subject,
        .area = area,
        .purpose = "safeguarding",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .override = "risk-of-serious-harm",
        .payload = payload,
    };
    int rc = shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
    if (rc)
        return rc;
    st->serial++;
    (void)shub_profile_stream_next(p, S_MISSING, S_MISSING,
                                   job->due_ms); /* room reserved by tick */
    return 0;
}

static int fire_custody(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                        void *ctx)
{
    police_t *st = p->state;
    stream_t *s = &p->streams[S_CUSTODY];
    rng_t *r = &s->rng;
    const char *area = shub_profile_stream_area(s);
    person_t who;
    shub_profile_person_make(shub_rng_next(r), area, 18, 55, 0.2, &who);
    char when[SHUB_TIME_DATE_TEXT], case_ref[40];
    shub_time_format_date(job->due_ms + shub_rng_range(r, 1, 5) * MS_DAY, when);
    snprintf(case_ref, sizeof case_ref, "%s-CUS-%02d-%06u", st->prefix,
             shub_profile_year2(job->due_ms), st->serial + 1);

    pb_t b = {.arena = shub_arena_new(1024)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), det = shub_val_map(), assess = shub_val_map();
    shub_pb_str(&b, &det, "name", who.name);
    shub_pb_str(&b, &det, "dob", who.dob);
    shub_pb_put(&b, &payload, "detainee", det);
    shub_pb_str(&b, &payload, "trigger_offence", PICK(r, trigger_offences));
    shub_pb_str(&b, &payload, "test_result", PICK(r, test_results));
    shub_pb_str(&b, &assess, "date", when);
    shub_pb_strf(&b, &assess, "location", "%s drug and alcohol service", area);
    shub_pb_put(&b, &payload, "assessment", assess);
    char to0[NAME_CAP + 12];
    snprintf(to0, sizeof to0, "treatment@%s", area);
    const char *to[] = {to0};
    shub_event_t ev = {
        .type = "custody.arrest_referral",
        .occurred_ms = job->due_ms,
        .case_ref = case_ref,
        .subject_ref = who.subject,
        .area = area,
        .purpose = "arrest-referral",
        .basis = "dpa-2018-part3",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .override = "statutory-requirement",
        .payload = payload,
    };
    int rc = shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
    if (rc)
        return rc;
    st->serial++;
    (void)shub_profile_stream_next(p, S_CUSTODY, S_CUSTODY,
                                   job->due_ms); /* room reserved by tick */
    return 0;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    switch (job->what) {
    case S_REFERRAL:
        return fire_referral(p, job, emit, ctx);
    case S_MISSING:
        return fire_missing(p, job, emit, ctx);
    case S_CUSTODY:
        return fire_custody(p, job, emit, ctx);
    default:
        return 0;
    }
}

const profile_ops_t shub_profile_police_ops = {
    .kind = "police",
    .init = police_init,
    .fini = fini,
    .fire = fire,
    .receive = NULL,
};

const profile_ops_t shub_profile_custody_ops = {
    .kind = "custody",
    .init = custody_init,
    .fini = fini,
    .fire = fire,
    .receive = NULL,
};
