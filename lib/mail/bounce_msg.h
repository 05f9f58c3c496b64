/*
 * bounce_msg - the content of a delivery status notification (RFC 3464
 * inside an RFC 6522 multipart/report): a non-delivery report, a delay
 * warning or a success notice. Our own header section (From:
 * MAILER-DAEMON, To: the original sender, Subject, Date, Message-ID,
 * Auto-Submitted, MIME-Version), then three parts:
 *   1. text/plain: what happened, in words, one line per recipient;
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id
 *      (ENVID), Arrival-Date, and per recipient Final-Recipient,
 *      Original-Recipient (ORCPT), Action (failed, delayed, delivered
 *      or relayed), Status, Diagnostic-Code, and for a delay
 *      Will-Retry-Until;
 *   3. the original: for a failure message/rfc822 with all of it, or
 *      text/rfc822-headers with its header section only (RET=HDRS);
 *      delay and success notices carry the headers only (RFC 3461
 *      4.3). At most size_limit bytes of the original are attached: the
 *      header section whole, then what fits of the body, cut at a line
 *      end.
 * Output is in the store format (LF line ends). Every line we generate
 * stays under 998 bytes: fields are folded at spaces, and a word that
 * is too long anyway is cut. Control characters (and 8-bit bytes) in
 * addresses and reasons become '?'. The original's lines are copied
 * unchanged.
 */
#ifndef TERN_BOUNCE_MSG_H
#define TERN_BOUNCE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>
#include "util/buf.h"

enum bounce_msg_kind {
    BOUNCE_MSG_FAILED = 0,      /* non-delivery report */
    BOUNCE_MSG_DELAYED,         /* delay warning */
    BOUNCE_MSG_SUCCESS,         /* success notice (NOTIFY=SUCCESS) */
};

struct bounce_rcpt {
    const char *address;        /* the recipient reported on */
    const char *dsn_orcpt;      /* DSN ORCPT "rfc822;addr", or NULL */
    const char *status;         /* "5.1.1"; NULL: 5.0.0, 4.0.0, 2.0.0 */
    const char *diagnostic;     /* reason text, or NULL (unknown) */
    const char *action;         /* NULL: failed, delayed, delivered */
    const char *orig_rcpt;      /* the address before aliasing/rewriting,
                                   or NULL: without a DSN ORCPT it is
                                   reported as rfc822;orig_rcpt */
};

struct bounce_info {
    enum bounce_msg_kind kind;
    const char *myhostname;
    const char *sender;         /* original envelope sender: To: */
    const char *qid;            /* original queue ID (text only) */
    const char *envid;          /* DSN ENVID, or NULL */
    bool ret_hdrs;              /* RET=HDRS: headers only */
    time_t arrival;             /* when the original arrived */
    time_t now;                 /* Date: */
    time_t will_retry_until;    /* delay warnings: given up then; 0 none */
    const char *delayed_for;    /* delay warnings: "4 hours" (text) */
    size_t size_limit;          /* bytes of the original; 0 unlimited */
    const char *boundary;       /* NULL: a random one */
    const struct bounce_rcpt *rcpts;
    size_t nrcpts;
};

/* Append the report for the original content (LF line ends, as stored)
   to out. 0, or -1 with errno (ENOMEM: out's limit; EINVAL: no
   recipients). */
int bounce_msg_build(const struct bounce_info *b, const char *content,
                     size_t len, buf_t *out);

#endif
