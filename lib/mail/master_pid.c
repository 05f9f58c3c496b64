/*
 * master_pid - is a master running on this spool, and which (master_pid.h).
 */
#include "master_pid.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/sys.h"

/* master_pid_parse - the decimal PID at the start of text, else 0 */
static long master_pid_parse(const char *text)
{
    char *end;
    long pid = strtol(text, &end, 10);

    if (end == text || pid <= 0 || (*end != '\n' && *end != '\0'))
        return 0;
    return pid;
}

int master_pid_running(const char *queue_dir, long *pid_r)
{
    buf_t path = BUF_INIT;
    struct stat st;
    char text[32];
    ssize_t n;
    int fd, saved;

    *pid_r = 0;
    if (buf_printf(&path, "%s/%s", queue_dir, MASTER_PID_FILE) < 0) {
        buf_free(&path);
        errno = ENAMETOOLONG;
        return -1;
    }
    fd = open(buf_str(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    saved = errno;
    buf_free(&path);
    if (fd < 0) {
        errno = saved;
        return errno == ENOENT || errno == ENOTDIR ? 0 : -1;
    }
    if (fd_regular_or_close(fd, &st) < 0)
        return -1;
    if (flock(fd, LOCK_SH | LOCK_NB) == 0) {
        (void)close(fd);            /* closing drops our lock */
        return 0;
    }
    if (errno != EWOULDBLOCK) {
        saved = errno;
        (void)close(fd);
        errno = saved;
        return -1;
    }
    n = pread(fd, text, sizeof(text) - 1, 0);
    text[n > 0 ? n : 0] = '\0';
    (void)close(fd);
    *pid_r = master_pid_parse(text);
    return 1;
}
