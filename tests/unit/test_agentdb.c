/*
 * test_agentdb: the agent's store as the agent uses it. An event is queued,
 * found due, sent, answered by a RECEIPT whose outcomes are stored and only
 * ever move forward, or failed for good; a delivery is committed to the
 * inbox once however often it arrives; everything survives closing and
 * reopening the file, and a second connection's commit is noticed. The
 * local API's cursors: each change a case system waits for stamps its event
 * with a newer cursor and a repeat does not; the inbox is read after a seq,
 * its events taken once; a version 2 store is upgraded in place. Two
 * connections of one process (the agent's loop and the API) writing at once
 * wait for each other's lock and lose nothing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"

typedef struct {
    char dir[64];
    char path[128];
    shub_agentdb_t *db;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/shub-agentdb-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/org.db", f->dir);
    shub_err_t err;
    if (shub_agentdb_open(f->path, true, &f->db, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char p[160];
    shub_agentdb_close(&f->db);
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffixes[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static shub_id_t make_id(uint8_t n)
{
    shub_id_t id;
    memset(id.bytes, 0, sizeof id.bytes);
    id.bytes[5] = n;
    id.bytes[15] = n;
    return id;
}

static const uint8_t share_bytes[] = {0x81, 0xa1, 'v', 0x01};

static void add(shub_agentdb_t *db, uint8_t n, int64_t now)
{
    shub_id_t id = make_id(n);
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_add(db, &id, "marac.referral", "marac@coventry",
                                             share_bytes, sizeof share_bytes, now, &err),
                     0);
}

/* Collects outbox rows (copies of the fields the tests look at). */
typedef struct {
    size_t n;
    int64_t changed[16];
    shub_id_t ids[16];
    shub_outbox_state_t states[16];
    uint32_t attempts[16];
    char error_code[16][32];
    char recipients[16][64];
    size_t share_len[16];
} rows_t;

static int collect(const shub_outbox_row_t *r, void *ctx)
{
    rows_t *rows = ctx;
    if (rows->n == 16)
        return 1;
    rows->ids[rows->n] = r->id;
    rows->changed[rows->n] = r->changed;
    rows->states[rows->n] = r->state;
    rows->attempts[rows->n] = r->attempts;
    snprintf(rows->error_code[rows->n], 32, "%s", r->error_code ? r->error_code : "");
    snprintf(rows->recipients[rows->n], 64, "%s", r->recipients);
    rows->share_len[rows->n] = r->share_len;
    rows->n++;
    return 0;
}

typedef struct {
    size_t n;
    char recipient[8][64];
    shub_outcome_t outcome[8];
    char reason[8][64];
    char agreement[8][64];
    uint32_t version[8];
} outcomes_t;

static int collect_outcome(const shub_outcome_row_t *o, void *ctx)
{
    outcomes_t *oc = ctx;
    if (oc->n == 8)
        return 1;
    snprintf(oc->recipient[oc->n], 64, "%s", o->recipient);
    oc->outcome[oc->n] = o->outcome;
    snprintf(oc->reason[oc->n], 64, "%s", o->reason ? o->reason : "");
    snprintf(oc->agreement[oc->n], 64, "%s", o->agreement ? o->agreement : "");
    oc->version[oc->n] = o->version;
    oc->n++;
    return 0;
}

static void receipt(shub_agentdb_t *db, uint8_t n, const char *to, shub_outcome_t outcome,
                    int expect)
{
    shub_outcome_item_t item = {.to = to, .outcome = outcome};
    if (outcome == SHUB_OUTCOME_DENIED)
        item.reason = "no-agreement";
    if (outcome != SHUB_OUTCOME_DENIED) {
        item.agreement = "test-marac";
        item.version = 2;
        item.flow = "referral";
    }
    shub_receipt_t r = {.id = make_id(n), .items = &item, .count = 1};
    shub_err_t err;
    assert_int_equal(shub_agentdb_receipt(db, &r, 1000, &err), expect);
}

/* ---- open ------------------------------------------------------------- */

static void test_shub_agentdb_open_missing_without_create_eio(void **state)
{
    fixture_t *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/absent.db", f->dir);
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    assert_int_equal(shub_agentdb_open(path, false, &db, &err), SHUB_EIO);
    assert_null(db);
    assert_int_equal(access(path, F_OK), -1);
}

