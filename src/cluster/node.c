/* cluster/node.c: a cluster node: identity, libraft on a libuv loop
 * (raft_uv + TCP transport, log in DATA/raft), bootstrap of a one-voter
 * cluster on a fresh dir, role tracking and readiness, close, queries.
 *
 * Node states (n->state): NEW (clu_node_new) -> STARTED (clu_node_start)
 * -> CLOSING (clu_node_close: raft_close in flight) -> CLOSED (libraft
 * closed; the wake handle is closing and frees the node). A start failure
 * leaves NEW; close works from any state.
 *
 * Roles: libraft's state plus readiness. On becoming leader in term T the
 * node appends a barrier; only once it is applied (everything committed by
 * earlier leaders is in the FSM) is the role LEADER and are writes taken. */
#include "cluster_int.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

#define NODE_OF_RAFT(r) ((struct clu_node *)((char *)(r)-offsetof(struct clu_node, raft)))

void clu_config_init(struct clu_config *c)
{
    memset(c, 0, sizeof *c);
    c->heartbeat_ms = 100;
    c->election_timeout_ms = 1000;
    c->install_snapshot_timeout_ms = 5000;
    c->snapshot_threshold = 65536;
    c->snapshot_trailing = 8192;
    c->snapshot_bytes = 256ull << 20;
    c->max_entry_size = 64u << 20;
    c->pre_vote = 1;
    c->verify_snapshots = 1;
    c->log_auto_recovery = 0;
    c->join_role = CLU_MEMBER_VOTER;
}

int clu_on_loop(const struct clu_node *n)
{
    return pthread_equal(pthread_self(), n->loop_thread);
}

static void wake_cb(uv_async_t *h);

/* A wake-up posted from the loop thread itself (struct clu_node). */
static void serve_local_wake(struct clu_node *n)
{
    if (!n->wake_pending)
        return;
    n->wake_pending = 0;
    uv_idle_stop(&n->wake_idle);
    wake_cb(&n->wake);
}

static void wake_check_cb(uv_check_t *h)
{
    serve_local_wake(h->data);
}

static void wake_idle_cb(uv_idle_t *h)
{
    serve_local_wake(h->data);
}

void clu_wake(struct clu_node *n)
{
    if (n->state >= NODE_CLOSED)
        return;
    if (clu_on_loop(n)) { /* served in this loop iteration, without an eventfd round trip */
        n->wake_pending = 1;
        uv_idle_start(&n->wake_idle, wake_idle_cb);
        return;
    }
    uv_async_send(&n->wake);
}

/* ---- roles ------------------------------------------------------------------ */

static enum clu_role effective_role(struct clu_node *n)
{
    if (n->state != NODE_STARTED)
        return CLU_ROLE_NONE;
    switch (raft_state(&n->raft)) {
    case RAFT_FOLLOWER:
        return CLU_ROLE_FOLLOWER;
    case RAFT_CANDIDATE:
        return CLU_ROLE_CANDIDATE;
    case RAFT_LEADER:
        return n->ready_term == n->raft.current_term ? CLU_ROLE_LEADER : CLU_ROLE_CANDIDATE;
    default:
        return CLU_ROLE_NONE;
    }
}

static void ready_cb(struct raft_barrier *req, int status)
{
    struct clu_req *q = req->data;
    struct clu_node *n = q->node;
    /* published by clu_check_role, together with the notification */
    if (status == 0 && raft_state(&n->raft) == RAFT_LEADER && n->raft.current_term == q->term) {
        n->ready_seen_term = q->term;
        clu_wake(n);
    }
    clu_req_free(q);
}

static void notify(struct clu_node *n, enum clu_role role, uint64_t term)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&n->raft, &lid, &laddr);
    log_info("cluster.role", "role=%s term=%llu leader=%016llx applied=%llu commit=%llu",
             clu_role_name(role), (unsigned long long)term, (unsigned long long)lid,
             (unsigned long long)raft_last_applied(&n->raft),
             (unsigned long long)n->raft.commit_index);
    if (n->ops->role_changed)
        n->ops->role_changed(n->ud, role, term);
}

static struct clu_track *track_of(struct clu_node *n, uint64_t id)
{
    for (int i = 0; i < n->ntrack; i++)
        if (n->track[i].id == id)
            return &n->track[i];
    return NULL;
}

