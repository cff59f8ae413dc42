/* session/extended.c: the extended query protocol (Parse, Bind, Describe,
 * Execute with row limits and portal suspension, Close, Sync, Flush) on
 * the worker thread. Prepared statements are session-level SQL text; the
 * compiled sqlite3_stmt comes from the pooled connection's cache, so a
 * statement one session prepared is reused by others. After an error,
 * messages are skipped until Sync, as PostgreSQL does. */
#include <stdio.h>
#include <string.h>

#include "session_int.h"

static const char *aborted_msg = "current transaction is aborted, commands ignored until end of transaction block";

void ses_prep_unref(struct ses_prep *p)
{
    if (!p || --p->refs > 0)
        return;
    sql_stmt_clear(&p->st);
    util_free(p->param_oids);
    util_free(p);
}

void ses_portal_free(struct session *s, struct ses_portal *p)
{
    if (!p)
        return;
    if (p->stmt && s->task.conn)
        exe_finish(s->task.conn, p->stmt);
    else if (p->stmt)
        sqlite3_finalize(p->stmt);
    ses_prep_unref(p->prep);
    util_free(p->rformats);
    util_free(p->col_oids);
    util_free(p);
}

/* Drop every prepared statement (the map stays usable, or NULL). */
void ses_prepared_clear(struct session *s)
{
    if (!s->prepared)
        return;
    size_t it = 0;
    void *v;
    while (map_next(s->prepared, &it, NULL, &v)) {
        s->held_bytes -= ((struct ses_prep *)v)->bytes;
        ses_prep_unref(v);
    }
    map_free(s->prepared);
}

struct ses_prep *ses_prepared_take(struct session *s, const char *name)
{
    struct ses_prep *p = s->prepared ? map_del(s->prepared, name) : NULL;
    if (p)
        s->held_bytes -= p->bytes;
    return p;
}

/* A portal whose statement writes and was suspended by a row limit
 * (INSERT/UPDATE/DELETE ... RETURNING) has made every change at its first
 * step, and outside a block the statement's own transaction is still
 * open. PostgreSQL ran such a portal to completion and commits it with the
 * implicit transaction at Sync; closing the portal does not undo it. So
 * outside a block, before a portal (only, or every one) goes away: run it
 * to its end and, once no other suspended write is open, commit. 0, or -1
 * with the error sent (the changes are rolled back). */
static int finish_writes(struct session *s, struct ses_portal *only)
{
    if (s->txn != 'I' || !s->auto_txn || !s->portals)
        return 0;
    int ok = 1, open = 0;
    size_t it = 0;
    void *v;
    while (map_next(s->portals, &it, NULL, &v)) {
        struct ses_portal *po = v;
        if (!po->stmt || !po->wrote || po->done)
            continue;
        if (only && po != only) {
            open = 1;
            continue;
        }
        int rc;
        while ((rc = sqlite3_step(po->stmt)) == SQLITE_ROW)
            ;
        po->done = 1;
        if (rc != SQLITE_DONE && ok)
            ses_send_sqlite_error(s, s->task.conn->db, rc);
        sqlite3_reset(po->stmt);
        if (ses_stmt_end(s, ok && rc == SQLITE_DONE))
            ok = 0;
        if (rc != SQLITE_DONE)
            ok = 0;
    }
    if (open && ok)
        return 0;
    s->cc_mark = s->out.len;
    if (ses_after_statement(s, ok))
        ok = 0;
    return ok ? 0 : -1;
}

/* 0, or -1 when committing what it wrote failed (error sent). */
static int portal_drop(struct session *s, const char *name)
{
    struct ses_portal *p = s->portals ? map_get(s->portals, name) : NULL;
    int rc = p ? finish_writes(s, p) : 0;
    p = p ? map_del(s->portals, name) : NULL;
    if (p)
        s->held_bytes -= p->bytes;
    ses_portal_free(s, p);
    return rc;
}

