/*
 * qmgr_message - the active messages held in memory (envelope and one
 * state byte per recipient; the content stays on disk), the fair choice
 * of the next recipient per transport, and the end of an activation:
 * removal, deferral with back-off, or expiry.
 *
 * The queue file is the truth: when nothing is in flight any more the
 * recipient type bytes are read back from disk, since the agents mark
 * them there before they reply.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <unistd.h>
#include "util/buf.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_log.h"
#include "util/htable.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "mail/queue.h"
#include "util/util.h"
#include "qmgr.h"

size_t qmgr_active_count;

static qmgr_msg_t *msg_head, *msg_tail;
static htable_t *msg_by_qid;        /* every active message, by queue ID */
static qmgr_msg_t *xhead[QMGR_NXPORT], *xtail[QMGR_NXPORT];

static void msg_finish(qmgr_msg_t *m);

/* xlist_append - m now has pending work for transport x */
static void xlist_append(qmgr_msg_t *m, int x)
{
    m->xnext[x] = NULL;
    m->xprev[x] = xtail[x];
    if (xtail[x] != NULL)
        xtail[x]->xnext[x] = m;
    else
        xhead[x] = m;
    xtail[x] = m;
    m->on_xlist[x] = true;
}

/* xlist_remove - unlink m from transport x's list (if on it) */
static void xlist_remove(qmgr_msg_t *m, int x)
{
    if (!m->on_xlist[x])
        return;
    if (m->xprev[x] != NULL)
        m->xprev[x]->xnext[x] = m->xnext[x];
    else
        xhead[x] = m->xnext[x];
    if (m->xnext[x] != NULL)
        m->xnext[x]->xprev[x] = m->xprev[x];
    else
        xtail[x] = m->xprev[x];
    m->xprev[x] = m->xnext[x] = NULL;
    m->on_xlist[x] = false;
}

/* msg_link - append to the FIFO of all active messages */
static void msg_link(qmgr_msg_t *m)
{
    m->prev = msg_tail;
    m->next = NULL;
    if (msg_tail != NULL)
        msg_tail->next = m;
    else
        msg_head = m;
    msg_tail = m;
    qmgr_active_count++;
    if (msg_by_qid == NULL)
        msg_by_qid = htable_create();
    htable_add(msg_by_qid, m->qm.qid, m);
}

/* msg_free - unlink from every list and release */
static void msg_free(qmgr_msg_t *m)
{
    for (int x = 0; x < QMGR_NXPORT; x++)
        xlist_remove(m, x);
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        msg_head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        msg_tail = m->prev;
    qmgr_active_count--;
    htable_remove(msg_by_qid, m->qm.qid);
    queue_msg_free(&m->qm);
    for (size_t i = 0; m->rdsn != NULL && i < m->qm.nrcpts; i++) {
        free(m->rdsn[i]);
        free(m->rreason[i]);
    }
    free(m->rdsn);
    free(m->rreason);
    free(m->rstate);
    free(m->rxport);
    free(m);
}

static bool domain_is_local(const char *domain)
{
    return mailuser_domain_is_local(domain);
}

const char *qmgr_message_sender(const qmgr_msg_t *m)
{
    return m->qm.sender != NULL ? m->qm.sender : "";
}

/* msg_delay - Postfix-style delay= text for m as of now */
static void msg_delay(const qmgr_msg_t *m, char *out, size_t size)
{
    uint64_t now = time_now_usec();

    deliver_delay_format(now > m->qm.arrival_usec ? now - m->qm.arrival_usec
                                                  : 0, out, size);
}

/* msg_log_rcpt - one Postfix-style per-recipient line decided by qmgr */
static void msg_log_rcpt(const qmgr_msg_t *m, size_t i, const char *dsn,
                         const char *status, const char *reason)
{
    const struct queue_rcpt *r = &m->qm.rcpts[i];
    uint64_t now = time_now_usec();
    struct deliver_times t = { m->qm.arrival_usec, m->active_usec, now, 0, now };

    deliver_log_status(m->qm.qid, r->address, r->orcpt, "none", &t, dsn,
                       status, reason);
}

/* msg_drop_other_names - the queue file has more than one link: another
   name of the same inode under a queue directory (what a power loss can
   leave after a move whose source directory was not synced) is stale;
   remove it, so the file has one name again (local refuses any other) */
