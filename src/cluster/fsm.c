/* cluster/fsm.c: the libraft FSM glue. Turns the integrator's clu_fsm_ops
 * into a struct raft_fsm whose snapshots are files (libraft only stores and
 * sends a 160-byte descriptor), and wraps the raft_io receive path so that a
 * follower never hands libraft a snapshot whose file it does not hold.
 *
 * Snapshot taking (cur.state): IDLE -> TAKING in fsm_snapshot (loop thread,
 * state == index: ops->snapshot_begin); the file is written by
 * ops->snapshot_write on the thread pool (fsm_snapshot_async) or inline when
 * the raft_io has no async work; libraft stores the descriptor; then
 * fsm_snapshot_finalize (loop) -> IDLE, keeps the file on success, deletes
 * it otherwise, and calls ops->snapshot_end.
 *
 * Snapshot installing (follower): recv_wrap sees InstallSnapshot; if
 * DATA/snapshots/<name> is here with the right size and SHA-256 the message
 * goes to libraft (which persists the descriptor and calls fsm_restore),
 * otherwise it is dropped and the fetch hook asked for the file; libraft's
 * leader resends after install_snapshot_timeout. */
#include "cluster_int.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define RETRY_MS 1000 /* after a failed snapshot, wait before the next try */

static uint64_t fsm_time(struct clu_fsm *g)
{
    return g->raft && g->raft->io && g->raft->io->time ? g->raft->io->time(g->raft->io) : 0;
}

/* ---- file bookkeeping ------------------------------------------------------- */

static int is_verified(struct clu_fsm *g, const char *name)
{
    for (unsigned i = 0; i < ARRAY_LEN(g->verified); i++)
        if (g->verified[i][0] && strcmp(g->verified[i], name) == 0)
            return 1;
    return 0;
}

static void mark_verified(struct clu_fsm *g, const char *name)
{
    if (is_verified(g, name))
        return;
    util_strlcpy(g->verified[g->verified_next], name, CLU_SNAP_NAME_MAX);
    g->verified_next = (g->verified_next + 1) % ARRAY_LEN(g->verified);
}

static void remove_file(struct clu_fsm *g, const char *name, const char *suffix)
{
    char path[CLU_PATH_MAX];
    if (clu_path(path, sizeof path, g->snap_dir, name, suffix) == 0 && unlink(path) == 0)
        log_debug("cluster.snapshot_gc", "file=%s%s", name, suffix ? suffix : "");
}

/* The file name becomes the newest kept; the oldest kept one goes. */
static void keep_add(struct clu_fsm *g, const char *name)
{
    if (strcmp(g->keep[0], name) == 0)
        return;
    char old[CLU_SNAP_NAME_MAX];
    util_strlcpy(old, g->keep[1], sizeof old);
    util_strlcpy(g->keep[1], g->keep[0], CLU_SNAP_NAME_MAX);
    util_strlcpy(g->keep[0], name, CLU_SNAP_NAME_MAX);
    if (old[0] && strcmp(old, g->keep[0]) != 0 && strcmp(old, g->keep[1]) != 0)
        remove_file(g, old, NULL);
}

/* A partial download (NAME.fetch). */
static int is_partial(const char *name)
{
    size_t len = strlen(name);
    return len > 6 && strcmp(name + len - 6, ".fetch") == 0;
}

void clu_fsm_gc(struct clu_fsm *g)
{
    DIR *d = opendir(g->snap_dir);
    if (!d)
        return;
    struct dirent *e;
    char names[64][CLU_SNAP_NAME_MAX];
    int n = 0;
    while ((e = readdir(d)) && n < 64) {
        if (strncmp(e->d_name, "snap-", 5) != 0 || strlen(e->d_name) >= CLU_SNAP_NAME_MAX)
            continue;
        if (is_partial(e->d_name))
            continue; /* a download: resumed or removed when the next one starts */
        if (strcmp(e->d_name, g->keep[0]) == 0 || strcmp(e->d_name, g->keep[1]) == 0)
            continue;
        util_strlcpy(names[n++], e->d_name, CLU_SNAP_NAME_MAX);
    }
    closedir(d);
    for (int i = 0; i < n; i++)
        remove_file(g, names[i], NULL);
}

/* Is the descriptor's file here, complete and intact? Hashes it when this
 * process has not verified it yet. */
