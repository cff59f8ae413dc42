/* sql/compat.c: PostgreSQL-dialect query strings -> statements SQLite runs.
 * One tokenizer drives splitting and translation; every rewrite is an edit
 * attached to a token, so text inside quotes and comments is never touched. */
#include "compat_int.h"

#include <stdarg.h>
#include <stdio.h>

#define MAX_STMT_LEN ((size_t)1 << 30)

enum { TY_INT, TY_REAL, TY_NUM, TY_TEXT, TY_BLOB, TY_BOOL };
static const char *const ty_name[] = {"INTEGER", "REAL", "NUMERIC", "TEXT", "BLOB", "BOOL"};

/* Statement-boundary state machine (the sqlite3_complete() one, except
 * that a CREATE TRIGGER only swallows ';' after its BEGIN). */
enum { S_START, S_NORMAL, S_EXPLAIN, S_CREATE, S_THEAD, S_TBODY, S_TSEMI, S_TEND };
enum { C_WS, C_SEMI, C_OTHER, C_EXPLAIN, C_CREATE, C_TEMP, C_TRIGGER, C_BEGIN, C_END };

/* ---- characters and tokens ------------------------------------------------ */

static int is_digit(int ch)
{
    return ch >= '0' && ch <= '9';
}
static int is_alpha(int ch)
{
    return (ch | 0x20) >= 'a' && (ch | 0x20) <= 'z';
}
static int is_xdigit(int ch)
{
    return is_digit(ch) || ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f');
}
static int id_start(int ch)
{
    return is_alpha(ch) || ch == '_' || ch >= 0x80;
}
static int id_char(int ch)
{
    return id_start(ch) || is_digit(ch) || ch == '$';
}
static int is_space(int ch)
{
    return ch == ' ' || (ch >= '\t' && ch <= '\r');
}
static int hexval(int ch)
{
    return is_digit(ch) ? ch - '0' : (ch | 0x20) - 'a' + 10;
}

/* i is just past an opening quote; returns the index past the closing
 * one, or 0 when unterminated. dbl: a doubled quote is an escape; bs:
 * backslash escapes the next byte. */
static size_t scan_quote(const char *q, size_t len, size_t i, int close, int dbl, int bs)
{
    while (i < len) {
        int ch = (unsigned char)q[i];
        if (bs && ch == '\\') {
            i += 2;
            continue;
        }
        if (ch == close) {
            if (dbl && i + 1 < len && (unsigned char)q[i + 1] == close) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i++;
    }
    return 0;
}

/* Scan the token at q[p] (p < len). Returns its type and sets *endp, or
 * -1 with *msg set for an unterminated quote or comment. */
static int lex(const char *q, size_t len, size_t p, size_t *endp, const char **msg)
{
    const unsigned char *s = (const unsigned char *)q;
    int ch = s[p], type = T_OP;
    size_t i = p + 1;
    *msg = "unterminated quoted string";
    if (is_space(ch)) {
        while (i < len && is_space(s[i]))
            i++;
        type = T_SPACE;
    } else if (ch == '-' && i < len && s[i] == '-') {
        while (i < len && s[i] != '\n')
            i++;
        type = T_COMMENT;
    } else if (ch == '/' && i < len && s[i] == '*') {
        int depth = 1;
        for (i++; depth > 0 && i + 1 < len;) {
            if (s[i] == '/' && s[i + 1] == '*')
                depth++, i += 2;
            else if (s[i] == '*' && s[i + 1] == '/')
                depth--, i += 2;
            else
                i++;
        }
        *msg = "unterminated /* comment";
        if (depth)
            i = 0;
        type = T_COMMENT;
    } else if (ch == '\'') {
        i = scan_quote(q, len, i, '\'', 1, 0);
        type = T_STRING;
    } else if ((ch | 0x20) == 'e' && i < len && s[i] == '\'') {
        i = scan_quote(q, len, i + 1, '\'', 1, 1);
        type = T_ESTRING;
    } else if (((ch | 0x20) == 'x' || (ch | 0x20) == 'b') && i < len && s[i] == '\'') {
        i = scan_quote(q, len, i + 1, '\'', 1, 0);
        type = T_STRING;
    } else if (ch == '"' || ch == '`' || ch == '[') {
        i = scan_quote(q, len, i, ch == '[' ? ']' : ch, ch != '[', 0);
        *msg = "unterminated quoted identifier";
        type = T_QIDENT;
    } else if (ch == '$' && i < len && is_digit(s[i])) {
        while (i < len && is_digit(s[i]))
            i++;
        type = T_PARAM;
    } else if (ch == '$') {
        size_t k = i;
        if (k < len && id_start(s[k]))
            while (k < len && (id_start(s[k]) || is_digit(s[k])))
                k++;
        if (k < len && s[k] == '$') {
            size_t tl = k + 1 - p;
            const char *e = memmem(q + k + 1, len - k - 1, q + p, tl);
            *msg = "unterminated dollar-quoted string";
            i = e ? (size_t)(e - q) + tl : 0;
            type = T_DOLLAR;
        }
    } else if (is_digit(ch) || (ch == '.' && i < len && is_digit(s[i]))) {
        type = T_NUMBER;
        if (ch == '0' && i + 1 < len && (s[i] | 0x20) == 'x' && is_xdigit(s[i + 1])) {
            for (i++; i < len && is_xdigit(s[i]);)
                i++;
        } else {
            while (i < len && is_digit(s[i]))
                i++;
            if (ch != '.' && i < len && s[i] == '.' && !(i + 1 < len && s[i + 1] == '.'))
                for (i++; i < len && is_digit(s[i]);)
                    i++;
            if (i < len && (s[i] | 0x20) == 'e') {
                size_t k = i + 1;
                if (k < len && (s[k] == '+' || s[k] == '-'))
                    k++;
                if (k < len && is_digit(s[k]))
                    for (i = k; i < len && is_digit(s[i]);)
                        i++;
            }
        }
    } else if (id_start(ch)) {
        while (i < len && id_char(s[i]))
            i++;
        type = T_IDENT;
    } else if (ch == ':') {
        if (i < len && s[i] == ':')
            i++;
    } else if (ch && strchr("+-*/<>=~!@#%^&|?", ch)) {
        while (i < len && s[i] && strchr("+-*/<>=~!@#%^&|?", s[i])) {
            if (i + 1 < len && ((s[i] == '-' && s[i + 1] == '-') || (s[i] == '/' && s[i + 1] == '*')))
                break;
            i++;
        }
        /* PostgreSQL: a multi-char operator may only end in + or - when it
         * holds one of ~!@#%^&|`? (so "=-1" is "=" then "-1"). */
        int special = 0;
        for (size_t k = p; k < i; k++)
            special |= strchr("~!@#%^&|?", s[k]) != NULL;
        while (!special && i - p > 1 && (s[i - 1] == '+' || s[i - 1] == '-'))
            i--;
    }
    if (i == 0)
        return -1;
    *endp = i;
    return type;
}

static int split_class(const char *q, size_t off, size_t len, int type)
{
    if (type == T_SPACE || type == T_COMMENT)
        return C_WS;
    if (type == T_OP)
        return len == 1 && q[off] == ';' ? C_SEMI : C_OTHER;
    if (type != T_IDENT)
        return C_OTHER;
    static const char *const words[] = {"explain", "create", "temp|temporary", "trigger", "begin", "end"};
    for (size_t k = 0; k < ARRAY_LEN(words); k++)
        if (word_in(q + off, len, words[k]))
            return C_EXPLAIN + (int)k;
    return C_OTHER;
}

/* Feed one token class; returns 1 when it is a ';' ending a statement. */
static int split_step(int *st, int cls)
{
    if (cls == C_WS)
        return 0;
    if (cls == C_SEMI && *st != S_TBODY && *st != S_TSEMI) {
        *st = S_START;
        return 1;
    }
    switch (*st) {
    case S_START: *st = cls == C_EXPLAIN ? S_EXPLAIN : cls == C_CREATE ? S_CREATE : S_NORMAL; break;
    case S_EXPLAIN: *st = cls == C_CREATE ? S_CREATE : (cls == C_OTHER || cls == C_BEGIN) ? S_EXPLAIN : S_NORMAL; break;
    case S_CREATE: *st = cls == C_TEMP ? S_CREATE : cls == C_TRIGGER ? S_THEAD : S_NORMAL; break;
    case S_THEAD:
        if (cls == C_BEGIN)
            *st = S_TBODY;
        break;
    case S_TBODY:
        if (cls == C_SEMI)
            *st = S_TSEMI;
        break;
    case S_TSEMI: *st = cls == C_SEMI ? S_TSEMI : cls == C_END ? S_TEND : S_TBODY; break;
    case S_TEND: *st = S_TBODY; break;
    }
    return 0;
}

static int push_span(struct sql_span **v, size_t *cnt, size_t *cap, size_t off, size_t len)
{
    if (*cnt == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        struct sql_span *nv = util_realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv, *cap = nc;
    }
    (*v)[*cnt].off = off;
    (*v)[(*cnt)++].len = len;
    return 0;
}

int sql_split(const char *q, size_t len, struct sql_span **spans, size_t *n, char *err, size_t errcap)
{
    struct sql_span *v = NULL;
    size_t cnt = 0, cap = 0, s0 = 0, e0 = 0, p = 0, e;
    int st = S_START, have = 0;
    const char *msg;
    *spans = NULL;
    *n = 0;
    if (errcap)
        err[0] = 0;
    for (; p < len; p = e) {
        int ty = lex(q, len, p, &e, &msg);
        if (ty < 0) {
            if (errcap)
                snprintf(err, errcap, "%s at character %zu", msg, p + 1);
            util_free(v);
            return -1;
        }
        int cls = split_class(q, p, e - p, ty);
        if (split_step(&st, cls)) {
            if (have && push_span(&v, &cnt, &cap, s0, e0 - s0))
                goto oom;
            have = 0;
        } else if (cls != C_WS) {
            if (!have)
                s0 = p, have = 1;
            e0 = e;
        }
    }
    if (have && push_span(&v, &cnt, &cap, s0, e0 - s0))
        goto oom;
    *spans = v;
    *n = cnt;
    return 0;
oom:
    if (errcap)
        snprintf(err, errcap, "out of memory");
    util_free(v);
    return -1;
}

/* ---- translation context helpers ------------------------------------------ */

int cpt_fail(struct ctx *c, const char *code, const char *fmt, ...)
{
    if (c->state[0])
        return -1; /* keep the first error */
    memcpy(c->state, code, 5);
    c->state[5] = 0;
    if (c->errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->err, c->errcap, fmt, ap);
        va_end(ap);
    }
    return -1;
}

