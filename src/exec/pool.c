/* exec/pool.c: worker threads, the run queue, the admission queue for
 * pooled connections, and the in-process write token.
 *
 * Task states (all transitions under pool->mu):
 *   idle -> admission (no free conn) -> ready -> running -> idle
 *   running -(EXE_WAIT_WRITE)-> parked on write queue -> ready -> running
 * A task is in at most one queue; only the worker running it touches it
 * outside the lock. */
#include "exec.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A worker's sleeping place: one per thread slot, alive as long as the
 * pool, so that a waker may signal it after dropping the pool lock. */
struct idle {
    pthread_cond_t cv;
    struct idle *next;      /* on the idle list */
    struct idle *next_wake; /* on the list pool_unlock signals */
    int woken;
};

struct queue {
    struct exe_task *head, *tail;
    int n;
    unsigned pushes;
};

/* the task running on this thread: time it waited on its client's socket,
 * jobs it read there (exe_poll_begin/_end), for run_ns and tasks_run */
static _Thread_local uint64_t tl_wait_ns, tl_poll_t0;
static _Thread_local unsigned tl_jobs;

struct exe_pool {
    pthread_mutex_t mu;
    atomic_int nready;  /* mirror of ready.n, read without the lock while spinning */
    int spin_ns;
    struct queue ready, admission, writeq;
    struct exe_conn *free_conns;
    struct exe_conn *reserved_free;
    struct exe_conn *conns;
    int nconns, nfree;
    struct exe_task *writer;
    int write_paused;
    int sleeping;
    struct idle *idle; /* sleeping workers, most recent first (LIFO keeps a few threads warm) */
    struct idle *slots; /* max_threads of them; slot i belongs to the i-th thread started */
    atomic_int next_slot;
    struct idle *to_signal; /* woken under the lock, signalled by pool_unlock */
    int running, max_running; /* tasks running, not counting blocked ones */
    pthread_t *threads;
    int nthreads, max_threads;
    int blocked; /* tasks inside exe_block_begin/_end */
    int polling, max_polling; /* tasks inside exe_poll_begin/_end (of the blocked ones) */
    /* the checkpointer (exe_config.checkpoint_pages) */
    int ckpt_pages;
    pthread_t ckpt_thread;
    int ckpt_started;
    sqlite3 *ckpt_db;
    struct sql_fnctx *ckpt_fn;
    pthread_cond_t ckpt_cv; /* under mu */
    int ckpt_wanted;
    int stopping;
    uint64_t admission_timeout_ns;
    struct exe_stats st;
};

static void q_push(struct queue *q, struct exe_task *t)
{
    q->pushes++;
    t->next = NULL;
    if (q->tail)
        q->tail->next = t;
    else
        q->head = t;
    q->tail = t;
    q->n++;
}

static struct exe_task *q_pop(struct queue *q)
{
    struct exe_task *t = q->head;
    if (!t)
        return NULL;
    q->head = t->next;
    if (!q->head)
        q->tail = NULL;
    q->n--;
    t->next = NULL;
    return t;
}

/* Remove and return the first short task of q, or NULL. */
static struct exe_task *q_take_short(struct queue *q)
{
    struct exe_task *prev = NULL;
    for (struct exe_task *t = q->head; t; prev = t, t = t->next) {
        if (!t->short_job)
            continue;
        if (prev)
            prev->next = t->next;
        else
            q->head = t->next;
        if (q->tail == t)
            q->tail = prev;
        q->n--;
        t->next = NULL;
        return t;
    }
    return NULL;
}

/* Remove tasks for which pred() is true, moving them to the ready queue. */
static int q_move_if(struct queue *q, struct queue *ready, int (*pred)(struct exe_task *, void *), void *arg,
                     int flag)
{
    int moved = 0;
    struct exe_task **pp = &q->head, *prev = NULL;
    while (*pp) {
        struct exe_task *t = *pp;
        if (pred(t, arg)) {
            *pp = t->next;
            if (q->tail == t)
                q->tail = prev;
            q->n--;
            t->flags |= flag;
            q_push(ready, t);
            moved++;
        } else {
            prev = t;
            pp = &t->next;
        }
    }
    return moved;
}

/* Wake the most recently idle worker (lock held). Its condition variable
 * is signalled by pool_unlock, once the lock is dropped: signalled under
 * the lock, the worker would wake only to block on the lock its waker
 * still holds. */
