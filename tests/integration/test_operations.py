"""What an operator relies on outside SQL: SIGHUP reloads settings and
reopens the log file, several I/O loops serve sessions, the admission
queue times out with 53000, and a statement compiled for one session is
reused by another (the statement cache is per pooled connection)."""
import os
import signal
import threading
import time

import psycopg2
import psycopg2.errors
import pytest

import rawpg

SLOW = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) FROM c")


def scalar(conn, sql):
    cur = conn.cursor()
    cur.execute(sql)
    return cur.fetchone()[0]


def wait_for(what, fn, timeout=10):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


@pytest.mark.timeout(60)
def test_sighup_reloads_settings_and_reopens_the_log_file(orbit_factory, tmp_path):
    cfg = tmp_path / "orbit.conf"
    log = tmp_path / "orbitd.log"
    cfg.write_text("log_file = %s\nstatement_timeout = 0\npool_size = 16\n" % log)
    s = orbit_factory(config=str(cfg))
    wait_for("the log file", lambda: log.exists() and "event=ready" in log.read_text())
    c = s.connect()
    assert scalar(c, "SHOW statement_timeout") == "0"
    c.close()
    conns = s.metric("orbit_pool_connections")
    # a rotated log: the file is moved away, SIGHUP opens a new one
    log.rename(tmp_path / "orbitd.log.1")
    cfg.write_text("log_file = %s\nstatement_timeout = 300ms\npool_size = 4\n" % log)
    s.signal(signal.SIGHUP)
    wait_for("the reload in the new log file", lambda: log.exists() and "event=config_reloaded" in log.read_text())
    text = (tmp_path / "orbitd.log.1").read_text() + log.read_text()
    assert "setting=statement_timeout" in text
    assert "setting=pool_size" in text and "requires a restart" in text  # not reloadable: said so
    c = s.connect()
    assert scalar(c, "SHOW statement_timeout") == "300ms"
    t0 = time.monotonic()
    with pytest.raises(psycopg2.errors.QueryCanceled):
        c.cursor().execute(SLOW)
    assert time.monotonic() - t0 < 10
    c.close()
    assert s.metric("orbit_pool_connections") == conns  # pool_size took no effect
    # a config file that no longer parses keeps the running settings
    cfg.write_text("statement_timeout = soon\n")
    s.signal(signal.SIGHUP)
    wait_for("the refused reload", lambda: "event=config_reload_failed" in log.read_text())
    c = s.connect()
    assert scalar(c, "SHOW statement_timeout") == "300ms"
    c.close()


@pytest.mark.timeout(60)
def test_two_io_loops_serve_sessions_and_cancel(orbit_factory):
    s = orbit_factory(args=["--io-threads", "2"])
    errors = []

    def client(k):
        try:
            c = s.connect()
            for i in range(50):
                assert scalar(c, "SELECT %d + %d" % (k, i)) == k + i
            c.close()
        except Exception as e:  # reported below
            errors.append(e)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors
    # cancel reaches a session whatever loop it is on
    for _ in range(4):
        c = s.connect()
        timer = threading.Timer(0.3, c.cancel)
        timer.start()
        try:
            with pytest.raises(psycopg2.errors.QueryCanceled):
                c.cursor().execute(SLOW)
        finally:
            timer.cancel()
        assert scalar(c, "SELECT 1") == 1
        c.close()


@pytest.mark.timeout(60)
def test_admission_queue_times_out_with_53000(orbit_factory):
    s = orbit_factory(args=["--pool-size", "1", "--admission-timeout", "300ms"])
    holder = s.connect()
    holder.cursor().execute("BEGIN")
    holder.cursor().execute("SELECT 1")  # the transaction keeps the only pooled connection
    other = s.connect()
    t0 = time.monotonic()
    with pytest.raises(psycopg2.Error) as e:
        other.cursor().execute("SELECT 2")
    waited = time.monotonic() - t0
    assert e.value.pgcode == "53000", (e.value.pgcode, str(e.value))
    assert "admission_timeout" in str(e.value)
    assert 0.2 < waited < 5, waited
    assert s.metric("orbit_admission_timeouts_total") >= 1
    holder.cursor().execute("COMMIT")
    assert scalar(other, "SELECT 3") == 3  # served once the connection is free
    holder.close()
    other.close()


def run_prepared(raw, sql):
    """Parse, Bind, Execute, Sync of sql (unnamed); its single value."""
    raw.parse(sql)
    raw.bind()
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    rows = [rawpg.parse_data_row(p) for t, p in msgs if t == "D"]
    assert [t for t, _ in msgs] == ["1", "2", "D", "C", "Z"], msgs
    return rows[0][0]


@pytest.mark.timeout(60)
def test_statement_compiled_for_one_session_is_reused_by_another(orbit_factory):
    s = orbit_factory(args=["--pool-size", "1"])  # both sessions use the one connection
    a, b = s.raw(), s.raw()
    sql = "SELECT 424242 + 1"
    assert run_prepared(a, sql) == b"424243"
    hits, misses = s.metric("orbit_statement_cache_hits_total"), s.metric("orbit_statement_cache_misses_total")
    assert run_prepared(b, sql) == b"424243"
    # Parse checks the text and Bind takes the compiled statement: both from the cache
    assert s.metric("orbit_statement_cache_hits_total") >= hits + 1
    assert s.metric("orbit_statement_cache_misses_total") == misses
    a.close()
    b.close()


@pytest.mark.timeout(90)
def test_drain_lets_a_result_being_read_reach_its_client(orbit_factory):
    """A stopping server closes a session once its request ends, but not
    while the answer is still on its way to a client reading it slowly:
    libuv drops the writes still queued when a handle closes, and the
    client would get a cut-off result instead of the whole of it and then
    57P01."""
    s = orbit_factory()
    c = s.raw()
    nrows = 400000
    c.send_msg("Q", rawpg.cstr("WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < %d) "
                               "SELECT i, '%s' FROM g" % (nrows, "x" * 100)))
    time.sleep(1.0)  # the worker fills the flow-control window and waits; nothing read yet
    s.signal(signal.SIGTERM)
    time.sleep(0.5)
    rows, tag, err = 0, None, None
    while True:
        t, p = c.recv_msg(timeout=20)
        if t == "D":
            rows += 1
        elif t == "C":
            tag = p.rstrip(b"\0").decode()
        elif t == "E":
            err = rawpg.parse_fields(p)
        elif t == "Z":
            break
    assert err is None and tag == "SELECT %d" % nrows and rows == nrows, (tag, rows, err)
    # then the drain closes it (57P01), and the server stops
    t, p = c.recv_msg(timeout=10)
    assert t == "E" and rawpg.parse_fields(p).get("C") == "57P01", (t, p)
    c.close()
    assert s.wait(30) == 0
