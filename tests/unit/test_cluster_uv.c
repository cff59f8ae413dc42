/* Tests of a real single-node cluster: libraft on a libuv loop with its
 * log (fsync on) in a temp dir. A worker thread posts 10,000 entries with 64
 * in flight; every callback fires once with growing indexes; a restart
 * replays the log into a fresh FSM; a snapshot compacts the log and a
 * restart restores snapshot + log; close fails nothing silently and leaves
 * no libuv handle open. Prints entries/s and average commit latency. */
#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "clu_test_node.h"

#define NBULK 10000
#define INFLIGHT 64
#define ENTRY_LEN 64

/* ---- helpers ---------------------------------------------------------------- */

/* Lowest first index among closed segments ("FIRST-LAST") and open ones. */
static unsigned long long first_segment_index(const char *raft_dir)
{
    DIR *d = opendir(raft_dir);
    struct dirent *e;
    unsigned long long lo = ~0ULL, a, b;
    while (d && (e = readdir(d)))
        if (sscanf(e->d_name, "%llu-%llu", &a, &b) == 2 && a < lo)
            lo = a;
    if (d)
        closedir(d);
    return lo;
}

/* ---- bulk: a worker posts NBULK entries, 64 in flight ------------------------------ */

struct bulk {
    struct run *run;
    sem_t slots;
    uint64_t post_ns[NBULK];
    uint64_t lat_sum_ns;
    uint64_t last_index;
    int done, failed, order_errors;
    uint64_t t0, t1;
    int post_errors;
    int wrong_thread_rc;
};

static void bulk_commit(void *data, uint64_t index, int status);

static void *bulk_worker(void *arg)
{
    struct bulk *b = arg;
    unsigned char e[ENTRY_LEN] = {0};
    /* the loop-only API refuses other threads */
    b->wrong_thread_rc = clu_submit(b->run->node, e, sizeof e, bulk_commit, b);
    for (uint64_t i = 0; i < NBULK; i++) {
        sem_wait(&b->slots);
        put_be64(e, i);
        b->post_ns[i] = util_now_ns();
        if (clu_post(b->run->node, e, sizeof e, bulk_commit, (void *)(uintptr_t)(i + 1)) != 0)
            b->post_errors++;
    }
    return NULL;
}

static struct bulk *BULK;

static void bulk_commit(void *data, uint64_t index, int status)
{
    struct bulk *b = BULK;
    uint64_t seq = (uint64_t)(uintptr_t)data - 1; /* data must not be NULL: apply's local */
    if (status != 0)
        b->failed++;
    if (index <= b->last_index)
        b->order_errors++;
    b->last_index = index;
    b->lat_sum_ns += util_now_ns() - b->post_ns[seq];
    b->done++;
    sem_post(&b->slots);
    if (b->done == NBULK) {
        b->t1 = util_now_ns();
        clu_node_close(b->run->node, closed_cb, b->run);
    }
}

