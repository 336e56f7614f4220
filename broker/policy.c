/*
 * policy: the decision for one (sender, recipient, event), see
 * include/sharehub/policy.h for the order of checks and the reason codes.
 *
 * Every flow of every agreement is checked in full against the share. The
 * first flow that passes everything allows. Otherwise the closest flow names
 * the reason (its first failed check) and the explanation says what would
 * have permitted the share; see better() for what "closest" means.
 *
 * Pure: reads the immutable config and the event, writes only *out; the
 * explanation is formatted into the decision's own buffer. Linear in the
 * number of flows, which is fine for the tens of agreements a region has.
 */
#include "sharehub/policy.h"

#include "sharehub/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

enum {
    C_SENDER_PARTY,
    C_RECIPIENT_PARTY,
    C_STATUS,
    C_VALIDITY,
    C_FROM,
    C_TO,
    C_EVENT,
    C_PURPOSE,
    C_BASIS,
    C_CONSENT,
    C_CONDITION,
    C_COUNT, /* all passed */
};

static const char *const reason_codes[C_COUNT] = {
    "no-agreement",
    "recipient-not-party",
    "agreement-not-active",
    "outside-validity",
    "no-agreement",
    "recipient-not-party",
    "event-type-not-permitted",
    "purpose-not-permitted",
    "legal-basis-not-permitted",
    "consent-missing",
    "condition-failed",
};

/* ---- a bounded line writer ---------------------------------------------- */

typedef struct line {
    char *buf;
    size_t size, len;
} line_t;

static void put(line_t *l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void put(line_t *l, const char *fmt, ...)
{
    if (l->len + 1 >= l->size)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(l->buf + l->len, l->size - l->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->len = (size_t)n >= l->size - l->len ? l->size - 1 : l->len + (size_t)n;
}

static void put_list(line_t *l, const char *const *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        put(l, "%s'%s'", i ? ", " : "", v[i]);
}

static void put_date(line_t *l, int64_t ms)
{
    char date[SHUB_TIME_DATE_TEXT];
    put(l, "%s", shub_time_format_date(ms, date));
}

static void put_set(line_t *l, const shub_party_set_t *s, const shub_event_t *ev)
{
    size_t parts = 0;
    for (size_t i = 0; i < s->n_orgs; i++)
        put(l, "%s%s", parts++ ? " or " : "", s->orgs[i]);
    for (size_t i = 0; i < s->n_kinds; i++) {
        bool vowel = strchr("aeiou", s->kinds[i][0]) != NULL;
        put(l, "%s%s %s", parts++ ? " or " : "", vowel ? "an" : "a", s->kinds[i]);
    }
    if (s->serving_subject_area) {
        if (!parts)
            put(l, "a party");
        if (ev->area)
            put(l, " serving '%s'", ev->area);
        else
            put(l, " serving the subject's area (the event names none)");
    }
}

/* ---- checks ------------------------------------------------------------- */

static bool in_list(const char *const *v, size_t n, const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i], s) == 0)
            return true;
    return false;
}

static bool set_has(const shub_party_set_t *s, const shub_org_t *org)
{
    return in_list(s->orgs, s->n_orgs, org->id) ||
           in_list(s->kinds, s->n_kinds, org->kind);
}

static bool set_matches(const shub_party_set_t *s, const shub_org_t *org,
                        const char *area)
{
    if ((s->n_orgs || s->n_kinds) && !set_has(s, org))
        return false;
    return !s->serving_subject_area || shub_org_serves(org, area);
}

static const char *find_basis(const shub_flow_t *f, const char *basis)
{
    if (!basis)
        return NULL;
    for (size_t i = 0; i < f->n_bases; i++)
        if (strcmp(f->bases[i], basis) == 0)
            return f->bases[i];
    return NULL;
}

static bool consent_ok(const shub_agreement_t *ag, const shub_event_t *ev)
{
    return !ag->consent_required || ev->consent == SHUB_CONSENT_GIVEN ||
           in_list(ag->override_reasons, ag->n_override_reasons, ev->override);
}

typedef struct score {
    int stage; /* first failed check; C_COUNT if none */
    int passed;
    bool pass[C_COUNT];
} score_t;

