/* cluster: the Raft glue. A node runs Canonical raft (libraft) on a libuv
 * loop with its log in DATA/raft, feeds committed entries to an FSM the
 * integrator provides, and keeps snapshots as files in DATA/snapshots (the
 * Raft-level snapshot is only a small descriptor). Entries are opaque bytes
 * here; the txlog module defines what they contain. Design: docs/cluster.md.
 * Prefix: clu_.
 *
 * Threads: everything runs on the node's loop thread except clu_post (any
 * thread) and fsm snapshot_write (a libuv thread-pool thread).
 * Callbacks marked "inside libraft" must not call clu_submit, clu_barrier,
 * clu_snapshot, clu_transfer or clu_node_close (queries are fine); every
 * other callback may call anything. */
#ifndef ORBIT_CLUSTER_H
#define ORBIT_CLUSTER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "util.h"

struct raft;
struct raft_fsm;
struct clu_node;
struct clu_fsm;

/* ---- status codes -------------------------------------------------------
 * 0 = OK. Callbacks and functions return these (never libraft's codes).
 * Suggested SQLSTATEs: ENOTLEADER 25006, ELEADERSHIPLOST 40003 (outcome
 * unknown), ESHUTDOWN 57P01, ENOSPACE 53100, others XX000. */
#define CLU_ERRNO_MAP(X)                                                                     \
    X(OK, "ok")                                                                              \
    X(ENOTLEADER, "this node is not the leader")                                             \
    X(ELEADERSHIPLOST, "leadership was lost before the entry committed; outcome unknown")    \
    X(ESHUTDOWN, "the cluster node is shutting down")                                        \
    X(ENOMEM, "out of memory")                                                               \
    X(ETOOBIG, "entry is larger than max_entry_size")                                        \
    X(ENOSPACE, "no space left on device")                                                   \
    X(EIO, "I/O error")                                                                      \
    X(ECORRUPT, "corrupt data")                                                              \
    X(EBUSY, "busy, retry later")                                                            \
    X(EINVAL, "invalid argument")                                                            \
    X(ENOTFOUND, "not found")                                                                \
    X(EWRONGTHREAD, "called from a thread other than the node's loop thread")                \
    X(ETIMEDOUT, "timed out")                                                                \
    X(EFSM, "state machine callback failed")                                                 \
    X(ERAFT, "raft error")

enum clu_status {
#define CLU__ENUM(name, msg) CLU_##name,
    CLU_ERRNO_MAP(CLU__ENUM)
#undef CLU__ENUM
        CLU__NSTATUS
};

const char *clu_strerror(int status);
const char *clu_status_name(int status); /* "ENOTLEADER" */

/* The node's role as the integrator sees it. LEADER means "leader and
 * caught up": a barrier of its own term has been applied, so every entry
 * committed before it took over is in the FSM and writes may start. A node
 * that has won an election but is not caught up reports CANDIDATE. */
enum clu_role { CLU_ROLE_NONE, CLU_ROLE_FOLLOWER, CLU_ROLE_CANDIDATE, CLU_ROLE_LEADER };
const char *clu_role_name(enum clu_role r);

/* Membership roles (libraft's). */
enum clu_member_role { CLU_MEMBER_STANDBY, CLU_MEMBER_VOTER, CLU_MEMBER_SPARE };

/* ---- snapshots ----------------------------------------------------------
 * The Raft snapshot is this descriptor; the state itself is the file
 * DATA/snapshots/<name>, written by the integrator's snapshot_write. */
#define CLU_SNAP_NAME_MAX 64
struct clu_snapshot_desc {
    uint64_t index;                /* Raft index the file's state is at */
    uint64_t lsn;                  /* integrator's LSN at index (opaque here) */
    uint64_t size;                 /* file size in bytes */
    uint64_t origin;               /* id of the node that wrote the file */
    unsigned char sha256[32];      /* of the whole file */
    char name[CLU_SNAP_NAME_MAX];  /* file name inside the snapshot dir */
};

/* ---- the FSM the integrator provides -------------------------------------
 * ud is the pointer given with the ops. */
struct clu_fsm_ops {
    /* Loop thread, inside libraft. Apply the committed entry at index.
     * Indexes strictly increase (gaps are Raft's own entries). local is the
     * data pointer the entry was submitted with when this node submitted it
     * in its current leadership and still waits for it; NULL otherwise
     * (an entry from another leader, or replayed from the log at startup),
     * so submitters that rely on it must pass a non-NULL data.
     * buf is valid only during the call. An index at or below what the
     * state already holds (a persistent FSM after restart) must be skipped.
     * Return 0; non-zero stops this node (libraft goes unavailable), so use
     * it only when the replica cannot safely continue. */
    int (*apply)(void *ud, uint64_t index, const void *buf, size_t len, void *local);

