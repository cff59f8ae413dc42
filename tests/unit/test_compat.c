/* Unit tests for sql/compat.c: splitting, classification, translation of
 * PostgreSQL statements to SQLite (checked against a real SQLite for the
 * pgbench statements), errors, OOM and random inputs. */
#include "unit.h"
#include "sql.h"

#include <stdlib.h>

#define NOSQL ((const char *)1) /* expect out.sql == NULL */

static int failures;

static int translate(const char *in, struct sql_stmt *st, char state[6], char *err, size_t errcap)
{
    return sql_translate(in, strlen(in), st, state, err, errcap);
}

/* ---- classification and SQL -------------------------------------------- */

struct tcase {
    const char *in;
    enum sql_kind kind;
    const char *tag;
    const char *sql; /* NULL: not checked */
};

static const struct tcase cases[] = {
    /* queries */
    {"SELECT 1", SQL_K_QUERY, "SELECT", "SELECT 1"},
    {"select 1;", SQL_K_QUERY, "SELECT", "select 1"},
    {"select 1 -- comment", SQL_K_QUERY, "SELECT", "select 1"},
    {"select /* a /* nested */ b */ 1", SQL_K_QUERY, "SELECT", "select 1"},
    {"select\n  a,\n  b\nfrom t", SQL_K_QUERY, "SELECT", "select\n  a,\n  b\nfrom t"},
    {"VALUES (1), (2)", SQL_K_QUERY, "SELECT", "VALUES (1), (2)"},
    {"WITH x AS (SELECT 1) SELECT * FROM x", SQL_K_QUERY, "SELECT", NULL},
    {"with recursive x(n) as (select 1 union all select n+1 from x where n<3) select n from x", SQL_K_QUERY, "SELECT",
     NULL},
    {"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", SQL_K_QUERY, "INSERT", NULL},
    {"WITH x AS (SELECT 1) UPDATE t SET a = 1", SQL_K_QUERY, "UPDATE", NULL},
    {"WITH x AS (SELECT 1) DELETE FROM t", SQL_K_QUERY, "DELETE", NULL},
    {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", SQL_K_QUERY, "SELECT", NULL},
    {"TABLE t", SQL_K_QUERY, "SELECT", "SELECT * FROM t"},
    {"table only t", SQL_K_QUERY, "SELECT", "SELECT * FROM t"},
    {"(SELECT 1) UNION (SELECT 2)", SQL_K_QUERY, "SELECT", NULL},
    {"INSERT INTO t VALUES (1) RETURNING a", SQL_K_QUERY, "INSERT", "INSERT INTO t VALUES (1) RETURNING a"},
    {"insert into t values ($1, $2) on conflict (a) do update set b = excluded.b", SQL_K_QUERY, "INSERT",
     "insert into t values (?1, ?2) on conflict (a) do update set b = excluded.b"},
    {"REPLACE INTO t VALUES (1)", SQL_K_QUERY, "INSERT", NULL},
    {"UPDATE ONLY t SET a = 1", SQL_K_QUERY, "UPDATE", "UPDATE t SET a = 1"},
    {"DELETE FROM ONLY t WHERE a = $1", SQL_K_QUERY, "DELETE", "DELETE FROM t WHERE a = ?1"},
    {"delete from t", SQL_K_QUERY, "DELETE", "delete from t"},
    /* parameters and casts */
    {"select $1::int", SQL_K_QUERY, "SELECT", "select CAST(?1 AS INTEGER)"},
    {"select $12, $3", SQL_K_QUERY, "SELECT", "select ?12, ?3"},
    {"select $01", SQL_K_QUERY, "SELECT", "select ?1"},
    {"select a::int::text from t", SQL_K_QUERY, "SELECT", "select CAST(CAST(a AS INTEGER) AS TEXT) from t"},
    {"select t.a::bigint", SQL_K_QUERY, "SELECT", "select CAST(t.a AS INTEGER)"},
    {"select \"T\".\"a b\"::text", SQL_K_QUERY, "SELECT", "select CAST(\"T\".\"a b\" AS TEXT)"},
    {"select (a + 1)::float8", SQL_K_QUERY, "SELECT", "select CAST((a + 1) AS REAL)"},
    {"select count(*)::int from t", SQL_K_QUERY, "SELECT", "select CAST(count(*) AS INTEGER) from t"},
    {"select pg_catalog.count(*)::int", SQL_K_QUERY, "SELECT", "select CAST(count(*) AS INTEGER)"},
    {"select f(a::int)::text", SQL_K_QUERY, "SELECT", "select CAST(f(CAST(a AS INTEGER)) AS TEXT)"},
    {"select 'x'::double precision", SQL_K_QUERY, "SELECT", "select CAST('x' AS REAL)"},
    {"select '1'::character varying(10)", SQL_K_QUERY, "SELECT", "select CAST('1' AS TEXT)"},
    {"select now()::timestamp with time zone", SQL_K_QUERY, "SELECT", "select CAST(now() AS TEXT)"},
    {"select x::timestamp(3) without time zone", SQL_K_QUERY, "SELECT", "select CAST(x AS TEXT)"},
    {"select '1'::numeric(10,2)", SQL_K_QUERY, "SELECT", "select CAST('1' AS NUMERIC)"},
    {"select 't'::bool", SQL_K_QUERY, "SELECT", "select orbit_bool('t')"},
    {"select x::boolean::int", SQL_K_QUERY, "SELECT", "select CAST(orbit_bool(x) AS INTEGER)"},
    {"select 'pg_class'::regclass", SQL_K_QUERY, "SELECT", "select CAST('pg_class' AS TEXT)"},
    {"select 5::oid, 'a'::name", SQL_K_QUERY, "SELECT", "select CAST(5 AS INTEGER), CAST('a' AS TEXT)"},
    {"select '{}'::jsonb, '{}'::json", SQL_K_QUERY, "SELECT", "select CAST('{}' AS TEXT), CAST('{}' AS TEXT)"},
    {"select x::pg_catalog.int4", SQL_K_QUERY, "SELECT", "select CAST(x AS INTEGER)"},
    {"select x::\"char\"", SQL_K_QUERY, "SELECT", "select CAST(x AS TEXT)"},
    {"select b::bytea, d::date, r::real", SQL_K_QUERY, "SELECT",
     "select orbit_bytea(b), CAST(d AS TEXT), CAST(r AS REAL)"},
    {"select case when a then 1 else 2 end::text", SQL_K_QUERY, "SELECT",
     "select CAST(case when a then 1 else 2 end AS TEXT)"},
    {"select -1::int", SQL_K_QUERY, "SELECT", "select -CAST(1 AS INTEGER)"},
    {"select a::int+b::int", SQL_K_QUERY, "SELECT", "select CAST(a AS INTEGER)+CAST(b AS INTEGER)"},
    {"select $$a$$::text", SQL_K_QUERY, "SELECT", "select CAST('a' AS TEXT)"},
    {"select cast(x as boolean) from t", SQL_K_QUERY, "SELECT", "select orbit_bool(x) from t"},
    {"select cast(x as int8), cast(y as varchar(20))", SQL_K_QUERY, "SELECT",
     "select cast(x as INTEGER), cast(y as TEXT)"},
    {"select cast(x::text as date)", SQL_K_QUERY, "SELECT", "select cast(CAST(x AS TEXT) as TEXT)"},
    /* literals */
    {"select E'a\\nb'", SQL_K_QUERY, "SELECT", "select 'a\nb'"},
    {"select E'it\\'s', e'x''y'", SQL_K_QUERY, "SELECT", "select 'it''s', 'x''y'"},
    {"select E'\\x41\\101\\u00e9\\U0001F600\\q'", SQL_K_QUERY, "SELECT", "select 'AA\xc3\xa9\xf0\x9f\x98\x80q'"},
    {"select E'\\uD83D\\uDE00'", SQL_K_QUERY, "SELECT", "select '\xf0\x9f\x98\x80'"},
    {"select $$a'b$$", SQL_K_QUERY, "SELECT", "select 'a''b'"},
    {"select $tag$x$$y$tag$", SQL_K_QUERY, "SELECT", "select 'x$$y'"},
    {"select '--not a comment', \"$1\", '$1', 'a::int'", SQL_K_QUERY, "SELECT",
     "select '--not a comment', \"$1\", '$1', 'a::int'"},
    {"select 'caf\xc3\xa9', '\xff\xfe'", SQL_K_QUERY, "SELECT", "select 'caf\xc3\xa9', '\xff\xfe'"},
    {"select a$1 from t", SQL_K_QUERY, "SELECT", "select a$1 from t"},
    {"select x'ab'", SQL_K_QUERY, "SELECT", "select x'ab'"},
    {"select * from t where d > date '2024-01-01' and ts < timestamp E'2024-01-02 10:00'", SQL_K_QUERY, "SELECT",
     "select * from t where d > CAST('2024-01-01' AS TEXT) and ts < CAST('2024-01-02 10:00' AS TEXT)"},
    {"select date '2024-01-01'::date, t.date, date(x)", SQL_K_QUERY, "SELECT",
     "select CAST(CAST('2024-01-01' AS TEXT) AS TEXT), t.date, date(x)"},
    /* identifier rewrites */
    {"select current_user, session_user, current_role", SQL_K_QUERY, "SELECT",
     "select current_user(), session_user(), current_role()"},
    {"select current_catalog, current_schema, current_schema()", SQL_K_QUERY, "SELECT",
     "select current_catalog(), current_schema(), current_schema()"},
    {"select t.current_user, \"current_user\" from t", SQL_K_QUERY, "SELECT",
     "select t.current_user, \"current_user\" from t"},
    {"select * from t where a ilike 'x%'", SQL_K_QUERY, "SELECT", "select * from t where a LIKE 'x%'"},
    {"select * from t where a not ILIKE $1", SQL_K_QUERY, "SELECT", "select * from t where a not LIKE ?1"},
    {"select * from public.t join public.\"U\" u on true", SQL_K_QUERY, "SELECT",
     "select * from t join \"U\" u on true"},
    {"select * from t for update", SQL_K_QUERY, "SELECT", "select * from t"},
    {"select * from t for no key update of t skip locked", SQL_K_QUERY, "SELECT", "select * from t"},
    {"select * from t for share nowait", SQL_K_QUERY, "SELECT", "select * from t"},
    {"select * from t limit all", SQL_K_QUERY, "SELECT", "select * from t limit -1"},
    {"select a collate \"C\" from t order by a collate pg_catalog.\"default\"", SQL_K_QUERY, "SELECT",
     "select a collate BINARY from t order by a collate BINARY"},
    {"select pg_catalog.set_config('a', 'b', false)", SQL_K_QUERY, "SELECT", "select set_config('a', 'b', false)"},
    {"select 1 as x\n-- trailing\n", SQL_K_QUERY, "SELECT", "select 1 as x"},
    {"select 1/*c*/-/**/-1", SQL_K_QUERY, "SELECT", "select 1 - -1"},
    {"pragma table_info(t)", SQL_K_QUERY, "SELECT", "pragma table_info(t)"},
    /* CREATE */
    {"create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))", SQL_K_QUERY,
     "CREATE TABLE",
     "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))"},
    {"create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)",
     SQL_K_QUERY, "CREATE TABLE",
     "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84))"},
    {"create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
     SQL_K_QUERY, "CREATE TABLE",
     "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84))"},
    {"create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)", SQL_K_QUERY,
     "CREATE TABLE", "create table pgbench_branches(bid int not null,bbalance int,filler char(88))"},
    {"create temp table t (a int) on commit preserve rows", SQL_K_QUERY, "CREATE TABLE", "create temp table t (a int)"},
    {"CREATE TEMPORARY TABLE t (a int)", SQL_K_QUERY, "CREATE TABLE", NULL},
    {"CREATE UNLOGGED TABLE t (a int)", SQL_K_QUERY, "CREATE TABLE", "CREATE TABLE t (a int)"},
    {"create global temp table t (a int)", SQL_K_QUERY, "CREATE TABLE", "create temp table t (a int)"},
    {"create table t (id serial primary key, name text)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (id INTEGER primary key, name text)"},
    {"create table t (id bigserial primary key)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (id INTEGER primary key)"},
    {"create table t (id bigserial, x serial)", SQL_K_QUERY, "CREATE TABLE", "create table t (id BIGINT, x INTEGER)"},
    {"create table t (id bigserial, primary key (id))", SQL_K_QUERY, "CREATE TABLE",
     "create table t (id INTEGER, primary key (id))"},
    {"create table t (id int generated always as identity primary key)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (id INTEGER primary key)"},
    {"create table t (id bigint generated by default as identity (start 10) primary key)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (id INTEGER primary key)"},
    {"create table t (a int, b int generated always as (a * 2) stored)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (a int, b int generated always as (a * 2) stored)"},
    {"create table t (ts timestamptz default now(), n int default 0, m int default -1 not null, s text default "
     "'x'::text, u text default current_user, p int default (1))",
     SQL_K_QUERY, "CREATE TABLE",
     "create table t (ts timestamptz default CURRENT_TIMESTAMP, n int default 0, m int default -1 not null, s text "
     "default (CAST('x' AS TEXT)), u text default (current_user()), p int default (1))"},
    {"create table t (a int default null, b boolean default true)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (a int default null, b boolean default true)"},
    {"create table t (d date default date '2000-01-01' not null)", SQL_K_QUERY, "CREATE TABLE",
     "create table t (d date default (CAST('2000-01-01' AS TEXT)) not null)"},
    {"create table t (a int) tablespace foo", SQL_K_QUERY, "CREATE TABLE", "create table t (a int)"},
    {"create table t (a int) with oids", SQL_K_QUERY, "CREATE TABLE", "create table t (a int)"},
    {"create table t (a int) using heap", SQL_K_QUERY, "CREATE TABLE", "create table t (a int)"},
    {"create table t (a int) without rowid", SQL_K_QUERY, "CREATE TABLE", "create table t (a int) without rowid"},
    {"create table if not exists public.t (a double precision, b timestamp with time zone, c character varying(10))",
     SQL_K_QUERY, "CREATE TABLE",
     "create table if not exists t (a double precision, b timestamp with time zone, c character varying(10))"},
    {"create table t as select 1", SQL_K_QUERY, "SELECT", "create table t as select 1"},
    {"create table t as select 1 with data", SQL_K_QUERY, "SELECT", "create table t as select 1"},
    {"create index on t (a, b)", SQL_K_QUERY, "CREATE INDEX", "create index t_a_b_idx on t (a, b)"},
    {"create unique index on t (lower(a))", SQL_K_QUERY, "CREATE INDEX",
     "create unique index t_expr_idx on t (lower(a))"},
    {"create unique index concurrently if not exists i on only t using btree (a) include (b) with (fillfactor=70) "
     "tablespace x where a > 0",
     SQL_K_QUERY, "CREATE INDEX", "create unique index if not exists i on t (a) where a > 0"},
    {"CREATE UNIQUE INDEX i ON t (a)", SQL_K_QUERY, "CREATE INDEX", "CREATE UNIQUE INDEX i ON t (a)"},
    {"create or replace view v as select 1", SQL_K_QUERY, "CREATE VIEW",
     "DROP VIEW IF EXISTS v; create view v as select 1"},
    {"create view v with (security_barrier) as select 1 with local check option", SQL_K_QUERY, "CREATE VIEW",
     "create view v as select 1"},
    {"create temp view v (a) as select $$x$$", SQL_K_QUERY, "CREATE VIEW", "create temp view v (a) as select 'x'"},
    {"create temp trigger tr after insert on t begin select 1; end", SQL_K_QUERY, "CREATE TRIGGER",
     "create temp trigger tr after insert on t begin select 1; end"},
    {"create trigger tr after insert on t begin update x set a = case when new.a then 1 else 0 end; end;", SQL_K_QUERY,
     "CREATE TRIGGER",
     "create trigger tr after insert on t begin update x set a = case when new.a then 1 else 0 end; end"},
    {"create virtual table v using fts5(a)", SQL_K_QUERY, "CREATE TABLE", NULL},
    {"create schema s", SQL_K_QUERY, "CREATE SCHEMA", "create schema s"},
    {"create materialized view m as select 1", SQL_K_QUERY, "CREATE MATERIALIZED VIEW", NULL},
    /* DROP / TRUNCATE / ALTER */
    {"drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", SQL_K_QUERY,
     "DROP TABLE",
     "DROP TABLE IF EXISTS pgbench_accounts; DROP TABLE IF EXISTS pgbench_branches; DROP TABLE IF EXISTS "
     "pgbench_history; DROP TABLE IF EXISTS pgbench_tellers"},
    {"drop table t cascade", SQL_K_QUERY, "DROP TABLE", "DROP TABLE t"},
    {"DROP TABLE public.\"T\" restrict", SQL_K_QUERY, "DROP TABLE", "DROP TABLE \"T\""},
    {"drop index concurrently if exists i", SQL_K_QUERY, "DROP INDEX", "DROP INDEX IF EXISTS i"},
    {"drop view a, b", SQL_K_QUERY, "DROP VIEW", "DROP VIEW a; DROP VIEW b"},
    {"drop trigger if exists tr on t", SQL_K_QUERY, "DROP TRIGGER", "DROP TRIGGER IF EXISTS tr"},
    {"drop schema s", SQL_K_QUERY, "DROP SCHEMA", "drop schema s"},
    {"truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", SQL_K_QUERY,
     "TRUNCATE TABLE",
     "DELETE FROM pgbench_accounts; DELETE FROM pgbench_branches; DELETE FROM pgbench_history; DELETE FROM "
     "pgbench_tellers"},
    {"truncate pgbench_history", SQL_K_QUERY, "TRUNCATE TABLE", "DELETE FROM pgbench_history"},
    {"TRUNCATE ONLY a, b * RESTART IDENTITY CASCADE", SQL_K_QUERY, "TRUNCATE TABLE", "DELETE FROM a; DELETE FROM b"},
    {"truncate t continue identity restrict", SQL_K_QUERY, "TRUNCATE TABLE", "DELETE FROM t"},
    {"alter table pgbench_branches add primary key (bid)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS pgbench_branches_pkey ON pgbench_branches(bid)"},
    {"alter table pgbench_tellers add primary key (tid)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS pgbench_tellers_pkey ON pgbench_tellers(tid)"},
    {"alter table pgbench_accounts add primary key (aid)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS pgbench_accounts_pkey ON pgbench_accounts(aid)"},
    {"alter table only t add constraint t_pk primary key (a, b)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS t_pk ON t(a, b)"},
    {"alter table t add unique (a, b)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS t_a_b_key ON t(a, b)"},
    {"ALTER TABLE \"My T\" ADD PRIMARY KEY (id)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS \"My T_pkey\" ON \"My T\"(id)"},
    {"alter table main.t add primary key (id)", SQL_K_QUERY, "ALTER TABLE",
     "CREATE UNIQUE INDEX IF NOT EXISTS main.t_pkey ON t(id)"},
    {"alter table pgbench_tellers add constraint pgbench_tellers_bid_fkey foreign key (bid) references "
     "pgbench_branches",
     SQL_K_NOOP, "ALTER TABLE", NOSQL},
    {"alter table pgbench_accounts add foreign key (bid) references pgbench_branches", SQL_K_NOOP, "ALTER TABLE",
     NOSQL},
    {"alter table t add column c int", SQL_K_QUERY, "ALTER TABLE", "alter table t add column c int"},
    {"alter table only t rename to u", SQL_K_QUERY, "ALTER TABLE", "alter table t rename to u"},
    {"alter index i rename to j", SQL_K_QUERY, "ALTER INDEX", NULL},
    /* VACUUM / ANALYZE / EXPLAIN / REINDEX */
    {"vacuum analyze pgbench_branches", SQL_K_QUERY, "VACUUM", "ANALYZE pgbench_branches"},
    {"vacuum pgbench_branches", SQL_K_NOOP, "VACUUM", NOSQL},
    {"vacuum pgbench_tellers", SQL_K_NOOP, "VACUUM", NOSQL},
    {"VACUUM", SQL_K_NOOP, "VACUUM", NOSQL},
    {"vacuum (analyze, verbose) a, b (x, y)", SQL_K_QUERY, "VACUUM", "ANALYZE a; ANALYZE b"},
    {"vacuum full freeze verbose analyze", SQL_K_QUERY, "VACUUM", "ANALYZE"},
    {"vacuum (analyze false) t", SQL_K_NOOP, "VACUUM", NOSQL},
    {"vacuum (full) t", SQL_K_NOOP, "VACUUM", NOSQL},
    {"analyze", SQL_K_QUERY, "ANALYZE", "ANALYZE"},
    {"analyze verbose public.t (a, b)", SQL_K_QUERY, "ANALYZE", "ANALYZE t"},
    {"explain select 1", SQL_K_QUERY, "EXPLAIN", "EXPLAIN QUERY PLAN select 1"},
    {"explain (analyze, costs off) select $1::int", SQL_K_QUERY, "EXPLAIN",
     "EXPLAIN QUERY PLAN select CAST(?1 AS INTEGER)"},
    {"explain analyze verbose update t set a = 1", SQL_K_QUERY, "EXPLAIN", "EXPLAIN QUERY PLAN update t set a = 1"},
    {"EXPLAIN QUERY PLAN SELECT 1", SQL_K_QUERY, "EXPLAIN", "EXPLAIN QUERY PLAN SELECT 1"},
    {"explain table t", SQL_K_QUERY, "EXPLAIN", "EXPLAIN QUERY PLAN SELECT * FROM t"},
    {"reindex table t", SQL_K_QUERY, "REINDEX", "REINDEX t"},
    {"reindex (verbose) index concurrently i", SQL_K_QUERY, "REINDEX", "REINDEX i"},
    {"reindex database x", SQL_K_QUERY, "REINDEX", "REINDEX"},
    {"reindex", SQL_K_QUERY, "REINDEX", "reindex"},
    /* transactions */
    {"BEGIN", SQL_K_BEGIN, "BEGIN", "BEGIN"},
    {"begin work", SQL_K_BEGIN, "BEGIN", "BEGIN"},
    {"begin immediate transaction", SQL_K_BEGIN, "BEGIN", "BEGIN IMMEDIATE"},
    {"BEGIN EXCLUSIVE", SQL_K_BEGIN, "BEGIN", "BEGIN EXCLUSIVE"},
    {"begin deferred", SQL_K_BEGIN, "BEGIN", "BEGIN DEFERRED"},
    {"start transaction", SQL_K_BEGIN, "START TRANSACTION", "BEGIN"},
    {"commit", SQL_K_COMMIT, "COMMIT", "COMMIT"},
    {"END", SQL_K_COMMIT, "COMMIT", "COMMIT"},
    {"end transaction", SQL_K_COMMIT, "COMMIT", "COMMIT"},
    {"commit work and no chain", SQL_K_COMMIT, "COMMIT", "COMMIT"},
    {"rollback", SQL_K_ROLLBACK, "ROLLBACK", "ROLLBACK"},
    {"rollback transaction", SQL_K_ROLLBACK, "ROLLBACK", "ROLLBACK"},
    {"ABORT WORK", SQL_K_ROLLBACK, "ROLLBACK", "ROLLBACK"},
    {"rollback to savepoint s1", SQL_K_ROLLBACK_TO, "ROLLBACK", "ROLLBACK TO SAVEPOINT s1"},
    {"rollback work to s1", SQL_K_ROLLBACK_TO, "ROLLBACK", "ROLLBACK TO SAVEPOINT s1"},
    {"savepoint S1", SQL_K_SAVEPOINT, "SAVEPOINT", "SAVEPOINT S1"},
    {"release s1", SQL_K_RELEASE, "RELEASE", "RELEASE SAVEPOINT s1"},
    {"release savepoint \"X y\"", SQL_K_RELEASE, "RELEASE", "RELEASE SAVEPOINT \"X y\""},
    /* no-ops and session commands */
    {"checkpoint", SQL_K_NOOP, "CHECKPOINT", NOSQL},
    {"listen foo", SQL_K_NOOP, "LISTEN", NOSQL},
    {"unlisten *", SQL_K_NOOP, "UNLISTEN", NOSQL},
    {"notify foo, 'x'", SQL_K_NOOP, "NOTIFY", NOSQL},
    {"lock table t in access exclusive mode", SQL_K_NOOP, "LOCK TABLE", NOSQL},
    {"discard all", SQL_K_DISCARD, "DISCARD ALL", NOSQL},
    {"discard plans", SQL_K_NOOP, "DISCARD PLANS", NOSQL},
    {"deallocate prepare s1", SQL_K_DEALLOCATE, "DEALLOCATE", NOSQL},
    {"DEALLOCATE ALL", SQL_K_DEALLOCATE, "DEALLOCATE ALL", NOSQL},
    {"set x = 1", SQL_K_SET, "SET", NOSQL},
    {"show x", SQL_K_SHOW, "SHOW", NOSQL},
    {"reset x", SQL_K_RESET, "RESET", NOSQL},
    /* everything else passes through */
    {"foo bar", SQL_K_QUERY, "FOO", "foo bar"},
    {"select count(*) from pgbench_branches", SQL_K_QUERY, "SELECT", "select count(*) from pgbench_branches"},
    {"", SQL_K_NOOP, "", NOSQL},
    {"  -- only a comment\n", SQL_K_NOOP, "", NOSQL},
    {";", SQL_K_NOOP, "", NOSQL},
};

static void check_case(const struct tcase *tc)
{
    struct sql_stmt st;
    char state[6], err[256];
    int rc = translate(tc->in, &st, state, err, sizeof err);
    int ok = rc == 0 && st.kind == tc->kind && strcmp(st.tag, tc->tag) == 0;
    if (ok && tc->sql == NOSQL)
        ok = st.sql == NULL;
    else if (ok && tc->sql)
        ok = st.sql && strcmp(st.sql, tc->sql) == 0;
    if (!ok) {
        failures++;
        printf("MISMATCH: %s\n  rc=%d state=%s err=%s kind=%d/%d tag=[%s]/[%s]\n  sql=[%s]\n  exp=[%s]\n", tc->in, rc,
               state, err, rc ? -1 : (int)st.kind, (int)tc->kind, rc ? "" : st.tag, tc->tag,
               rc == 0 && st.sql ? st.sql : "(null)",
               tc->sql == NOSQL ? "(null)"
               : tc->sql        ? tc->sql
                                : "(any)");
    }
    sql_stmt_clear(&st);
}

static void test_translate_cases(void **state)
{
    (void)state;
    failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        check_case(&cases[i]);
    assert_int_equal(failures, 0);
}

static void test_max_param(void **state)
{
    (void)state;
    struct sql_stmt st;
    char sqlstate[6], err[256];
    assert_int_equal(translate("select $3, $12, '$99', $1", &st, sqlstate, err, sizeof err), 0);
    assert_int_equal(st.max_param, 12);
    sql_stmt_clear(&st);
    assert_int_equal(translate("select 1", &st, sqlstate, err, sizeof err), 0);
    assert_int_equal(st.max_param, 0);
    assert_int_equal(st.read_only, -1);
    sql_stmt_clear(&st);
}

/* ---- BEGIN / SET / SHOW / RESET / DEALLOCATE fields ---------------------- */

struct setcase {
    const char *in;
    enum sql_kind kind;
    const char *name;
    const char *value;
    int local, read_only;
};

static const struct setcase set_cases[] = {
    {"SET search_path TO public", SQL_K_SET, "search_path", "public", 0, -1},
    {"set search_path = \"$user\", public", SQL_K_SET, "search_path", "$user, public", 0, -1},
    {"set application_name = 'my app'", SQL_K_SET, "application_name", "my app", 0, -1},
    {"SET LOCAL statement_timeout = 5000", SQL_K_SET, "statement_timeout", "5000", 1, -1},
    {"SET SESSION DateStyle = ISO, MDY", SQL_K_SET, "datestyle", "iso, mdy", 0, -1},
    {"set orbit.read_consistency = 'strong'", SQL_K_SET, "orbit.read_consistency", "strong", 0, -1},
    {"SET \"Foo\" TO DEFAULT", SQL_K_SET, "Foo", NULL, 0, -1},
    {"set x to 'it''s'", SQL_K_SET, "x", "it's", 0, -1},
    {"set x = E'a\\tb'", SQL_K_SET, "x", "a\tb", 0, -1},
    {"set x = $$q$$", SQL_K_SET, "x", "q", 0, -1},
    {"set x to on", SQL_K_SET, "x", "on", 0, -1},
    {"set x = 1.5", SQL_K_SET, "x", "1.5", 0, -1},
    {"set x=-1", SQL_K_SET, "x", "-1", 0, -1},
    {"set extra_float_digits = 3", SQL_K_SET, "extra_float_digits", "3", 0, -1},
    {"SET client_min_messages TO WARNING", SQL_K_SET, "client_min_messages", "warning", 0, -1},
    {"SET TIME ZONE 'UTC'", SQL_K_SET, "timezone", "UTC", 0, -1},
    {"set local time zone 'Europe/Paris'", SQL_K_SET, "timezone", "Europe/Paris", 1, -1},
    {"set time zone local", SQL_K_SET, "timezone", NULL, 0, -1},
    {"set time zone default", SQL_K_SET, "timezone", NULL, 0, -1},
    {"set time zone -5", SQL_K_SET, "timezone", "-5", 0, -1},
    {"SET NAMES 'UTF8'", SQL_K_SET, "client_encoding", "UTF8", 0, -1},
    {"set schema 'app'", SQL_K_SET, "search_path", "app", 0, -1},
    {"SET ROLE admin", SQL_K_SET, "role", "admin", 0, -1},
    {"set session authorization default", SQL_K_SET, "session_authorization", NULL, 0, -1},
    {"set transaction isolation level repeatable read", SQL_K_SET, "transaction_isolation", "repeatable read", 0, -1},
    {"set transaction read only", SQL_K_SET, "transaction_read_only", "on", 0, 1},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE, READ WRITE", SQL_K_SET, "transaction_isolation", "serializable", 0,
     0},
    {"set session characteristics as transaction read write", SQL_K_SET, "default_transaction_read_only", "off", 0, 0},
    {"set session characteristics as transaction isolation level read committed", SQL_K_SET,
     "default_transaction_isolation", "read committed", 0, -1},
    {"SHOW ALL", SQL_K_SHOW, "all", NULL, 0, -1},
    {"show time zone", SQL_K_SHOW, "timezone", NULL, 0, -1},
    {"show transaction isolation level", SQL_K_SHOW, "transaction_isolation", NULL, 0, -1},
    {"SHOW search_path", SQL_K_SHOW, "search_path", NULL, 0, -1},
    {"show \"Foo\"", SQL_K_SHOW, "Foo", NULL, 0, -1},
    {"show orbit.read_consistency", SQL_K_SHOW, "orbit.read_consistency", NULL, 0, -1},
    {"show session authorization", SQL_K_SHOW, "session_authorization", NULL, 0, -1},
    {"RESET ALL", SQL_K_RESET, "all", NULL, 0, -1},
    {"reset Statement_Timeout", SQL_K_RESET, "statement_timeout", NULL, 0, -1},
    {"reset time zone", SQL_K_RESET, "timezone", NULL, 0, -1},
    {"reset role", SQL_K_RESET, "role", NULL, 0, -1},
    {"begin transaction isolation level serializable, read only", SQL_K_BEGIN, NULL, "serializable", 0, 1},
    {"start transaction read write", SQL_K_BEGIN, NULL, NULL, 0, 0},
    {"begin read only deferrable", SQL_K_BEGIN, NULL, NULL, 0, 1},
    {"begin isolation level read uncommitted not deferrable", SQL_K_BEGIN, NULL, "read uncommitted", 0, -1},
    {"START TRANSACTION ISOLATION LEVEL READ COMMITTED READ ONLY", SQL_K_BEGIN, NULL, "read committed", 0, 1},
    {"deallocate prepare s1", SQL_K_DEALLOCATE, "s1", NULL, 0, -1},
    {"deallocate \"S 2\"", SQL_K_DEALLOCATE, "S 2", NULL, 0, -1},
    {"deallocate all", SQL_K_DEALLOCATE, "all", NULL, 0, -1},
    {"savepoint Foo", SQL_K_SAVEPOINT, "foo", NULL, 0, -1},
    {"rollback to savepoint \"Foo\"", SQL_K_ROLLBACK_TO, "Foo", NULL, 0, -1},
};

