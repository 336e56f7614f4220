/*
 * Process tests for sharehub-agent: a real broker (harness.h), real agent
 * processes for wmp (police) and marac-coventry, real SQLite files. Each
 * test starts its own broker from tests/fixtures/broker/agreements (the
 * test-marac agreement lets police refer to the MARAC of the victim's area
 * when the DASH score is 14 or more), and checks the results in the files:
 * the broker's audit log and deliveries, and each agent's outbox and inbox.
 *
 * Waits are on conditions in those files, with deadlines, never blind sleeps
 * (except a short pause that lets a running agent try, and fail, to reach a
 * broker that is down).
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 20000

/* The broker fixture's agreements name these organisations; only wmp and
 * marac-coventry run agents here. */
static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int setup(void **state)
{
    harness_t *h = harness_new(orgs, sizeof orgs / sizeof orgs[0],
                               SHUB_FIXTURES "/broker/agreements");
    if (!h || harness_start(h) != 0) {
        if (h)
            fprintf(stderr, "broker did not start; log in %s\n", h->log);
        harness_destroy(&h);
        return -1;
    }
    *state = h;
    return 0;
}

static int teardown(void **state)
{
    harness_t *h = *state;
    harness_destroy(&h);
    return 0;
}

static void path_in(const harness_t *h, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", h->dir, name);
}

/* ---- agent processes -------------------------------------------------- */

/* Starts `sharehub-agent run` for org (harness_agent_start); crash_hook sets
 * SHUB_AGENT_CRASH_AFTER_COMMIT=1. */
static pid_t agent_start_with(const harness_t *h, const char *org, bool crash_hook,
                              const char *const *extra)
{
    static const char *const crash[] = {"SHUB_AGENT_CRASH_AFTER_COMMIT=1", NULL};
    return harness_agent_start(h, org, extra, crash_hook ? crash : NULL);
}

static pid_t agent_start(const harness_t *h, const char *org, bool crash_hook,
                         const char *on_receive)
{
    const char *extra[] = {"--on-receive", on_receive, NULL};
    return agent_start_with(h, org, crash_hook, on_receive ? extra : NULL);
}

/* Stops an agent with sig and returns its exit status (128+signal if killed). */
static int agent_stop(pid_t pid, int sig)
{
    return harness_proc_stop(pid, sig);
}

/* Waits up to WAIT_MS for the agent to exit by itself; its status, or -1. */
static int agent_wait_exit(pid_t pid)
{
    return harness_proc_wait(pid, WAIT_MS);
}

/* Runs sharehub-agent with args (NULL-terminated) and `input` on stdin;
 * returns the exit status and fills out/err with stdout/stderr. */
static int agent_cmd(const harness_t *h, const char *input, char *out, size_t out_size,
                     char *err, size_t err_size, const char *arg0, ...)
{
    char in_path[400], out_path[400], err_path[400];
    path_in(h, "cmd.in", in_path, sizeof in_path);
    path_in(h, "cmd.out", out_path, sizeof out_path);
    path_in(h, "cmd.err", err_path, sizeof err_path);
    FILE *f = fopen(in_path, "w");
    assert_non_null(f);
    fputs(input ? input : "", f);
    fclose(f);

    const char *argv[32];
    int argc = 0;
    argv[argc++] = "sharehub-agent";
    va_list ap;
    va_start(ap, arg0);
    for (const char *a = arg0; a && argc < 31; a = va_arg(ap, const char *))
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open(in_path, O_RDONLY),
            o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, STDIN_FILENO);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(harness_program("agents/sharehub-agent"), (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const char *paths[2] = {out_path, err_path};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {out_size, err_size};
    for (int i = 0; i < 2; i++) {
        if (!bufs[i])
            continue;
        f = fopen(paths[i], "r");
        size_t n = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the agents' stores ------------------------------------------------ */

/* `SELECT count(*) FROM <sql>` on DIR/ORG.db; -1 if the file or table is not
 * there yet. */
static long agent_count(const harness_t *h, const char *org, const char *sql)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", h->dir, org);
    return harness_file_count(path, sql);
}

/* Waits until agent_count(org, sql) == want; returns the last count seen. */
static long wait_agent_count(const harness_t *h, const char *org, const char *sql,
                             long want)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s.db", h->dir, org);
    return harness_file_wait_count(path, sql, want, WAIT_MS);
}

static long wait_broker_count(const harness_t *h, const char *sql, long want)
{
    long n = -1;
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        if ((n = harness_count(h, sql)) == want)
            return n;
        nap_ms(20);
    }
    return n;
}

/* A referral as a partner would submit it: DASH 16, to the MARAC of the
 * victim's area; the address and children are not in the agreement. */