/* Named statements and portals are what a session can pile up. Would
 * holding `add` more bytes in place of `drop` pass
 * session_memory_limit? Then an error is sent (0: fine). */
static int over_limit(struct session *s, size_t add, size_t drop)
{
    size_t limit = (size_t)s->srv->cfg->session_memory_limit;
    size_t after = s->held_bytes - drop + add;
    if (after <= limit || add <= drop)
        return 0;
    char msg[300];
    snprintf(msg, sizeof msg,
             "out of memory: this session's prepared statements and portals would hold %zu bytes, more than "
             "session_memory_limit (%zu)", after, limit);
    ses_send_error(s, "53200", msg, NULL,
                   "Close or DEALLOCATE what the session no longer uses, or raise session_memory_limit.");
    s->skip_to_sync = 1;
    return 1;
}

void ses_portals_clear(struct session *s)
{
    if (!s->portals)
        return;
    size_t it = 0;
    void *v;
    while (map_next(s->portals, &it, NULL, &v)) {
        s->held_bytes -= ((struct ses_portal *)v)->bytes;
        ses_portal_free(s, v);
    }
    map_free(s->portals);
}

static int ensure_maps(struct session *s)
{
    if (!s->prepared) {
        s->prepared = util_calloc(1, sizeof *s->prepared);
        if (!s->prepared)
            return -1;
        map_init(s->prepared);
    }
    if (!s->portals) {
        s->portals = util_calloc(1, sizeof *s->portals);
        if (!s->portals)
            return -1;
        map_init(s->portals);
    }
    return 0;
}

static int fail(struct session *s, const char *state, const char *msg)
{
    ses_send_error(s, state, msg, NULL, NULL);
    s->skip_to_sync = 1;
    return 0;
}

static int is_exit(const struct sql_stmt *st)
{
    return st->kind == SQL_K_COMMIT || st->kind == SQL_K_ROLLBACK || st->kind == SQL_K_ROLLBACK_TO;
}

/* A hash of a statement's result columns (count, names, declared types):
 * SQLite prepares a statement again when the schema changes, and a
 * client that described it must not get other columns than it was told
 * (PostgreSQL: "cached plan must not change result type"). */
static uint32_t result_shape(sqlite3_stmt *st)
{
    int n = sqlite3_column_count(st);
    uint32_t h = 2166136261u ^ (uint32_t)n;
    for (int i = 0; i < n; i++) {
        const char *parts[2] = {sqlite3_column_name(st, i), sqlite3_column_decltype(st, i)};
        for (int k = 0; k < 2; k++) {
            for (const char *c = parts[k] ? parts[k] : ""; *c; c++)
                h = (h ^ (unsigned char)*c) * 16777619u;
            h = (h ^ 0xff) * 16777619u;
        }
    }
    return h;
}

