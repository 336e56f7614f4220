/*
 * profile_health: an acute trust's emergency department, sharing assault
 * data under ISTV (Information Sharing to Tackle Violence). At the end of
 * each period (calendar month, or week; the last period ends with the
 * scenario) it sends one ae.istv.batch per area it serves to that area's
 * community safety partnership (`local-authority@<area>`) and to the
 * Violence Reduction Partnership (`partnership@<area>`).
 *
 * The ISTV data set is anonymous, but what an A&E system exports is not:
 * each assault here carries a `patient` sub-map (name, NHS number, date of
 * birth) exactly so that the ISTV agreement has something to strip, and the
 * audit log something to show stripped. NHS numbers come from the 999 range
 * kept for testing, with a valid check digit.
 *
 * Its emergency and maternity staff also refer high-risk victims of domestic
 * abuse they see to the MARAC of the victim's area: health's part of the
 * region's MARAC referrals (marac.sources), one sequence per area served;
 * and the trust answers the MARAC actions it owns (profile_action.c).
 * Nothing else it receives is acted on.
 */
#include "profile_internal.h"

#include <stdio.h>
#include <string.h>

#define ISTV_MAX_ASSAULTS 2000 /* per batch; well under the message item limit */

enum { J_BATCH = 1, J_MARAC = 2 };

static const char *const methods[] = {
    "fist", "kick", "blunt-object", "knife", "bottle-or-glass", "other",
};
static const char *const locations[] = {
    "street", "pub-or-club", "home", "workplace", "public-transport", "other",
};

static const char *const marac_summaries[] = {
    "Attended A&E with facial injuries; disclosed assault by her partner",
    "Maternity: disclosed threats and controlling behaviour during pregnancy",
    "Attended A&E after non-fatal strangulation; did not want to go home",
};
static const referrer_t marac_referrer = {
    .judgement = 0.2,
    .escalation = 0.05,
    .summaries = marac_summaries,
    .n_summaries = sizeof marac_summaries / sizeof marac_summaries[0],
};

static int64_t period_end(const shub_profile_t *p, int64_t from)
{
    int64_t end = p->sc.health.istv == ISTV_WEEKLY
                      ? from + MS_WEEK
                      : shub_time_add_months(shub_time_start_of_month(from, SHUB_TZ_UTC),
                                             1, SHUB_TZ_UTC);
    return end < p->sc.end_ms ? end : p->sc.end_ms;
}

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    shub_rng_seed(&p->streams[0].rng, shub_rng_hash(p->seed, "ae.istv.batch"));
    int rc = shub_profile_refseq_init(p, J_MARAC);
    if (rc)
        return rc;
    if (!p->has_scenario || p->sc.health.istv == ISTV_OFF ||
        p->sc.end_ms <= p->sc.start_ms)
        return 0;
    for (size_t i = 0; i < p->n_areas; i++) {
        rc = shub_profile_schedule(p, period_end(p, p->sc.start_ms), J_BATCH, (uint32_t)i,
                                   p->sc.start_ms, NULL);
        if (rc)
            return rc;
    }
    return 0;
}

/* "999" and six digits, then the modulus 11 check digit (a number whose check
 * would be 10 is not issued: draw again). */
static void nhs_number(rng_t *r, char out[16])
{
    for (;;) {
        int d[10] = {9, 9, 9};
        int sum = 0;
        for (int i = 3; i < 9; i++)
            d[i] = (int)shub_rng_below(r, 10);
        for (int i = 0; i < 9; i++)
            sum += d[i] * (10 - i);
        int check = 11 - sum % 11;
        if (check == 10)
            continue;
        d[9] = check == 11 ? 0 : check;
        snprintf(out, 16, "%d%d%d %d%d%d %d%d%d%d", d[0], d[1], d[2], d[3], d[4], d[5],
                 d[6], d[7], d[8], d[9]);
        return;
    }
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    if (job->what == J_MARAC)
        return shub_profile_referral_fire_new(p, job, "Safeguarding nurse",
                                              &marac_referrer, emit, ctx);
    if (job->what != J_BATCH || job->ref >= p->n_areas)
        return 0;
    const char *area = p->areas[job->ref];
    rng_t *r = &p->streams[0].rng;
    int64_t from = job->arg, to = job->due_ms;
    char date[SHUB_TIME_TEXT];

    pb_t b = {.arena = shub_arena_new(16384)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map(), period = shub_val_map(),
               assaults = shub_val_array();
    shub_time_format_date(from, date);
    shub_pb_str(&b, &period, "from", date);
    shub_time_format_date(to - 1, date); /* inclusive: the last day of the period */
    shub_pb_str(&b, &period, "to", date);
    shub_pb_put(&b, &payload, "period", period);
    shub_pb_strf(&b, &payload, "site", "%s emergency department (%s)", p->id, area);
    double per = p->sc.health.assaults_per_week;
    int64_t t = from;
    for (int n = 0; per > 0 && n < ISTV_MAX_ASSAULTS && b.rc == 0; n++) {
        double gap = shub_rng_exp(r, (double)MS_WEEK / per);
        if (gap >= (double)(to - t))
            break;
        t += (int64_t)gap;
        person_t who;
        char nhs[16];
        shub_profile_person_make(shub_rng_next(r), area, 16, 60, 0.3, &who);
        nhs_number(r, nhs);
        shub_val_t a = shub_val_map(), patient = shub_val_map();
        shub_time_format(t - t % MS_MINUTE, date); /* to the minute, as A&E records */
        shub_pb_str(&b, &a, "arrival_time", date);
        int64_t assault = t - shub_rng_range(r, 10 * MS_MINUTE, 6 * MS_HOUR);
        shub_time_format(assault - assault % MS_MINUTE, date);
        shub_pb_str(&b, &a, "assault_time", date);
        shub_pb_str(&b, &a, "method", PICK(r, methods));
        shub_pb_str(&b, &a, "location_type", PICK(r, locations));
        shub_pb_str(&b, &patient, "name", who.name);
        shub_pb_str(&b, &patient, "nhs_number", nhs);
        shub_pb_str(&b, &patient, "dob", who.dob);
        shub_pb_put(&b, &a, "patient", patient);
        shub_pb_push(&b, &assaults, a);
    }
    shub_pb_put(&b, &payload, "assaults", assaults);
    shub_event_t ev = {
        .type = "ae.istv.batch",
        .occurred_ms = to,
        .area = area,
        .purpose = "violence-reduction",
        .basis = "uk-gdpr-6-1-e",
        .consent = SHUB_CONSENT_NOT_SOUGHT,
        .payload = payload,
    };
    int rc =
        shub_profile_emit_to_area(&b, &ev, "local-authority", "partnership", emit, ctx);
    if (rc)
        return rc;
    if (to < p->sc.end_ms) /* room reserved by tick */
        (void)shub_profile_schedule(p, period_end(p, to), J_BATCH, job->ref, to, NULL);
    return 0;
}

const profile_ops_t shub_profile_health_ops = {
    .kind = "health",
    .init = init,
    .fini = NULL,
    .fire = fire,
    .receive = NULL,
};