static void msg_drop_other_names(const char *qid, const struct stat *st)
{
    static const char *const queues[] = {
        QUEUE_INCOMING, QUEUE_DEFERRED, QUEUE_HOLD, QUEUE_CORRUPT,
    };
    buf_t path = BUF_INIT;
    struct stat other;

    for (size_t i = 0; i < sizeof(queues) / sizeof(queues[0]); i++) {
        queue_path(queues[i], qid, &path);
        if (path.len == 0 || lstat(buf_str(&path), &other) < 0
            || other.st_dev != st->st_dev || other.st_ino != st->st_ino)
            continue;
        if (queue_remove(queues[i], qid) == 0)
            log_info("%s: removed %s, a second name of the queue file",
                     qid, buf_str(&path));
        else
            log_warning("%s: remove %s: %s", qid, buf_str(&path),
                        strerror(errno));
    }
    buf_free(&path);
}

/* msg_open - active/<qid> for reading and marking; -1 when it is not
   ours to handle (gone, quarantined or put back for later) */
static int msg_open(const char *qid)
{
    buf_t path = BUF_INIT, why = BUF_INIT;
    struct stat st;
    int fd;

    queue_path(QUEUE_ACTIVE, qid, &path);
    fd = open(buf_str(&path), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;

        if (err == ENOENT) {
            /* vanished: nothing left to deliver */
        } else if (err == EMFILE || err == ENFILE || err == ENOMEM
                   || err == EINTR) {
            log_warning("%s: open %s: %s", qid, buf_str(&path), strerror(err));
            qmgr_scan_requeue(qid);
        } else {
            /* EACCES, ELOOP, ...: someone else's file; a human decides */
            buf_printf(&why, "open %s: %s", buf_str(&path), strerror(err));
            qmgr_scan_quarantine(qid, buf_str(&why));
        }
    } else if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink > 1
               && st.st_uid == geteuid()) {
        msg_drop_other_names(qid, &st);
        if (fstat(fd, &st) == 0 && st.st_nlink > 1) {
            buf_printf(&why, "queue file has %lu links",
                       (unsigned long)st.st_nlink);
            close(fd);
            fd = -1;
            qmgr_scan_quarantine(qid, buf_str(&why));
        }
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
               || st.st_uid != geteuid()) {
        if (S_ISREG(st.st_mode))
            buf_printf(&why, "queue file is owned by uid %ld, not %ld",
                       (long)st.st_uid, (long)geteuid());
        else
            buf_puts(&why, "not a regular file");
        close(fd);
        fd = -1;
        qmgr_scan_quarantine(qid, buf_str(&why));
    }
    buf_free(&path);
    buf_free(&why);
    return fd;
}

/* msg_load - read the envelope of active/<qid>; NULL if gone or corrupt */
static qmgr_msg_t *msg_load(const char *qid)
{
    const char *error = "unknown error";
    qmgr_msg_t *m;
    int fd = msg_open(qid);

    if (fd < 0)
        return NULL;
    m = xcalloc(1, sizeof(*m));
    if (queue_file_read(fd, qid, &m->qm, &error) < 0) {
        close(fd);
        queue_msg_free(&m->qm);
        free(m);
        qmgr_scan_quarantine(qid, error);
        return NULL;
    }
    close(fd);
    return m;
}

bool qmgr_message_is_active(const char *qid)
{
    return msg_by_qid != NULL && htable_find(msg_by_qid, qid) != NULL;
}

/* qmgr_message_activate - take on a file that is now in active/ */
void qmgr_message_activate(const char *qid)
{
    qmgr_msg_t *m;
    size_t n, i;
    bool work = false;

    if (qmgr_message_is_active(qid)) {
        log_warning("%s: already active; not taken on twice", qid);
        return;
    }
    if ((m = msg_load(qid)) == NULL)
        return;
    n = m->qm.nrcpts;
    m->active_usec = time_now_usec();
    m->rstate = xcalloc(n ? n : 1, 1);
    m->rxport = xcalloc(n ? n : 1, 1);
    m->rdsn = xcalloc(n ? n : 1, sizeof(char *));
    m->rreason = xcalloc(n ? n : 1, sizeof(char *));
    log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)",
             m->qm.qid, qmgr_message_sender(m), (unsigned long long)m->qm.content_len,
             n);
    for (i = 0; i < n; i++) {
        if (m->qm.rcpts[i].status != QREC_RCPT)
            continue;
        int x = qmgr_xport_pick(m->qm.rcpts[i].address, domain_is_local);
        m->rstate[i] = QR_PENDING;
        m->rxport[i] = (unsigned char)x;
        m->npending[x]++;
    }
    msg_link(m);
    for (int x = 0; x < QMGR_NXPORT; x++) {
        if (m->npending[x] > 0) {
            xlist_append(m, x);
            qmgr_deliver_kick(x);
            work = true;
        }
    }
    if (!work)
        msg_finish(m);
}

