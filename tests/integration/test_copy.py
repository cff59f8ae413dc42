"""COPY FROM STDIN / COPY TO STDOUT in text and CSV format (psycopg2, psql, raw)."""
import io
import os

import psycopg2
import pytest

import rawpg


@pytest.fixture
def table(conn, unique_name):
    cur = conn.cursor()
    cur.execute("CREATE TABLE %s (id integer PRIMARY KEY, name text, note text)" % unique_name)
    yield unique_name
    cur.execute("DROP TABLE %s" % unique_name)


def rows(conn, t):
    cur = conn.cursor()
    cur.execute("SELECT id, name, note FROM %s ORDER BY id" % t)
    return cur.fetchall()


def test_copy_from_stdin_text(conn, table):
    data = ("1\talpha\tplain\n"
            "2\tbe\\tta\tback\\\\slash\n"
            "3\t\\N\tline\\nbreak\n"
            "4\tünïcødé ✓\t\n")
    cur = conn.cursor()
    cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO(data))
    assert cur.rowcount == 4
    assert rows(conn, table) == [(1, "alpha", "plain"), (2, "be\tta", "back\\slash"),
                                 (3, None, "line\nbreak"), (4, "ünïcødé ✓", "")]


def test_copy_to_stdout_text(conn, table):
    cur = conn.cursor()
    cur.execute("INSERT INTO %s VALUES (1, 'a\tb', NULL), (2, 'x\\y', 'new\nline'), (3, '', 'z')" % table)
    out = io.StringIO()
    cur.copy_expert("COPY %s TO STDOUT" % table, out)
    assert out.getvalue() == "1\ta\\tb\t\\N\n2\tx\\\\y\tnew\\nline\n3\t\tz\n"
    assert cur.rowcount == 3


def test_copy_text_roundtrip_with_column_list(conn, table):
    cur = conn.cursor()
    cur.copy_expert("COPY %s (id, name) FROM STDIN" % table, io.StringIO("1\tone\n2\ttwo\n"))
    out = io.StringIO()
    cur.copy_expert("COPY %s (name, id) TO STDOUT" % table, out)
    assert out.getvalue() == "one\t1\ntwo\t2\n"


def test_copy_from_stdin_csv(conn, table):
    data = ('id,name,note\n'
            '1,"comma, inside","quote "" inside"\n'
            '2,,"multi\nline"\n'
            '3,"",plain\n')
    cur = conn.cursor()
    cur.copy_expert("COPY %s FROM STDIN WITH (FORMAT csv, HEADER true)" % table, io.StringIO(data))
    assert cur.rowcount == 3
    # unquoted empty = NULL, quoted empty = empty string
    assert rows(conn, table) == [(1, "comma, inside", 'quote " inside'), (2, None, "multi\nline"),
                                 (3, "", "plain")]


def test_copy_to_stdout_csv(conn, table):
    cur = conn.cursor()
    cur.execute("INSERT INTO %s VALUES (1, 'a,b', 'say \"hi\"'), (2, NULL, ''), (3, 'x', 'l1\nl2')" % table)
    out = io.StringIO()
    cur.copy_expert("COPY %s TO STDOUT WITH (FORMAT csv, HEADER)" % table, out)
    assert out.getvalue() == 'id,name,note\n1,"a,b","say ""hi"""\n2,,""\n3,x,"l1\nl2"\n'


def test_copy_legacy_csv_syntax(conn, table):
    cur = conn.cursor()
    cur.copy_expert("COPY %s FROM STDIN WITH CSV" % table, io.StringIO("1,a,b\n2,c,d\n"))
    out = io.StringIO()
    cur.copy_expert("COPY %s TO STDOUT WITH CSV HEADER" % table, out)
    assert out.getvalue() == "id,name,note\n1,a,b\n2,c,d\n"


def test_copy_csv_delimiter_and_null_options(conn, table):
    cur = conn.cursor()
    cur.copy_expert("COPY %s FROM STDIN WITH (FORMAT csv, DELIMITER ';', NULL 'NULL')" % table,
                    io.StringIO("1;a;NULL\n2;NULL;b\n"))
    assert rows(conn, table) == [(1, "a", None), (2, None, "b")]


