/*
 * profile_marac: a MARAC (multi-agency risk assessment conference) for one
 * area. It originates nothing on its own; everything follows from what it
 * receives:
 *
 *   marac.referral  -> marac.referral.decision to the referrer (reply_to the
 *                      referral) within 40 h, and for accepted cases an
 *                      idva.notification to idva@<area> within 48 h of the
 *                      referral; some accepted victims later move, which
 *                      sends marac.transfer to marac@<new area> and
 *                      subject.moved_area to idva@<old> (and
 *                      local-authority@<old> when there are children)
 *   marac.transfer  -> idva.notification to idva@<area> (the early IDVA
 *                      handover), then marac.transfer.ack, or
 *                      marac.transfer.request_missing when the minutes or
 *                      the action plan are absent; the complete resend that
 *                      answers the request is acknowledged
 *   marac.transfer.request_missing -> the complete marac.transfer again,
 *                      reply_to the request
 *   marac.transfer.ack -> the transfer is closed; nothing is sent
 *
 * Every roll (decision, move, whether the first transfer lacks its minutes)
 * is made when the event arrives, from the reaction generator, and all the
 * jobs are queued then; firing only builds and sends. Text that must be the
 * same in a transfer and its resend (the new address, minutes, actions) comes
 * from a generator seeded by the case, not by the moment.
 *
 * A case keeps a copy of the payload it came with (its own arena), because a
 * received event lives only for the call. Cases are matched to requests and
 * acknowledgements by subject reference: the runtime, not the profile, gives
 * our own events their ids, so a reply_to naming one of ours cannot be read
 * back here.
 */
#include "profile_internal.h"

#include "sharehub/alloc.h"

#include <stdio.h>
#include <string.h>

#define TWELVE_MONTHS (365 * MS_DAY)

typedef enum { D_ACCEPTED, D_WITHDRAWN, D_REJECTED } decision_t;
/* A transfer we sent: sent -> (request received -> resend queued -> resent) -> acked. */
typedef enum { OUT_NONE, OUT_SENT, OUT_RESEND_QUEUED, OUT_RESENT, OUT_ACKED } out_state_t;
/* A transfer we received: awaiting the resend, or with our ack queued/sent. */
typedef enum { IN_NONE, IN_AWAIT_RESEND, IN_ACK_QUEUED } in_state_t;

enum { J_DECIDE = 1, J_IDVA, J_TRANSFER, J_MOVED, J_ACK, J_REQUEST, J_RESEND };

typedef struct mcase {
    shub_arena_t *arena; /* owns payload */
    shub_val_t payload;  /* the referral or transfer as received */
    bool transferred_in; /* came by marac.transfer */
    char from[NAME_CAP]; /* the referrer or the sending MARAC */
    char subject[REF_CAP];
    char case_ref[40];      /* ours */
    char area[NAME_CAP];    /* where it is heard */
    shub_consent_t consent; /* carried onto everything we send about it */
    char override[NAME_CAP];
    int64_t decided_ms, idva_ms, meeting_ms, last_referral_ms;
    int64_t prior_ms; /* the referral before this one, when a repeat */
    decision_t decision;
    bool repeat; /* within 12 months of the last referral we knew */
    int dash;
    int64_t move_ms; /* 0: the victim stays */
    char new_area[NAME_CAP];
    bool temporary;  /* a refuge, say */
    bool incomplete; /* the first transfer leaves out minutes and plan */
    out_state_t out;
    in_state_t in;
    bool ask_minutes, ask_plan;
} mcase_t;

typedef struct marac {
    mcase_t *cases;
    size_t n, cap;
    uint32_t serial;
} marac_t;

static const char *const withdrawn_reasons[] = {
    "referrer withdrew the referral after reviewing the risk",
    "duplicate of a referral already on the agenda",
    "risk reduced after safety planning; referrer withdrew",
};
static const char *const safe_times[] = {
    "weekdays 09:00-12:00",
    "weekday afternoons while the children are at school",
    "evenings after 19:00, text first",
    "Tuesday and Thursday mornings",
};
static const char *const owners[] = {"police", "idva", "local-authority", "health",
                                     "housing"};
