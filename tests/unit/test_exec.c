/* Unit tests for exec: the executor pool's accounting for tasks that wait
 * on a client's socket (exe_poll_begin/_end: the cap, the write-token
 * holder's exemption, direct_jobs, giving the connection back and taking
 * one again without waiting; a connection given back inside a transaction
 * is rolled back). */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "unit.h"
#include "exec.h"
#include "util.h"

struct probe {
    struct exe_task task; /* first: the run function gets &task */
    struct exe_pool *pool;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done;
    /* results, checked on the test thread */
    int first, capped, always, kept, idle, other_conn, none_left, given_back, released_again, rolled_back, leaked_rows;
    uint64_t direct_before, direct_after;
};

static enum exe_rc probe_run(struct exe_task *t)
{
    struct probe *pr = (struct probe *)t;
    struct exe_pool *p = pr->pool;
    struct exe_stats st;
    exe_get_stats(p, &st);
    pr->direct_before = st.direct_jobs;
    /* max_polling is 1: a second plain poller is refused, the holder not */
    pr->first = exe_poll_begin(p, t, 0, 0);
    pr->capped = exe_poll_begin(p, t, 0, 0);
    pr->always = exe_poll_begin(p, t, 1, 0);
    pr->kept = exe_poll_end(p, t, 1); /* t kept its connection: it runs */
    pr->idle = exe_poll_end(p, t, 0); /* nothing arrived */
    /* pool_size 2 and this task holds one: one more can be had, then none */
    struct exe_task a = {0}, b = {0};
    (void)exe_poll_begin(p, &a, 1, 0);
    pr->other_conn = exe_poll_end(p, &a, 1);
    (void)exe_poll_begin(p, &b, 1, 0);
    pr->none_left = exe_poll_end(p, &b, 1);
    exe_release_conn(p, &a);
    /* this task's own connection goes back when the wait begins, and is
     * taken again when its request arrives */
    (void)exe_poll_begin(p, t, 1, 1);
    pr->given_back = t->conn == NULL;
    pr->released_again = exe_poll_end(p, t, 1);
    exe_get_stats(p, &st);
    pr->direct_after = st.direct_jobs;
    /* a connection given back inside a transaction is rolled back: the
     * next user must not write into (and commit) someone else's changes */
    sqlite3 *db = t->conn->db;
    sqlite3_exec(db, "CREATE TABLE leak (a); BEGIN; INSERT INTO leak VALUES (1)", NULL, NULL, NULL);
    exe_release_conn(p, t);
    pr->rolled_back = sqlite3_get_autocommit(db);
    sqlite3_stmt *st2 = NULL;
    pr->leaked_rows = -1;
    if (sqlite3_prepare_v2(db, "SELECT count(*) FROM leak", -1, &st2, NULL) == SQLITE_OK &&
        sqlite3_step(st2) == SQLITE_ROW)
        pr->leaked_rows = sqlite3_column_int(st2, 0);
    sqlite3_finalize(st2);
    pthread_mutex_lock(&pr->mu);
    pr->done = 1;
    pthread_cond_signal(&pr->cv);
    pthread_mutex_unlock(&pr->mu);
    return EXE_DONE;
}

static void test_poll_cap_and_connections(void **state)
{
    (void)state;
    char dir[] = "/tmp/orbit-unit-exec-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[256];
    snprintf(path, sizeof path, "%s/db", dir);
    struct exe_config cfg = {
        .db_path = path,
        .workers = 1,
        .pool_size = 2,
        .cache_size = 8,
        .admission_timeout_ns = 1000000000ULL,
        .blocking_threads = 2,
        .max_polling = 1,
    };
    char err[256] = "";
    struct exe_pool *p = exe_pool_new(&cfg, err, sizeof err);
    assert_non_null(p);
    struct probe pr;
    memset(&pr, 0, sizeof pr);
    pr.task.run = probe_run;
    pr.pool = p;
    pthread_mutex_init(&pr.mu, NULL);
    pthread_cond_init(&pr.cv, NULL);
    exe_submit(p, &pr.task);
    pthread_mutex_lock(&pr.mu);
    while (!pr.done)
        pthread_cond_wait(&pr.cv, &pr.mu);
    pthread_mutex_unlock(&pr.mu);
    assert_int_equal(pr.first, 1);
    assert_int_equal(pr.capped, 0);
    assert_int_equal(pr.always, 1);
    assert_int_equal(pr.kept, 1);
    assert_int_equal(pr.idle, 0);
    assert_int_equal(pr.other_conn, 1);
    assert_int_equal(pr.none_left, 0);
    assert_int_equal(pr.given_back, 1);
    assert_int_equal(pr.released_again, 1);
    assert_int_equal(pr.direct_after - pr.direct_before, 3);
    assert_int_equal(pr.rolled_back, 1);
    assert_int_equal(pr.leaked_rows, 0);
    exe_pool_free(p);
    pthread_cond_destroy(&pr.cv);
    pthread_mutex_destroy(&pr.mu);
    unlink(path);
    char side[300];
    snprintf(side, sizeof side, "%s-wal", path);
    unlink(side);
    snprintf(side, sizeof side, "%s-shm", path);
    unlink(side);
    assert_int_equal(rmdir(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poll_cap_and_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
