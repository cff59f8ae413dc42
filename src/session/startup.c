/* session/startup.c: the loop-thread half of a session: startup packet,
 * SSL/GSS refusal, cancel requests, SCRAM authentication, batching
 * complete messages into jobs for the executor, and closing.
 *
 * States: STARTUP --startup packet--> SASL_INIT --client-first--> SASL_CONT
 *   --client-final ok--> READY; any --error/EOF/Terminate--> CLOSING.
 * In READY the session is either idle (busy = 0: the loop owns all of it)
 * or has a job queued/running (busy = 1: the worker owns the protocol
 * state; the loop only buffers input and writes output). */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "session_int.h"

#define AUTH_TIMEOUT_NS (60ULL * 1000000000ULL)
#define FRESH_GRACE_NS 200000000ULL /* a drain lets a new session start and send its first request */
#define HOLD_MAX_NS (6ULL * 1000000000ULL) /* a HELD session is told the role after this anyway */
#define JOB_BATCH_BYTES (64u * 1024)
#define READ_PAUSE_BYTES (1u << 20)

static void registry_add(struct session *s)
{
    char key[16];
    snprintf(key, sizeof key, "%u", s->pid);
    pthread_mutex_lock(&s->srv->reg_mu);
    if (map_put(&s->srv->registry, key, s, NULL) == 0)
        s->registered = 1;
    pthread_mutex_unlock(&s->srv->reg_mu);
}

static void registry_del(struct session *s)
{
    if (!s->registered)
        return;
    char key[16];
    snprintf(key, sizeof key, "%u", s->pid);
    pthread_mutex_lock(&s->srv->reg_mu);
    map_del(&s->srv->registry, key);
    pthread_mutex_unlock(&s->srv->reg_mu);
    s->registered = 0;
}

static void do_cancel(struct server *srv, uint32_t pid, uint32_t key)
{
    char k[16];
    snprintf(k, sizeof k, "%u", pid);
    pthread_mutex_lock(&srv->reg_mu);
    struct session *t = map_get(&srv->registry, k);
    if (t && t->key == key && t->busy)
        t->cancel = 1;
    pthread_mutex_unlock(&srv->reg_mu);
    log_debug("cancel_request", "pid=%u found=%d", pid, t != NULL);
}

struct session *ses_new(struct ioloop *io, int is_unix)
{
    struct session *s = util_calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->io = io;
    s->srv = io->srv;
    if (is_unix)
        uv_pipe_init(&io->loop, &s->h.pipe, 0);
    else
        uv_tcp_init(&io->loop, &s->h.tcp);
    s->h.handle.data = s;
    s->state = SES_STARTUP;
    s->txn = 'I';
    s->task.run = ses_run;
    s->task.should_abort = ses_should_abort;
    s->pid = atomic_fetch_add(&s->srv->next_pid, 1);
    if (util_random_bytes(&s->key, sizeof s->key))
        s->key = (uint32_t)util_now_ns();
    s->idle_since_ns = util_now_ns();
    s->next = io->sessions;
    if (io->sessions)
        io->sessions->prev = s;
    io->sessions = s;
    io->nsessions++;
    atomic_fetch_add(&s->srv->nsessions, 1);
    return s;
}

void ses_free(struct session *s)
{
    struct ioloop *io = s->io;
    registry_del(s);
    if (s->prev)
        s->prev->next = s->next;
    else
        io->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    io->nsessions--;
    atomic_fetch_sub(&s->srv->nsessions, 1);
    buf_free(&s->in);
    buf_free(&s->jin);
    buf_free(&s->out);
    util_free(s->user);
    util_free(s->app_name);
    sec_scram_free(s->scram);
    ses_vars_free(s);
    ses_portals_clear(s);
    ses_prepared_clear(s);
    util_free(s->prepared);
    util_free(s->portals);
    ses_copy_free(s);
    ses_query_free(s); /* the rest of a query string a COPY in it interrupted */
    util_free(s);
}

static void send_now(struct session *s, struct buf *b)
{
    if (!buf_ok(b)) {
        buf_free(b);
        return;
    }
    size_t len;
    char *d = buf_steal(b, &len);
    net_write_owned(s, d, len);
}

