/*
 * harness: see harness.h. Test-only code: it may exit the test on set-up
 * failure, but it never sleeps blindly; it waits on files and sockets with
 * deadlines.
 */
#include "harness.h"

#include "sharehub/alloc.h"
#include "sharehub/file.h"
#include "sharehub/seal.h"
#include "sharehub/transport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

pid_t harness_spawn(const char *log, const char *const *argv, const char *const *env)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("harness: fork");
        exit(1);
    }
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            dup2(fd, STDOUT_FILENO);
            close(fd);
        }
        unsetenv("SHUB_AGENT_CRASH_AFTER_COMMIT");
        for (size_t i = 0; env && env[i]; i++)
            putenv((char *)env[i]);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

const char *harness_program(const char *relative)
{
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", SHUB_BUILD_DIR, relative);
    return path;
}

static int write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f)
        return -1;
    int ok = fputs(text, f) >= 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

static int copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = in ? fopen(to, "wb") : NULL;
    char buf[8192];
    size_t n;
    int rc = in && out ? 0 : -1;
    while (rc == 0 && (n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            rc = -1;
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        rc = -1;
    return rc;
}

int harness_set_limits(const harness_t *h, const char *limits)
{
    char path[400], text[4096];
    snprintf(path, sizeof path, "%s/hub.yaml", h->dir);
    int n = snprintf(text, sizeof text,
                     "endpoint: \"tcp://127.0.0.1:*\"\n"
                     "database: broker.db\n"
                     "key_dir: keys\n"
                     "synchronous: full\n"
                     "limits:\n%s",
                     limits);
    return n > 0 && (size_t)n < sizeof text ? write_text(path, text) : -1;
}

harness_t *harness_new(const harness_org_t *orgs, size_t n_orgs, const char *agreements_dir)
{
    harness_t *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    snprintf(h->dir, sizeof h->dir, "/tmp/shub-test-XXXXXX");
    if (!mkdtemp(h->dir)) {
        free(h);
        return NULL;
    }
    snprintf(h->endpoint, sizeof h->endpoint, "ipc://%s/broker.ipc", h->dir);
    snprintf(h->log, sizeof h->log, "%s/broker.log", h->dir);

    char path[512], keys[400];
    snprintf(keys, sizeof keys, "%s/keys", h->dir);
    snprintf(path, sizeof path, "%s/agreements", h->dir);
    shub_err_t err;
    if (mkdir(path, 0700) != 0 || shub_keys_ensure_broker(keys, &err) != 0)
        goto fail;

    if (harness_set_limits(h, HARNESS_LIMITS) != 0)
        goto fail;

    char *orgs_yaml = calloc(1, 65536);
    if (!orgs_yaml)
        goto fail;
    size_t len = (size_t)snprintf(orgs_yaml, 65536, "areas: [birmingham-east, "
                                  "birmingham-west, coventry, dudley, sandwell, solihull, "
                                  "walsall, wolverhampton]\norgs:\n");
    for (size_t i = 0; i < n_orgs; i++) {
        shub_curve_keys_t k;
        if (shub_keys_generate(&k, &err) != 0 || shub_keys_write(keys, orgs[i].id, &k, true, &err))
            break;
        len += (size_t)snprintf(orgs_yaml + len, 65536 - len,
                                "  - id: %s\n    name: Test %s\n    kind: %s\n"
                                "    areas: [%s]\n",
                                orgs[i].id, orgs[i].id, orgs[i].kind, orgs[i].areas);
    }
    snprintf(path, sizeof path, "%s/orgs.yaml", h->dir);
    int rc = write_text(path, orgs_yaml);
    free(orgs_yaml);
    if (rc != 0)
        goto fail;

    DIR *d = agreements_dir ? opendir(agreements_dir) : NULL;
    struct dirent *e;
    while (d && (e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 6 || strcmp(e->d_name + n - 5, ".yaml") != 0)
            continue;
        char from[1024], to[1024];
        snprintf(from, sizeof from, "%s/%s", agreements_dir, e->d_name);
        snprintf(to, sizeof to, "%s/agreements/%s", h->dir, e->d_name);
        if (copy_file(from, to) != 0) {
            closedir(d);
            goto fail;
        }
    }
    if (d)
        closedir(d);
    return h;
fail:
    harness_destroy(&h);
    return NULL;
}

int harness_start(harness_t *h)
{
    char ready[400], config[300];
    snprintf(ready, sizeof ready, "%s/ready", h->dir);
    snprintf(config, sizeof config, "%s", h->dir);
    unlink(ready);
    const char *argv[] = {harness_program("broker/sharehub-broker"),
                          "--config",
                          config,
                          "--endpoint",
                          h->endpoint,
                          "--ready-file",
                          ready,
                          "--log-level",
                          "debug",
                          NULL};
    pid_t pid = harness_spawn(h->log, argv, NULL);
    h->broker = pid;
    for (int waited = 0; waited < 10000; waited += 10) {
        if (access(ready, F_OK) == 0)
            return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            h->broker = 0;
            return -1;
        }
        nap_ms(10);
    }
    return -1;
}

