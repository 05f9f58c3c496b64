/*
 * qmgr_message - the active messages held in memory (envelope and one
 * state byte per recipient; the content stays on disk), routing each
 * recipient to its transport and destination queue (route.h,
 * qmgr_queue.c), and the end of an activation: removal, deferral with
 * back-off, or expiry.
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
#include <sys/resource.h>
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

size_t qmgr_active_rcpts;

/* Active messages whose queue file stays open from activation to
   msg_finish (one open() per activation instead of two): a quarter of
   the descriptor limit, within [MSG_FD_MIN, MSG_FD_MAX]; beyond that
   the file is opened again at the end, so a large active set does not
   run qmgr out of descriptors. */
#define MSG_FD_MIN  16
#define MSG_FD_MAX  4096

static qmgr_msg_t *msg_head, *msg_tail;
static htable_t *msg_by_qid;        /* every active message, by queue ID */
static size_t msg_open_fds;         /* messages with m->fd open */

/* msg_fd_budget - how many queue files may stay open (looked up once) */
static size_t msg_fd_budget(void)
{
    static size_t budget;
    struct rlimit rl;

    if (budget == 0) {
        if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
            budget = MSG_FD_MIN;
        else if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur / 4 > MSG_FD_MAX)
            budget = MSG_FD_MAX;
        else if (rl.rlim_cur / 4 < MSG_FD_MIN)
            budget = MSG_FD_MIN;
        else
            budget = (size_t)(rl.rlim_cur / 4);
    }
    return budget;
}

static void msg_finish(qmgr_msg_t *m);

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
    qmgr_active_rcpts += m->qm.nrcpts;
    if (msg_by_qid == NULL)
        msg_by_qid = htable_create();
    htable_add(msg_by_qid, m->qm.qid, m);
}

/* msg_free - unlink from every list and release */
static void msg_free(qmgr_msg_t *m)
{
    if (m->prev != NULL)
        m->prev->next = m->next;
    else
        msg_head = m->next;
    if (m->next != NULL)
        m->next->prev = m->prev;
    else
        msg_tail = m->prev;
    qmgr_active_count--;
    qmgr_active_rcpts -= m->qm.nrcpts;
    htable_remove(msg_by_qid, m->qm.qid);
    if (m->fd >= 0) {
        (void)close(m->fd);
        msg_open_fds--;
    }
    queue_msg_free(&m->qm);
    for (size_t i = 0; m->rdsn != NULL && i < m->qm.nrcpts; i++) {
        free(m->rdsn[i]);
        free(m->rreason[i]);
    }
    free(m->rdsn);
    free(m->rreason);
    free(m->rstate);
    free(m);
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

/* msg_euid - our effective uid (never changes: qmgr runs as tern) */
static uid_t msg_euid(void)
{
    static uid_t euid;
    static bool known;

    if (!known) {
        euid = geteuid();
        known = true;
    }
    return euid;
}

/* msg_open - active/<qid> for reading and marking; -1 when it is not
   ours to handle (gone, quarantined or put back for later). One fstat
   checks type, owner and links; a second only after other names were
   removed. */
static int msg_open(const char *qid)
{
    buf_t path = BUF_INIT, why = BUF_INIT;
    struct stat st;
    int fd;

    memset(&st, 0, sizeof(st));
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
    } else if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)
               || st.st_uid != msg_euid()) {
        if (S_ISREG(st.st_mode))
            buf_printf(&why, "queue file is owned by uid %ld, not %ld",
                       (long)st.st_uid, (long)msg_euid());
        else
            buf_puts(&why, "not a regular file");
        close(fd);
        fd = -1;
        qmgr_scan_quarantine(qid, buf_str(&why));
    } else if (st.st_nlink > 1) {
        msg_drop_other_names(qid, &st);
        if (fstat(fd, &st) == 0 && st.st_nlink > 1) {
            buf_printf(&why, "queue file has %lu links",
                       (unsigned long)st.st_nlink);
            close(fd);
            fd = -1;
            qmgr_scan_quarantine(qid, buf_str(&why));
        }
    }
    buf_free(&path);
    buf_free(&why);
    return fd;
}

/* msg_recycle_leftover - an empty file: a finished message whose
   queue_recycle (truncate, then rename into free/) a crash cut in
   half. A committed queue file is never empty (it starts with its V
   record), so there is nothing to deliver or to keep: it goes on to
   free/ (or away), and fd is closed. */
static bool msg_recycle_leftover(int fd, const char *qid)
{
    struct stat st;

    if (fstat(fd, &st) < 0 || st.st_size != 0)
        return false;
    log_info("%s: empty queue file (a finished message): removed", qid);
    if (queue_recycle(QUEUE_ACTIVE, qid, fd) < 0 && errno != ENOENT)
        log_warning("%s: remove: %s", qid, strerror(errno));
    close(fd);
    return true;
}

/* msg_load - read the envelope of active/<qid>; NULL if gone or corrupt.
   The file stays open for msg_finish while few are (msg_fd_budget). */