/* Leader: when each member was last heard from, since when it is behind. */
static void track_members(struct clu_node *n)
{
    if (raft_state(&n->raft) != RAFT_LEADER || !n->raft.leader_state.progress) {
        n->ntrack = 0;
        return;
    }
    uint64_t now = util_now_ns();
    struct clu_track next[16];
    int k = 0;
    for (unsigned i = 0; i < n->raft.configuration.n && k < 16; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        const struct raft_progress *p = &n->raft.leader_state.progress[i];
        struct clu_track *old = track_of(n, s->id), t = {.id = s->id, .contact_ns = now};
        if (old)
            t = *old;
        if (p->recent_recv || s->id == n->id)
            t.contact_ns = now;
        if (s->id == n->id || p->match_index >= n->raft.commit_index)
            t.behind_ns = 0;
        else if (!t.behind_ns)
            t.behind_ns = now;
        next[k++] = t;
    }
    memcpy(n->track, next, sizeof next[0] * (size_t)k);
    n->ntrack = k;
}

void clu_check_role(struct clu_node *n)
{
    if (n->state != NODE_STARTED)
        return;
    int self_role = 0, addr_ok = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++)
        if (n->raft.configuration.servers[i].id == n->id) {
            self_role = 1 + n->raft.configuration.servers[i].role;
            addr_ok = strcmp(n->raft.configuration.servers[i].address, n->address) == 0;
        }
    n->self_role = self_role;
    n->self_addr_ok = addr_ok;
    track_members(n);
    uint64_t term = n->raft.current_term;
    if (raft_state(&n->raft) == RAFT_LEADER && n->ready_seen_term == term)
        n->ready_term = term;
    if (raft_state(&n->raft) == RAFT_LEADER && n->ready_term != term && n->ready_asked_term != term) {
        struct clu_req *q = clu_req_new(n, REQ_READY);
        if (q) {
            q->term = term;
            q->r.barrier.data = q;
            if (raft_barrier(&n->raft, &q->r.barrier, ready_cb) == 0)
                n->ready_asked_term = term;
            else
                clu_req_free(q); /* tried again on the next event */
        }
    }
    enum clu_role role = effective_role(n);
    if (role == n->reported_role && (role != CLU_ROLE_LEADER || term == n->reported_term))
        return;
    if (n->reported_role == CLU_ROLE_LEADER && role == CLU_ROLE_LEADER)
        notify(n, CLU_ROLE_FOLLOWER, term); /* lost and regained since the last look */
    n->reported_role = role;
    n->reported_term = term;
    notify(n, role, term);
}

/* ---- FSM hooks ---------------------------------------------------------------- */

static void *hook_local(void *owner, uint64_t index)
{
    struct clu_node *n = owner;
    struct clu_req *q = n->pending.head;
    if (q && q->index == index && raft_state(&n->raft) == RAFT_LEADER &&
        n->raft.current_term == q->term)
        return q->data;
    return NULL;
}

/* libraft keeps every entry since the last snapshot, and `trailing` more,
 * in memory (and reads them all at startup): with large records a count
 * threshold alone lets that grow with the data. So a snapshot also starts
 * once snapshot_bytes were applied since the last one, and the trailing
 * entries are cut to a quarter of that at the average entry size. */
static void size_snapshot(struct clu_node *n, size_t bytes)
{
    n->since_snap_entries++;
    n->since_snap_bytes += bytes;
    if (n->size_snap || !n->cfg.snapshot_bytes || n->since_snap_bytes < n->cfg.snapshot_bytes ||
        n->state != NODE_STARTED)
        return;
    uint64_t avg = n->since_snap_bytes / n->since_snap_entries;
    uint64_t trailing = (n->cfg.snapshot_bytes / 4) / (avg ? avg : 1);
    if (trailing > n->cfg.snapshot_trailing)
        trailing = n->cfg.snapshot_trailing;
    raft_set_snapshot_trailing(&n->raft, (unsigned)(trailing ? trailing : 1));
    if (clu_snapshot(n, NULL, NULL) == CLU_OK) {
        n->size_snap = 1;
        log_info("cluster.snapshot_by_size", "bytes=%llu entries=%llu trailing=%llu",
                 (unsigned long long)n->since_snap_bytes, (unsigned long long)n->since_snap_entries,
                 (unsigned long long)trailing);
    }
}

