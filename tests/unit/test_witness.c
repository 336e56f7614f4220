/*
 * test_witness: checkpoints the broker signs and the countersignatures agents
 * return, as both sides use them.
 *
 * Known answers first: fixed keys, a fixed head, and the exact bytes and
 * signatures Ed25519 (RFC 8032) and BLAKE2b give for them, computed apart
 * from this code. The checkpoint bytes are the layout the broker's store has
 * always signed. Then every field of a signed head is tampered with in turn,
 * a witness is checked under the wrong organisation, and the witness key is
 * shown to follow from the CURVE key alone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"
#include "sharehub/witness.h"

/* ---- fixed inputs and their known answers ------------------------------ */

#define KAT_SEQ 1207
#define KAT_AT  1717406104871LL /* 2024-06-03T09:15:04.871Z */
#define KAT_ORG "marac-coventry"

static void bytes_from(uint8_t *out, size_t n, uint8_t first)
{
    for (size_t i = 0; i < n; i++)
        out[i] = (uint8_t)(first + i);
}

/* The broker's checkpoint key: the Ed25519 pair of seed 00 01 .. 1f. */
static void broker_keys(uint8_t pk[32], uint8_t sk[64])
{
    uint8_t seed[32];
    bytes_from(seed, sizeof seed, 0x00);
    assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
}

/* An organisation's CURVE secret key: 40 41 .. 5f. */
static void curve_secret(uint8_t out[32])
{
    bytes_from(out, 32, 0x40);
}

static void kat_head(uint8_t head[32])
{
    bytes_from(head, 32, 0xa0);
}

static void unhex(const char *hex, uint8_t *out, size_t n)
{
    assert_int_equal(strlen(hex), 2 * n);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
}

static const char kat_checkpoint_msg[] =
    "73686172656875622d636865636b706f696e742d7631" /* "sharehub-checkpoint-v1" */
    "00000000000004b7"                             /* seq 1207 */
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "0000018fdd617d27"; /* at */
static const char kat_broker_pk[] =
    "03a107bff3ce10be1d70dd18e74bc09967e4d6309ba50d5f1ddc8664125531b8";
static const char kat_checkpoint_sig[] =
    "1f1de497841af99d1295c82780f0fb21dfdee7f603915ea21b976093cb8c8b6e"
    "8b9b0ea4abccf9fa6b66935d227911cbe65d7a8dc071a79dea1a627594feb40a";
static const char kat_witness_msg[] =
    "73686172656875622d7769746e6573732d7631" /* "sharehub-witness-v1" */
    "0e"                                     /* 14 */
    "6d617261632d636f76656e747279"           /* "marac-coventry" */
    "00000000000004b7"
    "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
    "0000018fdd617d27";
static const char kat_witness_pk[] =
    "1356f5536a368395972dcfc9b66bc0f1f68a5d12e1bb49cca714775a77712a80";
static const char kat_witness_sig[] =
    "336a0f169c9e95345c362365b459372fdad132bd16643ab8f197b3d22c2e43db"
    "02273807b7cf5c81c7449c13575db4a9631ea159158c75ed0ea8987f61fc3306";

/* The known checkpoint, signed here. */
static shub_signed_head_t signed_checkpoint(void)
{
    uint8_t pk[32], sk[64], head[32];
    broker_keys(pk, sk);
    kat_head(head);
    shub_signed_head_t cp;
    assert_int_equal(shub_checkpoint_sign(KAT_SEQ, head, KAT_AT, sk, pk, &cp), 0);
    return cp;
}

/* The known countersignature of it, by marac-coventry. */
static shub_signed_head_t signed_witness(void)
{
    uint8_t curve[32], pk[32], sk[64];
    curve_secret(curve);
    assert_int_equal(shub_witness_keypair(curve, pk, sk), 0);
    shub_signed_head_t cp = signed_checkpoint(), w;
    assert_int_equal(shub_witness_sign(KAT_ORG, &cp, sk, pk, &w), 0);
    return w;
}

