/*
 * bench_broker: what the broker carries, end to end, with everything on.
 *
 * A real sharehub-broker runs from a throw-away config directory (CURVE, the
 * ZAP handler, policy with a condition, minimisation and sealing per
 * recipient, the durable audit chain with synchronous=FULL, every RECEIPT
 * after its commit) and is driven by separate processes, each with its own
 * keys: senders pushing pipelined SHAREs (a MARAC referral of about 600
 * bytes, keeping up to WINDOW un-receipted) and recipients that ACK every
 * DELIVER. Each figure is set against a baseline measured in the same
 * invocation, since the machine is shared and absolute figures drift:
 *
 *   throughput  events/s with one and with three recipients per event; an
 *               event counts once its RECEIPT and every recipient's
 *               acknowledgement update have reached the sender. In the same
 *               rounds the same counts and sizes go through a bare ZeroMQ
 *               ROUTER forwarder (no CURVE, no policy, no audit) whose
 *               recipients ACK back through it: the ratio is the price of
 *               the hub. The forwarder also runs with 40 senders (8,000
 *               events in flight); the broker's many-senders case is one
 *               more line in `cases`. Each case also gives what the noise
 *               of a shared machine moves least: the broker's (or the
 *               forwarder's) CPU time per event, its clients' (the senders
 *               and recipients that drive it, on the same cores), and the
 *               bytes the broker wrote to the file system per event
 *               (/proc/PID/io); and the CPU time per event the cores allow
 *               at 0.25 of the forwarder's rate, against what the broker and
 *               its clients take.
 *   latency     one sender at fixed offered rates and at half the broker's
 *               measured 1-recipient throughput (open loop: latency runs from
 *               each event's scheduled send time, so a broker that falls
 *               behind is charged for the queue), SHARE -> RECEIPT and
 *               SHARE -> DELIVER p50/p99/p99.9/max. A rate the broker does
 *               not carry is reported as not reached, with what it achieved.
 *   closed      one event in flight at a time, against its floor: a bare loop
 *               of one fsync'd SQLite commit per event on the same disk, and
 *               that commit together with a bare ZeroMQ round trip on the
 *               broker's transport (ipc, CURVE), which an event in flight
 *               also takes.
 *   backlog     N deliveries queued for an organisation that is offline:
 *               broker peak RSS (VmHWM), and the time to drain them once it
 *               says HELLO.
 *
 * Every case runs --runs times (3 by default), in rounds that take each case
 * once, and is reported as the median with its spread; a ratio is the
 * median of the rounds' ratios, each between runs made close together. Each
 * figure is also printed as a `summary: name=value` line for
 * scripts/run-bench.sh. `--help` lists the flags for longer runs and for
 * running the broker under a profiler. Time: CLOCK_MONOTONIC throughout (one
 * clock for all processes on the machine).
 */
#include "bench_common.h"
#include "bench_report.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"

#include <errno.h>
#include <getopt.h>
#include <sys/select.h>
#include <signal.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define N_RECIPIENTS 3       /* MARACs: every event goes to 1 or to all 3 */
#define MAX_SENDERS 64       /* the many-senders cases run 40 by default */
#define WINDOW 200           /* un-receipted SHAREs per sender (broker's is 256) */
#define RECIPIENT_WINDOW 1024 /* DELIVERs a recipient accepts un-ACKed (the maximum) */
#define BACKLOG_ORG "marac-offline"

/* ---- options ------------------------------------------------------------ */

typedef struct opts {
    long events;           /* throughput: events per run */
    int senders;
    double latency_s;      /* seconds per offered rate */
    long rates[8];
    int n_rates;
    int runs;              /* of every case; figures are medians */
    int many_senders;      /* senders of the many-senders cases */
    long closed_events;    /* one in flight at a time */
    long backlog;          /* deliveries queued for the offline org */
    unsigned batch_max;
    bool sync_normal;
    bool skip_throughput, skip_latency, skip_closed, skip_backlog, skip_forwarder;
    const char *dir;       /* parent of the temp dirs */
    const char *wrap;      /* profiler command put before the broker */
    const char *broker;
    const char *pg;        /* a PostgreSQL database (URI): the broker.pg cases */
    int timeout_s;         /* any one run gives up after this */
} opts_t;

static opts_t O = {
    .events = BENCH_DEFAULT_EVENTS,
    .senders = 3,
    .latency_s = 3,
    .rates = {1000, 10000, 50000},
    .n_rates = 3,
    .runs = BENCH_DEFAULT_RUNS,
    .many_senders = 40,
    .closed_events = 2000,
    .backlog = 100000,
    .batch_max = 1024,
    .timeout_s = 300,
};

static int cores;
static size_t share_bytes; /* encoded SHARE, as the senders send it */

/* ---- shared state between the processes of one run ---------------------- */

typedef struct shared {
    volatile int stop;          /* recipients and forwarder: finish */
    int64_t t_go;               /* when the senders were released */
    int64_t t_done[MAX_SENDERS];/* when each sender saw its last outcome */
    long receipts[MAX_SENDERS], acks[MAX_SENDERS], errors[MAX_SENDERS];
    long queued[MAX_SENDERS], denied[MAX_SENDERS];
    long delivered[N_RECIPIENTS + 1];
    int64_t t_first_deliver, t_last_ack; /* backlog drain (one recipient) */
    long unroutable;            /* bare forwarder: messages it could not pass on */
    bool timed_out;
    /* latency runs: per event, ns */
    long n_lat;
    int64_t *t_sched, *t_receipt, *t_deliver;
} shared_t;

static shared_t *shared_new(long n_lat)
{
    size_t size = sizeof(shared_t) + (size_t)n_lat * 3 * sizeof(int64_t);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        perror("bench: mmap");
        exit(1);
    }
    shared_t *sh = p;
    memset(sh, 0, sizeof *sh);
    sh->n_lat = n_lat;
    int64_t *arr = (int64_t *)(sh + 1);
    sh->t_sched = arr;
    sh->t_receipt = arr + n_lat;
    sh->t_deliver = arr + 2 * n_lat;
    return sh;
}

static void shared_free(shared_t *sh)
{
    munmap(sh, sizeof(shared_t) + (size_t)sh->n_lat * 3 * sizeof(int64_t));
}

/* Readiness and release: children write one byte to `ready` when connected,
 * then block on `go` until the parent writes their byte. */
typedef struct gate {
    int ready[2], go[2];
} gate_t;

static void gate_open(gate_t *g)
{
    if (pipe(g->ready) != 0 || pipe(g->go) != 0) {
        perror("bench: pipe");
        exit(1);
    }
}

static void gate_child_ready(gate_t *g, bool wait_go)
{
    char c = 'r';
    if (write(g->ready[1], &c, 1) != 1)
        _exit(3);
    if (wait_go && read(g->go[0], &c, 1) != 1)
        _exit(3);
}

static void gate_wait_ready(gate_t *g, int n)
{
    char c;
    for (int i = 0; i < n; i++)
        if (read(g->ready[0], &c, 1) != 1) {
            fprintf(stderr, "bench: a child died before it was ready\n");
            exit(1);
        }
}

static void gate_release(gate_t *g, int n)
{
    char c = 'g';
    for (int i = 0; i < n; i++)
        if (write(g->go[1], &c, 1) != 1)
            exit(1);
}

static void gate_close(gate_t *g)
{
    close(g->ready[0]);
    close(g->ready[1]);
    close(g->go[0]);
    close(g->go[1]);
}

static pid_t spawn(void (*fn)(void *, int), void *arg, int idx)
{
    pid_t pid = fork();
    if (pid < 0) {
        perror("bench: fork");
        exit(1);
    }
    if (pid == 0) {
        /* A benchmark killed or crashed must not leave its processes
         * loading a machine others share. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        fn(arg, idx);
        _exit(0);
    }
    return pid;
}

static void reap(pid_t *pids, int n)
{
    for (int i = 0; i < n; i++)
        if (pids[i] > 0)
            waitpid(pids[i], NULL, 0);
}

/* Broker CPU time (user + system) in clock ticks, from /proc/PID/stat. */
static long cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    unsigned long ut = 0, st = 0;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
                     &st) != 2)
        return -1;
    return (long)(ut + st);
}

/* ---- organisations ------------------------------------------------------ */

static void sender_id(int i, char *out, size_t size)
{
    snprintf(out, size, "police-%d", i + 1);
}

static void recipient_id(int i, char *out, size_t size)
{
    snprintf(out, size, "marac-%d", i + 1);
}

/* A config directory with n_senders police forces, the MARACs and the
 * offline MARAC. */
static bench_env_t *env_for_run(int n_senders)
{
    bench_org_t orgs[MAX_SENDERS + N_RECIPIENTS + 1];
    size_t n = 0;
    for (int i = 0; i < n_senders; i++, n++) {
        sender_id(i, orgs[n].id, sizeof orgs[n].id);
        orgs[n].kind = "police";
    }
    for (int i = 0; i < N_RECIPIENTS; i++, n++) {
        recipient_id(i, orgs[n].id, sizeof orgs[n].id);
        orgs[n].kind = "marac";
    }
    snprintf(orgs[n].id, sizeof orgs[n].id, "%s", BACKLOG_ORG);
    orgs[n++].kind = "marac";
    return bench_env_new(O.dir, orgs, n, O.batch_max, O.sync_normal);
}

/* ---- broker-side processes ---------------------------------------------- */

