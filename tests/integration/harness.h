/*
 * harness: what the process tests stand on. It writes a config directory
 * with freshly generated keys (none are ever committed), starts a real
 * sharehub-broker on an ipc:// endpoint in that directory, waits for its
 * ready file rather than sleeping, and gives tests CURVE clients that speak
 * the wire protocol, plus read access to the broker's SQLite audit log.
 */
#ifndef SHAREHUB_TEST_HARNESS_H
#define SHAREHUB_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "sharehub/keys.h"
#include "sharehub/msg.h"

typedef struct harness_org {
    const char *id, *kind, *areas; /* areas: YAML flow list body, e.g. "coventry" or "all" */
} harness_org_t;

typedef struct harness {
    char dir[256];      /* temp dir: hub.yaml, orgs.yaml, agreements/, keys/, broker.db */
    char endpoint[300]; /* ipc://DIR/broker.ipc */
    char log[300];      /* the broker's stderr */
    pid_t broker;       /* 0 when not running */
} harness_t;

/* hub.yaml's limits in every harness: short timers so fault tests finish
 * quickly (HARNESS_TIMERS), and a checkpoint every 50 rows or 400 ms. */
#define HARNESS_TIMERS                                                                   \
    "  heartbeat_ms: 300\n"                                                              \
    "  peer_timeout_ms: 3000\n"                                                          \
    "  redeliver_ms: 1000\n"                                                             \
    "  max_attempts: 5\n"                                                                \
    "  window: 256\n"
#define HARNESS_LIMITS HARNESS_TIMERS "  checkpoint_every: 50\n  checkpoint_ms: 400\n"

/* Creates the directory, broker keys, a keypair per org, hub.yaml and
 * orgs.yaml, and copies every *.yaml from agreements_dir. NULL on failure. */
harness_t *harness_new(const harness_org_t *orgs, size_t n_orgs, const char *agreements_dir);

/* Writes hub.yaml again with `limits` (YAML lines indented two spaces, each
 * key once) under `limits:`, e.g. HARNESS_LIMITS "  max_message_bytes:
 * 65536\n". Takes effect at the broker's next start. 0 or -1. */
int harness_set_limits(const harness_t *h, const char *limits);

/* Starts the broker and waits (up to 10 s) for it to listen. 0 or -1. */
int harness_start(harness_t *h);

/* Sends sig to the broker and waits for it; returns its exit status
 * (or 128+signal). */
int harness_stop(harness_t *h, int sig);

/* Stops a running broker with SIGTERM, removes the directory, frees h. */
void harness_destroy(harness_t **h_p);

/* True if the broker's log contains `needle`; the number of lines of a file
 * (a log) that contain it. */
bool harness_log_has(const harness_t *h, const char *needle);
int harness_file_lines(const char *path, const char *needle);

/* Runs `SELECT count(*) FROM ...` on the broker's database: `sql` is the
 * text after FROM, e.g. "audit WHERE decision='deny'". -1 on error. */
long harness_count(const harness_t *h, const char *sql);
/* harness_count until it is `want` or timeout_ms passed; the last count. For
 * what the broker commits after it answers (a refusal's audit row follows
 * its ERROR within the turn's commit). */
long harness_count_until(const harness_t *h, const char *sql, long want, int timeout_ms);

/* Runs a query returning one text value into out; 0 or -1. */
int harness_text(const harness_t *h, const char *sql, char *out, size_t size);

/* The same on any SQLite file (an agent's store), and a wait of up to ms for
 * the count to be `want` (it returns the last count seen). */
long harness_file_count(const char *path, const char *sql);
long harness_file_long(const char *path, const char *sql); /* a whole SELECT's value */
int harness_file_text(const char *path, const char *sql, char *out, size_t size);
long harness_file_wait_count(const char *path, const char *sql, long want, int ms);

/* Starts `sharehub-agent run` for org with the harness's config and endpoint,
 * its store DIR/ORG.db and its output in DIR/ORG.log (harness_spawn);
 * `extra` adds options (a --broker among them replaces the harness's; given
 * twice, the agent has two brokers to try), `env` adds NAME=VALUE entries to
 * its environment (both NULL-terminated, may be NULL). Returns its pid. */
pid_t harness_agent_start(const harness_t *h, const char *org, const char *const *extra,
                          const char *const *env);

/* Sends sig to a process started here and waits for it: its exit status, or
 * 128+signal. */
