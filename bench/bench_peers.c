/*
 * bench_peers: the brokers sharehub's figures are set against, measured in
 * the same `make bench` run with the same number of events (--events, as
 * bench_broker's) and the very bytes of bench_broker's SHARE as every
 * message. Each peer is a private server started here, on 127.0.0.1 at a
 * free port, with its store in a fresh directory beside the broker
 * benchmark's (so on the same disk), awaited by connecting to it, and
 * killed after its run:
 *
 *   jetstream.async     nats-server -js (file storage): js_PublishAsync with
 *                       at most --window publishes awaiting their PubAck,
 *                       done when every PubAck is in. The window defaults to
 *                       what bench_broker keeps in flight (3 senders x 200).
 *   jetstream.sync      the same server: js_Publish, one at a time.
 *   mosquitto.qos1      mosquitto with persistence on: QoS 1 publishes, at
 *                       most --window awaiting their PUBACK, done at the
 *                       last PUBACK. Nobody subscribes, so mosquitto keeps
 *                       nothing: a QoS 1 message with no subscriber is
 *                       dropped once it is acknowledged. A floor, not a
 *                       comparison.
 *   mosquitto.qos1_sub  the same with one subscriber (QoS 1, a persistent
 *                       session, so each message is queued, and saved, until
 *                       the subscriber has it), done when every PUBACK is in
 *                       and the subscriber has had every message. This is the
 *                       one to set against the broker's 1-recipient figure,
 *                       which also counts an event only once it is delivered.
 *
 * The peers promise less than the broker, and the figures should be read so.
 * The broker syncs every group commit (synchronous=FULL) before it sends a
 * RECEIPT. nats-server 2.9 (Debian 12) writes JetStream messages to its
 * files before the PubAck but syncs them on a timer of minutes (a
 * per-message sync option came with 2.10): traced here, it made no fsync
 * at all in a run. mosquitto saves its whole in-memory state to a file, and
 * syncs it, after every --autosave changes (a message is several: stored,
 * queued, sent, acknowledged), whenever its loop comes round to it, not
 * before the PUBACK. The default of 10 is about one save for every three
 * messages with the subscriber; --autosave 1 saves after every change and
 * runs at under a thousand messages a second here, about a minute a run.
 * Neither peer checks a policy, minimises, seals or chains an audit row.
 *
 * Every peer runs --runs times, in rounds that take each peer once; figures
 * are medians with their spread, printed as rows like bench_broker's and as
 * `summary:` lines (see scripts/run-bench.sh). Built only when libnats and
 * libmosquitto are found; a server binary that is missing at run time skips
 * its peer with a line that says so.
 */
#include "bench_common.h"
#include "bench_report.h"

#include "sharehub/alloc.h"
#include "sharehub/file.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <mosquitto.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SUBJECT "bench.share"   /* JetStream subject, and the MQTT topic */
#define STREAM "BENCH"
#define READY_MS 10000          /* a server that does not answer by then failed */

/* ---- options ------------------------------------------------------------ */

typedef struct opts {
    long events;
    int runs;
    int window;
    int autosave;          /* mosquitto autosave_interval, in changes */
    bool skip_jetstream, skip_mosquitto;
    const char *dir;
    int timeout_s;         /* any one run gives up after this */
} opts_t;

static opts_t O = {
    .events = BENCH_DEFAULT_EVENTS,
    .runs = BENCH_DEFAULT_RUNS,
    .window = 600,
    .autosave = 10,
    .timeout_s = 120,
};

static const uint8_t *payload; /* bench_broker's SHARE, encoded */
static int payload_len;

/* ---- servers ------------------------------------------------------------ */

typedef struct server {
    char dir[512];    /* its store, config and log */
    char log[600];
    int port;
    pid_t pid;        /* 0 when not running */
} server_t;

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool timed_out(int64_t deadline)
{
    return bench_now_ns() > deadline;
}

/* The first of $PATH, /usr/sbin and /usr/local/sbin (Debian installs both
 * servers in /usr/sbin, which a normal user's PATH lacks) that holds an
 * executable `name`, into out; false if none does. */
