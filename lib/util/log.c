/*
 * log - Postfix-style log lines to syslog or an append-only file (log.h).
 * File lines look like syslog's: "Nov 24 03:59:49 host tern/smtpd[12]: text".
 * Journal lines (no syslog socket, started by systemd) go to stderr as
 * "<6>tern/smtpd[12]: text": journald reads the priority prefix. The copy
 * for a human on stderr is "smtpd: text".
 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <paths.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "sys.h"

#define LOG_LINE_MAX 4096

static char log_ident_buf[128] = "tern";
static char log_program[64] = "tern";  /* basename, for the stderr copy */
static char log_host[64] = "localhost";
static int log_fd = -1;          /* maillog_file, or -1 for syslog */
static bool log_to_stderr;
static bool log_syslog_open;
static int log_facility = LOG_MAIL;
static int log_verbose;
static int log_syslog_state = -1;   /* log_syslog_probe(); -1 not yet */

static const struct { const char *name; int value; } log_facilities[] = {
    { "mail", LOG_MAIL }, { "daemon", LOG_DAEMON }, { "user", LOG_USER },
    { "local0", LOG_LOCAL0 }, { "local1", LOG_LOCAL1 },
    { "local2", LOG_LOCAL2 }, { "local3", LOG_LOCAL3 },
    { "local4", LOG_LOCAL4 }, { "local5", LOG_LOCAL5 },
    { "local6", LOG_LOCAL6 }, { "local7", LOG_LOCAL7 },
};

void log_init(const char *syslog_name, const char *program)
{
    const char *base = strrchr(program, '/');
    base = base ? base + 1 : program;
    str_copy(log_program, base, sizeof(log_program));
    snprintf(log_ident_buf, sizeof(log_ident_buf), "%s/%s",
             syslog_name && *syslog_name ? syslog_name : "tern", base);
    if (gethostname(log_host, sizeof(log_host)) < 0)
        str_copy(log_host, "localhost", sizeof(log_host));
    log_host[sizeof(log_host) - 1] = '\0';
    char *dot = strchr(log_host, '.');
    if (dot)
        *dot = '\0';
    if (log_syslog_open) {
        closelog();
        log_syslog_open = false;
    }
}

/* log_file_open - the log file, never through a symlink and only a
   regular file: daemons open it as root, perhaps in a directory others
   can write */
static int log_file_open(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW
                        | O_NONBLOCK, 0640);

    if (fd < 0 || fd_regular_or_close(fd, NULL) < 0)
        return -1;
    return fd;
}

int log_set_file(const char *path)
{
    if (path == NULL || *path == '\0') {
        if (log_fd > 2)
            close(log_fd);
        log_fd = -1;
        return 0;
    }
    int fd;
    if (strcmp(path, "/dev/stdout") == 0)
        fd = STDOUT_FILENO;
    else if (strcmp(path, "/dev/stderr") == 0)
        fd = STDERR_FILENO;
    else
        fd = log_file_open(path);
    if (fd < 0)
        return -1;
    if (log_fd > 2 && log_fd != fd)
        close(log_fd);
    log_fd = fd;
    return 0;
}

/* log_dev_log_ok - does the syslog socket accept a connection? (the
   way glibc's openlog tries it: datagram, then stream) */
static bool log_dev_log_ok(void)
{
    static const int types[] = { SOCK_DGRAM, SOCK_STREAM };
    struct sockaddr_un sun;

    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    str_copy(sun.sun_path, _PATH_LOG, sizeof(sun.sun_path));
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        int fd = socket(AF_UNIX, types[i] | SOCK_CLOEXEC, 0), rc, err;

        if (fd < 0)
            return true;    /* cannot tell: let syslog() try */
        rc = connect(fd, (const struct sockaddr *)&sun, sizeof(sun));
        err = errno;
        (void)close(fd);
        if (rc == 0)
            return true;
        if (err != EPROTOTYPE)
            return false;
    }
    return false;
}

