/* session/vars.c: run-time parameters (SET / SHOW / RESET and startup
 * parameters). Defaults come from one table; a session stores only what
 * it changed, so an idle default session holds nothing here. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "session_int.h"

enum {
    V_REPORT = 1,   /* sent as ParameterStatus when it changes */
    V_READONLY = 2, /* cannot be SET */
    V_MS = 4,       /* duration in milliseconds */
    V_BOOL = 8,
    V_ENC = 16,     /* client_encoding */
    V_CONSIST = 32, /* orbit.read_consistency */
};

struct var_def {
    const char *name; /* display name (case as PostgreSQL reports it) */
    const char *def;  /* NULL: computed in default_of() */
    int flags;
    const char *desc;
};

static const struct var_def defs[] = {
    {"application_name", "", V_REPORT, "Sets the application name to be reported in statistics and logs."},
    {"client_encoding", "UTF8", V_REPORT | V_ENC, "Sets the client's character set encoding."},
    {"DateStyle", "ISO, MDY", V_REPORT, "Sets the display format for date and time values."},
    {"IntervalStyle", "postgres", V_REPORT, "Sets the display format for interval values."},
    {"TimeZone", "UTC", V_REPORT, "Sets the time zone for displaying and interpreting time stamps."},
    {"integer_datetimes", "on", V_REPORT | V_READONLY, "Shows whether datetimes are integer based."},
    {"standard_conforming_strings", "on", V_REPORT | V_BOOL, "Causes '...' strings to treat backslashes literally."},
    {"server_version", "15.0", V_REPORT | V_READONLY, "Shows the server version."},
    {"server_version_num", "150000", V_READONLY, "Shows the server version as an integer."},
    {"server_encoding", "UTF8", V_REPORT | V_READONLY, "Shows the server (database) character set encoding."},
    {"is_superuser", NULL, V_REPORT | V_READONLY, "Shows whether the current user is a superuser."},
    {"session_authorization", NULL, V_REPORT | V_READONLY, "Sets the session user name."},
    {"default_transaction_read_only", NULL, V_REPORT | V_BOOL, "Sets the default read-only status of new transactions."},
    {"in_hot_standby", NULL, V_REPORT | V_READONLY, "Shows whether hot standby is currently active."},
    {"transaction_read_only", NULL, V_BOOL, "Sets the current transaction's read-only status."},
    {"statement_timeout", NULL, V_MS, "Sets the maximum allowed duration of any statement."},
    {"idle_in_transaction_session_timeout", NULL, V_MS, "Sets the maximum allowed idle time between queries, when in a transaction."},
    {"lock_timeout", "0", V_MS, "Sets the maximum allowed duration of any wait for a lock."},
    {"transaction_isolation", "serializable", 0, "Sets the current transaction's isolation level."},
    {"default_transaction_isolation", "serializable", 0, "Sets the transaction isolation level of each new transaction."},
    {"search_path", "\"$user\", public", 0, "Sets the schema search order for names that are not schema-qualified."},
    {"extra_float_digits", "1", 0, "Sets the number of digits displayed for floating-point values."},
    {"bytea_output", "hex", 0, "Sets the output format for bytea."},
    {"max_connections", NULL, V_READONLY, "Sets the maximum number of concurrent connections."},
    {"synchronous_commit", "on", 0, "Sets the current transaction's synchronization level."},
    {"client_min_messages", "notice", 0, "Sets the message levels that are sent to the client."},
    {"orbit.read_consistency", "local", V_CONSIST, "Read consistency: local or linearizable."},
};

static const struct var_def *find(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(defs); i++)
        if (strcasecmp(defs[i].name, name) == 0)
            return &defs[i];
    return NULL;
}

static void lower(char *dst, const char *src, size_t cap)
{
    size_t i = 0;
    for (; src[i] && i < cap - 1; i++)
        dst[i] = (char)tolower((unsigned char)src[i]);
    dst[i] = 0;
}

/* Display a duration as PostgreSQL does: the largest unit that divides it. */
static void format_ms(char *out, size_t cap, uint64_t ms)
{
    static const struct {
        uint64_t div;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "min"}, {1000, "s"}};
    if (ms == 0) {
        snprintf(out, cap, "0");
        return;
    }
    for (size_t i = 0; i < ARRAY_LEN(units); i++)
        if (ms % units[i].div == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(ms / units[i].div), units[i].unit);
            return;
        }
    snprintf(out, cap, "%llums", (unsigned long long)ms);
}

