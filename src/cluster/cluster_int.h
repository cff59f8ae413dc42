/* cluster_int.h: private structures of the cluster module, shared by
 * node.c (lifecycle, roles), submit.c (entries, waits, completions),
 * fsm.c (libraft FSM glue, snapshot gate) and snapfile.c (files). */
#ifndef ORBIT_CLUSTER_INT_H
#define ORBIT_CLUSTER_INT_H

#include <limits.h>
#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>

#include "cluster.h"

#define CLU_PATH_MAX 4096

/* ---- FSM glue (fsm.c) ------------------------------------------------------
 * Snapshot states of the glue (cur.state):
 *   SNAP_IDLE    no snapshot in progress.
 *   SNAP_TAKING  fsm->snapshot ran (begin captured at cur.index); the write
 *                runs on the thread pool (or ran inline), then libraft puts
 *                the descriptor; finalize -> SNAP_IDLE.
 * Fetch state (fetch.active): a descriptor arrived whose file is missing;
 * the fetch hook is writing <name>.fetch; fetch_done verifies and renames. */
enum { SNAP_IDLE, SNAP_TAKING };

struct clu_fsm_hooks {
    void *owner;
    void *(*local_lookup)(void *owner, uint64_t index);  /* inside libraft */
    void (*applied)(void *owner, size_t bytes);           /* inside libraft; bytes: the entry's
                                                             (0 for a restored snapshot) */
    void (*after_event)(void *owner);                     /* outside libraft */
    void (*snapshot_done)(void *owner, uint64_t index, int status); /* outside */
};

struct clu_fsm {
    struct raft_fsm rfsm; /* rfsm.data = this */
    const struct clu_fsm_ops *ops;
    void *ud;
    struct raft *raft;
    uint64_t node_id;
    char snap_dir[CLU_PATH_MAX];
    int async;            /* snapshot_write runs on the thread pool */
    int verify;           /* hash snapshot files before restore */
    int closing;          /* drop received messages: no new appends */
    int witness;          /* this node keeps no state: snapshots are markers, never fetched */
    char refused[CLU_SNAP_NAME_MAX]; /* the witness snapshot last refused (logged once) */
    struct clu_fsm_hooks hooks;

    /* wrapped raft_io entry points */
    int (*io_start)(struct raft_io *, unsigned, raft_io_tick_cb, raft_io_recv_cb);
    raft_io_tick_cb raft_tick;
    raft_io_recv_cb raft_recv;

    struct {
        int state;
        uint64_t index;
        void *snap;
        int status;      /* of the write, set on the worker */
        int created;     /* final file exists */
        uint64_t t0;     /* util_now_ns at begin */
        struct clu_snapshot_desc desc;
    } cur;
    uint64_t next_try; /* raft_io time before which no snapshot starts */

    struct {
        int active;
        struct clu_snapshot_desc desc;
        char warned[CLU_SNAP_NAME_MAX];
        /* the InstallSnapshot that started the fetch, handed to libraft as
         * soon as the file is here (not after the leader's resend) */
        int held;
        struct raft_message msg;
        char msg_address[64];
    } fetch;
    clu_fetch_fn fetch_fn;
    void *fetch_ud;

    /* files kept: [0] newest, [1] the one before; names verified in this
     * process (so a second check does not re-hash a large file) */
    char keep[2][CLU_SNAP_NAME_MAX];
    char verified[4][CLU_SNAP_NAME_MAX];
    unsigned verified_next;
};

void clu_fsm_set_hooks(struct clu_fsm *f, const struct clu_fsm_hooks *h);
void clu_fsm_set_verify(struct clu_fsm *f, int on);
void clu_fsm_set_witness(struct clu_fsm *f, int on);
int clu_snapshot_is_witness(const char *name); /* a witness's snapshot (no data) */
void clu_fsm_set_closing(struct clu_fsm *f);
/* Delete snapshot files (and leftovers) not in keep[]; after startup. */
void clu_fsm_gc(struct clu_fsm *f);

/* ---- snapshot files (snapfile.c) ------------------------------------------- */
/* Build "DIR/NAME" (+suffix); -1 if it does not fit. */
int clu_path(char *dst, size_t cap, const char *dir, const char *name, const char *suffix);
/* Before libraft's loader cuts an open segment back at its first bad batch:
 * CLU_ECORRUPT (err names the file and offset) when a valid batch follows
 * it, i.e. written records are damaged rather than a last write torn
 * (segcheck.c). A torn tail is logged and left to the loader. */
