/* Unit tests for txlog: record encoding (round trips, every corruption),
 * JSON, classification, and capture on database A -> encode -> decode ->
 * apply on database B with equal logical checksums, for every case of
 * issue 3; undo back to the start. */
#include "unit.h"
#include "txlog.h"
#include "txlog_int.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers -------------------------------------------------------------- */

static sqlite3 *open_db(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA foreign_keys=ON; PRAGMA recursive_triggers=ON", NULL, NULL, NULL),
                     SQLITE_OK);
    return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

static int64_t query_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    int64_t v = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int64(st, 0) : -999;
    sqlite3_finalize(st);
    return v;
}

static int values_equal(const struct txl_value *a, const struct txl_value *b, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        if (a[i].type != b[i].type)
            return 0;
        switch (a[i].type) {
        case TXL_INTEGER:
            if (a[i].i != b[i].i)
                return 0;
            break;
        case TXL_REAL:
            if (memcmp(&a[i].d, &b[i].d, 8) != 0)
                return 0;
            break;
        case TXL_TEXT:
        case TXL_BLOB:
            if (a[i].n != b[i].n || memcmp(a[i].p, b[i].p, a[i].n) != 0 || b[i].p[b[i].n] != 0)
                return 0;
            break;
        }
    }
    return 1;
}

/* Decoded record d holds exactly what r holds (old values aside). */
static void assert_records_equal(const struct txl_record *r, const struct txl_record *d)
{
    assert_true(r->lsn == d->lsn && r->commit_us == d->commit_us && r->origin == d->origin);
    assert_int_equal(r->nchanges, d->nchanges);
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct txl_change *a = &r->changes[i], *b = &d->changes[i];
        assert_int_equal(a->op, b->op);
        assert_null(b->oldv);
        if (a->op == TXL_DDL) {
            assert_int_equal(a->sql_len, b->sql_len);
            assert_memory_equal(a->sql, b->sql, a->sql_len);
            continue;
        }
        assert_string_equal(a->table, b->table);
        assert_int_equal(a->keyed, b->keyed);
        if (!a->keyed) {
            if (a->op != TXL_INSERT)
                assert_true(a->old_rowid == b->old_rowid);
            if (a->op != TXL_DELETE)
                assert_true(a->new_rowid == b->new_rowid);
        } else if (a->op != TXL_INSERT) {
            assert_int_equal(a->nkey, b->nkey);
            assert_true(values_equal(a->key, b->key, a->nkey));
        }
        if (a->op != TXL_DELETE) {
            assert_int_equal(a->ncol, b->ncol);
            assert_true(values_equal(a->newv, b->newv, a->ncol));
        }
    }
}

/* Two databases: A where the workload runs with a capture (the way the
 * server drives it), B where every committed record is applied after an
 * encode/decode round trip. */
struct pair {
    sqlite3 *a, *b;
    struct txl_capture *cap;
    struct txl_applier *ap;
    uint64_t lsn;
    int keep; /* keep captured records for undo */
    struct txl_record kept[64];
    size_t nkept;
    size_t last_nchanges;
};

static struct pair *pair_new(void)
{
    struct pair *p = calloc(1, sizeof *p);
    p->a = open_db();
    p->b = open_db();
    p->cap = txl_capture_new(p->a);
    assert_non_null(p->cap);
    assert_int_equal(txl_applier_new(p->b, &p->ap), 0);
    return p;
}

static void pair_free(struct pair *p)
{
    for (size_t i = 0; i < p->nkept; i++)
        txl_record_free(&p->kept[i]);
    txl_applier_free(p->ap);
    txl_capture_free(p->cap);
    assert_int_equal(sqlite3_close(p->a), SQLITE_OK);
    assert_int_equal(sqlite3_close(p->b), SQLITE_OK);
    free(p);
}

/* Run one statement on A as the server would; returns SQLite's code. */
static int run(struct pair *p, const char *sql)
{
    int rc;
    switch (txl_classify(sql)) {
    case TXL_KIND_DDL:
        assert_int_equal(txl_capture_ddl_begin(p->cap, sql), 0);
        rc = sqlite3_exec(p->a, sql, NULL, NULL, NULL);
        assert_true(txl_capture_ddl_end(p->cap, rc == SQLITE_OK) >= 0);
        return rc;
    case TXL_KIND_CTAS: {
        struct txl_ctas c;
        char err[200];
        assert_int_equal(txl_rewrite_ctas(sql, &c, err, sizeof err), 0);
        assert_int_equal(txl_capture_ddl_begin(p->cap, c.create_sql), 0);
        rc = sqlite3_exec(p->a, c.create_sql, NULL, NULL, NULL);
        int created = txl_capture_ddl_end(p->cap, rc == SQLITE_OK);
        assert_true(created >= 0);
        if (rc == SQLITE_OK && created == 1) {
            txl_capture_stmt_begin(p->cap);
            rc = sqlite3_exec(p->a, c.insert_sql, NULL, NULL, NULL);
            assert_int_equal(txl_capture_stmt_end(p->cap, rc == SQLITE_OK), 0);
        }
        txl_ctas_free(&c);
        return rc;
    }
    case TXL_KIND_LOCAL:
        return sqlite3_exec(p->a, sql, NULL, NULL, NULL);
    default:
        txl_capture_stmt_begin(p->cap);
        rc = sqlite3_exec(p->a, sql, NULL, NULL, NULL);
        if (txl_capture_stmt_end(p->cap, rc == SQLITE_OK))
            fail_msg("%s: %s", sql, txl_capture_error(p->cap));
        return rc;
    }
}

static void run_ok(struct pair *p, const char *sql)
{
    int rc = run(p, sql);
    if (rc != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(p->a));
}

static void savepoint(struct pair *p, const char *name)
{
    char sql[100];
    snprintf(sql, sizeof sql, "SAVEPOINT %s", name);
    exec_ok(p->a, sql);
    assert_int_equal(txl_capture_savepoint(p->cap, name), 0);
}

static void rollback_to(struct pair *p, const char *name)
{
    char sql[100];
    snprintf(sql, sizeof sql, "ROLLBACK TO %s", name);
    exec_ok(p->a, sql);
    assert_int_equal(txl_capture_rollback_to(p->cap, name), 0);
}

static void release(struct pair *p, const char *name)
{
    char sql[100];
    snprintf(sql, sizeof sql, "RELEASE %s", name);
    exec_ok(p->a, sql);
    assert_int_equal(txl_capture_release(p->cap, name), 0);
}

/* Ship a record to B: encode, decode, compare, apply. */
static void ship(struct pair *p, struct txl_record *r)
{
    struct buf b;
    buf_init(&b);
    assert_int_equal(txl_encode(r, &b), 0);
    struct txl_record d;
    char err[512];
    if (txl_decode(b.data, b.len, &d, err, sizeof err))
        fail_msg("decode: %s", err);
    assert_records_equal(r, &d);
    struct buf j;
    buf_init(&j);
    assert_int_equal(txl_record_to_json(&d, &j), 0);
    assert_true(j.len > 0 && j.data[j.len - 1] == '\n');
    buf_free(&j);
    int rc = txl_applier_apply(p->ap, &d, err, sizeof err);
    if (rc != 0)
        fail_msg("apply LSN %llu: %s", (unsigned long long)r->lsn, err);
    txl_record_free(&d);
    buf_free(&b);
}

static void begin(struct pair *p)
{
    exec_ok(p->a, "BEGIN");
}

/* COMMIT on A the way the server does it: take, LSN in the transaction,
 * COMMIT, then replicate. */
static void commit(struct pair *p)
{
    struct txl_record r;
    char err[512];
    if (txl_capture_take(p->cap, &r, err, sizeof err))
        fail_msg("take: %s", err);
    p->last_nchanges = r.nchanges;
    if (r.nchanges) {
        r.lsn = ++p->lsn;
        r.commit_us = util_wall_us();
        r.origin = 0x1234abcd5678ef00ULL;
        assert_int_equal(txl_capture_store_lsn(p->cap, r.lsn, err, sizeof err), 0);
    }
    exec_ok(p->a, "COMMIT");
    if (r.nchanges)
        ship(p, &r);
    if (p->keep && r.nchanges) {
        assert_true(p->nkept < ARRAY_LEN(p->kept));
        p->kept[p->nkept++] = r;
    } else {
        txl_record_free(&r);
    }
}

static void txn(struct pair *p, const char *const *sqls)
{
    begin(p);
    for (size_t i = 0; sqls[i]; i++)
        run_ok(p, sqls[i]);
    commit(p);
}

/* One statement in its own transaction. */
static void auto1(struct pair *p, const char *sql)
{
    const char *s[] = {sql, NULL};
    txn(p, s);
}

static void sums(sqlite3 *db, struct txl_checksum *c)
{
    char err[300];
    if (txl_checksum(db, c, err, sizeof err))
        fail_msg("checksum: %s", err);
}