/* How a condition is judged: on the event itself (live), or on an event
 * rebuilt from the log, where an unknown answer is taken as true or false. */
typedef enum { COND_LIVE, COND_ASSUME_FALSE, COND_ASSUME_TRUE } cond_mode_t;

static bool condition_passes(const shub_flow_t *f, const shub_event_t *ev, cond_mode_t m,
                             const shub_policy_hint_t *hint, bool *unknown)
{
    if (!f->condition)
        return true;
    if (m == COND_LIVE)
        return shub_condition_eval(f->condition, ev);
    shub_cond_truth_t t = shub_condition_eval_partial(f->condition, ev);
    if (t == SHUB_COND_UNKNOWN && hint && hint->condition && f->condition_text &&
        strcmp(hint->condition, f->condition_text) == 0)
        return hint->holds; /* the same text was judged on the event itself */
    if (t == SHUB_COND_UNKNOWN) {
        *unknown = true;
        return m == COND_ASSUME_TRUE;
    }
    return t == SHUB_COND_TRUE;
}

/* area: the event's area if the registry knows it, else NULL (served by no
 * one, so an all-areas org does not match a misspelt area). */
static score_t score_flow(const shub_agreement_t *ag, const shub_flow_t *f,
                          const shub_org_t *s, const shub_org_t *r,
                          const shub_event_t *ev, const char *area, int64_t now_ms,
                          cond_mode_t mode, const shub_policy_hint_t *hint,
                          bool *unknown)
{
    score_t sc = {.stage = C_COUNT};
    sc.pass[C_SENDER_PARTY] = set_has(&ag->parties, s);
    sc.pass[C_RECIPIENT_PARTY] = set_has(&ag->parties, r);
    sc.pass[C_STATUS] = ag->status == SHUB_AGREEMENT_ACTIVE;
    sc.pass[C_VALIDITY] =
        now_ms >= ag->info.valid_from_ms && now_ms <= ag->info.valid_until_ms;
    sc.pass[C_FROM] = set_matches(&f->from, s, area);
    sc.pass[C_TO] = set_matches(&f->to, r, area);
    sc.pass[C_EVENT] = in_list(f->events, f->n_events, ev->type);
    sc.pass[C_PURPOSE] = in_list(f->purposes, f->n_purposes, ev->purpose);
    sc.pass[C_BASIS] = find_basis(f, ev->basis) != NULL;
    sc.pass[C_CONSENT] = consent_ok(ag, ev);
    sc.pass[C_CONDITION] = condition_passes(f, ev, mode, hint, unknown);
    for (int i = 0; i < C_COUNT; i++) {
        if (sc.pass[i])
            sc.passed++;
        else if (sc.stage == C_COUNT)
            sc.stage = i;
    }
    return sc;
}

/* Closeness: naming both parties comes first (an agreement that does not
 * name them is not about them), then the number of checks passed, so a draft
 * agreement that would otherwise fit is reported rather than an active one
 * that differs in three ways; then how far down the order it got. */
static bool better(const score_t *a, const score_t *b)
{
    if (b->stage < 0)
        return true;
    if (a->pass[C_SENDER_PARTY] != b->pass[C_SENDER_PARTY])
        return a->pass[C_SENDER_PARTY];
    if (a->pass[C_RECIPIENT_PARTY] != b->pass[C_RECIPIENT_PARTY])
        return a->pass[C_RECIPIENT_PARTY];
    if (a->passed != b->passed)
        return a->passed > b->passed;
    return a->stage > b->stage;
}

/* ---- explanations ------------------------------------------------------- */

static bool rest_passes(const score_t *sc, int from)
{
    for (int i = from; i < C_COUNT; i++)
        if (!sc->pass[i])
            return false;
    return true;
}

