/* pgwire/codec.c: framing, startup-packet parsing, bounds-checked payload
 * reading and backend message builders for protocol v3. Each builder
 * writes one whole message into a buffer; nothing here does I/O. */
#include "pgwire.h"

#include <stdio.h>
#include <string.h>

int pgw_frame(const char *p, size_t avail, uint32_t max_len, char *type, const char **payload, size_t *plen,
              size_t *total)
{
    if (avail < 5)
        return 0;
    uint32_t len = util_get_u32(p + 1);
    if (len < 4 || len > max_len || len > PGW_MAX_MESSAGE)
        return -1;
    if (avail < (size_t)len + 1)
        return 0;
    *type = p[0];
    *payload = p + 5;
    *plen = len - 4;
    *total = (size_t)len + 1;
    return 1;
}

int pgw_frame_startup(const char *p, size_t avail, size_t *total)
{
    if (avail < 4)
        return 0;
    uint32_t len = util_get_u32(p);
    if (len < 8 || len > PGW_MAX_STARTUP)
        return -1;
    if (avail < len)
        return 0;
    *total = len;
    return 1;
}

int pgw_parse_startup(const char *p, size_t len, struct pgw_startup *out, char *err, size_t errcap)
{
    memset(out, 0, sizeof *out);
    if (len < 8) {
        snprintf(err, errcap, "invalid length of startup packet");
        return -1;
    }
    uint32_t code = util_get_u32(p + 4);
    out->version = code;
    if (code == PGW_SSL_REQUEST || code == PGW_GSSENC_REQUEST) {
        if (len != 8) {
            snprintf(err, errcap, "invalid length of startup packet");
            return -1;
        }
        out->kind = code == PGW_SSL_REQUEST ? PGW_SK_SSL : PGW_SK_GSSENC;
        return 0;
    }
    if (code == PGW_CANCEL_REQUEST) {
        if (len != 16) {
            snprintf(err, errcap, "invalid length of cancel request");
            return -1;
        }
        out->kind = PGW_SK_CANCEL;
        out->cancel_pid = util_get_u32(p + 8);
        out->cancel_key = util_get_u32(p + 12);
        return 0;
    }
    if ((code >> 16) != 3) {
        out->kind = PGW_SK_BAD_VERSION;
        return 0;
    }
    out->kind = PGW_SK_STARTUP;
    /* name\0value\0 ... \0 */
    size_t pos = 8;
    while (pos < len) {
        if (p[pos] == 0) {
            if (pos + 1 != len) {
                snprintf(err, errcap, "invalid startup packet layout: expected terminator as last byte");
                return -1;
            }
            return 0;
        }
        const char *name = p + pos;
        const char *nend = memchr(name, 0, len - pos);
        if (!nend)
            break;
        pos = (size_t)(nend - p) + 1;
        if (pos >= len)
            break;
        const char *val = p + pos;
        const char *vend = memchr(val, 0, len - pos);
        if (!vend)
            break;
        pos = (size_t)(vend - p) + 1;
        if (out->nparams >= PGW_MAX_STARTUP_PARAMS) {
            snprintf(err, errcap, "too many startup parameters");
            return -1;
        }
        out->names[out->nparams] = name;
        out->values[out->nparams] = val;
        out->nparams++;
    }
    snprintf(err, errcap, "invalid startup packet layout: expected terminator as last byte");
    return -1;
}

const char *pgw_startup_get(const struct pgw_startup *s, const char *name)
{
    for (int i = 0; i < s->nparams; i++)
        if (strcmp(s->names[i], name) == 0)
            return s->values[i];
    return NULL;
}

/* ---- reader ---- */

void pgw_rd_init(struct pgw_rd *r, const char *p, size_t len)
{
    r->p = p;
    r->len = len;
    r->pos = 0;
    r->err = 0;
}

static int need(struct pgw_rd *r, size_t n)
{
    if (r->err || r->len - r->pos < n) {
        r->err = 1;
        return 0;
    }
    return 1;
}

uint8_t pgw_rd_u8(struct pgw_rd *r)
{
    if (!need(r, 1))
        return 0;
    return (uint8_t)r->p[r->pos++];
}

int16_t pgw_rd_i16(struct pgw_rd *r)
{
    if (!need(r, 2))
        return 0;
    int16_t v = (int16_t)util_get_u16(r->p + r->pos);
    r->pos += 2;
    return v;
}

int32_t pgw_rd_i32(struct pgw_rd *r)
{
    if (!need(r, 4))
        return 0;
    int32_t v = (int32_t)util_get_u32(r->p + r->pos);
    r->pos += 4;
    return v;
}

const char *pgw_rd_str(struct pgw_rd *r)
{
    if (r->err)
        return NULL;
    const char *s = r->p + r->pos;
    const char *end = memchr(s, 0, r->len - r->pos);
    if (!end) {
        r->err = 1;
        return NULL;
    }
    r->pos = (size_t)(end - r->p) + 1;
    return s;
}

const char *pgw_rd_bytes(struct pgw_rd *r, size_t n)
{
    if (!need(r, n))
        return NULL;
    const char *s = r->p + r->pos;
    r->pos += n;
    return s;
}

