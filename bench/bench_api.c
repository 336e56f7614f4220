/*
 * bench_api: what the agent's local HTTP/JSON API costs a case system that
 * shares events through it.
 *
 * A real broker (bench_common) and two real agents: the sender, serving
 * --api on 127.0.0.1 with a token, and a MARAC that receives and
 * acknowledges, so the sender's store is as busy as in a partnership (its
 * loop commits sends, receipts and updates beside the API's inserts). One
 * client on one keep-alive connection POSTs the benchmark's referral (the
 * SHARE bench_broker sends, as the JSON `submit` takes, a fresh id each)
 * one after the other: each answer means the event is durable in the outbox
 * (synchronous=FULL), so a POST can go no faster than one commit of the
 * store. Targets: >= 2,000 POSTs/s and >= 0.5x the agent store's own
 * outbox insert (shub_agentdb_outbox_add of the same SHARE with a fresh id,
 * a transaction each, in a loop) measured in the same round on the same
 * disk; the p99 of one POST's latency is printed beside.
 *
 * The floor the target is judged against is that insert into the sender's
 * own store while the agent forwards what it holds (sends, receipts and
 * updates committed beside the inserts, as beside the POSTs): the API's
 * cost over the store, with the partnership's load on both. The same
 * insert into a fresh store of its own, which nothing else touches, is
 * measured in the same round and the POSTs' ratio to it printed as well:
 * that ratio also holds what the partnership costs the store.
 *
 * In a deployment each organisation's agent has a host of its own, so the
 * sender's store and the floors share the disk under test (--dir), while
 * the broker and the receiving agent keep their files in memory (/dev/shm
 * when there is one): the commits of the rest of the partnership, made on
 * other hosts' disks in life, do not queue with the sender's here. The
 * CPU is shared by all of them.
 *
 * Each round measures the idle floor, the POSTs, then (once the sender has
 * sent them all) the floor in the sender's store, and waits for that to be
 * sent too. A second agent of the same organisation, with a store of its
 * own and no broker to reach, takes the same POSTs in the same round: the
 * API's own cost, without the partnership beside it; its ratio is to the
 * idle floor.
 */
#include "bench_common.h"
#include "bench_report.h"

#include "sharehub/agentdb.h"
#include "sharehub/alloc.h"
#include "sharehub/file.h"
#include "sharehub/json.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TARGET_RATE  2000.0
#define TARGET_RATIO 0.5

static struct {
    int runs;
    long events;
    const char *dir;
    int timeout_s;
} O = {.runs = BENCH_DEFAULT_RUNS, .events = 3000, .timeout_s = 120};

/* The processes this benchmark started, stopped by die() too. */
static pid_t children[4];
static size_t n_children;
static bench_env_t *env_started; /* for die() */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "bench_api: %s%s%s\n", what, detail ? " " : "", detail ? detail : "");
    for (size_t i = 0; i < n_children; i++) {
        kill(children[i], SIGTERM);
        waitpid(children[i], NULL, 0);
    }
    bench_env_destroy(&env_started);
    exit(1);
}

static void nap_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- the event ------------------------------------------------------------ */

/* The benchmark's referral as submit's JSON, to marac-coventry; the id's 36
 * characters start at *id_at, to be replaced before each POST. */
static char *event_json(size_t *id_at)
{
    static const char *const to[] = {"marac-coventry"};
    shub_arena_t *a = shub_arena_new(0);
    shub_share_t s;
    char *text = NULL;
    shub_err_t err;
    if (!a || bench_share_fill(&s, a, to, 1) != 0 ||
        shub_json_event_write(&s.ev, NULL, &text, &err) != 0)
        die("cannot build the event", NULL);
    shub_arena_destroy(&a);
    static const char head[] = "{\"to\":[\"marac-coventry\"],";
    size_t n = strlen(text);
    char *json = shub_malloc(n + sizeof head);
    if (!json || text[0] != '{' || strncmp(text + 1, "\"id\":\"", 6) != 0)
        die("unexpected event JSON", text);
    snprintf(json, n + sizeof head, "%s%s", head, text + 1);
    shub_free(text);
    *id_at = sizeof head - 1 + 6;
    return json;
}

