/* txlog: committed-transaction records. A record is the ordered list of a
 * write transaction's changes (row changes captured with SQLite's preupdate
 * hook, DDL as statement text) plus its LSN, commit time and origin node.
 *   record.c   - record memory, versioned binary encoding with CRC32C
 *   json.c     - JSON-lines rendering (orbitctl txlog dump)
 *   capture.c  - preupdate capture on a connection, statements, savepoints
 *   classify.c - which statements are DDL / local; CREATE TABLE AS rewrite
 *   apply.c    - applying records on another database, undo, applied LSN
 *   checksum.c - logical per-table SHA-256 of a database
 *   meta.c     - table metadata shared by capture, apply and checksum
 * Design: docs/txlog.md. Prefix: txl_. */
#ifndef ORBIT_TXLOG_H
#define ORBIT_TXLOG_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ---- records ------------------------------------------------------------ */

enum txl_type { TXL_NULL = 0, TXL_INTEGER = 1, TXL_REAL = 2, TXL_TEXT = 3, TXL_BLOB = 4 };

/* One column value. TEXT and BLOB point at n bytes owned by the record
 * (followed by a NUL byte that is not part of the value; TEXT may contain
 * NUL bytes: n is authoritative). */
struct txl_value {
    uint8_t type; /* enum txl_type */
    uint32_t n;   /* TEXT/BLOB length */
    union {
        int64_t i;
        double d;
        const unsigned char *p;
    };
};

enum txl_op { TXL_INSERT = 1, TXL_UPDATE = 2, TXL_DELETE = 3, TXL_DDL = 4 };

/* One change. Row changes carry the values of every column that is not a
 * generated column, in table order (ncol of them). Rowid tables are
 * addressed by rowid (old_rowid for UPDATE/DELETE, new_rowid for
 * INSERT/UPDATE); WITHOUT ROWID tables (keyed = 1) by their primary key:
 * key holds the old key (PRIMARY KEY column order) for UPDATE/DELETE, and
 * an INSERT's key is in its values. oldv is local undo only: set on
 * captured records (UPDATE/DELETE), never encoded, NULL after decoding. */
struct txl_change {
    uint8_t op;    /* enum txl_op */
    uint8_t keyed; /* WITHOUT ROWID table */
    uint8_t raw_;  /* private (capture): values not yet in table order */
    uint32_t ncol; /* values in newv / oldv */
    uint32_t nkey; /* values in key */
    const char *table; /* row change: table name (owned by the record) */
    int64_t old_rowid, new_rowid;
    struct txl_value *newv; /* INSERT, UPDATE */
    struct txl_value *oldv; /* UPDATE, DELETE: captured records only */
    struct txl_value *key;  /* keyed UPDATE, DELETE */
    const char *sql;        /* DDL: statement text (NUL-terminated) */
    size_t sql_len;
    void *mem_; /* private: this change's own allocation, if any */
};

struct txl_record {
    uint64_t lsn;       /* set by the server before encoding */
    uint64_t commit_us; /* UTC microseconds, set by the server */
    uint64_t origin;    /* node id (cluster ids are 64-bit) */
    size_t nchanges;
    struct txl_change *changes;
    /* private */
    char **tables_;
    size_t ntables_;
    void *arena_;
};

void txl_record_init(struct txl_record *r);
void txl_record_free(struct txl_record *r); /* frees and re-initializes */
int txl_record_has_ddl(const struct txl_record *r);

/* Format version written by txl_encode. */
#define TXL_FORMAT_VERSION 1
#define TXL_FLAG_ZSTD 0x01 /* header flag: the body after the lsn is one zstd frame */
/* Hard limits decoding enforces (encoding refuses to exceed them too). */
#define TXL_MAX_RECORD_BYTES 0x7ff00000u /* whole encoded record */
#define TXL_MAX_COLUMNS 32767
#define TXL_MAX_NAME 65535

