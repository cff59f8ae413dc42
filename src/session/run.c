/* session/run.c: the worker-thread half of a session. ses_run executes a
 * job (a batch of complete messages) on a pooled connection: the simple
 * query protocol, transaction control, result rows, errors. A job that
 * needs the write token while another session holds it returns
 * EXE_WAIT_WRITE and resumes at the same message and statement. */
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "session_int.h"

#define FLUSH_BYTES (256u * 1024)

static struct session *of_task(struct exe_task *t)
{
    return (struct session *)((char *)t - offsetof(struct session, task));
}

static sqlite3 *db_of(struct session *s)
{
    return s->task.conn->db;
}

void ses_ready(struct session *s)
{
    pgw_ready(&s->out, s->txn == 'X' ? 'I' : s->txn);
    s->ready_sent = 1;
}

void ses_maybe_flush(struct session *s)
{
    if (s->out.len < FLUSH_BYTES)
        return;
    if (s->closing) {
        buf_reset(&s->out);
        return;
    }
    ses_wait_visible(s);
    size_t len;
    char *d = buf_steal(&s->out, &len);
    net_post(s, d, len, 0);
}

/* The write-token holder waits too: inside its transaction it reads the
 * commits before it, which may still be on their way to Raft, and what it
 * sends its client must not show a commit that a crash could still undo
 * (the wait is for records already posted, never for its own). */
void ses_wait_visible(struct session *s)
{
    if (s->srv->repl && !s->closing)
        rpl_wait_visible(s->srv->repl, s->srv->pool);
}

void ses_send_error(struct session *s, const char *sqlstate, const char *msg, const char *detail, const char *hint)
{
    pgw_error(&s->out, 'E', "ERROR", sqlstate, msg, detail, hint);
    if (s->txn == 'T')
        s->txn = 'E';
}

static void send_notice(struct session *s, const char *severity, const char *sqlstate, const char *msg)
{
    pgw_error(&s->out, 'N', severity, sqlstate, msg, NULL, NULL);
}

void ses_send_sqlite_error(struct session *s, sqlite3 *db, int rc)
{
    int code = sqlite3_extended_errcode(db);
    const char *msg = sqlite3_errmsg(db);
    if ((rc & 0xff) == SQLITE_INTERRUPT || (code & 0xff) == SQLITE_INTERRUPT) {
        int why = s->task.conn ? s->task.conn->fn.interrupt_reason : SQL_INTR_CANCEL;
        ses_send_error(s, "57014",
                       why == SQL_INTR_TIMEOUT ? "canceling statement due to statement timeout"
                                               : "canceling statement due to user request",
                       NULL, NULL);
        return;
    }
    if ((rc & 0xff) == SQLITE_AUTH || (code & 0xff) == SQLITE_AUTH) {
        ses_send_error(s, "42501", "permission denied: internal catalog tables, ATTACH and this PRAGMA are reserved",
                       msg, NULL);
        return;
    }
    if (code == SQLITE_OK)
        code = rc;
    const char *state = sql_sqlstate(code, msg);
    if (strcmp(state, "40001") == 0) /* rare by design (the write token): worth a line */
        log_info("serialization_failure", "pid=%u sqlite_code=%d txn=%c msg=\"%s\"", s->pid, code, s->txn, msg);
    ses_send_error(s, state, msg, NULL, NULL);
}

/* ---- transactions ---- */

static int run_sql(struct session *s, const char *sql)
{
    sqlite3_stmt *st;
    int rc = exe_prepare(s->task.conn, sql, -1, &st, NULL);
    if (rc == SQLITE_OK) {
        rc = sqlite3_step(st);
        if (rc == SQLITE_DONE || rc == SQLITE_ROW)
            rc = SQLITE_OK;
        else
            rc = sqlite3_errcode(db_of(s));
        exe_finish(s->task.conn, st);
    }
    return rc;
}

int ses_txn_begin(struct session *s, int read_only)
{
    if (s->auto_txn) {
        s->auto_txn = 0; /* the statement's own transaction becomes the block */
    } else {
        int rc = run_sql(s, "BEGIN");
        if (rc != SQLITE_OK) {
            ses_send_sqlite_error(s, db_of(s), rc);
            return -1;
        }
    }
    s->txn = 'T';
    s->read_fenced = 0;
    const char *d = ses_get_var(s, "default_transaction_read_only");
    s->txn_read_only = read_only == 1 || (read_only == -1 && d && strcmp(d, "on") == 0);
    return 0;
}

static void rollback(struct session *s)
{
    if (!sqlite3_get_autocommit(db_of(s)))
        run_sql(s, "ROLLBACK");
    if (s->task.conn->cap)
        txl_capture_reset(s->task.conn->cap);
}

/* A commit answered from the cluster loop: the job ends without waiting
 * (no worker thread and no pooled connection sit idle through the fsync),
 * its output is handed over, and the second of the two parties (job end,
 * Raft's verdict) posts it — or, when the commit failed, what precedes the
 * commit's CommandComplete followed by the error and ReadyForQuery. */
struct ses_defer {
    struct rpl_wait w; /* first member */
    struct session *s;
    atomic_int parties;
    char *out;
    size_t len, mark;
};

static void defer_deliver(struct ses_defer *d)
{
    struct session *s = d->s;
    if (d->w.status && d->out) {
        char state[6], msg[300];
        struct buf b;
        rpl_status_error(d->w.status, state, msg, sizeof msg);
        buf_init(&b);
        buf_append(&b, d->out, d->mark <= d->len ? d->mark : d->len);
        pgw_error(&b, 'E', "ERROR", state, msg, NULL, NULL);
        pgw_ready(&b, 'I');
        util_free(d->out);
        d->out = NULL;
        d->len = 0;
        if (buf_ok(&b))
            d->out = buf_steal(&b, &d->len);
        else
            buf_free(&b);
    }
    net_post(s, d->out, d->len, 1);
    util_free(d);
}

