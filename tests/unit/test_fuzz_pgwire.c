/* Replays the libFuzzer target tests/fuzz/fuzz_pgwire.c on seeded random
 * and mutated inputs, so every `make test` (gcc, ASan/UBSan, valgrind)
 * exercises the parser on malformed bytes even without clang. */
#include <stdlib.h>

#include "../fuzz/fuzz_pgwire.c"
#include "unit.h"

static uint64_t rng = 0x9e3779b97f4a7c15ULL;
static uint32_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static size_t valid_seed(uint8_t *b)
{
    struct buf m;
    buf_init(&m);
    buf_put_u32(&m, 0);
    buf_put_u32(&m, PGW_PROTO_V3);
    buf_putsz(&m, "user");
    buf_putsz(&m, "orbit");
    buf_putc(&m, 0);
    buf_set_u32(&m, 0, (uint32_t)m.len);
    size_t o = pgw_begin(&m, 'P');
    buf_putsz(&m, "s1");
    buf_putsz(&m, "SELECT $1");
    buf_put_u16(&m, 1);
    buf_put_u32(&m, 23);
    pgw_end(&m, o);
    o = pgw_begin(&m, 'B');
    buf_putsz(&m, "");
    buf_putsz(&m, "s1");
    buf_put_u16(&m, 1);
    buf_put_u16(&m, 1);
    buf_put_u16(&m, 1);
    buf_put_u32(&m, 4);
    buf_put_u32(&m, 42);
    buf_put_u16(&m, 0);
    pgw_end(&m, o);
    o = pgw_begin(&m, 'E');
    buf_putsz(&m, "");
    buf_put_u32(&m, 0);
    pgw_end(&m, o);
    pgw_simple(&m, 'S');
    size_t n = m.len;
    memcpy(b, m.data, n);
    buf_free(&m);
    return n;
}

static void test_replay(void **state)
{
    (void)state;
    uint8_t seed[512], buf[600];
    size_t seedlen = valid_seed(seed);
    LLVMFuzzerTestOneInput(seed, seedlen);
    for (int iter = 0; iter < 200000; iter++) {
        size_t n;
        if (iter % 2) {
            /* mutate the valid stream */
            memcpy(buf, seed, seedlen);
            n = seedlen;
            int edits = 1 + (int)(next() % 8);
            for (int e = 0; e < edits; e++) {
                uint32_t r = next();
                size_t pos = r % n;
                switch ((r >> 8) % 4) {
                case 0: buf[pos] = (uint8_t)next(); break;
                case 1: buf[pos] ^= (uint8_t)(1u << (next() % 8)); break;
                case 2: n = pos ? pos : 1; break; /* truncate */
                case 3: buf[pos] = 0xff; break;
                }
            }
        } else {
            n = next() % sizeof buf;
            for (size_t i = 0; i < n; i++)
                buf[i] = (uint8_t)next();
        }
        uint8_t *heap = malloc(n ? n : 1); /* exact size so ASan catches overreads */
        memcpy(heap, buf, n);
        LLVMFuzzerTestOneInput(heap, n);
        free(heap);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_replay)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