static const char *default_of(struct session *s, const struct var_def *d, char *tmp, size_t cap)
{
    if (d->def)
        return d->def;
    const struct cfg *c = s->srv->cfg;
    if (strcmp(d->name, "is_superuser") == 0)
        return s->superuser ? "on" : "off";
    if (strcmp(d->name, "session_authorization") == 0)
        return s->user ? s->user : "";
    if (strcmp(d->name, "transaction_read_only") == 0)
        return s->txn_read_only || (s->txn == 'I' && ses_default_read_only(s)) ? "on" : "off";
    /* a node that is not the leader takes no writes: libpq's
     * target_session_attrs reads these two */
    if (strcmp(d->name, "in_hot_standby") == 0 || strcmp(d->name, "default_transaction_read_only") == 0)
        return s->srv->repl && !rpl_is_leader(s->srv->repl) ? "on" : "off";
    if (strcmp(d->name, "statement_timeout") == 0) {
        format_ms(tmp, cap, (uint64_t)c->statement_timeout_ms);
        return tmp;
    }
    if (strcmp(d->name, "idle_in_transaction_session_timeout") == 0) {
        format_ms(tmp, cap, (uint64_t)c->idle_in_transaction_session_timeout_ms);
        return tmp;
    }
    if (strcmp(d->name, "max_connections") == 0) {
        snprintf(tmp, cap, "%lld", (long long)c->max_connections);
        return tmp;
    }
    return "";
}

/* Values are returned from a small per-thread ring so callers can hold a
 * couple at once. */
static const char *ring_copy(const char *v)
{
    static _Thread_local char ring[4][256];
    static _Thread_local int pos;
    char *r = ring[pos++ & 3];
    util_strlcpy(r, v, sizeof ring[0]);
    return r;
}

const char *ses_get_var(struct session *s, const char *name)
{
    char key[128];
    lower(key, name, sizeof key);
    if (s->vars) {
        const char *v = map_get(&s->vars->m, key);
        if (v)
            return v;
    }
    const struct var_def *d = find(name);
    if (!d)
        return NULL;
    char tmp[64];
    return ring_copy(default_of(s, d, tmp, sizeof tmp));
}

const char *ses_var_cb(void *s, const char *name)
{
    return ses_get_var(s, name);
}

uint64_t ses_var_ms(struct session *s, const char *name)
{
    const char *v = ses_get_var(s, name);
    uint64_t ms = 0;
    if (v && util_parse_duration_ms(v, &ms))
        ms = 0;
    return ms;
}

static int parse_bool(const char *v, const char **out)
{
    static const char *yes[] = {"on", "true", "yes", "1", "t", "y"};
    static const char *no[] = {"off", "false", "no", "0", "f", "n"};
    for (size_t i = 0; i < ARRAY_LEN(yes); i++)
        if (strcasecmp(v, yes[i]) == 0) {
            *out = "on";
            return 0;
        }
    for (size_t i = 0; i < ARRAY_LEN(no); i++)
        if (strcasecmp(v, no[i]) == 0) {
            *out = "off";
            return 0;
        }
    return -1;
}

/* What a transaction changed of one setting: its value before the
 * transaction (NULL: the default), and the value a plain SET (not LOCAL)
 * gave it last, which the commit keeps. */
struct ses_var_undo {
    char *before;
    int sess_set;
    char *sess;
};

static void undo_free(struct ses_var_undo *u)
{
    if (!u)
        return;
    util_free(u->before);
    util_free(u->sess);
    util_free(u);
}

static int ensure_vars(struct session *s)
{
    if (s->vars)
        return 0;
    s->vars = util_calloc(1, sizeof *s->vars);
    if (!s->vars)
        return -1;
    map_init(&s->vars->m);
    map_init(&s->vars->txn);
    return 0;
}

/* A savepoint, and where its part of the steps begins. */
struct ses_var_mark {
    char *name;
    size_t step;
};

