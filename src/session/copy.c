/* session/copy.c: COPY FROM STDIN (text and CSV rows inserted through one
 * prepared INSERT, atomically) and COPY TO STDOUT, on the worker thread.
 * COPY IN state: started by ses_copy_from_start (CopyInResponse sent,
 * s->copy_in = 1), fed by ses_copy_data, ended by ses_copy_done or
 * ses_copy_fail; after an error the remaining CopyData are dropped. */
#include <stdio.h>
#include <string.h>

#include "session_int.h"

void ses_copy_free(struct session *s)
{
    struct ses_copy *c = s->copy;
    if (!c)
        return;
    if (c->ins) {
        if (s->task.conn)
            exe_finish(s->task.conn, c->ins);
        else
            sqlite3_finalize(c->ins);
    }
    sql_stmt_clear(&c->st);
    buf_free(&c->line);
    buf_free(&c->fields);
    util_free(c->offs);
    util_free(c->oids);
    util_free(c);
    s->copy = NULL;
    s->copy_in = 0;
}

/* Declared type OID of a column of table (0 when unknown). */
static uint32_t column_oid(struct session *s, const char *table, const char *col)
{
    sqlite3_stmt *st;
    uint32_t oid = 0;
    if (sqlite3_prepare_v2(s->task.conn->db, "SELECT type FROM pragma_table_info(?1) WHERE name = ?2 COLLATE NOCASE",
                           -1, &st, NULL) != SQLITE_OK)
        return 0;
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, col, -1, SQLITE_STATIC);
    if (sqlite3_step(st) == SQLITE_ROW)
        oid = sql_decltype_oid((const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return oid;
}

/* Fill oids (size max) with the column types in COPY order; returns the
 * number of columns, 0 when the table does not exist. */
static int copy_columns(struct session *s, const char *table, const char *cols, uint32_t *oids, int max)
{
    int n = 0;
    if (!cols) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->task.conn->db, "SELECT type FROM pragma_table_info(?1) ORDER BY cid", -1, &st,
                               NULL) != SQLITE_OK)
            return 0;
        sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
        while (sqlite3_step(st) == SQLITE_ROW && n < max)
            oids[n++] = sql_decltype_oid((const char *)sqlite3_column_text(st, 0));
        sqlite3_finalize(st);
        return n;
    }
    const char *p = cols;
    while (*p && n < max) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        char name[256];
        size_t k = 0;
        if (*p == '"') {
            for (p++; *p && k < sizeof name - 1; p++) {
                if (*p == '"' && p[1] == '"')
                    p++;
                else if (*p == '"')
                    break;
                name[k++] = *p;
            }
            if (*p == '"')
                p++;
        } else {
            while (*p && *p != ',' && *p != ' ' && k < sizeof name - 1)
                name[k++] = *p++;
        }
        name[k] = 0;
        while (*p && *p != ',')
            p++;
        oids[n++] = column_oid(s, table, name);
    }
    return n;
}

static char *unquote_ident(const char *t)
{
    size_t n = strlen(t);
    if (n >= 2 && t[0] == '"' && t[n - 1] == '"')
        return util_strndup(t + 1, n - 2);
    return util_strdup(t);
}

static int count_list(const char *cols)
{
    int n = 1, inq = 0;
    for (const char *p = cols; *p; p++) {
        if (*p == '"')
            inq = !inq;
        else if (*p == ',' && !inq)
            n++;
    }
    return n;
}

static void copy_error(struct session *s, const char *state, const char *msg)
{
    struct ses_copy *c = s->copy;
    int extended = c ? c->extended : 0;
    int began = c ? c->began : 0;
    ses_send_error(s, state, msg, NULL, NULL);
    ses_copy_free(s);
    if (began)
        ses_txn_end(s, 0);
    if (extended)
        s->skip_to_sync = 1;
    else
        ses_query_continue_abort(s);
}