static void assert_same(struct pair *p)
{
    struct txl_checksum a, b;
    sums(p->a, &a);
    sums(p->b, &b);
    if (strcmp(a.hex, b.hex) != 0) {
        fprintf(stderr, "schema A %s\nschema B %s\n", a.schema_hex, b.schema_hex);
        for (size_t i = 0; i < a.ntables; i++)
            fprintf(stderr, "A %-20s %8llu %s\n", a.tables[i].name, (unsigned long long)a.tables[i].rows,
                    a.tables[i].hex);
        for (size_t i = 0; i < b.ntables; i++)
            fprintf(stderr, "B %-20s %8llu %s\n", b.tables[i].name, (unsigned long long)b.tables[i].rows,
                    b.tables[i].hex);
        fail_msg("checksums differ");
    }
    uint64_t la = 0, lb = 0;
    char err[200];
    assert_int_equal(txl_applied_lsn(p->a, &la, err, sizeof err), 0);
    assert_int_equal(txl_applied_lsn(p->b, &lb, err, sizeof err), 0);
    assert_true(la == p->lsn && lb == p->lsn);
    txl_checksum_free(&a);
    txl_checksum_free(&b);
}

/* ---- encoding ------------------------------------------------------------------ */

static void test_crc32c(void **state)
{
    (void)state;
    assert_int_equal(txl_crc32c(0, "123456789", 9), 0xE3069283u);
    assert_int_equal(txl_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    unsigned char buf[1031];
    srand(7);
    for (size_t i = 0; i < sizeof buf; i++)
        buf[i] = (unsigned char)rand();
    for (size_t off = 0; off < 9; off++)
        for (size_t n = 0; n + off <= sizeof buf; n += 97)
            assert_int_equal(txl_crc32c(0, buf + off, n), txl_crc32c_sw(0, buf + off, n));
    /* incremental */
    uint32_t c = txl_crc32c(0, buf, 500);
    assert_int_equal(txl_crc32c(c, buf + 500, 531), txl_crc32c(0, buf, 1031));
}

static const unsigned char blob3[] = {0, 0xff, 7};

/* A record with every op, value type and table kind. */
static void sample_record(struct txl_record *r, struct txl_change *ch, struct txl_value *v)
{
    txl_record_init(r);
    r->lsn = 123456789012ULL;
    r->commit_us = 1700000000123456ULL;
    r->origin = 0xfedcba9876543210ULL;
    v[0] = (struct txl_value){.type = TXL_INTEGER, .i = INT64_MIN};
    v[1] = (struct txl_value){.type = TXL_REAL, .d = -0.0};
    v[2] = (struct txl_value){.type = TXL_TEXT, .n = 6, .p = (const unsigned char *)"h\0llo\xff"};
    v[3] = (struct txl_value){.type = TXL_BLOB, .n = 3, .p = blob3};
    v[4] = (struct txl_value){.type = TXL_NULL};
    v[5] = (struct txl_value){.type = TXL_REAL, .d = INFINITY};
    v[6] = (struct txl_value){.type = TXL_INTEGER, .i = INT64_MAX};
    v[7] = (struct txl_value){.type = TXL_TEXT, .n = 0, .p = (const unsigned char *)""};
    ch[0] = (struct txl_change){.op = TXL_DDL, .sql = "CREATE TABLE t(a,b,c,d,e)", .sql_len = 25};
    ch[1] = (struct txl_change){.op = TXL_INSERT, .table = "t", .new_rowid = -5, .ncol = 5, .newv = v};
    ch[2] = (struct txl_change){.op = TXL_UPDATE, .table = "t", .old_rowid = -5, .new_rowid = 1LL << 40,
                                .ncol = 5, .newv = v + 3};
    ch[3] = (struct txl_change){.op = TXL_DELETE, .table = "t", .old_rowid = 1LL << 40};
    ch[4] = (struct txl_change){.op = TXL_INSERT, .keyed = 1, .table = "w \"q\"", .ncol = 2, .newv = v + 6};
    ch[5] = (struct txl_change){.op = TXL_UPDATE, .keyed = 1, .table = "w \"q\"", .nkey = 1, .key = v + 6,
                                .ncol = 2, .newv = v + 5};
    ch[6] = (struct txl_change){.op = TXL_DELETE, .keyed = 1, .table = "w \"q\"", .nkey = 1, .key = v + 5};
    r->changes = ch;
    r->nchanges = 7;
}

static void test_roundtrip(void **state)
{
    (void)state;
    struct txl_record r, d;
    struct txl_change ch[7];
    struct txl_value v[8];
    sample_record(&r, ch, v);
    struct buf b, b2;
    buf_init(&b);
    buf_init(&b2);
    assert_int_equal(txl_encode(&r, &b), 0);
    char err[300];
    assert_int_equal(txl_decode(b.data, b.len, &d, err, sizeof err), 0);
    assert_records_equal(&r, &d);
    assert_true(signbit(d.changes[1].newv[1].d));
    /* re-encoding the decoded record gives the same bytes */
    assert_int_equal(txl_encode(&d, &b2), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    txl_record_free(&d);
    /* an empty record */
    struct txl_record e;
    txl_record_init(&e);
    buf_reset(&b);
    assert_int_equal(txl_encode(&e, &b), 0);
    assert_int_equal(txl_decode(b.data, b.len, &d, err, sizeof err), 0);
    assert_int_equal(d.nchanges, 0);
    txl_record_free(&d);
    /* records the encoder refuses */
    struct txl_change badch = {.op = TXL_INSERT, .table = "t", .ncol = 0};
    e.changes = &badch;
    e.nchanges = 1;
    buf_reset(&b);
    assert_int_equal(txl_encode(&e, &b), -1);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    buf_free(&b2);
}

/* A record of n inserts into "big" (id, 'row id'), in caller storage. */
static void big_record(struct txl_record *r, struct txl_change *ch, struct txl_value *v, char (*text)[24], int n)
{
    txl_record_init(r);
    r->lsn = 42;
    r->commit_us = 1700000000000000ULL;
    r->origin = 7;
    for (int i = 0; i < n; i++) {
        int len = snprintf(text[i], sizeof text[i], "row %d", i);
        v[2 * i] = (struct txl_value){.type = TXL_INTEGER, .i = i};
        v[2 * i + 1] = (struct txl_value){.type = TXL_TEXT, .n = (uint32_t)len, .p = (const unsigned char *)text[i]};
        ch[i] = (struct txl_change){.op = TXL_INSERT, .table = "big", .new_rowid = i, .ncol = 2, .newv = v + 2 * i};
    }
    r->changes = ch;
    r->nchanges = (size_t)n;
}

static void test_compressed(void **state)
{
    (void)state;
    enum { N = 20000 };
    struct txl_change *ch = calloc(N, sizeof *ch);
    struct txl_value *v = calloc(2 * N, sizeof *v);
    char(*text)[24] = calloc(N, sizeof *text);
    assert_non_null(ch);
    assert_non_null(v);
    assert_non_null(text);
    struct txl_record r, d;
    big_record(&r, ch, v, text, N);
    struct buf b, b2;
    buf_init(&b);
    buf_init(&b2);
    assert_int_equal(txl_encode(&r, &b), 0);
    unsigned char *p = (unsigned char *)b.data;
    /* 20,000 rows take over 200 KB plain: compressed, and much smaller */
    assert_int_equal(p[5], TXL_FLAG_ZSTD);
    assert_true(b.len < 100000);
    uint64_t lsn = 0;
    assert_int_equal(txl_peek_lsn(b.data, b.len, &lsn), 0);
    assert_int_equal(lsn, 42);
    char err[300];
    assert_int_equal(txl_decode(b.data, b.len, &d, err, sizeof err), 0);
    assert_records_equal(&r, &d);
    /* canonical: the same bytes again */
    assert_int_equal(txl_encode(&d, &b2), 0);
    assert_int_equal(b.len, b2.len);
    assert_memory_equal(b.data, b2.data, b.len);
    txl_record_free(&d);
    /* small records stay plain */
    struct txl_record small;
    big_record(&small, ch, v, text, 10);
    buf_reset(&b2);
    assert_int_equal(txl_encode(&small, &b2), 0);
    assert_int_equal(((unsigned char *)b2.data)[5], 0);
    /* corrupt compressed bodies with valid checksums: clear errors, no crash */
    size_t crc_at = b.len - 4;
    /* the uncompressed length (after the 1-byte lsn 42) says one byte more */
    size_t raw_at = 10 + 1;
    unsigned char save[16];
    memcpy(save, p + raw_at, sizeof save);
    p[raw_at] ^= 1;
    buf_set_u32(&b, crc_at, txl_crc32c(0, p, crc_at));
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "zstd frame"));
    memcpy(p + raw_at, save, sizeof save);
    /* garbage inside the frame */
    for (size_t i = b.len / 2; i < b.len / 2 + 8; i++)
        p[i] ^= 0x5a;
    buf_set_u32(&b, crc_at, txl_crc32c(0, p, crc_at));
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_null(d.changes);
    assert_true(strlen(err) > 10);
    /* the flag on a plain body */
    buf_reset(&b2);
    assert_int_equal(txl_encode(&small, &b2), 0);
    ((unsigned char *)b2.data)[5] = TXL_FLAG_ZSTD;
    buf_set_u32(&b2, b2.len - 4, txl_crc32c(0, b2.data, b2.len - 4));
    assert_int_equal(txl_decode(b2.data, b2.len, &d, err, sizeof err), -1);
    assert_true(strlen(err) > 10);
    /* an unknown flag */
    ((unsigned char *)b2.data)[5] = 0x02;
    buf_set_u32(&b2, b2.len - 4, txl_crc32c(0, b2.data, b2.len - 4));
    assert_int_equal(txl_decode(b2.data, b2.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown flags 0x02"));
    buf_free(&b);
    buf_free(&b2);
    free(ch);
    free(v);
    free(text);
}

static void test_corruption(void **state)
{
    (void)state;
    struct txl_record r, d;
    struct txl_change ch[7];
    struct txl_value v[8];
    sample_record(&r, ch, v);
    struct buf b;
    buf_init(&b);
    assert_int_equal(txl_encode(&r, &b), 0);
    char err[300];
    unsigned char *p = (unsigned char *)b.data;
    /* every single-bit flip and every byte replaced, in every position */
    for (size_t i = 0; i < b.len; i++) {
        unsigned char orig = p[i];
        for (int bit = 0; bit < 8; bit++) {
            p[i] = orig ^ (unsigned char)(1u << bit);
            err[0] = 0;
            if (txl_decode(p, b.len, &d, err, sizeof err) == 0)
                fail_msg("flip of byte %zu bit %d accepted", i, bit);
            assert_true(strlen(err) > 10);
            assert_null(d.changes);
        }
        p[i] = orig ^ 0xff;
        assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
        p[i] = orig;
    }
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), 0);
    txl_record_free(&d);
    /* every truncation */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(txl_decode(p, n, &d, err, sizeof err), -1);
        assert_true(strstr(err, "truncated") || strstr(err, "magic"));
    }
    /* trailing garbage */
    buf_putc(&b, 0);
    p = (unsigned char *)b.data;
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "trailing garbage"));
    b.len--;
    /* a checksum flip names the checksum */
    p[12] ^= 4;
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "checksum mismatch"));
    p[12] ^= 4;
    /* unknown version, correctly checksummed */
    p[4] = 2;
    uint32_t crc = txl_crc32c(0, p, b.len - 4);
    buf_set_u32(&b, b.len - 4, crc);
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "unsupported format version 2"));
    p[4] = 1;
    /* bad magic */
    p[0] = 'X';
    assert_int_equal(txl_decode(p, b.len, &d, err, sizeof err), -1);
    assert_non_null(strstr(err, "bad magic"));
    buf_free(&b);

    /* absurd counts and lengths with valid checksums: never allocated */
    static const unsigned char bodies[][24] = {
        /* lsn, time, origin, ntables=huge */
        {8, 1, 1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
        /* 0 tables, nchanges = 2^63 */
        {13, 1, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
        /* 1 table "t", 1 change: INSERT table 0 rowid 0, ncol = 40000 */
        {13, 1, 1, 1, 1, 1, 't', 1, 1, 0, 0, 0xc0, 0xb8, 0x02},
        /* ... ncol 1, TEXT of length 2^31-1 */
        {17, 1, 1, 1, 1, 1, 't', 1, 1, 0, 0, 1, 3, 0xff, 0xff, 0xff, 0xff, 0x07},
        /* a varint of 11 bytes */
        {11, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01},
        /* unknown op */
        {7, 1, 1, 1, 0, 1, 9, 0},
        /* table index out of range */
        {9, 1, 1, 1, 1, 1, 't', 1, 1, 5},
        /* unknown value type */
        {12, 1, 1, 1, 1, 1, 't', 1, 1, 0, 0, 1, 9},
        /* extra byte after the last change */
        {6, 1, 1, 1, 0, 0, 0},
    };
    static const char *const expect[] = {"table count", "change count", "column count", "text length",
                                         "varint", "unknown operation", "refers to table", "unknown value type",
                                         "unexpected bytes"};
    for (size_t k = 0; k < ARRAY_LEN(bodies); k++) {
        size_t blen = bodies[k][0];
        buf_init(&b);
        buf_append(&b, "OTXL\x01\x00", 6);
        buf_put_u32(&b, (uint32_t)blen);
        buf_append(&b, bodies[k] + 1, blen);
        buf_put_u32(&b, txl_crc32c(0, b.data, b.len));
        err[0] = 0;
        assert_int_equal(txl_decode(b.data, b.len, &d, err, sizeof err), -1);
        if (!strstr(err, expect[k]))
            fail_msg("case %zu: \"%s\" does not mention \"%s\"", k, err, expect[k]);
        buf_free(&b);
    }

    /* random mutations with a recomputed checksum reach the parser: it
     * must reject or accept them without crashing or leaking */
    buf_init(&b);
    assert_int_equal(txl_encode(&r, &b), 0);
    unsigned char *q = malloc(b.len);
    srand(42);
    int accepted = 0;
    for (int it = 0; it < 20000; it++) {
        memcpy(q, b.data, b.len);
        int nmut = 1 + rand() % 4;
        for (int m = 0; m < nmut; m++)
            q[10 + (size_t)rand() % (b.len - 14)] = (unsigned char)rand();
        uint32_t c = txl_crc32c(0, q, b.len - 4);
        q[b.len - 4] = (unsigned char)(c >> 24);
        q[b.len - 3] = (unsigned char)(c >> 16);
        q[b.len - 2] = (unsigned char)(c >> 8);
        q[b.len - 1] = (unsigned char)c;
        if (txl_decode(q, b.len, &d, err, sizeof err) == 0) {
            accepted++;
            struct buf j;
            buf_init(&j);
            assert_int_equal(txl_record_to_json(&d, &j), 0);
            buf_free(&j);
            txl_record_free(&d);
        }
    }
    assert_true(accepted > 0);
    free(q);
    buf_free(&b);
}

static void test_oom(void **state)
{
    (void)state;
    struct txl_record r, d;
    struct txl_change ch[7];
    struct txl_value v[8];
    sample_record(&r, ch, v);
    struct buf b;
    buf_init(&b);
    assert_int_equal(txl_encode(&r, &b), 0);
    char err[300];
    int saw_ok = 0;
    for (long n = 1; n < 40 && !saw_ok; n++) {
        util_fail_after(n);
        int rc = txl_decode(b.data, b.len, &d, err, sizeof err);
        util_fail_after(0);
        if (rc == 0) {
            saw_ok = 1;
            txl_record_free(&d);
        } else {
            assert_non_null(strstr(err, "out of memory"));
        }
    }
    assert_true(saw_ok);
    for (long n = 1; n < 40; n++) {
        struct buf e;
        buf_init(&e);
        util_fail_after(n);
        int rc = txl_encode(&r, &e);
        util_fail_after(0);
        if (rc == 0) {
            assert_int_equal(e.len, b.len);
            buf_free(&e);
            break;
        }
        buf_free(&e);
    }
    buf_free(&b);
}

static void test_json(void **state)
{
    (void)state;
    struct txl_record r;
    struct txl_change ch[7];
    struct txl_value v[8];
    sample_record(&r, ch, v);
    struct buf b;
    buf_init(&b);
    assert_int_equal(txl_record_to_json(&r, &b), 0);
    assert_int_equal(b.data[b.len - 1], '\n');
    json_error_t je;
    json_t *o = json_loadb(b.data, b.len, 0, &je);
    assert_non_null(o);
    assert_true(json_integer_value(json_object_get(o, "lsn")) == 123456789012LL);
    assert_string_equal(json_string_value(json_object_get(o, "origin")), "fedcba9876543210");
    assert_string_equal(json_string_value(json_object_get(o, "commit_time")), "2023-11-14T22:13:20.123456Z");
    json_t *chs = json_object_get(o, "changes");
    assert_int_equal(json_array_size(chs), 7);
    assert_string_equal(json_string_value(json_object_get(json_array_get(chs, 0), "op")), "ddl");
    json_t *vals = json_object_get(json_array_get(chs, 1), "values");
    assert_true(json_is_integer(json_array_get(vals, 0)));
    assert_true(json_is_real(json_array_get(vals, 1)));
    /* text with NUL but invalid UTF-8 (\xff) -> hex; blob -> hex */
    assert_string_equal(json_string_value(json_object_get(json_array_get(vals, 2), "text_hex")), "68006c6c6fff");
    assert_string_equal(json_string_value(json_object_get(json_array_get(vals, 3), "blob")), "00ff07");
    assert_true(json_is_null(json_array_get(vals, 4)));
    json_t *upd = json_array_get(chs, 2);
    assert_int_equal(json_integer_value(json_object_get(upd, "old_rowid")), -5);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(upd, "values"), 2), "real")),
                        "Infinity");
    json_t *kd = json_array_get(chs, 6);
    assert_string_equal(json_string_value(json_object_get(kd, "table")), "w \"q\"");
    assert_true(json_is_object(json_array_get(json_object_get(kd, "key"), 0)));
    json_decref(o);
    buf_free(&b);
}

