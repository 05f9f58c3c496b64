/* sys - thin system-call wrappers with no dependencies inside Tern (sys.h). */
#include "sys.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

size_t str_copy(char *dst, const char *src, size_t size)
{
    size_t len = strlen(src);
    if (size > 0) {
        size_t n = len < size - 1 ? len : size - 1;
        memcpy(dst, src, n);
        dst[n] = '\0';
    }
    return len;
}

int write_full(int fd, const void *p, size_t n)
{
    const char *cp = p;
    while (n > 0) {
        ssize_t w = write(fd, cp, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        cp += w;
        n -= (size_t)w;
    }
    return 0;
}

int pwrite_full(int fd, const void *p, size_t n, off_t off)
{
    const char *cp = p;
    while (n > 0) {
        ssize_t w = pwrite(fd, cp, n, off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        cp += w;
        off += w;
        n -= (size_t)w;
    }
    return 0;
}

ssize_t read_full(int fd, void *p, size_t n)
{
    char *cp = p;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, cp + got, n - got);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

int fd_regular_or_close(int fd, struct stat *st)
{
    struct stat own;
    struct stat *sp = st != NULL ? st : &own;

    int saved = EINVAL;

    if (fstat(fd, sp) < 0)
        saved = errno;
    else if (S_ISREG(sp->st_mode))
        return 0;
    (void)close(fd);
    errno = saved;
    return -1;
}

int fd_set_nonblock(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0)
        return -1;
    fl = on ? (fl | O_NONBLOCK) : (fl & ~O_NONBLOCK);
    return fcntl(fd, F_SETFL, fl);
}

int fd_set_cloexec(int fd, bool on)
{
    int fl = fcntl(fd, F_GETFD);
    if (fl < 0)
        return -1;
    fl = on ? (fl | FD_CLOEXEC) : (fl & ~FD_CLOEXEC);
    return fcntl(fd, F_SETFD, fl);
}

uint64_t time_now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t time_mono_msec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void fd_close_from(int lowfd)
{
#ifdef SYS_close_range
    if (syscall(SYS_close_range, (unsigned)lowfd, ~0U, 0) == 0)
        return;
#endif
    long max = sysconf(_SC_OPEN_MAX);

    for (int fd = lowfd; fd < (max > 0 ? max : 65536); fd++)
        (void)close(fd);
}
