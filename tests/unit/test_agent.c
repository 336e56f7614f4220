/*
 * test_agent: the agent's pieces that need no broker. The config loader finds
 * an organisation's kind and areas (`all` expanded to the partnership's),
 * defaults what hub.yaml leaves out, and says where a file is wrong; the
 * store commands queue a JSON event once and list the outbox and inbox as a
 * person reads them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sharehub/agent.h"
#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"

typedef struct {
    char dir[64];
} fixture_t;

static void write_file(const fixture_t *f, const char *name, const char *text)
{
    char path[128];
    snprintf(path, sizeof path, "%s/%s", f->dir, name);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static const char orgs_yaml[] = "areas: [coventry, dudley, walsall]\n"
                                "orgs:\n"
                                "  - id: wmp\n"
                                "    name: West Midlands Police\n"
                                "    kind: police\n"
                                "    areas: [all]\n"
                                "  - id: marac-coventry\n"
                                "    name: Coventry MARAC\n"
                                "    kind: marac\n"
                                "    areas: [coventry]\n";

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-agent-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    write_file(f, "orgs.yaml", orgs_yaml);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    static const char *const names[] = {"hub.yaml", "orgs.yaml", "a.db",
                                        "a.db-wal", "a.db-shm",  "out.txt"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", f->dir, names[i]);
        unlink(path);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static void test_shub_agent_config_load_all_areas_expanded_and_defaults(void **state)
{
    fixture_t *f = *state;
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "wmp", &cfg, &err), 0);
    assert_null(cfg->endpoint); /* no hub.yaml */
    char keys[128];
    snprintf(keys, sizeof keys, "%s/keys", f->dir);
    assert_string_equal(cfg->key_dir, keys);
    assert_string_equal(cfg->kind, "police");
    assert_int_equal(cfg->n_areas, 3);
    assert_string_equal(cfg->areas[0], "coventry");
    assert_string_equal(cfg->areas[2], "walsall");
    assert_int_equal(cfg->n_all_areas, 3);
    shub_agent_config_destroy(&cfg);
    assert_null(cfg);
}

static void test_shub_agent_config_load_reads_hub_yaml_ignoring_unknown_keys(void **state)
{
    fixture_t *f = *state;
    write_file(f, "hub.yaml",
               "endpoint: \"tcp://hub.example:7400\"\n"
               "database: broker.db\n"
               "key_dir: /etc/sharehub/keys\n"
               "limits:\n  heartbeat_ms: 300\n");
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "marac-coventry", &cfg, &err), 0);
    assert_string_equal(cfg->endpoint, "tcp://hub.example:7400");
    assert_string_equal(cfg->key_dir, "/etc/sharehub/keys");
    assert_string_equal(cfg->kind, "marac");
    assert_int_equal(cfg->n_areas, 1);
    assert_string_equal(cfg->areas[0], "coventry");
    shub_agent_config_destroy(&cfg);
}

/* An active broker and its standby: agents try the list in order. */
static void test_shub_agent_config_load_brokers_list_in_order(void **state)
{
    fixture_t *f = *state;
    write_file(f, "hub.yaml",
               "endpoint: \"tcp://hub-a.example:7400\"\n"
               "brokers: [\"tcp://hub-a.example:7400\", \"tcp://hub-b.example:7400\"]\n");
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "marac-coventry", &cfg, &err), 0);
    assert_int_equal(cfg->n_brokers, 2);
    assert_string_equal(cfg->brokers[0], "tcp://hub-a.example:7400");
    assert_string_equal(cfg->brokers[1], "tcp://hub-b.example:7400");
    shub_agent_config_destroy(&cfg);

    write_file(f, "hub.yaml", "brokers: []\n"); /* a list of none is a mistake */
    assert_int_equal(shub_agent_config_load(f->dir, "marac-coventry", &cfg, &err),
                     SHUB_ECONFIG);
    assert_null(cfg);
}