static bool find_program(const char *name, char *out, size_t size)
{
    const char *env = getenv("PATH");
    char dirs[4096];
    snprintf(dirs, sizeof dirs, "%s:/usr/sbin:/usr/local/sbin", env ? env : "");
    for (char *save = NULL, *d = strtok_r(dirs, ":", &save); d;
         d = strtok_r(NULL, ":", &save)) {
        snprintf(out, size, "%s/%s", d, name);
        if (access(out, X_OK) == 0)
            return true;
    }
    return false;
}

/* A TCP port on 127.0.0.1 that was free a moment ago, or -1. Another
 * process may take it before the server binds it: server_start notices
 * (the server exits) and the caller tries another. */
static int free_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    if (fd >= 0)
        close(fd);
    return port;
}

static bool port_answers(int port)
{
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

/* A fresh directory for one server run, beside bench_broker's: --dir,
 * $TMPDIR or /tmp. */
static void server_dir(server_t *s, const char *what)
{
    const char *tmpdir = getenv("TMPDIR");
    snprintf(s->dir, sizeof s->dir, "%s/shub-%s-XXXXXX",
             O.dir ? O.dir : tmpdir ? tmpdir : "/tmp", what);
    if (!mkdtemp(s->dir)) {
        fprintf(stderr, "bench_peers: cannot create %s: %s\n", s->dir, strerror(errno));
        exit(1);
    }
    snprintf(s->log, sizeof s->log, "%s/server.log", s->dir);
}

/* Runs argv (its output to s->log) and waits until s->port takes a
 * connection. 0, or -1 if the server exited or did not answer in time. */
static int server_start(server_t *s, char *const argv[])
{
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        FILE *log = freopen(s->log, "a", stdout);
        if (log)
            dup2(fileno(log), STDERR_FILENO);
        execv(argv[0], argv);
        _exit(127);
    }
    s->pid = pid;
    for (int waited = 0; waited < READY_MS; waited += 5) {
        if (port_answers(s->port))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            s->pid = 0;
            return -1;
        }
        pause_ms(5);
    }
    return -1;
}

/* Stops the server (SIGTERM, then SIGKILL after 10 s) and removes its
 * directory; SHUB_KEEP_BENCH_DIR keeps it, as bench_broker's. */
static void server_stop(server_t *s)
{
    if (s->pid > 0) {
        kill(s->pid, SIGTERM);
        for (int waited = 0; waitpid(s->pid, NULL, WNOHANG) == 0; waited += 10) {
            if (waited == 10000)
                kill(s->pid, SIGKILL);
            pause_ms(10);
        }
        s->pid = 0;
    }
    if (getenv("SHUB_KEEP_BENCH_DIR"))
        fprintf(stderr, "bench_peers: kept %s\n", s->dir);
    else
        shub_file_remove_tree(s->dir);
}

/* Starts a server whose argv `make` writes for a port (and may write a
 * config file into s->dir for), trying a few ports. 0 or -1. */
static int server_launch(server_t *s, const char *what,
                         void (*make)(server_t *, char **argv, char *buf, size_t size))
{
    server_dir(s, what);
    for (int attempt = 0; attempt < 3; attempt++) {
        char *argv[16], buf[2048];
        if ((s->port = free_port()) < 0)
            break;
        make(s, argv, buf, sizeof buf);
        if (server_start(s, argv) == 0)
            return 0;
        server_stop(s);
        server_dir(s, what);
    }
    fprintf(stderr, "bench_peers: %s did not start; see %s\n", what, s->log);
    return -1;
}

/* ---- a run -------------------------------------------------------------- */

typedef struct outcome {
    double rate;      /* events/s; 0 when the run failed */
    long errors;      /* publishes refused or failed */
    bool timed_out;
} outcome_t;

static outcome_t outcome_of(long done, int64_t t0, long errors, bool late)
{
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    return (outcome_t){.rate = secs > 0 ? (double)done / secs : 0,
                       .errors = errors,
                       .timed_out = late};
}

/* ---- JetStream ---------------------------------------------------------- */

static char nats_server[512];

static void nats_argv(server_t *s, char **argv, char *buf, size_t size)
{
    char *port = buf, *store = buf + 16;
    snprintf(port, 16, "%d", s->port);
    snprintf(store, size - 16, "%s/js", s->dir);
    char *const words[] = {nats_server, "-a", "127.0.0.1", "-p", port, "-js", "-sd", store,
                           NULL};
    memcpy(argv, words, sizeof words);
}

