/*
 * seal: batch-keyed sealing (include/sharehub/seal.h). The caches are small
 * arrays scanned linearly: a batch reaches tens of organisations, and an
 * agent sees one ephemeral key per broker batch.
 */
#include "sharehub/seal.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"
#include "sharehub/msg.h"

#include <sodium.h>
#include <string.h>

/* The largest event the codec lets an agent queue must fit sealed. */
_Static_assert(SHUB_MSG_MAX_EVENT + SHUB_SEAL_OVERHEAD == SHUB_MSG_MAX_BIN,
               "SHUB_MSG_MAX_EVENT must leave room for the seal and no more");

#define OPENER_CACHE 8

typedef struct {
    uint8_t pk[SHUB_SEAL_KEY];
    uint8_t k[crypto_box_BEFORENMBYTES];
} derived_t;

struct shub_sealer {
    uint8_t epk[crypto_box_PUBLICKEYBYTES];
    uint8_t esk[crypto_box_SECRETKEYBYTES];
    uint8_t prefix[16]; /* nonce = prefix || counter */
    uint64_t counter;
    derived_t cache[SHUB_SEAL_CACHE];
    size_t n_cache;
};

struct shub_opener {
    uint8_t pk[SHUB_SEAL_KEY], sk[SHUB_SEAL_KEY];
    derived_t cache[OPENER_CACHE]; /* pk here is the ephemeral key */
    size_t n_cache, next;          /* next: the slot replaced when full */
};

static shub_sealer_t *sealer_alloc(void)
{
    if (sodium_init() < 0)
        return NULL;
    return shub_calloc(1, sizeof(shub_sealer_t));
}

shub_sealer_t *shub_sealer_new(void)
{
    shub_sealer_t *s = sealer_alloc();
    if (!s)
        return NULL;
    crypto_box_keypair(s->epk, s->esk);
    randombytes_buf(s->prefix, sizeof s->prefix);
    return s;
}

shub_sealer_t *shub_sealer_new_seeded(const uint8_t seed[32])
{
    shub_sealer_t *s = sealer_alloc();
    if (!s)
        return NULL;
    crypto_box_seed_keypair(s->epk, s->esk, seed);
    crypto_generichash(s->prefix, sizeof s->prefix, seed, 32, NULL, 0);
    return s;
}

/* Sealers and openers hold secret keys: wiped before they are freed. */
static void wipe_free(void **p, size_t size)
{
    if (!p || !*p)
        return;
    sodium_memzero(*p, size);
    shub_free(*p);
    *p = NULL;
}

void shub_sealer_destroy(shub_sealer_t **sealer_p)
{
    wipe_free((void **)sealer_p, sizeof **sealer_p);
}

int shub_seal(shub_sealer_t *s, const uint8_t recipient_pk[SHUB_SEAL_KEY], const void *plain,
              size_t len, uint8_t *out)
{
    uint8_t local[crypto_box_BEFORENMBYTES];
    const uint8_t *k = NULL;
    for (size_t i = 0; i < s->n_cache && !k; i++)
        if (memcmp(s->cache[i].pk, recipient_pk, SHUB_SEAL_KEY) == 0)
            k = s->cache[i].k;
    if (!k) {
        uint8_t *slot = s->n_cache < SHUB_SEAL_CACHE ? s->cache[s->n_cache].k : local;
        if (crypto_box_beforenm(slot, recipient_pk, s->esk) != 0)
            return SHUB_ECRYPTO;
        if (slot != local)
            memcpy(s->cache[s->n_cache++].pk, recipient_pk, SHUB_SEAL_KEY);
        k = slot;
    }
    uint8_t *nonce = out + crypto_box_PUBLICKEYBYTES;
    memcpy(out, s->epk, crypto_box_PUBLICKEYBYTES);
    memcpy(nonce, s->prefix, sizeof s->prefix);
    uint64_t c = s->counter++;
    for (int i = 0; i < 8; i++)
        nonce[16 + i] = (uint8_t)(c >> (56 - 8 * i));
    int rc = crypto_box_easy_afternm(nonce + crypto_box_NONCEBYTES, plain, len, nonce, k);
    sodium_memzero(local, sizeof local);
    return rc == 0 ? 0 : SHUB_ECRYPTO;
}

shub_opener_t *shub_opener_new(const uint8_t pk[SHUB_SEAL_KEY], const uint8_t sk[SHUB_SEAL_KEY])
{
    if (sodium_init() < 0)
        return NULL;
    shub_opener_t *o = shub_calloc(1, sizeof *o);
    if (!o)
        return NULL;
    memcpy(o->pk, pk, SHUB_SEAL_KEY);
    memcpy(o->sk, sk, SHUB_SEAL_KEY);
    return o;
}

void shub_opener_destroy(shub_opener_t **opener_p)
{
    wipe_free((void **)opener_p, sizeof **opener_p);
}

int shub_unseal(shub_opener_t *o, const uint8_t *sealed, size_t len, uint8_t *out)
{
    if (!sealed || len < SHUB_SEAL_OVERHEAD)
        return SHUB_ECRYPTO;
    const uint8_t *epk = sealed, *nonce = sealed + crypto_box_PUBLICKEYBYTES;
    const uint8_t *k = NULL;
    for (size_t i = 0; i < o->n_cache && !k; i++)
        if (memcmp(o->cache[i].pk, epk, SHUB_SEAL_KEY) == 0)
            k = o->cache[i].k;
    if (!k) {
        /* Derive first, cache only on success: a key that fails (a low-order
         * point) must never leave an entry that a crafted message could hit. */
        derived_t d;
        if (crypto_box_beforenm(d.k, epk, o->sk) != 0) {
            sodium_memzero(&d, sizeof d);
            return SHUB_ECRYPTO;
        }
        memcpy(d.pk, epk, SHUB_SEAL_KEY);
        size_t i = o->n_cache < OPENER_CACHE ? o->n_cache++ : o->next;
        o->next = (i + 1) % OPENER_CACHE;
        o->cache[i] = d;
        sodium_memzero(&d, sizeof d);
        k = o->cache[i].k;
    }
    size_t head = crypto_box_PUBLICKEYBYTES + crypto_box_NONCEBYTES;
    if (crypto_box_open_easy_afternm(out, sealed + head, len - head, nonce, k) != 0)
        return SHUB_ECRYPTO;
    return 0;
}
