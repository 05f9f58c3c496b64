/*
 * qmgr.h - internal interfaces between the queue manager's modules:
 * qmgr.c (main, triggers, scan scheduling), qmgr_scan.c (directory
 * scans and moves into active/), qmgr_message.c (in-memory active
 * messages, routing and their final disposal), qmgr_queue.c
 * (transports, destination queues, the fair choice of the next request),
 * qmgr_notify.c (reasons and reports to senders), qmgr_deliver.c
 * (connections to delivery agents) and qmgr_policy.c (pure decisions,
 * unit-tested).
 */
#ifndef TERN_QMGR_QMGR_H
#define TERN_QMGR_QMGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/attr.h"
#include "util/buf.h"
#include "util/events.h"
#include "util/htable.h"
#include "mail/deliver.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/route.h"

struct qmgr_msg;
struct qmgr_conn;

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
/* Domain part of an address (after the last '@'), "" if none. */
const char *qmgr_rcpt_domain(const char *rcpt);

/* A transport's limits: <transport>_destination_concurrency_limit,
   <transport>_destination_recipient_limit,
   <transport>_initial_destination_concurrency and
   <transport>_destination_concurrency_failed_cohort_limit, each falling
   back to the default_ (or plain) parameter. */
struct qmgr_limits {
    long concurrency;       /* most requests in flight per destination */
    long recipients;        /* most recipients per request */
    long initial;           /* window of a new destination */
    long cohort;            /* failures at window 1 before "dead" */
};
void qmgr_transport_limits(const char *transport, struct qmgr_limits *out);
/* The value of <transport>_<suffix> (main.conf or -o, any name), else
   of fallback; clamped to [min, max]. */
long qmgr_transport_param(const char *transport, const char *suffix,
                          const char *fallback, long min, long max);
/* The destination queue a recipient waits in: its next hop, or with a
   recipient limit of 1 the recipient itself (at that next hop), as
   Postfix does, so one stalled mailbox holds few local slots. */
void qmgr_dest_key(const char *rcpt, const char *nexthop, long rcpt_limit,
                   buf_t *out);

/* Per-destination concurrency window (slow start and back-off, a simple
   form of Postfix's feedback): a new destination may have lim->initial
   requests in flight; each window's worth of successes opens it by one
   up to lim->concurrency; a failure (no usable reply) closes it by one;
   lim->cohort failures in a row at window 1 make the destination dead. */
struct qmgr_window {
    long window;
    long successes;         /* since the window last grew */
    long failures;          /* in a row, at window 1 */
};
void qmgr_window_init(struct qmgr_window *w, const struct qmgr_limits *lim);
void qmgr_window_success(struct qmgr_window *w, const struct qmgr_limits *lim);
/* true: the destination is dead now */
bool qmgr_window_failure(struct qmgr_window *w, const struct qmgr_limits *lim);
/* May another request go to a destination with busy in flight? */
bool qmgr_window_open(const struct qmgr_window *w, long busy);

/* The delivery request (deliver.h) for recipients idx[0..n) of m. */
void qmgr_request_build(const queue_msg_t *m, const size_t *idx, size_t n,
                        const char *transport, const char *nexthop,
                        uint64_t active_usec, attr_list_t *out);
/* "5 days", "3 hours", "1 minute", "20 seconds" (largest whole unit) */
void qmgr_duration_text(long seconds, char *out, size_t size);

/* ---- qmgr_queue.c: transports, destinations, entries ------------------- */

/* recipients of one message waiting at one destination, in file order */
struct qmgr_entry {
    struct qmgr_msg *m;
    size_t *idx, n, cap;
    struct qmgr_entry *next;
};

typedef struct qmgr_dest {
    char *key;                  /* qmgr_dest_key() */
    char *nexthop;              /* what its requests carry */
    struct qmgr_transport *t;
    struct qmgr_entry *head, *tail;     /* FIFO by activation */
    size_t npending;            /* recipients in the entries */
    long busy;                  /* requests in flight */
    struct qmgr_window win;
    uint64_t dead_until;        /* usec; 0 = alive */
    char *dead_reason;
    bool ready;                 /* on the transport's ring */
    struct qmgr_dest *rnext;
    bool on_dead_list;          /* on the transport's list of the dead */
    struct qmgr_dest *dnext;
} qmgr_dest_t;

typedef struct qmgr_transport {
    char name[ROUTE_TRANSPORT_MAX];
    char path[ROUTE_TRANSPORT_MAX + 16];    /* "private/<name>" */
    struct qmgr_limits lim;
    htable_t *dests;            /* qmgr_dest_t by key */
    qmgr_dest_t *ring_head, *ring_tail;     /* ready destinations */
    qmgr_dest_t *dead;          /* died, not yet swept */
    struct qmgr_conn *conns;    /* qmgr_deliver.c */
    size_t nconns;
    ev_timer_t kick_timer, retry_timer;
    struct qmgr_transport *next;
} qmgr_transport_t;

/* one request's worth: recipients of one message for one destination */
struct qmgr_job {
    struct qmgr_msg *m;
    qmgr_dest_t *d;
    size_t n;
    size_t idx[DELIVER_MAX_RCPTS];
};

