/* orbitd: the server. Parses settings, locks and initialises the data
 * directory, loads the role catalog, starts the executor pool and the
 * network loops, and runs until SIGTERM has drained every session. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "exec.h"
#include "net.h"
#include "obs.h"
#include "repl.h"
#include "security.h"
#include "sql.h"
#include "util.h"

static int lock_data_dir(const char *dir, char *err, size_t errcap)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/orbitd.pid", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errcap, "could not open lock file \"%s\": %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        char other[32] = "";
        ssize_t n = read(fd, other, sizeof other - 1);
        other[n > 0 ? n : 0] = 0;
        other[strcspn(other, "\n")] = 0;
        snprintf(err, errcap, "data directory \"%s\" is in use by another orbitd (pid %s); refusing to start", dir,
                 *other ? other : "unknown");
        close(fd);
        return -1;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(fd, 0) || write(fd, pid, (size_t)n) != n) {
        snprintf(err, errcap, "could not write lock file \"%s\": %s", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static char **self_argv;

/* repl: a deposed leader's database must be rebuilt from the log; starting
 * over does it (same pid, so supervisors and pid files stay right) */
static void restart_self(void)
{
    log_warn("restart", "msg=\"re-executing orbitd\"");
    util_reexec(self_argv);
    log_error("restart_failed", "msg=\"could not re-execute orbitd: %s\"", strerror(errno));
}

static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    rlim_t want = 1048576;
    if (rl.rlim_max < want) {
        struct rlimit r2 = {want, want};
        if (setrlimit(RLIMIT_NOFILE, &r2) == 0)
            return;
    }
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

