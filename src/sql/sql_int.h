/* sql/sql_int.h: helpers shared between the files of the sql module (not
 * part of its public interface): value-to-text formatting used by both the
 * DataRow encoder (types.c) and COPY output (copyfmt.c), and the binary
 * formats of numeric and date/time values and uuid parsing (binfmt.c). */
#ifndef ORBIT_SQL_INT_H
#define ORBIT_SQL_INT_H

#include "sql.h"

/* Floating point output styles for sql_format_double. */
enum sql_float_style {
    SQL_FLOAT8,  /* shortest round-trip double, %g-like exponent switch at 1e15 */
    SQL_FLOAT4,  /* shortest round-trip float, exponent switch at 1e6 */
    SQL_NUMERIC, /* shortest round-trip double, never exponent notation */
};

/* Append the PostgreSQL text of a double: shortest digits that read back
 * to the same value (extra_float_digits = 1 behaviour), "Infinity",
 * "-Infinity", "NaN", "-0" for negative zero. */
void sql_format_double(struct buf *out, double v, enum sql_float_style style);

/* Append the PostgreSQL text-format representation of column col of a
 * stepped statement, whose storage class is type (not SQLITE_NULL) and
 * whose PostgreSQL type is oid. Returns 0, or -1 when SQLite could not
 * produce the value (out of memory). */
int sql_value_text(struct buf *out, sqlite3_stmt *st, int col, int type, uint32_t oid);

/* Parse a boolean the way PostgreSQL's boolin does (t/true/yes/on/1,
 * f/false/no/off/0, unique prefixes, case-insensitive, surrounding
 * whitespace ignored). Returns 1, 0, or -1 when s is not a boolean. */
int sql_parse_bool(const char *s, size_t len);

/* Binary formats (binfmt.c). sql_numeric_to_binary appends the binary
 * numeric of PostgreSQL numeric text ([sign] digits [. digits] [e exp],
 * NaN, [sign]Infinity; whitespace around it allowed): 0, or -1 bad
 * syntax, -2 out of memory, -3 out of numeric's range.
 * sql_datetime_to_binary appends the binary date, time, timestamp or
 * timestamptz (oid) of stored text (YYYY-MM-DD, HH:MM[:SS[.f]], both with
 * a space or T between, an optional zone, " BC", infinity): 0 or -1 when
 * the text is not one. The from_binary functions append the text
 * PostgreSQL would print for a binary value: 0, or -1 when the bytes are
 * not a valid value of the type (numeric: -2 when they are fewer than its
 * header and digits need, 08P01 in PostgreSQL). */
int sql_numeric_to_binary(struct buf *out, const char *s, size_t n);
int sql_numeric_from_binary(const char *data, size_t len, struct buf *out);
int sql_datetime_to_binary(struct buf *out, uint32_t oid, const char *s, size_t n);
int sql_datetime_from_binary(uint32_t oid, const char *data, size_t len, struct buf *out);

/* uuid: sql_uuid_parse reads the forms PostgreSQL accepts (32 hex
 * digits, a hyphen allowed after any group of four, in braces or not)
 * into 16 bytes: 0 or -1. sql_uuid_format writes the canonical lower-case
 * 8-4-4-4-12 text and a NUL. */
#define SQL_UUID_TEXT_LEN 36
int sql_uuid_parse(const char *s, size_t n, unsigned char out[16]);
void sql_uuid_format(const void *uuid16, char out[SQL_UUID_TEXT_LEN + 1]);

#endif