static const char referral[] =
    "{\"event\": \"marac.referral\", \"occurred\": \"2026-07-01T10:00:00Z\",\n"
    " \"case\": \"WMP-2026-0001\", \"subject\": \"SUBJ-42\", \"area\": \"coventry\",\n"
    " \"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\",\n"
    " \"consent\": \"given\", \"to\": [\"marac@coventry\"],\n"
    " \"payload\": {\"victim\": {\"name\": \"Jane Example\", \"dob\": \"1990-04-01\",\n"
    "                         \"address\": {\"postcode\": \"CV1 2AB\"}},\n"
    "             \"risk\": {\"dash_score\": 16},\n"
    "             \"incident\": {\"summary\": \"Assault at home address.\"},\n"
    "             \"children\": [{\"name\": \"Child A\"}]}}\n";

/* Submits the referral to wmp's outbox through the CLI; checks it printed an id. */
static void submit_referral(const harness_t *h)
{
    char db[400], out[256], err[1024];
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    int rc = agent_cmd(h, referral, out, sizeof out, err, sizeof err, "submit", "--org",
                       "wmp", "--config", h->dir, "--db", db, "-", NULL);
    if (rc != 0)
        fprintf(stderr, "submit: %s", err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out), 37); /* an id and a newline */
    assert_int_equal(out[8], '-');
    assert_int_equal(out[14], '7'); /* UUIDv7 */
}

/* ---- the case system's hook ------------------------------------------------ */

/* A hook that keeps failing is run again after a backoff and, after
 * --hook-attempts runs, marked dead in the inbox: the event stays, the
 * broker's copy was acknowledged, and the log says why. */
static void test_agent_failing_hook_retried_then_dead(void **state)
{
    harness_t *h = *state;
    char count_file[400], hook_cmd[600];
    path_in(h, "runs.txt", count_file, sizeof count_file);
    snprintf(hook_cmd, sizeof hook_cmd, "echo run >> '%s'; exit 3", count_file);
    const char *extra[] = {"--on-receive", hook_cmd, "--hook-attempts", "2", NULL};
    pid_t police = agent_start(h, "wmp", false, NULL);
    pid_t marac = agent_start_with(h, "marac-coventry", false, extra);
    submit_referral(h);
    assert_int_equal(wait_agent_count(h, "marac-coventry", "inbox", 1), 1);
    assert_int_equal(
        wait_agent_count(h, "wmp", "outcomes WHERE outcome = 'acknowledged'", 1), 1);
    assert_int_equal(wait_agent_count(h, "marac-coventry",
                                      "inbox WHERE hook = 'dead' AND hook_attempts = 2", 1),
                     1);
    nap_ms(1500); /* no third run */
    FILE *f = fopen(count_file, "r");
    assert_non_null(f);
    char line[64];
    int runs = 0;
    while (fgets(line, sizeof line, f))
        runs++;
    fclose(f);
    assert_int_equal(runs, 2);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);
    assert_int_equal(agent_stop(police, SIGTERM), 0);
}

/* ---- the broker goes away mid-run ---------------------------------------- */