int harness_stop(harness_t *h, int sig)
{
    if (!h->broker)
        return -1;
    kill(h->broker, sig);
    int status = 0;
    waitpid(h->broker, &status, 0);
    h->broker = 0;
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void harness_destroy(harness_t **h_p)
{
    if (!h_p || !*h_p)
        return;
    harness_t *h = *h_p;
    if (h->broker)
        harness_stop(h, SIGTERM);
    if (getenv("SHUB_KEEP_TEST_DIR"))
        fprintf(stderr, "harness: kept %s\n", h->dir);
    else
        shub_file_remove_tree(h->dir);
    free(h);
    *h_p = NULL;
}

int harness_file_lines(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strstr(line, needle) != NULL;
    if (f)
        fclose(f);
    return n;
}

bool harness_log_has(const harness_t *h, const char *needle)
{
    return harness_file_lines(h->log, needle) > 0;
}

/*
 * The store keeps ids of interned names, so that a test can say what it
 * means in the words the audit uses, these TEMP views (which come before the
 * file's own tables for an unqualified name) put the text back: `audit` as
 * its columns read, `events` with its senders, and `deliveries`, each
 * recipient's outcome with its
 * stored copy: 'pending' while a copy waits (sent or not), 'acknowledged'
 * once it is gone, 'denied' or 'dead'.
 */
#define NAME_OF(col) "(SELECT text FROM main.names WHERE id = a." col ") AS " col
static const char views_sql[] =
    "CREATE TEMP VIEW audit AS SELECT a.seq AS seq, a.at AS at, " NAME_OF("action")
    ", a.event_id AS event_id, " NAME_OF("event_type") ", " NAME_OF("sender") ", "
    NAME_OF("recipient") ", " NAME_OF("decision") ", " NAME_OF("reason") ", "
    NAME_OF("explanation") ", v.id AS agreement, v.version AS agreement_version, "
    "v.content_hash AS agreement_hash, "
    NAME_OF("flow") ", " NAME_OF("purpose") ", " NAME_OF("legal_basis") ", "
    NAME_OF("consent") ", " NAME_OF("area") ", a.occurred AS occurred, "
    NAME_OF("fields") ", " NAME_OF("fields_shared") ", " NAME_OF("fields_stripped") ", "
    NAME_OF("facts") ", a.payload_hash AS payload_hash, a.subject_hash AS subject_hash,"
    " a.case_hash AS case_hash, a.actor_hash AS actor_hash"
    " FROM main.audit a LEFT JOIN main.agreement_versions v ON v.vid = a.agreement;"
    "CREATE TEMP VIEW deliveries AS SELECT o.event_id AS event_id,"
    " (SELECT text FROM main.names WHERE id = o.recipient) AS recipient,"
    " CASE o.state WHEN 4 THEN 'denied' WHEN 5 THEN 'dead' ELSE CASE WHEN EXISTS"
    " (SELECT 1 FROM main.sealed c WHERE c.event_id = o.event_id AND c.recipient ="
    " o.recipient) THEN 'pending' ELSE 'acknowledged' END END AS state,"
    " (SELECT text FROM main.names WHERE id = o.reason) AS reason,"
    " (SELECT c.copy FROM main.sealed c WHERE c.event_id = o.event_id AND c.recipient ="
    " o.recipient) AS sealed FROM main.outcomes o;"
    "CREATE TEMP VIEW events AS SELECT e.event_id AS event_id,"
    " (SELECT text FROM main.names WHERE id = e.sender) AS sender,"
    " e.received_at AS received_at FROM main.events e;";
#undef NAME_OF

sqlite3 *harness_sqlite_open(const char *path)
{
    sqlite3 *db = NULL;
    if (access(path, F_OK) != 0 ||
        sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_busy_timeout(db, 5000);
    sqlite3_stmt *st = NULL;
    bool broker = sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE name = 'names'",
                                     -1, &st, NULL) == SQLITE_OK &&
                  sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if (broker && sqlite3_exec(db, views_sql, NULL, NULL, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness: views: %s\n", sqlite3_errmsg(db));
        sqlite3_close(db);
        return NULL;
    }
    return db;
}

static int query(const char *path, const char *sql, char *out, size_t size, long *num)
{
    int rc = -1;
    sqlite3 *db = harness_sqlite_open(path);
    if (!db)
        goto done;
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        fprintf(stderr, "harness: %s: %s\n", sql, sqlite3_errmsg(db));
        goto done;
    }
    if (sqlite3_step(st) == SQLITE_ROW) {
        if (num)
            *num = sqlite3_column_int64(st, 0);
        if (out) {
            const unsigned char *t = sqlite3_column_text(st, 0);
            snprintf(out, size, "%s", t ? (const char *)t : "");
        }
        rc = 0;
    }
    sqlite3_finalize(st);
done:
    sqlite3_close(db);
    return rc;
}

long harness_file_long(const char *path, const char *sql)
{
    long n = -1;
    return query(path, sql, NULL, 0, &n) == 0 ? n : -1;
}

long harness_file_count(const char *path, const char *sql)
{
    char full[4096];
    snprintf(full, sizeof full, "SELECT count(*) FROM %s", sql);
    return harness_file_long(path, full);
}

int harness_file_text(const char *path, const char *sql, char *out, size_t size)
{
    return query(path, sql, out, size, NULL);
}

long harness_file_wait_count(const char *path, const char *sql, long want, int ms)
{
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        long n = harness_file_count(path, sql);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long spent = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
        if (n == want || spent >= ms)
            return n;
        nap_ms(20);
    }
}

