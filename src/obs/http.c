/* obs/http.c: a small HTTP/1.0-style server on loop 0 for health checks
 * and Prometheus scrapes. One request per connection, answered and
 * closed; requests larger than 8 KiB or slower than 5 s are dropped. */
#include "obs.h"
#include "repl.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define REQ_MAX 8192

struct http_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    struct server *srv;
    size_t len;
    int closing;
    char req[REQ_MAX];
};

struct http_write {
    uv_write_t w;
    char *data;
};

static uv_tcp_t http_listener;
static int http_on;

static void conn_free_cb(uv_handle_t *h)
{
    struct http_conn *c = h->data;
    if (--c->closing == 0)
        util_free(c);
}

static void conn_close(struct http_conn *c)
{
    if (c->closing)
        return;
    c->closing = 2;
    uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
    uv_close((uv_handle_t *)&c->timer, conn_free_cb);
}

static void write_done(uv_write_t *w, int status)
{
    struct http_write *hw = (struct http_write *)w;
    struct http_conn *c = w->data;
    util_free(hw->data);
    util_free(hw);
    conn_close(c);
}

static void respond(struct http_conn *c, int code, const char *ctype, const char *body, size_t blen)
{
    const char *reason = code == 200 ? "OK" : code == 404 ? "Not Found" : code == 405 ? "Method Not Allowed"
                                                                                      : "Service Unavailable";
    struct buf b;
    buf_init(&b);
    buf_printf(&b, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", code,
               reason, ctype, blen);
    buf_append(&b, body, blen);
    struct http_write *hw = util_malloc(sizeof *hw);
    if (!hw || !buf_ok(&b)) {
        util_free(hw);
        buf_free(&b);
        conn_close(c);
        return;
    }
    size_t len;
    hw->data = buf_steal(&b, &len);
    hw->w.data = c;
    uv_buf_t ub = uv_buf_init(hw->data, (unsigned)len);
    uv_read_stop((uv_stream_t *)&c->tcp);
    if (uv_write(&hw->w, (uv_stream_t *)&c->tcp, &ub, 1, write_done)) {
        util_free(hw->data);
        util_free(hw);
        conn_close(c);
    }
}