int pgw_rd_ok(const struct pgw_rd *r)
{
    return !r->err;
}

int pgw_rd_done(const struct pgw_rd *r)
{
    return !r->err && r->pos == r->len;
}

/* ---- builders ---- */

size_t pgw_begin(struct buf *b, char type)
{
    buf_putc(b, type);
    size_t off = b->len;
    buf_put_u32(b, 0);
    return off;
}

void pgw_end(struct buf *b, size_t off)
{
    buf_set_u32(b, off, (uint32_t)(b->len - off));
}

void pgw_auth_ok(struct buf *b)
{
    size_t o = pgw_begin(b, 'R');
    buf_put_u32(b, 0);
    pgw_end(b, o);
}

void pgw_auth_sasl(struct buf *b, const char *mechanism)
{
    size_t o = pgw_begin(b, 'R');
    buf_put_u32(b, 10);
    buf_putsz(b, mechanism);
    buf_putc(b, 0);
    pgw_end(b, o);
}

void pgw_auth_sasl_continue(struct buf *b, char code, const char *data, size_t len)
{
    size_t o = pgw_begin(b, 'R');
    buf_put_u32(b, (uint32_t)code);
    buf_append(b, data, len);
    pgw_end(b, o);
}

void pgw_param_status(struct buf *b, const char *name, const char *value)
{
    size_t o = pgw_begin(b, 'S');
    buf_putsz(b, name);
    buf_putsz(b, value);
    pgw_end(b, o);
}

void pgw_backend_key(struct buf *b, uint32_t pid, uint32_t key)
{
    size_t o = pgw_begin(b, 'K');
    buf_put_u32(b, pid);
    buf_put_u32(b, key);
    pgw_end(b, o);
}

void pgw_ready(struct buf *b, char status)
{
    size_t o = pgw_begin(b, 'Z');
    buf_putc(b, status);
    pgw_end(b, o);
}

void pgw_command_complete(struct buf *b, const char *tag)
{
    size_t o = pgw_begin(b, 'C');
    buf_putsz(b, tag);
    pgw_end(b, o);
}

void pgw_empty_query(struct buf *b)
{
    pgw_simple(b, 'I');
}

void pgw_simple(struct buf *b, char type)
{
    size_t o = pgw_begin(b, type);
    pgw_end(b, o);
}

void pgw_negotiate_version(struct buf *b, uint32_t newest_minor, int nunrecognized,
                           const char *const *unrecognized)
{
    size_t o = pgw_begin(b, 'v');
    buf_put_u32(b, (3u << 16) | newest_minor);
    buf_put_u32(b, (uint32_t)nunrecognized);
    for (int i = 0; i < nunrecognized; i++)
        buf_putsz(b, unrecognized[i]);
    pgw_end(b, o);
}

int pgw_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char c = p[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t n;
        uint32_t cp;
        if ((c & 0xE0) == 0xC0) {
            n = 1;
            cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            n = 2;
            cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        if (n >= len - i)
            return 0;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xC0) != 0x80)
                return 0;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += n + 1;
    }
    return 1;
}

static void put_field_str(struct buf *b, char code, const char *s)
{
    buf_putc(b, code);
    if (pgw_utf8_valid(s, strlen(s))) {
        buf_putsz(b, s);
        return;
    }
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        buf_putc(b, *p < 0x80 ? (char)*p : '?');
    buf_putc(b, 0);
}

void pgw_error_routine(struct buf *b, char type, const char *severity, const char *sqlstate, const char *msg,
                       const char *detail, const char *hint, const char *routine)
{
    size_t o = pgw_begin(b, type);
    put_field_str(b, 'S', severity);
    put_field_str(b, 'V', severity);
    put_field_str(b, 'C', sqlstate);
    put_field_str(b, 'M', msg);
    if (detail && *detail)
        put_field_str(b, 'D', detail);
    if (hint && *hint)
        put_field_str(b, 'H', hint);
    if (routine && *routine)
        put_field_str(b, 'R', routine);
    buf_putc(b, 0);
    pgw_end(b, o);
}

void pgw_error(struct buf *b, char type, const char *severity, const char *sqlstate, const char *msg,
               const char *detail, const char *hint)
{
    pgw_error_routine(b, type, severity, sqlstate, msg, detail, hint, NULL);
}

void pgw_row_description(struct buf *b, const struct pgw_field *f, int n)
{
    size_t o = pgw_begin(b, 'T');
    buf_put_u16(b, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        buf_putsz(b, f[i].name);
        buf_put_u32(b, f[i].table_oid);
        buf_put_u16(b, (uint16_t)f[i].attnum);
        buf_put_u32(b, f[i].type_oid);
        buf_put_u16(b, (uint16_t)f[i].typlen);
        buf_put_u32(b, (uint32_t)f[i].typmod);
        buf_put_u16(b, (uint16_t)f[i].format);
    }
    pgw_end(b, o);
}

void pgw_copy_response(struct buf *b, char type, int ncols)
{
    size_t o = pgw_begin(b, type);
    buf_putc(b, 0);
    buf_put_u16(b, (uint16_t)ncols);
    for (int i = 0; i < ncols; i++)
        buf_put_u16(b, 0);
    pgw_end(b, o);
}
