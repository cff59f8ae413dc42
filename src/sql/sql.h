/* sql: the SQL layer between PostgreSQL clients and SQLite.
 *   compat.c   - splitting a PostgreSQL query string into statements and
 *                translating each into what Orbit runs (the compatibility
 *                shims live only here; compat_cmd.c holds the non-SQL
 *                commands, compat_int.h is private to the two)
 *   sqlstate.c - SQLite result codes and messages -> SQLSTATE
 *   types.c    - declared column types -> PostgreSQL type OIDs, value
 *                formatting (text and binary) and parameter binding
 *   copyfmt.c  - COPY text and CSV row parsing and formatting
 *   db.c       - opening and configuring SQLite connections
 * Prefix: sql_. */
#ifndef ORBIT_SQL_H
#define ORBIT_SQL_H

#include <sqlite3.h>
#include <stddef.h>
#include <stdint.h>

#include "util.h"

/* ---- statement splitting and translation (compat.c) ------------------- */

/* One statement's span inside a query string (offsets into the original
 * string, without the terminating ';', trimmed of leading and trailing
 * whitespace and comments; whitespace/comment-only spans are not
 * reported). */
struct sql_span {
    size_t off;
    size_t len;
};

/* Split a query string into statements. Understands '...' (with ''
 * escapes), E'...' (backslash escapes), "...", `...`, [...] identifiers,
 * $$...$$ / $tag$...$tag$ dollar quoting, -- and nested / * * / comments,
 * and CREATE TRIGGER ... BEGIN ... END bodies (whose ';' do not split;
 * sqlite3_complete()'s rules, except that a CREATE TRIGGER without BEGIN,
 * PostgreSQL style, ends at its ';'). Bytes are not checked for UTF-8
 * and NUL is an ordinary byte: len is authoritative.
 * On success *spans is an array (util_free it) of *n entries; 0 is
 * returned. Returns -1 on OOM or an unterminated quote/comment (err says
 * which, e.g. "unterminated quoted string at character 8"; answer it with
 * SQLSTATE 42601). An empty or comment-only string gives *n = 0. */
int sql_split(const char *q, size_t len, struct sql_span **spans, size_t *n, char *err, size_t errcap) MUSTCHECK;

enum sql_kind {
    SQL_K_QUERY,       /* statement run by SQLite (SELECT, INSERT, DDL, ...) */
    SQL_K_BEGIN,       /* BEGIN / START TRANSACTION [modes] */
    SQL_K_COMMIT,      /* COMMIT / END [WORK|TRANSACTION] */
    SQL_K_ROLLBACK,    /* ROLLBACK / ABORT [WORK|TRANSACTION] */
    SQL_K_SAVEPOINT,   /* SAVEPOINT name */
    SQL_K_RELEASE,     /* RELEASE [SAVEPOINT] name */
    SQL_K_ROLLBACK_TO, /* ROLLBACK [WORK|TRANSACTION] TO [SAVEPOINT] name */
    SQL_K_SET,         /* SET [SESSION|LOCAL] name {=|TO} value|DEFAULT, SET TIME ZONE x,
                          SET SESSION CHARACTERISTICS AS TRANSACTION ..., SET TRANSACTION ... */
    SQL_K_SHOW,        /* SHOW name | SHOW ALL */
    SQL_K_RESET,       /* RESET name | RESET ALL */
    SQL_K_COPY_FROM,   /* COPY table [(cols)] FROM STDIN [options] */
    SQL_K_COPY_TO,     /* COPY table [(cols)] | (query) TO STDOUT [options] */
    SQL_K_NOOP,        /* accepted and ignored, answered with tag (e.g. VACUUM t, CHECKPOINT,
                          LISTEN/UNLISTEN/NOTIFY, DISCARD ALL handled by caller via tag) */
    SQL_K_DEALLOCATE,  /* DEALLOCATE [PREPARE] name | ALL (name in .name) */
    SQL_K_DISCARD,     /* DISCARD ALL */
};

enum sql_copy_format { SQL_COPY_TEXT, SQL_COPY_CSV, SQL_COPY_BINARY };

