"""Chaos tests: a 3-node orbitd cluster under a steady write load while a
fault hits it; after each scenario heals, every acknowledged write is on
every node, `orbitctl cluster verify` finds no divergence, and no two nodes
acted as leader in the same term.

Each node runs in a network namespace of its own (veth pairs on a private
bridge, a private 10.231.X.0/24 subnet), so a partition is real: an nftables
table in the bridge family drops the frames between the cut-off node and the
others, while the test (in the root namespace) still reaches every node.
Everything is removed at the end, pass or fail. Without root, ip netns or
nft the tests are skipped with the reason.

Faults: kill -9 of the leader, kill -9 of a follower, SIGSTOP/SIGCONT of the
leader, a partition of the leader, a restart of all nodes at once, a rolling
restart (also under real pgbench, which must see no error), a leadership
transfer under load, and full CPU load (busy loops on every core: no
election may start). The
measured failover times (fault -> first acknowledged write of a fresh
libpq multi-host connection with target_session_attrs=read-write) are
printed."""
import glob
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import psycopg2
import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import orbit  # noqa: E402

IDS = ["a1a1a1a1a1a1a1a1", "b2b2b2b2b2b2b2b2", "c3c3c3c3c3c3c3c3"]
CTL = os.path.join(os.path.dirname(orbit.orbitd_path()), "orbitctl")
RESULTS = []


def report(msg):
    """Printed in the terminal summary (conftest.py)."""
    RESULTS.append(msg)


def run(*cmd, check=True):
    p = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("%s: %s" % (" ".join(cmd), p.stderr.strip()))
    return p


class Net:
    """A bridge, one namespace + veth per node, and the partition table."""

    def __init__(self, n):
        tag = os.getpid() % 9000 + 100
        self.br = "obr%d" % tag
        self.table = "orbchaos%d" % tag
        self.prefix = "10.231.%d" % (tag % 250)
        self.ns = ["orbch%d_%d" % (tag, i) for i in range(n)]
        self.ips = ["%s.%d" % (self.prefix, 10 + i) for i in range(n)]
        self.made = []

    def setup(self):
        run("ip", "link", "add", self.br, "type", "bridge")
        self.made.append(("link", self.br))
        run("ip", "addr", "add", self.prefix + ".1/24", "dev", self.br)
        run("ip", "link", "set", self.br, "up")
        for i, ns in enumerate(self.ns):
            run("ip", "netns", "add", ns)
            self.made.append(("netns", ns))
            veth = "obv%s_%d" % (self.br[3:], i)
            run("ip", "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
            run("ip", "link", "set", veth, "master", self.br, "up")
            run("ip", "-n", ns, "addr", "add", self.ips[i] + "/24", "dev", "eth0")
            run("ip", "-n", ns, "link", "set", "eth0", "up")
            run("ip", "-n", ns, "link", "set", "lo", "up")

    def cut(self, i):
        """Drop every frame between node i and the other nodes."""
        run("nft", "add", "table", "bridge", self.table)
        run("nft", "add", "chain", "bridge", self.table, "cut",
            "{ type filter hook forward priority 0 ; }")
        run("nft", "add", "rule", "bridge", self.table, "cut", "ip", "saddr", self.ips[i], "drop")
        run("nft", "add", "rule", "bridge", self.table, "cut", "ip", "daddr", self.ips[i], "drop")

    def heal(self):
        run("nft", "delete", "table", "bridge", self.table, check=False)

    def teardown(self):
        self.heal()
        for kind, name in reversed(self.made):
            if kind == "netns":
                run("ip", "netns", "del", name, check=False)
            else:
                run("ip", "link", "del", name, check=False)


def usable():
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "%s not installed (iproute2, nftables)" % tool
    probe = "orbchprobe%d" % os.getpid()
    p = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if p.returncode != 0:
        return "cannot create a network namespace: %s" % p.stderr.strip()
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    p = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True)
    if p.returncode != 0:
        return "nft does not work here: %s" % p.stderr.strip()
    return None


@pytest.fixture(scope="module")
def net():
    why = usable()
    if why:
        pytest.skip(why)
    n = Net(3)
    try:
        n.setup()
        yield n
    finally:
        n.teardown()


