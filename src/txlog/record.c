/* txlog/record.c: record memory and the versioned binary encoding ("OTXL",
 * version, flags, length, varint body, CRC32C); decoding validates every
 * count and length against the bytes present before allocating anything. */
#include "txlog_int.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <zstd.h>

/* ---- CRC32C (Castagnoli, reflected polynomial 0x82F63B78) ----------------
 * Slicing-by-8 tables built once; SSE4.2's crc32 instruction when the CPU
 * has it. */
static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;
static int crc_hw;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
#if defined(__x86_64__) && defined(__GNUC__)
    __builtin_cpu_init();
    crc_hw = __builtin_cpu_supports("sse4.2");
#endif
}

static uint32_t crc_soft(uint32_t c, const unsigned char *p, size_t n)
{
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
            crc_tab[4][lo >> 24] ^ crc_tab[3][hi & 0xff] ^ crc_tab[2][(hi >> 8) & 0xff] ^
            crc_tab[1][(hi >> 16) & 0xff] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--)
        c = (c >> 8) ^ crc_tab[0][(c ^ *p++) & 0xff];
    return c;
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t c, const unsigned char *p, size_t n)
{
    uint64_t c64 = c;
    while (n && ((uintptr_t)p & 7)) {
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
        n--;
    }
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c64 = __builtin_ia32_crc32di(c64, w);
        p += 8;
        n -= 8;
    }
    while (n--)
        c64 = __builtin_ia32_crc32qi((uint32_t)c64, *p++);
    return (uint32_t)c64;
}
#endif

uint32_t txl_crc32c_sw(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    return ~crc_soft(~crc, p, n);
}

uint32_t txl_crc32c(uint32_t crc, const void *p, size_t n)
{
    pthread_once(&crc_once, crc_init);
    uint32_t c = ~crc;
#if defined(__x86_64__) && defined(__GNUC__)
    if (crc_hw)
        return ~crc_sse42(c, p, n);
#endif
    return ~crc_soft(c, p, n);
}

/* ---- record memory -------------------------------------------------------- */

void txl_record_init(struct txl_record *r)
{
    memset(r, 0, sizeof *r);
}

void txl_record_free(struct txl_record *r)
{
    if (r->arena_) {
        util_free(r->arena_);
    } else {
        for (size_t i = 0; i < r->nchanges; i++)
            util_free(r->changes[i].mem_);
        util_free(r->changes);
        for (size_t i = 0; i < r->ntables_; i++)
            util_free(r->tables_[i]);
        util_free(r->tables_);
    }
    txl_record_init(r);
}

int txl_record_has_ddl(const struct txl_record *r)
{
    for (size_t i = 0; i < r->nchanges; i++)
        if (r->changes[i].op == TXL_DDL)
            return 1;
    return 0;
}

/* ---- encoding ----------------------------------------------------------------
 * header: "OTXL" version:u8 flags:u8 body_len:u32be
 * body:   lsn:uv commit_us:uv origin:uv
 *         ntables:uv { len:uv bytes }*
 *         nchanges:uv change*
 * change: opbyte (op | 0x80 when keyed)
 *         row ops: table:uv, then
 *           rowid tables: INSERT new:sv | UPDATE old:sv new:sv | DELETE old:sv
 *           keyed tables: UPDATE/DELETE nkey:uv value*
 *           INSERT/UPDATE: ncol:uv value*
 *         DDL: len:uv bytes
 * value:  tag:u8 (0 NULL, 1 INTEGER sv, 2 REAL 8 bytes be, 3 TEXT / 4 BLOB len:uv bytes)
 * trailer: crc32c:u32be of header and body.
 * uv = unsigned LEB128 (at most 10 bytes), sv = zigzag then uv. */
#define HDR_LEN 10
#define CRC_LEN 4
/* Bodies this large are zstd-compressed (flag TXL_FLAG_ZSTD) when that
 * makes them smaller: Raft checksums, writes and sends every byte of a
 * record before its commit is durable, and a reader that sees the commit
 * waits for that. Small records, the OLTP case, stay as they are. */
#define COMPRESS_MIN (64u * 1024)
#define COMPRESS_LEVEL 1
static const char MAGIC[4] = {'O', 'T', 'X', 'L'};

