/* Unit tests for pgwire: framing, startup packets, readers, builders. */
#include "pgwire.h"
#include "unit.h"

static void test_frame(void **state)
{
    (void)state;
    char msg[] = {'Q', 0, 0, 0, 8, 's', 'e', 'l', 0};
    char type;
    const char *payload;
    size_t plen, total;
    assert_int_equal(pgw_frame(msg, 3, 1 << 30, &type, &payload, &plen, &total), 0);
    assert_int_equal(pgw_frame(msg, 8, 1 << 30, &type, &payload, &plen, &total), 0);
    assert_int_equal(pgw_frame(msg, 9, 1 << 30, &type, &payload, &plen, &total), 1);
    assert_int_equal(type, 'Q');
    assert_int_equal(plen, 4);
    assert_int_equal(total, 9);
    char bad[] = {'Q', 0, 0, 0, 3};
    assert_int_equal(pgw_frame(bad, 5, 1 << 30, &type, &payload, &plen, &total), -1);
    char huge[] = {'Q', 0x7f, 0, 0, 0};
    assert_int_equal(pgw_frame(huge, 5, 1 << 30, &type, &payload, &plen, &total), -1);
    char over[] = {'Q', 0, 0, 1, 0};
    assert_int_equal(pgw_frame(over, 5, 100, &type, &payload, &plen, &total), -1);
}

static void test_startup(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    buf_put_u32(&b, 0);
    buf_put_u32(&b, PGW_PROTO_V3);
    buf_putsz(&b, "user");
    buf_putsz(&b, "orbit");
    buf_putsz(&b, "database");
    buf_putsz(&b, "orbit");
    buf_putc(&b, 0);
    buf_set_u32(&b, 0, (uint32_t)b.len);
    size_t total;
    assert_int_equal(pgw_frame_startup(b.data, b.len, &total), 1);
    struct pgw_startup su;
    char err[128];
    assert_int_equal(pgw_parse_startup(b.data, total, &su, err, sizeof err), 0);
    assert_int_equal(su.kind, PGW_SK_STARTUP);
    assert_string_equal(pgw_startup_get(&su, "user"), "orbit");
    assert_null(pgw_startup_get(&su, "nope"));
    /* missing terminator */
    assert_int_equal(pgw_parse_startup(b.data, total - 1, &su, err, sizeof err), -1);
    buf_free(&b);

    char ssl[8];
    memcpy(ssl, "\0\0\0\x08\x04\xd2\x16\x2f", 8);
    assert_int_equal(pgw_parse_startup(ssl, 8, &su, err, sizeof err), 0);
    assert_int_equal(su.kind, PGW_SK_SSL);
    char v2[8];
    memcpy(v2, "\0\0\0\x08\x00\x02\x00\x00", 8);
    assert_int_equal(pgw_parse_startup(v2, 8, &su, err, sizeof err), 0);
    assert_int_equal(su.kind, PGW_SK_BAD_VERSION);
    char tiny[4] = {0, 0, 0, 4};
    assert_int_equal(pgw_frame_startup(tiny, 4, &total), -1);
    char big[4] = {0, 1, 0, 0};
    assert_int_equal(pgw_frame_startup(big, 4, &total), -1);
}

static void test_reader(void **state)
{
    (void)state;
    const char p[] = {'a', 0, 0, 2, 0, 0, 0, 7, 'x'};
    struct pgw_rd r;
    pgw_rd_init(&r, p, sizeof p);
    assert_string_equal(pgw_rd_str(&r), "a");
    assert_int_equal(pgw_rd_i16(&r), 2);
    assert_int_equal(pgw_rd_i32(&r), 7);
    assert_false(pgw_rd_done(&r));
    assert_non_null(pgw_rd_bytes(&r, 1));
    assert_true(pgw_rd_done(&r));
    assert_int_equal(pgw_rd_i32(&r), 0);
    assert_false(pgw_rd_ok(&r));
    const char nostr[] = {'a', 'b'};
    pgw_rd_init(&r, nostr, 2);
    assert_null(pgw_rd_str(&r));
}

static void test_builders(void **state)
{
    (void)state;
    struct buf b;
    buf_init(&b);
    pgw_ready(&b, 'I');
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "Z\0\0\0\x05I", 6);
    buf_reset(&b);
    pgw_error(&b, 'E', "ERROR", "42601", "bad \xff utf8", NULL, NULL);
    assert_int_equal(b.data[0], 'E');
    assert_int_equal(util_get_u32(b.data + 1), b.len - 1);
    assert_non_null(memmem(b.data, b.len, "C42601", 7));
    assert_null(memmem(b.data, b.len, "\xff", 1));
    buf_free(&b);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(pgw_utf8_valid("plain", 5));
    assert_true(pgw_utf8_valid("\xc3\xa9", 2));
    assert_true(pgw_utf8_valid("\xf0\x9f\x98\x80", 4));
    assert_false(pgw_utf8_valid("\xc3", 1));
    assert_false(pgw_utf8_valid("\xc0\xaf", 2));       /* overlong */
    assert_false(pgw_utf8_valid("\xed\xa0\x80", 3));   /* surrogate */
    assert_false(pgw_utf8_valid("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(pgw_utf8_valid("\xff", 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame),   cmocka_unit_test(test_startup), cmocka_unit_test(test_reader),
        cmocka_unit_test(test_builders), cmocka_unit_test(test_utf8),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
