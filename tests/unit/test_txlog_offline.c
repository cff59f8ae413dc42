/* Tests of orbitctl txlog dump and check (admin module) and of the offline
 * log reader (clu_log_read) on logs written by a real single-node cluster:
 * txlog records of odd lengths go through clu_submit, a snapshot compacts
 * the log, the node closes (or "crashes": its dir is copied while it runs,
 * open segments and all). dump prints the records as JSON lines, check
 * finds nothing wrong, and neither changes a byte of the data dir. Then the
 * problems check must find: flipped bytes in a closed segment (named in the
 * report, never a crash), entries that are not valid records, LSNs out of
 * order, a damaged or missing snapshot file, a corrupt database, a corrupt
 * metadata file; a database ahead of its log is a warning; a running node
 * (orbitd's lock) is refused. tests/integration/test_orbitctl_txlog.py runs
 * the orbitctl binary on data dirs written by orbitd. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>

#include "admin.h"
#include "clu_test_node.h"
#include "txlog.h"

#define NREC 300       /* records in the fixture: LSN 1..NREC */
#define SNAP_AT 200    /* the snapshot is taken after this many records */

/* ---- records -------------------------------------------------------------------- */

/* LSN 1 creates the table; LSN n > 1 inserts row n with a text of n % 23
 * bytes, so encoded lengths vary and are mostly not multiples of 8. */
static void encode_record(uint64_t lsn, struct buf *out)
{
    char text[32];
    size_t n = lsn % 23;
    memset(text, 'a' + (int)(lsn % 26), n);
    struct txl_value v[2] = {{.type = TXL_INTEGER, .i = (int64_t)lsn},
                             {.type = TXL_TEXT, .n = (uint32_t)n, .p = (const unsigned char *)text}};
    struct txl_change ch = {.op = TXL_INSERT, .table = "t", .new_rowid = (int64_t)lsn, .ncol = 2, .newv = v};
    if (lsn == 1)
        ch = (struct txl_change){.op = TXL_DDL, .sql = "CREATE TABLE t(id, s)", .sql_len = 21};
    struct txl_record r = {.lsn = lsn,
                           .commit_us = 1700000000000000ULL + lsn,
                           .origin = 0xabcdef,
                           .changes = &ch,
                           .nchanges = 1};
    buf_reset(out);
    assert_int_equal(txl_encode(&r, out), 0);
}

/* The JSON line dump prints for LSN n. */
static void expected_json(uint64_t lsn, struct buf *out)
{
    struct buf enc;
    struct txl_record r;
    char err[256];
    buf_init(&enc);
    encode_record(lsn, &enc);
    assert_int_equal(txl_decode(enc.data, enc.len, &r, err, sizeof err), 0);
    buf_reset(out);
    assert_int_equal(txl_record_to_json(&r, out), 0);
    txl_record_free(&r);
    buf_free(&enc);
}

/* ---- writing through a node ------------------------------------------------------- */

struct wr {
    int committed, failed;
    uint64_t index[64]; /* of the entries submitted with slot data */
    int snap_done, snap_status;
};

static struct wr W;

static void wr_commit(void *data, uint64_t index, int status)
{
    uintptr_t slot = (uintptr_t)data;
    if (status)
        W.failed++;
    if (slot >= 1 && slot <= 64)
        W.index[slot - 1] = index;
    W.committed++;
}

static void wr_snap(void *data, int status, uint64_t index)
{
    (void)data;
    (void)index;
    W.snap_status = status;
    W.snap_done = 1;
}

/* Submit raw bytes; slot (1..64) remembers the entry's index, 0 does not. */
static void submit_bytes(struct run *r, const void *p, size_t len, int slot)
{
    int want = W.committed + 1;
    assert_int_equal(clu_submit(r->node, p, len, wr_commit, (void *)(uintptr_t)(slot ? slot : 100)), 0);
    while (W.committed < want)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(W.failed, 0);
}

