"""Shared helpers for the bench/ scripts: private PostgreSQL 15, orbitd and
PgBouncer instances on free loopback ports, each stopped by PID at the end.

Nothing here kills by process name; every server is a child we started and is
stopped through its PID (and dies with us via PR_SET_PDEATHSIG if we crash).
"""
import ctypes
import glob
import json
import math
import os
import pwd
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO_ROOT, "tests", "integration"))

import rawpg  # noqa: E402

PG_BIN = os.environ.get("PG_BIN", "/usr/lib/postgresql/15/bin")
PASSWORD = "orbit-bench-pw"


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def find_bin(name):
    p = shutil.which(name)
    if p:
        return p
    p = os.path.join(PG_BIN, name)
    if os.path.exists(p):
        return p
    raise SystemExit("%s not found (install postgresql-15 / postgresql-client-15)" % name)


_libc = None


def _pdeathsig():
    global _libc
    try:
        if _libc is None:
            _libc = ctypes.CDLL("libc.so.6", use_errno=True)
        _libc.prctl(1, signal.SIGKILL)
    except Exception:
        pass


def _service_user():
    """PostgreSQL and PgBouncer refuse to run as root: use the postgres user then."""
    if os.geteuid() != 0:
        return None
    try:
        return pwd.getpwnam("postgres")
    except KeyError:
        raise SystemExit("running as root and there is no 'postgres' user to run PostgreSQL as")


def _demote(pw):
    def fn():
        _pdeathsig()
        if pw is not None:
            os.setgroups([])
            os.setgid(pw.pw_gid)
            os.setuid(pw.pw_uid)
    return fn


def wait_port(host, port, proc, timeout, what, logpath):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("%s exited with code %d during startup; log %s:\n%s"
                             % (what, proc.returncode, logpath, tail(logpath)))
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("%s did not accept connections within %d s; log %s:\n%s"
                     % (what, timeout, logpath, tail(logpath)))


def wait_serving(host, port, proc, timeout, what, logpath, password=PASSWORD, database="orbit"):
    """Wait until a full login works (PostgreSQL answers 'starting up' for a while)."""
    wait_port(host, port, proc, timeout, what, logpath)
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        try:
            c = rawpg.connect(host, port, "orbit", password, database, timeout=5)
            c.terminate()
            return
        except (rawpg.ServerError, OSError, EOFError) as e:
            last = e
            time.sleep(0.1)
    raise SystemExit("%s never accepted a login: %s\n%s" % (what, last, tail(logpath)))


def tail(path, n=3000):
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - n))
            return f.read().decode("utf-8", "replace")
    except OSError:
        return "(no log)"


