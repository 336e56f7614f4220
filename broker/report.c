/*
 * report: the board report in plain words (include/sharehub/report.h). The
 * figures come from shub_query_report; each section below is one builder
 * that reads the query's sections by name and adds rows in words. Cells are
 * copied text; the renderers at the bottom know nothing of any section.
 */
#include "sharehub/report.h"

#include "sharehub/alloc.h"

#include <errno.h>
#include <stdint.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_COLS          12
#define TEXT_CELL_MAX     40 /* characters of a text cell in the text format */
#define REPORT_TOP_FIELDS 3

typedef struct col {
    const char *key, *label;
    bool number;
    bool wide; /* left out of the text format (too wide for a page): csv, json, pages */
} col_t;

typedef struct sec {
    const char *id, *title, *what, *glossary;
    col_t cols[MAX_COLS];
    size_t ncols;
    char **cells, **links; /* nrows * ncols */
    size_t nrows, cap;
    int chart_label, chart_value;
} sec_t;

struct shub_report {
    char *title, *coverage;
    sec_t *secs;
    size_t n, cap;
    bool failed; /* out of memory while building */
};

typedef struct build {
    shub_report_t *r;
    const shub_query_result_t *q;
    const shub_orgs_t *orgs;
} build_t;

/* ---- building blocks ------------------------------------------------------- */

static char *dup_or_fail(shub_report_t *r, const char *t)
{
    char *c = t ? shub_strdup(t) : NULL;
    if (t && !c)
        r->failed = true;
    return c;
}

static sec_t *sec_add(shub_report_t *r, const char *id, const char *title,
                      const char *what, const char *glossary, const col_t *cols,
                      size_t ncols)
{
    if (shub_grow((void **)&r->secs, &r->cap, r->n + 1, sizeof *r->secs)) {
        r->failed = true;
        return NULL;
    }
    sec_t *s = &r->secs[r->n++];
    *s = (sec_t){.id = id,
                 .title = title,
                 .what = what,
                 .glossary = glossary,
                 .ncols = ncols,
                 .chart_label = -1,
                 .chart_value = -1};
    memcpy(s->cols, cols, ncols * sizeof *cols);
    return s;
}

/* Appends a row of ncols cells (copied; NULL allowed); returns its index. */
static size_t row_add(shub_report_t *r, sec_t *s, const char *const *cells)
{
    if (!s)
        return 0;
    if (s->nrows == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        char **c = shub_realloc(s->cells, cap * s->ncols * sizeof *c);
        if (c)
            s->cells = c;
        char **l = c ? shub_realloc(s->links, cap * s->ncols * sizeof *l) : NULL;
        if (l)
            s->links = l;
        if (!c || !l) {
            r->failed = true;
            return 0;
        }
        s->cap = cap;
    }
    size_t row = s->nrows++;
    for (size_t i = 0; i < s->ncols; i++) {
        s->cells[row * s->ncols + i] = dup_or_fail(r, cells[i]);
        s->links[row * s->ncols + i] = NULL;
    }
    return row;
}

static void link_set(shub_report_t *r, sec_t *s, size_t row, size_t col, const char *kind,
                     const char *value)
{
    char buf[256];
    if (!s || !value || row >= s->nrows)
        return;
    snprintf(buf, sizeof buf, "%s:%s", kind, value);
    shub_free(s->links[row * s->ncols + col]);
    s->links[row * s->ncols + col] = dup_or_fail(r, buf);
}

/* A row whose cell `col` links to an organisation's or agreement's log. */
static void row_linked(build_t *b, sec_t *s, const char *const *cells, size_t col,
                       const char *kind, const char *value)
{
    size_t row = row_add(b->r, s, cells);
    link_set(b->r, s, row, col, kind, value);
}

static const char *qcell(const build_t *b, const char *sec, size_t row, const char *col)
{
    return shub_query_cell(b->q, sec, row, col);
}

static int64_t qint(const build_t *b, const char *sec, size_t row, const char *col)
{
    const char *t = qcell(b, sec, row, col);
    return t ? strtoll(t, NULL, 10) : 0;
}

static const char *num(char buf[32], int64_t v)
{
    snprintf(buf, 32, "%lld", (long long)v);
    return buf;
}

/* An organisation for people: its orgs.yaml name, else its id. */
static const char *org_name(const build_t *b, const char *id)
{
    const shub_orgs_entry_t *e = b->orgs && id ? shub_orgs_find(b->orgs, id) : NULL;
    return e && e->name ? e->name : id ? id : "(none)";
}

static bool has_kind(const build_t *b, const char *kind)
{
    for (size_t i = 0; b->orgs && i < b->orgs->orgs_count; i++)
        if (strcmp(b->orgs->orgs[i].kind, kind) == 0)
            return true;
    return false;
}

