/*
 * api: the local API's request handler (include/sharehub/api.h). Read
 * top-down: answers and errors, the token, the request target, the agent's
 * state and long polls, one function per resource, then the router.
 *
 * Everything a request carries is distrusted: the target is parsed here,
 * byte by byte, with its length capped; query parameters are a fixed set
 * of integers per resource; the body goes through the very parser `submit`
 * uses (json.h), whose errors name the field. No input reaches an assert,
 * and a failure of the store or of memory is a 503, never a crash. Logs say
 * method, resource, status and event id: never a payload value (a
 * validation message may quote one, so it goes to the client only).
 *
 * Threads: the server calls shub_api_handle from one thread per
 * connection. The store connection is one, used under db_lock for one
 * short statement or transaction at a time; jansson objects are per call.
 * A long poll reads, lets go of the store, and waits on `changed` for the
 * agent's observer (or the API's own commits) to bump `generation`, at
 * most a second at a time so that changes made by other processes (a
 * `submit`) are seen too.
 */
#include "sharehub/api.h"

#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/file.h"
#include "sharehub/json.h"
#include "sharehub/log.h"
#include "sharehub/time.h"
#include "sharehub/version.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#define WAIT_SLICE_MS 1000 /* a long poll looks again at least this often */
#define MAX_PARAMS    8    /* query parameters in one request */

struct shub_api {
    shub_agentdb_t *db;
    pthread_mutex_t db_lock; /* one statement or transaction at a time */
    const shub_agent_config_t *cfg; /* borrowed from the caller */
    uint8_t token_hash[crypto_generichash_BYTES];
    bool have_token;
    int max_wait_ms;
    void (*wake)(void *ctx);
    void *wake_ctx;

    pthread_mutex_t lock; /* what follows */
    pthread_cond_t changed;
    uint64_t generation; /* bumped by every change a long poll may wait for */
    int waiters;
    bool stopping;
    bool have_state; /* an agent has told its state */
    shub_agent_state_t state;
};

/* ---- answers ------------------------------------------------------------ */

static void answer_text(shub_api_response_t *resp, int status, char *text)
{
    resp->status = status;
    resp->body = text;
    resp->body_len = text ? strlen(text) : 0;
}

/* The answer when even an error cannot be built: a constant, copied. */
static void answer_no_memory(shub_api_response_t *resp)
{
    static const char text[] = "{\"error\":{\"code\":\"unavailable\",\"message\":\"out of "
                               "memory\"}}\n";
    char *copy = shub_malloc(sizeof text);
    if (copy)
        memcpy(copy, text, sizeof text);
    answer_text(resp, 503, copy);
    resp->retry_after = 1;
}

/* Sends o (consumed) with status, as compact JSON and a newline. */
static void answer_json(shub_api_response_t *resp, int status, json_t *o)
{
    char *text = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(o);
    if (!text) {
        answer_no_memory(resp);
        return;
    }
    /* jansson allocates through shub_malloc (json.c), so the text is ours. */
    size_t n = strlen(text);
    char *body = shub_realloc(text, n + 2);
    if (!body) {
        shub_free(text);
        answer_no_memory(resp);
        return;
    }
    body[n] = '\n';
    body[n + 1] = '\0';
    answer_text(resp, status, body);
}

static void put(json_t *o, const char *key, json_t *v, bool *ok);

/* Sends o (consumed) if it was built whole (ok), else says out of memory. */
static void answer_built(shub_api_response_t *resp, int status, json_t *o, bool ok)
{
    if (!ok) {
        json_decref(o);
        o = NULL;
    }
    answer_json(resp, status, o);
}

/* s as a JSON string. An error message may end in a character cut in two
 * (messages are capped), which JSON cannot carry: bytes beyond ASCII are
 * then written as '?'. */
