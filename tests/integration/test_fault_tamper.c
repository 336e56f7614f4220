/*
 * Fault test: a log a third party can prove. Real brokers and agents build
 * three audit logs the ways logs end in life, the agents witnessing the
 * broker's checkpoints as they go:
 *
 *   clean     traffic, every checkpoint witnessed, SIGTERM (the broker signs
 *             its head at the stop);
 *   killed    the same, then a burst whose rows are still unsigned when the
 *             broker is killed with SIGKILL;
 *   restarted the broker killed before its first timed checkpoint (every row
 *             unsigned), restarted (it signs the tail at once, and the agents
 *             witness that), more traffic, killed again.
 *
 * Then an insider with the database file and this project's code attacks a
 * copy of each log in every way we know: edit a row, a name every row uses,
 * a NULL; delete, insert, reorder rows; cut the log short with and without
 * its checkpoints, also where a restart signed a crash's tail; delete a
 * witnessed checkpoint, or all of them; rewrite and rehash the whole chain
 * with the store's own API (with the checkpoints dropped, or signed again
 * with the insider's key); empty the log. Every attempt must be caught by
 *
 *   sharehub-audit verify --db COPY --key checkpoint.pub --witness AGENT.db
 *
 * with one agent's store as the only witness (the one that saw the newest
 * checkpoint: one suffices), and the untouched logs must verify, also
 * against every agent's store at once and against an exported file. A fork
 * (a second history signed with the broker's key, added to an export) must
 * fail the log too. Attacks touch only rows up to the newest witnessed
 * checkpoint: later rows are what no log can show (SPEC section 11).
 *
 * Prints `tamper: attempts=N detected=N false_alarms=0 ...`.
 */
#include "fault.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sharehub/keys.h"
#include "sharehub/store.h"
#include "sharehub/witness.h"

static const harness_org_t orgs[] = {
    {"wmp", "police", "all"},
    {"marac-coventry", "marac", "coventry"},
    {"idva-coventry", "idva", "coventry"},
    {"bcc", "local-authority", "birmingham-east, birmingham-west"},
};
#define N_AGENTS 3 /* wmp, marac-coventry, idva-coventry run agents */

typedef enum { LOG_CLEAN, LOG_KILLED, LOG_RESTARTED } log_kind_t;
static const char *const kind_names[] = {"clean", "killed", "restarted"};

/* One log, built and left on disk, with what the attacks need to know. */
typedef struct built {
    harness_t *h;
    log_kind_t kind;
    char witness[400]; /* the agent store holding the newest checkpoint */
    int64_t witnessed; /* that checkpoint's last row */
    int64_t first_cp;  /* the first checkpoint's last row */
    int64_t rows;      /* rows in the log */
    int submitted;
} built_t;

typedef struct tally {
    int attempts, detected, false_alarms, checks;
} tally_t;

/* ---- building a log -------------------------------------------------------- */

static void broker_db(const harness_t *h, char *out, size_t size)
{
    fault_path(h, "broker.db", out, size);
}

static int64_t broker_int(const harness_t *h, const char *sql)
{
    char text[64] = "";
    harness_text(h, sql, text, sizeof text);
    return strtoll(text, NULL, 10);
}

/* Queues n events (referrals from wmp, a third of them denied, every fourth
 * also to bcc; and a notification from the MARAC for every other one) and
 * waits until every one is receipted and every allowed copy acknowledged. */
static void traffic(built_t *b, fault_outbox_t *wmp, fault_outbox_t *marac, int n,
                    bool wait_acks)
{
    char json[2048], path[400];
    for (int i = 0; i < n; i++, b->submitted++) {
        fault_referral(json, sizeof json, b->submitted, i % 3 ? 16 : 9, i % 4 == 0);
        assert_int_equal(fault_submit(wmp, json, NULL), 0);
        if (i % 2 == 0) {
            fault_notification(json, sizeof json, b->submitted);
            assert_int_equal(fault_submit(marac, json, NULL), 0);
        }
    }
    const char *senders[] = {"wmp", "marac-coventry"};
    for (int i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s.db", b->h->dir, senders[i]);
        assert_int_equal(harness_file_wait_count(
                             path, "outbox WHERE state != 'receipted'", 0, FAULT_WAIT_MS),
                         0);
    }
    if (wait_acks) {
        broker_db(b->h, path, sizeof path);
        assert_int_equal(harness_file_wait_count(path, "sealed", 0, FAULT_WAIT_MS), 0);
    }
}