static void test_shub_agentdb_open_unknown_schema_version_edb(void **state)
{
    fixture_t *f = *state;
    char path[160];
    snprintf(path, sizeof path, "%s/future.db", f->dir);
    sqlite3 *raw;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "PRAGMA user_version = 7", NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    assert_int_equal(shub_agentdb_open(path, true, &db, &err), SHUB_EDB);
    assert_non_null(strstr(err.msg, "schema version 7 is newer than this program's (4)"));
    assert_null(db);
    unlink(path);
}

static void test_shub_agentdb_open_out_of_memory_enomem_no_leak(void **state)
{
    fixture_t *f = *state;
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    for (long n = 0; n < 2; n++) {
        shub_alloc_fail_after(n);
        int rc = shub_agentdb_open(f->path, false, &db, &err);
        shub_alloc_fail_after(-1);
        assert_int_equal(rc, SHUB_ENOMEM);
        assert_null(db);
    }
}

/* ---- outbox ----------------------------------------------------------- */

static void test_shub_agentdb_outbox_add_then_list_returns_pending_row(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 500);
    rows_t rows = {0};
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_list(f->db, collect, &rows, &err), 0);
    assert_int_equal(rows.n, 1);
    shub_id_t id = make_id(1);
    assert_memory_equal(rows.ids[0].bytes, id.bytes, SHUB_ID_SIZE);
    assert_int_equal(rows.states[0], SHUB_OUTBOX_PENDING);
    assert_int_equal(rows.attempts[0], 0);
    assert_string_equal(rows.recipients[0], "marac@coventry");
    assert_int_equal(rows.share_len[0], sizeof share_bytes);
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_outbox_count(f->db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 1);
}

static void test_shub_agentdb_outbox_add_same_id_twice_eexist(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 500);
    shub_id_t id = make_id(1);
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_add(f->db, &id, "x.y", "wmp", share_bytes,
                                             sizeof share_bytes, 600, &err),
                     SHUB_EEXIST);
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_outbox_count(f->db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 1);
}

static void test_shub_agentdb_outbox_due_follows_session_and_retry_time(void **state)
{
    fixture_t *f = *state;
    shub_err_t err;
    add(f->db, 1, 100);
    add(f->db, 2, 100);
    rows_t rows = {0};
    /* Never sent: both due, in queueing order, limited by max. */
    assert_int_equal(shub_agentdb_outbox_due(f->db, 1000, 1000, 1, collect, &rows, &err),
                     0);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.ids[0].bytes[15], 1);
    shub_id_t ids[2] = {make_id(1), make_id(2)};
    assert_int_equal(shub_agentdb_outbox_sent(f->db, ids, 2, 1000, 4000, &err), 0);
    /* Sent in this session, retry ahead: nothing due, both in flight. */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(shub_agentdb_outbox_due(f->db, 1000, 2000, 10, collect, &rows, &err),
                     0);
    assert_int_equal(rows.n, 0);
    uint32_t inflight = 0;
    assert_int_equal(shub_agentdb_outbox_inflight(f->db, 1000, 2000, &inflight, &err), 0);
    assert_int_equal(inflight, 2);
    /* A busy answer for one moves its retry closer. */
    assert_int_equal(shub_agentdb_outbox_retry(f->db, &ids[1], 2500, &err), 0);
    assert_int_equal(shub_agentdb_outbox_due(f->db, 1000, 2600, 10, collect, &rows, &err),
                     0);
    assert_int_equal(rows.n, 1);
    assert_int_equal(rows.ids[0].bytes[15], 2);
    assert_int_equal(rows.attempts[0], 1);
    /* A new session (after a reconnect) makes everything pending due again. */
    memset(&rows, 0, sizeof rows);
    assert_int_equal(shub_agentdb_outbox_due(f->db, 3000, 3000, 10, collect, &rows, &err),
                     0);
    assert_int_equal(rows.n, 2);
    assert_int_equal(shub_agentdb_outbox_inflight(f->db, 3000, 3000, &inflight, &err), 0);
    assert_int_equal(inflight, 0);
}

