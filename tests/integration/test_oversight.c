/*
 * Process tests for what issue 17 asked to see: a real broker process with
 * real CURVE clients over ipc://, a real SQLite file, the report and the
 * metrics as a user reads them.
 *
 *   - deadlines end to end: a referral answered late is escalated once (to
 *     the referrer and the agreement's escalation contact), audited, counted
 *     late in the report, and not escalated again after a restart; a
 *     referral answered in time is not escalated;
 *   - metrics: curl on the broker's metrics address gives exposition text a
 *     parser here accepts, and its counts equal the audit log's.
 *
 * One hour of a deadline lasts HOUR_MS (hub.yaml limits.deadline_hour_ms).
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define HOUR_MS 400

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"marac-team", "coordination", "all"},
};

static int setup(void **state)
{
    harness_t *h = harness_new(orgs, sizeof orgs / sizeof orgs[0],
                               SHUB_FIXTURES "/oversight/agreements");
    char path[400];
    if (!h)
        return -1;
    snprintf(path, sizeof path, "%s/hub.yaml", h->dir);
    FILE *f = fopen(path, "a");
    if (!f ||
        fprintf(f, "  deadline_hour_ms: %d\n  names_memory_mib: 1\nmetrics: \"127.0.0.1:0\"\n",
                HOUR_MS) < 0 ||
        fclose(f) != 0 || harness_start(h) != 0) {
        fprintf(stderr, "broker did not start; log in %s\n", h->log);
        harness_destroy(&h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    harness_destroy((harness_t **)state);
    return 0;
}

static tclient_t *online(harness_t *h, const char *org)
{
    tclient_t *c = tclient_online(h, org);
    assert_non_null(c);
    return c;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Sends one event; returns its id once the receipt has come. */
static shub_id_t send_event(tclient_t *c, const char *type, const char *to,
                            const shub_id_t *reply_to, const char *decision)
{
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    const char *tos[] = {to};
    share_fill(&m.share, a, type, "coventry", tos, 1, 18);
    if (decision) { /* a decision carries only its code */
        shub_val_t p = shub_val_map(), v;
        assert_int_equal(shub_val_str(a, decision, strlen(decision), &v), 0);
        assert_int_equal(shub_val_put(a, &p, "decision", v), 0);
        m.share.ev.payload = p;
    }
    m.share.ev.occurred_ms = shub_now_ms();
    m.share.ev.reply_to = reply_to;
    shub_id_t id = m.share.ev.id;
    assert_int_equal(tclient_send(c, &m), 0);
    const shub_receipt_t *r = tclient_receipt(c, 5000);
    assert_non_null(r);
    assert_memory_equal(r->id.bytes, id.bytes, SHUB_ID_SIZE);
    shub_arena_destroy(&a);
    return id;
}

/* The next delivery, acknowledged; its sender and (for notices) the share
 * it is about. */
typedef struct got {
    char from[SHUB_MSG_MAX_NAME + 1], type[SHUB_MSG_MAX_NAME + 1];
    shub_id_t id, about;
    char deadline[8];
} got_t;

static bool receive(tclient_t *c, int timeout_ms, got_t *out)
{
    const shub_deliver_t *d = tclient_delivery(c, timeout_ms);
    if (!d)
        return false;
    memset(out, 0, sizeof *out);
    snprintf(out->from, sizeof out->from, "%s", d->from);
    snprintf(out->type, sizeof out->type, "%s", d->type);
    out->id = d->id;
    shub_arena_t *a = shub_arena_new(0);
    shub_event_t ev;
    assert_int_equal(tclient_open(c, d, a, &ev), 0);
    if (strcmp(d->from, SHUB_HUB_SENDER) == 0) {
        assert_non_null(ev.reply_to);
        out->about = *ev.reply_to;
        const char *kind = shub_val_str_at(&ev.payload, "deadline");
        assert_non_null(kind);
        snprintf(out->deadline, sizeof out->deadline, "%s", kind);
        /* a notice names the share, never its payload */
        assert_null(shub_val_get(&ev.payload, "victim"));
    }
    shub_arena_destroy(&a);
    assert_int_equal(tclient_ack(c, &out->id), 0);
    return true;
}