void ses_close(struct session *s)
{
    if (s->state == SES_CLOSING && !s->busy && uv_is_closing(&s->h.handle))
        return;
    s->state = SES_CLOSING;
    net_read_stop(s);
    if (s->busy) {
        s->closing = 1; /* worker drops output; job_done finishes the close */
        return;
    }
    if (s->task.conn || s->task.holds_write) {
        s->cleanup = 1;
        s->busy = 1;
        exe_submit(s->srv->pool, &s->task);
        return;
    }
    net_close(s);
}

void ses_fatal(struct session *s, const char *sqlstate, const char *msg)
{
    if (s->busy && atomic_load(&s->fast)) {
        /* the job's worker writes to the socket itself: the session just
         * closes when the job ends (within client_poll_us) */
        ses_close(s);
        return;
    }
    struct buf b;
    buf_init(&b);
    pgw_error(&b, 'E', "FATAL", sqlstate, msg, NULL, NULL);
    send_now(s, &b);
    ses_close(s);
}

void ses_on_eof(struct session *s)
{
    ses_close(s);
}

/* ---- startup and authentication ---- */

static int apply_startup_options(struct session *s, const char *opts)
{
    /* "-c name=value" and "--name=value", separated by spaces (\ escapes) */
    char tok[512];
    const char *p = opts;
    int expect_c = 0;
    while (*p) {
        while (*p == ' ')
            p++;
        if (!*p)
            break;
        size_t n = 0;
        while (*p && *p != ' ' && n < sizeof tok - 1) {
            if (*p == '\\' && p[1])
                p++;
            tok[n++] = *p++;
        }
        tok[n] = 0;
        const char *kv = NULL;
        if (strcmp(tok, "-c") == 0) {
            expect_c = 1;
            continue;
        }
        if (expect_c)
            kv = tok;
        else if (strncmp(tok, "--", 2) == 0)
            kv = tok + 2;
        else if (strncmp(tok, "-c", 2) == 0)
            kv = tok + 2;
        expect_c = 0;
        if (!kv)
            continue;
        char *eq = strchr(kv, '=');
        if (!eq)
            continue;
        *eq = 0;
        char name[128];
        util_strlcpy(name, kv, sizeof name);
        for (char *q = name; *q; q++)
            if (*q == '-')
                *q = '_';
        char state[6], err[256];
        if (ses_set_var(s, name, eq + 1, 0, state, err, sizeof err)) {
            ses_fatal(s, state, err);
            return -1;
        }
    }
    return 0;
}

static void auth_done(struct session *s);

