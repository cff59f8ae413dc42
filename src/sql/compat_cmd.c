/* sql/compat_cmd.c: the PostgreSQL commands that are not plain SQL for
 * SQLite: transaction control, SET/SHOW/RESET, COPY options, DROP lists,
 * TRUNCATE, VACUUM/ANALYZE, EXPLAIN, REINDEX and the accepted no-ops. */
#include "compat_int.h"

#include <stdio.h>

/* DROP TABLE|VIEW|INDEX [IF EXISTS] a, b [CASCADE|RESTRICT] -> one DROP
 * each; DROP TRIGGER [IF EXISTS] name [ON table] -> SQLite form. */
static int h_drop(struct ctx *c)
{
    if (kw(c, 1, "materialized") && kw(c, 2, "view")) {
        cpt_set_tag(c, "DROP MATERIALIZED VIEW", -1);
        return cpt_finish(c, 0);
    }
    cpt_set_tag(c, "DROP", 1);
    if (!kw(c, 1, "table|view|index|trigger"))
        return cpt_finish(c, 0);
    int i = 2, ifex = 0, trig = kw(c, 1, "trigger");
    char head[40];
    if (kw(c, 1, "index") && kw(c, i, "concurrently"))
        i++;
    if (kw(c, i, "if") && kw(c, i + 1, "exists"))
        ifex = 1, i += 2;
    snprintf(head, sizeof head, "%s%s ", c->out->tag, ifex ? " IF EXISTS" : "");
    struct buf o;
    buf_init(&o);
    for (;;) {
        int ns = i;
        i = skip_name(c, i);
        if (i == ns) {
            buf_free(&o);
            return cpt_syntax(c, i);
        }
        cpt_put(&o, head, strlen(head));
        cpt_emit(c, ns, i, &o);
        if (trig && kw(c, i, "on") && skip_name(c, i + 1) > i + 1)
            i = skip_name(c, i + 1);
        if (trig || !op(c, i, ","))
            break;
        buf_puts(&o, "; ");
        i++;
    }
    if (kw(c, i, "cascade|restrict"))
        i++;
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_steal_str(c, &o);
    return i < c->end ? cpt_syntax(c, i) : 0;
}

static int h_truncate(struct ctx *c)
{
    cpt_set_tag(c, "TRUNCATE TABLE", -1);
    int i = kw(c, 1, "table") ? 2 : 1;
    struct buf o;
    buf_init(&o);
    for (;;) {
        if (kw(c, i, "only") && is_name(c, i + 1))
            i++;
        int ns = i;
        i = skip_name(c, i);
        if (i == ns) {
            buf_free(&o);
            return cpt_syntax(c, i);
        }
        cpt_put(&o, "DELETE FROM ", 12);
        cpt_emit(c, ns, i, &o);
        if (op(c, i, "*"))
            i++;
        if (!op(c, i, ","))
            break;
        buf_puts(&o, "; ");
        i++;
    }
    while (kw(c, i, "restart|continue") && kw(c, i + 1, "identity"))
        i += 2;
    if (kw(c, i, "cascade|restrict"))
        i++;
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_steal_str(c, &o);
    return i < c->end ? cpt_syntax(c, i) : 0;
}

/* Table list [t [(cols)] [, ...]] from i -> "ANALYZE t; ANALYZE u". */
static int analyze_list(struct ctx *c, int i, int run)
{
    struct buf o;
    buf_init(&o);
    while (i < c->end) {
        int ns = i;
        i = skip_name(c, i);
        if (i == ns)
            break;
        if (o.len)
            buf_puts(&o, "; ");
        cpt_put(&o, "ANALYZE ", 8);
        cpt_emit(c, ns, i, &o);
        if (op(c, i, "("))
            i = skip_tok(c, i);
        if (!op(c, i, ",") || i + 1 >= c->end)
            break;
        i++;
    }
    if (i < c->end) {
        buf_free(&o);
        return cpt_syntax(c, i);
    }
    if (!o.len)
        buf_puts(&o, "ANALYZE");
    if (run) {
        c->out->kind = SQL_K_QUERY;
        c->out->sql = cpt_steal_str(c, &o);
    } else {
        c->out->kind = SQL_K_NOOP;
        buf_free(&o);
    }
    return 0;
}

