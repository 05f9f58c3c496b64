/*
 * attr_client - asynchronous attribute-list client (see attr_client.h).
 *
 * Every path that ends a connection goes through ac_shut() (timers off,
 * fd out of the loop and closed) before any user callback runs, and a
 * user callback is always the last thing a function does with the
 * object, so the callback may free it. Errors found inside
 * attr_client_request() are reported through a zero-delay timer, never
 * by calling back into the caller.
 *
 * Security: the peer is another daemon, but its bytes are not trusted:
 * input is buffered only while a request is in flight and only up to one
 * maximal message (attr_decode answers -1 as soon as a limit is broken).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "attr_client.h"
#include "buf.h"
#include "util.h"

#define AC_READ_CHUNK 16384

enum ac_state { AC_CONNECTING, AC_READY, AC_CLOSED };

struct attr_client {
    ev_loop_t *loop;
    int fd;
    enum ac_state state;
    unsigned events;            /* what the loop watches for on fd */
    attr_client_opts_t opts;
    buf_t out;                  /* the request not yet written */
    buf_t in;                   /* the reply so far */
    bool busy;                  /* a request is in flight */
    attr_client_reply_cb reply_cb;
    void *reply_arg;
    ev_timer_t connect_timer;
    ev_timer_t reply_timer;
    ev_timer_t idle_timer;
    ev_timer_t notify_timer;    /* a deferred error report */
    int pending_error;
    char reason[256];
};

static void ac_io(ev_loop_t *loop, int fd, unsigned events, void *arg);

/* ac_shut - the connection is over: timers off, fd closed, buffers freed */
static void ac_shut(attr_client_t *c)
{
    ev_timer_stop(c->loop, &c->connect_timer);
    ev_timer_stop(c->loop, &c->reply_timer);
    ev_timer_stop(c->loop, &c->idle_timer);
    if (c->fd >= 0) {
        ev_io_remove(c->loop, c->fd);
        close(c->fd);
        c->fd = -1;
    }
    c->state = AC_CLOSED;
    /* a request may carry a secret (auth_proto's password) */
    if (c->out.data != NULL)
        explicit_bzero(c->out.data, c->out.cap);
    buf_free(&c->out);
    buf_free(&c->in);
}

/* ac_notify - report c->pending_error to whoever waits: the request's
   callback if one is in flight, else on_close. Last use of c. */
static void ac_notify(attr_client_t *c)
{
    if (c->busy) {
        attr_client_reply_cb cb = c->reply_cb;

        c->busy = false;
        c->reply_cb = NULL;
        cb(c, c->pending_error, c->reason, NULL, c->reply_arg);
    } else if (c->opts.on_close != NULL) {
        c->opts.on_close(c, c->pending_error, c->reason, c->opts.arg);
    }
}

