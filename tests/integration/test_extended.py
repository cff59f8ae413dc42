"""Extended query protocol, message by message, with the raw client (rawpg)."""
import datetime
import struct

import pytest

import rawpg
from rawpg import BOOL, BYTEA, FLOAT4, FLOAT8, INT2, INT4, INT8, TEXT


def types(msgs):
    return [t for t, _ in msgs]


def errors(msgs):
    return [rawpg.ServerError(rawpg.parse_fields(p)) for t, p in msgs if t == "E"]


@pytest.fixture
def raw(shared_server):
    c = shared_server.raw()
    yield c
    c.close()


@pytest.fixture
def numbers(raw, unique_name):
    t = unique_name
    raw.query1("CREATE TABLE %s (id integer PRIMARY KEY, v text)" % t)
    raw.query1("INSERT INTO %s VALUES (1,'a'),(2,'b'),(3,'c'),(4,'d'),(5,'e')" % t)
    yield t
    raw.query("DROP TABLE %s" % t)


def test_parse_bind_describe_execute_sync(raw, numbers):
    msgs = raw.prepared("SELECT id, v FROM %s WHERE id >= $1 ORDER BY id" % numbers, ["4"], [INT4])
    assert types(msgs) == ["1", "2", "T", "D", "D", "C", "Z"], msgs
    res = rawpg.Conn.results(msgs)[0]
    assert res.text_rows() == [["4", "d"], ["5", "e"]]
    assert res.tag == "SELECT 2"
    assert [c["name"] for c in res.columns] == ["id", "v"]
    assert raw.status == "I"


def test_parameter_type_unspecified(raw, numbers):
    msgs = raw.prepared("SELECT v FROM %s WHERE id = $1" % numbers, ["3"])
    res = rawpg.Conn.results(msgs)[0]
    assert res.text_rows() == [["c"]], msgs


def test_describe_statement(raw, numbers):
    raw.parse("SELECT id, v FROM %s WHERE id = $1 AND v <> $2" % numbers, "d1", [INT4, TEXT])
    raw.describe("S", "d1")
    raw.parse("INSERT INTO %s VALUES ($1, $2)" % numbers, "d2", [INT4, TEXT])
    raw.describe("S", "d2")
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "t", "T", "1", "t", "n", "Z"], msgs
    pd = rawpg.parse_parameter_description(msgs[1][1])
    assert pd == [INT4, TEXT]
    cols = rawpg.parse_row_description(msgs[2][1])
    assert [c["name"] for c in cols] == ["id", "v"]
    assert cols[0]["type_oid"] in (INT4, INT8) and cols[1]["type_oid"] == TEXT
    assert all(c["format"] == 0 for c in cols)
    assert rawpg.parse_parameter_description(msgs[4][1]) == [INT4, TEXT]
    raw.close_obj("S", "d1")
    raw.close_obj("S", "d2")
    raw.sync()
    assert types(raw.read_until_ready()) == ["3", "3", "Z"]


def test_describe_portal_reports_result_formats(raw, numbers):
    raw.parse("SELECT id, v FROM %s ORDER BY id" % numbers)
    raw.bind([], result_formats=[1, 0])
    raw.describe("P")
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "2", "T", "Z"], msgs
    cols = rawpg.parse_row_description(msgs[2][1])
    assert [c["format"] for c in cols] == [1, 0]


def test_row_limit_portal_suspended(raw, numbers):
    raw.parse("SELECT id FROM %s ORDER BY id" % numbers)
    raw.bind()
    raw.execute("", 2)
    raw.execute("", 2)
    raw.execute("", 2)
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "2", "D", "D", "s", "D", "D", "s", "D", "C", "Z"], types(msgs)
    ids = [rawpg.parse_data_row(p)[0] for t, p in msgs if t == "D"]
    assert ids == [b"1", b"2", b"3", b"4", b"5"]
    tag = [p for t, p in msgs if t == "C"][0].rstrip(b"\0").decode()
    assert tag.startswith("SELECT "), tag


def test_row_limit_exact_multiple(raw, numbers):
    # 5 rows fetched 5 at a time: the first Execute suspends (PostgreSQL does not
    # know there are no more rows), the second completes with no rows
    raw.parse("SELECT id FROM %s ORDER BY id" % numbers)
    raw.bind()
    raw.execute("", 5)
    raw.execute("", 5)
    raw.sync()
    msgs = raw.read_until_ready()
    t = types(msgs)
    assert t[:2] == ["1", "2"] and t.count("D") == 5 and t[-2:] == ["C", "Z"], t
    assert "E" not in t


def test_portal_across_syncs_in_transaction(raw, numbers):
    raw.query1("BEGIN")
    raw.parse("SELECT id FROM %s ORDER BY id" % numbers, "st")
    raw.bind(portal="cur", statement="st")
    raw.execute("cur", 3)
    raw.sync()
    m1 = raw.read_until_ready()
    assert types(m1) == ["1", "2", "D", "D", "D", "s", "Z"], m1
    assert raw.status == "T"
    raw.execute("cur", 3)
    raw.sync()
    m2 = raw.read_until_ready()
    assert types(m2) == ["D", "D", "C", "Z"], m2
    raw.query1("COMMIT")
    assert raw.status == "I"