    /* Loop thread, inside libraft, when the state is exactly the state at
     * index. Capture a consistent view cheaply (e.g. open a read transaction
     * on a dedicated SQLite connection) and keep what snapshot_write needs in
     * *snap; set *lsn. Return 0, CLU_EBUSY to skip this time (Raft retries
     * later), or another status (logged, retried later). */
    int (*snapshot_begin)(void *ud, uint64_t index, void **snap, uint64_t *lsn);
    /* Thread-pool thread (applies keep running on the loop meanwhile).
     * Write the captured state into the new file at path, in bounded
     * chunks: memory must not grow with the size of the state. The caller
     * fsyncs, hashes and renames the file. Return 0 or a status. */
    int (*snapshot_write)(void *ud, void *snap, const char *path);
    /* Loop thread, inside libraft: release what snapshot_begin captured.
     * status 0: the descriptor d is durable and the log was compacted;
     * otherwise d is NULL and the file is gone. */
    void (*snapshot_end)(void *ud, void *snap, int status, const struct clu_snapshot_desc *d);

    /* Loop thread, inside libraft: replace the whole state with the file at
     * path (the state at d->index). Called at startup with the newest
     * snapshot (a persistent FSM that is already at or past d->index keeps
     * its state), and on a follower that was sent the leader's snapshot.
     * The file's size and SHA-256 have been checked. Must not move or
     * modify the file (hard-link or reflink it) and should be quick: the
     * loop is blocked. Return 0 or a status. */
    int (*restore)(void *ud, const struct clu_snapshot_desc *d, const char *path);

    /* Optional. Loop thread, outside libraft: the role changed. When a
     * leader loses its leadership this comes before the ELEADERSHIPLOST
     * commit callbacks of its pending entries. A leader that loses and
     * regains leadership between two notifications gets FOLLOWER then
     * LEADER. Note: apply() for a new leader's entries can run before this
     * notification; apply gets local = NULL for them. */
    void (*role_changed)(void *ud, enum clu_role role, uint64_t term);
};

/* The integrator's peer-port requests (rpc.c): called on the request's own
 * thread (blocking is fine) with the request line for every verb the
 * cluster module does not serve itself. Return 1 with the whole reply in
 * reply ("OK ..." or "ERR <STATUS> ...", more lines allowed), 0 when the
 * verb is unknown. */
/* A request finished: status is CLU_OK or an error. */
typedef void (*clu_done_cb)(void *data, int status);
typedef int (*clu_rpc_fn)(void *ud, const char *line, struct buf *reply);

/* ---- node configuration --------------------------------------------------- */
struct clu_config {
    const char *data_dir;      /* required; raft/, snapshots/ and node-id inside */
    const char *address;       /* advertised peer HOST:PORT (IPv4 literal); default
                                  127.0.0.1:CFG_DEFAULT_PEER_PORT; ":PORT" and "PORT" ok */
    const char *bind_address;  /* NULL = address; e.g. "0.0.0.0:7433" */
    const char *join;          /* NULL: a fresh dir bootstraps a one-voter cluster.
                                  Set: a fresh dir waits to be added (join RPC: issue 4);
                                  ignored when the dir already belongs to a cluster.
                                  Any member's peer address: requests are redirected
                                  to the leader; retried every second until added */
    enum clu_member_role join_role;       /* CLU_MEMBER_VOTER: the role asked for on --join */
    const char *initial_members; /* NULL, or a static first configuration for a fresh
                                    dir: "ID@HOST:PORT,..." (hex ids; every member
                                    bootstraps the same list, this node's id in it).
                                    For tests and scripted clusters; --join is the
                                    operator path */
    unsigned heartbeat_ms;                /* 100 */
    unsigned election_timeout_ms;         /* 1000 */
    unsigned install_snapshot_timeout_ms; /* 5000: leader resends a snapshot after this */
    unsigned snapshot_threshold;          /* 65536 entries applied since the last snapshot */
    unsigned snapshot_trailing;           /* 8192 entries kept in the log after one */
    uint64_t snapshot_bytes;              /* 256 MiB: entry bytes applied since the last
                                             snapshot that also start one, and a quarter
                                             of it bounds the trailing entries' bytes
                                             (libraft keeps them all in memory) */
    size_t segment_size;                  /* 0 = libraft default (8 MiB) */
    size_t max_entry_size;                /* 64 MiB */
    int pre_vote;                         /* 1 */
    int verify_snapshots;                 /* 1: SHA-256 a snapshot file before restoring it */
    int log_auto_recovery;                /* 0: a corrupt closed segment stops the node
                                             instead of being deleted by libraft */
    clu_rpc_fn rpc_fn;                    /* NULL: none */
    void *rpc_ud;
    /* Optional, loop thread: a value the leader takes when it appends the
     * barrier of a READINDEX request and returns with it (repl: its newest
     * LSN); ud is rpc_ud. */
    uint64_t (*read_mark)(void *ud);
    /* Optional, loop thread: a TRANSFER request (orbitctl cluster transfer)
     * goes through this instead of clu_transfer, so that the integrator can
     * let the commits in flight land first (repl: as at SIGTERM); it calls
     * clu_transfer itself and cb(data, status) once done. */
    int (*transfer)(void *ud, uint64_t to, clu_done_cb cb, void *data);
    /* A witness: a voter that keeps the Raft log but no state. Its
     * snapshots are named *-witness.db and hold nothing; other nodes never
     * install them (their gate drops them), and it installs anyone's
     * without fetching the file (restore gets a path that may not exist). */
    int witness;
};
void clu_config_init(struct clu_config *c);

