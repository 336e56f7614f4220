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

/* Creates the directory, broker keys, a keypair per org, hub.yaml and
 * orgs.yaml, and copies every *.yaml from agreements_dir. NULL on failure. */
harness_t *harness_new(const harness_org_t *orgs, size_t n_orgs, const char *agreements_dir);

/* Starts the broker and waits (up to 10 s) for it to listen. 0 or -1. */
int harness_start(harness_t *h);

/* Sends sig to the broker and waits for it; returns its exit status
 * (or 128+signal). */
int harness_stop(harness_t *h, int sig);

/* Stops a running broker with SIGTERM, removes the directory, frees h. */
void harness_destroy(harness_t **h_p);

/* True if the broker's log contains `needle`. */
bool harness_log_has(const harness_t *h, const char *needle);

/* Runs `SELECT count(*) FROM ...` on the broker's database: `sql` is the
 * text after FROM, e.g. "audit WHERE decision='deny'". -1 on error. */
long harness_count(const harness_t *h, const char *sql);
/* harness_count until it is `want` or timeout_ms passed; the last count. For
 * what the broker commits after it answers (a refusal's audit row follows
 * its ERROR within the turn's commit). */
long harness_count_until(const harness_t *h, const char *sql, long want, int timeout_ms);

/* Runs a query returning one text value into out; 0 or -1. */
int harness_text(const harness_t *h, const char *sql, char *out, size_t size);

/* Opens a SQLite file read-only (NULL if it is not there). A broker store
 * gets TEMP views `audit` and `deliveries` that put its interned names back
 * as text, so tests query it in the audit's own words. */
struct sqlite3;
struct sqlite3 *harness_sqlite_open(const char *path);

/* Starts argv[0] (a path) with argv, its stdout and stderr appended to log.
 * The child's pid. */
pid_t harness_spawn(const char *log, const char *const *argv);

/* Sets (on) or clears SHUB_AGENT_CRASH_AFTER_COMMIT in this process, for
 * the agents it spawns next: an agent that dies between its inbox commit and
 * its ACK. */
void harness_crash_switch(bool on);

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
