/*
 * test_api: the local API's handler as a case system meets it, without a
 * socket: a request in, an answer out, on a real agent store. The token is
 * checked before anything else; an event is posted once (repeats are the
 * same event, other content under its id a conflict) and refused with the
 * path and message `submit` gives; its status follows receipts and updates
 * through the change cursor, and a long poll wakes when the agent says
 * something changed; the inbox is read after a seq and taken once; health
 * says what the agent said; the token file must be 0600; and running out of
 * memory anywhere is a 503 that leaks nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sharehub/agent.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/api.h"
#include "sharehub/json.h"

#define TOKEN "unit-test-token-0123456789"
#define EVENT_ID "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b"

typedef struct {
    char dir[64];
    char db_path[128];
    shub_agent_config_t *cfg;
    shub_agentdb_t *db; /* the agent's own connection */
    shub_api_t *api;
    int wakes;
} fixture_t;

static const char event_json[] =
    "{\"id\": \"" EVENT_ID "\", \"event\": \"marac.referral\",\n"
    " \"occurred\": 1782900000000, \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"given\", \"to\": [\"marac@coventry\"],\n"
    " \"payload\": {\"risk\": {\"dash_score\": 16}}}";

static void wake(void *ctx)
{
    ((fixture_t *)ctx)->wakes++;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-api-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/orgs.yaml", f->dir);
    write_file(path,
               "areas: [coventry, walsall]\norgs:\n  - id: wmp\n    name: Police\n"
               "    kind: police\n    areas: [all]\n",
               0644);
    shub_err_t err;
    snprintf(f->db_path, sizeof f->db_path, "%s/wmp.db", f->dir);
    if (shub_agent_config_load(f->dir, "wmp", &f->cfg, &err) ||
        shub_agentdb_open(f->db_path, true, &f->db, &err))
        return -1;
    shub_api_opts_t o = {.db_path = f->db_path,
                         .cfg = f->cfg,
                         .token = TOKEN,
                         .max_wait_ms = 5000,
                         .wake = wake,
                         .wake_ctx = f};
    if (shub_api_new(&o, &f->api, &err))
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    shub_api_destroy(&f->api);
    shub_agentdb_close(&f->db);
    shub_agent_config_destroy(&f->cfg);
    static const char *const names[] = {"wmp.db", "wmp.db-wal", "wmp.db-shm", "orgs.yaml",
                                        "token"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

/* ---- requests ------------------------------------------------------------ */

typedef struct {
    int status;
    char body[8192];
    char location[64];
    const char *allow;
    bool authenticate;
} answer_t;

/* A request with the given Authorization and Content-Type headers. */
static answer_t call_as(fixture_t *f, const char *auth, const char *type,
                        const char *method, const char *target, const char *body)
{
    shub_api_request_t req = {.method = method,
                              .target = target,
                              .authorization = auth,
                              .content_type = type,
                              .body = body,
                              .body_len = body ? strlen(body) : 0};
    shub_api_response_t resp;
    shub_api_handle(f->api, &req, &resp);
    answer_t a = {.status = resp.status, .allow = resp.allow,
                  .authenticate = resp.authenticate};
    assert_non_null(resp.body);
    assert_true(resp.body_len > 0 && resp.body[resp.body_len - 1] == '\n');
    snprintf(a.body, sizeof a.body, "%s", resp.body);
    snprintf(a.location, sizeof a.location, "%s", resp.location);
    shub_api_response_free(&resp);
    return a;
}

static answer_t call(fixture_t *f, const char *method, const char *target, const char *body)
{
    return call_as(f, "Bearer " TOKEN, body ? "application/json" : NULL, method, target,
                   body);
}

/* The integer after "key": in a JSON text. */
static long long json_int(const char *text, const char *key)
{
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    const char *p = strstr(text, k);
    assert_non_null(p);
    return strtoll(p + strlen(k), NULL, 10);
}

static void receipt(fixture_t *f, shub_outcome_t outcome)
{
    shub_id_t id;
    assert_int_equal(shub_id_parse(EVENT_ID, &id), 0);
    shub_outcome_item_t item = {.to = "marac-coventry",
                                .outcome = outcome,
                                .agreement = "test-marac",
                                .version = 2,
                                .flow = "referral"};
    shub_receipt_t r = {.id = id, .items = &item, .count = 1};
    shub_err_t err;
    assert_int_equal(shub_agentdb_receipt(f->db, &r, shub_now_ms(), &err), 0);
}

/* ---- the token -------------------------------------------------------- */

static void test_shub_api_handle_without_the_token_401_before_anything(void **state)
{
    fixture_t *f = *state;
    const char *const headers[] = {NULL, "Bearer wrong-token-0123456789",
                                   "Basic " TOKEN, "Bearer", "bearer  " TOKEN "x"};
    for (size_t i = 0; i < sizeof headers / sizeof headers[0]; i++) {
        shub_api_request_t req = {.method = "POST",
                                  .target = "/v1/events",
                                  .authorization = headers[i],
                                  .body = event_json,
                                  .body_len = strlen(event_json)};
        shub_api_response_t resp;
        shub_api_handle(f->api, &req, &resp);
        assert_int_equal(resp.status, 401);
        assert_true(resp.authenticate);
        assert_non_null(strstr(resp.body, "\"code\":\"unauthorized\""));
        shub_api_response_free(&resp);
    }
    uint64_t n = 1;
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_count(f->db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 0);
    /* The scheme's name is not case-sensitive; the token is. */
    answer_t a = call_as(f, "bearer " TOKEN, NULL, "GET", "/v1/health", NULL);
    assert_int_equal(a.status, 200);
}

static void test_shub_api_refuse_early_declared_length_over_limit_413(void **state)
{
    fixture_t *f = *state;
    shub_api_request_t req = {.method = "POST", .target = "/v1/events",
                              .authorization = "Bearer " TOKEN};
    shub_api_response_t resp;
    assert_true(shub_api_refuse_early(f->api, &req, SHUB_API_MAX_BODY + 1, &resp));
    assert_int_equal(resp.status, 413);
    assert_non_null(strstr(resp.body, "\"code\":\"too-large\""));
    shub_api_response_free(&resp);
    assert_false(shub_api_refuse_early(f->api, &req, SHUB_API_MAX_BODY, &resp));
    req.body_too_large = true; /* a chunked body that grew past it */
    shub_api_handle(f->api, &req, &resp);
    assert_int_equal(resp.status, 413);
    shub_api_response_free(&resp);
}

static void test_shub_api_token_load_only_a_private_file_of_a_real_token(void **state)
{
    fixture_t *f = *state;
    char path[128], *token = NULL;
    shub_err_t err;
    snprintf(path, sizeof path, "%s/token", f->dir);
    write_file(path, TOKEN "\n", 0644);
    assert_int_equal(shub_api_token_load(path, &token, &err), SHUB_ECONFIG);
    char want[200];
    snprintf(want, sizeof want, "the API token '%s' has mode 0644", path);
    assert_non_null(strstr(err.msg, want));
    write_file(path, "short\n", 0600);
    assert_int_equal(shub_api_token_load(path, &token, &err), SHUB_ECONFIG);
    write_file(path, TOKEN " \n", 0600);
    assert_int_equal(shub_api_token_load(path, &token, &err), 0);
    assert_string_equal(token, TOKEN);
    shub_free(token);
    unlink(path);
    assert_int_equal(shub_api_token_load(path, &token, &err), SHUB_ENOTFOUND);
}

/* ---- events ----------------------------------------------------------- */

static void test_shub_api_post_event_201_repeat_200_other_content_409(void **state)
{
    fixture_t *f = *state;
    answer_t a = call(f, "POST", "/v1/events", event_json);
    assert_int_equal(a.status, 201);
    assert_string_equal(a.location, "/v1/events/" EVENT_ID);
    assert_non_null(strstr(a.body, "\"id\":\"" EVENT_ID "\""));
    assert_non_null(strstr(a.body, "\"state\":\"pending\""));
    assert_non_null(strstr(a.body, "\"to\":[\"marac@coventry\"]"));
    assert_non_null(strstr(a.body, "\"final\":false"));
    assert_int_equal(f->wakes, 1);
    a = call(f, "POST", "/v1/events", event_json);
    assert_int_equal(a.status, 200);
    assert_int_equal(f->wakes, 1); /* nothing new to send */
    char other[sizeof event_json];
    memcpy(other, event_json, sizeof other);
    memcpy(strstr(other, "16}}"), "17", 2);
    a = call(f, "POST", "/v1/events", other);
    assert_int_equal(a.status, 409);
    assert_non_null(strstr(a.body, "\"code\":\"conflict\",\"path\":\"id\""));
}

/* Each bad event: the API's 422 says what `submit` says (path: message). */
static void test_shub_api_post_event_invalid_422_as_submit_says(void **state)
{
    fixture_t *f = *state;
    /* A valid event but for one field. */
#define EV(extra, to, payload)                                                            \
    "{\"event\": \"marac.referral\", \"occurred\": 1782900000000, \"purpose\": \"p\", "       \
    "\"basis\": \"b\", \"consent\": \"given\", " extra "\"to\": " to ", \"payload\": " payload "}"
#define IN_COVENTRY "\"area\": \"coventry\", "
    static const struct {
        const char *json, *code, *path;
    } cases[] = {
        {EV(IN_COVENTRY "\"subjekt\": 1, ", "[\"marac@coventry\"]", "{}"), "bad-value",
         "subjekt"},
        {EV(IN_COVENTRY, "\"marac@coventry\"", "{}"), "wrong-type", "to"},
        {EV(IN_COVENTRY, "[\"marac@coventry\", 7]", "{}"), "wrong-type", "to[1]"},
        {EV("\"area\": \"atlantis\", ", "[\"marac@coventry\"]", "{}"), "bad-value", "area"},
        {EV(IN_COVENTRY, "[\"marac@atlantis\"]", "{}"), "bad-value", "to[0]"},
        {EV(IN_COVENTRY, "[\"marac@coventry\"]", "{\"victim\": {\"bad key\": 1}}"),
         "bad-value", "payload.victim.bad key"},
        {EV(IN_COVENTRY, "[\"marac@coventry\"]", "[]"), "wrong-type", "payload"},
        {EV("", "[\"marac@coventry\"]", "{}"), "missing-field", "area"},
        {"{\"event\": \"x\", \"occurred\": true, \"to\": [], \"payload\": {}}", "wrong-type",
         "occurred"},
        {"[1, 2]", "wrong-type", ""},
    };
#undef EV
#undef IN_COVENTRY
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer_t a = call(f, "POST", "/v1/events", cases[i].json);
        assert_int_equal(a.status, 422);
        shub_err_t err;
        shub_err_clear(&err);
        shub_id_t id;
        int rc = shub_agent_submit(f->db, f->cfg, cases[i].json, strlen(cases[i].json),
                                   1000, &id, &err);
        assert_string_equal(shub_err_token(rc), cases[i].code);
        assert_string_equal(err.path, cases[i].path);
        char want[600];
        if (err.path[0])
            snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\",\"path\":\"%s\","
                     "\"message\":\"%s\"}}\n", cases[i].code, err.path, err.msg);
        else
            snprintf(want, sizeof want, "{\"error\":{\"code\":\"%s\",\"message\":\"%s\"}}\n",
                     cases[i].code, err.msg);
        assert_string_equal(a.body, want);
    }
    answer_t a = call(f, "POST", "/v1/events", "{\"event\": ");
    assert_int_equal(a.status, 400);
    assert_non_null(strstr(a.body, "\"code\":\"malformed\""));
    a = call_as(f, "Bearer " TOKEN, "text/plain", "POST", "/v1/events", event_json);
    assert_int_equal(a.status, 415);
}

