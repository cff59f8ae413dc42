/* session: one client connection's protocol state machine.
 * States (see startup.c): STARTUP -> SASL_INIT -> SASL_CONT -> [HELD ->]
 * READY, any -> CLOSING. HELD: authenticated, waiting to be told the role
 * while leadership moves (rpl_hold_sessions). In READY, complete messages
 * are batched into a job that an executor thread runs (run.c, query.c,
 * extended.c, copy.c); while a job runs the worker owns the protocol state
 * and the loop touches only the socket, the input buffer and the flags
 * marked (loop).
 * Prefix: ses_. */
#ifndef ORBIT_SESSION_H
#define ORBIT_SESSION_H

#include <stdint.h>
#include <uv.h>

#include "exec.h"
#include "net.h"
#include "sql.h"
#include "util.h"

enum ses_state { SES_STARTUP, SES_SASL_INIT, SES_SASL_CONT, SES_HELD, SES_READY, SES_CLOSING };

struct ses_vars;
struct ses_copy;
struct ses_query;

struct session {
    union {
        uv_handle_t handle;
        uv_stream_t stream;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } h;
    struct ioloop *io;
    struct server *srv;
    struct session *next, *prev; /* io->sessions list (loop) */
    struct exe_task task;
    struct buf in;   /* unparsed input (loop) */
    struct buf jin;  /* the running job's input messages (worker) */
    size_t jpos;     /* next message in jin */
    struct buf out;  /* output being built by the worker */
    uint32_t pid, key;
    uint8_t state;
    uint8_t busy;        /* a job is queued or running (loop) */
    uint8_t reading;     /* (loop) */
    uint8_t fast_left;   /* jin[jpos..] is input the worker read and hands back to the loop */
    uint8_t txn;         /* 'I', 'T' or 'E' */
    uint8_t skip_to_sync;
    uint8_t copy_in;
    uint8_t terminate;   /* close after this job's output */
    uint8_t cleanup;     /* the job is the rollback-and-release at close */
    uint8_t superuser;
    uint8_t txn_read_only;
    uint8_t read_linearizable; /* orbit.read_consistency = linearizable */
    uint8_t read_fenced;       /* this transaction block passed its read fence */
    uint8_t implicit_txn; /* a multi-statement simple query's transaction */
    uint8_t ready_sent;   /* the last message run was answered with ReadyForQuery: only then does
                             idle_in_transaction_session_timeout count (not after a Flush), as in
                             PostgreSQL */
    uint8_t registered;
    uint8_t used;         /* it sent a request since it became ready (a drain spares it until then) */
    uint8_t auto_txn;     /* the transaction an autocommit write statement runs in */
    int8_t cap_kind;      /* enum txl_kind of the statement being captured, -1 none */
    size_t cc_mark;       /* out.len before the last CommandComplete */
    char cur_type;        /* the job's message being run, and where it ends in jin */
    size_t cur_end;
    struct ses_defer *defer; /* a commit answered when Raft has it (run.c) */
    unsigned role_gen;       /* rpl_role_generation when the role was last reported */
    volatile int closing; /* read by workers */
    volatile int cancel;  /* set by CancelRequest */
    atomic_long inflight; /* bytes posted to the loop and not yet written */
    atomic_int fast;      /* the loop stopped reading: the job's worker may write and read the
                             socket itself (set by the loop before the job is queued; the worker
                             clears it and has the loop read again when the job parks) */
    int flow_waiting;
    char *user;
    char *app_name;
    struct sec_scram *scram;
    struct ses_vars *vars;   /* SET overrides; NULL when all defaults */
    struct map *prepared;    /* name -> struct ses_prep */
    struct map *portals;     /* name -> struct ses_portal */
    size_t held_bytes;       /* what both maps hold (session_memory_limit) */
    struct ses_copy *copy;
    struct ses_query *query; /* simple query in progress (resumable) */
    uint64_t idle_since_ns;  /* idle since (idle_in_transaction_session_timeout); before the first
                                request: since accepted, HELD or READY (timeouts, drain grace) */
    uint64_t deadline_ns;    /* statement deadline while running */
};

/* Loop thread. */
struct session *ses_new(struct ioloop *io, int is_unix);
void ses_on_data(struct session *s, const char *data, size_t len);
void ses_on_eof(struct session *s);
void ses_job_done(struct session *s);
void ses_resume_read(struct session *s); /* the job parked and left the socket to the loop */
void ses_free(struct session *s); /* from the handle's close callback */
void ses_close(struct session *s);  /* begin closing (rollback first if needed) */
/* Send FATAL with the SQLSTATE and close (loop thread, session not busy). */
void ses_fatal(struct session *s, const char *sqlstate, const char *msg);
/* Periodic check (loop): idle-in-transaction timeouts, drain. */
void ses_tick(struct session *s, uint64_t now_ns);
/* Server shutdown: close idle sessions now, others when idle. */
void ses_drain(struct session *s);
/* The ioloop's hold_timer (every 1 ms while sessions are HELD): tell them
 * the role once the wait is over. */
void ses_hold_tick(uv_timer_t *t);

/* Worker thread: the exec task entry point. */
enum exe_rc ses_run(struct exe_task *t);
int ses_should_abort(struct exe_task *t, uint64_t now_ns);

/* Settings (vars.c). */
const char *ses_get_var(struct session *s, const char *name);
const char *ses_var_cb(void *s, const char *name);

/* Process-wide: how many sessions exist (for max_connections). */
#endif