static int do_parse(struct session *s, const char *p, size_t len)
{
    struct pgw_rd r;
    char err[300], state[6];
    pgw_rd_init(&r, p, len);
    const char *name = pgw_rd_str(&r);
    const char *query = pgw_rd_str(&r);
    int16_t n = pgw_rd_i16(&r);
    if (!pgw_rd_ok(&r) || n < 0)
        return fail(s, "08P01", "malformed Parse message");
    struct ses_prep *prep = util_calloc(1, sizeof *prep);
    if (!prep)
        return fail(s, "53200", "out of memory");
    prep->refs = 1;
    if (n > 0) {
        prep->param_oids = util_calloc((size_t)n, sizeof *prep->param_oids);
        if (!prep->param_oids) {
            ses_prep_unref(prep);
            return fail(s, "53200", "out of memory");
        }
    }
    prep->nparams = n;
    for (int i = 0; i < n; i++)
        prep->param_oids[i] = (uint32_t)pgw_rd_i32(&r);
    if (!pgw_rd_done(&r)) {
        ses_prep_unref(prep);
        return fail(s, "08P01", "malformed Parse message");
    }
    if (ensure_maps(s)) {
        ses_prep_unref(prep);
        return fail(s, "53200", "out of memory");
    }
    if (*name && map_get(s->prepared, name)) {
        ses_prep_unref(prep);
        snprintf(err, sizeof err, "prepared statement \"%s\" already exists", name);
        return fail(s, "42P05", err);
    }
    size_t qlen = strlen(query);
    if (!pgw_utf8_valid(query, qlen)) {
        ses_prep_unref(prep);
        return fail(s, "22021", "invalid byte sequence for encoding \"UTF8\"");
    }
    struct sql_span *spans = NULL;
    size_t nspans = 0;
    if (sql_split(query, qlen, &spans, &nspans, err, sizeof err)) {
        ses_prep_unref(prep);
        return fail(s, "42601", err);
    }
    if (nspans > 1) {
        util_free(spans);
        ses_prep_unref(prep);
        return fail(s, "42601", "cannot insert multiple commands into a prepared statement");
    }
    if (nspans == 1) {
        int rc = sql_translate(query + spans[0].off, spans[0].len, &prep->st, state, err, sizeof err);
        util_free(spans);
        if (rc) {
            ses_prep_unref(prep);
            return fail(s, state, err);
        }
        if (s->txn == 'E' && !is_exit(&prep->st)) {
            ses_prep_unref(prep);
            return fail(s, "25P02", aborted_msg);
        }
        if (prep->st.kind == SQL_K_QUERY) {
            sqlite3_stmt *st = NULL;
            const char *tail;
            rc = exe_prepare(s->task.conn, prep->st.sql, -1, &st, &tail);
            if (rc != SQLITE_OK) {
                ses_send_sqlite_error(s, s->task.conn->db, rc);
                s->skip_to_sync = 1;
                ses_prep_unref(prep);
                return 0;
            }
            prep->shape = result_shape(st);
            exe_finish(s->task.conn, st);
        }
    } else {
        util_free(spans);
        prep->st.kind = SQL_K_QUERY;
        prep->st.sql = NULL; /* empty query */
    }
    /* what it holds, roughly: the struct, its types, its text, the map slot
     * (the unnamed statement is one at most, replaced by the next Parse) */
    prep->bytes = !*name ? 0 : sizeof *prep + (size_t)n * sizeof *prep->param_oids + strlen(name) + 1 +
                  (prep->st.sql ? strlen(prep->st.sql) + 1 : 0) + sizeof(struct map_entry) * 2;
    struct ses_prep *was = map_get(s->prepared, name); /* the unnamed one is replaced */
    if (over_limit(s, prep->bytes, was ? was->bytes : 0)) {
        ses_prep_unref(prep);
        return 0;
    }
    void *old = NULL;
    if (map_put(s->prepared, name, prep, &old)) {
        ses_prep_unref(prep);
        return fail(s, "53200", "out of memory");
    }
    s->held_bytes += prep->bytes - (old ? ((struct ses_prep *)old)->bytes : 0);
    ses_prep_unref(old);
    pgw_simple(&s->out, '1');
    return 0;
}

/* Prepare sql for a portal or a Describe: 0 with *st set when it is a
 * single SQLite statement, 1 with *st NULL when a shim expanded it into
 * several (they run through the simple path), -1 on error (sent). */
static int prepare_single(struct session *s, const char *sql, sqlite3_stmt **st)
{
    const char *tail = NULL;
    *st = NULL;
    int rc = exe_prepare(s->task.conn, sql, -1, st, &tail);
    if (rc != SQLITE_OK) {
        ses_send_sqlite_error(s, s->task.conn->db, rc);
        s->skip_to_sync = 1;
        return -1;
    }
    if (tail && strspn(tail, " \t\r\n;") != strlen(tail)) {
        exe_finish(s->task.conn, *st);
        *st = NULL;
        return 1;
    }
    return 0;
}

