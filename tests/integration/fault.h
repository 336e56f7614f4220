/*
 * fault: what the fault tests (test_fault_*.c) share on top of harness.h.
 * Each of them starts real brokers and agents, does harm on purpose (kill -9,
 * a full disk, an edited database, a stolen routing id), and prints one line
 * of figures, `NAME: key=value ...`, before asserting that the figures that
 * must be zero are.
 *
 * Counts scale with SHUB_FAULT_SCALE (a number, default 1: the counts the
 * issue asks for), so a slower build (AddressSanitizer) can run fewer; a
 * scaled run prints its scale in its figure line.
 */
#ifndef SHAREHUB_TEST_FAULT_H
#define SHAREHUB_TEST_FAULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define FAULT_WAIT_MS 60000 /* the longest any condition is waited for */

/* Harnesses and agents made through these are remembered, so that
 * fault_teardown (a cmocka teardown) stops and removes them even when an
 * assertion ends a test early. fault_destroy and fault_stop forget them. */
harness_t *fault_harness(const harness_org_t *orgs, size_t n_orgs);
void fault_destroy(harness_t **h_p);
pid_t fault_agent(const harness_t *h, const char *org, const char *const *extra,
                  const char *const *env);
int fault_stop(pid_t pid, int sig);
void fault_forget(pid_t pid); /* it exited and was waited for elsewhere */
int fault_teardown(void **state);

/* SHUB_FAULT_SCALE, from 0.01 to 1 (default 1). */
double fault_scale(void);

/* full * fault_scale(), at least `least`. */
int fault_count(int full, int least);

/* Milliseconds on the monotonic clock, and a pause (only where nothing can
 * be polled: the spacing of deliberate faults). */
int64_t fault_now_ms(void);
void fault_nap_ms(int ms);

/* A number from 0 to n-1 from the test's own generator (seeded by
 * SHUB_FAULT_SEED, default the time: the seed is printed). */
uint32_t fault_random(uint32_t n);
uint64_t fault_seed(void);

/* Runs a program (argv NULL-terminated, argv[0] a path) with stdin from
 * /dev/null; its stdout and stderr go into out (NUL-terminated, cut to
 * size). Returns the exit status, or 128+signal. */
int fault_run(char *out, size_t size, const char *const *argv);

/* Copies a SQLite database (with what its WAL holds) into one file, as a
 * backup would: the attacker's copy of a log. 0 or -1. */
int fault_copy_db(const char *from, const char *to);

/* Runs SQL on a writable database (the attacker's tool). 0, or -1 with the
 * error printed. */
int fault_sql(const char *path, const char *sql);

/* Whether the bytes of a file contain `needle` (a missing file has none). */
bool fault_file_has(const char *path, const void *needle, size_t len);

/* The text of a file (NUL-terminated; the caller frees), or NULL. */
char *fault_read_file(const char *path, size_t *len);

/* PATH of the harness's FILE: DIR/FILE. */
void fault_path(const harness_t *h, const char *file, char *out, size_t size);

/* An organisation's outbox, as `sharehub-agent submit` fills it, opened in
 * this process so a test can queue thousands of events quickly; the store is
 * DIR/ORG.db (created if missing), the running agent sends what is queued. */
typedef struct fault_outbox fault_outbox_t;
fault_outbox_t *fault_outbox_open(const harness_t *h, const char *org);
void fault_outbox_close(fault_outbox_t **o_p);

/* Queues one event given as JSON (sharehub-agent submit's format); *id (may
 * be NULL) gets its id. 0, or -1 with the reason printed. */
int fault_submit(fault_outbox_t *o, const char *json, shub_id_t *id);

/* Events as the partnership's agents submit them, under the broker fixture's
 * test-marac agreement. A referral from police to the MARAC of Coventry, of
 * DASH score `dash` (14 or more is allowed, less is condition-failed), also
 * addressed to bcc (not a party: recipient-not-party) when also_bcc; and a
 * notification from marac-coventry to the IDVA service of Coventry. `n`
 * makes the case and subject references. */
void fault_referral(char *out, size_t size, int n, int dash, bool also_bcc);
void fault_notification(char *out, size_t size, int n);

#endif
