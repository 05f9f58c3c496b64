/*
 * qmgr_notify - what qmgr tells senders about their mail: the results
 * agents (or qmgr itself) gave per recipient, kept in memory and in the
 * message's defer/ log (bounce_log.h) so that a report days and qmgr
 * restarts later still has the reason; and the RFC 3464 reports
 * (bounce_msg.h) it queues through cleanup like any other message, from
 * the null sender: the non-delivery report, one delay warning after
 * $delay_warning_time, and success notices for NOTIFY=SUCCESS
 * (delivered, relayed or expanded).
 *
 * Order: a notice is committed to the queue before the defer/ log says
 * it was sent, so a crash between the two means a second notice, never
 * a lost one. Writing a reason is advisory: when it fails the report
 * says "reason unknown", and no mail waits for it.
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
#include "mail/bounce_log.h"
#include "mail/bounce_msg.h"
#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/log.h"
#include "mail/queue.h"
#include "mail/queue_record.h"
#include "util/util.h"
#include "qmgr.h"

#define NOTIFY_COMPACT_SIZE (64 * 1024)   /* bytes of defer/ log */
#define UNKNOWN_REASON "reason unknown (it was not kept across a deferral " \
                       "or a restart of the queue manager)"

/* notify_set - recipient i's latest result in memory */
static void notify_set(qmgr_msg_t *m, size_t i, const char *dsn,
                       const char *reason)
{
    free(m->rdsn[i]);
    free(m->rreason[i]);
    m->rdsn[i] = dsn != NULL ? xstrdup(dsn) : NULL;
    m->rreason[i] = reason != NULL ? xstrdup(reason) : NULL;
}

/* notify_merge - results from the defer/ log for recipients this
   activation has learnt nothing about yet (memory is newer) */
static void notify_merge(qmgr_msg_t *m, const struct bounce_log *log)
{
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        const struct bounce_log_entry *e;

        if (m->rdsn[i] != NULL || m->rreason[i] != NULL)
            continue;
        e = bounce_log_find(log, (uint64_t)m->qm.rcpts[i].offset);
        if (e == NULL || e->status == 0)
            continue;
        notify_set(m, i, e->dsn[0] != '\0' ? e->dsn
                         : e->status == DELIVER_BOUNCE ? "5.0.0" : "4.0.0",
                   e->reason);
    }
    m->notify_loaded = true;
}

/* notify_log_read - qid's defer/ log; a failure is logged and reads as
   an empty log (reasons are advisory) */
static void notify_log_read(const qmgr_msg_t *m, struct bounce_log *log)
{
    if (bounce_log_read(m->qm.qid, log) < 0)
        log_warning("%s: read the delivery log in %s/: %s (reasons and "
                    "sent notices are not known)", m->qm.qid, QUEUE_DEFER,
                    strerror(errno));
    else if (log->skipped > 0)
        log_warning("%s: %zu damaged line(s) in the delivery log in %s/ "
                    "skipped", m->qm.qid, log->skipped, QUEUE_DEFER);
}

/* notify_load - merge the defer/ log once per activation */
static void notify_load(qmgr_msg_t *m)
{
    struct bounce_log log;

    if (m->notify_loaded)
        return;
    notify_log_read(m, &log);
    notify_merge(m, &log);
    bounce_log_free(&log);
}

/* qmgr_notify_rcpt_result - remember recipient i's result: in memory,
   and for a deferral or a bounce in the defer/ log */
