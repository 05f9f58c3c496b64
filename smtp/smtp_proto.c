/*
 * smtp_proto - the SMTP dialogue with one server (RFC 5321): greeting,
 * EHLO (HELO when EHLO is refused), STARTTLS per the TLS policy, MAIL
 * FROM with SIZE, BODY=8BITMIME, SMTPUTF8 and the DSN parameters when
 * offered, RCPT TO per recipient (PIPELINING: every RCPT in one write,
 * the replies read in order), then DATA with dot-stuffing and CRLF line
 * ends, or BDAT chunks when CHUNKING is offered; RSET before the
 * connection is kept for reuse, QUIT at the end.
 *
 * Outcomes, as Postfix's smtp(8): a 5xx bounces what it concerns (the
 * whole transaction for MAIL/DATA, one recipient for RCPT); a 4xx or a
 * lost connection leaves the recipients open, with the reason, so the
 * next host may take them; what is still open after the last host is
 * deferred with its last reason. Every stage has its own timeout
 * ($smtp_*_timeout, RFC 5321 4.5.3.2).
 *
 * 8-bit content to a server without 8BITMIME is sent as is, as
 * Postfix does by default (RFC 6152 asks for a conversion, which
 * breaks signatures; servers take 8-bit text in practice). A message
 * that needs SMTPUTF8 bounces (5.6.7) at a server without it.
 */
#include "smtp.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/mime_downgrade.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"

#define SMTP_CHUNK 65536

/* smtp_open_each - fn for every recipient still open */
#define SMTP_FOR_OPEN(r, rcpts, n) \
    for (struct smtp_rcpt *r = (rcpts); r < (rcpts) + (n); r++) \
        if (!r->done)

/* smtp_said - "host X[ip] said: 550 5.1.1 ... (in reply to CMD command)" */
static void smtp_said(struct smtp_rcpt *r, const smtp_conn_t *c,
                      const char *cmd)
{
    const smtp_reply_t *rp = &c->reply;

    smtp_rcpt_set(r, rp->code >= 500 ? DELIVER_BOUNCE : DELIVER_DEFER,
                  rp->dsn, "host %s said: %s (in reply to %s command)",
                  c->peer, smtp_reply_text(rp), cmd);
    if (rp->code >= 500)
        r->done = true;
}

/* smtp_all_said - the same reply for every open recipient */
static void smtp_all_said(const smtp_conn_t *c, struct smtp_rcpt *rcpts,
                          size_t n, const char *cmd, bool accepted_only)
{
    SMTP_FOR_OPEN(r, rcpts, n)
        if (!accepted_only || r->accepted)
            smtp_said(r, c, cmd);
}

/* smtp_all_fail - a session error for every open recipient */
static void smtp_all_fail(const smtp_conn_t *c, struct smtp_rcpt *rcpts,
                          size_t n, const char *dsn, const char *while_text)
{
    SMTP_FOR_OPEN(r, rcpts, n)
        smtp_rcpt_set(r, DELIVER_DEFER, dsn, "%s%s%s", c->error,
                      while_text ? " while " : "",
                      while_text ? while_text : "");
}

static void smtp_all_bounce(struct smtp_rcpt *rcpts, size_t n,
                            const char *dsn, const char *reason)
{
    SMTP_FOR_OPEN(r, rcpts, n) {
        smtp_rcpt_set(r, DELIVER_BOUNCE, dsn, "%s", reason);
        r->done = true;
    }
}

/* smtp_xtext - RFC 3461 xtext of s into b */
static void smtp_xtext(buf_t *b, const char *s)
{
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;

        if (ch < '!' || ch > '~' || ch == '+' || ch == '=')
            (void)buf_printf(b, "+%02X", ch);
        else
            (void)buf_putc(b, ch);
    }
}

