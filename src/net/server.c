/* net/server.c: event loops and their threads, listeners (accept4 on a
 * uv_poll watcher, connections handed round-robin to loops), socket reads
 * and writes, the worker->loop output queue with flow control, signals,
 * the periodic tick, and drain-then-exit on SIGTERM. */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "repl.h"
#include "session.h"

#define FLOW_HIGH (4u << 20)
#define FLOW_LOW (1u << 20)
#define TICK_MS 100

struct listener {
    uv_poll_t poll;
    uv_timer_t retry;
    int fd;
    int is_unix;
    struct server *srv;
    unsigned rr;
    char path[256];
};

static struct listener listeners[2];
static int nlisteners;

struct wreq {
    uv_write_t req;
    struct session *s;
    size_t len;
    char *data;
};

/* ---- handing accepted sockets to loops ---- */

struct handoff {
    struct handoff *next;
    int fd;
    int is_unix;
};

static pthread_mutex_t handoff_mu = PTHREAD_MUTEX_INITIALIZER;
static struct handoff **handoff_q; /* per loop */
static volatile int stop_requested;

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b);

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *b)
{
    struct session *s = h->data;
    b->base = s->io->rbuf;
    b->len = sizeof s->io->rbuf;
}

static void adopt_fd(struct ioloop *io, int fd, int is_unix)
{
    struct session *s = ses_new(io, is_unix);
    if (!s) {
        close(fd);
        return;
    }
    int rc = is_unix ? uv_pipe_open(&s->h.pipe, fd) : uv_tcp_open(&s->h.tcp, fd);
    if (rc) {
        log_warn("accept", "msg=\"cannot adopt socket: %s\"", uv_strerror(rc));
        close(fd);
        net_close(s);
        return;
    }
    if (!is_unix)
        uv_tcp_nodelay(&s->h.tcp, 1);
    net_read_start(s);
}

static void accept_cb(uv_poll_t *p, int status, int events);

static void retry_cb(uv_timer_t *t)
{
    struct listener *l = t->data;
    uv_poll_start(&l->poll, UV_READABLE, accept_cb);
}

static void accept_cb(uv_poll_t *p, int status, int events)
{
    struct listener *l = p->data;
    struct server *srv = l->srv;
    if (status < 0 || atomic_load(&srv->draining))
        return;
    for (int n = 0; n < 256; n++) {
        int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                log_warn("accept", "msg=\"cannot accept: %s; pausing 100 ms\"", strerror(errno));
                uv_poll_stop(&l->poll);
                uv_timer_start(&l->retry, retry_cb, 100, 0);
                return;
            }
            log_warn("accept", "msg=\"%s\"", strerror(errno));
            return;
        }
        int target = (int)(l->rr++ % (unsigned)srv->nloops);
        if (target == 0) {
            adopt_fd(&srv->loops[0], fd, l->is_unix);
        } else {
            struct handoff *h = util_malloc(sizeof *h);
            if (!h) {
                close(fd);
                continue;
            }
            h->fd = fd;
            h->is_unix = l->is_unix;
            pthread_mutex_lock(&handoff_mu);
            h->next = handoff_q[target];
            handoff_q[target] = h;
            pthread_mutex_unlock(&handoff_mu);
            uv_async_send(&srv->loops[target].async);
        }
    }
}

/* ---- writes ---- */

static void flow_release(struct session *s, size_t n)
{
    if (!n)
        return;
    struct ioloop *io = s->io;
    pthread_mutex_lock(&io->mu);
    atomic_fetch_sub(&s->inflight, (long)n);
    if (s->flow_waiting && atomic_load(&s->inflight) <= (long)FLOW_LOW)
        pthread_cond_broadcast(&io->flow_cv);
    pthread_mutex_unlock(&io->mu);
}

static void write_cb(uv_write_t *req, int status)
{
    struct wreq *w = (struct wreq *)req;
    flow_release(w->s, w->len);
    util_free(w->data);
    util_free(w);
}

/* Write data (ownership taken when owned, else copied if needed); counted
 * bytes are released from flow control when written. */