static void wake_one(struct exe_pool *p)
{
    struct idle *w = p->idle;
    if (!w)
        return;
    p->idle = w->next;
    w->woken = 1;
    w->next_wake = p->to_signal;
    p->to_signal = w;
}

/* Drop the pool lock, then signal the workers woken while it was held. */
static void pool_unlock(struct exe_pool *p)
{
    struct idle *w = p->to_signal;
    p->to_signal = NULL;
    pthread_mutex_unlock(&p->mu);
    while (w) {
        struct idle *next = w->next_wake;
        pthread_cond_signal(&w->cv);
        w = next;
    }
}

static void wake_all(struct exe_pool *p)
{
    while (p->idle)
        wake_one(p);
}

static void *worker_main(void *arg);

/* Start one more worker thread, up to max_threads (lock held). */
static void spawn(struct exe_pool *p)
{
    if (!p->stopping && p->nthreads < p->max_threads &&
        pthread_create(&p->threads[p->nthreads], NULL, worker_main, p) == 0)
        p->nthreads++;
}

/* Make t runnable and wake a worker if one sleeps (lock held). */
static void ready_push(struct exe_pool *p, struct exe_task *t)
{
    if (t->holds_write && p->ready.head) {
        /* every writer waits for this one: run it first */
        p->ready.pushes++;
        t->next = p->ready.head;
        p->ready.head = t;
        p->ready.n++;
    } else {
        q_push(&p->ready, t);
    }
    atomic_store_explicit(&p->nready, p->ready.n, memory_order_relaxed);
    /* a woken thread could not run it while `workers` tasks run: the
     * first of those to finish takes it */
    if (p->running < p->max_running) {
        if (p->sleeping)
            wake_one(p);
        else if (p->blocked)
            spawn(p); /* every thread is busy or blocked: one more */
    }
}

static void *worker_main(void *arg)
{
    struct exe_pool *p = arg;
    struct idle *me = &p->slots[atomic_fetch_add(&p->next_slot, 1)];
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct exe_task *t = p->running < p->max_running ? q_pop(&p->ready) : NULL;
        atomic_store_explicit(&p->nready, p->ready.n, memory_order_relaxed);
        if (!t) {
            if (p->stopping && !p->ready.n)
                break;
            /* Spin briefly before sleeping: a sleeping worker costs two
             * context switches per job, which dominates short queries. */
            if (p->spin_ns) {
                pool_unlock(p);
                uint64_t until = util_now_ns() + (uint64_t)p->spin_ns;
                while (!atomic_load_explicit(&p->nready, memory_order_relaxed) && util_now_ns() < until)
                    util_cpu_relax();
                pthread_mutex_lock(&p->mu);
                if (p->ready.n)
                    continue;
            }
            if (p->to_signal) { /* never sleep on a wake-up not yet sent */
                pool_unlock(p);
                pthread_mutex_lock(&p->mu);
                continue;
            }
            me->next = p->idle;
            me->woken = 0;
            p->idle = me;
            p->sleeping++;
            while (!me->woken)
                pthread_cond_wait(&me->cv, &p->mu);
            p->sleeping--;
            continue;
        }
        p->st.tasks_run++;
        p->running++;
        pool_unlock(p);
        uint64_t t0 = util_now_ns();
        enum exe_rc rc = t->run(t);
        uint64_t dt = util_now_ns() - t0;
        pthread_mutex_lock(&p->mu);
        p->st.run_ns += dt > tl_wait_ns ? dt - tl_wait_ns : 0;
        p->st.tasks_run += tl_jobs;
        tl_wait_ns = 0;
        tl_jobs = 0;
        p->running--; /* this thread goes on with the next ready task itself */
        if (rc == EXE_WAIT_WRITE) {
            if (!p->writer && !p->write_paused) {
                p->writer = t;
                t->holds_write = 1;
                t->write_t0_ns = util_now_ns();
                ready_push(p, t);
            } else {
                p->st.write_waits++;
                t->queued_ns = util_now_ns();
                q_push(&p->writeq, t);
            }
        }
    }
    pool_unlock(p);
    return NULL;
}

/* Back on its free list (lock held, or before the workers start). */
static void conn_put_free(struct exe_pool *p, struct exe_conn *c)
{
    if (c->reserved) {
        c->next_free = p->reserved_free;
        p->reserved_free = c;
    } else {
        c->next_free = p->free_conns;
        p->free_conns = c;
        p->nfree++;
    }
}

static void cache_flush(struct exe_conn *c);

