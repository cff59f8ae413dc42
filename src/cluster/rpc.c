/* cluster/rpc.c: the peer port's control plane.
 *
 * One peer port per node (operator contract). libraft's TCP transport owns
 * it; its listen() is wrapped so that every accepted stream passes here
 * with the id from libraft's handshake. Streams from Raft peers go on to
 * libraft; a stream whose handshake names CLU_RPC_ID is an Orbit request:
 * its socket is taken over (dup'd, the libuv handle closed) and served on
 * a thread of its own with blocking I/O, because requests are rare and a
 * snapshot download may last minutes.
 *
 * Wire format after the handshake: one request line ("VERB args\n"), then
 * the reply until the server closes: "OK [text]", "ERR <STATUS> <message>"
 * or "REDIRECT <peer address>" (send it to the leader). FETCH [offset] answers
 * "OK <size>\n" and then streams the file with sendfile(), so memory does
 * not grow with the snapshot on either side.
 *
 * Requests that change the cluster (JOIN, ASSIGN, REMOVE, TRANSFER) run on
 * the loop thread: the connection thread queues a call (under n->mu), wakes
 * the loop and waits on rpc_cv until the call is finished; every call is
 * finished exactly once (libraft completes or cancels each change, close
 * fails the queued ones).
 *
 * Threads owned by the node (connections, the joiner of a fresh --join
 * node, the snapshot fetcher) are unblocked by clu_rpc_shutdown (sockets
 * shut down) and joined by clu_rpc_join_threads once libraft is closed. */
#include "cluster_int.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define NODE_OF_TRANSPORT(t) \
    ((struct clu_node *)((char *)(t)-offsetof(struct clu_node, transport)))
#define RPC_LINE_MAX 512
#define RPC_REPLY_MAX 4096
#define RPC_HANDSHAKE_PROTOCOL 1 /* libraft's uv_tcp handshake version */
#define FETCH_CHUNK (256u * 1024u)
#define SERVER_IO_TIMEOUT_MS 30000
#define RPC_MAX_CONNS 64 /* requests served at once; more are closed at once */

struct clu_rpc_conn {
    struct clu_rpc_conn *next;
    struct clu_node *n;
    int fd; /* -1 once closed (under n->mu) */
    int done;
    pthread_t th;
};

enum { CALL_REQUEST, CALL_FETCH_DONE };

struct clu_rpc_call {
    struct clu_rpc_call *next;
    struct clu_node *n;
    int kind;
    int finished; /* under n->mu */
    int status;   /* CALL_FETCH_DONE */
    uint64_t id;
    enum clu_member_role role;
    char addr[64]; /* JOIN of a member at a new address */
    uint64_t wait_index, deadline_ns; /* n->demoting */
    char line[RPC_LINE_MAX];
    char reply[RPC_REPLY_MAX]; /* MEMBERS: a line per member */
};

/* ---- roles ---------------------------------------------------------------------- */

const char *clu_member_role_name(enum clu_member_role r)
{
    return r == CLU_MEMBER_VOTER ? "voter" : r == CLU_MEMBER_STANDBY ? "standby" : "spare";
}

int clu_member_role_parse(const char *s, enum clu_member_role *out)
{
    static const enum clu_member_role all[] = {CLU_MEMBER_VOTER, CLU_MEMBER_STANDBY,
                                               CLU_MEMBER_SPARE};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (s && strcmp(s, clu_member_role_name(all[i])) == 0) {
            *out = all[i];
            return 0;
        }
    return -1;
}

/* ---- blocking socket helpers (server threads and clients) ---------------------------- */

