/* repl/repl.c: the commit path on Raft, the FSM, startup repair. */
#include "repl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "cluster.h"
#include "sql.h"
#include "txlog.h"

#define BACKUP_PAGES 1024      /* pages per sqlite3_backup_step */
#define PAUSE_MAX_NS 2000000000ULL /* never hold writers back longer for a snapshot */
#define STEP_OVERLAP_NS 200000000ULL /* SIGTERM on a leader: it still serves after the HOLD */
#define STEP_DRAIN_MAX_NS 1000000000ULL /* then its sessions' transactions may finish */
#define HOLD_RPC_TIMEOUT_MS 300 /* the HOLD request to the voter taking over */
#define HOLD_MS 5000 /* how long it holds new sessions at most: > OVERLAP + DRAIN + PAUSE_MAX + an election */
#define TICK_MS 200
#define READ_FENCE_TIMEOUT_MS 5000 /* a linearizable read gives up (40001) after this */
#define MAX_RECORD (256u * 1024 * 1024) /* Raft's max_entry_size; checked before COMMIT */

enum step_phase { STEP_ANNOUNCE, STEP_OVERLAP, STEP_DRAIN, STEP_LAND }; /* see step_down_poll */

struct rpl {
    struct rpl_config cfg;
    char data_dir[4096];
    char db_path[4096];
    char peer[256];
    char join[256];
    char join_role[16];
    char *members;             /* initial_members or NULL */
    int multi;                 /* more than one node may lead: see repair_if_ahead */
    int started;               /* the node started: a stop after this is a clean one */
    int witness;               /* a voter without data (DATA/witness): see docs/repl.md */
    int wiped;                 /* DATA/convert-data was carried out at this start */
    atomic_int self_role;      /* this node's clu_member_role in its configuration, committed; -1 not a
                                  member or unknown, -2 a change is not committed (clu_self_role) */
    atomic_ullong self_cfg_index; /* that configuration's index */
    atomic_ullong convert_at;  /* a CONVERT was answered: restart at this time (ns) */
    int transferring;          /* loop: rpl_step_down's transfer is under way */
    int step_phase;            /* loop: where that hand-over is (enum step_phase) */
    unsigned drain_ms;         /* loop: how long its DRAIN step took */
    int drain_left;            /* loop: sessions left when it ended */
    void (*stop_accepting)(void *); /* loop: SIGTERM: the server stops taking sessions and drains */
    int (*sessions)(void *);   /* any thread: how many sessions the server still has */
    void *step_data;
    /* HOLD requests to the voter taking over, each on a thread of its own
     * with its own copy of the address and request: [0] "HOLD <ms>", [1]
     * "HOLD 0" (a failed hand-over releases it). Joined by the loop, and
     * at the latest by rpl_free (a release may start while the node closes). */
    struct hold_call {
        pthread_t thread;
        int on;                /* loop: started, not joined yet */
        atomic_int sent;       /* it has its answer (or failed) */
        char addr[64];
        char req[32];
    } hold_calls[2];
    char hold_addr[64];        /* loop: that voter's peer address ("" none) */
    int hold_wait;             /* loop: the hand-over waits for that answer */
    char hold_leader[128];     /* HOLD: the leader that asked (leader_hint then; under mu) */
    atomic_int holding_self;   /* this leader pauses writers to hand over: new sessions wait */
    atomic_ullong hold_until_ns; /* HOLD: a leader hands over to this node; new sessions wait */
    atomic_uint hold_gen;      /* role_gen when it asked */
    uint64_t xfer_to;          /* loop: the voter to hand over to (0: the best) */
    clu_done_cb xfer_cb;       /* loop: a TRANSFER request's answer, or NULL (SIGTERM) */
    int transfer_started;      /* loop: clu_transfer was called (libraft answers from then on) */
    void *xfer_data;
    uv_timer_t step_timer;     /* loop: waits for the records in flight before the transfer */
    uint64_t step_down_t0;
    char base_path[4200];
    uv_loop_t *loop;
    struct exe_pool *pool;
    struct clu_node *node;
    sqlite3 *adb;              /* the applier thread applies records with it;
                                  the loop restores snapshots (applier idle) */
    struct txl_applier *ap;
    sqlite3 *sdb;              /* snapshot reader (one snapshot at a time) */
    struct sql_fnctx fn;
    uv_timer_t timer;
    int timer_on;
    uint64_t node_id;

    /* Worker side, under the write token: the LSN the next record gets
     * is last_lsn + 1. */
    uint64_t last_lsn;

    /* Records from other nodes are applied on the applier thread, never on
     * the loop (a 1M-row record would stall heartbeats for seconds and
     * cost the leadership): fsm_apply queues them. Under aq_mu. */
    pthread_t applier;
    int applier_on;
    pthread_mutex_t aq_mu;
    pthread_cond_t aq_cv;      /* work queued, or stop */
    pthread_cond_t aq_idle_cv; /* the queue is empty and nothing is being applied */
    struct apply_item *aq_head, *aq_tail;
    int aq_busy, aq_stop;
    atomic_int backlog;        /* queued + being applied */
    atomic_int restore_abort;  /* the restore being copied is superseded (or the node stops): give up */
    atomic_ullong queued_lsn;  /* newest LSN handed to the FSM, applied or queued */

    pthread_mutex_t mu;        /* waits, stats, hint */
    pthread_cond_t applied_cv; /* rpl_wait_visible */
    atomic_int visible_waiters;
    atomic_ullong record_bytes;
    atomic_ullong frontier;    /* newest LSN committed locally (maybe not durable) */
    atomic_int inflight;       /* records committed locally, not yet applied */
    atomic_ullong applied_lsn; /* newest LSN committed by Raft and in the db */
    atomic_int role;
    atomic_uint role_gen;
    atomic_int nospace;
    atomic_ullong avail_bytes; /* free space on the data dir's disk at the last check */
    atomic_int broken;
    atomic_int stopping;
    atomic_int shutting_down;  /* rpl_step_down ran (SIGTERM/SIGINT): a fence exits instead of restarting */
    char leader_hint[128];     /* the leader's peer address (under mu) */
    char leader_sql_for[128];  /* leader_sql is that peer's SQL address */
    char leader_sql[128];
    char sql_address[128];     /* this node's, for SQLADDR */
    uint64_t pause_since_ns;   /* loop: writers held back for a snapshot */
    struct rpl_stats st;
    void (*stop_cb)(void *);
    void *stop_data;
};

/* ---- helpers ---- */

static int exec1(sqlite3 *db, const char *sql, char *err, size_t errcap)
{
    char *m = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &m) != SQLITE_OK) {
        snprintf(err, errcap, "%s: %s", sql, m ? m : sqlite3_errmsg(db));
        sqlite3_free(m);
        return -1;
    }
    return 0;
}

/* Copy database file src_path into the open connection dst (all of it,
 * in bounded steps, in one write transaction). 0, -1 with err, or -2 when
 * *abort became non-zero (dst is left as it was). */
