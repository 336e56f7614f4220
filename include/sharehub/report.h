/*
 * report: the board report in plain words. It asks the query module for the
 * report's figures (shub_query_report: all of the SQL stays in the store
 * module) and turns them into sections a partnership board, a DPO or a MARAC
 * coordinator reads: organisations by their display names (orgs.yaml's
 * `name`), agreements by their titles, column headings in words, one
 * sentence under each title saying what its numbers mean, and a glossary
 * line where a term cannot be avoided. A section with nothing to say in this
 * partnership (MARAC referrals where there is no MARAC) is left out.
 *
 * Each section is built by one small function in the table in report.c, so
 * a section is added without touching the others. The same sections are
 * rendered as text (fits two printed pages for a region's quarter), one CSV
 * table per section (a header row of the column headings, so a spreadsheet
 * opens it as it is), JSON, and by the audit tool's pages as HTML tables and
 * charts (web.c), through the accessors below.
 */
#ifndef SHAREHUB_REPORT_H
#define SHAREHUB_REPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/buf.h"
#include "sharehub/err.h"
#include "sharehub/orgs.h"
#include "sharehub/query.h"
#include "sharehub/store.h"

#define SHUB_REPORT_TEXT_WIDTH 92 /* columns of the text format: a printed page */

typedef struct shub_report shub_report_t;

typedef enum {
    SHUB_REPORT_TEXT,
    SHUB_REPORT_CSV,
    SHUB_REPORT_JSON,
} shub_report_format_t;

typedef struct shub_report_opts {
    shub_query_report_opts_t q; /* window and "now"; q.section is ignored */
    const shub_orgs_t *orgs;    /* display names; NULL: organisations by id */
    const char *section;        /* NULL: every section; else only that one */
} shub_report_opts_t;

/* Builds the report from the store (read-only, beside a live broker).
 * SHUB_EINVAL for an unknown section (the message lists the known ones),
 * SHUB_ENOMEM, SHUB_EDB. */
int shub_report_build(shub_store_t *s, const shub_report_opts_t *o, shub_report_t **out,
                      shub_err_t *err);

void shub_report_destroy(shub_report_t **r_p);

/* Renders every section (text, json) or the one section the report holds
 * (csv: SHUB_EINVAL if it holds several; the caller asks for one, or writes
 * a directory). Appends to out. */
int shub_report_render(const shub_report_t *r, shub_report_format_t fmt, shub_buf_t *out,
                       shub_err_t *err);

/* One CSV file per section, DIR/<id>.csv. SHUB_EIO naming the file. */
int shub_report_write_csv_dir(const shub_report_t *r, const char *dir, shub_err_t *err);

/* "text", "table" (the same), "csv" or "json". SHUB_EINVAL otherwise. */
int shub_report_format_parse(const char *name, shub_report_format_t *fmt);

/* The section ids, NULL-terminated, in report order. */
const char *const *shub_report_section_ids(void);

/* ---- accessors (the pages draw from these) ------------------------------ */

/* The report's title and the line saying what it covers. */
const char *shub_report_title(const shub_report_t *r);
const char *shub_report_coverage(const shub_report_t *r);

size_t shub_report_count(const shub_report_t *r);

typedef struct shub_report_section {
    const char *id;       /* csv file and --section name */
    const char *title;    /* plain words */
    const char *what;     /* one or two sentences: what the numbers mean */
    const char *glossary; /* "Term: meaning. ..." or NULL */
    size_t ncols, nrows;
    int chart_label, chart_value; /* columns a bar chart draws; -1: no chart */
} shub_report_section_t;

/* Section i (borrowed). false if out of range. */
bool shub_report_section(const shub_report_t *r, size_t i, shub_report_section_t *out);

/* Column heading and whether it holds numbers; a cell's text (NULL: none). */
const char *shub_report_column(const shub_report_t *r, size_t sec, size_t col,
                               bool *number);
const char *shub_report_cell(const shub_report_t *r, size_t sec, size_t row, size_t col);

/* The link a cell points to in the pages (an organisation's or agreement's
 * log), as "kind:value" ("org:wmp", "agreement:wm-marac"), or NULL. */
const char *shub_report_link(const shub_report_t *r, size_t sec, size_t row, size_t col);

#endif
