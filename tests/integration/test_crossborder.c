/*
 * Process tests of the West Midlands partnership's real configuration:
 * examples/west-midlands (orgs.yaml, hub.yaml, agreements/) copied into a
 * temp dir with freshly generated keys, a real sharehub-broker, and real
 * `sharehub-agent run` processes for the organisations each test needs.
 * Events are injected with `sharehub-agent submit` (JSON), so what is sent
 * is fixed; where a test needs an organisation to react (a MARAC asking for
 * missing minutes, acknowledging a transfer, notifying its IDVA service), its
 * agent runs with its profile on a fast simulated clock. Results are read
 * from the SQLite files: each agent's inbox and outcomes, the broker's
 * deliveries and audit log; `sharehub-audit verify` checks the chain.
 *
 * The cases are the cross-border ones: a victim moving from Birmingham East
 * to Coventry, an incomplete transfer completed on request, a move out of
 * the force area under the one-way external agreement, a prison release into
 * another area, anonymised A&E data, the deliberate denials, the faults
 * (recipient offline, broker killed, agent killed before its ACK), and
 * keys that are not the partnership's.
 *
 * Waits are on conditions in the files, with deadlines; the only fixed
 * pause is the one that gives a refused client time to fail.
 */
#include "harness.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
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

#define WAIT_MS  20000
#define MAX_PIDS 16
#define OUT_CAP  65536

/* What the whole file runs on. */
typedef struct xb {
    harness_t *h;
    pid_t pids[MAX_PIDS]; /* agents still running, stopped by teardown */
    size_t n_pids;
} xb_t;

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- set-up: the real configuration, fresh keys ------------------------- */

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *text = malloc(1 << 20);
    size_t n = text ? fread(text, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (text)
        text[n] = '\0';
    return text;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* The real hub.yaml with the test's database name and short timers (so a
 * lost peer or a missing ACK is noticed in about a second, not ten); every
 * other line as the partnership wrote it. */
static int write_hub(const char *from, const char *to)
{
    static const char *const over[][2] = {
        {"database:", "database: broker.db"},
        {"  heartbeat_ms:", "  heartbeat_ms: 300"},
        {"  peer_timeout_ms:", "  peer_timeout_ms: 3000"},
        {"  redeliver_ms:", "  redeliver_ms: 1000"},
        {"  checkpoint_every:", "  checkpoint_every: 50"},
    };
    char *text = slurp(from);
    FILE *out = text ? fopen(to, "w") : NULL;
    if (!out) {
        free(text);
        return -1;
    }
    for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
        const char *use = line;
        for (size_t i = 0; i < sizeof over / sizeof over[0]; i++)
            if (strncmp(line, over[i][0], strlen(over[i][0])) == 0)
                use = over[i][1];
        fprintf(out, "%s\n", use);
    }
    free(text);
    return fclose(out) == 0 ? 0 : -1;
}

/* Keys for every organisation orgs.yaml lists (`{id: X, ...}`). */
static int key_every_org(const char *orgs_yaml, const char *key_dir)
{
    char *text = slurp(orgs_yaml);
    if (!text)
        return -1;
    int n = 0;
    for (const char *p = text; (p = strstr(p, "{id: ")); n++) {
        p += 5;
        char id[64];
        size_t len = strspn(p, "abcdefghijklmnopqrstuvwxyz0123456789-");
        snprintf(id, sizeof id, "%.*s", (int)len, p);
        shub_curve_keys_t k;
        shub_err_t err;
        if (shub_keys_generate(&k, &err) != 0 ||
            shub_keys_write(key_dir, id, &k, true, &err) != 0) {
            free(text);
            return -1;
        }
    }
    free(text);
    return n;
}

/* A test-only agreement that lapsed: a pilot in which custody told the
 * council when a detained parent had children at home. No other agreement
 * names both custody and a council, so a share between them is judged
 * against this one alone. */
static const char expired_agreement[] =
    "id: test-custody-children-pilot\n"
    "title: Children of detained parents pilot (ended)\n"
    "version: 2\n"
    "status: active\n"
    "valid_from: 2024-04-01\n"
    "valid_until: 2025-03-31\n"
    "review_date: 2024-10-01\n"
    "retention: \"pilot records destroyed at the end of the evaluation\"\n"
    "parties: {orgs: [wmp-custody, coventry-cc]}\n"
    "purposes: [safeguarding]\n"
    "legal_basis:\n"
    "  - {id: uk-gdpr-6-1-e, text: \"UK GDPR Article 6(1)(e)\"}\n"
    "data_dictionary:\n"
    "  - {field: child.name, class: child}\n"
    "consent: {required: false}\n"
    "flows:\n"
    "  - id: children-at-home\n"
    "    from: {orgs: [wmp-custody]}\n"
    "    to: {orgs: [coventry-cc]}\n"
    "    events: [custody.children_at_home]\n"
    "    fields: [child.name]\n";

/* The MARACs that must react within a test run on this clock: 10 simulated
 * hours a real second, so a reply due within 4 simulated hours comes within
 * half a second, and the simulated dates stay inside the agreements. */
static const char fast_scenario[] = "start: 2026-04-01\n"
                                    "days: 3000\n"
                                    "speedup: 36000\n";

static harness_t *xb_harness_new(void)
{
    harness_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->dir, sizeof h->dir, "/tmp/shub-xb-XXXXXX");
    if (!mkdtemp(h->dir)) {
        free(h);
        return NULL;
    }
    snprintf(h->endpoint, sizeof h->endpoint, "ipc://%s/broker.ipc", h->dir);
    snprintf(h->log, sizeof h->log, "%s/broker.log", h->dir);

    char path[512], keys[400], from[1024], to[1024];
    shub_err_t err;
    snprintf(keys, sizeof keys, "%s/keys", h->dir);
    snprintf(path, sizeof path, "%s/agreements", h->dir);
    if (mkdir(path, 0700) != 0 || shub_keys_ensure_broker(keys, &err) != 0)
        goto fail;
    snprintf(from, sizeof from, "%s/hub.yaml", SHUB_EXAMPLES);
    snprintf(to, sizeof to, "%s/hub.yaml", h->dir);
    if (write_hub(from, to) != 0)
        goto fail;
    snprintf(from, sizeof from, "%s/orgs.yaml", SHUB_EXAMPLES);
    snprintf(to, sizeof to, "%s/orgs.yaml", h->dir);
    char *orgs = slurp(from);
    int rc = orgs ? write_text(to, orgs) : -1;
    free(orgs);
    if (rc != 0 || key_every_org(to, keys) != 41)
        goto fail;

    snprintf(path, sizeof path, "%s/agreements", SHUB_EXAMPLES);
    DIR *d = opendir(path);
    struct dirent *e;
    int copied = 0;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        snprintf(from, sizeof from, "%s/%s", path, e->d_name);
        snprintf(to, sizeof to, "%s/agreements/%s", h->dir, e->d_name);
        char *text = slurp(from);
        rc = text ? write_text(to, text) : -1;
        free(text);
        if (rc != 0) {
            closedir(d);
            goto fail;
        }
        copied++;
    }
    if (d)
        closedir(d);
    snprintf(to, sizeof to, "%s/agreements/test-custody-children-pilot.yaml", h->dir);
    if (copied < 7 || write_text(to, expired_agreement) != 0)
        goto fail;
    snprintf(to, sizeof to, "%s/fast.yaml", h->dir);
    if (write_text(to, fast_scenario) != 0)
        goto fail;
    return h;
fail:
    harness_destroy(&h);
    return NULL;
}

static int setup(void **state)
{
    xb_t *x = calloc(1, sizeof *x);
    if (!x)
        return -1;
    x->h = xb_harness_new();
    if (!x->h || harness_start(x->h) != 0) {
        if (x->h)
            fprintf(stderr, "broker did not start; log in %s\n", x->h->log);
        harness_destroy(&x->h);
        free(x);
        return -1;
    }
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    xb_t *x = *state;
    for (size_t i = 0; i < x->n_pids; i++) {
        if (x->pids[i] > 0) {
            kill(x->pids[i], SIGTERM);
            waitpid(x->pids[i], NULL, 0);
        }
    }
    harness_destroy(&x->h);
    free(x);
    return 0;
}

