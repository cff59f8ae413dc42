"""Repeated kill -9 at random moments during a write workload, on one data dir.

The contract checked after every crash and restart (not how the server
implements it):
  * every commit the server acknowledged is present;
  * no transaction is half-applied: each one is present entirely or not at all;
  * nothing is present that was never sent, and at most the one commit per
    client whose acknowledgment was lost in the crash may be present beyond the
    acknowledged ones;
  * a commit another client has already read is present too (no dirty read
    of a commit that is not yet durable);
  * the SQLite database passes PRAGMA integrity_check.

Tests: pgbench TPC-B (balance invariant, history rows >= committed), psycopg2
threads with acknowledged ids and multi-statement transactions, and readers
racing writers.

Kill moments come from a seeded RNG; the seed is printed and quoted in every
assertion message. Rerun one sequence with ORBIT_CRASH_SEED=N, change the number
of rounds with ORBIT_CRASH_ROUNDS=N (default 20). Every server is started through
the orbit_factory fixture, which stops it by PID at teardown, pass or fail; pgbench
is killed by PID if it is still running.
"""
import glob
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import psycopg2
import pytest

import orbit

SEED = int(os.environ.get("ORBIT_CRASH_SEED", "20261127"))
ROUNDS = max(1, int(os.environ.get("ORBIT_CRASH_ROUNDS", "20")))
PGBENCH_CLIENTS = 4
PGBENCH_MODES = ("simple", "extended", "prepared")


def _rng(test):
    seed = "%d-%s" % (SEED, test)
    print("%s: seed ORBIT_CRASH_SEED=%d, %d rounds" % (test, SEED, ROUNDS))
    return random.Random(seed)


def _db_file(data_dir):
    """The SQLite database file of a data dir: orbit.db, or the only *.db file."""
    p = os.path.join(data_dir, "orbit.db")
    if os.path.exists(p):
        return p
    found = [f for f in glob.glob(os.path.join(data_dir, "**", "*.db"), recursive=True)
             if not os.path.basename(f).startswith("snap-")]
    assert len(found) == 1, "cannot tell the database file in %s: %r" % (data_dir, os.listdir(data_dir))
    return found[0]


