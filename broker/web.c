/*
 * web: the auditor's pages (include/sharehub/web.h). Read top-down: escaping,
 * routing (pure), the frame every page shares, then one renderer per page.
 * Everything a page shows comes from the query and report modules; this file
 * holds no SQL and decides nothing, it only lays out and escapes.
 */
#include "sharehub/web.h"

#include "sharehub/alloc.h"
#include "sharehub/report.h"
#include "sharehub/store.h"
#include "sharehub/time.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct shub_web {
    char *db;
    shub_store_t *store;
    const shub_orgs_t *orgs;
    bool has_key;
    uint8_t key[32];
};

/* ---- escaping -------------------------------------------------------------- */

void shub_web_escape(shub_buf_t *out, const char *text)
{
    static const char *const entity[128] = {
        ['&'] = "&amp;",  ['<'] = "&lt;",   ['>'] = "&gt;",
        ['"'] = "&quot;", ['\''] = "&#39;",
    };
    for (const char *p = text ? text : ""; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 128 && entity[c])
            shub_buf_puts(out, entity[c]);
        else /* control characters (a terminal's escapes, a newline in an explanation)
                are shown as '?', never passed on */
            shub_buf_append(out, c < 0x20 || c == 0x7f ? "?" : p, 1);
    }
}

/* A query argument's value, percent-encoded (RFC 3986 unreserved kept). */
static void urlenc(shub_buf_t *out, const char *text)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)(text ? text : ""); *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
            (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
            *p == '~') {
            shub_buf_append(out, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            shub_buf_append(out, e, 3);
        }
    }
}

static void esc(shub_buf_t *out, const char *text)
{
    shub_web_escape(out, text);
}

/* printf for the page's own markup: every %s argument must already be safe
 * (a literal of this file, or a number). */