static void hook_applied(void *owner, size_t bytes)
{
    struct clu_node *n = owner;
    if (bytes)
        size_snapshot(n, bytes);
    else /* a snapshot was installed */
        n->since_snap_entries = n->since_snap_bytes = 0;
    if (n->waiters.head)
        clu_wake(n);
}

static void hook_after_event(void *owner)
{
    clu_flush(owner);
}

static void wake_cb(uv_async_t *h)
{
    struct clu_node *n = h->data;
    clu_drain_posted(n);
    clu_rpc_drain(n);
    clu_flush(n);
}

/* ---- new / start ------------------------------------------------------------------ */

static int parse_address(const char *in, char *out, size_t cap)
{
    char host[256];
    int port = 0;
    if (!in || !*in)
        in = "127.0.0.1";
    if (util_parse_hostport(in, host, sizeof host, &port))
        return -1;
    if (!host[0])
        util_strlcpy(host, "127.0.0.1", sizeof host);
    if (port == 0)
        port = CFG_DEFAULT_PEER_PORT;
    int len = snprintf(out, cap, "%s:%d", host, port);
    return len < 0 || (size_t)len >= cap ? -1 : 0;
}

static void free_node(struct clu_node *n)
{
    clu_fsm_free(n->fsm);
    util_free(n->initial_members);
    pthread_mutex_destroy(&n->mu);
    pthread_cond_destroy(&n->rpc_cv);
    util_free(n);
}

