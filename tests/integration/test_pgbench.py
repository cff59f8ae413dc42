"""Unmodified pgbench: initialization and the built-in TPC-B script in simple,
extended and prepared modes, with the balance invariant checked after each run."""
import pytest

import orbit


def _check(p):
    assert p.returncode == 0, "pgbench exited %d\nstdout:\n%s\nstderr:\n%s" % (p.returncode, p.stdout, p.stderr)
    r = orbit.parse_pgbench(p.stdout + p.stderr)
    assert r["failed"] == 0, "failed transactions:\n" + p.stdout + p.stderr
    assert r["processed"] and r["processed"] > 0, p.stdout + p.stderr
    assert not r["aborted"], p.stdout + p.stderr
    return r


def _sums(server):
    c = server.connect()
    a, t, b, d = orbit.pgbench_balances(c)
    cur = c.cursor()
    cur.execute("SELECT count(*) FROM pgbench_history")
    n = cur.fetchone()[0]
    c.close()
    assert a == t == b, "balances differ: accounts %d tellers %d branches %d" % (a, t, b)
    return a, d, n


@pytest.fixture(scope="module")
def bench_server(shared_server):
    p = shared_server.pgbench("-i", "-s", "1", timeout=300)
    assert p.returncode == 0, "pgbench -i failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)
    return shared_server


def test_pgbench_init_tables(bench_server):
    c = bench_server.connect()
    cur = c.cursor()
    counts = {}
    for t in ("pgbench_accounts", "pgbench_tellers", "pgbench_branches", "pgbench_history"):
        cur.execute("SELECT count(*) FROM %s" % t)
        counts[t] = cur.fetchone()[0]
    assert counts == {"pgbench_accounts": 100000, "pgbench_tellers": 10, "pgbench_branches": 1,
                      "pgbench_history": 0}
    # primary keys exist: a duplicate aid is rejected
    with pytest.raises(Exception) as ei:
        cur.execute("INSERT INTO pgbench_accounts (aid, bid, abalance, filler) VALUES (1, 1, 0, '')")
    assert getattr(ei.value, "pgcode", None) == "23505"
    c.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("mode", ["simple", "extended", "prepared"])
def test_pgbench_tpcb(bench_server, mode):
    # without -n, pgbench vacuums and truncates pgbench_history before the run,
    # so the history holds exactly this run's transactions
    bal0, _, _ = _sums(bench_server)
    p = bench_server.pgbench("-T", "5", "-c", "4", "-j", "2", "-M", mode, timeout=90)
    r = _check(p)
    bal1, delta, n = _sums(bench_server)
    assert bal1 - bal0 == delta, "balance change %d but sum(delta) in history %d" % (bal1 - bal0, delta)
    # every transaction pgbench counted left exactly one history row
    assert n == r["processed"], (n, r)


@pytest.mark.timeout(120)
def test_pgbench_select_only_prepared(bench_server):
    _check(bench_server.pgbench("-n", "-S", "-T", "3", "-c", "8", "-j", "2", "-M", "prepared", timeout=90))


@pytest.mark.timeout(120)
def test_pgbench_connect_per_transaction(bench_server):
    _check(bench_server.pgbench("-n", "-S", "-C", "-T", "3", "-c", "4", "-j", "2", timeout=90))


@pytest.mark.timeout(300)
def test_pgbench_init_again_and_unix_socket(bench_server):
    """Re-initializing drops and recreates the tables (multi-table DROP); over the unix socket."""
    p = bench_server.pgbench("-i", "-s", "1", "-h", bench_server.data_dir, "-p", str(bench_server.port),
                             timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    assert _sums(bench_server) == (0, 0, 0)
