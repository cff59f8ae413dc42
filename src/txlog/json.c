/* txlog/json.c: one record as one JSON line (jansson), for `orbitctl
 * txlog dump`. Every value keeps its type: integers and reals as JSON
 * numbers, text as strings, blobs and non-UTF-8 text as hex objects. */
#include "txlog_int.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static json_t *hex_object(const char *key, const unsigned char *p, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    char *h = util_malloc(2 * n + 1);
    if (!h)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        h[2 * i] = digits[p[i] >> 4];
        h[2 * i + 1] = digits[p[i] & 15];
    }
    h[2 * n] = 0;
    json_t *o = json_pack("{s:s#}", key, h, (int)(2 * n));
    util_free(h);
    return o;
}

/* A JSON string, or {"text_hex": ...} when the bytes are not UTF-8. */
static json_t *text_json(const void *p, size_t n)
{
    json_t *s = json_stringn(p, n);
    return s ? s : hex_object("text_hex", p, n);
}

static json_t *value_json(const struct txl_value *v)
{
    switch (v->type) {
    case TXL_INTEGER:
        return json_integer(v->i);
    case TXL_REAL:
        if (isfinite(v->d))
            return json_real(v->d);
        return json_pack("{s:s}", "real", isnan(v->d) ? "NaN" : v->d > 0 ? "Infinity" : "-Infinity");
    case TXL_TEXT:
        return text_json(v->p, v->n);
    case TXL_BLOB:
        return hex_object("blob", v->p, v->n);
    default:
        return json_null();
    }
}

static json_t *values_json(const struct txl_value *v, uint32_t n)
{
    json_t *a = json_array();
    for (uint32_t i = 0; a && i < n; i++)
        if (json_array_append_new(a, value_json(&v[i]))) {
            json_decref(a);
            return NULL;
        }
    return a;
}

/* Adds key -> value, taking the reference; 0 ok. */
static int set_new(json_t *o, const char *key, json_t *v)
{
    return v ? json_object_set_new(o, key, v) : -1;
}

static json_t *change_json(const struct txl_change *ch)
{
    static const char *const ops[] = {"?", "insert", "update", "delete", "ddl"};
    json_t *o = json_object();
    if (!o)
        return NULL;
    int bad = set_new(o, "op", json_string(ops[ch->op <= TXL_DDL ? ch->op : 0]));
    if (ch->op == TXL_DDL) {
        bad |= set_new(o, "sql", text_json(ch->sql ? ch->sql : "", ch->sql ? ch->sql_len : 0));
    } else {
        bad |= set_new(o, "table", text_json(ch->table ? ch->table : "", ch->table ? strlen(ch->table) : 0));
        if (!ch->keyed) {
            if (ch->op != TXL_INSERT)
                bad |= set_new(o, ch->op == TXL_UPDATE ? "old_rowid" : "rowid", json_integer(ch->old_rowid));
            if (ch->op != TXL_DELETE)
                bad |= set_new(o, "rowid", json_integer(ch->new_rowid));
        } else if (ch->op != TXL_INSERT) {
            bad |= set_new(o, "key", values_json(ch->key, ch->nkey));
        }
        if (ch->op != TXL_DELETE)
            bad |= set_new(o, "values", values_json(ch->newv, ch->ncol));
        if (ch->oldv)
            bad |= set_new(o, "old_values", values_json(ch->oldv, ch->ncol));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int dump_cb(const char *p, size_t n, void *data)
{
    buf_append(data, p, n);
    return buf_ok(data) ? 0 : -1;
}

int txl_record_to_json(const struct txl_record *r, struct buf *out)
{
    char when[64];
    time_t secs = (time_t)(r->commit_us / 1000000);
    struct tm tm;
    if (gmtime_r(&secs, &tm) && tm.tm_year < 8100)
        snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%06uZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (unsigned)(r->commit_us % 1000000));
    else
        snprintf(when, sizeof when, "invalid");
    char origin[17];
    snprintf(origin, sizeof origin, "%016llx", (unsigned long long)r->origin);
    json_t *o = json_object();
    json_t *changes = json_array();
    int bad = !o || !changes;
    if (!bad) {
        bad |= set_new(o, "lsn", json_integer((json_int_t)r->lsn));
        bad |= set_new(o, "commit_us", json_integer((json_int_t)r->commit_us));
        bad |= set_new(o, "commit_time", json_string(when));
        bad |= set_new(o, "origin", json_string(origin));
        for (size_t i = 0; !bad && i < r->nchanges; i++)
            bad |= json_array_append_new(changes, change_json(&r->changes[i]));
        bad |= json_object_set(o, "changes", changes);
    }
    size_t start = out->len;
    if (!bad)
        bad = json_dump_callback(o, dump_cb, out, JSON_COMPACT | JSON_PRESERVE_ORDER) != 0;
    json_decref(changes);
    json_decref(o);
    if (!bad)
        buf_putc(out, '\n');
    if (bad || !buf_ok(out)) {
        if (buf_ok(out))
            out->len = start;
        return -1;
    }
    return 0;
}
