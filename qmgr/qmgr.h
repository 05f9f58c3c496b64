/*
 * qmgr.h - internal interfaces between the queue manager's modules:
 * qmgr.c (main, triggers, scan scheduling), qmgr_scan.c (directory
 * scans and moves into active/), qmgr_message.c (in-memory active
 * messages and their final disposal), qmgr_notify.c (reasons and
 * reports to senders), qmgr_deliver.c (connections to delivery agents)
 * and qmgr_policy.c (pure decisions, unit-tested).
 */
#ifndef TERN_QMGR_QMGR_H
#define TERN_QMGR_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/attr.h"
#include "util/events.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"

/* transports, by index; the agent socket is "private/<name>" */
enum { QMGR_XPORT_LOCAL, QMGR_XPORT_SMTP, QMGR_NXPORT };
extern const char *const qmgr_xport_names[QMGR_NXPORT];

/* ---- qmgr_policy.c: pure decisions ------------------------------------ */

/* Seconds until the next attempt: the time spent in the queue so far,
   clamped to [min_backoff, max_backoff] (so waits roughly double). */
long qmgr_backoff(long now, long arrival, long min_backoff, long max_backoff);
/* Is a deferred file due? next = its mtime, changed = its ctime. */
bool qmgr_deferred_due(uint64_t next_usec, uint64_t changed_usec,
                       uint64_t now_usec, uint64_t flush_usec,
                       long max_backoff);
/* Has the message outlived its queue lifetime? */
bool qmgr_expired(long now, long arrival, long lifetime);
/* The destination whose concurrency is limited: the recipient itself
   for local delivery (a stalled mailbox must not hold every slot), the
   domain otherwise; lowercased into out. */
void qmgr_rcpt_destination(int x, const char *rcpt, char *out, size_t size);
/* That limit for transport x. */
long qmgr_destination_limit(int x);
/* Domain part of an address (after the last '@'), "" if none. */
const char *qmgr_rcpt_domain(const char *rcpt);
/* Transport index for a recipient; is_local decides on the domain.
   Addresses without a domain are local. */
int qmgr_xport_pick(const char *rcpt, bool (*is_local)(const char *domain));
/* The delivery request (deliver.h) for recipients idx[0..n) of m. */
void qmgr_request_build(const queue_msg_t *m, const size_t *idx, size_t n,
                        const char *transport, const char *nexthop,
                        uint64_t active_usec, attr_list_t *out);
/* "5 days", "3 hours", "1 minute", "20 seconds" (largest whole unit) */
void qmgr_duration_text(long seconds, char *out, size_t size);

/* ---- qmgr_message.c: active messages ---------------------------------- */

enum qmgr_rstate {
    QR_DONE = 0,        /* 'D' or 'B' in the file, nothing to do */
    QR_PENDING,         /* 'R', waiting for a connection */
    QR_BUSY,            /* request in flight */
    QR_DEFERRED,        /* tried (or could not be) this round; stays 'R' */
    QR_BLOCKED,         /* its destination is at its concurrency limit */
};

typedef struct qmgr_msg {
    queue_msg_t qm;                 /* envelope; content is never read */
    uint64_t active_usec;           /* when qmgr took it on (delays=) */
    unsigned char *rstate;          /* enum qmgr_rstate per recipient */
    unsigned char *rxport;          /* transport per recipient */
    char **rdsn, **rreason;         /* a recipient's latest dsn and reason
                                       (qmgr_notify: agent's reply, qmgr's
                                       deferral, or the defer/ log), NULL
                                       if unknown */
    bool notify_loaded;             /* qmgr_notify read the defer/ log */
    size_t cursor[QMGR_NXPORT];     /* next recipient to look at */
    size_t npending[QMGR_NXPORT];
    size_t nbusy;
    size_t nblocked;                /* waiting for their destination */
    struct qmgr_msg *prev, *next;   /* all active messages, FIFO */
    struct qmgr_msg *xprev[QMGR_NXPORT], *xnext[QMGR_NXPORT];
    bool on_xlist[QMGR_NXPORT];     /* has pending work for transport */
} qmgr_msg_t;

extern size_t qmgr_active_count;

/* Take on active/<qid> (already moved there). Logs and quarantines a
   corrupt file. */
