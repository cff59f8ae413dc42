"""The HTTP endpoint: /health (JSON) and /metrics (Prometheus text)."""
import json
import socket
import urllib.request
import urllib.error

import pytest


def get(server, path):
    url = "http://127.0.0.1:%d%s" % (server.http_port, path)
    try:
        with urllib.request.urlopen(url, timeout=5) as r:
            return r.status, r.headers.get("Content-Type"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type"), e.read().decode()


def test_health(shared_server):
    status, ctype, body = get(shared_server, "/health")
    assert status == 200
    assert ctype == "application/json"
    doc = json.loads(body)
    assert doc["status"] == "ok"
    assert doc["connections"] >= 0


def test_metrics_count_connections(shared_server):
    conns = [shared_server.connect() for _ in range(3)]
    try:
        status, ctype, body = get(shared_server, "/metrics")
        assert status == 200
        assert ctype.startswith("text/plain")
        metrics = {}
        for line in body.splitlines():
            if line and not line.startswith("#"):
                name, value = line.split(" ")
                metrics[name] = float(value)
        assert metrics["orbit_up"] == 1
        assert metrics["orbit_client_connections"] >= 3
        assert metrics["orbit_pool_connections"] >= 1
        assert "# TYPE orbit_exec_jobs_total counter" in body
    finally:
        for c in conns:
            c.close()


def test_unknown_path_and_method(shared_server):
    assert get(shared_server, "/nope")[0] == 404
    req = urllib.request.Request("http://127.0.0.1:%d/health" % shared_server.http_port, method="POST",
                                 data=b"x")
    with pytest.raises(urllib.error.HTTPError) as ei:
        urllib.request.urlopen(req, timeout=5)
    assert ei.value.code == 405


def test_garbage_request_does_not_hurt(shared_server):
    s = socket.create_connection(("127.0.0.1", shared_server.http_port), timeout=5)
    s.sendall(b"\x00\xff" * 5000)
    try:
        s.recv(100)
    except OSError:
        pass
    s.close()
    assert get(shared_server, "/health")[0] == 200