/* Waits until every row is signed and some agent holds the checkpoint that
 * signed the last one (the broker signs within its interval of the first
 * unsigned row, and sends the checkpoint to every agent online). */
static void witnessed_to_head(built_t *b)
{
    const char *names[N_AGENTS] = {"wmp", "marac-coventry", "idva-coventry"};
    int64_t t0 = fault_now_ms();
    for (;;) {
        int64_t head = broker_int(b->h, "SELECT coalesce(max(seq), 0) FROM audit");
        int64_t cp =
            broker_int(b->h, "SELECT coalesce(max(upto_seq), 0) FROM checkpoints");
        if (head > 0 && cp == head) {
            for (int i = 0; i < N_AGENTS; i++) {
                char path[400], sql[200];
                snprintf(path, sizeof path, "%s/%s.db", b->h->dir, names[i]);
                snprintf(sql, sizeof sql,
                         "checkpoints WHERE state = 'witnessed' AND seq = %lld",
                         (long long)cp);
                if (harness_file_count(path, sql) > 0)
                    return;
            }
        }
        assert_true(fault_now_ms() - t0 < FAULT_WAIT_MS);
        fault_nap_ms(50);
    }
}

static void start_agents(const harness_t *h, pid_t pids[N_AGENTS])
{
    const char *names[N_AGENTS] = {"wmp", "marac-coventry", "idva-coventry"};
    for (int i = 0; i < N_AGENTS; i++)
        pids[i] = fault_agent(h, names[i], NULL, NULL);
}

/* Which agent store holds the newest witnessed checkpoint, and its row. */
static void pick_witness(built_t *b)
{
    const char *names[N_AGENTS] = {"wmp", "marac-coventry", "idva-coventry"};
    b->witnessed = 0;
    for (int i = 0; i < N_AGENTS; i++) {
        char path[400], text[64] = "";
        snprintf(path, sizeof path, "%s/%s.db", b->h->dir, names[i]);
        harness_file_text(path,
                          "SELECT coalesce(max(seq), 0) FROM checkpoints WHERE state = "
                          "'witnessed'",
                          text, sizeof text);
        int64_t seq = strtoll(text, NULL, 10);
        if (seq > b->witnessed) {
            b->witnessed = seq;
            snprintf(b->witness, sizeof b->witness, "%s", path);
        }
    }
    assert_true(b->witnessed > 0);
}

static void build_log(built_t *b, log_kind_t kind)
{
    memset(b, 0, sizeof *b);
    b->kind = kind;
    b->h = fault_harness(orgs, sizeof orgs / sizeof orgs[0]);
    assert_non_null(b->h);
    /* Checkpoints every 40 rows or second, or (restarted) only every 5 s:
     * the first run must end before its first timed checkpoint. */
    const char *limits = kind == LOG_RESTARTED ? HARNESS_TIMERS
                             "  checkpoint_every: 100000000\n"
                             "  checkpoint_ms: 5000\n"
                                               : HARNESS_TIMERS "  checkpoint_every: 40\n"
                                                                "  checkpoint_ms: 1000\n";
    assert_int_equal(harness_set_limits(b->h, limits), 0);
    assert_int_equal(harness_start(b->h), 0);
    pid_t agents[N_AGENTS];
    start_agents(b->h, agents);
    fault_outbox_t *wmp = fault_outbox_open(b->h, "wmp");
    fault_outbox_t *marac = fault_outbox_open(b->h, "marac-coventry");

    if (kind == LOG_RESTARTED) {
        traffic(b, wmp, marac, 12, false);
        assert_int_equal(harness_count(b->h, "checkpoints"), 0);
        assert_int_equal(harness_stop(b->h, SIGKILL), 128 + SIGKILL);
        assert_int_equal(harness_start(b->h), 0); /* signs the crash's tail */
        assert_true(harness_count(b->h, "checkpoints") >= 1);
    }
    traffic(b, wmp, marac, 60, true);
    witnessed_to_head(b);
    b->first_cp = broker_int(b->h, "SELECT min(upto_seq) FROM checkpoints");
    if (kind == LOG_CLEAN) {
        assert_int_equal(harness_stop(b->h, SIGTERM), 0);
    } else {
        traffic(b, wmp, marac, 6, false); /* rows still unsigned at the kill */
        assert_int_equal(harness_stop(b->h, SIGKILL), 128 + SIGKILL);
    }
    for (int i = 0; i < N_AGENTS; i++)
        fault_stop(agents[i], SIGTERM);
    fault_outbox_close(&wmp);
    fault_outbox_close(&marac);
    pick_witness(b);
    b->rows = broker_int(b->h, "SELECT max(seq) FROM audit");
    assert_true(b->first_cp >= 2 && b->witnessed > b->first_cp);
}

