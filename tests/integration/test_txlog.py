"""The commit path on the txlog and Raft: records, restart replay, a database
ahead of its log, snapshots and log compaction, a full disk."""
import glob
import json
import os
import re
import sqlite3
import subprocess
import time

import psycopg2
import pytest

import orbit

ORBITCTL = os.path.join(os.path.dirname(orbit.orbitd_path()), "orbitctl")


def dump(data_dir):
    p = subprocess.run([ORBITCTL, "txlog", "dump", "--data-dir", data_dir], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]


def scalar(conn, sql, args=None):
    cur = conn.cursor()
    cur.execute(sql, args)
    return cur.fetchone()[0]


def db_applied_lsn(data_dir):
    db = sqlite3.connect(os.path.join(data_dir, "orbit.db"))
    try:
        return db.execute("SELECT lsn FROM _orbit_applied").fetchone()[0]
    finally:
        db.close()


@pytest.mark.timeout(60)
def test_every_write_transaction_is_one_record(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    cur.execute("INSERT INTO t VALUES (1, 'a'), (2, 'b')")
    cur.execute("SELECT count(*) FROM t")          # read-only: no record
    cur.execute("BEGIN")
    cur.execute("UPDATE t SET v = 'c' WHERE id = 1")
    cur.execute("SAVEPOINT s1")
    cur.execute("INSERT INTO t VALUES (3, 'gone')")
    cur.execute("ROLLBACK TO SAVEPOINT s1")
    cur.execute("DELETE FROM t WHERE id = 2")
    cur.execute("COMMIT")
    cur.execute("BEGIN")
    cur.execute("INSERT INTO t VALUES (4, 'rolled back')")
    cur.execute("ROLLBACK")
    c.close()
    assert server.metric("orbit_txlog_commits_total") == 3
    server.stop()
    recs = dump(server.data_dir)
    assert [r["lsn"] for r in recs] == [1, 2, 3]
    assert recs[0]["changes"][0]["op"] == "ddl"
    assert [ch["op"] for ch in recs[1]["changes"]] == ["insert", "insert"]
    assert [(ch["op"], ch.get("values")) for ch in recs[2]["changes"]] == [("update", [1, "c"]), ("delete", None)]
    assert db_applied_lsn(server.data_dir) == 3
    assert all(r["commit_us"] > 0 and r["origin"] for r in recs)


@pytest.mark.timeout(60)
def test_restart_keeps_data_and_lsn(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    for i in range(50):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (i, "x" * i))
    c.close()
    server.kill9()
    server.start()
    c = server.connect()
    assert scalar(c, "SELECT count(*) FROM t") == 50
    c.cursor().execute("INSERT INTO t VALUES (1000, 'after')")
    c.close()
    server.stop()
    assert [r["lsn"] for r in dump(server.data_dir)] == list(range(1, 53))


@pytest.mark.timeout(60)
def test_database_ahead_of_log_is_repaired(server):
    """A local commit whose record never reached the log was never
    acknowledged: at start the node restores and replays the log."""
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    cur.execute("INSERT INTO t VALUES (1, 'durable')")
    c.close()
    server.stop()
    # what a crash between SQLite's commit and Raft's fsync leaves behind
    db = sqlite3.connect(os.path.join(server.data_dir, "orbit.db"))
    db.execute("INSERT INTO t VALUES (2, 'never acknowledged')")
    db.execute("UPDATE _orbit_applied SET lsn = lsn + 1")
    db.commit()
    db.close()
    server.start()
    assert "event=repl.repair" in server.log()
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT id, v FROM t ORDER BY id")
    assert cur.fetchall() == [(1, "durable")]
    cur.execute("INSERT INTO t VALUES (3, 'next')")
    c.close()
    server.stop()
    assert [r["lsn"] for r in dump(server.data_dir)] == [1, 2, 3]


@pytest.mark.timeout(120)
def test_snapshot_compacts_log_and_restores(orbit_factory):
    s = orbit_factory(args=["--snapshot-threshold", "64"])
    c = s.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    for i in range(400):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (i, "v%d" % i))
    deadline = time.time() + 10
    while s.metric("orbit_raft_snapshots_total") < 1 and time.time() < deadline:
        time.sleep(0.1)
    assert s.metric("orbit_raft_snapshots_total") >= 1
    assert s.metric("orbit_raft_snapshot_index") > 0
    c.close()
    s.stop()
    snaps = glob.glob(os.path.join(s.data_dir, "snapshots", "snap-*.db"))
    assert snaps
    # the log no longer starts at the first record
    recs = dump(s.data_dir)
    assert recs[-1]["lsn"] == 401 and recs[0]["lsn"] > 1
    # a database ahead of the compacted log is restored from the snapshot
    db = sqlite3.connect(os.path.join(s.data_dir, "orbit.db"))
    db.execute("DELETE FROM t WHERE id < 100")
    db.execute("UPDATE _orbit_applied SET lsn = lsn + 1")
    db.commit()
    db.close()
    s.start()
    assert "event=repl.repair" in s.log()
    c = s.connect()
    assert scalar(c, "SELECT count(*) FROM t") == 400
    assert scalar(c, "SELECT sum(id) FROM t") == sum(range(400))
    c.close()


