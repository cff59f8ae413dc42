/* sql/binfmt.c: PostgreSQL's binary formats of numeric, date, time,
 * timestamp, timestamptz and uuid, to and from the text SQLite stores.
 *
 * Drivers ask for these in binary: pgjdbc requests binary results for
 * every numeric and date/time column once a statement is prepared on the
 * server (its 5th execution by default) and sends BigDecimal and UUID
 * parameters in binary.
 *
 * numeric: int16 ndigits, int16 weight, uint16 sign, uint16 dscale, then
 * ndigits base-10000 digits (int16); the first digit is worth
 * 10000^weight. date: int32 days since 2000-01-01. time: int64
 * microseconds since midnight. timestamp[tz]: int64 microseconds since
 * 2000-01-01 00:00:00 (UTC for timestamptz). "infinity" and "-infinity"
 * are the largest and smallest value of the integer. uuid: 16 bytes;
 * parsed and printed here for its text forms. */
#include "sql_int.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

#define NUMERIC_POS 0x0000
#define NUMERIC_NEG 0x4000
#define NUMERIC_NAN 0xC000
#define NUMERIC_PINF 0xD000
#define NUMERIC_NINF 0xF000
#define NUMERIC_DSCALE_MAX 0x3FFF

#define USECS_PER_DAY 86400000000LL
#define EPOCH_DAYS 10957 /* 2000-01-01 minus 1970-01-01 */