static const char *const action_text[] = {
    "flag the address for a priority response",
    "agree a safety plan with the victim and review it fortnightly",
    "assess the children's needs and share the outcome",
    "alert the GP and maternity services; record routine enquiry",
    "fit the sanctuary scheme and change the locks",
};
static const char *const minutes_text[] = {
    "Heard at MARAC; risk confirmed high. Actions agreed with police, IDVA and "
    "children's "
    "services; perpetrator on bail with conditions.",
    "Heard at MARAC; escalation noted since the referral. Safety plan reviewed; housing "
    "to "
    "consider a move; IDVA to keep weekly contact.",
    "Heard at MARAC; victim engaging with the IDVA. Police to flag the address; health "
    "to "
    "share A&E attendances.",
};

static int init(shub_profile_t *p, shub_err_t *err)
{
    (void)err;
    p->state = shub_calloc(1, sizeof(marac_t));
    return p->state ? 0 : SHUB_ENOMEM;
}

static void fini(shub_profile_t *p)
{
    marac_t *st = p->state;
    if (st) {
        for (size_t i = 0; i < st->n; i++)
            shub_arena_destroy(&st->cases[i].arena);
        shub_free(st->cases);
    }
    shub_free(st);
    p->state = NULL;
}

/* ---- helpers ----------------------------------------------------------- */

static rng_t case_rng(const shub_profile_t *p, size_t idx, uint64_t salt)
{
    rng_t r;
    shub_rng_seed(&r, shub_rng_mix(p->seed ^ shub_rng_mix(idx * 0x100 + salt)));
    return r;
}

static int reserve_case(marac_t *st)
{
    if (st->n < st->cap)
        return 0;
    if (st->cap >= PROFILE_MAX_RECORDS)
        return SHUB_EBUSY;
    size_t cap = st->cap ? st->cap * 2 : 32;
    mcase_t *c = shub_realloc(st->cases, cap * sizeof *c);
    if (!c)
        return SHUB_ENOMEM;
    st->cases = c;
    st->cap = cap;
    return 0;
}

/* The received payload, copied into a fresh arena. */
static int copy_payload(const shub_event_t *ev, shub_arena_t **arena_p, shub_val_t *out)
{
    pb_t b = {.arena = shub_arena_new(2048)};
    if (!b.arena)
        return SHUB_ENOMEM;
    shub_val_t v = ev->payload.type == SHUB_VAL_MAP ? shub_pb_copy(&b, &ev->payload)
                                                    : shub_val_map();
    if (b.rc) {
        shub_arena_destroy(&b.arena);
        return b.rc;
    }
    *arena_p = b.arena;
    *out = v;
    return 0;
}

static void case_start(shub_profile_t *p, mcase_t *c, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    shub_str_copy(c->from, sizeof c->from, from);
    shub_str_copy(c->subject, sizeof c->subject, ev->subject_ref);
    if (shub_profile_serves(p, ev->area) || p->n_areas == 0)
        shub_str_copy(c->area, sizeof c->area, ev->area);
    else
        shub_str_copy(c->area, sizeof c->area, p->areas[0]);
    c->consent = ev->consent ? ev->consent : SHUB_CONSENT_NOT_SOUGHT;
    shub_str_copy(c->override, sizeof c->override, ev->override);
    char code[8];
    shub_profile_area_code(c->area, code);
    snprintf(c->case_ref, sizeof c->case_ref, "MARAC-%s-%02d-%04u", code,
             shub_profile_year2(ev->occurred_ms), ++st->serial);
}

/* The latest referral date we know for this person, or INT64_MIN. */
static int64_t last_referral(const marac_t *st, const char *subject,
                             const char **case_ref)
{
    int64_t last = INT64_MIN;
    for (size_t i = 0; subject[0] && i < st->n; i++)
        if (strcmp(st->cases[i].subject, subject) == 0 &&
            st->cases[i].last_referral_ms > last) {
            last = st->cases[i].last_referral_ms;
            *case_ref = st->cases[i].case_ref;
        }
    return last;
}

/* The first MARAC sitting at 10:00 on this area's meeting weekday, at least
 * three days after `ms` (agenda deadline). */
static int64_t next_meeting(const char *area, int64_t ms)
{
    int weekday = (int)(shub_rng_hash(0, area) % 5);
    int64_t day = (ms + 3 * MS_DAY) / MS_DAY;
    while (shub_time_weekday(day * MS_DAY, SHUB_TZ_UTC) != weekday)
        day++;
    return day * MS_DAY + 10 * MS_HOUR;
}

