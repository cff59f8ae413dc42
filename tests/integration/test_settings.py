"""SET / SHOW / RESET, statement_timeout, idle_in_transaction_session_timeout,
CancelRequest, and the built-in functions clients call."""
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

import rawpg

# A query that runs for a long time in SQLite (a recursive CTE counting to 1e9).
SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c")


def show(conn, name):
    cur = conn.cursor()
    cur.execute("SHOW %s" % name)
    return cur.fetchone()[0]


def test_set_show_reset_application_name(conn):
    cur = conn.cursor()
    cur.execute("SET application_name = 'orbit-test'")
    assert show(conn, "application_name") == "orbit-test"
    cur.execute("SET application_name TO 'second'")
    assert show(conn, "application_name") == "second"
    cur.execute("RESET application_name")
    assert show(conn, "application_name") == ""


def test_set_reports_parameter_status(shared_server):
    c = shared_server.raw()
    c.query1("SET application_name = 'reported'")
    assert c.params["application_name"] == "reported"
    c.terminate()


def test_show_statement_timeout_formats(conn):
    cur = conn.cursor()
    assert show(conn, "statement_timeout") == "0"
    cur.execute("SET statement_timeout = 1500")
    assert show(conn, "statement_timeout") == "1500ms"
    cur.execute("SET statement_timeout = '2s'")
    assert show(conn, "statement_timeout") in ("2s", "2000ms")
    cur.execute("RESET statement_timeout")
    assert show(conn, "statement_timeout") == "0"


def test_show_fixed_parameters(conn):
    assert show(conn, "server_encoding") == "UTF8"
    assert show(conn, "client_encoding") == "UTF8"
    assert show(conn, "standard_conforming_strings") == "on"
    assert show(conn, "integer_datetimes") == "on"
    assert show(conn, "transaction_read_only") == "off"
    assert show(conn, "default_transaction_read_only") == "off"
    assert show(conn, "idle_in_transaction_session_timeout") == "0"
    v = show(conn, "server_version")
    assert v and v[0].isdigit()
    assert show(conn, "DateStyle").startswith("ISO")
    assert show(conn, "TimeZone")



def test_show_column_named_as_postgresql(shared_server):
    """SHOW's column is the setting's name as PostgreSQL spells it
    (TimeZone, DateStyle), whatever case was asked for; SHOW ALL lists
    those names; Describe of a SHOW statement says the same."""
    c = shared_server.raw()
    try:
        for q, name in (("SHOW timezone", "TimeZone"), ("SHOW TIME ZONE", "TimeZone"),
                        ("SHOW datestyle", "DateStyle"), ("SHOW APPLICATION_NAME", "application_name"),
                        ("SHOW transaction isolation level", "transaction_isolation")):
            assert c.query1(q).columns[0]["name"] == name, q
        names = [r[0] for r in c.query1("SHOW ALL").text_rows()]
        assert "TimeZone" in names and "DateStyle" in names and "timezone" not in names
        c.parse("SHOW timezone")
        c.describe("S")
        c.sync()
        msgs = c.read_until_ready()
        assert [t for t, _ in msgs] == ["1", "t", "T", "Z"], msgs
        assert rawpg.parse_row_description(msgs[2][1])[0]["name"] == "TimeZone"
    finally:
        c.close()


@pytest.mark.parametrize("value,shown", [("1.5s", "1500ms"), ("1.5ms", "2ms"), ("2.5", "2ms"), ("0.4ms", "0"),
                                         ("1500.7", "1501ms"), ("1.5min", "90s"), ("600us", "1ms"),
                                         ("' 3 s '", "3s"), ("1e3", "1s")])
def test_fractional_durations(conn, value, shown):
    """PostgreSQL takes durations with fractions (and us) and rounds them to
    the nearest ms, half to even; orbitd refused '1.5s'."""
    cur = conn.cursor()
    cur.execute("SET statement_timeout = %s" % (value if value.startswith("'") or not value[-1].isalpha()
                                                else "'%s'" % value))
    assert show(conn, "statement_timeout") == shown
    cur.execute("RESET statement_timeout")


def test_duration_out_of_range(conn):
    cur = conn.cursor()
    for v in ("'-1'", "'3000000000'", "'1h30min'"):
        with pytest.raises(psycopg2.Error) as ei:
            cur.execute("SET statement_timeout = %s" % v)
        assert ei.value.pgcode == "22023"
    assert show(conn, "statement_timeout") == "0"