static void set_timeouts(int fd, unsigned ms)
{
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int send_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    while (len > 0) {
        ssize_t w = send(fd, c, len, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        c += w;
        len -= (size_t)w;
    }
    return 0;
}

/* One line without its '\n' (byte by byte: the bytes after it belong to the
 * caller). -1 on EOF, error or a line longer than cap - 1. */
static int read_line(int fd, char *out, size_t cap)
{
    size_t k = 0;
    for (;;) {
        char c;
        ssize_t r = recv(fd, &c, 1, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        if (c == '\n')
            break;
        if (k + 1 >= cap)
            return -1;
        out[k++] = c;
    }
    if (k > 0 && out[k - 1] == '\r')
        k--;
    out[k] = 0;
    return 0;
}

/* Connect with a timeout and send libraft's handshake naming CLU_RPC_ID:
 * protocol, id, address length (padded to 8, with its NUL), address. */
static int rpc_connect(const char *address, unsigned timeout_ms, char *err, size_t errcap)
{
    int fd = util_tcp_connect(address, timeout_ms, err, errcap);
    if (fd < 0)
        return -1;
    static const char me[] = "orbit-rpc";
    unsigned char hs[24 + 16] = {0};
    uint64_t words[3] = {RPC_HANDSHAKE_PROTOCOL, CLU_RPC_ID, 16};
    for (int w = 0; w < 3; w++)
        for (int b = 0; b < 8; b++)
            hs[w * 8 + b] = (unsigned char)(words[w] >> (8 * b));
    memcpy(hs + 24, me, sizeof me);
    if (send_all(fd, hs, sizeof hs) != 0) {
        snprintf(err, errcap, "cannot send to %s: %s", address, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* "ERR ENOTLEADER ..." -> CLU_ENOTLEADER (unknown names: CLU_ERAFT). */
static int status_by_name(const char *s, size_t len)
{
    for (int i = 1; i < CLU__NSTATUS; i++) {
        const char *name = clu_status_name(i);
        if (strlen(name) == len && strncmp(name, s, len) == 0)
            return i;
    }
    return CLU_ERAFT;
}

/* One request/reply on a connected socket; the reply's first line. */
static int exchange(int fd, const char *request, char *line, size_t cap)
{
    char req[RPC_LINE_MAX + 2];
    int len = snprintf(req, sizeof req, "%s\n", request);
    if (len < 0 || (size_t)len >= sizeof req)
        return -1;
    if (send_all(fd, req, (size_t)len) != 0)
        return -1;
    return read_line(fd, line, cap);
}

/* client fd slots let clu_rpc_shutdown unblock the node's own clients */
static void slot_set(struct clu_node *n, int slot, int fd)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->rpc_client_fd[slot] = fd;
    pthread_mutex_unlock(&n->mu);
}

static int call_on(struct clu_node *n, int slot, const char *address, const char *request, char *reply,
                   size_t cap, struct buf *more, unsigned timeout_ms, char *err, size_t errcap)
{
    char target[256], line[RPC_LINE_MAX];
    util_strlcpy(target, address, sizeof target);
    for (int hop = 0; hop < 5; hop++) {
        int fd = rpc_connect(target, timeout_ms, err, errcap);
        if (fd < 0)
            return CLU_EIO;
        slot_set(n, slot, fd);
        int rc = exchange(fd, request, line, sizeof line);
        int ok = rc == 0 && strncmp(line, "OK", 2) == 0 && (line[2] == 0 || line[2] == ' ');
        if (ok && more) {
            char chunk[4096];
            ssize_t r;
            while ((r = recv(fd, chunk, sizeof chunk, 0)) > 0 || (r < 0 && errno == EINTR))
                if (r > 0)
                    buf_append(more, chunk, (size_t)r);
            if (r < 0 || !buf_ok(more))
                rc = -1;
        }
        slot_set(n, slot, -1);
        close(fd);
        if (rc != 0) {
            snprintf(err, errcap, "no reply from %s (closed, or timed out after %u ms)", target,
                     timeout_ms);
            return CLU_EIO;
        }
        if (ok) {
            if (reply && cap)
                util_strlcpy(reply, line[2] ? line + 3 : "", cap);
            return CLU_OK;
        }
        if (strncmp(line, "REDIRECT ", 9) == 0) {
            util_strlcpy(target, line + 9, sizeof target);
            continue;
        }
        if (strncmp(line, "ERR ", 4) == 0) {
            const char *name = line + 4;
            size_t nl = strcspn(name, " ");
            snprintf(err, errcap, "%s: %s", target, name[nl] ? name + nl + 1 : clu_strerror(CLU_ERAFT));
            return status_by_name(name, nl);
        }
        snprintf(err, errcap, "%s: unexpected reply \"%.80s\" (is this an orbitd peer port?)", target,
                 line);
        return CLU_EINVAL;
    }
    snprintf(err, errcap, "too many redirects (last: %s); is the cluster electing a leader?", target);
    return CLU_ENOTLEADER;
}

int clu_rpc_call(const char *address, const char *request, char *reply, size_t cap,
                 struct buf *more, unsigned timeout_ms, char *err, size_t errcap)
{
    if (!address || !request || strchr(request, '\n')) {
        snprintf(err, errcap, "invalid request");
        return CLU_EINVAL;
    }
    return call_on(NULL, 0, address, request, reply, cap, more, timeout_ms ? timeout_ms : 10000, err,
                   errcap);
}

/* ---- loop side: calls ------------------------------------------------------------------ */

static void finish(struct clu_node *n, struct clu_rpc_call *c, const char *fmt, ...)
    PRINTF_LIKE(3, 4);
static void finish(struct clu_node *n, struct clu_rpc_call *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->reply, sizeof c->reply, fmt, ap);
    va_end(ap);
    pthread_mutex_lock(&n->mu);
    c->finished = 1;
    pthread_cond_broadcast(&n->rpc_cv);
    pthread_mutex_unlock(&n->mu);
}

static void finish_status(struct clu_node *n, struct clu_rpc_call *c, int status, const char *what)
{
    if (status == CLU_OK)
        finish(n, c, "OK done: %s", what);
    else
        finish(n, c, "ERR %s %s: %s", clu_status_name(status), what, clu_strerror(status));
}

/* 1 when this node leads; otherwise the call is answered (REDIRECT or ERR). */
static int leader_or_redirect(struct clu_node *n, struct clu_rpc_call *c)
{
    if (n->state == NODE_STARTED && raft_state(&n->raft) == RAFT_LEADER)
        return 1;
    char addr[64];
    uint64_t lid = 0;
    if (n->state == NODE_STARTED && clu_leader(n, &lid, addr, sizeof addr) && lid != n->id)
        finish(n, c, "REDIRECT %s", addr);
    else
        finish(n, c, "ERR ENOTLEADER no leader is known to %016llx right now; retry",
               (unsigned long long)n->id);
    return 0;
}

static const struct raft_server *member(struct clu_node *n, uint64_t id, const char *address)
{
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if ((id && s->id == id) || (address && s->address && strcmp(s->address, address) == 0))
            return s;
    }
    return NULL;
}

static void warn_even(struct clu_node *n)
{
    unsigned voters = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++)
        voters += n->raft.configuration.servers[i].role == RAFT_VOTER;
    if (voters % 2 == 0)
        log_warn("cluster.members", "voters=%u msg=\"an even number of voters tolerates no more "
                 "failures than one fewer; add or remove a voter\"",
                 voters);
}

static void change_done(void *data, int status)
{
    struct clu_rpc_call *c = data;
    if (status == CLU_OK && strncmp(c->line, "TRANSFER", 8) != 0) {
        log_info("cluster.members_changed", "request=\"%s\"", c->line);
        warn_even(c->n);
    }
    finish_status(c->n, c, status, c->line);
}

/* READINDEX requests are batched: those that arrive while a barrier is in
 * flight share the next one (one log write per batch, not per read). The
 * mark is taken when a batch's barrier is appended, after every request of
 * the batch arrived. */
static void read_index_start(struct clu_node *n);

/* The batch's barrier is applied: everything committed before its requests
 * arrived is in the leader's state, and the leadership was confirmed by a
 * quorum (the barrier committed). */
static void read_index_done(void *data, int status)
{
    struct clu_node *n = data;
    struct clu_rpc_call *c = n->ri_batch;
    n->ri_batch = NULL;
    while (c) {
        struct clu_rpc_call *next = c->next; /* c is gone once finished */
        if (status == CLU_OK)
            finish(n, c, "OK %llu %llu", (unsigned long long)raft_last_applied(&n->raft),
                   (unsigned long long)n->ri_mark);
        else
            finish_status(n, c, status, "READINDEX");
        c = next;
    }
    n->ri_active = 0;
    if (n->ri_next)
        read_index_start(n);
}

static void read_index_start(struct clu_node *n)
{
    n->ri_batch = n->ri_next;
    n->ri_next = NULL;
    n->ri_mark = n->cfg.read_mark ? n->cfg.read_mark(n->cfg.rpc_ud) : 0;
    n->ri_active = 1;
    int rc = clu_barrier(n, read_index_done, n);
    if (rc != CLU_OK)
        read_index_done(n, rc);
}

static void join_added(void *data, int status);

static void readd_removed(void *data, int status)
{
    struct clu_rpc_call *c = data;
    if (status == CLU_OK)
        status = clu_add(c->n, c->id, c->addr, join_added, c);
    if (status != CLU_OK)
        finish_status(c->n, c, status, c->line);
}

static void join_added(void *data, int status)
{
    struct clu_rpc_call *c = data;
    struct clu_node *n = c->n;
    if (status == CLU_OK && c->role != CLU_MEMBER_SPARE)
        status = clu_assign(n, c->id, c->role, change_done, c);
    else if (status == CLU_OK)
        log_info("cluster.member_added", "id=%016llx role=spare", (unsigned long long)c->id);
    if (status != CLU_OK || c->role == CLU_MEMBER_SPARE)
        finish_status(n, c, status, c->line);
}

/* A spare receives no log, so a voter made a spare in one step never
 * learns it: it keeps its old configuration and campaigns for ever (pre-vote
 * keeps that harmless, but it never settles). So a voter becomes a standby
 * first, which receives the change that demotes it (from then on it never
 * campaigns), and a spare once it has that entry, or after 5 s when it is
 * down. Its own status then says standby; the leader's says spare. */
#define DEMOTE_WAIT_NS (5ull * 1000000000ull)

static void demote_standby_done(void *data, int status)
{
    struct clu_rpc_call *c = data;
    struct clu_node *n = c->n;
    if (status != CLU_OK) {
        finish_status(n, c, status, c->line);
        return;
    }
    c->wait_index = raft_last_index(&n->raft);
    c->deadline_ns = util_now_ns() + DEMOTE_WAIT_NS;
    c->next = n->demoting;
    n->demoting = c;
    clu_wake(n);
}

void clu_rpc_demotions(struct clu_node *n)
{
    struct clu_rpc_call **pp = &n->demoting;
    while (*pp) {
        struct clu_rpc_call *c = *pp;
        int leader = n->state == NODE_STARTED && raft_state(&n->raft) == RAFT_LEADER;
        uint64_t match = 0;
        for (unsigned i = 0; leader && i < n->raft.configuration.n; i++)
            if (n->raft.configuration.servers[i].id == c->id)
                match = n->raft.leader_state.progress[i].match_index;
        if (leader && match < c->wait_index && util_now_ns() < c->deadline_ns) {
            pp = &c->next;
            continue;
        }
        *pp = c->next;
        int rc = leader ? clu_assign(n, c->id, CLU_MEMBER_SPARE, change_done, c) : CLU_ENOTLEADER;
        if (rc != CLU_OK)
            finish_status(n, c, rc, c->line);
    }
}

/* Change a member's role (the caller checked it is one). */
static int assign_role(struct clu_node *n, struct clu_rpc_call *c, enum clu_member_role cur)
{
    if (c->role == CLU_MEMBER_SPARE && cur == CLU_MEMBER_VOTER)
        return clu_assign(n, c->id, CLU_MEMBER_STANDBY, demote_standby_done, c);
    return clu_assign(n, c->id, c->role, change_done, c);
}

/* ASSIGN and REMOVE name a member; changing the leader itself (what: the
 * change, NULL when it is harmless) needs a transfer first. 0: answered. */
static int target_ok(struct clu_node *n, struct clu_rpc_call *c, int args_ok, const char *usage,
                     const char *what)
{
    if (!args_ok) {
        finish(n, c, "ERR EINVAL usage: %s", usage);
        return 0;
    }
    if (!leader_or_redirect(n, c))
        return 0;
    if (!member(n, c->id, NULL)) {
        finish(n, c, "ERR ENOTFOUND %016llx is not a member", (unsigned long long)c->id);
        return 0;
    }
    if (what && c->id == n->id) {
        finish(n, c, "ERR EINVAL %016llx is the leader: transfer leadership before %s it "
               "(orbitctl cluster transfer)",
               (unsigned long long)c->id, what);
        return 0;
    }
    return 1;
}

static void exec_call(struct clu_node *n, struct clu_rpc_call *c)
{
    char verb[16] = "", a1[128] = "", a2[128] = "", a3[32] = "";
    int k = sscanf(c->line, "%15s %127s %127s %31s", verb, a1, a2, a3);
    char *end = NULL;
    c->id = k >= 2 ? strtoull(a1, &end, 16) : 0;
    int id_ok = k >= 2 && end && *end == 0 && c->id != 0 && c->id != CLU_RPC_ID;
    int rc;
    if (strcmp(verb, "MEMBERS") == 0 && k == 1) {
        uint64_t lid = 0;
        char list[sizeof c->reply];
        (void)clu_leader(n, &lid, NULL, 0);
        int len = snprintf(list, sizeof list, "OK %u %016llx", n->raft.configuration.n,
                           (unsigned long long)lid);
        for (unsigned i = 0; i < n->raft.configuration.n && len > 0 && (size_t)len < sizeof list; i++) {
            const struct raft_server *s = &n->raft.configuration.servers[i];
            len += snprintf(list + len, sizeof list - (size_t)len, "\n%016llx %s %s",
                            (unsigned long long)s->id, s->address,
                            clu_member_role_name(clu_member_role_of(s->role)));
        }
        finish(n, c, "%s", list);
        return;
    }
    if (strcmp(verb, "READINDEX") == 0 && k == 1) {
        if (!leader_or_redirect(n, c))
            return;
        c->next = n->ri_next;
        n->ri_next = c;
        if (!n->ri_active)
            read_index_start(n);
        return;
    } else if (strcmp(verb, "JOIN") == 0) {
        if (k != 4 || !id_ok || clu_member_role_parse(a3, &c->role)) {
            finish(n, c, "ERR EINVAL usage: JOIN <id hex> <host:port> voter|standby|spare");
            return;
        }
        if (!leader_or_redirect(n, c))
            return;
        const struct raft_server *s = member(n, c->id, NULL);
        if (s && strcmp(s->address, a2) != 0) {
            /* a member back on another address (its identity is its id):
             * remove the old entry, then add and assign it again */
            const struct raft_server *other = member(n, 0, a2);
            if (other && other->id != c->id) {
                finish(n, c, "ERR EINVAL address %s belongs to member %016llx", a2,
                       (unsigned long long)other->id);
                return;
            }
            if (c->id == n->id) {
                finish(n, c, "ERR EINVAL %016llx is the leader; its address changes once another "
                       "node leads", (unsigned long long)c->id);
                return;
            }
            log_warn("cluster.address_change", "id=%016llx from=%s to=%s msg=\"re-adding the member at "
                     "its new address\"",
                     (unsigned long long)c->id, s->address, a2);
            util_strlcpy(c->addr, a2, sizeof c->addr);
            rc = clu_remove(n, c->id, readd_removed, c);
        } else if (s) {
            enum clu_member_role cur = clu_member_role_of(s->role);
            if (cur == c->role) {
                finish(n, c, "OK %016llx is already a member (%s)", (unsigned long long)c->id,
                       clu_member_role_name(cur));
                return;
            }
            rc = assign_role(n, c, cur);
        } else if ((s = member(n, 0, a2))) {
            finish(n, c, "ERR EINVAL address %s belongs to member %016llx; remove it first "
                   "(orbitctl cluster remove)",
                   a2, (unsigned long long)s->id);
            return;
        } else {
            log_info("cluster.join_request", "id=%016llx address=%s role=%s",
                     (unsigned long long)c->id, a2, a3);
            rc = clu_add(n, c->id, a2, join_added, c);
        }
    } else if (strcmp(verb, "ASSIGN") == 0) {
        int args_ok = k == 3 && id_ok && clu_member_role_parse(a2, &c->role) == 0;
        if (!target_ok(n, c, args_ok, "ASSIGN <id hex> voter|standby|spare",
                       c->role != CLU_MEMBER_VOTER ? "demoting" : NULL))
            return;
        const struct raft_server *s = member(n, c->id, NULL);
        rc = assign_role(n, c, clu_member_role_of(s->role));
    } else if (strcmp(verb, "REMOVE") == 0) {
        if (!target_ok(n, c, k == 2 && id_ok, "REMOVE <id hex>", "removing"))
            return;
        log_info("cluster.remove_request", "id=%016llx", (unsigned long long)c->id);
        rc = clu_remove(n, c->id, change_done, c);
    } else if (strcmp(verb, "TRANSFER") == 0) {
        c->id = k >= 2 ? strtoull(a1, &end, 16) : 0;
        if (k > 2 || (k == 2 && (!end || *end))) {
            finish(n, c, "ERR EINVAL usage: TRANSFER [<id hex>|0]");
            return;
        }
        if (!leader_or_redirect(n, c))
            return;
        if (c->id == n->id) {
            finish(n, c, "OK %016llx already leads", (unsigned long long)n->id);
            return;
        }
        const struct raft_server *s = c->id ? member(n, c->id, NULL) : NULL;
        if (c->id && (!s || s->role != RAFT_VOTER)) {
            finish(n, c, "ERR EINVAL %016llx is not a voter: only voters can lead",
                   (unsigned long long)c->id);
            return;
        }
        log_info("cluster.transfer_request", "to=%016llx", (unsigned long long)c->id);
        rc = n->cfg.transfer ? n->cfg.transfer(n->cfg.rpc_ud, c->id, change_done, c)
                             : clu_transfer(n, c->id, change_done, c);
    } else {
        finish(n, c, "ERR EINVAL unknown request \"%.40s\" (ID, JOIN, ASSIGN, REMOVE, TRANSFER, "
               "FETCH)",
               verb);
        return;
    }
    if (rc != CLU_OK)
        finish_status(n, c, rc, c->line);
}

void clu_rpc_drain(struct clu_node *n)
{
    pthread_mutex_lock(&n->mu);
    struct clu_rpc_call *c = n->rpc_calls;
    n->rpc_calls = n->rpc_calls_tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while (c) {
        struct clu_rpc_call *next = c->next;
        if (c->kind == CALL_FETCH_DONE) {
            clu_fsm_fetch_done(n->fsm, c->line, c->status);
            util_free(c);
        } else {
            exec_call(n, c); /* c may be gone once finished */
        }
        c = next;
    }
}

/* Queue c for the loop (any thread). -1 when the node is closing. */
static int post_call(struct clu_node *n, struct clu_rpc_call *c)
{
    pthread_mutex_lock(&n->mu);
    if (n->rpc_closed) {
        pthread_mutex_unlock(&n->mu);
        return -1;
    }
    c->next = NULL;
    if (n->rpc_calls_tail)
        n->rpc_calls_tail->next = c;
    else
        n->rpc_calls = c;
    n->rpc_calls_tail = c;
    uv_async_send(&n->wake);
    pthread_mutex_unlock(&n->mu);
    return 0;
}

/* ---- server threads --------------------------------------------------------------------- */

static int valid_snapshot_name(const char *s)
{
    size_t len = strlen(s);
    if (len == 0 || len >= CLU_SNAP_NAME_MAX || s[0] == '.' || strncmp(s, "snap-", 5) != 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!(s[i] == '-' || s[i] == '.' || s[i] == '_' || (s[i] >= '0' && s[i] <= '9') ||
              (s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z')))
            return 0;
    return strstr(s, "..") == NULL;
}

static void reply_line(int fd, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void reply_line(int fd, const char *fmt, ...)
{
    char line[RPC_REPLY_MAX + 2];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, ap);
    va_end(ap);
    if (len < 0)
        return;
    if ((size_t)len > sizeof line - 2)
        len = (int)sizeof line - 2;
    line[len++] = '\n';
    (void)send_all(fd, line, (size_t)len);
}

/* What follows the name in FETCH: nothing (0) or one decimal offset. */
static int parse_offset(const char *s, unsigned long long *out)
{
    while (*s == ' ')
        s++;
    *out = 0;
    if (!*s)
        return 0;
    size_t digits = strspn(s, "0123456789");
    if (digits == 0 || digits > 19 || s[digits])
        return -1;
    *out = strtoull(s, NULL, 10);
    return 0;
}

/* FETCH <name> [offset]: the snapshot file from offset (a download that
 * was cut off resumes), streamed by the kernel; the reply line gives the
 * whole file's size. An open fd keeps the file readable even if a newer
 * snapshot deletes it meanwhile. */
static void serve_fetch(struct clu_node *n, int fd, const char *name, unsigned long long from)
{
    char path[CLU_PATH_MAX];
    if (!valid_snapshot_name(name) || clu_path(path, sizeof path, n->snap_dir, name, NULL)) {
        reply_line(fd, "ERR EINVAL invalid snapshot name");
        return;
    }
    int in = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (in < 0 || fstat(in, &st) != 0) {
        reply_line(fd, "ERR ENOTFOUND snapshot %s: %s", name, strerror(errno));
        if (in >= 0)
            close(in);
        return;
    }
    if (from > (unsigned long long)st.st_size) {
        reply_line(fd, "ERR EINVAL offset %llu is beyond the end of %s (%lld bytes)", from, name,
                   (long long)st.st_size);
        close(in);
        return;
    }
    uint64_t t0 = util_now_ns();
    reply_line(fd, "OK %llu", (unsigned long long)st.st_size);
    off_t off = (off_t)from;
    while (off < st.st_size) {
        size_t want = (size_t)(st.st_size - off) < FETCH_CHUNK ? (size_t)(st.st_size - off) : FETCH_CHUNK;
        ssize_t w = sendfile(fd, in, &off, want);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            break;
    }
    close(in);
    log_info("cluster.snapshot_served", "file=%s from=%llu bytes=%lld of=%lld ms=%.1f", name, from,
             (long long)(off - (off_t)from), (long long)st.st_size, (double)(util_now_ns() - t0) / 1e6);
}

static int integrator_rpc(struct clu_node *n, int fd, const char *line)
{
    struct buf b;
    buf_init(&b);
    int handled = n->cfg.rpc_fn(n->cfg.rpc_ud, line, &b);
    if (handled) {
        if (!buf_ok(&b))
            reply_line(fd, "ERR ENOMEM out of memory");
        else if (send_all(fd, b.data, b.len) == 0 && (b.len == 0 || b.data[b.len - 1] != '\n'))
            (void)send_all(fd, "\n", 1);
    }
    buf_free(&b);
    return handled;
}

static void *conn_main(void *arg)
{
    struct clu_rpc_conn *k = arg;
    struct clu_node *n = k->n;
    char line[RPC_LINE_MAX];
    if (read_line(k->fd, line, sizeof line) == 0) {
        if (strncmp(line, "FETCH ", 6) == 0) {
            char name[CLU_SNAP_NAME_MAX + 1] = "";
            unsigned long long from = 0;
            int end = 0;
            if (sscanf(line + 6, "%64s%n", name, &end) == 1 && parse_offset(line + 6 + end, &from) == 0)
                serve_fetch(n, k->fd, name, from);
            else
                reply_line(k->fd, "ERR EINVAL usage: FETCH <name> [offset]");
        } else if (strcmp(line, "ID") == 0) {
            reply_line(k->fd, "OK %016llx %s", (unsigned long long)n->id, n->address);
        } else if (strncmp(line, "WITNESS ", 8) == 0) {
            char *end = NULL;
            uint64_t wid = strtoull(line + 8, &end, 16);
            if (!end || *end || end == line + 8 || !wid || wid == CLU_RPC_ID) {
                reply_line(k->fd, "ERR EINVAL usage: WITNESS <id hex>");
            } else {
                clu_note_witness(n, wid);
                reply_line(k->fd, "OK");
            }
        } else if (n->cfg.rpc_fn && integrator_rpc(n, k->fd, line)) {
            /* answered */
        } else {
            struct clu_rpc_call *c = util_calloc(1, sizeof *c);
            if (!c) {
                reply_line(k->fd, "ERR ENOMEM out of memory");
            } else {
                c->n = n;
                c->kind = CALL_REQUEST;
                util_strlcpy(c->line, line, sizeof c->line);
                if (post_call(n, c) != 0) {
                    reply_line(k->fd, "ERR ESHUTDOWN %s", clu_strerror(CLU_ESHUTDOWN));
                } else {
                    pthread_mutex_lock(&n->mu);
                    while (!c->finished)
                        pthread_cond_wait(&n->rpc_cv, &n->mu);
                    pthread_mutex_unlock(&n->mu);
                    reply_line(k->fd, "%s", c->reply);
                }
                util_free(c);
            }
        }
    }
    pthread_mutex_lock(&n->mu);
    close(k->fd);
    k->fd = -1;
    k->done = 1;
    pthread_mutex_unlock(&n->mu);
    return NULL;
}

/* Join and free finished connection threads (loop thread). all: every one. */
static void reap(struct clu_node *n, int all)
{
    for (;;) {
        struct clu_rpc_conn *k = NULL, **pp;
        pthread_mutex_lock(&n->mu);
        for (pp = &n->rpc_conns; *pp; pp = &(*pp)->next)
            if (all || (*pp)->done) {
                k = *pp;
                *pp = k->next;
                break;
            }
        pthread_mutex_unlock(&n->mu);
        if (!k)
            return;
        pthread_join(k->th, NULL);
        util_free(k);
    }
}

static void stream_closed(uv_handle_t *h)
{
    raft_free(h); /* allocated by libraft's transport */
}

static void rpc_accept(struct raft_uv_transport *t, raft_id id, const char *address,
                       struct uv_stream_s *stream)
{
    struct clu_node *n = NODE_OF_TRANSPORT(t);
    if (id != CLU_RPC_ID) {
        n->raft_accept(t, id, address, stream);
        return;
    }
    reap(n, 0);
    uv_os_fd_t fd;
    int mine = -1;
    if (uv_fileno((uv_handle_t *)stream, &fd) == 0)
        mine = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    uv_close((uv_handle_t *)stream, stream_closed);
    if (mine < 0)
        return;
    (void)fcntl(mine, F_SETFL, fcntl(mine, F_GETFL) & ~O_NONBLOCK);
    set_timeouts(mine, SERVER_IO_TIMEOUT_MS);
    struct clu_rpc_conn *k = util_calloc(1, sizeof *k);
    if (k) {
        k->n = n;
        k->fd = mine;
    }
    pthread_mutex_lock(&n->mu);
    int busy = 0;
    for (struct clu_rpc_conn *o = n->rpc_conns; o; o = o->next)
        busy += !o->done;
    if (busy >= RPC_MAX_CONNS)
        log_warn("cluster.rpc_refused", "msg=\"%d requests in progress on the peer port; closing a new one\"",
                 busy);
    if (!k || busy >= RPC_MAX_CONNS || n->rpc_closed || pthread_create(&k->th, NULL, conn_main, k) != 0) {
        pthread_mutex_unlock(&n->mu);
        close(mine);
        util_free(k);
        return;
    }
    k->next = n->rpc_conns;
    n->rpc_conns = k;
    pthread_mutex_unlock(&n->mu);
}

/* ---- the peer listener ---------------------------------------------------------------
 * Orbit reads the handshake itself instead of libraft's transport: libraft
 * 0.15 allocates whatever address length the preamble announces (2^40 bytes
 * from one malformed packet). Same format: protocol 1, id, address length,
 * address (NUL-terminated, padded to 8); only the reading is stricter. The
 * stream then goes to libraft (raft_accept) or to the request server. */

#define HANDSHAKE_ADDR_MAX 256
#define HANDSHAKES_MAX 256 /* connections still sending their handshake */

struct rpc_incoming {
    struct rpc_incoming *next, *prev;
    struct clu_node *n;
    uv_tcp_t *tcp; /* raft_malloc'd: libraft frees it once it owns the stream */
    uint64_t pre[3];
    size_t got;    /* bytes of preamble, then of address */
    size_t addr_len;
    char addr[HANDSHAKE_ADDR_MAX];
};

static void incoming_closed(uv_handle_t *h)
{
    struct rpc_incoming *in = h->data;
    raft_free(in->tcp);
    util_free(in);
}

static void incoming_unlink(struct rpc_incoming *in)
{
    struct clu_node *n = in->n;
    if (in->prev)
        in->prev->next = in->next;
    else
        n->incoming = in->next;
    if (in->next)
        in->next->prev = in->prev;
    n->nincoming--;
}

static void incoming_abort(struct rpc_incoming *in)
{
    incoming_unlink(in);
    uv_close((uv_handle_t *)in->tcp, incoming_closed);
}

static void incoming_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct rpc_incoming *in = h->data;
    (void)suggested;
    /* exactly what the handshake still lacks: the request behind it stays
     * in the socket for whoever gets the stream */
    if (in->got < sizeof in->pre) {
        buf->base = (char *)in->pre + in->got;
        buf->len = sizeof in->pre - in->got;
    } else {
        size_t have = in->got - sizeof in->pre;
        buf->base = in->addr + have;
        buf->len = in->addr_len - have;
    }
}

static void incoming_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rpc_incoming *in = s->data;
    struct clu_node *n = in->n;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        incoming_abort(in);
        return;
    }
    in->got += (size_t)nread;
    if (in->got == sizeof in->pre) {
        uint64_t proto = le64toh(in->pre[0]), len = le64toh(in->pre[2]);
        if (proto != RPC_HANDSHAKE_PROTOCOL || len == 0 || len > HANDSHAKE_ADDR_MAX || len % 8) {
            incoming_abort(in);
            return;
        }
        in->addr_len = (size_t)len;
        return;
    }
    if (in->got < sizeof in->pre || in->got < sizeof in->pre + in->addr_len)
        return;
    if (!memchr(in->addr, 0, in->addr_len)) {
        incoming_abort(in);
        return;
    }
    uv_read_stop(s);
    incoming_unlink(in);
    uv_tcp_t *tcp = in->tcp;
    uint64_t id = le64toh(in->pre[1]);
    char addr[HANDSHAKE_ADDR_MAX];
    memcpy(addr, in->addr, sizeof addr);
    util_free(in);
    tcp->data = NULL;
    if (n->state >= NODE_CLOSING) {
        uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
        return;
    }
    rpc_accept(&n->transport, id, addr, (struct uv_stream_s *)tcp);
}

static void on_peer_connection(uv_stream_t *server, int status)
{
    struct clu_node *n = server->data;
    if (status < 0)
        return;
    uv_tcp_t *tcp = raft_malloc(sizeof *tcp);
    if (!tcp)
        return;
    uv_tcp_init(n->loop, tcp);
    int many = n->nincoming >= HANDSHAKES_MAX;
    struct rpc_incoming *in = many ? NULL : util_calloc(1, sizeof *in);
    if (!in) { /* take the connection off the backlog and drop it */
        if (many)
            log_warn("cluster.peer_refused", "msg=\"%d connections are still sending their handshake\"",
                     n->nincoming);
        (void)uv_accept(server, (uv_stream_t *)tcp);
        uv_close((uv_handle_t *)tcp, (uv_close_cb)raft_free);
        return;
    }
    in->n = n;
    in->tcp = tcp;
    tcp->data = in;
    n->nincoming++;
    in->next = n->incoming;
    if (n->incoming)
        n->incoming->prev = in;
    n->incoming = in;
    if (uv_accept(server, (uv_stream_t *)tcp) != 0 ||
        uv_read_start((uv_stream_t *)tcp, incoming_alloc, incoming_read) != 0)
        incoming_abort(in);
}

static int rpc_listen(struct raft_uv_transport *t, raft_uv_accept_cb cb)
{
    struct clu_node *n = NODE_OF_TRANSPORT(t);
    n->raft_accept = cb;
    char host[64];
    int port = 0;
    struct sockaddr_in sa;
    if (util_parse_hostport(n->bind[0] ? n->bind : n->address, host, sizeof host, &port) ||
        uv_ip4_addr(host, port, &sa) != 0)
        return RAFT_INVALID;
    uv_tcp_init(n->loop, &n->listener);
    n->listener.data = n;
    n->open_handles++; /* closed by clu_rpc_shutdown */
    n->listening = 1;
    if (uv_tcp_bind(&n->listener, (const struct sockaddr *)&sa, 0) != 0 ||
        uv_listen((uv_stream_t *)&n->listener, 128, on_peer_connection) != 0) {
        log_error("cluster.listen", "address=%s:%d msg=\"cannot listen on the peer address\"", host, port);
        return RAFT_IOERR;
    }
    return 0;
}

/* ---- the joiner: a fresh --join node asks to be added until it is ------------------------ */

static void sleep_unless_closed(struct clu_node *n, unsigned ms)
{
    pthread_mutex_lock(&n->mu);
    if (!n->rpc_closed)
        util_cond_wait_ns(&n->rpc_cv, &n->mu, (uint64_t)ms * 1000000ull);
    pthread_mutex_unlock(&n->mu);
}

static int closed(struct clu_node *n)
{
    pthread_mutex_lock(&n->mu);
    int c = n->rpc_closed;
    pthread_mutex_unlock(&n->mu);
    return c;
}

static void join_until_member(struct clu_node *n)
{
    char req[RPC_LINE_MAX], reply[RPC_LINE_MAX], err[RPC_LINE_MAX], last[RPC_LINE_MAX] = "";
    snprintf(req, sizeof req, "JOIN %016llx %s %s", (unsigned long long)n->id, n->address,
             clu_member_role_name(n->join_role));
    /* until this node holds the role it asks for, at its address: whoever
     * added it. A member back on a new address asks the others in turn. */
    for (int turn = 0; !closed(n) && !(n->self_role == 1 + clu_raft_role(n->join_role) && n->self_addr_ok);
         turn++) {
        const char *via = n->nrejoin_via ? n->rejoin_via[turn % n->nrejoin_via] : n->join_addr;
        /* a voter is promoted once it caught up: that can take a while */
        int rc = call_on(n, 0, via, req, reply, sizeof reply, NULL, 60000, err, sizeof err);
        if (rc == CLU_OK) {
            log_info("cluster.joined", "id=%016llx via=%s role=%s msg=\"%s\"",
                     (unsigned long long)n->id, via, clu_member_role_name(n->join_role), reply);
            break;
        }
        if (closed(n))
            break;
        if (strcmp(err, last) != 0) {
            log_warn("cluster.join", "via=%s status=%s msg=\"%s\" retry=1s", via,
                     clu_status_name(rc), err);
            util_strlcpy(last, err, sizeof last);
        }
        sleep_unless_closed(n, 1000);
    }
}

/* A witness tells every member what it is, every 2 s, for as long as it
 * runs (members forget a witness that stops saying so). */
static void announce_witness(struct clu_node *n)
{
    char req[64], reply[RPC_LINE_MAX], err[RPC_LINE_MAX];
    snprintf(req, sizeof req, "WITNESS %016llx", (unsigned long long)n->id);
    while (!closed(n)) {
        struct buf lines;
        buf_init(&lines);
        if (call_on(n, 0, n->address, "MEMBERS", reply, sizeof reply, &lines, 2000, err, sizeof err) == CLU_OK) {
            buf_putc(&lines, 0);
            for (const char *p = lines.data; p && *p && !closed(n);) {
                unsigned long long id;
                char addr[256];
                if (sscanf(p, "%llx %255s", &id, addr) == 2 && id != n->id)
                    (void)call_on(n, 0, addr, req, reply, sizeof reply, NULL, 1000, err, sizeof err);
                const char *eol = strchr(p, '\n');
                p = eol ? eol + 1 : p + strlen(p);
            }
        }
        buf_free(&lines);
        sleep_unless_closed(n, 2000);
    }
}

/* The joiner thread: a fresh --join node (or one back on a new address)
 * asks to be added until it is; a witness then keeps announcing itself. */
static void *joiner_main(void *arg)
{
    struct clu_node *n = arg;
    if (n->join_needed)
        join_until_member(n);
    if (n->witness)
        announce_witness(n);
    return NULL;
}

/* ---- the snapshot fetcher --------------------------------------------------------------- */

struct fetch_job {
    struct clu_node *n;
    char address[64];
    char dst[CLU_PATH_MAX];
    struct clu_snapshot_desc d;
};

static int fetch_file(struct fetch_job *j)
{
    struct clu_node *n = j->n;
    char err[RPC_LINE_MAX], line[RPC_LINE_MAX], req[RPC_LINE_MAX];
    int fd = rpc_connect(j->address, 10000, err, sizeof err);
    if (fd < 0) {
        log_warn("cluster.snapshot_fetch", "file=%s from=%s msg=\"%s\"", j->d.name, j->address, err);
        return CLU_EIO;
    }
    slot_set(n, 1, fd);
    int status = CLU_EIO, out = -1;
    unsigned long long size = 0;
    char *buf = NULL;
    /* what an interrupted download of this file left is kept: go on from there */
    struct stat ps;
    uint64_t have = 0;
    if (stat(j->dst, &ps) == 0 && ps.st_size > 0 && (uint64_t)ps.st_size < j->d.size)
        have = (uint64_t)ps.st_size;
    snprintf(req, sizeof req, "FETCH %s %llu", j->d.name, (unsigned long long)have);
    if (exchange(fd, req, line, sizeof line) != 0 || sscanf(line, "OK %llu", &size) != 1) {
        log_warn("cluster.snapshot_fetch", "file=%s from=%s reply=\"%.100s\"", j->d.name,
                 j->address, line);
        goto done;
    }
    if (size != j->d.size) {
        status = CLU_ECORRUPT;
        goto done;
    }
    out = open(j->dst, O_WRONLY | O_CREAT | O_CLOEXEC | (have ? O_APPEND : O_TRUNC), 0600);
    buf = util_malloc(FETCH_CHUNK);
    if (out < 0 || !buf)
        goto done;
    if (have)
        log_info("cluster.snapshot_fetch_resume", "file=%s from=%llu of=%llu", j->d.name, (unsigned long long)have,
                 size);
    uint64_t got = have, t0 = util_now_ns(), last_log = t0;
    while (got < size) {
        ssize_t r = recv(fd, buf, FETCH_CHUNK, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || closed(n))
            goto done;
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, buf + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                status = errno == ENOSPC ? CLU_ENOSPACE : CLU_EIO;
                goto done;
            }
            off += w;
        }
        got += (uint64_t)r;
        uint64_t now = util_now_ns();
        if (now - last_log >= 1000000000ull) {
            last_log = now;
            log_info("cluster.snapshot_fetch_progress", "file=%s bytes=%llu of=%llu pct=%.0f",
                     j->d.name, (unsigned long long)got, size, 100.0 * (double)got / (double)size);
        }
    }
    status = fsync(out) == 0 ? CLU_OK : CLU_EIO;
    log_info("cluster.snapshot_fetch_done", "file=%s bytes=%llu ms=%.1f", j->d.name, size,
             (double)(util_now_ns() - t0) / 1e6);
