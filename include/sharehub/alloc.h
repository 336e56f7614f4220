/*
 * alloc: the one allocation hook. Every allocation in sharehub goes through
 * these so that tests can make the Nth allocation fail and check that the
 * code returns SHUB_ENOMEM cleanly and leaks nothing (SQLite's fault
 * injection, in miniature).
 */
#ifndef SHAREHUB_ALLOC_H
#define SHAREHUB_ALLOC_H

#include <stddef.h>

void *shub_malloc(size_t size);
void *shub_calloc(size_t count, size_t size);
void *shub_realloc(void *ptr, size_t size);
void shub_free(void *ptr);
/* Makes the array at *arr (*cap elements of `width` bytes) hold at least
 * `need`, doubling from 16. 0, or SHUB_ENOMEM (the array is unchanged). */
int shub_grow(void **arr, size_t *cap, size_t need, size_t width);

/* Copy of s through shub_malloc; NULL for NULL s or out of memory. */
char *shub_strdup(const char *s);

/* Test hook: after `n` more successful allocations, every allocation fails until
 * reset with a negative n (the default: never fail). Not thread-safe by design:
 * tests use it from one thread. */
void shub_alloc_fail_after(long n);

/* Allocations that failed on purpose since the last shub_alloc_fail_after. */
long shub_alloc_failures(void);

#endif
