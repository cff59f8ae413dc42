/* Unit tests for sql/sqlstate.c and sql/types.c: SQLSTATEs of real SQLite
 * errors, declared type mapping, DataRow field encoding (text and binary,
 * float formatting), Bind parameter decoding, against in-memory DBs, and
 * the binary numeric and date/time formats (sql/binfmt.c). */
#include "unit.h"
#include "sql.h"
#include "sql_int.h"

#include <math.h>
#include <stdlib.h>

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_extended_result_codes(db, 1);
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

/* ---- SQLSTATE mapping ---------------------------------------------------- */

struct state_case {
    const char *setup; /* run first, must succeed (may be NULL) */
    const char *sql;   /* must fail */
    const char *state;
};

static const char *schema = "CREATE TABLE t(a INTEGER PRIMARY KEY, b TEXT UNIQUE NOT NULL, c INT CHECK (c > 0));"
                            "INSERT INTO t VALUES (1, 'x', 1);"
                            "CREATE TABLE p(id INTEGER PRIMARY KEY);"
                            "CREATE TABLE ch(pid INT REFERENCES p(id));"
                            "CREATE TABLE s(a INTEGER) STRICT;"
                            "CREATE INDEX t_c ON t(c);"
                            "CREATE TRIGGER trg BEFORE INSERT ON p WHEN new.id = 99 "
                            "BEGIN SELECT RAISE(ABORT, 'no 99'); END;"
                            "CREATE VIEW v AS SELECT a FROM t;"
                            "PRAGMA foreign_keys = ON;";

static const struct state_case state_cases[] = {
    {NULL, "INSERT INTO t VALUES (1, 'y', 1)", "23505"},
    {NULL, "INSERT INTO t VALUES (2, 'x', 1)", "23505"},
    {NULL, "INSERT INTO t VALUES (3, NULL, 1)", "23502"},
    {NULL, "INSERT INTO t VALUES (4, 'z', 0)", "23514"},
    {NULL, "INSERT INTO ch VALUES (5)", "23503"},
    {NULL, "INSERT INTO p VALUES (99)", "23000"},
    {NULL, "INSERT INTO s VALUES ('abc')", "22P02"},
    {NULL, "INSERT INTO t VALUES ('notanint', 'q', 1)", "42804"},
    {NULL, "SELEC 1", "42601"},
    {NULL, "SELECT 'abc", "42601"},
    {NULL, "SELECT (1", "42601"},
    {NULL, "SELECT 1 FROM", "42601"},
    {NULL, "SELECT * FROM nope", "42P01"},
    {NULL, "DROP VIEW nope", "42P01"},
    {NULL, "SELECT nope FROM t", "42703"},
    {NULL, "INSERT INTO t(zz) VALUES (1)", "42703"},
    {NULL, "CREATE TABLE t(x)", "42P07"},
    {NULL, "CREATE INDEX t_c ON t(c)", "42P07"},
    {NULL, "CREATE VIEW v AS SELECT 1", "42P07"},
    {NULL, "CREATE TRIGGER trg AFTER INSERT ON t BEGIN SELECT 1; END", "42710"},
    {NULL, "ALTER TABLE t ADD COLUMN b INT", "42701"},
    {NULL, "SELECT nofunc(1)", "42883"},
    {NULL, "SELECT abs(1, 2)", "42883"},
    {NULL, "DROP INDEX nope", "42704"},
    {NULL, "DROP TRIGGER nope", "42704"},
    {NULL, "SELECT b FROM t ORDER BY b COLLATE nope", "42704"},
    {NULL, "SELECT a FROM t, t AS t2", "42702"},
    {"BEGIN", "BEGIN", "25001"},
    {NULL, "COMMIT", "25P01"},
    {NULL, "ROLLBACK", "25P01"},
    {NULL, "RELEASE nope", "3B001"},
    {NULL, "SELECT sum(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1)", "22003"},
    {NULL, "SELECT 1 UNION SELECT 1, 2", "42601"},
    {NULL, "INSERT INTO t VALUES (1)", "42601"},
    {NULL, "INSERT INTO t(a, b) VALUES (1)", "42601"},
    {NULL, "SELECT * FROM t ORDER BY 5", "42P10"},
    {NULL, "SELECT count(*) FROM t GROUP BY count(*)", "42803"},
    {NULL, "SELECT a FROM t WHERE count(*) > 1", "42803"},
    {NULL, "CREATE TABLE sqlite_x(a)", "42939"},
    {NULL, "DELETE FROM v", "42809"},
    {NULL, "SELECT * FROM nope.t", "42P01"},
    {"PRAGMA query_only = 1", "INSERT INTO p VALUES (7)", "25006"},
};

static void test_sqlstate_real_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ARRAY_LEN(state_cases); i++) {
        const struct state_case *c = &state_cases[i];
        sqlite3 *db = open_db();
        exec_ok(db, schema);
        if (c->setup)
            exec_ok(db, c->setup);
        int rc = sqlite3_exec(db, c->sql, NULL, NULL, NULL);
        if (rc == SQLITE_OK)
            fail_msg("expected an error from: %s", c->sql);
        int ext = sqlite3_extended_errcode(db);
        const char *got = sql_sqlstate(ext, sqlite3_errmsg(db));
        if (strcmp(got, c->state) != 0)
            fail_msg("%s: got %s want %s (code %d: %s)", c->sql, got, c->state, ext, sqlite3_errmsg(db));
        sqlite3_close(db);
    }
}

static int deny_all(void *arg, int op, const char *a, const char *b, const char *c, const char *d)
{
    return op == SQLITE_DELETE ? SQLITE_DENY : SQLITE_OK;
}

static int interrupt_now(void *arg)
{
    return 1;
}

static const char *state_of(sqlite3 *db, const char *sql)
{
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    assert_int_not_equal(rc, SQLITE_OK);
    return sql_sqlstate(sqlite3_extended_errcode(db), sqlite3_errmsg(db));
}

static void test_sqlstate_other_codes(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, "CREATE TABLE x(a)");
    sqlite3_set_authorizer(db, deny_all, NULL);
    assert_string_equal(state_of(db, "DELETE FROM x"), "42501");
    sqlite3_set_authorizer(db, NULL, NULL);

    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 100);
    assert_string_equal(state_of(db, "SELECT zeroblob(1000)"), "54000");
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 1000000);

    sqlite3_progress_handler(db, 1, interrupt_now, NULL);
    assert_string_equal(state_of(db, "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) "
                                     "SELECT count(*) FROM r"),
                         "57014");
    sqlite3_progress_handler(db, 0, NULL, NULL);

    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?", -1, &st, NULL), SQLITE_OK);
    int rc = sqlite3_bind_int(st, 2, 1);
    assert_string_equal(sql_sqlstate(rc, sqlite3_errmsg(db)), "08P01");
    sqlite3_finalize(st);
    sqlite3_close(db);

    static const struct {
        int code;
        const char *msg;
        const char *state;
    } direct[] = {
        {SQLITE_BUSY, "database is locked", "40001"},
        {SQLITE_BUSY_SNAPSHOT, NULL, "40001"},
        {SQLITE_BUSY_TIMEOUT, NULL, "40001"},
        {SQLITE_LOCKED, NULL, "55P03"},
        {SQLITE_LOCKED_SHAREDCACHE, NULL, "55P03"},
        {SQLITE_READONLY_DBMOVED, NULL, "25006"},
        {SQLITE_INTERRUPT, NULL, "57014"},
        {SQLITE_TOOBIG, NULL, "54000"},
        {SQLITE_FULL, NULL, "53100"},
        {SQLITE_IOERR, NULL, "58030"},
        {SQLITE_IOERR_FSYNC, NULL, "58030"},
        {SQLITE_IOERR_NOMEM, NULL, "53200"},
        {SQLITE_NOMEM, NULL, "53200"},
        {SQLITE_MISMATCH, "datatype mismatch", "42804"},
        {SQLITE_RANGE, NULL, "08P01"},
        {SQLITE_AUTH, "not authorized", "42501"},
        {SQLITE_CORRUPT, NULL, "XX001"},
        {SQLITE_CORRUPT_INDEX, NULL, "XX001"},
        {SQLITE_CANTOPEN, NULL, "58030"},
        {SQLITE_CONSTRAINT, "constraint failed", "23000"},
        {SQLITE_CONSTRAINT_ROWID, NULL, "23505"},
        {SQLITE_CONSTRAINT_FUNCTION, NULL, "23000"},
        {SQLITE_INTERNAL, NULL, "XX000"},
        {SQLITE_MISUSE, NULL, "XX000"},
        {SQLITE_ERROR, NULL, "42000"},
        {SQLITE_ERROR, "something unheard of", "42000"},
        {SQLITE_ERROR, "error in view w: no such table: main.gone", "42P01"},
        {SQLITE_ERROR, "division by zero", "22012"},
        {SQLITE_ERROR, "datatype mismatch", "42804"},
        {SQLITE_ERROR, "not authorized", "42501"},
        {SQLITE_ERROR, "too many columns on t", "54011"},
        {SQLITE_ERROR, "too many terms in compound SELECT", "54011"},
        {SQLITE_ERROR, "cannot commit - no transaction is active", "25P01"},
        {SQLITE_ERROR, "cannot start a transaction within a transaction", "25001"},
        {SQLITE_ERROR, "NEAR \"x\": SYNTAX ERROR", "42601"},
        {SQLITE_OK, NULL, "00000"},
        {12345, NULL, "XX000"},
    };
    for (size_t i = 0; i < ARRAY_LEN(direct); i++) {
        const char *got = sql_sqlstate(direct[i].code, direct[i].msg);
        if (strcmp(got, direct[i].state) != 0)
            fail_msg("code %d msg %s: got %s want %s", direct[i].code, direct[i].msg ? direct[i].msg : "-", got,
                     direct[i].state);
    }
}

