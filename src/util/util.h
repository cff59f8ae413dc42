/* util: allocation (with test fault injection), growable byte buffers,
 * string maps, structured logging and small helpers shared by every module.
 * Prefixes: util_ (alloc, misc), buf_ (buffers), map_ (hash maps), log_. */
#ifndef ORBIT_UTIL_H
#define ORBIT_UTIL_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#define MUSTCHECK __attribute__((warn_unused_result))
#define PRINTF_LIKE(a, b) __attribute__((format(printf, a, b)))
#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- allocation -------------------------------------------------------
 * All return NULL on failure; util_fail_after(n) makes the n-th following
 * allocation fail (n = 0 disables), for OOM tests. */
void *util_malloc(size_t n) MUSTCHECK;
void *util_calloc(size_t n, size_t size) MUSTCHECK;
void *util_realloc(void *p, size_t n) MUSTCHECK;
char *util_strdup(const char *s) MUSTCHECK;
char *util_strndup(const char *s, size_t n) MUSTCHECK;
void util_free(void *p);
void util_fail_after(long n);
/* Room for one more element in the array *arr of *cap elements of size
 * elem, n of them used: doubles it when full (first: the first size).
 * 0, or -1 out of memory (the array is unchanged). */
int util_grow(void *arr, size_t *cap, size_t n, size_t elem, size_t first) MUSTCHECK;

/* ---- buffers ----------------------------------------------------------
 * A growable byte buffer. Appends never fail visibly: on allocation
 * failure the buffer enters a sticky error state (oom = 1) and further
 * appends are ignored; check buf_ok() once after building. */
struct buf {
    char *data;
    size_t len;
    size_t cap;
    int oom;
};

void buf_init(struct buf *b);
void buf_free(struct buf *b);          /* releases memory, back to init state */
void buf_reset(struct buf *b);         /* len = 0, keeps capacity */
int buf_ok(const struct buf *b);
int buf_reserve(struct buf *b, size_t extra); /* 0 ok, -1 oom */
void buf_append(struct buf *b, const void *p, size_t n);
void buf_puts(struct buf *b, const char *s);     /* without NUL */
void buf_putsz(struct buf *b, const char *s);    /* with NUL */
void buf_putc(struct buf *b, char c);
void buf_put_u16(struct buf *b, uint16_t v);     /* network byte order */
void buf_put_u32(struct buf *b, uint32_t v);
void buf_put_u64(struct buf *b, uint64_t v);
void buf_printf(struct buf *b, const char *fmt, ...) PRINTF_LIKE(2, 3);
void buf_vprintf(struct buf *b, const char *fmt, va_list ap);
void buf_consume(struct buf *b, size_t n);       /* drop n bytes from front */
void buf_set_u32(struct buf *b, size_t off, uint32_t v); /* patch in place */
/* Take the data out: returns data (caller frees with util_free) and
 * leaves b empty. */
char *buf_steal(struct buf *b, size_t *len);

static inline uint32_t util_get_u32(const void *p)
{
    const unsigned char *c = p;
    return ((uint32_t)c[0] << 24) | ((uint32_t)c[1] << 16) | ((uint32_t)c[2] << 8) | c[3];
}
static inline uint16_t util_get_u16(const void *p)
{
    const unsigned char *c = p;
    return (uint16_t)(((uint16_t)c[0] << 8) | c[1]);
}
static inline uint64_t util_get_u64(const void *p)
{
    return ((uint64_t)util_get_u32(p) << 32) | util_get_u32((const char *)p + 4);
}

/* ---- string-keyed hash map (open addressing) --------------------------
 * Keys are copied; values are owned by the caller. */
struct map_entry {
    char *key;
    void *val;
    uint64_t hash;
};
struct map {
    struct map_entry *slots;
    size_t cap;   /* power of two, 0 when empty */
    size_t count;
    size_t used;  /* count + tombstones */
};

void map_init(struct map *m);
void map_free(struct map *m); /* frees keys and slots, not values */
void *map_get(const struct map *m, const char *key);
/* Insert or replace; returns 0, or -1 on OOM. *old gets the replaced value
 * (or NULL) when old is not NULL. */
