/* sql/sqlstate.c: SQLite result codes and error messages -> PostgreSQL
 * SQLSTATE codes. Extended codes are looked up first, then primary codes;
 * for a generic SQLITE_ERROR the message text decides. */
#include "sql.h"

#include <ctype.h>
#include <string.h>

struct code_map {
    int code;
    const char *state;
};

/* Extended result codes that need a more precise state than their
 * primary code. */
static const struct code_map extended_map[] = {
    {SQLITE_CONSTRAINT_UNIQUE, "23505"},
    {SQLITE_CONSTRAINT_PRIMARYKEY, "23505"},
    {SQLITE_CONSTRAINT_ROWID, "23505"},
    {SQLITE_CONSTRAINT_NOTNULL, "23502"},
    {SQLITE_CONSTRAINT_FOREIGNKEY, "23503"},
    {SQLITE_CONSTRAINT_CHECK, "23514"},
    /* STRICT table: "cannot store TEXT value in INTEGER column"; PostgreSQL
     * reports such input as invalid_text_representation. */
    {SQLITE_CONSTRAINT_DATATYPE, "22P02"},
    {SQLITE_CONSTRAINT_TRIGGER, "23000"},
    {SQLITE_IOERR_NOMEM, "53200"},
    {SQLITE_ABORT_ROLLBACK, "40000"},
    {SQLITE_ERROR_MISSING_COLLSEQ, "42704"},
    {SQLITE_ERROR_SNAPSHOT, "40001"},
    {SQLITE_NOTICE_RECOVER_WAL, "00000"},
    {SQLITE_NOTICE_RECOVER_ROLLBACK, "00000"},
};

/* Primary result codes (extended_code & 0xff). SQLITE_ERROR is absent: it
 * goes through the message table. */
static const struct code_map primary_map[] = {
    {SQLITE_OK, "00000"},
    {SQLITE_ROW, "00000"},
    {SQLITE_DONE, "00000"},
    {SQLITE_INTERNAL, "XX000"},
    {SQLITE_PERM, "42501"},
    {SQLITE_ABORT, "57014"},
    {SQLITE_BUSY, "40001"},
    {SQLITE_LOCKED, "55P03"},
    {SQLITE_NOMEM, "53200"},
    {SQLITE_READONLY, "25006"},
    {SQLITE_INTERRUPT, "57014"},
    {SQLITE_IOERR, "58030"},
    {SQLITE_CORRUPT, "XX001"},
    {SQLITE_NOTFOUND, "XX000"},
    {SQLITE_FULL, "53100"},
    {SQLITE_CANTOPEN, "58030"},
    {SQLITE_PROTOCOL, "XX000"},
    {SQLITE_EMPTY, "XX000"},
    {SQLITE_SCHEMA, "XX000"},
    {SQLITE_TOOBIG, "54000"},
    {SQLITE_CONSTRAINT, "23000"},
    {SQLITE_MISMATCH, "42804"},
    {SQLITE_MISUSE, "XX000"},
    {SQLITE_NOLFS, "54000"},
    {SQLITE_AUTH, "42501"},
    {SQLITE_FORMAT, "XX000"},
    {SQLITE_RANGE, "08P01"},
    {SQLITE_NOTADB, "XX001"},
    {SQLITE_NOTICE, "00000"},
    {SQLITE_WARNING, "01000"},
};

/* Message rules for SQLITE_ERROR, first match wins (messages may be
 * wrapped, e.g. "error in view v: no such table: t", so most rules look
 * for a substring). A rule matches when
 * the message starts with prefix (if set) and contains needle (if set);
 * both comparisons ignore case. */
struct msg_rule {
    const char *prefix;
    const char *needle;
    const char *state;
};