static void test_classify(void **state)
{
    (void)state;
    static const struct {
        const char *sql;
        enum txl_kind k;
    } cases[] = {
        {"SELECT 1", TXL_KIND_DML},
        {"  insert into t values(1)", TXL_KIND_DML},
        {"WITH x AS (SELECT 1) DELETE FROM t", TXL_KIND_DML},
        {"EXPLAIN CREATE TABLE t(a)", TXL_KIND_DML},
        {"/* c */ -- x\n CREATE TABLE t(a)", TXL_KIND_DDL},
        {"create unique index i on t(a)", TXL_KIND_DDL},
        {"CREATE TABLE t AS SELECT 1", TXL_KIND_CTAS},
        {"CREATE TABLE IF NOT EXISTS \"a b\".[c d] AS SELECT 1", TXL_KIND_DDL},
        {"CREATE TABLE IF NOT EXISTS [main].[c d] AS SELECT 1", TXL_KIND_CTAS},
        {"CREATE TEMP TABLE t AS SELECT 1", TXL_KIND_DDL},
        {"CREATE TABLE temp.t AS SELECT 1", TXL_KIND_DDL},
        {"CREATE TABLE \"Main\".t AS SELECT 1", TXL_KIND_CTAS},
        {"CREATE TABLE t(a AS (1))", TXL_KIND_DDL},
        {"DROP VIEW v", TXL_KIND_DDL},
        {"ALTER TABLE t ADD COLUMN x", TXL_KIND_DDL},
        {"ANALYZE", TXL_KIND_DDL},
        {"PRAGMA user_version = 3", TXL_KIND_DDL},
        {"PRAGMA main.application_id(7)", TXL_KIND_DDL},
        {"PRAGMA user_version", TXL_KIND_LOCAL},
        {"PRAGMA optimize", TXL_KIND_LOCAL},
        {"VACUUM", TXL_KIND_REFUSE},
        {"vacuum into 'f.db'", TXL_KIND_LOCAL},
        {"ATTACH 'x' AS y", TXL_KIND_LOCAL},
        {"REINDEX", TXL_KIND_LOCAL},
        {"BEGIN IMMEDIATE", TXL_KIND_TXN},
        {"release sp1", TXL_KIND_TXN},
        {"", TXL_KIND_DML},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        if (txl_classify(cases[i].sql) != cases[i].k)
            fail_msg("\"%s\": %s, expected %s", cases[i].sql, txl_kind_name(txl_classify(cases[i].sql)),
                     txl_kind_name(cases[i].k));
    struct txl_ctas c;
    char err[200];
    assert_int_equal(txl_rewrite_ctas("create table if not exists main.\"x y\" as select a, 'b;' from t; -- c", &c,
                                      err, sizeof err),
                     0);
    assert_string_equal(c.create_sql,
                        "CREATE TABLE IF NOT EXISTS main.\"x y\" AS SELECT * FROM (\nselect a, 'b;' from t\n) LIMIT 0");
    assert_string_equal(c.insert_sql, "INSERT INTO main.\"x y\" SELECT * FROM (\nselect a, 'b;' from t\n)");
    txl_ctas_free(&c);
    assert_int_equal(txl_rewrite_ctas("CREATE TABLE t AS SELECT 1; SELECT 2", &c, err, sizeof err), -1);
    assert_int_equal(txl_rewrite_ctas("CREATE TABLE t(a)", &c, err, sizeof err), -1);
    assert_int_equal(txl_rewrite_ctas("CREATE TABLE t AS SELECT 'x", &c, err, sizeof err), -1);
    assert_int_equal(txl_rewrite_ctas("CREATE TABLE t AS ", &c, err, sizeof err), -1);
}

/* ---- capture and apply ------------------------------------------------------------ */

static void test_rowid_tables(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT NOT NULL, score REAL, note)");
    const char *w1[] = {"INSERT INTO t(name, score) VALUES ('a', 1.5), ('b', 2), ('c', NULL)",
                        "INSERT INTO t VALUES (100, 'd', -3, x'00ff')", "UPDATE t SET score = score * 2 WHERE id < 50",
                        "DELETE FROM t WHERE name = 'b'", NULL};
    txn(p, w1);
    assert_int_equal(p->last_nchanges, 8);
    assert_same(p);
    /* empty and read-only transactions produce no record */
    const char *w2[] = {"SELECT * FROM t", "UPDATE t SET name = 'x' WHERE id = 12345", NULL};
    txn(p, w2);
    assert_int_equal(p->last_nchanges, 0);
    /* REPLACE and UPSERT */
    const char *w3[] = {"REPLACE INTO t VALUES (100, 'd2', 0, NULL)",
                        "INSERT INTO t VALUES (1, 'up', 0, 0) ON CONFLICT(id) DO UPDATE SET note = 'upserted'",
                        "INSERT OR IGNORE INTO t VALUES (1, 'ignored', 0, 0)", NULL};
    txn(p, w3);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM t WHERE note = 'upserted'"), 1);
    pair_free(p);
}

