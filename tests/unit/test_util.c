/* Unit tests for util: buffers, maps, parsers, allocation failure. */
#include "unit.h"
#include "util.h"

static void test_buf(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_u32(&b, 0x01020304);
    buf_putsz(&b, "hi");
    buf_printf(&b, "%d-%s", 42, "x");
    assert_int_equal(b.len, 4 + 3 + 4);
    assert_int_equal(util_get_u32(b.data), 0x01020304);
    assert_memory_equal(b.data + 4, "hi\0" "42-x", 7);
    buf_consume(&b, 4);
    assert_memory_equal(b.data, "hi", 3);
    buf_set_u32(&b, 0, 7);
    assert_int_equal(util_get_u32(b.data), 7);
    buf_free(&b);
}

static void test_buf_oom_sticky(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    util_fail_after(1);
    buf_puts(&b, "abc");
    assert_false(buf_ok(&b));
    buf_puts(&b, "def");
    assert_int_equal(b.len, 0);
    util_fail_after(0);
    buf_free(&b);
}

static void test_map(void **state)
{
    (void)state;
    struct map m;
    map_init(&m);
    char keys[200][16];
    for (int i = 0; i < 200; i++) {
        snprintf(keys[i], sizeof keys[i], "k%d", i);
        assert_int_equal(map_put(&m, keys[i], keys[i], NULL), 0);
    }
    assert_int_equal(m.count, 200);
    for (int i = 0; i < 200; i += 2)
        assert_ptr_equal(map_del(&m, keys[i]), keys[i]);
    for (int i = 0; i < 200; i++)
        assert_ptr_equal(map_get(&m, keys[i]), i % 2 ? keys[i] : NULL);
    void *old;
    assert_int_equal(map_put(&m, "k1", NULL, &old), 0);
    assert_ptr_equal(old, keys[1]);
    size_t it = 0, n = 0;
    const char *k;
    while (map_next(&m, &it, &k, NULL))
        n++;
    assert_int_equal(n, 100);
    map_free(&m);
}

static void test_parsers(void **state)
{
    (void)state;
    char host[64];
    int port;
    assert_int_equal(util_parse_hostport("127.0.0.1:5433", host, sizeof host, &port), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 5433);
    assert_int_equal(util_parse_hostport("[::1]:7", host, sizeof host, &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(util_parse_hostport("5434", host, sizeof host, &port), 0);
    assert_int_equal(port, 5434);
    assert_int_equal(util_parse_hostport("h:99999", host, sizeof host, &port), -1);
    uint64_t v;
    assert_int_equal(util_parse_size("64kB", &v), 0);
    assert_int_equal(v, 65536);
    assert_int_equal(util_parse_size("1GB", &v), 0);
    assert_int_equal(v, 1ULL << 30);
    assert_int_equal(util_parse_size("x", &v), -1);
    /* ms when unitless; fractions and us rounded to the nearest ms (half
     * to even), as PostgreSQL; -1: refused */
    static const struct {
        const char *in;
        long long ms;
    } durations[] = {{"30s", 30000},   {"250", 250},       {"5min", 300000}, {"5 parsecs", -1},
                     {"1.5s", 1500},   {" 0.5 min ", 30000}, {"2.5", 2},     {"1500.7", 1501},
                     {"600us", 1},     {"1e3", 1000},      {"-1", -1},       {"1h30min", -1},
                     {"1.5 s x", -1}};
    for (size_t i = 0; i < ARRAY_LEN(durations); i++) {
        v = 0;
        int rc = util_parse_duration_ms(durations[i].in, &v);
        assert_int_equal(rc, durations[i].ms < 0 ? -1 : 0);
        if (durations[i].ms >= 0)
            assert_int_equal(v, durations[i].ms);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf),
        cmocka_unit_test(test_buf_oom_sticky),
        cmocka_unit_test(test_map),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