void qmgr_notify_rcpt_result(qmgr_msg_t *m, size_t i, int status,
                             const char *dsn, const char *reason)
{
    static time_t last_warning;
    const struct queue_rcpt *r = &m->qm.rcpts[i];
    buf_t text = BUF_INIT;
    time_t now;

    if (status == DELIVER_OK) {
        /* only a success notice needs it ("relayed") */
        if (r->dsn_notify & QREC_NOTIFY_SUCCESS)
            notify_set(m, i, dsn, reason);
        return;
    }
    if (status != DELIVER_BOUNCE)
        status = DELIVER_DEFER;
    if (status == DELIVER_BOUNCE && dsn != NULL && strcmp(dsn, "5.4.7") == 0) {
        /* the queue lifetime is over: say why it could not be delivered,
           as Postfix does, with the last deferral reason */
        notify_load(m);
        if (m->rdsn[i] != NULL && m->rdsn[i][0] == '4'
            && m->rreason[i] != NULL
            && buf_printf(&text, "%s; last deferral reason: %s",
                          reason != NULL ? reason : "message expired",
                          m->rreason[i]) == 0)
            reason = buf_str(&text);
    }
    notify_set(m, i, dsn, reason);
    m->defer_log = true;
    if (bounce_log_append(m->qm.qid, (uint64_t)r->offset, status, dsn,
                          reason) < 0
        && (now = time(NULL)) - last_warning >= 60) {
        last_warning = now;
        log_warning("%s: to=<%s>: keep the reason in %s/: %s (a later "
                    "report may lack it)", m->qm.qid, r->address,
                    QUEUE_DEFER, strerror(errno));
    }
    buf_free(&text);
}

/* msg_read_content - the first max bytes of the message (all of it when
   it is shorter) */
