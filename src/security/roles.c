/* security/roles.c: the role catalog (_orbit_roles) and its in-memory
 * cache, plus first-start bootstrap of the superuser "orbit". */
#include "security.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

struct sec_roles {
    pthread_rwlock_t lock;
    struct sec_role *roles;
    int n;
};

static int exec_sql(sqlite3 *db, const char *sql, char *err, size_t errcap)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errcap, "catalog: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int sec_catalog_init(sqlite3 *db, const char *password, char **generated, unsigned char mock_key[32], char *err,
                     size_t errcap)
{
    *generated = NULL;
    if (exec_sql(db,
                 "CREATE TABLE IF NOT EXISTS _orbit_roles(name TEXT PRIMARY KEY, verifier TEXT, "
                 "superuser INTEGER NOT NULL DEFAULT 0, login INTEGER NOT NULL DEFAULT 1, "
                 "created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);"
                 "CREATE TABLE IF NOT EXISTS _orbit_meta(key TEXT PRIMARY KEY, value BLOB);",
                 err, errcap))
        return -1;
    sqlite3_stmt *st = NULL;
    int rc = -1;
    /* mock key */
    if (sqlite3_prepare_v2(db, "SELECT value FROM _orbit_meta WHERE key = 'mock_key'", -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_bytes(st, 0) == 32) {
        memcpy(mock_key, sqlite3_column_blob(st, 0), 32);
    } else {
        sqlite3_finalize(st);
        st = NULL;
        if (util_random_bytes(mock_key, 32)) {
            snprintf(err, errcap, "catalog: no randomness");
            return -1;
        }
        if (sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO _orbit_meta(key, value) VALUES ('mock_key', ?)", -1, &st,
                               NULL) != SQLITE_OK)
            goto sqlerr;
        sqlite3_bind_blob(st, 1, mock_key, 32, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sqlerr;
    }
    sqlite3_finalize(st);
    st = NULL;
    /* superuser */
    if (sqlite3_prepare_v2(db, "SELECT 1 FROM _orbit_roles WHERE name = 'orbit'", -1, &st, NULL) != SQLITE_OK)
        goto sqlerr;
    int exists = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    st = NULL;
    if (!exists) {
        char gen[32];
        if (!password || !*password) {
            if (sec_gen_password(gen, 24)) {
                snprintf(err, errcap, "catalog: could not generate a password");
                return -1;
            }
            password = gen;
            *generated = util_strdup(gen);
        }
        char verifier[SEC_VERIFIER_MAX];
        if (sec_scram_make_verifier(password, SEC_SCRAM_ITERATIONS, verifier, sizeof verifier)) {
            snprintf(err, errcap, "catalog: could not make a SCRAM verifier");
            return -1;
        }
        if (sqlite3_prepare_v2(db, "INSERT INTO _orbit_roles(name, verifier, superuser, login) VALUES ('orbit', ?, 1, 1)",
                               -1, &st, NULL) != SQLITE_OK)
            goto sqlerr;
        sqlite3_bind_text(st, 1, verifier, -1, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_DONE)
            goto sqlerr;
        sqlite3_finalize(st);
        st = NULL;
    }
    return 0;
sqlerr:
    snprintf(err, errcap, "catalog: %s", sqlite3_errmsg(db));
    sqlite3_finalize(st);
    return rc;
}

void sec_role_clear(struct sec_role *r)
{
    util_free(r->name);
    util_free(r->verifier);
    memset(r, 0, sizeof *r);
}

struct sec_roles *sec_roles_load(sqlite3 *db, char *err, size_t errcap)
{
    struct sec_roles *r = util_calloc(1, sizeof *r);
    sqlite3_stmt *st = NULL;
    if (!r) {
        snprintf(err, errcap, "out of memory");
        return NULL;
    }
    pthread_rwlock_init(&r->lock, NULL);
    if (sqlite3_prepare_v2(db, "SELECT name, verifier, superuser, login FROM _orbit_roles ORDER BY name", -1, &st,
                           NULL) != SQLITE_OK) {
        snprintf(err, errcap, "catalog: %s", sqlite3_errmsg(db));
        sec_roles_free(r);
        return NULL;
    }
    int cap = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        if (r->n == cap) {
            cap = cap ? cap * 2 : 8;
            struct sec_role *nr = util_realloc(r->roles, (size_t)cap * sizeof *nr);
            if (!nr)
                goto oom;
            r->roles = nr;
        }
        struct sec_role *role = &r->roles[r->n];
        memset(role, 0, sizeof *role);
        role->name = util_strdup((const char *)sqlite3_column_text(st, 0));
        const char *v = (const char *)sqlite3_column_text(st, 1);
        role->verifier = v ? util_strdup(v) : NULL;
        role->superuser = sqlite3_column_int(st, 2);
        role->login = sqlite3_column_int(st, 3);
        r->n++;
        if (!role->name || (v && !role->verifier))
            goto oom;
    }
    sqlite3_finalize(st);
    return r;
oom:
    sqlite3_finalize(st);
    snprintf(err, errcap, "out of memory");
    sec_roles_free(r);
    return NULL;
}

void sec_roles_free(struct sec_roles *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        sec_role_clear(&r->roles[i]);
    util_free(r->roles);
    pthread_rwlock_destroy(&r->lock);
    util_free(r);
}

int sec_roles_find(struct sec_roles *r, const char *name, struct sec_role *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_rwlock_rdlock(&r->lock);
    for (int i = 0; i < r->n; i++) {
        if (strcmp(r->roles[i].name, name) == 0) {
            out->name = util_strdup(r->roles[i].name);
            out->verifier = r->roles[i].verifier ? util_strdup(r->roles[i].verifier) : NULL;
            out->superuser = r->roles[i].superuser;
            out->login = r->roles[i].login;
            rc = out->name ? 0 : -1;
            break;
        }
    }
    pthread_rwlock_unlock(&r->lock);
    return rc;
}
