/* exec: executor threads and pooled SQLite connections.
 * A task (embedded in a session) is submitted when its session has work;
 * exec gives it a pooled connection (admission queue when none is free),
 * runs it on a worker thread, and serialises writers with one in-process
 * write token so that no worker thread ever sleeps on SQLite's lock: a
 * task that needs the token and cannot get it is parked (holding its
 * connection) and re-queued when the token is released.
 * Prefix: exe_. */
#ifndef ORBIT_EXEC_H
#define ORBIT_EXEC_H

#include <sqlite3.h>
#include <stdint.h>

#include <stdatomic.h>

#include "sql.h"
#include "txlog.h"
#include "util.h"

struct exe_pool;

/* A pooled SQLite connection with its statement cache. */
struct exe_conn {
    sqlite3 *db;
    struct map cache; /* SQL text -> struct exe_cached */
    size_t ncached;
    size_t cache_cap;
    atomic_ullong cache_hits, cache_misses; /* written by its user, read by exe_get_stats */
    struct sql_fnctx fn; /* what SQL functions see of the session using it */
    struct txl_capture *cap; /* change capture (exe_config.capture), else NULL */
    struct exe_conn *next_free;
    int reserved; /* kept for short tasks (exe_task.short_job) */
    unsigned schema_gen; /* exe_schema_changed count its cache and schema are current with */
};

enum exe_rc {
    EXE_DONE = 0,       /* task finished this turn */
    EXE_WAIT_WRITE = 1, /* park until the write token is free, then run again */
    EXE_PARK = 2,       /* leave the task alone: its owner submits it again later
                           (the pool never touches it after run returns this) */
};

enum exe_flags {
    EXE_F_ADMISSION_TIMEOUT = 1, /* no connection became free in time (conn is NULL) */
    EXE_F_WAIT_ABORTED = 2,      /* cancelled or timed out while parked for the write token */
};

struct exe_task;
typedef enum exe_rc (*exe_run_fn)(struct exe_task *t);
/* Called with the pool lock held, from exe_check_timeouts, for a task
 * parked for the write token: return 1 to abort the wait. Must be cheap. */
typedef int (*exe_abort_fn)(struct exe_task *t, uint64_t now_ns);

struct exe_task {
    struct exe_task *next;
    exe_run_fn run;
    exe_abort_fn should_abort;
    struct exe_conn *conn; /* held pooled connection or NULL */
    uint64_t queued_ns;
    int holds_write;
    uint64_t write_t0_ns;  /* when the write token was granted */
    int short_job;         /* set by the submitter: needs a connection only briefly and
                              never keeps it (no transaction): may use a reserved one */
    int flags;             /* enum exe_flags, cleared by the run function */
};

struct exe_config {
    const char *db_path;
    int workers;
    int pool_size;
    int cache_size;
    uint64_t admission_timeout_ns;
    int spin_us; /* how long an idle worker polls before sleeping */
    int capture; /* give every connection a txlog capture */
    int blocking_threads; /* extra threads for tasks blocked in exe_block_begin */
    int max_polling;      /* of those, at most this many waiting on a client's socket */
    int checkpoint_pages; /* > 0: checkpoint on a thread of its own once the WAL has this many
                             pages, not inside a writer's COMMIT (0: SQLite's automatic one) */
    int reserved_conns;   /* connections beyond pool_size kept for short tasks, so that a
                             client that blocks on one session (libpq's PQprepare) while
                             its other sessions hold every pooled connection in open
                             transactions cannot deadlock the pool */
};

/* Start the worker threads and open pool_size connections. Returns NULL
 * with err filled on failure. */
struct exe_pool *exe_pool_new(const struct exe_config *cfg, char *err, size_t errcap);
/* Stop workers (after the queues drain) and close every connection. */
void exe_pool_free(struct exe_pool *p);
void exe_set_admission_timeout(struct exe_pool *p, uint64_t ns);