typedef struct run {
    bench_env_t *env;
    shared_t *sh;
    gate_t gate;
    long per_sender;       /* events each sender sends */
    int fanout;            /* recipients per event: 1 or 3 */
    int n_senders;
    long rate;             /* latency: events/s offered; 0: as fast as the window allows */
    int window;            /* un-receipted SHAREs */
    bool wait_acks;        /* sender finishes only when every ACK update is in */
    const char *only_to;   /* every event to this org (backlog) */
    int64_t deadline;      /* ns, monotonic */
} run_t;

static void heartbeat_if_idle(bench_client_t *c, int64_t *last_send, int64_t now)
{
    if (now - *last_send < 1000000000LL)
        return;
    shub_msg_t hb = {.type = SHUB_MSG_HEARTBEAT};
    hb.heartbeat.time_ms = shub_now_ms();
    bench_client_send(c, &hb);
    *last_send = now;
}

/* One sender: pipelined SHAREs, at most run->window un-receipted; if
 * run->rate, paced to a schedule of one event every 1/rate s (latency). */
static void sender_main(void *arg, int idx)
{
    run_t *r = arg;
    shared_t *sh = r->sh;
    char org[SHUB_MSG_MAX_NAME + 1];
    sender_id(idx, org, sizeof org);
    prctl(PR_SET_TIMERSLACK, 1UL);
    bench_client_t *c = bench_client_new(r->env, org);
    if (bench_client_hello(c, RECIPIENT_WINDOW) != 0) {
        fprintf(stderr, "bench: %s: no WELCOME\n", org);
        _exit(2);
    }
    char names[N_RECIPIENTS][SHUB_MSG_MAX_NAME + 1];
    const char *all[N_RECIPIENTS], *one[1];
    for (int i = 0; i < N_RECIPIENTS; i++) {
        recipient_id(i, names[i], sizeof names[i]);
        all[i] = names[i];
    }
    shub_arena_t *arena = shub_arena_new(0);
    shub_msg_t m = {.type = SHUB_MSG_SHARE};
    if (!arena || bench_share_fill(&m.share, arena, all, N_RECIPIENTS) != 0)
        _exit(2);
    int fd = -1;
    size_t fdlen = sizeof fd;
    zmq_getsockopt(c->sock, ZMQ_FD, &fd, &fdlen);

    gate_child_ready(&r->gate, true);
    int64_t t0 = bench_now_ns(), last_send = t0;
    long sent = 0, receipted = 0, acked = 0, expect_acks = r->per_sender * r->fanout;
    bool latency = r->rate > 0;
    int64_t step = latency ? 1000000000LL / r->rate : 0;
    while ((receipted < r->per_sender || (r->wait_acks && acked < expect_acks))) {
        int64_t now = bench_now_ns();
        if (now > r->deadline) {
            sh->timed_out = true;
            break;
        }
        /* Drain everything waiting before deciding what to send. */
        for (;;) {
            int events = 0;
            size_t elen = sizeof events;
            if (zmq_getsockopt(c->sock, ZMQ_EVENTS, &events, &elen) != 0 ||
                !(events & ZMQ_POLLIN))
                break;
            shub_msg_t *in = bench_client_recv(c, 0);
            if (!in)
                break;
            int64_t t = bench_now_ns();
            uint16_t tag;
            uint32_t seq;
            if (in->type == SHUB_MSG_RECEIPT) {
                for (uint32_t k = 0; k < in->receipt.count; k++) {
                    const shub_receipt_t *rc = &in->receipt.list[k];
                    receipted++;
                    for (uint32_t i = 0; i < rc->count; i++) {
                        shub_outcome_t o = rc->items[i].outcome;
                        if (o == SHUB_OUTCOME_DENIED || o == SHUB_OUTCOME_DEAD) {
                            sh->denied[idx]++;
                            expect_acks--;
                        } else if (o == SHUB_OUTCOME_QUEUED) {
                            sh->queued[idx]++;
                        }
                    }
                    bench_id_unpack(&rc->id, &tag, &seq);
                    if (seq < (uint32_t)sh->n_lat)
                        sh->t_receipt[seq] = t;
                }
            } else if (in->type == SHUB_MSG_UPDATE) {
                /* acknowledgements come as updates, confirmed as an agent does */
                int64_t upto = 0;
                for (uint32_t i = 0; i < in->update.count; i++) {
                    acked += in->update.list[i].item.outcome == SHUB_OUTCOME_ACKNOWLEDGED;
                    if (in->update.list[i].seq > upto)
                        upto = in->update.list[i].seq;
                }
                shub_msg_t confirm = {.type = SHUB_MSG_CONFIRM};
                confirm.confirm.upto = upto;
                bench_client_send(c, &confirm);
            } else if (in->type == SHUB_MSG_ERROR) {
                if (sh->errors[idx]++ == 0)
                    fprintf(stderr, "bench: %s: ERROR %s: %s\n", org, in->error.code,
                            in->error.message);
                receipted++;
                expect_acks -= r->fanout;
            }
            shub_msg_destroy(&in);
        }
        now = bench_now_ns();
        /* In flight: un-receipted SHAREs and, when ACK updates are awaited,
         * events not yet acknowledged by every recipient. Counting only
         * receipts lets un-ACKed DELIVERs outgrow a recipient's window when
         * ACKs lag (three per SHARE), and the broker does not yet resend a
         * DELIVER it queued for a full window until the recipient's next
         * HELLO; bounding both keeps each recipient below RECIPIENT_WINDOW. */
        long finished = r->wait_acks && r->fanout ? acked / r->fanout : receipted;
        long busy = sent - (finished < receipted ? finished : receipted);
        bool room = sent < r->per_sender && busy < r->window;
        int64_t due = latency ? t0 + sent * step : now;
        if (room && now >= due) {
            bench_share_renumber(&m.share, (uint16_t)idx, (uint32_t)sent);
            if (r->only_to) {
                one[0] = r->only_to;
                m.share.to = one;
                m.share.to_count = 1;
            } else if (r->fanout == 1) {
                one[0] = all[(sent + idx) % N_RECIPIENTS];
                m.share.to = one;
                m.share.to_count = 1;
            }
            if (sent < sh->n_lat)
                sh->t_sched[sent] = due;
            if (bench_client_send(c, &m) != 0) {
                fprintf(stderr, "bench: %s: send failed\n", org);
                break;
            }
            sent++;
            last_send = now;
            continue;
        }
        heartbeat_if_idle(c, &last_send, now);
        /* Block until a message may be waiting or the next send is due. */
        int64_t wait = 100000000LL;
        if (room && due - now < wait)
            wait = due - now;
        struct timespec ts = {wait / 1000000000LL, wait % 1000000000LL};
        fd_set rd;
        FD_ZERO(&rd);
        FD_SET(fd, &rd);
        pselect(fd + 1, &rd, NULL, NULL, &ts, NULL);
    }
    sh->t_done[idx] = bench_now_ns();
    sh->receipts[idx] = receipted;
    sh->acks[idx] = acked;
    /* Stay connected until told: the broker must not see senders vanish
     * while others are still measured. */
    while (!sh->stop) {
        shub_msg_t *in = bench_client_recv(c, 100);
        shub_msg_destroy(&in);
        heartbeat_if_idle(c, &last_send, bench_now_ns());
    }
    shub_arena_destroy(&arena);
    bench_client_destroy(&c);
}

/* One recipient: ACKs every DELIVER as soon as it arrives. */
static void recipient_main(void *arg, int idx)
{
    run_t *r = arg;
    shared_t *sh = r->sh;
    char org[SHUB_MSG_MAX_NAME + 1];
    if (idx < N_RECIPIENTS)
        recipient_id(idx, org, sizeof org);
    else
        snprintf(org, sizeof org, "%s", BACKLOG_ORG);
    bench_client_t *c = bench_client_new(r->env, org);
    if (bench_client_hello(c, RECIPIENT_WINDOW) != 0) {
        fprintf(stderr, "bench: %s: no WELCOME\n", org);
        _exit(2);
    }
    gate_child_ready(&r->gate, false);
    int64_t last_send = bench_now_ns();
    long got = 0;
    while (!sh->stop) {
        shub_msg_t *in = bench_client_recv(c, 100);
        int64_t t = bench_now_ns();
        if (in && in->type == SHUB_MSG_DELIVER) {
            /* One ACK names every copy of a DELIVER, as an agent sends it
             * after one inbox commit. */
            shub_id_t ids[SHUB_MSG_MAX_BATCH];
            uint32_t n = in->deliver.count;
            for (uint32_t k = 0; k < n; k++) {
                uint16_t tag;
                uint32_t seq;
                ids[k] = in->deliver.list[k].id;
                bench_id_unpack(&ids[k], &tag, &seq);
                if (seq < (uint32_t)sh->n_lat && sh->t_deliver[seq] == 0)
                    sh->t_deliver[seq] = t;
                if (got++ == 0)
                    sh->t_first_deliver = t;
            }
            sh->delivered[idx < N_RECIPIENTS ? idx : N_RECIPIENTS] = got;
            shub_msg_t ack = {.type = SHUB_MSG_ACK};
            ack.ack.ids = ids;
            ack.ack.count = n;
            bench_client_send(c, &ack);
            sh->t_last_ack = t;
            last_send = t;
        }
        shub_msg_destroy(&in);
        heartbeat_if_idle(c, &last_send, t);
    }
    sh->delivered[idx < N_RECIPIENTS ? idx : N_RECIPIENTS] = got;
    bench_client_destroy(&c);
}

/* ---- the bare forwarder ------------------------------------------------- */

