/* security: authentication primitives and the role catalog.
 *   scram.c - SCRAM-SHA-256 (RFC 5802 / RFC 7677) server side, as PostgreSQL
 *             speaks it: verifiers, the two-round exchange, mock exchanges
 *             for unknown users so they fail exactly like a wrong password
 *   roles.c - in-memory role catalog loaded from the database
 * Prefix: sec_. */
#ifndef ORBIT_SECURITY_H
#define ORBIT_SECURITY_H

#include <stddef.h>

#include "util.h"

#define SEC_SCRAM_ITERATIONS 4096
#define SEC_VERIFIER_MAX 256

/* Build a PostgreSQL-format SCRAM verifier for password:
 *   SCRAM-SHA-256$<iterations>:<base64 salt>$<base64 StoredKey>:<base64 ServerKey>
 * with a fresh random 16-byte salt. The password is SASLprep-normalised
 * the way PostgreSQL does for ASCII (non-ASCII passwords are used as raw
 * bytes, as PostgreSQL does when SASLprep fails). Returns 0, or -1. */
int sec_scram_make_verifier(const char *password, int iterations, char *out, size_t cap) MUSTCHECK;
/* Same with a given salt (for tests). */
int sec_scram_make_verifier_salt(const char *password, int iterations, const unsigned char *salt,
                                 size_t saltlen, char *out, size_t cap) MUSTCHECK;
/* 1 when s parses as a SCRAM verifier. */
int sec_scram_is_verifier(const char *s);

/* Result of a step of the exchange. */
enum sec_scram_rc {
    SEC_SCRAM_CONTINUE = 0, /* send *out to the client and wait for the next message */
    SEC_SCRAM_OK = 1,       /* authenticated: send *out as AuthenticationSASLFinal */
    SEC_SCRAM_FAIL = -1,    /* wrong password or unknown user: SQLSTATE 28P01 */
    SEC_SCRAM_PROTO = -2,   /* malformed message: SQLSTATE 08P01, err says why */
};

struct sec_scram;

/* Start a server-side exchange. verifier is the stored verifier, or NULL
 * when the user does not exist or has no password: the exchange then runs
 * with a mock verifier derived from mock_key (a per-server secret) and the
 * user name, and fails at the end exactly like a wrong password. The
 * returned object is small (< 512 bytes) and freed with sec_scram_free. */
struct sec_scram *sec_scram_new(const char *user, const char *verifier, const unsigned char mock_key[32]);
void sec_scram_free(struct sec_scram *s);

/* Round 1: the client-first-message (the data of SASLInitialResponse
 * after the mechanism name and length). On CONTINUE, *out holds the
 * server-first-message. Channel binding: "n,," and "y,," are accepted;
 * "p=..." gives SEC_SCRAM_PROTO (we do not offer SCRAM-SHA-256-PLUS yet). */
enum sec_scram_rc sec_scram_client_first(struct sec_scram *s, const char *msg, size_t len, struct buf *out,
                                         char *err, size_t errcap);
/* Round 2: the client-final-message. On OK, *out holds the server-final
 * message ("v=..."). */
/* (Both rounds append to *out, which is left untouched unless the result is
 * CONTINUE/OK; msg need not be NUL-terminated. Any result other than
 * CONTINUE ends the exchange: later calls give SEC_SCRAM_PROTO.) */
enum sec_scram_rc sec_scram_client_final(struct sec_scram *s, const char *msg, size_t len, struct buf *out,
                                         char *err, size_t errcap);

/* TEST ONLY: use nonce (printable ASCII except ',', at most 256 chars)
 * instead of 18 random bytes as the server's part of the nonce, so tests
 * can replay fixed vectors (RFC 7677). Call before sec_scram_client_first.
 * Never use in the server. Returns 0, or -1 on bad input / wrong state. */
int sec_scram_set_nonce_for_test(struct sec_scram *s, const char *nonce) MUSTCHECK;

/* Generate a random printable password of len characters into out
 * (out must hold len + 1). Returns 0 or -1. */
int sec_gen_password(char *out, size_t len) MUSTCHECK;

/* Base64 (RFC 4648, with padding). decode returns the decoded length or
 * -1 on invalid input; encode returns the encoded length (NUL-terminated). */
/* (Both also return -1 when cap is too small. decode reads exactly len
 * bytes and is strict: padding only at the end, canonical trailing bits.) */
int sec_base64_encode(const unsigned char *in, size_t len, char *out, size_t cap);
int sec_base64_decode(const char *in, size_t len, unsigned char *out, size_t cap);


/* ---- role catalog (roles.c) ----------------------------------------------
 * Roles live in the database table _orbit_roles (name, verifier,
 * superuser, login) and are cached in memory so authentication never
 * touches SQLite on the event loop. */
struct sec_roles;
struct sec_role {
    char *name;
    char *verifier; /* SCRAM verifier or NULL (no password: cannot log in) */
    int superuser;
    int login;
};
struct sqlite3;
/* Create the catalog tables if missing and, on a fresh database, the
 * superuser role "orbit" with password (NULL: generate one and return it
 * in *generated, util_free'd by the caller). Also loads or creates the
 * server's mock-authentication key. Returns 0 or -1 with err. */
int sec_catalog_init(struct sqlite3 *db, const char *password, char **generated, unsigned char mock_key[32],
                     char *err, size_t errcap) MUSTCHECK;
/* Load every role into a new in-memory catalog (NULL + err on failure). */
struct sec_roles *sec_roles_load(struct sqlite3 *db, char *err, size_t errcap);
void sec_roles_free(struct sec_roles *r);
/* Thread-safe lookup; copies the role into *out (strings util_free'd via
 * sec_role_clear). Returns 0 when found, -1 when not. */
int sec_roles_find(struct sec_roles *r, const char *name, struct sec_role *out);
void sec_role_clear(struct sec_role *r);

#endif