static void fresh_id(char *at)
{
    shub_id_t id;
    char t[SHUB_ID_TEXT];
    shub_id_generate(&id, shub_now_ms());
    shub_id_format(&id, t);
    memcpy(at, t, SHUB_ID_TEXT - 1);
}

/* ---- the floor: the store's own inserts ------------------------------------ */

/* O.events inserts of the SHARE `json` encodes into the store at `path`,
 * each its own transaction: the rate. */
static double store_inserts_per_s(const char *path, const char *json)
{
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    shub_arena_t *a = shub_arena_new(0);
    shub_share_t s;
    shub_buf_t share = {0};
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    if (!a || shub_agentdb_open(path, true, &db, &err) != 0 ||
        shub_json_share_parse(json, strlen(json), shub_now_ms(), a, &s, &err) != 0)
        die("floor:", err.msg);
    m.share = s;
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < O.events; i++) {
        shub_id_generate(&m.share.ev.id, shub_now_ms());
        share.len = 0;
        if (shub_msg_encode(&m, &share, &err) != 0 ||
            shub_agentdb_outbox_add(db, &m.share.ev.id, s.ev.type, "marac-coventry",
                                    share.data, share.len, shub_now_ms(), &err) != 0)
            die("floor:", err.msg);
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    shub_buf_free(&share);
    shub_arena_destroy(&a);
    shub_agentdb_close(&db);
    return (double)O.events / secs;
}

/* ---- the agents --------------------------------------------------------- */

/* Starts org's agent with the store DIR/NAME.db; with a ready file, serving
 * the API; with `broker` NULL, the partnership's, else that endpoint. */
static pid_t start_agent(const bench_env_t *env, const char *dir, const char *org,
                         const char *name, const char *broker, const char *token_file,
                         const char *ready)
{
    char db[700], log[700], agent[1024];
    snprintf(db, sizeof db, "%s/%s.db", dir, name);
    snprintf(log, sizeof log, "%s/%s.log", env->dir, name);
    snprintf(agent, sizeof agent, "%s/agents/sharehub-agent", SHUB_BUILD_DIR);
    if (ready)
        unlink(ready);
    pid_t pid = fork();
    if (pid < 0)
        die("fork:", strerror(errno));
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, STDERR_FILENO);
            close(fd);
        }
        const char *argv[24] = {agent, "run", "--org", org, "--config", env->dir,
                                "--db", db, "--broker", broker ? broker : env->endpoint};
        int argc = 10;
        if (ready) {
            const char *api[] = {"--api", "127.0.0.1:0", "--api-token", token_file,
                                 "--api-ready-file", ready};
            for (size_t i = 0; i < sizeof api / sizeof api[0]; i++)
                argv[argc++] = api[i];
        }
        argv[argc] = NULL;
        execv(agent, (char *const *)argv);
        _exit(127);
    }
    children[n_children++] = pid;
    for (int waited = 0; ready && waited < O.timeout_s * 1000; waited += 10) {
        if (access(ready, F_OK) == 0)
            return pid;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid)
            die("the agent exited at start; see", log);
        nap_ms(10);
    }
    if (ready)
        die("the agent's API did not start; see", log);
    return pid;
}

static void read_address(const char *ready, char *out, size_t size)
{
    FILE *f = fopen(ready, "r");
    if (!f || !fgets(out, (int)size, f))
        die("cannot read", ready);
    fclose(f);
    out[strcspn(out, "\n")] = '\0';
}

static void stop(pid_t pid)
{
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
}

/* ---- one keep-alive HTTP client ------------------------------------------- */