/* ---- destination concurrency --------------------------------------------
   Each transport counts deliveries in flight per destination (qmgr_policy:
   the recipient for local, the domain otherwise). A recipient whose
   destination is at its limit waits, blocked, in that destination's FIFO
   and becomes pending again when a delivery there ends. Waiters exist only
   while their destination has deliveries in flight, and a message with
   waiting recipients is not idle, so no waiter outlives its message. */

struct dest_waiter {
    qmgr_msg_t *m;
    size_t i;
    struct dest_waiter *next;
};

struct dest {
    long busy;
    struct dest_waiter *head, *tail;
};

static htable_t *dest_tables[QMGR_NXPORT];

static void dest_free(void *p)
{
    struct dest *d = p;

    while (d->head != NULL) {
        struct dest_waiter *w = d->head;

        d->head = w->next;
        free(w);
    }
    free(d);
}

/* dest_find - the destination of recipient i of m (created if asked) */
static struct dest *dest_find(qmgr_msg_t *m, size_t i, bool create,
                              char *key, size_t size)
{
    int x = m->rxport[i];
    struct dest *d;

    qmgr_rcpt_destination(x, m->qm.rcpts[i].address, key, size);
    if (dest_tables[x] == NULL)
        dest_tables[x] = htable_create();
    d = htable_find(dest_tables[x], key);
    if (d == NULL && create) {
        d = xcalloc(1, sizeof(*d));
        htable_add(dest_tables[x], key, d);
    }
    return d;
}

/* dest_take - a slot for recipient i, or park it (false) */
static bool dest_take(qmgr_msg_t *m, size_t i)
{
    char key[1024];
    struct dest *d = dest_find(m, i, true, key, sizeof(key));
    struct dest_waiter *w;

    if (d->busy < qmgr_destination_limit(m->rxport[i])) {
        d->busy++;
        return true;
    }
    w = xcalloc(1, sizeof(*w));
    w->m = m;
    w->i = i;
    if (d->tail != NULL)
        d->tail->next = w;
    else
        d->head = w;
    d->tail = w;
    m->rstate[i] = QR_BLOCKED;
    m->npending[m->rxport[i]]--;
    m->nblocked++;
    return false;
}

/* dest_release - a delivery to recipient i's destination ended: wake the
   longest waiter there */
static void dest_release(qmgr_msg_t *m, size_t i)
{
    char key[1024];
    int x = m->rxport[i];
    struct dest *d = dest_find(m, i, false, key, sizeof(key));
    struct dest_waiter *w;

    if (d == NULL)
        return;
    if (d->busy > 0)
        d->busy--;
    if ((w = d->head) != NULL) {
        qmgr_msg_t *wm = w->m;

        d->head = w->next;
        if (d->head == NULL)
            d->tail = NULL;
        wm->rstate[w->i] = QR_PENDING;
        wm->nblocked--;
        wm->npending[x]++;
        if (wm->cursor[x] > w->i)
            wm->cursor[x] = w->i;
        if (!wm->on_xlist[x])
            xlist_append(wm, x);
        free(w);
        qmgr_deliver_kick(x);
    } else if (d->busy == 0) {
        htable_remove(dest_tables[x], key);
        free(d);
    }
}

/* qmgr_message_next_job - round-robin over messages, FIFO by arrival */
bool qmgr_message_next_job(int x, qmgr_msg_t **m_r, size_t *i_r)
{
    qmgr_msg_t *m;

    while ((m = xhead[x]) != NULL) {
        size_t i;

        for (i = m->cursor[x]; i < m->qm.nrcpts; i++)
            if (m->rstate[i] == QR_PENDING && m->rxport[i] == x
                && dest_take(m, i))
                break;
        xlist_remove(m, x);
        if (i >= m->qm.nrcpts) {
            m->npending[x] = 0;   /* the rest waits for its destinations */
            continue;
        }
        m->cursor[x] = i + 1;
        m->rstate[i] = QR_BUSY;
        m->npending[x]--;
        m->nbusy++;
        if (m->npending[x] > 0)
            xlist_append(m, x);   /* to the tail: others get a turn */
        *m_r = m;
        *i_r = i;
        return true;
    }
    return false;
}

