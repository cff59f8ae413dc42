/* txlog/classify.c: a small SQLite tokenizer, statement classification
 * (DML / DDL replicated as text / CREATE TABLE AS / local-only / txn
 * control) and the CREATE TABLE ... AS SELECT rewrite. */
#include "txlog_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void txl_lex_init(struct txl_lex *l, const char *s)
{
    memset(l, 0, sizeof *l);
    l->s = s;
}

static int ident_char(unsigned char c)
{
    return isalnum(c) || c == '_' || c == '$' || c >= 0x80;
}

/* Skip whitespace and comments. */
static void skip_space(struct txl_lex *l)
{
    const char *s = l->s;
    for (;;) {
        unsigned char c = (unsigned char)s[l->pos];
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v') {
            l->pos++;
        } else if (c == '-' && s[l->pos + 1] == '-') {
            while (s[l->pos] && s[l->pos] != '\n')
                l->pos++;
        } else if (c == '/' && s[l->pos + 1] == '*') {
            const char *e = strstr(s + l->pos + 2, "*/");
            l->pos = e ? (size_t)(e - s) + 2 : strlen(s);
        } else {
            return;
        }
    }
}

enum txl_tok txl_lex_next(struct txl_lex *l)
{
    skip_space(l);
    const char *s = l->s;
    l->start = l->pos;
    unsigned char c = (unsigned char)s[l->pos];
    if (!c) {
        l->end = l->pos;
        return l->tok = TXL_TOK_END;
    }
    if (c == '"' || c == '`' || c == '[' || c == '\'') {
        char close = c == '[' ? ']' : (char)c;
        l->pos++;
        while (s[l->pos]) {
            if (s[l->pos] == close) {
                if (close != ']' && s[l->pos + 1] == close) {
                    l->pos += 2;
                    continue;
                }
                l->pos++;
                break;
            }
            l->pos++;
        }
        l->end = l->pos;
        return l->tok = c == '\'' ? TXL_TOK_STRING : TXL_TOK_QUOTED;
    }
    if (isdigit(c) || (c == '.' && isdigit((unsigned char)s[l->pos + 1]))) {
        while (isalnum((unsigned char)s[l->pos]) || s[l->pos] == '.')
            l->pos++;
        l->end = l->pos;
        return l->tok = TXL_TOK_NUMBER;
    }
    if (ident_char(c)) {
        /* x'..' blob literal */
        if ((c == 'x' || c == 'X') && s[l->pos + 1] == '\'') {
            l->pos++;
            txl_lex_next(l);
            l->start--;
            return l->tok = TXL_TOK_STRING;
        }
        while (ident_char((unsigned char)s[l->pos]))
            l->pos++;
        l->end = l->pos;
        return l->tok = TXL_TOK_WORD;
    }
    l->pos++;
    l->end = l->pos;
    return l->tok = TXL_TOK_PUNCT;
}

int txl_lex_is(const struct txl_lex *l, const char *kw)
{
    size_t n = strlen(kw);
    return l->tok == TXL_TOK_WORD && l->end - l->start == n && strncasecmp(l->s + l->start, kw, n) == 0;
}

static int punct_is(const struct txl_lex *l, char c)
{
    return l->tok == TXL_TOK_PUNCT && l->s[l->start] == c;
}

const char *txl_kind_name(enum txl_kind k)
{
    switch (k) {
    case TXL_KIND_DML:
        return "dml";
    case TXL_KIND_DDL:
        return "ddl";
    case TXL_KIND_CTAS:
        return "ctas";
    case TXL_KIND_LOCAL:
        return "local";
    case TXL_KIND_TXN:
        return "txn";
    case TXL_KIND_REFUSE:
        return "refuse";
    }
    return "?";
}

/* Is the token spanning [a, b) the name main (quoted or not)? */
static int is_main(const char *s, size_t a, size_t b)
{
    if (b - a >= 2 && strchr("\"`['", s[a]))
        a++, b--;
    return b - a == 4 && strncasecmp(s + a, "main", 4) == 0;
}

/* After CREATE [TEMP] TABLE: skip IF NOT EXISTS and the qualified name.
 * Returns 1 with the name's span when the next token is AS and the table
 * goes to schema main. */
static int ctas_after_table(struct txl_lex *l, int *if_not_exists, size_t *name_start, size_t *name_end)
{
    txl_lex_next(l);
    *if_not_exists = 0;
    if (txl_lex_is(l, "IF")) {
        txl_lex_next(l);
        if (!txl_lex_is(l, "NOT"))
            return 0;
        txl_lex_next(l);
        if (!txl_lex_is(l, "EXISTS"))
            return 0;
        txl_lex_next(l);
        *if_not_exists = 1;
    }
    if (l->tok != TXL_TOK_WORD && l->tok != TXL_TOK_QUOTED && l->tok != TXL_TOK_STRING)
        return 0;
    *name_start = l->start;
    *name_end = l->end;
    txl_lex_next(l);
    int main_schema = 1;
    if (punct_is(l, '.')) {
        main_schema = is_main(l->s, *name_start, *name_end);
        txl_lex_next(l);
        if (l->tok != TXL_TOK_WORD && l->tok != TXL_TOK_QUOTED && l->tok != TXL_TOK_STRING)
            return 0;
        *name_end = l->end;
        txl_lex_next(l);
    }
    return txl_lex_is(l, "AS") && main_schema;
}