def test_named_statement_reuse_and_close(raw, numbers):
    raw.parse("SELECT v FROM %s WHERE id = $1" % numbers, "byid", [INT4])
    raw.sync()
    assert types(raw.read_until_ready()) == ["1", "Z"]
    for i, expect in ((1, "a"), (5, "e"), (3, "c")):
        raw.bind([str(i)], statement="byid")
        raw.execute()
        raw.sync()
        msgs = raw.read_until_ready()
        assert types(msgs) == ["2", "D", "C", "Z"], msgs
        assert rawpg.parse_data_row(msgs[1][1]) == [expect.encode()]
    # survives a transaction
    raw.query1("BEGIN")
    raw.query1("COMMIT")
    raw.bind(["2"], statement="byid")
    raw.execute()
    raw.sync()
    assert types(raw.read_until_ready()) == ["2", "D", "C", "Z"]
    raw.close_obj("S", "byid")
    raw.sync()
    assert types(raw.read_until_ready()) == ["3", "Z"]
    raw.bind(["2"], statement="byid")
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    errs = errors(msgs)
    assert errs and errs[0].code == "26000", msgs


def test_unnamed_statement_replaced(raw, numbers):
    raw.parse("SELECT 'first'")
    raw.parse("SELECT 'second'")
    raw.bind()
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "1", "2", "D", "C", "Z"]
    assert rawpg.parse_data_row(msgs[3][1]) == [b"second"]


def test_named_portals_interleaved(raw, numbers):
    raw.query1("BEGIN")
    raw.parse("SELECT id FROM %s WHERE id >= $1 ORDER BY id" % numbers, "q", [INT4])
    raw.bind(["1"], portal="p1", statement="q")
    raw.bind(["4"], portal="p2", statement="q")
    raw.execute("p1", 1)
    raw.execute("p2", 1)
    raw.execute("p1", 1)
    raw.execute("p2", 0)
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "2", "2", "D", "s", "D", "s", "D", "s", "D", "C", "Z"], types(msgs)
    vals = [rawpg.parse_data_row(p)[0] for t, p in msgs if t == "D"]
    assert vals == [b"1", b"4", b"2", b"5"]
    raw.close_obj("P", "p1")
    raw.sync()
    assert types(raw.read_until_ready()) == ["3", "Z"]
    raw.execute("p1", 0)
    raw.sync()
    msgs = raw.read_until_ready()
    errs = errors(msgs)
    assert errs and errs[0].code == "34000", msgs
    raw.query("ROLLBACK")
    assert raw.status == "I"


def test_portals_closed_at_transaction_end(raw, numbers):
    raw.query1("BEGIN")
    raw.parse("SELECT id FROM %s ORDER BY id" % numbers)
    raw.bind(portal="pp")
    raw.execute("pp", 1)
    raw.sync()
    raw.read_until_ready()
    raw.query1("COMMIT")
    raw.execute("pp", 1)
    raw.sync()
    errs = errors(raw.read_until_ready())
    assert errs and errs[0].code == "34000"


VALUES = [
    (BOOL, True, "t"),
    (INT2, -2, "-2"),
    (INT4, 123456, "123456"),
    (INT8, -9000000000, "-9000000000"),
    (FLOAT4, 1.5, "1.5"),
    (FLOAT8, -2.25, "-2.25"),
    (TEXT, "héllo wörld", "héllo wörld"),
    (BYTEA, b"\x00\xff\x10binary", "\\x00ff1062696e617279"),
]


@pytest.fixture
def typed(raw, unique_name):
    t = unique_name
    raw.query1("CREATE TABLE %s (id integer, b boolean, i2 smallint, i4 integer, i8 bigint, "
               "f4 real, f8 double precision, t text, by bytea)" % t)
    yield t
    raw.query("DROP TABLE %s" % t)


def _insert_sql(t):
    return "INSERT INTO %s VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)" % t


def test_binary_params_all_types(raw, typed):
    oids = [INT4] + [o for o, _, _ in VALUES]
    params = [rawpg.encode_binary(INT4, 1)] + [rawpg.encode_binary(o, v) for o, v, _ in VALUES]
    msgs = raw.prepared(_insert_sql(typed), params, oids, param_formats=[1])
    assert types(msgs) == ["1", "2", "n", "C", "Z"], msgs
    assert rawpg.Conn.results(msgs)[0].tag == "INSERT 0 1"
    # read back in text format
    res = raw.query1("SELECT b, i2, i4, i8, f4, f8, t, by FROM %s WHERE id = 1" % typed)
    assert res.text_rows() == [[txt for _, _, txt in VALUES]]