class Proc:
    """A server process we own. stop() sends stop_signal, waits, then SIGKILL."""

    def __init__(self, name, proc, stop_signal, logpath, host="127.0.0.1", port=None):
        self.name, self.proc, self.stop_signal, self.logpath = name, proc, stop_signal, logpath
        self.host, self.port = host, port
        self.http_port = None   # orbitd: the --http port, if any
        self.args = ()          # orbitd: the extra flags it was started with
        self.data = None        # data directory
        self.auth = "scram-sha-256"

    @property
    def pid(self):
        return self.proc.pid

    def stop(self, timeout=30):
        if self.proc.poll() is None:
            try:
                os.kill(self.proc.pid, self.stop_signal)
                self.proc.wait(timeout)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                log("%s (pid %d) did not stop in %d s; SIGKILL" % (self.name, self.proc.pid, timeout))
                try:
                    os.kill(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait()
        return self.proc.returncode


class Workspace:
    """A temp dir and the servers started in it; cleanup() stops them all."""

    def __init__(self, keep=False, prefix="orbit-bench-"):
        self.dir = tempfile.mkdtemp(prefix=prefix)
        os.chmod(self.dir, 0o755)   # the postgres user must reach its data dir
        self.keep = keep
        self.procs = []
        self.pw = _service_user()

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def _chown(self, path):
        if self.pw is not None:
            os.chown(path, self.pw.pw_uid, self.pw.pw_gid)

    def cleanup(self):
        for p in reversed(self.procs):
            try:
                rc = p.stop()
                log("stopped %s (pid %d, exit %s)" % (p.name, p.pid, rc))
            except Exception as e:
                log("stopping %s failed: %s" % (p.name, e))
        self.procs = []
        if self.keep:
            log("kept %s" % self.dir)
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    # ---------------------------------------------------------------- PostgreSQL
    def start_postgres(self, port=None, max_connections=200, extra=(), name="pgdata"):
        port = port or free_port()
        data = self.path(name)
        os.makedirs(data)
        self._chown(data)
        pwfile = self.path("pgpass.txt")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        log("initdb PostgreSQL 15 in %s" % data)
        with open(self.path("initdb.log"), "wb") as lf:
            rc = subprocess.call([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "orbit",
                                  "--auth=scram-sha-256", "--pwfile", pwfile, "-E", "UTF8", "--locale=C"],
                                 stdout=lf, stderr=subprocess.STDOUT, preexec_fn=_demote(self.pw))
        if rc != 0:
            raise SystemExit("initdb failed:\n" + tail(self.path("initdb.log")))
        p = self._launch_postgres(data, port, max_connections, extra,
                                  "postgres.log" if name == "pgdata" else name + ".log")
        c = rawpg.connect("127.0.0.1", port, "orbit", PASSWORD, "postgres")
        c.query1("CREATE DATABASE orbit")
        c.terminate()
        return p

    def _launch_postgres(self, data, port, max_connections, extra, logname):
        sockdir = self.path("pgsock")
        if not os.path.isdir(sockdir):
            os.makedirs(sockdir)
            self._chown(sockdir)
        logpath = self.path(logname)
        cmd = [os.path.join(PG_BIN, "postgres"), "-D", data, "-k", sockdir, "-p", str(port),
               "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=%d" % max_connections,
               "-c", "password_encryption=scram-sha-256"] + list(extra)
        lf = open(logpath, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                preexec_fn=_demote(self.pw))
        lf.close()
        # SIGINT = fast shutdown (SIGTERM would wait for clients to leave)
        p = Proc("postgres", proc, signal.SIGINT, logpath, port=port)
        p.data = data
        self.procs.append(p)
        wait_serving("127.0.0.1", port, proc, 60, "postgres", logpath, database="postgres")
        log("postgres pid %d on 127.0.0.1:%d (%s)" % (proc.pid, port, os.path.basename(data)))
        return p

    def start_postgres_standby(self, primary, name, max_connections=200, extra=()):
        """A streaming hot standby of primary (pg_basebackup -R), started.
        The primary needs wal_level=replica (the default) and max_wal_senders;
        initdb's pg_hba.conf already allows replication from 127.0.0.1."""
        port = free_port()
        data = self.path(name)
        os.makedirs(data, mode=0o700)
        self._chown(data)
        conninfo = "host=127.0.0.1 port=%d user=orbit password=%s application_name=%s" % (
            primary.port, PASSWORD, name)
        log("pg_basebackup of 127.0.0.1:%d into %s" % (primary.port, data))
        with open(self.path(name + "-basebackup.log"), "wb") as lf:
            rc = subprocess.call([os.path.join(PG_BIN, "pg_basebackup"), "-d", conninfo, "-D", data, "-R",
                                  "-X", "stream", "-c", "fast"],
                                 stdout=lf, stderr=subprocess.STDOUT, preexec_fn=_demote(self.pw))
        if rc != 0:
            raise SystemExit("pg_basebackup failed:\n" + tail(self.path(name + "-basebackup.log")))
        return self._launch_postgres(data, port, max_connections, ["-c", "hot_standby=on"] + list(extra),
                                     name + ".log")

    # ---------------------------------------------------------------- orbitd
    def start_orbitd(self, port=None, args=(), http_port=None, name="orbitdata", peer_port=None):
        """http_port: also serve /health and /metrics there (--http). name:
        the data dir (and log) inside the workspace, for several nodes."""
        port = port or free_port()
        binary = os.environ.get("ORBITD") or os.path.join(REPO_ROOT, "build", "orbitd")
        if not os.access(binary, os.X_OK):
            raise SystemExit("%s not found: run make first" % binary)
        data = self.path(name)
        logpath = self.path("orbitd.log" if name == "orbitdata" else name + ".log")
        env = dict(os.environ, ORBIT_PASSWORD=PASSWORD)
        cmd = [binary, "--data-dir", data, "--listen", "127.0.0.1:%d" % port,
               "--peer", "127.0.0.1:%d" % (peer_port or free_port())]
        if http_port:
            cmd += ["--http", "127.0.0.1:%d" % http_port]
        cmd += list(args)
        lf = open(logpath, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                env=env, preexec_fn=_pdeathsig)
        lf.close()
        p = Proc("orbitd", proc, signal.SIGTERM, logpath, port=port)
        p.http_port, p.args, p.data = http_port, tuple(args), data
        self.procs.append(p)
        wait_serving("127.0.0.1", port, proc, 30, "orbitd", logpath)
        log("orbitd pid %d on 127.0.0.1:%d%s" % (proc.pid, port,
                                                 ", /metrics on 127.0.0.1:%d" % http_port if http_port else ""))
        return p

    def restart_orbitd(self, old, args):
        """Stop orbitd `old` (by PID) and start it again on the same data dir
        with other flags (fresh ports); returns the new Proc."""
        rc = old.stop()
        if old in self.procs:
            self.procs.remove(old)
        log("stopped orbitd (pid %d, exit %s) to restart it with %s" % (old.pid, rc, " ".join(args) or "defaults"))
        return self.start_orbitd(args=args, http_port=free_port() if old.http_port else None)

    def set_orbitd_auth(self, srv, method):
        """orbitd with --auth-method METHOD (a restart: the flag overrides any
        config file). Returns the (possibly new) Proc."""
        if srv.auth == method:
            return srv
        args = list(srv.args)
        if method != "scram-sha-256":
            args += ["--auth-method", method]
        else:
            i = 0
            while i < len(args):   # drop the --auth-method we added
                if args[i] == "--auth-method":
                    del args[i:i + 2]
                else:
                    i += 1
        new = self.restart_orbitd(srv, args)
        new.auth = method
        verify_auth(new.port, method, "orbitd")
        return new

    def set_postgres_auth(self, srv, method):
        """PostgreSQL: with method 'trust', put `host all all 127.0.0.1/32 trust`
        first in pg_hba.conf; with 'scram-sha-256', restore initdb's file.
        Reloads (SIGHUP to the postmaster) and checks a login. Returns srv."""
        if srv.auth == method:
            return srv
        hba = os.path.join(srv.data, "pg_hba.conf")
        if getattr(srv, "hba_orig", None) is None:
            with open(hba) as f:
                srv.hba_orig = f.read()      # initdb's (scram-sha-256)
        text = srv.hba_orig
        if method == "trust":
            text = "# added by bench/benchlib.py\nhost all all 127.0.0.1/32 trust\n" + text
        with open(hba, "w") as f:     # rewrite in place: owner and mode stay
            f.write(text)
        os.kill(srv.pid, signal.SIGHUP)
        srv.auth = method
        verify_auth(srv.port, method, "postgres", database="postgres")
        log("postgres: pg_hba.conf reloaded, host 127.0.0.1 auth %s" % method)
        return srv

    # ---------------------------------------------------------------- PgBouncer
    def start_pgbouncer(self, pg_port, port=None, max_client_conn=20000, pool_size=20, secret=None):
        """secret: what auth_file holds for orbit; the plain password by default,
        or PostgreSQL's SCRAM verifier (pg_authid.rolpassword), which also fixes
        the salt as PostgreSQL and orbitd do."""
        port = port or free_port()
        binary = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
        if not os.path.exists(binary):
            raise SystemExit("pgbouncer not found (apt-get install pgbouncer)")
        bdir = self.path("pgbouncer")
        os.makedirs(bdir)
        self._chown(bdir)
        userlist = os.path.join(bdir, "userlist.txt")
        with open(userlist, "w") as f:
            f.write('"orbit" "%s"\n' % (secret or PASSWORD))
        logpath = os.path.join(bdir, "pgbouncer.log")
        ini = os.path.join(bdir, "pgbouncer.ini")
        with open(ini, "w") as f:
            f.write("[databases]\n"
                    "orbit = host=127.0.0.1 port=%d dbname=orbit\n"
                    "[pgbouncer]\n"
                    "listen_addr = 127.0.0.1\n"
                    "listen_port = %d\n"
                    "unix_socket_dir =\n"
                    "auth_type = scram-sha-256\n"
                    "auth_file = %s\n"
                    "pool_mode = transaction\n"
                    "max_client_conn = %d\n"
                    "default_pool_size = %d\n"
                    "logfile = %s\n"
                    "pidfile = %s\n"
                    "log_connections = 0\n"
                    "log_disconnections = 0\n"
                    % (pg_port, port, userlist, max_client_conn, pool_size, logpath,
                       os.path.join(bdir, "pgbouncer.pid")))
        for pth in (userlist, ini):
            os.chmod(pth, 0o600)
            self._chown(pth)
        open(logpath, "a").close()
        self._chown(logpath)
        proc = subprocess.Popen([binary, ini], stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=open(os.path.join(bdir, "pgbouncer.stderr"), "ab"),
                                preexec_fn=_demote(self.pw))
        p = Proc("pgbouncer", proc, signal.SIGINT, logpath, port=port)
        self.procs.append(p)
        wait_serving("127.0.0.1", port, proc, 30, "pgbouncer", logpath)
        log("pgbouncer pid %d on 127.0.0.1:%d (transaction pooling)" % (proc.pid, port))
        return p


def pg_scram_verifier(port):
    c = rawpg.connect("127.0.0.1", port, "orbit", PASSWORD, "postgres")
    try:
        return c.query1("SELECT rolpassword FROM pg_authid WHERE rolname = 'orbit'").text_rows()[0][0]
    finally:
        c.terminate()


def verify_auth(port, method, what, database="orbit", timeout=15):
    """Wait until a login on 127.0.0.1:port uses `method`: 'trust' means the
    server answered AuthenticationOk without asking for anything (no
    password is sent); 'scram-sha-256' means it asked for SASL."""
    deadline = time.monotonic() + timeout
    seen = None
    while time.monotonic() < deadline:
        try:
            c = rawpg.connect("127.0.0.1", port, "orbit", PASSWORD if method != "trust" else "",
                              database, timeout=5)
            seen = list(c.auth_requests)
            c.terminate()
            if method == "trust" and seen == [0]:
                return
            if method == "scram-sha-256" and 10 in seen:
                return
        except (rawpg.ServerError, OSError, EOFError) as e:
            seen = e
        time.sleep(0.1)
    raise SystemExit("%s: logins do not use %s auth (last: %s)" % (what, method, seen))


def pg_env(port, password=PASSWORD):
    """libpq environment for 127.0.0.1:port. password=None: no password at all
    (PGPASSWORD unset, no .pgpass), so a server that asks for one fails the
    run instead of quietly authenticating another way."""
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="orbit", PGDATABASE="orbit",
               PGSSLMODE="disable", PGGSSENCMODE="disable")
    if password is None:
        env.pop("PGPASSWORD", None)
        env["PGPASSFILE"] = os.path.join(tempfile.gettempdir(), "orbit-bench-no-such-pgpass")
    else:
        env["PGPASSWORD"] = password
    return env