static void defer_done(struct rpl_wait *w)
{
    struct ses_defer *d = (struct ses_defer *)w;
    if (atomic_fetch_add(&d->parties, 1) == 1)
        defer_deliver(d);
}

/* May the commit being made be answered after the job ends? Only when
 * nothing after it in this job depends on its outcome: the last statement
 * of a simple Query with no message after it, or an Execute followed only
 * by Sync. */
static int can_defer(struct session *s)
{
    if (s->copy_in || s->closing || s->terminate || s->implicit_txn)
        return 0;
    size_t off = s->cur_end;
    int syncs = 0;
    while (off < s->jin.len) {
        char type;
        const char *p;
        size_t plen, total;
        if (pgw_frame(s->jin.data + off, s->jin.len - off, PGW_MAX_MESSAGE, &type, &p, &plen, &total) <= 0 ||
            type != 'S')
            return 0;
        syncs++;
        off += total;
    }
    if (s->cur_type == 'Q')
        return syncs == 0 && (!s->query || s->query->next + 1 >= s->query->n);
    return s->cur_type == 'E' && syncs > 0;
}

/* Commit the open SQLite transaction. With a txlog (s->srv->repl) the
 * record goes to Raft, and the client hears of the commit only once Raft
 * has it: the worker waits (write token released), or, when nothing else
 * in the job depends on it, the answer is deferred (struct ses_defer).
 * mark: where the commit's CommandComplete starts in s->out.
 * 0 ok (or deferred); -1 error sent. */
static int commit(struct session *s, size_t mark)
{
    sqlite3 *db = db_of(s);
    char state[6], msg[400];
    msg[0] = 0;
    if (!s->srv->repl || !s->task.conn->cap) {
        int rc = run_sql(s, "COMMIT");
        if (rc != SQLITE_OK) {
            ses_send_sqlite_error(s, db, rc);
            rollback(s);
            return -1;
        }
        return 0;
    }
    struct ses_defer *d = !s->defer && can_defer(s) ? util_calloc(1, sizeof *d) : NULL;
    struct rpl_wait w;
    memset(&w, 0, sizeof w);
    if (d) {
        d->s = s;
        d->mark = mark;
        d->w.done = defer_done;
    }
    int rc = rpl_commit(s->srv->repl, s->task.conn, d ? &d->w : &w, state, msg, sizeof msg);
    if (rc <= 0)
        util_free(d);
    if (rc < 0) {
        ses_send_error(s, state, msg, NULL, NULL);
        return -1;
    }
    if (rc == 0)
        return 0;
    exe_write_release(s->srv->pool, &s->task);
    if (d) {
        s->defer = d;
        return 0;
    }
    exe_block_begin(s->srv->pool);
    rc = rpl_wait(s->srv->repl, &w, state, msg, sizeof msg);
    exe_block_end(s->srv->pool);
    if (rc) {
        ses_send_error(s, state, msg, NULL, NULL);
        return -1;
    }
    return 0;
}

/* End the transaction block: commit (0 ok, -1 error reported: the
 * transaction is then rolled back) or roll back. */
int ses_txn_end(struct session *s, int commit_it)
{
    sqlite3 *db = db_of(s);
    int ret = 0;
    ses_portals_clear(s);
    if (!sqlite3_get_autocommit(db)) {
        if (commit_it) {
            s->txn = 'I';
            ret = commit(s, s->out.len);
        } else {
            rollback(s);
        }
    } else if (s->task.conn->cap) {
        txl_capture_reset(s->task.conn->cap);
    }
    s->txn = 'I';
    s->implicit_txn = 0;
    s->auto_txn = 0;
    ses_vars_end_txn(s, commit_it && ret == 0);
    exe_write_release(s->srv->pool, &s->task);
    return ret;
}

/* Called after each statement outside a transaction block: ends the
 * statement's own write transaction (commit when ok). 0, or -1 when the
 * commit failed: the statement's CommandComplete is replaced by the
 * error. */
int ses_after_statement(struct session *s, int ok)
{
    int ret = 0;
    if (s->auto_txn) {
        s->auto_txn = 0;
        if (ok) {
            size_t mark = s->cc_mark;
            struct buf err;
            buf_init(&err);
            struct buf keep = s->out;
            s->out = err;
            ret = commit(s, mark);
            err = s->out;
            s->out = keep;
            if (ret) {
                if (mark <= s->out.len)
                    s->out.len = mark; /* drop the CommandComplete */
                buf_append(&s->out, err.data, err.len);
            }
            buf_free(&err);
        } else {
            rollback(s);
        }
    }
    if (s->txn == 'I' && !s->implicit_txn)
        exe_write_release(s->srv->pool, &s->task);
    return ret;
}

/* Around one SQLite statement that may write: mirror it in the capture
 * (DDL as text, other statements as row changes). */
static int stmt_begin(struct session *s, sqlite3_stmt *st)
{
    struct txl_capture *cap = s->task.conn->cap;
    s->cap_kind = -1;
    if (!cap || sqlite3_stmt_readonly(st))
        return 0;
    enum txl_kind k = txl_classify(sqlite3_sql(st));
    if (k == TXL_KIND_DDL) {
        if (txl_capture_ddl_begin(cap, sqlite3_sql(st))) {
            ses_send_error(s, "XX000", txl_capture_error(cap) ? txl_capture_error(cap) : "out of memory", NULL, NULL);
            return -1;
        }
    } else if (k == TXL_KIND_DML || k == TXL_KIND_CTAS) {
        txl_capture_stmt_begin(cap);
    } else {
        return 0;
    }
    s->cap_kind = (int)k;
    return 0;
}

/* 0, or -1 when the capture failed (error sent): the transaction cannot
 * be replicated and must roll back. ddl_recorded gets ddl_end's result. */
