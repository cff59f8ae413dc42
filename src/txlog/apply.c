/* txlog/apply.c: applying records (triggers and foreign keys off, rows by
 * rowid or primary key, DDL as text, the LSN in _orbit_applied in the same
 * transaction), undoing captured records, and the applied-LSN helpers. */
#include "txlog_int.h"

#include <stdio.h>
#include <string.h>

/* Cached per table: metadata and the three statements. */
struct ameta {
    struct txl_meta m;
    sqlite3_stmt *ins, *upd, *del;
};

struct txl_applier {
    sqlite3 *db;
    struct map tables; /* name -> struct ameta * */
    int64_t schema;    /* schema_version the cache was built at */
    sqlite3_stmt *st_schema, *st_get_lsn, *st_set_lsn;
    sqlite3_stmt *fixed[5]; /* run_fixed's statements, prepared on first use */
    struct txl_value *keybuf;
    size_t keycap;
    /* the open application, if any */
    const struct txl_record *rec;
    size_t pos;
    int active;
    int busy; /* a fixed statement (BEGIN IMMEDIATE, COMMIT) met SQLITE_BUSY */
    int saved_fk, saved_trig;
    /* an open batch (txl_applier_batch_*): the newest LSN it holds, and how
     * many records it applied */
    int batch;
    uint64_t batch_lsn;
    size_t batch_n;
};

static const char SQL_GET_LSN[] = "SELECT lsn FROM main._orbit_applied WHERE id = 1";
static const char SQL_GET_STATE[] = "SELECT lsn, committed FROM main._orbit_applied WHERE id = 1";
static const char SQL_SET_LSN[] = "INSERT INTO main._orbit_applied(id, lsn, committed) VALUES (1, ?1, ?2) "
                                  "ON CONFLICT(id) DO UPDATE SET lsn = excluded.lsn, committed = excluded.committed";
static const char SQL_MARK_COMMITTED[] = "UPDATE main._orbit_applied SET committed = 1 WHERE id = 1 AND lsn = ?1";
static const char SQL_CREATE_LSN[] = "CREATE TABLE IF NOT EXISTS main._orbit_applied("
                                     "id INTEGER PRIMARY KEY CHECK (id = 1), lsn INTEGER NOT NULL, "
                                     "committed INTEGER NOT NULL DEFAULT 0)";
/* databases made before the committed column */
static const char SQL_ADD_COMMITTED[] = "ALTER TABLE main._orbit_applied ADD COLUMN committed INTEGER NOT NULL DEFAULT 0";

/* ---- applied LSN ------------------------------------------------------------ */

static int no_such_table(sqlite3 *db)
{
    return strstr(sqlite3_errmsg(db), "no such table") != NULL;
}

static int no_committed_column(sqlite3 *db)
{
    const char *m = sqlite3_errmsg(db);
    return strstr(m, "no such column: committed") || strstr(m, "no column named committed");
}

/* Prepare sql on _orbit_applied, creating the table or adding its
 * committed column first when they are missing. */