/* Runs the audit tool; its stdout into out. Returns the exit status. */
static int audit(const harness_t *h, const char *args, char *out, size_t size)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "%s %s --db %s/broker.db",
             harness_program("broker/sharehub-audit"), args, h->dir);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* The CSV row of the timeliness section whose first two cells are these. */
static bool csv_row(const char *csv, const char *flow, const char *deadline,
                    long cells[8])
{
    char want[128];
    snprintf(want, sizeof want, "%s,%s,", flow, deadline);
    const char *p = strstr(csv, want);
    if (!p)
        return false;
    p += strlen(want);
    for (int i = 0; i < 8; i++) {
        cells[i] = *p == ',' || *p == '\r' ? -1 : strtol(p, (char **)&p, 10);
        while (*p && *p != ',' && *p != '\r')
            p++;
        if (*p == ',')
            p++;
    }
    return true;
}

static void test_deadlines_late_escalated_once_in_time_not(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    tclient_t *team = online(h, "marac-team");
    shub_id_t late = send_event(police, "marac.referral", "marac@coventry", NULL, NULL);
    shub_id_t timely = send_event(police, "marac.referral", "marac@coventry", NULL, NULL);
    got_t g;
    assert_true(receive(marac, 5000, &g));
    assert_true(receive(marac, 5000, &g));
    /* The timely one is answered to its referrer at once: both deadlines met. */
    send_event(marac, "marac.referral.decision", "wmp", &timely, "accepted");
    assert_true(receive(police, 5000, &g));
    assert_string_equal(g.from, "marac-coventry");

    /* The late one: a notice per deadline (ack after 1 h, act after 2 h) to
     * the referrer and to the MARAC team, each about the late referral. */
    int notices = 0, acks = 0;
    while (notices < 2 && receive(police, 6 * HOUR_MS, &g)) {
        assert_string_equal(g.from, SHUB_HUB_SENDER);
        assert_string_equal(g.type, "deadline.overdue");
        assert_memory_equal(g.about.bytes, late.bytes, SHUB_ID_SIZE);
        acks += strcmp(g.deadline, "ack") == 0;
        notices++;
    }
    assert_int_equal(notices, 2);
    assert_int_equal(acks, 1);
    for (int i = 0; i < 2; i++) {
        assert_true(receive(team, 5000, &g));
        assert_string_equal(g.from, SHUB_HUB_SENDER);
        assert_memory_equal(g.about.bytes, late.bytes, SHUB_ID_SIZE);
    }
    /* Answered late: closed, not escalated again. */
    send_event(marac, "marac.referral.decision", "wmp", &late, "accepted");
    assert_true(receive(police, 5000, &g));
    assert_string_equal(g.from, "marac-coventry");
    assert_false(receive(police, 3 * HOUR_MS, &g));
    assert_false(receive(team, HOUR_MS, &g));

    /* Audited: four notices from the hub, naming the late referral. */
    assert_int_equal(harness_count(h,
                                   "audit WHERE action='notice' AND sender='hub' AND "
                                   "decision='sent' AND event_type='deadline.overdue'"),
                     4);
    assert_int_equal(
        harness_count(h, "audit WHERE action='notice' AND recipient='marac-team'"), 2);
    assert_int_equal(
        harness_count(h, "audit WHERE action='notice' AND reason='overdue-act'"), 2);
    assert_int_equal(harness_count(h, "deadlines WHERE answered_at > due_at AND "
                                      "escalated_at IS NOT NULL"),
                     2);
    assert_int_equal(harness_count(h, "deadlines WHERE answered_at <= due_at AND "
                                      "escalated_at IS NULL"),
                     2);

    /* Durable: a restarted broker escalates nothing again. */
    tclient_destroy(&police);
    tclient_destroy(&marac);
    tclient_destroy(&team);
    assert_int_equal(harness_stop(h, SIGTERM), 0);
    assert_int_equal(harness_start(h), 0);
    sleep_ms(3 * HOUR_MS);
    assert_int_equal(harness_count(h, "audit WHERE action='notice'"), 4);

    /* Counted in the report: one referral late and escalated, one on time. */
    static char out[65536];
    assert_int_equal(
        audit(h, "report --section timeliness --format csv", out, sizeof out), 0);
    assert_non_null(strstr(out,
                           "Flow,Agreement,Answer,Target,Shares,On time,Late,Overdue,"
                           "Escalated,Median,90% h\r\n"));
    long c[8];
    assert_true(csv_row(out, "referral,oversight-marac", "any", c));
    assert_int_equal(c[0], 1); /* target hours */
    assert_int_equal(c[1], 2); /* shares */
    assert_int_equal(c[2], 1); /* on time */
    assert_int_equal(c[3], 1); /* late */
    assert_int_equal(c[4], 0); /* overdue now */
    assert_int_equal(c[5], 1); /* escalated */
    assert_true(csv_row(out, "referral,oversight-marac", "to sender", c));
    assert_int_equal(c[0], 2);
    assert_int_equal(c[2], 1);
    assert_int_equal(c[3], 1);
    assert_int_equal(c[5], 1);
    /* ... and in the summary, as escalations */
    assert_int_equal(audit(h, "report --section summary --format csv", out, sizeof out),
                     0);
    assert_non_null(strstr(out, "Overdue notices,4,"));
}