/* Is a parameter's value text in the client encoding? Every text-format
 * value, and the binary format of the text types (which is the text
 * itself): PostgreSQL refuses invalid UTF-8 and NUL bytes in them. */
static int is_text_param(uint32_t oid, int fmt)
{
    return fmt == 0 || oid == SQL_OID_TEXT || oid == SQL_OID_VARCHAR || oid == SQL_OID_BPCHAR ||
           oid == SQL_OID_NAME || oid == SQL_OID_JSON || oid == SQL_OID_JSONB || oid == SQL_OID_UNKNOWN;
}

/* A format code other than text (0) or binary (1): PostgreSQL refuses it
 * when a value is read or sent in it (22023). 0, or 1 with the error sent. */
static int bad_format(struct session *s, int fmt)
{
    if (fmt == 0 || fmt == 1)
        return 0;
    char err[64];
    snprintf(err, sizeof err, "unsupported format code: %d", fmt);
    fail(s, "22023", err);
    return 1;
}

static int bad_rformats(struct session *s, const struct ses_portal *po)
{
    for (int i = 0; i < po->nrformats; i++)
        if (bad_format(s, po->rformats[i]))
            return 1;
    return 0;
}

static int do_bind(struct session *s, const char *p, size_t len)
{
    struct pgw_rd r;
    char err[300], state[6];
    pgw_rd_init(&r, p, len);
    const char *pname = pgw_rd_str(&r);
    const char *sname = pgw_rd_str(&r);
    int16_t nf = pgw_rd_i16(&r);
    if (!pgw_rd_ok(&r) || nf < 0)
        return fail(s, "08P01", "malformed Bind message");
    const char *fmts = pgw_rd_bytes(&r, (size_t)nf * 2);
    int16_t np = pgw_rd_i16(&r);
    if (!pgw_rd_ok(&r) || np < 0)
        return fail(s, "08P01", "malformed Bind message");
    if (nf > 1 && nf != np)
        return fail(s, "08P01", "bind message has an invalid number of parameter formats");
    if (ensure_maps(s))
        return fail(s, "53200", "out of memory");
    struct ses_prep *prep = map_get(s->prepared, sname);
    if (!prep) {
        snprintf(err, sizeof err, "prepared statement \"%s\" does not exist", sname);
        return fail(s, "26000", err);
    }
    if (s->txn == 'E' && !is_exit(&prep->st))
        return fail(s, "25P02", aborted_msg);
    if (*pname && map_get(s->portals, pname)) {
        snprintf(err, sizeof err, "cursor \"%s\" already exists", pname);
        return fail(s, "42P03", err);
    }
    struct ses_portal *po = util_calloc(1, sizeof *po);
    if (!po)
        return fail(s, "53200", "out of memory");
    po->prep = prep;
    prep->refs++;
    int need = 0;
    if (prep->st.kind == SQL_K_QUERY && prep->st.sql) {
        int rc = prepare_single(s, prep->st.sql, &po->stmt);
        if (rc < 0) {
            ses_portal_free(s, po);
            return 0;
        }
        need = po->stmt ? sqlite3_bind_parameter_count(po->stmt) : prep->st.max_param;
        if (po->stmt && result_shape(po->stmt) != prep->shape) {
            /* the routine tells pgjdbc to prepare the statement again */
            ses_portal_free(s, po);
            pgw_error_routine(&s->out, 'E', "ERROR", "0A000", "cached plan must not change result type", NULL, NULL,
                              "RevalidateCachedQuery");
            if (s->txn == 'T')
                s->txn = 'E';
            s->skip_to_sync = 1;
            return 0;
        }
    }
    int nbind = need; /* the SQLite statement's; Parse may have declared more (Describe reports them) */
    if (need < prep->nparams)
        need = prep->nparams;
    if (np != need && !(np > need && prep->st.kind != SQL_K_QUERY)) {
        snprintf(err, sizeof err, "bind message supplies %d parameters, but prepared statement \"%s\" requires %d", np,
                 sname, need);
        ses_portal_free(s, po);
        return fail(s, "08P01", err);
    }
    for (int i = 0; i < np; i++) {
        int32_t vlen = pgw_rd_i32(&r);
        const char *v = NULL;
        if (vlen >= 0)
            v = pgw_rd_bytes(&r, (size_t)vlen);
        else if (vlen != -1)
            r.err = 1;
        if (!pgw_rd_ok(&r)) {
            ses_portal_free(s, po);
            return fail(s, "08P01", "malformed Bind message");
        }
        int fmt = nf == 0 ? 0 : nf == 1 ? (int16_t)util_get_u16(fmts) : (int16_t)util_get_u16(fmts + 2 * i);
        if (bad_format(s, fmt)) {
            ses_portal_free(s, po);
            return 0;
        }
        uint32_t oid = i < prep->nparams ? prep->param_oids[i] : 0;
        if (v && is_text_param(oid, fmt) && (!pgw_utf8_valid(v, (size_t)vlen) || memchr(v, 0, (size_t)vlen))) {
            ses_portal_free(s, po);
            return fail(s, "22021", "invalid byte sequence for encoding \"UTF8\"");
        }
        if (po->stmt && i < nbind && sql_bind_param(po->stmt, i + 1, oid, fmt, v, vlen, state, err, sizeof err)) {
            ses_portal_free(s, po);
            return fail(s, state, err);
        }
    }
    int16_t nr = pgw_rd_i16(&r);
    if (!pgw_rd_ok(&r) || nr < 0) {
        ses_portal_free(s, po);
        return fail(s, "08P01", "malformed Bind message");
    }
    if (nr > 0) {
        po->rformats = util_calloc((size_t)nr, sizeof *po->rformats);
        if (!po->rformats) {
            ses_portal_free(s, po);
            return fail(s, "53200", "out of memory");
        }
        for (int i = 0; i < nr; i++)
            po->rformats[i] = pgw_rd_i16(&r); /* checked when a row is sent in it, as in PostgreSQL */
        po->nrformats = nr;
    }
    if (nr > 1 && po->stmt && nr != sqlite3_column_count(po->stmt)) {
        snprintf(err, sizeof err, "bind message has %d result formats but query has %d columns", nr,
                 sqlite3_column_count(po->stmt));
        ses_portal_free(s, po);
        return fail(s, "08P01", err);
    }
    if (!pgw_rd_done(&r)) {
        ses_portal_free(s, po);
        return fail(s, "08P01", "malformed Bind message");
    }
    /* the statement's memory includes the bound values (the unnamed portal
     * is one at most, replaced by the next Bind) */
    po->bytes = !*pname ? 0 : sizeof *po + (size_t)po->nrformats * sizeof *po->rformats + strlen(pname) + 1 +
                (po->stmt ? (size_t)sqlite3_stmt_status(po->stmt, SQLITE_STMTSTATUS_MEMUSED, 0) : 0) +
                sizeof(struct map_entry) * 2;
    struct ses_portal *was = map_get(s->portals, pname); /* the unnamed one is replaced */
    if (over_limit(s, po->bytes, was ? was->bytes : 0)) {
        ses_portal_free(s, po);
        return 0;
    }
    if (was && finish_writes(s, was)) {
        ses_portal_free(s, po);
        s->skip_to_sync = 1;
        return 0;
    }
    void *old = NULL;
    if (map_put(s->portals, pname, po, &old)) {
        ses_portal_free(s, po);
        return fail(s, "53200", "out of memory");
    }
    s->held_bytes += po->bytes - (old ? ((struct ses_portal *)old)->bytes : 0);
    ses_portal_free(s, old);
    pgw_simple(&s->out, '2');
    return 0;
}

