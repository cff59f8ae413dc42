"""JDBC: the PostgreSQL JDBC driver (Debian's libpostgresql-jdbc-java),
unchanged, against orbitd.

jdbc/OrbitJdbc.java is compiled with javac into a temp dir (no build tool,
no network) and run once against the module's server; it runs a list of
checks (connect with SCRAM, metadata, DDL, typed parameters and getters,
batches, transactions and savepoints, server-side prepared statements,
fetch size, errors, generated keys, query timeout, several connections,
dates/times/numeric/uuid in text and binary, the simple query mode) and
prints "ok NAME" or "FAIL NAME: why" for each. Every check is one test
here. The JVM runs in a time zone with a half-hour offset, so timestamps
carry offsets such as +05:30. The same program passes against
PostgreSQL 15 (jdbc:postgresql://HOST:PORT/DB USER PASSWORD).
"""
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE = os.path.join(HERE, "jdbc", "OrbitJdbc.java")
DRIVER_JAR = "/usr/share/java/postgresql.jar"
JVM_TIMEZONE = "Asia/Kolkata"

with open(SOURCE) as _f:
    CHECKS = re.findall(r'CHECKS\.put\("(\w+)"', _f.read())


def _tool(name):
    path = shutil.which(name)
    if not path or not os.path.exists(DRIVER_JAR):
        pytest.fail("%s or %s missing: run `make deps` (default-jdk-headless, libpostgresql-jdbc-java)"
                    % (name, DRIVER_JAR), pytrace=False)
    return path


@pytest.fixture(scope="module")
def jdbc_run(shared_server):
    """Compile and run OrbitJdbc once; {check: (ok, message)} plus the
    whole run's exit code, output and time."""
    javac, java = _tool("javac"), _tool("java")
    classes = tempfile.mkdtemp(prefix="orbit-jdbc-")
    try:
        p = subprocess.run([javac, "-d", classes, "-cp", DRIVER_JAR, SOURCE],
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, "javac failed:\n%s%s" % (p.stdout, p.stderr)
        url = "jdbc:postgresql://%s:%d/orbit" % (shared_server.host, shared_server.port)
        t0 = time.monotonic()
        p = subprocess.run([java, "-Duser.timezone=" + JVM_TIMEZONE, "-cp", DRIVER_JAR + ":" + classes,
                            "OrbitJdbc", url, "orbit", shared_server.password],
                           capture_output=True, text=True, timeout=180)
        elapsed = time.monotonic() - t0
    finally:
        shutil.rmtree(classes, ignore_errors=True)
    results = {}
    for line in p.stdout.splitlines():
        m = re.match(r"(ok|FAIL) (\w+)(?:: (.*)| \(\d+ ms\))?$", line)
        if m:
            results[m.group(2)] = (m.group(1) == "ok", m.group(3) or "")
    return {"rc": p.returncode, "stdout": p.stdout, "stderr": p.stderr, "results": results,
            "elapsed": elapsed}


@pytest.mark.timeout(240)
@pytest.mark.parametrize("check", CHECKS)
def test_jdbc(jdbc_run, check):
    res = jdbc_run["results"].get(check)
    if res is None:
        pytest.fail("check %s did not run (exit %d)\nstdout:\n%s\nstderr:\n%s"
                    % (check, jdbc_run["rc"], jdbc_run["stdout"], jdbc_run["stderr"][-6000:]))
    ok, msg = res
    if not ok:
        # the stack trace of this check
        err = jdbc_run["stderr"]
        start = err.find("---- %s\n" % check)
        trace = err[start:start + 4000] if start >= 0 else err[-4000:]
        pytest.fail("%s: %s\n%s" % (check, msg, trace), pytrace=False)


def test_jdbc_run_summary(jdbc_run):
    """Every check ran and the program exited 0, in well under a minute."""
    assert sorted(jdbc_run["results"]) == sorted(CHECKS), jdbc_run["stdout"]
    assert re.search(r"^jdbc checks: %d ok, 0 failed$" % len(CHECKS), jdbc_run["stdout"], re.M), \
        jdbc_run["stdout"]
    assert jdbc_run["rc"] == 0, jdbc_run["stdout"] + jdbc_run["stderr"][-4000:]
    assert jdbc_run["elapsed"] < 60, "the JDBC run took %.1f s" % jdbc_run["elapsed"]