static void test_agent_broker_lost_mid_run_sends_everything_once(void **state)
{
    harness_t *h = *state;
    char hook_out[400], hook_cmd[600];
    path_in(h, "hook.jsonl", hook_out, sizeof hook_out);
    snprintf(hook_cmd, sizeof hook_cmd, "cat >> '%s'", hook_out);
    pid_t police = agent_start(h, "wmp", false, NULL);
    pid_t marac = agent_start(h, "marac-coventry", false, hook_cmd);

    for (int i = 0; i < 3; i++)
        submit_referral(h);
    assert_int_equal(wait_agent_count(h, "marac-coventry", "inbox", 3), 3);
    assert_int_equal(
        wait_agent_count(h, "wmp", "outcomes WHERE outcome = 'acknowledged'", 3), 3);

    /* The broker dies without a goodbye; three more events are accepted
     * meanwhile, and the agent tries, and fails, to send them. */
    assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
    for (int i = 0; i < 3; i++)
        submit_referral(h);
    nap_ms(1500);
    assert_int_equal(agent_count(h, "wmp", "outbox WHERE state = 'pending'"), 3);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 3);

    assert_int_equal(harness_start(h), 0);
    assert_int_equal(wait_agent_count(h, "marac-coventry", "inbox", 6), 6);
    assert_int_equal(
        wait_agent_count(h, "wmp", "outcomes WHERE outcome = 'acknowledged'", 6), 6);
    assert_int_equal(agent_count(h, "wmp", "outbox WHERE state = 'receipted'"), 6);

    /* Exactly once at the broker: one decision, one delivery, one ACK per event. */
    assert_int_equal(harness_count(h, "events"), 6);
    assert_int_equal(harness_count(h,
                                   "audit WHERE action = 'decide' AND decision = 'allow' "
                                   "AND event_type = 'marac.referral'"),
                     6);
    assert_int_equal(harness_count(h, "audit WHERE action = 'ack'"), 6);
    assert_int_equal(harness_count(h, "deliveries WHERE recipient = 'marac-coventry' AND "
                                      "state = 'acknowledged'"),
                     6);
    assert_int_equal(harness_count(h, "deliveries"), 6);
    /* ... and in the recipient's inbox, as the broker minimised it. */
    assert_int_equal(agent_count(h, "marac-coventry",
                                 "inbox WHERE sender = 'wmp' AND "
                                 "agreement = 'test-marac' AND "
                                 "version = 2 AND flow = 'referral'"),
                     6);

    /* --on-receive ran once per event, with the event as JSON on stdin. */
    char line[8192];
    int lines = 0;
    for (int waited = 0; lines < 6 && waited < WAIT_MS; waited += 20) {
        FILE *f = fopen(hook_out, "r");
        lines = 0;
        while (f && fgets(line, sizeof line, f)) {
            assert_non_null(strstr(line, "\"event\":\"marac.referral\""));
            assert_non_null(strstr(line, "\"from\":\"wmp\",\"agreement\":\"test-marac\","
                                         "\"version\":2,\"flow\":\"referral\""));
            assert_non_null(strstr(line, "\"victim\":{\"name\":\"Jane Example\""));
            assert_null(strstr(line, "CV1 2AB")); /* stripped by the broker */
            assert_null(strstr(line, "Child A"));
            lines++;
        }
        if (f)
            fclose(f);
        if (lines < 6)
            nap_ms(20);
    }
    assert_int_equal(lines, 6);

    /* The listings. */
    char out[16384], err[1024], db[400];
    snprintf(db, sizeof db, "%s/marac-coventry.db", h->dir);
    assert_int_equal(agent_cmd(h, NULL, out, sizeof out, err, sizeof err, "inbox",
                               "--org", "marac-coventry", "--db", db, "--format", "json",
                               NULL),
                     0);
    int n = 0;
    for (const char *p = out; (p = strstr(p, "\"received\":")); p++)
        n++;
    assert_int_equal(n, 6);
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    assert_int_equal(agent_cmd(h, NULL, out, sizeof out, err, sizeof err, "outbox",
                               "--org", "wmp", "--db", db, NULL),
                     0);
    n = 0;
    for (const char *p = out; (p = strstr(p, "-> marac-coventry")); p++)
        n++;
    assert_int_equal(n, 6);
    assert_non_null(strstr(out, "acknowledged  [test-marac v2 referral]"));

    assert_int_equal(agent_stop(police, SIGTERM), 0);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);
}

static char *edited(const char *from, const char *to);
static bool file_has(const char *path, const char *needle);

/* ---- --until-done ------------------------------------------------------- */

/* Runs wmp's agent with --until-done against the broker, its log in
 * wmp.log; its exit status, or -1 if it did not exit within WAIT_MS. */
static int wmp_until_done(const harness_t *h)
{
    char db[400], log[400];
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    snprintf(log, sizeof log, "%s/wmp.log", h->dir);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(fd, STDERR_FILENO);
        execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "run", "--org",
              "wmp", "--config", h->dir, "--broker", h->endpoint, "--db", db,
              "--until-done", (char *)NULL);
        _exit(127);
    }
    return agent_wait_exit(pid);
}

static void test_agent_until_done_exits_0_once_everything_is_receipted(void **state)
{
    harness_t *h = *state;
    submit_referral(h); /* queued before the agent runs: picked up at start */
    /* One the broker refuses for good (future-event): failed, not pending. */
    char *future = edited("2026-07-01T10:00:00Z", "2099-07-01T10:00:00Z");
    char db[400], out[4096], err[1024];
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    assert_int_equal(agent_cmd(h, future, out, sizeof out, err, sizeof err, "submit",
                               "--org", "wmp", "--config", h->dir, "--db", db, NULL),
                     0);
    free(future);
    assert_int_equal(wmp_until_done(h), 0);
    /* No MARAC agent runs: the broker holds the referral for it, and says so. */
    assert_int_equal(agent_count(h, "wmp", "outbox WHERE state = 'receipted'"), 1);
    assert_int_equal(agent_count(h, "wmp",
                                 "outcomes WHERE outcome = 'queued' AND "
                                 "recipient = 'marac-coventry'"),
                     1);
    assert_int_equal(harness_count(h, "deliveries WHERE state = 'pending'"), 1);
    assert_int_equal(agent_count(h, "wmp",
                                 "outbox WHERE state = 'failed' AND "
                                 "error_code = 'future-event' AND attempts = 1"),
                     1);
    assert_int_equal(harness_count(h, "events"), 1);
    assert_int_equal(agent_cmd(h, NULL, out, sizeof out, err, sizeof err, "outbox",
                               "--org", "wmp", "--db", db, NULL),
                     0);
    assert_non_null(strstr(out, "\n    failed: future-event: SHARE.occurred: "));
    assert_non_null(strstr(out, "\n    -> marac-coventry               queued  "
                                "[test-marac v2 referral]\n"));
}