/* Queue t to run (thread-safe). When t->conn is NULL a connection is
 * acquired first (FIFO admission). The task must not be queued already. */
void exe_submit(struct exe_pool *p, struct exe_task *t);
/* From inside run: give the connection back (t->conn becomes NULL). The
 * caller must have finished every statement and transaction on it. */
void exe_release_conn(struct exe_pool *p, struct exe_task *t);
/* From inside run: 1 when t holds (or now got) the write token, 0 when it
 * must return EXE_WAIT_WRITE. */
int exe_write_try(struct exe_pool *p, struct exe_task *t);
void exe_write_release(struct exe_pool *p, struct exe_task *t);
/* From inside run, around a wait that is not CPU work (a commit waiting
 * for Raft): another task may run on a spare thread meanwhile. At most
 * `workers` tasks run at once outside such waits. */
void exe_block_begin(struct exe_pool *p);
void exe_block_end(struct exe_pool *p);
/* From inside run, around a wait on the client's socket for its next
 * request (a blocked task, as above). poll_begin first gives t's
 * connection back when `release` (the session holds nothing open on it),
 * then returns 0 without blocking when max_polling tasks wait so already,
 * unless `always` (the write-token holder, whom every writer waits for).
 * poll_end(got = a request arrived) takes a free pooled connection for t
 * if it has none and one is free with nobody waiting for one (never
 * waits); it returns 1 when the run goes on with that request, counted as
 * a job of its own (direct_jobs, with the wait kept out of its time), and
 * 0 when the loop must queue it. One lock each: the direct path calls
 * both once per request. */
int exe_poll_begin(struct exe_pool *p, struct exe_task *t, int always, int release);
int exe_poll_end(struct exe_pool *p, struct exe_task *t, int got);
/* Any thread. While paused, the write token is handed to nobody new: a
 * task asking for it parks (the current holder keeps it until it
 * releases it). Unpausing hands it to the first parked task. */
void exe_write_pause(struct exe_pool *p, int paused);
/* Tasks parked for the write token (and whether one holds it). */
int exe_write_waiters(struct exe_pool *p, int *held);
/* Periodic housekeeping (any thread): admission timeouts and aborted
 * write waits are moved to the run queue with a flag set. */
void exe_check_timeouts(struct exe_pool *p, uint64_t now_ns);

/* Counters for observability. */
struct exe_stats {
    uint64_t tasks_run;
    uint64_t direct_jobs; /* of which read from the client's socket by the executor thread itself */
    uint64_t admission_waits;
    uint64_t admission_timeouts;
    uint64_t write_waits;
    uint64_t write_holds;   /* write token grants released */
    uint64_t write_hold_ns; /* total time the token was held */
    uint64_t run_ns;        /* total time tasks ran (including commit waits) */
    uint64_t checkpoints;   /* WAL checkpoints run by the checkpoint thread */
    uint64_t checkpoint_ns;
    uint64_t cache_hits, cache_misses; /* statement cache, all connections */
    int conns_free;
    int conns_total;
    int queued;
};
void exe_get_stats(struct exe_pool *p, struct exe_stats *out);

/* Statement cache of a connection. exe_prepare returns a statement for
 * exactly the first statement of sql (tail set like sqlite3_prepare_v3);
 * a statement from the cache is marked in use until exe_finish, which
 * resets it (and clears bindings) or finalizes an uncached one. */
int exe_prepare(struct exe_conn *c, const char *sql, int len, sqlite3_stmt **out, const char **tail);

/* A committed transaction changed the schema (any node's DDL, committed
 * or applied here). A statement SQLite compiled before reports the old
 * result columns until its first step, and a connection compiles against
 * the schema it last read, so each pooled connection's next exe_prepare
 * drops its cached statements and re-reads the schema first: a
 * RowDescription sent before the first row then matches the rows. */
void exe_schema_changed(void);
void exe_finish(struct exe_conn *c, sqlite3_stmt *st);

#endif
