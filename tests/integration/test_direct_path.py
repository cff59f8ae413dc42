"""The direct path (client_poll_us): the executor thread that answered a
client waits on its socket for the next request and runs it there, without
the two hand-offs through the event loop. It matters most for the write-lock
holder inside a transaction block. These tests drive every way out of that
path: pipelined input, think time longer than the wait, a vanished client,
Terminate, bad input, a full socket, cancel, COPY, the idle timeout, a job
that parks for the write lock, and more clients than may wait at once."""
import os
import socket
import struct
import threading
import time

import pytest

import rawpg
from harness import run_threads


@pytest.fixture
def srv(shared_server):
    return shared_server


@pytest.fixture
def table(id_table):
    return id_table


def ids(srv, t):
    c = srv.connect()
    try:
        cur = c.cursor()
        cur.execute("SELECT id FROM %s ORDER BY id" % t)
        return [r[0] for r in cur.fetchall()]
    finally:
        c.close()


def writer_gets_through(srv, t, row_id, timeout=5.0):
    """Another session can write (the write token is free again)."""
    c = srv.connect(options="-c statement_timeout=%d" % int(timeout * 1000))
    try:
        c.cursor().execute("INSERT INTO %s VALUES (%d, 'other')" % (t, row_id))
    finally:
        c.close()


def open_write_txn(srv, table):
    """A raw session inside a transaction that holds the write lock."""
    raw = srv.raw()
    raw.query1("BEGIN")
    raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
    raw.query1("INSERT INTO %s VALUES (2, 'b')" % table)
    return raw


def errors_until_closed(raw, timeout=5):
    """The ErrorResponses the server sends before it closes the connection."""
    msgs = []
    try:
        while True:
            msgs.append(raw.recv_msg(timeout))
    except (rawpg.ProtocolError, OSError, EOFError, ConnectionError):
        pass
    raw.close()
    return [rawpg.parse_fields(p) for t, p in msgs if t == "E"]


def test_statements_after_the_first_write_skip_the_loop(srv, table):
    before = srv.metric("orbit_exec_direct_jobs_total")
    raw = srv.raw()
    try:
        raw.query1("BEGIN")
        for i in range(1, 21):
            raw.query1("INSERT INTO %s VALUES (%d, 'x')" % (table, i))
            assert raw.status == "T"
        r = raw.query1("SELECT count(*) FROM %s" % table)
        assert r.text_rows() == [["20"]]
        assert raw.query1("COMMIT").tag == "COMMIT"
        assert raw.status == "I"
    finally:
        raw.close()
    assert ids(srv, table) == list(range(1, 21))
    # the 19 inserts after the first, the count and the COMMIT came in
    # while the executor thread waited on the socket (the client answers
    # within microseconds; allow a few to miss the 1 ms wait on a busy box)
    assert srv.metric("orbit_exec_direct_jobs_total") - before >= 10


def test_pipelined_batches_are_run_in_order(srv, table):
    raw = srv.raw()
    try:
        raw.query1("BEGIN")
        raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
        # three batches in one write: the worker reads more than one batch
        # and hands the input back to the loop, which runs it in order
        data = rawpg.msg("Q", rawpg.cstr("INSERT INTO %s VALUES (2, 'b')" % table))
        data += rawpg.msg("Q", rawpg.cstr("SELECT count(*) FROM %s" % table))
        body = rawpg.cstr("") + rawpg.cstr("INSERT INTO %s VALUES ($1, 'c')" % table) + struct.pack("!h", 0)
        data += rawpg.msg("P", body)
        bind = rawpg.cstr("") + rawpg.cstr("") + struct.pack("!hh", 0, 1) + struct.pack("!i", 1) + b"3"
        bind += struct.pack("!h", 0)
        data += rawpg.msg("B", bind) + rawpg.msg("E", rawpg.cstr("") + struct.pack("!i", 0)) + rawpg.msg("S")
        raw.send(data)
        r1 = raw.results(raw.read_until_ready())
        assert [x.tag for x in r1] == ["INSERT 0 1"]
        r2 = raw.results(raw.read_until_ready())
        assert r2[0].text_rows() == [["2"]]
        r3 = raw.results(raw.read_until_ready())
        assert [x.tag for x in r3] == ["INSERT 0 1"]
        assert raw.status == "T"
        # a batch split across two writes, the second after a pause longer
        # than client_poll_us: the loop gets the first half back
        q = rawpg.msg("Q", rawpg.cstr("INSERT INTO %s VALUES (4, 'd')" % table))
        raw.send(q[:7])
        time.sleep(0.05)
        raw.send(q[7:])
        assert [x.tag for x in raw.results(raw.read_until_ready())] == ["INSERT 0 1"]
        raw.query1("COMMIT")
    finally:
        raw.close()
    assert ids(srv, table) == [1, 2, 3, 4]