def test_binary_params_per_parameter_formats(raw, typed):
    oids = [INT4] + [o for o, _, _ in VALUES]
    fmts = [0] + [1, 0, 1, 0, 1, 0, 1, 1]
    params = ["2"]
    for (o, v, txt), f in zip(VALUES, fmts[1:]):
        params.append(rawpg.encode_binary(o, v) if f else ("t" if o == BOOL else txt))
    msgs = raw.prepared(_insert_sql(typed), params, oids, param_formats=fmts)
    assert "E" not in types(msgs), errors(msgs)
    res = raw.query1("SELECT b, i2, i4, i8, f4, f8, t, by FROM %s WHERE id = 2" % typed)
    assert res.text_rows() == [[txt for _, _, txt in VALUES]]



def test_format_codes_and_binary_lengths_as_postgresql(raw):
    """What PostgreSQL 15 answers: a format code other than 0/1 is 22023
    "unsupported format code: N" (a parameter's at Bind; a result's when
    rows are sent, so a statement without rows runs and Describe shows the
    code); a binary value shorter than its type is 08P01 ("no data left" /
    "insufficient data left in message"), a longer one 22P03. orbitd
    answered 08P01 "malformed Bind" and 22P03 for all of these."""
    def run(sql, param_types, params, pf, rf, describe=False):
        raw.parse(sql, "", param_types)
        raw.bind(params, "", "", pf, rf)
        if describe:
            raw.describe("P")
        raw.execute()
        raw.sync()
        return raw.read_until_ready()

    msgs = run("SELECT 1", (), (), (), (2,), describe=True)
    assert types(msgs) == ["1", "2", "T", "E", "Z"], msgs
    assert rawpg.parse_row_description(msgs[2][1])[0]["format"] == 2
    e = errors(msgs)[0]
    assert (e.code, e.message) == ("22023", "unsupported format code: 2")
    msgs = run("SET application_name = 'fmt'", (), (), (), (2,))
    assert "E" not in types(msgs) and rawpg.Conn.results(msgs)[0].tag == "SET", msgs
    for params, pf in (([b"1"], (2,)), ([None], (-1,))):
        msgs = run("SELECT $1", (INT4,), params, pf, ())
        assert types(msgs) == ["1", "E", "Z"], msgs
        assert errors(msgs)[0].code == "22023", msgs
    for oid, value, code, message in ((BOOL, b"", "08P01", "no data left in message"),
                                      (INT4, b"\0\0\1", "08P01", "insufficient data left in message"),
                                      (INT8, b"", "08P01", "insufficient data left in message"),
                                      (BOOL, b"\1\1", "22P03", "incorrect binary data format in bind parameter 1"),
                                      (INT4, b"\0\0\0\0\1", "22P03", "incorrect binary data format in bind parameter 1")):
        msgs = run("SELECT $1", (oid,), [value], (1,), ())
        assert types(msgs) == ["1", "E", "Z"], msgs
        e = errors(msgs)[0]
        assert (e.code, e.message) == (code, message), (oid, value)

def test_text_params_all_types(raw, typed):
    oids = [INT4] + [o for o, _, _ in VALUES]
    params = ["3", "true", "-2", "123456", "-9000000000", "1.5", "-2.25", "héllo wörld",
              "\\x00ff1062696e617279"]
    msgs = raw.prepared(_insert_sql(typed), params, oids)
    assert "E" not in types(msgs), errors(msgs)
    res = raw.query1("SELECT b, i2, i4, i8, f4, f8, t, by FROM %s WHERE id = 3" % typed)
    assert res.text_rows() == [[txt for _, _, txt in VALUES]]


def test_binary_results_all_types(raw, typed):
    oids = [INT4] + [o for o, _, _ in VALUES]
    params = [rawpg.encode_binary(INT4, 4)] + [rawpg.encode_binary(o, v) for o, v, _ in VALUES]
    assert "E" not in types(raw.prepared(_insert_sql(typed), params, oids, param_formats=[1]))
    msgs = raw.prepared("SELECT b, i2, i4, i8, f4, f8, t, by FROM %s WHERE id = $1" % typed,
                        [rawpg.encode_binary(INT8, 4)], [INT8], param_formats=[1], result_formats=[1])
    assert types(msgs) == ["1", "2", "T", "D", "C", "Z"], msgs
    cols = rawpg.parse_row_description(msgs[2][1])
    assert all(c["format"] == 1 for c in cols)
    row = rawpg.parse_data_row(msgs[3][1])
    got = [rawpg.decode_binary(c["type_oid"], v) for c, v in zip(cols, row)]
    expect = [v for _, v, _ in VALUES]
    assert got == expect, (got, [c["type_oid"] for c in cols])