/*
 * The floor under the broker: a ROUTER that passes each message on to the
 * recipients it names and each ACK back to its sender, with no CURVE, no
 * decoding, no policy and no store. Every body starts with its kind:
 *
 *   'H'                          hello: answered with itself, whoever sends it
 *   'S' k r1 r2 r3 id[16] ...    a SHARE for k of the recipients r1..r3,
 *                                padded to the size of the broker's SHARE
 *   'A' id[16]                   an ACK, from a recipient for the sender
 *
 * The forwarder puts the sender's routing id before each copy it passes on,
 * so that the recipient's ACK, [sender]['A' id], finds its way back. Every
 * client says hello and waits for the answer before it reports ready, so the
 * forwarder knows each routing id before the first SHARE names it.
 *
 * No high-water marks on any bare socket: the senders' windows bound what is
 * queued (senders x WINDOW events of fanout copies each: 24,000 messages of
 * about 700 bytes with 40 senders to 3 recipients), as they bound the
 * broker's queues. With libzmq's default of 1,000 messages a pipe the
 * forwarder blocked in a send to a recipient that was itself blocked sending
 * the ACKs the forwarder had not yet read: 40 senders with 8,000 events in
 * flight deadlocked.
 */
enum {
    BARE_KIND,                          /* 'H', 'S' or 'A' */
    BARE_FANOUT,                        /* SHARE: recipients named */
    BARE_TO,                            /* SHARE: their indexes, N_RECIPIENTS bytes */
    BARE_ID = BARE_TO + N_RECIPIENTS,   /* SHARE: the event id */
    BARE_HEAD = BARE_ID + SHUB_ID_SIZE, /* SHARE: the padding starts here */
};

typedef struct fwd {
    shared_t *sh;
    gate_t gate;
    char endpoint[600];
    long per_sender;
    int fanout, n_senders;
    int64_t deadline;
} fwd_t;

static void bare_unbounded(void *sock)
{
    int zero = 0;
    zmq_setsockopt(sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &zero, sizeof zero);
}

/* The frames of the next waiting message, at most max of them (any more are
 * read and dropped); 0 when nothing is waiting. The caller closes them. */
static int bare_recv(void *sock, zmq_msg_t *frames, int max)
{
    int got = 0;
    for (bool more = true; more;) {
        zmq_msg_t extra, *m = got < max ? &frames[got] : &extra;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, got ? 0 : ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(m);
            break;
        }
        more = zmq_msg_more(m);
        if (m == &extra)
            zmq_msg_close(m);
        else
            got++;
    }
    return got;
}

static void bare_close(zmq_msg_t *frames, int n)
{
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
}

/* Sends parts[0..n) as one message from the ROUTER, parts[0] naming the
 * peer. Only the first part can fail (an unknown routing id, with
 * ROUTER_MANDATORY), and then nothing was sent. 0 or -1. */
