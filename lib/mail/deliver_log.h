/*
 * deliver_log - the Postfix-form per-recipient status line that qmgr
 * and every delivery agent write:
 *
 *   QID: to=<rcpt>, orig_to=<orig>, relay=host[ip]:port, delay=0.39,
 *   delays=0.01/0/0.02/0.36, dsn=2.0.0, status=sent (250 2.0.0 Ok)
 *
 * so pflogsumm and fail2ban-style readers take Tern's log as Postfix's.
 * delays= is a/b/c/d: before qmgr took the message on, in qmgr's active
 * queue, connection set-up (DNS, connect, greeting, TLS), transmission.
 */
#ifndef TERN_DELIVER_LOG_H
#define TERN_DELIVER_LOG_H

#include <stddef.h>
#include <stdint.h>

struct deliver_times {
    uint64_t arrival_usec;      /* the message arrived (queue file) */
    uint64_t active_usec;       /* qmgr took it on (0: unknown) */
    uint64_t start_usec;        /* the agent got the request */
    uint64_t conn_usec;         /* connection ready (0: none, = start) */
    uint64_t end_usec;          /* the attempt ended (0: now) */
};

/* Seconds as Postfix logs them: "0", "0.01", "0.39", "3.4", "125" (two
   significant digits, at most $delay_logging_resolution_limit after the
   point, trailing zeros dropped, never an exponent). */
void deliver_delay_format(uint64_t usec, char *out, size_t size);

/* "delay=X, delays=a/b/c/d" for t into out. */
void deliver_delays_text(const struct deliver_times *t, char *out,
                         size_t size);

/* Log the status line. orig_to is printed when it is not NULL and not
   the same as to; relay "none" when qmgr decided itself, "local" for
   mailbox delivery. status: "sent", "deferred", "bounced", "expired". */
void deliver_log_status(const char *qid, const char *to, const char *orig_to,
                        const char *relay, const struct deliver_times *t,
                        const char *dsn, const char *status,
                        const char *reason);

#endif
