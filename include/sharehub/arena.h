/*
 * arena: a bump allocator whose memory is freed all at once.
 *
 * Whatever is built in one go and dropped in one go lives in an arena: a
 * decoded message and its payload tree, a loaded configuration, a parsed
 * YAML document. Nothing in an arena is freed on its own, so building never
 * pairs a free with each allocation and a half-built object is released by
 * destroying its arena. Memory comes from the allocation hook (alloc.h), so
 * fault-injection tests reach inside.
 */
#ifndef SHAREHUB_ARENA_H
#define SHAREHUB_ARENA_H

#include <stddef.h>

typedef struct shub_arena shub_arena_t;

/* New arena whose first block holds `hint` bytes (0 picks a default); NULL
 * when out of memory. */
shub_arena_t *shub_arena_new(size_t hint);

/* Frees every block; accepts NULL; nulls the caller's pointer. */
void shub_arena_destroy(shub_arena_t **self_p);

/* Zeroed, 8-byte aligned memory owned by the arena; NULL on out of memory. */
void *shub_arena_alloc(shub_arena_t *self, size_t size);

/* Copy of s[0..n) plus a NUL, owned by the arena; NULL on out of memory. */
char *shub_arena_strndup(shub_arena_t *self, const char *s, size_t n);

/* Bytes handed out so far (for benchmarks and limits). */
size_t shub_arena_used(const shub_arena_t *self);

#endif