static int streq_null(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

static void test_set_show(void **state)
{
    (void)state;
    failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(set_cases); i++) {
        const struct setcase *tc = &set_cases[i];
        struct sql_stmt st;
        char sqlstate[6], err[256];
        int rc = translate(tc->in, &st, sqlstate, err, sizeof err);
        if (rc || st.kind != tc->kind || !streq_null(st.name, tc->name) || !streq_null(st.set_value, tc->value) ||
            st.set_local != tc->local || st.read_only != tc->read_only) {
            failures++;
            printf("MISMATCH: %s\n  rc=%d %s %s kind=%d name=[%s] value=[%s] local=%d ro=%d\n", tc->in, rc, sqlstate,
                   err, (int)st.kind, rc == 0 && st.name ? st.name : "(null)",
                   rc == 0 && st.set_value ? st.set_value : "(null)", st.set_local, st.read_only);
        }
        sql_stmt_clear(&st);
    }
    assert_int_equal(failures, 0);
}

/* ---- COPY -------------------------------------------------------------- */

struct copycase {
    const char *in;
    enum sql_kind kind;
    const char *table, *columns, *query;
    enum sql_copy_format format;
    char delimiter, quote, escape;
    const char *null_str;
    int header;
};

static const struct copycase copy_cases[] = {
    {"copy pgbench_accounts from stdin with (freeze on)", SQL_K_COPY_FROM, "pgbench_accounts", NULL, NULL,
     SQL_COPY_TEXT, '\t', '"', '"', "\\N", 0},
    {"copy pgbench_accounts from stdin", SQL_K_COPY_FROM, "pgbench_accounts", NULL, NULL, SQL_COPY_TEXT, '\t', '"', '"',
     "\\N", 0},
    {"COPY public.t (a, \"B\") FROM STDIN WITH (FORMAT csv, HEADER true, DELIMITER ';', NULL 'NULL', QUOTE '''', "
     "ESCAPE '\\', ENCODING 'utf8', FREEZE)",
     SQL_K_COPY_FROM, "t", "a, \"B\"", NULL, SQL_COPY_CSV, ';', '\'', '\\', "NULL", 1},
    {"copy t from stdin (format 'csv')", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_CSV, ',', '"', '"', "", 0},
    {"copy t from stdin (format csv, quote '|')", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_CSV, ',', '|', '|', "", 0},
    {"copy t from stdin (header)", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_TEXT, '\t', '"', '"', "\\N", 1},
    {"copy t from stdin csv header delimiter as '|' null as ''", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_CSV, '|',
     '"', '"', "", 1},
    {"copy t from stdin with csv quote as '''' escape '\\'", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_CSV, ',', '\'',
     '\\', "", 0},
    {"copy t from stdin with delimiter E'\\t' null 'x'", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_TEXT, '\t', '"',
     '"', "x", 0},
    {"copy t from stdin (format binary)", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_BINARY, '\t', '"', '"', "\\N", 0},
    {"copy binary t from stdin", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_BINARY, '\t', '"', '"', "\\N", 0},
    {"copy t from stdin with binary", SQL_K_COPY_FROM, "t", NULL, NULL, SQL_COPY_BINARY, '\t', '"', '"', "\\N", 0},
    {"copy t to stdout", SQL_K_COPY_TO, "t", NULL, "SELECT * FROM t", SQL_COPY_TEXT, '\t', '"', '"', "\\N", 0},
    {"copy t (a,b) to stdout with (format csv, header)", SQL_K_COPY_TO, "t", "a,b", "SELECT a,b FROM t", SQL_COPY_CSV,
     ',', '"', '"', "", 1},
    {"copy \"My T\" to stdout", SQL_K_COPY_TO, "\"My T\"", NULL, "SELECT * FROM \"My T\"", SQL_COPY_TEXT, '\t', '"',
     '"', "\\N", 0},
    {"copy (select $$x$$, 1::int from t where a = 'b') to stdout with csv", SQL_K_COPY_TO, NULL, NULL,
     "select 'x', CAST(1 AS INTEGER) from t where a = 'b'", SQL_COPY_CSV, ',', '"', '"', "", 0},
    {"copy (table t) to stdout", SQL_K_COPY_TO, NULL, NULL, "SELECT * FROM t", SQL_COPY_TEXT, '\t', '"', '"', "\\N", 0},
    {"COPY (VALUES (1)) TO STDOUT (FORMAT binary)", SQL_K_COPY_TO, NULL, NULL, "VALUES (1)", SQL_COPY_BINARY, '\t', '"',
     '"', "\\N", 0},
};