static void submit_records(struct run *r, uint64_t from, uint64_t to)
{
    struct buf b;
    buf_init(&b);
    int want = W.committed + (int)(to - from + 1);
    for (uint64_t lsn = from; lsn <= to; lsn++) {
        encode_record(lsn, &b);
        assert_int_equal(clu_submit(r->node, b.data, b.len, wr_commit, (void *)(uintptr_t)100), 0);
    }
    while (W.committed < want)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(W.failed, 0);
    buf_free(&b);
}

static void take_snapshot(struct run *r)
{
    W.snap_done = 0;
    assert_int_equal(clu_snapshot(r->node, wr_snap, NULL), 0);
    while (!W.snap_done)
        uv_run(&r->loop, UV_RUN_ONCE);
    assert_int_equal(W.snap_status, 0);
}

static void node_open(struct run *r, const char *dir, size_t segment_size)
{
    memset(r, 0, sizeof *r);
    memset(&W, 0, sizeof W);
    clu_config_init(&r->cfg);
    r->cfg.segment_size = segment_size;
    r->cfg.snapshot_threshold = 1000000; /* only explicit snapshots */
    r->cfg.snapshot_trailing = 50;
    run_open(r, dir, free_port());
}

static void node_close(struct run *r)
{
    run_close(r);
    tfsm_free(&r->fsm);
}

/* ---- files ---------------------------------------------------------------------------- */