static void do_write(struct session *s, char *data, size_t len, int owned, size_t counted)
{
    if (s->closing || uv_is_closing(&s->h.handle) || len == 0) {
        if (owned)
            util_free(data);
        flow_release(s, counted);
        return;
    }
    size_t off = 0;
    if (s->h.stream.write_queue_size == 0) {
        uv_buf_t b = uv_buf_init(data, (unsigned)len);
        int n = uv_try_write(&s->h.stream, &b, 1);
        if (n > 0)
            off = (size_t)n;
        else if (n != UV_EAGAIN && n != UV_ENOSYS) {
            if (owned)
                util_free(data);
            flow_release(s, counted);
            ses_on_eof(s);
            return;
        }
    }
    if (off == len) {
        if (owned)
            util_free(data);
        flow_release(s, counted);
        return;
    }
    struct wreq *w = util_malloc(sizeof *w);
    char *copy = NULL;
    if (w && owned && off == 0) {
        copy = data;
        data = NULL;
    } else if (w) {
        copy = util_malloc(len - off);
        if (copy)
            memcpy(copy, data + off, len - off);
    }
    if (owned)
        util_free(data);
    if (!w || !copy) {
        util_free(w);
        util_free(copy);
        flow_release(s, counted);
        ses_on_eof(s);
        return;
    }
    w->s = s;
    w->data = copy;
    w->len = counted;
    uv_buf_t b = uv_buf_init(copy, (unsigned)(len - off));
    if (uv_write(&w->req, &s->h.stream, &b, 1, write_cb)) {
        util_free(copy);
        util_free(w);
        flow_release(s, counted);
        ses_on_eof(s);
    }
}

void net_write(struct session *s, const char *data, size_t len)
{
    do_write(s, (char *)data, len, 0, 0);
}

void net_write_owned(struct session *s, char *data, size_t len)
{
    do_write(s, data, len, 1, 0);
}

static struct net_chunk *chunk_new(struct session *s, char *data, size_t len, int final)
{
    struct net_chunk *c = util_malloc(sizeof *c);
    while (!c) {
        /* the job's end must reach the loop: retry */
        usleep(1000);
        c = util_malloc(sizeof *c);
    }
    c->next = NULL;
    c->s = s;
    c->data = data;
    c->len = data ? len : 0;
    c->final = final;
    c->resume_read = 0;
    return c;
}

static void outq_push(struct ioloop *io, struct net_chunk *c)
{
    if (io->outq_tail)
        io->outq_tail->next = c;
    else
        io->outq_head = c;
    io->outq_tail = c;
}

static _Thread_local struct ioloop *tl_loop; /* the loop this thread runs, if any */
static void self_idle_cb(uv_idle_t *h);

/* Have the loop drain its output queue (called with a chunk just pushed). */
static void kick(struct ioloop *io)
{
    if (tl_loop == io) {
        io->self_pending = 1;
        uv_idle_start(&io->self_idle, self_idle_cb);
    } else {
        uv_async_send(&io->async);
    }
}

void net_post_resume_read(struct session *s)
{
    struct ioloop *io = s->io;
    struct net_chunk *c = chunk_new(s, NULL, 0, 0);
    c->resume_read = 1;
    pthread_mutex_lock(&io->mu);
    outq_push(io, c);
    pthread_mutex_unlock(&io->mu);
    kick(io);
}

void net_post(struct session *s, char *data, size_t len, int final)
{
    struct ioloop *io = s->io;
    struct net_chunk *c = chunk_new(s, data, len, final);
    pthread_mutex_lock(&io->mu);
    atomic_fetch_add(&s->inflight, (long)c->len);
    outq_push(io, c);
    if (!final) {
        s->flow_waiting++;
        while (atomic_load(&s->inflight) > (long)FLOW_HIGH && !s->closing) {
            pthread_mutex_unlock(&io->mu);
            uv_async_send(&io->async);
            pthread_mutex_lock(&io->mu);
            if (atomic_load(&s->inflight) > (long)FLOW_LOW && !s->closing)
                pthread_cond_wait(&io->flow_cv, &io->mu);
        }
        s->flow_waiting--;
    }
    pthread_mutex_unlock(&io->mu);
    kick(io);
}

void net_read_start(struct session *s)
{
    if (s->reading || s->closing || uv_is_closing(&s->h.handle))
        return;
    if (uv_read_start(&s->h.stream, alloc_cb, on_read) == 0)
        s->reading = 1;
}