/* ---- node lifecycle -------------------------------------------------------
 * clu_node_new: validates the config, creates the directories, reads or
 * creates the node id (64-bit random, DATA/node-id), initializes libraft on
 * loop. No network I/O yet. On failure *out is NULL and err says why. ops
 * and ud must stay valid until the close callback. Call it, and
 * clu_node_start, on the thread that runs loop (or before the loop runs,
 * from that thread): that is the node's loop thread. */
int clu_node_new(uv_loop_t *loop, const struct clu_config *cfg, const struct clu_fsm_ops *ops,
                 void *ud, struct clu_node **out, char *err, size_t errcap) MUSTCHECK;
/* Load the log and start Raft: bootstrap a fresh dir, restore the newest
 * snapshot and replay the log into the FSM (synchronously, inside this call,
 * for a single node), listen on the peer address. On failure the node must
 * still be closed with clu_node_close. */
int clu_node_start(struct clu_node *n, char *err, size_t errcap) MUSTCHECK;
/* Stop and free the node (asynchronously): new calls and queued posts get
 * ESHUTDOWN; appended entries get 0 if they commit first, else
 * ELEADERSHIPLOST (they are in the log and replay on restart); waiters get
 * ESHUTDOWN; role_changed(NONE); every libuv handle is closed; then
 * cb(data) runs (cb may be NULL) and n is gone. Workers must not call
 * clu_post after cb. */
typedef void (*clu_close_cb)(void *data);
void clu_node_close(struct clu_node *n, clu_close_cb cb, void *data);

/* ---- writes ----------------------------------------------------------------
 * cb(data, index, status) runs exactly once, on the loop thread, outside
 * libraft: status 0 when the entry is committed and applied (the FSM's apply
 * for index has returned); ENOTLEADER if it was never appended;
 * ELEADERSHIPLOST if leadership was lost after it was appended (it may still
 * commit under the next leader: outcome unknown); ESHUTDOWN on close. index
 * is 0 when the entry never got one. */
typedef void (*clu_commit_cb)(void *data, uint64_t index, int status);

/* Loop thread. Copies buf. 0: cb will run. Otherwise (ENOTLEADER when not a
 * caught-up leader, EINVAL for an empty entry, ETOOBIG, ENOMEM, ESHUTDOWN,
 * EWRONGTHREAD) cb never runs. */
int clu_submit(struct clu_node *n, const void *buf, size_t len, clu_commit_cb cb, void *data) MUSTCHECK;
/* Any thread. Copies buf and queues it for the loop, which appends every
 * queued entry in one turn (group commit: many in flight at once). 0: cb
 * will run (ENOTLEADER if the node is not leader when the loop gets to
 * it). EINVAL/ETOOBIG/ENOMEM/ESHUTDOWN: cb never runs. */
int clu_post(struct clu_node *n, const void *buf, size_t len, clu_commit_cb cb, void *data) MUSTCHECK;

/* ---- reads, waits and control ----------------------------------------------
 * All loop thread; cb runs exactly once (outside libraft) when 0 is
 * returned, never otherwise. */