static void conn_close(struct exe_conn *c)
{
    cache_flush(c);
    map_free(&c->cache);
    txl_capture_free(c->cap);
    c->cap = NULL;
    if (c->db)
        sqlite3_close_v2(c->db);
    c->db = NULL;
}

/* ---- the checkpointer ----
 * SQLite's automatic checkpoint runs inside the COMMIT of whichever
 * connection pushed the WAL past its threshold: that writer holds the write
 * token all the while (every writer waits), and its commit is already
 * visible while it runs, so readers wait for its durability longer too.
 * Pooled connections turn it off (their WAL hook only counts pages) and a
 * thread with its own connection runs PASSIVE checkpoints instead, which
 * never block writers or readers. */

static int wal_hook(void *arg, sqlite3 *db, const char *dbname, int pages)
{
    struct exe_pool *p = arg;
    (void)db;
    (void)dbname;
    if (pages >= p->ckpt_pages) {
        pthread_mutex_lock(&p->mu);
        if (!p->ckpt_wanted) {
            p->ckpt_wanted = 1;
            pthread_cond_signal(&p->ckpt_cv);
        }
        pool_unlock(p);
    }
    return SQLITE_OK;
}

/* Checkpoints start at most this often. Under steady writes the WAL stays
 * above the threshold (readers keep it from restarting), so every commit
 * asked for one, and each one fsyncs the WAL and the database: hundreds of
 * fsyncs a second competing with the Raft log's on the same disk. A
 * checkpoint that could not copy every frame (a reader still used an older
 * snapshot) is tried again after the same interval, since until it
 * completes every page a reader needs is looked up in the WAL index and
 * read from the WAL. */
#define CKPT_INTERVAL_NS (200ull * 1000000ull)

static void *ckpt_main(void *arg)
{
    struct exe_pool *p = arg;
    int again = 0;       /* the last checkpoint left frames behind */
    uint64_t last = 0;   /* when the last one started */
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && !p->ckpt_wanted && !again)
            pthread_cond_wait(&p->ckpt_cv, &p->mu);
        uint64_t now;
        while (!p->stopping && (now = util_now_ns()) < last + CKPT_INTERVAL_NS)
            util_cond_wait_ns(&p->ckpt_cv, &p->mu, last + CKPT_INTERVAL_NS - now);
        if (p->stopping)
            break;
        p->ckpt_wanted = 0;
        pool_unlock(p);
        uint64_t t0 = last = util_now_ns();
        int wal = 0, done = 0;
        int rc = sqlite3_wal_checkpoint_v2(p->ckpt_db, "main", SQLITE_CHECKPOINT_PASSIVE, &wal, &done);
        uint64_t dt = util_now_ns() - t0;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            log_warn("checkpoint", "msg=\"%s\"", sqlite3_errmsg(p->ckpt_db));
        again = (rc == SQLITE_OK || rc == SQLITE_BUSY) && done < wal;
        log_debug("checkpoint", "wal_frames=%d copied=%d ms=%.3f", wal, done, (double)dt / 1e6);
        pthread_mutex_lock(&p->mu);
        p->st.checkpoints++;
        p->st.checkpoint_ns += dt;
    }
    pool_unlock(p);
    return NULL;
}