static int stmt_end(struct session *s, int ok, int *ddl_recorded)
{
    struct txl_capture *cap = s->task.conn->cap;
    int k = s->cap_kind, rc = 0;
    s->cap_kind = -1;
    if (k < 0 || !cap)
        return 0;
    if (k == TXL_KIND_DDL) {
        rc = txl_capture_ddl_end(cap, ok);
        if (ddl_recorded)
            *ddl_recorded = rc == 1;
        rc = rc < 0 ? -1 : 0;
    } else {
        rc = txl_capture_stmt_end(cap, ok);
    }
    if (rc < 0 && ok)
        ses_send_error(s, "XX000", txl_capture_error(cap) ? txl_capture_error(cap) : "change capture failed", NULL,
                       "The transaction could not be recorded for replication and was not committed.");
    return rc;
}

int ses_stmt_begin(struct session *s, sqlite3_stmt *st)
{
    return stmt_begin(s, st);
}

int ses_stmt_end(struct session *s, int ok)
{
    return stmt_end(s, ok, NULL);
}

/* Does st need the write token? Returns 0 to go on, 1 to wait, -1 error. */
/* orbit.read_consistency = linearizable: a statement outside a block, and
 * the first of a block, wait for the leader's read index first. */
static int read_fence(struct session *s)
{
    if (s->srv->repl && !s->read_linearizable)
        rpl_leader_catch_up(s->srv->repl, s->srv->pool);
    if (!s->read_linearizable || !s->srv->repl || (s->txn == 'T' && s->read_fenced))
        return 0;
    char state[6], msg[300];
    if (rpl_read_fence(s->srv->repl, s->srv->pool, state, msg, sizeof msg)) {
        ses_send_error(s, state, msg, NULL, "Retry, or use orbit.read_consistency = local.");
        return -1;
    }
    s->read_fenced = s->txn == 'T';
    return 0;
}

int ses_needs_write(struct session *s, sqlite3_stmt *st, int *unused)
{
    if (sqlite3_stmt_readonly(st))
        return read_fence(s); /* writes go through the leader: linearizable anyway */
    if (s->task.flags & EXE_F_WAIT_ABORTED) {
        s->task.flags &= ~EXE_F_WAIT_ABORTED;
        int timeout = !s->cancel && s->deadline_ns && util_now_ns() >= s->deadline_ns;
        ses_send_error(s, "57014",
                       timeout ? "canceling statement due to statement timeout"
                               : "canceling statement due to user request",
                       NULL, NULL);
        return -1;
    }
    if (s->txn_read_only || (s->txn == 'I' && ses_default_read_only(s))) {
        ses_send_error(s, "25006", "cannot execute this statement in a read-only transaction", NULL, NULL);
        return -1;
    }
    struct txl_capture *cap = s->task.conn->cap;
    enum txl_kind k = cap ? txl_classify(sqlite3_sql(st)) : TXL_KIND_DML;
    if (k == TXL_KIND_REFUSE) {
        ses_send_error(s, "0A000", "VACUUM is not supported: it renumbers rowids and would break replication",
                       NULL, "Use VACUUM INTO 'file' for a compacted copy.");
        return -1;
    }
    if (s->srv->repl && k != TXL_KIND_LOCAL) {
        char state[6], msg[300], hint[200];
        if (rpl_write_check(s->srv->repl, state, msg, sizeof msg, hint, sizeof hint)) {
            ses_send_error(s, state, msg, NULL, hint[0] ? hint : NULL);
            return -1;
        }
    }
    if (!exe_write_try(s->srv->pool, &s->task))
        return 1;
    if (cap && k != TXL_KIND_LOCAL && sqlite3_get_autocommit(db_of(s))) {
        /* an autocommit statement gets its own transaction, so that its
         * record and applied LSN commit with it */
        int rc = run_sql(s, "BEGIN");
        if (rc != SQLITE_OK) {
            ses_send_sqlite_error(s, db_of(s), rc);
            return -1;
        }
        s->auto_txn = 1;
    }
    return 0;
}

int ses_should_abort(struct exe_task *t, uint64_t now)
{
    struct session *s = of_task(t);
    return s->cancel || s->closing || (s->deadline_ns && now >= s->deadline_ns);
}

static void start_deadline(struct session *s)
{
    uint64_t ms = ses_var_ms(s, "statement_timeout");
    s->deadline_ns = ms ? util_now_ns() + ms * 1000000ULL : 0;
    s->task.conn->fn.deadline_ns = s->deadline_ns;
    s->task.conn->fn.interrupt_reason = 0;
}

/* ---- results ---- */

void ses_describe_columns(struct session *s, sqlite3_stmt *st, const int16_t *formats, int nformats, int have_row,
                          uint32_t **oids_out)
{
    int n = sqlite3_column_count(st);
    struct pgw_field fstack[32];
    char names[32][64];
    struct pgw_field *f = n <= 32 ? fstack : util_calloc((size_t)n, sizeof *f);
    char(*nb)[64] = n <= 32 ? names : util_calloc((size_t)n, 64);
    uint32_t *oids = util_calloc((size_t)(n ? n : 1), sizeof *oids);
    if (!f || !nb || !oids) {
        if (f != fstack)
            util_free(f);
        if (nb != names)
            util_free(nb);
        util_free(oids);
        *oids_out = NULL;
        s->out.oom = 1;
        return;
    }
    for (int i = 0; i < n; i++) {
        const char *decl = sqlite3_column_decltype(st, i);
        const char *name = sqlite3_column_name(st, i);
        uint32_t oid = decl ? sql_decltype_oid(decl) : 0;
        if (!decl) {
            uint32_t fo = 0;
            name = sql_column_pgname(name, nb[i], sizeof nb[i], &fo);
            oid = fo;
        }
        if (!oid)
            oid = have_row ? sql_value_oid(sqlite3_column_type(st, i)) : SQL_OID_TEXT;
        oids[i] = oid;
        f[i].name = name ? name : "?column?";
        f[i].table_oid = 0;
        f[i].attnum = 0;
        f[i].type_oid = oid;
        f[i].typlen = sql_oid_typlen(oid);
        f[i].typmod = -1;
        f[i].format = nformats == 0 ? 0 : nformats == 1 ? formats[0] : i < nformats ? formats[i] : 0;
    }
    pgw_row_description(&s->out, f, n);
    if (f != fstack)
        util_free(f);
    if (nb != names)
        util_free(nb);
    *oids_out = oids;
}

