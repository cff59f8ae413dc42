/* sql/db.c: opening SQLite connections the way Orbit runs them (WAL,
 * durability, foreign keys), the PostgreSQL-compatible SQL functions, the
 * progress handler behind cancel and statement_timeout, and the
 * authorizer that keeps clients away from the internal catalog. */
#include "sql.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define ORBIT_VERSION_STRING                                                                                 \
    "PostgreSQL 15.0 (Orbit 0.1.0 on SQLite " SQLITE_VERSION ") on x86_64-pc-linux-gnu, compiled by gcc, 64-bit"

static struct sql_fnctx *ctx_of(sqlite3_context *c)
{
    return sqlite3_user_data(c);
}

static void fn_version(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    sqlite3_result_text(c, ORBIT_VERSION_STRING, -1, SQLITE_STATIC);
}

static void fn_user(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct sql_fnctx *f = ctx_of(c);
    sqlite3_result_text(c, f->user ? f->user : "orbit", -1, SQLITE_TRANSIENT);
}

static void fn_database(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct sql_fnctx *f = ctx_of(c);
    sqlite3_result_text(c, f->database ? f->database : "orbit", -1, SQLITE_TRANSIENT);
}

static void fn_schema(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    sqlite3_result_text(c, "public", -1, SQLITE_STATIC);
}

static void fn_in_recovery(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct sql_fnctx *f = sqlite3_user_data(c);
    const char *v = f && f->setting && f->session ? f->setting(f->session, "in_hot_standby") : NULL;
    sqlite3_result_int(c, v && strcmp(v, "on") == 0);
}

static void fn_backend_pid(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    sqlite3_result_int64(c, ctx_of(c)->pid);
}

static void fn_now(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char out[64];
    snprintf(out, sizeof out, "%04d-%02d-%02d %02d:%02d:%02d.%06ld+00", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000);
    sqlite3_result_text(c, out, -1, SQLITE_TRANSIENT);
}

static int interrupted(struct sql_fnctx *f)
{
    if (f->cancel && *f->cancel) {
        f->interrupt_reason = SQL_INTR_CANCEL;
        return 1;
    }
    if (f->deadline_ns && util_now_ns() >= f->deadline_ns) {
        f->interrupt_reason = SQL_INTR_TIMEOUT;
        return 1;
    }
    return 0;
}

