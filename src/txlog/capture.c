/* txlog/capture.c: collects a transaction's changes on one connection
 * with SQLite's preupdate hook, mirrors statements, DDL and savepoints so
 * that only what SQLite keeps is kept, and hands them over as a record. */
#include "txlog_int.h"

#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* Per-table state. A change's table pointer is the name member, so the
 * cmeta of a change is found from it; cmetas live until pruned while no
 * change refers to them. */
struct cmeta {
    struct txl_meta m;
    int loaded; /* m is valid */
    int stale;  /* reload before use (after DDL) */
    uint64_t take_gen;
    size_t take_idx;
    char name[];
};

struct savepoint {
    char *name;
    size_t mark;
};

struct txl_capture {
    sqlite3 *db;
    struct txl_capture *reg_next;
    int paused;
    struct txl_change *ch;
    size_t n, cap;
    size_t resolved; /* changes [0, resolved) are final */
    size_t stmt_mark;
    int64_t stmt_schema;
    int in_ddl;
    size_t ddl_mark;
    char *ddl_sql;
    int ddl_main_write;
    int64_t ddl_schema, ddl_uv, ddl_appid;
    struct savepoint *sp;
    size_t nsp, capsp;
    struct map metas; /* table name -> struct cmeta * */
    uint64_t take_gen;
    struct txl_value *scr; /* scratch values */
    size_t scr_cap;
    sqlite3_stmt *st_schema, *st_uv, *st_appid, *st_lsn;
    int failed;
    char errmsg[300];
};

static struct cmeta *cmeta_of(const char *table)
{
    return (struct cmeta *)(void *)(table - offsetof(struct cmeta, name));
}