/* ---- verifying ---------------------------------------------------------------- */

/* Runs sharehub-audit verify on db with the broker's key and the witness
 * files given; its exit status (output in out). */
static int verify(const built_t *b, const char *db, const char *const *witnesses,
                  char *out, size_t size)
{
    char key[400];
    fault_path(b->h, "keys/checkpoint.pub", key, sizeof key);
    const char *argv[32] = {
        harness_program("broker/sharehub-audit"), "verify", "--db", db, "--key", key};
    int argc = 6;
    for (size_t i = 0; witnesses && witnesses[i] && argc < 29; i++) {
        argv[argc++] = "--witness";
        argv[argc++] = witnesses[i];
    }
    argv[argc] = NULL;
    return fault_run(out, size, argv);
}

/* An untouched log must verify: a false alarm otherwise. */
static void expect_intact(const built_t *b, tally_t *t, const char *db,
                          const char *const *witnesses, const char *what)
{
    char out[4096];
    int rc = verify(b, db, witnesses, out, sizeof out);
    t->checks++;
    if (rc == 0 && witnesses && witnesses[1]) /* what verify says it checked */
        printf("tamper: %-9s untouched, %s:\n%s", kind_names[b->kind], what, out);
    if (rc != 0) {
        t->false_alarms++;
        fprintf(stderr, "tamper: FALSE ALARM on the %s log (%s): exit %d\n%s",
                kind_names[b->kind], what, rc, out);
    }
}

/* ---- attacks -------------------------------------------------------------------- */

typedef struct attack {
    const char *name;
    const char *sql; /* {k} stands for a row half-way to the witnessed one, {w}
                        the witnessed row, {c} the first checkpoint's row */
    int forge;       /* 0 SQL only; 1 rewrite the chain and drop checkpoints;
                        2 rewrite the chain and sign it with another key */
} attack_t;