/* Append a DataRow for the current row. Returns 0 or -1 (error sent). */
static int put_row(struct session *s, sqlite3_stmt *st, const uint32_t *oids, const int16_t *formats, int nformats)
{
    int n = sqlite3_column_count(st);
    size_t start = s->out.len;
    size_t o = pgw_begin(&s->out, 'D');
    buf_put_u16(&s->out, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        int fmt = nformats == 0 ? 0 : nformats == 1 ? formats[0] : i < nformats ? formats[i] : 0;
        char state[6], err[200];
        if (sql_put_field(&s->out, st, i, oids[i], fmt, state, err, sizeof err)) {
            s->out.len = start;
            ses_send_error(s, state, err, NULL, NULL);
            return -1;
        }
    }
    pgw_end(&s->out, o);
    return 0;
}

/* Step st and send rows until done or max rows (0 = all). The first row
 * may already be stepped (pending). Returns SQLITE_DONE, SQLITE_ROW (max
 * reached, more may follow) or an error code (error already sent). */
int ses_send_rows(struct session *s, sqlite3_stmt *st, const uint32_t *oids, const int16_t *formats, int nformats,
                  int64_t max, int64_t *count, int *pending)
{
    int rc;
    for (;;) {
        if (max && *count >= max)
            return SQLITE_ROW;
        if (*pending) {
            *pending = 0;
            rc = SQLITE_ROW;
        } else {
            rc = sqlite3_step(st);
        }
        if (rc == SQLITE_DONE)
            return rc;
        if (rc != SQLITE_ROW) {
            ses_send_sqlite_error(s, db_of(s), rc);
            return rc;
        }
        if (put_row(s, st, oids, formats, nformats))
            return SQLITE_ERROR;
        (*count)++;
        ses_maybe_flush(s);
    }
}

const char *ses_tag(struct sql_stmt *st, int64_t changes, int64_t rows, char *buf, size_t cap)
{
    if (strcmp(st->tag, "SELECT") == 0)
        snprintf(buf, cap, "SELECT %lld", (long long)rows);
    else if (strcmp(st->tag, "INSERT") == 0)
        snprintf(buf, cap, "INSERT 0 %lld", (long long)changes);
    else if (strcmp(st->tag, "UPDATE") == 0 || strcmp(st->tag, "DELETE") == 0 || strcmp(st->tag, "MERGE") == 0)
        snprintf(buf, cap, "%s %lld", st->tag, (long long)changes);
    else
        util_strlcpy(buf, st->tag, cap);
    return buf;
}

/* Run a CREATE TABLE ... AS SELECT as its two replicable halves: the
 * table (DDL text) and its rows (row changes). rows gets the row count. */
static int exec_ctas(struct session *s, const char *sql, int64_t *rows)
{
    struct txl_ctas ct;
    char err[300];
    if (txl_rewrite_ctas(sql, &ct, err, sizeof err)) {
        ses_send_error(s, "0A000", err, NULL, NULL);
        return -1;
    }
    int rc = -1, recorded = 0;
    const char *parts[2] = {ct.create_sql, ct.insert_sql};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = NULL;
        int src = sqlite3_prepare_v2(db_of(s), parts[i], -1, &st, NULL);
        if (src != SQLITE_OK) {
            ses_send_sqlite_error(s, db_of(s), src);
            goto out;
        }
        if (i == 0) {
            if (txl_capture_ddl_begin(s->task.conn->cap, parts[0])) {
                sqlite3_finalize(st);
                ses_send_error(s, "XX000", "change capture failed", NULL, NULL);
                goto out;
            }
            s->cap_kind = TXL_KIND_DDL;
        } else {
            txl_capture_stmt_begin(s->task.conn->cap);
            s->cap_kind = TXL_KIND_DML;
        }
        while ((src = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (src != SQLITE_DONE)
            ses_send_sqlite_error(s, db_of(s), src);
        sqlite3_finalize(st);
        if (stmt_end(s, src == SQLITE_DONE, &recorded) || src != SQLITE_DONE)
            goto out;
        if (i == 0 && !recorded) {
            *rows = 0; /* IF NOT EXISTS and the table was there */
            rc = 0;
            goto out;
        }
        if (i == 1)
            *rows = sqlite3_changes64(db_of(s));
    }
    rc = 0;
out:
    txl_ctas_free(&ct);
    return rc;
}

/* Execute the SQLite text of a translated statement in the simple
 * protocol: every piece runs, the last piece's rows are sent. */
int ses_exec_simple_stmt(struct session *s, struct sql_stmt *st)
{
    sqlite3 *db = db_of(s);
    const char *sql = st->sql ? st->sql : "";
    const char *end = sql + strlen(sql);
    int64_t rows = 0, changes = -1;
    start_deadline(s);
    while (sql < end) {
        sqlite3_stmt *stmt = NULL;
        const char *tail = NULL;
        int rc = exe_prepare(s->task.conn, sql, (int)(end - sql), &stmt, &tail);
        if (rc != SQLITE_OK) {
            ses_send_sqlite_error(s, db, rc);
            return -1;
        }
        if (!stmt) {
            sql = tail;
            continue;
        }
        int w = ses_needs_write(s, stmt, NULL);
        if (w) {
            exe_finish(s->task.conn, stmt);
            return w > 0 ? 1 : -1;
        }
        if (s->task.conn->cap && !sqlite3_stmt_readonly(stmt) && txl_classify(sqlite3_sql(stmt)) == TXL_KIND_CTAS) {
            char *text = util_strdup(sqlite3_sql(stmt));
            exe_finish(s->task.conn, stmt);
            if (!text) {
                ses_send_error(s, "53200", "out of memory", NULL, NULL);
                return -1;
            }
            rc = exec_ctas(s, text, &rows);
            util_free(text);
            if (rc)
                return -1;
            changes = rows;
            sql = tail;
            continue;
        }
        if (stmt_begin(s, stmt)) {
            exe_finish(s->task.conn, stmt);
            return -1;
        }
        int ncols = sqlite3_column_count(stmt);
        uint32_t *oids = NULL;
        int pending = 0;
        rows = 0;
        if (ncols > 0) {
            rc = sqlite3_step(stmt);
            if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
                ses_send_sqlite_error(s, db, rc);
                exe_finish(s->task.conn, stmt);
                stmt_end(s, 0, NULL);
                return -1;
            }
            pending = rc == SQLITE_ROW;
            ses_describe_columns(s, stmt, NULL, 0, pending, &oids);
            if (!oids) {
                exe_finish(s->task.conn, stmt);
                stmt_end(s, 0, NULL);
                ses_send_error(s, "53200", "out of memory", NULL, NULL);
                return -1;
            }
            if (pending)
                rc = ses_send_rows(s, stmt, oids, NULL, 0, 0, &rows, &pending);
        } else {
            rc = sqlite3_step(stmt);
            while (rc == SQLITE_ROW)
                rc = sqlite3_step(stmt);
            if (rc != SQLITE_DONE)
                ses_send_sqlite_error(s, db, rc);
        }
        util_free(oids);
        changes = sqlite3_changes64(db);
        exe_finish(s->task.conn, stmt);
        if (stmt_end(s, rc == SQLITE_DONE, NULL) || rc != SQLITE_DONE)
            return -1;
        sql = tail;
    }
    char tag[64];
    s->cc_mark = s->out.len;
    pgw_command_complete(&s->out, ses_tag(st, changes < 0 ? 0 : changes, rows, tag, sizeof tag));
    return 0;
}