/* smtp_ehlo_parse - the features of an EHLO reply */
static void smtp_ehlo_parse(smtp_conn_t *c)
{
    static const struct { const char *word; unsigned flag; } kw[] = {
        { "PIPELINING", SMTP_F_PIPELINING }, { "SIZE", SMTP_F_SIZE },
        { "8BITMIME", SMTP_F_8BITMIME }, { "SMTPUTF8", SMTP_F_SMTPUTF8 },
        { "DSN", SMTP_F_DSN }, { "CHUNKING", SMTP_F_CHUNKING },
        { "STARTTLS", SMTP_F_STARTTLS },
    };
    const char *p = buf_str(&c->reply.lines);
    bool first = true;

    c->features = SMTP_F_ESMTP;
    c->size_limit = 0;
    while (*p) {
        size_t len = strcspn(p, "\n");
        size_t wl = strcspn(p, " \n");

        if (!first) {
            for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
                if (wl == strlen(kw[i].word)
                    && strncasecmp(p, kw[i].word, wl) == 0)
                    c->features |= kw[i].flag;
            if (wl == 4 && strncasecmp(p, "SIZE", 4) == 0 && p[4] == ' ') {
                long v = strtol(p + 5, NULL, 10);

                c->size_limit = v > 0 ? v : 0;
            }
        }
        first = false;
        p += len;
        if (*p == '\n')
            p++;
    }
}

/* smtp_loop_check - a server that greets with our own name is this
   host (an MX pointing back at us for a domain we do not accept): the
   mail would loop, so it bounces (5.4.6), as Postfix's does */
static int smtp_loop_check(const smtp_conn_t *c, struct smtp_rcpt *rcpts,
                           size_t n)
{
    const char *p = buf_str(&c->reply.lines);
    size_t len = strcspn(p, " \n");
    char why[SMTP_REASON_MAX];

    if (len == 0 || len != strlen(var_myhostname)
        || strncasecmp(p, var_myhostname, len) != 0)
        return 0;
    (void)snprintf(why, sizeof(why), "mail for %s loops back to myself",
                   c->peer);
    smtp_all_bounce(rcpts, n, "5.4.6", why);
    return -1;
}

/* smtp_helo - EHLO, or HELO when refused; 0 ok, -1 (rcpts told) */
static int smtp_helo(smtp_conn_t *c, struct smtp_rcpt *rcpts, size_t n)
{
    int t = (int)var_smtp_helo_timeout;

    if (smtp_conn_printf(c, t, "EHLO %s\r\n", var_smtp_helo_name) < 0
        || smtp_conn_reply(c, t) < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "performing the EHLO handshake");
        return -1;
    }
    if (c->reply.code / 100 == 2) {
        smtp_ehlo_parse(c);
        return smtp_loop_check(c, rcpts, n);
    }
    c->features = 0;
    if (smtp_conn_printf(c, t, "HELO %s\r\n", var_smtp_helo_name) < 0
        || smtp_conn_reply(c, t) < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "performing the HELO handshake");
        return -1;
    }
    if (c->reply.code / 100 != 2) {
        smtp_all_said(c, rcpts, n, "HELO", false);
        return -1;
    }
    return 0;
}

/* smtp_tls_step - STARTTLS as the policy wants. 0 go on (TLS or not),
   -1 give up this host, -2 'may' handshake failed: retry in plain text */
static int smtp_tls_step(smtp_conn_t *c, const struct smtp_tls_policy *tls,
                         const char *sni, const char *nexthop,
                         struct smtp_rcpt *rcpts, size_t n)
{
    int t = (int)var_smtp_starttls_timeout;
    tls_ctx_t *ctx;
    char names_buf[512], dot[DNS_NAME_MAX + 2];
    const char *names[16];
    size_t nnames = 0;