void net_read_stop(struct session *s)
{
    if (!s->reading)
        return;
    uv_read_stop(&s->h.stream);
    s->reading = 0;
}

static void close_cb(uv_handle_t *h)
{
    ses_free(h->data);
}

void net_close(struct session *s)
{
    struct ioloop *io = s->io;
    pthread_mutex_lock(&io->mu);
    s->closing = 1;
    pthread_cond_broadcast(&io->flow_cv);
    pthread_mutex_unlock(&io->mu);
    if (!uv_is_closing(&s->h.handle))
        uv_close(&s->h.handle, close_cb);
}

size_t net_unsent(struct session *s)
{
    return s->h.stream.write_queue_size;
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *b)
{
    struct session *s = st->data;
    if (nread > 0) {
        ses_on_data(s, b->base, (size_t)nread);
    } else if (nread < 0) {
        net_read_stop(s);
        ses_on_eof(s);
    }
}

/* ---- loop plumbing ---- */

static void async_cb(uv_async_t *a)
{
    struct ioloop *io = a->data;
    pthread_mutex_lock(&io->mu);
    struct net_chunk *c = io->outq_head;
    io->outq_head = io->outq_tail = NULL;
    pthread_mutex_unlock(&io->mu);
    while (c) {
        struct net_chunk *next = c->next;
        struct session *s = c->s;
        if (c->data)
            do_write(s, c->data, c->len, 1, c->len);
        if (c->resume_read)
            ses_resume_read(s);
        if (c->final)
            ses_job_done(s);
        util_free(c);
        c = next;
    }
    /* adopted sockets */
    if (io->index > 0) {
        pthread_mutex_lock(&handoff_mu);
        struct handoff *h = handoff_q[io->index];
        handoff_q[io->index] = NULL;
        pthread_mutex_unlock(&handoff_mu);
        while (h) {
            struct handoff *n = h->next;
            adopt_fd(io, h->fd, h->is_unix);
            util_free(h);
            h = n;
        }
    }
    if (stop_requested && io->index > 0)
        uv_stop(&io->loop);
}

static void serve_self(struct ioloop *io)
{
    if (!io->self_pending)
        return;
    io->self_pending = 0;
    uv_idle_stop(&io->self_idle);
    async_cb(&io->async);
}

static void self_check_cb(uv_check_t *h)
{
    serve_self(h->data);
}

static void self_idle_cb(uv_idle_t *h)
{
    serve_self(h->data);
}

static void *loop_thread(void *arg)
{
    struct ioloop *io = arg;
    tl_loop = io;
    uv_run(&io->loop, UV_RUN_DEFAULT);
    return NULL;
}

static int make_listener(struct server *srv, const char *host, int port, const char *unix_dir, char *err,
                         size_t errcap)
{
    struct listener *l = &listeners[nlisteners];
    memset(l, 0, sizeof *l);
    l->srv = srv;
    int fd;
    if (unix_dir) {
        struct sockaddr_un sa;
        memset(&sa, 0, sizeof sa);
        sa.sun_family = AF_UNIX;
        int n = snprintf(sa.sun_path, sizeof sa.sun_path, "%s/.s.PGSQL.%d", unix_dir, port);
        if (n < 0 || (size_t)n >= sizeof sa.sun_path) {
            snprintf(err, errcap, "unix socket path too long: %s/.s.PGSQL.%d", unix_dir, port);
            return -1;
        }
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            goto syserr;
        unlink(sa.sun_path);
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
            snprintf(err, errcap, "could not bind unix socket \"%s\": %s", sa.sun_path, strerror(errno));
            close(fd);
            return -1;
        }
        chmod(sa.sun_path, 0777);
        util_strlcpy(l->path, sa.sun_path, sizeof l->path);
        l->is_unix = 1;
    } else {
        struct addrinfo hints, *res = NULL;
        memset(&hints, 0, sizeof hints);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
        char portstr[16];
        snprintf(portstr, sizeof portstr, "%d", port);
        int gr = getaddrinfo(*host ? host : NULL, portstr, &hints, &res);
        if (gr) {
            snprintf(err, errcap, "could not resolve listen address \"%s\": %s", host, gai_strerror(gr));
            return -1;
        }
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            freeaddrinfo(res);
            goto syserr;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) < 0) {
            snprintf(err, errcap, "could not bind %s:%d: %s", host, port, strerror(errno));
            freeaddrinfo(res);
            close(fd);
            return -1;
        }
        freeaddrinfo(res);
    }
    if (listen(fd, 4096) < 0) {
        close(fd);
        goto syserr;
    }
    l->fd = fd;
    uv_poll_init(&srv->loops[0].loop, &l->poll, fd);
    uv_timer_init(&srv->loops[0].loop, &l->retry);
    l->poll.data = l;
    l->retry.data = l;
    uv_poll_start(&l->poll, UV_READABLE, accept_cb);
    nlisteners++;
    return 0;