done:
    slot_set(n, 1, -1);
    close(fd);
    if (out >= 0)
        close(out);
    util_free(buf);
    return status;
}

static void *fetch_main(void *arg)
{
    struct fetch_job *j = arg;
    int status = fetch_file(j);
    struct clu_rpc_call *c = util_calloc(1, sizeof *c);
    if (c) {
        c->n = j->n;
        c->kind = CALL_FETCH_DONE;
        c->status = status;
        util_strlcpy(c->line, j->d.name, sizeof c->line);
        if (post_call(j->n, c) != 0)
            util_free(c); /* closing: the .fetch file is removed at the next start */
    }
    util_free(j);
    return NULL;
}

/* The FSM glue's hook (loop thread): a descriptor arrived whose file is
 * missing here. One fetch at a time (the glue guarantees it). */
static void fetch_hook(void *fud, uint64_t from_id, const char *from_address,
                       const struct clu_snapshot_desc *d, const char *dst_path)
{
    struct clu_node *n = fud;
    (void)from_id;
    if (n->fetcher_on) {
        pthread_join(n->fetcher, NULL); /* it posted its result and is exiting */
        n->fetcher_on = 0;
    }
    struct fetch_job *j = util_calloc(1, sizeof *j);
    if (j) {
        j->n = n;
        j->d = *d;
        util_strlcpy(j->address, from_address ? from_address : "", sizeof j->address);
        util_strlcpy(j->dst, dst_path, sizeof j->dst);
    }
    if (!j || closed(n) || pthread_create(&n->fetcher, NULL, fetch_main, j) != 0) {
        util_free(j);
        clu_fsm_fetch_done(n->fsm, d->name, CLU_ESHUTDOWN);
        return;
    }
    n->fetcher_on = 1;
}

