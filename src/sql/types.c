/* sql/types.c: PostgreSQL type OIDs for SQLite columns, DataRow value
 * encoding (text and binary formats, PostgreSQL output conventions) and
 * binding Bind-message parameters to SQLite statements. */
#include "sql_int.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- type names and sizes --------------------------------------------- */

struct type_info {
    uint32_t oid;
    const char *name;  /* internal name, as in pg_type.typname */
    const char *label; /* SQL name used in input error messages */
    int16_t len;
};

static const struct type_info type_infos[] = {
    {SQL_OID_BOOL, "bool", "boolean", 1},
    {SQL_OID_BYTEA, "bytea", "bytea", -1},
    {SQL_OID_NAME, "name", "name", 64},
    {SQL_OID_INT8, "int8", "bigint", 8},
    {SQL_OID_INT2, "int2", "smallint", 2},
    {SQL_OID_INT4, "int4", "integer", 4},
    {SQL_OID_TEXT, "text", "text", -1},
    {SQL_OID_OID, "oid", "oid", 4},
    {SQL_OID_JSON, "json", "json", -1},
    {SQL_OID_FLOAT4, "float4", "real", 4},
    {SQL_OID_FLOAT8, "float8", "double precision", 8},
    {SQL_OID_UNKNOWN, "unknown", "unknown", -2},
    {SQL_OID_BPCHAR, "bpchar", "character", -1},
    {SQL_OID_VARCHAR, "varchar", "character varying", -1},
    {SQL_OID_DATE, "date", "date", 4},
    {SQL_OID_TIME, "time", "time without time zone", 8},
    {SQL_OID_TIMESTAMP, "timestamp", "timestamp without time zone", 8},
    {SQL_OID_TIMESTAMPTZ, "timestamptz", "timestamp with time zone", 8},
    {SQL_OID_NUMERIC, "numeric", "numeric", -1},
    {SQL_OID_JSONB, "jsonb", "jsonb", -1},
    {SQL_OID_UUID, "uuid", "uuid", 16},
};

static const struct type_info *type_info(uint32_t oid)
{
    for (size_t i = 0; i < ARRAY_LEN(type_infos); i++)
        if (type_infos[i].oid == oid)
            return &type_infos[i];
    return NULL;
}

int16_t sql_oid_typlen(uint32_t oid)
{
    const struct type_info *t = type_info(oid);
    /* unknown is a C string (-2) in pg_type; clients only care about
     * fixed vs variable length here. */
    return t && t->len > 0 ? t->len : -1;
}

const char *sql_oid_name(uint32_t oid)
{
    const struct type_info *t = type_info(oid);
    return t ? t->name : "unknown";
}

static const char *type_label(uint32_t oid)
{
    const struct type_info *t = type_info(oid);
    return t ? t->label : "unknown";
}

/* ---- declared types ----------------------------------------------------- */

struct decl_map {
    const char *name;
    uint32_t oid;
};

/* Exact (normalised) declared type names. Checked before the "contains
 * INT" rule, so interval and point stay text. */
static const struct decl_map decl_names[] = {
    {"bigint", SQL_OID_INT8},
    {"int8", SQL_OID_INT8},
    {"bigserial", SQL_OID_INT8},
    {"serial8", SQL_OID_INT8},
    {"smallint", SQL_OID_INT2},
    {"int2", SQL_OID_INT2},
    {"smallserial", SQL_OID_INT2},
    {"serial2", SQL_OID_INT2},
    {"int", SQL_OID_INT4},
    {"integer", SQL_OID_INT4},
    {"int4", SQL_OID_INT4},
    {"serial", SQL_OID_INT4},
    {"serial4", SQL_OID_INT4},
    {"real", SQL_OID_FLOAT8},
    {"double", SQL_OID_FLOAT8},
    {"double precision", SQL_OID_FLOAT8},
    {"float", SQL_OID_FLOAT8},
    {"float8", SQL_OID_FLOAT8},
    {"float4", SQL_OID_FLOAT4},
    {"text", SQL_OID_TEXT},
    {"clob", SQL_OID_TEXT},
    {"varchar", SQL_OID_VARCHAR},
    {"character varying", SQL_OID_VARCHAR},
    {"nvarchar", SQL_OID_VARCHAR},
    {"char", SQL_OID_BPCHAR},
    {"character", SQL_OID_BPCHAR},
    {"bpchar", SQL_OID_BPCHAR},
    {"nchar", SQL_OID_BPCHAR},
    {"blob", SQL_OID_BYTEA},
    {"bytea", SQL_OID_BYTEA},
    {"bool", SQL_OID_BOOL},
    {"boolean", SQL_OID_BOOL},
    {"numeric", SQL_OID_NUMERIC},
    {"decimal", SQL_OID_NUMERIC},
    {"timestamptz", SQL_OID_TIMESTAMPTZ},
    {"timestamp with time zone", SQL_OID_TIMESTAMPTZ},
    {"timestamp", SQL_OID_TIMESTAMP},
    {"timestamp without time zone", SQL_OID_TIMESTAMP},
    {"date", SQL_OID_DATE},
    {"time", SQL_OID_TIME},
    {"time without time zone", SQL_OID_TIME},
    {"json", SQL_OID_JSON},
    {"jsonb", SQL_OID_JSONB},
    {"uuid", SQL_OID_UUID},
    {"oid", SQL_OID_OID},
    {"name", SQL_OID_NAME},
    {"interval", SQL_OID_TEXT},
    {"point", SQL_OID_TEXT},
};