int clu_node_new(uv_loop_t *loop, const struct clu_config *cfg, const struct clu_fsm_ops *ops,
                 void *ud, struct clu_node **out, char *err, size_t errcap)
{
    int rv;
    *out = NULL;
    clu_heap_init();
    if (!loop || !cfg || !cfg->data_dir || !ops) {
        snprintf(err, errcap, "cluster: loop, config, data_dir and ops are required");
        return CLU_EINVAL;
    }
    struct clu_node *n = util_calloc(1, sizeof *n);
    if (!n) {
        snprintf(err, errcap, "cluster: out of memory");
        return CLU_ENOMEM;
    }
    pthread_mutex_init(&n->mu, NULL);
    pthread_cond_init(&n->rpc_cv, NULL);
    n->rpc_client_fd[0] = n->rpc_client_fd[1] = -1;
    n->loop = loop;
    n->loop_thread = pthread_self();
    n->cfg = *cfg;
    if (!n->cfg.max_entry_size)
        n->cfg.max_entry_size = 64u << 20;
    n->ops = ops;
    n->ud = ud;
    n->join = cfg->join && *cfg->join;
    if (n->join)
        util_strlcpy(n->join_addr, cfg->join, sizeof n->join_addr);
    n->join_role = cfg->join_role;
    n->cfg.address = n->cfg.bind_address = n->cfg.join = n->cfg.data_dir = NULL; /* not kept */
    n->cfg.initial_members = NULL;
    if (cfg->initial_members && !(n->initial_members = util_strdup(cfg->initial_members))) {
        snprintf(err, errcap, "cluster: out of memory");
        rv = CLU_ENOMEM;
        goto fail;
    }
    if (strlen(cfg->data_dir) + 128 >= sizeof n->data_dir) {
        snprintf(err, errcap, "cluster: data dir path too long");
        rv = CLU_EINVAL;
        goto fail;
    }
    util_strlcpy(n->data_dir, cfg->data_dir, sizeof n->data_dir);
    snprintf(n->raft_dir, sizeof n->raft_dir, "%s/raft", cfg->data_dir);
    snprintf(n->snap_dir, sizeof n->snap_dir, "%s/snapshots", cfg->data_dir);
    if (parse_address(cfg->address, n->address, sizeof n->address) ||
        (cfg->bind_address && parse_address(cfg->bind_address, n->bind, sizeof n->bind))) {
        snprintf(err, errcap, "cluster: invalid peer address \"%s\"",
                 cfg->address ? cfg->address : cfg->bind_address);
        rv = CLU_EINVAL;
        goto fail;
    }
    if ((rv = clu_mkdir_p(n->data_dir)) || (rv = clu_mkdir_p(n->raft_dir)) ||
        (rv = clu_mkdir_p(n->snap_dir))) {
        snprintf(err, errcap, "cluster: cannot create directories in %s: %s", n->data_dir,
                 clu_strerror(rv));
        goto fail;
    }
    if ((rv = clu_identity(n->data_dir, n->raft_dir, &n->id, err, errcap)))
        goto fail;
    if ((rv = clu_fsm_new(ops, ud, n->snap_dir, n->id, &n->fsm))) {
        snprintf(err, errcap, "cluster: invalid FSM ops");
        goto fail;
    }
    clu_fsm_set_verify(n->fsm, cfg->verify_snapshots);
    clu_fsm_set_witness(n->fsm, cfg->witness);
    n->witness = cfg->witness;

    if ((rv = raft_uv_tcp_init(&n->transport, loop))) {
        snprintf(err, errcap, "cluster: transport: %s", raft_strerror(rv));
        rv = clu_from_raft(rv);
        goto fail;
    }
    if (n->bind[0] && (rv = raft_uv_tcp_set_bind_address(&n->transport, n->bind))) {
        snprintf(err, errcap, "cluster: bind address %s: %s", n->bind, raft_strerror(rv));
        raft_uv_tcp_close(&n->transport);
        rv = CLU_EINVAL;
        goto fail;
    }
    clu_rpc_init(n); /* the peer port also serves Orbit's requests */
    if ((rv = raft_uv_init(&n->io, loop, n->raft_dir, &n->transport))) {
        snprintf(err, errcap, "cluster: raft log %s: %s", n->raft_dir, n->io.errmsg);
        raft_uv_tcp_close(&n->transport);
        rv = clu_from_raft(rv);
        goto fail;
    }
    if (cfg->segment_size)
        raft_uv_set_segment_size(&n->io, cfg->segment_size);
    raft_uv_set_snapshot_compression(&n->io, false); /* the descriptor is tiny */
    raft_uv_set_auto_recovery(&n->io, cfg->log_auto_recovery != 0);
    if ((rv = raft_init(&n->raft, &n->io, clu_fsm_raft(n->fsm), n->id, n->address))) {
        snprintf(err, errcap, "cluster: raft_init: %s", raft_errmsg(&n->raft));
        raft_uv_close(&n->io);
        raft_uv_tcp_close(&n->transport);
        rv = clu_from_raft(rv);
        goto fail;
    }
    n->raft_inited = 1;
    clu_fsm_attach(n->fsm, &n->raft);
    struct clu_fsm_hooks hooks = {.owner = n,
                                  .local_lookup = hook_local,
                                  .applied = hook_applied,
                                  .after_event = hook_after_event,
                                  .snapshot_done = clu_snapshot_finished};
    clu_fsm_set_hooks(n->fsm, &hooks);
    raft_set_heartbeat_timeout(&n->raft, cfg->heartbeat_ms ? cfg->heartbeat_ms : 100);
    raft_set_election_timeout(&n->raft, cfg->election_timeout_ms ? cfg->election_timeout_ms : 1000);
    raft_set_install_snapshot_timeout(&n->raft, cfg->install_snapshot_timeout_ms
                                                    ? cfg->install_snapshot_timeout_ms
                                                    : 5000);
    raft_set_snapshot_threshold(&n->raft, cfg->snapshot_threshold ? cfg->snapshot_threshold : 65536);
    raft_set_snapshot_trailing(&n->raft, cfg->snapshot_trailing);
    raft_set_pre_vote(&n->raft, cfg->pre_vote != 0);
    uv_async_init(loop, &n->wake, wake_cb);
    n->wake.data = n;
    uv_check_init(loop, &n->wake_check);
    uv_idle_init(loop, &n->wake_idle);
    n->wake_check.data = n->wake_idle.data = n;
    uv_check_start(&n->wake_check, wake_check_cb);
    uv_unref((uv_handle_t *)&n->wake_check); /* neither keeps the loop alive */
    uv_unref((uv_handle_t *)&n->wake_idle);
    uv_timer_init(loop, &n->close_timer);
    n->close_timer.data = n;
    n->open_handles = 4;
    n->state = NODE_NEW;
    *out = n;
    return CLU_OK;
fail:
    free_node(n);
    return rv;
}

