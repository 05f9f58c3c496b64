/*
 * qmgr_deliver - qmgr's pool of attr_client connections to the delivery
 * agents' sockets (private/<transport>), one request in flight per
 * connection. A request carries up to <transport>_destination_recipient_limit
 * recipients of one message for one destination (qmgr_queue.c picks
 * it); connections are opened only for a request that its destination's
 * window allows, at most $default_process_limit per transport (master
 * queues the rest for the service's maxproc), idle ones closed after
 * 10 s. Requests and replies are attr.h lists (deliver.h names). A
 * failed connect, a lost connection, a garbled reply or no reply within
 * $local_time_limit (local) or $daemon_timeout (others) all count as
 * DELIVER_DEFER for the recipients concerned, and as a failure for the
 * destination's window. A transport whose socket does not exist defers
 * its mail with "mail transport unavailable".
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

struct qmgr_conn {
    qmgr_transport_t *t;
    attr_client_t *ac;
    bool busy;
    struct qmgr_job job;    /* while busy */
    struct qmgr_conn *prev, *next;
};

static ev_loop_t *dl_loop;

/* ---- connection life ---------------------------------------------------- */

/* conn_close - release a connection (its job must be settled already) */
static void conn_close(struct qmgr_conn *c)
{
    qmgr_transport_t *t = c->t;

    attr_client_free(c->ac);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    t->nconns--;
    free(c);
}

/* conn_time_limit - how long a delivery on c may take: $local_time_limit
   for local (one stalled mailbox must not hold a slot for hours),
   $daemon_timeout otherwise */
static long conn_time_limit(const struct qmgr_conn *c)
{
    return strcmp(c->t->name, "local") == 0 ? var_local_time_limit
                                            : var_daemon_timeout;
}

/* conn_deadline_msec - conn_time_limit() for attr_client_request() */
static unsigned conn_deadline_msec(const struct qmgr_conn *c)
{
    long sec = conn_time_limit(c);

    if (sec <= 0)
        return 1;           /* 0 would mean no deadline at all */
    return sec > (long)(UINT_MAX / 1000) ? UINT_MAX : (unsigned)sec * 1000;
}

/* conn_defer_reason - the recipients' deferral text for a client error */
static void conn_defer_reason(const struct qmgr_conn *c, int error,
                              char *out, size_t size)
{
    const char *name = c->t->name;

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
    struct qmgr_conn *c = arg;
    qmgr_transport_t *t = c->t;
    (void)ac;

    if (error != ATTR_CLIENT_IDLE && error != ATTR_CLIENT_EOF)
        log_warning("%s: %s", t->path, reason);
    conn_close(c);
    qmgr_deliver_kick(t);
}

/* job_settle - every recipient of the job with the same outcome */
static void job_settle(struct qmgr_job *job, int status, const char *why)
{
    qmgr_msg_t *m = job->m;
    size_t n = job->n;

    /* m may be finished (freed) by the last one */
    for (size_t k = 0; k < n; k++)
        qmgr_message_rcpt_done(m, job->idx[k], status, why);
}

static void xport_dispatch(qmgr_transport_t *t);

/* conn_replied - the agent's answer for the job in flight, or why none */
static void conn_replied(attr_client_t *ac, int error, const char *reason,
                         const attr_list_t *reply, void *arg)
{
    struct qmgr_conn *c = arg;
    qmgr_transport_t *t = c->t;
    struct qmgr_job job = c->job;
    char why[96];
    (void)ac;

    c->busy = false;
    if (error == ATTR_CLIENT_OK) {
        int status[DELIVER_MAX_RCPTS];
        const char *dsn[DELIVER_MAX_RCPTS], *text[DELIVER_MAX_RCPTS];
        bool got[DELIVER_MAX_RCPTS];
        size_t ngot = 0;
        const char *dead_why = NULL;

        for (size_t k = 0; k < job.n; k++) {
            got[k] = deliver_reply_get(reply, k, &status[k], &dsn[k],
                                       &text[k]) == 0;
            if (got[k]) {
                ngot++;
                if (dead_why == NULL && status[k] != DELIVER_OK)
                    dead_why = text[k];
            }
        }
        if (ngot > 0) {
            if (ngot < job.n)
                log_warning("%s: reply lacks the status of %zu of %zu "
                            "recipients", t->path, job.n - ngot, job.n);
            qmgr_queue_job_done(&job, deliver_reply_is_dest_dead(reply) > 0
                                      ? QF_DEAD : QF_OK, dead_why);
            /* the agent is idle now: give it its next job before the
               bookkeeping below (log lines, perhaps the message's end),
               so it does not wait for a loop iteration. Safe here: this
               is the top of a reply callback (attr_client has settled
               the connection), and the statuses are read already. */
            xport_dispatch(t);
            for (size_t k = 0; k < job.n; k++) {
                qmgr_msg_t *m = job.m;
                size_t i = job.idx[k];

                if (got[k]) {
                    qmgr_notify_rcpt_result(m, i, status[k], dsn[k], text[k]);
                    qmgr_message_rcpt_done(m, i, status[k], NULL);
                } else {
                    qmgr_message_rcpt_done(m, i, DELIVER_DEFER,
                                           "delivery agent protocol error");
                }
            }
            qmgr_deliver_kick(t);
            return;
        }
        log_warning("%s: reply without a valid %s attribute", t->path,
                    DA_STATUS);
        error = ATTR_CLIENT_MALFORMED;
    } else if (error == ATTR_CLIENT_TIMEOUT) {
        log_warning("%s: timeout after %ld s waiting for a reply",
                    t->path, conn_time_limit(c));
    } else {
        log_warning("%s: %s%s", t->path, reason,
                    error == ATTR_CLIENT_LOST ? " (delivery agent crashed?)"
                                              : "");
    }
    conn_defer_reason(c, error, why, sizeof(why));
    conn_close(c);
    /* an agent we could not reach says nothing about the destination */
    qmgr_queue_job_done(&job, error == ATTR_CLIENT_CONNECT ? QF_NONE
                                                          : QF_FAILED, why);
    job_settle(&job, DELIVER_DEFER, why);
    qmgr_deliver_kick(t);
}