/* Leader only: append a barrier; cb(0) when every entry before it is
 * applied here (a read index for linearizable reads on the leader; a
 * follower asks the leader for its commit index and uses clu_wait_applied). */
int clu_barrier(struct clu_node *n, clu_done_cb cb, void *data) MUSTCHECK;
/* cb(0) once the FSM has applied index (immediately-but-deferred if it has). */
int clu_wait_applied(struct clu_node *n, uint64_t index, clu_done_cb cb, void *data) MUSTCHECK;
/* Take a snapshot soon (log compaction): cb(status, index) when a snapshot
 * at or after the current applied index is durable. On a follower it is
 * taken with the next applied entry. */
typedef void (*clu_snapshot_cb)(void *data, int status, uint64_t index);
int clu_snapshot(struct clu_node *n, clu_snapshot_cb cb, void *data) MUSTCHECK;
/* Leader only: hand leadership to voter id (0 = pick one). cb(0) if the
 * target (any other node for 0) is leader afterwards, ETIMEDOUT otherwise. */
int clu_transfer(struct clu_node *n, uint64_t id, clu_done_cb cb, void *data) MUSTCHECK;
/* Leader only: the voter clu_transfer(n, 0, ...) hands over to (the most
 * caught-up voter with data) and its peer address; 0 when there is none. */
uint64_t clu_transfer_target(struct clu_node *n, char *address, size_t cap);

/* ---- membership (loop thread, leader only; one change at a time) -----------
 * cb(0) once the new configuration is committed. EBUSY: another change is
 * in progress; EINVAL: unknown id, duplicate id or address, same role;
 * ENOTLEADER. clu_add adds id as a spare; clu_assign then makes it a voter
 * (libraft first lets it catch up) or a standby. */
int clu_add(struct clu_node *n, uint64_t id, const char *address, clu_done_cb cb, void *data) MUSTCHECK;
int clu_assign(struct clu_node *n, uint64_t id, enum clu_member_role role, clu_done_cb cb,
               void *data) MUSTCHECK;
int clu_remove(struct clu_node *n, uint64_t id, clu_done_cb cb, void *data) MUSTCHECK;
const char *clu_member_role_name(enum clu_member_role r);       /* "voter" */
int clu_member_role_parse(const char *s, enum clu_member_role *out); /* 0 ok */

/* ---- the peer port's control plane (rpc.c) ----------------------------------
 * The peer port carries libraft's streams and Orbit's own requests: a
 * stream whose libraft handshake names CLU_RPC_ID is a request, served on a
 * thread of its own: one line, then the reply until the server closes.
 * Replies: "OK [text]", "ERR <STATUS> <message>", "REDIRECT <address>"
 * (ask the leader). Requests:
 *   ID                         -> OK <id hex> <peer address>
 *   MEMBERS                    -> OK <n> <leader id>, then "<id> <address> <role>" lines
 *   (repl serves CHECKSUM, STATUS, SQLADDR and HOLD through rpc_fn)
 *   READINDEX                  -> OK <index> <mark> (leader: once a barrier appended
 *                                 now is applied: a linearizable read may use
 *                                 every entry up to index; mark: read_mark)
 *   JOIN <id> <address> <role> -> OK ...  (leader: add, then assign)
 *   REMOVE <id> | ASSIGN <id> <role> | TRANSFER <id|0>
 *   FETCH <snapshot file name> -> OK <size>\n then the file's bytes
 * docs/cluster.md describes the protocol. */
#define CLU_RPC_ID UINT64_MAX
/* Any thread, blocking: send request to address and read the reply, following
 * REDIRECTs (at most 4). 0 when it starts with OK: reply holds the text after
 * "OK " (first line) and more, when not NULL, the lines after it; else a
 * CLU_* status with err holding the message. */
int clu_rpc_call(const char *address, const char *request, char *reply, size_t cap,
                 struct buf *more, unsigned timeout_ms, char *err, size_t errcap) MUSTCHECK;

