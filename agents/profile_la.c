/*
 * profile_la: a council (kind local-authority): children's services with
 * its MASH, community safety and housing, in one organisation as in the
 * partnership's registry.
 *
 * It answers every mash.referral with a mash.decision to the referrer
 * (reply_to the referral) within one simulated working day: the decision
 * falls at a random point of the next 24 hours of weekday time, so a
 * referral on Friday afternoon is decided by Monday afternoon. It also
 * originates a few mash.referrals of its own: a school or housing officer of
 * this council worried about a child who lives in a neighbouring area,
 * referred to that area's MASH.
 *
 * Its social workers and housing officers also refer high-risk victims they
 * meet to the MARAC of the victim's area: the councils' part of the region's
 * MARAC referrals (marac.sources), one sequence per area it serves, and it
 * answers the MARAC actions it owns (profile_action.c).
 *
 * Missing-person reports, release notices, ISTV batches and moved-area
 * notices are received and kept by the case systems behind the council;
 * nothing goes back on the wire for them.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

enum { S_MASH = 0 }; /* the origination stream (job code 0) */
enum { J_DECIDE = 1, J_MARAC = 2 };

typedef struct referral {
    char from[NAME_CAP];
    char subject[REF_CAP];
    char area[NAME_CAP];
    char case_ref[40];
    shub_consent_t consent;
    char override[NAME_CAP];
    int decision; /* index into decisions[] */
} referral_t;

typedef struct la {
    referral_t *refs;
    size_t n, cap;
    uint32_t serial, sent;
    char prefix[12]; /* "BCC" from "bcc" */
} la_t;

static const char *const decisions[] = {
    "strategy-discussion",
    "child-and-family-assessment",
    "early-help",
    "no-further-action",
};
static const char *const reasons[] = {
    "reasonable cause to suspect significant harm; strategy discussion with police today",
    "child may be in need; social worker to complete an assessment",
    "needs met by early help; family support worker allocated",
    "no role for children's services; advice given to the referrer",
};
static const char *const concerns[] = {
    "child told a teacher there is fighting at home most nights",
    "repeated absence from school and signs of neglect",
    "unexplained bruising seen on the child's arms",
    "mother's partner has convictions for violence and has moved in",
    "child missing overnight three times this month",
};
static const char *const urgencies[] = {"immediate", "same-day", "routine"};
static const char *const marac_summaries[] = {
    ("Disclosed to a social worker during a child and family assessment: assaults and "
     "threats at home"),
    "Presented to housing as homeless after fleeing violence; threats to kill since",
    "School raised concerns; mother disclosed controlling behaviour and a recent assault",
};
static const referrer_t marac_referrer = {
    .judgement = 0.25,
    .escalation = 0.1,
    .summaries = marac_summaries,
    .n_summaries = sizeof marac_summaries / sizeof marac_summaries[0],
};

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    la_t *st = shub_calloc(1, sizeof *st);
    if (!st)
        return SHUB_ENOMEM;
    p->state = st;
    shub_profile_id_prefix(p->id, st->prefix, sizeof st->prefix);
    int rc = shub_profile_stream_init(p, S_MASH, "mash.referral", &p->sc.mash,
                                      shub_profile_area_weights(p), true, S_MASH);
    return rc ? rc : shub_profile_refseq_init(p, J_MARAC);
}