/* ---- agent processes ---------------------------------------------------- */

typedef struct agent_opts {
    bool fast;           /* drive the profile with fast.yaml */
    bool crash_hook;     /* SHUB_AGENT_CRASH_AFTER_COMMIT=1 */
    const char *key_dir; /* NULL: the partnership's; else not waited for */
} agent_opts_t;

/* Lines of the broker's log containing needle. */
static int log_lines(const harness_t *h, const char *needle)
{
    FILE *f = fopen(h->log, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

/* Starts `sharehub-agent run` for org, store DIR/ORG.db, log DIR/ORG.log,
 * and (with the partnership's keys) waits until the broker has it online,
 * so that its store exists before a test submits into it. */
static pid_t agent_start(xb_t *x, const char *org, agent_opts_t o)
{
    const harness_t *h = x->h;
    char db[400], log[400], scen[400], online[128];
    snprintf(online, sizeof online, "online org=%s agent=", org);
    int before = log_lines(h, online);
    snprintf(db, sizeof db, "%s/%s.db", h->dir, org);
    snprintf(log, sizeof log, "%s/%s.log", h->dir, org);
    snprintf(scen, sizeof scen, "%s/fast.yaml", h->dir);
    const char *argv[24];
    int n = 0;
    argv[n++] = harness_program("agents/sharehub-agent");
    argv[n++] = "--log-level";
    argv[n++] = "debug";
    argv[n++] = "run";
    argv[n++] = "--org";
    argv[n++] = org;
    argv[n++] = "--config";
    argv[n++] = h->dir;
    argv[n++] = "--broker";
    argv[n++] = h->endpoint;
    argv[n++] = "--db";
    argv[n++] = db;
    if (o.fast) {
        argv[n++] = "--scenario";
        argv[n++] = scen;
    }
    if (o.key_dir) {
        argv[n++] = "--keys";
        argv[n++] = o.key_dir;
    }
    argv[n] = NULL;
    harness_crash_switch(o.crash_hook); /* the child inherits it */
    pid_t pid = harness_spawn(log, argv);
    harness_crash_switch(false);
    assert_true(pid > 0);
    if (x->n_pids < MAX_PIDS)
        x->pids[x->n_pids++] = pid;
    if (o.key_dir)
        return pid;
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        if (log_lines(h, online) > before)
            return pid;
        nap_ms(10);
    }
    fail_msg("%s did not come online; its log is %s", org, log);
    return pid;
}

static void forget_pid(xb_t *x, pid_t pid)
{
    for (size_t i = 0; i < x->n_pids; i++)
        if (x->pids[i] == pid)
            x->pids[i] = 0;
}

/* Stops an agent with sig; its exit status (128+signal if killed). */
static int agent_stop(xb_t *x, pid_t pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    forget_pid(x, pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Waits up to WAIT_MS for the agent to exit by itself; its status, or -1. */
static int agent_wait_exit(xb_t *x, pid_t pid)
{
    for (int waited = 0; waited < WAIT_MS; waited += 10) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            forget_pid(x, pid);
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
        nap_ms(10);
    }
    return -1;
}

/* Runs sharehub-agent (or another program when arg0 is a path) with `input`
 * on stdin; the exit status, stdout and stderr. */
static int run_cmd(const harness_t *h, const char *prog, const char *input, char *out,
                   size_t out_size, char *err, size_t err_size, const char *const *args)
{
    char in_path[400], out_path[400], err_path[400];
    snprintf(in_path, sizeof in_path, "%s/cmd.in", h->dir);
    snprintf(out_path, sizeof out_path, "%s/cmd.out", h->dir);
    snprintf(err_path, sizeof err_path, "%s/cmd.err", h->dir);
    FILE *f = fopen(in_path, "w");
    assert_non_null(f);
    fputs(input ? input : "", f);
    fclose(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int in = open(in_path, O_RDONLY),
            o = open(out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600),
            e = open(err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(in, STDIN_FILENO);
        dup2(o, STDOUT_FILENO);
        dup2(e, STDERR_FILENO);
        execv(prog, (char *const *)args);
        _exit(127);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    const char *paths[2] = {out_path, err_path};
    char *bufs[2] = {out, err};
    size_t sizes[2] = {out_size, err_size};
    for (int i = 0; i < 2; i++) {
        f = fopen(paths[i], "r");
        size_t n = f ? fread(bufs[i], 1, sizes[i] - 1, f) : 0;
        bufs[i][n] = '\0';
        if (f)
            fclose(f);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Queues `json` into org's outbox with `sharehub-agent submit`; the event id
 * (36 characters) into id. */
static void submit(const harness_t *h, const char *org, const char *json, char id[37])
{
    char db[400], out[256], err[2048];
    snprintf(db, sizeof db, "%s/%s.db", h->dir, org);
    const char *args[] = {"sharehub-agent", "submit", "--org", org, "--config",
                          h->dir,           "--db",   db,      "-", NULL};
    int rc = run_cmd(h, harness_program("agents/sharehub-agent"), json, out, sizeof out,
                     err, sizeof err, args);
    if (rc != 0)
        fprintf(stderr, "submit as %s: %s", org, err);
    assert_int_equal(rc, 0);
    assert_int_equal(strlen(out), 37);
    snprintf(id, 37, "%.36s", out);
}

/* org's inbox as JSON lines (`sharehub-agent inbox --format json`). */
static void inbox_json(const harness_t *h, const char *org, char *out, size_t size)
{
    char db[400], err[2048];
    snprintf(db, sizeof db, "%s/%s.db", h->dir, org);
    const char *args[] = {"sharehub-agent", "inbox", "--org", org, "--db", db,
                          "--format",       "json",  NULL};
    assert_int_equal(run_cmd(h, harness_program("agents/sharehub-agent"), NULL, out, size,
                             err, sizeof err, args),
                     0);
}

/* The payload of event `id` in org's inbox, exactly as printed: the JSON
 * object after "payload": (the last member of each line). */
static void inbox_payload(const harness_t *h, const char *org, const char *id, char *out,
                          size_t size)
{
    char *all = malloc(OUT_CAP), needle[64];
    assert_non_null(all);
    inbox_json(h, org, all, OUT_CAP);
    snprintf(needle, sizeof needle, "{\"id\":\"%s\"", id);
    const char *line = strstr(all, needle);
    if (!line)
        fprintf(stderr, "%s's inbox has no %s:\n%s", org, id, all);
    assert_non_null(line);
    const char *end = strchr(line, '\n');
    const char *p = strstr(line, "\"payload\":");
    assert_non_null(p);
    assert_true(end && p < end);
    p += strlen("\"payload\":");
    snprintf(out, size, "%.*s", (int)(end - p - 1), p); /* less the line's closing } */
    free(all);
}

/* The event id of the only event of `type` in org's inbox. */
static void inbox_id_of(const harness_t *h, const char *org, const char *type,
                        char id[37])
{
    char *all = malloc(OUT_CAP), needle[128];
    assert_non_null(all);
    inbox_json(h, org, all, OUT_CAP);
    snprintf(needle, sizeof needle, "\"event\":\"%s\"", type);
    const char *at = strstr(all, needle);
    assert_non_null(at);
    assert_null(strstr(at + 1, needle));
    const char *line = at;
    while (line > all && line[-1] != '\n')
        line--;
    assert_memory_equal(line, "{\"id\":\"", 7);
    snprintf(id, 37, "%.36s", line + 7);
    free(all);
}

/* X'...' for an id's 16 bytes, for SQL. */
static void id_sql(const char *id, char out[40])
{
    size_t n = 0;
    out[n++] = 'X';
    out[n++] = '\'';
    for (const char *c = id; *c && n < 37; c++)
        if (*c != '-')
            out[n++] = *c;
    out[n++] = '\'';
    out[n] = '\0';
}

/* ---- the SQLite files --------------------------------------------------- */

static long db_count(const char *path, const char *sql)
{
    char full[2048];
    snprintf(full, sizeof full, "SELECT count(*) FROM %s", sql);
    sqlite3 *db = NULL;
    long n = -1;
    if ((db = harness_sqlite_open(path))) {
        sqlite3_stmt *st = NULL;
        if (sqlite3_prepare_v2(db, full, -1, &st, NULL) == SQLITE_OK &&
            sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
    return n;
}

/* `SELECT count(*) FROM <sql>` on DIR/ORG.db (printf-style); -1 if absent. */
static long agent_count(const harness_t *h, const char *org, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static long agent_count(const harness_t *h, const char *org, const char *fmt, ...)
{
    char path[400], sql[1024];
    snprintf(path, sizeof path, "%s/%s.db", h->dir, org);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return db_count(path, sql);
}

static long broker_count(const harness_t *h, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static long broker_count(const harness_t *h, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    return harness_count(h, sql);
}

/* Waits until the count is `want`; the last count seen. */
static long wait_agent(const harness_t *h, const char *org, const char *sql, long want)
{
    long n = -1;
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        if ((n = agent_count(h, org, "%s", sql)) == want)
            return n;
        nap_ms(20);
    }
    return n;
}

static long wait_broker(const harness_t *h, const char *sql, long want)
{
    long n = -1;
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        if ((n = harness_count(h, sql)) == want)
            return n;
        nap_ms(20);
    }
    return n;
}

/* One text value of a query on the broker's database. */
static void broker_text(const harness_t *h, char *out, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void broker_text(const harness_t *h, char *out, size_t size, const char *fmt, ...)
{
    char sql[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sql, sizeof sql, fmt, ap);
    va_end(ap);
    out[0] = '\0';
    assert_int_equal(harness_text(h, sql, out, size), 0);
}

/* The audit row deciding event `id` for `recipient`:
 * "decision|reason|agreement|version|flow|fields_stripped". */
static void decision_of(const harness_t *h, const char *id, const char *recipient,
                        char *out, size_t size)
{
    char x[40];
    id_sql(id, x);
    broker_text(
        h, out, size,
        "SELECT decision || '|' || coalesce(reason, '') || '|' || "
        "coalesce(agreement, '') || '|' || coalesce(agreement_version, '') || '|' "
        "|| coalesce(flow, '') || '|' || coalesce(fields_stripped, '') FROM audit "
        "WHERE action = 'decide' AND event_id = %s AND recipient = '%s'",
        x, recipient);
}

/* Every share the broker allowed is in its recipient's inbox exactly once
 * (for the recipients listed), acknowledged once, and the chain verifies. */
static void assert_exactly_once(const harness_t *h, const char *const *orgs, size_t n)
{
    char path[400];
    snprintf(path, sizeof path, "%s/broker.db", h->dir);
    sqlite3 *db = NULL;
    assert_non_null(db = harness_sqlite_open(path));
    sqlite3_stmt *st = NULL;
    assert_int_equal(
        sqlite3_prepare_v2(db,
                           "SELECT hex(event_id), recipient FROM audit WHERE "
                           "action = 'decide' AND decision = 'allow'",
                           -1, &st, NULL),
        SQLITE_OK);
    long checked = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        const char *hex = (const char *)sqlite3_column_text(st, 0);
        const char *to = (const char *)sqlite3_column_text(st, 1);
        for (size_t i = 0; i < n; i++) {
            if (strcmp(orgs[i], to) != 0)
                continue;
            char sql[300];
            snprintf(sql, sizeof sql, "inbox WHERE id = X'%s'", hex);
            long got = wait_agent(h, to, sql, 1);
            if (got != 1)
                fprintf(stderr, "event %s: %ld copies in %s's inbox\n", hex, got, to);
            assert_int_equal(got, 1);
            snprintf(
                sql, sizeof sql,
                "audit WHERE action = 'ack' AND event_id = X'%s' AND recipient = '%s'",
                hex, to);
            assert_int_equal(wait_broker(h, sql, 1), 1);
            checked++;
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_true(checked > 0);

    char out[4096], err[4096], key[400];
    snprintf(key, sizeof key, "%s/keys/checkpoint.pub", h->dir);
    const char *args[] = {"sharehub-audit", "verify", "--db", path, "--key", key, NULL};
    int rc = run_cmd(h, harness_program("broker/sharehub-audit"), NULL, out, sizeof out,
                     err, sizeof err, args);
    if (rc != 0)
        fprintf(stderr, "verify: %s%s", out, err);
    assert_int_equal(rc, 0);
}

static bool file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    bool found = false;
    while (f && !found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return found;
}

static bool wait_log(const harness_t *h, const char *needle)
{
    for (int waited = 0; waited < WAIT_MS; waited += 20) {
        if (harness_log_has(h, needle))
            return true;
        nap_ms(20);
    }
    return false;
}

/* ---- the events ---------------------------------------------------------- */

#define SUBJECT "P-4f1c2a9b7e3d6051"

/* A Birmingham East MARAC case transfer as its case system exports it: with
 * the victim's old address and the perpetrator, which no transfer carries. */
static void transfer_json(char *out, size_t size, const char *area, bool complete,
                          const char *reply_to)
{
    char reply[80] = "";
    if (reply_to)
        snprintf(reply, sizeof reply, "\"reply_to\": \"%s\", ", reply_to);
    snprintf(
        out, size,
        "{\"event\": \"marac.transfer\", \"occurred\": \"2026-11-20T09:30:00Z\", %s"
        "\"case\": \"MARAC-BE-26-0042\", \"subject\": \"" SUBJECT "\", \"area\": \"%s\", "
        "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
        "\"consent\": \"not-sought\", \"override\": \"risk-of-serious-harm\", "
        "\"to\": [\"marac@%s\"], \"payload\": {"
        "\"move\": {\"date\": \"2026-11-18\", \"temporary\": false, \"new_area\": "
        "\"%s\", "
        "\"new_address\": {\"line1\": \"14 Hollowmere Road\", \"postcode\": \"%s\"}}, "
        "\"heard_at_origin\": true, \"last_referral_date\": \"2026-09-14\", %s"
        "\"open_actions\": 1, "
        "\"victim\": {\"name\": \"Amira Thornbrook\", \"dob\": \"1991-03-12\", "
        "\"phone\": \"07700 900123\", "
        "\"address\": {\"line1\": \"7 Fenwick Close\", \"postcode\": \"B8 2LD\"}}, "
        "\"risk\": {\"dash_score\": 17}, "
        "\"children\": [{\"name\": \"Leo Thornbrook\", \"dob\": \"2017-05-02\"}], "
        "\"perpetrators\": [{\"name\": \"Dean Ashcombe\", \"dob\": \"1988-11-30\"}]}}\n",
        reply, area, area, area, strcmp(area, "coventry") == 0 ? "CV3 4QT" : "ST16 2DH",
        complete
            ? "\"minutes\": [{\"meeting_date\": \"2026-09-24\", \"text\": \"Heard at "
              "MARAC; risk confirmed high. Perpetrator on bail with conditions.\"}], "
              "\"action_plan\": [{\"action_id\": \"MARAC-BE-26-0042-A1\", "
              "\"owner\": \"police\", \"due\": \"2026-10-08\", \"status\": \"done\", "
              "\"description\": \"flag the address for a priority response\"}, "
              "{\"action_id\": \"MARAC-BE-26-0042-A2\", \"owner\": \"idva\", "
              "\"due\": \"2026-12-01\", \"status\": \"open\", \"description\": "
              "\"agree a safety plan and review it fortnightly\"}], "
            : "");
}

/* The notice to Birmingham's partners; the case system adds where she went
 * and the case, which the notice must not carry. */
static const char moved_json[] =
    "{\"event\": \"subject.moved_area\", \"occurred\": \"2026-11-20T09:31:00Z\", "
    "\"subject\": \"" SUBJECT "\", \"area\": \"birmingham-east\", "
    "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
    "\"consent\": \"not-sought\", \"override\": \"risk-of-serious-harm\", "
    "\"to\": [\"idva@birmingham-east\", \"local-authority@birmingham-east\"], "
    "\"payload\": {\"left_area\": \"birmingham-east\", \"date\": \"2026-11-18\", "
    "\"new_area\": \"coventry\", \"case_ref\": \"MARAC-BE-26-0042\", "
    "\"risk\": {\"dash_score\": 17}}}\n";

/* A police referral to the MARAC of `area` (or to `to` if given). */
static void referral_json(char *out, size_t size, const char *area, const char *to,
                          int dash, const char *criteria, const char *case_ref)
{
    char sel[80];
    snprintf(sel, sizeof sel, "marac@%s", area);
    snprintf(out, size,
             "{\"event\": \"marac.referral\", \"occurred\": \"2026-11-21T22:10:00Z\", "
             "\"case\": \"%s\", \"subject\": \"P-77aa01bc22de3f40\", \"area\": \"%s\", "
             "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
             "\"consent\": \"not-sought\", \"override\": \"risk-of-serious-harm\", "
             "\"to\": [\"%s\"], \"payload\": {"
             "\"victim\": {\"name\": \"Sofia Marrowfield\", \"dob\": \"1994-08-19\", "
             "\"gender\": \"female\", \"address\": {\"line1\": \"3 Alder Row\", "
             "\"postcode\": \"CV6 1PQ\"}, \"phone\": \"07700 900456\", "
             "\"safe_contact\": \"text first; no voicemail\"}, "
             "\"perpetrators\": [{\"name\": \"Craig Ellerby\", \"dob\": \"1990-02-01\", "
             "\"relationship\": \"ex-partner\"}], \"children\": [], "
             "\"risk\": {\"dash_score\": %d, \"criteria\": [%s], \"repeat\": false}, "
             "\"incident\": {\"date\": \"2026-11-21\", \"summary\": \"Threats to kill "
             "made by phone after separation\", \"crime_ref\": \"CV123456/26\"}, "
             "\"referrer\": {\"officer\": \"PC 4821 Hadley\", "
             "\"contact\": \"024 7696 0123\"}}}\n",
             case_ref, area, to ? to : sel, dash, criteria);
}

/* ---- 1. Birmingham East to Coventry ------------------------------------- */

static void test_move_bham_east_to_coventry_transfers_only_allowed_fields(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "marac-bham-east", (agent_opts_t){0});
    agent_start(x, "marac-coventry", (agent_opts_t){.fast = true});
    agent_start(x, "idva-coventry", (agent_opts_t){0});
    agent_start(x, "bswa", (agent_opts_t){0});
    agent_start(x, "bcc", (agent_opts_t){0});

    char json[8192], transfer[37], moved[37], payload[8192], row[1024];
    transfer_json(json, sizeof json, "coventry", true, NULL);
    submit(h, "marac-bham-east", json, transfer);
    submit(h, "marac-bham-east", moved_json, moved);

    /* The case reaches Coventry's MARAC as the internal transfer allows:
     * minutes, action plan and the repeat clock, not the old address nor
     * the perpetrator. */
    assert_int_equal(wait_agent(h, "marac-coventry",
                                "inbox WHERE event_type = "
                                "'marac.transfer'",
                                1),
                     1);
    inbox_payload(h, "marac-coventry", transfer, payload, sizeof payload);
    assert_string_equal(
        payload,
        "{\"move\":{\"date\":\"2026-11-18\",\"temporary\":false,\"new_area\":"
        "\"coventry\","
        "\"new_address\":{\"line1\":\"14 Hollowmere Road\",\"postcode\":\"CV3 4QT\"}},"
        "\"heard_at_origin\":true,\"last_referral_date\":\"2026-09-14\","
        "\"minutes\":[{\"meeting_date\":\"2026-09-24\",\"text\":\"Heard at MARAC; risk "
        "confirmed high. Perpetrator on bail with conditions.\"}],"
        "\"action_plan\":[{\"action_id\":\"MARAC-BE-26-0042-A1\",\"owner\":\"police\","
        "\"due\":\"2026-10-08\",\"status\":\"done\",\"description\":\"flag the address "
        "for a priority response\"},{\"action_id\":\"MARAC-BE-26-0042-A2\",\"owner\":"
        "\"idva\",\"due\":\"2026-12-01\",\"status\":\"open\",\"description\":\"agree a "
        "safety plan and review it fortnightly\"}],\"open_actions\":1,"
        "\"victim\":{\"name\":\"Amira Thornbrook\",\"dob\":\"1991-03-12\","
        "\"phone\":\"07700 900123\"},\"risk\":{\"dash_score\":17},"
        "\"children\":[{\"name\":\"Leo Thornbrook\",\"dob\":\"2017-05-02\"}]}");
    decision_of(h, transfer, "marac-coventry", row, sizeof row);
    assert_string_equal(row, "allow||wm-marac|1|transfer|victim.address,perpetrators");

    /* Birmingham's IDVA service and council learn that she left, and when. */
    const char *const old_partners[] = {"bswa", "bcc"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(wait_agent(h, old_partners[i], "inbox", 1), 1);
        inbox_payload(h, old_partners[i], moved, payload, sizeof payload);
        assert_string_equal(
            payload, "{\"left_area\":\"birmingham-east\",\"date\":\"2026-11-18\"}");
        decision_of(h, moved, old_partners[i], row, sizeof row);
        assert_string_equal(
            row, "allow||wm-subject-moved|1|moved-area|new_area,case_ref,risk");
    }

    /* Coventry's MARAC hands over to Coventry's IDVA service at once, and
     * acknowledges the complete transfer. */
    assert_int_equal(
        wait_agent(h, "idva-coventry",
                   "inbox WHERE event_type = 'idva.notification' AND "
                   "sender = 'marac-coventry' AND agreement = 'wm-marac' AND "
                   "version = 1 AND flow = 'idva-notification'",
                   1),
        1);
    char idva[37];
    inbox_id_of(h, "idva-coventry", "idva.notification", idva);
    inbox_payload(h, "idva-coventry", idva, payload, sizeof payload);
    assert_non_null(strstr(payload, "\"victim\":{\"name\":\"Amira Thornbrook\","
                                    "\"phone\":\"07700 900123\",\"safe_times\":"));
    assert_non_null(strstr(payload, "\"summary\":\"transferred in from marac-bham-east; "
                                    "DASH 17 at the last assessment\"}"));
    assert_null(strstr(payload, "Ashcombe"));
    assert_null(strstr(payload, "Leo"));
    assert_int_equal(wait_agent(h, "marac-bham-east",
                                "inbox WHERE event_type = 'marac.transfer.ack' AND "
                                "sender = 'marac-coventry' AND flow = 'transfer-ack'",
                                1),
                     1);
    char ack[37];
    inbox_id_of(h, "marac-bham-east", "marac.transfer.ack", ack);
    inbox_payload(h, "marac-bham-east", ack, payload, sizeof payload);
    assert_non_null(strstr(payload,
                           "\"received_items\":[\"move\",\"heard_at_origin\","
                           "\"last_referral_date\",\"minutes\",\"action_plan\","
                           "\"open_actions\",\"victim\",\"risk\",\"children\"]"));
    assert_non_null(strstr(payload, "{\"new_case_ref\":\"MARAC-COV-"));

    /* Nobody else heard anything: the Birmingham partners have only the
     * notice; Coventry's IDVA service only its notification. */
    assert_int_equal(agent_count(h, "bswa", "inbox"), 1);
    assert_int_equal(agent_count(h, "bcc", "inbox"), 1);
    assert_int_equal(agent_count(h, "idva-coventry", "inbox"), 1);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 1);

    /* The audit log: every step, under its agreement, flow, version and the
     * hash of the text that was in force. */
    assert_int_equal(
        harness_count(h, "audit WHERE action = 'decide' AND decision = 'deny'"), 0);
    assert_int_equal(
        broker_count(
            h, "audit WHERE action = 'decide' AND decision = 'allow' AND "
               "agreement = 'wm-marac' AND agreement_version = 1 AND "
               "purpose = 'marac-risk-management' AND legal_basis = 'uk-gdpr-6-1-e' "
               "AND ((event_type = 'marac.transfer' AND flow = 'transfer' AND "
               "sender = 'marac-bham-east' AND recipient = 'marac-coventry') OR "
               "(event_type = 'idva.notification' AND flow = 'idva-notification' AND "
               "sender = 'marac-coventry' AND recipient = 'idva-coventry') OR "
               "(event_type = 'marac.transfer.ack' AND flow = 'transfer-ack' AND "
               "sender = 'marac-coventry' AND recipient = 'marac-bham-east'))"),
        3);
    assert_int_equal(broker_count(h, "audit WHERE action = 'decide' AND "
                                     "agreement = 'wm-subject-moved' AND "
                                     "agreement_version = 1 AND flow = 'moved-area'"),
                     2);
    assert_int_equal(broker_count(h, "audit a WHERE action = 'decide' AND agreement_hash "
                                     "!= (SELECT content_hash FROM agreement_versions v "
                                     "WHERE v.id = a.agreement AND v.version = "
                                     "a.agreement_version)"),
                     0);
    assert_int_equal(wait_broker(h, "audit WHERE action = 'ack'", 5), 5);
    const char *const all[] = {"marac-bham-east", "marac-coventry", "idva-coventry",
                               "bswa", "bcc"};
    assert_exactly_once(h, all, 5);
}

/* ---- 2. an incomplete transfer is completed on request ------------------ */

static void test_transfer_without_minutes_is_requested_and_resent(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "marac-bham-east", (agent_opts_t){0});
    agent_start(x, "marac-coventry", (agent_opts_t){.fast = true});

    char json[8192], first[37], request[37], resend[37], payload[8192], row[1024];
    transfer_json(json, sizeof json, "coventry", false, NULL);
    submit(h, "marac-bham-east", json, first);

    /* Coventry's MARAC asks for the minutes and the action plan. */
    assert_int_equal(
        wait_agent(h, "marac-bham-east",
                   "inbox WHERE event_type = 'marac.transfer.request_missing' AND "
                   "sender = 'marac-coventry' AND flow = 'transfer-request-missing'",
                   1),
        1);
    inbox_id_of(h, "marac-bham-east", "marac.transfer.request_missing", request);
    inbox_payload(h, "marac-bham-east", request, payload, sizeof payload);
    assert_string_equal(payload, "{\"missing\":[\"minutes\",\"action_plan\"]}");

    /* The sender resends the whole case, in answer to the request. */
    transfer_json(json, sizeof json, "coventry", true, request);
    submit(h, "marac-bham-east", json, resend);
    assert_int_equal(wait_agent(h, "marac-bham-east",
                                "inbox WHERE event_type = 'marac.transfer.ack'", 1),
                     1);
    char ack[37];
    inbox_id_of(h, "marac-bham-east", "marac.transfer.ack", ack);
    inbox_payload(h, "marac-bham-east", ack, payload, sizeof payload);
    assert_non_null(
        strstr(payload, "\"last_referral_date\",\"minutes\",\"action_plan\","));

    /* Both copies reached Coventry, each as the agreement allows. */
    assert_int_equal(agent_count(h, "marac-coventry",
                                 "inbox WHERE event_type = 'marac.transfer' AND "
                                 "flow = 'transfer'"),
                     2);
    inbox_payload(h, "marac-coventry", first, payload, sizeof payload);
    assert_null(strstr(payload, "minutes"));
    assert_null(strstr(payload, "action_plan"));
    inbox_payload(h, "marac-coventry", resend, payload, sizeof payload);
    assert_non_null(strstr(payload, "\"minutes\":[{\"meeting_date\":\"2026-09-24\","));
    assert_non_null(strstr(payload, "\"action_plan\":[{\"action_id\":"));
    decision_of(h, request, "marac-bham-east", row, sizeof row);
    assert_string_equal(row, "allow||wm-marac|1|transfer-request-missing|");
    decision_of(h, resend, "marac-coventry", row, sizeof row);
    assert_string_equal(row, "allow||wm-marac|1|transfer|victim.address,perpetrators");
    decision_of(h, ack, "marac-bham-east", row, sizeof row);
    assert_string_equal(row, "allow||wm-marac|1|transfer-ack|");
    /* Exactly one request and one acknowledgement: the case is complete. */
    assert_int_equal(broker_count(h, "audit WHERE action = 'decide' AND event_type LIKE "
                                     "'marac.transfer.%%'"),
                     2);
    const char *const all[] = {"marac-bham-east", "marac-coventry"};
    assert_exactly_once(h, all, 2);
}

/* ---- 3. out of the force area ------------------------------------------- */

static void test_move_out_of_force_area_sends_only_external_fields(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "marac-bham-east", (agent_opts_t){0});
    agent_start(x, "marac-staffordshire", (agent_opts_t){0});

    char json[8192], id[37], back[37], payload[8192], row[1024];
    transfer_json(json, sizeof json, "staffordshire", true, NULL);
    submit(h, "marac-bham-east", json, id);
    assert_int_equal(wait_agent(h, "marac-staffordshire", "inbox", 1), 1);
    inbox_payload(h, "marac-staffordshire", id, payload, sizeof payload);
    assert_string_equal(
        payload,
        "{\"move\":{\"date\":\"2026-11-18\",\"temporary\":false,"
        "\"new_area\":\"staffordshire\"},"
        "\"heard_at_origin\":true,\"last_referral_date\":\"2026-09-14\","
        "\"minutes\":[{\"meeting_date\":\"2026-09-24\"}],"
        "\"action_plan\":[{\"action_id\":\"MARAC-BE-26-0042-A1\",\"owner\":\"police\","
        "\"due\":\"2026-10-08\",\"status\":\"done\"},{\"action_id\":"
        "\"MARAC-BE-26-0042-A2\",\"owner\":\"idva\",\"due\":\"2026-12-01\","
        "\"status\":\"open\"}],\"open_actions\":1,"
        "\"victim\":{\"name\":\"Amira Thornbrook\",\"dob\":\"1991-03-12\","
        "\"phone\":\"07700 900123\"},\"risk\":{\"dash_score\":17}}");
    decision_of(h, id, "marac-staffordshire", row, sizeof row);
    assert_string_equal(row, "allow||external-staffordshire|1|transfer-out|"
                             "move.new_address,minutes.text,action_plan.description,"
                             "victim.address,children,perpetrators");
    assert_int_equal(broker_count(h, "audit WHERE agreement = 'wm-marac'"), 0);

    /* One way: nothing comes back through the hub. */
    static const char ack[] =
        "{\"event\": \"marac.transfer.ack\", \"occurred\": \"2026-11-21T09:00:00Z\", "
        "\"subject\": \"" SUBJECT "\", \"area\": \"staffordshire\", "
        "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
        "\"consent\": \"not-sought\", \"override\": \"risk-of-serious-harm\", "
        "\"to\": [\"marac-bham-east\"], \"payload\": {\"new_case_ref\": "
        "\"STAFFS-26-0100\"}}\n";
    submit(h, "marac-staffordshire", ack, back);
    assert_int_equal(
        wait_agent(h, "marac-staffordshire",
                   "outcomes WHERE outcome = 'denied' AND "
                   "recipient = 'marac-bham-east' AND reason = 'no-agreement'",
                   1),
        1);
    decision_of(h, back, "marac-bham-east", row, sizeof row);
    assert_string_equal(row, "deny|no-agreement|external-staffordshire|1|transfer-out|");
    assert_int_equal(agent_count(h, "marac-bham-east", "inbox"), 0);
    const char *const all[] = {"marac-staffordshire"};
    assert_exactly_once(h, all, 1);
}

/* ---- 4. a prison release into another area ------------------------------ */

static void test_release_notice_reaches_release_area_not_old_area(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "nps-midlands", (agent_opts_t){0});
    agent_start(x, "wmp", (agent_opts_t){0});
    agent_start(x, "coventry-cc", (agent_opts_t){0});
    agent_start(x, "bcc", (agent_opts_t){0});

    /* Lived in Birmingham; released to approved premises in Coventry. The
     * case worker also addressed Birmingham's council. */
    static const char notice[] =
        "{\"event\": \"prison.release_notice\", \"occurred\": \"2026-11-21T11:00:00Z\", "
        "\"case\": \"PRB-26-311842\", \"subject\": \"P-0b9c3d2e1f405a6b\", "
        "\"area\": \"coventry\", \"purpose\": \"offender-management\", "
        "\"basis\": \"dpa-2018-part3\", \"consent\": \"not-sought\", "
        "\"to\": [\"police@coventry\", \"local-authority@coventry\", \"bcc\"], "
        "\"payload\": {\"offender\": {\"name\": \"Wayne Grisedale\", "
        "\"dob\": \"1979-06-04\", \"pnc_id\": \"98/1234567X\"}, "
        "\"release\": {\"date\": \"2026-12-09\", \"type\": \"parole\", "
        "\"area\": \"coventry\", \"address\": {\"line1\": \"Approved premises, "
        "12 Quinton Road\", \"postcode\": \"CV1 5FP\"}}, "
        "\"licence_conditions\": [\"reside at the approved address\", "
        "\"exclusion zone around the victim's home area\"], "
        "\"mappa\": {\"category\": 1, \"level\": 2}, "
        "\"offence_summary\": \"wounding with intent\"}}\n";
    char id[37], payload[8192], row[1024];
    submit(h, "nps-midlands", notice, id);
    assert_int_equal(wait_agent(h, "wmp", "inbox", 1), 1);
    assert_int_equal(wait_agent(h, "coventry-cc", "inbox", 1), 1);

    inbox_payload(h, "wmp", id, payload, sizeof payload);
    assert_non_null(strstr(payload, "\"pnc_id\":\"98/1234567X\""));
    assert_non_null(strstr(payload, "\"offence_summary\":\"wounding with intent\""));
    decision_of(h, id, "wmp", row, sizeof row);
    assert_string_equal(row, "allow||wm-offender-management|1|release-to-police|");

    inbox_payload(h, "coventry-cc", id, payload, sizeof payload);
    assert_string_equal(
        payload, "{\"offender\":{\"name\":\"Wayne Grisedale\",\"dob\":\"1979-06-04\"},"
                 "\"release\":{\"date\":\"2026-12-09\",\"type\":\"parole\","
                 "\"area\":\"coventry\",\"address\":{\"line1\":\"Approved premises, "
                 "12 Quinton Road\",\"postcode\":\"CV1 5FP\"}},"
                 "\"licence_conditions\":[\"reside at the approved address\","
                 "\"exclusion zone around the victim's home area\"],"
                 "\"mappa\":{\"category\":1,\"level\":2}}");
    decision_of(h, id, "coventry-cc", row, sizeof row);
    assert_string_equal(
        row, "allow||wm-offender-management|1|release-to-council|offender.pnc_id,"
             "offence_summary");

    /* Birmingham's council does not serve the release area: refused. */
    assert_int_equal(wait_agent(h, "nps-midlands",
                                "outcomes WHERE recipient = 'bcc' AND outcome = 'denied'",
                                1),
                     1);
    decision_of(h, id, "bcc", row, sizeof row);
    assert_string_equal(row, "deny|recipient-not-party|wm-offender-management|1|"
                             "release-to-council|");
    char why[1024];
    char x40[40];
    id_sql(id, x40);
    broker_text(h, why, sizeof why,
                "SELECT explanation FROM audit WHERE event_id = %s AND recipient = 'bcc'",
                x40);
    assert_string_equal(why,
                        "no flow of 'wm-offender-management' v1 lets nps-midlands send "
                        "'prison.release_notice' to bcc; flow 'release-to-council' "
                        "would if the recipient were a local-authority serving "
                        "'coventry'");
    assert_int_equal(agent_count(h, "bcc", "inbox"), 0);
    const char *const all[] = {"wmp", "coventry-cc", "bcc"};
    assert_exactly_once(h, all, 3);
}

/* ---- 5. anonymised A&E data --------------------------------------------- */

static void test_istv_batch_reaches_csp_and_vrp_without_patients(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "uhcw", (agent_opts_t){0});
    agent_start(x, "coventry-cc", (agent_opts_t){0});
    agent_start(x, "wmvrp", (agent_opts_t){0});

    static const char batch[] =
        "{\"event\": \"ae.istv.batch\", \"occurred\": \"2026-11-01T00:00:00Z\", "
        "\"area\": \"coventry\", \"purpose\": \"violence-reduction\", "
        "\"basis\": \"uk-gdpr-6-1-e\", \"consent\": \"not-sought\", "
        "\"to\": [\"local-authority@coventry\", \"partnership@coventry\"], "
        "\"payload\": {\"period\": {\"from\": \"2026-10-01\", \"to\": \"2026-10-31\"}, "
        "\"site\": \"uhcw emergency department (coventry)\", \"assaults\": ["
        "{\"arrival_time\": \"2026-10-03T23:41:00Z\", "
        "\"assault_time\": \"2026-10-03T22:55:00Z\", \"method\": \"bottle-or-glass\", "
        "\"location_type\": \"pub-or-club\", \"patient\": {\"name\": \"Ryan "
        "Copplestone\", "
        "\"nhs_number\": \"999 123 4560\", \"dob\": \"2001-01-17\"}}, "
        "{\"arrival_time\": \"2026-10-19T02:12:00Z\", "
        "\"assault_time\": \"2026-10-19T01:30:00Z\", \"method\": \"knife\", "
        "\"location_type\": \"street\", \"patient\": {\"name\": \"Kyle Ashworthy\", "
        "\"nhs_number\": \"999 765 4321\", \"dob\": \"1998-09-05\"}}]}}\n";
    char id[37], payload[8192], row[1024];
    submit(h, "uhcw", batch, id);
    const char *const to[] = {"coventry-cc", "wmvrp"};
    for (size_t i = 0; i < 2; i++) {
        assert_int_equal(wait_agent(h, to[i], "inbox", 1), 1);
        inbox_payload(h, to[i], id, payload, sizeof payload);
        assert_string_equal(
            payload,
            "{\"period\":{\"from\":\"2026-10-01\",\"to\":\"2026-10-31\"},"
            "\"site\":\"uhcw emergency department (coventry)\",\"assaults\":["
            "{\"arrival_time\":\"2026-10-03T23:41:00Z\","
            "\"assault_time\":\"2026-10-03T22:55:00Z\",\"method\":\"bottle-or-glass\","
            "\"location_type\":\"pub-or-club\"},"
            "{\"arrival_time\":\"2026-10-19T02:12:00Z\","
            "\"assault_time\":\"2026-10-19T01:30:00Z\",\"method\":\"knife\","
            "\"location_type\":\"street\"}]}");
        decision_of(h, id, to[i], row, sizeof row);
        assert_string_equal(row, "allow||wm-istv-ae|1|istv-batch|assaults.patient");
    }
    /* Not even the patient's name reached either inbox file. */
    char *all = malloc(OUT_CAP);
    assert_non_null(all);
    for (size_t i = 0; i < 2; i++) {
        inbox_json(h, to[i], all, OUT_CAP);
        assert_null(strstr(all, "patient"));
        assert_null(strstr(all, "999 "));
        assert_null(strstr(all, "Copplestone"));
    }
    free(all);
    const char *const orgs[] = {"coventry-cc", "wmvrp"};
    assert_exactly_once(h, orgs, 2);
}

/* ---- 6. the deliberate denials ------------------------------------------ */

static void test_denials_are_never_delivered_and_audited_with_reasons(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "wmp", (agent_opts_t){0});
    agent_start(x, "marac-coventry", (agent_opts_t){0});
    agent_start(x, "coventry-cc", (agent_opts_t){0});
    agent_start(x, "cranstoun", (agent_opts_t){0});
    agent_start(x, "wmp-custody", (agent_opts_t){0});

    char json[8192], expired[37], no_flow[37], not_party[37], low[37], ok[37];
    static const char children[] =
        "{\"event\": \"custody.children_at_home\", \"occurred\": "
        "\"2026-11-21T07:00:00Z\", "
        "\"subject\": \"P-1234abcd5678ef90\", \"area\": \"coventry\", "
        "\"purpose\": \"safeguarding\", \"basis\": \"uk-gdpr-6-1-e\", "
        "\"consent\": \"not-sought\", \"to\": [\"coventry-cc\"], "
        "\"payload\": {\"child\": {\"name\": \"Mia Ellerby\"}}}\n";
    submit(h, "wmp-custody", children, expired);
    static const char intelligence[] =
        "{\"event\": \"police.intelligence\", \"occurred\": \"2026-11-21T07:00:00Z\", "
        "\"subject\": \"P-77aa01bc22de3f40\", \"area\": \"coventry\", "
        "\"purpose\": \"marac-risk-management\", \"basis\": \"uk-gdpr-6-1-e\", "
        "\"consent\": \"not-sought\", \"override\": \"risk-of-serious-harm\", "
        "\"to\": [\"marac@coventry\"], \"payload\": {\"grading\": \"B2\"}}\n";
    submit(h, "wmp", intelligence, no_flow);
    referral_json(json, sizeof json, "coventry", "cranstoun", 18, "\"dash\"",
                  "WMP-26-000101");
    submit(h, "wmp", json, not_party);
    referral_json(json, sizeof json, "coventry", NULL, 9, "", "WMP-26-000102");
    submit(h, "wmp", json, low);
    /* Last, one that is allowed: once it has arrived, anything the hub were
     * to let through from before it would have too. */
    referral_json(json, sizeof json, "coventry", NULL, 16, "\"dash\"", "WMP-26-000103");
    submit(h, "wmp", json, ok);
    assert_int_equal(wait_agent(h, "marac-coventry", "inbox", 1), 1);
    assert_int_equal(wait_agent(h, "wmp", "outcomes WHERE outcome = 'denied'", 3), 3);
    assert_int_equal(wait_agent(h, "wmp-custody", "outcomes WHERE outcome = 'denied'", 1),
                     1);

    static const struct {
        const char *sender, *recipient, *row, *why;
    } want[] = {
        {"wmp-custody", "coventry-cc",
         "deny|outside-validity|test-custody-children-pilot|2|children-at-home|",
         "'test-custody-children-pilot' v2 is in force from 2024-04-01 to 2025-03-31, "
         "not on {today}; flow 'children-at-home' would allow it within those dates"},
        {"wmp", "marac-coventry",
         "deny|event-type-not-permitted|wm-marac|1|action-update|",
         "flow 'action-update' of 'wm-marac' v1 from wmp to marac-coventry carries "
         "'marac.action.update', not 'police.intelligence'"},
        {"wmp", "cranstoun", "deny|recipient-not-party|wm-marac|1||",
         "no agreement lets wmp send 'marac.referral' to cranstoun: cranstoun is not a "
         "party to 'wm-marac' v1"},
        {"wmp", "marac-coventry", "deny|condition-failed|wm-marac|1|referral|",
         "flow 'referral' of 'wm-marac' v1: condition not met: payload.risk.dash_score "
         ">= 14 or payload.risk.repeat == true or 'professional_judgement' in "
         "payload.risk.criteria or 'escalation' in payload.risk.criteria"},
    };
    const char *ids[] = {expired, no_flow, not_party, low};
    char today[SHUB_TIME_DATE_TEXT]; /* the broker's clock decides validity */
    shub_time_format_date(shub_now_ms(), today);
    for (size_t i = 0; i < 4; i++) {
        char row[1024], why[1024], expect[1024], x40[40];
        decision_of(h, ids[i], want[i].recipient, row, sizeof row);
        assert_string_equal(row, want[i].row);
        id_sql(ids[i], x40);
        broker_text(
            h, why, sizeof why,
            "SELECT explanation FROM audit WHERE event_id = %s AND recipient = '%s'", x40,
            want[i].recipient);
        const char *mark = strstr(want[i].why, "{today}");
        if (mark)
            snprintf(expect, sizeof expect, "%.*s%s%s", (int)(mark - want[i].why),
                     want[i].why, today, mark + strlen("{today}"));
        else
            snprintf(expect, sizeof expect, "%s", want[i].why);
        assert_string_equal(why, expect);
        /* Never delivered: no delivery row but the denial, in no inbox. */
        assert_int_equal(broker_count(h,
                                      "deliveries WHERE event_id = %s AND state != "
                                      "'denied'",
                                      x40),
                         0);
        assert_int_equal(agent_count(h, want[i].recipient, "inbox WHERE id = %s", x40),
                         0);
        assert_int_equal(agent_count(h, want[i].sender,
                                     "outcomes WHERE id = %s AND outcome = 'denied' AND "
                                     "reason = '%.*s'",
                                     x40, (int)strcspn(want[i].row + 5, "|"),
                                     want[i].row + 5),
                         1);
    }
    assert_int_equal(agent_count(h, "coventry-cc", "inbox"), 0);
    assert_int_equal(agent_count(h, "cranstoun", "inbox"), 0);
    const char *const all[] = {"marac-coventry"};
    assert_exactly_once(h, all, 1);
}

/* ---- 7. faults ----------------------------------------------------------- */

static void test_transfer_to_offline_recipient_arrives_when_it_returns(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "marac-bham-east", (agent_opts_t){0});
    char json[8192], id[37];
    transfer_json(json, sizeof json, "coventry", true, NULL);
    submit(h, "marac-bham-east", json, id);
    assert_int_equal(wait_agent(h, "marac-bham-east",
                                "outcomes WHERE recipient = 'marac-coventry' AND "
                                "outcome = 'queued'",
                                1),
                     1);
    assert_int_equal(harness_count(h, "deliveries WHERE state = 'pending'"), 1);

    agent_start(x, "marac-coventry", (agent_opts_t){0});
    assert_int_equal(wait_agent(h, "marac-coventry", "inbox", 1), 1);
    assert_int_equal(wait_agent(h, "marac-bham-east",
                                "outcomes WHERE recipient = 'marac-coventry' AND "
                                "outcome = 'acknowledged'",
                                1),
                     1);
    const char *const all[] = {"marac-coventry"};
    assert_exactly_once(h, all, 1);
}

static void test_broker_killed_mid_scenario_loses_and_repeats_nothing(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "wmp", (agent_opts_t){0});
    agent_start(x, "marac-coventry", (agent_opts_t){.fast = true});
    agent_start(x, "idva-coventry", (agent_opts_t){0});

    char json[8192], id[37], ref[32];
    for (int i = 0; i < 3; i++) {
        snprintf(ref, sizeof ref, "WMP-26-%06d", 200 + i);
        referral_json(json, sizeof json, "coventry", NULL, 15 + i, "\"dash\"", ref);
        submit(h, "wmp", json, id);
    }
    /* The MARAC is deciding (and notifying) when the broker dies. */
    assert_int_equal(wait_agent(h, "marac-coventry", "inbox", 3), 3);
    assert_int_equal(harness_stop(h, SIGKILL), 128 + SIGKILL);
    for (int i = 3; i < 6; i++) {
        snprintf(ref, sizeof ref, "WMP-26-%06d", 200 + i);
        referral_json(json, sizeof json, "coventry", NULL, 15 + i, "\"dash\"", ref);
        submit(h, "wmp", json, id);
    }
    assert_int_equal(harness_start(h), 0);

    /* Every referral is decided once, and the referrer hears each decision. */
    assert_int_equal(wait_agent(h, "marac-coventry", "inbox", 6), 6);
    assert_int_equal(wait_agent(h, "wmp",
                                "inbox WHERE event_type = 'marac.referral.decision' AND "
                                "flow = 'referral-decision'",
                                6),
                     6);
    assert_int_equal(wait_agent(h, "wmp", "outbox WHERE state = 'receipted'", 6), 6);
    assert_int_equal(wait_agent(h, "marac-coventry", "outbox WHERE state = 'pending'", 0),
                     0);
    assert_int_equal(broker_count(h, "events WHERE sender = 'wmp'"), 6);
    assert_int_equal(broker_count(h, "audit WHERE action = 'decide' AND event_type = "
                                     "'marac.referral.decision' AND facts LIKE "
                                     "'decision=%%'"),
                     6);
    /* Each accepted case is notified to Coventry's IDVA service once. */
    long accepted = broker_count(h, "audit WHERE action = 'decide' AND event_type = "
                                    "'marac.referral.decision' AND facts = "
                                    "'decision=accepted'");
    assert_true(accepted >= 1);
    assert_int_equal(
        wait_broker(h,
                    "audit WHERE action = 'decide' AND decision = 'allow' AND "
                    "event_type = 'idva.notification'",
                    accepted),
        accepted);
    const char *const all[] = {"wmp", "marac-coventry", "idva-coventry"};
    assert_exactly_once(h, all, 3);
}

static void test_agent_killed_before_ack_keeps_one_copy(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "marac-bham-east", (agent_opts_t){0});
    pid_t marac = agent_start(x, "marac-coventry", (agent_opts_t){.crash_hook = true});
    char json[8192], id[37], x40[40];
    transfer_json(json, sizeof json, "coventry", true, NULL);
    submit(h, "marac-bham-east", json, id);
    id_sql(id, x40);

    /* The hook: exit 9 after the inbox commit, before the ACK. */
    assert_int_equal(agent_wait_exit(x, marac), 9);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox WHERE id = %s", x40), 1);
    assert_int_equal(broker_count(h, "audit WHERE action = 'ack'"), 0);

    agent_start(x, "marac-coventry", (agent_opts_t){0});
    assert_int_equal(wait_broker(h, "deliveries WHERE state = 'acknowledged'", 1), 1);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 1);
    char log[400];
    snprintf(log, sizeof log, "%s/marac-coventry.log", h->dir);
    assert_true(file_has(log, "already in the inbox; acknowledged again"));
    const char *const all[] = {"marac-coventry"};
    assert_exactly_once(h, all, 1);
}

