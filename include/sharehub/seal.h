/*
 * seal: how the broker encrypts each recipient's copy of an event so that
 * its stored outbox reveals nothing, and how the recipient opens it.
 *
 * Like libsodium's sealed boxes, but with the expensive part shared: a sealer
 * holds one ephemeral X25519 keypair; the first copy for a recipient derives
 * a key with that recipient's public key (crypto_box_beforenm, one scalar
 * multiplication), and every further copy for that recipient costs only
 * XSalsa20-Poly1305. The broker keeps a sealer for at most a second of
 * batches and destroys it as the last of them commits, wiping the ephemeral
 * secret: from then on neither the database nor the broker's own keys can
 * open what it sealed. Only the recipient's secret key can.
 *
 * Format (SPEC section 5.6):  ephemeral public key (32) || nonce (24) ||
 * crypto_box_easy_afternm ciphertext (16-byte tag, then the plaintext's
 * length). Nonces are a random 16-byte prefix per sealer and an 8-byte
 * counter, so none repeats under one ephemeral key.
 */
#ifndef SHAREHUB_SEAL_H
#define SHAREHUB_SEAL_H

#include <stddef.h>
#include <stdint.h>

#define SHUB_SEAL_KEY 32
#define SHUB_SEAL_OVERHEAD (32 + 24 + 16) /* ephemeral key, nonce, tag */
#define SHUB_SEAL_CACHE 256               /* recipients one sealer remembers */

typedef struct shub_sealer shub_sealer_t;
typedef struct shub_opener shub_opener_t;

/* A sealer with a fresh ephemeral keypair. NULL on out of memory or if the
 * random source fails. */
shub_sealer_t *shub_sealer_new(void);

/* The same from a fixed 32-byte seed: reproducible bytes for documentation
 * examples and tests only; a real sender must use shub_sealer_new. */
shub_sealer_t *shub_sealer_new_seeded(const uint8_t seed[32]);

/* Wipes the ephemeral secret and every derived key; accepts NULL; nulls the
 * caller's pointer. */
void shub_sealer_destroy(shub_sealer_t **sealer_p);

/* Seals len bytes for the holder of recipient_pk into out, which must hold
 * len + SHUB_SEAL_OVERHEAD bytes. 0, or SHUB_ECRYPTO if recipient_pk is not
 * a usable key. */
int shub_seal(shub_sealer_t *s, const uint8_t recipient_pk[SHUB_SEAL_KEY], const void *plain,
              size_t len, uint8_t *out);

/* An opener for the holder of this keypair; it remembers the keys derived
 * for the last few ephemeral keys (one per broker key). NULL on out of
 * memory. The keypair is copied. */
shub_opener_t *shub_opener_new(const uint8_t pk[SHUB_SEAL_KEY], const uint8_t sk[SHUB_SEAL_KEY]);

/* Wipes the keys; accepts NULL; nulls the caller's pointer. */
void shub_opener_destroy(shub_opener_t **opener_p);

/* Opens len sealed bytes into out (len - SHUB_SEAL_OVERHEAD bytes). 0, or
 * SHUB_ECRYPTO if they are too short, were not sealed to this key, or were
 * altered. */
int shub_unseal(shub_opener_t *o, const uint8_t *sealed, size_t len, uint8_t *out);

#endif
