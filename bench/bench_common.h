/*
 * bench_common: what the process benchmarks stand on. A benchmark writes a
 * throw-away configuration directory (hub.yaml, orgs.yaml, one agreement,
 * freshly generated keys), starts a real sharehub-broker from it, and talks
 * to it through small CURVE clients that speak the wire protocol. It also
 * builds the SHARE every benchmark sends (a realistic MARAC referral of about
 * 600 bytes), reads a process's peak RSS, and turns latency samples into
 * percentiles. Benchmark code: a failed set-up prints why and exits.
 */
#ifndef SHAREHUB_BENCH_COMMON_H
#define SHAREHUB_BENCH_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/types.h>

#include "sharehub/keys.h"
#include "sharehub/msg.h"
#include "sharehub/val.h"

#define BENCH_EVENT_TYPE "marac.referral"

typedef struct bench_org {
    char id[SHUB_MSG_MAX_NAME + 1];
    const char *kind; /* "police", "marac" */
} bench_org_t;

typedef struct bench_env {
    char dir[512];       /* hub.yaml, orgs.yaml, agreements/, keys/, broker.db */
    char endpoint[600];  /* ipc://DIR/broker.ipc */
    char log[600];       /* the broker's stderr */
    pid_t broker;        /* 0 when not running */
    bool synchronous_full;
    char database[1200]; /* "" : DIR/broker.db; else the broker's --db (a
                            postgresql:// URI) */
} bench_env_t;

/* Monotonic clock in nanoseconds. */
int64_t bench_now_ns(void);

/* Writes a config directory under `parent` (NULL: $TMPDIR or /tmp) for the
 * given orgs: keys for the broker and each org, hub.yaml (synchronous FULL
 * unless `sync_normal`, batch_max `batch_max`) and one agreement whose flow
 * lets police send BENCH_EVENT_TYPE to any MARAC, minimised. Exits on failure. */
bench_env_t *bench_env_new(const char *parent, const bench_org_t *orgs, size_t n_orgs,
                           unsigned batch_max, bool sync_normal);

/* Starts `broker` (path to sharehub-broker) on the env, logging at `level`,
 * and waits for its ready file. `wrap`, if not NULL, is a command line put
 * before the broker's (split on spaces: "valgrind --tool=callgrind").
 * Exits on failure. */
void bench_env_start(bench_env_t *env, const char *broker, const char *level,
                     const char *wrap);

/* SIGTERM, then waits. */
void bench_env_stop(bench_env_t *env);

/* Stops the broker if running, removes the directory, frees env. */
void bench_env_destroy(bench_env_t **env_p);

/* Peak resident set (VmHWM) of pid in KiB, or -1. */
long bench_peak_rss_kib(pid_t pid);

/* Where a benchmark keeps the options bench_broker and bench_peers spell
 * alike, and the usage it prints for --help. */
typedef struct bench_opts {
    int *runs;        /* --runs N (R): bench_runs_parse, -1 if out of range */
    long *events;     /* --events N (e) */
    const char **dir; /* --dir DIR (d) */
    int *timeout_s;   /* --timeout S (t) */
    void (*usage)(FILE *out);
} bench_opts_t;

/* Takes getopt's c if it is one of those options (--help prints usage on
 * stdout and exits 0). False for any other c. The values are checked by the
 * caller, after parsing, with its own. */
bool bench_opts_take(const bench_opts_t *o, int c, const char *arg);

/* A connected CURVE DEALER for one org of env, in its own ZeroMQ context
 * (call after fork, never share across processes). */
typedef struct bench_client {
    void *ctx, *sock;
    char org[SHUB_MSG_MAX_NAME + 1];
    shub_buf_t buf;
} bench_client_t;

bench_client_t *bench_client_new(const bench_env_t *env, const char *org);
void bench_client_destroy(bench_client_t **c_p);

/* Encodes and sends without blocking for long; 0 or -1. */
int bench_client_send(bench_client_t *c, const shub_msg_t *msg);

/* Next decoded message within timeout_ms (-1: wait), or NULL. Heartbeats are
 * passed through; the caller skips them. */
shub_msg_t *bench_client_recv(bench_client_t *c, int timeout_ms);

/* HELLO with the given DELIVER window, then waits for WELCOME. 0 or -1. */
int bench_client_hello(bench_client_t *c, uint32_t window);

/* A MARAC referral of about 600 bytes encoded: the victim, perpetrator,
 * children, incident, risk and actions, in `arena`, addressed to `to`. The id
 * is a fresh UUIDv7 whose last six bytes carry (tag, seq), so any process can
 * tell which event a DELIVER or RECEIPT is about. */
int bench_share_fill(shub_share_t *s, shub_arena_t *arena, const char *const *to,
                     uint32_t n_to);

/* Gives s a fresh id carrying (tag, seq). */
void bench_share_renumber(shub_share_t *s, uint16_t tag, uint32_t seq);

/* The SHARE every benchmark sends, to one recipient, encoded into out (the
 * caller frees it with shub_buf_free): bench_broker's message size, and the
 * very bytes bench_peers publishes. 0 or -1. */
int bench_share_encode(shub_buf_t *out);

/* The (tag, seq) an id made by bench_share_renumber carries. */
void bench_id_unpack(const shub_id_t *id, uint16_t *tag, uint32_t *seq);

/* Percentiles of n samples (sorted in place): p in [0, 100]. */
int64_t bench_percentile(int64_t *v, size_t n, double p);

#endif