/* An agreement for people: the title of its newest version, else its id. */
static const char *agreement_title(const build_t *b, const char *id)
{
    if (!id)
        return "(no agreement applied)";
    for (size_t i = 0; i < shub_query_row_count(b->q, "agreement_versions"); i++) {
        const char *a = qcell(b, "agreement_versions", i, "agreement");
        if (a && strcmp(a, id) == 0 && qint(b, "agreement_versions", i, "newest") == 1) {
            const char *t = qcell(b, "agreement_versions", i, "title");
            return t && *t ? t : id;
        }
    }
    return id;
}

/* A reason code in words, for the few a board meets. */
static const char *reason_words(const char *code)
{
    static const struct {
        const char *code, *words;
    } table[] = {
        {"max-attempts", "never acknowledged"},
        {"agreement-expired", "agreement no longer in force"},
        {"agreement-changed", "agreement changed before delivery"},
        {"agreement-not-active", "agreement not active (draft or suspended)"},
        {"outside-validity", "outside the agreement's dates"},
        {"no-agreement", "no agreement covers it"},
        {"recipient-not-party", "recipient not a party to the agreement"},
        {"event-type-not-permitted", "event type not in any flow"},
        {"purpose-not-permitted", "purpose not allowed"},
        {"legal-basis-not-permitted", "legal basis not allowed"},
        {"condition-failed", "the flow's condition was not met"},
        {"no-recipient", "addressed to nobody"},
        {"consent-missing", "consent neither given nor overridden"},
    };
    for (size_t i = 0; code && i < sizeof table / sizeof table[0]; i++)
        if (strcmp(code, table[i].code) == 0)
            return table[i].words;
    return code ? code : "-";
}

static const char *date_of(char buf[16], const char *time)
{
    if (!time)
        return NULL;
    snprintf(buf, 16, "%.10s", time);
    return buf;
}

/* ---- the sections, in report order ----------------------------------------- */

static void build_summary(build_t *b)
{
    static const col_t cols[] = {{"measure", "Measure", false, false},
                                 {"number", "Number", true, false},
                                 {"meaning", "Meaning", false, false}};
    static const struct {
        const char *col, *label, *meaning;
    } rows[] = {
        {"events", "Events sent", "what partners sent through the hub"},
        {"shares", "Shares decided",
         "one for each event and each organisation it was for"},
        {"allowed", "Shared",
         "an agreement allowed it; sent with only the fields it allows"},
        {"denied", "Refused", "no agreement allowed it; nothing was sent"},
        {"acknowledged", "Received", "taken into the recipient's own system"},
        {"given_up", "Given up", "never received, or the agreement changed first"},
        {"escalations", "Overdue notices", "sent to senders and escalation contacts"},
    };
    sec_t *s =
        sec_add(b->r, "summary", "The period in numbers",
                "An event can go to several organisations, each copy decided on its "
                "own: so there are more shares than events.",
                NULL, cols, 3);
    for (size_t i = 0; s && i < sizeof rows / sizeof rows[0]; i++) {
        char n[32];
        const char *cells[] = {rows[i].label, num(n, qint(b, "summary", 0, rows[i].col)),
                               rows[i].meaning};
        row_add(b->r, s, cells);
    }
}

/* Where the MARAC table's timeliness row for `marac` is, or -1. */
static long marac_timely_row(const build_t *b, const char *marac)
{
    for (size_t i = 0; i < shub_query_row_count(b->q, "marac_timeliness"); i++) {
        const char *m = qcell(b, "marac_timeliness", i, "marac");
        if (m && strcmp(m, marac) == 0)
            return (long)i;
    }
    return -1;
}

