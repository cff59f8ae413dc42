"""A tiny PostgreSQL v3 wire-protocol client on raw sockets.

Used by the integration tests to drive what libpq/psycopg2 do not expose
(extended query message by message, ReadyForQuery status, CancelRequest,
malformed input) and by bench/connections to open many idle connections
quickly. Standard library only (socket, struct, hashlib, hmac).
"""
import base64
import hashlib
import hmac
import os
import select
import socket
import struct
import time

PROTOCOL_3_0 = 196608
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102

# type OIDs
BOOL, BYTEA, INT8, INT2, INT4, TEXT, JSON = 16, 17, 20, 21, 23, 25, 114
FLOAT4, FLOAT8, VARCHAR, DATE, TIMESTAMP, NUMERIC = 700, 701, 1043, 1082, 1114, 1700


class ProtocolError(Exception):
    pass


class ServerError(Exception):
    """An ErrorResponse; .fields maps field codes ('C', 'M', 'S', ...) to values."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__("%s %s: %s" % (fields.get("S"), fields.get("C"), fields.get("M")))

    @property
    def code(self):
        return self.fields.get("C")

    @property
    def message(self):
        return self.fields.get("M")

    @property
    def severity(self):
        return self.fields.get("V") or self.fields.get("S")


def cstr(s):
    if isinstance(s, str):
        s = s.encode()
    return s + b"\0"


def msg(mtype, payload=b""):
    """Frame a regular message: type byte + int32 length (self-inclusive) + payload."""
    if isinstance(mtype, str):
        mtype = mtype.encode()
    return mtype + struct.pack("!i", len(payload) + 4) + payload


def startup_packet(user="orbit", database="orbit", version=PROTOCOL_3_0, **params):
    body = struct.pack("!i", version)
    kv = {"user": user, "database": database}
    kv.update(params)
    for k, v in kv.items():
        if v is None:
            continue
        body += cstr(k) + cstr(v)
    body += b"\0"
    return struct.pack("!i", len(body) + 4) + body


def parse_fields(payload):
    """Parse ErrorResponse / NoticeResponse fields."""
    fields = {}
    i = 0
    while i < len(payload) and payload[i] != 0:
        code = chr(payload[i])
        end = payload.index(b"\0", i + 1)
        fields[code] = payload[i + 1:end].decode("utf-8", "replace")
        i = end + 1
    return fields


def parse_row_description(payload):
    (n,) = struct.unpack_from("!h", payload, 0)
    pos = 2
    cols = []
    for _ in range(n):
        end = payload.index(b"\0", pos)
        name = payload[pos:end].decode()
        pos = end + 1
        table_oid, attnum, type_oid, typlen, typmod, fmt = struct.unpack_from("!ihihih", payload, pos)
        pos += 18
        cols.append({"name": name, "table_oid": table_oid, "attnum": attnum, "type_oid": type_oid,
                     "typlen": typlen, "typmod": typmod, "format": fmt})
    return cols


def parse_data_row(payload):
    (n,) = struct.unpack_from("!h", payload, 0)
    pos = 2
    vals = []
    for _ in range(n):
        (ln,) = struct.unpack_from("!i", payload, pos)
        pos += 4
        if ln < 0:
            vals.append(None)
        else:
            vals.append(bytes(payload[pos:pos + ln]))
            pos += ln
    return vals


def parse_parameter_description(payload):
    (n,) = struct.unpack_from("!h", payload, 0)
    return list(struct.unpack_from("!%di" % n, payload, 2))


def decode_binary(type_oid, b):
    """Decode a binary-format value of a known type."""
    if b is None:
        return None
    if type_oid == BOOL:
        assert len(b) == 1, b
        return b != b"\0"
    if type_oid == INT2:
        return struct.unpack("!h", b)[0]
    if type_oid == INT4:
        return struct.unpack("!i", b)[0]
    if type_oid == INT8:
        return struct.unpack("!q", b)[0]
    if type_oid == FLOAT4:
        return struct.unpack("!f", b)[0]
    if type_oid == FLOAT8:
        return struct.unpack("!d", b)[0]
    if type_oid in (TEXT, VARCHAR, JSON):
        return b.decode()
    if type_oid == BYTEA:
        return bytes(b)
    raise ValueError("no binary decoder for oid %d" % type_oid)


def encode_binary(type_oid, v):
    if v is None:
        return None
    if type_oid == BOOL:
        return b"\1" if v else b"\0"
    if type_oid == INT2:
        return struct.pack("!h", v)
    if type_oid == INT4:
        return struct.pack("!i", v)
    if type_oid == INT8:
        return struct.pack("!q", v)
    if type_oid == FLOAT4:
        return struct.pack("!f", v)
    if type_oid == FLOAT8:
        return struct.pack("!d", v)
    if type_oid in (TEXT, VARCHAR, JSON):
        return v.encode()
    if type_oid == BYTEA:
        return bytes(v)
    raise ValueError("no binary encoder for oid %d" % type_oid)


# ---------------------------------------------------------------- SCRAM-SHA-256

_salted_cache = {}


def salted_password(password, salt, iterations):
    """PBKDF2 is the expensive part of SCRAM; cache it per (password, salt, i)."""
    key = (password, salt, iterations)
    v = _salted_cache.get(key)
    if v is None:
        v = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
        _salted_cache[key] = v
    return v


class ScramClient:
    """SCRAM-SHA-256 client state machine (RFC 5802/7677, no channel binding)."""

    def __init__(self, password, nonce=None):
        self.password = password
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        self.client_first_bare = "n=,r=" + self.nonce
        self.server_signature = None

    def client_first(self):
        return ("n,," + self.client_first_bare).encode()

    def client_final(self, server_first):
        server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        rnonce, salt, iters = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        if not rnonce.startswith(self.nonce):
            raise ProtocolError("server nonce does not extend client nonce")
        sp = salted_password(self.password, salt, iters)
        client_key = hmac.new(sp, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + rnonce
        auth_msg = ",".join([self.client_first_bare, server_first, without_proof]).encode()
        client_sig = hmac.new(stored_key, auth_msg, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, client_sig))
        server_key = hmac.new(sp, b"Server Key", hashlib.sha256).digest()
        self.server_signature = hmac.new(server_key, auth_msg, hashlib.sha256).digest()
        return (without_proof + ",p=" + base64.b64encode(proof).decode()).encode()

    def verify_server_final(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.decode().split(","))
        if "e" in attrs:
            raise ProtocolError("server SCRAM error: " + attrs["e"])
        if base64.b64decode(attrs["v"]) != self.server_signature:
            raise ProtocolError("bad server signature")


# ---------------------------------------------------------------- results

class Result:
    """What one statement (or one Execute) produced."""

    def __init__(self):
        self.columns = None   # list of dicts from RowDescription
        self.rows = []        # list of lists of bytes/None
        self.tag = None       # CommandComplete tag
        self.suspended = False
        self.empty = False
        self.error = None     # ServerError

    def text_rows(self):
        return [[None if v is None else v.decode() for v in r] for r in self.rows]

    def __repr__(self):
        return "Result(tag=%r, rows=%d, error=%r)" % (self.tag, len(self.rows), self.error)


class Conn:
    """A raw protocol connection. Messages are (type_char, payload_bytes)."""

    def __init__(self, host="127.0.0.1", port=5433, timeout=10.0, unix_path=None):
        if unix_path:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(unix_path)
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.timeout = timeout
        self.buf = bytearray()
        self.params = {}
        self.backend_pid = None
        self.secret_key = None
        self.status = None      # last ReadyForQuery status: 'I', 'T', 'E'
        self.notices = []
        self.auth_requests = []  # auth request codes seen (10 = SASL, ...)
        self.sasl_mechanisms = None

    # ---- low level
    def send(self, data):
        self.sock.sendall(data)

    def send_msg(self, mtype, payload=b""):
        self.sock.sendall(msg(mtype, payload))

    def _fill(self, n, deadline):
        while len(self.buf) < n:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("timed out waiting for server data")
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("timed out waiting for server data")
            if not chunk:
                raise EOFError("server closed the connection")
            self.buf += chunk

    def recv_raw(self, n, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(n, deadline)
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def recv_msg(self, timeout=None):
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        self._fill(5, deadline)
        mtype = chr(self.buf[0])
        (ln,) = struct.unpack_from("!i", self.buf, 1)
        if ln < 4 or ln > (1 << 30):
            raise ProtocolError("bad message length %d for type %r" % (ln, mtype))
        self._fill(1 + ln, deadline)
        payload = bytes(self.buf[5:1 + ln])
        del self.buf[:1 + ln]
        if mtype == "N":
            self.notices.append(parse_fields(payload))
        elif mtype == "S":
            k, v = payload.split(b"\0")[:2]
            self.params[k.decode()] = v.decode()
        elif mtype == "Z":
            self.status = chr(payload[0])
        return mtype, payload

    def pending(self, timeout=0.0):
        """Is there data (or EOF) to read within timeout?"""
        if self.buf:
            return True
        r, _, _ = select.select([self.sock], [], [], timeout)
        return bool(r)

    def is_closed(self, timeout=2.0):
        """True when the server closed the connection (EOF/reset) within timeout,
        after discarding anything it sent before."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                return False
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not chunk:
                return True
            self.buf += chunk

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def terminate(self):
        try:
            self.send_msg("X")
        except OSError:
            pass
        self.close()

    # ---- startup and authentication
    def startup(self, user="orbit", password="", database="orbit", **params):
        """Run startup + SCRAM. Raises ServerError on an ErrorResponse."""
        self.send(startup_packet(user, database, **params))
        scram = None
        while True:
            t, p = self.recv_msg()
            if t == "E":
                raise ServerError(parse_fields(p))
            if t == "R":
                (code,) = struct.unpack_from("!i", p, 0)
                self.auth_requests.append(code)
                if code == 0:
                    continue
                if code == 10:  # SASL
                    mechs = [m.decode() for m in p[4:].split(b"\0") if m]
                    self.sasl_mechanisms = mechs
                    if "SCRAM-SHA-256" not in mechs:
                        raise ProtocolError("no SCRAM-SHA-256 in %r" % mechs)
                    scram = ScramClient(password)
                    first = scram.client_first()
                    self.send_msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first)
                elif code == 11:  # SASLContinue
                    self.send_msg("p", scram.client_final(p[4:]))
                elif code == 12:  # SASLFinal
                    scram.verify_server_final(p[4:])
                elif code == 3:  # cleartext
                    self.send_msg("p", cstr(password))
                elif code == 5:  # md5
                    salt = p[4:8]
                    inner = hashlib.md5((password + user).encode()).hexdigest()
                    outer = hashlib.md5(inner.encode() + salt).hexdigest()
                    self.send_msg("p", cstr("md5" + outer))
                else:
                    raise ProtocolError("unsupported auth request %d" % code)
            elif t == "K":
                self.backend_pid, self.secret_key = struct.unpack("!ii", p)
            elif t == "Z":
                return self
            elif t in ("S", "N"):
                continue
            else:
                raise ProtocolError("unexpected message %r during startup" % t)

    # ---- reading results
    def read_until_ready(self, timeout=None):
        """Collect messages until ReadyForQuery; returns the list of (type, payload)."""
        out = []
        while True:
            t, p = self.recv_msg(timeout)
            out.append((t, p))
            if t == "Z":
                return out

    @staticmethod
    def results(messages):
        """Group messages into Result objects (one per statement / Execute)."""
        res = []
        cur = Result()
        for t, p in messages:
            if t == "T":
                cur.columns = parse_row_description(p)
            elif t == "D":
                cur.rows.append(parse_data_row(p))
            elif t == "C":
                cur.tag = p.rstrip(b"\0").decode()
                res.append(cur)
                cur = Result()
            elif t == "s":
                cur.suspended = True
                res.append(cur)
                cur = Result()
            elif t == "I":
                cur.empty = True
                res.append(cur)
                cur = Result()
            elif t == "E":
                cur.error = ServerError(parse_fields(p))
                res.append(cur)
                cur = Result()
        return res

    def query(self, sql, timeout=None):
        """Simple query; returns list of Result (errors are Results with .error)."""
        self.send_msg("Q", cstr(sql))
        return self.results(self.read_until_ready(timeout))

    def query1(self, sql, timeout=None):
        """Simple query with one statement; raises ServerError on error."""
        res = self.query(sql, timeout)
        for r in res:
            if r.error:
                raise r.error
        assert len(res) == 1, res
        return res[0]

    # ---- extended protocol builders
    def parse(self, sql, name="", param_types=()):
        self.send_msg("P", cstr(name) + cstr(sql) + struct.pack("!h", len(param_types))
                      + b"".join(struct.pack("!i", t) for t in param_types))

    def bind(self, params=(), portal="", statement="", param_formats=(), result_formats=()):
        """params: list of bytes/None (already encoded)."""
        body = cstr(portal) + cstr(statement)
        body += struct.pack("!h", len(param_formats)) + b"".join(struct.pack("!h", f) for f in param_formats)
        body += struct.pack("!h", len(params))
        for v in params:
            if v is None:
                body += struct.pack("!i", -1)
            else:
                if isinstance(v, str):
                    v = v.encode()
                body += struct.pack("!i", len(v)) + v
        body += struct.pack("!h", len(result_formats)) + b"".join(struct.pack("!h", f) for f in result_formats)
        self.send_msg("B", body)

    def describe(self, kind, name=""):
        self.send_msg("D", kind.encode() + cstr(name))

    def execute(self, portal="", max_rows=0):
        self.send_msg("E", cstr(portal) + struct.pack("!i", max_rows))

    def close_obj(self, kind, name=""):
        self.send_msg("C", kind.encode() + cstr(name))

    def sync(self):
        self.send_msg("S")

    def flush(self):
        self.send_msg("H")

    def copy_data(self, data):
        self.send_msg("d", data)

    def copy_done(self):
        self.send_msg("c")

    def copy_fail(self, why="client failed"):
        self.send_msg("f", cstr(why))

    def prepared(self, sql, params=(), param_types=(), param_formats=(), result_formats=()):
        """One Parse/Bind/Describe/Execute/Sync round trip; returns messages."""
        self.parse(sql, "", param_types)
        self.bind(params, "", "", param_formats, result_formats)
        self.describe("P", "")
        self.execute("", 0)
        self.sync()
        return self.read_until_ready()


def connect(host="127.0.0.1", port=5433, user="orbit", password="", database="orbit",
            timeout=10.0, unix_path=None, **params):
    c = Conn(host, port, timeout, unix_path=unix_path)
    try:
        c.startup(user, password, database, **params)
    except BaseException:
        c.close()
        raise
    return c


def cancel(host, port, pid, key, timeout=5.0):
    """Send a CancelRequest on a fresh connection."""
    s = socket.create_connection((host, port), timeout=timeout)
    try:
        s.sendall(struct.pack("!iiii", 16, CANCEL_REQUEST, pid, key))
        try:
            s.recv(1)  # server closes the connection
        except OSError:
            pass
    finally:
        s.close()