static void explain_deny(line_t *l, const shub_agreement_t *ag, const shub_flow_t *f,
                         const score_t *sc, const shub_org_t *s, const shub_org_t *r,
                         const shub_event_t *ev, int64_t now_ms)
{
    const char *a = ag->info.id;
    const char *type = ev->type ? ev->type : "(none)";
    unsigned v = ag->info.version;
    switch (sc->stage) {
    case C_RECIPIENT_PARTY:
        put(l, "no agreement lets %s send '%s' to %s: %s is not a party to '%s' v%u",
            s->id, type, r->id, r->id, a, v);
        return;
    case C_STATUS:
        put(l, "'%s' v%u is %s, not active", a, v, ag->info.status);
        if (rest_passes(sc, C_VALIDITY))
            put(l, "; flow '%s' would allow it once active", f->id);
        return;
    case C_VALIDITY:
        put(l, "'%s' v%u is in force from ", a, v);
        put_date(l, ag->info.valid_from_ms);
        put(l, " to ");
        put_date(l, ag->info.valid_until_ms);
        put(l, ", not on ");
        put_date(l, now_ms);
        if (now_ms > ag->info.valid_until_ms)
            put(l, ": it has expired");
        if (rest_passes(sc, C_FROM))
            put(l, "; flow '%s' would allow it within those dates", f->id);
        return;
    case C_FROM:
        put(l,
            "no flow of '%s' v%u lets %s send '%s' to %s; flow '%s' would if the sender "
            "were ",
            a, v, s->id, type, r->id, f->id);
        put_set(l, &f->from, ev);
        return;
    case C_TO:
        put(l,
            "no flow of '%s' v%u lets %s send '%s' to %s; flow '%s' would if the "
            "recipient "
            "were ",
            a, v, s->id, type, r->id, f->id);
        put_set(l, &f->to, ev);
        return;
    case C_EVENT:
        put(l, "flow '%s' of '%s' v%u from %s to %s carries ", f->id, a, v, s->id, r->id);
        put_list(l, f->events, f->n_events);
        put(l, ", not '%s'", type);
        return;
    case C_PURPOSE:
        put(l, "flow '%s' of '%s' v%u permits purpose ", f->id, a, v);
        put_list(l, f->purposes, f->n_purposes);
        put(l, ", not '%s'", ev->purpose ? ev->purpose : "(none)");
        return;
    case C_BASIS:
        put(l, "flow '%s' of '%s' v%u permits legal basis ", f->id, a, v);
        put_list(l, f->bases, f->n_bases);
        put(l, ", not '%s'", ev->basis ? ev->basis : "(none)");
        return;
    case C_CONSENT:
        put(l, "flow '%s' of '%s' v%u needs consent, which is '%s'", f->id, a, v,
            shub_consent_name(ev->consent));
        if (ev->override)
            put(l, ", and override '%s' is not allowed", ev->override);
        if (ag->n_override_reasons) {
            put(l, "; an override reason of ");
            put_list(l, ag->override_reasons, ag->n_override_reasons);
            put(l, " would permit it");
        } else {
            put(l, "; the agreement allows no override");
        }
        return;
    case C_CONDITION:
        put(l, "flow '%s' of '%s' v%u: condition not met: %s", f->id, a, v,
            f->condition_text ? f->condition_text : "(none)");
        return;
    default:
        return;
    }
}

static void clear(shub_decision_t *out)
{
    memset(out, 0, sizeof *out);
}

static void set_agreement(shub_decision_t *out, const shub_agreement_t *ag)
{
    out->agreement = ag->info.id;
    out->version = ag->info.version;
    out->agreement_hash = ag->info.content_hash;
}

/* ---- public ------------------------------------------------------------- */