static int h_vacuum(struct ctx *c)
{
    int i = 1, an = 0;
    cpt_set_tag(c, "VACUUM", -1);
    if (op(c, i, "(") && c->t[i].match > i) {
        for (int s = i + 1; s < c->t[i].match;) {
            int e = s;
            while (e < c->t[i].match && !op(c, e, ","))
                e = skip_tok(c, e);
            if (kw(c, s, "analyze|analyse") && cpt_bool_val(c, e == s + 1 ? -1 : s + 1, "ANALYZE", &an))
                return -1;
            s = e + 1;
        }
        i = c->t[i].match + 1;
    }
    for (; kw(c, i, "full|freeze|verbose|analyze|analyse"); i++)
        an |= kw(c, i, "analyze|analyse");
    return analyze_list(c, i, an);
}

static int h_analyze(struct ctx *c)
{
    int i = 1;
    cpt_set_tag(c, "ANALYZE", -1);
    if (kw(c, i, "verbose"))
        i++;
    if (op(c, i, "("))
        i = skip_tok(c, i);
    return analyze_list(c, i, 1);
}

/* EXPLAIN [ANALYZE] [VERBOSE] | (options) stmt -> EXPLAIN QUERY PLAN stmt */
static int h_explain(struct ctx *c)
{
    int i = 1;
    cpt_set_tag(c, "EXPLAIN", -1);
    if (kw(c, i, "query") && kw(c, i + 1, "plan"))
        i += 2;
    else if (op(c, i, "("))
        i = skip_tok(c, i);
    else
        while (kw(c, i, "analyze|analyse|verbose"))
            i++;
    if (i >= c->end)
        return cpt_syntax(c, i);
    if (kw(c, i, "table"))
        cpt_replace(c, i, "SELECT * FROM");
    struct buf o;
    buf_init(&o);
    buf_puts(&o, "EXPLAIN QUERY PLAN ");
    cpt_emit(c, i, c->end, &o);
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_steal_str(c, &o);
    return 0;
}

static int h_reindex(struct ctx *c)
{
    int i = 1;
    cpt_set_tag(c, "REINDEX", -1);
    if (op(c, i, "("))
        i = skip_tok(c, i);
    if (kw(c, i, "schema|database|system")) {
        cpt_set_str(c, &c->out->sql, "REINDEX");
        c->out->kind = SQL_K_QUERY;
        return 0;
    }
    if (!kw(c, i, "index|table"))
        return cpt_finish(c, 0);
    i++;
    if (kw(c, i, "concurrently"))
        i++;
    int ns = i;
    if ((i = skip_name(c, i)) == ns || i != c->end)
        return cpt_syntax(c, i);
    struct buf o;
    buf_init(&o);
    cpt_put(&o, "REINDEX ", 8);
    cpt_emit(c, ns, i, &o);
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_steal_str(c, &o);
    return 0;
}

/* Transaction modes from i to the end: isolation level, access mode,
 * [NOT] DEFERRABLE. */