static void handle_startup(struct session *s, const char *p, size_t len)
{
    struct pgw_startup su;
    char err[256];
    if (pgw_parse_startup(p, len, &su, err, sizeof err)) {
        ses_fatal(s, "08P01", err);
        return;
    }
    switch (su.kind) {
    case PGW_SK_SSL:
    case PGW_SK_GSSENC:
        net_write(s, "N", 1);
        return;
    case PGW_SK_CANCEL:
        do_cancel(s->srv, su.cancel_pid, su.cancel_key);
        ses_close(s);
        return;
    case PGW_SK_BAD_VERSION:
        snprintf(err, sizeof err, "unsupported frontend protocol %u.%u: server supports 3.0 to 3.0",
                 su.version >> 16, su.version & 0xffff);
        ses_fatal(s, "0A000", err);
        return;
    case PGW_SK_STARTUP:
        break;
    }
    if (atomic_load(&s->srv->draining)) {
        ses_fatal(s, "57P03", "the database system is shutting down");
        return;
    }
    if (atomic_load(&s->srv->nsessions) > s->srv->cfg->max_connections) {
        ses_fatal(s, "53300", "sorry, too many clients already");
        return;
    }
    const char *user = pgw_startup_get(&su, "user");
    if (!user || !*user) {
        ses_fatal(s, "28000", "no PostgreSQL user name specified in startup packet");
        return;
    }
    const char *db = pgw_startup_get(&su, "database");
    if (!db || !*db)
        db = user;
    const char *unrecognized[PGW_MAX_STARTUP_PARAMS];
    int nun = 0;
    for (int i = 0; i < su.nparams; i++) {
        const char *n = su.names[i], *v = su.values[i];
        if (strcmp(n, "user") == 0 || strcmp(n, "database") == 0)
            continue;
        if (strncmp(n, "_pq_.", 5) == 0) {
            unrecognized[nun++] = n;
            continue;
        }
        if (strcmp(n, "replication") == 0) {
            if (strcasecmp(v, "false") != 0 && strcasecmp(v, "off") != 0 && strcmp(v, "0") != 0) {
                ses_fatal(s, "08P01", "replication connections are not supported");
                return;
            }
            continue;
        }
        if (strcmp(n, "options") == 0) {
            if (apply_startup_options(s, v))
                return;
            continue;
        }
        char state[6];
        if (ses_set_var(s, n, v, 0, state, err, sizeof err)) {
            ses_fatal(s, state, err);
            return;
        }
    }
    s->user = util_strdup(user);
    if (!s->user) {
        ses_fatal(s, "53200", "out of memory");
        return;
    }
    /* the database is checked after authentication, as PostgreSQL does */
    if (strcmp(db, "orbit") != 0)
        s->txn = 'X'; /* marker: bad database; reported after auth */
    struct buf b;
    buf_init(&b);
    if ((su.version & 0xffff) > 0 || nun > 0)
        pgw_negotiate_version(&b, 0, nun, unrecognized);
    struct sec_role role;
    const char *verifier = NULL;
    if (sec_roles_find(s->srv->roles, user, &role) == 0) {
        if (role.login)
            verifier = role.verifier;
        s->superuser = (uint8_t)role.superuser;
    }
    int trust = strcmp(s->srv->cfg->auth_method, "trust") == 0;
    int known = role.name && role.login;
    if (!trust)
        s->scram = sec_scram_new(user, verifier, s->srv->mock_key);
    sec_role_clear(&role);
    if (trust) {
        if (!known) {
            buf_free(&b);
            snprintf(err, sizeof err, "role \"%s\" does not exist", user);
            ses_fatal(s, "28000", err);
            return;
        }
        if (strcmp(db, "orbit") != 0) {
            util_free(s->app_name);
            s->app_name = util_strdup(db);
        }
        send_now(s, &b);
        auth_done(s);
        return;
    }
    if (!s->scram) {
        buf_free(&b);
        ses_fatal(s, "53200", "out of memory");
        return;
    }
    if (strcmp(db, "orbit") != 0) {
        /* keep the name for the message after authentication */
        util_free(s->app_name);
        s->app_name = util_strdup(db);
    }
    pgw_auth_sasl(&b, "SCRAM-SHA-256");
    send_now(s, &b);
    s->state = SES_SASL_INIT;
}

void ses_params_status(struct session *s, struct buf *b)
{
    if (s->srv->repl)
        s->role_gen = rpl_role_generation(s->srv->repl);
    static const char *reported[] = {"server_version",
                                     "server_encoding",
                                     "client_encoding",
                                     "DateStyle",
                                     "IntervalStyle",
                                     "integer_datetimes",
                                     "standard_conforming_strings",
                                     "TimeZone",
                                     "application_name",
                                     "is_superuser",
                                     "session_authorization",
                                     "default_transaction_read_only",
                                     "in_hot_standby"};
    for (size_t i = 0; i < ARRAY_LEN(reported); i++) {
        const char *v = ses_get_var(s, reported[i]);
        pgw_param_status(b, reported[i], v ? v : "");
    }
}

/* Authenticated: tell the client the settings (the role among them) and
 * that it may send queries. */
static void session_ready(struct session *s)
{
    struct buf b;
    buf_init(&b);
    pgw_auth_ok(&b);
    ses_params_status(s, &b);
    pgw_backend_key(&b, s->pid, s->key);
    pgw_ready(&b, 'I');
    send_now(s, &b);
    s->state = SES_READY;
    s->idle_since_ns = util_now_ns();
    registry_add(s);
    log_debug("connection_authorized", "pid=%u user=%s", s->pid, s->user);
}