void qmgr_message_activate(const char *qid);
/* Is a message of this queue ID active (in memory)? A message is never
   active twice: a second name of it (deferred/ after a power loss, a
   hard link) is left alone until the first is finished. */
bool qmgr_message_is_active(const char *qid);
/* Next pending recipient for transport x, round-robin over messages in
   arrival order; marks it busy. false when there is none. */
bool qmgr_message_next_job(int x, qmgr_msg_t **m_r, size_t *i_r);
/* A recipient's attempt ended (DELIVER_OK/BOUNCE/DEFER). When qmgr
   itself decided (no agent reply), reason is logged as the deferral. */
void qmgr_message_rcpt_done(qmgr_msg_t *m, size_t i, int status,
                            const char *qmgr_reason);
/* m's sender, "" for the null sender */
const char *qmgr_message_sender(const qmgr_msg_t *m);
/* Defer every pending recipient of transport x with reason. */
void qmgr_message_defer_xport(int x, const char *reason);
bool qmgr_message_has_work(int x);
void qmgr_message_free_all(void);

/* ---- qmgr_notify.c: reasons and notifications to senders -------------- */

/* One attempt's outcome for recipient i as the agent (or qmgr) gave it:
   status DELIVER_*, dsn and reason (kept for the reports). */
void qmgr_notify_rcpt_result(qmgr_msg_t *m, size_t i, int status,
                             const char *dsn, const char *reason);
/* Every recipient is final and some bounced: queue the non-delivery
   report. true when the original may be removed (report durable, or
   none due); fd is the open active/ file. */
bool qmgr_notify_bounce(int fd, qmgr_msg_t *m);
/* Some recipients were delivered ('D' on disk) by the end of this
   activation: success notices where NOTIFY asked for them. */
void qmgr_notify_success(int fd, qmgr_msg_t *m);
/* The message goes back to deferred/ with recipients pending (delay
   warning, once, after $delay_warning_time). */
void qmgr_notify_deferred(int fd, qmgr_msg_t *m);
/* The message left the queue: forget what was kept about it. */
void qmgr_notify_removed(const char *qid);

/* ---- qmgr_deliver.c: agent connections -------------------------------- */

void qmgr_deliver_init(ev_loop_t *loop);
/* There may be new work for transport x (runs from the loop, soon). */
void qmgr_deliver_kick(int x);
void qmgr_deliver_shutdown(void);

/* ---- qmgr_scan.c: directories ------------------------------------------ */

/* Results of one scan; limit is how many files may be activated. */
struct qmgr_scan_result {
    size_t moved;
    bool truncated;     /* more eligible files were left behind */
};
/* active/ at start-up: remember the files a previous qmgr left there
   (returns how many), later activate them again; recover returns how
   many are still locked by a running agent and need another try. */
size_t qmgr_scan_active_snapshot(void);
size_t qmgr_scan_active_recover(void);
void qmgr_scan_free(void);
/* Take on again files in active/ that no active message stands for
   (a failed move or removal out of active/); at most limit. */
size_t qmgr_scan_active_sweep(size_t limit);
void qmgr_scan_incoming(size_t limit, struct qmgr_scan_result *res);
/* Remove writers' temporary files in hold/ untouched for a day (as
   qmgr_scan_incoming does in incoming/); held mail is never touched. */
void qmgr_scan_hold_temp(void);
/* deferred/: files whose mtime <= now, or that were deferred before
   flush_usec (0 = no flush pending). */
void qmgr_scan_deferred(size_t limit, uint64_t flush_usec,
                        struct qmgr_scan_result *res);
/* Move active/<qid> to corrupt/ (never delete). */
void qmgr_scan_quarantine(const char *qid, const char *why);
/* Put active/<qid> back into deferred/ unchanged (due at the next queue
   run) after a transient error, rather than leave it in active/ until
   the next qmgr start. */
void qmgr_scan_requeue(const char *qid);

/* ---- qmgr.c ------------------------------------------------------------ */

/* Room for another active message? */
size_t qmgr_room(void);
/* New mail in incoming/ (a bounce qmgr wrote itself): scan it soon. */
void qmgr_incoming_soon(void);
/* A message left the active set: run scans that were waiting for room. */
void qmgr_poke(void);

#endif