static int file_ready(struct clu_fsm *g, const struct clu_snapshot_desc *d, int *status)
{
    char err[256];
    int hash = g->verify && !is_verified(g, d->name);
    uint64_t t0 = util_now_ns();
    *status = clu_snapshot_verify(g->snap_dir, d, hash, err, sizeof err);
    if (*status != CLU_OK) {
        if (*status != CLU_ENOTFOUND && *status != CLU_EINVAL)
            log_error("cluster.snapshot", "file=%s msg=\"%s\"", d->name, err);
        return 0;
    }
    if (hash) {
        log_info("cluster.snapshot_verified", "file=%s bytes=%llu ms=%.1f", d->name,
                 (unsigned long long)d->size, (double)(util_now_ns() - t0) / 1e6);
        mark_verified(g, d->name);
    }
    return 1;
}

/* ---- apply ------------------------------------------------------------------- */

static int fsm_apply(struct raft_fsm *rf, const struct raft_buffer *buf, void **result)
{
    struct clu_fsm *g = rf->data;
    /* libraft sets last_applied after apply returns: this entry is next. */
    uint64_t index = raft_last_applied(g->raft) + 1;
    void *local = g->hooks.local_lookup ? g->hooks.local_lookup(g->hooks.owner, index) : NULL;
    size_t len;
    *result = NULL;
    if (clu_frame_len(buf->base, buf->len, &len)) {
        log_error("cluster.apply_failed", "index=%llu bytes=%zu msg=\"malformed entry (bad framing); "
                  "this node stops applying\"",
                  (unsigned long long)index, buf->len);
        return RAFT_CORRUPT;
    }
    int rc = g->ops->apply(g->ud, index, buf->base, len, local);
    if (rc) {
        log_error("cluster.apply_failed", "index=%llu status=%d msg=\"the FSM refused a committed "
                  "entry; this node stops applying\"",
                  (unsigned long long)index, rc);
        return RAFT_IOERR;
    }
    if (g->hooks.applied)
        g->hooks.applied(g->hooks.owner, buf->len);
    return 0;
}

/* ---- snapshot taking ------------------------------------------------------------ */

/* Write, fsync, hash and rename the file; encode the descriptor into base.
 * Runs on the thread pool (or inline): touches only g->cur and the files. */
static void write_snapshot(struct clu_fsm *g, void *base)
{
    char tmp[CLU_PATH_MAX], final[CLU_PATH_MAX];
    struct clu_snapshot_desc *d = &g->cur.desc;
    int rc = CLU_OK;
    if (clu_path(tmp, sizeof tmp, g->snap_dir, d->name, ".tmp") ||
        clu_path(final, sizeof final, g->snap_dir, d->name, NULL)) {
        g->cur.status = CLU_EINVAL;
        return;
    }
    unlink(tmp);
    rc = g->ops->snapshot_write(g->ud, g->cur.snap, tmp);
    if (rc == CLU_OK)
        rc = clu_fsync_path(tmp);
    if (rc == CLU_OK)
        rc = clu_file_sha256(tmp, d->sha256, &d->size);
    if (rc == CLU_OK && rename(tmp, final) != 0)
        rc = CLU_EIO;
    if (rc == CLU_OK) {
        g->cur.created = 1;
        rc = clu_fsync_path(g->snap_dir);
    }
    if (rc == CLU_OK)
        rc = clu_desc_encode(d, base);
    if (rc != CLU_OK && !g->cur.created)
        unlink(tmp);
    g->cur.status = rc;
}

static void snapshot_abort(struct clu_fsm *g, int status)
{
    if (g->cur.created)
        remove_file(g, g->cur.desc.name, NULL);
    void *snap = g->cur.snap;
    g->cur.snap = NULL;
    g->cur.state = SNAP_IDLE;
    g->cur.created = 0;
    g->next_try = fsm_time(g) + RETRY_MS;
    log_warn("cluster.snapshot_failed", "index=%llu status=%s", (unsigned long long)g->cur.index,
             clu_status_name(status));
    g->ops->snapshot_end(g->ud, snap, status, NULL);
}

