/* A real single-node cluster for tests: libraft on a private libuv loop
 * with its log in a temp dir, the test FSM of clu_test_fsm.h, a guard timer
 * that fails a hung test, and helpers for ports and temp dirs. Used by
 * test_cluster_uv.c and test_txlog_offline.c. */
#ifndef ORBIT_CLU_TEST_NODE_H
#define ORBIT_CLU_TEST_NODE_H

#include <arpa/inet.h>
#include <dirent.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include "clu_test_fsm.h"
#include "cluster.h"
#include "unit.h"

static inline int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static inline void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    struct stat st;
    while (d && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(p);
        else
            unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static inline int count_files(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

static inline void count_handle(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        (*(int *)arg)++;
}

/* Every handle is closed: nothing left for uv_walk, uv_loop_close works. */
static inline void assert_loop_clean(uv_loop_t *loop)
{
    int open = 0;
    uv_run(loop, UV_RUN_NOWAIT);
    uv_walk(loop, count_handle, &open);
    assert_int_equal(open, 0);
    assert_int_equal(uv_loop_close(loop), 0);
}

struct run {
    uv_loop_t loop;
    struct clu_node *node;
    struct tfsm fsm;
    struct clu_config cfg;
    char dir[256];
    char addr[64];
    uv_timer_t guard; /* fails the test instead of hanging */
    int closed;
};

static inline void guard_cb(uv_timer_t *t)
{
    (void)t;
    fail_msg("cluster test timed out");
}

static inline void closed_cb(void *data)
{
    struct run *r = data;
    r->closed = 1;
    uv_close((uv_handle_t *)&r->guard, NULL);
}

static inline void run_open(struct run *r, const char *dir, int port)
{
    char err[256];
    memset(&r->fsm, 0, sizeof r->fsm);
    r->closed = 0;
    assert_int_equal(uv_loop_init(&r->loop), 0);
    util_strlcpy(r->dir, dir, sizeof r->dir);
    snprintf(r->addr, sizeof r->addr, "127.0.0.1:%d", port);
    r->cfg.data_dir = r->dir;
    r->cfg.address = r->addr;
    int rc = clu_node_new(&r->loop, &r->cfg, &tfsm_ops, &r->fsm, &r->node, err, sizeof err);
    if (rc)
        fail_msg("clu_node_new: %s", err);
    rc = clu_node_start(r->node, err, sizeof err);
    if (rc)
        fail_msg("clu_node_start: %s", err);
    uv_timer_init(&r->loop, &r->guard);
    uv_timer_start(&r->guard, guard_cb, 20000, 0);
    while (!clu_is_leader(r->node))
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(r->fsm.role, CLU_ROLE_LEADER);
}

/* Close, run the loop dry, check nothing is left open. */
static inline void run_close(struct run *r)
{
    if (!r->closed && r->node)
        clu_node_close(r->node, closed_cb, r);
    uv_run(&r->loop, UV_RUN_DEFAULT);
    assert_true(r->closed);
    r->node = NULL;
    assert_loop_clean(&r->loop);
}

#endif
