/* sql/numeric.c: PostgreSQL's binary format of numeric, from and to its
 * text form: int16 ndigits, int16 weight, uint16 sign, uint16 dscale,
 * then ndigits base-10000 digits, most significant first; the value is
 * sum(digit[i] * 10000^(weight - i)), shown with dscale decimals. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sql_int.h"

enum {
    NUM_POS = 0x0000,
    NUM_NEG = 0x4000,
    NUM_NAN = 0xC000,
    NUM_PINF = 0xD000,
    NUM_NINF = 0xF000,
    NUM_DSCALE_MAX = 0x3FFF, /* PostgreSQL's limits */
    NUM_MAX_GROUPS = 32767,
};

static void header(struct buf *out, int ndigits, int weight, unsigned sign, int dscale)
{
    buf_put_u16(out, (uint16_t)ndigits);
    buf_put_u16(out, (uint16_t)(int16_t)weight);
    buf_put_u16(out, (uint16_t)sign);
    buf_put_u16(out, (uint16_t)dscale);
}

int sql_numeric_send(struct buf *out, const char *s, size_t len)
{
    while (len && isspace((unsigned char)*s))
        s++, len--;
    while (len && isspace((unsigned char)s[len - 1]))
        len--;
    if (len == 3 && strncasecmp(s, "nan", 3) == 0) {
        header(out, 0, 0, NUM_NAN, 0);
        return 0;
    }
    size_t i = 0;
    unsigned sign = NUM_POS;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        sign = s[i++] == '-' ? NUM_NEG : NUM_POS;
    if ((len - i == 8 && strncasecmp(s + i, "infinity", 8) == 0) ||
        (len - i == 3 && strncasecmp(s + i, "inf", 3) == 0)) {
        header(out, 0, 0, sign == NUM_NEG ? NUM_NINF : NUM_PINF, 0x20); /* PostgreSQL's dscale bits */
        return 0;
    }
    /* the digits without the point; p: how many stand before it */
    long nd = 0, p = 0, frac = 0;
    char *d = util_malloc(len + 1);
    if (!d)
        return -3;
    int seen_point = 0;
    for (; i < len && (isdigit((unsigned char)s[i]) || (s[i] == '.' && !seen_point)); i++) {
        if (s[i] == '.') {
            seen_point = 1;
            continue;
        }
        d[nd++] = s[i];
        if (seen_point)
            frac++;
        else
            p++;
    }
    long e = 0;
    if (nd && i < len && (s[i] == 'e' || s[i] == 'E')) {
        int eneg = 0;
        if (++i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        if (i == len || !isdigit((unsigned char)s[i]))
            nd = 0; /* no exponent digits: not a number */
        for (; i < len && isdigit((unsigned char)s[i]); i++)
            if (e < 100000000)
                e = e * 10 + (s[i] - '0');
        if (e > 1000000) { /* far beyond any numeric */
            util_free(d);
            return -2;
        }
        if (eneg)
            e = -e;
    }
    if (!nd || i != len) {
        util_free(d);
        return -1;
    }
    long dscale = frac - e > 0 ? frac - e : 0;
    p += e;
    long first = 0, last = nd; /* the significant digits: d[first..last) */
    while (first < last && d[first] == '0')
        first++, p--;
    while (last > first && d[last - 1] == '0')
        last--;
    if (dscale > NUM_DSCALE_MAX) {
        util_free(d);
        return -2;
    }
    if (first == last) {
        util_free(d);
        header(out, 0, 0, NUM_POS, (int)dscale);
        return 0;
    }
    /* pad on the left so that the point falls between groups of four */
    long lead = (4 - (p % 4 + 4) % 4) % 4;
    long weight = (p + lead) / 4 - 1;
    long groups = (lead + (last - first) + 3) / 4;
    if (groups > NUM_MAX_GROUPS || weight > 32767 || weight < -32768) {
        util_free(d);
        return -2;
    }
    header(out, (int)groups, (int)weight, sign, (int)dscale);
    for (long g = 0; g < groups; g++) {
        int v = 0;
        for (long k = 0; k < 4; k++) {
            long at = g * 4 + k - lead + first;
            v = v * 10 + (at >= first && at < last ? d[at] - '0' : 0);
        }
        buf_put_u16(out, (uint16_t)v);
    }
    util_free(d);
    return 0;
}

int sql_numeric_recv(const char *p, size_t n, struct buf *text)
{
    if (n < 8)
        return -1;
    int ndigits = (int16_t)util_get_u16(p);
    int weight = (int16_t)util_get_u16(p + 2);
    unsigned sign = util_get_u16(p + 4);
    int dscale = util_get_u16(p + 6);
    if (ndigits < 0)
        return -3;
    if (n < 8 + (size_t)ndigits * 2)
        return -1;
    if (n > 8 + (size_t)ndigits * 2)
        return -2;
    const char *dg = p + 8;
    if (sign == NUM_NAN || sign == NUM_PINF || sign == NUM_NINF) {
        buf_puts(text, sign == NUM_NAN ? "NaN" : sign == NUM_PINF ? "Infinity" : "-Infinity");
        return 0;
    }
    if (sign != NUM_POS && sign != NUM_NEG)
        return -4;
    if (dscale > NUM_DSCALE_MAX)
        return -5;
    for (int i = 0; i < ndigits; i++)
        if (util_get_u16(dg + 2 * i) > 9999)
            return -6;
#define DIGIT(i) ((i) >= 0 && (i) < ndigits ? (int)util_get_u16(dg + 2 * (i)) : 0)
    if (sign == NUM_NEG && ndigits)
        buf_putc(text, '-');
    if (weight < 0) {
        buf_putc(text, '0');
    } else {
        buf_printf(text, "%d", DIGIT(0));
        for (int i = 1; i <= weight; i++)
            buf_printf(text, "%04d", DIGIT(i));
    }
    if (dscale > 0) {
        /* decimals beyond dscale are dropped, as PostgreSQL's numeric_recv does */
        buf_putc(text, '.');
        for (int m = 1, left = dscale; left > 0; m++, left -= 4) {
            char g[8];
            snprintf(g, sizeof g, "%04d", DIGIT(weight + m));
            buf_append(text, g, left < 4 ? (size_t)left : 4);
        }
    }
#undef DIGIT
    return 0;
}
