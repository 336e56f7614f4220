/*
 * metrics: counters and gauges as the exposition format prints them
 * (include/sharehub/metrics.h). Label sets live in small arrays searched
 * linearly: a partnership has tens of agreements, reasons and organisations.
 * Label values are escaped as the format asks (backslash, quote, newline),
 * though ids are names and never hold them.
 */
#include "sharehub/metrics.h"

#include "sharehub/alloc.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

typedef struct series {
    char *labels; /* rendered: decision="allow",agreement="x",reason="" */
    uint64_t value;
} series_t;

typedef struct family {
    series_t *v;
    size_t n, cap;
} family_t;

static const char *const outcomes[] = {"queued", "acknowledged", "dead"};
#define N_OUTCOMES 3

/* Upper bounds of the commit latency buckets, seconds; +Inf follows. */
static const double bounds[SHUB_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0};

struct shub_metrics_turn {
    family_t shares;
    uint64_t deliveries[N_OUTCOMES];
    uint64_t escalations;
};

struct shub_metrics {
    pthread_mutex_t mu;
    family_t shares, backlog;
    uint64_t deliveries[N_OUTCOMES];
    uint64_t escalations;
    uint64_t buckets[SHUB_METRICS_BUCKETS + 1], commits;
    double commit_sum;
    uint64_t connected, deadlines_open, deadlines_overdue, names, names_bytes;
    int64_t checkpoint_at_ms, now_ms;
};

static void family_free(family_t *f)
{
    for (size_t i = 0; i < f->n; i++)
        shub_free(f->v[i].labels);
    shub_free(f->v);
    memset(f, 0, sizeof *f);
}

/* Adds `by` to the series with these labels, making it if new; past the cap
 * the labels become `other`. */
static int family_add(family_t *f, const char *labels, uint64_t by, bool set)
{
    size_t i = 0;
    while (i < f->n && strcmp(f->v[i].labels, labels) != 0)
        i++;
    if (i == f->n) {
        if (f->n >= SHUB_METRICS_MAX_SERIES)
            labels = "other=\"true\"";
        for (i = 0; i < f->n && strcmp(f->v[i].labels, labels) != 0; i++)
            ;
    }
    if (i == f->n) {
        if (shub_grow((void **)&f->v, &f->cap, f->n + 1, sizeof *f->v))
            return SHUB_ENOMEM;
        char *copy = shub_strdup(labels);
        if (!copy)
            return SHUB_ENOMEM;
        f->v[f->n++] = (series_t){copy, 0};
    }
    f->v[i].value = set ? by : f->v[i].value + by;
    return 0;
}

/* key="value" with the format's escapes, appended to buf. */
static void label(shub_buf_t *b, const char *key, const char *value, bool first)
{
    shub_buf_printf(b, "%s%s=\"", first ? "" : ",", key);
    for (const char *p = value ? value : ""; *p; p++) {
        if (*p == '\\' || *p == '"')
            shub_buf_printf(b, "\\%c", *p);
        else if (*p == '\n')
            shub_buf_puts(b, "\\n");
        else
            shub_buf_append(b, p, 1);
    }
    shub_buf_puts(b, "\"");
}

shub_metrics_t *shub_metrics_new(void)
{
    shub_metrics_t *m = shub_calloc(1, sizeof *m);
    if (m && pthread_mutex_init(&m->mu, NULL) != 0) {
        shub_free(m);
        return NULL;
    }
    return m;
}

void shub_metrics_destroy(shub_metrics_t **m_p)
{
    shub_metrics_t *m = m_p ? *m_p : NULL;
    if (!m)
        return;
    family_free(&m->shares);
    family_free(&m->backlog);
    pthread_mutex_destroy(&m->mu);
    shub_free(m);
    *m_p = NULL;
}

shub_metrics_turn_t *shub_metrics_turn_new(void)
{
    return shub_calloc(1, sizeof(shub_metrics_turn_t));
}

void shub_metrics_turn_destroy(shub_metrics_turn_t **t_p)
{
    shub_metrics_turn_t *t = t_p ? *t_p : NULL;
    if (!t)
        return;
    family_free(&t->shares);
    shub_free(t);
    *t_p = NULL;
}

int shub_metrics_turn_share(shub_metrics_turn_t *t, const char *decision,
                            const char *agreement, const char *reason)
{
    shub_buf_t b = {0};
    if (!t)
        return 0;
    label(&b, "decision", decision, true);
    label(&b, "agreement", agreement, false);
    label(&b, "reason", reason, false);
    int rc = shub_buf_text(&b) ? family_add(&t->shares, (const char *)b.data, 1, false)
                               : SHUB_ENOMEM;
    shub_buf_free(&b);
    return rc;
}

void shub_metrics_turn_delivery(shub_metrics_turn_t *t, const char *outcome)
{
    for (int i = 0; t && i < N_OUTCOMES; i++)
        if (strcmp(outcome, outcomes[i]) == 0)
            t->deliveries[i]++;
}

void shub_metrics_turn_escalation(shub_metrics_turn_t *t)
{
    if (t)
        t->escalations++;
}

void shub_metrics_turn_discard(shub_metrics_turn_t *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->shares.n; i++)
        t->shares.v[i].value = 0;
    memset(t->deliveries, 0, sizeof t->deliveries);
    t->escalations = 0;
}