/* An area to move to, by weight, other than `from`; false if there is none. */
static bool pick_new_area(shub_profile_t *p, rng_t *r, const char *from,
                          char out[NAME_CAP])
{
    const sc_weights_t *w = shub_profile_marac_weights(p);
    size_t n = w->n ? w->n : p->n_all_areas;
    double total = 0, cum[SC_MAX_AREAS] = {0};
    for (size_t k = 0; k < n; k++) {
        const char *a = w->n ? w->name[k] : p->all_areas[k];
        bool skip = strcmp(a, from) == 0;
        for (size_t e = 0; e < p->sc.marac.external_areas.n; e++)
            skip = skip || strcmp(a, p->sc.marac.external_areas.item[e]) == 0;
        total += skip ? 0 : (w->n ? w->w[k] : 1);
        cum[k] = total;
    }
    double x = shub_rng_unit(r) * total;
    for (size_t k = 0; k < n && total > 0; k++)
        if (x < cum[k]) {
            shub_str_copy(out, NAME_CAP, w->n ? w->name[k] : p->all_areas[k]);
            return true;
        }
    return false;
}

static mcase_t *find_case(marac_t *st, const char *subject, bool transferred_in,
                          int state)
{
    for (size_t i = st->n; subject && subject[0] && i-- > 0;) {
        mcase_t *c = &st->cases[i];
        if (c->transferred_in == transferred_in && strcmp(c->subject, subject) == 0 &&
            (transferred_in ? (int)c->in : (int)c->out) == state)
            return c;
    }
    return NULL;
}

/* ---- receiving ---------------------------------------------------------- */

static int on_referral(shub_profile_t *p, int64_t now, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    int rc = reserve_case(st);
    if (rc == 0)
        rc = shub_profile_reserve(p, 4);
    mcase_t c = {0};
    if (rc == 0)
        rc = copy_payload(ev, &c.arena, &c.payload);
    if (rc)
        return rc;
    int64_t at = ev->occurred_ms > 0 ? ev->occurred_ms : now;
    const char *prior_ref = NULL;
    int64_t last = last_referral(st, ev->subject_ref ? ev->subject_ref : "", &prior_ref);
    case_start(p, &c, from, ev);
    c.repeat = last != INT64_MIN && at - last <= TWELVE_MONTHS;
    c.prior_ms = last;
    if (c.repeat) /* a repeat is heard as the same case */
        shub_str_copy(c.case_ref, sizeof c.case_ref, prior_ref);
    c.last_referral_ms = at;
    c.dash = (int)shub_val_int_at(&c.payload, "risk.dash_score", -1);
    bool meets =
        c.dash >= 14 || c.repeat || shub_val_bool_at(&c.payload, "risk.repeat") ||
        shub_val_array_has(&c.payload, "risk.criteria", "professional_judgement") ||
        shub_val_array_has(&c.payload, "risk.criteria", "escalation") ||
        shub_val_array_has(&c.payload, "risk.criteria", "repeat");

    rng_t *r = &p->react;
    bool withdrawn = shub_rng_chance(r, p->sc.marac.withdrawn);
    c.decision = !meets ? D_REJECTED : withdrawn ? D_WITHDRAWN : D_ACCEPTED;
    c.decided_ms = now + shub_rng_range(r, 2 * MS_HOUR, 40 * MS_HOUR);
    c.idva_ms = c.decided_ms + shub_rng_range(r, 15 * MS_MINUTE, 6 * MS_HOUR);
    c.meeting_ms = next_meeting(c.area, c.decided_ms);
    double u = shub_rng_unit(r);
    int64_t move_at = c.decided_ms + shub_rng_range(r, 2 * MS_DAY, 60 * MS_DAY);
    c.temporary = shub_rng_chance(r, 0.3);
    c.incomplete = shub_rng_chance(r, p->sc.marac.missing_minutes);
    bool external = u < p->sc.marac.external_move;
    bool internal = !external && u < p->sc.marac.external_move + p->sc.marac.move;
    const sc_list_t *ext = &p->sc.marac.external_areas;
    if (c.decision == D_ACCEPTED && p->has_scenario && move_at < p->sc.end_ms) {
        if (external && ext->n)
            shub_str_copy(c.new_area, sizeof c.new_area,
                          ext->item[shub_rng_below(r, ext->n)]);
        else if (internal)
            pick_new_area(p, r, c.area, c.new_area);
        if (c.new_area[0])
            c.move_ms = move_at;
    }

    size_t idx = st->n;
    st->cases[st->n++] = c;
    shub_profile_schedule(p, c.decided_ms, J_DECIDE, (uint32_t)idx, 0, &ev->id);
    if (c.decision == D_ACCEPTED)
        shub_profile_schedule(p, c.idva_ms, J_IDVA, (uint32_t)idx, 0, NULL);
    if (c.move_ms) {
        shub_profile_schedule(p, c.move_ms, J_TRANSFER, (uint32_t)idx, 0, NULL);
        shub_profile_schedule(p, c.move_ms, J_MOVED, (uint32_t)idx, 0, NULL);
    }
    return 0;
}