/* log_under_systemd - systemd started us with stderr worth writing to:
   JOURNAL_STREAM ("dev:inode") names our stderr, or INVOCATION_ID is
   set (a unit's process) and stderr is open */
static bool log_under_systemd(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    const char *inv = getenv("INVOCATION_ID");
    unsigned long long dev, ino;
    struct stat st;
    char extra;

    if (fstat(STDERR_FILENO, &st) < 0)
        return false;
    if (js != NULL && *js != '\0')
        return sscanf(js, "%llu:%llu%c", &dev, &ino, &extra) == 2
               && (unsigned long long)st.st_dev == dev
               && (unsigned long long)st.st_ino == ino;
    return inv != NULL && *inv != '\0';
}

int log_syslog_probe(void)
{
    if (log_fd >= 0)
        return LOG_SYSLOG_UNUSED;
    if (log_syslog_state < 0) {
        if (log_dev_log_ok())
            log_syslog_state = LOG_SYSLOG_OK;
        else if (log_under_systemd())
            log_syslog_state = LOG_SYSLOG_JOURNAL;
        else
            log_syslog_state = LOG_SYSLOG_LOST;
    }
    return log_syslog_state;
}

const char *log_syslog_path(void)
{
    return _PATH_LOG;
}

/* log_connect_now - connect to syslog now if that is the destination:
   after a chroot /dev/log is out of reach, and the connection made here
   is kept (openlog with LOG_NDELAY; later openlog calls reuse it) */
void log_connect_now(void)
{
    if (log_fd >= 0 || log_syslog_open)
        return;
    if (log_syslog_probe() == LOG_SYSLOG_JOURNAL)
        return;
    openlog(log_ident_buf, LOG_PID | LOG_NDELAY, log_facility);
    log_syslog_open = true;
}

void log_set_stderr(bool on)
{
    log_to_stderr = on;
}

int log_set_facility(const char *name)
{
    for (size_t i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++) {
        if (strcmp(name, log_facilities[i].name) == 0) {
            log_facility = log_facilities[i].value;
            return 0;
        }
    }
    return -1;
}

void log_set_verbose(int level)
{
    log_verbose = level;
}

int log_verbose_level(void)
{
    return log_verbose;
}

const char *log_ident(void)
{
    return log_ident_buf;
}

/* log_utf8_len - length of the well-formed UTF-8 sequence at p (RFC 3629:
   no overlong forms, no surrogates, nothing above U+10FFFF) and its code
   point in *cp; 0 when p does not start one */
static size_t log_utf8_len(const unsigned char *p, unsigned long *cp)
{
    size_t n, i;
    unsigned long c, min;

    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        n = 2; c = p[0] & 0x1fu; min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        n = 3; c = p[0] & 0x0fu; min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        n = 4; c = p[0] & 0x07u; min = 0x10000;
    } else {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xc0u) != 0x80)     /* also stops at the NUL */
            return 0;
        c = (c << 6) | (p[i] & 0x3fu);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    *cp = c;
    return n;
}

/* log_unsafe_cp - code points that control a terminal or a log viewer */
static bool log_unsafe_cp(unsigned long c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0x2028 || c == 0x2029
           || (c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069);
}

size_t log_scrub(char *text)
{
    unsigned char *r = (unsigned char *)text, *w = r;
    unsigned long cp;
    size_t n;

    while (*r != '\0') {
        if (*r < 0x80) {
            *w++ = (*r < 0x20 || *r == 0x7f) ? '?' : *r;
            r++;
        } else if ((n = log_utf8_len(r, &cp)) == 0) {
            *w++ = '?';
            r++;
        } else if (log_unsafe_cp(cp)) {
            *w++ = '?';
            r += n;
        } else {
            memmove(w, r, n);
            w += n;
            r += n;
        }
    }
    *w = '\0';
    return (size_t)(w - (unsigned char *)text);
}