static void test_shub_api_routes_404_405_and_parameters_400(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *method, *target;
        int status;
        const char *path;
    } cases[] = {
        {"GET", "/", 404, NULL},
        {"GET", "/v1/eventsx", 404, NULL},
        {"GET", "/v1/inbox/" EVENT_ID "/ack/x", 404, NULL},
        {"DELETE", "/v1/events", 405, NULL},
        {"POST", "/v1/health", 405, NULL},
        {"GET", "/v1/inbox/" EVENT_ID "/ack", 405, NULL},
        {"GET", "/v1/events/" EVENT_ID, 404, "id"},
        {"GET", "/v1/events/not-an-id", 400, "id"},
        {"GET", "/v1/inbox?wait=-1", 400, "wait"},
        {"GET", "/v1/inbox?wait=61", 400, "wait"},
        {"GET", "/v1/inbox?after=1&after=2", 400, "after"},
        {"GET", "/v1/inbox?x=1", 400, "x"},
        {"GET", "/v1/events?limit=1001", 400, "limit"},
        {"GET", "/v1/health?verbose=1", 400, "verbose"},
        {"GET", "v1/health", 400, NULL},
        {"GET", "/v1/inbox?all=2", 400, "all"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        answer_t a = call(f, cases[i].method, cases[i].target, NULL);
        if (a.status != cases[i].status)
            fail_msg("%s %s: %d, not %d: %s", cases[i].method, cases[i].target, a.status,
                     cases[i].status, a.body);
        if (cases[i].path) {
            char want[64];
            snprintf(want, sizeof want, "\"path\":\"%s\"", cases[i].path);
            assert_non_null(strstr(a.body, want));
        }
        if (a.status == 405)
            assert_non_null(a.allow);
    }
}