/* Lower-case, drop "(...)" parts, collapse whitespace runs to one space
 * and trim. Returns -1 when the name does not fit or is an array type. */
static int normalise_decl(const char *d, char *out, size_t cap)
{
    size_t n = 0;
    int depth = 0, space = 0;
    for (; *d; d++) {
        unsigned char c = (unsigned char)*d;
        if (c == '(') {
            depth++;
            continue;
        }
        if (c == ')') {
            if (depth)
                depth--;
            continue;
        }
        if (depth)
            continue;
        if (c == '[')
            return -1;
        if (isspace(c)) {
            space = n > 0;
            continue;
        }
        if (n + 2 >= cap)
            return -1;
        if (space)
            out[n++] = ' ';
        space = 0;
        out[n++] = (char)tolower(c);
    }
    out[n] = 0;
    return 0;
}

uint32_t sql_decltype_oid(const char *decltype)
{
    if (!decltype)
        return 0;
    char norm[64];
    if (normalise_decl(decltype, norm, sizeof norm) < 0)
        return SQL_OID_TEXT;
    if (!norm[0])
        return 0;
    for (size_t i = 0; i < ARRAY_LEN(decl_names); i++)
        if (strcmp(norm, decl_names[i].name) == 0)
            return decl_names[i].oid;
    if (strstr(norm, "int"))
        return SQL_OID_INT8;
    return SQL_OID_TEXT;
}

uint32_t sql_value_oid(int sqlite_type)
{
    switch (sqlite_type) {
    case SQLITE_INTEGER:
        return SQL_OID_INT8;
    case SQLITE_FLOAT:
        return SQL_OID_FLOAT8;
    case SQLITE_BLOB:
        return SQL_OID_BYTEA;
    default:
        return SQL_OID_TEXT;
    }
}

/* ---- parsing helpers ---------------------------------------------------- */

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static void trim(const char **s, size_t *len)
{
    while (*len && is_space(**s)) {
        (*s)++;
        (*len)--;
    }
    while (*len && is_space((*s)[*len - 1]))
        (*len)--;
}

/* Does s (length n) equal a prefix of word, case-insensitively? */
static int prefix_of(const char *s, size_t n, const char *word)
{
    if (n > strlen(word))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

int sql_parse_bool(const char *s, size_t len)
{
    trim(&s, &len);
    if (!len)
        return -1;
    switch (tolower((unsigned char)s[0])) {
    case 't':
        return prefix_of(s, len, "true") ? 1 : -1;
    case 'y':
        return prefix_of(s, len, "yes") ? 1 : -1;
    case 'f':
        return prefix_of(s, len, "false") ? 0 : -1;
    case 'n':
        return prefix_of(s, len, "no") ? 0 : -1;
    case 'o': /* "o" alone is ambiguous */
        if (len < 2)
            return -1;
        if (prefix_of(s, len, "on"))
            return 1;
        return prefix_of(s, len, "off") ? 0 : -1;
    case '1':
        return len == 1 ? 1 : -1;
    case '0':
        return len == 1 ? 0 : -1;
    default:
        return -1;
    }
}

/* Strict decimal integer with optional sign and surrounding whitespace.
 * Returns 0, -1 for bad syntax, -2 when it does not fit in int64. */
static int parse_int64(const char *s, size_t len, int64_t *out)
{
    trim(&s, &len);
    size_t i = 0;
    int neg = 0;
    if (i < len && (s[i] == '+' || s[i] == '-')) {
        neg = s[i] == '-';
        i++;
    }
    if (i >= len)
        return -1;
    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t acc = 0;
    int over = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        unsigned d = (unsigned)(s[i] - '0');
        if (acc > (limit - d) / 10)
            over = 1;
        else
            acc = acc * 10 + d;
    }
    if (over)
        return -2;
    if (neg)
        *out = acc == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)acc;
    else
        *out = (int64_t)acc;
    return 0;
}

/* strtod over a counted string with surrounding whitespace allowed.
 * Accepts what strtod accepts (including inf/infinity/nan in any case).
 * Returns 0, -1 for bad syntax, -2 out of range (overflow, or underflow
 * to zero), -3 out of memory. */