/* log_write_line - one write() per line so concurrent writers never mix */
static void log_write_line(int fd, const char *prefix, size_t prefix_len,
                           const char *text, size_t text_len)
{
    char line[LOG_LINE_MAX + 256];
    size_t n = 0;
    memcpy(line, prefix, prefix_len);
    n = prefix_len;
    if (text_len > LOG_LINE_MAX)
        text_len = LOG_LINE_MAX;
    memcpy(line + n, text, text_len);
    n += text_len;
    line[n++] = '\n';
    int saved = errno;
    if (write_full(fd, line, n) < 0) {
        /* nowhere left to report it */
    }
    errno = saved;
}

static pid_t log_pid;            /* 0: not known (yet, or since a fork) */

static void log_pid_forget(void)
{
    log_pid = 0;
}

/* log_getpid - getpid() once per process, not once per line; a fork()ed
   child forgets the parent's (pthread_atfork) */
static pid_t log_getpid(void)
{
    static bool registered, unregistrable;

    if (log_pid != 0)
        return log_pid;
    if (!registered && !unregistrable) {
        if (pthread_atfork(NULL, NULL, log_pid_forget) == 0)
            registered = true;
        else
            unregistrable = true;
    }
    if (!registered)
        return getpid();
    log_pid = getpid();
    return log_pid;
}

void log_vmsg(int priority, const char *prefix, const char *fmt, va_list ap)
{
    int saved = errno;
    char text[LOG_LINE_MAX];
    int plen = snprintf(text, sizeof(text), "%s", prefix ? prefix : "");
    if (plen < 0)
        plen = 0;
    errno = saved;   /* keep %m meaningful */
    vsnprintf(text + plen, sizeof(text) - (size_t)plen, fmt, ap);
    /* control characters from the network never reach the log raw */
    size_t tlen = log_scrub(text);

    char head[256];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    char stamp[32];
    strftime(stamp, sizeof(stamp), "%b %e %H:%M:%S", &tm);
    int hlen = snprintf(head, sizeof(head), "%s %s %s[%ld]: ", stamp,
                        log_host, log_ident_buf, (long)log_getpid());
    if (hlen < 0 || (size_t)hlen >= sizeof(head))
        hlen = 0;

    if (log_fd >= 0) {
        log_write_line(log_fd, head, (size_t)hlen, text, tlen);
    } else if (log_syslog_probe() == LOG_SYSLOG_JOURNAL) {
        /* one stream for both: the human copy below says it all */
        if (!log_to_stderr) {
            hlen = snprintf(head, sizeof(head), "<%d>%s[%ld]: ",
                            LOG_PRI(priority), log_ident_buf,
                            (long)log_getpid());
            log_write_line(STDERR_FILENO, head, hlen > 0 ? (size_t)hlen : 0,
                           text, tlen);
        }
    } else {
        if (!log_syslog_open) {
            openlog(log_ident_buf, LOG_PID | LOG_NDELAY, log_facility);
            log_syslog_open = true;
        }
        syslog(priority, "%s", text);
    }
    if (log_to_stderr && log_fd != STDERR_FILENO) {
        int slen = snprintf(head, sizeof(head), "%s: ", log_program);
        log_write_line(STDERR_FILENO, head, slen > 0 ? (size_t)slen : 0,
                       text, tlen);
    }
    errno = saved;
}

#define LOG_FN(fn, prio, prefix)                      \
    void fn(const char *fmt, ...)                     \
    {                                                 \
        va_list ap;                                   \
        va_start(ap, fmt);                            \
        log_vmsg(prio, prefix, fmt, ap);              \
        va_end(ap);                                   \
    }

LOG_FN(log_info, LOG_INFO, "")
LOG_FN(log_warning, LOG_WARNING, "warning: ")
LOG_FN(log_error, LOG_ERR, "error: ")

void log_debug(const char *fmt, ...)
{
    if (log_verbose <= 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_DEBUG, "", fmt, ap);
    va_end(ap);
}

void log_fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_CRIT, "fatal: ", fmt, ap);
    va_end(ap);
    exit(1);
}

void log_panic(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vmsg(LOG_CRIT, "panic: ", fmt, ap);
    va_end(ap);
    abort();
}