int clu_check_open_segments(const char *raft_dir, char *err, size_t errcap);
/* SHA-256 and size of a file read in 1 MiB chunks; CLU_* status. */
int clu_file_sha256(const char *path, unsigned char out[32], uint64_t *size);
int clu_fsync_path(const char *path); /* file or directory */
int clu_mkdir_p(const char *path);    /* 0700, one level */
/* Read or create DIR/node-id. raft_dir is checked: existing Raft state with
 * no id file is an error (the node's identity would be lost). */
int clu_identity(const char *data_dir, const char *raft_dir, uint64_t *id, char *err, size_t errcap);
int clu_from_raft(int rv); /* libraft error -> CLU_* */
void clu_heap_init(void);  /* zeroing raft_heap, once per process */
/* From begin, the calling thread's libraft allocations are recorded; end
 * frees those still live and returns their count (offline.c: libraft 0.15
 * leaks what it had read of a segment that fails to load). */
void clu_heap_track_begin(void);
size_t clu_heap_track_end(void);

/* ---- node (node.c, submit.c) ------------------------------------------------ */
enum clu_req_kind { REQ_SUBMIT, REQ_BARRIER, REQ_WAIT, REQ_TRANSFER, REQ_SNAPSHOT, REQ_READY, REQ_CHANGE };

struct clu_req {
    union {
        struct raft_apply apply;
        struct raft_barrier barrier;
        struct raft_transfer transfer;
        struct raft_change change;
    } r;
    struct clu_node *node;
    struct clu_req *next, *prev;
    int kind;
    int status;
    uint64_t index; /* assigned index, waited index, snapshot index */
    uint64_t term;
    union {
        clu_commit_cb commit;
        clu_done_cb done;
        clu_snapshot_cb snap;
    } cb;
    void *data;
    void *buf; /* posted entry not yet appended (raft_malloc'd) */
    size_t len;
};

struct clu_list {
    struct clu_req *head, *tail;
};

/* Node states: NEW (after new) -> STARTED (raft_start ok) -> CLOSING
 * (clu_node_close; raft_close in flight) -> CLOSED (raft closed, handles
 * closing; freed in the async handle's close callback). */
enum { NODE_NEW, NODE_STARTED, NODE_CLOSING, NODE_CLOSED };

struct clu_node {
    uv_loop_t *loop;
    pthread_t loop_thread;
    int state;
    int raft_inited;
    uint64_t id;
    char data_dir[CLU_PATH_MAX];
    char raft_dir[CLU_PATH_MAX];
    char snap_dir[CLU_PATH_MAX];
    char address[64];
    char bind[64];
    int join;
    char *initial_members;
    struct clu_config cfg;

    const struct clu_fsm_ops *ops;
    void *ud;
    struct clu_fsm *fsm;

    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    uv_async_t wake;
    /* a wake-up from the loop's own thread (a commit completing inside
     * libraft's disk-write callback) is served in the same loop iteration:
     * the check handle runs right after the I/O callbacks, the idle handle
     * keeps the next poll from blocking when the check already ran */
    uv_check_t wake_check;
    uv_idle_t wake_idle;
    int wake_pending;
    uv_timer_t close_timer; /* raft_close once no append is in flight */
    int open_handles;
    uint64_t close_start_ns;
    uint64_t close_warned;

    /* worker -> loop queue */
    pthread_mutex_t mu;
    struct clu_list posted;
    int post_closed;
    int post_failed; /* loop: a post could not be appended; every later one fails with this */

    struct clu_list pending; /* submitted entries, in index order */
    struct clu_list done;    /* completions to deliver outside libraft */
    struct clu_list waiters; /* clu_wait_applied */
    struct clu_list snap_waiters;
    int in_flush;

    /* role tracking */
    enum clu_role reported_role;
    uint64_t reported_term;
    uint64_t ready_term;       /* term whose barrier was applied, published */
    uint64_t ready_seen_term;  /* set by the barrier callback (inside libraft) */
    uint64_t ready_asked_term; /* term a readiness barrier was sent for */

    /* clu_snapshot */
    int snap_armed;
    int snap_kick; /* leader: append a barrier so the next snapshot starts */
    unsigned saved_threshold;
    /* entries and their bytes applied since the last snapshot finished; a
     * snapshot asked for by size is under way (cfg.snapshot_bytes) */
    uint64_t since_snap_entries, since_snap_bytes;
    int size_snap;

    clu_close_cb close_cb;
    void *close_data;