static void put_uv(struct buf *b, uint64_t v)
{
    unsigned char t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (unsigned char)v;
    buf_append(b, t, n);
}

static void put_sv(struct buf *b, int64_t v)
{
    put_uv(b, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

static int put_value(struct buf *b, const struct txl_value *v)
{
    switch (v->type) {
    case TXL_NULL:
        buf_putc(b, TXL_NULL);
        return 0;
    case TXL_INTEGER:
        buf_putc(b, TXL_INTEGER);
        put_sv(b, v->i);
        return 0;
    case TXL_REAL: {
        uint64_t bits;
        memcpy(&bits, &v->d, 8);
        buf_putc(b, TXL_REAL);
        buf_put_u64(b, bits);
        return 0;
    }
    case TXL_TEXT:
    case TXL_BLOB:
        if (v->n > 0x7fffffffu)
            return -1;
        buf_putc(b, (char)v->type);
        put_uv(b, v->n);
        buf_append(b, v->p, v->n);
        return 0;
    }
    return -1;
}

static int put_values(struct buf *b, const struct txl_value *v, uint32_t n)
{
    if (n == 0 || n > TXL_MAX_COLUMNS || !v)
        return -1;
    put_uv(b, n);
    for (uint32_t i = 0; i < n; i++)
        if (put_value(b, &v[i]))
            return -1;
    return 0;
}

static int valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    return n > 0 && n <= TXL_MAX_NAME;
}

/* Encode the body into out; tables are numbered in order of first use. */
static int encode_body(const struct txl_record *r, struct buf *out)
{
    struct map idx;
    map_init(&idx);
    const char **names = NULL;
    size_t ntab = 0, cap = 0;
    uintptr_t *tix = util_calloc(r->nchanges ? r->nchanges : 1, sizeof *tix);
    int rc = -1;
    if (!tix)
        goto done;
    const char *last = NULL;
    uintptr_t last_ix = 0;
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct txl_change *ch = &r->changes[i];
        if (ch->op == TXL_DDL)
            continue;
        if (ch->table == last && last) {
            tix[i] = last_ix;
            continue;
        }
        if (!valid_name(ch->table))
            goto done;
        void *v = map_get(&idx, ch->table);
        if (!v) {
            if (ntab == cap) {
                size_t nc = cap ? cap * 2 : 8;
                const char **nn = util_realloc(names, nc * sizeof *nn);
                if (!nn)
                    goto done;
                names = nn;
                cap = nc;
            }
            names[ntab++] = ch->table;
            v = (void *)(uintptr_t)ntab;
            if (map_put(&idx, ch->table, v, NULL))
                goto done;
        }
        last = ch->table;
        last_ix = tix[i] = (uintptr_t)v - 1;
    }
    put_uv(out, r->lsn);
    put_uv(out, r->commit_us);
    put_uv(out, r->origin);
    put_uv(out, ntab);
    for (size_t t = 0; t < ntab; t++) {
        size_t n = strlen(names[t]);
        put_uv(out, n);
        buf_append(out, names[t], n);
    }
    put_uv(out, r->nchanges);
    for (size_t i = 0; i < r->nchanges; i++) {
        const struct txl_change *ch = &r->changes[i];
        if (ch->op == TXL_DDL) {
            if (!ch->sql || ch->sql_len == 0 || ch->sql_len > 0x7fffffffu || memchr(ch->sql, 0, ch->sql_len))
                goto done;
            buf_putc(out, TXL_DDL);
            put_uv(out, ch->sql_len);
            buf_append(out, ch->sql, ch->sql_len);
            continue;
        }
        if (ch->op < TXL_INSERT || ch->op > TXL_DELETE || ch->raw_)
            goto done;
        buf_putc(out, (char)(ch->op | (ch->keyed ? 0x80 : 0)));
        put_uv(out, tix[i]);
        if (!ch->keyed) {
            if (ch->op != TXL_INSERT)
                put_sv(out, ch->old_rowid);
            if (ch->op != TXL_DELETE)
                put_sv(out, ch->new_rowid);
        } else if (ch->op != TXL_INSERT && put_values(out, ch->key, ch->nkey)) {
            goto done;
        }
        if (ch->op != TXL_DELETE && put_values(out, ch->newv, ch->ncol))
            goto done;
        if (!buf_ok(out))
            goto done;
    }
    rc = buf_ok(out) ? 0 : -1;
done:
    map_free(&idx);
    util_free(names);
    util_free(tix);
    return rc;
}

