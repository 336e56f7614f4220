/*
 * test_failover: an active broker and a standby on one PostgreSQL database,
 * real agents listing both endpoints, steady traffic, and the active broker
 * killed with SIGKILL at 20 points of it. Each time the standby must serve
 * (its endpoint bound, its ready file written) within 5 s of the kill, and
 * the killed one comes back as the next standby, as a service manager would
 * restart it (after the takeover: started at once, it could as well win the
 * lock itself, which would prove nothing about the standby). At the end, with every
 * outbox drained:
 *
 *   - lost: receipted (allowed) shares missing from their recipient's inbox: 0
 *   - duplicated: an event twice in an inbox, or decided twice by the
 *     brokers for one recipient: 0
 *   - the PostgreSQL log verifies, with the broker's key and with the
 *     checkpoints each agent witnessed, across every takeover.
 *
 * It prints the figures (attempts, takeover times, receipted, lost,
 * duplicated) and asserts the zeros. It needs the private cluster of the pg
 * fixture (tests/pg_cluster.sh, found through testdb.h) and is skipped,
 * saying so, without it.
 * SHUB_FAILOVER_ROUNDS changes the number of kills.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "testdb.h"
#include "sharehub/keys.h"
#include "sharehub/store.h"
#include "sharehub/time.h"

#define TAKEOVER_LIMIT_MS 5000
#define DRAIN_MS          90000

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"btp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east"}, /* a party of the fixture's other
                                                     agreement; runs no agent */
};
static const char *const agents[] = {"wmp", "btp", "marac-coventry", "idva-coventry"};
#define N_AGENTS (sizeof agents / sizeof agents[0])

typedef struct world {
    harness_t *h;
    char uri[1200];        /* the database: a schema of the test cluster */
    char endpoint[2][400]; /* the two brokers' slots */
    pid_t broker[2];
    char ready[2][400]; /* the ready file of the instance in each slot */
    int instance;
    pid_t agent[N_AGENTS];
    pid_t traffic;
    bool passed; /* else teardown shows the logs */
} world_t;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- PostgreSQL ------------------------------------------------------------- */