# numeric values and their binary form as PostgreSQL 15 sends them
# (ndigits, weight, sign, dscale, base-10000 digits)
NUMERIC_BINARY = [
    ("0", "0000000000000000"),
    ("1", "00010000000000000001"),
    ("-1", "00010000400000000001"),
    ("123.45", "0002000000000002007b1194"),
    ("0.00012", "0002ffff00000005000107d0"),
    ("10000", "00010001000000000001"),
    ("99999999", "0002000100000000270f270f"),
    ("1e20", "00010005000000000001"),
    ("1.5e3", "000100000000000005dc"),
    ("0.1", "0001ffff0000000103e8"),
    ("NaN", "00000000c0000000"),
    ("Infinity", "00000000d0000020"),
    ("-Infinity", "00000000f0000020"),
    ("7.00001", "00030000000000050007000003e8"),
    ("1e-10", "0001fffd0000000a0064"),
    ("123456.7", "0003000100000001000c0d801b58"),
    ("-0.5", "0001ffff400000011388"),
    ("3.14159265358979", "000500000000000e0003058724310e051edc"),
]


def test_numeric_binary_format(raw, unique_name):
    """numeric in binary (what JDBC and psycopg's binary mode ask for):
    orbitd answered 0A000 both ways."""
    t = unique_name
    raw.query1("CREATE TABLE %s (k integer, v numeric)" % t)
    for k, (v, _) in enumerate(NUMERIC_BINARY):
        raw.query1("INSERT INTO %s VALUES (%d, '%s')" % (t, k, v))
    msgs = raw.prepared("SELECT v FROM %s ORDER BY k" % t, result_formats=[1])
    assert "E" not in types(msgs), errors(msgs)
    assert rawpg.parse_row_description(msgs[2][1])[0]["type_oid"] == rawpg.NUMERIC
    got = [rawpg.parse_data_row(p)[0].hex() for ty, p in msgs if ty == "D"]
    assert got == [b for _, b in NUMERIC_BINARY]
    raw.query1("DROP TABLE %s" % t)
    # binary parameters read back as text, the dscale kept (as PostgreSQL)
    for hexval, text in (("0002000040000003007b1194", "-123.450"), ("0002ffff00000005000107d0", "0.00012"),
                         ("00000000c0000000", "NaN"), ("0000000000000003", "0.000"),
                         ("00010005000000000001", "100000000000000000000")):
        msgs = raw.prepared("SELECT $1", [bytes.fromhex(hexval)], [rawpg.NUMERIC], param_formats=[1])
        assert rawpg.Conn.results(msgs)[0].text_rows() == [[text]], (hexval, msgs)
    for hexval, code in (("00010000", "08P01"), ("000100000000000000010000", "22P03"),
                         ("0001000012340000270f", "22P03"), ("0001000000000000ffff", "22P03")):
        msgs = raw.prepared("SELECT $1", [bytes.fromhex(hexval)], [rawpg.NUMERIC], param_formats=[1])
        assert errors(msgs) and errors(msgs)[0].code == code, (hexval, msgs)

def test_binary_results_mixed_formats(raw):
    msgs = raw.prepared("SELECT 42, 'x'", result_formats=[1, 0])
    assert "E" not in types(msgs), errors(msgs)
    cols = rawpg.parse_row_description(msgs[2][1])
    row = rawpg.parse_data_row(msgs[3][1])
    assert cols[0]["format"] == 1 and cols[1]["format"] == 0
    assert rawpg.decode_binary(cols[0]["type_oid"], row[0]) == 42
    assert row[1] == b"x"


NUMERIC, DATE, TIME, TIMESTAMP, TIMESTAMPTZ, UUID = 1700, 1082, 1083, 1114, 1184, 2950
EPOCH_2000 = datetime.datetime(2000, 1, 1)


def _us(dt):
    """microseconds since 2000-01-01, PostgreSQL's binary timestamp"""
    d = dt - EPOCH_2000
    return (d.days * 86400 + d.seconds) * 1000000 + d.microseconds


# (declared type, SQL literal stored, oid, binary form, text PostgreSQL prints
# for that binary form): what pgjdbc asks for once a statement is
# server-prepared, and sends for BigDecimal / UUID parameters
BIN_VALUES = [
    ("numeric", "'12345678.9'", NUMERIC, struct.pack("!hhHH4H", 3, 1, 0, 1, 1234, 5678, 9000, 0)[:14],
     "12345678.9"),
    ("numeric", "'-0.001'", NUMERIC, struct.pack("!hhHHH", 1, -1, 0x4000, 3, 10), "-0.001"),
    ("numeric", "42", NUMERIC, struct.pack("!hhHHH", 1, 0, 0, 0, 42), "42"),
    ("date", "'2024-02-29'", DATE, struct.pack("!i", (datetime.date(2024, 2, 29) - datetime.date(2000, 1, 1)).days),
     "2024-02-29"),
    ("time", "'13:45:06.5'", TIME, struct.pack("!q", ((13 * 60 + 45) * 60 + 6) * 1000000 + 500000), "13:45:06.5"),
    ("timestamp", "'2024-02-29 13:45:06.123456'", TIMESTAMP,
     struct.pack("!q", _us(datetime.datetime(2024, 2, 29, 13, 45, 6, 123456))), "2024-02-29 13:45:06.123456"),
    ("timestamptz", "'2024-02-29 13:45:06.123456+05:30'", TIMESTAMPTZ,
     struct.pack("!q", _us(datetime.datetime(2024, 2, 29, 8, 15, 6, 123456))), "2024-02-29 08:15:06.123456+00"),
    ("uuid", "'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", UUID,
     bytes.fromhex("a0eebc999c0b4ef8bb6d6bb9bd380a11"), "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"),
]