static int tx_modes(struct ctx *c, int i, int *ro, const char **iso, int *deferrable)
{
    while (i < c->end) {
        if (kw(c, i, "isolation") && kw(c, i + 1, "level")) {
            i += 2;
            if (kw(c, i, "serializable"))
                *iso = "serializable", i++;
            else if (kw(c, i, "repeatable") && kw(c, i + 1, "read"))
                *iso = "repeatable read", i += 2;
            else if (kw(c, i, "read") && kw(c, i + 1, "committed"))
                *iso = "read committed", i += 2;
            else if (kw(c, i, "read") && kw(c, i + 1, "uncommitted"))
                *iso = "read uncommitted", i += 2;
            else
                return cpt_syntax(c, i);
        } else if (kw(c, i, "read") && kw(c, i + 1, "only|write")) {
            *ro = kw(c, i + 1, "only");
            i += 2;
        } else if (kw(c, i, "deferrable")) {
            *deferrable = 1, i++;
        } else if (kw(c, i, "not") && kw(c, i + 1, "deferrable")) {
            *deferrable = 0, i += 2;
        } else {
            return cpt_syntax(c, i);
        }
        if (op(c, i, ",") && i + 1 < c->end)
            i++;
    }
    return 0;
}

static int h_begin(struct ctx *c)
{
    int i = 1, dfr = -1;
    const char *mode = "BEGIN", *iso = NULL;
    c->out->kind = SQL_K_BEGIN;
    cpt_set_tag(c, "BEGIN", -1);
    if (kw(c, 0, "start")) {
        if (!kw(c, 1, "transaction"))
            return cpt_syntax(c, 1);
        cpt_set_tag(c, "START TRANSACTION", -1);
        i = 2;
    } else {
        if (kw(c, i, "deferred|immediate|exclusive")) {
            mode = kw(c, i, "deferred")    ? "BEGIN DEFERRED"
                   : kw(c, i, "immediate") ? "BEGIN IMMEDIATE"
                                           : "BEGIN EXCLUSIVE";
            i++;
        }
        if (kw(c, i, "work|transaction"))
            i++;
    }
    if (tx_modes(c, i, &c->out->read_only, &iso, &dfr))
        return -1;
    cpt_set_str(c, &c->out->sql, mode);
    if (iso)
        cpt_set_str(c, &c->out->set_value, iso);
    return 0;
}

/* [AND [NO] CHAIN] at the end of COMMIT / ROLLBACK. */
static int chain(struct ctx *c, int i, const char *what)
{
    if (kw(c, i, "and") && kw(c, i + 1, "no") && kw(c, i + 2, "chain"))
        i += 3;
    else if (kw(c, i, "and") && kw(c, i + 1, "chain"))
        return cpt_fail(c, "0A000", "%s AND CHAIN is not supported", what);
    return i < c->end ? cpt_syntax(c, i) : 0;
}

static int h_commit(struct ctx *c)
{
    c->out->kind = SQL_K_COMMIT;
    cpt_set_tag(c, "COMMIT", -1);
    if (kw(c, 0, "commit") && kw(c, 1, "prepared"))
        return cpt_fail(c, "0A000", "COMMIT PREPARED is not supported");
    cpt_set_str(c, &c->out->sql, "COMMIT");
    return chain(c, kw(c, 1, "work|transaction") ? 2 : 1, "COMMIT");
}

static int savepoint_name(struct ctx *c, int i, const char *prefix)
{
    if (!is_name(c, i))
        return cpt_syntax(c, i);
    if (i + 1 < c->end)
        return cpt_syntax(c, i + 1);
    struct buf o, n;
    buf_init(&o);
    buf_init(&n);
    buf_puts(&o, prefix);
    cpt_emit(c, i, i + 1, &o);
    cpt_name_append(c, i, &n);
    c->out->sql = cpt_steal_str(c, &o);
    c->out->name = cpt_steal_str(c, &n);
    return 0;
}

static int h_rollback(struct ctx *c)
{
    cpt_set_tag(c, "ROLLBACK", -1);
    c->out->kind = SQL_K_ROLLBACK;
    if (kw(c, 0, "rollback") && kw(c, 1, "prepared"))
        return cpt_fail(c, "0A000", "ROLLBACK PREPARED is not supported");
    int i = kw(c, 1, "work|transaction") ? 2 : 1;
    if (kw(c, 0, "rollback") && kw(c, i, "to")) {
        c->out->kind = SQL_K_ROLLBACK_TO;
        i++;
        return savepoint_name(c, kw(c, i, "savepoint") ? i + 1 : i, "ROLLBACK TO SAVEPOINT ");
    }
    cpt_set_str(c, &c->out->sql, "ROLLBACK");
    return chain(c, i, "ROLLBACK");
}