static int init_catalog(struct server *srv, char *err, size_t errcap)
{
    struct sql_fnctx fn;
    memset(&fn, 0, sizeof fn);
    fn.internal = 1;
    sqlite3 *db;
    struct stat stt;
    int fresh = stat(srv->db_path, &stt) != 0;
    if (sql_db_open(srv->db_path, &fn, &db, err, errcap))
        return -1;
    /* catalog writes are local (not in the txlog): make them durable here */
    sqlite3_exec(db, "PRAGMA synchronous=FULL", NULL, NULL, NULL);
    char *generated = NULL;
    const char *pw = getenv("ORBIT_PASSWORD");
    int rc = sec_catalog_init(db, pw, &generated, srv->mock_key, err, errcap);
    if (rc == 0) {
        srv->roles = sec_roles_load(db, err, errcap);
        if (!srv->roles)
            rc = -1;
    }
    sqlite3_close(db);
    if (fresh && rc == 0)
        log_info("datadir_initialized", "path=%s", srv->cfg->data_dir);
    if (generated) {
        printf("orbitd: superuser \"orbit\" password: %s\n"
               "orbitd: it is shown only this once and stored only as a SCRAM verifier; set ORBIT_PASSWORD on "
               "a fresh data dir to choose it\n",
               generated);
        fflush(stdout);
        memset(generated, 0, strlen(generated));
        util_free(generated);
    }
    return rc;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    /* Large buffers (records, Raft entries, snapshots' pages) are mapped
     * and unmapped on their own: glibc's sliding threshold would otherwise
     * serve them from per-thread arenas after the first free and keep the
     * memory after a big transaction (docs/design-core.md, memory). */
    mallopt(M_MMAP_THRESHOLD, 256 * 1024);
    sql_global_init();
    static struct cfg cfg;
    static struct server srv;
    char err[1024];
#define FAIL(code)                                                                                               \
    do {                                                                                                         \
        rc = (code);                                                                                             \
        goto out;                                                                                                \
    } while (0)
    if (cfg_init(&cfg)) {
        fprintf(stderr, "orbitd: out of memory\n");
        return 1;
    }
    int rc = cfg_load(&cfg, argc, argv, err, sizeof err);
    if (rc == 1) {
        cfg_free(&cfg);
        return 0;
    }
    if (rc < 0) {
        fprintf(stderr, "orbitd: %s\n", err);
        cfg_free(&cfg);
        return 2;
    }
    enum log_level lvl = LOG_INFO;
    (void)log_parse_level(cfg.log_level, &lvl);
    log_set_level(lvl);
    if (log_set_file(cfg.log_file)) {
        fprintf(stderr, "orbitd: could not open log file \"%s\": %s\n", cfg.log_file, strerror(errno));
        FAIL(2);
    }
    if (mkdir(cfg.data_dir, 0700) && errno != EEXIST) {
        fprintf(stderr, "orbitd: could not create data directory \"%s\": %s\n", cfg.data_dir, strerror(errno));
        FAIL(1);
    }
    srv.cfg = &cfg;
    srv.argc = argc;
    srv.argv = argv;
    srv.started_us = util_wall_us();
    atomic_init(&srv.next_pid, 1000);
    pthread_mutex_init(&srv.reg_mu, NULL);
    map_init(&srv.registry);
    srv.lock_fd = lock_data_dir(cfg.data_dir, err, sizeof err);
    if (srv.lock_fd < 0) {
        fprintf(stderr, "orbitd: %s\n", err);
        log_error("startup_failed", "msg=\"%s\"", err);
        FAIL(1);
    }
    raise_fd_limit();
    snprintf(srv.db_path, sizeof srv.db_path, "%s/orbit.db", cfg.data_dir);
    if (init_catalog(&srv, err, sizeof err)) {
        fprintf(stderr, "orbitd: %s\n", err);
        FAIL(1);
    }
    struct rpl_config rc_ = {
        .data_dir = cfg.data_dir,
        .db_path = srv.db_path,
        .peer = cfg.peer,
        .join = cfg.join,
        .join_role = cfg.join_role,
        .sql_address = cfg.listen,
        .initial_members = cfg.initial_members,
        .election_timeout_ms = (unsigned)cfg.election_timeout_ms,
        .snapshot_threshold = (unsigned)cfg.snapshot_threshold,
        .snapshot_log_size = (uint64_t)cfg.snapshot_log_size,
        .disk_reserve = (uint64_t)cfg.disk_reserve,
        .restart = restart_self,
    };
    self_argv = argv;
    if (rpl_open(&rc_, &srv.repl, err, sizeof err)) {
        fprintf(stderr, "orbitd: %s\n", err);
        log_error("startup_failed", "msg=\"%s\"", err);
        FAIL(1);
    }
    struct exe_config ec = {
        .db_path = srv.db_path,
        .workers = (int)cfg.workers,
        .pool_size = (int)cfg.pool_size,
        .cache_size = (int)cfg.statement_cache_size,
        .admission_timeout_ns = (uint64_t)cfg.admission_timeout_ms * 1000000ULL,
        .spin_us = (int)cfg.worker_spin_us,
        .capture = 1,
    };
    /* a worker waits for Raft while its commit is in flight: one extra
     * thread per pooled connection keeps the cores busy meanwhile; and up
     * to pool_size / 2 more wait on clients' sockets (client_poll_us) */
    ec.max_polling = ec.pool_size / 2 > 0 ? ec.pool_size / 2 : 1;
    ec.blocking_threads = ec.pool_size + ec.max_polling;
    ec.reserved_conns = 2;
    ec.checkpoint_pages = 1000; /* SQLite's default threshold, on a thread of its own */
    srv.pool = exe_pool_new(&ec, err, sizeof err);
    if (!srv.pool) {
        fprintf(stderr, "orbitd: %s\n", err);
        FAIL(1);
    }
    if (net_start(&srv, err, sizeof err)) {
        fprintf(stderr, "orbitd: %s\n", err);
        log_error("startup_failed", "msg=\"%s\"", err);
        FAIL(1);
    }
    if (rpl_start(srv.repl, &srv.loops[0].loop, srv.pool, err, sizeof err)) {
        fprintf(stderr, "orbitd: %s\n", err);
        log_error("startup_failed", "msg=\"%s\"", err);
        FAIL(1);
    }
    if (obs_http_start(&srv, err, sizeof err)) {
        fprintf(stderr, "orbitd: %s\n", err);
        log_error("startup_failed", "msg=\"%s\"", err);
        FAIL(1);
    }
    log_info("ready", "listen=%s http=%s unix_socket_dir=%s pid=%d workers=%lld pool_size=%lld io_threads=%lld",
             cfg.listen, *cfg.http ? cfg.http : "off", *cfg.unix_socket_dir ? cfg.unix_socket_dir : "off", (int)getpid(), (long long)cfg.workers,
             (long long)cfg.pool_size, (long long)cfg.io_threads);
    if (strcmp(cfg.auth_method, "trust") == 0)
        log_warn("auth_trust", "msg=\"auth_method = trust: any client that can reach %s logs in without a password\"",
                 cfg.listen);
    rc = net_run(&srv);
    exe_pool_free(srv.pool);
    srv.pool = NULL;
    char lock[4200];
    snprintf(lock, sizeof lock, "%s/orbitd.pid", cfg.data_dir);
    unlink(lock);
    log_info("stopped", "exit_code=%d", rc);
out:
    /* startup failures also come here: free what was made (LeakSanitizer) */
    exe_pool_free(srv.pool);
    rpl_free(srv.repl);
    sec_roles_free(srv.roles);
    cfg_free(&cfg);
    return rc;
#undef FAIL
}
