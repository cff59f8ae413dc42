"""Transactions: BEGIN/COMMIT/ROLLBACK, savepoints, failed state, ReadyForQuery status."""
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

import rawpg
from harness import run_threads


@pytest.fixture
def raw(shared_server):
    c = shared_server.raw()
    yield c
    c.close()


@pytest.fixture
def table(id_table):
    return id_table


def ids(conn, t):
    cur = conn.cursor()
    cur.execute("SELECT id FROM %s ORDER BY id" % t)
    return [r[0] for r in cur.fetchall()]


def test_ready_for_query_status(raw, table):
    assert raw.status == "I"
    assert raw.query1("BEGIN").tag == "BEGIN"
    assert raw.status == "T"
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    assert raw.status == "T"
    res = raw.query("INSERT INTO %s VALUES (1, 'dup')" % table)
    assert res[0].error.code == "23505"
    assert raw.status == "E"
    # every later statement fails with 25P02 until the block ends
    for sql in ("SELECT 1", "INSERT INTO %s VALUES (2, 'b')" % table, "SAVEPOINT x"):
        res = raw.query(sql)
        assert res[0].error is not None and res[0].error.code == "25P02", (sql, res)
        assert raw.status == "E"
    assert raw.query1("ROLLBACK").tag == "ROLLBACK"
    assert raw.status == "I"
    assert raw.query1("SELECT count(*) FROM %s" % table).text_rows() == [["0"]]


def test_commit_in_failed_transaction_rolls_back(raw, table):
    raw.query1("BEGIN")
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    raw.query("SELECT * FROM no_such_table_xyz")
    assert raw.status == "E"
    r = raw.query1("COMMIT")
    assert r.tag == "ROLLBACK"
    assert raw.status == "I"
    assert raw.query1("SELECT count(*) FROM %s" % table).text_rows() == [["0"]]


def test_ready_for_query_status_extended(raw, table):
    raw.parse("BEGIN")
    raw.bind()
    raw.execute()
    raw.sync()
    raw.read_until_ready()
    assert raw.status == "T"
    raw.parse("INSERT INTO %s VALUES (1, 'x')" % table)
    raw.bind()
    raw.execute()
    raw.parse("INSERT INTO %s VALUES (1, 'x')" % table)
    raw.bind()
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert [t for t, _ in msgs] == ["1", "2", "C", "1", "2", "E", "Z"], msgs
    assert raw.status == "E"
    raw.parse("SELECT 1")
    raw.sync()
    msgs = raw.read_until_ready()
    assert rawpg.parse_fields([p for t, p in msgs if t == "E"][0])["C"] == "25P02"
    raw.parse("ROLLBACK")
    raw.bind()
    raw.execute()
    raw.sync()
    raw.read_until_ready()
    assert raw.status == "I"


def test_commit_and_rollback_psycopg2(shared_server, table):
    c = shared_server.connect(autocommit=False)
    cur = c.cursor()
    cur.execute("INSERT INTO %s VALUES (1, 'a')" % table)
    c.commit()
    cur.execute("INSERT INTO %s VALUES (2, 'b')" % table)
    c.rollback()
    assert ids(c, table) == [1]
    c.close()


def test_start_transaction_and_end(raw, table):
    assert raw.query1("START TRANSACTION").tag == "START TRANSACTION"
    assert raw.status == "T"
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    assert raw.query1("END").tag == "COMMIT"
    assert raw.status == "I"
    assert raw.query1("BEGIN TRANSACTION").tag == "BEGIN"
    raw.query1("INSERT INTO %s VALUES (2, 'b')" % table)
    assert raw.query1("ABORT").tag == "ROLLBACK"
    assert raw.query1("SELECT id FROM %s" % table).text_rows() == [["1"]]


def test_commit_outside_transaction_warns(raw):
    r = raw.query1("COMMIT")
    assert r.tag == "COMMIT"
    assert raw.status == "I"
    assert any(n.get("C") == "25P01" for n in raw.notices), raw.notices
    raw.notices.clear()
    raw.query1("BEGIN")
    r = raw.query1("BEGIN")
    assert r.tag == "BEGIN" and raw.status == "T"
    assert any(n.get("C") == "25001" for n in raw.notices), raw.notices
    raw.query1("ROLLBACK")



