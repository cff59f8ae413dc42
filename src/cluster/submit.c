/* cluster/submit.c: entries and waits. clu_submit (loop thread) and
 * clu_post (any thread: a mutex-protected queue drained by the loop, which
 * appends everything queued in one turn so many entries share each log
 * write), barriers, applied-index waits, snapshot requests, leadership
 * transfer, and the completion list that delivers every callback outside
 * libraft (clu_flush). Entries are framed to a multiple of 8 bytes before
 * libraft sees them (clu_frame_*, see cluster_int.h).
 *
 * A request (struct clu_req) lives on at most one list at a time:
 * posted (under n->mu) -> pending (appended, waiting for libraft) -> done
 * (status known) -> delivered and freed by clu_flush. Waits and snapshot
 * requests go waiters/snap_waiters -> done. */
#include "cluster_int.h"

#include <string.h>

/* ---- lists and requests ---------------------------------------------------------- */

void clu_list_push(struct clu_list *l, struct clu_req *r)
{
    r->next = NULL;
    r->prev = l->tail;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
}

void clu_list_remove(struct clu_list *l, struct clu_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->next = r->prev = NULL;
}

struct clu_req *clu_list_pop(struct clu_list *l)
{
    struct clu_req *r = l->head;
    if (r)
        clu_list_remove(l, r);
    return r;
}

struct clu_req *clu_req_new(struct clu_node *n, int kind)
{
    struct clu_req *q = util_calloc(1, sizeof *q);
    if (q) {
        q->node = n;
        q->kind = kind;
    }
    return q;
}

void clu_req_free(struct clu_req *q)
{
    if (q->buf)
        raft_free(q->buf);
    util_free(q);
}

void clu_complete(struct clu_node *n, struct clu_req *q, int status)
{
    q->status = status;
    clu_list_push(&n->done, q);
    clu_wake(n);
}

/* ---- delivering ---------------------------------------------------------------------- */

static void deliver(struct clu_req *q)
{
    switch (q->kind) {
    case REQ_SUBMIT:
        if (q->cb.commit)
            q->cb.commit(q->data, q->index, q->status);
        break;
    case REQ_SNAPSHOT:
        if (q->cb.snap)
            q->cb.snap(q->data, q->status, q->index);
        break;
    default:
        if (q->cb.done)
            q->cb.done(q->data, q->status);
        break;
    }
}

static void check_waiters(struct clu_node *n)
{
    uint64_t applied = raft_last_applied(&n->raft);
    struct clu_req *q = n->waiters.head;
    while (q) {
        struct clu_req *next = q->next;
        if (q->index <= applied) {
            clu_list_remove(&n->waiters, q);
            q->status = CLU_OK;
            clu_list_push(&n->done, q);
        }
        q = next;
    }
}

static int append_barrier(struct clu_node *n, clu_done_cb cb, void *data);

void clu_flush(struct clu_node *n)
{
    if (n->in_flush)
        return;
    n->in_flush = 1;
    clu_check_role(n);
    if (n->demoting)
        clu_rpc_demotions(n);
    if (n->snap_kick && n->state == NODE_STARTED) {
        n->snap_kick = 0;
        if (raft_state(&n->raft) == RAFT_LEADER)
            (void)append_barrier(n, NULL, NULL);
    }
    /* barriers and configuration entries move last_applied without an FSM
     * apply, so waiters are checked on every flush (ticks included) */
    for (;;) {
        struct clu_req *q = clu_list_pop(&n->done);
        if (!q) {
            if (!n->waiters.head)
                break;
            check_waiters(n);
            if (!n->done.head)
                break;
            continue;
        }
        deliver(q);
        clu_req_free(q);
    }
    n->in_flush = 0;
}

void clu_fail_all(struct clu_node *n, int status)
{
    struct clu_req *q;
    while ((q = clu_list_pop(&n->pending)))
        clu_complete(n, q, status);
    while ((q = clu_list_pop(&n->waiters)))
        clu_complete(n, q, status);
    while ((q = clu_list_pop(&n->snap_waiters)))
        clu_complete(n, q, status);
    pthread_mutex_lock(&n->mu);
    struct clu_list posted = n->posted;
    n->posted.head = n->posted.tail = NULL;
    pthread_mutex_unlock(&n->mu);
    while ((q = clu_list_pop(&posted)))
        clu_complete(n, q, status);
}

/* ---- entries ------------------------------------------------------------------------- */

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct clu_req *q = req->data;
    struct clu_node *n = q->node;
    (void)result;
    clu_list_remove(&n->pending, q);
    q->index = req->index;
    clu_complete(n, q, clu_from_raft(status));
}