static void test_shub_agentdb_receipt_marks_receipted_and_stores_outcomes(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 100);
    shub_outcome_item_t items[] = {
        {.to = "marac-coventry",
         .outcome = SHUB_OUTCOME_DELIVERED,
         .agreement = "test-marac",
         .version = 3,
         .flow = "referral"},
        {.to = "bcc",
         .outcome = SHUB_OUTCOME_DENIED,
         .reason = "no-agreement",
         .detail = "no active agreement lets wmp send marac.referral to bcc"},
    };
    shub_receipt_t r = {.id = make_id(1), .items = items, .count = 2};
    shub_err_t err;
    assert_int_equal(shub_agentdb_receipt(f->db, &r, 900, &err), 0);
    rows_t rows = {0};
    assert_int_equal(shub_agentdb_outbox_list(f->db, collect, &rows, &err), 0);
    assert_int_equal(rows.states[0], SHUB_OUTBOX_RECEIPTED);
    outcomes_t oc = {0};
    shub_id_t id = make_id(1);
    assert_int_equal(shub_agentdb_outcomes(f->db, &id, collect_outcome, &oc, &err), 0);
    assert_int_equal(oc.n, 2);
    assert_string_equal(oc.recipient[0], "bcc");
    assert_int_equal(oc.outcome[0], SHUB_OUTCOME_DENIED);
    assert_string_equal(oc.reason[0], "no-agreement");
    assert_string_equal(oc.recipient[1], "marac-coventry");
    assert_int_equal(oc.outcome[1], SHUB_OUTCOME_DELIVERED);
    assert_string_equal(oc.agreement[1], "test-marac");
    assert_int_equal(oc.version[1], 3);
    uint64_t n = 9;
    assert_int_equal(shub_agentdb_outbox_count(f->db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 0);
}

static void test_shub_agentdb_receipt_unknown_id_enotfound_writes_nothing(void **state)
{
    fixture_t *f = *state;
    receipt(f->db, 9, "marac-coventry", SHUB_OUTCOME_DELIVERED, SHUB_ENOTFOUND);
    outcomes_t oc = {0};
    shub_id_t id = make_id(9);
    shub_err_t err;
    assert_int_equal(shub_agentdb_outcomes(f->db, &id, collect_outcome, &oc, &err), 0);
    assert_int_equal(oc.n, 0);
}

static void test_shub_agentdb_receipt_outcome_only_moves_forward(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 100);
    shub_id_t id = make_id(1);
    shub_err_t err;
    outcomes_t oc;
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_QUEUED, 0);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_ACKNOWLEDGED, 0);
    /* A late duplicate receipt that still says delivered does not undo it. */
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DEAD, 0);
    memset(&oc, 0, sizeof oc);
    assert_int_equal(shub_agentdb_outcomes(f->db, &id, collect_outcome, &oc, &err), 0);
    assert_int_equal(oc.n, 1);
    assert_int_equal(oc.outcome[0], SHUB_OUTCOME_ACKNOWLEDGED);
    assert_string_equal(oc.agreement[0], "test-marac");
}

static void test_shub_agentdb_outbox_fail_records_code_and_stops_resending(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 100);
    shub_id_t id = make_id(1);
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_fail(f->db, &id, "future-event",
                                              "SHARE.occurred: 900000 ms ahead", 200,
                                              &err),
                     0);
    rows_t rows = {0};
    assert_int_equal(shub_agentdb_outbox_due(f->db, 0, 10000, 10, collect, &rows, &err),
                     0);
    assert_int_equal(rows.n, 0);
    assert_int_equal(shub_agentdb_outbox_list(f->db, collect, &rows, &err), 0);
    assert_int_equal(rows.states[0], SHUB_OUTBOX_FAILED);
    assert_string_equal(rows.error_code[0], "future-event");
    /* Failing again, or retrying, finds nothing pending. */
    assert_int_equal(shub_agentdb_outbox_fail(f->db, &id, "limit", "x", 300, &err),
                     SHUB_ENOTFOUND);
    assert_int_equal(shub_agentdb_outbox_retry(f->db, &id, 400, &err), SHUB_ENOTFOUND);
    /* A receipt arriving after all keeps it failed but records the outcome. */
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(shub_agentdb_outbox_list(f->db, collect, &rows, &err), 0);
    assert_int_equal(rows.states[0], SHUB_OUTBOX_FAILED);
}

