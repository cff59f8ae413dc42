"""orbitctl txlog dump / txlog check on data dirs written by a real orbitd:
records as JSON lines, a clean check, a check after kill -9 (open segments),
usage errors and exit codes, corrupted segments named in the report, a
database ahead of its log (a warning), a running node (refused). Neither
command may change a byte of the data dir."""
import json
import os
import sqlite3
import subprocess
import time
import urllib.request

import pytest

import orbit

ORBITCTL = os.path.join(os.path.dirname(orbit.orbitd_path()), "orbitctl")


def orbitctl(*args, timeout=60):
    p = subprocess.run([ORBITCTL, *args], capture_output=True, text=True, timeout=timeout)
    assert p.returncode >= 0, "orbitctl died of signal %d: %s" % (-p.returncode, p.stderr)
    assert "Sanitizer" not in p.stderr and "runtime error" not in p.stderr, p.stderr
    return p


def dump(data_dir, *extra):
    p = orbitctl("txlog", "dump", "--data-dir", data_dir, *extra)
    assert p.returncode == 0, p.stderr
    return [json.loads(line) for line in p.stdout.splitlines()]


def check(data_dir):
    return orbitctl("txlog", "check", "--data-dir", data_dir)


def tree_state(d):
    """Every regular file below d with its bytes (orbitd.pid aside: orbitd's own)."""
    out = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if f != "orbitd.pid" and os.path.isfile(p):
                with open(p, "rb") as fh:
                    out[os.path.relpath(p, d)] = fh.read()
    return out


def snapshots_taken(s):
    body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % s.http_port, timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith("orbit_raft_snapshots_total "):
            return float(line.split()[1])
    return 0


def write_rows(s, n, snapshot=False):
    """A table and n single-row transactions (records LSN 1..n+1)."""
    c = s.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    for i in range(n):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (i, "x" * (i % 23)))
    deadline = time.time() + 10
    while snapshot and snapshots_taken(s) < 1 and time.time() < deadline:
        time.sleep(0.1)
    c.close()


@pytest.fixture
def stopped(orbit_factory):
    """A stopped node: 201 records, a snapshot (the log is compacted)."""
    s = orbit_factory(args=["--snapshot-threshold", "64"])
    write_rows(s, 200, snapshot=True)
    assert s.stop() == 0
    return s


@pytest.mark.timeout(120)
def test_dump_and_check_a_stopped_node(stopped):
    d = stopped.data_dir
    before = tree_state(d)
    recs = dump(d)
    lsns = [r["lsn"] for r in recs]
    assert lsns[-1] == 201 and lsns == list(range(lsns[0], 202))
    assert lsns[0] > 1  # compacted
    assert recs[-1]["changes"] == [{"op": "insert", "table": "t", "rowid": 199, "values": [199, "x" * (199 % 23)]}]
    assert [r["lsn"] for r in dump(d, "--from", "190")] == list(range(190, 202))
    assert dump(d, "--from", "202") == []
    p = check(d)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "result:    ok" in p.stdout
    assert "applied LSN 201 (the end of the log)" in p.stdout
    assert "SHA-256 ok" in p.stdout
    assert "problem" not in p.stdout
    assert tree_state(d) == before


@pytest.mark.timeout(120)
def test_check_after_kill9(orbit_factory):
    s = orbit_factory()
    write_rows(s, 50)
    s.kill9()
    d = s.data_dir
    assert any(n.startswith("open-") for n in os.listdir(os.path.join(d, "raft")))
    before = tree_state(d)
    p = check(d)
    assert p.returncode == 0, p.stdout + p.stderr
    assert "records:   51, LSN 1..51" in p.stdout
    assert [r["lsn"] for r in dump(d)] == list(range(1, 52))
    assert tree_state(d) == before  # open segments stay as they were