/* SET value list from i: literals, numbers, identifiers; DEFAULT -> NULL. */
static int set_value(struct ctx *c, int i)
{
    struct buf b;
    buf_init(&b);
    if (kw(c, i, "default") && i + 1 == c->end)
        return 0;
    for (;;) {
        if ((op(c, i, "-") || op(c, i, "+")) && i + 1 < c->end && c->t[i + 1].type == T_NUMBER) {
            if (op(c, i, "-"))
                buf_putc(&b, '-');
            i++;
        }
        if (cpt_val_text(c, i, &b))
            break;
        if (++i >= c->end) {
            c->out->set_value = cpt_steal_str(c, &b);
            return 0;
        }
        if (!op(c, i, ",")) {
            cpt_syntax(c, i);
            break;
        }
        buf_puts(&b, ", ");
        i++;
    }
    buf_free(&b);
    return -1;
}

static int set_name(struct ctx *c, const char *name)
{
    cpt_set_str(c, &c->out->name, name);
    return 0;
}

/* A configuration parameter name from *ip: name or dotted a.b. */
static int guc_name(struct ctx *c, int *ip)
{
    int i = *ip;
    struct buf b;
    if (!is_name(c, i))
        return cpt_syntax(c, i);
    buf_init(&b);
    cpt_name_append(c, i++, &b);
    for (; op(c, i, ".") && is_name(c, i + 1); i += 2) {
        buf_putc(&b, '.');
        cpt_name_append(c, i + 1, &b);
    }
    c->out->name = cpt_steal_str(c, &b);
    *ip = i;
    return 0;
}

static int set_tx(struct ctx *c, int i, const char *prefix)
{
    const char *iso = NULL;
    int dfr = -1, *ro = &c->out->read_only;
    char name[48];
    if (i >= c->end)
        return cpt_syntax(c, i);
    if (tx_modes(c, i, ro, &iso, &dfr))
        return -1;
    snprintf(name, sizeof name, "%stransaction_%s", prefix, iso ? "isolation" : *ro >= 0 ? "read_only" : "deferrable");
    set_name(c, name);
    cpt_set_str(c, &c->out->set_value, iso ? iso : (*ro >= 0 ? *ro : dfr) ? "on" : "off");
    return 0;
}

static int h_set(struct ctx *c)
{
    int i = 1;
    c->out->kind = SQL_K_SET;
    cpt_set_tag(c, "SET", -1);
    if (kw(c, i, "session") && !kw(c, i + 1, "characteristics|authorization"))
        i++;
    else if (kw(c, i, "local"))
        c->out->set_local = 1, i++;
    if (kw(c, i, "time") && kw(c, i + 1, "zone")) {
        set_name(c, "timezone");
        if (kw(c, i + 2, "local|default") && i + 3 == c->end)
            return 0;
        if (kw(c, i + 2, "interval"))
            return cpt_fail(c, "0A000", "SET TIME ZONE INTERVAL is not supported");
        return set_value(c, i + 2);
    }
    if (kw(c, i, "names|schema|role")) {
        set_name(c, kw(c, i, "names") ? "client_encoding" : kw(c, i, "schema") ? "search_path" : "role");
        return set_value(c, i + 1);
    }
    if (kw(c, i, "session") && kw(c, i + 1, "authorization")) {
        set_name(c, "session_authorization");
        return set_value(c, i + 2);
    }
    if (kw(c, i, "transaction")) {
        if (kw(c, i + 1, "snapshot"))
            return cpt_fail(c, "0A000", "SET TRANSACTION SNAPSHOT is not supported");
        return set_tx(c, i + 1, "");
    }
    if (kw(c, i, "session") && kw(c, i + 1, "characteristics") && kw(c, i + 2, "as") && kw(c, i + 3, "transaction"))
        return set_tx(c, i + 4, "default_");
    if (guc_name(c, &i))
        return -1;
    if (!kw(c, i, "to") && !op(c, i, "="))
        return cpt_syntax(c, i);
    return set_value(c, i + 1);
}