static void test_without_rowid(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE w(region TEXT COLLATE NOCASE, n INT, payload, PRIMARY KEY (n DESC, region)) WITHOUT ROWID");
    const char *w1[] = {"INSERT INTO w VALUES ('EU', 1, 'x'), ('us', 1, 'y'), ('eu', 2, NULL)",
                        "UPDATE w SET payload = 'z' WHERE region = 'Us'",
                        "UPDATE w SET n = n + 10 WHERE region = 'eu'", /* key change */
                        "UPDATE w SET region = 'asia' WHERE n = 12", "DELETE FROM w WHERE region = 'US'", NULL};
    txn(p, w1);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT n FROM w WHERE region = 'ASIA'"), 12);
    pair_free(p);
}

static void test_no_primary_key(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE log(msg, n)");
    const char *w[] = {"INSERT INTO log VALUES ('dup', 1), ('dup', 1), ('dup', 1), ('other', 2)",
                       "UPDATE log SET n = 5 WHERE rowid = 2", "DELETE FROM log WHERE rowid = 3",
                       "UPDATE log SET rowid = 1000 WHERE rowid = 1", /* rowid change */
                       "UPDATE log SET rowid = -rowid WHERE msg = 'other'", NULL};
    txn(p, w);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT n FROM log WHERE rowid = 1000"), 1);
    /* a table whose columns shadow rowid and _rowid_ */
    auto1(p, "CREATE TABLE odd(rowid TEXT, _rowid_ INT, v)");
    const char *w2[] = {"INSERT INTO odd VALUES ('a', 1, 2), ('b', 3, 4)", "UPDATE odd SET v = 9 WHERE rowid = 'a'",
                        "UPDATE odd SET oid = 50 WHERE rowid = 'b'", NULL};
    txn(p, w2);
    assert_same(p);
    /* VACUUM renumbers the rowids of such tables when they have no index:
     * it must not run (classified REFUSE); VACUUM INTO keeps them */
    assert_int_equal(txl_classify("VACUUM"), TXL_KIND_REFUSE);
    assert_int_equal(txl_classify("VACUUM main INTO '/tmp/x.db'"), TXL_KIND_LOCAL);
    exec_ok(p->b, "DELETE FROM log WHERE n = 1; VACUUM");
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM log WHERE rowid = -4"), 0);
    pair_free(p);
}

static void test_key_changes(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE k(id INTEGER PRIMARY KEY, v)");
    auto1(p, "CREATE TABLE k2(a INT, b TEXT, v, PRIMARY KEY (a, b))"); /* rowid table, non-integer key */
    const char *w[] = {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20) "
                       "INSERT INTO k SELECT x, x * x FROM c",
                       "UPDATE k SET id = -id", "UPDATE k SET id = 1000 + id WHERE id > -5",
                       "INSERT INTO k2 VALUES (1, 'a', 1), (2, 'b', 2)", "UPDATE k2 SET a = a + 10, b = upper(b)",
                       NULL};
    txn(p, w);
    assert_same(p);
    pair_free(p);
}

static void test_autoincrement(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE ai(id INTEGER PRIMARY KEY AUTOINCREMENT, v)");
    const char *w[] = {"INSERT INTO ai(v) VALUES (1), (2), (3)", "DELETE FROM ai WHERE id = 3", NULL};
    txn(p, w);
    const char *w2[] = {"INSERT INTO ai(v) VALUES (4)", "UPDATE ai SET id = 100 WHERE id = 4", NULL};
    txn(p, w2);
    assert_same(p);
    /* sqlite_sequence follows on B: the largest id ever inserted */
    assert_int_equal(query_int(p->a, "SELECT seq FROM sqlite_sequence WHERE name = 'ai'"), 4);
    assert_int_equal(query_int(p->b, "SELECT seq FROM sqlite_sequence WHERE name = 'ai'"), 4);
    /* a row inserted then deleted in one transaction still burns its id on B */
    const char *w3[] = {"INSERT INTO ai(v) VALUES (5)", "DELETE FROM ai WHERE v = 5", NULL};
    txn(p, w3);
    assert_int_equal(query_int(p->b, "SELECT seq FROM sqlite_sequence WHERE name = 'ai'"), 101);
    /* the next id B would give (e.g. as the new leader) is A's next id */
    exec_ok(p->a, "INSERT INTO ai(v) VALUES ('next')");
    exec_ok(p->b, "INSERT INTO ai(v) VALUES ('next')");
    assert_int_equal(query_int(p->a, "SELECT id FROM ai WHERE v = 'next'"), 102);
    assert_int_equal(query_int(p->b, "SELECT id FROM ai WHERE v = 'next'"), 102);
    pair_free(p);
}

