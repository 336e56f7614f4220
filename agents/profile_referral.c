/*
 * profile_referral: the MARAC referral form, as every kind of partner fills
 * it in (profile_internal.h), and the people a referrer remembers.
 *
 * The region has one referral form and one route, whoever refers: police,
 * local authority, health, IDVA or probation. Only the referrer's part
 * differs (who signs it, whether there is a crime reference, how often the
 * referral rests on a DASH score of 14 or more rather than on professional
 * judgement or escalation); the rest is built here, so the MARAC reads every
 * referral alike.
 *
 * The risk section carries, besides the DASH score and criteria, the three
 * factors the partnership board asked to count: coercive control, a knife
 * used in the incident, and conflict over child contact. They are yes/no
 * answers from the DASH checklist and go as booleans under `risk.factors`,
 * codes the agreement classes anonymous and records as report facts, so the
 * board report counts them without any payload value leaving the hub.
 * Coercive control and child contact belong to the relationship (drawn from
 * the family's seed, the same at every referral); the knife to the incident.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

/* Rates of the factors among high-risk referrals. Coercive control runs
 * through most high-risk cases; a knife is used in a minority of incidents;
 * child contact is a source of conflict in about half of the families with
 * children. The scenario can be given keys for them if a region has its own
 * figures. */
#define COERCIVE_CONTROL   0.62
#define KNIFE_USED         0.11
#define CHILD_CONTACT      0.45
#define HAS_CHILDREN       0.55
#define SECOND_PERPETRATOR 0.07

static const char *const relationships[] = {
    "ex-partner", "partner",    "husband", "wife",   "boyfriend",
    "girlfriend", "ex-husband", "son",     "father", "brother",
};
static const char *const safe_contacts[] = {
    "text first; no voicemail",
    "call via sister, ask for a callback",
    "email only",
    "call weekdays 10:00-14:00 only",
};

/* ---- people ------------------------------------------------------------ */

int shub_victims_reserve(victims_t *vs)
{
    void *v = vs->v;
    int rc = shub_profile_grow(&v, &vs->cap, vs->n, sizeof *vs->v, 256);
    vs->v = v;
    return rc;
}

void shub_victims_free(victims_t *vs)
{
    shub_free(vs->v);
    memset(vs, 0, sizeof *vs);
}

victim_t *shub_victims_find(victims_t *vs, const char *subject)
{
    for (size_t i = 0; subject && i < vs->n; i++)
        if (strcmp(vs->v[i].subject, subject) == 0)
            return &vs->v[i];
    return NULL;
}

static bool victim_in(const void *rec, const char *area)
{
    const victim_t *v = rec;
    return strcmp(v->area, area) == 0;
}

victim_t *shub_victims_pick(victims_t *vs, const char *area, rng_t *r)
{
    return shub_profile_pick_in_area(vs->v, vs->n, sizeof *vs->v, area, victim_in, r);
}

void shub_victim_person(const victim_t *v, person_t *out)
{
    shub_profile_person_make(v->seed, v->first_area, 16, 70, 0.86, out);
    if (v->moves) {
        rng_t r;
        shub_rng_seed(&r, shub_rng_mix(v->seed ^ (UINT64_C(0x6d6f7665) + v->moves)));
        shub_profile_address_make(&r, v->area, out->line1, out->postcode);
    }
}

/* ---- the form ---------------------------------------------------------- */