/* The first configuration: this node alone, or initial_members. */
static int first_configuration(struct clu_node *n, struct raft_configuration *conf, char *err,
                               size_t errcap)
{
    if (!n->initial_members)
        return raft_configuration_add(conf, n->id, n->address, RAFT_VOTER) ? CLU_ENOMEM : CLU_OK;
    return clu_parse_members(n->initial_members, n->id, conf, err, errcap);
}

int clu_parse_members(const char *list, uint64_t self_id, struct raft_configuration *conf, char *err,
                      size_t errcap)
{
    int self = 0;
    const char *p = list;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char item[128], addr[64];
        unsigned long long id = 0;
        int used = 0;
        if (len == 0 || len >= sizeof item)
            goto bad;
        memcpy(item, p, len);
        item[len] = 0;
        if (sscanf(item, "%llx@%n", &id, &used) != 1 || used == 0 || id == 0 ||
            parse_address(item + used, addr, sizeof addr))
            goto bad;
        if (raft_configuration_add(conf, id, addr, RAFT_VOTER)) {
            snprintf(err, errcap, "cluster: members: duplicate member \"%s\"", item);
            return CLU_EINVAL;
        }
        self |= id == self_id;
        p += len;
        if (*p == ',')
            p++;
    }
    if (!self) {
        snprintf(err, errcap, "cluster: the member list does not list this node (id %016llx)",
                 (unsigned long long)self_id);
        return CLU_EINVAL;
    }
    if (conf->n % 2 == 0)
        log_warn("cluster.members", "voters=%u msg=\"an even number of voters tolerates no more "
                 "failures than one fewer\"",
                 conf->n);
    return CLU_OK;
bad:
    snprintf(err, errcap, "cluster: members: expected ID@HOST:PORT,... near \"%s\"", p);
    return CLU_EINVAL;
}

int clu_node_start(struct clu_node *n, char *err, size_t errcap)
{
    int rv;
    if (n->state != NODE_NEW) {
        snprintf(err, errcap, "cluster: node already started or closing");
        return CLU_EINVAL;
    }
    n->loop_thread = pthread_self();
    if (!n->join) {
        struct raft_configuration conf;
        raft_configuration_init(&conf);
        rv = first_configuration(n, &conf, err, errcap);
        if (rv) {
            raft_configuration_close(&conf);
            return rv;
        }
        rv = raft_bootstrap(&n->raft, &conf);
        raft_configuration_close(&conf);
        if (rv == 0) {
            log_info("cluster.bootstrap", "id=%016llx address=%s voters=%s",
                     (unsigned long long)n->id, n->address,
                     n->initial_members ? n->initial_members : "self");
        } else if (rv != RAFT_CANTBOOTSTRAP) {
            snprintf(err, errcap, "cluster: bootstrap: %s", raft_errmsg(&n->raft));
            return clu_from_raft(rv);
        }
    }
    uint64_t t0 = util_now_ns();
    rv = raft_start(&n->raft);
    if (rv) {
        snprintf(err, errcap, "cluster: start: %s", raft_errmsg(&n->raft));
        return clu_from_raft(rv);
    }
    n->state = NODE_STARTED;
    if (n->join && n->raft.configuration.n == 0)
        log_info("cluster.join", "id=%016llx address=%s via=%s role=%s msg=\"asking to be added "
                 "to the cluster\"",
                 (unsigned long long)n->id, n->address, n->join_addr,
                 clu_member_role_name(n->join_role));
    else if (n->join)
        log_info("cluster.join", "id=%016llx msg=\"already a member: --join ignored\"",
                 (unsigned long long)n->id);
    clu_rpc_start(n);
    clu_fsm_gc(n->fsm);
    log_info("cluster.start",
             "id=%016llx address=%s term=%llu snapshot=%llu last_index=%llu commit=%llu "
             "applied=%llu replay_ms=%.1f",
             (unsigned long long)n->id, n->address, (unsigned long long)n->raft.current_term,
             (unsigned long long)n->raft.log.snapshot.last_index,
             (unsigned long long)raft_last_index(&n->raft),
             (unsigned long long)n->raft.commit_index,
             (unsigned long long)raft_last_applied(&n->raft), (double)(util_now_ns() - t0) / 1e6);
    clu_flush(n);
    return CLU_OK;
}

/* ---- close ----------------------------------------------------------------------- */