/* SHOW / RESET name | ALL | TIME ZONE | SESSION AUTHORIZATION | ... */
static int h_show_reset(struct ctx *c)
{
    int i = 1, show = kw(c, 0, "show");
    c->out->kind = show ? SQL_K_SHOW : SQL_K_RESET;
    cpt_set_tag(c, show ? "SHOW" : "RESET", -1);
    if (kw(c, i, "time") && kw(c, i + 1, "zone"))
        set_name(c, "timezone"), i += 2;
    else if (kw(c, i, "session") && kw(c, i + 1, "authorization"))
        set_name(c, "session_authorization"), i += 2;
    else if (show && kw(c, i, "transaction") && kw(c, i + 1, "isolation") && kw(c, i + 2, "level"))
        set_name(c, "transaction_isolation"), i += 3;
    else if (guc_name(c, &i))
        return -1;
    return i < c->end ? cpt_syntax(c, i) : 0;
}

/* ---- COPY ------------------------------------------------------------------------- */

struct copyopt {
    int format, header, seen;
    int delim, quote, escape; /* -1 unset */
    struct buf null;          /* null_set: null given */
    int null_set;
};

/* One-byte option value of option `what` from token i. */
static int copy_char(struct ctx *c, int i, const char *what, int *dst)
{
    struct buf b;
    buf_init(&b);
    int rc = cpt_str_val(c, i, &b);
    if (rc == 0)
        rc = cpt_buf_check(c, &b);
    if (rc == 0 && b.len != 1)
        rc = cpt_fail(c, "0A000", "COPY %s must be a single one-byte character", what);
    if (rc == 0)
        *dst = (unsigned char)b.data[0];
    buf_free(&b);
    return rc;
}

#define UNSUPPORTED_COPY "force_quote|force_not_null|force_null|default|on_error|log_verbosity|reject_limit|oids|force"

/* Apply option nm (lower-cased) with its value at token vi (-1: none). */
static int copy_opt(struct ctx *c, struct copyopt *o, const char *nm, int vi)
{
    static const char *const names[] = {"format", "delimiter", "null",     "header", "quote",
                                        "escape", "freeze",    "encoding", "binary", "csv"};
    size_t k, n = strlen(nm);
    int bit, dummy;
    if (word_in(nm, n, UNSUPPORTED_COPY)) {
        char up[24];
        for (k = 0; k <= n && k < sizeof up; k++)
            up[k] = (char)(nm[k] >= 'a' && nm[k] <= 'z' ? nm[k] - 32 : nm[k]);
        up[sizeof up - 1] = 0;
        return cpt_fail(c, "0A000", "COPY option %s is not supported", up);
    }
    for (k = 0; k < ARRAY_LEN(names) && strcmp(names[k], nm); k++)
        ;
    if (k == ARRAY_LEN(names))
        return cpt_fail(c, "42601", "option \"%s\" not recognized", nm);
    bit = k >= 8 ? 1 : 1 << k;
    if (o->seen & bit)
        return cpt_fail(c, "42601", "conflicting or redundant options");
    o->seen |= bit;
    if (k >= 8) {
        o->format = k == 8 ? SQL_COPY_BINARY : SQL_COPY_CSV;
        return 0;
    }
    if (vi < 0 && k != 3 && k != 6)
        return cpt_fail(c, "42601", "COPY option %s requires a value", nm);
    if (k == 0 || k == 7) {
        char v[16] = "";
        struct buf b;
        buf_init(&b);
        if (cpt_val_text(c, vi, &b) || cpt_buf_check(c, &b)) {
            buf_free(&b);
            return -1;
        }
        if (b.len < sizeof v)
            memcpy(v, b.data, b.len), v[b.len] = 0;
        buf_free(&b);
        if (k == 7)
            return word_in(v, strlen(v), "utf8|utf-8|unicode|sql_ascii")
                       ? 0
                       : cpt_fail(c, "0A000", "COPY ENCODING \"%s\" is not supported (only UTF8)", v);
        if (!word_in(v, strlen(v), "text|csv|binary"))
            return cpt_fail(c, "22023", "COPY format \"%s\" not recognized", v);
        o->format = lower(v[0]) == 't' ? SQL_COPY_TEXT : lower(v[0]) == 'c' ? SQL_COPY_CSV : SQL_COPY_BINARY;
        return 0;
    }
    switch (k) {
    case 1: return copy_char(c, vi, "delimiter", &o->delim);
    case 2: o->null_set = 1; return cpt_str_val(c, vi, &o->null);
    case 3: return cpt_bool_val(c, vi, "HEADER", &o->header);
    case 4: return copy_char(c, vi, "quote", &o->quote);
    case 5: return copy_char(c, vi, "escape", &o->escape);
    default: return cpt_bool_val(c, vi, "FREEZE", &dummy);
    }
}