static PGconn *pg(const char *uri)
{
    PGconn *c = PQconnectdb(uri);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

static long pg_long(const char *uri, const char *sql)
{
    PGconn *c = pg(uri);
    PGresult *r = PQexec(c, sql);
    long v = -1;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = strtol(PQgetvalue(r, 0, 0), NULL, 10);
    else
        print_error("%s: %s", sql, PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(c);
    return v;
}

/* ---- processes ------------------------------------------------------------------ */

/* A broker in slot s (its endpoint), as instance n: its own log and ready file. */
static void broker_start(world_t *w, int s)
{
    char log[400], config[300], keys[300];
    int n = ++w->instance;
    snprintf(log, sizeof log, "%s/broker-%d.log", w->h->dir, n);
    snprintf(w->ready[s], sizeof w->ready[s], "%s/ready-%d", w->h->dir, n);
    snprintf(config, sizeof config, "%s", w->h->dir);
    snprintf(keys, sizeof keys, "%s/keys", w->h->dir);
    const char *argv[] = {harness_program("broker/sharehub-broker"),
                          "--config",
                          config,
                          "--db",
                          w->uri,
                          "--endpoint",
                          w->endpoint[s],
                          "--ready-file",
                          w->ready[s],
                          "--log-level",
                          "info",
                          NULL};
    w->broker[s] = harness_spawn(log, argv, NULL);
}

static bool wait_file(const char *path, int ms)
{
    for (int64_t until = now_ms() + ms; now_ms() < until; nap_ms(5))
        if (access(path, F_OK) == 0)
            return true;
    return false;
}

static bool wait_log(const world_t *w, int n, const char *needle, int ms)
{
    char log[400];
    snprintf(log, sizeof log, "%s/broker-%d.log", w->h->dir, n);
    for (int64_t until = now_ms() + ms; now_ms() < until; nap_ms(20))
        if (harness_file_lines(log, needle) > 0)
            return true;
    return false;
}

/* An agent that lists both brokers' endpoints and talks to whichever serves. */
static pid_t agent_start(const world_t *w, const char *org)
{
    const char *const brokers[] = {"--broker", w->endpoint[0], "--broker", w->endpoint[1],
                                   NULL};
    return harness_agent_start(w->h, org, brokers, NULL);
}

/* ---- traffic ------------------------------------------------------------------ */

static const char referral[] =
    "{\"event\": \"marac.referral\", \"occurred\": \"2026-07-01T10:00:00Z\",\n"
    " \"case\": \"WMP-2026-0001\", \"subject\": \"SUBJ-42\", \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"given\", \"to\": [\"marac@coventry\"],\n"
    " \"payload\": {\"victim\": {\"name\": \"Jane Example\", \"dob\": \"1990-04-01\"},\n"
    "             \"risk\": {\"dash_score\": 16}}}\n";
static const char notification[] =
    "{\"event\": \"idva.notification\", \"occurred\": \"2026-07-01T11:00:00Z\",\n"
    " \"case\": \"MARAC-COV-0001\", \"subject\": \"SUBJ-42\", \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"given\", \"to\": [\"idva@coventry\"],\n"
    " \"payload\": {\"victim\": {\"name\": \"Jane Example\"}, \"risk\": {\"level\": "
    "\"high\"}}}\n";

/* `sharehub-agent submit` of text into org's outbox, as a case system would. */
static int submit(const harness_t *h, const char *org, const char *text)
{
    char db[400];
    int in[2];
    snprintf(db, sizeof db, "%s/%s.db", h->dir, org);
    if (pipe(in) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_WRONLY);
        dup2(in[0], STDIN_FILENO);
        dup2(null, STDOUT_FILENO);
        close(in[1]);
        execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "submit",
              "--org", org, "--config", h->dir, "--db", db, "-", (char *)NULL);
        _exit(127);
    }
    close(in[0]);
    if (write(in[1], text, strlen(text)) < 0) {
        /* the child reports a short input */
    }
    close(in[1]);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static volatile sig_atomic_t traffic_stop;

static void on_term(int sig)
{
    (void)sig;
    traffic_stop = 1;
}

/* A child that keeps the partners sharing until SIGTERM: two police forces
 * refer to the MARAC, which notifies the IDVA service. */
static pid_t traffic_start(const harness_t *h)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGTERM, on_term);
        while (!traffic_stop) {
            if (submit(h, "wmp", referral) || submit(h, "btp", referral) ||
                submit(h, "marac-coventry", notification))
                _exit(1);
            nap_ms(30);
        }
        _exit(0);
    }
    return pid;
}

/* ---- the agents' stores ------------------------------------------------------ */

static long agent_long(const harness_t *h, const char *org, const char *sql)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", h->dir, org);
    return harness_file_long(path, sql);
}

/* Receipted allowed shares from sender to recipient missing from the
 * recipient's inbox. */
static long lost(const harness_t *h, const char *sender, const char *recipient)
{
    char sql[1200], path[400];
    snprintf(path, sizeof path, "%s/%s.db", h->dir, sender);
    sqlite3 *db = NULL;
    long v = -1;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    snprintf(sql, sizeof sql, "ATTACH '%s/%s.db' AS r", h->dir, recipient);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM outcomes o WHERE o.recipient = '%s'"
             " AND o.outcome NOT IN ('denied', 'dead')"
             " AND NOT EXISTS (SELECT 1 FROM r.inbox i WHERE i.id = o.id)",
             recipient);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        v = (long)sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Every checkpoint an agent witnessed, as verify takes them. */