/* Statements that are not plain SQL: transaction control, SET/SHOW,
 * COPY, no-ops. Returns 0 ok, 1 wait for the write token, -1 error. */
int ses_exec_utility(struct session *s, struct sql_stmt *st, int extended)
{
    char err[300], state[6];
    switch (st->kind) {
    case SQL_K_BEGIN:
        if (s->txn != 'I' && !s->implicit_txn) {
            send_notice(s, "WARNING", "25001", "there is already a transaction in progress");
        } else if (s->implicit_txn) {
            s->implicit_txn = 0; /* the implicit block becomes explicit */
            if (st->read_only >= 0) /* else the default the implicit block began with */
                s->txn_read_only = st->read_only == 1;
        } else if (ses_txn_begin(s, st->read_only)) {
            return -1;
        }
        pgw_command_complete(&s->out, st->tag);
        return 0;
    case SQL_K_COMMIT:
        /* in a multi-statement query's implicit block too, as in
         * PostgreSQL: warn, and end that block */
        if (s->txn == 'I' || s->implicit_txn)
            send_notice(s, "WARNING", "25P01", "there is no transaction in progress");
        if (s->txn == 'I') {
            pgw_command_complete(&s->out, "COMMIT");
            return 0;
        }
        if (s->txn == 'E') {
            ses_txn_end(s, 0);
            pgw_command_complete(&s->out, "ROLLBACK");
            return 0;
        }
        if (ses_txn_end(s, 1))
            return -1;
        pgw_command_complete(&s->out, "COMMIT");
        return 0;
    case SQL_K_ROLLBACK:
        if (s->txn == 'I' || s->implicit_txn)
            send_notice(s, "WARNING", "25P01", "there is no transaction in progress");
        if (s->txn != 'I')
            ses_txn_end(s, 0);
        pgw_command_complete(&s->out, "ROLLBACK");
        return 0;
    case SQL_K_SAVEPOINT:
    case SQL_K_RELEASE:
    case SQL_K_ROLLBACK_TO: {
        if (s->txn == 'I' || s->implicit_txn) {
            snprintf(err, sizeof err, "%s can only be used in transaction blocks",
                     st->kind == SQL_K_SAVEPOINT ? "SAVEPOINT"
                     : st->kind == SQL_K_RELEASE ? "RELEASE SAVEPOINT"
                                                 : "ROLLBACK TO SAVEPOINT");
            ses_send_error(s, "25P01", err, NULL, NULL);
            return -1;
        }
        if (s->txn == 'E' && st->kind != SQL_K_ROLLBACK_TO) {
            ses_send_error(s, "25P02", "current transaction is aborted, commands ignored until end of transaction block",
                           NULL, NULL);
            return -1;
        }
        int rc = run_sql(s, st->sql);
        if (rc != SQLITE_OK) {
            if (sqlite3_errcode(db_of(s)) == SQLITE_ERROR && strstr(sqlite3_errmsg(db_of(s)), "no such savepoint")) {
                snprintf(err, sizeof err, "savepoint \"%s\" does not exist", st->name ? st->name : "");
                ses_send_error(s, "3B001", err, NULL, NULL);
            } else {
                ses_send_sqlite_error(s, db_of(s), rc);
            }
            return -1;
        }
        struct txl_capture *cap = s->task.conn->cap;
        if (cap && st->name) {
            int crc = st->kind == SQL_K_SAVEPOINT ? txl_capture_savepoint(cap, st->name)
                      : st->kind == SQL_K_RELEASE ? txl_capture_release(cap, st->name)
                                                  : txl_capture_rollback_to(cap, st->name);
            if (crc) {
                ses_send_error(s, "XX000", "change capture could not follow the savepoint", NULL, NULL);
                return -1;
            }
        }
        if (st->kind == SQL_K_ROLLBACK_TO)
            s->txn = 'T';
        if (ses_vars_savepoint(s, st->kind, st->name)) {
            ses_send_error(s, "53200", "out of memory", NULL, NULL);
            return -1;
        }
        pgw_command_complete(&s->out, st->tag);
        return 0;
    }
    case SQL_K_SET:
        if (ses_set_var(s, st->name, st->set_value, st->set_local, state, err, sizeof err)) {
            ses_send_error(s, state, err, NULL, NULL);
            return -1;
        }
        pgw_command_complete(&s->out, "SET");
        return 0;
    case SQL_K_RESET:
        if (strcasecmp(st->name, "all") == 0) {
            if (ses_vars_reset_all(s, state, err, sizeof err)) {
                ses_send_error(s, state, err, NULL, NULL);
                return -1;
            }
        } else if (ses_set_var(s, st->name, NULL, 0, state, err, sizeof err)) {
            ses_send_error(s, state, err, NULL, NULL);
            return -1;
        }
        pgw_command_complete(&s->out, "RESET");
        return 0;
    case SQL_K_SHOW:
        return ses_show_var(s, st->name);
    case SQL_K_COPY_FROM:
        return ses_copy_from_start(s, st, extended);
    case SQL_K_COPY_TO:
        return ses_copy_to(s, st);
    case SQL_K_DEALLOCATE:
        if (st->name && strcasecmp(st->name, "all") == 0) {
            ses_prepared_clear(s);
        } else if (st->name) {
            struct ses_prep *p = ses_prepared_take(s, st->name);
            if (!p) {
                snprintf(err, sizeof err, "prepared statement \"%s\" does not exist", st->name);
                ses_send_error(s, "26000", err, NULL, NULL);
                return -1;
            }
            ses_prep_unref(p);
        }
        pgw_command_complete(&s->out, st->tag);
        return 0;
    case SQL_K_DISCARD:
        if (s->txn != 'I') {
            ses_send_error(s, "25001", "DISCARD ALL cannot run inside a transaction block", NULL, NULL);
            return -1;
        }
        ses_vars_free(s);
        ses_portals_clear(s);
        ses_prepared_clear(s);
        pgw_command_complete(&s->out, "DISCARD ALL");
        return 0;
    case SQL_K_NOOP:
        if (!st->tag[0])
            pgw_empty_query(&s->out);
        else
            pgw_command_complete(&s->out, st->tag);
        return 0;
    case SQL_K_QUERY:
        break;
    }
    return ses_exec_simple_stmt(s, st);
}

