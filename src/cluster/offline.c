/* cluster/offline.c: reading a stopped node's Raft log (orbitctl txlog, the
 * server's startup repair).
 *
 * libraft's own loader does the reading: a raft_uv io on a private loop,
 * io->init and io->load, then io->close. That loader is not read-only: it
 * may delete a short metadata file, and it closes open segments (truncates
 * them after their last valid batch and renames them to closed segments)
 * or deletes empty ones. So it runs on a shadow directory in $TMPDIR (or
 * /tmp): metadata files and open segments are copied; closed segments and
 * snapshot descriptors, which the loader only opens for reading, are
 * hard-linked (copied when the link fails, e.g. across file systems).
 * Auto-recovery is off: a corrupt closed segment is reported, not renamed
 * away. Nothing in DATA/raft is opened for writing. libraft 0.15 leaks
 * what it had read of a segment that fails to load: the load runs under
 * the heap's allocation tracking (clu_heap_track_*), which frees it. */
#include "cluster_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

enum { SHADOW_SKIP, SHADOW_COPY, SHADOW_LINK };

/* What the shadow needs of a file in DATA/raft. */
static int shadow_kind(const char *name)
{
    if (strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0 ||
        strncmp(name, "open-", 5) == 0)
        return SHADOW_COPY;
    if ((name[0] >= '0' && name[0] <= '9') || strncmp(name, "snapshot-", 9) == 0)
        return SHADOW_LINK;
    return SHADOW_SKIP; /* not libraft's (or its leftovers): never read */
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[CLU_PATH_MAX];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            clu_path(path, sizeof path, dir, e->d_name, NULL) == 0)
            unlink(path);
    if (d)
        closedir(d);
    rmdir(dir);
}

/* Fill the shadow dir from raft_dir; *state = 1 when there is Raft state. */
static int make_shadow(const char *raft_dir, const char *shadow, int *state, char *err, size_t errcap)
{
    DIR *d = opendir(raft_dir);
    struct dirent *e;
    int rc = CLU_OK, metadata = 0, other = 0;
    char src[CLU_PATH_MAX], dst[CLU_PATH_MAX];
    if (!d) {
        snprintf(err, errcap, "cannot list %s: %s", raft_dir, strerror(errno));
        return CLU_EIO;
    }
    while (rc == CLU_OK && (e = readdir(d))) {
        int kind = shadow_kind(e->d_name);
        if (kind == SHADOW_SKIP)
            continue;
        if (clu_path(src, sizeof src, raft_dir, e->d_name, NULL) ||
            clu_path(dst, sizeof dst, shadow, e->d_name, NULL)) {
            snprintf(err, errcap, "path too long in %s", raft_dir);
            rc = CLU_EINVAL;
            break;
        }
        if (strncmp(e->d_name, "metadata", 8) == 0)
            metadata = 1;
        else
            other = 1;
        if (kind == SHADOW_LINK && link(src, dst) == 0)
            continue;
        if (util_copy_file(src, dst)) {
            snprintf(err, errcap, "cannot copy %s to %s: %s", src, dst, strerror(errno));
            rc = errno == ENOSPC ? CLU_ENOSPACE : CLU_EIO;
        }
    }
    closedir(d);
    if (rc == CLU_OK && !metadata && other) {
        snprintf(err, errcap, "%s has segments or snapshots but no metadata1/metadata2", raft_dir);
        rc = CLU_ECORRUPT;
    }
    *state = metadata;
    return rc;
}

static void io_closed(struct raft_io *io)
{
    *(int *)io->data = 1;
}

static void free_loaded(struct raft_snapshot *snap, struct raft_entry *entries, size_t n)
{
    if (snap) {
        raft_configuration_close(&snap->configuration);
        for (unsigned i = 0; i < snap->n_bufs; i++)
            raft_free(snap->bufs[i].base);
        raft_free(snap->bufs);
        raft_free(snap);
    }
    void *last = NULL;
    for (size_t i = 0; i < n; i++) {
        if (entries[i].batch && entries[i].batch != last)
            raft_free(entries[i].batch);
        last = entries[i].batch;
    }
    raft_free(entries);
}

/* Members in an encoded configuration (a CHANGE entry): libraft's format 1
 * is a version byte, then the count as a little-endian uint64 (libraft has
 * no public decoder). 0 when the format is another. */
