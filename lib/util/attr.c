/*
 * attr - the IPC codec (see attr.h for the wire form and limits).
 *
 * The decoder is incremental and strict: it answers 0 ("need more") only
 * while the bytes seen so far are a prefix of some valid message, and -1
 * as soon as a limit is broken, so a hostile peer is dropped early. The
 * fd helpers bound the whole message by one deadline, not per read.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "attr.h"
#include "util.h"

#define ATTR_READ_CHUNK 16384

/* attr_list_init - empty list */
void attr_list_init(attr_list_t *l)
{
    l->items = NULL;
    l->count = 0;
    l->cap = 0;
}

/* attr_list_reset - drop all attributes, keep the array */
void attr_list_reset(attr_list_t *l)
{
    for (size_t i = 0; i < l->count; i++) {
        free(l->items[i].name);
        free(l->items[i].value);
    }
    l->count = 0;
}

/* attr_list_wipe - clear every value in place */
void attr_list_wipe(attr_list_t *l)
{
    for (size_t i = 0; i < l->count; i++)
        if (l->items[i].value)
            explicit_bzero(l->items[i].value, strlen(l->items[i].value));
}

/* attr_list_free - release everything */
void attr_list_free(attr_list_t *l)
{
    attr_list_reset(l);
    free(l->items);
    attr_list_init(l);
}

/* attr_add_n - append a copy of name and value[0..vlen) */
static void attr_add_n(attr_list_t *l, const char *name, size_t nlen,
                       const char *value, size_t vlen)
{
    if (l->count == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        l->items = xrealloc(l->items, ncap * sizeof(*l->items));
        l->cap = ncap;
    }
    l->items[l->count].name = xstrndup(name, nlen);
    l->items[l->count].value = xstrndup(value, vlen);
    l->count++;
}

/* attr_add - append name=value (duplicates allowed) */
void attr_add(attr_list_t *l, const char *name, const char *value)
{
    attr_add_n(l, name, strlen(name), value, strlen(value));
}

/* attr_add_long - append a decimal number */
void attr_add_long(attr_list_t *l, const char *name, long value)
{
    char tmp[32];

    snprintf(tmp, sizeof(tmp), "%ld", value);
    attr_add(l, name, tmp);
}

/* attr_get - value of the first attribute called name, or NULL */
const char *attr_get(const attr_list_t *l, const char *name)
{
    for (size_t i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0)
            return l->items[i].value;
    return NULL;
}

/* attr_get_long - numeric attribute within [min,max] */
int attr_get_long(const attr_list_t *l, const char *name, long min, long max,
                  long *out)
{
    const char *v = attr_get(l, name);

    if (v == NULL)
        return -1;
    return parse_long(v, min, max, out);
}

/* attr_name_char - may c appear in an attribute name? */
static bool attr_name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
}

/* attr_name_valid - [a-z0-9_]{1,ATTR_MAX_NAME} */
static bool attr_name_valid(const char *s)
{
    size_t n = 0;

    for (; s[n]; n++)
        if (n >= ATTR_MAX_NAME || !attr_name_char((unsigned char)s[n]))
            return false;
    return n > 0;
}

/* attr_encode - append the wire form of l to out; -1 if over a limit */
int attr_encode(const attr_list_t *l, buf_t *out)
{
    size_t start = out->len, total = 1;

    if (l->count > ATTR_MAX_COUNT)
        return -1;
    for (size_t i = 0; i < l->count; i++) {
        const struct attr *a = &l->items[i];
        size_t vlen = strlen(a->value);

        if (!attr_name_valid(a->name) || vlen > ATTR_MAX_VALUE)
            return -1;
        total += strlen(a->name) + 1 + vlen + 1;
    }
    if (total > ATTR_MAX_MSG)
        return -1;
    for (size_t i = 0; i < l->count; i++) {
        const struct attr *a = &l->items[i];

        if (buf_append(out, a->name, strlen(a->name) + 1) < 0
            || buf_append(out, a->value, strlen(a->value) + 1) < 0) {
            buf_truncate(out, start);
            return -1;
        }
    }
    if (buf_putc(out, '\0') < 0) {
        buf_truncate(out, start);
        return -1;
    }
    return 0;
}