static int parse_double(const char *s, size_t len, double *out)
{
    trim(&s, &len);
    if (!len)
        return -1;
    char small[128];
    char *tmp = small;
    if (len >= sizeof small) {
        tmp = util_malloc(len + 1);
        if (!tmp)
            return -3;
    }
    memcpy(tmp, s, len);
    tmp[len] = 0;
    errno = 0;
    char *end;
    double v = strtod(tmp, &end);
    int rc = 0;
    if (end != tmp + len || end == tmp)
        rc = -1;
    else if (errno == ERANGE && (v == 0 || isinf(v)))
        rc = -2;
    if (tmp != small)
        util_free(tmp);
    *out = v;
    return rc;
}

/* PostgreSQL numeric input syntax: [sign] digits [. digits] [e [sign]
 * digits], or NaN / [sign]Infinity. s is already trimmed. */
static int numeric_syntax(const char *s, size_t len)
{
    size_t i = 0;
    if (len == 3 && prefix_of(s, len, "nan"))
        return 1;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        i++;
    if (len - i == 8 && prefix_of(s + i, 8, "infinity"))
        return 1;
    size_t digits = 0;
    while (i < len && isdigit((unsigned char)s[i])) {
        i++;
        digits++;
    }
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
            digits++;
        }
    }
    if (!digits)
        return 0;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            i++;
        size_t ed = 0;
        while (i < len && isdigit((unsigned char)s[i])) {
            i++;
            ed++;
        }
        if (!ed)
            return 0;
    }
    return i == len;
}

/* Does v fit the integer type oid (int2, int4, int8 or oid)? */
static int int_fits(uint32_t oid, int64_t v)
{
    switch (oid) {
    case SQL_OID_INT2:
        return v >= INT16_MIN && v <= INT16_MAX;
    case SQL_OID_INT4:
        return v >= INT32_MIN && v <= INT32_MAX;
    case SQL_OID_OID:
        return v >= 0 && v <= (int64_t)UINT32_MAX;
    default:
        return 1;
    }
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* ---- errors ------------------------------------------------------------- */

static int fail(char sqlstate[6], char *err, size_t errcap, const char *fmt, ...) PRINTF_LIKE(4, 5);

/* Set sqlstate (first 5 chars of fmt's leading "SSSSS:") and the message. */
static int fail(char sqlstate[6], char *err, size_t errcap, const char *fmt, ...)
{
    memcpy(sqlstate, fmt, 5);
    sqlstate[5] = 0;
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt + 6, ap);
        va_end(ap);
    }
    return -1;
}

/* Length of a value quoted in a message, so huge inputs stay readable. */
static int shown(size_t len)
{
    return len > 200 ? 200 : (int)len;
}

/* ---- value output ------------------------------------------------------- */

