/* sql/copyfmt.c: COPY text and CSV formats, following PostgreSQL's rules:
 * splitting and unescaping input lines into fields, and writing result
 * rows (values formatted like text-format DataRow fields) with escaping. */
#include "sql_int.h"

#include <string.h>

static char delim_of(const struct sql_copy *c)
{
    if (c->delimiter)
        return c->delimiter;
    return c->format == SQL_COPY_CSV ? ',' : '\t';
}

static const char *null_of(const struct sql_copy *c)
{
    if (c->null_str)
        return c->null_str;
    return c->format == SQL_COPY_CSV ? "" : "\\N";
}

static char quote_of(const struct sql_copy *c)
{
    return c->quote ? c->quote : '"';
}

static char escape_of(const struct sql_copy *c)
{
    return c->escape ? c->escape : quote_of(c);
}

static void set_err(char *err, size_t errcap, const char *msg)
{
    if (err && errcap)
        util_strlcpy(err, msg, errcap);
}

static int is_octal(char ch)
{
    return ch >= '0' && ch <= '7';
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Decode the backslash escapes of one text-format field into out.
 * Returns 0, or -1 when the result would contain a NUL byte. */
static int decode_text_field(const char *s, size_t n, struct buf *out)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (ch == '\\' && i + 1 < n) {
            ch = s[++i];
            switch (ch) {
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'n':
                ch = '\n';
                break;
            case 'r':
                ch = '\r';
                break;
            case 't':
                ch = '\t';
                break;
            case 'v':
                ch = '\v';
                break;
            case 'x': {
                int h = i + 1 < n ? hex_digit(s[i + 1]) : -1;
                if (h < 0)
                    break; /* a lone \x is just 'x' */
                int v = h;
                i++;
                if (i + 1 < n && (h = hex_digit(s[i + 1])) >= 0) {
                    v = v * 16 + h;
                    i++;
                }
                ch = (char)v;
                break;
            }
            default:
                if (is_octal(ch)) {
                    int v = ch - '0';
                    for (int k = 0; k < 2 && i + 1 < n && is_octal(s[i + 1]); k++)
                        v = v * 8 + (s[++i] - '0');
                    ch = (char)(v & 0xff);
                }
                break; /* any other escaped character stands for itself */
            }
        }
        if (ch == 0)
            return -1;
        buf_putc(out, ch);
    }
    return 0;
}

static int parse_text(const struct sql_copy *c, const char *line, size_t len, struct buf *storage, size_t *fields,
                      int maxfields, char *err, size_t errcap)
{
    char delim = delim_of(c);
    const char *nul = null_of(c);
    size_t null_len = strlen(nul);
    int nf = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i;
        while (i < len && line[i] != delim)
            i += line[i] == '\\' && i + 1 < len ? 2 : 1;
        if (nf >= maxfields) {
            set_err(err, errcap, "extra data after last expected column");
            return -1;
        }
        if (i - start == null_len && memcmp(line + start, nul, null_len) == 0) {
            fields[nf++] = SIZE_MAX;
        } else {
            fields[nf++] = storage->len;
            if (decode_text_field(line + start, i - start, storage)) {
                set_err(err, errcap, "invalid byte sequence for encoding \"UTF8\": 0x00");
                return -1;
            }
            buf_putc(storage, 0);
        }
        if (i >= len)
            break;
        i++; /* the delimiter */
    }
    return nf;
}

static int parse_csv(const struct sql_copy *c, const char *line, size_t len, struct buf *storage, size_t *fields,
                     int maxfields, char *err, size_t errcap)
{
    char delim = delim_of(c), quote = quote_of(c), esc = escape_of(c);
    const char *nul = null_of(c);
    size_t null_len = strlen(nul);
    int nf = 0;
    size_t i = 0;
    for (;;) {
        size_t start = i, off = storage->len;
        int saw_quote = 0;
        while (i < len && line[i] != delim) {
            char ch = line[i++];
            if (ch != quote) {
                if (ch == 0)
                    goto nul_byte;
                buf_putc(storage, ch);
                continue;
            }
            saw_quote = 1;
            for (;;) {
                if (i >= len) {
                    set_err(err, errcap, "unterminated CSV quoted field");
                    return -1;
                }
                ch = line[i++];
                /* test the escape before the closing quote: they are usually
                 * the same character ("" inside quotes) */
                if (ch == esc && i < len && (line[i] == esc || line[i] == quote)) {
                    buf_putc(storage, line[i++]);
                    continue;
                }
                if (ch == quote)
                    break;
                if (ch == 0)
                    goto nul_byte;
                buf_putc(storage, ch);
            }
        }
        if (nf >= maxfields) {
            set_err(err, errcap, "extra data after last expected column");
            return -1;
        }
        if (!saw_quote && i - start == null_len && memcmp(line + start, nul, null_len) == 0) {
            if (storage->len >= off)
                storage->len = off;
            fields[nf++] = SIZE_MAX;
        } else {
            fields[nf++] = off;
            buf_putc(storage, 0);
        }
        if (i >= len)
            break;
        i++; /* the delimiter */
    }
    return nf;
nul_byte:
    set_err(err, errcap, "invalid byte sequence for encoding \"UTF8\": 0x00");
    return -1;
}