/*
 * attr_scan_field - scan one name or value field starting at *pos.
 * Returns 1 with *pos just past its NUL, 0 if the input ended first
 * (and the field may still end within limits), -1 on a violation.
 */
static int attr_scan_field(const char *data, size_t len, size_t *pos,
                           bool is_name, const char **error_r)
{
    size_t max = is_name ? ATTR_MAX_NAME : ATTR_MAX_VALUE;
    size_t start = *pos;

    for (size_t i = start; i < len; i++) {
        unsigned char c = (unsigned char)data[i];

        if (c == '\0') {
            *pos = i + 1;
            return 1;
        }
        if (i - start >= max) {
            *error_r = is_name ? "attribute name too long"
                               : "attribute value too long";
            return -1;
        }
        if (is_name && !attr_name_char(c)) {
            *error_r = "invalid character in attribute name";
            return -1;
        }
    }
    return 0;
}

/*
 * attr_decode_scan - walk one message. Returns 1 with *end set, 0 if
 * incomplete (*pos_r/need_r: how far we got and how many more bytes even
 * the shortest completion needs), -1 on error.
 */
static int attr_decode_scan(const char *data, size_t len, attr_list_t *out,
                            size_t *end, size_t *pos_r, size_t *need_r,
                            const char **error_r)
{
    size_t pos = 0;
    int r;

    for (;;) {
        size_t name_at = pos, value_at;

        if (pos >= len) {
            *pos_r = pos;
            *need_r = 1;                    /* the terminator */
            return 0;
        }
        if (data[pos] == '\0') {
            *end = pos + 1;
            return 1;
        }
        if (out->count >= ATTR_MAX_COUNT) {
            *error_r = "too many attributes";
            return -1;
        }
        if ((r = attr_scan_field(data, len, &pos, true, error_r)) <= 0) {
            *pos_r = len;
            *need_r = 3;                    /* name NUL, value NUL, end */
            return r;
        }
        value_at = pos;
        if ((r = attr_scan_field(data, len, &pos, false, error_r)) <= 0) {
            *pos_r = len;
            *need_r = 2;                    /* value NUL, end */
            return r;
        }
        if (pos + 1 > ATTR_MAX_MSG) {
            *error_r = "message too long";
            return -1;
        }
        attr_add_n(out, data + name_at, value_at - name_at - 1,
                   data + value_at, pos - value_at - 1);
    }
}

/* attr_decode - decode one message from data[0..len) (tri-state) */
int attr_decode(const char *data, size_t len, attr_list_t *out,
                size_t *consumed, const char **error_r)
{
    const char *err = "malformed attribute message";
    size_t end = 0, pos = 0, need = 0;
    int r;

    attr_list_reset(out);
    /* never look further than one maximal message plus one byte */
    if (len > ATTR_MAX_MSG + 1)
        len = ATTR_MAX_MSG + 1;
    r = attr_decode_scan(data, len, out, &end, &pos, &need, &err);
    if (r == 1 && end > ATTR_MAX_MSG)
        r = -1, err = "message too long";
    if (r == 0 && pos + need > ATTR_MAX_MSG)
        r = -1, err = "message too long";
    if (r == 1) {
        *consumed = end;
        return 1;
    }
    attr_list_reset(out);
    if (r < 0 && error_r)
        *error_r = err;
    return r;
}

/* attr_deadline_left - milliseconds until deadline (0 if passed) */
static int attr_deadline_left(uint64_t deadline)
{
    uint64_t now = time_mono_msec();

    if (now >= deadline)
        return 0;
    if (deadline - now > INT_MAX)
        return INT_MAX;
    return (int)(deadline - now);
}

/* attr_deadline - absolute monotonic deadline timeout_sec from now */
static uint64_t attr_deadline(int timeout_sec)
{
    return time_mono_msec() + (uint64_t)(timeout_sec > 0 ? timeout_sec : 0)
           * 1000;
}