static unsigned config_servers(const struct raft_buffer *b)
{
    const unsigned char *p = b->base;
    if (b->len < 9 || p[0] != 1)
        return 0;
    uint64_t n = 0;
    for (int i = 8; i >= 1; i--)
        n = n << 8 | p[i];
    return n > 1000000 ? 0 : (unsigned)n;
}

/* The role of server id in an encoded configuration (format 1: a version
 * byte, the count as a little-endian uint64, then per server its id (LE
 * uint64), its address with a NUL and its role byte). -1 when id is not
 * listed, -2 when the encoding is not understood. */
static int config_role(const struct raft_buffer *b, uint64_t id)
{
    const unsigned char *p = b->base, *end = p + b->len;
    unsigned n = config_servers(b);
    if (!n)
        return -2;
    p += 9;
    for (unsigned i = 0; i < n; i++) {
        if (end - p < 8)
            return -2;
        uint64_t sid = 0;
        for (int k = 7; k >= 0; k--)
            sid = sid << 8 | p[k];
        p += 8;
        const unsigned char *nul = memchr(p, 0, (size_t)(end - p));
        if (!nul || end - nul < 2)
            return -2;
        p = nul + 1;
        int role = *p++;
        if (sid == id)
            return role;
    }
    return -1;
}

static int deliver(struct clu_log_info *info, uint64_t start, const struct raft_entry *entries,
                   size_t n, clu_log_fn fn, void *ud)
{
    for (size_t i = 0; i < n && fn; i++) {
        const struct raft_entry *r = &entries[i];
        struct clu_log_entry e = {.index = start + i,
                                  .term = r->term,
                                  .type = r->type,
                                  .buf = r->buf.base,
                                  .len = r->buf.len};
        if (r->type == RAFT_COMMAND && clu_frame_len(r->buf.base, r->buf.len, &e.len)) {
            e.malformed = 1;
            e.len = r->buf.len;
        }
        int rc = fn(ud, info, &e);
        if (rc)
            return rc;
    }
    return CLU_OK;
}

/* Load dir (the shadow, or the real DATA/raft when recovering) with raft_uv
 * and hand the entries to fn; then, when recover is not NULL, append it as
 * the new configuration (libraft's raft_recover does the same). */