/* ---- known answers ----------------------------------------------------- */

static void test_shub_checkpoint_message_known_bytes(void **state)
{
    (void)state;
    uint8_t head[32], msg[SHUB_CHECKPOINT_MSG_SIZE], want[SHUB_CHECKPOINT_MSG_SIZE];
    assert_int_equal(SHUB_CHECKPOINT_MSG_SIZE, 22 + 8 + 32 + 8);
    kat_head(head);
    unhex(kat_checkpoint_msg, want, sizeof want);
    memset(msg, 0x5a, sizeof msg);
    shub_checkpoint_message(KAT_SEQ, head, KAT_AT, msg);
    assert_memory_equal(msg, want, sizeof want);

    /* numbers are laid out unsigned, big-endian, all 64 bits */
    shub_checkpoint_message(INT64_MAX, head, 0x0102030405060708LL, msg);
    static const uint8_t seq_max[8] = {0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    static const uint8_t at_bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    assert_memory_equal(msg + 22, seq_max, 8);
    assert_memory_equal(msg + 22 + 8 + 32, at_bytes, 8);
}

/* A signed head over the known inputs, with the known key and signature. */
static void expect_known(const shub_signed_head_t *s, const char *pk_hex,
                         const char *sig_hex)
{
    uint8_t pk[32], sig[64], head[32];
    unhex(pk_hex, pk, sizeof pk);
    unhex(sig_hex, sig, sizeof sig);
    kat_head(head);
    assert_int_equal(s->seq, KAT_SEQ);
    assert_int_equal(s->at_ms, KAT_AT);
    assert_memory_equal(s->head, head, 32);
    assert_memory_equal(s->key, pk, 32);
    assert_memory_equal(s->sig, sig, 64);
}

static void test_shub_checkpoint_sign_known_signature(void **state)
{
    (void)state;
    shub_signed_head_t cp = signed_checkpoint();
    expect_known(&cp, kat_broker_pk, kat_checkpoint_sig);
    assert_int_equal(shub_checkpoint_verify(&cp, cp.key), 0);
    assert_int_equal(shub_checkpoint_verify(&cp, NULL), 0);
}

static void test_shub_witness_message_known_bytes(void **state)
{
    (void)state;
    uint8_t head[32], msg[SHUB_WITNESS_MSG_MAX], want[sizeof kat_witness_msg / 2];
    size_t len = 0;
    kat_head(head);
    unhex(kat_witness_msg, want, sizeof want);
    assert_int_equal(shub_witness_message(KAT_ORG, KAT_SEQ, head, KAT_AT, msg, &len), 0);
    assert_int_equal(len, sizeof want);
    assert_memory_equal(msg, want, sizeof want);

    /* the longest org id fills the buffer exactly */
    char org[SHUB_MSG_MAX_NAME + 1];
    memset(org, 'o', SHUB_MSG_MAX_NAME);
    org[SHUB_MSG_MAX_NAME] = '\0';
    assert_int_equal(shub_witness_message(org, KAT_SEQ, head, KAT_AT, msg, &len), 0);
    assert_int_equal(len, SHUB_WITNESS_MSG_MAX);
    assert_int_equal(msg[19], SHUB_MSG_MAX_NAME);
}

static void test_shub_witness_sign_known_signature(void **state)
{
    (void)state;
    shub_signed_head_t w = signed_witness();
    expect_known(&w, kat_witness_pk,
                 kat_witness_sig); /* the witness key, not the broker's */
    assert_int_equal(shub_witness_verify(KAT_ORG, &w), 0);
}

static void test_shub_witness_keypair_known_key(void **state)
{
    (void)state;
    uint8_t curve[32], pk[32], sk[64], want[32];
    curve_secret(curve);
    unhex(kat_witness_pk, want, sizeof want);
    assert_int_equal(shub_witness_keypair(curve, pk, sk), 0);
    assert_memory_equal(pk, want, 32);
    assert_memory_equal(sk + 32, pk, 32); /* libsodium keeps the public half there */
}

/* ---- derivation -------------------------------------------------------- */

static void test_shub_witness_keypair_deterministic_and_distinct(void **state)
{
    (void)state;
    uint8_t curve[32], pk1[32], sk1[64], pk2[32], sk2[64];
    randombytes_buf(curve, sizeof curve);
    assert_int_equal(shub_witness_keypair(curve, pk1, sk1), 0);
    assert_int_equal(shub_witness_keypair(curve, pk2, sk2), 0);
    assert_memory_equal(pk1, pk2, 32);
    assert_memory_equal(sk1, sk2, 64);

    /* one bit of the CURVE key changes the whole pair */
    curve[31] ^= 0x01;
    assert_int_equal(shub_witness_keypair(curve, pk2, sk2), 0);
    assert_memory_not_equal(pk1, pk2, 32);
    assert_memory_not_equal(sk1, sk2, 32);

    /* the seed is a keyed hash, not the CURVE key itself */
    uint8_t plain_pk[32], plain_sk[64];
    assert_int_equal(crypto_sign_seed_keypair(plain_pk, plain_sk, curve), 0);
    assert_memory_not_equal(plain_pk, pk2, 32);
}

/* ---- tampering --------------------------------------------------------- */

/* Each field of a signed head changed in turn: the signature no longer holds. */
static void tamper_each_field(const shub_signed_head_t *good,
                              int (*verify)(const shub_signed_head_t *))
{
    assert_int_equal(verify(good), 0);
    shub_signed_head_t t;
    t = *good;
    t.seq++;
    assert_int_equal(verify(&t), SHUB_ECRYPTO);
    t = *good;
    t.at_ms++;
    assert_int_equal(verify(&t), SHUB_ECRYPTO);
    for (size_t i = 0; i < sizeof t.head; i += 31) {
        t = *good;
        t.head[i] ^= 0x80;
        assert_int_equal(verify(&t), SHUB_ECRYPTO);
    }
    for (size_t i = 0; i < sizeof t.sig; i += 21) {
        t = *good;
        t.sig[i] ^= 0x01;
        assert_int_equal(verify(&t), SHUB_ECRYPTO);
    }
    t = *good;
    t.key[0] ^= 0x01;
    assert_int_equal(verify(&t), SHUB_ECRYPTO);
    /* values no peer may carry are refused before any signature is checked */
    t = *good;
    t.seq = 0;
    assert_int_equal(verify(&t), SHUB_EINVAL);
    t = *good;
    t.at_ms = -1;
    assert_int_equal(verify(&t), SHUB_EINVAL);
}

static int verify_checkpoint_any_key(const shub_signed_head_t *cp)
{
    return shub_checkpoint_verify(cp, NULL);
}

static int verify_witness_as_kat_org(const shub_signed_head_t *w)
{
    return shub_witness_verify(KAT_ORG, w);
}

static void test_shub_checkpoint_verify_tampered_field_returns_ecrypto(void **state)
{
    (void)state;
    shub_signed_head_t cp = signed_checkpoint();
    tamper_each_field(&cp, verify_checkpoint_any_key);
}

static void test_shub_witness_verify_tampered_field_returns_ecrypto(void **state)
{
    (void)state;
    shub_signed_head_t w = signed_witness();
    tamper_each_field(&w, verify_witness_as_kat_org);
}

static void test_shub_checkpoint_verify_other_key_returns_ecrypto(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], head[32];
    crypto_sign_keypair(pk, sk);
    kat_head(head);
    /* well signed, but not by the broker: the expected key decides */
    shub_signed_head_t cp;
    assert_int_equal(shub_checkpoint_sign(KAT_SEQ, head, KAT_AT, sk, pk, &cp), 0);
    assert_int_equal(shub_checkpoint_verify(&cp, NULL), 0);
    uint8_t broker_pk[32];
    unhex(kat_broker_pk, broker_pk, sizeof broker_pk);
    assert_int_equal(shub_checkpoint_verify(&cp, broker_pk), SHUB_ECRYPTO);
    /* nor does the broker's key make another's signature good */
    memcpy(cp.key, broker_pk, 32);
    assert_int_equal(shub_checkpoint_verify(&cp, broker_pk), SHUB_ECRYPTO);
}

