/* orbitctl: the operator CLI. Commands work on a stopped node's data
 * directory (offline), a node's HTTP port (status) or a member's peer port
 * (membership changes). This
 * file only parses arguments; the work is in the admin module. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "orbitctl: administer Orbit nodes\n\n"
               "Usage:\n"
               "  orbitctl check --data-dir DIR [--json]         verify a stopped node's database (integrity check)\n"
               "  orbitctl txlog dump --data-dir DIR [--from LSN] print the Raft log's records as JSON lines\n"
               "  orbitctl txlog check --data-dir DIR            verify a stopped node's log, snapshot and database\n"
               "  orbitctl cluster status --http HOST:PORT [--json] a running node's view of the cluster\n"
               "  orbitctl cluster add --peer MEMBER NODE_PEER [--role voter|standby|spare]\n"
               "                                                 add the node listening on NODE_PEER (started with --join)\n"
               "  orbitctl cluster remove --peer MEMBER ID       remove a member (not the leader: transfer first)\n"
               "  orbitctl cluster assign --peer MEMBER ID ROLE  change a member's role online\n"
               "  orbitctl cluster transfer --peer MEMBER [--to ID] hand leadership to another voter\n"
               "  orbitctl cluster verify --peer MEMBER          compare every table's checksum across the members\n"
               "  orbitctl cluster recover --data-dir DIR --address HOST:PEERPORT --force\n"
               "                                                 quorum lost for good: make this STOPPED node the only voter\n"
               "    MEMBER: any member's peer address (HOST:PEERPORT); requests go on to the leader\n"
               "  orbitctl version                               print the version\n"
               "  orbitctl --help                                this help\n");
}

/* Parses --data-dir DIR, and --from LSN when from is not NULL. 0 ok, 1
 * --help was printed, 2 usage error (reported). */
static int parse_args(const char *cmd, const char *help, int argc, char **argv, const char **dir,
                      uint64_t *from)
{
    *dir = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc) {
            *dir = argv[++i];
        } else if (from && strcmp(argv[i], "--from") == 0 && i + 1 < argc) {
            const char *s = argv[++i];
            char *end;
            errno = 0;
            unsigned long long v = strtoull(s, &end, 10);
            if (!*s || *s == '-' || *end || errno) {
                fprintf(stderr, "orbitctl %s: --from needs an LSN (a non-negative integer), not \"%s\"\n",
                        cmd, s);
                return 2;
            }
            *from = v;
        } else if (strcmp(argv[i], "--help") == 0) {
            printf("%s", help);
            return 1;
        } else {
            fprintf(stderr, "orbitctl %s: unknown argument \"%s\"\n", cmd, argv[i]);
            return 2;
        }
    }
    if (!*dir) {
        fprintf(stderr, "orbitctl %s: --data-dir is required\n", cmd);
        return 2;
    }
    return 0;
}

