/* net: libuv event loops, listeners (TCP with SO_REUSEPORT, one per loop,
 * and a unix socket), socket writes, and the queue that carries output
 * from executor threads back to a session's loop. Sessions stay on the
 * loop that accepted them. The server object owned here is the process's
 * shared state. Prefix: net_. */
#ifndef ORBIT_NET_H
#define ORBIT_NET_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>

#include "config.h"
#include "exec.h"
#include "security.h"
#include "util.h"

struct session;
struct server;
struct rpl;

/* Output travelling from a worker to a session's loop. */
struct net_chunk {
    struct net_chunk *next;
    struct session *s;
    char *data; /* util_malloc'd, may be NULL */
    size_t len;
    int final; /* the session's job is finished */
    int resume_read; /* the job parked: the loop reads the socket again */
};

struct ioloop {
    uv_loop_t loop;
    uv_async_t async;
    /* output posted from the loop's own thread (a deferred commit answered
     * from a Raft callback) goes out in the same loop iteration, without an
     * eventfd round trip: see cluster_int.h, wake_check */
    uv_check_t self_check;
    uv_idle_t self_idle;
    int self_pending;
    pthread_t thread;
    int index;
    struct server *srv;
    pthread_mutex_t mu; /* guards outq */
    pthread_cond_t flow_cv;
    struct net_chunk *outq_head, *outq_tail;
    uv_tcp_t tcp_listener;
    uv_pipe_t unix_listener;
    int has_tcp, has_unix;
    struct session *sessions; /* all sessions of this loop (doubly linked) */
    uv_timer_t hold_timer; /* runs while sessions wait to be told the role (ses_hold_tick) */
    uint64_t held_oldest_ns; /* when the longest-held session began to wait (0: none); loop thread */
    int nsessions;
    char rbuf[65536]; /* shared read buffer: idle sessions hold none */
};

struct server {
    struct cfg *cfg;
    int argc;
    char **argv;
    char db_path[4096];
    struct exe_pool *pool;
    struct rpl *repl; /* the txlog commit path (NULL: plain SQLite commits) */
    struct ioloop *loops;
    int nloops;
    atomic_int nsessions;
    atomic_uint next_pid;
    pthread_mutex_t reg_mu;
    struct map registry; /* "pid" -> session, for CancelRequest */
    unsigned char mock_key[32];
    struct sec_roles *roles;
    atomic_int draining;
    uint64_t drain_deadline_ns;
    uv_signal_t sig_term, sig_int, sig_hup;
    uv_timer_t tick;
    int lock_fd;
    int exit_code;
    char listen_host[256];
    int listen_port;
    uint64_t started_us;
};

/* Create loops and listeners (bind errors are reported in err). */
int net_start(struct server *srv, char *err, size_t errcap) MUSTCHECK;
/* Run until shutdown; returns the exit code. */
int net_run(struct server *srv);

/* Loop thread: write bytes to the session's socket (copies data). */
void net_write(struct session *s, const char *data, size_t len);
/* Loop thread: write and take ownership of a util_malloc'd buffer. */
void net_write_owned(struct session *s, char *data, size_t len);
/* Any thread: queue output for the session's loop; final marks its job
 * done. Takes ownership of data. Blocks the calling worker while more
 * than the flow-control limit is queued and unwritten for s. */
void net_post(struct session *s, char *data, size_t len, int final);
/* Any thread (the job's worker): the job stopped using the socket
 * directly; the loop calls ses_resume_read for s. */
void net_post_resume_read(struct session *s);
/* Loop thread: start/stop reading from the session's socket. */
void net_read_start(struct session *s);
void net_read_stop(struct session *s);
/* Loop thread: close the socket; the session is freed from the close
 * callback via ses_free. Output not written yet is dropped. */
void net_close(struct session *s);
/* Loop thread: bytes queued for the socket and not written yet. */
size_t net_unsent(struct session *s);

#endif