int cpt_syntax(struct ctx *c, int i)
{
    if (i < 0 || i >= c->end)
        return cpt_fail(c, "42601", "syntax error at end of input");
    char near[48];
    const unsigned char *s = (const unsigned char *)c->q + c->t[i].off;
    size_t n = c->t[i].len < 40 ? c->t[i].len : 40;
    while (n < c->t[i].len && n > 0 && (s[n] & 0xC0) == 0x80)
        n--; /* do not cut a UTF-8 sequence */
    for (size_t k = 0; k < n; k++)
        near[k] = s[k] < 0x20 || s[k] == 0x7f ? '?' : (char)s[k];
    memcpy(near + n, n < c->t[i].len ? "..." : "", n < c->t[i].len ? 4 : 1);
    return cpt_fail(c, "42601", "syntax error at or near \"%s\"", near);
}

static int is_lit(const struct ctx *c, int i)
{
    int ty = i >= 0 && i < c->end ? c->t[i].type : 0;
    return ty == T_STRING || ty == T_ESTRING || ty == T_DOLLAR || ty == T_NUMBER || ty == T_PARAM;
}

/* Append a name's value: unquoted lower-cased, quoted ones unescaped. */
void cpt_name_append(const struct ctx *c, int i, struct buf *o)
{
    const char *s = c->q + c->t[i].off;
    size_t n = c->t[i].len;
    if (c->t[i].type == T_IDENT) {
        for (size_t k = 0; k < n; k++)
            buf_putc(o, (char)lower((unsigned char)s[k]));
        return;
    }
    for (size_t k = 1; k + 1 < n; k++) {
        buf_putc(o, s[k]);
        if (s[k] == s[0] && s[0] != '[')
            k++;
    }
}

/* A name's value in a fixed buffer (truncated), for comparisons. */
void cpt_name_lower(const struct ctx *c, int i, char *dst, size_t cap)
{
    const char *s = c->q + c->t[i].off;
    size_t n = c->t[i].len, d = 0, qt = c->t[i].type == T_QIDENT;
    for (size_t k = qt; k + qt < n && d + 1 < cap; k++) {
        dst[d++] = qt ? s[k] : (char)lower((unsigned char)s[k]);
        if (qt && s[k] == s[0] && s[0] != '[')
            k++;
    }
    dst[d] = 0;
}

int cpt_buf_check(struct ctx *c, const struct buf *b)
{
    if (buf_ok(b))
        return 0;
    c->oom = 1;
    return -1;
}

char *cpt_steal_str(struct ctx *c, struct buf *b)
{
    buf_putc(b, 0);
    if (!buf_ok(b)) {
        c->oom = 1;
        buf_free(b);
        return NULL;
    }
    return buf_steal(b, NULL);
}

void cpt_set_str(struct ctx *c, char **dst, const char *s)
{
    util_free(*dst);
    if (!(*dst = util_strdup(s)))
        c->oom = 1;
}

/* tag = prefix, then " " and token i upper-cased when i is an identifier. */
void cpt_set_tag(struct ctx *c, const char *prefix, int i)
{
    char *tg = c->out->tag;
    size_t cap = sizeof c->out->tag, n;
    snprintf(tg, cap, "%s", prefix);
    n = strlen(tg);
    if (i < 0 || i >= c->end || c->t[i].type != T_IDENT)
        return;
    if (n && n + 1 < cap)
        tg[n++] = ' ';
    for (uint32_t k = 0; k < c->t[i].len && n + 1 < cap; k++) {
        int ch = (unsigned char)c->q[c->t[i].off + k];
        tg[n++] = (char)(ch >= 'a' && ch <= 'z' ? ch - 32 : ch);
    }
    tg[n] = 0;
}