static void test_copy(void **state)
{
    (void)state;
    failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(copy_cases); i++) {
        const struct copycase *tc = &copy_cases[i];
        struct sql_stmt st;
        char sqlstate[6], err[256];
        int rc = translate(tc->in, &st, sqlstate, err, sizeof err);
        const struct sql_copy *c = &st.copy;
        if (rc || st.kind != tc->kind || strcmp(st.tag, "COPY") || !streq_null(c->table, tc->table) ||
            !streq_null(c->columns, tc->columns) || !streq_null(c->query, tc->query) || c->format != tc->format ||
            c->delimiter != tc->delimiter || c->quote != tc->quote || c->escape != tc->escape ||
            !streq_null(c->null_str, tc->null_str) || c->header != tc->header) {
            failures++;
            printf("MISMATCH: %s\n  rc=%d %s %s kind=%d table=[%s] cols=[%s] query=[%s] fmt=%d d=%d q=%d e=%d "
                   "null=[%s] h=%d\n",
                   tc->in, rc, sqlstate, err, (int)st.kind, c->table ? c->table : "(null)",
                   c->columns ? c->columns : "(null)", c->query ? c->query : "(null)", (int)c->format, c->delimiter,
                   c->quote, c->escape, c->null_str ? c->null_str : "(null)", c->header);
        }
        sql_stmt_clear(&st);
    }
    assert_int_equal(failures, 0);
}