def test_think_time_longer_than_the_wait(srv, table):
    raw = srv.raw()
    try:
        raw.query1("BEGIN")
        raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
        # meanwhile another writer waits for the token
        done = []
        th = threading.Thread(target=lambda: (writer_gets_through(srv, table, 100, 10), done.append(1)))
        th.start()
        time.sleep(0.2)
        assert not done, "a second writer got the token while a transaction held it"
        raw.query1("INSERT INTO %s VALUES (2, 'b')" % table)
        time.sleep(0.05)
        raw.query1("COMMIT")
        th.join(10)
        assert done
    finally:
        raw.close()
    assert ids(srv, table) == [1, 2, 100]


def test_client_that_vanishes_releases_the_write_lock(srv, table):
    raw = open_write_txn(srv, table)
    # no Terminate: the socket just closes (RST with unread data is fine too)
    raw.sock.shutdown(socket.SHUT_RDWR)
    raw.close()
    writer_gets_through(srv, table, 100)
    assert ids(srv, table) == [100]


def test_terminate_inside_a_write_transaction_rolls_back(srv, table):
    raw = open_write_txn(srv, table)
    raw.send_msg("X")
    assert raw.is_closed(5)
    raw.close()
    writer_gets_through(srv, table, 100)
    assert ids(srv, table) == [100]


def test_bad_length_inside_a_write_transaction(srv, table):
    raw = open_write_txn(srv, table)
    raw.send(b"Q" + struct.pack("!i", 2) + b"xx")  # a length below 4
    errors = errors_until_closed(raw)
    assert errors and errors[-1]["S"] == "FATAL" and errors[-1]["C"] == "08P01", errors
    writer_gets_through(srv, table, 100)
    assert ids(srv, table) == [100]


def test_answer_bigger_than_the_socket_buffer(orbit_factory, unique_name):
    # over a unix socket (a fixed 208 KiB send buffer; TCP's grows) an
    # answer of 250 KB, read late: the worker's direct send fills the
    # socket and the loop writes the rest
    s = orbit_factory(args=["--log-level", "debug"])
    raw = rawpg.connect(unix_path=os.path.join(s.data_dir, ".s.PGSQL.%d" % s.port), password=s.password)
    try:
        raw.query1("CREATE TABLE %s (id integer PRIMARY KEY)" % unique_name)
        raw.query1("BEGIN")
        raw.query1("INSERT INTO %s VALUES (1)" % unique_name)
        for i in range(3):
            raw.send_msg("Q", rawpg.cstr("SELECT hex(zeroblob(125000)) AS b, %d AS i" % i))
            time.sleep(0.2)
            r = raw.results(raw.read_until_ready())
            assert r[0].text_rows() == [["0" * 250000, str(i)]]
            assert raw.status == "T"
        raw.query1("INSERT INTO %s VALUES (2)" % unique_name)
        raw.query1("COMMIT")
        assert raw.query1("SELECT count(*) FROM %s" % unique_name).text_rows() == [["2"]]
    finally:
        raw.close()
    assert "socket full: the loop writes the rest" in s.log()


def test_cancel_between_statements_cancels_nothing(srv, table):
    raw = srv.raw()
    try:
        raw.query1("BEGIN")
        raw.query1("INSERT INTO %s VALUES (1, 'a')" % table)
        # the session is waiting for its client: as in PostgreSQL, a cancel
        # now has nothing to cancel
        rawpg.cancel(srv.host, srv.port, raw.backend_pid, raw.secret_key)
        time.sleep(0.05)
        raw.query1("INSERT INTO %s VALUES (2, 'b')" % table)
        # and a cancel during a statement still cancels it
        raw.send_msg("Q", rawpg.cstr("SELECT pg_sleep(5)"))
        time.sleep(0.3)
        rawpg.cancel(srv.host, srv.port, raw.backend_pid, raw.secret_key)
        r = raw.results(raw.read_until_ready(10))
        assert r[0].error is not None and r[0].error.code == "57014"
        assert raw.status == "E"
        raw.query1("ROLLBACK")
    finally:
        raw.close()
    assert ids(srv, table) == []