@pytest.mark.parametrize("decl,lit,oid,binary,text", BIN_VALUES, ids=[v[0] + str(i) for i, v in enumerate(BIN_VALUES)])
def test_binary_numeric_datetime_uuid(raw, unique_name, decl, lit, oid, binary, text):
    t = unique_name
    raw.query1("CREATE TABLE %s (id integer, v %s)" % (t, decl))
    try:
        raw.query1("INSERT INTO %s VALUES (1, %s)" % (t, lit))
        msgs = raw.prepared("SELECT v FROM %s WHERE id = 1" % t, result_formats=[1])
        assert "E" not in types(msgs), errors(msgs)
        cols = rawpg.parse_row_description(msgs[2][1])
        assert cols[0]["type_oid"] == oid and cols[0]["format"] == 1
        assert rawpg.parse_data_row(msgs[3][1]) == [binary]
        # the binary form as a parameter is stored as PostgreSQL's text of it
        msgs = raw.prepared("INSERT INTO %s VALUES (2, $1)" % t, [binary], [oid], param_formats=[1])
        assert "E" not in types(msgs), errors(msgs)
        msgs = raw.prepared("SELECT v FROM %s WHERE id = 2" % t, result_formats=[1])
        assert rawpg.parse_data_row(msgs[3][1]) == [binary]
        got = raw.query1("SELECT v FROM %s WHERE id = 2" % t).text_rows()
        assert got == [[text]] or (oid == NUMERIC and float(got[0][0]) == float(text)), got
    finally:
        raw.query("DROP TABLE %s" % t)


def test_binary_date_of_bad_text(raw, unique_name):
    """SQLite keeps any text in a date column; binary output refuses what
    is not a date (text output passes it through)."""
    t = unique_name
    raw.query1("CREATE TABLE %s (d date)" % t)
    try:
        raw.query1("INSERT INTO %s VALUES ('2024-13-01')" % t)
        errs = errors(raw.prepared("SELECT d FROM %s" % t, result_formats=[1]))
        assert errs and errs[0].code == "22007", errs
        assert errs[0].message == 'invalid input syntax for type date: "2024-13-01"'
        assert raw.query1("SELECT d FROM %s" % t).text_rows() == [["2024-13-01"]]
    finally:
        raw.query("DROP TABLE %s" % t)


def test_schema_change_after_parse(shared_server, raw, unique_name):
    """A named statement whose result columns changed since Parse: 0A000
    "cached plan must not change result type" from routine
    RevalidateCachedQuery (pgjdbc prepares it again on that); the unnamed
    statement, parsed again, describes the new columns even on a pooled
    connection that had the old statement cached."""
    t = unique_name
    raw.query1("CREATE TABLE %s (id integer, v text)" % t)
    other = shared_server.raw()
    try:
        raw.query1("INSERT INTO %s VALUES (1, 'a')" % t)
        raw.parse("SELECT * FROM %s" % t, "s_shape")
        raw.sync()
        assert types(raw.read_until_ready()) == ["1", "Z"]
        for _ in range(3):  # cached on the pooled connection
            res = rawpg.Conn.results(raw.prepared("SELECT * FROM %s" % t))[0]
            assert len(res.columns) == 2
        other.query1("ALTER TABLE %s ADD COLUMN w integer" % t)
        other.query1("UPDATE %s SET w = 7" % t)
        res = rawpg.Conn.results(raw.prepared("SELECT * FROM %s" % t))[0]
        assert [c["name"] for c in res.columns] == ["id", "v", "w"]
        assert res.text_rows() == [["1", "a", "7"]]
        raw.bind(statement="s_shape")
        raw.execute()
        raw.sync()
        errs = errors(raw.read_until_ready())
        assert errs and errs[0].code == "0A000", errs
        assert errs[0].message == "cached plan must not change result type"
        assert errs[0].fields.get("R") == "RevalidateCachedQuery"
        assert raw.status == "I"
        # in a transaction block the error aborts it, as in PostgreSQL
        raw.query1("BEGIN")
        raw.bind(statement="s_shape")
        raw.execute()
        raw.sync()
        assert errors(raw.read_until_ready())[0].code == "0A000"
        assert raw.status == "E"
        raw.query1("ROLLBACK")
    finally:
        other.close()
        raw.query("DROP TABLE %s" % t)


def test_null_params_and_results(raw, typed):
    oids = [INT4] + [o for o, _, _ in VALUES]
    params = [rawpg.encode_binary(INT4, 5)] + [None] * len(VALUES)
    assert "E" not in types(raw.prepared(_insert_sql(typed), params, oids, param_formats=[1]))
    msgs = raw.prepared("SELECT b, i8, by FROM %s WHERE id = 5" % typed, result_formats=[1])
    row = rawpg.parse_data_row(msgs[3][1])
    assert row == [None, None, None]