bool qmgr_message_has_work(int x)
{
    return xhead[x] != NULL;
}

/* msg_idle - nothing pending and nothing in flight */
static bool msg_idle(const qmgr_msg_t *m)
{
    if (m->nbusy > 0 || m->nblocked > 0)
        return false;
    for (int x = 0; x < QMGR_NXPORT; x++)
        if (m->npending[x] > 0)
            return false;
    return true;
}

/* qmgr_message_rcpt_done - record one attempt's outcome */
void qmgr_message_rcpt_done(qmgr_msg_t *m, size_t i, int status,
                            const char *qmgr_reason)
{
    if (m->rstate[i] == QR_BUSY) {
        m->nbusy--;
        m->rstate[i] = QR_DONE;     /* until set below */
        dest_release(m, i);
    } else if (m->rstate[i] == QR_PENDING)
        m->npending[m->rxport[i]]--;
    if (status == DELIVER_OK || status == DELIVER_BOUNCE) {
        m->rstate[i] = QR_DONE;
    } else {
        m->rstate[i] = QR_DEFERRED;
        if (qmgr_reason != NULL) {
            msg_log_rcpt(m, i, "4.3.0", "deferred", qmgr_reason);
            qmgr_notify_rcpt_result(m, i, DELIVER_DEFER, "4.3.0", qmgr_reason);
        }
    }
    if (msg_idle(m))
        msg_finish(m);
}

/* qmgr_message_defer_xport - the transport is unusable right now */
void qmgr_message_defer_xport(int x, const char *reason)
{
    qmgr_msg_t *m;

    while ((m = xhead[x]) != NULL) {
        xlist_remove(m, x);
        for (size_t i = m->cursor[x]; i < m->qm.nrcpts; i++) {
            if (m->rstate[i] == QR_PENDING && m->rxport[i] == x) {
                m->rstate[i] = QR_DEFERRED;
                m->npending[x]--;
                msg_log_rcpt(m, i, "4.3.0", "deferred", reason);
                qmgr_notify_rcpt_result(m, i, DELIVER_DEFER, "4.3.0", reason);
            }
        }
        m->npending[x] = 0;
        if (msg_idle(m))
            msg_finish(m);
    }
}

/* ---- the end of an activation ------------------------------------------ */

struct msg_tally {
    size_t sent, bounced, left;
};

/* msg_tally_disk - read each recipient's type byte back from the file */
static void msg_tally_disk(int fd, qmgr_msg_t *m, struct msg_tally *t)
{
    memset(t, 0, sizeof(*t));
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.rcpts[i];
        char type = r->status;

        if (pread(fd, &type, 1, r->offset) != 1) {
            log_warning("%s: read recipient record: %s", m->qm.qid,
                        strerror(errno));
            type = QREC_RCPT;   /* unsure: retry rather than lose */
        }
        if (type == QREC_RCPT && m->rstate[i] == QR_DONE && r->status == QREC_RCPT)
            log_warning("%s: to=<%s>: agent reported a final status but "
                        "the queue file still says pending; will retry",
                        m->qm.qid, r->address);
        r->status = type;
        if (type == QREC_DONE)
            t->sent++;
        else if (type == QREC_BOUNCED)
            t->bounced++;
        else
            t->left++;
    }
}

/* msg_expire - bounce every recipient still pending (lifetime is over) */
static void msg_expire(int fd, qmgr_msg_t *m, long age, struct msg_tally *t)
{
    char text[64], reason[128];

    qmgr_duration_text(age, text, sizeof(text));
    snprintf(reason, sizeof(reason), "message expired after %s in the queue",
             text);
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        struct queue_rcpt *r = &m->qm.rcpts[i];

        if (r->status != QREC_RCPT)
            continue;
        if (queue_msg_mark(fd, &m->qm, i, QREC_BOUNCED) < 0) {
            log_warning("%s: mark recipient %s bounced: %s", m->qm.qid,
                        r->address, strerror(errno));
            continue;
        }
        t->left--;
        t->bounced++;
        qmgr_notify_rcpt_result(m, i, DELIVER_BOUNCE, "5.4.7", reason);
        msg_log_rcpt(m, i, "5.4.7", "bounced", reason);
    }
}