def test_transaction_control_in_implicit_block(raw, table):
    """In a multi-statement Query (one implicit transaction), PostgreSQL 15
    answers COMMIT and ROLLBACK with WARNING 25P01 "there is no transaction
    in progress" and ends the implicit transaction there (ROLLBACK undoes
    what came before it; the statements after it run in a new one), and
    refuses SAVEPOINT, RELEASE and ROLLBACK TO with 25P01. orbitd said
    nothing and ran the savepoint commands."""
    def run(q):
        raw.notices.clear()
        res = raw.query(q)
        return [r.error.code if r.error else r.tag for r in res], [n["C"] for n in raw.notices]

    assert run("SELECT 1; ROLLBACK") == (["SELECT 1", "ROLLBACK"], ["25P01"])
    assert run("ROLLBACK; SELECT 1") == (["ROLLBACK", "SELECT 1"], ["25P01"])
    assert run("SELECT 1; COMMIT; COMMIT") == (["SELECT 1", "COMMIT", "COMMIT"], ["25P01", "25P01"])
    assert run("BEGIN; SELECT 1; ROLLBACK; ROLLBACK") == (["BEGIN", "SELECT 1", "ROLLBACK", "ROLLBACK"], ["25P01"])
    assert run("INSERT INTO %s VALUES (1, 'a'); ROLLBACK; INSERT INTO %s VALUES (2, 'b')" % (table, table)) == (
        ["INSERT 0 1", "ROLLBACK", "INSERT 0 1"], ["25P01"])
    assert run("INSERT INTO %s VALUES (3, 'c'); COMMIT; INSERT INTO %s VALUES (3, 'dup')" % (table, table)) == (
        ["INSERT 0 1", "COMMIT", "23505"], ["25P01"])
    assert raw.status == "I"
    assert raw.query1("SELECT id FROM %s ORDER BY id" % table).text_rows() == [["2"], ["3"]]
    for q in ("SELECT 1; SAVEPOINT a", "SAVEPOINT a; SELECT 1", "SELECT 1; RELEASE a", "SELECT 1; ROLLBACK TO a"):
        codes, _ = run(q)
        assert codes[-1] == "25P01", (q, codes)
        assert raw.status == "I"

def test_savepoints(shared_server, table):
    c = shared_server.connect()
    cur = c.cursor()
    cur.execute("BEGIN")
    cur.execute("INSERT INTO %s VALUES (1, 'a')" % table)
    cur.execute("SAVEPOINT s1")
    assert cur.statusmessage == "SAVEPOINT"
    cur.execute("INSERT INTO %s VALUES (2, 'b')" % table)
    cur.execute("SAVEPOINT s2")
    cur.execute("INSERT INTO %s VALUES (3, 'c')" % table)
    cur.execute("ROLLBACK TO SAVEPOINT s2")
    assert cur.statusmessage == "ROLLBACK"
    cur.execute("INSERT INTO %s VALUES (4, 'd')" % table)
    cur.execute("RELEASE SAVEPOINT s1")
    assert cur.statusmessage == "RELEASE"
    cur.execute("COMMIT")
    assert ids(c, table) == [1, 2, 4]
    c.close()


def test_rollback_to_savepoint_leaves_failed_state(raw, table):
    raw.query1("BEGIN")
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    raw.query1("SAVEPOINT sp")
    res = raw.query("INSERT INTO %s VALUES (1, 'dup')" % table)
    assert res[0].error.code == "23505"
    assert raw.status == "E"
    assert raw.query1("ROLLBACK TO sp").tag == "ROLLBACK"
    assert raw.status == "T"
    raw.query1("INSERT INTO %s VALUES (2, 'b')" % table)
    raw.query1("COMMIT")
    assert raw.status == "I"
    assert raw.query1("SELECT id FROM %s ORDER BY id" % table).text_rows() == [["1"], ["2"]]


def test_savepoint_outside_transaction_is_error(raw):
    res = raw.query("SAVEPOINT nope")
    assert res[0].error is not None and res[0].error.code == "25P01", res
    assert raw.status == "I"


def test_rollback_to_unknown_savepoint(raw):
    raw.query1("BEGIN")
    res = raw.query("ROLLBACK TO SAVEPOINT nosuch")
    assert res[0].error.code == "3B001", res
    assert raw.status == "E"
    raw.query1("ROLLBACK")


def test_isolation_uncommitted_not_visible(shared_server, table):
    a = shared_server.connect(autocommit=False)
    b = shared_server.connect()
    a.cursor().execute("INSERT INTO %s VALUES (1, 'a')" % table)
    assert ids(b, table) == []
    a.commit()
    assert ids(b, table) == [1]
    a.close()
    b.close()


def test_multi_statement_with_explicit_transaction(raw, table):
    res = raw.query("BEGIN; INSERT INTO %s VALUES (1, 'a'); COMMIT; INSERT INTO %s VALUES (1, 'dup')"
                    % (table, table))
    assert [r.tag for r in res[:3]] == ["BEGIN", "INSERT 0 1", "COMMIT"]
    assert res[3].error.code == "23505"
    assert raw.status == "I"
    assert raw.query1("SELECT count(*) FROM %s" % table).text_rows() == [["1"]]


