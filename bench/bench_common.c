/*
 * bench_common: see bench_common.h. Benchmark-only code: set-up failures
 * print a line and exit (a benchmark that cannot start has nothing to
 * report), and nothing here sleeps blindly: the broker is awaited through its
 * ready file, clients through WELCOME.
 */
#include "bench_common.h"
#include "bench_report.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/file.h"
#include "sharehub/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

int64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("cannot write", path);
}

/* The bench agreement: police refer to any MARAC; the flow keeps eight of
 * the payload's fifteen leaves (victim name and date of birth, the risk, the
 * incident summary, children's names, actions, the referral route), so every
 * delivery is minimised and the audit row names what was stripped. */
static const char agreement_yaml[] =
    "id: bench-marac\n"
    "title: Benchmark MARAC referral agreement\n"
    "version: 1\n"
    "status: active\n"
    "valid_from: 2025-01-01\n"
    "valid_until: 2035-12-31\n"
    "review_date: 2030-01-01\n"
    "retention: \"Life of the MARAC case plus six years.\"\n"
    "parties: {kinds: [police, marac]}\n"
    "purposes: [marac-risk-management]\n"
    "legal_basis:\n"
    "  - {id: uk-gdpr-6-1-e, text: \"UK GDPR Article 6(1)(e): public task\"}\n"
    "data_dictionary:\n"
    "  - {field: victim.name, class: personal}\n"
    "  - {field: victim.dob, class: personal}\n"
    "  - {field: victim.address.postcode, class: personal}\n"
    "  - {field: perpetrator.name, class: criminal-offence}\n"
    "  - {field: perpetrator.dob, class: criminal-offence}\n"
    "  - {field: risk.dash_score, class: special-category}\n"
    "  - {field: risk.criteria, class: anonymous}\n"
    "  - {field: incident.date, class: criminal-offence}\n"
    "  - {field: incident.summary, class: criminal-offence}\n"
    "  - {field: incident.weapon, class: criminal-offence}\n"
    "  - {field: children.name, class: child}\n"
    "  - {field: children.dob, class: child}\n"
    "  - {field: actions.owner, class: anonymous}\n"
    "  - {field: actions.due, class: anonymous}\n"
    "  - {field: referral.route, class: anonymous}\n"
    "consent:\n"
    "  required: false\n"
    "flows:\n"
    "  - id: referral\n"
    "    from: {kinds: [police]}\n"
    "    to: {kinds: [marac]}\n"
    "    events: [" BENCH_EVENT_TYPE "]\n"
    "    fields: [victim.name, victim.dob, risk, incident.summary, children.name,\n"
    "             actions, referral.route]\n"
    "    condition: \"payload.risk.dash_score >= 14\"\n"
    "    report: [referral.route]\n"
    "    ack_within_hours: 24\n";

