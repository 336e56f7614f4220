/*
 * Fault test: a full disk. The broker's database lives on a small tmpfs the
 * test mounts in a mount namespace of its own (unshare: as root, or as a
 * user through a user namespace; where the kernel allows neither the test
 * is skipped, exit 77, saying why). wmp's and marac-coventry's agents run
 * on the ordinary disk.
 *
 * Twice, the second time with the broker killed (SIGKILL) on the full disk
 * and started again on it:
 *
 *   1. wmp shares while the MARAC's agent is stopped: a backlog of copies.
 *   2. A file fills the tmpfs until not one more byte fits, and wmp shares
 *      until the broker's commits fail: it must answer `unavailable` (wmp
 *      keeps those pending), keep running, and say so in one error line,
 *      not one per turn or per retry.
 *   3. The MARAC's agent comes back: the stored backlog (one window of
 *      deliveries) must be delivered all the same, since sending needs no
 *      space; its acknowledgements are stored as far as space allows (here
 *      none: the disk stays full).
 *   4. The file is removed: without a restart, within 10 s, every share is
 *      receipted, every copy delivered and acknowledged.
 *
 * Prints `diskfull: ... error_lines=1 drained_ms=N` for each round.
 */
#define _GNU_SOURCE /* unshare, CLONE_* */
#include "fault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_BYTES (16 << 20) /* the tmpfs: room for the test's traffic, then filled */
#define DRAIN_MS   10000      /* the backlog drains this soon after space returns */
#define EXIT_SKIP  77

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

/* ---- a small disk of our own ----------------------------------------------------- */

static int write_file(const char *path, const char *text)
{
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return -1;
    ssize_t n = write(fd, text, strlen(text));
    close(fd);
    return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* A mount namespace of our own, so a tmpfs can be mounted without touching
 * the machine's mounts: directly as root, else as root of a new user
 * namespace mapped to our user. Before any thread starts. Returns NULL, or
 * why it cannot be done. */
static const char *own_mount_namespace(void)
{
    static char why[256];
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (unshare(CLONE_NEWNS) != 0) {
        int first = errno;
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0) {
            snprintf(
                why, sizeof why,
                "cannot make a mount namespace: unshare(CLONE_NEWNS): %s; with a user "
                "namespace: %s",
                strerror(first), strerror(errno));
            return why;
        }
        char map[64];
        snprintf(map, sizeof map, "0 %u 1", (unsigned)uid);
        if (write_file("/proc/self/uid_map", map) != 0 ||
            write_file("/proc/self/setgroups", "deny") != 0 ||
            (snprintf(map, sizeof map, "0 %u 1", (unsigned)gid),
             write_file("/proc/self/gid_map", map) != 0)) {
            snprintf(why, sizeof why, "cannot map our user into the user namespace: %s",
                     strerror(errno));
            return why;
        }
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0) {
        snprintf(why, sizeof why, "cannot make our mounts private: %s", strerror(errno));
        return why;
    }
    return NULL;
}

static const char *mount_disk(const char *dir)
{
    static char why[700];
    char opts[64];
    snprintf(opts, sizeof opts, "size=%d,mode=0700", DISK_BYTES);
    if (mkdir(dir, 0700) != 0 || mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        snprintf(why, sizeof why, "cannot mount a tmpfs of %d bytes on %s: %s",
                 DISK_BYTES, dir, strerror(errno));
        return why;
    }
    return NULL;
}

/* Fills the disk: writes until not one more byte fits. */
static void fill(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
    assert_true(fd >= 0);
    static char chunk[1 << 16];
    memset(chunk, 'f', sizeof chunk);
    for (size_t size = sizeof chunk; size > 0; size /= 2)
        while (write(fd, chunk, size) == (ssize_t)size)
            ;
    assert_int_equal(errno, ENOSPC);
    close(fd);
}

/* ---- the rounds ---------------------------------------------------------------------
 */

typedef struct disk {
    harness_t *h;
    char disk[400], filler[420], wmp_db[400], marac_db[400];
    pid_t wmp, marac;
    fault_outbox_t *out;
    int shared;
} disk_t;

static void share(disk_t *d, int n)
{
    char json[2048];
    for (int i = 0; i < n; i++, d->shared++) {
        fault_referral(json, sizeof json, d->shared, 16, false);
        assert_int_equal(fault_submit(d->out, json, NULL), 0);
    }
}

static long wait_count(const char *path, const char *sql, long want, int ms)
{
    return harness_file_wait_count(path, sql, want, ms);
}

/* Error lines of the broker's log. */
static int error_lines(const harness_t *h)
{
    return harness_file_lines(h->log, " error: ");
}