struct exe_pool *exe_pool_new(const struct exe_config *cfg, char *err, size_t errcap)
{
    struct exe_pool *p = util_calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->ckpt_cv, NULL);
    p->admission_timeout_ns = cfg->admission_timeout_ns;
    p->spin_ns = cfg->spin_us * 1000;
    int nconns = cfg->pool_size + cfg->reserved_conns;
    p->conns = util_calloc((size_t)nconns, sizeof *p->conns);
    p->max_running = cfg->workers;
    /* `workers` threads now; up to blocking_threads more are started when
     * tasks block (exe_block_begin) and work waits: a pool of sleeping
     * spare threads made reads measurably slower (wakeups spread over them) */
    int nthreads = cfg->workers;
    p->max_threads = cfg->workers + cfg->blocking_threads;
    p->max_polling = cfg->max_polling > 0 ? cfg->max_polling : 1;
    p->threads = util_calloc((size_t)p->max_threads, sizeof *p->threads);
    p->slots = util_calloc((size_t)p->max_threads, sizeof *p->slots);
    if (!p->conns || !p->threads || !p->slots) {
        snprintf(err, errcap, "out of memory");
        goto fail;
    }
    for (int i = 0; i < p->max_threads; i++)
        pthread_cond_init(&p->slots[i].cv, NULL);
    for (int i = 0; i < nconns; i++) {
        struct exe_conn *c = &p->conns[i];
        map_init(&c->cache);
        c->cache_cap = (size_t)cfg->cache_size;
        if (sql_db_open(cfg->db_path, &c->fn, &c->db, err, errcap))
            goto fail;
        p->nconns++;
        if (cfg->capture && !(c->cap = txl_capture_new(c->db))) {
            snprintf(err, errcap, "out of memory");
            goto fail;
        }
        c->reserved = i >= cfg->pool_size;
        conn_put_free(p, c);
        if (cfg->checkpoint_pages > 0)
            sqlite3_wal_hook(c->db, wal_hook, p); /* replaces the automatic checkpoint */
    }
    p->ckpt_pages = cfg->checkpoint_pages;
    if (cfg->checkpoint_pages > 0) {
        struct sql_fnctx *fn = util_calloc(1, sizeof *fn);
        p->ckpt_fn = fn;
        if (!fn || sql_db_open(cfg->db_path, fn, &p->ckpt_db, err, errcap))
            goto fail;
        if (pthread_create(&p->ckpt_thread, NULL, ckpt_main, p)) {
            snprintf(err, errcap, "could not start the checkpoint thread");
            goto fail;
        }
        p->ckpt_started = 1;
    }
    for (int i = 0; i < nthreads; i++) {
        if (pthread_create(&p->threads[i], NULL, worker_main, p)) {
            snprintf(err, errcap, "could not start worker thread");
            goto fail;
        }
        p->nthreads++;
    }
    return p;
fail:
    exe_pool_free(p);
    return NULL;
}

