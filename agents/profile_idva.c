/*
 * profile_idva: an IDVA service (independent domestic violence advisers).
 *
 *   idva.notification -> the service tries to reach the victim (first
 *                        contact within 48 hours of the notification) and
 *                        reports the outcome to the MARAC that notified it:
 *                        idva.engagement (engaged, declined, or no-contact,
 *                        by the scenario's idva fractions), reply_to the
 *                        notification, a few days later
 *   subject.moved_area -> a client who left the area is handed over: no
 *                        more referrals about her from here
 *   marac.action       -> the actions the service owns (profile_action.c)
 *
 * It also refers to the MARAC of its area, its part of marac.sources (one
 * sequence per area, profile.c): a client it already supports whose risk it
 * assesses as high again (a repeat, when within 12 months of the last
 * referral it knows of), or someone who came to the service directly (a
 * self-referral or another agency's signposting) and scores high on the
 * DASH it completes with her.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

enum { J_REFERRAL = 1, J_ENGAGE };

typedef enum { E_ENGAGED, E_DECLINED, E_NO_CONTACT } engagement_t;

/* A victim the MARAC has notified us of, as the notification told us. */
typedef struct client {
    char from[NAME_CAP];    /* the MARAC */
    char case_ref[REF_CAP]; /* the MARAC's */
    char subject[REF_CAP];
    char area[NAME_CAP];
    char name[64];  /* "" when the notification's would not fit whole: the */
    char phone[16]; /* client is then not referred again from here */
    shub_consent_t consent;
    char override[NAME_CAP];
    int64_t notified_ms, last_referral_ms;
    int64_t first_contact_ms;
    engagement_t outcome;
    int attempts;
    bool gone; /* she has left our area: handed over */
} client_t;

typedef struct idva {
    client_t *clients;
    size_t n, cap;
} idva_t;

static const char *const outcomes[] = {"engaged", "declined", "no-contact"};
static const char *const summaries[] = {
    "Disclosed to the IDVA: escalating threats and monitoring of her phone since "
    "separation",
    "Self-referral to the IDVA service after an assault at home; DASH completed with the "
    "IDVA",
    "Signposted to the IDVA by her GP; controlling behaviour and threats to kill",
    "Client disclosed a new assault and breaches of bail conditions",
};

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    if (!(p->state = shub_calloc(1, sizeof(idva_t))))
        return SHUB_ENOMEM;
    return shub_profile_refseq_init(p, J_REFERRAL);
}

