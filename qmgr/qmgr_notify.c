/*
 * qmgr_notify - what qmgr tells senders about their mail: the reasons
 * agents gave per recipient, and the RFC 3464 non-delivery report
 * (bounce_msg.h) it queues through cleanup like any other message.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include "util/buf.h"
#include "mail/bounce_msg.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/log.h"
#include "mail/queue.h"
#include "util/util.h"
#include "qmgr.h"

/* qmgr_notify_rcpt_result - remember why recipient i bounced */
void qmgr_notify_rcpt_result(qmgr_msg_t *m, size_t i, int status,
                             const char *dsn, const char *reason)
{
    if (status != DELIVER_BOUNCE)
        return;
    free(m->rdsn[i]);
    free(m->rreason[i]);
    m->rdsn[i] = dsn != NULL ? xstrdup(dsn) : NULL;
    m->rreason[i] = reason != NULL ? xstrdup(reason) : NULL;
}

/* msg_read_content - the message bytes of the queue file */
static int msg_read_content(int fd, const qmgr_msg_t *m, buf_t *out)
{
    char chunk[65536];
    uint64_t done = 0;

    while (done < m->qm.content_len) {
        uint64_t want = m->qm.content_len - done;
        ssize_t n = pread(fd, chunk, want < sizeof(chunk) ? (size_t)want
                                                          : sizeof(chunk),
                          m->qm.content_offset + (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n == 0)
                errno = EIO;    /* shorter than its 'M' record says */
            return -1;
        }
        if (buf_append(out, chunk, (size_t)n) < 0) {
            errno = ENOMEM;
            return -1;
        }
        done += (uint64_t)n;
    }
    return 0;
}

/* msg_bounce_queue - the report into incoming/ through cleanup, from
   the null sender to to; 0 with the new queue ID in newqid */
static int msg_bounce_queue(const qmgr_msg_t *m, const char *to, bool dbl,
                            const buf_t *report, char *newqid, size_t size)
{
    cleanup_t *c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_NO_CHECKS);
    int r = -1;

    if (c == NULL)
        return -1;
    if (cleanup_sender(c, "") == 0
        && cleanup_attr(c, "bounce_of", m->qm.qid) == 0
        && (!dbl || cleanup_attr(c, "double_bounce", "yes") == 0)
        && cleanup_rcpt(c, NULL, to) == 0
        && cleanup_content(c, report->data, report->len) == 0
        && cleanup_commit(c) == 0) {
        (void)snprintf(newqid, size, "%s", cleanup_qid(c));
        r = 0;
    }
    cleanup_free(c);
    return r;
}

/* qmgr_notify_bounce - tell the sender which recipients bounced (RFC 3464);
   true when the original may go: the report is durable in incoming/,
   or none is due (NOTIFY, a failed postmaster notice). The caller
   removes the original only after this: a crash in between means two
   reports at worst, never none. A message from the null sender (a
   bounce) is reported to $2bounce_notice_recipient instead; when such
   a notice itself fails it is only logged, so nothing can loop. */
bool qmgr_notify_bounce(int fd, qmgr_msg_t *m)
{
    const char *sender = qmgr_message_sender(m), *to = sender;
    const char *ret = queue_msg_attr(&m->qm, "dsn_ret");
    const char *dbl_attr = queue_msg_attr(&m->qm, "double_bounce");
    bool dbl = sender[0] == '\0';
    struct bounce_rcpt *br;
    struct bounce_info info;
    buf_t content = BUF_INIT, report = BUF_INIT;
    char newqid[QUEUE_ID_SIZE];
    size_t n = 0;
    bool ok = false;

    if (dbl && dbl_attr != NULL && strcmp(dbl_attr, "yes") == 0) {
        log_warning("%s: undeliverable postmaster notification discarded",
                    m->qm.qid);
        return true;
    }
    if (dbl) {
        to = var_2bounce_notice_recipient;
        if (to == NULL || to[0] == '\0') {
            log_warning("%s: no 2bounce_notice_recipient: bounce of a "
                        "null-sender message discarded", m->qm.qid);
            return true;
        }
    }
    br = xcalloc(m->qm.nrcpts ? m->qm.nrcpts : 1, sizeof(*br));
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        const struct queue_rcpt *r = &m->qm.rcpts[i];

        if (r->status != QREC_BOUNCED)
            continue;
        /* RFC 3461 4.1: NEVER, or a list without FAILURE, asks for no
           report (the postmaster of a double bounce is told anyway) */
        if (!dbl && r->dsn_notify != 0
            && !(r->dsn_notify & QREC_NOTIFY_FAILURE))
            continue;
        br[n].address = r->address;
        br[n].dsn_orcpt = r->dsn_orcpt;
        br[n].status = m->rdsn[i] != NULL && m->rdsn[i][0] == '5'
                       ? m->rdsn[i] : "5.0.0";
        /* the reasons live in memory while the message is active */
        br[n].diagnostic = m->rreason[i] != NULL
            ? m->rreason[i]
            : "reason unknown (it was not kept across a deferral or a "
              "restart of the queue manager)";
        n++;
    }
    if (n == 0) {
        log_info("%s: no non-delivery notification: not requested (NOTIFY)",
                 m->qm.qid);
        free(br);
        return true;
    }
    memset(&info, 0, sizeof(info));
    info.myhostname = var_myhostname;
    info.sender = to;
    info.qid = m->qm.qid;
    info.envid = queue_msg_attr(&m->qm, "dsn_envid");
    info.ret_hdrs = ret != NULL && strcasecmp(ret, "HDRS") == 0;
    info.arrival = (time_t)(m->qm.arrival_usec / 1000000);
    info.now = time(NULL);
    info.rcpts = br;
    info.nrcpts = n;
    if (msg_read_content(fd, m, &content) < 0)
        log_warning("%s: read content for the non-delivery notification: %s "
                    "(the active/ sweep retries)", m->qm.qid, strerror(errno));
    else if (bounce_msg_build(&info, content.data != NULL ? content.data : "",
                              content.len, &report) < 0)
        log_warning("%s: build the non-delivery notification: %s (the "
                    "active/ sweep retries)", m->qm.qid, strerror(errno));
    else if (msg_bounce_queue(m, to, dbl, &report, newqid, sizeof(newqid)) < 0)
        log_warning("%s: queue the non-delivery notification: %s (the "
                    "active/ sweep retries)", m->qm.qid, strerror(errno));
    else {
        log_info("%s: %s non-delivery notification: %s", m->qm.qid,
                 dbl ? "postmaster" : "sender", newqid);
        qmgr_incoming_soon();
        ok = true;
    }
    buf_free(&content);
    buf_free(&report);
    free(br);
    return ok;
}

/* qmgr_notify_success - success DSNs (NOTIFY=SUCCESS): not yet */
void qmgr_notify_success(int fd, qmgr_msg_t *m)
{
    (void)fd;
    (void)m;
}

/* qmgr_notify_deferred - delay warnings ($delay_warning_time): not yet */
void qmgr_notify_deferred(int fd, qmgr_msg_t *m)
{
    (void)fd;
    (void)m;
}

/* qmgr_notify_removed - nothing is kept on disk about a message yet */
void qmgr_notify_removed(const char *qid)
{
    (void)qid;
}