/* ---- outbox rows that could never be settled -------------------------------- */

static void edit_store(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_changes(db), 1);
    sqlite3_close(db);
}

/* A store edited by hand can hold an outbox row whose SHARE is for another
 * event, or one that does not decode. The broker's receipt names the event
 * inside, so neither could ever be settled: the agent fails both for good,
 * with the reason, never sends them, and sends the rest; --until-done then
 * exits (it waited for ever). */
static void test_agent_fails_outbox_rows_it_could_never_settle(void **state)
{
    harness_t *h = *state;
    char db[400], log[400], out[4096], err[1024];
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    snprintf(log, sizeof log, "%s/wmp.log", h->dir);
    submit_referral(h);
    for (int hour = 11; hour <= 12; hour++) {
        char when[32];
        snprintf(when, sizeof when, "2026-07-01T%02d:00:00Z", hour);
        char *other = edited("2026-07-01T10:00:00Z", when);
        assert_int_equal(agent_cmd(h, other, out, sizeof out, err, sizeof err, "submit",
                                   "--org", "wmp", "--config", h->dir, "--db", db, NULL),
                         0);
        free(other);
    }
    edit_store(db, "UPDATE outbox SET id = randomblob(16) WHERE seq = 2");
    edit_store(db, "UPDATE outbox SET share = X'92C1C1' WHERE seq = 3");
    assert_int_equal(wmp_until_done(h), 0);
    assert_int_equal(agent_count(h, "wmp", "outbox WHERE state = 'receipted'"), 1);
    assert_int_equal(agent_count(h, "wmp",
                                 "outbox WHERE seq = 2 AND state = 'failed' AND "
                                 "error_code = 'bad-value' AND attempts = 0 AND "
                                 "error LIKE 'the stored SHARE is for event %'"),
                     1);
    assert_int_equal(agent_count(h, "wmp",
                                 "outbox WHERE seq = 3 AND state = 'failed' AND "
                                 "error_code = 'malformed' AND attempts = 0"),
                     1);
    assert_int_equal(harness_count(h, "events"), 1); /* the broker saw only the good one */
    assert_true(file_has(log, "code=bad-value: the stored SHARE is for event "));
    assert_true(file_has(log, "code=malformed: the stored SHARE does not decode: "));
}

/* ---- the recipient dies between its inbox commit and its ACK ------------- */

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[4096];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static void test_agent_killed_between_commit_and_ack_keeps_event_once(void **state)
{
    harness_t *h = *state;
    pid_t police = agent_start(h, "wmp", false, NULL);
    pid_t marac = agent_start(h, "marac-coventry", true, NULL);
    submit_referral(h);

    /* The test hook: exit 9 right after the commit, before the ACK. */
    assert_int_equal(agent_wait_exit(marac), 9);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 1);
    assert_int_equal(harness_count(h, "deliveries WHERE state = 'pending'"), 1);
    assert_int_equal(harness_count(h, "audit WHERE action = 'ack'"), 0);

    /* Back again: the broker redelivers, the inbox keeps one copy, the ACK lands. */
    marac = agent_start(h, "marac-coventry", false, NULL);
    assert_int_equal(wait_broker_count(h, "deliveries WHERE state = 'acknowledged'", 1),
                     1);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 1);
    assert_int_equal(harness_count(h, "audit WHERE action = 'ack'"), 1);
    assert_int_equal(
        wait_agent_count(h, "wmp", "outcomes WHERE outcome = 'acknowledged'", 1), 1);
    char log[400];
    path_in(h, "marac-coventry.log", log, sizeof log);
    assert_true(file_has(log, "already in the inbox; acknowledged again"));

    assert_int_equal(agent_stop(police, SIGTERM), 0);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);
}

/* ---- submit refuses bad input, names it, queues nothing ----------------- */

/* Submits text to wmp's outbox; checks exit code and exact stderr, and that
 * nothing was queued. */
static void submit_refused(const harness_t *h, const char *text, int code,
                           const char *message)
{
    char db[400], out[256], err[2048];
    snprintf(db, sizeof db, "%s/wmp.db", h->dir);
    int rc = agent_cmd(h, text, out, sizeof out, err, sizeof err, "submit", "--org",
                       "wmp", "--config", h->dir, "--db", db, NULL);
    assert_int_equal(rc, code);
    assert_string_equal(err, message);
    assert_string_equal(out, "");
    assert_int_equal(agent_count(h, "wmp", "outbox"), 0);
}