syserr:
    snprintf(err, errcap, "socket: %s", strerror(errno));
    return -1;
}

static void tick_cb(uv_timer_t *t);
static void loop_tick_cb(uv_timer_t *t);

static int stop_signalled; /* loop 0 */

/* Stop accepting and drain the sessions (loop 0; once). */
static void begin_drain(void *data)
{
    struct server *srv = data;
    if (atomic_load(&srv->draining))
        return;
    atomic_store(&srv->draining, 1);
    srv->drain_deadline_ns = util_now_ns() + (uint64_t)srv->cfg->drain_timeout_ms * 1000000ULL;
    for (int i = 0; i < nlisteners; i++) {
        uv_poll_stop(&listeners[i].poll);
        close(listeners[i].fd);
        if (listeners[i].is_unix)
            unlink(listeners[i].path);
    }
    tick_cb(&srv->tick);
}

static int sessions_left(void *data)
{
    struct server *srv = data;
    return atomic_load(&srv->nsessions);
}

static void signal_cb(uv_signal_t *h, int signum)
{
    struct server *srv = h->data;
    if (signum == SIGHUP) {
        char err[512];
        if (cfg_reload(srv->cfg, srv->argc, srv->argv, err, sizeof err)) {
            char q[600];
            log_error("config_reload_failed", "msg=%s", log_quote(q, sizeof q, err));
            return;
        }
        enum log_level lvl;
        if (log_parse_level(srv->cfg->log_level, &lvl) == 0)
            log_set_level(lvl);
        if (log_set_file(srv->cfg->log_file))
            log_error("config_reload_failed", "msg=\"cannot open log file\"");
        exe_set_admission_timeout(srv->pool, (uint64_t)srv->cfg->admission_timeout_ms * 1000000ULL);
        log_info("config_reloaded", "%s", "");
        return;
    }
    if (stop_signalled) {
        if (signum == SIGINT) {
            log_warn("shutdown", "msg=\"second interrupt: exiting now\"");
            begin_drain(srv);
            srv->drain_deadline_ns = util_now_ns();
        }
        return;
    }
    stop_signalled = 1;
    log_info("shutdown", "signal=%s msg=\"draining: no new connections, waiting for transactions\" timeout_ms=%lld",
             signum == SIGTERM ? "SIGTERM" : "SIGINT", (long long)srv->cfg->drain_timeout_ms);
    if (srv->repl) /* a leader first has the voter taking over hold new sessions, then drains, then hands over */
        rpl_step_down(srv->repl, begin_drain, sessions_left, srv);
    else
        begin_drain(srv);
}

static int drain_sessions(struct ioloop *io, uint64_t now)
{
    for (struct session *s = io->sessions, *n; s; s = n) {
        n = s->next;
        if (now >= io->srv->drain_deadline_ns && io->srv->drain_deadline_ns)
            ses_fatal(s, "57P01", "terminating connection due to administrator command");
        else
            ses_drain(s);
    }
    return io->nsessions;
}

static void loop_tick_cb(uv_timer_t *t)
{
    struct ioloop *io = t->data;
    uint64_t now = util_now_ns();
    for (struct session *s = io->sessions, *n; s; s = n) {
        n = s->next;
        ses_tick(s, now);
    }
    if (atomic_load(&io->srv->draining))
        drain_sessions(io, now);
}

static uv_timer_t loop_ticks[64];

static void repl_stopped(void *data)
{
    struct server *srv = data;
    uv_stop(&srv->loops[0].loop);
}