/* msg_remove - every recipient is final: report bounces, then remove */
static void msg_remove(int fd, qmgr_msg_t *m, const char *path,
                       const struct msg_tally *t)
{
    char delay[32];

    if (t->bounced > 0 && !qmgr_notify_bounce(fd, m))
        return;
    if (queue_remove(QUEUE_ACTIVE, m->qm.qid) < 0 && errno != ENOENT) {
        log_warning("%s: remove %s: %s (the active/ sweep retries)",
                    m->qm.qid, path, strerror(errno));
        return;
    }
    msg_delay(m, delay, sizeof(delay));
    log_info("%s: summary: from=<%s>, nrcpt=%zu, delay=%s, sent=%zu, "
             "bounced=%zu, deferred=0", m->qm.qid, qmgr_message_sender(m),
             m->qm.nrcpts, delay, t->sent, t->bounced);
    log_info("%s: removed", m->qm.qid);
    qmgr_notify_removed(m->qm.qid);
}

/* msg_defer - set the next-attempt time as mtime, move to deferred/ */
static void msg_defer(int fd, qmgr_msg_t *m, const char *path, long now)
{
    long arrival = (long)(m->qm.arrival_usec / 1000000);
    long wait = qmgr_backoff(now, arrival, var_minimal_backoff_time,
                             var_maximal_backoff_time);
    struct timespec times[2] = { { now, 0 }, { now + wait, 0 } };
    int r;

    if (futimens(fd, times) < 0)
        log_warning("%s: set next attempt time: %s", m->qm.qid,
                    strerror(errno));
    /* the new name is on disk before we forget the message (a journalled
       rename is atomic anyway; the fsync also covers the rest) */
    r = queue_move(QUEUE_ACTIVE, QUEUE_DEFERRED, m->qm.qid, QUEUE_MOVE_SYNC);
    if (r < 0)
        log_error("%s: move %s to %s/: %s (the active/ sweep retries)",
                  m->qm.qid, path, QUEUE_DEFERRED, strerror(errno));
    else if (r > 0)
        log_warning("%s: fsync directory %s/: %s", m->qm.qid, QUEUE_DEFERRED,
                    strerror(errno));
    else
        log_debug("%s: deferred, next attempt in %ld s", m->qm.qid, wait);
}

/* msg_finish - nothing in flight: remove, expire or defer, then forget */
static void msg_finish(qmgr_msg_t *m)
{
    buf_t path = BUF_INIT;
    struct msg_tally t;
    long now = (long)(time_now_usec() / 1000000);
    long arrival = (long)(m->qm.arrival_usec / 1000000);
    int fd;

    queue_path(QUEUE_ACTIVE, m->qm.qid, &path);
    fd = open(buf_str(&path), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        log_warning("%s: open %s: %s", m->qm.qid, buf_str(&path),
                    strerror(errno));
        if (errno != ENOENT)
            qmgr_scan_requeue(m->qm.qid);     /* not stuck in active/ */
    } else {
        /* mail from the null sender (reports) gives up sooner */
        long lifetime = qmgr_message_sender(m)[0] == '\0'
                        ? var_bounce_queue_lifetime : var_maximal_queue_lifetime;

        msg_tally_disk(fd, m, &t);
        if (t.left > 0 && qmgr_expired(now, arrival, lifetime))
            msg_expire(fd, m, now - arrival, &t);
        if (t.sent > 0)
            qmgr_notify_success(fd, m);
        if (t.left == 0) {
            msg_remove(fd, m, buf_str(&path), &t);
        } else {
            qmgr_notify_deferred(fd, m);
            msg_defer(fd, m, buf_str(&path), now);
        }
        close(fd);
    }
    buf_free(&path);
    msg_free(m);
    qmgr_poke();
}

/* qmgr_message_free_all - at exit (everything is on disk already) */
void qmgr_message_free_all(void)
{
    while (msg_head != NULL)
        msg_free(msg_head);
    htable_free(msg_by_qid);
    msg_by_qid = NULL;
    for (int x = 0; x < QMGR_NXPORT; x++) {
        htable_free_with(dest_tables[x], dest_free);
        dest_tables[x] = NULL;
    }
}
