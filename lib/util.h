/*
 * util - small generic helpers with no mail knowledge: checked allocation,
 * full reads/writes that retry on EINTR, durable filesystem operations
 * (fsync of a directory, mkdir -p), fd flags, time and number parsing.
 *
 * Allocation failure is fatal (logged through log_fatal): callers never
 * check xmalloc() for NULL.
 */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

/* strlcpy semantics: always NUL-terminates (if size > 0), returns strlen(src);
   truncation happened when the return value >= size. */
size_t str_copy(char *dst, const char *src, size_t size);

/* write all n bytes (retrying EINTR/partial writes); 0 ok, -1 errno set */
int write_full(int fd, const void *p, size_t n);
/* pwrite all n bytes at offset */
int pwrite_full(int fd, const void *p, size_t n, off_t off);
/* read exactly n bytes; returns n, fewer at EOF, -1 on error */
ssize_t read_full(int fd, void *p, size_t n);

/* open the directory and fsync it: makes a create/rename/unlink durable */
int fsync_dir(const char *path);
/* fsync the directory that contains path */
int fsync_parent_dir(const char *path);
/* mkdir -p; existing directories are fine */
int mkdir_p(const char *path, mode_t mode);

struct passwd;
/* getpwnam_r with a buffer that grows as needed. 1 found: pw's strings
   point into *buf_r, which the caller frees; 0 no such user; -1 lookup
   error (errno set). *buf_r is NULL unless 1 is returned. */
int passwd_lookup(const char *name, struct passwd *pw, char **buf_r);

/* Non-blocking, close-on-exec AF_UNIX stream connect. Returns the fd,
   *in_progress true when the connect has not completed yet; -1 with errno
   (EAGAIN: the listener's backlog is full; ENAMETOOLONG). */
int unix_connect_nonblock(const char *path, bool *in_progress);

int fd_set_nonblock(int fd, bool on);
int fd_set_cloexec(int fd, bool on);

uint64_t time_now_usec(void);      /* CLOCK_REALTIME in microseconds */
uint64_t time_mono_msec(void);     /* CLOCK_MONOTONIC in milliseconds */

/* Strict number parsing: whole string must be consumed. 0 ok, -1 error. */
int parse_long(const char *s, long min, long max, long *out);
/* "30" (seconds), "30s", "5m", "2h", "1d", "1w" -> seconds */
int parse_time(const char *s, long *seconds_out);
/* "10240000", "10k", "10m", "1g" (binary multiples) -> bytes */
int parse_size(const char *s, long *bytes_out);
/* yes/no/true/false/on/off/1/0 (case-insensitive) */
int parse_bool(const char *s, bool *out);

void str_lower(char *s);
bool str_eq_ci(const char *a, const char *b);
/* trims leading/trailing ASCII whitespace in place, returns s moved forward */
char *str_trim(char *s);
/* split a "a, b c" style list (separators: comma, space, tab, newline) into
   tokens; returns count; tokens are malloc'd, free with strv_free. */
size_t str_split_list(const char *s, char ***tokens_out);
void strv_free(char **v, size_t n);

#endif
