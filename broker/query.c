/*
 * query: the audit tool's reads of the store (include/sharehub/query.h). It is
 * part of the store module (store_internal.h): it shares the store's
 * connection (store_backend.h, SQLite or PostgreSQL) and holds every query
 * the auditors' CLI runs, so the SQL sits beside the schema in
 * broker/store.c and nowhere else. The SQL is written once for both engines
 * where it can be; where the dialects differ a section carries PostgreSQL's
 * text beside SQLite's.
 *
 * The audit table holds ids of interned names (store.c); queries read it
 * through the view audit_t, which puts the text back, and filter through
 * audit_find (indexed behind the chain) plus a scan of the few rows not yet
 * indexed.
 *
 * A query fills a result: sections of rows of cells, each cell copied out of
 * the database as text (integers flagged, so JSON keeps them numbers). Column names
 * come from the SQL aliases, so a query and its output header are one text.
 * Times, event ids and hashes are turned into readable text at copy time by
 * column name (time_columns below), which keeps the renderers format-only.
 *
 * Reads run inside one read transaction (BEGIN ... COMMIT on the read-only
 * connection), so a report's checkpoint and its counts come from the same
 * snapshot while the broker keeps writing beside it (WAL).
 */
#include "store_internal.h"

#include "sharehub/alloc.h"
#include "sharehub/buf.h"
#include "sharehub/query.h"
#include "sharehub/time.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- results ------------------------------------------------------------- */

typedef struct cell {
    char *text;  /* NULL: SQL NULL */
    bool number; /* an integer: JSON writes it bare */
} cell_t;

typedef struct section {
    char *name;
    size_t ncols;
    char **cols;
    bool *hidden;  /* left out of the table format (wide, for CSV/JSON) */
    bool vertical; /* table format: "column: value" lines per row */
    cell_t *cells; /* nrows * ncols */
    size_t nrows, cap;
} section_t;

struct shub_query_result {
    section_t *secs;
    size_t nsecs;
    bool more;      /* a log page: rows remain beyond it */
    int64_t cursor; /* seq to continue from */
};

static void section_free(section_t *sec)
{
    for (size_t i = 0; i < sec->nrows * sec->ncols; i++)
        shub_free(sec->cells[i].text);
    for (size_t i = 0; i < sec->ncols; i++)
        shub_free(sec->cols[i]);
    shub_free(sec->cells);
    shub_free(sec->cols);
    shub_free(sec->hidden);
    shub_free(sec->name);
}

void shub_query_result_destroy(shub_query_result_t **r_p)
{
    shub_query_result_t *r = r_p ? *r_p : NULL;
    if (!r)
        return;
    for (size_t i = 0; i < r->nsecs; i++)
        section_free(&r->secs[i]);
    shub_free(r->secs);
    shub_free(r);
    *r_p = NULL;
}

static int oom(shub_err_t *err)
{
    return shub_err_set(err, SHUB_ENOMEM, "query: out of memory");
}

/* Columns holding ms since the epoch, written out as RFC 3339. */
static const char *const time_columns[] = {
    "at",          "since",           "until",       "computed_at",   "decided_at",
    "received_at", "acknowledged_at", "finished_at", "checkpoint_at", "oldest_pending",
    "review",      "valid_from",      "valid_until", "queued_at",     "outbox_updated_at",
    "occurred",    "loaded_at",
};

static bool is_time_column(const char *name)
{
    for (size_t i = 0; i < sizeof time_columns / sizeof time_columns[0]; i++)
        if (strcmp(name, time_columns[i]) == 0)
            return true;
    return false;
}

static bool in_list(const char *name, const char *const *list)
{
    for (; list && *list; list++)
        if (strcmp(name, *list) == 0)
            return true;
    return false;
}

/* Copies the current value of column i as the text a reader sees. */
static int cell_copy(shub_db_stmt_t *st, int i, const char *name, cell_t *c)
{
    char buf[SHUB_TIME_TEXT > 2 * 64 + 1 ? SHUB_TIME_TEXT : 2 * 64 + 1];
    const char *src = buf;
    c->number = false;
    c->text = NULL;
    switch (shub_db_column_type(st, i)) {
    case SHUB_DB_NULL:
        return 0;
    case SHUB_DB_INT: {
        int64_t v = shub_db_column_int(st, i);
        if (is_time_column(name)) {
            shub_time_format(v, buf);
        } else {
            snprintf(buf, sizeof buf, "%lld", (long long)v);
            c->number = true;
        }
        break;
    }
    case SHUB_DB_BLOB: {
        const uint8_t *p = shub_db_column_blob(st, i);
        size_t n = (size_t)shub_db_column_bytes(st, i);
        if ((strcmp(name, "event_id") == 0 || strcmp(name, "reply_to") == 0) &&
            n == SHUB_ID_SIZE) {
            shub_id_t id;
            memcpy(id.bytes, p, SHUB_ID_SIZE);
            shub_id_format(&id, buf);
        } else {
            static const char digits[] = "0123456789abcdef";
            size_t k = 0;
            for (size_t j = 0; j < n && k + 2 < sizeof buf; j++) {
                buf[k++] = digits[p[j] >> 4];
                buf[k++] = digits[p[j] & 15];
            }
            buf[k] = '\0';
        }
        break;
    }
    default: /* text, and a real if someone put one there */
        src = shub_db_column_text(st, i);
        if (!src) /* SQLite could not convert it: out of memory */
            return SHUB_ENOMEM;
        break;
    }
    c->text = shub_strdup(src);
    return c->text ? 0 : SHUB_ENOMEM;
}

/* Adds an empty section named `name` to r, its columns those of st. */
static section_t *section_new(shub_query_result_t *r, const char *name,
                              shub_db_stmt_t *st, const char *const *hidden,
                              bool vertical)
{
    section_t *grown = shub_realloc(r->secs, (r->nsecs + 1) * sizeof *grown);
    if (!grown)
        return NULL;
    r->secs = grown;
    section_t *sec = &r->secs[r->nsecs];
    memset(sec, 0, sizeof *sec);
    sec->vertical = vertical;
    int n = shub_db_column_count(st);
    if (!(sec->name = shub_strdup(name)) ||
        !(sec->cols = shub_calloc((size_t)n + 1, sizeof *sec->cols)) ||
        !(sec->hidden = shub_calloc((size_t)n + 1, sizeof *sec->hidden))) {
        section_free(sec);
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        const char *cn = shub_db_column_name(st, i);
        if (!(sec->cols[i] = shub_strdup(cn ? cn : "?"))) {
            sec->ncols = (size_t)i;
            section_free(sec);
            return NULL;
        }
        sec->hidden[i] = in_list(sec->cols[i], hidden);
    }
    sec->ncols = (size_t)n;
    r->nsecs++;
    return sec;
}

/* Steps st to the end, appending every row to a new section. */
static int section_fill(shub_store_t *s, shub_query_result_t *r, const char *name,
                        shub_db_stmt_t *st, const char *const *hidden, bool vertical,
                        shub_err_t *err)
{
    section_t *sec = section_new(r, name, st, hidden, vertical);
    int rc;
    if (!sec)
        return oom(err);
    while ((rc = shub_db_step(st)) == SHUB_DB_ROW) {
        if (sec->nrows == sec->cap) {
            size_t ncap = sec->cap ? 2 * sec->cap : 16;
            /* +1: a section without columns still gets a distinct block */
            cell_t *grown =
                shub_realloc(sec->cells, (ncap * sec->ncols + 1) * sizeof *grown);
            if (!grown)
                return oom(err);
            sec->cells = grown;
            sec->cap = ncap;
        }
        cell_t *row = &sec->cells[sec->nrows * sec->ncols];
        memset(row, 0, sec->ncols * sizeof *row);
        sec->nrows++; /* counted now: a half-copied row is freed with the rest */
        for (size_t i = 0; i < sec->ncols; i++)
            if (cell_copy(st, (int)i, sec->cols[i], &row[i]))
                return oom(err);
    }
    if (rc != SHUB_DB_DONE)
        return shub_store_db_fail(s, err, name);
    return 0;
}