static int decide(const shub_config_t *cfg, const char *sender, const char *recipient,
                  const shub_event_t *ev, int64_t now_ms, cond_mode_t mode,
                  const shub_policy_hint_t *hint, bool *unknown, shub_decision_t *out)
{
    clear(out);
    line_t l = {out->explanation, sizeof out->explanation, 0};
    const char *type = ev->type ? ev->type : "(none)";
    const shub_org_t *s = shub_config_org(cfg, sender);
    const shub_org_t *r = shub_config_org(cfg, recipient);
    if (!s || !r) {
        out->reason = reason_codes[C_SENDER_PARTY];
        put(&l, "unknown %s '%s'", !s ? "sender" : "recipient", !s ? sender : recipient);
        return 0;
    }

    const char *area = shub_config_area_known(cfg, ev->area) ? ev->area : NULL;
    score_t best = {.stage = -1};
    const shub_agreement_t *best_ag = NULL;
    const shub_flow_t *best_flow = NULL;
    for (size_t i = 0; i < shub_config_agreement_count(cfg); i++) {
        const shub_agreement_t *ag = shub_config_agreement_at(cfg, i);
        for (size_t j = 0; j < ag->n_flows; j++) {
            const shub_flow_t *f = &ag->flows[j];
            score_t sc = score_flow(ag, f, s, r, ev, area, now_ms, mode, hint, unknown);
            if (sc.stage == C_COUNT) {
                out->allow = true;
                set_agreement(out, ag);
                out->flow = f->id;
                out->fields = f->fields;
                out->n_fields = f->n_fields;
                out->legal_basis = find_basis(f, ev->basis);
                out->ack_within_hours = f->ack_within_hours;
                out->act_within_hours = f->act_within_hours;
                out->onward_sharing = f->onward_sharing;
                out->report = f->report;
                out->n_report = f->n_report;
                put(&l, "flow '%s' of '%s' v%u lets %s send '%s' to %s (basis %s)", f->id,
                    ag->info.id, ag->info.version, s->id, type, r->id, out->legal_basis);
                return 0;
            }
            if (better(&sc, &best)) {
                best = sc;
                best_ag = ag;
                best_flow = f;
            }
        }
    }

    if (!best_ag || best.stage == C_SENDER_PARTY) {
        out->reason = reason_codes[C_SENDER_PARTY];
        put(&l, "no agreement names %s as a party, so none lets it send '%s' to %s",
            s->id, type, r->id);
        return 0;
    }
    out->reason = reason_codes[best.stage];
    set_agreement(out, best_ag);
    if (best.stage > C_RECIPIENT_PARTY)
        out->flow = best_flow->id;
    explain_deny(&l, best_ag, best_flow, &best, s, r, ev, now_ms);
    return 0;
}

int shub_policy_decide(const shub_config_t *cfg, const char *sender,
                       const char *recipient, const shub_event_t *ev, int64_t now_ms,
                       shub_decision_t *out)
{
    bool unknown = false;
    if (!cfg || !sender || !recipient || !ev || !out)
        return SHUB_EINVAL;
    return decide(cfg, sender, recipient, ev, now_ms, COND_LIVE, NULL, &unknown, out);
}

/* Decided twice, once taking every unknown condition as false and once as
 * true: where the two agree, no value the log lacks matters. */
int shub_policy_decide_partial(const shub_config_t *cfg, const char *sender,
                               const char *recipient, const shub_event_t *ev,
                               int64_t now_ms, const shub_policy_hint_t *hint,
                               shub_decision_t *out, bool *undecidable)
{
    bool unknown = false;
    if (!cfg || !sender || !recipient || !ev || !out || !undecidable)
        return SHUB_EINVAL;
    *undecidable = false;
    decide(cfg, sender, recipient, ev, now_ms, COND_ASSUME_FALSE, hint, &unknown, out);
    if (!unknown)
        return 0;
    shub_decision_t other;
    decide(cfg, sender, recipient, ev, now_ms, COND_ASSUME_TRUE, hint, &unknown, &other);
    *undecidable = other.allow != out->allow ||
                   (out->allow && (strcmp(other.agreement, out->agreement) != 0 ||
                                   strcmp(other.flow, out->flow) != 0));
    return 0;
}