static void ac_vclose(attr_client_t *c, int error, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* ac_vclose - end the connection and remember why */
static void ac_vclose(attr_client_t *c, int error, const char *fmt, va_list ap)
{
    ac_shut(c);
    c->pending_error = error;
    (void)vsnprintf(c->reason, sizeof(c->reason), fmt, ap);
}

static void ac_fail(attr_client_t *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void ac_fail_later(attr_client_t *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* ac_fail - close and report now (only from a loop callback) */
static void ac_fail(attr_client_t *c, int error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ac_vclose(c, error, fmt, ap);
    va_end(ap);
    ac_notify(c);
}

/* ac_fail_later - close now, report from the loop */
static void ac_fail_later(attr_client_t *c, int error, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    ac_vclose(c, error, fmt, ap);
    va_end(ap);
    ev_timer_set(c->loop, &c->notify_timer, 0);
}

static void ac_notify_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    ac_notify(arg);
}

/* ac_watch - watch for input always, for output while connecting or while
   part of a request is unwritten. 0 ok, -1 errno. */
static int ac_watch(attr_client_t *c)
{
    unsigned want = EV_READ;

    if (c->state == AC_CONNECTING || c->out.len > 0)
        want |= EV_WRITE;
    if (want == c->events)
        return 0;
    if (ev_io_modify(c->loop, c->fd, want) < 0)
        return -1;
    c->events = want;
    return 0;
}

/* ac_flush - write what the socket takes. 0 ok (maybe partly), -1 errno */
static int ac_flush(attr_client_t *c)
{
    while (c->out.len > 0) {
        ssize_t n = send(c->fd, c->out.data, c->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return -1;
        }
        buf_consume(&c->out, (size_t)n);
    }
    return 0;
}

/* ac_arm_idle - start the idle clock: open, nothing in flight */
static void ac_arm_idle(attr_client_t *c)
{
    if (c->state == AC_READY && !c->busy && c->opts.idle_timeout_msec > 0)
        ev_timer_set(c->loop, &c->idle_timer, c->opts.idle_timeout_msec);
}

/* ac_reply - one complete reply in c->in; its first used bytes */
static void ac_reply(attr_client_t *c, attr_list_t *reply, size_t used)
{
    attr_client_reply_cb cb = c->reply_cb;
    void *arg = c->reply_arg;

    c->busy = false;
    c->reply_cb = NULL;
    ev_timer_stop(c->loop, &c->reply_timer);
    if (c->in.len > used || c->out.len > 0) {
        /* the reply is good, the connection is not: report the reply,
           then the close, from the loop */
        ac_fail_later(c, ATTR_CLIENT_UNEXPECTED, "%s",
                      c->out.len > 0 ? "reply before the request was sent"
                                     : "unexpected data after a reply");
    } else {
        buf_reset(&c->in);
        ac_arm_idle(c);
    }
    cb(c, ATTR_CLIENT_OK, "", reply, arg);
}

/* ac_read - drain the socket; decode once a request is in flight */
static void ac_read(attr_client_t *c)
{
    char chunk[AC_READ_CHUNK];

    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0) {
            ac_fail(c, ATTR_CLIENT_LOST, "%s", strerror(errno));
            return;
        }
        if (n == 0) {
            if (c->busy)
                ac_fail(c, ATTR_CLIENT_LOST, "unexpected end of input");
            else
                ac_fail(c, ATTR_CLIENT_EOF, "connection closed by peer");
            return;
        }
        if (!c->busy) {
            ac_fail(c, ATTR_CLIENT_UNEXPECTED,
                    "unexpected data: no request in flight");
            return;
        }
        if (buf_append(&c->in, chunk, (size_t)n) < 0) {
            ac_fail(c, ATTR_CLIENT_TOO_LARGE, "reply too large");
            return;
        }

        attr_list_t reply;
        const char *error = "malformed attribute message";
        size_t used = 0;
        int r;

        attr_list_init(&reply);
        r = attr_decode(c->in.data, c->in.len, &reply, &used, &error);
        if (r == 0) {
            attr_list_free(&reply);
            continue;
        }
        if (r < 0) {
            attr_list_free(&reply);
            if (c->in.len > ATTR_MAX_MSG || strcmp(error, "message too long") == 0)
                ac_fail(c, ATTR_CLIENT_TOO_LARGE, "reply too large");
            else
                ac_fail(c, ATTR_CLIENT_MALFORMED, "malformed reply: %s", error);
            return;
        }
        ac_reply(c, &reply, used);
        attr_list_free(&reply);     /* local: c may be gone */
        return;
    }
}

/* ac_connected - the connect finished: 0 ok, -1 reported (c may be gone) */
static int ac_connected(attr_client_t *c)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        ac_fail(c, ATTR_CLIENT_CONNECT, "connect: %s", strerror(err));
        return -1;
    }
    c->state = AC_READY;
    ev_timer_stop(c->loop, &c->connect_timer);
    ac_arm_idle(c);
    return 0;
}

static void ac_io(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    attr_client_t *c = arg;
    (void)loop;
    (void)fd;

    if (c->state == AC_CONNECTING) {
        if (!(events & (EV_WRITE | EV_ERROR)))
            return;
        if (ac_connected(c) < 0)
            return;
    }
    if (c->out.len > 0 && ac_flush(c) < 0) {
        ac_fail(c, ATTR_CLIENT_LOST, "write: %s", strerror(errno));
        return;
    }
    if (ac_watch(c) < 0) {
        ac_fail(c, ATTR_CLIENT_LOST, "epoll: %s", strerror(errno));
        return;
    }
    if (events & (EV_READ | EV_ERROR))
        ac_read(c);
}