static void build_marac(build_t *b)
{
    static const col_t cols[] = {
        {"marac", "MARAC", false, false},      {"received", "Received", true, false},
        {"accepted", "Accepted", true, false}, {"withdrawn", "Withdrawn", true, false},
        {"moved_in", "In", true, false},       {"moved_out", "Out", true, false},
        {"on_time", "On time", true, false},   {"median_hours", "Median h", true, false},
        {"p90_hours", "90% h", true, false},
    };
    size_t n = shub_query_row_count(b->q, "marac");
    if (n == 0 && shub_query_row_count(b->q, "marac_timeliness") == 0 &&
        !has_kind(b, "marac"))
        return; /* a partnership without MARACs */
    sec_t *s = sec_add(
        b->r, "marac", "MARAC referrals",
        "Referrals each MARAC received, what became of them, and how soon it first "
        "answered.",
        "Withdrawn: closed before the meeting. In, Out: cases moved from or to another "
        "MARAC "
        "with the victim. On time: first answer (a decision or an IDVA referral) within "
        "the "
        "agreement's target. Median h, 90% h: hours within which half, nine in ten were "
        "answered.",
        cols, 9);
    if (!s)
        return;
    s->chart_label = 0;
    s->chart_value = 1;
    int64_t total[6] = {0};
    static const char *const metrics[] = {"received", "accepted", "withdrawn",
                                          "transferred_in", "transferred_out"};
    for (size_t i = 0; i < n; i++) {
        const char *id = qcell(b, "marac", i, "marac");
        char v[8][32];
        const char *cells[9] = {org_name(b, id)};
        for (int k = 0; k < 5; k++) {
            int64_t x = qint(b, "marac", i, metrics[k]);
            total[k] += x;
            cells[1 + k] = num(v[k], x);
        }
        long t = id ? marac_timely_row(b, id) : -1;
        if (t >= 0) {
            total[5] += qint(b, "marac_timeliness", (size_t)t, "in_time");
            cells[6] = num(v[5], qint(b, "marac_timeliness", (size_t)t, "in_time"));
            cells[7] = qcell(b, "marac_timeliness", (size_t)t, "median_hours");
            cells[8] = qcell(b, "marac_timeliness", (size_t)t, "p90_hours");
        }
        row_linked(b, s, cells, 0, "org", id);
    }
    if (n > 1) {
        char v[6][32];
        const char *cells[9] = {"All MARACs",        num(v[0], total[0]),
                                num(v[1], total[1]), num(v[2], total[2]),
                                num(v[3], total[3]), num(v[4], total[4]),
                                num(v[5], total[5])};
        row_add(b->r, s, cells);
    }
}

static void build_timeliness(build_t *b)
{
    static const col_t cols[] = {
        {"flow", "Flow", false, false},         {"agreement", "Agreement", false, true},
        {"answer", "Answer", false, false},     {"target_hours", "Target", true, false},
        {"shares", "Shares", true, false},      {"on_time", "On time", true, false},
        {"late", "Late", true, false},          {"overdue", "Overdue", true, false},
        {"escalated", "Escalated", true, true}, {"median_hours", "Median", true, false},
        {"p90_hours", "90% h", true, false},
    };
    size_t n = shub_query_row_count(b->q, "timeliness");
    sec_t *s = sec_add(
        b->r, "timeliness", "Answered in time",
        "Shares under a flow with a deadline: did the recipient answer in time? The "
        "clock "
        "starts when the hub accepts the share; Target, Median and 90% are in hours.",
        "Answer: any, an event from the recipient naming the share; to sender, one sent "
        "back "
        "to whoever shared it. Overdue: past its deadline, no answer yet; each was "
        "escalated "
        "(csv and pages: Escalated) to its sender and the agreement's escalation "
        "contact.",
        cols, 11);
    for (size_t i = 0; s && i < n; i++) {
        const char *ag = qcell(b, "timeliness", i, "agreement");
        const char *cells[11] = {
            qcell(b, "timeliness", i, "flow"),
            ag,
            qint(b, "timeliness", i, "kind") == SHUB_STORE_DEADLINE_ACT ? "to sender"
                                                                        : "any",
            qcell(b, "timeliness", i, "target_hours"),
            qcell(b, "timeliness", i, "shares"),
            qcell(b, "timeliness", i, "in_time"),
            qcell(b, "timeliness", i, "late"),
            qcell(b, "timeliness", i, "overdue"),
            qcell(b, "timeliness", i, "escalated"),
            qcell(b, "timeliness", i, "median_hours"),
            qcell(b, "timeliness", i, "p90_hours"),
        };
        row_linked(b, s, cells, 1, "agreement", ag);
    }
}

static void build_agreements(build_t *b)
{
    static const col_t cols[] = {
        {"agreement", "Agreement", false, false},
        {"shared", "Shared", true, false},
        {"refused", "Refused", true, false},
        {"top_reason", "Most common reason refused", false, false},
    };
    sec_t *s =
        sec_add(b->r, "agreements", "Shares by agreement",
                "Which agreement decided each share; a refusal names the one that came "
                "closest, if any.",
                NULL, cols, 4);
    size_t n = shub_query_row_count(b->q, "agreements");
    for (size_t i = 0; s && i < n;) {
        const char *ag = qcell(b, "agreements", i, "agreement");
        int64_t shared = 0, refused = 0, top = 0;
        const char *reason = NULL;
        size_t j = i;
        for (; j < n; j++) {
            const char *aj = qcell(b, "agreements", j, "agreement");
            if (!(aj == ag || (aj && ag && strcmp(aj, ag) == 0)))
                break;
            int64_t k = qint(b, "agreements", j, "shares");
            const char *d = qcell(b, "agreements", j, "decision");
            if (d && strcmp(d, "allow") == 0) {
                shared += k;
            } else {
                refused += k;
                if (k > top) {
                    top = k;
                    reason = qcell(b, "agreements", j, "reason");
                }
            }
        }
        char v[2][32];
        const char *cells[] = {agreement_title(b, ag), num(v[0], shared),
                               num(v[1], refused), refused ? reason_words(reason) : NULL};
        row_linked(b, s, cells, 0, "agreement", ag);
        i = j;
    }
}