/* Append the encoded record to out. 0 ok; -1 out of memory (out->oom set)
 * or a record beyond the limits above. */
int txl_encode(const struct txl_record *r, struct buf *out) MUSTCHECK;
/* Decode exactly one record occupying all len bytes. 0 ok (out owns its
 * memory: txl_record_free); -1 with err naming what is wrong (bad magic,
 * truncated, trailing bytes, checksum mismatch, unsupported version,
 * a count or length beyond the data or the limits, out of memory); out is
 * then empty. */
int txl_decode(const void *data, size_t len, struct txl_record *out, char *err, size_t errcap) MUSTCHECK;
/* The LSN of an encoded record, from its header and first field only (no
 * checksum pass; txl_decode still checks everything). 0 ok, -1 not a
 * record of this format. */
int txl_peek_lsn(const void *data, size_t len, uint64_t *lsn) MUSTCHECK;
/* Append one JSON object and a newline (JSON lines). 0 ok, -1 OOM. */
int txl_record_to_json(const struct txl_record *r, struct buf *out) MUSTCHECK;
/* CRC32C (Castagnoli), as stored in records: crc = txl_crc32c(0, p, n). */
uint32_t txl_crc32c(uint32_t crc, const void *p, size_t n);

/* ---- statement classification --------------------------------------------- */

enum txl_kind {
    TXL_KIND_DML,   /* run between txl_capture_stmt_begin/_end (SELECT too) */
    TXL_KIND_DDL,   /* run between txl_capture_ddl_begin/_end: replicated as text */
    TXL_KIND_CTAS,  /* CREATE TABLE ... AS SELECT: txl_rewrite_ctas, run both parts */
    TXL_KIND_LOCAL, /* VACUUM INTO, REINDEX, ATTACH, DETACH, PRAGMA (except user_version
                       and application_id assignments): this node only, no capture calls */
    TXL_KIND_TXN,   /* BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE */
    TXL_KIND_REFUSE /* VACUUM: it renumbers the rowids of tables that have neither an
                       INTEGER PRIMARY KEY nor an index, breaking replication: refuse it */
};
/* Classify one SQLite statement (leading whitespace and comments skipped). */
enum txl_kind txl_classify(const char *sql);
const char *txl_kind_name(enum txl_kind k);

/* CREATE TABLE name AS select -> create_sql "CREATE TABLE name AS SELECT *
 * FROM (select) LIMIT 0" (the same columns and declared types, no rows,
 * deterministic) and insert_sql "INSERT INTO name SELECT * FROM (select)"
 * (the rows, captured as row changes). Run create_sql as DDL, then, only if
 * txl_capture_ddl_end returned 1 (with IF NOT EXISTS the table may already
 * exist), insert_sql as DML, both in one transaction. */
struct txl_ctas {
    char *create_sql;
    char *insert_sql;
};
/* 0 ok; -1 (err says why) when sql is not a single CREATE TABLE ... AS. */
int txl_rewrite_ctas(const char *sql, struct txl_ctas *out, char *err, size_t errcap) MUSTCHECK;
void txl_ctas_free(struct txl_ctas *c);

/* ---- capture --------------------------------------------------------------
 * One capture per connection; it installs the connection's preupdate hook.
 * It collects the changes of the current transaction to tables of schema
 * "main", except sqlite_* and _orbit_* tables; changes made by triggers and
 * foreign-key actions are included. All calls on the connection's thread.
 * Changes made while the connection runs txl_apply/txl_undo are not
 * captured. */
struct txl_capture;

struct txl_capture *txl_capture_new(sqlite3 *db) MUSTCHECK; /* NULL on OOM */
void txl_capture_free(struct txl_capture *c);               /* removes the hook */

/* Around every statement that is not DDL. ok = 0 when the statement failed:
 * its changes are dropped. (After a failed statement the transaction must
 * end in ROLLBACK or ROLLBACK TO an older savepoint, as in PostgreSQL;
 * if SQLite rolled back the whole transaction, everything is dropped.)
 * stmt_end returns -1 when the capture has failed (see txl_capture_error):
 * the transaction must then be rolled back. */