static void set_applied(const char *dir, uint64_t lsn)
{
    char path[512], err[256];
    sqlite3 *db;
    snprintf(path, sizeof path, "%s/orbit.db", dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(txl_set_applied_lsn(db, lsn, err, sizeof err), 0);
    assert_int_equal(sqlite3_exec(db, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

/* What a crash leaves: a child process sets the applied LSN in WAL mode
 * and exits without closing (orbit.db-wal and -shm stay). */
static void crash_with_wal(const char *dir, uint64_t lsn)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char path[512], err[256];
        sqlite3 *db;
        snprintf(path, sizeof path, "%s/orbit.db", dir);
        int ok = sqlite3_open(path, &db) == SQLITE_OK &&
                 sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0", NULL, NULL, NULL) ==
                     SQLITE_OK &&
                 txl_set_applied_lsn(db, lsn, err, sizeof err) == 0;
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void read_file(const char *path, struct buf *out)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        buf_append(out, chunk, n);
    fclose(f);
    assert_true(buf_ok(out));
}

static void write_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Every name, size and byte below dir, in name order: two equal digests
 * mean nothing was created, removed or changed. */
static void dir_digest(const char *dir, const char *rel, struct buf *out)
{
    struct dirent **names;
    char path[1024], sub[512];
    int n = scandir(dir, &names, NULL, alphasort);
    assert_true(n >= 0);
    for (int i = 0; i < n; i++) {
        const char *name = names[i]->d_name;
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        snprintf(sub, sizeof sub, "%s/%s", rel, name);
        if (strcmp(name, ".") && strcmp(name, "..") && stat(path, &st) == 0) {
            buf_printf(out, "%s %lld\n", sub, (long long)st.st_size);
            if (S_ISDIR(st.st_mode))
                dir_digest(path, sub, out);
            else
                read_file(path, out);
        }
        free(names[i]);
    }
    free(names);
}

static void assert_digest(const char *dir, const struct buf *before)
{
    struct buf now;
    buf_init(&now);
    dir_digest(dir, "", &now);
    assert_int_equal(now.len, before->len);
    assert_memory_equal(now.data, before->data, now.len);
    buf_free(&now);
}

static void copy_tree(const char *src, const char *dst)
{
    DIR *d = opendir(src);
    struct dirent *e;
    char s[512], t[512];
    struct stat st;
    assert_non_null(d);
    assert_true(mkdir(dst, 0700) == 0 || errno == EEXIST);
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        snprintf(s, sizeof s, "%s/%s", src, e->d_name);
        snprintf(t, sizeof t, "%s/%s", dst, e->d_name);
        /* the node may be running: a file can vanish between readdir and
         * stat/open (journals, renamed temp files): skip it, as a backup
         * tool copying a live dir would */
        if (stat(s, &st) != 0) {
            assert_int_equal(errno, ENOENT);
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            copy_tree(s, t);
        } else {
            FILE *f = fopen(s, "rb");
            if (!f) {
                assert_int_equal(errno, ENOENT);
                continue;
            }
            fclose(f);
            struct buf b;
            buf_init(&b);
            read_file(s, &b);
            write_file(t, b.data, b.len);
            buf_free(&b);
        }
    }
    closedir(d);
}

/* The largest closed segment ("FIRST-LAST") in dir/raft: name and path. */
static void largest_segment(const char *dir, char *name, size_t cap, char *path, size_t pcap)
{
    char raft[512];
    snprintf(raft, sizeof raft, "%s/raft", dir);
    DIR *d = opendir(raft);
    struct dirent *e;
    long long best = -1;
    unsigned long long a, b;
    assert_non_null(d);
    while ((e = readdir(d))) {
        struct stat st;
        char p[1024];
        snprintf(p, sizeof p, "%s/%s", raft, e->d_name);
        if (sscanf(e->d_name, "%llu-%llu", &a, &b) == 2 && stat(p, &st) == 0 && st.st_size > best) {
            best = st.st_size;
            util_strlcpy(name, e->d_name, cap);
            util_strlcpy(path, p, pcap);
        }
    }
    closedir(d);
    assert_true(best > 0);
}

static void flip_byte(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    unsigned char c;
    assert_true(fd >= 0);
    assert_int_equal(pread(fd, &c, 1, off), 1);
    c ^= 0xff;
    assert_int_equal(pwrite(fd, &c, 1, off), 1);
    close(fd);
}

/* ---- running the tools into memory -------------------------------------------------- */

struct out {
    char *text;
    size_t len;
};

static int run_check(const char *dir, struct adm_check *c, struct out *o, uint64_t every, struct out *prog)
{
    FILE *f = open_memstream(&o->text, &o->len);
    FILE *p = prog ? open_memstream(&prog->text, &prog->len) : NULL;
    memset(c, 0, sizeof *c);
    c->out = f;
    c->progress = p;
    c->progress_every = every;
    int rc = adm_txlog_check(dir, c);
    fclose(f);
    if (p)
        fclose(p);
    if (getenv("TXOFF_SHOW"))
        printf("---- check %s -> %d\n%s", dir, rc, o->text);
    return rc;
}

static int run_dump(const char *dir, uint64_t from, struct out *o, char *err, size_t errcap)
{
    FILE *f = open_memstream(&o->text, &o->len);
    int rc = adm_txlog_dump(dir, from, f, err, errcap);
    fclose(f);
    return rc;
}

static void out_free(struct out *o)
{
    free(o->text);
    o->text = NULL;
    o->len = 0;
}

/* Dump from `from` must be exactly the JSON lines of LSN first..last. */
static void assert_dump(const char *dir, uint64_t from, uint64_t first, uint64_t last)
{
    struct out o = {0};
    struct buf want;
    char err[512];
    buf_init(&want);
    assert_int_equal(run_dump(dir, from, &o, err, sizeof err), 0);
    for (uint64_t lsn = first; lsn <= last; lsn++) {
        struct buf line;
        buf_init(&line);
        expected_json(lsn, &line);
        buf_append(&want, line.data, line.len);
        buf_free(&line);
    }
    assert_int_equal(o.len, want.len);
    assert_memory_equal(o.text, want.data, o.len);
    buf_free(&want);
    out_free(&o);
}

/* ---- the fixture ---------------------------------------------------------------------- */

/* A data dir whose log holds records LSN 1..NREC (odd lengths), with a
 * snapshot after SNAP_AT records that compacted the log, and orbit.db at
 * applied LSN NREC; crash_copy: the dir copied while the node was still
 * running (open segments, as after kill -9). */
static void make_fixture(const char *dir, const char *crash_copy)
{
    struct run *r = calloc(1, sizeof *r);
    node_open(r, dir, 8192);
    submit_records(r, 1, SNAP_AT);
    take_snapshot(r);
    submit_records(r, SNAP_AT + 1, NREC);
    /* let libraft finish its background segment work (closing a full open
     * segment runs on the thread pool): a copy taken in the middle of that
     * rename may hold the segment twice or not at all, which is not the
     * crash this fixture stands for */
    uint64_t until = util_now_ns() + 300000000ULL;
    while (util_now_ns() < until) {
        uv_run(&r->loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    copy_tree(dir, crash_copy);
    node_close(r);
    free(r);
    set_applied(dir, NREC);
    set_applied(crash_copy, NREC);
}

struct tmp {
    char base[64];
    char data[128];
    char tmpdir[128]; /* TMPDIR for the shadow copies: must end up empty */
};

static void tmp_make(struct tmp *t)
{
    snprintf(t->base, sizeof t->base, "/tmp/orbit-txoff-XXXXXX");
    assert_non_null(mkdtemp(t->base));
    snprintf(t->data, sizeof t->data, "%s/data", t->base);
    snprintf(t->tmpdir, sizeof t->tmpdir, "%s/tmp", t->base);
    assert_int_equal(mkdir(t->tmpdir, 0700), 0);
    setenv("TMPDIR", t->tmpdir, 1);
}

static void tmp_done(struct tmp *t)
{
    assert_int_equal(count_files(t->tmpdir, "orbit-"), 0); /* no shadow dir left behind */
    unsetenv("TMPDIR");
    remove_tree(t->base);
}

/* ---- tests ------------------------------------------------------------------------------ */

static void test_dump_and_check(void **state)
{
    (void)state;
    struct tmp t;
    char crash[160], err[512];
    struct adm_check c;
    struct out o = {0}, prog = {0};
    struct buf digest, crash_digest;
    tmp_make(&t);
    snprintf(crash, sizeof crash, "%s/crash", t.base);
    make_fixture(t.data, crash);
    buf_init(&digest);
    buf_init(&crash_digest);
    dir_digest(t.data, "", &digest);
    dir_digest(crash, "", &crash_digest);

    /* the offline reader: the log starts before the snapshot (trailing
     * entries), every command decodes, indexes grow */
    struct clu_log_info info;
    assert_int_equal(clu_log_read(t.data, &info, NULL, NULL, err, sizeof err), 0);
    assert_true(info.has_log);
    assert_true(info.has_snapshot);
    assert_true(info.snapshot_desc_ok);
    assert_int_equal(info.snapshot_desc.index, info.snapshot_index);
    assert_int_equal(info.snapshot_desc.lsn, SNAP_AT); /* the test FSM counts applied entries */
    assert_true(info.first_index > 1);                 /* compacted */
    assert_true(info.first_index <= info.snapshot_index);
    assert_int_equal(info.last_index, info.first_index + info.entries - 1);
    /* this node is the one voter of its configuration: its log must never
     * be wiped (a witness made a data node again wipes its log only as a
     * standby, checked again at the moment of the wipe) */
    assert_true(info.self_id != 0);
    assert_int_equal(info.self_role, CLU_MEMBER_VOTER);
    assert_true(info.config_index >= 1);
    assert_int_equal(clu_log_wipe_check(t.data, 0, err, sizeof err), CLU_EBUSY);
    assert_non_null(strstr(err, "makes this node a voter"));
    assert_int_equal(clu_log_wipe_check(t.data, info.config_index, err, sizeof err), CLU_EBUSY);

    /* check: all good, a summary, progress every 100 entries */
    assert_int_equal(run_check(t.data, &c, &o, 100, &prog), ADM_OK);
    assert_int_equal(c.problems, 0);
    assert_int_equal(c.warnings, 0);
    assert_true(c.log_ok && c.has_log);
    assert_int_equal(c.bad_records, 0);
    assert_int_equal(c.lsn_errors, 0);
    assert_int_equal(c.last_lsn, NREC);
    assert_int_equal(c.records, NREC - c.first_lsn + 1);
    assert_int_equal(c.commands, c.records);
    assert_int_equal(c.entries, c.commands + c.barriers + c.changes);
    assert_true(c.barriers >= 1); /* the leader's readiness barrier */
    assert_int_equal(c.first_index, info.first_index);
    assert_int_equal(c.last_index, info.last_index);
    assert_true(c.has_snapshot && c.snapshot_ok);
    assert_int_equal(c.snapshot_lsn, SNAP_AT);
    assert_true(c.db_found && c.db_ok);
    assert_int_equal(c.db_applied_lsn, NREC);
    assert_false(c.db_ahead);
    assert_non_null(strstr(o.text, "result:    ok\n"));
    assert_non_null(strstr(o.text, "(the end of the log)"));
    assert_non_null(strstr(o.text, "SHA-256 ok"));
    assert_null(strstr(o.text, "problem:"));
    assert_non_null(strstr(prog.text, "txlog check: 100 of"));
    assert_int_equal(count_files(t.tmpdir, "orbit-"), 0);
    out_free(&o);
    out_free(&prog);

    /* dump: every record in the log, in order; --from */
    assert_dump(t.data, 0, c.first_lsn, NREC);
    /* libraft may have compacted past 250 on its own (timing: a slow run
     * reaches its snapshot threshold again) */
    assert_dump(t.data, 250, c.first_lsn > 250 ? c.first_lsn : 250, NREC);
    assert_dump(t.data, NREC, NREC, NREC);
    assert_dump(t.data, NREC + 1, 1, 0); /* nothing */
    assert_digest(t.data, &digest);

    /* a database ahead of its log is a warning, not a failure */
    set_applied(t.data, NREC + 10);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    assert_int_equal(c.warnings, 1);
    assert_true(c.db_ahead);
    assert_non_null(strstr(o.text, "warning: database ahead of its log"));
    assert_non_null(strstr(o.text, "orbitd will repair it at start"));
    assert_non_null(strstr(o.text, "result:    ok, 1 warning"));
    out_free(&o);
    /* behind: orbitd replays the rest */
    set_applied(t.data, NREC - 5);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    assert_non_null(strstr(o.text, "replays the 5 records after it"));
    out_free(&o);
    set_applied(t.data, NREC);
    buf_reset(&digest);
    dir_digest(t.data, "", &digest);

    /* a running orbitd (its lock) is refused; the lock file is not touched */
    char pidfile[256];
    snprintf(pidfile, sizeof pidfile, "%s/orbitd.pid", t.data);
    write_file(pidfile, "12345\n", 6);
    int fd = open(pidfile, O_RDWR);
    assert_int_equal(flock(fd, LOCK_EX | LOCK_NB), 0);
    long pid = 0;
    assert_int_equal(adm_node_running(t.data, &pid), 1);
    assert_int_equal(pid, 12345);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_USAGE);
    assert_non_null(strstr(c.err, "orbitd (pid 12345) is running"));
    out_free(&o);
    close(fd); /* orbitd stopped (a stale pid file stays) */
    assert_int_equal(adm_node_running(t.data, &pid), 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    out_free(&o);
    unlink(pidfile);
    assert_digest(t.data, &digest); /* nothing in the data dir changed */

    /* a database with a WAL (its node did not stop cleanly): the applied
     * LSN in the WAL is seen, and neither -wal nor -shm is touched */
    crash_with_wal(t.data, NREC - 3);
    buf_reset(&digest);
    dir_digest(t.data, "", &digest);
    assert_int_equal(count_files(t.data, "orbit.db-wal"), 1);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    assert_int_equal(c.db_applied_lsn, NREC - 3);
    assert_true(c.db_ok);
    assert_non_null(strstr(o.text, "replays the 3 records after it"));
    out_free(&o);
    assert_digest(t.data, &digest);
    set_applied(t.data, NREC);

    /* the crashed node's copy has open segments: libraft closes them on
     * load, in the shadow copy only */
    char crash_raft[192];
    snprintf(crash_raft, sizeof crash_raft, "%s/raft", crash);
    assert_true(count_files(crash_raft, "open-") > 0);
    assert_int_equal(run_check(crash, &c, &o, 0, NULL), ADM_OK);
    assert_int_equal(c.last_lsn, NREC);
    out_free(&o);
    assert_dump(crash, 0, c.first_lsn, NREC);
    assert_digest(crash, &crash_digest);

    buf_free(&digest);
    buf_free(&crash_digest);
    tmp_done(&t);
}

/* Flip bytes all over a closed segment: check names the file and fails,
 * dump fails, nothing crashes, the file stays as it was (no auto-recovery). */
static void test_corrupt_segment(void **state)
{
    (void)state;
    struct tmp t;
    char name[64], path[512], err[512];
    struct adm_check c;
    struct out o = {0};
    tmp_make(&t);
    struct run *r = calloc(1, sizeof *r);
    node_open(r, t.data, 8192);
    submit_records(r, 1, 60);
    node_close(r);
    free(r);
    set_applied(t.data, 60);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    out_free(&o);
    largest_segment(t.data, name, sizeof name, path, sizeof path);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    long size = (long)st.st_size;
    assert_true(size > 200);
    int tried = 0;
    for (long off = 0; off < size; off += off < 48 ? 3 : 97) {
        flip_byte(path, off);
        struct buf digest;
        buf_init(&digest);
        dir_digest(t.data, "", &digest);
        int rc = run_check(t.data, &c, &o, 0, NULL);
        if (rc != ADM_PROBLEM || !strstr(o.text, name))
            fail_msg("byte %ld of %s flipped: check returned %d:\n%s", off, name, rc, o.text);
        assert_false(c.log_ok);
        assert_non_null(strstr(o.text, "problem: raft log "));
        out_free(&o);
        if (tried % 3 == 0) {
            assert_int_equal(run_dump(t.data, 0, &o, err, sizeof err), -1);
            assert_non_null(strstr(err, name));
            out_free(&o);
        }
        assert_digest(t.data, &digest);
        buf_free(&digest);
        flip_byte(path, off);
        tried++;
    }
    assert_true(tried > 20);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    out_free(&o);

    /* a corrupt metadata file */
    char meta[256];
    struct buf saved;
    buf_init(&saved);
    snprintf(meta, sizeof meta, "%s/raft/metadata1", t.data);
    read_file(meta, &saved);
    write_file(meta, "garbage garbage garbage garbage!", 32);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_non_null(strstr(o.text, "metadata1"));
    out_free(&o);
    write_file(meta, saved.data, saved.len);
    buf_free(&saved);
    tmp_done(&t);
}

static void submit_record_bytes(struct run *r, struct buf *b, int slot)
{
    submit_bytes(r, b->data, b->len, slot);
}

/* Entries that are not valid records, LSNs out of order. */
static void test_bad_records(void **state)
{
    (void)state;
    struct tmp t;
    char err[512], want[256];
    struct adm_check c;
    struct out o = {0};
    struct buf b;
    tmp_make(&t);
    buf_init(&b);
    struct run *r = calloc(1, sizeof *r);
    node_open(r, t.data, 0);
    submit_records(r, 1, 3);
    submit_bytes(r, "hello, not a record", 19, 1);
    encode_record(4, &b);
    b.data[b.len / 2] ^= 0x55; /* checksum mismatch */
    submit_record_bytes(r, &b, 2);
    encode_record(5, &b);
    b.data[4] = 9; /* version 9, with a valid checksum */
    uint32_t crc = txl_crc32c(0, b.data, b.len - 4);
    buf_set_u32(&b, b.len - 4, crc);
    submit_record_bytes(r, &b, 3);
    submit_records(r, 10, 10);
    encode_record(6, &b);
    submit_record_bytes(r, &b, 4); /* LSN 6 after LSN 10 */
    node_close(r);
    free(r);
    set_applied(t.data, 10);

    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_int_equal(c.bad_records, 3);
    assert_int_equal(c.records, 5);
    assert_int_equal(c.lsn_errors, 1);
    assert_int_equal(c.problems, 4);
    snprintf(want, sizeof want, "problem: entry %llu (term 1): txlog record: bad magic",
             (unsigned long long)W.index[0]);
    assert_non_null(strstr(o.text, want));
    snprintf(want, sizeof want, "problem: entry %llu (term 1): txlog record: checksum mismatch",
             (unsigned long long)W.index[1]);
    assert_non_null(strstr(o.text, want));
    snprintf(want, sizeof want, "problem: entry %llu (term 1): txlog record: unsupported",
             (unsigned long long)W.index[2]);
    if (!strstr(o.text, want))
        fail_msg("no \"%s\" in:\n%s", want, o.text);
    snprintf(want, sizeof want, "problem: entry %llu: LSN 6 is not above LSN 10 of entry",
             (unsigned long long)W.index[3]);
    assert_non_null(strstr(o.text, want));
    assert_non_null(strstr(o.text, "result:    4 problems"));
    out_free(&o);

    /* dump stops at the first entry that is not a record */
    assert_int_equal(run_dump(t.data, 0, &o, err, sizeof err), -1);
    snprintf(want, sizeof want, "entry %llu (term 1): txlog record: bad magic", (unsigned long long)W.index[0]);
    assert_non_null(strstr(err, want));
    out_free(&o);
    buf_free(&b);
    tmp_done(&t);
}

/* The snapshot file damaged, cut short or missing; a corrupt database. */
static void test_bad_snapshot_and_db(void **state)
{
    (void)state;
    struct tmp t;
    struct adm_check c;
    struct out o = {0};
    struct clu_log_info info;
    char err[512], snap[512], moved[520];
    struct buf saved;
    tmp_make(&t);
    buf_init(&saved);
    struct run *r = calloc(1, sizeof *r);
    node_open(r, t.data, 0);
    submit_records(r, 1, 40);
    take_snapshot(r);
    submit_records(r, 41, 45);
    node_close(r);
    free(r);
    set_applied(t.data, 45);
    assert_int_equal(clu_log_read(t.data, &info, NULL, NULL, err, sizeof err), 0);
    assert_true(info.snapshot_desc_ok);
    snprintf(snap, sizeof snap, "%s/snapshots/%s", t.data, info.snapshot_desc.name);
    read_file(snap, &saved);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    out_free(&o);

    flip_byte(snap, (long)saved.len / 2);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_false(c.snapshot_ok);
    assert_non_null(strstr(o.text, "SHA-256 does not match the descriptor"));
    assert_non_null(strstr(o.text, info.snapshot_desc.name));
    out_free(&o);
    write_file(snap, saved.data, saved.len - 1);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_non_null(strstr(o.text, "descriptor says"));
    out_free(&o);
    snprintf(moved, sizeof moved, "%s.away", snap);
    write_file(snap, saved.data, saved.len);
    assert_int_equal(rename(snap, moved), 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_non_null(strstr(o.text, "is missing"));
    out_free(&o);
    assert_int_equal(rename(moved, snap), 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    out_free(&o);

    /* a database whose table pages are overwritten */
    char db_path[256];
    sqlite3 *db;
    snprintf(db_path, sizeof db_path, "%s/orbit.db", t.data);
    assert_int_equal(sqlite3_open(db_path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA page_size=4096; CREATE TABLE big(a INTEGER PRIMARY KEY, b);"
                                      "CREATE INDEX big_b ON big(b);"
                                      "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i<3000)"
                                      " INSERT INTO big SELECT i, printf('%08d-%s', i, hex(i)) FROM n;",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    char result[512];
    assert_int_equal(adm_db_integrity(db_path, result, sizeof result), 0);
    assert_string_equal(result, "ok");
    struct buf page;
    buf_init(&page);
    for (int i = 0; i < 4096; i++)
        buf_putc(&page, (char)0xa5);
    int fd = open(db_path, O_RDWR);
    assert_int_equal(pwrite(fd, page.data, page.len, 6 * 4096), 4096);
    close(fd);
    buf_free(&page);
    assert_int_not_equal(adm_db_integrity(db_path, result, sizeof result), 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_false(c.db_ok);
    assert_non_null(strstr(o.text, "problem: database"));
    out_free(&o);
    unlink(db_path);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_non_null(strstr(o.text, "orbit.db is missing"));
    out_free(&o);
    buf_free(&saved);
    tmp_done(&t);
}

/* Not a data dir, no dir, a data dir without Raft state. */
static void test_not_a_data_dir(void **state)
{
    (void)state;
    struct tmp t;
    struct adm_check c;
    struct out o = {0};
    char err[512], path[256];
    tmp_make(&t);
    assert_int_equal(run_check("/nonexistent/orbit", &c, &o, 0, NULL), ADM_USAGE);
    assert_non_null(strstr(c.err, "No such file"));
    out_free(&o);
    assert_int_equal(run_dump("/nonexistent/orbit", 0, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
    out_free(&o);
    assert_int_equal(mkdir(t.data, 0700), 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_USAGE);
    assert_non_null(strstr(c.err, "not an Orbit data directory"));
    out_free(&o);
    assert_int_equal(run_dump(t.data, 0, &o, err, sizeof err), -1);
    assert_non_null(strstr(err, "not an Orbit data directory"));
    out_free(&o);
    snprintf(path, sizeof path, "%s/orbit.db", t.data);
    write_file(path, "", 0);
    assert_int_equal(run_check(path, &c, &o, 0, NULL), ADM_USAGE);
    assert_non_null(strstr(c.err, "not a directory"));
    out_free(&o);
    /* today's orbitd data dir: a database, no Raft log */
    set_applied(t.data, 0);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_OK);
    assert_false(c.has_log);
    assert_non_null(strstr(o.text, "log:       none"));
    out_free(&o);
    assert_int_equal(run_dump(t.data, 0, &o, err, sizeof err), 0);
    assert_int_equal(o.len, 0);
    out_free(&o);
    /* a raft/ dir with segments but no metadata */
    snprintf(path, sizeof path, "%s/raft", t.data);
    assert_int_equal(mkdir(path, 0700), 0);
    snprintf(path, sizeof path, "%s/raft/0000000000000001-0000000000000001", t.data);
    write_file(path, "12345678", 8);
    assert_int_equal(run_check(t.data, &c, &o, 0, NULL), ADM_PROBLEM);
    assert_non_null(strstr(o.text, "no metadata1/metadata2"));
    out_free(&o);
    tmp_done(&t);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(getenv("CLU_LOG") ? LOG_DEBUG : LOG_WARN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dump_and_check),   cmocka_unit_test(test_corrupt_segment),
        cmocka_unit_test(test_bad_records),      cmocka_unit_test(test_bad_snapshot_and_db),
        cmocka_unit_test(test_not_a_data_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
