/* repl: the replicated commit path. It joins the txlog (what a
 * transaction changed) to the cluster (Raft) and to the executor pool:
 *   - workers commit a write transaction locally, hand its record to Raft
 *     and wait until Raft has committed it (group commit: the write token
 *     is released before the wait, so many records are in flight);
 *   - the FSM applies records from other leaders and from the log at
 *     startup, keeps the applied LSN, takes and restores file snapshots;
 *   - at startup a database found ahead of its durable log is restored
 *     from the newest snapshot (or the base copy made at initialisation)
 *     and the log replays into it.
 * Design: docs/repl.md. Prefix: rpl_. */
#ifndef ORBIT_REPL_H
#define ORBIT_REPL_H

#include <pthread.h>
#include <stdint.h>
#include <uv.h>

#include "exec.h"
#include "util.h"

struct rpl;

struct rpl_config {
    const char *data_dir;
    const char *db_path;
    const char *peer;          /* advertised HOST:PORT for Raft */
    const char *join;          /* NULL or "" = bootstrap a fresh data dir */
    const char *join_role;     /* voter (NULL), standby or spare */
    const char *sql_address;   /* HOST:PORT clients use (the 25006 hint on followers) */
    const char *initial_members; /* NULL or "": this node alone */
    unsigned election_timeout_ms;
    unsigned snapshot_threshold;
    uint64_t snapshot_log_size;  /* bytes; 0 = the cluster module's default */
    uint64_t disk_reserve;     /* bytes that must stay free for writes */
    /* A deposed leader whose database holds commits the cluster will never
     * have calls this (loop thread; must not return): restarting rebuilds
     * the database from the snapshot and the log. NULL: exit with code 3. */
    void (*restart)(void);
};

/* Before anything else opens the database: make the base copy on a fresh
 * data dir, check the database against the durable log and repair it when
 * it is ahead. 0 ok; -1 with err. */
int rpl_open(const struct rpl_config *cfg, struct rpl **out, char *err, size_t errcap) MUSTCHECK;
/* On the thread that runs loop (before it runs): start Raft, replay the
 * log, and for a single node run the loop until it leads. pool's
 * connections must have captures (exe_config.capture). */
int rpl_start(struct rpl *r, uv_loop_t *loop, struct exe_pool *pool, char *err, size_t errcap) MUSTCHECK;
/* Loop thread: stop Raft (pending commits finish or fail), then cb. */
void rpl_stop(struct rpl *r, void (*cb)(void *data), void *data);
void rpl_free(struct rpl *r);

/* Any thread: does this node lead (and take writes) now? */
int rpl_is_leader(struct rpl *r);
/* A witness votes and keeps the Raft log but has no data: it refuses SQL sessions. */
int rpl_is_witness(struct rpl *r);
/* Any thread: a number that changes whenever the role changes (sessions
 * re-send in_hot_standby / default_transaction_read_only when it does). */
unsigned rpl_role_generation(struct rpl *r);

/* ---- worker side ---------------------------------------------------------- */

/* May this node take writes now? 0 yes; otherwise state gets the SQLSTATE
 * (25006 not the leader, 53100 disk full, 58030 needs a restart) and msg
 * and hint a message. */
int rpl_write_check(struct rpl *r, char state[6], char *msg, size_t msgcap, char *hint, size_t hintcap);

/* A commit in flight: lives on the committing worker's stack. */
struct rpl_wait {
    struct rpl *r;
    /* NULL: the committing worker blocks in rpl_wait. Set: called on the
     * cluster loop when Raft is done (w->status set), and rpl_wait must
     * not be used: the caller answers its client from done. */
    void (*done)(struct rpl_wait *w);
    pthread_cond_t cv;
    int finished;
    int status;  /* clu status */
    uint64_t lsn;
    uint64_t t0_ns;
};

/* Commit the open transaction of c (holding the write token): take its
 * record; a read-only one commits plainly (returns 0); otherwise give it
 * the next LSN, store that LSN in the transaction, COMMIT, and queue the
 * record for Raft (returns 1: release the write token, then rpl_wait).
 * -1: nothing committed (the transaction was rolled back), state/msg set. */