static void test_shub_witness_verify_wrong_org_returns_ecrypto(void **state)
{
    (void)state;
    shub_signed_head_t w = signed_witness();
    assert_int_equal(shub_witness_verify("marac-dudley", &w), SHUB_ECRYPTO);
    assert_int_equal(shub_witness_verify("marac-coventr", &w), SHUB_ECRYPTO);
    assert_int_equal(shub_witness_verify("marac-coventry2", &w), SHUB_ECRYPTO);
    /* a witness is not a checkpoint, nor the other way round */
    assert_int_equal(shub_checkpoint_verify(&w, NULL), SHUB_ECRYPTO);
    shub_signed_head_t cp = signed_checkpoint();
    assert_int_equal(shub_witness_verify(KAT_ORG, &cp), SHUB_ECRYPTO);
}

/* ---- refusals ---------------------------------------------------------- */

static void test_shub_witness_bad_org_returns_einval(void **state)
{
    (void)state;
    static const char *const bad[] = {"",     "Marac-Coventry", "marac coventry",
                                      "-wmp", "idva@coventry",  "@coventry",
                                      "wmp\n"};
    uint8_t curve[32], pk[32], sk[64], head[32], msg[SHUB_WITNESS_MSG_MAX];
    size_t len = 7;
    curve_secret(curve);
    kat_head(head);
    assert_int_equal(shub_witness_keypair(curve, pk, sk), 0);
    shub_signed_head_t cp = signed_checkpoint(), w = signed_witness(), out;
    memset(&out, 0x33, sizeof out);
    shub_signed_head_t untouched = out;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(shub_witness_message(bad[i], KAT_SEQ, head, KAT_AT, msg, &len),
                         SHUB_EINVAL);
        assert_int_equal(shub_witness_sign(bad[i], &cp, sk, pk, &out), SHUB_EINVAL);
        assert_int_equal(shub_witness_verify(bad[i], &w), SHUB_EINVAL);
    }
    char long_org[SHUB_MSG_MAX_NAME + 2];
    memset(long_org, 'o', sizeof long_org - 1);
    long_org[sizeof long_org - 1] = '\0';
    assert_int_equal(shub_witness_sign(long_org, &cp, sk, pk, &out), SHUB_EINVAL);
    assert_int_equal(shub_witness_sign(NULL, &cp, sk, pk, &out), SHUB_EINVAL);
    assert_int_equal(shub_witness_verify(NULL, &w), SHUB_EINVAL);
    assert_int_equal(len, 7);                          /* written only on success */
    assert_memory_equal(&out, &untouched, sizeof out); /* likewise */
}

