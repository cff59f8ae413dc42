"""Bad input on the wire: every offending connection gets an error or is closed,
the server keeps serving everyone else. Seeded (ORBIT_FUZZ_SEED), bounded in time."""
import os
import random
import socket
import struct
import time

import pytest

import rawpg
from rawpg import cstr, msg

SEED = int(os.environ.get("ORBIT_FUZZ_SEED", "20240601"))


def healthy(s):
    """The server process is alive and a fresh, normal connection works."""
    assert s.alive(), "orbitd died (exit %r); log:\n%s" % (s.proc.poll(), s.log()[-3000:])
    c = s.raw(timeout=10)
    assert c.query1("SELECT 1").text_rows() == [["1"]]
    c.terminate()


def outcome(c, timeout=5.0):
    """Read what the server answers until it closes, sends ReadyForQuery or an
    authentication request, or goes quiet. Returns (messages, closed). Stops at
    the first frame that is not a valid server message."""
    msgs = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return msgs, False
        try:
            t, p = c.recv_msg(timeout=remaining)
        except (EOFError, ConnectionResetError, BrokenPipeError):
            return msgs, True
        except TimeoutError:
            return msgs, False
        except rawpg.ProtocolError:
            return msgs, c.is_closed(remaining)
        msgs.append((t, p))
        if t == "E":
            f = rawpg.parse_fields(p)
            if f.get("S") == "FATAL":
                return msgs, c.is_closed(remaining)
        if t in ("Z", "R"):
            return msgs, False


def error_or_closed(c, timeout=5.0):
    msgs, closed = outcome(c, timeout)
    got_error = any(t == "E" for t, _ in msgs)
    assert got_error or closed, "no error and connection left open; got %r" % msgs[:5]
    return msgs, closed


@pytest.fixture(scope="module")
def fz(shared_server):
    return shared_server


def fresh_socket(s, timeout=5.0):
    return s.raw_socket(timeout)


def send_quiet(c, data):
    try:
        c.send(data)
    except OSError:
        pass


# ------------------------------------------------------------------ startup phase

def sp(body):
    """Frame a startup-phase packet: int32 length (self-inclusive) + body."""
    return struct.pack("!i", len(body) + 4) + body


V3 = struct.pack("!i", rawpg.PROTOCOL_3_0)

STARTUP_CASES = {
    "length_too_small": struct.pack("!i", 4),
    "length_negative": struct.pack("!ii", -8, rawpg.PROTOCOL_3_0),
    "length_huge": struct.pack("!ii", 0x7FFFFFF0, rawpg.PROTOCOL_3_0),
    "length_1gib_plus": struct.pack("!ii", (1 << 30) + 8, rawpg.PROTOCOL_3_0),
    "unknown_version": rawpg.startup_packet(version=(9 << 16) | 9),
    "version_1": rawpg.startup_packet(version=(1 << 16)),
    "no_user": sp(V3 + b"database\0orbit\0\0"),
    "unterminated_params": sp(V3 + b"user\0orbit\0database\0orb"),
    "missing_final_terminator": sp(V3 + b"user\0orbit\0database\0orbit\0"),
    "empty_body": sp(V3),
    "cancel_bad_length": struct.pack("!ii", 12, rawpg.CANCEL_REQUEST) + b"\0\0\0\1",
    "ssl_then_garbage": struct.pack("!ii", 8, rawpg.SSL_REQUEST) + b"\x16\x03\x01\x02\x00garbage-garbage",
    "http_request": b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    "tls_client_hello": b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\x00" * 64,
    "invalid_utf8_user": sp(V3 + b"user\0\xff\xfe\xc3\x28\0database\0orbit\0\0"),
    "huge_param_count": sp(V3 + b"user\0orbit\0" + b"".join(b"k%d\0v\0" % i for i in range(5000)) + b"\0"),
}

