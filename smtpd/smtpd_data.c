/*
 * smtpd_data - DATA: open a queue file in incoming/, write the envelope
 * and our Received: header, stream the decoded content into it, and
 * commit. "250" is only said after queue_writer_commit() made the file
 * durable; every other outcome discards it.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "mail/config.h"
#include "util/log.h"
#include "mail/server.h"
#include "util/util.h"

/* data_write_failed - remember the first queue file error, drop the file */
static void data_write_failed(struct smtpd_session *s, const char *what)
{
    if (s->txn.write_errno == 0) {
        s->txn.write_errno = errno ? errno : EIO;
        log_warning("%s: queue file %s: %s", s->txn.qw.qid, what,
                    strerror(s->txn.write_errno));
    }
    smtpd_data_abort(s);
}

void smtpd_data_abort(struct smtpd_session *s)
{
    if (s->txn.qw_open) {
        queue_writer_abort(&s->txn.qw);
        s->txn.qw_open = false;
    }
}

/* data_date - RFC 5322 date of now */
static void data_date(char *out, size_t size)
{
    time_t now = time(NULL);
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL
        || strftime(out, size, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        (void)snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* data_received - our Received: header (the "for" clause only for one
   recipient, so a Bcc list is not disclosed) */
static int data_received(struct smtpd_session *s)
{
    char date[64];
    buf_t h;
    int rc;

    data_date(date, sizeof(date));
    buf_init(&h, 4096);
    (void)buf_printf(&h, "Received: from %s (unknown [%s%s])\n"
                     "\tby %s (Tern) with %s id %s",
                     s->have_helo ? s->helo : "unknown",
                     strchr(s->addr, ':') ? "IPv6:" : "", s->addr,
                     var_myhostname, smtpd_proto(s), s->txn.qw.qid);
    if (s->txn.nrcpts == 1) {
        /* addresses may be UTF-8: no C1 or line separators in a header */
        char *shown = xstrdup(s->txn.rcpts[0]);

        (void)log_scrub(shown);
        (void)buf_printf(&h, "\n\tfor <%s>", shown);
        free(shown);
    }
    rc = buf_printf(&h, "; %s\n", date);
    if (rc == 0)
        rc = queue_writer_content(&s->txn.qw, h.data, h.len);
    buf_free(&h);
    return rc;
}

/* data_envelope - sender, attributes, recipients, start of content */
static int data_envelope(struct smtpd_session *s)
{
    queue_writer_t *w = &s->txn.qw;

    if (queue_writer_record(w, QREC_SENDER, s->txn.sender,
                            strlen(s->txn.sender)) < 0
        || queue_writer_attr(w, "client_name", "unknown") < 0
        || queue_writer_attr(w, "client_address", s->addr) < 0
        || (s->have_helo && queue_writer_attr(w, "helo_name", s->helo) < 0)
        || queue_writer_attr(w, "protocol", smtpd_proto(s)) < 0)
        return -1;
    for (size_t i = 0; i < s->txn.nrcpts; i++)
        if (queue_writer_record(w, QREC_RCPT, s->txn.rcpts[i],
                                strlen(s->txn.rcpts[i])) < 0)
            return -1;
    if (queue_writer_content_begin(w) < 0)
        return -1;
    return data_received(s);
}

bool smtpd_data_begin(struct smtpd_session *s)
{
    if (!s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    if (s->txn.nrcpts == 0) {
        /* RFC 5321 3.3 allows 503 or 554; 554 (Postfix's choice) tells a
           pipelining client that all its RCPTs were refused */
        smtpd_reply(s, "554 5.5.1 Error: no valid recipients");
        return false;
    }
    s->txn.write_errno = 0;
    if (queue_writer_open(&s->txn.qw, QUEUE_INCOMING) < 0) {
        log_warning("cannot create a queue file in %s: %s", QUEUE_INCOMING,
                    strerror(errno));
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return false;
    }
    s->txn.qw_open = true;
    log_info("%s: client=%s", s->txn.qw.qid, s->namaddr);
    if (data_envelope(s) < 0) {
        data_write_failed(s, "write");
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return false;
    }
    if (s->txn.dec == NULL)
        s->txn.dec = xmalloc(sizeof(*s->txn.dec));
    smtpdata_init(s->txn.dec);
    buf_reset(&s->dbuf);
    s->txn.data_bytes = 0;       /* the deadline starts with the 354 */
    s->txn.in_data = true;
    smtpd_reply(s, "354 End data with <CR><LF>.<CR><LF>");
    return true;
}

static bool data_too_big(const struct smtpd_session *s)
{
    return var_message_size_limit > 0
           && s->txn.dec->size > (uint64_t)var_message_size_limit;
}

/* data_store - move decoded content to the queue file, or drop it */
static void data_store(struct smtpd_session *s)
{
    if (s->txn.qw_open && data_too_big(s))
        smtpd_data_abort(s);            /* keep reading, say 552 at the end */
    if (s->txn.qw_open && s->dbuf.len > 0
        && queue_writer_content(&s->txn.qw, s->dbuf.data, s->dbuf.len) < 0)
        data_write_failed(s, "write");
    buf_reset(&s->dbuf);
}

/* data_commit - make the file durable, then and only then say 250 */
static void data_commit(struct smtpd_session *s)
{
    char qid[QUEUE_ID_SIZE];

    memcpy(qid, s->txn.qw.qid, sizeof(qid));
    /* The fsync'ing commit runs synchronously in the event loop: other
       sessions of this process wait for it. This is the place to batch
       commits (group fsync) later. */
    s->txn.qw_open = false;
    if (queue_writer_commit(&s->txn.qw) < 0) {
        log_warning("%s: queue file commit: %s", qid, strerror(errno));
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
        return;
    }
    if (smtpdata_has_message_id(s->txn.dec))
        log_info("%s: message-id=%s", qid, s->txn.dec->message_id);
    s->cmd_ok[SMTP_DATA]++;
    s->errors = 0;
    smtpd_reply(s, "250 2.0.0 Ok: queued as %s", qid);
    if (trigger_send("public/qmgr", TRIGGER_NEW_MAIL) < 0)
        log_warning("%s: cannot wake qmgr: %s", qid, strerror(errno));
}

/* data_finish - the end-of-data line arrived: one final reply */
static void data_finish(struct smtpd_session *s)
{
    s->txn.in_data = false;
    if (s->txn.dec->bare_lf
        && strcasecmp(var_smtpd_forbid_bare_newline, "reject") == 0) {
        smtpd_data_abort(s);
        log_info("%s: reject: bare <LF> in DATA from %s", s->txn.qw.qid,
                 s->namaddr);
        smtpd_reply(s, "550 5.5.2 Error: bare <LF> received");
    } else if (data_too_big(s)) {
        smtpd_data_abort(s);
        log_info("%s: reject: message size %llu exceeds limit %ld from %s",
                 s->txn.qw.qid, (unsigned long long)s->txn.dec->size,
                 var_message_size_limit, s->namaddr);
        smtpd_reply(s, "552 5.3.4 Error: message file too big");
    } else if (!s->txn.qw_open || s->txn.write_errno != 0) {
        smtpd_data_abort(s);
        smtpd_reply(s, "451 4.3.0 Error: queue file write error");
    } else {
        data_commit(s);
    }
    free(s->txn.dec);
    s->txn.dec = NULL;
    smtpd_txn_reset(s);
}

bool smtpd_data_input(struct smtpd_session *s)
{
    const char *p;
    size_t n, used = 0;
    int rc;

    n = stream_peek(s->stream, &p);
    if (n == 0)
        return false;
    rc = smtpdata_feed(s->txn.dec, p, n, &s->dbuf, &used);
    if (rc < 0) {                       /* dbuf is unlimited: cannot be */
        errno = ENOMEM;
        data_write_failed(s, "buffer");
        used = n;
        buf_reset(&s->dbuf);
    }
    stream_consume(s->stream, used);
    data_store(s);
    if (rc == 1)
        data_finish(s);
    else
        smtpd_data_deadline(s, used);
    return true;
}