static void test_shub_sign_bad_head_or_key_pair_returns_einval(void **state)
{
    (void)state;
    uint8_t pk[32], sk[64], other_pk[32], other_sk[64], head[32];
    broker_keys(pk, sk);
    crypto_sign_keypair(other_pk, other_sk);
    kat_head(head);
    shub_signed_head_t out, cp = signed_checkpoint();
    assert_int_equal(shub_checkpoint_sign(0, head, KAT_AT, sk, pk, &out), SHUB_EINVAL);
    assert_int_equal(shub_checkpoint_sign(-5, head, KAT_AT, sk, pk, &out), SHUB_EINVAL);
    assert_int_equal(shub_checkpoint_sign(KAT_SEQ, head, -1, sk, pk, &out), SHUB_EINVAL);
    /* a public key that is not the secret key's would publish a bad key */
    assert_int_equal(shub_checkpoint_sign(KAT_SEQ, head, KAT_AT, sk, other_pk, &out),
                     SHUB_EINVAL);
    assert_int_equal(shub_witness_sign(KAT_ORG, &cp, sk, other_pk, &out), SHUB_EINVAL);
    shub_signed_head_t bad = cp;
    bad.seq = 0;
    assert_int_equal(shub_witness_sign(KAT_ORG, &bad, sk, pk, &out), SHUB_EINVAL);
    bad = cp;
    bad.at_ms = -1;
    assert_int_equal(shub_witness_sign(KAT_ORG, &bad, sk, pk, &out), SHUB_EINVAL);
    assert_int_equal(shub_checkpoint_verify(NULL, pk), SHUB_EINVAL);
    assert_int_equal(shub_witness_verify(KAT_ORG, NULL), SHUB_EINVAL);
    assert_int_equal(shub_witness_keypair(NULL, pk, sk), SHUB_EINVAL);
}