static void add_edit(struct ctx *c, int i, int kind, const char *s, size_t n)
{
    if (c->ned == c->edcap) {
        int ncap = c->edcap ? c->edcap * 2 : 32;
        struct edit *ne = util_realloc(c->ed, (size_t)ncap * sizeof *ne);
        if (!ne) {
            c->oom = 1;
            return;
        }
        c->ed = ne, c->edcap = ncap;
    }
    size_t off = c->arena.len;
    buf_append(&c->arena, s, n);
    if (!buf_ok(&c->arena)) {
        c->oom = 1;
        return;
    }
    c->ed[c->ned] = (struct edit){c->t[i].ed, (uint8_t)kind, (uint32_t)off, (uint32_t)n};
    c->t[i].ed = c->ned++;
}

void cpt_replace(struct ctx *c, int i, const char *s)
{
    add_edit(c, i, E_REPLACE, s, strlen(s));
}
static void before(struct ctx *c, int i, const char *s)
{
    add_edit(c, i, E_BEFORE, s, strlen(s));
}
static void after(struct ctx *c, int i, const char *s)
{
    add_edit(c, i, E_AFTER, s, strlen(s));
}

void cpt_del(struct ctx *c, int a, int b)
{
    for (; a < b && a < c->nt; a++)
        c->t[a].flags |= F_DEL;
}

/* Append output text, keeping tokens that became adjacent apart. */
void cpt_put(struct buf *o, const char *p, size_t n)
{
    if (!n)
        return;
    if (o->len) {
        int a = (unsigned char)o->data[o->len - 1], b = (unsigned char)p[0];
        if ((id_char(a) && id_char(b)) || (a == '-' && b == '-') || (a == '/' && b == '*') ||
            (a == '\'' && b == '\'') || (a == '"' && b == '"'))
            buf_putc(o, ' ');
    }
    buf_append(o, p, n);
}

/* Emit tokens [a, b) with their edits; comments become one space. */
void cpt_emit(const struct ctx *c, int a, int b, struct buf *o)
{
    int pending = 0; /* a gap before deleted tokens, owed as one space */
    for (int i = a; i < b; i++) {
        const struct tok *t = &c->t[i];
        const struct edit *rep = NULL;
        int nafter = 0;
        size_t pe = (size_t)c->t[i > a ? i - 1 : i].off + c->t[i > a ? i - 1 : i].len;
        if (i > a && t->off > pe && ((t->flags | c->t[i - 1].flags) & F_DEL)) {
            pending = 1;
        } else if (i > a && t->off > pe) {
            cpt_put(o, t->flags & F_CMT ? " " : c->q + pe, t->flags & F_CMT ? 1 : t->off - pe);
            pending = 0;
        }
        if (pending && (t->ed >= 0 || !(t->flags & F_DEL))) {
            char nx = t->ed >= 0 ? c->arena.data[c->ed[t->ed].off] : c->q[t->off];
            if (o->len && !strchr("([", o->data[o->len - 1]) && !strchr(")],;", nx))
                cpt_put(o, " ", 1);
            pending = 0;
        }
        for (int e = t->ed; e >= 0; e = c->ed[e].next) {
            if (c->ed[e].kind == E_BEFORE)
                cpt_put(o, c->arena.data + c->ed[e].off, c->ed[e].len);
            else if (c->ed[e].kind == E_REPLACE && !rep)
                rep = &c->ed[e];
            else if (c->ed[e].kind == E_AFTER)
                nafter++;
        }
        if (!(t->flags & F_DEL))
            cpt_put(o, rep ? c->arena.data + rep->off : c->q + t->off, rep ? rep->len : t->len);
        for (int k = nafter - 1; k >= 0; k--) { /* oldest first */
            int seen = 0;
            for (int e = t->ed; e >= 0; e = c->ed[e].next)
                if (c->ed[e].kind == E_AFTER && seen++ == k)
                    cpt_put(o, c->arena.data + c->ed[e].off, c->ed[e].len);
        }
    }
}

char *cpt_emit_str(struct ctx *c, int a, int b)
{
    struct buf o;
    buf_init(&o);
    cpt_emit(c, a, b, &o);
    return cpt_steal_str(c, &o);
}

/* ---- literals ---------------------------------------------------------------- */