void exe_pool_free(struct exe_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    wake_all(p);
    pool_unlock(p);
    pthread_cond_broadcast(&p->ckpt_cv);
    for (int i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    if (p->ckpt_started)
        pthread_join(p->ckpt_thread, NULL);
    if (p->ckpt_db)
        sqlite3_close_v2(p->ckpt_db);
    util_free(p->ckpt_fn);
    pthread_cond_destroy(&p->ckpt_cv);
    for (int i = 0; i < p->nconns; i++)
        conn_close(&p->conns[i]);
    util_free(p->conns);
    util_free(p->threads);
    if (p->slots)
        for (int i = 0; i < p->max_threads; i++)
            pthread_cond_destroy(&p->slots[i].cv);
    util_free(p->slots);
    pthread_mutex_destroy(&p->mu);
    util_free(p);
}

void exe_set_admission_timeout(struct exe_pool *p, uint64_t ns)
{
    pthread_mutex_lock(&p->mu);
    p->admission_timeout_ns = ns;
    pool_unlock(p);
}

/* A free pooled connection for t when one is free and no task waits
 * for one (lock held): 1, else 0. */
static int take_free_conn(struct exe_pool *p, struct exe_task *t)
{
    if (!p->free_conns || p->admission.n != 0)
        return 0;
    t->conn = p->free_conns;
    p->free_conns = t->conn->next_free;
    p->nfree--;
    return 1;
}

void exe_submit(struct exe_pool *p, struct exe_task *t)
{
    pthread_mutex_lock(&p->mu);
    t->queued_ns = util_now_ns();
    if (!t->conn && !take_free_conn(p, t)) {
        if (t->short_job && p->reserved_free) {
            t->conn = p->reserved_free;
            p->reserved_free = t->conn->next_free;
        } else {
            p->st.admission_waits++;
            q_push(&p->admission, t);
            pool_unlock(p);
            return;
        }
    }
    ready_push(p, t);
    pool_unlock(p);
}

/* Detach t's connection (before taking the lock): NULL when it has none. */
static struct exe_conn *detach_conn(struct exe_task *t)
{
    struct exe_conn *c = t->conn;
    if (!c)
        return NULL;
    if (c->db && !sqlite3_get_autocommit(c->db)) {
        /* a bug above: the next user of this connection would write into
         * (and commit) someone else's transaction, which never reached the
         * txlog. Contain it: roll it back and say so. */
        log_error("exec.open_transaction_returned", "msg=\"a pooled connection came back inside a transaction; "
                  "rolled back\"");
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
        if (c->cap)
            txl_capture_reset(c->cap);
    }
    t->conn = NULL;
    c->fn.session = NULL;
    c->fn.cancel = NULL;
    c->fn.deadline_ns = 0;
    return c;
}

/* c to the first task waiting for one, or back on its free list (lock held). */
static void give_back_locked(struct exe_pool *p, struct exe_conn *c)
{
    struct exe_task *w = c->reserved ? q_take_short(&p->admission) : q_pop(&p->admission);
    if (w) {
        w->conn = c;
        ready_push(p, w);
    } else {
        conn_put_free(p, c);
    }
}

void exe_release_conn(struct exe_pool *p, struct exe_task *t)
{
    struct exe_conn *c = detach_conn(t);
    if (!c)
        return;
    pthread_mutex_lock(&p->mu);
    give_back_locked(p, c);
    pool_unlock(p);
}

/* Give the free write token to the first parked task (lock held). */
static void hand_write_token(struct exe_pool *p)
{
    if (p->writer || p->write_paused)
        return;
    struct exe_task *w = q_pop(&p->writeq);
    if (w) {
        p->writer = w;
        w->holds_write = 1;
        w->write_t0_ns = util_now_ns();
        ready_push(p, w);
    }
}

int exe_write_try(struct exe_pool *p, struct exe_task *t)
{
    if (t->holds_write)
        return 1;
    pthread_mutex_lock(&p->mu);
    int ok = 0;
    if (!p->writer && p->writeq.n == 0 && !p->write_paused) {
        p->writer = t;
        t->holds_write = 1;
        t->write_t0_ns = util_now_ns();
        ok = 1;
    }
    pool_unlock(p);
    return ok;
}

void exe_write_release(struct exe_pool *p, struct exe_task *t)
{
    if (!t->holds_write)
        return;
    pthread_mutex_lock(&p->mu);
    t->holds_write = 0;
    p->st.write_holds++;
    p->st.write_hold_ns += util_now_ns() - t->write_t0_ns;
    p->writer = NULL;
    hand_write_token(p);
    pool_unlock(p);
}

/* The running task blocks (lock held): another thread takes ready work. */
static void block_locked(struct exe_pool *p)
{
    p->running--;
    p->blocked++;
    if (p->ready.n && p->sleeping)
        wake_one(p);
    else if (p->ready.n)
        spawn(p);
}

void exe_block_begin(struct exe_pool *p)
{
    pthread_mutex_lock(&p->mu);
    block_locked(p);
    pool_unlock(p);
}

void exe_block_end(struct exe_pool *p)
{
    pthread_mutex_lock(&p->mu);
    p->running++;
    p->blocked--;
    pool_unlock(p);
}

int exe_poll_begin(struct exe_pool *p, struct exe_task *t, int always, int release)
{
    struct exe_conn *c = release ? detach_conn(t) : NULL;
    pthread_mutex_lock(&p->mu); /* once per request on the direct path: one lock for both */
    if (c)
        give_back_locked(p, c);
    int ok = always || p->polling < p->max_polling;
    if (ok) {
        p->polling++;
        block_locked(p);
    }
    pool_unlock(p);
    tl_poll_t0 = util_now_ns();
    return ok;
}

int exe_poll_end(struct exe_pool *p, struct exe_task *t, int got)
{
    tl_wait_ns += util_now_ns() - tl_poll_t0;
    pthread_mutex_lock(&p->mu);
    int ran = got && (t->conn || take_free_conn(p, t));
    p->polling--;
    p->running++;
    p->blocked--;
    p->st.direct_jobs += (uint64_t)ran;
    pool_unlock(p);
    tl_jobs += (unsigned)ran;
    return ran;
}

void exe_write_pause(struct exe_pool *p, int paused)
{
    pthread_mutex_lock(&p->mu);
    p->write_paused = paused;
    hand_write_token(p);
    pool_unlock(p);
}

int exe_write_waiters(struct exe_pool *p, int *held)
{
    pthread_mutex_lock(&p->mu);
    int n = p->writeq.n;
    if (held)
        *held = p->writer != NULL;
    pool_unlock(p);
    return n;
}

struct to_arg {
    uint64_t now;
    uint64_t limit;
};

static int admission_expired(struct exe_task *t, void *arg)
{
    struct to_arg *a = arg;
    return a->limit && a->now - t->queued_ns > a->limit;
}

static int write_wait_aborted(struct exe_task *t, void *arg)
{
    struct to_arg *a = arg;
    return t->should_abort && t->should_abort(t, a->now);
}

void exe_check_timeouts(struct exe_pool *p, uint64_t now_ns)
{
    struct to_arg a = {now_ns, 0};
    pthread_mutex_lock(&p->mu);
    a.limit = p->admission_timeout_ns;
    int moved = 0;
    if (p->admission.n) {
        int n = q_move_if(&p->admission, &p->ready, admission_expired, &a, EXE_F_ADMISSION_TIMEOUT);
        p->st.admission_timeouts += (uint64_t)n;
        moved += n;
    }
    if (p->writeq.n)
        moved += q_move_if(&p->writeq, &p->ready, write_wait_aborted, &a, EXE_F_WAIT_ABORTED);
    if (moved) {
        atomic_store_explicit(&p->nready, p->ready.n, memory_order_relaxed);
        wake_all(p);
    }
    pool_unlock(p);
}

void exe_get_stats(struct exe_pool *p, struct exe_stats *out)
{
    pthread_mutex_lock(&p->mu);
    *out = p->st;
    out->conns_free = p->nfree;
    out->conns_total = p->nconns;
    out->queued = p->ready.n + p->admission.n + p->writeq.n;
    for (int i = 0; i < p->nconns; i++) {
        out->cache_hits += atomic_load_explicit(&p->conns[i].cache_hits, memory_order_relaxed);
        out->cache_misses += atomic_load_explicit(&p->conns[i].cache_misses, memory_order_relaxed);
    }
    pool_unlock(p);
}

/* ---- statement cache ---- */

/* Cached statements are stored in the map by their SQL text; a statement
 * in use is removed from the map and put back by exe_finish, so two users
 * of the same text on one connection get two statements. */
static atomic_uint schema_gen;

void exe_schema_changed(void)
{
    atomic_fetch_add_explicit(&schema_gen, 1, memory_order_release);
}

static void cache_flush(struct exe_conn *c)
{
    size_t it = 0;
    void *v;
    while (map_next(&c->cache, &it, NULL, &v))
        sqlite3_finalize((sqlite3_stmt *)v);
    map_free(&c->cache);
    map_init(&c->cache);
    c->ncached = 0;
}

int exe_prepare(struct exe_conn *c, const char *sql, int len, sqlite3_stmt **out, const char **tail)
{
    *out = NULL;
    unsigned gen = atomic_load_explicit(&schema_gen, memory_order_acquire);
    if (gen != c->schema_gen) {
        cache_flush(c);
        /* a statement that reads a table makes SQLite compare the schema
         * cookie and load a schema that changed (prepare alone does not
         * look, nor does PRAGMA schema_version). Inside a transaction the
         * snapshot may predate the change: look again after it. */
        int internal = c->fn.internal;
        c->fn.internal = 1;
        sqlite3_exec(c->db, "SELECT 1 FROM sqlite_schema LIMIT 0", NULL, NULL, NULL);
        c->fn.internal = internal;
        if (sqlite3_get_autocommit(c->db))
            c->schema_gen = gen;
    }
    /* The cache needs a NUL-terminated key of exactly this statement: only
     * cache when the text is the whole string (the common case). */
    if (len < 0 && c->cache_cap) {
        sqlite3_stmt *st = map_del(&c->cache, sql);
        if (st) {
            c->ncached--;
            atomic_fetch_add_explicit(&c->cache_hits, 1, memory_order_relaxed);
            *out = st;
            if (tail)
                *tail = sql + strlen(sql);
            return SQLITE_OK;
        }
    }
    atomic_fetch_add_explicit(&c->cache_misses, 1, memory_order_relaxed);
    return sqlite3_prepare_v3(c->db, sql, len, SQLITE_PREPARE_PERSISTENT, out, tail);
}

void exe_finish(struct exe_conn *c, sqlite3_stmt *st)
{
    if (!st)
        return;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    const char *sql = sqlite3_sql(st);
    if (c->cache_cap && sql && !map_get(&c->cache, sql)) {
        if (c->ncached >= c->cache_cap) {
            /* evict an arbitrary entry */
            size_t it = 0;
            const char *k;
            void *v;
            if (map_next(&c->cache, &it, &k, &v)) {
                char *kk = util_strdup(k);
                if (kk) {
                    sqlite3_finalize(map_del(&c->cache, kk));
                    util_free(kk);
                    c->ncached--;
                }
            }
        }
        if (c->ncached < c->cache_cap && map_put(&c->cache, sql, st, NULL) == 0) {
            c->ncached++;
            return;
        }
    }
    sqlite3_finalize(st);
}
