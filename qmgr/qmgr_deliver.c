/*
 * qmgr_deliver - non-blocking connections from qmgr to the delivery
 * agents' sockets (private/<transport>), one request in flight per
 * connection, up to $default_destination_concurrency_limit connections
 * per transport. Requests and replies are attr.h lists (deliver.h
 * names). A lost connection, a garbled reply or no reply within
 * $local_time_limit (local) or $daemon_timeout (others) all count as
 * DELIVER_DEFER for that recipient. Per-destination limits are applied
 * when jobs are picked (qmgr_message.c).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include "util/attr.h"
#include "util/buf.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/log.h"
#include "util/util.h"
#include "qmgr.h"

#define CONN_IDLE_CLOSE_MSEC   10000   /* let idle agents recycle */
#define CONNECT_RETRY_MSEC     1000    /* after a full listen backlog */
#define CONN_READ_CHUNK        4096

enum conn_state { CONN_IDLE, CONN_BUSY };

struct xport;

struct conn {
    struct xport *xp;
    int fd;
    enum conn_state state;
    bool connecting;        /* connect() still in progress */
    buf_t out;
    buf_t in;
    qmgr_msg_t *m;          /* the job while busy */
    size_t rcpt;
    ev_timer_t timer;       /* reply deadline, or idle close */
    struct conn *prev, *next;
};

struct xport {
    int x;
    char path[64];          /* "private/local" */
    struct conn *conns;
    size_t nconns;
    ev_timer_t kick_timer;
    ev_timer_t retry_timer;
};

static ev_loop_t *dl_loop;
static struct xport xports[QMGR_NXPORT];

static void conn_io(ev_loop_t *loop, int fd, unsigned events, void *arg);
static void conn_timer(ev_loop_t *loop, void *arg);

/* ---- connection life ---------------------------------------------------- */

/* conn_close - release a connection (its job must be settled already) */
static void conn_close(struct conn *c)
{
    struct xport *xp = c->xp;

    ev_timer_stop(dl_loop, &c->timer);
    ev_io_remove(dl_loop, c->fd);
    close(c->fd);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        xp->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    xp->nconns--;
    buf_free(&c->out);
    buf_free(&c->in);
    free(c);
}

/* conn_lost_reason - "lost connection with local" */
static void conn_lost_reason(const struct conn *c, char *out, size_t size)
{
    snprintf(out, size, "lost connection with %s", qmgr_xport_names[c->xp->x]);
}