class SmallDisk:
    """orbitd on a 96 MB tmpfs with a blobs table; fill() leaves a given
    amount free (stopped and unmounted by the fixture)."""

    def __init__(self, orbit_factory, mnt, reserve):
        self.mnt = mnt
        self.filler = os.path.join(mnt, "filler")
        self.server = orbit_factory(data_dir=os.path.join(mnt, "data"), args=["--disk-reserve", reserve])
        self.conn = self.server.connect()
        self.conn.cursor().execute("CREATE TABLE blobs (id integer PRIMARY KEY, b bytea)")

    def fill(self, leave):
        st = os.statvfs(self.mnt)
        with open(self.filler, "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - leave))
        time.sleep(0.5)  # the free space is sampled every 200 ms

    def free_up(self):
        os.unlink(self.filler)
        time.sleep(0.6)


@pytest.fixture
def small_disk(orbit_factory, tmp_path):
    mnt = str(tmp_path / "small")
    os.makedirs(mnt, exist_ok=True)
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96m", "tmpfs", mnt],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    made = []
    try:
        yield lambda reserve: made.append(SmallDisk(orbit_factory, mnt, reserve)) or made[-1]
    finally:
        for d in made:
            if d.server.alive():
                d.server.kill9()
        subprocess.run(["umount", "-l", mnt], capture_output=True)


@pytest.mark.timeout(120)
def test_full_disk_refuses_writes_then_recovers(small_disk):
    d = small_disk("24MB")
    s, c = d.server, d.conn
    cur = c.cursor()
    d.fill(36 << 20)  # ~12 MB above the reserve
    refused = None
    for i in range(200):
        try:
            cur.execute("INSERT INTO blobs VALUES (%s, randomblob(262144))", (i,))
        except psycopg2.Error as e:
            refused = e
            break
        time.sleep(0.01)
    assert refused is not None, "writes were never refused"
    assert refused.pgcode == "53100", (refused.pgcode, str(refused))
    n = scalar(c, "SELECT count(*) FROM blobs")       # reads still work
    assert n >= 1
    d.free_up()
    cur.execute("INSERT INTO blobs VALUES (100000, randomblob(1000))")
    assert scalar(c, "SELECT count(*) FROM blobs") == n + 1
    c.close()
    s.kill9()
    s.start()
    c = s.connect()
    assert scalar(c, "SELECT count(*) FROM blobs") == n + 1
    c.close()
    s.stop()


@pytest.mark.timeout(120)
def test_transaction_larger_than_the_free_space_is_refused_whole(small_disk):
    """A transaction whose txlog record would not fit above disk_reserve is
    refused before it commits: nothing of it is visible, no restart is
    needed, and writes work again once space is freed."""
    d = small_disk("8MB")
    s, c = d.server, d.conn
    c.autocommit = True
    cur = c.cursor()
    d.fill(38 << 20)  # ~30 MB above the reserve
    cur.execute("BEGIN")
    with pytest.raises(psycopg2.Error) as e:
        for i in range(6):
            cur.execute("INSERT INTO blobs VALUES (%s, randomblob(5000000))", (i,))
        cur.execute("COMMIT")
    assert e.value.pgcode == "53100", (e.value.pgcode, str(e.value))
    cur.execute("ROLLBACK")
    c2 = s.connect()
    assert scalar(c2, "SELECT count(*) FROM blobs") == 0   # nothing of it is visible
    c2.close()
    d.free_up()
    cur.execute("INSERT INTO blobs VALUES (1, randomblob(1000))")
    assert scalar(c, "SELECT count(*) FROM blobs") == 1
    assert s.alive() and "event=restart" not in s.log()     # no restart was needed
    c.close()
    s.stop()


@pytest.mark.timeout(90)
def test_torn_log_tail_is_cut_back(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    for i in range(20):
        cur.execute("INSERT INTO t VALUES (%s)", (i,))
    c.close()
    server.kill9()
    opens = sorted(glob.glob(os.path.join(server.data_dir, "raft", "open-*")))
    assert opens, os.listdir(os.path.join(server.data_dir, "raft"))
    # a write torn by a crash: garbage right after the last complete batch
    seg = None
    for f in opens:
        data = open(f, "rb").read()
        end = len(data.rstrip(b"\0"))
        if end > 8:
            seg, at = f, (end + 7) // 8 * 8
    assert seg
    with open(seg, "r+b") as fh:
        fh.seek(at)
        fh.write(b"\xab" * 40)
    server.start()
    c = server.connect()
    assert scalar(c, "SELECT count(*) FROM t") == 20
    c.cursor().execute("INSERT INTO t VALUES (1000)")
    c.close()


def damage_open_segment(server):
    """20 acknowledged inserts, kill -9, then one byte flipped in the middle
    of the open segment's records. Returns (segment path, offset, old byte)."""
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    for i in range(20):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (i, "x" * 100))
    c.close()
    server.kill9()
    raft = os.path.join(server.data_dir, "raft")
    opens = [os.path.join(raft, n) for n in os.listdir(raft) if n.startswith("open-")]
    seg = max(opens, key=lambda f: len(open(f, "rb").read().rstrip(b"\0")))
    data = open(seg, "rb").read()
    at = len(data.rstrip(b"\0")) // 2
    assert at > 1000, at
    with open(seg, "r+b") as fh:
        fh.seek(at)
        fh.write(bytes([data[at] ^ 0x5A]))
    return seg, at, data[at]


@pytest.mark.timeout(90)
def test_damage_inside_an_open_segment_stops_the_node(server):
    """A bad batch with valid batches after it in an open segment is damage
    to acknowledged records, not a torn write: libraft's loader would cut
    the log there and drop them, so the node refuses to start, naming the
    file and offset, and `txlog check` fails the same way."""
    seg, at, byte = damage_open_segment(server)
    p = subprocess.run([ORBITCTL, "txlog", "check", "--data-dir", server.data_dir], capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 1, p.stdout + p.stderr
    assert os.path.basename(seg) in p.stdout and "valid batch follows" in p.stdout, p.stdout
    with pytest.raises(orbit.StartError) as e:
        server.start()
    msg = str(e.value)
    assert os.path.basename(seg) in msg and "valid batch follows" in msg, msg
    # the log was not cut: put the byte back and every row is there
    with open(seg, "r+b") as fh:
        fh.seek(at)
        fh.write(bytes([byte]))
    server.start()
    c = server.connect()
    assert scalar(c, "SELECT count(*) FROM t") == 20
    c.close()


@pytest.mark.timeout(90)
def test_txlog_cut_accepts_the_loss_the_node_refused(server):
    """The refusal names the command that accepts losing the records after
    the damage; after it the node starts, repairs its database to match the
    log, and takes writes. A copy of the segment is kept."""
    seg, at, _ = damage_open_segment(server)
    with pytest.raises(orbit.StartError) as e:
        server.start()
    m = re.search(r"orbitctl txlog cut --data-dir DIR --segment (\S+) --offset (\d+) --force", str(e.value))
    assert m and m.group(1) == os.path.basename(seg), str(e.value)
    base = [ORBITCTL, "txlog", "cut", "--data-dir", server.data_dir, "--segment", m.group(1), "--offset", m.group(2)]
    p = subprocess.run(base, capture_output=True, text=True, timeout=60)
    assert p.returncode == 2, p.stderr  # --force is required
    p = subprocess.run(base + ["--force"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert glob.glob(seg + ".damaged-*"), os.listdir(os.path.dirname(seg))
    server.start()
    c = server.connect()
    n = scalar(c, "SELECT count(*) FROM t")
    assert 0 < n < 20, n
    c.cursor().execute("INSERT INTO t VALUES (100, 'after')")
    assert scalar(c, "SELECT count(*) FROM t") == n + 1
    c.close()
    server.stop()
    p = subprocess.run([ORBITCTL, "txlog", "check", "--data-dir", server.data_dir], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr


@pytest.mark.timeout(90)
def test_corruption_inside_the_log_stops_the_node(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, b blob)")
    cur.execute("INSERT INTO t VALUES (1, randomblob(3000000))")
    cur.execute("INSERT INTO t VALUES (2, randomblob(10))")
    c.close()
    server.stop()
    segs = [f for f in glob.glob(os.path.join(server.data_dir, "raft", "0*-0*")) if os.path.getsize(f) > 1000000]
    assert segs
    victim = segs[0]
    with open(victim, "r+b") as fh:
        fh.seek(os.path.getsize(victim) // 2)
        fh.write(b"\xff\xff\xff\xff")
    with pytest.raises(orbit.StartError) as e:
        server.start()
    msg = str(e.value)
    assert os.path.basename(victim) in msg and "checksum" in msg, msg