/* ---- errors --------------------------------------------------------------- */

struct errcase {
    const char *in;
    const char *state;
    const char *msg; /* substring, or NULL */
};

static const struct errcase err_cases[] = {
    {"copy t from '/etc/passwd'", "0A000", "COPY to or from a file is not supported; use STDIN/STDOUT (psql's \\copy)"},
    {"copy t to '/tmp/x' csv", "0A000", "COPY to or from a file is not supported"},
    {"copy t from program 'ls'", "0A000", "not supported"},
    {"copy t to stdout (force_quote *)", "0A000", "FORCE_QUOTE"},
    {"copy t to stdout csv force quote a", "0A000", "FORCE"},
    {"copy t from stdin (force_not_null (a, b))", "0A000", "FORCE_NOT_NULL"},
    {"copy t from stdin (force_null (a))", "0A000", "FORCE_NULL"},
    {"copy t from stdin (format xml)", "22023", "xml"},
    {"copy t from stdin (delimiter 'ab')", "0A000", "single one-byte"},
    {"copy t from stdin (quote '\"')", "0A000", "CSV mode"},
    {"copy t from stdin (bogus 1)", "42601", "bogus"},
    {"copy t from stdin (format csv, format text)", "42601", "redundant"},
    {"copy t from stdin (format csv, delimiter '\"')", "22023", "quote"},
    {"copy t from stdin (delimiter 'x')", "22023", NULL},
    {"copy t from stdin (delimiter ',', null 'a,b')", "22023", "NULL"},
    {"copy t from stdin (format binary, header)", "42601", "BINARY"},
    {"copy t from stdin (header maybe)", "22023", "Boolean"},
    {"copy t from stdin (encoding 'latin1')", "0A000", "ENCODING"},
    {"copy t from stdin where a > 1", "0A000", "WHERE"},
    {"copy t from stdout", "42601", NULL},
    {"copy (select 1) from stdin", "42601", NULL},
    {"copy (drop table t) to stdout", "42601", NULL},
    {"copy t", "42601", NULL},
    {"copy t from stdin (delimiter)", "42601", NULL},
    {"select $0", "42P02", "$0"},
    {"select $99999999999999999999", "42P02", NULL},
    {"select ::int", "42601", "::"},
    {"select 1::", "42601", "end of input"},
    {"select 1::5", "42601", NULL},
    {"select (1::int", "42601", NULL},
    {"select 1::int[]", "0A000", "array"},
    {"select E'\\u0000'", "22021", NULL},
    {"select E'\\0'", "22021", NULL},
    {"select E'\\uD800'", "22025", NULL},
    {"select E'\\U00110000'", "22025", NULL},
    {"select E'\\u12'", "22025", NULL},
    {"select 'abc", "42601", "unterminated quoted string"},
    {"select \"abc", "42601", "unterminated quoted identifier"},
    {"select /* /* */", "42601", "unterminated /* comment"},
    {"select $a$ $b$", "42601", "dollar"},
    {"select 1; select 2", "42601", "multiple commands"},
    {"begin isolation level foo", "42601", "foo"},
    {"begin read", "42601", NULL},
    {"start", "42601", NULL},
    {"commit and chain", "0A000", "CHAIN"},
    {"commit prepared 'x'", "0A000", "PREPARED"},
    {"rollback prepared 'x'", "0A000", "PREPARED"},
    {"commit foo", "42601", "foo"},
    {"set", "42601", NULL},
    {"set x", "42601", NULL},
    {"set x =", "42601", NULL},
    {"set x = (1)", "42601", NULL},
    {"set x = 1 2", "42601", NULL},
    {"set transaction snapshot 'x'", "0A000", NULL},
    {"set time zone interval '+00:00' hour to minute", "0A000", NULL},
    {"show", "42601", NULL},
    {"show a b", "42601", NULL},
    {"savepoint", "42601", NULL},
    {"savepoint a b", "42601", NULL},
    {"release", "42601", NULL},
    {"rollback to", "42601", NULL},
    {"discard temp", "0A000", NULL},
    {"discard", "42601", NULL},
    {"deallocate", "42601", NULL},
    {"attach 'x' as y", "0A000", "ATTACH"},
    {"detach y", "0A000", NULL},
    {"prepare p as select 1", "0A000", NULL},
    {"do $$ begin end $$", "0A000", NULL},
    {"create table t (a int) partition by range (a)", "0A000", "PARTITION BY"},
    {"create table t (a int) inherits (b)", "0A000", "INHERITS"},
    {"create table t partition of p for values in (1)", "0A000", NULL},
    {"create temp table t (a int) on commit drop", "0A000", NULL},
    {"create table t as select 1 with no data", "0A000", NULL},
    {"create table", "42601", NULL},
    {"create index on", "42601", NULL},
    {"create index i on t", "42601", NULL},
    {"alter table t add check (a > 0)", "0A000", "CHECK"},
    {"alter table", "42601", NULL},
    {"drop table", "42601", NULL},
    {"drop table a,", "42601", NULL},
    {"drop table a b", "42601", NULL},
    {"truncate", "42601", NULL},
    {"truncate a b", "42601", NULL},
    {"vacuum a b", "42601", NULL},
    {"vacuum (analyze maybe) t", "22023", NULL},
    {"explain", "42601", NULL},
    {"reindex table", "42601", NULL},
};

