"""Many concurrent connections, and the max_connections limit (53300)."""
import time

import psycopg2
import pytest

import orbit
import rawpg


@pytest.mark.timeout(240)
def test_2000_concurrent_connections(orbit_factory):
    need = 2000
    assert orbit.raise_nofile() >= need + 200, "RLIMIT_NOFILE too low for this test"
    s = orbit_factory()
    conns = []
    try:
        t0 = time.monotonic()
        for i in range(need):
            conns.append(s.connect())
        opened = time.monotonic() - t0
        # all of them are open at once and every one answers
        pids = set()
        for c in conns:
            cur = c.cursor()
            cur.execute("SELECT pg_backend_pid()")
            pids.add(cur.fetchone()[0])
        assert len(pids) == need
        # a new connection still works while 2000 are held
        extra = s.connect()
        cur = extra.cursor()
        cur.execute("SELECT 1")
        extra.close()
        print("opened %d connections in %.1f s; server RSS %d KiB" % (need, opened, s.rss_kib()))
    finally:
        for c in conns:
            try:
                c.close()
            except Exception:
                pass
    assert s.alive()
    c = s.connect()
    c.cursor().execute("SELECT 1")
    c.close()


def _refused(s):
    c = s.raw_socket()
    try:
        c.startup("orbit", s.password, "orbit")
    except rawpg.ServerError as e:
        return e
    finally:
        c.close()
    return None


@pytest.mark.timeout(60)
def test_max_connections_53300(orbit_factory):
    s = orbit_factory(args=["--max-connections", "20"])
    held = [s.raw() for _ in range(20)]
    e = _refused(s)
    assert e is not None, "21st connection was accepted with max_connections = 20"
    assert e.code == "53300", e.fields
    assert e.severity == "FATAL"
    # psycopg2 sees it as well
    with pytest.raises(psycopg2.OperationalError) as ei:
        s.connect()
    assert "53300" in str(getattr(ei.value, "pgcode", "")) or "too many" in str(ei.value).lower() \
        or "connection" in str(ei.value).lower()
    # held sessions keep working
    assert held[0].query1("SELECT 1").text_rows() == [["1"]]
    # closing one frees a slot
    held.pop().terminate()
    deadline = time.monotonic() + 5
    while True:
        try:
            held.append(s.raw())
            break
        except rawpg.ServerError as e2:
            assert e2.code == "53300"
            assert time.monotonic() < deadline, "slot not freed after a session ended"
            time.sleep(0.05)
    assert _refused(s).code == "53300"
    for c in held:
        c.terminate()


@pytest.mark.timeout(60)
def test_connections_in_startup_count_and_are_freed(orbit_factory):
    """Half-open connections that never finish startup, and clients that vanish
    mid-authentication, must not leak slots."""
    s = orbit_factory(args=["--max-connections", "10"])
    for _ in range(30):
        c = s.raw_socket()
        c.send(rawpg.startup_packet("orbit", "orbit"))
        c.recv_msg()          # AuthenticationSASL
        c.close()             # vanish mid-authentication
    for _ in range(30):
        c = s.raw_socket()
        c.close()             # connect and close without a byte
    deadline = time.monotonic() + 5
    while True:
        try:
            held = [s.raw() for _ in range(10)]
            break
        except rawpg.ServerError as e:
            assert e.code == "53300"
            assert time.monotonic() < deadline, "slots leaked by abandoned connections"
            time.sleep(0.1)
    for c in held:
        c.terminate()


@pytest.mark.timeout(120)
def test_idle_connections_cheap(orbit_factory):
    """1,000 idle sessions add well under 16 KiB each to the server's RSS (the
    issue's target is 4 KiB; bench/connections measures that precisely)."""
    s = orbit_factory()
    # warm up
    warm = [s.raw() for _ in range(20)]
    for c in warm:
        c.query1("SELECT 1")
    before = s.rss_kib()
    held = [s.raw() for _ in range(1000)]
    time.sleep(0.5)
    after = s.rss_kib()
    per = (after - before) * 1024.0 / len(held)
    for c in held + warm:
        c.terminate()
    assert per < 16 * 1024, "idle connection costs %.0f bytes of RSS" % per