static int load_dir(const char *raft_dir, const char *dir, struct clu_log_info *info, clu_log_fn fn,
                    void *ud, const struct raft_configuration *recover, char *err, size_t errcap)
{
    const char *shadow = dir;
    uv_loop_t loop;
    struct raft_uv_transport transport;
    struct raft_io io;
    int closed = 0, rv, rc;
    memset(&transport, 0, sizeof transport);
    memset(&io, 0, sizeof io);
    if (uv_loop_init(&loop)) {
        snprintf(err, errcap, "cannot create an event loop");
        return CLU_ENOMEM;
    }
    if ((rv = raft_uv_tcp_init(&transport, &loop))) {
        snprintf(err, errcap, "raft transport: %s", raft_strerror(rv));
        uv_loop_close(&loop);
        return clu_from_raft(rv);
    }
    if ((rv = raft_uv_init(&io, &loop, shadow, &transport))) {
        snprintf(err, errcap, "raft log %s: %s", raft_dir, io.errmsg);
        raft_uv_tcp_close(&transport);
        uv_loop_close(&loop);
        return clu_from_raft(rv);
    }
    io.data = &closed;
    raft_uv_set_auto_recovery(&io, false);
    clu_heap_track_begin();
    raft_term term = 0;
    raft_id vote = 0;
    struct raft_snapshot *snap = NULL;
    raft_index start = 1;
    struct raft_entry *entries = NULL;
    size_t n = 0;
    rv = io.init(&io, 1, "127.0.0.1:1");
    if (rv == 0)
        rv = io.load(&io, &term, &vote, &snap, &start, &entries, &n);
    if (rv) {
        snprintf(err, errcap, "raft log %s: %s", raft_dir, io.errmsg);
        rc = clu_from_raft(rv);
    } else {
        info->term = term;
        info->voted_for = vote;
        info->entries = n;
        info->first_index = n ? start : 0;
        info->last_index = n ? start + n - 1 : 0;
        if (snap) {
            info->has_snapshot = 1;
            info->snapshot_index = snap->index;
            info->snapshot_term = snap->term;
            info->snapshot_desc_ok =
                snap->n_bufs == 1 &&
                clu_desc_decode(snap->bufs[0].base, snap->bufs[0].len, &info->snapshot_desc) == CLU_OK;
            info->servers = snap->configuration.n;
            info->config_index = snap->configuration_index;
            info->self_role = -1;
            for (unsigned i = 0; i < snap->configuration.n; i++)
                if (info->self_id && snap->configuration.servers[i].id == info->self_id)
                    info->self_role = (int)clu_member_role_of(snap->configuration.servers[i].role);
        }
        for (size_t i = 0; i < n; i++) {
            unsigned k = entries[i].type == RAFT_CHANGE ? config_servers(&entries[i].buf) : 0;
            if (k) {
                info->servers = k;
                info->config_index = start + i;
                int role = info->self_id ? config_role(&entries[i].buf, info->self_id) : -1;
                info->self_role = role >= 0 ? (int)clu_member_role_of(role) : role;
            }
        }
        rc = deliver(info, start, entries, n, fn, ud);
        free_loaded(snap, entries, n);
        if (rc == CLU_OK && recover && (rv = io.recover(&io, recover))) {
            snprintf(err, errcap, "raft log %s: cannot append the new configuration: %s", raft_dir,
                     io.errmsg[0] ? io.errmsg : raft_strerror(rv));
            rc = clu_from_raft(rv);
        }
    }
    io.close(&io, io_closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    if (!closed)
        log_warn("cluster.offline", "msg=\"raft_uv did not report its close\"");
    raft_uv_close(&io);
    raft_uv_tcp_close(&transport);
    size_t leaked = clu_heap_track_end();
    if (leaked)
        log_debug("cluster.offline", "freed=%zu msg=\"allocations libraft left behind\"", leaked);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return rc;
}

int clu_log_read(const char *data_dir, struct clu_log_info *info, clu_log_fn fn, void *ud, char *err,
                 size_t errcap)
{
    char raft_dir[CLU_PATH_MAX], shadow[CLU_PATH_MAX];
    struct stat st;
    memset(info, 0, sizeof *info);
    clu_heap_init();
    if (stat(data_dir, &st) != 0) {
        snprintf(err, errcap, "data directory %s: %s", data_dir, strerror(errno));
        return CLU_ENOTFOUND;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "data directory %s: not a directory", data_dir);
        return CLU_ENOTFOUND;
    }
    if (clu_path(raft_dir, sizeof raft_dir, data_dir, "raft", NULL)) {
        snprintf(err, errcap, "data directory path too long");
        return CLU_EINVAL;
    }
    if (stat(raft_dir, &st) != 0 && errno == ENOENT)
        return CLU_OK; /* never part of a cluster: an empty log */
    const char *tmp = getenv("TMPDIR");
    if (snprintf(shadow, sizeof shadow, "%s/orbit-raftlog-XXXXXX", tmp && *tmp ? tmp : "/tmp") >=
            (int)sizeof shadow ||
        !mkdtemp(shadow)) {
        snprintf(err, errcap, "cannot create a temporary directory in %s: %s",
                 tmp && *tmp ? tmp : "/tmp", strerror(errno));
        return CLU_EIO;
    }
    info->self_role = -1;
    char idpath[CLU_PATH_MAX];
    if (clu_path(idpath, sizeof idpath, data_dir, "node-id", NULL) == 0 && access(idpath, F_OK) == 0) {
        char ierr[256];
        if (clu_identity(data_dir, raft_dir, &info->self_id, ierr, sizeof ierr) != CLU_OK)
            info->self_id = 0; /* the role stays unknown; whoever needs it refuses */
    }
    int rc = clu_check_open_segments(raft_dir, err, errcap);
    if (rc == CLU_OK)
        rc = make_shadow(raft_dir, shadow, &info->has_log, err, errcap);
    if (rc == CLU_OK && info->has_log)
        rc = load_dir(raft_dir, shadow, info, fn, ud, NULL, err, errcap);
    remove_dir(shadow);
    return rc;
}