def test_text_params_invalid_utf8_or_nul_refused(raw, typed):
    """PostgreSQL refuses invalid UTF-8 and NUL bytes (22021) in every text-format
    parameter and in the binary format of the text types, which is the text
    itself; orbitd checked only the text format, and stored anything sent in
    binary as text."""
    for value, fmt, oid in [(b"\xff\xfe", 1, TEXT), (b"a\0b", 1, TEXT), (b"a\0b", 0, TEXT),
                            (b"\xc3", 1, rawpg.VARCHAR), (b"a\0b", 0, 0)]:
        msgs = raw.prepared("INSERT INTO %s (id, t) VALUES (9, $1)" % typed, [value], [oid], param_formats=[fmt])
        errs = errors(msgs)
        assert [e.code for e in errs] == ["22021"], (value, fmt, msgs)
    assert raw.query1("SELECT count(*) FROM %s WHERE id = 9" % typed).text_rows() == [["0"]]
    msgs = raw.prepared("INSERT INTO %s (id, t) VALUES (9, $1)" % typed, ["h\u00e9".encode()], [TEXT],
                        param_formats=[1])
    assert "E" not in types(msgs), errors(msgs)


def test_binary_param_in_where_and_arithmetic(raw, numbers):
    msgs = raw.prepared("SELECT count(*) FROM %s WHERE id > $1" % numbers,
                        [rawpg.encode_binary(INT8, 2)], [INT8], param_formats=[1])
    assert rawpg.Conn.results(msgs)[0].text_rows() == [["3"]]
    msgs = raw.prepared("SELECT $1 + 1", [rawpg.encode_binary(INT4, 41)], [INT4], param_formats=[1])
    assert rawpg.Conn.results(msgs)[0].text_rows() == [["42"]]


def test_error_skips_until_sync(raw, numbers):
    raw.parse("SELEC broken")               # syntax error
    raw.bind()
    raw.describe("P")
    raw.execute()
    raw.parse("SELECT 1", "never")          # skipped too
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["E", "Z"], msgs
    assert errors(msgs)[0].code == "42601"
    assert raw.status == "I"
    # the statement after the error was not created
    raw.bind(statement="never")
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert errors(msgs)[0].code == "26000"
    # the connection works
    assert raw.query1("SELECT 7").text_rows() == [["7"]]


def test_execute_error_skips_rest(raw, numbers):
    raw.parse("INSERT INTO %s VALUES ($1, 'dup')" % numbers, "ins", [INT4])
    raw.bind(["1"], statement="ins")    # duplicate key
    raw.execute()
    raw.bind(["100"], statement="ins")  # skipped
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "2", "E", "Z"], msgs
    assert errors(msgs)[0].code == "23505"
    assert raw.query1("SELECT count(*) FROM %s WHERE id = 100" % numbers).text_rows() == [["0"]]


def test_pipelined_batches(raw, numbers):
    out = b""
    for i in (1, 2, 3):
        out += rawpg.msg("P", rawpg.cstr("") + rawpg.cstr("SELECT v FROM %s WHERE id = $1" % numbers)
                         + struct.pack("!h", 0))
        out += rawpg.msg("B", b"\0\0" + struct.pack("!hhi", 0, 1, 1) + str(i).encode() + struct.pack("!h", 0))
        out += rawpg.msg("E", b"\0" + struct.pack("!i", 0))
        out += rawpg.msg("S")
    raw.send(out)
    vals = []
    for _ in range(3):
        msgs = raw.read_until_ready()
        assert types(msgs) == ["1", "2", "D", "C", "Z"], msgs
        vals.append(rawpg.parse_data_row(msgs[2][1])[0])
    assert vals == [b"a", b"b", b"c"]


def test_flush_delivers_without_sync(raw):
    raw.parse("SELECT 1", "flushed")
    raw.flush()
    t, _ = raw.recv_msg(timeout=5)
    assert t == "1"
    raw.bind(statement="flushed")
    raw.execute()
    raw.flush()
    got = [raw.recv_msg(timeout=5)[0] for _ in range(3)]
    assert got == ["2", "D", "C"]
    raw.sync()
    assert types(raw.read_until_ready()) == ["Z"]


def test_close_nonexistent_is_not_an_error(raw):
    raw.close_obj("S", "nope")
    raw.close_obj("P", "nope")
    raw.sync()
    assert types(raw.read_until_ready()) == ["3", "3", "Z"]


def test_bind_wrong_parameter_count(raw):
    raw.parse("SELECT $1, $2", "two", [INT4, INT4])
    raw.bind(["1"], statement="two")
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "E", "Z"], msgs
    assert errors(msgs)[0].code == "08P01"