static shub_query_result_t *result_new(void)
{
    return shub_calloc(1, sizeof(shub_query_result_t));
}

/* ---- statements ---------------------------------------------------------- */

/* Binds a named parameter if the statement has it; statements share names. */
static int bind_int(shub_db_stmt_t *st, const char *name, int64_t v)
{
    int i = shub_db_param_index(st, name);
    return i ? shub_db_bind_int(st, i, v) : 0;
}

static int bind_opt(shub_db_stmt_t *st, const char *name, bool has, int64_t v)
{
    int i = shub_db_param_index(st, name);
    if (!i)
        return 0;
    return has ? shub_db_bind_int(st, i, v) : shub_db_bind_null(st, i);
}

static int bind_str(shub_db_stmt_t *st, const char *name, const char *v)
{
    int i = shub_db_param_index(st, name);
    return i && v ? shub_db_bind_text(st, i, v, strlen(v)) : 0;
}

static int bind_blob(shub_db_stmt_t *st, const char *name, const void *p, int n)
{
    int i = shub_db_param_index(st, name);
    return i && p ? shub_db_bind_blob(st, i, p, n) : 0;
}

static int prepare(shub_store_t *s, const char *sql, shub_db_stmt_t **st,
                   const char *what, shub_err_t *err)
{
    *st = NULL;
    if (shub_db_prepare(s->db, sql, false, st) != 0)
        return shub_store_db_fail(s, err, what);
    return 0;
}

/* The audit rows with their names as text: what every query reads. SQLite:
 * a TEMP view lives in the connection's own temp schema, so a read-only
 * connection can make it; PostgreSQL's are part of the schema (store.c). */
static const char view_sql[] =
    SHUB_STORE_VIEWS_SQL("main.", "CREATE TEMP VIEW IF NOT EXISTS ", "a.actor_hash");

/* The deadlines with names as text; an empty view of the same shape for a
 * store written before deadlines were tracked (a reader cannot add the
 * table). PostgreSQL's is part of the schema. */
static const char deadlines_view_sql[] =
    SHUB_STORE_DEADLINES_VIEW_SQL("main.", "CREATE TEMP VIEW IF NOT EXISTS ");
static const char deadlines_empty_sql[] =
    "CREATE TEMP VIEW IF NOT EXISTS deadlines_t(" SHUB_STORE_DEADLINE_VIEW_COLUMNS
    ") AS SELECT NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL"
    " WHERE 0";

/* A single integer from sql (with :t bound), or *out = dflt for no row. */
static int one_int(shub_store_t *s, const char *sql, int64_t t, int64_t dflt,
                   int64_t *out, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int rc = prepare(s, sql, &st, "query", err);
    if (rc)
        return rc;
    bind_int(st, ":t", t);
    rc = shub_db_step(st);
    if (rc == SHUB_DB_ROW && shub_db_column_type(st, 0) != SHUB_DB_NULL)
        *out = shub_db_column_int(st, 0);
    else
        *out = dflt;
    if (rc != SHUB_DB_ROW && rc != SHUB_DB_DONE) {
        rc = shub_store_db_fail(s, err, "query");
        shub_db_finalize(st);
        return rc;
    }
    shub_db_finalize(st);
    return 0;
}

/* One read snapshot for everything a query reads; a no-op inside a
 * transaction the caller already holds. SQLite's views are made first, on
 * the connection (deadlines_t empty for a store that predates the table). */
static int read_begin(shub_store_t *s, bool *began, shub_err_t *err)
{
    *began = false;
    if (shub_db_in_txn(s->db))
        return 0;
    if (shub_db_kind(s->db) == SHUB_DB_SQLITE) {
        int64_t has = 0;
        int rc = one_int(s,
                         "SELECT count(*) FROM main.sqlite_schema"
                         " WHERE type = 'table' AND name = 'deadlines'",
                         0, 0, &has, err);
        if (rc)
            return rc;
        if (shub_db_exec(s->db, view_sql) != 0 ||
            shub_db_exec(s->db, has ? deadlines_view_sql : deadlines_empty_sql) != 0)
            return shub_store_db_fail(s, err, "query: views");
    }
    if (shub_db_begin_read(s->db) != 0)
        return shub_store_db_fail(s, err, "query: begin");
    *began = true;
    return 0;
}

static void read_end(shub_store_t *s, bool began)
{
    if (began)
        shub_db_exec(s->db, "COMMIT");
}

/* Ends a query however it went: finalizes st (NULL is fine), ends the read
 * that read_begin began, and hands r to *out when rc is 0, else destroys it.
 * Returns rc. */
static int query_end(shub_store_t *s, bool began, shub_db_stmt_t *st,
                     shub_query_result_t *r, int rc, shub_query_result_t **out)
{
    shub_db_finalize(st);
    read_end(s, began);
    if (rc)
        shub_query_result_destroy(&r);
    else
        *out = r;
    return rc;
}

/*
 * The first seq whose row has at >= t (the last seq + 1 if none), by
 * bisection over seq: one index descent per probe, ~24 probes for 10M rows,
 * instead of an index on `at` that every append would pay for. It relies on
 * `at` not decreasing along seq, which holds as the broker writes (one clock
 * read per batch); a wall clock stepped back could hide rows at the edge of a
 * time window, and the exact `at` test that follows still applies.
 */
static int seq_at_time(shub_store_t *s, int64_t t, int64_t *out, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    int64_t lo, hi;
    int rc;
    if ((rc = one_int(s, "SELECT min(seq) FROM audit", 0, 1, &lo, err)) ||
        (rc = one_int(s, "SELECT max(seq) FROM audit", 0, 0, &hi, err)))
        return rc;
    hi++;
    if ((rc = prepare(s, "SELECT seq, at FROM audit WHERE seq >= ?1 ORDER BY seq LIMIT 1",
                      &st, "query: find time", err)))
        return rc;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        shub_db_bind_int(st, 1, mid);
        rc = shub_db_step(st);
        if (rc == SHUB_DB_ROW && shub_db_column_int(st, 1) < t) {
            lo = shub_db_column_int(st, 0) + 1;
        } else if (rc == SHUB_DB_ROW || rc == SHUB_DB_DONE) {
            hi = mid;
        } else {
            rc = shub_store_db_fail(s, err, "query: find time");
            shub_db_finalize(st);
            return rc;
        }
        shub_db_reset(st);
    }
    shub_db_finalize(st);
    *out = lo;
    return 0;
}

/* ---- log ----------------------------------------------------------------- */

#define LOG_COLUMNS                                                                      \
    "seq, at, action, event_id, event_type, sender, recipient, decision, reason, "       \
    "explanation, agreement, agreement_version AS version, agreement_hash, flow, "       \
    "purpose, legal_basis, consent, override, area, occurred, reply_to, fields, "        \
    "fields_shared, fields_stripped, facts, payload_hash, case_hash, actor_hash"

/* Wide columns: in CSV and JSON, not in the table people read on a terminal. */
static const char *const log_hidden[] = {
    "explanation",     "agreement_hash", "purpose",   "legal_basis", "consent",
    "override",        "area",           "occurred",  "reply_to",    "fields",
    "fields_shared",   "fields_stripped", "facts",    "payload_hash", "case_hash",
    "actor_hash",      NULL,
};

/* Appends text to a fixed SQL buffer; the pieces are all literals of this
 * file, so running out of room is a bug caught by the tests, not input. */
static void sql_add(char *buf, size_t size, const char *piece)
{
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%s", piece);
}

/* The filter terms every branch of a log query shares (not the org). The
 * branches read audit_find (indexed rows) or audit (the unindexed tail):
 * both hold the same filter columns, as ids of names, so a text filter is
 * its name's id (one lookup in names' unique index; an unknown name matches
 * nothing). */