def test_copy_query_to_stdout(conn):
    cur = conn.cursor()
    out = io.StringIO()
    cur.copy_expert("COPY (SELECT 1 AS a, 'two' AS b UNION ALL SELECT 3, NULL) TO STDOUT", out)
    assert out.getvalue() == "1\ttwo\n3\t\\N\n"


def test_copy_large(conn, table):
    n = 50000
    data = "".join("%d\tname %d\tnote %d\n" % (i, i, i) for i in range(n))
    cur = conn.cursor()
    cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO(data))
    assert cur.rowcount == n
    cur.execute("SELECT count(*), sum(id) FROM %s" % table)
    assert cur.fetchone() == (n, n * (n - 1) // 2)
    out = io.StringIO()
    cur.copy_expert("COPY %s TO STDOUT" % table, out)
    assert out.getvalue() == data


def test_copy_bad_data_is_atomic(conn, table):
    cur = conn.cursor()
    with pytest.raises(psycopg2.Error) as ei:
        cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO("1\ta\tb\n2\tc\n"))
    assert ei.value.pgcode in ("22P04", "22P02"), (ei.value.pgcode, str(ei.value))
    assert rows(conn, table) == []
    with pytest.raises(psycopg2.Error) as ei:
        cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO("1\ta\tb\n1\tc\td\n"))
    assert ei.value.pgcode == "23505"
    assert rows(conn, table) == []
    # connection is fine afterwards
    cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO("1\ta\tb\n"))
    assert rows(conn, table) == [(1, "a", "b")]


def test_copy_into_missing_table(conn):
    cur = conn.cursor()
    with pytest.raises(psycopg2.Error) as ei:
        cur.copy_expert("COPY no_such_table_copy FROM STDIN", io.StringIO("1\n"))
    assert ei.value.pgcode == "42P01"


def test_copy_fail_from_client(shared_server, table):
    c = shared_server.raw()
    c.send_msg("Q", rawpg.cstr("COPY %s FROM STDIN" % table))
    t, p = c.recv_msg()
    assert t == "G", (t, p)   # CopyInResponse
    c.copy_data(b"1\ta\tb\n")
    c.copy_fail("client gave up")
    msgs = c.read_until_ready()
    errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
    assert errs and errs[0]["C"] == "57014", msgs
    assert c.status == "I"
    assert c.query1("SELECT count(*) FROM %s" % table).text_rows() == [["0"]]
    c.terminate()


def test_copy_raw_protocol_messages(shared_server, table):
    c = shared_server.raw()
    c.send_msg("Q", rawpg.cstr("COPY %s FROM STDIN" % table))
    t, p = c.recv_msg()
    assert t == "G"
    # CopyData boundaries need not match rows
    c.copy_data(b"1\tsp")
    c.copy_data(b"lit\tro")
    c.copy_data(b"w\n2\tx\ty\n")
    c.copy_done()
    msgs = c.read_until_ready()
    assert [m[0] for m in msgs] == ["C", "Z"], msgs
    assert msgs[0][1].rstrip(b"\0") == b"COPY 2"
    c.send_msg("Q", rawpg.cstr("COPY %s TO STDOUT" % table))
    msgs = c.read_until_ready()
    assert [m[0] for m in msgs][0] == "H"   # CopyOutResponse
    data = b"".join(p for t, p in msgs if t == "d")
    assert data == b"1\tsplit\trow\n2\tx\ty\n"
    assert [p for t, p in msgs if t == "C"][0].rstrip(b"\0") == b"COPY 2"
    c.terminate()