static void test_bulk_then_replay(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    int port = free_port();
    struct run *r = calloc(1, sizeof *r);
    struct bulk *b = calloc(1, sizeof *b);
    BULK = b;
    b->run = r;
    clu_config_init(&r->cfg);
    run_open(r, dir, port);
    uint64_t id = clu_id(r->node);
    assert_true(id != 0);
    assert_int_equal(clu_term(r->node), 1);
    struct clu_member m[4];
    assert_int_equal(clu_members(r->node, m, 4), 1);
    assert_int_equal(m[0].id, id);
    assert_int_equal(m[0].role, CLU_MEMBER_VOTER);
    uint64_t lid = 0;
    char laddr[64];
    assert_int_equal(clu_leader(r->node, &lid, laddr, sizeof laddr), 1);
    assert_int_equal(lid, id);
    assert_string_equal(laddr, r->addr);

    /* CLU_INFLIGHT=N overrides the window, for measurements */
    int inflight = getenv("CLU_INFLIGHT") ? atoi(getenv("CLU_INFLIGHT")) : INFLIGHT;
    sem_init(&b->slots, 0, (unsigned)(inflight > 0 ? inflight : INFLIGHT));
    pthread_t th;
    b->t0 = util_now_ns();
    assert_int_equal(pthread_create(&th, NULL, bulk_worker, b), 0);
    uv_run(&r->loop, UV_RUN_DEFAULT); /* until the commit of the last closes the node */
    pthread_join(th, NULL);
    assert_true(r->closed);
    r->node = NULL;
    assert_loop_clean(&r->loop);

    assert_int_equal(b->wrong_thread_rc, CLU_EWRONGTHREAD);
    assert_int_equal(b->post_errors, 0);
    assert_int_equal(b->done, NBULK);
    assert_int_equal(b->failed, 0);
    assert_int_equal(b->order_errors, 0);
    assert_int_equal(r->fsm.errors, 0);
    assert_true(tfsm_is_sequence(&r->fsm, NBULK));
    assert_int_equal(r->fsm.nlocal, NBULK); /* the leader saw its own entries as local */
    double secs = (double)(b->t1 - b->t0) / 1e9;
    printf("cluster: %d entries of %d bytes, %d in flight, fsync on: %.0f entries/s, "
           "average commit latency %.2f ms\n",
           NBULK, ENTRY_LEN, inflight, NBULK / secs, (double)b->lat_sum_ns / NBULK / 1e6);
    uint64_t last = b->last_index;
    tfsm_free(&r->fsm);

    /* restart on the same dir: same identity, the log replays into a new FSM */
    run_open(r, dir, port);
    assert_int_equal(clu_id(r->node), id);
    assert_int_equal(r->fsm.errors, 0);
    assert_int_equal(r->fsm.nlocal, 0);
    assert_true(tfsm_is_sequence(&r->fsm, NBULK));
    assert_true(clu_last_applied(r->node) >= last);
    assert_true(clu_commit_index(r->node) >= last);
    run_close(r);
    tfsm_free(&r->fsm);
    free(b);
    free(r);
    remove_tree(dir);
}

/* ---- snapshot, compaction and restart ------------------------------------------------- */

struct snapt {
    struct run *run;
    int committed, failed;
    int snap_status;
    uint64_t snap_index;
    int snap_done;
    int barrier_status, wait_status;
};

static struct snapt *SNAPT;

static void snapt_commit(void *data, uint64_t index, int status)
{
    (void)data;
    (void)index;
    if (status)
        SNAPT->failed++;
    SNAPT->committed++;
}

static void snapt_snap(void *data, int status, uint64_t index)
{
    struct snapt *t = data;
    t->snap_status = status;
    t->snap_index = index;
    t->snap_done = 1;
}

static void snapt_done(void *data, int status)
{
    *(int *)data = status;
}

static void submit_range(struct run *r, uint64_t from, uint64_t count)
{
    unsigned char e[ENTRY_LEN] = {0};
    for (uint64_t i = from; i < from + count; i++) {
        put_be64(e, i);
        assert_int_equal(clu_submit(r->node, e, sizeof e, snapt_commit, NULL), 0);
    }
}

static void run_until(struct run *r, const int *flag, int value)
{
    while (*flag < value)
        uv_run(&r->loop, UV_RUN_ONCE);
}

static void take_snapshot(struct run *r, struct snapt *t)
{
    t->snap_done = 0;
    assert_int_equal(clu_snapshot(r->node, snapt_snap, t), 0);
    run_until(r, &t->snap_done, 1);
    assert_int_equal(t->snap_status, 0);
    assert_true(t->snap_index >= clu_last_applied(r->node) - 1);
}