bench_env_t *bench_env_new(const char *parent, const bench_org_t *orgs, size_t n_orgs,
                           unsigned batch_max, bool sync_normal)
{
    bench_env_t *env = shub_calloc(1, sizeof *env);
    if (!env)
        die("out of memory", NULL);
    if (!parent)
        parent = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(env->dir, sizeof env->dir, "%s/shub-bench-XXXXXX", parent);
    if (!mkdtemp(env->dir))
        die("cannot create a directory under", parent);
    snprintf(env->endpoint, sizeof env->endpoint, "ipc://%s/broker.ipc", env->dir);
    snprintf(env->log, sizeof env->log, "%s/broker.log", env->dir);
    env->synchronous_full = !sync_normal;

    char path[700], keys[600];
    shub_err_t err;
    snprintf(keys, sizeof keys, "%s/keys", env->dir);
    snprintf(path, sizeof path, "%s/agreements", env->dir);
    if (mkdir(path, 0700) != 0 || shub_keys_ensure_broker(keys, &err) != 0)
        die("cannot create broker keys in", keys);

    /* Long timers: a benchmark must not see redeliveries or peer timeouts
     * caused by its own load. */
    char hub[1024];
    snprintf(hub, sizeof hub,
             "endpoint: \"tcp://127.0.0.1:*\"\n"
             "database: broker.db\n"
             "key_dir: keys\n"
             "synchronous: %s\n"
             "limits:\n"
             "  heartbeat_ms: 2000\n"
             "  peer_timeout_ms: 60000\n"
             "  redeliver_ms: 600000\n"
             "  max_attempts: 10\n"
             "  checkpoint_every: 10000\n"
             "  window: 256\n"
             "  batch_max: %u\n",
             sync_normal ? "normal" : "full", batch_max);
    snprintf(path, sizeof path, "%s/hub.yaml", env->dir);
    write_text(path, hub);

    size_t cap = 512 + n_orgs * 160, len = 0;
    char *yaml = shub_malloc(cap);
    if (!yaml)
        die("out of memory", NULL);
    len += (size_t)snprintf(yaml, cap, "areas: [birmingham-east, birmingham-west, coventry,"
                                       " dudley, sandwell, solihull, walsall, wolverhampton]\n"
                                       "orgs:\n");
    for (size_t i = 0; i < n_orgs; i++) {
        shub_curve_keys_t k;
        if (shub_keys_generate(&k, &err) != 0 ||
            shub_keys_write(keys, orgs[i].id, &k, true, &err) != 0)
            die("cannot write keys for", orgs[i].id);
        len += (size_t)snprintf(yaml + len, cap - len,
                                "  - {id: %s, name: Bench %s, kind: %s, areas: [all]}\n",
                                orgs[i].id, orgs[i].id, orgs[i].kind);
    }
    snprintf(path, sizeof path, "%s/orgs.yaml", env->dir);
    write_text(path, yaml);
    shub_free(yaml);
    snprintf(path, sizeof path, "%s/agreements/bench-marac.yaml", env->dir);
    write_text(path, agreement_yaml);
    return env;
}

void bench_env_start(bench_env_t *env, const char *broker, const char *level,
                     const char *wrap)
{
    char ready[700];
    snprintf(ready, sizeof ready, "%s/ready", env->dir);
    unlink(ready);
    pid_t pid = fork();
    if (pid < 0)
        die("fork", strerror(errno));
    if (pid == 0) {
        int fd = open(env->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        char words[1024], *argv[48];
        int argc = 0;
        snprintf(words, sizeof words, "%s", wrap ? wrap : "");
        for (char *save = NULL, *w = strtok_r(words, " ", &save); w && argc < 32;
             w = strtok_r(NULL, " ", &save))
            argv[argc++] = w;
        const char *tail[] = {broker, "--config", env->dir, "--endpoint", env->endpoint,
                              "--ready-file", ready, "--log-level", level};
        for (size_t i = 0; i < sizeof tail / sizeof tail[0]; i++)
            argv[argc++] = (char *)tail[i];
        if (env->database[0]) {
            argv[argc++] = "--db";
            argv[argc++] = env->database;
        }
        argv[argc] = NULL;
        execvp(argv[0], argv);
        _exit(127);
    }
    env->broker = pid;
    for (int waited = 0; waited < 120000; waited += 5) {
        if (access(ready, F_OK) == 0)
            return;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid) {
            env->broker = 0;
            die("the broker exited at start; see", env->log);
        }
        struct timespec ts = {0, 5000000L};
        nanosleep(&ts, NULL);
    }
    die("the broker did not become ready; see", env->log);
}

void bench_env_stop(bench_env_t *env)
{
    if (!env->broker)
        return;
    kill(env->broker, SIGTERM);
    waitpid(env->broker, NULL, 0);
    env->broker = 0;
}

void bench_env_destroy(bench_env_t **env_p)
{
    if (!env_p || !*env_p)
        return;
    bench_env_t *env = *env_p;
    bench_env_stop(env);
    if (getenv("SHUB_KEEP_BENCH_DIR"))
        fprintf(stderr, "bench: kept %s\n", env->dir);
    else
        shub_file_remove_tree(env->dir);
    shub_free(env);
    *env_p = NULL;
}

long bench_peak_rss_kib(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = strtol(line + 6, NULL, 10);
    if (f)
        fclose(f);
    return kib;
}

/* ---- clients ------------------------------------------------------------ */