def test_copy_inside_a_write_transaction(srv, table):
    c = srv.connect(autocommit=False)
    try:
        cur = c.cursor()
        cur.execute("INSERT INTO %s VALUES (1, 'a')" % table)
        import io
        cur.copy_expert("COPY %s FROM STDIN" % table, io.StringIO("".join("%d\tv%d\n" % (i, i) for i in range(2, 500))))
        cur.execute("INSERT INTO %s VALUES (500, 'z')" % table)
        c.commit()
    finally:
        c.close()
    assert ids(srv, table) == list(range(1, 501))


def test_idle_in_transaction_timeout_still_applies(srv, table):
    raw = open_write_txn(srv, table)
    raw.query1("SET idle_in_transaction_session_timeout = 300")
    time.sleep(1.0)
    errors = errors_until_closed(raw, 3)
    assert errors and errors[-1]["C"] == "25P03", errors
    writer_gets_through(srv, table, 100)
    assert ids(srv, table) == [100]


def test_autocommit_clients_use_it_too(srv, table):
    before = srv.metric("orbit_exec_direct_jobs_total")
    c = srv.connect()
    cur = c.cursor()
    for i in range(50):
        cur.execute("SELECT %s", (i,))
        assert cur.fetchone() == (i,)
    c.close()
    assert srv.metric("orbit_exec_direct_jobs_total") - before >= 25


def test_more_clients_than_may_wait_at_once(orbit_factory, unique_name):
    # pool_size 4: at most 2 sessions wait on their sockets, the rest go
    # through the loop and admission; every answer must still be right
    s = orbit_factory(args=["--pool-size", "4"])
    c = s.connect()
    c.cursor().execute("CREATE TABLE %s (id integer PRIMARY KEY, n integer)" % unique_name)
    c.cursor().execute("INSERT INTO %s VALUES (1, 0)" % unique_name)
    c.close()
    errors = []

    def client(k):
        try:
            conn = s.connect()
            cur = conn.cursor()
            for i in range(100):
                cur.execute("SELECT %s + 1000 * %s", (i, k))
                assert cur.fetchone() == (i + 1000 * k,)
                if i % 10 == 0:
                    cur.execute("UPDATE %s SET n = n + 1 WHERE id = 1" % unique_name)
            conn.close()
        except Exception as e:  # reported below
            errors.append(repr(e))

    run_threads(client, 12)
    assert not errors, errors
    c = s.connect()
    cur = c.cursor()
    cur.execute("SELECT n FROM %s" % unique_name)
    assert cur.fetchone() == (120,)
    c.close()
    assert s.metric("orbit_exec_direct_jobs_total") > 0


def test_client_gone_while_parked_for_the_write_lock(srv, table):
    holder = open_write_txn(srv, table)
    try:
        waiter = srv.raw()
        # an autocommit write parks for the write lock; its client goes away
        waiter.send_msg("Q", rawpg.cstr("INSERT INTO %s VALUES (50, 'w')" % table))
        time.sleep(0.3)
        waiter.sock.shutdown(socket.SHUT_RDWR)
        waiter.close()
        time.sleep(0.5)  # the loop reads again while the job is parked: it sees the EOF
        holder.query1("COMMIT")
    finally:
        holder.close()
    writer_gets_through(srv, table, 100)
    assert ids(srv, table) == [1, 2, 100]


def test_direct_path_off(orbit_factory, unique_name):
    s = orbit_factory(args=["--client-poll-us", "0"])
    c = s.connect(autocommit=False)
    cur = c.cursor()
    cur.execute("CREATE TABLE %s (id integer PRIMARY KEY)" % unique_name)
    c.commit()
    for i in range(5):
        cur.execute("INSERT INTO %s VALUES (%d)" % (unique_name, i))
    c.commit()
    c.close()
    assert s.metric("orbit_exec_direct_jobs_total") == 0