static void test_triggers(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE acct(id INTEGER PRIMARY KEY, bal INT)");
    auto1(p, "CREATE TABLE audit(id INTEGER PRIMARY KEY, what TEXT, at TEXT, r INT)");
    auto1(p, "CREATE TRIGGER acct_ins AFTER INSERT ON acct BEGIN "
             "INSERT INTO audit(what, at, r) VALUES ('ins ' || NEW.id, datetime('now'), random()); END");
    auto1(p, "CREATE TRIGGER acct_upd BEFORE UPDATE OF bal ON acct WHEN NEW.bal < 0 BEGIN "
             "INSERT INTO audit(what) VALUES ('negative ' || OLD.id); END");
    auto1(p, "CREATE TRIGGER audit_cap AFTER INSERT ON audit WHEN (SELECT count(*) FROM audit) > 3 BEGIN "
             "DELETE FROM audit WHERE id = (SELECT min(id) FROM audit); END"); /* depth 2 */
    const char *w[] = {"INSERT INTO acct VALUES (1, 10), (2, 20), (3, 30)", "UPDATE acct SET bal = bal - 25", NULL};
    txn(p, w);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM audit"), 3);
    /* B's triggers and foreign keys are on again after applying */
    assert_int_equal(query_int(p->b, "PRAGMA foreign_keys"), 1);
    int on = -1;
    sqlite3_db_config(p->b, SQLITE_DBCONFIG_ENABLE_TRIGGER, -1, &on);
    assert_int_equal(on, 1);
    pair_free(p);
}

static void test_cascade(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *ddl[] = {"CREATE TABLE parent(id INTEGER PRIMARY KEY, name)",
                         "CREATE TABLE child(id INTEGER PRIMARY KEY, pid REFERENCES parent(id) ON DELETE CASCADE)",
                         "CREATE TABLE weak(id INTEGER PRIMARY KEY, pid REFERENCES parent(id) ON DELETE SET NULL)",
                         "CREATE TABLE grandchild(cid REFERENCES child(id) ON DELETE CASCADE, x)", NULL};
    txn(p, ddl);
    const char *w[] = {"INSERT INTO parent VALUES (1, 'a'), (2, 'b'), (3, 'c')",
                       "INSERT INTO child VALUES (10, 1), (11, 1), (20, 2), (30, 3)",
                       "INSERT INTO weak VALUES (1, 1), (2, 2)",
                       "INSERT INTO grandchild VALUES (10, 'x'), (11, 'y'), (20, 'z')", NULL};
    txn(p, w);
    auto1(p, "DELETE FROM parent WHERE id = 1");
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM grandchild"), 1);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM weak WHERE pid IS NULL"), 1);
    /* DROP TABLE of a parent deletes its children through the cascade */
    auto1(p, "DROP TABLE grandchild");
    auto1(p, "DROP TABLE weak");
    auto1(p, "DROP TABLE parent");
    assert_int_equal(query_int(p->a, "SELECT count(*) FROM child"), 0);
    assert_same(p);
    pair_free(p);
}

static void test_alter_table(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *w[] = {"CREATE TABLE t(a INTEGER PRIMARY KEY, b, c)", "INSERT INTO t VALUES (1, 'b1', 'c1')",
                       "ALTER TABLE t ADD COLUMN d DEFAULT 'dflt'", "INSERT INTO t VALUES (2, 'b2', 'c2', 'd2')",
                       "UPDATE t SET d = d || '!'", NULL};
    txn(p, w);
    assert_same(p);
    const char *w2[] = {"ALTER TABLE t DROP COLUMN b", "INSERT INTO t VALUES (3, 'c3', 'd3')",
                        "ALTER TABLE t RENAME COLUMN c TO cc", "UPDATE t SET cc = 'new' WHERE a = 1",
                        "ALTER TABLE t RENAME TO t2", "DELETE FROM t2 WHERE a = 2", NULL};
    txn(p, w2);
    assert_same(p);
    /* a failed DDL is not recorded and changes nothing */
    begin(p);
    assert_int_equal(run(p, "ALTER TABLE nosuch ADD COLUMN x"), SQLITE_ERROR);
    run_ok(p, "INSERT INTO t2 VALUES (4, 'c4', 'd4')");
    commit(p);
    assert_int_equal(p->last_nchanges, 1);
    assert_same(p);
    pair_free(p);
}

static void test_ctas(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE src(a INT, b TEXT, c REAL)");
    auto1(p, "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 50) "
             "INSERT INTO src SELECT x, 'v' || x, x / 3.0 FROM c");
    auto1(p, "CREATE TABLE r AS SELECT a, b || '!' AS bb, c, random() AS rnd, randomblob(4) AS rb FROM src "
             "WHERE a % 2 = 0 ORDER BY random()");
    assert_int_equal(query_int(p->a, "SELECT count(*) FROM r"), 25);
    assert_same(p);
    /* the same declared columns as a plain CREATE TABLE AS would give */
    exec_ok(p->a, "CREATE TEMP TABLE ref AS SELECT a, b || '!' AS bb, c, random() AS rnd, randomblob(4) AS rb FROM "
                  "src");
    assert_int_equal(query_int(p->a, "SELECT (SELECT replace(sql, 'TABLE ref', 'TABLE r') FROM temp.sqlite_schema "
                                     "WHERE name = 'ref') = (SELECT sql FROM sqlite_schema WHERE name = 'r')"),
                     1);
    /* IF NOT EXISTS on an existing table inserts nothing */
    auto1(p, "CREATE TABLE IF NOT EXISTS r AS SELECT 1, 2, 3, 4, 5");
    assert_int_equal(p->last_nchanges, 0);
    assert_int_equal(query_int(p->a, "SELECT count(*) FROM r"), 25);
    /* a TEMP CREATE TABLE AS is local */
    auto1(p, "CREATE TEMP TABLE tmp AS SELECT * FROM src");
    assert_int_equal(p->last_nchanges, 0);
    auto1(p, "CREATE TABLE temp.tmp2 AS SELECT * FROM src");
    assert_int_equal(p->last_nchanges, 0);
    assert_int_equal(query_int(p->a, "SELECT count(*) FROM tmp2"), 50);
    /* WITH and VALUES selects */
    auto1(p, "CREATE TABLE cte AS WITH x(n) AS (VALUES (1), (2)) SELECT n, random() FROM x");
    auto1(p, "CREATE TABLE vals AS VALUES (1, 'a'), (2, 'b')");
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM cte") + query_int(p->b, "SELECT count(*) FROM vals"), 4);
    assert_same(p);
    pair_free(p);
}

static void test_index_view(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *w[] = {"CREATE TABLE t(a, b)", "CREATE INDEX t_a ON t(a)", "CREATE UNIQUE INDEX t_ab ON t(a, b)",
                       "CREATE VIEW v AS SELECT a, count(*) AS n FROM t GROUP BY a",
                       "INSERT INTO t VALUES (1, 2), (1, 3)", NULL};
    txn(p, w);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT n FROM v WHERE a = 1"), 2);
    const char *w2[] = {"DROP INDEX t_a", "DROP VIEW v", "CREATE INDEX IF NOT EXISTS t_ab ON t(b)", NULL};
    txn(p, w2);
    assert_int_equal(p->last_nchanges, 2); /* the IF NOT EXISTS no-op is not recorded */
    assert_same(p);
    /* ANALYZE and user_version are replicated as text */
    auto1(p, "ANALYZE");
    auto1(p, "PRAGMA user_version = 42");
    assert_int_equal(query_int(p->b, "PRAGMA user_version"), 42);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM sqlite_stat1"),
                     query_int(p->a, "SELECT count(*) FROM sqlite_stat1"));
    /* temp objects are local */
    auto1(p, "CREATE TEMP TABLE scratch(x)");
    assert_int_equal(p->last_nchanges, 0);
    auto1(p, "INSERT INTO scratch VALUES (1)");
    assert_int_equal(p->last_nchanges, 0);
    assert_same(p);
    pair_free(p);
}

static void test_values(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE v(id INTEGER PRIMARY KEY, x, y BLOB, z TEXT, r REAL, n NUMERIC)");
    const char *w[] = {"INSERT INTO v VALUES (1, NULL, NULL, NULL, NULL, NULL)",
                       "INSERT INTO v VALUES (2, x'', '', zeroblob(3), -0.0, '1e3')",
                       "INSERT INTO v VALUES (3, 9223372036854775807, -9223372036854775808, 1e308, 1e999, '12')",
                       "INSERT INTO v VALUES (4, CAST(x'610062' AS TEXT), x'00010203', 'é\xe2\x82\xac', 3, 2.5)",
                       "INSERT INTO v VALUES (5, 0.1, -1e999, randomblob(100), 1, 'abc')", NULL};
    txn(p, w);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT length(CAST(x AS BLOB)) FROM v WHERE id = 4"), 3);
    /* 1 MB text and blob */
    auto1(p, "INSERT INTO v(id, z, y) VALUES (6, printf('%.*c', 1048576, 'x'), randomblob(1048576))");
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT length(z) FROM v WHERE id = 6"), 1048576);
    auto1(p, "UPDATE v SET z = z || 'y' WHERE id = 6");
    assert_same(p);
    pair_free(p);
}