static void fini(shub_profile_t *p)
{
    la_t *st = p->state;
    if (st)
        shub_free(st->refs);
    shub_free(st);
    p->state = NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static int receive(shub_profile_t *p, int64_t now, const char *from,
                   const shub_event_t *ev)
{
    if (strcmp(ev->type, "mash.referral") != 0)
        return 0;
    la_t *st = p->state;
    void *refs = st->refs;
    int rc = shub_profile_grow(&refs, &st->cap, st->n, sizeof *st->refs, 32);
    st->refs = refs;
    if (rc == 0)
        rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;

    referral_t *r = &st->refs[st->n];
    memset(r, 0, sizeof *r);
    shub_str_copy(r->from, sizeof r->from, from);
    shub_str_copy(r->subject, sizeof r->subject, ev->subject_ref);
    shub_str_copy(r->area, sizeof r->area,
                  shub_profile_serves(p, ev->area) || p->n_areas == 0 ? ev->area
                                                                      : p->areas[0]);
    r->consent = ev->consent ? ev->consent : SHUB_CONSENT_NOT_SOUGHT;
    shub_str_copy(r->override, sizeof r->override, ev->override);
    char code[8];
    shub_profile_area_code(r->area, code);
    snprintf(r->case_ref, sizeof r->case_ref, "MASH-%s-%02d-%04u", code,
             shub_profile_year2(now), ++st->serial);

    /* The more urgent the referral, the likelier a statutory response. */
    const char *urgency = shub_val_str_at(&ev->payload, "urgency");
    double u = shub_rng_unit(&p->react);
    if (urgency && strcmp(urgency, "immediate") == 0)
        r->decision = u < 0.7 ? 0 : 1;
    else if (urgency && strcmp(urgency, "same-day") == 0)
        r->decision = u < 0.35 ? 0 : u < 0.8 ? 1 : 2;
    else
        r->decision = u < 0.1 ? 0 : u < 0.4 ? 1 : u < 0.8 ? 2 : 3;
    int64_t due = shub_profile_add_working_time(
        now, shub_rng_range(&p->react, 30 * MS_MINUTE, 23 * MS_HOUR));
    shub_profile_schedule(p, due, J_DECIDE, (uint32_t)st->n++, 0, &ev->id);
    return 0;
}

/* ---- firing ------------------------------------------------------------ */

static int fire_decision(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                         void *ctx)
{
    la_t *st = p->state;
    if (job->ref >= st->n)
        return 0;
    const referral_t *r = &st->refs[job->ref];
    pb_t b = {.arena = shub_arena_new(1024)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map();
    shub_pb_str(&b, &payload, "decision", decisions[r->decision]);
    shub_pb_str(&b, &payload, "reason", reasons[r->decision]);
    const char *to[] = {r->from};
    shub_event_t ev = {
        .type = "mash.decision",
        .occurred_ms = job->due_ms,
        .case_ref = r->case_ref,
        .subject_ref = r->subject[0] ? r->subject : NULL,
        .area = r->area,
        .purpose = "safeguarding",
        .basis = "uk-gdpr-6-1-e",
        .consent = r->consent,
        .override = r->override[0] ? r->override : NULL,
        .reply_to = job->has_reply ? &job->reply_to : NULL,
        .payload = payload,
    };
    int rc = shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
    return rc;
}

/* A neighbouring area for the child: any area of the partnership this
 * council does not serve (external areas excluded). NULL if none. */
static const char *neighbour(shub_profile_t *p, rng_t *r)
{
    const char *cand[SC_MAX_AREAS];
    size_t n = 0;
    for (size_t i = 0; i < p->n_all_areas; i++) {
        bool external = false;
        for (size_t e = 0; e < p->sc.marac.external_areas.n; e++)
            external = external ||
                       strcmp(p->all_areas[i], p->sc.marac.external_areas.item[e]) == 0;
        if (!external && !shub_profile_serves(p, p->all_areas[i]))
            cand[n++] = p->all_areas[i];
    }
    return n ? cand[shub_rng_below(r, n)] : NULL;
}

static int fire_referral(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                         void *ctx)
{
    la_t *st = p->state;
    rng_t *r = &p->streams[S_MASH].rng;
    const char *area = neighbour(p, r);
    int rc = 0;
    if (area) {
        person_t child, parent, other;
        uint64_t family = shub_rng_next(r);
        shub_profile_person_make(family, area, 0, 15, 0.5, &child);
        shub_profile_person_make(shub_rng_mix(family ^ 1), area, 22, 45, 0.8, &parent);
        shub_profile_person_make(shub_rng_mix(family ^ 2), area, 22, 50, 0.2, &other);
        bool partner = shub_rng_chance(r, 0.6);
        bool consent = shub_rng_chance(r, 0.5);
        double u = shub_rng_unit(r);
        const char *urgency = urgencies[u < 0.1 ? 0 : u < 0.4 ? 1 : 2];
        const char *concern = PICK(r, concerns);
        char case_ref[40];
        snprintf(case_ref, sizeof case_ref, "%s-REF-%02d-%04u", st->prefix,
                 shub_profile_year2(job->due_ms), st->sent + 1);

        pb_t b = {.arena = shub_arena_new(1024)};
        if (!b.arena)
            return SHUB_ENOMEM;
        shub_val_t payload = shub_val_map(), cm = shub_val_map(),
                   household = shub_val_array();
        shub_pb_strf(&b, &cm, "name", "%s %s", child.first, parent.surname);
        shub_pb_str(&b, &cm, "dob", child.dob);
        shub_pb_put(&b, &payload, "child", cm);
        shub_pb_str(&b, &payload, "concern", concern);
        shub_val_t m = shub_val_map();
        shub_pb_str(&b, &m, "name", parent.name);
        shub_pb_str(&b, &m, "relationship",
                    strcmp(parent.gender, "female") == 0 ? "mother" : "father");
        shub_pb_push(&b, &household, m);
        if (partner) {
            shub_val_t o = shub_val_map();
            shub_pb_str(&b, &o, "name", other.name);
            shub_pb_str(&b, &o, "relationship", "parent's partner");
            shub_pb_push(&b, &household, o);
        }
        shub_pb_put(&b, &payload, "household", household);
        shub_pb_str(&b, &payload, "urgency", urgency);
        shub_event_t ev = {
            .type = "mash.referral",
            .occurred_ms = job->due_ms,
            .case_ref = case_ref,
            .subject_ref = child.subject,
            .area = area,
            .purpose = "safeguarding",
            .basis = "uk-gdpr-6-1-e",
            .consent = consent ? SHUB_CONSENT_GIVEN : SHUB_CONSENT_NOT_SOUGHT,
            .override = consent ? NULL : "risk-of-significant-harm",
            .payload = payload,
        };
        rc = shub_profile_emit_to_area(&b, &ev, "local-authority", NULL, emit, ctx);
        if (rc)
            return rc;
        st->sent++;
    }
    (void)shub_profile_stream_next(p, S_MASH, S_MASH,
                                   job->due_ms); /* room reserved by tick */
    return 0;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    switch (job->what) {
    case J_DECIDE:
        return fire_decision(p, job, emit, ctx);
    case J_MARAC:
        return shub_profile_referral_fire_new(p, job, "Social worker", &marac_referrer,
                                              emit, ctx);
    default:
        return fire_referral(p, job, emit, ctx);
    }
}

const profile_ops_t shub_profile_la_ops = {
    .kind = "local-authority",
    .init = init,
    .fini = fini,
    .fire = fire,
    .receive = receive,
};
