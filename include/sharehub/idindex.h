/*
 * idindex: where an event id sits in an array of the caller's. A hash table
 * of positions (an array index, a ring slot), found by the id at each: the
 * caller keeps the ids and says where through id_at; several positions may
 * hold one id. Open addressing with linear probing, at most half full, and
 * deletion by shifting the run back, so no tombstones and no rebuilds after
 * churn.
 *
 * Event ids are chosen by partners, so the hash is keyed (SipHash-2-4, a
 * random key per index): ids made to collide must not turn every lookup into
 * a walk of the table.
 */
#ifndef SHAREHUB_IDINDEX_H
#define SHAREHUB_IDINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sharehub/msg.h"

/* The id at position pos (valid for every position in the index). */
typedef const shub_id_t *(shub_idindex_id_fn)(size_t pos, void *ctx);

typedef struct shub_idindex {
    uint32_t *slots; /* 1 + a position; 0 empty */
    size_t n_slots;  /* a power of two, at least twice n; 0 before the first put */
    size_t n;
    uint8_t key[16];
    shub_idindex_id_fn *id_at;
    void *ctx;
} shub_idindex_t;

/* An empty index. SHUB_ECRYPTO if libsodium cannot start. */
int shub_idindex_init(shub_idindex_t *x, shub_idindex_id_fn *id_at, void *ctx);

/* Frees the table; the index is empty and usable again. */
void shub_idindex_free(shub_idindex_t *x);

/* Forgets every position, keeping the table. */
void shub_idindex_clear(shub_idindex_t *x);

/* Adds position pos (below UINT32_MAX), growing the table when it would be
 * more than half full. SHUB_ENOMEM (the index unchanged). */
int shub_idindex_put(shub_idindex_t *x, size_t pos);

/* Removes position pos, which must be in the index. */
void shub_idindex_del(shub_idindex_t *x, size_t pos);

/* Position `from` is moving to `to` (not in the index): call while the id
 * is still at `from`. */
void shub_idindex_move(shub_idindex_t *x, size_t from, size_t to);

/* The positions that hold id, one per call: *cursor starts at 0; true with
 * *pos set while there is another. Nothing may be put or deleted between
 * the calls of one walk. */
bool shub_idindex_next(const shub_idindex_t *x, const shub_id_t *id, size_t *cursor,
                       size_t *pos);

#endif