def test_read_only_transaction(raw, table):
    raw.query1("BEGIN")
    raw.query1("SET transaction_read_only = on")
    assert raw.query1("SHOW transaction_read_only").text_rows() == [["on"]]
    res = raw.query("INSERT INTO %s VALUES (1, 'a')" % table)
    assert res[0].error is not None and res[0].error.code == "25006", res
    raw.query1("ROLLBACK")
    assert raw.query1("SHOW transaction_read_only").text_rows() == [["off"]]
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)


def test_default_transaction_read_only_outside_blocks(raw, table):
    """default_transaction_read_only = on makes every transaction read-only,
    an autocommit statement's included (orbitd let single statements and
    extended-protocol Executes write); SET transaction_read_only / SET
    TRANSACTION outside a block has no effect (orbitd made the session
    read-only until its next transaction block ended)."""
    raw.query1("SET transaction_read_only = on")
    assert raw.query1("SHOW transaction_read_only").text_rows() == [["off"]]
    raw.query1("SET TRANSACTION READ ONLY")
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    raw.query1("SET default_transaction_read_only = on")
    assert raw.query1("SHOW transaction_read_only").text_rows() == [["on"]]
    res = raw.query("INSERT INTO %s VALUES (2, 'b')" % table)
    assert res[0].error is not None and res[0].error.code == "25006", res
    msgs = raw.prepared("INSERT INTO %s VALUES (3, 'c')" % table)
    assert [rawpg.ServerError(rawpg.parse_fields(p)).code for t, p in msgs if t == "E"] == ["25006"], msgs
    res = raw.query("SELECT 1; BEGIN; INSERT INTO %s VALUES (4, 'd')" % table)
    assert res[-1].error is not None and res[-1].error.code == "25006", res
    raw.query1("ROLLBACK")
    raw.query1("BEGIN READ WRITE")
    raw.query1("INSERT INTO %s VALUES (5, 'e')" % table)
    raw.query1("COMMIT")
    raw.query1("SET default_transaction_read_only = off")
    raw.query1("INSERT INTO %s VALUES (6, 'f')" % table)
    assert raw.query1("SELECT id FROM %s ORDER BY id" % table).text_rows() == [["1"], ["5"], ["6"]]


def test_transaction_survives_many_statements(shared_server, table):
    c = shared_server.connect(autocommit=False)
    cur = c.cursor()
    for i in range(1000):
        cur.execute("INSERT INTO %s VALUES (%d, 'v')" % (table, i))
    c.commit()
    cur.execute("SELECT count(*) FROM %s" % table)
    assert cur.fetchone() == (1000,)
    c.close()


def test_concurrent_writers_all_commit(shared_server, table):
    """Several sessions write concurrently in explicit transactions; every
    transaction either commits or fails with a retryable SQLSTATE."""
    errors, done = [], []

    def worker(n):
        c = shared_server.connect(autocommit=False)
        cur = c.cursor()
        for i in range(50):
            key = n * 1000 + i
            while True:
                try:
                    cur.execute("INSERT INTO %s VALUES (%d, 'w')" % (table, key))
                    cur.execute("UPDATE %s SET v = 'u' WHERE id = %d" % (table, key))
                    c.commit()
                    done.append(key)
                    break
                except psycopg2.Error as e:
                    c.rollback()
                    if e.pgcode not in ("40001", "55P03", "40P01"):
                        errors.append((e.pgcode, str(e)))
                        return
        c.close()

    run_threads(worker, 6, 90)
    assert not errors, errors
    c = shared_server.connect()
    assert sorted(ids(c, table)) == sorted(done)
    assert len(done) == 300
    c.close()


def test_idle_session_holds_no_lock(shared_server, table):
    """An open read transaction in one session does not block writers in others
    for long, and a write transaction blocks others only until it ends."""
    a = shared_server.connect(autocommit=False)
    a.cursor().execute("INSERT INTO %s VALUES (1, 'a')" % table)
    result = {}

    def writer():
        b = shared_server.connect()
        t0 = time.monotonic()
        try:
            b.cursor().execute("INSERT INTO %s VALUES (2, 'b')" % table)
            result["ok"] = time.monotonic() - t0
        except psycopg2.Error as e:
            result["err"] = e.pgcode
        b.close()

    th = threading.Thread(target=writer)
    th.start()
    time.sleep(0.3)
    a.commit()
    th.join(30)
    assert not th.is_alive()
    # either waited for the lock and succeeded, or failed with a lock SQLSTATE
    assert "ok" in result or result.get("err") in ("40001", "55P03"), result
    a.close()
