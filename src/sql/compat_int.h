/* sql/compat_int.h: what compat.c (tokenizer, edits, expression and DDL
 * rewrites) and compat_cmd.c (session, transaction, COPY and maintenance
 * commands) share. Private to those two files; prefix cpt_. */
#ifndef ORBIT_SQL_COMPAT_INT_H
#define ORBIT_SQL_COMPAT_INT_H

#include <string.h>
#include <strings.h>

#include "sql.h"

enum { T_SPACE = 1, T_COMMENT, T_IDENT, T_QIDENT, T_STRING, T_ESTRING, T_DOLLAR, T_NUMBER, T_PARAM, T_OP };
enum { F_CMT = 1, F_DEL = 2 };         /* token flags: comment in the gap before it; deleted */
enum { E_BEFORE, E_REPLACE, E_AFTER }; /* edit kinds */

/* One significant token of the statement being translated (whitespace and
 * comments are the gaps between tokens). Rewrites are edits attached to
 * tokens; output is produced by cpt_emit(). */
struct tok {
    uint32_t off, len;
    int32_t match; /* matching ( ) or CASE/BEGIN ... END, -1 if none */
    int32_t ed;    /* head of this token's edit list (newest first), -1 */
    uint8_t type, flags;
};

struct edit {
    int32_t next;
    uint8_t kind;
    uint32_t off, len; /* text in ctx.arena */
};

struct ctx {
    const char *q;
    struct tok *t;
    int nt, tcap, end; /* end: helpers look at tokens < end */
    struct edit *ed;
    int ned, edcap;
    struct buf arena;
    int oom;
    int cast_end, cast_start; /* last cast rewritten: its last type token, its start */
    struct sql_stmt *out;
    char *state, *err;
    size_t errcap;
};

static inline int lower(int ch)
{
    return ch >= 'A' && ch <= 'Z' ? ch + 32 : ch;
}

/* Is the n-byte word w (case-insensitively) one of the '|'-separated words? */
static inline int word_in(const char *w, size_t n, const char *list)
{
    for (const char *p = list;;) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        if (l == n && strncasecmp(w, p, n) == 0)
            return 1;
        if (!e)
            return 0;
        p = e + 1;
    }
}

/* Token i (before c->end) is an unquoted word from the list. */
static inline int kw(const struct ctx *c, int i, const char *list)
{
    return i >= 0 && i < c->end && c->t[i].type == T_IDENT && word_in(c->q + c->t[i].off, c->t[i].len, list);
}

/* Token i is the operator / punctuation s. */
static inline int op(const struct ctx *c, int i, const char *s)
{
    size_t n = strlen(s);
    return i >= 0 && i < c->end && c->t[i].type == T_OP && c->t[i].len == n && memcmp(c->q + c->t[i].off, s, n) == 0;
}

static inline int is_name(const struct ctx *c, int i)
{
    return i >= 0 && i < c->end && (c->t[i].type == T_IDENT || c->t[i].type == T_QIDENT);
}

/* Past a token, jumping over a whole ( ... ) group. */
static inline int skip_tok(const struct ctx *c, int i)
{
    return op(c, i, "(") && c->t[i].match > i ? c->t[i].match + 1 : i + 1;
}

/* Past a possibly dotted name a.b.c (i itself when there is none). */
static inline int skip_name(const struct ctx *c, int i)
{
    if (!is_name(c, i))
        return i;
    for (i++; op(c, i, ".") && is_name(c, i + 1);)
        i += 2;
    return i;
}

/* Errors: fill SQLSTATE and message (the first error wins); return -1.
 * cpt_syntax: 42601 "syntax error at or near" token i. */
int cpt_fail(struct ctx *c, const char *code, const char *fmt, ...) PRINTF_LIKE(3, 4);
int cpt_syntax(struct ctx *c, int i);
int cpt_buf_check(struct ctx *c, const struct buf *b); /* -1 and c->oom when b failed */

/* Names and values: a name's value (unquoted lower-cased, quoted ones
 * unescaped), a string literal's value, a SET/COPY option value (literal,
 * number or name), a Boolean option value (i < 0: none given = true). */
void cpt_name_append(const struct ctx *c, int i, struct buf *o);
void cpt_name_lower(const struct ctx *c, int i, char *dst, size_t cap);
int cpt_str_val(struct ctx *c, int i, struct buf *o);
int cpt_val_text(struct ctx *c, int i, struct buf *o);
int cpt_bool_val(struct ctx *c, int i, const char *what, int *dst);

/* Output: b's data as a NUL-terminated string (NULL and c->oom on
 * failure); *dst = copy of s; tag = prefix [+ " " + upper(token i)]. */
char *cpt_steal_str(struct ctx *c, struct buf *b);
void cpt_set_str(struct ctx *c, char **dst, const char *s);
void cpt_set_tag(struct ctx *c, const char *prefix, int i);

/* Edits and emission: replace token i's text, delete tokens [a, b),
 * append text keeping tokens apart, emit tokens [a, b) with their edits. */
void cpt_replace(struct ctx *c, int i, const char *s);
void cpt_del(struct ctx *c, int a, int b);
void cpt_put(struct buf *o, const char *p, size_t n);
void cpt_emit(const struct ctx *c, int a, int b, struct buf *o);
char *cpt_emit_str(struct ctx *c, int a, int b);

/* Expression rewrites ($n, casts, literals, ...) over tokens [a, b), and
 * finishing a plain SQLite statement (out->sql = tokens [a, end)). */
int cpt_generic(struct ctx *c, int a, int b);
int cpt_finish(struct ctx *c, int a);

/* compat_cmd.c: BEGIN/COMMIT/ROLLBACK/SAVEPOINT/RELEASE, SET/SHOW/RESET,
 * COPY, DROP, TRUNCATE, VACUUM/ANALYZE, EXPLAIN, REINDEX, no-ops,
 * DISCARD, DEALLOCATE and refused commands. Returns 1 when the statement
 * is none of these, else 0 or -1 (error filled). */
int cpt_command(struct ctx *c);

#endif