static void test_errors(void **state)
{
    (void)state;
    failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(err_cases); i++) {
        const struct errcase *tc = &err_cases[i];
        struct sql_stmt st;
        char sqlstate[6] = "", err[256] = "";
        int rc = translate(tc->in, &st, sqlstate, err, sizeof err);
        if (rc != -1 || strcmp(sqlstate, tc->state) || (tc->msg && !strstr(err, tc->msg)) || !err[0] || st.sql ||
            st.name || st.copy.table || st.copy.null_str) {
            failures++;
            printf("MISMATCH: %s\n  rc=%d state=%s (want %s) err=%s\n", tc->in, rc, sqlstate, tc->state, err);
        }
        sql_stmt_clear(&st);
    }
    assert_int_equal(failures, 0);

    /* NUL bytes and the length being authoritative */
    struct sql_stmt st;
    char sqlstate[6], err[256];
    assert_int_equal(sql_translate("select\0 1", 9, &st, sqlstate, err, sizeof err), -1);
    assert_string_equal(sqlstate, "22021");
    assert_int_equal(sql_translate("select 1; garbage", 8, &st, sqlstate, err, sizeof err), 0);
    assert_string_equal(st.sql, "select 1");
    sql_stmt_clear(&st);
    /* a tiny error buffer is fine */
    assert_int_equal(sql_translate("select 'x", 9, &st, sqlstate, err, 4), -1);
    assert_int_equal(strlen(err), 3);
    assert_int_equal(sql_translate("select 'x", 9, &st, sqlstate, NULL, 0), -1);
    sql_stmt_clear(&st);
    sql_stmt_clear(&st); /* clearing twice is harmless */
}

/* ---- splitting --------------------------------------------------------------- */

struct splitcase {
    const char *in;
    const char *want; /* spans joined by "|" (NULL: error) */
};