static int fsm_snapshot(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct clu_fsm *g = rf->data;
    if (g->cur.state != SNAP_IDLE || fsm_time(g) < g->next_try)
        return RAFT_BUSY;
    uint64_t index = raft_last_applied(g->raft);
    void *snap = NULL;
    uint64_t lsn = 0;
    int rc = g->ops->snapshot_begin(g->ud, index, &snap, &lsn);
    if (rc) {
        if (rc != CLU_EBUSY) {
            log_warn("cluster.snapshot_failed", "index=%llu status=%s stage=begin",
                     (unsigned long long)index, clu_status_name(rc));
            g->next_try = fsm_time(g) + RETRY_MS;
        }
        return RAFT_BUSY; /* libraft tries again with a later entry */
    }
    struct raft_buffer *arr = raft_malloc(sizeof *arr);
    void *base = raft_calloc(1, CLU_DESC_SIZE);
    if (!arr || !base) {
        raft_free(arr);
        raft_free(base);
        g->ops->snapshot_end(g->ud, snap, CLU_ENOMEM, NULL);
        return RAFT_BUSY;
    }
    arr[0].base = base;
    arr[0].len = CLU_DESC_SIZE;
    memset(&g->cur, 0, sizeof g->cur);
    g->cur.state = SNAP_TAKING;
    g->cur.index = index;
    g->cur.snap = snap;
    g->cur.t0 = util_now_ns();
    g->cur.desc.index = index;
    g->cur.desc.lsn = lsn;
    g->cur.desc.origin = g->node_id;
    snprintf(g->cur.desc.name, CLU_SNAP_NAME_MAX, g->witness ? "snap-%020llu-%016llx-witness.db"
                                                             : "snap-%020llu-%016llx.db",
             (unsigned long long)index,
             (unsigned long long)g->node_id);
    if (!g->async) {
        write_snapshot(g, base);
        if (g->cur.status) {
            raft_free(base);
            raft_free(arr);
            snapshot_abort(g, g->cur.status);
            return RAFT_BUSY;
        }
    }
    *bufs = arr;
    *n_bufs = 1;
    return 0;
}

static int fsm_snapshot_async(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct clu_fsm *g = rf->data;
    (void)n_bufs;
    write_snapshot(g, (*bufs)[0].base);
    return g->cur.status ? RAFT_IOERR : 0;
}

static int fsm_snapshot_finalize(struct raft_fsm *rf, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct clu_fsm *g = rf->data;
    if (*bufs) {
        for (unsigned i = 0; i < *n_bufs; i++)
            raft_free((*bufs)[i].base);
        raft_free(*bufs);
    }
    *bufs = NULL;
    *n_bufs = 0;
    if (g->cur.state != SNAP_TAKING)
        return 0;
    uint64_t index = g->cur.index;
    int status = g->cur.status;
    /* libraft compacts its in-memory log before finalize when the
     * descriptor was stored; anything else means the put failed. */
    if (status == CLU_OK && g->raft->log.snapshot.last_index != index)
        status = CLU_EIO;
    if (status != CLU_OK) {
        snapshot_abort(g, status);
    } else {
        struct clu_snapshot_desc d = g->cur.desc;
        void *snap = g->cur.snap;
        keep_add(g, d.name);
        mark_verified(g, d.name);
        g->cur.snap = NULL;
        g->cur.state = SNAP_IDLE;
        log_info("cluster.snapshot", "index=%llu file=%s bytes=%llu ms=%.1f",
                 (unsigned long long)index, d.name, (unsigned long long)d.size,
                 (double)(util_now_ns() - g->cur.t0) / 1e6);
        g->ops->snapshot_end(g->ud, snap, CLU_OK, &d);
    }
    if (g->hooks.snapshot_done)
        g->hooks.snapshot_done(g->hooks.owner, index, status);
    return 0;
}

/* ---- restore ------------------------------------------------------------------ */

