/*
 * profile_probation: a probation provider (the National Probation Service
 * for high-risk offenders, a CRC for the rest). Before a prisoner is
 * released into an area it sends prison.release_notice to the police and the
 * council of that area (`police@<area>`, `local-authority@<area>`): release
 * date and type, the address, licence conditions and, for offenders managed
 * under MAPPA, the category and level. The notice goes 7 to 28 days ahead of
 * the release date.
 *
 * Law-enforcement processing: purpose offender-management, legal basis DPA
 * 2018 Part 3; consent is not the basis and is not sought.
 *
 * Probation officers also refer the victims of the offenders they supervise
 * to the MARAC of the victim's area when the risk is high: probation's part
 * of the region's MARAC referrals (marac.sources; `origin` names the
 * providers that share it). Probation reacts to nothing it receives.
 */
#include "profile_internal.h"

#include <stdio.h>
#include <string.h>

enum { S_RELEASE = 0, J_MARAC = 1 };

static const char *const release_types[] = {
    "automatic-conditional-release",
    "parole",
    "home-detention-curfew",
    "sentence-expiry",
};
static const char *const conditions[] = {
    "reside at the approved address",
    "curfew 19:00-07:00 with electronic monitoring",
    "no contact with the named victim directly or indirectly",
    "exclusion zone around the victim's home area",
    "attend drug testing as directed",
    "disclose any new intimate relationship to the supervising officer",
    "do not use the internet without approval",
};
static const char *const offences[] = {
    "assault occasioning actual bodily harm against a former partner",
    "robbery of a commercial premises",
    "possession with intent to supply class A drugs",
    "controlling or coercive behaviour in an intimate relationship",
    "wounding with intent",
    "burglary of a dwelling",
};

static const char *const marac_summaries[] = {
    "Offender's partner disclosed threats and an assault during a home visit",
    "Licence breach: contact with the named victim, who disclosed a new assault",
};
static const referrer_t marac_referrer = {
    .judgement = 0.35,
    .escalation = 0.15,
    .summaries = marac_summaries,
    .n_summaries = sizeof marac_summaries / sizeof marac_summaries[0],
};

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    int rc = shub_profile_stream_init(p, S_RELEASE, "prison.release_notice",
                                      &p->sc.probation.releases,
                                      shub_profile_area_weights(p), true, S_RELEASE);
    return rc ? rc : shub_profile_refseq_init(p, J_MARAC);
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    if (job->what == J_MARAC)
        return shub_profile_referral_fire_new(p, job, "Probation officer",
                                              &marac_referrer, emit, ctx);
    stream_t *s = &p->streams[S_RELEASE];
    rng_t *r = &s->rng;
    const char *area = shub_profile_stream_area(s);
    person_t who;
    shub_profile_person_make(shub_rng_next(r), area, 19, 65, 0.1, &who);
    char release[SHUB_TIME_DATE_TEXT], pnc[20], case_ref[40];
    shub_time_format_date(job->due_ms + shub_rng_range(r, 7, 28) * MS_DAY, release);
    snprintf(pnc, sizeof pnc, "%02d/%07u%c", (int)shub_rng_range(r, 0, 25),
             (unsigned)shub_rng_below(r, 10000000), (char)('A' + shub_rng_below(r, 26)));
    snprintf(case_ref, sizeof case_ref, "PRB-%02d-%06u", shub_profile_year2(job->due_ms),
             (unsigned)shub_rng_below(r, 1000000));
    bool mappa = shub_rng_chance(r, p->sc.probation.mappa);
    int category = (int)shub_rng_range(r, 1, 3),
        level = shub_rng_chance(r, 0.8) ? 1 : (int)shub_rng_range(r, 2, 3);
    const char *type = PICK(r, release_types);
    const char *offence = PICK(r, offences);
    size_t n_cond = (size_t)shub_rng_range(r, 2, 4);
    size_t first = (size_t)shub_rng_below(r, sizeof conditions / sizeof conditions[0]);

    pb_t b = {.arena = shub_arena_new(2048)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), off = shub_val_map(), rel = shub_val_map();
    shub_val_t addr = shub_val_map(), cond = shub_val_array();
    shub_pb_str(&b, &off, "name", who.name);
    shub_pb_str(&b, &off, "dob", who.dob);
    shub_pb_str(&b, &off, "pnc_id", pnc);
    shub_pb_put(&b, &payload, "offender", off);
    shub_pb_str(&b, &rel, "date", release);
    shub_pb_str(&b, &rel, "type", type);
    shub_pb_str(&b, &rel, "area", area);
    shub_pb_str(&b, &addr, "line1", who.line1);
    shub_pb_str(&b, &addr, "postcode", who.postcode);
    shub_pb_put(&b, &rel, "address", addr);
    shub_pb_put(&b, &payload, "release", rel);
    for (size_t k = 0; k < n_cond;
         k++) /* consecutive entries: never the same one twice */
        shub_pb_push_str(
            &b, &cond,
            conditions[(first + k) % (sizeof conditions / sizeof conditions[0])]);
    shub_pb_put(&b, &payload, "licence_conditions", cond);
    if (mappa) {
        shub_val_t m = shub_val_map();
        shub_pb_int(&b, &m, "category", category);
        shub_pb_int(&b, &m, "level", level);
        shub_pb_put(&b, &payload, "mappa", m);
    }
    shub_pb_str(&b, &payload, "offence_summary", offence);
    shub_event_t ev = {
        .type = "prison.release_notice",
        .occurred_ms = job->due_ms,
        .case_ref = case_ref,
        .subject_ref = who.subject,
        .area = area,
        .purpose = "offender-management",
        .basis = "dpa-2018-part3",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .payload = payload,
    };
    int rc = shub_profile_emit_to_area(&b, &ev, "police", "local-authority", emit, ctx);
    if (rc)
        return rc;
    (void)shub_profile_stream_next(p, S_RELEASE, S_RELEASE,
                                   job->due_ms); /* room reserved by tick */
    return 0;
}

const profile_ops_t shub_profile_probation_ops = {
    .kind = "probation",
    .init = init,
    .fini = NULL,
    .fire = fire,
    .receive = NULL,
};