static void put(shub_buf_t *out, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void put(shub_buf_t *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    shub_buf_vprintf(out, fmt, ap);
    va_end(ap);
}

/* ---- routing ------------------------------------------------------------------ */

static void route_fail(shub_web_route_t *r, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void route_fail(shub_web_route_t *r, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    r->status = status;
    vsnprintf(r->problem, sizeof r->problem, fmt, ap);
    va_end(ap);
}

static bool parse_seq(const char *t, int64_t *out)
{
    char *end = NULL;
    if (!t || !*t || *t == '-' || *t == '+' || strlen(t) > 19)
        return false;
    long long v = strtoll(t, &end, 10);
    if (!end || *end || v < 0)
        return false;
    *out = v;
    return true;
}

/* The log page's filters, each checked: names must be names, numbers numbers. */
static void route_log(const shub_http_request_t *req, shub_web_route_t *r)
{
    shub_query_filter_t *f = &r->filter;
    f->limit = SHUB_WEB_PAGE_ROWS;
    static const struct {
        const char *key;
        size_t off;
    } names[] = {
        {"org", offsetof(shub_query_filter_t, org)},
        {"sender", offsetof(shub_query_filter_t, sender)},
        {"recipient", offsetof(shub_query_filter_t, recipient)},
        {"agreement", offsetof(shub_query_filter_t, agreement)},
        {"type", offsetof(shub_query_filter_t, event_type)},
        {"reason", offsetof(shub_query_filter_t, reason)},
        {"decision", offsetof(shub_query_filter_t, decision)},
    };
    for (size_t i = 0; i < req->n_args && r->status == 200; i++) {
        const char *k = req->args[i].key, *v = req->args[i].value;
        bool known = false;
        if (strlen(v) > SHUB_WEB_MAX_ARG) {
            route_fail(r, 400, "argument '%.32s' is longer than %d bytes", k,
                       SHUB_WEB_MAX_ARG);
            return;
        }
        if (!*v)
            continue; /* an empty form field: no filter */
        for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
            if (strcmp(k, names[n].key) != 0)
                continue;
            known = true;
            if (!shub_is_name(v))
                route_fail(r, 400, "%s '%.64s' is not a name ([a-z0-9][a-z0-9._-]*)", k,
                           v);
            else
                *(const char **)((char *)f + names[n].off) = v;
        }
        if (known)
            continue;
        if (strcmp(k, "since") == 0 || strcmp(k, "until") == 0) {
            bool until = k[0] == 'u';
            if (shub_query_time_parse(v, until, until ? &f->until_ms : &f->since_ms))
                route_fail(r, 400,
                           "%s '%.64s' is not a date (YYYY-MM-DD) or an RFC 3339 time", k,
                           v);
            *(until ? &f->has_until : &f->has_since) = true;
        } else if (strcmp(k, "before") == 0 || strcmp(k, "after") == 0) {
            if (!parse_seq(v, k[0] == 'b' ? &f->before_seq : &f->after_seq))
                route_fail(r, 400, "%s '%.64s' is not a record number", k, v);
        } else if (strcmp(k, "limit") == 0) {
            int64_t n = 0;
            if (!parse_seq(v, &n) || n < 1 || n > SHUB_WEB_MAX_ROWS)
                route_fail(r, 400, "limit '%.64s' is not a number from 1 to %d", v,
                           SHUB_WEB_MAX_ROWS);
            f->limit = (size_t)n;
        } else if (strcmp(k, "order") == 0) {
            if (strcmp(v, "oldest") != 0 && strcmp(v, "newest") != 0)
                route_fail(r, 400, "order must be oldest or newest");
            f->oldest_first = strcmp(v, "oldest") == 0;
        } else {
            route_fail(r, 400, "unknown argument '%.32s'", k);
        }
    }
    if (r->status == 200 && f->after_seq && f->before_seq == 0 &&
        !shub_http_arg(req, "order"))
        f->oldest_first = true; /* "newer" pages read forwards */
}

void shub_web_route(const shub_http_request_t *req, shub_web_route_t *r)
{
    memset(r, 0, sizeof *r);
    r->status = 200;
    const char *path = req && req->path ? req->path : "";
    if (strcmp(path, "/") == 0 || strcmp(path, "/report") == 0) {
        r->page = SHUB_WEB_REPORT;
    } else if (strcmp(path, "/log") == 0) {
        r->page = SHUB_WEB_LOG;
        route_log(req, r);
        return;
    } else if (strncmp(path, "/explain/", 9) == 0) {
        r->page = SHUB_WEB_EXPLAIN;
        if (shub_id_parse(path + 9, &r->id) != 0)
            route_fail(r, 404, "'%.64s' is not an event id", path + 9);
        return;
    } else if (strcmp(path, "/agreements") == 0) {
        r->page = SHUB_WEB_AGREEMENTS;
    } else if (strcmp(path, "/verify") == 0) {
        r->page = SHUB_WEB_VERIFY;
    } else if (strcmp(path, "/style.css") == 0) {
        r->page = SHUB_WEB_STYLE;
    } else if (strcmp(path, "/favicon.ico") == 0 || strcmp(path, "/favicon.svg") == 0) {
        r->page = SHUB_WEB_ICON;
    } else {
        route_fail(r, 404, "no page at this address");
        return;
    }
    if (req && req->n_args)
        route_fail(r, 400, "this page takes no arguments");
}

/* ---- the frame ------------------------------------------------------------------- */

static const char style_css[] =
    "body{font:15px/1.45 system-ui,sans-serif;margin:0;color:#1b1b1b;background:#fff}"
    "header{background:#1d3557;color:#fff;padding:.6em 1.5em}"
    "header a{color:#fff;margin-right:1.2em;text-decoration:none;font-weight:600}"
    "header a.here{text-decoration:underline}"
    "main{padding:1em 1.5em;max-width:72em}"
    "h1{font-size:1.5em;margin:.3em 0}h2{font-size:1.2em;margin:1.6em 0 .3em;"
    "border-bottom:1px solid #ccc}"
    "p.what{margin:.2em 0;color:#333}p.terms{margin:.2em 0;color:#555;font-size:.9em}"
    "table{border-collapse:collapse;margin:.5em 0 1em}"
    "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
    "th{background:#f0f3f7}td.n{text-align:right;font-variant-numeric:tabular-nums}"
    "svg{display:block;margin:.5em 0}svg text{font:12px "
    "system-ui,sans-serif;fill:#1b1b1b}"
    "rect.bar{fill:#457b9d}form label{margin-right:.8em}form input,form select{width:9em}"
    ".bad{color:#a4161a;font-weight:600}.ok{color:#2d6a4f;font-weight:600}"
    "nav.pages a{margin-right:1em}";

static const char icon_svg[] =
    "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
    "<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#1d3557\"/>"
    "<path d=\"M4 8h8M8 4v8\" stroke=\"#fff\" stroke-width=\"2\"/></svg>";

static void head(shub_buf_t *b, const char *title, shub_web_page_t here)
{
    static const struct {
        shub_web_page_t page;
        const char *href, *label;
    } nav[] = {
        {SHUB_WEB_REPORT, "/", "Board report"},
        {SHUB_WEB_LOG, "/log", "Audit log"},
        {SHUB_WEB_AGREEMENTS, "/agreements", "Agreements"},
        {SHUB_WEB_VERIFY, "/verify", "Verification"},
    };
    shub_buf_puts(
        b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width\">"
           "<link rel=\"stylesheet\" href=\"/style.css\">"
           "<link rel=\"icon\" href=\"/favicon.svg\" type=\"image/svg+xml\"><title>");
    esc(b, title);
    shub_buf_puts(b, " - sharehub</title></head><body><header>");
    for (size_t i = 0; i < sizeof nav / sizeof nav[0]; i++)
        put(b, "<a href=\"%s\"%s>%s</a>", nav[i].href,
            nav[i].page == here ? " class=\"here\"" : "", nav[i].label);
    shub_buf_puts(b, "</header><main><h1>");
    esc(b, title);
    shub_buf_puts(b, "</h1>");
}

static void foot(shub_buf_t *b)
{
    shub_buf_puts(b, "</main></body></html>\n");
}

static void error_page(shub_buf_t *b, shub_http_response_t *resp, int status,
                       const char *problem)
{
    resp->status = status;
    head(b,
         status == 404   ? "Not found"
         : status == 400 ? "Bad request"
                         : "Cannot show this",
         0);
    shub_buf_puts(b, "<p class=\"bad\">");
    esc(b, problem);
    shub_buf_puts(b, "</p>");
    foot(b);
}

/* An organisation for people: its name from orgs.yaml, else its id. */
static const char *org_name(const shub_web_t *w, const char *id)
{
    const shub_orgs_entry_t *e = w->orgs && id ? shub_orgs_find(w->orgs, id) : NULL;
    return e ? e->name : id;
}

/* A link to the log filtered by one value. */
static void log_link(shub_buf_t *b, const char *key, const char *value, const char *text)
{
    shub_buf_puts(b, "<a href=\"/log?");
    shub_buf_puts(b, key);
    shub_buf_puts(b, "=");
    urlenc(b, value);
    shub_buf_puts(b, "\">");
    esc(b, text ? text : value);
    shub_buf_puts(b, "</a>");
}

/* ---- the board report ---------------------------------------------------------- */

/* A horizontal bar chart of one column, one bar per row that names an
 * organisation or agreement and has a number above zero (a total row, and a
 * MARAC that only took a transfer in, are left to the table). Numbers are
 * drawn beside the bars; the table under the chart holds the same numbers. */
static void chart(shub_buf_t *b, const shub_report_t *r, size_t si,
                  const shub_report_section_t *sec)
{
    const int bar_h = 22, gap = 6, label_w = 230, plot_w = 420;
    size_t rows[256], n = 0;
    double max = 0;
    for (size_t row = 0; row < sec->nrows && n < 256; row++) {
        if (!shub_report_link(r, si, row, (size_t)sec->chart_label))
            continue;
        const char *v = shub_report_cell(r, si, row, (size_t)sec->chart_value);
        double x = v ? strtod(v, NULL) : 0;
        if (x <= 0)
            continue; /* nothing to draw: the table under the chart still lists it */
        if (x > max)
            max = x;
        rows[n++] = row;
    }
    if (n == 0)
        return;
    const char *what = shub_report_column(r, si, (size_t)sec->chart_value, NULL);
    int height = (int)n * (bar_h + gap) + gap;
    put(b,
        "<svg id=\"chart-%s\" role=\"img\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d "
        "%d\" "
        "xmlns=\"http://www.w3.org/2000/svg\" aria-labelledby=\"chart-%s-title\">",
        sec->id, label_w + plot_w + 60, height, label_w + plot_w + 60, height, sec->id);
    put(b, "<title id=\"chart-%s-title\">", sec->id);
    esc(b, sec->title);
    shub_buf_puts(b, ": ");
    esc(b, what);
    shub_buf_puts(b, "</title>");
    for (size_t i = 0; i < n; i++) {
        const char *label = shub_report_cell(r, si, rows[i], (size_t)sec->chart_label);
        const char *v = shub_report_cell(r, si, rows[i], (size_t)sec->chart_value);
        double x = v ? strtod(v, NULL) : 0;
        int y = gap + (int)i * (bar_h + gap);
        int wbar = max > 0 ? (int)(x / max * plot_w + 0.5) : 0;
        put(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", label_w - 8,
            y + bar_h - 6);
        esc(b, label);
        put(b,
            "</text><rect class=\"bar\" x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" "
            "data-value=\"",
            label_w, y, wbar, bar_h);
        esc(b, v ? v : "0");
        shub_buf_puts(b, "\" data-label=\"");
        esc(b, label);
        shub_buf_puts(b, "\"><title>");
        esc(b, label);
        shub_buf_puts(b, ": ");
        esc(b, v ? v : "0");
        put(b, "</title></rect><text x=\"%d\" y=\"%d\">", label_w + wbar + 6,
            y + bar_h - 6);
        esc(b, v ? v : "0");
        shub_buf_puts(b, "</text>");
    }
    shub_buf_puts(b, "</svg>");
}

static void report_table(shub_buf_t *b, const shub_report_t *r, size_t si,
                         const shub_report_section_t *sec)
{
    if (sec->nrows == 0) {
        shub_buf_puts(b, "<p>None.</p>");
        return;
    }
    put(b, "<table id=\"table-%s\"><thead><tr>", sec->id);
    for (size_t c = 0; c < sec->ncols; c++) {
        shub_buf_puts(b, "<th scope=\"col\">");
        esc(b, shub_report_column(r, si, c, NULL));
        shub_buf_puts(b, "</th>");
    }
    shub_buf_puts(b, "</tr></thead><tbody>");
    for (size_t row = 0; row < sec->nrows; row++) {
        shub_buf_puts(b, "<tr>");
        for (size_t c = 0; c < sec->ncols; c++) {
            bool number = false;
            shub_report_column(r, si, c, &number);
            const char *t = shub_report_cell(r, si, row, c);
            const char *link = shub_report_link(r, si, row, c);
            shub_buf_puts(b, number ? "<td class=\"n\">" : "<td>");
            if (link && strncmp(link, "org:", 4) == 0)
                log_link(b, "org", link + 4, t);
            else if (link && strncmp(link, "agreement:", 10) == 0)
                log_link(b, "agreement", link + 10, t);
            else
                esc(b, t ? t : "-");
            shub_buf_puts(b, "</td>");
        }
        shub_buf_puts(b, "</tr>");
    }
    shub_buf_puts(b, "</tbody></table>");
}

static void page_report(shub_web_t *w, shub_buf_t *b, shub_http_response_t *resp)
{
    shub_report_opts_t o = {.q = {.now_ms = shub_now_ms()}, .orgs = w->orgs};
    shub_report_t *r = NULL;
    shub_err_t err;
    if (shub_report_build(w->store, &o, &r, &err) != 0) {
        error_page(b, resp, 503, err.msg);
        return;
    }
    head(b, shub_report_title(r), SHUB_WEB_REPORT);
    shub_buf_puts(b, "<p class=\"what\">");
    esc(b, shub_report_coverage(r));
    shub_buf_puts(b, "</p><nav class=\"pages\">");
    shub_report_section_t sec;
    for (size_t i = 0; shub_report_section(r, i, &sec); i++) {
        put(b, "<a href=\"#%s\">", sec.id);
        esc(b, sec.title);
        shub_buf_puts(b, "</a>");
    }
    shub_buf_puts(b, "</nav>");
    for (size_t i = 0; shub_report_section(r, i, &sec); i++) {
        put(b, "<section id=\"%s\"><h2>", sec.id);
        esc(b, sec.title);
        shub_buf_puts(b, "</h2><p class=\"what\">");
        esc(b, sec.what);
        shub_buf_puts(b, "</p>");
        if (sec.glossary) {
            shub_buf_puts(b, "<p class=\"terms\">Terms: ");
            esc(b, sec.glossary);
            shub_buf_puts(b, "</p>");
        }
        if (sec.chart_label >= 0 && sec.chart_value >= 0)
            chart(b, r, i, &sec);
        report_table(b, r, i, &sec);
        shub_buf_puts(b, "</section>");
    }
    foot(b);
    shub_report_destroy(&r);
}

/* ---- the audit log ------------------------------------------------------------- */

static void filter_field(shub_buf_t *b, const char *key, const char *label,
                         const char *value)
{
    put(b, "<label>%s <input name=\"%s\" value=\"", label, key);
    esc(b, value);
    shub_buf_puts(b, "\"></label>");
}

/* The page's own address with one argument changed (the paging links). */
static void self_link(shub_buf_t *b, const shub_http_request_t *req, const char *drop1,
                      const char *drop2, const char *key, int64_t value)
{
    shub_buf_puts(b, "/log?");
    for (size_t i = 0; i < req->n_args; i++) {
        const char *k = req->args[i].key;
        if (!*req->args[i].value || strcmp(k, drop1) == 0 || strcmp(k, drop2) == 0 ||
            strcmp(k, "order") == 0)
            continue;
        urlenc(b, k);
        shub_buf_puts(b, "=");
        urlenc(b, req->args[i].value);
        shub_buf_puts(b, "&amp;");
    }
    put(b, "%s=%lld", key, (long long)value);
}

static void page_log(shub_web_t *w, const shub_http_request_t *req,
                     const shub_web_route_t *rt, shub_buf_t *b,
                     shub_http_response_t *resp)
{
    static const struct {
        const char *key, *label;
    } fields[] = {
        {"org", "Organisation"},    {"sender", "From"},     {"recipient", "To"},
        {"agreement", "Agreement"}, {"type", "Event type"}, {"decision", "Decision"},
        {"reason", "Reason"},       {"since", "Since"},     {"until", "Until"},
    };
    shub_query_result_t *r = NULL;
    shub_err_t err;
    if (shub_query_log(w->store, &rt->filter, &r, &err) != 0) {
        error_page(b, resp, 503, err.msg);
        return;
    }
    head(b, "Audit log", SHUB_WEB_LOG);
    shub_buf_puts(b,
                  "<p class=\"what\">Every decision, delivery and notice the hub "
                  "recorded, newest first. Each row names who shared what with whom, "
                  "when, and under which agreement; never a value of what was shared.</p>"
                  "<form method=\"get\" action=\"/log\">");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        filter_field(b, fields[i].key, fields[i].label,
                     shub_http_arg(req, fields[i].key));
    shub_buf_puts(b, "<button type=\"submit\">Show</button></form>");
    size_t n = shub_query_row_count(r, "log");
    static const char *const cols[] = {"seq",        "at",        "action",    "event_id",
                                       "event_type", "sender",    "recipient", "decision",
                                       "reason",     "agreement", "version",   "flow"};
    static const char *const heads[] = {"Record", "Time (UTC)", "What",    "Event",
                                        "Type",   "From",       "To",      "Decision",
                                        "Reason", "Agreement",  "Version", "Flow"};
    if (n == 0) {
        shub_buf_puts(b, "<p>No records match.</p>");
    } else {
        shub_buf_puts(b, "<table id=\"log\"><thead><tr>");
        for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++)
            put(b, "<th scope=\"col\">%s</th>", heads[c]);
        shub_buf_puts(b, "</tr></thead><tbody>");
        for (size_t row = 0; row < n; row++) {
            shub_buf_puts(b, "<tr>");
            for (size_t c = 0; c < sizeof cols / sizeof cols[0]; c++) {
                const char *t = shub_query_cell(r, "log", row, cols[c]);
                shub_buf_puts(b, c == 0 || c == 10 ? "<td class=\"n\">" : "<td>");
                if (!t) {
                    shub_buf_puts(b, "-");
                } else if (strcmp(cols[c], "event_id") == 0) {
                    shub_buf_puts(b, "<a href=\"/explain/");
                    urlenc(b, t);
                    shub_buf_puts(b, "\">");
                    esc(b, t);
                    shub_buf_puts(b, "</a>");
                } else if (strcmp(cols[c], "sender") == 0 ||
                           strcmp(cols[c], "recipient") == 0) {
                    log_link(b, "org", t, org_name(w, t));
                } else if (strcmp(cols[c], "agreement") == 0) {
                    log_link(b, "agreement", t, t);
                } else {
                    esc(b, t);
                }
                shub_buf_puts(b, "</td>");
            }
            shub_buf_puts(b, "</tr>");
        }
        shub_buf_puts(b, "</tbody></table>");
    }
    int64_t cursor;
    shub_buf_puts(b, "<nav class=\"pages\">");
    if (shub_query_next(r, &cursor)) {
        bool oldest = rt->filter.oldest_first;
        shub_buf_puts(b, "<a id=\"next\" href=\"");
        self_link(b, req, "before", "after", oldest ? "after" : "before", cursor);
        put(b, "\">%s</a>", oldest ? "Newer records" : "Older records");
    }
    if (rt->filter.before_seq || rt->filter.after_seq)
        shub_buf_puts(b, "<a href=\"/log\">Newest records</a>");
    shub_buf_puts(b, "</nav>");
    foot(b);
    shub_query_result_destroy(&r);
}