void sql_format_double(struct buf *out, double v, enum sql_float_style style)
{
    if (isnan(v)) {
        buf_puts(out, "NaN");
        return;
    }
    if (style == SQL_FLOAT4)
        v = (float)v;
    if (isinf(v)) {
        buf_puts(out, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    if (v == 0) {
        buf_puts(out, signbit(v) ? "-0" : "0");
        return;
    }
    /* Shortest precision that reads back exactly. A decimal of FLT_DIG /
     * DBL_DIG digits survives the trip through a normal float / double, so
     * when that many digits read back, stripping trailing zeros gives the
     * shortest form; subnormals have fewer digits and need the full search. */
    char tmp[48];
    int prec;
    if (style == SQL_FLOAT4) {
        float f = (float)v;
        for (prec = fabsf(f) < FLT_MIN ? 1 : FLT_DIG; prec < 9; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
            if (strtof(tmp, NULL) == f)
                break;
        }
    } else {
        for (prec = fabs(v) < DBL_MIN ? 1 : DBL_DIG; prec < 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);
            if (strtod(tmp, NULL) == v)
                break;
        }
    }
    snprintf(tmp, sizeof tmp, "%.*e", prec - 1, v);

    /* tmp is [-]d.ddde[+-]xx: collect the digits and the exponent */
    const char *p = tmp;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    char digits[24];
    int nd = 0;
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && nd < (int)sizeof digits - 1)
            digits[nd++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    digits[nd] = 0;

    if (neg)
        buf_putc(out, '-');
    int fixed = style == SQL_NUMERIC || (exp >= -4 && exp < (style == SQL_FLOAT4 ? 6 : 15));
    if (!fixed) {
        buf_putc(out, digits[0]);
        if (nd > 1) {
            buf_putc(out, '.');
            buf_append(out, digits + 1, (size_t)nd - 1);
        }
        buf_printf(out, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
    } else if (exp < 0) {
        buf_puts(out, "0.");
        for (int i = 0; i < -exp - 1; i++)
            buf_putc(out, '0');
        buf_append(out, digits, (size_t)nd);
    } else if (nd <= exp + 1) {
        buf_append(out, digits, (size_t)nd);
        for (int i = nd; i < exp + 1; i++)
            buf_putc(out, '0');
    } else {
        buf_append(out, digits, (size_t)exp + 1);
        buf_putc(out, '.');
        buf_append(out, digits + exp + 1, (size_t)(nd - exp - 1));
    }
}

static void put_hex(struct buf *out, const unsigned char *p, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    buf_puts(out, "\\x");
    if (buf_reserve(out, n * 2))
        return;
    char *d = out->data + out->len;
    for (size_t i = 0; i < n; i++) {
        d[2 * i] = hex[p[i] >> 4];
        d[2 * i + 1] = hex[p[i] & 15];
    }
    out->len += n * 2;
}

/* Raw bytes of a value: blob bytes for a BLOB, else its text. *p is NULL
 * only when SQLite ran out of memory. */
static const void *raw_bytes(sqlite3_stmt *st, int col, int type, size_t *n)
{
    const void *p;
    if (type == SQLITE_BLOB) {
        p = sqlite3_column_blob(st, col);
        if (!p && sqlite3_errcode(sqlite3_db_handle(st)) != SQLITE_NOMEM)
            p = "";
    } else {
        p = sqlite3_column_text(st, col);
    }
    *n = p ? (size_t)sqlite3_column_bytes(st, col) : 0;
    return p;
}

int sql_value_text(struct buf *out, sqlite3_stmt *st, int col, int type, uint32_t oid)
{
    size_t n;
    const void *p;
    if (oid == SQL_OID_BYTEA) {
        if (!(p = raw_bytes(st, col, type, &n)))
            return -1;
        put_hex(out, p, n);
        return 0;
    }
    if (oid == SQL_OID_UUID && type == SQLITE_BLOB && sqlite3_column_bytes(st, col) == 16) {
        char u[SQL_UUID_TEXT_LEN + 1];
        if (!(p = raw_bytes(st, col, type, &n)))
            return -1;
        sql_uuid_format(p, u);
        buf_puts(out, u);
        return 0;
    }
    if (type == SQLITE_INTEGER) {
        int64_t v = sqlite3_column_int64(st, col);
        if (oid == SQL_OID_BOOL)
            buf_putc(out, v ? 't' : 'f');
        else
            buf_printf(out, "%lld", (long long)v);
        return 0;
    }
    if (type == SQLITE_FLOAT) {
        double v = sqlite3_column_double(st, col);
        if (oid == SQL_OID_BOOL)
            buf_putc(out, v != 0 ? 't' : 'f');
        else
            sql_format_double(out, v,
                              oid == SQL_OID_FLOAT4    ? SQL_FLOAT4
                              : oid == SQL_OID_NUMERIC ? SQL_NUMERIC
                                                       : SQL_FLOAT8);
        return 0;
    }
    if (!(p = raw_bytes(st, col, type, &n)))
        return -1;
    if (oid == SQL_OID_BOOL && type == SQLITE_TEXT) {
        int b = sql_parse_bool(p, n);
        if (b >= 0) {
            buf_putc(out, b ? 't' : 'f');
            return 0;
        }
    }
    buf_append(out, p, n);
    return 0;
}

/* Integer value of a column for binary int output. */
static int column_int(sqlite3_stmt *st, int col, int type, uint32_t oid, int64_t *v, char sqlstate[6], char *err,
                      size_t errcap)
{
    if (type == SQLITE_INTEGER) {
        *v = sqlite3_column_int64(st, col);
        return 0;
    }
    if (type == SQLITE_FLOAT) {
        double d = rint(sqlite3_column_double(st, col));
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0))
            return fail(sqlstate, err, errcap, "22003:value out of range for type %s", sql_oid_name(oid));
        *v = (int64_t)d;
        return 0;
    }
    size_t n;
    const char *p = raw_bytes(st, col, type, &n);
    if (!p)
        return fail(sqlstate, err, errcap, "53200:out of memory");
    int rc = type == SQLITE_TEXT ? parse_int64(p, n, v) : -1;
    if (rc == -2)
        return fail(sqlstate, err, errcap, "22003:value out of range for type %s", sql_oid_name(oid));
    if (rc < 0)
        return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type %s: \"%.*s\"", type_label(oid),
                    shown(n), type == SQLITE_TEXT ? p : "");
    return 0;
}