/* Compress the body of the record at out->data + start in place when it
 * pays: "lsn:uv raw_len:uv zstd-frame(the rest of the plain body)", so
 * txl_peek_lsn reads the LSN of either form. */
static int compress_body(struct buf *out, size_t start)
{
    unsigned char *body = (unsigned char *)out->data + start + HDR_LEN;
    size_t n = out->len - start - HDR_LEN;
    size_t k = 0; /* the lsn varint */
    while (k < n && (body[k] & 0x80))
        k++;
    if (++k > n)
        return -1;
    size_t rest = n - k;
    size_t cap = ZSTD_compressBound(rest);
    char *z = util_malloc(cap);
    if (!z)
        return 0; /* stays uncompressed */
    size_t zn = ZSTD_compress(z, cap, body + k, rest, COMPRESS_LEVEL);
    if (ZSTD_isError(zn) || zn + k + 10 >= n) {
        util_free(z);
        return 0;
    }
    out->len = start + HDR_LEN + k;
    put_uv(out, rest);
    buf_append(out, z, zn);
    util_free(z);
    if (!buf_ok(out))
        return -1;
    out->data[start + 5] = TXL_FLAG_ZSTD;
    return 0;
}

int txl_encode(const struct txl_record *r, struct buf *out)
{
    size_t start = out->len;
    buf_append(out, MAGIC, 4);
    buf_putc(out, TXL_FORMAT_VERSION);
    buf_putc(out, 0);
    buf_put_u32(out, 0);
    if (encode_body(r, out) || !buf_ok(out)) {
        if (buf_ok(out))
            out->len = start;
        return -1;
    }
    if (out->len - start - HDR_LEN >= COMPRESS_MIN && compress_body(out, start)) {
        if (buf_ok(out))
            out->len = start;
        return -1;
    }
    size_t body = out->len - start - HDR_LEN;
    if (body + HDR_LEN + CRC_LEN > TXL_MAX_RECORD_BYTES) {
        out->len = start;
        return -1;
    }
    buf_set_u32(out, start + 6, (uint32_t)body);
    buf_put_u32(out, txl_crc32c(0, out->data + start, out->len - start));
    return buf_ok(out) ? 0 : -1;
}

/* ---- decoding ------------------------------------------------------------------
 * Two passes over the body: the first validates everything and counts what
 * the record needs, the second fills one arena of exactly that size. */
struct rd {
    const unsigned char *p;
    size_t n, pos;
    size_t base; /* offset of p inside the record, for messages */
    char *err;
    size_t errcap;
};

struct dec {
    int fill;
    size_t ntables, name_bytes, nchanges, nvalues, data_bytes;
    char **tables;
    struct txl_change *changes;
    struct txl_value *vals;
    char *data;
    size_t ti, ci, vi, di;
};