/* ---- queries (loop thread) ------------------------------------------------- */
uint64_t clu_id(const struct clu_node *n);
const char *clu_address(const struct clu_node *n);
enum clu_role clu_role(struct clu_node *n);
int clu_is_leader(struct clu_node *n); /* role == CLU_ROLE_LEADER */
/* 1 and the leader's id and peer address when one is known, else 0. */
int clu_leader(struct clu_node *n, uint64_t *id, char *address, size_t cap);
uint64_t clu_term(struct clu_node *n);
uint64_t clu_commit_index(struct clu_node *n);
uint64_t clu_last_applied(struct clu_node *n);
uint64_t clu_last_index(struct clu_node *n);  /* last entry in the local log */
uint64_t clu_snapshot_index(struct clu_node *n); /* last snapshot, 0 if none */
struct clu_member {
    uint64_t id;
    char address[64];
    enum clu_member_role role;
    /* Replication, as the leader sees it (on other nodes: known for this
     * node only; -1/0 for the rest). */
    int64_t match_index;  /* highest entry known to be stored there; -1 unknown */
    int64_t lag_records;  /* leader's last index - match_index; -1 unknown */
    double lag_seconds;   /* how long it has been behind the commit index; -1 unknown */
    int64_t contact_ms;   /* since the leader last heard from it (resolution: one
                             election timeout); 0 for this node, -1 unknown */
    int witness;          /* a witness (a voter without data), as it announced itself */
};
/* Witnesses are voters to libraft. Each tells every member what it is
 * (WITNESS over the peer port, every 2 s); a member is taken for a witness
 * while it keeps saying so (10 s). clu_is_witness: this node's own flag for
 * its own id. Any thread. */
void clu_note_witness(struct clu_node *n, uint64_t id);
int clu_is_witness(struct clu_node *n, uint64_t id);
/* Fills up to cap members of the current configuration; returns the count. */
int clu_members(struct clu_node *n, struct clu_member *out, int cap);
/* libraft's instance, for tests and diagnostics only. */
struct raft *clu_raft(struct clu_node *n);
/* The node's FSM glue (e.g. to install the snapshot transfer hook). */
struct clu_fsm *clu_node_fsm(struct clu_node *n);

/* ---- the FSM glue without a node --------------------------------------------
 * For a raft instance the caller runs itself (libraft's test fixture): the
 * glue turns clu_fsm_ops into a struct raft_fsm with file snapshots.
 * clu_fsm_new: snap_dir must exist; node_id names the files this node
 * writes. clu_fsm_raft: the struct raft_fsm to give raft_init. After
 * raft_init and before raft_start, clu_fsm_attach hooks the instance (it
 * sets r->data, switches to thread-pool snapshots when the raft_io offers
 * async work, and wraps the raft_io's receive path so that a snapshot whose
 * file is not here yet is fetched before libraft sees it). */
int clu_fsm_new(const struct clu_fsm_ops *ops, void *ud, const char *snap_dir, uint64_t node_id,
                struct clu_fsm **out) MUSTCHECK;
struct raft_fsm *clu_fsm_raft(struct clu_fsm *f);
void clu_fsm_attach(struct clu_fsm *f, struct raft *r);
void clu_fsm_free(struct clu_fsm *f);
/* Snapshot transfer hook: called on the loop thread when the leader sent a
 * descriptor whose file this node lacks. Fetch it from the sender into
 * dst_path, then call clu_fsm_fetch_done (possibly from within fetch). The
 * leader resends the snapshot every install_snapshot_timeout; libraft only
 * sees it once the file is here and verified. */
typedef void (*clu_fetch_fn)(void *fud, uint64_t from_id, const char *from_address,
                             const struct clu_snapshot_desc *d, const char *dst_path);
void clu_fsm_set_fetch(struct clu_fsm *f, clu_fetch_fn fn, void *fud);
/* status 0: dst_path is complete (size and SHA-256 are checked here). */
void clu_fsm_fetch_done(struct clu_fsm *f, const char *name, int status);

/* Descriptor codec (the bytes libraft stores and sends). */
#define CLU_DESC_SIZE 160
int clu_desc_encode(const struct clu_snapshot_desc *d, unsigned char out[CLU_DESC_SIZE]);
int clu_desc_decode(const void *buf, size_t len, struct clu_snapshot_desc *d) MUSTCHECK;
/* Is snap_dir/<d->name> there with d->size bytes and, when hash, the
 * descriptor's SHA-256 (read 1 MiB at a time)? CLU_OK; CLU_ENOTFOUND (no
 * file), CLU_ECORRUPT (size or hash differs), CLU_EIO, CLU_EINVAL, with err
 * saying which. */
int clu_snapshot_verify(const char *snap_dir, const struct clu_snapshot_desc *d, int hash, char *err,
                        size_t errcap) MUSTCHECK;