static void test_shub_agent_config_load_unknown_org_enotfound(void **state)
{
    fixture_t *f = *state;
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "bcc", &cfg, &err), SHUB_ENOTFOUND);
    char expect[256];
    snprintf(expect, sizeof expect, "organisation 'bcc' is not in '%s/orgs.yaml'",
             f->dir);
    assert_string_equal(err.msg, expect);
    assert_null(cfg);
}

static void test_shub_agent_config_load_bad_yaml_econfig_with_line(void **state)
{
    fixture_t *f = *state;
    write_file(f, "orgs.yaml",
               "areas: [coventry]\norgs:\n  - id: wmp\n    name: Police\n"
               "    kind: [police]\n    areas: [all]\n");
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "wmp", &cfg, &err), SHUB_ECONFIG);
    char path[128];
    snprintf(path, sizeof path, "%s/orgs.yaml", f->dir);
    assert_string_equal(err.file, path);
    assert_int_equal(err.line, 5);
    assert_int_equal(err.column, 11);
    assert_string_equal(err.msg, "'orgs[0].kind' must be text, not a list");
    assert_null(cfg);
}

static void test_shub_agent_config_load_missing_orgs_yaml_eio(void **state)
{
    fixture_t *f = *state;
    char path[128];
    snprintf(path, sizeof path, "%s/orgs.yaml", f->dir);
    unlink(path);
    shub_agent_config_t *cfg = NULL;
    shub_err_t err;
    assert_int_equal(shub_agent_config_load(f->dir, "wmp", &cfg, &err), SHUB_EIO);
    assert_string_equal(err.file, path);
    assert_string_equal(err.msg, "cannot open: No such file or directory");
}

static void test_shub_agent_config_load_out_of_memory_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    int rc = SHUB_ENOMEM;
    for (long n = 0; rc == SHUB_ENOMEM && n < 100000; n++) {
        shub_agent_config_t *cfg = NULL;
        shub_err_t err;
        shub_alloc_fail_after(n);
        rc = shub_agent_config_load(f->dir, "wmp", &cfg, &err);
        shub_alloc_fail_after(-1);
        if (rc)
            assert_null(cfg);
        shub_agent_config_destroy(&cfg);
    }
    assert_int_equal(rc, 0);
}

static const char event_json[] =
    "{\"id\": \"0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b\", \"event\": \"marac.referral\",\n"
    " \"occurred\": 1782900000000, \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"given\", \"to\": [\"marac@coventry\", \"@walsall\"],\n"
    " \"payload\": {\"risk\": {\"dash_score\": 16}}}";

static char *read_back(const fixture_t *f, FILE *fp)
{
    (void)f;
    static char buf[8192];
    fflush(fp);
    rewind(fp);
    size_t n = fread(buf, 1, sizeof buf - 1, fp);
    buf[n] = '\0';
    return buf;
}

/* The fixture's store a.db, created. */
static shub_agentdb_t *open_store(const fixture_t *f)
{
    char path[128];
    snprintf(path, sizeof path, "%s/a.db", f->dir);
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    assert_int_equal(shub_agentdb_open(path, true, &db, &err), 0);
    return db;
}