static void ac_connect_timer(ev_loop_t *loop, void *arg)
{
    attr_client_t *c = arg;
    (void)loop;

    ac_fail(c, ATTR_CLIENT_CONNECT, "connect timed out after %u ms",
            c->opts.connect_timeout_msec);
}

static void ac_reply_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    ac_fail(arg, ATTR_CLIENT_TIMEOUT, "timeout waiting for a reply");
}

static void ac_idle_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    ac_fail(arg, ATTR_CLIENT_IDLE, "idle timeout");
}

/* ac_new - wrap a connected or connecting fd; NULL (errno, fd closed) if
   the loop refuses it */
static attr_client_t *ac_new(ev_loop_t *loop, int fd, bool connecting,
                             const attr_client_opts_t *opts)
{
    attr_client_t *c = xcalloc(1, sizeof(*c));
    int saved;

    c->loop = loop;
    c->fd = fd;
    c->state = connecting ? AC_CONNECTING : AC_READY;
    if (opts != NULL)
        c->opts = *opts;
    buf_init(&c->out, ATTR_MAX_MSG);
    buf_init(&c->in, ATTR_MAX_MSG + AC_READ_CHUNK);
    ev_timer_init(&c->connect_timer, ac_connect_timer, c);
    ev_timer_init(&c->reply_timer, ac_reply_timer, c);
    ev_timer_init(&c->idle_timer, ac_idle_timer, c);
    ev_timer_init(&c->notify_timer, ac_notify_timer, c);
    c->events = connecting ? EV_READ | EV_WRITE : EV_READ;
    if (ev_io_add(loop, fd, c->events, ac_io, c) < 0) {
        saved = errno;
        close(fd);
        free(c);
        errno = saved;
        return NULL;
    }
    if (connecting && c->opts.connect_timeout_msec > 0)
        ev_timer_set(loop, &c->connect_timer, c->opts.connect_timeout_msec);
    ac_arm_idle(c);
    return c;
}

/* attr_client_connect_unix - start a connection to a UNIX socket */
attr_client_t *attr_client_connect_unix(ev_loop_t *loop, const char *path,
                                        const attr_client_opts_t *opts)
{
    bool connecting;
    int fd = unix_connect_nonblock(path, &connecting);

    if (fd < 0)
        return NULL;
    return ac_new(loop, fd, connecting, opts);
}

/* attr_client_connect_addr - start a connection to any stream address */
attr_client_t *attr_client_connect_addr(ev_loop_t *loop,
                                        const struct sockaddr *sa,
                                        socklen_t salen,
                                        const attr_client_opts_t *opts)
{
    bool connecting;
    int fd = sockaddr_connect_nonblock(sa, salen, &connecting);

    if (fd < 0)
        return NULL;
    return ac_new(loop, fd, connecting, opts);
}

/* attr_client_request - send one request; the reply comes through cb */
int attr_client_request(attr_client_t *c, const attr_list_t *req,
                        unsigned timeout_msec, attr_client_reply_cb cb,
                        void *arg)
{
    if (c->state == AC_CLOSED) {
        errno = ENOTCONN;
        return -1;
    }
    if (c->busy) {
        errno = EBUSY;
        return -1;
    }
    buf_reset(&c->out);
    if (attr_encode(req, &c->out) < 0) {
        buf_reset(&c->out);
        errno = EMSGSIZE;
        return -1;
    }
    c->busy = true;
    c->reply_cb = cb;
    c->reply_arg = arg;
    ev_timer_stop(c->loop, &c->idle_timer);
    if (timeout_msec > 0)
        ev_timer_set(c->loop, &c->reply_timer, timeout_msec);
    if (c->state == AC_READY && ac_flush(c) < 0)
        ac_fail_later(c, ATTR_CLIENT_LOST, "write: %s", strerror(errno));
    else if (ac_watch(c) < 0)
        ac_fail_later(c, ATTR_CLIENT_LOST, "epoll: %s", strerror(errno));
    return 0;
}

/* attr_client_idle - would a request be accepted? */
bool attr_client_idle(const attr_client_t *c)
{
    return c->state != AC_CLOSED && !c->busy;
}

/* attr_client_free - close and release, silently */
void attr_client_free(attr_client_t *c)
{
    if (c == NULL)
        return;
    ac_shut(c);
    ev_timer_stop(c->loop, &c->notify_timer);
    free(c);
}