/* ---- one share explained -------------------------------------------------------- */

static void vertical(shub_buf_t *b, const shub_query_result_t *r, const char *section,
                     size_t row, const char *const *keys, const char *const *labels,
                     size_t n, const shub_web_t *w)
{
    shub_buf_puts(b, "<table><tbody>");
    for (size_t i = 0; i < n; i++) {
        const char *t = shub_query_cell(r, section, row, keys[i]);
        put(b, "<tr><th scope=\"row\">%s</th><td>", labels[i]);
        if (t && (strcmp(keys[i], "sender") == 0 || strcmp(keys[i], "recipient") == 0))
            log_link(b, "org", t, org_name(w, t));
        else if (t && strcmp(keys[i], "reply_to") == 0) {
            shub_buf_puts(b, "<a href=\"/explain/");
            urlenc(b, t);
            shub_buf_puts(b, "\">");
            esc(b, t);
            shub_buf_puts(b, "</a>");
        } else
            esc(b, t ? t : "-");
        shub_buf_puts(b, "</td></tr>");
    }
    shub_buf_puts(b, "</tbody></table>");
}

static void page_explain(shub_web_t *w, const shub_web_route_t *rt, shub_buf_t *b,
                         shub_http_response_t *resp)
{
    static const char *const ev_keys[] = {
        "event_id", "event_type",  "sender",  "received_at", "occurred", "reply_to",
        "purpose",  "legal_basis", "consent", "override",    "area",     "recipients"};
    static const char *const ev_labels[] = {"Event",
                                            "Type",
                                            "From",
                                            "Received by the hub",
                                            "Happened (as the sender says)",
                                            "Answers",
                                            "Purpose",
                                            "Legal basis",
                                            "Consent",
                                            "Consent overridden because",
                                            "Area",
                                            "Recipients decided"};
    static const char *const rc_keys[] = {
        "recipient",     "decision",        "agreement",   "version",
        "flow",          "reason",          "explanation", "legal_basis",
        "fields_shared", "fields_stripped", "decided_at",  "acknowledged_at",
        "finished_at",   "finished_why",    "queued_at"};
    static const char *const rc_labels[] = {
        "To",      "Decision",     "Agreement",   "Version",          "Flow",
        "Reason",  "Why",          "Legal basis", "Fields shared",    "Fields withheld",
        "Decided", "Acknowledged", "Given up",    "Given up because", "Waiting since"};
    shub_query_result_t *r = NULL;
    shub_err_t err;
    int rc = shub_query_explain(w->store, &rt->id, &r, &err);
    if (rc) {
        error_page(b, resp, rc == SHUB_ENOTFOUND ? 404 : 503, err.msg);
        return;
    }
    head(b, "One share explained", 0);
    shub_buf_puts(b,
                  "<p class=\"what\">What the log holds about one event: who sent it and "
                  "why it could be shared, then each organisation it was addressed to, "
                  "the decision and the agreement behind it, and what became of the "
                  "copy.</p><h2>The event</h2>");
    vertical(b, r, "event", 0, ev_keys, ev_labels, sizeof ev_keys / sizeof ev_keys[0], w);
    for (size_t i = 0; i < shub_query_row_count(r, "recipients"); i++) {
        shub_buf_puts(b, "<h2>To ");
        esc(b, org_name(w, shub_query_cell(r, "recipients", i, "recipient")));
        shub_buf_puts(b, "</h2>");
        vertical(b, r, "recipients", i, rc_keys, rc_labels,
                 sizeof rc_keys / sizeof rc_keys[0], w);
    }
    foot(b);
    shub_query_result_destroy(&r);
}