static int bare_route(void *router, zmq_msg_t *parts, int n)
{
    for (int i = 0; i < n; i++)
        if (zmq_msg_send(&parts[i], router, i + 1 < n ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    return 0;
}

/* One message in, [routing id][body] or [routing id][sender][body]: what
 * it asks for goes out. Returns -1 for a message it could not route. */
static int bare_forward(void *router, zmq_msg_t *in, int got)
{
    const uint8_t *body = zmq_msg_data(&in[got - 1]);
    size_t len = zmq_msg_size(&in[got - 1]);
    if (len == 0)
        return -1;
    if (got == 2 && body[BARE_KIND] == 'H')
        return bare_route(router, in, 2);
    if (got == 3 && body[BARE_KIND] == 'A')
        return bare_route(router, in + 1, 2);
    if (got != 2 || body[BARE_KIND] != 'S' || len < BARE_HEAD)
        return -1;
    int rc = 0;
    for (int k = 0; k < body[BARE_FANOUT] && k < N_RECIPIENTS; k++) {
        char to[8];
        int n = snprintf(to, sizeof to, "r%d", body[BARE_TO + k]);
        zmq_msg_t out[3];
        zmq_msg_init_size(&out[0], (size_t)n);
        memcpy(zmq_msg_data(&out[0]), to, (size_t)n);
        zmq_msg_init(&out[1]);
        zmq_msg_init(&out[2]);
        zmq_msg_copy(&out[1], &in[0]);
        zmq_msg_copy(&out[2], &in[1]);
        rc |= bare_route(router, out, 3);
        bare_close(out, 3);
    }
    return rc;
}

static void forwarder_main(void *arg, int idx)
{
    (void)idx;
    fwd_t *f = arg;
    void *ctx = zmq_ctx_new(), *router = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1;
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    bare_unbounded(router);
    if (zmq_bind(router, f->endpoint) != 0) {
        fprintf(stderr, "bench: forwarder bind: %s\n", zmq_strerror(errno));
        _exit(2);
    }
    gate_child_ready(&f->gate, false);
    while (!f->sh->stop) {
        zmq_pollitem_t item = {router, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        for (int n = 0; n < 1024; n++) {
            zmq_msg_t in[3];
            int got = bare_recv(router, in, 3);
            if (got == 0)
                break;
            if (got < 2 || bare_forward(router, in, got) != 0)
                f->sh->unroutable++;
            bare_close(in, got);
        }
    }
    int linger = 0;
    zmq_setsockopt(router, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(router);
    zmq_ctx_term(ctx);
}

/* A DEALER with routing id `rid`, connected, whose hello was answered. */
static void *bare_connect(void *ctx, const char *endpoint, const char *rid)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int hello_ms = 10000, forever = -1;
    bare_unbounded(s);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &hello_ms, sizeof hello_ms);
    char hello = 'H', answer[4];
    if (zmq_connect(s, endpoint) != 0 || zmq_send(s, &hello, 1, 0) != 1 ||
        zmq_recv(s, answer, sizeof answer, 0) != 1 || answer[0] != 'H') {
        fprintf(stderr, "bench: %s: the forwarder did not answer its hello\n", rid);
        _exit(2);
    }
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &forever, sizeof forever);
    return s;
}

static void bare_close_socket(void *ctx, void *s)
{
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_close(s);
    zmq_ctx_term(ctx);
}

/* One recipient: ACKs every SHARE back to its sender, with its event id as
 * the broker's recipients do. */
static void bare_recipient_main(void *arg, int idx)
{
    fwd_t *f = arg;
    char rid[8];
    snprintf(rid, sizeof rid, "r%d", idx);
    void *ctx = zmq_ctx_new(), *s = bare_connect(ctx, f->endpoint, rid);
    gate_child_ready(&f->gate, false);
    long got = 0;
    while (!f->sh->stop) {
        zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t in[2];
        for (int n; (n = bare_recv(s, in, 2)) > 0; bare_close(in, n)) {
            const uint8_t *body = n == 2 ? zmq_msg_data(&in[1]) : NULL;
            if (!body || zmq_msg_size(&in[1]) < BARE_HEAD || body[BARE_KIND] != 'S')
                continue;
            uint8_t ack[1 + SHUB_ID_SIZE] = {'A'};
            memcpy(ack + 1, body + BARE_ID, SHUB_ID_SIZE);
            zmq_msg_send(&in[0], s, ZMQ_SNDMORE);
            zmq_send(s, ack, sizeof ack, 0);
            got++;
        }
    }
    f->sh->delivered[idx] = got;
    bare_close_socket(ctx, s);
}

static void bare_sender_main(void *arg, int idx)
{
    fwd_t *f = arg;
    shared_t *sh = f->sh;
    char rid[16];
    snprintf(rid, sizeof rid, "s%d", idx);
    void *ctx = zmq_ctx_new(), *s = bare_connect(ctx, f->endpoint, rid);
    uint8_t *msg = shub_calloc(1, share_bytes);
    if (!msg)
        _exit(2);
    msg[BARE_KIND] = 'S';
    msg[BARE_FANOUT] = (uint8_t)f->fanout;
    gate_child_ready(&f->gate, true);
    long sent = 0, acked = 0, expect = f->per_sender * f->fanout;
    while (acked < expect) {
        if (bench_now_ns() > f->deadline) {
            sh->timed_out = true;
            break;
        }
        /* The same window as the broker's senders, counted in events. */
        while (sent < f->per_sender && sent - acked / f->fanout < WINDOW) {
            for (int k = 0; k < N_RECIPIENTS; k++)
                msg[BARE_TO + k] = (uint8_t)(f->fanout == 1 ? (sent + idx) % N_RECIPIENTS : k);
            shub_id_generate((shub_id_t *)(msg + BARE_ID), shub_now_ms());
            if (zmq_send(s, msg, share_bytes, 0) < 0)
                _exit(2);
            sent++;
        }
        zmq_pollitem_t item = {s, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        char buf[64];
        for (int n; (n = zmq_recv(s, buf, sizeof buf, ZMQ_DONTWAIT)) >= 0;)
            acked += n > 0 && buf[BARE_KIND] == 'A';
    }
    sh->t_done[idx] = bench_now_ns();
    sh->acks[idx] = acked;
    shub_free(msg);
    while (!sh->stop) {
        struct timespec ts = {0, 10000000L};
        nanosleep(&ts, NULL);
    }
    bare_close_socket(ctx, s);
}

/* Bytes pid has caused to be written to the file system (write_bytes of
 * /proc/PID/io: the WAL's frames, the checkpoints' pages), or -1 where that
 * cannot be read. */
static long long io_write_bytes(pid_t pid)
{
    char path[64], line[128];
    long long v = -1;
    snprintf(path, sizeof path, "/proc/%d/io", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "write_bytes: %lld", &v) == 1)
            break;
    fclose(f);
    return v;
}

/* ---- runs --------------------------------------------------------------- */

typedef struct result {
    double rate;        /* events/s */
    double broker_cpu;  /* broker (or forwarder) CPU seconds per wall second */
    double cpu_us;      /* its CPU time per event, microseconds */
    double clients_us;  /* its senders' and recipients' CPU time per event */
    double written;     /* bytes it wrote to the file system per event; < 0: unknown */
    long errors, denied, queued;
    bool timed_out;
} result_t;

/* Where temporary directories go: the broker's database among them, so this
 * decides what an fsync costs. */
static const char *tmp_parent(void)
{
    const char *tmpdir = getenv("TMPDIR");
    return O.dir ? O.dir : tmpdir ? tmpdir : "/tmp";
}

/* A fresh directory under tmp_parent() named from `stem`, into dir (size
 * bytes); the bench cannot go on without it. */
static void temp_dir(const char *stem, char *dir, size_t size)
{
    snprintf(dir, size, "%s/shub-%s-XXXXXX", tmp_parent(), stem);
    if (!mkdtemp(dir)) {
        perror("bench: mkdtemp");
        exit(1);
    }
}

/* Removes dir and the one file (a socket) it holds. */
static void temp_dir_remove(const char *dir, const char *file)
{
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    unlink(path);
    rmdir(dir);
}

static void pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int64_t latest_done(const shared_t *sh, int n)
{
    int64_t t = 0;
    for (int i = 0; i < n; i++)
        if (sh->t_done[i] > t)
            t = sh->t_done[i];
    return t;
}

/* CPU ticks of the n processes in pids, together. */
static long cpu_ticks_of(const pid_t *pids, int n)
{
    long sum = 0;
    for (int i = 0; i < n; i++) {
        long t = cpu_ticks(pids[i]);
        sum += t > 0 ? t : 0;
    }
    return sum;
}

/* Releases n ready senders and waits until each has seen its last outcome.
 * res gets the rate (`events` over the time from the release to the last
 * sender's end), the CPU share of `busy` (broker or forwarder) meanwhile,
 * and the CPU time per event of `busy` and of the n_kids clients in kids. */
static void time_senders(shared_t *sh, gate_t *gate, int n, long events, pid_t busy,
                         const pid_t *kids, int n_kids, result_t *res)
{
    long cpu0 = cpu_ticks(busy), kids0 = cpu_ticks_of(kids, n_kids);
    long long io0 = io_write_bytes(busy);
    sh->t_go = bench_now_ns();
    gate_release(gate, n);
    for (int i = 0; i < n;)
        if (sh->t_done[i])
            i++;
        else
            pause_ms(2);
    long cpu1 = cpu_ticks(busy), kids1 = cpu_ticks_of(kids, n_kids);
    long long io1 = io_write_bytes(busy);
    double secs = (double)(latest_done(sh, n) - sh->t_go) / 1e9;
    double tick = (double)sysconf(_SC_CLK_TCK);
    double cpu_s = (double)(cpu1 - cpu0) / tick;
    res->rate = secs > 0 ? (double)events / secs : 0;
    res->broker_cpu = secs > 0 ? cpu_s / secs : 0;
    res->cpu_us = events > 0 ? cpu_s * 1e6 / (double)events : 0;
    res->clients_us = events > 0 ? (double)(kids1 - kids0) / tick * 1e6 / (double)events : 0;
    res->written = io0 >= 0 && io1 >= io0 && events > 0 ? (double)(io1 - io0) / (double)events
                                                        : -1;
    res->timed_out = sh->timed_out;
}

/* The broker with n_senders senders, each event to `fanout` recipients.
 * Protocol 2's runs take the same parameters. */
/* A fresh schema of the --pg database for one run (its tables are the
 * broker's to create), dropped after it: into uri, the broker's --db. */
static void pg_schema(bool create, char *uri, size_t size)
{
    static int n;
    char schema[64], sql[200];
    snprintf(schema, sizeof schema, "bench_%ld_%d", (long)getpid(), create ? ++n : n);
    snprintf(sql, sizeof sql, create ? "CREATE SCHEMA %s" : "DROP SCHEMA %s CASCADE",
             schema);
    PGconn *c = PQconnectdb(O.pg);
    PGresult *res = PQstatus(c) == CONNECTION_OK ? PQexec(c, "SET client_min_messages ="
                                                             " warning")
                                                 : NULL;
    PQclear(res);
    res = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    if (!res || PQresultStatus(res) != PGRES_COMMAND_OK) {
        fprintf(stderr, "bench: %s: %s", sql, PQerrorMessage(c));
        exit(1);
    }
    PQclear(res);
    PQfinish(c);
    if (create)
        snprintf(uri, size, "%s%soptions=-csearch_path%%3D%s", O.pg,
                 strchr(O.pg, '?') ? "&" : "?", schema);
}

static result_t run_broker_throughput(long events, int fanout, int n_senders, bool pg)
{
    result_t res = {0};
    run_t r = {.fanout = fanout, .n_senders = n_senders, .window = WINDOW, .wait_acks = true};
    r.per_sender = events / n_senders;
    r.sh = shared_new(0);
    r.env = env_for_run(n_senders);
    if (pg)
        pg_schema(true, r.env->database, sizeof r.env->database);
    bench_env_start(r.env, O.broker, "warn", O.wrap);
    gate_open(&r.gate);
    r.deadline = bench_now_ns() + (int64_t)O.timeout_s * 1000000000LL;
    pid_t kids[MAX_SENDERS + N_RECIPIENTS];
    int n = 0;
    for (int i = 0; i < N_RECIPIENTS; i++)
        kids[n++] = spawn(recipient_main, &r, i);
    gate_wait_ready(&r.gate, N_RECIPIENTS);
    for (int i = 0; i < n_senders; i++)
        kids[n++] = spawn(sender_main, &r, i);
    gate_wait_ready(&r.gate, n_senders);
    time_senders(r.sh, &r.gate, n_senders, r.per_sender * n_senders, r.env->broker, kids, n,
                 &res);
    for (int i = 0; i < n_senders; i++) {
        res.errors += r.sh->errors[i];
        res.denied += r.sh->denied[i];
        res.queued += r.sh->queued[i];
    }
    r.sh->stop = 1;
    reap(kids, n);
    bench_env_destroy(&r.env);
    if (pg)
        pg_schema(false, NULL, 0);
    gate_close(&r.gate);
    shared_free(r.sh);
    return res;
}

/* The bare forwarder with n_senders senders, each event to `fanout`
 * recipients; messages it could not route count as errors. */
static result_t run_forwarder(long events, int fanout, int n_senders)
{
    result_t res = {0};
    fwd_t f = {.fanout = fanout, .n_senders = n_senders};
    f.per_sender = events / n_senders;
    f.sh = shared_new(0);
    char dir[512];
    temp_dir("fwd", dir, sizeof dir);
    snprintf(f.endpoint, sizeof f.endpoint, "ipc://%s/fwd.ipc", dir);
    gate_open(&f.gate);
    f.deadline = bench_now_ns() + (int64_t)O.timeout_s * 1000000000LL;
    pid_t fwd = spawn(forwarder_main, &f, 0);
    gate_wait_ready(&f.gate, 1);
    pid_t kids[MAX_SENDERS + N_RECIPIENTS];
    int n = 0;
    for (int i = 0; i < N_RECIPIENTS; i++)
        kids[n++] = spawn(bare_recipient_main, &f, i);
    gate_wait_ready(&f.gate, N_RECIPIENTS);
    for (int i = 0; i < n_senders; i++)
        kids[n++] = spawn(bare_sender_main, &f, i);
    gate_wait_ready(&f.gate, n_senders);
    time_senders(f.sh, &f.gate, n_senders, f.per_sender * n_senders, fwd, kids, n, &res);
    res.errors = f.sh->unroutable;
    f.sh->stop = 1;
    reap(kids, n);
    reap(&fwd, 1);
    temp_dir_remove(dir, "fwd.ipc");
    gate_close(&f.gate);
    shared_free(f.sh);
    return res;
}

/*
 * The throughput cases, run in rounds: every case once per round, --runs
 * rounds, so that drift in the machine's load touches every case alike; each
 * figure is the median of its rounds. `name` is the stem of its summary
 * names. A case with `many` runs --many-senders senders (40 by default)
 * instead of --senders (3).
 */
typedef struct tcase {
    const char *name;
    bool forwarder;   /* the bare forwarder, else the broker */
    int fanout;       /* recipients per event */
    bool many;
    bool pg; /* the broker on the --pg database (run only with --pg) */
} tcase_t;

static const tcase_t cases[] = {
    {"forwarder.1r", true, 1, false, false},
    {"forwarder.3r", true, 3, false, false},
    {"forwarder.1r_many", true, 1, true, false},
    {"broker.1r", false, 1, false, false},
    {"broker.3r", false, 3, false, false},
    {"broker.1r_many", false, 1, true, false},
    {"broker_pg.1r", false, 1, false, true},
    {"broker_pg.3r", false, 3, false, true},
};
#define N_CASES (sizeof cases / sizeof cases[0])

typedef struct tstats {
    bench_stat_t rate, cpu, cpu_us, clients_us, written;
    long errors, denied, queued;
    int timed_out; /* rounds that hit --timeout */
} tstats_t;

static int case_senders(const tcase_t *c)
{
    return c->many ? O.many_senders : O.senders;
}

static bool case_skipped(const tcase_t *c)
{
    if (c->pg && !O.pg)
        return true;
    return c->forwarder ? O.skip_forwarder : O.skip_throughput;
}

static void run_cases(tstats_t *T)
{
    for (int round = 0; round < O.runs; round++)
        for (size_t i = 0; i < N_CASES; i++) {
            const tcase_t *c = &cases[i];
            if (case_skipped(c))
                continue;
            result_t r =
                c->forwarder
                    ? run_forwarder(O.events, c->fanout, case_senders(c))
                    : run_broker_throughput(O.events, c->fanout, case_senders(c), c->pg);
            bench_stat_add(&T[i].rate, r.rate);
            bench_stat_add(&T[i].cpu, r.broker_cpu);
            bench_stat_add(&T[i].cpu_us, r.cpu_us);
            bench_stat_add(&T[i].clients_us, r.clients_us);
            if (r.written >= 0)
                bench_stat_add(&T[i].written, r.written);
            T[i].errors += r.errors;
            T[i].denied += r.denied;
            T[i].queued += r.queued;
            T[i].timed_out += r.timed_out;
        }
}

/* The figures of the case called `name`, or NULL if it was not run. */
static const tstats_t *case_stats(const tstats_t *T, const char *name)
{
    for (size_t i = 0; i < N_CASES; i++)
        if (strcmp(cases[i].name, name) == 0)
            return T[i].rate.n ? &T[i] : NULL;
    return NULL;
}

/* The rates of the case called `name`, or NULL if it was not run. */
static const bench_stat_t *case_rates(const tstats_t *T, const char *name)
{
    const tstats_t *t = case_stats(T, name);
    return t ? &t->rate : NULL;
}

/* The median rate of the case called `name`, or 0 if it was not run. */
static double case_rate(const tstats_t *T, const char *name)
{
    const bench_stat_t *s = case_rates(T, name);
    return s ? bench_stat_median(s) : 0;
}

typedef struct latency {
    double offered, achieved;
    long n;
    int64_t r50, r99, r999, rmax; /* SHARE -> RECEIPT, ns */
    int64_t d50, d99, d999, dmax; /* SHARE -> DELIVER, ns */
    long missing;
    bool timed_out;
} latency_t;

/* One sender to one recipient: `rate` events/s (0: closed loop with
 * `window` in flight) for `n` events, within `budget_s` seconds of the
 * start; a run out of time stops sending and reports what it saw. */
static latency_t run_latency(long rate, long n, int window, double budget_s)
{
    latency_t L = {.offered = (double)rate, .n = n};
    run_t r = {.fanout = 1, .n_senders = 1, .rate = rate, .window = window,
               .wait_acks = false, .per_sender = n};
    char to[SHUB_MSG_MAX_NAME + 1];
    recipient_id(0, to, sizeof to);
    r.only_to = to;
    r.sh = shared_new(n);
    r.env = env_for_run(1);
    bench_env_start(r.env, O.broker, "warn", O.wrap);
    gate_open(&r.gate);
    r.deadline = bench_now_ns() + (int64_t)(budget_s * 1e9);
    pid_t kids[2];
    kids[0] = spawn(recipient_main, &r, 0);
    gate_wait_ready(&r.gate, 1);
    kids[1] = spawn(sender_main, &r, 0);
    gate_wait_ready(&r.gate, 1);
    r.sh->t_go = bench_now_ns();
    gate_release(&r.gate, 1);
    while (r.sh->t_done[0] == 0)
        pause_ms(2);
    /* The last DELIVERs may trail the last RECEIPT. */
    for (int waited = 0; waited < 2000 && !r.sh->timed_out; waited += 10) {
        if (r.sh->t_deliver[n - 1] != 0)
            break;
        pause_ms(10);
    }
    int64_t *rl = shub_calloc((size_t)n, sizeof *rl), *dl = shub_calloc((size_t)n, sizeof *dl);
    if (!rl || !dl) {
        fprintf(stderr, "bench: out of memory\n");
        exit(1);
    }
    size_t nr = 0, nd = 0;
    for (long i = 0; i < n; i++) {
        if (r.sh->t_receipt[i])
            rl[nr++] = r.sh->t_receipt[i] - r.sh->t_sched[i];
        if (r.sh->t_deliver[i])
            dl[nd++] = r.sh->t_deliver[i] - r.sh->t_sched[i];
    }
    L.missing = (long)((size_t)n - nr);
    L.r50 = bench_percentile(rl, nr, 50);
    L.r99 = bench_percentile(rl, nr, 99);
    L.r999 = bench_percentile(rl, nr, 99.9);
    L.rmax = nr ? rl[nr - 1] : 0;
    L.d50 = bench_percentile(dl, nd, 50);
    L.d99 = bench_percentile(dl, nd, 99);
    L.d999 = bench_percentile(dl, nd, 99.9);
    L.dmax = nd ? dl[nd - 1] : 0;
    double secs = (double)(r.sh->t_done[0] - r.sh->t_go) / 1e9;
    L.achieved = secs > 0 ? (double)nr / secs : 0;
    L.timed_out = r.sh->timed_out;
    shub_free(rl);
    shub_free(dl);
    r.sh->stop = 1;
    reap(kids, 2);
    bench_env_destroy(&r.env);
    gate_close(&r.gate);
    shared_free(r.sh);
    return L;
}

/* One offered rate (or the closed loop) over its rounds: medians in ms. */
typedef struct lstats {
    const char *name;  /* summary stem: "latency.at_10000", "closed" */
    double offered;    /* events/s; 0: one event in flight */
    long n;            /* events per run */
    bool judged;       /* the p50/p99 targets apply */
    bench_stat_t achieved, r50, r99, r999, rmax, d50, d99, d999, dmax;
    long missing;
    int timed_out;
} lstats_t;

static void lstats_add(lstats_t *S, const latency_t *L)
{
    const struct {
        bench_stat_t *stat;
        int64_t ns;
    } ms[] = {{&S->r50, L->r50}, {&S->r99, L->r99}, {&S->r999, L->r999},
              {&S->rmax, L->rmax}, {&S->d50, L->d50}, {&S->d99, L->d99},
              {&S->d999, L->d999}, {&S->dmax, L->dmax}};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++)
        bench_stat_add(ms[i].stat, (double)ms[i].ns / 1e6);
    bench_stat_add(&S->achieved, L->achieved);
    S->missing += L->missing;
    S->timed_out += L->timed_out;
}