static int fsm_restore(struct raft_fsm *rf, struct raft_buffer *buf)
{
    struct clu_fsm *g = rf->data;
    struct clu_snapshot_desc d;
    char path[CLU_PATH_MAX];
    int status;
    if (clu_desc_decode(buf->base, buf->len, &d) != CLU_OK) {
        log_error("cluster.restore_failed", "msg=\"snapshot descriptor is corrupt\" bytes=%zu",
                  buf->len);
        return RAFT_CORRUPT;
    }
    if (clu_path(path, sizeof path, g->snap_dir, d.name, NULL))
        return RAFT_NAMETOOLONG;
    if (!g->witness && !file_ready(g, &d, &status)) { /* a witness keeps no state: no file needed */
        log_error("cluster.restore_failed", "index=%llu file=%s status=%s",
                  (unsigned long long)d.index, path, clu_status_name(status));
        return status == CLU_ENOTFOUND ? RAFT_NOTFOUND : RAFT_CORRUPT;
    }
    uint64_t t0 = util_now_ns();
    int rc = g->ops->restore(g->ud, &d, path);
    if (rc) {
        log_error("cluster.restore_failed", "index=%llu file=%s status=%s",
                  (unsigned long long)d.index, d.name, clu_status_name(rc));
        return RAFT_IOERR;
    }
    log_info("cluster.restore", "index=%llu lsn=%llu file=%s bytes=%llu ms=%.1f",
             (unsigned long long)d.index, (unsigned long long)d.lsn, d.name,
             (unsigned long long)d.size, (double)(util_now_ns() - t0) / 1e6);
    keep_add(g, d.name);
    mark_verified(g, d.name);
    raft_free(buf->base); /* on success the FSM owns the buffer */
    if (g->hooks.applied)
        g->hooks.applied(g->hooks.owner, 0);
    return 0;
}

/* ---- the snapshot gate and fetching ---------------------------------------------- */

static void release_held(struct clu_fsm *g, int ok);

/* Remove partial downloads of other snapshots (keep = the one to fetch:
 * an interrupted download of it resumes where it stopped). */
static void drop_other_partials(struct clu_fsm *g, const char *keep)
{
    char path[CLU_PATH_MAX], mine[CLU_SNAP_NAME_MAX + 8];
    snprintf(mine, sizeof mine, "%s.fetch", keep);
    DIR *dir = opendir(g->snap_dir);
    if (!dir)
        return;
    for (struct dirent *e; (e = readdir(dir));) {
        if (is_partial(e->d_name) && strcmp(e->d_name, mine) != 0 &&
            clu_path(path, sizeof path, g->snap_dir, e->d_name, NULL) == 0)
            unlink(path);
    }
    closedir(dir);
}

static void start_fetch(struct clu_fsm *g, uint64_t from, const char *addr,
                        const struct clu_snapshot_desc *d)
{
    if (g->fetch.active)
        return; /* one at a time; the leader resends */
    if (!g->fetch_fn) {
        if (strcmp(g->fetch.warned, d->name) != 0) {
            util_strlcpy(g->fetch.warned, d->name, CLU_SNAP_NAME_MAX);
            log_warn("cluster.snapshot_missing",
                     "file=%s index=%llu from=%016llx msg=\"no snapshot transfer configured; "
                     "this follower cannot catch up\"",
                     d->name, (unsigned long long)d->index, (unsigned long long)from);
        }
        return;
    }
    char dst[CLU_PATH_MAX];
    if (clu_path(dst, sizeof dst, g->snap_dir, d->name, ".fetch"))
        return;
    drop_other_partials(g, d->name);
    g->fetch.active = 1;
    g->fetch.desc = *d;
    log_info("cluster.snapshot_fetch", "file=%s index=%llu bytes=%llu from=%016llx", d->name,
             (unsigned long long)d->index, (unsigned long long)d->size, (unsigned long long)from);
    g->fetch_fn(g->fetch_ud, from, addr, d, dst);
}

void clu_fsm_fetch_done(struct clu_fsm *g, const char *name, int status)
{
    if (!g->fetch.active || strcmp(name, g->fetch.desc.name) != 0)
        return;
    struct clu_snapshot_desc d = g->fetch.desc;
    g->fetch.active = 0;
    char tmp[CLU_PATH_MAX], final[CLU_PATH_MAX];
    if (clu_path(tmp, sizeof tmp, g->snap_dir, name, ".fetch") ||
        clu_path(final, sizeof final, g->snap_dir, name, NULL))
        return;
    unsigned char h[32];
    uint64_t size = 0;
    if (status == CLU_OK)
        status = clu_file_sha256(tmp, h, &size);
    if (status == CLU_OK && (size != d.size || memcmp(h, d.sha256, 32) != 0))
        status = CLU_ECORRUPT;
    if (status == CLU_OK && (clu_fsync_path(tmp) || rename(tmp, final) != 0))
        status = CLU_EIO;
    if (status == CLU_OK)
        status = clu_fsync_path(g->snap_dir);
    if (status != CLU_OK) {
        if (status != CLU_EIO) /* an interrupted transfer resumes from what arrived */
            unlink(tmp);
        log_warn("cluster.snapshot_fetch_failed", "file=%s status=%s", name, clu_status_name(status));
        release_held(g, 0);
        return;
    }
    mark_verified(g, name);
    log_info("cluster.snapshot_fetched", "file=%s bytes=%llu", name, (unsigned long long)size);
    release_held(g, 1);
}

