/* session/session_int.h: types shared by the session's .c files only. */
#ifndef ORBIT_SESSION_INT_H
#define ORBIT_SESSION_INT_H

#include "pgwire.h"
#include "repl.h"
#include "security.h"
#include "session.h"

/* A named or unnamed prepared statement (extended protocol). */
struct ses_prep {
    struct sql_stmt st;  /* translated statement */
    uint32_t *param_oids;
    int nparams;         /* number of parameter types given in Parse */
    uint32_t shape;      /* result columns' names and declared types when parsed */
    int refs;            /* portals using it + 1 while in the map */
    size_t bytes;        /* counted in the session's held_bytes while in its map */
};

/* A portal: a bound statement ready to run or suspended mid-way. */
struct ses_portal {
    struct ses_prep *prep;
    sqlite3_stmt *stmt;  /* checked out of the connection's cache */
    int16_t *rformats;
    int nrformats;
    uint32_t *col_oids;  /* result column types once known */
    int ncols;
    int started;         /* stepped at least once */
    int row_ready;       /* a stepped row not yet sent (from Describe) */
    int done;
    int64_t rows;
    int wrote;           /* statement is not read-only */
    size_t bytes;        /* counted in the session's held_bytes while in its map */
};

/* Settings a session changed with SET (defaults otherwise). */
struct ses_var_mark;
struct ses_var_step;
struct ses_vars {
    struct map m;   /* name -> char* value */
    struct map txn; /* name -> struct ses_var_undo: what the open transaction changed */
    struct ses_var_mark *marks; /* the transaction's open savepoints, innermost last */
    size_t nmarks, cap_marks;
    struct ses_var_step *steps; /* what each SET since the outermost open savepoint replaced */
    size_t nsteps, cap_steps;
    int undoing;                /* ROLLBACK TO is putting values back: not a change to note */
};

#define SES_COPY_MAX_COLS 2000 /* SQLite's default column limit */

struct ses_copy {
    struct sql_stmt st;
    sqlite3_stmt *ins;
    int ncols;
    int64_t rows;
    struct buf line;    /* partial line carried between CopyData messages */
    struct buf fields;  /* parse scratch */
    size_t *offs;
    uint32_t *oids;     /* declared type of each target column */
    int failed;         /* error sent; drop the rest */
    int began;          /* we opened the transaction for the COPY */
    int extended;       /* started from the extended protocol */
    int eod;            /* saw \. */
};

/* A simple query being executed (resumable after a write-token wait). */
struct ses_query {
    char *text;
    struct sql_span *spans;
    size_t n;
    size_t next; /* next statement to run */
};

/* startup.c */
void ses_pump(struct session *s);
/* How much of p (complete messages) forms the next job: 1 with *end set
 * when it ends at a message the client waits on (or fills a batch), 0
 * when more input is needed (*end: the complete messages so far), -1 on
 * a bad length. */
int ses_scan_batch(const char *p, size_t avail, uint32_t maxlen, size_t *end);
void ses_params_status(struct session *s, struct buf *b);

/* run.c (worker) */
void ses_send_error(struct session *s, const char *sqlstate, const char *msg, const char *detail,
                    const char *hint);
void ses_send_sqlite_error(struct session *s, sqlite3 *db, int rc);
void ses_maybe_flush(struct session *s);
/* Append ReadyForQuery with the transaction status. */
void ses_ready(struct session *s);
/* Before output leaves: wait until the commits it may show are durable. */
void ses_wait_visible(struct session *s);
int ses_txn_begin(struct session *s, int read_only);
int ses_txn_end(struct session *s, int commit);
int ses_after_statement(struct session *s, int ok);
/* Around a statement that may write (change capture): begin -1 = error
 * sent; end -1 = the capture failed (error sent), roll back. */
int ses_stmt_begin(struct session *s, sqlite3_stmt *st);
int ses_stmt_end(struct session *s, int ok);
int ses_needs_write(struct session *s, sqlite3_stmt *st, int *wait);
void ses_portals_clear(struct session *s);
void ses_prepared_clear(struct session *s);
/* Remove the named prepared statement (NULL when there is none). */
struct ses_prep *ses_prepared_take(struct session *s, const char *name);
void ses_portal_free(struct session *s, struct ses_portal *p);
void ses_prep_unref(struct ses_prep *p);
/* Run one translated statement of the simple protocol. Returns 0 done,
 * 1 wait for the write token, -1 error (already reported). */
int ses_exec_simple_stmt(struct session *s, struct sql_stmt *st);
int ses_exec_utility(struct session *s, struct sql_stmt *st, int extended);
void ses_describe_columns(struct session *s, sqlite3_stmt *st, const int16_t *formats, int nformats,
                          int have_row, uint32_t **oids_out);
int ses_send_rows(struct session *s, sqlite3_stmt *st, const uint32_t *oids, const int16_t *formats, int nformats,
                  int64_t max, int64_t *count, int *pending);
void ses_query_continue(struct session *s);
void ses_query_continue_abort(struct session *s);
/* Drop a simple query in progress (one a COPY interrupted). */
void ses_query_free(struct session *s);
const char *ses_tag(struct sql_stmt *st, int64_t changes, int64_t rows, char *buf, size_t cap);

/* extended.c (worker) */
int ses_handle_extended(struct session *s, char type, const char *p, size_t len);

/* copy.c (worker) */
int ses_copy_from_start(struct session *s, struct sql_stmt *st, int extended);
int ses_copy_to(struct session *s, struct sql_stmt *st);
void ses_copy_data(struct session *s, const char *p, size_t len);
void ses_copy_done(struct session *s);
void ses_copy_fail(struct session *s, const char *msg);
void ses_copy_unexpected(struct session *s, char type);
void ses_copy_free(struct session *s);

/* vars.c */
int ses_set_var(struct session *s, const char *name, const char *value, int local, char *sqlstate, char *err,
                size_t errcap);
int ses_show_var(struct session *s, const char *name);
/* SHOW name's RowDescription: the column is named as PostgreSQL spells the
 * setting (TimeZone, DateStyle); SHOW ALL has name, setting, description. */
void ses_show_describe(struct session *s, const char *name);
void ses_vars_free(struct session *s);
/* The transaction ended: SET LOCAL values, and every SET of a transaction
 * that did not commit, go back to what they were before it. */
void ses_vars_end_txn(struct session *s, int committed);
/* SAVEPOINT, RELEASE or ROLLBACK TO (kind) name succeeded: ROLLBACK TO
 * puts back the settings as they were at the savepoint. 0, or -1 out of
 * memory. */
int ses_vars_savepoint(struct session *s, int kind, const char *name);
int ses_vars_reset_all(struct session *s, char *sqlstate, char *err, size_t errcap);
/* Has the session SET default_transaction_read_only on? (A follower's
 * default "on" is left to the cluster's write check and its hint.) */
int ses_default_read_only(struct session *s);
uint64_t ses_var_ms(struct session *s, const char *name);

#endif