/* ---- a small parser of the exposition format -------------------------------- */

typedef struct sample {
    char name[96], labels[256];
    double value;
} sample_t;

typedef struct expo {
    sample_t s[512];
    size_t n;
    char types[64][128]; /* "name type" */
    size_t ntypes;
} expo_t;

static bool metric_name(const char *p, size_t n)
{
    if (n == 0 || !(isalpha((unsigned char)p[0]) || p[0] == '_' || p[0] == ':'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!(isalnum((unsigned char)p[i]) || p[i] == '_' || p[i] == ':'))
            return false;
    return true;
}

/* The family a sample belongs to (histograms add _bucket, _sum, _count). */
static const char *family_type(const expo_t *e, const char *name)
{
    for (size_t i = 0; i < e->ntypes; i++) {
        size_t n = strcspn(e->types[i], " ");
        if (strncmp(e->types[i], name, n) == 0 &&
            (name[n] == '\0' ||
             (strstr(e->types[i], "histogram") &&
              (!strcmp(name + n, "_bucket") || !strcmp(name + n, "_sum") ||
               !strcmp(name + n, "_count")))))
            return e->types[i] + n + 1;
    }
    return NULL;
}

/* Parses text (version 0.0.4); fails the test on the first malformed line. */
static void expo_parse(const char *text, expo_t *e)
{
    memset(e, 0, sizeof *e);
    for (const char *line = text; *line;) {
        const char *end = strchr(line, '\n');
        assert_non_null(end); /* every line ends with \n, the last one too */
        size_t len = (size_t)(end - line);
        if (len > 7 && strncmp(line, "# TYPE ", 7) == 0) {
            char name[96], type[32];
            assert_int_equal(sscanf(line + 7, "%95s %31s", name, type), 2);
            assert_true(metric_name(name, strlen(name)));
            assert_true(!strcmp(type, "counter") || !strcmp(type, "gauge") ||
                        !strcmp(type, "histogram"));
            assert_true(e->ntypes < 64);
            snprintf(e->types[e->ntypes++], sizeof e->types[0], "%s %s", name, type);
        } else if (len > 0 && line[0] == '#') {
            assert_true(len > 7 && strncmp(line, "# HELP ", 7) == 0);
        } else if (len > 0) {
            sample_t *s = &e->s[e->n++];
            assert_true(e->n < 512);
            size_t nl = strcspn(line, "{ ");
            assert_true(metric_name(line, nl) && nl < sizeof s->name);
            memcpy(s->name, line, nl);
            const char *p = line + nl;
            if (*p == '{') {
                const char *q = p + 1;
                /* key="value" pairs, escapes \\ \" \n only */
                while (*q != '}') {
                    size_t kl = strcspn(q, "=");
                    assert_true(metric_name(q, kl));
                    q += kl;
                    assert_int_equal(q[0], '=');
                    assert_int_equal(q[1], '"');
                    for (q += 2; *q != '"'; q++) {
                        assert_true(*q && *q != '\n');
                        if (*q == '\\') {
                            q++;
                            assert_true(*q == '\\' || *q == '"' || *q == 'n');
                        }
                    }
                    q++;
                    if (*q == ',')
                        q++;
                    else
                        assert_int_equal(*q, '}');
                }
                assert_true((size_t)(q - p) < sizeof s->labels);
                memcpy(s->labels, p + 1, (size_t)(q - p - 1));
                p = q + 1;
            }
            assert_int_equal(*p, ' ');
            char *vend = NULL;
            s->value = strtod(p + 1, &vend);
            assert_true(vend == end ||
                        (vend && *vend == ' '));      /* an optional timestamp */
            assert_non_null(family_type(e, s->name)); /* TYPE came first */
        }
        line = end + 1;
    }
}

static double expo_sum(const expo_t *e, const char *name, const char *label)
{
    double sum = 0;
    for (size_t i = 0; i < e->n; i++)
        if (strcmp(e->s[i].name, name) == 0 && (!label || strstr(e->s[i].labels, label)))
            sum += e->s[i].value;
    return sum;
}

static int curl(const char *url, const char *args, char *out, size_t size)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "curl -s %s '%s'", args, url);
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = fread(out, 1, size - 1, p);
    out[n] = '\0';
    return pclose(p) == 0 ? 0 : -1;
}

