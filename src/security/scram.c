/* security/scram.c: SCRAM-SHA-256 server side (RFC 5802 / RFC 7677) as
 * PostgreSQL speaks it: verifier creation and strict parsing, the two-round
 * exchange, mock exchanges for unknown users, and password generation. */
#include "security.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#define KEYLEN 32         /* SHA-256 output */
#define SALT_LEN 16       /* fresh and mock salts */
#define SALT_MAX 128      /* largest salt accepted in a stored verifier */
#define NONCE_RAW 18      /* random bytes in the server nonce part */
#define MSG_MAX 16384     /* longest SCRAM message we accept */
#define TEST_NONCE_MAX 256
#define VERIFIER_PREFIX "SCRAM-SHA-256$"

enum { ST_FIRST, ST_FINAL, ST_DONE };

struct sec_scram {
    unsigned char stored_key[KEYLEN];
    unsigned char server_key[KEYLEN];
    char *salt_b64;          /* base64 salt sent in server-first */
    char *client_first_bare; /* for the AuthMessage */
    char *server_first;      /* "r=<nonce>,s=...,i=..." */
    char *test_nonce;        /* injected server nonce part (tests only) */
    size_t cfb_len, sf_len;
    size_t nonce_len; /* full nonce = server_first + 2 */
    int iterations;
    int state;
    int doomed; /* unknown user or unusable verifier: always fails */
    char cbind; /* gs2 channel-binding flag received: 'n' or 'y' */
};

struct piece {
    const void *p;
    size_t len;
};

/* ---- crypto helpers ---- */

static int hmac_pieces(const unsigned char *key, size_t keylen, const struct piece *pc, size_t n,
                       unsigned char out[KEYLEN])
{
    int ok = 0;
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    if (!ctx || !EVP_MAC_init(ctx, key, keylen, params))
        goto done;
    for (size_t i = 0; i < n; i++)
        if (pc[i].len && !EVP_MAC_update(ctx, pc[i].p, pc[i].len))
            goto done;
    size_t outl = 0;
    if (!EVP_MAC_final(ctx, out, &outl, KEYLEN) || outl != KEYLEN)
        goto done;
    ok = 1;
done:
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return ok ? 0 : -1;
}

static int hmac2(const unsigned char *key, size_t keylen, const void *a, size_t alen, const void *b, size_t blen,
                 unsigned char out[KEYLEN])
{
    struct piece pc[2] = {{a, alen}, {b, blen}};
    return hmac_pieces(key, keylen, pc, 2, out);
}

static int sha256(const void *p, size_t n, unsigned char out[KEYLEN])
{
    unsigned int outl = 0;
    return EVP_Digest(p, n, out, &outl, EVP_sha256(), NULL) == 1 && outl == KEYLEN ? 0 : -1;
}

/* ---- verifiers ---- */

struct parsed_verifier {
    int iterations;
    const char *salt_b64; /* points into the verifier */
    size_t salt_b64_len;
    unsigned char stored_key[KEYLEN];
    unsigned char server_key[KEYLEN];
};

/* Strict parse of SCRAM-SHA-256$<iter>:<salt>$<StoredKey>:<ServerKey>. */
static int parse_verifier(const char *v, struct parsed_verifier *pv)
{
    unsigned char tmp[SALT_MAX];
    if (!v || strncmp(v, VERIFIER_PREFIX, strlen(VERIFIER_PREFIX)) != 0)
        return -1;
    const char *p = v + strlen(VERIFIER_PREFIX);
    long long iter = 0;
    const char *d = p;
    while (*p >= '0' && *p <= '9' && p - d < 10)
        iter = iter * 10 + (*p++ - '0');
    if (p == d || *d == '0' || iter < 1 || iter > INT_MAX || *p != ':')
        return -1;
    pv->iterations = (int)iter;
    const char *salt = ++p;
    while (*p && *p != '$')
        p++;
    if (*p != '$')
        return -1;
    int n = sec_base64_decode(salt, (size_t)(p - salt), tmp, sizeof tmp);
    if (n <= 0)
        return -1;
    pv->salt_b64 = salt;
    pv->salt_b64_len = (size_t)(p - salt);
    const char *sk = ++p;
    while (*p && *p != ':')
        p++;
    if (*p != ':' || sec_base64_decode(sk, (size_t)(p - sk), pv->stored_key, KEYLEN) != KEYLEN)
        return -1;
    const char *vk = ++p;
    size_t vlen = strlen(vk);
    if (sec_base64_decode(vk, vlen, pv->server_key, KEYLEN) != KEYLEN)
        return -1;
    return 0;
}

