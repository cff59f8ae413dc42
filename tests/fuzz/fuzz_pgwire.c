/* libFuzzer target for the protocol parser: startup packets, message
 * framing and the payload layouts of every frontend message the server
 * parses (Parse, Bind, Describe, Execute, Close, SASL). Build with
 * `make fuzz` (clang -fsanitize=fuzzer,address,undefined); the unit test
 * test_fuzz_pgwire replays it on seeded random inputs under gcc + ASan. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pgwire.h"

static void walk_payload(char type, const char *p, size_t len)
{
    struct pgw_rd r;
    pgw_rd_init(&r, p, len);
    switch (type) {
    case 'P': {
        (void)pgw_rd_str(&r);
        (void)pgw_rd_str(&r);
        int16_t n = pgw_rd_i16(&r);
        for (int i = 0; i < n && pgw_rd_ok(&r); i++)
            (void)pgw_rd_i32(&r);
        break;
    }
    case 'B': {
        (void)pgw_rd_str(&r);
        (void)pgw_rd_str(&r);
        int16_t nf = pgw_rd_i16(&r);
        if (nf > 0)
            (void)pgw_rd_bytes(&r, (size_t)nf * 2);
        int16_t np = pgw_rd_i16(&r);
        for (int i = 0; i < np && pgw_rd_ok(&r); i++) {
            int32_t l = pgw_rd_i32(&r);
            if (l > 0)
                (void)pgw_rd_bytes(&r, (size_t)l);
        }
        int16_t nr = pgw_rd_i16(&r);
        for (int i = 0; i < nr && pgw_rd_ok(&r); i++)
            (void)pgw_rd_i16(&r);
        break;
    }
    case 'D':
    case 'C':
        (void)pgw_rd_u8(&r);
        (void)pgw_rd_str(&r);
        break;
    case 'E':
        (void)pgw_rd_str(&r);
        (void)pgw_rd_i32(&r);
        break;
    case 'p': {
        (void)pgw_rd_str(&r);
        int32_t n = pgw_rd_i32(&r);
        if (n > 0)
            (void)pgw_rd_bytes(&r, (size_t)n);
        break;
    }
    case 'Q':
        (void)pgw_utf8_valid(p, len);
        break;
    default:
        break;
    }
    (void)pgw_rd_done(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    size_t total;
    int rc = pgw_frame_startup(p, size, &total);
    if (rc == 1) {
        struct pgw_startup su;
        char err[128];
        if (pgw_parse_startup(p, total, &su, err, sizeof err) == 0 && su.kind == PGW_SK_STARTUP)
            (void)pgw_startup_get(&su, "user");
        p += total;
        size -= total;
    }
    while (size > 0) {
        char type;
        const char *payload;
        size_t plen;
        if (pgw_frame(p, size, 1u << 30, &type, &payload, &plen, &total) != 1)
            break;
        walk_payload(type, payload, plen);
        p += total;
        size -= total;
    }
    return 0;
}