static const attack_t attacks[] = {
    {"edit a row's time", "UPDATE audit SET at = at + 1 WHERE seq = {k}", 0},
    {"edit a decision",
     "UPDATE audit SET decision = (SELECT id FROM names WHERE text = CASE (SELECT text "
     "FROM"
     " names WHERE id = audit.decision) WHEN 'allow' THEN 'deny' ELSE 'allow' END)"
     " WHERE seq = {k}",
     0},
    {"edit a name every row uses",
     "UPDATE names SET text = text || '-x' WHERE id = (SELECT action FROM audit WHERE "
     "seq ="
     " {k})",
     0},
    {"null a column",
     "UPDATE audit SET explanation = CASE WHEN explanation IS NULL THEN action ELSE NULL "
     "END"
     " WHERE seq = {k}",
     0},
    {"delete a row", "DELETE FROM audit WHERE seq = {k}", 0},
    {"delete the first row", "DELETE FROM audit WHERE seq = 1", 0},
    {"insert a row",
     "CREATE TEMP TABLE dup AS SELECT * FROM audit WHERE seq = {k};"
     " UPDATE audit SET seq = seq + 100000000 WHERE seq > {k};"
     " UPDATE audit SET seq = seq - 99999999 WHERE seq > 100000000;"
     " UPDATE dup SET seq = {k} + 1; INSERT INTO audit SELECT * FROM dup",
     0},
    {"swap two rows",
     "UPDATE audit SET seq = -1 WHERE seq = {k};"
     " UPDATE audit SET seq = {k} WHERE seq = {k} + 1;"
     " UPDATE audit SET seq = {k} + 1 WHERE seq = -1",
     0},
    {"cut signed rows and the tail", "DELETE FROM audit WHERE seq > {w} - 3", 0},
    {"cut signed rows with their checkpoints",
     "DELETE FROM audit WHERE seq > {w} - 3; DELETE FROM checkpoints WHERE upto_seq >"
     " {w} - 3",
     0},
    {"cut inside the first signed rows with their checkpoints",
     "DELETE FROM audit WHERE seq > {c} - 2; DELETE FROM checkpoints WHERE upto_seq >"
     " {c} - 2",
     0},
    {"delete the witnessed checkpoint", "DELETE FROM checkpoints WHERE upto_seq = {w}",
     0},
    {"delete every checkpoint", "DELETE FROM checkpoints", 0},
    {"rewrite and rehash the chain, drop the checkpoints", NULL, 1},
    {"rewrite and rehash the chain, sign it again", NULL, 2},
    {"empty the log", "DELETE FROM audit; DELETE FROM checkpoints", 0},
};

/* The forger: the log's rows read back through the store and appended to a
 * new chain of its own, with row k's recipient changed; then the copy's
 * audit, names, agreement versions and checkpoints replaced by the forged
 * ones (signed with the forger's key when `resign`). */
typedef struct forge_ctx {
    shub_store_t *dst;
    int64_t k;
    int rc;
} forge_ctx_t;

static int forge_row(const shub_audit_row_t *row, void *ctx)
{
    forge_ctx_t *fc = ctx;
    shub_audit_row_t r = *row;
    shub_err_t err;
    if (r.seq == fc->k)
        r.recipient = "idva-coventry";
    r.subject_hash = r.case_hash = r.actor_hash = NULL;
    fc->rc = shub_store_audit_append(fc->dst, &r, &err);
    if (fc->rc)
        fprintf(stderr, "forge: %s\n", err.msg);
    return fc->rc;
}

static void forge(const built_t *b, const char *copy, int64_t k, bool resign)
{
    char forged[400], sql[1024];
    fault_path(b->h, "forged.db", forged, sizeof forged);
    unlink(forged);
    uint8_t fpk[32], fsk[64], subject[32];
    crypto_sign_keypair(fpk, fsk);
    randombytes_buf(subject, sizeof subject);
    shub_store_opts_t ro = {.readonly = true};
    shub_store_opts_t rw = {.subject_key = subject, .sign_secret = resign ? fsk : NULL};
    shub_store_t *src = NULL, *dst = NULL;
    shub_err_t err;
    assert_int_equal(shub_store_open(copy, &ro, &src, &err), 0);
    assert_int_equal(shub_store_open(forged, &rw, &dst, &err), 0);
    forge_ctx_t fc = {.dst = dst, .k = k};
    assert_int_equal(shub_store_begin(dst, &err), 0);
    assert_int_equal(shub_store_audit_read(src, 0, SIZE_MAX, forge_row, &fc, &err), 0);
    assert_int_equal(fc.rc, 0);
    if (resign) {
        bool made = false;
        assert_int_equal(
            shub_store_checkpoint(dst, shub_now_ms(), true, NULL, &made, &err), 0);
        assert_true(made);
    }
    assert_int_equal(shub_store_commit(dst, &err), 0);
    shub_store_close(&src);
    shub_store_close(&dst);
    snprintf(sql, sizeof sql,
             "ATTACH '%s' AS f; DELETE FROM audit; DELETE FROM names;"
             " DELETE FROM agreement_versions; DELETE FROM checkpoints;"
             " INSERT INTO names SELECT * FROM f.names;"
             " INSERT INTO agreement_versions SELECT * FROM f.agreement_versions;"
             " INSERT INTO audit SELECT * FROM f.audit;"
             " INSERT INTO checkpoints SELECT * FROM f.checkpoints",
             forged);
    assert_int_equal(fault_sql(copy, sql), 0);
}

