/*
 * qmgr_deliver - qmgr's pool of attr_client connections to the delivery
 * agents' sockets (private/<transport>), one request (one recipient) in
 * flight per connection, up to $default_destination_concurrency_limit
 * connections per transport, idle ones closed after 10 s. Requests and
 * replies are attr.h lists (deliver.h names). A failed connect, a lost
 * connection, a garbled reply or no reply within $local_time_limit
 * (local) or $daemon_timeout (others) all count as DELIVER_DEFER for
 * that recipient. Per-destination limits are applied
 * when jobs are picked (qmgr_message.c).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "util/attr.h"
#include "util/attr_client.h"
#include "util/buf.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_request.h"
#include "util/log.h"
#include "util/util.h"
#include "qmgr.h"

#define CONN_IDLE_CLOSE_MSEC   10000   /* let idle agents recycle */
#define CONNECT_RETRY_MSEC     1000    /* after a full listen backlog */

struct xport;

struct conn {
    struct xport *xp;
    attr_client_t *ac;
    qmgr_msg_t *m;          /* the job while busy */
    size_t rcpt;
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

/* ---- connection life ---------------------------------------------------- */

/* conn_close - release a connection (its job must be settled already) */
static void conn_close(struct conn *c)
{
    struct xport *xp = c->xp;

    attr_client_free(c->ac);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        xp->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    xp->nconns--;
    free(c);
}

/* conn_time_limit - how long a delivery on c may take: $local_time_limit
   for local (one stalled mailbox must not hold a slot for hours),
   $daemon_timeout otherwise */
static long conn_time_limit(const struct conn *c)
{
    return c->xp->x == QMGR_XPORT_LOCAL ? var_local_time_limit
                                        : var_daemon_timeout;
}

/* conn_deadline_msec - conn_time_limit() for attr_client_request() */
static unsigned conn_deadline_msec(const struct conn *c)
{
    long sec = conn_time_limit(c);

    if (sec <= 0)
        return 1;           /* 0 would mean no deadline at all */
    return sec > (long)(UINT_MAX / 1000) ? UINT_MAX : (unsigned)sec * 1000;
}

/* conn_defer_reason - the recipient's deferral text for a client error */
static void conn_defer_reason(const struct conn *c, int error, char *out,
                              size_t size)
{
    const char *name = qmgr_xport_names[c->xp->x];

    switch (error) {
    case ATTR_CLIENT_CONNECT:
        snprintf(out, size, "delivery temporarily suspended");
        break;
    case ATTR_CLIENT_TIMEOUT:
        snprintf(out, size, "conversation with %s timed out", name);
        break;
    case ATTR_CLIENT_LOST:
        snprintf(out, size, "lost connection with %s", name);
        break;
    default:
        snprintf(out, size, "delivery agent protocol error");
        break;
    }
}

/* conn_closed - the agent closed an idle connection, or it broke */
static void conn_closed(attr_client_t *ac, int error, const char *reason,
                        void *arg)
{
    struct conn *c = arg;
    int x = c->xp->x;
    (void)ac;

    if (error != ATTR_CLIENT_IDLE && error != ATTR_CLIENT_EOF)
        log_warning("%s: %s", c->xp->path, reason);
    conn_close(c);
    qmgr_deliver_kick(x);
}

/* conn_replied - the agent's answer for the job in flight, or why none */
static void conn_replied(attr_client_t *ac, int error, const char *reason,
                         const attr_list_t *reply, void *arg)
{
    struct conn *c = arg;
    qmgr_msg_t *m = c->m;
    size_t rcpt = c->rcpt;
    int x = c->xp->x;
    int status;
    char why[96];
    (void)ac;

    c->m = NULL;
    if (error == ATTR_CLIENT_OK) {
        const char *dsn, *text;

        if (deliver_reply_get(reply, 0, &status, &dsn, &text) == 0) {
            qmgr_notify_rcpt_result(m, rcpt, status, dsn, text);
            qmgr_message_rcpt_done(m, rcpt, status, NULL);
            qmgr_deliver_kick(x);
            return;
        }
        log_warning("%s: reply without a valid %s attribute", c->xp->path,
                    DA_STATUS);
        error = ATTR_CLIENT_MALFORMED;
    } else if (error == ATTR_CLIENT_TIMEOUT) {
        log_warning("%s: timeout after %ld s waiting for a reply",
                    c->xp->path, conn_time_limit(c));
    } else {
        log_warning("%s: %s%s", c->xp->path, reason,
                    error == ATTR_CLIENT_LOST ? " (delivery agent crashed?)"
                                              : "");
    }
    conn_defer_reason(c, error, why, sizeof(why));
    conn_close(c);
    qmgr_message_rcpt_done(m, rcpt, DELIVER_DEFER, why);
    qmgr_deliver_kick(x);
}

/* conn_open - connect to the agent socket. 1 = new connection in *c_r,
   0 = try again later (backlog full), -1 = transport unusable (errno). */
static int conn_open(struct xport *xp, struct conn **c_r)
{
    struct conn *c = xcalloc(1, sizeof(*c));
    /* no connect limit of its own: the reply deadline covers the connect */
    attr_client_opts_t opts = { .idle_timeout_msec = CONN_IDLE_CLOSE_MSEC,
                                .on_close = conn_closed, .arg = c };

    c->xp = xp;
    c->ac = attr_client_connect_unix(dl_loop, xp->path, &opts);
    if (c->ac == NULL) {
        int saved = errno;

        free(c);
        errno = saved;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    c->next = xp->conns;
    if (xp->conns != NULL)
        xp->conns->prev = c;
    xp->conns = c;
    xp->nconns++;
    *c_r = c;
    return 1;
}

/* conn_send - hand one recipient to the agent on this connection */
static void conn_send(struct conn *c, qmgr_msg_t *m, size_t i)
{
    attr_list_t req;
    int r;

    attr_list_init(&req);
    qmgr_request_build(&m->qm, &i, 1, qmgr_xport_names[c->xp->x], "",
                       m->active_usec, &req);
    c->m = m;
    c->rcpt = i;
    r = attr_client_request(c->ac, &req, conn_deadline_msec(c),
                            conn_replied, c);
    attr_list_free(&req);
    if (r < 0) {
        /* only EMSGSIZE: dispatch picks idle connections */
        c->m = NULL;
        log_warning("%s: to=<%s>: delivery request too large", m->qm.qid,
                    m->qm.rcpts[i].address);
        qmgr_message_rcpt_done(m, i, DELIVER_DEFER,
                               "delivery request too large");
    }
}

/* ---- dispatching -------------------------------------------------------- */

static struct conn *xport_idle_conn(struct xport *xp)
{
    for (struct conn *c = xp->conns; c != NULL; c = c->next)
        if (attr_client_idle(c->ac))
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