static void test_shub_witness_sign_in_place_keeps_the_head(void **state)
{
    (void)state;
    uint8_t curve[32], pk[32], sk[64];
    curve_secret(curve);
    assert_int_equal(shub_witness_keypair(curve, pk, sk), 0);
    shub_signed_head_t cp = signed_checkpoint();
    assert_int_equal(shub_witness_sign(KAT_ORG, &cp, sk, pk, &cp), 0);
    shub_signed_head_t w = signed_witness();
    assert_memory_equal(&cp, &w, sizeof w);
}

/* ---- the export format of kept checkpoints ----------------------------- */

static shub_kept_cp_t kept(const char *org, shub_cp_state_t state)
{
    shub_kept_cp_t k;
    memset(&k, 0, sizeof k);
    snprintf(k.org, sizeof k.org, "%s", org);
    k.state = state;
    k.cp = signed_checkpoint();
    return k;
}

/* The header and the lines of ks, as the exporter writes them, into buf. */
static size_t export_text(const shub_kept_cp_t *ks, size_t n, char *buf, size_t size)
{
    size_t used = (size_t)snprintf(buf, size, "%s\n", SHUB_CP_EXPORT_HEADER);
    for (size_t i = 0; i < n; i++) {
        char line[SHUB_CP_EXPORT_LINE_MAX];
        size_t len;
        assert_int_equal(shub_cp_export_line(&ks[i], line, &len), 0);
        assert_true(used + len < size);
        memcpy(buf + used, line, len + 1);
        used += len;
    }
    return used;
}

static void test_shub_cp_export_line_known_text(void **state)
{
    (void)state;
    shub_kept_cp_t k = kept(KAT_ORG, SHUB_CP_WITNESSED);
    char line[SHUB_CP_EXPORT_LINE_MAX], want[SHUB_CP_EXPORT_LINE_MAX];
    size_t len;
    assert_int_equal(shub_cp_export_line(&k, line, &len), 0);
    snprintf(want, sizeof want,
             "marac-coventry witnessed 1207 1717406104871 "
             "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf %s %s\n",
             kat_broker_pk, kat_checkpoint_sig);
    assert_string_equal(line, want);
    assert_int_equal(len, strlen(want));
    assert_string_equal(shub_cp_state_name(SHUB_CP_FORK), "fork");
    assert_string_equal(shub_cp_state_name((shub_cp_state_t)0), "?");
}