bench_client_t *bench_client_new(const bench_env_t *env, const char *org)
{
    bench_client_t *c = shub_calloc(1, sizeof *c);
    if (!c)
        die("out of memory", NULL);
    snprintf(c->org, sizeof c->org, "%s", org);
    char keys[600], path[700];
    shub_curve_keys_t own, broker;
    shub_err_t err;
    snprintf(keys, sizeof keys, "%s/keys", env->dir);
    snprintf(path, sizeof path, "%s/broker.pub", keys);
    if (shub_keys_read_pair(keys, org, &own, &err) != 0 ||
        shub_keys_read_public(path, &broker, &err) != 0)
        die("cannot read keys for", org);
    c->ctx = zmq_ctx_new();
    shub_transport_opts_t o = {
        .endpoint = env->endpoint,
        .public_key = own.public_key,
        .secret_key = own.secret_key,
        .server_key = broker.public_key,
        .max_message_bytes = SHUB_MSG_MAX_BYTES,
    };
    c->sock = c->ctx ? shub_transport_connect(c->ctx, &o, &err) : NULL;
    if (!c->sock)
        die("cannot connect", org);
    return c;
}

void bench_client_destroy(bench_client_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    bench_client_t *c = *c_p;
    shub_transport_close(&c->sock, 0);
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    shub_buf_free(&c->buf);
    shub_free(c);
    *c_p = NULL;
}

int bench_client_send(bench_client_t *c, const shub_msg_t *msg)
{
    shub_err_t err;
    if (shub_msg_encode(msg, &c->buf, &err) != 0)
        return -1;
    return zmq_send(c->sock, c->buf.data, c->buf.len, 0) == (int)c->buf.len ? 0 : -1;
}

shub_msg_t *bench_client_recv(bench_client_t *c, int timeout_ms)
{
    zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&item, 1, timeout_ms) <= 0)
        return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, c->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return NULL;
    }
    shub_msg_t *msg = NULL;
    shub_err_t err;
    int rc = shub_msg_decode(zmq_msg_data(&m), zmq_msg_size(&m), &msg, &err);
    zmq_msg_close(&m);
    return rc == 0 ? msg : NULL;
}

int bench_client_hello(bench_client_t *c, uint32_t window)
{
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.agent = "sharehub-bench";
    hello.hello.window = window;
    if (bench_client_send(c, &hello) != 0)
        return -1;
    int64_t deadline = bench_now_ns() + 10000000000LL;
    while (bench_now_ns() < deadline) {
        shub_msg_t *m = bench_client_recv(c, 100);
        bool welcome = m && m->type == SHUB_MSG_WELCOME;
        shub_msg_destroy(&m);
        if (welcome)
            return 0;
    }
    return -1;
}

/* ---- the event ---------------------------------------------------------- */

static int put_text(shub_arena_t *a, shub_val_t *map, const char *key, const char *s)
{
    shub_val_t v;
    int rc = shub_val_str(a, s, strlen(s), &v);
    return rc ? rc : shub_val_put(a, map, key, v);
}

static int person(shub_arena_t *a, shub_val_t *out, const char *name, const char *dob)
{
    *out = shub_val_map();
    int rc = put_text(a, out, "name", name);
    return rc ? rc : put_text(a, out, "dob", dob);
}