# startup packets a server may reasonably accept as well-formed and answer
# with an authentication request (the exchange then fails or the client leaves)
MAY_REACH_AUTH = {"invalid_utf8_user", "huge_param_count"}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", sorted(STARTUP_CASES))
def test_malformed_startup(fz, case):
    c = fresh_socket(fz)
    send_quiet(c, STARTUP_CASES[case])
    if case == "ssl_then_garbage":
        try:
            assert c.recv_raw(1) in (b"N", b"S")
        except EOFError:
            pass
    msgs, closed = outcome(c)
    got = [t for t, _ in msgs]
    if case in MAY_REACH_AUTH and got and got[-1] == "R":
        pass
    else:
        assert "E" in got or closed, "no error and connection left open; got %r" % msgs[:5]
        assert "R" not in got, "malformed startup %s reached authentication" % case
    c.close()
    healthy(fz)


def test_startup_then_silence_does_not_block_others(fz):
    idle = [fresh_socket(fz) for _ in range(50)]
    for i, c in enumerate(idle):
        if i % 2:
            send_quiet(c, rawpg.startup_packet()[:5])   # half a startup packet
    healthy(fz)
    for c in idle:
        c.close()
    healthy(fz)


def test_bad_sasl_responses(fz):
    cases = [
        msg("p", b"SCRAM-SHA-256\0" + struct.pack("!i", 1000) + b"n,,n=,r=abc"),   # length lies
        msg("p", b"NOT-A-MECH\0" + struct.pack("!i", 5) + b"hello"),
        msg("p", b"SCRAM-SHA-256\0" + struct.pack("!i", 9) + b"garbage!!"),
        msg("p", b""),
        msg("Q", cstr("SELECT 1")),                                                  # query before auth
        struct.pack("!ci", b"p", 0x7FFFFFFF),
    ]
    for data in cases:
        c = fresh_socket(fz)
        c.send(rawpg.startup_packet(user="orbit", database="orbit"))
        t, p = c.recv_msg()
        assert t == "R"
        send_quiet(c, data)
        error_or_closed(c)
        c.close()
    # a bogus client-final (wrong proof, wrong nonce)
    for final in (b"c=biws,r=nonce,p=AAAA", b"c=biws,r=zzz", b"\xff\xfe"):
        c = fresh_socket(fz)
        c.send(rawpg.startup_packet(user="orbit", database="orbit"))
        c.recv_msg()
        first = b"n,,n=,r=clientnonce"
        c.send_msg("p", cstr("SCRAM-SHA-256") + struct.pack("!i", len(first)) + first)
        t, p = c.recv_msg()
        if t == "R":
            send_quiet(c, msg("p", final))
            msgs, closed = error_or_closed(c)
            assert not any(t == "R" and struct.unpack_from("!i", p)[0] == 0 for t, p in msgs), \
                "authentication succeeded with a bogus proof"
        c.close()
    healthy(fz)


# ------------------------------------------------------------------ after authentication

def authed(s):
    return s.raw()


def test_oversized_message_rejected_fast(fz):
    for mtype in (b"Q", b"P", b"B", b"d", b"p"):
        c = authed(fz)
        t0 = time.monotonic()
        send_quiet(c, mtype + struct.pack("!i", (1 << 30) + 100) + b"SELECT")
        msgs, closed = error_or_closed(c, timeout=5)
        assert time.monotonic() - t0 < 5
        c.close()
    healthy(fz)


def test_message_length_below_4(fz):
    for ln in (0, 1, 3, -1, -100000):
        c = authed(fz)
        send_quiet(c, b"Q" + struct.pack("!i", ln) + b"SELECT 1\0")
        error_or_closed(c)
        c.close()
    healthy(fz)


def test_unknown_message_types(fz):
    for mtype in b"zA!\x00\xffabeghijklmnoqrstuvwxy":
        c = authed(fz)
        send_quiet(c, bytes([mtype]) + struct.pack("!i", 8) + b"abcd")
        msgs, closed = error_or_closed(c)
        errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
        if errs:
            assert errs[0].get("C") == "08P01", errs
        c.close()
    healthy(fz)


