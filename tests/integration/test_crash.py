"""kill -9 during a workload, restart: every acknowledged commit is present."""
import glob
import os
import subprocess
import threading
import time

import psycopg2
import pytest

import orbit


@pytest.mark.timeout(120)
def test_kill9_acknowledged_commits_survive(server):
    c = server.connect()
    c.cursor().execute("CREATE TABLE acked (id integer PRIMARY KEY, thread integer, payload text)")
    c.close()
    acked = {}
    stop = threading.Event()
    errors = []

    def worker(n):
        mine = acked.setdefault(n, [])
        try:
            conn = server.connect()
            cur = conn.cursor()
        except psycopg2.Error as e:
            errors.append(e)
            return
        i = 0
        while not stop.is_set():
            key = n * 10_000_000 + i
            try:
                cur.execute("INSERT INTO acked VALUES (%s, %s, %s)", (key, n, "x" * 100))
            except psycopg2.Error:
                break             # the server died: this commit was never acknowledged
            mine.append(key)      # acknowledged
            i += 1
            if i % 50 == 0:
                # mix in multi-statement transactions too
                try:
                    cur.execute("BEGIN")
                    cur.execute("INSERT INTO acked VALUES (%s, %s, 'tx1')", (key + 5_000_000, n))
                    cur.execute("INSERT INTO acked VALUES (%s, %s, 'tx2')", (key + 6_000_000, n))
                    cur.execute("COMMIT")
                except psycopg2.Error:
                    break
                mine.extend([key + 5_000_000, key + 6_000_000])
        try:
            conn.close()
        except Exception:
            pass

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    time.sleep(3)
    total_before_kill = sum(len(v) for v in acked.values())
    server.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not errors, errors
    all_acked = sorted(k for v in acked.values() for k in v)
    assert total_before_kill > 100, "workload too slow to be meaningful: %d commits" % total_before_kill
    server.start()
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT id FROM acked")
    present = set(r[0] for r in cur.fetchall())
    missing = [k for k in all_acked if k not in present]
    assert not missing, "%d of %d acknowledged commits lost after kill -9, e.g. %r" % (
        len(missing), len(all_acked), missing[:10])
    # transactions are atomic: both rows of a two-row transaction, or neither
    cur.execute("SELECT count(*) FROM acked a WHERE payload = 'tx1' AND NOT EXISTS "
                "(SELECT 1 FROM acked b WHERE b.id = a.id + 1000000)")
    assert cur.fetchone()[0] == 0
    cur.execute("SELECT count(*) FROM acked a WHERE payload = 'tx2' AND NOT EXISTS "
                "(SELECT 1 FROM acked b WHERE b.id = a.id - 1000000)")
    assert cur.fetchone()[0] == 0
    # and the database is writable again
    cur.execute("INSERT INTO acked VALUES (-1, -1, 'after restart')")
    c.close()


def _count_logged(logdir):
    """Transactions pgbench logged as completed (-l): one line each; failed and
    skipped ones are marked in the latency field."""
    n = 0
    for path in glob.glob(os.path.join(logdir, "pgbench_log.*")):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    n += 1
    return n


@pytest.mark.timeout(180)
def test_kill9_during_pgbench(server, tmp_path):
    p = server.pgbench("-i", "-s", "1", timeout=300)
    assert p.returncode == 0, p.stdout + p.stderr
    logdir = tmp_path / "pgbench-logs"
    logdir.mkdir()
    bench = subprocess.Popen([orbit.find_bin("pgbench"), "-n", "-T", "60", "-c", "4", "-j", "2", "-M",
                              "prepared", "-l"], cwd=str(logdir), env=server.pg_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(4)
        server.kill9()
        out, err = bench.communicate(timeout=60)
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    committed = _count_logged(str(logdir))
    assert committed > 0, "pgbench logged no committed transaction:\n" + out + err
    server.start()
    c = server.connect()
    a, t, b, d = orbit.pgbench_balances(c)
    cur = c.cursor()
    cur.execute("SELECT count(*) FROM pgbench_history")
    history = cur.fetchone()[0]
    c.close()
    assert a == t == b == d, "inconsistent balances after kill -9: %r" % ((a, t, b, d),)
    # every transaction pgbench saw committed left its history row; at most one
    # in-flight transaction per client may have committed without the client knowing
    assert history >= committed, "pgbench reported %d committed, %d present" % (committed, history)
    assert history <= committed + 4, (history, committed)
    # the restarted server runs pgbench again cleanly
    p = server.pgbench("-T", "2", "-c", "2", "-M", "prepared")
    r = orbit.parse_pgbench(p.stdout + p.stderr)
    assert p.returncode == 0 and r["failed"] == 0, p.stdout + p.stderr


@pytest.mark.timeout(120)
def test_restart_after_kill9_idle(server):
    c = server.connect()
    c.cursor().execute("CREATE TABLE k (id integer)")
    c.cursor().execute("INSERT INTO k VALUES (1)")
    c.close()
    for _ in range(3):
        server.kill9()
        server.start()
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT id FROM k")
    assert cur.fetchall() == [(1,)]
    c.close()