/* ---- lifecycle ----------------------------------------------------------------------- */

void clu_rpc_init(struct clu_node *n)
{
    n->transport.listen = rpc_listen;
    clu_fsm_set_fetch(n->fsm, fetch_hook, n);
}

/* A member whose configuration entry has another address (it came back on
 * a new IP or port): ask the other members to update it, keeping its role. */
static int address_changed(struct clu_node *n)
{
    const struct raft_server *self = NULL;
    for (unsigned i = 0; i < n->raft.configuration.n; i++)
        if (n->raft.configuration.servers[i].id == n->id)
            self = &n->raft.configuration.servers[i];
    if (!self || strcmp(self->address, n->address) == 0)
        return 0;
    n->join_role = clu_member_role_of(self->role);
    n->nrejoin_via = 0;
    for (unsigned i = 0; i < n->raft.configuration.n && n->nrejoin_via < 8; i++)
        if (n->raft.configuration.servers[i].id != n->id)
            util_strlcpy(n->rejoin_via[n->nrejoin_via++], n->raft.configuration.servers[i].address,
                         sizeof n->rejoin_via[0]);
    log_warn("cluster.address_change", "id=%016llx from=%s to=%s msg=\"this node's address changed; "
             "asking the cluster to update it\"",
             (unsigned long long)n->id, self->address, n->address);
    return n->nrejoin_via > 0;
}