static void test_savepoints(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE s(id INTEGER PRIMARY KEY, v)");
    begin(p);
    run_ok(p, "INSERT INTO s VALUES (1, 'kept')");
    savepoint(p, "a");
    run_ok(p, "INSERT INTO s VALUES (2, 'gone')");
    savepoint(p, "b");
    run_ok(p, "INSERT INTO s VALUES (3, 'gone')");
    rollback_to(p, "A"); /* names compare case-insensitively */
    run_ok(p, "INSERT INTO s VALUES (4, 'kept after rollback to')");
    savepoint(p, "c");
    run_ok(p, "UPDATE s SET v = v || '+' WHERE id = 1");
    release(p, "c");
    savepoint(p, "d");
    run_ok(p, "DELETE FROM s WHERE id = 4");
    savepoint(p, "d"); /* same name twice: the newer one is used */
    run_ok(p, "INSERT INTO s VALUES (5, 'gone')");
    rollback_to(p, "d");
    rollback_to(p, "d");
    release(p, "d");
    run_ok(p, "INSERT INTO s VALUES (6, 'kept')");
    release(p, "a");
    assert_int_equal(txl_capture_rollback_to(p->cap, "a"), -1); /* released */
    commit(p);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT group_concat(id) = '1,6' FROM s"), 1);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM s"), 2);
    pair_free(p);
}

static void test_failed_statement(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE f(id INTEGER PRIMARY KEY, u UNIQUE, v)");
    auto1(p, "CREATE TABLE side(x)");
    auto1(p, "CREATE TRIGGER f_ins AFTER INSERT ON f BEGIN INSERT INTO side VALUES (NEW.id); END");
    auto1(p, "INSERT INTO f VALUES (1, 'taken', 0)");
    begin(p);
    run_ok(p, "INSERT INTO f VALUES (2, 'a', 0)");
    /* rows 3 and 4 (and their trigger rows) are written, then row 5 fails */
    size_t before = txl_capture_count(p->cap);
    assert_int_equal(run(p, "INSERT INTO f VALUES (3, 'b', 0), (4, 'c', 0), (5, 'taken', 0)"), SQLITE_CONSTRAINT);
    assert_int_equal(txl_capture_count(p->cap), before);
    savepoint(p, "s");
    assert_int_equal(run(p, "UPDATE f SET v = 1 / 0 + 'x' WHERE id = 999"), SQLITE_OK);
    assert_int_equal(run(p, "INSERT INTO f SELECT 6, 'taken', 0"), SQLITE_CONSTRAINT);
    rollback_to(p, "s");
    run_ok(p, "INSERT INTO f VALUES (7, 'd', 0)");
    commit(p);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM f"), 3);
    /* OR ROLLBACK ends the whole transaction: everything is dropped */
    begin(p);
    run_ok(p, "INSERT INTO f VALUES (8, 'e', 0)");
    assert_int_equal(run(p, "INSERT OR ROLLBACK INTO f VALUES (9, 'taken', 0)"), SQLITE_CONSTRAINT);
    assert_int_equal(txl_capture_count(p->cap), 0);
    assert_true(sqlite3_get_autocommit(p->a));
    assert_same(p);
    pair_free(p);
}

static void test_nondeterministic(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE nd(id INTEGER PRIMARY KEY, r INT DEFAULT (random()), t TEXT DEFAULT CURRENT_TIMESTAMP, "
             "b BLOB)");
    const char *w[] = {"INSERT INTO nd(b) VALUES (randomblob(8)), (randomblob(8))",
                       "INSERT INTO nd(r, t) VALUES (random(), datetime('now', 'subsec'))",
                       "UPDATE nd SET r = abs(random() % 1000) WHERE id = 1", NULL};
    txn(p, w);
    assert_same(p);
    pair_free(p);
}

static void test_big_transaction(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE big(id INTEGER PRIMARY KEY, r INT, s TEXT)");
    auto1(p, "CREATE TABLE bigw(k TEXT PRIMARY KEY, v) WITHOUT ROWID");
    uint64_t t0 = util_now_ns();
    const char *w[] = {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
                       "INSERT INTO big SELECT x, random(), hex(randomblob(8)) FROM c",
                       NULL};
    txn(p, w);
    assert_int_equal(p->last_nchanges, 100000);
    const char *w2[] = {"UPDATE big SET r = r / 2 WHERE id % 3 = 0", "DELETE FROM big WHERE id % 5 = 0",
                        "INSERT INTO bigw SELECT s, id FROM big WHERE id < 20000", NULL};
    txn(p, w2);
    uint64_t ms = (util_now_ns() - t0) / 1000000;
    fprintf(stderr, "    big: 100,000-row insert + update/delete/insert transactions (%zu changes) in %llu ms\n",
            p->last_nchanges, (unsigned long long)ms);
    assert_same(p);
    pair_free(p);
}

static void test_generated_columns(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *ddl[] = {"CREATE TABLE g(a INTEGER PRIMARY KEY, b, v AS (b * 2) VIRTUAL, c, s AS (c || '!') STORED)",
                         "CREATE TABLE gw(a, v AS (a || 'v') VIRTUAL, b, s AS (b || 's') STORED, c, "
                         "PRIMARY KEY (c, a)) WITHOUT ROWID",
                         NULL};
    txn(p, ddl);
    const char *w[] = {"INSERT INTO g(b, c) VALUES (1, 'x'), (2, 'y')", "UPDATE g SET c = 'z', a = 10 WHERE b = 1",
                       "INSERT INTO gw(a, b, c) VALUES ('A', 'B', 'C'), ('A2', 'B2', 'C2')",
                       "UPDATE gw SET b = 'B3', c = 'C3' WHERE a = 'A'", "DELETE FROM gw WHERE a = 'A2'",
                       "DELETE FROM g WHERE b = 2", NULL};
    txn(p, w);
    assert_same(p);
    /* after DDL the first statements resolve their values afterwards */
    auto1(p, "CREATE INDEX gx ON gw(b)");
    const char *w2[] = {"UPDATE gw SET b = 'B9', a = 'A9'", "UPDATE g SET b = 7", "DELETE FROM gw", NULL};
    txn(p, w2);
    assert_same(p);
    /* the one layout SQLite 3.40 cannot report: refused, not mis-captured */
    auto1(p, "CREATE TABLE bad(v AS (1) VIRTUAL, id INTEGER PRIMARY KEY, b)");
    begin(p);
    txl_capture_stmt_begin(p->cap);
    exec_ok(p->a, "INSERT INTO bad(id, b) VALUES (1, 'x')");
    assert_int_equal(txl_capture_stmt_end(p->cap, 1), -1);
    assert_non_null(strstr(txl_capture_error(p->cap), "VIRTUAL generated"));
    struct txl_record r;
    char err[300];
    assert_int_equal(txl_capture_take(p->cap, &r, err, sizeof err), -1);
    exec_ok(p->a, "ROLLBACK");
    assert_same(p);
    pair_free(p);
}

static void test_fts5(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    if (sqlite3_exec(p->a, "CREATE VIRTUAL TABLE temp.probe USING fts5(x)", NULL, NULL, NULL) != SQLITE_OK) {
        pair_free(p);
        skip();
    }
    auto1(p, "CREATE VIRTUAL TABLE docs USING fts5(title, body)");
    const char *w[] = {"INSERT INTO docs VALUES ('one', 'hello replicated world')",
                       "INSERT INTO docs VALUES ('two', 'another hello')", "DELETE FROM docs WHERE title = 'one'",
                       NULL};
    txn(p, w);
    assert_same(p);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM docs WHERE docs MATCH 'hello'"), 1);
    assert_int_equal(query_int(p->b, "SELECT count(*) FROM docs WHERE docs MATCH 'world'"), 0);
    exec_ok(p->b, "INSERT INTO docs(docs) VALUES ('integrity-check')");
    pair_free(p);
}

static void test_names_and_schema_churn(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *w[] = {"CREATE TABLE \"my \"\"table\"\" x\"(\"col \"\"1\"\"\" INT, [sel ect] TEXT, "
                       "`a.b` ANY, \"order\" INT, "
                       "PRIMARY KEY (\"order\", \"col \"\"1\"\"\")) WITHOUT ROWID, STRICT",
                       "INSERT INTO \"my \"\"table\"\" x\" VALUES (1, 'a', x'01', 2), (3, 'b', 4.5, 2)",
                       "UPDATE \"my \"\"table\"\" x\" SET \"order\" = 7 WHERE [sel ect] = 'a'",
                       "CREATE TABLE \"select\"(\"from\" INTEGER PRIMARY KEY, \"where\")",
                       "INSERT INTO \"select\" VALUES (1, 'x')", NULL};
    txn(p, w);
    assert_same(p);
    /* drop and re-create a table with other columns in one transaction */
    const char *w2[] = {"CREATE TABLE t(a, b)", "INSERT INTO t VALUES (1, 2)", "DROP TABLE t",
                        "CREATE TABLE t(x INTEGER PRIMARY KEY, y, z) ", "INSERT INTO t VALUES (5, 6, 7)",
                        "UPDATE t SET z = 8", NULL};
    txn(p, w2);
    assert_same(p);
    /* first statements after DDL take the deferred path (metadata
     * unknown while the hook runs): key changes, deletes */
    auto1(p, "CREATE INDEX ix ON \"my \"\"table\"\" x\"([sel ect])");
    const char *w3[] = {"UPDATE \"my \"\"table\"\" x\" SET \"col \"\"1\"\"\" = 9, `a.b` = NULL WHERE \"order\" = 2",
                        NULL};
    txn(p, w3);
    auto1(p, "CREATE INDEX ix2 ON t(y)");
    auto1(p, "DELETE FROM \"my \"\"table\"\" x\" WHERE \"order\" = 7");
    assert_same(p);
    pair_free(p);
}