static void metrics_url(const harness_t *h, char *url, size_t size)
{
    FILE *f = fopen(h->log, "r");
    char line[1024];
    url[0] = '\0';
    while (f && fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "metrics endpoint=");
        if (p)
            snprintf(url, size, "%.*s", (int)strcspn(p + 17, " \n"), p + 17);
    }
    if (f)
        fclose(f);
}

static void test_metrics_exposition_counts_match_audit_log(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp"), *marac = online(h, "marac-coventry");
    got_t g;
    for (int i = 0; i < 3; i++) {
        shub_id_t id = send_event(police, "marac.referral", "marac@coventry", NULL, NULL);
        assert_true(receive(marac, 5000, &g));
        if (i < 2)
            send_event(marac, "marac.referral.decision", "wmp", &id, "accepted");
    }
    send_event(police, "marac.referral", "idva@coventry", NULL,
               NULL);                        /* no flow: denied */
    while (receive(police, 3 * HOUR_MS, &g)) /* decisions, then the third's notices */
        ;
    char url[256];
    metrics_url(h, url, sizeof url);
    assert_true(strncmp(url, "http://127.0.0.1:", 17) == 0);

    static char text[131072];
    expo_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    bool match = false;
    for (int tries = 0; tries < 50 && !match; tries++) { /* counts settle within a turn */
        long allowed =
            harness_count(h, "audit WHERE action='decide' AND decision='allow'");
        long denied = harness_count(h, "audit WHERE action='decide' AND decision='deny'");
        long acked = harness_count(h, "audit WHERE action='ack'");
        long notices = harness_count(h, "audit WHERE action='notice'");
        assert_int_equal(curl(url, "-f", text, sizeof text), 0);
        expo_parse(text, e);
        match = expo_sum(e, "sharehub_shares_total", "decision=\"allow\"") == allowed &&
                expo_sum(e, "sharehub_shares_total", "decision=\"deny\"") == denied &&
                expo_sum(e, "sharehub_deliveries_total", "outcome=\"acknowledged\"") ==
                    acked &&
                expo_sum(e, "sharehub_deliveries_total", "outcome=\"queued\"") ==
                    allowed + notices &&
                expo_sum(e, "sharehub_escalations_total", NULL) == notices &&
                notices > 0 && denied == 1 && allowed == 5;
        if (!match)
            sleep_ms(100);
    }
    if (!match)
        fprintf(stderr, "metrics never matched the audit log; last scrape:\n%s", text);
    assert_true(match);
    assert_true(expo_sum(e, "sharehub_shares_total",
                         "agreement=\"oversight-marac\",reason=\"\"") >= 5);
    assert_int_equal(expo_sum(e, "sharehub_connected_organisations", NULL), 2);
    assert_true(expo_sum(e, "sharehub_deadlines_open", NULL) >= 2); /* the third's */
    /* the histogram: cumulative buckets, +Inf equal to the count */
    double prev = 0, inf = -1;
    for (size_t i = 0; i < e->n; i++) {
        if (strcmp(e->s[i].name, "sharehub_commit_seconds_bucket") != 0)
            continue;
        assert_true(e->s[i].value >= prev);
        prev = e->s[i].value;
        if (strstr(e->s[i].labels, "+Inf"))
            inf = e->s[i].value;
    }
    assert_true(inf > 0);
    assert_true(inf == expo_sum(e, "sharehub_commit_seconds_count", NULL));
    assert_string_equal(family_type(e, "sharehub_commit_seconds_bucket"), "histogram");
    free(e);

    /* read-only: a write is refused; another path is not there */
    assert_int_equal(
        curl(url, "-o /dev/null -w '%{http_code}' -X POST -d x=1", text, sizeof text), 0);
    assert_string_equal(text, "405");
    char other[300];
    snprintf(other, sizeof other, "%.*s/", (int)(strlen(url) - 8), url);
    assert_int_equal(curl(other, "-o /dev/null -w '%{http_code}'", text, sizeof text), 0);
    assert_string_equal(text, "404");
    tclient_destroy(&police);
    tclient_destroy(&marac);
}