/* conn_fail - log, defer the job in flight (if any), close, look for work */
static void conn_fail(struct conn *c, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void conn_fail(struct conn *c, const char *reason, const char *fmt, ...)
{
    struct xport *xp = c->xp;
    qmgr_msg_t *m = c->state == CONN_BUSY ? c->m : NULL;
    size_t rcpt = c->rcpt;
    buf_t text = BUF_INIT;
    va_list ap;

    va_start(ap, fmt);
    buf_vprintf(&text, fmt, ap);
    va_end(ap);
    log_warning("%s: %s", xp->path, buf_str(&text));
    buf_free(&text);
    conn_close(c);
    if (m != NULL)
        qmgr_message_rcpt_done(m, rcpt, DELIVER_DEFER, reason);
    qmgr_deliver_kick(xp->x);
}

/* conn_open - connect to the agent socket. 1 = new connection in *c_r,
   0 = try again later (backlog full), -1 = transport unusable (errno). */
static int conn_open(struct xport *xp, struct conn **c_r)
{
    struct conn *c;
    bool connecting;
    int fd, saved;

    fd = unix_connect_nonblock(xp->path, &connecting);
    if (fd < 0)
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    c = xcalloc(1, sizeof(*c));
    c->xp = xp;
    c->fd = fd;
    c->state = CONN_IDLE;
    c->connecting = connecting;
    buf_init(&c->out, ATTR_MAX_MSG);
    buf_init(&c->in, ATTR_MAX_MSG + CONN_READ_CHUNK);
    ev_timer_init(&c->timer, conn_timer, c);
    ev_timer_set(dl_loop, &c->timer, CONN_IDLE_CLOSE_MSEC);
    if (ev_io_add(dl_loop, fd, EV_READ, conn_io, c) < 0) {
        saved = errno;
        ev_timer_stop(dl_loop, &c->timer);
        close(fd);
        buf_free(&c->out);
        buf_free(&c->in);
        free(c);
        errno = saved;
        return -1;
    }
    c->next = xp->conns;
    if (xp->conns != NULL)
        xp->conns->prev = c;
    xp->conns = c;
    xp->nconns++;
    *c_r = c;
    return 1;
}

/* conn_flush - write what is queued; wait for EV_WRITE if the socket is full */
static void conn_flush(struct conn *c)
{
    while (c->out.len > 0 && !c->connecting) {
        ssize_t n = send(c->fd, c->out.data, c->out.len,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            char reason[96];
            conn_lost_reason(c, reason, sizeof(reason));
            conn_fail(c, reason, "write: %s", strerror(errno));
            return;
        }
        buf_consume(&c->out, (size_t)n);
    }
    if (ev_io_modify(dl_loop, c->fd,
                     EV_READ | (c->out.len > 0 ? EV_WRITE : 0u)) < 0)
        conn_fail(c, "delivery temporarily suspended",
                  "epoll: %s", strerror(errno));
}

/* conn_time_limit - how long a delivery on c may take: $local_time_limit
   for local (one stalled mailbox must not hold a slot for hours),
   $daemon_timeout otherwise */
static long conn_time_limit(const struct conn *c)
{
    return c->xp->x == QMGR_XPORT_LOCAL ? var_local_time_limit
                                        : var_daemon_timeout;
}

/* conn_send - hand one recipient to the agent on this connection */
static void conn_send(struct conn *c, qmgr_msg_t *m, size_t i)
{
    attr_list_t req;

    attr_list_init(&req);
    qmgr_request_build(&m->qm, i, &req);
    buf_reset(&c->out);
    if (attr_encode(&req, &c->out) < 0) {
        attr_list_free(&req);
        log_warning("%s: to=<%s>: delivery request too large", m->qm.qid,
                    m->qm.rcpts[i].address);
        qmgr_message_rcpt_done(m, i, DELIVER_DEFER,
                               "delivery request too large");
        return;
    }
    attr_list_free(&req);
    c->state = CONN_BUSY;
    c->m = m;
    c->rcpt = i;
    ev_timer_set(dl_loop, &c->timer, (uint64_t)conn_time_limit(c) * 1000);
    conn_flush(c);
}

/* conn_reply - one complete reply for the job in flight; false if the
   connection was dropped */
static bool conn_reply(struct conn *c, const attr_list_t *reply)
{
    qmgr_msg_t *m = c->m;
    size_t rcpt = c->rcpt;
    long status;

    if (attr_get_long(reply, DA_STATUS, 0, 9, &status) < 0 ||
        (status != DELIVER_OK && status != DELIVER_DEFER &&
         status != DELIVER_BOUNCE)) {
        conn_fail(c, "delivery agent protocol error",
                  "reply without a valid %s attribute", DA_STATUS);
        return false;
    }
    c->state = CONN_IDLE;
    c->m = NULL;
    ev_timer_set(dl_loop, &c->timer, CONN_IDLE_CLOSE_MSEC);
    qmgr_message_rcpt_done(m, rcpt, (int)status, NULL);
    qmgr_deliver_kick(c->xp->x);
    return true;
}

/* conn_parse - decode a buffered reply; false if the connection is gone */
static bool conn_parse(struct conn *c)
{
    attr_list_t reply;
    const char *error = "malformed reply";
    size_t used = 0;
    bool alive;
    int r;

    attr_list_init(&reply);
    r = attr_decode(c->in.data, c->in.len, &reply, &used, &error);
    if (r == 0) {
        attr_list_free(&reply);
        return true;
    }
    if (r < 0 || c->state != CONN_BUSY) {
        attr_list_free(&reply);
        conn_fail(c, "delivery agent protocol error", "%s: %s",
                  r < 0 ? "malformed reply" : "unexpected reply",
                  r < 0 ? error : "no request in flight");
        return false;
    }
    buf_consume(&c->in, used);
    alive = conn_reply(c, &reply);
    attr_list_free(&reply);
    if (alive && c->in.len > 0) {
        /* a well-behaved agent never sends ahead of a request */
        conn_fail(c, "delivery agent protocol error",
                  "unexpected data after a reply");
        return false;
    }
    return alive;
}

/* conn_read - drain the socket into the input buffer */
static void conn_read(struct conn *c)
{
    char chunk[CONN_READ_CHUNK];

    for (;;) {
        ssize_t n = read(c->fd, chunk, sizeof(chunk));

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n <= 0) {
            if (c->state == CONN_IDLE && n == 0) {
                conn_close(c);      /* agent went away between jobs */
                return;
            }
            char reason[96];
            conn_lost_reason(c, reason, sizeof(reason));
            conn_fail(c, reason, "%s (delivery agent crashed?)",
                      n == 0 ? "unexpected end of input"
                             : strerror(errno));
            return;
        }
        if (buf_append(&c->in, chunk, (size_t)n) < 0) {
            conn_fail(c, "delivery agent protocol error", "reply too large");
            return;
        }
        if (!conn_parse(c))
            return;
    }
}