def test_bind_declared_parameters_and_result_format_count(raw):
    """Parse may declare more parameter types than the text uses: Describe
    reports them all and Bind supplies them all, as in PostgreSQL (orbitd
    reported two and then refused a Bind with two). A Bind with several
    result formats must give one per column (08P01), not be sent anyway;
    DEALLOCATE of a name never prepared is 26000 on a fresh session too."""
    raw.parse("SELECT $1", "", [INT4, INT4])
    raw.describe("S")
    raw.bind(["7", "8"])
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "t", "T", "2", "D", "C", "Z"], msgs
    assert rawpg.parse_parameter_description(msgs[1][1]) == [INT4, INT4]
    assert rawpg.parse_data_row(msgs[4][1]) == [b"7"]
    raw.parse("SELECT 1, 2")
    raw.bind([], result_formats=[1, 1, 1])
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "E", "Z"], msgs
    assert errors(msgs)[0].code == "08P01" and "3 result formats" in errors(msgs)[0].message
    res = raw.query("DEALLOCATE never_prepared")
    assert res[0].error is not None and res[0].error.code == "26000", res


def test_duplicate_statement_name(raw):
    raw.parse("SELECT 1", "dup")
    raw.parse("SELECT 2", "dup")
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "E", "Z"], msgs
    assert errors(msgs)[0].code == "42P05"


def test_multiple_commands_in_parse_rejected(raw):
    raw.parse("SELECT 1; SELECT 2")
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["E", "Z"], msgs
    assert errors(msgs)[0].code == "42601"


def test_empty_query_extended(raw):
    raw.parse("")
    raw.bind()
    raw.describe("P")
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs) == ["1", "2", "n", "I", "Z"], msgs


def test_extended_dml_tags(raw, numbers):
    for sql, params, tag in (("INSERT INTO %s VALUES ($1, 'x')", ["10"], "INSERT 0 1"),
                             ("UPDATE %s SET v = 'y' WHERE id >= $1", ["4"], "UPDATE 3"),
                             ("DELETE FROM %s WHERE id >= $1", ["4"], "DELETE 3")):
        msgs = raw.prepared(sql % numbers, params, [INT4])
        res = rawpg.Conn.results(msgs)
        assert res[0].tag == tag, msgs
        assert types(msgs)[2] == "n"   # Describe of a DML portal without RETURNING: NoData



@pytest.mark.parametrize("block", [False, True])
def test_execute_completed_portal_again(raw, numbers, block):
    """Execute of a portal that already ran to its end (PostgreSQL 15): a
    portal that returns rows (SELECT, ... RETURNING, SHOW) completes again
    with no rows; any other fails with 55000 "portal ... cannot be run".
    orbitd answered INSERT 0 0, and ran SET or SAVEPOINT portals again."""
    t = numbers
    cases = [("SELECT id FROM %s WHERE id = 1" % t, ["D", "C", "C"], ["SELECT 1", "SELECT 0"]),
             ("UPDATE %s SET v = v WHERE id = 1 RETURNING id" % t, ["D", "C", "C"], ["UPDATE 1", "UPDATE 0"]),
             ("SHOW application_name", ["D", "C", "C"], ["SHOW", "SHOW"]),
             ("INSERT INTO %s VALUES (100, 'x')" % t, ["C", "E"], ["INSERT 0 1"]),
             ("UPDATE %s SET v = v WHERE id <= 5" % t, ["C", "E"], ["UPDATE 5"]),
             ("SET application_name = 'again'", ["C", "E"], ["SET"])]
    if block:
        cases.append(("SAVEPOINT s1", ["C", "E"], ["SAVEPOINT"]))
    for sql, want, tags in cases:
        if block:
            raw.query1("BEGIN")
        raw.parse(sql)
        raw.bind(portal="p")
        raw.execute("p")
        raw.execute("p")
        raw.sync()
        msgs = [(ty, p) for ty, p in raw.read_until_ready() if ty not in ("S", "Z")]
        assert types(msgs) == ["1", "2"] + want, (sql, msgs)
        assert [p.rstrip(b"\0").decode() for ty, p in msgs if ty == "C"] == tags, (sql, msgs)
        if "E" in want:
            e = errors(msgs)[0]
            assert e.code == "55000" and e.message == 'portal "p" cannot be run', (sql, e)
        assert raw.status == ("E" if block and "E" in want else "T" if block else "I")
        if block:
            raw.query1("ROLLBACK")
    # the INSERT ran once (and in a block was rolled back)
    n = "0" if block else "1"
    assert raw.query1("SELECT count(*) FROM %s WHERE id = 100" % t).text_rows() == [[n]]

def test_statements_are_per_session(shared_server, raw):
    raw.parse("SELECT 1", "mine")
    raw.sync()
    raw.read_until_ready()
    other = shared_server.raw()
    other.bind(statement="mine")
    other.execute()
    other.sync()
    msgs = other.read_until_ready()
    assert errors(msgs) and errors(msgs)[0].code == "26000"
    # and the same name can be used independently
    other.parse("SELECT 2", "mine")
    other.bind(statement="mine")
    other.execute()
    other.sync()
    msgs = other.read_until_ready()
    assert rawpg.parse_data_row([p for t, p in msgs if t == "D"][0]) == [b"2"]
    other.terminate()
    raw.bind(statement="mine")
    raw.execute()
    raw.sync()
    msgs = raw.read_until_ready()
    assert rawpg.parse_data_row([p for t, p in msgs if t == "D"][0]) == [b"1"]