static int column_double(sqlite3_stmt *st, int col, int type, uint32_t oid, double *v, char sqlstate[6],
                         char *err, size_t errcap)
{
    if (type == SQLITE_INTEGER || type == SQLITE_FLOAT) {
        *v = sqlite3_column_double(st, col);
        return 0;
    }
    size_t n;
    const char *p = raw_bytes(st, col, type, &n);
    if (!p)
        return fail(sqlstate, err, errcap, "53200:out of memory");
    int rc = type == SQLITE_TEXT ? parse_double(p, n, v) : -1;
    if (rc == -3)
        return fail(sqlstate, err, errcap, "53200:out of memory");
    if (rc == -2)
        return fail(sqlstate, err, errcap, "22003:\"%.*s\" is out of range for type %s", shown(n), p,
                    type_label(oid));
    if (rc < 0)
        return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type %s: \"%.*s\"", type_label(oid),
                    shown(n), type == SQLITE_TEXT ? p : "");
    return 0;
}

/* A numeric column in binary: its text (a stored integer, a double's
 * shortest digits, or numeric text) converted. */
static int put_binary_numeric(struct buf *out, sqlite3_stmt *st, int col, int type, char sqlstate[6], char *err,
                              size_t errcap)
{
    if (type == SQLITE_BLOB)
        return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type numeric");
    struct buf text;
    buf_init(&text);
    int rc = sql_value_text(&text, st, col, type, SQL_OID_NUMERIC) || !buf_ok(&text)
                 ? -2
                 : sql_numeric_to_binary(out, text.data, text.len);
    if (rc == -1)
        fail(sqlstate, err, errcap, "22P02:invalid input syntax for type numeric: \"%.*s\"", shown(text.len),
             text.data);
    else if (rc == -3)
        fail(sqlstate, err, errcap, "22003:value overflows numeric format");
    else if (rc)
        fail(sqlstate, err, errcap, "53200:out of memory");
    buf_free(&text);
    return rc ? -1 : 0;
}

static int put_binary(struct buf *out, sqlite3_stmt *st, int col, int type, uint32_t oid, char sqlstate[6],
                      char *err, size_t errcap)
{
    switch (oid) {
    case SQL_OID_BOOL: {
        int b = -1;
        if (type == SQLITE_INTEGER)
            b = sqlite3_column_int64(st, col) != 0;
        else if (type == SQLITE_FLOAT)
            b = sqlite3_column_double(st, col) != 0;
        else if (type == SQLITE_TEXT) {
            const char *p = (const char *)sqlite3_column_text(st, col);
            if (!p)
                return fail(sqlstate, err, errcap, "53200:out of memory");
            int n = sqlite3_column_bytes(st, col);
            b = sql_parse_bool(p, (size_t)n);
            if (b < 0)
                return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type boolean: \"%.*s\"",
                            shown((size_t)n), p);
        }
        if (b < 0)
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type boolean");
        buf_putc(out, (char)b);
        return 0;
    }
    case SQL_OID_INT2:
    case SQL_OID_INT4:
    case SQL_OID_INT8:
    case SQL_OID_OID: {
        int64_t v;
        if (column_int(st, col, type, oid, &v, sqlstate, err, errcap))
            return -1;
        if (!int_fits(oid, v))
            return fail(sqlstate, err, errcap, "22003:value out of range for type %s", sql_oid_name(oid));
        if (oid == SQL_OID_INT2)
            buf_put_u16(out, (uint16_t)v);
        else if (oid == SQL_OID_INT8)
            buf_put_u64(out, (uint64_t)v);
        else
            buf_put_u32(out, (uint32_t)v);
        return 0;
    }
    case SQL_OID_FLOAT4:
    case SQL_OID_FLOAT8: {
        double d;
        if (column_double(st, col, type, oid, &d, sqlstate, err, errcap))
            return -1;
        if (oid == SQL_OID_FLOAT4) {
            float f = (float)d;
            uint32_t bits;
            memcpy(&bits, &f, 4);
            buf_put_u32(out, bits);
        } else {
            uint64_t bits;
            memcpy(&bits, &d, 8);
            buf_put_u64(out, bits);
        }
        return 0;
    }
    case SQL_OID_JSONB:
        buf_putc(out, 1);
        /* fall through */
    case 0:
    case SQL_OID_TEXT:
    case SQL_OID_VARCHAR:
    case SQL_OID_BPCHAR:
    case SQL_OID_NAME:
    case SQL_OID_JSON:
    case SQL_OID_UNKNOWN:
        if (sql_value_text(out, st, col, type, oid))
            return fail(sqlstate, err, errcap, "53200:out of memory");
        return 0;
    case SQL_OID_BYTEA: {
        size_t n;
        const void *p = raw_bytes(st, col, type, &n);
        if (!p)
            return fail(sqlstate, err, errcap, "53200:out of memory");
        buf_append(out, p, n);
        return 0;
    }
    case SQL_OID_NUMERIC:
        return put_binary_numeric(out, st, col, type, sqlstate, err, errcap);
    case SQL_OID_UUID: {
        size_t n;
        const char *p = raw_bytes(st, col, type, &n);
        unsigned char u[16];
        if (!p)
            return fail(sqlstate, err, errcap, "53200:out of memory");
        if (type == SQLITE_BLOB && n == 16)
            memcpy(u, p, 16);
        else if (type != SQLITE_TEXT || sql_uuid_parse(p, n, u))
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type uuid: \"%.*s\"", shown(n),
                        type == SQLITE_TEXT ? p : "");
        buf_append(out, u, 16);
        return 0;
    }
    case SQL_OID_DATE:
    case SQL_OID_TIME:
    case SQL_OID_TIMESTAMP:
    case SQL_OID_TIMESTAMPTZ: {
        size_t n = 0;
        const char *p = type == SQLITE_TEXT ? raw_bytes(st, col, type, &n) : NULL;
        if (type == SQLITE_TEXT && !p)
            return fail(sqlstate, err, errcap, "53200:out of memory");
        if (!p || sql_datetime_to_binary(out, oid, p, n))
            return fail(sqlstate, err, errcap, "22007:invalid input syntax for type %s: \"%.*s\"", type_label(oid),
                        shown(n), p ? p : "");
        return 0;
    }
    default:
        return fail(sqlstate, err, errcap, "0A000:binary output format is not supported for type %s",
                    sql_oid_name(oid));
    }
}