int ses_copy_from_start(struct session *s, struct sql_stmt *st, int extended)
{
    char err[600];
    if (st->copy.format == SQL_COPY_BINARY) {
        ses_send_error(s, "0A000", "COPY BINARY is not supported; use text or csv format", NULL, NULL);
        return -1;
    }
    uint32_t oids[SES_COPY_MAX_COLS];
    char *table = unquote_ident(st->copy.table);
    int ncols = table ? copy_columns(s, table, st->copy.columns, oids, SES_COPY_MAX_COLS) : 0;
    util_free(table);
    if (st->copy.columns && ncols != count_list(st->copy.columns))
        ncols = 0;
    if (ncols <= 0) {
        snprintf(err, sizeof err, "relation \"%s\" does not exist", st->copy.table);
        ses_send_error(s, "42P01", err, NULL, NULL);
        return -1;
    }
    struct buf sql;
    buf_init(&sql);
    buf_printf(&sql, "INSERT INTO %s", st->copy.table);
    if (st->copy.columns)
        buf_printf(&sql, " (%s)", st->copy.columns);
    buf_puts(&sql, " VALUES (");
    for (int i = 0; i < ncols; i++)
        buf_puts(&sql, i ? ",?" : "?");
    buf_putsz(&sql, ")");
    if (!buf_ok(&sql)) {
        buf_free(&sql);
        ses_send_error(s, "53200", "out of memory", NULL, NULL);
        return -1;
    }
    sqlite3_stmt *ins = NULL;
    int rc = exe_prepare(s->task.conn, sql.data, -1, &ins, NULL);
    buf_free(&sql);
    if (rc != SQLITE_OK) {
        ses_send_sqlite_error(s, s->task.conn->db, rc);
        return -1;
    }
    int w = ses_needs_write(s, ins, NULL);
    if (w) {
        exe_finish(s->task.conn, ins);
        return w > 0 ? 1 : -1;
    }
    struct ses_copy *c = util_calloc(1, sizeof *c);
    if (!c || !(c->offs = util_calloc((size_t)ncols + 2, sizeof *c->offs)) ||
        !(c->oids = util_calloc((size_t)ncols, sizeof *c->oids))) {
        if (c)
            util_free(c->offs);
        util_free(c);
        exe_finish(s->task.conn, ins);
        ses_send_error(s, "53200", "out of memory", NULL, NULL);
        return -1;
    }
    c->st = *st;
    memset(st, 0, sizeof *st); /* ownership moves to the COPY state */
    c->ins = ins;
    c->ncols = ncols;
    memcpy(c->oids, oids, (size_t)ncols * sizeof *oids);
    c->extended = extended;
    buf_init(&c->line);
    buf_init(&c->fields);
    s->copy = c;
    if (s->txn == 'I') {
        if (ses_txn_begin(s, -1)) {
            ses_copy_free(s);
            return -1;
        }
        c->began = 1;
    }
    s->copy_in = 1;
    pgw_copy_response(&s->out, 'G', ncols);
    return 0;
}

/* Insert one line; returns 0 or -1 (COPY aborted, error sent). */
static int copy_line(struct session *s, const char *line, size_t len)
{
    struct ses_copy *c = s->copy;
    char err[300], msg[400];
    if (c->eod)
        return 0;
    if (len == 2 && line[0] == '\\' && line[1] == '.') {
        c->eod = 1;
        return 0;
    }
    if (c->st.copy.header) {
        c->st.copy.header = 0; /* skip the header line */
        return 0;
    }
    if (!pgw_utf8_valid(line, len)) {
        snprintf(msg, sizeof msg, "COPY %s, line %lld: invalid byte sequence for encoding \"UTF8\"",
                 c->st.copy.table, (long long)c->rows + 1);
        copy_error(s, "22021", msg);
        return -1;
    }
    buf_reset(&c->fields);
    int n = sql_copy_parse_line(&c->st.copy, line, len, &c->fields, c->offs, c->ncols + 1, err, sizeof err);
    if (n < 0) {
        snprintf(msg, sizeof msg, "COPY %s, line %lld: %s", c->st.copy.table, (long long)c->rows + 1, err);
        copy_error(s, "22P04", msg);
        return -1;
    }
    if (n != c->ncols) {
        snprintf(msg, sizeof msg, "COPY %s, line %lld: %s", c->st.copy.table, (long long)c->rows + 1,
                 n < c->ncols ? "missing data for column" : "extra data after last expected column");
        copy_error(s, "22P04", msg);
        return -1;
    }
    for (int i = 0; i < n; i++) {
        const char *v = c->offs[i] == SIZE_MAX ? NULL : c->fields.data + c->offs[i];
        char state[6];
        if (sql_bind_param(c->ins, i + 1, c->oids[i], 0, v, v ? (int32_t)strlen(v) : -1, state, err, sizeof err)) {
            snprintf(msg, sizeof msg, "COPY %s, line %lld, column %d: %s", c->st.copy.table, (long long)c->rows + 1,
                     i + 1, err);
            copy_error(s, state, msg);
            return -1;
        }
    }
    int rc = sqlite3_step(c->ins);
    sqlite3_reset(c->ins);
    if (rc != SQLITE_DONE) {
        sqlite3 *db = s->task.conn->db;
        snprintf(msg, sizeof msg, "COPY %s, line %lld: %s", c->st.copy.table, (long long)c->rows + 1,
                 sqlite3_errmsg(db));
        copy_error(s, sql_sqlstate(sqlite3_extended_errcode(db), sqlite3_errmsg(db)), msg);
        return -1;
    }
    c->rows++;
    return 0;
}

