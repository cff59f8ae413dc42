"""Shared helpers for the bench/ scripts: private PostgreSQL 15, orbitd and
PgBouncer instances on free loopback ports, each stopped by PID at the end.

Nothing here kills by process name; every server is a child we started and is
stopped through its PID (and dies with us via PR_SET_PDEATHSIG if we crash).
"""
import ctypes
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
    def start_postgres(self, port=None, max_connections=200, extra=()):
        port = port or free_port()
        data = self.path("pgdata")
        os.makedirs(data)
        self._chown(data)
        sockdir = self.path("pgsock")
        os.makedirs(sockdir)
        self._chown(sockdir)
        pwfile = self.path("pgpass.txt")
        with open(pwfile, "w") as f:
            f.write(PASSWORD + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        logpath = self.path("postgres.log")
        log("initdb PostgreSQL 15 in %s" % data)
        with open(self.path("initdb.log"), "wb") as lf:
            rc = subprocess.call([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "orbit",
                                  "--auth=scram-sha-256", "--pwfile", pwfile, "-E", "UTF8", "--locale=C"],
                                 stdout=lf, stderr=subprocess.STDOUT, preexec_fn=_demote(self.pw))
        if rc != 0:
            raise SystemExit("initdb failed:\n" + tail(self.path("initdb.log")))
        cmd = [os.path.join(PG_BIN, "postgres"), "-D", data, "-k", sockdir, "-p", str(port),
               "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=%d" % max_connections,
               "-c", "password_encryption=scram-sha-256"] + list(extra)
        lf = open(logpath, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                preexec_fn=_demote(self.pw))
        lf.close()
        # SIGINT = fast shutdown (SIGTERM would wait for clients to leave)
        p = Proc("postgres", proc, signal.SIGINT, logpath, port=port)
        self.procs.append(p)
        wait_serving("127.0.0.1", port, proc, 60, "postgres", logpath, database="postgres")
        c = rawpg.connect("127.0.0.1", port, "orbit", PASSWORD, "postgres")
        c.query1("CREATE DATABASE orbit")
        c.terminate()
        log("postgres pid %d on 127.0.0.1:%d" % (proc.pid, port))
        return p

    # ---------------------------------------------------------------- orbitd
    def start_orbitd(self, port=None, args=()):
        port = port or free_port()
        binary = os.environ.get("ORBITD") or os.path.join(REPO_ROOT, "build", "orbitd")
        if not os.access(binary, os.X_OK):
            raise SystemExit("%s not found: run make first" % binary)
        data = self.path("orbitdata")
        logpath = self.path("orbitd.log")
        env = dict(os.environ, ORBIT_PASSWORD=PASSWORD)
        cmd = [binary, "--data-dir", data, "--listen", "127.0.0.1:%d" % port] + list(args)
        lf = open(logpath, "ab")
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=lf, stderr=subprocess.STDOUT,
                                env=env, preexec_fn=_pdeathsig)
        lf.close()
        p = Proc("orbitd", proc, signal.SIGTERM, logpath, port=port)
        self.procs.append(p)
        wait_serving("127.0.0.1", port, proc, 30, "orbitd", logpath)
        log("orbitd pid %d on 127.0.0.1:%d" % (proc.pid, port))
        return p

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


def pg_env(port):
    env = dict(os.environ)
    env.update(PGHOST="127.0.0.1", PGPORT=str(port), PGUSER="orbit", PGDATABASE="orbit",
               PGPASSWORD=PASSWORD, PGSSLMODE="disable", PGGSSENCMODE="disable")
    return env


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
