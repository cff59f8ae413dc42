"""Starting, stopping and talking to orbitd processes in integration tests.

Every server is started in its own temporary data dir on free loopback ports and
stopped by PID (SIGTERM, wait, then SIGKILL). Nothing here ever kills by name.
"""
import ctypes
import os
import resource
import shutil
import random
import signal
import socket
import subprocess
import urllib.request
import tempfile
import threading
import time

import psycopg2

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PASSWORD = "orbit-test-pw"
PG_BIN = "/usr/lib/postgresql/15/bin"


def orbitd_path():
    """build/orbitd, or $ORBITD (e.g. build-san/orbitd for a sanitizer run)."""
    p = os.environ.get("ORBITD") or os.path.join(REPO_ROOT, "build", "orbitd")
    return os.path.abspath(p)


def find_bin(name):
    p = shutil.which(name)
    if p:
        return p
    p = os.path.join(PG_BIN, name)
    if os.path.exists(p):
        return p
    raise FileNotFoundError(name)


def raise_nofile():
    """Raise the soft RLIMIT_NOFILE to the hard limit (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _local_port_range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            lo, hi = (int(x) for x in f.read().split())
            return lo, hi
    except (OSError, ValueError):
        return 32768, 60999


def free_port():
    """A free loopback TCP port, below the kernel's ephemeral range: a port
    bind(0) hands out can be taken by some client's outgoing connection
    before the server binds it (seen once: "address already in use")."""
    lo, _ = _local_port_range()
    top = min(lo, 65536) - 1
    for _ in range(1000):
        port = random.randint(max(1024, top - 12000), top)
        if port in _GIVEN:  # handed out already: its server may not have bound it yet
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _GIVEN.add(port)
        return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_GIVEN = set()  # every port free_port returned in this process


def port_accepts(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


_libc = None


def _die_with_parent():
    """preexec_fn: the server gets SIGKILL if the test process dies, so a crashed
    or killed pytest never leaves servers behind."""
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


# every OrbitServer still running, so a watchdog can stop them by PID
LIVE = set()


class StartError(Exception):
    pass


class OrbitServer:
    """One orbitd process. Create, then start(); stop() at the end."""

    def __init__(self, data_dir=None, port=None, http_port=None, args=(), env=None,
                 password=PASSWORD, config=None, tmp_root=None, http=True, listen=True):
        self._own_tmp = None
        if data_dir is None:
            self._own_tmp = tempfile.mkdtemp(prefix="orbit-it-", dir=tmp_root)
            data_dir = os.path.join(self._own_tmp, "data")
        self.data_dir = data_dir
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.http_port = http_port or free_port()
        self.peer_port = free_port()
        self.use_http = http
        self.use_listen = listen
        self.args = list(args)
        self.password = password
        self.extra_env = dict(env or {})
        self.config = config
        self.proc = None
        self._log_base = os.path.join(self._own_tmp or os.path.dirname(os.path.abspath(data_dir)),
                                      "orbitd-%d" % self.port)
        self.log_path = self._log_base + ".log"
        self.starts = 0
        self.returncode = None

    # ---- process control
    def command(self):
        cmd = [orbitd_path(), "--data-dir", self.data_dir]
        if self.use_listen:
            cmd += ["--listen", "%s:%d" % (self.host, self.port)]
        if self.use_http:
            cmd += ["--http", "%s:%d" % (self.host, self.http_port)]
        if self.config:
            cmd += ["--config", self.config]
        if not any(a == "--peer" or a.startswith("--peer=") for a in self.args):
            cmd += ["--peer", "%s:%d" % (self.host, self.peer_port)]
        return cmd + self.args

    def env(self):
        env = dict(os.environ)
        env.pop("ORBIT_PASSWORD", None)
        if self.password is not None:
            env["ORBIT_PASSWORD"] = self.password
        env.update(self.extra_env)
        return env

    def spawn(self):
        """Start the process without waiting for readiness."""
        self.log_path = self._log_base + (".%d" % self.starts if self.starts else "") + ".log"
        self.starts += 1
        self.returncode = None
        logf = open(self.log_path, "ab")
        try:
            self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                         stderr=subprocess.STDOUT, env=self.env(),
                                         preexec_fn=_die_with_parent)
        finally:
            logf.close()
        LIVE.add(self)
        return self

    def start(self, timeout=10.0):
        self.spawn()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout=10.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            rc = self.proc.poll()
            if rc is not None:
                LIVE.discard(self)
                self.returncode = rc
                raise StartError("orbitd exited with code %d before accepting connections; log:\n%s"
                                 % (rc, self.log()))
            if port_accepts(self.host, self.port):
                # the port accepts; the server logs event=ready when it serves
                # (fallback: a startup packet is answered with an auth request)
                t_port = time.monotonic()
                while time.monotonic() < deadline:
                    if "event=ready" in self.log():
                        return
                    if time.monotonic() - t_port > 1.0 and self._probe():
                        return
                    if self.proc.poll() is not None:
                        break
                    time.sleep(0.02)
                continue
            time.sleep(0.05)
        self.stop()
        raise StartError("orbitd did not accept connections on %s:%d within %.0f s; log:\n%s"
                         % (self.host, self.port, timeout, self.log()))

    def _probe(self):
        import rawpg
        try:
            c = rawpg.Conn(self.host, self.port, 2.0)
        except OSError:
            return False
        try:
            c.send(rawpg.startup_packet("orbit", "orbit"))
            t, _ = c.recv_msg(2.0)
            return t == "R"
        except Exception:
            return False
        finally:
            c.close()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        if self.alive():
            os.kill(self.proc.pid, sig)

    def wait(self, timeout):
        try:
            self.returncode = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        LIVE.discard(self)
        return self.returncode

    def stop(self, timeout=15.0):
        """SIGTERM, wait, then SIGKILL. Returns the exit code (negative = signal)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        self.returncode = self.proc.returncode
        LIVE.discard(self)
        return self.returncode

    def kill9(self):
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.returncode = self.proc.returncode if self.proc else None
        LIVE.discard(self)

    def restart(self, timeout=10.0):
        if self.alive():
            self.stop()
        return self.start(timeout)

    def cleanup(self):
        self.stop()
        if self._own_tmp and os.environ.get("ORBIT_KEEP_TMP") is None:
            shutil.rmtree(self._own_tmp, ignore_errors=True)

    def sanitizer_reports(self):
        """AddressSanitizer / LeakSanitizer / UBSan reports in this server's logs
        (only a sanitizer build, e.g. ORBITD=build-san/orbitd, produces them)."""
        text = self.all_logs()
        marks = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                 "WARNING: ThreadSanitizer")
        lines = text.splitlines()
        found = []
        for i, line in enumerate(lines):
            if any(m in line for m in marks):
                found.append("\n".join(lines[i:i + 30]))
        return found

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return "(no log)"

    def all_logs(self):
        d = os.path.dirname(self.log_path)
        out = []
        for name in sorted(os.listdir(d)):
            if name.startswith("orbitd-%d" % self.port) and name.endswith(".log"):
                with open(os.path.join(d, name), "rb") as f:
                    out.append(f.read().decode("utf-8", "replace"))
        return "\n".join(out)

    def metric(self, name):
        """The value of an unlabelled sample on this server's /metrics."""
        body = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http_port, timeout=5).read().decode()
        for line in body.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError("metric %s missing" % name)

    def rss_kib(self):
        return proc_status(self.pid).get("VmRSS", 0)

    # ---- clients
    @property
    def dsn(self):
        return "host=%s port=%d user=orbit dbname=orbit password=%s" % (
            self.host, self.port, self.password or "")

    def connect(self, autocommit=True, **kw):
        params = dict(host=self.host, port=self.port, user="orbit", dbname="orbit",
                      password=self.password, connect_timeout=10)
        params.update(kw)
        c = psycopg2.connect(**params)
        c.autocommit = autocommit
        return c

    def raw(self, user="orbit", password=None, database="orbit", timeout=10.0, **params):
        import rawpg
        return rawpg.connect(self.host, self.port, user,
                             self.password if password is None else password,
                             database, timeout=timeout, **params)

    def raw_socket(self, timeout=10.0):
        import rawpg
        return rawpg.Conn(self.host, self.port, timeout)

    def pg_env(self):
        env = dict(os.environ)
        env.update(PGHOST=self.host, PGPORT=str(self.port), PGUSER="orbit", PGDATABASE="orbit",
                   PGPASSWORD=self.password or "", PGCONNECT_TIMEOUT="10")
        env.pop("PGSERVICE", None)
        return env

    def psql(self, *args, input=None, timeout=60, check=True, host=None):
        cmd = [find_bin("psql"), "-X", "-v", "ON_ERROR_STOP=1"]
        if host:
            cmd += ["-h", host]
        cmd += list(args)
        env = self.pg_env()
        p = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and p.returncode != 0:
            raise AssertionError("psql %r failed (%d):\nstdout: %s\nstderr: %s\nserver log tail:\n%s"
                                 % (args, p.returncode, p.stdout, p.stderr, self.log()[-3000:]))
        return p

    def pgbench(self, *args, timeout=120, cwd=None):
        cmd = [find_bin("pgbench")] + list(args)
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                              env=self.pg_env(), cwd=cwd)

    def __repr__(self):
        return "OrbitServer(pid=%s, port=%d, data_dir=%s)" % (self.pid, self.port, self.data_dir)