/* The attack's SQL with {k}, {w} and {c} written out. */
static void expand(const char *in, int64_t k, int64_t w, int64_t c, char *out,
                   size_t size)
{
    size_t n = 0;
    for (const char *p = in; *p && n + 24 < size; p++) {
        const char *tok = p[0] == '{' && p[1] && p[2] == '}' ? strchr("kwc", p[1]) : NULL;
        if (!tok) {
            out[n++] = *p;
            continue;
        }
        int64_t v = *tok == 'k' ? k : *tok == 'w' ? w : c;
        n += (size_t)snprintf(out + n, size - n, "%lld", (long long)v);
        p += 2;
    }
    out[n] = '\0';
}

static void attack(const built_t *b, tally_t *t, const attack_t *a)
{
    char db[400], copy[400], sql[2048], out[4096];
    broker_db(b->h, db, sizeof db);
    fault_path(b->h, "attacked.db", copy, sizeof copy);
    assert_int_equal(fault_copy_db(db, copy), 0);
    int64_t k = b->witnessed / 2 > 1 ? b->witnessed / 2 : 2;
    if (a->forge) {
        forge(b, copy, k, a->forge == 2);
    } else {
        expand(a->sql, k, b->witnessed, b->first_cp, sql, sizeof sql);
        assert_int_equal(fault_sql(copy, sql), 0);
    }
    const char *witness[] = {b->witness, NULL};
    int rc = verify(b, copy, witness, out, sizeof out);
    t->attempts++;
    if (rc == 1 && strstr(out, "FAILED at row")) {
        t->detected++;
        printf("tamper: %-9s %-55s caught: %.*s\n", kind_names[b->kind], a->name,
               (int)strcspn(out, "\n"), out);
    } else {
        fprintf(stderr, "tamper: NOT CAUGHT on the %s log: %s: exit %d\n%s",
                kind_names[b->kind], a->name, rc, out);
    }
}

/* An export with a fork added: a checkpoint of the witnessed rows with
 * another head, signed with the broker's own key (what a broker that shows
 * two histories produces). verify must fail it as forked. */
static void fork_in_export(const built_t *b, tally_t *t, const char *export)
{
    char keyfile[400], forked[400], db[400], out[4096];
    uint8_t sk[64], pk[32];
    shub_err_t err;
    fault_path(b->h, "keys/checkpoint.key", keyfile, sizeof keyfile);
    assert_int_equal(shub_keys_read_hex(keyfile, sk, sizeof sk, true, &err), 0);
    crypto_sign_ed25519_sk_to_pk(pk, sk);
    shub_kept_cp_t k = {.state = SHUB_CP_FORK};
    snprintf(k.org, sizeof k.org, "wmp");
    uint8_t head[32];
    randombytes_buf(head, sizeof head);
    assert_int_equal(
        shub_checkpoint_sign(b->witnessed, head, shub_now_ms(), sk, pk, &k.cp), 0);
    sodium_memzero(sk, sizeof sk);
    char line[SHUB_CP_EXPORT_LINE_MAX];
    size_t len;
    assert_int_equal(shub_cp_export_line(&k, line, &len), 0);
    size_t n = 0;
    char *text = fault_read_file(export, &n);
    assert_non_null(text);
    fault_path(b->h, "forked.checkpoints", forked, sizeof forked);
    FILE *f = fopen(forked, "w");
    assert_non_null(f);
    fwrite(text, 1, n, f);
    fwrite(line, 1, len, f);
    fclose(f);
    free(text);
    broker_db(b->h, db, sizeof db);
    const char *witness[] = {forked, NULL};
    int rc = verify(b, db, witness, out, sizeof out);
    t->attempts++;
    if (rc == 1 && strstr(out, "forked:")) {
        t->detected++;
        printf("tamper: %-9s %-55s caught: %.*s\n", kind_names[b->kind],
               "a second history in a witness's hands", (int)strcspn(out, "\n"), out);
    } else {
        fprintf(stderr, "tamper: FORK NOT CAUGHT on the %s log: exit %d\n%s",
                kind_names[b->kind], rc, out);
    }
}