/* One SET under a savepoint: the setting's value (NULL: the default) and
 * its undo record's session value before it, which ROLLBACK TO puts back. */
struct ses_var_step {
    char *key;
    char *val;
    int sess_set;
    char *sess;
};

static void step_free(struct ses_var_step *st)
{
    util_free(st->key);
    util_free(st->val);
    util_free(st->sess);
}

/* Note what a SET is about to replace, while a savepoint is open. */
static int note_step(struct ses_vars *vs, const char *key, const struct ses_var_undo *u)
{
    if (!vs->nmarks)
        return 0;
    if (util_grow(&vs->steps, &vs->cap_steps, vs->nsteps, sizeof *vs->steps, 8))
        return -1;
    const char *cur = map_get(&vs->m, key);
    struct ses_var_step st = {util_strdup(key), cur ? util_strdup(cur) : NULL, u->sess_set,
                              u->sess ? util_strdup(u->sess) : NULL};
    if (!st.key || (cur && !st.val) || (u->sess && !st.sess)) {
        step_free(&st);
        return -1;
    }
    vs->steps[vs->nsteps++] = st;
    return 0;
}

/* A SET inside a transaction: note the value before the transaction (at
 * the first change) and, unless LOCAL, the value a commit keeps. value
 * NULL is RESET. 0, or -1 out of memory. */
static int remember(struct session *s, const char *key, const char *value, int local)
{
    if (s->vars->undoing)
        return 0;
    struct ses_var_undo *u = map_get(&s->vars->txn, key);
    if (!u) {
        const char *cur = map_get(&s->vars->m, key);
        u = util_calloc(1, sizeof *u);
        if (!u || (cur && !(u->before = util_strdup(cur)))) {
            undo_free(u);
            return -1;
        }
        void *old = NULL;
        if (map_put(&s->vars->txn, key, u, &old)) {
            undo_free(u);
            return -1;
        }
    }
    if (note_step(s->vars, key, u))
        return -1;
    if (local)
        return 0;
    char *v = value ? util_strdup(value) : NULL;
    if (value && !v)
        return -1;
    util_free(u->sess);
    u->sess = v;
    u->sess_set = 1;
    return 0;
}

int ses_set_var(struct session *s, const char *name, const char *value, int local, char *sqlstate, char *err,
                size_t errcap)
{
    const struct var_def *d = find(name);
    char key[128];
    lower(key, name, sizeof key);
    if (!d && !strchr(name, '.')) {
        snprintf(err, errcap, "unrecognized configuration parameter \"%s\"", name);
        memcpy(sqlstate, "42704", 6);
        return -1;
    }
    if (d && (d->flags & V_READONLY)) {
        snprintf(err, errcap, "parameter \"%s\" cannot be changed", d->name);
        memcpy(sqlstate, "55P02", 6);
        return -1;
    }
    char norm[256];
    if (value) {
        util_strlcpy(norm, value, sizeof norm);
        int flags = d ? d->flags : 0;
        const char *b;
        if (flags & V_BOOL) {
            if (parse_bool(value, &b))
                goto bad;
            util_strlcpy(norm, b, sizeof norm);
        } else if (flags & V_MS) {
            uint64_t ms;
            if (util_parse_duration_ms(value, &ms) || ms > INT32_MAX) /* PostgreSQL's limit */
                goto bad;
            format_ms(norm, sizeof norm, ms);
        } else if (flags & V_ENC) {
            if (strcasecmp(value, "utf8") == 0 || strcasecmp(value, "utf-8") == 0 ||
                strcasecmp(value, "unicode") == 0)
                util_strlcpy(norm, "UTF8", sizeof norm);
            else if (strcasecmp(value, "sql_ascii") == 0)
                util_strlcpy(norm, "SQL_ASCII", sizeof norm);
            else {
                snprintf(err, errcap, "conversion between %s and UTF8 is not supported", value);
                memcpy(sqlstate, "0A000", 6);
                return -1;
            }
        } else if (flags & V_CONSIST) {
            if (strcasecmp(value, "local") != 0 && strcasecmp(value, "linearizable") != 0)
                goto bad;
            lower(norm, value, sizeof norm);
        }
        if (d && strcmp(d->name, "transaction_read_only") == 0) {
            if (s->txn != 'I') /* outside a transaction it has no effect, as in PostgreSQL */
                s->txn_read_only = strcmp(norm, "on") == 0;
            return 0;
        }
    }
    if (local) {
        if (s->txn == 'I')
            return 0; /* PostgreSQL warns and ignores SET LOCAL outside a transaction */
    }
    if (ensure_vars(s))
        goto oom;
    if (s->txn != 'I' && remember(s, key, value ? norm : NULL, local))
        goto oom;
    void *old = NULL;
    if (value) {
        char *v = util_strdup(norm);
        if (!v || map_put(&s->vars->m, key, v, &old)) {
            util_free(v);
            goto oom;
        }
    } else {
        old = map_del(&s->vars->m, key);
    }
    util_free(old);
    if (d && (d->flags & V_CONSIST)) {
        const char *nv = ses_get_var(s, key);
        s->read_linearizable = nv && strcmp(nv, "linearizable") == 0;
    }
    if (d && (d->flags & V_REPORT) && s->state == SES_READY) {
        const char *nv = ses_get_var(s, key);
        pgw_param_status(&s->out, d->name, nv ? nv : "");
    }
    return 0;
bad:
    snprintf(err, errcap, "invalid value for parameter \"%s\": \"%s\"", d ? d->name : name, value);
    memcpy(sqlstate, "22023", 6);
    return -1;
oom:
    snprintf(err, errcap, "out of memory");
    memcpy(sqlstate, "53200", 6);
    return -1;
}