def run_pgbench(port, args, timeout, password=PASSWORD, cwd=None):
    """Run pgbench against 127.0.0.1:port; a run that overstays its timeout is
    killed and reported (returncode None) rather than ending the caller. On
    any other exception (Ctrl-C) pgbench is killed and reaped, then it re-raises."""
    cmd = [find_bin("pgbench")] + list(args)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=pg_env(port, password), cwd=cwd, preexec_fn=_pdeathsig)
    try:
        out, err = proc.communicate(timeout=timeout)
        return subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        return subprocess.CompletedProcess(cmd, None, out or "",
                                           (err or "") + "\npgbench killed after %d s (hung)" % timeout)
    except BaseException:
        proc.kill()
        proc.wait()
        raise


def read_pgbench_log(prefix):
    """Latencies (microseconds, sorted) from pgbench's per-transaction log
    (`-l --log-prefix PREFIX`: files PREFIX.PID and PREFIX.PID.THREAD).
    Line format (PostgreSQL 15): client_id transaction_no time script_no
    time_epoch time_us [schedule_lag] [retries]; `time` is the transaction's
    latency in microseconds, or 'failed' / 'skipped'. Returns
    (sorted latencies, number of failed or skipped lines, number of files)."""
    lat, bad = [], 0
    files = sorted(glob.glob(glob.escape(prefix) + ".*"))
    for fn in files:
        with open(fn) as f:
            for line in f:
                parts = line.split()
                if len(parts) < 3:
                    continue
                if parts[2].isdigit():
                    lat.append(int(parts[2]))
                else:
                    bad += 1
    lat.sort()
    return lat, bad, len(files)


