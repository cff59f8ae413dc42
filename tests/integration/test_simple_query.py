"""Simple query protocol: command tags, multi-statement messages, errors, types."""
import datetime
import decimal

import psycopg2
import psycopg2.errors
import pytest

import rawpg


def tag(cur):
    return cur.statusmessage


def test_command_tags_exact(conn, unique_name):
    t = unique_name
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id integer PRIMARY KEY, v text)" % t)
    assert tag(cur) == "CREATE TABLE"
    cur.execute("INSERT INTO %s VALUES (1, 'a')" % t)
    assert tag(cur) == "INSERT 0 1"
    cur.execute("INSERT INTO %s VALUES (2, 'b'), (3, 'c'), (4, 'd')" % t)
    assert tag(cur) == "INSERT 0 3"
    cur.execute("INSERT INTO %s SELECT id + 10, v FROM %s" % (t, t))
    assert tag(cur) == "INSERT 0 4"
    cur.execute("UPDATE %s SET v = 'x' WHERE id < 3" % t)
    assert tag(cur) == "UPDATE 2"
    cur.execute("UPDATE %s SET v = 'x' WHERE id = 999" % t)
    assert tag(cur) == "UPDATE 0"
    cur.execute("DELETE FROM %s WHERE id = 1" % t)
    assert tag(cur) == "DELETE 1"
    cur.execute("SELECT * FROM %s ORDER BY id" % t)
    assert tag(cur) == "SELECT 7"
    assert len(cur.fetchall()) == 7
    cur.execute("SELECT * FROM %s WHERE id < 0" % t)
    assert tag(cur) == "SELECT 0"
    assert cur.fetchall() == []
    cur.execute("CREATE INDEX %s_v ON %s (v)" % (t, t))
    assert tag(cur) == "CREATE INDEX"
    cur.execute("DROP INDEX %s_v" % t)
    assert tag(cur) == "DROP INDEX"
    cur.execute("CREATE VIEW %s_view AS SELECT id FROM %s" % (t, t))
    assert tag(cur) == "CREATE VIEW"
    cur.execute("DROP VIEW %s_view" % t)
    assert tag(cur) == "DROP VIEW"
    cur.execute("DELETE FROM %s" % t)
    assert tag(cur) == "DELETE 7"
    cur.execute("DROP TABLE %s" % t)
    assert tag(cur) == "DROP TABLE"


def test_transaction_and_set_tags(conn):
    cur = conn.cursor()
    for sql, expect in (("BEGIN", "BEGIN"), ("SAVEPOINT a", "SAVEPOINT"), ("RELEASE a", "RELEASE"),
                        ("SAVEPOINT b", "SAVEPOINT"), ("ROLLBACK TO b", "ROLLBACK"), ("COMMIT", "COMMIT"),
                        ("START TRANSACTION", "START TRANSACTION"), ("ROLLBACK", "ROLLBACK"),
                        ("SET application_name = 'x'", "SET"), ("RESET application_name", "RESET"),
                        ("SHOW application_name", "SHOW")):
        cur.execute(sql)
        assert tag(cur) == expect, sql


def test_tags_via_raw_protocol(shared_server, unique_name):
    c = shared_server.raw()
    t = unique_name
    res = c.query("CREATE TABLE %s (a integer); INSERT INTO %s VALUES (1),(2); "
                  "UPDATE %s SET a = a + 1; SELECT a FROM %s ORDER BY a; DELETE FROM %s; DROP TABLE %s"
                  % (t, t, t, t, t, t))
    assert [r.tag for r in res] == ["CREATE TABLE", "INSERT 0 2", "UPDATE 2", "SELECT 2", "DELETE 2",
                                    "DROP TABLE"]
    assert res[3].text_rows() == [["2"], ["3"]]
    assert c.status == "I"
    c.terminate()


def test_psql_prints_tags(shared_server, unique_name):
    t = unique_name
    p = shared_server.psql("-c", "CREATE TABLE %s (a integer)" % t,
                           "-c", "INSERT INTO %s VALUES (1),(2),(3)" % t,
                           "-c", "UPDATE %s SET a = 0 WHERE a > 1" % t,
                           "-c", "DELETE FROM %s" % t)
    lines = p.stdout.splitlines()
    assert lines == ["CREATE TABLE", "INSERT 0 3", "UPDATE 2", "DELETE 3"], p.stdout


def test_psql_script_with_results(shared_server, unique_name):
    t = unique_name
    script = ("CREATE TABLE %s (id integer PRIMARY KEY, name text);\n"
              "INSERT INTO %s VALUES (1, 'alpha'), (2, 'beta');\n"
              "SELECT id, name FROM %s ORDER BY id;\n" % (t, t, t))
    p = shared_server.psql("-At", "-F", "|", input=script)
    assert p.stdout.splitlines()[-2:] == ["1|alpha", "2|beta"], p.stdout