static void log_terms(char *buf, size_t size, const shub_query_filter_t *f, bool epochs)
{
    static const struct {
        size_t off;
        const char *term;
    } texts[] = {
        {offsetof(shub_query_filter_t, sender),
         " AND sender = (SELECT id FROM names WHERE text = :sender)"},
        {offsetof(shub_query_filter_t, recipient),
         " AND recipient = (SELECT id FROM names WHERE text = :recipient)"},
        {offsetof(shub_query_filter_t, agreement),
         " AND agreement IN (SELECT vid FROM agreement_versions WHERE id = :agreement)"},
        {offsetof(shub_query_filter_t, event_type),
         " AND event_type = (SELECT id FROM names WHERE text = :event_type)"},
        {offsetof(shub_query_filter_t, decision),
         " AND decision = (SELECT id FROM names WHERE text = :decision)"},
        {offsetof(shub_query_filter_t, reason),
         " AND reason = (SELECT id FROM names WHERE text = :reason)"},
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
        if (*(const char *const *)((const char *)f + texts[i].off))
            sql_add(buf, size, texts[i].term);
    if (f->case_hash)
        sql_add(buf, size, " AND case_hash = :case");
    sql_add(buf, size, " AND seq > :lo AND seq < :hi");
    if (f->subject_hash) {
        sql_add(buf, size, " AND event_id IN (SELECT event_id FROM audit_find WHERE");
        if (epochs)
            sql_add(buf, size, " epoch IN " FIND_EPOCHS " AND");
        sql_add(buf, size,
                " subject_hash = :subject UNION SELECT event_id FROM audit WHERE"
                " seq > :indexed AND subject_hash = :subject)");
    }
}

/* One branch: rows of `table` (audit_find up to :indexed, or audit after it)
 * that match, cut to the page, optionally for one org column. */
static void log_branch(char *sql, size_t size, const char *table, const char *org_col,
                       const char *terms, const char *order, bool case_epochs)
{
    bool tail = strcmp(table, "audit") == 0;
    sql_add(sql, size, "SELECT seq FROM (SELECT seq FROM ");
    sql_add(sql, size, table);
    sql_add(sql, size, tail ? " WHERE seq > :indexed" : " WHERE seq <= :indexed");
    /* A case is found through its index, one seek per epoch. */
    if (case_epochs && !tail)
        sql_add(sql, size, " AND epoch IN " FIND_EPOCHS);
    if (org_col) {
        sql_add(sql, size, " AND ");
        sql_add(sql, size, org_col);
        sql_add(sql, size, " = (SELECT id FROM names WHERE text = :org)");
    }
    sql_add(sql, size, terms);
    sql_add(sql, size, order);
    sql_add(sql, size, ") AS b"); /* PostgreSQL 15 names every subquery */
}

int shub_query_log(shub_store_t *s, const shub_query_filter_t *f,
                   shub_query_result_t **out, shub_err_t *err)
{
    char sql[8192] = "", terms[2048] = "";
    const char *order;
    shub_db_stmt_t *st = NULL;
    shub_query_result_t *r = NULL;
    int64_t lo = 0, hi = INT64_MAX, edge, indexed = 0;
    bool began = false;
    int rc;
    if (!s || !f || !out)
        return shub_err_set(err, SHUB_EINVAL, "log: missing argument");
    if (f->limit > SHUB_QUERY_LIMIT_MAX)
        return shub_err_set(err, SHUB_EINVAL, "log: limit %zu exceeds %d", f->limit,
                            SHUB_QUERY_LIMIT_MAX);
    if ((rc = read_begin(s, &began, err)))
        return rc;
    if (f->after_seq > 0)
        lo = f->after_seq;
    if (f->before_seq > 0)
        hi = f->before_seq;
    if (f->has_since) {
        if ((rc = seq_at_time(s, f->since_ms, &edge, err)))
            goto done;
        if (edge - 1 > lo)
            lo = edge - 1;
    }
    if (f->has_until) {
        if ((rc = seq_at_time(s, f->until_ms, &edge, err)))
            goto done;
        if (edge < hi)
            hi = edge;
    }
    if ((rc = one_int(s, "SELECT max(seq) FROM audit_find", 0, 0, &indexed, err)))
        goto done;

    /* Keyset paging: ORDER BY the rowid with a bound on it is one descent per
     * page. Each branch (indexed rows, the tail; an org as sender and as
     * recipient) is cut to the page first and the union sorted after, because
     * an OR across indexes cannot deliver rows in seq order and would sort
     * every match before taking a page. */
    order = f->oldest_first ? " ORDER BY seq LIMIT :limit"
                            : " ORDER BY seq DESC LIMIT :limit";
    log_terms(terms, sizeof terms, f, s->find_epochs);
    sql_add(sql, sizeof sql, "SELECT " LOG_COLUMNS " FROM audit_t WHERE seq IN (");
    static const char *const tables[] = {"audit_find", "audit"};
    static const char *const org_cols[] = {"sender", "recipient"};
    bool first = true;
    for (size_t t = 0; t < 2; t++)
        for (size_t o = 0; o < (f->org ? 2u : 1u); o++) {
            if (!first)
                sql_add(sql, sizeof sql, " UNION ALL ");
            first = false;
            log_branch(sql, sizeof sql, tables[t], f->org ? org_cols[o] : NULL, terms,
                       order, f->case_hash && s->find_epochs);
        }
    sql_add(sql, sizeof sql, ")");
    if (f->has_since)
        sql_add(sql, sizeof sql, " AND at >= :since");
    if (f->has_until)
        sql_add(sql, sizeof sql, " AND at < :until");
    sql_add(sql, sizeof sql, order);
    if ((rc = prepare(s, sql, &st, "log", err)))
        goto done;
    /* One row more than asked says whether another page exists. */
    if (bind_str(st, ":org", f->org) || bind_str(st, ":sender", f->sender) ||
        bind_str(st, ":recipient", f->recipient) ||
        bind_str(st, ":agreement", f->agreement) ||
        bind_str(st, ":event_type", f->event_type) ||
        bind_str(st, ":decision", f->decision) || bind_str(st, ":reason", f->reason) ||
        bind_blob(st, ":case", f->case_hash, SHUB_STORE_HASH_SIZE) ||
        bind_int(st, ":lo", lo) || bind_int(st, ":hi", hi) ||
        bind_int(st, ":indexed", indexed) || bind_int(st, ":since", f->since_ms) ||
        bind_int(st, ":until", f->until_ms) ||
        bind_blob(st, ":subject", f->subject_hash, SHUB_STORE_HASH_SIZE) ||
        bind_int(st, ":limit", f->limit ? (int64_t)f->limit + 1 : INT64_MAX)) {
        rc = shub_store_db_fail(s, err, "log");
        goto done;
    }
    if (!(r = result_new())) {
        rc = oom(err);
        goto done;
    }
    if ((rc = section_fill(s, r, "log", st, log_hidden, false, err)))
        goto done;
    section_t *sec = &r->secs[0];
    if (f->limit && sec->nrows > f->limit) {
        cell_t *extra = &sec->cells[f->limit * sec->ncols];
        for (size_t i = 0; i < sec->ncols; i++)
            shub_free(extra[i].text);
        sec->nrows = f->limit;
        r->more = true;
        r->cursor = strtoll(sec->cells[(f->limit - 1) * sec->ncols].text, NULL, 10);
    }
done:
    return query_end(s, began, st, r, rc, out);
}

/* ---- explain ------------------------------------------------------------- */

/* The rows of one event: indexed ones through audit_find, the unindexed
 * tail by scan. */
#define EVENT_ROWS                                                                       \
    "WITH ev AS (SELECT * FROM audit_t WHERE seq IN (SELECT seq FROM audit_find WHERE"   \
    " event_id = :id UNION SELECT seq FROM audit WHERE seq > :indexed AND"              \
    " event_id = :id)) "

static const char explain_event_sql[] = EVENT_ROWS
    "SELECT event_id, event_type, sender,"
    " (SELECT received_at FROM events WHERE event_id = :id) AS received_at,"
    " at AS decided_at, occurred, reply_to, purpose, legal_basis, consent, override,"
    " case_hash, actor_hash, area,"
    " (SELECT count(*) FROM ev WHERE action = 'decide') AS recipients"
    " FROM ev ORDER BY action <> 'decide', seq LIMIT 1";

/* Per recipient: the decision row, whether a copy is pending now, and the
 * rows that ended the delivery (ack, dead letter, recheck). */
static const char explain_recipients_sql[] = EVENT_ROWS
    "SELECT d.recipient, d.decision, d.agreement, d.agreement_version AS version,"
    " d.agreement_hash, d.flow, d.reason, d.explanation, d.legal_basis, d.fields,"
    " d.fields_shared, d.fields_stripped, d.facts, d.at AS decided_at,"
    " (SELECT min(p.created_at) FROM sealed_t p WHERE p.event_id = d.event_id"
    "   AND p.recipient = d.recipient) AS queued_at,"
    " (SELECT f.at FROM ev f WHERE f.recipient IS NOT DISTINCT FROM d.recipient AND "
    "f.action = 'ack'"
    "   ORDER BY f.seq LIMIT 1) AS acknowledged_at,"
    " (SELECT f.at FROM ev f WHERE f.recipient IS NOT DISTINCT FROM d.recipient"
    "   AND f.action IN ('dead', 'recheck') ORDER BY f.seq LIMIT 1) AS finished_at,"
    " (SELECT f.action || ': ' || coalesce(f.reason, '') || coalesce(' (' ||"
    "   f.explanation || ')', '') FROM ev f WHERE f.recipient IS NOT DISTINCT FROM "
    "d.recipient"
    "   AND f.action IN ('dead', 'recheck') ORDER BY f.seq LIMIT 1) AS finished_why,"
    " d.payload_hash, d.seq"
    " FROM ev d WHERE d.action = 'decide' ORDER BY d.seq";

int shub_query_explain(shub_store_t *s, const shub_id_t *id, shub_query_result_t **out,
                       shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    shub_query_result_t *r = NULL;
    bool began = false;
    int64_t indexed = 0;
    int rc;
    if (!s || !id || !out)
        return shub_err_set(err, SHUB_EINVAL, "explain: missing argument");
    if ((rc = read_begin(s, &began, err)))
        return rc;
    if (!(r = result_new())) {
        rc = oom(err);
        goto done;
    }
    if ((rc = one_int(s, "SELECT max(seq) FROM audit_find", 0, 0, &indexed, err)) ||
        (rc = prepare(s, explain_event_sql, &st, "explain", err)))
        goto done;
    bind_blob(st, ":id", id->bytes, SHUB_ID_SIZE);
    bind_int(st, ":indexed", indexed);
    if ((rc = section_fill(s, r, "event", st, NULL, true, err)))
        goto done;
    if (r->secs[0].nrows == 0) {
        char text[SHUB_ID_TEXT];
        shub_id_format(id, text);
        rc = shub_err_set(err, SHUB_ENOTFOUND, "no audit row for event %s", text);
        goto done;
    }
    shub_db_finalize(st);
    st = NULL;
    if ((rc = prepare(s, explain_recipients_sql, &st, "explain", err)))
        goto done;
    bind_blob(st, ":id", id->bytes, SHUB_ID_SIZE);
    bind_int(st, ":indexed", indexed);
    rc = section_fill(s, r, "recipients", st, NULL, true, err);
done:
    return query_end(s, began, st, r, rc, out);
}

/* ---- report -------------------------------------------------------------- */

/* Every report table reads audit rows through this window: up to the latest
 * checkpoint (recomputable by anyone who holds it) and within --since/--until. */
#define WINDOW "seq <= :upto AND at >= :since AND at < :until"
/* Counts the rows where cond holds: SQLite sums booleans, PostgreSQL does not. */
#define COUNT_IF(cond) "count(CASE WHEN " cond " THEN 1 END)"
/* A ratio rounded to a tenth, as text: SQLite's round gives a real,
 * PostgreSQL's a numeric (sent in binary), and both print a cast alike. */
#define TENTH(x) "CAST(round(" x ", 1) AS TEXT)"

/* The two sections whose functions differ by engine: hex text of a blob
 * (hex(x) / encode(x, 'hex')) and the position of a substring (instr /
 * strpos), given as the text before and after the argument. */
#define MARAC_SQL(HEX_A, HEX_B, INSTR)                                                   \
    "WITH r AS (SELECT sender, recipient, event_type, facts,"                            \
    "   CASE WHEN case_hash IS NOT NULL THEN 'c:' || " HEX_A "case_hash" HEX_B           \
    "   ELSE 'e:' || " HEX_A "event_id" HEX_B " END AS k, 'e:' || " HEX_A                \
    "event_id" HEX_B " AS e"                                                             \
    "   FROM audit_t WHERE " WINDOW " AND action = 'decide' AND decision = 'allow'"      \
    "   AND event_type IN ('marac.referral', 'marac.referral.decision', "                \
    "'marac.transfer')),"                                                                \
    " m(marac, metric, k) AS ("                                                          \
    "   SELECT recipient, 'received', e FROM r WHERE event_type = 'marac.referral'"      \
    "   UNION ALL SELECT sender, 'accepted', e FROM r"                                   \
    "   WHERE event_type = 'marac.referral.decision'"                                    \
    "   AND " INSTR "(',' || facts || ',', ',decision=accepted,') > 0"                   \
    "   UNION ALL SELECT sender, 'withdrawn', e FROM r"                                  \
    "   WHERE event_type = 'marac.referral.decision'"                                    \
    "   AND " INSTR "(',' || facts || ',', ',decision=withdrawn,') > 0"                  \
    "   UNION ALL SELECT recipient, 'in', k FROM r WHERE event_type = 'marac.transfer'"  \
    "   UNION ALL SELECT sender, 'out', k FROM r WHERE event_type = 'marac.transfer')"   \
    " SELECT marac,"                                                                     \
    " count(DISTINCT CASE WHEN metric = 'received' THEN k END) AS received,"             \
    " count(DISTINCT CASE WHEN metric = 'accepted' THEN k END) AS accepted,"             \
    " count(DISTINCT CASE WHEN metric = 'withdrawn' THEN k END) AS withdrawn,"           \
    " count(DISTINCT CASE WHEN metric = 'in' THEN k END) AS transferred_in,"             \
    " count(DISTINCT CASE WHEN metric = 'out' THEN k END) AS transferred_out"            \
    " FROM m GROUP BY marac ORDER BY marac"
#define FIELDS_SQL(INSTR)                                                                \
    "WITH RECURSIVE split(agreement, field, rest) AS ("                                  \
    "   SELECT agreement, CAST(NULL AS TEXT), fields_stripped || ',' FROM audit_t"       \
    "   WHERE " WINDOW " AND action = 'decide' AND decision = 'allow'"                   \
    "   AND fields_stripped IS NOT NULL AND fields_stripped <> ''"                       \
    "   UNION ALL SELECT agreement, substr(rest, 1, " INSTR "(rest, ',') - 1),"          \
    "   substr(rest, " INSTR "(rest, ',') + 1) FROM split WHERE rest <> ''),"            \
    " counted AS (SELECT agreement, field, count(*) AS times FROM split"                 \
    "   WHERE field IS NOT NULL AND field <> '' GROUP BY agreement, field),"             \
    " ranked AS (SELECT agreement, field, times, row_number() OVER"                      \
    "   (PARTITION BY agreement ORDER BY times DESC, field) AS rank FROM counted)"       \
    " SELECT agreement, rank, field, times FROM ranked WHERE rank <= :top"               \
    " ORDER BY agreement, rank"

/* How long each answered deadline took, in the flow's own hours (the hub's
 * clock may run hours faster in a simulation: the ratio to the target is
 * what counts), ranked within `part` so the median and the 90th percentile
 * are row numbers: the lower median, and the smallest time within which 90 %
 * were answered. */
#define TOOK(filter, part)                                                               \
    "WITH d AS (SELECT *, CASE WHEN answered_at IS NOT NULL AND due_at > started_at"     \
    "   THEN (answered_at - started_at) * 1.0 * hours / (due_at - started_at) END AS took"\
    "   FROM deadlines_t WHERE started_at >= :since AND started_at < :until" filter "),"  \
    " r AS (SELECT *, row_number() OVER (PARTITION BY " part                              \
    "   ORDER BY took IS NULL, took) AS rn, count(took) OVER (PARTITION BY " part         \
    "   ) AS na FROM d) "
#define TOOK_COLUMNS                                                                     \
    " count(*) AS shares,"                                                               \
    " " COUNT_IF("answered_at IS NOT NULL AND answered_at <= due_at") " AS in_time,"     \
    " " COUNT_IF("answered_at > due_at") " AS late,"                                     \
    " " COUNT_IF("answered_at IS NULL AND due_at <= :now") " AS overdue,"                \
    " " COUNT_IF("answered_at IS NULL AND due_at > :now") " AS waiting,"                 \
    " " COUNT_IF("escalated_at IS NOT NULL") " AS escalated,"                            \
    " " TENTH("max(CASE WHEN rn = (na + 1) / 2 THEN took END)") " AS median_hours,"      \
    " " TENTH("max(CASE WHEN rn = (9 * na + 9) / 10 THEN took END)") " AS p90_hours"

static const struct {
    const char *name;
    const char *sql;
    const char *sql_pg; /* PostgreSQL's, where it differs */
} report_sections[] = {
    /* What the period held, in one row. */
    {"summary",
     "SELECT count(DISTINCT CASE WHEN action = 'decide' THEN event_id END) AS events,"
     " " COUNT_IF("action = 'decide'") " AS shares,"
     " " COUNT_IF("action = 'decide' AND decision = 'allow'") " AS allowed,"
     " " COUNT_IF("action = 'decide' AND decision = 'deny'") " AS denied,"
     " " COUNT_IF("action = 'ack' AND coalesce(sender, '') <> 'hub'") " AS acknowledged,"
     " " COUNT_IF("action IN ('dead', 'recheck') AND coalesce(sender, '') <> 'hub'")
     " AS given_up,"
     " " COUNT_IF("action = 'notice'") " AS escalations,"
     " count(DISTINCT CASE WHEN action = 'decide' THEN sender END) AS senders"
     " FROM audit_t WHERE " WINDOW,
     NULL},
    /* Deadlines per flow and kind (live state, like pending). */
    {"timeliness",
     TOOK("", "agreement, flow, kind")
     "SELECT agreement, flow, kind, max(hours) AS target_hours," TOOK_COLUMNS
     " FROM r GROUP BY agreement, flow, kind ORDER BY agreement, flow, kind",
     NULL},
    /* Referrals per MARAC: the first answer (kind 1), as the region's
     * coordinators review each referral. */
    {"marac_timeliness",
     TOOK(" AND event_type = 'marac.referral' AND kind = 1", "recipient")
     "SELECT recipient AS marac, max(hours) AS target_hours," TOOK_COLUMNS
     " FROM r GROUP BY recipient ORDER BY recipient",
     NULL},
    /* Shares are decisions: one per (event, recipient). Redelivery rechecks
     * and dead letters are in dead_letters, not counted twice here. */
    {"agreements",
     "SELECT agreement, decision, reason, count(*) AS shares FROM audit_t"
     " WHERE " WINDOW " AND action = 'decide'"
     " GROUP BY agreement, decision, reason ORDER BY agreement, decision, reason",
     NULL},
    {"orgs",
     "SELECT sender, recipient, " COUNT_IF("decision = 'allow'") " AS allowed, " COUNT_IF(
         "decision = 'deny'") " AS denied FROM audit_t WHERE " WINDOW
                              " AND action = 'decide'"
                              " GROUP BY sender, recipient ORDER BY sender, recipient",
     NULL},
    {"areas",
     "SELECT area, event_type, count(DISTINCT event_id) AS events,"
     " " COUNT_IF("decision = 'allow'") " AS allowed, " COUNT_IF(
         "decision = 'deny'") " AS denied FROM audit_t"
                              " WHERE " WINDOW " AND action = 'decide'"
                              " GROUP BY area, event_type ORDER BY area, event_type",
     NULL},
    /* MARAC flow: referrals received (by recipient, distinct events);
     * accepted and withdrawn (the decisions the MARAC sent, by the code its
     * agreement declares reportable, distinct events: every referral is
     * decided, a repeat referral joining an open case included, so the
     * decisions add up to the referrals); transfers in and out (distinct
     * cases, so a resend after request_missing counts once). Facts are
     * "path=value,..." codes: matched whole, with commas. */
    {"marac", MARAC_SQL("hex(", ")", "instr"),
     MARAC_SQL("encode(", ", 'hex')", "strpos")},
    /* Split in SQL with a recursive CTE rather than json_each: a field path
     * edited to hold a quote must not make the whole report fail. */
    {"fields_stripped", FIELDS_SQL("instr"), FIELDS_SQL("strpos")},
    {"dead_letters",
     "SELECT recipient, action, reason, count(*) AS deliveries FROM audit_t"
     " WHERE " WINDOW " AND action IN ('dead', 'recheck')"
     " GROUP BY recipient, action, reason ORDER BY recipient, action, reason",
     NULL},
    /* The copies pending now: live state, not part of the chain. */
    {"pending",
     "SELECT recipient, count(*) AS pending, min(created_at) AS oldest_pending"
     " FROM sealed_t GROUP BY recipient ORDER BY recipient",
     NULL},
    /* Every agreement the broker has loaded, its newest version first: the
     * titles and dates the report and the pages name agreements by. */
    {"agreement_versions",
     "SELECT id AS agreement, version, title, status, valid_from, valid_until, review,"
     " first_loaded_at AS loaded_at, content_hash,"
     " row_number() OVER (PARTITION BY id ORDER BY version DESC, first_loaded_at DESC)"
     " AS newest FROM agreement_versions ORDER BY id, version DESC, first_loaded_at DESC",
     NULL},
    /* The flows each agreement version carried, as the log saw them used. */
    {"flows_used",
     "SELECT agreement, agreement_version AS version, flow, event_type,"
     " " COUNT_IF("decision = 'allow'") " AS allowed,"
     " " COUNT_IF("decision = 'deny'") " AS denied"
     " FROM audit_t WHERE " WINDOW " AND action = 'decide' AND flow IS NOT NULL"
     " GROUP BY agreement, agreement_version, flow, event_type"
     " ORDER BY agreement, agreement_version DESC, flow, event_type",
     NULL},
    /* Countersignatures the witnesses sent, newest checkpoint first. */
    {"witnesses",
     "SELECT (SELECT text FROM names WHERE id = w.org) AS org, w.upto_seq,"
     " w.at AS checkpoint_at, w.received_at FROM witnesses w"
     " ORDER BY w.upto_seq DESC, org LIMIT 200",
     NULL},
    /* The newest version of each agreement the broker has loaded, if its
     * review date or validity has passed. */
    /* An agreement past its valid_until is `expired` here whatever its file
     * still says: the policy denies everything under it. */
    {"agreement_review",
     "WITH latest AS (SELECT id, version, title, status, valid_until, review,"
     "   row_number() OVER (PARTITION BY id ORDER BY version DESC, first_loaded_at DESC)"
     "   AS n FROM agreement_versions)"
     " SELECT id AS agreement, version, title,"
     " CASE WHEN valid_until < :now THEN 'expired' ELSE status END AS status,"
     " valid_until, review,"
     " CASE WHEN review < :now AND valid_until < :now THEN 'review overdue, expired'"
     " WHEN review < :now THEN 'review overdue' ELSE 'expired' END AS problem"
     " FROM latest WHERE n = 1 AND (review < :now OR valid_until < :now) ORDER BY id",
     NULL},
};

/* The partnership board's MARAC figures beyond the flow of referrals, each a
 * section of its own (added only when the log has rows for it, so a
 * partnership without MARACs is not shown empty tables). Every number comes
 * from report facts, the codes an agreement classes anonymous, never from a
 * payload value: the referral's DASH risk factors, the decision's repeat and
 * complex flags, the ack's complex flag, an action's status, an IDVA's
 * engagement outcome. Facts are matched whole, with commas, by a replace
 * that changes the text only where the fact is (instr is SQLite's, strpos
 * PostgreSQL's; replace is both engines'). */
#define FACT(f) "replace(',' || facts || ',', '," f ",', '') <> ',' || facts || ','"
#define SHARED  "action = 'decide' AND decision = 'allow'"
/* clang-format off: it breaks SQL built with FACT() into one word a line */
static const struct {
    const char *name;
    const char *sql;
} marac_work_sections[] = {
    /* Per MARAC: referrals received; repeats (the MARAC's finding, from its
     * decisions); the risk factors the board asked for, from the referrals;
     * complex cases (distinct cases flagged in a decision or a transfer ack). */
    {"marac_repeats",
     "WITH r AS (SELECT recipient AS marac, event_id, facts FROM audit_t WHERE " WINDOW
     "   AND " SHARED " AND event_type = 'marac.referral'),"
     " d AS (SELECT sender AS marac, event_id, facts FROM audit_t WHERE " WINDOW
     "   AND " SHARED " AND event_type = 'marac.referral.decision'),"
     " k AS (SELECT sender AS marac, coalesce(case_hash, event_id) AS c"
     "   FROM audit_t WHERE " WINDOW " AND " SHARED
     "   AND event_type IN ('marac.referral.decision', 'marac.transfer.ack')"
     "   AND " FACT("complex=true") "),"
     " m AS (SELECT marac FROM r UNION SELECT marac FROM d UNION SELECT marac FROM k)"
     " SELECT m.marac,"
     " (SELECT count(DISTINCT event_id) FROM r WHERE r.marac = m.marac) AS received,"
     " (SELECT count(DISTINCT event_id) FROM d WHERE d.marac = m.marac"
     "   AND " FACT("repeat=true") ") AS repeats,"
     " (SELECT count(DISTINCT event_id) FROM r WHERE r.marac = m.marac"
     "   AND " FACT("risk.factors.coercive_control=true") ") AS coercive_control,"
     " (SELECT count(DISTINCT event_id) FROM r WHERE r.marac = m.marac"
     "   AND " FACT("risk.factors.knife_used=true") ") AS knife_used,"
     " (SELECT count(DISTINCT event_id) FROM r WHERE r.marac = m.marac"
     "   AND " FACT("risk.factors.child_contact_conflict=true") ")"
     "   AS child_contact_conflict,"
     " (SELECT count(DISTINCT c) FROM k WHERE k.marac = m.marac) AS complex_cases"
     " FROM m ORDER BY m.marac"},
    /* Per MARAC, its actions: raised with their owners, done (updates, one
     * per action answered), gone overdue (reminders sent), handed to another
     * area with the case, and still open (raised less done and handed on). */
    {"marac_actions",
     "WITH m(marac, metric, k) AS ("
     "   SELECT sender, 'raised', event_id FROM audit_t WHERE " WINDOW " AND " SHARED
     "   AND event_type = 'marac.action' AND " FACT("status=open")
     "   UNION ALL SELECT sender, 'overdue', event_id FROM audit_t WHERE " WINDOW
     "   AND " SHARED " AND event_type = 'marac.action' AND " FACT("status=overdue")
     "   UNION ALL SELECT sender, 'transferred', event_id FROM audit_t WHERE " WINDOW
     "   AND " SHARED " AND event_type = 'marac.action' AND " FACT("status=transferred")
     "   UNION ALL SELECT recipient, 'done', coalesce(reply_to, event_id) FROM audit_t"
     "   WHERE " WINDOW " AND " SHARED " AND event_type = 'marac.action.update'"
     "   AND " FACT("status=done") "),"
     " n AS (SELECT marac,"
     "   count(DISTINCT CASE WHEN metric = 'raised' THEN k END) AS raised,"
     "   count(DISTINCT CASE WHEN metric = 'done' THEN k END) AS done,"
     "   count(DISTINCT CASE WHEN metric = 'overdue' THEN k END) AS went_overdue,"
     "   count(DISTINCT CASE WHEN metric = 'transferred' THEN k END) AS transferred"
     "   FROM m GROUP BY marac)"
     " SELECT marac, raised, done, went_overdue, transferred,"
     " CASE WHEN raised - done - transferred > 0 THEN raised - done - transferred"
     " ELSE 0 END AS still_open FROM n ORDER BY marac"},
    /* Per MARAC: victims it notified to an IDVA service, and what the IDVA
     * services reported back. */
    {"idva_engagement",
     "WITH m(marac, metric, k) AS ("
     "   SELECT sender, 'notified', event_id FROM audit_t WHERE " WINDOW " AND " SHARED
     "   AND event_type = 'idva.notification'"
     "   UNION ALL SELECT recipient, CASE WHEN " FACT("outcome=engaged") " THEN 'engaged'"
     "   WHEN " FACT("outcome=declined") " THEN 'declined' ELSE 'no_contact' END,"
     "   event_id FROM audit_t WHERE " WINDOW " AND " SHARED
     "   AND event_type = 'idva.engagement')"
     " SELECT marac,"
     " count(DISTINCT CASE WHEN metric = 'notified' THEN k END) AS notified,"
     " count(DISTINCT CASE WHEN metric = 'engaged' THEN k END) AS engaged,"
     " count(DISTINCT CASE WHEN metric = 'declined' THEN k END) AS declined,"
     " count(DISTINCT CASE WHEN metric = 'no_contact' THEN k END) AS no_contact"
     " FROM m GROUP BY marac ORDER BY marac"},
};
/* clang-format on */
#undef FACT
#undef SHARED

static bool marac_work_known(const char *name)
{
    for (size_t i = 0; i < sizeof marac_work_sections / sizeof marac_work_sections[0];
         i++)
        if (strcmp(name, marac_work_sections[i].name) == 0)
            return true;
    return false;
}

/* Appends the marac_work_sections that have rows (or the one asked for). */
static int report_marac_work(shub_store_t *s, const shub_query_report_opts_t *o,
                             int64_t upto, shub_query_result_t *r, shub_err_t *err)
{
    for (size_t i = 0; i < sizeof marac_work_sections / sizeof marac_work_sections[0];
         i++) {
        const char *name = marac_work_sections[i].name;
        shub_db_stmt_t *st = NULL;
        if (o->section && strcmp(o->section, name) != 0)
            continue;
        int rc = prepare(s, marac_work_sections[i].sql, &st, name, err);
        if (rc)
            return rc;
        if (bind_int(st, ":upto", upto) ||
            bind_int(st, ":since", o->has_since ? o->since_ms : INT64_MIN) ||
            bind_int(st, ":until", o->has_until ? o->until_ms : INT64_MAX)) {
            rc = shub_store_db_fail(s, err, name);
            shub_db_finalize(st);
            return rc;
        }
        rc = section_fill(s, r, name, st, NULL, false, err);
        shub_db_finalize(st);
        if (rc)
            return rc;
        if (!o->section && r->secs[r->nsecs - 1].nrows == 0)
            section_free(&r->secs[--r->nsecs]);
    }
    return 0;
}

static const char report_checkpoint_sql[] =
    "SELECT c.seq AS checkpoint, c.upto_seq, c.at AS checkpoint_at, c.head_hash,"
    " (SELECT count(*) FROM audit WHERE seq <= :upto) AS rows_covered,"
    " (SELECT count(*) FROM audit WHERE seq > :upto) AS rows_left_out,"
    " CAST(:since_opt AS BIGINT) AS since, CAST(:until_opt AS BIGINT) AS until,"
    " CAST(:now AS BIGINT) AS computed_at"
    " FROM (SELECT 1) AS one LEFT JOIN (SELECT seq, upto_seq, at, head_hash FROM"
    " checkpoints ORDER BY upto_seq DESC, seq DESC LIMIT 1) c ON 1 = 1";

int shub_query_report(shub_store_t *s, const shub_query_report_opts_t *o,
                      shub_query_result_t **out, shub_err_t *err)
{
    shub_db_stmt_t *st = NULL;
    shub_query_result_t *r = NULL;
    bool began = false, known;
    int64_t upto = 0;
    int rc;
    if (!s || !o || !out)
        return shub_err_set(err, SHUB_EINVAL, "report: missing argument");
    known = !o->section || strcmp(o->section, "checkpoint") == 0 ||
            marac_work_known(o->section);
    for (size_t i = 0; !known && i < sizeof report_sections / sizeof report_sections[0];
         i++)
        known = strcmp(o->section, report_sections[i].name) == 0;
    if (!known)
        return shub_err_set(err, SHUB_EINVAL, "report: unknown section '%s'", o->section);
    if ((rc = read_begin(s, &began, err)))
        return rc;
    if (!(r = result_new())) {
        rc = oom(err);
        goto done;
    }
    if ((rc = one_int(s,
                      "SELECT upto_seq FROM checkpoints ORDER BY upto_seq DESC, seq DESC"
                      " LIMIT 1",
                      0, 0, &upto, err)))
        goto done;
    for (size_t i = 0; i <= sizeof report_sections / sizeof report_sections[0]; i++) {
        const char *name = i ? report_sections[i - 1].name : "checkpoint";
        const char *sql = i ? report_sections[i - 1].sql : report_checkpoint_sql;
        if (i && report_sections[i - 1].sql_pg && shub_db_kind(s->db) == SHUB_DB_PG)
            sql = report_sections[i - 1].sql_pg;
        if (i && o->section && strcmp(o->section, name) != 0)
            continue;
        if ((rc = prepare(s, sql, &st, name, err)))
            goto done;
        if (bind_int(st, ":upto", upto) ||
            bind_int(st, ":since", o->has_since ? o->since_ms : INT64_MIN) ||
            bind_int(st, ":until", o->has_until ? o->until_ms : INT64_MAX) ||
            bind_opt(st, ":since_opt", o->has_since, o->since_ms) ||
            bind_opt(st, ":until_opt", o->has_until, o->until_ms) ||
            bind_int(st, ":now", o->now_ms) ||
            bind_int(st, ":top",
                     o->top_fields ? (int64_t)o->top_fields : SHUB_QUERY_TOP_FIELDS)) {
            rc = shub_store_db_fail(s, err, name);
            goto done;
        }
        if ((rc = section_fill(s, r, name, st, NULL, i == 0, err)))
            goto done;
        shub_db_finalize(st);
        st = NULL;
    }
    rc = report_marac_work(s, o, upto, r, err);
done:
    return query_end(s, began, st, r, rc, out);
}

/* ---- results built by other modules -------------------------------------- */

int shub_query_result_new(shub_query_result_t **out)
{
    if (!out)
        return SHUB_EINVAL;
    *out = result_new();
    return *out ? 0 : SHUB_ENOMEM;
}

int shub_query_section_add(shub_query_result_t *r, const char *name,
                           const char *const *cols, size_t ncols)
{
    if (!r || !name || (!cols && ncols))
        return SHUB_EINVAL;
    section_t *grown = shub_realloc(r->secs, (r->nsecs + 1) * sizeof *grown);
    if (!grown)
        return SHUB_ENOMEM;
    r->secs = grown;
    section_t *sec = &r->secs[r->nsecs];
    memset(sec, 0, sizeof *sec);
    if (!(sec->name = shub_strdup(name)) ||
        !(sec->cols = shub_calloc(ncols + 1, sizeof *sec->cols)) ||
        !(sec->hidden = shub_calloc(ncols + 1, sizeof *sec->hidden))) {
        section_free(sec);
        return SHUB_ENOMEM;
    }
    for (size_t i = 0; i < ncols; i++) {
        if (!(sec->cols[i] = shub_strdup(cols[i]))) {
            sec->ncols = i;
            section_free(sec);
            return SHUB_ENOMEM;
        }
    }
    sec->ncols = ncols;
    r->nsecs++;
    return 0;
}

int shub_query_row_add(shub_query_result_t *r, const char *const *cells,
                       const bool *numbers)
{
    if (!r || !r->nsecs || !cells)
        return SHUB_EINVAL;
    section_t *sec = &r->secs[r->nsecs - 1];
    if (sec->nrows == sec->cap) {
        size_t ncap = sec->cap ? 2 * sec->cap : 16;
        cell_t *grown = shub_realloc(sec->cells, (ncap * sec->ncols + 1) * sizeof *grown);
        if (!grown)
            return SHUB_ENOMEM;
        sec->cells = grown;
        sec->cap = ncap;
    }
    cell_t *row = &sec->cells[sec->nrows * sec->ncols];
    memset(row, 0, sec->ncols * sizeof *row);
    sec->nrows++; /* counted now: a half-copied row is freed with the rest */
    for (size_t i = 0; i < sec->ncols; i++) {
        row[i].number = numbers && numbers[i];
        if (cells[i] && !(row[i].text = shub_strdup(cells[i])))
            return SHUB_ENOMEM;
    }
    return 0;
}

/* ---- accessors ----------------------------------------------------------- */

size_t shub_query_section_count(const shub_query_result_t *r)
{
    return r ? r->nsecs : 0;
}

const char *shub_query_section_name(const shub_query_result_t *r, size_t i)
{
    return r && i < r->nsecs ? r->secs[i].name : NULL;
}

static const section_t *find_section(const shub_query_result_t *r, const char *name)
{
    for (size_t i = 0; r && name && i < r->nsecs; i++)
        if (strcmp(r->secs[i].name, name) == 0)
            return &r->secs[i];
    return NULL;
}

size_t shub_query_row_count(const shub_query_result_t *r, const char *section)
{
    const section_t *sec = find_section(r, section);
    return sec ? sec->nrows : 0;
}

const char *shub_query_cell(const shub_query_result_t *r, const char *section, size_t row,
                            const char *column)
{
    const section_t *sec = find_section(r, section);
    if (!sec || row >= sec->nrows || !column)
        return NULL;
    for (size_t i = 0; i < sec->ncols; i++)
        if (strcmp(sec->cols[i], column) == 0)
            return sec->cells[row * sec->ncols + i].text;
    return NULL;
}

bool shub_query_next(const shub_query_result_t *r, int64_t *cursor)
{
    if (!r || !r->more)
        return false;
    if (cursor)
        *cursor = r->cursor;
    return true;
}

/* ---- rendering ----------------------------------------------------------- */

/* Text being rendered: the ground floor's buffer (buf.h), and whether an
 * append failed, checked once at the end. */
typedef struct buf {
    shub_buf_t text;
    bool failed;
} buf_t;

static void buf_put(buf_t *b, const char *p, size_t n)
{
    if (!b->failed && shub_buf_append(&b->text, p, n) != 0)
        b->failed = true;
}

static void buf_str(buf_t *b, const char *s)
{
    buf_put(b, s, strlen(s));
}

static void buf_fmt(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void buf_fmt(buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (!b->failed && shub_buf_vprintf(&b->text, fmt, ap) != 0)
        b->failed = true;
    va_end(ap);
}

static void buf_pad(buf_t *b, size_t n)
{
    for (; n > 0; n--)
        buf_put(b, " ", 1);
}

/* Table text: NULL as "-", control characters (a terminal's escape codes,
 * newlines in an explanation) as '?'. Width counts UTF-8 characters. */
static size_t table_width(const char *t)
{
    size_t w = 0;
    for (t = t ? t : "-"; *t; t++)
        w += ((unsigned char)*t & 0xC0) != 0x80;
    return w;
}

static void table_put(buf_t *b, const char *t)
{
    if (!t) {
        buf_put(b, "-", 1);
        return;
    }
    for (; *t; t++) {
        unsigned char c = (unsigned char)*t;
        buf_put(b, c < 0x20 || c == 0x7f ? "?" : t, 1);
    }
}

static void render_table(buf_t *b, const shub_query_result_t *r)
{
    for (size_t si = 0; si < r->nsecs; si++) {
        const section_t *sec = &r->secs[si];
        if (r->nsecs > 1)
            buf_fmt(b, "%s== %s (%zu) ==\n", si ? "\n" : "", sec->name, sec->nrows);
        if (sec->vertical) {
            size_t w = 0;
            for (size_t c = 0; c < sec->ncols; c++)
                if (strlen(sec->cols[c]) > w)
                    w = strlen(sec->cols[c]);
            for (size_t row = 0; row < sec->nrows; row++) {
                if (row)
                    buf_str(b, "\n");
                for (size_t c = 0; c < sec->ncols; c++) {
                    buf_str(b, sec->cols[c]);
                    buf_str(b, ":");
                    buf_pad(b, w - strlen(sec->cols[c]) + 1);
                    table_put(b, sec->cells[row * sec->ncols + c].text);
                    buf_str(b, "\n");
                }
            }
            continue;
        }
        size_t *w = shub_calloc(sec->ncols ? sec->ncols : 1, sizeof *w);
        if (!w) {
            b->failed = true;
            return;
        }
        for (size_t c = 0; c < sec->ncols; c++) {
            w[c] = table_width(sec->cols[c]);
            for (size_t row = 0; row < sec->nrows; row++) {
                size_t cw = table_width(sec->cells[row * sec->ncols + c].text);
                if (cw > w[c])
                    w[c] = cw;
            }
        }
        /* One line per row: the header, then the cells, left-aligned. */
        for (size_t row = 0; row <= sec->nrows; row++) {
            bool first = true;
            size_t pad = 0;
            for (size_t c = 0; c < sec->ncols; c++) {
                if (sec->hidden[c])
                    continue;
                const char *t =
                    row ? sec->cells[(row - 1) * sec->ncols + c].text : sec->cols[c];
                buf_pad(b, first ? 0 : pad + 2);
                table_put(b, t);
                pad = w[c] - table_width(t);
                first = false;
            }
            buf_str(b, "\n");
        }
        shub_free(w);
    }
}

/* The CSV header: one "section" column when there are several sections, then
 * every column name in order of first appearance. */
typedef struct header {
    const char **names;
    size_t n;
} header_t;

static int header_build(const shub_query_result_t *r, header_t *h)
{
    size_t total = 0;
    for (size_t si = 0; si < r->nsecs; si++)
        total += r->secs[si].ncols;
    h->n = 0;
    h->names = shub_calloc(total + 1, sizeof *h->names);
    if (!h->names)
        return SHUB_ENOMEM;
    for (size_t si = 0; si < r->nsecs; si++) {
        const section_t *sec = &r->secs[si];
        for (size_t c = 0; c < sec->ncols; c++) {
            size_t k = 0;
            while (k < h->n && strcmp(h->names[k], sec->cols[c]) != 0)
                k++;
            if (k == h->n)
                h->names[h->n++] = sec->cols[c];
        }
    }
    return 0;
}

static void csv_field(buf_t *b, const char *t)
{
    if (!t)
        return;
    if (!strpbrk(t, ",\"\r\n")) {
        buf_str(b, t);
        return;
    }
    buf_put(b, "\"", 1);
    for (; *t; t++) {
        if (*t == '"')
            buf_put(b, "\"\"", 2);
        else
            buf_put(b, t, 1);
    }
    buf_put(b, "\"", 1);
}

static void render_csv(buf_t *b, const shub_query_result_t *r)
{
    header_t h;
    bool many = r->nsecs > 1;
    if (header_build(r, &h)) {
        b->failed = true;
        return;
    }
    if (many)
        buf_str(b, h.n ? "section," : "section");
    for (size_t k = 0; k < h.n; k++) {
        buf_str(b, k ? "," : "");
        csv_field(b, h.names[k]);
    }
    buf_str(b, "\r\n");
    for (size_t si = 0; si < r->nsecs; si++) {
        const section_t *sec = &r->secs[si];
        for (size_t row = 0; row < sec->nrows; row++) {
            if (many) {
                csv_field(b, sec->name);
                buf_str(b, h.n ? "," : "");
            }
            for (size_t k = 0; k < h.n; k++) {
                buf_str(b, k ? "," : "");
                for (size_t c = 0; c < sec->ncols; c++)
                    if (strcmp(sec->cols[c], h.names[k]) == 0)
                        csv_field(b, sec->cells[row * sec->ncols + c].text);
            }
            buf_str(b, "\r\n");
        }
    }
    shub_free(h.names);
}

/* A JSON string for text that may not be UTF-8 (the database is not
 * trusted): bytes jansson refuses are replaced with '?'. */
static json_t *json_text(const char *t)
{
    json_t *j = json_string(t);
    if (j)
        return j;
    char *copy = shub_strdup(t);
    if (!copy)
        return NULL;
    for (char *p = copy; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(copy);
    shub_free(copy);
    return j;
}

static int render_json(buf_t *b, const shub_query_result_t *r)
{
    json_t *arr = json_array();
    if (!arr)
        return SHUB_ENOMEM;
    for (size_t si = 0; si < r->nsecs; si++) {
        const section_t *sec = &r->secs[si];
        for (size_t row = 0; row < sec->nrows; row++) {
            json_t *obj = json_object();
            if (!obj || json_array_append_new(arr, obj)) {
                json_decref(arr);
                return SHUB_ENOMEM;
            }
            if (r->nsecs > 1 &&
                json_object_set_new(obj, "section", json_text(sec->name))) {
                json_decref(arr);
                return SHUB_ENOMEM;
            }
            for (size_t c = 0; c < sec->ncols; c++) {
                const cell_t *cell = &sec->cells[row * sec->ncols + c];
                json_t *v = !cell->text    ? json_null()
                            : cell->number ? json_integer(strtoll(cell->text, NULL, 10))
                                           : json_text(cell->text);
                if (!v || json_object_set_new(obj, sec->cols[c], v)) {
                    json_decref(arr);
                    return SHUB_ENOMEM;
                }
            }
        }
    }
    char *text = json_dumps(arr, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(arr);
    if (!text)
        return SHUB_ENOMEM;
    buf_str(b, text);
    buf_str(b, "\n");
    free(text); /* jansson's own allocation */
    return 0;
}

int shub_query_render(const shub_query_result_t *r, shub_query_format_t fmt, char **text,
                      size_t *len, shub_err_t *err)
{
    buf_t b = {0};
    if (!r || !text)
        return shub_err_set(err, SHUB_EINVAL, "render: missing argument");
    buf_put(&b, "", 0);
    switch (fmt) {
    case SHUB_QUERY_CSV:
        render_csv(&b, r);
        break;
    case SHUB_QUERY_JSON:
        if (render_json(&b, r))
            b.failed = true;
        break;
    default:
        render_table(&b, r);
        break;
    }
    if (b.failed || !shub_buf_text(&b.text)) {
        shub_buf_free(&b.text);
        return oom(err);
    }
    *text = (char *)b.text.data; /* the caller frees it with shub_free */
    if (len)
        *len = b.text.len;
    return 0;
}

int shub_query_format_parse(const char *name, shub_query_format_t *fmt)
{
    static const char *const names[] = {"table", "csv", "json"};
    for (int i = 0; name && i < 3; i++) {
        if (strcmp(name, names[i]) == 0) {
            *fmt = (shub_query_format_t)i;
            return 0;
        }
    }
    return SHUB_EINVAL;
}

/* ---- times ------------------------------------------------------------- */

int shub_query_time_parse(const char *text, bool end_of_day, int64_t *ms)
{
    int64_t t;
    if (shub_time_parse_date(text, &t, NULL) == 0) {
        *ms = end_of_day ? t + SHUB_TIME_MS_PER_DAY : t;
        return 0;
    }
    if (shub_time_parse(text, &t, NULL) != 0)
        return SHUB_EINVAL;
    *ms = t;
    return 0;
}