void txl_capture_stmt_begin(struct txl_capture *c);
int txl_capture_stmt_end(struct txl_capture *c, int ok);

/* Around a DDL statement instead of stmt_begin/_end: its text is recorded
 * (once the statement succeeded and changed the main schema, user_version
 * or application_id, or wrote main rows as ANALYZE does). Row changes the
 * statement makes itself are not captured; changes by foreign-key actions
 * it causes (DROP TABLE of a parent with ON DELETE CASCADE) are.
 * ddl_begin: 0, or -1 (OOM / capture failed). ddl_end: 1 recorded, 0 not
 * recorded (failed, or no effect on main: temp objects, IF [NOT] EXISTS),
 * -1 capture failed. */
int txl_capture_ddl_begin(struct txl_capture *c, const char *sql) MUSTCHECK;
int txl_capture_ddl_end(struct txl_capture *c, int ok);

/* Mirror SQL savepoints after SQLite accepted them (names compare
 * case-insensitively, newest first). ROLLBACK TO keeps the savepoint,
 * RELEASE removes it and every newer one. 0 ok; -1 no such savepoint
 * (nothing changes) or OOM (capture failed). */
int txl_capture_savepoint(struct txl_capture *c, const char *name) MUSTCHECK;
int txl_capture_release(struct txl_capture *c, const char *name);
int txl_capture_rollback_to(struct txl_capture *c, const char *name);

/* At COMMIT, before running it: move the transaction's changes into out
 * (lsn, commit_us, origin are 0: the caller sets them). out->nchanges == 0
 * means a read-only transaction. 0 ok; -1 the capture failed (err says
 * why; everything is dropped): roll the transaction back. */
int txl_capture_take(struct txl_capture *c, struct txl_record *out, char *err, size_t errcap) MUSTCHECK;
/* txl_set_applied_lsn on the capture's connection with a cached
 * statement: the leader calls it inside the transaction, after take and
 * before COMMIT, when the record is not empty. 0 ok, -1 error. */
int txl_capture_store_lsn(struct txl_capture *c, uint64_t lsn, char *err, size_t errcap) MUSTCHECK;
/* At ROLLBACK (and after any error that ended the transaction). */
void txl_capture_reset(struct txl_capture *c);
size_t txl_capture_count(const struct txl_capture *c); /* changes so far */
const char *txl_capture_error(const struct txl_capture *c); /* NULL if fine */

/* ---- apply, undo, applied LSN ----------------------------------------------
 * An applier caches prepared statements per table on one connection (free
 * it before closing the connection). It applies a record in one SQLite
 * transaction with triggers (SQLITE_DBCONFIG_ENABLE_TRIGGER) and foreign
 * keys off, restoring both afterwards; the connection must not be inside
 * a transaction. Rows are written by explicit rowid / primary key with OR
 * ABORT; an UPDATE or DELETE that finds no row is an error (divergence).
 * The record's LSN is stored in _orbit_applied in the same transaction. */
struct txl_applier;

/* 1 when the last batch failed because another connection held SQLite's
 * write lock past the busy timeout (a local REINDEX on a follower, say):
 * the batch was rolled back and can be tried again. */
int txl_applier_busy(const struct txl_applier *a);

int txl_applier_new(sqlite3 *db, struct txl_applier **out) MUSTCHECK;
void txl_applier_free(struct txl_applier *a);
/* Whole record: 0 applied; 1 skipped (the database already holds LSN >=
 * r->lsn, with r->lsn > 0); -1 error (nothing applied, err says why). */
int txl_applier_apply(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap) MUSTCHECK;
/* Incremental form, to keep an event loop responsive with huge records:
 * begin (0 started, 1 skipped, -1 error), then step until it returns 0
 * (committed) or -1 (rolled back); each step applies at most budget
 * changes. r must stay valid until then. abort rolls an open one back. */