/* ---- 8. keys that are not the partnership's ------------------------------ */

/* A key directory holding the broker's public key and, for org, either a
 * fresh keypair (unknown to the hub) or the real public key beside a secret
 * that is not its pair. */
static void rogue_keys(const harness_t *h, const char *name, const char *org,
                       bool real_public, shub_curve_keys_t *out)
{
    char dir[300], from[700], to[700];
    shub_err_t err;
    snprintf(dir, sizeof dir, "%s/%s", h->dir, name);
    assert_int_equal(mkdir(dir, 0700), 0);
    snprintf(from, sizeof from, "%s/keys/broker.pub", h->dir);
    snprintf(to, sizeof to, "%s/broker.pub", dir);
    char *text = slurp(from);
    assert_non_null(text);
    assert_int_equal(write_text(to, text), 0);
    free(text);
    assert_int_equal(shub_keys_generate(out, &err), 0);
    assert_int_equal(shub_keys_write(dir, org, out, true, &err), 0);
    if (real_public) {
        snprintf(from, sizeof from, "%s/keys/%s.pub", h->dir, org);
        snprintf(to, sizeof to, "%s/%s.pub", dir, org);
        text = slurp(from);
        assert_non_null(text);
        assert_int_equal(write_text(to, text), 0);
        free(text);
        assert_int_equal(shub_keys_read_public(to, out, &err), 0); /* secret stays */
    }
}