static void tick_cb(uv_timer_t *t)
{
    struct server *srv = t->data;
    uint64_t now = util_now_ns();
    exe_check_timeouts(srv->pool, now);
    if (!atomic_load(&srv->draining))
        return;
    int remaining = drain_sessions(&srv->loops[0], now);
    for (int i = 1; i < srv->nloops; i++)
        remaining += srv->loops[i].nsessions;
    if (remaining == 0 && srv->repl && rpl_stepping_down(srv->repl) && now < srv->drain_deadline_ns)
        return; /* the leadership hand-over finishes first (bounded by drain_timeout) */
    if (remaining == 0 && !stop_requested) {
        log_info("shutdown", "msg=\"all sessions closed\"");
        stop_requested = 1;
        if (srv->repl)
            rpl_stop(srv->repl, repl_stopped, srv);
        else
            uv_stop(&srv->loops[0].loop);
    }
}

int net_start(struct server *srv, char *err, size_t errcap)
{
    srv->nloops = (int)srv->cfg->io_threads;
    srv->loops = util_calloc((size_t)srv->nloops, sizeof *srv->loops);
    handoff_q = util_calloc((size_t)srv->nloops, sizeof *handoff_q);
    if (!srv->loops || !handoff_q) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    for (int i = 0; i < srv->nloops; i++) {
        struct ioloop *io = &srv->loops[i];
        io->index = i;
        io->srv = srv;
        uv_loop_init(&io->loop);
        pthread_mutex_init(&io->mu, NULL);
        pthread_cond_init(&io->flow_cv, NULL);
        uv_async_init(&io->loop, &io->async, async_cb);
        io->async.data = io;
        uv_check_init(&io->loop, &io->self_check);
        uv_idle_init(&io->loop, &io->self_idle);
        io->self_check.data = io->self_idle.data = io;
        uv_check_start(&io->self_check, self_check_cb);
        uv_unref((uv_handle_t *)&io->self_check); /* neither keeps the loop alive */
        uv_unref((uv_handle_t *)&io->self_idle);
        uv_timer_init(&io->loop, &loop_ticks[i]);
        uv_timer_init(&io->loop, &io->hold_timer);
        io->hold_timer.data = io;
        loop_ticks[i].data = io;
        uv_timer_start(&loop_ticks[i], loop_tick_cb, TICK_MS, TICK_MS);
    }
    if (util_parse_hostport(srv->cfg->listen, srv->listen_host, sizeof srv->listen_host, &srv->listen_port)) {
        snprintf(err, errcap, "invalid listen address \"%s\" (expected HOST:PORT)", srv->cfg->listen);
        return -1;
    }
    if (make_listener(srv, srv->listen_host, srv->listen_port, NULL, err, errcap))
        return -1;
    if (srv->cfg->unix_socket_dir && *srv->cfg->unix_socket_dir &&
        make_listener(srv, "", srv->listen_port, srv->cfg->unix_socket_dir, err, errcap))
        return -1;
    uv_loop_t *l0 = &srv->loops[0].loop;
    uv_signal_init(l0, &srv->sig_term);
    uv_signal_init(l0, &srv->sig_int);
    uv_signal_init(l0, &srv->sig_hup);
    srv->sig_term.data = srv->sig_int.data = srv->sig_hup.data = srv;
    uv_signal_start(&srv->sig_term, signal_cb, SIGTERM);
    uv_signal_start(&srv->sig_int, signal_cb, SIGINT);
    uv_signal_start(&srv->sig_hup, signal_cb, SIGHUP);
    uv_timer_init(l0, &srv->tick);
    srv->tick.data = srv;
    uv_timer_start(&srv->tick, tick_cb, TICK_MS, TICK_MS);
    for (int i = 1; i < srv->nloops; i++)
        if (pthread_create(&srv->loops[i].thread, NULL, loop_thread, &srv->loops[i])) {
            snprintf(err, errcap, "could not start io thread");
            return -1;
        }
    return 0;
}

int net_run(struct server *srv)
{
    tl_loop = &srv->loops[0];
    uv_run(&srv->loops[0].loop, UV_RUN_DEFAULT);
    for (int i = 1; i < srv->nloops; i++) {
        uv_async_send(&srv->loops[i].async);
        pthread_join(srv->loops[i].thread, NULL);
    }
    return srv->exit_code;
}