static void test_undetected_ddl(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    begin(p);
    txl_capture_stmt_begin(p->cap); /* DDL run as if it were DML */
    exec_ok(p->a, "CREATE TABLE sneaky(x)");
    assert_int_equal(txl_capture_stmt_end(p->cap, 1), -1);
    assert_non_null(strstr(txl_capture_error(p->cap), "schema changed"));
    exec_ok(p->a, "ROLLBACK");
    txl_capture_reset(p->cap);
    assert_null(txl_capture_error(p->cap));
    pair_free(p);
}

static void test_apply_rules(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    auto1(p, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    const char *w[] = {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000) "
                       "INSERT INTO t SELECT x, x FROM c",
                       NULL};
    p->keep = 1;
    txn(p, w);
    p->keep = 0;
    char err[400];
    /* already held: skipped */
    assert_int_equal(txl_applier_apply(p->ap, &p->kept[0], err, sizeof err), 1);
    /* incremental application on a third database */
    sqlite3 *c = open_db();
    exec_ok(c, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    struct txl_applier *ap;
    assert_int_equal(txl_applier_new(c, &ap), 0);
    assert_int_equal(txl_applier_begin(ap, &p->kept[0], err, sizeof err), 0);
    int steps = 0, rc;
    while ((rc = txl_applier_step(ap, 64, err, sizeof err)) == 1)
        steps++;
    assert_int_equal(rc, 0);
    assert_int_equal(steps, 15);
    assert_int_equal(query_int(c, "SELECT count(*) FROM t"), 1000);
    /* divergence: a DELETE of a missing row fails and changes nothing */
    exec_ok(c, "DELETE FROM t WHERE id = 500");
    struct txl_value v = {.type = TXL_INTEGER, .i = 1};
    struct txl_value row[2] = {{.type = TXL_INTEGER, .i = 2000}, v};
    struct txl_change ch[2] = {{.op = TXL_INSERT, .table = "t", .new_rowid = 2000, .ncol = 2, .newv = row},
                               {.op = TXL_DELETE, .table = "t", .old_rowid = 500}};
    struct txl_record r = {.lsn = 7, .changes = ch, .nchanges = 2};
    assert_int_equal(txl_applier_apply(ap, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "diverged"));
    assert_non_null(strstr(err, "change 1 (DELETE t)"));
    assert_int_equal(query_int(c, "SELECT count(*) FROM t WHERE id = 2000"), 0);
    assert_int_equal(query_int(c, "PRAGMA foreign_keys"), 1);
    /* a missing table, a column count mismatch */
    ch[1] = (struct txl_change){.op = TXL_DELETE, .table = "nope", .old_rowid = 1};
    assert_int_equal(txl_applier_apply(ap, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "no such table: nope"));
    ch[0].ncol = 1;
    r.nchanges = 1;
    assert_int_equal(txl_applier_apply(ap, &r, err, sizeof err), -1);
    assert_non_null(strstr(err, "2 stored columns here, the record has 1"));
    /* inside a transaction: refused */
    exec_ok(c, "BEGIN");
    assert_int_equal(txl_applier_apply(ap, &r, err, sizeof err), -1);
    exec_ok(c, "ROLLBACK");
    uint64_t lsn;
    assert_int_equal(txl_applied_lsn(c, &lsn, err, sizeof err), 0);
    assert_true(lsn == p->lsn);
    txl_applier_free(ap);
    assert_int_equal(sqlite3_close(c), SQLITE_OK);
    pair_free(p);
}

/* Many records in one transaction (a replica catching up): the result is
 * the same as one by one, held LSNs are skipped, DDL between rows refreshes
 * the applier's table cache, and a record that fails rolls the whole batch
 * back. */
static void test_apply_batch(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    p->keep = 1;
    auto1(p, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    auto1(p, "INSERT INTO t VALUES (1, 'a'), (2, 'b'), (3, 'c')");
    auto1(p, "UPDATE t SET v = v || '!' WHERE id > 1");
    auto1(p, "ALTER TABLE t ADD COLUMN w DEFAULT 7");
    auto1(p, "INSERT INTO t VALUES (4, 'd', 8)");
    auto1(p, "CREATE TABLE k(a TEXT, b INT, c, PRIMARY KEY (a, b)) WITHOUT ROWID");
    auto1(p, "INSERT INTO k VALUES ('x', 1, randomblob(9)), ('y', 2, NULL)");
    auto1(p, "DELETE FROM t WHERE id = 2");
    auto1(p, "UPDATE k SET b = 3 WHERE a = 'y'");
    p->keep = 0;
    assert_int_equal(p->nkept, 9);
    char err[400];
    sqlite3 *c = open_db();
    struct txl_applier *ap;
    assert_int_equal(txl_applier_new(c, &ap), 0);
    /* the first three, then all nine: the three are skipped */
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), 0);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(txl_applier_batch_add(ap, &p->kept[i], err, sizeof err), 0);
    assert_int_equal(txl_applier_batch_commit(ap, err, sizeof err), 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM t"), 3);
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), 0);
    for (size_t i = 0; i < p->nkept; i++)
        assert_int_equal(txl_applier_batch_add(ap, &p->kept[i], err, sizeof err), i < 3 ? 1 : 0);
    assert_int_equal(txl_applier_batch_commit(ap, err, sizeof err), 0);
    struct txl_checksum ca, cc;
    sums(p->a, &ca);
    sums(c, &cc);
    assert_string_equal(ca.hex, cc.hex);
    txl_checksum_free(&ca);
    txl_checksum_free(&cc);
    uint64_t lsn = 0;
    assert_int_equal(txl_applied_lsn(c, &lsn, err, sizeof err), 0);
    assert_true(lsn == p->lsn);
    /* nothing new: a batch of held records commits nothing */
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), 0);
    assert_int_equal(txl_applier_batch_add(ap, &p->kept[8], err, sizeof err), 1);
    assert_int_equal(txl_applier_batch_commit(ap, err, sizeof err), 0);
    /* a good record, then one that diverges: neither is kept */
    struct txl_value row[3] = {{.type = TXL_INTEGER, .i = 50}, {.type = TXL_NULL}, {.type = TXL_NULL}};
    struct txl_change good = {.op = TXL_INSERT, .table = "t", .new_rowid = 50, .ncol = 3, .newv = row};
    struct txl_change gone = {.op = TXL_DELETE, .table = "t", .old_rowid = 2};
    struct txl_record r1 = {.lsn = p->lsn + 1, .changes = &good, .nchanges = 1};
    struct txl_record r2 = {.lsn = p->lsn + 2, .changes = &gone, .nchanges = 1};
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), 0);
    assert_int_equal(txl_applier_batch_add(ap, &r1, err, sizeof err), 0);
    assert_int_equal(txl_applier_batch_add(ap, &r2, err, sizeof err), -1);
    assert_non_null(strstr(err, "diverged"));
    assert_int_equal(txl_applier_batch_commit(ap, err, sizeof err), -1);
    assert_int_equal(query_int(c, "SELECT count(*) FROM t WHERE id = 50"), 0);
    assert_int_equal(query_int(c, "PRAGMA foreign_keys"), 1);
    assert_int_equal(txl_applied_lsn(c, &lsn, err, sizeof err), 0);
    assert_true(lsn == p->lsn);
    /* the applier is usable again, one record at a time too */
    assert_int_equal(txl_applier_apply(ap, &r1, err, sizeof err), 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM t WHERE id = 50"), 1);
    txl_applier_free(ap);
    assert_int_equal(sqlite3_close(c), SQLITE_OK);
    pair_free(p);
}

/* Another connection holding the write lock: the batch fails as busy (the
 * follower retries it), and applies once the lock is gone. */