static bool has_key(const shub_val_t *payload, const char *key)
{
    return shub_val_get(payload, key) != NULL;
}

static int on_transfer(shub_profile_t *p, int64_t now, const char *from,
                       const shub_event_t *ev)
{
    marac_t *st = p->state;
    rng_t *r = &p->react;
    mcase_t *waiting =
        ev->reply_to ? find_case(st, ev->subject_ref, true, IN_AWAIT_RESEND) : NULL;
    if (waiting && strcmp(waiting->from, from) == 0) { /* the resend we asked for */
        shub_arena_t *arena = NULL;
        shub_val_t payload;
        int rc = shub_profile_reserve(p, 1);
        if (rc == 0)
            rc = copy_payload(ev, &arena, &payload);
        if (rc)
            return rc;
        shub_arena_destroy(&waiting->arena);
        waiting->arena = arena;
        waiting->payload = payload;
        waiting->in = IN_ACK_QUEUED;
        shub_profile_schedule(p, now + shub_rng_range(r, 15 * MS_MINUTE, 4 * MS_HOUR),
                              J_ACK, (uint32_t)(waiting - st->cases), 0, &ev->id);
        return 0;
    }

    if (ev->reply_to && ev->subject_ref)
        for (size_t i = 0; i < st->n; i++)
            if (st->cases[i].transferred_in && strcmp(st->cases[i].from, from) == 0 &&
                strcmp(st->cases[i].subject, ev->subject_ref) == 0)
                return 0; /* a resend we did not ask for, or a late copy: known case */

    int rc = reserve_case(st);
    if (rc == 0)
        rc = shub_profile_reserve(p, 2);
    mcase_t c = {0};
    if (rc == 0)
        rc = copy_payload(ev, &c.arena, &c.payload);
    if (rc)
        return rc;
    case_start(p, &c, from, ev);
    c.transferred_in = true;
    c.decision = D_ACCEPTED;
    if (shub_time_parse_date(shub_val_str_at(&c.payload, "last_referral_date"),
                             &c.last_referral_ms, NULL) != 0)
        c.last_referral_ms = ev->occurred_ms > 0 ? ev->occurred_ms : now;
    c.dash = (int)shub_val_int_at(&c.payload, "risk.dash_score", -1);
    bool heard = shub_val_bool_at(&c.payload, "heard_at_origin");
    c.ask_minutes = !has_key(&c.payload, "minutes") ||
                    (heard && shub_val_array_len(&c.payload, "minutes") == 0);
    c.ask_plan = !has_key(&c.payload, "action_plan");
    c.in = c.ask_minutes || c.ask_plan ? IN_AWAIT_RESEND : IN_ACK_QUEUED;
    c.idva_ms = now + shub_rng_range(r, 10 * MS_MINUTE, 2 * MS_HOUR);
    c.meeting_ms = next_meeting(c.area, now);
    int64_t reply_at = now + shub_rng_range(r, 30 * MS_MINUTE, 4 * MS_HOUR);

    size_t idx = st->n;
    st->cases[st->n++] = c;
    shub_profile_schedule(p, c.idva_ms, J_IDVA, (uint32_t)idx, 0, NULL);
    shub_profile_schedule(p, reply_at, c.in == IN_AWAIT_RESEND ? J_REQUEST : J_ACK,
                          (uint32_t)idx, 0, &ev->id);
    return 0;
}

static int on_request_missing(shub_profile_t *p, int64_t now, const shub_event_t *ev)
{
    marac_t *st = p->state;
    mcase_t *c = find_case(st, ev->subject_ref, false, OUT_SENT);
    if (!c)
        return 0; /* not ours, or already answered: nothing to resend */
    int rc = shub_profile_reserve(p, 1);
    if (rc)
        return rc;
    c->out = OUT_RESEND_QUEUED;
    shub_profile_schedule(p,
                          now + shub_rng_range(&p->react, 30 * MS_MINUTE, 12 * MS_HOUR),
                          J_RESEND, (uint32_t)(c - st->cases), 0, &ev->id);
    return 0;
}

