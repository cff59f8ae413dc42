/* pgwire: PostgreSQL frontend/backend protocol v3 framing and codec.
 * Pure functions over byte buffers: no sockets, no session state, so the
 * parser can be unit-tested and fuzzed on its own. Prefix: pgw_. */
#ifndef ORBIT_PGWIRE_H
#define ORBIT_PGWIRE_H

#include <stddef.h>
#include <stdint.h>

#include "util.h"

#define PGW_PROTO_V3 196608u       /* 3.0 */
#define PGW_SSL_REQUEST 80877103u
#define PGW_GSSENC_REQUEST 80877104u
#define PGW_CANCEL_REQUEST 80877102u
#define PGW_MAX_STARTUP 10000u     /* as PostgreSQL */
#define PGW_MAX_MESSAGE (1u << 30) /* hard cap: 1 GiB */

/* ---- framing ----------------------------------------------------------- */

/* Look for one complete regular message (type byte + int32 length) at p.
 * Returns 1 and fills type/payload/plen/total when complete, 0 when more
 * bytes are needed, -1 when the length is invalid (< 4 or > max_len): the
 * caller must reject the connection without allocating. */
int pgw_frame(const char *p, size_t avail, uint32_t max_len, char *type, const char **payload, size_t *plen,
              size_t *total);

/* Startup-phase packet (int32 length, int32 code, ...). Returns 1 when
 * complete (len/total filled), 0 need more, -1 invalid length. */
int pgw_frame_startup(const char *p, size_t avail, size_t *total);

enum pgw_startup_kind {
    PGW_SK_STARTUP,     /* protocol 3.x startup */
    PGW_SK_SSL,
    PGW_SK_GSSENC,
    PGW_SK_CANCEL,
    PGW_SK_BAD_VERSION, /* unsupported protocol version (major != 3) */
};

#define PGW_MAX_STARTUP_PARAMS 32
struct pgw_startup {
    enum pgw_startup_kind kind;
    uint32_t version;
    uint32_t cancel_pid, cancel_key;
    int nparams;
    /* pointers into the packet; valid while the packet is */
    const char *names[PGW_MAX_STARTUP_PARAMS];
    const char *values[PGW_MAX_STARTUP_PARAMS];
};

/* Parse a complete startup-phase packet (as framed by pgw_frame_startup).
 * Returns 0, or -1 with err filled for a malformed packet. */
int pgw_parse_startup(const char *p, size_t len, struct pgw_startup *out, char *err, size_t errcap) MUSTCHECK;
const char *pgw_startup_get(const struct pgw_startup *s, const char *name);

/* ---- reading message payloads ------------------------------------------ */

/* A bounds-checked cursor over a payload. Any read past the end sets err
 * (sticky) and returns zero values; check pgw_rd_ok() once at the end. */
struct pgw_rd {
    const char *p;
    size_t len;
    size_t pos;
    int err;
};
void pgw_rd_init(struct pgw_rd *r, const char *p, size_t len);
uint8_t pgw_rd_u8(struct pgw_rd *r);
int16_t pgw_rd_i16(struct pgw_rd *r);
int32_t pgw_rd_i32(struct pgw_rd *r);
/* NUL-terminated string inside the payload; NULL (and err) if none. */
const char *pgw_rd_str(struct pgw_rd *r);
/* n raw bytes; NULL (and err) when fewer remain. */
const char *pgw_rd_bytes(struct pgw_rd *r, size_t n);
int pgw_rd_ok(const struct pgw_rd *r);        /* no error */
int pgw_rd_done(const struct pgw_rd *r);      /* no error and fully consumed */

/* ---- building backend messages ----------------------------------------- */

/* Start a message of the given type; returns its offset for pgw_end. */
size_t pgw_begin(struct buf *b, char type);
void pgw_end(struct buf *b, size_t off);

void pgw_auth_ok(struct buf *b);
void pgw_auth_sasl(struct buf *b, const char *mechanism);
void pgw_auth_sasl_continue(struct buf *b, char code /* 11 continue, 12 final */, const char *data,
                            size_t len);
void pgw_param_status(struct buf *b, const char *name, const char *value);
void pgw_backend_key(struct buf *b, uint32_t pid, uint32_t key);
void pgw_ready(struct buf *b, char status);
void pgw_command_complete(struct buf *b, const char *tag);
void pgw_empty_query(struct buf *b);
void pgw_simple(struct buf *b, char type); /* no payload: '1','2','3','n','s','c' */
void pgw_negotiate_version(struct buf *b, uint32_t newest_minor, int nunrecognized,
                           const char *const *unrecognized);

/* ErrorResponse ('E') or NoticeResponse ('N'). severity is "ERROR",
 * "FATAL", "NOTICE"...; detail and hint may be NULL. Invalid UTF-8 in the
 * message is replaced so clients never choke. */
void pgw_error(struct buf *b, char type, const char *severity, const char *sqlstate, const char *msg,
               const char *detail, const char *hint);
/* The same with the routine field ('R'), which some clients act on:
 * pgjdbc re-prepares a statement when "cached plan must not change result
 * type" comes from routine RevalidateCachedQuery. */
void pgw_error_routine(struct buf *b, char type, const char *severity, const char *sqlstate, const char *msg,
                       const char *detail, const char *hint, const char *routine);

/* RowDescription field. */
struct pgw_field {
    const char *name;
    uint32_t table_oid;
    int16_t attnum;
    uint32_t type_oid;
    int16_t typlen;
    int32_t typmod;
    int16_t format;
};
void pgw_row_description(struct buf *b, const struct pgw_field *f, int n);

/* Copy-in/out response: 'G' or 'H', overall format 0, n columns text. */
void pgw_copy_response(struct buf *b, char type, int ncols);

/* 1 when the bytes are valid UTF-8. */
int pgw_utf8_valid(const char *p, size_t len);

#endif