typedef struct js_acks {
    atomic_long ok, failed;
} js_acks_t;

static void on_pub_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
    (void)js;
    js_acks_t *acks = closure;
    if (pa && !pae)
        atomic_fetch_add(&acks->ok, 1);
    else
        atomic_fetch_add(&acks->failed, 1);
    natsMsg_Destroy(msg);
}

typedef struct js_conn {
    natsOptions *opts;
    natsConnection *conn;
    jsCtx *js;
} js_conn_t;

static void js_close(js_conn_t *c)
{
    jsCtx_Destroy(c->js);
    natsConnection_Destroy(c->conn);
    natsOptions_Destroy(c->opts);
    *c = (js_conn_t){0};
}

/* Connects, and adds the stream once JetStream answers (it may start a
 * moment after the port). 0 or -1. */
static int js_open(js_conn_t *c, int port, js_acks_t *acks)
{
    char url[64];
    snprintf(url, sizeof url, "nats://127.0.0.1:%d", port);
    jsOptions jo;
    jsOptions_Init(&jo);
    jo.PublishAsync.MaxPending = O.window;
    jo.PublishAsync.AckHandler = on_pub_ack;
    jo.PublishAsync.AckHandlerClosure = acks;
    jo.PublishAsync.StallWait = (int64_t)O.timeout_s * 1000;
    natsStatus st = natsOptions_Create(&c->opts);
    if (st == NATS_OK)
        st = natsOptions_SetURL(c->opts, url);
    if (st == NATS_OK)
        st = natsConnection_Connect(&c->conn, c->opts);
    if (st == NATS_OK)
        st = natsConnection_JetStream(&c->js, c->conn, &jo);
    const char *subjects[] = {SUBJECT};
    jsStreamConfig sc;
    jsStreamConfig_Init(&sc);
    sc.Name = STREAM;
    sc.Subjects = subjects;
    sc.SubjectsLen = 1;
    sc.Storage = js_FileStorage;
    for (int waited = 0; st == NATS_OK; waited += 50) {
        jsStreamInfo *si = NULL;
        jsErrCode jerr = 0;
        if (js_AddStream(&si, c->js, &sc, NULL, &jerr) == NATS_OK) {
            jsStreamInfo_Destroy(si);
            return 0;
        }
        if (waited >= READY_MS)
            break;
        pause_ms(50);
    }
    fprintf(stderr, "bench_peers: jetstream: %s\n",
            st == NATS_OK ? "no stream" : natsStatus_GetText(st));
    return -1;
}

/* One JetStream run on a fresh server: async publishes within the window
 * or, if sync, one js_Publish at a time. */
static outcome_t run_jetstream(bool sync)
{
    outcome_t out = {0};
    server_t s = {0};
    js_conn_t c = {0};
    js_acks_t acks;
    atomic_init(&acks.ok, 0);
    atomic_init(&acks.failed, 0);
    if (server_launch(&s, "nats", nats_argv) != 0 || js_open(&c, s.port, &acks) != 0) {
        js_close(&c);
        server_stop(&s);
        return out;
    }
    int64_t t0 = bench_now_ns(), deadline = t0 + (int64_t)O.timeout_s * 1000000000LL;
    long errors = 0, i = 0;
    bool late = false;
    for (; i < O.events && !(late = timed_out(deadline)); i++) {
        if (sync) {
            jsPubAck *pa = NULL;
            jsErrCode jerr = 0;
            if (js_Publish(&pa, c.js, SUBJECT, payload, payload_len, NULL, &jerr) == NATS_OK)
                atomic_fetch_add(&acks.ok, 1);
            else
                errors++;
            jsPubAck_Destroy(pa);
        } else if (js_PublishAsync(c.js, SUBJECT, payload, payload_len, NULL) != NATS_OK) {
            errors++;
        }
    }
    if (!sync) {
        jsPubOptions po;
        jsPubOptions_Init(&po);
        po.MaxWait = (int64_t)O.timeout_s * 1000;
        if (js_PublishAsyncComplete(c.js, &po) != NATS_OK)
            late = true;
        /* The last handlers may still be running when the wait returns. */
        while (atomic_load(&acks.ok) + atomic_load(&acks.failed) + errors < i &&
               !(late = late || timed_out(deadline)))
            pause_ms(1);
    }
    long ok = atomic_load(&acks.ok);
    out = outcome_of(ok, t0, errors + atomic_load(&acks.failed), late || ok < O.events);
    js_close(&c);
    server_stop(&s);
    return out;
}