static int on_ack(shub_profile_t *p, const shub_event_t *ev)
{
    marac_t *st = p->state;
    mcase_t *c = find_case(st, ev->subject_ref, false, OUT_RESENT);
    if (!c)
        c = find_case(st, ev->subject_ref, false, OUT_SENT);
    if (c)
        c->out = OUT_ACKED;
    return 0;
}

static int receive(shub_profile_t *p, int64_t now, const char *from,
                   const shub_event_t *ev)
{
    if (strcmp(ev->type, "marac.referral") == 0)
        return on_referral(p, now, from, ev);
    if (strcmp(ev->type, "marac.transfer") == 0)
        return on_transfer(p, now, from, ev);
    if (strcmp(ev->type, "marac.transfer.request_missing") == 0)
        return on_request_missing(p, now, ev);
    if (strcmp(ev->type, "marac.transfer.ack") == 0)
        return on_ack(p, ev);
    return 0;
}

/* ---- firing ------------------------------------------------------------ */

static shub_val_t decision_payload(pb_t *b, const mcase_t *c)
{
    static const char *const names[] = {"accepted", "withdrawn", "rejected"};
    shub_val_t pl = shub_val_map();
    char date[SHUB_TIME_DATE_TEXT], meeting[SHUB_TIME_DATE_TEXT];
    shub_pb_str(b, &pl, "decision", names[c->decision]);
    if (c->decision == D_WITHDRAWN) {
        rng_t r;
        shub_rng_seed(&r, shub_rng_hash(0, c->case_ref));
        shub_pb_str(b, &pl, "reason", PICK(&r, withdrawn_reasons));
    } else if (c->decision == D_REJECTED) {
        char score[24] = "no DASH score";
        if (c->dash >= 0)
            snprintf(score, sizeof score, "DASH %d", c->dash);
        shub_pb_strf(b, &pl, "reason",
                     "does not meet the MARAC threshold: %s and no other criterion",
                     score);
    } else if (c->repeat) {
        shub_time_format_date(c->prior_ms, date);
        shub_pb_strf(b, &pl, "reason", "repeat: referred again within 12 months of %s",
                     date);
    } else if (c->dash >= 14) {
        shub_pb_strf(b, &pl, "reason", "high risk: DASH %d", c->dash);
    } else {
        shub_pb_str(b, &pl, "reason", "professional judgement or escalation");
    }
    shub_pb_str(b, &pl, "case_ref", c->case_ref);
    if (c->decision == D_ACCEPTED) {
        shub_time_format_date(c->meeting_ms, meeting);
        shub_pb_str(b, &pl, "meeting_date", meeting);
    }
    return pl;
}

static shub_val_t idva_payload(pb_t *b, const shub_profile_t *p, size_t idx,
                               const mcase_t *c)
{
    rng_t r = case_rng(p, idx, 1);
    shub_val_t pl = shub_val_map(), victim = shub_val_map(), risk = shub_val_map();
    shub_pb_str(b, &pl, "case_ref", c->case_ref);
    shub_pb_str(b, &victim, "name", shub_val_str_at(&c->payload, "victim.name"));
    shub_pb_str(b, &victim, "phone", shub_val_str_at(&c->payload, "victim.phone"));
    if (shub_val_str_at(&c->payload, "victim.safe_contact"))
        shub_pb_str(b, &victim, "safe_contact",
                    shub_val_str_at(&c->payload, "victim.safe_contact"));
    shub_pb_str(b, &victim, "safe_times", PICK(&r, safe_times));
    shub_pb_put(b, &pl, "victim", victim);
    if (c->dash >= 0)
        shub_pb_int(b, &risk, "dash_score", c->dash);
    if (c->transferred_in)
        shub_pb_strf(b, &risk, "summary",
                     "transferred in from %s; DASH %d at the last assessment", c->from,
                     c->dash);
    else
        shub_pb_strf(b, &risk, "summary", "%s; DASH %d%s",
                     c->dash >= 14 ? "high risk"
                                   : "below 14, "
                                     "referred on other criteria",
                     c->dash, c->repeat ? "; repeat within 12 months" : "");
    shub_pb_put(b, &pl, "risk", risk);
    return pl;
}