/* attr_wait - poll fd for events until deadline; 1 ready, 0 timeout, -1 */
static int attr_wait(int fd, short events, uint64_t deadline)
{
    struct pollfd p = { .fd = fd, .events = events };

    for (;;) {
        int r = poll(&p, 1, attr_deadline_left(deadline));

        if (r > 0)
            return 1;
        if (r == 0)
            return 0;
        if (errno != EINTR)
            return -1;
    }
}

/* attr_send - one non-blocking write; send() with MSG_NOSIGNAL on sockets */
static ssize_t attr_send(int fd, const char *p, size_t n, bool *is_sock)
{
    if (*is_sock) {
        ssize_t r = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);

        if (r >= 0 || errno != ENOTSOCK)
            return r;
        *is_sock = false;
    }
    return write(fd, p, n);
}

/* attr_write_fd - send one message, whole message bounded by timeout */
int attr_write_fd(int fd, const attr_list_t *l, int timeout_sec)
{
    uint64_t deadline = attr_deadline(timeout_sec);
    buf_t out = BUF_INIT;
    bool is_sock = true;
    size_t off = 0;
    int ret = -1;

    if (attr_encode(l, &out) < 0) {
        errno = EMSGSIZE;
        goto done;
    }
    while (off < out.len) {
        ssize_t n;
        int w = attr_wait(fd, POLLOUT, deadline);

        if (w <= 0) {
            if (w == 0)
                errno = ETIMEDOUT;
            goto done;
        }
        n = attr_send(fd, out.data + off, out.len - off, &is_sock);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            goto done;
        }
        off += (size_t)n;
    }
    ret = 0;
done:
    buf_free(&out);
    return ret;
}

/* attr_fill - read what is available into inbuf; 1 got bytes, 0 EOF, -1 */
static int attr_fill(int fd, buf_t *inbuf, uint64_t deadline,
                     const char **error_r)
{
    char chunk[ATTR_READ_CHUNK];

    for (;;) {
        ssize_t n;
        int w = attr_wait(fd, POLLIN, deadline);

        if (w <= 0) {
            *error_r = w == 0 ? "timeout" : "poll error";
            if (w == 0)
                errno = ETIMEDOUT;
            return -1;
        }
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
                continue;
            *error_r = "read error";
            return -1;
        }
        if (n == 0)
            return 0;
        if (buf_append(inbuf, chunk, (size_t)n) < 0) {
            *error_r = "input buffer full";
            return -1;
        }
        return 1;
    }
}

/* attr_read_fd - receive one message; 1 ok, 0 clean EOF, -1 error */
int attr_read_fd(int fd, buf_t *inbuf, attr_list_t *out, int timeout_sec,
                 const char **error_r)
{
    uint64_t deadline = attr_deadline(timeout_sec);
    const char *dummy;

    if (error_r == NULL)
        error_r = &dummy;
    for (;;) {
        size_t used = 0;
        int r = attr_decode(inbuf->data ? inbuf->data : "", inbuf->len, out,
                            &used, error_r);

        if (r == 1) {
            buf_consume(inbuf, used);
            return 1;
        }
        if (r < 0)
            return -1;
        r = attr_fill(fd, inbuf, deadline, error_r);
        if (r < 0)
            return -1;
        if (r == 0) {
            if (inbuf->len == 0)
                return 0;
            *error_r = "unexpected EOF inside a message";
            return -1;
        }
    }
}

/* attr_check_names - see attr.h */
int attr_check_names(const attr_list_t *in, const char *const *names,
                     size_t nrequired, const char **error_r)
{
    size_t n = 0;

    while (names[n])
        n++;
    for (size_t i = 0; i < in->count; i++) {
        size_t k;

        for (k = 0; k < n; k++)
            if (strcmp(in->items[i].name, names[k]) == 0)
                break;
        if (k == n) {
            *error_r = "unknown attribute";
            return -1;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp(in->items[j].name, in->items[i].name) == 0) {
                *error_r = "duplicate attribute";
                return -1;
            }
    }
    for (size_t k = 0; k < nrequired; k++)
        if (attr_get(in, names[k]) == NULL) {
            *error_r = "missing attribute";
            return -1;
        }
    return 0;
}