@pytest.mark.parametrize("extended", [False, True])
def test_copy_in_unexpected_message_ends_connection(shared_server, table, extended):
    """A message other than CopyData/CopyDone/CopyFail/Flush/Sync during
    copy-in: PostgreSQL 15 answers ERROR 08P01 "unexpected message type
    0x51 during COPY from stdin", then FATAL 08P01 (it has lost track of
    the message stream) and closes the connection; the COPY's rows are not
    kept. orbitd failed the COPY and carried on with the message."""
    c = shared_server.raw()
    if extended:
        c.parse("COPY %s FROM STDIN" % table)
        c.bind()
        c.execute()
        c.flush()
        assert [c.recv_msg()[0] for _ in range(3)] == ["1", "2", "G"]
    else:
        c.send_msg("Q", rawpg.cstr("COPY %s FROM STDIN" % table))
        assert c.recv_msg()[0] == "G"
    c.copy_data(b"1\ta\tb\n")
    c.send_msg("Q", rawpg.cstr("SELECT 1"))
    errs = []
    while True:
        try:
            t, p = c.recv_msg(timeout=5)
        except EOFError:
            break
        assert t == "E", (t, p)
        errs.append(rawpg.parse_fields(p))
    assert [(e["S"], e["C"]) for e in errs] == [("ERROR", "08P01"), ("FATAL", "08P01")], errs
    assert errs[0]["M"] == "unexpected message type 0x51 during COPY from stdin"
    c.close()
    other = shared_server.raw()
    assert other.query1("SELECT count(*) FROM %s" % table).text_rows() == [["0"]]
    other.terminate()

def test_copy_from_stdin_extended_protocol_sync_ignored(shared_server, table):
    """COPY FROM STDIN through the extended protocol the way libpq's
    PQexecParams runs it: Parse/Bind/Describe/Execute/Sync in one go, so the
    Sync arrives during copy-in, then CopyData, CopyDone and another Sync.
    PostgreSQL ignores Sync (and Flush) during copy-in; orbitd failed the
    COPY ("Sync received during COPY")."""
    c = shared_server.raw()
    try:
        c.parse("COPY %s FROM STDIN" % table)
        c.bind()
        c.describe("P")
        c.execute()
        c.sync()
        assert [c.recv_msg()[0] for _ in range(4)] == ["1", "2", "n", "G"]
        c.copy_data(b"1\ta\tb\n")
        c.flush()
        c.copy_data(b"2\tc\td\n")
        c.copy_done()
        c.sync()
        msgs = c.read_until_ready()
        assert [t for t, _ in msgs] == ["C", "Z"], msgs
        assert msgs[0][1].rstrip(b"\0") == b"COPY 2"
        assert c.status == "I"
        assert c.query1("SELECT count(*) FROM %s" % table).text_rows() == [["2"]]
        # an error in the data: the rest is skipped until the Sync after the COPY
        c.parse("COPY %s FROM STDIN" % table)
        c.bind()
        c.execute()
        c.sync()
        assert [c.recv_msg()[0] for _ in range(3)] == ["1", "2", "G"]
        c.copy_data(b"3\tonly-two-columns\n")
        c.copy_done()
        c.sync()
        msgs = c.read_until_ready()
        assert [t for t, _ in msgs] == ["E", "Z"], msgs
        assert c.status == "I"
        assert c.query1("SELECT count(*) FROM %s" % table).text_rows() == [["2"]]
    finally:
        c.close()


def test_copy_in_transaction(conn, table):
    cur = conn.cursor()
    cur.execute("BEGIN")
    cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO("1\ta\tb\n"))
    cur.execute("ROLLBACK")
    assert rows(conn, table) == []


def test_psql_copy_file_roundtrip(shared_server, table, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("1,one,x\n2,two,\"y,z\"\n")
    dst = tmp_path / "out.csv"
    shared_server.psql("-c", "\\copy %s FROM '%s' WITH (FORMAT csv)" % (table, src))
    shared_server.psql("-c", "\\copy %s TO '%s' WITH (FORMAT csv)" % (table, dst))
    assert dst.read_text() == "1,one,x\n2,two,\"y,z\"\n"
    p = shared_server.psql("-At", "-c", "SELECT count(*) FROM %s" % table)
    assert p.stdout.strip() == "2"


def test_psql_copy_stdin_text(shared_server, table):
    p = shared_server.psql("-c", "COPY %s FROM STDIN" % table, input="5\tfive\tv\n6\tsix\t\\N\n")
    assert "COPY 2" in p.stdout
    p = shared_server.psql("-c", "COPY %s TO STDOUT" % table)
    assert p.stdout == "5\tfive\tv\n6\tsix\t\\N\n"