static void fini(shub_profile_t *p)
{
    idva_t *st = p->state;
    if (st)
        shub_free(st->clients);
    shub_free(st);
    p->state = NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static client_t *find_client(idva_t *st, const char *subject)
{
    for (size_t i = st->n; subject && i-- > 0;)
        if (strcmp(st->clients[i].subject, subject) == 0)
            return &st->clients[i];
    return NULL;
}

static int on_notification(shub_profile_t *p, int64_t now, const char *from,
                           const shub_event_t *ev)
{
    idva_t *st = p->state;
    client_t *known = find_client(st, ev->subject_ref);
    int rc = 0;
    if (!known) {
        void *clients = st->clients;
        rc = shub_profile_grow(&clients, &st->cap, st->n, sizeof *st->clients, 64);
        st->clients = clients;
    }
    if (rc == 0)
        rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;
    client_t *c = known ? known : &st->clients[st->n]; /* notified again: one client */
    memset(c, 0, sizeof *c);
    shub_str_copy(c->from, sizeof c->from, from);
    const char *case_ref = shub_val_str_at(&ev->payload, "case_ref");
    shub_str_copy(c->case_ref, sizeof c->case_ref, case_ref ? case_ref : ev->case_ref);
    shub_str_copy(c->subject, sizeof c->subject, ev->subject_ref);
    shub_str_copy(c->area, sizeof c->area,
                  shub_profile_serves(p, ev->area) || p->n_areas == 0 ? ev->area
                                                                      : p->areas[0]);
    const char *name = shub_val_str_at(&ev->payload, "victim.name");
    const char *phone = shub_val_str_at(&ev->payload, "victim.phone");
    if (name && phone && strlen(name) < sizeof c->name &&
        strlen(phone) < sizeof c->phone) {
        shub_str_copy(c->name, sizeof c->name, name); /* whole: never a cut character */
        shub_str_copy(c->phone, sizeof c->phone, phone);
    }
    c->consent = ev->consent ? ev->consent : SHUB_CONSENT_NOT_SOUGHT;
    shub_str_copy(c->override, sizeof c->override, ev->override);
    c->notified_ms = c->last_referral_ms = ev->occurred_ms > 0 ? ev->occurred_ms : now;

    rng_t *r = &p->react;
    double u = shub_rng_unit(r);
    c->outcome = u < p->sc.idva.engaged                         ? E_ENGAGED
                 : u < p->sc.idva.engaged + p->sc.idva.declined ? E_DECLINED
                                                                : E_NO_CONTACT;
    c->first_contact_ms = now + shub_rng_range(r, MS_HOUR, 47 * MS_HOUR);
    c->attempts = c->outcome == E_NO_CONTACT ? (int)shub_rng_range(r, 3, 6)
                                             : (int)shub_rng_range(r, 1, 3);
    int64_t report_at = c->first_contact_ms + shub_rng_range(r, MS_DAY, 4 * MS_DAY);
    size_t idx = known ? (size_t)(known - st->clients) : st->n++;
    return shub_profile_schedule_in_period(p, report_at, J_ENGAGE, (uint32_t)idx, 0,
                                           &ev->id);
}

static int on_moved(shub_profile_t *p, const shub_event_t *ev)
{
    idva_t *st = p->state;
    const char *left = shub_val_str_at(&ev->payload, "left_area");
    for (size_t i = 0; ev->subject_ref && left && i < st->n; i++)
        if (strcmp(st->clients[i].subject, ev->subject_ref) == 0 &&
            strcmp(st->clients[i].area, left) == 0)
            st->clients[i].gone = true;
    return 0;
}

static int receive(shub_profile_t *p, int64_t now, const char *from,
                   const shub_event_t *ev)
{
    if (strcmp(ev->type, "idva.notification") == 0)
        return on_notification(p, now, from, ev);
    if (strcmp(ev->type, "subject.moved_area") == 0)
        return on_moved(p, ev);
    return 0;
}

/* ---- firing ------------------------------------------------------------ */

static int fire_engagement(shub_profile_t *p, const job_t *job,
                           shub_profile_emit_fn *emit, void *ctx)
{
    idva_t *st = p->state;
    if (job->ref >= st->n)
        return 0;
    const client_t *c = &st->clients[job->ref];
    char t[SHUB_TIME_TEXT];
    pb_t b = {.arena = shub_arena_new(1024)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t payload = shub_val_map();
    shub_pb_str(&b, &payload, "case_ref", c->case_ref);
    shub_pb_str(&b, &payload, "outcome", outcomes[c->outcome]);
    shub_pb_str(&b, &payload, "first_contact", shub_time_format(c->first_contact_ms, t));
    shub_pb_int(&b, &payload, "contact_attempts", c->attempts);
    const char *to[] = {c->from};
    shub_event_t ev = {
        .type = "idva.engagement",
        .occurred_ms = job->due_ms,
        .case_ref = c->case_ref[0] ? c->case_ref : NULL,
        .subject_ref = c->subject[0] ? c->subject : NULL,
        .area = c->area[0] ? c->area : NULL,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = c->consent,
        .override = c->override[0] ? c->override : NULL,
        .reply_to = job->has_reply ? &job->reply_to : NULL,
        .payload = payload,
    };
    return shub_profile_emit_built(&b, &ev, to, 1, emit, ctx);
}

/* A client still ours who lives in `area`. */
static bool client_in(const void *rec, const char *area)
{
    const client_t *c = rec;
    return !c->gone && strcmp(c->area, area) == 0;
}

/* One of our clients who lives in `area`, chosen by r; NULL if none. */
static client_t *pick_client(idva_t *st, const char *area, rng_t *r)
{
    return shub_profile_pick_in_area(st->clients, st->n, sizeof *st->clients, area,
                                     client_in, r);
}

static const referrer_t how = {
    .judgement = 0.2,
    .escalation = 0.1,
    .summaries = summaries,
    .n_summaries = sizeof summaries / sizeof summaries[0],
};

static int fire_referral(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                         void *ctx)
{
    idva_t *st = p->state;
    const char *area = shub_profile_refseq_area(p, job);
    if (!area)
        return 0;
    rng_t r = shub_profile_refseq_rng(p, job);
    client_t *c =
        shub_rng_chance(&r, p->sc.marac.repeat) ? pick_client(st, area, &r) : NULL;
    if (!c || !c->name[0])
        return shub_profile_referral_fire_new(p, job, "IDVA", &how, emit, ctx);

    person_t victim;
    memset(&victim, 0, sizeof victim);
    shub_str_copy(victim.name, sizeof victim.name, c->name);
    shub_str_copy(victim.phone, sizeof victim.phone, c->phone);
    shub_str_copy(victim.subject, sizeof victim.subject, c->subject);
    const char *space = strrchr(c->name, ' ');
    shub_str_copy(victim.surname, sizeof victim.surname, space ? space + 1 : c->name);
    referral_signature_t sig;
    shub_profile_referral_sign(p, job, &r, "IDVA", area, &sig);
    referrer_t who = how;
    who.officer = sig.officer;
    who.contact = sig.contact;
    bool repeat = shub_profile_is_repeat(c->last_referral_ms, job->due_ms);
    int rc = shub_profile_referral_emit(p, job->due_ms, &r, &victim, area,
                                        shub_rng_hash(p->seed, c->subject), false,
                                        sig.case_ref, &who, repeat, emit, ctx);
    if (rc)
        return rc;
    c->last_referral_ms = job->due_ms;
    (void)shub_profile_refseq_next(p, job); /* room reserved by tick */
    return 0;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    switch (job->what) {
    case J_REFERRAL:
        return fire_referral(p, job, emit, ctx);
    case J_ENGAGE:
        return fire_engagement(p, job, emit, ctx);
    default:
        return 0;
    }
}

const profile_ops_t shub_profile_idva_ops = {
    .kind = "idva",
    .init = init,
    .fini = fini,
    .fire = fire,
    .receive = receive,
};