int sec_scram_is_verifier(const char *s)
{
    struct parsed_verifier pv;
    int ok = parse_verifier(s, &pv) == 0;
    OPENSSL_cleanse(&pv, sizeof pv);
    return ok;
}

int sec_scram_make_verifier_salt(const char *password, int iterations, const unsigned char *salt, size_t saltlen,
                                 char *out, size_t cap)
{
    if (!password || iterations < 1 || !salt || saltlen == 0 || saltlen > SALT_MAX || !out || !cap)
        return -1;
    /* SASLprep: PostgreSQL passes pure-ASCII passwords through unchanged and
     * uses the raw bytes when normalisation is not possible. */
    size_t pwlen = strlen(password);
    if (pwlen > INT_MAX)
        return -1;
    unsigned char salted[KEYLEN], client_key[KEYLEN], stored[KEYLEN], server[KEYLEN];
    char salt_b64[SALT_MAX / 3 * 4 + 8], stored_b64[48], server_b64[48];
    int rc = -1;
    if (PKCS5_PBKDF2_HMAC(password, (int)pwlen, salt, (int)saltlen, iterations, EVP_sha256(), KEYLEN, salted) != 1)
        goto done;
    if (hmac2(salted, KEYLEN, "Client Key", 10, NULL, 0, client_key) || sha256(client_key, KEYLEN, stored) ||
        hmac2(salted, KEYLEN, "Server Key", 10, NULL, 0, server))
        goto done;
    if (sec_base64_encode(salt, saltlen, salt_b64, sizeof salt_b64) < 0 ||
        sec_base64_encode(stored, KEYLEN, stored_b64, sizeof stored_b64) < 0 ||
        sec_base64_encode(server, KEYLEN, server_b64, sizeof server_b64) < 0)
        goto done;
    int n = snprintf(out, cap, VERIFIER_PREFIX "%d:%s$%s:%s", iterations, salt_b64, stored_b64, server_b64);
    if (n < 0 || (size_t)n >= cap) {
        out[0] = '\0';
        goto done;
    }
    rc = 0;
done:
    OPENSSL_cleanse(salted, sizeof salted);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(stored, sizeof stored);
    OPENSSL_cleanse(server, sizeof server);
    return rc;
}

int sec_scram_make_verifier(const char *password, int iterations, char *out, size_t cap)
{
    unsigned char salt[SALT_LEN];
    if (util_random_bytes(salt, sizeof salt))
        return -1;
    return sec_scram_make_verifier_salt(password, iterations, salt, sizeof salt, out, cap);
}

/* ---- exchange state ---- */

struct sec_scram *sec_scram_new(const char *user, const char *verifier, const unsigned char mock_key[32])
{
    static const unsigned char zero_key[32];
    struct sec_scram *s = util_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (!user)
        user = "";
    if (!mock_key)
        mock_key = zero_key; /* callers must pass the server secret; never crash */
    s->state = ST_FIRST;
    struct parsed_verifier pv;
    if (verifier && parse_verifier(verifier, &pv) == 0) {
        s->iterations = pv.iterations;
        memcpy(s->stored_key, pv.stored_key, KEYLEN);
        memcpy(s->server_key, pv.server_key, KEYLEN);
        s->salt_b64 = util_strndup(pv.salt_b64, pv.salt_b64_len);
        OPENSSL_cleanse(&pv, sizeof pv);
        if (!s->salt_b64)
            goto fail;
        return s;
    }
    if (verifier) {
        char q[128];
        log_warn("scram_bad_verifier", "user=%s msg=\"stored password is not a valid SCRAM-SHA-256 verifier\"",
                 log_quote(q, sizeof q, user));
    }
    /* Mock exchange: a salt and keys that are stable per user name, so
     * repeated probes see the same answer as for a real role. */
    unsigned char h[KEYLEN];
    char salt_b64[SALT_LEN / 3 * 4 + 8];
    size_t ulen = strlen(user);
    s->doomed = 1;
    s->iterations = SEC_SCRAM_ITERATIONS;
    if (hmac2(mock_key, 32, "salt", 4, user, ulen, h) ||
        sec_base64_encode(h, SALT_LEN, salt_b64, sizeof salt_b64) < 0 ||
        hmac2(mock_key, 32, "stored", 6, user, ulen, s->stored_key) ||
        hmac2(mock_key, 32, "server", 6, user, ulen, s->server_key))
        goto fail;
    s->salt_b64 = util_strdup(salt_b64);
    if (!s->salt_b64)
        goto fail;
    return s;
fail:
    sec_scram_free(s);
    return NULL;
}