    /* rpc.c: the peer port's control plane. The lists, rpc_closed and the
     * client fds are under mu; rpc_cv signals finished calls and wakes the
     * joiner's sleep. */
    raft_uv_accept_cb raft_accept;
    uv_tcp_t listener;        /* the peer port (rpc.c reads the handshakes) */
    int listening;
    struct rpc_incoming *incoming; /* connections still sending their handshake */
    struct clu_rpc_call *ri_batch, *ri_next; /* READINDEX: in the barrier in flight; waiting */
    struct clu_rpc_call *demoting; /* ASSIGN spare of a voter: standby now, waiting for it to know */
    int ri_active;
    uint64_t ri_mark;
    int nincoming;
    struct clu_rpc_conn *rpc_conns;
    struct clu_rpc_call *rpc_calls, *rpc_calls_tail;
    pthread_cond_t rpc_cv;
    int rpc_closed;
    int rpc_client_fd[2]; /* joiner's and fetcher's sockets, -1 when none */
    char join_addr[256];
    enum clu_member_role join_role;
    int join_needed; /* the joiner asks to be added (fresh --join, or a new address) */
    int witness;     /* this node is a witness (clu_config.witness): the joiner tells the others */
    /* witnesses as announced by themselves (WITNESS requests), under mu */
    struct clu_witness {
        uint64_t id, seen_ns;
    } witnesses[16];
    /* a member that came back on another address: the joiner asks these
     * (the other members, from the configuration) to update it */
    char rejoin_via[8][64];
    int nrejoin_via;
    _Atomic int self_addr_ok; /* the configuration has this node at its address */
    pthread_t joiner, fetcher;
    int joiner_on, fetcher_on;
    _Atomic int self_role;
    /* leader: per member, when it was last heard from and since when it is
     * behind the commit index (clu_check_role keeps it up to date) */
    struct clu_track {
        uint64_t id, contact_ns, behind_ns;
    } track[16];
    int ntrack; /* 1 + this node's role in its configuration, 0 if absent */
};

/* submit.c */
/* Entry framing. libraft 0.15's raft_uv cannot read back a command entry
 * whose length is not a multiple of 8 (the segment then loads as corrupt),
 * so every entry handed to libraft is the payload, then 1..8 bytes: zeros
 * and a last byte holding their count. frame_size: the framed length of a
 * payload of len bytes; frame_pad: write the padding after len bytes;
 * frame_len: the payload length of a framed entry, 0 or -1 if malformed. */
size_t clu_frame_size(size_t len);
void clu_frame_pad(void *frame, size_t len);
int clu_frame_len(const void *frame, size_t framed, size_t *len);
void clu_list_push(struct clu_list *l, struct clu_req *r);
void clu_list_remove(struct clu_list *l, struct clu_req *r);
struct clu_req *clu_list_pop(struct clu_list *l);
struct clu_req *clu_req_new(struct clu_node *n, int kind);
void clu_req_free(struct clu_req *r);
void clu_complete(struct clu_node *n, struct clu_req *r, int status); /* -> done list */
void clu_drain_posted(struct clu_node *n);
void clu_flush(struct clu_node *n); /* deliver completions; outside libraft */
void clu_fail_all(struct clu_node *n, int status);
void clu_snapshot_finished(void *owner, uint64_t index, int status);
void clu_kick_snapshot(struct clu_node *n);
/* rpc.c */
void clu_rpc_init(struct clu_node *n);      /* clu_node_new: wrap the transport */
void clu_rpc_start(struct clu_node *n);     /* clu_node_start: joiner, fetch hook */
void clu_rpc_drain(struct clu_node *n);     /* loop: run queued calls */
void clu_rpc_demotions(struct clu_node *n); /* loop (clu_flush): voters on their way to spare */
void clu_rpc_shutdown(struct clu_node *n);  /* clu_node_close: refuse, unblock */
void clu_rpc_join_threads(struct clu_node *n); /* after raft_close: wait for threads */
int clu_raft_role(enum clu_member_role role);       /* RAFT_VOTER, ... */
enum clu_member_role clu_member_role_of(int raft_role);
/* node.c */
/* "ID@HOST:PORT,..." (hex ids) -> voters in conf; it must list self_id. */
int clu_parse_members(const char *list, uint64_t self_id, struct raft_configuration *conf, char *err,
                      size_t errcap);
void clu_check_role(struct clu_node *n); /* outside libraft */
int clu_on_loop(const struct clu_node *n);
void clu_wake(struct clu_node *n);
void clu_handle_closed(uv_handle_t *h); /* close callback of the node's own handles */

#endif
