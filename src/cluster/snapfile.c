/* cluster/snapfile.c: the files of the cluster module: the snapshot
 * descriptor codec, SHA-256 of snapshot files in bounded chunks, the check
 * of a snapshot file against its descriptor, fsync and directory helpers,
 * the node identity file (DATA/node-id), the status table shared by the
 * module and libraft's zeroing heap. */
#include "cluster_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHUNK (1u << 20)
#define DESC_MAGIC "OSNP"
#define DESC_VERSION 1u
#define DESC_BODY 152 /* bytes covered by the trailing check */

/* ---- status table ---------------------------------------------------------- */

static const char *const status_msg[] = {
#define CLU__MSG(name, msg) msg,
    CLU_ERRNO_MAP(CLU__MSG)
#undef CLU__MSG
};
static const char *const status_names[] = {
#define CLU__NAME(name, msg) #name,
    CLU_ERRNO_MAP(CLU__NAME)
#undef CLU__NAME
};

const char *clu_strerror(int status)
{
    if (status < 0 || status >= CLU__NSTATUS)
        return "unknown cluster status";
    return status_msg[status];
}

const char *clu_status_name(int status)
{
    if (status < 0 || status >= CLU__NSTATUS)
        return "UNKNOWN";
    return status_names[status];
}

const char *clu_role_name(enum clu_role r)
{
    switch (r) {
    case CLU_ROLE_FOLLOWER:
        return "follower";
    case CLU_ROLE_CANDIDATE:
        return "candidate";
    case CLU_ROLE_LEADER:
        return "leader";
    default:
        return "none";
    }
}

int clu_from_raft(int rv)
{
    switch (rv) {
    case 0:
        return CLU_OK;
    case RAFT_NOMEM:
        return CLU_ENOMEM;
    case RAFT_NOTLEADER:
        return CLU_ENOTLEADER;
    case RAFT_LEADERSHIPLOST:
        return CLU_ELEADERSHIPLOST;
    case RAFT_SHUTDOWN:
    case RAFT_CANCELED:
        return CLU_ESHUTDOWN;
    case RAFT_TOOBIG:
        return CLU_ETOOBIG;
    case RAFT_IOERR:
        return CLU_EIO;
    case RAFT_NOSPACE:
        return CLU_ENOSPACE;
    case RAFT_CORRUPT:
    case RAFT_MALFORMED:
        return CLU_ECORRUPT;
    case RAFT_BUSY:
    case RAFT_CANTCHANGE: /* a configuration change is in progress */
        return CLU_EBUSY;
    case RAFT_NOTFOUND:
        return CLU_ENOTFOUND;
    case RAFT_INVALID:
    case RAFT_BADID:
    case RAFT_BADROLE:
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_NAMETOOLONG:
        return CLU_EINVAL;
    default:
        return CLU_ERAFT;
    }
}

/* ---- libraft's heap ------------------------------------------------------------
 * libraft leaves padding bytes of what it writes to disk (entry headers,
 * encoded configurations) uninitialized: heap garbage in the log files and
 * valgrind errors. Every allocation libraft makes is zeroed instead.
 *
 * Tracking (offline log reads, clu_heap_track_begin/_end): the calling
 * thread's libraft allocations are recorded in a pointer set until _end,
 * which frees those still live. libraft 0.15 leaks the entries it had
 * already read when a segment fails to load. */

struct ptrset {
    uintptr_t *slots; /* 0 empty, 1 deleted, else a pointer */
    size_t cap, used; /* used: pointers + deleted slots */
};

static _Thread_local struct ptrset *track;

static size_t ps_slot(const struct ptrset *s, uintptr_t p)
{
    return (size_t)(((p >> 4) * 0x9E3779B97F4A7C15ull) >> 16) & (s->cap - 1);
}