static void conn_io(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    struct conn *c = arg;
    (void)loop;
    (void)fd;

    if ((events & EV_WRITE) && c->connecting) {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            conn_fail(c, "delivery temporarily suspended",
                      "connect: %s", strerror(err));
            return;
        }
        c->connecting = false;
    }
    if (events & EV_WRITE) {
        conn_flush(c);
        return;     /* read on the next round; c may be gone */
    }
    if (events & (EV_READ | EV_ERROR))
        conn_read(c);
}

/* conn_timer - reply deadline passed, or an idle connection is closed */
static void conn_timer(ev_loop_t *loop, void *arg)
{
    struct conn *c = arg;
    (void)loop;

    if (c->state == CONN_IDLE) {
        conn_close(c);
        return;
    }
    char reason[96];
    snprintf(reason, sizeof(reason), "conversation with %s timed out",
             qmgr_xport_names[c->xp->x]);
    conn_fail(c, reason, "timeout after %ld s waiting for a reply",
              conn_time_limit(c));
}

/* ---- dispatching -------------------------------------------------------- */

static struct conn *xport_idle_conn(struct xport *xp)
{
    for (struct conn *c = xp->conns; c != NULL; c = c->next)
        if (c->state == CONN_IDLE)
            return c;
    return NULL;
}

/* xport_connect_failed - no way to reach the agent: defer its work */
static void xport_connect_failed(struct xport *xp)
{
    buf_t reason = BUF_INIT;

    if (xp->nconns > 0)
        return;     /* the connections we have will carry on */
    buf_printf(&reason, "delivery temporarily suspended: connect to "
               "transport %s: %s", xp->path, strerror(errno));
    qmgr_message_defer_xport(xp->x, buf_str(&reason));
    buf_free(&reason);
}

/* xport_dispatch - give pending recipients to idle or new connections */
static void xport_dispatch(struct xport *xp)
{
    long limit = var_default_destination_concurrency_limit;

    if (limit < 1)
        limit = 1;
    while (qmgr_message_has_work(xp->x)) {
        struct conn *c = xport_idle_conn(xp);
        qmgr_msg_t *m;
        size_t i;

        if (c == NULL) {
            if (xp->nconns >= (size_t)limit)
                return;
            int r = conn_open(xp, &c);
            if (r < 0) {
                xport_connect_failed(xp);
                return;
            }
            if (r == 0) {
                if (xp->nconns == 0)
                    ev_timer_set(dl_loop, &xp->retry_timer,
                                 CONNECT_RETRY_MSEC);
                return;
            }
        }
        if (!qmgr_message_next_job(xp->x, &m, &i))
            return;
        conn_send(c, m, i);
    }
}

static void xport_kick_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    xport_dispatch(arg);
}

/* qmgr_deliver_kick - dispatch from the loop, never from inside a caller */
void qmgr_deliver_kick(int x)
{
    if (x < 0 || x >= QMGR_NXPORT || dl_loop == NULL)
        return;
    if (!ev_timer_active(&xports[x].kick_timer))
        ev_timer_set(dl_loop, &xports[x].kick_timer, 0);
}

void qmgr_deliver_init(ev_loop_t *loop)
{
    dl_loop = loop;
    for (int x = 0; x < QMGR_NXPORT; x++) {
        struct xport *xp = &xports[x];

        memset(xp, 0, sizeof(*xp));
        xp->x = x;
        snprintf(xp->path, sizeof(xp->path), "private/%s",
                 qmgr_xport_names[x]);
        ev_timer_init(&xp->kick_timer, xport_kick_timer, xp);
        ev_timer_init(&xp->retry_timer, xport_kick_timer, xp);
    }
}

/* qmgr_deliver_shutdown - close every connection (state is on disk) */
void qmgr_deliver_shutdown(void)
{
    if (dl_loop == NULL)
        return;
    for (int x = 0; x < QMGR_NXPORT; x++) {
        ev_timer_stop(dl_loop, &xports[x].kick_timer);
        ev_timer_stop(dl_loop, &xports[x].retry_timer);
        while (xports[x].conns != NULL)
            conn_close(xports[x].conns);
    }
}
