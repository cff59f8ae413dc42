/* config/config.c: the settings table, config file parsing, command-line
 * flags and SIGHUP reload. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum kind { K_STR, K_INT, K_MS, K_SIZE };

struct setting {
    const char *name;
    enum kind kind;
    size_t off;
    const char *def;
    int reloadable;
    const char *help;
};

#define S(name, kind, field, def, rel, help) {name, kind, offsetof(struct cfg, field), def, rel, help}
static const struct setting settings[] = {
    S("data_dir", K_STR, data_dir, "", 0, "data directory (required)"),
    S("config", K_STR, config_file, "", 0, "config file of key = value lines"),
    S("listen", K_STR, listen, "127.0.0.1:5433", 0, "HOST:PORT for SQL clients"),
    S("http", K_STR, http, "", 0, "HOST:PORT for HTTP health endpoint (off when empty)"),
    S("unix_socket_dir", K_STR, unix_socket_dir, "@datadir", 0,
      "directory for the unix socket .s.PGSQL.PORT (default: data dir; empty: off)"),
    S("log_file", K_STR, log_file, "", 1, "log file (default: stderr)"),
    S("log_level", K_STR, log_level, "info", 1, "debug, info, warn or error"),
    S("auth_method", K_STR, auth_method, "scram-sha-256", 1,
      "scram-sha-256, or trust (no password: for benchmarks on loopback only)"),
    S("max_connections", K_INT, max_connections, "10000", 1, "maximum client connections"),
    S("workers", K_INT, workers, "0", 0, "executor threads (0 = one per CPU core)"),
    S("pool_size", K_INT, pool_size, "16", 0, "pooled SQLite connections"),
    S("io_threads", K_INT, io_threads, "1", 0, "network event loops (one per core at most)"),
    S("admission_timeout", K_MS, admission_timeout_ms, "30s", 1,
      "how long a statement waits for a pooled connection"),
    S("statement_timeout", K_MS, statement_timeout_ms, "0", 1, "default statement_timeout (0 = off)"),
    S("idle_in_transaction_session_timeout", K_MS, idle_in_transaction_session_timeout_ms, "0", 1,
      "default idle_in_transaction_session_timeout (0 = off)"),
    S("drain_timeout", K_MS, drain_timeout_ms, "30s", 1, "how long SIGTERM waits for transactions"),
    S("max_message_size", K_SIZE, max_message_size, "1GB", 1, "largest protocol message accepted"),
    S("worker_spin_us", K_INT, worker_spin_us, "0", 0,
      "microseconds an idle executor thread polls for work before sleeping"),
    S("client_poll_us", K_INT, client_poll_us, "1000", 0,
      "microseconds an executor thread that just answered a client waits on its socket for the next "
      "request (run there without a hand-off through the event loop) before handing the session back "
      "to the loop (0 = off; at most pool_size / 2 wait at once, plus the write-lock holder)"),
    S("holder_spin_us", K_INT, holder_spin_us, "30", 0,
      "microseconds the thread serving the write-lock holder (a transaction block that wrote; every "
      "other writer waits for it) re-reads its client's socket before sleeping, so that a client that "
      "answers within them is served without waking a sleeping thread or CPU (0 = sleep at once; off "
      "on a single CPU)"),
    S("statement_cache_size", K_INT, statement_cache_size, "256", 0,
      "prepared statements cached per pooled connection"),
    S("peer", K_STR, peer, "127.0.0.1:7433", 0, "HOST:PORT for Raft traffic between nodes (advertised)"),
    S("join", K_STR, join, "", 0,
      "HOST:PEERPORT of any member: a fresh data dir joins that cluster (ignored once a member)"),
    S("join_role", K_STR, join_role, "voter", 0,
      "the role a --join node asks for: voter, standby (async replica, never leads), spare, or witness "
      "(a voter that keeps the Raft log but no data)"),
    S("initial_members", K_STR, initial_members, "", 0,
      "a static first configuration for a fresh data dir: ID@HOST:PEERPORT,... (hex ids as in DATA/node-id)"),
    S("election_timeout", K_MS, election_timeout_ms, "500ms", 0,
      "Raft election timeout (a leader is replaced after one to two of these)"),
    S("snapshot_threshold", K_INT, snapshot_threshold, "65536", 0,
      "txlog records applied between two snapshots (log compaction)"),
    S("snapshot_log_size", K_SIZE, snapshot_log_size, "256MB", 0,
      "txlog bytes applied since the last snapshot that also start one: libraft holds the log since the last "
      "snapshot in memory, so this bounds that memory when records are large"),
    S("session_memory_limit", K_SIZE, session_memory_limit, "64MB", 1,
      "what one session's prepared statements and open portals may hold (over it: SQLSTATE 53200)"),
    S("disk_reserve", K_SIZE, disk_reserve, "64MB", 1,
      "refuse writes (SQLSTATE 53100) when less than this is free on the data dir's disk"),
};
#undef S

static const struct setting *find(const char *name)
{
    char norm[64];
    size_t n = strlen(name);
    if (n >= sizeof norm)
        return NULL;
    for (size_t i = 0; i <= n; i++)
        norm[i] = name[i] == '-' ? '_' : (char)tolower((unsigned char)name[i]);
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (strcmp(settings[i].name, norm) == 0)
            return &settings[i];
    return NULL;
}

static int apply(struct cfg *c, const struct setting *s, const char *value, char *err, size_t errcap)
{
    char *base = (char *)c + s->off;
    switch (s->kind) {
    case K_STR: {
        char *v = util_strdup(value);
        if (!v) {
            snprintf(err, errcap, "out of memory");
            return -1;
        }
        util_free(*(char **)base);
        *(char **)base = v;
        return 0;
    }
    case K_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < 0) {
            snprintf(err, errcap, "invalid value for setting \"%s\": \"%s\" (expected a non-negative integer)",
                     s->name, value);
            return -1;
        }
        *(int64_t *)base = v;
        return 0;
    }
    case K_MS: {
        uint64_t v;
        if (util_parse_duration_ms(value, &v) || v > INT64_MAX) {
            snprintf(err, errcap, "invalid value for setting \"%s\": \"%s\" (expected a duration like 30s or 500ms)",
                     s->name, value);
            return -1;
        }
        *(int64_t *)base = (int64_t)v;
        return 0;
    }
    case K_SIZE: {
        uint64_t v;
        if (util_parse_size(value, &v) || v > INT64_MAX) {
            snprintf(err, errcap, "invalid value for setting \"%s\": \"%s\" (expected a size like 64MB)", s->name,
                     value);
            return -1;
        }
        *(int64_t *)base = (int64_t)v;
        return 0;
    }
    }
    return -1;
}

int cfg_set(struct cfg *c, const char *name, const char *value, char *err, size_t errcap)
{
    const struct setting *s = find(name);
    if (!s) {
        snprintf(err, errcap, "unrecognized setting \"%s\"", name);
        return -1;
    }
    return apply(c, s, value, err, errcap);
}

int cfg_init(struct cfg *c)
{
    char err[128];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (apply(c, &settings[i], settings[i].def, err, sizeof err))
            return -1;
    return 0;
}

void cfg_free(struct cfg *c)
{
    for (size_t i = 0; i < ARRAY_LEN(settings); i++)
        if (settings[i].kind == K_STR) {
            char **p = (char **)((char *)c + settings[i].off);
            util_free(*p);
            *p = NULL;
        }
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

int cfg_read_file(struct cfg *c, const char *path, char *err, size_t errcap)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(err, errcap, "could not open config file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0;
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        /* strip comments that are not inside quotes */
        int inq = 0;
        for (char *p = line; *p; p++) {
            if (*p == '\'')
                inq = !inq;
            else if (*p == '#' && !inq) {
                *p = 0;
                break;
            }
        }
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        char *key, *val;
        if (eq) {
            *eq = 0;
            key = trim(s);
            val = trim(eq + 1);
        } else {
            /* "key value" form, as postgresql.conf allows */
            key = s;
            val = s + strcspn(s, " \t");
            if (*val)
                *val++ = 0;
            val = trim(val);
        }
        size_t vl = strlen(val);
        if (vl >= 2 && val[0] == '\'' && val[vl - 1] == '\'') {
            val[vl - 1] = 0;
            val++;
        }
        char e2[256];
        if (cfg_set(c, key, val, e2, sizeof e2)) {
            snprintf(err, errcap, "%s:%d: %s", path, lineno, e2);
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static const char *flag_value(int argc, char **argv, int *i, const char *arg, char *name, size_t namecap)
{
    const char *eq = strchr(arg, '=');
    if (eq) {
        size_t n = (size_t)(eq - arg);
        if (n >= namecap)
            n = namecap - 1;
        memcpy(name, arg, n);
        name[n] = 0;
        return eq + 1;
    }
    util_strlcpy(name, arg, namecap);
    if (*i + 1 >= argc)
        return NULL;
    return argv[++*i];
}

int cfg_load(struct cfg *c, int argc, char **argv, char *err, size_t errcap)
{
    /* first pass: --config, --help, --version; second pass: flags override file */
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 1; i < argc; i++) {
            const char *a = argv[i];
            if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
                cfg_print_help(stdout, argv[0]);
                return 1;
            }
            if (strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0) {
                printf("orbitd 0.1.0 (PostgreSQL protocol 3.0, SQLite %s)\n", "3");
                return 1;
            }
            if (strncmp(a, "--", 2) != 0) {
                snprintf(err, errcap, "unexpected argument \"%s\" (see --help)", a);
                return -1;
            }
            char name[64];
            const char *v = flag_value(argc, argv, &i, a + 2, name, sizeof name);
            if (!find(name)) {
                snprintf(err, errcap, "unrecognized flag \"--%s\" (see --help)", name);
                return -1;
            }
            if (!v) {
                snprintf(err, errcap, "flag \"--%s\" needs a value", name);
                return -1;
            }
            int is_config = strcmp(find(name)->name, "config") == 0;
            if (pass == 0 && is_config) {
                if (cfg_set(c, name, v, err, errcap) || cfg_read_file(c, v, err, errcap))
                    return -1;
            } else if (pass == 1 && !is_config) {
                if (cfg_set(c, name, v, err, errcap))
                    return -1;
            }
        }
    }
    if (!c->data_dir || !*c->data_dir) {
        char *env = getenv("ORBIT_DATA");
        if (env && *env) {
            if (cfg_set(c, "data_dir", env, err, errcap))
                return -1;
        } else {
            snprintf(err, errcap, "--data-dir is required (or set ORBIT_DATA)");
            return -1;
        }
    }
    if (strcmp(c->unix_socket_dir, "@datadir") == 0 && cfg_set(c, "unix_socket_dir", c->data_dir, err, errcap))
        return -1;
    enum log_level lvl;
    if (log_parse_level(c->log_level, &lvl)) {
        snprintf(err, errcap, "invalid value for setting \"log_level\": \"%s\"", c->log_level);
        return -1;
    }
    if (strcmp(c->join_role, "voter") != 0 && strcmp(c->join_role, "standby") != 0 &&
        strcmp(c->join_role, "spare") != 0 && strcmp(c->join_role, "witness") != 0) {
        snprintf(err, errcap, "invalid value for setting \"join_role\": \"%s\" (voter, standby, spare or witness)",
                 c->join_role);
        return -1;
    }
    if (strcmp(c->auth_method, "scram-sha-256") != 0 && strcmp(c->auth_method, "trust") != 0) {
        snprintf(err, errcap, "invalid value for setting \"auth_method\": \"%s\" (scram-sha-256 or trust)",
                 c->auth_method);
        return -1;
    }
    if (c->workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->workers = n > 0 ? n : 2;
    }
    if (c->workers < 1 || c->workers > 256 || c->pool_size < 1 || c->pool_size > 4096 || c->io_threads < 1 ||
        c->io_threads > 64) {
        snprintf(err, errcap, "workers (1-256), pool_size (1-4096) and io_threads (1-64) are out of range");
        return -1;
    }
    if (c->client_poll_us < 0 || c->client_poll_us > 10000000 || c->holder_spin_us < 0 ||
        c->holder_spin_us > 10000000) {
        snprintf(err, errcap, "client_poll_us and holder_spin_us must be between 0 and 10000000");
        return -1;
    }
    if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
        c->holder_spin_us = 0; /* the client cannot answer while this CPU spins */
    if (c->max_message_size > (int64_t)(1u << 30) || c->max_message_size < 1024) {
        snprintf(err, errcap, "max_message_size must be between 1kB and 1GB");
        return -1;
    }
    return 0;
}