static const struct splitcase split_cases[] = {
    {"select 1; select 2", "select 1|select 2"},
    {";;; select 1 ;; ", "select 1"},
    {"", ""},
    {"  -- c\n /* x */ ", ""},
    {"select 1", "select 1"},
    {"select 1 -- ; comment\n; select 2", "select 1|select 2"},
    {"select ';'; select \";\"", "select ';'|select \";\""},
    {"select 'a''b;c'; x", "select 'a''b;c'|x"},
    {"select E'\\';'; select 2", "select E'\\';'|select 2"},
    {"select e'\\\\'; select 2", "select e'\\\\'|select 2"},
    {"select $$;$$; select $a$ $$; $a$", "select $$;$$|select $a$ $$; $a$"},
    {"select $1; select $2;", "select $1|select $2"},
    {"/* a /* b; */ c; */ select 1; select 2", "select 1|select 2"},
    {"select 1 /* ; */; select 2", "select 1|select 2"},
    {"select /* ; */ 1; select 2", "select /* ; */ 1|select 2"},
    {"select \"a;b\" from [x;y]; select `c;d`", "select \"a;b\" from [x;y]|select `c;d`"},
    {"create trigger tr after insert on t begin insert into x values (1); update y set a = case when 1 then 2 end; "
     "end; select 1",
     "create trigger tr after insert on t begin insert into x values (1); update y set a = case when 1 then 2 end; "
     "end|select 1"},
    {"CREATE TEMP TRIGGER tr BEFORE DELETE ON t BEGIN SELECT 1; END ; select 2",
     "CREATE TEMP TRIGGER tr BEFORE DELETE ON t BEGIN SELECT 1; END|select 2"},
    {"create temporary trigger x after update on t begin select ';'; select 'end;'; end",
     "create temporary trigger x after update on t begin select ';'; select 'end;'; end"},
    {"create trigger x after update on t begin select 1; end; end; select 2",
     "create trigger x after update on t begin select 1; end|end|select 2"},
    {"create trigger tr after insert on t for each row execute function f(); select 1",
     "create trigger tr after insert on t for each row execute function f()|select 1"},
    {"explain create trigger x after update on t begin select 1; end; select 2",
     "explain create trigger x after update on t begin select 1; end|select 2"},
    {"create table trigger_t (a int); begin; select 1; end;", "create table trigger_t (a int)|begin|select 1|end"},
    {"select 1\xff; select '\xfe'", "select 1\xff|select '\xfe'"},
    {"select 'abc", NULL},
    {"select 1; select /* abc", NULL},
    {"select $$abc", NULL},
    {"select $x$abc$y$", NULL},
    {"select \"abc", NULL},
    {"select E'abc\\'", NULL},
    {"select [abc", NULL},
    {"select /* /* */", NULL},
};

static void test_split(void **state)
{
    (void)state;
    failures = 0;
    for (size_t i = 0; i < ARRAY_LEN(split_cases); i++) {
        const struct splitcase *tc = &split_cases[i];
        struct sql_span *sp;
        size_t n;
        char err[128], got[1024] = "";
        int rc = sql_split(tc->in, strlen(tc->in), &sp, &n, err, sizeof err);
        for (size_t k = 0; rc == 0 && k < n; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", k ? "|" : "", (int)sp[k].len,
                     tc->in + sp[k].off);
        if (tc->want ? rc != 0 || strcmp(got, tc->want) : rc != -1 || !err[0] || sp || n) {
            failures++;
            printf("MISMATCH split: %s\n  rc=%d err=%s got=[%s]\n", tc->in, rc, rc ? err : "", got);
        }
        util_free(sp);
    }
    assert_int_equal(failures, 0);
}

/* Random statement lists in the dialect both understand, compared with
 * sqlite3_complete(): a ';' ends a statement exactly when
 * sqlite3_complete() says the text since the last boundary is complete. */
static void test_split_vs_sqlite(void **state)
{
    (void)state;
    static const char *const words[] = {"select", "x",     "1",    "'a;b'", "\"c;d\"", "/* ; */", "-- ;\n",
                                        "case",   "end",   "when", "(",     ")",       "temp",    "create",
                                        "begin",  "table", "[e;]", "'end'", "END",     "Begin",   "explain"};
    srand(7);
    for (int iter = 0; iter < 3000; iter++) {
        char q[2048] = "", want[2048] = "", got[2048] = "";
        int nst = 1 + rand() % 4;
        for (int s = 0; s < nst; s++) {
            int trig = rand() % 3 == 0;
            if (trig)
                strcat(q, rand() % 2 ? "CREATE TRIGGER t after insert on x BEGIN "
                                     : "create temp trigger t after insert on x begin ");
            else
                strcat(q, words[rand() % 5]);
            int nw = rand() % 6;
            for (int k = 0; k < nw; k++) {
                strcat(q, " ");
                strcat(q, words[rand() % ARRAY_LEN(words)]);
                strcat(q, trig && rand() % 2 ? ";" : " ");
            }
            strcat(q, trig ? (rand() % 2 ? "; end" : ";\nEND") : " x");
            strcat(q, rand() % 3 ? ";" : " ; ");
        }
        size_t start = 0, len = strlen(q);
        for (size_t i = 0; i <= len; i++) {
            if (i < len && q[i] != ';')
                continue;
            char *piece = strndup(q + start, i + 1 - start);
            int complete = i == len || sqlite3_complete(piece);
            free(piece);
            if (!complete)
                continue;
            size_t a = start, b = i;
            for (int trimmed = 1; trimmed;) { /* whitespace and our two comments at both ends */
                trimmed = 0;
                while (a < b && strchr(" \n", q[a]))
                    a++, trimmed = 1;
                while (b > a && strchr(" \n", q[b - 1]))
                    b--, trimmed = 1;
                if (b - a >= 7 && !strncmp(q + a, "/* ; */", 7))
                    a += 7, trimmed = 1;
                if (b - a >= 7 && !strncmp(q + b - 7, "/* ; */", 7))
                    b -= 7, trimmed = 1;
                if (b - a >= 4 && !strncmp(q + a, "-- ;", 4))
                    a += 4, trimmed = 1;
                if (b - a >= 4 && !strncmp(q + b - 4, "-- ;", 4))
                    b -= 4, trimmed = 1;
            }
            if (b > a)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%.*s", want[0] ? "|" : "", (int)(b - a),
                         q + a);
            start = i + 1;
        }
        struct sql_span *sp;
        size_t n;
        char err[128];
        assert_int_equal(sql_split(q, len, &sp, &n, err, sizeof err), 0);
        for (size_t k = 0; k < n; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%.*s", k ? "|" : "", (int)sp[k].len,
                     q + sp[k].off);
        util_free(sp);
        if (strcmp(want, got))
            printf("split differs from sqlite3_complete:\n  %s\n  want %s\n  got  %s\n", q, want, got);
        assert_string_equal(want, got);
    }
}

/* ---- pgbench against a real SQLite ------------------------------------------- */

static void run_pg(sqlite3 *db, const char *pg, enum sql_kind want)
{
    struct sql_span *sp;
    size_t n;
    char err[256], state[6];
    assert_int_equal(sql_split(pg, strlen(pg), &sp, &n, err, sizeof err), 0);
    for (size_t i = 0; i < n; i++) {
        struct sql_stmt st;
        if (sql_translate(pg + sp[i].off, sp[i].len, &st, state, err, sizeof err)) {
            printf("translate failed: %.*s: %s %s\n", (int)sp[i].len, pg + sp[i].off, state, err);
            fail();
        }
        if (n == 1 && st.kind != want)
            printf("kind %d, want %d: %s\n", (int)st.kind, (int)want, pg);
        assert_true(n > 1 || st.kind == want);
        if (st.sql && st.kind != SQL_K_NOOP) {
            char *msg = NULL;
            if (sqlite3_exec(db, st.sql, NULL, NULL, &msg) != SQLITE_OK) {
                printf("sqlite failed: %s\n  -> %s\n  %s\n", pg, st.sql, msg);
                sqlite3_free(msg);
                fail();
            }
        }
        sql_stmt_clear(&st);
    }
    util_free(sp);
}

static void prepare_pg(sqlite3 *db, const char *pg, int max_param)
{
    struct sql_stmt st;
    char err[256], state[6];
    assert_int_equal(translate(pg, &st, state, err, sizeof err), 0);
    assert_int_equal(st.max_param, max_param);
    sqlite3_stmt *ps;
    if (sqlite3_prepare_v2(db, st.sql, -1, &ps, NULL) != SQLITE_OK) {
        printf("prepare failed: %s -> %s: %s\n", pg, st.sql, sqlite3_errmsg(db));
        fail();
    }
    assert_int_equal(sqlite3_bind_parameter_count(ps), max_param);
    sqlite3_finalize(ps);
    sql_stmt_clear(&st);
}

static int64_t scalar(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *ps;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &ps, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(ps), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(ps, 0);
    sqlite3_finalize(ps);
    return v;
}