static void test_apply_batch_busy(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    p->keep = 1;
    auto1(p, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    auto1(p, "INSERT INTO t VALUES (1, 'a')");
    p->keep = 0;
    char path[] = "/tmp/orbit-unit-busy-XXXXXX", side[64];
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    sqlite3 *c, *other;
    assert_int_equal(sqlite3_open(path, &c), SQLITE_OK);
    assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
    exec_ok(c, "PRAGMA journal_mode=WAL");
    struct txl_applier *ap;
    assert_int_equal(txl_applier_new(c, &ap), 0);
    char err[400];
    exec_ok(other, "BEGIN IMMEDIATE");
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), -1);
    assert_int_equal(txl_applier_busy(ap), 1);
    exec_ok(other, "COMMIT");
    assert_int_equal(txl_applier_batch_begin(ap, err, sizeof err), 0);
    assert_int_equal(txl_applier_busy(ap), 0);
    for (size_t i = 0; i < p->nkept; i++)
        assert_int_equal(txl_applier_batch_add(ap, &p->kept[i], err, sizeof err), 0);
    assert_int_equal(txl_applier_batch_commit(ap, err, sizeof err), 0);
    assert_int_equal(query_int(c, "SELECT count(*) FROM t"), 1);
    txl_applier_free(ap);
    assert_int_equal(sqlite3_close(other), SQLITE_OK);
    assert_int_equal(sqlite3_close(c), SQLITE_OK);
    for (int k = 0; k < 3; k++) {
        snprintf(side, sizeof side, "%s%s", path, k == 0 ? "" : k == 1 ? "-wal" : "-shm");
        unlink(side);
    }
    pair_free(p);
}

/* Apply records on A's side too (a leader's speculative commits), then undo
 * them newest first: the checksum comes back to where it started. */
static void test_undo(void **state)
{
    (void)state;
    struct pair *p = pair_new();
    const char *ddl[] = {"CREATE TABLE u(id INTEGER PRIMARY KEY, v, w BLOB)",
                         "CREATE TABLE uw(a TEXT, b INT, v, PRIMARY KEY (b, a)) WITHOUT ROWID",
                         "CREATE TABLE ua(id INTEGER PRIMARY KEY AUTOINCREMENT, v)",
                         "CREATE TABLE uc(pid REFERENCES u(id) ON DELETE CASCADE ON UPDATE CASCADE, x)",
                         "CREATE TRIGGER u_del AFTER DELETE ON u BEGIN "
                         "INSERT INTO ua(v) VALUES ('del ' || OLD.id); END",
                         "INSERT INTO u VALUES (1, 'one', x'01'), (2, 'two', NULL), (3, 'three', x'')",
                         "INSERT INTO uw VALUES ('x', 1, 'p'), ('y', 2, 'q')",
                         "INSERT INTO uc VALUES (1, 'c1'), (2, 'c2')",
                         NULL};
    txn(p, ddl);
    uint64_t start_lsn = p->lsn;
    struct txl_checksum start;
    sums(p->a, &start);
    p->keep = 1;
    const char *w1[] = {"UPDATE u SET v = upper(v), id = id + 10", "INSERT INTO u VALUES (4, 'four', randomblob(5))",
                        "UPDATE uw SET b = b + 100, v = NULL WHERE a = 'x'", "INSERT INTO ua(v) VALUES ('n')", NULL};
    txn(p, w1);
    const char *w2[] = {"DELETE FROM u WHERE id = 11", "DELETE FROM uw WHERE a = 'y'",
                        "INSERT INTO uw VALUES ('z', 3, 'r')", "UPDATE u SET id = 100 WHERE id = 4", NULL};
    txn(p, w2);
    auto1(p, "REPLACE INTO u VALUES (100, 'replaced', NULL)");
    p->keep = 0;
    assert_same(p);
    char err[400];
    for (size_t i = p->nkept; i-- > 0;) {
        uint64_t prev = i ? p->kept[i - 1].lsn : start_lsn;
        if (txl_undo(p->a, &p->kept[i], prev, err, sizeof err))
            fail_msg("undo %zu: %s", i, err);
        if (txl_undo(p->b, &p->kept[i], prev, err, sizeof err))
            fail_msg("undo on B %zu: %s", i, err);
    }
    assert_int_equal(txl_capture_count(p->cap), 0); /* undo on A was not captured */
    struct txl_checksum now;
    sums(p->a, &now);
    assert_string_equal(start.hex, now.hex);
    txl_checksum_free(&now);
    sums(p->b, &now);
    assert_string_equal(start.hex, now.hex);
    uint64_t lsn;
    assert_int_equal(txl_applied_lsn(p->a, &lsn, err, sizeof err), 0);
    assert_true(lsn == start_lsn);
    txl_checksum_free(&now);
    txl_checksum_free(&start);
    /* records with DDL cannot be undone; decoded records lack old values */
    p->keep = 1;
    auto1(p, "CREATE TABLE later(x)");
    assert_int_equal(txl_undo(p->a, &p->kept[p->nkept - 1], 0, err, sizeof err), -1);
    assert_non_null(strstr(err, "DDL"));
    pair_free(p);
}

static void test_capture_oom(void **state)
{
    (void)state;
    for (long n = 1; n < 60; n++) {
        struct pair *p = pair_new();
        auto1(p, "CREATE TABLE o(id INTEGER PRIMARY KEY, v TEXT)");
        auto1(p, "CREATE TABLE ow(k PRIMARY KEY, v) WITHOUT ROWID");
        begin(p);
        util_fail_after(n);
        txl_capture_stmt_begin(p->cap);
        exec_ok(p->a, "INSERT INTO o VALUES (1, 'a'), (2, 'b'), (3, 'c')");
        int rc1 = txl_capture_stmt_end(p->cap, 1);
        txl_capture_stmt_begin(p->cap);
        exec_ok(p->a, "INSERT INTO ow VALUES ('k', 'v')");
        exec_ok(p->a, "UPDATE ow SET k = 'k2'");
        int rc2 = txl_capture_stmt_end(p->cap, 1);
        int rc3 = txl_capture_savepoint(p->cap, "x");
        struct txl_record r;
        char err[300];
        int rc = txl_capture_take(p->cap, &r, err, sizeof err);
        util_fail_after(0);
        if (rc == 0) {
            assert_int_equal(rc1 | rc2 | rc3, 0);
            assert_int_equal(r.nchanges, 5);
            txl_record_free(&r);
            exec_ok(p->a, "COMMIT");
            pair_free(p);
            return;
        }
        assert_non_null(strstr(err, "out of memory"));
        exec_ok(p->a, "ROLLBACK");
        pair_free(p);
    }
    fail_msg("never succeeded");
}

/* _orbit_applied's committed flag: a database made before the column reads
 * as not known committed and gains the column on the next write; records
 * applied from the log are committed, a leader's own commits are not until
 * marked, and a mark for another LSN changes nothing. */
static void test_applied_committed(void **state)
{
    (void)state;
    char err[256];
    uint64_t lsn = 99;
    int committed = 9;
    sqlite3 *db = open_db();
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 0 && committed == 0); /* no table yet */
    exec_ok(db, "CREATE TABLE _orbit_applied(id INTEGER PRIMARY KEY CHECK (id = 1), lsn INTEGER NOT NULL);"
                "INSERT INTO _orbit_applied VALUES (1, 7)");
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 7 && committed == 0);
    assert_int_equal(txl_set_applied_lsn(db, 8, err, sizeof err), 0); /* adds the column */
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 8 && committed == 0);
    assert_int_equal(txl_mark_committed(db, 7, err, sizeof err), 0); /* not the applied LSN */
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 8 && committed == 0);
    assert_int_equal(txl_mark_committed(db, 8, err, sizeof err), 0);
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 8 && committed == 1);
    /* applied from the log: committed; a leader's own commit: not */
    exec_ok(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, v)");
    struct txl_value v[2] = {{.type = TXL_INTEGER, .i = 1}, {.type = TXL_TEXT, .p = (const unsigned char *)"x", .n = 1}};
    struct txl_change ch = {.op = TXL_INSERT, .table = "t", .new_rowid = 1, .ncol = 2, .newv = v};
    struct txl_record r = {.lsn = 9, .changes = &ch, .nchanges = 1};
    assert_int_equal(txl_set_applied_lsn(db, 8, err, sizeof err), 0);
    assert_int_equal(txl_apply(db, &r, err, sizeof err), 0);
    assert_int_equal(txl_applied_state(db, &lsn, &committed, err, sizeof err), 0);
    assert_true(lsn == 9 && committed == 1);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc32c),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_compressed),
        cmocka_unit_test(test_oom),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_classify),
        cmocka_unit_test(test_rowid_tables),
        cmocka_unit_test(test_without_rowid),
        cmocka_unit_test(test_no_primary_key),
        cmocka_unit_test(test_key_changes),
        cmocka_unit_test(test_autoincrement),
        cmocka_unit_test(test_triggers),
        cmocka_unit_test(test_cascade),
        cmocka_unit_test(test_alter_table),
        cmocka_unit_test(test_ctas),
        cmocka_unit_test(test_index_view),
        cmocka_unit_test(test_values),
        cmocka_unit_test(test_savepoints),
        cmocka_unit_test(test_failed_statement),
        cmocka_unit_test(test_nondeterministic),
        cmocka_unit_test(test_big_transaction),
        cmocka_unit_test(test_generated_columns),
        cmocka_unit_test(test_fts5),
        cmocka_unit_test(test_names_and_schema_churn),
        cmocka_unit_test(test_undetected_ddl),
        cmocka_unit_test(test_apply_rules),
        cmocka_unit_test(test_apply_batch),
        cmocka_unit_test(test_apply_batch_busy),
        cmocka_unit_test(test_undo),
        cmocka_unit_test(test_applied_committed),
        cmocka_unit_test(test_capture_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
