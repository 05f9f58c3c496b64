/* util - allocation, durable file operations, parsing helpers (util.h). */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

static void *alloc_check(void *p, size_t n)
{
    if (p == NULL && n != 0)
        log_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *xmalloc(size_t n)
{
    return alloc_check(malloc(n ? n : 1), n ? n : 1);
}

void *xcalloc(size_t count, size_t size)
{
    if (count == 0 || size == 0)
        count = size = 1;
    return alloc_check(calloc(count, size), count * size);
}

void *xrealloc(void *p, size_t n)
{
    return alloc_check(realloc(p, n ? n : 1), n ? n : 1);
}

char *xstrdup(const char *s)
{
    return xstrndup(s, strlen(s));
}

char *xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *p = xmalloc(len + 1);
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}


int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int r = fsync(fd);
    int saved = errno;
    close(fd);
    errno = saved;
    return r;
}

int fsync_parent_dir(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return fsync_dir(".");
    if (slash == path)
        return fsync_dir("/");
    char *dir = xstrndup(path, (size_t)(slash - path));
    int r = fsync_dir(dir);
    int saved = errno;
    free(dir);
    errno = saved;
    return r;
}

int mkdir_p(const char *path, mode_t mode)
{
    size_t len = strlen(path);
    if (len == 0) {
        errno = EINVAL;
        return -1;
    }
    char *p = xstrdup(path);
    for (size_t i = 1; i <= len; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char saved = p[i];
        p[i] = '\0';
        if (mkdir(p, mode) < 0 && errno != EEXIST) {
            int e = errno;
            free(p);
            errno = e;
            return -1;
        }
        p[i] = saved;
    }
    free(p);
    struct stat st;
    if (stat(path, &st) < 0)
        return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int passwd_lookup(const char *name, struct passwd *pw, char **buf_r)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = hint > 0 ? (size_t)hint : 4096;
    struct passwd *res = NULL;
    *buf_r = NULL;
    for (;;) {
        char *buf = xmalloc(len);
        int rc = getpwnam_r(name, pw, buf, len, &res);
        if (rc == ERANGE && len < (1 << 20)) {
            free(buf);
            len *= 2;
            continue;
        }
        if (res != NULL) {
            *buf_r = buf;
            return 1;
        }
        free(buf);
        /* "not found" may come back as 0 or as one of these */
        if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF || rc == EPERM)
            return 0;
        errno = rc;
        return -1;
    }
}

int unix_connect_nonblock(const char *path, bool *in_progress)
{
    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (str_copy(sun.sun_path, path, sizeof(sun.sun_path)) >= sizeof(sun.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return sockaddr_connect_nonblock((struct sockaddr *)&sun, sizeof(sun),
                                     in_progress);
}

int sockaddr_connect_nonblock(const struct sockaddr *sa, socklen_t salen,
                              bool *in_progress)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    *in_progress = false;
    if (connect(fd, sa, salen) < 0) {
        if (errno == EINPROGRESS) {
            *in_progress = true;
            return fd;
        }
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}


int parse_long(const char *s, long min, long max, long *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* parse_scaled - digits followed by at most one unit letter from units */
static int parse_scaled(const char *s, const char *units, const long *mult,
                        long *out)
{
    if (s == NULL || !isdigit((unsigned char)*s))
        return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || v < 0)
        return -1;
    long m = 1;
    if (*end != '\0') {
        const char *u = strchr(units, tolower((unsigned char)*end));
        if (u == NULL || end[1] != '\0')
            return -1;
        m = mult[u - units];
    }
    if (v > LONG_MAX / m)
        return -1;
    *out = v * m;
    return 0;
}

int parse_time(const char *s, long *seconds_out)
{
    static const long mult[] = { 1, 60, 3600, 86400, 604800 };
    return parse_scaled(s, "smhdw", mult, seconds_out);
}

int parse_size(const char *s, long *bytes_out)
{
    static const long mult[] = { 1024L, 1024L * 1024, 1024L * 1024 * 1024 };
    return parse_scaled(s, "kmg", mult, bytes_out);
}

int parse_bool(const char *s, bool *out)
{
    static const char *yes[] = { "yes", "true", "on", "1" };
    static const char *no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

void str_lower(char *s)
{
    for (; *s; s++)
        *s = (char)tolower((unsigned char)*s);
}

bool str_eq_ci(const char *a, const char *b)
{
    return strcasecmp(a, b) == 0;
}

char *str_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
    return s;
}

size_t str_split_list(const char *s, char ***tokens_out)
{
    static const char *sep = ", \t\r\n";
    size_t n = 0, cap = 0;
    char **v = NULL;
    while (*s) {
        s += strspn(s, sep);
        size_t len = strcspn(s, sep);
        if (len == 0)
            break;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            v = xrealloc(v, cap * sizeof(*v));
        }
        v[n++] = xstrndup(s, len);
        s += len;
    }
    *tokens_out = v;
    return n;
}

/* str_list_next_word - see util.h */
long str_list_next_word(const char **sp)
{
    static const char sep[] = ", \t\r\n\f\v";
    const char *s = *sp + strspn(*sp, sep);
    int depth = 0;

    *sp = s;
    for (; *s != '\0'; s++) {
        if (*s == '{')
            depth++;
        else if (*s == '}' && --depth < 0)
            return -1;
        else if (depth == 0 && strchr(sep, *s) != NULL)
            break;
    }
    return depth == 0 ? (long)(s - *sp) : -1;
}

void strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}