static void test_shub_api_event_status_follows_the_change_cursor(void **state)
{
    fixture_t *f = *state;
    answer_t a = call(f, "POST", "/v1/events", event_json);
    long long c0 = json_int(a.body, "changed");
    char target[128];
    snprintf(target, sizeof target, "/v1/events/" EVENT_ID "?since=%lld", c0);
    a = call(f, "GET", target, NULL); /* no wait: answers at once */
    assert_int_equal(json_int(a.body, "changed"), c0);

    receipt(f, SHUB_OUTCOME_DELIVERED);
    a = call(f, "GET", target, NULL);
    long long c1 = json_int(a.body, "changed");
    assert_true(c1 > c0);
    assert_non_null(strstr(a.body, "\"state\":\"receipted\""));
    assert_non_null(strstr(a.body, "\"to\":\"marac-coventry\",\"outcome\":\"delivered\""));
    assert_non_null(strstr(a.body, "\"final\":false"));
    receipt(f, SHUB_OUTCOME_ACKNOWLEDGED);
    a = call(f, "GET", "/v1/events/" EVENT_ID, NULL);
    assert_non_null(strstr(a.body, "\"outcome\":\"acknowledged\""));
    assert_non_null(strstr(a.body, "\"final\":true"));

    snprintf(target, sizeof target, "/v1/events?after=%lld", c0);
    a = call(f, "GET", target, NULL); /* the changes feed */
    assert_non_null(strstr(a.body, "\"id\":\"" EVENT_ID "\""));
    assert_true(json_int(a.body, "next") > c1);
}