static void test_snapshot_compacts_and_restores(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    char raft_dir[64], snap_dir[64];
    assert_non_null(mkdtemp(dir));
    snprintf(raft_dir, sizeof raft_dir, "%s/raft", dir);
    snprintf(snap_dir, sizeof snap_dir, "%s/snapshots", dir);
    int port = free_port();
    struct run *r = calloc(1, sizeof *r);
    struct snapt *t = calloc(1, sizeof *t);
    SNAPT = t;
    t->run = r;
    clu_config_init(&r->cfg);
    r->cfg.segment_size = 16384;       /* many closed segments to delete */
    r->cfg.snapshot_threshold = 1000000; /* only explicit snapshots */
    r->cfg.snapshot_trailing = 100;
    run_open(r, dir, port);

    submit_range(r, 0, 3000); /* all in flight at once */
    run_until(r, &t->committed, 3000);
    assert_int_equal(t->failed, 0);
    assert_int_equal(first_segment_index(raft_dir), 1);
    take_snapshot(r, t);
    uint64_t snap1 = t->snap_index;
    assert_int_equal(clu_snapshot_index(r->node), snap1);
    assert_int_equal(r->fsm.snapshots, 1);
    assert_int_equal(count_files(snap_dir, "snap-"), 1);
    assert_int_equal(count_files(raft_dir, "snapshot-"), 2); /* descriptor + .meta */
    unsigned long long first = first_segment_index(raft_dir);
    assert_true(first > 1);             /* compacted */
    assert_true(first <= snap1 - 100 + 1 + 512); /* trailing entries kept (whole segments) */

    submit_range(r, 3000, 50);
    run_until(r, &t->committed, 3050);
    /* a barrier and an applied-index wait on the leader */
    t->barrier_status = t->wait_status = -1;
    assert_int_equal(clu_barrier(r->node, snapt_done, &t->barrier_status), 0);
    assert_int_equal(clu_wait_applied(r->node, clu_last_index(r->node), snapt_done, &t->wait_status),
                     0);
    while (t->barrier_status < 0 || t->wait_status < 0)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(t->barrier_status, 0);
    assert_int_equal(t->wait_status, 0);
    run_close(r);
    assert_true(tfsm_is_sequence(&r->fsm, 3050));
    tfsm_free(&r->fsm);

    /* restart: restore the snapshot file, replay only what came after it */
    run_open(r, dir, port);
    assert_int_equal(r->fsm.restores, 1);
    assert_int_equal(r->fsm.restored_index, snap1);
    assert_int_equal(r->fsm.applies, 50);
    assert_int_equal(r->fsm.errors, 0);
    assert_true(tfsm_is_sequence(&r->fsm, 3050));

    /* a second snapshot: the older file is kept as the previous one */
    take_snapshot(r, t);
    assert_true(t->snap_index > snap1);
    assert_int_equal(count_files(snap_dir, "snap-"), 2);
    submit_range(r, 3050, 10);
    run_until(r, &t->committed, 3060);
    take_snapshot(r, t);
    assert_int_equal(count_files(snap_dir, "snap-"), 2); /* the oldest went */
    assert_true(count_files(raft_dir, "snapshot-") <= 4); /* libraft keeps two descriptors too */
    run_close(r);
    tfsm_free(&r->fsm);

    run_open(r, dir, port);
    assert_int_equal(r->fsm.restores, 1);
    assert_int_equal(r->fsm.restored_index, t->snap_index);
    assert_true(tfsm_is_sequence(&r->fsm, 3060));
    run_close(r);
    tfsm_free(&r->fsm);
    free(t);
    free(r);
    remove_tree(dir);
}

/* ---- entry lengths that are not multiples of 8 -------------------------------------------
 * libraft 0.15 cannot load such entries back from its segments; the module
 * frames them. A restart replays exactly the bytes that were submitted. */

static void test_odd_lengths_replay(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct run *r = calloc(1, sizeof *r);
    struct snapt t = {0};
    SNAPT = &t;
    clu_config_init(&r->cfg);
    run_open(r, dir, free_port());
    unsigned char e[40];
    uint64_t sum = 0;
    for (int len = 8; len <= 40; len++) {
        memset(e, len, sizeof e);
        put_be64(e, (uint64_t)len - 8);
        assert_int_equal(clu_submit(r->node, e, (size_t)len, snapt_commit, NULL), 0);
        sum += (uint64_t)len;
    }
    run_until(r, &t.committed, 33);
    assert_int_equal(t.failed, 0);
    assert_int_equal(r->fsm.bytes, sum);
    run_close(r);
    tfsm_free(&r->fsm);
    run_open(r, dir, free_port());
    assert_int_equal(r->fsm.errors, 0);
    assert_int_equal(r->fsm.bytes, sum);
    assert_true(tfsm_is_sequence(&r->fsm, 33));
    run_close(r);
    tfsm_free(&r->fsm);
    free(r);
    remove_tree(dir);
}

/* ---- close with entries in flight ------------------------------------------------------ */

static int close_cbs, close_ok, close_shutdown, close_other;

static void close_commit(void *data, uint64_t index, int status)
{
    (void)data;
    (void)index;
    close_cbs++;
    if (status == CLU_OK)
        close_ok++;
    else if (status == CLU_ESHUTDOWN)
        close_shutdown++;
    else
        close_other++;
}