/* The transfer of case idx; complete or without minutes and action plan. The
 * case generator makes the first send and the resend agree. */
static shub_val_t transfer_payload(pb_t *b, const shub_profile_t *p, size_t idx,
                                   const mcase_t *c, bool complete)
{
    rng_t r = case_rng(p, idx, 2);
    shub_val_t pl = shub_val_map(), move = shub_val_map(), addr = shub_val_map();
    char date[SHUB_TIME_DATE_TEXT], line1[64], postcode[12];
    shub_time_format_date(c->move_ms, date);
    shub_profile_address_make(&r, c->new_area, line1, postcode);
    shub_pb_str(b, &move, "date", date);
    shub_pb_bool(b, &move, "temporary", c->temporary);
    shub_pb_str(b, &move, "new_area", c->new_area);
    shub_pb_str(b, &addr, "line1", c->temporary ? "refuge (address withheld)" : line1);
    shub_pb_str(b, &addr, "postcode", postcode);
    shub_pb_put(b, &move, "new_address", addr);
    shub_pb_put(b, &pl, "move", move);
    bool heard = c->move_ms >= c->meeting_ms;
    shub_pb_bool(b, &pl, "heard_at_origin", heard);
    shub_time_format_date(c->last_referral_ms, date);
    shub_pb_str(b, &pl, "last_referral_date", date);

    shub_val_t minutes = shub_val_array(), plan = shub_val_array();
    int open = 0;
    const char *text = PICK(&r, minutes_text);
    int n_actions = (int)shub_rng_range(&r, 2, 4);
    if (heard) {
        shub_val_t m = shub_val_map();
        shub_time_format_date(c->meeting_ms, date);
        shub_pb_str(b, &m, "meeting_date", date);
        shub_pb_str(b, &m, "text", text);
        shub_pb_push(b, &minutes, m);
        for (int k = 0; k < n_actions; k++) {
            size_t o = (size_t)shub_rng_below(&r, sizeof owners / sizeof owners[0]);
            int64_t due = c->meeting_ms + shub_rng_range(&r, 7, 28) * MS_DAY;
            bool done = due < c->move_ms && shub_rng_chance(&r, 0.6);
            open += !done;
            shub_val_t a = shub_val_map();
            shub_pb_strf(b, &a, "action_id", "%s-A%d", c->case_ref, k + 1);
            shub_pb_str(b, &a, "owner", owners[o]);
            shub_time_format_date(due, date);
            shub_pb_str(b, &a, "due", date);
            shub_pb_str(b, &a, "status", done ? "done" : "open");
            shub_pb_str(b, &a, "description", action_text[o]);
            shub_pb_push(b, &plan, a);
        }
    }
    if (complete) {
        shub_pb_put(b, &pl, "minutes", minutes);
        shub_pb_put(b, &pl, "action_plan", plan);
    }
    shub_pb_int(b, &pl, "open_actions", open);

    shub_val_t victim = shub_val_map(), risk = shub_val_map(),
               children = shub_val_array();
    shub_pb_str(b, &victim, "name", shub_val_str_at(&c->payload, "victim.name"));
    shub_pb_str(b, &victim, "dob", shub_val_str_at(&c->payload, "victim.dob"));
    shub_pb_str(b, &victim, "phone", shub_val_str_at(&c->payload, "victim.phone"));
    shub_pb_put(b, &pl, "victim", victim);
    if (c->dash >= 0)
        shub_pb_int(b, &risk, "dash_score", c->dash);
    shub_pb_put(b, &pl, "risk", risk);
    const shub_val_t *kids = shub_val_get(&c->payload, "children");
    for (uint32_t k = 0; kids && kids->type == SHUB_VAL_ARRAY && k < kids->len; k++) {
        shub_val_t child = shub_val_map();
        shub_pb_str(b, &child, "name", shub_val_str_at(&kids->as.items[k], "name"));
        shub_pb_str(b, &child, "dob", shub_val_str_at(&kids->as.items[k], "dob"));
        shub_pb_push(b, &children, child);
    }
    shub_pb_put(b, &pl, "children", children);
    return pl;
}

