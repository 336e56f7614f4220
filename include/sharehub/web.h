/*
 * web: the auditor's read-only pages (`sharehub-audit serve`): the board
 * report with its charts drawn as SVG on the server and the same numbers in
 * a table under each, the audit log with filters and paging, one share
 * explained, the agreements with their versions, review dates and flows,
 * and the state of the log's verification with its newest checkpoint and
 * witnesses. No script, no external asset: one stylesheet and one icon are
 * served from here, and the Content-Security-Policy (SHUB_WEB_CSP) allows
 * nothing else. Every value from the database or orgs.yaml is escaped for
 * where it lands (element text, attribute, URL).
 *
 * Routing is pure (shub_web_route: the path and the decoded query arguments
 * into a page and its checked arguments), so the fuzz target and the tests
 * reach it without a socket; rendering reads the store through the query
 * and report modules on a read-only connection of the pages' own, which
 * works beside a running broker (WAL).
 */
#ifndef SHAREHUB_WEB_H
#define SHAREHUB_WEB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"
#include "sharehub/http.h"
#include "sharehub/orgs.h"
#include "sharehub/query.h"

#define SHUB_WEB_CSP                                                                     \
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "         \
    "base-uri 'none'; frame-ancestors 'none'"
#define SHUB_WEB_PAGE_ROWS 50  /* log rows per page unless asked */
#define SHUB_WEB_MAX_ROWS  500 /* log rows per page at most */
#define SHUB_WEB_MAX_ARG   256 /* bytes of one query argument */

typedef enum {
    SHUB_WEB_REPORT = 1, /* / */
    SHUB_WEB_LOG,        /* /log?filters */
    SHUB_WEB_EXPLAIN,    /* /explain/EVENT_ID */
    SHUB_WEB_AGREEMENTS, /* /agreements */
    SHUB_WEB_VERIFY,     /* /verify */
    SHUB_WEB_STYLE,      /* /style.css */
    SHUB_WEB_ICON,       /* /favicon.ico, /favicon.svg */
} shub_web_page_t;

/* A request as the pages understand it. Text filters point into the
 * request's arguments (valid while it is). */
typedef struct shub_web_route {
    int status;        /* 200, or 400 / 404 with `problem` */
    char problem[160]; /* what was wrong, for the error page */
    shub_web_page_t page;
    shub_query_filter_t filter; /* SHUB_WEB_LOG */
    shub_id_t id;               /* SHUB_WEB_EXPLAIN */
} shub_web_route_t;

typedef struct shub_web shub_web_t;

typedef struct shub_web_opts {
    const char *db;                /* the broker's database, opened read-only */
    const shub_orgs_t *orgs;       /* display names (borrowed; may be NULL) */
    const uint8_t *checkpoint_key; /* 32 bytes: verify checks signatures against it
                                      (NULL: against the key each checkpoint names) */
} shub_web_opts_t;

/* Opens the database read-only for the pages. SHUB_EDB, SHUB_ENOMEM. */
int shub_web_new(const shub_web_opts_t *o, shub_web_t **out, shub_err_t *err);
void shub_web_destroy(shub_web_t **w_p);

/* Which page a request asks for, its arguments checked (never fails: a bad
 * request is out->status 400 or 404 with out->problem). */
void shub_web_route(const shub_http_request_t *req, shub_web_route_t *out);

/* The http surface: route, then render. ctx is the shub_web_t. */
void shub_web_serve(const shub_http_request_t *req, shub_http_response_t *resp,
                    void *ctx);

/* Appends text escaped for HTML element content and quoted attributes. */
void shub_web_escape(shub_buf_t *out, const char *text);

#endif