/* n events from c to a recipient no flow allows (denied: nothing queued),
 * each with the referral's payload and, when `keyed`, a key of its own
 * ("note_<i>"), as a case system that makes record ids keys sends them. */
static void send_denied(tclient_t *c, int n, bool keyed)
{
    const char *tos[] = {"idva@coventry"};
    for (int i = 0; i < n; i++) {
        shub_arena_t *a = shub_arena_new(0);
        assert_non_null(a);
        shub_msg_t m = {.type = SHUB_MSG_SHARE};
        share_fill(&m.share, a, "marac.referral", "coventry", tos, 1, 18);
        if (keyed) {
            char key[32];
            snprintf(key, sizeof key, "note_%d", i);
            assert_int_equal(shub_val_put(a, &m.share.ev.payload, key, shub_val_int(i)), 0);
        }
        m.share.ev.occurred_ms = shub_now_ms();
        assert_int_equal(tclient_send(c, &m), 0);
        assert_non_null(tclient_receipt(c, 5000));
        shub_arena_destroy(&a);
    }
}

/* The gauges once they have settled: two scrapes more than a publishing
 * interval (a second) apart that agree. */
static void names_gauges(const char *url, expo_t *e, double *names, double *bytes)
{
    static char text[131072];
    double last = -1;
    for (int tries = 0; tries < 40; tries++) {
        assert_int_equal(curl(url, "-f", text, sizeof text), 0);
        expo_parse(text, e);
        *names = expo_sum(e, "sharehub_store_names", NULL);
        *bytes = expo_sum(e, "sharehub_store_names_bytes", NULL);
        if (*names == last)
            return;
        last = *names;
        sleep_ms(1200);
    }
    fail_msg("sharehub_store_names never settled");
}

/* The texts the broker holds for the audit log are bounded and shown: the
 * same payload sent again adds none; 8,000 events whose payloads each have a
 * key of their own make a list of field names each, all recorded (8,000 new
 * rows of names), while memory holds no more than names_memory_mib (1 MiB
 * here) and says so in the log. The audit log verifies. */
static void test_names_held_bounded_and_shown(void **state)
{
    harness_t *h = *state;
    tclient_t *police = online(h, "wmp");
    char url[256];
    metrics_url(h, url, sizeof url);
    expo_t *e = calloc(1, sizeof *e);
    assert_non_null(e);
    double n0, b0, n1, b1, n2, b2;
    send_denied(police, 1, false);
    names_gauges(url, e, &n0, &b0);
    send_denied(police, 500, false);
    names_gauges(url, e, &n1, &b1);
    long rows = harness_count(h, "names");
    send_denied(police, 8000, true);
    names_gauges(url, e, &n2, &b2);
    long added = harness_count(h, "names") - rows;
    printf("names: %.0f held after the first event, %.0f after 500 alike; 8,000 with keys"
           " of their own: %ld recorded, %.0f held in %.2f MiB\n",
           n0, n1, added, n2, b2 / 1048576);
    assert_true(n0 > 0 && b0 > 0);
    assert_true(n1 == n0);
    assert_true(added >= 8000);
    assert_true(n2 < 8000);
    assert_true(b2 <= 1048576 + 65536); /* the budget, and what a batch adds past it */
    assert_true(harness_log_has(h, "the names held in memory passed 1 MiB"));
    free(e);
    tclient_destroy(&police);
    char out[4096];
    assert_int_equal(audit(h, "verify", out, sizeof out), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_deadlines_late_escalated_once_in_time_not,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_names_held_bounded_and_shown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_metrics_exposition_counts_match_audit_log,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