/* table and columns are SQLite SQL text usable verbatim (quotes kept as
 * written, a "public." qualifier dropped). All strings are owned by the
 * sql_stmt and freed by sql_stmt_clear(); null_str is always set. */
struct sql_copy {
    char *table;       /* target/source table (NULL for COPY (query) TO) */
    char *columns;     /* "a, b, c" as written, or NULL for all columns */
    char *query;       /* COPY ... TO STDOUT: always set; the translated
                          (query), or "SELECT cols|* FROM table" */
    enum sql_copy_format format;
    char delimiter;    /* default '\t' for text, ',' for csv */
    char quote;        /* csv, default '"' */
    char escape;       /* csv, default same as quote */
    char *null_str;    /* default "\\N" for text, "" for csv */
    int header;        /* csv HEADER */
};

struct sql_stmt {
    enum sql_kind kind;
    /* PostgreSQL command tag base for CommandComplete: "SELECT", "INSERT",
     * "UPDATE", "DELETE", "CREATE TABLE", "DROP TABLE", "BEGIN", "COMMIT",
     * "ROLLBACK", "SAVEPOINT", "RELEASE", "SET", "SHOW", "RESET", "COPY",
     * "TRUNCATE TABLE", "VACUUM", "ALTER TABLE", "CREATE INDEX", ... The
     * caller appends counts for SELECT/INSERT/UPDATE/DELETE/COPY/MERGE. */
    char tag[40];
    /* For SQL_K_QUERY: SQLite SQL to run. May hold several SQLite
     * statements separated by ';' (e.g. a multi-table DROP, a TRUNCATE of
     * several tables); the tag covers them all and the last one's result
     * is the statement's result. $n parameters are rewritten to ?n.
     * For SQL_K_SAVEPOINT/RELEASE/ROLLBACK_TO: SQLite text to run too
     * ("SAVEPOINT x", "RELEASE SAVEPOINT x", "ROLLBACK TO SAVEPOINT x").
     * For SQL_K_BEGIN: "BEGIN", or "BEGIN DEFERRED|IMMEDIATE|EXCLUSIVE"
     * for SQLite's forms; SQL_K_COMMIT/ROLLBACK: "COMMIT"/"ROLLBACK".
     * NULL for the other kinds. */
    char *sql;
    /* SET/SHOW/RESET: lower-cased parameter name ("all" for SHOW/RESET ALL),
     * set_value NULL means DEFAULT. set_local: SET LOCAL. For
     * SET TIME ZONE the name is "timezone". For SET [SESSION
     * CHARACTERISTICS AS] TRANSACTION ... READ ONLY|WRITE the name is
     * "transaction_read_only" / "default_transaction_read_only" and value
     * "on"/"off"; with an ISOLATION LEVEL it is "transaction_isolation" /
     * "default_transaction_isolation" with the level ("serializable",
     * "repeatable read", "read committed", "read uncommitted") as value,
     * and read_only below carries an access mode given alongside.
     * Values: string literals unquoted, numbers as written, identifiers
     * lower-cased, lists joined with ", ".
     * BEGIN: set_value is the ISOLATION LEVEL given (as above) or NULL.
     * SAVEPOINT/RELEASE/ROLLBACK TO and DEALLOCATE: name is the
     * savepoint / prepared statement name ("all" for DEALLOCATE ALL). */
    char *name;
    char *set_value;
    int set_local;
    /* BEGIN and SET TRANSACTION: 1 for READ ONLY, 0 for READ WRITE, -1
     * unspecified (always -1 for other kinds). */
    int read_only;
    struct sql_copy copy; /* COPY only */
    int max_param;        /* highest $n seen */
};

