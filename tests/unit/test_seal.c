/*
 * seal: what the broker's stored copies rely on. A copy opens only with the
 * recipient's key; altering any byte is caught; one batch's key derivation
 * serves every copy to a recipient; hostile ephemeral keys never poison the
 * opener's cache.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/seal.h"

#include <sodium.h>
#include <string.h>

typedef struct {
    uint8_t pk[32], sk[32];
} pair_t;

static pair_t keypair(void)
{
    pair_t p;
    crypto_box_keypair(p.pk, p.sk);
    return p;
}

static void test_seal_then_unseal_round_trips(void **state)
{
    (void)state;
    pair_t r = keypair();
    shub_sealer_t *s = shub_sealer_new();
    shub_opener_t *o = shub_opener_new(r.pk, r.sk);
    assert_non_null(s);
    assert_non_null(o);
    const char *msg = "marac.transfer minutes and action plan";
    size_t n = strlen(msg);
    uint8_t sealed[128], plain[128];
    assert_int_equal(shub_seal(s, r.pk, msg, n, sealed), 0);
    assert_memory_not_equal(sealed + SHUB_SEAL_OVERHEAD, msg, n); /* not in clear */
    assert_int_equal(shub_unseal(o, sealed, n + SHUB_SEAL_OVERHEAD, plain), 0);
    assert_memory_equal(plain, msg, n);
    /* An empty event still carries a tag. */
    assert_int_equal(shub_seal(s, r.pk, "", 0, sealed), 0);
    assert_int_equal(shub_unseal(o, sealed, SHUB_SEAL_OVERHEAD, plain), 0);
    shub_sealer_destroy(&s);
    shub_opener_destroy(&o);
    assert_null(s);
    assert_null(o);
}

static void test_unseal_with_another_key_fails(void **state)
{
    (void)state;
    pair_t r = keypair(), other = keypair();
    shub_sealer_t *s = shub_sealer_new();
    shub_opener_t *o = shub_opener_new(other.pk, other.sk);
    uint8_t sealed[128], plain[128];
    assert_int_equal(shub_seal(s, r.pk, "secret", 6, sealed), 0);
    assert_int_equal(shub_unseal(o, sealed, 6 + SHUB_SEAL_OVERHEAD, plain), SHUB_ECRYPTO);
    shub_sealer_destroy(&s);
    shub_opener_destroy(&o);
}

static void test_unseal_any_altered_byte_fails(void **state)
{
    (void)state;
    pair_t r = keypair();
    shub_sealer_t *s = shub_sealer_new();
    shub_opener_t *o = shub_opener_new(r.pk, r.sk);
    uint8_t sealed[128], copy[128], plain[128];
    size_t len = 10 + SHUB_SEAL_OVERHEAD;
    assert_int_equal(shub_seal(s, r.pk, "0123456789", 10, sealed), 0);
    for (size_t i = 0; i < len; i++) {
        memcpy(copy, sealed, len);
        copy[i] ^= 0x01;
        assert_int_equal(shub_unseal(o, copy, len, plain), SHUB_ECRYPTO);
    }
    assert_int_equal(shub_unseal(o, sealed, len - 1, plain), SHUB_ECRYPTO);
    assert_int_equal(shub_unseal(o, sealed, SHUB_SEAL_OVERHEAD - 1, plain), SHUB_ECRYPTO);
    assert_int_equal(shub_unseal(o, sealed, len, plain), 0); /* the original still opens */
    shub_sealer_destroy(&s);
    shub_opener_destroy(&o);
}

