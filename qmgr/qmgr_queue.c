/*
 * qmgr_queue - the in-memory shape of the scheduler: transport (a name
 * from routing, its socket private/<name>) -> destination queue (its
 * next hop; or, with a recipient limit of 1, one recipient) -> entries
 * (recipients of one message waiting there, in activation order).
 *
 * Fairness: a transport keeps a ring of its ready destinations (work
 * waiting, window open, alive); each request is taken from the head one,
 * which then goes to the tail, so one slow or dead destination never
 * holds up another, and within a destination messages go first come,
 * first served. A destination at its window leaves the ring until a
 * request there ends.
 *
 * Dead-site back-off: an agent's dest_status=dead, or failed requests
 * (no usable reply) that close the window to 1 and then fail
 * $..._failed_cohort_limit times in a row, mark the destination dead
 * for $minimal_backoff_time (the latter only for next-hop queues: a
 * per-recipient queue, as local's, is one mailbox that a stalled
 * delivery already holds to a window of 1): its
 * waiting recipients, and those that arrive meanwhile, are deferred at
 * once ("delivery temporarily suspended: <reason>") instead of one
 * failing attempt each. Nothing here touches the queue file: deferring
 * only leaves a recipient 'R' for the next activation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "qmgr.h"

qmgr_transport_t *qmgr_transports;

qmgr_transport_t *qmgr_transport_get(const char *name)
{
    qmgr_transport_t *t;

    for (t = qmgr_transports; t != NULL; t = t->next)
        if (strcmp(t->name, name) == 0)
            return t;
    t = xcalloc(1, sizeof(*t));
    str_copy(t->name, name, sizeof(t->name));
    snprintf(t->path, sizeof(t->path), "private/%s", t->name);
    qmgr_transport_limits(t->name, &t->lim);
    t->dests = htable_create();
    qmgr_deliver_transport_init(t);
    t->next = qmgr_transports;
    qmgr_transports = t;
    log_debug("transport %s: concurrency %ld (initial %ld), %ld "
              "recipient%s per request", t->name, t->lim.concurrency,
              t->lim.initial, t->lim.recipients,
              t->lim.recipients == 1 ? "" : "s");
    return t;
}

/* ---- the ring of ready destinations -------------------------------------- */

static bool dest_is_dead(qmgr_dest_t *d)
{
    if (d->dead_until == 0)
        return false;
    if (time_now_usec() < d->dead_until)
        return true;
    d->dead_until = 0;          /* back to life: start slowly again */
    free(d->dead_reason);
    d->dead_reason = NULL;
    qmgr_window_init(&d->win, &d->t->lim);
    return false;
}

static void ring_remove(qmgr_dest_t *d)
{
    qmgr_transport_t *t = d->t;
    qmgr_dest_t *prev = NULL;

    if (!d->ready)
        return;
    for (qmgr_dest_t *p = t->ring_head; p != NULL; prev = p, p = p->rnext) {
        if (p != d)
            continue;
        if (prev != NULL)
            prev->rnext = d->rnext;
        else
            t->ring_head = d->rnext;
        if (t->ring_tail == d)
            t->ring_tail = prev;
        break;
    }
    d->rnext = NULL;
    d->ready = false;
}

static void ring_append(qmgr_dest_t *d)
{
    qmgr_transport_t *t = d->t;

    d->rnext = NULL;
    if (t->ring_tail != NULL)
        t->ring_tail->rnext = d;
    else
        t->ring_head = d;
    t->ring_tail = d;
    d->ready = true;
}

/* dest_update - on the ring exactly when a request may go there */
static void dest_update(qmgr_dest_t *d)
{
    bool ready = d->npending > 0 && d->dead_until == 0
                 && qmgr_window_open(&d->win, d->busy);

    if (ready && !d->ready) {
        ring_append(d);
        qmgr_deliver_kick(d->t);
    } else if (!ready && d->ready) {
        ring_remove(d);
    }
}

