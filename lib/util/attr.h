/*
 * attr - the IPC codec: every request and reply between Tern daemons is a
 * list of named attributes. Wire form, per attribute: NAME '\0' VALUE '\0';
 * an empty name (a lone '\0') ends the list. Names are [a-z0-9_]{1,64};
 * values are any bytes except NUL, at most ATTR_MAX_VALUE; a message has
 * at most ATTR_MAX_COUNT attributes and ATTR_MAX_MSG bytes. Anything else
 * is a protocol error: the reader drops the peer and logs it.
 */
#ifndef TERN_ATTR_H
#define TERN_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include "buf.h"

#define ATTR_MAX_NAME   64
#define ATTR_MAX_VALUE  65536
#define ATTR_MAX_COUNT  256
#define ATTR_MAX_MSG    (256 * 1024)

struct attr {
    char *name;
    char *value;
};

typedef struct attr_list {
    struct attr *items;
    size_t count;
    size_t cap;
} attr_list_t;

void attr_list_init(attr_list_t *l);
void attr_list_free(attr_list_t *l);
void attr_list_reset(attr_list_t *l);
/* clear every value in place (secrets), before a reset or free */
void attr_list_wipe(attr_list_t *l);

/* add (duplicates allowed; attr_get returns the first) */
void attr_add(attr_list_t *l, const char *name, const char *value);
void attr_add_long(attr_list_t *l, const char *name, long value);
const char *attr_get(const attr_list_t *l, const char *name);
/* strict protocols: every attribute of in is one of names (a NULL-ended
   list), none twice, and the first nrequired names are all there;
   0 ok, -1 with a static *error_r */
int attr_check_names(const attr_list_t *in, const char *const *names,
                     size_t nrequired, const char **error_r);
/* 0 ok; -1 missing or not a number in [min,max] */
int attr_get_long(const attr_list_t *l, const char *name, long min, long max,
                  long *out);

/* Append the wire form to out. -1 if the list breaks a limit. */
int attr_encode(const attr_list_t *l, buf_t *out);

/*
 * Decode one message from data[0..len).
 *   1: complete; *consumed = bytes used; out filled (reset first).
 *   0: incomplete, need more bytes (no limit broken so far).
 *  -1: malformed or over a limit; *error_r says why.
 */
int attr_decode(const char *data, size_t len, attr_list_t *out,
                size_t *consumed, const char **error_r);

/*
 * Blocking helpers for request/reply over a UNIX stream socket, each
 * bounded by timeout_sec for the whole message.
 * attr_write_fd: 0 ok, -1 error/timeout.
 * attr_read_fd: 1 got a message, 0 clean EOF before any byte, -1 error,
 *   timeout or protocol violation (*error_r). inbuf carries bytes read
 *   past the message to the next call (keep one per connection).
 */
int attr_write_fd(int fd, const attr_list_t *l, int timeout_sec);
int attr_read_fd(int fd, buf_t *inbuf, attr_list_t *out, int timeout_sec,
                 const char **error_r);

#endif