/* Options after FROM STDIN / TO STDOUT: [WITH] (name [value], ...) or the
 * pre-9.0 word list. */
static int copy_options(struct ctx *c, int i, struct copyopt *o)
{
    char nm[24];
    if (kw(c, i, "with"))
        i++;
    if (op(c, i, "(") && c->t[i].match > i) {
        int m = c->t[i].match;
        for (int s = i + 1; s < m;) {
            int e = s;
            while (e < m && !op(c, e, ","))
                e = skip_tok(c, e);
            if (!is_name(c, s))
                return cpt_syntax(c, s);
            cpt_name_lower(c, s, nm, sizeof nm);
            if (e > s + 2 && !word_in(nm, strlen(nm), UNSUPPORTED_COPY))
                return cpt_syntax(c, s + 2);
            if (copy_opt(c, o, nm, e == s + 2 ? s + 1 : -1))
                return -1;
            s = e + 1;
        }
        return m + 1 < c->end ? cpt_syntax(c, m + 1) : 0;
    }
    while (i < c->end) {
        if (kw(c, i, "where"))
            return cpt_fail(c, "0A000", "COPY ... WHERE is not supported");
        if (!is_name(c, i))
            return cpt_syntax(c, i);
        cpt_name_lower(c, i, nm, sizeof nm);
        int vi = -1;
        if (word_in(nm, strlen(nm), "delimiter|null|quote|escape|encoding")) {
            vi = kw(c, i + 1, "as") ? i + 2 : i + 1;
            if (vi >= c->end)
                return cpt_syntax(c, vi);
        } else if (!word_in(nm, strlen(nm), "binary|csv|header|freeze|force|oids")) {
            return cpt_syntax(c, i);
        }
        if (copy_opt(c, o, nm, vi))
            return -1;
        i = vi >= 0 ? vi + 1 : i + 1;
    }
    return 0;
}

