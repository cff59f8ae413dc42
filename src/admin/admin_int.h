/* admin_int.h: private helpers of the admin module, shared by datadir.c and
 * logtool.c. */
#ifndef ORBIT_ADMIN_INT_H
#define ORBIT_ADMIN_INT_H

#include <sqlite3.h>

#include "admin.h"

#define ADM_PATH_MAX 4096

/* "DIR/NAME"; -1 if it does not fit. */
int adm_path(char *dst, size_t cap, const char *dir, const char *name);
/* Open a stopped node's database read-only without creating or changing
 * any file next to it (a plain read-only open of a WAL database creates
 * -wal and -shm files): without a WAL file it is opened immutable; with one
 * (the node did not stop cleanly), a hard link (or copy) of it and a copy
 * of the WAL in a temporary directory are opened instead. 0, or -1 with
 * err. adm_db_close closes it and removes the temporary files. */
struct adm_db {
    sqlite3 *db;
    char tmp[ADM_PATH_MAX]; /* temporary directory, "" when none */
};
int adm_db_open(const char *path, struct adm_db *d, char *err, size_t errcap);
void adm_db_close(struct adm_db *d);
/* PRAGMA integrity_check on db: as adm_db_integrity. */
int adm_integrity(sqlite3 *db, char *result, size_t cap);

#endif
