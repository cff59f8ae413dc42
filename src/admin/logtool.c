/* admin/logtool.c: orbitctl txlog dump and txlog check. The cluster module
 * reads the Raft log (clu_log_read: libraft's loader on a shadow copy, so
 * the data dir is never written) and checks snapshot files; each command
 * entry is one txlog record (txl_decode). */
#include "admin.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "admin_int.h"
#include "cluster.h"
#include "txlog.h"

#define SHOWN_MAX 20 /* problems about single entries printed; the rest are counted */

typedef unsigned long long ull;

static const char *plural(uint64_t n, const char *one, const char *many)
{
    return n == 1 ? one : many;
}

/* ---- cut -------------------------------------------------------------------------- */

int adm_txlog_cut(const char *dir, const char *segment, uint64_t offset, char *saved, size_t savedcap, char *err,
                  size_t errcap)
{
    unsigned long long counter;
    int used = 0;
    if (!segment || sscanf(segment, "open-%llu%n", &counter, &used) != 1 || segment[used]) {
        snprintf(err, errcap, "--segment must name an open segment (open-N), not \"%s\"", segment ? segment : "");
        return -1;
    }
    if (adm_data_dir(dir, err, errcap))
        return -1;
    long pid = 0;
    if (adm_node_running(dir, &pid)) {
        snprintf(err, errcap, "orbitd (pid %ld) is running on %s: stop it first", pid, dir);
        return -1;
    }
    char path[ADM_PATH_MAX], raft[ADM_PATH_MAX];
    struct stat st;
    if (adm_path(raft, sizeof raft, dir, "raft") || adm_path(path, sizeof path, raft, segment) ||
        stat(path, &st) != 0) {
        snprintf(err, errcap, "%s/raft/%s: %s", dir, segment, strerror(errno));
        return -1;
    }
    /* after the segment header: 8 bytes (format 1), 16 (format 2) */
    unsigned char head[8] = {0};
    FILE *hf = fopen(path, "rb");
    size_t got = hf ? fread(head, 1, sizeof head, hf) : 0;
    if (hf)
        fclose(hf);
    uint64_t header = got == 8 && head[0] == 2 ? 16 : 8;
    if (offset % 8 || offset < header || offset > (uint64_t)st.st_size) {
        snprintf(err, errcap, "offset %llu is not a batch boundary inside %s (%lld bytes): use the offset the "
                 "node's error names", (ull)offset, segment, (long long)st.st_size);
        return -1;
    }
    if (snprintf(saved, savedcap, "%s.damaged-%lld", path, (long long)time(NULL)) >= (int)savedcap ||
        util_copy_file(path, saved)) {
        snprintf(err, errcap, "cannot keep a copy of %s: %s", path, strerror(errno));
        return -1;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    static const char zeros[65536];
    uint64_t at = offset;
    while (fd >= 0 && at < (uint64_t)st.st_size) {
        size_t n = (uint64_t)st.st_size - at < sizeof zeros ? (size_t)((uint64_t)st.st_size - at) : sizeof zeros;
        ssize_t w = pwrite(fd, zeros, n, (off_t)at);
        if (w <= 0)
            break;
        at += (uint64_t)w;
    }
    int ok = fd >= 0 && at >= (uint64_t)st.st_size && fsync(fd) == 0;
    int e = errno;
    if (fd >= 0)
        close(fd);
    if (!ok) {
        snprintf(err, errcap, "cannot zero %s from byte %llu: %s (the copy is %s)", path, (ull)offset, strerror(e),
                 saved);
        return -1;
    }
    return 0;
}

/* ---- dump ------------------------------------------------------------------------ */

struct dump {
    uint64_t from;
    FILE *out;
    struct buf json;
    char *err;
    size_t errcap;
};

static int dump_entry(void *ud, const struct clu_log_info *info, const struct clu_log_entry *e)
{
    struct dump *d = ud;
    struct txl_record rec;
    char why[512];
    (void)info;
    if (e->type != CLU_ENTRY_COMMAND)
        return 0;
    if (e->malformed) {
        snprintf(d->err, d->errcap, "entry %llu (term %llu): malformed Raft entry of %zu bytes",
                 (ull)e->index, (ull)e->term, e->len);
        return -1;
    }
    if (txl_decode(e->buf, e->len, &rec, why, sizeof why)) {
        snprintf(d->err, d->errcap, "entry %llu (term %llu): %s", (ull)e->index, (ull)e->term, why);
        return -1;
    }
    int rc = 0;
    if (rec.lsn >= d->from) {
        buf_reset(&d->json);
        if (txl_record_to_json(&rec, &d->json)) {
            snprintf(d->err, d->errcap, "entry %llu: out of memory", (ull)e->index);
            rc = -1;
        } else if (fwrite(d->json.data, 1, d->json.len, d->out) != d->json.len) {
            snprintf(d->err, d->errcap, "write error");
            rc = -1;
        }
    }
    txl_record_free(&rec);
    return rc;
}

int adm_txlog_dump(const char *dir, uint64_t from, FILE *out, char *err, size_t errcap)
{
    struct clu_log_info info;
    char lerr[512];
    if (adm_data_dir(dir, err, errcap))
        return -1;
    struct dump d = {.from = from, .out = out, .err = err, .errcap = errcap};
    buf_init(&d.json);
    int rc = clu_log_read(dir, &info, dump_entry, &d, lerr, sizeof lerr);
    buf_free(&d.json);
    if (rc == -1)
        return -1; /* err set by dump_entry */
    if (rc) {
        snprintf(err, errcap, "%s", lerr);
        return -1;
    }
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, errcap, "write error");
        return -1;
    }
    return 0;
}