static void round_on_full_disk(disk_t *d, bool restart_on_full_disk)
{
    const char *name = restart_on_full_disk ? "killed and restarted" : "running";
    /* 1: a backlog for the MARAC, stored while there is room. */
    d->marac = 0;
    long inbox_before = harness_file_count(d->marac_db, "inbox");
    if (inbox_before < 0)
        inbox_before = 0;              /* no store yet */
    int backlog = fault_count(60, 10); /* within one window of deliveries */
    long before = d->shared;
    share(d, backlog);
    assert_int_equal(
        wait_count(d->wmp_db, "outbox WHERE state = 'pending'", 0, FAULT_WAIT_MS), 0);
    /* 2: full, and shares until the broker's commits fail (what SQLite's
     * journal already holds is reused first). */
    int errors_before = error_lines(d->h);
    int outages = harness_file_lines(d->h->log, "store unavailable");
    fill(d->filler);
    int64_t t0 = fault_now_ms();
    while (harness_file_lines(d->h->log, "store unavailable") == outages) {
        assert_true(fault_now_ms() - t0 < FAULT_WAIT_MS);
        share(d, 10);
        fault_nap_ms(100);
    }
    int errors_first = 0, errors_restarted = 0;
    if (restart_on_full_disk) {
        fault_nap_ms(1000); /* the first broker's retries meanwhile */
        errors_first = error_lines(d->h) - errors_before;
        assert_int_equal(harness_stop(d->h, SIGKILL), 128 + SIGKILL);
        errors_before = error_lines(d->h);
        int rc = harness_start(d->h);
        if (rc != 0)
            fail_msg("the broker does not start again on a full disk; its log is %s",
                     d->h->log);
    }
    pid_t broker = d->h->broker;
    /* 3: the stored backlog goes out, as much as one window of deliveries
     * (the acknowledgements that would open the window cannot be stored);
     * wmp's refused shares wait meanwhile, for 3 s. */
    long pending = harness_file_count(d->wmp_db, "outbox WHERE state = 'pending'");
    long stored = d->shared - before - pending, window = 64;
    long expect = stored < window ? stored : window;
    d->marac = fault_agent(d->h, "marac-coventry", NULL, NULL);
    long delivered =
        wait_count(d->marac_db, "inbox", inbox_before + expect, FAULT_WAIT_MS) -
        inbox_before;
    fault_nap_ms(3000); /* agents retry meanwhile: the log must not grow per retry */
    long still_pending = harness_file_count(d->wmp_db, "outbox WHERE state = 'pending'");
    int errors_full = error_lines(d->h) - errors_before;
    if (restart_on_full_disk) {
        errors_restarted = errors_full;
        errors_full = errors_first;
    }
    bool alive = kill(d->h->broker, 0) == 0 && d->h->broker == broker;
    /* 4: room again. */
    assert_int_equal(unlink(d->filler), 0);
    int64_t freed = fault_now_ms();
    long left = wait_count(d->wmp_db, "outbox WHERE state = 'pending'", 0, DRAIN_MS);
    char broker_db[400];
    fault_path(d->h, "broker.db", broker_db, sizeof broker_db);
    long unacked = left == 0 ? wait_count(broker_db, "sealed", 0,
                                          (int)(DRAIN_MS - (fault_now_ms() - freed)))
                             : -1;
    int64_t drained = fault_now_ms() - freed;
    long inbox = harness_file_count(d->marac_db, "inbox") - inbox_before;
    bool same_broker = d->h->broker == broker && kill(broker, 0) == 0;
    printf("diskfull: %s: stored=%ld delivered_while_full=%ld (window %ld) "
           "refused_while_full=%ld error_lines=%d%s broker_alive=%d drained_ms=%lld "
           "left_pending=%ld unacked=%ld inbox=%ld of %ld same_broker=%d\n",
           name, stored, delivered, window, still_pending, errors_full,
           restart_on_full_disk
               ? (errors_restarted == 1 ? " (restarted: 1)" : " (restarted: NOT 1)")
               : "",
           alive, (long long)drained, left, unacked, inbox, (long)(d->shared - before),
           same_broker);
    fflush(stdout);
    assert_true(stored >= backlog);
    assert_int_equal(delivered, expect);
    assert_true(still_pending > 0);
    assert_int_equal(errors_full, 1);
    if (restart_on_full_disk)
        assert_int_equal(errors_restarted, 1);
    assert_true(alive);
    assert_int_equal(left, 0);
    assert_int_equal(unacked, 0);
    assert_true(drained <= DRAIN_MS);
    assert_int_equal(inbox, d->shared - before);
    assert_true(same_broker);
    fault_stop(d->marac, SIGTERM);
}

static void test_full_disk_refuses_shares_delivers_backlog_drains_on_space(void **state)
{
    (void)state;
    disk_t d = {0};
    d.h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(d.h);
    fault_path(d.h, "disk", d.disk, sizeof d.disk);
    const char *why = mount_disk(d.disk);
    if (why) {
        printf("diskfull: SKIP: %s\n", why);
        fault_destroy(&d.h);
        exit(EXIT_SKIP);
    }
    /* The database on the small disk, everything else beside it. */
    char target[420], link[400];
    snprintf(target, sizeof target, "%s/broker.db", d.disk);
    fault_path(d.h, "broker.db", link, sizeof link);
    assert_int_equal(symlink(target, link), 0);
    snprintf(d.filler, sizeof d.filler, "%s/filler", d.disk);
    fault_path(d.h, "wmp.db", d.wmp_db, sizeof d.wmp_db);
    fault_path(d.h, "marac-coventry.db", d.marac_db, sizeof d.marac_db);
    assert_int_equal(harness_start(d.h), 0);
    d.wmp = fault_agent(d.h, "wmp", NULL, NULL);
    d.out = fault_outbox_open(d.h, "wmp");

    round_on_full_disk(&d, false);
    round_on_full_disk(&d, true);

    fault_outbox_close(&d.out);
    fault_stop(d.wmp, SIGTERM);
    assert_int_equal(harness_stop(d.h, SIGTERM), 0);
    umount2(d.disk, MNT_DETACH);
    fault_destroy(&d.h);
}

int main(void)
{
    const char *why = own_mount_namespace();
    if (why) {
        printf("diskfull: SKIP: %s\n", why);
        return EXIT_SKIP;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_full_disk_refuses_shares_delivers_backlog_drains_on_space,
            fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