static void metrics(struct http_conn *c)
{
    struct server *srv = c->srv;
    struct exe_stats st;
    exe_get_stats(srv->pool, &st);
    struct buf b;
    buf_init(&b);
#define GAUGE(name, help, fmt, v)                                                                                  \
    buf_printf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s " fmt "\n", name, help, name, name, v)
#define COUNTER(name, help, v)                                                                                     \
    buf_printf(&b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name, (unsigned long long)(v))
    GAUGE("orbit_up", "1 when the node serves SQL.", "%d", 1);
    GAUGE("orbit_draining", "1 while the node drains for shutdown.", "%d", atomic_load(&srv->draining));
    GAUGE("orbit_client_connections", "Client connections currently open.", "%d", atomic_load(&srv->nsessions));
    GAUGE("orbit_max_connections", "Configured max_connections.", "%lld", (long long)srv->cfg->max_connections);
    GAUGE("orbit_pool_connections", "Pooled SQLite connections.", "%d", st.conns_total);
    GAUGE("orbit_pool_connections_free", "Pooled SQLite connections not in use.", "%d", st.conns_free);
    GAUGE("orbit_exec_queued", "Jobs waiting to run (ready, admission, write token).", "%d", st.queued);
    COUNTER("orbit_exec_jobs_total", "Jobs run by executor threads.", st.tasks_run);
    COUNTER("orbit_exec_direct_jobs_total",
            "Jobs an executor thread read from the client's socket itself after answering the previous one "
            "(client_poll_us), without a hand-off through the event loop.",
            st.direct_jobs);
    COUNTER("orbit_admission_waits_total", "Jobs that waited for a pooled connection.", st.admission_waits);
    COUNTER("orbit_admission_timeouts_total", "Jobs that gave up waiting for a pooled connection.",
            st.admission_timeouts);
    COUNTER("orbit_write_waits_total", "Jobs that waited for the write token.", st.write_waits);
    COUNTER("orbit_statement_cache_hits_total",
            "Statements found compiled in the pooled connection's cache (by SQL text, whichever session "
            "prepared them).",
            st.cache_hits);
    COUNTER("orbit_statement_cache_misses_total", "Statements compiled by SQLite.", st.cache_misses);
    GAUGE("orbit_uptime_seconds", "Seconds since the node started.", "%.3f",
          (double)(util_wall_us() - srv->started_us) / 1e6);
#define SUMMARY(name, help, sum_ns, count)                                                                        \
    buf_printf(&b, "# HELP %s %s\n# TYPE %s summary\n%s_sum %.9f\n%s_count %llu\n", name, help, name, name,       \
               (double)(sum_ns) / 1e9, name, (unsigned long long)(count))
    SUMMARY("orbit_write_lock_hold_seconds", "How long each write transaction held the write token.",
            st.write_hold_ns, st.write_holds);
    SUMMARY("orbit_wal_checkpoint_seconds",
            "WAL checkpoints (PASSIVE, on the checkpoint thread, never inside a writer's COMMIT).",
            st.checkpoint_ns, st.checkpoints);
    SUMMARY("orbit_statement_seconds",
            "Server time per job (a Query message, or an extended-protocol batch up to Sync), commit wait included.",
            st.run_ns, st.tasks_run);
    if (srv->repl) {
        struct rpl_stats rs;
        rpl_get_stats(srv->repl, &rs);
        GAUGE("orbit_raft_role", "0 none, 1 follower, 2 candidate, 3 leader (caught up).", "%d", rs.role);
        GAUGE("orbit_raft_term", "Current Raft term.", "%llu", (unsigned long long)rs.term);
        GAUGE("orbit_raft_commit_index", "Raft commit index.", "%llu", (unsigned long long)rs.commit_index);
        GAUGE("orbit_raft_applied_index", "Raft index applied to the database.", "%llu",
              (unsigned long long)rs.applied_index);
        GAUGE("orbit_raft_last_index", "Last index in the local Raft log.", "%llu", (unsigned long long)rs.last_index);
        GAUGE("orbit_raft_snapshot_index", "Index of the newest snapshot.", "%llu",
              (unsigned long long)rs.snapshot_index);
        GAUGE("orbit_txlog_lsn", "Newest txlog LSN committed and applied here.", "%llu", (unsigned long long)rs.lsn);
        GAUGE("orbit_txlog_inflight", "Records committed locally and not yet committed by Raft.", "%d", rs.inflight);
        COUNTER("orbit_txlog_commits_total", "Records committed through Raft.", rs.commits);
        COUNTER("orbit_txlog_commit_failures_total", "Records whose Raft commit failed.", rs.commit_failures);
        COUNTER("orbit_txlog_record_bytes_total", "Encoded txlog bytes submitted.", rs.record_bytes);
        COUNTER("orbit_txlog_records_applied_total", "Records replayed from the log or received.", rs.records_applied);
        COUNTER("orbit_txlog_apply_batches_total",
                "SQLite transactions those records were applied in (a replica catching up applies many in one).",
                rs.apply_batches);
        COUNTER("orbit_raft_snapshots_total", "Snapshots taken.", rs.snapshots);
        SUMMARY("orbit_commit_wait_seconds", "How long commits waited for Raft.", rs.commit_wait_ns, rs.commits);
        GAUGE("orbit_disk_full", "1 while writes are refused for lack of disk space.", "%d", rs.nospace);
    }
#undef SUMMARY
#undef GAUGE
#undef COUNTER
    if (!buf_ok(&b)) {
        buf_free(&b);
        conn_close(c);
        return;
    }
    respond(c, 200, "text/plain; version=0.0.4", b.data, b.len);
    buf_free(&b);
}

static void health(struct http_conn *c)
{
    struct server *srv = c->srv;
    int draining = atomic_load(&srv->draining);
    const char *role = "leader";
    json_int_t lsn = 0;
    if (srv->repl) {
        struct rpl_stats rs;
        rpl_get_stats(srv->repl, &rs);
        static const char *names[] = {"none", "follower", "candidate", "leader"};
        role = rs.role >= 0 && rs.role < 4 ? names[rs.role] : "unknown";
        lsn = (json_int_t)rs.lsn;
    }
    json_t *j = json_pack("{s:s, s:s, s:I, s:i, s:f}", "status", draining ? "draining" : "ok", "role", role, "lsn", lsn,
                          "connections", atomic_load(&srv->nsessions), "uptime_seconds",
                          (double)(util_wall_us() - srv->started_us) / 1e6);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body) {
        conn_close(c);
        return;
    }
    respond(c, draining ? 503 : 200, "application/json", body, strlen(body));
    free(body);
}