def test_truncated_messages_then_close(fz):
    frames = [msg("Q", cstr("SELECT 1")), msg("P", cstr("s") + cstr("SELECT 1") + b"\0\0"),
              msg("B", b"\0\0" + b"\0\0" + b"\0\0" + b"\0\0"), msg("E", b"\0" + b"\0\0\0\0")]
    for f in frames:
        for cut in (1, 3, 5, len(f) - 1):
            c = authed(fz)
            send_quiet(c, f[:cut])
            c.close()
    healthy(fz)


def test_internally_inconsistent_messages(fz):
    cases = [
        msg("Q", b"SELECT 1"),                                           # no terminator
        msg("P", b"stmt\0SELECT 1"),                                     # unterminated query
        msg("P", cstr("") + cstr("SELECT $1") + struct.pack("!h", 5) + struct.pack("!i", 23)),  # short oids
        msg("P", cstr("") + cstr("SELECT 1") + struct.pack("!h", -3)),
        msg("B", cstr("") + cstr("") + struct.pack("!h", 100)),         # formats run past the end
        msg("B", cstr("") + cstr("") + struct.pack("!hh", 0, 1) + struct.pack("!i", 1000) + b"ab"),
        msg("B", cstr("") + cstr("") + struct.pack("!hh", 0, 1) + struct.pack("!i", -5)),
        msg("B", cstr("") + cstr("") + struct.pack("!h", 1) + struct.pack("!h", 7) + struct.pack("!h", 0)
            + struct.pack("!h", 0)),                                    # format code 7
        msg("D", b"X" + cstr("x")),
        msg("D", b"S"),
        msg("C", b"Q" + cstr("x")),
        msg("E", cstr("") + struct.pack("!h", 1)),                      # max_rows truncated
        msg("d", b"copy data outside COPY"),
        msg("c", b""),
        msg("f", cstr("not copying")),
        msg("F", b"\0\0\0\1"),                                          # FunctionCall
        msg("p", b"password at the wrong time\0"),
        msg("Q", cstr("SELECT 1") + b"trailing junk"),
    ]
    for data in cases:
        c = authed(fz)
        send_quiet(c, data + msg("S"))
        msgs, closed = outcome(c, timeout=5)
        if not closed:
            # still open: it must still be in a sane state and answer a query
            try:
                while c.pending(0.3):     # e.g. a second ReadyForQuery for the Sync
                    c.recv_msg()
                c.send_msg("Q", cstr("SELECT 42"))
                res = c.results(c.read_until_ready(timeout=5))
                assert any(r.text_rows() == [["42"]] for r in res), (data, res)
            except (EOFError, ConnectionResetError, BrokenPipeError):
                pass
        c.close()
    healthy(fz)


def test_invalid_utf8_in_query(fz):
    bad = [b"SELECT '\xff\xfe'", b"SELECT '\xc3\x28'", b"SELECT 1 -- \xe2\x82", b"SELECT '\xed\xa0\x80'",
           b"SELECT '\xf8\x88\x80\x80\x80'"]
    for q in bad:
        c = authed(fz)
        send_quiet(c, msg("Q", q + b"\0"))
        msgs, closed = outcome(c)
        errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
        assert errs or closed, (q, msgs)
        if errs:
            assert errs[0].get("C") in ("22021", "08P01"), (q, errs)
        if not closed:
            try:
                assert c.query1("SELECT 'ok'").text_rows() == [["ok"]]
            except (EOFError, ConnectionResetError):
                pass
        c.close()
    healthy(fz)