/* ---- mosquitto ---------------------------------------------------------- */

static char mosquitto_server[512];

/* mosquitto with persistence on, listening on 127.0.0.1 only. Run as root
 * it would drop to the `mosquitto` user, who cannot write the store. */
static void mosquitto_argv(server_t *s, char **argv, char *buf, size_t size)
{
    char *conf = buf;
    snprintf(conf, size, "%s/mosquitto.conf", s->dir);
    FILE *f = fopen(conf, "w");
    if (!f || fprintf(f,
                      "listener %d 127.0.0.1\n"
                      "allow_anonymous true\n"
                      "persistence true\n"
                      "persistence_location %s/\n"
                      "autosave_on_changes true\n"
                      "autosave_interval %d\n"
                      "max_inflight_messages %d\n"
                      "max_queued_messages 0\n"
                      "%s",
                      s->port, s->dir, O.autosave, O.window,
                      geteuid() == 0 ? "user root\n" : "") < 0 ||
        fclose(f) != 0) {
        fprintf(stderr, "bench_peers: cannot write %s\n", conf);
        exit(1);
    }
    char *const words[] = {mosquitto_server, "-c", conf, NULL};
    memcpy(argv, words, sizeof words);
}

typedef struct mqtt {
    atomic_long acked, received;
    atomic_int connected, subscribed; /* 0: not yet; 1: done; -1: refused */
} mqtt_t;

static void mqtt_init(mqtt_t *q)
{
    atomic_init(&q->acked, 0);
    atomic_init(&q->received, 0);
    atomic_init(&q->connected, 0);
    atomic_init(&q->subscribed, 0);
}

static void on_connect(struct mosquitto *m, void *ud, int rc)
{
    mqtt_t *q = ud;
    (void)m;
    atomic_store(&q->connected, rc == 0 ? 1 : -1);
}

static void on_sub_connect(struct mosquitto *m, void *ud, int rc)
{
    on_connect(m, ud, rc);
    if (rc == 0)
        mosquitto_subscribe(m, NULL, SUBJECT, 1);
}

static void on_subscribe(struct mosquitto *m, void *ud, int mid, int n, const int *granted)
{
    mqtt_t *q = ud;
    (void)m;
    (void)mid;
    atomic_store(&q->subscribed, n == 1 && granted[0] == 1 ? 1 : -1);
}

static void on_publish(struct mosquitto *m, void *ud, int mid)
{
    mqtt_t *q = ud;
    (void)m;
    (void)mid;
    atomic_fetch_add(&q->acked, 1);
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg)
{
    mqtt_t *q = ud;
    (void)m;
    (void)msg;
    atomic_fetch_add(&q->received, 1);
}

/* A client of the server on port, connected: the publisher (clean session)
 * or the subscriber (persistent session, its own network thread, and
 * subscribed before this returns). NULL on failure. */
static struct mosquitto *mqtt_client(mqtt_t *q, int port, bool subscriber, int64_t deadline)
{
    struct mosquitto *m =
        mosquitto_new(subscriber ? "bench-sub" : "bench-pub", !subscriber, q);
    if (!m)
        return NULL;
    mosquitto_int_option(m, MOSQ_OPT_SEND_MAXIMUM, O.window);
    mosquitto_connect_callback_set(m, subscriber ? on_sub_connect : on_connect);
    mosquitto_publish_callback_set(m, on_publish);
    mosquitto_subscribe_callback_set(m, on_subscribe);
    mosquitto_message_callback_set(m, on_message);
    bool ok = mosquitto_connect(m, "127.0.0.1", port, 60) == MOSQ_ERR_SUCCESS;
    if (ok && subscriber)
        ok = mosquitto_loop_start(m) == MOSQ_ERR_SUCCESS;
    atomic_int *flag = subscriber ? &q->subscribed : &q->connected;
    while (ok && atomic_load(flag) == 0 && atomic_load(&q->connected) >= 0 &&
           !timed_out(deadline))
        if (subscriber)
            pause_ms(1);
        else
            ok = mosquitto_loop(m, 10, 1) == MOSQ_ERR_SUCCESS;
    if (ok && atomic_load(flag) == 1)
        return m;
    if (subscriber)
        mosquitto_loop_stop(m, true);
    mosquitto_destroy(m);
    return NULL;
}

