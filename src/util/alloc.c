/* util/alloc.c: allocation wrappers with an injectable failure point, so
 * tests can make the N-th allocation fail (SQLite/raft-style OOM tests). */
#include "util.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static atomic_long fail_countdown;

void util_fail_after(long n)
{
    atomic_store(&fail_countdown, n);
}

static int should_fail(void)
{
    long v = atomic_load_explicit(&fail_countdown, memory_order_relaxed);
    if (v <= 0)
        return 0;
    return atomic_fetch_sub(&fail_countdown, 1) == 1;
}

void *util_malloc(size_t n)
{
    if (should_fail())
        return NULL;
    return malloc(n ? n : 1);
}

void *util_calloc(size_t n, size_t size)
{
    if (should_fail())
        return NULL;
    return calloc(n ? n : 1, size ? size : 1);
}

void *util_realloc(void *p, size_t n)
{
    if (should_fail())
        return NULL;
    return realloc(p, n ? n : 1);
}

int util_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first)
{
    if (n < *cap)
        return 0;
    size_t nc = *cap ? *cap * 2 : first;
    void *a = util_realloc(*(void **)arr, nc * elem);
    if (!a)
        return -1;
    *(void **)arr = a;
    *cap = nc;
    return 0;
}

char *util_strndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = util_malloc(len + 1);
    if (!d)
        return NULL;
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

char *util_strdup(const char *s)
{
    return util_strndup(s, strlen(s));
}

void util_free(void *p)
{
    free(p);
}