int sql_put_field(struct buf *out, sqlite3_stmt *st, int col, uint32_t oid, int format, char sqlstate[6],
                  char *err, size_t errcap)
{
    int type = sqlite3_column_type(st, col);
    if (type == SQLITE_NULL) {
        buf_put_u32(out, UINT32_MAX);
        return 0;
    }
    size_t start = out->len;
    buf_put_u32(out, 0);
    int rc;
    if (format == 0) {
        rc = sql_value_text(out, st, col, type, oid);
        if (rc)
            fail(sqlstate, err, errcap, "53200:out of memory");
    } else {
        rc = put_binary(out, st, col, type, oid, sqlstate, err, errcap);
    }
    if (rc == 0 && buf_ok(out) && out->len - start - 4 > INT32_MAX) {
        rc = fail(sqlstate, err, errcap, "54000:field value too large");
    }
    if (rc) {
        if (start <= out->len)
            out->len = start;
        return -1;
    }
    buf_set_u32(out, start, (uint32_t)(out->len - start - 4));
    return 0;
}

/* ---- parameter binding -------------------------------------------------- */

static int bind_rc(sqlite3_stmt *st, int idx, int rc, char sqlstate[6], char *err, size_t errcap)
{
    if (rc == SQLITE_OK)
        return 0;
    if (rc == SQLITE_RANGE)
        return fail(sqlstate, err, errcap, "08P01:bind message supplies parameter %d, but prepared statement "
                    "requires %d", idx, sqlite3_bind_parameter_count(st));
    const char *msg = sqlite3_errmsg(sqlite3_db_handle(st));
    memcpy(sqlstate, sql_sqlstate(rc, msg), 6);
    if (err && errcap)
        snprintf(err, errcap, "%s", msg);
    return -1;
}

/* Double binding that keeps NaN (SQLite turns a NaN double into NULL). */
static int bind_double(sqlite3_stmt *st, int idx, double v)
{
    if (isnan(v))
        return sqlite3_bind_text(st, idx, "NaN", 3, SQLITE_STATIC);
    return sqlite3_bind_double(st, idx, v);
}

static int bind_blob(sqlite3_stmt *st, int idx, const void *p, size_t n)
{
    if (n == 0)
        return sqlite3_bind_zeroblob(st, idx, 0);
    return sqlite3_bind_blob64(st, idx, p, n, SQLITE_TRANSIENT);
}

/* bytea text input: \x hex (whitespace allowed between digit pairs) or
 * the escape format (\\ and \ooo). Returns 0 or -1 with err filled. */
static int decode_bytea(const char *s, size_t len, struct buf *out, char sqlstate[6], char *err, size_t errcap)
{
    if (len >= 2 && s[0] == '\\' && s[1] == 'x') {
        for (size_t i = 2; i < len;) {
            if (is_space(s[i])) {
                i++;
                continue;
            }
            int hi = hexval(s[i]);
            if (hi < 0)
                return fail(sqlstate, err, errcap, "22P02:invalid hexadecimal digit: \"%c\"", s[i]);
            if (i + 1 >= len)
                return fail(sqlstate, err, errcap, "22P02:invalid hexadecimal data: odd number of digits");
            int lo = hexval(s[i + 1]);
            if (lo < 0)
                return fail(sqlstate, err, errcap, "22P02:invalid hexadecimal digit: \"%c\"", s[i + 1]);
            buf_putc(out, (char)(hi << 4 | lo));
            i += 2;
        }
        return 0;
    }
    for (size_t i = 0; i < len;) {
        if (s[i] != '\\') {
            buf_putc(out, s[i++]);
        } else if (i + 1 < len && s[i + 1] == '\\') {
            buf_putc(out, '\\');
            i += 2;
        } else if (i + 3 < len && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' &&
                   s[i + 2] <= '7' && s[i + 3] >= '0' && s[i + 3] <= '7') {
            buf_putc(out, (char)((s[i + 1] - '0') << 6 | (s[i + 2] - '0') << 3 | (s[i + 3] - '0')));
            i += 4;
        } else {
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type bytea");
        }
    }
    return 0;
}

