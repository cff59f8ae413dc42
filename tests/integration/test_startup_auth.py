"""Startup, authentication, command line and config file, lock file, shutdown."""
import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import psycopg2
import pytest

import orbit
import rawpg


# ------------------------------------------------------------------ auth

def test_password_ok_psycopg2(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()


def test_auth_is_scram_sha_256(server):
    c = server.raw()
    assert 10 in c.auth_requests, "server did not ask for SASL auth: %r" % c.auth_requests
    assert "SCRAM-SHA-256" in c.sasl_mechanisms
    assert c.auth_requests[-1] == 0  # AuthenticationOk
    c.terminate()


def _auth_failure(server, user, password):
    c = server.raw_socket()
    try:
        with pytest.raises(rawpg.ServerError) as ei:
            c.startup(user, password, "orbit")
        return c, ei.value
    finally:
        c.close()


def test_wrong_password_28P01_same_message_for_unknown_user(server):
    c1, wrong = _auth_failure(server, "orbit", "not-the-password")
    c2, unknown = _auth_failure(server, "nosuchuser", "not-the-password")
    assert wrong.code == "28P01", wrong.fields
    assert unknown.code == "28P01", unknown.fields
    assert wrong.severity == "FATAL"
    # the same message, apart from the user name echoed back
    assert wrong.message.replace("orbit", "<u>") == unknown.message.replace("nosuchuser", "<u>"), \
        (wrong.message, unknown.message)
    # the unknown user goes through the same SCRAM exchange (no early answer
    # that tells an attacker the role does not exist)
    assert c1.auth_requests == c2.auth_requests, (c1.auth_requests, c2.auth_requests)
    assert 10 in c2.auth_requests
    # and the server keeps working
    server.connect().close()


def test_wrong_password_psycopg2_and_psql(server):
    with pytest.raises(psycopg2.OperationalError) as ei:
        server.connect(password="wrong")
    assert "password authentication failed" in str(ei.value)
    env = server.pg_env()
    env["PGPASSWORD"] = "wrong"
    p = subprocess.run([orbit.find_bin("psql"), "-X", "-c", "select 1"], env=env,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0
    assert "password authentication failed" in p.stderr


def test_unknown_database_3D000(server):
    c = server.raw_socket()
    with pytest.raises(rawpg.ServerError) as ei:
        c.startup("orbit", server.password, "nosuchdb")
    c.close()
    assert ei.value.code == "3D000", ei.value.fields
    assert "nosuchdb" in ei.value.message
    with pytest.raises(psycopg2.OperationalError) as ei2:
        server.connect(dbname="otherdb")
    assert "otherdb" in str(ei2.value)


def test_database_defaults_to_user_name(server):
    # libpq sends database=user when no dbname is given; the role is orbit
    c = psycopg2.connect(host=server.host, port=server.port, user="orbit", password=server.password)
    cur = c.cursor()
    cur.execute("SELECT current_database()")
    assert cur.fetchone()[0] == "orbit"
    c.close()


def test_parameter_status_and_backend_key(server):
    c = server.raw()
    p = c.params
    for k in ("server_version", "server_encoding", "client_encoding", "DateStyle", "integer_datetimes",
              "standard_conforming_strings", "TimeZone", "application_name", "is_superuser",
              "session_authorization", "default_transaction_read_only", "in_hot_standby"):
        assert k in p, "ParameterStatus %s missing; got %r" % (k, p)
    assert p["server_encoding"] == "UTF8"
    assert p["client_encoding"] == "UTF8"
    assert p["integer_datetimes"] == "on"
    assert p["standard_conforming_strings"] == "on"
    assert p["is_superuser"] == "on"
    assert p["session_authorization"] == "orbit"
    assert p["default_transaction_read_only"] == "off"
    assert p["in_hot_standby"] == "off"
    assert re.match(r"^\d+(\.\d+)?", p["server_version"]), p["server_version"]
    assert c.backend_pid is not None and c.secret_key is not None
    assert c.status == "I"
    c.terminate()


def test_application_name_from_startup(server):
    c = server.raw(application_name="myapp")
    assert c.params.get("application_name") == "myapp"
    r = c.query1("SHOW application_name")
    assert r.text_rows() == [["myapp"]]
    c.terminate()


def test_target_session_attrs_read_write(server):
    c = server.connect(target_session_attrs="read-write")
    cur = c.cursor()
    cur.execute("SELECT 1")
    assert cur.fetchone() == (1,)
    c.close()


def test_ssl_and_gssenc_requests_answered_N(server):
    for code in (rawpg.SSL_REQUEST, rawpg.GSSENC_REQUEST):
        c = server.raw_socket()
        c.send(struct.pack("!ii", 8, code))
        assert c.recv_raw(1) == b"N"
        c.startup("orbit", server.password, "orbit")
        assert c.query1("SELECT 1").text_rows() == [["1"]]
        c.terminate()
    # psycopg2 with sslmode=prefer (the default) falls back to plain
    c = server.connect(sslmode="prefer")
    c.close()


def test_unsupported_protocol_version_fatal(server):
    c = server.raw_socket()
    c.send(rawpg.startup_packet("orbit", "orbit", version=(2 << 16)))
    assert c.recv_raw(1) == b"E"
    # a v3 ErrorResponse with severity FATAL (PostgreSQL itself answers a 2.0
    # client in the old format: 'E' and a bare string); then the server closes
    assert c.is_closed()
    text = bytes(c.buf).decode("utf-8", "replace")
    assert "FATAL" in text and "protocol" in text.lower(), text
    c.close()
    server.connect().close()


def test_terminate_closes_connection(server):
    c = server.raw()
    c.send_msg("X")
    assert c.is_closed()
    c.close()


def test_unix_socket_in_data_dir(server):
    sock = os.path.join(server.data_dir, ".s.PGSQL.%d" % server.port)
    assert os.path.exists(sock), os.listdir(server.data_dir)
    p = server.psql("-h", server.data_dir, "-p", str(server.port), "-At", "-c", "select 40+2")
    assert p.stdout.strip() == "42"
    c = psycopg2.connect(host=server.data_dir, port=server.port, user="orbit", dbname="orbit",
                         password=server.password)
    c.close()


def test_unix_socket_dir_flag(orbit_factory, tmp_path):
    import tempfile
    d = tempfile.mkdtemp(prefix="orbit-sock-")
    try:
        s = orbit_factory(args=["--unix-socket-dir", d])
        assert os.path.exists(os.path.join(d, ".s.PGSQL.%d" % s.port)), os.listdir(d)
        p = s.psql("-h", d, "-p", str(s.port), "-At", "-c", "select 1")
        assert p.stdout.strip() == "1"
    finally:
        for s in orbit_factory.servers:
            s.stop()
        import shutil
        shutil.rmtree(d, ignore_errors=True)


def test_logs_are_logfmt_with_ready_event(server):
    deadline = time.time() + 5
    while "event=ready" not in server.log() and time.time() < deadline:
        time.sleep(0.05)
    log = server.log()
    ready = [l for l in log.splitlines() if "event=ready" in l]
    assert ready, log
    line = ready[0]
    assert re.search(r"\bts=\S+", line), line
    assert re.search(r"\blevel=info\b", line), line


# ------------------------------------------------------------------ command line and config

def test_help_lists_flags():
    rc, out, err = orbit.run_orbitd(["--help"])
    assert rc == 0, (rc, out, err)
    text = out + err
    for flag in ("--data-dir", "--listen", "--http", "--config", "--max-connections",
                 "--unix-socket-dir"):
        assert flag in text, "--help does not mention %s:\n%s" % (flag, text)


def test_unknown_flag_exit_2(tmp_path):
    rc, out, err = orbit.run_orbitd(["--data-dir", str(tmp_path / "d"), "--no-such-flag"])
    assert rc == 2, (rc, out, err)
    assert "no-such-flag" in out + err


def test_unknown_config_setting_exit_2(tmp_path):
    cfg = tmp_path / "orbit.conf"
    cfg.write_text("# a comment\nlisten = 127.0.0.1:%d\nno_such_setting = 5\n" % orbit.free_port())
    rc, out, err = orbit.run_orbitd(["--data-dir", str(tmp_path / "d"), "--config", str(cfg)])
    assert rc == 2, (rc, out, err)
    assert "no_such_setting" in out + err


def test_bad_setting_value_is_an_error(tmp_path):
    rc, out, err = orbit.run_orbitd(["--data-dir", str(tmp_path / "d"), "--listen",
                                     "127.0.0.1:%d" % orbit.free_port(), "--max-connections", "lots"])
    assert rc != 0, (rc, out, err)
    assert "max" in (out + err).lower()


def test_config_file_used_and_flags_override(orbit_factory, tmp_path):
    p_conf, p_flag = orbit.free_port(), orbit.free_port()
    cfg = tmp_path / "orbit.conf"
    cfg.write_text(
        "# Orbit test config\n"
        "\n"
        "listen = 127.0.0.1:%d   # trailing comment\n"
        "max_connections = 7\n"
        "statement_timeout = 0\n"
        "log_level = info\n" % p_conf)
    # config alone: listens where the file says
    s = orbit_factory.new(config=str(cfg), port=p_conf, listen=False)
    s.start()
    assert orbit.port_accepts("127.0.0.1", p_conf)
    # max_connections = 7 from the file is enforced
    conns = [s.raw() for _ in range(7)]
    c = s.raw_socket()
    with pytest.raises(rawpg.ServerError) as ei:
        c.startup("orbit", s.password, "orbit")
    assert ei.value.code == "53300"
    c.close()
    for x in conns:
        x.terminate()
    s.stop()
    # a flag overrides the file
    s2 = orbit_factory.new(config=str(cfg), data_dir=s.data_dir, port=p_flag)
    s2.start()
    assert orbit.port_accepts("127.0.0.1", p_flag)
    assert not orbit.port_accepts("127.0.0.1", p_conf)


def test_flag_overrides_config_max_connections(orbit_factory, tmp_path):
    cfg = tmp_path / "orbit.conf"
    cfg.write_text("max_connections = 3\n")
    s = orbit_factory(config=str(cfg), args=["--max-connections", "5"])
    conns = [s.raw() for _ in range(5)]
    c = s.raw_socket()
    with pytest.raises(rawpg.ServerError) as ei:
        c.startup("orbit", s.password, "orbit")
    assert ei.value.code == "53300"
    c.close()
    for x in conns:
        x.terminate()


# ------------------------------------------------------------------ data dir, lock, shutdown

def test_second_instance_same_data_dir_refused(orbit_factory):
    s1 = orbit_factory()
    s2 = orbit_factory.new(data_dir=s1.data_dir)
    s2.spawn()
    rc = s2.wait(15)
    assert rc is not None, "second orbitd on the same data dir is still running"
    assert rc != 0
    log = s2.log().lower()
    assert any(w in log for w in ("lock", "already", "in use", "running")), s2.log()
    assert not orbit.port_accepts("127.0.0.1", s2.port)
    # the first one is unaffected
    c = s1.connect()
    c.cursor().execute("SELECT 1")
    c.close()
    assert s1.alive()


def test_restart_keeps_data(server):
    c = server.connect()
    cur = c.cursor()
    cur.execute("CREATE TABLE keep (id integer PRIMARY KEY, v text)")
    cur.execute("INSERT INTO keep VALUES (1, 'one'), (2, 'two')")
    c.close()
    assert server.stop() == 0
    server.start()
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT id, v FROM keep ORDER BY id")
    assert cur.fetchall() == [(1, "one"), (2, "two")]
    c.close()


def test_sigterm_exits_0(server):
    c = server.connect()
    c.cursor().execute("SELECT 1")
    server.signal(signal.SIGTERM)
    rc = server.wait(35)
    assert rc == 0, "exit code %r after SIGTERM" % rc


def test_sigterm_drains_in_flight_transaction(server):
    c = server.connect(autocommit=False)
    cur = c.cursor()
    cur.execute("CREATE TABLE drained (id integer)")
    c.commit()
    cur.execute("INSERT INTO drained VALUES (1)")   # transaction open
    server.signal(signal.SIGTERM)
    time.sleep(0.5)
    assert server.alive(), "server exited with a transaction in flight"
    # new connections are no longer accepted
    with pytest.raises(psycopg2.OperationalError):
        server.connect(connect_timeout=3)
    # the in-flight transaction may still finish
    cur.execute("INSERT INTO drained VALUES (2)")
    c.commit()
    c.close()
    rc = server.wait(35)
    assert rc == 0, rc
    server.start()
    c = server.connect()
    cur = c.cursor()
    cur.execute("SELECT id FROM drained ORDER BY id")
    assert cur.fetchall() == [(1,), (2,)]
    c.close()


def test_drain_timeout_bounds_shutdown(orbit_factory):
    s = orbit_factory(args=["--drain-timeout", "1s"])
    c = s.connect(autocommit=False)
    c.cursor().execute("SELECT 1")  # idle in transaction, never finishes
    t0 = time.monotonic()
    s.signal(signal.SIGTERM)
    rc = s.wait(20)
    assert rc == 0, rc
    assert time.monotonic() - t0 < 10
    c.close()


def test_generated_password_printed_once_and_not_stored(orbit_factory):
    s = orbit_factory.new(password=None)
    s.start()
    log1 = s.log()
    # find the password: try each token on the lines mentioning it
    candidates = []
    for line in log1.splitlines():
        if "password" not in line.lower():
            continue
        for tok in re.split(r"[\s=\"',:;]+", line):
            if len(tok) >= 8 and tok.lower() not in ("password", "generated") and tok not in candidates:
                candidates.append(tok)
    found = None
    for tok in candidates:
        try:
            psycopg2.connect(host=s.host, port=s.port, user="orbit", dbname="orbit", password=tok,
                             connect_timeout=5).close()
            found = tok
            break
        except psycopg2.OperationalError:
            continue
    assert found, "no working generated password in the output:\n" + log1
    # never stored in clear in the data dir
    for root, _, files in os.walk(s.data_dir):
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as f:
                    data = f.read()
            except OSError:
                continue
            assert found.encode() not in data, "password stored in clear in %s" % path
    # printed once: a restart does not print it again, and it still works
    s.stop()
    s.start()
    assert found not in s.log()
    psycopg2.connect(host=s.host, port=s.port, user="orbit", dbname="orbit", password=found).close()


def test_password_from_env_not_logged(server):
    c = server.connect()
    c.close()
    assert server.password not in server.log()
    with pytest.raises(psycopg2.OperationalError):
        server.connect(password="wrong-password-xyz")
    assert "wrong-password-xyz" not in server.log()


def test_many_sequential_connections(server):
    for _ in range(200):
        c = server.raw()
        c.terminate()
    c = server.connect()
    c.cursor().execute("SELECT 1")
    c.close()