/* ---- declared types --------------------------------------------------------- */

static void test_decltype(void **state)
{
    (void)state;
    static const struct {
        const char *decl;
        uint32_t oid;
    } cases[] = {
        {NULL, 0},
        {"", 0},
        {"BIGINT", SQL_OID_INT8},
        {"int8", SQL_OID_INT8},
        {"smallint", SQL_OID_INT2},
        {"INT2", SQL_OID_INT2},
        {"int", SQL_OID_INT4},
        {"INTEGER", SQL_OID_INT4},
        {"int4", SQL_OID_INT4},
        {"tinyint", SQL_OID_INT8},
        {"UNSIGNED BIG INT", SQL_OID_INT8},
        {"mediumint(9)", SQL_OID_INT8},
        {"real", SQL_OID_FLOAT8},
        {"double", SQL_OID_FLOAT8},
        {"DOUBLE   PRECISION", SQL_OID_FLOAT8},
        {"float", SQL_OID_FLOAT8},
        {"float(24)", SQL_OID_FLOAT8},
        {"float8", SQL_OID_FLOAT8},
        {"FLOAT4", SQL_OID_FLOAT4},
        {"text", SQL_OID_TEXT},
        {"CLOB", SQL_OID_TEXT},
        {"varchar(20)", SQL_OID_VARCHAR},
        {"character varying (255)", SQL_OID_VARCHAR},
        {"NVARCHAR(10)", SQL_OID_VARCHAR},
        {"char(3)", SQL_OID_BPCHAR},
        {"character", SQL_OID_BPCHAR},
        {"bpchar", SQL_OID_BPCHAR},
        {"nchar(5)", SQL_OID_BPCHAR},
        {"blob", SQL_OID_BYTEA},
        {"BYTEA", SQL_OID_BYTEA},
        {"bool", SQL_OID_BOOL},
        {"Boolean", SQL_OID_BOOL},
        {"numeric", SQL_OID_NUMERIC},
        {"NUMERIC(10, 2)", SQL_OID_NUMERIC},
        {"decimal(5)", SQL_OID_NUMERIC},
        {"timestamptz", SQL_OID_TIMESTAMPTZ},
        {"timestamp with time zone", SQL_OID_TIMESTAMPTZ},
        {"TIMESTAMP(3) WITH TIME ZONE", SQL_OID_TIMESTAMPTZ},
        {"timestamp", SQL_OID_TIMESTAMP},
        {"timestamp without time zone", SQL_OID_TIMESTAMP},
        {"date", SQL_OID_DATE},
        {"time", SQL_OID_TIME},
        {"json", SQL_OID_JSON},
        {"JSONB", SQL_OID_JSONB},
        {"oid", SQL_OID_OID},
        {"uuid", SQL_OID_UUID},
        {"UUID", SQL_OID_UUID},
        {"interval", SQL_OID_TEXT},
        {"int[]", SQL_OID_TEXT},
        {"something strange", SQL_OID_TEXT},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        uint32_t got = sql_decltype_oid(cases[i].decl);
        if (got != cases[i].oid)
            fail_msg("%s: got %u want %u", cases[i].decl ? cases[i].decl : "NULL", got, cases[i].oid);
    }
    assert_int_equal(sql_value_oid(SQLITE_INTEGER), SQL_OID_INT8);
    assert_int_equal(sql_value_oid(SQLITE_FLOAT), SQL_OID_FLOAT8);
    assert_int_equal(sql_value_oid(SQLITE_TEXT), SQL_OID_TEXT);
    assert_int_equal(sql_value_oid(SQLITE_NULL), SQL_OID_TEXT);
    assert_int_equal(sql_value_oid(SQLITE_BLOB), SQL_OID_BYTEA);

    assert_int_equal(sql_oid_typlen(SQL_OID_BOOL), 1);
    assert_int_equal(sql_oid_typlen(SQL_OID_INT2), 2);
    assert_int_equal(sql_oid_typlen(SQL_OID_INT4), 4);
    assert_int_equal(sql_oid_typlen(SQL_OID_INT8), 8);
    assert_int_equal(sql_oid_typlen(SQL_OID_FLOAT4), 4);
    assert_int_equal(sql_oid_typlen(SQL_OID_FLOAT8), 8);
    assert_int_equal(sql_oid_typlen(SQL_OID_DATE), 4);
    assert_int_equal(sql_oid_typlen(SQL_OID_TIME), 8);
    assert_int_equal(sql_oid_typlen(SQL_OID_TIMESTAMP), 8);
    assert_int_equal(sql_oid_typlen(SQL_OID_TIMESTAMPTZ), 8);
    assert_int_equal(sql_oid_typlen(SQL_OID_OID), 4);
    assert_int_equal(sql_oid_typlen(SQL_OID_NAME), 64);
    assert_int_equal(sql_oid_typlen(SQL_OID_TEXT), -1);
    assert_int_equal(sql_oid_typlen(SQL_OID_NUMERIC), -1);
    assert_int_equal(sql_oid_typlen(SQL_OID_UNKNOWN), -1);
    assert_int_equal(sql_oid_typlen(99999), -1);
    assert_string_equal(sql_oid_name(SQL_OID_INT8), "int8");
    assert_string_equal(sql_oid_name(SQL_OID_TIMESTAMPTZ), "timestamptz");
    assert_string_equal(sql_oid_name(SQL_OID_JSONB), "jsonb");
    assert_string_equal(sql_oid_name(424242), "unknown");
}

/* ---- field encoding -------------------------------------------------------- */

static sqlite3_stmt *row_of(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return st;
}

static sqlite3_stmt *row_of_double(sqlite3 *db, double v)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_bind_double(st, 1, v), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    return st;
}

/* Encode column 0 and compare with the expected bytes (explen -1: NULL). */
static void expect_field(sqlite3_stmt *st, uint32_t oid, int fmt, const char *exp, int explen)
{
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "pre");
    char ss[6] = "", err[128] = "";
    if (sql_put_field(&b, st, 0, oid, fmt, ss, err, sizeof err) != 0)
        fail_msg("%s oid %u fmt %d: error %s %s", sqlite3_sql(st), oid, fmt, ss, err);
    assert_true(buf_ok(&b));
    assert_memory_equal(b.data, "pre", 3);
    int32_t len = (int32_t)util_get_u32(b.data + 3);
    if (explen < 0)
        explen = exp ? (int)strlen(exp) : -1;
    if (len != explen || (len > 0 && memcmp(b.data + 7, exp, (size_t)len) != 0))
        fail_msg("%s oid %u fmt %d: got %d '%.*s' want %d '%s'", sqlite3_sql(st), oid, fmt, len,
                 len > 0 ? len : 0, b.data + 7, explen, exp ? exp : "NULL");
    assert_int_equal(b.len, 7 + (len > 0 ? (size_t)len : 0));
    buf_free(&b);
}