/* ---- agreements ------------------------------------------------------------------- */

/* The query module's report tables (or one of them), or an error page. */
static shub_query_result_t *figures(shub_web_t *w, const char *section, shub_buf_t *b,
                                    shub_http_response_t *resp)
{
    shub_query_report_opts_t o = {.now_ms = shub_now_ms(), .section = section};
    shub_query_result_t *q = NULL;
    shub_err_t err;
    if (shub_query_report(w->store, &o, &q, &err) != 0)
        error_page(b, resp, 503, err.msg);
    return q;
}

static void page_agreements(shub_web_t *w, shub_buf_t *b, shub_http_response_t *resp)
{
    shub_query_result_t *q = figures(w, NULL, b, resp);
    if (!q)
        return;
    head(b, "Agreements", SHUB_WEB_AGREEMENTS);
    shub_buf_puts(
        b, "<p class=\"what\">Every agreement version the hub has loaded, newest "
           "first, with its dates, and the flows the log has seen used under each "
           "version with the shares they allowed and refused. A review date in the "
           "past is marked.</p>");
    int64_t now = shub_now_ms();
    size_t n = shub_query_row_count(q, "agreement_versions");
    const char *current = NULL;
    for (size_t i = 0; i < n; i++) {
        const char *id = shub_query_cell(q, "agreement_versions", i, "agreement");
        const char *version = shub_query_cell(q, "agreement_versions", i, "version");
        if (!id || !version)
            continue;
        if (!current || strcmp(current, id) != 0) {
            if (current)
                shub_buf_puts(b, "</tbody></table></section>");
            current = id;
            shub_buf_puts(b, "<section id=\"agreement-");
            esc(b, id);
            shub_buf_puts(b, "\"><h2>");
            esc(b, shub_query_cell(q, "agreement_versions", i, "title"));
            shub_buf_puts(b, "</h2><p class=\"what\">");
            log_link(b, "agreement", id, id);
            shub_buf_puts(b, "</p><table><thead><tr><th>Version</th><th>Status</th>"
                             "<th>Valid from</th><th>Valid until</th><th>Review date</th>"
                             "<th>First loaded</th><th>Flows used (shared / refused)</th>"
                             "</tr></thead><tbody>");
        }
        const char *review = shub_query_cell(q, "agreement_versions", i, "review");
        const char *newest = shub_query_cell(q, "agreement_versions", i, "newest");
        int64_t review_ms = 0;
        bool overdue = review && newest && strcmp(newest, "1") == 0 &&
                       shub_time_parse(review, &review_ms, NULL) == 0 && review_ms < now;
        shub_buf_puts(b, "<tr><td class=\"n\">");
        esc(b, version);
        shub_buf_puts(b, "</td><td>");
        esc(b, shub_query_cell(q, "agreement_versions", i, "status"));
        static const char *const dates[] = {"valid_from", "valid_until", "review",
                                            "loaded_at"};
        for (int d = 0; d < 4; d++) {
            const char *t = shub_query_cell(q, "agreement_versions", i, dates[d]);
            shub_buf_puts(b, d == 2 && overdue ? "</td><td class=\"bad\">" : "</td><td>");
            esc(b, t ? t : "-");
            if (d == 2 && overdue)
                shub_buf_puts(b, " (review overdue)");
        }
        shub_buf_puts(b, "</td><td>");
        bool any = false;
        for (size_t f = 0; f < shub_query_row_count(q, "flows_used"); f++) {
            const char *fa = shub_query_cell(q, "flows_used", f, "agreement");
            const char *fv = shub_query_cell(q, "flows_used", f, "version");
            if (!fa || !fv || strcmp(fa, id) != 0 || strcmp(fv, version) != 0)
                continue;
            shub_buf_puts(b, any ? "<br>" : "");
            esc(b, shub_query_cell(q, "flows_used", f, "flow"));
            shub_buf_puts(b, ": ");
            esc(b, shub_query_cell(q, "flows_used", f, "event_type"));
            shub_buf_puts(b, " (");
            esc(b, shub_query_cell(q, "flows_used", f, "allowed"));
            shub_buf_puts(b, " / ");
            esc(b, shub_query_cell(q, "flows_used", f, "denied"));
            shub_buf_puts(b, ")");
            any = true;
        }
        shub_buf_puts(b, any ? "</td></tr>" : "none yet</td></tr>");
    }
    if (current)
        shub_buf_puts(b, "</tbody></table></section>");
    else
        shub_buf_puts(b, "<p>No agreement has been loaded yet.</p>");
    foot(b);
    shub_query_result_destroy(&q);
}