static void broker_db(const harness_t *h, char path[400])
{
    snprintf(path, 400, "%s/broker.db", h->dir);
}

long harness_count(const harness_t *h, const char *sql)
{
    char path[400];
    broker_db(h, path);
    return harness_file_count(path, sql);
}

long harness_count_until(const harness_t *h, const char *sql, long want, int timeout_ms)
{
    long n = harness_count(h, sql);
    for (int waited = 0; n != want && waited < timeout_ms; waited += 20) {
        usleep(20 * 1000);
        n = harness_count(h, sql);
    }
    return n;
}

int harness_text(const harness_t *h, const char *sql, char *out, size_t size)
{
    char path[400];
    broker_db(h, path);
    return harness_file_text(path, sql, out, size);
}

/* ---- agent processes ---------------------------------------------------- */

pid_t harness_agent_start(const harness_t *h, const char *org, const char *const *extra,
                          const char *const *env)
{
    char db[400], log[400];
    snprintf(db, sizeof db, "%s/%s.db", h->dir, org);
    snprintf(log, sizeof log, "%s/%s.log", h->dir, org);
    const char *argv[40] = {harness_program("agents/sharehub-agent"),
                            "--log-level", "debug", "run", "--org", org, "--config", h->dir,
                            "--db", db};
    int argc = 10;
    bool own_broker = false;
    for (size_t i = 0; extra && extra[i]; i++)
        own_broker |= strcmp(extra[i], "--broker") == 0;
    if (!own_broker) {
        argv[argc++] = "--broker";
        argv[argc++] = h->endpoint;
    }
    for (size_t i = 0; extra && extra[i] && argc < 39; i++)
        argv[argc++] = extra[i];
    argv[argc] = NULL;
    return harness_spawn(log, argv, env);
}