static void expect_text(sqlite3 *db, const char *sql, uint32_t oid, const char *exp)
{
    sqlite3_stmt *st = row_of(db, sql);
    expect_field(st, oid, 0, exp, -1);
    sqlite3_finalize(st);
}

static void expect_bin(sqlite3 *db, const char *sql, uint32_t oid, const char *exp, int explen)
{
    sqlite3_stmt *st = row_of(db, sql);
    expect_field(st, oid, 1, exp, explen);
    sqlite3_finalize(st);
}

static void expect_field_error(sqlite3 *db, const char *sql, uint32_t oid, int fmt, const char *state,
                               const char *msg)
{
    sqlite3_stmt *st = row_of(db, sql);
    struct buf b;
    buf_init(&b);
    buf_puts(&b, "pre");
    char ss[6] = "", err[128] = "";
    assert_int_equal(sql_put_field(&b, st, 0, oid, fmt, ss, err, sizeof err), -1);
    assert_string_equal(ss, state);
    if (msg)
        assert_string_equal(err, msg);
    assert_int_equal(b.len, 3); /* nothing half-written */
    buf_free(&b);
    sqlite3_finalize(st);
}

static void expect_double_text(sqlite3 *db, double v, uint32_t oid, const char *exp)
{
    sqlite3_stmt *st = row_of_double(db, v);
    expect_field(st, oid, 0, exp, -1);
    sqlite3_finalize(st);
}

