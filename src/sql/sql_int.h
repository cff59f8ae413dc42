/* sql/sql_int.h: helpers shared between the files of the sql module (not
 * part of its public interface): value-to-text formatting used by both the
 * DataRow encoder (types.c) and COPY output (copyfmt.c). */
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

/* numeric's binary format (numeric.c). Append the one of the number in
 * text s: 0, -1 s is not a number (22P02), -2 beyond numeric's range
 * (22003), -3 out of memory. */
int sql_numeric_send(struct buf *out, const char *s, size_t len);
/* Append the text of the binary numeric p[0..n): 0, -1 too short (08P01),
 * or not a valid numeric (22P03): -2 longer than its digits, -3 bad
 * length, -4 bad sign, -5 bad scale, -6 bad digit. */
int sql_numeric_recv(const char *p, size_t n, struct buf *text);

#endif
