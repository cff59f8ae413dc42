/* util/map.c: string-keyed open-addressing hash map (linear probing with
 * tombstones), used for prepared statements, portals and caches. */
#include "util.h"

#include <string.h>

#define TOMBSTONE ((char *)1)

uint64_t util_hash(const void *p, size_t n)
{
    /* FNV-1a 64 */
    const unsigned char *c = p;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= c[i];
        h *= 1099511628211ULL;
    }
    return h;
}

void map_init(struct map *m)
{
    memset(m, 0, sizeof *m);
}

void map_free(struct map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key && m->slots[i].key != TOMBSTONE)
            util_free(m->slots[i].key);
    util_free(m->slots);
    map_init(m);
}

static struct map_entry *find(const struct map *m, const char *key, uint64_t h)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct map_entry *e = &m->slots[i];
        if (!e->key)
            return NULL;
        if (e->key != TOMBSTONE && e->hash == h && strcmp(e->key, key) == 0)
            return e;
    }
}

void *map_get(const struct map *m, const char *key)
{
    struct map_entry *e = find(m, key, util_hash(key, strlen(key)));
    return e ? e->val : NULL;
}

static int grow(struct map *m)
{
    size_t ncap = m->cap ? m->cap * 2 : 8;
    if (m->count * 2 < m->cap)
        ncap = m->cap; /* mostly tombstones: rehash in place size */
    struct map_entry *ns = util_calloc(ncap, sizeof *ns);
    if (!ns)
        return -1;
    for (size_t i = 0; i < m->cap; i++) {
        struct map_entry *e = &m->slots[i];
        if (!e->key || e->key == TOMBSTONE)
            continue;
        size_t j = e->hash & (ncap - 1);
        while (ns[j].key)
            j = (j + 1) & (ncap - 1);
        ns[j] = *e;
    }
    util_free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

int map_put(struct map *m, const char *key, void *val, void **old)
{
    uint64_t h = util_hash(key, strlen(key));
    struct map_entry *e = find(m, key, h);
    if (old)
        *old = NULL;
    if (e) {
        if (old)
            *old = e->val;
        e->val = val;
        return 0;
    }
    if ((m->used + 1) * 4 >= m->cap * 3 && grow(m))
        return -1;
    char *k = util_strdup(key);
    if (!k)
        return -1;
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key && m->slots[i].key != TOMBSTONE)
        i = (i + 1) & mask;
    if (!m->slots[i].key)
        m->used++;
    m->slots[i].key = k;
    m->slots[i].val = val;
    m->slots[i].hash = h;
    m->count++;
    return 0;
}

void *map_del(struct map *m, const char *key)
{
    struct map_entry *e = find(m, key, util_hash(key, strlen(key)));
    if (!e)
        return NULL;
    void *v = e->val;
    util_free(e->key);
    e->key = TOMBSTONE;
    e->val = NULL;
    m->count--;
    return v;
}

int map_next(const struct map *m, size_t *iter, const char **key, void **val)
{
    while (*iter < m->cap) {
        struct map_entry *e = &m->slots[(*iter)++];
        if (e->key && e->key != TOMBSTONE) {
            if (key)
                *key = e->key;
            if (val)
                *val = e->val;
            return 1;
        }
    }
    return 0;
}