/* ---- verification ----------------------------------------------------------------- */

/* One table cell of text from the database, escaped. */
static void td(shub_buf_t *b, const char *text, bool number)
{
    shub_buf_puts(b, number ? "<td class=\"n\">" : "<td>");
    esc(b, text ? text : "-");
    shub_buf_puts(b, "</td>");
}

static void page_verify(shub_web_t *w, shub_buf_t *b, shub_http_response_t *resp)
{
    shub_verify_result_t v;
    shub_verify_opts_t vo = {.expected_key = w->has_key ? w->key : NULL,
                             .now_ms = shub_now_ms()};
    shub_err_t err;
    if (shub_store_verify(w->db, &vo, &v, &err) != 0) {
        error_page(b, resp, 503, err.msg);
        return;
    }
    shub_query_result_t *q = figures(w, "witnesses", b, resp);
    if (!q)
        return;
    head(b, "Verification", SHUB_WEB_VERIFY);
    shub_buf_puts(b,
                  "<p class=\"what\">Each record of the audit log carries a hash of the "
                  "record before it, and the hub signs the newest hash at intervals (a "
                  "checkpoint). Checking walks every record and every signature, so an "
                  "edited, deleted, reordered or missing record is found. Partners' "
                  "systems countersign checkpoints (witnesses), so the hub alone cannot "
                  "rewrite what they hold.</p>");
    if (v.ok)
        put(b,
            "<p id=\"status\" class=\"ok\">Intact: %lld records and %lld checkpoints "
            "checked.</p>",
            (long long)v.rows, (long long)v.checkpoints);
    else {
        put(b, "<p id=\"status\" class=\"bad\">Not intact at record %lld: ",
            (long long)v.bad_seq);
        esc(b, v.problem);
        shub_buf_puts(b, "</p>");
    }
    if (!w->has_key)
        shub_buf_puts(b,
                      "<p class=\"terms\">Signatures were checked against the key each "
                      "checkpoint names; start the pages with --key CHECKPOINT.pub to "
                      "check them against the hub's own key.</p>");
    shub_buf_puts(b, "<h2>Newest checkpoint</h2><table><tbody>");
    const char *keys[] = {"checkpoint", "upto_seq", "checkpoint_at", "head_hash",
                          "rows_left_out"};
    const char *labels[] = {"Checkpoint", "Covers records up to", "Signed at",
                            "Hash of the log at that record", "Records written since"};
    for (int i = 0; i < 5; i++) {
        const char *t = shub_query_cell(q, "checkpoint", 0, keys[i]);
        put(b, "<tr><th scope=\"row\">%s</th><td>", labels[i]);
        esc(b, t ? t : "none yet");
        shub_buf_puts(b, "</td></tr>");
    }
    shub_buf_puts(b, "</tbody></table><h2>Witnesses</h2>");
    size_t n = shub_query_row_count(q, "witnesses");
    if (n == 0)
        shub_buf_puts(b, "<p>No partner has countersigned a checkpoint yet.</p>");
    else {
        shub_buf_puts(b, "<table id=\"witnesses\"><thead><tr><th>Organisation</th>"
                         "<th>Checkpoint up to record</th><th>Signed at</th>"
                         "<th>Countersignature received</th></tr></thead><tbody>");
        for (size_t i = 0; i < n; i++) {
            shub_buf_puts(b, "<tr>");
            td(b, org_name(w, shub_query_cell(q, "witnesses", i, "org")), false);
            td(b, shub_query_cell(q, "witnesses", i, "upto_seq"), true);
            td(b, shub_query_cell(q, "witnesses", i, "checkpoint_at"), false);
            td(b, shub_query_cell(q, "witnesses", i, "received_at"), false);
            shub_buf_puts(b, "</tr>");
        }
        shub_buf_puts(b, "</tbody></table>");
    }
    foot(b);
    shub_query_result_destroy(&q);
}