int harness_proc_stop(pid_t pid, int sig)
{
    kill(pid, sig);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

int harness_proc_wait(pid_t pid, int ms)
{
    for (int waited = 0; waited < ms; waited += 10) {
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        nap_ms(10);
    }
    return -1;
}

/* ---- clients ---------------------------------------------------------- */

tclient_t *tclient_new_keys(const harness_t *h, const shub_curve_keys_t *keys)
{
    tclient_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->keys = *keys;
    char path[400];
    shub_curve_keys_t broker;
    shub_err_t err;
    snprintf(path, sizeof path, "%s/keys/broker.pub", h->dir);
    if (shub_keys_read_public(path, &broker, &err) != 0)
        goto fail;
    c->ctx = zmq_ctx_new();
    shub_transport_opts_t o = {
        .endpoint = h->endpoint,
        .public_key = c->keys.public_key,
        .secret_key = c->keys.secret_key,
        .server_key = broker.public_key,
        .max_message_bytes = SHUB_MSG_MAX_BYTES,
    };
    c->sock = shub_transport_connect(c->ctx, &o, &err);
    if (!c->sock)
        goto fail;
    return c;
fail:
    tclient_destroy(&c);
    return NULL;
}

tclient_t *tclient_new(const harness_t *h, const char *org)
{
    char keys[400];
    shub_curve_keys_t k;
    shub_err_t err;
    snprintf(keys, sizeof keys, "%s/keys", h->dir);
    if (shub_keys_read_pair(keys, org, &k, &err) != 0)
        return NULL;
    tclient_t *c = tclient_new_keys(h, &k);
    if (c)
        snprintf(c->org, sizeof c->org, "%s", org);
    return c;
}

void tclient_destroy(tclient_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    tclient_t *c = *c_p;
    shub_transport_close(&c->sock, 0);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    for (size_t i = 0; i < c->n_stash; i++)
        shub_msg_destroy(&c->stash[i]);
    for (size_t i = 0; i < 3; i++)
        shub_msg_destroy(&c->batch[i].msg);
    shub_buf_free(&c->buf);
    free(c);
    *c_p = NULL;
}

int tclient_send(tclient_t *c, const shub_msg_t *msg)
{
    shub_err_t err;
    if (shub_msg_encode(msg, &c->buf, &err) != 0) {
        fprintf(stderr, "tclient: encode: %s: %s\n", err.path, err.msg);
        return -1;
    }
    return tclient_send_raw(c, c->buf.data, c->buf.len);
}

int tclient_send_raw(tclient_t *c, const void *data, size_t len)
{
    return zmq_send(c->sock, data, len, 0) == (int)len ? 0 : -1;
}

static shub_msg_t *socket_read(tclient_t *c, long left, bool heartbeats);

/* The next message from the socket within `left` ms, HEARTBEATs dropped. */
static shub_msg_t *socket_next(tclient_t *c, long left)
{
    return socket_read(c, left, false);
}

shub_msg_t *tclient_any(tclient_t *c, int timeout_ms)
{
    return socket_read(c, timeout_ms, true);
}

static shub_msg_t *socket_read(tclient_t *c, long left, bool heartbeats)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        struct timespec t1;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long rest = left - ((t1.tv_sec - t0.tv_sec) * 1000 +
                            (t1.tv_nsec - t0.tv_nsec) / 1000000);
        bool last = rest <= 0; /* one look without waiting, then give up */
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, last ? 0 : rest) <= 0) {
            if (last)
                return NULL;
            continue;
        }
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, c->sock, 0) < 0) {
            zmq_msg_close(&m);
            continue;
        }
        shub_msg_t *msg = NULL;
        shub_err_t err;
        int rc = shub_msg_decode(zmq_msg_data(&m), zmq_msg_size(&m), &msg, &err);
        zmq_msg_close(&m);
        if (rc) {
            fprintf(stderr, "tclient: bad message from broker: %s: %s\n", err.path, err.msg);
            continue;
        }
        if (msg->type == SHUB_MSG_HEARTBEAT && !heartbeats) {
            shub_msg_destroy(&msg);
            continue;
        }
        return msg;
    }
}