/* ---- inbox ------------------------------------------------------------ */

static const uint8_t event_bytes[] = {0x81, 0xa2, 'i', 'd', 0xc0};

static shub_inbox_row_t inbox_row(uint8_t n, int64_t received)
{
    shub_inbox_row_t r = {
        .id = make_id(n),
        .event_type = "marac.referral",
        .sender = "wmp",
        .agreement = "test-marac",
        .version = 1,
        .flow = "referral",
        .received_ms = received,
        .event = event_bytes,
        .event_len = sizeof event_bytes,
    };
    return r;
}

typedef struct {
    size_t n;
    int64_t received[8];
    char sender[8][32];
} inbox_rows_t;

static int collect_inbox(const shub_inbox_row_t *r, void *ctx)
{
    inbox_rows_t *ir = ctx;
    if (ir->n == 8)
        return 1;
    ir->received[ir->n] = r->received_ms;
    snprintf(ir->sender[ir->n], 32, "%s", r->sender);
    assert_int_equal(r->event_len, sizeof event_bytes);
    assert_memory_equal(r->event, event_bytes, sizeof event_bytes);
    ir->n++;
    return 0;
}

static void test_shub_agentdb_inbox_add_same_id_twice_stores_once(void **state)
{
    fixture_t *f = *state;
    shub_inbox_row_t r = inbox_row(1, 1000);
    bool added = false;
    shub_err_t err;
    assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    assert_true(added);
    r.received_ms = 2000; /* the redelivery */
    assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    assert_false(added);
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_inbox_count(f->db, &n, &err), 0);
    assert_int_equal(n, 1);
    inbox_rows_t ir = {0};
    assert_int_equal(shub_agentdb_inbox_list(f->db, 0, collect_inbox, &ir, &err), 0);
    assert_int_equal(ir.n, 1);
    assert_int_equal(ir.received[0], 1000);
}

static void test_shub_agentdb_inbox_list_since_filters_by_received_time(void **state)
{
    fixture_t *f = *state;
    shub_err_t err;
    bool added;
    for (uint8_t i = 1; i <= 3; i++) {
        shub_inbox_row_t r = inbox_row(i, 1000 * i);
        assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    }
    inbox_rows_t ir = {0};
    assert_int_equal(shub_agentdb_inbox_list(f->db, 2000, collect_inbox, &ir, &err), 0);
    assert_int_equal(ir.n, 2);
    assert_int_equal(ir.received[0], 2000);
    assert_int_equal(ir.received[1], 3000);
}

static void test_shub_agentdb_inbox_add_without_event_einval(void **state)
{
    fixture_t *f = *state;
    shub_inbox_row_t r = inbox_row(1, 1000);
    r.event_len = 0;
    bool added = true;
    shub_err_t err;
    assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), SHUB_EINVAL);
    uint64_t n = 9;
    assert_int_equal(shub_agentdb_inbox_count(f->db, &n, &err), 0);
    assert_int_equal(n, 0);
}

/* ---- durability and other processes ----------------------------------- */

static void test_shub_agentdb_reopen_keeps_outbox_outcomes_and_inbox(void **state)
{
    fixture_t *f = *state;
    shub_err_t err;
    bool added;
    add(f->db, 1, 100);
    add(f->db, 2, 100);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    shub_inbox_row_t r = inbox_row(7, 1000);
    assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    shub_agentdb_close(&f->db);
    assert_null(f->db);

    assert_int_equal(shub_agentdb_open(f->path, false, &f->db, &err), 0);
    rows_t rows = {0};
    assert_int_equal(shub_agentdb_outbox_list(f->db, collect, &rows, &err), 0);
    assert_int_equal(rows.n, 2);
    assert_int_equal(rows.states[0], SHUB_OUTBOX_RECEIPTED);
    assert_int_equal(rows.states[1], SHUB_OUTBOX_PENDING);
    outcomes_t oc = {0};
    shub_id_t id = make_id(1);
    assert_int_equal(shub_agentdb_outcomes(f->db, &id, collect_outcome, &oc, &err), 0);
    assert_int_equal(oc.n, 1);
    assert_int_equal(oc.outcome[0], SHUB_OUTCOME_DELIVERED);
    assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    assert_false(added);
}

