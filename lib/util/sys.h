/*
 * sys - thin wrappers around system calls, the lowest module of lib/util:
 * bounded string copy, full reads/writes that retry on EINTR, fd flags,
 * clocks. It depends on nothing else in Tern, so log and everything above
 * may use it (this is what keeps util and log from depending on each other).
 */
#ifndef TERN_SYS_H
#define TERN_SYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* strlcpy semantics: always NUL-terminates (if size > 0), returns strlen(src);
   truncation happened when the return value >= size. */
size_t str_copy(char *dst, const char *src, size_t size);
/* write all n bytes (retrying EINTR/partial writes); 0 ok, -1 errno set */
int write_full(int fd, const void *p, size_t n);
/* pwrite all n bytes at offset */
int pwrite_full(int fd, const void *p, size_t n, off_t off);
/* read exactly n bytes; returns n, fewer at EOF, -1 on error */
ssize_t read_full(int fd, void *p, size_t n);
/* Is the open fd a regular file (st filled when not NULL)? 0 yes; -1
   no (errno EINVAL, or fstat's) and fd closed: for files opened with
   O_NOFOLLOW|O_NONBLOCK where a FIFO or device must not be read. */
struct stat;
int fd_regular_or_close(int fd, struct stat *st);
int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);
/* close every descriptor >= lowfd (close_range, else one by one); for a
   child just before exec */
void fd_close_from(int lowfd);
uint64_t time_now_usec(void);      /* CLOCK_REALTIME in microseconds */
uint64_t time_mono_msec(void);     /* CLOCK_MONOTONIC in milliseconds */

#endif