def test_set_client_encoding_utf8(conn):
    cur = conn.cursor()
    cur.execute("SET client_encoding = 'UTF8'")
    cur.execute("SET client_encoding TO 'utf8'")
    assert show(conn, "client_encoding") == "UTF8"


def test_reset_all(conn):
    cur = conn.cursor()
    cur.execute("SET application_name = 'a'")
    cur.execute("SET statement_timeout = 1234")
    cur.execute("RESET ALL")
    assert show(conn, "application_name") == ""
    assert show(conn, "statement_timeout") == "0"


def test_set_local_and_set_are_transactional(shared_server):
    """SET LOCAL lasts until the end of the transaction; a SET made in a
    transaction that rolls back (explicit, failed, or the implicit one of a
    multi-statement query) is undone; a commit keeps the last plain SET.
    orbitd kept every one of them for the rest of the session (a SET LOCAL
    statement_timeout applied to every later statement)."""
    c = shared_server.raw()
    try:
        def val(name):
            return c.query1("SHOW %s" % name).text_rows()[0][0]

        c.query1("BEGIN")
        c.query1("SET LOCAL statement_timeout = '1s'")
        assert val("statement_timeout") == "1s"
        c.query1("COMMIT")
        assert val("statement_timeout") == "0"

        c.query1("BEGIN")
        c.query1("SET statement_timeout = '2s'")
        c.query1("ROLLBACK")
        assert val("statement_timeout") == "0"

        c.query1("SET application_name = 'a'")
        c.query1("BEGIN")
        c.query1("SET LOCAL application_name = 'b'")
        assert c.params["application_name"] == "b"
        c.query1("SET application_name = 'c'")
        c.query1("SET LOCAL application_name = 'd'")
        assert val("application_name") == "d"
        c.query1("COMMIT")
        assert val("application_name") == "c"
        assert c.params["application_name"] == "c"  # ParameterStatus for the change back

        c.query1("BEGIN")
        c.query1("RESET ALL")
        assert val("application_name") == ""
        c.query("SELECT no_such_column")
        c.query1("ROLLBACK")
        assert val("application_name") == "c"

        res = c.query("SET statement_timeout = '3s'; SELECT no_such_column")
        assert res[-1].error is not None
        assert val("statement_timeout") == "0"
        c.query("SET statement_timeout = '4s'; SET LOCAL statement_timeout = '5s'; SELECT 1")
        assert val("statement_timeout") == "4s"
        c.query1("RESET ALL")
        assert val("statement_timeout") == "0" and val("application_name") == ""
    finally:
        c.close()



@pytest.mark.parametrize("script,expect", [
    # (statements; the SHOW application_name results PostgreSQL 15 gives)
    ("BEGIN; SAVEPOINT a; SET application_name='x1'; ROLLBACK TO a; SHOW; COMMIT; SHOW", ["x0", "x0"]),
    ("BEGIN; SET application_name='x1'; SAVEPOINT a; SET LOCAL application_name='x2'; ROLLBACK TO a; SHOW;"
     " COMMIT; SHOW", ["x1", "x1"]),
    ("BEGIN; SET LOCAL application_name='x1'; SAVEPOINT a; SET application_name='x2'; ROLLBACK TO a; SHOW;"
     " COMMIT; SHOW", ["x1", "x0"]),
    ("BEGIN; SAVEPOINT a; SAVEPOINT b; SET application_name='x2'; RELEASE b; SHOW; ROLLBACK TO a; SHOW;"
     " SET application_name='x3'; COMMIT; SHOW", ["x2", "x0", "x3"]),
    ("BEGIN; SAVEPOINT a; SET application_name='x1'; SAVEPOINT b; SET application_name='x2'; ROLLBACK TO b;"
     " SHOW; RELEASE a; COMMIT; SHOW", ["x1", "x1"]),
    ("BEGIN; SAVEPOINT a; SET application_name='x1'; SELECT 1/0; ROLLBACK TO a; SHOW;"
     " SET application_name='x5'; ROLLBACK TO a; SHOW; COMMIT; SHOW", ["x0", "x0", "x0"]),
])
def test_rollback_to_savepoint_undoes_set(shared_server, script, expect):
    """ROLLBACK TO SAVEPOINT puts back the settings as they were at the
    savepoint (SET and SET LOCAL alike; RELEASE hands the changes to the
    enclosing savepoint), as in PostgreSQL; orbitd kept them."""
    c = shared_server.raw()
    try:
        c.query1("SET application_name = 'x0'")
        shown = []
        for stmt in script.split("; "):
            if stmt == "SHOW":
                shown.append(c.query1("SHOW application_name").text_rows()[0][0])
            else:
                c.query(stmt)
        assert shown == expect
        assert c.params["application_name"] == expect[-1]  # ParameterStatus followed
        assert c.status == "I"
    finally:
        c.close()