static void put_utf8(struct buf *o, uint32_t cp)
{
    if (cp < 0x80) {
        buf_putc(o, (char)cp);
    } else if (cp < 0x800) {
        buf_putc(o, (char)(0xC0 | (cp >> 6)));
        buf_putc(o, (char)(0x80 | (cp & 0x3F)));
    } else if (cp < 0x10000) {
        buf_putc(o, (char)(0xE0 | (cp >> 12)));
        buf_putc(o, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(o, (char)(0x80 | (cp & 0x3F)));
    } else {
        buf_putc(o, (char)(0xF0 | (cp >> 18)));
        buf_putc(o, (char)(0x80 | ((cp >> 12) & 0x3F)));
        buf_putc(o, (char)(0x80 | ((cp >> 6) & 0x3F)));
        buf_putc(o, (char)(0x80 | (cp & 0x3F)));
    }
}

/* Read exactly n hex digits at s[*k..]; -1 when missing. */
static long hexn(const char *s, size_t len, size_t *k, int n)
{
    long v = 0;
    for (int d = 0; d < n; d++, (*k)++) {
        if (*k >= len || !is_xdigit((unsigned char)s[*k]))
            return -1;
        v = v * 16 + hexval((unsigned char)s[*k]);
    }
    return v;
}

/* Decode the body of an E'...' string (backslash escapes) into o. */
static int decode_e(struct ctx *c, const char *s, size_t n, struct buf *o)
{
    for (size_t k = 0; k < n; k++) {
        int ch = (unsigned char)s[k];
        long v;
        if (ch == '\'') { /* a doubled quote */
            buf_putc(o, '\'');
            k++;
            continue;
        }
        if (ch != '\\' || k + 1 >= n) {
            buf_putc(o, (char)ch);
            continue;
        }
        ch = (unsigned char)s[++k];
        switch (ch) {
        case 'b': v = 8; break;
        case 'f': v = 12; break;
        case 'n': v = 10; break;
        case 'r': v = 13; break;
        case 't': v = 9; break;
        case 'x':
            if (k + 1 >= n || !is_xdigit((unsigned char)s[k + 1])) {
                v = 'x';
                break;
            }
            v = hexval((unsigned char)s[++k]);
            if (k + 1 < n && is_xdigit((unsigned char)s[k + 1]))
                v = v * 16 + hexval((unsigned char)s[++k]);
            break;
        case 'u':
        case 'U': {
            size_t p = k + 1;
            v = hexn(s, n, &p, ch == 'u' ? 4 : 8);
            if (v >= 0xD800 && v <= 0xDBFF) { /* surrogate pair */
                long lo = -1;
                if (p + 1 < n && s[p] == '\\' && (s[p + 1] == 'u' || s[p + 1] == 'U')) {
                    p += 2;
                    lo = hexn(s, n, &p, s[p - 1] == 'u' ? 4 : 8);
                }
                v = lo >= 0xDC00 && lo <= 0xDFFF ? 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00) : -1;
            }
            if (v < 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
                return cpt_fail(c, "22025", "invalid Unicode escape value");
            if (v == 0)
                return cpt_fail(c, "22021", "invalid byte sequence for encoding \"UTF8\": 0x00");
            put_utf8(o, (uint32_t)v);
            k = p - 1;
            continue;
        }
        default:
            if (ch >= '0' && ch <= '7') {
                v = ch - '0';
                for (int d = 0; d < 2 && k + 1 < n && s[k + 1] >= '0' && s[k + 1] <= '7'; d++)
                    v = v * 8 + (s[++k] - '0');
                v &= 0xFF;
            } else {
                v = ch;
            }
        }
        if (v == 0)
            return cpt_fail(c, "22021", "invalid byte sequence for encoding \"UTF8\": 0x00");
        buf_putc(o, (char)v);
    }
    return 0;
}

/* The value of a string literal token ('..', E'..', $$..$$) into o. */
int cpt_str_val(struct ctx *c, int i, struct buf *o)
{
    if (i >= c->end)
        return cpt_syntax(c, i);
    const char *s = c->q + c->t[i].off;
    size_t n = c->t[i].len;
    if (c->t[i].type == T_STRING && s[0] == '\'') {
        for (size_t k = 1; k + 1 < n; k++) {
            buf_putc(o, s[k]);
            if (s[k] == '\'')
                k++;
        }
        return 0;
    }
    if (c->t[i].type == T_ESTRING)
        return decode_e(c, s + 2, n - 3, o);
    if (c->t[i].type == T_DOLLAR) {
        size_t tl = (size_t)((const char *)memchr(s + 1, '$', n - 1) - s) + 1;
        buf_append(o, s + tl, n - 2 * tl);
        return 0;
    }
    return cpt_syntax(c, i);
}

static void put_literal(struct buf *o, const char *s, size_t n)
{
    buf_putc(o, '\'');
    for (size_t k = 0; k < n; k++) {
        if (s[k] == '\'')
            buf_putc(o, '\'');
        buf_putc(o, s[k]);
    }
    buf_putc(o, '\'');
}

/* A value as PostgreSQL takes it in SET or COPY options: a literal's
 * text, a number as written, an identifier (lower-cased unless quoted). */
int cpt_val_text(struct ctx *c, int i, struct buf *o)
{
    if (is_name(c, i)) {
        cpt_name_append(c, i, o);
        return 0;
    }
    if (i < c->end && c->t[i].type == T_NUMBER) {
        buf_append(o, c->q + c->t[i].off, c->t[i].len);
        return 0;
    }
    return cpt_str_val(c, i, o);
}

/* A Boolean option value at token i (-1: none given, meaning true). */
int cpt_bool_val(struct ctx *c, int i, const char *what, int *dst)
{
    char v[8] = "";
    struct buf b;
    buf_init(&b);
    if (i < 0) { /* option without a value */
        *dst = 1;
        return 0;
    }
    if (cpt_val_text(c, i, &b) || cpt_buf_check(c, &b)) {
        buf_free(&b);
        return -1;
    }
    if (b.len < sizeof v)
        memcpy(v, b.data, b.len), v[b.len] = 0;
    buf_free(&b);
    if (word_in(v, strlen(v), "true|on|1|yes|t|y"))
        *dst = 1;
    else if (word_in(v, strlen(v), "false|off|0|no|f|n"))
        *dst = 0;
    else if (!strcmp(what, "HEADER") && word_in(v, strlen(v), "match"))
        return cpt_fail(c, "0A000", "COPY HEADER MATCH is not supported");
    else
        return cpt_fail(c, "22023", "%s requires a Boolean value", what);
    return 0;
}

/* ---- expression-level rewrites ---------------------------------------------- */

/* Map the type name at i (before end) to a SQLite type; *next is past it.
 * Returns TY_*, -1 when there is no type name, -2 for an array type. */
static int parse_type(const struct ctx *c, int i, int end, int *next)
{
    char nm[32];
    int ty = TY_TEXT;
    if (kw(c, i, "pg_catalog") && op(c, i + 1, "."))
        i += 2;
    if (i >= end || !is_name(c, i) || c->q[c->t[i].off] == '[')
        return -1;
    cpt_name_lower(c, i, nm, sizeof nm);
    size_t n = strlen(nm);
    if (word_in(nm, n,
                "int|int2|int4|int8|integer|smallint|bigint|smallserial|serial|bigserial|serial2|serial4|"
                "serial8|oid"))
        ty = TY_INT;
    else if (word_in(nm, n, "real|float|float4|float8|double"))
        ty = TY_REAL;
    else if (word_in(nm, n, "numeric|decimal"))
        ty = TY_NUM;
    else if (word_in(nm, n, "bool|boolean"))
        ty = TY_BOOL;
    else if (word_in(nm, n, "bytea"))
        ty = TY_BLOB;
    i++;
    if (!strcmp(nm, "double") && kw(c, i, "precision"))
        i++;
    else if (word_in(nm, n, "character|char|nchar|bit") && kw(c, i, "varying"))
        i++;
    else if (!strcmp(nm, "national") && kw(c, i, "character|char"))
        i += kw(c, i + 1, "varying") ? 2 : 1;
    if (i < end && op(c, i, "(") && c->t[i].match > i && c->t[i].match < end)
        i = c->t[i].match + 1;
    if (word_in(nm, n, "time|timestamp") && kw(c, i, "with|without") && kw(c, i + 1, "time") && kw(c, i + 2, "zone"))
        i += 3;
    if (i < end && c->t[i].type == T_QIDENT && c->q[c->t[i].off] == '[')
        return -2;
    *next = i;
    return ty;
}

/* Start of the dotted name ending at j (not before a). */
static int name_start(const struct ctx *c, int a, int j)
{
    while (j - 2 >= a && op(c, j - 1, ".") && is_name(c, j - 2))
        j -= 2;
    return j;
}

#define NONFUNC                                                                                                        \
    "select|where|and|or|not|in|on|as|from|values|then|else|when|case|by|returning|set|into|is|like|ilike|"            \
    "glob|between|having|limit|offset|union|intersect|except|join|using|distinct|with|all|any|some|do|"                \
    "over|filter|escape|default|check|key|references|table|return"

/* Types whose PostgreSQL input syntax CAST cannot express: a function of
 * the db layer converts them (orbit_bool('t') = 1, orbit_bytea('\\x41') =
 * X'41'). */
static const char *wrap_fn(int ty)
{
    return ty == TY_BOOL ? "orbit_bool(" : ty == TY_BLOB ? "orbit_bytea(" : NULL;
}

/* expr::type at token i (the "::") -> CAST(expr AS type) / orbit_bool(expr). */
static int cast(struct ctx *c, int a, int *ip)
{
    int i = *ip, j = i - 1, s, nx;
    if (j < a)
        return cpt_syntax(c, i);
    if (j == c->cast_end) {
        s = c->cast_start;
    } else if (op(c, j, ")")) {
        s = c->t[j].match;
        if (s < a)
            return cpt_syntax(c, i);
        if (s - 1 >= a && is_name(c, s - 1) && !kw(c, s - 1, NONFUNC))
            s = name_start(c, a, s - 1);
    } else if (kw(c, j, "end") && c->t[j].match >= a) {
        s = c->t[j].match;
    } else if (is_lit(c, j)) {
        s = j;
    } else if (is_name(c, j) && !kw(c, j, NONFUNC)) {
        s = name_start(c, a, j);
    } else {
        return cpt_syntax(c, i);
    }
    int ty = parse_type(c, i + 1, c->end, &nx);
    if (ty == -2)
        return cpt_fail(c, "0A000", "array types are not supported");
    if (ty < 0)
        return cpt_syntax(c, i + 1);
    char tail[24];
    const char *fn = wrap_fn(ty);
    snprintf(tail, sizeof tail, fn ? ")" : " AS %s)", ty_name[ty]);
    before(c, s, fn ? fn : "CAST(");
    cpt_replace(c, i, tail);
    cpt_del(c, i + 1, nx);
    c->cast_start = s;
    c->cast_end = nx - 1;
    *ip = nx - 1;
    return 0;
}

/* CAST(expr AS type): map the type like "::" does. */
static void explicit_cast(struct ctx *c, int i)
{
    int m = c->t[i + 1].match, as = -1, nx;
    if (m < 0)
        return;
    for (int j = i + 2; j < m; j = skip_tok(c, j))
        if (kw(c, j, "as"))
            as = j;
    if (as < 0)
        return;
    int ty = parse_type(c, as + 1, m, &nx);
    if (ty < 0 || nx != m)
        return;
    if (wrap_fn(ty)) {
        cpt_replace(c, i, ty == TY_BOOL ? "orbit_bool" : "orbit_bytea");
        cpt_del(c, as, m);
    } else {
        cpt_replace(c, as + 1, ty_name[ty]);
        cpt_del(c, as + 2, m);
    }
}

/* $n -> ?n */
static int param(struct ctx *c, int i)
{
    const char *s = c->q + c->t[i].off;
    long v = 0;
    for (uint32_t k = 1; k < c->t[i].len && v <= 65535; k++)
        v = v * 10 + (s[k] - '0');
    if (v < 1 || v > 65535)
        return cpt_fail(c, "42P02", "there is no parameter $%.*s", c->t[i].len > 12 ? 12 : (int)c->t[i].len - 1, s + 1);
    if (v > c->out->max_param)
        c->out->max_param = (int)v;
    char tmp[16];
    snprintf(tmp, sizeof tmp, "?%ld", v);
    cpt_replace(c, i, tmp);
    return 0;
}

/* E'..' and $$..$$ -> a plain '..' literal. */
static int literal(struct ctx *c, int i)
{
    struct buf v, l;
    buf_init(&v);
    buf_init(&l);
    int rc = cpt_str_val(c, i, &v);
    if (rc == 0) {
        put_literal(&l, v.data ? v.data : "", v.len);
        if (!buf_ok(&v) || !buf_ok(&l))
            c->oom = 1;
        else
            add_edit(c, i, E_REPLACE, l.data, l.len);
    }
    buf_free(&v);
    buf_free(&l);
    return rc;
}

/* FOR UPDATE / SHARE / NO KEY UPDATE / KEY SHARE [OF t, ..] [NOWAIT | SKIP
 * LOCKED] -> removed (SQLite serializes writers). Returns the last index. */
static int lock_clause(struct ctx *c, int i)
{
    int j = i + 1;
    if (kw(c, j, "update|share"))
        j++;
    else if (kw(c, j, "no") && kw(c, j + 1, "key") && kw(c, j + 2, "update"))
        j += 3;
    else if (kw(c, j, "key") && kw(c, j + 1, "share"))
        j += 2;
    else
        return i;
    if (kw(c, j, "of"))
        for (j = skip_name(c, j + 1); op(c, j, ",") && is_name(c, j + 1);)
            j = skip_name(c, j + 1);
    if (kw(c, j, "nowait"))
        j++;
    else if (kw(c, j, "skip") && kw(c, j + 1, "locked"))
        j += 2;
    cpt_del(c, i, j);
    return j - 1;
}

static void ident_rules(struct ctx *c, int *ip)
{
    int i = *ip;
    if (kw(c, i, "current_user|session_user|current_role|current_catalog|current_schema") && !op(c, i + 1, "(") &&
        !op(c, i - 1, ".") && !op(c, i + 1, ".")) {
        char tmp[24];
        cpt_name_lower(c, i, tmp, sizeof tmp - 2);
        strcat(tmp, "()");
        cpt_replace(c, i, tmp);
    } else if (kw(c, i, "date|time|timestamp|timestamptz") && !op(c, i - 1, ".") && i + 1 < c->end &&
               (c->t[i + 1].type == T_ESTRING || c->t[i + 1].type == T_DOLLAR ||
                (c->t[i + 1].type == T_STRING && c->q[c->t[i + 1].off] == '\''))) { /* a typed literal, date '...' */
        cpt_del(c, i, i + 1);
        before(c, i + 1, "CAST(");
        after(c, i + 1, " AS TEXT)");
    } else if (kw(c, i, "ilike")) {
        cpt_replace(c, i, "LIKE");
    } else if (kw(c, i, "cast") && op(c, i + 1, "(")) {
        explicit_cast(c, i);
    } else if (kw(c, i, "pg_catalog") && op(c, i + 1, ".") && is_name(c, i + 2) && op(c, i + 3, "(")) {
        cpt_del(c, i, i + 2);
    } else if (kw(c, i, "public") && op(c, i + 1, ".") && is_name(c, i + 2) && !op(c, i - 1, ".")) {
        cpt_del(c, i, i + 2);
    } else if (kw(c, i, "only") && kw(c, i - 1, "from|update|join|table") && is_name(c, i + 1)) {
        cpt_del(c, i, i + 1);
    } else if (kw(c, i, "collate")) {
        int j = i + 1;
        if (kw(c, j, "pg_catalog") && op(c, j + 1, ".")) {
            cpt_del(c, j, j + 2);
            j += 2;
        }
        char nm[16];
        if (is_name(c, j)) {
            cpt_name_lower(c, j, nm, sizeof nm);
            if (word_in(nm, strlen(nm), "c|posix|default|ucs_basic"))
                cpt_replace(c, j, "BINARY");
        }
    } else if (kw(c, i, "for")) {
        *ip = lock_clause(c, i);
    } else if (kw(c, i, "limit") && kw(c, i + 1, "all")) {
        cpt_replace(c, i + 1, "-1");
    }
}

/* Rewrites valid in any statement, over tokens [a, b). */
int cpt_generic(struct ctx *c, int a, int b)
{
    int save = c->end, rc = 0;
    c->end = b;
    for (int i = a; i < b && rc == 0; i++) {
        if (c->t[i].flags & F_DEL)
            continue;
        switch (c->t[i].type) {
        case T_PARAM: rc = param(c, i); break;
        case T_ESTRING:
        case T_DOLLAR: rc = literal(c, i); break;
        case T_OP:
            if (op(c, i, "::"))
                rc = cast(c, a, &i);
            break;
        case T_IDENT: ident_rules(c, &i); break;
        }
    }
    c->end = save;
    return rc;
}

/* Finish a statement SQLite runs: out->sql = tokens [a, end). */
int cpt_finish(struct ctx *c, int a)
{
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_emit_str(c, a, c->end);
    return 0;
}

/* ---- statements ----------------------------------------------------------------- */

static int h_query(struct ctx *c)
{
    const char *tag = "SELECT";
    if (kw(c, 0, "with"))
        for (int i = 1; i < c->end; i = skip_tok(c, i)) {
            if (kw(c, i, "insert|replace")) {
                tag = "INSERT";
                break;
            }
            if (kw(c, i, "update|delete")) {
                tag = kw(c, i, "update") ? "UPDATE" : "DELETE";
                break;
            }
            if (kw(c, i, "select|values"))
                break;
        }
    if (kw(c, 0, "table"))
        cpt_replace(c, 0, "SELECT * FROM");
    cpt_set_tag(c, tag, -1);
    return cpt_finish(c, 0);
}

/* CREATE TABLE column definition [s, e); tpk: token of the single column
 * of a table-level PRIMARY KEY (col), or -1. */
static void coldef(struct ctx *c, int s, int e, int tpk)
{
    const char *stop = "constraint|not|null|default|primary|unique|check|references|collate|generated";
    if (s >= e || kw(c, s, "constraint|primary|unique|check|foreign|exclude|like"))
        return;
    int te = s + 1, pk = 0, identity = 0;
    while (te < e && !kw(c, te, stop))
        te = skip_tok(c, te);
    for (int k = te; k < e;) {
        if (kw(c, k, "primary") && kw(c, k + 1, "key")) {
            pk = 1;
        } else if (kw(c, k, "generated")) { /* identity columns: INTEGER PRIMARY KEY does it */
            int g = k + 1;
            g += kw(c, g, "always") ? 1 : kw(c, g, "by") && kw(c, g + 1, "default") ? 2 : 0;
            if (g > k + 1 && kw(c, g, "as") && kw(c, g + 1, "identity")) {
                g += 2;
                if (op(c, g, "("))
                    g = skip_tok(c, g);
                cpt_del(c, k, g);
                identity = 1;
                k = g;
                continue;
            }
        } else if (kw(c, k, "default")) {
            int d0 = k + 1, d1 = d0;
            while (d1 < e && !(d1 > d0 && kw(c, d1, stop)))
                d1 = skip_tok(c, d1);
            int n = d1 - d0;
            if (n == 3 && kw(c, d0, "now") && op(c, d0 + 1, "(") && op(c, d0 + 2, ")")) {
                cpt_replace(c, d0, "CURRENT_TIMESTAMP");
                cpt_del(c, d0 + 1, d0 + 3);
            } else if (n > 0 &&
                       !(n == 1 && (is_lit(c, d0) || c->t[d0].type == T_STRING ||
                                    kw(c, d0, "null|true|false|current_timestamp|current_date|current_time"))) &&
                       !(n == 2 && (op(c, d0, "-") || op(c, d0, "+")) && c->t[d0 + 1].type == T_NUMBER) &&
                       !(op(c, d0, "(") && c->t[d0].match == d1 - 1)) {
                before(c, d0, "(");
                after(c, d1 - 1, ")");
            }
            k = d1;
            continue;
        }
        k = skip_tok(c, k);
    }
    char nm[64], pn[64];
    if (tpk >= 0) {
        cpt_name_lower(c, s, nm, sizeof nm);
        cpt_name_lower(c, tpk, pn, sizeof pn);
        pk |= !strcmp(nm, pn);
    }
    if (te != s + 2 || !is_name(c, s + 1))
        return;
    cpt_name_lower(c, s + 1, nm, sizeof nm);
    if (word_in(nm, strlen(nm), "smallserial|serial|serial2|serial4"))
        cpt_replace(c, s + 1, "INTEGER");
    else if (word_in(nm, strlen(nm), "bigserial|serial8"))
        cpt_replace(c, s + 1, pk ? "INTEGER" : "BIGINT");
    else if (identity && pk && word_in(nm, strlen(nm), "int|integer|int2|int4|int8|smallint|bigint"))
        cpt_replace(c, s + 1, "INTEGER");
}

static int create_table(struct ctx *c, int i)
{
    cpt_set_tag(c, "CREATE TABLE", -1);
    if (kw(c, i, "if") && kw(c, i + 1, "not") && kw(c, i + 2, "exists"))
        i += 3;
    int n = skip_name(c, i);
    if (n == i)
        return cpt_syntax(c, i);
    i = n;
    if (kw(c, i, "of|partition"))
        return cpt_fail(c, "0A000", "CREATE TABLE ... %s is not supported", kw(c, i, "of") ? "OF" : "PARTITION OF");
    if (op(c, i, "(") && c->t[i].match > i) {
        int rp = c->t[i].match, tpk = -1;
        for (int k = i + 1; k < rp; k = skip_tok(c, k))
            if (kw(c, k, "primary") && kw(c, k + 1, "key") && op(c, k + 2, "(") && is_name(c, k + 3) &&
                op(c, k + 4, ")"))
                tpk = k + 3;
        for (int s = i + 1; s < rp;) {
            int e = s;
            while (e < rp && !op(c, e, ","))
                e = skip_tok(c, e);
            coldef(c, s, e, tpk);
            s = e + 1;
        }
        i = rp + 1;
    }
    if (kw(c, i, "as")) { /* CREATE TABLE AS: PostgreSQL answers "SELECT n" */
        cpt_set_tag(c, "SELECT", -1);
        if (kw(c, c->end - 3, "with") && kw(c, c->end - 2, "no") && kw(c, c->end - 1, "data"))
            return cpt_fail(c, "0A000", "CREATE TABLE AS ... WITH NO DATA is not supported");
        if (kw(c, c->end - 2, "with") && kw(c, c->end - 1, "data"))
            cpt_del(c, c->end - 2, c->end);
        return cpt_finish(c, 0);
    }
    while (i < c->end) {
        if (kw(c, i, "with") && op(c, i + 1, "(") && c->t[i + 1].match > i) {
            cpt_del(c, i, c->t[i + 1].match + 1);
            i = c->t[i + 1].match + 1;
        } else if (kw(c, i, "with|without") && kw(c, i + 1, "oids")) {
            cpt_del(c, i, i + 2);
            i += 2;
        } else if (kw(c, i, "tablespace|using") && is_name(c, i + 1)) {
            cpt_del(c, i, i + 2);
            i += 2;
        } else if (kw(c, i, "on") && kw(c, i + 1, "commit")) {
            if (!(kw(c, i + 2, "preserve") && kw(c, i + 3, "rows")))
                return cpt_fail(c, "0A000", "ON COMMIT DELETE ROWS / DROP is not supported");
            cpt_del(c, i, i + 4);
            i += 4;
        } else if (kw(c, i, "partition") && kw(c, i + 1, "by")) {
            return cpt_fail(c, "0A000", "PARTITION BY is not supported");
        } else if (kw(c, i, "inherits")) {
            return cpt_fail(c, "0A000", "INHERITS is not supported");
        } else {
            i++;
        }
    }
    return cpt_finish(c, 0);
}

static void put_ident(struct buf *o, const char *s)
{
    int plain = id_start((unsigned char)s[0]);
    for (const char *p = s; *p; p++)
        plain &= id_char((unsigned char)*p) && *p != '$' && !(*p >= 'A' && *p <= 'Z');
    if (plain) {
        buf_puts(o, s);
        return;
    }
    buf_putc(o, '"');
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_putc(o, '"');
        buf_putc(o, *p);
    }
    buf_putc(o, '"');
}