void clu_handle_closed(uv_handle_t *h)
{
    struct clu_node *n = h->data;
    if (--n->open_handles > 0)
        return;
    clu_close_cb cb = n->close_cb;
    void *data = n->close_data;
    free_node(n);
    if (cb)
        cb(data);
}

static void finish_close(struct clu_node *n)
{
    n->state = NODE_CLOSED;
    clu_fail_all(n, CLU_ESHUTDOWN);
    clu_flush(n);
    clu_rpc_join_threads(n); /* every call they wait for is finished by now */
    uv_close((uv_handle_t *)&n->wake, clu_handle_closed);
    uv_close((uv_handle_t *)&n->wake_check, clu_handle_closed);
    uv_close((uv_handle_t *)&n->wake_idle, clu_handle_closed);
    uv_close((uv_handle_t *)&n->close_timer, clu_handle_closed);
}

static void raft_closed(struct raft *r)
{
    struct clu_node *n = NODE_OF_RAFT(r);
    raft_uv_close(&n->io);
    raft_uv_tcp_close(&n->transport);
    log_info("cluster.stop", "id=%016llx applied=%llu", (unsigned long long)n->id,
             (unsigned long long)raft_last_applied(&n->raft));
    finish_close(n);
}

/* libraft 0.15 crashes when raft_close finds two or more appends still in
 * flight, and when it is called from inside one of its own callbacks. So
 * closing stops new appends (no submissions, received messages dropped)
 * and calls raft_close from this timer once the log is durable. */
#define CLOSE_WAIT_MAX_NS (5ull * 1000000000ull)

static void close_timer_cb(uv_timer_t *t)
{
    struct clu_node *n = t->data;
    uint64_t waited = util_now_ns() - n->close_start_ns;
    /* a snapshot being written on the thread pool uses the FSM glue: wait
     * for it however long it takes (libraft finalizes it) */
    if (n->fsm->cur.state != SNAP_IDLE) {
        if (waited / CLOSE_WAIT_MAX_NS != n->close_warned) {
            n->close_warned = waited / CLOSE_WAIT_MAX_NS;
            log_warn("cluster.close", "msg=\"waiting for the snapshot write to finish\" index=%llu",
                     (unsigned long long)n->fsm->cur.index);
        }
        return;
    }
    if (n->raft.last_stored < raft_last_index(&n->raft) && waited < CLOSE_WAIT_MAX_NS)
        return;
    if (n->raft.last_stored < raft_last_index(&n->raft))
        log_warn("cluster.close", "msg=\"log writes still in flight after 5 s; closing anyway\" "
                 "stored=%llu last=%llu",
                 (unsigned long long)n->raft.last_stored,
                 (unsigned long long)raft_last_index(&n->raft));
    uv_timer_stop(t);
    raft_close(&n->raft, raft_closed);
}

void clu_node_close(struct clu_node *n, clu_close_cb cb, void *data)
{
    if (n->state >= NODE_CLOSING)
        return;
    n->close_cb = cb;
    n->close_data = data;
    n->state = NODE_CLOSING;
    pthread_mutex_lock(&n->mu);
    n->post_closed = 1;
    pthread_mutex_unlock(&n->mu);
    clu_rpc_shutdown(n);
    clu_fsm_set_closing(n->fsm);
    clu_drain_posted(n); /* state != STARTED: each gets ESHUTDOWN */
    if (n->reported_role != CLU_ROLE_NONE) {
        n->reported_role = CLU_ROLE_NONE;
        notify(n, CLU_ROLE_NONE, n->raft.current_term);
    }
    n->close_start_ns = util_now_ns();
    uv_timer_start(&n->close_timer, close_timer_cb, 0, 1);
}

/* ---- queries ------------------------------------------------------------------------ */

uint64_t clu_id(const struct clu_node *n)
{
    return n->id;
}

const char *clu_address(const struct clu_node *n)
{
    return n->address;
}

enum clu_role clu_role(struct clu_node *n)
{
    return effective_role(n);
}

int clu_is_leader(struct clu_node *n)
{
    return effective_role(n) == CLU_ROLE_LEADER;
}

int clu_leader(struct clu_node *n, uint64_t *id, char *address, size_t cap)
{
    raft_id lid = 0;
    const char *addr = NULL;
    if (n->state != NODE_STARTED)
        return 0;
    raft_leader(&n->raft, &lid, &addr);
    if (!lid)
        return 0;
    if (id)
        *id = lid;
    if (address && cap)
        util_strlcpy(address, addr ? addr : "", cap);
    return 1;
}

