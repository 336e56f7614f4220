/*
 * query: what auditors ask of the store, read-only: the audit log filtered
 * and paged (`sharehub-audit log` and `subject`), the whole story of one
 * event (`explain`), and the tables an information-governance board reads
 * (`report`). It is the store's other half: all of its SQL lives in
 * broker/query.c, beside the schema it depends on, so the CLI holds no SQL
 * and the tests reach every number the CLI prints.
 *
 * Every answer is a result: named sections (one for a log page, several for a
 * report), each a table of rows whose cells are text or integers, rendered as
 * an aligned table for people, RFC 4180 CSV with a header row, or one JSON
 * array of objects. Times go out as RFC 3339 UTC with milliseconds; event ids
 * in their canonical text form; hashes in hex. No payload value is in the
 * store, and a subject reference only as its keyed hash, so none can be shown.
 *
 * Paging is keyset paging on seq, never OFFSET: a page of N rows costs one
 * index descent and N rows whatever the log's length, and the result carries
 * the cursor of the next page. Filters that match an index of the schema
 * (sender, recipient, agreement, event type, reason, case, subject, event id)
 * stay fast on millions of rows; decision alone is checked row by row.
 */
#ifndef SHAREHUB_QUERY_H
#define SHAREHUB_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/store.h"

#define SHUB_QUERY_LIMIT_DEFAULT 50     /* rows in a log page unless told */
#define SHUB_QUERY_LIMIT_MAX     100000 /* rows in one page: results live in memory */
#define SHUB_QUERY_TOP_FIELDS    10     /* stripped fields listed per agreement */

typedef enum {
    SHUB_QUERY_TABLE, /* aligned columns, one titled block per section */
    SHUB_QUERY_CSV,   /* RFC 4180, CRLF, a header row: "section" + every column */
    SHUB_QUERY_JSON,  /* one array of objects, each with its "section" */
} shub_query_format_t;

typedef struct shub_query_result shub_query_result_t;

/*
 * Which audit rows a log page holds. Every set text filter must match
 * exactly; NULL means any. `org` matches sender or recipient. Times are ms
 * since the epoch, since inclusive, until exclusive. subject_hash (32 bytes)
 * selects every row of every event whose decisions carry that hash, so a
 * subject's acknowledgements and dead letters come with their decisions.
 * after_seq/before_seq bound seq exclusively (0: no bound). limit 0 means
 * every matching row (for subject access requests; a person's rows are few).
 */
typedef struct shub_query_filter {
    const char *org, *sender, *recipient, *agreement, *event_type;
    const char *decision, *reason;
    const uint8_t *case_hash; /* 32 bytes: the keyed hash of a case reference */
    bool has_since, has_until;
    int64_t since_ms, until_ms;
    const uint8_t *subject_hash;
    int64_t after_seq, before_seq;
    bool oldest_first; /* false: newest first */
    size_t limit;
} shub_query_filter_t;

/* What a report covers and when "now" is (agreement review dates are
 * compared with it). section NULL: every section; else just that one (and
 * the checkpoint section, always). top_fields 0: SHUB_QUERY_TOP_FIELDS. */
typedef struct shub_query_report_opts {
    bool has_since, has_until;
    int64_t since_ms, until_ms;
    int64_t now_ms;
    const char *section;
    size_t top_fields;
} shub_query_report_opts_t;

/* ---- queries ------------------------------------------------------------ */

/* One page of audit rows, section "log", newest or oldest first. *out gets
 * the result (the caller destroys it). SHUB_EINVAL (limit over
 * SHUB_QUERY_LIMIT_MAX), SHUB_ENOMEM, SHUB_EDB. */
int shub_query_log(shub_store_t *s, const shub_query_filter_t *f,
                   shub_query_result_t **out, shub_err_t *err);

/* The story of one event: section "event" (type, sender, time, purpose,
 * legal basis, consent, case, area) and section "recipients" (per recipient:
 * decision, agreement, version and flow or reason and explanation, fields
 * shared and stripped, decided, acknowledged or dead-lettered when, and the
 * outbox state now). SHUB_ENOTFOUND if the log has no row for the event. */
int shub_query_explain(shub_store_t *s, const shub_id_t *id, shub_query_result_t **out,
                       shub_err_t *err);

/* The board's tables, computed in one snapshot over the audit rows up to the
 * latest checkpoint only, so anyone holding the checkpoint can recompute
 * them: "checkpoint" (its seq, time, head hash, rows covered, newer rows left
 * out), "agreements", "orgs", "areas", "marac", "fields_stripped",
 * "dead_letters", "pending" (the outbox now: not part of the chain) and
 * "agreement_review". Without a checkpoint every table is empty.
 * SHUB_EINVAL (unknown section), SHUB_ENOMEM, SHUB_EDB. */
int shub_query_report(shub_store_t *s, const shub_query_report_opts_t *o,
                      shub_query_result_t **out, shub_err_t *err);

/* Frees a result. Accepts NULL; nulls the caller's pointer. */
void shub_query_result_destroy(shub_query_result_t **r_p);

/* ---- results other modules build ----------------------------------------- */

/* An empty result (what-if and other tools build theirs with the two calls
 * below and render it like any other). SHUB_EINVAL, SHUB_ENOMEM. */
int shub_query_result_new(shub_query_result_t **out);

/* Adds a section with these column names; rows go to the newest section.
 * SHUB_EINVAL, SHUB_ENOMEM. */
int shub_query_section_add(shub_query_result_t *r, const char *name,
                           const char *const *cols, size_t ncols);

/* Appends a row to the newest section: one text per column (NULL for none);
 * numbers (may be NULL) marks the integers, which JSON writes bare. The
 * texts are copied. SHUB_EINVAL, SHUB_ENOMEM. */
int shub_query_row_add(shub_query_result_t *r, const char *const *cells,
                       const bool *numbers);

/* ---- output ------------------------------------------------------------- */

/* Renders a result; *text (NUL-terminated, *len bytes without the NUL) is the
 * caller's to free with shub_free. Text from the database is escaped for the
 * format; control characters in table output become '?'. SHUB_ENOMEM. */
int shub_query_render(const shub_query_result_t *r, shub_query_format_t fmt, char **text,
                      size_t *len, shub_err_t *err);

/* "table", "csv" or "json" into *fmt. SHUB_EINVAL otherwise. */
int shub_query_format_parse(const char *name, shub_query_format_t *fmt);

/* ---- accessors ---------------------------------------------------------- */

size_t shub_query_section_count(const shub_query_result_t *r);
const char *shub_query_section_name(const shub_query_result_t *r, size_t i);

/* Rows in the named section; 0 if there is no such section. */
size_t shub_query_row_count(const shub_query_result_t *r, const char *section);

/* A cell as rendered (times in RFC 3339, ids as text), borrowed from r; NULL
 * if the value is NULL or there is no such section, row or column. */
const char *shub_query_cell(const shub_query_result_t *r, const char *section, size_t row,
                            const char *column);

/* A log page: true if more rows match beyond it; *cursor (may be NULL) gets
 * the seq to pass as before_seq (newest first) or after_seq (oldest first). */
bool shub_query_next(const shub_query_result_t *r, int64_t *cursor);

/* ---- times -------------------------------------------------------------- */

/* Reads a --since or --until time: RFC 3339 or a date as shub_time_parse
 * takes them (time.h); a date is its midnight UTC, or with end_of_day the
 * next midnight, so `--until 2026-03-31` includes that day. SHUB_EINVAL if
 * malformed. Times are written with shub_time_format. */
int shub_query_time_parse(const char *text, bool end_of_day, int64_t *ms);

#endif