enum txl_kind txl_classify(const char *sql)
{
    struct txl_lex l;
    txl_lex_init(&l, sql);
    txl_lex_next(&l);
    if (txl_lex_is(&l, "CREATE")) {
        txl_lex_next(&l);
        int temp = txl_lex_is(&l, "TEMP") || txl_lex_is(&l, "TEMPORARY");
        if (temp)
            txl_lex_next(&l);
        if (txl_lex_is(&l, "TABLE")) {
            int ine;
            size_t a, b;
            if (ctas_after_table(&l, &ine, &a, &b) && !temp)
                return TXL_KIND_CTAS;
        }
        return TXL_KIND_DDL;
    }
    if (txl_lex_is(&l, "DROP") || txl_lex_is(&l, "ALTER") || txl_lex_is(&l, "ANALYZE"))
        return TXL_KIND_DDL;
    if (txl_lex_is(&l, "PRAGMA")) {
        txl_lex_next(&l);
        size_t ns = l.start, ne = l.end;
        txl_lex_next(&l);
        if (punct_is(&l, '.')) {
            txl_lex_next(&l);
            ns = l.start;
            ne = l.end;
            txl_lex_next(&l);
        }
        int assign = punct_is(&l, '=') || punct_is(&l, '(');
        size_t n = ne - ns;
        if (assign && ((n == 12 && strncasecmp(sql + ns, "user_version", 12) == 0) ||
                       (n == 14 && strncasecmp(sql + ns, "application_id", 14) == 0)))
            return TXL_KIND_DDL;
        return TXL_KIND_LOCAL;
    }
    if (txl_lex_is(&l, "VACUUM")) {
        while (txl_lex_next(&l) != TXL_TOK_END)
            if (txl_lex_is(&l, "INTO"))
                return TXL_KIND_LOCAL;
        return TXL_KIND_REFUSE;
    }
    if (txl_lex_is(&l, "REINDEX") || txl_lex_is(&l, "ATTACH") || txl_lex_is(&l, "DETACH"))
        return TXL_KIND_LOCAL;
    if (txl_lex_is(&l, "BEGIN") || txl_lex_is(&l, "COMMIT") || txl_lex_is(&l, "END") ||
        txl_lex_is(&l, "ROLLBACK") || txl_lex_is(&l, "SAVEPOINT") || txl_lex_is(&l, "RELEASE"))
        return TXL_KIND_TXN;
    return TXL_KIND_DML;
}

void txl_ctas_free(struct txl_ctas *c)
{
    util_free(c->create_sql);
    util_free(c->insert_sql);
    c->create_sql = c->insert_sql = NULL;
}

int txl_rewrite_ctas(const char *sql, struct txl_ctas *out, char *err, size_t errcap)
{
    out->create_sql = out->insert_sql = NULL;
    struct txl_lex l;
    txl_lex_init(&l, sql);
    txl_lex_next(&l);
    int ine = 0;
    size_t ns = 0, ne = 0;
    if (!txl_lex_is(&l, "CREATE")) {
        txl_errf(err, errcap, "not a CREATE TABLE ... AS statement");
        return -1;
    }
    txl_lex_next(&l);
    if (!txl_lex_is(&l, "TABLE") || !ctas_after_table(&l, &ine, &ns, &ne)) {
        txl_errf(err, errcap, "not a CREATE TABLE ... AS statement of schema main (others need no rewrite)");
        return -1;
    }
    size_t sel_start = l.end, sel_end = l.end;
    int ntok = 0;
    while (txl_lex_next(&l) != TXL_TOK_END) {
        if (punct_is(&l, ';')) {
            size_t save = l.pos;
            if (txl_lex_next(&l) == TXL_TOK_END || punct_is(&l, ';')) {
                l.pos = save;
                continue;
            }
            txl_errf(err, errcap, "CREATE TABLE ... AS: more than one statement");
            return -1;
        }
        if (l.tok == TXL_TOK_QUOTED || l.tok == TXL_TOK_STRING) {
            char close = sql[l.start] == '[' ? ']' : sql[l.start] == 'x' || sql[l.start] == 'X' ? '\'' : sql[l.start];
            if (l.end - l.start < 2 || sql[l.end - 1] != close) {
                txl_errf(err, errcap, "CREATE TABLE ... AS: unterminated quoted text");
                return -1;
            }
        }
        if (!ntok++)
            sel_start = l.start;
        sel_end = l.end;
    }
    if (!ntok) {
        txl_errf(err, errcap, "CREATE TABLE ... AS: missing SELECT");
        return -1;
    }
    int slen = (int)(sel_end - sel_start), nlen = (int)(ne - ns);
    const char *sel = sql + sel_start, *name = sql + ns;
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    buf_printf(&a, "CREATE TABLE %s%.*s AS SELECT * FROM (\n%.*s\n) LIMIT 0", ine ? "IF NOT EXISTS " : "", nlen,
               name, slen, sel);
    buf_printf(&b, "INSERT INTO %.*s SELECT * FROM (\n%.*s\n)", nlen, name, slen, sel);
    buf_putc(&a, 0);
    buf_putc(&b, 0);
    if (!buf_ok(&a) || !buf_ok(&b)) {
        buf_free(&a);
        buf_free(&b);
        txl_errf(err, errcap, "out of memory");
        return -1;
    }
    out->create_sql = buf_steal(&a, NULL);
    out->insert_sql = buf_steal(&b, NULL);
    return 0;
}