static void auth_done(struct session *s)
{
    sec_scram_free(s->scram);
    s->scram = NULL;
    if (s->txn == 'X') {
        char msg[300];
        snprintf(msg, sizeof msg, "database \"%s\" does not exist", s->app_name ? s->app_name : "");
        ses_fatal(s, "3D000", msg);
        return;
    }
    if (s->srv->repl && rpl_is_witness(s->srv->repl)) {
        ses_fatal(s, "57P03", "this node is a witness: it votes but holds no data; connect to another member");
        return;
    }
    if (s->srv->repl && rpl_hold_sessions(s->srv->repl)) {
        /* leadership is moving here or away: telling the role now could
         * send a client looking for the leader away from every member */
        s->state = SES_HELD;
        s->idle_since_ns = util_now_ns();
        if (!s->io->held_oldest_ns)
            s->io->held_oldest_ns = s->idle_since_ns;
        if (!uv_is_active((uv_handle_t *)&s->io->hold_timer))
            uv_timer_start(&s->io->hold_timer, ses_hold_tick, 1, 1);
        return;
    }
    session_ready(s);
}

void ses_hold_tick(uv_timer_t *t)
{
    struct ioloop *io = t->data;
    int hold = rpl_hold_sessions(io->srv->repl), held = 0;
    uint64_t now = util_now_ns(), oldest = 0;
    /* every millisecond while the hold lasts, but the walk over all of the
     * loop's sessions (tens of thousands) only when it ends or the oldest
     * held session may have waited HOLD_MAX_NS (a closed one may make
     * held_oldest_ns too old: the walk then just comes early) */
    if (hold && io->held_oldest_ns && now - io->held_oldest_ns < HOLD_MAX_NS)
        return;
    for (struct session *s = io->sessions, *n; s; s = n) {
        n = s->next;
        if (s->state != SES_HELD)
            continue;
        if (hold && now - s->idle_since_ns < HOLD_MAX_NS) {
            held++;
            if (!oldest || s->idle_since_ns < oldest)
                oldest = s->idle_since_ns;
            continue;
        }
        session_ready(s);
        if (s->in.len) /* what the client sent without waiting for ReadyForQuery */
            ses_pump(s);
    }
    io->held_oldest_ns = oldest;
    if (!held)
        uv_timer_stop(t);
}

static void handle_sasl(struct session *s, char type, const char *p, size_t len)
{
    char err[256];
    struct buf out;
    buf_init(&out);
    if (type != 'p') {
        snprintf(err, sizeof err, "expected SASL response, got message type %d", (unsigned char)type);
        ses_fatal(s, "08P01", err);
        return;
    }
    enum sec_scram_rc rc;
    if (s->state == SES_SASL_INIT) {
        struct pgw_rd r;
        pgw_rd_init(&r, p, len);
        const char *mech = pgw_rd_str(&r);
        int32_t n = pgw_rd_i32(&r);
        const char *data = n > 0 ? pgw_rd_bytes(&r, (size_t)n) : NULL;
        if (!pgw_rd_done(&r) || !mech || n <= 0) {
            ses_fatal(s, "08P01", "malformed SASLInitialResponse message");
            return;
        }
        if (strcmp(mech, "SCRAM-SHA-256") != 0) {
            ses_fatal(s, "08P01", "client selected an invalid SASL authentication mechanism");
            return;
        }
        rc = sec_scram_client_first(s->scram, data, (size_t)n, &out, err, sizeof err);
    } else {
        rc = sec_scram_client_final(s->scram, p, len, &out, err, sizeof err);
    }
    if (rc == SEC_SCRAM_PROTO) {
        buf_free(&out);
        ses_fatal(s, "08P01", err);
        return;
    }
    if (rc == SEC_SCRAM_FAIL) {
        char msg[300];
        buf_free(&out);
        snprintf(msg, sizeof msg, "password authentication failed for user \"%s\"", s->user);
        log_info("authentication_failed", "pid=%u user=%s", s->pid, s->user);
        ses_fatal(s, "28P01", msg);
        return;
    }
    struct buf b;
    buf_init(&b);
    pgw_auth_sasl_continue(&b, rc == SEC_SCRAM_OK ? 12 : 11, out.data, out.len);
    buf_free(&out);
    send_now(s, &b);
    if (rc == SEC_SCRAM_OK)
        auth_done(s);
    else
        s->state = SES_SASL_CONT;
}