static int prepare_applied(sqlite3 *db, const char *sql, sqlite3_stmt **st, char *err, size_t errcap)
{
    int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    if (rc != SQLITE_OK && (no_such_table(db) || no_committed_column(db))) {
        if (txl_exec(db, no_such_table(db) ? SQL_CREATE_LSN : SQL_ADD_COMMITTED, err, errcap))
            return -1;
        rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
    }
    if (rc != SQLITE_OK) {
        txl_errf(err, errcap, "storing the applied LSN: %s", sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int txl_get_lsn_cached(sqlite3 *db, sqlite3_stmt **cache, uint64_t *lsn, char *err, size_t errcap)
{
    sqlite3_stmt *st = cache ? *cache : NULL;
    *lsn = 0;
    if (!st) {
        if (sqlite3_prepare_v3(db, SQL_GET_LSN, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
            if (no_such_table(db))
                return 0;
            txl_errf(err, errcap, "reading the applied LSN: %s", sqlite3_errmsg(db));
            return -1;
        }
        if (cache)
            *cache = st;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *lsn = (uint64_t)sqlite3_column_int64(st, 0);
    int ret = 0;
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        txl_errf(err, errcap, "reading the applied LSN: %s", sqlite3_errmsg(db));
        ret = -1;
    }
    sqlite3_reset(st);
    if (!cache)
        sqlite3_finalize(st);
    return ret;
}

int txl_set_lsn_cached(sqlite3 *db, sqlite3_stmt **cache, uint64_t lsn, int committed, char *err, size_t errcap)
{
    sqlite3_stmt *st = cache ? *cache : NULL;
    if (!st) {
        if (prepare_applied(db, SQL_SET_LSN, &st, err, errcap))
            return -1;
        if (cache)
            *cache = st;
    }
    sqlite3_bind_int64(st, 1, (sqlite3_int64)lsn);
    sqlite3_bind_int(st, 2, committed ? 1 : 0);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        txl_errf(err, errcap, "storing the applied LSN: %s", sqlite3_errmsg(db));
    sqlite3_reset(st);
    if (!cache)
        sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int txl_applied_state(sqlite3 *db, uint64_t *lsn, int *committed, char *err, size_t errcap)
{
    sqlite3_stmt *st = NULL;
    *lsn = 0;
    *committed = 0;
    if (sqlite3_prepare_v2(db, SQL_GET_STATE, -1, &st, NULL) != SQLITE_OK) {
        if (no_committed_column(db))
            return txl_applied_lsn(db, lsn, err, errcap); /* made before the column: not known */
        if (no_such_table(db))
            return 0;
        txl_errf(err, errcap, "reading the applied LSN: %s", sqlite3_errmsg(db));
        return -1;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *lsn = (uint64_t)sqlite3_column_int64(st, 0);
        *committed = sqlite3_column_int(st, 1) != 0;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        txl_errf(err, errcap, "reading the applied LSN: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -1;
}

int txl_mark_committed(sqlite3 *db, uint64_t lsn, char *err, size_t errcap)
{
    sqlite3_stmt *st = NULL;
    if (prepare_applied(db, SQL_MARK_COMMITTED, &st, err, errcap))
        return -1;
    sqlite3_bind_int64(st, 1, (sqlite3_int64)lsn);
    int rc = sqlite3_step(st);
    if (rc != SQLITE_DONE)
        txl_errf(err, errcap, "marking the applied LSN committed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : -1;
}

int txl_applied_lsn(sqlite3 *db, uint64_t *lsn, char *err, size_t errcap)
{
    return txl_get_lsn_cached(db, NULL, lsn, err, errcap);
}

int txl_set_applied_lsn(sqlite3 *db, uint64_t lsn, char *err, size_t errcap)
{
    return txl_set_lsn_cached(db, NULL, lsn, 0, err, errcap);
}

/* ---- the per-table cache ------------------------------------------------------ */

static void ameta_free(struct ameta *am)
{
    sqlite3_finalize(am->ins);
    sqlite3_finalize(am->upd);
    sqlite3_finalize(am->del);
    txl_meta_clear(&am->m);
    util_free(am);
}

static void flush_cache(struct txl_applier *a)
{
    struct ameta *am;
    for (size_t it = 0; map_next(&a->tables, &it, NULL, (void **)&am);)
        ameta_free(am);
    map_free(&a->tables);
    /* the applied-LSN statements survive: SQLite re-prepares them */
}

int txl_applier_new(sqlite3 *db, struct txl_applier **out)
{
    struct txl_applier *a = util_calloc(1, sizeof *a);
    *out = a;
    if (!a)
        return -1;
    a->db = db;
    a->schema = -1;
    map_init(&a->tables);
    return 0;
}

void txl_applier_free(struct txl_applier *a)
{
    if (!a)
        return;
    txl_applier_abort(a);
    flush_cache(a);
    sqlite3_finalize(a->st_schema);
    sqlite3_finalize(a->st_get_lsn);
    sqlite3_finalize(a->st_set_lsn);
    for (size_t i = 0; i < ARRAY_LEN(a->fixed); i++)
        sqlite3_finalize(a->fixed[i]);
    util_free(a->keybuf);
    util_free(a);
}

static struct ameta *get_table(struct txl_applier *a, const char *table, char *err, size_t errcap)
{
    struct ameta *am = map_get(&a->tables, table);
    if (am)
        return am;
    am = util_calloc(1, sizeof *am);
    if (!am) {
        txl_errf(err, errcap, "out of memory");
        return NULL;
    }
    int rc = txl_meta_load(a->db, table, &am->m, err, errcap);
    if (rc == 0 && map_put(&a->tables, table, am, NULL)) {
        txl_errf(err, errcap, "out of memory");
        rc = -1;
    }
    if (rc) {
        if (rc > 0)
            txl_errf(err, errcap, "no such table: %s", table);
        txl_meta_clear(&am->m);
        util_free(am);
        return NULL;
    }
    return am;
}

static void put_table(struct buf *b, const struct txl_meta *m)
{
    buf_puts(b, "main.");
    txl_quote_ident(b, m->name);
}

static void put_key_where(struct buf *b, const struct txl_meta *m, int first)
{
    buf_puts(b, " WHERE ");
    if (!m->keyed) {
        buf_printf(b, "%s = ?%d", m->rowid, first);
        return;
    }
    for (int k = 0; k < m->npk; k++) {
        if (k)
            buf_puts(b, " AND ");
        txl_quote_ident(b, m->names[m->pk[k]]);
        buf_printf(b, " = ?%d", first + k);
    }
}

static sqlite3_stmt *prepare_op(struct txl_applier *a, struct ameta *am, int op, char *err, size_t errcap)
{
    sqlite3_stmt **slot = op == TXL_INSERT ? &am->ins : op == TXL_UPDATE ? &am->upd : &am->del;
    if (*slot)
        return *slot;
    const struct txl_meta *m = &am->m;
    if (!m->keyed && !m->rowid) {
        txl_errf(err, errcap, "table \"%s\": its columns shadow every name of the rowid", m->name);
        return NULL;
    }
    struct buf b;
    buf_init(&b);
    int n = m->ncap;
    if (op == TXL_INSERT) {
        buf_puts(&b, "INSERT OR ABORT INTO ");
        put_table(&b, m);
        buf_putc(&b, '(');
        for (int k = 0; k < n; k++) {
            if (k)
                buf_putc(&b, ',');
            txl_quote_ident(&b, m->names[k]);
        }
        /* the rowid last: it wins over an INTEGER PRIMARY KEY column */
        if (!m->keyed)
            buf_printf(&b, ",%s", m->rowid);
        buf_puts(&b, ") VALUES (");
        for (int k = 0; k < n + !m->keyed; k++)
            buf_printf(&b, "%s?%d", k ? "," : "", k + 1);
        buf_putc(&b, ')');
    } else if (op == TXL_UPDATE) {
        buf_puts(&b, "UPDATE OR ABORT ");
        put_table(&b, m);
        buf_puts(&b, " SET ");
        for (int k = 0; k < n; k++) {
            if (k)
                buf_putc(&b, ',');
            txl_quote_ident(&b, m->names[k]);
            buf_printf(&b, " = ?%d", k + 1);
        }
        if (!m->keyed)
            buf_printf(&b, ",%s = ?%d", m->rowid, n + 1);
        put_key_where(&b, m, n + 1 + !m->keyed);
    } else {
        buf_puts(&b, "DELETE FROM ");
        put_table(&b, m);
        put_key_where(&b, m, 1);
    }
    buf_putc(&b, 0);
    if (!buf_ok(&b)) {
        buf_free(&b);
        txl_errf(err, errcap, "out of memory");
        return NULL;
    }
    if (sqlite3_prepare_v3(a->db, b.data, -1, SQLITE_PREPARE_PERSISTENT, slot, NULL) != SQLITE_OK) {
        txl_errf(err, errcap, "preparing %s: %s", b.data, sqlite3_errmsg(a->db));
        *slot = NULL;
    }
    buf_free(&b);
    return *slot;
}

/* ---- row operations ------------------------------------------------------------ */

static int finish(struct txl_applier *a, sqlite3_stmt *st, int want_one_row, char *err, size_t errcap)
{
    int rc = sqlite3_step(st);
    int ret = 0;
    if (rc != SQLITE_DONE) {
        txl_errf(err, errcap, "%s", sqlite3_errmsg(a->db));
        ret = -1;
    } else if (want_one_row && sqlite3_changes(a->db) != 1) {
        txl_errf(err, errcap, "the row was not found (the databases have diverged)");
        ret = -1;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int bind_all(sqlite3_stmt *st, int first, const struct txl_value *v, int n)
{
    for (int k = 0; k < n; k++)
        if (txl_bind_value(st, first + k, &v[k]) != SQLITE_OK)
            return -1;
    return 0;
}

static int do_insert(struct txl_applier *a, struct ameta *am, const struct txl_value *vals, int64_t rowid, char *err,
                     size_t errcap)
{
    sqlite3_stmt *st = prepare_op(a, am, TXL_INSERT, err, errcap);
    if (!st)
        return -1;
    int n = am->m.ncap;
    if (bind_all(st, 1, vals, n) || (!am->m.keyed && sqlite3_bind_int64(st, n + 1, rowid) != SQLITE_OK)) {
        txl_errf(err, errcap, "binding: %s", sqlite3_errmsg(a->db));
        sqlite3_reset(st);
        return -1;
    }
    return finish(a, st, 0, err, errcap);
}

static int do_update(struct txl_applier *a, struct ameta *am, const struct txl_value *vals, int64_t new_rowid,
                     int64_t where_rowid, const struct txl_value *where_key, char *err, size_t errcap)
{
    sqlite3_stmt *st = prepare_op(a, am, TXL_UPDATE, err, errcap);
    if (!st)
        return -1;
    int n = am->m.ncap, brc = bind_all(st, 1, vals, n);
    if (!am->m.keyed)
        brc |= sqlite3_bind_int64(st, n + 1, new_rowid) | sqlite3_bind_int64(st, n + 2, where_rowid);
    else
        brc |= bind_all(st, n + 1, where_key, am->m.npk);
    if (brc) {
        txl_errf(err, errcap, "binding: %s", sqlite3_errmsg(a->db));
        sqlite3_reset(st);
        return -1;
    }
    return finish(a, st, 1, err, errcap);
}

static int do_delete(struct txl_applier *a, struct ameta *am, int64_t where_rowid, const struct txl_value *where_key,
                     char *err, size_t errcap)
{
    sqlite3_stmt *st = prepare_op(a, am, TXL_DELETE, err, errcap);
    if (!st)
        return -1;
    int brc = am->m.keyed ? bind_all(st, 1, where_key, am->m.npk) : sqlite3_bind_int64(st, 1, where_rowid);
    if (brc) {
        txl_errf(err, errcap, "binding: %s", sqlite3_errmsg(a->db));
        sqlite3_reset(st);
        return -1;
    }
    return finish(a, st, 1, err, errcap);
}

static const char *op_name(int op)
{
    return op == TXL_INSERT ? "INSERT" : op == TXL_UPDATE ? "UPDATE" : op == TXL_DELETE ? "DELETE" : "DDL";
}

/* Check a row change against the table it names; returns its cache entry. */
static struct ameta *row_table(struct txl_applier *a, const struct txl_change *ch, int undo, char *err,
                               size_t errcap)
{
    if (!ch->table) {
        txl_errf(err, errcap, "row change without a table");
        return NULL;
    }
    struct ameta *am = get_table(a, ch->table, err, errcap);
    if (!am)
        return NULL;
    const struct txl_meta *m = &am->m;
    if (ch->keyed != m->keyed) {
        txl_errf(err, errcap, "table \"%s\" is %sa WITHOUT ROWID table here but not in the record", m->name,
                 m->keyed ? "" : "not ");
        return NULL;
    }
    if ((int)ch->ncol != m->ncap && (ch->op != TXL_DELETE || undo)) {
        txl_errf(err, errcap, "table \"%s\" has %d stored columns here, the record has %u", m->name, m->ncap,
                 ch->ncol);
        return NULL;
    }
    if ((ch->op == TXL_INSERT || ch->op == TXL_UPDATE) && !ch->newv) {
        txl_errf(err, errcap, "change without new values");
        return NULL;
    }
    if (undo && ch->op != TXL_INSERT && !ch->oldv) {
        txl_errf(err, errcap, "change without old values (only captured records can be undone)");
        return NULL;
    }
    if (!undo && m->keyed && ch->op != TXL_INSERT && ((int)ch->nkey != m->npk || !ch->key)) {
        txl_errf(err, errcap, "table \"%s\" has a %d-column primary key, the record has %u key values", m->name,
                 m->npk, ch->nkey);
        return NULL;
    }
    return am;
}

static int refresh_schema(struct txl_applier *a, char *err, size_t errcap)
{
    if (!a->st_schema &&
        sqlite3_prepare_v3(a->db, "PRAGMA main.schema_version", -1, SQLITE_PREPARE_PERSISTENT, &a->st_schema, NULL) !=
            SQLITE_OK) {
        txl_errf(err, errcap, "%s", sqlite3_errmsg(a->db));
        return -1;
    }
    int64_t v = -1;
    if (sqlite3_step(a->st_schema) == SQLITE_ROW)
        v = sqlite3_column_int64(a->st_schema, 0);
    sqlite3_reset(a->st_schema);
    if (v < 0) {
        txl_errf(err, errcap, "reading the schema version: %s", sqlite3_errmsg(a->db));
        return -1;
    }
    if (v != a->schema)
        flush_cache(a);
    a->schema = v;
    return 0;
}

static int apply_change(struct txl_applier *a, const struct txl_change *ch, char *err, size_t errcap)
{
    if (ch->op == TXL_DDL) {
        if (!ch->sql || txl_exec(a->db, ch->sql, err, errcap))
            return -1;
        return refresh_schema(a, err, errcap);
    }
    if (ch->op < TXL_INSERT || ch->op > TXL_DELETE) {
        txl_errf(err, errcap, "unknown operation %u", ch->op);
        return -1;
    }
    struct ameta *am = row_table(a, ch, 0, err, errcap);
    if (!am)
        return -1;
    switch (ch->op) {
    case TXL_INSERT:
        return do_insert(a, am, ch->newv, ch->new_rowid, err, errcap);
    case TXL_UPDATE:
        return do_update(a, am, ch->newv, ch->new_rowid, ch->old_rowid, ch->key, err, errcap);
    default:
        return do_delete(a, am, ch->old_rowid, ch->key, err, errcap);
    }
}

/* The key of a keyed row image (its primary key columns). */
static const struct txl_value *key_of(struct txl_applier *a, const struct txl_meta *m, const struct txl_value *v)
{
    if ((size_t)m->npk > a->keycap) {
        struct txl_value *k = util_realloc(a->keybuf, (size_t)m->npk * sizeof *k);
        if (!k)
            return NULL;
        a->keybuf = k;
        a->keycap = (size_t)m->npk;
    }
    for (int k = 0; k < m->npk; k++)
        a->keybuf[k] = v[m->pk[k]];
    return a->keybuf;
}

static int undo_change(struct txl_applier *a, const struct txl_change *ch, char *err, size_t errcap)
{
    struct ameta *am = row_table(a, ch, 1, err, errcap);
    if (!am)
        return -1;
    const struct txl_meta *m = &am->m;
    const struct txl_value *newkey = NULL;
    if (m->keyed && ch->op != TXL_DELETE && !(newkey = key_of(a, m, ch->newv))) {
        txl_errf(err, errcap, "out of memory");
        return -1;
    }
    switch (ch->op) {
    case TXL_INSERT:
        return do_delete(a, am, ch->new_rowid, newkey, err, errcap);
    case TXL_UPDATE:
        return do_update(a, am, ch->oldv, ch->old_rowid, ch->new_rowid, newkey, err, errcap);
    default:
        return do_insert(a, am, ch->oldv, ch->old_rowid, err, errcap);
    }
}

/* ---- transaction frame ---------------------------------------------------------- */

/* The statements every record runs around its changes, prepared once per
 * applier instead of parsed by sqlite3_exec each time (five per record:
 * SQLite's parser was the top user-space cost of a follower's applier). */
enum { FX_FK_GET, FX_FK_OFF, FX_FK_ON, FX_BEGIN, FX_COMMIT };
static const char *const fixed_sql[] = {"PRAGMA foreign_keys", "PRAGMA foreign_keys=OFF", "PRAGMA foreign_keys=ON",
                                        "BEGIN IMMEDIATE", "COMMIT"};

/* Run fixed statement `which`; *row gets column 0 of the row it returns
 * (row NULL: it must return none). 0 ok; -1 with err. */
static int run_fixed(struct txl_applier *a, int which, int *row, char *err, size_t errcap)
{
    sqlite3_stmt **st = &a->fixed[which];
    if (!*st && sqlite3_prepare_v3(a->db, fixed_sql[which], -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        txl_errf(err, errcap, "%s: %s", fixed_sql[which], sqlite3_errmsg(a->db));
        return -1;
    }
    int rc = sqlite3_step(*st);
    int ok = row ? rc == SQLITE_ROW : rc == SQLITE_DONE;
    if ((rc & 0xff) == SQLITE_BUSY)
        a->busy = 1;
    if (ok && row)
        *row = sqlite3_column_int(*st, 0);
    if (!ok)
        txl_errf(err, errcap, "%s: %s", fixed_sql[which], sqlite3_errmsg(a->db));
    sqlite3_reset(*st);
    return ok ? 0 : -1;
}

static void restore(struct txl_applier *a)
{
    sqlite3_db_config(a->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, a->saved_trig, (int *)NULL);
    char err[200];
    if (a->saved_fk)
        (void)run_fixed(a, FX_FK_ON, NULL, err, sizeof err);
    txl_capture_pause_db(a->db, -1);
    a->active = 0;
    a->rec = NULL;
    a->batch = 0;
}

static void rollback(struct txl_applier *a)
{
    if (!sqlite3_get_autocommit(a->db))
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    flush_cache(a);
    a->schema = -1;
    restore(a);
}

void txl_applier_abort(struct txl_applier *a)
{
    if (a->active)
        rollback(a);
}

static int open_frame(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap)
{
    if (a->active) {
        txl_errf(err, errcap, "another record is being applied on this connection");
        return -1;
    }
    if (!sqlite3_get_autocommit(a->db)) {
        txl_errf(err, errcap, "the connection is inside a transaction");
        return -1;
    }
    if (run_fixed(a, FX_FK_GET, &a->saved_fk, err, errcap))
        return -1;
    if (sqlite3_db_config(a->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, -1, &a->saved_trig) != SQLITE_OK) {
        txl_errf(err, errcap, "reading SQLITE_DBCONFIG_ENABLE_TRIGGER: %s", sqlite3_errmsg(a->db));
        return -1;
    }
    txl_capture_pause_db(a->db, 1);
    a->active = 1;
    a->rec = r;
    a->pos = 0;
    if ((a->saved_fk && run_fixed(a, FX_FK_OFF, NULL, err, errcap)) ||
        sqlite3_db_config(a->db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, (int *)NULL) != SQLITE_OK ||
        run_fixed(a, FX_BEGIN, NULL, err, errcap) || refresh_schema(a, err, errcap)) {
        rollback(a);
        return -1;
    }
    return 0;
}

/* committed: the record came from the log (Raft committed it); an undo
 * leaves the applied LSN not known to be committed. */
static int close_frame(struct txl_applier *a, uint64_t lsn, int committed, char *err, size_t errcap)
{
    if (txl_set_lsn_cached(a->db, &a->st_set_lsn, lsn, committed, err, errcap) ||
        run_fixed(a, FX_COMMIT, NULL, err, errcap)) {
        rollback(a);
        return -1;
    }
    restore(a);
    return 0;
}

int txl_applier_begin(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap)
{
    if (open_frame(a, r, err, errcap))
        return -1;
    uint64_t held;
    if (txl_get_lsn_cached(a->db, &a->st_get_lsn, &held, err, errcap)) {
        rollback(a);
        return -1;
    }
    if (r->lsn && held >= r->lsn) {
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
        restore(a);
        return 1;
    }
    return 0;
}

/* Apply r's changes from a->pos on, at most budget of them. 0 all done, 1
 * more left, -1 error (rolled back). */
static int apply_changes(struct txl_applier *a, const struct txl_record *r, size_t budget, char *err, size_t errcap)
{
    for (; a->pos < r->nchanges && budget; a->pos++, budget--) {
        const struct txl_change *ch = &r->changes[a->pos];
        char why[400];
        if (apply_change(a, ch, why, sizeof why)) {
            txl_errf(err, errcap, "applying LSN %llu, change %zu (%s%s%s): %s", (unsigned long long)r->lsn, a->pos,
                     op_name(ch->op), ch->op != TXL_DDL ? " " : "", ch->op != TXL_DDL && ch->table ? ch->table : "",
                     why);
            rollback(a);
            return -1;
        }
    }
    return a->pos < r->nchanges;
}

int txl_applier_step(struct txl_applier *a, size_t budget, char *err, size_t errcap)
{
    if (!a->active || a->batch) {
        txl_errf(err, errcap, "no record is being applied");
        return -1;
    }
    int rc = apply_changes(a, a->rec, budget, err, errcap);
    if (rc)
        return rc;
    return close_frame(a, a->rec->lsn, 1, err, errcap);
}

/* ---- batches: consecutive records in one transaction ---- */

int txl_applier_busy(const struct txl_applier *a)
{
    return a->busy;
}

int txl_applier_batch_begin(struct txl_applier *a, char *err, size_t errcap)
{
    a->busy = 0;
    if (open_frame(a, NULL, err, errcap))
        return -1;
    if (txl_get_lsn_cached(a->db, &a->st_get_lsn, &a->batch_lsn, err, errcap)) {
        rollback(a);
        return -1;
    }
    a->batch = 1;
    a->batch_n = 0;
    return 0;
}

int txl_applier_batch_add(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap)
{
    if (!a->active || !a->batch) {
        txl_errf(err, errcap, "no batch is open");
        return -1;
    }
    if (r->lsn && a->batch_lsn >= r->lsn)
        return 1;
    a->pos = 0;
    if (apply_changes(a, r, SIZE_MAX, err, errcap))
        return -1;
    if (r->lsn > a->batch_lsn)
        a->batch_lsn = r->lsn;
    a->batch_n++;
    return 0;
}

int txl_applier_batch_commit(struct txl_applier *a, char *err, size_t errcap)
{
    if (!a->active || !a->batch) {
        txl_errf(err, errcap, "no batch is open");
        return -1;
    }
    if (!a->batch_n) { /* every record was held already */
        sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
        restore(a);
        return 0;
    }
    return close_frame(a, a->batch_lsn, 1, err, errcap);
}

int txl_applier_apply(struct txl_applier *a, const struct txl_record *r, char *err, size_t errcap)
{
    int rc = txl_applier_begin(a, r, err, errcap);
    if (rc)
        return rc;
    return txl_applier_step(a, SIZE_MAX, err, errcap);
}

int txl_applier_undo(struct txl_applier *a, const struct txl_record *r, uint64_t prev_lsn, char *err, size_t errcap)
{
    if (txl_record_has_ddl(r)) {
        txl_errf(err, errcap, "LSN %llu contains DDL, which cannot be undone from row values; restore a snapshot",
                 (unsigned long long)r->lsn);
        return -1;
    }
    if (open_frame(a, r, err, errcap))
        return -1;
    for (size_t i = r->nchanges; i-- > 0;) {
        const struct txl_change *ch = &r->changes[i];
        char why[400];
        if (undo_change(a, ch, why, sizeof why)) {
            txl_errf(err, errcap, "undoing LSN %llu, change %zu (%s %s): %s", (unsigned long long)r->lsn, i,
                     op_name(ch->op), ch->table ? ch->table : "", why);
            rollback(a);
            return -1;
        }
    }
    return close_frame(a, prev_lsn, 0, err, errcap);
}

int txl_apply(sqlite3 *db, const struct txl_record *r, char *err, size_t errcap)
{
    struct txl_applier *a;
    if (txl_applier_new(db, &a)) {
        txl_errf(err, errcap, "out of memory");
        return -1;
    }
    int rc = txl_applier_apply(a, r, err, errcap);
    txl_applier_free(a);
    return rc;
}

int txl_undo(sqlite3 *db, const struct txl_record *r, uint64_t prev_lsn, char *err, size_t errcap)
{
    struct txl_applier *a;
    if (txl_applier_new(db, &a)) {
        txl_errf(err, errcap, "out of memory");
        return -1;
    }
    int rc = txl_applier_undo(a, r, prev_lsn, err, errcap);
    txl_applier_free(a);
    return rc;
}
