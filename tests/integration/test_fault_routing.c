/*
 * Fault test: a routing id freed and claimed again at once never carries an
 * organisation's messages to another. ZeroMQ lets a client choose its
 * routing id, and a closed connection's id is free for the next one to
 * claim; the broker binds sessions to connections, not to ids (SPEC section
 * 11). This test tries, 100 times, to catch it out:
 *
 *   A (marac-coventry) connects with routing id R, says HELLO, shares two
 *   notifications (receipts and updates are owed to it), and closes while
 *   wmp's referrals to it flow without pause (deliveries are owed to it,
 *   and checkpoints are signed every few rows); at once B (bcc, another
 *   organisation) connects with the same id R.
 *
 * B must receive nothing at all before it says HELLO (no DELIVER, UPDATE,
 * RECEIPT or CHECKPOINT of A's session, not even a HEARTBEAT), and after its
 * own HELLO nothing addressed to another organisation (bcc is sent nothing
 * in this test, so any DELIVER, UPDATE or RECEIPT is A's).
 *
 * Prints `routing: attempts=100 misdelivered=0 ...`.
 */
#include "fault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};

#define RID "claimed-routing-id"

/* wmp refers to the MARAC without pause, and idva-coventry acknowledges what
 * A notifies it of (so UPDATEs are owed to A's session). */
typedef struct flow {
    const harness_t *h;
    atomic_bool stop;
    atomic_long shares;
} flow_t;

static void *flow_run(void *arg)
{
    flow_t *f = arg;
    tclient_t *wmp = tclient_new(f->h, "wmp"), *idva = tclient_new(f->h, "idva-coventry");
    if (!wmp || !idva || tclient_hello(wmp) != 0 || tclient_hello(idva) != 0) {
        fprintf(stderr, "routing: the flow's clients did not start\n");
        exit(1);
    }
    static const char *const to[] = {"marac@coventry"};
    while (!atomic_load(&f->stop)) {
        shub_arena_t *a = shub_arena_new(0);
        shub_msg_t m = {.type = SHUB_MSG_SHARE};
        share_fill(&m.share, a, "marac.referral", "coventry", to, 1, 16);
        if (tclient_send(wmp, &m) == 0)
            atomic_fetch_add(&f->shares, 1);
        shub_arena_destroy(&a);
        for (shub_msg_t *in; (in = tclient_any(wmp, 0));)
            shub_msg_destroy(&in);
        const shub_deliver_t *d;
        while ((d = tclient_delivery(idva, 5))) /* about 200 referrals a second */
            tclient_ack(idva, &d->id);
    }
    tclient_destroy(&wmp);
    tclient_destroy(&idva);
    return NULL;
}

/* A client of org whose connection carries routing id RID. */
static tclient_t *with_rid(const harness_t *h, const char *org)
{
    tclient_t *c = tclient_new(h, org);
    assert_non_null(c);
    assert_int_equal(zmq_setsockopt(c->sock, ZMQ_ROUTING_ID, RID, strlen(RID)), 0);
    zmq_disconnect(c->sock, h->endpoint);
    assert_int_equal(zmq_connect(c->sock, h->endpoint), 0);
    return c;
}

typedef struct tally {
    long before_hello[SHUB_MSG_WITNESS + 1]; /* by type: everything B got unasked */
    long misdelivered, b_welcomed, a_welcomed;
} tally_t;

/* Whatever comes to B for ms; before_hello counts all of it, after HELLO
 * only what is another organisation's. */
static void watch(tclient_t *b, int ms, bool welcomed, tally_t *t)
{
    int64_t until = fault_now_ms() + ms;
    for (shub_msg_t *m; (m = tclient_any(b, (int)(until - fault_now_ms())));
         shub_msg_destroy(&m)) {
        bool foreign = m->type == SHUB_MSG_DELIVER || m->type == SHUB_MSG_UPDATE ||
                       m->type == SHUB_MSG_RECEIPT;
        if (!welcomed) {
            t->before_hello[m->type]++;
            t->misdelivered++;
        } else if (foreign) {
            t->misdelivered++;
        }
        if (!welcomed || foreign)
            fprintf(stderr, "routing: B (bcc) received %s %s its HELLO\n",
                    shub_msg_type_name(m->type), welcomed ? "after" : "before");
    }
}