/* An offered rate counts as reached when the median run carried 95% of it:
 * below that the sender falls ever further behind its schedule and the
 * latencies measure the queue. */
static bool reached(const lstats_t *S)
{
    return bench_stat_median(&S->achieved) >= 0.95 * S->offered;
}

/* Time for one open-loop run: the schedule and half as much again, plus
 * set-up; a rate the broker cannot carry ends there, not after its queue. */
static double latency_budget(void)
{
    return 2 + 1.5 * O.latency_s;
}

static void run_latencies(lstats_t *S, int n)
{
    for (int round = 0; round < O.runs; round++)
        for (int i = 0; i < n; i++) {
            latency_t L = run_latency((long)S[i].offered, S[i].n, WINDOW, latency_budget());
            lstats_add(&S[i], &L);
        }
}

/*
 * The floor under one event in flight: each event of a closed loop must be
 * durable before its RECEIPT, so it costs at least one synchronous commit.
 * This is that commit alone, in a loop: one small INSERT per transaction in
 * a WAL database with synchronous=FULL (the WAL is synced at every commit),
 * in a directory beside the broker's databases, so on the same disk.
 *
 * The WAL is grown first and checkpointed, so the loop's commits overwrite
 * space the file already has, as a store that checkpoints does in its
 * steady state: a sync that must also record a longer file costs a quarter
 * to a third more on this machine's disk, and a floor is the cheapest
 * honest commit. Returns commits per second.
 */
static double run_fsync_loop(long n)
{
    char dir[512], path[600];
    temp_dir("fsync", dir, sizeof dir);
    snprintf(path, sizeof path, "%s/loop.db", dir);
    sqlite3 *db = NULL;
    sqlite3_stmt *st[3] = {NULL};
    static const char *const sql[3] = {"BEGIN", "INSERT INTO events(id) VALUES (?1)", "COMMIT"};
    char setup[512];
    snprintf(setup, sizeof setup,
             "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
             " PRAGMA wal_autocheckpoint = 0;"
             " CREATE TABLE events(seq INTEGER PRIMARY KEY, id BLOB NOT NULL);"
             " CREATE TABLE pad(b BLOB);"
             " WITH RECURSIVE k(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM k WHERE x < %ld)"
             "  INSERT INTO pad SELECT zeroblob(3000) FROM k;" /* a page each */
             " PRAGMA wal_checkpoint(PASSIVE)",
             2 * n + 64); /* a commit writes a page or two */
    int rc = sqlite3_open(path, &db);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, setup, NULL, NULL, NULL);
    for (int i = 0; i < 3 && rc == SQLITE_OK; i++)
        rc = sqlite3_prepare_v2(db, sql[i], -1, &st[i], NULL);
    int64_t t0 = bench_now_ns();
    for (long e = 0; e < n && rc == SQLITE_OK; e++) {
        shub_id_t id;
        shub_id_generate(&id, shub_now_ms());
        sqlite3_bind_blob(st[1], 1, id.bytes, SHUB_ID_SIZE, SQLITE_STATIC);
        for (int i = 0; i < 3 && rc == SQLITE_OK; i++) {
            rc = sqlite3_step(st[i]) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_reset(st[i]);
        }
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (rc != SQLITE_OK)
        fprintf(stderr, "bench: fsync loop: %s\n", sqlite3_errmsg(db));
    for (int i = 0; i < 3; i++)
        sqlite3_finalize(st[i]);
    sqlite3_close(db);
    static const char *const files[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char f[700];
        snprintf(f, sizeof f, "%s%s", path, files[i]);
        unlink(f);
    }
    rmdir(dir);
    return rc == SQLITE_OK && secs > 0 ? (double)n / secs : 0;
}