static void build_orgs(build_t *b)
{
    static const col_t cols[] = {
        {"organisation", "Organisation", false, false},
        {"shared", "Shared by it", true, false},
        {"refused", "Refused", true, false},
        {"received", "Shared with it", true, false},
    };
    sec_t *s = sec_add(b->r, "orgs", "Shares by organisation",
                       "What each organisation shared, had refused, and was sent.", NULL,
                       cols, 4);
    size_t n = shub_query_row_count(b->q, "orgs");
    /* The query gives (sender, recipient) pairs; one row per organisation. */
    const char **ids = shub_calloc(2 * n + 1, sizeof *ids);
    int64_t(*sums)[3] = shub_calloc(2 * n + 1, sizeof *sums);
    size_t m = 0;
    if (!ids || !sums) {
        b->r->failed = true;
        n = 0;
    }
    for (size_t i = 0; i < n; i++) {
        const char *who[2] = {qcell(b, "orgs", i, "sender"),
                              qcell(b, "orgs", i, "recipient")};
        for (int w = 0; w < 2; w++) {
            if (!who[w])
                continue;
            size_t k = 0;
            while (k < m && strcmp(ids[k], who[w]) != 0)
                k++;
            if (k == m)
                ids[m++] = who[w];
            if (w == 0) {
                sums[k][0] += qint(b, "orgs", i, "allowed");
                sums[k][1] += qint(b, "orgs", i, "denied");
            } else {
                sums[k][2] += qint(b, "orgs", i, "allowed");
            }
        }
    }
    for (size_t k = 0; s && k < m; k++) {
        char v[3][32];
        const char *cells[] = {org_name(b, ids[k]), num(v[0], sums[k][0]),
                               num(v[1], sums[k][1]), num(v[2], sums[k][2])};
        row_linked(b, s, cells, 0, "org", ids[k]);
    }
    shub_free(ids);
    shub_free(sums);
}

static void build_fields(build_t *b)
{
    static const col_t cols[] = {{"agreement", "Agreement", false, false},
                                 {"field", "Field withheld", false, false},
                                 {"times", "Times", true, false}};
    sec_t *s =
        sec_add(b->r, "fields_withheld", "Fields withheld",
                "Fields the agreement does not let the recipient have, removed by the "
                "hub before delivery: the three most frequent per agreement.",
                NULL, cols, 3);
    for (size_t i = 0; s && i < shub_query_row_count(b->q, "fields_stripped"); i++) {
        const char *ag = qcell(b, "fields_stripped", i, "agreement");
        const char *cells[] = {agreement_title(b, ag),
                               qcell(b, "fields_stripped", i, "field"),
                               qcell(b, "fields_stripped", i, "times")};
        row_linked(b, s, cells, 0, "agreement", ag);
    }
}

static void build_delivery(build_t *b)
{
    static const col_t dead[] = {{"organisation", "Organisation", false, false},
                                 {"why", "Why", false, false},
                                 {"deliveries", "Deliveries", true, false}};
    static const col_t wait[] = {{"organisation", "Organisation", false, false},
                                 {"waiting", "Waiting", true, false},
                                 {"since", "Oldest waiting since", false, false}};
    sec_t *s =
        sec_add(b->r, "given_up", "Deliveries given up",
                "Allowed shares that never reached their recipient.", NULL, dead, 3);
    for (size_t i = 0; s && i < shub_query_row_count(b->q, "dead_letters"); i++) {
        const char *id = qcell(b, "dead_letters", i, "recipient");
        const char *cells[] = {org_name(b, id),
                               reason_words(qcell(b, "dead_letters", i, "reason")),
                               qcell(b, "dead_letters", i, "deliveries")};
        row_linked(b, s, cells, 0, "org", id);
    }
    s = sec_add(
        b->r, "waiting", "Waiting for delivery now",
        "Copies the hub holds for organisations not yet connected to take them (live, "
        "not in the signed log).",
        NULL, wait, 3);
    for (size_t i = 0; s && i < shub_query_row_count(b->q, "pending"); i++) {
        const char *id = qcell(b, "pending", i, "recipient");
        const char *cells[] = {org_name(b, id), qcell(b, "pending", i, "pending"),
                               qcell(b, "pending", i, "oldest_pending")};
        row_linked(b, s, cells, 0, "org", id);
    }
}