/* PostgreSQL-style generated index name: table[_col...]suffix. */
static void index_name(struct ctx *c, int tname, int lp, int cols, const char *suffix, struct buf *o)
{
    struct buf n;
    buf_init(&n);
    cpt_name_append(c, tname, &n);
    for (int s = lp + 1; cols && s < c->t[lp].match;) {
        int e = s;
        while (e < c->t[lp].match && !op(c, e, ","))
            e = skip_tok(c, e);
        buf_putc(&n, '_');
        if (is_name(c, s) && !op(c, s + 1, "("))
            cpt_name_append(c, s, &n);
        else
            buf_puts(&n, "expr");
        s = e + 1;
    }
    buf_puts(&n, suffix);
    buf_putc(&n, 0);
    if (buf_ok(&n))
        put_ident(o, n.data);
    else
        c->oom = 1;
    buf_free(&n);
}

static int create_index(struct ctx *c, int i)
{
    cpt_set_tag(c, "CREATE INDEX", -1);
    if (kw(c, i, "concurrently"))
        cpt_del(c, i, i + 1), i++;
    if (kw(c, i, "if") && kw(c, i + 1, "not") && kw(c, i + 2, "exists"))
        i += 3;
    int named = !kw(c, i, "on");
    if (named)
        i = skip_name(c, i);
    if (!kw(c, i, "on"))
        return cpt_syntax(c, i);
    int on = i++;
    if (kw(c, i, "only"))
        cpt_del(c, i, i + 1), i++;
    int ts = i;
    i = skip_name(c, i);
    if (i == ts)
        return cpt_syntax(c, i);
    int tn = i - 1;
    if (kw(c, i, "using") && is_name(c, i + 1))
        cpt_del(c, i, i + 2), i += 2;
    if (!op(c, i, "(") || c->t[i].match < 0)
        return cpt_syntax(c, i);
    if (!named) {
        struct buf nm;
        buf_init(&nm);
        index_name(c, tn, i, 1, "_idx", &nm);
        buf_putc(&nm, ' ');
        if (buf_ok(&nm))
            add_edit(c, on, E_BEFORE, nm.data, nm.len);
        else
            c->oom = 1;
        buf_free(&nm);
    }
    for (i = c->t[i].match + 1; i < c->end && !kw(c, i, "where");) {
        if (kw(c, i, "include|with") && op(c, i + 1, "(") && c->t[i + 1].match > i) {
            cpt_del(c, i, c->t[i + 1].match + 1);
            i = c->t[i + 1].match + 1;
        } else if (kw(c, i, "nulls") && kw(c, i + 1, "distinct")) {
            cpt_del(c, i, i + 2), i += 2;
        } else if (kw(c, i, "nulls") && kw(c, i + 1, "not") && kw(c, i + 2, "distinct")) {
            cpt_del(c, i, i + 3), i += 3;
        } else if (kw(c, i, "tablespace") && is_name(c, i + 1)) {
            cpt_del(c, i, i + 2), i += 2;
        } else {
            i++;
        }
    }
    return cpt_finish(c, 0);
}

