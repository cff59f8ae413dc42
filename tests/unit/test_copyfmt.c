/* Unit tests for sql/copyfmt.c: COPY text and CSV line parsing (escapes,
 * NULLs, quotes, embedded newlines), row formatting from real SQLite rows,
 * and format -> parse round trips. */
#include "unit.h"
#include "sql.h"

#include <stdlib.h>

static struct sql_copy text_opts(void)
{
    struct sql_copy c;
    memset(&c, 0, sizeof c);
    c.format = SQL_COPY_TEXT;
    c.delimiter = '\t';
    c.null_str = "\\N";
    return c;
}

static struct sql_copy csv_opts(void)
{
    struct sql_copy c;
    memset(&c, 0, sizeof c);
    c.format = SQL_COPY_CSV;
    c.delimiter = ',';
    c.quote = '"';
    c.escape = '"';
    c.null_str = "";
    return c;
}

/* Parse line and compare with want (NULL entries are SQL NULLs). */
static void expect_parse(const struct sql_copy *c, const char *line, size_t len, int n, const char *const *want,
                         const size_t *wantlen)
{
    struct buf st;
    buf_init(&st);
    size_t fields[16];
    char err[128] = "";
    int got = sql_copy_parse_line(c, line, len, &st, fields, 16, err, sizeof err);
    if (got != n)
        fail_msg("'%.*s': %d fields (%s), want %d", (int)len, line, got, err, n);
    for (int i = 0; i < n; i++) {
        if (!want[i]) {
            if (fields[i] != SIZE_MAX)
                fail_msg("'%.*s' field %d: want NULL, got '%s'", (int)len, line, i, st.data + fields[i]);
            continue;
        }
        if (fields[i] == SIZE_MAX)
            fail_msg("'%.*s' field %d: got NULL, want '%s'", (int)len, line, i, want[i]);
        size_t wl = wantlen ? wantlen[i] : strlen(want[i]);
        if (memcmp(st.data + fields[i], want[i], wl) != 0 || st.data[fields[i] + wl] != 0)
            fail_msg("'%.*s' field %d: got '%s', want '%s'", (int)len, line, i, st.data + fields[i], want[i]);
    }
    buf_free(&st);
}

#define PARSE(c, line, ...)                                                                                   \
    do {                                                                                                     \
        static const char *const w_[] = {__VA_ARGS__};                                                      \
        expect_parse(c, line, strlen(line), (int)ARRAY_LEN(w_), w_, NULL);                                 \
    } while (0)

static void expect_parse_error(const struct sql_copy *c, const char *line, int maxfields, const char *msg)
{
    struct buf st;
    buf_init(&st);
    size_t fields[16];
    char err[128] = "";
    assert_int_equal(sql_copy_parse_line(c, line, strlen(line), &st, fields, maxfields, err, sizeof err), -1);
    if (msg)
        assert_string_equal(err, msg);
    else
        assert_true(err[0] != 0);
    buf_free(&st);
}

static void test_parse_text(void **state)
{
    (void)state;
    struct sql_copy c = text_opts();
    PARSE(&c, "a\tb\t\\N", "a", "b", NULL);
    PARSE(&c, "", "");
    PARSE(&c, "\t", "", "");
    PARSE(&c, "\\N", NULL);
    PARSE(&c, "\\\\N", "\\N");
    PARSE(&c, "x\\ty\\nz\\\\w\\r", "x\ty\nz\\w\r");
    PARSE(&c, "\\b\\f\\v", "\b\f\v");
    PARSE(&c, "\\101\\0411\\7", "A!1\a");
    PARSE(&c, "\\x41\\x4a\\x4G\\xg", "AJ\x04Gxg");
    PARSE(&c, "a\\\tb\tc", "a\tb", "c");
    PARSE(&c, "\\q\\.\\'", "q.'");
    PARSE(&c, "h\xc3\xa9\tw", "h\xc3\xa9", "w");
    PARSE(&c, "trailing\\", "trailing\\");
    PARSE(&c, "\\n\t\\N\t", "\n", NULL, "");

    c.delimiter = ',';
    c.null_str = "";
    PARSE(&c, "a,,b", "a", NULL, "b");
    PARSE(&c, "a,\\N,b", "a", "N", "b");
    PARSE(&c, "1\\,5,2", "1,5", "2");
    c.null_str = "NULL";
    PARSE(&c, "NULL,null,\\NULL", NULL, "null", "NULL");

    c = text_opts();
    expect_parse_error(&c, "a\tb\tc", 2, "extra data after last expected column");
    expect_parse_error(&c, "a\\0b", 4, NULL);
    expect_parse_error(&c, "a\\x00", 4, NULL);
    static const char nul_line[] = "a\0b";
    struct buf st;
    buf_init(&st);
    size_t f[4];
    char err[64];
    assert_int_equal(sql_copy_parse_line(&c, nul_line, 3, &st, f, 4, err, sizeof err), -1);
    buf_free(&st);

    /* a field exactly "\\." is data; only the whole-line marker (the
     * caller's check) ends the input */
    PARSE(&c, "\\.\tx", ".", "x");
}