static void dest_free(void *p)
{
    qmgr_dest_t *d = p;

    while (d->head != NULL) {
        struct qmgr_entry *e = d->head;

        d->head = e->next;
        free(e->idx);
        free(e);
    }
    free(d->key);
    free(d->nexthop);
    free(d->dead_reason);
    free(d);
}

/* dest_maybe_free - forget an unused destination (a dead one is kept
   until its time is over, so new mail for it is deferred at once) */
static void dest_maybe_free(qmgr_dest_t *d)
{
    if (d->npending > 0 || d->busy > 0 || d->on_dead_list)
        return;     /* dead ones: qmgr_queue_sweep */
    ring_remove(d);
    htable_remove(d->t->dests, d->key);
    dest_free(d);
}

/* ---- queueing --------------------------------------------------------- */

bool qmgr_queue_add(qmgr_msg_t *m, size_t i, const route_t *r,
                    const char **reason_r)
{
    qmgr_transport_t *t = qmgr_transport_get(r->transport);
    buf_t key = BUF_INIT;
    qmgr_dest_t *d;
    struct qmgr_entry *e;

    qmgr_dest_key(m->qm.rcpts[i].address, r->nexthop, t->lim.recipients,
                  &key);
    d = htable_find(t->dests, buf_str(&key));
    if (d == NULL) {
        d = xcalloc(1, sizeof(*d));
        d->key = buf_strdup(&key);
        d->nexthop = xstrdup(r->nexthop);
        d->t = t;
        qmgr_window_init(&d->win, &t->lim);
        htable_add(t->dests, d->key, d);
    }
    buf_free(&key);
    if (dest_is_dead(d)) {
        *reason_r = d->dead_reason;
        return false;
    }
    e = d->tail;
    if (e == NULL || e->m != m) {
        e = xcalloc(1, sizeof(*e));
        e->m = m;
        if (d->tail != NULL)
            d->tail->next = e;
        else
            d->head = e;
        d->tail = e;
    }
    if (e->n == e->cap) {
        e->cap = e->cap ? e->cap * 2 : 4;
        e->idx = xrealloc(e->idx, e->cap * sizeof(*e->idx));
    }
    e->idx[e->n++] = i;
    d->npending++;
    m->npending++;
    m->rstate[i] = QR_PENDING;
    dest_update(d);
    return true;
}

bool qmgr_queue_next_job(qmgr_transport_t *t, struct qmgr_job *job)
{
    qmgr_dest_t *d;
    struct qmgr_entry *e;
    size_t n;

    while ((d = t->ring_head) != NULL) {
        ring_remove(d);
        if (dest_is_dead(d) || d->head == NULL
            || !qmgr_window_open(&d->win, d->busy))
            continue;       /* not ready after all (cannot happen) */
        e = d->head;
        n = e->n < (size_t)t->lim.recipients ? e->n
                                              : (size_t)t->lim.recipients;
        if (n > DELIVER_MAX_RCPTS)
            n = DELIVER_MAX_RCPTS;
        job->m = e->m;
        job->d = d;
        job->n = n;
        for (size_t k = 0; k < n; k++) {
            job->idx[k] = e->idx[k];
            e->m->rstate[e->idx[k]] = QR_BUSY;
        }
        e->m->npending -= n;
        e->m->nbusy += n;
        d->npending -= n;
        e->n -= n;
        if (e->n > 0) {
            memmove(e->idx, e->idx + n, e->n * sizeof(*e->idx));
        } else {
            d->head = e->next;
            if (d->head == NULL)
                d->tail = NULL;
            free(e->idx);
            free(e);
        }
        d->busy++;
        dest_update(d);     /* to the tail: the others get a turn first */
        return true;
    }
    return false;
}