typedef struct {
    fixture_t *f;
    int delay_ms;
} later_t;

/* What the agent's thread does: commits a receipt, then tells the API. */
static void *receipt_later(void *arg)
{
    later_t *l = arg;
    struct timespec ts = {0, l->delay_ms * 1000000L};
    nanosleep(&ts, NULL);
    receipt(l->f, SHUB_OUTCOME_QUEUED);
    shub_agent_state_t st = {.connected = true, .welcomed = true};
    shub_api_observe(l->f->api, &st);
    return NULL;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_shub_api_long_poll_wakes_when_the_agent_tells_of_a_change(void **state)
{
    fixture_t *f = *state;
    answer_t a = call(f, "POST", "/v1/events", event_json);
    long long c0 = json_int(a.body, "changed");
    char target[128];
    snprintf(target, sizeof target, "/v1/events/" EVENT_ID "?since=%lld&wait=30", c0);
    pthread_t t;
    later_t l = {f, 200};
    assert_int_equal(pthread_create(&t, NULL, receipt_later, &l), 0);
    int64_t start = mono_ms();
    a = call(f, "GET", target, NULL);
    int64_t took = mono_ms() - start;
    pthread_join(t, NULL);
    assert_true(json_int(a.body, "changed") > c0);
    assert_non_null(strstr(a.body, "\"outcome\":\"queued\""));
    assert_true(took >= 150 && took < 4000); /* woken, not timed out (max 5 s) */

    /* Nothing changes: it answers when its wait (capped at max_wait_ms) ends. */
    snprintf(target, sizeof target, "/v1/inbox?wait=1");
    start = mono_ms();
    a = call(f, "GET", target, NULL);
    took = mono_ms() - start;
    assert_string_equal(a.body, "{\"events\":[],\"next\":0}\n");
    assert_true(took >= 900);
}

static void *stop_later(void *arg)
{
    struct timespec ts = {0, 200 * 1000000L};
    nanosleep(&ts, NULL);
    shub_api_stop(arg);
    return NULL;
}

static void test_shub_api_stop_ends_long_polls_at_once(void **state)
{
    fixture_t *f = *state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, stop_later, f->api), 0);
    int64_t start = mono_ms();
    answer_t a = call(f, "GET", "/v1/inbox?wait=30", NULL);
    pthread_join(t, NULL);
    assert_int_equal(a.status, 200);
    assert_true(mono_ms() - start < 4000);
    a = call(f, "GET", "/v1/inbox?wait=30", NULL); /* stopping: no new waits */
    assert_int_equal(a.status, 503);
}