/* Hand q (with buf, which raft now owns or this frees) to libraft. */
static int append_entry(struct clu_node *n, struct clu_req *q, void *buf, size_t len)
{
    struct raft_buffer b = {.base = buf, .len = len};
    q->term = n->raft.current_term;
    q->r.apply.data = q;
    clu_list_push(&n->pending, q);
    int rv = raft_apply(&n->raft, &q->r.apply, &b, 1, apply_cb);
    if (rv) {
        clu_list_remove(&n->pending, q);
        raft_free(buf);
        return clu_from_raft(rv);
    }
    q->index = q->r.apply.index;
    return CLU_OK;
}

/* ---- entry framing (see cluster_int.h) --------------------------------------------- */

size_t clu_frame_size(size_t len)
{
    return (len / 8 + 1) * 8;
}

void clu_frame_pad(void *frame, size_t len)
{
    unsigned char *p = frame;
    size_t pad = clu_frame_size(len) - len;
    memset(p + len, 0, pad - 1);
    p[len + pad - 1] = (unsigned char)pad;
}

int clu_frame_len(const void *frame, size_t framed, size_t *len)
{
    const unsigned char *p = frame;
    if (framed == 0 || framed % 8 != 0)
        return -1;
    size_t pad = p[framed - 1];
    if (pad < 1 || pad > 8)
        return -1;
    for (size_t i = framed - pad; i < framed - 1; i++)
        if (p[i] != 0)
            return -1;
    *len = framed - pad;
    return 0;
}

static int check_entry(struct clu_node *n, size_t len)
{
    if (len == 0)
        return CLU_EINVAL;
    if (len > n->cfg.max_entry_size)
        return CLU_ETOOBIG;
    return CLU_OK;
}

/* A submit request and the framed copy of the entry it will append
 * (*copy, raft_malloc'd, clu_frame_size(len) bytes). NULL on OOM. */
static struct clu_req *framed_req(struct clu_node *n, const void *buf, size_t len, clu_commit_cb cb, void *data,
                                  void **copy)
{
    *copy = raft_malloc(clu_frame_size(len));
    struct clu_req *q = clu_req_new(n, REQ_SUBMIT);
    if (!*copy || !q) {
        raft_free(*copy);
        util_free(q);
        return NULL;
    }
    memcpy(*copy, buf, len);
    clu_frame_pad(*copy, len);
    q->cb.commit = cb;
    q->data = data;
    return q;
}

int clu_submit(struct clu_node *n, const void *buf, size_t len, clu_commit_cb cb, void *data)
{
    int rc;
    if (!clu_on_loop(n))
        return CLU_EWRONGTHREAD;
    if (n->state != NODE_STARTED)
        return n->state == NODE_NEW ? CLU_ENOTLEADER : CLU_ESHUTDOWN;
    if ((rc = check_entry(n, len)))
        return rc;
    if (!clu_is_leader(n))
        return CLU_ENOTLEADER;
    void *copy;
    struct clu_req *q = framed_req(n, buf, len, cb, data, &copy);
    if (!q)
        return CLU_ENOMEM;
    if ((rc = append_entry(n, q, copy, clu_frame_size(len))))
        clu_req_free(q);
    return rc;
}

int clu_post(struct clu_node *n, const void *buf, size_t len, clu_commit_cb cb, void *data)
{
    int rc;
    if ((rc = check_entry(n, len)))
        return rc;
    void *copy;
    struct clu_req *q = framed_req(n, buf, len, cb, data, &copy);
    if (!q)
        return CLU_ENOMEM;
    q->buf = copy;
    q->len = clu_frame_size(len);
    pthread_mutex_lock(&n->mu);
    if (n->post_closed) {
        pthread_mutex_unlock(&n->mu);
        clu_req_free(q);
        return CLU_ESHUTDOWN;
    }
    clu_list_push(&n->posted, q);
    /* under the lock: close cannot free the handle while we signal it */
    uv_async_send(&n->wake);
    pthread_mutex_unlock(&n->mu);
    return CLU_OK;
}

void clu_drain_posted(struct clu_node *n)
{
    pthread_mutex_lock(&n->mu);
    struct clu_list batch = n->posted;
    n->posted.head = n->posted.tail = NULL;
    pthread_mutex_unlock(&n->mu);
    struct clu_req *q;
    int leader = n->state == NODE_STARTED && clu_is_leader(n);
    while ((q = clu_list_pop(&batch))) {
        int rc;
        if (n->state != NODE_STARTED) {
            rc = n->state == NODE_NEW ? CLU_ENOTLEADER : CLU_ESHUTDOWN;
        } else if (!leader) {
            rc = CLU_ENOTLEADER;
        } else if (n->post_failed) {
            /* posts are a sequence (txlog LSNs): after one that could not
             * be appended, appending the next would leave a gap */
            rc = n->post_failed;
        } else {
            void *buf = q->buf;
            q->buf = NULL;
            rc = append_entry(n, q, buf, q->len);
            if (rc == CLU_ENOTLEADER)
                leader = 0;
            else if (rc)
                n->post_failed = rc;
        }
        if (rc)
            clu_complete(n, q, rc);
    }
}

