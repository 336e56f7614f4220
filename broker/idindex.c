/*
 * idindex: a keyed hash table of positions by event id
 * (include/sharehub/idindex.h).
 */
#include "sharehub/idindex.h"

#include "sharehub/alloc.h"
#include "sharehub/err.h"

#include <sodium.h>
#include <string.h>

int shub_idindex_init(shub_idindex_t *x, shub_idindex_id_fn *id_at, void *ctx)
{
    *x = (shub_idindex_t){.id_at = id_at, .ctx = ctx};
    if (sodium_init() < 0)
        return SHUB_ECRYPTO;
    randombytes_buf(x->key, sizeof x->key);
    return 0;
}

void shub_idindex_free(shub_idindex_t *x)
{
    shub_free(x->slots);
    x->slots = NULL;
    x->n_slots = x->n = 0;
}

void shub_idindex_clear(shub_idindex_t *x)
{
    if (x->slots)
        memset(x->slots, 0, x->n_slots * sizeof *x->slots);
    x->n = 0;
}

static size_t home_of(const shub_idindex_t *x, const shub_id_t *id)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v;
    crypto_shorthash(h, id->bytes, SHUB_ID_SIZE, x->key);
    memcpy(&v, h, sizeof v);
    return (size_t)v & (x->n_slots - 1);
}

static void place(shub_idindex_t *x, uint32_t entry)
{
    size_t mask = x->n_slots - 1, j = home_of(x, x->id_at(entry - 1, x->ctx));
    while (x->slots[j])
        j = (j + 1) & mask;
    x->slots[j] = entry;
}

int shub_idindex_put(shub_idindex_t *x, size_t pos)
{
    if (pos >= UINT32_MAX)
        return SHUB_EINVAL;
    if ((x->n + 1) * 2 > x->n_slots) {
        size_t n = x->n_slots ? x->n_slots * 2 : 64;
        uint32_t *old = x->slots, *slots = shub_calloc(n, sizeof *slots);
        if (!slots)
            return SHUB_ENOMEM;
        size_t old_n = x->n_slots;
        x->slots = slots;
        x->n_slots = n;
        for (size_t i = 0; i < old_n; i++)
            if (old[i])
                place(x, old[i]);
        shub_free(old);
    }
    place(x, (uint32_t)pos + 1);
    x->n++;
    return 0;
}

/* The slot that holds position pos (it is there). */
static size_t slot_of(const shub_idindex_t *x, size_t pos)
{
    size_t mask = x->n_slots - 1, j = home_of(x, x->id_at(pos, x->ctx));
    while (x->slots[j] != pos + 1)
        j = (j + 1) & mask;
    return j;
}

void shub_idindex_del(shub_idindex_t *x, size_t pos)
{
    size_t mask = x->n_slots - 1, j = slot_of(x, pos), hole = j;
    for (;;) {
        j = (j + 1) & mask;
        if (!x->slots[j])
            break;
        size_t home = home_of(x, x->id_at(x->slots[j] - 1, x->ctx));
        /* It stays if its home lies cyclically in (hole, j]. */
        bool stays = hole <= j ? hole < home && home <= j : hole < home || home <= j;
        if (!stays) {
            x->slots[hole] = x->slots[j];
            hole = j;
        }
    }
    x->slots[hole] = 0;
    x->n--;
}

void shub_idindex_move(shub_idindex_t *x, size_t from, size_t to)
{
    x->slots[slot_of(x, from)] = (uint32_t)to + 1;
}

bool shub_idindex_next(const shub_idindex_t *x, const shub_id_t *id, size_t *cursor,
                       size_t *pos)
{
    if (!x->n)
        return false;
    size_t mask = x->n_slots - 1, j = *cursor ? *cursor - 1 : home_of(x, id);
    while (x->slots[j]) {
        size_t p = x->slots[j] - 1;
        j = (j + 1) & mask;
        if (memcmp(x->id_at(p, x->ctx)->bytes, id->bytes, SHUB_ID_SIZE) == 0) {
            *cursor = j + 1;
            *pos = p;
            return true;
        }
    }
    return false;
}