static json_t *text_json(const char *s)
{
    json_t *j = json_string(s);
    if (j || !s)
        return j;
    char *copy = shub_strdup(s);
    for (char *p = copy; p && *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = copy ? json_string(copy) : NULL;
    shub_free(copy);
    return j;
}

static void answer_error(shub_api_response_t *resp, int status, const char *code,
                         const char *path, const char *message)
{
    json_t *o = json_object(), *e = json_object();
    bool ok = true;
    put(e, "code", json_string(code), &ok);
    if (path && *path)
        put(e, "path", text_json(path), &ok);
    put(e, "message", text_json(message), &ok);
    put(o, "error", e, &ok);
    answer_built(resp, status, o, ok);
    if (resp->status == 503 && !resp->retry_after)
        resp->retry_after = 1;
}

/* The store or memory failed: the client may try again. */
static void answer_unavailable(shub_api_response_t *resp, const shub_err_t *err)
{
    if (err && err->code == SHUB_ENOMEM) {
        answer_no_memory(resp);
        return;
    }
    shub_error("api: store: %s", err ? err->msg : "failed");
    answer_error(resp, 503, "unavailable", NULL,
                 "the agent's store is unavailable; try again");
}

void shub_api_response_free(shub_api_response_t *resp)
{
    if (!resp)
        return;
    shub_free(resp->body);
    resp->body = NULL;
    resp->body_len = 0;
}

/* ---- the token ----------------------------------------------------------- */

int shub_api_token_load(const char *path, char **token_p, shub_err_t *err)
{
    /* The mode first: a token others may read is refused before it is read. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0177) != 0)
        return shub_err_set(err, SHUB_ECONFIG,
                            "the API token '%s' has mode %04o: others may read it; make it "
                            "0600 (chmod 600)",
                            path, (unsigned)(st.st_mode & 07777));
    char *buf = NULL;
    size_t n = 0;
    int rc = shub_file_read(path, SHUB_API_TOKEN_MAX + 64, &buf, &n, err);
    if (rc)
        return rc;
    while (n > 0 && strchr(" \t\r\n", buf[n - 1]))
        n--;
    buf[n] = '\0';
    if (n < SHUB_API_TOKEN_MIN || n > SHUB_API_TOKEN_MAX)
        rc = shub_err_set(err, SHUB_ECONFIG,
                          "the API token in '%s' has %zu bytes; it must have %d to %d", path,
                          n, SHUB_API_TOKEN_MIN, SHUB_API_TOKEN_MAX);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (buf[i] < 0x21 || buf[i] > 0x7e)
            rc = shub_err_set(err, SHUB_ECONFIG,
                              "the API token in '%s' has a byte that is not printable ASCII "
                              "at %zu",
                              path, i);
    if (rc) {
        sodium_memzero(buf, n);
        shub_free(buf);
        return rc;
    }
    *token_p = buf;
    return 0;
}

static void hash_token(const char *text, size_t len, uint8_t out[crypto_generichash_BYTES])
{
    crypto_generichash(out, crypto_generichash_BYTES, (const uint8_t *)text, len, NULL, 0);
}

/* "Bearer TOKEN", compared through hashes so the time taken says nothing
 * about the token's length or its first differing byte. */
static bool authorized(const shub_api_t *api, const char *header)
{
    if (!api->have_token)
        return true;
    static const char scheme[] = "Bearer ";
    if (!header || strncasecmp(header, scheme, sizeof scheme - 1) != 0)
        return false;
    const char *t = header + sizeof scheme - 1;
    while (*t == ' ')
        t++;
    size_t len = strnlen(t, SHUB_API_TOKEN_MAX + 1);
    while (len > 0 && t[len - 1] == ' ')
        len--;
    if (len == 0 || len > SHUB_API_TOKEN_MAX)
        return false;
    uint8_t h[crypto_generichash_BYTES];
    hash_token(t, len, h);
    return sodium_memcmp(h, api->token_hash, sizeof h) == 0;
}

/* ---- the request target ------------------------------------------------- */

typedef struct {
    char path[SHUB_API_MAX_TARGET + 1];
    struct {
        char name[16];
        const char *value; /* into query */
    } params[MAX_PARAMS];
    size_t n_params;
    char query[SHUB_API_MAX_TARGET + 1];
} target_t;

/* Splits "path?a=1&b=2" into path and parameters. False (with an answer)
 * for a target that is not one this API could have made. */
static bool parse_target(const char *text, target_t *t, shub_api_response_t *resp)
{
    size_t len = text ? strnlen(text, SHUB_API_MAX_TARGET + 1) : 0;
    if (len == 0 || len > SHUB_API_MAX_TARGET || text[0] != '/') {
        answer_error(resp, 400, "bad-target", NULL,
                     "the request target must be a path of at most 1024 bytes");
        return false;
    }
    const char *q = memchr(text, '?', len);
    size_t plen = q ? (size_t)(q - text) : len;
    memcpy(t->path, text, plen);
    t->path[plen] = '\0';
    t->n_params = 0;
    if (!q)
        return true;
    size_t qlen = len - plen - 1;
    memcpy(t->query, q + 1, qlen);
    t->query[qlen] = '\0';
    char *save = NULL;
    for (char *p = strtok_r(t->query, "&", &save); p; p = strtok_r(NULL, "&", &save)) {
        char *eq = strchr(p, '=');
        size_t nlen = eq ? (size_t)(eq - p) : strlen(p);
        if (t->n_params == MAX_PARAMS || nlen == 0 || nlen >= sizeof t->params[0].name) {
            answer_error(resp, 400, "bad-parameter", NULL,
                         "too many query parameters, or one without a known name");
            return false;
        }
        memcpy(t->params[t->n_params].name, p, nlen);
        t->params[t->n_params].name[nlen] = '\0';
        t->params[t->n_params].value = eq ? eq + 1 : "";
        t->n_params++;
    }
    return true;
}

/* Reads the integer parameters a resource takes: names[i] into values[i]
 * (left as they are when absent), each within [min[i], max[i]]. Any other
 * parameter, a repeat, or a value that is not a plain decimal integer in
 * range is a 400 naming it. */
static bool read_params(const target_t *t, const char *const *names, const int64_t *min,
                        const int64_t *max, int64_t *values, size_t n,
                        shub_api_response_t *resp)
{
    bool seen[MAX_PARAMS] = {false};
    for (size_t i = 0; i < t->n_params; i++) {
        const char *name = t->params[i].name, *v = t->params[i].value;
        size_t k = 0;
        while (k < n && strcmp(names[k], name) != 0)
            k++;
        char msg[160];
        if (k == n) {
            answer_error(resp, 400, "bad-parameter", name,
                         "this resource takes no such parameter");
            return false;
        }
        if (seen[k]) {
            answer_error(resp, 400, "bad-parameter", name, "parameter given twice");
            return false;
        }
        seen[k] = true;
        size_t digits = strspn(v, "0123456789");
        int64_t x = 0;
        bool ok = digits > 0 && digits <= 18 && v[digits] == '\0';
        for (size_t d = 0; ok && d < digits; d++)
            x = x * 10 + (v[d] - '0');
        if (!ok || x < min[k] || x > max[k]) {
            snprintf(msg, sizeof msg, "expected an integer from %lld to %lld",
                     (long long)min[k], (long long)max[k]);
            answer_error(resp, 400, "bad-parameter", name, msg);
            return false;
        }
        values[k] = x;
    }
    return true;
}

/* The id in "/v1/<prefix><id><suffix>"; false if the path is not of that
 * shape (then *matched is false) or the id is not one (an answer). */
static bool path_id(const char *path, const char *prefix, const char *suffix,
                    shub_id_t *id, bool *matched, shub_api_response_t *resp)
{
    size_t pl = strlen(prefix), sl = strlen(suffix), len = strlen(path);
    *matched = len > pl + sl && strncmp(path, prefix, pl) == 0 &&
               strcmp(path + len - sl, suffix) == 0 &&
               memchr(path + pl, '/', len - pl - sl) == NULL;
    if (!*matched)
        return false;
    char text[SHUB_ID_TEXT];
    size_t n = len - pl - sl;
    if (n != SHUB_ID_TEXT - 1) {
        answer_error(resp, 400, "bad-value", "id", "not an event id (8-4-4-4-12 hex digits)");
        return false;
    }
    memcpy(text, path + pl, n);
    text[n] = '\0';
    if (shub_id_parse(text, id) != 0) {
        answer_error(resp, 400, "bad-value", "id", "not an event id (8-4-4-4-12 hex digits)");
        return false;
    }
    return true;
}

/* ---- state and long polls ----------------------------------------------- */

static uint64_t generation(shub_api_t *api)
{
    pthread_mutex_lock(&api->lock);
    uint64_t g = api->generation;
    pthread_mutex_unlock(&api->lock);
    return g;
}

static void bump(shub_api_t *api)
{
    pthread_mutex_lock(&api->lock);
    api->generation++;
    pthread_cond_broadcast(&api->changed);
    pthread_mutex_unlock(&api->lock);
}

void shub_api_observe(void *ctx, const shub_agent_state_t *state)
{
    shub_api_t *api = ctx;
    pthread_mutex_lock(&api->lock);
    if (state) {
        api->state = *state;
        api->have_state = true;
    }
    api->generation++;
    pthread_cond_broadcast(&api->changed);
    pthread_mutex_unlock(&api->lock);
}

void shub_api_stop(shub_api_t *api)
{
    if (!api)
        return;
    pthread_mutex_lock(&api->lock);
    api->stopping = true;
    pthread_cond_broadcast(&api->changed);
    pthread_mutex_unlock(&api->lock);
}

static int64_t mono_ms(void)
{
    return shub_mono_us() / 1000;
}

/* A long poll's turn: the query found nothing, so wait for a change after
 * `seen` (or a slice, or the deadline). False when the poll is over: the
 * deadline passed, or the API is stopping. */
static bool wait_change(shub_api_t *api, uint64_t seen, int64_t deadline)
{
    int64_t now = mono_ms();
    if (now >= deadline)
        return false;
    int64_t until = deadline - now > WAIT_SLICE_MS ? now + WAIT_SLICE_MS : deadline;
    struct timespec ts = {.tv_sec = until / 1000, .tv_nsec = (until % 1000) * 1000000L};
    pthread_mutex_lock(&api->lock);
    while (!api->stopping && api->generation == seen &&
           pthread_cond_timedwait(&api->changed, &api->lock, &ts) != ETIMEDOUT)
        ;
    bool go_on = !api->stopping;
    pthread_mutex_unlock(&api->lock);
    return go_on;
}

/* Takes a waiter's place for a long poll of wait_s seconds; false (with a
 * 503) when all places are taken. *deadline is when the poll ends. */
static bool begin_wait(shub_api_t *api, int64_t wait_s, int64_t *deadline,
                       shub_api_response_t *resp)
{
    int64_t ms = wait_s * 1000;
    if (api->max_wait_ms < 0)
        ms = 0;
    else if (ms > api->max_wait_ms)
        ms = api->max_wait_ms;
    *deadline = mono_ms() + ms;
    if (ms == 0)
        return true;
    pthread_mutex_lock(&api->lock);
    bool ok = api->waiters < SHUB_API_MAX_WAITERS && !api->stopping;
    if (ok)
        api->waiters++;
    pthread_mutex_unlock(&api->lock);
    if (!ok) {
        answer_error(resp, 503, "busy", NULL,
                     "too many requests are waiting for changes; try again");
        return false;
    }
    return true;
}

static void end_wait(shub_api_t *api, int64_t wait_s)
{
    if (wait_s == 0 || api->max_wait_ms < 0)
        return;
    pthread_mutex_lock(&api->lock);
    api->waiters--;
    pthread_mutex_unlock(&api->lock);
}

/* ---- JSON of the store's rows ------------------------------------------ */

static json_t *time_json(int64_t ms)
{
    char t[SHUB_TIME_TEXT];
    return ms ? json_string(shub_time_format(ms, t)) : json_null();
}

static json_t *id_json(const shub_id_t *id)
{
    char t[SHUB_ID_TEXT];
    shub_id_format(id, t);
    return json_string(t);
}

/* Sets key to v, which is consumed whatever happens (jansson's _new calls
 * take the reference even when they fail); a failure is noted in *ok. */
static void put(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (!v || !o) {
        json_decref(v);
        *ok = false;
    } else if (json_object_set_new(o, key, v) != 0) {
        *ok = false;
    }
}

/* Appends o to list if all went well (*ok); else drops it. False on failure. */
static bool append(json_t *list, json_t *o, bool ok)
{
    if (!ok) {
        json_decref(o);
        return false;
    }
    return json_array_append_new(list, o) == 0;
}

static void put_text(json_t *o, const char *key, const char *s, bool *ok)
{
    if (s)
        put(o, key, json_string(s), ok);
}

/* "marac@coventry, @walsall" (the stored list) as an array. */
static json_t *selectors_json(const char *joined)
{
    json_t *a = json_array();
    const char *p = joined;
    while (a && p && *p) {
        const char *end = strstr(p, ", ");
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (json_array_append_new(a, json_stringn(p, n)) != 0) {
            json_decref(a);
            return NULL;
        }
        p = end ? end + 2 : NULL;
    }
    return a;
}

static bool final_outcome(shub_outcome_t o)
{
    return o == SHUB_OUTCOME_ACKNOWLEDGED || o == SHUB_OUTCOME_DENIED ||
           o == SHUB_OUTCOME_DEAD;
}

typedef struct {
    json_t *list;
    bool all_final;
    bool ok;
} outcomes_ctx_t;

static int on_outcome(const shub_outcome_row_t *r, void *ctx)
{
    outcomes_ctx_t *oc = ctx;
    json_t *o = json_object();
    bool ok = o != NULL;
    put_text(o, "to", r->recipient, &ok);
    put_text(o, "outcome", shub_outcome_name(r->outcome), &ok);
    put_text(o, "reason", r->reason, &ok);
    put_text(o, "detail", r->detail, &ok);
    put_text(o, "agreement", r->agreement, &ok);
    if (r->agreement)
        put(o, "version", json_integer(r->version), &ok);
    put_text(o, "flow", r->flow, &ok);
    put(o, "updated", time_json(r->updated_ms), &ok);
    if (!append(oc->list, o, ok)) {
        oc->ok = false;
        return 1;
    }
    oc->all_final = oc->all_final && final_outcome(r->outcome);
    return 0;
}

/* One outbox event's status: state, cursor, and each recipient's outcome
 * (a second statement, run while the caller holds db_lock). */
typedef struct {
    shub_api_t *api;
    json_t *list; /* statuses are appended here */
    int64_t last_changed;
    int rc;
    shub_err_t *err;
} status_ctx_t;

static int on_status(const shub_outbox_row_t *r, void *ctx)
{
    status_ctx_t *sc = ctx;
    json_t *o = json_object();
    outcomes_ctx_t oc = {.list = json_array(), .all_final = true, .ok = true};
    bool ok = o && oc.list;
    put(o, "id", id_json(&r->id), &ok);
    put_text(o, "event", r->event_type, &ok);
    put(o, "to", selectors_json(r->recipients), &ok);
    put_text(o, "state", shub_outbox_state_name(r->state), &ok);
    put(o, "changed", json_integer(r->changed), &ok);
    put(o, "queued", time_json(r->created_ms), &ok);
    put(o, "attempts", json_integer(r->attempts), &ok);
    if (r->state == SHUB_OUTBOX_FAILED) {
        json_t *e = json_object();
        bool eok = e != NULL;
        put_text(e, "code", r->error_code ? r->error_code : "error", &eok);
        put_text(e, "message", r->error ? r->error : "", &eok);
        if (!eok) {
            json_decref(e);
            e = NULL;
        }
        put(o, "error", e, &ok);
    }
    if (ok && (sc->rc = shub_agentdb_outcomes(sc->api->db, &r->id, on_outcome, &oc,
                                              sc->err)) != 0) {
        json_decref(oc.list);
        json_decref(o);
        return 1;
    }
    ok = ok && oc.ok;
    bool final = r->state == SHUB_OUTBOX_FAILED ||
                 (r->state == SHUB_OUTBOX_RECEIPTED && oc.all_final);
    put(o, "final", json_boolean(final), &ok);
    put(o, "outcomes", oc.list, &ok);
    if (!append(sc->list, o, ok)) {
        sc->rc = shub_err_set(sc->err, SHUB_ENOMEM, "out of memory");
        return 1;
    }
    sc->last_changed = r->changed;
    return 0;
}

/* ---- resources ---------------------------------------------------------- */

static void log_request(const shub_api_request_t *req, const char *resource,
                        const shub_id_t *id, int status)
{
    char idt[SHUB_ID_TEXT] = "-";
    if (id)
        shub_id_format(id, idt);
    shub_debug("api %s %s event=%s status=%d", req->method, resource, idt, status);
}

/* The status of one event into resp: 200 (or `status`), 404, 503. */
static void answer_status(shub_api_t *api, const shub_id_t *id, int status,
                          int64_t *changed, shub_api_response_t *resp)
{
    shub_err_t err;
    status_ctx_t sc = {.api = api, .list = json_array(), .err = &err};
    if (!sc.list) {
        answer_no_memory(resp);
        return;
    }
    pthread_mutex_lock(&api->db_lock);
    int rc = shub_agentdb_outbox_get(api->db, id, on_status, &sc, &err);
    pthread_mutex_unlock(&api->db_lock);
    if (rc == 0)
        rc = sc.rc;
    if (rc == SHUB_ENOTFOUND)
        answer_error(resp, 404, "not-found", "id", "no event with this id in the outbox");
    else if (rc)
        answer_unavailable(resp, &err);
    else {
        if (changed)
            *changed = sc.last_changed;
        answer_json(resp, status, json_incref(json_array_get(sc.list, 0)));
    }
    json_decref(sc.list);
}

/* POST /v1/events */
static void post_event(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                       const shub_id_t *unused, shub_api_response_t *resp)
{
    (void)unused;
    if (!read_params(t, NULL, NULL, NULL, NULL, 0, resp))
        return;
    static const char json_type[] = "application/json";
    const char *ct = req->content_type;
    if (ct && (strncasecmp(ct, json_type, sizeof json_type - 1) != 0 ||
               (ct[sizeof json_type - 1] != '\0' && ct[sizeof json_type - 1] != ';' &&
                ct[sizeof json_type - 1] != ' '))) {
        answer_error(resp, 415, "unsupported-media-type", NULL,
                     "the body must be application/json");
        return;
    }
    shub_err_t err;
    shub_err_clear(&err);
    shub_id_t id;
    bool repeat = false;
    pthread_mutex_lock(&api->db_lock);
    int rc = shub_agent_submit_once(api->db, api->cfg, req->body ? req->body : "",
                                    req->body_len, shub_now_ms(), &id, &repeat, &err);
    pthread_mutex_unlock(&api->db_lock);
    switch (rc) {
    case 0:
        if (!repeat) {
            bump(api);
            if (api->wake)
                api->wake(api->wake_ctx);
        }
        answer_status(api, &id, repeat ? 200 : 201, NULL, resp);
        if (resp->status == 201 || resp->status == 200) {
            char idt[SHUB_ID_TEXT];
            shub_id_format(&id, idt);
            snprintf(resp->location, sizeof resp->location, "/v1/events/%s", idt);
            shub_info("api queued event=%s%s", idt, repeat ? " (a repeat)" : "");
        }
        return;
    case SHUB_EMALFORMED:
        answer_error(resp, 400, "malformed", NULL, err.msg);
        return;
    case SHUB_EEXIST:
        answer_error(resp, 409, "conflict", "id", err.msg);
        return;
    case SHUB_ENOMEM:
    case SHUB_EDB:
    case SHUB_EIO:
    case SHUB_ECRYPTO:
    case SHUB_EINVAL:
        answer_unavailable(resp, &err);
        return;
    default: /* what the field checks say: the path and message submit gives */
        answer_error(resp, 422, shub_err_token(rc), err.path, err.msg);
        return;
    }
}

/* GET /v1/events/ID?since=C&wait=S */
static void get_event(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                      const shub_id_t *id, shub_api_response_t *resp)
{
    (void)req;
    static const char *const names[] = {"since", "wait"};
    static const int64_t min[] = {0, 0}, max[] = {INT64_MAX / 2, SHUB_API_MAX_WAIT_S};
    int64_t v[] = {-1, 0};
    if (!read_params(t, names, min, max, v, 2, resp))
        return;
    int64_t deadline = 0;
    if (v[0] >= 0 && v[1] > 0 && !begin_wait(api, v[1], &deadline, resp))
        return;
    for (;;) {
        uint64_t seen = generation(api);
        int64_t changed = 0;
        answer_status(api, id, 200, &changed, resp);
        if (resp->status != 200 || v[0] < 0 || v[1] == 0 || changed > v[0] ||
            !wait_change(api, seen, deadline))
            break;
        shub_api_response_free(resp);
    }
    if (v[0] >= 0 && v[1] > 0)
        end_wait(api, v[1]);
}

/* A listing: {"events": [...], "next": cursor}. */
static void answer_list(shub_api_response_t *resp, json_t *list, int64_t next)
{
    json_t *o = json_object();
    bool ok = o != NULL;
    put(o, "events", list, &ok);
    put(o, "next", json_integer(next), &ok);
    answer_built(resp, 200, o, ok);
}

/* One page of a feed, read with the query's values v (v[0] the cursor, v[1]
 * the limit): a new list and the cursor past it, or false with resp
 * answered. */
typedef bool(page_fn)(shub_api_t *api, const int64_t *v, json_t **list, int64_t *next,
                      shub_api_response_t *resp);

/* A feed's long poll: reads pages until one has news past the cursor v[0] or
 * the wait of v[2] seconds is over, and answers with the last. */
static void answer_feed(shub_api_t *api, const int64_t *v, page_fn *page,
                        shub_api_response_t *resp)
{
    int64_t deadline = 0;
    if (!begin_wait(api, v[2], &deadline, resp))
        return;
    for (;;) {
        uint64_t seen = generation(api);
        json_t *list;
        int64_t next;
        if (!page(api, v, &list, &next, resp))
            break;
        if (json_array_size(list) > 0 || next > v[0] ||
            !wait_change(api, seen, deadline)) {
            answer_list(resp, list, next);
            break;
        }
        json_decref(list);
    }
    end_wait(api, v[2]);
}

/* The outbox's changes after the cursor, as statuses. */
static bool events_page(shub_api_t *api, const int64_t *v, json_t **list, int64_t *next,
                        shub_api_response_t *resp)
{
    shub_err_t err;
    status_ctx_t sc = {
        .api = api, .list = json_array(), .err = &err, .last_changed = v[0]};
    if (!sc.list) {
        answer_no_memory(resp);
        return false;
    }
    pthread_mutex_lock(&api->db_lock);
    int rc =
        shub_agentdb_outbox_changes(api->db, v[0], (size_t)v[1], on_status, &sc, &err);
    pthread_mutex_unlock(&api->db_lock);
    if (rc == 0)
        rc = sc.rc;
    if (rc) {
        json_decref(sc.list);
        answer_unavailable(resp, &err);
        return false;
    }
    *list = sc.list;
    *next = sc.last_changed;
    return true;
}

/* GET /v1/events?after=C&limit=L&wait=S: the changes feed. */
static void list_events(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                        const shub_id_t *unused, shub_api_response_t *resp)
{
    (void)req;
    (void)unused;
    static const char *const names[] = {"after", "limit", "wait"};
    static const int64_t min[] = {0, 1, 0},
                         max[] = {INT64_MAX / 2, SHUB_API_MAX_LIMIT, SHUB_API_MAX_WAIT_S};
    int64_t v[] = {0, SHUB_API_DEFAULT_LIMIT, 0};
    if (read_params(t, names, min, max, v, 3, resp))
        answer_feed(api, v, events_page, resp);
}

typedef struct {
    json_t *list;
    int64_t last;
    bool ok;
} inbox_ctx_t;

static int on_inbox(const shub_inbox_row_t *r, void *ctx)
{
    inbox_ctx_t *ic = ctx;
    shub_err_t err;
    char *text = NULL;
    int rc = shub_agent_inbox_json(r, &text, &err);
    if (rc && rc != SHUB_ENOMEM) {
        /* A row the agent stored cannot be read back: say so, skip it. */
        char idt[SHUB_ID_TEXT];
        shub_id_format(&r->id, idt);
        shub_warn("api: inbox event=%s does not decode: %s; left out", idt, err.msg);
        ic->last = r->seq;
        return 0;
    }
    json_t *event = rc ? NULL : json_loads(text, 0, NULL);
    shub_free(text);
    json_t *o = json_object();
    bool ok = o != NULL;
    put(o, "seq", json_integer(r->seq), &ok);
    put(o, "taken", time_json(r->taken_ms), &ok);
    put(o, "event", event, &ok);
    if (!append(ic->list, o, ok)) {
        ic->ok = false;
        return 1;
    }
    ic->last = r->seq;
    return 0;
}

/* The inbox after the cursor; v[3] == 1 takes in what was taken already. */
static bool inbox_page(shub_api_t *api, const int64_t *v, json_t **list, int64_t *next,
                       shub_api_response_t *resp)
{
    shub_err_t err;
    inbox_ctx_t ic = {.list = json_array(), .last = v[0], .ok = true};
    if (!ic.list) {
        answer_no_memory(resp);
        return false;
    }
    pthread_mutex_lock(&api->db_lock);
    int rc = shub_agentdb_inbox_after(api->db, v[0], v[3] == 0, (size_t)v[1], on_inbox,
                                      &ic, &err);
    pthread_mutex_unlock(&api->db_lock);
    if (rc || !ic.ok) {
        json_decref(ic.list);
        if (rc)
            answer_unavailable(resp, &err);
        else
            answer_no_memory(resp);
        return false;
    }
    *list = ic.list;
    *next = ic.last;
    return true;
}

/* GET /v1/inbox?after=Q&limit=L&wait=S&all=0|1 */
static void list_inbox(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                       const shub_id_t *unused, shub_api_response_t *resp)
{
    (void)req;
    (void)unused;
    static const char *const names[] = {"after", "limit", "wait", "all"};
    static const int64_t min[] = {0, 1, 0, 0},
                         max[] = {INT64_MAX / 2, SHUB_API_MAX_LIMIT, SHUB_API_MAX_WAIT_S, 1};
    int64_t v[] = {0, SHUB_API_DEFAULT_LIMIT, 0, 0};
    if (read_params(t, names, min, max, v, 4, resp))
        answer_feed(api, v, inbox_page, resp);
}

/* A body that is empty, white space, or {} (an acknowledgement says nothing
 * more). */
static bool empty_body(const shub_api_request_t *req, shub_api_response_t *resp)
{
    size_t i = 0, n = req->body_len;
    const char *b = req->body;
    while (i < n && b[i] && strchr(" \t\r\n", b[i]))
        i++;
    if (i == n)
        return true;
    json_error_t jerr;
    json_t *o = json_loadb(b, n, 0, &jerr);
    bool ok = o && json_is_object(o) && json_object_size(o) == 0;
    if (!o) {
        char msg[200];
        snprintf(msg, sizeof msg, "line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        answer_error(resp, 400, "malformed", NULL, msg);
    } else if (!json_is_object(o)) {
        answer_error(resp, 422, "wrong-type", NULL, "expected an empty JSON object");
    } else if (!ok) {
        answer_error(resp, 422, "bad-value", json_object_iter_key(json_object_iter(o)),
                     "unknown field");
    }
    json_decref(o);
    return ok;
}

/* POST /v1/inbox/ID/ack */
static void ack_event(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                      const shub_id_t *id, shub_api_response_t *resp)
{
    if (!read_params(t, NULL, NULL, NULL, NULL, 0, resp) || !empty_body(req, resp))
        return;
    shub_err_t err;
    int64_t at = 0;
    bool repeat = false;
    pthread_mutex_lock(&api->db_lock);
    int rc = shub_agentdb_inbox_take(api->db, id, shub_now_ms(), &at, &repeat, &err);
    pthread_mutex_unlock(&api->db_lock);
    if (rc == SHUB_ENOTFOUND) {
        answer_error(resp, 404, "not-found", "id", "no event with this id in the inbox");
        return;
    }
    if (rc) {
        answer_unavailable(resp, &err);
        return;
    }
    if (!repeat)
        bump(api);
    json_t *o = json_object();
    bool ok = o != NULL;
    put(o, "id", id_json(id), &ok);
    put(o, "taken", time_json(at), &ok);
    put(o, "repeat", json_boolean(repeat), &ok);
    answer_built(resp, 200, o, ok);
}

static void get_health(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                       const shub_id_t *unused, shub_api_response_t *resp)
{
    (void)req;
    (void)unused;
    if (!read_params(t, NULL, NULL, NULL, NULL, 0, resp))
        return;
    shub_err_t err;
    uint64_t pending = 0, untaken = 0;
    shub_signed_head_t cp;
    pthread_mutex_lock(&api->db_lock);
    int rc = shub_agentdb_outbox_count(api->db, SHUB_OUTBOX_PENDING, &pending, &err);
    if (rc == 0)
        rc = shub_agentdb_inbox_untaken(api->db, &untaken, &err);
    int cprc = rc ? rc : shub_agentdb_checkpoint_latest(api->db, &cp, &err);
    pthread_mutex_unlock(&api->db_lock);
    if (rc || (cprc && cprc != SHUB_ENOTFOUND)) {
        answer_unavailable(resp, &err);
        return;
    }
    pthread_mutex_lock(&api->lock);
    shub_agent_state_t st = api->state;
    bool known = api->have_state;
    pthread_mutex_unlock(&api->lock);
    json_t *o = json_object(), *backlog = json_object(), *checkpoint = NULL;
    bool ok = o && backlog;
    put(o, "version", json_string(SHUB_VERSION), &ok);
    put(o, "agent", json_boolean(known), &ok);
    put(o, "connected", json_boolean(known && st.connected), &ok);
    put(o, "welcomed", json_boolean(known && st.welcomed), &ok);
    put(o, "since", time_json(known ? st.since_ms : 0), &ok);
    put(backlog, "outbox_pending", json_integer((json_int_t)pending), &ok);
    put(backlog, "inbox_untaken", json_integer((json_int_t)untaken), &ok);
    put(backlog, "broker", json_integer(known ? st.broker_backlog : 0), &ok);
    put(o, "backlog", backlog, &ok);
    if (cprc == 0) {
        checkpoint = json_object();
        bool cok = checkpoint != NULL;
        put(checkpoint, "seq", json_integer(cp.seq), &cok);
        put(checkpoint, "at", time_json(cp.at_ms), &cok);
        char head[2 * SHUB_HASH_SIZE + 1];
        sodium_bin2hex(head, sizeof head, cp.head, SHUB_HASH_SIZE);
        put(checkpoint, "head", json_string(head), &cok);
        if (!cok)
            ok = false;
    }
    put(o, "checkpoint", checkpoint ? checkpoint : json_null(), &ok);
    answer_built(resp, 200, o, ok);
}

/* ---- the router --------------------------------------------------------- */

/* A resource: a path (with an event id between prefix and suffix when
 * has_id), the methods it takes, and its handler for each. */
typedef void(handler_fn)(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                         const shub_id_t *id, shub_api_response_t *resp);

static const struct resource {
    const char *name, *prefix, *suffix;
    bool has_id;
    const char *allow;
    handler_fn *get, *post;
} resources[] = {
    {"events", "/v1/events", "", false, "GET, POST", list_events, post_event},
    {"inbox", "/v1/inbox", "", false, "GET", list_inbox, NULL},
    {"health", "/v1/health", "", false, "GET", get_health, NULL},
    {"event", "/v1/events/", "", true, "GET", get_event, NULL},
    {"ack", "/v1/inbox/", "/ack", true, "POST", NULL, ack_event},
};

static void route(shub_api_t *api, const shub_api_request_t *req, const target_t *t,
                  shub_api_response_t *resp, const char **name, shub_id_t *id,
                  bool *has_id)
{
    for (size_t i = 0; i < sizeof resources / sizeof resources[0]; i++) {
        const struct resource *r = &resources[i];
        bool matched = !r->has_id && strcmp(t->path, r->prefix) == 0;
        if (r->has_id && !path_id(t->path, r->prefix, r->suffix, id, &matched, resp) &&
            matched)
            return; /* answered: not an id */
        if (!matched)
            continue;
        *name = r->name;
        *has_id = r->has_id;
        handler_fn *h = strcmp(req->method ? req->method : "", "GET") == 0    ? r->get
                        : strcmp(req->method ? req->method : "", "POST") == 0 ? r->post
                                                                              : NULL;
        if (h) {
            h(api, req, t, id, resp);
        } else {
            answer_error(resp, 405, "method-not-allowed", NULL,
                         "this resource does not take that method");
            resp->allow = r->allow;
        }
        return;
    }
    answer_error(resp, 404, "not-found", NULL, "no such resource");
}

bool shub_api_refuse_early(shub_api_t *api, const shub_api_request_t *req,
                           int64_t content_length, shub_api_response_t *resp)
{
    memset(resp, 0, sizeof *resp);
    if (!authorized(api, req->authorization)) {
        answer_error(resp, 401, "unauthorized", NULL,
                     "a valid bearer token is required (Authorization: Bearer TOKEN)");
        resp->authenticate = true;
    } else if (content_length > SHUB_API_MAX_BODY || req->body_too_large) {
        char msg[120];
        snprintf(msg, sizeof msg, "a request body may have at most %d bytes",
                 SHUB_API_MAX_BODY);
        answer_error(resp, 413, "too-large", NULL, msg);
    } else {
        return false;
    }
    shub_debug("api %s status=%d", req->method ? req->method : "-", resp->status);
    return true;
}

void shub_api_handle(shub_api_t *api, const shub_api_request_t *req,
                     shub_api_response_t *resp)
{
    if (shub_api_refuse_early(api, req, -1, resp))
        return;
    target_t *t = shub_malloc(sizeof *t);
    if (!t) {
        answer_no_memory(resp);
        return;
    }
    const char *resource = "-";
    shub_id_t id;
    bool has_id = false;
    if (parse_target(req->target, t, resp))
        route(api, req, t, resp, &resource, &id, &has_id);
    shub_free(t);
    log_request(req, resource, has_id ? &id : NULL, resp->status);
}

/* ---- lifecycle ---------------------------------------------------------- */

int shub_api_new(const shub_api_opts_t *opts, shub_api_t **api_p, shub_err_t *err)
{
    if (!opts || !opts->db_path || !api_p)
        return shub_err_set(err, SHUB_EINVAL, "no store for the API");
    if (sodium_init() < 0)
        return shub_err_set(err, SHUB_ECRYPTO, "libsodium failed to initialise");
    shub_api_t *api = shub_calloc(1, sizeof *api);
    if (!api)
        return shub_err_set(err, SHUB_ENOMEM, "out of memory");
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&api->changed, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&api->lock, NULL);
    pthread_mutex_init(&api->db_lock, NULL);
    api->cfg = opts->cfg;
    api->max_wait_ms = opts->max_wait_ms == 0 ? SHUB_API_MAX_WAIT_S * 1000 : opts->max_wait_ms;
    api->wake = opts->wake;
    api->wake_ctx = opts->wake_ctx;
    if (opts->token) {
        hash_token(opts->token, strlen(opts->token), api->token_hash);
        api->have_token = true;
    }
    int rc = shub_agentdb_open(opts->db_path, false, &api->db, err);
    if (rc) {
        shub_api_destroy(&api);
        return rc;
    }
    *api_p = api;
    return 0;
}

void shub_api_destroy(shub_api_t **api_p)
{
    if (!api_p || !*api_p)
        return;
    shub_api_t *api = *api_p;
    shub_agentdb_close(&api->db);
    pthread_mutex_destroy(&api->db_lock);
    pthread_mutex_destroy(&api->lock);
    pthread_cond_destroy(&api->changed);
    sodium_memzero(api->token_hash, sizeof api->token_hash);
    shub_free(api);
    *api_p = NULL;
}
