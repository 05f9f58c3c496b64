/*
 * util - small generic helpers with no mail knowledge: checked allocation,
 * durable filesystem operations (fsync of a directory, mkdir -p), user
 * lookup, non-blocking outbound connects (UNIX or any sockaddr), number
 * and list parsing. The system-call wrappers below it are in sys.h.
 *
 * Allocation failure is fatal (logged through log_fatal): callers never
 * check xmalloc() for NULL.
 */
#ifndef TERN_UTIL_H
#define TERN_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "sys.h"

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);

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
/* The same for any stream socket address (AF_INET, AF_INET6, AF_UNIX):
   *in_progress true means wait for writability, then read SO_ERROR. */
int sockaddr_connect_nonblock(const struct sockaddr *sa, socklen_t salen,
                              bool *in_progress);

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
/* the next word of a Postfix-style list (words separated by commas and
   whitespace; braces keep "inline:{a, b}" one word): moves *sp to the
   word's start and returns its length, 0 at the end, -1 on unbalanced
   braces */
long str_list_next_word(const char **sp);

#endif