/* The referral with `from` replaced by `to` (first occurrence). */
static char *edited(const char *from, const char *to)
{
    const char *at = strstr(referral, from);
    assert_non_null(at);
    size_t n = strlen(referral) - strlen(from) + strlen(to) + 1;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "%.*s%s%s", (int)(at - referral), referral, to, at + strlen(from));
    return out;
}

static void test_agent_submit_malformed_json_exits_65_nothing_queued(void **state)
{
    harness_t *h = *state;
    char *t = edited("\"area\": \"coventry\"", "\"area\" \"coventry\"");
    submit_refused(h, t, 65,
                   "submit: line 2 column 65: ':' expected near '\"coventry\"'\n");
    free(t);
}

static void test_agent_submit_missing_field_exits_65_nothing_queued(void **state)
{
    harness_t *h = *state;
    char *t = edited(" \"purpose\": \"marac-risk-management\",", "");
    submit_refused(h, t, 65, "submit: purpose: required field missing\n");
    free(t);
}

static void test_agent_submit_wrong_type_exits_65_nothing_queued(void **state)
{
    harness_t *h = *state;
    char *t = edited("[\"marac@coventry\"]", "\"marac@coventry\"");
    submit_refused(h, t, 65, "submit: to: expected an array of recipients\n");
    free(t);
    t = edited("[\"marac@coventry\"]", "[\"marac@coventry\", \"MARAC in Coventry\"]");
    submit_refused(h, t, 65, "submit: to[1]: not an org id, @area or kind@area\n");
    free(t);
}

static void test_agent_submit_oversized_value_exits_65_nothing_queued(void **state)
{
    harness_t *h = *state;
    char big[200 + 1];
    memset(big, 'W', 200);
    big[200] = '\0';
    char *t = edited("WMP-2026-0001", big);
    submit_refused(h, t, 65, "submit: case: text of 200 bytes exceeds limit 128\n");
    free(t);
}

/* Times before 2000 (seconds where ms were meant) and areas orgs.yaml does
 * not have are mistakes the broker would take or answer vaguely: refused
 * here, naming the field. */
static void test_agent_submit_implausible_time_or_unknown_area_exits_65(void **state)
{
    harness_t *h = *state;
    char *t = edited("\"2026-07-01T10:00:00Z\"", "12345");
    submit_refused(
        h, t, 65,
        "submit: occurred: 1970-01-01T00:00:12.345Z is before 2000-01-01: give "
        "an RFC 3339 time, or ms (not seconds) since 1970\n");
    free(t);
    t = edited("\"area\": \"coventry\"", "\"area\": \"coventy\"");
    submit_refused(h, t, 65,
                   "submit: area: 'coventy' is not an area in orgs.yaml: no organisation "
                   "serves it\n");
    free(t);
    t = edited("\"marac@coventry\"", "\"marac-coventry\", \"idva@walsal\"");
    submit_refused(h, t, 65,
                   "submit: to[1]: 'walsal' is not an area in orgs.yaml: no organisation "
                   "serves it\n");
    free(t);
}

static void test_agent_submit_unknown_org_in_config_exits_78(void **state)
{
    harness_t *h = *state;
    char db[400], out[256], err[2048], expect[1024];
    snprintf(db, sizeof db, "%s/x.db", h->dir);
    int rc = agent_cmd(h, referral, out, sizeof out, err, sizeof err, "submit", "--org",
                       "nobody", "--config", h->dir, "--db", db, NULL);
    assert_int_equal(rc, 78);
    snprintf(expect, sizeof expect,
             "submit: organisation 'nobody' is not in '%s/orgs.yaml'\n", h->dir);
    assert_string_equal(err, expect);
    assert_int_equal(access(db, F_OK), -1);
}

static void test_agent_run_without_org_exits_64(void **state)
{
    harness_t *h = *state;
    char out[4096], err[4096];
    assert_int_equal(agent_cmd(h, NULL, out, sizeof out, err, sizeof err, "run",
                               "--config", h->dir, NULL),
                     64);
    assert_non_null(strstr(err, "sharehub-agent: --org ID is required\n"
                                "usage: sharehub-agent run --org ID [--config DIR]"));
    assert_int_equal(agent_cmd(h, NULL, out, sizeof out, err, sizeof err, "--help", NULL),
                     0);
    assert_non_null(strstr(out, "usage: sharehub-agent [--log-level L] COMMAND"));
}

