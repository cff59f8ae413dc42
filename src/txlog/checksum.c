/* txlog/checksum.c: a logical checksum of a database: per user table a
 * SHA-256 of its column list and rows in key order with a typed value
 * encoding, one of the main schema's CREATE statements, and one overall. */
#include "txlog_int.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

/* Buffered SHA-256. */
struct hasher {
    EVP_MD_CTX *ctx;
    unsigned char buf[32768];
    size_t n;
    int bad;
};

static int h_init(struct hasher *h)
{
    h->n = 0;
    h->bad = 0;
    h->ctx = EVP_MD_CTX_new();
    return h->ctx && EVP_DigestInit_ex(h->ctx, EVP_sha256(), NULL) == 1 ? 0 : -1;
}

static void h_flush(struct hasher *h)
{
    if (h->n && EVP_DigestUpdate(h->ctx, h->buf, h->n) != 1)
        h->bad = 1;
    h->n = 0;
}

static void h_put(struct hasher *h, const void *p, size_t n)
{
    if (n > sizeof h->buf / 2) {
        h_flush(h);
        if (EVP_DigestUpdate(h->ctx, p, n) != 1)
            h->bad = 1;
        return;
    }
    if (h->n + n > sizeof h->buf)
        h_flush(h);
    memcpy(h->buf + h->n, p, n);
    h->n += n;
}

static void h_u64(struct hasher *h, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (56 - 8 * i));
    h_put(h, b, 8);
}

static void h_str(struct hasher *h, const void *p, size_t n)
{
    h_u64(h, n);
    h_put(h, p, n);
}