/* dest_defer_pending - every waiting recipient of d, with reason */
static void dest_defer_pending(qmgr_dest_t *d, const char *reason)
{
    struct qmgr_entry *e = d->head;

    /* detached first: finishing a message must not see them */
    d->head = d->tail = NULL;
    d->npending = 0;
    ring_remove(d);
    while (e != NULL) {
        struct qmgr_entry *next = e->next;
        qmgr_msg_t *m = e->m;
        size_t n = e->n;
        size_t *idx = e->idx;

        free(e);
        /* the message is finished (freed) at its last recipient at most */
        for (size_t k = 0; k < n; k++)
            qmgr_message_rcpt_done(m, idx[k], DELIVER_DEFER, reason);
        free(idx);
        e = next;
    }
}

/* dest_die - no more attempts for a while; defer what waits */
static void dest_die(qmgr_dest_t *d, const char *why)
{
    buf_t reason = BUF_INIT;
    long wait = var_minimal_backoff_time > 0 ? var_minimal_backoff_time : 1;

    buf_printf(&reason, "delivery temporarily suspended: %s",
               why != NULL && *why != '\0' ? why : "destination unreachable");
    free(d->dead_reason);
    d->dead_reason = buf_strdup(&reason);
    buf_free(&reason);
    d->dead_until = time_now_usec() + (uint64_t)wait * 1000000;
    if (!d->on_dead_list) {
        d->on_dead_list = true;
        d->dnext = d->t->dead;
        d->t->dead = d;
    }
    log_info("%s/%s: destination dead for %ld s: %s", d->t->name,
             d->nexthop, wait, d->dead_reason);
    dest_defer_pending(d, d->dead_reason);
}

void qmgr_queue_job_done(struct qmgr_job *job, enum qmgr_feedback fb,
                         const char *reason)
{
    qmgr_dest_t *d = job->d;

    if (d->busy > 0)
        d->busy--;
    if (d->dead_until == 0) {
        if (fb == QF_OK)
            qmgr_window_success(&d->win, &d->t->lim);
        else if (fb == QF_DEAD)
            dest_die(d, reason);
        else if (fb == QF_FAILED && qmgr_window_failure(&d->win, &d->t->lim)
                 && d->t->lim.recipients > 1)
            dest_die(d, reason);    /* a next hop, not one mailbox */
    }
    dest_update(d);
    dest_maybe_free(d);
}

bool qmgr_transport_has_work(const qmgr_transport_t *t)
{
    return t->ring_head != NULL;
}

void qmgr_transport_defer_all(qmgr_transport_t *t, const char *reason)
{
    qmgr_dest_t *d;

    /* only ready ones can wait: the rest have requests in flight, whose
       end brings them back here if the transport is still unusable */
    while ((d = t->ring_head) != NULL) {
        dest_defer_pending(d, reason);
        dest_maybe_free(d);
    }
}

void qmgr_queue_sweep(void)
{
    for (qmgr_transport_t *t = qmgr_transports; t != NULL; t = t->next) {
        qmgr_dest_t **pp = &t->dead;

        while (*pp != NULL) {
            qmgr_dest_t *d = *pp;

            if (dest_is_dead(d)) {
                pp = &d->dnext;
                continue;
            }
            *pp = d->dnext;
            d->on_dead_list = false;
            d->dnext = NULL;
            dest_maybe_free(d);
        }
    }
}

/* qmgr_queue_revive_all - a flush: every dead destination gets a new
   attempt now (as Postfix's flush), starting again at its initial window */
void qmgr_queue_revive_all(void)
{
    for (qmgr_transport_t *t = qmgr_transports; t != NULL; t = t->next)
        for (qmgr_dest_t *d = t->dead; d != NULL; d = d->dnext)
            if (d->dead_until != 0)
                d->dead_until = 1;      /* past: dest_is_dead revives it */
    qmgr_queue_sweep();
}

/* qmgr_queue_free_all - at exit */
void qmgr_queue_free_all(void)
{
    while (qmgr_transports != NULL) {
        qmgr_transport_t *t = qmgr_transports;

        qmgr_transports = t->next;
        htable_free_with(t->dests, dest_free);
        free(t);
    }
}