/* HELLO until WELCOME. A claim of the id can reach the ROUTER while the
 * connection that had it is still attached: libzmq then keeps the new
 * connection unidentified and its messages never reach the broker at all
 * (no misdelivery, and no session either), as an agent's would until it
 * reconnects; so after two silent HELLOs this client connects again, as the
 * agent does. */
static bool hello(const harness_t *h, tclient_t *c)
{
    shub_msg_t hello = {.type = SHUB_MSG_HELLO};
    hello.hello.agent = "routing-test";
    for (int i = 0; i < 20; i++) {
        if (i % 2 == 0 && i > 0) {
            zmq_disconnect(c->sock, h->endpoint);
            assert_int_equal(zmq_connect(c->sock, h->endpoint), 0);
        }
        if (tclient_send(c, &hello) != 0)
            return false;
        shub_msg_t *w = tclient_expect(c, SHUB_MSG_WELCOME, 500);
        if (w) {
            shub_msg_destroy(&w);
            return true;
        }
    }
    return false;
}

static void notify_idva(tclient_t *a)
{
    static const char *const to[] = {"idva@coventry"};
    for (int i = 0; i < 2; i++) {
        shub_arena_t *ar = shub_arena_new(0);
        shub_msg_t m = {.type = SHUB_MSG_SHARE};
        share_fill(&m.share, ar, "idva.notification", "coventry", to, 1, 16);
        assert_int_equal(tclient_send(a, &m), 0);
        shub_arena_destroy(&ar);
    }
}

static void test_routing_id_claimed_at_once_receives_nothing_of_another_org(void **state)
{
    (void)state;
    harness_t *h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(h);
    /* A checkpoint every 10 rows: CHECKPOINTs to every session, all the time. */
    assert_int_equal(harness_set_limits(h, HARNESS_TIMERS
                                        "  checkpoint_every: 10\n  checkpoint_ms: 400\n"),
                     0);
    assert_int_equal(harness_start(h), 0);
    flow_t flow = {.h = h};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, flow_run, &flow), 0);

    int attempts = fault_count(100, 10);
    tally_t t = {0};
    for (int i = 0; i < attempts; i++) {
        tclient_t *a = with_rid(h, "marac-coventry");
        if (hello(h, a))
            t.a_welcomed++;
        else
            fprintf(stderr, "routing: attempt %d: A was not welcomed (%s)\n", i, h->log);
        notify_idva(a);
        /* A takes a little of what flows to it, never all: some is still owed. */
        for (shub_msg_t *m; (m = tclient_any(a, (int)fault_random(20)));)
            shub_msg_destroy(&m);
        tclient_destroy(&a);
        tclient_t *b = with_rid(h, "bcc");
        watch(b, 200, false, &t);
        if (hello(h, b)) {
            t.b_welcomed++;
            watch(b, 100, true, &t);
        }
        tclient_destroy(&b);
    }
    atomic_store(&flow.stop, true);
    pthread_join(thread, NULL);
    long dropped = harness_file_lines(h->log, "now used by a new connection");
    printf("routing: attempts=%d misdelivered=%ld a_welcomed=%ld b_welcomed=%ld "
           "shares_flowing=%ld before_hello: deliver=%ld update=%ld receipt=%ld "
           "checkpoint=%ld heartbeat=%ld claims_seen_by_broker=%ld\n",
           attempts, t.misdelivered, t.a_welcomed, t.b_welcomed,
           (long)atomic_load(&flow.shares), t.before_hello[SHUB_MSG_DELIVER],
           t.before_hello[SHUB_MSG_UPDATE], t.before_hello[SHUB_MSG_RECEIPT],
           t.before_hello[SHUB_MSG_CHECKPOINT], t.before_hello[SHUB_MSG_HEARTBEAT],
           dropped);
    fflush(stdout);
    assert_int_equal(t.misdelivered, 0);
    assert_int_equal(t.a_welcomed, attempts);
    assert_int_equal(t.b_welcomed, attempts);
    fault_destroy(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_routing_id_claimed_at_once_receives_nothing_of_another_org,
            fault_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