/* ---- check ------------------------------------------------------------------------- */

struct check {
    struct adm_check *c;
    FILE *out;
    uint64_t every;
    int have_prev;
    uint64_t prev_lsn, prev_index;
    uint64_t max_lsn;
    int have_applied;
    uint64_t after_applied; /* records with an LSN above the database's */
    unsigned entry_problems;
};

static void say(struct check *k, const char *label, const char *fmt, va_list ap)
{
    fprintf(k->out, "%s: ", label);
    vfprintf(k->out, fmt, ap);
    fputc('\n', k->out);
}

static void problem(struct check *k, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void problem(struct check *k, const char *fmt, ...)
{
    va_list ap;
    k->c->problems++;
    va_start(ap, fmt);
    say(k, "problem", fmt, ap);
    va_end(ap);
}

/* A problem about one entry: the first SHOWN_MAX are printed. */
static void entry_problem(struct check *k, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void entry_problem(struct check *k, const char *fmt, ...)
{
    va_list ap;
    k->c->problems++;
    if (k->entry_problems++ >= SHOWN_MAX)
        return;
    va_start(ap, fmt);
    say(k, "problem", fmt, ap);
    va_end(ap);
}

static void warning(struct check *k, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void warning(struct check *k, const char *fmt, ...)
{
    va_list ap;
    k->c->warnings++;
    va_start(ap, fmt);
    say(k, "warning", fmt, ap);
    va_end(ap);
}

/* LSN order within the log and against the snapshot. */
static void check_lsn(struct check *k, const struct clu_log_info *info, const struct clu_log_entry *e,
                      uint64_t lsn)
{
    struct adm_check *c = k->c;
    const struct clu_snapshot_desc *s = &info->snapshot_desc;
    if (lsn == 0) {
        c->lsn_errors++;
        entry_problem(k, "entry %llu: the record has LSN 0", (ull)e->index);
    } else if (k->have_prev && lsn <= k->prev_lsn) {
        c->lsn_errors++;
        entry_problem(k, "entry %llu: LSN %llu is not above LSN %llu of entry %llu", (ull)e->index,
                      (ull)lsn, (ull)k->prev_lsn, (ull)k->prev_index);
    }
    if (info->snapshot_desc_ok && e->index > s->index && lsn <= s->lsn) {
        c->lsn_errors++;
        entry_problem(k, "entry %llu: LSN %llu comes after the snapshot at index %llu but is not "
                      "above its LSN %llu",
                      (ull)e->index, (ull)lsn, (ull)s->index, (ull)s->lsn);
    } else if (info->snapshot_desc_ok && e->index <= s->index && lsn > s->lsn) {
        c->lsn_errors++;
        entry_problem(k, "entry %llu: LSN %llu is inside the snapshot at index %llu but above its "
                      "LSN %llu",
                      (ull)e->index, (ull)lsn, (ull)s->index, (ull)s->lsn);
    }
}

static int check_entry(void *ud, const struct clu_log_info *info, const struct clu_log_entry *e)
{
    struct check *k = ud;
    struct adm_check *c = k->c;
    struct txl_record rec;
    char why[512];
    if (++c->entries % k->every == 0 && c->progress)
        fprintf(c->progress, "txlog check: %llu of %llu entries\n", (ull)c->entries,
                (ull)info->entries);
    if (e->type == CLU_ENTRY_BARRIER)
        c->barriers++;
    else if (e->type == CLU_ENTRY_CHANGE)
        c->changes++;
    if (e->type != CLU_ENTRY_COMMAND)
        return 0;
    c->commands++;
    if (e->malformed) {
        c->bad_records++;
        entry_problem(k, "entry %llu (term %llu): malformed Raft entry of %zu bytes (bad framing)",
                      (ull)e->index, (ull)e->term, e->len);
        return 0;
    }
    if (txl_decode(e->buf, e->len, &rec, why, sizeof why)) {
        c->bad_records++;
        entry_problem(k, "entry %llu (term %llu): %s", (ull)e->index, (ull)e->term, why);
        return 0;
    }
    uint64_t lsn = rec.lsn;
    txl_record_free(&rec);
    if (c->records++ == 0)
        c->first_lsn = lsn;
    c->last_lsn = lsn;
    check_lsn(k, info, e, lsn);
    if (lsn > k->max_lsn)
        k->max_lsn = lsn;
    if (k->have_applied && lsn > c->db_applied_lsn)
        k->after_applied++;
    k->have_prev = 1;
    k->prev_lsn = lsn;
    k->prev_index = e->index;
    return 0;
}

static void check_snapshot(struct check *k, const char *dir, const struct clu_log_info *info)
{
    struct adm_check *c = k->c;
    const struct clu_snapshot_desc *s = &info->snapshot_desc;
    char snap_dir[ADM_PATH_MAX], err[512];
    c->has_snapshot = info->has_snapshot;
    c->snapshot_index = info->snapshot_index;
    if (!info->has_snapshot)
        return;
    if (!info->snapshot_desc_ok) {
        problem(k, "snapshot at index %llu (term %llu): its descriptor does not decode",
                (ull)info->snapshot_index, (ull)info->snapshot_term);
        return;
    }
    c->snapshot_lsn = s->lsn;
    int ok = 1;
    if (s->index != info->snapshot_index) {
        problem(k, "snapshot at index %llu: its descriptor says index %llu", (ull)info->snapshot_index,
                (ull)s->index);
        ok = 0;
    }
    if (c->progress && s->size >= (256u << 20))
        fprintf(c->progress, "txlog check: hashing snapshots/%s (%llu bytes)\n", s->name,
                (ull)s->size);
    int rc = adm_path(snap_dir, sizeof snap_dir, dir, "snapshots")
                 ? CLU_EINVAL
                 : clu_snapshot_verify(snap_dir, s, 1, err, sizeof err);
    if (rc == CLU_ENOTFOUND) {
        problem(k, "snapshot file snapshots/%s (index %llu) is missing", s->name, (ull)s->index);
        ok = 0;
    } else if (rc) {
        problem(k, "snapshot file snapshots/%s (index %llu): %s", s->name, (ull)s->index, err);
        ok = 0;
    }
    c->snapshot_ok = ok;
}

static void print_summary(struct check *k, const char *dir, const struct clu_log_info *info,
                          const char *db_state)
{
    struct adm_check *c = k->c;
    FILE *o = k->out;
    if (k->entry_problems > SHOWN_MAX)
        fprintf(o, "(%u more problems with entries not shown)\n", k->entry_problems - SHOWN_MAX);
    fprintf(o, "data dir:  %s\n", dir);
    if (!c->log_ok)
        fprintf(o, "log:       unreadable\n");
    else if (!c->has_log)
        fprintf(o, "log:       none (no Raft state in raft/)\n");
    else if (!c->entries)
        fprintf(o, "log:       no entries, term %llu\n", (ull)info->term);
    else
        fprintf(o,
                "log:       %llu %s, index %llu..%llu, term %llu: %llu %s, %llu %s, %llu "
                "configuration %s\n",
                (ull)c->entries, plural(c->entries, "entry", "entries"), (ull)c->first_index,
                (ull)c->last_index, (ull)info->term, (ull)c->commands,
                plural(c->commands, "command", "commands"), (ull)c->barriers,
                plural(c->barriers, "barrier", "barriers"), (ull)c->changes,
                plural(c->changes, "change", "changes"));
    if (c->records)
        fprintf(o, "records:   %llu, LSN %llu..%llu%s\n", (ull)c->records, (ull)c->first_lsn,
                (ull)c->last_lsn, c->bad_records ? " (and undecodable entries)" : "");
    else if (c->log_ok && c->has_log)
        fprintf(o, "records:   none\n");
    if (!c->has_snapshot)
        fprintf(o, "snapshot:  none\n");
    else if (!info->snapshot_desc_ok)
        fprintf(o, "snapshot:  index %llu, descriptor corrupt\n", (ull)c->snapshot_index);
    else
        fprintf(o, "snapshot:  index %llu, LSN %llu, snapshots/%s (%llu bytes)%s\n",
                (ull)c->snapshot_index, (ull)c->snapshot_lsn, info->snapshot_desc.name,
                (ull)info->snapshot_desc.size, c->snapshot_ok ? ", SHA-256 ok" : ", BAD");
    fprintf(o, "database:  %s\n", db_state);
    if (c->problems)
        fprintf(o, "result:    %u %s\n", c->problems, plural(c->problems, "problem", "problems"));
    else if (c->warnings)
        fprintf(o, "result:    ok, %u %s\n", c->warnings, plural(c->warnings, "warning", "warnings"));
    else
        fprintf(o, "result:    ok\n");
}

/* Applied LSN against the log and the snapshot; fills state. */
static void compare_applied(struct check *k, char *state, size_t cap)
{
    struct adm_check *c = k->c;
    uint64_t a = c->db_applied_lsn;
    uint64_t top = k->max_lsn > c->snapshot_lsn ? k->max_lsn : c->snapshot_lsn;
    size_t len = strlen(state);
    if (!c->log_ok) {
        snprintf(state + len, cap - len, " (not compared: the log did not load)");
    } else if (a > top) {
        c->db_ahead = 1;
        warning(k, "database ahead of its log: applied LSN %llu, the log and the snapshot end at "
                "LSN %llu; orbitd will repair it at start",
                (ull)a, (ull)top);
        snprintf(state + len, cap - len, " (ahead of the log, which ends at LSN %llu)", (ull)top);
    } else if (a == top) {
        snprintf(state + len, cap - len, " (the end of the log)");
    } else if (c->snapshot_ok && a < c->snapshot_lsn) {
        snprintf(state + len, cap - len,
                 " (behind the snapshot at LSN %llu: orbitd restores it, then replays the log)",
                 (ull)c->snapshot_lsn);
    } else {
        snprintf(state + len, cap - len, " (behind: orbitd replays the %llu %s after it)",
                 (ull)k->after_applied, plural(k->after_applied, "record", "records"));
    }
}

int adm_txlog_check(const char *dir, struct adm_check *c)
{
    FILE *out = c->out ? c->out : stdout;
    FILE *progress = c->progress;
    uint64_t every = c->progress_every ? c->progress_every : ADM_PROGRESS_EVERY;
    memset(c, 0, sizeof *c);
    c->out = out;
    c->progress = progress;
    c->progress_every = every;
    if (adm_data_dir(dir, c->err, sizeof c->err))
        return ADM_USAGE;
    long pid = 0;
    int running = adm_node_running(dir, &pid);
    if (running) {
        if (running > 0)
            snprintf(c->err, sizeof c->err, "orbitd (pid %ld) is running on %s: stop it first "
                     "(txlog check verifies a stopped node)",
                     pid, dir);
        else
            snprintf(c->err, sizeof c->err, "cannot test the lock on %s/orbitd.pid", dir);
        return ADM_USAGE;
    }
    struct check k = {.c = c, .out = out, .every = every};
    char db_path[ADM_PATH_MAX], err[512], db_state[1024] = "";
    struct adm_db db = {0};
    struct stat st;

    /* the applied LSN first: the log pass counts the records after it */
    if (adm_path(db_path, sizeof db_path, dir, "orbit.db") || stat(db_path, &st) != 0) {
        problem(&k, "no database (orbit.db is missing)");
        snprintf(db_state, sizeof db_state, "missing");
    } else if (adm_db_open(db_path, &db, err, sizeof err)) {
        problem(&k, "database: %s", err);
        snprintf(db_state, sizeof db_state, "cannot be opened");
    } else if (txl_applied_lsn(db.db, &c->db_applied_lsn, err, sizeof err)) {
        problem(&k, "database: cannot read the applied LSN: %s", err);
        snprintf(db_state, sizeof db_state, "applied LSN unreadable");
    } else {
        c->db_found = 1;
        k.have_applied = 1;
    }

    struct clu_log_info info;
    int rc = clu_log_read(dir, &info, check_entry, &k, err, sizeof err);
    c->log_ok = rc == CLU_OK;
    c->has_log = info.has_log;
    c->first_index = info.first_index;
    c->last_index = info.last_index;
    if (rc)
        problem(&k, "%s", err); /* "raft log DIR/raft: load closed segment NAME: ..." */
    else if (c->entries != info.entries)
        problem(&k, "raft log: %llu entries loaded, %llu checked", (ull)info.entries,
                (ull)c->entries);
    check_snapshot(&k, dir, &info);

    if (db.db) {
        if (progress)
            fprintf(progress, "txlog check: PRAGMA integrity_check on orbit.db\n");
        int irc = adm_integrity(db.db, err, sizeof err);
        c->db_ok = irc == 0;
        if (irc)
            problem(&k, "database integrity_check: %s", err);
        if (k.have_applied) {
            snprintf(db_state, sizeof db_state, "integrity %s, applied LSN %llu",
                     irc ? "FAILED" : "ok", (ull)c->db_applied_lsn);
            compare_applied(&k, db_state, sizeof db_state);
        } else {
            snprintf(db_state, sizeof db_state, "integrity %s, applied LSN unreadable",
                     irc ? "FAILED" : "ok");
        }
    }
    adm_db_close(&db);
    print_summary(&k, dir, &info, db_state);
    fflush(out);
    return c->problems ? ADM_PROBLEM : ADM_OK;
}