static void test_one_sealer_serves_many_recipients_and_copies(void **state)
{
    (void)state;
    enum { R = 5, COPIES = 20 };
    pair_t r[R];
    shub_opener_t *o[R];
    for (int i = 0; i < R; i++) {
        r[i] = keypair();
        o[i] = shub_opener_new(r[i].pk, r[i].sk);
    }
    shub_sealer_t *s = shub_sealer_new();
    uint8_t first_epk[32] = {0}, first_nonce[24] = {0};
    for (int c = 0; c < COPIES; c++) {
        for (int i = 0; i < R; i++) {
            uint8_t sealed[128], plain[128];
            char msg[16];
            snprintf(msg, sizeof msg, "copy %02d to %d", c, i);
            assert_int_equal(shub_seal(s, r[i].pk, msg, 13, sealed), 0);
            /* The batch's ephemeral key is the same in every copy, and no
             * nonce repeats. */
            if (c == 0 && i == 0) {
                memcpy(first_epk, sealed, 32);
                memcpy(first_nonce, sealed + 32, 24);
            } else {
                assert_memory_equal(sealed, first_epk, 32);
                assert_memory_not_equal(sealed + 32, first_nonce, 24);
            }
            assert_int_equal(shub_unseal(o[i], sealed, 13 + SHUB_SEAL_OVERHEAD, plain), 0);
            assert_memory_equal(plain, msg, 13);
        }
    }
    shub_sealer_destroy(&s);
    for (int i = 0; i < R; i++)
        shub_opener_destroy(&o[i]);
}

static void test_unseal_low_order_key_fails_without_poisoning_cache(void **state)
{
    (void)state;
    pair_t r = keypair();
    shub_opener_t *o = shub_opener_new(r.pk, r.sk);
    uint8_t evil[40 + SHUB_SEAL_OVERHEAD] = {0}, plain[128];
    /* An all-zero ephemeral key is a low-order point: no key derives. */
    assert_int_equal(shub_unseal(o, evil, sizeof evil, plain), SHUB_ECRYPTO);
    /* A message forged with an all-zero key must still fail afterwards. */
    uint8_t zero_key[crypto_box_BEFORENMBYTES] = {0};
    const uint8_t *nonce = evil + 32;
    crypto_box_easy_afternm(evil + 56, (const uint8_t *)"forged forged forged forged forged forge",
                            40, nonce, zero_key);
    assert_int_equal(shub_unseal(o, evil, sizeof evil, plain), SHUB_ECRYPTO);
    shub_opener_destroy(&o);
}

static void test_opener_cache_evicts_yet_opens_every_batch(void **state)
{
    (void)state;
    pair_t r = keypair();
    shub_opener_t *o = shub_opener_new(r.pk, r.sk);
    uint8_t sealed[20][128], plain[128];
    for (int b = 0; b < 20; b++) { /* twenty batches: more than the cache holds */
        shub_sealer_t *s = shub_sealer_new();
        assert_int_equal(shub_seal(s, r.pk, "batch", 5, sealed[b]), 0);
        shub_sealer_destroy(&s);
    }
    for (int round = 0; round < 2; round++)
        for (int b = 0; b < 20; b++)
            assert_int_equal(shub_unseal(o, sealed[b], 5 + SHUB_SEAL_OVERHEAD, plain), 0);
    shub_opener_destroy(&o);
}

static void test_seeded_sealer_is_reproducible(void **state)
{
    (void)state;
    uint8_t seed[32] = {7}, a[128], b[128];
    pair_t r = keypair();
    shub_sealer_t *s1 = shub_sealer_new_seeded(seed), *s2 = shub_sealer_new_seeded(seed);
    assert_int_equal(shub_seal(s1, r.pk, "same", 4, a), 0);
    assert_int_equal(shub_seal(s2, r.pk, "same", 4, b), 0);
    assert_memory_equal(a, b, 4 + SHUB_SEAL_OVERHEAD);
    shub_sealer_destroy(&s1);
    shub_sealer_destroy(&s2);
}

static void test_new_out_of_memory_returns_null(void **state)
{
    (void)state;
    pair_t r = keypair();
    shub_alloc_fail_after(0);
    assert_null(shub_sealer_new());
    assert_null(shub_opener_new(r.pk, r.sk));
    shub_alloc_fail_after(-1);
    shub_sealer_destroy(NULL);
    shub_opener_destroy(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seal_then_unseal_round_trips),
        cmocka_unit_test(test_unseal_with_another_key_fails),
        cmocka_unit_test(test_unseal_any_altered_byte_fails),
        cmocka_unit_test(test_one_sealer_serves_many_recipients_and_copies),
        cmocka_unit_test(test_unseal_low_order_key_fails_without_poisoning_cache),
        cmocka_unit_test(test_opener_cache_evicts_yet_opens_every_batch),
        cmocka_unit_test(test_seeded_sealer_is_reproducible),
        cmocka_unit_test(test_new_out_of_memory_returns_null),
    };
    return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