static void stash_push(tclient_t *c, shub_msg_t *m)
{
    if (c->n_stash == TCLIENT_STASH) { /* a test that never reads them: drop the oldest */
        shub_msg_destroy(&c->stash[0]);
        memmove(c->stash, c->stash + 1, (TCLIENT_STASH - 1) * sizeof *c->stash);
        c->n_stash--;
    }
    c->stash[c->n_stash++] = m;
}

static shub_msg_t *stash_take(tclient_t *c, int type)
{
    for (size_t i = 0; i < c->n_stash; i++) {
        shub_msg_t *m = c->stash[i];
        if (type < 0 ? m->type != SHUB_MSG_CHECKPOINT : (int)m->type == type) {
            memmove(c->stash + i, c->stash + i + 1, (c->n_stash - i - 1) * sizeof *c->stash);
            c->n_stash--;
            return m;
        }
    }
    return NULL;
}

shub_msg_t *tclient_recv(tclient_t *c, int timeout_ms)
{
    shub_msg_t *m = stash_take(c, -1);
    if (m)
        return m;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (!(m = socket_next(c, left)))
            return NULL;
        if (m->type != SHUB_MSG_CHECKPOINT)
            return m;
        stash_push(c, m); /* for tclient_expect(CHECKPOINT) */
    }
}

shub_msg_t *tclient_expect(tclient_t *c, shub_msg_type_t type, int timeout_ms)
{
    shub_msg_t *m = stash_take(c, (int)type);
    if (m)
        return m;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        long left = timeout_ms - ((t1.tv_sec - t0.tv_sec) * 1000 +
                                  (t1.tv_nsec - t0.tv_nsec) / 1000000);
        if (!(m = socket_next(c, left)))
            return NULL;
        if (m->type == type)
            return m;
        stash_push(c, m);
    }
}

/* One item of a batch message: the message it came in, and how far through
 * it the reader is. */
static bool batch_next(tclient_t *c, shub_msg_type_t type, int kind, int timeout_ms,
                       size_t *index)
{
    tbatch_t *b = &c->batch[kind];
    uint32_t count = 0;
    for (;;) {
        if (b->msg) {
            count = type == SHUB_MSG_RECEIPT   ? b->msg->receipt.count
                    : type == SHUB_MSG_DELIVER ? b->msg->deliver.count
                                               : b->msg->update.count;
            if (b->next < count) {
                *index = b->next++;
                return true;
            }
            shub_msg_destroy(&b->msg);
        }
        b->next = 0;
        if (!(b->msg = tclient_expect(c, type, timeout_ms)))
            return false;
    }
}

const shub_receipt_t *tclient_receipt(tclient_t *c, int timeout_ms)
{
    size_t i;
    return batch_next(c, SHUB_MSG_RECEIPT, 0, timeout_ms, &i)
               ? &c->batch[0].msg->receipt.list[i]
               : NULL;
}

const shub_deliver_t *tclient_delivery(tclient_t *c, int timeout_ms)
{
    size_t i;
    return batch_next(c, SHUB_MSG_DELIVER, 1, timeout_ms, &i)
               ? &c->batch[1].msg->deliver.list[i]
               : NULL;
}

const shub_update_t *tclient_update(tclient_t *c, int timeout_ms)
{
    size_t i;
    return batch_next(c, SHUB_MSG_UPDATE, 2, timeout_ms, &i)
               ? &c->batch[2].msg->update.list[i]
               : NULL;
}

int tclient_ack(tclient_t *c, const shub_id_t *id)
{
    shub_id_t copy = *id;
    shub_msg_t ack = {.type = SHUB_MSG_ACK};
    ack.ack.ids = &copy;
    ack.ack.count = 1;
    return tclient_send(c, &ack);
}