static void test_shub_agent_submit_queues_once_and_lists_outcomes(void **state)
{
    fixture_t *f = *state;
    char path[128];
    shub_agentdb_t *db = open_store(f);
    shub_err_t err;
    shub_id_t id;
    assert_int_equal(
        shub_agent_submit(db, NULL, event_json, strlen(event_json), 1000, &id, &err), 0);
    char idt[SHUB_ID_TEXT];
    shub_id_format(&id, idt);
    assert_string_equal(idt, "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b");
    /* The same id again is refused, not queued twice. */
    assert_int_equal(
        shub_agent_submit(db, NULL, event_json, strlen(event_json), 2000, &id, &err),
        SHUB_EEXIST);
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_outbox_count(db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 1);

    shub_outcome_item_t items[] = {
        {.to = "marac-coventry",
         .outcome = SHUB_OUTCOME_ACKNOWLEDGED,
         .agreement = "test-marac",
         .version = 2,
         .flow = "referral"},
        {.to = "walsall-mbc",
         .outcome = SHUB_OUTCOME_DENIED,
         .reason = "no-agreement",
         .detail = "no flow allows it"},
    };
    shub_receipt_t r = {.id = id, .items = items, .count = 2};
    assert_int_equal(shub_agentdb_receipt(db, &r, 3000, &err), 0);

    snprintf(path, sizeof path, "%s/out.txt", f->dir);
    FILE *fp = fopen(path, "w+");
    assert_non_null(fp);
    assert_int_equal(shub_agent_print_outbox(db, fp, &err), 0);
    const char *text = read_back(f, fp);
    assert_non_null(strstr(text, "0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b  marac.referral"));
    assert_non_null(strstr(text, "receipted  0         marac@coventry, @walsall\n"));
    assert_non_null(strstr(text, "    -> marac-coventry               acknowledged  "
                                 "[test-marac v2 referral]\n"));
    assert_non_null(strstr(text, "    -> walsall-mbc                  denied "
                                 "(no-agreement: no flow allows it)\n"));
    fclose(fp);
    shub_agentdb_close(&db);
}

static void test_shub_agent_submit_once_same_event_is_a_repeat_other_content_eexist(
    void **state)
{
    fixture_t *f = *state;
    shub_agentdb_t *db = open_store(f);
    shub_err_t err;
    shub_id_t id;
    bool repeat = true;
    size_t len = strlen(event_json);
    assert_int_equal(
        shub_agent_submit_once(db, NULL, event_json, len, 1000, &id, &repeat, &err), 0);
    assert_false(repeat);
    assert_int_equal(
        shub_agent_submit_once(db, NULL, event_json, len, 2000, &id, &repeat, &err), 0);
    assert_true(repeat);
    /* The same id with another DASH score is another event: refused. */
    char other[sizeof event_json];
    memcpy(other, event_json, sizeof event_json);
    char *score = strstr(other, "16}}}");
    assert_non_null(score);
    score[1] = '7';
    assert_int_equal(
        shub_agent_submit_once(db, NULL, other, len, 3000, &id, &repeat, &err), SHUB_EEXIST);
    assert_string_equal(err.path, "id");
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_outbox_count(db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 1);
    shub_agentdb_close(&db);
}

static void test_shub_agent_submit_bad_json_queues_nothing(void **state)
{
    fixture_t *f = *state;
    shub_agentdb_t *db = open_store(f);
    shub_err_t err;
    shub_id_t id;
    static const char bad[] = "{\"event\": \"x\", \"to\": [\"a\", \"B@\"]}";
    assert_int_equal(shub_agent_submit(db, NULL, bad, strlen(bad), 1000, &id, &err),
                     SHUB_EMISSING);
    assert_string_equal(err.path, "occurred");
    uint64_t n = 9;
    assert_int_equal(shub_agentdb_outbox_count(db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 0);
    shub_agentdb_close(&db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_shub_agent_config_load_all_areas_expanded_and_defaults),
        T(test_shub_agent_config_load_reads_hub_yaml_ignoring_unknown_keys),
        T(test_shub_agent_config_load_brokers_list_in_order),
        T(test_shub_agent_config_load_unknown_org_enotfound),
        T(test_shub_agent_config_load_bad_yaml_econfig_with_line),
        T(test_shub_agent_config_load_missing_orgs_yaml_eio),
        T(test_shub_agent_config_load_out_of_memory_enomem_no_leak),
        T(test_shub_agent_submit_queues_once_and_lists_outcomes),
        T(test_shub_agent_submit_bad_json_queues_nothing),
        T(test_shub_agent_submit_once_same_event_is_a_repeat_other_content_eexist),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