static void test_agent_submits_racing_on_a_new_store_all_succeed(void **state)
{
    harness_t *h = *state;
    char json[400], db[400];
    path_in(h, "referral.json", json, sizeof json);
    path_in(h, "race.db", db, sizeof db);
    FILE *f = fopen(json, "w");
    assert_non_null(f);
    fputs(referral, f);
    fclose(f);
    enum { N = 6 };
    pid_t pids[N];
    for (int i = 0; i < N; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            int null = open("/dev/null", O_WRONLY);
            dup2(null, STDOUT_FILENO);
            execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "submit",
                  "--org", "wmp", "--config", h->dir, "--db", db, json, (char *)NULL);
            _exit(127);
        }
    }
    for (int i = 0; i < N; i++) {
        int status = 0;
        waitpid(pids[i], &status, 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
    assert_int_equal(agent_count(h, "race", "outbox"), N);
}

/* Events dated before they are sent (a move notice carries the move's date)
 * are emitted like any other: the profile's progress is its due times, not
 * the events' dates. */
static void test_agent_scenario_emits_events_dated_before_they_are_sent(void **state)
{
    harness_t *h = *state;
    char scenario[400], police_db[400], marac_db[400];
    path_in(h, "moves.yaml", scenario, sizeof scenario);
    path_in(h, "wmp.db", police_db, sizeof police_db);
    path_in(h, "marac-coventry.db", marac_db, sizeof marac_db);
    FILE *f = fopen(scenario, "w");
    assert_non_null(f);
    fputs("start: 2026-07-01\ndays: 28\nspeedup: 483840\n"
          "marac:\n  referrals_per_week: 20\n  area_weights: {coventry: 10, dudley: 1}\n"
          "  withdrawn_fraction: 0\n  move_fraction: 1\n",
          f);
    fclose(f);
    pid_t police = fork();
    assert_true(police >= 0);
    if (police == 0) {
        execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "--log-level",
              "warn", "run", "--org", "wmp", "--config", h->dir, "--broker", h->endpoint,
              "--db", police_db, "--scenario", scenario, "--until-done", (char *)NULL);
        _exit(127);
    }
    pid_t marac = fork();
    assert_true(marac >= 0);
    if (marac == 0) {
        execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "--log-level",
              "warn", "run", "--org", "marac-coventry", "--config", h->dir, "--broker",
              h->endpoint, "--db", marac_db, "--scenario", scenario, "--until-done",
              (char *)NULL);
        _exit(127);
    }
    assert_int_equal(agent_wait_exit(police), 0);
    assert_int_equal(agent_wait_exit(marac), 0);
    long referred = harness_count(h, "audit WHERE action='decide' AND "
                                     "event_type='marac.referral' AND decision='allow'");
    long moved = harness_count(h, "audit WHERE action='decide' AND "
                                  "event_type='subject.moved_area'");
    assert_true(referred > 0);
    assert_true(moved > 0); /* every accepted victim moves, and is notified */
}

/* ---- a scenario agent restarted mid-quarter ------------------------------ */