static void test_shub_cp_export_parse_round_trip_keeps_every_field(void **state)
{
    (void)state;
    shub_kept_cp_t ks[3] = {kept("wmp", SHUB_CP_WITNESSED), kept(KAT_ORG, SHUB_CP_FORK),
                            kept("a", SHUB_CP_WITNESSED)};
    ks[1].cp.seq = INT64_MAX;
    ks[1].cp.at_ms = 0;
    ks[1].cp.head[31] = 0xff;
    memset(ks[2].org, 'z', SHUB_MSG_MAX_NAME); /* the longest name */
    ks[2].org[SHUB_MSG_MAX_NAME] = '\0';
    ks[2].cp.at_ms = INT64_MAX;
    char text[4096];
    size_t len = export_text(ks, 3, text, sizeof text);
    shub_kept_cp_t *list = NULL;
    size_t n = 0;
    shub_err_t err;
    assert_int_equal(shub_cp_export_parse("x", text, len, &list, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(list, ks, sizeof ks);
    shub_free(list);
    /* the header alone: an agent that keeps nothing yet */
    len = export_text(NULL, 0, text, sizeof text);
    list = (shub_kept_cp_t *)&n; /* must be overwritten */
    assert_int_equal(shub_cp_export_parse(NULL, text, len, &list, &n, &err), 0);
    assert_int_equal(n, 0);
    assert_null(list);
}

static void test_shub_cp_export_line_bad_fields_einval(void **state)
{
    (void)state;
    char line[SHUB_CP_EXPORT_LINE_MAX];
    size_t len;
    shub_kept_cp_t k = kept("Not-A-Name", SHUB_CP_WITNESSED);
    assert_int_equal(shub_cp_export_line(&k, line, &len), SHUB_EINVAL);
    k = kept("wmp", (shub_cp_state_t)7);
    assert_int_equal(shub_cp_export_line(&k, line, &len), SHUB_EINVAL);
    k = kept("wmp", SHUB_CP_FORK);
    k.cp.seq = 0;
    assert_int_equal(shub_cp_export_line(&k, line, &len), SHUB_EINVAL);
    k = kept("wmp", SHUB_CP_FORK);
    k.cp.at_ms = -1;
    assert_int_equal(shub_cp_export_line(&k, line, &len), SHUB_EINVAL);
    assert_int_equal(shub_cp_export_line(NULL, line, &len), SHUB_EINVAL);
}

/* Parses `text` (len bytes) and expects a refusal with code, line, column and
 * words in the message, and nothing written to the results. */
static void expect_refused_text(const char *text, size_t len, int code, int line,
                                int column, const char *words)
{
    shub_kept_cp_t *list = (shub_kept_cp_t *)&len;
    size_t n = 99;
    shub_err_t err;
    shub_err_clear(&err);
    int rc = shub_cp_export_parse("wmp.checkpoints", text, len, &list, &n, &err);
    char msg[512];
    if (rc != code || err.line != line || err.column != column || !strstr(err.msg, words))
        print_error("got %d '%s', wanted %d at %d:%d with '%s'\n", rc,
                    shub_err_format(&err, msg, sizeof msg), code, line, column, words);
    assert_int_equal(rc, code);
    assert_string_equal(err.file, "wmp.checkpoints");
    assert_int_equal(err.line, line);
    assert_int_equal(err.column, column);
    assert_non_null(strstr(err.msg, words));
    assert_int_equal(n, 99);
    assert_ptr_equal(list, (shub_kept_cp_t *)&len);
}

/* A good file of a header and two checkpoints with line `which` (0: the
 * header) replaced by `bad`. */
static void expect_refused(int which, const char *bad, int code, int line, int column,
                           const char *words)
{
    shub_kept_cp_t ks[2] = {kept("wmp", SHUB_CP_WITNESSED), kept(KAT_ORG, SHUB_CP_FORK)};
    char good[2048], text[4096];
    size_t glen = export_text(ks, 2, good, sizeof good), used = 0;
    const char *p = good;
    for (int i = 0; i < 3; i++) {
        const char *nl = memchr(p, '\n', glen - (size_t)(p - good));
        size_t n = (size_t)(nl - p) + 1;
        if (i == which) {
            used += (size_t)snprintf(text + used, sizeof text - used, "%s", bad);
        } else {
            memcpy(text + used, p, n);
            used += n;
        }
        p += n;
    }
    expect_refused_text(text, used, code, line, column, words);
}

#define H64  "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
#define S128 H64 H64
#define TAIL " " H64 " " H64 " " S128 "\n" /* head, key and sig of a good line */

static void test_shub_cp_export_parse_bad_structure_named(void **state)
{
    (void)state;
    expect_refused(0, "sharehub-checkpoints 2\n", SHUB_EVERSION, 1, 22, "version 1");
    expect_refused(0, "sharehub-checkpoint 1\n", SHUB_EMALFORMED, 1, 1, "first line");
    expect_refused(0, "\n", SHUB_EMALFORMED, 1, 1, "first line");
    expect_refused(1, "wmp witnessed 5 6 " H64 " " H64 "\n", SHUB_EMALFORMED, 2, 148,
                   "sig: missing");
    expect_refused(1, "wmp witnessed 5 6 " H64 " " H64 " " S128 " x\n", SHUB_EMALFORMED,
                   2, 278, "more than 7 fields");
    expect_refused(1, "wmp  witnessed 5 6" TAIL, SHUB_EMALFORMED, 2, 5, "state: empty");
    expect_refused(1, "\n", SHUB_EMALFORMED, 2, 1, "org: empty");
    expect_refused(1, "wmp witnessed 5 6 " H64 " " H64 " " S128 "\r\n", SHUB_EMALFORMED,
                   2, 277, "byte 0x0d");
    expect_refused(2, "wmp fork 5\t6\n", SHUB_EMALFORMED, 3, 11, "byte 0x09");
    expect_refused(2, "wmp fork 5 \xc3\xa9\n", SHUB_EMALFORMED, 3, 12, "byte 0xc3");
    expect_refused(2, "wmp fork 5 6 \x7f\n", SHUB_EMALFORMED, 3, 14, "byte 0x7f");
    /* cut short: the last line has no newline */
    static const char cut[] = SHUB_CP_EXPORT_HEADER "\nwmp witnessed 5 6 " H64;
    expect_refused_text(cut, sizeof cut - 1, SHUB_EMALFORMED, 2, 83, "no newline");
    expect_refused_text("", 0, SHUB_EMALFORMED, 1, 1, "empty");
    /* a NUL inside a line is a byte like any other control byte */
    static const char nul[] = SHUB_CP_EXPORT_HEADER "\nwmp\0witnessed\n";
    expect_refused_text(nul, sizeof nul - 1, SHUB_EMALFORMED, 2, 4, "byte 0x00");
    /* a line longer than the limit is refused before it is looked into */
    char longline[2 * SHUB_CP_EXPORT_LINE_MAX];
    int n = snprintf(longline, sizeof longline, "%s\n", SHUB_CP_EXPORT_HEADER);
    memset(longline + n, 'a', sizeof longline - (size_t)n);
    expect_refused_text(longline, sizeof longline, SHUB_ELIMIT, 2,
                        SHUB_CP_EXPORT_LINE_MAX, "longer than");
}

static void test_shub_cp_export_parse_bad_values_named(void **state)
{
    (void)state;
    expect_refused(1, "WMP witnessed 5 6" TAIL, SHUB_EVALUE, 2, 1, "org: not an");
    char line[512];
    memset(line, 'o', 65);
    snprintf(line + 65, sizeof line - 65, " fork 5 6" TAIL);
    expect_refused(1, line, SHUB_EVALUE, 2, 1, "org: 65 bytes exceeds limit 64");
    expect_refused(1, "wmp witnessd 5 6" TAIL, SHUB_EVALUE, 2, 5, "state: not one of");
    expect_refused(1, "wmp fork 0 6" TAIL, SHUB_EVALUE, 2, 10, "seq: expected");
    expect_refused(1, "wmp fork 05 6" TAIL, SHUB_EVALUE, 2, 10, "seq: expected");
    expect_refused(1, "wmp fork -5 6" TAIL, SHUB_EVALUE, 2, 10,
                   "seq: not a decimal digit");
    expect_refused(1, "wmp fork 5x 6" TAIL, SHUB_EVALUE, 2, 11,
                   "seq: not a decimal digit");
    expect_refused(1, "wmp fork 9223372036854775808 6" TAIL, SHUB_EVALUE, 2, 10,
                   "seq: expected");
    expect_refused(1, "wmp fork 12345678901234567890 6" TAIL, SHUB_EVALUE, 2, 10,
                   "seq: expected");
    expect_refused(1, "wmp fork 5 +6" TAIL, SHUB_EVALUE, 2, 12,
                   "at: not a decimal digit");
    /* head at column 14, key at 79, sig at 144 */
    expect_refused(1,
                   "wmp fork 5 6 "
                   "A0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf " H64
                   " " S128 "\n",
                   SHUB_EVALUE, 2, 14, "head: not a lowercase hex digit");
    expect_refused(1,
                   "wmp fork 5 6 "
                   "a0a1a2g3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf " H64
                   " " S128 "\n",
                   SHUB_EVALUE, 2, 20, "head: not a lowercase hex digit");
    expect_refused(1,
                   "wmp fork 5 6 "
                   "0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf " H64
                   " " S128 "\n",
                   SHUB_EVALUE, 2, 14, "head: 63 characters, expected 64");
    expect_refused(1, "wmp fork 5 6 " H64 " " H64 "0 " S128 "\n", SHUB_EVALUE, 2, 79,
                   "key: 65 characters");
    expect_refused(1, "wmp fork 5 6 " H64 " " H64 " " H64 "\n", SHUB_EVALUE, 2, 144,
                   "sig: 64 characters, expected 128");
}

static void test_shub_cp_export_parse_out_of_memory_enomem_no_leak(void **state)
{
    (void)state;
    shub_kept_cp_t ks[1] = {kept("wmp", SHUB_CP_WITNESSED)};
    char text[1024];
    size_t len = export_text(ks, 1, text, sizeof text), n = 7;
    shub_kept_cp_t *list = NULL;
    shub_err_t err;
    shub_alloc_fail_after(0);
    assert_int_equal(shub_cp_export_parse("x", text, len, &list, &n, &err), SHUB_ENOMEM);
    shub_alloc_fail_after(-1);
    assert_null(list);
    assert_int_equal(n, 7);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shub_checkpoint_message_known_bytes),
        cmocka_unit_test(test_shub_checkpoint_sign_known_signature),
        cmocka_unit_test(test_shub_witness_message_known_bytes),
        cmocka_unit_test(test_shub_witness_sign_known_signature),
        cmocka_unit_test(test_shub_witness_keypair_known_key),
        cmocka_unit_test(test_shub_witness_keypair_deterministic_and_distinct),
        cmocka_unit_test(test_shub_checkpoint_verify_tampered_field_returns_ecrypto),
        cmocka_unit_test(test_shub_witness_verify_tampered_field_returns_ecrypto),
        cmocka_unit_test(test_shub_checkpoint_verify_other_key_returns_ecrypto),
        cmocka_unit_test(test_shub_witness_verify_wrong_org_returns_ecrypto),
        cmocka_unit_test(test_shub_witness_bad_org_returns_einval),
        cmocka_unit_test(test_shub_sign_bad_head_or_key_pair_returns_einval),
        cmocka_unit_test(test_shub_witness_sign_in_place_keeps_the_head),
        cmocka_unit_test(test_shub_cp_export_line_known_text),
        cmocka_unit_test(test_shub_cp_export_parse_round_trip_keeps_every_field),
        cmocka_unit_test(test_shub_cp_export_line_bad_fields_einval),
        cmocka_unit_test(test_shub_cp_export_parse_bad_structure_named),
        cmocka_unit_test(test_shub_cp_export_parse_bad_values_named),
        cmocka_unit_test(test_shub_cp_export_parse_out_of_memory_enomem_no_leak),
    };
    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests(tests, NULL, NULL);
}