static void ps_add(struct ptrset *s, void *ptr)
{
    if ((s->used + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        struct ptrset n = {calloc(cap, sizeof(uintptr_t)), cap, 0};
        if (!n.slots)
            return; /* untracked: at worst a leak */
        for (size_t i = 0; i < s->cap; i++)
            if (s->slots[i] > 1) {
                size_t j = ps_slot(&n, s->slots[i]);
                while (n.slots[j])
                    j = (j + 1) & (cap - 1);
                n.slots[j] = s->slots[i];
                n.used++;
            }
        free(s->slots);
        *s = n;
    }
    size_t j = ps_slot(s, (uintptr_t)ptr);
    while (s->slots[j] > 1)
        j = (j + 1) & (s->cap - 1);
    if (s->slots[j] == 0)
        s->used++;
    s->slots[j] = (uintptr_t)ptr;
}

static void ps_del(struct ptrset *s, void *ptr)
{
    if (!s->cap)
        return;
    for (size_t j = ps_slot(s, (uintptr_t)ptr); s->slots[j]; j = (j + 1) & (s->cap - 1))
        if (s->slots[j] == (uintptr_t)ptr) {
            s->slots[j] = 1;
            return;
        }
}

static void *tracked(void *p)
{
    if (p && track)
        ps_add(track, p);
    return p;
}

static void untrack(void *p)
{
    if (p && track)
        ps_del(track, p);
}

void clu_heap_track_begin(void)
{
    if (!track)
        track = calloc(1, sizeof *track);
}

size_t clu_heap_track_end(void)
{
    struct ptrset *s = track;
    size_t n = 0;
    track = NULL;
    if (!s)
        return 0;
    for (size_t i = 0; i < s->cap; i++)
        if (s->slots[i] > 1) {
            free((void *)s->slots[i]);
            n++;
        }
    free(s->slots);
    free(s);
    return n;
}

static void *heap_malloc(void *d, size_t n)
{
    (void)d;
    return tracked(calloc(1, n ? n : 1));
}

static void heap_free(void *d, void *p)
{
    (void)d;
    untrack(p);
    free(p);
}

static void *heap_calloc(void *d, size_t n, size_t size)
{
    (void)d;
    return tracked(calloc(n ? n : 1, size ? size : 1));
}

static void *heap_realloc(void *d, void *p, size_t n)
{
    (void)d;
    size_t old = p ? malloc_usable_size(p) : 0;
    untrack(p);
    char *q = realloc(p, n);
    if (!q) {
        if (n)
            tracked(p); /* still allocated */
        return NULL;
    }
    if (n > old)
        memset(q + old, 0, n - old);
    return tracked(q);
}

static void *heap_aligned_alloc(void *d, size_t alignment, size_t size)
{
    (void)d;
    size_t n = (size + alignment - 1) / alignment * alignment;
    void *p = aligned_alloc(alignment, n ? n : alignment);
    if (p)
        memset(p, 0, n);
    return tracked(p);
}

static void heap_aligned_free(void *d, size_t alignment, void *p)
{
    (void)d;
    (void)alignment;
    untrack(p);
    free(p);
}

static struct raft_heap zero_heap = {
    .malloc = heap_malloc,
    .free = heap_free,
    .calloc = heap_calloc,
    .realloc = heap_realloc,
    .aligned_alloc = heap_aligned_alloc,
    .aligned_free = heap_aligned_free,
};

static void heap_install(void)
{
    raft_heap_set(&zero_heap);
}

void clu_heap_init(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, heap_install);
}

/* ---- descriptor -------------------------------------------------------------
 * 160 bytes, big-endian: "OSNP", version u32, index, lsn, size, origin (u64
 * each), sha256[32], name length u16, name[64] zero-padded, 14 reserved zero
 * bytes, then the first 8 bytes of SHA-256 over the 152 bytes before. */

static void put64(unsigned char *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
}