/* ---- batching input into jobs ---- */

/* Messages after which the client waits for an answer: a job ends there.
 * Unknown types end a job too (the worker answers with FATAL). */
static int is_boundary(char type)
{
    return !strchr("BCDEPd", type) || type == 0;
}

static int batch_is_short(const char *p, size_t n)
{
    size_t off = 0;
    while (off < n) {
        char type;
        const char *payload;
        size_t plen, total;
        if (pgw_frame(p + off, n - off, PGW_MAX_MESSAGE, &type, &payload, &plen, &total) <= 0)
            return 0;
        if (!strchr("PDCSH", type))
            return 0;
        off += total;
    }
    return 1;
}

int ses_scan_batch(const char *p, size_t avail, uint32_t maxlen, size_t *end)
{
    size_t off = 0;
    for (;;) {
        char type;
        const char *payload;
        size_t plen, total;
        int rc = pgw_frame(p + off, avail - off, maxlen, &type, &payload, &plen, &total);
        if (rc < 0)
            return -1;
        if (rc == 0) {
            *end = off;
            return off >= JOB_BATCH_BYTES ? 1 : 0;
        }
        off += total;
        if (is_boundary(type) || off >= JOB_BATCH_BYTES) {
            *end = off;
            return 1;
        }
    }
}

/* Queue the first n bytes of input as a job. Returns 1 when the loop
 * stopped reading for it (the direct path, run.c fast_next). */
static int dispatch(struct session *s, size_t n)
{
    buf_reset(&s->jin);
    buf_append(&s->jin, s->in.data, n);
    if (!buf_ok(&s->jin)) {
        ses_fatal(s, "53200", "out of memory");
        return 0;
    }
    buf_consume(&s->in, n);
    s->jpos = 0;
    s->busy = 1;
    s->used = 1;
    /* Parse/Describe/Close/Sync outside a transaction hold a connection
     * only for this job: they may use a reserved one */
    s->task.short_job = !s->task.conn && s->txn == 'I' && !s->copy_in && batch_is_short(s->jin.data, n);
    /* the job's worker may answer and read the socket itself when nothing
     * else is buffered: the loop stops reading meanwhile */
    int fast = s->srv->cfg->client_poll_us > 0 && !s->copy_in && s->in.len == 0;
    atomic_store(&s->fast, fast);
    if (fast)
        net_read_stop(s);
    exe_submit(s->srv->pool, &s->task); /* s->fast is the worker's from here */
    return fast;
}

void ses_pump(struct session *s)
{
    int fast = 0;
    while (!s->busy && s->state != SES_CLOSING) {
        const char *p = s->in.data;
        size_t avail = s->in.len;
        if (s->state == SES_STARTUP) {
            size_t total;
            int rc = pgw_frame_startup(p, avail, &total);
            if (rc < 0) {
                ses_fatal(s, "08P01", "invalid length of startup packet");
                return;
            }
            if (rc == 0)
                break;
            handle_startup(s, p, total);
            buf_consume(&s->in, total);
            continue;
        }
        char type;
        const char *payload;
        size_t plen, total;
        uint32_t maxlen = s->state == SES_READY || s->state == SES_HELD ? (uint32_t)s->srv->cfg->max_message_size
                                                                          : PGW_MAX_STARTUP;
        int rc = pgw_frame(p, avail, maxlen, &type, &payload, &plen, &total);
        if (rc < 0) {
            ses_fatal(s, "08P01", "invalid message length");
            return;
        }
        if (rc == 0)
            break;
        if (s->state == SES_SASL_INIT || s->state == SES_SASL_CONT) {
            handle_sasl(s, type, payload, plen);
            buf_consume(&s->in, total);
            continue;
        }
        if (s->state == SES_HELD)
            break; /* the client sent before AuthenticationOk: it waits in the buffer */
        /* READY: a Terminate alone needs no worker unless a transaction is open */
        if (type == 'X' && !s->task.conn && !s->task.holds_write) {
            buf_consume(&s->in, total);
            ses_close(s);
            return;
        }
        size_t off;
        rc = ses_scan_batch(p, avail, maxlen, &off);
        if (rc < 0) {
            ses_fatal(s, "08P01", "invalid message length");
            return;
        }
        if (rc > 0 || s->copy_in)
            fast = dispatch(s, off);
        break; /* dispatched, or wait for the rest of the batch */
    }
    if (s->in.len == 0 && s->in.cap)
        buf_free(&s->in); /* idle sessions hold no buffer */
    if (s->state == SES_CLOSING)
        return;
    if ((s->in.len > READ_PAUSE_BYTES || fast) && (s->busy || s->state == SES_HELD))
        net_read_stop(s); /* (HELD: resumed by ses_pump once it is told the role) */
    else
        net_read_start(s);
}

