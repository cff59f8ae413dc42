"""Three orbitd processes in one static Raft cluster (initial_members):
records replicate to followers, followers refuse writes with 25006 and
report in_hot_standby, and after kill -9 of the leader another node leads
and takes writes; the old leader rejoins and converges.

This is the groundwork of the HA issue (no --join, no snapshot transfer,
no online revert yet); it proves the replicated commit path end to end."""
import json
import os
import subprocess
import time
import urllib.request

import psycopg2
import pytest

import orbit

IDS = ["a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"]


def leader_of(nodes, timeout=15):
    deadline = time.time() + timeout
    while time.time() < deadline:
        for n in nodes:
            if not n.alive():
                continue
            try:
                c = n.connect()
            except psycopg2.Error:
                continue
            try:
                cur = c.cursor()
                cur.execute("SHOW in_hot_standby")
                if cur.fetchone()[0] == "off":
                    return n
            finally:
                c.close()
        time.sleep(0.1)
    raise AssertionError("no leader within %d s" % timeout)


def count_on(n, table="t"):
    c = n.connect()
    try:
        cur = c.cursor()
        cur.execute("SELECT count(*), coalesce(sum(id), 0) FROM %s" % table)
        return cur.fetchone()
    finally:
        c.close()


def wait_equal(nodes, want, timeout=15, table="t"):
    deadline = time.time() + timeout
    got = None
    while time.time() < deadline:
        try:
            got = [count_on(n, table) for n in nodes]
        except psycopg2.Error as e:   # a restarted node may not have the table yet
            got = str(e)
        if isinstance(got, list) and all(g == want for g in got):
            return
        time.sleep(0.1)
    raise AssertionError("nodes did not converge to %r: %r" % (want, got))


@pytest.mark.timeout(120)
def test_three_nodes_replicate_and_fail_over(orbit_factory):
    nodes = [orbit_factory.new(args=["--election-timeout", "1s"]) for _ in IDS]
    members = ",".join("%s@127.0.0.1:%d" % (i, n.peer_port) for i, n in zip(IDS, nodes))
    for i, n in zip(IDS, nodes):
        os.makedirs(n.data_dir, exist_ok=True)
        with open(os.path.join(n.data_dir, "node-id"), "w") as f:
            f.write("orbit-node-id %s\n" % i)
        n.args += ["--initial-members", members]
    for n in nodes:
        n.spawn()
    for n in nodes:
        n.wait_ready(20)
    lead = leader_of(nodes)
    followers = [n for n in nodes if n is not lead]

    c = lead.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
    for i in range(1, 101):
        cur.execute("INSERT INTO t VALUES (%s, %s)", (i, "v%d" % i))
    c.close()
    wait_equal(nodes, (100, sum(range(1, 101))))
    # one transaction whose record is big enough to travel zstd-compressed
    c = lead.connect()
    c.cursor().execute("CREATE TABLE big (id integer PRIMARY KEY, v text)")
    c.cursor().execute("INSERT INTO big WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                       "WHERE i < 20000) SELECT i, 'row ' || i FROM s")
    c.close()
    wait_equal(nodes, (20000, sum(range(1, 20001))), table="big")

    # /status: this node leads a configuration of three voters
    st = json.loads(urllib.request.urlopen("http://127.0.0.1:%d/status" % lead.http_port, timeout=5).read())
    assert st["state"] == "leader" and len(st["members"]) == 3
    assert sorted(m["id"] for m in st["members"]) == IDS
    assert all(m["role"] == "voter" for m in st["members"])
    assert st["lsn"] == 103 and st["leader_id"] == st["id"]
    ctl = os.path.join(os.path.dirname(orbit.orbitd_path()), "orbitctl")
    p = subprocess.run([ctl, "cluster", "status", "--http", "127.0.0.1:%d" % followers[0].http_port],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert "state follower" in p.stdout and all(i in p.stdout for i in IDS), p.stdout
    assert p.stdout.count("leader") >= 2, p.stdout   # the leader line and its member row
    # every member's own view, asked over its peer port
    assert "STATE" in p.stdout and "APPLIED" in p.stdout, p.stdout
    p = subprocess.run([ctl, "cluster", "status", "--json", "--http", "127.0.0.1:%d" % followers[0].http_port],
                       capture_output=True, text=True, timeout=20)
    assert p.returncode == 0, p.stderr
    ms = json.loads(p.stdout)["members"]
    assert sorted(m["state"] for m in ms) == ["follower", "follower", "leader"], ms
    assert len({m["term"] for m in ms}) == 1 and all(m["lsn"] == 103 for m in ms), ms
    assert all(m["commit_index"] >= m["applied_index"] > 0 for m in ms), ms
    p = subprocess.run([ctl, "cluster", "status", "--http", "127.0.0.1:1"], capture_output=True, text=True, timeout=20)
    assert p.returncode == 1 and "cannot connect" in p.stderr

    # followers are read-only and say so
    f = followers[0].connect()
    cur = f.cursor()
    cur.execute("SELECT pg_is_in_recovery()")
    assert cur.fetchone()[0] is True
    with pytest.raises(psycopg2.Error) as e:
        cur.execute("INSERT INTO t VALUES (1000, 'no')")
    assert e.value.pgcode == "25006"
    f.close()

    # sessions open across the failover hear the new roles (ParameterStatus)
    held = {id(n): n.connect() for n in followers}
    for c in held.values():
        assert c.get_parameter_status("in_hot_standby") == "on"

    # kill -9 the leader: another node leads and takes writes
    t0 = time.time()
    lead.kill9()
    new = leader_of(followers, timeout=20)
    for n in followers:
        c = held[id(n)]
        c.cursor().execute("SELECT 1")
        assert c.get_parameter_status("in_hot_standby") == ("off" if n is new else "on")
        assert c.get_parameter_status("default_transaction_read_only") == ("off" if n is new else "on")
        c.close()
    c = new.connect()
    c.cursor().execute("INSERT INTO t VALUES (101, 'after failover')")
    c.close()
    print("failover: first write %.2f s after kill -9" % (time.time() - t0))
    want = (101, sum(range(1, 102)))
    wait_equal(followers, want)

    # the old leader comes back as a follower and catches up
    lead.start(timeout=20)
    wait_equal(nodes, want, timeout=20)

    # SIGTERM on the leader hands leadership over before it drains
    t0 = time.time()
    assert new.stop() == 0
    assert "event=repl.transferred" in new.log()
    rest = [n for n in nodes if n is not new]
    nl = leader_of(rest, timeout=10)
    c = nl.connect()
    c.cursor().execute("INSERT INTO t VALUES (102, 'after switchover')")
    c.close()
    print("switchover: first write %.2f s after SIGTERM" % (time.time() - t0))
    wait_equal(rest, (102, sum(range(1, 103))))
    for n in nodes:
        n.stop()