/* Translate one statement (a span from sql_split) into *out, which is
 * overwritten (not freed): sql_stmt_clear() it after success; after an
 * error it is already cleared. On error returns -1 and fills sqlstate (6
 * chars + NUL) and err: 42601 for syntax the shims reject (also for a
 * second statement after a ';': one statement only, a trailing ';' is
 * fine), 0A000 for unsupported features (COPY to/from a file or with an
 * unsupported option, PARTITION BY, ATTACH/DETACH, PREPARE/EXECUTE, DO,
 * DISCARD TEMP, ...), 42P02 for $0, 22021 for a NUL byte (or E'\0'),
 * 22025 for a bad \u escape, 54000 beyond 1 GiB, 53200 out of memory.
 * An empty (or comment-only) statement gives SQL_K_NOOP with tag "".
 * Never recurses; linear in len.
 * The rewrite rules (all token-level, never inside quotes/comments):
 *   $n -> ?n; expr::type -> CAST(expr AS mapped_type) for the common types
 *   (int2/4/8, smallint, integer, bigint, int, real, float4/8, double
 *   precision, numeric/decimal[(p,s)], text, varchar[(n)], char[(n)],
 *   bpchar, bool/boolean, bytea, date, timestamp[tz], json/jsonb,
 *   regclass, name, oid); the identifiers current_user, session_user,
 *   current_role, current_catalog, current_schema (without parentheses)
 *   -> function calls; DROP TABLE [IF EXISTS] a, b [CASCADE|RESTRICT] ->
 *   one DROP per table; TRUNCATE [TABLE] a, b [RESTART IDENTITY|CASCADE]
 *   -> DELETE FROM each (tag "TRUNCATE TABLE"); CREATE TABLE ... WITH
 *   (storage params) and TABLESPACE x -> dropped; VACUUM/ANALYZE variants
 *   -> ANALYZE or no-op (tag "VACUUM"/"ANALYZE"); ALTER TABLE t ADD
 *   [CONSTRAINT c] PRIMARY KEY (cols) -> CREATE UNIQUE INDEX t_pkey ON
 *   t(cols) (tag "ALTER TABLE"); COPY ... WITH (FREEZE [ON]) accepted.
 * More shims, all documented at their code in compat.c / compat_cmd.c:
 *   ::bool / CAST(x AS boolean) -> orbit_bool(x); ::oid -> INTEGER;
 *   unknown types -> TEXT; CAST(x AS t) gets the same type mapping;
 *   E'..' and $$..$$ -> '..'; date|time|timestamp[tz] '..' -> CAST('..'
 *   AS TEXT); ILIKE -> LIKE; COLLATE "C" -> BINARY;
 *   "pg_catalog." before a function call and "public." before a name are
 *   dropped; FROM/UPDATE/JOIN ONLY t -> t; SELECT ... FOR UPDATE/SHARE
 *   [OF ..] [NOWAIT|SKIP LOCKED] -> removed (SQLite serializes writers);
 *   LIMIT ALL -> LIMIT -1; TABLE t -> SELECT * FROM t;
 *   CREATE TABLE: serial/smallserial -> INTEGER, bigserial -> BIGINT, or
 *   INTEGER when the column is the PRIMARY KEY (so it is SQLite's
 *   autoincrementing rowid; a serial that is not the primary key gets no
 *   automatic values), GENERATED ... AS IDENTITY dropped (same rule),
 *   DEFAULT now() -> DEFAULT CURRENT_TIMESTAMP, other non-literal
 *   DEFAULT expressions parenthesized, UNLOGGED / GLOBAL / WITH (..) /
 *   WITH[OUT] OIDS / TABLESPACE / USING / ON COMMIT PRESERVE ROWS
 *   dropped; CREATE TABLE AS -> tag "SELECT";
 *   CREATE INDEX: CONCURRENTLY, ONLY, USING method, INCLUDE (..),
 *   WITH (..), TABLESPACE, NULLS [NOT] DISTINCT dropped; a missing name
 *   becomes t_col_..._idx; CREATE OR REPLACE VIEW -> DROP VIEW IF EXISTS
 *   v; CREATE VIEW ...; ALTER TABLE ADD FOREIGN KEY -> SQL_K_NOOP (SQLite
 *   cannot add constraints: such keys are not enforced), ADD UNIQUE
 *   (cols) -> CREATE UNIQUE INDEX t_cols_key, ADD CHECK -> 0A000;
 *   DROP TRIGGER x ON t -> DROP TRIGGER x; EXPLAIN [ANALYZE|(..)] stmt ->
 *   EXPLAIN QUERY PLAN stmt (nothing is executed); REINDEX TABLE|INDEX x
 *   -> REINDEX x; PRAGMA -> tag "SELECT"; CHECKPOINT, LISTEN, UNLISTEN,
 *   NOTIFY, LOCK, DISCARD PLANS|SEQUENCES -> SQL_K_NOOP.
 * The db layer must provide the SQL functions the output calls:
 * orbit_bool(x) (1/0/NULL from PostgreSQL bool input: t/true/yes/on/1,
 * f/false/no/off/0, any case; NULL stays NULL), current_user(),
 * session_user(), current_role(), current_catalog(), current_schema()
 * and now(). */