def test_multi_statement_results(shared_server):
    c = shared_server.raw()
    res = c.query("SELECT 1; SELECT 'two', 3; SELECT 4 WHERE 1 = 0")
    assert len(res) == 3
    assert res[0].text_rows() == [["1"]] and res[0].tag == "SELECT 1"
    assert res[1].text_rows() == [["two", "3"]]
    assert res[2].rows == [] and res[2].tag == "SELECT 0"
    assert c.status == "I"
    c.terminate()


def test_multi_statement_error_stops_and_rolls_back(shared_server, unique_name):
    t = unique_name
    c = shared_server.raw()
    c.query1("CREATE TABLE %s (id integer PRIMARY KEY)" % t)
    res = c.query("INSERT INTO %s VALUES (1); INSERT INTO %s VALUES (1); INSERT INTO %s VALUES (2)"
                  % (t, t, t))
    assert res[-1].error is not None
    assert res[-1].error.code == "23505"
    assert len(res) == 2, "statements after the failing one must not run: %r" % res
    assert c.status == "I"
    # a multi-statement Query is one implicit transaction: the first INSERT is rolled back
    assert c.query1("SELECT count(*) FROM %s" % t).text_rows() == [["0"]]
    c.terminate()


def test_empty_query(shared_server):
    c = shared_server.raw()
    c.send_msg("Q", b"\0")
    msgs = c.read_until_ready()
    assert [m[0] for m in msgs] == ["I", "Z"], msgs
    c.send_msg("Q", b"  ;  \0")
    msgs = c.read_until_ready()
    assert "E" not in [m[0] for m in msgs], msgs
    c.terminate()


def _err(conn, sql):
    cur = conn.cursor()
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute(sql)
    return ei.value


@pytest.fixture
def constraint_tables(conn, unique_name):
    t = unique_name
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s_p (id integer PRIMARY KEY, name text NOT NULL UNIQUE, "
                "qty integer CHECK (qty >= 0))" % t)
    cur.execute("CREATE TABLE %s_c (id integer PRIMARY KEY, pid integer NOT NULL REFERENCES %s_p (id))"
                % (t, t))
    cur.execute("INSERT INTO %s_p VALUES (1, 'one', 1)" % t)
    yield t
    cur.execute("DROP TABLE %s_c" % t)
    cur.execute("DROP TABLE %s_p" % t)


@pytest.mark.parametrize("sql,code", [
    ("INSERT INTO {t}_p VALUES (1, 'dup-pk', 0)", "23505"),
    ("INSERT INTO {t}_p VALUES (2, 'one', 0)", "23505"),
    ("INSERT INTO {t}_p VALUES (3, NULL, 0)", "23502"),
    ("INSERT INTO {t}_c VALUES (1, 999)", "23503"),
    ("INSERT INTO {t}_p VALUES (4, 'neg', -5)", "23514"),
    ("SELEC 1", "42601"),
    ("SELECT * FROM {t}_no_such_table", "42P01"),
    ("SELECT no_such_column FROM {t}_p", "42703"),
])
def test_error_sqlstates(conn, constraint_tables, sql, code):
    e = _err(conn, sql.format(t=constraint_tables))
    assert e.pgcode == code, (sql, e.pgcode, e.pgerror)
    assert e.pgerror.startswith("ERROR:"), e.pgerror
    # the session is still usable afterwards
    cur = conn.cursor()
    cur.execute("SELECT count(*) FROM %s_p" % constraint_tables)
    assert cur.fetchone() == (1,)


def test_error_classes_map_to_psycopg2_exceptions(conn, constraint_tables):
    t = constraint_tables
    assert isinstance(_err(conn, "INSERT INTO %s_p VALUES (1, 'x', 0)" % t), psycopg2.errors.UniqueViolation)
    assert isinstance(_err(conn, "INSERT INTO %s_c VALUES (5, 12345)" % t),
                      psycopg2.errors.ForeignKeyViolation)
    assert isinstance(_err(conn, "SELECT * FROM nope_nope"), psycopg2.errors.UndefinedTable)


def test_foreign_key_delete_restrict(conn, constraint_tables):
    t = constraint_tables
    cur = conn.cursor()
    cur.execute("INSERT INTO %s_c VALUES (1, 1)" % t)
    e = _err(conn, "DELETE FROM %s_p WHERE id = 1" % t)
    assert e.pgcode == "23503"
    cur.execute("DELETE FROM %s_c" % t)