typedef struct {
    int fd;
    char buf[65536];
    size_t len;
} conn_t;

static void conn_open(conn_t *c, const char *address)
{
    unsigned port = 0;
    if (sscanf(address, "http://127.0.0.1:%u", &port) != 1 || port == 0 || port > 65535)
        die("unexpected API address", address);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int one = 1;
    c->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("cannot connect to", address);
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->len = 0;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            die("send:", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* needle in h[0..n), ignoring case; NULL if absent. */
static const char *find(const char *h, size_t n, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= n; i++)
        if (strncasecmp(h + i, needle, k) == 0)
            return h + i;
    return NULL;
}

/* Reads one answer; returns its status. */
static int read_answer(conn_t *c)
{
    for (;;) {
        const char *end = find(c->buf, c->len, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end - c->buf) + 4;
            const char *cl = find(c->buf, head, "Content-Length:");
            size_t body = cl ? strtoul(cl + 15, NULL, 10) : 0;
            if (c->len >= head + body) {
                int status = atoi(c->buf + 9);
                memmove(c->buf, c->buf + head + body, c->len - head - body);
                c->len -= head + body;
                return status;
            }
        }
        if (c->len == sizeof c->buf)
            die("answer too large", NULL);
        ssize_t r = recv(c->fd, c->buf + c->len, sizeof c->buf - c->len, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            die("the API closed the connection", NULL);
        c->len += (size_t)r;
    }
}

/* POSTs O.events events; fills lat_ns; returns events/s. */
static double post_events(conn_t *c, const char *token, char *json, size_t id_at,
                          int64_t *lat_ns)
{
    size_t body = strlen(json);
    char head[512];
    int hn = snprintf(head, sizeof head,
                      "POST /v1/events HTTP/1.1\r\nHost: bench\r\n"
                      "Authorization: Bearer %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      token, body);
    char *req = shub_malloc((size_t)hn + body);
    if (!req)
        die("out of memory", NULL);
    memcpy(req, head, (size_t)hn);
    int64_t t0 = bench_now_ns();
    for (long i = 0; i < O.events; i++) {
        fresh_id(json + id_at);
        memcpy(req + hn, json, body);
        int64_t s = bench_now_ns();
        send_all(c->fd, req, (size_t)hn + body);
        int status = read_answer(c);
        lat_ns[i] = bench_now_ns() - s;
        if (status != 201) {
            char msg[64];
            snprintf(msg, sizeof msg, "%d for event %ld", status, i);
            die("POST answered", msg);
        }
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    shub_free(req);
    return (double)O.events / secs;
}

/* Waits until the sender has every event receipted (its outbox's pending
 * count, read from its store), so a round does not run beside the last
 * one's sending. */
static void wait_drained(const char *dir)
{
    char path[700];
    snprintf(path, sizeof path, "%s/wmp.db", dir);
    shub_agentdb_t *db = NULL;
    shub_err_t err;
    if (shub_agentdb_open(path, false, &db, &err) != 0)
        die("sender's store:", err.msg);
    for (int waited = 0; waited < O.timeout_s * 1000; waited += 50) {
        uint64_t n = 1;
        if (shub_agentdb_outbox_count(db, SHUB_OUTBOX_PENDING, &n, &err) == 0 && n == 0)
            break;
        nap_ms(50);
    }
    shub_agentdb_close(&db);
}

/* One case's figures over the rounds. */
typedef struct {
    bench_stat_t rate, p50, p99;
} posts_t;

/* A round of POSTs on a fresh connection (the API closes one idle for
 * SHUB_API_TIMEOUT_S, as a kept one would be between rounds). */
static void measure(posts_t *p, conn_t *c, const char *address, const char *token,
                    char *json, size_t id_at, int64_t *lat)
{
    conn_open(c, address);
    bench_stat_add(&p->rate, post_events(c, token, json, id_at, lat));
    close(c->fd);
    bench_stat_add(&p->p50, (double)bench_percentile(lat, (size_t)O.events, 50) / 1e6);
    bench_stat_add(&p->p99, (double)bench_percentile(lat, (size_t)O.events, 99) / 1e6);
}

static void latency_row(const char *what, const bench_stat_t *s)
{
    char fig[64], spread[96];
    snprintf(fig, sizeof fig, "%.2f ms", bench_stat_median(s));
    bench_row(what, fig, "", -1, bench_stat_spread(s, 2, spread, sizeof spread));
}

/* Rows and summary lines for a case; `suffix` tells the names apart. */
static void report(const char *suffix, const char *what, const posts_t *p,
                   const bench_stat_t *floor, double target_rate, double target_ratio)
{
    char row[96], name[96];
    bench_stat_t ratio = bench_stat_ratio(&p->rate, floor);
    snprintf(row, sizeof row, "API POSTs, one keep-alive client, %s", what);
    bench_row_rate(row, &p->rate, "ev/s", target_rate);
    snprintf(row, sizeof row, "ratio to the store's own insert, %s", what);
    bench_row_ratio(row, &ratio, target_ratio);
    snprintf(row, sizeof row, "POST latency p50, %s", what);
    latency_row(row, &p->p50);
    snprintf(row, sizeof row, "POST latency p99, %s", what);
    latency_row(row, &p->p99);
    snprintf(name, sizeof name, "api.post%s.events_per_s", suffix);
    bench_summary_stat(name, &p->rate, 0);
    snprintf(name, sizeof name, "ratio.api_post%s_to_store_insert", suffix);
    bench_summary_stat(name, &ratio, 3);
    snprintf(name, sizeof name, "api.post%s.p50_ms", suffix);
    bench_summary_stat(name, &p->p50, 3);
    snprintf(name, sizeof name, "api.post%s.p99_ms", suffix);
    bench_summary_stat(name, &p->p99, 3);
}

/* ---- main --------------------------------------------------------------- */

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench_api [options]\n"
            "  --runs N     rounds; figures are medians (default %d)\n"
            "  --events N   POSTs (and floor inserts) per round (default %ld)\n"
            "  --dir DIR    where the sender's store and the floor's go (default\n"
            "               $TMPDIR or /tmp; it decides what a commit costs)\n"
            "  --timeout S  give up on a start or a drain after S seconds (default %d)\n",
            O.runs, O.events, O.timeout_s);
}

static void parse(int argc, char **argv)
{
    static const struct option longs[] = {
        {"runs", required_argument, NULL, 'R'},   {"events", required_argument, NULL, 'e'},
        {"dir", required_argument, NULL, 'd'},    {"timeout", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longs, NULL)) != -1) {
        switch (c) {
        case 'R':
            if ((O.runs = bench_runs_parse(optarg)) < 0)
                die("--runs: 1 to 15", NULL);
            break;
        case 'e':
            if ((O.events = strtol(optarg, NULL, 10)) < 100 || O.events > 10000000)
                die("--events: 100 to 10000000", NULL);
            break;
        case 'd':
            O.dir = optarg;
            break;
        case 't':
            if ((O.timeout_s = atoi(optarg)) < 1)
                die("--timeout: seconds, at least 1", NULL);
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0)
        die("libsodium failed to initialise", NULL);
    static const bench_org_t orgs[] = {{"wmp", "police"}, {"marac-coventry", "marac"}};
    bench_env_t *env =
        bench_env_new(access("/dev/shm", W_OK) == 0 ? "/dev/shm" : O.dir, orgs, 2, 256, false);
    env_started = env;
    const char *parent = O.dir ? O.dir : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char disk[600];
    snprintf(disk, sizeof disk, "%s/shub-bench-api-XXXXXX", parent);
    if (!mkdtemp(disk))
        die("cannot create a directory under", parent);
    char broker[1024];
    snprintf(broker, sizeof broker, "%s/broker/sharehub-broker", SHUB_BUILD_DIR);
    bench_env_start(env, broker, "info", NULL);

    /* A fresh token in a 0600 file, as a partner would make one. */
    uint8_t raw[24];
    char token[2 * sizeof raw + 1], token_file[700], ready[700], address[200] = "";
    randombytes_buf(raw, sizeof raw);
    sodium_bin2hex(token, sizeof token, raw, sizeof raw);
    snprintf(token_file, sizeof token_file, "%s/api.token", env->dir);
    int fd = open(token_file, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, token, strlen(token)) < 0 || close(fd) != 0)
        die("cannot write", token_file);
    char nowhere[700], alone_address[200];
    snprintf(nowhere, sizeof nowhere, "ipc://%s/nobody.ipc", env->dir);
    pid_t marac =
        start_agent(env, env->dir, "marac-coventry", "marac-coventry", NULL, NULL, NULL);
    snprintf(ready, sizeof ready, "%s/wmp.api", env->dir);
    pid_t sender = start_agent(env, disk, "wmp", "wmp", NULL, token_file, ready);
    read_address(ready, address, sizeof address);
    snprintf(ready, sizeof ready, "%s/alone.api", env->dir);
    pid_t alone = start_agent(env, disk, "wmp", "alone", nowhere, token_file, ready);
    read_address(ready, alone_address, sizeof alone_address);

    size_t id_at;
    char *json = event_json(&id_at);
    printf("sharehub agent API: one keep-alive client POSTs %ld events of %zu bytes a "
           "round (synchronous=FULL; the sender's store in %s, a broker and a receiving "
           "agent in %s); the floors are the store's own outbox insert; medians of %d "
           "rounds [lowest..highest]\n",
           O.events, strlen(json), parent, env->dir, O.runs);
    fflush(stdout);

    bench_stat_t floor = {0}, floor_busy = {0};
    posts_t in_partnership = {0}, by_itself = {0};
    char path[700], sender_store[700];
    snprintf(sender_store, sizeof sender_store, "%s/wmp.db", disk);
    int64_t *lat = shub_calloc((size_t)O.events, sizeof *lat);
    conn_t *c = shub_calloc(1, sizeof *c);
    if (!lat || !c)
        die("out of memory", NULL);
    for (int r = 0; r < O.runs; r++) {
        snprintf(path, sizeof path, "%s/floor-%d.db", disk, r);
        bench_stat_add(&floor, store_inserts_per_s(path, json));
        measure(&in_partnership, c, address, token, json, id_at, lat);
        wait_drained(disk);
        bench_stat_add(&floor_busy, store_inserts_per_s(sender_store, json));
        wait_drained(disk);
        measure(&by_itself, c, alone_address, token, json, id_at, lat);
    }
    report("", "in a partnership", &in_partnership, &floor_busy, TARGET_RATE, TARGET_RATIO);
    bench_stat_t idle = bench_stat_ratio(&in_partnership.rate, &floor);
    bench_row_ratio("the same POSTs' ratio to the idle store's insert", &idle, 0);
    bench_summary_stat("ratio.api_post_to_idle_store_insert", &idle, 3);
    report(".alone", "alone", &by_itself, &floor, 0, 0);
    bench_row_rate("floor: insert into the sender's store", &floor_busy, "ev/s", 0);
    bench_summary_stat("api.store_insert.partnership.events_per_s", &floor_busy, 0);
    bench_row_rate("floor: insert into an idle store", &floor, "ev/s", 0);
    bench_summary_stat("api.store_insert.events_per_s", &floor, 0);

    shub_free(c);
    shub_free(lat);
    shub_free(json);
    stop(alone);
    stop(sender);
    stop(marac);
    env_started = NULL;
    bench_env_destroy(&env);
    shub_file_remove_tree(disk);
    return 0;
}
