/* Deterministic tests of the cluster FSM glue on libraft's in-memory
 * fixture (simulated time and network): entries reach every FSM in order,
 * a new leader continues after the old one is deposed, snapshots are files,
 * and a follower that fell behind the compacted log fetches the leader's
 * file (a corrupted copy is refused) before libraft restores it. */
#include <dirent.h>
#include <raft.h>
#include <raft/fixture.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clu_test_fsm.h"
#include "cluster.h"
#include "unit.h"

#define NSERVERS 3

struct server {
    struct tfsm fsm;
    struct clu_fsm *glue;
    char dir[256];
    int fetches;
};

struct fx {
    struct raft_fixture f;
    struct server s[NSERVERS];
    char base[64];
    int corrupt_next_fetch;
};

static struct fx *FX;

static int copy_file(const char *from, const char *to, int corrupt)
{
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    int ok = in && out;
    char buf[4096];
    size_t k, total = 0;
    while (ok && (k = fread(buf, 1, sizeof buf, in)) > 0) {
        if (corrupt && total == 0 && k > 20)
            buf[20] ^= 0x40;
        ok = fwrite(buf, 1, k, out) == k;
        total += k;
    }
    if (in)
        fclose(in);
    if (out && fclose(out) != 0)
        ok = 0;
    return ok ? 0 : CLU_EIO;
}

/* Test transfer: copy the file out of the sender's snapshot dir. */
static void fetch(void *fud, uint64_t from_id, const char *from_address,
                  const struct clu_snapshot_desc *d, const char *dst)
{
    struct server *me = fud;
    (void)from_address;
    char src[512];
    assert_true(from_id >= 1 && from_id <= NSERVERS);
    snprintf(src, sizeof src, "%s/%s", FX->s[from_id - 1].dir, d->name);
    me->fetches++;
    int rc = copy_file(src, dst, FX->corrupt_next_fetch);
    FX->corrupt_next_fetch = 0;
    clu_fsm_fetch_done(me->glue, d->name, rc);
}

static int setup(void **state)
{
    struct fx *x = calloc(1, sizeof *x);
    FX = x;
    snprintf(x->base, sizeof x->base, "/tmp/orbit-clufx-XXXXXX");
    assert_non_null(mkdtemp(x->base));
    assert_int_equal(raft_fixture_initialize(&x->f), 0);
    for (unsigned i = 0; i < NSERVERS; i++) {
        struct server *s = &x->s[i];
        snprintf(s->dir, sizeof s->dir, "%s/s%u", x->base, i);
        assert_int_equal(mkdir(s->dir, 0700), 0);
        assert_int_equal(clu_fsm_new(&tfsm_ops, &s->fsm, s->dir, i + 1, &s->glue), 0);
        assert_int_equal(raft_fixture_grow(&x->f, clu_fsm_raft(s->glue)), 0);
        struct raft *r = raft_fixture_get(&x->f, i);
        clu_fsm_attach(s->glue, r);
        clu_fsm_set_fetch(s->glue, fetch, s);
        assert_true(r->io->version >= 2); /* async snapshots through the fixture's work queue */
    }
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&x->f, NSERVERS, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&x->f, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&x->f), 0);
    *state = x;
    return 0;
}

static int count_snap_files(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strncmp(e->d_name, "snap-", 5) == 0)
            n++;
    if (d)
        closedir(d);
    return n;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int teardown(void **state)
{
    struct fx *x = *state;
    raft_fixture_close(&x->f);
    for (unsigned i = 0; i < NSERVERS; i++) {
        clu_fsm_free(x->s[i].glue);
        tfsm_free(&x->s[i].fsm);
        remove_dir(x->s[i].dir);
    }
    rmdir(x->base);
    free(x);
    FX = NULL;
    return 0;
}

static int applied_ok, applied_failed;

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    (void)result;
    if (status == 0)
        applied_ok++;
    else
        applied_failed++;
    free(req);
}

/* Submit values [from, from+count) on server i; returns the last index. */
static raft_index submit(struct fx *x, unsigned i, uint64_t from, unsigned count)
{
    struct raft *r = raft_fixture_get(&x->f, i);
    for (unsigned k = 0; k < count; k++) {
        struct raft_apply *req = malloc(sizeof *req);
        /* framed as clu_submit does: the payload, 7 zero bytes, the pad count 8 */
        struct raft_buffer b = {.base = raft_calloc(1, 16), .len = 16};
        put_be64(b.base, from + k);
        ((unsigned char *)b.base)[15] = 8;
        assert_int_equal(raft_apply(r, req, &b, 1, apply_cb), 0);
    }
    return raft_last_index(r);
}

static void test_replicates_in_order(void **state)
{
    struct fx *x = *state;
    raft_fixture_elect(&x->f, 0);
    raft_index last = submit(x, 0, 0, 50);
    assert_true(raft_fixture_step_until_applied(&x->f, NSERVERS, last, 10000));
    for (unsigned i = 0; i < NSERVERS; i++) {
        assert_int_equal(x->s[i].fsm.errors, 0);
        assert_true(tfsm_is_sequence(&x->s[i].fsm, 50));
        assert_int_equal(x->s[i].fsm.last_index, last);
    }
}