class NsServer(orbit.OrbitServer):
    """orbitd inside a network namespace (ip netns exec execs it: same PID)."""

    def __init__(self, ns, ip, **kw):
        super().__init__(**kw)
        self.ns = ns
        self.host = ip

    def command(self):
        return ["ip", "netns", "exec", self.ns] + super().command()


class Cluster:
    def __init__(self, net):
        self.net = net
        self.nodes = [NsServer(net.ns[i], net.ips[i]) for i in range(3)]
        members = ",".join("%s@%s:%d" % (IDS[i], n.host, n.peer_port) for i, n in enumerate(self.nodes))
        for i, n in enumerate(self.nodes):
            os.makedirs(n.data_dir, exist_ok=True)
            with open(os.path.join(n.data_dir, "node-id"), "w") as f:
                f.write("orbit-node-id %s\n" % IDS[i])
            n.args += ["--initial-members", members]
        self.dsn = ("host=%s port=%s user=orbit dbname=orbit password=%s "
                    "target_session_attrs=read-write connect_timeout=2" % (
                        ",".join(n.host for n in self.nodes), ",".join(str(n.port) for n in self.nodes),
                        orbit.PASSWORD))

    def start(self):
        for n in self.nodes:
            n.spawn()
        for n in self.nodes:
            n.wait_ready(30)
        c = self.connect(timeout=30)
        c.cursor().execute("CREATE TABLE w (id integer PRIMARY KEY, src text, t real)")
        c.close()

    def connect(self, timeout=20):
        deadline = time.time() + timeout
        while True:
            try:
                c = psycopg2.connect(self.dsn)
                c.autocommit = True
                return c
            except psycopg2.Error:
                if time.time() > deadline:
                    raise
                time.sleep(0.05)

    def leader(self, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            for n in self.nodes:
                if not n.alive():
                    continue
                try:
                    c = n.connect(connect_timeout=2)
                except psycopg2.Error:
                    continue
                try:
                    if c.get_parameter_status("in_hot_standby") == "off":
                        return n
                finally:
                    c.close()
            time.sleep(0.05)
        raise AssertionError("no leader within %d s" % timeout)

    def stop(self):
        for n in self.nodes:
            try:
                n.stop()
            finally:
                n.cleanup()


class Load:
    """A steady writer on one connection, and a prober that opens a fresh
    multi-host connection for every write (what a client after a failover
    sees). Every acknowledged id is recorded; an error leaves the id's
    outcome unknown (it may or may not be committed)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.acked = {}
        self.unknown = set()
        self.stop_ev = threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.writer, daemon=True),
                        threading.Thread(target=self.prober, daemon=True)]
        self.probes = []  # probe threads, joined at stop

    def _insert(self, c, k, src):
        try:
            c.cursor().execute("INSERT INTO w VALUES (%s, %s, %s)", (k, src, time.time()))
        except psycopg2.Error:
            with self.lock:
                self.unknown.add(k)
            raise
        with self.lock:
            self.acked[k] = (time.monotonic(), c.info.host)

    def writer(self):
        c, k = None, 0
        while not self.stop_ev.is_set():
            try:
                if c is None:
                    c = self.cluster.connect(timeout=1)
                k += 1
                self._insert(c, k, "writer")
                time.sleep(0.002)
            except psycopg2.Error:
                if c is not None:
                    c.close()
                c = None
                time.sleep(0.02)
        if c is not None:
            c.close()

    def probe(self, k):
        try:
            c = psycopg2.connect(self.cluster.dsn)
        except psycopg2.Error:
            return
        try:
            c.autocommit = True
            self._insert(c, k, "prober")
        except psycopg2.Error:
            pass
        finally:
            c.close()

    def prober(self):
        # Each write on its own thread: one sent to a leader that is then
        # paused (SIGSTOP) waits for it as long as it stays paused (the
        # kernel still acknowledges the TCP traffic, so no libpq timeout
        # fires), and a client after a failover gives up on it and tries
        # again, as this one does after 3 s.
        k = 1000000
        while not self.stop_ev.is_set():
            k += 1
            t = threading.Thread(target=self.probe, args=(k,), daemon=True)
            self.probes.append(t)
            t.start()
            t.join(3.0)
            time.sleep(0.02)

    def start(self):
        for t in self.threads:
            t.start()
        return self

    def stop(self):
        self.stop_ev.set()
        for t in self.threads + self.probes:
            t.join(30)

    def first_ack_after(self, t0, not_host=None, timeout=20):
        """Seconds from t0 to the first write acknowledged after it (by a node
        other than not_host: the new leader after a failover)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                after = [t for t, host in self.acked.values() if t > t0 and host != not_host]
            if after:
                return min(after) - t0
            time.sleep(0.01)
        raise AssertionError("no write was acknowledged within %d s of the fault" % timeout)

    def longest_gap(self, t0, t1):
        """The longest time without an acknowledged write in [t0, t1]."""
        with self.lock:
            return longest_gap([t for t, _ in self.acked.values()], t0, t1)


def longest_gap(times, t0, t1):
    """The longest time in [t0, t1] between two of times (or an edge)."""
    edges = [t0] + sorted(t for t in times if t0 <= t <= t1) + [t1]
    return max(b - a for a, b in zip(edges, edges[1:]))


def leaders_by_term(cluster):
    """term -> ids of the nodes that logged themselves leader in it."""
    seen = {}
    for i, n in enumerate(cluster.nodes):
        for m in re.finditer(r"event=cluster\.role role=leader term=(\d+)", n.all_logs()):
            seen.setdefault(int(m.group(1)), set()).add(IDS[i])
    return seen


def check_healed(cluster, load, what):
    """Every node back, every acknowledged write everywhere, no divergence,
    one leader per term."""
    for n in cluster.nodes:
        if not n.alive():
            rc = n.returncode
            assert rc in (None, 0, 3, -9, -signal.SIGKILL), "%s exited with %r:\n%s" % (n, rc, n.log()[-3000:])
            n.start(30)
    cluster.leader(30)
    acked = set(load.acked)
    assert acked, "no write was acknowledged in %s" % what
    deadline = time.time() + 30
    missing = None
    while time.time() < deadline:
        missing = {}
        for n in cluster.nodes:
            try:
                c = n.connect(connect_timeout=2)
                cur = c.cursor()
                cur.execute("SELECT id FROM w")
                have = {r[0] for r in cur.fetchall()}
                c.close()
            except psycopg2.Error as e:
                missing[n.host] = str(e)
                continue
            lost = acked - have
            extra = have - acked - load.unknown
            assert not extra, "%s holds ids nobody wrote: %r" % (n.host, sorted(extra)[:10])
            if lost:
                missing[n.host] = sorted(lost)[:10]
        if not missing:
            break
        time.sleep(0.2)
    assert not missing, "%s: acknowledged writes missing: %r\n%s" % (what, missing, "\n".join(
        "---- %s ----\n%s" % (n.host, n.log()[-5000:]) for n in cluster.nodes))
    p = subprocess.run([CTL, "cluster", "verify", "--peer", "%s:%d" % (cluster.nodes[0].host,
                                                                     cluster.nodes[0].peer_port)],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "%s: cluster verify:\n%s%s" % (what, p.stdout, p.stderr)
    dup = {t: ids for t, ids in leaders_by_term(cluster).items() if len(ids) > 1}
    assert not dup, "%s: two leaders in one term: %r" % (what, dup)
    return len(acked)


@pytest.fixture
def cluster(net):
    c = Cluster(net)
    try:
        c.start()
        yield c
    finally:
        net.heal()
        c.stop()


def scenario(cluster, name, fault, heal=None, settle=2.0, keep_load=False):
    load = Load(cluster).start()
    try:
        time.sleep(1.0)
        assert load.acked, "the load did not start"
        t0 = time.monotonic()
        old = fault()  # the node that led before, when the fault hit it
        t_fault = getattr(old, "t_fault", t0)
        try:
            failover = load.first_ack_after(t_fault, not_host=old.host if old else None)
        except AssertionError as e:
            tails = "\n".join("---- %s%s ----\n%s" % (n.host, " (faulted)" if n is old else "", n.log()[-4000:])
                               for n in cluster.nodes)
            raise AssertionError("%s: %s\n%s" % (name, e, tails)) from None
        time.sleep(settle)
        gap = load.longest_gap(t_fault, time.monotonic())
        if heal:
            heal(old)
        time.sleep(1.0)
    finally:
        load.stop()
    total = check_healed(cluster, load, name)
    report("%-24s first write %s %.2f s after the fault, longest pause %.2f s; %d writes "
           "acknowledged, %d unknown; checks passed" % (name, "on the new leader" if old else "",
                                                       failover, gap, total, len(load.unknown)))
    if keep_load:
        load.t_fault, load.old_host = t_fault, old.host if old else None
        return load
    return failover


@pytest.mark.timeout(150)
def test_kill_leader(cluster):
    def fault():
        lead = cluster.leader()
        lead.kill9()
        lead.t_fault = time.monotonic()
        return lead
    scenario(cluster, "kill -9 leader", fault, heal=lambda lead: lead.start(30))


@pytest.mark.timeout(150)
def test_kill_follower(cluster):
    victim = {}

    def fault():
        lead = cluster.leader()
        victim["f"] = next(n for n in cluster.nodes if n is not lead)
        victim["f"].kill9()
        return None
    scenario(cluster, "kill -9 follower", fault, heal=lambda _: victim["f"].start(30))


@pytest.mark.timeout(150)
def test_pause_leader(cluster):
    def fault():
        lead = cluster.leader()
        lead.signal(signal.SIGSTOP)
        lead.t_fault = time.monotonic()
        return lead

    def heal(lead):
        time.sleep(1.0)  # paused ~3 s in all: well past the election timeout
        lead.signal(signal.SIGCONT)
    scenario(cluster, "SIGSTOP/SIGCONT leader", fault, heal=heal)


def node_state(n):
    import json
    import urllib.request
    url = "http://%s:%d/status" % (n.host, n.http_port)
    return json.loads(urllib.request.urlopen(url, timeout=2).read())["state"]


@pytest.mark.timeout(150)
def test_partition_leader(cluster, net):
    state = {}

    def watch(lead, t0):
        # cut off from the quorum, it must stop leading (libraft's check-quorum:
        # no majority heard from within an election timeout); with records in
        # flight it exits instead (fencing) and is restarted by the checks
        while time.monotonic() - t0 < 10:
            try:
                if not lead.alive() or node_state(lead) != "leader":
                    break
            except OSError:
                if not lead.alive():
                    break
            time.sleep(0.01)
        state["stepdown"] = time.monotonic() - t0

    def fault():
        lead = cluster.leader()
        net.cut(cluster.nodes.index(lead))
        t0 = lead.t_fault = time.monotonic()
        state["watch"] = threading.Thread(target=watch, args=(lead, t0), daemon=True)
        state["watch"].start()
        return lead

    def heal(lead):
        state["watch"].join(15)
        net.heal()

    load = scenario(cluster, "partition leader", fault, heal=heal, keep_load=True)
    assert state["stepdown"] < 3, "the cut-off leader kept leading %.2f s (election timeout 0.5 s)" % state["stepdown"]
    # no write the cut-off leader acknowledged after the cut: it could not
    # reach a quorum (a commit already replicated may still be answered at
    # the moment of the cut)
    late = sorted(t - load.t_fault for t, host in load.acked.values()
                  if host == load.old_host and t > load.t_fault + 0.5)
    assert not late, "the cut-off leader acknowledged writes %r s after the cut" % late[:5]
    report("%-24s the cut-off leader stopped leading %.2f s after the cut" % ("partition leader",
                                                                           state["stepdown"]))


@pytest.mark.timeout(120)
def test_transfer_under_load(cluster):
    """orbitctl cluster transfer while writes go on: the leader lets the
    commits in flight land before handing over, so none fails as 'outcome
    unknown' and the old leader does not fence itself (restart)."""
    state = {}

    def fault():
        lead = cluster.leader()
        state["lead"] = lead
        lead.t_fault = time.monotonic()
        p = subprocess.run([CTL, "cluster", "transfer", "--peer", "%s:%d" % (lead.host, lead.peer_port)],
                           capture_output=True, text=True, timeout=30)
        assert p.returncode == 0, p.stdout + p.stderr
        return lead

    scenario(cluster, "transfer under load", fault)
    old = state["lead"]
    assert old.alive() and "event=repl.fenced" not in old.all_logs(), old.log()[-3000:]
    assert "orbitctl cluster transfer: handing leadership over" in old.all_logs(), old.log()[-3000:]


@pytest.mark.timeout(120)
def test_no_election_under_full_cpu_load(cluster):
    """Two busy loops per core for 8 s next to the cluster and its write
    load: heartbeats (every 100 ms) still arrive within the 500 ms election
    timeout, so no node stands for election and the leader keeps its term
    while writes go on being acknowledged."""
    load = Load(cluster).start()
    hogs = []
    try:
        time.sleep(1.0)
        assert load.acked, "the load did not start"
        terms = leaders_by_term(cluster)
        candidates = sum(n.all_logs().count("role=candidate") for n in cluster.nodes)
        before = len(load.acked)
        hogs = [subprocess.Popen(["/bin/sh", "-c", "while :; do :; done"]) for _ in range(2 * (os.cpu_count() or 2))]
        time.sleep(8)
        during = len(load.acked) - before
    finally:
        for h in hogs:
            h.kill()
            h.wait()
        load.stop()
    assert leaders_by_term(cluster) == terms, "a new term under CPU load: %r -> %r" % (terms, leaders_by_term(cluster))
    assert sum(n.all_logs().count("role=candidate") for n in cluster.nodes) == candidates, "an election was started"
    assert during > 50, "only %d writes acknowledged in 8 s under CPU load" % during
    total = check_healed(cluster, load, "cpu load")
    report("%-24s %d busy loops for 8 s: no election, %d writes acknowledged meanwhile (%d in all)"
           % ("full cpu load", len(hogs), during, total))


@pytest.mark.timeout(180)
def test_restart_all_nodes(cluster):
    def fault():
        for n in cluster.nodes:
            n.kill9()
        for n in reversed(cluster.nodes):
            n.spawn()
            time.sleep(0.2)
        for n in cluster.nodes:
            n.wait_ready(30)
        return None
    scenario(cluster, "restart all nodes", fault)


def rolling_restart(cluster):
    """SIGTERM each node in turn, followers first, the leader last (it hands
    leadership over before draining), each back before the next goes."""
    lead = cluster.leader()
    order = [n for n in cluster.nodes if n is not lead] + [lead]
    for n in order:
        assert n.stop() == 0, "%s did not stop cleanly:\n%s" % (n, n.log()[-3000:])
        n.start(30)
        cluster.leader(30)
        time.sleep(0.5)


@pytest.mark.timeout(180)
def test_rolling_restart(cluster):
    scenario(cluster, "rolling restart", lambda: rolling_restart(cluster), settle=0.5)


# TPC-B (pgbench's builtin script) plus one row in w per transaction whose
# id names the client and its transaction: :n counts the client's
# transactions as pgbench's per-transaction log does (transaction_no), so
# the log says which ids were acknowledged.
PGBENCH_SCRIPT = """\\set aid random(1, 100000 * :scale)
\\set bid random(1, 1 * :scale)
\\set tid random(1, 10 * :scale)
\\set delta random(-5000, 5000)
\\set n :n + 1
BEGIN;
UPDATE pgbench_accounts SET abalance = abalance + :delta WHERE aid = :aid;
SELECT abalance FROM pgbench_accounts WHERE aid = :aid;
UPDATE pgbench_tellers SET tbalance = tbalance + :delta WHERE tid = :tid;
UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;
INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (:tid, :bid, :aid, :delta, CURRENT_TIMESTAMP);
INSERT INTO w VALUES (:client_id * 1000000 + :n, 'pgbench', 0);
END;
"""


def switchover_events(cluster):
    """The nodes' log lines about stops, roles and hand-overs, in time order."""
    ev = re.compile(r"event=(shutdown|stopped|ready|cluster\.role|repl\.(transfer\w*|hold\w*|fenced))\b")
    lines = sorted("%s %s" % (line.split()[0], n.host) + line[len(line.split()[0]):]
                   for n in cluster.nodes for line in n.all_logs().splitlines() if ev.search(line))
    return "\n".join(lines)


class PgbenchLoad:
    """What check_healed needs of a load, read from pgbench's per-transaction
    logs (-l: client, transaction number, latency or "failed", script, end
    time in s and us): the ids of the transactions logged as done are
    acknowledged (acked: id -> end time); a failed transaction's id, and the
    one an aborted client was running, may or may not be committed."""

    def __init__(self, log_prefix, output):
        self.acked, self.unknown, self.failed = {}, set(), 0
        last = {}
        for path in glob.glob(log_prefix + ".*"):
            with open(path) as f:
                for line in f:
                    client, no, lat, _, sec, usec = line.split()[:6]
                    k = int(client) * 1000000 + int(no)
                    last[int(client)] = max(last.get(int(client), 0), int(no))
                    if lat == "failed":
                        self.failed += 1
                        self.unknown.add(k)
                    else:
                        self.acked[k] = int(sec) + int(usec) / 1e6
        self.aborted = sorted({int(c) for c in re.findall(r"client (\d+) aborted", output)})
        for c in self.aborted:
            self.unknown.add(c * 1000000 + last.get(c, 0) + 1)


@pytest.mark.timeout(180)
def test_rolling_restart_under_pgbench(cluster, tmp_path):
    """The rolling restart under real pgbench: TPC-B plus one row of w per
    transaction, a new connection for each (-C) through the multi-host DSN
    with target_session_attrs=read-write, so that every transaction looks
    for the leader. pgbench must end without an error (no failed
    transaction, no aborted client), and every transaction it logged as
    done must be on every node, with TPC-B's balances consistent on each.
    One thread per client (-j = -c): pgbench connects synchronously, so a
    thread that waits for its other client's connection would leave this
    client's fresh session on the old leader idle through the switchover."""
    pgbench = orbit.find_bin("pgbench")
    # libpq's 2 s connect_timeout of the other scenarios (for the paused
    # leader) could expire on a loaded machine before anything went wrong
    assert "connect_timeout=2" in cluster.dsn
    dsn = cluster.dsn.replace("connect_timeout=2", "connect_timeout=10")
    p = subprocess.run([pgbench, "-i", "-s", "1", dsn], capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, "pgbench -i:\n%s%s" % (p.stdout, p.stderr)
    script = tmp_path / "tpcb-w.sql"
    script.write_text(PGBENCH_SCRIPT)
    prefix = str(tmp_path / "pgbench_log")
    duration = 25  # the restart takes 3-5 s here; pgbench must outlast it
    bench = subprocess.Popen([pgbench, "-n", "-C", "-c", "4", "-j", "4", "-T", str(duration), "-D", "n=0",
                              "-f", str(script), "-l", "--log-prefix", prefix, dsn],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=orbit._die_with_parent)
    try:
        time.sleep(2.0)
        assert bench.poll() is None, "pgbench ended early:\n%s%s" % bench.communicate()
        t0 = time.time()
        rolling_restart(cluster)
        t1 = time.time()
        ended = bench.poll() is not None
        out, err = bench.communicate(timeout=duration + 60)
        assert not ended, "pgbench ended before the rolling restart did (%.1f s):\n%s%s\n%s" % (
            t1 - t0, out, err, switchover_events(cluster))
    finally:
        if bench.poll() is None:
            bench.kill()
            bench.wait()
    output = out + err
    r = orbit.parse_pgbench(output)
    load = PgbenchLoad(prefix, output)
    total = check_healed(cluster, load, "rolling restart under pgbench")
    for n in cluster.nodes:
        c = n.connect(connect_timeout=2)
        a, t, b, d = orbit.pgbench_balances(c)
        cur = c.cursor()
        cur.execute("SELECT count(*) FROM pgbench_history")
        hist = cur.fetchone()[0]
        c.close()
        assert a == t == b == d, "%s: balances differ: accounts %d tellers %d branches %d history %d" % (
            n.host, a, t, b, d)
        assert total <= hist <= total + len(load.unknown), (n.host, hist, total, len(load.unknown))
    during = sum(1 for t in load.acked.values() if t0 <= t <= t1)
    report("%-24s pgbench -C -c 4: %s transactions (%d during the %.1f s restart, longest pause %.2f s), "
           "%s failed, %d clients aborted; checks passed" % (
               "rolling restart pgbench", r["processed"], during, t1 - t0,
               longest_gap(load.acked.values(), t0, t1), r["failed"], len(load.aborted)))
    assert bench.returncode == 0 and not load.aborted and not r["failed"] and not load.failed, \
        "pgbench reported errors during the rolling restart (exit %d):\n%s\n%s" % (
            bench.returncode, output[-4000:], switchover_events(cluster))
    assert r["processed"] == total, (r, total)
