/* Unit tests for security/scram.c and base64.c: RFC 7677 vector, full
 * exchanges against a client computed here with OpenSSL, failure modes
 * (wrong password, unknown user), malformed input and base64. */
#include "unit.h"
#include "security.h"

#include <stdlib.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>

#define RFC_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="
#define RFC_STORED "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
#define RFC_SERVER "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU="
#define RFC_CNONCE "rOprNGfwEbeRWgbNEkqO"
#define RFC_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static const unsigned char mock_key[32] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                                           16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

/* Copies s into an exact-size heap block (no NUL) so sanitizers catch any
 * read past len. */
static char *exact(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len ? *len : 1);
    assert_non_null(p);
    memcpy(p, s, *len);
    return p;
}

static enum sec_scram_rc first(struct sec_scram *s, const char *msg, struct buf *out, char *err, size_t errcap)
{
    size_t n;
    char *m = exact(msg, &n);
    enum sec_scram_rc rc = sec_scram_client_first(s, m, n, out, err, errcap);
    free(m);
    return rc;
}

static enum sec_scram_rc final(struct sec_scram *s, const char *msg, struct buf *out, char *err, size_t errcap)
{
    size_t n;
    char *m = exact(msg, &n);
    enum sec_scram_rc rc = sec_scram_client_final(s, m, n, out, err, errcap);
    free(m);
    return rc;
}

/* ---- a SCRAM client, computed independently ---- */

struct client {
    char first_bare[256];
    char final_noproof[512];
    char final[640];
    char server_sig_b64[64];
};

static void hmac(const unsigned char *key, const void *d, size_t n, unsigned char out[32])
{
    unsigned int l = 32;
    assert_non_null(HMAC(EVP_sha256(), key, 32, d, n, out, &l));
}

/* Given the server-first message, builds the client-final for password
 * (gs2 header gs2, e.g. "n,,") and the expected server signature. */
static void client_final(struct client *c, const char *gs2, const char *sfirst, size_t sflen, const char *password)
{
    char sf[512];
    assert_true(sflen < sizeof sf);
    memcpy(sf, sfirst, sflen);
    sf[sflen] = '\0';
    assert_memory_equal(sf, "r=", 2);
    char *s = strstr(sf, ",s="), *i = strstr(sf, ",i=");
    assert_non_null(s);
    assert_non_null(i);
    unsigned char salt[64];
    int saltlen = sec_base64_decode(s + 3, (size_t)(i - s - 3), salt, sizeof salt);
    assert_true(saltlen > 0);
    int iter = atoi(i + 3);
    char gs2b64[16];
    assert_true(sec_base64_encode((const unsigned char *)gs2, strlen(gs2), gs2b64, sizeof gs2b64) > 0);
    snprintf(c->final_noproof, sizeof c->final_noproof, "c=%s,r=%.*s", gs2b64, (int)(s - sf - 2), sf + 2);

    unsigned char salted[32], ck[32], sk[32], stored[32], csig[32], ssig[32], proof[32];
    assert_int_equal(PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, saltlen, iter, EVP_sha256(), 32,
                                       salted),
                     1);
    hmac(salted, "Client Key", 10, ck);
    hmac(salted, "Server Key", 10, sk);
    assert_int_equal(EVP_Digest(ck, 32, stored, NULL, EVP_sha256(), NULL), 1);
    char auth[1400];
    int n = snprintf(auth, sizeof auth, "%s,%s,%s", c->first_bare, sf, c->final_noproof);
    assert_true(n > 0 && (size_t)n < sizeof auth);
    hmac(stored, auth, (size_t)n, csig);
    hmac(sk, auth, (size_t)n, ssig);
    for (int k = 0; k < 32; k++)
        proof[k] = ck[k] ^ csig[k];
    char pb64[64];
    assert_int_equal(sec_base64_encode(proof, 32, pb64, sizeof pb64), 44);
    assert_int_equal(sec_base64_encode(ssig, 32, c->server_sig_b64, sizeof c->server_sig_b64), 44);
    snprintf(c->final, sizeof c->final, "%s,p=%s", c->final_noproof, pb64);
}