static int do_describe(struct session *s, const char *p, size_t len)
{
    struct pgw_rd r;
    char err[300];
    pgw_rd_init(&r, p, len);
    uint8_t what = pgw_rd_u8(&r);
    const char *name = pgw_rd_str(&r);
    if (!pgw_rd_done(&r) || (what != 'S' && what != 'P'))
        return fail(s, "08P01", "malformed Describe message");
    if (ensure_maps(s))
        return fail(s, "53200", "out of memory");
    if (what == 'S') {
        struct ses_prep *prep = map_get(s->prepared, name);
        if (!prep) {
            snprintf(err, sizeof err, "prepared statement \"%s\" does not exist", name);
            return fail(s, "26000", err);
        }
        sqlite3_stmt *st = NULL;
        if (prep->st.kind == SQL_K_QUERY && prep->st.sql && prepare_single(s, prep->st.sql, &st) < 0)
            return 0;
        int np = st ? sqlite3_bind_parameter_count(st) : prep->st.max_param;
        if (np < prep->nparams)
            np = prep->nparams;
        size_t o = pgw_begin(&s->out, 't');
        buf_put_u16(&s->out, (uint16_t)np);
        for (int i = 0; i < np; i++)
            buf_put_u32(&s->out, i < prep->nparams && prep->param_oids[i] ? prep->param_oids[i] : SQL_OID_TEXT);
        pgw_end(&s->out, o);
        if (prep->st.kind == SQL_K_SHOW) {
            ses_show_describe(s, prep->st.name);
        } else if (st && sqlite3_column_count(st) > 0) {
            uint32_t *oids = NULL;
            ses_describe_columns(s, st, NULL, 0, 0, &oids);
            util_free(oids);
        } else {
            pgw_simple(&s->out, 'n');
        }
        if (st)
            exe_finish(s->task.conn, st);
        return 0;
    }
    struct ses_portal *po = map_get(s->portals, name);
    if (!po) {
        snprintf(err, sizeof err, "portal \"%s\" does not exist", name);
        return fail(s, "34000", err);
    }
    if (po->prep->st.kind == SQL_K_SHOW) {
        ses_show_describe(s, po->prep->st.name);
        return 0;
    }
    if (!po->stmt || sqlite3_column_count(po->stmt) == 0) {
        pgw_simple(&s->out, 'n');
        return 0;
    }
    if (!po->col_oids) {
        /* types of expression columns come from the first row: step it
         * now for read-only statements (it is sent by Execute) */
        int have_row = 0;
        if (!po->started && sqlite3_stmt_readonly(po->stmt)) {
            int n = sqlite3_column_count(po->stmt), missing = 0;
            for (int i = 0; i < n; i++)
                if (!sqlite3_column_decltype(po->stmt, i))
                    missing = 1;
            if (missing) {
                int rc = sqlite3_step(po->stmt);
                po->started = 1;
                if (rc == SQLITE_ROW) {
                    po->row_ready = 1;
                    have_row = 1;
                } else if (rc == SQLITE_DONE) {
                    po->done = 1;
                } else {
                    ses_send_sqlite_error(s, s->task.conn->db, rc);
                    s->skip_to_sync = 1;
                    return 0;
                }
            }
        }
        ses_describe_columns(s, po->stmt, po->rformats, po->nrformats, have_row, &po->col_oids);
    } else {
        uint32_t *oids = NULL;
        ses_describe_columns(s, po->stmt, po->rformats, po->nrformats, 0, &oids);
        util_free(oids);
    }
    return 0;
}