/* ---- barriers, waits, snapshots, transfer ------------------------------------------------ */

static void barrier_cb(struct raft_barrier *req, int status)
{
    struct clu_req *q = req->data;
    q->index = req->index;
    clu_complete(q->node, q, clu_from_raft(status));
}

static int append_barrier(struct clu_node *n, clu_done_cb cb, void *data)
{
    struct clu_req *q = clu_req_new(n, REQ_BARRIER);
    if (!q)
        return CLU_ENOMEM;
    q->cb.done = cb;
    q->data = data;
    q->r.barrier.data = q;
    int rv = raft_barrier(&n->raft, &q->r.barrier, barrier_cb);
    if (rv) {
        util_free(q);
        return clu_from_raft(rv);
    }
    return CLU_OK;
}

int clu_barrier(struct clu_node *n, clu_done_cb cb, void *data)
{
    if (!clu_on_loop(n))
        return CLU_EWRONGTHREAD;
    if (n->state != NODE_STARTED)
        return n->state == NODE_NEW ? CLU_ENOTLEADER : CLU_ESHUTDOWN;
    if (raft_state(&n->raft) != RAFT_LEADER)
        return CLU_ENOTLEADER;
    return append_barrier(n, cb, data);
}

int clu_wait_applied(struct clu_node *n, uint64_t index, clu_done_cb cb, void *data)
{
    if (!clu_on_loop(n))
        return CLU_EWRONGTHREAD;
    if (n->state >= NODE_CLOSING)
        return CLU_ESHUTDOWN;
    struct clu_req *q = clu_req_new(n, REQ_WAIT);
    if (!q)
        return CLU_ENOMEM;
    q->index = index;
    q->cb.done = cb;
    q->data = data;
    clu_list_push(&n->waiters, q);
    clu_wake(n);
    return CLU_OK;
}

void clu_kick_snapshot(struct clu_node *n)
{
    n->snap_kick = 1;
    clu_wake(n);
}

int clu_snapshot(struct clu_node *n, clu_snapshot_cb cb, void *data)
{
    if (!clu_on_loop(n))
        return CLU_EWRONGTHREAD;
    if (n->state != NODE_STARTED)
        return CLU_ESHUTDOWN;
    struct clu_req *q = clu_req_new(n, REQ_SNAPSHOT);
    if (!q)
        return CLU_ENOMEM;
    q->index = raft_last_applied(&n->raft);
    q->cb.snap = cb;
    q->data = data;
    clu_list_push(&n->snap_waiters, q);
    if (!n->snap_armed) {
        /* libraft snapshots when applied - last snapshot >= threshold,
         * checked after each apply: lower it until this request is met */
        n->snap_armed = 1;
        n->saved_threshold = n->raft.snapshot.threshold;
        raft_set_snapshot_threshold(&n->raft, 1);
    }
    clu_kick_snapshot(n);
    return CLU_OK;
}

/* From the FSM glue's finalize (inside libraft). */
void clu_snapshot_finished(void *owner, uint64_t index, int status)
{
    struct clu_node *n = owner;
    /* libraft read the trailing count at snapshot_put and when it cut its
     * in-memory log, both before this finalize: set it back whether the
     * snapshot was stored or not (after a failure the cut one stayed for
     * every later snapshot, count-triggered ones included) */
    if (status == CLU_OK)
        n->since_snap_entries = n->since_snap_bytes = 0;
    if (n->size_snap)
        raft_set_snapshot_trailing(&n->raft, n->cfg.snapshot_trailing);
    n->size_snap = 0;
    struct clu_req *q = n->snap_waiters.head;
    while (q) {
        struct clu_req *next = q->next;
        if (status != CLU_OK || q->index <= index) {
            clu_list_remove(&n->snap_waiters, q);
            q->index = index;
            clu_complete(n, q, status);
        }
        q = next;
    }
    if (!n->snap_waiters.head) {
        if (n->snap_armed) {
            n->snap_armed = 0;
            raft_set_snapshot_threshold(&n->raft, n->saved_threshold);
        }
    } else {
        clu_kick_snapshot(n);
    }
}