static void build_review(build_t *b)
{
    static const col_t cols[] = {{"agreement", "Agreement", false, false},
                                 {"version", "Version", true, false},
                                 {"review", "Review date", false, false},
                                 {"valid_until", "Valid until", false, false},
                                 {"problem", "Problem", false, false}};
    sec_t *s = sec_add(b->r, "agreement_review", "Agreements due for review",
                       "Agreements whose review date or end of validity has passed.",
                       NULL, cols, 5);
    for (size_t i = 0; s && i < shub_query_row_count(b->q, "agreement_review"); i++) {
        char d1[16], d2[16];
        const char *ag = qcell(b, "agreement_review", i, "agreement");
        const char *cells[] = {
            agreement_title(b, ag), qcell(b, "agreement_review", i, "version"),
            date_of(d1, qcell(b, "agreement_review", i, "review")),
            date_of(d2, qcell(b, "agreement_review", i, "valid_until")),
            qcell(b, "agreement_review", i, "problem")};
        row_linked(b, s, cells, 0, "agreement", ag);
    }
}

static const struct {
    const char *id;
    void (*build)(build_t *b);
} builders[] = {
    {"summary", build_summary},
    {"marac", build_marac},
    {"timeliness", build_timeliness},
    {"agreements", build_agreements},
    {"orgs", build_orgs},
    {"fields_withheld", build_fields},
    {"given_up", build_delivery},
    {"waiting", build_delivery},
    {"agreement_review", build_review},
};
#define N_BUILDERS (sizeof builders / sizeof builders[0])

const char *const *shub_report_section_ids(void)
{
    static const char *ids[N_BUILDERS + 1];
    for (size_t i = 0; i < N_BUILDERS; i++)
        ids[i] = builders[i].id;
    return ids;
}

/* ---- lifecycle ----------------------------------------------------------------- */

static void coverage(build_t *b)
{
    char text[512];
    const char *at = qcell(b, "checkpoint", 0, "checkpoint_at");
    if (!at) {
        snprintf(text, sizeof text,
                 "The audit log has no signed checkpoint yet, so nothing is counted.");
    } else {
        snprintf(text, sizeof text,
                 "Counted from the audit log as signed at %s (its first %lld records); "
                 "%lld records written since are left for the next report.",
                 at, (long long)qint(b, "checkpoint", 0, "upto_seq"),
                 (long long)qint(b, "checkpoint", 0, "rows_left_out"));
    }
    b->r->coverage = dup_or_fail(b->r, text);
}

int shub_report_build(shub_store_t *s, const shub_report_opts_t *o, shub_report_t **out,
                      shub_err_t *err)
{
    bool known = !o || !o->section;
    for (size_t i = 0; !known && i < N_BUILDERS; i++)
        known = strcmp(o->section, builders[i].id) == 0;
    if (!s || !o || !out)
        return shub_err_set(err, SHUB_EINVAL, "report: missing argument");
    if (!known)
        return shub_err_set(err, SHUB_EINVAL,
                            "report: unknown section '%s' (summary, marac, timeliness, "
                            "agreements, orgs, fields_withheld, given_up, waiting, "
                            "agreement_review)",
                            o->section);
    shub_query_report_opts_t qo = o->q;
    qo.section = NULL;
    qo.top_fields = REPORT_TOP_FIELDS;
    shub_query_result_t *q = NULL;
    int rc = shub_query_report(s, &qo, &q, err);
    if (rc)
        return rc;
    shub_report_t *r = shub_calloc(1, sizeof *r);
    if (!r) {
        shub_query_result_destroy(&q);
        return shub_err_set(err, SHUB_ENOMEM, "report: out of memory");
    }
    build_t b = {.r = r, .q = q, .orgs = o->orgs};
    r->title = dup_or_fail(r, "Information sharing: board report");
    coverage(&b);
    for (size_t i = 0; i < N_BUILDERS; i++) {
        if (i && builders[i].build == builders[i - 1].build)
            continue; /* one builder, two sections */
        builders[i].build(&b);
    }
    if (o->section) { /* keep only the one asked for */
        size_t k = 0;
        for (size_t i = 0; i < r->n; i++) {
            if (strcmp(r->secs[i].id, o->section) == 0) {
                sec_t keep = r->secs[i];
                r->secs[i] = r->secs[k];
                r->secs[k++] = keep;
            }
        }
        sec_t *kept = r->secs;
        size_t total = r->n;
        r->n = k;
        for (size_t i = k; i < total; i++) { /* free the others */
            for (size_t c = 0; c < kept[i].nrows * kept[i].ncols; c++) {
                shub_free(kept[i].cells[c]);
                shub_free(kept[i].links[c]);
            }
            shub_free(kept[i].cells);
            shub_free(kept[i].links);
        }
    }
    shub_query_result_destroy(&q);
    if (r->failed) {
        shub_report_destroy(&r);
        return shub_err_set(err, SHUB_ENOMEM, "report: out of memory");
    }
    *out = r;
    return 0;
}