int shub_metrics_commit(shub_metrics_t *m, shub_metrics_turn_t *t, double commit_s)
{
    int rc = 0;
    if (!m || !t)
        return 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < t->shares.n && rc == 0; i++)
        if (t->shares.v[i].value)
            rc = family_add(&m->shares, t->shares.v[i].labels, t->shares.v[i].value,
                            false);
    for (int i = 0; i < N_OUTCOMES; i++)
        m->deliveries[i] += t->deliveries[i];
    m->escalations += t->escalations;
    if (commit_s >= 0) {
        int b = 0;
        while (b < SHUB_METRICS_BUCKETS && commit_s > bounds[b])
            b++;
        m->buckets[b]++;
        m->commits++;
        m->commit_sum += commit_s;
    }
    pthread_mutex_unlock(&m->mu);
    shub_metrics_turn_discard(t);
    return rc;
}

int shub_metrics_gauges(shub_metrics_t *m, const shub_metrics_gauges_t *g)
{
    int rc = 0;
    if (!m || !g)
        return 0;
    pthread_mutex_lock(&m->mu);
    for (size_t i = 0; i < m->backlog.n; i++)
        m->backlog.v[i].value = 0; /* an org whose queue emptied shows 0 */
    for (size_t i = 0; i < g->n_orgs && rc == 0; i++) {
        shub_buf_t b = {0};
        label(&b, "org", g->orgs[i], true);
        rc = shub_buf_text(&b)
                 ? family_add(&m->backlog, (const char *)b.data, g->backlog[i], true)
                 : SHUB_ENOMEM;
        shub_buf_free(&b);
    }
    m->connected = g->connected;
    m->checkpoint_at_ms = g->checkpoint_at_ms;
    m->now_ms = g->now_ms;
    m->deadlines_open = g->deadlines_open;
    m->deadlines_overdue = g->deadlines_overdue;
    m->names = g->names;
    m->names_bytes = g->names_bytes;
    pthread_mutex_unlock(&m->mu);
    return rc;
}

static void family_render(shub_buf_t *b, const char *name, const char *type,
                          const char *help, const family_t *f)
{
    shub_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
    for (size_t i = 0; i < f->n; i++)
        shub_buf_printf(b, "%s{%s} %llu\n", name, f->v[i].labels,
                        (unsigned long long)f->v[i].value);
}

static void scalar(shub_buf_t *b, const char *name, const char *type, const char *help,
                   const char *value)
{
    shub_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type,
                    name, value);
}

int shub_metrics_render(shub_metrics_t *m, shub_buf_t *out)
{
    char v[64];
    if (!m || !out)
        return SHUB_EINVAL;
    pthread_mutex_lock(&m->mu);
    family_render(out, "sharehub_shares_total", "counter",
                  "Shares decided (one per event and recipient), by decision, agreement "
                  "and reason.",
                  &m->shares);
    shub_buf_puts(out, "# HELP sharehub_deliveries_total Copies queued for delivery, "
                       "acknowledged by their recipient, or given up (dead).\n"
                       "# TYPE sharehub_deliveries_total counter\n");
    for (int i = 0; i < N_OUTCOMES; i++)
        shub_buf_printf(out, "sharehub_deliveries_total{outcome=\"%s\"} %llu\n",
                        outcomes[i], (unsigned long long)m->deliveries[i]);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->escalations);
    scalar(out, "sharehub_escalations_total", "counter",
           "Notices sent about overdue shares (to a sender or an escalation contact).",
           v);
    family_render(out, "sharehub_backlog", "gauge",
                  "Copies waiting for delivery or acknowledgement, per recipient.",
                  &m->backlog);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->connected);
    scalar(out, "sharehub_connected_organisations", "gauge",
           "Organisations with a session open now.", v);
    if (m->checkpoint_at_ms)
        snprintf(v, sizeof v, "%.3f", (double)(m->now_ms - m->checkpoint_at_ms) / 1000.0);
    else
        snprintf(v, sizeof v, "NaN");
    scalar(out, "sharehub_checkpoint_age_seconds", "gauge",
           "Time since the newest signed checkpoint of the audit log.", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->deadlines_open);
    scalar(out, "sharehub_deadlines_open", "gauge",
           "Deadlines of allowed shares not answered yet.", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->deadlines_overdue);
    scalar(out, "sharehub_deadlines_overdue", "gauge", "Of those, the ones past due.", v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->names);
    scalar(out, "sharehub_store_names", "gauge",
           "Texts the audit log refers to (organisations, event types, lists of field "
           "names) held in memory, at most limits.names_memory_mib with those in use.",
           v);
    snprintf(v, sizeof v, "%llu", (unsigned long long)m->names_bytes);
    scalar(out, "sharehub_store_names_bytes", "gauge", "The memory those texts take.", v);
    shub_buf_puts(out, "# HELP sharehub_commit_seconds Time of each group commit.\n"
                       "# TYPE sharehub_commit_seconds histogram\n");
    uint64_t cum = 0;
    for (int i = 0; i <= SHUB_METRICS_BUCKETS; i++) {
        cum += m->buckets[i];
        if (i < SHUB_METRICS_BUCKETS)
            shub_buf_printf(out, "sharehub_commit_seconds_bucket{le=\"%g\"} %llu\n",
                            bounds[i], (unsigned long long)cum);
        else
            shub_buf_printf(out, "sharehub_commit_seconds_bucket{le=\"+Inf\"} %llu\n",
                            (unsigned long long)cum);
    }
    shub_buf_printf(
        out, "sharehub_commit_seconds_sum %.6f\nsharehub_commit_seconds_count %llu\n",
        m->commit_sum, (unsigned long long)m->commits);
    pthread_mutex_unlock(&m->mu);
    return shub_buf_text(out) ? 0 : SHUB_ENOMEM;
}