/* The change cursor of event n, from the changes feed. */
static int64_t cursor_of(shub_agentdb_t *db, uint8_t n)
{
    rows_t rows = {0};
    shub_err_t err;
    shub_id_t id = make_id(n);
    assert_int_equal(shub_agentdb_outbox_get(db, &id, collect, &rows, &err), 0);
    assert_int_equal(rows.n, 1);
    return rows.changed[0];
}

static void update(shub_agentdb_t *db, uint8_t n, int64_t seq, shub_outcome_t outcome)
{
    shub_update_t u = {.seq = seq, .id = make_id(n), .item = {.to = "marac-coventry",
                                                               .outcome = outcome}};
    shub_err_t err;
    int64_t upto = 0;
    assert_int_equal(shub_agentdb_updates_apply(db, &u, 1, 2000, &upto, &err), 0);
}

static void test_shub_agentdb_change_cursor_moves_on_each_change_not_on_repeats(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 100);
    add(f->db, 2, 100);
    int64_t c1 = cursor_of(f->db, 1), c2 = cursor_of(f->db, 2);
    assert_true(c1 > 0 && c2 > c1);

    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    int64_t r1 = cursor_of(f->db, 1);
    assert_true(r1 > c2);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0); /* a repeat */
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_QUEUED, 0);    /* a late one */
    assert_int_equal(cursor_of(f->db, 1), r1);

    update(f->db, 1, 1, SHUB_OUTCOME_ACKNOWLEDGED);
    int64_t u1 = cursor_of(f->db, 1);
    assert_true(u1 > r1);
    update(f->db, 1, 2, SHUB_OUTCOME_ACKNOWLEDGED); /* sent again after a HELLO */
    update(f->db, 1, 3, SHUB_OUTCOME_DEAD);         /* final outcomes stay */
    assert_int_equal(cursor_of(f->db, 1), u1);
    update(f->db, 9, 4, SHUB_OUTCOME_ACKNOWLEDGED); /* not in this outbox: no stamp */

    shub_err_t err;
    shub_id_t id2 = make_id(2);
    assert_int_equal(shub_agentdb_outbox_fail(f->db, &id2, "limit", "too big", 3000, &err),
                     0);
    assert_true(cursor_of(f->db, 2) > u1);
    assert_int_equal(cursor_of(f->db, 1), u1);
}

static void test_shub_agentdb_outbox_changes_lists_each_event_at_its_latest_change(
    void **state)
{
    fixture_t *f = *state;
    for (uint8_t n = 1; n <= 3; n++)
        add(f->db, n, 100);
    int64_t after = cursor_of(f->db, 3);
    receipt(f->db, 2, "marac-coventry", SHUB_OUTCOME_QUEUED, 0);
    receipt(f->db, 1, "marac-coventry", SHUB_OUTCOME_QUEUED, 0);
    receipt(f->db, 2, "marac-coventry", SHUB_OUTCOME_DELIVERED, 0);
    rows_t rows = {0};
    shub_err_t err;
    assert_int_equal(shub_agentdb_outbox_changes(f->db, after, 10, collect, &rows, &err), 0);
    assert_int_equal(rows.n, 2); /* 2 changed twice: once in the feed, last */
    assert_memory_equal(rows.ids[0].bytes, make_id(1).bytes, SHUB_ID_SIZE);
    assert_memory_equal(rows.ids[1].bytes, make_id(2).bytes, SHUB_ID_SIZE);
    assert_true(rows.changed[1] > rows.changed[0]);
    memset(&rows, 0, sizeof rows);
    assert_int_equal(shub_agentdb_outbox_changes(f->db, 0, 2, collect, &rows, &err), 0);
    assert_int_equal(rows.n, 2); /* the limit */
    assert_memory_equal(rows.ids[0].bytes, make_id(3).bytes, SHUB_ID_SIZE);
}

typedef struct {
    size_t n;
    int64_t seq[8];
    int64_t taken[8];
} seqs_t;

static int collect_seq(const shub_inbox_row_t *r, void *ctx)
{
    seqs_t *sq = ctx;
    if (sq->n == 8)
        return 1;
    sq->seq[sq->n] = r->seq;
    sq->taken[sq->n++] = r->taken_ms;
    return 0;
}