int sql_translate(const char *stmt, size_t len, struct sql_stmt *out, char sqlstate[6], char *err,
                  size_t errcap) MUSTCHECK;
void sql_stmt_clear(struct sql_stmt *s);

/* ---- SQLSTATE mapping (sqlstate.c) ------------------------------------- */

/* Map an SQLite extended result code plus its message to a SQLSTATE
 * (5 chars, static string): 23505 unique/primary key, 23502 not null,
 * 23503 foreign key, 23514 check, 42601 syntax, 42P01 no such table,
 * 42703 no such column, 42P07 already exists, 42883 no such function,
 * 40001 busy snapshot/busy, 55P03 locked, 25006 readonly, 57014
 * interrupted, 54000 too big, 53100 disk full, 58030 I/O error, 53200 no
 * memory, 22P02 STRICT-table datatype constraint, 42804 SQLITE_MISMATCH,
 * 08P01 SQLITE_RANGE, 42501 not authorized, 23000 other constraints. A
 * plain SQLITE_ERROR is classified by its message (table in sqlstate.c)
 * and defaults to 42000; XX000 for internal/unknown codes, "00000" for
 * SQLITE_OK/ROW/DONE. msg may be NULL. */
const char *sql_sqlstate(int extended_code, const char *msg);

/* ---- types (types.c) ----------------------------------------------------- */

#define SQL_OID_BOOL 16
#define SQL_OID_BYTEA 17
#define SQL_OID_NAME 19
#define SQL_OID_INT8 20
#define SQL_OID_INT2 21
#define SQL_OID_INT4 23
#define SQL_OID_TEXT 25
#define SQL_OID_OID 26
#define SQL_OID_JSON 114
#define SQL_OID_FLOAT4 700
#define SQL_OID_FLOAT8 701
#define SQL_OID_UNKNOWN 705
#define SQL_OID_BPCHAR 1042
#define SQL_OID_VARCHAR 1043
#define SQL_OID_DATE 1082
#define SQL_OID_TIME 1083
#define SQL_OID_TIMESTAMP 1114
#define SQL_OID_TIMESTAMPTZ 1184
#define SQL_OID_NUMERIC 1700
#define SQL_OID_UUID 2950
#define SQL_OID_JSONB 3802

/* Declared column type (sqlite3_column_decltype, may be NULL) -> OID, or 0
 * when there is no declared type. Rules (case-insensitive, first match):
 * bigint/int8 -> int8; smallint/int2 -> int2; int/integer/int4 -> int4;
 * any other name containing "INT" -> int8; real/double/double precision/
 * float/float8 -> float8 (SQLite REAL is 8 bytes); float4 -> float4;
 * text/clob -> text; varchar/character varying/nvarchar -> varchar;
 * char/character/bpchar/nchar -> bpchar; blob/bytea -> bytea; bool/boolean
 * -> bool; numeric/decimal -> numeric; timestamptz/timestamp with time
 * zone -> timestamptz; timestamp -> timestamp; date -> date; time -> time;
 * json -> json; jsonb -> jsonb; oid -> oid; name -> name; serial/
 * bigserial/smallserial -> int4/int8/int2; interval, point and arrays
 * (a "[" in the name) -> text (checked before the "INT" rule); anything
 * else -> text. A length or precision suffix like varchar(20) or
 * numeric(10,2) is ignored; whitespace runs count as one space. */
