/*
 * alloc: see include/sharehub/alloc.h. The countdown is process-wide on
 * purpose (it is a test hook, not a feature) and costs one branch per call.
 */
#include "sharehub/alloc.h"
#include "sharehub/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static long countdown = -1; /* < 0: never fail */
static long failures;

static int should_fail(void)
{
    if (countdown < 0)
        return 0;
    if (countdown == 0) {
        failures++;
        return 1;
    }
    countdown--;
    return 0;
}

void shub_alloc_fail_after(long n)
{
    countdown = n;
    failures = 0;
}

long shub_alloc_failures(void)
{
    return failures;
}

void *shub_malloc(size_t size)
{
    return should_fail() ? NULL : malloc(size ? size : 1);
}

void *shub_calloc(size_t count, size_t size)
{
    return should_fail() ? NULL : calloc(count ? count : 1, size ? size : 1);
}

void *shub_realloc(void *ptr, size_t size)
{
    return should_fail() ? NULL : realloc(ptr, size ? size : 1);
}

void shub_free(void *ptr)
{
    free(ptr);
}

int shub_grow(void **arr, size_t *cap, size_t need, size_t width)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need) {
        if (n > SIZE_MAX / 2)
            return SHUB_ENOMEM;
        n *= 2;
    }
    if (width && n > SIZE_MAX / width)
        return SHUB_ENOMEM;
    void *p = shub_realloc(*arr, n * width);
    if (!p)
        return SHUB_ENOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

char *shub_strdup(const char *s)
{
    if (!s)
        return NULL;
    size_t len = strlen(s);
    char *copy = shub_malloc(len + 1);
    if (copy)
        memcpy(copy, s, len + 1);
    return copy;
}
