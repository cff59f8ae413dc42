/* cluster/segcheck.c: telling a torn log tail from damage in the middle.
 *
 * libraft's loader cuts an open segment back at its first batch that fails
 * a checksum, whatever follows it. After a crash that is right: the write
 * in flight was never acknowledged, and the batches it tore are the last
 * ones. But a bad batch with a valid batch after it is damage to records
 * that were written and acknowledged (a disk, a stray write, a hand):
 * cutting there would drop committed records without a word. So before
 * the loader runs (clu_log_read, at every start and in `txlog check`),
 * the open segments are read here with the loader's own format:
 *
 *   segment: u64 format (1; 2 adds a u64 first index), then batches
 *   batch:   u32 header checksum, u32 data checksum,
 *            header = u64 entry count, per entry u64 term, u8 type,
 *                     3 unused bytes, u32 size (a multiple of 8),
 *            data   = the entries' payloads, back to back
 *
 * all little-endian, checksums CRC-32 (polynomial 0x04C11DB7, most
 * significant bit first, initial value 0, no final inversion). A bad batch
 * followed by nothing but zeros, or by bytes in which no valid batch starts
 * at any 8-byte boundary, is a torn tail (logged, then cut by the loader);
 * a valid batch after it, in the same open segment or a later one, stops
 * the node with the file and offset. */
#include "cluster_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i << 24;
        for (int k = 0; k < 8; k++)
            c = (c & 0x80000000u) ? (c << 1) ^ 0x04C11DB7u : c << 1;
        crc_table[i] = c;
    }
}

static uint32_t seg_crc(const unsigned char *p, size_t n)
{
    uint32_t c = 0;
    while (n--)
        c = (c << 8) ^ crc_table[((c >> 24) ^ *p++) & 0xff];
    return c;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t le64(const unsigned char *p)
{
    return (uint64_t)le32(p) | ((uint64_t)le32(p + 4) << 32);
}

/* The size of the valid batch starting at off, or 0 when none does. */
static size_t batch_at(const unsigned char *b, size_t len, size_t off)
{
    if (off > len || len - off < 16)
        return 0;
    uint64_t n = le64(b + off + 8);
    if (n == 0 || n > (len - off - 16) / 16)
        return 0;
    size_t hdr = 8 + 16 * (size_t)n;
    /* the cheap check first (a search past a bad batch tries every 8-byte
     * boundary): entry types are 1-3 (libraft leaves the three bytes after
     * the type unwritten, so they prove nothing) */
    uint64_t data = 0;
    for (uint64_t i = 0; i < n; i++) {
        const unsigned char *e = b + off + 16 + 16 * i;
        if (e[8] < 1 || e[8] > 3)
            return 0;
        data += le32(e + 12);
    }
    if (seg_crc(b + off + 8, hdr) != le32(b + off))
        return 0;
    if (data > len - off - 8 - hdr)
        return 0;
    if (seg_crc(b + off + 8 + hdr, (size_t)data) != le32(b + off + 4))
        return 0;
    return 8 + hdr + (size_t)data;
}

static int all_zero(const unsigned char *b, size_t from, size_t len)
{
    for (size_t i = from; i < len; i++)
        if (b[i])
            return 0;
    return 1;
}

static int read_whole(const char *path, unsigned char **out, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0)
        return -1;
    if (fstat(fd, &st) != 0 || st.st_size < 0) {
        close(fd);
        return -1;
    }
    size_t n = (size_t)st.st_size, got = 0;
    unsigned char *b = util_malloc(n ? n : 1);
    if (!b) {
        close(fd);
        errno = ENOMEM;
        return -1;
    }
    while (got < n) {
        ssize_t r = read(fd, b + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    *out = b;
    *len = got;
    return 0;
}

static int by_counter(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int clu_check_open_segments(const char *raft_dir, char *err, size_t errcap)
{
    pthread_once(&crc_once, crc_init);
    DIR *d = opendir(raft_dir);
    if (!d)
        return CLU_OK; /* the loader reports what it cannot read */
    uint64_t *counters = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    int rc = CLU_OK;
    while ((e = readdir(d))) {
        unsigned long long c;
        int used = 0;
        if (sscanf(e->d_name, "open-%llu%n", &c, &used) != 1 || e->d_name[used] != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            uint64_t *nc = util_realloc(counters, ncap * sizeof *nc);
            if (!nc) {
                rc = CLU_ENOMEM;
                snprintf(err, errcap, "out of memory listing %s", raft_dir);
                break;
            }
            counters = nc;
            cap = ncap;
        }
        counters[n++] = c;
    }
    closedir(d);
    if (rc == CLU_OK && n)
        qsort(counters, n, sizeof *counters, by_counter);
    char torn_in[CLU_PATH_MAX] = "";
    size_t torn_at = 0;
    for (size_t i = 0; rc == CLU_OK && i < n; i++) {
        char name[64], path[CLU_PATH_MAX];
        snprintf(name, sizeof name, "open-%llu", (unsigned long long)counters[i]);
        if (clu_path(path, sizeof path, raft_dir, name, NULL))
            continue;
        unsigned char *b = NULL;
        size_t len = 0;
        if (read_whole(path, &b, &len))
            continue; /* the loader reports it */
        uint64_t format = len >= 8 ? le64(b) : 0;
        size_t off = format == 1 ? 8 : format == 2 ? 16 : 0;
        if (off == 0 || off > len) {
            util_free(b);
            continue; /* empty, never written, or not a format this reads: the loader decides */
        }
        if (torn_in[0]) {
            /* an earlier open segment ended in a torn tail: nothing valid may follow */
            if (batch_at(b, len, off)) {
                snprintf(err, errcap,
                         "raft log %s: open segment %s has a batch at byte %zu that fails its checksum, "
                         "and the later open segment %s holds valid records: this looks like damage to written "
                         "records, not a torn write; the node does not start rather than drop them. To accept "
                         "losing them: orbitctl txlog cut --data-dir DIR --segment %s --offset %zu --force "
                         "(docs/cluster.md, \"A damaged log\")",
                         raft_dir, torn_in, torn_at, name, name, off);
                rc = CLU_ECORRUPT;
            }
            util_free(b);
            continue;
        }
        size_t sz;
        while ((sz = batch_at(b, len, off)) > 0)
            off += sz;
        if (off < len && !all_zero(b, off, len)) {
            size_t next = 0;
            for (size_t y = off + 8; y + 16 <= len && !next; y += 8)
                if (batch_at(b, len, y))
                    next = y;
            if (next) {
                snprintf(err, errcap,
                         "raft log %s: open segment %s: the batch at byte %zu fails its checksum but a valid "
                         "batch follows at byte %zu: this looks like damage to written records, not a torn "
                         "write; the node does not start rather than drop the records after it. To accept "
                         "losing them: orbitctl txlog cut --data-dir DIR --segment %s --offset %zu --force "
                         "(docs/cluster.md, \"A damaged log\")",
                         raft_dir, name, off, next, name, off);
                rc = CLU_ECORRUPT;
            } else {
                log_warn("cluster.log_torn_tail", "file=%s offset=%zu bytes=%zu msg=\"the last write before "
                         "the stop was torn (never acknowledged): the log is cut back to byte %zu\"",
                         name, off, len - off, off);
                util_strlcpy(torn_in, name, sizeof torn_in);
                torn_at = off;
            }
        }
        util_free(b);
    }
    util_free(counters);
    return rc;
}
