/* admin: offline administration of a stopped node's data directory, the
 * work behind orbitctl's offline commands (src/main/orbitctl.c only parses
 * arguments). Everything here only reads the data directory.
 *   datadir.c  - is it a data dir, is orbitd running on it (its lock),
 *                PRAGMA integrity_check of the database
 *   logtool.c  - txlog dump (the Raft log's records as JSON lines) and
 *                txlog check (log, records, snapshot, database)
 *   remote.c   - commands that ask a running node over HTTP (cluster status)
 * It joins the cluster module (the log, snapshot files) and the txlog
 * module (records). Prefix: adm_. */
#ifndef ORBIT_ADMIN_H
#define ORBIT_ADMIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util.h"

/* Exit statuses of the commands (orbitctl exits with them). */
enum { ADM_OK = 0, ADM_PROBLEM = 1, ADM_USAGE = 2 };

/* Progress line interval of txlog check, in log entries. */
#define ADM_PROGRESS_EVERY 100000

/* 0 when dir is an Orbit data directory (it holds orbit.db, node-id or
 * raft/); -1 with err: no such directory, not a directory, not a data dir. */
int adm_data_dir(const char *dir, char *err, size_t errcap) MUSTCHECK;

/* Is an orbitd running on dir? orbitd holds an exclusive flock on
 * dir/orbitd.pid while it runs; this tries a shared lock without blocking
 * and releases it at once, never creating or writing the file. 1 running
 * (*pid from the file, 0 when unreadable), 0 not running, -1 error. */
int adm_node_running(const char *dir, long *pid);

/* PRAGMA integrity_check of the database at path, opened read-only.
 * 0 "ok"; 1 corrupt (result holds the first message and how many more);
 * -1 cannot open or run it (result says why). */
int adm_db_integrity(const char *path, char *result, size_t cap);

/* txlog dump: every record in the Raft log of data dir dir with LSN >=
 * from, in log order, one JSON object per line (txl_record_to_json), to
 * out. Entries that are not commands (barriers, configuration changes)
 * are skipped; a dir without Raft state prints nothing. 0 ok; -1 with err
 * (no such dir, not a data dir, a log libraft cannot load, a command entry
 * that is not a valid record, a write error). */
int adm_txlog_dump(const char *dir, uint64_t from, FILE *out, char *err, size_t errcap) MUSTCHECK;

/* txlog cut: the operator's answer to "a bad batch with a valid one after
 * it" in an open segment (cluster/segcheck.c), when that is a torn last
 * write after a power loss rather than damage: on a stopped node, copy
 * DIR/raft/SEGMENT to SEGMENT.damaged-TIME (libraft ignores that name),
 * then zero it from offset (a batch boundary, a multiple of 8) to its end
 * and fsync. The records after offset are gone from this node's log; the
 * next start repairs the database from the snapshot and the log. 0 ok,
 * -1 with err (running node, no such open segment, bad offset, I/O). */
int adm_txlog_cut(const char *dir, const char *segment, uint64_t offset, char *saved, size_t savedcap, char *err,
                  size_t errcap) MUSTCHECK;

/* txlog check of a stopped node: every log entry loads (libraft checks the
 * segment checksums), every command entry decodes as a record, record LSNs
 * strictly increase and agree with the snapshot, the newest snapshot's
 * descriptor decodes and its file has the right size and SHA-256, the
 * database passes PRAGMA integrity_check, and its applied LSN is compared
 * with the log. Problems, warnings and a short summary go to out;
 * progress lines to progress every progress_every entries. */
struct adm_check {
    /* in */
    FILE *out;               /* NULL: stdout */
    FILE *progress;          /* NULL: none */
    uint64_t progress_every; /* 0: ADM_PROGRESS_EVERY */
    /* out */
    char err[512];           /* why the check could not run (ADM_USAGE) */
    unsigned problems, warnings;
    int log_ok;              /* the log loaded */
    int has_log;             /* DATA/raft holds Raft state */
    uint64_t entries, commands, barriers, changes;
    uint64_t records, bad_records, lsn_errors;
    uint64_t first_index, last_index;
    uint64_t first_lsn, last_lsn; /* of the first and last record in the log */
    int has_snapshot, snapshot_ok;
    uint64_t snapshot_index, snapshot_lsn;
    int db_found, db_ok, db_ahead;
    uint64_t db_applied_lsn;
};
/* ADM_OK (warnings allowed), ADM_PROBLEM, or ADM_USAGE (c->err: no such
 * dir, not a data dir, orbitd is running on it). */
int adm_txlog_check(const char *dir, struct adm_check *c) MUSTCHECK;

/* ---- a running node, over its HTTP port (remote.c) ---- */
/* GET path from HOST:PORT; the body is appended to body. 0, or -1 with err
 * (cannot connect, not HTTP, a status other than 200). */
int adm_http_get(const char *hostport, const char *path, struct buf *body, char *err, size_t errcap) MUSTCHECK;
/* orbitctl cluster status: the node's /status as a table (or the JSON).
 * 0, or -1 with err. */
int adm_cluster_status(const char *hostport, int as_json, FILE *out, char *err, size_t errcap) MUSTCHECK;

/* ---- membership, over any member's peer port (remote.c) ----
 * The request goes to member (HOST:PEERPORT), which hands it to the leader.
 * adm_cluster_add asks the node at node_peer (started with --join, or a
 * member) for its id, then asks the cluster to add it with role (voter,
 * standby, spare). remove/assign/transfer take a 16-hex-digit id (transfer:
 * NULL = let the leader pick). 0 with the leader's answer in out, or -1
 * with err. */
int adm_cluster_add(const char *member, const char *node_peer, const char *role, char *out, size_t cap,
                    char *err, size_t errcap) MUSTCHECK;
int adm_cluster_remove(const char *member, const char *id, char *out, size_t cap, char *err,
                       size_t errcap) MUSTCHECK;
int adm_cluster_assign(const char *member, const char *id, const char *role, char *out, size_t cap,
                       char *err, size_t errcap) MUSTCHECK;
int adm_cluster_transfer(const char *member, const char *id, char *out, size_t cap, char *err,
                         size_t errcap) MUSTCHECK;
/* orbitctl cluster verify: the logical checksum of every table on every
 * member with data (voters and standbys), compared once they are at the
 * same LSN (retried for 10 s while they catch up). 0 all agree, 1
 * divergence (printed to out), -1 could not compare (err). */
int adm_cluster_verify(const char *member, FILE *out, char *err, size_t errcap) MUSTCHECK;
/* orbitctl cluster recover (offline, node stopped): force a configuration
 * of this node alone at address, or of members ("ID@HOST:PORT,..."). The
 * warning and what was done go to out. Without force nothing changes and 1
 * is returned. 0 done; 1 refused; -1 error (err). */
int adm_cluster_recover(const char *dir, const char *address, const char *members, int force, char *out,
                        size_t cap, char *err, size_t errcap) MUSTCHECK;

#endif