uint32_t sql_decltype_oid(const char *decltype);
/* OID for a value with no declared type, from its storage class
 * (SQLITE_INTEGER -> int8, SQLITE_FLOAT -> float8, SQLITE_TEXT/NULL ->
 * text, SQLITE_BLOB -> bytea). */
uint32_t sql_value_oid(int sqlite_type);
/* Type size for RowDescription (-1 for varlena). */
int16_t sql_oid_typlen(uint32_t oid);
/* Name of a type OID ("int8"), for error messages. */
const char *sql_oid_name(uint32_t oid);

/* Append one DataRow field for column col of a stepped statement: int32
 * length (-1 for NULL) then the bytes. format 0 = text, 1 = binary.
 * Text follows PostgreSQL output: bool 't'/'f' for an integer in a bool
 * column, floats in shortest round-trip form with Infinity/-Infinity/NaN,
 * bytea as \x hex; a blob in a text column is sent as its bytes. Binary
 * is supported for bool, int2, int4, int8, float4, float8, text, varchar,
 * bpchar, name, json, jsonb (with its version byte), bytea; numeric, date,
 * time and timestamp in binary give SQLSTATE 0A000. Returns 0, or -1 with err filled (SQLSTATE
 * 0A000 or 22003 for out-of-range int2/int4 binary). Details: a float4
 * column prints float precision, a REAL in a numeric column prints
 * without exponent; text 't'/'yes'/'off'/... in a bool column prints
 * t/f; text or numbers in a bytea column print as \x hex of their text;
 * oid in binary is 4 bytes; binary ints/floats parse a text value (22P02
 * if it is not a number); oid 0 is treated as text. On error nothing is
 * appended to out. A buffer OOM is left to the caller's buf_ok(). */
int sql_put_field(struct buf *out, sqlite3_stmt *st, int col, uint32_t oid, int format, char sqlstate[6],
                  char *err, size_t errcap) MUSTCHECK;

/* Bind parameter idx (1-based) from a Bind message value. oid is the type
 * the client declared in Parse (0 = unspecified). data == NULL means NULL.
 * Text format: int/bool/float OIDs are parsed and bound as numbers (error
 * 22P02 on bad input), bytea text (\x hex or escape format) as a blob,
 * others as text. Binary format: bool, int2/4/8, float4/8, text/varchar/
 * bpchar/name/json, bytea; other binary types -> 0A000. Unspecified OID
 * in binary format -> bound as blob. Returns 0 or -1 with err filled.
 * Details: text ints (int2/int4/int8/oid) must be decimal with optional
 * sign and surrounding whitespace (22P02, range 22003); floats take what
 * strtod takes incl. Infinity/NaN (22003 out of range); bool takes
 * PostgreSQL's spellings and unique prefixes, bound as 1/0; numeric is
 * bound as int64 when it is an integer in range, else checked (22P02)
 * and bound as trimmed text; NaN floats are bound as the text 'NaN'
 * (SQLite would store a NaN double as NULL). Binary values of the wrong
 * size give 22P03 "incorrect binary data format in bind parameter N"
 * (PostgreSQL's code); jsonb binary needs version byte 1. A bad idx gives
 * 08P01. len < 0 is NULL too. */
int sql_bind_param(sqlite3_stmt *st, int idx, uint32_t oid, int format, const char *data, int32_t len,
                   char sqlstate[6], char *err, size_t errcap) MUSTCHECK;

/* ---- COPY formats (copyfmt.c) ------------------------------------------ */