/* how a request ended, for the destination's window */
enum qmgr_feedback {
    QF_OK,          /* the agent replied */
    QF_FAILED,      /* no usable reply (lost, timeout, garbled) */
    QF_DEAD,        /* the agent said dest_status=dead */
    QF_NONE,        /* says nothing about the destination */
};

extern qmgr_transport_t *qmgr_transports;
/* The transport of that name (made on first use). */
qmgr_transport_t *qmgr_transport_get(const char *name);
/* Queue recipient i of m at its destination (route r). false when the
   destination is dead: *reason_r says why (recipient not queued). */
bool qmgr_queue_add(struct qmgr_msg *m, size_t i, const route_t *r,
                    const char **reason_r);
/* The next request for t, round robin over its ready destinations;
   false when none may be sent now. */
bool qmgr_queue_next_job(qmgr_transport_t *t, struct qmgr_job *job);
/* A request ended: the destination's window learns fb (reason: why it
   failed or died). Its recipients are the caller's to settle after. */
void qmgr_queue_job_done(struct qmgr_job *job, enum qmgr_feedback fb,
                         const char *reason);
bool qmgr_transport_has_work(const qmgr_transport_t *t);
/* Defer every waiting recipient of t with reason (transport unusable). */
void qmgr_transport_defer_all(qmgr_transport_t *t, const char *reason);
/* Forget destinations whose dead time is over and that nothing uses
   (each queue run), so a long life of dead sites does not add up. */
void qmgr_queue_sweep(void);
/* A flush: the dead destinations are alive again (their back-off ends). */
void qmgr_queue_revive_all(void);
void qmgr_queue_free_all(void);

/* ---- qmgr_message.c: active messages ---------------------------------- */

enum qmgr_rstate {
    QR_DONE = 0,        /* 'D' or 'B' in the file, nothing to do */
    QR_PENDING,         /* 'R', waiting at its destination */
    QR_BUSY,            /* request in flight */
    QR_DEFERRED,        /* tried (or could not be) this round; stays 'R' */
};

typedef struct qmgr_msg {
    queue_msg_t qm;                 /* envelope; content is never read */
    uint64_t active_usec;           /* when qmgr took it on (delays=) */
    unsigned char *rstate;          /* enum qmgr_rstate per recipient */
    char **rdsn, **rreason;         /* a recipient's latest dsn and reason
                                       (qmgr_notify: agent's reply, qmgr's
                                       deferral, or the defer/ log), NULL
                                       if unknown */
    bool notify_loaded;             /* qmgr_notify read the defer/ log */
    bool defer_log;                 /* a defer/ log may exist (false only
                                       for mail that arrived in incoming/
                                       after this qmgr started and that
                                       it has not written one for) */
    int fd;                         /* the open queue file, or -1 */
    size_t npending;                /* QR_PENDING recipients */
    size_t nbusy;                   /* QR_BUSY recipients */
    struct qmgr_msg *prev, *next;   /* all active messages, FIFO */
} qmgr_msg_t;

extern size_t qmgr_active_count;
extern size_t qmgr_active_rcpts;    /* recipients of active messages */

/* Take on active/<qid> (already moved there). Logs and quarantines a
   corrupt file. fresh: it was just moved from incoming/ (so unless it
   predates this qmgr, it has no defer/ log). */
void qmgr_message_activate(const char *qid, bool fresh);
/* Is a message of this queue ID active (in memory)? A message is never
   active twice: a second name of it (deferred/ after a power loss, a
   hard link) is left alone until the first is finished. */
bool qmgr_message_is_active(const char *qid);
/* A recipient's attempt ended (DELIVER_OK/BOUNCE/DEFER). When qmgr
   itself decided (no agent reply), reason is logged as the deferral. */
void qmgr_message_rcpt_done(qmgr_msg_t *m, size_t i, int status,
                            const char *qmgr_reason);
/* m's sender, "" for the null sender */
const char *qmgr_message_sender(const qmgr_msg_t *m);
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
void qmgr_notify_removed(const qmgr_msg_t *m);

/* ---- qmgr_deliver.c: agent connections -------------------------------- */

void qmgr_deliver_init(ev_loop_t *loop);
/* Set up t's timers (qmgr_transport_get). */
void qmgr_deliver_transport_init(qmgr_transport_t *t);
/* There may be new work for t (runs from the loop, soon). */
void qmgr_deliver_kick(qmgr_transport_t *t);
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
/* Remove writers' temporary files in incoming/ and hold/ untouched for
   a day; held mail is never touched. (Each queue run; the next scan of
   incoming/ opens it again.) */
void qmgr_scan_temp(void);
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

/* when this qmgr started (time_now_usec) */
extern uint64_t qmgr_start_usec;
/* Room for another active message? */
size_t qmgr_room(void);
/* New mail in incoming/ (a bounce qmgr wrote itself): scan it soon. */
void qmgr_incoming_soon(void);
/* A message left the active set: run scans that were waiting for room. */
void qmgr_poke(void);

#endif
