/* util/misc.c: clocks, randomness, small parsers and a file copy shared by
 * modules. */
#include "util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

uint64_t util_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t util_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000;
}

int util_random_bytes(void *dst, size_t n)
{
    return RAND_bytes(dst, (int)n) == 1 ? 0 : -1;
}

int util_strcaseeq(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

void util_strlcpy(char *dst, const char *src, size_t cap)
{
    if (!cap)
        return;
    size_t n = strlen(src);
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, src, n);
    dst[n] = 0;
}

static int parse_port(const char *s, int *port)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

int util_parse_hostport(const char *s, char *host, size_t hostcap, int *port)
{
    const char *colon;
    if (!s || !*s)
        return -1;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return -1;
        size_t n = (size_t)(close - s - 1);
        if (n + 1 > hostcap)
            return -1;
        memcpy(host, s + 1, n);
        host[n] = 0;
        return parse_port(close + 2, port);
    }
    colon = strrchr(s, ':');
    if (!colon) {
        /* just a port */
        if (hostcap < 1)
            return -1;
        host[0] = 0;
        return parse_port(s, port);
    }
    size_t n = (size_t)(colon - s);
    if (n + 1 > hostcap)
        return -1;
    memcpy(host, s, n);
    host[n] = 0;
    return parse_port(colon + 1, port);
}

int util_parse_size(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    uint64_t mul = 1;
    if (!*end || strcasecmp(end, "b") == 0)
        mul = 1;
    else if (strcasecmp(end, "kb") == 0 || strcasecmp(end, "k") == 0)
        mul = 1024ULL;
    else if (strcasecmp(end, "mb") == 0 || strcasecmp(end, "m") == 0)
        mul = 1024ULL * 1024;
    else if (strcasecmp(end, "gb") == 0 || strcasecmp(end, "g") == 0)
        mul = 1024ULL * 1024 * 1024;
    else if (strcasecmp(end, "tb") == 0)
        mul = 1024ULL * 1024 * 1024 * 1024;
    else
        return -1;
    if (v > UINT64_MAX / mul)
        return -1;
    *out = v * mul;
    return 0;
}

int util_parse_duration_ms(const char *s, uint64_t *out_ms)
{
    static const struct {
        const char *unit;
        double ms;
    } units[] = {{"", 1}, {"us", 0.001}, {"ms", 1}, {"s", 1000}, {"min", 60000}, {"h", 3600000}, {"d", 86400000}};
    char *end;
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    if (!isdigit((unsigned char)*s) && !(*s == '.' && isdigit((unsigned char)s[1])))
        return -1;
    errno = 0;
    double v = strtod(s, &end);
    if (errno)
        return -1;
    while (isspace((unsigned char)*end))
        end++;
    size_t ulen = 0;
    while (isalpha((unsigned char)end[ulen]))
        ulen++;
    for (size_t i = ulen; end[i]; i++)
        if (!isspace((unsigned char)end[i]))
            return -1;
    for (size_t i = 0; i < ARRAY_LEN(units); i++) {
        if (strlen(units[i].unit) != ulen || strncasecmp(end, units[i].unit, ulen) != 0)
            continue;
        /* PostgreSQL takes fractions and rounds to the nearest ms (half to even) */
        double ms = rint(v * units[i].ms);
        if (!(ms >= 0 && ms < 18446744073709551616.0))
            return -1;
        *out_ms = (uint64_t)ms;
        return 0;
    }
    return -1;
}

int util_fsync_path(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc ? -1 : 0;
}

int util_copy_file(const char *src, const char *dst)
{
    enum { CHUNK = 1 << 20 };
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return -1;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    char *chunk = out < 0 ? NULL : util_malloc(CHUNK);
    int rc = chunk ? 0 : -1, saved = out < 0 ? errno : ENOMEM;
    while (rc == 0) {
        ssize_t r = read(in, chunk, CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rc = r < 0 ? -1 : 0;
            saved = errno;
            break;
        }
        for (ssize_t off = 0; off < r;) {
            ssize_t w = write(out, chunk + off, (size_t)(r - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                rc = -1;
                saved = w < 0 ? errno : EIO;
                break;
            }
            off += w;
        }
    }
    util_free(chunk);
    if (out >= 0 && close(out) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    close(in);
    if (rc)
        errno = saved;
    return rc;
}

int util_tcp_connect(const char *hostport, unsigned timeout_ms, char *err, size_t errcap)
{
    char host[256], port_s[16];
    int port = 0;
    if (util_parse_hostport(hostport, host, sizeof host, &port) || port <= 0) {
        snprintf(err, errcap, "invalid address \"%s\" (expected HOST:PORT)", hostport);
        return -1;
    }
    snprintf(port_s, sizeof port_s, "%d", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ai = NULL;
    int rc = getaddrinfo(host, port_s, &hints, &ai);
    if (rc) {
        snprintf(err, errcap, "cannot resolve %s: %s", host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, saved = 0;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        if (connect(fd, a->ai_addr, a->ai_addrlen) == 0)
            break;
        if (errno == EINPROGRESS) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            int soerr = 0;
            socklen_t sl = sizeof soerr;
            if (poll(&p, 1, (int)timeout_ms) == 1 &&
                getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) == 0 && soerr == 0)
                break;
            saved = soerr ? soerr : ETIMEDOUT;
        } else {
            saved = errno;
        }
        close(fd);
        fd = -1;
    }
    freeaddrinfo(ai);
    if (fd < 0) {
        snprintf(err, errcap, "cannot connect to %s: %s", hostport, strerror(saved ? saved : EIO));
        return -1;
    }
    (void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    (void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    return fd;
}

int util_reexec(char *const *argv)
{
    /* close-on-exec rather than close: other threads run until the exec,
     * and a descriptor number they still use must not be reused meanwhile */
    if (close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) {
        DIR *d = opendir("/proc/self/fd");
        if (!d)
            return -1;
        for (struct dirent *e; (e = readdir(d));) {
            int fd = atoi(e->d_name);
            if (fd > 2 && fd != dirfd(d))
                (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        }
        closedir(d);
    }
    execv("/proc/self/exe", argv);
    return -1;
}

void util_cond_wait_ns(pthread_cond_t *cv, pthread_mutex_t *mu, uint64_t ns)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t n = (uint64_t)ts.tv_nsec + ns;
    ts.tv_sec += (time_t)(n / 1000000000ull);
    ts.tv_nsec = (long)(n % 1000000000ull);
    pthread_cond_timedwait(cv, mu, &ts);
}
