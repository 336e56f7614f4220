/*
 * witness: the signed statements that let others hold the broker to its
 * audit log (docs/internals.md, "Signed messages"; protocol/SPEC.md 5.13).
 *
 * The broker signs the head of its hash-chained audit log now and then: a
 * checkpoint says "rows 1..seq end in the hash `head`, as of `at`". It sends
 * each checkpoint to its agents (CHECKPOINT), and an agent that has checked
 * the signature against the broker's checkpoint key keeps it and answers with
 * a countersignature of its own (WITNESS). A broker that later rewrote its log
 * would have to explain checkpoints held, and countersigned, by others.
 *
 * Both statements are Ed25519 detached signatures over fixed byte layouts:
 *
 *   checkpoint = "sharehub-checkpoint-v1" || seq (u64 BE) || head (32) || at (u64 BE)
 *   witness    = "sharehub-witness-v1" || len(org) (u8) || org || seq (u64 BE)
 *                || head (32) || at (u64 BE)
 *
 * The checkpoint layout is the one the broker's store has always signed, so
 * older logs verify unchanged. The witness layout names the organisation, so a
 * countersignature cannot be passed off as another organisation's. An agent's
 * witness key is derived from its CURVE secret key (shub_witness_keypair): an
 * organisation has no second secret to keep.
 *
 * Functions return 0 or a negative SHUB_E* code (include/sharehub/err.h):
 * SHUB_EINVAL for arguments that could never be signed (an org id that is not
 * a name, a seq below 1, a time before 1970, a public key that is not the
 * secret key's), SHUB_ECRYPTO for a signature that does not verify or a
 * crypto library that cannot start. Out-parameters are written only on
 * success.
 */
#ifndef SHAREHUB_WITNESS_H
#define SHAREHUB_WITNESS_H

#include <stddef.h>
#include <stdint.h>

#include "sharehub/msg.h"

#define SHUB_CHECKPOINT_TAG      "sharehub-checkpoint-v1"
#define SHUB_CHECKPOINT_MSG_SIZE (sizeof SHUB_CHECKPOINT_TAG - 1 + 8 + 32 + 8)
#define SHUB_WITNESS_TAG         "sharehub-witness-v1"
#define SHUB_WITNESS_MSG_MAX                                                             \
    (sizeof SHUB_WITNESS_TAG - 1 + 1 + SHUB_MSG_MAX_NAME + 8 + SHUB_HASH_SIZE + 8)
#define SHUB_WITNESS_KEY_TAG  "sharehub-witness-key-v1" /* BLAKE2b key of the seed */
#define SHUB_SIGN_SECRET_SIZE 64 /* an Ed25519 secret key, libsodium's layout */

/* ---- checkpoints (the broker's signature) ------------------------------ */

/* The bytes a checkpoint signs, into out. Any seq and time are laid out as
 * unsigned 64-bit big-endian numbers; the sign and verify functions below
 * refuse the values the protocol forbids. */
void shub_checkpoint_message(int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                             int64_t at_ms, uint8_t out[SHUB_CHECKPOINT_MSG_SIZE]);

/* Signs (seq, head, at_ms) with the Ed25519 key pair sk/pk into *out, which
 * then holds what a CHECKPOINT carries. SHUB_EINVAL if seq < 1, at_ms < 0 or
 * pk is not sk's public key; SHUB_ECRYPTO if signing fails. */
int shub_checkpoint_sign(int64_t seq, const uint8_t head[SHUB_HASH_SIZE], int64_t at_ms,
                         const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                         const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE],
                         shub_signed_head_t *out);

/* Checks cp's signature with cp->key. With expected_key (32 bytes), cp->key
 * must also be that key: pass the broker's checkpoint public key, or a
 * checkpoint signed by anyone would pass. SHUB_ECRYPTO if the key differs or
 * the signature does not verify; SHUB_EINVAL if seq < 1 or at_ms < 0. */
int shub_checkpoint_verify(const shub_signed_head_t *cp, const uint8_t *expected_key);

/* ---- witnesses (an agent's countersignature) --------------------------- */

/* An agent's witness key pair: the Ed25519 pair whose seed is BLAKE2b-256 of
 * its CURVE secret key, keyed with SHUB_WITNESS_KEY_TAG. The same CURVE key
 * always gives the same pair. SHUB_ECRYPTO if libsodium cannot start. */
int shub_witness_keypair(const uint8_t curve_secret[32],
                         uint8_t pk[SHUB_SIGN_PUBLIC_SIZE],
                         uint8_t sk[SHUB_SIGN_SECRET_SIZE]);

/* The bytes a witness signs, into out; *len is their number (at most
 * SHUB_WITNESS_MSG_MAX). SHUB_EINVAL if org is not a name (shub_is_name). */
int shub_witness_message(const char *org, int64_t seq, const uint8_t head[SHUB_HASH_SIZE],
                         int64_t at_ms, uint8_t out[SHUB_WITNESS_MSG_MAX], size_t *len);

/* Countersigns a checkpoint as `org` with its witness key pair sk/pk: *out
 * gets the checkpoint's seq, head and at, key = pk, and the signature. Sign
 * only a checkpoint that shub_checkpoint_verify accepted with the broker's key
 * and that agrees with those already held. out may be checkpoint itself.
 * SHUB_EINVAL for a bad org, seq, time or key pair; SHUB_ECRYPTO if signing
 * fails. */
int shub_witness_sign(const char *org, const shub_signed_head_t *checkpoint,
                      const uint8_t sk[SHUB_SIGN_SECRET_SIZE],
                      const uint8_t pk[SHUB_SIGN_PUBLIC_SIZE], shub_signed_head_t *out);

/* Checks that w is org's countersignature under w->key. Which key belongs to
 * org is the caller's to know (the agent exports it). SHUB_EINVAL for a bad
 * org, seq or time; SHUB_ECRYPTO if the signature does not verify. */
int shub_witness_verify(const char *org, const shub_signed_head_t *w);

#endif