int rpl_commit(struct rpl *r, struct exe_conn *c, struct rpl_wait *w, char state[6], char *msg, size_t msgcap);
/* Block until Raft committed the record. 0 ok; -1 with state/msg:
 * 40003 (outcome unknown: leadership lost), 57P01 (shutting down), ... */
int rpl_wait(struct rpl *r, struct rpl_wait *w, char state[6], char *msg, size_t msgcap);
/* The SQLSTATE and message for a failed commit's status (w->status). */
void rpl_status_error(int status, char state[6], char *msg, size_t msgcap);

/* Reads must not show a commit that Raft has not made durable yet (a
 * crash would take it back). At the end of a job that may have read, the
 * worker waits until everything committed locally so far is durable:
 * returns at once when nothing is in flight. */
void rpl_wait_visible(struct rpl *r, struct exe_pool *pool);
/* Worker thread, orbit.read_consistency = linearizable: before a read, ask
 * the leader for a read index (READINDEX over its peer port: a barrier it
 * appends and applies, confirming its leadership with a quorum) and wait
 * until this node has applied the LSN the leader had then. 0, or -1 with a
 * SQLSTATE (40001: retry) and message. */
int rpl_read_fence(struct rpl *r, struct exe_pool *pool, char *state, char *msg, size_t msgcap) MUSTCHECK;
/* Worker thread, before a read: a node that leads but is still applying
 * records it was sent as a follower finishes that first (reads on a leader
 * see everything committed before it took over). Cheap when there is none. */
void rpl_leader_catch_up(struct rpl *r, struct exe_pool *pool);

/* ---- observability --------------------------------------------------------- */
struct rpl_stats {
    uint64_t node_id;
    int role;               /* enum clu_role */
    uint64_t term;
    uint64_t commit_index, applied_index, last_index, snapshot_index;
    uint64_t lsn;           /* newest committed and applied LSN */
    uint64_t commits;       /* records committed through Raft */
    uint64_t commit_failures;
    uint64_t commit_wait_ns; /* total time workers waited for Raft */
    uint64_t record_bytes;
    uint64_t records_applied; /* records replayed or received */
    uint64_t apply_batches;   /* transactions they were applied in */
    uint64_t snapshots;
    int inflight;
    int nospace;
};
/* Any thread (index fields are refreshed on the loop every tick). */
void rpl_get_stats(struct rpl *r, struct rpl_stats *out);

/* Loop thread: the current configuration and leader, for /status. */
struct rpl_member {
    uint64_t id;
    char address[64];
    const char *role; /* "voter", "standby", "spare" */
    int64_t match_index, lag_records, contact_ms; /* -1 unknown (see clu_member) */
    double lag_seconds;
};
struct rpl_status {
    uint64_t id;
    char address[64];
    const char *state; /* "leader", "follower", "candidate", "none" */
    int witness;       /* this node is a witness */
    uint64_t term, commit_index, applied_index, last_index, snapshot_index, lsn;
    uint64_t leader_id; /* 0 when unknown */
    char leader_address[64];
    int nmembers;
    struct rpl_member members[16];
};
void rpl_status(struct rpl *r, struct rpl_status *out);
/* Loop thread, at SIGTERM/SIGINT: hand leadership to another voter
 * (nothing to do unless this node leads others; docs/repl.md,
 * Switchover). The voter taking over is first asked to hold new sessions
 * until it leads; then stop_accepting(data) runs (at once when there is
 * nothing to hand over): the server stops taking sessions and drains
 * them. Once sessions(data) (any thread) says none is left, or after 1 s,
 * writers are paused, the commits in flight land and leadership moves.
 * From the call on a fence exits (code 3) instead of restarting. */
void rpl_step_down(struct rpl *r, void (*stop_accepting)(void *data), int (*sessions)(void *data), void *data);
/* Loop thread: 1 while that hand-over is under way (shutdown waits). */
int rpl_stepping_down(struct rpl *r);
/* Any thread: should a session that just authenticated wait before it is
 * told the role (in_hot_standby)? Yes while this leader hands over, and
 * while a leader handing over to this node asked it to (HOLD) until it
 * leads or another role change ends the wait (at most 5 s). */
int rpl_hold_sessions(struct rpl *r);

#endif