/* ---- offline: the log of a stopped node ------------------------------------
 * clu_log_read loads DATA/raft with libraft's own loader (raft_uv: every
 * segment's checksums are checked) and hands each entry to fn in log order.
 * It changes nothing in DATA: libraft's load rewrites metadata files and
 * closes, truncates or deletes open segments, so it runs on a shadow copy
 * in a temporary directory ($TMPDIR or /tmp): metadata and open segments
 * copied, closed segments and snapshot descriptors hard-linked (copied
 * when the link fails; libraft only reads them, and its auto-recovery is
 * off). The whole log is in memory while fn runs, as when a node starts.
 * Not for a running node's dir (its newest entries may be missed). */
enum clu_entry_type { CLU_ENTRY_COMMAND = 1, CLU_ENTRY_BARRIER = 2, CLU_ENTRY_CHANGE = 3 };

struct clu_log_entry {
    uint64_t index;
    uint64_t term;
    int type;        /* enum clu_entry_type */
    int malformed;   /* COMMAND whose framing is wrong: buf/len are the raw entry */
    const void *buf; /* COMMAND: the bytes given to clu_submit/clu_post */
    size_t len;
};

struct clu_log_info {
    int has_log;            /* DATA/raft holds Raft state (0: nothing to read) */
    uint64_t term;          /* metadata: current term and vote */
    uint64_t voted_for;
    uint64_t entries;       /* entries in the log */
    uint64_t first_index;   /* of the first and last entry; 0 when there are none */
    uint64_t last_index;
    int has_snapshot;       /* libraft's newest snapshot */
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    int snapshot_desc_ok;   /* its data decoded as a descriptor, in snapshot_desc */
    struct clu_snapshot_desc snapshot_desc;
    unsigned servers;       /* members of the newest configuration (snapshot or log); 0: none */
    uint64_t config_index;  /* the newest configuration's index (its entry, or the snapshot's) */
    uint64_t self_id;       /* DATA/node-id (0: none or unreadable) */
    int self_role;          /* enum clu_member_role of self_id in the newest configuration;
                               -1 not listed (or no configuration), -2 not understood */
};

/* fn returns 0 to go on; anything else stops the read, and clu_log_read
 * returns it. info is complete before the first call. */
typedef int (*clu_log_fn)(void *ud, const struct clu_log_info *info, const struct clu_log_entry *e);

/* 0 when the log was read (has_log = 0 when DATA/raft has no Raft state);
 * otherwise a CLU_* status with err saying why: ENOTFOUND (no data dir),
 * ECORRUPT (libraft's message names the segment and the batch), EIO,
 * ENOMEM; or fn's non-zero return. fn may be NULL (info only). */
int clu_log_read(const char *data_dir, struct clu_log_info *info, clu_log_fn fn, void *ud, char *err,
                 size_t errcap) MUSTCHECK;

/* orbitctl cluster recover: on a STOPPED node, append a forced
 * configuration (members: "ID@HOST:PORT,...", voters, this node among them;
 * NULL: this node alone at address; libraft's raft_recover) to DATA/raft
 * after loading and checking the log.
 * For a cluster that lost its quorum for good: run it on the surviving node
 * with the highest term and longest log (orbitctl txlog check), start it,
 * then add the others again. *id is this node's id. 0, or a CLU_* status
 * with err. */
int clu_recover(const char *data_dir, const char *members, const char *address, uint64_t *id,
                char *err, size_t errcap) MUSTCHECK;

/* On a STOPPED node that is not a voter: forget its Raft log and snapshots
 * (DATA/raft but its term and vote, DATA/snapshots). It starts as a member
 * with an empty log and catches up from the leader (a snapshot, then the
 * log): how a witness made a standby gets its data (docs/repl.md). Call
 * clu_log_wipe_check first (a wipe cut by a crash is repeated without it:
 * what is left of the log may be older than the change that allowed it). */
int clu_log_wipe(const char *data_dir, char *err, size_t errcap) MUSTCHECK;

/* May this stopped node's log be wiped? CLU_OK when the log is empty, or
 * when its newest configuration lists this node as a standby or a spare
 * (or not at all) and, config_index not 0, is the configuration at that
 * index (nothing changed since the caller looked: clu_self_role). CLU_EBUSY
 * with err when it makes this node a voter, does not say what it is, or
 * changed; a read error's status otherwise. */
int clu_log_wipe_check(const char *data_dir, uint64_t config_index, char *err, size_t errcap) MUSTCHECK;

/* This node's role in its configuration, when that configuration is
 * committed (loop thread): enum clu_member_role, -1 not a member, -2 a
 * configuration change is not committed yet. *config_index: the committed
 * configuration's index. */
int clu_self_role(struct clu_node *n, uint64_t *config_index);

#endif