static void test_pgbench_sqlite(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    /* pgbench -i */
    run_pg(db, "drop table if exists pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers",
           SQL_K_QUERY);
    run_pg(db, "create table pgbench_history(tid int,bid int,aid    int,delta int,mtime timestamp,filler char(22))",
           SQL_K_QUERY);
    run_pg(db,
           "create table pgbench_tellers(tid int not null,bid int,tbalance int,filler char(84)) with (fillfactor=100)",
           SQL_K_QUERY);
    run_pg(
        db,
        "create table pgbench_accounts(aid    int not null,bid int,abalance int,filler char(84)) with (fillfactor=100)",
        SQL_K_QUERY);
    run_pg(db, "create table pgbench_branches(bid int not null,bbalance int,filler char(88)) with (fillfactor=100)",
           SQL_K_QUERY);
    run_pg(db, "begin", SQL_K_BEGIN); /* runs out.sql, "BEGIN" */
    run_pg(db, "truncate table pgbench_accounts, pgbench_branches, pgbench_history, pgbench_tellers", SQL_K_QUERY);
    run_pg(db, "insert into pgbench_branches(bid,bbalance) values(1,0)", SQL_K_QUERY);
    for (int i = 1; i <= 10; i++) {
        char q[128];
        snprintf(q, sizeof q, "insert into pgbench_tellers(tid,bid,tbalance) values (%d,1,0)", i);
        run_pg(db, q, SQL_K_QUERY);
    }
    run_pg(db, "copy pgbench_accounts from stdin with (freeze on)", SQL_K_COPY_FROM);
    run_pg(db, "copy pgbench_accounts from stdin", SQL_K_COPY_FROM);
    for (int i = 1; i <= 100; i++) {
        char q[160];
        snprintf(q, sizeof q, "insert into pgbench_accounts(aid,bid,abalance,filler) values (%d, 1, 0, '')", i);
        run_pg(db, q, SQL_K_QUERY);
    }
    run_pg(db, "commit", SQL_K_COMMIT);
    run_pg(db, "vacuum analyze pgbench_branches", SQL_K_QUERY);
    run_pg(db, "vacuum analyze pgbench_tellers", SQL_K_QUERY);
    run_pg(db, "vacuum analyze pgbench_accounts", SQL_K_QUERY);
    run_pg(db, "vacuum analyze pgbench_history", SQL_K_QUERY);
    run_pg(db, "alter table pgbench_branches add primary key (bid)", SQL_K_QUERY);
    run_pg(db, "alter table pgbench_tellers add primary key (tid)", SQL_K_QUERY);
    run_pg(db, "alter table pgbench_accounts add primary key (aid)", SQL_K_QUERY);
    run_pg(db, "alter table pgbench_accounts add primary key (aid)", SQL_K_QUERY); /* idempotent */
    run_pg(db,
           "alter table pgbench_tellers add constraint pgbench_tellers_bid_fkey foreign key (bid) references "
           "pgbench_branches",
           SQL_K_NOOP);
    run_pg(db,
           "alter table pgbench_accounts add constraint pgbench_accounts_bid_fkey foreign key (bid) references "
           "pgbench_branches",
           SQL_K_NOOP);
    assert_int_not_equal(sqlite3_exec(db, "insert into pgbench_branches(bid,bbalance) values(1,0)", NULL, NULL, NULL),
                         SQLITE_OK); /* the primary key index works */
    /* pgbench run mode */
    run_pg(db, "select count(*) from pgbench_branches", SQL_K_QUERY);
    run_pg(db, "vacuum pgbench_branches", SQL_K_NOOP);
    run_pg(db, "vacuum pgbench_tellers", SQL_K_NOOP);
    run_pg(db, "truncate pgbench_history", SQL_K_QUERY);
    run_pg(db, "BEGIN;", SQL_K_BEGIN);
    run_pg(db, "UPDATE pgbench_accounts SET abalance = abalance + -17 WHERE aid = 5;", SQL_K_QUERY);
    run_pg(db, "SELECT abalance FROM pgbench_accounts WHERE aid = 5;", SQL_K_QUERY);
    run_pg(db, "UPDATE pgbench_tellers SET tbalance = tbalance + -17 WHERE tid = 3;", SQL_K_QUERY);
    run_pg(db, "UPDATE pgbench_branches SET bbalance = bbalance + -17 WHERE bid = 1;", SQL_K_QUERY);
    run_pg(db, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (3, 1, 5, -17, CURRENT_TIMESTAMP);",
           SQL_K_QUERY);
    run_pg(db, "END;", SQL_K_COMMIT);
    assert_int_equal(scalar(db, "select abalance from pgbench_accounts where aid = 5"), -17);
    assert_int_equal(scalar(db, "select count(*) from pgbench_history"), 1);
    /* the whole script as one simple-query string */
    run_pg(db,
           "UPDATE pgbench_accounts SET abalance = abalance + 1 WHERE aid = 6; SELECT abalance FROM pgbench_accounts "
           "WHERE aid = 6; UPDATE pgbench_tellers SET tbalance = tbalance + 1 WHERE tid = 1; UPDATE pgbench_branches "
           "SET bbalance = bbalance + 1 WHERE bid = 1; INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) "
           "VALUES (1, 1, 6, 1, CURRENT_TIMESTAMP);",
           SQL_K_QUERY);
    assert_int_equal(scalar(db, "select count(*) from pgbench_history"), 2);
    /* -M extended / prepared */
    prepare_pg(db, "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2", 2);
    prepare_pg(db, "SELECT abalance FROM pgbench_accounts WHERE aid = $1", 1);
    prepare_pg(db, "UPDATE pgbench_tellers SET tbalance = tbalance + $1 WHERE tid = $2", 2);
    prepare_pg(db, "UPDATE pgbench_branches SET bbalance = bbalance + $1 WHERE bid = $2", 2);
    prepare_pg(
        db, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ($1, $2, $3, $4, CURRENT_TIMESTAMP)", 4);
    prepare_pg(db, "select $2::int8 + $1::int4, $3::text, $4::float8, $5::numeric", 5);
    /* pgbench's partition probe only needs to translate */
    struct sql_stmt st;
    char err[256], sqlstate[6];
    assert_int_equal(translate("select o.n, p.partstrat, pg_catalog.count(i.inhparent) from pg_catalog.pg_class as c "
                               "join pg_catalog.pg_namespace as n on (n.oid = c.relnamespace) cross join lateral "
                               "(select pg_catalog.array_position(pg_catalog.current_schemas(true), n.nspname)) as "
                               "o(n) left join pg_catalog.pg_partitioned_table as p on (p.partrelid = c.oid) left "
                               "join pg_catalog.pg_inherits as i on (c.oid = i.inhparent) where c.relname = "
                               "'pgbench_accounts' and o.n is not null group by 1, 2 order by 1 asc limit 1",
                               &st, sqlstate, err, sizeof err),
                     0);
    assert_non_null(strstr(st.sql, "p.partstrat, count(i.inhparent) from pg_catalog.pg_class"));
    assert_non_null(strstr(st.sql, "array_position(current_schemas(true)"));
    sql_stmt_clear(&st);
    /* server-side data generation (-I G) translates unchanged */
    const char *gen = "insert into pgbench_accounts(aid,bid,abalance,filler) select aid, (aid - 1) / 100000 + 1, 0, '' "
                      "from generate_series(1, 100000) as aid";
    assert_int_equal(translate(gen, &st, sqlstate, err, sizeof err), 0);
    assert_string_equal(st.sql, gen);
    assert_string_equal(st.tag, "INSERT");
    sql_stmt_clear(&st);
    sqlite3_close(db);
}

/* Translated DDL and expressions run on SQLite with the meaning intended. */
static void bool_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *s = (const char *)sqlite3_value_text(argv[0]);
    if (!s)
        sqlite3_result_null(ctx);
    else
        sqlite3_result_int(ctx, strchr("tTyY1", s[0]) != NULL || strcasecmp(s, "on") == 0);
}

static void user_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc, (void)argv;
    sqlite3_result_text(ctx, "alice", -1, SQLITE_STATIC);
}