int harness_proc_stop(pid_t pid, int sig);

/* Waits up to ms for a process to exit by itself: its status, or -1. */
int harness_proc_wait(pid_t pid, int ms);

/* Opens a SQLite file read-only (NULL if it is not there). A broker store
 * gets TEMP views `audit` and `deliveries` that put its interned names back
 * as text, so tests query it in the audit's own words. */
struct sqlite3;
struct sqlite3 *harness_sqlite_open(const char *path);

/* Starts argv[0] (a path) with argv, its stdout and stderr appended to log;
 * `env` (NULL-terminated, may be NULL) adds NAME=VALUE entries to its
 * environment, which never inherits SHUB_AGENT_CRASH_AFTER_COMMIT (an agent
 * that dies between its inbox commit and its ACK) unless env sets it. The
 * child's pid; a failed fork ends the test. */
pid_t harness_spawn(const char *log, const char *const *argv, const char *const *env);

/* Path to a built program (SHUB_BUILD_DIR/...). */
const char *harness_program(const char *relative);

#define TCLIENT_STASH 256 /* messages kept while a test waits for another kind */

typedef struct tbatch {
    shub_msg_t *msg; /* a RECEIPT, DELIVER or UPDATE being read item by item */
    uint32_t next;
} tbatch_t;

typedef struct tclient {
    void *ctx, *sock;
    char org[SHUB_MSG_MAX_NAME + 1];
    shub_curve_keys_t keys;
    shub_buf_t buf;
    shub_msg_t *stash[TCLIENT_STASH]; /* received, not yet asked for */
    size_t n_stash;
    tbatch_t batch[3]; /* receipts, deliveries, updates */
} tclient_t;

/* A client holding org's keys from the harness directory (not yet HELLO). */
tclient_t *tclient_new(const harness_t *h, const char *org);

/* A client holding the given keys (for unknown- and wrong-key tests). */
tclient_t *tclient_new_keys(const harness_t *h, const shub_curve_keys_t *keys);

void tclient_destroy(tclient_t **c_p);

int tclient_send(tclient_t *c, const shub_msg_t *msg);
int tclient_send_raw(tclient_t *c, const void *data, size_t len);

/* Next message other than HEARTBEAT and CHECKPOINT within timeout_ms (kept
 * ones first); NULL on timeout. */
shub_msg_t *tclient_recv(tclient_t *c, int timeout_ms);

/* The next message straight from the socket within timeout_ms, whatever its
 * type (HEARTBEATs and CHECKPOINTs included, kept ones ignored): what a test
 * uses to see everything a connection receives. NULL on timeout. */
shub_msg_t *tclient_any(tclient_t *c, int timeout_ms);

/* Next message of `type` within timeout_ms; others that arrive meanwhile are
 * kept for later calls. NULL if none. */
shub_msg_t *tclient_expect(tclient_t *c, shub_msg_type_t type, int timeout_ms);

/* The next single receipt, delivery or update within timeout_ms, whatever
 * batch it came in; borrowed until the next call of the same kind. NULL if
 * none came. */
const shub_receipt_t *tclient_receipt(tclient_t *c, int timeout_ms);
const shub_deliver_t *tclient_delivery(tclient_t *c, int timeout_ms);
const shub_update_t *tclient_update(tclient_t *c, int timeout_ms);

/* ACK of one delivery. 0 or -1. */
int tclient_ack(tclient_t *c, const shub_id_t *id);

/* HELLO, then waits for WELCOME. 0 or -1. */
int tclient_hello(tclient_t *c);

/* A client of org that has said HELLO and been welcomed; NULL if not. */
tclient_t *tclient_online(const harness_t *h, const char *org);

/* Opens a DELIVER's sealed event with the client's secret key into `ev`
 * (memory in arena). 0, or -1 if it does not open or decode. */
int tclient_open(const tclient_t *c, const shub_deliver_t *d, shub_arena_t *arena,
                 shub_event_t *ev);

/* A realistic SHARE of `type` with a payload built in `arena`:
 * victim{name,dob,address{postcode}}, risk{dash_score}, incident{summary},
 * children[{name}], actions[{owner,due}], referral{route}. */
void share_fill(shub_share_t *s, shub_arena_t *arena, const char *type, const char *area,
                const char *const *to, uint32_t n_to, int dash_score);

#endif