/* The witness's checkpoints exported with sharehub-agent, as an auditor
 * would receive them; checks the listing agrees. */
static void export_witness(const built_t *b, char *export, size_t size)
{
    char out[65536];
    const char *org = strrchr(b->witness, '/') + 1;
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int)(strlen(org) - 3), org);
    snprintf(export, size, "%s/%s.checkpoints", b->h->dir, name);
    const char *argv[] = {harness_program("agents/sharehub-agent"),
                          "checkpoints",
                          "--org",
                          name,
                          "--db",
                          b->witness,
                          "--export",
                          export,
                          NULL};
    assert_int_equal(fault_run(out, sizeof out, argv), 0);
    assert_non_null(strstr(out, "exported"));
    const char *list[] = {harness_program("agents/sharehub-agent"),
                          "checkpoints",
                          "--org",
                          name,
                          "--db",
                          b->witness,
                          "--format",
                          "json",
                          NULL};
    assert_int_equal(fault_run(out, sizeof out, list), 0);
    char want[64];
    snprintf(want, sizeof want, "\"seq\":%lld,", (long long)b->witnessed);
    assert_non_null(strstr(out, want));
    assert_null(strstr(out, "\"state\":\"fork\""));
}

static void test_tamper_every_attack_is_caught_untouched_logs_verify(void **state)
{
    (void)state;
    tally_t t = {0};
    for (int kind = LOG_CLEAN; kind <= LOG_RESTARTED; kind++) {
        built_t b;
        build_log(&b, (log_kind_t)kind);
        char db[400], copy[400], export[400];
        broker_db(b.h, db, sizeof db);
        fault_path(b.h, "untouched.db", copy, sizeof copy);
        assert_int_equal(fault_copy_db(db, copy), 0);
        export_witness(&b, export, sizeof export);
        char stores[N_AGENTS][400];
        const char *names[N_AGENTS] = {"wmp", "marac-coventry", "idva-coventry"};
        for (int i = 0; i < N_AGENTS; i++)
            snprintf(stores[i], sizeof stores[i], "%s/%s.db", b.h->dir, names[i]);
        const char *one[] = {b.witness, NULL}, *exported[] = {export, NULL};
        const char *all[] = {stores[0], stores[1], stores[2], export, NULL};
        expect_intact(&b, &t, db, one, "in place, the witness's store");
        expect_intact(&b, &t, copy, one, "a copy, the witness's store");
        expect_intact(&b, &t, db, exported, "in place, the exported checkpoints");
        expect_intact(&b, &t, db, all, "in place, every agent's store and the export");
        expect_intact(&b, &t, db, NULL, "in place, no witness");
        for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++)
            attack(&b, &t, &attacks[i]);
        fork_in_export(&b, &t, export);
        printf("tamper: %s log: %lld rows, first checkpoint at row %lld, witnessed up to "
               "row %lld\n",
               kind_names[kind], (long long)b.rows, (long long)b.first_cp,
               (long long)b.witnessed);
        fault_destroy(&b.h);
    }
    printf("tamper: attempts=%d detected=%d undetected=%d false_alarms=%d checks=%d\n",
           t.attempts, t.detected, t.attempts - t.detected, t.false_alarms, t.checks);
    fflush(stdout);
    assert_int_equal(t.attempts - t.detected, 0);
    assert_int_equal(t.false_alarms, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(
            test_tamper_every_attack_is_caught_untouched_logs_verify, fault_teardown),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