def proc_status(pid):
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, RssAnon, RssFile, ...)
    as ints; {} when the process is gone."""
    out = {}
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                k, _, v = line.partition(":")
                v = v.split()
                if len(v) == 2 and v[1] == "kB":
                    out[k] = int(v[0])
    except (OSError, TypeError):
        pass
    return out


class MemSampler:
    """Samples /proc/PID/status of servers (label -> OrbitServer) on a thread
    every interval seconds, following restarts (the pid is read at each
    sample). RssAnon is the process's heap and other private memory; VmRSS
    and VmHWM also count the pages of the database file SQLite maps, which
    grow with the database whatever the heap does. Use as a context manager;
    peak(label, since, until) is the highest RssAnon (kB) seen in a window of
    time.monotonic() values."""

    def __init__(self, servers, interval=0.01):
        self.servers = dict(servers)
        self.interval = interval
        self.samples = []  # (t, label, pid, status dict)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            for label, s in self.servers.items():
                pid = s.pid if s.alive() else None
                st = proc_status(pid) if pid else {}
                if "RssAnon" in st:
                    self.samples.append((time.monotonic(), label, pid, st))
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(5)

    def window(self, label, since=None, until=None, field="RssAnon"):
        return [st[field] for t, lb, _, st in list(self.samples)
                if lb == label and (since is None or t >= since) and (until is None or t <= until)]

    def peak(self, label, since=None, until=None, field="RssAnon"):
        return max(self.window(label, since, until, field), default=0)

    def last(self, label, field="RssAnon"):
        w = self.window(label, field=field)
        return w[-1] if w else 0


def run_orbitd(args, env=None, timeout=10, password=PASSWORD):
    """Run orbitd to completion (for --help, bad flags, ...)."""
    e = dict(os.environ)
    e.pop("ORBIT_PASSWORD", None)
    if password is not None:
        e["ORBIT_PASSWORD"] = password
    e.update(env or {})
    p = subprocess.Popen([orbitd_path()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=e,
                         preexec_fn=_die_with_parent)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise AssertionError("orbitd %r did not exit within %d s; output:\n%s%s"
                             % (args, timeout, out.decode(errors="replace"), err.decode(errors="replace")))
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace")


def pgbench_balances(conn):
    """(sum abalance, sum tbalance, sum bbalance, sum delta) from the pgbench tables."""
    cur = conn.cursor()
    out = []
    for q in ("SELECT sum(abalance) FROM pgbench_accounts",
              "SELECT sum(tbalance) FROM pgbench_tellers",
              "SELECT sum(bbalance) FROM pgbench_branches",
              "SELECT sum(delta) FROM pgbench_history"):
        cur.execute(q)
        v = cur.fetchone()[0]
        out.append(int(v or 0))
    return tuple(out)


def parse_pgbench(output):
    """Pull the summary numbers out of pgbench's output."""
    import re
    r = {}
    m = re.search(r"number of transactions actually processed: (\d+)", output)
    r["processed"] = int(m.group(1)) if m else None
    m = re.search(r"number of failed transactions: (\d+)", output)
    r["failed"] = int(m.group(1)) if m else None
    m = re.search(r"tps = ([\d.]+) \(without initial connection time\)", output) or \
        re.search(r"tps = ([\d.]+)", output)
    r["tps"] = float(m.group(1)) if m else None
    m = re.search(r"latency average = ([\d.]+) ms", output)
    r["latency_ms"] = float(m.group(1)) if m else None
    r["aborted"] = "aborted" in output
    return r