/* ---- simple query protocol ---- */

void ses_query_free(struct session *s)
{
    if (!s->query)
        return;
    util_free(s->query->text);
    util_free(s->query->spans);
    util_free(s->query);
    s->query = NULL;
}

static int is_txn_exit(const struct sql_stmt *st)
{
    return st->kind == SQL_K_COMMIT || st->kind == SQL_K_ROLLBACK || st->kind == SQL_K_ROLLBACK_TO;
}

/* Returns 0 done (ReadyForQuery sent unless in COPY), 1 wait. */
static int simple_query(struct session *s, const char *payload, size_t len)
{
    char err[300], state[6];
    if (!s->query) {
        if (len == 0 || payload[len - 1] != 0) {
            ses_send_error(s, "08P01", "invalid Query message: missing terminator", NULL, NULL);
            goto ready;
        }
        size_t qlen = len - 1;
        if (strlen(payload) != qlen) {
            ses_send_error(s, "08P01", "invalid Query message: embedded NUL", NULL, NULL);
            goto ready;
        }
        if (!pgw_utf8_valid(payload, qlen)) {
            ses_send_error(s, "22021", "invalid byte sequence for encoding \"UTF8\"", NULL, NULL);
            goto ready;
        }
        struct ses_query *q = util_calloc(1, sizeof *q);
        if (!q || !(q->text = util_strndup(payload, qlen))) {
            util_free(q);
            ses_send_error(s, "53200", "out of memory", NULL, NULL);
            goto ready;
        }
        s->query = q;
        if (sql_split(q->text, qlen, &q->spans, &q->n, err, sizeof err)) {
            ses_send_error(s, "42601", err, NULL, NULL);
            ses_query_free(s);
            goto ready;
        }
        if (q->n == 0) {
            pgw_empty_query(&s->out);
            ses_query_free(s);
            goto ready;
        }
    }
    struct ses_query *q = s->query;
    while (q->next < q->n) {
        struct sql_stmt st;
        memset(&st, 0, sizeof st);
        if (sql_translate(q->text + q->spans[q->next].off, q->spans[q->next].len, &st, state, err, sizeof err)) {
            ses_send_error(s, state, err, NULL, NULL);
            sql_stmt_clear(&st);
            goto failed;
        }
        if (s->txn == 'E' && !is_txn_exit(&st)) {
            ses_send_error(s, "25P02", "current transaction is aborted, commands ignored until end of transaction block",
                           NULL, NULL);
            sql_stmt_clear(&st);
            goto failed;
        }
        if (q->n > 1 && s->txn == 'I' && !s->implicit_txn && st.kind != SQL_K_BEGIN) {
            if (ses_txn_begin(s, -1)) {
                sql_stmt_clear(&st);
                goto failed;
            }
            s->implicit_txn = 1;
        }
        int rc = ses_exec_utility(s, &st, 0);
        sql_stmt_clear(&st);
        if (rc == 1)
            return 1; /* resume this statement when the write token is ours */
        if (rc < 0)
            goto failed;
        q->next++;
        if (ses_after_statement(s, 1))
            goto failed_after;
        if (s->copy_in) {
            /* the rest of the string runs after the COPY ends */
            return 0;
        }
        ses_maybe_flush(s);
    }
    if (s->implicit_txn)
        ses_txn_end(s, 1);
    ses_query_free(s);
    goto ready;
failed:
    if (s->implicit_txn)
        ses_txn_end(s, 0);
    ses_after_statement(s, 0);
failed_after:
    ses_query_free(s);
ready:
    ses_ready(s);
    return 0;
}