static void mqtt_close(struct mosquitto *m, bool threaded)
{
    if (!m)
        return;
    mosquitto_disconnect(m);
    if (threaded)
        mosquitto_loop_stop(m, false);
    mosquitto_destroy(m);
}

/* One mosquitto run on a fresh server, with or without the subscriber. */
static outcome_t run_mosquitto(bool with_subscriber)
{
    outcome_t out = {0};
    server_t s = {0};
    mqtt_t q, sq;
    mqtt_init(&q);
    mqtt_init(&sq);
    struct mosquitto *sub = NULL, *pub = NULL;
    int64_t deadline = bench_now_ns() + (int64_t)O.timeout_s * 1000000000LL;
    bool ready = server_launch(&s, "mosquitto", mosquitto_argv) == 0;
    if (ready && with_subscriber)
        ready = (sub = mqtt_client(&sq, s.port, true, deadline)) != NULL;
    if (ready)
        ready = (pub = mqtt_client(&q, s.port, false, deadline)) != NULL;
    if (!ready) {
        fprintf(stderr, "bench_peers: mosquitto: no connection; see %s\n", s.log);
        mqtt_close(pub, false);
        mqtt_close(sub, true);
        server_stop(&s);
        return out;
    }
    int64_t t0 = bench_now_ns();
    long sent = 0, errors = 0, want = with_subscriber ? O.events : 0;
    bool late = false;
    while ((atomic_load(&q.acked) < sent || sent < O.events || atomic_load(&sq.received) < want) &&
           !(late = timed_out(deadline))) {
        while (sent < O.events && sent - atomic_load(&q.acked) < O.window) {
            if (mosquitto_publish(pub, NULL, SUBJECT, payload_len, payload, 1, false) !=
                MOSQ_ERR_SUCCESS)
                errors++;
            sent++;
        }
        if (mosquitto_loop(pub, 10, 1) != MOSQ_ERR_SUCCESS) {
            errors++;
            late = true;
            break;
        }
    }
    out = outcome_of(atomic_load(&q.acked), t0, errors, late);
    mqtt_close(pub, false);
    mqtt_close(sub, true);
    server_stop(&s);
    return out;
}

/* ---- rounds and report -------------------------------------------------- */

typedef struct peer {
    const char *name;   /* summary stem */
    const char *what;   /* row text */
    bool jetstream;     /* else mosquitto */
    bool variant;       /* jetstream: sync; mosquitto: with a subscriber */
} peer_t;

static const peer_t peers[] = {
    {"jetstream.async", "JetStream async publish, windowed", true, false},
    {"jetstream.sync", "JetStream sync publish, one at a time", true, true},
    {"mosquitto.qos1", "mosquitto QoS 1 publish, no subscriber", false, false},
    {"mosquitto.qos1_sub", "mosquitto QoS 1, 1 persistent subscriber", false, true},
};
#define N_PEERS (sizeof peers / sizeof peers[0])

typedef struct pstats {
    bench_stat_t rate;
    long errors;
    int failed, timed_out; /* runs */
} pstats_t;

static bool peer_available(const peer_t *p)
{
    return p->jetstream ? !O.skip_jetstream && nats_server[0]
                        : !O.skip_mosquitto && mosquitto_server[0];
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_peers [options]\n"
            "  --runs N          runs of every peer; figures are medians (default %d)\n"
            "  --events N        messages a run (default %ld, as bench_broker's)\n"
            "  --window N        publishes awaiting their ack (default %d: bench_broker's\n"
            "                    3 senders x 200)\n"
            "  --autosave N      mosquitto autosave_interval, in changes (default %d)\n"
            "  --only WHAT       jetstream | mosquitto\n"
            "  --dir DIR         where the servers' stores go (default $TMPDIR or /tmp;\n"
            "                    give bench_broker's --dir to measure the same disk)\n"
            "  --timeout S       give up on any one run after S seconds (default %d)\n",
            O.runs, O.events, O.window, O.autosave, O.timeout_s);
}