static void test_shub_agentdb_inbox_take_once_and_list_after_a_seq(void **state)
{
    fixture_t *f = *state;
    shub_err_t err;
    for (uint8_t n = 1; n <= 3; n++) {
        shub_inbox_row_t r = inbox_row(n, 1000 + n);
        bool added;
        assert_int_equal(shub_agentdb_inbox_add(f->db, &r, &added, &err), 0);
    }
    seqs_t all = {0};
    assert_int_equal(shub_agentdb_inbox_after(f->db, 0, true, 10, collect_seq, &all, &err),
                     0);
    assert_int_equal(all.n, 3);

    shub_id_t id2 = make_id(2);
    int64_t at = 0;
    bool repeat = true;
    assert_int_equal(shub_agentdb_inbox_take(f->db, &id2, 5000, &at, &repeat, &err), 0);
    assert_int_equal(at, 5000);
    assert_false(repeat);
    assert_int_equal(shub_agentdb_inbox_take(f->db, &id2, 6000, &at, &repeat, &err), 0);
    assert_int_equal(at, 5000); /* the first time stays */
    assert_true(repeat);
    shub_id_t none = make_id(9);
    assert_int_equal(shub_agentdb_inbox_take(f->db, &none, 6000, &at, &repeat, &err),
                     SHUB_ENOTFOUND);

    seqs_t untaken = {0};
    assert_int_equal(
        shub_agentdb_inbox_after(f->db, 0, true, 10, collect_seq, &untaken, &err), 0);
    assert_int_equal(untaken.n, 2);
    assert_int_equal(untaken.seq[0], all.seq[0]);
    assert_int_equal(untaken.seq[1], all.seq[2]);
    seqs_t later = {0};
    assert_int_equal(
        shub_agentdb_inbox_after(f->db, all.seq[0], false, 1, collect_seq, &later, &err), 0);
    assert_int_equal(later.n, 1);
    assert_int_equal(later.seq[0], all.seq[1]);
    assert_int_equal(later.taken[0], 5000);
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_inbox_untaken(f->db, &n, &err), 0);
    assert_int_equal(n, 2);
}

/* A version 2 store (made here by taking versions 3's and 4's additions away
 * again) opens as version 4, its events numbered in queueing order, and takes
 * retention's columns too. */