static int bind_text_format(sqlite3_stmt *st, int idx, uint32_t oid, const char *data, size_t len,
                            char sqlstate[6], char *err, size_t errcap)
{
    switch (oid) {
    case SQL_OID_INT2:
    case SQL_OID_INT4:
    case SQL_OID_INT8:
    case SQL_OID_OID: {
        int64_t v;
        int rc = parse_int64(data, len, &v);
        if (rc == -1)
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type %s: \"%.*s\"", type_label(oid),
                        shown(len), data);
        if (rc == 0 && !int_fits(oid, v))
            rc = -2;
        if (rc == -2)
            return fail(sqlstate, err, errcap, "22003:value \"%.*s\" is out of range for type %s", shown(len), data,
                        type_label(oid));
        return bind_rc(st, idx, sqlite3_bind_int64(st, idx, v), sqlstate, err, errcap);
    }
    case SQL_OID_FLOAT4:
    case SQL_OID_FLOAT8: {
        double v;
        int rc = parse_double(data, len, &v);
        if (rc == 0 && oid == SQL_OID_FLOAT4 && isfinite(v) && fabs(v) > FLT_MAX)
            rc = -2;
        if (rc == -3)
            return fail(sqlstate, err, errcap, "53200:out of memory");
        if (rc == -2)
            return fail(sqlstate, err, errcap, "22003:\"%.*s\" is out of range for type %s", shown(len), data,
                        type_label(oid));
        if (rc < 0)
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type %s: \"%.*s\"", type_label(oid),
                        shown(len), data);
        return bind_rc(st, idx, bind_double(st, idx, v), sqlstate, err, errcap);
    }
    case SQL_OID_BOOL: {
        int b = sql_parse_bool(data, len);
        if (b < 0)
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type boolean: \"%.*s\"", shown(len),
                        data);
        return bind_rc(st, idx, sqlite3_bind_int(st, idx, b), sqlstate, err, errcap);
    }
    case SQL_OID_NUMERIC: {
        int64_t v;
        if (parse_int64(data, len, &v) == 0)
            return bind_rc(st, idx, sqlite3_bind_int64(st, idx, v), sqlstate, err, errcap);
        const char *s = data;
        size_t n = len;
        trim(&s, &n);
        if (!numeric_syntax(s, n))
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type numeric: \"%.*s\"", shown(len),
                        data);
        return bind_rc(st, idx, sqlite3_bind_text64(st, idx, s, n, SQLITE_TRANSIENT, SQLITE_UTF8), sqlstate, err,
                       errcap);
    }
    case SQL_OID_UUID: {
        /* stored in the canonical form, so equal uuids compare equal */
        unsigned char u[16];
        char t[SQL_UUID_TEXT_LEN + 1];
        if (sql_uuid_parse(data, len, u))
            return fail(sqlstate, err, errcap, "22P02:invalid input syntax for type uuid: \"%.*s\"", shown(len), data);
        sql_uuid_format(u, t);
        return bind_rc(st, idx, sqlite3_bind_text(st, idx, t, SQL_UUID_TEXT_LEN, SQLITE_TRANSIENT), sqlstate, err,
                       errcap);
    }
    case SQL_OID_BYTEA: {
        struct buf b;
        buf_init(&b);
        if (decode_bytea(data, len, &b, sqlstate, err, errcap)) {
            buf_free(&b);
            return -1;
        }
        if (!buf_ok(&b)) {
            buf_free(&b);
            return fail(sqlstate, err, errcap, "53200:out of memory");
        }
        int rc = bind_blob(st, idx, b.data, b.len);
        buf_free(&b);
        return bind_rc(st, idx, rc, sqlstate, err, errcap);
    }
    default:
        return bind_rc(st, idx, sqlite3_bind_text64(st, idx, data, len, SQLITE_TRANSIENT, SQLITE_UTF8), sqlstate,
                       err, errcap);
    }
}