/* ---- the inbox ---------------------------------------------------------- */

static void add_inbox(fixture_t *f, const char *id_text, int64_t received)
{
    shub_arena_t *arena = shub_arena_new(4096);
    shub_share_t share;
    shub_buf_t buf = {0};
    shub_err_t err;
    assert_int_equal(
        shub_json_share_parse(event_json, strlen(event_json), 0, arena, &share, &err), 0);
    assert_int_equal(shub_id_parse(id_text, &share.ev.id), 0);
    assert_int_equal(shub_event_encode(&share.ev, &buf, &err), 0);
    shub_inbox_row_t row = {.id = share.ev.id, .event_type = "marac.referral",
                            .sender = "wmp", .agreement = "test-marac", .version = 2,
                            .flow = "referral", .received_ms = received,
                            .event = buf.data, .event_len = buf.len};
    bool added;
    assert_int_equal(shub_agentdb_inbox_add(f->db, &row, &added, &err), 0);
    shub_buf_free(&buf);
    shub_arena_destroy(&arena);
}

static void test_shub_api_inbox_after_a_seq_and_taken_once(void **state)
{
    fixture_t *f = *state;
    static const char *const ids[] = {"0190a5b2-0000-7000-8000-000000000001",
                                      "0190a5b2-0000-7000-8000-000000000002",
                                      "0190a5b2-0000-7000-8000-000000000003"};
    for (int i = 0; i < 3; i++)
        add_inbox(f, ids[i], 1782900000000 + i);
    answer_t a = call(f, "GET", "/v1/inbox?limit=2", NULL);
    assert_non_null(strstr(a.body, "{\"seq\":1,\"taken\":null,\"event\":{\"id\":\""));
    assert_non_null(strstr(a.body, ids[1]));
    assert_null(strstr(a.body, ids[2]));
    assert_int_equal(json_int(a.body, "next"), 2);
    assert_non_null(strstr(a.body, "\"from\":\"wmp\",\"agreement\":\"test-marac\""));

    char target[128];
    snprintf(target, sizeof target, "/v1/inbox/%s/ack", ids[1]);
    a = call(f, "POST", target, NULL);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(a.body, "\"repeat\":false"));
    char first[sizeof a.body];
    memcpy(first, a.body, sizeof first);
    a = call(f, "POST", target, "{}");
    assert_non_null(strstr(a.body, "\"repeat\":true"));
    assert_int_equal(strncmp(a.body, first, (size_t)(strstr(first, "\"repeat\"") - first)),
                     0); /* the same time taken */
    a = call(f, "POST", target, "{\"note\": 1}");
    assert_int_equal(a.status, 422);
    a = call(f, "POST", target, "{");
    assert_int_equal(a.status, 400);

    a = call(f, "GET", "/v1/inbox", NULL); /* untaken only, by default */
    assert_non_null(strstr(a.body, ids[0]));
    assert_null(strstr(a.body, ids[1]));
    assert_non_null(strstr(a.body, ids[2]));
    a = call(f, "GET", "/v1/inbox?after=1&all=1", NULL);
    assert_non_null(strstr(a.body, "\"seq\":2,\"taken\":\"20"));
    assert_non_null(strstr(a.body, "\"taken\":\"20")); /* in the event's JSON too */
}

