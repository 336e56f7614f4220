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
 *
 * An agent keeps the checkpoints it checked in its own store, and an auditor
 * compares them with the broker's log. The export format carries them from
 * one to the other as text a person can read and diff: a header line, then
 * one line per checkpoint, fields separated by one space, every line ending
 * in a newline:
 *
 *   sharehub-checkpoints 1
 *   ORG STATE SEQ AT HEAD KEY SIG
 *
 * ORG is the organisation that keeps it (a name), STATE `witnessed` (checked
 * and countersigned) or `fork` (it contradicted one kept: evidence), SEQ and
 * AT decimal (rows 1..SEQ; ms since 1970), HEAD and KEY 64 lowercase hex
 * digits (the chain head; the broker's checkpoint key), SIG 128 (the broker's
 * signature). The parser trusts nothing in the file: every line, field,
 * length, digit and range is checked, and a mistake is named by line, column
 * and field.
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

/* The export format's first line (version 1); the most bytes in one line,
 * its newline included (a 64-byte org, two 19-digit numbers and 256 hex
 * digits fit); the most checkpoints in one file: about four months of one
 * every 5 s around the clock, which bounds what a hostile file can make the
 * parser allocate. */
#define SHUB_CP_EXPORT_HEADER   "sharehub-checkpoints 1"
#define SHUB_CP_EXPORT_LINE_MAX 400
#define SHUB_CP_EXPORT_MAX      (1u << 21)

/* A checkpoint an agent keeps: countersigned, or kept as evidence of a fork. */
typedef enum {
    SHUB_CP_WITNESSED = 1,
    SHUB_CP_FORK,
} shub_cp_state_t;

/* One line of the export format. */
typedef struct shub_kept_cp {
    char org[SHUB_MSG_MAX_NAME + 1]; /* the organisation that keeps it */
    shub_cp_state_t state;
    shub_signed_head_t cp; /* as the broker signed it */
} shub_kept_cp_t;

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
 * org is the caller's to know (it follows from the organisation's CURVE
 * key). SHUB_EINVAL for a bad org, seq or time; SHUB_ECRYPTO if the
 * signature does not verify. */
int shub_witness_verify(const char *org, const shub_signed_head_t *w);

/* ---- the export format of kept checkpoints ------------------------------ */

/* "witnessed", "fork"; "?" otherwise. */
const char *shub_cp_state_name(shub_cp_state_t state);

/* Writes k as one line of the export format, newline included, into out;
 * *len gets its length. SHUB_EINVAL for what the parser would refuse: an org
 * that is not a name, an unknown state, a seq below 1, a time before 1970. */
int shub_cp_export_line(const shub_kept_cp_t *k, char out[SHUB_CP_EXPORT_LINE_MAX],
                        size_t *len);

/* Parses a whole export file of len bytes (`name` names it in messages; may
 * be NULL). *list gets the checkpoints in file order (the caller frees it
 * with shub_free; NULL when there are none) and *n their number. Errors carry
 * the file, line and column, and the message names the field:
 * SHUB_EMALFORMED (no header, a wrong number of fields, a missing final
 * newline, a NUL or control byte), SHUB_EVERSION (a format version other than
 * 1), SHUB_EVALUE (a field's value), SHUB_ELIMIT (a line over
 * SHUB_CP_EXPORT_LINE_MAX, more than SHUB_CP_EXPORT_MAX lines), SHUB_ENOMEM.
 * Nothing is written to *list or *n on failure. */
int shub_cp_export_parse(const char *name, const char *data, size_t len,
                         shub_kept_cp_t **list, size_t *n, shub_err_t *err);

#endif