void shub_report_destroy(shub_report_t **r_p)
{
    shub_report_t *r = r_p ? *r_p : NULL;
    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++) {
        sec_t *s = &r->secs[i];
        for (size_t c = 0; c < s->nrows * s->ncols; c++) {
            shub_free(s->cells[c]);
            shub_free(s->links[c]);
        }
        shub_free(s->cells);
        shub_free(s->links);
    }
    shub_free(r->secs);
    shub_free(r->title);
    shub_free(r->coverage);
    shub_free(r);
    *r_p = NULL;
}

/* ---- accessors ------------------------------------------------------------------- */

const char *shub_report_title(const shub_report_t *r)
{
    return r ? r->title : NULL;
}

const char *shub_report_coverage(const shub_report_t *r)
{
    return r ? r->coverage : NULL;
}

size_t shub_report_count(const shub_report_t *r)
{
    return r ? r->n : 0;
}

bool shub_report_section(const shub_report_t *r, size_t i, shub_report_section_t *out)
{
    if (!r || i >= r->n || !out)
        return false;
    const sec_t *s = &r->secs[i];
    *out = (shub_report_section_t){s->id,    s->title, s->what,        s->glossary,
                                   s->ncols, s->nrows, s->chart_label, s->chart_value};
    return true;
}

const char *shub_report_column(const shub_report_t *r, size_t sec, size_t col,
                               bool *number)
{
    if (!r || sec >= r->n || col >= r->secs[sec].ncols)
        return NULL;
    if (number)
        *number = r->secs[sec].cols[col].number;
    return r->secs[sec].cols[col].label;
}

const char *shub_report_cell(const shub_report_t *r, size_t sec, size_t row, size_t col)
{
    if (!r || sec >= r->n || row >= r->secs[sec].nrows || col >= r->secs[sec].ncols)
        return NULL;
    return r->secs[sec].cells[row * r->secs[sec].ncols + col];
}

const char *shub_report_link(const shub_report_t *r, size_t sec, size_t row, size_t col)
{
    if (!r || sec >= r->n || row >= r->secs[sec].nrows || col >= r->secs[sec].ncols)
        return NULL;
    return r->secs[sec].links[row * r->secs[sec].ncols + col];
}

/* ---- rendering ------------------------------------------------------------------- */

/* Width in characters (UTF-8), capped for text cells. */
static size_t width(const char *t)
{
    size_t w = 0;
    for (; t && *t; t++)
        w += ((unsigned char)*t & 0xC0) != 0x80;
    return w;
}

/* Text for a terminal or a printer: control characters become '?', a text
 * cell longer than TEXT_CELL_MAX is cut with "...". */
static void put_text(shub_buf_t *out, const char *t, size_t max)
{
    size_t w = 0;
    for (; t && *t; t++) {
        unsigned char c = (unsigned char)*t;
        bool start = (c & 0xC0) != 0x80;
        if (start && ++w > max) {
            shub_buf_puts(out, "...");
            return;
        }
        shub_buf_append(out, c < 0x20 || c == 0x7f ? "?" : t, 1);
    }
}

/* Words wrapped to the page, each line starting with `indent`. */
static void wrap(shub_buf_t *out, const char *text, const char *indent)
{
    size_t col = 0;
    const char *p = text;
    while (p && *p) {
        const char *e = p;
        while (*e && *e != ' ')
            e++;
        size_t w = (size_t)(e - p);
        if (col && col + 1 + w > SHUB_REPORT_TEXT_WIDTH) {
            shub_buf_puts(out, "\n");
            col = 0;
        }
        if (col == 0) {
            shub_buf_puts(out, indent);
            col = strlen(indent);
        } else {
            shub_buf_puts(out, " ");
            col++;
        }
        for (const char *c = p; c < e; c++)
            shub_buf_append(out, (unsigned char)*c < 0x20 ? "?" : c, 1);
        col += w;
        p = *e ? e + 1 : e;
    }
    if (col)
        shub_buf_puts(out, "\n");
}