def test_unknown_parameter_42704(conn):
    cur = conn.cursor()
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute("SHOW no_such_parameter")
    assert ei.value.pgcode == "42704"
    with pytest.raises(psycopg2.Error) as ei:
        cur.execute("SET no_such_parameter = 1")
    assert ei.value.pgcode == "42704"


def test_settings_are_per_session(shared_server):
    a = shared_server.connect()
    b = shared_server.connect()
    a.cursor().execute("SET application_name = 'only-a'")
    a.cursor().execute("SET statement_timeout = 777")
    assert show(b, "application_name") == ""
    assert show(b, "statement_timeout") == "0"
    a.close()
    b.close()


def test_set_options_in_startup_packet(shared_server):
    c = shared_server.connect(options="-c statement_timeout=4321")
    assert show(c, "statement_timeout") == "4321ms"
    c.close()


def test_builtin_functions(conn):
    cur = conn.cursor()
    cur.execute("SELECT version()")
    v = cur.fetchone()[0]
    assert isinstance(v, str) and v
    cur.execute("SELECT current_user, current_database(), pg_is_in_recovery(), pg_backend_pid()")
    user, db, recovery, pid = cur.fetchone()
    assert user == "orbit"
    assert db == "orbit"
    assert recovery is False
    assert pid == conn.get_backend_pid()
    cur.execute("SELECT session_user")
    assert cur.fetchone()[0] == "orbit"


def test_backend_pid_unique_per_session(shared_server):
    conns = [shared_server.connect() for _ in range(5)]
    pids = set()
    for c in conns:
        cur = c.cursor()
        cur.execute("SELECT pg_backend_pid()")
        pids.add(cur.fetchone()[0])
        c.close()
    assert len(pids) == 5


# ------------------------------------------------------------------ timeouts and cancel

@pytest.mark.timeout(60)
def test_statement_timeout_57014(conn):
    cur = conn.cursor()
    cur.execute("SET statement_timeout = 300")
    t0 = time.monotonic()
    with pytest.raises(psycopg2.errors.QueryCanceled) as ei:
        cur.execute(SLOW)
    elapsed = time.monotonic() - t0
    assert ei.value.pgcode == "57014"
    assert elapsed < 5, "statement_timeout of 300 ms took %.1f s" % elapsed
    # the session keeps working
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    cur.execute("RESET statement_timeout")


@pytest.mark.timeout(60)
def test_statement_timeout_in_transaction_fails_block(conn):
    cur = conn.cursor()
    cur.execute("SET statement_timeout = 200")
    cur.execute("BEGIN")
    with pytest.raises(psycopg2.errors.QueryCanceled):
        cur.execute(SLOW)
    with pytest.raises(psycopg2.errors.InFailedSqlTransaction):
        cur.execute("SELECT 1")
    cur.execute("ROLLBACK")
    cur.execute("SELECT 1")


@pytest.mark.timeout(60)
def test_statement_timeout_extended(shared_server):
    c = shared_server.raw()
    c.query1("SET statement_timeout = 300")
    t0 = time.monotonic()
    msgs = c.prepared(SLOW)
    errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
    assert errs and errs[0]["C"] == "57014", msgs
    assert time.monotonic() - t0 < 5
    assert c.query1("SELECT 2").text_rows() == [["2"]]
    c.terminate()


@pytest.mark.timeout(60)
def test_cancel_psycopg2(shared_server):
    c = shared_server.connect()
    cur = c.cursor()
    timer = threading.Timer(0.5, c.cancel)
    t0 = time.monotonic()
    timer.start()
    try:
        with pytest.raises(psycopg2.errors.QueryCanceled) as ei:
            cur.execute(SLOW)
    finally:
        timer.cancel()
    assert ei.value.pgcode == "57014"
    assert time.monotonic() - t0 < 10
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()


