/* orbitctl: the operator CLI. Commands work on a stopped node's data
 * directory (offline) or, in later versions, a node's HTTP admin API. */
#include <stdio.h>
#include <string.h>

#include <sqlite3.h>

#include "sql.h"
#include "util.h"

static void usage(FILE *f)
{
    fprintf(f, "orbitctl: administer Orbit nodes\n\n"
               "Usage:\n"
               "  orbitctl check --data-dir DIR [--json]   verify a stopped node's database (integrity check)\n"
               "  orbitctl version                         print the version\n"
               "  orbitctl --help                          this help\n");
}

static int cmd_check(int argc, char **argv)
{
    const char *dir = NULL;
    int json = 0;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--data-dir") == 0 && i + 1 < argc)
            dir = argv[++i];
        else if (strcmp(argv[i], "--json") == 0)
            json = 1;
        else if (strcmp(argv[i], "--help") == 0) {
            printf("orbitctl check --data-dir DIR [--json]: run PRAGMA integrity_check on DIR/orbit.db\n");
            return 0;
        } else {
            fprintf(stderr, "orbitctl check: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    if (!dir) {
        fprintf(stderr, "orbitctl check: --data-dir is required\n");
        return 2;
    }
    char path[4200];
    snprintf(path, sizeof path, "%s/orbit.db", dir);
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        fprintf(stderr, "orbitctl check: cannot open %s: %s\n", path, sqlite3_errmsg(db));
        sqlite3_close(db);
        return 1;
    }
    sqlite3_stmt *st;
    int ok = 0;
    char result[512] = "";
    if (sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            util_strlcpy(result, (const char *)sqlite3_column_text(st, 0), sizeof result);
            ok = strcmp(result, "ok") == 0;
        }
        sqlite3_finalize(st);
    } else {
        util_strlcpy(result, sqlite3_errmsg(db), sizeof result);
    }
    sqlite3_close(db);
    if (json)
        printf("{\"database\": \"%s\", \"ok\": %s}\n", ok ? "ok" : "corrupt", ok ? "true" : "false");
    else
        printf("%s: %s\n", path, result);
    return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("orbitctl 0.1.0\n");
        return 0;
    }
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    fprintf(stderr, "orbitctl: unknown command \"%s\" (see orbitctl --help)\n", argv[1]);
    return 2;
}