void ses_on_data(struct session *s, const char *data, size_t len)
{
    if (s->state == SES_CLOSING)
        return;
    buf_append(&s->in, data, len);
    if (!buf_ok(&s->in)) {
        ses_fatal(s, "53200", "out of memory");
        return;
    }
    ses_pump(s);
}

void ses_resume_read(struct session *s)
{
    if (s->state != SES_CLOSING && s->in.len <= READ_PAUSE_BYTES)
        net_read_start(s);
}

void ses_job_done(struct session *s)
{
    s->busy = 0;
    s->cancel = 0;
    atomic_store(&s->fast, 0);
    if (s->fast_left) {
        /* input the worker read from the socket but did not run */
        s->fast_left = 0;
        buf_append(&s->in, s->jin.data + s->jpos, s->jin.len - s->jpos);
        buf_reset(&s->jin);
        if (!buf_ok(&s->in)) {
            ses_fatal(s, "53200", "out of memory");
            return;
        }
    }
    if (s->cleanup) {
        s->cleanup = 0;
        net_close(s);
        return;
    }
    if (s->closing || s->state == SES_CLOSING) {
        s->state = SES_CLOSING;
        s->closing = 0; /* let ses_close run its steps */
        ses_close(s);
        return;
    }
    if (s->terminate) {
        ses_close(s);
        return;
    }
    if (s->txn != 'I')
        s->idle_since_ns = util_now_ns();
    if (atomic_load(&s->srv->draining)) {
        ses_drain(s); /* idle now: closed at once, not at the next tick */
        if (s->state == SES_CLOSING)
            return;
    }
    if (s->jin.cap > JOB_BATCH_BYTES * 4)
        buf_free(&s->jin);
    else if (s->in.len == 0)
        buf_free(&s->jin);
    if (s->out.cap)
        buf_free(&s->out);
    ses_pump(s);
}

void ses_tick(struct session *s, uint64_t now)
{
    if (s->busy || s->state == SES_CLOSING)
        return;
    if (s->state != SES_READY) {
        if (now - s->idle_since_ns > AUTH_TIMEOUT_NS)
            ses_fatal(s, "08006", "authentication timeout");
        return;
    }
    if (s->txn == 'I' || !s->ready_sent)
        return;
    uint64_t ms = ses_var_ms(s, "idle_in_transaction_session_timeout");
    if (ms && now - s->idle_since_ns > ms * 1000000ULL)
        ses_fatal(s, "25P03", "terminating connection due to idle-in-transaction timeout");
}

void ses_drain(struct session *s)
{
    if (s->busy || s->state == SES_CLOSING)
        return;
    /* its last answer is still on its way (a client reading a large result
     * slowly): closing now would cut it off (libuv drops queued writes);
     * the next tick looks again, the drain deadline ends it regardless */
    if (net_unsent(s))
        return;
    /* a session that is starting or was just told it may send (fresh)
     * gets to run its first request: its client chose this node a moment
     * ago (on a leader that hands over: docs/repl.md, Switchover) */
    int fresh = !s->used && util_now_ns() - s->idle_since_ns < FRESH_GRACE_NS;
    if (s->state != SES_READY) {
        /* not started: 57P03, on which libpq tries the next host of its
         * list (on 57P01 it gives up) */
        if (!fresh || s->state == SES_HELD)
            ses_fatal(s, "57P03", "the database system is shutting down");
        return;
    }
    if (s->txn == 'I' && !fresh)
        ses_fatal(s, "57P01", "terminating connection due to administrator command");
}