static void test_parse_csv(void **state)
{
    (void)state;
    struct sql_copy c = csv_opts();
    PARSE(&c, "a,\"b,c\",\"d\"\"e\",,\"\"", "a", "b,c", "d\"e", NULL, "");
    PARSE(&c, "", NULL);
    PARSE(&c, "\"\"", "");
    PARSE(&c, ",", NULL, NULL);
    PARSE(&c, " a , b ", " a ", " b ");
    PARSE(&c, "a\"b,c\"d,e", "ab,cd", "e");
    PARSE(&c, "\"multi\nline\",2", "multi\nline", "2");
    PARSE(&c, "\"cr\r\nlf\"", "cr\r\nlf");
    PARSE(&c, "\\N,x", "\\N", "x");
    PARSE(&c, "\"\"\"\"", "\"");
    PARSE(&c, "\"a\"\"\"", "a\"");

    c.null_str = "NULL";
    PARSE(&c, "NULL,\"NULL\",,x", NULL, "NULL", "", "x");

    /* escape different from quote */
    c = csv_opts();
    c.escape = '\\';
    PARSE(&c, "\"a\\\"b\",\"c\\\\d\",\"e\\f\",g\\h", "a\"b", "c\\d", "e\\f", "g\\h");
    PARSE(&c, "\"x\"\"y\"", "xy");

    /* other delimiter and quote */
    c = csv_opts();
    c.delimiter = ';';
    c.quote = '\'';
    c.escape = '\'';
    PARSE(&c, "'a;b';'it''s';\"q\"", "a;b", "it's", "\"q\"");

    c = csv_opts();
    expect_parse_error(&c, "\"abc", 4, "unterminated CSV quoted field");
    expect_parse_error(&c, "a,\"b\"\"", 4, "unterminated CSV quoted field");
    expect_parse_error(&c, "a,b,c", 2, "extra data after last expected column");
}

static void test_line_complete(void **state)
{
    (void)state;
    struct sql_copy c = csv_opts();
    static const struct {
        const char *line;
        int complete;
    } csv[] = {
        {"", 1},          {"a,b", 1},         {"\"abc", 0},     {"\"abc\"", 1},      {"\"abc\"\"", 0},
        {"\"a\"\"b\"", 1}, {"a,\"b\nc\"", 1}, {"a,\"b\nc", 0},  {"x\"y", 0},         {"\"\"", 1},
        {"\"\"\"", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(csv); i++)
        if (sql_copy_csv_complete(&c, csv[i].line, strlen(csv[i].line)) != csv[i].complete)
            fail_msg("csv '%s': want %d", csv[i].line, csv[i].complete);
    c.escape = '\\';
    assert_int_equal(sql_copy_csv_complete(&c, "\"a\\\"", 4), 0);
    assert_int_equal(sql_copy_csv_complete(&c, "\"a\\\"\"", 5), 1);

    struct sql_copy t = text_opts();
    assert_int_equal(sql_copy_csv_complete(&t, "abc", 3), 1);
    assert_int_equal(sql_copy_csv_complete(&t, "abc\\", 4), 0);
    assert_int_equal(sql_copy_csv_complete(&t, "abc\\\\", 5), 1);
    assert_int_equal(sql_copy_csv_complete(&t, "\\\\\\", 3), 0);
    assert_int_equal(sql_copy_csv_complete(&t, "", 0), 1);
    /* a backslash-newline continuation decodes to a newline */
    PARSE(&t, "a\\\nb\tc", "a\nb", "c");
}

/* ---- formatting -------------------------------------------------------------- */

static sqlite3 *open_db(void)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    return db;
}

