/*
 * arena: see include/sharehub/arena.h.
 *
 * The arena is a list of blocks; a request larger than the current block gets
 * a block of its own. Blocks grow geometrically so a decoded message of n
 * bytes costs O(log n) mallocs, and every block is sized from bytes actually
 * consumed, never from a length declared by a peer.
 */
#include "sharehub/arena.h"

#include "sharehub/alloc.h"

#include <stdint.h>
#include <string.h>

#define ARENA_MIN_BLOCK 1024
#define ARENA_MAX_BLOCK (1u << 20)

typedef struct block {
    struct block *next;
    size_t size; /* usable bytes after the header */
    size_t used;
    max_align_t data[]; /* aligned start of the usable bytes */
} block_t;

struct shub_arena {
    block_t *head; /* newest block first */
    size_t next_size;
    size_t used;
};

shub_arena_t *shub_arena_new(size_t hint)
{
    shub_arena_t *self = shub_calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->next_size = hint < ARENA_MIN_BLOCK ? ARENA_MIN_BLOCK : hint;
    return self;
}

void shub_arena_destroy(shub_arena_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    block_t *b = (*self_p)->head;
    while (b) {
        block_t *next = b->next;
        shub_free(b);
        b = next;
    }
    shub_free(*self_p);
    *self_p = NULL;
}

void *shub_arena_alloc(shub_arena_t *self, size_t size)
{
    if (size > SIZE_MAX / 2) /* rounding and the block header must not wrap */
        return NULL;
    size = (size + 7) & ~(size_t)7;
    if (size == 0)
        size = 8;
    block_t *b = self->head;
    if (!b || b->size - b->used < size) {
        size_t want = self->next_size > size ? self->next_size : size;
        block_t *nb = shub_malloc(sizeof *nb + want);
        if (!nb)
            return NULL;
        nb->size = want;
        nb->used = 0;
        nb->next = self->head;
        self->head = nb;
        if (self->next_size < ARENA_MAX_BLOCK)
            self->next_size *= 2;
        b = nb;
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    self->used += size;
    memset(p, 0, size);
    return p;
}

char *shub_arena_strndup(shub_arena_t *self, const char *s, size_t n)
{
    char *copy = n < SIZE_MAX ? shub_arena_alloc(self, n + 1) : NULL;
    if (copy) {
        if (n) /* s may be NULL when n is 0; memcpy must not see it */
            memcpy(copy, s, n);
        copy[n] = '\0';
    }
    return copy;
}

size_t shub_arena_used(const shub_arena_t *self)
{
    return self ? self->used : 0;
}