    if (tls->level == SMTP_TLS_NONE || c->tls != NULL)
        return 0;
    if (!(c->features & SMTP_F_STARTTLS)) {
        if (tls->level == SMTP_TLS_MAY)
            return 0;
        SMTP_FOR_OPEN(r, rcpts, n)
            smtp_rcpt_set(r, DELIVER_DEFER, "4.7.4", "TLS is required, but "
                          "was not offered by host %s", c->peer);
        return -1;
    }
    if ((ctx = smtp_tls_ctx(tls->level)) == NULL) {
        if (tls->level == SMTP_TLS_MAY)
            return 0;
        SMTP_FOR_OPEN(r, rcpts, n)
            smtp_rcpt_set(r, DELIVER_DEFER, "4.7.5", "TLS is required, but "
                          "our TLS engine is unavailable");
        return -1;
    }
    if (smtp_conn_printf(c, t, "STARTTLS\r\n") < 0
        || smtp_conn_reply(c, t) < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "sending STARTTLS");
        return -1;
    }
    if (c->reply.code != 220) {
        if (tls->level == SMTP_TLS_MAY)
            return 0;
        SMTP_FOR_OPEN(r, rcpts, n)
            smtp_rcpt_set(r, DELIVER_DEFER, "4.7.5", "TLS is required, but "
                          "host %s refused to start TLS: %s", c->peer,
                          smtp_reply_text(&c->reply));
        return -1;
    }
    if (tls->level >= SMTP_TLS_VERIFY) {
        /* Postfix's defaults: verify "hostname", secure
           "nexthop:dot-nexthop" */
        (void)snprintf(names_buf, sizeof(names_buf), "%s", *tls->match
                       ? tls->match : tls->level == SMTP_TLS_VERIFY
                       ? "hostname" : "nexthop:dot-nexthop");
        (void)snprintf(dot, sizeof(dot), ".%s", nexthop);
        for (char *save = NULL, *w = strtok_r(names_buf, ":", &save);
             w != NULL && nnames < 16; w = strtok_r(NULL, ":", &save)) {
            if (strcmp(w, "hostname") == 0)
                names[nnames++] = c->host;
            else if (strcmp(w, "nexthop") == 0)
                names[nnames++] = nexthop;
            else if (strcmp(w, "dot-nexthop") == 0)
                names[nnames++] = dot;
            else
                names[nnames++] = w;
        }
    }
    if (smtp_conn_starttls(c, ctx, sni, names, nnames, t) < 0) {
        log_info("%s", c->error);
        if (tls->level == SMTP_TLS_MAY)
            return -2;
        smtp_all_fail(c, rcpts, n, "4.7.5", NULL);
        return -1;
    }
    smtp_tls_log(c, tls->level);
    if (smtp_helo(c, rcpts, n) < 0)
        return -1;
    return 0;
}

/* smtp_body_put - content bytes into out, LF -> CRLF, a bare CR -> space,
   dot-stuffed for DATA; flush(out) when it fills */
struct smtp_body {
    smtp_conn_t *c;
    bool bdat;
    buf_t out;
    bool bol;
};

static int smtp_body_chunk(struct smtp_body *b, bool last)
{
    int t = (int)var_smtp_data_xfer_timeout;

    if (!b->bdat) {
        if (b->out.len > 0
            && smtp_conn_write(b->c, b->out.data, b->out.len, t) < 0)
            return -1;
        buf_reset(&b->out);
        return 0;
    }
    if (smtp_conn_printf(b->c, t, "BDAT %zu%s\r\n", b->out.len,
                         last ? " LAST" : "") < 0
        || (b->out.len > 0
            && smtp_conn_write(b->c, b->out.data, b->out.len, t) < 0))
        return -1;
    buf_reset(&b->out);
    if (last)
        return 0;
    if (smtp_conn_reply(b->c, (int)var_smtp_data_xfer_timeout) < 0)
        return -1;
    return b->c->reply.code / 100 == 2 ? 0 : 1;
}

/* smtp_body_send - the content; 0 sent (final reply not read yet), -1
   I/O error, 1 a BDAT chunk was refused (c->reply) */
static int smtp_body_send(smtp_conn_t *c, const struct smtp_msg *msg,
                          const buf_t *mem, bool bdat)
{
    struct smtp_body b = { c, bdat, BUF_INIT, true };
    char chunk[16384];
    uint64_t done = 0, len = mem != NULL ? mem->len : msg->content_len;
    int rc;

    buf_init(&b.out, 0);
    while (done < len) {
        size_t want = len - done < sizeof(chunk) ? (size_t)(len - done)
                                                 : sizeof(chunk);
        const char *in = chunk;
        ssize_t got;

        if (mem != NULL) {
            in = mem->data + done;
            got = (ssize_t)want;
        } else {
            got = pread(msg->fd, chunk, want,
                        msg->content_offset + (off_t)done);
        }
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            (void)snprintf(c->error, sizeof(c->error),
                           "cannot read queue file content");
            buf_free(&b.out);
            return -1;
        }
        for (ssize_t i = 0; i < got; i++) {
            char ch = in[i];

            if (b.bol && ch == '.' && !bdat)
                (void)buf_putc(&b.out, '.');
            /* stored lines end in LF, so a CR is a bare one (smtpd keeps
               it as content); RFC 5321 4.1.1.4 forbids sending it, and a
               receiver that took it for a line end could be smuggled a
               "<CR>.<CR>" end of data: it goes out as a space */
            if (ch == '\r')
                ch = ' ';
            if (ch == '\n') {
                (void)buf_append(&b.out, "\r\n", 2);
                b.bol = true;
            } else {
                (void)buf_putc(&b.out, ch);
                b.bol = false;
            }
        }
        done += (uint64_t)got;
        if (b.out.len >= SMTP_CHUNK && (rc = smtp_body_chunk(&b, false)) != 0) {
            buf_free(&b.out);
            return rc;
        }
    }
    if (!b.bol)
        (void)buf_append(&b.out, "\r\n", 2);
    if (!bdat)
        (void)buf_append(&b.out, ".\r\n", 3);
    rc = smtp_body_chunk(&b, true);
    buf_free(&b.out);
    return rc;
}

