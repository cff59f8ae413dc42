"""pytest fixtures shared by tests/integration and tests/chaos (each
conftest.py imports everything here): each test (or module) gets its own
orbitd on free ports.

Fixtures
  server          a fresh orbitd for one test (function scope)
  shared_server   one orbitd per test module, for tests that don't disturb each other
  orbit_factory   make(**kw) -> started OrbitServer with custom args/config/env;
                  every server it made is stopped by PID at teardown
  conn            psycopg2 connection (autocommit) to shared_server

Environment
  ORBITD=path         server binary (default build/orbitd; e.g. build-san/orbitd)
  ORBIT_KEEP_TMP=1    keep temp data dirs and logs
  ORBIT_TEST_TIMEOUT  default per-test timeout in seconds (120)
"""
import faulthandler
import os
import signal
import sys
import threading

import pytest

sys.path.insert(0, os.path.dirname(__file__))

import orbit  # noqa: E402

orbit.raise_nofile()

__all__ = ["pytest_configure", "_orbitd_binary", "_test_timeout", "pytest_runtest_makereport",
           "Factory", "orbit_factory", "server", "shared_server", "conn", "unique_name", "id_table", "run_threads"]


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): per-test time limit (default 120 s)")


@pytest.fixture(scope="session", autouse=True)
def _orbitd_binary():
    path = orbit.orbitd_path()
    if not os.access(path, os.X_OK):
        pytest.fail("orbitd binary not found at %s (run make first)" % path, pytrace=False)
    yield


class _Timeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _test_timeout(request):
    """Soft limit: SIGALRM raises in the test. Hard limit (+30 s): dump stacks and
    SIGKILL (by PID) every orbitd still running, which unblocks any client call."""
    m = request.node.get_closest_marker("timeout")
    limit = int(m.args[0]) if m else int(os.environ.get("ORBIT_TEST_TIMEOUT", "120"))

    def on_alarm(signum, frame):
        raise _Timeout("test exceeded %d s" % limit)

    def hard():
        sys.stderr.write("\n*** %s exceeded %d s; stacks:\n" % (request.node.nodeid, limit + 30))
        faulthandler.dump_traceback(all_threads=True)
        for s in list(orbit.LIVE):
            try:
                s.kill9()
            except Exception:
                pass

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(limit)
    t = threading.Timer(limit + 30, hard)
    t.daemon = True
    t.start()
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
        t.cancel()


def _log_tail(s, n=4000):
    text = s.all_logs()
    return text[-n:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        seen = set()
        for v in getattr(item, "funcargs", {}).values():
            servers = []
            if isinstance(v, orbit.OrbitServer):
                servers = [v]
            elif isinstance(v, Factory):
                servers = v.servers
            for s in servers:
                if id(s) in seen:
                    continue
                seen.add(id(s))
                rep.sections.append(("orbitd pid %s port %d log (tail)" % (s.pid, s.port), _log_tail(s)))


class Factory:
    def __init__(self, tmp_root):
        self.servers = []
        self.tmp_root = tmp_root

    def new(self, **kw):
        """An OrbitServer object, not yet started."""
        kw.setdefault("tmp_root", self.tmp_root)
        s = orbit.OrbitServer(**kw)
        self.servers.append(s)
        return s

    def __call__(self, **kw):
        timeout = kw.pop("timeout", 10.0)
        return self.new(**kw).start(timeout)

    def cleanup(self):
        """Stop every server; returns sanitizer reports found in their logs."""
        reports = []
        for s in self.servers:
            try:
                s.stop()
                reports += s.sanitizer_reports()
                s.cleanup()
            except Exception:
                pass
        return reports


@pytest.fixture
def orbit_factory():
    # data dirs go under /tmp/orbit-it-*: short paths keep the unix socket path
    # (data dir + /.s.PGSQL.PORT) well under the 108-byte sun_path limit
    f = Factory(None)
    yield f
    reports = f.cleanup()
    assert not reports, "sanitizer reports in orbitd logs:\n" + "\n\n".join(reports)


@pytest.fixture
def server(orbit_factory):
    return orbit_factory()


@pytest.fixture(scope="module")
def shared_server():
    s = orbit.OrbitServer()
    try:
        s.start()
        yield s
    finally:
        s.stop()
        reports = s.sanitizer_reports()
        s.cleanup()
    assert not reports, "sanitizer reports in orbitd logs:\n" + "\n\n".join(reports)


@pytest.fixture
def conn(shared_server):
    c = shared_server.connect()
    try:
        yield c
    finally:
        try:
            c.close()
        except Exception:
            pass


@pytest.fixture
def unique_name(request):
    """A table name unique to this test (shared servers are shared by a module)."""
    import re
    return "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40]


@pytest.fixture
def id_table(shared_server, unique_name):
    """A table (id integer PRIMARY KEY, v text) on the module's shared
    server, dropped after the test; yields its name."""
    c = shared_server.connect()
    c.cursor().execute("CREATE TABLE %s (id integer PRIMARY KEY, v text)" % unique_name)
    c.close()
    yield unique_name
    c = shared_server.connect()
    c.cursor().execute("DROP TABLE %s" % unique_name)
    c.close()


def run_threads(target, n, timeout=60):
    """Run target(0) .. target(n - 1) on n threads and wait for them all."""
    import threading
    threads = [threading.Thread(target=target, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