static shub_val_t child_list(pb_t *b, uint64_t seed, const person_t *victim,
                             const char *area, int n)
{
    shub_val_t children = shub_val_array();
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
    int n = shub_rng_chance(&r, SECOND_PERPETRATOR) ? 2 : 1;
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

static void put_if(pb_t *b, shub_val_t *map, const char *key, const char *s)
{
    if (s && *s)
        shub_pb_str(b, map, key, s);
}

int shub_profile_referral_emit(shub_profile_t *p, int64_t at_ms, rng_t *r,
                               const person_t *victim, const char *area,
                               uint64_t family_seed, bool family, const char *case_ref,
                               const referrer_t *who, bool repeat,
                               shub_profile_emit_fn *emit, void *ctx)
{
    rng_t fam; /* what belongs to the family, not to this incident */
    shub_rng_seed(&fam, shub_rng_mix(family_seed ^ UINT64_C(0x73616665)));
    const char *safe_contact = PICK(&fam, safe_contacts);
    bool coercive = shub_rng_chance(&fam, COERCIVE_CONTROL);
    int n_children = family && shub_rng_chance(&fam, HAS_CHILDREN)
                         ? (int)shub_rng_range(&fam, 1, 3)
                         : 0;
    bool contact_conflict = n_children > 0 && shub_rng_chance(&fam, CHILD_CONTACT);

    int dash;
    bool judgement = false, escalation = false;
    double u = shub_rng_unit(r);
    if (u < who->judgement) {
        dash = (int)shub_rng_range(r, 8, 13);
        judgement = true;
    } else if (u < who->judgement + who->escalation) {
        dash = (int)shub_rng_range(r, 6, 13);
        escalation = true;
    } else {
        double x = shub_rng_unit(r);
        dash = 14 + (int)(x * x * 11); /* most high-risk scores sit just above 14 */
    }
    bool knife = shub_rng_chance(r, KNIFE_USED);
    bool consent = shub_rng_chance(r, p->sc.marac.consent_given);
    char incident_date[SHUB_TIME_DATE_TEXT];
    shub_time_format_date(at_ms - shub_rng_range(r, 0, 2 * MS_DAY), incident_date);
    const char *summary =
        who->n_summaries ? who->summaries[shub_rng_below(r, who->n_summaries)] : "";

    pb_t b = {.arena = shub_arena_new(4096)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), vm = shub_val_map(), addr = shub_val_map();
    shub_pb_str(&b, &vm, "name", victim->name);
    put_if(&b, &vm, "dob", victim->dob);
    put_if(&b, &vm, "gender", victim->gender);
    if (victim->line1[0]) {
        shub_pb_str(&b, &addr, "line1", victim->line1);
        shub_pb_str(&b, &addr, "postcode", victim->postcode);
        shub_pb_put(&b, &vm, "address", addr);
    }
    put_if(&b, &vm, "phone", victim->phone);
    shub_pb_str(&b, &vm, "safe_contact", safe_contact);
    shub_pb_put(&b, &payload, "victim", vm);
    shub_pb_put(&b, &payload, "perpetrators", perpetrator_list(&b, family_seed, area));
    shub_pb_put(&b, &payload, "children",
                child_list(&b, family_seed, victim, area, n_children));

    shub_val_t risk = shub_val_map(), criteria = shub_val_array(),
               factors = shub_val_map();
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
    shub_pb_bool(&b, &factors, "coercive_control", coercive);
    shub_pb_bool(&b, &factors, "knife_used", knife);
    shub_pb_bool(&b, &factors, "child_contact_conflict", contact_conflict);
    shub_pb_put(&b, &risk, "factors", factors);
    shub_pb_put(&b, &payload, "risk", risk);

    shub_val_t incident = shub_val_map();
    shub_pb_str(&b, &incident, "date", incident_date);
    shub_pb_str(&b, &incident, "summary", summary);
    put_if(&b, &incident, "crime_ref", who->crime_ref);
    shub_pb_put(&b, &payload, "incident", incident);
    shub_val_t referrer = shub_val_map();
    shub_pb_str(&b, &referrer, "officer", who->officer);
    shub_pb_str(&b, &referrer, "contact", who->contact);
    shub_pb_put(&b, &payload, "referrer", referrer);

    shub_event_t ev = {
        .type = "marac.referral",
        .occurred_ms = at_ms,
        .case_ref = case_ref,
        .subject_ref = victim->subject[0] ? victim->subject : NULL,
        .area = area,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = consent ? SHUB_CONSENT_GIVEN : SHUB_CONSENT_NOT_SOUGHT,
        .override = consent ? NULL : "risk-of-serious-harm",
        .payload = payload,
    };
    return shub_profile_emit_to_area(&b, &ev, "marac", NULL, emit, ctx);
}

void shub_profile_referral_sign(const shub_profile_t *p, const job_t *job, rng_t *r,
                                const char *role, const char *area,
                                referral_signature_t *out)
{
    person_t staff;
    char prefix[12];
    shub_profile_person_make(shub_rng_next(r), area, 24, 60, 0.7, &staff);
    shub_profile_id_prefix(p->id, prefix, sizeof prefix);
    snprintf(out->officer, sizeof out->officer, "%s %s", role, staff.name);
    snprintf(out->contact, sizeof out->contact, "07700 900%03d",
             (int)shub_rng_below(r, 1000));
    snprintf(out->case_ref, sizeof out->case_ref, "%s-MR-%02d-%02u%04lld", prefix,
             shub_profile_year2(job->due_ms), (unsigned)job->ref % 100,
             (long long)(job->arg % 10000));
}

int shub_profile_referral_fire_new(shub_profile_t *p, const job_t *job, const char *role,
                                   const referrer_t *how, shub_profile_emit_fn *emit,
                                   void *ctx)
{
    const char *area = shub_profile_refseq_area(p, job);
    if (!area)
        return 0;
    rng_t r = shub_profile_refseq_rng(p, job);
    victim_t v;
    memset(&v, 0, sizeof v);
    v.seed = shub_rng_next(&r);
    shub_str_copy(v.first_area, sizeof v.first_area, area);
    shub_str_copy(v.area, sizeof v.area, area);
    person_t victim;
    shub_victim_person(&v, &victim);
    referral_signature_t sig;
    shub_profile_referral_sign(p, job, &r, role, area, &sig);
    referrer_t who = *how;
    who.officer = sig.officer;
    who.contact = sig.contact;
    int rc = shub_profile_referral_emit(p, job->due_ms, &r, &victim, area, v.seed, true,
                                        sig.case_ref, &who, false, emit, ctx);
    if (rc)
        return rc;
    (void)shub_profile_refseq_next(p, job); /* room reserved by tick */
    return 0;
}