/* smtp_mail_cmd - "MAIL FROM:<s> ..." into b */
static void smtp_mail_cmd(const smtp_conn_t *c, const struct smtp_msg *msg,
                          buf_t *b)
{
    (void)buf_printf(b, "MAIL FROM:<%s>", msg->sender);
    if (c->features & SMTP_F_SIZE)
        (void)buf_printf(b, " SIZE=%llu", (unsigned long long)msg->content_len);
    if (msg->eightbit && (c->features & SMTP_F_8BITMIME))
        (void)buf_puts(b, " BODY=8BITMIME");
    if (msg->smtputf8 && (c->features & SMTP_F_SMTPUTF8))
        (void)buf_puts(b, " SMTPUTF8");
    if (c->features & SMTP_F_DSN) {
        if (msg->ret)
            (void)buf_printf(b, " RET=%s", msg->ret);
        if (msg->envid) {
            (void)buf_puts(b, " ENVID=");
            smtp_xtext(b, msg->envid);
        }
    }
    (void)buf_puts(b, "\r\n");
}

static void smtp_rcpt_cmd(const smtp_conn_t *c, const struct smtp_rcpt *r,
                          buf_t *b)
{
    (void)buf_printf(b, "RCPT TO:<%s>", r->qr->address);
    if (c->features & SMTP_F_DSN) {
        char notify[QREC_NOTIFY_TEXT_MAX];

        if (r->qr->dsn_notify
            && queue_notify_format(r->qr->dsn_notify, notify,
                                   sizeof(notify)) == 0)
            (void)buf_printf(b, " NOTIFY=%s", notify);
        if (r->qr->dsn_orcpt) {
            const char *semi = strchr(r->qr->dsn_orcpt, ';');

            if (semi != NULL) {
                (void)buf_printf(b, " ORCPT=%.*s;",
                                 (int)(semi - r->qr->dsn_orcpt),
                                 r->qr->dsn_orcpt);
                smtp_xtext(b, semi + 1);
            }
        }
    }
    (void)buf_puts(b, "\r\n");
}

int smtp_proto_rset(smtp_conn_t *c)
{
    int t = (int)var_smtp_mail_timeout;

    if (smtp_conn_printf(c, t, "RSET\r\n") < 0 || smtp_conn_reply(c, t) < 0
        || c->reply.code / 100 != 2)
        return -1;
    return 0;
}

void smtp_proto_quit(smtp_conn_t *c)
{
    int t = (int)var_smtp_quit_timeout;

    if (c->fd >= 0 && smtp_conn_printf(c, t, "QUIT\r\n") == 0)
        (void)smtp_conn_reply(c, t);
    smtp_conn_close(c);
}

/* smtp_content_read - the whole content of the queue file into out */
static int smtp_content_read(const struct smtp_msg *msg, buf_t *out)
{
    char chunk[65536];
    uint64_t done = 0;

    while (done < msg->content_len) {
        size_t want = msg->content_len - done < sizeof(chunk)
                      ? (size_t)(msg->content_len - done) : sizeof(chunk);
        ssize_t got = pread(msg->fd, chunk, want,
                            msg->content_offset + (off_t)done);

        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0 || buf_append(out, chunk, (size_t)got) < 0)
            return -1;
        done += (uint64_t)got;
    }
    return 0;
}

/* smtp_downgrade - 8-bit content for a server without 8BITMIME: its
   7-bit MIME form into seven (RFC 6152 3, mime_downgrade.h); what cannot
   be converted bounces every recipient with 5.6.3 (-1) */