/* Drop the savepoints from index `from` on (and the steps when none is left). */
static void marks_drop(struct ses_vars *vs, size_t from)
{
    while (vs->nmarks > from)
        util_free(vs->marks[--vs->nmarks].name);
    if (vs->nmarks)
        return;
    while (vs->nsteps)
        step_free(&vs->steps[--vs->nsteps]);
    util_free(vs->marks);
    util_free(vs->steps);
    vs->marks = NULL;
    vs->steps = NULL;
    vs->cap_marks = vs->cap_steps = 0;
}

int ses_vars_savepoint(struct session *s, int kind, const char *name)
{
    if (!name)
        return 0;
    if (kind == SQL_K_SAVEPOINT) {
        if (ensure_vars(s))
            return -1;
        struct ses_vars *vs = s->vars;
        char *nm = util_strdup(name);
        if (!nm || util_grow(&vs->marks, &vs->cap_marks, vs->nmarks, sizeof *vs->marks, 4)) {
            util_free(nm);
            return -1;
        }
        vs->marks[vs->nmarks++] = (struct ses_var_mark){nm, vs->nsteps};
        return 0;
    }
    struct ses_vars *vs = s->vars;
    size_t i = vs ? vs->nmarks : 0;
    while (i > 0 && strcasecmp(vs->marks[i - 1].name, name) != 0)
        i--;
    if (i == 0)
        return 0; /* (SQLite found it: not one this module was told of) */
    i--;
    if (kind == SQL_K_RELEASE) {
        marks_drop(vs, i); /* its steps are now the enclosing savepoint's */
        return 0;
    }
    /* ROLLBACK TO: undo the steps since the savepoint, newest first; the
     * savepoint stays */
    char state[6], err[200];
    vs->undoing = 1;
    while (vs->nsteps > vs->marks[i].step) {
        struct ses_var_step *st = &vs->steps[--vs->nsteps];
        (void)ses_set_var(s, st->key, st->val, 0, state, err, sizeof err); /* a value it took before */
        struct ses_var_undo *u = map_get(&vs->txn, st->key);
        if (u) {
            util_free(u->sess);
            u->sess = st->sess;
            u->sess_set = st->sess_set;
            st->sess = NULL;
        }
        step_free(st);
    }
    vs->undoing = 0;
    marks_drop(vs, i + 1);
    return 0;
}

static void txn_clear(struct ses_vars *vs)
{
    size_t it = 0;
    void *v;
    while (map_next(&vs->txn, &it, NULL, &v))
        undo_free(v);
    map_free(&vs->txn);
}