int clu_recover(const char *data_dir, const char *members, const char *address, uint64_t *id, char *err,
                size_t errcap)
{
    char raft_dir[CLU_PATH_MAX];
    struct stat st;
    if (!data_dir || clu_path(raft_dir, sizeof raft_dir, data_dir, "raft", NULL) ||
        stat(raft_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "%s holds no Raft log (no raft/ directory)", data_dir ? data_dir : "");
        return CLU_ENOTFOUND;
    }
    int rc = clu_identity(data_dir, raft_dir, id, err, errcap);
    if (rc)
        return rc;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    char self[128];
    if (!members) {
        snprintf(self, sizeof self, "%016llx@%s", (unsigned long long)*id, address ? address : "");
        members = self;
    }
    rc = clu_parse_members(members, *id, &conf, err, errcap);
    if (rc == CLU_OK) {
        struct clu_log_info info;
        memset(&info, 0, sizeof info);
        rc = load_dir(raft_dir, raft_dir, &info, NULL, NULL, &conf, err, errcap);
        if (rc == CLU_OK)
            log_warn("cluster.recovered", "id=%016llx members=%s term=%llu last_index=%llu "
                     "msg=\"new configuration forced\"",
                     (unsigned long long)*id, members, (unsigned long long)info.term,
                     (unsigned long long)info.last_index);
    }
    raft_configuration_close(&conf);
    return rc;
}

/* Unlink every file of dir for which keep() is 0, then fsync dir. */
static int wipe_dir(const char *dir, int (*keep)(const char *name), char *err, size_t errcap)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? CLU_OK : (snprintf(err, errcap, "cannot list %s: %s", dir, strerror(errno)), CLU_EIO);
    struct dirent *e;
    char path[CLU_PATH_MAX];
    int rc = CLU_OK;
    while (rc == CLU_OK && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || (keep && keep(e->d_name)))
            continue;
        if (clu_path(path, sizeof path, dir, e->d_name, NULL) || (unlink(path) && errno != ENOENT)) {
            snprintf(err, errcap, "cannot remove %s/%s: %s", dir, e->d_name, strerror(errno));
            rc = CLU_EIO;
        }
    }
    closedir(d);
    if (rc == CLU_OK && clu_fsync_path(dir)) {
        snprintf(err, errcap, "cannot fsync %s: %s", dir, strerror(errno));
        rc = CLU_EIO;
    }
    return rc;
}

static int is_metadata(const char *name)
{
    return strcmp(name, "metadata1") == 0 || strcmp(name, "metadata2") == 0;
}

int clu_log_wipe_check(const char *data_dir, uint64_t config_index, char *err, size_t errcap)
{
    /* A voter's log counts for quorums: never wipe one. The log is read
     * at start, just before the wipe: a promotion may have arrived after
     * the wipe was asked for. */
    struct clu_log_info li;
    int rc = clu_log_read(data_dir, &li, NULL, NULL, err, errcap);
    if (rc != CLU_OK)
        return rc;
    if (!li.has_log || (!li.entries && !li.has_snapshot))
        return CLU_OK; /* nothing to protect */
    if (li.self_role == CLU_MEMBER_VOTER || li.self_role < -1 || !li.self_id) {
        snprintf(err, errcap, "the newest configuration in %s/raft %s: its log must not be wiped", data_dir,
                 li.self_role == CLU_MEMBER_VOTER ? "makes this node a voter" : "does not say what this node is");
        return CLU_EBUSY;
    }
    if (config_index && li.config_index != config_index) {
        snprintf(err, errcap, "the configuration changed (index %llu, not %llu) since the wipe was asked for",
                 (unsigned long long)li.config_index, (unsigned long long)config_index);
        return CLU_EBUSY;
    }
    return CLU_OK;
}

int clu_log_wipe(const char *data_dir, char *err, size_t errcap)
{
    char raft_dir[CLU_PATH_MAX], snap_dir[CLU_PATH_MAX];
    if (clu_path(raft_dir, sizeof raft_dir, data_dir, "raft", NULL) ||
        clu_path(snap_dir, sizeof snap_dir, data_dir, "snapshots", NULL)) {
        snprintf(err, errcap, "path too long: %s", data_dir);
        return CLU_EINVAL;
    }
    int rc;
    rc = wipe_dir(raft_dir, is_metadata, err, errcap);
    return rc == CLU_OK ? wipe_dir(snap_dir, NULL, err, errcap) : rc;
}