/* GET /status: this node and the cluster configuration as it sees it. */
static void status(struct http_conn *c)
{
    struct server *srv = c->srv;
    if (!srv->repl) {
        respond(c, 404, "text/plain", "no cluster\n", 11);
        return;
    }
    struct rpl_status st;
    struct rpl_stats rs;
    char id[17], lid[17];
    rpl_status(srv->repl, &st);
    rpl_get_stats(srv->repl, &rs);
    snprintf(id, sizeof id, "%016llx", (unsigned long long)st.id);
    snprintf(lid, sizeof lid, "%016llx", (unsigned long long)st.leader_id);
    json_t *members = json_array();
    for (int i = 0; i < st.nmembers; i++) {
        char mid[17];
        snprintf(mid, sizeof mid, "%016llx", (unsigned long long)st.members[i].id);
        const struct rpl_member *m = &st.members[i];
        json_t *e = json_pack("{s:s, s:s, s:s, s:b}", "id", mid, "address", m->address, "role", m->role, "leader",
                              m->id == st.leader_id);
        /* replication as this node sees it; null when it cannot know */
        json_object_set_new(e, "match_index", m->match_index >= 0 ? json_integer(m->match_index) : json_null());
        json_object_set_new(e, "lag_records", m->lag_records >= 0 ? json_integer(m->lag_records) : json_null());
        json_object_set_new(e, "lag_seconds", m->lag_seconds >= 0 ? json_real(m->lag_seconds) : json_null());
        json_object_set_new(e, "last_contact_ms", m->contact_ms >= 0 ? json_integer(m->contact_ms) : json_null());
        json_array_append_new(members, e);
    }
    json_t *j = json_pack("{s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:o, s:s, s:i}", "id", id,
                          "address", st.address, "state", st.state, "term", (json_int_t)st.term, "commit_index",
                          (json_int_t)st.commit_index, "applied_index", (json_int_t)st.applied_index, "last_index",
                          (json_int_t)st.last_index, "snapshot_index", (json_int_t)st.snapshot_index, "lsn",
                          (json_int_t)st.lsn, "inflight", (json_int_t)rs.inflight, "leader_id",
                          st.leader_id ? lid : "", "leader_address", st.leader_address, "members", members, "sql",
                          srv->cfg->listen, "connections", atomic_load(&srv->nsessions));
    if (j)
        json_object_set_new(j, "witness", json_boolean(st.witness));
    char *body = j ? json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(j);
    if (!body) {
        conn_close(c);
        return;
    }
    respond(c, 200, "application/json", body, strlen(body));
    free(body);
}

static void handle(struct http_conn *c)
{
    char method[8], path[256];
    if (sscanf(c->req, "%7s %255s", method, path) != 2) {
        conn_close(c);
        return;
    }
    char *q = strchr(path, '?');
    if (q)
        *q = 0;
    if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
        respond(c, 405, "text/plain", "method not allowed\n", 19);
        return;
    }
    if (strcmp(path, "/health") == 0 || strcmp(path, "/healthz") == 0)
        health(c);
    else if (strcmp(path, "/status") == 0)
        status(c);
    else if (strcmp(path, "/metrics") == 0)
        metrics(c);
    else
        respond(c, 404, "text/plain", "not found\n", 10);
}

static void alloc_cb(uv_handle_t *h, size_t sz, uv_buf_t *b)
{
    struct http_conn *c = h->data;
    b->base = c->req + c->len;
    b->len = REQ_MAX - 1 - c->len;
}

static void read_cb(uv_stream_t *st, ssize_t n, const uv_buf_t *b)
{
    struct http_conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = 0;
    if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) {
        handle(c);
        return;
    }
    if (c->len >= REQ_MAX - 1)
        conn_close(c);
}

static void timeout_cb(uv_timer_t *t)
{
    conn_close(t->data);
}

static void accept_cb(uv_stream_t *server, int status)
{
    if (status < 0)
        return;
    struct server *srv = server->data;
    struct http_conn *c = util_calloc(1, sizeof *c);
    if (!c)
        return;
    c->srv = srv;
    uv_loop_t *loop = server->loop;
    uv_tcp_init(loop, &c->tcp);
    uv_timer_init(loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) || uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb)) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, timeout_cb, 5000, 0);
}

int obs_http_start(struct server *srv, char *err, size_t errcap)
{
    if (!srv->cfg->http || !*srv->cfg->http)
        return 0;
    char host[256];
    int port;
    if (util_parse_hostport(srv->cfg->http, host, sizeof host, &port)) {
        snprintf(err, errcap, "invalid http address \"%s\" (expected HOST:PORT)", srv->cfg->http);
        return -1;
    }
    struct sockaddr_storage sa;
    if (uv_ip4_addr(*host ? host : "0.0.0.0", port, (struct sockaddr_in *)&sa) &&
        uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa)) {
        snprintf(err, errcap, "invalid http address \"%s\"", srv->cfg->http);
        return -1;
    }
    uv_tcp_init(&srv->loops[0].loop, &http_listener);
    http_listener.data = srv;
    int rc = uv_tcp_bind(&http_listener, (struct sockaddr *)&sa, 0);
    if (!rc)
        rc = uv_listen((uv_stream_t *)&http_listener, 128, accept_cb);
    if (rc) {
        snprintf(err, errcap, "could not listen for HTTP on %s: %s", srv->cfg->http, uv_strerror(rc));
        return -1;
    }
    http_on = 1;
    return 0;
}

void obs_http_stop(void)
{
    if (http_on && !uv_is_closing((uv_handle_t *)&http_listener))
        uv_close((uv_handle_t *)&http_listener, NULL);
    http_on = 0;
}
