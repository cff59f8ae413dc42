/* A small state machine for the cluster tests: it records the first 8
 * bytes (big-endian u64) of every applied entry, checks that indexes only
 * grow, and snapshots to a file in 64 KiB chunks (restore reads it back).
 * Used by test_cluster_fixture.c and test_cluster_uv.c. */
#ifndef ORBIT_CLU_TEST_FSM_H
#define ORBIT_CLU_TEST_FSM_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster.h"
#include "util.h"

struct tfsm {
    uint64_t *vals;
    size_t n, cap;
    uint64_t last_index;
    uint64_t applies; /* apply calls */
    uint64_t bytes;   /* entry bytes applied */
    int errors;       /* index order or format violations */
    int nlocal;       /* applies with local != NULL */
    int restores;
    uint64_t restored_index;
    int snapshots, snap_failed;
    int role_changes;
    enum clu_role role;
    int snap_begun;
    unsigned write_delay_ms; /* makes snapshot_write slow */
};

struct tsnap {
    uint64_t *vals;
    size_t n;
    uint64_t index;
    unsigned delay_ms;
};

static void tfsm_free(struct tfsm *f)
{
    free(f->vals);
    memset(f, 0, sizeof *f);
}

static int tfsm_push(struct tfsm *f, uint64_t v)
{
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 1024;
        uint64_t *p = realloc(f->vals, cap * sizeof *p);
        if (!p)
            return -1;
        f->vals = p;
        f->cap = cap;
    }
    f->vals[f->n++] = v;
    return 0;
}

static int tfsm_apply(void *ud, uint64_t index, const void *buf, size_t len, void *local)
{
    struct tfsm *f = ud;
    f->applies++;
    f->bytes += len;
    if (index <= f->last_index || len < 8)
        f->errors++;
    f->last_index = index;
    if (local)
        f->nlocal++;
    return tfsm_push(f, len >= 8 ? util_get_u64(buf) : 0) ? CLU_ENOMEM : 0;
}

static int tfsm_snapshot_begin(void *ud, uint64_t index, void **snap, uint64_t *lsn)
{
    struct tfsm *f = ud;
    struct tsnap *s = calloc(1, sizeof *s);
    if (!s)
        return CLU_ENOMEM;
    if (index < f->last_index)
        f->errors++; /* the state must be the state at index */
    s->n = f->n;
    s->index = index;
    s->delay_ms = f->write_delay_ms;
    f->snap_begun++;
    s->vals = malloc((f->n ? f->n : 1) * sizeof *s->vals);
    if (!s->vals) {
        free(s);
        return CLU_ENOMEM;
    }
    memcpy(s->vals, f->vals, f->n * sizeof *s->vals);
    *snap = s;
    *lsn = f->n;
    return 0;
}

/* File: "TFSM", count u64, then the values, written 8192 at a time. */
static int tfsm_snapshot_write(void *ud, void *snap, const char *path)
{
    struct tsnap *s = snap;
    (void)ud;
    if (s->delay_ms)
        usleep(s->delay_ms * 1000);
    FILE *fp = fopen(path, "wb");
    if (!fp)
        return CLU_EIO;
    unsigned char hdr[12] = {'T', 'F', 'S', 'M'};
    for (int i = 0; i < 8; i++)
        hdr[4 + i] = (unsigned char)(s->n >> (56 - 8 * i));
    int ok = fwrite(hdr, 1, sizeof hdr, fp) == sizeof hdr;
    unsigned char chunk[8192 * 8];
    for (size_t i = 0; ok && i < s->n; i += 8192) {
        size_t k = s->n - i < 8192 ? s->n - i : 8192;
        for (size_t j = 0; j < k; j++)
            for (int b = 0; b < 8; b++)
                chunk[j * 8 + b] = (unsigned char)(s->vals[i + j] >> (56 - 8 * b));
        ok = fwrite(chunk, 8, k, fp) == k;
    }
    if (fclose(fp) != 0)
        ok = 0;
    return ok ? 0 : CLU_EIO;
}

static void tfsm_snapshot_end(void *ud, void *snap, int status, const struct clu_snapshot_desc *d)
{
    struct tfsm *f = ud;
    struct tsnap *s = snap;
    if (status == 0 && d && d->index == s->index)
        f->snapshots++;
    else
        f->snap_failed++;
    free(s->vals);
    free(s);
}

static int tfsm_restore(void *ud, const struct clu_snapshot_desc *d, const char *path)
{
    struct tfsm *f = ud;
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return CLU_EIO;
    unsigned char hdr[12];
    if (fread(hdr, 1, sizeof hdr, fp) != sizeof hdr || memcmp(hdr, "TFSM", 4) != 0) {
        fclose(fp);
        return CLU_ECORRUPT;
    }
    uint64_t n = util_get_u64(hdr + 4);
    f->n = 0;
    unsigned char b[8];
    for (uint64_t i = 0; i < n; i++) {
        if (fread(b, 1, 8, fp) != 8 || tfsm_push(f, util_get_u64(b))) {
            fclose(fp);
            return CLU_ECORRUPT;
        }
    }
    fclose(fp);
    f->last_index = d->index;
    f->restores++;
    f->restored_index = d->index;
    return 0;
}

static void tfsm_role(void *ud, enum clu_role role, uint64_t term)
{
    struct tfsm *f = ud;
    (void)term;
    f->role = role;
    f->role_changes++;
}

static const struct clu_fsm_ops tfsm_ops = {
    .apply = tfsm_apply,
    .snapshot_begin = tfsm_snapshot_begin,
    .snapshot_write = tfsm_snapshot_write,
    .snapshot_end = tfsm_snapshot_end,
    .restore = tfsm_restore,
    .role_changed = tfsm_role,
};

/* 1 when vals are exactly 0..n-1. */
static inline int tfsm_is_sequence(const struct tfsm *f, size_t n)
{
    if (f->n != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (f->vals[i] != i)
            return 0;
    return 1;
}

static inline void put_be64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (56 - 8 * i));
}

#endif