void sec_scram_free(struct sec_scram *s)
{
    if (!s)
        return;
    util_free(s->salt_b64);
    util_free(s->client_first_bare);
    util_free(s->server_first);
    util_free(s->test_nonce);
    OPENSSL_cleanse(s, sizeof *s);
    util_free(s);
}

static int is_printable_nonce(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        if (c < 0x21 || c > 0x7e || c == ',')
            return 0;
    }
    return 1;
}

int sec_scram_set_nonce_for_test(struct sec_scram *s, const char *nonce)
{
    if (!s || s->state != ST_FIRST || !nonce || strlen(nonce) > TEST_NONCE_MAX ||
        !is_printable_nonce(nonce, strlen(nonce)))
        return -1;
    char *c = util_strdup(nonce);
    if (!c)
        return -1;
    util_free(s->test_nonce);
    s->test_nonce = c;
    return 0;
}

/* ---- message parsing ---- */

static enum sec_scram_rc proto(char *err, size_t errcap, const char *fmt, ...) PRINTF_LIKE(3, 4);
static enum sec_scram_rc proto(char *err, size_t errcap, const char *fmt, ...)
{
    if (err && errcap) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errcap, fmt, ap);
        va_end(ap);
    }
    return SEC_SCRAM_PROTO;
}

struct cur {
    const char *p, *end;
};

/* Reads "<letter>=<value>" up to the next ',' or the end (the ',' is not
 * consumed). Returns 0, or -1 when there is no well-formed attribute. */