static size_t witnessed(const harness_t *h, shub_witnessed_t *out, size_t max)
{
    size_t n = 0;
    for (size_t a = 0; a < N_AGENTS; a++) {
        char path[400];
        snprintf(path, sizeof path, "%s/%s.db", h->dir, agents[a]);
        sqlite3 *db = harness_sqlite_open(path);
        sqlite3_stmt *st = NULL;
        if (db && sqlite3_prepare_v2(db,
                                     "SELECT seq, head, at, key, sig FROM checkpoints"
                                     " WHERE state = 'witnessed'",
                                     -1, &st, NULL) == SQLITE_OK) {
            while (n < max && sqlite3_step(st) == SQLITE_ROW) {
                shub_witnessed_t *w = &out[n];
                memset(w, 0, sizeof *w);
                if (sqlite3_column_bytes(st, 1) != 32 ||
                    sqlite3_column_bytes(st, 3) != 32 ||
                    sqlite3_column_bytes(st, 4) != 64)
                    continue;
                snprintf(w->org, sizeof w->org, "%s", agents[a]);
                snprintf(w->source, sizeof w->source, "%.200s", path);
                w->cp.seq = sqlite3_column_int64(st, 0);
                memcpy(w->cp.head, sqlite3_column_blob(st, 1), 32);
                w->cp.at_ms = sqlite3_column_int64(st, 2);
                memcpy(w->cp.key, sqlite3_column_blob(st, 3), 32);
                memcpy(w->cp.sig, sqlite3_column_blob(st, 4), 64);
                n++;
            }
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    return n;
}

/* ---- set-up ------------------------------------------------------------------ */

static int setup(void **state)
{
    if (!testdb_pg()) { /* run by ctest with SHUB_TEST_DB=postgresql */
        fprintf(stderr, "SKIP: the failover test runs on PostgreSQL only "
                        "(SHUB_TEST_DB=postgresql)\n");
        exit(77);
    }
    world_t *w = calloc(1, sizeof *w);
    if (!w)
        return -1;
    w->h = harness_new(orgs, sizeof orgs / sizeof orgs[0],
                       SHUB_FIXTURES "/broker/agreements");
    if (!w->h)
        return -1;
    testdb_new(w->h->dir, "broker.db", w->uri, sizeof w->uri);
    for (int s = 0; s < 2; s++)
        snprintf(w->endpoint[s], sizeof w->endpoint[s], "ipc://%s/broker-%c.ipc",
                 w->h->dir, 'a' + s);
    *state = w;
    return 0;
}

/* The end of every log in the test's directory, for a failure's reader. */
static void show_logs(const world_t *w)
{
    char cmd[600];
    snprintf(cmd, sizeof cmd, "tail -n 15 '%s'/*.log >&2", w->h->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "(no logs)\n");
}

static int teardown(void **state)
{
    world_t *w = *state;
    if (!w->passed)
        show_logs(w);
    if (w->traffic)
        harness_proc_stop(w->traffic, SIGTERM);
    for (size_t a = 0; a < N_AGENTS; a++)
        if (w->agent[a])
            harness_proc_stop(w->agent[a], SIGKILL);
    for (int s = 0; s < 2; s++)
        if (w->broker[s])
            harness_proc_stop(w->broker[s], SIGKILL);
    testdb_drop(w->uri);
    harness_destroy(&w->h);
    free(w);
    return 0;
}

/* What the agents' stores say once every outbox has drained (asserted
 * within DRAIN_MS): shares receipted as allowed, delivered, lost (receipted,
 * not in the recipient's inbox), duplicated in an inbox or in the brokers'
 * decisions, and given up as dead. */
typedef struct figures {
    long receipted, inbox, lost, dup_inbox, dup_decided, dead;
} figures_t;

static figures_t drain(world_t *w)
{
    figures_t f = {0};
    const char *senders[] = {"wmp", "btp", "marac-coventry"};
    long pending = -1;
    for (int64_t until = now_ms() + DRAIN_MS; now_ms() < until; nap_ms(200)) {
        pending = 0;
        for (size_t i = 0; i < 3; i++)
            pending +=
                agent_long(w->h, senders[i],
                           "SELECT count(*) FROM outbox WHERE state <> 'receipted'") +
                agent_long(w->h, senders[i],
                           "SELECT count(*) FROM outcomes WHERE outcome NOT IN"
                           " ('acknowledged', 'denied', 'dead')");
        if (pending == 0)
            break;
    }
    assert_int_equal(pending, 0);

    for (size_t i = 0; i < 3; i++) {
        f.receipted += agent_long(w->h, senders[i],
                                  "SELECT count(*) FROM outcomes WHERE outcome NOT IN"
                                  " ('denied', 'dead')");
        f.dead += agent_long(w->h, senders[i],
                             "SELECT count(*) FROM outcomes WHERE outcome = 'dead'");
    }
    f.lost = lost(w->h, "wmp", "marac-coventry") + lost(w->h, "btp", "marac-coventry") +
             lost(w->h, "marac-coventry", "idva-coventry");
    for (size_t a = 2; a < N_AGENTS; a++)
        f.dup_inbox += agent_long(w->h, agents[a],
                                  "SELECT count(*) - count(DISTINCT id) FROM inbox");
    f.dup_decided =
        pg_long(w->uri, "SELECT count(*) FROM (SELECT event_id, recipient FROM"
                        " audit_t WHERE action = 'decide' GROUP BY event_id,"
                        " recipient HAVING count(*) > 1) d");
    f.inbox = agent_long(w->h, "marac-coventry", "SELECT count(*) FROM inbox") +
              agent_long(w->h, "idva-coventry", "SELECT count(*) FROM inbox");

    return f;
}

/* The first broker active, the second waiting for the lock, every agent
 * listing both, and the partners sharing. */
static void world_start(world_t *w)
{
    broker_start(w, 0);
    assert_true(wait_file(w->ready[0], 20000));
    broker_start(w, 1);
    assert_true(wait_log(w, w->instance, "standby: waiting", 10000));
    for (size_t a = 0; a < N_AGENTS; a++)
        w->agent[a] = agent_start(w, agents[a]);
    w->traffic = traffic_start(w->h);
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void test_failover_kill_active_20_times_standby_serves_nothing_lost(void **state)
{
    world_t *w = *state;
    int rounds =
        getenv("SHUB_FAILOVER_ROUNDS") ? atoi(getenv("SHUB_FAILOVER_ROUNDS")) : 20;
    long takeover[64];
    if (rounds < 1 || rounds > 64)
        rounds = 20;

    world_start(w);

    int active = 0;
    for (int r = 0; r < rounds; r++) {
        nap_ms(400 + (r * 137) % 900); /* kill at a different point of the traffic */
        int64_t t0 = now_ms();
        assert_int_equal(harness_proc_stop(w->broker[active], SIGKILL), 128 + SIGKILL);
        int standby = 1 - active;
        bool served = wait_file(w->ready[standby], 20000);
        takeover[r] = (long)(now_ms() - t0);
        if (!served)
            fail_msg("round %d: the standby did not take over within 20 s", r + 1);
        print_message("failover %d: standby serving %ld ms after kill -9\n", r + 1,
                      takeover[r]);
        /* The killed one comes back, as its service manager restarts it once
         * the other serves, and becomes the next standby. */
        broker_start(w, active);
        assert_true(wait_log(w, w->instance, "standby: waiting", 10000));
        active = standby;
    }

    /* Traffic stops; everything still in flight drains through the last
     * active broker. */
    assert_int_equal(harness_proc_stop(w->traffic, SIGTERM), 0);
    w->traffic = 0;
    figures_t fig = drain(w);

    /* A clean stop signs the tail; the standby stops where it waits. */
    assert_int_equal(harness_proc_stop(w->broker[active], SIGTERM), 0);
    w->broker[active] = 0;
    assert_int_equal(harness_proc_stop(w->broker[1 - active], SIGTERM), 0);
    w->broker[1 - active] = 0;
    for (size_t a = 0; a < N_AGENTS; a++) {
        assert_int_equal(harness_proc_stop(w->agent[a], SIGTERM), 0);
        w->agent[a] = 0;
    }

    static shub_witnessed_t wits[4096];
    size_t n_wits = witnessed(w->h, wits, sizeof wits / sizeof wits[0]);
    uint8_t pk[32];
    char key[400];
    shub_err_t err;
    snprintf(key, sizeof key, "%s/keys/checkpoint.pub", w->h->dir);
    assert_int_equal(shub_keys_read_hex(key, pk, 32, false, &err), 0);
    shub_verify_opts_t vo = {.expected_key = pk,
                             .witnessed = wits,
                             .n_witnessed = n_wits,
                             .now_ms = shub_now_ms()};
    shub_verify_result_t res;
    assert_int_equal(shub_store_verify(w->uri, &vo, &res, &err), 0);
    long countersigned = pg_long(w->uri, "SELECT count(*) FROM witnesses");

    qsort(takeover, (size_t)rounds, sizeof takeover[0], cmp_long);
    print_message("failover: attempts=%d takeover_ms min=%ld median=%ld max=%ld "
                  "receipted=%ld delivered=%ld lost=%ld duplicated=%ld (inbox) %ld "
                  "(decisions) dead=%ld rows=%lld checkpoints=%lld witnessed=%lld "
                  "(of %zu held) countersignatures=%ld verify=%s%s\n",
                  rounds, takeover[0], takeover[rounds / 2], takeover[rounds - 1],
                  fig.receipted, fig.inbox, fig.lost, fig.dup_inbox, fig.dup_decided,
                  fig.dead,
                  (long long)res.rows, (long long)res.checkpoints,
                  (long long)res.witnessed, n_wits, countersigned,
                  res.ok ? "ok" : "FAILED ", res.problem);
    assert_true(takeover[rounds - 1] < TAKEOVER_LIMIT_MS);
    assert_true(fig.receipted > rounds); /* traffic ran throughout */
    assert_int_equal(fig.lost, 0);
    assert_int_equal(fig.dup_inbox, 0);
    assert_int_equal(fig.dup_decided, 0);
    assert_int_equal(fig.dead, 0);
    assert_int_equal(fig.inbox, fig.receipted);
    assert_true(res.ok);
    assert_true(res.witnessed > 0);
    assert_true(countersigned > 0);

    /* The audit tool says the same, from its command line, with every
     * agent's store as a witness. */
    char cmd[4800];
    int n = snprintf(cmd, sizeof cmd, "'%s' verify --db '%s' --key '%s'",
                     harness_program("broker/sharehub-audit"), w->uri, key);
    for (size_t a = 0; a < N_AGENTS; a++)
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --witness '%s/%s.db'", w->h->dir,
                      agents[a]);
    snprintf(cmd + n, sizeof cmd - (size_t)n, " >/dev/null");
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd,
             "'%s' log --db '%s' --recipient idva-coventry --limit 5 >/dev/null &&"
             " '%s' report --db '%s' --format json >/dev/null",
             harness_program("broker/sharehub-audit"), w->uri,
             harness_program("broker/sharehub-audit"), w->uri);
    assert_int_equal(system(cmd), 0);
    w->passed = true;
}

/* The active broker's database session is ended under it (a network that
 * failed between it and the database, as the server sees it): the lock
 * goes with the session, the standby takes over, and the old broker, whose
 * next commit fails, must not reconnect and write beside it: it exits 69.
 * Nothing receipted is lost. */
static void test_failover_session_lost_broker_exits_69_standby_serves(void **state)
{
    world_t *w = *state;
    world_start(w);
    nap_ms(1500);

    char sql[300];
    snprintf(sql, sizeof sql,
             "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
             " WHERE application_name LIKE 'sharehub-broker pid %ld on %%'",
             (long)w->broker[0]);
    int64_t t0 = now_ms();
    assert_int_equal(pg_long(w->uri, sql), 1); /* the writing session alone */
    assert_true(wait_file(w->ready[1], 5000));
    long takeover = (long)(now_ms() - t0);
    int status = -1;
    for (int64_t until = now_ms() + 20000; now_ms() < until; nap_ms(20))
        if (waitpid(w->broker[0], &status, WNOHANG) == w->broker[0])
            break;
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 69);
    long stopped = (long)(now_ms() - t0);
    w->broker[0] = 0;
    char log[400];
    snprintf(log, sizeof log, "%s/broker-1.log", w->h->dir);
    assert_true(harness_file_lines(log, "stopping: the database lock is lost") > 0);

    nap_ms(1000);
    assert_int_equal(harness_proc_stop(w->traffic, SIGTERM), 0);
    w->traffic = 0;
    figures_t fig = drain(w);
    print_message("session lost: standby serving %ld ms after, the old broker exited 69 "
                  "%ld ms after; receipted=%ld lost=%ld duplicated=%ld (inbox) %ld "
                  "(decisions)\n",
                  takeover, stopped, fig.receipted, fig.lost, fig.dup_inbox,
                  fig.dup_decided);
    assert_int_equal(fig.lost, 0);
    assert_int_equal(fig.dup_inbox, 0);
    assert_int_equal(fig.dup_decided, 0);
    assert_int_equal(fig.inbox, fig.receipted);
    assert_int_equal(harness_proc_stop(w->broker[1], SIGTERM), 0);
    w->broker[1] = 0;
    shub_verify_result_t res;
    shub_err_t err;
    shub_verify_opts_t vo = {.now_ms = shub_now_ms()};
    assert_int_equal(shub_store_verify(w->uri, &vo, &res, &err), 0);
    assert_true(res.ok);
    w->passed = true;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_failover_kill_active_20_times_standby_serves_nothing_lost, setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_failover_session_lost_broker_exits_69_standby_serves, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