/* Parse one input line (without its newline) of COPY text or CSV format
 * into fields. Text format: fields split on delimiter, backslash escapes
 * (\b \f \n \r \t \v \\ \NNN octal \xHH) decoded, a field equal to
 * null_str (compared before decoding) is NULL. CSV: quote/escape rules of
 * PostgreSQL, unquoted field equal to null_str is NULL. Fields are
 * written into *storage (reset by the caller) as NUL-terminated strings;
 * fields[i] gets an offset into storage->data or SIZE_MAX for NULL.
 * Returns the number of fields, or -1 on malformed input (err filled):
 * more than maxfields fields ("extra data after last expected column";
 * fewer fields are the caller's "missing data" check), an unterminated
 * CSV quote, a NUL byte, out of memory. Not handled here (the caller's
 * job): the end-of-data line "\." and, for CSV HEADER, skipping the
 * first line. A text-format line "" is one empty field.
 * Values may contain newlines (CSV inside quotes, text format after a
 * backslash): sql_copy_csv_complete() tells whether a line so far is a
 * whole row (CSV: quotes balanced; text: no unpaired trailing backslash);
 * if not, the caller appends "\n" and the next line and asks again. */
int sql_copy_parse_line(const struct sql_copy *c, const char *line, size_t len, struct buf *storage,
                        size_t *fields, int maxfields, char *err, size_t errcap);
int sql_copy_csv_complete(const struct sql_copy *c, const char *line, size_t len);
/* Append one row of column values of a stepped statement (all columns) in
 * COPY text/CSV format, including the trailing newline. Values are
 * formatted like text-format DataRow fields (declared type decides: bool
 * t/f, bytea \x hex, shortest floats), then escaped (text: \\ \n \r \t
 * \b \f \v and the delimiter) or quoted (CSV: values containing the
 * delimiter, quote, CR or LF, or equal to null_str; quote and escape
 * characters doubled with the escape char). NULL is null_str. On SQLite
 * out-of-memory out is put in its oom state. Binary COPY is not handled. */
void sql_copy_format_row(const struct sql_copy *c, sqlite3_stmt *st, struct buf *out);
/* Append the HEADER line (column names, escaped/quoted like values, and a
 * newline) for COPY ... TO with HEADER. */
void sql_copy_format_header(const struct sql_copy *c, sqlite3_stmt *st, struct buf *out);

/* ---- connections (db.c) -------------------------------------------------- */

/* What the SQL functions and the progress handler of a connection see of
 * the session using it; the session layer fills it while it holds the
 * connection (only one thread uses a connection at a time). */
struct sql_fnctx {
    void *session;
    const char *user;
    const char *database;
    uint32_t pid;
    int superuser;
    /* current_setting(name): value or NULL for unknown */
    const char *(*setting)(void *session, const char *name);
    volatile int *cancel;   /* nonzero: interrupt (cancel request) */
    uint64_t deadline_ns;   /* statement_timeout deadline, 0 = none */
    int interrupt_reason;   /* set when interrupted: 1 cancel, 2 timeout */
    int internal;           /* 1: catalog access allowed (server's own use) */
};

enum { SQL_INTR_NONE = 0, SQL_INTR_CANCEL = 1, SQL_INTR_TIMEOUT = 2 };

/* Open and configure a connection to the database file: WAL,
 * synchronous=FULL, foreign_keys=ON, a busy timeout as a safety net, the
 * PostgreSQL-compatible functions (version(), current_user(),
 * current_database(), current_schema(), pg_is_in_recovery(),
 * pg_backend_pid(), now(), pg_sleep(), current_setting(), orbit_bool()),
 * a progress handler that honours fn->cancel and fn->deadline_ns, and an
 * authorizer that hides the internal _orbit_* catalog tables and refuses
 * ATTACH/DETACH and dangerous pragmas unless fn->internal. fn must stay
 * valid as long as the connection. Returns 0 or -1 with err filled. */
/* Process-wide SQLite settings: call first, before any connection. */
void sql_global_init(void);
int sql_db_open(const char *path, struct sql_fnctx *fn, sqlite3 **out, char *err, size_t errcap) MUSTCHECK;

/* PostgreSQL name and type for a result column without a declared type:
 * "count(*)" -> "count" (int8), "pg_is_in_recovery()" -> bool, an
 * expression that is not an identifier -> "?column?". *oid is 0 when the
 * type should come from the value. */
const char *sql_column_pgname(const char *sqlite_name, char *buf, size_t cap, uint32_t *oid);

#endif