static int sha256_mem(const void *p, size_t n, unsigned char out[32])
{
    unsigned int len = 0;
    return EVP_Digest(p, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0 : -1;
}

static int name_ok(const char *s, size_t n)
{
    if (n == 0 || n >= CLU_SNAP_NAME_MAX || s[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

int clu_desc_encode(const struct clu_snapshot_desc *d, unsigned char out[CLU_DESC_SIZE])
{
    size_t n = strnlen(d->name, CLU_SNAP_NAME_MAX);
    if (!name_ok(d->name, n))
        return CLU_EINVAL;
    memset(out, 0, CLU_DESC_SIZE);
    memcpy(out, DESC_MAGIC, 4);
    out[7] = DESC_VERSION;
    put64(out + 8, d->index);
    put64(out + 16, d->lsn);
    put64(out + 24, d->size);
    put64(out + 32, d->origin);
    memcpy(out + 40, d->sha256, 32);
    out[72] = (unsigned char)(n >> 8);
    out[73] = (unsigned char)n;
    memcpy(out + 74, d->name, n);
    unsigned char h[32];
    if (sha256_mem(out, DESC_BODY, h))
        return CLU_ENOMEM;
    memcpy(out + DESC_BODY, h, 8);
    return CLU_OK;
}

int clu_desc_decode(const void *buf, size_t len, struct clu_snapshot_desc *d)
{
    const unsigned char *p = buf;
    unsigned char h[32];
    if (!buf || len != CLU_DESC_SIZE || memcmp(p, DESC_MAGIC, 4) != 0)
        return CLU_ECORRUPT;
    if (util_get_u32(p + 4) != DESC_VERSION)
        return CLU_ECORRUPT;
    if (sha256_mem(p, DESC_BODY, h) || memcmp(h, p + DESC_BODY, 8) != 0)
        return CLU_ECORRUPT;
    size_t n = util_get_u16(p + 72);
    if (!name_ok((const char *)p + 74, n))
        return CLU_ECORRUPT;
    memset(d, 0, sizeof *d);
    d->index = util_get_u64(p + 8);
    d->lsn = util_get_u64(p + 16);
    d->size = util_get_u64(p + 24);
    d->origin = util_get_u64(p + 32);
    memcpy(d->sha256, p + 40, 32);
    memcpy(d->name, p + 74, n);
    return CLU_OK;
}

/* ---- files ------------------------------------------------------------------ */

int clu_path(char *dst, size_t cap, const char *dir, const char *name, const char *suffix)
{
    int n = snprintf(dst, cap, "%s/%s%s", dir, name, suffix ? suffix : "");
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

static int errno_status(int e)
{
    switch (e) {
    case ENOSPC:
    case EDQUOT:
        return CLU_ENOSPACE;
    case ENOMEM:
        return CLU_ENOMEM;
    case ENOENT:
        return CLU_ENOTFOUND;
    default:
        return CLU_EIO;
    }
}

int clu_file_sha256(const char *path, unsigned char out[32], uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno_status(errno);
    unsigned char *chunk = util_malloc(CHUNK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = CLU_OK;
    uint64_t total = 0;
    if (!chunk || !ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        rc = CLU_ENOMEM;
        goto out;
    }
    for (;;) {
        ssize_t r = read(fd, chunk, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = errno_status(errno);
            goto out;
        }
        if (r == 0)
            break;
        total += (uint64_t)r;
        if (EVP_DigestUpdate(ctx, chunk, (size_t)r) != 1) {
            rc = CLU_ENOMEM;
            goto out;
        }
    }
    unsigned int len = 0;
    if (EVP_DigestFinal_ex(ctx, out, &len) != 1 || len != 32)
        rc = CLU_ENOMEM;
    *size = total;
out:
    EVP_MD_CTX_free(ctx);
    util_free(chunk);
    close(fd);
    return rc;
}

int clu_snapshot_verify(const char *snap_dir, const struct clu_snapshot_desc *d, int hash, char *err,
                        size_t errcap)
{
    char path[CLU_PATH_MAX];
    struct stat st;
    if (clu_path(path, sizeof path, snap_dir, d->name, NULL)) {
        snprintf(err, errcap, "snapshot file path too long");
        return CLU_EINVAL;
    }
    if (stat(path, &st) != 0) {
        int rc = errno_status(errno);
        snprintf(err, errcap, "%s: %s", path, strerror(errno));
        return rc;
    }
    if ((uint64_t)st.st_size != d->size) {
        snprintf(err, errcap, "size %llu, descriptor says %llu", (unsigned long long)st.st_size,
                 (unsigned long long)d->size);
        return CLU_ECORRUPT;
    }
    if (!hash)
        return CLU_OK;
    unsigned char h[32];
    uint64_t size = 0;
    int rc = clu_file_sha256(path, h, &size);
    if (rc) {
        snprintf(err, errcap, "cannot read %s: %s", path, clu_strerror(rc));
        return rc;
    }
    if (size != d->size || memcmp(h, d->sha256, 32) != 0) {
        snprintf(err, errcap, "SHA-256 does not match the descriptor");
        return CLU_ECORRUPT;
    }
    return CLU_OK;
}

int clu_fsync_path(const char *path)
{
    return util_fsync_path(path) ? errno_status(errno) : CLU_OK;
}

int clu_mkdir_p(const char *path)
{
    if (mkdir(path, 0700) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return CLU_OK;
        return CLU_EINVAL;
    }
    return errno_status(errno);
}

/* ---- identity ------------------------------------------------------------------
 * DATA/node-id holds "orbit-node-id <16 hex digits>\n". Generated once from
 * random bytes; never derived from the address, so a node that comes back on
 * another address is still itself. */

static int raft_dir_has_state(const char *raft_dir)
{
    DIR *d = opendir(raft_dir);
    if (!d)
        return 0;
    struct dirent *e;
    int found = 0;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "metadata", 8) == 0 || strncmp(e->d_name, "snapshot-", 9) == 0) {
            found = 1;
            break;
        }
    }
    closedir(d);
    return found;
}

static int read_identity(const char *path, uint64_t *id, char *err, size_t errcap)
{
    char text[64] = {0};
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errcap, "cannot read %s: %s", path, strerror(errno));
        return CLU_EIO;
    }
    ssize_t r = read(fd, text, sizeof text - 1);
    close(fd);
    unsigned long long v = 0;
    char tail = 0;
    if (r <= 0 || sscanf(text, "orbit-node-id %16llx%c", &v, &tail) != 2 || tail != '\n' || v == 0) {
        snprintf(err, errcap, "%s is corrupt (expected \"orbit-node-id <16 hex digits>\")", path);
        return CLU_ECORRUPT;
    }
    *id = v;
    return CLU_OK;
}

int clu_identity(const char *data_dir, const char *raft_dir, uint64_t *id, char *err, size_t errcap)
{
    char path[CLU_PATH_MAX], tmp[CLU_PATH_MAX];
    if (clu_path(path, sizeof path, data_dir, "node-id", NULL) ||
        clu_path(tmp, sizeof tmp, data_dir, "node-id", ".tmp")) {
        snprintf(err, errcap, "data dir path too long");
        return CLU_EINVAL;
    }
    if (access(path, F_OK) == 0)
        return read_identity(path, id, err, errcap);
    if (raft_dir_has_state(raft_dir)) {
        snprintf(err, errcap,
                 "%s is missing but %s holds Raft state: refusing to start with a new identity", path,
                 raft_dir);
        return CLU_ECORRUPT;
    }
    uint64_t v = 0;
    while (v == 0) {
        if (util_random_bytes(&v, sizeof v)) {
            snprintf(err, errcap, "cannot generate a node id");
            return CLU_EIO;
        }
    }
    char text[64];
    int len = snprintf(text, sizeof text, "orbit-node-id %016llx\n", (unsigned long long)v);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || write(fd, text, (size_t)len) != len || fsync(fd) != 0) {
        snprintf(err, errcap, "cannot write %s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        unlink(tmp);
        return errno_status(errno);
    }
    close(fd);
    if (rename(tmp, path) != 0 || clu_fsync_path(data_dir) != CLU_OK) {
        snprintf(err, errcap, "cannot install %s: %s", path, strerror(errno));
        return CLU_EIO;
    }
    *id = v;
    return CLU_OK;
}