/* After a COPY that was part of a simple query failed: drop the rest of
 * the query string and answer ReadyForQuery. */
void ses_query_continue_abort(struct session *s)
{
    if (s->implicit_txn)
        ses_txn_end(s, 0);
    ses_query_free(s);
    ses_ready(s);
}

/* After a COPY that was part of a simple query ends: run the rest. */
void ses_query_continue(struct session *s)
{
    if (s->query)
        simple_query(s, NULL, 0);
    else
        ses_ready(s);
}

/* ---- the job ---- */

static void cleanup_job(struct session *s)
{
    if (s->task.conn) {
        ses_copy_free(s);
        ses_portals_clear(s);
        rollback(s);
        s->auto_txn = 0;
        exe_write_release(s->srv->pool, &s->task);
        exe_release_conn(s->srv->pool, &s->task);
    }
    exe_write_release(s->srv->pool, &s->task);
}

/* The node's role changed since this session last heard: tell it (libpq
 * and poolers watch these two to find the leader). */
static void report_role(struct session *s)
{
    if (!s->srv->repl || s->defer || s->role_gen == rpl_role_generation(s->srv->repl))
        return; /* (with a deferred commit: next time, its error path rebuilds the output) */
    s->role_gen = rpl_role_generation(s->srv->repl);
    static const char *names[] = {"in_hot_standby", "default_transaction_read_only"};
    for (int i = 0; i < 2; i++) {
        const char *v = ses_get_var(s, names[i]);
        pgw_param_status(&s->out, names[i], v ? v : "");
    }
}

static void finish_job(struct session *s)
{
    report_role(s);
    /* what this job read may include others' commits that Raft has not
     * made durable: answer only once it has (a deferred commit is answered
     * once it is durable, and so is everything before it) */
    if (!s->defer)
        ses_wait_visible(s);
    int keep = s->txn != 'I' || s->implicit_txn || s->copy_in || (s->portals && s->portals->count) ||
               s->task.holds_write;
    if (s->task.conn && !keep) {
        ses_portals_clear(s);
        exe_release_conn(s->srv->pool, &s->task);
    }
    char *d = NULL;
    size_t len = 0;
    if (!s->closing && buf_ok(&s->out))
        d = buf_steal(&s->out, &len);
    else
        buf_free(&s->out);
    if (s->defer) {
        struct ses_defer *df = s->defer;
        s->defer = NULL;
        df->out = d;
        df->len = len;
        /* after this, s may be answered and reused by the loop: hands off */
        if (atomic_fetch_add(&df->parties, 1) == 1)
            defer_deliver(df);
        return;
    }
    net_post(s, d, len, 1);
}

/* Point the connection's SQL functions and progress handler at s. */
static void bind_conn(struct session *s)
{
    struct exe_conn *c = s->task.conn;
    c->fn.session = s;
    c->fn.user = s->user;
    c->fn.database = "orbit";
    c->fn.pid = s->pid;
    c->fn.superuser = s->superuser;
    c->fn.setting = ses_var_cb;
    c->fn.cancel = &s->cancel;
    c->fn.internal = 0;
}

/* The direct path (the loop set s->fast and stopped reading): answer the
 * client on the socket directly and wait there, up to client_poll_us, for
 * its next batch of messages, skipping the two hand-offs through the loop
 * thread per request. This matters most for the write-token holder inside
 * a transaction block, whom every writer waits for (it always may wait);
 * other sessions wait only while fewer than max_polling do, and give their
 * pooled connection back meanwhile unless a transaction keeps it. Returns
 * 1 with the next batch in jin (and a connection); 0 to end the job the
 * usual way (s->out holds what is still unsent, and with fast_left set
 * jin[jpos..] holds input read but not run). */
