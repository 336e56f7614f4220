/*
 * keys: key files on disk. Every organisation and the broker hold a CURVE
 * keypair (Curve25519, z85 text: NAME.pub and NAME.key); the broker also
 * holds an Ed25519 keypair that signs audit checkpoints (checkpoint.pub and
 * checkpoint.key, hex) and a 32-byte secret that keys the hash of subject
 * references (subject.key, hex). Secret files are created with mode 0600 and
 * refused when group or others can read them, as ssh does.
 */
#ifndef SHAREHUB_KEYS_H
#define SHAREHUB_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/err.h"

#define SHUB_KEY_SIZE 32     /* CURVE public or secret key, bytes */
#define SHUB_KEY_Z85 41      /* z85 text of a key plus NUL */
#define SHUB_SIGN_PUBLIC 32  /* Ed25519 public key */
#define SHUB_SIGN_SECRET 64  /* Ed25519 secret key (libsodium layout) */

typedef struct shub_curve_keys {
    uint8_t public_key[SHUB_KEY_SIZE];
    uint8_t secret_key[SHUB_KEY_SIZE]; /* zero when only the public half is loaded */
    char public_z85[SHUB_KEY_Z85];
} shub_curve_keys_t;

/* Fresh CURVE keypair. SHUB_ECRYPTO if the random source fails. */
int shub_keys_generate(shub_curve_keys_t *keys, shub_err_t *err);

/* Writes DIR/NAME.pub (0644) and DIR/NAME.key (0600). Refuses to overwrite an
 * existing key (SHUB_EEXIST) unless `force`. */
int shub_keys_write(const char *dir, const char *name, const shub_curve_keys_t *keys,
                    bool force, shub_err_t *err);

/* Writes data[0..n) to path with `mode` (0600 for a secret), through a
 * temporary file renamed into place, so a crash never leaves half a file.
 * Refuses to replace an existing file (SHUB_EEXIST) unless `force`; SHUB_EIO. */
int shub_keys_write_file(const char *path, const void *data, size_t n, unsigned mode,
                         bool force, shub_err_t *err);

/* Reads a z85 public key file (one line of 40 characters). */
int shub_keys_read_public(const char *path, shub_curve_keys_t *keys, shub_err_t *err);

/* Reads DIR/NAME.pub and DIR/NAME.key into keys; checks that they match. */
int shub_keys_read_pair(const char *dir, const char *name, shub_curve_keys_t *keys,
                        shub_err_t *err);

/* Creates the broker's key set in DIR where missing: broker.pub/.key,
 * checkpoint.pub/.key and subject.key. Existing files are kept. */
int shub_keys_ensure_broker(const char *dir, shub_err_t *err);

/* Reads a hex key file of exactly `size` bytes; `secret` enforces mode 0600. */
int shub_keys_read_hex(const char *path, uint8_t *out, size_t size, bool secret,
                       shub_err_t *err);

/* Decodes 40 characters of z85 into 32 bytes. SHUB_EVALUE if malformed. */
int shub_keys_z85_decode(const char *z85, uint8_t out[SHUB_KEY_SIZE]);

/* Encodes 32 bytes into z85 (40 characters and a NUL). */
void shub_keys_z85_encode(const uint8_t key[SHUB_KEY_SIZE], char out[SHUB_KEY_Z85]);

#endif