static void fn_sleep(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct sql_fnctx *f = ctx_of(c);
    double secs = sqlite3_value_double(argv[0]);
    uint64_t end = util_now_ns() + (uint64_t)(secs > 0 ? secs * 1e9 : 0);
    while (util_now_ns() < end) {
        if (interrupted(f)) {
            sqlite3_result_error_code(c, SQLITE_INTERRUPT);
            return;
        }
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    sqlite3_result_null(c);
}

static void fn_current_setting(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    struct sql_fnctx *f = ctx_of(c);
    const char *name = (const char *)sqlite3_value_text(argv[0]);
    const char *v = name && f->setting && f->session ? f->setting(f->session, name) : NULL;
    if (!v) {
        if (argc > 1 && sqlite3_value_int(argv[1])) {
            sqlite3_result_null(c);
            return;
        }
        char msg[200];
        snprintf(msg, sizeof msg, "unrecognized configuration parameter \"%s\"", name ? name : "");
        sqlite3_result_error(c, msg, -1);
        return;
    }
    sqlite3_result_text(c, v, -1, SQLITE_TRANSIENT);
}

static void fn_bool(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    sqlite3_value *v = argv[0];
    switch (sqlite3_value_type(v)) {
    case SQLITE_NULL:
        sqlite3_result_null(c);
        return;
    case SQLITE_INTEGER:
    case SQLITE_FLOAT:
        sqlite3_result_int(c, sqlite3_value_double(v) != 0);
        return;
    default: {
        const char *s = (const char *)sqlite3_value_text(v);
        char t[16];
        size_t n = 0;
        while (s && isspace((unsigned char)*s))
            s++;
        for (; s && *s && !isspace((unsigned char)*s) && n < sizeof t - 1; s++)
            t[n++] = (char)tolower((unsigned char)*s);
        t[n] = 0;
        static const char *yes[] = {"t", "tr", "tru", "true", "y", "ye", "yes", "on", "1"};
        static const char *no[] = {"f", "fa", "fal", "fals", "false", "n", "no", "of", "off", "0"};
        for (size_t i = 0; i < ARRAY_LEN(yes); i++)
            if (strcmp(t, yes[i]) == 0) {
                sqlite3_result_int(c, 1);
                return;
            }
        for (size_t i = 0; i < ARRAY_LEN(no); i++)
            if (strcmp(t, no[i]) == 0 && strcmp(t, "o") != 0) {
                sqlite3_result_int(c, 0);
                return;
            }
        char msg[128];
        snprintf(msg, sizeof msg, "invalid input syntax for type boolean: \"%.60s\"",
                 (const char *)sqlite3_value_text(v));
        sqlite3_result_error(c, msg, -1);
    }
    }
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* PostgreSQL bytea input: \x hex, or escape format (\\ and \ooo). */
static void fn_bytea(sqlite3_context *c, int argc, sqlite3_value **argv)
{
    sqlite3_value *v = argv[0];
    int t = sqlite3_value_type(v);
    if (t == SQLITE_NULL) {
        sqlite3_result_null(c);
        return;
    }
    if (t == SQLITE_BLOB) {
        sqlite3_result_value(c, v);
        return;
    }
    const unsigned char *s = sqlite3_value_text(v);
    int n = sqlite3_value_bytes(v);
    unsigned char *out = sqlite3_malloc(n + 1);
    int o = 0;
    if (!out) {
        sqlite3_result_error_nomem(c);
        return;
    }
    if (n >= 2 && s[0] == '\\' && s[1] == 'x') {
        for (int i = 2; i < n;) {
            if (s[i] == ' ' || s[i] == '\n' || s[i] == '\t') {
                i++;
                continue;
            }
            int hi = hexval(s[i]), lo = i + 1 < n ? hexval(s[i + 1]) : -1;
            if (hi < 0 || lo < 0) {
                sqlite3_free(out);
                sqlite3_result_error(c, "invalid hexadecimal data: odd number of digits or invalid digit", -1);
                return;
            }
            out[o++] = (unsigned char)(hi * 16 + lo);
            i += 2;
        }
    } else {
        for (int i = 0; i < n;) {
            if (s[i] != '\\') {
                out[o++] = s[i++];
            } else if (i + 1 < n && s[i + 1] == '\\') {
                out[o++] = '\\';
                i += 2;
            } else if (i + 3 < n && s[i + 1] >= '0' && s[i + 1] <= '3' && s[i + 2] >= '0' && s[i + 2] <= '7' &&
                       s[i + 3] >= '0' && s[i + 3] <= '7') {
                out[o++] = (unsigned char)((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
                i += 4;
            } else {
                sqlite3_free(out);
                sqlite3_result_error(c, "invalid input syntax for type bytea", -1);
                return;
            }
        }
    }
    sqlite3_result_blob(c, out, o, sqlite3_free);
}

static int progress(void *arg)
{
    return interrupted(arg);
}

static int starts_internal(const char *name)
{
    return name && strncasecmp(name, "_orbit_", 7) == 0;
}

static int authorizer(void *arg, int action, const char *a, const char *b, const char *db, const char *trig)
{
    struct sql_fnctx *f = arg;
    if (f->internal)
        return SQLITE_OK;
    switch (action) {
    case SQLITE_ATTACH:
    case SQLITE_DETACH:
        return SQLITE_DENY;
    case SQLITE_PRAGMA:
        if (a && (strcasecmp(a, "writable_schema") == 0 || strcasecmp(a, "journal_mode") == 0 ||
                  strcasecmp(a, "synchronous") == 0 || strcasecmp(a, "locking_mode") == 0 ||
                  strcasecmp(a, "wal_checkpoint") == 0 || strcasecmp(a, "temp_store_directory") == 0 ||
                  strcasecmp(a, "mmap_size") == 0) && b)
            return SQLITE_DENY;
        if (a && strcasecmp(a, "writable_schema") == 0)
            return SQLITE_DENY;
        return SQLITE_OK;
    case SQLITE_READ:
    case SQLITE_UPDATE:
    case SQLITE_INSERT:
    case SQLITE_DELETE:
    case SQLITE_DROP_TABLE:
    case SQLITE_ALTER_TABLE:
    case SQLITE_CREATE_INDEX:
    case SQLITE_DROP_INDEX:
    case SQLITE_CREATE_TRIGGER:
    case SQLITE_DROP_TRIGGER:
    case SQLITE_CREATE_TABLE:
    case SQLITE_ANALYZE:
        /* the table name is a for table actions, b for index/trigger actions */
        if (starts_internal(a) || ((action == SQLITE_CREATE_INDEX || action == SQLITE_DROP_INDEX ||
                                    action == SQLITE_CREATE_TRIGGER || action == SQLITE_DROP_TRIGGER) &&
                                   starts_internal(b)))
            return SQLITE_DENY;
        return SQLITE_OK;
    default:
        return SQLITE_OK;
    }
}

struct fndef {
    const char *name;
    int nargs;
    void (*fn)(sqlite3_context *, int, sqlite3_value **);
    int deterministic;
};

static const struct fndef fns[] = {
    {"version", 0, fn_version, 1},
    {"current_user", 0, fn_user, 0},
    {"session_user", 0, fn_user, 0},
    {"current_role", 0, fn_user, 0},
    {"user", 0, fn_user, 0},
    {"current_database", 0, fn_database, 0},
    {"current_catalog", 0, fn_database, 0},
    {"current_schema", 0, fn_schema, 1},
    {"pg_is_in_recovery", 0, fn_in_recovery, 0},
    {"pg_backend_pid", 0, fn_backend_pid, 0},
    {"now", 0, fn_now, 0},
    {"transaction_timestamp", 0, fn_now, 0},
    {"statement_timestamp", 0, fn_now, 0},
    {"clock_timestamp", 0, fn_now, 0},
    {"pg_sleep", 1, fn_sleep, 0},
    {"current_setting", 1, fn_current_setting, 0},
    {"current_setting", 2, fn_current_setting, 0},
    {"orbit_bool", 1, fn_bool, 1},
    {"orbit_bytea", 1, fn_bytea, 1},
};

static int exec_simple(sqlite3 *db, const char *sql, char *err, size_t errcap)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errcap, "%s: %s", sql, msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

void sql_global_init(void)
{
    /* memory statistics take a process-wide mutex on every allocation:
     * with many threads that is a hot lock (must precede any other use) */
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

int sql_db_open(const char *path, struct sql_fnctx *fn, sqlite3 **out, char *err, size_t errcap)
{
    sqlite3 *db = NULL;
    *out = NULL;
    /* unix-excl: the first connection locks the file for this process
     * once; after that, locks between this process's connections are
     * counters in memory and the WAL index lives in heap memory, instead
     * of an fcntl() per read transaction (10% of the server's CPU on
     * select-only). Another process cannot open the database while
     * orbitd runs, which it must not anyway: every change goes through
     * the txlog. */
    int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, "unix-excl");
    if (rc != SQLITE_OK) {
        snprintf(err, errcap, "could not open database \"%s\": %s", path, db ? sqlite3_errmsg(db) : "out of memory");
        sqlite3_close(db);
        return -1;
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 10000);
    if (exec_simple(db, "PRAGMA journal_mode=WAL", err, errcap) ||
        exec_simple(db, "PRAGMA synchronous=NORMAL", err, errcap) ||
        exec_simple(db, "PRAGMA foreign_keys=ON", err, errcap) ||
        exec_simple(db, "PRAGMA recursive_triggers=ON", err, errcap) ||
        exec_simple(db, "PRAGMA mmap_size=1073741824", err, errcap)) {
        sqlite3_close(db);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(fns); i++) {
        int flags = SQLITE_UTF8 | (fns[i].deterministic ? SQLITE_DETERMINISTIC : 0);
        if (sqlite3_create_function(db, fns[i].name, fns[i].nargs, flags, fn, fns[i].fn, NULL, NULL) != SQLITE_OK) {
            snprintf(err, errcap, "could not register function %s", fns[i].name);
            sqlite3_close(db);
            return -1;
        }
    }
    sqlite3_progress_handler(db, 2000, progress, fn);
    sqlite3_set_authorizer(db, authorizer, fn);
    *out = db;
    return 0;
}

struct fntype {
    const char *name;
    uint32_t oid;
};

static const struct fntype fntypes[] = {
    {"count", SQL_OID_INT8},          {"pg_is_in_recovery", SQL_OID_BOOL}, {"pg_backend_pid", SQL_OID_INT4},
    {"version", SQL_OID_TEXT},        {"current_user", SQL_OID_NAME},      {"session_user", SQL_OID_NAME},
    {"current_database", SQL_OID_NAME}, {"current_schema", SQL_OID_NAME},  {"current_setting", SQL_OID_TEXT},
    {"now", SQL_OID_TIMESTAMPTZ},     {"orbit_bool", SQL_OID_BOOL},        {"pg_sleep", SQL_OID_TEXT},
    {"orbit_bytea", SQL_OID_BYTEA},
};

const char *sql_column_pgname(const char *name, char *buf, size_t cap, uint32_t *oid)
{
    *oid = 0;
    if (!name)
        return "?column?";
    const char *p = name;
    /* plain identifier (possibly qualified): keep */
    int ident = isalpha((unsigned char)*p) || *p == '_';
    for (const char *q = p; *q && ident; q++)
        if (!(isalnum((unsigned char)*q) || *q == '_' || *q == '.' || *q == '$' || (unsigned char)*q >= 0x80))
            ident = 0;
    if (ident && *p)
        return name;
    /* function call: name(...) possibly qualified; also CAST(x AS t) */
    size_t n = 0;
    while ((isalnum((unsigned char)p[n]) || p[n] == '_' || p[n] == '.') && n < 200)
        n++;
    if (n && p[n] == '(') {
        const char *fname = p;
        const char *dot = memchr(p, '.', n);
        while (dot) {
            n -= (size_t)(dot + 1 - fname);
            fname = dot + 1;
            dot = memchr(fname, '.', n);
        }
        if (n >= cap)
            n = cap - 1;
        for (size_t i = 0; i < n; i++)
            buf[i] = (char)tolower((unsigned char)fname[i]);
        buf[n] = 0;
        if (strcmp(buf, "cast") == 0) {
            /* PostgreSQL names a cast after its type; we name it after the
             * inner column when that is a plain identifier */
            return "?column?";
        }
        for (size_t i = 0; i < ARRAY_LEN(fntypes); i++)
            if (strcmp(buf, fntypes[i].name) == 0)
                *oid = fntypes[i].oid;
        if (strcmp(buf, "orbit_bool") == 0)
            return "bool";
        if (strcmp(buf, "orbit_bytea") == 0)
            return "bytea";
        return buf;
    }
    return "?column?";
}