/* ---- lifecycle and the surface ------------------------------------------------------
 */

int shub_web_new(const shub_web_opts_t *o, shub_web_t **out, shub_err_t *err)
{
    if (!o || !o->db || !out)
        return shub_err_set(err, SHUB_EINVAL, "web: missing argument");
    shub_web_t *w = shub_calloc(1, sizeof *w);
    if (!w || !(w->db = shub_strdup(o->db))) {
        shub_free(w);
        return shub_err_set(err, SHUB_ENOMEM, "web: out of memory");
    }
    w->orgs = o->orgs;
    if (o->checkpoint_key) {
        memcpy(w->key, o->checkpoint_key, 32);
        w->has_key = true;
    }
    shub_store_opts_t so = {.readonly = true};
    int rc = shub_store_open(o->db, &so, &w->store, err);
    if (rc) {
        shub_web_destroy(&w);
        return rc;
    }
    *out = w;
    return 0;
}

void shub_web_destroy(shub_web_t **w_p)
{
    shub_web_t *w = w_p ? *w_p : NULL;
    if (!w)
        return;
    shub_store_close(&w->store);
    shub_free(w->db);
    shub_free(w);
    *w_p = NULL;
}

void shub_web_serve(const shub_http_request_t *req, shub_http_response_t *resp, void *ctx)
{
    shub_web_t *w = ctx;
    shub_web_route_t rt;
    shub_buf_t *b = &resp->body;
    shub_web_route(req, &rt);
    if (rt.status != 200) {
        error_page(b, resp, rt.status, rt.problem);
        return;
    }
    switch (rt.page) {
    case SHUB_WEB_STYLE:
        resp->type = "text/css; charset=utf-8";
        shub_buf_puts(b, style_css);
        break;
    case SHUB_WEB_ICON:
        resp->type = "image/svg+xml";
        shub_buf_puts(b, icon_svg);
        break;
    case SHUB_WEB_LOG:
        page_log(w, req, &rt, b, resp);
        break;
    case SHUB_WEB_EXPLAIN:
        page_explain(w, &rt, b, resp);
        break;
    case SHUB_WEB_AGREEMENTS:
        page_agreements(w, b, resp);
        break;
    case SHUB_WEB_VERIFY:
        page_verify(w, b, resp);
        break;
    default:
        page_report(w, b, resp);
        break;
    }
}