uint64_t clu_term(struct clu_node *n)
{
    return n->raft.current_term;
}

uint64_t clu_commit_index(struct clu_node *n)
{
    return n->raft.commit_index;
}

uint64_t clu_last_applied(struct clu_node *n)
{
    return raft_last_applied(&n->raft);
}

uint64_t clu_last_index(struct clu_node *n)
{
    return raft_last_index(&n->raft);
}

uint64_t clu_snapshot_index(struct clu_node *n)
{
    return n->raft.log.snapshot.last_index;
}

#define WITNESS_TTL_NS (10ULL * 1000000000ULL)

void clu_note_witness(struct clu_node *n, uint64_t id)
{
    uint64_t now = util_now_ns();
    pthread_mutex_lock(&n->mu);
    struct clu_witness *slot = NULL;
    for (size_t i = 0; i < sizeof n->witnesses / sizeof n->witnesses[0]; i++) {
        struct clu_witness *w = &n->witnesses[i];
        if (w->id == id) {
            slot = w;
            break;
        }
        if (!slot && (!w->id || now - w->seen_ns > WITNESS_TTL_NS))
            slot = w; /* free, or expired */
    }
    if (slot) {
        slot->id = id;
        slot->seen_ns = now;
    }
    pthread_mutex_unlock(&n->mu);
}

int clu_is_witness(struct clu_node *n, uint64_t id)
{
    if (id == n->id)
        return n->witness;
    uint64_t now = util_now_ns();
    int yes = 0;
    pthread_mutex_lock(&n->mu);
    for (size_t i = 0; i < sizeof n->witnesses / sizeof n->witnesses[0]; i++)
        if (n->witnesses[i].id == id && now - n->witnesses[i].seen_ns <= WITNESS_TTL_NS)
            yes = 1;
    pthread_mutex_unlock(&n->mu);
    return yes;
}

int clu_members(struct clu_node *n, struct clu_member *out, int cap)
{
    int k = 0;
    for (unsigned i = 0; i < n->raft.configuration.n && k < cap; i++, k++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        out[k].id = s->id;
        util_strlcpy(out[k].address, s->address ? s->address : "", sizeof out[k].address);
        out[k].role = clu_member_role_of(s->role);
        out[k].witness = s->role == RAFT_VOTER && clu_is_witness(n, s->id);
        out[k].match_index = out[k].lag_records = out[k].contact_ms = -1;
        out[k].lag_seconds = -1;
        const struct clu_track *t = track_of(n, s->id);
        if (s->id == n->id) {
            out[k].match_index = (int64_t)raft_last_index(&n->raft);
            out[k].contact_ms = 0;
            out[k].lag_records = (int64_t)(n->raft.commit_index - raft_last_applied(&n->raft));
            out[k].lag_seconds = out[k].lag_records ? -1 : 0;
        } else if (t && raft_state(&n->raft) == RAFT_LEADER && n->raft.leader_state.progress) {
            uint64_t now = util_now_ns(), last = raft_last_index(&n->raft);
            uint64_t match = n->raft.leader_state.progress[i].match_index;
            out[k].match_index = (int64_t)match;
            out[k].lag_records = (int64_t)(last > match ? last - match : 0);
            out[k].lag_seconds = t->behind_ns ? (double)(now - t->behind_ns) / 1e9 : 0;
            out[k].contact_ms = (int64_t)((now - t->contact_ns) / 1000000);
        }
    }
    return k;
}

int clu_self_role(struct clu_node *n, uint64_t *config_index)
{
    *config_index = n->raft.configuration_index;
    if (n->raft.configuration_uncommitted_index != 0)
        return -2; /* libraft uses a change as soon as it is in the log: it may still be replaced */
    for (unsigned i = 0; i < n->raft.configuration.n; i++)
        if (n->raft.configuration.servers[i].id == n->id)
            return (int)clu_member_role_of(n->raft.configuration.servers[i].role);
    return -1;
}

struct raft *clu_raft(struct clu_node *n)
{
    return &n->raft;
}

struct clu_fsm *clu_node_fsm(struct clu_node *n)
{
    return n->fsm;
}