/* conn_open - connect to the agent socket. 1 = new connection in *c_r,
   0 = try again later (backlog full), -1 = transport unusable (errno). */
static int conn_open(qmgr_transport_t *t, struct qmgr_conn **c_r)
{
    struct qmgr_conn *c = xcalloc(1, sizeof(*c));
    /* no connect limit of its own: the reply deadline covers the connect */
    attr_client_opts_t opts = { .idle_timeout_msec = CONN_IDLE_CLOSE_MSEC,
                                .on_close = conn_closed, .arg = c };

    c->t = t;
    c->ac = attr_client_connect_unix(dl_loop, t->path, &opts);
    if (c->ac == NULL) {
        int saved = errno;

        free(c);
        errno = saved;
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    t->nconns++;
    *c_r = c;
    return 1;
}

/* conn_send - hand the job to the agent on this connection */
static void conn_send(struct qmgr_conn *c, const struct qmgr_job *job)
{
    attr_list_t req;
    int r;

    attr_list_init(&req);
    qmgr_request_build(&job->m->qm, job->idx, job->n, c->t->name,
                       job->d->nexthop, job->m->active_usec, &req);
    c->job = *job;
    c->busy = true;
    r = attr_client_request(c->ac, &req, conn_deadline_msec(c),
                            conn_replied, c);
    attr_list_free(&req);
    if (r < 0) {
        /* only EMSGSIZE: dispatch picks idle connections */
        struct qmgr_job failed = c->job;

        c->busy = false;
        log_warning("%s: to=<%s>: delivery request too large",
                    failed.m->qm.qid, failed.m->qm.rcpts[failed.idx[0]].address);
        qmgr_queue_job_done(&failed, QF_NONE, NULL);
        job_settle(&failed, DELIVER_DEFER, "delivery request too large");
    }
}

/* ---- dispatching -------------------------------------------------------- */

static struct qmgr_conn *xport_idle_conn(qmgr_transport_t *t)
{
    for (struct qmgr_conn *c = t->conns; c != NULL; c = c->next)
        if (!c->busy && attr_client_idle(c->ac))
            return c;
    return NULL;
}

/* xport_connect_failed - no way to reach the agent: defer its work */
static void xport_connect_failed(qmgr_transport_t *t)
{
    buf_t reason = BUF_INIT;
    int err = errno;

    if (t->nconns > 0)
        return;     /* the connections we have will carry on */
    if (err == ENOENT)
        buf_puts(&reason, "mail transport unavailable");
    else
        buf_printf(&reason, "delivery temporarily suspended: connect to "
                   "transport %s: %s", t->path, strerror(err));
    log_warning("%s: %s", t->path, err == ENOENT
                ? "no such socket: is the transport in master.conf?"
                : strerror(err));
    qmgr_transport_defer_all(t, buf_str(&reason));
    buf_free(&reason);
}

/* xport_dispatch - give ready requests to idle or new connections */
static void xport_dispatch(qmgr_transport_t *t)
{
    size_t maxconns = var_default_process_limit > 0
                      ? (size_t)var_default_process_limit : 1;

    while (qmgr_transport_has_work(t)) {
        struct qmgr_conn *c = xport_idle_conn(t);
        struct qmgr_job job;

        if (c == NULL) {
            if (t->nconns >= maxconns)
                return;
            int r = conn_open(t, &c);
            if (r < 0) {
                xport_connect_failed(t);
                return;
            }
            if (r == 0) {
                if (t->nconns == 0)
                    ev_timer_set(dl_loop, &t->retry_timer,
                                 CONNECT_RETRY_MSEC);
                return;
            }
        }
        if (!qmgr_queue_next_job(t, &job))
            return;
        conn_send(c, &job);
    }
}

static void xport_kick_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    xport_dispatch(arg);
}

/* qmgr_deliver_kick - dispatch from the loop, never from inside a caller */
void qmgr_deliver_kick(qmgr_transport_t *t)
{
    if (t == NULL || dl_loop == NULL)
        return;
    if (!ev_timer_active(&t->kick_timer))
        ev_timer_set(dl_loop, &t->kick_timer, 0);
}

void qmgr_deliver_transport_init(qmgr_transport_t *t)
{
    ev_timer_init(&t->kick_timer, xport_kick_timer, t);
    ev_timer_init(&t->retry_timer, xport_kick_timer, t);
}

void qmgr_deliver_init(ev_loop_t *loop)
{
    dl_loop = loop;
}

/* qmgr_deliver_shutdown - close every connection (state is on disk) */
void qmgr_deliver_shutdown(void)
{
    if (dl_loop == NULL)
        return;
    for (qmgr_transport_t *t = qmgr_transports; t != NULL; t = t->next) {
        ev_timer_stop(dl_loop, &t->kick_timer);
        ev_timer_stop(dl_loop, &t->retry_timer);
        while (t->conns != NULL)
            conn_close(t->conns);
    }
}