static int backup_into(sqlite3 *dst, const char *src_path, atomic_int *abort, char *err, size_t errcap)
{
    sqlite3 *src = NULL;
    if (sqlite3_open_v2(src_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, errcap, "open %s: %s", src_path, src ? sqlite3_errmsg(src) : "out of memory");
        sqlite3_close(src);
        return -1;
    }
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (!b) {
        snprintf(err, errcap, "restore from %s: %s", src_path, sqlite3_errmsg(dst));
        sqlite3_close(src);
        return -1;
    }
    int rc;
    while ((rc = sqlite3_backup_step(b, BACKUP_PAGES)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
        if (abort && atomic_load(abort))
            break;
    sqlite3_backup_finish(b); /* before SQLITE_DONE: rolls dst's transaction back */
    if (rc != SQLITE_DONE && abort && atomic_load(abort)) {
        snprintf(err, errcap, "restore from %s: superseded", src_path);
        sqlite3_close(src);
        return -2;
    }
    if (rc != SQLITE_DONE) {
        snprintf(err, errcap, "restore from %s: %s", src_path, sqlite3_errstr(rc));
        sqlite3_close(src);
        return -1;
    }
    sqlite3_close(src);
    return 0;
}

static int read_lsn(sqlite3 *db, uint64_t *lsn, char *err, size_t errcap)
{
    return txl_applied_lsn(db, lsn, err, errcap);
}

/* ---- startup: base copy and the database-ahead-of-log check ---- */

static int make_base(struct rpl *r, char *err, size_t errcap)
{
    struct stat sb;
    if (stat(r->base_path, &sb) == 0)
        return 0;
    sqlite3 *db = NULL;
    if (sql_db_open(r->db_path, &r->fn, &db, err, errcap))
        return -1;
    char tmp[4300], sql[4400];
    snprintf(tmp, sizeof tmp, "%s.tmp", r->base_path);
    unlink(tmp);
    char *q = sqlite3_mprintf("VACUUM INTO %Q", tmp);
    snprintf(sql, sizeof sql, "%s", q ? q : "");
    sqlite3_free(q);
    int rc = exec1(db, sql, err, errcap);
    sqlite3_close(db);
    if (rc)
        return -1;
    if (util_fsync_path(tmp) || rename(tmp, r->base_path) || util_fsync_path(r->data_dir)) {
        snprintf(err, errcap, "could not write %s: %s", r->base_path, strerror(errno));
        return -1;
    }
    log_info("repl.base_written", "path=%s", r->base_path);
    return 0;
}

struct scan {
    uint64_t max_lsn;
    uint64_t records;
    int bad;
    uint64_t bad_index;
    char err[300];
};

static int scan_entry(void *ud, const struct clu_log_info *info, const struct clu_log_entry *e)
{
    struct scan *sc = ud;
    struct txl_record rec;
    (void)info;
    if (e->type != CLU_ENTRY_COMMAND)
        return 0;
    txl_record_init(&rec);
    if (e->malformed || txl_decode(e->buf, e->len, &rec, sc->err, sizeof sc->err)) {
        if (e->malformed)
            snprintf(sc->err, sizeof sc->err, "malformed entry");
        sc->bad = 1;
        sc->bad_index = e->index;
        return -1;
    }
    if (rec.lsn > sc->max_lsn)
        sc->max_lsn = rec.lsn;
    sc->records++;
    txl_record_free(&rec);
    return 0;
}

/* A local commit whose record never reached the disk leaves the database
 * ahead of the log (SQLite commits before Raft's fsync). Such a commit was
 * never acknowledged: restore the newest snapshot (libraft restores it at
 * start, the log replays after it) or, with none, the base copy. */
static int repair_if_ahead(struct rpl *r, char *err, size_t errcap)
{
    uint64_t db_lsn = 0;
    int db_committed = 0;
    sqlite3 *db = NULL;
    if (sql_db_open(r->db_path, &r->fn, &db, err, errcap))
        return -1;
    if (txl_applied_state(db, &db_lsn, &db_committed, err, errcap)) {
        sqlite3_close(db);
        return -1;
    }
    struct scan sc;
    memset(&sc, 0, sizeof sc);
    struct clu_log_info li;
    int rc = clu_log_read(r->data_dir, &li, scan_entry, &sc, err, errcap);
    if (rc) {
        if (sc.bad)
            snprintf(err, errcap, "txlog entry %llu in %s/raft does not decode: %s", (unsigned long long)sc.bad_index,
                     r->data_dir, sc.err);
        sqlite3_close(db);
        return -1;
    }
    uint64_t snap_lsn = li.has_snapshot && li.snapshot_desc_ok ? li.snapshot_desc.lsn : 0;
    uint64_t durable = sc.max_lsn > snap_lsn ? sc.max_lsn : snap_lsn;
    log_info("repl.startup", "db_lsn=%llu db_committed=%d log_lsn=%llu snapshot_lsn=%llu log_entries=%llu "
             "first_index=%llu last_index=%llu records=%llu",
             (unsigned long long)db_lsn, db_committed, (unsigned long long)sc.max_lsn, (unsigned long long)snap_lsn,
             (unsigned long long)li.entries, (unsigned long long)li.first_index, (unsigned long long)li.last_index,
             (unsigned long long)sc.records);
    /* With other nodes, this node's log past the commit point is not the
     * cluster's: a new leader may replace its tail, and a database that
     * holds a leader's own commits may keep changes the cluster never
     * committed. So unless the database says its applied LSN is known
     * committed (applied from the log, or marked at a clean stop), it goes
     * back to the snapshot and Raft re-applies what the cluster committed. */
    if (li.servers > 1)
        r->multi = 1; /* a member of a cluster (its first node has no --join) */
    int suspect = r->multi && db_lsn > snap_lsn && !db_committed;
    int rewind = suspect && db_lsn <= durable; /* not ahead of its own log */
    if (suspect)
        durable = snap_lsn;
    if (db_lsn <= durable) {
        sqlite3_close(db);
        return 0;
    }
    const char *from = r->base_path;
    char snap[4300];
    if (li.has_snapshot && li.snapshot_desc_ok) {
        snprintf(snap, sizeof snap, "%s/snapshots/%s", r->data_dir, li.snapshot_desc.name);
        from = snap;
    }
    if (rewind)
        log_info("repl.repair", "db_lsn=%llu snapshot_lsn=%llu from=%s msg=\"a cluster member restarts from its "
                 "newest snapshot: this node's log past the commit point may not be the cluster's, so Raft "
                 "re-applies what the cluster committed\"",
                 (unsigned long long)db_lsn, (unsigned long long)snap_lsn, from);
    else
        log_warn("repl.repair", "db_lsn=%llu durable_lsn=%llu from=%s msg=\"the database holds commits whose records "
                 "never reached the log (never acknowledged): restoring and replaying the log\"",
                 (unsigned long long)db_lsn, (unsigned long long)durable, from);
    rc = backup_into(db, from, NULL, err, errcap);
    sqlite3_close(db);
    return rc;
}

/* ---- the applier thread ---- */

struct apply_item {
    struct apply_item *next;
    uint64_t index;
    uint64_t size;   /* a snapshot to restore: its size (data holds its path) */
    int restore;     /* a snapshot to restore, not a record */
    size_t len;
    unsigned char data[];
};

static void wake_visible(struct rpl *r)
{
    if (atomic_load(&r->visible_waiters)) {
        pthread_mutex_lock(&r->mu);
        pthread_cond_broadcast(&r->applied_cv);
        pthread_mutex_unlock(&r->mu);
    }
}

/* A batch ends at this many records or bytes (the first record always
 * goes in, however large). */
#define APPLY_BATCH_RECORDS 512
#define APPLY_BATCH_BYTES (8u << 20)

/* Apply a run of records from other nodes (applier thread) in one SQLite
 * transaction: a follower that falls behind catches up with one commit per
 * batch instead of one per record, and the pages every record touches (a
 * counter row, the applied LSN) are written once per batch. Readers see the
 * database only at batch boundaries, which are record boundaries. A record
 * that does not decode or apply means this replica cannot follow the log
 * any more: the node stops (the restart rebuilds it from a snapshot and the
 * log). */
static void apply_batch(struct rpl *r, const struct apply_item *first)
{
    char err[300];
    uint64_t lsn, index;
    size_t n;
    const struct apply_item *bad;
    int rc;
again:
    lsn = index = 0;
    n = 0;
    bad = NULL;
    int ddl = 0;
    rc = txl_applier_batch_begin(r->ap, err, sizeof err);
    for (const struct apply_item *it = first; rc == 0 && it; it = it->next) {
        struct txl_record rec;
        txl_record_init(&rec);
        rc = txl_decode(it->data, it->len, &rec, err, sizeof err);
        if (rc == 0) {
            int a = txl_applier_batch_add(r->ap, &rec, err, sizeof err);
            if (a < 0)
                rc = -1;
            else if (a == 0) {
                n++;
                lsn = rec.lsn;
                index = it->index;
                ddl |= txl_record_has_ddl(&rec);
            }
        } else {
            txl_applier_abort(r->ap);
        }
        if (rc)
            bad = it;
        txl_record_free(&rec);
    }
    if (rc == 0)
        rc = txl_applier_batch_commit(r->ap, err, sizeof err);
    int busy = rc && txl_applier_busy(r->ap);
    if (busy) {
        /* a local statement (REINDEX, ANALYZE, a PRAGMA) holds SQLite's write
         * lock past the busy timeout: the replica lags, it is not broken */
        txl_applier_abort(r->ap);
        if (atomic_load(&r->stopping))
            return; /* still in the log: replayed at the next start */
        log_warn("repl.apply_waiting", "index=%llu msg=\"a local statement holds the database's write lock; "
                 "retrying\"", (unsigned long long)first->index);
        usleep(100000);
        goto again;
    }
    if (rc) {
        log_error("repl.apply_failed", "index=%llu msg=\"%s\"", (unsigned long long)(bad ? bad->index : first->index),
                  err);
        log_error("repl.stopped", "msg=\"this node cannot apply the cluster's log; exiting so that the "
                  "restart rebuilds its database from a snapshot and the log\"");
        _exit(4);
    }
    if (!n)
        return;
    if (ddl)
        exe_schema_changed();
    pthread_mutex_lock(&r->mu);
    if (lsn > r->last_lsn)
        r->last_lsn = lsn;
    uint64_t before = r->st.records_applied;
    r->st.records_applied += n;
    r->st.apply_batches++;
    uint64_t after = r->st.records_applied;
    pthread_mutex_unlock(&r->mu);
    atomic_store(&r->applied_lsn, lsn);
    atomic_store(&r->frontier, lsn);
    if (before / 10000 != after / 10000)
        log_info("repl.replay", "index=%llu lsn=%llu applied=%llu", (unsigned long long)index,
                 (unsigned long long)lsn, (unsigned long long)after);
    wake_visible(r);
}

/* A snapshot libraft handed over (fsm_restore), copied into the database
 * here, on the applier thread, in order with the records after it: a 2 GiB
 * copy on the loop would stop heartbeats for seconds, and the leader would
 * time the InstallSnapshot out and send it again. */
static void restore_snapshot(struct rpl *r, const struct apply_item *it)
{
    char err[300];
    const char *path = (const char *)it->data;
    uint64_t t0 = util_now_ns();
    txl_applier_free(r->ap);
    r->ap = NULL;
    int rc = backup_into(r->adb, path, &r->restore_abort, err, sizeof err);
    if (rc == -2) {
        /* a newer snapshot was installed (it is queued next), or the node
         * stops (the next start restores the newest snapshot): the
         * database is as it was, at its old LSN */
        log_info("repl.restore_superseded", "index=%llu ms=%llu", (unsigned long long)it->index,
                 (unsigned long long)((util_now_ns() - t0) / 1000000));
        if (txl_applier_new(r->adb, &r->ap)) {
            log_error("repl.stopped", "msg=\"out of memory\"");
            _exit(4);
        }
        return;
    }
    if (rc == 0 && txl_applier_new(r->adb, &r->ap))
        snprintf(err, sizeof err, "out of memory"), rc = -1;
    uint64_t lsn = 0;
    if (rc == 0 && read_lsn(r->adb, &lsn, err, sizeof err))
        rc = -1;
    if (rc) {
        /* libraft has dropped its log for the snapshot, and the database
         * is half restored with no applier: start over (startup restores
         * the newest snapshot before serving) */
        log_error("repl.restore_failed", "path=%s msg=\"%s\"", path, err);
        log_error("repl.stopped", "msg=\"exiting: the next start restores the newest snapshot before serving\"");
        _exit(4); /* not a re-exec: a restore that keeps failing (a full disk) would loop */
    }
    pthread_mutex_lock(&r->mu);
    if (lsn > r->last_lsn)
        r->last_lsn = lsn;
    pthread_mutex_unlock(&r->mu);
    atomic_store(&r->applied_lsn, lsn);
    atomic_store(&r->frontier, lsn);
    log_info("repl.restored", "index=%llu lsn=%llu size=%llu ms=%llu", (unsigned long long)it->index,
             (unsigned long long)lsn, (unsigned long long)it->size,
             (unsigned long long)((util_now_ns() - t0) / 1000000));
    wake_visible(r);
}

static void *applier_main(void *arg)
{
    struct rpl *r = arg;
    pthread_mutex_lock(&r->aq_mu);
    for (;;) {
        while (!r->aq_head && !r->aq_stop)
            pthread_cond_wait(&r->aq_cv, &r->aq_mu);
        if (r->aq_stop)
            break; /* what is queued is in the Raft log: the restart replays it */
        /* take what is queued, up to the batch limits */
        struct apply_item *first = r->aq_head, *last = first;
        size_t count = 1, bytes = first->len;
        while (!first->restore && last->next && !last->next->restore && count < APPLY_BATCH_RECORDS &&
               bytes + last->next->len <= APPLY_BATCH_BYTES) {
            last = last->next;
            count++;
            bytes += last->len;
        }
        r->aq_head = last->next;
        if (!r->aq_head)
            r->aq_tail = NULL;
        last->next = NULL;
        r->aq_busy = 1;
        pthread_mutex_unlock(&r->aq_mu);
        if (first->restore)
            restore_snapshot(r, first);
        else
            apply_batch(r, first);
        while (first) {
            struct apply_item *next = first->next;
            util_free(first);
            first = next;
        }
        pthread_mutex_lock(&r->aq_mu);
        r->aq_busy = 0;
        atomic_fetch_sub(&r->backlog, (int)count);
        if (!r->aq_head)
            pthread_cond_broadcast(&r->aq_idle_cv);
    }
    pthread_mutex_unlock(&r->aq_mu);
    return NULL;
}

/* How long a follower's snapshot waits for the applier (on the loop). */
#define SNAPSHOT_DRAIN_WAIT_NS (50ull * 1000000ull)

/* Wait until the applier has applied everything queued (deadline_ns 0:
 * none). 0 drained, -1 timed out. */
static int wait_drained(struct rpl *r, uint64_t deadline_ns)
{
    pthread_mutex_lock(&r->aq_mu);
    while ((r->aq_head || r->aq_busy) && (!deadline_ns || util_now_ns() < deadline_ns)) {
        util_cond_wait_ns(&r->aq_idle_cv, &r->aq_mu, 50000000ull);
    }
    int drained = !r->aq_head && !r->aq_busy;
    pthread_mutex_unlock(&r->aq_mu);
    return drained ? 0 : -1;
}

/* Drop what is queued (a snapshot replaces it) and wait for the record being
 * applied: afterwards the loop may use adb. */
static void discard_queue(struct rpl *r)
{
    pthread_mutex_lock(&r->aq_mu);
    while (r->aq_head) {
        struct apply_item *it = r->aq_head;
        r->aq_head = it->next;
        util_free(it);
        atomic_fetch_sub(&r->backlog, 1);
    }
    r->aq_tail = NULL;
    while (r->aq_busy)
        pthread_cond_wait(&r->aq_idle_cv, &r->aq_mu);
    pthread_mutex_unlock(&r->aq_mu);
}

/* Hand it to the applier thread (queued_lsn: the newest LSN handed). */
static void queue_push(struct rpl *r, struct apply_item *it, uint64_t lsn)
{
    pthread_mutex_lock(&r->aq_mu);
    if (r->aq_tail)
        r->aq_tail->next = it;
    else
        r->aq_head = it;
    r->aq_tail = it;
    atomic_fetch_add(&r->backlog, 1);
    if (lsn > atomic_load(&r->queued_lsn))
        atomic_store(&r->queued_lsn, lsn);
    pthread_cond_signal(&r->aq_cv);
    pthread_mutex_unlock(&r->aq_mu);
}

static void stop_applier(struct rpl *r)
{
    if (!r->applier_on)
        return;
    atomic_store(&r->restore_abort, 1); /* a restore under way is redone at the next start */
    pthread_mutex_lock(&r->aq_mu);
    r->aq_stop = 1;
    pthread_cond_broadcast(&r->aq_cv);
    pthread_mutex_unlock(&r->aq_mu);
    pthread_join(r->applier, NULL);
    r->applier_on = 0;
    discard_queue(r);
}

/* ---- FSM ---- */

static int fsm_apply(void *ud, uint64_t index, const void *buf, size_t len, void *local)
{
    struct rpl *r = ud;
    if (local) {
        struct rpl_wait *w = local;
        atomic_store(&r->applied_lsn, w->lsn);
        atomic_fetch_sub(&r->inflight, 1);
        wake_visible(r);
        return 0;
    }
    /* from another node (or replayed): queue it for the applier thread */
    uint64_t lsn = 0;
    if (txl_peek_lsn(buf, len, &lsn)) {
        log_error("repl.apply_failed", "index=%llu msg=\"not a txlog record\"", (unsigned long long)index);
        return -1;
    }
    if (r->witness) { /* keeps the log, not the data: only the position */
        atomic_store(&r->applied_lsn, lsn);
        atomic_store(&r->frontier, lsn);
        atomic_store(&r->queued_lsn, lsn);
        return 0;
    }
    struct apply_item *it = util_malloc(sizeof *it + len);
    if (!it) {
        log_error("repl.apply_failed", "index=%llu msg=\"out of memory queueing %zu bytes\"",
                  (unsigned long long)index, len);
        return -1;
    }
    it->next = NULL;
    it->index = index;
    it->restore = 0;
    it->len = len;
    memcpy(it->data, buf, len);
    queue_push(r, it, lsn);
    return 0;
}

static void pause_writers(struct rpl *r)
{
    if (!r->pause_since_ns) {
        r->pause_since_ns = util_now_ns();
        exe_write_pause(r->pool, 1);
    }
}

static void resume_writers(struct rpl *r)
{
    if (r->pause_since_ns) {
        r->pause_since_ns = 0;
        exe_write_pause(r->pool, 0);
    }
}

/* The view must hold exactly the records Raft committed: none may be in
 * flight. Under load there nearly always is one, so writers are held back
 * (briefly: until the records in flight commit) and libraft retries with
 * the next applied entry. */
static int fsm_snapshot_begin(void *ud, uint64_t index, void **snap, uint64_t *lsn)
{
    struct rpl *r = ud;
    char err[300];
    if (r->witness) {
        *snap = r; /* no view: the file is a marker */
        *lsn = atomic_load(&r->applied_lsn);
        (void)index;
        return 0;
    }
    /* The database is behind index until the applier catches up. libraft
     * asks right after handing over an entry, which is then still queued:
     * answering busy at once meant a follower never compacted its log.
     * While this waits, the loop hands the applier nothing new. */
    if (atomic_load(&r->backlog) > 0 &&
        (wait_drained(r, util_now_ns() + SNAPSHOT_DRAIN_WAIT_NS) || atomic_load(&r->backlog) > 0))
        return CLU_EBUSY;
    if (atomic_load(&r->inflight) > 0) {
        if (r->pool)
            pause_writers(r);
        return CLU_EBUSY;
    }
    if (exec1(r->sdb, "BEGIN", err, sizeof err))
        return CLU_EFSM;
    uint64_t v = 0;
    if (read_lsn(r->sdb, &v, err, sizeof err) || v != atomic_load(&r->applied_lsn)) {
        exec1(r->sdb, "ROLLBACK", err, sizeof err);
        if (r->pool)
            pause_writers(r);
        return CLU_EBUSY;
    }
    if (!atomic_load(&r->holding_self)) /* a hand-over keeps its own pause */
        resume_writers(r);
    *snap = r->sdb;
    *lsn = v;
    (void)index;
    return 0;
}

/* Thread-pool thread: copy the view in bounded steps. */
static int fsm_snapshot_write(void *ud, void *snap, const char *path)
{
    if (snap == ud) { /* a witness: a marker file, nothing to copy */
        FILE *f = fopen(path, "w");
        int ok = f && fputs("orbit witness snapshot: no data\n", f) >= 0;
        if (f && fclose(f))
            ok = 0;
        return ok ? 0 : CLU_EIO;
    }
    sqlite3 *src = snap, *dst = NULL;
    if (sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        log_error("repl.snapshot_failed", "path=%s msg=\"%s\"", path, dst ? sqlite3_errmsg(dst) : "out of memory");
        sqlite3_close(dst);
        return CLU_EIO;
    }
    sqlite3_exec(dst, "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA cache_size=-2048", NULL, NULL, NULL);
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    int rc = SQLITE_ERROR;
    if (b) {
        while ((rc = sqlite3_backup_step(b, BACKUP_PAGES)) == SQLITE_OK || rc == SQLITE_BUSY || rc == SQLITE_LOCKED)
            ;
        sqlite3_backup_finish(b);
    }
    if (rc != SQLITE_DONE) {
        log_error("repl.snapshot_failed", "path=%s msg=\"%s\"", path, b ? sqlite3_errstr(rc) : sqlite3_errmsg(dst));
        sqlite3_close(dst);
        return rc == SQLITE_FULL ? CLU_ENOSPACE : CLU_EIO;
    }
    sqlite3_close(dst);
    return 0;
}

static void fsm_snapshot_end(void *ud, void *snap, int status, const struct clu_snapshot_desc *d)
{
    struct rpl *r = ud;
    char err[300];
    if (snap != ud)
        exec1(snap, "ROLLBACK", err, sizeof err);
    if (status == 0) {
        r->st.snapshots++;
        log_info("repl.snapshot", "index=%llu lsn=%llu size=%llu", (unsigned long long)d->index,
                 (unsigned long long)d->lsn, (unsigned long long)d->size);
    }
}

static int fsm_restore(void *ud, const struct clu_snapshot_desc *d, const char *path)
{
    struct rpl *r = ud;
    if (r->witness) { /* takes the position only (the file may not be here) */
        atomic_store(&r->applied_lsn, d->lsn);
        atomic_store(&r->frontier, d->lsn);
        atomic_store(&r->queued_lsn, d->lsn);
        (void)path;
        return 0;
    }
    /* what is queued is older than the snapshot (a restore not begun
     * included); a restore being copied is given up rather than waited for
     * on the loop (a 2 GiB copy would stop heartbeats for seconds) */
    atomic_store(&r->restore_abort, 1);
    discard_queue(r);
    atomic_store(&r->restore_abort, 0);
    uint64_t have = atomic_load(&r->applied_lsn);
    atomic_store(&r->queued_lsn, have > d->lsn ? have : d->lsn);
    if (have >= d->lsn) {
        log_info("repl.restore_skipped", "db_lsn=%llu snapshot_lsn=%llu", (unsigned long long)have,
                 (unsigned long long)d->lsn);
        return 0;
    }
    size_t plen = strlen(path) + 1;
    struct apply_item *it = util_malloc(sizeof *it + plen);
    if (!it) {
        log_error("repl.restore_failed", "path=%s msg=\"out of memory\"", path);
        return -1;
    }
    it->next = NULL;
    it->index = d->index;
    it->size = d->size;
    it->restore = 1;
    it->len = plen;
    memcpy(it->data, path, plen);
    queue_push(r, it, d->lsn);
    log_info("repl.restore_queued", "index=%llu lsn=%llu size=%llu", (unsigned long long)d->index,
             (unsigned long long)d->lsn, (unsigned long long)d->size);
    return 0;
}

/* This node led, and its database holds commits that the cluster's log
 * will not have (they were in flight when it lost leadership, or never
 * reached the log): the next leader's records would not apply on top of
 * them. Reverting them online is not built: the process starts over, and
 * startup rebuilds the database from the snapshot and the log. */
static void fence(struct rpl *r, uint64_t term, const char *why)
{
    log_error("repl.fenced", "term=%llu inflight=%d broken=%d msg=\"%s; restarting so that the database is "
              "rebuilt from the cluster's log\"", (unsigned long long)term, atomic_load(&r->inflight),
              atomic_load(&r->broken), why);
    if (r->cfg.restart && !atomic_load(&r->shutting_down) && !atomic_load(&r->stopping))
        r->cfg.restart();
    _exit(3); /* asked to stop: the next start rebuilds the database */
}

static void fsm_role_changed(void *ud, enum clu_role role, uint64_t term)
{
    struct rpl *r = ud;
    /* the store comes before the load of inflight, and rpl_commit counts
     * its commit in flight before it loads role (both seq_cst): either the
     * commit sees that this node no longer leads, or this sees it */
    int was = atomic_exchange(&r->role, (int)role);
    atomic_fetch_add(&r->role_gen, 1);
    if (was == CLU_ROLE_LEADER && role != CLU_ROLE_LEADER && role != CLU_ROLE_NONE &&
        (atomic_load(&r->inflight) > 0 || atomic_load(&r->broken)))
        fence(r, term, "lost leadership with local commits the cluster may not have");
    char addr[64] = "";
    uint64_t id = 0;
    if (r->node && clu_leader(r->node, &id, addr, sizeof addr)) {
        pthread_mutex_lock(&r->mu);
        snprintf(r->leader_hint, sizeof r->leader_hint, "%s", addr);
        pthread_mutex_unlock(&r->mu);
    }
    log_info("repl.role", "role=%s term=%llu leader=%s", clu_role_name(role), (unsigned long long)term,
             addr[0] ? addr : "unknown");
}

static const struct clu_fsm_ops fsm_ops = {
    .apply = fsm_apply,
    .snapshot_begin = fsm_snapshot_begin,
    .snapshot_write = fsm_snapshot_write,
    .snapshot_end = fsm_snapshot_end,
    .restore = fsm_restore,
    .role_changed = fsm_role_changed,
};

/* ---- lifecycle ---- */

/* The database's files (a witness keeps none: a fresh empty one is made). */
static int drop_database(struct rpl *r, char *err, size_t errcap)
{
    static const char *const sfx[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < sizeof sfx / sizeof sfx[0]; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s%s", r->db_path, sfx[i]);
        if (unlink(p) && errno != ENOENT) {
            snprintf(err, errcap, "cannot remove %s: %s", p, strerror(errno));
            return -1;
        }
    }
    return util_fsync_path(r->data_dir) ? (snprintf(err, errcap, "cannot fsync %s", r->data_dir), -1) : 0;
}

static int write_marker(const char *data_dir, const char *name, const char *text, char *err, size_t errcap);

/* DATA/convert-data (a CONVERT data answered before the restart): the
 * witness forgets its log, its snapshots and its (empty) database, and
 * stops being a witness; each step can be repeated if a crash cuts it.
 * First the log is read once more: if a change since the CONVERT made this
 * node a voter again (or any change came in), its log counts for quorums
 * and must stay: the conversion is called off and it starts as a witness.
 * DATA/convert-data.go records that the check passed (a wipe cut by a
 * crash may leave an older part of the log, which would fail it). */
static int convert_to_data(struct rpl *r, char *err, size_t errcap)
{
    char marker[4200], go[4200], wmarker[4200], text[256] = "";
    struct stat sb;
    snprintf(marker, sizeof marker, "%s/convert-data", r->data_dir);
    snprintf(go, sizeof go, "%s/convert-data.go", r->data_dir);
    if (stat(marker, &sb) != 0) {
        unlink(go); /* a leftover of a finished conversion */
        return 0;
    }
    snprintf(wmarker, sizeof wmarker, "%s/witness", r->data_dir);
    if (stat(go, &sb) != 0) {
        unsigned long long cfg_index = 0;
        FILE *f = fopen(marker, "r");
        size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (f)
            fclose(f);
        text[n] = 0;
        const char *c = strstr(text, "config ");
        if (c)
            cfg_index = strtoull(c + 7, NULL, 10);
        int rc = clu_log_wipe_check(r->data_dir, cfg_index, err, errcap);
        if (rc == CLU_EBUSY) {
            log_error("repl.convert_refused", "msg=\"%s; this node stays a witness and keeps its log (run "
                      "orbitctl cluster assign again)\"", err);
            *err = 0;
            if (unlink(marker) || util_fsync_path(r->data_dir)) {
                snprintf(err, errcap, "cannot remove %s: %s", marker, strerror(errno));
                return -1;
            }
            return 0;
        }
        if (rc)
            return -1;
        if (write_marker(r->data_dir, "convert-data.go", "orbit: the log may be wiped\n", err, errcap))
            return -1;
    }
    if (clu_log_wipe(r->data_dir, err, errcap) || drop_database(r, err, errcap) ||
        (unlink(wmarker) && errno != ENOENT) || util_fsync_path(r->data_dir) || unlink(go) || unlink(marker) ||
        util_fsync_path(r->data_dir)) {
        if (!*err)
            snprintf(err, errcap, "converting to a data node: %s", strerror(errno));
        return -1;
    }
    r->wiped = 1;
    log_warn("repl.convert", "to=data msg=\"the Raft log was wiped; this node catches up from the leader as a "
             "standby\"");
    return 0;
}

/* A witness is chosen when the node joins (join_role = witness on a fresh
 * data dir), or later with CONVERT witness, and stays one until CONVERT
 * data: DATA/witness records it. */
static int witness_mode(struct rpl *r, const struct rpl_config *cfg, char *err, size_t errcap)
{
    char marker[4200], meta[4200];
    struct stat sb;
    *err = 0;
    if (convert_to_data(r, err, errcap))
        return -1;
    snprintf(marker, sizeof marker, "%s/witness", r->data_dir);
    snprintf(meta, sizeof meta, "%s/raft/metadata1", r->data_dir);
    int asked = cfg->join_role && strcmp(cfg->join_role, "witness") == 0;
    if (stat(marker, &sb) == 0) {
        r->witness = 1;
    } else if (asked && stat(meta, &sb) != 0) {
        FILE *f = fopen(marker, "w");
        if (!f || fputs("orbit witness: this node votes and keeps the Raft log, not the data\n", f) < 0 ||
            fclose(f) != 0) {
            snprintf(err, errcap, "cannot write %s: %s", marker, strerror(errno));
            return -1;
        }
        r->witness = 1;
    } else if (asked) {
        log_warn("repl.witness", "msg=\"join_role = witness is ignored: this node already holds data\"");
    }
    if (r->witness && drop_database(r, err, errcap))
        return -1;
    if (r->witness)
        log_info("repl.witness", "msg=\"witness: votes and keeps the Raft log; no data, no SQL sessions\"");
    return 0;
}

int rpl_open(const struct rpl_config *cfg, struct rpl **out, char *err, size_t errcap)
{
    *out = NULL;
    struct rpl *r = util_calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    r->cfg = *cfg;
    atomic_store(&r->self_role, -1);
    util_strlcpy(r->data_dir, cfg->data_dir, sizeof r->data_dir);
    util_strlcpy(r->db_path, cfg->db_path, sizeof r->db_path);
    util_strlcpy(r->peer, cfg->peer ? cfg->peer : "", sizeof r->peer);
    util_strlcpy(r->join, cfg->join ? cfg->join : "", sizeof r->join);
    util_strlcpy(r->join_role, cfg->join_role ? cfg->join_role : "voter", sizeof r->join_role);
    util_strlcpy(r->sql_address, cfg->sql_address ? cfg->sql_address : "", sizeof r->sql_address);
    if (cfg->initial_members && *cfg->initial_members && !(r->members = util_strdup(cfg->initial_members))) {
        snprintf(err, errcap, "out of memory");
        util_free(r);
        return -1;
    }
    r->multi = r->members || r->join[0];
    snprintf(r->base_path, sizeof r->base_path, "%s/base.db", r->data_dir);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->applied_cv, NULL);
    pthread_mutex_init(&r->aq_mu, NULL);
    pthread_cond_init(&r->aq_cv, NULL);
    pthread_cond_init(&r->aq_idle_cv, NULL);
    r->fn.internal = 1;
    if (witness_mode(r, cfg, err, errcap))
        goto fail;
    if (make_base(r, err, errcap) || (!r->witness && repair_if_ahead(r, err, errcap)) ||
        sql_db_open(r->db_path, &r->fn, &r->adb, err, errcap) || sql_db_open(r->db_path, &r->fn, &r->sdb, err, errcap))
        goto fail;
    if (txl_applier_new(r->adb, &r->ap)) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    uint64_t lsn = 0;
    if (read_lsn(r->adb, &lsn, err, errcap))
        goto fail;
    atomic_store(&r->applied_lsn, lsn);
    atomic_store(&r->frontier, lsn);
    atomic_store(&r->queued_lsn, lsn);
    r->last_lsn = lsn;
    if (pthread_create(&r->applier, NULL, applier_main, r)) {
        snprintf(err, errcap, "cannot start the applier thread");
        goto fail;
    }
    r->applier_on = 1;
    *out = r;
    return 0;
fail:
    rpl_free(r);
    return -1;
}

static void check_disk(struct rpl *r)
{
    struct statvfs v;
    if (statvfs(r->data_dir, &v))
        return;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    atomic_store(&r->avail_bytes, avail);
    int full = avail < r->cfg.disk_reserve;
    if (full != atomic_load(&r->nospace)) {
        atomic_store(&r->nospace, full);
        if (full)
            log_error("repl.disk_full", "available=%llu reserve=%llu msg=\"refusing writes until space is freed\"",
                      (unsigned long long)avail, (unsigned long long)r->cfg.disk_reserve);
        else
            log_info("repl.disk_ok", "available=%llu msg=\"writes accepted again\"", (unsigned long long)avail);
    }
}

/* 1 when a record of len bytes would eat into disk_reserve. The record is
 * written to the Raft log after the local commit, and a log write that
 * fails then leaves the database ahead of its log, which only a restart
 * repairs: so a transaction whose record may not fit is refused before it
 * commits (twice its size: the log write and what the log and snapshots
 * add). Far from the limit this is one load, not a system call. */
static int disk_short(struct rpl *r, size_t len)
{
    uint64_t need = r->cfg.disk_reserve + 2 * (uint64_t)len;
    if (atomic_load(&r->avail_bytes) > need + (64ull << 20))
        return 0;
    struct statvfs v;
    if (statvfs(r->data_dir, &v))
        return 0;
    uint64_t avail = (uint64_t)v.f_bavail * v.f_frsize;
    atomic_store(&r->avail_bytes, avail);
    return avail < need;
}

static void stepped_down(void *data, int status);
static int transfer_request(void *ud, uint64_t to, clu_done_cb cb, void *data);
static void join_hold(struct rpl *r, int wait);

static void timer_cb(uv_timer_t *t)
{
    struct rpl *r = t->data;
    check_disk(r);
    if (atomic_load(&r->broken)) /* its clients have their answers by now */
        fence(r, 0, "a commit could not be written to the txlog, so the database is ahead of its log");
    if (r->pause_since_ns && !atomic_load(&r->holding_self) && util_now_ns() - r->pause_since_ns > PAUSE_MAX_NS) {
        log_warn("repl.snapshot_deferred", "msg=\"records stayed in flight; writers resumed without a snapshot\"");
        resume_writers(r);
    }
    if (r->witness && r->node && clu_is_leader(r->node) && !r->transferring) {
        struct clu_member m[2];
        if (clu_members(r->node, m, 2) > 1 && clu_transfer(r->node, 0, stepped_down, r) == 0) {
            r->transferring = 1;
            log_info("repl.witness", "msg=\"a witness leads: handing leadership to a voter with data\"");
        }
    }
    if (r->node) {
        char addr[64] = "";
        int known = clu_leader(r->node, NULL, addr, sizeof addr);
        pthread_mutex_lock(&r->mu);
        if (known) /* the leader may become known after the role change */
            util_strlcpy(r->leader_hint, addr, sizeof r->leader_hint);
        r->st.term = clu_term(r->node);
        r->st.commit_index = clu_commit_index(r->node);
        r->st.applied_index = clu_last_applied(r->node);
        r->st.last_index = clu_last_index(r->node);
        r->st.snapshot_index = clu_snapshot_index(r->node);
        pthread_mutex_unlock(&r->mu);
        uint64_t ci = 0;
        int self = clu_self_role(r->node, &ci);
        atomic_store(&r->self_cfg_index, ci);
        atomic_store(&r->self_role, self);
    }
    uint64_t at = atomic_load(&r->convert_at);
    if (at && util_now_ns() >= at && r->cfg.restart) {
        log_warn("repl.convert", "msg=\"restarting to change what this node keeps\"");
        r->cfg.restart();
    }
}

/* CONVERT witness|data (orbitctl cluster assign, docs/repl.md): write the
 * marker the next start acts on, answer, and restart 300 ms later. A data
 * node becomes a witness as it is (it keeps its log; the start drops the
 * database). A witness becomes a data node only as a standby (a
 * non-voter): the start wipes its log, and it catches up from the leader,
 * a snapshot and then the log, like a new member. */
#define CONVERT_DELAY_NS (300ull * 1000000ull)

static int write_marker(const char *data_dir, const char *name, const char *text, char *err, size_t errcap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", data_dir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fflush(f) || fsync(fileno(f)) || fclose(f) != 0 ||
        util_fsync_path(data_dir)) {
        snprintf(err, errcap, "cannot write %s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}

static void convert_request(struct rpl *r, const char *what, struct buf *reply)
{
    char err[4400], text[128];
    uint64_t cfg_index = atomic_load(&r->self_cfg_index);
    int self = atomic_load(&r->self_role);
    if (atomic_load(&r->convert_at)) {
        buf_printf(reply, "OK restarting\n");
    } else if (strcmp(what, "witness") == 0) {
        if (r->witness) {
            buf_printf(reply, "OK already a witness\n");
        } else if (atomic_load(&r->role) == CLU_ROLE_LEADER) {
            buf_printf(reply, "ERR EINVAL this node leads: transfer leadership first (orbitctl cluster transfer)\n");
        } else if (write_marker(r->data_dir, "witness",
                                "orbit witness: this node votes and keeps the Raft log, not the data\n", err,
                                sizeof err)) {
            buf_printf(reply, "ERR EIO %s\n", err);
        } else {
            log_warn("repl.convert", "to=witness msg=\"this node drops its data and restarts as a witness\"");
            atomic_store(&r->convert_at, util_now_ns() + CONVERT_DELAY_NS);
            buf_printf(reply, "OK restarting as a witness\n");
        }
    } else if (strcmp(what, "data") == 0) {
        if (!r->witness) {
            buf_printf(reply, "OK already holds data\n");
        } else if (self != CLU_MEMBER_STANDBY) {
            /* only a standby in a committed configuration: libraft uses a
             * change as soon as it is in the log, and a new leader may
             * replace it; a log wiped on the strength of it would belong
             * to a voter again */
            buf_printf(reply, "ERR EINVAL this witness is %s here: make it a standby first (ASSIGN <id> standby)\n",
                       self == -2 ? "in a configuration change not committed yet"
                       : self < 0 ? "not yet a member"
                                  : clu_member_role_name((enum clu_member_role)self));
        } else if (snprintf(text, sizeof text, "orbit: wipe the Raft log and catch up with data\nconfig %llu\n",
                            (unsigned long long)cfg_index) < 0 ||
                   write_marker(r->data_dir, "convert-data", text, err, sizeof err)) {
            buf_printf(reply, "ERR EIO %s\n", err);
        } else {
            log_warn("repl.convert", "to=data msg=\"this witness forgets its log and restarts to catch up "
                     "with data\"");
            atomic_store(&r->convert_at, util_now_ns() + CONVERT_DELAY_NS);
            buf_printf(reply, "OK restarting to catch up with data\n");
        }
    } else {
        buf_printf(reply, "ERR EINVAL usage: CONVERT witness|data\n");
    }
}

/* Peer-port requests served here, on the request's own thread (rpc.c).
 * CHECKSUM: the applied LSN and the logical checksum of every user table,
 * read in one transaction on a connection of its own (orbitctl cluster
 * verify compares them across members). STATUS: this node's Raft state,
 * term, commit/applied/last index (as of the last 200 ms tick) and applied
 * LSN (orbitctl cluster status asks every member). */
static int rpc_request(void *ud, const char *line, struct buf *reply)
{
    struct rpl *r = ud;
    if (strcmp(line, "SQLADDR") == 0) {
        buf_printf(reply, "OK %s\n", r->sql_address[0] ? r->sql_address : "unknown");
        return 1;
    }
    if (strncmp(line, "HOLD ", 5) == 0) {
        char *end;
        unsigned long ms = strtoul(line + 5, &end, 10);
        if (*end || ms > 60000) {
            buf_printf(reply, "ERR EINVAL usage: HOLD <ms>\n");
            return 1;
        }
        pthread_mutex_lock(&r->mu);
        util_strlcpy(r->hold_leader, r->leader_hint, sizeof r->hold_leader);
        pthread_mutex_unlock(&r->mu);
        atomic_store(&r->hold_gen, atomic_load(&r->role_gen));
        atomic_store(&r->hold_until_ns, ms ? util_now_ns() + ms * 1000000ull : 0);
        log_info("repl.hold", "ms=%lu msg=\"%s\"", ms, ms ? "a leader hands over to this node: new sessions wait until it leads"
                                                        : "the hand-over to this node was given up: new sessions go on");
        buf_printf(reply, "OK\n");
        return 1;
    }
    if (strcmp(line, "STATUS") == 0) {
        int role = atomic_load(&r->role);
        pthread_mutex_lock(&r->mu);
        buf_printf(reply, "OK %s %llu %llu %llu %llu %llu\n", clu_role_name((enum clu_role)role),
                   (unsigned long long)r->st.term, (unsigned long long)r->st.commit_index,
                   (unsigned long long)r->st.applied_index, (unsigned long long)r->st.last_index,
                   (unsigned long long)atomic_load(&r->applied_lsn));
        pthread_mutex_unlock(&r->mu);
        return 1;
    }
    if (strncmp(line, "CONVERT ", 8) == 0) {
        convert_request(r, line + 8, reply);
        return 1;
    }
    if (strcmp(line, "CHECKSUM") != 0)
        return 0;
    if (r->witness) {
        buf_printf(reply, "OK witness\n"); /* nothing to compare */
        return 1;
    }
    sqlite3 *db = NULL;
    char err[256] = "";
    uint64_t lsn = 0;
    struct txl_checksum cs;
    memset(&cs, 0, sizeof cs);
    if (sql_db_open(r->db_path, &r->fn, &db, err, sizeof err) || exec1(db, "BEGIN", err, sizeof err) ||
        read_lsn(db, &lsn, err, sizeof err) || txl_checksum(db, &cs, err, sizeof err)) {
        buf_printf(reply, "ERR EIO checksum: %s\n", err);
    } else {
        buf_printf(reply, "OK %llu %s %s %zu\n", (unsigned long long)lsn, cs.hex, cs.schema_hex,
                   cs.ntables);
        for (size_t i = 0; i < cs.ntables; i++) /* the name last: it may hold spaces */
            buf_printf(reply, "%s %llu %s\n", cs.tables[i].hex, (unsigned long long)cs.tables[i].rows,
                       cs.tables[i].name);
    }
    txl_checksum_free(&cs);
    if (db)
        sqlite3_close(db); /* ends the read transaction */
    return 1;
}

/* READINDEX on the leader: the newest LSN committed here, speculative ones
 * included; the barrier appended right after it commits only once they do. */
static uint64_t read_mark(void *ud)
{
    struct rpl *r = ud;
    uint64_t f = atomic_load(&r->frontier), q = atomic_load(&r->queued_lsn);
    return f > q ? f : q; /* a new leader may still be applying what it was sent */
}

int rpl_start(struct rpl *r, uv_loop_t *loop, struct exe_pool *pool, char *err, size_t errcap)
{
    r->loop = loop;
    r->pool = pool;
    struct clu_config cc;
    clu_config_init(&cc);
    cc.data_dir = r->data_dir;
    cc.address = r->peer[0] ? r->peer : NULL;
    cc.join = r->join[0] ? r->join : NULL;
    if (r->witness || clu_member_role_parse(r->join_role, &cc.join_role))
        cc.join_role = CLU_MEMBER_VOTER; /* a witness votes */
    if (r->wiped)
        cc.join_role = CLU_MEMBER_STANDBY; /* it catches up first; orbitctl assigns the role */
    cc.witness = r->witness;
    cc.initial_members = r->members;
    cc.rpc_fn = rpc_request;
    cc.rpc_ud = r;
    cc.read_mark = read_mark;
    cc.transfer = transfer_request;
    if (r->cfg.election_timeout_ms)
        cc.election_timeout_ms = r->cfg.election_timeout_ms;
    if (r->cfg.snapshot_threshold)
        cc.snapshot_threshold = r->cfg.snapshot_threshold;
    if (r->cfg.snapshot_log_size)
        cc.snapshot_bytes = r->cfg.snapshot_log_size;
    cc.max_entry_size = MAX_RECORD + 64; /* the glue's framing */
    if (cc.snapshot_trailing > cc.snapshot_threshold)
        cc.snapshot_trailing = cc.snapshot_threshold;
    check_disk(r);
    uv_timer_init(loop, &r->timer);
    uv_timer_init(loop, &r->step_timer);
    r->step_timer.data = r;
    r->timer.data = r;
    r->timer_on = 1;
    uv_timer_start(&r->timer, timer_cb, TICK_MS, TICK_MS);
    if (clu_node_new(loop, &cc, &fsm_ops, r, &r->node, err, errcap))
        return -1;
    r->node_id = clu_id(r->node);
    r->st.node_id = r->node_id;
    uint64_t t0 = util_now_ns();
    if (clu_node_start(r->node, err, errcap))
        return -1;
    (void)wait_drained(r, 0); /* what the start replayed is in the database before the node serves */
    r->started = 1;
    log_info("repl.replayed", "id=%016llx lsn=%llu replayed=%llu ms=%llu", (unsigned long long)r->node_id,
             (unsigned long long)atomic_load(&r->applied_lsn), (unsigned long long)r->st.records_applied,
             (unsigned long long)((util_now_ns() - t0) / 1000000));
    if (cc.join)
        return 0;
    /* A single voter elects itself: wait for that so the first write
     * does not meet "not the leader". More voters: do not wait. */
    struct clu_member m[2];
    if (clu_members(r->node, m, 2) == 1) {
        uint64_t deadline = util_now_ns() + 10000000000ULL;
        while (clu_role(r->node) != CLU_ROLE_LEADER && util_now_ns() < deadline)
            uv_run(loop, UV_RUN_ONCE);
        if (clu_role(r->node) != CLU_ROLE_LEADER) {
            snprintf(err, errcap, "the single-node cluster did not elect itself within 10 s");
            return -1;
        }
        /* a single voter commits its whole log once it leads: replayed
         * records may have been queued only now */
        (void)wait_drained(r, 0);
        log_info("repl.started", "lsn=%llu", (unsigned long long)atomic_load(&r->applied_lsn));
    }
    return 0;
}

static void node_closed(void *data)
{
    struct rpl *r = data;
    r->node = NULL;
    if (r->stop_cb)
        r->stop_cb(r->stop_data);
}

void rpl_stop(struct rpl *r, void (*cb)(void *), void *data)
{
    atomic_store(&r->stopping, 1);
    resume_writers(r);
    if (r->timer_on) {
        uv_timer_stop(&r->timer);
        uv_close((uv_handle_t *)&r->timer, NULL);
        uv_timer_stop(&r->step_timer);
        uv_close((uv_handle_t *)&r->step_timer, NULL);
        r->timer_on = 0;
    }
    join_hold(r, 1); /* at most HOLD_RPC_TIMEOUT_MS */
    r->stop_accepting = NULL; /* the server drains already */
    atomic_store(&r->holding_self, 0);
    if (r->xfer_cb && !r->transfer_started) {
        /* a TRANSFER request still waiting for the commits in flight: its
         * timer is gone, answer it now (its peer-port thread waits) */
        clu_done_cb xcb = r->xfer_cb;
        r->xfer_cb = NULL;
        r->transferring = 0;
        xcb(r->xfer_data, CLU_ESHUTDOWN);
    }
    r->stop_cb = cb;
    r->stop_data = data;
    if (r->node)
        clu_node_close(r->node, node_closed, r);
    else if (cb)
        cb(data);
}

/* After a clean stop: when every local commit in the database was
 * committed by Raft, say so in the database, so that the next start need
 * not rebuild it from the snapshot (repair_if_ahead). */
static void mark_clean(struct rpl *r)
{
    char err[300];
    uint64_t lsn = 0;
    int committed = 0;
    if (!r->started || r->witness || !r->adb || atomic_load(&r->inflight) || atomic_load(&r->broken) ||
        txl_applied_state(r->adb, &lsn, &committed, err, sizeof err) || committed ||
        lsn != atomic_load(&r->applied_lsn))
        return;
    if (txl_mark_committed(r->adb, lsn, err, sizeof err))
        log_warn("repl.mark_committed", "lsn=%llu msg=\"%s\"", (unsigned long long)lsn, err);
}

void rpl_free(struct rpl *r)
{
    if (!r)
        return;
    join_hold(r, 1); /* a HOLD 0 started while the node closed (its transfer failed) */
    stop_applier(r);
    mark_clean(r);
    txl_applier_free(r->ap);
    sqlite3_close(r->adb);
    sqlite3_close(r->sdb);
    util_free(r->members);
    pthread_cond_destroy(&r->applied_cv);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->aq_cv);
    pthread_cond_destroy(&r->aq_idle_cv);
    pthread_mutex_destroy(&r->aq_mu);
    util_free(r);
}

/* ---- worker side ---- */

unsigned rpl_role_generation(struct rpl *r)
{
    return atomic_load(&r->role_gen);
}

int rpl_is_witness(struct rpl *r)
{
    return r->witness;
}

int rpl_is_leader(struct rpl *r)
{
    return atomic_load(&r->role) == CLU_ROLE_LEADER;
}

/* "The leader is HOST:PORT ..." for 25006: the leader's SQL address, asked
 * from its peer port once per leader (SQLADDR) and cached. */
static void leader_hint(struct rpl *r, char *hint, size_t cap)
{
    char peer[128], sql[128] = "";
    pthread_mutex_lock(&r->mu);
    util_strlcpy(peer, r->leader_hint, sizeof peer);
    if (peer[0] && strcmp(peer, r->leader_sql_for) == 0)
        util_strlcpy(sql, r->leader_sql, sizeof sql);
    pthread_mutex_unlock(&r->mu);
    if (!peer[0]) {
        snprintf(hint, cap, "No leader is known right now; retry.");
        return;
    }
    if (!sql[0]) {
        char err[200];
        if (clu_rpc_call(peer, "SQLADDR", sql, sizeof sql, NULL, 1000, err, sizeof err) == CLU_OK) {
            pthread_mutex_lock(&r->mu);
            util_strlcpy(r->leader_sql_for, peer, sizeof r->leader_sql_for);
            util_strlcpy(r->leader_sql, sql, sizeof r->leader_sql);
            pthread_mutex_unlock(&r->mu);
        } else {
            sql[0] = 0;
        }
    }
    if (sql[0])
        snprintf(hint, cap, "The leader is %s (SQL); connect there, or use a multi-host connection string "
                 "with target_session_attrs=read-write.", sql);
    else
        snprintf(hint, cap, "The leader's peer address is %s.", peer);
}

int rpl_write_check(struct rpl *r, char state[6], char *msg, size_t msgcap, char *hint, size_t hintcap)
{
    if (hint && hintcap)
        hint[0] = 0;
    if (atomic_load(&r->broken)) {
        memcpy(state, "58030", 6);
        snprintf(msg, msgcap, "a commit could not reach the txlog; this node refuses writes and restarts itself "
                              "(the restart repairs the database from the log)");
        return -1;
    }
    if (atomic_load(&r->nospace)) {
        memcpy(state, "53100", 6);
        snprintf(msg, msgcap, "could not write: less than disk_reserve is free on the data directory's disk");
        return -1;
    }
    if (atomic_load(&r->role) == CLU_ROLE_LEADER && atomic_load(&r->backlog) > 0 && r->pool) {
        /* a new leader applies what it was sent before its own writes */
        exe_block_begin(r->pool);
        int late = wait_drained(r, util_now_ns() + 30000000000ull);
        exe_block_end(r->pool);
        if (late) {
            memcpy(state, "25006", 6);
            snprintf(msg, msgcap, "this node leads but is still applying the log; retry");
            return -1;
        }
    }
    if (atomic_load(&r->role) != CLU_ROLE_LEADER || atomic_load(&r->stopping)) {
        memcpy(state, "25006", 6);
        snprintf(msg, msgcap, "cannot execute a write on a node that is not the leader");
        if (hint && hintcap)
            leader_hint(r, hint, hintcap);
        return -1;
    }
    return 0;
}

static int run_sql(struct exe_conn *c, const char *sql)
{
    sqlite3_stmt *st;
    int rc = exe_prepare(c, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        rc = rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : sqlite3_extended_errcode(c->db);
        exe_finish(c, st);
    }
    return rc;
}

/* Loop thread: Raft is done with the record (committed, or failed). */
static void commit_cb(void *data, uint64_t index, int status)
{
    struct rpl_wait *w = data;
    struct rpl *r = w->r;
    (void)index;
    if (status != 0) {
        /* not applied: the local commit is in the database but its record
         * may never be in the log */
        atomic_fetch_sub(&r->inflight, 1);
        if (status == CLU_ELEADERSHIPLOST || status == CLU_ENOTLEADER)
            fence(r, 0, "a local commit lost its place in the log");
        if (status != CLU_ESHUTDOWN && status != CLU_ELEADERSHIPLOST)
            atomic_store(&r->broken, 1);
    }
    pthread_mutex_lock(&r->mu);
    if (status == 0) {
        r->st.commits++;
        r->st.commit_wait_ns += util_now_ns() - w->t0_ns;
    } else {
        r->st.commit_failures++;
    }
    if (w->done) {
        pthread_mutex_unlock(&r->mu);
        w->status = status;
        w->done(w);
        return;
    }
    w->status = status;
    w->finished = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&r->mu);
}

int rpl_commit(struct rpl *r, struct exe_conn *c, struct rpl_wait *w, char state[6], char *msg, size_t msgcap)
{
    struct txl_record rec;
    char err[300];
    txl_record_init(&rec);
    if (txl_capture_take(c->cap, &rec, err, sizeof err)) {
        run_sql(c, "ROLLBACK");
        txl_capture_reset(c->cap);
        memcpy(state, "XX000", 6);
        snprintf(msg, msgcap, "could not record the transaction for replication: %s", err);
        return -1;
    }
    if (rec.nchanges == 0) {
        txl_record_free(&rec);
        int rc = run_sql(c, "COMMIT");
        if (rc != SQLITE_OK) {
            snprintf(msg, msgcap, "%s", sqlite3_errmsg(c->db));
            memcpy(state, sql_sqlstate(rc, msg), 6);
            if (!sqlite3_get_autocommit(c->db))
                run_sql(c, "ROLLBACK");
            return -1;
        }
        return 0;
    }
    struct buf enc;
    buf_init(&enc);
    rec.lsn = r->last_lsn + 1;
    rec.commit_us = util_wall_us();
    rec.origin = r->node_id;
    if (txl_encode(&rec, &enc) || enc.len > MAX_RECORD) {
        txl_record_free(&rec);
        buf_free(&enc);
        run_sql(c, "ROLLBACK");
        memcpy(state, "54000", 6);
        snprintf(msg, msgcap, "the transaction is too large to replicate: its txlog record exceeds %u MiB",
                 MAX_RECORD >> 20);
        return -1;
    }
    uint64_t lsn = rec.lsn;
    int ddl = txl_record_has_ddl(&rec);
    txl_record_free(&rec);
    if (disk_short(r, enc.len)) {
        run_sql(c, "ROLLBACK");
        memcpy(state, "53100", 6);
        snprintf(msg, msgcap, "could not write: the transaction's txlog record (%zu bytes) does not fit above "
                 "disk_reserve on the data directory's disk; it was rolled back", enc.len);
        buf_free(&enc);
        return -1;
    }
    int internal = c->fn.internal;
    c->fn.internal = 1; /* _orbit_applied is hidden from sessions */
    int rc = txl_capture_store_lsn(c->cap, lsn, err, sizeof err) ? SQLITE_ERROR : SQLITE_OK;
    c->fn.internal = internal;
    /* in flight from before COMMIT: a snapshot must not see this commit
     * until Raft has it */
    atomic_fetch_add(&r->inflight, 1);
    /* the role may have changed since the statements ran (the session
     * checked it then): a deposed leader must not commit (see
     * fsm_role_changed for the order) */
    if (atomic_load(&r->role) != CLU_ROLE_LEADER) {
        atomic_fetch_sub(&r->inflight, 1);
        run_sql(c, "ROLLBACK");
        buf_free(&enc);
        memcpy(state, "25006", 6);
        snprintf(msg, msgcap, "cannot commit: this node stopped being the leader during the transaction; "
                 "it was rolled back");
        return -1;
    }
    /* an earlier commit missed the log: this one would follow a gap */
    if (atomic_load(&r->broken)) {
        atomic_fetch_sub(&r->inflight, 1);
        run_sql(c, "ROLLBACK");
        buf_free(&enc);
        rpl_status_error(CLU_EIO, state, msg, msgcap);
        return -1;
    }
    /* readers that may see it wait for it (rpl_wait_visible) */
    atomic_store(&r->frontier, lsn);
    if (rc == SQLITE_OK)
        rc = run_sql(c, "COMMIT");
    else
        snprintf(msg, msgcap, "%s", err);
    if (rc != SQLITE_OK) {
        atomic_fetch_sub(&r->inflight, 1);
        atomic_store(&r->frontier, r->last_lsn);
        if (!msg[0] || rc != SQLITE_ERROR)
            snprintf(msg, msgcap, "%s", sqlite3_errmsg(c->db));
        memcpy(state, sql_sqlstate(rc, msg), 6);
        if (!sqlite3_get_autocommit(c->db))
            run_sql(c, "ROLLBACK");
        buf_free(&enc);
        return -1;
    }
    r->last_lsn = lsn;
    if (ddl)
        exe_schema_changed();
    w->r = r;
    w->finished = 0;
    w->status = 0;
    w->lsn = lsn;
    w->t0_ns = util_now_ns();
    if (!w->done)
        pthread_cond_init(&w->cv, NULL);
    atomic_fetch_add(&r->record_bytes, enc.len);
    /* queued in LSN order: the caller still holds the write token */
    int st = r->node ? clu_post(r->node, enc.data, enc.len, commit_cb, w) : CLU_ESHUTDOWN;
    buf_free(&enc);
    if (st != 0) {
        atomic_fetch_sub(&r->inflight, 1);
        if (st != CLU_ESHUTDOWN)
            atomic_store(&r->broken, 1);
        w->status = st;
        if (w->done)
            w->done(w); /* never posted: complete now, on this thread */
        else
            w->finished = 1;
    }
    return 1;
}

int rpl_wait(struct rpl *r, struct rpl_wait *w, char state[6], char *msg, size_t msgcap)
{
    pthread_mutex_lock(&r->mu);
    while (!w->finished)
        pthread_cond_wait(&w->cv, &r->mu);
    int st = w->status;
    pthread_mutex_unlock(&r->mu);
    pthread_cond_destroy(&w->cv);
    if (st == 0)
        return 0;
    rpl_status_error(st, state, msg, msgcap);
    return -1;
}

void rpl_status_error(int st, char state[6], char *msg, size_t msgcap)
{
    switch (st) {
    case CLU_ELEADERSHIPLOST:
        memcpy(state, "40003", 6);
        snprintf(msg, msgcap, "the commit's outcome is unknown: %s", clu_strerror(st));
        break;
    case CLU_ESHUTDOWN:
        memcpy(state, "57P01", 6);
        snprintf(msg, msgcap, "the server shut down before the commit was durable; it will not be kept");
        break;
    case CLU_ENOTLEADER:
        memcpy(state, "25006", 6);
        snprintf(msg, msgcap, "this node stopped being the leader before the commit was replicated");
        break;
    case CLU_ENOSPACE:
        memcpy(state, "53100", 6);
        snprintf(msg, msgcap, "could not write the txlog: no space left on device");
        break;
    default:
        memcpy(state, "58030", 6);
        snprintf(msg, msgcap, "could not write the txlog: %s", clu_strerror(st));
        break;
    }
}

/* Wait (off the run limit) until applied_lsn reaches want, the node stops
 * or breaks, or deadline_ns passes (0: none); with local set, also when the
 * frontier falls below want. 0 when reached. */
static int wait_applied(struct rpl *r, struct exe_pool *pool, uint64_t want, uint64_t deadline_ns, int local)
{
    if (atomic_load(&r->applied_lsn) >= want)
        return 0;
    exe_block_begin(pool);
    pthread_mutex_lock(&r->mu);
    atomic_fetch_add(&r->visible_waiters, 1);
    /* a commit whose Raft entry failed never becomes applied: stop
     * waiting when the node stops, or (a read fence) when it breaks */
    /* (local: want is this node's own frontier, and a COMMIT that failed
     * after moving the frontier to its LSN gives that LSN back: nothing
     * may ever apply it, so stop waiting. But a broken node's commits that
     * missed the log stay in its database until it restarts, which it does
     * within a tick: a local reader keeps waiting rather than show them.) */
    while (atomic_load(&r->applied_lsn) < want && (!local || atomic_load(&r->frontier) >= want) &&
           !atomic_load(&r->stopping) && (local || !atomic_load(&r->broken)) &&
           (!deadline_ns || util_now_ns() < deadline_ns)) {
        util_cond_wait_ns(&r->applied_cv, &r->mu, 50000000ull);
    }
    atomic_fetch_sub(&r->visible_waiters, 1);
    pthread_mutex_unlock(&r->mu);
    exe_block_end(pool);
    return atomic_load(&r->applied_lsn) >= want ? 0 : -1;
}

void rpl_wait_visible(struct rpl *r, struct exe_pool *pool)
{
    (void)wait_applied(r, pool, atomic_load(&r->frontier), 0, 1);
}

void rpl_leader_catch_up(struct rpl *r, struct exe_pool *pool)
{
    if (atomic_load(&r->backlog) > 0 && atomic_load(&r->role) == CLU_ROLE_LEADER) {
        exe_block_begin(pool);
        (void)wait_drained(r, util_now_ns() + 30000000000ull);
        exe_block_end(pool);
    }
}

int rpl_read_fence(struct rpl *r, struct exe_pool *pool, char *state, char *msg, size_t msgcap)
{
    char leader[128], reply[128], err[300];
    pthread_mutex_lock(&r->mu);
    util_strlcpy(leader, r->leader_hint, sizeof leader);
    pthread_mutex_unlock(&r->mu);
    uint64_t t0 = util_now_ns();
    unsigned long long index = 0, mark = 0;
    if (!leader[0]) {
        memcpy(state, "40001", 6);
        snprintf(msg, msgcap, "linearizable read: no leader is known to this node right now; retry");
        return -1;
    }
    exe_block_begin(pool);
    int rc = clu_rpc_call(leader, "READINDEX", reply, sizeof reply, NULL, READ_FENCE_TIMEOUT_MS, err, sizeof err);
    exe_block_end(pool);
    if (rc != CLU_OK || sscanf(reply, "%llu %llu", &index, &mark) != 2) {
        memcpy(state, "40001", 6);
        snprintf(msg, msgcap, "linearizable read: the leader could not confirm a read index: %s",
                 rc != CLU_OK ? err : reply);
        return -1;
    }
    if (wait_applied(r, pool, mark, t0 + READ_FENCE_TIMEOUT_MS * 1000000ull, 0)) {
        memcpy(state, "40001", 6);
        snprintf(msg, msgcap, "linearizable read: this node did not reach LSN %llu (the leader's) within %d ms",
                 mark, READ_FENCE_TIMEOUT_MS);
        return -1;
    }
    return 0;
}

void rpl_get_stats(struct rpl *r, struct rpl_stats *out)
{
    pthread_mutex_lock(&r->mu);
    *out = r->st;
    pthread_mutex_unlock(&r->mu);
    out->role = atomic_load(&r->role);
    out->lsn = atomic_load(&r->applied_lsn);
    out->inflight = atomic_load(&r->inflight);
    out->record_bytes = atomic_load(&r->record_bytes);
    out->nospace = atomic_load(&r->nospace);
}

void rpl_status(struct rpl *r, struct rpl_status *out)
{
    memset(out, 0, sizeof *out);
    out->id = r->node_id;
    out->lsn = atomic_load(&r->applied_lsn);
    out->state = "none";
    if (!r->node)
        return;
    util_strlcpy(out->address, clu_address(r->node), sizeof out->address);
    out->witness = r->witness;
    out->state = clu_role_name(clu_role(r->node));
    out->term = clu_term(r->node);
    out->commit_index = clu_commit_index(r->node);
    out->applied_index = clu_last_applied(r->node);
    out->last_index = clu_last_index(r->node);
    out->snapshot_index = clu_snapshot_index(r->node);
    clu_leader(r->node, &out->leader_id, out->leader_address, sizeof out->leader_address);
    struct clu_member m[16];
    int n = clu_members(r->node, m, 16);
    for (int i = 0; i < n && i < 16; i++) {
        out->members[i].id = m[i].id;
        util_strlcpy(out->members[i].address, m[i].address, sizeof out->members[i].address);
        out->members[i].role = m[i].witness ? "witness" : clu_member_role_name(m[i].role);
        out->members[i].match_index = m[i].match_index;
        out->members[i].lag_records = m[i].lag_records;
        out->members[i].lag_seconds = m[i].lag_seconds;
        out->members[i].contact_ms = m[i].contact_ms;
    }
    out->nmembers = n < 16 ? n : 16;
}

static int hold_request(struct rpl *r, unsigned ms);

/* The hand-over is over (done, failed or given up): writers go on (after
 * a hand-over they meet "not the leader", 25006) and new sessions are told
 * the role; a TRANSFER request gets its answer. */
static void step_down_end(struct rpl *r, int status)
{
    if (status != 0 && r->hold_addr[0])
        (void)hold_request(r, 0); /* the voter that was to take over need not wait any longer */
    r->hold_addr[0] = 0;
    r->transferring = 0;
    r->transfer_started = 0;
    atomic_store(&r->holding_self, 0);
    resume_writers(r);
    clu_done_cb cb = r->xfer_cb;
    r->xfer_cb = NULL;
    if (cb)
        cb(r->xfer_data, status);
}

static void stepped_down(void *data, int status)
{
    struct rpl *r = data;
    if (status == 0)
        log_info("repl.transferred", "msg=\"leadership handed over\"");
    else
        log_warn("repl.transfer_failed", "status=%s", clu_status_name(status));
    step_down_end(r, status);
}

/* Its own thread: ask the voter taking over to hold new sessions (HOLD,
 * served by rpc_request) until it leads, or release it (HOLD 0). It uses
 * only its own hold_call (the loop may pick the next target meanwhile). */
static void *hold_main(void *arg)
{
    struct hold_call *c = arg;
    char reply[64], err[200], q[240];
    if (clu_rpc_call(c->addr, c->req, reply, sizeof reply, NULL, HOLD_RPC_TIMEOUT_MS, err, sizeof err))
        log_warn("repl.hold_failed", "target=%s request=\"%s\" msg=%s", c->addr, c->req, log_quote(q, sizeof q, err));
    atomic_store(&c->sent, 1);
    return NULL;
}

/* Loop thread (or rpl_free): join the HOLD threads that are done, or
 * (wait) all of them (at most HOLD_RPC_TIMEOUT_MS each). */
static void join_hold(struct rpl *r, int wait)
{
    for (int i = 0; i < 2; i++) {
        struct hold_call *c = &r->hold_calls[i];
        if (c->on && (wait || atomic_load(&c->sent))) {
            pthread_join(c->thread, NULL);
            c->on = 0;
        }
    }
}

/* Loop thread: send "HOLD ms" to hold_addr on a thread of its own; 1 when
 * it is on its way (hold_calls[ms == 0].sent says when it is done). One
 * of each kind at a time: while the last one still runs none is sent,
 * rather than block the loop. */
static int hold_request(struct rpl *r, unsigned ms)
{
    struct hold_call *c = &r->hold_calls[ms == 0];
    join_hold(r, 0);
    if (c->on || !r->hold_addr[0])
        return 0;
    util_strlcpy(c->addr, r->hold_addr, sizeof c->addr);
    snprintf(c->req, sizeof c->req, "HOLD %u", ms);
    atomic_store(&c->sent, 0);
    c->on = pthread_create(&c->thread, NULL, hold_main, c) == 0;
    return c->on;
}

/* A hand-over (SIGTERM on the leader, orbitctl cluster transfer), polled
 * every 1 ms, in steps:
 *  ANNOUNCE: the voter taking over is asked to hold new sessions until it
 *    leads (HOLD); this node serves as before meanwhile. Without it a
 *    client trying the members in turn (libpq's host=a,b,c with
 *    target_session_attrs=read-write) between this node's last session
 *    and the end of the election finds no writable member and fails.
 *  OVERLAP (SIGTERM only): this node still takes sessions for
 *    STEP_OVERLAP_NS, for the clients that had passed the voter taking
 *    over before it held sessions and are on their way here.
 *  DRAIN (SIGTERM only): the server stops taking sessions and drains
 *    them; the transactions they have open (and a fresh session's first)
 *    finish while this node still leads, for at most STEP_DRAIN_MAX_NS.
 *  LAND: writers are paused and new sessions here wait; once no record is
 *    in flight and no transaction holds the write token (at most
 *    PAUSE_MAX_NS), clu_transfer. A leader that loses its leadership with
 *    records in flight must fence itself (fence()), and the switchover
 *    would fail the clients whose commits were under way. */
static void step_down_poll(uv_timer_t *t)
{
    struct rpl *r = t->data;
    uint64_t now = util_now_ns();
    int leads = r->node && clu_is_leader(r->node);
    if (r->step_phase == STEP_ANNOUNCE) {
        if (r->hold_wait && !atomic_load(&r->hold_calls[0].sent))
            return; /* at most HOLD_RPC_TIMEOUT_MS */
        join_hold(r, 0);
        r->drain_ms = 0;
        r->drain_left = 0;
        r->step_phase = r->stop_accepting ? STEP_OVERLAP : STEP_LAND;
        r->step_down_t0 = now;
    }
    if (r->step_phase == STEP_OVERLAP) {
        if (leads && now - r->step_down_t0 < STEP_OVERLAP_NS)
            return;
        void (*stop_accepting)(void *) = r->stop_accepting;
        r->stop_accepting = NULL;
        r->step_phase = STEP_DRAIN;
        r->step_down_t0 = now;
        stop_accepting(r->step_data);
    }
    if (r->step_phase == STEP_DRAIN) {
        int left = leads && r->sessions ? r->sessions(r->step_data) : 0;
        if (left > 0 && now - r->step_down_t0 < STEP_DRAIN_MAX_NS)
            return;
        r->drain_ms = (unsigned)((now - r->step_down_t0) / 1000000);
        r->drain_left = left;
        r->step_phase = STEP_LAND;
        r->step_down_t0 = now;
    }
    if (!atomic_load(&r->holding_self)) {
        pause_writers(r); /* no new local commits while the leadership moves */
        atomic_store(&r->holding_self, 1);
    }
    int waited_out = now - r->step_down_t0 > PAUSE_MAX_NS, held = 0;
    if (r->pool)
        (void)exe_write_waiters(r->pool, &held); /* a transaction still writing commits soon */
    if ((atomic_load(&r->inflight) > 0 || held) && !waited_out && leads)
        return;
    uv_timer_stop(t);
    int rc = !leads ? CLU_ENOTLEADER : clu_transfer(r->node, r->xfer_to, stepped_down, r);
    r->transfer_started = rc == 0;
    if (rc != 0) {
        step_down_end(r, rc);
        return;
    }
    log_info("repl.transfer", "msg=\"%s: handing leadership over once the commits in flight landed\" "
             "to=%016llx drain_ms=%u sessions_left=%d land_ms=%llu inflight=%d write_token_held=%d",
             r->xfer_cb ? "orbitctl cluster transfer" : "SIGTERM on the leader", (unsigned long long)r->xfer_to,
             r->drain_ms, r->drain_left, (unsigned long long)((now - r->step_down_t0) / 1000000),
             atomic_load(&r->inflight), held);
}

/* Loop thread, leading: start the hand-over to voter `to` (0: the most
 * caught-up voter with data). */
static void step_down_start(struct rpl *r, uint64_t to)
{
    r->transferring = 1;
    r->step_phase = STEP_ANNOUNCE;
    r->step_down_t0 = util_now_ns();
    r->hold_addr[0] = 0;
    if (to) {
        struct clu_member m[16];
        int n = clu_members(r->node, m, 16);
        for (int i = 0; i < n && i < 16; i++)
            if (m[i].id == to && m[i].role == CLU_MEMBER_VOTER && !m[i].witness) /* (others: it fails) */
                util_strlcpy(r->hold_addr, m[i].address, sizeof r->hold_addr);
    } else {
        to = clu_transfer_target(r->node, r->hold_addr, sizeof r->hold_addr);
    }
    r->xfer_to = to;
    r->hold_wait = hold_request(r, HOLD_MS);
    uv_timer_start(&r->step_timer, step_down_poll, 0, 1);
}

/* A TRANSFER request (clu_config.transfer): as at SIGTERM, without the
 * drain. Without this a commit in flight meets "not the leader" and the
 * old leader fences itself (a restart) instead of switching over without
 * errors. */
static int transfer_request(void *ud, uint64_t to, clu_done_cb cb, void *data)
{
    struct rpl *r = ud;
    if (r->transferring)
        return CLU_EBUSY;
    r->xfer_cb = cb;
    r->xfer_data = data;
    r->stop_accepting = NULL;
    r->sessions = NULL;
    step_down_start(r, to);
    return CLU_OK;
}

void rpl_step_down(struct rpl *r, void (*stop_accepting)(void *), int (*sessions)(void *), void *data)
{
    atomic_store(&r->shutting_down, 1);
    struct clu_member m[2];
    if (!r->node || !clu_is_leader(r->node) || clu_members(r->node, m, 2) < 2 || r->transferring) {
        stop_accepting(data);
        return;
    }
    r->xfer_cb = NULL;
    r->stop_accepting = stop_accepting;
    r->sessions = sessions;
    r->step_data = data;
    step_down_start(r, 0);
}

int rpl_hold_sessions(struct rpl *r)
{
    if (atomic_load(&r->holding_self))
        return 1;
    uint64_t until = atomic_load(&r->hold_until_ns);
    if (!until || util_now_ns() >= until)
        return 0;
    int role = atomic_load(&r->role);
    if (role == CLU_ROLE_LEADER)
        return 0;
    /* the transfer makes this node a candidate; any other role change
     * (another node won, this one stops) ends the wait */
    if (role == CLU_ROLE_CANDIDATE)
        return 1;
    if (atomic_load(&r->role_gen) != atomic_load(&r->hold_gen))
        return 0;
    /* still the follower it was when asked: another node may have won
     * without this one ever standing (the leader that asked died, and this
     * node voted for another): a new leader known here ends the wait too */
    pthread_mutex_lock(&r->mu);
    int same = !r->hold_leader[0] || !r->leader_hint[0] || strcmp(r->hold_leader, r->leader_hint) == 0;
    pthread_mutex_unlock(&r->mu);
    return same;
}

int rpl_stepping_down(struct rpl *r)
{
    return r->transferring;
}