static int create_view(struct ctx *c, int i, int orrep)
{
    cpt_set_tag(c, "CREATE VIEW", -1);
    int ns = i;
    if (kw(c, i, "if") && kw(c, i + 1, "not") && kw(c, i + 2, "exists"))
        ns = i += 3;
    i = skip_name(c, i);
    if (i == ns)
        return cpt_syntax(c, i);
    if (orrep) { /* SQLite has no CREATE OR REPLACE VIEW */
        struct buf b;
        buf_init(&b);
        buf_puts(&b, "DROP VIEW IF EXISTS ");
        cpt_emit(c, ns, i, &b);
        buf_puts(&b, "; ");
        if (buf_ok(&b))
            add_edit(c, 0, E_BEFORE, b.data, b.len);
        else
            c->oom = 1;
        buf_free(&b);
        cpt_del(c, orrep, orrep + 2);
    }
    if (op(c, i, "("))
        i = skip_tok(c, i);
    if (kw(c, i, "with") && op(c, i + 1, "(") && c->t[i + 1].match > i)
        cpt_del(c, i, c->t[i + 1].match + 1);
    int e = c->end;
    if (kw(c, e - 2, "check") && kw(c, e - 1, "option")) {
        int w = kw(c, e - 3, "cascaded|local") ? e - 4 : e - 3;
        if (kw(c, w, "with"))
            cpt_del(c, w, e);
    }
    return cpt_finish(c, 0);
}