static void test_field_text(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    expect_text(db, "SELECT NULL", SQL_OID_TEXT, NULL);
    expect_text(db, "SELECT NULL", SQL_OID_INT4, NULL);
    expect_text(db, "SELECT 42", SQL_OID_INT8, "42");
    expect_text(db, "SELECT -9223372036854775807 - 1", SQL_OID_INT8, "-9223372036854775808");
    expect_text(db, "SELECT 7", SQL_OID_FLOAT8, "7");
    expect_text(db, "SELECT 42", SQL_OID_NUMERIC, "42");
    expect_text(db, "SELECT 1.5", SQL_OID_NUMERIC, "1.5");
    expect_text(db, "SELECT 1e20", SQL_OID_NUMERIC, "100000000000000000000");
    expect_text(db, "SELECT 1e-7", SQL_OID_NUMERIC, "0.0000001");
    expect_text(db, "SELECT 'hello'", SQL_OID_TEXT, "hello");
    expect_text(db, "SELECT 'h\xc3\xa9llo'", SQL_OID_VARCHAR, "h\xc3\xa9llo");
    expect_text(db, "SELECT ''", SQL_OID_TEXT, "");
    expect_text(db, "SELECT '2024-01-02'", SQL_OID_DATE, "2024-01-02");
    /* bool */
    expect_text(db, "SELECT 1", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT 0", SQL_OID_BOOL, "f");
    expect_text(db, "SELECT -5", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT 2.5", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT 'yes'", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT 'TRUE'", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT ' on '", SQL_OID_BOOL, "t");
    expect_text(db, "SELECT 'OFF'", SQL_OID_BOOL, "f");
    expect_text(db, "SELECT 'n'", SQL_OID_BOOL, "f");
    expect_text(db, "SELECT '0'", SQL_OID_BOOL, "f");
    expect_text(db, "SELECT 'maybe'", SQL_OID_BOOL, "maybe");
    /* bytea and blobs */
    expect_text(db, "SELECT x'00ff10'", SQL_OID_BYTEA, "\\x00ff10");
    expect_text(db, "SELECT x''", SQL_OID_BYTEA, "\\x");
    expect_text(db, "SELECT 'ab'", SQL_OID_BYTEA, "\\x6162");
    expect_text(db, "SELECT 12", SQL_OID_BYTEA, "\\x3132");
    sqlite3_stmt *st = row_of(db, "SELECT x'610062'");
    expect_field(st, SQL_OID_TEXT, 0, "a\0b", 3);
    sqlite3_finalize(st);
    st = row_of(db, "SELECT x''");
    expect_field(st, SQL_OID_TEXT, 0, "", 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_field_floats(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    static const struct {
        double v;
        const char *f8;
    } cases[] = {
        {0.1, "0.1"},
        {1e300, "1e+300"},
        {1.0, "1"},
        {-0.0, "-0"},
        {0.0, "0"},
        {3.14159, "3.14159"},
        {-2.5, "-2.5"},
        {100.0, "100"},
        {1e15, "1e+15"},
        {123456789012345.0, "123456789012345"},
        {1e-4, "0.0001"},
        {1.5e-5, "1.5e-05"},
        {1.0 / 3.0, "0.3333333333333333"},
        {0.1 + 0.2, "0.30000000000000004"},
        {2.0 / 3.0, "0.6666666666666666"},
        {1e22, "1e+22"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
        {5e-324, "5e-324"},
        {2.2250738585072014e-308, "2.2250738585072014e-308"},
        {123.456, "123.456"},
        {-1e-10, "-1e-10"},
        {9007199254740993.0, "9.007199254740992e+15"},
        {INFINITY, "Infinity"},
        {-INFINITY, "-Infinity"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        expect_double_text(db, cases[i].v, SQL_OID_FLOAT8, cases[i].f8);

    static const struct {
        double v;
        const char *f4;
    } f4[] = {
        {0.1, "0.1"},
        {3.14159, "3.14159"},
        {1.1, "1.1"},
        {100000.0, "100000"},
        {1e6, "1e+06"},
        {16777217.0, "1.6777216e+07"},
        {1.0 / 3.0, "0.33333334"},
        {1e-5, "1e-05"},
        {-0.0, "-0"},
        {1e300, "Infinity"},
    };
    for (size_t i = 0; i < ARRAY_LEN(f4); i++)
        expect_double_text(db, f4[i].v, SQL_OID_FLOAT4, f4[i].f4);
    /* a REAL with no particular column type still prints PostgreSQL-style */
    expect_double_text(db, 2.0, SQL_OID_TEXT, "2");
    char tiny[320] = "0.";
    for (int i = 0; i < 299; i++)
        strcat(tiny, "0");
    strcat(tiny, "1");
    expect_double_text(db, 1e-300, SQL_OID_NUMERIC, tiny);

    struct buf b;
    buf_init(&b);
    sql_format_double(&b, NAN, SQL_FLOAT8);
    sql_format_double(&b, NAN, SQL_FLOAT4);
    sql_format_double(&b, -INFINITY, SQL_NUMERIC);
    buf_putc(&b, 0);
    assert_string_equal(b.data, "NaNNaN-Infinity");
    buf_free(&b);
    sqlite3_close(db);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Every finite double and float reads back exactly. */
static void test_float_roundtrip(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 50000; i++) {
        uint64_t bits = rng();
        double v;
        memcpy(&v, &bits, 8);
        if (!isfinite(v))
            continue;
        buf_reset(&b);
        sql_format_double(&b, v, SQL_FLOAT8);
        buf_putc(&b, 0);
        assert_true(buf_ok(&b));
        double back = strtod(b.data, NULL);
        if (memcmp(&back, &v, 8) != 0)
            fail_msg("%.17g printed as %s", v, b.data);

        if (i % 10 == 0) { /* no shorter decimal reads back either */
            int p = 1;
            char e[40];
            for (; p < 17; p++) {
                snprintf(e, sizeof e, "%.*e", p - 1, v);
                if (strtod(e, NULL) == v)
                    break;
            }
            int nd = 0;
            for (const char *q = b.data; *q && *q != 'e'; q++)
                nd += *q >= '0' && *q <= '9';
            const char *q = b.data + (b.data[0] == '-');
            while (*q == '0' || *q == '.') /* leading zeros of 0.000ddd */
                q++, nd -= q[-1] == '0';
            if (nd > p && !strchr(b.data, 'e') && strchr(b.data, '.') == NULL)
                nd = p; /* integer forms pad with zeros: 4277834443099750 */
            if (nd > p)
                fail_msg("%s has more than %d digits", b.data, p);
        }
        float f = (float)v;
        if (!isfinite(f))
            continue;
        buf_reset(&b);
        sql_format_double(&b, f, SQL_FLOAT4);
        buf_putc(&b, 0);
        float fb = strtof(b.data, NULL);
        if (memcmp(&fb, &f, 4) != 0)
            fail_msg("float %.9g printed as %s", (double)f, b.data);
    }
    /* short values stay short */
    for (int i = 1; i < 2000; i++) {
        char want[32];
        snprintf(want, sizeof want, "%d.%d", i, i % 97);
        double v = strtod(want, NULL);
        buf_reset(&b);
        sql_format_double(&b, v, SQL_FLOAT8);
        buf_putc(&b, 0);
        /* forms like 5.10 print shorter, as 5.1 */
        if (strtod(b.data, NULL) != v || strlen(b.data) > strlen(want))
            fail_msg("%s printed as %s", want, b.data);
    }
    buf_free(&b);
}

static void test_field_binary(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    expect_bin(db, "SELECT NULL", SQL_OID_INT4, NULL, -1);
    expect_bin(db, "SELECT 1", SQL_OID_BOOL, "\x01", 1);
    expect_bin(db, "SELECT 0", SQL_OID_BOOL, "\x00", 1);
    expect_bin(db, "SELECT 'f'", SQL_OID_BOOL, "\x00", 1);
    expect_bin(db, "SELECT 'Yes'", SQL_OID_BOOL, "\x01", 1);
    expect_field_error(db, "SELECT 'maybe'", SQL_OID_BOOL, 1, "22P02",
                       "invalid input syntax for type boolean: \"maybe\"");
    expect_bin(db, "SELECT 5", SQL_OID_INT2, "\x00\x05", 2);
    expect_bin(db, "SELECT -2", SQL_OID_INT2, "\xff\xfe", 2);
    expect_field_error(db, "SELECT 40000", SQL_OID_INT2, 1, "22003", "value out of range for type int2");
    expect_bin(db, "SELECT -2", SQL_OID_INT4, "\xff\xff\xff\xfe", 4);
    expect_bin(db, "SELECT 2147483647", SQL_OID_INT4, "\x7f\xff\xff\xff", 4);
    expect_field_error(db, "SELECT 2147483648", SQL_OID_INT4, 1, "22003", "value out of range for type int4");
    expect_bin(db, "SELECT ' 42 '", SQL_OID_INT4, "\x00\x00\x00\x2a", 4);
    expect_bin(db, "SELECT 1.6", SQL_OID_INT4, "\x00\x00\x00\x02", 4);
    expect_field_error(db, "SELECT 'abc'", SQL_OID_INT4, 1, "22P02", "invalid input syntax for type integer: \"abc\"");
    expect_field_error(db, "SELECT x'01'", SQL_OID_INT8, 1, "22P02", NULL);
    expect_field_error(db, "SELECT 1e30", SQL_OID_INT8, 1, "22003", NULL);
    expect_bin(db, "SELECT 1099511627776", SQL_OID_INT8, "\x00\x00\x01\x00\x00\x00\x00\x00", 8);
    expect_bin(db, "SELECT -1", SQL_OID_INT8, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    expect_bin(db, "SELECT 4294967295", SQL_OID_OID, "\xff\xff\xff\xff", 4);
    expect_field_error(db, "SELECT -1", SQL_OID_OID, 1, "22003", NULL);
    expect_bin(db, "SELECT 1.5", SQL_OID_FLOAT8, "\x3f\xf8\x00\x00\x00\x00\x00\x00", 8);
    expect_bin(db, "SELECT 2", SQL_OID_FLOAT8, "\x40\x00\x00\x00\x00\x00\x00\x00", 8);
    expect_bin(db, "SELECT 'Infinity'", SQL_OID_FLOAT8, "\x7f\xf0\x00\x00\x00\x00\x00\x00", 8);
    expect_field_error(db, "SELECT 'x1'", SQL_OID_FLOAT8, 1, "22P02",
                       "invalid input syntax for type double precision: \"x1\"");
    expect_bin(db, "SELECT 1.5", SQL_OID_FLOAT4, "\x3f\xc0\x00\x00", 4);
    expect_bin(db, "SELECT -2", SQL_OID_FLOAT4, "\xc0\x00\x00\x00", 4);
    expect_bin(db, "SELECT 'abc'", SQL_OID_TEXT, "abc", 3);
    expect_bin(db, "SELECT 'abc'", SQL_OID_VARCHAR, "abc", 3);
    expect_bin(db, "SELECT 'ab '", SQL_OID_BPCHAR, "ab ", 3);
    expect_bin(db, "SELECT 'pg_class'", SQL_OID_NAME, "pg_class", 8);
    expect_bin(db, "SELECT '{\"a\":1}'", SQL_OID_JSON, "{\"a\":1}", 7);
    expect_bin(db, "SELECT '{\"a\":1}'", SQL_OID_JSONB, "\x01{\"a\":1}", 8);
    expect_bin(db, "SELECT 'lit'", SQL_OID_UNKNOWN, "lit", 3);
    expect_bin(db, "SELECT 2.5", SQL_OID_TEXT, "2.5", 3);
    expect_bin(db, "SELECT x'0001ff'", SQL_OID_BYTEA, "\x00\x01\xff", 3);
    expect_bin(db, "SELECT 'ab'", SQL_OID_BYTEA, "ab", 2);
    expect_bin(db, "SELECT x''", SQL_OID_BYTEA, "", 0);
    /* numeric: ndigits, weight, sign, dscale, base-10000 digits */
    expect_bin(db, "SELECT 1.5", SQL_OID_NUMERIC, "\0\2\0\0\0\0\0\1\0\1\x13\x88", 12);
    expect_bin(db, "SELECT 42", SQL_OID_NUMERIC, "\0\1\0\0\0\0\0\0\0\x2a", 10);
    expect_bin(db, "SELECT '12345678.9'", SQL_OID_NUMERIC, "\0\3\0\1\0\0\0\1\x04\xd2\x16\x2e\x23\x28", 14);
    expect_bin(db, "SELECT '-0.001'", SQL_OID_NUMERIC, "\0\1\xff\xff\x40\0\0\3\0\x0a", 10);
    expect_bin(db, "SELECT 0", SQL_OID_NUMERIC, "\0\0\0\0\0\0\0\0", 8);
    expect_bin(db, "SELECT '0.00'", SQL_OID_NUMERIC, "\0\0\0\0\0\0\0\2", 8);
    expect_bin(db, "SELECT 'NaN'", SQL_OID_NUMERIC, "\0\0\0\0\xc0\0\0\0", 8);
    expect_bin(db, "SELECT 1e20", SQL_OID_NUMERIC, "\0\1\0\5\0\0\0\0\0\1", 10);
    expect_bin(db, "SELECT 10000", SQL_OID_NUMERIC, "\0\1\0\1\0\0\0\0\0\1", 10);
    /* as PostgreSQL 15 sends them */
    expect_bin(db, "SELECT '123456789012345678901234567890.123456789'", SQL_OID_NUMERIC, "\x00\x0b\x00\x07\x00\x00\x00\x09\x00\x0c\x0d\x80\x1e\xd2\x04\xd2\x16\x2e\x23\x34\x0d\x80\x1e\xd2\x04\xd2\x16\x2e\x23\x28", 30);
    expect_bin(db, "SELECT '0.0001'", SQL_OID_NUMERIC, "\x00\x01\xff\xff\x00\x00\x00\x04\x00\x01", 10);
    expect_bin(db, "SELECT '99990000'", SQL_OID_NUMERIC, "\x00\x01\x00\x01\x00\x00\x00\x00\x27\x0f", 10);
    expect_bin(db, "SELECT '-125'", SQL_OID_NUMERIC, "\x00\x01\x00\x00\x40\x00\x00\x00\x00\x7d", 10);
    expect_bin(db, "SELECT '1.50'", SQL_OID_NUMERIC, "\x00\x02\x00\x00\x00\x00\x00\x02\x00\x01\x13\x88", 12);
    expect_field_error(db, "SELECT 'abc'", SQL_OID_NUMERIC, 1, "22P02", "invalid input syntax for type numeric: \"abc\"");
    expect_field_error(db, "SELECT x'01'", SQL_OID_NUMERIC, 1, "22P02", NULL);
    expect_field_error(db, "SELECT '1e200000'", SQL_OID_NUMERIC, 1, "22003", NULL);
    /* date: days since 2000-01-01; time and timestamps: microseconds */
    expect_bin(db, "SELECT '2024-01-01'", SQL_OID_DATE, "\0\0\x22\x3e", 4);
    expect_bin(db, "SELECT '2000-01-01'", SQL_OID_DATE, "\0\0\0\0", 4);
    expect_bin(db, "SELECT '1999-12-31 23:00'", SQL_OID_DATE, "\xff\xff\xff\xff", 4);
    expect_bin(db, "SELECT 'infinity'", SQL_OID_DATE, "\x7f\xff\xff\xff", 4);
    expect_bin(db, "SELECT '10:00'", SQL_OID_TIME, "\0\0\0\x08\x61\xc4\x68\0", 8);
    expect_bin(db, "SELECT '2000-01-01 00:00:01.5'", SQL_OID_TIMESTAMP, "\0\0\0\0\0\x16\xe3\x60", 8);
    expect_bin(db, "SELECT '2000-01-01T00:00:01.5000004'", SQL_OID_TIMESTAMP, "\0\0\0\0\0\x16\xe3\x60", 8);
    expect_bin(db, "SELECT '2000-01-01 01:00:00+01'", SQL_OID_TIMESTAMPTZ, "\0\0\0\0\0\0\0\0", 8);
    expect_bin(db, "SELECT '2000-01-01 05:30:00+05:30'", SQL_OID_TIMESTAMPTZ, "\0\0\0\0\0\0\0\0", 8);
    expect_bin(db, "SELECT '2000-01-01 01:00:00+01'", SQL_OID_TIMESTAMP, "\0\0\0\0\xd6\x93\xa4\0", 8);
    expect_bin(db, "SELECT '1999-12-31 23:59:59.999999Z'", SQL_OID_TIMESTAMPTZ, "\xff\xff\xff\xff\xff\xff\xff\xff", 8);
    expect_bin(db, "SELECT '-infinity'", SQL_OID_TIMESTAMP, "\x80\0\0\0\0\0\0\0", 8);
    expect_field_error(db, "SELECT '2024-13-01'", SQL_OID_DATE, 1, "22007",
                       "invalid input syntax for type date: \"2024-13-01\"");
    expect_field_error(db, "SELECT '2023-02-29 10:00'", SQL_OID_TIMESTAMP, 1, "22007", NULL);
    expect_field_error(db, "SELECT '10:61'", SQL_OID_TIME, 1, "22007", NULL);
    expect_field_error(db, "SELECT 20240101", SQL_OID_DATE, 1, "22007", NULL);
    expect_field_error(db, "SELECT '2024-01-01 10:00 nowhere'", SQL_OID_TIMESTAMPTZ, 1, "22007", NULL);
    /* uuid: 16 bytes, from any text form PostgreSQL reads or a 16-byte blob */
    static const char u16[] = "\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11";
    expect_bin(db, "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", SQL_OID_UUID, u16, 16);
    expect_bin(db, "SELECT '{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}'", SQL_OID_UUID, u16, 16);
    expect_bin(db, "SELECT 'a0eebc999c0b4ef8bb6d6bb9bd380a11'", SQL_OID_UUID, u16, 16);
    expect_bin(db, "SELECT x'a0eebc999c0b4ef8bb6d6bb9bd380a11'", SQL_OID_UUID, u16, 16);
    expect_text(db, "SELECT x'a0eebc999c0b4ef8bb6d6bb9bd380a11'", SQL_OID_UUID, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11");
    expect_text(db, "SELECT 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", SQL_OID_UUID, "A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11");
    expect_field_error(db, "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1'", SQL_OID_UUID, 1, "22P02",
                       "invalid input syntax for type uuid: \"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1\"");
    expect_field_error(db, "SELECT 'a0eebc99--9c0b-4ef8-bb6d-6bb9bd380a11'", SQL_OID_UUID, 1, "22P02", NULL);
    expect_field_error(db, "SELECT 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11-'", SQL_OID_UUID, 1, "22P02", NULL);
    expect_field_error(db, "SELECT 'a0eeb-c999c0b4ef8bb6d6bb9bd380a11'", SQL_OID_UUID, 1, "22P02", NULL);
    expect_field_error(db, "SELECT 42", SQL_OID_UUID, 1, "22P02", NULL);
    sqlite3_close(db);
}

/* binary -> text -> binary gives the same bytes, and text -> binary ->
 * text the canonical text */
static void test_binfmt_roundtrip(void **state)
{
    (void)state;
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    static const char *nums[][2] = {
        {"0", "0"}, {"1.5", "1.5"}, {"-0.001", "-0.001"}, {"12345678.9", "12345678.9"}, {"1.50", "1.50"},
        {"0.00", "0.00"}, {"100000000000000000000", "100000000000000000000"}, {"1e3", "1000"},
        {"+007.10", "7.10"}, {"1.5e-3", "0.0015"}, {"-12.5E+1", "-125"}, {".5", "0.5"}, {"5.", "5"},
        {"123456789012345678901234567890.123456789", "123456789012345678901234567890.123456789"},
        {"NaN", "NaN"}, {"-Infinity", "-Infinity"}, {" 3 ", "3"}, {"0.0001", "0.0001"}, {"99990000", "99990000"},
    };
    for (size_t i = 0; i < ARRAY_LEN(nums); i++) {
        buf_reset(&a);
        buf_reset(&b);
        if (sql_numeric_to_binary(&a, nums[i][0], strlen(nums[i][0])))
            fail_msg("numeric %s rejected", nums[i][0]);
        assert_int_equal(sql_numeric_from_binary(a.data, a.len, &b), 0);
        if (b.len != strlen(nums[i][1]) || memcmp(b.data, nums[i][1], b.len))
            fail_msg("numeric %s came back as %.*s", nums[i][0], (int)b.len, b.data);
    }
    static const char *bad[] = {"", "-", "1e", "1.2.3", "e5", "1 2", "0x10", "Inf"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        if (sql_numeric_to_binary(&a, bad[i], strlen(bad[i])) != -1)
            fail_msg("numeric '%s' accepted", bad[i]);
    assert_int_equal(sql_numeric_from_binary("\0\1\0\0\0\0\0\0\x27\x10", 10, &b), -1); /* digit 10000 */
    assert_int_equal(sql_numeric_from_binary("\0\2\0\0\0\0\0\0\0\1", 10, &b), -2);     /* short: 08P01 */
    assert_int_equal(sql_numeric_from_binary("\0\0\0\0\x12\0\0\0", 8, &b), -1);             /* sign */

    /* every 997th day over +-2000 years, and times of day */
    for (long days = -800000; days <= 800000; days += 997) {
        static const long long usecs[] = {0, 1, 999999, 43200000000LL, 86399999999LL};
        char bin[8];
        for (int oid_i = 0; oid_i < 3; oid_i++) {
            uint32_t oid = oid_i == 0 ? SQL_OID_DATE : oid_i == 1 ? SQL_OID_TIMESTAMP : SQL_OID_TIMESTAMPTZ;
            for (size_t u = 0; u < (oid == SQL_OID_DATE ? 1 : ARRAY_LEN(usecs)); u++) {
                size_t len = oid == SQL_OID_DATE ? 4 : 8;
                if (oid == SQL_OID_DATE) {
                    uint32_t v = (uint32_t)(int32_t)days;
                    for (int k = 0; k < 4; k++)
                        bin[k] = (char)(v >> (24 - 8 * k));
                } else {
                    uint64_t v = (uint64_t)((long long)days * 86400000000LL + usecs[u]);
                    for (int k = 0; k < 8; k++)
                        bin[k] = (char)(v >> (56 - 8 * k));
                }
                buf_reset(&a);
                buf_reset(&b);
                assert_int_equal(sql_datetime_from_binary(oid, bin, len, &a), 0);
                if (sql_datetime_to_binary(&b, oid, a.data, a.len) || b.len != len || memcmp(b.data, bin, len))
                    fail_msg("oid %u day %ld: %.*s did not read back", oid, days, (int)a.len, a.data);
            }
        }
    }
    buf_reset(&a);
    assert_int_equal(sql_datetime_from_binary(SQL_OID_TIMESTAMPTZ, "\0\0\0\0\0\x16\xe3\x60", 8, &a), 0);
    assert_int_equal(a.len, strlen("2000-01-01 00:00:01.5+00"));
    assert_memory_equal(a.data, "2000-01-01 00:00:01.5+00", a.len);
    buf_reset(&a);
    assert_int_equal(sql_datetime_from_binary(SQL_OID_DATE, "\xff\xf4\xa1\x78", 4, &a), 0); /* -745096 */
    assert_int_equal(a.len, strlen("0042-12-31 BC"));
    assert_memory_equal(a.data, "0042-12-31 BC", a.len);
    assert_int_equal(sql_datetime_from_binary(SQL_OID_TIME, "\0\0\0\x14\x1d\xd7\x60\x01", 8, &a), -1);
    assert_int_equal(sql_datetime_from_binary(SQL_OID_DATE, "\0\0\0", 3, &a), -1);
    /* random bytes and text: no crash, and what decodes encodes again */
    uint32_t seed = 12345;
    static const char alphabet[] = "0123456789.-+eE :TZzBCUtcinfyNa";
    for (int round = 0; round < 20000; round++) {
        char data[40];
        size_t len = (size_t)(round % 40);
        for (size_t k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            data[k] = round & 1 ? (char)(seed >> 16) : alphabet[(seed >> 16) % (sizeof alphabet - 1)];
        }
        static const uint32_t oids[] = {SQL_OID_DATE, SQL_OID_TIME, SQL_OID_TIMESTAMP, SQL_OID_TIMESTAMPTZ};
        buf_reset(&a);
        buf_reset(&b);
        if (sql_numeric_from_binary(data, len, &a) == 0)
            assert_int_equal(sql_numeric_to_binary(&b, a.data, a.len), 0);
        buf_reset(&a);
        (void)sql_numeric_to_binary(&a, data, len);
        for (size_t k = 0; k < ARRAY_LEN(oids); k++) {
            buf_reset(&a);
            buf_reset(&b);
            if (sql_datetime_from_binary(oids[k], data, len, &a) == 0 && !(oids[k] == SQL_OID_TIME && a.len > 15))
                (void)sql_datetime_to_binary(&b, oids[k], a.data, a.len);
            buf_reset(&a);
            (void)sql_datetime_to_binary(&a, oids[k], data, len);
        }
        unsigned char u[16];
        (void)sql_uuid_parse(data, len, u);
    }
    buf_free(&a);
    buf_free(&b);
}

/* A real table: declared types drive the OIDs, values go through
 * column affinity first. */
static void test_field_table(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, "CREATE TABLE t(i INTEGER, b BOOLEAN, r REAL, f FLOAT4, n NUMERIC(10,2), s VARCHAR(10), "
                "y BYTEA, j JSONB);"
                "INSERT INTO t VALUES (7, 1, 0.1, 0.1, 12.5, 'x', x'cafe', '[1]');"
                "INSERT INTO t VALUES (NULL, 0, 1, 3, 3, NULL, 'hi', NULL);");
    sqlite3_stmt *st = row_of(db, "SELECT * FROM t ORDER BY rowid");
    static const char *want1[] = {"7", "t", "0.1", "0.1", "12.5", "x", "\\xcafe", "[1]"};
    static const char *want2[] = {"", "f", "1", "3", "3", NULL, "\\x6869", NULL};
    for (int row = 0; row < 2; row++) {
        struct buf b;
        buf_init(&b);
        for (int c = 0; c < sqlite3_column_count(st); c++) {
            uint32_t oid = sql_decltype_oid(sqlite3_column_decltype(st, c));
            if (row == 1 && c == 0) {
                assert_int_equal(sqlite3_column_type(st, c), SQLITE_NULL);
                continue;
            }
            const char *w = row ? want2[c] : want1[c];
            buf_reset(&b);
            char ss[6], err[100];
            assert_int_equal(sql_put_field(&b, st, c, oid, 0, ss, err, sizeof err), 0);
            int32_t len = (int32_t)util_get_u32(b.data);
            if (!w) {
                assert_int_equal(len, -1);
                continue;
            }
            if (len != (int32_t)strlen(w) || memcmp(b.data + 4, w, (size_t)len) != 0)
                fail_msg("row %d col %d: got '%.*s' want '%s'", row, c, len, b.data + 4, w);
        }
        buf_free(&b);
        int rc = sqlite3_step(st);
        assert_int_equal(rc, row == 0 ? SQLITE_ROW : SQLITE_DONE);
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
}

/* ---- parameter binding ------------------------------------------------------ */

struct bound {
    int type;
    int64_t i;
    double d;
    char text[64];
    int len;
};

static int bind_one(sqlite3 *db, uint32_t oid, int fmt, const char *data, int32_t len, struct bound *out,
                    char ss[6], char *err, size_t errcap)
{
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1", -1, &st, NULL), SQLITE_OK);
    if (len == -2)
        len = data ? (int32_t)strlen(data) : -1;
    int rc = sql_bind_param(st, 1, oid, fmt, data, len, ss, err, errcap);
    if (rc == 0) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        memset(out, 0, sizeof *out);
        out->type = sqlite3_column_type(st, 0);
        if (out->type == SQLITE_INTEGER)
            out->i = sqlite3_column_int64(st, 0);
        else if (out->type == SQLITE_FLOAT)
            out->d = sqlite3_column_double(st, 0);
        else if (out->type != SQLITE_NULL) {
            const void *p = out->type == SQLITE_BLOB ? sqlite3_column_blob(st, 0) : sqlite3_column_text(st, 0);
            out->len = sqlite3_column_bytes(st, 0);
            assert_true(out->len < (int)sizeof out->text);
            if (out->len)
                memcpy(out->text, p, (size_t)out->len);
        }
    }
    sqlite3_finalize(st);
    return rc;
}

static void bind_int(sqlite3 *db, uint32_t oid, int fmt, const char *data, int32_t len, int64_t want)
{
    struct bound v;
    char ss[6], err[128];
    if (bind_one(db, oid, fmt, data, len, &v, ss, err, sizeof err))
        fail_msg("bind '%s' as %u: %s %s", data, oid, ss, err);
    assert_int_equal(v.type, SQLITE_INTEGER);
    assert_int_equal(v.i, want);
}

static void bind_real(sqlite3 *db, uint32_t oid, int fmt, const char *data, int32_t len, double want)
{
    struct bound v;
    char ss[6], err[128];
    if (bind_one(db, oid, fmt, data, len, &v, ss, err, sizeof err))
        fail_msg("bind '%s' as %u: %s %s", data, oid, ss, err);
    assert_int_equal(v.type, SQLITE_FLOAT);
    assert_true(v.d == want);
}

static void bind_bytes(sqlite3 *db, uint32_t oid, int fmt, const char *data, int32_t len, int type,
                       const char *want, int wantlen)
{
    struct bound v;
    char ss[6], err[128];
    if (bind_one(db, oid, fmt, data, len, &v, ss, err, sizeof err))
        fail_msg("bind '%s' as %u: %s %s", data, oid, ss, err);
    assert_int_equal(v.type, type);
    if (wantlen < 0)
        wantlen = (int)strlen(want);
    assert_int_equal(v.len, wantlen);
    assert_memory_equal(v.text, want, (size_t)wantlen);
}

static void bind_err(sqlite3 *db, uint32_t oid, int fmt, const char *data, int32_t len, const char *state,
                     const char *msg)
{
    struct bound v;
    char ss[6] = "", err[128] = "";
    if (bind_one(db, oid, fmt, data, len, &v, ss, err, sizeof err) == 0)
        fail_msg("bind '%s' as %u succeeded", data, oid);
    assert_string_equal(ss, state);
    if (msg)
        assert_string_equal(err, msg);
}

static void test_bind_text(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    struct bound v;
    char ss[6], err[128];
    assert_int_equal(bind_one(db, SQL_OID_INT4, 0, NULL, -1, &v, ss, err, sizeof err), 0);
    assert_int_equal(v.type, SQLITE_NULL);

    bind_int(db, SQL_OID_INT4, 0, " 42 ", -2, 42);
    bind_int(db, SQL_OID_INT4, 0, "-2147483648", -2, INT32_MIN);
    bind_int(db, SQL_OID_INT4, 0, "+7", -2, 7);
    bind_int(db, SQL_OID_INT4, 0, "12345", 2, 12); /* only len bytes count */
    bind_err(db, SQL_OID_INT4, 0, "4x", -2, "22P02", "invalid input syntax for type integer: \"4x\"");
    bind_err(db, SQL_OID_INT4, 0, "", -2, "22P02", NULL);
    bind_err(db, SQL_OID_INT4, 0, "-", -2, "22P02", NULL);
    bind_err(db, SQL_OID_INT4, 0, "1.5", -2, "22P02", NULL);
    bind_err(db, SQL_OID_INT4, 0, "2147483648", -2, "22003",
             "value \"2147483648\" is out of range for type integer");
    bind_int(db, SQL_OID_INT2, 0, "-32768", -2, -32768);
    bind_err(db, SQL_OID_INT2, 0, "32768", -2, "22003", NULL);
    bind_err(db, SQL_OID_INT2, 0, "x", -2, "22P02", "invalid input syntax for type smallint: \"x\"");
    bind_int(db, SQL_OID_INT8, 0, "9223372036854775807", -2, INT64_MAX);
    bind_int(db, SQL_OID_INT8, 0, "-9223372036854775808", -2, INT64_MIN);
    bind_err(db, SQL_OID_INT8, 0, "9223372036854775808", -2, "22003", NULL);
    bind_err(db, SQL_OID_INT8, 0, "99999999999999999999999", -2, "22003", NULL);
    bind_int(db, SQL_OID_OID, 0, "4294967295", -2, 4294967295LL);

    bind_real(db, SQL_OID_FLOAT8, 0, "1.5", -2, 1.5);
    bind_real(db, SQL_OID_FLOAT8, 0, " -2e3 ", -2, -2000.0);
    bind_real(db, SQL_OID_FLOAT8, 0, "Infinity", -2, INFINITY);
    bind_real(db, SQL_OID_FLOAT8, 0, "-INFINITY", -2, -INFINITY);
    bind_real(db, SQL_OID_FLOAT8, 0, "inf", -2, INFINITY);
    bind_real(db, SQL_OID_FLOAT4, 0, "0.25", -2, 0.25);
    bind_bytes(db, SQL_OID_FLOAT8, 0, "NaN", -2, SQLITE_TEXT, "NaN", -1);
    bind_bytes(db, SQL_OID_FLOAT8, 0, "nan", -2, SQLITE_TEXT, "NaN", -1);
    bind_err(db, SQL_OID_FLOAT8, 0, "abc", -2, "22P02", "invalid input syntax for type double precision: \"abc\"");
    bind_err(db, SQL_OID_FLOAT8, 0, "", -2, "22P02", NULL);
    bind_err(db, SQL_OID_FLOAT8, 0, "1e400", -2, "22003", NULL);
    bind_err(db, SQL_OID_FLOAT8, 0, "1e-400", -2, "22003", NULL);
    bind_err(db, SQL_OID_FLOAT4, 0, "1e39", -2, "22003", NULL);
    bind_err(db, SQL_OID_FLOAT4, 0, "1.5x", -2, "22P02", "invalid input syntax for type real: \"1.5x\"");

    static const struct {
        const char *s;
        int v;
    } bools[] = {
        {"t", 1},    {"TRUE", 1}, {"tr", 1},  {"yes", 1},   {"Y", 1},     {"on", 1},  {"1", 1},
        {" true ", 1}, {"f", 0},  {"false", 0}, {"FAL", 0}, {"no", 0},    {"N", 0},   {"off", 0},
        {"OF", 0},   {"0", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(bools); i++)
        bind_int(db, SQL_OID_BOOL, 0, bools[i].s, -2, bools[i].v);
    static const char *bad_bools[] = {"o", "maybe", "truex", "2", "", "10", "yess"};
    for (size_t i = 0; i < ARRAY_LEN(bad_bools); i++)
        bind_err(db, SQL_OID_BOOL, 0, bad_bools[i], -2, "22P02", NULL);
    bind_err(db, SQL_OID_BOOL, 0, "maybe", -2, "22P02", "invalid input syntax for type boolean: \"maybe\"");

    bind_int(db, SQL_OID_NUMERIC, 0, "12", -2, 12);
    bind_int(db, SQL_OID_NUMERIC, 0, " -12 ", -2, -12);
    bind_bytes(db, SQL_OID_NUMERIC, 0, "1.50", -2, SQLITE_TEXT, "1.50", -1);
    bind_bytes(db, SQL_OID_NUMERIC, 0, " .5e3 ", -2, SQLITE_TEXT, ".5e3", -1);
    bind_bytes(db, SQL_OID_NUMERIC, 0, "99999999999999999999", -2, SQLITE_TEXT, "99999999999999999999", -1);
    bind_bytes(db, SQL_OID_NUMERIC, 0, "NaN", -2, SQLITE_TEXT, "NaN", -1);
    bind_bytes(db, SQL_OID_NUMERIC, 0, "-Infinity", -2, SQLITE_TEXT, "-Infinity", -1);
    bind_err(db, SQL_OID_NUMERIC, 0, "abc", -2, "22P02", "invalid input syntax for type numeric: \"abc\"");
    bind_err(db, SQL_OID_NUMERIC, 0, "1e", -2, "22P02", NULL);
    bind_err(db, SQL_OID_NUMERIC, 0, ".", -2, "22P02", NULL);

    bind_bytes(db, SQL_OID_BYTEA, 0, "\\x0aff", -2, SQLITE_BLOB, "\x0a\xff", 2);
    bind_bytes(db, SQL_OID_BYTEA, 0, "\\x0A FF", -2, SQLITE_BLOB, "\x0a\xff", 2);
    bind_bytes(db, SQL_OID_BYTEA, 0, "\\x", -2, SQLITE_BLOB, "", 0);
    bind_bytes(db, SQL_OID_BYTEA, 0, "", -2, SQLITE_BLOB, "", 0);
    bind_bytes(db, SQL_OID_BYTEA, 0, "a\\\\b\\001\\377", -2, SQLITE_BLOB, "a\\b\x01\xff", 5);
    bind_err(db, SQL_OID_BYTEA, 0, "\\x0", -2, "22P02", "invalid hexadecimal data: odd number of digits");
    bind_err(db, SQL_OID_BYTEA, 0, "\\xzz", -2, "22P02", "invalid hexadecimal digit: \"z\"");
    bind_err(db, SQL_OID_BYTEA, 0, "\\q", -2, "22P02", "invalid input syntax for type bytea");
    bind_err(db, SQL_OID_BYTEA, 0, "ab\\", -2, "22P02", NULL);
    bind_err(db, SQL_OID_BYTEA, 0, "\\400", -2, "22P02", NULL);

    bind_bytes(db, SQL_OID_TEXT, 0, "hello", -2, SQLITE_TEXT, "hello", -1);
    bind_bytes(db, 0, 0, "123", -2, SQLITE_TEXT, "123", -1);
    bind_bytes(db, SQL_OID_DATE, 0, "2024-01-02", -2, SQLITE_TEXT, "2024-01-02", -1);
    bind_bytes(db, SQL_OID_TEXT, 0, "", -2, SQLITE_TEXT, "", 0);
    bind_bytes(db, SQL_OID_JSONB, 0, "{}", -2, SQLITE_TEXT, "{}", -1);
    bind_bytes(db, SQL_OID_UUID, 0, "{A0EEBC99-9C0B4EF8-BB6D6BB9-BD380A11}", -2, SQLITE_TEXT,
               "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", -1);
    bind_err(db, SQL_OID_UUID, 0, "not-a-uuid", -2, "22P02", "invalid input syntax for type uuid: \"not-a-uuid\"");

    /* parameter index out of range */
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sql_bind_param(st, 2, SQL_OID_TEXT, 0, "x", 1, ss, err, sizeof err), -1);
    assert_string_equal(ss, "08P01");
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_bind_binary(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    bind_int(db, SQL_OID_BOOL, 1, "\x01", 1, 1);
    bind_int(db, SQL_OID_BOOL, 1, "\x00", 1, 0);
    bind_int(db, SQL_OID_INT2, 1, "\xff\xfe", 2, -2);
    bind_int(db, SQL_OID_INT4, 1, "\x00\x00\x01\x00", 4, 256);
    bind_int(db, SQL_OID_INT4, 1, "\x80\x00\x00\x00", 4, INT32_MIN);
    bind_int(db, SQL_OID_INT8, 1, "\x00\x00\x01\x00\x00\x00\x00\x00", 8, 1099511627776LL);
    bind_int(db, SQL_OID_INT8, 1, "\xff\xff\xff\xff\xff\xff\xff\xff", 8, -1);
    bind_int(db, SQL_OID_OID, 1, "\xff\xff\xff\xff", 4, 4294967295LL);
    bind_real(db, SQL_OID_FLOAT4, 1, "\x3f\xc0\x00\x00", 4, 1.5);
    bind_real(db, SQL_OID_FLOAT8, 1, "\x3f\xf8\x00\x00\x00\x00\x00\x00", 8, 1.5);
    bind_real(db, SQL_OID_FLOAT8, 1, "\xff\xf0\x00\x00\x00\x00\x00\x00", 8, -INFINITY);
    bind_bytes(db, SQL_OID_FLOAT8, 1, "\x7f\xf8\x00\x00\x00\x00\x00\x00", 8, SQLITE_TEXT, "NaN", -1);
    /* too short: PostgreSQL's receive function reads past the value (08P01);
     * too long: bad data (22P03) */
    bind_err(db, SQL_OID_INT4, 1, "\x00\x00\x01", 3, "08P01", "insufficient data left in message");
    bind_err(db, SQL_OID_INT4, 1, "\x00\x00\x00\x00\x01", 5, "22P03", "incorrect binary data format in bind parameter 1");
    bind_err(db, SQL_OID_INT8, 1, "\x00\x00\x00\x01", 4, "08P01", NULL);
    bind_err(db, SQL_OID_BOOL, 1, "", 0, "08P01", "no data left in message");
    bind_err(db, SQL_OID_BOOL, 1, "\x01\x01", 2, "22P03", NULL);
    bind_err(db, SQL_OID_FLOAT4, 1, "\x00\x00\x00\x00\x00\x00\x00\x00", 8, "22P03", NULL);
    bind_bytes(db, SQL_OID_TEXT, 1, "abc", 3, SQLITE_TEXT, "abc", 3);
    bind_bytes(db, SQL_OID_VARCHAR, 1, "", 0, SQLITE_TEXT, "", 0);
    bind_bytes(db, SQL_OID_JSON, 1, "[1]", 3, SQLITE_TEXT, "[1]", 3);
    bind_bytes(db, SQL_OID_JSONB, 1, "\x01[1]", 4, SQLITE_TEXT, "[1]", 3);
    bind_err(db, SQL_OID_JSONB, 1, "\x02[1]", 4, "22P03", NULL);
    bind_bytes(db, SQL_OID_BYTEA, 1, "\x00\x01\xff", 3, SQLITE_BLOB, "\x00\x01\xff", 3);
    bind_bytes(db, SQL_OID_BYTEA, 1, "", 0, SQLITE_BLOB, "", 0);
    bind_bytes(db, 0, 1, "\x00z", 2, SQLITE_BLOB, "\x00z", 2);
    /* numeric and date/time: bound as their text */
    bind_bytes(db, SQL_OID_NUMERIC, 1, "\0\2\0\0\0\0\0\1\0\1\x13\x88", 12, SQLITE_TEXT, "1.5", -1);
    bind_int(db, SQL_OID_NUMERIC, 1, "\0\1\0\0\0\0\0\0\0\x2a", 10, 42);
    bind_err(db, SQL_OID_NUMERIC, 1, "\x00\x01\x00\x00\x00\x00\x00\x01", 8, "08P01",
             "insufficient data left in message"); /* a digit missing, as PostgreSQL */
    bind_err(db, SQL_OID_NUMERIC, 1, "\0\1\0\0\0\0\0\0\0\1\0\0", 12, "22P03",
             "incorrect binary data format in bind parameter 1"); /* one too many */
    bind_bytes(db, SQL_OID_DATE, 1, "\0\0\x22\x3e", 4, SQLITE_TEXT, "2024-01-01", -1);
    bind_bytes(db, SQL_OID_TIME, 1, "\0\0\0\x08\x61\xc4\x68\0", 8, SQLITE_TEXT, "10:00:00", -1);
    bind_bytes(db, SQL_OID_TIMESTAMP, 1, "\0\0\0\0\0\x16\xe3\x60", 8, SQLITE_TEXT, "2000-01-01 00:00:01.5", -1);
    bind_bytes(db, SQL_OID_TIMESTAMPTZ, 1, "\0\0\0\0\0\0\0\0", 8, SQLITE_TEXT, "2000-01-01 00:00:00+00", -1);
    bind_bytes(db, SQL_OID_TIMESTAMP, 1, "\x7f\xff\xff\xff\xff\xff\xff\xff", 8, SQLITE_TEXT, "infinity", -1);
    bind_err(db, SQL_OID_TIMESTAMPTZ, 1, "\0\0\0\0", 4, "22P03", NULL);
    bind_bytes(db, SQL_OID_UUID, 1, "\xa0\xee\xbc\x99\x9c\x0b\x4e\xf8\xbb\x6d\x6b\xb9\xbd\x38\x0a\x11", 16,
               SQLITE_TEXT, "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", -1);
    bind_err(db, SQL_OID_UUID, 1, "\xa0\xee", 2, "22P03", NULL);
    struct bound v;
    char ss[6], err[64];
    assert_int_equal(bind_one(db, SQL_OID_INT4, 1, NULL, -1, &v, ss, err, sizeof err), 0);
    assert_int_equal(v.type, SQLITE_NULL);
    sqlite3_close(db);
}

/* Values bound in one format come back the same through sql_put_field. */
static void test_bind_put_roundtrip(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    static const struct {
        uint32_t oid;
        const char *in;
        const char *out;
    } cases[] = {
        {SQL_OID_INT4, "-17", "-17"},         {SQL_OID_BOOL, "yes", "t"},
        {SQL_OID_BOOL, "off", "f"},           {SQL_OID_FLOAT8, "0.1", "0.1"},
        {SQL_OID_FLOAT8, "1e-5", "1e-05"},    {SQL_OID_FLOAT8, "-Infinity", "-Infinity"},
        {SQL_OID_FLOAT8, "NaN", "NaN"},       {SQL_OID_BYTEA, "\\xdeadbeef", "\\xdeadbeef"},
        {SQL_OID_TEXT, "tab\there", "tab\there"}, {SQL_OID_NUMERIC, "12.50", "12.50"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        sqlite3_stmt *st;
        char ss[6], err[128];
        assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1", -1, &st, NULL), SQLITE_OK);
        assert_int_equal(sql_bind_param(st, 1, cases[i].oid, 0, cases[i].in, (int32_t)strlen(cases[i].in), ss, err,
                                        sizeof err),
                         0);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        expect_field(st, cases[i].oid, 0, cases[i].out, -1);
        sqlite3_finalize(st);
    }
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sqlstate_real_errors),
        cmocka_unit_test(test_sqlstate_other_codes),
        cmocka_unit_test(test_decltype),
        cmocka_unit_test(test_field_text),
        cmocka_unit_test(test_field_floats),
        cmocka_unit_test(test_float_roundtrip),
        cmocka_unit_test(test_field_binary),
        cmocka_unit_test(test_binfmt_roundtrip),
        cmocka_unit_test(test_field_table),
        cmocka_unit_test(test_bind_text),
        cmocka_unit_test(test_bind_binary),
        cmocka_unit_test(test_bind_put_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