static void test_close_with_entries_in_flight(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct run *r = calloc(1, sizeof *r);
    clu_config_init(&r->cfg);
    run_open(r, dir, free_port());
    unsigned char e[ENTRY_LEN] = {0};
    for (int i = 0; i < 200; i++) {
        put_be64(e, (uint64_t)i);
        assert_int_equal(clu_submit(r->node, e, sizeof e, close_commit, NULL), 0);
        assert_int_equal(clu_post(r->node, e, sizeof e, close_commit, NULL), 0);
    }
    assert_int_equal(clu_submit(r->node, e, 0, close_commit, NULL), CLU_EINVAL);
    assert_int_equal(clu_post(r->node, e, (64u << 20) + 1, close_commit, NULL), CLU_ETOOBIG);
    int wstatus = -1;
    assert_int_equal(clu_wait_applied(r->node, 1u << 30, snapt_done, &wstatus), 0);
    clu_node_close(r->node, closed_cb, r);
    /* closing: new work is refused synchronously, callbacks never run */
    assert_int_equal(clu_post(r->node, e, sizeof e, close_commit, NULL), CLU_ESHUTDOWN);
    assert_int_equal(clu_submit(r->node, e, sizeof e, close_commit, NULL), CLU_ESHUTDOWN);
    run_close(r);
    assert_int_equal(close_cbs, 400); /* every accepted entry was answered once */
    assert_int_equal(close_other, 0);
    assert_int_equal(close_ok + close_shutdown, 400);
    assert_int_equal(wstatus, CLU_ESHUTDOWN);
    assert_int_equal(r->fsm.errors, 0);
    tfsm_free(&r->fsm);
    free(r);
    remove_tree(dir);
}

/* ---- three nodes in one process: election, transfer, failover, catch-up ------------------ */

#define NNODES 3

struct mnode {
    struct clu_node *node;
    struct tfsm fsm;
    struct clu_config cfg;
    char dir[64];
    char addr[64];
    int closed;
};

static int m_commits, m_failed;

static void m_commit(void *data, uint64_t index, int status)
{
    (void)data;
    (void)index;
    m_commits++;
    if (status)
        m_failed++;
}

static void m_closed(void *data)
{
    ((struct mnode *)data)->closed = 1;
}

static int m_leader(struct mnode *m, int skip)
{
    int found = -1;
    for (int i = 0; i < NNODES; i++) {
        if (i == skip || !m[i].node || m[i].closed)
            continue;
        if (m[i].fsm.role == CLU_ROLE_LEADER && clu_is_leader(m[i].node)) {
            if (found >= 0)
                fail_msg("two leaders: %d and %d", found, i);
            found = i;
        }
    }
    return found;
}

static void m_start(uv_loop_t *loop, struct mnode *x, const char *members)
{
    char err[256];
    memset(&x->fsm, 0, sizeof x->fsm);
    x->closed = 0;
    clu_config_init(&x->cfg);
    x->cfg.data_dir = x->dir;
    x->cfg.address = x->addr;
    x->cfg.initial_members = members;
    x->cfg.heartbeat_ms = 50;
    x->cfg.election_timeout_ms = 300;
    if (clu_node_new(loop, &x->cfg, &tfsm_ops, &x->fsm, &x->node, err, sizeof err) ||
        clu_node_start(x->node, err, sizeof err))
        fail_msg("node: %s", err);
}

static void m_submit(struct mnode *x, uint64_t from, uint64_t count)
{
    unsigned char e[ENTRY_LEN] = {0};
    for (uint64_t i = from; i < from + count; i++) {
        put_be64(e, i);
        assert_int_equal(clu_submit(x->node, e, sizeof e, m_commit, x), 0);
    }
}

static int m_all_have(struct mnode *m, size_t n, int skip)
{
    for (int i = 0; i < NNODES; i++)
        if (i != skip && m[i].fsm.n < n)
            return 0;
    return 1;
}