static void exec_ok(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
    sqlite3_free(msg);
}

/* Format every row of a query and compare with want. */
static void expect_rows(sqlite3 *db, const struct sql_copy *c, const char *sql, int header, const char *want)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(db));
    struct buf out;
    buf_init(&out);
    if (header)
        sql_copy_format_header(c, st, &out);
    while (sqlite3_step(st) == SQLITE_ROW)
        sql_copy_format_row(c, st, &out);
    sqlite3_finalize(st);
    assert_true(buf_ok(&out));
    buf_putc(&out, 0);
    if (strcmp(out.data, want) != 0)
        fail_msg("%s:\n got: [%s]\nwant: [%s]", sql, out.data, want);
    buf_free(&out);
}

static const char *fixture = "CREATE TABLE t(id INTEGER, b BOOLEAN, r REAL, f FLOAT4, n NUMERIC, s TEXT, y BYTEA);"
                             "INSERT INTO t VALUES (1, 1, 0.1, 0.1, 1e20, 'plain', x'00ff');"
                             "INSERT INTO t VALUES (2, 0, 1.0, 3, 2.5, 'tab\there\nnl\\bs\rcr', '');"
                             "INSERT INTO t VALUES (3, NULL, -0.25, NULL, NULL, '', NULL);"
                             "INSERT INTO t VALUES (4, 'yes', 1e22, NULL, 7, 'q\"uo,te', x'');"
                             "INSERT INTO t VALUES (5, NULL, NULL, NULL, NULL, '\\N', NULL);";

static void test_format_text(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, fixture);
    struct sql_copy c = text_opts();
    expect_rows(db, &c, "SELECT * FROM t ORDER BY id", 0,
                "1\tt\t0.1\t0.1\t100000000000000000000\tplain\t\\\\x00ff\n"
                "2\tf\t1\t3\t2.5\ttab\\there\\nnl\\\\bs\\rcr\t\\\\x\n"
                "3\t\\N\t-0.25\t\\N\t\\N\t\t\\N\n"
                "4\tt\t1e+22\t\\N\t7\tq\"uo,te\t\\\\x\n"
                "5\t\\N\t\\N\t\\N\t\\N\t\\\\N\t\\N\n");
    /* a custom delimiter is escaped; control characters become escapes */
    c.delimiter = '|';
    c.null_str = "";
    expect_rows(db, &c, "SELECT 'a|b', NULL, 'x' || char(8) || char(12) || char(11) || char(1)", 0,
                "a\\|b||x\\b\\f\\v\x01\n");
    /* no declared type: types follow the values */
    c = text_opts();
    expect_rows(db, &c, "SELECT 1, 2.5, 'x', x'0a', NULL", 0, "1\t2.5\tx\t\\\\x0a\t\\N\n");
    expect_rows(db, &c, "SELECT id, s FROM t WHERE id = 1", 1, "id\ts\n1\tplain\n");
    sqlite3_close(db);
}

static void test_format_csv(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    exec_ok(db, fixture);
    struct sql_copy c = csv_opts();
    expect_rows(db, &c, "SELECT * FROM t ORDER BY id", 1,
                "id,b,r,f,n,s,y\n"
                "1,t,0.1,0.1,100000000000000000000,plain,\\x00ff\n"
                "2,f,1,3,2.5,\"tab\there\nnl\\bs\rcr\",\\x\n"
                "3,,-0.25,,,\"\",\n"
                "4,t,1e+22,,7,\"q\"\"uo,te\",\\x\n"
                "5,,,,,\\N,\n");
    /* a lone \. in a one-column copy is quoted so it is not the end marker */
    expect_rows(db, &c, "SELECT '\\.'", 0, "\"\\.\"\n");
    expect_rows(db, &c, "SELECT '\\.', 1", 0, "\\.,1\n");
    /* value equal to the null string gets quoted */
    c.null_str = "NULL";
    expect_rows(db, &c, "SELECT 'NULL', NULL, ''", 0, "\"NULL\",NULL,\n");
    /* escape character other than the quote */
    c = csv_opts();
    c.escape = '\\';
    expect_rows(db, &c, "SELECT 'a\"b\\c,d', 'e\\f'", 0, "\"a\\\"b\\\\c,d\",e\\f\n");
    c = csv_opts();
    c.delimiter = ';';
    expect_rows(db, &c, "SELECT 'a,b', 'c;d'", 0, "a,b;\"c;d\"\n");
    expect_rows(db, &c, "SELECT 1 AS \"odd;name\", 2 AS x", 1, "\"odd;name\";x\n1;2\n");
    sqlite3_close(db);
}