static void test_shub_api_health_says_what_the_agent_told(void **state)
{
    fixture_t *f = *state;
    answer_t a = call(f, "GET", "/v1/health", NULL);
    assert_non_null(strstr(a.body, "\"agent\":false,\"connected\":false"));
    assert_non_null(strstr(a.body, "\"checkpoint\":null"));
    call(f, "POST", "/v1/events", event_json);
    add_inbox(f, "0190a5b2-0000-7000-8000-000000000009", 1782900000000);
    shub_agent_state_t st = {.connected = true, .welcomed = true,
                             .since_ms = 1782900000000, .broker_backlog = 7};
    shub_api_observe(f->api, &st);
    a = call(f, "GET", "/v1/health", NULL);
    assert_non_null(strstr(a.body, "\"agent\":true,\"connected\":true,\"welcomed\":true,"
                                   "\"since\":\"2026-07-01T10:00:00.000Z\""));
    assert_non_null(strstr(a.body, "{\"outbox_pending\":1,\"inbox_untaken\":1,"
                                   "\"broker\":7}"));
}

/* ---- out of memory ------------------------------------------------------- */

static void test_shub_api_out_of_memory_anywhere_503_no_leak(void **state)
{
    fixture_t *f = *state;
    add_inbox(f, "0190a5b2-0000-7000-8000-000000000001", 1782900000000);
    static const struct {
        const char *method, *target, *body;
    } reqs[] = {
        {"POST", "/v1/events", event_json},
        {"GET", "/v1/events/" EVENT_ID, NULL},
        {"GET", "/v1/inbox?all=1", NULL},
        {"GET", "/v1/health", NULL},
        {"POST", "/v1/events", "{\"subjekt\": 1}"},
    };
    for (size_t r = 0; r < sizeof reqs / sizeof reqs[0]; r++) {
        for (long n = 0; n < 400; n++) {
            shub_api_request_t req = {.method = reqs[r].method, .target = reqs[r].target,
                                      .authorization = "Bearer " TOKEN,
                                      .body = reqs[r].body,
                                      .body_len = reqs[r].body ? strlen(reqs[r].body) : 0};
            shub_api_response_t resp;
            shub_alloc_fail_after(n);
            shub_api_handle(f->api, &req, &resp);
            long failed = shub_alloc_failures();
            shub_alloc_fail_after(-1);
            if (resp.body) /* even the constant answer may find no memory */
                assert_true(resp.body[0] == '{');
            shub_api_response_free(&resp);
            if (failed == 0)
                break;
            assert_true(resp.status == 503 || resp.status == 200 || resp.status == 201 ||
                        resp.status == 404 || resp.status == 422);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_shub_api_handle_without_the_token_401_before_anything),
        T(test_shub_api_refuse_early_declared_length_over_limit_413),
        T(test_shub_api_token_load_only_a_private_file_of_a_real_token),
        T(test_shub_api_post_event_201_repeat_200_other_content_409),
        T(test_shub_api_post_event_invalid_422_as_submit_says),
        T(test_shub_api_routes_404_405_and_parameters_400),
        T(test_shub_api_event_status_follows_the_change_cursor),
        T(test_shub_api_long_poll_wakes_when_the_agent_tells_of_a_change),
        T(test_shub_api_stop_ends_long_polls_at_once),
        T(test_shub_api_inbox_after_a_seq_and_taken_once),
        T(test_shub_api_health_says_what_the_agent_told),
        T(test_shub_api_out_of_memory_anywhere_503_no_leak),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
