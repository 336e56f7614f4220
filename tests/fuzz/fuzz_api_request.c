/*
 * fuzz_api_request: the local API's request handler (api.h) on arbitrary
 * requests, with no socket in between: what libmicrohttpd hands it is what
 * this target builds from the input. The input is four lines and a body:
 *
 *   METHOD \n TARGET \n AUTHORIZATION \n CONTENT-TYPE \n BODY...
 *
 * An AUTHORIZATION line of "-" sends the right token (so the fuzzer reaches
 * past the check without guessing it) and an empty one none. The store is a
 * real agent store in a temporary directory (under /dev/shm when there is
 * one, so its commits cost little), seeded with an outbox event with an
 * outcome and an inbox event, and the handler never waits (max_wait_ms < 0),
 * so a long poll cannot hang the fuzzer. Every answer must be a status from
 * the API's list with a JSON body; a 5xx other than 503 is a bug, and so is
 * a crash, a leak or a sanitizer report.
 */
#include "sharehub/agent.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/api.h"
#include "sharehub/json.h"
#include "sharehub/log.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TOKEN "fuzz-token-0123456789abcdef"

static shub_api_t *api;
static shub_agent_config_t *cfg;
static char dir[64];

static const char event_json[] =
    "{\"id\": \"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b\", \"event\": \"marac.referral\","
    " \"occurred\": 1782900000000, \"area\": \"coventry\", \"purpose\": \"p\","
    " \"basis\": \"b\", \"consent\": \"given\", \"to\": [\"marac@coventry\"],"
    " \"payload\": {\"risk\": {\"dash_score\": 16}, \"victim\": {\"name\": \"A\"}}}";

static void die(const char *what, const shub_err_t *err)
{
    fprintf(stderr, "fuzz_api_request: %s: %s\n", what, err ? err->msg : "");
    abort();
}

/* The store: one event queued and receipted, the same event in the inbox. */
static void seed(const char *path)
{
    shub_err_t err;
    shub_agentdb_t *db = NULL;
    if (shub_agentdb_open(path, true, &db, &err))
        die("store", &err);
    shub_id_t id;
    if (shub_agent_submit(db, cfg, event_json, strlen(event_json), 1782900000000, &id, &err))
        die("seed outbox", &err);
    shub_outcome_item_t item = {.to = "marac-coventry",
                                .outcome = SHUB_OUTCOME_DELIVERED,
                                .agreement = "test-marac",
                                .version = 2,
                                .flow = "referral"};
    shub_receipt_t r = {.id = id, .items = &item, .count = 1};
    if (shub_agentdb_receipt(db, &r, 1782900000001, &err))
        die("seed receipt", &err);
    shub_arena_t *arena = shub_arena_new(4096);
    shub_share_t share;
    shub_buf_t buf = {0};
    if (!arena || shub_json_share_parse(event_json, strlen(event_json), 0, arena, &share,
                                        &err) ||
        shub_event_encode(&share.ev, &buf, &err))
        die("seed event", &err);
    shub_inbox_row_t row = {.id = id,
                            .event_type = "marac.referral",
                            .sender = "wmp",
                            .agreement = "test-marac",
                            .version = 2,
                            .flow = "referral",
                            .received_ms = 1782900000002,
                            .event = buf.data,
                            .event_len = buf.len};
    bool added;
    if (shub_agentdb_inbox_add(db, &row, &added, &err))
        die("seed inbox", &err);
    shub_buf_free(&buf);
    shub_arena_destroy(&arena);
    shub_agentdb_close(&db);
}

/* At exit: the API, the configuration and the temporary directory go. */
static void cleanup(void)
{
    static const char *const names[] = {"wmp.db", "wmp.db-wal", "wmp.db-shm", "orgs.yaml"};
    char path[128];
    shub_api_destroy(&api);
    shub_agent_config_destroy(&cfg);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
    rmdir(dir);
}

static void init(void)
{
    shub_log_init("fuzz_api_request", SHUB_LOG_OFF);
    snprintf(dir, sizeof dir, "%s/shub-fuzz-api-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        die("mkdtemp", NULL);
    atexit(cleanup);
    char path[128];
    snprintf(path, sizeof path, "%s/orgs.yaml", dir);
    FILE *f = fopen(path, "w");
    if (!f)
        die("orgs.yaml", NULL);
    fputs("areas: [coventry, walsall]\norgs:\n  - id: wmp\n    name: Police\n"
          "    kind: police\n    areas: [all]\n",
          f);
    fclose(f);
    shub_err_t err;
    if (shub_agent_config_load(dir, "wmp", &cfg, &err))
        die("config", &err);
    snprintf(path, sizeof path, "%s/wmp.db", dir);
    seed(path);
    shub_api_opts_t o = {.db_path = path, .cfg = cfg, .token = TOKEN, .max_wait_ms = -1};
    if (shub_api_new(&o, &api, &err))
        die("api", &err);
}

/* The next line of the input, as a new NUL-terminated string. */
static char *line(const uint8_t **p, const uint8_t *end)
{
    const uint8_t *nl = memchr(*p, '\n', (size_t)(end - *p));
    const uint8_t *stop = nl ? nl : end;
    char *s = shub_malloc((size_t)(stop - *p) + 1);
    if (!s)
        abort();
    memcpy(s, *p, (size_t)(stop - *p));
    s[stop - *p] = '\0';
    *p = nl ? nl + 1 : end;
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!api)
        init();
    const uint8_t *p = data, *end = data + size;
    char *method = line(&p, end), *target = line(&p, end), *auth = line(&p, end),
         *type = line(&p, end);
    size_t body_len = (size_t)(end - p);
    /* The body in a buffer of its exact size, as the server keeps it. */
    char *body = shub_malloc(body_len ? body_len : 1);
    if (!body)
        abort();
    memcpy(body, p, body_len);
    shub_api_request_t req = {
        .method = method,
        .target = target,
        .authorization = strcmp(auth, "-") == 0 ? "Bearer " TOKEN : *auth ? auth : NULL,
        .content_type = *type ? type : NULL,
        .body = body,
        .body_len = body_len,
        .body_too_large = body_len > SHUB_API_MAX_BODY,
    };
    shub_api_response_t resp;
    if (!shub_api_refuse_early(api, &req, (int64_t)body_len, &resp)) {
        shub_api_handle(api, &req, &resp);
    }
    static const int statuses[] = {200, 201, 400, 401, 404, 405, 409, 413, 415, 422, 503};
    bool known = false;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        known = known || resp.status == statuses[i];
    if (!known || !resp.body || resp.body_len < 2 || resp.body[0] != '{' ||
        resp.body[resp.body_len - 1] != '\n') {
        fprintf(stderr, "fuzz_api_request: answer %d: %.200s\n", resp.status,
                resp.body ? resp.body : "(none)");
        abort();
    }
    shub_api_response_free(&resp);
    shub_free(method);
    shub_free(target);
    shub_free(auth);
    shub_free(type);
    shub_free(body);
    return 0;
}