static int bad(struct rd *r, const char *fmt, ...) PRINTF_LIKE(2, 3);
static int bad(struct rd *r, const char *fmt, ...)
{
    char m[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    txl_errf(r->err, r->errcap, "txlog record: %s (at byte %zu)", m, r->base + r->pos);
    return -1;
}

static size_t left(const struct rd *r)
{
    return r->n - r->pos;
}

static int get_uv(struct rd *r, uint64_t *out, const char *what)
{
    uint64_t v = 0;
    for (int i = 0; i < 10; i++) {
        if (r->pos >= r->n)
            return bad(r, "truncated inside %s", what);
        unsigned char c = r->p[r->pos++];
        if (i == 9 && c > 1)
            return bad(r, "%s is not a valid 64-bit varint", what);
        v |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return bad(r, "%s is not a valid 64-bit varint", what);
}

static int get_sv(struct rd *r, int64_t *out, const char *what)
{
    uint64_t u;
    if (get_uv(r, &u, what))
        return -1;
    *out = (int64_t)((u >> 1) ^ (0 - (u & 1)));
    return 0;
}

/* A length or count that must fit in what is left, each unit taking at
 * least unit bytes, and not exceed max. */
static int get_len(struct rd *r, uint64_t *out, uint64_t min, uint64_t max, size_t unit, const char *what)
{
    if (get_uv(r, out, what))
        return -1;
    if (*out < min)
        return bad(r, "%s %llu is below the minimum %llu", what, (unsigned long long)*out,
                   (unsigned long long)min);
    if (*out > max)
        return bad(r, "%s %llu exceeds the limit %llu", what, (unsigned long long)*out, (unsigned long long)max);
    if (*out > left(r) / unit)
        return bad(r, "%s %llu exceeds the %zu bytes left", what, (unsigned long long)*out, left(r));
    return 0;
}

static void *dup_bytes(struct dec *d, const unsigned char *p, size_t n)
{
    char *dst = d->data + d->di;
    memcpy(dst, p, n);
    dst[n] = 0;
    d->di += n + 1;
    return dst;
}

static int get_values(struct rd *r, struct dec *d, uint32_t *count, struct txl_value **out, size_t chno,
                      const char *what)
{
    uint64_t n;
    char w[64];
    snprintf(w, sizeof w, "change %zu %s count", chno, what);
    if (get_len(r, &n, 1, TXL_MAX_COLUMNS, 1, w))
        return -1;
    struct txl_value *vals = d->fill ? d->vals + d->vi : NULL;
    for (uint64_t i = 0; i < n; i++) {
        if (!left(r))
            return bad(r, "truncated inside change %zu %s %llu", chno, what, (unsigned long long)i);
        unsigned tag = r->p[r->pos++];
        struct txl_value v = {.type = (uint8_t)tag};
        switch (tag) {
        case TXL_NULL:
            break;
        case TXL_INTEGER:
            if (get_sv(r, &v.i, "integer value"))
                return -1;
            break;
        case TXL_REAL: {
            if (left(r) < 8)
                return bad(r, "truncated inside a real value");
            uint64_t bits = util_get_u64(r->p + r->pos);
            memcpy(&v.d, &bits, 8);
            r->pos += 8;
            break;
        }
        case TXL_TEXT:
        case TXL_BLOB: {
            uint64_t len;
            if (get_len(r, &len, 0, 0x7fffffffu, 1, tag == TXL_TEXT ? "text length" : "blob length"))
                return -1;
            v.n = (uint32_t)len;
            if (d->fill)
                v.p = dup_bytes(d, r->p + r->pos, len);
            else
                d->data_bytes += len + 1;
            r->pos += len;
            break;
        }
        default:
            return bad(r, "change %zu %s %llu has unknown value type %u", chno, what, (unsigned long long)i, tag);
        }
        if (d->fill)
            vals[i] = v;
    }
    if (d->fill)
        d->vi += n;
    else
        d->nvalues += n;
    *count = (uint32_t)n;
    *out = vals;
    return 0;
}

static int parse_body(struct rd *r, struct dec *d, struct txl_record *out)
{
    uint64_t lsn, commit_us, origin, ntab, nch;
    if (get_uv(r, &lsn, "lsn") || get_uv(r, &commit_us, "commit time") || get_uv(r, &origin, "origin"))
        return -1;
    if (get_len(r, &ntab, 0, UINT32_MAX, 2, "table count"))
        return -1;
    for (uint64_t t = 0; t < ntab; t++) {
        uint64_t len;
        if (get_len(r, &len, 1, TXL_MAX_NAME, 1, "table name length"))
            return -1;
        if (memchr(r->p + r->pos, 0, len))
            return bad(r, "table name %llu contains a NUL byte", (unsigned long long)t);
        if (d->fill)
            d->tables[d->ti++] = dup_bytes(d, r->p + r->pos, len);
        else
            d->name_bytes += len + 1;
        r->pos += len;
    }
    if (get_len(r, &nch, 0, SIZE_MAX, 2, "change count"))
        return -1;
    for (size_t i = 0; i < nch; i++) {
        if (!left(r))
            return bad(r, "truncated before change %zu of %llu", i, (unsigned long long)nch);
        unsigned opb = r->p[r->pos++];
        unsigned op = opb & 0x7f, keyed = opb >> 7;
        struct txl_change ch = {.op = (uint8_t)op, .keyed = (uint8_t)keyed};
        if (op == TXL_DDL && !keyed) {
            uint64_t len;
            if (get_len(r, &len, 1, 0x7fffffffu, 1, "DDL text length"))
                return -1;
            if (memchr(r->p + r->pos, 0, len))
                return bad(r, "change %zu: DDL text contains a NUL byte", i);
            if (d->fill)
                ch.sql = dup_bytes(d, r->p + r->pos, len);
            else
                d->data_bytes += len + 1;
            ch.sql_len = len;
            r->pos += len;
        } else if (op >= TXL_INSERT && op <= TXL_DELETE) {
            uint64_t t;
            if (get_uv(r, &t, "table index"))
                return -1;
            if (t >= ntab)
                return bad(r, "change %zu refers to table %llu of %llu", i, (unsigned long long)t,
                           (unsigned long long)ntab);
            if (d->fill)
                ch.table = d->tables[t];
            if (!keyed) {
                if (op != TXL_INSERT && get_sv(r, &ch.old_rowid, "old rowid"))
                    return -1;
                if (op != TXL_DELETE && get_sv(r, &ch.new_rowid, "new rowid"))
                    return -1;
            } else if (op != TXL_INSERT && get_values(r, d, &ch.nkey, &ch.key, i, "key")) {
                return -1;
            }
            if (op != TXL_DELETE && get_values(r, d, &ch.ncol, &ch.newv, i, "column"))
                return -1;
        } else {
            return bad(r, "change %zu has unknown operation byte 0x%02x", i, opb);
        }
        if (d->fill)
            d->changes[d->ci++] = ch;
    }
    if (left(r))
        return bad(r, "%zu unexpected bytes after the last change", left(r));
    d->ntables = ntab;
    d->nchanges = nch;
    if (out) {
        out->lsn = lsn;
        out->commit_us = commit_us;
        out->origin = origin;
    }
    return 0;
}

int txl_peek_lsn(const void *data, size_t len, uint64_t *lsn)
{
    const unsigned char *p = data;
    if (len < HDR_LEN + CRC_LEN || memcmp(p, MAGIC, 4) != 0 || p[4] != TXL_FORMAT_VERSION)
        return -1;
    char err[8];
    struct rd r = {.p = p + HDR_LEN, .n = len - HDR_LEN - CRC_LEN, .base = HDR_LEN, .err = err, .errcap = sizeof err};
    return get_uv(&r, lsn, "lsn") ? -1 : 0;
}

/* A TXL_FLAG_ZSTD body: check and inflate it into *plain (util_malloc'd)
 * and point r at the plain body ("lsn:uv" then the rest). Offsets in later
 * messages are then those of the plain body. */
static int decompress_body(struct rd *r, unsigned char **plain)
{
    uint64_t lsn, raw;
    if (get_uv(r, &lsn, "lsn") || get_uv(r, &raw, "uncompressed length"))
        return -1;
    size_t k = 0;
    while (r->p[k] & 0x80)
        k++;
    k++; /* the lsn varint, checked above */
    const unsigned char *z = r->p + r->pos;
    size_t zn = r->n - r->pos;
    if (raw > TXL_MAX_RECORD_BYTES) {
        txl_errf(r->err, r->errcap, "txlog record: uncompressed length %llu exceeds the limit",
                 (unsigned long long)raw);
        return -1;
    }
    unsigned long long fcs = ZSTD_getFrameContentSize(z, zn);
    if (fcs != raw || ZSTD_findFrameCompressedSize(z, zn) != zn) {
        txl_errf(r->err, r->errcap,
                 "txlog record: the compressed body is not one zstd frame of the %llu bytes the record names",
                 (unsigned long long)raw);
        return -1;
    }
    unsigned char *b = util_malloc(k + (size_t)raw + 1);
    if (!b) {
        txl_errf(r->err, r->errcap, "txlog record: out of memory inflating %llu bytes", (unsigned long long)raw);
        return -1;
    }
    memcpy(b, r->p, k);
    size_t got = ZSTD_decompress(b + k, (size_t)raw, z, zn);
    if (ZSTD_isError(got) || got != raw) {
        txl_errf(r->err, r->errcap, "txlog record: the compressed body does not inflate: %s",
                 ZSTD_isError(got) ? ZSTD_getErrorName(got) : "short");
        util_free(b);
        return -1;
    }
    *plain = b;
    r->p = b;
    r->n = k + (size_t)raw;
    r->pos = 0;
    r->base = 0;
    return 0;
}

int txl_decode(const void *data, size_t len, struct txl_record *out, char *err, size_t errcap)
{
    const unsigned char *p = data;
    txl_record_init(out);
    if (len >= 4 && memcmp(p, MAGIC, 4) != 0) {
        txl_errf(err, errcap, "txlog record: bad magic (not a txlog record)");
        return -1;
    }
    if (len < HDR_LEN + CRC_LEN) {
        txl_errf(err, errcap, "txlog record: truncated: %zu bytes, the header and checksum alone take %d", len,
                 HDR_LEN + CRC_LEN);
        return -1;
    }
    uint32_t body = util_get_u32(p + 6);
    if ((uint64_t)body + HDR_LEN + CRC_LEN > TXL_MAX_RECORD_BYTES) {
        txl_errf(err, errcap, "txlog record: body length %u exceeds the limit", body);
        return -1;
    }
    size_t total = (size_t)body + HDR_LEN + CRC_LEN;
    if (len < total) {
        txl_errf(err, errcap, "txlog record: truncated: the header says %zu bytes, only %zu present", total, len);
        return -1;
    }
    if (len > total) {
        txl_errf(err, errcap, "txlog record: trailing garbage: %zu bytes after the %zu-byte record", len - total,
                 total);
        return -1;
    }
    uint32_t stored = util_get_u32(p + HDR_LEN + body);
    uint32_t computed = txl_crc32c(0, p, HDR_LEN + body);
    if (stored != computed) {
        txl_errf(err, errcap, "txlog record: checksum mismatch (stored %08x, computed %08x): corrupt data", stored,
                 computed);
        return -1;
    }
    if (p[4] != TXL_FORMAT_VERSION) {
        txl_errf(err, errcap, "txlog record: unsupported format version %u (this build reads version %d)", p[4],
                 TXL_FORMAT_VERSION);
        return -1;
    }
    if (p[5] & ~TXL_FLAG_ZSTD) {
        txl_errf(err, errcap, "txlog record: unknown flags 0x%02x", p[5]);
        return -1;
    }
    unsigned char *plain = NULL;
    struct rd r = {.p = p + HDR_LEN, .n = body, .base = HDR_LEN, .err = err, .errcap = errcap};
    if ((p[5] & TXL_FLAG_ZSTD) && decompress_body(&r, &plain))
        return -1;
    struct dec d = {0};
    if (parse_body(&r, &d, NULL)) {
        util_free(plain);
        return -1;
    }
    /* Sizes are bounded by the body length checked above. */
    size_t sz_tables = d.ntables * sizeof(char *);
    size_t sz_changes = d.nchanges * sizeof(struct txl_change);
    size_t sz_values = d.nvalues * sizeof(struct txl_value);
    size_t total_sz = sz_tables + sz_changes + sz_values + d.name_bytes + d.data_bytes;
    char *arena = util_malloc(total_sz ? total_sz : 1);
    if (!arena) {
        util_free(plain);
        txl_errf(err, errcap, "txlog record: out of memory decoding %zu bytes", len);
        return -1;
    }
    struct dec f = {.fill = 1};
    f.tables = (char **)arena;
    f.changes = (struct txl_change *)(arena + sz_tables);
    f.vals = (struct txl_value *)(arena + sz_tables + sz_changes);
    f.data = arena + sz_tables + sz_changes + sz_values;
    r.pos = 0;
    int bad = parse_body(&r, &f, out); /* cannot fail: same bytes as pass one */
    util_free(plain);
    if (bad) {
        util_free(arena);
        txl_record_init(out);
        return -1;
    }
    out->arena_ = arena;
    out->tables_ = f.tables;
    out->ntables_ = d.ntables;
    out->changes = d.nchanges ? f.changes : NULL;
    out->nchanges = d.nchanges;
    return 0;
}
