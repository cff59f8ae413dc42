/* admin/remote.c: commands that ask a running node over its HTTP port
 * (orbitctl cluster status). A minimal HTTP/1.0 GET: the node's endpoint
 * answers with Content-Length and closes. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
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

/* Each member's own view over its peer port (STATUS): state, term,
 * commit/applied/last index, applied LSN; added to its entry in the
 * /status JSON, or "unreachable" with the reason. */
static void member_views(json_t *members)
{
    for (size_t i = 0; i < json_array_size(members); i++) {
        json_t *e = json_array_get(members, i);
        const char *addr = json_string_value(json_object_get(e, "address"));
        char reply[256], state[16], why[300] = "";
        unsigned long long term, commit, applied, last, lsn;
        if (!addr || clu_rpc_call(addr, "STATUS", reply, sizeof reply, NULL, 3000, why, sizeof why) != CLU_OK ||
            sscanf(reply, "%15s %llu %llu %llu %llu %llu", state, &term, &commit, &applied, &last, &lsn) != 6) {
            json_object_set_new(e, "unreachable", json_string(why[0] ? why : "unexpected STATUS answer"));
            continue;
        }
        json_object_set_new(e, "state", json_string(state));
        json_object_set_new(e, "term", json_integer((json_int_t)term));
        json_object_set_new(e, "commit_index", json_integer((json_int_t)commit));
        json_object_set_new(e, "applied_index", json_integer((json_int_t)applied));
        json_object_set_new(e, "last_index", json_integer((json_int_t)last));
        json_object_set_new(e, "lsn", json_integer((json_int_t)lsn));
    }
}

static void fmt_int(char *out, size_t cap, json_t *v)
{
    if (json_is_integer(v))
        snprintf(out, cap, "%lld", (long long)json_integer_value(v));
    else
        snprintf(out, cap, "-");
}