static int word_is(const char *s, size_t n, const char *word)
{
    if (n != strlen(word))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (tolower((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

static void trim_spaces(const char **s, size_t *n)
{
    while (*n && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/* ---- numeric ------------------------------------------------------------ */

static void put_header(struct buf *out, int ndigits, int weight, unsigned sign, unsigned dscale)
{
    buf_put_u16(out, (uint16_t)ndigits);
    buf_put_u16(out, (uint16_t)(int16_t)weight);
    buf_put_u16(out, (uint16_t)sign);
    buf_put_u16(out, (uint16_t)dscale);
}

static int floor_div4(long v)
{
    return (int)(v >= 0 ? v / 4 : -((-v + 3) / 4));
}

int sql_numeric_to_binary(struct buf *out, const char *s, size_t n)
{
    trim_spaces(&s, &n);
    size_t i = 0;
    int neg = 0;
    if (word_is(s, n, "nan")) {
        put_header(out, 0, 0, NUMERIC_NAN, 0);
        return 0;
    }
    if (i < n && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    if (word_is(s + i, n - i, "infinity")) {
        /* PostgreSQL sends dscale 32 here: numeric_send reads the dscale
         * bits of the special value's short header (0xD000 & 0x1F80) >> 7 */
        put_header(out, 0, 0, neg ? NUMERIC_NINF : NUMERIC_PINF, 0x20);
        return 0;
    }
    /* the significant digits (no leading zeros), how many of them stand
     * before the decimal point (negative: zeros between the point and
     * the first one), and the digits written after the point */
    char small[64];
    char *d = n <= sizeof small ? small : util_malloc(n);
    if (!d)
        return -2;
    size_t nd = 0;
    long point = 0, frac = 0;
    int seen_point = 0, any = 0;
    for (; i < n; i++) {
        if (s[i] == '.' && !seen_point) {
            seen_point = 1;
            continue;
        }
        if (s[i] < '0' || s[i] > '9')
            break;
        any = 1;
        frac += seen_point;
        if (nd == 0 && s[i] == '0') {
            point -= seen_point;
            continue;
        }
        d[nd++] = s[i];
        point += !seen_point;
    }
    long exp = 0;
    if (any && i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        int eneg = 0;
        if (i < n && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        size_t ed = 0;
        for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, ed++)
            if (exp < 1000000)
                exp = exp * 10 + (s[i] - '0');
        any = ed > 0;
        if (eneg)
            exp = -exp;
    }
    int rc = 0;
    if (!any || i != n) {
        rc = -1;
        goto done;
    }
    point += exp;
    long dscale = frac - exp > 0 ? frac - exp : 0;
    while (nd && d[nd - 1] == '0')
        nd--;
    if (dscale > NUMERIC_DSCALE_MAX || (nd && point > 131072)) {
        rc = -3;
        goto done;
    }
    if (!nd) {
        put_header(out, 0, 0, NUMERIC_POS, (unsigned)dscale);
        goto done;
    }
    /* digit k of d is worth 10^(point - 1 - k); group g holds the
     * exponents 4g .. 4g+3 */
    int gmax = floor_div4(point - 1), gmin = floor_div4(point - (long)nd);
    put_header(out, gmax - gmin + 1, gmax, neg ? NUMERIC_NEG : NUMERIC_POS, (unsigned)dscale);
    for (int g = gmax; g >= gmin; g--) {
        unsigned v = 0;
        for (long e = 4L * g + 3; e >= 4L * g; e--) {
            long k = point - 1 - e;
            v = v * 10 + (k >= 0 && k < (long)nd ? (unsigned)(d[k] - '0') : 0);
        }
        buf_put_u16(out, (uint16_t)v);
    }
done:
    if (d != small)
        util_free(d);
    return rc;
}

int sql_numeric_from_binary(const char *data, size_t len, struct buf *out)
{
    if (len < 8)
        return -2;
    int ndigits = (int16_t)util_get_u16(data);
    int weight = (int16_t)util_get_u16(data + 2);
    unsigned sign = util_get_u16(data + 4);
    unsigned dscale = util_get_u16(data + 6);
    if (ndigits >= 0 && len < 8 + 2 * (size_t)ndigits)
        return -2;
    if (ndigits < 0 || len != 8 + 2 * (size_t)ndigits || dscale > NUMERIC_DSCALE_MAX)
        return -1;
    if (sign == NUMERIC_NAN || sign == NUMERIC_PINF || sign == NUMERIC_NINF) {
        buf_puts(out, sign == NUMERIC_NAN ? "NaN" : sign == NUMERIC_PINF ? "Infinity" : "-Infinity");
        return 0;
    }
    if (sign != NUMERIC_POS && sign != NUMERIC_NEG)
        return -1;
    const char *dg = data + 8;
    int nonzero = 0;
    for (int k = 0; k < ndigits; k++) {
        unsigned v = util_get_u16(dg + 2 * k);
        if (v >= 10000)
            return -1;
        nonzero |= v != 0;
    }
#define DIGIT(idx) ((idx) >= 0 && (idx) < ndigits ? util_get_u16(dg + 2 * (idx)) : 0u)
    if (sign == NUMERIC_NEG && nonzero)
        buf_putc(out, '-');
    if (weight < 0) {
        buf_putc(out, '0');
    } else {
        for (int g = weight; g >= 0; g--) {
            unsigned v = DIGIT(weight - g);
            buf_printf(out, g == weight ? "%u" : "%04u", v);
        }
    }
    if (dscale) {
        buf_putc(out, '.');
        for (unsigned done = 0; done < dscale; done += 4) {
            char grp[8];
            snprintf(grp, sizeof grp, "%04u", DIGIT(weight + 1 + (int)(done / 4)));
            buf_append(out, grp, dscale - done < 4 ? dscale - done : 4);
        }
    }
#undef DIGIT
    return 0;
}

/* ---- dates and times ---------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (y may be <= 0:
 * astronomical years, 0 = 1 BC). */
static long long days_from_civil(long long y, unsigned m, unsigned d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, long long *y, unsigned *m, unsigned *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (long long)yoe + era * 400 + (*m <= 2);
}

static int leap(long long y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Up to max decimal digits at s[*i]; at least min. */
static int num(const char *s, size_t n, size_t *i, int min, int max, long long *v)
{
    int k = 0;
    *v = 0;
    while (*i < n && k < max && s[*i] >= '0' && s[*i] <= '9') {
        *v = *v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    return k >= min ? 0 : -1;
}

struct dt {
    long long days;  /* since 1970-01-01 */
    long long usecs; /* since midnight */
    long zone_secs;  /* east of UTC */
};

/* HH:MM[:SS[.frac]] at s[*i]. */
static int parse_time(const char *s, size_t n, size_t *i, long long *usecs)
{
    long long h, mi, sec = 0, frac = 0;
    if (num(s, n, i, 1, 2, &h) || *i >= n || s[*i] != ':')
        return -1;
    (*i)++;
    if (num(s, n, i, 2, 2, &mi))
        return -1;
    if (*i < n && s[*i] == ':') {
        (*i)++;
        if (num(s, n, i, 2, 2, &sec))
            return -1;
        if (*i < n && s[*i] == '.') {
            (*i)++;
            int k = 0;
            size_t start = *i;
            while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
                if (k < 6)
                    frac = frac * 10 + (s[*i] - '0'), k++;
                else if (k == 6 && *i == start + 6)
                    frac += s[*i] >= '5'; /* round to microseconds */
                (*i)++;
            }
            for (; k < 6; k++)
                frac *= 10;
        }
    }
    if (mi > 59 || sec > 60 || h > 24 || (h == 24 && (mi || sec || frac)))
        return -1;
    *usecs = ((h * 60 + mi) * 60 + sec) * 1000000 + frac;
    return 0;
}

/* Z, UTC, [+-]HH[[:]MM[[:]SS]] at s[*i]. */
static int parse_zone(const char *s, size_t n, size_t *i, long *secs)
{
    if (s[*i] == 'Z' || s[*i] == 'z') {
        (*i)++;
        *secs = 0;
        return 0;
    }
    if (n - *i >= 3 && word_is(s + *i, 3, "utc")) {
        *i += 3;
        *secs = 0;
        return 0;
    }
    if (s[*i] != '+' && s[*i] != '-')
        return -1;
    int neg = s[(*i)++] == '-';
    long long h, m = 0, sec = 0;
    if (num(s, n, i, 1, 2, &h))
        return -1;
    if (*i < n && s[*i] == ':')
        (*i)++;
    if (*i < n && s[*i] >= '0' && s[*i] <= '9') {
        if (num(s, n, i, 2, 2, &m))
            return -1;
        if (*i < n && s[*i] == ':')
            (*i)++;
        if (*i < n && s[*i] >= '0' && s[*i] <= '9' && num(s, n, i, 2, 2, &sec))
            return -1;
    }
    if (h > 15 || m > 59 || sec > 59)
        return -1;
    *secs = (long)((h * 60 + m) * 60 + sec) * (neg ? -1 : 1);
    return 0;
}

/* [YYYY-MM-DD][( |T)HH:MM[:SS[.f]]][ ][zone][ BC]; a time alone when
 * time_only. */
static int parse_dt(const char *s, size_t n, int time_only, struct dt *o)
{
    memset(o, 0, sizeof *o);
    trim_spaces(&s, &n);
    size_t i = 0;
    long long y = 0, m = 0, d = 0;
    int bc = 0;
    if (n >= 3 && word_is(s + n - 3, 3, " bc")) {
        bc = 1;
        n -= 3;
        trim_spaces(&s, &n);
    }
    if (!time_only) {
        if (num(s, n, &i, 4, 9, &y) || i >= n || s[i++] != '-' || num(s, n, &i, 1, 2, &m) || i >= n ||
            s[i++] != '-' || num(s, n, &i, 1, 2, &d))
            return -1;
        static const unsigned char mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        if (y < 1 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1] + (m == 2 && leap(bc ? 1 - y : y)))
            return -1;
        o->days = days_from_civil(bc ? 1 - y : y, (unsigned)m, (unsigned)d);
        if (i < n && (s[i] == ' ' || s[i] == 'T' || s[i] == 't')) {
            size_t j = i + 1;
            while (j < n && s[j] == ' ')
                j++;
            if (j < n && s[j] >= '0' && s[j] <= '9') {
                i = j;
                if (parse_time(s, n, &i, &o->usecs))
                    return -1;
            }
        }
    } else {
        if (bc || parse_time(s, n, &i, &o->usecs))
            return -1;
    }
    while (i < n && s[i] == ' ')
        i++;
    if (i < n) {
        if (parse_zone(s, n, &i, &o->zone_secs))
            return -1;
    }
    return i == n ? 0 : -1;
}

int sql_datetime_to_binary(struct buf *out, uint32_t oid, const char *s, size_t n)
{
    const char *t = s;
    size_t tn = n;
    trim_spaces(&t, &tn);
    int inf = word_is(t, tn, "infinity") || word_is(t, tn, "+infinity") ? 1 : word_is(t, tn, "-infinity") ? -1 : 0;
    if (inf && oid != SQL_OID_TIME) {
        if (oid == SQL_OID_DATE)
            buf_put_u32(out, inf > 0 ? (uint32_t)INT32_MAX : (uint32_t)INT32_MIN);
        else
            buf_put_u64(out, inf > 0 ? (uint64_t)INT64_MAX : (uint64_t)INT64_MIN);
        return 0;
    }
    struct dt v;
    if (parse_dt(t, tn, oid == SQL_OID_TIME, &v))
        return -1;
    switch (oid) {
    case SQL_OID_DATE: {
        long long days = v.days - EPOCH_DAYS;
        if (days <= INT32_MIN || days >= INT32_MAX)
            return -1;
        buf_put_u32(out, (uint32_t)(int32_t)days);
        return 0;
    }
    case SQL_OID_TIME:
        buf_put_u64(out, (uint64_t)v.usecs);
        return 0;
    case SQL_OID_TIMESTAMP:
    case SQL_OID_TIMESTAMPTZ: {
        /* a timestamp ignores a zone, as PostgreSQL's input does; a
         * timestamptz without one is in the session's zone, always UTC */
        long long days = v.days - EPOCH_DAYS;
        if (days > 106751991LL || days < -106751991LL) /* int64 microseconds */
            return -1;
        long long us = days * USECS_PER_DAY + v.usecs;
        if (oid == SQL_OID_TIMESTAMPTZ)
            us -= (long long)v.zone_secs * 1000000;
        buf_put_u64(out, (uint64_t)us);
        return 0;
    }
    default:
        return -1;
    }
}

/* YYYY-MM-DD; returns 1 for a date before year 1 (the caller ends the
 * text with " BC", as PostgreSQL does) */
static int put_date(struct buf *out, long long days1970)
{
    long long y;
    unsigned m, d;
    civil_from_days(days1970, &y, &m, &d);
    buf_printf(out, "%04lld-%02u-%02u", y > 0 ? y : 1 - y, m, d);
    return y <= 0;
}

static void put_time(struct buf *out, long long us)
{
    long long secs = us / 1000000, frac = us % 1000000;
    buf_printf(out, "%02lld:%02lld:%02lld", secs / 3600, secs / 60 % 60, secs % 60);
    if (frac) {
        char f[8];
        snprintf(f, sizeof f, "%06lld", frac);
        size_t k = 6;
        while (f[k - 1] == '0')
            k--;
        buf_putc(out, '.');
        buf_append(out, f, k);
    }
}

int sql_datetime_from_binary(uint32_t oid, const char *data, size_t len, struct buf *out)
{
    if (oid == SQL_OID_DATE) {
        if (len != 4)
            return -1;
        int32_t days = (int32_t)util_get_u32(data);
        if (days == INT32_MAX || days == INT32_MIN) {
            buf_puts(out, days == INT32_MAX ? "infinity" : "-infinity");
            return 0;
        }
        if (put_date(out, (long long)days + EPOCH_DAYS))
            buf_puts(out, " BC");
        return 0;
    }
    if (len != 8)
        return -1;
    int64_t v = (int64_t)util_get_u64(data);
    if (oid == SQL_OID_TIME) {
        if (v < 0 || v > USECS_PER_DAY)
            return -1;
        put_time(out, v);
        return 0;
    }
    if (oid != SQL_OID_TIMESTAMP && oid != SQL_OID_TIMESTAMPTZ)
        return -1;
    if (v == INT64_MAX || v == INT64_MIN) {
        buf_puts(out, v == INT64_MAX ? "infinity" : "-infinity");
        return 0;
    }
    long long days = v / USECS_PER_DAY, us = v % USECS_PER_DAY;
    if (us < 0) {
        us += USECS_PER_DAY;
        days--;
    }
    int bc = put_date(out, days + EPOCH_DAYS);
    buf_putc(out, ' ');
    put_time(out, us);
    if (oid == SQL_OID_TIMESTAMPTZ)
        buf_puts(out, "+00");
    if (bc)
        buf_puts(out, " BC");
    return 0;
}

/* ---- uuid --------------------------------------------------------------- */

static int hexdigit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = (char)tolower((unsigned char)c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int sql_uuid_parse(const char *s, size_t n, unsigned char out[16])
{
    trim_spaces(&s, &n);
    if (n >= 2 && s[0] == '{' && s[n - 1] == '}') {
        s++;
        n -= 2;
    }
    int nd = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '-' && nd % 4 == 0 && nd > 0 && nd < 32 && s[i - 1] != '-')
            continue;
        int v = hexdigit(s[i]);
        if (v < 0 || nd == 32)
            return -1;
        if (nd % 2 == 0)
            out[nd / 2] = (unsigned char)(v << 4);
        else
            out[nd / 2] |= (unsigned char)v;
        nd++;
    }
    return nd == 32 && s[n - 1] != '-' ? 0 : -1;
}

void sql_uuid_format(const void *uuid16, char out[SQL_UUID_TEXT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *u = uuid16;
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[u[i] >> 4];
        out[o++] = hex[u[i] & 15];
    }
    out[o] = 0;
}