int txl_applier_begin(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap) MUSTCHECK;
int txl_applier_step(struct txl_applier *a, size_t budget, char *err, size_t errcap) MUSTCHECK;
void txl_applier_abort(struct txl_applier *a);
/* Batch form, for a replica catching up: consecutive records in one
 * transaction (hot pages are written once per batch, not per record).
 * begin (0, -1); add each record (0 applied, 1 skipped: the database holds
 * its LSN already, -1 error: the whole batch is rolled back); commit stores
 * the newest LSN applied and commits (0, -1: rolled back). abort rolls an
 * open batch back. */
int txl_applier_batch_begin(struct txl_applier *a, char *err, size_t errcap) MUSTCHECK;
int txl_applier_batch_add(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap) MUSTCHECK;
int txl_applier_batch_commit(struct txl_applier *a, char *err, size_t errcap) MUSTCHECK;
/* Revert a captured record (it needs oldv) from its old values, newest
 * change first, and store prev_lsn as the applied LSN. Records with DDL
 * cannot be undone (-1). 0 ok, -1 error (nothing changed). */
int txl_applier_undo(struct txl_applier *a, const struct txl_record *r, uint64_t prev_lsn, char *err,
                     size_t errcap) MUSTCHECK;

/* One-shot forms (a temporary applier). */
int txl_apply(sqlite3 *db, const struct txl_record *r, char *err, size_t errcap) MUSTCHECK;
int txl_undo(sqlite3 *db, const struct txl_record *r, uint64_t prev_lsn, char *err, size_t errcap) MUSTCHECK;

/* _orbit_applied(id INTEGER PRIMARY KEY CHECK (id = 1), lsn INTEGER NOT
 * NULL, committed INTEGER NOT NULL DEFAULT 0). committed = 1 when the
 * cluster is known to have committed lsn: the applier writes it with the
 * records it applies (they come from the log); the leader's own commits
 * store 0 (Raft has not committed them yet) until txl_mark_committed.
 * applied_lsn: 0 ok (*lsn = 0 when the table or row is missing).
 * applied_state also says whether it is known committed (0 for databases
 * made before the column). set_applied_lsn (committed = 0) creates the
 * table, or adds the column, if needed; call it inside the transaction it
 * belongs to (the leader: before COMMIT). mark_committed sets committed
 * if the applied LSN is still lsn. -1 on error. */
int txl_applied_lsn(sqlite3 *db, uint64_t *lsn, char *err, size_t errcap) MUSTCHECK;
int txl_applied_state(sqlite3 *db, uint64_t *lsn, int *committed, char *err, size_t errcap) MUSTCHECK;
int txl_mark_committed(sqlite3 *db, uint64_t lsn, char *err, size_t errcap) MUSTCHECK;
int txl_set_applied_lsn(sqlite3 *db, uint64_t lsn, char *err, size_t errcap) MUSTCHECK;

/* ---- logical checksum --------------------------------------------------------
 * Per user table (rowid, WITHOUT ROWID and FTS shadow tables of schema
 * main; not sqlite_* or _orbit_*): SHA-256 of its column list and its rows
 * in key order (rowid order with the rowid, or PRIMARY KEY order) with a
 * typed value encoding. schema_hex covers the main schema's CREATE
 * statements (tables, indexes, views, triggers); hex covers everything.
 * Runs in one read transaction (or the caller's). */
struct txl_table_sum {
    char *name;
    uint64_t rows;
    char hex[65];
};
struct txl_checksum {
    char hex[65];
    char schema_hex[65];
    size_t ntables;
    struct txl_table_sum *tables; /* sorted by name (binary) */
};
int txl_checksum(sqlite3 *db, struct txl_checksum *out, char *err, size_t errcap) MUSTCHECK;
void txl_checksum_free(struct txl_checksum *c);

#endif