static void parse(int argc, char **argv)
{
    static const struct option longs[] = {
        {"runs", required_argument, NULL, 'R'},   {"events", required_argument, NULL, 'e'},
        {"window", required_argument, NULL, 'W'}, {"autosave", required_argument, NULL, 'a'},
        {"only", required_argument, NULL, 'o'},   {"dir", required_argument, NULL, 'd'},
        {"timeout", required_argument, NULL, 't'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const bench_opts_t common = {&O.runs, &O.events, &O.dir, &O.timeout_s, usage};
    bool bad = false;
    for (int c; !bad && (c = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
        switch (c) {
        case 'W': O.window = atoi(optarg); break;
        case 'a': O.autosave = atoi(optarg); break;
        case 'o':
            O.skip_jetstream = strcmp(optarg, "jetstream") != 0;
            O.skip_mosquitto = strcmp(optarg, "mosquitto") != 0;
            bad = O.skip_jetstream && O.skip_mosquitto;
            break;
        default:
            bad = !bench_opts_take(&common, c, optarg);
        }
    }
    /* The window is an MQTT send maximum as well: at most 65535. */
    if (bad || optind < argc || O.runs < 1 || O.events < 1 || O.window < 1 ||
        O.window > 65535 || O.autosave < 1 || O.timeout_s < 1) {
        usage(stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    shub_buf_t share = {0};
    if (bench_share_encode(&share) != 0) {
        fprintf(stderr, "bench_peers: cannot build the SHARE\n");
        return 1;
    }
    payload = share.data;
    payload_len = (int)share.len;
    if (!find_program("nats-server", nats_server, sizeof nats_server))
        nats_server[0] = '\0';
    if (!find_program("mosquitto", mosquitto_server, sizeof mosquitto_server))
        mosquitto_server[0] = '\0';
    mosquitto_lib_init();
    printf("peers: %ld events a run of %d bytes (bench_broker's SHARE), window %d, on "
           "127.0.0.1; mosquitto autosave every %d changes; medians of %d runs "
           "[lowest..highest]\n",
           O.events, payload_len, O.window, O.autosave, O.runs);
    fflush(stdout);

    static pstats_t P[N_PEERS];
    for (int round = 0; round < O.runs; round++)
        for (size_t i = 0; i < N_PEERS; i++) {
            const peer_t *p = &peers[i];
            if (!peer_available(p))
                continue;
            outcome_t o = p->jetstream ? run_jetstream(p->variant) : run_mosquitto(p->variant);
            if (o.rate > 0)
                bench_stat_add(&P[i].rate, o.rate);
            P[i].failed += o.rate <= 0;
            P[i].errors += o.errors;
            P[i].timed_out += o.timed_out;
        }

    for (size_t i = 0; i < N_PEERS; i++) {
        const peer_t *p = &peers[i];
        const char *what = p->what;
        char name[96];
        if (!peer_available(p)) {
            const char *server = p->jetstream ? "nats-server" : "mosquitto";
            bool skipped = p->jetstream ? O.skip_jetstream : O.skip_mosquitto;
            if (!skipped)
                printf("  %-48s skipped: no %s (make bench installs it)\n", what, server);
            continue;
        }
        bench_row_rate(what, &P[i].rate, "ev/s", 0);
        if (P[i].failed || P[i].errors || P[i].timed_out)
            printf("  %-48s errors=%ld failed runs=%d%s\n", "", P[i].errors, P[i].failed,
                   P[i].timed_out ? " TIMED OUT" : "");
        snprintf(name, sizeof name, "%s.events_per_s", p->name);
        if (P[i].rate.n)
            bench_summary_stat(name, &P[i].rate, 0);
    }
    mosquitto_lib_cleanup();
    nats_Close();
    shub_buf_free(&share);
    return 0;
}