/*
 * The other half of that floor: each event's SHARE must reach the broker and
 * its RECEIPT come back, a ZeroMQ round trip on the broker's own transport
 * (ipc, CURVE, separate processes), which no broker goes under. This is that
 * round trip with nothing done in between: a ROUTER process answering each
 * SHARE-sized message at once with a short one. Returns round trips per
 * second.
 */
typedef struct echo {
    gate_t gate;
    char endpoint[600];
    char secret[41]; /* the ROUTER's CURVE secret key, Z85 */
    long n;          /* round trips, after one to connect */
} echo_t;

static void echo_main(void *arg, int idx)
{
    (void)idx;
    echo_t *e = arg;
    void *ctx = zmq_ctx_new(), *router = zmq_socket(ctx, ZMQ_ROUTER);
    int one = 1, wait_ms = (int)(O.timeout_s * 1000);
    zmq_setsockopt(router, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, e->secret, 40);
    zmq_setsockopt(router, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    if (zmq_bind(router, e->endpoint) != 0) {
        fprintf(stderr, "bench: echo bind: %s\n", zmq_strerror(errno));
        _exit(2);
    }
    gate_child_ready(&e->gate, false);
    uint8_t reply[64] = {0}; /* about a one-event RECEIPT */
    for (long i = 0; i <= e->n; i++) {
        zmq_msg_t who, body;
        zmq_msg_init(&who);
        zmq_msg_init(&body);
        bool got = zmq_msg_recv(&who, router, 0) >= 0 && zmq_msg_more(&who) &&
                   zmq_msg_recv(&body, router, 0) >= 0;
        bool sent = got && zmq_msg_send(&who, router, ZMQ_SNDMORE) >= 0 &&
                    zmq_send(router, reply, sizeof reply, 0) == sizeof reply;
        zmq_msg_close(&who);
        zmq_msg_close(&body);
        if (!sent)
            break;
    }
    bare_close_socket(ctx, router);
}

static double run_echo_loop(long n)
{
    echo_t e = {.n = n};
    char dir[512], pub[41], cpub[41], csec[41];
    temp_dir("echo", dir, sizeof dir);
    snprintf(e.endpoint, sizeof e.endpoint, "ipc://%s/echo.ipc", dir);
    if (zmq_curve_keypair(pub, e.secret) != 0 || zmq_curve_keypair(cpub, csec) != 0) {
        fprintf(stderr, "bench: echo: this libzmq has no CURVE\n");
        exit(1);
    }
    gate_open(&e.gate);
    pid_t kid = spawn(echo_main, &e, 0);
    gate_wait_ready(&e.gate, 1);
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int wait_ms = (int)(O.timeout_s * 1000);
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, cpub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, csec, 40);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &wait_ms, sizeof wait_ms);
    uint8_t *msg = shub_calloc(1, share_bytes), reply[64];
    if (!msg || zmq_connect(s, e.endpoint) != 0) {
        fprintf(stderr, "bench: echo: cannot connect\n");
        exit(1);
    }
    bool ok = true;
    int64_t t0 = 0;
    for (long i = 0; i <= n && ok; i++) {
        if (i == 1)
            t0 = bench_now_ns(); /* the first went with the handshake */
        ok = zmq_send(s, msg, share_bytes, 0) == (int)share_bytes &&
             zmq_recv(s, reply, sizeof reply, 0) >= 0;
    }
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    if (!ok) {
        fprintf(stderr, "bench: echo loop: %s\n", zmq_strerror(errno));
        kill(kid, SIGKILL); /* else it waits out its own timeout */
    }
    shub_free(msg);
    bare_close_socket(ctx, s);
    reap(&kid, 1);
    gate_close(&e.gate);
    temp_dir_remove(dir, "echo.ipc");
    return ok && secs > 0 ? (double)n / secs : 0;
}

/* The closed loop and its floor, alternating, --runs times each. */
static void run_closed(lstats_t *C, bench_stat_t *fsync_loop, bench_stat_t *echo_loop)
{
    for (int round = 0; round < O.runs; round++) {
        bench_stat_add(fsync_loop, run_fsync_loop(O.closed_events));
        bench_stat_add(echo_loop, run_echo_loop(O.closed_events));
        latency_t L = run_latency(0, O.closed_events, 1, O.timeout_s);
        lstats_add(C, &L);
    }
}

typedef struct backlog {
    long n;
    double fill_rate, drain_rate, drain_s;
    long rss_filled_kib, rss_peak_kib, delivered;
    bool timed_out;
} backlog_t;

/* N SHAREs to an organisation that is offline; then it comes online and
 * ACKs everything. The senders stay connected to see every ACK update. */
static backlog_t run_backlog(long n)
{
    backlog_t B = {.n = n};
    run_t r = {.fanout = 1, .n_senders = O.senders, .window = WINDOW, .wait_acks = false,
               .only_to = BACKLOG_ORG};
    r.per_sender = n / O.senders;
    B.n = r.per_sender * O.senders;
    r.sh = shared_new(0);
    r.env = env_for_run(O.senders);
    bench_env_start(r.env, O.broker, "warn", O.wrap);
    gate_open(&r.gate);
    r.deadline = bench_now_ns() + (int64_t)O.timeout_s * 1000000000LL;
    pid_t kids[MAX_SENDERS + 1];
    int k = 0;
    for (int i = 0; i < O.senders; i++)
        kids[k++] = spawn(sender_main, &r, i);
    gate_wait_ready(&r.gate, O.senders);
    result_t fill = {0};
    time_senders(r.sh, &r.gate, O.senders, B.n, r.env->broker, kids, k, &fill);
    B.fill_rate = fill.rate;
    B.rss_filled_kib = bench_peak_rss_kib(r.env->broker);

    /* The drain: from the recipient's connect to its last ACK. */
    int64_t t_on = bench_now_ns();
    kids[k++] = spawn(recipient_main, &r, N_RECIPIENTS);
    gate_wait_ready(&r.gate, 1);
    volatile long *got = &r.sh->delivered[N_RECIPIENTS];
    while (*got < B.n) {
        if (bench_now_ns() > r.deadline) {
            B.timed_out = true;
            break;
        }
        pause_ms(2);
    }
    B.drain_s = (double)(r.sh->t_last_ack - t_on) / 1e9;
    r.sh->stop = 1;
    reap(kids, k);
    B.delivered = r.sh->delivered[N_RECIPIENTS];
    B.drain_rate = B.drain_s > 0 ? (double)B.delivered / B.drain_s : 0;
    B.rss_peak_kib = bench_peak_rss_kib(r.env->broker);
    bench_env_destroy(&r.env);
    gate_close(&r.gate);
    shared_free(r.sh);
    return B;
}

/* ---- report ------------------------------------------------------------- */

static const char *sync_name(void)
{
    return O.sync_normal ? "NORMAL" : "FULL";
}

static void print_cases(const tstats_t *T)
{
    for (size_t i = 0; i < N_CASES; i++) {
        const tcase_t *c = &cases[i];
        const tstats_t *t = &T[i];
        if (case_skipped(c))
            continue;
        char what[96], name[96], fig[64];
        snprintf(what, sizeof what, "%s, %d recipient%s per event, %d senders",
                 c->forwarder ? "bare forwarder"
                 : c->pg      ? "broker on PostgreSQL"
                              : "broker",
                 c->fanout, c->fanout == 1 ? "" : "s", case_senders(c));
        bench_row_rate(what, &t->rate, "ev/s", 0);
        snprintf(fig, sizeof fig, "%.0f%%", bench_stat_median(&t->cpu) * 100);
        bench_row(c->forwarder ? "  forwarder busy (cpu of one core)"
                               : "  broker busy (cpu of one core)",
                  fig, "", -1, NULL);
        /* Per event, what the machine's noise moves least: the work itself. */
        char spread[64];
        snprintf(fig, sizeof fig, "%.1f us", bench_stat_median(&t->cpu_us));
        bench_row("    its cpu time per event", fig, "", -1,
                  bench_stat_spread(&t->cpu_us, 1, spread, sizeof spread));
        snprintf(name, sizeof name, "%s.cpu_us_per_event", c->name);
        bench_summary_stat(name, &t->cpu_us, 1);
        snprintf(fig, sizeof fig, "%.1f us", bench_stat_median(&t->clients_us));
        bench_row("    its clients' cpu time per event", fig, "", -1,
                  bench_stat_spread(&t->clients_us, 1, spread, sizeof spread));
        snprintf(name, sizeof name, "%s.clients_cpu_us_per_event", c->name);
        bench_summary_stat(name, &t->clients_us, 1);
        if (!c->forwarder && !c->pg && t->written.n) { /* on PostgreSQL the server writes */
            snprintf(fig, sizeof fig, "%.0f bytes", bench_stat_median(&t->written));
            bench_row("    written per event (WAL and checkpoints)", fig, "", -1,
                      bench_stat_spread(&t->written, 0, spread, sizeof spread));
            snprintf(name, sizeof name, "%s.written_bytes_per_event", c->name);
            bench_summary_stat(name, &t->written, 0);
        }
        if (t->errors || t->denied || t->queued || t->timed_out)
            printf("  %-48s errors=%ld denied=%ld queued=%ld%s\n", "", t->errors, t->denied,
                   t->queued, t->timed_out ? " TIMED OUT" : "");
        snprintf(name, sizeof name, "%s.events_per_s", c->name);
        bench_summary_stat(name, &t->rate, 0);
    }
}