static void render_text(const shub_report_t *r, shub_buf_t *out)
{
    shub_buf_printf(out, "%s\n", r->title);
    wrap(out, r->coverage, "");
    for (size_t si = 0; si < r->n; si++) {
        const sec_t *s = &r->secs[si];
        shub_buf_printf(out, "\n%s\n", s->title);
        if (s->nrows == 0) { /* a title and "None." say it all */
            shub_buf_puts(out, "  None.\n");
            continue;
        }
        wrap(out, s->what, "");
        if (s->glossary) {
            char g[1024];
            snprintf(g, sizeof g, "Terms: %s", s->glossary);
            wrap(out, g, "");
        }
        /* Column widths; a text cell is cut at TEXT_CELL_MAX except in the last
         * column, which has the rest of the line. */
        size_t w[MAX_COLS], last = 0;
        for (size_t c = 0; c < s->ncols; c++)
            if (!s->cols[c].wide)
                last = c;
        size_t cut[MAX_COLS]; /* where a text cell is cut ("..." follows) */
        for (size_t c = 0; c < s->ncols; c++)
            cut[c] = s->cols[c].number ? SIZE_MAX
                     : c == last       ? SIZE_MAX / 2
                                       : TEXT_CELL_MAX;
        for (int pass = 0; pass < 64; pass++) {
            size_t total = 2;
            for (size_t c = 0; c < s->ncols; c++) {
                w[c] = width(s->cols[c].label);
                for (size_t row = 0; row < s->nrows; row++) {
                    size_t cw = width(s->cells[row * s->ncols + c]);
                    if (cw > cut[c])
                        cw = cut[c] + 3;
                    if (cw > w[c])
                        w[c] = cw;
                }
                if (!s->cols[c].wide)
                    total += w[c] + (c == last ? 0 : 2);
            }
            /* Too wide for the page: cut the widest text column a little more
             * (never below 12 characters), and measure again. */
            size_t widest = MAX_COLS;
            for (size_t c = 0; c < s->ncols; c++)
                if (!s->cols[c].number && !s->cols[c].wide && w[c] > 15 &&
                    (widest == MAX_COLS || w[c] > w[widest]))
                    widest = c;
            if (total <= SHUB_REPORT_TEXT_WIDTH || widest == MAX_COLS)
                break;
            size_t over = total - SHUB_REPORT_TEXT_WIDTH;
            size_t now = w[widest] - 3 > 12 + over ? w[widest] - 3 - over : 12;
            if (now >= cut[widest] && cut[widest] != SIZE_MAX / 2)
                break;
            cut[widest] = now;
        }
        for (size_t row = 0; row <= s->nrows; row++) {
            shub_buf_puts(out, "  ");
            for (size_t c = 0; c < s->ncols; c++) {
                if (s->cols[c].wide)
                    continue;
                const char *t =
                    row ? s->cells[(row - 1) * s->ncols + c] : s->cols[c].label;
                size_t max = cut[c];
                if (!t)
                    t = "-";
                size_t tw = width(t);
                if (tw > max)
                    tw = max + 3;
                size_t pad = w[c] > tw ? w[c] - tw : 0;
                if (s->cols[c].number)
                    for (size_t k = 0; k < pad; k++)
                        shub_buf_puts(out, " ");
                put_text(out, t, max);
                if (!s->cols[c].number && c != last)
                    for (size_t k = 0; k < pad; k++)
                        shub_buf_puts(out, " ");
                if (c != last)
                    shub_buf_puts(out, "  ");
            }
            shub_buf_puts(out, "\n");
        }
    }
}

static void csv_field(shub_buf_t *out, const char *t)
{
    if (!t)
        return;
    /* A cell a spreadsheet would take for a formula is prefixed with a quote
     * mark (OWASP's CSV injection advice): names come from partners' files. */
    bool formula = strchr("=+-@\t\r", t[0]) != NULL && t[0] &&
                   !(t[0] == '-' && t[1] >= '0' && t[1] <= '9');
    if (!formula && !strpbrk(t, ",\"\r\n")) {
        shub_buf_puts(out, t);
        return;
    }
    shub_buf_puts(out, formula ? "\"'" : "\"");
    for (; *t; t++)
        shub_buf_puts(out, *t == '"' ? "\"\"" : (char[]){*t, 0});
    shub_buf_puts(out, "\"");
}

static void render_csv_section(const sec_t *s, shub_buf_t *out)
{
    for (size_t row = 0; row <= s->nrows; row++) {
        for (size_t c = 0; c < s->ncols; c++) {
            if (c)
                shub_buf_puts(out, ",");
            csv_field(out, row ? s->cells[(row - 1) * s->ncols + c] : s->cols[c].label);
        }
        shub_buf_puts(out, "\r\n");
    }
}