/* Runs a whole exchange: client password pw against verifier ver (NULL:
 * unknown user). Returns the final rc; *out gets the server-final. */
static enum sec_scram_rc exchange(const char *user, const char *ver, const char *gs2, const char *pw,
                                  struct buf *sfirst, struct buf *sfinal)
{
    char err[256], msg[300];
    struct client c;
    struct sec_scram *s = sec_scram_new(user, ver, mock_key);
    assert_non_null(s);
    snprintf(c.first_bare, sizeof c.first_bare, "n=,r=%s", "fyko+d2lbbFgONRv9qkxdawL");
    snprintf(msg, sizeof msg, "%s%s", gs2, c.first_bare);
    assert_int_equal(first(s, msg, sfirst, err, sizeof err), SEC_SCRAM_CONTINUE);
    client_final(&c, gs2, sfirst->data, sfirst->len, pw);
    enum sec_scram_rc rc = final(s, c.final, sfinal, err, sizeof err);
    if (rc == SEC_SCRAM_OK) {
        assert_int_equal(sfinal->len, 2 + 44);
        assert_memory_equal(sfinal->data, "v=", 2);
        assert_memory_equal(sfinal->data + 2, c.server_sig_b64, 44);
    } else {
        assert_int_equal(sfinal->len, 0);
    }
    /* the exchange is over */
    assert_int_equal(final(s, c.final, sfinal, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    return rc;
}

/* ---- tests ---- */

static void test_base64(void **state)
{
    (void)state;
    static const char *vec[][2] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                   {"foo", "Zm9v"},  {"foob", "Zm9vYg=="},  {"fooba", "Zm9vYmE="},
                                   {"foobar", "Zm9vYmFy"}};
    char enc[64];
    unsigned char dec[64];
    for (size_t i = 0; i < ARRAY_LEN(vec); i++) {
        size_t n = strlen(vec[i][0]);
        assert_int_equal(sec_base64_encode((const unsigned char *)vec[i][0], n, enc, sizeof enc),
                         (int)strlen(vec[i][1]));
        assert_string_equal(enc, vec[i][1]);
        assert_int_equal(sec_base64_decode(vec[i][1], strlen(vec[i][1]), dec, sizeof dec), (int)n);
        assert_memory_equal(dec, vec[i][0], n);
    }
    /* every byte value, every length */
    unsigned char all[256], back[256];
    char big[400];
    for (int i = 0; i < 256; i++)
        all[i] = (unsigned char)(255 - i);
    for (size_t n = 0; n <= 256; n++) {
        int e = sec_base64_encode(all, n, big, sizeof big);
        assert_int_equal(e, (int)((n + 2) / 3 * 4));
        assert_int_equal(sec_base64_decode(big, (size_t)e, back, sizeof back), (int)n);
        assert_memory_equal(back, all, n);
    }
    assert_int_equal(sec_base64_encode(all, 255, big, sizeof big), 340);
    assert_non_null(strchr(big, '+'));
    assert_non_null(strchr(big, '/'));
    /* too small output */
    assert_int_equal(sec_base64_encode((const unsigned char *)"foo", 3, enc, 4), -1);
    assert_int_equal(sec_base64_encode((const unsigned char *)"foo", 3, enc, 5), 4);
    assert_int_equal(sec_base64_decode("Zm9vYmFy", 8, dec, 5), -1);
    assert_int_equal(sec_base64_decode("Zm9vYmFy", 8, dec, 6), 6);
    /* only len bytes are read */
    assert_int_equal(sec_base64_decode("Zm9v!!!!", 4, dec, sizeof dec), 3);
    /* invalid */
    static const char *bad[] = {"Zg=",  "Zg",   "Z===", "====", "Zg=a", "Zm9v====", "Zg==Zg==", "Zh==",
                                "Zm9=", "Zm 9", "Zm-v", "Zm_v", "Zm9v\n", "Zm9\0", "Zm9\xc3"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        size_t n = strlen(bad[i]);
        if (i == ARRAY_LEN(bad) - 2)
            n = 4; /* embedded NUL */
        assert_int_equal(sec_base64_decode(bad[i], n, dec, sizeof dec), -1);
    }
}

static void test_verifier(void **state)
{
    (void)state;
    unsigned char salt[16];
    char v[SEC_VERIFIER_MAX];
    assert_int_equal(sec_base64_decode(RFC_SALT, strlen(RFC_SALT), salt, sizeof salt), 16);
    assert_int_equal(sec_scram_make_verifier_salt("pencil", 4096, salt, 16, v, sizeof v), 0);
    assert_string_equal(v, "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER);
    assert_true(sec_scram_is_verifier(v));
    /* too small output */
    assert_int_equal(sec_scram_make_verifier_salt("pencil", 4096, salt, 16, v, 20), -1);
    assert_int_equal(sec_scram_make_verifier_salt("pencil", 0, salt, 16, v, sizeof v), -1);

    char v1[SEC_VERIFIER_MAX], v2[SEC_VERIFIER_MAX];
    assert_int_equal(sec_scram_make_verifier("secret", SEC_SCRAM_ITERATIONS, v1, sizeof v1), 0);
    assert_int_equal(sec_scram_make_verifier("secret", SEC_SCRAM_ITERATIONS, v2, sizeof v2), 0);
    assert_true(sec_scram_is_verifier(v1));
    assert_string_not_equal(v1, v2); /* fresh salt each time */
    assert_memory_equal(v1, "SCRAM-SHA-256$4096:", 19);

    static const char *bad[] = {
        "",
        "md5c4ca4238a0b923820dcc509a6f75849b",
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED,
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":",
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER "x",
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER ":",
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER "AAAA",
        "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":Zm9v",
        "SCRAM-SHA-256$0:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$04096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$-1:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$99999999999:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$4096$" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$4096:$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6g$" RFC_STORED ":" RFC_SERVER,
        "SCRAM-SHA-1$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
        "scram-sha-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        if (sec_scram_is_verifier(bad[i]))
            fail_msg("accepted bad verifier %zu: %s", i, bad[i]);
    }
    assert_false(sec_scram_is_verifier(NULL));
    assert_true(sec_scram_is_verifier("SCRAM-SHA-256$1:AA==$" RFC_STORED ":" RFC_SERVER));
}

static void test_rfc7677(void **state)
{
    (void)state;
    char err[256];
    struct buf out;
    buf_init(&out);
    struct sec_scram *s = sec_scram_new("user", "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
                                        mock_key);
    assert_non_null(s);
    assert_int_equal(sec_scram_set_nonce_for_test(s, RFC_SNONCE), 0);
    assert_int_equal(first(s, "n,,n=user,r=" RFC_CNONCE, &out, err, sizeof err), SEC_SCRAM_CONTINUE);
    const char *sf = "r=" RFC_CNONCE RFC_SNONCE ",s=" RFC_SALT ",i=4096";
    assert_int_equal(out.len, strlen(sf));
    assert_memory_equal(out.data, sf, out.len);
    buf_reset(&out);
    assert_int_equal(final(s, "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
                           &out, err, sizeof err),
                     SEC_SCRAM_OK);
    const char *v = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    assert_int_equal(out.len, strlen(v));
    assert_memory_equal(out.data, v, out.len);
    sec_scram_free(s);

    /* the test client agrees with the vector */
    struct client c;
    snprintf(c.first_bare, sizeof c.first_bare, "n=user,r=" RFC_CNONCE);
    client_final(&c, "n,,", sf, strlen(sf), "pencil");
    assert_string_equal(c.final, "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
    assert_string_equal(c.server_sig_b64, v + 2);

    /* test nonce hook validation */
    s = sec_scram_new("user", NULL, mock_key);
    assert_non_null(s);
    assert_int_equal(sec_scram_set_nonce_for_test(s, "a,b"), -1);
    assert_int_equal(sec_scram_set_nonce_for_test(s, ""), -1);
    assert_int_equal(sec_scram_set_nonce_for_test(s, "x\x7f"), -1);
    sec_scram_free(s);
    buf_free(&out);
}

static void test_exchange(void **state)
{
    (void)state;
    char v[SEC_VERIFIER_MAX];
    assert_int_equal(sec_scram_make_verifier("correct horse", SEC_SCRAM_ITERATIONS, v, sizeof v), 0);
    static const char *gs2[] = {"n,,", "y,,"};
    for (size_t i = 0; i < ARRAY_LEN(gs2); i++) {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        assert_int_equal(exchange("alice", v, gs2[i], "correct horse", &a, &b), SEC_SCRAM_OK);
        /* server nonce: client nonce + 24 base64 chars (18 bytes) */
        const char *sf = a.data;
        const char *comma = memchr(sf, ',', a.len);
        assert_non_null(comma);
        size_t cn = strlen("fyko+d2lbbFgONRv9qkxdawL");
        assert_int_equal((size_t)(comma - sf), 2 + cn + 24);
        unsigned char raw[18];
        assert_int_equal(sec_base64_decode(sf + 2 + cn, 24, raw, sizeof raw), 18);
        buf_free(&a);
        buf_free(&b);
    }
    /* other iteration counts and a non-ASCII password (raw bytes) */
    assert_int_equal(sec_scram_make_verifier("p\xc3\xa4ss", 1, v, sizeof v), 0);
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(exchange("bob", v, "n,,", "p\xc3\xa4ss", &a, &b), SEC_SCRAM_OK);
    assert_non_null(strstr(a.data, ",i=1"));
    buf_free(&a);
    buf_free(&b);
    /* two exchanges get different nonces */
    struct buf c;
    buf_init(&a);
    buf_init(&c);
    char err[256];
    struct sec_scram *s1 = sec_scram_new("bob", v, mock_key), *s2 = sec_scram_new("bob", v, mock_key);
    assert_int_equal(first(s1, "n,,n=,r=abc", &a, err, sizeof err), SEC_SCRAM_CONTINUE);
    assert_int_equal(first(s2, "n,,n=,r=abc", &c, err, sizeof err), SEC_SCRAM_CONTINUE);
    assert_int_equal(a.len, c.len);
    assert_memory_not_equal(a.data, c.data, a.len);
    sec_scram_free(s1);
    sec_scram_free(s2);
    buf_free(&a);
    buf_free(&c);
}

static void test_wrong_password(void **state)
{
    (void)state;
    char v[SEC_VERIFIER_MAX];
    assert_int_equal(sec_scram_make_verifier("right", SEC_SCRAM_ITERATIONS, v, sizeof v), 0);
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(exchange("alice", v, "n,,", "wrong", &a, &b), SEC_SCRAM_FAIL);
    buf_free(&a);
    buf_init(&a);
    assert_int_equal(exchange("alice", v, "n,,", "", &a, &b), SEC_SCRAM_FAIL);
    buf_free(&a);
    buf_free(&b);
}

/* Parses "r=...,s=<salt>,i=<n>" into its salt and iteration fields. */
static void sf_fields(const struct buf *sf, char *salt, size_t cap, int *iter)
{
    char tmp[512];
    assert_true(sf->len < sizeof tmp);
    memcpy(tmp, sf->data, sf->len);
    tmp[sf->len] = '\0';
    char *s = strstr(tmp, ",s="), *i = strstr(tmp, ",i=");
    assert_non_null(s);
    assert_non_null(i);
    *i = '\0';
    snprintf(salt, cap, "%s", s + 3);
    *iter = atoi(i + 3);
}

static void test_unknown_user(void **state)
{
    (void)state;
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    assert_int_equal(exchange("alice", NULL, "n,,", "anything", &a, &b), SEC_SCRAM_FAIL);
    char salt[64], salt2[64];
    int iter;
    sf_fields(&a, salt, sizeof salt, &iter);
    /* mock salt = first 16 bytes of HMAC(mock_key, "salt" || user) */
    unsigned char h[32];
    char expect[64];
    hmac(mock_key, "saltalice", 9, h);
    assert_int_equal(sec_base64_encode(h, 16, expect, sizeof expect), 24);
    assert_string_equal(salt, expect);
    assert_string_equal(salt, "gnMVhmmQ2sJFuUyOIQVS2w=="); /* computed with Python */
    assert_int_equal(iter, 4096);

    /* stable per user, different across users */
    buf_free(&a);
    buf_init(&a);
    assert_int_equal(exchange("alice", NULL, "y,,", "", &a, &b), SEC_SCRAM_FAIL);
    sf_fields(&a, salt2, sizeof salt2, &iter);
    assert_string_equal(salt, salt2);
    buf_free(&a);
    buf_init(&a);
    assert_int_equal(exchange("carol", NULL, "n,,", "x", &a, &b), SEC_SCRAM_FAIL);
    sf_fields(&a, salt2, sizeof salt2, &iter);
    assert_string_not_equal(salt, salt2);

    /* a real user's first message has the same shape */
    char v[SEC_VERIFIER_MAX];
    struct buf r;
    buf_init(&r);
    assert_int_equal(sec_scram_make_verifier("pw", SEC_SCRAM_ITERATIONS, v, sizeof v), 0);
    assert_int_equal(exchange("dave", v, "n,,", "pw", &r, &b), SEC_SCRAM_OK);
    assert_int_equal(r.len, a.len);
    buf_free(&r);

    /* an unusable stored verifier behaves like an unknown user */
    buf_free(&a);
    buf_init(&a);
    buf_free(&b);
    buf_init(&b);
    log_set_level(LOG_ERROR);
    assert_int_equal(exchange("alice", "md5c4ca4238a0b923820dcc509a6f75849b", "n,,", "x", &a, &b), SEC_SCRAM_FAIL);
    log_set_level(LOG_INFO);
    sf_fields(&a, salt2, sizeof salt2, &iter);
    assert_string_equal(salt, salt2);
    /* NULL user name is treated as empty, no crash */
    buf_free(&a);
    buf_init(&a);
    assert_int_equal(exchange(NULL, NULL, "n,,", "x", &a, &b), SEC_SCRAM_FAIL);
    buf_free(&a);
    buf_free(&b);
}

static void test_malformed_first(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        "n",
        "n,",
        "n,,",
        "x,,n=,r=abc",
        "p=tls-server-end-point,,n=,r=abc",
        "p,,n=,r=abc",
        "n,a=bob,n=,r=abc",
        "n;,n=,r=abc",
        "n,,,n=,r=abc",
        "nn,,n=,r=abc",
        "n,,m=ext,n=,r=abc",
        "n,,n=",
        "n,,n=,",
        "n,,n=,r",
        "n,,n=,r=",
        "n,,n=,x=abc",
        "n,,r=abc",
        "n,,r=abc,n=",
        "n,,n=,r=abc,",
        "n,,n=,r=abc,,",
        "n,,n=,r=abc,x",
        "n,,n=,r=abc,1=2",
        "n,,n=,r=ab c",
        "n,,n=,r=ab\x7f",
        "n,,n=,r=ab\x01",
        "n,,n=,r=ab\xc3\xa9",
        "n,,n=x,n=,r=abc",
        "n,,n,r=abc",
        "n,,=,r=abc",
    };
    char err[256];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct buf out;
        buf_init(&out);
        struct sec_scram *s = sec_scram_new("u", NULL, mock_key);
        assert_non_null(s);
        err[0] = '\0';
        enum sec_scram_rc rc = first(s, bad[i], &out, err, sizeof err);
        if (rc != SEC_SCRAM_PROTO)
            fail_msg("client-first %zu (%s): rc %d", i, bad[i], rc);
        assert_true(strlen(err) > 0);
        assert_int_equal(out.len, 0);
        /* the exchange is dead afterwards */
        assert_int_equal(final(s, "c=biws,r=abc,p=" RFC_STORED, &out, err, sizeof err), SEC_SCRAM_PROTO);
        sec_scram_free(s);
        buf_free(&out);
    }
    /* channel binding gets a specific message */
    struct buf out;
    buf_init(&out);
    struct sec_scram *s = sec_scram_new("u", NULL, mock_key);
    assert_int_equal(first(s, "p=tls-server-end-point,,n=,r=abc", &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_non_null(strstr(err, "channel binding"));
    sec_scram_free(s);
    /* embedded NUL */
    s = sec_scram_new("u", NULL, mock_key);
    assert_int_equal(sec_scram_client_first(s, "n,,n=,r=a\0c", 11, &out, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    /* NULL message, NULL err */
    s = sec_scram_new("u", NULL, mock_key);
    assert_int_equal(sec_scram_client_first(s, NULL, 0, &out, NULL, 0), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    assert_int_equal(sec_scram_client_first(NULL, "n,,n=,r=a", 9, &out, err, sizeof err), SEC_SCRAM_PROTO);
    /* accepted variants: any user name, extensions after the nonce */
    static const char *good[] = {"n,,n=,r=abc", "y,,n=,r=abc", "n,,n=*,r=abc", "n,,n=some=2Cuser,r=abc",
                                 "n,,n=,r=abc,x=1,y=", "n,,n=,r=!\"#$%&'()*+-./~"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++) {
        s = sec_scram_new("u", NULL, mock_key);
        buf_reset(&out);
        if (first(s, good[i], &out, err, sizeof err) != SEC_SCRAM_CONTINUE)
            fail_msg("client-first %s rejected: %s", good[i], err);
        sec_scram_free(s);
    }
    buf_free(&out);
}

/* Sets up an exchange past round 1 with the RFC vector. */
static struct sec_scram *rfc_round1(const char *gs2)
{
    char err[256], msg[128];
    struct buf out;
    buf_init(&out);
    struct sec_scram *s = sec_scram_new("user", "SCRAM-SHA-256$4096:" RFC_SALT "$" RFC_STORED ":" RFC_SERVER,
                                        mock_key);
    assert_non_null(s);
    assert_int_equal(sec_scram_set_nonce_for_test(s, RFC_SNONCE), 0);
    snprintf(msg, sizeof msg, "%sn=user,r=" RFC_CNONCE, gs2);
    assert_int_equal(first(s, msg, &out, err, sizeof err), SEC_SCRAM_CONTINUE);
    buf_free(&out);
    return s;
}

static void test_malformed_final(void **state)
{
    (void)state;
#define N RFC_CNONCE RFC_SNONCE
#define P "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
    static const char *bad[] = {
        "",
        "c",
        "c=",
        "c=biws",
        "c=biws,",
        "c=biws,r=" N,
        "c=biws,r=" N ",",
        "c=biws,r=" N ",p",
        "c=biws,r=" N ",p=",
        "c=biws,r=" N ",p=" P ",",
        "c=biws,r=" N ",p=" P ",x=1",
        "c=biws,r=" N ",p=" P "x",
        "c=biws,r=" N ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndV",
        "c=biws,r=" N ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ",
        "c=biws,r=" N ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQAAAA",
        "c=biws,r=" N ",p=dHzbZapWIk4jUhN-Ute9ytag9zjfMHgsqmmiz7AndVQ=",
        "c=biws,r=" N ",p=Zm9v",
        "c=biws,r=" RFC_CNONCE ",p=" P,
        "c=biws,r=" N "x,p=" P,
        "c=biws,r=" RFC_CNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,p=" P,
        "c=biws,r=,p=" P,
        "c=eSws,r=" N ",p=" P,
        "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" N ",p=" P,
        "c=biw,r=" N ",p=" P,
        "c=bi=s,r=" N ",p=" P,
        "c=,r=" N ",p=" P,
        "r=" N ",c=biws,p=" P,
        "c=biws,p=" P ",r=" N,
        "p=" P,
        "c=biws,x=1,r=" N ",p=" P,
        "c=biws,r=" N ",,p=" P,
        "c=biws,r=" N ",1=2,p=" P,
        " c=biws,r=" N ",p=" P,
    };
    char err[256];
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct buf out;
        buf_init(&out);
        struct sec_scram *s = rfc_round1("n,,");
        err[0] = '\0';
        enum sec_scram_rc rc = final(s, bad[i], &out, err, sizeof err);
        if (rc != SEC_SCRAM_PROTO)
            fail_msg("client-final %zu (%s): rc %d", i, bad[i], rc);
        assert_true(strlen(err) > 0);
        assert_int_equal(out.len, 0);
        sec_scram_free(s);
        buf_free(&out);
    }
    /* the gs2 header must match the one sent in round 1 */
    struct buf out;
    buf_init(&out);
    struct sec_scram *s = rfc_round1("y,,");
    assert_int_equal(final(s, "c=biws,r=" N ",p=" P, &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_non_null(strstr(err, "channel binding"));
    sec_scram_free(s);
    s = rfc_round1("n,,");
    assert_int_equal(final(s, "c=biws,r=" RFC_CNONCE ",p=" P, &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_non_null(strstr(err, "nonce"));
    sec_scram_free(s);
    /* a well-formed but wrong proof is a FAIL, not PROTO */
    s = rfc_round1("n,,");
    assert_int_equal(final(s, "c=biws,r=" N ",p=" RFC_STORED, &out, err, sizeof err), SEC_SCRAM_FAIL);
    sec_scram_free(s);
    /* extensions before the proof are part of the AuthMessage: the RFC
     * proof no longer matches */
    s = rfc_round1("n,,");
    assert_int_equal(final(s, "c=biws,r=" N ",x=1,p=" P, &out, err, sizeof err), SEC_SCRAM_FAIL);
    sec_scram_free(s);
    /* embedded NUL */
    s = rfc_round1("n,,");
    char m[] = "c=biws,r=" N ",p=" P;
    m[3] = '\0';
    assert_int_equal(sec_scram_client_final(s, m, sizeof m - 1, &out, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    buf_free(&out);
#undef N
#undef P
}

static void test_out_of_order(void **state)
{
    (void)state;
    char err[256];
    struct buf out;
    buf_init(&out);
    const char *fin = "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
    /* final before first */
    struct sec_scram *s = sec_scram_new("user", NULL, mock_key);
    assert_int_equal(final(s, fin, &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_int_equal(first(s, "n,,n=,r=abc", &out, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    /* first twice */
    s = rfc_round1("n,,");
    assert_int_equal(first(s, "n,,n=user,r=" RFC_CNONCE, &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_int_equal(final(s, fin, &out, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    /* nonce hook after round 1 */
    s = rfc_round1("n,,");
    assert_int_equal(sec_scram_set_nonce_for_test(s, "abc"), -1);
    /* after OK everything is refused */
    assert_int_equal(final(s, fin, &out, err, sizeof err), SEC_SCRAM_OK);
    buf_reset(&out);
    assert_int_equal(final(s, fin, &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_int_equal(first(s, "n,,n=,r=abc", &out, err, sizeof err), SEC_SCRAM_PROTO);
    assert_int_equal(out.len, 0);
    sec_scram_free(s);
    /* after FAIL too */
    s = rfc_round1("n,,");
    assert_int_equal(final(s, "c=biws,r=" RFC_CNONCE RFC_SNONCE ",p=" RFC_STORED, &out, err, sizeof err),
                     SEC_SCRAM_FAIL);
    assert_int_equal(final(s, fin, &out, err, sizeof err), SEC_SCRAM_PROTO);
    sec_scram_free(s);
    sec_scram_free(NULL);
    buf_free(&out);
}

static void test_oom(void **state)
{
    (void)state;
    char v[SEC_VERIFIER_MAX];
    assert_int_equal(sec_scram_make_verifier("pw", SEC_SCRAM_ITERATIONS, v, sizeof v), 0);
    int completed = 0;
    for (long n = 1; n < 40 && !completed; n++) {
        for (int unknown = 0; unknown < 2; unknown++) {
            char err[256];
            struct buf a, b;
            buf_init(&a);
            buf_init(&b);
            util_fail_after(n);
            struct sec_scram *s = sec_scram_new("u", unknown ? NULL : v, mock_key);
            if (s) {
                struct client c;
                snprintf(c.first_bare, sizeof c.first_bare, "n=,r=abcdef");
                enum sec_scram_rc rc = first(s, "n,,n=,r=abcdef", &a, err, sizeof err);
                if (rc == SEC_SCRAM_CONTINUE && buf_ok(&a)) {
                    util_fail_after(0);
                    client_final(&c, "n,,", a.data, a.len, "pw");
                    util_fail_after(n % 2); /* the server-final's buffer */
                    rc = final(s, c.final, &b, err, sizeof err);
                    assert_true(rc == SEC_SCRAM_PROTO || rc == (unknown ? SEC_SCRAM_FAIL : SEC_SCRAM_OK));
                    if (n > 10 && !unknown && rc == SEC_SCRAM_OK)
                        completed = 1;
                } else {
                    assert_int_equal(rc, SEC_SCRAM_PROTO);
                }
                sec_scram_free(s);
            }
            util_fail_after(0);
            buf_free(&a);
            buf_free(&b);
        }
    }
    assert_true(completed);
}

static void test_gen_password(void **state)
{
    (void)state;
    char a[65], b[65];
    int seen[256] = {0};
    assert_int_equal(sec_gen_password(a, 64), 0);
    assert_int_equal(sec_gen_password(b, 64), 0);
    assert_int_equal(strlen(a), 64);
    assert_string_not_equal(a, b);
    for (int r = 0; r < 200; r++) {
        assert_int_equal(sec_gen_password(a, 64), 0);
        for (int i = 0; i < 64; i++) {
            unsigned char ch = (unsigned char)a[i];
            assert_true((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'));
            seen[ch]++;
        }
    }
    /* 12800 draws over 62 symbols: every symbol shows up */
    int distinct = 0;
    for (int i = 0; i < 256; i++)
        distinct += seen[i] > 0;
    assert_int_equal(distinct, 62);
    char z[1] = {'x'};
    assert_int_equal(sec_gen_password(z, 0), 0);
    assert_int_equal(z[0], '\0');
    assert_int_equal(sec_gen_password(NULL, 4), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64),         cmocka_unit_test(test_verifier),
        cmocka_unit_test(test_rfc7677),        cmocka_unit_test(test_exchange),
        cmocka_unit_test(test_wrong_password), cmocka_unit_test(test_unknown_user),
        cmocka_unit_test(test_malformed_first), cmocka_unit_test(test_malformed_final),
        cmocka_unit_test(test_out_of_order),   cmocka_unit_test(test_oom),
        cmocka_unit_test(test_gen_password),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