static int h_create(struct ctx *c)
{
    int i = 1, orrep = 0;
    if (kw(c, i, "or") && kw(c, i + 1, "replace"))
        orrep = i, i += 2;
    if (kw(c, i, "global|local") && kw(c, i + 1, "temp|temporary"))
        cpt_del(c, i, i + 1), i++;
    if (kw(c, i, "temp|temporary"))
        i++;
    else if (kw(c, i, "unlogged"))
        cpt_del(c, i, i + 1), i++;
    if (kw(c, i, "unique"))
        i++;
    if (kw(c, i, "table"))
        return create_table(c, i + 1);
    if (kw(c, i, "index"))
        return create_index(c, i + 1);
    if (kw(c, i, "view"))
        return create_view(c, i + 1, orrep);
    if (kw(c, i, "virtual") && kw(c, i + 1, "table"))
        cpt_set_tag(c, "CREATE TABLE", -1);
    else if (kw(c, i, "materialized") && kw(c, i + 1, "view"))
        cpt_set_tag(c, "CREATE MATERIALIZED VIEW", -1);
    else
        cpt_set_tag(c, "CREATE", i);
    return cpt_finish(c, 0);
}

/* ALTER TABLE t ADD [CONSTRAINT c] PRIMARY KEY|UNIQUE (cols) -> a unique
 * index; ADD FOREIGN KEY -> no-op (SQLite cannot add constraints). */