static const struct msg_rule msg_rules[] = {
    {NULL, "syntax error", "42601"},
    {NULL, "incomplete input", "42601"},
    {NULL, "unrecognized token", "42601"},
    {NULL, "no such table", "42P01"},
    {NULL, "no such view", "42P01"},
    {NULL, "no such column", "42703"},
    {NULL, "has no column named", "42703"},
    {NULL, "no such function", "42883"},
    {NULL, "wrong number of arguments to function", "42883"},
    {NULL, "no such index", "42704"},
    {NULL, "no such trigger", "42704"},
    {NULL, "no such collation sequence", "42704"},
    {NULL, "no such module", "42704"},
    {NULL, "no such savepoint", "3B001"},
    {NULL, "unknown database", "3D000"},
    {"trigger ", "already exists", "42710"},
    {NULL, "already exists", "42P07"},
    {NULL, "there is already another table or index with this name", "42P07"},
    {NULL, "duplicate column name", "42701"},
    {NULL, "ambiguous column name", "42702"},
    {NULL, "datatype mismatch", "42804"},
    {NULL, "cannot start a transaction within a transaction", "25001"},
    {NULL, "cannot vacuum from within a transaction", "25001"},
    {NULL, "no transaction is active", "25P01"},
    {NULL, "not authorized", "42501"},
    {"access to ", "is prohibited", "42501"},
    {NULL, "may not be modified", "42501"},
    {NULL, "may not be dropped", "42501"},
    {NULL, "may not be altered", "42501"},
    {NULL, "object name reserved for internal use", "42939"},
    {"cannot modify ", "because it is a view", "42809"},
    {NULL, "foreign key mismatch", "42830"},
    {NULL, "too many terms in compound select", "54011"},
    {NULL, "too many columns", "54011"},
    {NULL, "too many sql variables", "54023"},
    {NULL, "too many arguments on function", "54023"},
    {NULL, "parser stack overflow", "54001"},
    {NULL, "expression tree is too large", "54001"},
    {NULL, "too many levels of trigger recursion", "54001"},
    {NULL, "integer overflow", "22003"},
    {NULL, "hex literal too big", "22003"},
    {NULL, "division by zero", "22012"},
    {NULL, "malformed json", "22P02"},
    {NULL, "misuse of aggregate", "42803"},
    {NULL, "misuse of aliased aggregate", "42803"},
    {NULL, "aggregate functions are not allowed in the group by clause", "42803"},
    {NULL, "a group by clause is required before having", "42803"},
    {NULL, "misuse of window function", "42P20"},
    {NULL, "misuse of aliased window function", "42P20"},
    {NULL, "order by term out of range", "42P10"},
    {NULL, "group by term out of range", "42P10"},
    {NULL, "does not match any column in the result set", "42P10"},
    {NULL, "values were supplied", "42601"},
    {NULL, "values for ", "42601"},
    {NULL, "sub-select returns", "42601"},
    {NULL, "do not have the same number of result columns", "42601"},
    {NULL, "row value misused", "42601"},
    {NULL, "no tables specified", "42601"},
    {NULL, "cannot add a primary key column", "0A000"},
    {NULL, "cannot add a unique column", "0A000"},
    {NULL, "cannot drop primary key column", "0A000"},
    {NULL, "cannot drop unique column", "0A000"},
    {NULL, "cannot add a not null column with default value null", "23502"},
};

static int starts_with_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++)
        if (tolower((unsigned char)*s) != *prefix)
            return 0;
    return 1;
}

/* Case-insensitive substring search; needle is lower case. */
static int contains_ci(const char *s, const char *needle)
{
    for (; *s; s++)
        if (starts_with_ci(s, needle))
            return 1;
    return 0;
}

static const char *lookup(const struct code_map *m, size_t n, int code)
{
    for (size_t i = 0; i < n; i++)
        if (m[i].code == code)
            return m[i].state;
    return NULL;
}

static const char *from_message(const char *msg)
{
    if (!msg)
        return NULL;
    for (size_t i = 0; i < ARRAY_LEN(msg_rules); i++) {
        const struct msg_rule *r = &msg_rules[i];
        if (r->prefix && !starts_with_ci(msg, r->prefix))
            continue;
        if (r->needle && !contains_ci(msg, r->needle))
            continue;
        return r->state;
    }
    return NULL;
}

const char *sql_sqlstate(int extended_code, const char *msg)
{
    const char *s = lookup(extended_map, ARRAY_LEN(extended_map), extended_code);
    if (s)
        return s;
    int primary = extended_code & 0xff;
    if (primary == SQLITE_ERROR) {
        s = from_message(msg);
        return s ? s : "42000";
    }
    s = lookup(primary_map, ARRAY_LEN(primary_map), primary);
    return s ? s : "XX000";
}
