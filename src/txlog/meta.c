/* txlog/meta.c: what the txlog needs to know about a table of schema main
 * (WITHOUT ROWID or not, captured columns, primary key, a usable rowid
 * name, SQLite 3.40's preupdate column order), and small SQL helpers. */
#include "txlog_int.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

void txl_errf(char *err, size_t errcap, const char *fmt, ...)
{
    if (!err || !errcap)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errcap, fmt, ap);
    va_end(ap);
}

void txl_quote_ident(struct buf *b, const char *name)
{
    buf_putc(b, '"');
    for (const char *s = name; *s; s++) {
        if (*s == '"')
            buf_putc(b, '"');
        buf_putc(b, *s);
    }
    buf_putc(b, '"');
}

int txl_exec(sqlite3 *db, const char *sql, char *err, size_t errcap)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        txl_errf(err, errcap, "%s", msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int txl_bind_value(sqlite3_stmt *st, int i, const struct txl_value *v)
{
    switch (v->type) {
    case TXL_INTEGER:
        return sqlite3_bind_int64(st, i, v->i);
    case TXL_REAL:
        return sqlite3_bind_double(st, i, v->d);
    case TXL_TEXT:
        return sqlite3_bind_text64(st, i, v->n ? (const char *)v->p : "", v->n, SQLITE_STATIC, SQLITE_UTF8);
    case TXL_BLOB:
        return sqlite3_bind_blob64(st, i, v->n ? (const void *)v->p : "", v->n, SQLITE_STATIC);
    default:
        return sqlite3_bind_null(st, i);
    }
}

int txl_internal_table(const char *name)
{
    return strncasecmp(name, "sqlite_", 7) == 0 || strncasecmp(name, "_orbit_", 7) == 0;
}

void txl_meta_clear(struct txl_meta *m)
{
    util_free(m->name);
    if (m->names)
        for (int i = 0; i < m->ncap; i++)
            util_free(m->names[i]);
    util_free(m->names);
    util_free(m->pu_tab);
    util_free(m->pu_sto);
    util_free(m->pk);
    memset(m, 0, sizeof *m);
}

int txl_meta_pu_index(const struct txl_meta *m, int op, int is_new, int k)
{
    if (!m->keyed)
        return m->pu_sto[k];
    return op == SQLITE_UPDATE && is_new ? m->pu_sto[k] : m->pu_tab[k];
}

static int table_kind(sqlite3 *db, const char *table, struct txl_meta *m, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, "SELECT type, wr FROM pragma_table_list(?1) WHERE schema = 'main'", -1, &st,
                                NULL);
    if (rc != SQLITE_OK) {
        txl_errf(err, errcap, "table metadata: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int ret = 1;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *type = (const char *)sqlite3_column_text(st, 0);
        if (type && (strcmp(type, "table") == 0 || strcmp(type, "shadow") == 0)) {
            m->keyed = sqlite3_column_int(st, 1) != 0;
            m->shadow = strcmp(type, "shadow") == 0;
            ret = 0;
        }
    } else if (rc != SQLITE_DONE) {
        txl_errf(err, errcap, "table metadata for \"%s\": %s", table, sqlite3_errmsg(db));
        ret = -1;
    }
    sqlite3_finalize(st);
    return ret;
}

static int rowid_alias_check(sqlite3 *db, const char *table, int *has_pk_index, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM pragma_index_list(?1, 'main') WHERE origin = 'pk'", -1, &st,
                           NULL) != SQLITE_OK) {
        txl_errf(err, errcap, "table metadata: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    *has_pk_index = rc == SQLITE_ROW && sqlite3_column_int(st, 0) > 0;
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW) {
        txl_errf(err, errcap, "table metadata for \"%s\": %s", table, sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

static int grow_cols(struct txl_meta *m, int *cap, int **pkpos)
{
    int nc = *cap ? *cap * 2 : 8;
    char **nn = util_realloc(m->names, (size_t)nc * sizeof *nn);
    if (nn)
        m->names = nn;
    int *a = util_realloc(m->pu_tab, (size_t)nc * sizeof *a);
    if (a)
        m->pu_tab = a;
    int *b = util_realloc(m->pu_sto, (size_t)nc * sizeof *b);
    if (b)
        m->pu_sto = b;
    int *c = util_realloc(*pkpos, (size_t)nc * sizeof *c);
    if (c)
        *pkpos = c;
    if (!nn || !a || !b || !c)
        return -1;
    *cap = nc;
    return 0;
}

int txl_meta_load(sqlite3 *db, const char *table, struct txl_meta *m, char *err, size_t errcap)
{
    memset(m, 0, sizeof *m);
    m->ipk = -1;
    int ret = table_kind(db, table, m, err, errcap);
    if (ret)
        return ret;
    m->name = util_strdup(table);
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT name, pk, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid", -1,
                                &st, NULL);
    if (rc != SQLITE_OK || !m->name) {
        txl_errf(err, errcap, "table metadata: %s", m->name ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_finalize(st);
        txl_meta_clear(m);
        return -1;
    }
    sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
    int cap = 0, nnonvirt = 0, nvirt = 0, npk_all = 0, rowid_clash[3] = {0, 0, 0};
    static const char *const rowid_names[3] = {"rowid", "_rowid_", "oid"};
    int *pkpos = NULL;
    ret = -1;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        int pk = sqlite3_column_int(st, 1), hidden = sqlite3_column_int(st, 2);
        int col = m->nall++;
        if (!name)
            goto oom;
        for (int k = 0; k < 3; k++)
            if (strcasecmp(name, rowid_names[k]) == 0)
                rowid_clash[k] = 1;
        if (pk > 0)
            npk_all++;
        if (hidden == 2) { /* VIRTUAL generated: not stored, not captured */
            nvirt++;
            continue;
        }
        nnonvirt++;
        if (hidden != 0) /* STORED generated (3); hidden (1) only exists in virtual tables */
            continue;
        if (m->ncap == cap && grow_cols(m, &cap, &pkpos))
            goto oom;
        m->names[m->ncap] = util_strdup(name);
        if (!m->names[m->ncap])
            goto oom;
        m->pu_tab[m->ncap] = col;
        m->pu_sto[m->ncap] = nnonvirt - 1;
        pkpos[m->ncap] = pk;
        m->ncap++;
    }
    if (rc != SQLITE_DONE) {
        txl_errf(err, errcap, "table metadata for \"%s\": %s", table, sqlite3_errmsg(db));
        goto fail;
    }
    if (m->ncap == 0) {
        txl_errf(err, errcap, "table \"%s\" has no stored columns", table);
        goto fail;
    }
    m->has_virtual = nvirt > 0;
    if (m->keyed) {
        for (int k = 0; k < m->ncap; k++)
            if (pkpos[k] > 0)
                m->npk++;
        if (m->npk == 0 || m->npk != npk_all) {
            txl_errf(err, errcap, "WITHOUT ROWID table \"%s\": unexpected primary key columns", table);
            goto fail;
        }
        m->pk = util_calloc((size_t)m->npk, sizeof *m->pk);
        if (!m->pk)
            goto oom;
        for (int k = 0; k < m->ncap; k++)
            if (pkpos[k] > 0 && pkpos[k] <= m->npk)
                m->pk[pkpos[k] - 1] = k;
    } else {
        for (int k = 0; k < 3 && !m->rowid; k++)
            if (!rowid_clash[k])
                m->rowid = rowid_names[k];
        int has_pk_index = 0;
        if (npk_all == 1 && rowid_alias_check(db, table, &has_pk_index, err, errcap))
            goto fail;
        if (npk_all == 1 && !has_pk_index) /* INTEGER PRIMARY KEY: an alias of the rowid */
            for (int k = 0; k < m->ncap; k++)
                if (pkpos[k] > 0)
                    m->ipk = k;
    }
    ret = 0;
    goto done;
oom:
    txl_errf(err, errcap, "table metadata: out of memory");
fail:
    txl_meta_clear(m);
done:
    util_free(pkpos);
    sqlite3_finalize(st);
    return ret;
}

int txl_meta_unreadable(const struct txl_meta *m)
{
    /* SQLite 3.40's preupdate_old/new answer the rowid for the requested
     * index that equals the INTEGER PRIMARY KEY's table position, even when
     * values come in storage order (tables with VIRTUAL generated
     * columns): the column stored at that position cannot be read. */
    if (m->keyed || m->ipk < 0 || !m->has_virtual)
        return 0;
    for (int k = 0; k < m->ncap; k++)
        if (k != m->ipk && m->pu_sto[k] == m->pu_tab[m->ipk])
            return 1;
    return 0;
}