int map_put(struct map *m, const char *key, void *val, void **old) MUSTCHECK;
void *map_del(struct map *m, const char *key); /* returns removed value */
/* Iterate: for (size_t i = 0; map_next(m, &i, &k, &v);) */
int map_next(const struct map *m, size_t *iter, const char **key, void **val);
uint64_t util_hash(const void *p, size_t n);

/* ---- logging ----------------------------------------------------------
 * One line per event: ts=... level=... event=... then key=value fields.
 * log_write's fmt produces the fields part (logfmt). Use log_quote() to
 * make a safe quoted value of arbitrary text. Thread-safe. */
enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR, LOG_FATAL };
void log_write(enum log_level lvl, const char *event, const char *fmt, ...) PRINTF_LIKE(3, 4);
int log_set_file(const char *path); /* NULL = stderr; 0 ok, -1 error */
void log_set_level(enum log_level lvl);
int log_parse_level(const char *s, enum log_level *out);
/* Writes a logfmt-quoted copy of s (at most cap-1 bytes) into dst. */
const char *log_quote(char *dst, size_t cap, const char *s);

#define log_debug(ev, ...) log_write(LOG_DEBUG, ev, __VA_ARGS__)
#define log_info(ev, ...) log_write(LOG_INFO, ev, __VA_ARGS__)
#define log_warn(ev, ...) log_write(LOG_WARN, ev, __VA_ARGS__)
#define log_error(ev, ...) log_write(LOG_ERROR, ev, __VA_ARGS__)

/* ---- misc -------------------------------------------------------------- */
uint64_t util_now_ns(void);       /* CLOCK_MONOTONIC */
/* Inside a spin loop: let the CPU's other thread run and save power for
 * a moment (x86: a few PAUSE instructions, about a microsecond). */
static inline void util_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    for (int i = 0; i < 32; i++)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}
uint64_t util_wall_us(void);      /* CLOCK_REALTIME, microseconds */
int util_random_bytes(void *dst, size_t n) MUSTCHECK; /* 0 ok */
/* Parse "HOST:PORT" (or ":PORT", or "PORT"); host may be [v6]. */
int util_parse_hostport(const char *s, char *host, size_t hostcap, int *port) MUSTCHECK;
/* A blocking TCP connection to "HOST:PORT" (names resolved), made within
 * timeout_ms; reads and writes then time out after timeout_ms too (client
 * tools and cluster requests, never the event loops). fd, or -1 with err
 * ("cannot connect to HOST:PORT: ..."). */
int util_tcp_connect(const char *hostport, unsigned timeout_ms, char *err, size_t errcap) MUSTCHECK;
/* Parse sizes like "64kB", "1GB", "1048576" into bytes. */
int util_parse_size(const char *s, uint64_t *out) MUSTCHECK;
/* Parse durations like "30s", "500ms", "5min", "1.5s", "0" (ms when
 * unitless; us, ms, s, min, h, d), rounded to the nearest ms as
 * PostgreSQL does. */
int util_parse_duration_ms(const char *s, uint64_t *out_ms) MUSTCHECK;
int util_strcaseeq(const char *a, const char *b);
void util_strlcpy(char *dst, const char *src, size_t cap);
/* Copy the file src to dst, a new file (0600; fails if dst exists), 1 MiB
 * at a time, without fsync. 0 ok; -1 with errno set (dst may be partial). */
int util_copy_file(const char *src, const char *dst) MUSTCHECK;
/* fsync a file or a directory by path. 0 ok; -1 with errno set. */
int util_fsync_path(const char *path);
/* Replace this process with a fresh run of its own executable (same pid,
 * argv and environment); every descriptor above stderr is closed by the
 * exec, so listening ports and file locks are free for the new image.
 * Returns only on failure (-1, errno set). */
int util_reexec(char *const *argv);
/* pthread_cond_timedwait for at most ns from now (mu held); the caller
 * re-checks its condition. */
void util_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ns);

#endif