static int h_alter(struct ctx *c)
{
    if (!kw(c, 1, "table")) {
        cpt_set_tag(c, "ALTER", 1);
        return cpt_finish(c, 0);
    }
    cpt_set_tag(c, "ALTER TABLE", -1);
    int i = 2, cname = -1;
    if (kw(c, i, "if") && kw(c, i + 1, "exists"))
        cpt_del(c, i, i + 2), i += 2;
    if (kw(c, i, "only"))
        cpt_del(c, i, i + 1), i++;
    int ts = i;
    i = skip_name(c, i);
    if (i == ts)
        return cpt_syntax(c, i);
    int te = i;
    if (op(c, i, "*"))
        cpt_del(c, i, i + 1), i++;
    if (!kw(c, i, "add"))
        return cpt_finish(c, 0);
    i++;
    if (kw(c, i, "constraint") && is_name(c, i + 1))
        cname = i + 1, i += 2;
    int pk = kw(c, i, "primary") && kw(c, i + 1, "key") && op(c, i + 2, "(");
    int uq = kw(c, i, "unique") && op(c, i + 1, "(");
    if (kw(c, i, "foreign")) {
        c->out->kind = SQL_K_NOOP;
        return 0;
    }
    if (kw(c, i, "check|exclude"))
        return cpt_fail(c, "0A000", "ALTER TABLE ... ADD %s is not supported", kw(c, i, "check") ? "CHECK" : "EXCLUDE");
    if (!pk && !uq)
        return cpt_finish(c, 0);
    int lp = pk ? i + 2 : i + 1, tn = te - 1;
    if (c->t[lp].match < 0)
        return cpt_syntax(c, lp);
    struct buf o;
    buf_init(&o);
    buf_puts(&o, "CREATE UNIQUE INDEX IF NOT EXISTS ");
    if (tn > ts && !(c->t[ts].flags & F_DEL)) { /* schema.table */
        cpt_emit(c, ts, tn - 1, &o);
        buf_putc(&o, '.');
    }
    if (cname >= 0)
        cpt_emit(c, cname, cname + 1, &o);
    else
        index_name(c, tn, lp, uq, pk ? "_pkey" : "_key", &o);
    buf_puts(&o, " ON ");
    cpt_emit(c, tn, tn + 1, &o);
    cpt_emit(c, lp, c->t[lp].match + 1, &o);
    c->out->kind = SQL_K_QUERY;
    c->out->sql = cpt_steal_str(c, &o);
    return 0;
}

static int dispatch(struct ctx *c)
{
    int rc = cpt_command(c);
    if (rc != 1 || (rc = cpt_generic(c, 0, c->end)))
        return rc;
    if (kw(c, 0, "select|values|with|table") || op(c, 0, "("))
        return h_query(c);
    if (kw(c, 0, "create"))
        return h_create(c);
    if (kw(c, 0, "alter"))
        return h_alter(c);
    if (kw(c, 0, "pragma|replace"))
        cpt_set_tag(c, kw(c, 0, "pragma") ? "SELECT" : "INSERT", -1);
    else
        cpt_set_tag(c, "", 0); /* INSERT, UPDATE, DELETE, anything else */
    return cpt_finish(c, 0);
}

/* Tokenize one statement (dropping a trailing ';'), match brackets. */
static int tokenize(struct ctx *c, size_t len)
{
    int st = S_START, done = 0, cmt = 0, sp = 0;
    for (size_t p = 0; p < len;) {
        size_t e;
        const char *msg;
        int ty = lex(c->q, len, p, &e, &msg);
        if (ty < 0)
            return cpt_fail(c, "42601", "%s at character %zu", msg, p + 1);
        int cls = split_class(c->q, p, e - p, ty);
        if (cls == C_WS) {
            cmt |= ty == T_COMMENT;
        } else if (split_step(&st, cls)) {
            done = c->nt > 0;
        } else if (done) {
            return cpt_fail(c, "42601", "cannot insert multiple commands into a prepared statement");
        } else {
            if (c->nt == c->tcap) {
                int ncap = c->tcap ? c->tcap * 2 : 64;
                struct tok *nt = util_realloc(c->t, (size_t)ncap * sizeof *nt);
                if (!nt)
                    return c->oom = 1, -1;
                c->t = nt, c->tcap = ncap;
            }
            c->t[c->nt++] = (struct tok){(uint32_t)p, (uint32_t)(e - p), -1, -1, (uint8_t)ty, cmt ? F_CMT : 0};
            cmt = 0;
        }
        p = e;
    }
    c->end = c->nt;
    int trig = kw(c, 0, "create") && (kw(c, 1, "trigger") || (kw(c, 1, "temp|temporary") && kw(c, 2, "trigger")));
    int *stk = util_malloc(((size_t)c->nt + 1) * sizeof *stk);
    if (!stk)
        return c->oom = 1, -1;
    for (int i = 0; i < c->nt; i++) {
        if (op(c, i, "(") || kw(c, i, "case") || (trig && kw(c, i, "begin"))) {
            stk[sp++] = i;
        } else if (sp && (op(c, i, ")") ? op(c, stk[sp - 1], "(") : kw(c, i, "end") && !op(c, stk[sp - 1], "("))) {
            c->t[i].match = stk[--sp];
            c->t[stk[sp]].match = i;
        }
    }
    util_free(stk);
    for (int i = 0; i < c->nt; i++)
        if ((op(c, i, "(") || op(c, i, ")")) && c->t[i].match < 0)
            return cpt_syntax(c, op(c, i, "(") ? c->nt : i);
    return 0;
}

void sql_stmt_clear(struct sql_stmt *s)
{
    if (!s)
        return;
    util_free(s->sql);
    util_free(s->name);
    util_free(s->set_value);
    util_free(s->copy.table);
    util_free(s->copy.columns);
    util_free(s->copy.query);
    util_free(s->copy.null_str);
    memset(s, 0, sizeof *s);
    s->read_only = -1;
}

int sql_translate(const char *stmt, size_t len, struct sql_stmt *out, char sqlstate[6], char *err, size_t errcap)
{
    struct ctx c;
    memset(&c, 0, sizeof c);
    memset(out, 0, sizeof *out);
    out->read_only = -1;
    sqlstate[0] = 0;
    if (errcap)
        err[0] = 0;
    c.q = stmt, c.out = out, c.state = sqlstate, c.err = err, c.errcap = errcap;
    c.cast_end = -1;
    buf_init(&c.arena);
    int rc;
    if (len >= MAX_STMT_LEN)
        rc = cpt_fail(&c, "54000", "statement is too long");
    else if (memchr(stmt, 0, len))
        rc = cpt_fail(&c, "22021", "invalid byte sequence for encoding \"UTF8\": 0x00");
    else if ((rc = tokenize(&c, len)) == 0 && c.nt > 0)
        rc = dispatch(&c);
    if (c.oom) {
        sqlstate[0] = 0; /* whatever else went wrong, it was for lack of memory */
        rc = cpt_fail(&c, "53200", "out of memory");
    } else if (rc && !sqlstate[0])
        rc = cpt_fail(&c, "XX000", "internal error translating statement");
    util_free(c.t);
    util_free(c.ed);
    buf_free(&c.arena);
    if (rc) {
        sql_stmt_clear(out);
        return -1;
    }
    if (c.nt == 0)
        out->kind = SQL_K_NOOP; /* empty statement: tag "" */
    return 0;
}