static int bind_binary_format(sqlite3_stmt *st, int idx, uint32_t oid, const char *data, size_t len,
                              char sqlstate[6], char *err, size_t errcap)
{
    size_t need = 0;
    switch (oid) {
    case SQL_OID_BOOL:
        need = 1;
        break;
    case SQL_OID_INT2:
        need = 2;
        break;
    case SQL_OID_INT4:
    case SQL_OID_OID:
    case SQL_OID_FLOAT4:
        need = 4;
        break;
    case SQL_OID_INT8:
    case SQL_OID_FLOAT8:
        need = 8;
        break;
    default:
        break;
    }
    /* as PostgreSQL's receive functions: reading past the value is a
     * protocol error, a value longer than its type is bad data */
    if (need && len < need)
        return fail(sqlstate, err, errcap, "08P01:%s data left in message", need == 1 ? "no" : "insufficient");
    if (need && len > need)
        return fail(sqlstate, err, errcap, "22P03:incorrect binary data format in bind parameter %d", idx);
    int rc;
    switch (oid) {
    case SQL_OID_BOOL:
        rc = sqlite3_bind_int(st, idx, data[0] != 0);
        break;
    case SQL_OID_INT2:
        rc = sqlite3_bind_int(st, idx, (int16_t)util_get_u16(data));
        break;
    case SQL_OID_INT4:
        rc = sqlite3_bind_int(st, idx, (int32_t)util_get_u32(data));
        break;
    case SQL_OID_OID:
        rc = sqlite3_bind_int64(st, idx, (int64_t)util_get_u32(data));
        break;
    case SQL_OID_INT8:
        rc = sqlite3_bind_int64(st, idx, (int64_t)util_get_u64(data));
        break;
    case SQL_OID_FLOAT4: {
        uint32_t bits = util_get_u32(data);
        float f;
        memcpy(&f, &bits, 4);
        rc = bind_double(st, idx, (double)f);
        break;
    }
    case SQL_OID_FLOAT8: {
        uint64_t bits = util_get_u64(data);
        double d;
        memcpy(&d, &bits, 8);
        rc = bind_double(st, idx, d);
        break;
    }
    case SQL_OID_TEXT:
    case SQL_OID_VARCHAR:
    case SQL_OID_BPCHAR:
    case SQL_OID_NAME:
    case SQL_OID_JSON:
    case SQL_OID_UNKNOWN:
        rc = sqlite3_bind_text64(st, idx, data, len, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    case SQL_OID_JSONB:
        if (len < 1 || data[0] != 1)
            return fail(sqlstate, err, errcap, "22P03:unsupported jsonb version number %d",
                        len < 1 ? -1 : (unsigned char)data[0]);
        rc = sqlite3_bind_text64(st, idx, data + 1, len - 1, SQLITE_TRANSIENT, SQLITE_UTF8);
        break;
    case 0:
    case SQL_OID_BYTEA:
        rc = bind_blob(st, idx, data, len);
        break;
    case SQL_OID_UUID: {
        char t[SQL_UUID_TEXT_LEN + 1];
        if (len != 16)
            return fail(sqlstate, err, errcap, "22P03:incorrect binary data format in bind parameter %d", idx);
        sql_uuid_format(data, t);
        rc = sqlite3_bind_text(st, idx, t, SQL_UUID_TEXT_LEN, SQLITE_TRANSIENT);
        break;
    }
    case SQL_OID_NUMERIC:
    case SQL_OID_DATE:
    case SQL_OID_TIME:
    case SQL_OID_TIMESTAMP:
    case SQL_OID_TIMESTAMPTZ: {
        /* bound as the text PostgreSQL prints, as if sent in text */
        struct buf text;
        buf_init(&text);
        int bad = oid == SQL_OID_NUMERIC ? sql_numeric_from_binary(data, len, &text)
                                         : sql_datetime_from_binary(oid, data, len, &text);
        if (bad || !buf_ok(&text)) {
            buf_free(&text);
            return bad == -2 ? fail(sqlstate, err, errcap, "08P01:insufficient data left in message")
                   : bad     ? fail(sqlstate, err, errcap, "22P03:incorrect binary data format in bind parameter %d", idx)
                             : fail(sqlstate, err, errcap, "53200:out of memory");
        }
        int r = bind_text_format(st, idx, oid, text.data, text.len, sqlstate, err, errcap);
        buf_free(&text);
        return r;
    }
    default:
        return fail(sqlstate, err, errcap, "0A000:binary input format is not supported for type %s",
                    sql_oid_name(oid));
    }
    return bind_rc(st, idx, rc, sqlstate, err, errcap);
}

int sql_bind_param(sqlite3_stmt *st, int idx, uint32_t oid, int format, const char *data, int32_t len,
                   char sqlstate[6], char *err, size_t errcap)
{
    if (!data || len < 0)
        return bind_rc(st, idx, sqlite3_bind_null(st, idx), sqlstate, err, errcap);
    if (format == 0)
        return bind_text_format(st, idx, oid, data, (size_t)len, sqlstate, err, errcap);
    return bind_binary_format(st, idx, oid, data, (size_t)len, sqlstate, err, errcap);
}
