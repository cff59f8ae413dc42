/* admin/remote.c: commands that ask a running node over its HTTP port
 * (orbitctl cluster status). A minimal HTTP/1.0 GET: the node's endpoint
 * answers with Content-Length and closes. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "admin_int.h"
#include "cluster.h"

int adm_http_get(const char *hostport, const char *path, struct buf *body, char *err, size_t errcap)
{
    int fd = util_tcp_connect(hostport, 10000, err, errcap);
    if (fd < 0)
        return -1;
    char req[512];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, hostport);
    if (write(fd, req, (size_t)n) != n) {
        snprintf(err, errcap, "%s: %s", hostport, strerror(errno));
        close(fd);
        return -1;
    }
    struct buf all;
    buf_init(&all);
    char chunk[8192];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof chunk)) > 0)
        buf_append(&all, chunk, (size_t)r);
    close(fd);
    const char *sep = all.len ? memmem(all.data, all.len, "\r\n\r\n", 4) : NULL;
    int code = 0;
    if (r < 0 || !buf_ok(&all) || !sep || sscanf(all.data, "HTTP/%*s %d", &code) != 1) {
        snprintf(err, errcap, "%s: no valid HTTP answer%s%s", hostport, r < 0 ? ": " : "", r < 0 ? strerror(errno) : "");
        buf_free(&all);
        return -1;
    }
    size_t off = (size_t)(sep + 4 - all.data);
    buf_append(body, all.data + off, all.len - off);
    buf_free(&all);
    if (code != 200) {
        snprintf(err, errcap, "%s%s: HTTP %d", hostport, path, code);
        return -1;
    }
    return 0;
}

int adm_cluster_status(const char *hostport, int as_json, FILE *out, char *err, size_t errcap)
{
    struct buf body;
    buf_init(&body);
    if (adm_http_get(hostport, "/status", &body, err, errcap)) {
        buf_free(&body);
        return -1;
    }
    if (as_json) {
        fwrite(body.data, 1, body.len, out);
        fputc('\n', out);
        buf_free(&body);
        return 0;
    }
    json_error_t je;
    json_t *j = json_loadb(body.data, body.len, 0, &je);
    buf_free(&body);
    if (!j) {
        snprintf(err, errcap, "%s/status: not JSON: %s", hostport, je.text);
        return -1;
    }
    fprintf(out, "node     %s  %s  state %s  term %lld\n", json_string_value(json_object_get(j, "id")),
            json_string_value(json_object_get(j, "address")), json_string_value(json_object_get(j, "state")),
            (long long)json_integer_value(json_object_get(j, "term")));
    fprintf(out, "log      commit %lld  applied %lld  last %lld  snapshot %lld  lsn %lld\n",
            (long long)json_integer_value(json_object_get(j, "commit_index")),
            (long long)json_integer_value(json_object_get(j, "applied_index")),
            (long long)json_integer_value(json_object_get(j, "last_index")),
            (long long)json_integer_value(json_object_get(j, "snapshot_index")),
            (long long)json_integer_value(json_object_get(j, "lsn")));
    const char *lid = json_string_value(json_object_get(j, "leader_id"));
    fprintf(out, "leader   %s %s\n", lid && *lid ? lid : "unknown",
            json_string_value(json_object_get(j, "leader_address")));
    json_t *m = json_object_get(j, "members");
    size_t nvoters = 0;
    fprintf(out, "\n%-16s  %-21s  %-7s  %s\n", "ID", "ADDRESS", "ROLE", "");
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *e = json_array_get(m, i);
        const char *role = json_string_value(json_object_get(e, "role"));
        nvoters += role && strcmp(role, "voter") == 0;
        fprintf(out, "%-16s  %-21s  %-7s  %s\n", json_string_value(json_object_get(e, "id")),
                json_string_value(json_object_get(e, "address")), role ? role : "?",
                json_is_true(json_object_get(e, "leader")) ? "leader" : "");
    }
    if (nvoters && nvoters % 2 == 0)
        fprintf(out, "\nwarning: %zu voters: an even number tolerates no more failures than %zu would\n", nvoters,
                nvoters - 1);
    json_decref(j);
    return 0;
}

/* ---- membership over the peer port ------------------------------------------------- */

#define ADM_RPC_TIMEOUT_MS 60000 /* a voter is added once it caught up */

static int valid_id(const char *id, char *err, size_t errcap)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 16 || strspn(id, "0123456789abcdefABCDEF") != n) {
        snprintf(err, errcap, "invalid node id \"%s\" (up to 16 hex digits, as in DATA/node-id and "
                 "cluster status)", id ? id : "");
        return -1;
    }
    return 0;
}

static int valid_role(const char *role, char *err, size_t errcap)
{
    enum clu_member_role r;
    if (clu_member_role_parse(role, &r)) {
        snprintf(err, errcap, "invalid role \"%s\" (voter, standby or spare)", role ? role : "");
        return -1;
    }
    return 0;
}

static int request(const char *member, const char *req, char *out, size_t cap, char *err, size_t errcap)
{
    return clu_rpc_call(member, req, out, cap, ADM_RPC_TIMEOUT_MS, err, errcap) == CLU_OK ? 0 : -1;
}

int adm_cluster_add(const char *member, const char *node_peer, const char *role, char *out, size_t cap,
                    char *err, size_t errcap)
{
    char reply[512], id[32], addr[256], req[600];
    if (valid_role(role, err, errcap))
        return -1;
    if (clu_rpc_call(node_peer, "ID", reply, sizeof reply, 10000, err, errcap) != CLU_OK)
        return -1;
    if (sscanf(reply, "%31s %255s", id, addr) != 2) {
        snprintf(err, errcap, "%s: unexpected answer to ID: \"%s\"", node_peer, reply);
        return -1;
    }
    snprintf(req, sizeof req, "JOIN %s %s %s", id, addr, role);
    return request(member, req, out, cap, err, errcap);
}

int adm_cluster_remove(const char *member, const char *id, char *out, size_t cap, char *err, size_t errcap)
{
    char req[64];
    if (valid_id(id, err, errcap))
        return -1;
    snprintf(req, sizeof req, "REMOVE %s", id);
    return request(member, req, out, cap, err, errcap);
}

int adm_cluster_assign(const char *member, const char *id, const char *role, char *out, size_t cap,
                       char *err, size_t errcap)
{
    char req[64];
    if (valid_id(id, err, errcap) || valid_role(role, err, errcap))
        return -1;
    snprintf(req, sizeof req, "ASSIGN %s %s", id, role);
    return request(member, req, out, cap, err, errcap);
}

int adm_cluster_transfer(const char *member, const char *id, char *out, size_t cap, char *err,
                         size_t errcap)
{
    char req[64];
    if (id && valid_id(id, err, errcap))
        return -1;
    snprintf(req, sizeof req, "TRANSFER %s", id ? id : "0");
    return request(member, req, out, cap, err, errcap);
}