/* ---- round trips ---------------------------------------------------------------- */

static const char *tricky[] = {
    "plain", "", "\\N", "\\.", "NULL", "a\tb", "line1\nline2", "cr\rlf\r\n", "back\\slash", "\\",
    "quote\"d", "\"", "\"\"", "comma,sep", "semi;colon", " spaced ", "trailing\\", "h\xc3\xa9llo",
    "\x01\x02\x1f", "|pipe|", "\\x41",
};

/* Split out with csv_complete, parse each row back and compare. */
static void roundtrip(const struct sql_copy *c, sqlite3 *db)
{
    size_t n = ARRAY_LEN(tricky);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT ?1, ?2, ?3", -1, &st, NULL), SQLITE_OK);
    struct buf out;
    buf_init(&out);
    /* rows: (value, NULL, value) for each value, and (value alone) for the
     * \. single-column case handled by the 3-column rows anyway */
    for (size_t i = 0; i < n; i++) {
        sqlite3_reset(st);
        sqlite3_bind_text(st, 1, tricky[i], -1, SQLITE_STATIC);
        sqlite3_bind_null(st, 2);
        sqlite3_bind_text(st, 3, tricky[(i + 1) % n], -1, SQLITE_STATIC);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        sql_copy_format_row(c, st, &out);
    }
    sqlite3_finalize(st);
    assert_true(buf_ok(&out));

    size_t pos = 0, row = 0;
    struct buf line, storage;
    buf_init(&line);
    buf_init(&storage);
    while (pos < out.len) {
        buf_reset(&line);
        for (;;) {
            const char *nl = memchr(out.data + pos, '\n', out.len - pos);
            assert_non_null(nl);
            buf_append(&line, out.data + pos, (size_t)(nl - (out.data + pos)));
            pos = (size_t)(nl - out.data) + 1;
            if (sql_copy_csv_complete(c, line.data ? line.data : "", line.len))
                break;
            buf_putc(&line, '\n');
        }
        assert_false(line.len == 2 && memcmp(line.data, "\\.", 2) == 0);
        buf_reset(&storage);
        size_t f[4];
        char err[100];
        int nf = sql_copy_parse_line(c, line.data ? line.data : "", line.len, &storage, f, 4, err, sizeof err);
        if (nf != 3)
            fail_msg("row %zu: %d fields (%s): '%.*s'", row, nf, err, (int)line.len, line.data);
        assert_true(f[0] != SIZE_MAX && f[1] == SIZE_MAX && f[2] != SIZE_MAX);
        assert_string_equal(storage.data + f[0], tricky[row]);
        assert_string_equal(storage.data + f[2], tricky[(row + 1) % n]);
        row++;
    }
    assert_int_equal(row, n);
    buf_free(&line);
    buf_free(&storage);
    buf_free(&out);
}

static void test_roundtrip(void **state)
{
    (void)state;
    sqlite3 *db = open_db();
    struct sql_copy c = text_opts();
    roundtrip(&c, db);
    /* (with NULL '' or 'NULL', text format cannot tell such strings from
     * NULL, in PostgreSQL too) */
    c.delimiter = '|';
    roundtrip(&c, db);
    c = csv_opts();
    roundtrip(&c, db);
    c.null_str = "\\N";
    roundtrip(&c, db);
    c.escape = '\\';
    roundtrip(&c, db);
    c = csv_opts();
    c.delimiter = '\t';
    c.quote = '\'';
    c.escape = '\'';
    roundtrip(&c, db);
    sqlite3_close(db);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_text),   cmocka_unit_test(test_parse_csv),
        cmocka_unit_test(test_line_complete), cmocka_unit_test(test_format_text),
        cmocka_unit_test(test_format_csv),   cmocka_unit_test(test_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