static void test_sqlite_semantics(void **state)
{
    (void)state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
    sqlite3_create_function(db, "orbit_bool", 1, SQLITE_UTF8, NULL, bool_fn, NULL, NULL);
    sqlite3_create_function(db, "current_user", 0, SQLITE_UTF8, NULL, user_fn, NULL, NULL);
    run_pg(db,
           "create table t (id serial primary key, n int default 0, s text default 'x'::text, b boolean default "
           "true, u text default current_user, ts timestamptz default now(), d double precision, "
           "v character varying(10), z timestamp with time zone) with (fillfactor = 90)",
           SQL_K_QUERY);
    run_pg(db, "create table u (id bigint generated always as identity primary key, a int)", SQL_K_QUERY);
    run_pg(db, "insert into t (d) values (1.5); insert into t (n) values (E'7'::int)", SQL_K_QUERY);
    run_pg(db, "insert into u (a) values (1), (2)", SQL_K_QUERY);
    assert_int_equal(scalar(db, "select max(id) from t"), 2);
    assert_int_equal(scalar(db, "select max(id) from u"), 2);
    assert_int_equal(scalar(db, "select count(*) from t where s = 'x' and u = 'alice' and ts is not null"), 2);
    struct sql_stmt st;
    char err[256], sqlstate[6];
    assert_int_equal(translate("select '41'::int + 1, 't'::bool::int + 'off'::boolean::int, '2.5'::float8 * 2, "
                               "'2024-01-02'::date = '2024-01-02', $$a'b$$::text, length(E'\\x41\\n'), "
                               "cast('12' as int8) + 1, cast('true' as boolean), current_user, "
                               "'ABC' ilike 'abc'",
                               &st, sqlstate, err, sizeof err),
                     0);
    sqlite3_stmt *ps;
    assert_int_equal(sqlite3_prepare_v2(db, st.sql, -1, &ps, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(ps), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(ps, 0), 42);
    assert_int_equal(sqlite3_column_int(ps, 1), 1);
    assert_true(sqlite3_column_double(ps, 2) == 5.0);
    assert_int_equal(sqlite3_column_int(ps, 3), 1);
    assert_string_equal((const char *)sqlite3_column_text(ps, 4), "a'b");
    assert_int_equal(sqlite3_column_int(ps, 5), 2);
    assert_int_equal(sqlite3_column_int(ps, 6), 13);
    assert_int_equal(sqlite3_column_int(ps, 7), 1);
    assert_string_equal((const char *)sqlite3_column_text(ps, 8), "alice");
    assert_int_equal(sqlite3_column_int(ps, 9), 1);
    sqlite3_finalize(ps);
    sql_stmt_clear(&st);
    run_pg(db, "create or replace view v as select 1 as a; create or replace view v as select 2 as a", SQL_K_QUERY);
    assert_int_equal(scalar(db, "select a from v"), 2);
    run_pg(db, "create index on t (n, d); create unique index concurrently if not exists t_v on only t using btree (v)",
           SQL_K_QUERY);
    assert_int_equal(scalar(db, "select count(*) from sqlite_master where name in ('t_n_d_idx', 't_v')"), 2);
    run_pg(db,
           "create temp trigger tr after insert on u begin update t set n = case when new.a > 5 then 1 else 0 end; "
           "end; insert into u (a) values (9)",
           SQL_K_QUERY);
    assert_int_equal(scalar(db, "select sum(n) from t"), 2);
    run_pg(db, "select * from t for update; table t; with x as (select 1) select * from x", SQL_K_QUERY);
    run_pg(db, "drop trigger if exists tr on u; drop view if exists v, w cascade; drop index t_v", SQL_K_QUERY);
    run_pg(db, "vacuum (analyze) t, u; analyze; explain select * from t where id = 1", SQL_K_QUERY);
    sqlite3_close(db);
}

/* ---- robustness ------------------------------------------------------------------ */

static void feed(const char *q, size_t len)
{
    struct sql_span *sp;
    size_t n;
    char err[128], state[6];
    if (sql_split(q, len, &sp, &n, err, sizeof err) == 0) {
        for (size_t i = 0; i < n; i++) {
            assert_true(sp[i].off + sp[i].len <= len && sp[i].len > 0);
            struct sql_stmt st;
            if (sql_translate(q + sp[i].off, sp[i].len, &st, state, err, sizeof err) == 0) {
                assert_true(st.tag[sizeof st.tag - 1] == 0);
                if (st.kind == SQL_K_QUERY)
                    assert_non_null(st.sql);
            } else { /* a span is one complete statement */
                assert_int_equal(strlen(state), 5);
                assert_null(strstr(err, "multiple commands"));
                assert_null(strstr(err, "unterminated"));
            }
            sql_stmt_clear(&st);
        }
        util_free(sp);
    }
    struct sql_stmt st;
    if (sql_translate(q, len, &st, state, err, sizeof err) == 0)
        sql_stmt_clear(&st);
}

static void test_random(void **state)
{
    (void)state;
    static const char specials[] = "'\"$;():-/*E[]`\\ \n,.=0";
    const char *env = getenv("COMPAT_FUZZ_ITERS");
    int iters = env ? atoi(env) : 4000;
    char q[512];
    srand(12345);
    for (int it = 0; it < iters; it++) {
        size_t len = (size_t)(rand() % 64);
        for (size_t i = 0; i < len; i++)
            q[i] = (char)(rand() % 4 ? specials[rand() % (sizeof specials - 1)] : rand() % 256);
        feed(q, len);
    }
    /* mutations of valid statements */
    size_t ncorpus = ARRAY_LEN(cases) + ARRAY_LEN(copy_cases) + ARRAY_LEN(set_cases);
    for (int it = 0; it < iters * 4; it++) {
        size_t k = (size_t)rand() % ncorpus;
        const char *src = k < ARRAY_LEN(cases) ? cases[k].in
                          : k < ARRAY_LEN(cases) + ARRAY_LEN(copy_cases)
                              ? copy_cases[k - ARRAY_LEN(cases)].in
                              : set_cases[k - ARRAY_LEN(cases) - ARRAY_LEN(copy_cases)].in;
        size_t len = strlen(src);
        if (len >= sizeof q - 16)
            len = sizeof q - 16;
        memcpy(q, src, len);
        int nmut = 1 + rand() % 3;
        for (int m = 0; m < nmut && len > 0; m++) {
            size_t pos = (size_t)rand() % len;
            switch (rand() % 4) {
            case 0: q[pos] = specials[rand() % (sizeof specials - 1)]; break;
            case 1: q[pos] = (char)(rand() % 256); break;
            case 2: memmove(q + pos, q + pos + 1, len - pos - 1), len--; break;
            default: memmove(q + pos + 1, q + pos, len - pos), len++; q[pos] = specials[rand() % (sizeof specials - 1)];
            }
        }
        if (rand() % 8 == 0)
            len = len ? (size_t)rand() % len : 0;
        feed(q, len);
    }
}

/* Deep nesting, long chains and big inputs stay linear and never recurse. */
static void test_big(void **state)
{
    (void)state;
    size_t n = 200000;
    char *q = malloc(n * 4 + 64);
    assert_non_null(q);
    /* deeply nested parentheses with a cast outside */
    size_t len = (size_t)sprintf(q, "select ");
    for (size_t i = 0; i < n; i++)
        q[len++] = '(';
    q[len++] = '1';
    for (size_t i = 0; i < n; i++)
        q[len++] = ')';
    len += (size_t)sprintf(q + len, "::int");
    struct sql_stmt st;
    char err[256], state_[6];
    assert_int_equal(sql_translate(q, len, &st, state_, err, sizeof err), 0);
    assert_memory_equal(st.sql, "select CAST(((", 14);
    sql_stmt_clear(&st);
    /* a long cast chain */
    len = (size_t)sprintf(q, "select 1");
    for (size_t i = 0; i < n / 8; i++)
        len += (size_t)sprintf(q + len, "::int");
    assert_int_equal(sql_translate(q, len, &st, state_, err, sizeof err), 0);
    sql_stmt_clear(&st);
    /* many statements and a multi-megabyte literal */
    len = 0;
    for (size_t i = 0; i < n / 4; i++)
        len += (size_t)sprintf(q + len, "select %zu;", i);
    struct sql_span *sp;
    size_t cnt;
    assert_int_equal(sql_split(q, len, &sp, &cnt, err, sizeof err), 0);
    assert_int_equal(cnt, n / 4);
    util_free(sp);
    len = (size_t)sprintf(q, "select $$");
    memset(q + len, '\'', n * 3), len += n * 3;
    len += (size_t)sprintf(q + len, "$$");
    assert_int_equal(sql_translate(q, len, &st, state_, err, sizeof err), 0);
    assert_int_equal(strlen(st.sql), 7 + 2 + n * 6);
    sql_stmt_clear(&st);
    free(q);
}

/* Every allocation failure is reported as 53200 (or a clean split error)
 * and leaks nothing. */
static void test_oom(void **state)
{
    (void)state;
    static const char *const inputs[] = {
        "select $1::int, E'x\\ny', $$z$$ from public.t where a ilike 'q' for update",
        "create table t (id serial primary key, s text default 'x'::text) with (fillfactor=1)",
        "drop table if exists a, b, c",
        "truncate a, b",
        "alter table t add primary key (a)",
        "copy t (a) to stdout with (format csv, null 'x')",
        "copy (select 1::int) to stdout",
        "set search_path = a, b",
        "show x",
        "begin isolation level serializable",
        "savepoint x",
        "vacuum analyze a, b",
        "create or replace view v as select 1",
        "create index on t (a)",
    };
    for (size_t i = 0; i < ARRAY_LEN(inputs); i++) {
        for (long k = 1; k < 200; k++) {
            struct sql_stmt st;
            struct sql_span *sp;
            size_t n;
            char err[256], sqlstate[6];
            util_fail_after(k);
            int rc = translate(inputs[i], &st, sqlstate, err, sizeof err);
            util_fail_after(0);
            if (rc)
                assert_string_equal(sqlstate, "53200");
            sql_stmt_clear(&st);
            util_fail_after(k);
            rc = sql_split(inputs[i], strlen(inputs[i]), &sp, &n, err, sizeof err);
            util_fail_after(0);
            if (rc == 0)
                util_free(sp);
            else
                assert_string_equal(err, "out of memory");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_translate_cases),
        cmocka_unit_test(test_max_param),
        cmocka_unit_test(test_set_show),
        cmocka_unit_test(test_copy),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_split),
        cmocka_unit_test(test_split_vs_sqlite),
        cmocka_unit_test(test_pgbench_sqlite),
        cmocka_unit_test(test_sqlite_semantics),
        cmocka_unit_test(test_random),
        cmocka_unit_test(test_big),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