static int copy_finish(struct ctx *c, struct copyopt *o)
{
    struct sql_copy *cp = &c->out->copy;
    int csv = o->format == SQL_COPY_CSV;
    cp->format = (enum sql_copy_format)o->format;
    if (o->format == SQL_COPY_BINARY && (o->seen & (2 | 4 | 8)))
        return cpt_fail(c, "42601", "cannot specify %s in BINARY mode",
                        o->seen & 2   ? "DELIMITER"
                        : o->seen & 4 ? "NULL"
                                      : "HEADER");
    if (!csv && (o->quote >= 0 || o->escape >= 0))
        return cpt_fail(c, "0A000", "COPY %s available only in CSV mode", o->quote >= 0 ? "quote" : "escape");
    cp->delimiter = (char)(o->delim >= 0 ? o->delim : csv ? ',' : '\t');
    cp->quote = (char)(o->quote >= 0 ? o->quote : '"');
    cp->escape = (char)(o->escape >= 0 ? o->escape : cp->quote);
    cp->header = o->header > 0;
    if (!o->null_set)
        buf_puts(&o->null, csv ? "" : "\\N");
    buf_putc(&o->null, 0);
    if (!buf_ok(&o->null))
        return c->oom = 1, -1;
    const char *ns = o->null.data;
    if (cp->delimiter == '\n' || cp->delimiter == '\r')
        return cpt_fail(c, "22023", "COPY delimiter cannot be newline or carriage return");
    if (strchr(ns, '\n') || strchr(ns, '\r'))
        return cpt_fail(c, "22023", "COPY null representation cannot use newline or carriage return");
    if (!csv && o->format != SQL_COPY_BINARY && strchr("\\.abcdefghijklmnopqrstuvwxyz0123456789", cp->delimiter))
        return cpt_fail(c, "22023", "COPY delimiter cannot be \"%c\"", cp->delimiter);
    if (csv && cp->delimiter == cp->quote)
        return cpt_fail(c, "22023", "COPY delimiter and quote must be different");
    if (o->format != SQL_COPY_BINARY && strchr(ns, cp->delimiter))
        return cpt_fail(c, "22023", "COPY delimiter must not appear in the NULL specification");
    if (csv && strchr(ns, cp->quote))
        return cpt_fail(c, "22023", "CSV quote character must not appear in the NULL specification");
    cp->null_str = cpt_steal_str(c, &o->null);
    return 0;
}

static int h_copy(struct ctx *c)
{
    struct sql_copy *cp = &c->out->copy;
    struct copyopt o = {SQL_COPY_TEXT, -1, 0, -1, -1, -1, {NULL, 0, 0, 0}, 0};
    int i = 1, qa = -1, qb = -1, to, rc;
    cpt_set_tag(c, "COPY", -1);
    if (kw(c, i, "binary"))
        o.format = SQL_COPY_BINARY, o.seen |= 1, i++;
    if (op(c, i, "(")) {
        if (c->t[i].match < 0)
            return cpt_syntax(c, i);
        qa = i + 1, qb = c->t[i].match, i = qb + 1;
        if (!kw(c, qa, "select|values|with|table|insert|update|delete"))
            return cpt_syntax(c, qa);
        if (kw(c, qa, "table"))
            cpt_replace(c, qa, "SELECT * FROM");
        if (cpt_generic(c, qa, qb) || !(cp->query = cpt_emit_str(c, qa, qb)))
            return -1;
    } else {
        int ns = i;
        if ((i = skip_name(c, i)) == ns)
            return cpt_syntax(c, i);
        if (cpt_generic(c, ns, i) || !(cp->table = cpt_emit_str(c, ns, i)))
            return -1;
        if (op(c, i, "(") && c->t[i].match > i) {
            if (!(cp->columns = cpt_emit_str(c, i + 1, c->t[i].match)))
                return -1;
            i = c->t[i].match + 1;
        }
    }
    if (!kw(c, i, "from|to"))
        return cpt_syntax(c, i);
    to = kw(c, i++, "to");
    if (qa >= 0 && !to)
        return cpt_syntax(c, i - 1);
    if (!kw(c, i, to ? "stdout" : "stdin")) {
        if (kw(c, i, "stdin|stdout"))
            return cpt_syntax(c, i);
        return cpt_fail(c, "0A000", "COPY to or from a file is not supported; use STDIN/STDOUT (psql's \\copy)");
    }
    rc = copy_options(c, i + 1, &o);
    if (rc == 0)
        rc = copy_finish(c, &o);
    buf_free(&o.null);
    if (rc)
        return rc;
    c->out->kind = to ? SQL_K_COPY_TO : SQL_K_COPY_FROM;
    if (to && !cp->query) {
        struct buf q;
        buf_init(&q);
        buf_puts(&q, "SELECT ");
        buf_puts(&q, cp->columns ? cp->columns : "*");
        buf_puts(&q, " FROM ");
        buf_puts(&q, cp->table);
        cp->query = cpt_steal_str(c, &q);
    }
    return 0;
}

