/* orbitctl: the operator CLI. Commands work on a stopped node's data
 * directory (offline), a node's HTTP port (status) or a member's peer port
 * (membership changes). This
 * file only parses arguments; the work is in the admin module. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "admin.h"
#include "util.h"

/* Parses --data-dir DIR, and --from LSN when from is not NULL (main
 * answers --help). 0 ok, 2 usage error (reported). */
static int parse_args(const char *cmd, int argc, char **argv, const char **dir, uint64_t *from)
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
        } else if (from && strcmp(argv[i], "--json") == 0) {
            /* txlog dump prints JSON lines anyway */
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
                : strcmp(sub, "assign") == 0 ? "orbitctl cluster assign --peer MEMBER ID voter|standby|spare|witness"
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

static int cmd_check(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else {
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
    int rc = parse_args("txlog dump", argc, argv, &dir, &from);
    if (rc)
        return rc;
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
    int rc = parse_args("txlog check", argc, argv, &dir, NULL);
    if (rc)
        return rc;
    struct adm_check c = {.out = stdout, .progress = stderr};
    rc = adm_txlog_check(dir, &c);
    if (rc == ADM_USAGE)
        fprintf(stderr, "orbitctl txlog check: %s\n", c.err);
    return rc;
}

static int cmd_txlog_cut(int argc, char **argv)
{
    const char *dir = NULL, *segment = NULL, *offset = NULL;
    int force = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--segment") == 0 && i + 1 < argc)
            segment = argv[++i];
        else if (strcmp(argv[i], "--offset") == 0 && i + 1 < argc)
            offset = argv[++i];
        else if (strcmp(argv[i], "--force") == 0)
            force = 1;
        else {
            fprintf(stderr, "orbitctl txlog cut: unexpected argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    char *end = NULL;
    errno = 0;
    unsigned long long at = offset ? strtoull(offset, &end, 10) : 0;
    if (!dir || !segment || !offset || !*offset || *offset == '-' || *end || errno || !force) {
        fprintf(stderr, "orbitctl txlog cut: usage: orbitctl txlog cut --data-dir DIR --segment open-N --offset BYTE "
                "--force (the records after BYTE are lost)\n");
        return 2;
    }
    char saved[4200], err[4600];
    if (adm_txlog_cut(dir, segment, at, saved, sizeof saved, err, sizeof err)) {
        fprintf(stderr, "orbitctl txlog cut: %s\n", err);
        return 1;
    }
    printf("%s: zeroed from byte %llu; the original is kept as %s. The next start repairs the database from "
           "the snapshot and the log.\n", segment, at, saved);
    return 0;
}

static int cmd_cluster_add(int argc, char **argv)
{
    return cmd_cluster_change("add", argc, argv);
}

static int cmd_cluster_remove(int argc, char **argv)
{
    return cmd_cluster_change("remove", argc, argv);
}

static int cmd_cluster_assign(int argc, char **argv)
{
    return cmd_cluster_change("assign", argc, argv);
}

static int cmd_cluster_transfer(int argc, char **argv)
{
    return cmd_cluster_change("transfer", argc, argv);
}

static int cmd_version(int argc, char **argv)
{
    (void)argv;
    if (argc) {
        fprintf(stderr, "orbitctl version: unexpected argument \"%s\"\n", argv[0]);
        return 2;
    }
    printf("orbitctl 0.1.0\n");
    return 0;
}

/* Every command: its words, arguments, one line for the list and more for
 * its --help. json: 1 when the command prints JSON itself with --json;
 * otherwise --json wraps what it prints (see run_json). */
struct command {
    const char *name, *args, *summary, *details;
    int (*run)(int argc, char **argv);
    int json;
};

static const struct command commands[] = {
    {"check", "--data-dir DIR [--json]", "verify a stopped node's database (PRAGMA integrity_check)", NULL,
     cmd_check, 1},
    {"txlog dump", "--data-dir DIR [--from LSN]", "print the Raft log's records as JSON lines",
     "Every record in the node's Raft log, in log order, one JSON object per line (only LSN >= --from).\n"
     "The output is JSON already; --json is accepted and changes nothing.\n",
     cmd_txlog_dump, 1},
    {"txlog check", "--data-dir DIR [--json]", "verify a stopped node's log, snapshot and database",
     "Every Raft log entry loads (a damaged open segment is told from a torn tail), every command entry is a\n"
     "valid record, record LSNs increase, the newest snapshot's file matches its descriptor (size, SHA-256),\n"
     "the database passes PRAGMA integrity_check, and its applied LSN is compared with the log. Reads only.\n"
     "Exit status: 0 ok (warnings allowed), 1 problems found, 2 usage error or the check could not run (no\n"
     "such data dir, orbitd running on it).\n",
     cmd_txlog_check, 0},
    {"txlog cut", "--data-dir DIR --segment open-N --offset BYTE --force [--json]",
     "cut an open segment back at a damaged batch the node refuses to start with",
     "When a stopped node reports a batch that fails its checksum with valid batches after it in an open\n"
     "segment, it refuses to start rather than drop the records after it. If that follows a power loss (the\n"
     "last write torn with its sectors out of order) or you accept losing those records on this node, this\n"
     "zeroes the segment from BYTE on (the offset the error names), after keeping a copy next to it. In a\n"
     "cluster, prefer removing the node and joining it again: it then gets everything from the others.\n",
     cmd_txlog_cut, 0},
    {"cluster status", "--http HOST:PORT [--json]", "every member: role, state, term, commit/applied, lag",
     "Reads the node's /status (its view of the configuration and, on the leader, of replication) and asks\n"
     "every member over its peer port for its own state, term, commit and applied index and LSN.\n",
     cmd_cluster_status, 1},
    {"cluster add", "--peer MEMBER NODE_PEER [--role voter|standby|spare] [--json]",
     "add the node listening on NODE_PEER (started with --join)", NULL, cmd_cluster_add, 0},
    {"cluster remove", "--peer MEMBER ID [--json]", "remove a member (not the leader: transfer first)", NULL,
     cmd_cluster_remove, 0},
    {"cluster assign", "--peer MEMBER ID voter|standby|spare|witness [--json]", "change a member's role online",
     "A voter made a spare becomes a standby first, so that it learns it no longer votes.\n"
     "witness: the node drops its data and restarts as a voter that keeps only the Raft log.\n"
     "A witness given any other role becomes a standby, forgets its log, restarts and catches up\n"
     "from the leader (a snapshot, then the log; progress on stderr), then takes the role.\n",
     cmd_cluster_assign, 0},
    {"cluster transfer", "--peer MEMBER [--to ID] [--json]", "hand leadership to another voter", NULL,
     cmd_cluster_transfer, 0},
    {"cluster verify", "--peer MEMBER [--json]", "compare every table's checksum across the members",
     "Waits up to 10 s for the members to reach the same LSN, then compares the schema and every table's\n"
     "logical checksum. Exit status 1 on a divergence or when a member does not answer.\n",
     cmd_cluster_verify, 0},
    {"cluster recover", "--data-dir DIR (--address HOST:PEERPORT | --members ID@HOST:PEERPORT,...) --force [--json]",
     "quorum lost for good: force a new configuration on this STOPPED node",
     "libraft's raft_recover: writes a configuration with the given voters into the node's log. Run it on\n"
     "each surviving node (same --members), then start them. Acknowledged writes that only the lost nodes\n"
     "had are gone: this is the operator's decision, not the cluster's.\n",
     cmd_cluster_recover, 0},
    {"version", "", "print the version", NULL, cmd_version, 0},
};

#define NCOMMANDS (sizeof commands / sizeof commands[0])

static void usage(FILE *f)
{
    fprintf(f, "orbitctl: administer Orbit nodes\n\nUsage:\n");
    for (size_t i = 0; i < NCOMMANDS; i++)
        fprintf(f, "  orbitctl %s%s%s\n      %s\n", commands[i].name, *commands[i].args ? " " : "", commands[i].args,
                commands[i].summary);
    fprintf(f, "\n  MEMBER: any member's peer address (HOST:PEERPORT); requests go on to the leader.\n"
               "  Every command takes --help; --json prints JSON (for commands without JSON of their own:\n"
               "  {\"command\", \"exit_code\", \"ok\", \"output\", \"error\"}).\n");
}

static void help(const struct command *c)
{
    printf("Usage: orbitctl %s%s%s\n\n%c%s.\n", c->name, *c->args ? " " : "", c->args, toupper((unsigned char)c->summary[0]),
           c->summary + 1);
    if (c->details)
        printf("\n%s", c->details);
}

/* The whole content of f (rewound), NUL-terminated; NULL on failure. */
static char *slurp(FILE *f)
{
    if (fflush(f) || fseek(f, 0, SEEK_END))
        return NULL;
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET))
        return NULL;
    char *b = malloc((size_t)n + 1);
    if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
        free(b);
        return NULL;
    }
    if (b)
        b[n] = 0;
    return b;
}

/* A JSON string of text (bytes that are not UTF-8 become '?'). */
static json_t *text_json(char *text)
{
    if (!text)
        return json_string("");
    json_t *j = json_string(text);
    if (j)
        return j;
    for (char *p = text; *p; p++)
        if ((unsigned char)*p >= 0x80)
            *p = '?';
    j = json_string(text);
    return j ? j : json_string("");
}

/* --json for a command that prints text: run it with stdout and stderr
 * going to temporary files, then print one JSON object with its exit code
 * and both texts. */
static int run_json(const struct command *c, int argc, char **argv)
{
    FILE *o = tmpfile(), *e = tmpfile();
    int saved_out = dup(1), saved_err = dup(2);
    if (!o || !e || saved_out < 0 || saved_err < 0) {
        fprintf(stderr, "orbitctl %s: cannot capture the output for --json: %s\n", c->name, strerror(errno));
        return 2;
    }
    fflush(stdout);
    fflush(stderr);
    dup2(fileno(o), 1);
    dup2(fileno(e), 2);
    int rc = c->run(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    char *out = slurp(o), *err = slurp(e);
    json_t *j = json_pack("{s:s, s:i, s:b, s:o, s:o}", "command", c->name, "exit_code", rc, "ok", rc == 0, "output",
                          text_json(out), "error", text_json(err));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    printf("%s\n", text ? text : "{\"ok\": false, \"error\": \"out of memory\"}");
    free(text);
    json_decref(j);
    free(out);
    free(err);
    fclose(o);
    fclose(e);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0)
        return cmd_version(0, NULL);
    const struct command *c = NULL;
    int words = 0;
    for (size_t i = 0; i < NCOMMANDS && !c; i++) {
        const char *name = commands[i].name, *sp = strchr(name, ' ');
        if (!sp && strcmp(argv[1], name) == 0)
            c = &commands[i], words = 1;
        else if (sp && argc >= 3 && strncmp(argv[1], name, (size_t)(sp - name)) == 0 &&
                 argv[1][sp - name] == 0 && strcmp(argv[2], sp + 1) == 0)
            c = &commands[i], words = 2;
    }
    if (!c) {
        int group = 0;
        for (size_t i = 0; i < NCOMMANDS; i++) {
            const char *sp = strchr(commands[i].name, ' ');
            group |= sp && strncmp(argv[1], commands[i].name, (size_t)(sp - commands[i].name)) == 0 &&
                     argv[1][sp - commands[i].name] == 0;
        }
        if (group)
            fprintf(stderr, "orbitctl %s: unknown subcommand%s%s (see orbitctl --help)\n", argv[1],
                    argc >= 3 ? " " : "", argc >= 3 ? argv[2] : "");
        else
            fprintf(stderr, "orbitctl: unknown command \"%s\" (see orbitctl --help)\n", argv[1]);
        return 2;
    }
    argc -= 1 + words;
    argv += 1 + words;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0) {
            help(c);
            return 0;
        }
        json |= strcmp(argv[i], "--json") == 0;
    }
    if (!json || c->json)
        return c->run(argc, argv);
    /* the command itself does not know --json: take it out */
    int k = 0;
    for (int i = 0; i < argc; i++)
        if (strcmp(argv[i], "--json") != 0)
            argv[k++] = argv[i];
    return run_json(c, k, argv);
}