def test_invalid_utf8_in_parameters_and_copy(fz, unique_name):
    c = authed(fz)
    c.query1("CREATE TABLE %s (t text)" % unique_name)
    c.parse("INSERT INTO %s VALUES ($1)" % unique_name, "", [rawpg.TEXT])
    c.bind([b"\xff\xfe\xfd"])
    c.execute()
    c.sync()
    msgs = c.read_until_ready()
    errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
    assert errs and errs[0]["C"] == "22021", msgs
    c.send_msg("Q", cstr("COPY %s FROM STDIN" % unique_name))
    t, _ = c.recv_msg()
    assert t == "G"
    c.copy_data(b"good\n\xc3\x28bad\n")
    c.copy_done()
    msgs = c.read_until_ready()
    errs = [rawpg.parse_fields(p) for t, p in msgs if t == "E"]
    assert errs and errs[0]["C"] == "22021", msgs
    assert c.query1("SELECT count(*) FROM %s" % unique_name).text_rows() == [["0"]]
    c.terminate()
    healthy(fz)


# ------------------------------------------------------------------ random

@pytest.mark.timeout(180)
def test_random_bytes(fz):
    rng = random.Random(SEED)
    t_end = time.monotonic() + 20
    n = 0
    while time.monotonic() < t_end and n < 300:
        n += 1
        before_auth = rng.random() < 0.4
        c = fresh_socket(fz) if before_auth else authed(fz)
        data = bytes(rng.getrandbits(8) for _ in range(rng.choice([1, 7, 64, 512, 4096])))
        if not before_auth and rng.random() < 0.5:
            # a plausible header with a random body
            data = bytes([rng.choice(b"QPBDECSHdcfXp")]) + struct.pack("!i", len(data) + 4) + data
        send_quiet(c, data)
        outcome(c, timeout=0.3)
        c.close()
        if n % 25 == 0:
            healthy(fz)
    healthy(fz)


@pytest.mark.timeout(180)
def test_mutated_valid_sessions(fz, unique_name):
    """Take a valid extended-protocol exchange and flip, insert or drop bytes."""
    rng = random.Random(SEED + 1)
    t = unique_name
    setup = authed(fz)
    setup.query1("CREATE TABLE %s (id integer, v text)" % t)
    setup.terminate()
    base = (msg("P", cstr("s1") + cstr("INSERT INTO %s VALUES ($1, $2)" % t) + struct.pack("!hii", 2, 23, 25))
            + msg("B", cstr("") + cstr("s1") + struct.pack("!hh", 1, 0) + struct.pack("!h", 2)
                  + struct.pack("!i", 1) + b"7" + struct.pack("!i", 3) + b"abc" + struct.pack("!h", 0))
            + msg("D", b"P\0") + msg("E", b"\0" + struct.pack("!i", 0))
            + msg("Q", cstr("SELECT * FROM %s" % t)) + msg("S"))
    t_end = time.monotonic() + 20
    n = 0
    while time.monotonic() < t_end and n < 300:
        n += 1
        data = bytearray(base)
        for _ in range(rng.randint(1, 4)):
            op = rng.random()
            i = rng.randrange(len(data))
            if op < 0.5:
                data[i] = rng.getrandbits(8)
            elif op < 0.75:
                data.insert(i, rng.getrandbits(8))
            else:
                del data[i]
        c = authed(fz)
        send_quiet(c, bytes(data))
        outcome(c, timeout=0.5)
        c.close()
        if n % 25 == 0:
            healthy(fz)
    healthy(fz)


@pytest.mark.timeout(120)
def test_concurrent_garbage_and_good_clients(fz):
    """Good sessions keep working while other connections send garbage."""
    rng = random.Random(SEED + 2)
    good = [authed(fz) for _ in range(5)]
    for round_ in range(20):
        bad = []
        for _ in range(10):
            c = fresh_socket(fz)
            send_quiet(c, bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 200))))
            bad.append(c)
        for i, g in enumerate(good):
            assert g.query1("SELECT %d" % (round_ * 10 + i)).text_rows() == [[str(round_ * 10 + i)]]
        for c in bad:
            c.close()
    for g in good:
        g.terminate()
    healthy(fz)