void ses_copy_data(struct session *s, const char *p, size_t len)
{
    struct ses_copy *c = s->copy;
    if (!c)
        return;
    buf_append(&c->line, p, len);
    if (!buf_ok(&c->line)) {
        copy_error(s, "53200", "out of memory");
        return;
    }
    size_t start = 0, scan = 0;
    while (scan < c->line.len) {
        char *nl = memchr(c->line.data + scan, '\n', c->line.len - scan);
        if (!nl)
            break;
        size_t end = (size_t)(nl - c->line.data);
        size_t l = end - start;
        const char *line = c->line.data + start;
        if (!sql_copy_csv_complete(&c->st.copy, line, l)) {
            scan = end + 1; /* newline inside a quoted or escaped value: keep going */
            continue;
        }
        if (l && line[l - 1] == '\r')
            l--;
        if (copy_line(s, line, l))
            return;
        start = scan = end + 1;
    }
    buf_consume(&c->line, start);
}

void ses_copy_done(struct session *s)
{
    struct ses_copy *c = s->copy;
    if (!c)
        return;
    if (c->line.len) {
        size_t l = c->line.len;
        if (l && c->line.data[l - 1] == '\r')
            l--;
        if (copy_line(s, c->line.data, l))
            return;
    }
    int64_t rows = c->rows;
    int began = c->began, extended = c->extended;
    ses_copy_free(s);
    if (began && ses_txn_end(s, 1)) {
        if (!extended)
            ses_query_continue_abort(s);
        else
            s->skip_to_sync = 1;
        return;
    }
    char tag[64];
    snprintf(tag, sizeof tag, "COPY %lld", (long long)rows);
    s->cc_mark = s->out.len;
    pgw_command_complete(&s->out, tag);
    if (ses_after_statement(s, 1)) {
        if (!extended)
            ses_query_continue_abort(s);
        else
            s->skip_to_sync = 1;
        return;
    }
    if (!extended)
        ses_query_continue(s);
}

void ses_copy_fail(struct session *s, const char *why)
{
    char msg[300];
    snprintf(msg, sizeof msg, "COPY from stdin failed: %s", why);
    copy_error(s, "57014", msg);
}

/* Any message but CopyData, CopyDone, CopyFail, Flush and Sync during
 * copy-in: PostgreSQL fails the COPY and, having read the message's type
 * but not the rest, ends the connection (the transaction is rolled back
 * when it closes). */
void ses_copy_unexpected(struct session *s, char type)
{
    char msg[80];
    snprintf(msg, sizeof msg, "unexpected message type 0x%02X during COPY from stdin", (unsigned char)type);
    ses_send_error(s, "08P01", msg, NULL, NULL);
    pgw_error(&s->out, 'E', "FATAL", "08P01", "terminating connection because protocol synchronization was lost",
              NULL, NULL);
    s->terminate = 1;
}

int ses_copy_to(struct session *s, struct sql_stmt *st)
{
    const struct sql_copy *c = &st->copy;
    if (c->format == SQL_COPY_BINARY) {
        ses_send_error(s, "0A000", "COPY BINARY is not supported; use text or csv format", NULL, NULL);
        return -1;
    }
    struct buf sql;
    buf_init(&sql);
    if (c->query)
        buf_putsz(&sql, c->query);
    else
        buf_printf(&sql, "SELECT %s FROM %s%c", c->columns ? c->columns : "*", c->table, 0);
    if (!buf_ok(&sql)) {
        buf_free(&sql);
        ses_send_error(s, "53200", "out of memory", NULL, NULL);
        return -1;
    }
    sqlite3_stmt *q = NULL;
    const char *tail;
    int rc = exe_prepare(s->task.conn, sql.data, -1, &q, &tail);
    buf_free(&sql);
    if (rc != SQLITE_OK || !q) {
        if (rc != SQLITE_OK)
            ses_send_sqlite_error(s, s->task.conn->db, rc);
        else
            ses_send_error(s, "42601", "empty COPY query", NULL, NULL);
        return -1;
    }
    int w = ses_needs_write(s, q, NULL);
    if (w) {
        exe_finish(s->task.conn, q);
        return w > 0 ? 1 : -1;
    }
    int n = sqlite3_column_count(q);
    pgw_copy_response(&s->out, 'H', n);
    if (c->header) {
        size_t o = pgw_begin(&s->out, 'd');
        sql_copy_format_header(c, q, &s->out);
        pgw_end(&s->out, o);
    }
    int64_t rows = 0;
    while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
        size_t o = pgw_begin(&s->out, 'd');
        sql_copy_format_row(c, q, &s->out);
        pgw_end(&s->out, o);
        rows++;
        ses_maybe_flush(s);
    }
    if (rc != SQLITE_DONE) {
        ses_send_sqlite_error(s, s->task.conn->db, rc);
        exe_finish(s->task.conn, q);
        return -1;
    }
    exe_finish(s->task.conn, q);
    pgw_simple(&s->out, 'c');
    char tag[64];
    snprintf(tag, sizeof tag, "COPY %lld", (long long)rows);
    pgw_command_complete(&s->out, tag);
    return 0;
}