void ses_vars_free(struct session *s)
{
    if (!s->vars)
        return;
    size_t it = 0;
    void *v;
    while (map_next(&s->vars->m, &it, NULL, &v))
        util_free(v);
    map_free(&s->vars->m);
    txn_clear(s->vars);
    marks_drop(s->vars, 0);
    util_free(s->vars);
    s->vars = NULL;
    s->read_linearizable = 0;
}

/* RESET ALL: every setting back to its default, as one RESET each (so a
 * transaction can undo it and changed reported values are sent). */
int ses_vars_reset_all(struct session *s, char *sqlstate, char *err, size_t errcap)
{
    while (s->vars && s->vars->m.count) {
        size_t it = 0;
        const char *k;
        void *v;
        if (!map_next(&s->vars->m, &it, &k, &v))
            break;
        char key[128];
        util_strlcpy(key, k, sizeof key);
        if (ses_set_var(s, key, NULL, 0, sqlstate, err, errcap))
            return -1;
    }
    return 0;
}

int ses_default_read_only(struct session *s)
{
    const char *v = s->vars ? map_get(&s->vars->m, "default_transaction_read_only") : NULL;
    return v && strcmp(v, "on") == 0;
}

void ses_vars_end_txn(struct session *s, int committed)
{
    s->txn_read_only = 0;
    if (!s->vars)
        return;
    marks_drop(s->vars, 0);
    /* the undo records leave the map first: the RESET/SETs below must not
     * be taken for changes of a transaction */
    struct map txn = s->vars->txn;
    map_init(&s->vars->txn);
    size_t it = 0;
    const char *key;
    void *v;
    char state[6], err[200];
    while (map_next(&txn, &it, &key, &v)) {
        struct ses_var_undo *u = v;
        const char *want = committed && u->sess_set ? u->sess : u->before;
        const char *cur = s->vars ? map_get(&s->vars->m, key) : NULL;
        if ((want == NULL) != (cur == NULL) || (want && strcmp(want, cur) != 0))
            (void)ses_set_var(s, key, want, 0, state, err, sizeof err); /* a value it took before */
        undo_free(u);
    }
    map_free(&txn);
    if (s->vars && !s->vars->m.count)
        ses_vars_free(s); /* all defaults again: hold nothing */
}

static void show_row(struct session *s, const char *a, const char *b, const char *c)
{
    const char *vals[3] = {a, b, c};
    size_t o = pgw_begin(&s->out, 'D');
    int n = c ? 3 : 1;
    buf_put_u16(&s->out, (uint16_t)n);
    for (int i = 0; i < n; i++) {
        buf_put_u32(&s->out, (uint32_t)strlen(vals[i]));
        buf_puts(&s->out, vals[i]);
    }
    pgw_end(&s->out, o);
}

void ses_show_describe(struct session *s, const char *name)
{
    struct pgw_field f[3] = {
        {"name", 0, 0, SQL_OID_TEXT, -1, -1, 0},
        {"setting", 0, 0, SQL_OID_TEXT, -1, -1, 0},
        {"description", 0, 0, SQL_OID_TEXT, -1, -1, 0},
    };
    if (strcasecmp(name, "all") == 0) {
        pgw_row_description(&s->out, f, 3);
        return;
    }
    const struct var_def *d = find(name);
    char lname[128];
    lower(lname, name, sizeof lname);
    f[0].name = d ? d->name : lname;
    pgw_row_description(&s->out, f, 1);
}

int ses_show_var(struct session *s, const char *name)
{
    if (strcasecmp(name, "all") == 0) {
        ses_show_describe(s, name);
        for (size_t i = 0; i < ARRAY_LEN(defs); i++) {
            const char *v = ses_get_var(s, defs[i].name);
            show_row(s, defs[i].name, v ? v : "", defs[i].desc);
        }
        char tag[32];
        snprintf(tag, sizeof tag, "SHOW");
        pgw_command_complete(&s->out, tag);
        return 0;
    }
    const char *v = ses_get_var(s, name);
    if (!v) {
        char err[200];
        snprintf(err, sizeof err, "unrecognized configuration parameter \"%s\"", name);
        ses_send_error(s, "42704", err, NULL, NULL);
        return -1;
    }
    ses_show_describe(s, name);
    show_row(s, v, NULL, NULL);
    pgw_command_complete(&s->out, "SHOW");
    return 0;
}