int adm_cluster_status(const char *hostport, int as_json, FILE *out, char *err, size_t errcap)
{
    struct buf body;
    buf_init(&body);
    if (adm_http_get(hostport, "/status", &body, err, errcap)) {
        buf_free(&body);
        return -1;
    }
    json_error_t je;
    json_t *j = json_loadb(body.data, body.len, 0, &je);
    buf_free(&body);
    if (!j) {
        snprintf(err, errcap, "%s/status: not JSON: %s", hostport, je.text);
        return -1;
    }
    member_views(json_object_get(j, "members"));
    if (as_json) {
        char *s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
        if (s)
            fprintf(out, "%s\n", s);
        free(s);
        json_decref(j);
        return s ? 0 : -1;
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
    if (json_is_true(json_object_get(j, "witness")))
        fprintf(out, "witness  this node votes and keeps the Raft log, but holds no data\n");
    const char *lid = json_string_value(json_object_get(j, "leader_id"));
    fprintf(out, "leader   %s %s\n", lid && *lid ? lid : "unknown",
            json_string_value(json_object_get(j, "leader_address")));
    json_t *m = json_object_get(j, "members");
    size_t nvoters = 0;
    /* ROLE is the configuration's; STATE..LSN are the member's own answer;
     * MATCH..CONTACT the leader's view of its replication */
    fprintf(out, "\n%-16s  %-21s  %-7s  %-9s  %5s  %8s  %8s  %8s  %8s  %7s  %6s  %8s\n", "ID", "ADDRESS", "ROLE",
            "STATE", "TERM", "COMMIT", "APPLIED", "LSN", "MATCH", "LAG", "LAG(s)", "CONTACT");
    for (size_t i = 0; i < json_array_size(m); i++) {
        json_t *e = json_array_get(m, i);
        const char *role = json_string_value(json_object_get(e, "role"));
        const char *state = json_string_value(json_object_get(e, "state"));
        char term[24], commit[24], applied[24], lsn[24], match[24], lag[24], lags[24] = "-", contact[24] = "-";
        json_t *v;
        fmt_int(term, sizeof term, json_object_get(e, "term"));
        fmt_int(commit, sizeof commit, json_object_get(e, "commit_index"));
        fmt_int(applied, sizeof applied, json_object_get(e, "applied_index"));
        fmt_int(lsn, sizeof lsn, json_object_get(e, "lsn"));
        fmt_int(match, sizeof match, json_object_get(e, "match_index"));
        fmt_int(lag, sizeof lag, json_object_get(e, "lag_records"));
        if (json_is_number(v = json_object_get(e, "lag_seconds")))
            snprintf(lags, sizeof lags, "%.1f", json_number_value(v));
        if (json_is_integer(v = json_object_get(e, "last_contact_ms")))
            snprintf(contact, sizeof contact, "%lldms", (long long)json_integer_value(v));
        nvoters += role && (strcmp(role, "voter") == 0 || strcmp(role, "witness") == 0);
        fprintf(out, "%-16s  %-21s  %-7s  %-9s  %5s  %8s  %8s  %8s  %8s  %7s  %6s  %8s\n",
                json_string_value(json_object_get(e, "id")), json_string_value(json_object_get(e, "address")),
                role ? role : "?", state ? state : "unreachable", term, commit, applied, lsn, match, lag, lags,
                contact);
        const char *why = json_string_value(json_object_get(e, "unreachable"));
        if (why)
            fprintf(out, "%16s  (%s)\n", "", why);
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
        snprintf(err, errcap, "invalid role \"%s\" (voter, standby, spare; assign also takes witness)",
                 role ? role : "");
        return -1;
    }
    return 0;
}

static int request(const char *member, const char *req, char *out, size_t cap, char *err, size_t errcap)
{
    return clu_rpc_call(member, req, out, cap, NULL, ADM_RPC_TIMEOUT_MS, err, errcap) == CLU_OK ? 0 : -1;
}

int adm_cluster_add(const char *member, const char *node_peer, const char *role, char *out, size_t cap,
                    char *err, size_t errcap)
{
    char reply[512], id[32], addr[256], req[600];
    if (valid_role(role, err, errcap))
        return -1;
    if (clu_rpc_call(node_peer, "ID", reply, sizeof reply, NULL, 10000, err, errcap) != CLU_OK)
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

/* Where id is (its peer address), what the configuration makes it, and
 * the leader's peer address, as member sees them (MEMBERS). */
struct member_info {
    char address[256], role[16], leader[256];
};

static int find_member(const char *member, const char *id, struct member_info *mi, char *err, size_t errcap)
{
    char head[512];
    struct buf lines;
    buf_init(&lines);
    memset(mi, 0, sizeof *mi);
    if (clu_rpc_call(member, "MEMBERS", head, sizeof head, &lines, 10000, err, errcap) != CLU_OK) {
        buf_free(&lines);
        return -1;
    }
    buf_putc(&lines, 0);
    unsigned long long want = strtoull(id, NULL, 16), lid = 0;
    unsigned n = 0;
    if (sscanf(head, "%u %llx", &n, &lid) != 2)
        lid = 0;
    for (const char *p = lines.data; p && *p;) {
        char mid[32], addr[256], role[16];
        if (sscanf(p, "%31s %255s %15s", mid, addr, role) == 3) {
            unsigned long long v = strtoull(mid, NULL, 16);
            if (v == want) {
                util_strlcpy(mi->address, addr, sizeof mi->address);
                util_strlcpy(mi->role, role, sizeof mi->role);
            }
            if (v == lid)
                util_strlcpy(mi->leader, addr, sizeof mi->leader);
        }
        const char *eol = strchr(p, '\n');
        p = eol ? eol + 1 : p + strlen(p);
    }
    buf_free(&lines);
    if (!mi->address[0]) {
        snprintf(err, errcap, "%s is not a member (as %s sees it)", id, member);
        return -1;
    }
    if (!mi->leader[0]) {
        snprintf(err, errcap, "no leader is known to %s right now; retry", member);
        return -1;
    }
    if (want == lid) {
        snprintf(err, errcap, "%s is the leader: transfer leadership first (orbitctl cluster transfer)", id);
        return -1;
    }
    return 0;
}

#define CONVERT_WAIT_S 60
#define CATCH_UP_WAIT_S 3600

/* Ask the node at address to CONVERT what until it says it is "already"
 * one (it restarts in between). */
static int convert(const char *address, const char *what, char *err, size_t errcap)
{
    char req[32], reply[512], why[512] = "";
    snprintf(req, sizeof req, "CONVERT %s", what);
    int refused = 0;
    for (int i = 0; i < CONVERT_WAIT_S * 5; i++) {
        if (i)
            usleep(200000);
        int rc = clu_rpc_call(address, req, reply, sizeof reply, NULL, 5000, why, sizeof why);
        if (rc == CLU_OK && strncmp(reply, "already", 7) == 0)
            return 0;
        /* refused (a leader, a witness that still votes, an orbitd without
         * CONVERT): a role change may take a moment to reach the node */
        if (rc == CLU_EINVAL && ++refused >= 25) {
            snprintf(err, errcap, "%s", why);
            return -1;
        }
        if (rc == CLU_OK && (i == 0 || strncmp(reply, "restarting", 10) != 0))
            fprintf(stderr, "%s: %s\n", address, reply);
    }
    snprintf(err, errcap, "%s did not come back as a %s within %d s%s%s", address,
             strcmp(what, "data") == 0 ? "data node" : "witness", CONVERT_WAIT_S, why[0] ? ": " : "", why);
    return -1;
}

/* Wait until the node at address has applied what the leader had
 * committed when the wait began; progress on stderr. */
static int catch_up(const char *address, const char *leader, char *err, size_t errcap)
{
    char reply[256], st[16];
    unsigned long long term, commit, applied, last, lsn, target = 0;
    if (clu_rpc_call(leader, "STATUS", reply, sizeof reply, NULL, 5000, err, errcap) != CLU_OK ||
        sscanf(reply, "%15s %llu %llu %llu %llu %llu", st, &term, &target, &applied, &last, &lsn) != 6) {
        if (!*err)
            snprintf(err, errcap, "%s: unexpected STATUS answer", leader);
        return -1;
    }
    for (int i = 0; i < CATCH_UP_WAIT_S * 2; i++) {
        char why[256] = "";
        if (clu_rpc_call(address, "STATUS", reply, sizeof reply, NULL, 5000, why, sizeof why) == CLU_OK &&
            sscanf(reply, "%15s %llu %llu %llu %llu %llu", st, &term, &commit, &applied, &last, &lsn) == 6) {
            if (applied >= target)
                return 0;
            if (i % 10 == 0)
                fprintf(stderr, "%s: catching up: applied index %llu of %llu (LSN %llu)\n", address, applied,
                        target, lsn);
        }
        usleep(500000);
    }
    snprintf(err, errcap, "%s did not catch up to index %llu within %d s", address, target, CATCH_UP_WAIT_S);
    return -1;
}

static int assign_req(const char *member, const char *id, const char *role, char *out, size_t cap, char *err,
                      size_t errcap)
{
    char req[64];
    snprintf(req, sizeof req, "ASSIGN %s %s", id, role);
    return request(member, req, out, cap, err, errcap);
}

/* A witness is a voter to Raft that the node itself keeps without data:
 * becoming one, or ceasing to be one, is the node's change (CONVERT over
 * its peer port; it restarts), around the configuration's. */
int adm_cluster_assign(const char *member, const char *id, const char *role, char *out, size_t cap,
                       char *err, size_t errcap)
{
    struct member_info mi;
    char reply[512], why[512];
    int to_witness = role && strcmp(role, "witness") == 0;
    if (valid_id(id, err, errcap) || (!to_witness && valid_role(role, err, errcap)))
        return -1;
    if (to_witness) {
        if (find_member(member, id, &mi, err, errcap) || convert(mi.address, "witness", err, errcap))
            return -1;
        if (strcmp(mi.role, "voter") != 0 && assign_req(member, id, "voter", reply, sizeof reply, err, errcap))
            return -1;
        snprintf(out, cap, "done: %s is a witness (a voter that keeps the Raft log, not the data)", id);
        return 0;
    }
    /* CONVERT data: a data node (or an orbitd without CONVERT) says so and
     * is assigned as usual; a witness that votes refuses until it is made a
     * standby; a witness that is a standby converts at once */
    if (find_member(member, id, &mi, why, sizeof why))
        return assign_req(member, id, role, out, cap, err, errcap); /* the leader's answer */
    int rc = clu_rpc_call(mi.address, "CONVERT data", reply, sizeof reply, NULL, 10000, why, sizeof why);
    int voting_witness = rc == CLU_EINVAL && strstr(why, "this witness is");
    if (!voting_witness && (rc != CLU_OK || strncmp(reply, "already", 7) == 0))
        return assign_req(member, id, role, out, cap, err, errcap);
    if ((voting_witness && assign_req(member, id, "standby", reply, sizeof reply, err, errcap)) ||
        convert(mi.address, "data", err, errcap) || catch_up(mi.address, mi.leader, err, errcap))
        return -1;
    if (strcmp(role, "standby") == 0) {
        snprintf(out, cap, "done: %s holds the data again, as a standby", id);
        return 0;
    }
    return assign_req(member, id, role, out, cap, err, errcap);
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

/* ---- orbitctl cluster verify ---------------------------------------------------------- */

#define VERIFY_MAX_MEMBERS 16
#define VERIFY_ROUNDS 40 /* x 250 ms: lagging members catch up meanwhile */

struct verify_member {
    char id[32], address[256], role[16];
    int ok;            /* CHECKSUM answered */
    int witness;       /* a witness: no data, left out of the comparison */
    char err[512];
    unsigned long long lsn, ntables;
    char hex[80], schema[80];
    struct buf tables; /* "hex rows name" lines */
};

static int fetch_sums(struct verify_member *m)
{
    char reply[512];
    buf_reset(&m->tables);
    m->ok = 0;
    if (clu_rpc_call(m->address, "CHECKSUM", reply, sizeof reply, &m->tables, 30000, m->err,
                     sizeof m->err) != CLU_OK)
        return -1;
    if (strcmp(reply, "witness") == 0) {
        m->ok = m->witness = 1;
        return 0;
    }
    if (sscanf(reply, "%llu %79s %79s %llu", &m->lsn, m->hex, m->schema, &m->ntables) != 4) {
        snprintf(m->err, sizeof m->err, "unexpected CHECKSUM answer \"%.100s\"", reply);
        return -1;
    }
    buf_putc(&m->tables, 0);
    m->ok = 1;
    return 0;
}

/* The "hex rows" of table name in m's list, or NULL. */
static const char *table_sum(const struct verify_member *m, const char *name, char *out, size_t cap)
{
    const char *p = m->tables.data;
    while (p && *p) {
        const char *eol = strchr(p, '\n');
        size_t len = eol ? (size_t)(eol - p) : strlen(p);
        const char *sp1 = memchr(p, ' ', len);
        const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', len - (size_t)(sp1 + 1 - p)) : NULL;
        if (sp2 && (size_t)(p + len - (sp2 + 1)) == strlen(name) && memcmp(sp2 + 1, name, strlen(name)) == 0) {
            snprintf(out, cap, "%.*s", (int)(sp2 - p), p);
            return out;
        }
        p = eol ? eol + 1 : p + len;
    }
    return NULL;
}

int adm_cluster_verify(const char *member, FILE *out, char *err, size_t errcap)
{
    char head[512];
    struct buf lines;
    buf_init(&lines);
    if (clu_rpc_call(member, "MEMBERS", head, sizeof head, &lines, 10000, err, errcap) != CLU_OK) {
        buf_free(&lines);
        return -1;
    }
    buf_putc(&lines, 0);
    struct verify_member ms[VERIFY_MAX_MEMBERS];
    int n = 0;
    for (const char *p = lines.data; p && *p && n < VERIFY_MAX_MEMBERS;) {
        struct verify_member *m = &ms[n];
        memset(m, 0, sizeof *m);
        if (sscanf(p, "%31s %255s %15s", m->id, m->address, m->role) == 3 && strcmp(m->role, "spare") != 0) {
            buf_init(&m->tables);
            n++;
        }
        const char *eol = strchr(p, '\n');
        p = eol ? eol + 1 : p + strlen(p);
    }
    buf_free(&lines);
    if (n == 0) {
        snprintf(err, errcap, "%s lists no members with data", member);
        return -1;
    }
    int same = 0, reachable = 0;
    for (int round = 0; round < VERIFY_ROUNDS && !same; round++) {
        if (round)
            usleep(250000);
        reachable = 1;
        for (int i = 0; i < n; i++)
            reachable &= fetch_sums(&ms[i]) == 0;
        for (int i = 1; i < n && ms[0].witness; i++)
            if (!ms[i].witness) { /* the reference must hold data */
                struct verify_member t = ms[0];
                ms[0] = ms[i];
                ms[i] = t;
            }
        same = reachable;
        for (int i = 1; i < n && same; i++)
            same = ms[i].witness || ms[i].lsn == ms[0].lsn;
    }
    int rc = 0;
    fprintf(out, "%-16s  %-22s  %-8s  %10s  %s\n", "ID", "ADDRESS", "ROLE", "LSN", "CHECKSUM");
    for (int i = 0; i < n; i++) {
        if (ms[i].witness)
            fprintf(out, "%-16s  %-22s  %-8s  %10s  witness: no data to compare\n", ms[i].id, ms[i].address,
                    ms[i].role, "-");
        else if (ms[i].ok)
            fprintf(out, "%-16s  %-22s  %-8s  %10llu  %.16s  %llu tables\n", ms[i].id, ms[i].address,
                    ms[i].role, ms[i].lsn, ms[i].hex, ms[i].ntables);
        else
            fprintf(out, "%-16s  %-22s  %-8s  %10s  unreachable: %s\n", ms[i].id, ms[i].address,
                    ms[i].role, "-", ms[i].err);
    }
    if (!reachable) {
        snprintf(err, errcap, "not every member answered; nothing was compared");
        rc = -1;
    } else if (!same) {
        snprintf(err, errcap, "the members stayed at different LSNs for %d s (writes in progress?); "
                 "run verify when the cluster is quiet", VERIFY_ROUNDS / 4);
        rc = -1;
    } else {
        int diverged = 0;
        for (int i = 1; i < n; i++) {
            if (ms[i].witness)
                continue;
            if (strcmp(ms[i].schema, ms[0].schema) != 0) {
                fprintf(out, "DIVERGENCE: schema of %s differs from %s\n", ms[i].id, ms[0].id);
                diverged = 1;
            }
            /* every table of either side */
            for (int side = 0; side < 2; side++) {
                const struct verify_member *a = side ? &ms[i] : &ms[0], *b = side ? &ms[0] : &ms[i];
                for (const char *p = a->tables.data; p && *p;) {
                    const char *eol = strchr(p, '\n');
                    size_t len = eol ? (size_t)(eol - p) : strlen(p);
                    char line[600], name[512], sa[128], sb[128];
                    snprintf(line, sizeof line, "%.*s", (int)len, p);
                    const char *sp = strchr(line, ' ');
                    sp = sp ? strchr(sp + 1, ' ') : NULL;
                    if (sp) {
                        util_strlcpy(name, sp + 1, sizeof name);
                        const char *ta = table_sum(a, name, sa, sizeof sa);
                        const char *tb = table_sum(b, name, sb, sizeof sb);
                        int differs = ta && tb && strcmp(ta, tb) != 0;
                        if (!tb)
                            fprintf(out, "DIVERGENCE: table %s is on %s, not on %s\n", name, a->id, b->id);
                        else if (differs && side == 0) /* reported once */
                            fprintf(out, "DIVERGENCE: table %s: %s has \"%s\", %s has \"%s\" (sha256 rows)\n",
                                    name, a->id, ta, b->id, tb);
                        diverged |= !tb || differs;
                    }
                    p = eol ? eol + 1 : p + len;
                }
            }
            diverged |= strcmp(ms[i].hex, ms[0].hex) != 0;
        }
        if (diverged) {
            snprintf(err, errcap, "members diverge at LSN %llu (see above)", ms[0].lsn);
            rc = 1;
        } else {
            int with_data = 0;
            for (int i = 0; i < n; i++)
                with_data += !ms[i].witness;
            fprintf(out, "ok: %d members agree at LSN %llu (%llu tables, checksum %.16s)\n", with_data,
                    ms[0].lsn, ms[0].ntables, ms[0].hex);
        }
    }
    for (int i = 0; i < n; i++)
        buf_free(&ms[i].tables);
    return rc;
}

/* ---- orbitctl cluster recover (offline) ------------------------------------------------ */

int adm_cluster_recover(const char *dir, const char *address, const char *members, int force, char *out,
                        size_t cap, char *err, size_t errcap)
{
    long pid = 0;
    out[0] = 0;
    if (adm_node_running(dir, &pid) > 0) {
        snprintf(err, errcap, "orbitd (pid %ld) is running on %s: stop it first", pid, dir);
        return -1;
    }
    char list[600];
    if (address)
        snprintf(list, sizeof list, "this node alone at %s", address);
    else
        util_strlcpy(list, members, sizeof list);
    snprintf(out, cap,
             "WARNING: cluster recover forces a new Raft configuration (%s) on %s.\n"
             "  Use it only when a majority of voters is lost for good. Run it on ONE surviving node,\n"
             "  the one with the highest term and the longest log (orbitctl txlog check on each),\n"
             "  start it, then wipe the other survivors and add them again (--join).\n"
             "  Writes that only the lost nodes had are gone; two nodes recovered separately\n"
             "  would each lead their own cluster (split brain).\n",
             list, dir);
    if (!force) {
        size_t len = strlen(out);
        snprintf(out + len, cap - len, "Nothing was changed: add --force to do it.\n");
        snprintf(err, errcap, "refused without --force");
        return 1;
    }
    uint64_t self = 0;
    int rc = clu_recover(dir, members, address, &self, err, errcap);
    if (rc != CLU_OK)
        return -1;
    size_t len = strlen(out);
    snprintf(out + len, cap - len, "Done: %016llx's log now ends with the configuration (%s). Start it.\n",
             (unsigned long long)self, list);
    return 0;
}