static int smtp_downgrade(const smtp_conn_t *c, const struct smtp_msg *msg,
                          buf_t *seven, struct smtp_rcpt *rcpts, size_t n)
{
    buf_t orig = BUF_INIT;
    const char *why = "cannot read queue file content";
    char text[SMTP_REASON_MAX];
    int rc = -1;

    if (smtp_content_read(msg, &orig) == 0
        && mime_downgrade(orig.data ? orig.data : "", orig.len, seven,
                          &why) == 0)
        rc = 0;
    buf_free(&orig);
    if (rc == 0)
        return 0;
    buf_free(seven);
    (void)snprintf(text, sizeof(text), "host %s does not offer 8BITMIME and "
                   "the message cannot be converted to 7 bit: %s", c->peer,
                   why);
    smtp_all_bounce(rcpts, n, "5.6.3", text);
    return -1;
}

/* smtp_transaction_run - MAIL, RCPTs, DATA/BDAT with the content from
   the file, or seven when not NULL; 0 the session is still good, -1 it
   is not */
static int smtp_transaction_run(smtp_conn_t *c, struct smtp_msg *msg,
                                struct smtp_rcpt *rcpts, size_t n,
                                const buf_t *seven)
{
    bool pipe = c->features & SMTP_F_PIPELINING;
    bool bdat = c->features & SMTP_F_CHUNKING;
    size_t accepted = 0, sent = 0;
    buf_t cmd;
    int rc;

    if (msg->needs_utf8 && !(c->features & SMTP_F_SMTPUTF8)) {
        char why[SMTP_REASON_MAX];

        (void)snprintf(why, sizeof(why), "SMTPUTF8 is required, but was not "
                       "offered by host %s", c->peer);
        smtp_all_bounce(rcpts, n, "5.6.7", why);
        return 0;
    }
    if (c->size_limit > 0 && msg->content_len > (uint64_t)c->size_limit) {
        char why[SMTP_REASON_MAX];

        (void)snprintf(why, sizeof(why), "message size %llu exceeds size "
                       "limit %ld of server %s",
                       (unsigned long long)msg->content_len, c->size_limit,
                       c->peer);
        smtp_all_bounce(rcpts, n, "5.3.4", why);
        return 0;
    }
    buf_init(&cmd, 0);
    smtp_mail_cmd(c, msg, &cmd);
    if (pipe) {
        SMTP_FOR_OPEN(r, rcpts, n) {
            smtp_rcpt_cmd(c, r, &cmd);
            sent++;
        }
    }
    rc = smtp_conn_write(c, cmd.data, cmd.len, (int)var_smtp_mail_timeout);
    buf_free(&cmd);
    if (rc < 0 || smtp_conn_reply(c, (int)var_smtp_mail_timeout) < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "sending MAIL FROM");
        return -1;
    }
    if (c->reply.code / 100 != 2) {
        smtp_all_said(c, rcpts, n, "MAIL FROM", false);
        if (pipe) {             /* read the RCPT replies we caused */
            for (size_t i = 0; i < sent; i++)
                if (smtp_conn_reply(c, (int)var_smtp_rcpt_timeout) < 0)
                    return -1;
        }
        return smtp_proto_rset(c);
    }
    SMTP_FOR_OPEN(r, rcpts, n) {
        buf_t one;

        if (!pipe) {
            buf_init(&one, 0);
            smtp_rcpt_cmd(c, r, &one);
            rc = smtp_conn_write(c, one.data, one.len,
                                 (int)var_smtp_rcpt_timeout);
            buf_free(&one);
            if (rc < 0) {
                smtp_all_fail(c, rcpts, n, "4.4.2", "sending RCPT TO");
                return -1;
            }
        }
        if (smtp_conn_reply(c, (int)var_smtp_rcpt_timeout) < 0) {
            smtp_all_fail(c, rcpts, n, "4.4.2", "sending RCPT TO");
            return -1;
        }
        if (c->reply.code / 100 == 2) {
            r->accepted = true;
            accepted++;
        } else {
            smtp_said(r, c, "RCPT TO");
        }
    }
    if (accepted == 0)
        return smtp_proto_rset(c);
    if (!bdat) {
        if (smtp_conn_printf(c, (int)var_smtp_data_init_timeout,
                             "DATA\r\n") < 0
            || smtp_conn_reply(c, (int)var_smtp_data_init_timeout) < 0) {
            smtp_all_fail(c, rcpts, n, "4.4.2", "sending DATA command");
            return -1;
        }
        if (c->reply.code != 354) {
            smtp_all_said(c, rcpts, n, "DATA", true);
            return smtp_proto_rset(c);
        }
    }
    rc = smtp_body_send(c, msg, seven, bdat);
    if (rc < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "sending message body");
        return -1;
    }
    if (rc == 0 && smtp_conn_reply(c, (int)var_smtp_data_done_timeout) < 0) {
        smtp_all_fail(c, rcpts, n, "4.4.2", "sending end of data -- message "
                      "may be sent more than once");
        return -1;
    }
    SMTP_FOR_OPEN(r, rcpts, n) {
        if (!r->accepted)
            continue;
        if (c->reply.code / 100 == 2) {
            smtp_rcpt_set(r, DELIVER_OK, c->reply.dsn, "%s",
                          smtp_reply_text(&c->reply));
            r->no_dsn = !(c->features & SMTP_F_DSN);
            r->done = true;
        } else {
            smtp_said(r, c, bdat ? "BDAT" : "end of DATA");
        }
    }
    return rc == 0 ? 0 : smtp_proto_rset(c);
}

