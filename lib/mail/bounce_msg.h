/*
 * bounce_msg - the content of a non-delivery report (RFC 3464 inside an
 * RFC 6522 multipart/report): our own header section (From:
 * MAILER-DAEMON, To: the original sender, Subject, Date, Message-ID,
 * Auto-Submitted, MIME-Version), then three parts:
 *   1. text/plain: what happened, in words, one line per recipient;
 *   2. message/delivery-status: Reporting-MTA, Original-Envelope-Id
 *      (ENVID), Arrival-Date, and per recipient Final-Recipient,
 *      Original-Recipient (ORCPT), Action: failed, Status,
 *      Diagnostic-Code;
 *   3. the original: message/rfc822 with all of it, or
 *      text/rfc822-headers with its header section only (RET=HDRS).
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

struct bounce_rcpt {
    const char *address;        /* the recipient that failed */
    const char *dsn_orcpt;      /* DSN ORCPT "rfc822;addr", or NULL */
    const char *status;         /* "5.1.1"; NULL: "5.0.0" */
    const char *diagnostic;     /* reason text, or NULL (unknown) */
};

struct bounce_info {
    const char *myhostname;
    const char *sender;         /* original envelope sender: To: */
    const char *qid;            /* original queue ID (text only) */
    const char *envid;          /* DSN ENVID, or NULL */
    bool ret_hdrs;              /* RET=HDRS: headers only */
    time_t arrival;             /* when the original arrived */
    time_t now;                 /* Date: */
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