static json_t *jtext(const char *t)
{
    if (!t)
        return json_null();
    json_t *j = json_string(t);
    return j ? j : json_string("?"); /* not UTF-8: the database is not trusted */
}

static int render_json(const shub_report_t *r, shub_buf_t *out)
{
    json_t *root = json_object(), *secs = json_array();
    if (!root || !secs || json_object_set_new(root, "title", jtext(r->title)) ||
        json_object_set_new(root, "coverage", jtext(r->coverage)) ||
        json_object_set(root, "sections", secs)) {
        json_decref(root);
        json_decref(secs);
        return SHUB_ENOMEM;
    }
    bool bad = false;
    for (size_t si = 0; si < r->n && !bad; si++) {
        const sec_t *s = &r->secs[si];
        json_t *js = json_object(), *cols = json_array(), *rows = json_array();
        bad = !js || !cols || !rows || json_array_append_new(secs, js) ||
              json_object_set_new(js, "section", jtext(s->id)) ||
              json_object_set_new(js, "title", jtext(s->title)) ||
              json_object_set_new(js, "what", jtext(s->what)) ||
              json_object_set_new(js, "glossary", jtext(s->glossary)) ||
              json_object_set_new(js, "columns", cols) ||
              json_object_set_new(js, "rows", rows);
        for (size_t c = 0; !bad && c < s->ncols; c++)
            bad = json_array_append_new(cols, jtext(s->cols[c].label)) != 0;
        for (size_t row = 0; !bad && row < s->nrows; row++) {
            json_t *o = json_object();
            bad = !o || json_array_append_new(rows, o);
            for (size_t c = 0; !bad && c < s->ncols; c++) {
                const char *t = s->cells[row * s->ncols + c];
                char *end = NULL;
                json_t *v = !t ? json_null() : NULL;
                if (t && s->cols[c].number) {
                    double d = strtod(t, &end);
                    v = end && !*end && end != t
                            ? (strchr(t, '.') ? json_real(d)
                                              : json_integer(strtoll(t, NULL, 10)))
                            : jtext(t);
                } else if (t) {
                    v = jtext(t);
                }
                bad = json_object_set_new(o, s->cols[c].key, v) != 0;
            }
        }
    }
    json_decref(secs);
    char *text = bad ? NULL : json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!text)
        return SHUB_ENOMEM;
    shub_buf_puts(out, text);
    shub_buf_puts(out, "\n");
    free(text);
    return 0;
}

int shub_report_render(const shub_report_t *r, shub_report_format_t fmt, shub_buf_t *out,
                       shub_err_t *err)
{
    if (!r || !out)
        return shub_err_set(err, SHUB_EINVAL, "report: missing argument");
    switch (fmt) {
    case SHUB_REPORT_CSV:
        if (r->n != 1)
            return shub_err_set(
                err, SHUB_EINVAL,
                "csv is one table: give --section NAME, or --csv-dir DIR for "
                "one file per section");
        render_csv_section(&r->secs[0], out);
        break;
    case SHUB_REPORT_JSON:
        if (render_json(r, out))
            return shub_err_set(err, SHUB_ENOMEM, "report: out of memory");
        break;
    default:
        render_text(r, out);
        break;
    }
    return shub_buf_text(out) ? 0
                              : shub_err_set(err, SHUB_ENOMEM, "report: out of memory");
}

int shub_report_write_csv_dir(const shub_report_t *r, const char *dir, shub_err_t *err)
{
    char path[4200];
    for (size_t i = 0; r && i < r->n; i++) {
        shub_buf_t b = {0};
        render_csv_section(&r->secs[i], &b);
        if (!shub_buf_text(&b)) {
            shub_buf_free(&b);
            return shub_err_set(err, SHUB_ENOMEM, "report: out of memory");
        }
        snprintf(path, sizeof path, "%s/%s.csv", dir, r->secs[i].id);
        FILE *f = fopen(path, "wb");
        bool ok = f && fwrite(b.data, 1, b.len, f) == b.len;
        if (f && fclose(f) != 0)
            ok = false;
        shub_buf_free(&b);
        if (!ok)
            return shub_err_set(err, SHUB_EIO, "cannot write '%s': %s", path,
                                strerror(errno));
    }
    return 0;
}

int shub_report_format_parse(const char *name, shub_report_format_t *fmt)
{
    if (!name)
        return SHUB_EINVAL;
    if (strcmp(name, "text") == 0 || strcmp(name, "table") == 0)
        *fmt = SHUB_REPORT_TEXT;
    else if (strcmp(name, "csv") == 0)
        *fmt = SHUB_REPORT_CSV;
    else if (strcmp(name, "json") == 0)
        *fmt = SHUB_REPORT_JSON;
    else
        return SHUB_EINVAL;
    return 0;
}