static void test_new_leader_continues(void **state)
{
    struct fx *x = *state;
    raft_fixture_elect(&x->f, 0);
    raft_index last = submit(x, 0, 0, 20);
    assert_true(raft_fixture_step_until_applied(&x->f, NSERVERS, last, 10000));
    raft_fixture_depose(&x->f);
    assert_true(raft_fixture_step_until_has_leader(&x->f, 10000));
    unsigned l = raft_fixture_leader_index(&x->f);
    assert_true(l < NSERVERS);
    assert_true(raft_fixture_get(&x->f, l)->current_term > 1);
    /* entries a deposed leader appended but did not commit would fail with
     * LEADERSHIPLOST; here everything committed first */
    last = submit(x, l, 20, 30);
    assert_true(raft_fixture_step_until_applied(&x->f, NSERVERS, last, 10000));
    for (unsigned i = 0; i < NSERVERS; i++) {
        assert_int_equal(x->s[i].fsm.errors, 0);
        assert_true(tfsm_is_sequence(&x->s[i].fsm, 50));
    }
}

static void test_snapshot_install_through_fetch(void **state)
{
    struct fx *x = *state;
    for (unsigned i = 0; i < NSERVERS; i++) {
        struct raft *r = raft_fixture_get(&x->f, i);
        raft_set_snapshot_threshold(r, 8);
        raft_set_snapshot_trailing(r, 2);
        raft_set_install_snapshot_timeout(r, 300);
    }
    raft_fixture_elect(&x->f, 0);
    raft_index last = submit(x, 0, 0, 10);
    assert_true(raft_fixture_step_until_applied(&x->f, NSERVERS, last, 10000));

    raft_fixture_kill(&x->f, 2);
    for (unsigned k = 0; k < 4; k++) { /* several snapshots on the way */
        last = submit(x, 0, 10 + 10 * k, 10);
        assert_true(raft_fixture_step_until_applied(&x->f, 0, last, 10000));
        assert_true(raft_fixture_step_until_applied(&x->f, 1, last, 10000));
    }
    struct raft *leader = raft_fixture_get(&x->f, 0);
    assert_true(leader->log.snapshot.last_index > 11); /* follower 2's next entry is gone */
    assert_true(x->s[0].fsm.snapshots >= 2);
    assert_int_equal(x->s[0].fsm.snap_failed, 0);
    int files = count_snap_files(x->s[0].dir);
    assert_true(files >= 1 && files <= 2); /* older files were removed */

    x->corrupt_next_fetch = 1; /* the first copy is damaged and must be refused */
    raft_fixture_revive(&x->f, 2);
    assert_true(raft_fixture_step_until_applied(&x->f, 2, last, 30000));
    struct server *s2 = &x->s[2];
    assert_true(s2->fetches >= 2);
    assert_int_equal(s2->fsm.restores, 1);
    assert_true(s2->fsm.restored_index > 11);
    assert_int_equal(s2->fsm.errors, 0);
    assert_true(tfsm_is_sequence(&s2->fsm, 50));
    assert_true(tfsm_is_sequence(&x->s[0].fsm, 50));

    /* and it keeps up with new entries afterwards */
    last = submit(x, 0, 50, 5);
    assert_true(raft_fixture_step_until_applied(&x->f, NSERVERS, last, 10000));
    for (unsigned i = 0; i < NSERVERS; i++)
        assert_true(tfsm_is_sequence(&x->s[i].fsm, 55));
}

static void test_descriptor_codec(void **state)
{
    (void)state;
    struct clu_snapshot_desc d = {.index = 42, .lsn = 7, .size = 4096, .origin = 0xabcdef};
    for (int i = 0; i < 32; i++)
        d.sha256[i] = (unsigned char)i;
    snprintf(d.name, sizeof d.name, "snap-00000000000000000042-0000000000abcdef.db");
    unsigned char b[CLU_DESC_SIZE];
    assert_int_equal(clu_desc_encode(&d, b), 0);
    struct clu_snapshot_desc e;
    assert_int_equal(clu_desc_decode(b, sizeof b, &e), 0);
    assert_memory_equal(&d, &e, sizeof d);
    assert_int_equal(clu_desc_decode(b, sizeof b - 1, &e), CLU_ECORRUPT);
    for (size_t i = 0; i < sizeof b; i += 7) { /* any flipped bit is caught */
        b[i] ^= 1;
        assert_int_equal(clu_desc_decode(b, sizeof b, &e), CLU_ECORRUPT);
        b[i] ^= 1;
    }
    snprintf(d.name, sizeof d.name, "../etc/passwd");
    assert_int_equal(clu_desc_encode(&d, b), CLU_EINVAL);
    assert_string_equal(clu_status_name(CLU_ELEADERSHIPLOST), "ELEADERSHIPLOST");
    assert_non_null(strstr(clu_strerror(CLU_ENOTLEADER), "not the leader"));
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    log_set_level(getenv("CLU_LOG") ? LOG_DEBUG : LOG_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replicates_in_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_leader_continues, setup, teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_install_through_fetch, setup, teardown),
        cmocka_unit_test(test_descriptor_codec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