static int msg_read_content(int fd, const qmgr_msg_t *m, uint64_t max,
                            buf_t *out)
{
    char chunk[65536];
    uint64_t done = 0, len = m->qm.content_len < max ? m->qm.content_len
                                                     : max;

    while (done < len) {
        uint64_t want = len - done;
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

/* msg_notice_queue - the notice into incoming/ through cleanup, from
   the null sender to to; 0 with the new queue ID in newqid */
static int msg_notice_queue(const qmgr_msg_t *m, const char *to, bool dbl,
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

/* notify_info - the fields every notice about m shares */
static void notify_info(const qmgr_msg_t *m, enum bounce_msg_kind kind,
                        const char *to, struct bounce_info *info)
{
    const char *ret = queue_msg_attr(&m->qm, "dsn_ret");

    memset(info, 0, sizeof(*info));
    info->kind = kind;
    info->myhostname = var_myhostname;
    info->sender = to;
    info->qid = m->qm.qid;
    info->envid = queue_msg_attr(&m->qm, "dsn_envid");
    info->ret_hdrs = ret != NULL && strcasecmp(ret, "HDRS") == 0;
    info->arrival = (time_t)(m->qm.arrival_usec / 1000000);
    info->now = time(NULL);
    info->size_limit = (size_t)var_bounce_size_limit;
}

/* notify_send - build and queue the notice info describes (what: the
   word for the log line); true when it is committed */
static bool notify_send(int fd, const qmgr_msg_t *m,
                        const struct bounce_info *info, bool dbl,
                        const char *what)
{
    buf_t content = BUF_INIT, report = BUF_INIT;
    char newqid[QUEUE_ID_SIZE];
    bool hdrs = info->ret_hdrs || info->kind != BOUNCE_MSG_FAILED;
    /* enough for the header section whole plus the size limit */
    uint64_t max = (uint64_t)var_header_size_limit + 2
                   + (hdrs ? 0 : (uint64_t)var_bounce_size_limit);
    bool ok = false;

    if (msg_read_content(fd, m, max, &content) < 0)
        log_warning("%s: read content for the %s notification: %s",
                    m->qm.qid, what, strerror(errno));
    else if (bounce_msg_build(info, content.data != NULL ? content.data : "",
                              content.len, &report) < 0)
        log_warning("%s: build the %s notification: %s", m->qm.qid, what,
                    strerror(errno));
    else if (msg_notice_queue(m, info->sender, dbl, &report, newqid,
                              sizeof(newqid)) < 0)
        log_warning("%s: queue the %s notification: %s", m->qm.qid, what,
                    strerror(errno));
    else {
        log_info("%s: %s %s notification: %s", m->qm.qid,
                 dbl ? "postmaster" : "sender", what, newqid);
        qmgr_incoming_soon();
        ok = true;
    }
    buf_free(&content);
    buf_free(&report);
    return ok;
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
    const char *dbl_attr = queue_msg_attr(&m->qm, "double_bounce");
    bool dbl = sender[0] == '\0';
    struct bounce_rcpt *br;
    struct bounce_info info;
    size_t n = 0;
    bool ok;

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
    notify_load(m);
    br = xcalloc(m->qm.nrcpts ? m->qm.nrcpts : 1, sizeof(*br));
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        const struct queue_rcpt *r = &m->qm.rcpts[i];
        bool known = m->rdsn[i] != NULL && m->rdsn[i][0] == '5';

        if (r->status != QREC_BOUNCED)
            continue;
        /* RFC 3461 4.1: NEVER, or a list without FAILURE, asks for no
           report (the postmaster of a double bounce is told anyway) */
        if (!dbl && r->dsn_notify != 0
            && !(r->dsn_notify & QREC_NOTIFY_FAILURE))
            continue;
        br[n].address = r->address;
        br[n].dsn_orcpt = r->dsn_orcpt;
        br[n].orig_rcpt = r->orcpt;
        br[n].status = known ? m->rdsn[i] : "5.0.0";
        br[n].diagnostic = known && m->rreason[i] != NULL ? m->rreason[i]
                                                          : UNKNOWN_REASON;
        n++;
    }
    if (n == 0) {
        log_info("%s: no non-delivery notification: not requested (NOTIFY)",
                 m->qm.qid);
        free(br);
        return true;
    }
    notify_info(m, BOUNCE_MSG_FAILED, to, &info);
    info.rcpts = br;
    info.nrcpts = n;
    ok = notify_send(fd, m, &info, dbl, "non-delivery");
    if (!ok)
        log_warning("%s: the original stays in %s/ until its report is "
                    "queued (the active/ sweep retries)", m->qm.qid,
                    QUEUE_ACTIVE);
    free(br);
    return ok;
}

/* notify_action - the Action of a delivered recipient (RFC 3464 2.3.3)
   from the agent's reason: "relayed" when the next hop takes no DSN
   request, so nothing further can be confirmed; "expanded" when local
   forwarded it (alias list, remote target) as a new message, whose
   recipients are not reported on; else "delivered" */
static const char *notify_action(const char *reason)
{
    if (reason != NULL && strcasestr(reason, "does not support DSN") != NULL)
        return "relayed";
    if (reason != NULL && strncmp(reason, "forwarded as ", 13) == 0)
        return "expanded";
    return "delivered";
}

/* qmgr_notify_success - success notices for recipients delivered with
   NOTIFY=SUCCESS, once each: the defer/ log remembers which went out */
void qmgr_notify_success(int fd, qmgr_msg_t *m)
{
    struct bounce_log log;
    struct bounce_rcpt *br;
    struct bounce_info info;
    uint64_t *offsets;
    size_t n = 0;

    if (qmgr_message_sender(m)[0] == '\0')
        return;
    for (size_t i = 0; i < m->qm.nrcpts; i++)
        if (m->qm.rcpts[i].status == QREC_DONE
            && (m->qm.rcpts[i].dsn_notify & QREC_NOTIFY_SUCCESS))
            n++;
    if (n == 0)
        return;
    notify_log_read(m, &log);
    if (!m->notify_loaded)
        notify_merge(m, &log);
    br = xcalloc(n, sizeof(*br));
    offsets = xcalloc(n, sizeof(*offsets));
    n = 0;
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        const struct queue_rcpt *r = &m->qm.rcpts[i];
        const struct bounce_log_entry *e;
        bool known = m->rdsn[i] != NULL && m->rdsn[i][0] == '2';

        if (r->status != QREC_DONE || !(r->dsn_notify & QREC_NOTIFY_SUCCESS))
            continue;
        e = bounce_log_find(&log, (uint64_t)r->offset);
        if (e != NULL && e->success_sent)
            continue;
        br[n].address = r->address;
        br[n].dsn_orcpt = r->dsn_orcpt;
        br[n].orig_rcpt = r->orcpt;
        br[n].status = known ? m->rdsn[i] : "2.0.0";
        br[n].diagnostic = known ? m->rreason[i] : NULL;
        br[n].action = notify_action(known ? m->rreason[i] : NULL);
        offsets[n] = (uint64_t)r->offset;
        n++;
    }
    bounce_log_free(&log);
    if (n > 0) {
        notify_info(m, BOUNCE_MSG_SUCCESS, qmgr_message_sender(m), &info);
        info.rcpts = br;
        info.nrcpts = n;
        /* queued first, then marked: a crash between means two notices */
        m->defer_log = true;
        if (notify_send(fd, m, &info, false, "delivery status")
            && bounce_log_mark_success(m->qm.qid, offsets, n) < 0)
            log_warning("%s: note the success notification in %s/: %s (it "
                        "may be sent again)", m->qm.qid, QUEUE_DEFER,
                        strerror(errno));
    }
    free(br);
    free(offsets);
}

/* qmgr_notify_deferred - the one delay warning, once the message has
   waited $delay_warning_time, for pending recipients whose NOTIFY asks
   for DELAY or is not given (RFC 3461: then it is up to us, and like
   Postfix we warn); never for the null sender */
void qmgr_notify_deferred(int fd, qmgr_msg_t *m)
{
    long now = (long)time(NULL);
    long arrival = (long)(m->qm.arrival_usec / 1000000);
    const char *sender = qmgr_message_sender(m);
    struct bounce_log log;
    struct bounce_rcpt *br;
    struct bounce_info info;
    char age[64];
    size_t n = 0;

    /* one record per deferred recipient and attempt piles up */
    if (bounce_log_compact(m->qm.qid, NOTIFY_COMPACT_SIZE) < 0)
        log_warning("%s: compact the delivery log in %s/: %s", m->qm.qid,
                    QUEUE_DEFER, strerror(errno));
    if (var_delay_warning_time <= 0 || sender[0] == '\0'
        || now - arrival < var_delay_warning_time)
        return;
    notify_log_read(m, &log);
    if (log.delay_sent) {
        bounce_log_free(&log);
        return;
    }
    if (!m->notify_loaded)
        notify_merge(m, &log);
    bounce_log_free(&log);
    br = xcalloc(m->qm.nrcpts ? m->qm.nrcpts : 1, sizeof(*br));
    for (size_t i = 0; i < m->qm.nrcpts; i++) {
        const struct queue_rcpt *r = &m->qm.rcpts[i];
        bool known = m->rdsn[i] != NULL && m->rdsn[i][0] == '4';

        if (r->status != QREC_RCPT
            || (r->dsn_notify != 0 && !(r->dsn_notify & QREC_NOTIFY_DELAY)))
            continue;
        br[n].address = r->address;
        br[n].dsn_orcpt = r->dsn_orcpt;
        br[n].orig_rcpt = r->orcpt;
        br[n].status = known ? m->rdsn[i] : "4.0.0";
        br[n].diagnostic = known ? m->rreason[i] : NULL;
        n++;
    }
    if (n > 0) {
        qmgr_duration_text(now - arrival, age, sizeof(age));
        notify_info(m, BOUNCE_MSG_DELAYED, sender, &info);
        info.rcpts = br;
        info.nrcpts = n;
        info.delayed_for = age;
        info.will_retry_until = (time_t)(arrival + var_maximal_queue_lifetime);
        /* queued first, then marked: a crash between means two warnings */
        m->defer_log = true;
        if (notify_send(fd, m, &info, false, "delay")
            && bounce_log_mark_delay(m->qm.qid) < 0)
            log_warning("%s: note the delay notification in %s/: %s (it "
                        "may be sent again)", m->qm.qid, QUEUE_DEFER,
                        strerror(errno));
    }
    free(br);
}

/* qmgr_notify_removed - the message left the queue: its defer/ log goes
   (two unlinks saved when there can be none) */
void qmgr_notify_removed(const qmgr_msg_t *m)
{
    if (!m->defer_log)
        return;
    if (bounce_log_remove(m->qm.qid) < 0 && errno != ENOENT)
        log_warning("%s: remove its delivery log in %s/: %s", m->qm.qid,
                    QUEUE_DEFER, strerror(errno));
}