static void mark_done(struct session *s, const char *name)
{
    struct ses_portal *po = s->portals ? map_get(s->portals, name) : NULL;
    if (po)
        po->done = 1;
}

/* Returns 0 or 1 (wait for write token). */
static int do_execute(struct session *s, const char *p, size_t len)
{
    struct pgw_rd r;
    char err[300];
    pgw_rd_init(&r, p, len);
    const char *name = pgw_rd_str(&r);
    int32_t maxrows = pgw_rd_i32(&r);
    if (!pgw_rd_done(&r))
        return fail(s, "08P01", "malformed Execute message");
    struct ses_portal *po = s->portals ? map_get(s->portals, name) : NULL;
    if (!po) {
        snprintf(err, sizeof err, "portal \"%s\" does not exist", name);
        return fail(s, "34000", err);
    }
    struct sql_stmt *st = &po->prep->st;
    if (s->txn == 'E' && !is_exit(st))
        return fail(s, "25P02", aborted_msg);
    if (po->done && !po->row_ready) {
        /* run to its end before: a portal that returns rows returns no
         * more, any other cannot run again (PostgreSQL) */
        if (st->kind != SQL_K_SHOW && !(po->stmt && sqlite3_column_count(po->stmt) > 0)) {
            snprintf(err, sizeof err, "portal \"%s\" cannot be run", name);
            return fail(s, "55000", err);
        }
        char tag[64];
        pgw_command_complete(&s->out, ses_tag(st, 0, 0, tag, sizeof tag));
        return 0;
    }
    if (st->kind != SQL_K_QUERY) {
        if (st->kind == SQL_K_SHOW) {
            if (bad_rformats(s, po))
                return 0;
            po->done = 1;
            /* rows without a RowDescription */
            size_t mark = s->out.len;
            if (ses_show_var(s, st->name) == 0) {
                /* drop the RowDescription ses_show_var wrote */
                uint32_t tlen = util_get_u32(s->out.data + mark + 1);
                memmove(s->out.data + mark, s->out.data + mark + 1 + tlen, s->out.len - mark - 1 - tlen);
                s->out.len -= 1 + tlen;
            } else {
                s->skip_to_sync = 1;
            }
            return 0;
        }
        int rc = ses_exec_utility(s, st, 1);
        if (rc == 1)
            return 1;
        mark_done(s, name); /* (COMMIT, ROLLBACK and DISCARD drop the portals) */
        if (rc < 0)
            s->skip_to_sync = 1;
        if (ses_after_statement(s, rc == 0))
            s->skip_to_sync = 1;
        return 0;
    }
    if (!st->sql) {
        pgw_empty_query(&s->out);
        return 0;
    }
    if (!po->stmt) {
        /* a shim that expanded to several statements: run them all */
        int rc = ses_exec_simple_stmt(s, st);
        if (rc == 1)
            return 1;
        mark_done(s, name);
        if (rc < 0)
            s->skip_to_sync = 1;
        if (ses_after_statement(s, rc == 0))
            s->skip_to_sync = 1;
        return 0;
    }
    int ncols = sqlite3_column_count(po->stmt);
    if (ncols > 0 && bad_rformats(s, po))
        return 0;
    if (!po->started) {
        int w = ses_needs_write(s, po->stmt, NULL);
        if (w > 0)
            return 1;
        if (w < 0) {
            s->skip_to_sync = 1;
            return 0;
        }
        po->wrote = !sqlite3_stmt_readonly(po->stmt);
        if (po->wrote && ses_stmt_begin(s, po->stmt)) {
            s->skip_to_sync = 1;
            ses_after_statement(s, 0);
            return 0;
        }
    }
    uint64_t ms = ses_var_ms(s, "statement_timeout");
    s->deadline_ns = ms ? util_now_ns() + ms * 1000000ULL : 0;
    s->task.conn->fn.deadline_ns = s->deadline_ns;
    s->task.conn->fn.interrupt_reason = 0;
    int64_t rows = 0;
    int rc;
    if (ncols > 0) {
        if (!po->col_oids) {
            /* no Describe: text unless binary requested; types from decltype/value */
            if (!po->started) {
                rc = sqlite3_step(po->stmt);
                po->started = 1;
                if (rc == SQLITE_ROW)
                    po->row_ready = 1;
                else if (rc != SQLITE_DONE) {
                    ses_send_sqlite_error(s, s->task.conn->db, rc);
                    s->skip_to_sync = 1;
                    po->done = 1;
                    return 0;
                }
            }
            struct buf save = s->out;
            buf_init(&s->out);
            ses_describe_columns(s, po->stmt, po->rformats, po->nrformats, po->row_ready, &po->col_oids);
            buf_free(&s->out);
            s->out = save;
            if (!po->col_oids)
                return fail(s, "53200", "out of memory");
        }
        po->started = 1;
        int pending = po->row_ready;
        po->row_ready = 0;
        rc = ses_send_rows(s, po->stmt, po->col_oids, po->rformats, po->nrformats, maxrows > 0 ? maxrows : 0, &rows,
                           &pending);
        po->row_ready = pending;
    } else {
        po->started = 1;
        rc = sqlite3_step(po->stmt);
        while (rc == SQLITE_ROW)
            rc = sqlite3_step(po->stmt);
        if (rc != SQLITE_DONE)
            ses_send_sqlite_error(s, s->task.conn->db, rc);
    }
    po->rows += rows;
    if (rc == SQLITE_ROW) {
        pgw_simple(&s->out, 's'); /* PortalSuspended */
        return 0;
    }
    po->done = 1;
    int64_t changes = sqlite3_changes64(s->task.conn->db);
    /* end the statement now so that an autocommit write can commit */
    sqlite3_reset(po->stmt);
    if (po->wrote && ses_stmt_end(s, rc == SQLITE_DONE))
        rc = SQLITE_ERROR; /* error sent */
    if (rc != SQLITE_DONE) {
        s->skip_to_sync = 1;
        ses_after_statement(s, 0);
        return 0;
    }
    char tag[64];
    s->cc_mark = s->out.len;
    pgw_command_complete(&s->out, ses_tag(st, changes, rows, tag, sizeof tag));
    if (ses_after_statement(s, 1))
        s->skip_to_sync = 1;
    return 0;
}

