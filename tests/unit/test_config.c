/* Unit tests for config: defaults, file parsing, flags, errors. */
#include <stdlib.h>
#include <unistd.h>

#include "config.h"
#include "unit.h"

static void test_defaults_and_flags(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    assert_int_equal(cfg_init(&c), 0);
    char *argv[] = {"orbitd", "--data-dir", "/tmp/x", "--max-connections=7", "--statement-timeout", "2s", NULL};
    assert_int_equal(cfg_load(&c, 6, argv, err, sizeof err), 0);
    assert_string_equal(c.data_dir, "/tmp/x");
    assert_string_equal(c.unix_socket_dir, "/tmp/x");
    assert_int_equal(c.max_connections, 7);
    assert_int_equal(c.statement_timeout_ms, 2000);
    assert_string_equal(c.listen, "127.0.0.1:5433");
    cfg_free(&c);
}

static void test_file_and_override(void **state)
{
    (void)state;
    char path[] = "/tmp/orbit-cfg-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    const char *text = "# comment\nlisten = '127.0.0.1:6000'  # trailing\nmax_connections = 50\n\n"
                       "idle_in_transaction_session_timeout = 5min\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct cfg c;
    char err[256];
    assert_int_equal(cfg_init(&c), 0);
    char *argv[] = {"orbitd", "--config", path, "--data-dir", "/tmp/y", "--max-connections", "9", NULL};
    assert_int_equal(cfg_load(&c, 7, argv, err, sizeof err), 0);
    assert_string_equal(c.listen, "127.0.0.1:6000");
    assert_int_equal(c.max_connections, 9);
    assert_int_equal(c.idle_in_transaction_session_timeout_ms, 300000);
    cfg_free(&c);
    unlink(path);
}

static void test_errors(void **state)
{
    (void)state;
    struct cfg c;
    char err[256];
    assert_int_equal(cfg_init(&c), 0);
    char *a1[] = {"orbitd", "--data-dir", "/tmp/x", "--bogus", "1", NULL};
    assert_int_equal(cfg_load(&c, 5, a1, err, sizeof err), -1);
    assert_non_null(strstr(err, "--bogus"));
    char *a2[] = {"orbitd", "--data-dir", "/tmp/x", "--max-connections", "lots", NULL};
    assert_int_equal(cfg_load(&c, 5, a2, err, sizeof err), -1);
    assert_non_null(strstr(err, "max_connections"));
    char *a3[] = {"orbitd", "--data-dir", "/tmp/x", "--holder-spin-us", "20000000", NULL};
    assert_int_equal(cfg_load(&c, 5, a3, err, sizeof err), -1);
    assert_non_null(strstr(err, "holder_spin_us"));
    assert_int_equal(cfg_set(&c, "no_such_setting", "1", err, sizeof err), -1);
    assert_non_null(strstr(err, "no_such_setting"));
    char path[] = "/tmp/orbit-cfg-XXXXXX";
    int fd = mkstemp(path);
    const char *text = "listen = 1.2.3.4:5\nfrobnicate = yes\n";
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    assert_int_equal(cfg_read_file(&c, path, err, sizeof err), -1);
    assert_non_null(strstr(err, ":2:"));
    assert_non_null(strstr(err, "frobnicate"));
    unlink(path);
    cfg_free(&c);
}

int main(void)
{
    unsetenv("ORBIT_DATA");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_flags),
        cmocka_unit_test(test_file_and_override),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