static int read_attr(struct cur *c, char *attr, const char **val, size_t *vlen)
{
    if (c->end - c->p < 2)
        return -1;
    char a = c->p[0];
    if (!((a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z')) || c->p[1] != '=')
        return -1;
    const char *v = c->p + 2;
    const char *e = memchr(v, ',', (size_t)(c->end - v));
    if (!e)
        e = c->end;
    *attr = a;
    *val = v;
    *vlen = (size_t)(e - v);
    c->p = e;
    return 0;
}

/* Reads attribute `want`; on failure writes a message naming `what`. */
static int expect_attr(struct cur *c, char want, const char *what, const char **val, size_t *vlen, char *err,
                       size_t errcap)
{
    char a;
    if (read_attr(c, &a, val, vlen) || a != want) {
        proto(err, errcap, "malformed SCRAM message: expected %s (\"%c=\")", what, want);
        return -1;
    }
    return 0;
}

/* Consumes a ','; 0 when there was one, -1 at the end or on other data. */
static int eat_comma(struct cur *c)
{
    if (c->p < c->end && *c->p == ',') {
        c->p++;
        return 0;
    }
    return -1;
}

static int check_message(const char *msg, size_t len, char *err, size_t errcap)
{
    if (!msg || len == 0) {
        proto(err, errcap, "malformed SCRAM message: the message is empty");
        return -1;
    }
    if (len > MSG_MAX) {
        proto(err, errcap, "malformed SCRAM message: the message is too long");
        return -1;
    }
    if (memchr(msg, '\0', len)) {
        proto(err, errcap, "malformed SCRAM message: the message contains null bytes");
        return -1;
    }
    return 0;
}

static char *dupn(const char *p, size_t n, size_t *outlen)
{
    char *d = util_malloc(n + 1);
    if (d) {
        memcpy(d, p, n);
        d[n] = '\0';
        *outlen = n;
    }
    return d;
}

/* ---- round 1 ---- */

enum sec_scram_rc sec_scram_client_first(struct sec_scram *s, const char *msg, size_t len, struct buf *out,
                                         char *err, size_t errcap)
{
    if (err && errcap)
        err[0] = '\0';
    if (!s || !out)
        return proto(err, errcap, "SCRAM exchange not initialised");
    if (s->state != ST_FIRST) {
        s->state = ST_DONE;
        return proto(err, errcap, "unexpected SCRAM client-first-message");
    }
    s->state = ST_DONE; /* any failure ends the exchange */
    if (check_message(msg, len, err, errcap))
        return SEC_SCRAM_PROTO;
    struct cur c = {msg, msg + len};
    /* gs2-header */
    char flag = *c.p++;
    if (flag == 'p')
        return proto(err, errcap,
                     "the client requested SCRAM channel binding (\"p=\"), but the SCRAM-SHA-256 mechanism without "
                     "channel binding was selected and SCRAM-SHA-256-PLUS is not supported");
    if (flag != 'n' && flag != 'y')
        return proto(err, errcap, "malformed SCRAM message: unexpected channel-binding flag");
    if (eat_comma(&c))
        return proto(err, errcap, "malformed SCRAM message: comma expected after the channel-binding flag");
    if (c.p < c.end && *c.p == 'a')
        return proto(err, errcap, "client uses authorization identity, but it is not supported");
    if (eat_comma(&c))
        return proto(err, errcap, "malformed SCRAM message: comma expected after the GS2 header");
    /* client-first-message-bare */
    const char *bare = c.p;
    if (c.end - c.p >= 2 && c.p[0] == 'm' && c.p[1] == '=')
        return proto(err, errcap, "client requires an unsupported SCRAM extension");
    const char *val, *nonce;
    size_t vlen, nonce_len;
    /* user name: PostgreSQL takes it from the startup packet and ignores it */
    if (expect_attr(&c, 'n', "user name", &val, &vlen, err, errcap))
        return SEC_SCRAM_PROTO;
    if (eat_comma(&c) || expect_attr(&c, 'r', "nonce", &nonce, &nonce_len, err, errcap))
        return proto(err, errcap, "malformed SCRAM message: expected nonce (\"r=\") after the user name");
    if (!is_printable_nonce(nonce, nonce_len))
        return proto(err, errcap, "malformed SCRAM message: empty or non-printable characters in the nonce");
    while (c.p < c.end) { /* optional extensions: ignored */
        char a;
        if (eat_comma(&c) || read_attr(&c, &a, &val, &vlen))
            return proto(err, errcap, "malformed SCRAM message: garbage after the nonce");
    }

    /* server-first-message */
    char snonce[TEST_NONCE_MAX + 1];
    if (s->test_nonce) {
        util_strlcpy(snonce, s->test_nonce, sizeof snonce);
    } else {
        unsigned char raw[NONCE_RAW];
        if (util_random_bytes(raw, sizeof raw) || sec_base64_encode(raw, sizeof raw, snonce, sizeof snonce) < 0)
            return proto(err, errcap, "could not generate a SCRAM nonce");
    }
    s->client_first_bare = dupn(bare, (size_t)(c.end - bare), &s->cfb_len);
    struct buf sf;
    buf_init(&sf);
    buf_puts(&sf, "r=");
    buf_append(&sf, nonce, nonce_len);
    buf_puts(&sf, snonce);
    s->nonce_len = sf.len - 2;
    buf_printf(&sf, ",s=%s,i=%d", s->salt_b64, s->iterations);
    if (!buf_ok(&sf) || !s->client_first_bare) {
        buf_free(&sf);
        return proto(err, errcap, "out of memory");
    }
    s->server_first = buf_steal(&sf, &s->sf_len);
    buf_append(out, s->server_first, s->sf_len);
    if (!buf_ok(out))
        return proto(err, errcap, "out of memory");
    s->cbind = flag;
    s->state = ST_FINAL;
    return SEC_SCRAM_CONTINUE;
}

/* ---- round 2 ---- */

enum sec_scram_rc sec_scram_client_final(struct sec_scram *s, const char *msg, size_t len, struct buf *out,
                                         char *err, size_t errcap)
{
    if (err && errcap)
        err[0] = '\0';
    if (!s || !out)
        return proto(err, errcap, "SCRAM exchange not initialised");
    if (s->state != ST_FINAL) {
        s->state = ST_DONE;
        return proto(err, errcap, "unexpected SCRAM client-final-message");
    }
    s->state = ST_DONE;
    if (check_message(msg, len, err, errcap))
        return SEC_SCRAM_PROTO;
    struct cur c = {msg, msg + len};
    const char *val;
    size_t vlen;
    /* channel binding: base64 of the gs2 header we received */
    if (expect_attr(&c, 'c', "channel binding", &val, &vlen, err, errcap))
        return SEC_SCRAM_PROTO;
    unsigned char cb[8];
    int cbn = sec_base64_decode(val, vlen, cb, sizeof cb);
    if (cbn < 0)
        return proto(err, errcap, "malformed SCRAM message: invalid base64 in the channel binding");
    if (cbn != 3 || cb[0] != (unsigned char)s->cbind || cb[1] != ',' || cb[2] != ',')
        return proto(err, errcap, "SCRAM channel binding check failed");
    /* nonce */
    if (eat_comma(&c) || expect_attr(&c, 'r', "nonce", &val, &vlen, err, errcap))
        return proto(err, errcap, "malformed SCRAM message: expected nonce (\"r=\") after the channel binding");
    if (vlen != s->nonce_len || memcmp(val, s->server_first + 2, vlen) != 0)
        return proto(err, errcap, "invalid SCRAM response: nonce does not match");
    /* optional extensions, then the proof, which must come last */
    const char *proof = NULL, *without_proof_end = NULL;
    size_t proof_len = 0;
    while (!proof) {
        char a;
        const char *comma = c.p;
        if (eat_comma(&c))
            return proto(err, errcap, "malformed SCRAM message: missing proof (\"p=\")");
        if (read_attr(&c, &a, &val, &vlen))
            return proto(err, errcap, "malformed SCRAM message: malformed attribute in client-final-message");
        if (a == 'p') {
            proof = val;
            proof_len = vlen;
            without_proof_end = comma;
        }
    }
    if (c.p != c.end)
        return proto(err, errcap, "malformed SCRAM message: garbage at the end of client-final-message");
    unsigned char client_proof[KEYLEN];
    if (sec_base64_decode(proof, proof_len, client_proof, sizeof client_proof) != KEYLEN)
        return proto(err, errcap, "malformed SCRAM message: invalid ClientProof");

    /* verify: the same work for real and mock exchanges */
    struct piece auth[5] = {{s->client_first_bare, s->cfb_len},
                            {",", 1},
                            {s->server_first, s->sf_len},
                            {",", 1},
                            {msg, (size_t)(without_proof_end - msg)}};
    unsigned char sig[KEYLEN], client_key[KEYLEN], h[KEYLEN];
    enum sec_scram_rc rc;
    if (hmac_pieces(s->stored_key, KEYLEN, auth, ARRAY_LEN(auth), sig)) {
        rc = proto(err, errcap, "internal error computing the SCRAM signature");
        goto done;
    }
    for (size_t i = 0; i < KEYLEN; i++)
        client_key[i] = client_proof[i] ^ sig[i];
    if (sha256(client_key, KEYLEN, h)) {
        rc = proto(err, errcap, "internal error computing the SCRAM signature");
        goto done;
    }
    int match = CRYPTO_memcmp(h, s->stored_key, KEYLEN) == 0;
    if (!match || s->doomed) {
        rc = SEC_SCRAM_FAIL;
        goto done;
    }
    /* server-final-message */
    char v[48];
    if (hmac_pieces(s->server_key, KEYLEN, auth, ARRAY_LEN(auth), sig) ||
        sec_base64_encode(sig, KEYLEN, v, sizeof v) < 0) {
        rc = proto(err, errcap, "internal error computing the SCRAM signature");
        goto done;
    }
    buf_puts(out, "v=");
    buf_puts(out, v);
    rc = buf_ok(out) ? SEC_SCRAM_OK : proto(err, errcap, "out of memory");
done:
    OPENSSL_cleanse(client_proof, sizeof client_proof);
    OPENSSL_cleanse(client_key, sizeof client_key);
    OPENSSL_cleanse(sig, sizeof sig);
    OPENSSL_cleanse(h, sizeof h);
    return rc;
}

/* ---- passwords ---- */

int sec_gen_password(char *out, size_t len)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    const unsigned n = sizeof alphabet - 1; /* 62 */
    const unsigned limit = 256 / n * n;     /* 248: reject bytes >= this */
    if (!out)
        return -1;
    size_t i = 0;
    unsigned char rnd[64];
    while (i < len) {
        if (util_random_bytes(rnd, sizeof rnd)) {
            out[0] = '\0';
            return -1;
        }
        for (size_t j = 0; j < sizeof rnd && i < len; j++)
            if (rnd[j] < limit)
                out[i++] = alphabet[rnd[j] % n];
    }
    out[len] = '\0';
    OPENSSL_cleanse(rnd, sizeof rnd);
    return 0;
}