def test_many_statements_in_one_session(raw, numbers):
    for i in range(300):
        raw.parse("SELECT v, %d FROM %s WHERE id = $1" % (i, numbers), "s%d" % i, [INT4])
    raw.sync()
    msgs = raw.read_until_ready()
    assert types(msgs).count("1") == 300
    for i in (0, 150, 299):
        raw.bind(["2"], statement="s%d" % i)
        raw.execute()
    raw.sync()
    rows = [rawpg.parse_data_row(p) for t, p in raw.read_until_ready() if t == "D"]
    assert rows == [[b"b", b"0"], [b"b", b"150"], [b"b", b"299"]]


def test_session_memory_limit_bounds_prepared_statements_and_portals(orbit_factory):
    """A session that keeps preparing named statements (or opening named
    portals) is refused with 53200 at session_memory_limit instead of
    growing without bound; Close frees the room; other sessions are not
    affected."""
    s = orbit_factory(args=["--session-memory-limit", "256kB"])
    raw = s.raw()
    other = s.raw()
    try:
        refused = None
        for i in range(5000):
            raw.parse("SELECT %d AS n, 'x' AS padding_padding_padding_padding" % i, "s%d" % i)
            raw.sync()
            msgs = raw.read_until_ready()
            if errors(msgs):
                refused = (i, errors(msgs)[0])
                break
        assert refused is not None, "5000 named statements were all kept"
        n, err = refused
        assert err.code == "53200" and "session_memory_limit" in err.message, err.message
        assert 100 < n < 5000
        # the statements made before are still there and work
        raw.bind([], statement="s0")
        raw.execute()
        raw.sync()
        assert types(raw.read_until_ready()) == ["2", "D", "C", "Z"]
        # another session has its own budget
        other.parse("SELECT 1", "mine")
        other.sync()
        assert types(other.read_until_ready()) == ["1", "Z"]
        # closing frees room: the refused one can be made now
        for i in range(50):
            raw.close_obj("S", "s%d" % i)
        raw.parse("SELECT 1", "after_close")
        raw.sync()
        assert types(raw.read_until_ready()) == ["3"] * 50 + ["1", "Z"]
        # named portals in a transaction count too
        raw.query1("BEGIN")
        refused = None
        for i in range(5000):
            raw.bind([], portal="p%d" % i, statement="after_close")
            raw.sync()
            msgs = raw.read_until_ready()
            if errors(msgs):
                refused = errors(msgs)[0]
                break
        assert refused is not None and refused.code == "53200", refused
        raw.query1("ROLLBACK")
    finally:
        raw.close()
        other.close()


def test_suspended_write_portal_outside_block_commits_at_sync(server):
    """INSERT/UPDATE ... RETURNING executed with a row limit outside a block:
    PostgreSQL runs it to completion and commits it with the implicit
    transaction at Sync (closing the portal, or replacing the unnamed one,
    does not undo it). orbitd used to leave the statement's transaction open
    on the pooled connection: the rows were never in the txlog (gone after a
    restart), and the next session on that connection wrote into it too."""
    raw = server.raw()
    other = server.raw()
    try:
        raw.query1("CREATE TABLE w (id integer PRIMARY KEY, v text)")
        # suspended, then Sync
        raw.parse("INSERT INTO w(id) VALUES (1), (2), (3) RETURNING id")
        raw.bind()
        raw.execute("", 1)
        raw.sync()
        assert types(raw.read_until_ready()) == ["1", "2", "D", "s", "Z"]
        assert raw.status == "I"
        # suspended, then Close (and Sync)
        raw.parse("INSERT INTO w(id) VALUES (4), (5) RETURNING id")
        raw.bind()
        raw.execute("", 1)
        raw.close_obj("P")
        raw.sync()
        assert types(raw.read_until_ready()) == ["1", "2", "D", "s", "3", "Z"]
        # two suspended write portals, then an unnamed portal replaced
        raw.parse("UPDATE w SET v = 'u' WHERE id <= 2 RETURNING id", "upd")
        raw.bind(portal="p1", statement="upd")
        raw.execute("p1", 1)
        raw.parse("INSERT INTO w(id) VALUES (6), (7) RETURNING id")
        raw.bind()
        raw.execute("", 1)
        raw.bind()
        raw.sync()
        assert types(raw.read_until_ready()) == ["1", "2", "D", "s", "1", "2", "D", "s", "2", "Z"]
        # another session's write is its own, and committed
        other.query1("INSERT INTO w(id) VALUES (8)")
        raw.close()
        other.close()
        server.restart()
        after = server.raw()
        try:
            rows = after.query1("SELECT id, v FROM w ORDER BY id").text_rows()
            assert rows == [["1", "u"], ["2", "u"], ["3", None], ["4", None], ["5", None], ["6", None],
                            ["7", None], ["8", None]], rows
        finally:
            after.close()
    finally:
        raw.close()
        other.close()