static int cmd_cluster_status(int argc, char **argv)
{
    const char *http = NULL;
    int as_json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--http") == 0 && i + 1 < argc)
            http = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            as_json = 1;
        else {
            fprintf(stderr, "orbitctl cluster status: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!http) {
        fprintf(stderr, "orbitctl cluster status: --http HOST:PORT (the node's HTTP address) is required\n");
        return 2;
    }
    char err[512];
    if (adm_cluster_status(http, as_json, stdout, err, sizeof err)) {
        fprintf(stderr, "orbitctl cluster status: %s\n", err);
        return 1;
    }
    return 0;
}

/* add/remove/assign/transfer: --peer MEMBER, positional arguments, and the
 * options --role (add) and --to (transfer). */
static int cmd_cluster_change(const char *sub, int argc, char **argv)
{
    const char *peer = NULL, *role = NULL, *to = NULL, *pos[2] = {NULL, NULL};
    int npos = 0, want = strcmp(sub, "add") == 0      ? 1
                         : strcmp(sub, "remove") == 0 ? 1
                         : strcmp(sub, "assign") == 0 ? 2
                                                      : 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer = argv[++i];
        else if (strcmp(sub, "add") == 0 && strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else if (strcmp(sub, "transfer") == 0 && strcmp(argv[i], "--to") == 0 && i + 1 < argc)
            to = argv[++i];
        else if (argv[i][0] != '-' && npos < want)
            pos[npos++] = argv[i];
        else {
            fprintf(stderr, "orbitctl cluster %s: unexpected argument \"%s\" (see orbitctl --help)\n", sub,
                    argv[i]);
            return 2;
        }
    }
    if (!peer || npos != want) {
        fprintf(stderr, "orbitctl cluster %s: usage: %s\n", sub,
                strcmp(sub, "add") == 0      ? "orbitctl cluster add --peer MEMBER NODE_PEER [--role voter|standby|spare]"
                : strcmp(sub, "remove") == 0 ? "orbitctl cluster remove --peer MEMBER ID"
                : strcmp(sub, "assign") == 0 ? "orbitctl cluster assign --peer MEMBER ID voter|standby|spare"
                                             : "orbitctl cluster transfer --peer MEMBER [--to ID]");
        return 2;
    }
    char out[512], err[768];
    int rc = strcmp(sub, "add") == 0      ? adm_cluster_add(peer, pos[0], role ? role : "voter", out, sizeof out, err, sizeof err)
             : strcmp(sub, "remove") == 0 ? adm_cluster_remove(peer, pos[0], out, sizeof out, err, sizeof err)
             : strcmp(sub, "assign") == 0 ? adm_cluster_assign(peer, pos[0], pos[1], out, sizeof out, err, sizeof err)
                                          : adm_cluster_transfer(peer, to, out, sizeof out, err, sizeof err);
    if (rc) {
        fprintf(stderr, "orbitctl cluster %s: %s\n", sub, err);
        return 1;
    }
    printf("%s\n", out);
    return 0;
}

static int cmd_cluster_verify(int argc, char **argv)
{
    const char *peer = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--peer") == 0 && i + 1 < argc)
            peer = argv[++i];
        else {
            fprintf(stderr, "orbitctl cluster verify: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!peer) {
        fprintf(stderr, "orbitctl cluster verify: usage: orbitctl cluster verify --peer MEMBER\n");
        return 2;
    }
    char err[768];
    int rc = adm_cluster_verify(peer, stdout, err, sizeof err);
    if (rc)
        fprintf(stderr, "orbitctl cluster verify: %s\n", err);
    return rc ? 1 : 0;
}

static int cmd_cluster_recover(int argc, char **argv)
{
    const char *dir = NULL, *address = NULL, *members = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--address") == 0 && i + 1 < argc)
            address = argv[++i];
        else if (strcmp(argv[i], "--members") == 0 && i + 1 < argc)
            members = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else {
            fprintf(stderr, "orbitctl cluster recover: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!dir || !!address == !!members) {
        fprintf(stderr, "orbitctl cluster recover: usage: orbitctl cluster recover --data-dir DIR "
                "(--address HOST:PEERPORT | --members ID@HOST:PEERPORT,...) --force\n");
        return 2;
    }
    char err[768], out[1024];
    int rc = adm_cluster_recover(dir, address, members, force, out, sizeof out, err, sizeof err);
    fprintf(stderr, "%s", out);
    if (rc)
        fprintf(stderr, "orbitctl cluster recover: %s\n", err);
    return rc < 0 ? 2 : rc;
}

static int cmd_cluster(int argc, char **argv)
{
    static const char *const subs[] = {"add", "remove", "assign", "transfer"};
    if (argc >= 1 && strcmp(argv[0], "status") == 0)
        return cmd_cluster_status(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "verify") == 0)
        return cmd_cluster_verify(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "recover") == 0)
        return cmd_cluster_recover(argc - 1, argv + 1);
    for (size_t i = 0; argc >= 1 && i < sizeof subs / sizeof subs[0]; i++)
        if (strcmp(argv[0], subs[i]) == 0)
            return cmd_cluster_change(subs[i], argc - 1, argv + 1);
    fprintf(stderr, "orbitctl cluster: unknown subcommand%s%s (status, add, remove, assign, transfer, verify, recover)\n",
            argc ? " " : "", argc ? argv[0] : "");
    return 2;
}

static int cmd_check(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("orbitctl check --data-dir DIR [--json]: run PRAGMA integrity_check on DIR/orbit.db\n");
            return 0;
        } else {
            fprintf(stderr, "orbitctl check: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "orbitctl check: --data-dir is required\n");
        return 2;
    }
    char path[4200], result[512];
    snprintf(path, sizeof path, "%s/orbit.db", dir);
    int rc = adm_db_integrity(path, result, sizeof result);
    if (rc < 0) {
        fprintf(stderr, "orbitctl check: %s\n", result);
        return 1;
    }
    if (json)
        printf("{\"database\": \"%s\", \"ok\": %s}\n", rc == 0 ? "ok" : "corrupt", rc == 0 ? "true" : "false");
    else
        printf("%s: %s\n", path, result);
    return rc == 0 ? 0 : 1;
}

static int cmd_txlog_dump(int argc, char **argv)
{
    const char *dir;
    uint64_t from = 0;
    char err[1024];
    int rc = parse_args("txlog dump", "orbitctl txlog dump --data-dir DIR [--from LSN]: print every record in the "
                        "node's Raft log, in log order, as one JSON object per line (only LSN >= --from)\n",
                        argc, argv, &dir, &from);
    if (rc)
        return rc == 1 ? 0 : rc;
    long pid = 0;
    if (adm_node_running(dir, &pid) > 0)
        fprintf(stderr, "orbitctl txlog dump: warning: orbitd (pid %ld) is running on %s; the newest entries "
                "may be missing\n", pid, dir);
    if (adm_txlog_dump(dir, from, stdout, err, sizeof err)) {
        fprintf(stderr, "orbitctl txlog dump: %s\n", err);
        return 1;
    }
    return 0;
}

static int cmd_txlog_check(int argc, char **argv)
{
    const char *dir;
    int rc = parse_args("txlog check",
                        "orbitctl txlog check --data-dir DIR: verify a stopped node offline: every Raft log entry "
                        "loads, every command entry is a valid record, record LSNs increase, the newest snapshot's "
                        "file matches its descriptor (size, SHA-256), the database passes PRAGMA integrity_check, "
                        "and its applied LSN against the log. Reads only.\n"
                        "Exit status: 0 ok (warnings allowed), 1 problems found, 2 usage error or the check "
                        "could not run (no such data dir, orbitd running on it).\n",
                        argc, argv, &dir, NULL);
    if (rc)
        return rc == 1 ? 0 : rc;
    struct adm_check c = {.out = stdout, .progress = stderr};
    rc = adm_txlog_check(dir, &c);
    if (rc == ADM_USAGE)
        fprintf(stderr, "orbitctl txlog check: %s\n", c.err);
    return rc;
}

static int cmd_txlog(int argc, char **argv)
{
    if (argc >= 1 && strcmp(argv[0], "dump") == 0)
        return cmd_txlog_dump(argc - 1, argv + 1);
    if (argc >= 1 && strcmp(argv[0], "check") == 0)
        return cmd_txlog_check(argc - 1, argv + 1);
    fprintf(stderr, "orbitctl txlog: expected \"dump\" or \"check\" (see orbitctl --help)\n");
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("orbitctl 0.1.0\n");
        return 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(argv[1], "txlog") == 0)
        return cmd_txlog(argc - 2, argv + 2);
    if (strcmp(argv[1], "cluster") == 0)
        return cmd_cluster(argc - 2, argv + 2);
    fprintf(stderr, "orbitctl: unknown command \"%s\" (see orbitctl --help)\n", argv[1]);
    return 2;
}