void clu_rpc_start(struct clu_node *n)
{
    n->join_needed = n->raft.configuration.n != 0 ? address_changed(n) : n->join;
    if (!n->join_needed && !n->witness)
        return;
    if (pthread_create(&n->joiner, NULL, joiner_main, n) == 0)
        n->joiner_on = 1;
    else
        log_error("cluster.join", "msg=\"cannot start the join thread\"");
}

void clu_rpc_shutdown(struct clu_node *n)
{
    if (n->listening && clu_on_loop(n)) {
        n->listening = 0;
        uv_close((uv_handle_t *)&n->listener, clu_handle_closed);
        while (n->incoming)
            incoming_abort(n->incoming);
    }
    pthread_mutex_lock(&n->mu);
    n->rpc_closed = 1;
    struct clu_rpc_call *c = n->rpc_calls;
    n->rpc_calls = n->rpc_calls_tail = NULL;
    for (struct clu_rpc_conn *k = n->rpc_conns; k; k = k->next)
        if (k->fd >= 0)
            shutdown(k->fd, SHUT_RDWR);
    for (int i = 0; i < 2; i++)
        if (n->rpc_client_fd[i] >= 0)
            shutdown(n->rpc_client_fd[i], SHUT_RDWR);
    pthread_cond_broadcast(&n->rpc_cv);
    pthread_mutex_unlock(&n->mu);
    while (n->demoting) {
        struct clu_rpc_call *d = n->demoting;
        n->demoting = d->next;
        finish(n, d, "ERR ESHUTDOWN %s", clu_strerror(CLU_ESHUTDOWN));
    }
    while (c) {
        struct clu_rpc_call *next = c->next;
        if (c->kind == CALL_FETCH_DONE)
            util_free(c);
        else
            finish(n, c, "ERR ESHUTDOWN %s", clu_strerror(CLU_ESHUTDOWN));
        c = next;
    }
}

void clu_rpc_join_threads(struct clu_node *n)
{
    clu_rpc_shutdown(n); /* again: late queued calls and sockets */
    if (n->joiner_on)
        pthread_join(n->joiner, NULL);
    if (n->fetcher_on)
        pthread_join(n->fetcher, NULL);
    n->joiner_on = n->fetcher_on = 0;
    clu_rpc_shutdown(n); /* the fetcher's last post */
    reap(n, 1);
}