/* The ratio of two cases, round by round, as a row and (if name) a summary
 * line; a case that was not run makes the row say so rather than vanish. */
static void print_ratio(const tstats_t *T, const char *what, const char *a, const char *b,
                        double target, const char *name)
{
    const bench_stat_t *x = case_rates(T, a), *y = case_rates(T, b);
    if (!x || !y) {
        char tgt[32] = "", note[64];
        if (target > 0)
            snprintf(tgt, sizeof tgt, ">= %g", target);
        snprintf(note, sizeof note, "(no %s run)", !x ? a : b);
        bench_row(what, "not measured", tgt, -1, note);
        return;
    }
    bench_stat_t ratio = bench_stat_ratio(x, y);
    double r = bench_row_ratio(what, &ratio, target);
    if (name)
        bench_summary(name, r, 3);
}

/*
 * What a ratio to the forwarder asks of this machine: at `ratio` of the
 * forwarder's 1-recipient rate, its cores give each event cores / (ratio *
 * rate) of CPU time, for the broker and the senders and recipients that
 * drive it together (they share the cores), against what they take now.
 */
static void print_budget(const tstats_t *T, double ratio, const char *name)
{
    const tstats_t *b = case_stats(T, "broker.1r");
    double rate = case_rate(T, "forwarder.1r");
    if (!b || rate <= 0)
        return;
    char what[96], fig[64], note[96];
    double budget = cores * 1e6 / (ratio * rate);
    double now = bench_stat_median(&b->cpu_us) + bench_stat_median(&b->clients_us);
    snprintf(what, sizeof what, "  cpu per event the cores allow at %gx", ratio);
    snprintf(fig, sizeof fig, "%.1f us", budget);
    snprintf(note, sizeof note, "(the broker and its clients take %.1f us now)", now);
    bench_row(what, fig, "", -1, note);
    bench_summary(name, budget, 1);
    bench_summary("broker.1r.machine_cpu_us_per_event", now, 1);
}

static void print_throughput(const tstats_t *T)
{
    print_cases(T);
    print_ratio(T, "ratio broker/forwarder, 1 recipient", "broker.1r", "forwarder.1r", 0.25,
                "ratio.broker_1r_to_forwarder_1r");
    print_budget(T, 0.25, "budget.cpu_us_per_event_at_0_25");
    print_ratio(T, "  the same, stretch target", "broker.1r", "forwarder.1r", 0.5, NULL);
    print_ratio(T, "ratio broker/forwarder, 3 recipients", "broker.3r", "forwarder.3r", 0,
                "ratio.broker_3r_to_forwarder_3r");
    print_ratio(T, "ratio broker 3 recipients / 1 recipient", "broker.3r", "broker.1r", 0.6,
                "ratio.broker_3r_to_broker_1r");
    print_ratio(T, "ratio forwarder many senders / few", "forwarder.1r_many", "forwarder.1r",
                0, "ratio.forwarder_many_to_few");
    print_ratio(T, "ratio broker many senders / few", "broker.1r_many", "broker.1r", 0.9,
                "ratio.broker_many_to_few");
    if (O.pg) { /* a figure, not a target: what a standby's database costs */
        print_ratio(T, "ratio broker on PostgreSQL / SQLite, 1 recipient", "broker_pg.1r",
                    "broker.1r", 0, "ratio.broker_pg_1r_to_broker_1r");
        print_ratio(T, "ratio broker on PostgreSQL / SQLite, 3 recipients",
                    "broker_pg.3r", "broker.3r", 0, "ratio.broker_pg_3r_to_broker_3r");
    }
}

static void row_ms(const char *what, const bench_stat_t *ms, double target_ms, bool judged,
                   bool valid)
{
    char fig[64], tgt[64] = "", spread[96];
    double m = bench_stat_median(ms);
    snprintf(fig, sizeof fig, "%.3f ms", m);
    if (judged)
        snprintf(tgt, sizeof tgt, "<= %g ms", target_ms);
    bench_row(what, fig, tgt, judged ? valid && m <= target_ms : -1,
              bench_stat_spread(ms, 3, spread, sizeof spread));
}

static void print_latency(const lstats_t *S, double max_rate)
{
    bool ok = S->offered == 0 || reached(S), judged = S->judged;
    double achieved = bench_stat_median(&S->achieved);
    char name[128];
    if (S->offered == 0) {
        printf("  one event in flight (%ld events a run)\n", S->n);
    } else if (ok) {
        printf("  latency at %.0f ev/s offered (%.0f achieved, %ld events a run)\n",
               S->offered, achieved, S->n);
    } else {
        printf("  latency at %.0f ev/s offered: not reached, %.0f ev/s at most", S->offered,
               achieved);
        if (max_rate > 0)
            printf(" (1-recipient throughput %.0f ev/s)", max_rate);
        printf("; the figures below measure the queue\n");
    }
    row_ms("  SHARE -> RECEIPT p50", &S->r50, 0.5, judged, ok);
    row_ms("  SHARE -> RECEIPT p99", &S->r99, 2, judged, ok);
    row_ms("  SHARE -> RECEIPT p99.9", &S->r999, 0, false, ok);
    row_ms("  SHARE -> RECEIPT max", &S->rmax, 0, false, ok);
    row_ms("  SHARE -> DELIVER p50", &S->d50, 0, false, ok);
    row_ms("  SHARE -> DELIVER p99", &S->d99, 0, false, ok);
    row_ms("  SHARE -> DELIVER p99.9", &S->d999, 0, false, ok);
    row_ms("  SHARE -> DELIVER max", &S->dmax, 0, false, ok);
    if (ok && (S->missing || S->timed_out))
        printf("  %-48s %ld events without a RECEIPT%s\n", "", S->missing,
               S->timed_out ? ", out of time" : "");
    const struct {
        const char *figure;
        const bench_stat_t *stat;
    } ms[] = {{"receipt_p50_ms", &S->r50}, {"receipt_p99_ms", &S->r99},
              {"receipt_p999_ms", &S->r999}, {"deliver_p50_ms", &S->d50},
              {"deliver_p99_ms", &S->d99}};
    if (S->offered > 0) {
        snprintf(name, sizeof name, "%s.offered_per_s", S->name);
        bench_summary(name, S->offered, 0);
        snprintf(name, sizeof name, "%s.reached", S->name);
        bench_summary(name, ok, 0);
    }
    snprintf(name, sizeof name, "%s.%s", S->name,
             S->offered > 0 ? "achieved_per_s" : "events_per_s");
    bench_summary(name, achieved, 0);
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        snprintf(name, sizeof name, "%s.%s", S->name, ms[i].figure);
        bench_summary_stat(name, ms[i].stat, 3);
    }
}

static void print_closed(const lstats_t *C, const bench_stat_t *fsync_loop,
                         const bench_stat_t *echo_loop)
{
    print_latency(C, 0);
    bench_row_rate("  events/s", &C->achieved, "ev/s", 0);
    bench_row_rate("  floor: one fsync'd SQLite commit per event", fsync_loop, "/s", 0);
    bench_summary_stat("fsync_loop.commits_per_s", fsync_loop, 0);
    bench_stat_t ratio = bench_stat_ratio(&C->achieved, fsync_loop);
    double r = bench_row_ratio("  ratio one in flight / fsync loop", &ratio, 0.8);
    if (ratio.n)
        bench_summary("ratio.closed_to_fsync_loop", r, 3);
    /* Both halves of the floor, one after the other as an event takes them:
     * a commit and a round trip, round by round. */
    bench_row_rate("  bare ZeroMQ round trip (ipc, CURVE), no work", echo_loop, "/s", 0);
    bench_summary_stat("echo_loop.round_trips_per_s", echo_loop, 0);
    bench_stat_t both = {0};
    for (int i = 0; i < fsync_loop->n && i < echo_loop->n; i++)
        if (fsync_loop->v[i] > 0 && echo_loop->v[i] > 0)
            bench_stat_add(&both, 1 / (1 / fsync_loop->v[i] + 1 / echo_loop->v[i]));
    bench_row_rate("  floor: that commit and that round trip", &both, "/s", 0);
    bench_summary_stat("closed_floor.events_per_s", &both, 0);
    ratio = bench_stat_ratio(&C->achieved, &both);
    r = bench_row_ratio("  ratio one in flight / commit and round trip", &ratio, 0);
    if (ratio.n)
        bench_summary("ratio.closed_to_commit_and_round_trip", r, 3);
}