static void test_foreign_and_forged_keys_get_nowhere_and_are_logged(void **state)
{
    xb_t *x = *state;
    harness_t *h = x->h;
    agent_start(x, "wmp", (agent_opts_t){0});
    char json[8192], id[37], log[400], dir[400];
    referral_json(json, sizeof json, "coventry", NULL, 16, "\"dash\"", "WMP-26-000301");
    submit(h, "wmp", json, id);
    assert_int_equal(wait_agent(h, "wmp",
                                "outcomes WHERE recipient = 'marac-coventry' AND "
                                "outcome = 'queued'",
                                1),
                     1);

    /* A key orgs.yaml does not know, presented as Coventry's MARAC. */
    shub_curve_keys_t stranger, forged;
    rogue_keys(h, "stranger", "marac-coventry", false, &stranger);
    snprintf(dir, sizeof dir, "%s/stranger", h->dir);
    pid_t pid = agent_start(x, "marac-coventry", (agent_opts_t){.key_dir = dir});
    char needle[120];
    snprintf(needle, sizeof needle, "zap refused: unknown key=%s", stranger.public_z85);
    assert_true(wait_log(h, needle));
    assert_int_equal(agent_stop(x, pid, SIGTERM), 0);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 0);

    /* Coventry's real public key with a secret that is not its pair: the
     * agent will not present it (a key file that does not fit is a
     * configuration error, 78) ... */
    rogue_keys(h, "forged", "marac-coventry", true, &forged);
    snprintf(dir, sizeof dir, "%s/forged", h->dir);
    snprintf(log, sizeof log, "%s/marac-coventry.log", h->dir);
    pid = agent_start(x, "marac-coventry", (agent_opts_t){.key_dir = dir});
    assert_int_equal(agent_wait_exit(x, pid), 78);
    assert_true(file_has(log, "are not one keypair"));
    /* ... and a client that does fails the CURVE handshake. */
    tclient_t *c = tclient_new_keys(h, &forged);
    assert_non_null(c);
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.agent = "forged";
    assert_int_equal(tclient_send(c, &hello), 0);
    assert_null(tclient_recv(c, 1500));
    tclient_destroy(&c);
    /* The broker logs it: the handshake fails inside CURVE, before ZAP. */
    assert_true(wait_log(h, "reason=cryptographic: the client's key does not prove its secret"));

    /* Neither ever came online, nor took the referral waiting for Coventry. */
    assert_false(harness_log_has(h, "online org=marac-coventry"));
    assert_int_equal(harness_count(h, "deliveries WHERE recipient = 'marac-coventry' AND "
                                      "state = 'pending'"),
                     1);
    assert_int_equal(harness_count(h, "audit WHERE action != 'decide'"), 0);
    assert_int_equal(agent_count(h, "marac-coventry", "inbox"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_move_bham_east_to_coventry_transfers_only_allowed_fields),
        T(test_transfer_without_minutes_is_requested_and_resent),
        T(test_move_out_of_force_area_sends_only_external_fields),
        T(test_release_notice_reaches_release_area_not_old_area),
        T(test_istv_batch_reaches_csp_and_vrp_without_patients),
        T(test_denials_are_never_delivered_and_audited_with_reasons),
        T(test_transfer_to_offline_recipient_arrives_when_it_returns),
        T(test_broker_killed_mid_scenario_loses_and_repeats_nothing),
        T(test_agent_killed_before_ack_keeps_one_copy),
        T(test_foreign_and_forged_keys_get_nowhere_and_are_logged),
#undef T
    };
    if (getenv("SHUB_TEST_FILTER")) /* e.g. "*release*": run only matching tests */
        cmocka_set_test_filter(getenv("SHUB_TEST_FILTER"));
    return cmocka_run_group_tests(tests, NULL, NULL);
}