static int h_misc(struct ctx *c)
{
    if (kw(c, 0, "checkpoint|listen|unlisten|notify|lock")) {
        c->out->kind = SQL_K_NOOP;
        cpt_set_tag(c, kw(c, 0, "lock") ? "LOCK TABLE" : "", kw(c, 0, "lock") ? -1 : 0);
        return 0;
    }
    if (kw(c, 0, "discard")) {
        if (kw(c, 1, "all") && c->end == 2) {
            c->out->kind = SQL_K_DISCARD;
            cpt_set_tag(c, "DISCARD ALL", -1);
            return 0;
        }
        if (kw(c, 1, "plans|sequences") && c->end == 2) {
            c->out->kind = SQL_K_NOOP;
            cpt_set_tag(c, "DISCARD", 1);
            return 0;
        }
        if (kw(c, 1, "temp|temporary"))
            return cpt_fail(c, "0A000", "DISCARD TEMP is not supported");
        return cpt_syntax(c, 1);
    }
    if (kw(c, 0, "deallocate")) {
        int i = kw(c, 1, "prepare") ? 2 : 1;
        c->out->kind = SQL_K_DEALLOCATE;
        cpt_set_tag(c, kw(c, i, "all") ? "DEALLOCATE ALL" : "DEALLOCATE", -1);
        if (!is_name(c, i))
            return cpt_syntax(c, i);
        struct buf n;
        buf_init(&n);
        cpt_name_append(c, i, &n);
        c->out->name = cpt_steal_str(c, &n);
        return i + 1 < c->end ? cpt_syntax(c, i + 1) : 0;
    }
    if (kw(c, 0, "attach|detach"))
        return cpt_fail(c, "0A000", "ATTACH and DETACH are not supported");
    if (kw(c, 0, "prepare|execute"))
        return cpt_fail(c, "0A000", "PREPARE/EXECUTE SQL commands are not supported; use the extended query protocol");
    return cpt_fail(c, "0A000", "DO blocks are not supported");
}

static int h_savepoint(struct ctx *c)
{
    int rel = kw(c, 0, "release");
    c->out->kind = rel ? SQL_K_RELEASE : SQL_K_SAVEPOINT;
    cpt_set_tag(c, rel ? "RELEASE" : "SAVEPOINT", -1);
    return savepoint_name(c, rel && kw(c, 1, "savepoint") ? 2 : 1, rel ? "RELEASE SAVEPOINT " : "SAVEPOINT ");
}

int cpt_command(struct ctx *c)
{
    static const struct {
        const char *words;
        int (*fn)(struct ctx *);
        int rewrite; /* run the expression rewrites first */
    } cmds[] = {
        {"set", h_set, 0},
        {"show|reset", h_show_reset, 0},
        {"begin|start", h_begin, 0},
        {"commit|end", h_commit, 0},
        {"rollback|abort", h_rollback, 0},
        {"savepoint|release", h_savepoint, 0},
        {"copy", h_copy, 0},
        {"drop", h_drop, 1},
        {"truncate", h_truncate, 1},
        {"vacuum", h_vacuum, 1},
        {"analyze|analyse", h_analyze, 1},
        {"explain", h_explain, 1},
        {"reindex", h_reindex, 1},
        {"checkpoint|listen|unlisten|notify|lock|discard|deallocate|attach|detach|prepare|execute|do", h_misc, 0},
    };
    for (size_t k = 0; k < ARRAY_LEN(cmds); k++)
        if (kw(c, 0, cmds[k].words))
            return cmds[k].rewrite && cpt_generic(c, 0, c->end) ? -1 : cmds[k].fn(c);
    return 1;
}