static void test_shub_agentdb_open_upgrades_version_2_in_place(void **state)
{
    fixture_t *f = *state;
    add(f->db, 1, 100);
    add(f->db, 2, 100);
    shub_agentdb_close(&f->db);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw,
                                  "DROP INDEX outbox_changed; DROP INDEX inbox_untaken;"
                                  "ALTER TABLE outbox DROP COLUMN changed;"
                                  "DROP INDEX inbox_keep; DROP INDEX outbox_settle;"
                                  "ALTER TABLE inbox DROP COLUMN keep_until;"
                                  "ALTER TABLE inbox DROP COLUMN purged_at;"
                                  "ALTER TABLE inbox DROP COLUMN event_hash;"
                                  "ALTER TABLE outbox DROP COLUMN dropped_at;"
                                  "ALTER TABLE outbox DROP COLUMN share_hash;"
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(raw);
    shub_err_t err;
    assert_int_equal(shub_agentdb_open(f->path, false, &f->db, &err), 0);
    int64_t c1 = cursor_of(f->db, 1), c2 = cursor_of(f->db, 2);
    assert_true(c1 > 0 && c2 > c1);
    add(f->db, 3, 100);
    assert_true(cursor_of(f->db, 3) > c2);
    shub_agentdb_close(&f->db);
    assert_int_equal(sqlite3_open(f->path, &raw), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(raw,
                                        "SELECT (SELECT count(*) FROM pragma_table_info('inbox')"
                                        " WHERE name IN ('keep_until', 'purged_at', "
                                        "'event_hash')), (SELECT user_version FROM "
                                        "pragma_user_version)",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 3);
    assert_int_equal(sqlite3_column_int(st, 1), 4);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    assert_int_equal(shub_agentdb_open(f->path, false, &f->db, &err), 0);
}

static void test_shub_agentdb_changed_sees_another_connections_commit(void **state)
{
    fixture_t *f = *state;
    shub_err_t err;
    bool changed = false;
    assert_int_equal(shub_agentdb_changed(f->db, &changed, &err), 0);
    assert_true(changed); /* the first call has no baseline */
    assert_int_equal(shub_agentdb_changed(f->db, &changed, &err), 0);
    assert_false(changed);
    add(f->db, 1, 100); /* our own commit does not count */
    assert_int_equal(shub_agentdb_changed(f->db, &changed, &err), 0);
    assert_false(changed);

    shub_agentdb_t *other = NULL;
    assert_int_equal(shub_agentdb_open(f->path, false, &other, &err), 0);
    add(other, 2, 100);
    shub_agentdb_close(&other);
    assert_int_equal(shub_agentdb_changed(f->db, &changed, &err), 0);
    assert_true(changed);
}

/* One writer of test_shub_agentdb_two_connections_write_at_once: its own
 * connection, WRITES inserts, and after each tenth a transaction marking
 * them sent, as the loop does beside the API's inserts. */
#define WRITES 300
typedef struct {
    const char *path;
    uint8_t who;
    int failures;
} writer_t;

static void *write_many(void *arg)
{
    writer_t *w = arg;
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    if (shub_agentdb_open(w->path, false, &db, &err) != 0) {
        w->failures = WRITES;
        return NULL;
    }
    shub_id_t sent[10];
    for (int i = 0; i < WRITES; i++) {
        shub_id_t id;
        memset(id.bytes, 0, sizeof id.bytes);
        id.bytes[0] = w->who;
        id.bytes[1] = (uint8_t)(i >> 8);
        id.bytes[2] = (uint8_t)i;
        if (shub_agentdb_outbox_add(db, &id, "marac.referral", "marac@coventry", share_bytes,
                                    sizeof share_bytes, 1000 + i, &err) != 0)
            w->failures++;
        sent[i % 10] = id;
        if (i % 10 == 9 && shub_agentdb_outbox_sent(db, sent, 10, 2000, 9000, &err) != 0)
            w->failures++;
    }
    shub_agentdb_close(&db);
    return NULL;
}

static void test_shub_agentdb_two_connections_write_at_once(void **state)
{
    fixture_t *f = *state;
    writer_t w[2] = {{.path = f->path, .who = 1}, {.path = f->path, .who = 2}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, write_many, &w[i]), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    assert_int_equal(w[0].failures, 0);
    assert_int_equal(w[1].failures, 0);
    shub_err_t err;
    uint64_t n = 0;
    assert_int_equal(shub_agentdb_outbox_count(f->db, SHUB_OUTBOX_PENDING, &n, &err), 0);
    assert_int_equal(n, 2 * WRITES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_shub_agentdb_open_missing_without_create_eio),
        T(test_shub_agentdb_open_unknown_schema_version_edb),
        T(test_shub_agentdb_open_out_of_memory_enomem_no_leak),
        T(test_shub_agentdb_outbox_add_then_list_returns_pending_row),
        T(test_shub_agentdb_outbox_add_same_id_twice_eexist),
        T(test_shub_agentdb_outbox_due_follows_session_and_retry_time),
        T(test_shub_agentdb_receipt_marks_receipted_and_stores_outcomes),
        T(test_shub_agentdb_receipt_unknown_id_enotfound_writes_nothing),
        T(test_shub_agentdb_receipt_outcome_only_moves_forward),
        T(test_shub_agentdb_outbox_fail_records_code_and_stops_resending),
        T(test_shub_agentdb_inbox_add_same_id_twice_stores_once),
        T(test_shub_agentdb_inbox_list_since_filters_by_received_time),
        T(test_shub_agentdb_inbox_add_without_event_einval),
        T(test_shub_agentdb_reopen_keeps_outbox_outcomes_and_inbox),
        T(test_shub_agentdb_changed_sees_another_connections_commit),
        T(test_shub_agentdb_change_cursor_moves_on_each_change_not_on_repeats),
        T(test_shub_agentdb_outbox_changes_lists_each_event_at_its_latest_change),
        T(test_shub_agentdb_inbox_take_once_and_list_after_a_seq),
        T(test_shub_agentdb_open_upgrades_version_2_in_place),
        T(test_shub_agentdb_two_connections_write_at_once),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