/* smtp_transaction - one message on the session, made 7-bit first for
   a server without 8BITMIME; 0 the session is still good, -1 it is not */
static int smtp_transaction(smtp_conn_t *c, struct smtp_msg *msg,
                            struct smtp_rcpt *rcpts, size_t n)
{
    buf_t seven = BUF_INIT;
    int rc;

    if (!msg->eightbit || (c->features & SMTP_F_8BITMIME)
        || (msg->needs_utf8 && !(c->features & SMTP_F_SMTPUTF8)))
        return smtp_transaction_run(c, msg, rcpts, n, NULL);
    if (smtp_downgrade(c, msg, &seven, rcpts, n) < 0)
        return 0;
    rc = smtp_transaction_run(c, msg, rcpts, n, &seven);
    buf_free(&seven);
    return rc;
}

int smtp_proto_deliver(smtp_conn_t *c, bool fresh, const char *nexthop,
                       const struct smtp_tls_policy *tls,
                       struct smtp_msg *msg, struct smtp_rcpt *rcpts,
                       size_t n, bool *dead_r)
{
    const char *sni = NULL;
    int rc;

    *dead_r = false;
    SMTP_FOR_OPEN(r, rcpts, n) {
        r->accepted = false;
        (void)snprintf(r->relay, sizeof(r->relay), "%s", c->relay);
    }
    if (fresh) {
        if (smtp_conn_reply(c, (int)var_smtp_helo_timeout) < 0) {
            smtp_all_fail(c, rcpts, n, "4.4.2",
                          "receiving the initial server greeting");
            *dead_r = true;
            return -1;
        }
        if (c->reply.code != 220) {
            /* a 5xx greeting is like a 4xx: the next MX may do (Postfix's
               smtp_skip_5xx_greeting = yes) */
            SMTP_FOR_OPEN(r, rcpts, n)
                smtp_rcpt_set(r, DELIVER_DEFER,
                              c->reply.code >= 500 ? "4.3.0" : c->reply.dsn,
                              "host %s refused to talk to me: %s", c->peer,
                              smtp_reply_text(&c->reply));
            *dead_r = true;
            return -1;
        }
        if (smtp_helo(c, rcpts, n) < 0)
            return -1;
        if (*var_smtp_tls_servername == '\0')
            sni = NULL;
        else if (strcmp(var_smtp_tls_servername, "hostname") == 0)
            sni = c->host;
        else if (strcmp(var_smtp_tls_servername, "nexthop") == 0)
            sni = nexthop;
        else
            sni = var_smtp_tls_servername;
        if (tls->level >= SMTP_TLS_VERIFY && sni == NULL)
            sni = c->host;
        if ((rc = smtp_tls_step(c, tls, sni, nexthop, rcpts, n)) < 0)
            return rc;
    }
    /* delays= "c": DNS, connect, greeting, EHLO and TLS are done */
    SMTP_FOR_OPEN(r, rcpts, n)
        r->conn_usec = time_now_usec();
    return smtp_transaction(c, msg, rcpts, n);
}