def _integrity_check(data_dir):
    """PRAGMA integrity_check on the database file of a stopped server. Opened
    read-only; if that is impossible (e.g. a WAL without its -shm), on a copy of
    the database and its WAL, so the data dir itself is never modified."""
    path = _db_file(data_dir)
    try:
        db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
        try:
            return [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
        finally:
            db.close()
    except sqlite3.OperationalError:
        pass
    tmp = tempfile.mkdtemp(prefix="orbit-ic-")
    try:
        copy = os.path.join(tmp, "copy.db")
        shutil.copyfile(path, copy)
        if os.path.exists(path + "-wal"):
            shutil.copyfile(path + "-wal", copy + "-wal")
        db = sqlite3.connect(copy, timeout=5)
        try:
            return [r[0] for r in db.execute("PRAGMA integrity_check").fetchall()]
        finally:
            db.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _count_logged(prefix):
    """Transactions pgbench logged (-l) as completed, i.e. whose COMMIT it saw
    succeed. Log line: client_id transaction_no time script_no epoch us [...];
    `time` is `failed`/`skipped`/`serialization`/`deadlock` for the others."""
    n = 0
    for path in glob.glob(prefix + ".*"):
        with open(path) as f:
            for line in f:
                parts = line.split()
                if len(parts) >= 3 and parts[2].isdigit():
                    n += 1
    return n


# --------------------------------------------------------------------------
# 1. pgbench TPC-B, kill -9 at a random moment, 20+ rounds on one data dir


@pytest.mark.timeout(150)
def test_pgbench_kill9_rounds(orbit_factory, tmp_path):
    rng = _rng("pgbench")
    server = orbit_factory.new()
    server.start()
    p = server.pgbench("-i", "-s", "1", timeout=120)
    assert p.returncode == 0, "pgbench -i failed (%d):\n%s\n%s" % (p.returncode, p.stdout, p.stderr)

    committed_total = 0   # transactions pgbench reported committed, all rounds
    history_before = 0    # pgbench_history rows after the previous round
    for rnd in range(ROUNDS):
        mode = PGBENCH_MODES[rnd % len(PGBENCH_MODES)]
        delay = rng.uniform(0.2, 1.5)
        where = "seed %d round %d (-M %s, kill -9 after %.3f s)" % (SEED, rnd, mode, delay)
        if not server.alive():
            server.start()
        prefix = str(tmp_path / ("round%02d" % rnd))
        cmd = [orbit.find_bin("pgbench"), "-n", "-T", "60", "-c", str(PGBENCH_CLIENTS), "-j", "2",
               "-M", mode, "-l", "--log-prefix", prefix]
        bench = subprocess.Popen(cmd, cwd=str(tmp_path), env=server.pg_env(), stdin=subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=orbit._die_with_parent)
        try:
            time.sleep(delay)
            still_running = bench.poll() is None
            server.kill9()
            out, err = bench.communicate(timeout=30)
        finally:
            if bench.poll() is None:
                bench.kill()   # by PID (Popen.kill)
                bench.wait()
        assert still_running, "%s: pgbench exited before the kill (%d):\n%s\n%s" % (
            where, bench.returncode, out, err)
        committed = _count_logged(prefix)
        # the test's own instrument: the log agrees with pgbench's summary
        summary = orbit.parse_pgbench(out + err)["processed"]
        assert summary is None or summary == committed, (
            "%s: pgbench summary says %d processed, its -l log has %d committed lines:\n%s%s"
            % (where, summary, committed, out, err))
        committed_total += committed

        server.start()
        c = server.connect()
        try:
            a, t, b, d = orbit.pgbench_balances(c)
            cur = c.cursor()
            cur.execute("SELECT count(*) FROM pgbench_history")
            history = cur.fetchone()[0]
        finally:
            c.close()
        print("round %2d  -M %-8s kill at %.3f s  committed %5d  history %6d (+%d)"
              % (rnd, mode, delay, committed, history, history - history_before))
        assert a == t == b == d, (
            "%s: balance invariant broken after restart: sum(abalance)=%d sum(tbalance)=%d "
            "sum(bbalance)=%d sum(delta)=%d\npgbench output:\n%s%s" % (where, a, t, b, d, out, err))
        assert history >= committed_total, (
            "%s: pgbench reported %d transactions committed so far (%d this round), but only %d "
            "history rows are present: acknowledged commits lost\npgbench output:\n%s%s"
            % (where, committed_total, committed, history, out, err))
        # per round: this round's rows are its acknowledged commits plus at most
        # one in-flight commit per client whose acknowledgment the kill swallowed
        added = history - history_before
        assert committed <= added <= committed + PGBENCH_CLIENTS, (
            "%s: %d transactions acknowledged this round but %d history rows added (at most %d "
            "commits can have been in flight)\npgbench output:\n%s%s"
            % (where, committed, added, PGBENCH_CLIENTS, out, err))
        history_before = history

        rc = server.stop()
        assert rc == 0, "%s: orbitd exited %r on SIGTERM after the restart" % (where, rc)
        ic = _integrity_check(server.data_dir)
        assert ic == ["ok"], "%s: PRAGMA integrity_check: %r" % (where, ic[:20])

    print("total: %d transactions acknowledged, %d history rows" % (committed_total, history_before))
    assert committed_total >= 5 * ROUNDS, (
        "seed %d: only %d transactions committed in %d rounds: the workload is too slow to "
        "mean anything" % (SEED, committed_total, ROUNDS))


# --------------------------------------------------------------------------
# 2. psycopg2 threads, autocommit inserts and explicit multi-statement
#    transactions, every acknowledged id logged; kill -9 at a random moment

THREADS = 4
KIND_AUTO, KIND_TX = 0, 1


def _item_id(thread, kind, n):
    return thread * 10 ** 12 + kind * 10 ** 11 + n


def _tx_ids(thread, k):
    return (_item_id(thread, KIND_TX, 2 * k), _item_id(thread, KIND_TX, 2 * k + 1))


class _ThreadState:
    """What one client thread did, across rounds."""

    def __init__(self, n):
        self.n = n
        self.auto_next = 0        # next autocommit sequence number
        self.auto_acked = set()   # autocommit ids whose INSERT was acknowledged (or seen after restart)
        self.auto_inflight = None  # id whose INSERT was sent when the connection died
        self.tx_done = 0          # transactions 1..tx_done acknowledged (or seen after restart)
        self.tx_inflight = None   # k whose COMMIT was sent when the connection died
        self.tx_unsent = None     # k that died before its COMMIT was sent: must be absent
        self.retries = 0
        self.unexpected = []      # server errors other than serialization failures


RETRYABLE = ("40001", "40P01")


def _worker(server, st, barrier, stop, errors):
    try:
        conn = server.connect()
        cur = conn.cursor()
    except Exception as e:  # noqa: BLE001
        errors.append("thread %d: connect: %r" % (st.n, e))
        barrier.abort()
        return
    try:
        barrier.wait()
    except threading.BrokenBarrierError:
        conn.close()
        return
    i = 0
    try:
        while not stop.is_set():
            i += 1
            if i % 3:
                # one autocommit INSERT
                key = _item_id(st.n, KIND_AUTO, st.auto_next)
                st.auto_inflight = key
                try:
                    cur.execute("INSERT INTO items (id, thread, tx, payload) VALUES (%s, %s, NULL, %s)",
                                (key, st.n, "auto-%d" % key))
                except psycopg2.Error as e:
                    if e.pgcode is None:
                        st.auto_next += 1
                        return            # connection lost: outcome unknown
                    st.auto_inflight = None
                    if e.pgcode in RETRYABLE:
                        st.retries += 1
                        continue          # not committed: retry the same id
                    st.unexpected.append("autocommit insert %d: %s %s" % (key, e.pgcode, e))
                    return
                st.auto_acked.add(key)
                st.auto_inflight = None
                st.auto_next += 1
            else:
                # BEGIN; INSERT; INSERT; UPDATE counter; COMMIT
                k = st.tx_done + 1
                a, b = _tx_ids(st.n, k)
                commit_sent = False
                try:
                    cur.execute("BEGIN")
                    cur.execute("INSERT INTO items (id, thread, tx, payload) VALUES (%s, %s, %s, 'tx-a')",
                                (a, st.n, k))
                    cur.execute("INSERT INTO items (id, thread, tx, payload) VALUES (%s, %s, %s, 'tx-b')",
                                (b, st.n, k))
                    cur.execute("UPDATE counters SET n = n + 1 WHERE thread = %s", (st.n,))
                    if cur.rowcount != 1:
                        st.unexpected.append("tx %d: counter UPDATE touched %r rows" % (k, cur.rowcount))
                        return
                    commit_sent = True
                    cur.execute("COMMIT")
                except psycopg2.Error as e:
                    if e.pgcode is None:
                        # connection lost: committed or not if COMMIT was sent, else surely not
                        if commit_sent:
                            st.tx_inflight = k
                        else:
                            st.tx_unsent = k
                        return
                    try:
                        cur.execute("ROLLBACK")
                    except psycopg2.Error as e2:
                        if e2.pgcode is None:
                            return
                    if e.pgcode in RETRYABLE:
                        st.retries += 1
                        continue          # not committed: retry the same k with the same ids
                    st.unexpected.append("tx %d: %s %s" % (k, e.pgcode, e))
                    return
                if cur.statusmessage != "COMMIT":
                    st.unexpected.append("tx %d: COMMIT answered %r" % (k, cur.statusmessage))
                    return
                st.tx_done = k
    finally:
        try:
            conn.close()
        except Exception:  # noqa: BLE001
            pass


def _check_items(server, states, where):
    """After a restart: the contract, per thread. Then fold what was seen into the
    thread state (an in-flight commit that turned out present counts as done)."""
    c = server.connect()
    try:
        cur = c.cursor()
        cur.execute("SELECT id, thread, tx FROM items")
        rows = cur.fetchall()
        cur.execute("SELECT thread, n FROM counters")
        counters = dict(cur.fetchall())
        cur.execute("PRAGMA integrity_check")
        ic = [r[0] for r in cur.fetchall()]
    finally:
        c.close()
    assert ic == ["ok"], "%s: PRAGMA integrity_check through orbitd: %r" % (where, ic[:20])
    by_thread = {st.n: ([], {}) for st in states}
    for rid, thread, tx in rows:
        assert thread in by_thread, "%s: row %r of unknown thread %r" % (where, rid, thread)
        autos, txs = by_thread[thread]
        if tx is None:
            autos.append(rid)
        else:
            txs.setdefault(tx, []).append(rid)
    for st in states:
        autos, txs = by_thread[st.n]
        w = "%s, thread %d" % (where, st.n)
        present = set(autos)
        missing = st.auto_acked - present
        assert not missing, "%s: %d acknowledged autocommit inserts lost, e.g. %r" % (
            w, len(missing), sorted(missing)[:10])
        allowed = st.auto_acked | ({st.auto_inflight} if st.auto_inflight is not None else set())
        extra = present - allowed
        assert not extra, "%s: autocommit rows present that were never acknowledged nor in flight: %r" % (
            w, sorted(extra)[:10])
        # explicit transactions: all-or-nothing, and a prefix of the attempted ones
        for k, ids in txs.items():
            assert sorted(ids) == sorted(_tx_ids(st.n, k)), (
                "%s: transaction %d half-applied: rows %r present, expected %r"
                % (w, k, sorted(ids), list(_tx_ids(st.n, k))))
        ks = sorted(txs)
        m = len(ks)
        assert ks == list(range(1, m + 1)), "%s: present transactions are not a prefix: %r" % (
            w, ks[:5] + ["..."] + ks[-5:] if m > 10 else ks)
        hi = st.tx_done + (1 if st.tx_inflight is not None else 0)
        assert m >= st.tx_done, "%s: %d transactions acknowledged, only %d present (lost: %r)" % (
            w, st.tx_done, m, list(range(m + 1, st.tx_done + 1))[:10])
        assert m <= hi, (
            "%s: %d transactions present but %d acknowledged%s; transaction %r never got its COMMIT sent"
            % (w, m, st.tx_done, " + 1 in flight" if st.tx_inflight is not None else "", st.tx_unsent))
        assert counters.get(st.n) == m, (
            "%s: counter row is %r but %d transactions are present (%d acknowledged)"
            % (w, counters.get(st.n), m, st.tx_done))
        # fold in: what is present now is known, the next round continues after it
        if st.auto_inflight is not None and st.auto_inflight in present:
            st.auto_acked.add(st.auto_inflight)
        st.auto_inflight = None
        st.tx_done = m
        st.tx_inflight = None
        st.tx_unsent = None
    return len(rows)


@pytest.mark.timeout(150)
def test_acked_ids_kill9_rounds(orbit_factory):
    rng = _rng("acked-ids")
    server = orbit_factory.new()
    server.start()
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, thread INTEGER NOT NULL, tx INTEGER, "
                "payload TEXT NOT NULL)")
    cur.execute("CREATE TABLE counters (thread INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
    for n in range(THREADS):
        cur.execute("INSERT INTO counters VALUES (%s, 0)", (n,))
    c.close()

    states = [_ThreadState(n) for n in range(THREADS)]
    acked_total = 0
    for rnd in range(ROUNDS):
        delay = rng.uniform(0.1, 0.7)
        where = "seed %d round %d (kill -9 after %.3f s)" % (SEED, rnd, delay)
        stop = threading.Event()
        errors = []
        barrier = threading.Barrier(THREADS + 1, timeout=30)
        threads = [threading.Thread(target=_worker, args=(server, st, barrier, stop, errors), daemon=True)
                   for st in states]
        before = sum(len(st.auto_acked) + st.tx_done for st in states)
        for t in threads:
            t.start()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        time.sleep(delay)
        server.kill9()
        t_kill = time.monotonic()
        stop.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "%s: a client thread hangs after kill -9" % where
        assert not errors, "%s: %r" % (where, errors)
        unexpected = [u for st in states for u in st.unexpected]
        assert not unexpected, "%s: unexpected server errors: %r" % (where, unexpected)
        acked = sum(len(st.auto_acked) + st.tx_done for st in states) - before
        acked_total += acked

        inflight = "autocommit %d, COMMIT %d, before COMMIT %d" % (
            sum(st.auto_inflight is not None for st in states),
            sum(st.tx_inflight is not None for st in states),
            sum(st.tx_unsent is not None for st in states))

        t0 = time.monotonic()
        server.start()
        t1 = time.monotonic()
        nrows = _check_items(server, states, where)
        print("round %2d  kill at %.3f s  acknowledged %4d  rows %6d  in flight: %s  "
              "(clients stopped %.2f s, restart %.2f s, check %.2f s)"
              % (rnd, delay, acked, nrows, inflight, t0 - t_kill, t1 - t0, time.monotonic() - t1))
        # the next round runs on this restarted server: recovery of a recovered database

    rc = server.stop()
    assert rc == 0, "seed %d: orbitd exited %r on SIGTERM" % (SEED, rc)
    ic = _integrity_check(server.data_dir)
    assert ic == ["ok"], "seed %d: PRAGMA integrity_check on the stopped server's file: %r" % (SEED, ic[:20])
    retries = sum(st.retries for st in states)
    print("total: %d commits acknowledged, %d retried serialization failures" % (acked_total, retries))
    assert acked_total >= 5 * ROUNDS, (
        "seed %d: only %d commits acknowledged in %d rounds: the workload is too slow to mean anything"
        % (SEED, acked_total, ROUNDS))


# --------------------------------------------------------------------------
# 3. what a reader saw survives: a commit that another client has already read
#    must not disappear in a crash (a read of a not-yet-durable commit is a
#    dirty read: the reader acted on a state that never existed)


@pytest.mark.timeout(120)
def test_observed_commits_kill9_rounds(orbit_factory):
    """Writers insert ids in autocommit; readers poll the newest id of each
    writer. From a random moment on, the first reader that sees a row whose
    writer has not yet been told of its commit (the window in which such a
    dirty read can happen, judged from what clients see only) sends kill -9
    at once; otherwise the kill comes 0.5 s later. After the restart, every id
    any client was told of, by its COMMIT or by a read, must be present."""
    rng = _rng("observed")
    writers, readers = 3, 2
    server = orbit_factory.new()
    server.start()
    c = server.connect()
    c.cursor().execute("CREATE TABLE seen (id INTEGER PRIMARY KEY, w INTEGER NOT NULL)")
    c.close()
    nxt = [0] * writers
    early = 0
    for rnd in range(ROUNDS):
        arm_after = rng.uniform(0.05, 0.3)
        where = "seed %d round %d (kill -9 armed after %.3f s)" % (SEED, rnd, arm_after)
        stop = threading.Event()
        armed = threading.Event()
        killed = threading.Event()
        errors = []
        observed = [-1] * writers      # newest id of each writer a reader got back
        acked = [-1] * writers         # newest id whose INSERT each writer saw acknowledged
        lock = threading.Lock()
        barrier = threading.Barrier(writers + readers + 1, timeout=30)
        pid = server.pid

        def writer(w):
            try:
                conn = server.connect()
                barrier.wait()
            except Exception as e:  # noqa: BLE001
                errors.append("writer %d: %r" % (w, e))
                barrier.abort()
                return
            cur = conn.cursor()
            while not stop.is_set():
                key = w * 10 ** 12 + nxt[w]
                nxt[w] += 1
                try:
                    cur.execute("INSERT INTO seen VALUES (%s, %s)", (key, w))
                except psycopg2.Error as e:
                    if e.pgcode is not None:
                        errors.append("writer %d: %s %s" % (w, e.pgcode, e))
                    break
                acked[w] = key
            conn.close()

        def reader(n):
            try:
                conn = server.connect()
                barrier.wait()
            except Exception as e:  # noqa: BLE001
                errors.append("reader %d: %r" % (n, e))
                barrier.abort()
                return
            cur = conn.cursor()
            while not stop.is_set():
                try:
                    cur.execute("SELECT w, max(id) FROM seen GROUP BY w")
                    rows = cur.fetchall()
                except psycopg2.Error as e:
                    if e.pgcode is not None:
                        errors.append("reader %d: %s %s" % (n, e.pgcode, e))
                    break
                with lock:
                    ahead = False
                    for w, m in rows:
                        observed[w] = max(observed[w], m)
                        ahead = ahead or m > acked[w]
                    if ahead and armed.is_set() and not killed.is_set():
                        killed.set()
                        os.kill(pid, signal.SIGKILL)   # by PID; the main thread reaps it
            conn.close()

        threads = [threading.Thread(target=writer, args=(w,), daemon=True) for w in range(writers)]
        threads += [threading.Thread(target=reader, args=(n,), daemon=True) for n in range(readers)]
        for t in threads:
            t.start()
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            pass
        time.sleep(arm_after)
        armed.set()
        if killed.wait(0.5):
            early += 1
        with lock:
            killed.set()
        server.kill9()
        stop.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads), "%s: a client thread hangs after kill -9" % where
        assert not errors, "%s: %r" % (where, errors)

        server.start()
        c = server.connect()
        try:
            cur = c.cursor()
            lost = []
            for w in range(writers):
                for label, key in (("acknowledged", acked[w]), ("read by another client", observed[w])):
                    if key < 0:
                        continue
                    cur.execute("SELECT count(*) FROM seen WHERE id = %s", (key,))
                    if cur.fetchone()[0] != 1:
                        lost.append("writer %d: id %d (%s; newest acknowledged %d)" % (w, key, label, acked[w]))
            cur.execute("SELECT w, max(id) FROM seen GROUP BY w")
            for w, m in cur.fetchall():
                nxt[w] = max(nxt[w], m - w * 10 ** 12 + 1)
        finally:
            c.close()
        print("round %2d  armed at %.3f s  newest acknowledged %r  newest read %r"
              % (rnd, arm_after, [a % 10 ** 12 for a in acked], [o % 10 ** 12 for o in observed]))
        assert not lost, ("%s: commits gone after kill -9 and restart although a client had been told "
                          "of them: %s" % (where, "; ".join(lost)))
    print("%d of %d kills triggered by a read ahead of the acknowledgments" % (early, ROUNDS))