int tclient_hello(tclient_t *c)
{
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.agent = "sharehub-test";
    if (tclient_send(c, &hello) != 0)
        return -1;
    shub_msg_t *w = tclient_expect(c, SHUB_MSG_WELCOME, 5000);
    int rc = w ? 0 : -1;
    shub_msg_destroy(&w);
    return rc;
}

int tclient_open(const tclient_t *c, const shub_deliver_t *d, shub_arena_t *arena,
                 shub_event_t *ev)
{
    if (d->sealed_len < SHUB_SEAL_OVERHEAD)
        return -1;
    size_t n = d->sealed_len - SHUB_SEAL_OVERHEAD;
    uint8_t *plain = malloc(n ? n : 1);
    if (!plain)
        return -1;
    int rc = -1;
    shub_err_t err;
    shub_opener_t *o = shub_opener_new(c->keys.public_key, c->keys.secret_key);
    if (o && shub_unseal(o, d->sealed, d->sealed_len, plain) == 0 &&
        shub_event_decode(arena, plain, n, ev, &err) == 0 &&
        memcmp(ev->id.bytes, d->id.bytes, SHUB_ID_SIZE) == 0)
        rc = 0;
    shub_opener_destroy(&o);
    free(plain);
    return rc;
}

static shub_val_t text(shub_arena_t *a, const char *s)
{
    shub_val_t v;
    shub_val_str(a, s, strlen(s), &v);
    return v;
}

void share_fill(shub_share_t *s, shub_arena_t *a, const char *type, const char *area,
                const char *const *to, uint32_t n_to, int dash_score)
{
    memset(s, 0, sizeof *s);
    shub_id_generate(&s->ev.id, shub_now_ms());
    s->ev.type = type;
    s->ev.occurred_ms = shub_now_ms() - 60000;
    s->ev.case_ref = "CASE-0001";
    s->ev.subject_ref = "SUBJ-42";
    s->ev.area = area;
    s->ev.purpose = "marac-risk-management";
    s->ev.basis = "uk-gdpr-6-1-e";
    s->ev.consent = SHUB_CONSENT_GIVEN;
    s->to = to;
    s->to_count = n_to;

    shub_val_t p = shub_val_map(), victim = shub_val_map(), addr = shub_val_map();
    shub_val_t risk = shub_val_map(), incident = shub_val_map();
    shub_val_t children = shub_val_array(), actions = shub_val_array();
    shub_val_put(a, &addr, "postcode", text(a, "CV1 2AB"));
    shub_val_put(a, &victim, "name", text(a, "Jane Example"));
    shub_val_put(a, &victim, "dob", text(a, "1990-04-01"));
    shub_val_put(a, &victim, "address", addr);
    shub_val_put(a, &risk, "dash_score", shub_val_int(dash_score));
    shub_val_put(a, &incident, "summary", text(a, "Assault at home address; police attended."));
    for (int i = 0; i < 2; i++) {
        shub_val_t child = shub_val_map(), action = shub_val_map();
        shub_val_put(a, &child, "name", text(a, i ? "Child B" : "Child A"));
        shub_val_push(a, &children, child);
        shub_val_put(a, &action, "owner", text(a, i ? "idva-coventry" : "wmp"));
        shub_val_put(a, &action, "due", text(a, "2026-12-01"));
        shub_val_push(a, &actions, action);
    }
    shub_val_put(a, &p, "victim", victim);
    shub_val_put(a, &p, "risk", risk);
    shub_val_put(a, &p, "incident", incident);
    shub_val_t referral = shub_val_map();
    shub_val_put(a, &referral, "route", text(a, "police"));
    shub_val_put(a, &p, "referral", referral);
    shub_val_put(a, &p, "children", children);
    shub_val_put(a, &p, "actions", actions);
    s->ev.payload = p;
}

tclient_t *tclient_online(const harness_t *h, const char *org)
{
    tclient_t *c = tclient_new(h, org);
    if (c && tclient_hello(c) != 0)
        tclient_destroy(&c);
    return c;
}