int shub_policy_recheck(const shub_config_t *cfg, const char *agreement_id,
                        int64_t now_ms, shub_decision_t *out)
{
    if (!cfg || !agreement_id || !out)
        return SHUB_EINVAL;
    clear(out);
    line_t l = {out->explanation, sizeof out->explanation, 0};
    long i = shub_config_agreement_find(cfg, agreement_id);
    if (i < 0) {
        out->reason = "no-agreement";
        put(&l, "agreement '%s' is no longer loaded", agreement_id);
        return 0;
    }
    const shub_agreement_t *ag = shub_config_agreement_at(cfg, (size_t)i);
    set_agreement(out, ag);
    if (ag->status != SHUB_AGREEMENT_ACTIVE) {
        out->reason = "agreement-not-active";
        put(&l, "'%s' v%u is %s, not active", ag->info.id, ag->info.version,
            ag->info.status);
    } else if (now_ms < ag->info.valid_from_ms) {
        out->reason = "agreement-not-active";
        put(&l, "'%s' v%u is not in force until ", ag->info.id, ag->info.version);
        put_date(&l, ag->info.valid_from_ms);
    } else if (now_ms > ag->info.valid_until_ms) {
        out->reason = "agreement-expired";
        put(&l, "'%s' v%u expired at the end of ", ag->info.id, ag->info.version);
        put_date(&l, ag->info.valid_until_ms);
    } else {
        out->allow = true;
        put(&l, "'%s' v%u is in force", ag->info.id, ag->info.version);
    }
    return 0;
}

/* Is every comma-separated leaf in `fields` covered by an allowed path (the
 * path itself, or an ancestor of it)? "*" covers all. A list cut with "..."
 * is never covered: what it did not name cannot be known to be allowed. */
static bool fields_covered(const shub_flow_t *f, const char *fields)
{
    if (!fields)
        return true;
    for (const char *p = fields; *p;) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        bool ok = false;
        if (n == 3 && memcmp(p, "...", 3) == 0)
            return in_list(f->fields, f->n_fields, "*");
        for (size_t i = 0; i < f->n_fields && !ok; i++) {
            size_t an = strlen(f->fields[i]);
            ok = strcmp(f->fields[i], "*") == 0 ||
                 (an <= n && memcmp(f->fields[i], p, an) == 0 && (an == n || p[an] == '.'));
        }
        if (n && !ok)
            return false;
        if (!e)
            break;
        p = e + 1;
    }
    return true;
}

int shub_policy_recheck_copy(const shub_config_t *cfg, const shub_policy_copy_t *c,
                             int64_t now_ms, shub_decision_t *out)
{
    if (!cfg || !c || !c->agreement || !c->sender || !c->recipient || !out)
        return SHUB_EINVAL;
    int rc = shub_policy_recheck(cfg, c->agreement, now_ms, out);
    if (rc || !out->allow)
        return rc;
    const shub_agreement_t *ag =
        shub_config_agreement_at(cfg, (size_t)shub_config_agreement_find(cfg, c->agreement));
    out->flow = c->flow;
    if (c->agreement_hash && strcmp(c->agreement_hash, ag->info.content_hash) == 0)
        return 0; /* the same text decided it: in force is enough */

    line_t l = {out->explanation, sizeof out->explanation, 0};
    const shub_org_t *s = shub_config_org(cfg, c->sender);
    const shub_org_t *r = shub_config_org(cfg, c->recipient);
    const char *area = shub_config_area_known(cfg, c->area) ? c->area : NULL;
    shub_event_t ev = {.type = c->event_type, .purpose = c->purpose, .basis = c->basis};
    for (size_t j = 0; s && r && j < ag->n_flows; j++) {
        const shub_flow_t *f = &ag->flows[j];
        if (set_has(&ag->parties, s) && set_has(&ag->parties, r) &&
            set_matches(&f->from, s, area) && set_matches(&f->to, r, area) &&
            in_list(f->events, f->n_events, ev.type) &&
            in_list(f->purposes, f->n_purposes, ev.purpose) && find_basis(f, ev.basis) &&
            fields_covered(f, c->fields_shared)) {
            out->flow = f->id;
            out->explanation[0] = '\0';
            l.len = 0;
            put(&l, "flow '%s' of '%s' v%u still carries the copy decided under v%u",
                f->id, ag->info.id, ag->info.version, c->version);
            return 0;
        }
    }
    out->allow = false;
    out->reason = "agreement-changed";
    out->flow = NULL;
    out->explanation[0] = '\0';
    l.len = 0;
    put(&l,
        "'%s' v%u has no flow that still lets %s send '%s' to %s with the fields this "
        "copy carries (decided under v%u, flow '%s')",
        ag->info.id, ag->info.version, c->sender, c->event_type ? c->event_type : "(none)",
        c->recipient, c->version, c->flow ? c->flow : "(none)");
    return 0;
}