int bench_share_fill(shub_share_t *s, shub_arena_t *a, const char *const *to, uint32_t n_to)
{
    memset(s, 0, sizeof *s);
    s->ev.type = BENCH_EVENT_TYPE;
    s->ev.occurred_ms = shub_now_ms() - 3600000;
    s->ev.case_ref = "WMP-DA-2025-118734";
    s->ev.subject_ref = "subj-9a41c7e2";
    s->ev.area = "coventry";
    s->ev.purpose = "marac-risk-management";
    s->ev.basis = "uk-gdpr-6-1-e";
    s->ev.consent = SHUB_CONSENT_REFUSED;
    s->ev.override = "risk-of-serious-harm";
    s->to = to;
    s->to_count = n_to;
    bench_share_renumber(s, 0, 0);

    /* Names and references are invented; the shape follows a police DASH
     * referral to MARAC (DOMAIN.md). */
    int rc = 0;
    shub_val_t p = shub_val_map(), victim, perp, addr = shub_val_map();
    shub_val_t risk = shub_val_map(), incident = shub_val_map(), referral = shub_val_map();
    shub_val_t children = shub_val_array(), actions = shub_val_array();
    rc = rc ? rc : person(a, &victim, "Jane Example", "1991-03-07");
    rc = rc ? rc : put_text(a, &addr, "postcode", "CV1 2AB");
    rc = rc ? rc : shub_val_put(a, &victim, "address", addr);
    rc = rc ? rc : person(a, &perp, "John Example", "1988-11-21");
    rc = rc ? rc : shub_val_put(a, &risk, "dash_score", shub_val_int(16));
    rc = rc ? rc : put_text(a, &risk, "criteria", "visible-high-risk");
    rc = rc ? rc : put_text(a, &incident, "date", "2025-06-01");
    rc = rc ? rc : put_text(a, &incident, "summary",
                            "Strangulation and threats to kill at the home address; "
                            "third incident this year.");
    rc = rc ? rc : shub_val_put(a, &incident, "weapon", shub_val_bool(false));
    static const char *const kids[][2] = {{"Amy Example", "2016-05-02"},
                                          {"Ben Example", "2019-09-14"}};
    static const char *const acts[][3] = {{"A-201", "wmp", "2025-06-07"},
                                          {"A-202", "idva-coventry", "2025-06-05"}};
    for (int i = 0; i < 2 && rc == 0; i++) {
        shub_val_t child, act = shub_val_map();
        rc = person(a, &child, kids[i][0], kids[i][1]);
        rc = rc ? rc : shub_val_push(a, &children, child);
        rc = rc ? rc : put_text(a, &act, "id", acts[i][0]);
        rc = rc ? rc : put_text(a, &act, "owner", acts[i][1]);
        rc = rc ? rc : put_text(a, &act, "due", acts[i][2]);
        rc = rc ? rc : shub_val_push(a, &actions, act);
    }
    rc = rc ? rc : put_text(a, &referral, "route", "police");
    rc = rc ? rc : shub_val_put(a, &p, "victim", victim);
    rc = rc ? rc : shub_val_put(a, &p, "perpetrator", perp);
    rc = rc ? rc : shub_val_put(a, &p, "risk", risk);
    rc = rc ? rc : shub_val_put(a, &p, "incident", incident);
    rc = rc ? rc : shub_val_put(a, &p, "children", children);
    rc = rc ? rc : shub_val_put(a, &p, "actions", actions);
    rc = rc ? rc : shub_val_put(a, &p, "referral", referral);
    s->ev.payload = p;
    return rc;
}

void bench_share_renumber(shub_share_t *s, uint16_t tag, uint32_t seq)
{
    shub_id_generate(&s->ev.id, shub_now_ms());
    uint8_t *b = s->ev.id.bytes;
    b[10] = (uint8_t)(tag >> 8);
    b[11] = (uint8_t)tag;
    b[12] = (uint8_t)(seq >> 24);
    b[13] = (uint8_t)(seq >> 16);
    b[14] = (uint8_t)(seq >> 8);
    b[15] = (uint8_t)seq;
}

int bench_share_encode(shub_buf_t *out)
{
    static const char *const to[] = {"marac-1"};
    shub_arena_t *a = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    shub_err_t err;
    int rc = a && bench_share_fill(&m.share, a, to, 1) == 0 &&
                     shub_msg_encode(&m, out, &err) == 0
                 ? 0
                 : -1;
    shub_arena_destroy(&a);
    return rc;
}

void bench_id_unpack(const shub_id_t *id, uint16_t *tag, uint32_t *seq)
{
    const uint8_t *b = id->bytes;
    *tag = (uint16_t)(b[10] << 8 | b[11]);
    *seq = (uint32_t)b[12] << 24 | (uint32_t)b[13] << 16 | (uint32_t)b[14] << 8 | b[15];
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bench_percentile(int64_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_i64);
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

bool bench_opts_take(const bench_opts_t *o, int c, const char *arg)
{
    switch (c) {
    case 'R':
        *o->runs = bench_runs_parse(arg);
        return true;
    case 'e':
        *o->events = atol(arg);
        return true;
    case 'd':
        *o->dir = arg;
        return true;
    case 't':
        *o->timeout_s = atoi(arg);
        return true;
    case 'h':
        o->usage(stdout);
        exit(0);
    default:
        return false;
    }
}
