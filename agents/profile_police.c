/*
 * profile_police: a police force (kind police) and its custody suites (kind
 * custody). Police raise a MARAC referral for each high-risk domestic abuse
 * incident, to the MARAC of the area where the victim lives now, and report
 * missing people to the council of their area; custody refers detainees who
 * test positive to the arrest referral (treatment) service.
 *
 * Referrals come as one sequence per area (profile.c: the police's share of
 * marac.sources in each area it serves). The force remembers every victim
 * it has referred (the seed that regenerates her, where she lives now, the
 * last referral), so a share of referrals are about someone referred before
 * who lives in that area now, with the same subject reference; one within
 * 12 months of the last (shub_profile_is_repeat) is flagged a repeat.
 *
 * Where she lives now is what the force has been told: a MARAC that
 * transfers a case sends the force subject.moved_area with the new area
 * (the copy to the police carries it; the old area's other partners get
 * only that she left), and the force moves her in its records, so the next
 * referral goes to the MARAC of her current area. A move out of the force
 * area takes her out of its referrals: an incident there is the new force's.
 *
 * Police act on the MARAC actions they own (profile_action.c) and on move
 * notices; decisions and release notices go into the force's case system,
 * not back onto the wire.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

/* Job codes: 0 is a MARAC referral (the area sequences); the others are
 * also the index of their origination stream. */
enum { J_REFERRAL = 0, S_MISSING = 1, S_CUSTODY = 2 };

typedef struct police {
    victims_t victims; /* everyone referred so far, up to PROFILE_MAX_RECORDS */
    uint32_t serial;   /* for case references */
    char prefix[12];   /* "WMP" from "wmp-custody" */
} police_t;

static const char *const summaries[] = {
    "Assault at home after an argument; visible injuries to face and arms",
    "Threats to kill made by phone after separation; breach of non-molestation order",
    "Non-fatal strangulation disclosed; children in the house at the time",
    "Forced entry to the victim's home; door and victim's phone damaged",
    "Stalking: repeated unwanted contact and following the victim to work",
    "Controlling and coercive behaviour disclosed, including control of money",
    "Assault with a weapon during an argument over child contact",
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
    if (rc == 0 && !custody)
        rc = shub_profile_refseq_init(p, J_REFERRAL);
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
        shub_victims_free(&st->victims);
    shub_free(st);
    p->state = NULL;
}

/* ---- marac.referral ---------------------------------------------------- */

static int fire_referral(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                         void *ctx)
{
    police_t *st = p->state;
    const char *area = shub_profile_refseq_area(p, job);
    if (!area)
        return 0;
    int rc = shub_victims_reserve(&st->victims);
    if (rc == SHUB_ENOMEM)
        return rc; /* SHUB_EBUSY: refer, but remember no one new */
    rng_t r = shub_profile_refseq_rng(p, job);
    victim_t *known = shub_rng_chance(&r, p->sc.marac.repeat)
                          ? shub_victims_pick(&st->victims, area, &r)
                          : NULL;
    victim_t fresh;
    memset(&fresh, 0, sizeof fresh);
    fresh.seed = shub_rng_next(&r);
    fresh.last_referral_ms = INT64_MIN;
    shub_str_copy(fresh.first_area, sizeof fresh.first_area, area);
    shub_str_copy(fresh.area, sizeof fresh.area, area);
    const victim_t *v = known ? known : &fresh;
    bool repeat = shub_profile_is_repeat(v->last_referral_ms, job->due_ms);
    person_t victim, officer;
    shub_victim_person(v, &victim);
    if (!known)
        shub_str_copy(fresh.subject, sizeof fresh.subject, victim.subject);

    char code[8], crime_ref[24], case_ref[40], name[64], contact[24];
    shub_profile_area_code(area, code);
    snprintf(crime_ref, sizeof crime_ref, "%.2s%06u/%02d", code,
             (unsigned)shub_rng_below(&r, 1000000), shub_profile_year2(job->due_ms));
    snprintf(case_ref, sizeof case_ref, "%s-%02d-%06u", st->prefix,
             shub_profile_year2(job->due_ms), st->serial + 1);
    shub_profile_person_make(shub_rng_next(&r), area, 25, 55, 0.4, &officer);
    snprintf(name, sizeof name, "PC %d %s", (int)shub_rng_range(&r, 1000, 9999),
             officer.surname);
    snprintf(contact, sizeof contact, "%s%03d", PICK(&r, landlines),
             (int)shub_rng_below(&r, 1000));
    const referrer_t who = {
        .officer = name,
        .contact = contact,
        .crime_ref = crime_ref,
        .judgement = 0.16,
        .escalation = 0.12,
        .summaries = summaries,
        .n_summaries = sizeof summaries / sizeof summaries[0],
    };
    rc = shub_profile_referral_emit(p, job->due_ms, &r, &victim, area, v->seed, true,
                                    case_ref, &who, repeat, emit, ctx);
    if (rc)
        return rc;

    st->serial++;
    if (known) {
        known->last_referral_ms = job->due_ms;
    } else if (st->victims.n < st->victims.cap) {
        fresh.last_referral_ms = job->due_ms;
        st->victims.v[st->victims.n++] = fresh;
    }
    (void)shub_profile_refseq_next(p, job); /* room reserved by tick */
    return 0;
}

/* ---- what the force hears ---------------------------------------------- */

/* subject.moved_area: the police copy names the new area. */
static int receive(shub_profile_t *p, int64_t now, const char *from,
                   const shub_event_t *ev)
{
    (void)now;
    (void)from;
    police_t *st = p->state;
    if (strcmp(ev->type, "subject.moved_area") != 0)
        return 0;
    const char *to = shub_val_str_at(&ev->payload, "new_area");
    victim_t *v = shub_victims_find(&st->victims, ev->subject_ref);
    if (!v || !to || !shub_is_name(to) || strlen(to) >= NAME_CAP ||
        strcmp(v->area, to) == 0)
        return 0;
    shub_str_copy(v->area, sizeof v->area, to);
    v->moves++;
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
    int rc = shub_profile_emit_to_area(&b, &ev, "local-authority", NULL, emit, ctx);
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
    int rc = shub_profile_emit_to_area(&b, &ev, "treatment", NULL, emit, ctx);
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
    case J_REFERRAL:
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
    .receive = receive,
};

const profile_ops_t shub_profile_custody_ops = {
    .kind = "custody",
    .init = custody_init,
    .fini = fini,
    .fire = fire,
    .receive = NULL,
};