static pid_t scenario_agent(const harness_t *h, const char *db, const char *scenario)
{
    char log[400];
    snprintf(log, sizeof log, "%s.log", db);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        execl(harness_program("agents/sharehub-agent"), "sharehub-agent", "--log-level",
              "debug", "run", "--org", "wmp", "--config", h->dir, "--broker", h->endpoint,
              "--db", db, "--scenario", scenario, "--seed", "5", "--until-done",
              (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* The `occurred` of every event in an agent's outbox, sorted; their count. */
static size_t outbox_occurred(const char *db_path, int64_t *out, size_t max)
{
    sqlite3 *db = NULL;
    size_t n = 0;
    assert_int_equal(sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT share FROM outbox", -1, &st, NULL),
                     SQLITE_OK);
    while (sqlite3_step(st) == SQLITE_ROW && n < max) {
        shub_msg_t *m = NULL;
        shub_err_t err;
        assert_int_equal(shub_msg_decode(sqlite3_column_blob(st, 0),
                                         (size_t)sqlite3_column_bytes(st, 0), &m, &err),
                         0);
        out[n++] = m->share.ev.occurred_ms;
        shub_msg_destroy(&m);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    for (size_t i = 1; i < n; i++) /* insertion sort: a few hundred values */
        for (size_t j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int64_t t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

static void test_agent_scenario_killed_and_restarted_emits_each_event_once(void **state)
{
    harness_t *h = *state;
    char scenario[400], db_a[400], db_b[400];
    path_in(h, "restart-scenario.yaml", scenario, sizeof scenario);
    path_in(h, "straight.db", db_a, sizeof db_a);
    path_in(h, "restarted.db", db_b, sizeof db_b);
    FILE *f = fopen(scenario, "w");
    assert_non_null(f);
    fputs("start: 2026-07-01\ndays: 28\nspeedup: 483840\n" /* 28 days in 5 s */
          "marac:\n  referrals_per_week: 40\n  area_weights: {coventry: 1}\n",
          f);
    fclose(f);

    /* The quarter run straight through ... */
    pid_t a = scenario_agent(h, db_a, scenario);
    assert_int_equal(agent_wait_exit(a), 0);
    int64_t want[1024], got[1024];
    size_t n_want = outbox_occurred(db_a, want, 1024);
    assert_true(n_want > 50);

    /* ... and the same one killed halfway and started again. */
    pid_t b = scenario_agent(h, db_b, scenario);
    for (int i = 0; i < 500 && agent_count(h, "restarted", "outbox") < (long)n_want / 2; i++)
        nap_ms(10);
    assert_true(agent_count(h, "restarted", "outbox") > 0);
    assert_int_equal(agent_stop(b, SIGKILL), 128 + SIGKILL);
    b = scenario_agent(h, db_b, scenario);
    assert_int_equal(agent_wait_exit(b), 0);
    size_t n_got = outbox_occurred(db_b, got, 1024);

    /* The same events, none twice, none lost. */
    assert_int_equal(n_got, n_want);
    assert_memory_equal(got, want, n_want * sizeof want[0]);
    char log[420];
    snprintf(log, sizeof log, "%s.log", db_b);
    assert_true(file_has(log, "resuming the scenario's clock"));
}

/* ---- an agent relays unless asked to simulate ---------------------------- */

/* Waits up to ms for a line of path holding needle; the ms it took, or -1. */
static int wait_file_has(const char *path, const char *needle, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        if (file_has(path, needle))
            return waited;
        nap_ms(20);
    }
    return -1;
}

/* A MARAC's profile answers a referral with a decision 2 to 40 hours after it
 * arrived. Here the referral arrived three days ago (its inbox row is moved
 * back), so a MARAC agent running its profile decides at once when it
 * starts, from the replayed inbox: the control run shows that it does. The
 * same agent without --scenario or --simulate never originates anything. */
static void test_agent_without_scenario_relays_and_originates_nothing(void **state)
{
    harness_t *h = *state;
    char log[400], db[400];
    path_in(h, "marac-coventry.log", log, sizeof log);
    path_in(h, "marac-coventry.db", db, sizeof db);
    pid_t police = agent_start(h, "wmp", false, NULL);
    pid_t marac = agent_start(h, "marac-coventry", false, NULL);
    submit_referral(h);
    assert_int_equal(wait_agent_count(h, "marac-coventry", "inbox", 1), 1);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);
    assert_true(file_has(log, "mode=relay: sends what is submitted, stores what is "
                              "delivered; originates nothing"));
    sqlite3 *sql = NULL;
    assert_int_equal(sqlite3_open(db, &sql), SQLITE_OK);
    assert_int_equal(sqlite3_exec(sql, "UPDATE inbox SET received = received - 259200000",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(sql);

    /* Relay: welcomed, then two seconds of nothing at all. */
    long welcomed = 0;
    marac = agent_start(h, "marac-coventry", false, NULL);
    for (int i = 0; i < WAIT_MS / 20 && welcomed < 2; i++, nap_ms(20)) {
        FILE *f = fopen(log, "r");
        char line[4096];
        welcomed = 0;
        while (f && fgets(line, sizeof line, f))
            welcomed += strstr(line, "welcomed org=marac-coventry") != NULL;
        if (f)
            fclose(f);
    }
    assert_int_equal(welcomed, 2);
    nap_ms(2000);
    assert_int_equal(agent_count(h, "marac-coventry", "outbox"), 0);
    assert_int_equal(agent_count(h, "wmp", "outbox"), 1); /* the one submitted */
    assert_int_equal(harness_count(h, "audit WHERE sender = 'marac-coventry'"), 0);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);

    /* The control: asked to simulate, the same agent decides at once. */
    const char *simulate[] = {"--simulate", NULL};
    marac = agent_start_with(h, "marac-coventry", false, simulate);
    assert_true(wait_file_has(log, "mode=simulate profile=marac", WAIT_MS) >= 0);
    assert_int_equal(
        wait_agent_count(h, "marac-coventry",
                         "outbox WHERE event_type = 'marac.referral.decision'", 1),
        1);
    assert_int_equal(agent_stop(marac, SIGTERM), 0);
    assert_int_equal(agent_stop(police, SIGTERM), 0);
}

/* ---- the agent says what state its connection is in ---------------------- */

/* A key pair orgs.yaml does not know, for marac-coventry, in DIR/NAME with
 * the broker's public key beside it. */
static void stranger_keys(const harness_t *h, const char *name, char *dir, size_t size,
                          shub_curve_keys_t *keys)
{
    char from[400], to[600], text[64];
    shub_err_t err;
    snprintf(dir, size, "%s/%s", h->dir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    assert_int_equal(shub_keys_generate(keys, &err), 0);
    assert_int_equal(shub_keys_write(dir, "marac-coventry", keys, false, &err), 0);
    snprintf(from, sizeof from, "%s/keys/broker.pub", h->dir);
    snprintf(to, sizeof to, "%s/broker.pub", dir);
    FILE *in = fopen(from, "r"), *out = fopen(to, "w");
    assert_non_null(in);
    assert_non_null(out);
    assert_non_null(fgets(text, sizeof text, in));
    fputs(text, out);
    fclose(in);
    fclose(out);
}

static void test_agent_with_unknown_key_logs_refusal_within_5s(void **state)
{
    harness_t *h = *state;
    char dir[400], log[400], needle[200];
    shub_curve_keys_t keys;
    stranger_keys(h, "stranger", dir, sizeof dir, &keys);
    path_in(h, "marac-coventry.log", log, sizeof log);
    const char *extra[] = {"--keys", dir, NULL};
    pid_t pid = agent_start_with(h, "marac-coventry", false, extra);
    snprintf(needle, sizeof needle,
             "refused: the broker does not accept our key: is %s in orgs.yaml?",
             keys.public_z85);
    int took = wait_file_has(log, needle, 5000);
    assert_true(took >= 0 && took <= 5000);
    assert_true(harness_log_has(h, "zap refused"));
    /* It keeps trying, and says so once, not once per attempt. */
    nap_ms(1500);
    FILE *f = fopen(log, "r");
    char line[4096];
    int refusals = 0;
    while (f && fgets(line, sizeof line, f))
        refusals += strstr(line, "refused:") != NULL;
    if (f)
        fclose(f);
    assert_int_equal(refusals, 1);
    assert_int_equal(agent_stop(pid, SIGTERM), 0);
    assert_false(file_has(log, "welcomed"));

    /* Asked to finish (--until-done), it gives up with 69 instead. */
    const char *until[] = {"--keys", dir, "--until-done", "--give-up-after", "2", NULL};
    pid = agent_start_with(h, "marac-coventry", false, until);
    assert_int_equal(agent_wait_exit(pid), 69);
    assert_true(file_has(log, "giving up: no session with the broker for 2 s"));
}

static void test_agent_without_broker_logs_that_it_cannot_reach_it(void **state)
{
    harness_t *h = *state;
    char nowhere[400], log[400], needle[600];
    snprintf(nowhere, sizeof nowhere, "ipc://%s/nobody-listens.ipc", h->dir);
    path_in(h, "wmp.log", log, sizeof log);
    const char *extra[] = {"--broker", nowhere, NULL};
    pid_t pid = agent_start_with(h, "wmp", false, extra);
    snprintf(needle, sizeof needle, "connecting endpoint=%s key=", nowhere);
    assert_true(wait_file_has(log, needle, 5000) >= 0);
    snprintf(needle, sizeof needle, "cannot reach the broker at %s for 3 s; still trying",
             nowhere);
    assert_true(wait_file_has(log, needle, 8000) >= 0);
    /* Not asked to give up, it does not: it is still running. */
    int status;
    assert_int_equal(waitpid(pid, &status, WNOHANG), 0);
    assert_int_equal(agent_stop(pid, SIGTERM), 0);

    submit_referral(h); /* something to deliver, so --until-done is not done */
    const char *until[] = {"--broker",        nowhere, "--until-done",
                           "--give-up-after", "2",     NULL};
    pid = agent_start_with(h, "wmp", false, until);
    assert_int_equal(agent_wait_exit(pid), 69);
    assert_true(file_has(log, "giving up: no session with the broker for 2 s"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_agent_failing_hook_retried_then_dead),
        T(test_agent_broker_lost_mid_run_sends_everything_once),
        T(test_agent_killed_between_commit_and_ack_keeps_event_once),
        T(test_agent_until_done_exits_0_once_everything_is_receipted),
        T(test_agent_fails_outbox_rows_it_could_never_settle),
        T(test_agent_submit_malformed_json_exits_65_nothing_queued),
        T(test_agent_submit_missing_field_exits_65_nothing_queued),
        T(test_agent_submit_wrong_type_exits_65_nothing_queued),
        T(test_agent_submit_oversized_value_exits_65_nothing_queued),
        T(test_agent_submit_implausible_time_or_unknown_area_exits_65),
        T(test_agent_submit_unknown_org_in_config_exits_78),
        T(test_agent_run_without_org_exits_64),
        T(test_agent_scenario_killed_and_restarted_emits_each_event_once),
        T(test_agent_submits_racing_on_a_new_store_all_succeed),
        T(test_agent_scenario_emits_events_dated_before_they_are_sent),
        T(test_agent_without_scenario_relays_and_originates_nothing),
        T(test_agent_with_unknown_key_logs_refusal_within_5s),
        T(test_agent_without_broker_logs_that_it_cannot_reach_it),
#undef T
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