static void test_three_nodes(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_timer_t guard;
    struct mnode m[NNODES];
    char members[256] = "";
    memset(m, 0, sizeof m);
    assert_int_equal(uv_loop_init(&loop), 0);
    uv_timer_init(&loop, &guard);
    uv_timer_start(&guard, guard_cb, 30000, 0);
    for (int i = 0; i < NNODES; i++) {
        snprintf(m[i].dir, sizeof m[i].dir, "/tmp/orbit-clu3-XXXXXX");
        assert_non_null(mkdtemp(m[i].dir));
        snprintf(m[i].addr, sizeof m[i].addr, "127.0.0.1:%d", free_port());
        char p[128];
        snprintf(p, sizeof p, "%s/node-id", m[i].dir);
        FILE *fp = fopen(p, "w"); /* known ids, so every node bootstraps the same list */
        fprintf(fp, "orbit-node-id %016x\n", i + 1);
        fclose(fp);
        size_t len = strlen(members);
        snprintf(members + len, sizeof members - len, "%s%x@%s", i ? "," : "", i + 1, m[i].addr);
    }
    for (int i = 0; i < NNODES; i++)
        m_start(&loop, &m[i], members);
    int l;
    while ((l = m_leader(m, -1)) < 0)
        uv_run(&loop, UV_RUN_ONCE);

    /* replicate; a follower refuses writes and names the leader */
    m_submit(&m[l], 0, 100);
    while (m_commits < 100 || !m_all_have(m, 100, -1))
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(m_failed, 0);
    int f = (l + 1) % NNODES;
    unsigned char e[ENTRY_LEN] = {0};
    assert_int_equal(clu_submit(m[f].node, e, sizeof e, m_commit, NULL), CLU_ENOTLEADER);
    assert_int_equal(clu_barrier(m[f].node, snapt_done, NULL), CLU_ENOTLEADER);
    uint64_t lid = 0;
    char laddr[64];
    assert_int_equal(clu_leader(m[f].node, &lid, laddr, sizeof laddr), 1);
    assert_int_equal(lid, (uint64_t)l + 1);
    assert_string_equal(laddr, m[l].addr);
    assert_int_equal(m[l].fsm.nlocal, 100);
    assert_int_equal(m[f].fsm.nlocal, 0);

    /* leadership transfer */
    int tstatus = -1;
    assert_int_equal(clu_transfer(m[l].node, 0, snapt_done, &tstatus), 0);
    int l2;
    while (tstatus < 0 || (l2 = m_leader(m, -1)) < 0 || l2 == l)
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(tstatus, 0);
    assert_int_equal(m[l].fsm.role, CLU_ROLE_FOLLOWER);
    assert_true(clu_term(m[l2].node) > 1);
    m_submit(&m[l2], 100, 100);
    while (m_commits < 200 || !m_all_have(m, 200, -1))
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(m_failed, 0);

    /* failover: the leader goes away; the other two elect and continue */
    uint64_t t0 = util_now_ns();
    clu_node_close(m[l2].node, m_closed, &m[l2]);
    int l3;
    while ((l3 = m_leader(m, l2)) < 0)
        uv_run(&loop, UV_RUN_ONCE);
    printf("cluster: 3 nodes, leader stopped, new leader ready after %.0f ms (election timeout "
           "300 ms)\n",
           (double)(util_now_ns() - t0) / 1e6);
    while (!m[l2].closed)
        uv_run(&loop, UV_RUN_ONCE);
    m[l2].node = NULL;
    m_submit(&m[l3], 200, 50);
    while (m_commits < 250 || !m_all_have(m, 250, l2))
        uv_run(&loop, UV_RUN_ONCE);
    assert_int_equal(m_failed, 0);

    /* it comes back on the same dir as itself and catches up from the log */
    size_t before = m[l2].fsm.n;
    tfsm_free(&m[l2].fsm);
    m_start(&loop, &m[l2], members); /* members are ignored: the dir has state */
    assert_int_equal(clu_id(m[l2].node), (uint64_t)l2 + 1);
    assert_int_equal(m[l2].fsm.n, 0); /* nothing is applied before the commit index is known */
    while (!m_all_have(m, 250, -1))
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(before >= 200);
    for (int i = 0; i < NNODES; i++) {
        assert_int_equal(m[i].fsm.errors, 0);
        assert_true(tfsm_is_sequence(&m[i].fsm, 250));
    }

    for (int i = 0; i < NNODES; i++)
        clu_node_close(m[i].node, m_closed, &m[i]);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    for (int i = 0; i < NNODES; i++) {
        assert_true(m[i].closed);
        assert_int_equal(m[i].fsm.role, CLU_ROLE_NONE);
        tfsm_free(&m[i].fsm);
        remove_tree(m[i].dir);
    }
    assert_loop_clean(&loop);
}