def test_error_response_fields(shared_server):
    c = shared_server.raw()
    res = c.query("SELECT * FROM definitely_missing_table")
    e = res[0].error
    assert e is not None
    f = e.fields
    assert f["S"] == "ERROR" and f.get("V", "ERROR") == "ERROR"
    assert f["C"] == "42P01"
    assert "definitely_missing_table" in f["M"]
    assert c.status == "I"
    c.terminate()


def test_type_oids_and_values(conn, unique_name):
    t = unique_name
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (i integer, bi bigint, si smallint, r real, d double precision, "
                "tx text, vc varchar(10), ch char(3), bl blob, bo boolean, n numeric, "
                "ts timestamp, dt date, j json)" % t)
    cur.execute("INSERT INTO %s VALUES (1, 9000000000, 2, 1.5, 2.25, 'text', 'vc', 'abc', "
                "x'00ff10', true, 12.5, '2024-02-03 04:05:06', '2024-02-03', '{\"a\": 1}')" % t)
    cur.execute("SELECT * FROM %s" % t)
    oids = {d.name: d.type_code for d in cur.description}
    assert oids["i"] in (rawpg.INT4, rawpg.INT8)
    assert oids["bi"] in (rawpg.INT4, rawpg.INT8)
    assert oids["si"] in (rawpg.INT2, rawpg.INT4, rawpg.INT8)
    assert oids["r"] in (rawpg.FLOAT4, rawpg.FLOAT8)
    assert oids["d"] == rawpg.FLOAT8
    assert oids["tx"] == rawpg.TEXT
    assert oids["vc"] in (rawpg.TEXT, rawpg.VARCHAR)
    assert oids["ch"] in (rawpg.TEXT, rawpg.VARCHAR, 1042)
    assert oids["bl"] == rawpg.BYTEA
    assert oids["bo"] == rawpg.BOOL
    assert oids["n"] == rawpg.NUMERIC
    assert oids["ts"] == rawpg.TIMESTAMP
    assert oids["dt"] == rawpg.DATE
    assert oids["j"] in (rawpg.JSON, 3802)
    row = dict(zip([d.name for d in cur.description], cur.fetchone()))
    assert row["i"] == 1 and row["bi"] == 9000000000 and row["si"] == 2
    assert row["r"] == 1.5 and row["d"] == 2.25
    assert row["tx"] == "text" and row["vc"] == "vc" and row["ch"].rstrip() == "abc"
    assert bytes(row["bl"]) == b"\x00\xff\x10"
    assert row["bo"] is True
    assert row["n"] == decimal.Decimal("12.5")
    assert row["ts"] == datetime.datetime(2024, 2, 3, 4, 5, 6)
    assert row["dt"] == datetime.date(2024, 2, 3)
    assert row["j"] == {"a": 1}


def test_psycopg2_parameters_and_nulls(conn, unique_name):
    t = unique_name
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id integer PRIMARY KEY, s text, f double precision, b bytea, "
                "ok boolean)" % t)
    rows = [(1, "it's \"quoted\"", 1.25, b"\x00\x01\x02\xff", True),
            (2, None, None, None, None),
            (3, "ünïcødé ✓ 😀", -0.5, b"", False),
            (4, "back\\slash\ttab\nnewline", 1e300, bytes(range(256)), False)]
    cur.executemany("INSERT INTO %s VALUES (%%s, %%s, %%s, %%s, %%s)" % t,
                    [(a, b_, c, psycopg2.Binary(d) if d is not None else None, e) for a, b_, c, d, e in rows])
    cur.execute("SELECT id, s, f, b, ok FROM %s ORDER BY id" % t)
    got = [(a, b_, c, None if d is None else bytes(d), e) for a, b_, c, d, e in cur.fetchall()]
    assert got == rows


def test_large_result(conn):
    cur = conn.cursor()
    cur.execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) "
                "SELECT x, 'row ' || x FROM c")
    rows = cur.fetchall()
    assert len(rows) == 20000
    assert tag(cur) == "SELECT 20000"
    assert rows[-1] == (20000, "row 20000")


def test_large_value_roundtrip(conn, unique_name):
    t = unique_name
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (v text)" % t)
    big = "x" * (4 * 1024 * 1024)
    cur.execute("INSERT INTO %s VALUES (%%s)" % t, (big,))
    cur.execute("SELECT v, length(v) FROM %s" % t)
    v, n = cur.fetchone()
    assert n == len(big) and v == big


def test_pg_casts(conn):
    cur = conn.cursor()
    cur.execute("SELECT '41'::int + 1, 7::text, '3'::bigint * 2, 1::float8 / 4, 'abc'::varchar")
    assert cur.fetchone() == (42, "7", 6, 0.25, "abc")


def test_select_without_from_types(conn):
    cur = conn.cursor()
    cur.execute("SELECT 1, 'a', 1.5, NULL")
    assert cur.fetchone() == (1, "a", 1.5, None)