static int do_close(struct session *s, const char *p, size_t len)
{
    struct pgw_rd r;
    pgw_rd_init(&r, p, len);
    uint8_t what = pgw_rd_u8(&r);
    const char *name = pgw_rd_str(&r);
    if (!pgw_rd_done(&r) || (what != 'S' && what != 'P'))
        return fail(s, "08P01", "malformed Close message");
    if (what == 'S')
        ses_prep_unref(ses_prepared_take(s, name));
    else if (portal_drop(s, name)) {
        s->skip_to_sync = 1;
        return 0;
    }
    pgw_simple(&s->out, '3');
    return 0;
}

int ses_handle_extended(struct session *s, char type, const char *p, size_t len)
{
    if (type == 'S') {
        if (s->copy_in)
            return 0; /* ignored during COPY FROM STDIN, as PostgreSQL does: libpq and other
                       * clients send Sync after an Execute without knowing it starts a COPY */
        s->skip_to_sync = 0;
        if (s->txn == 'I') {
            finish_writes(s, NULL);
            ses_portals_clear(s);
            exe_write_release(s->srv->pool, &s->task);
        }
        ses_ready(s);
        return 0;
    }
    if (type == 'H') {
        if (s->out.len && !s->closing) {
            ses_wait_visible(s);
            size_t n;
            char *d = buf_steal(&s->out, &n);
            net_post(s, d, n, 0);
        }
        return 0;
    }
    if (s->skip_to_sync)
        return 0;
    switch (type) {
    case 'P':
        return do_parse(s, p, len);
    case 'B':
        return do_bind(s, p, len);
    case 'D':
        return do_describe(s, p, len);
    case 'E':
        return do_execute(s, p, len);
    case 'C':
        return do_close(s, p, len);
    }
    return 0;
}