static qmgr_msg_t *msg_load(const char *qid)
{
    const char *error = "unknown error";
    qmgr_msg_t *m;
    int fd = msg_open(qid);

    if (fd < 0)
        return NULL;
    if (msg_recycle_leftover(fd, qid))
        return NULL;
    m = xcalloc(1, sizeof(*m));
    m->fd = -1;
    if (queue_file_read(fd, qid, &m->qm, &error) < 0) {
        close(fd);
        queue_msg_free(&m->qm);
        free(m);
        qmgr_scan_quarantine(qid, error);
        return NULL;
    }
    if (msg_open_fds < msg_fd_budget()) {
        m->fd = fd;
        msg_open_fds++;
    } else {
        close(fd);
    }
    return m;
}

bool qmgr_message_is_active(const char *qid)
{
    return msg_by_qid != NULL && htable_find(msg_by_qid, qid) != NULL;
}

/* msg_defer_now - recipient i is deferred by qmgr before any attempt
   (routing failed, destination dead); no request, so no rcpt_done */
static void msg_defer_now(qmgr_msg_t *m, size_t i, const char *reason)
{
    m->rstate[i] = QR_DEFERRED;
    msg_log_rcpt(m, i, "4.3.0", "deferred", reason);
    qmgr_notify_rcpt_result(m, i, DELIVER_DEFER, "4.3.0", reason);
}

/* qmgr_message_activate - take on a file that is now in active/ */
void qmgr_message_activate(const char *qid, bool fresh)
{
    qmgr_msg_t *m;
    size_t n, i;

    if (qmgr_message_is_active(qid)) {
        log_warning("%s: already active; not taken on twice", qid);
        return;
    }
    if ((m = msg_load(qid)) == NULL)
        return;
    n = m->qm.nrcpts;
    /* older mail may come from a qmgr that wrote a log and then lost
       the rename into active/ in a crash: assume one */
    m->defer_log = !fresh || m->qm.arrival_usec < qmgr_start_usec;
    m->active_usec = time_now_usec();
    m->rstate = xcalloc(n ? n : 1, 1);
    m->rdsn = xcalloc(n ? n : 1, sizeof(char *));
    m->rreason = xcalloc(n ? n : 1, sizeof(char *));
    log_info("%s: from=<%s>, size=%llu, nrcpt=%zu (queue active)",
             m->qm.qid, qmgr_message_sender(m), (unsigned long long)m->qm.content_len,
             n);
    msg_link(m);
    for (i = 0; i < n; i++) {
        const char *why = NULL;
        route_t r;

        if (m->qm.rcpts[i].status != QREC_RCPT)
            continue;
        if (route_config_resolve(qmgr_message_sender(m),
                                 m->qm.rcpts[i].address, &r, &why) < 0) {
            log_warning("%s: to=<%s>: %s", m->qm.qid, m->qm.rcpts[i].address,
                        why);
            msg_defer_now(m, i, why);
        } else if (!qmgr_queue_add(m, i, &r, &why)) {
            msg_defer_now(m, i, why);
        }
    }
    if (m->npending == 0)
        msg_finish(m);
}

/* msg_idle - nothing pending and nothing in flight */
static bool msg_idle(const qmgr_msg_t *m)
{
    return m->nbusy == 0 && m->npending == 0;
}

/* qmgr_message_rcpt_done - record one attempt's outcome */
void qmgr_message_rcpt_done(qmgr_msg_t *m, size_t i, int status,
                            const char *qmgr_reason)
{
    if (m->rstate[i] == QR_BUSY)
        m->nbusy--;
    else if (m->rstate[i] == QR_PENDING)
        m->npending--;
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
    if (queue_recycle(QUEUE_ACTIVE, m->qm.qid, fd) < 0 && errno != ENOENT) {
        log_warning("%s: remove %s: %s (the active/ sweep retries)",
                    m->qm.qid, path, strerror(errno));
        return;
    }
    msg_delay(m, delay, sizeof(delay));
    log_info("%s: summary: from=<%s>, nrcpt=%zu, delay=%s, sent=%zu, "
             "bounced=%zu, deferred=0", m->qm.qid, qmgr_message_sender(m),
             m->qm.nrcpts, delay, t->sent, t->bounced);
    log_info("%s: removed", m->qm.qid);
    qmgr_notify_removed(m);
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
    int fd = m->fd;

    queue_path(QUEUE_ACTIVE, m->qm.qid, &path);
    if (fd < 0)
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
        if (fd != m->fd)
            close(fd);
    }
    buf_free(&path);
    msg_free(m);
    qmgr_poke();
}

/* qmgr_message_free_all - at exit (everything is on disk already) */
void qmgr_message_free_all(void)
{
    qmgr_queue_free_all();      /* its entries point at messages */
    while (msg_head != NULL)
        msg_free(msg_head);
    htable_free(msg_by_qid);
    msg_by_qid = NULL;
}