def percentile(sorted_vals, q):
    """Nearest-rank percentile (q in 0..100) of an ascending list; None if empty."""
    if not sorted_vals:
        return None
    k = max(1, math.ceil(q / 100.0 * len(sorted_vals)))
    return sorted_vals[k - 1]


# ---------------------------------------------------------------- Prometheus metrics
def http_json(port, path, host="127.0.0.1", timeout=2):
    """GET a JSON endpoint of orbitd's HTTP port (/status); None if unreadable."""
    try:
        with urllib.request.urlopen("http://%s:%d%s" % (host, port, path), timeout=timeout) as r:
            return json.loads(r.read())
    except (OSError, ValueError):
        return None


def scrape_metrics(port, host="127.0.0.1", timeout=5):
    """GET /metrics; {sample name: value}, samples that differ only by labels
    summed. None if the endpoint cannot be read."""
    try:
        with urllib.request.urlopen("http://%s:%d/metrics" % (host, port), timeout=timeout) as r:
            text = r.read().decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        m = re.match(r"([A-Za-z_:][A-Za-z0-9_:]*)(\{[^}]*\})?\s+(\S+)", line)
        if not m:
            continue
        try:
            v = float(m.group(3))
        except ValueError:
            continue
        out[m.group(1)] = out.get(m.group(1), 0.0) + v
    return out


