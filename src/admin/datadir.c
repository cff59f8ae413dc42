/* admin/datadir.c: what a data directory is, whether orbitd runs on it,
 * opening its database without changing anything, and the database's
 * integrity check. */
#include "admin.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_int.h"

int adm_path(char *dst, size_t cap, const char *dir, const char *name)
{
    int n = snprintf(dst, cap, "%s/%s", dir, name);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

int adm_data_dir(const char *dir, char *err, size_t errcap)
{
    static const char *const marks[] = {"orbit.db", "node-id", "raft"};
    struct stat st;
    char path[ADM_PATH_MAX];
    if (stat(dir, &st) != 0) {
        snprintf(err, errcap, "data directory %s: %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errcap, "data directory %s: not a directory", dir);
        return -1;
    }
    for (size_t i = 0; i < ARRAY_LEN(marks); i++)
        if (adm_path(path, sizeof path, dir, marks[i]) == 0 && stat(path, &st) == 0)
            return 0;
    snprintf(err, errcap, "%s is not an Orbit data directory (no orbit.db, node-id or raft/)", dir);
    return -1;
}

int adm_node_running(const char *dir, long *pid)
{
    char path[ADM_PATH_MAX];
    *pid = 0;
    if (adm_path(path, sizeof path, dir, "orbitd.pid"))
        return -1;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    int running = 0;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        flock(fd, LOCK_UN);
    } else if (errno == EWOULDBLOCK) {
        char text[32] = "";
        ssize_t n = read(fd, text, sizeof text - 1);
        text[n > 0 ? n : 0] = 0;
        *pid = strtol(text, NULL, 10);
        running = 1;
    } else {
        running = -1;
    }
    close(fd);
    return running;
}

int adm_integrity(sqlite3 *db, char *result, size_t cap)
{
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK) {
        snprintf(result, cap, "%s", sqlite3_errmsg(db));
        return -1;
    }
    int rows = 0, rc;
    result[0] = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (rows++ == 0)
            snprintf(result, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    int status = 0;
    if (rc != SQLITE_DONE) {
        snprintf(result, cap, "%s", sqlite3_errmsg(db));
        status = -1;
    } else if (rows != 1 || strcmp(result, "ok") != 0) {
        size_t len = strlen(result);
        if (rows > 1)
            snprintf(result + len, cap - len, " (and %d more)", rows - 1);
        status = 1;
    }
    sqlite3_finalize(st);
    return status;
}

/* "file:" URI of path, percent-encoding all but unreserved characters and '/'. */
static int file_uri(const char *path, const char *query, char *out, size_t cap)
{
    size_t n = 0;
    n += (size_t)snprintf(out, cap, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p && n + 4 < cap; p++) {
        if (isalnum(*p) || strchr("/-._~", *p))
            out[n++] = (char)*p;
        else
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", *p);
    }
    int q = snprintf(out + n, cap > n ? cap - n : 0, "%s", query);
    return n + 4 >= cap || q < 0 || (size_t)q >= cap - n ? -1 : 0;
}

static void remove_shadow(struct adm_db *d)
{
    static const char *const names[] = {"orbit.db", "orbit.db-wal", "orbit.db-shm", "orbit.db-journal"};
    char path[ADM_PATH_MAX];
    if (!d->tmp[0])
        return;
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (adm_path(path, sizeof path, d->tmp, names[i]) == 0)
            unlink(path);
    rmdir(d->tmp);
    d->tmp[0] = 0;
}

/* A database with a WAL file (its node did not stop cleanly): the database
 * hard-linked (or copied) and the WAL copied into a temporary directory,
 * opened read-only there, so that SQLite's -shm and WAL recovery happen on
 * the copies. */
static int open_shadow(const char *path, const char *wal, struct adm_db *d, char *err, size_t errcap)
{
    char db_copy[ADM_PATH_MAX], wal_copy[ADM_PATH_MAX];
    const char *tmp = getenv("TMPDIR");
    snprintf(d->tmp, sizeof d->tmp, "%s/orbit-db-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(d->tmp)) {
        snprintf(err, errcap, "cannot create a temporary directory: %s", strerror(errno));
        d->tmp[0] = 0;
        return -1;
    }
    if (adm_path(db_copy, sizeof db_copy, d->tmp, "orbit.db") ||
        adm_path(wal_copy, sizeof wal_copy, d->tmp, "orbit.db-wal") ||
        (link(path, db_copy) != 0 && util_copy_file(path, db_copy) != 0) || util_copy_file(wal, wal_copy) != 0) {
        snprintf(err, errcap, "cannot copy %s and its WAL to %s: %s", path, d->tmp, strerror(errno));
        remove_shadow(d);
        return -1;
    }
    if (sqlite3_open_v2(db_copy, &d->db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errcap, "cannot open %s: %s", path, d->db ? sqlite3_errmsg(d->db) : "out of memory");
    adm_db_close(d);
    return -1;
}

int adm_db_open(const char *path, struct adm_db *d, char *err, size_t errcap)
{
    char wal[ADM_PATH_MAX], uri[3 * ADM_PATH_MAX];
    struct stat st;
    memset(d, 0, sizeof *d);
    if (stat(path, &st) != 0) {
        snprintf(err, errcap, "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    if (snprintf(wal, sizeof wal, "%s-wal", path) >= (int)sizeof wal) {
        snprintf(err, errcap, "path too long: %s", path);
        return -1;
    }
    if (stat(wal, &st) == 0 && st.st_size > 0)
        return open_shadow(path, wal, d, err, errcap);
    /* no WAL: the file alone is the database; immutable creates no -wal or
     * -shm file and takes no lock */
    if (file_uri(path, "?immutable=1", uri, sizeof uri)) {
        snprintf(err, errcap, "path too long: %s", path);
        return -1;
    }
    if (sqlite3_open_v2(uri, &d->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL) == SQLITE_OK)
        return 0;
    snprintf(err, errcap, "cannot open %s: %s", path, d->db ? sqlite3_errmsg(d->db) : "out of memory");
    adm_db_close(d);
    return -1;
}

void adm_db_close(struct adm_db *d)
{
    sqlite3_close(d->db);
    d->db = NULL;
    remove_shadow(d);
}

int adm_db_integrity(const char *path, char *result, size_t cap)
{
    struct adm_db d;
    if (adm_db_open(path, &d, result, cap))
        return -1;
    int rc = adm_integrity(d.db, result, cap);
    adm_db_close(&d);
    return rc;
}