/* Close while a snapshot is being written on the thread pool: close waits
 * for it (the write uses the glue), the request is answered, nothing leaks. */
static void bad_closed(void *data)
{
    *(int *)data = 1;
}

static void test_close_during_snapshot(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct run *r = calloc(1, sizeof *r);
    struct snapt t = {0};
    SNAPT = &t;
    clu_config_init(&r->cfg);
    run_open(r, dir, free_port());
    submit_range(r, 0, 100);
    run_until(r, &t.committed, 100);
    r->fsm.write_delay_ms = 300;
    t.snap_status = -1;
    assert_int_equal(clu_snapshot(r->node, snapt_snap, &t), 0);
    run_until(r, &r->fsm.snap_begun, 1);
    uint64_t t0 = util_now_ns();
    run_close(r);
    assert_true(util_now_ns() - t0 > 200 * 1000000ull); /* it waited for the write */
    assert_int_equal(t.snap_done, 1);
    assert_true(t.snap_status == CLU_OK || t.snap_status == CLU_ESHUTDOWN);
    assert_int_equal(r->fsm.snapshots + r->fsm.snap_failed, 1);
    tfsm_free(&r->fsm);

    /* and the node starts again from whatever was kept */
    r->fsm.write_delay_ms = 0;
    run_open(r, dir, free_port());
    assert_true(tfsm_is_sequence(&r->fsm, 100));
    run_close(r);
    tfsm_free(&r->fsm);
    free(r);
    remove_tree(dir);
}

static void test_bad_config(void **state)
{
    (void)state;
    uv_loop_t loop;
    struct clu_config c;
    struct clu_node *n = (void *)1;
    struct tfsm f = {0};
    char err[256];
    char dir[] = "/tmp/orbit-cluuv-XXXXXX";
    assert_non_null(mkdtemp(dir));
    uv_loop_init(&loop);
    clu_config_init(&c);
    c.data_dir = dir;
    c.address = "127.0.0.1:notaport";
    assert_int_equal(clu_node_new(&loop, &c, &tfsm_ops, &f, &n, err, sizeof err), CLU_EINVAL);
    assert_null(n);
    assert_non_null(strstr(err, "peer address"));
    /* a corrupt identity file refuses to start */
    char p[128];
    snprintf(p, sizeof p, "%s/node-id", dir);
    FILE *fp = fopen(p, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    c.address = "127.0.0.1:1";
    assert_int_equal(clu_node_new(&loop, &c, &tfsm_ops, &f, &n, err, sizeof err), CLU_ECORRUPT);
    assert_non_null(strstr(err, "node-id"));
    unlink(p);

    /* the peer port is taken: start fails, close still cleans up */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(fd, 1), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &alen), 0);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(a.sin_port));
    c.address = addr;
    assert_int_equal(clu_node_new(&loop, &c, &tfsm_ops, &f, &n, err, sizeof err), 0);
    assert_int_not_equal(clu_node_start(n, err, sizeof err), 0);
    assert_int_equal(clu_role(n), CLU_ROLE_NONE);
    int closed = 0;
    clu_node_close(n, bad_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    close(fd);
    /* initial_members must name this node */
    c.address = "127.0.0.1:1";
    c.initial_members = "ffff@127.0.0.1:2";
    assert_int_equal(clu_node_new(&loop, &c, &tfsm_ops, &f, &n, err, sizeof err), 0);
    assert_int_equal(clu_node_start(n, err, sizeof err), CLU_EINVAL);
    assert_non_null(strstr(err, "does not list this node"));
    closed = 0;
    clu_node_close(n, bad_closed, &closed);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(closed, 1);
    tfsm_free(&f);
    assert_loop_clean(&loop);
    remove_tree(dir);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(getenv("CLU_LOG") ? LOG_DEBUG : LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bulk_then_replay),
        cmocka_unit_test(test_snapshot_compacts_and_restores),
        cmocka_unit_test(test_odd_lengths_replay),
        cmocka_unit_test(test_close_with_entries_in_flight),
        cmocka_unit_test(test_three_nodes),
        cmocka_unit_test(test_close_during_snapshot),
        cmocka_unit_test(test_bad_config),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