def summary_delta(before, after, name):
    """(sum delta, count delta) of a Prometheus summary/histogram NAME between
    two scrapes, or None if either scrape lacks NAME_sum or NAME_count."""
    keys = (name + "_sum", name + "_count")
    if not before or not after or any(k not in before or k not in after for k in keys):
        return None
    return after[keys[0]] - before[keys[0]], after[keys[1]] - before[keys[1]]


def parse_pgbench(out):
    r = {}
    for key, pat in (("processed", r"number of transactions actually processed: (\d+)"),
                     ("failed", r"number of failed transactions: (\d+)"),
                     ("tps", r"tps = ([\d.]+) \(without initial connection time\)"),
                     ("tps_incl", r"tps = ([\d.]+) \(including"),
                     ("latency", r"latency average = ([\d.]+) ms"),
                     ("conn_time", r"average connection time = ([\d.]+) ms")):
        m = re.search(pat, out)
        r[key] = float(m.group(1)) if m else None
    if r["tps"] is None:
        m = re.search(r"tps = ([\d.]+)", out)
        r["tps"] = float(m.group(1)) if m else None
    return r


def cpu_seconds(pid):
    """User + system CPU seconds of a process, its threads and the children it
    has reaped (/proc/PID/stat utime, stime, cutime, cstime): for PostgreSQL's
    postmaster, the backends of connections that have closed, not its
    background processes that still run. None if it cannot be read."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None


def smaps_rollup(pid):
    """{'Rss': kB, 'Pss': kB, ...} for a process."""
    out = {}
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1])
    return out


def children(pid):
    kids = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            kids.append(int(name))
    return kids


def cmdline(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace").strip()
    except OSError:
        return ""


def install_signal_cleanup():
    """Turn SIGTERM/SIGHUP into KeyboardInterrupt so `finally` blocks run."""
    def handler(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    for s in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, handler)