static void print_backlog(const backlog_t *B, double max_rate)
{
    char what[96], fig[64], tgt[64];
    printf("backlog (%ld deliveries queued for an offline org, filled at %.0f ev/s; one run)\n",
           B->n, B->fill_rate);
    snprintf(fig, sizeof fig, "%.1f MiB", (double)B->rss_filled_kib / 1024);
    bench_row("  broker peak RSS when filled", fig, "<= 64 MiB", B->rss_filled_kib <= 65536,
              NULL);
    snprintf(fig, sizeof fig, "%.1f MiB", (double)B->rss_peak_kib / 1024);
    bench_row("  broker peak RSS after the drain", fig, "<= 64 MiB", B->rss_peak_kib <= 65536,
              NULL);
    snprintf(what, sizeof what, "  drain time (%ld delivered and ACKed)", B->delivered);
    snprintf(fig, sizeof fig, "%.2f s", B->drain_s);
    bench_row(what, fig, "", -1, NULL);
    snprintf(fig, sizeof fig, "%.0f ev/s", B->drain_rate);
    if (max_rate > 0)
        snprintf(tgt, sizeof tgt, ">= %.0f", max_rate / 2);
    else
        snprintf(tgt, sizeof tgt, ">= 50%% thru");
    bench_row("  drain rate", fig, tgt,
              max_rate > 0 ? B->drain_rate >= max_rate / 2 && !B->timed_out : -1, NULL);
    if (B->timed_out)
        printf("  %-48s TIMED OUT\n", "");
    bench_summary("backlog.deliveries", (double)B->n, 0);
    bench_summary("backlog.rss_filled_mib", (double)B->rss_filled_kib / 1024, 1);
    bench_summary("backlog.rss_peak_mib", (double)B->rss_peak_kib / 1024, 1);
    bench_summary("backlog.drain_events_per_s", B->drain_rate, 0);
}

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: bench_broker [options]\n"
        "  --runs N            runs of every case; figures are medians (default %d)\n"
        "  --events N          throughput: events per run (default %ld)\n"
        "  --senders N         sender processes, 1..%d (default %d)\n"
        "  --many-senders N    senders of the many-senders cases (default %d)\n"
        "  --rates A,B,...     latency: offered events/s (default 1000,10000,50000),\n"
        "                      then half the measured 1-recipient throughput; a rate\n"
        "                      not reached is reported so, with the rate achieved\n"
        "  --latency-seconds S seconds per offered rate (default %g)\n"
        "  --closed N          one-in-flight events, and fsync loop commits (default "
        "%ld)\n"
        "  --backlog N         deliveries queued for an offline org (default %ld)\n"
        "  --batch-max N       hub.yaml limits.batch_max (default %u)\n"
        "  --sync-normal       synchronous: normal instead of full\n"
        "  --only WHAT         throughput | forwarder | latency | closed | backlog\n"
        "                      (repeatable)\n"
        "  --dir DIR           where the temporary broker directories go\n"
        "                      (default $TMPDIR or /tmp; it decides what fsync costs)\n"
        "  --wrap CMD          run the broker under CMD, e.g.\n"
        "                      \"valgrind --tool=callgrind "
        "--callgrind-out-file=cg.%%p\"\n"
        "  --broker PATH       sharehub-broker to run (default: this build's)\n"
        "  --pg URI            also run the broker's throughput cases on this\n"
        "                      PostgreSQL database (a schema of its own per run)\n"
        "  --timeout S         give up on any one run after S seconds (default %d)\n",
        O.runs, O.events, MAX_SENDERS, O.senders, O.many_senders, O.latency_s,
        O.closed_events, O.backlog, O.batch_max, O.timeout_s);
}

static void parse(int argc, char **argv)
{
    static const struct option longs[] = {
        {"events", required_argument, NULL, 'e'},
        {"senders", required_argument, NULL, 's'},
        {"rates", required_argument, NULL, 'r'},
        {"latency-seconds", required_argument, NULL, 'l'},
        {"closed", required_argument, NULL, 'c'},
        {"backlog", required_argument, NULL, 'b'},
        {"batch-max", required_argument, NULL, 'm'},
        {"sync-normal", no_argument, NULL, 'n'},
        {"only", required_argument, NULL, 'o'},
        {"dir", required_argument, NULL, 'd'},
        {"wrap", required_argument, NULL, 'w'},
        {"broker", required_argument, NULL, 'B'},
        {"timeout", required_argument, NULL, 't'},
        {"runs", required_argument, NULL, 'R'},
        {"many-senders", required_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {"pg", required_argument, NULL, 'P'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        const char *name;
        bool *skip;
    } parts[] = {{"throughput", &O.skip_throughput}, {"forwarder", &O.skip_forwarder},
                 {"latency", &O.skip_latency},       {"closed", &O.skip_closed},
                 {"backlog", &O.skip_backlog}};
    const bench_opts_t common = {&O.runs, &O.events, &O.dir, &O.timeout_s, usage};
    bool only = false, known, bad = false;
    for (int c; !bad && (c = getopt_long(argc, argv, "h", longs, NULL)) != -1;) {
        switch (c) {
        case 's': O.senders = atoi(optarg); break;
        case 'M': O.many_senders = atoi(optarg); break;
        case 'l': O.latency_s = atof(optarg); break;
        case 'c': O.closed_events = atol(optarg); break;
        case 'b': O.backlog = atol(optarg); break;
        case 'm': O.batch_max = (unsigned)atol(optarg); break;
        case 'n': O.sync_normal = true; break;
        case 'w': O.wrap = optarg; break;
        case 'B': O.broker = optarg; break;
        case 'P':
            O.pg = optarg;
            break;
        case 'r': {
            O.n_rates = 0;
            for (char *save = NULL, *t = strtok_r(optarg, ",", &save); t && O.n_rates < 8;
                 t = strtok_r(NULL, ",", &save))
                O.rates[O.n_rates++] = atol(t);
            break;
        }
        case 'o':
            known = false;
            for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
                if (!only)
                    *parts[i].skip = true;
                if (strcmp(optarg, parts[i].name) == 0)
                    *parts[i].skip = !(known = true);
            }
            only = true;
            bad = !known;
            break;
        default:
            bad = !bench_opts_take(&common, c, optarg);
        }
    }
    for (int i = 0; i < O.n_rates; i++)
        bad = bad || O.rates[i] <= 0;
    if (bad || optind < argc || O.runs < 1 || O.senders < 1 || O.senders > MAX_SENDERS ||
        O.many_senders < 1 || O.many_senders > MAX_SENDERS || O.events < O.senders ||
        O.events < O.many_senders || O.latency_s <= 0 || O.closed_events < 1 ||
        O.backlog < O.senders || O.batch_max < 1 || O.timeout_s < 1) {
        usage(stderr);
        exit(2);
    }
}

int main(int argc, char **argv)
{
    static char broker_path[1024];
    snprintf(broker_path, sizeof broker_path, "%s/broker/sharehub-broker", SHUB_BUILD_DIR);
    O.broker = broker_path;
    parse(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
    shub_buf_t share = {0};
    if (bench_share_encode(&share) != 0) {
        fprintf(stderr, "bench: cannot build the SHARE\n");
        return 1;
    }
    share_bytes = share.len;
    shub_buf_free(&share);
    if (access(O.broker, X_OK) != 0) {
        fprintf(stderr, "bench: no broker at %s (build it first)\n", O.broker);
        return 1;
    }
    printf("sharehub broker: %d cores, synchronous=%s, SHARE %zu bytes (1 recipient), "
           "batch_max %u, window %d per sender, CURVE on, policy + minimisation on, "
           "audit on; medians of %d runs [lowest..highest]\n",
           cores, sync_name(), share_bytes, O.batch_max, WINDOW, O.runs);
    bench_summary("machine.cores", cores, 0);
    bench_summary("broker.synchronous_full", !O.sync_normal, 0);
    bench_summary("share.bytes", (double)share_bytes, 0);
    bench_summary("bench.events", (double)O.events, 0);
    bench_summary("bench.runs", O.runs, 0);
    fflush(stdout);

    static tstats_t T[N_CASES];
    if (!O.skip_throughput || !O.skip_forwarder) {
        printf("throughput (%ld events a run; an event is done when its RECEIPT and every "
               "ACK update are back)\n", O.events);
        fflush(stdout);
        run_cases(T);
        print_throughput(T);
        fflush(stdout);
    }
    double max_rate = case_rate(T, "broker.1r");
    if (!O.skip_latency) {
        printf("latency (open loop from the scheduled send time; 1 sender, 1 recipient)\n");
        fflush(stdout);
        static lstats_t S[9];
        static char names[9][48];
        int n = 0;
        for (int i = 0; i < O.n_rates; i++, n++) {
            snprintf(names[n], sizeof names[n], "latency.at_%ld", O.rates[i]);
            S[n] = (lstats_t){.name = names[n], .offered = (double)O.rates[i],
                              .judged = O.rates[i] == 10000};
        }
        if (max_rate > 0)
            S[n++] = (lstats_t){.name = "latency.at_half_max", .offered = (double)(long)(max_rate / 2),
                                .judged = true};
        for (int i = 0; i < n; i++) {
            long events = (long)(S[i].offered * O.latency_s);
            S[i].n = events > 0 ? events : 1;
        }
        run_latencies(S, n);
        for (int i = 0; i < n; i++)
            print_latency(&S[i], max_rate);
        if (max_rate <= 0)
            printf("  latency at half the maximum: not measured (no 1-recipient throughput "
                   "run; --only latency with --only throughput measures it)\n");
        fflush(stdout);
    }
    if (!O.skip_closed) {
        printf("closed loop, against its floor on the same disk\n");
        fflush(stdout);
        lstats_t C = {.name = "closed", .n = O.closed_events};
        bench_stat_t fsync_loop = {0}, echo_loop = {0};
        run_closed(&C, &fsync_loop, &echo_loop);
        print_closed(&C, &fsync_loop, &echo_loop);
        fflush(stdout);
    }
    if (!O.skip_backlog) {
        backlog_t B = run_backlog(O.backlog);
        print_backlog(&B, max_rate);
    }
    return 0;
}
