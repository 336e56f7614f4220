/*
 * fuzz_web_request: the libFuzzer target for what the audit pages do with a
 * request (broker/web.c), and (linked with replay.c) the ordinary test that
 * replays its corpus.
 *
 * An input is a request as libmicrohttpd hands it over, decoded: its first
 * line is the path, each further line one query argument, `key=value` (a
 * line without '=' is a key with an empty value). It is routed, and a log or
 * explain page is rendered from a small store made once per process (a few
 * audit rows with text chosen to need escaping, and a checkpoint). The rules
 * checked: routing answers 200, 400 or 404, with a reason unless 200; a page
 * is a whole HTML document; no input puts a <script, an element of its own
 * or a control character into a page. Any other outcome is a bug, and the
 * harness aborts so that libFuzzer keeps the input.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "sharehub/http.h"
#include "sharehub/store.h"
#include "sharehub/web.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_LINE 1024

static void bug(const char *what)
{
    fprintf(stderr, "fuzz_web_request: %s\n", what);
    abort();
}

static shub_web_t *web;
static char db_path[64];

static void remove_db(void)
{
    char p[80];
    shub_web_destroy(&web);
    unlink(db_path);
    snprintf(p, sizeof p, "%s-wal", db_path);
    unlink(p);
    snprintf(p, sizeof p, "%s-shm", db_path);
    unlink(p);
    snprintf(p, sizeof p, "%s.lock", db_path);
    unlink(p);
}

/* A store with rows whose names need escaping, opened read-only for the
 * pages. */
static void make_store(void)
{
    uint8_t pk[32], sk[64], subject[32];
    shub_store_t *s = NULL;
    shub_err_t err;
    if (sodium_init() < 0)
        bug("sodium");
    crypto_sign_keypair(pk, sk);
    randombytes_buf(subject, sizeof subject);
    snprintf(db_path, sizeof db_path, "/tmp/shub-fuzz-web-%ld.db", (long)getpid());
    unlink(db_path);
    shub_store_opts_t o = {.subject_key = subject, .sign_secret = sk};
    if (shub_store_open(db_path, &o, &s, &err) || shub_store_begin(s, &err))
        bug(err.msg);
    static const char *const senders[] = {"wmp", "marac-coventry", "x<script>y"};
    for (int i = 0; i < 6; i++) {
        shub_audit_row_t row = {
            .at_ms = 1780000000000 + i * 1000,
            .action = "decide",
            .decision = i % 3 ? "allow" : "deny",
            .event_type = "marac.referral",
            .sender = senders[i % 3],
            .recipient = "marac-coventry",
            .reason = i % 3 ? NULL : "no-agreement",
            .explanation = "a \"quoted\" <b>explanation</b> & more",
            .agreement = "wm-marac",
            .agreement_version = 1,
            .flow = "referral",
            .subject_ref = "person-1",
        };
        memset(row.event_id.bytes, i + 1, SHUB_ID_SIZE);
        if (shub_store_audit_append(s, &row, &err))
            bug(err.msg);
    }
    if (shub_store_checkpoint(s, 1780000010000, true, NULL, NULL, &err) ||
        shub_store_commit(s, &err))
        bug(err.msg);
    shub_store_close(&s);
    shub_web_opts_t wo = {.db = db_path};
    if (shub_web_new(&wo, &web, &err))
        bug(err.msg);
    atexit(remove_db);
}

/* The page holds nothing the input could have turned into markup. */
static void check_page(const shub_buf_t *body, const char *type)
{
    const char *t = shub_buf_text((shub_buf_t *)body);
    if (!t)
        bug("a page without text");
    if (strncmp(type, "text/html", 9) != 0)
        return;
    if (strncmp(t, "<!DOCTYPE html>", 15) != 0 || !strstr(t, "</html>\n"))
        bug("a page that is not a whole document");
    for (const char *p = t; *p; p++) {
        if ((unsigned char)*p < 0x20 && *p != '\n')
            bug("a control character in a page");
        if (*p == '<' &&
            (strncasecmp(p, "<script", 7) == 0 || strncasecmp(p, "<img", 4) == 0 ||
             strncasecmp(p, "<iframe", 7) == 0))
            bug("an element the pages never make");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char lines[SHUB_HTTP_MAX_ARGS + 1][MAX_LINE];
    shub_http_arg_t args[SHUB_HTTP_MAX_ARGS];
    size_t n = 0, at = 0;
    if (!web)
        make_store();
    /* split into at most MAX_ARGS + 1 lines, each cut at MAX_LINE - 1 bytes and
     * at its first NUL (libmicrohttpd hands over C strings) */
    for (size_t line = 0; line <= SHUB_HTTP_MAX_ARGS && at <= size; line++) {
        size_t len = 0;
        while (at < size && data[at] != '\n') {
            if (len < MAX_LINE - 1)
                lines[line][len++] = (char)data[at];
            at++;
        }
        lines[line][len] = '\0';
        at++;
        n = line + 1;
    }
    for (size_t i = 1; i < n; i++) {
        char *eq = strchr(lines[i], '=');
        if (eq)
            *eq = '\0';
        args[i - 1] = (shub_http_arg_t){lines[i], eq ? eq + 1 : ""};
    }
    shub_http_request_t req = {
        .method = "GET", .path = lines[0], .args = args, .n_args = n ? n - 1 : 0};
    shub_web_route_t rt;
    shub_web_route(&req, &rt);
    if (rt.status != 200 && rt.status != 400 && rt.status != 404)
        bug("a status routing never gives");
    if (rt.status != 200 && rt.problem[0] == '\0')
        bug("a refusal without a reason");
    /* The pages whose content the arguments choose; the others take none. */
    if (rt.status != 200 || rt.page == SHUB_WEB_LOG || rt.page == SHUB_WEB_EXPLAIN) {
        shub_http_response_t resp = {.status = 200, .type = "text/html; charset=utf-8"};
        shub_web_serve(&req, &resp, web);
        if (rt.status != 200 && resp.status != rt.status)
            bug("an error page with another status");
        check_page(&resp.body, resp.type);
        shub_buf_free(&resp.body);
    }
    return 0;
}
