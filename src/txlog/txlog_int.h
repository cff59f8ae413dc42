/* txlog_int.h: private declarations shared by the txlog module's files:
 * table metadata (meta.c), the capture registry used by apply, small SQL
 * helpers and the statement tokenizer (classify.c). */
#ifndef ORBIT_TXLOG_INT_H
#define ORBIT_TXLOG_INT_H

#include "txlog.h"

#include <stdarg.h>

/* ---- table metadata (meta.c) ---------------------------------------------
 * What capture, apply and checksum need to know about a table of schema
 * main. "Captured columns" are the non-generated ones, in table order. */
struct txl_meta {
    char *name;
    int keyed;          /* WITHOUT ROWID */
    int shadow;         /* a virtual table's shadow table */
    int nall;           /* all columns, generated ones included */
    int ncap;           /* captured columns */
    char **names;       /* ncap column names */
    int *pu_tab;        /* ncap: preupdate index when values come in table order */
    int *pu_sto;        /* ncap: preupdate index when they come in storage order */
    int npk;            /* keyed: primary key columns */
    int *pk;            /* npk: captured-column index of each key column, key order */
    const char *rowid;  /* rowid tables: an unshadowed name for the rowid, or NULL */
    int ipk;            /* rowid tables: captured index of the INTEGER PRIMARY KEY, or -1 */
    int has_virtual;    /* has VIRTUAL generated columns */
};

/* 0 ok; 1 no such table (or not an ordinary table of main); -1 error. */
int txl_meta_load(sqlite3 *db, const char *table, struct txl_meta *m, char *err, size_t errcap);
void txl_meta_clear(struct txl_meta *m);
/* 1 when SQLite 3.40's preupdate hook cannot report every column of this
 * table (a VIRTUAL generated column before an INTEGER PRIMARY KEY). */
int txl_meta_unreadable(const struct txl_meta *m);
/* Is this a table whose changes are never captured (sqlite_*, _orbit_*)? */
int txl_internal_table(const char *name);

/* Preupdate column index of captured column k (SQLite 3.40 reports values
 * of tables with VIRTUAL generated columns in storage order for rowid
 * tables, and, for WITHOUT ROWID tables, in table order except an UPDATE's
 * new values; docs/txlog.md). */
int txl_meta_pu_index(const struct txl_meta *m, int op, int is_new, int k);

/* ---- capture registry (capture.c) -----------------------------------------
 * Pause (+1) / resume (-1) every capture attached to db, so that apply and
 * undo are not captured; resume also marks their table metadata stale. */
void txl_capture_pause_db(sqlite3 *db, int delta);

/* CRC32C without the SSE4.2 path (tests compare the two). */
uint32_t txl_crc32c_sw(uint32_t crc, const void *p, size_t n);

/* ---- applied LSN (apply.c) -------------------------------------------------
 * cache: NULL (prepare, use, finalize) or a statement slot kept by the
 * caller (prepared on first use, finalized by the caller). */
int txl_get_lsn_cached(sqlite3 *db, sqlite3_stmt **cache, uint64_t *lsn, char *err, size_t errcap);
int txl_set_lsn_cached(sqlite3 *db, sqlite3_stmt **cache, uint64_t lsn, int committed, char *err, size_t errcap);

/* ---- helpers --------------------------------------------------------------- */
void txl_errf(char *err, size_t errcap, const char *fmt, ...) PRINTF_LIKE(3, 4);
/* Append "name" quoted as an SQL identifier. */
void txl_quote_ident(struct buf *b, const char *name);
/* Run one statement to completion (no rows expected). 0 ok, -1 error. */
int txl_exec(sqlite3 *db, const char *sql, char *err, size_t errcap);
/* Bind a value to parameter i of st. */
int txl_bind_value(sqlite3_stmt *st, int i, const struct txl_value *v);

/* ---- tokenizer (classify.c) ------------------------------------------------ */
enum txl_tok { TXL_TOK_END, TXL_TOK_WORD, TXL_TOK_QUOTED, TXL_TOK_STRING, TXL_TOK_NUMBER, TXL_TOK_PUNCT };
struct txl_lex {
    const char *s;
    size_t pos;      /* next unread byte */
    enum txl_tok tok;
    size_t start, end; /* current token's span */
};
void txl_lex_init(struct txl_lex *l, const char *s);
enum txl_tok txl_lex_next(struct txl_lex *l);
/* Is the current token the keyword kw (case-insensitive)? */
int txl_lex_is(const struct txl_lex *l, const char *kw);

#endif