@pytest.mark.timeout(60)
def test_cancel_request_raw_wrong_key_ignored(shared_server):
    c = shared_server.raw()
    c.send_msg("Q", rawpg.cstr(SLOW))
    time.sleep(0.3)
    # a wrong key (or another session's pid) must not cancel anything
    rawpg.cancel(shared_server.host, shared_server.port, c.backend_pid, c.secret_key ^ 0x5a5a5a5a)
    other = shared_server.raw()
    rawpg.cancel(shared_server.host, shared_server.port, other.backend_pid, other.secret_key)
    assert not c.pending(1.0), "query ended after a CancelRequest with the wrong key"
    # the right key cancels
    rawpg.cancel(shared_server.host, shared_server.port, c.backend_pid, c.secret_key)
    msgs = c.read_until_ready(timeout=10)
    errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
    assert errs and errs[0]["C"] == "57014", msgs
    assert c.status == "I"
    assert c.query1("SELECT 3").text_rows() == [["3"]]
    # the other session was not affected
    assert other.query1("SELECT 4").text_rows() == [["4"]]
    c.terminate()
    other.terminate()


def test_cancel_idle_session_is_harmless(shared_server):
    c = shared_server.raw()
    rawpg.cancel(shared_server.host, shared_server.port, c.backend_pid, c.secret_key)
    time.sleep(0.2)
    assert c.query1("SELECT 5").text_rows() == [["5"]]
    c.terminate()


@pytest.mark.timeout(60)
def test_idle_in_transaction_session_timeout(shared_server, unique_name):
    t = unique_name
    setup = shared_server.connect()
    setup.cursor().execute("CREATE TABLE %s (id integer PRIMARY KEY)" % t)
    c = shared_server.raw()
    c.query1("SET idle_in_transaction_session_timeout = 500")
    c.query1("BEGIN")
    c.query1("INSERT INTO %s VALUES (1)" % t)
    t0 = time.monotonic()
    # the server sends FATAL 25P03 and closes the session
    t_, p = c.recv_msg(timeout=10)
    assert t_ == "E", (t_, p)
    f = rawpg.parse_fields(p)
    assert f["C"] == "25P03" and f["S"] == "FATAL", f
    assert c.is_closed(5)
    assert time.monotonic() - t0 < 5
    c.close()
    # its transaction was rolled back and its locks released: others can write
    cur = setup.cursor()
    cur.execute("SELECT count(*) FROM %s" % t)
    assert cur.fetchone() == (0,)
    cur.execute("INSERT INTO %s VALUES (1)" % t)
    setup.close()



@pytest.mark.timeout(60)
def test_idle_in_transaction_timeout_waits_for_ready_for_query(shared_server):
    """PostgreSQL starts the idle-in-transaction timer only when it sends
    ReadyForQuery in a transaction block: a client waiting after a Flush
    (no Sync) is not idle. orbitd counted that time too and killed it."""
    c = shared_server.raw()
    c.query1("SET idle_in_transaction_session_timeout = 300")
    c.query1("BEGIN")
    c.parse("SELECT 1")
    c.bind()
    c.execute()
    c.flush()
    assert [c.recv_msg()[0] for _ in range(4)] == ["1", "2", "D", "C"]
    time.sleep(1.0)
    c.sync()
    assert c.read_until_ready()[-1][0] == "Z" and c.status == "T"
    # after that ReadyForQuery the timer runs
    t_, p = c.recv_msg(timeout=10)
    assert t_ == "E" and rawpg.parse_fields(p)["C"] == "25P03", (t_, p)
    assert c.is_closed(5)
    c.close()

@pytest.mark.timeout(60)
def test_idle_in_transaction_timeout_psycopg2(shared_server):
    c = shared_server.connect(autocommit=False)
    cur = c.cursor()
    cur.execute("SET idle_in_transaction_session_timeout = 300")
    cur.execute("SELECT 1")   # psycopg2 opened a transaction
    time.sleep(1.5)
    with pytest.raises(psycopg2.OperationalError):
        cur.execute("SELECT 1")
    c.close()


def test_idle_outside_transaction_not_timed_out(shared_server):
    c = shared_server.raw()
    c.query1("SET idle_in_transaction_session_timeout = 200")
    time.sleep(0.8)
    assert c.query1("SELECT 1").text_rows() == [["1"]]
    c.terminate()


@pytest.mark.timeout(60)
def test_statement_timeout_from_config_file(orbit_factory, tmp_path):
    cfg = tmp_path / "orbit.conf"
    cfg.write_text("statement_timeout = 300\n")
    s = orbit_factory(config=str(cfg))
    c = s.connect()
    assert show(c, "statement_timeout") == "300ms"
    with pytest.raises(psycopg2.errors.QueryCanceled):
        c.cursor().execute(SLOW)
    c.close()