@pytest.mark.timeout(60)
def test_usage_errors(stopped):
    d = stopped.data_dir
    assert orbitctl("txlog").returncode == 2
    assert orbitctl("txlog", "frobnicate").returncode == 2
    assert orbitctl("txlog", "check").returncode == 2
    assert orbitctl("txlog", "check", "--data-dir", d, "--bogus").returncode == 2
    assert orbitctl("txlog", "dump", "--data-dir", d, "--from", "x").returncode == 2
    assert orbitctl("txlog", "dump", "--data-dir", d, "--from", "-1").returncode == 2
    p = check(d + "-missing")
    assert p.returncode == 2 and "No such file" in p.stderr
    p = orbitctl("txlog", "dump", "--data-dir", d + "-missing")
    assert p.returncode == 1 and "No such file" in p.stderr
    p = orbitctl("txlog", "dump", "--data-dir", os.path.join(d, "snapshots"))
    assert p.returncode == 1 and "not an Orbit data directory" in p.stderr
    assert "txlog check --data-dir" in orbitctl("--help").stdout


COMMANDS = [["check"], ["txlog", "dump"], ["txlog", "check"], ["txlog", "cut"], ["cluster", "status"], ["cluster", "add"],
            ["cluster", "remove"], ["cluster", "assign"], ["cluster", "transfer"], ["cluster", "verify"],
            ["cluster", "recover"], ["version"]]


def test_every_command_has_help_and_json():
    listing = orbitctl("--help").stdout
    for words in COMMANDS:
        assert "orbitctl " + " ".join(words) in listing, words
        p = orbitctl(*words, "--help")
        assert p.returncode == 0 and p.stdout.startswith("Usage: orbitctl " + " ".join(words)), (words, p.stdout)
        assert "--json" in p.stdout or words in (["version"], ["txlog", "dump"]), (words, p.stdout)
    # a command without JSON of its own is wrapped: exit code and texts
    p = orbitctl("cluster", "verify", "--peer", "127.0.0.1:1", "--json")
    assert p.returncode == 1, p.stdout + p.stderr
    j = json.loads(p.stdout)
    assert j["command"] == "cluster verify" and j["ok"] is False and j["exit_code"] == 1, j
    assert "cannot connect" in j["error"], j
    p = orbitctl("version", "--json")
    assert p.returncode == 0 and json.loads(p.stdout)["output"].startswith("orbitctl "), p.stdout
    assert orbitctl("cluster", "frobnicate").returncode == 2
    assert orbitctl("frobnicate").returncode == 2


@pytest.mark.timeout(120)
def test_corrupt_segment_is_reported(stopped):
    d = stopped.data_dir
    raft = os.path.join(d, "raft")
    name = max((n for n in os.listdir(raft) if n[0].isdigit()), key=lambda n: os.path.getsize(os.path.join(raft, n)))
    path = os.path.join(raft, name)
    size = os.path.getsize(path)
    for off in (0, 9, size // 3, size // 2, size - 1):
        with open(path, "r+b") as f:
            f.seek(off)
            b = f.read(1)
            f.seek(off)
            f.write(bytes([b[0] ^ 0xFF]))
        corrupt = tree_state(d)
        p = check(d)
        assert p.returncode == 1, p.stdout + p.stderr
        assert "problem: raft log" in p.stdout and name in p.stdout, p.stdout
        p = orbitctl("txlog", "dump", "--data-dir", d)
        assert p.returncode == 1 and name in p.stderr, p.stderr
        assert tree_state(d) == corrupt  # nothing repaired or renamed
        with open(path, "r+b") as f:
            f.seek(off)
            f.write(b)
    assert check(d).returncode == 0


@pytest.mark.timeout(60)
def test_database_ahead_is_a_warning(stopped):
    d = stopped.data_dir
    db = sqlite3.connect(os.path.join(d, "orbit.db"))
    db.execute("UPDATE _orbit_applied SET lsn = lsn + 7")
    db.commit()
    db.close()
    p = check(d)
    assert p.returncode == 0, p.stdout
    assert "warning: database ahead of its log" in p.stdout
    assert "orbitd will repair it at start" in p.stdout
    assert "result:    ok, 1 warning" in p.stdout


@pytest.mark.timeout(60)
def test_refuses_a_running_node(stopped):
    d = stopped.data_dir
    stopped.start()
    p = check(d)
    assert p.returncode == 2
    assert "orbitd (pid %d) is running" % stopped.pid in p.stderr
    p = orbitctl("txlog", "dump", "--data-dir", d)  # allowed, with a warning
    assert p.returncode == 0 and "is running" in p.stderr
    assert stopped.stop() == 0
    assert check(d).returncode == 0