static void fail(struct txl_capture *c, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void fail(struct txl_capture *c, const char *fmt, ...)
{
    if (c->failed)
        return;
    c->failed = 1;
    int n = snprintf(c->errmsg, sizeof c->errmsg, "txlog capture: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg + n, sizeof c->errmsg - (size_t)n, fmt, ap);
    va_end(ap);
}

/* ---- registry: which captures are attached to which connection ---------- */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct txl_capture *reg_head;

static void mark_all_stale(struct txl_capture *c)
{
    struct cmeta *cm;
    for (size_t it = 0; map_next(&c->metas, &it, NULL, (void **)&cm);)
        cm->stale = 1;
}

void txl_capture_pause_db(sqlite3 *db, int delta)
{
    pthread_mutex_lock(&reg_mu);
    for (struct txl_capture *c = reg_head; c; c = c->reg_next) {
        if (c->db != db)
            continue;
        c->paused += delta;
        if (delta < 0)
            mark_all_stale(c);
    }
    pthread_mutex_unlock(&reg_mu);
}

/* ---- changes ------------------------------------------------------------------ */

static void truncate_to(struct txl_capture *c, size_t mark)
{
    if (mark > c->n)
        return;
    for (size_t i = mark; i < c->n; i++)
        util_free(c->ch[i].mem_);
    c->n = mark;
    if (c->resolved > mark)
        c->resolved = mark;
}

static int scratch(struct txl_capture *c, size_t n)
{
    if (n <= c->scr_cap)
        return 0;
    size_t nc = c->scr_cap ? c->scr_cap : 32;
    while (nc < n)
        nc *= 2;
    struct txl_value *s = util_realloc(c->scr, nc * sizeof *s);
    if (!s)
        return -1;
    c->scr = s;
    c->scr_cap = nc;
    return 0;
}

static struct cmeta *cmeta_get(struct txl_capture *c, const char *table)
{
    struct cmeta *cm = map_get(&c->metas, table);
    if (cm)
        return cm;
    size_t len = strlen(table);
    cm = util_calloc(1, sizeof *cm + len + 1);
    if (!cm)
        return NULL;
    memcpy(cm->name, table, len + 1);
    if (map_put(&c->metas, table, cm, NULL)) {
        util_free(cm);
        return NULL;
    }
    return cm;
}

/* Read one sqlite3_value into a txl_value pointing at SQLite's memory. */
static int read_value(sqlite3_value *sv, struct txl_value *v)
{
    memset(v, 0, sizeof *v);
    if (!sv)
        return 0; /* NULL */
    switch (sqlite3_value_type(sv)) {
    case SQLITE_INTEGER:
        v->type = TXL_INTEGER;
        v->i = sqlite3_value_int64(sv);
        return 0;
    case SQLITE_FLOAT:
        v->type = TXL_REAL;
        v->d = sqlite3_value_double(sv);
        return 0;
    case SQLITE_TEXT:
        v->type = TXL_TEXT;
        v->p = sqlite3_value_text(sv);
        if (!v->p)
            return -1;
        v->n = (uint32_t)sqlite3_value_bytes(sv);
        return 0;
    case SQLITE_BLOB:
        v->type = TXL_BLOB;
        v->p = sqlite3_value_blob(sv);
        v->n = (uint32_t)sqlite3_value_bytes(sv);
        if (!v->p && v->n)
            return -1;
        return 0;
    default:
        v->type = TXL_NULL;
        return 0;
    }
}

static int push_change(struct txl_capture *c, const struct txl_change *ch)
{
    if (c->n == c->cap) {
        size_t nc = c->cap ? c->cap * 2 : 64;
        struct txl_change *a = util_realloc(c->ch, nc * sizeof *a);
        if (!a)
            return -1;
        c->ch = a;
        c->cap = nc;
    }
    c->ch[c->n++] = *ch;
    return 0;
}

static void set_ipk(const struct txl_meta *m, struct txl_change *ch)
{
    if (m->keyed || m->ipk < 0)
        return;
    if (ch->newv)
        ch->newv[m->ipk] = (struct txl_value){.type = TXL_INTEGER, .i = ch->new_rowid};
    if (ch->oldv)
        ch->oldv[m->ipk] = (struct txl_value){.type = TXL_INTEGER, .i = ch->old_rowid};
}

static void set_key(const struct txl_meta *m, struct txl_change *ch)
{
    ch->keyed = (uint8_t)m->keyed;
    if (!m->keyed) {
        ch->nkey = 0;
        ch->key = NULL;
        return;
    }
    ch->old_rowid = ch->new_rowid = 0;
    if (ch->op == TXL_INSERT) {
        ch->nkey = 0;
        ch->key = NULL;
        return;
    }
    ch->nkey = (uint32_t)m->npk;
    for (int k = 0; k < m->npk; k++)
        ch->key[k] = ch->oldv[m->pk[k]];
}

static void capture_row(struct txl_capture *c, sqlite3 *db, int op, const char *table, sqlite3_int64 k1,
                        sqlite3_int64 k2)
{
    struct cmeta *cm = cmeta_get(c, table);
    if (!cm) {
        fail(c, "out of memory");
        return;
    }
    int n = sqlite3_preupdate_count(db);
    const struct txl_meta *m = cm->loaded && !cm->stale && cm->m.nall == n ? &cm->m : NULL;
    if (m && txl_meta_unreadable(m)) {
        fail(c, "table \"%s\": SQLite's preupdate hook cannot report its columns (a VIRTUAL generated column "
                "precedes its INTEGER PRIMARY KEY); make the generated column STORED",
             table);
        return;
    }
    int nv = m ? m->ncap : n;
    int want_new = op != SQLITE_DELETE, want_old = op != SQLITE_INSERT;
    int nkey = want_old ? (m ? (m->keyed ? m->npk : 0) : n) : 0;
    if (n <= 0 || scratch(c, (size_t)nv * 2)) {
        fail(c, n <= 0 ? "table \"%s\": no columns reported" : "out of memory", table);
        return;
    }
    struct txl_value *sn = c->scr, *so = c->scr + nv;
    size_t bytes = 0;
    for (int pass = 0; pass < 2; pass++) {
        int is_new = pass == 0;
        if (is_new ? !want_new : !want_old)
            continue;
        struct txl_value *dst = is_new ? sn : so;
        for (int k = 0; k < nv; k++) {
            int idx = m ? txl_meta_pu_index(m, op, is_new, k) : k;
            sqlite3_value *sv = NULL;
            int rc = is_new ? sqlite3_preupdate_new(db, idx, &sv) : sqlite3_preupdate_old(db, idx, &sv);
            if (rc == SQLITE_RANGE && !m) { /* raw: a VIRTUAL column's slot past the stored ones */
                sv = NULL;
                rc = SQLITE_OK;
            }
            if (rc != SQLITE_OK || read_value(sv, &dst[k])) {
                fail(c, "table \"%s\": reading column %d: %s", table, idx,
                     rc != SQLITE_OK ? sqlite3_errstr(rc) : "out of memory");
                return;
            }
            if (dst[k].type == TXL_TEXT || dst[k].type == TXL_BLOB)
                bytes += (size_t)dst[k].n + 1;
        }
    }
    size_t nvals = (size_t)(want_new ? nv : 0) + (size_t)(want_old ? nv : 0) + (size_t)nkey;
    char *block = util_malloc(nvals * sizeof(struct txl_value) + bytes);
    if (!block) {
        fail(c, "out of memory");
        return;
    }
    struct txl_change ch = {.table = cm->name, .ncol = (uint32_t)nv, .raw_ = m ? 0 : 1, .mem_ = block};
    ch.op = op == SQLITE_INSERT ? TXL_INSERT : op == SQLITE_UPDATE ? TXL_UPDATE : TXL_DELETE;
    if (want_old)
        ch.old_rowid = k1;
    if (want_new)
        ch.new_rowid = k2;
    struct txl_value *vals = (struct txl_value *)(void *)block;
    char *data = block + nvals * sizeof(struct txl_value);
    if (want_new) {
        ch.newv = vals;
        vals += nv;
    }
    if (want_old) {
        ch.oldv = vals;
        vals += nv;
    }
    ch.key = nkey ? vals : NULL;
    for (int pass = 0; pass < 2; pass++) {
        struct txl_value *src = pass == 0 ? sn : so, *dst = pass == 0 ? ch.newv : ch.oldv;
        if (!dst)
            continue;
        for (int k = 0; k < nv; k++) {
            dst[k] = src[k];
            if (src[k].type == TXL_TEXT || src[k].type == TXL_BLOB) {
                if (src[k].n)
                    memcpy(data, src[k].p, src[k].n);
                data[src[k].n] = 0;
                dst[k].p = (unsigned char *)data;
                data += src[k].n + 1;
            }
        }
    }
    if (m) {
        set_ipk(m, &ch);
        set_key(m, &ch);
    }
    if (push_change(c, &ch)) {
        util_free(block);
        fail(c, "out of memory");
    }
}

static void hook(void *arg, sqlite3 *db, int op, char const *zdb, char const *table, sqlite3_int64 k1,
                 sqlite3_int64 k2)
{
    struct txl_capture *c = arg;
    if (c->paused || c->failed || strcmp(zdb, "main") != 0)
        return;
    if (c->in_ddl) {
        c->ddl_main_write = 1;
        if (sqlite3_preupdate_depth(db) == 0) /* the DDL statement's own rows */
            return;
    }
    if (txl_internal_table(table))
        return;
    capture_row(c, db, op, table, k1, k2);
}

/* ---- resolution: table metadata for changes captured before it was known -- */

static int load_meta(struct txl_capture *c, struct cmeta *cm)
{
    if (cm->loaded && !cm->stale)
        return 0;
    if (cm->loaded)
        txl_meta_clear(&cm->m);
    cm->loaded = cm->stale = 0;
    char err[256];
    int rc = txl_meta_load(c->db, cm->name, &cm->m, err, sizeof err);
    if (rc < 0) {
        fail(c, "%s", err);
        return -1;
    }
    if (rc > 0)
        return 1;
    cm->loaded = 1;
    return 0;
}

/* Put raw changes into table order and fill their keys. drop_gone: changes
 * to tables that no longer exist are dropped (a DROP TABLE removed them);
 * otherwise that is an error. */
static int resolve(struct txl_capture *c, int drop_gone)
{
    size_t w = c->resolved;
    for (size_t i = c->resolved; i < c->n; i++) {
        struct txl_change *ch = &c->ch[i];
        if (ch->op != TXL_DDL && ch->raw_ && !c->failed) {
            struct cmeta *cm = cmeta_of(ch->table);
            int rc = load_meta(c, cm);
            if (rc > 0 && drop_gone) {
                util_free(ch->mem_);
                continue;
            }
            if (rc > 0)
                fail(c, "table \"%s\" no longer exists", cm->name);
            if (c->failed)
                break;
            const struct txl_meta *m = &cm->m;
            if ((int)ch->ncol != m->nall) {
                fail(c, "table \"%s\": %u values reported, the table has %d columns", cm->name, ch->ncol, m->nall);
                break;
            }
            if (txl_meta_unreadable(m)) {
                fail(c, "table \"%s\": SQLite's preupdate hook cannot report its columns (a VIRTUAL generated "
                        "column precedes its INTEGER PRIMARY KEY); make the generated column STORED",
                     cm->name);
                break;
            }
            if (scratch(c, (size_t)m->ncap)) {
                fail(c, "out of memory");
                break;
            }
            for (int pass = 0; pass < 2; pass++) {
                struct txl_value *v = pass == 0 ? ch->newv : ch->oldv;
                if (!v)
                    continue;
                for (int k = 0; k < m->ncap; k++)
                    c->scr[k] = v[txl_meta_pu_index(m, ch->op == TXL_UPDATE ? SQLITE_UPDATE : SQLITE_INSERT,
                                                    pass == 0, k)];
                memcpy(v, c->scr, (size_t)m->ncap * sizeof *v);
            }
            ch->ncol = (uint32_t)m->ncap;
            ch->raw_ = 0;
            set_ipk(m, ch);
            set_key(m, ch);
        }
        if (w != i)
            c->ch[w] = *ch;
        w++;
    }
    if (c->failed)
        return -1;
    c->n = w;
    c->resolved = w;
    return 0;
}

/* ---- PRAGMA readers ------------------------------------------------------------ */

static int64_t pragma_int(struct txl_capture *c, sqlite3_stmt **st, const char *sql)
{
    if (!*st && sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK) {
        fail(c, "%s: %s", sql, sqlite3_errmsg(c->db));
        sqlite3_finalize(*st);
        *st = NULL;
        return -1;
    }
    int64_t v = -1;
    if (sqlite3_step(*st) == SQLITE_ROW)
        v = sqlite3_column_int64(*st, 0);
    else
        fail(c, "%s: %s", sql, sqlite3_errmsg(c->db));
    sqlite3_reset(*st);
    return v;
}

static int64_t schema_version(struct txl_capture *c)
{
    return pragma_int(c, &c->st_schema, "PRAGMA main.schema_version");
}

/* ---- public API ------------------------------------------------------------------ */

struct txl_capture *txl_capture_new(sqlite3 *db)
{
    struct txl_capture *c = util_calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->db = db;
    map_init(&c->metas);
    pthread_mutex_lock(&reg_mu);
    c->reg_next = reg_head;
    reg_head = c;
    pthread_mutex_unlock(&reg_mu);
    sqlite3_preupdate_hook(db, hook, c);
    return c;
}

static void clear_savepoints(struct txl_capture *c, size_t from)
{
    for (size_t i = from; i < c->nsp; i++)
        util_free(c->sp[i].name);
    if (from < c->nsp)
        c->nsp = from;
}

static void prune_metas(struct txl_capture *c)
{
    if (c->n)
        return;
    const char *k;
    struct cmeta *cm;
    for (size_t it = 0; map_next(&c->metas, &it, &k, (void **)&cm);) {
        if (!cm->stale)
            continue;
        map_del(&c->metas, cm->name);
        txl_meta_clear(&cm->m);
        util_free(cm);
    }
}

void txl_capture_reset(struct txl_capture *c)
{
    truncate_to(c, 0);
    clear_savepoints(c, 0);
    util_free(c->ddl_sql);
    c->ddl_sql = NULL;
    c->in_ddl = 0;
    c->stmt_mark = 0;
    c->failed = 0;
    c->errmsg[0] = 0;
    prune_metas(c);
}

void txl_capture_free(struct txl_capture *c)
{
    if (!c)
        return;
    sqlite3_preupdate_hook(c->db, NULL, NULL);
    pthread_mutex_lock(&reg_mu);
    for (struct txl_capture **p = &reg_head; *p; p = &(*p)->reg_next)
        if (*p == c) {
            *p = c->reg_next;
            break;
        }
    pthread_mutex_unlock(&reg_mu);
    txl_capture_reset(c);
    struct cmeta *cm;
    for (size_t it = 0; map_next(&c->metas, &it, NULL, (void **)&cm);) {
        txl_meta_clear(&cm->m);
        util_free(cm);
    }
    map_free(&c->metas);
    sqlite3_finalize(c->st_schema);
    sqlite3_finalize(c->st_uv);
    sqlite3_finalize(c->st_appid);
    sqlite3_finalize(c->st_lsn);
    util_free(c->ch);
    util_free(c->sp);
    util_free(c->scr);
    util_free(c);
}

size_t txl_capture_count(const struct txl_capture *c)
{
    return c->n;
}

const char *txl_capture_error(const struct txl_capture *c)
{
    return c->failed ? c->errmsg : NULL;
}

void txl_capture_stmt_begin(struct txl_capture *c)
{
    c->stmt_mark = c->n;
    c->stmt_schema = c->failed ? -1 : schema_version(c);
}

/* After a failed statement: if SQLite ended the transaction, nothing of it
 * remains. */
static void after_failure(struct txl_capture *c, size_t mark)
{
    truncate_to(c, mark);
    if (sqlite3_get_autocommit(c->db))
        txl_capture_reset(c);
}

int txl_capture_stmt_end(struct txl_capture *c, int ok)
{
    if (!ok) {
        after_failure(c, c->stmt_mark);
        return c->failed ? -1 : 0;
    }
    if (!c->failed && c->stmt_schema >= 0 && schema_version(c) != c->stmt_schema) {
        mark_all_stale(c);
        fail(c, "the main schema changed during a statement that was not run as DDL "
                "(txl_capture_ddl_begin/_end); it would not be replicated");
    }
    if (!c->failed)
        resolve(c, 0);
    c->stmt_mark = c->n;
    return c->failed ? -1 : 0;
}

int txl_capture_ddl_begin(struct txl_capture *c, const char *sql)
{
    if (c->failed || resolve(c, 0))
        return -1;
    util_free(c->ddl_sql);
    c->ddl_sql = util_strdup(sql);
    if (!c->ddl_sql) {
        fail(c, "out of memory");
        return -1;
    }
    c->ddl_schema = schema_version(c);
    c->ddl_uv = pragma_int(c, &c->st_uv, "PRAGMA main.user_version");
    c->ddl_appid = pragma_int(c, &c->st_appid, "PRAGMA main.application_id");
    c->ddl_mark = c->n;
    c->ddl_main_write = 0;
    c->in_ddl = 1;
    return c->failed ? -1 : 0;
}

int txl_capture_ddl_end(struct txl_capture *c, int ok)
{
    if (!c->in_ddl)
        return c->failed ? -1 : 0;
    c->in_ddl = 0;
    char *sql = c->ddl_sql;
    c->ddl_sql = NULL;
    if (!ok) {
        util_free(sql);
        after_failure(c, c->ddl_mark);
        return c->failed ? -1 : 0;
    }
    int changed = c->ddl_main_write;
    if (!c->failed) {
        changed |= schema_version(c) != c->ddl_schema;
        changed |= pragma_int(c, &c->st_uv, "PRAGMA main.user_version") != c->ddl_uv;
        changed |= pragma_int(c, &c->st_appid, "PRAGMA main.application_id") != c->ddl_appid;
    }
    if (!c->failed)
        resolve(c, 1);
    mark_all_stale(c);
    if (c->failed || !changed) {
        util_free(sql);
        return c->failed ? -1 : 0;
    }
    struct txl_change ch = {.op = TXL_DDL, .sql = sql, .sql_len = strlen(sql), .mem_ = sql};
    if (push_change(c, &ch)) {
        util_free(sql);
        fail(c, "out of memory");
        return -1;
    }
    c->resolved = c->n;
    c->stmt_mark = c->n;
    return 1;
}

static long find_savepoint(const struct txl_capture *c, const char *name)
{
    for (size_t i = c->nsp; i-- > 0;)
        if (strcasecmp(c->sp[i].name, name) == 0)
            return (long)i;
    return -1;
}

int txl_capture_savepoint(struct txl_capture *c, const char *name)
{
    if (c->nsp == c->capsp) {
        size_t nc = c->capsp ? c->capsp * 2 : 8;
        struct savepoint *a = util_realloc(c->sp, nc * sizeof *a);
        if (!a) {
            fail(c, "out of memory");
            return -1;
        }
        c->sp = a;
        c->capsp = nc;
    }
    char *dup = util_strdup(name);
    if (!dup) {
        fail(c, "out of memory");
        return -1;
    }
    c->sp[c->nsp++] = (struct savepoint){.name = dup, .mark = c->n};
    return 0;
}

int txl_capture_release(struct txl_capture *c, const char *name)
{
    long i = find_savepoint(c, name);
    if (i < 0)
        return -1;
    clear_savepoints(c, (size_t)i);
    return 0;
}

int txl_capture_rollback_to(struct txl_capture *c, const char *name)
{
    long i = find_savepoint(c, name);
    if (i < 0)
        return -1;
    truncate_to(c, c->sp[i].mark);
    clear_savepoints(c, (size_t)i + 1);
    c->stmt_mark = c->n;
    return 0;
}

int txl_capture_take(struct txl_capture *c, struct txl_record *out, char *err, size_t errcap)
{
    txl_record_init(out);
    if (c->in_ddl)
        fail(c, "txl_capture_take while a DDL statement is open");
    if (!c->failed)
        resolve(c, 0);
    char **tables = NULL;
    size_t ntab = 0, cap = 0;
    uint64_t gen = ++c->take_gen;
    for (size_t i = 0; i < c->n && !c->failed; i++) {
        if (c->ch[i].op == TXL_DDL)
            continue;
        struct cmeta *cm = cmeta_of(c->ch[i].table);
        if (cm->take_gen == gen)
            continue;
        if (ntab == cap) {
            size_t nc = cap ? cap * 2 : 8;
            char **a = util_realloc(tables, nc * sizeof *a);
            if (!a) {
                fail(c, "out of memory");
                break;
            }
            tables = a;
            cap = nc;
        }
        tables[ntab] = util_strdup(cm->name);
        if (!tables[ntab]) {
            fail(c, "out of memory");
            break;
        }
        cm->take_gen = gen;
        cm->take_idx = ntab++;
    }
    if (c->failed) {
        txl_errf(err, errcap, "%s", c->errmsg);
        for (size_t t = 0; t < ntab; t++)
            util_free(tables[t]);
        util_free(tables);
        txl_capture_reset(c);
        return -1;
    }
    for (size_t i = 0; i < c->n; i++)
        if (c->ch[i].op != TXL_DDL)
            c->ch[i].table = tables[cmeta_of(c->ch[i].table)->take_idx];
    out->changes = c->ch;
    out->nchanges = c->n;
    out->tables_ = tables;
    out->ntables_ = ntab;
    if (!c->n) {
        util_free(c->ch);
        out->changes = NULL;
    }
    c->ch = NULL;
    c->n = c->cap = c->resolved = c->stmt_mark = 0;
    txl_capture_reset(c);
    return 0;
}

int txl_capture_store_lsn(struct txl_capture *c, uint64_t lsn, char *err, size_t errcap)
{
    return txl_set_lsn_cached(c->db, &c->st_lsn, lsn, 0, err, errcap); /* not committed by Raft yet */
}