/* A leader-only request about member id (loop thread). */
static int leader_req(struct clu_node *n, int kind, uint64_t id, clu_done_cb cb, void *data,
                      struct clu_req **out)
{
    if (!clu_on_loop(n))
        return CLU_EWRONGTHREAD;
    if (n->state != NODE_STARTED)
        return CLU_ESHUTDOWN;
    if (raft_state(&n->raft) != RAFT_LEADER)
        return CLU_ENOTLEADER;
    struct clu_req *q = clu_req_new(n, kind);
    if (!q)
        return CLU_ENOMEM;
    q->index = id;
    q->cb.done = cb;
    q->data = data;
    *out = q;
    return CLU_OK;
}

static void transfer_cb(struct raft_transfer *req)
{
    struct clu_req *q = req->data;
    struct clu_node *n = q->node;
    raft_id lid = 0;
    const char *addr = NULL;
    raft_leader(&n->raft, &lid, &addr);
    int ok = q->index ? lid == q->index : (lid != 0 && lid != n->id);
    clu_complete(n, q, ok ? CLU_OK : CLU_ETIMEDOUT);
}

uint64_t clu_transfer_target(struct clu_node *n, char *address, size_t cap)
{
    uint64_t id = 0, best_match = 0;
    if (address && cap)
        address[0] = 0;
    if (!clu_on_loop(n) || n->state != NODE_STARTED || raft_state(&n->raft) != RAFT_LEADER ||
        !n->raft.leader_state.progress)
        return 0;
    /* libraft would take the most caught-up voter, which may be a witness
     * (it keeps the whole log): take the most caught-up voter with data */
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        uint64_t match = n->raft.leader_state.progress[i].match_index;
        if (s->id == n->id || s->role != RAFT_VOTER || clu_is_witness(n, s->id))
            continue;
        if (!id || match > best_match) {
            id = s->id;
            best_match = match;
            if (address && cap)
                util_strlcpy(address, s->address, cap);
        }
    }
    return id;
}

int clu_transfer(struct clu_node *n, uint64_t id, clu_done_cb cb, void *data)
{
    struct clu_req *q;
    int rc = leader_req(n, REQ_TRANSFER, id, cb, data, &q);
    if (rc)
        return rc;
    q->r.transfer.data = q;
    if (id == 0)
        id = clu_transfer_target(n, NULL, 0); /* none: libraft chooses */
    int rv = raft_transfer(&n->raft, &q->r.transfer, id, transfer_cb);
    if (rv) {
        util_free(q);
        return clu_from_raft(rv);
    }
    return CLU_OK;
}

/* ---- membership changes ------------------------------------------------------------- */

static void change_cb(struct raft_change *req, int status)
{
    struct clu_req *q = req->data;
    clu_complete(q->node, q, clu_from_raft(status));
}

/* kind: 'a' add (then spare), 'r' remove, 's' assign role. */
static int change(struct clu_node *n, int kind, uint64_t id, const char *address, int role,
                  clu_done_cb cb, void *data)
{
    if (!id || (kind == 'a' && (!address || !*address)))
        return CLU_EINVAL;
    struct clu_req *q;
    int rc = leader_req(n, REQ_CHANGE, id, cb, data, &q);
    if (rc)
        return rc;
    q->r.change.data = q;
    int rv = kind == 'a'   ? raft_add(&n->raft, &q->r.change, id, address, change_cb)
             : kind == 'r' ? raft_remove(&n->raft, &q->r.change, id, change_cb)
                           : raft_assign(&n->raft, &q->r.change, id, role, change_cb);
    if (rv) {
        util_free(q);
        return clu_from_raft(rv);
    }
    return CLU_OK;
}

int clu_raft_role(enum clu_member_role role)
{
    return role == CLU_MEMBER_VOTER ? RAFT_VOTER : role == CLU_MEMBER_STANDBY ? RAFT_STANDBY : RAFT_SPARE;
}

enum clu_member_role clu_member_role_of(int raft_role)
{
    return raft_role == RAFT_VOTER     ? CLU_MEMBER_VOTER
           : raft_role == RAFT_STANDBY ? CLU_MEMBER_STANDBY
                                       : CLU_MEMBER_SPARE;
}

int clu_add(struct clu_node *n, uint64_t id, const char *address, clu_done_cb cb, void *data)
{
    return change(n, 'a', id, address, 0, cb, data);
}

int clu_assign(struct clu_node *n, uint64_t id, enum clu_member_role role, clu_done_cb cb, void *data)
{
    return change(n, 's', id, NULL, clu_raft_role(role), cb, data);
}

int clu_remove(struct clu_node *n, uint64_t id, clu_done_cb cb, void *data)
{
    return change(n, 'r', id, NULL, 0, cb, data);
}