static void drop_message(struct raft_message *m);

/* Keep m (InstallSnapshot for the file being fetched) until the fetch ends. */
static void hold_message(struct clu_fsm *g, struct raft_message *m)
{
    if (g->fetch.held)
        drop_message(&g->fetch.msg);
    g->fetch.msg = *m;
    util_strlcpy(g->fetch.msg_address, m->server_address ? m->server_address : "",
                 sizeof g->fetch.msg_address);
    g->fetch.msg.server_address = g->fetch.msg_address; /* libraft's points into the stream */
    g->fetch.held = 1;
}

/* The fetch ended: pass the held message on (ok) or free it. */
static void release_held(struct clu_fsm *g, int ok)
{
    if (!g->fetch.held)
        return;
    struct raft_message m = g->fetch.msg;
    m.server_address = g->fetch.msg_address;
    g->fetch.held = 0;
    if (ok && !g->closing && g->raft && g->raft_recv) {
        g->raft_recv(g->raft->io, &m);
        if (g->hooks.after_event)
            g->hooks.after_event(g->hooks.owner);
    } else {
        drop_message(&m);
    }
}

/* Free what a received message owns, as libraft does for messages it
 * ignores. */
static void drop_message(struct raft_message *m)
{
    if (m->type == RAFT_IO_INSTALL_SNAPSHOT) {
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        m->install_snapshot.data.base = NULL;
    } else if (m->type == RAFT_IO_APPEND_ENTRIES && m->append_entries.entries) {
        void *last = NULL;
        for (unsigned i = 0; i < m->append_entries.n_entries; i++) {
            void *batch = m->append_entries.entries[i].batch;
            if (batch && batch != last)
                raft_free(batch);
            last = batch;
        }
        raft_free(m->append_entries.entries);
        m->append_entries.entries = NULL;
    }
}

/* 1 when libraft may see this InstallSnapshot now. */
static int gate_pass(struct clu_fsm *g, struct raft_message *m)
{
    struct clu_snapshot_desc d;
    int status;
    const struct raft_buffer *b = &m->install_snapshot.data;
    if (clu_desc_decode(b->base, b->len, &d) != CLU_OK) {
        log_error("cluster.snapshot", "from=%016llx msg=\"dropping a snapshot with a corrupt "
                  "descriptor\"",
                  (unsigned long long)m->server_id);
        return 0;
    }
    if (g->witness)
        return 1; /* it takes the index and term, not the state */
    if (clu_snapshot_is_witness(d.name)) {
        /* a witness leads (briefly: it hands leadership to a voter with
         * data) and offers a snapshot with nothing in it: wait for that */
        if (strcmp(g->refused, d.name) != 0) {
            util_strlcpy(g->refused, d.name, sizeof g->refused);
            log_warn("cluster.snapshot_refused", "file=%s from=%016llx msg=\"a witness offers a snapshot "
                     "without data; waiting for a voter with data to lead\"",
                     d.name, (unsigned long long)m->server_id);
        }
        return 0;
    }
    if (file_ready(g, &d, &status))
        return 1;
    if (status == CLU_ECORRUPT)
        remove_file(g, d.name, NULL);
    start_fetch(g, m->server_id, m->server_address, &d);
    if (file_ready(g, &d, &status)) /* the fetch finished inline */
        return 1;
    if (g->fetch.active && strcmp(g->fetch.desc.name, d.name) == 0) {
        hold_message(g, m);
        m->install_snapshot.data.base = NULL; /* now owned by the held copy */
        m->install_snapshot.conf.servers = NULL;
        m->install_snapshot.conf.n = 0;
    }
    return 0;
}

/* ---- raft_io wrapping --------------------------------------------------------------- */

static void tick_wrap(struct raft_io *io)
{
    struct raft *r = io->data;
    struct clu_fsm *g = r->data;
    g->raft_tick(io);
    if (g->hooks.after_event)
        g->hooks.after_event(g->hooks.owner);
}

