/*
 * witness: checkpoints and countersignatures (include/sharehub/witness.h).
 *
 * Everything here is a fixed byte layout and one libsodium call: Ed25519
 * detached signatures, and BLAKE2b for deriving an agent's witness key from
 * its CURVE secret key. Values the protocol forbids (a seq below 1, a time
 * before 1970, an org id that is not a name) are refused before anything is
 * signed or verified, so a signature never covers what a peer's codec would
 * refuse to carry.
 */
#include "sharehub/witness.h"

#include "sharehub/err.h"

#include <sodium.h>
#include <string.h>

_Static_assert(crypto_sign_PUBLICKEYBYTES == SHUB_SIGN_PUBLIC_SIZE, "Ed25519 public key");
_Static_assert(crypto_sign_SECRETKEYBYTES == SHUB_SIGN_SECRET_SIZE, "Ed25519 secret key");
_Static_assert(crypto_sign_BYTES == SHUB_SIGNATURE_SIZE, "Ed25519 signature");
_Static_assert(crypto_sign_SEEDBYTES == 32, "Ed25519 seed");

static void put_be64(uint8_t *out, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* seq || head || at: the tail both layouts share. Writes 48 bytes. */
static void put_head(uint8_t *out, int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                     int64_t at_ms)
{
    put_be64(out, (uint64_t)seq);
    memcpy(out + 8, head, SHUB_HASH_SIZE);
    put_be64(out + 8 + SHUB_HASH_SIZE, (uint64_t)at_ms);
}

/* The protocol's rules for a signed head (SPEC 5.13): seq >= 1, at >= 0. */
static bool head_valid(int64_t seq, int64_t at_ms)
{
    return seq >= 1 && at_ms >= 0;
}

/* Whether pk is the public half of sk (libsodium keeps it in sk's tail). */
static bool pair_matches(const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                         const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE])
{
    uint8_t derived[SHUB_SIGN_PUBLIC_SIZE];
    return crypto_sign_ed25519_sk_to_pk(derived, sk) == 0 &&
           sodium_memcmp(derived, pk, sizeof derived) == 0;
}

/* Signs msg with sk into a copy of `from` whose key becomes pk; *out is
 * written only when the signature is made. */
static int sign_head(const uint8_t *msg, size_t len, const shub_signed_head_t *from,
                     const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                     const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    if (!pair_matches(sk, pk))
        return SHUB_EINVAL;
    shub_signed_head_t signed_ = *from;
    memcpy(signed_.key, pk, SHUB_SIGN_PUBLIC_SIZE);
    if (crypto_sign_detached(signed_.sig, NULL, msg, len, sk) != 0)
        return SHUB_ECRYPTO;
    *out = signed_;
    return 0;
}

/* ---- checkpoints ------------------------------------------------------- */

void shub_checkpoint_message(int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                             int64_t at_ms, uint8_t out[SHUB_CHECKPOINT_MSG_SIZE])
{
    size_t tag = sizeof SHUB_CHECKPOINT_TAG - 1;
    memcpy(out, SHUB_CHECKPOINT_TAG, tag);
    put_head(out + tag, seq, head, at_ms);
}

int shub_checkpoint_sign(int64_t seq, const uint8_t head[SHUB_HASH_SIZE], int64_t at_ms,
                         const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                         const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (!head || !sk || !pk || !out || !head_valid(seq, at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE];
    shub_checkpoint_message(seq, head, at_ms, msg);
    shub_signed_head_t cp = {.seq = seq, .at_ms = at_ms};
    memcpy(cp.head, head, SHUB_HASH_SIZE);
    return sign_head(msg, sizeof msg, &cp, sk, pk, out);
}

int shub_checkpoint_verify(const shub_signed_head_t *cp, const uint8_t *expected_key)
{
    if (!cp || !head_valid(cp->seq, cp->at_ms))
        return SHUB_EINVAL;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    if (expected_key && sodium_memcmp(cp->key, expected_key, SHUB_SIGN_PUBLIC_SIZE) != 0)
        return SHUB_ECRYPTO;
    uint8_t msg[SHUB_CHECKPOINT_MSG_SIZE];
    shub_checkpoint_message(cp->seq, cp->head, cp->at_ms, msg);
    return crypto_sign_verify_detached(cp->sig, msg, sizeof msg, cp->key) == 0
               ? 0
               : SHUB_ECRYPTO;
}

/* ---- witnesses --------------------------------------------------------- */

int shub_witness_keypair(const uint8_t curve_secret[32],
                         uint8_t pk[SHUB_SIGN_PUBLIC_SIZE],
                         uint8_t sk[SHUB_SIGN_SECRET_SIZE])
{
    if (!curve_secret || !pk || !sk)
        return SHUB_EINVAL;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    uint8_t seed[crypto_sign_SEEDBYTES];
    int rc = crypto_generichash(seed, sizeof seed, curve_secret, 32,
                                (const uint8_t *)SHUB_WITNESS_KEY_TAG,
                                sizeof SHUB_WITNESS_KEY_TAG - 1) == 0 &&
                     crypto_sign_seed_keypair(pk, sk, seed) == 0
                 ? 0
                 : SHUB_ECRYPTO;
    sodium_memzero(seed, sizeof seed);
    return rc;
}

int shub_witness_message(const char *org, int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                         int64_t at_ms, uint8_t out[SHUB_WITNESS_MSG_MAX], size_t *len)
{
    if (!shub_is_name(org) || !head || !out || !len)
        return SHUB_EINVAL;
    size_t tag = sizeof SHUB_WITNESS_TAG - 1, n = strlen(org); /* n <= 64: a name */
    memcpy(out, SHUB_WITNESS_TAG, tag);
    out[tag] = (uint8_t)n;
    memcpy(out + tag + 1, org, n);
    put_head(out + tag + 1 + n, seq, head, at_ms);
    *len = tag + 1 + n + 8 + SHUB_HASH_SIZE + 8;
    return 0;
}

int shub_witness_sign(const char *org, const shub_signed_head_t *checkpoint,
                      const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                      const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out)
{
    if (!checkpoint || !sk || !pk || !out ||
        !head_valid(checkpoint->seq, checkpoint->at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_WITNESS_MSG_MAX];
    size_t len;
    int rc = shub_witness_message(org, checkpoint->seq, checkpoint->head,
                                  checkpoint->at_ms, msg, &len);
    return rc ? rc : sign_head(msg, len, checkpoint, sk, pk, out);
}

int shub_witness_verify(const char *org, const shub_signed_head_t *w)
{
    if (!w || !head_valid(w->seq, w->at_ms))
        return SHUB_EINVAL;
    uint8_t msg[SHUB_WITNESS_MSG_MAX];
    size_t len;
    int rc = shub_witness_message(org, w->seq, w->head, w->at_ms, msg, &len);
    if (rc)
        return rc;
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    return crypto_sign_verify_detached(w->sig, msg, len, w->key) == 0 ? 0 : SHUB_ECRYPTO;
}
