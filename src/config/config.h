/* config: orbitd settings. One table owns every setting's name, type,
 * default and whether SIGHUP can change it; the config file (`key = value`,
 * `#` comments, as postgresql.conf) is read first and command-line flags
 * (--key-name value, or --key-name=value) override it. Prefix: cfg_. */
#ifndef ORBIT_CONFIG_H
#define ORBIT_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#include "util.h"

#define CFG_DEFAULT_SQL_PORT 5433
#define CFG_DEFAULT_HTTP_PORT 8433
#define CFG_DEFAULT_PEER_PORT 7433

struct cfg {
    char *data_dir;
    char *config_file;
    char *listen;          /* HOST:PORT for SQL clients */
    char *http;            /* HOST:PORT for HTTP, "" = off */
    char *unix_socket_dir; /* "" = off; default: the data dir */
    char *log_file;        /* "" = stderr */
    char *log_level;
    char *join_role;       /* voter (default), standby or spare */
    char *auth_method;     /* scram-sha-256 (default) or trust */
    int64_t max_connections;
    int64_t workers;
    int64_t pool_size;
    int64_t io_threads;
    int64_t admission_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t idle_in_transaction_session_timeout_ms;
    int64_t drain_timeout_ms;
    int64_t max_message_size;
    int64_t session_memory_limit; /* prepared statements + portals of one session */
    int64_t statement_cache_size;
    int64_t worker_spin_us;
    int64_t client_poll_us;
    int64_t holder_spin_us;
    char *peer; /* HOST:PORT for Raft */
    char *join; /* "" = bootstrap a fresh data dir */
    char *initial_members; /* "" = this node alone (or --join) */
    int64_t election_timeout_ms;
    int64_t snapshot_threshold;
    int64_t snapshot_log_size;
    int64_t disk_reserve;
};

/* Fill defaults (strings are heap copies; free with cfg_free). */
int cfg_init(struct cfg *c) MUSTCHECK;
void cfg_free(struct cfg *c);

/* Parse argv (flags) and the config file they name. Returns 0; 1 when
 * --help or --version was printed (exit 0); -1 on error with err filled
 * (exit 2). */
int cfg_load(struct cfg *c, int argc, char **argv, char *err, size_t errcap) MUSTCHECK;

/* Set one setting by name (underscores or dashes). source is for errors.
 * Returns 0 or -1 with err filled ("unrecognized setting", bad value). */
int cfg_set(struct cfg *c, const char *name, const char *value, char *err, size_t errcap) MUSTCHECK;

/* Read a config file into c (only settings present are changed). */
int cfg_read_file(struct cfg *c, const char *path, char *err, size_t errcap) MUSTCHECK;

/* Reload for SIGHUP: reread the file and the original flags into a fresh
 * cfg, copy only reloadable settings into c; names of settings that need
 * a restart and changed are logged. Returns 0 or -1 (c unchanged). */
int cfg_reload(struct cfg *c, int argc, char **argv, char *err, size_t errcap) MUSTCHECK;

void cfg_print_help(FILE *f, const char *prog);

#endif
