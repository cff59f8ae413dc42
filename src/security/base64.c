/* security/base64.c: strict RFC 4648 base64 (standard alphabet, padded).
 * Character mapping is branch-free so decoding keys from a verifier does
 * not leak their bytes through table lookups or data-dependent branches. */
#include "security.h"

#include <limits.h>

/* All-ones when lo <= c <= hi, else 0 (c, lo, hi < 256). */
static unsigned range_mask(unsigned c, unsigned lo, unsigned hi)
{
    return (((c - lo) | (hi - c)) >> (sizeof(unsigned) * CHAR_BIT - 1)) - 1u;
}

/* 6-bit value -> alphabet character. */
static char enc_char(unsigned x)
{
    unsigned r = 0;
    r |= range_mask(x, 0, 25) & (x + 'A');
    r |= range_mask(x, 26, 51) & (x - 26 + 'a');
    r |= range_mask(x, 52, 61) & (x - 52 + '0');
    r |= range_mask(x, 62, 62) & (unsigned)'+';
    r |= range_mask(x, 63, 63) & (unsigned)'/';
    return (char)r;
}

/* Alphabet character -> 6-bit value, or -1 ('=' and anything else). */
static int dec_char(unsigned char ch)
{
    unsigned c = ch, r = 0; /* value + 1, 0 = invalid */
    r |= range_mask(c, 'A', 'Z') & (c - 'A' + 1);
    r |= range_mask(c, 'a', 'z') & (c - 'a' + 27);
    r |= range_mask(c, '0', '9') & (c - '0' + 53);
    r |= range_mask(c, '+', '+') & 63u;
    r |= range_mask(c, '/', '/') & 64u;
    return (int)r - 1;
}

int sec_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap)
{
    if (!out || (len && !in) || len > (size_t)(INT_MAX / 4 - 1) * 3)
        return -1;
    size_t need = (len + 2) / 3 * 4;
    if (cap < need + 1)
        return -1;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        out[o++] = enc_char(v >> 18);
        out[o++] = enc_char((v >> 12) & 63);
        out[o++] = enc_char((v >> 6) & 63);
        out[o++] = enc_char(v & 63);
    }
    if (len - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        out[o++] = enc_char(v >> 18);
        out[o++] = enc_char((v >> 12) & 63);
        out[o++] = '=';
        out[o++] = '=';
    } else if (len - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        out[o++] = enc_char(v >> 18);
        out[o++] = enc_char((v >> 12) & 63);
        out[o++] = enc_char((v >> 6) & 63);
        out[o++] = '=';
    }
    out[o] = '\0';
    return (int)o;
}

/* Strict: length a multiple of 4, padding only at the very end, and the
 * unused bits before the padding must be zero (canonical encoding). */
int sec_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap)
{
    if ((len && !in) || len % 4 != 0 || len > INT_MAX)
        return -1;
    size_t o = 0;
    for (size_t i = 0; i < len; i += 4) {
        const unsigned char *q = (const unsigned char *)in + i;
        int last = i + 4 == len;
        int a = dec_char(q[0]), b = dec_char(q[1]), c = dec_char(q[2]), d = dec_char(q[3]);
        if (a < 0 || b < 0)
            return -1;
        size_t n = 3;
        if (c < 0 || d < 0) {
            if (!last || q[3] != '=')
                return -1;
            if (c < 0) {
                if (q[2] != '=' || (b & 15))
                    return -1;
                n = 1;
                c = 0;
            } else {
                if (c & 3)
                    return -1;
                n = 2;
            }
            d = 0;
        }
        if (cap - o < n)
            return -1;
        unsigned v = (unsigned)a << 18 | (unsigned)b << 12 | (unsigned)c << 6 | (unsigned)d;
        out[o++] = (unsigned char)(v >> 16);
        if (n > 1)
            out[o++] = (unsigned char)(v >> 8);
        if (n > 2)
            out[o++] = (unsigned char)v;
    }
    return (int)o;
}