static void recv_wrap(struct raft_io *io, struct raft_message *m)
{
    struct raft *r = io->data;
    struct clu_fsm *g = r->data;
    if (g->closing || (m->type == RAFT_IO_INSTALL_SNAPSHOT && !gate_pass(g, m)))
        drop_message(m);
    else
        g->raft_recv(io, m);
    if (g->hooks.after_event)
        g->hooks.after_event(g->hooks.owner);
}

static int start_wrap(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick, raft_io_recv_cb recv)
{
    struct raft *r = io->data;
    struct clu_fsm *g = r->data;
    g->raft_tick = tick;
    g->raft_recv = recv;
    return g->io_start(io, msecs, tick_wrap, recv_wrap);
}

/* ---- object ------------------------------------------------------------------------ */

int clu_fsm_new(const struct clu_fsm_ops *ops, void *ud, const char *snap_dir, uint64_t node_id,
                struct clu_fsm **out)
{
    *out = NULL;
    clu_heap_init();
    if (!ops || !ops->apply || !ops->snapshot_begin || !ops->snapshot_write || !ops->snapshot_end ||
        !ops->restore || !snap_dir || node_id == 0)
        return CLU_EINVAL;
    struct clu_fsm *g = util_calloc(1, sizeof *g);
    if (!g)
        return CLU_ENOMEM;
    if (strlen(snap_dir) >= sizeof g->snap_dir - CLU_SNAP_NAME_MAX - 8) {
        util_free(g);
        return CLU_EINVAL;
    }
    util_strlcpy(g->snap_dir, snap_dir, sizeof g->snap_dir);
    g->ops = ops;
    g->ud = ud;
    g->node_id = node_id;
    g->verify = 1;
    g->rfsm.version = 2; /* raised to 3 by attach when the raft_io has async work */
    g->rfsm.data = g;
    g->rfsm.apply = fsm_apply;
    g->rfsm.snapshot = fsm_snapshot;
    g->rfsm.restore = fsm_restore;
    g->rfsm.snapshot_finalize = fsm_snapshot_finalize;
    g->rfsm.snapshot_async = NULL;
    *out = g;
    return CLU_OK;
}

struct raft_fsm *clu_fsm_raft(struct clu_fsm *g)
{
    return &g->rfsm;
}

void clu_fsm_attach(struct clu_fsm *g, struct raft *r)
{
    struct raft_io *io = r->io;
    g->raft = r;
    r->data = g;
    /* Debian's libraft 0.15 raft_uv implements async_work but still says
     * version 1; libraft only uses async snapshots with version >= 2. */
    if (io->async_work) {
        if (io->version < 2)
            io->version = 2;
        g->rfsm.version = 3;
        g->rfsm.snapshot_async = fsm_snapshot_async;
        g->async = 1;
    }
    g->io_start = io->start;
    io->start = start_wrap;
}

void clu_fsm_set_hooks(struct clu_fsm *g, const struct clu_fsm_hooks *h)
{
    g->hooks = *h;
}

void clu_fsm_set_closing(struct clu_fsm *g)
{
    g->closing = 1;
}

int clu_snapshot_is_witness(const char *name)
{
    size_t n = strlen(name), k = strlen("-witness.db");
    return n > k && strcmp(name + n - k, "-witness.db") == 0;
}

void clu_fsm_set_witness(struct clu_fsm *g, int on)
{
    g->witness = on;
}

void clu_fsm_set_verify(struct clu_fsm *g, int on)
{
    g->verify = on;
}

void clu_fsm_set_fetch(struct clu_fsm *g, clu_fetch_fn fn, void *fud)
{
    g->fetch_fn = fn;
    g->fetch_ud = fud;
}

void clu_fsm_free(struct clu_fsm *g)
{
    if (!g)
        return;
    if (g->fetch.held) {
        drop_message(&g->fetch.msg);
        g->fetch.held = 0;
    }
    if (g->cur.state == SNAP_TAKING) {
        /* libraft was closed before finalize: the file is not referenced */
        void *snap = g->cur.snap;
        if (g->cur.created)
            remove_file(g, g->cur.desc.name, NULL);
        g->ops->snapshot_end(g->ud, snap, CLU_ESHUTDOWN, NULL);
    }
    util_free(g);
}