static int fast_next(struct session *s)
{
    if (!atomic_load(&s->fast) || s->defer || s->terminate || s->closing || s->copy_in ||
        atomic_load(&s->inflight) != 0 || !buf_ok(&s->out))
        return 0;
    uv_os_fd_t fd;
    if (uv_fileno(&s->h.handle, &fd) != 0)
        return 0;
    struct exe_pool *pool = s->srv->pool;
    int holder = s->task.holds_write && s->txn != 'I';
    report_role(s);
    ses_wait_visible(s);
    int keep = s->txn != 'I' || s->implicit_txn || (s->portals && s->portals->count) || s->task.holds_write;
    if (s->task.conn && !keep)
        ses_portals_clear(s); /* the connection goes back in exe_poll_begin */
    size_t off = 0;
    while (off < s->out.len) {
        ssize_t n = send(fd, s->out.data + off, s->out.len - off, MSG_NOSIGNAL);
        if (n > 0)
            off += (size_t)n;
        else if (n < 0 && errno == EINTR)
            continue;
        else
            break; /* full socket buffer or an error: the loop takes over */
    }
    buf_consume(&s->out, off);
    if (s->out.len) {
        log_debug("direct_path", "pid=%u unsent=%zu msg=\"socket full: the loop writes the rest\"", s->pid,
                  s->out.len);
        return 0;
    }
    if (!exe_poll_begin(pool, &s->task, holder, !keep))
        return 0;
    buf_reset(&s->jin);
    s->jpos = 0;
    uint64_t t0 = util_now_ns();
    uint64_t until = t0 + (uint64_t)s->srv->cfg->client_poll_us * 1000;
    uint32_t maxlen = (uint32_t)s->srv->cfg->max_message_size;
    /* the write-lock holder's client is the one every writer waits for:
     * the first holder_spin_us re-read the socket instead of sleeping
     * (one thread at a time; docs/performance.md, TPC-B) */
    uint64_t spin = holder ? (uint64_t)s->srv->cfg->holder_spin_us * 1000 : 0, spin_until = 0;
    int got = 0;
    for (;;) {
        /* read first: the client has usually answered by the time this
         * thread runs again after its send woke it, and a ppoll that
         * finds data ready is a system call for nothing */
        char tmp[16384];
        ssize_t n = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT);
        if (n == 0)
            break; /* EOF stays readable: the loop sees it */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                break; /* errors are the loop's to see */
            uint64_t now = util_now_ns();
            if (now >= until || s->closing)
                break;
            if (!spin_until)
                spin_until = now + spin;
            if (now < spin_until) { /* spin is 0 unless this session holds the write lock */
                util_cpu_relax();
                continue;
            }
            struct pollfd pfd = {.fd = fd, .events = POLLIN};
            uint64_t left = until - now;
            struct timespec ts = {.tv_sec = (time_t)(left / 1000000000ULL), .tv_nsec = (long)(left % 1000000000ULL)};
            int r = ppoll(&pfd, 1, &ts, NULL);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0 || !(pfd.revents & POLLIN))
                break; /* timeout; hang-ups and errors are the loop's to see */
            continue;
        }
        buf_append(&s->jin, tmp, (size_t)n);
        if (!buf_ok(&s->jin))
            break;
        size_t end;
        int rc = ses_scan_batch(s->jin.data, s->jin.len, maxlen, &end);
        if (rc < 0 || (rc > 0 && end != s->jin.len))
            break; /* bad input or more than one batch: the loop's framing decides */
        if (rc > 0) {
            got = 1;
            break;
        }
    }
    got = exe_poll_end(pool, &s->task, got); /* no connection free: the loop queues it */
    if (!got) {
        if (!buf_ok(&s->jin)) {
            ses_send_error(s, "53200", "out of memory", NULL, NULL);
            s->terminate = 1;
        } else if (s->jin.len) {
            s->fast_left = 1;
        }
        return 0;
    }
    s->cancel = 0; /* a cancel that arrived between requests cancels nothing */
    bind_conn(s);
    start_deadline(s);
    return 1;
}

enum exe_rc ses_run(struct exe_task *t)
{
    struct session *s = of_task(t);
    if (s->cleanup) {
        cleanup_job(s);
        net_post(s, NULL, 0, 1);
        return EXE_DONE;
    }
    s->ready_sent = 0;
    if (t->flags & EXE_F_ADMISSION_TIMEOUT) {
        t->flags &= ~EXE_F_ADMISSION_TIMEOUT;
        char msg[200];
        snprintf(msg, sizeof msg, "no pooled connection became free within admission_timeout (%lld ms)",
                 (long long)s->srv->cfg->admission_timeout_ms);
        ses_send_error(s, "53000", msg, NULL, "Raise pool_size or admission_timeout, or shorten transactions.");
        /* answer the batch: a ReadyForQuery for a Query or a Sync */
        while (s->jpos < s->jin.len) {
            char type;
            const char *p;
            size_t plen, total;
            if (pgw_frame(s->jin.data + s->jpos, s->jin.len - s->jpos, PGW_MAX_MESSAGE, &type, &p, &plen, &total) <= 0)
                break;
            s->jpos += total;
            if (type == 'Q' || type == 'S') {
                ses_ready(s);
                break;
            }
        }
        s->skip_to_sync = 0;
        finish_job(s);
        return EXE_DONE;
    }
    bind_conn(s);
    start_deadline(s);
next_batch:
    while (s->jpos < s->jin.len && !s->terminate) {
        char type;
        const char *p;
        size_t plen, total;
        if (pgw_frame(s->jin.data + s->jpos, s->jin.len - s->jpos, PGW_MAX_MESSAGE, &type, &p, &plen, &total) <= 0)
            break; /* the loop only hands over complete messages */
        int rc = 0;
        s->cur_type = type;
        s->cur_end = s->jpos + total;
        s->ready_sent = 0;
        if (s->copy_in && type != 'd' && type != 'c' && type != 'f' && type != 'H' && type != 'S' && type != 'X') {
            ses_copy_unexpected(s, type);
            break;
        }
        switch (type) {
        case 'Q':
            if (s->skip_to_sync)
                break;
            rc = simple_query(s, p, plen);
            break;
        case 'd':
            if (s->copy_in)
                ses_copy_data(s, p, plen);
            break;
        case 'c':
            if (s->copy_in)
                ses_copy_done(s);
            break;
        case 'f':
            if (s->copy_in)
                ses_copy_fail(s, plen ? p : "");
            break;
        case 'X':
            s->terminate = 1;
            break;
        case 'P':
        case 'B':
        case 'D':
        case 'E':
        case 'C':
        case 'S':
        case 'H':
            rc = ses_handle_extended(s, type, p, plen);
            break;
        default: {
            char msg[80];
            snprintf(msg, sizeof msg, "invalid frontend message type %d", (unsigned char)type);
            pgw_error(&s->out, 'E', "FATAL", "08P01", msg, NULL, NULL);
            s->terminate = 1;
            break;
        }
        }
        if (rc == 1) {
            /* parked until the write token is free: the loop reads again
             * meanwhile (a client that goes away aborts the wait) */
            if (atomic_exchange(&s->fast, 0))
                net_post_resume_read(s);
            return EXE_WAIT_WRITE;
        }
        s->jpos += total;
        ses_maybe_flush(s);
    }
    if (fast_next(s))
        goto next_batch;
    if (s->terminate && s->task.conn) {
        cleanup_job(s);
    }
    finish_job(s);
    return EXE_DONE;
}