static shub_val_t ack_payload(pb_t *b, const mcase_t *c)
{
    static const char *const items[] = {
        "move",
        "heard_at_origin",
        "last_referral_date",
        "minutes",
        "action_plan",
        "open_actions",
        "victim",
        "risk",
        "children",
    };
    shub_val_t pl = shub_val_map(), got = shub_val_array();
    shub_pb_str(b, &pl, "new_case_ref", c->case_ref);
    for (size_t i = 0; i < sizeof items / sizeof items[0]; i++)
        if (has_key(&c->payload, items[i]))
            shub_pb_push_str(b, &got, items[i]);
    shub_pb_put(b, &pl, "received_items", got);
    return pl;
}

static shub_val_t request_payload(pb_t *b, const mcase_t *c)
{
    shub_val_t pl = shub_val_map(), missing = shub_val_array();
    if (c->ask_minutes)
        shub_pb_push_str(b, &missing, "minutes");
    if (c->ask_plan)
        shub_pb_push_str(b, &missing, "action_plan");
    shub_pb_put(b, &pl, "missing", missing);
    return pl;
}

static int fire(shub_profile_t *p, const job_t *job, shub_profile_emit_fn *emit,
                void *ctx)
{
    marac_t *st = p->state;
    if (job->ref >= st->n)
        return 0;
    mcase_t *c = &st->cases[job->ref];
    pb_t b = {.arena = shub_arena_new(4096)};
    if (!b.arena)
        return SHUB_ENOMEM;
    char sel[2][NAME_CAP + 20];
    const char *to[2] = {sel[0], sel[1]};
    uint32_t n_to = 1;
    shub_event_t ev = {
        .occurred_ms = job->due_ms,
        .case_ref = c->case_ref,
        .subject_ref = c->subject[0] ? c->subject : NULL,
        .area = c->area,
        .purpose = "marac-risk-management",
        .basis = "uk-gdpr-6-1-e",
        .consent = c->consent,
        .override = c->override[0] ? c->override : NULL,
        .reply_to = job->has_reply ? &job->reply_to : NULL,
    };
    switch (job->what) {
    case J_DECIDE:
        ev.type = "marac.referral.decision";
        ev.payload = decision_payload(&b, c);
        to[0] = c->from;
        break;
    case J_IDVA:
        ev.type = "idva.notification";
        ev.payload = idva_payload(&b, p, job->ref, c);
        snprintf(sel[0], sizeof sel[0], "idva@%s", c->area);
        break;
    case J_TRANSFER:
    case J_RESEND:
        ev.type = "marac.transfer";
        ev.area = c->new_area;
        ev.payload =
            transfer_payload(&b, p, job->ref, c, job->what == J_RESEND || !c->incomplete);
        snprintf(sel[0], sizeof sel[0], "marac@%s", c->new_area);
        break;
    case J_MOVED: {
        char date[SHUB_TIME_DATE_TEXT];
        ev.type = "subject.moved_area";
        ev.case_ref = NULL; /* that the person left, and nothing about the case */
        ev.payload = shub_val_map();
        shub_time_format_date(c->move_ms, date);
        shub_pb_str(&b, &ev.payload, "left_area", c->area);
        shub_pb_str(&b, &ev.payload, "date", date);
        snprintf(sel[0], sizeof sel[0], "idva@%s", c->area);
        snprintf(sel[1], sizeof sel[1], "local-authority@%s", c->area);
        n_to = shub_val_array_len(&c->payload, "children") ? 2 : 1;
        break;
    }
    case J_ACK:
        ev.type = "marac.transfer.ack";
        ev.payload = ack_payload(&b, c);
        to[0] = c->from;
        break;
    case J_REQUEST:
        ev.type = "marac.transfer.request_missing";
        ev.payload = request_payload(&b, c);
        to[0] = c->from;
        break;
    default:
        shub_arena_destroy(&b.arena);
        return 0;
    }
    int rc = b.rc ? b.rc : shub_profile_emit(emit, ctx, &ev, to, n_to);
    shub_arena_destroy(&b.arena);
    if (rc)
        return rc;
    if (job->what == J_TRANSFER)
        c->out = OUT_SENT;
    else if (job->what == J_RESEND)
        c->out = OUT_RESENT;
    else if (job->what == J_ACK)
        c->in = IN_NONE;
    return 0;
}

const profile_ops_t shub_profile_marac_ops = {
    .kind = "marac",
    .init = init,
    .fini = fini,
    .fire = fire,
    .receive = receive,
};