int sql_copy_parse_line(const struct sql_copy *c, const char *line, size_t len, struct buf *storage,
                        size_t *fields, int maxfields, char *err, size_t errcap)
{
    int n;
    if (c->format == SQL_COPY_TEXT)
        n = parse_text(c, line, len, storage, fields, maxfields, err, errcap);
    else if (c->format == SQL_COPY_CSV)
        n = parse_csv(c, line, len, storage, fields, maxfields, err, errcap);
    else {
        set_err(err, errcap, "binary COPY data is not line based");
        return -1;
    }
    if (n >= 0 && !buf_ok(storage)) {
        set_err(err, errcap, "out of memory");
        return -1;
    }
    return n;
}

int sql_copy_csv_complete(const struct sql_copy *c, const char *line, size_t len)
{
    if (c->format == SQL_COPY_TEXT) {
        /* an unpaired trailing backslash escapes the newline itself */
        size_t i = 0;
        while (i < len) {
            if (line[i] == '\\') {
                if (i + 1 >= len)
                    return 0;
                i += 2;
            } else {
                i++;
            }
        }
        return 1;
    }
    if (c->format != SQL_COPY_CSV)
        return 1;
    char quote = quote_of(c), esc = escape_of(c);
    int in_quote = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = line[i];
        if (!in_quote) {
            in_quote = ch == quote;
        } else if (ch == esc && i + 1 < len && (line[i + 1] == esc || line[i + 1] == quote)) {
            i++;
        } else if (ch == quote) {
            in_quote = 0;
        }
    }
    return !in_quote;
}

/* ---- output --------------------------------------------------------------- */

static void put_text_escaped(struct buf *out, const char *s, size_t n, char delim)
{
    size_t run = 0; /* start of the pending unescaped run */
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        char rep = 0;
        if (ch < 0x20) {
            switch (ch) {
            case '\b':
                rep = 'b';
                break;
            case '\f':
                rep = 'f';
                break;
            case '\n':
                rep = 'n';
                break;
            case '\r':
                rep = 'r';
                break;
            case '\t':
                rep = 't';
                break;
            case '\v':
                rep = 'v';
                break;
            default:
                if (ch == (unsigned char)delim)
                    rep = (char)ch;
                break;
            }
        } else if (ch == '\\' || ch == (unsigned char)delim) {
            rep = (char)ch;
        }
        if (!rep)
            continue;
        buf_append(out, s + run, i - run);
        buf_putc(out, '\\');
        buf_putc(out, rep);
        run = i + 1;
    }
    buf_append(out, s + run, n - run);
}

static void put_csv_quoted(struct buf *out, const struct sql_copy *c, const char *s, size_t n, int single)
{
    char delim = delim_of(c), quote = quote_of(c), esc = escape_of(c);
    const char *nul = null_of(c);
    size_t null_len = strlen(nul);
    /* quote a value that would read back as NULL, and a lone \. that would
     * read back as the end-of-data marker */
    int need = (n == null_len && memcmp(s, nul, n) == 0) || (single && n == 2 && s[0] == '\\' && s[1] == '.');
    for (size_t i = 0; i < n && !need; i++)
        need = s[i] == delim || s[i] == quote || s[i] == '\n' || s[i] == '\r';
    if (!need) {
        buf_append(out, s, n);
        return;
    }
    buf_putc(out, quote);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == quote || s[i] == esc)
            buf_putc(out, esc);
        buf_putc(out, s[i]);
    }
    buf_putc(out, quote);
}

static void put_value(struct buf *out, const struct sql_copy *c, const char *s, size_t n, int single)
{
    if (c->format == SQL_COPY_CSV)
        put_csv_quoted(out, c, s, n, single);
    else
        put_text_escaped(out, s, n, delim_of(c));
}

void sql_copy_format_row(const struct sql_copy *c, sqlite3_stmt *st, struct buf *out)
{
    int ncol = sqlite3_column_count(st);
    char delim = delim_of(c);
    struct buf tmp;
    buf_init(&tmp);
    for (int i = 0; i < ncol; i++) {
        if (i)
            buf_putc(out, delim);
        int type = sqlite3_column_type(st, i);
        if (type == SQLITE_NULL) {
            buf_puts(out, null_of(c));
            continue;
        }
        uint32_t oid = sql_decltype_oid(sqlite3_column_decltype(st, i));
        if (!oid)
            oid = sql_value_oid(type);
        buf_reset(&tmp);
        if (sql_value_text(&tmp, st, i, type, oid) || !buf_ok(&tmp)) {
            out->oom = 1;
            break;
        }
        put_value(out, c, tmp.data ? tmp.data : "", tmp.len, ncol == 1);
    }
    buf_putc(out, '\n');
    buf_free(&tmp);
}

void sql_copy_format_header(const struct sql_copy *c, sqlite3_stmt *st, struct buf *out)
{
    int ncol = sqlite3_column_count(st);
    for (int i = 0; i < ncol; i++) {
        if (i)
            buf_putc(out, delim_of(c));
        const char *name = sqlite3_column_name(st, i);
        if (!name) {
            out->oom = 1;
            break;
        }
        put_value(out, c, name, strlen(name), ncol == 1);
    }
    buf_putc(out, '\n');
}