static int h_final(struct hasher *h, char hex[65])
{
    unsigned char md[32];
    unsigned mdlen = 0;
    h_flush(h);
    int ok = !h->bad && EVP_DigestFinal_ex(h->ctx, md, &mdlen) == 1 && mdlen == 32;
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
    if (!ok)
        return -1;
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static void h_abort(struct hasher *h)
{
    EVP_MD_CTX_free(h->ctx);
    h->ctx = NULL;
}

/* Typed encoding of one column value of the current row. */
static void h_column(struct hasher *h, sqlite3_stmt *st, int i)
{
    unsigned char tag;
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        tag = 'I';
        h_put(h, &tag, 1);
        h_u64(h, (uint64_t)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT: {
        double d = sqlite3_column_double(st, i);
        uint64_t bits;
        memcpy(&bits, &d, 8);
        tag = 'F';
        h_put(h, &tag, 1);
        h_u64(h, bits);
        break;
    }
    case SQLITE_TEXT: {
        const unsigned char *p = sqlite3_column_text(st, i);
        tag = 'T';
        h_put(h, &tag, 1);
        h_str(h, p ? p : (const unsigned char *)"", (size_t)sqlite3_column_bytes(st, i));
        break;
    }
    case SQLITE_BLOB: {
        const void *p = sqlite3_column_blob(st, i);
        tag = 'B';
        h_put(h, &tag, 1);
        h_str(h, p ? p : "", (size_t)sqlite3_column_bytes(st, i));
        break;
    }
    default:
        tag = 'N';
        h_put(h, &tag, 1);
    }
}

static int table_sum(sqlite3 *db, const char *name, struct txl_table_sum *out, char *err, size_t errcap)
{
    struct txl_meta m;
    int rc = txl_meta_load(db, name, &m, err, errcap);
    if (rc) {
        if (rc > 0)
            txl_errf(err, errcap, "table \"%s\" vanished", name);
        return -1;
    }
    struct buf q;
    buf_init(&q);
    struct hasher h;
    int ret = -1;
    sqlite3_stmt *st = NULL;
    if (h_init(&h)) {
        txl_errf(err, errcap, "SHA-256 unavailable");
        goto done;
    }
    h_str(&h, "orbit-table-v1", 14);
    h_str(&h, name, strlen(name));
    h_u64(&h, (uint64_t)m.keyed);
    /* all columns, generated ones included, with declared types */
    if (sqlite3_prepare_v2(db, "SELECT name, type, hidden FROM pragma_table_xinfo(?1, 'main') ORDER BY cid", -1, &st,
                           NULL) != SQLITE_OK)
        goto sqlerr;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int i = 0; i < 3; i++)
            h_column(&h, st, i);
    if (rc != SQLITE_DONE)
        goto sqlerr;
    sqlite3_finalize(st);
    st = NULL;
    buf_puts(&q, "SELECT ");
    if (!m.keyed && m.rowid)
        buf_printf(&q, "%s, ", m.rowid);
    buf_puts(&q, "* FROM main.");
    txl_quote_ident(&q, name);
    buf_puts(&q, " ORDER BY ");
    if (!m.keyed && m.rowid) {
        buf_puts(&q, m.rowid);
    } else if (m.keyed) {
        for (int k = 0; k < m.npk; k++) {
            if (k)
                buf_putc(&q, ',');
            txl_quote_ident(&q, m.names[m.pk[k]]);
        }
    } else { /* no usable rowid name: every column */
        for (int k = 0; k < m.ncap; k++)
            buf_printf(&q, "%s%d", k ? "," : "", k + 1);
    }
    buf_putc(&q, 0);
    if (!buf_ok(&q)) {
        txl_errf(err, errcap, "out of memory");
        goto done;
    }
    if (sqlite3_prepare_v2(db, q.data, -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    int ncol = sqlite3_column_count(st);
    uint64_t rows = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        unsigned char tag = 'R';
        h_put(&h, &tag, 1);
        for (int i = 0; i < ncol; i++)
            h_column(&h, st, i);
        rows++;
    }
    if (rc != SQLITE_DONE)
        goto sqlerr;
    h_u64(&h, rows);
    out->rows = rows;
    if (h_final(&h, out->hex)) {
        txl_errf(err, errcap, "SHA-256 failed");
        goto done;
    }
    ret = 0;
    goto done;
sqlerr:
    txl_errf(err, errcap, "checksum of \"%s\": %s", name, sqlite3_errmsg(db));
done:
    h_abort(&h);
    sqlite3_finalize(st);
    buf_free(&q);
    txl_meta_clear(&m);
    return ret;
}

static int schema_sum(sqlite3 *db, char hex[65], char *err, size_t errcap)
{
    struct hasher h;
    sqlite3_stmt *st = NULL;
    if (h_init(&h)) {
        h_abort(&h);
        txl_errf(err, errcap, "SHA-256 unavailable");
        return -1;
    }
    h_str(&h, "orbit-schema-v1", 15);
    int rc = sqlite3_prepare_v2(db,
                                "SELECT type, name, tbl_name, sql FROM main.sqlite_schema"
                                " WHERE name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                                " AND name NOT LIKE '\\_orbit\\_%' ESCAPE '\\'"
                                " AND tbl_name NOT LIKE '\\_orbit\\_%' ESCAPE '\\'"
                                " ORDER BY type, name",
                                -1, &st, NULL);
    if (rc == SQLITE_OK) {
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            for (int i = 0; i < 4; i++)
                h_column(&h, st, i);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        txl_errf(err, errcap, "checksum of the schema: %s", sqlite3_errmsg(db));
        h_abort(&h);
        return -1;
    }
    if (h_final(&h, hex)) {
        txl_errf(err, errcap, "SHA-256 failed");
        return -1;
    }
    return 0;
}

void txl_checksum_free(struct txl_checksum *c)
{
    for (size_t i = 0; i < c->ntables; i++)
        util_free(c->tables[i].name);
    util_free(c->tables);
    memset(c, 0, sizeof *c);
}

static int list_tables(sqlite3 *db, struct txl_checksum *out, char *err, size_t errcap)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db,
                                "SELECT name FROM pragma_table_list WHERE schema = 'main'"
                                " AND type IN ('table', 'shadow')"
                                " AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"
                                " AND name NOT LIKE '\\_orbit\\_%' ESCAPE '\\'"
                                " ORDER BY name",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        txl_errf(err, errcap, "listing tables: %s", sqlite3_errmsg(db));
        return -1;
    }
    size_t cap = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (out->ntables == cap) {
            size_t nc = cap ? cap * 2 : 16;
            struct txl_table_sum *a = util_realloc(out->tables, nc * sizeof *a);
            if (!a)
                break;
            out->tables = a;
            cap = nc;
        }
        struct txl_table_sum *t = &out->tables[out->ntables];
        memset(t, 0, sizeof *t);
        t->name = util_strdup((const char *)sqlite3_column_text(st, 0));
        if (!t->name)
            break;
        out->ntables++;
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        txl_errf(err, errcap, "listing tables: %s", rc == SQLITE_ROW ? "out of memory" : sqlite3_errmsg(db));
        return -1;
    }
    return 0;
}

int txl_checksum(sqlite3 *db, struct txl_checksum *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    int own_txn = sqlite3_get_autocommit(db);
    if (own_txn && txl_exec(db, "BEGIN", err, errcap))
        return -1;
    int ret = -1;
    struct hasher h = {0};
    if (schema_sum(db, out->schema_hex, err, errcap) || list_tables(db, out, err, errcap))
        goto done;
    for (size_t i = 0; i < out->ntables; i++)
        if (table_sum(db, out->tables[i].name, &out->tables[i], err, errcap))
            goto done;
    if (h_init(&h)) {
        txl_errf(err, errcap, "SHA-256 unavailable");
        goto done;
    }
    h_str(&h, "orbit-db-v1", 11);
    h_str(&h, out->schema_hex, 64);
    for (size_t i = 0; i < out->ntables; i++) {
        h_str(&h, out->tables[i].name, strlen(out->tables[i].name));
        h_str(&h, out->tables[i].hex, 64);
    }
    if (h_final(&h, out->hex)) {
        txl_errf(err, errcap, "SHA-256 failed");
        goto done;
    }
    ret = 0;
done:
    h_abort(&h);
    if (own_txn)
        sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (ret)
        txl_checksum_free(out);
    return ret;
}