int cfg_reload(struct cfg *c, int argc, char **argv, char *err, size_t errcap)
{
    struct cfg n;
    if (cfg_init(&n)) {
        snprintf(err, errcap, "out of memory");
        return -1;
    }
    int rc = cfg_load(&n, argc, argv, err, errcap);
    if (rc != 0) {
        cfg_free(&n);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        const struct setting *s = &settings[i];
        char *a = (char *)c + s->off, *b = (char *)&n + s->off;
        int same = s->kind == K_STR ? strcmp(*(char **)a, *(char **)b) == 0 : *(int64_t *)a == *(int64_t *)b;
        if (same)
            continue;
        if (!s->reloadable) {
            log_warn("config_reload", "setting=%s msg=\"changing this setting requires a restart\"", s->name);
            continue;
        }
        if (s->kind == K_STR) {
            char *t = *(char **)a;
            *(char **)a = *(char **)b;
            *(char **)b = t;
        } else {
            *(int64_t *)a = *(int64_t *)b;
        }
        log_info("config_reload", "setting=%s", s->name);
    }
    cfg_free(&n);
    return 0;
}

void cfg_print_help(FILE *f, const char *prog)
{
    fprintf(f, "orbitd: a PostgreSQL-compatible SQL server on SQLite\n\n");
    fprintf(f, "Usage: %s --data-dir DIR [--listen HOST:PORT] [--config FILE] [options]\n\n", prog);
    fprintf(f, "Every setting can be given as a flag (--name-with-dashes VALUE) or in the config\n");
    fprintf(f, "file (name_with_underscores = value); flags override the file.\n\n");
    for (size_t i = 0; i < ARRAY_LEN(settings); i++) {
        char flag[64];
        size_t k = 0;
        for (const char *p = settings[i].name; *p && k < sizeof flag - 1; p++)
            flag[k++] = *p == '_' ? '-' : *p;
        flag[k] = 0;
        fprintf(f, "  --%-38s %s%s [default: %s]\n", flag, settings[i].help,
                settings[i].reloadable ? " (SIGHUP)" : "",
                strcmp(settings[i].def, "@datadir") == 0 ? "data dir" : settings[i].def);
    }
    fprintf(f, "\n  --help                                   show this help\n");
    fprintf(f, "  --version                                show the version\n");
    fprintf(f, "\nEnvironment: ORBIT_PASSWORD sets the superuser 'orbit' password on a fresh data dir;\n");
    fprintf(f, "ORBIT_DATA is the data dir when --data-dir is not given.\n");
}
