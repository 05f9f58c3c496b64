/*
 * smtpd - the SMTP receiver: an event server with many sessions per
 * process. This file owns a session's life (connect, pipelined command
 * loop, replies, error counting and delays, timeouts, disconnect); the
 * commands, DATA and the recipient policy live in the other smtpd_*.c.
 *
 * Security: runs as mail_owner, chrooted when master.conf says so; all
 * client input is bounded by the stream (line_length_limit) and DATA is
 * decoded by lib/smtpdata.c.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "mail/config.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "mail/server.h"
#include "util/sys.h"
#include "util/util.h"

static void smtpd_shutdown_session(struct smtpd_session *s);

void smtpd_commit_over(struct smtpd_session *s)
{
    if (s->stop_after_commit)
        smtpd_shutdown_session(s);
    smtpd_resume(s);
}

static void smtpd_on_read(stream_t *st, void *ctx);
static void smtpd_on_close(stream_t *st, void *ctx,
                           enum stream_close_reason why);

static const struct stream_handler smtpd_handler = {
    .on_read = smtpd_on_read,
    .on_close = smtpd_on_close,
    .on_drain = NULL,
};

static struct smtpd_session *smtpd_sessions;   /* every open session */

/* smtpd_proto - for Received: and the logs; "S" for TLS, "A" after
   AUTH (RFC 3848) */
const char *smtpd_proto(const struct smtpd_session *s)
{
    bool tls = s->stream != NULL && stream_tls_active(s->stream);

    if (s->esmtp && s->sasl_username[0] != '\0')
        return tls ? "ESMTPSA" : "ESMTPA";
    if (s->esmtp)
        return tls ? "ESMTPS" : "ESMTP";
    return tls ? "SMTPS" : "SMTP";
}

/* smtpd_last_cmd - what the client did last, for "... after X" logs */
static const char *smtpd_last_cmd(const struct smtpd_session *s)
{
    static const char *const upper[SMTP_VERB_COUNT] = {
        "HELO", "EHLO", "STARTTLS", "AUTH", "MAIL", "RCPT", "DATA", "RSET",
        "NOOP", "VRFY", "HELP", "QUIT", "BDAT", "UNKNOWN",
    };

    if (s->txn.in_data)
        return "DATA";
    if (s->txn.bdat_left > 0 || s->txn.bdat_skip > 0)
        return "BDAT";
    if (!s->any_command)
        return "CONNECT";
    return (unsigned)s->last_verb < SMTP_VERB_COUNT ? upper[s->last_verb]
                                                    : "UNKNOWN";
}

/* smtpd_counts - Postfix-style "ehlo=1 mail=1 rcpt=0/1 ... commands=3/4" */
static void smtpd_counts(const struct smtpd_session *s, buf_t *out)
{
    unsigned ok = 0, total = 0;

    for (int v = 0; v < SMTP_VERB_COUNT; v++) {
        if (s->cmd_total[v] == 0)
            continue;
        ok += s->cmd_ok[v];
        total += s->cmd_total[v];
        if (s->cmd_ok[v] == s->cmd_total[v])
            (void)buf_printf(out, " %s=%u", smtpcmd_name(v), s->cmd_ok[v]);
        else
            (void)buf_printf(out, " %s=%u/%u", smtpcmd_name(v), s->cmd_ok[v],
                             s->cmd_total[v]);
    }
    if (ok == total)
        (void)buf_printf(out, " commands=%u", total);
    else
        (void)buf_printf(out, " commands=%u/%u", ok, total);
}

/* smtpd_txn_reset - see smtpd.h. Zeroing the whole struct (after
   releasing what it owns) is what keeps a new field from outliving its
   message by accident. */
void smtpd_txn_reset(struct smtpd_session *s)
{
    struct smtpd_txn *t = &s->txn;

    smtpd_data_abort(s);            /* an open queue file, if any */
    free(t->dec);
    free(t->sender);
    for (size_t i = 0; i < t->nrcpts; i++) {
        free(t->rcpts[i]);
        free(t->rcpt_dsn_orcpt[i]);
    }
    free(t->rcpts);
    free(t->rcpt_notify);
    free(t->rcpt_dsn_orcpt);
    free(t->dsn_envid);
    memset(t, 0, sizeof(*t));
}

/* smtpd_session_end - the connection is gone: log, release everything */
static void smtpd_session_end(struct smtpd_session *s)
{
    buf_t counts;

    buf_init(&counts, 4096);
    smtpd_counts(s, &counts);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        smtpd_sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    smtpd_dns_end(s);              /* no lookup callback after this */
    smtpd_anvil_disconnect(s);     /* before the log line tests wait for */
    log_info("disconnect from %s%s", s->namaddr, buf_str(&counts));
    buf_free(&counts);
    smtpd_auth_free(s);
    smtpd_txn_reset(s);
    ev_timer_stop(s->loop, &s->idle_timer);
    ev_timer_stop(s->loop, &s->sleep_timer);
    buf_free(&s->held);
    buf_free(&s->line);
    buf_free(&s->dbuf);
    free(s);
    server_conn_done();
}

/* smtpd_leave - end of one of our callbacks: free when nothing uses s */
static void smtpd_leave(struct smtpd_session *s)
{
    if (--s->busy == 0 && s->stream == NULL)
        smtpd_session_end(s);
}

/* smtpd_really_close - flush and close the stream (session ends soon) */
static void smtpd_really_close(struct smtpd_session *s)
{
    if (s->stream != NULL) {
        stream_t *st = s->stream;
        s->stream = NULL;
        stream_close(st);
    }
}

void smtpd_close(struct smtpd_session *s)
{
    s->closing = true;
    if (!s->sleeping)
        smtpd_really_close(s);
    /* else the sleep timer sends the held replies, then closes */
}

/* smtpd_idle_restart - (re)arm the session timeout. With
   smtpd_per_request_deadline this happens only when a request is
   complete (a command line handled, the greeting, DATA's end), so a
   client dripping a byte at a time cannot stretch one request forever;
   without it, on every read as well. */
static void smtpd_idle_restart(struct smtpd_session *s)
{
    if (var_smtpd_timeout > 0)
        ev_timer_set(s->loop, &s->idle_timer,
                     (uint64_t)var_smtpd_timeout * 1000);
}

/* smtpd_data_deadline - DATA may take smtpd_timeout plus the time to send
   what arrived so far at smtpd_min_data_rate, and never stalls longer
   than smtpd_timeout: a fast sender cannot bank credit for a stall */
void smtpd_data_deadline(struct smtpd_session *s, size_t received)
{
    uint64_t now = time_mono_msec(), limit, deadline;

    if (received == 0 && s->txn.data_bytes == 0)
        s->txn.data_start = now;
    s->txn.data_bytes += received;
    if (!var_smtpd_per_request_deadline || var_smtpd_timeout <= 0
        || s->sleeping)
        return;
    limit = (uint64_t)var_smtpd_timeout * 1000;
    deadline = s->txn.data_start + limit
               + s->txn.data_bytes * 1000 / (uint64_t)var_smtpd_min_data_rate;
    if (deadline > now + limit)
        deadline = now + limit;
    ev_timer_set(s->loop, &s->idle_timer, deadline > now ? deadline - now : 0);
}

/* smtpd_sleep_start - hold replies back for smtpd_error_sleep_time */
static void smtpd_sleep_start(struct smtpd_session *s)
{
    s->sleeping = true;
    stream_pause_read(s->stream, true);
    ev_timer_stop(s->loop, &s->idle_timer);
    ev_timer_set(s->loop, &s->sleep_timer,
                 (uint64_t)var_smtpd_error_sleep_time * 1000);
}

/* smtpd_send - queue one formatted reply line (held while sleeping) */
static void smtpd_send(struct smtpd_session *s, const buf_t *r)
{
    bool slow = var_smtpd_error_sleep_time > 0
                && s->errors >= var_smtpd_soft_error_limit;

    if (s->stream == NULL)
        return;
    if (s->sleeping || slow) {
        (void)buf_append(&s->held, r->data, r->len);
        if (!s->sleeping)
            smtpd_sleep_start(s);
    } else {
        stream_write(s->stream, r->data, r->len);
    }
}

void smtpd_reply(struct smtpd_session *s, const char *fmt, ...)
{
    buf_t r;
    va_list ap;
    bool error;

    buf_init(&r, 4096);
    va_start(ap, fmt);
    if (buf_vprintf(&r, fmt, ap) < 0)
        buf_truncate(&r, 0);
    va_end(ap);
    if (r.len == 0 && buf_puts(&r, "451 4.3.0 Error: internal error") < 0)
        log_panic("smtpd_reply: cannot format");
    (void)buf_puts(&r, "\r\n");
    error = r.data[0] == '4' || r.data[0] == '5';
    if (error)
        s->errors++;
    smtpd_send(s, &r);
    buf_free(&r);
    if (error)
        smtpd_error_limit(s);
}

/* smtpd_error_limit - at smtpd_hard_error_limit: 421 and close */
void smtpd_error_limit(struct smtpd_session *s)
{
    buf_t r;

    if (!s->closing && var_smtpd_hard_error_limit > 0
        && s->errors >= var_smtpd_hard_error_limit) {
        log_info("too many errors after %s from %s", smtpd_last_cmd(s),
                 s->namaddr);
        buf_init(&r, 4096);
        (void)buf_printf(&r, "421 4.7.0 %s Error: too many errors\r\n",
                         var_myhostname);
        smtpd_send(s, &r);
        buf_free(&r);
        smtpd_close(s);
    }
}

bool smtpd_pipelining_violation(struct smtpd_session *s, const char *after)
{
    char sample[64];
    size_t n, len;
    const char *lf;

    if (!var_smtpd_forbid_unauth_pipelining || s->stream == NULL
        || s->closing)
        return false;
    n = stream_input_sample(s->stream, sample, sizeof(sample));
    if (n == 0)
        return false;
    lf = memchr(sample, '\n', n);
    len = lf != NULL ? (size_t)(lf - sample) : n;
    if (len > 0 && sample[len - 1] == '\r')
        len--;
    /* what follows is never read as commands: the stream discards it */
    log_info("improper command pipelining after %s from %s: %.*s", after,
             s->namaddr, (int)len, sample);
    smtpd_reply(s, "554 5.5.0 Error: SMTP protocol synchronization");
    smtpd_close(s);
    return true;
}

/* smtpd_line - one complete command line */
static void smtpd_line(struct smtpd_session *s, const char *line, size_t len,
                       bool crlf)
{
    struct smtp_cmd cmd;
    const char *err = NULL;

    if (!crlf && strcasecmp(var_smtpd_forbid_bare_newline, "reject") == 0) {
        log_info("disconnect: bare <LF> received from %s", s->namaddr);
        smtpd_reply(s, "521 5.5.2 %s Error: bare <LF> received",
                    var_myhostname);
        smtpd_close(s);
        return;
    }
    s->any_command = true;
    if (var_smtpd_command_limit > 0
        && ++s->commands > (unsigned long)var_smtpd_command_limit) {
        log_info("too many commands after %s from %s", smtpd_last_cmd(s),
                 s->namaddr);
        smtpd_reply(s, "421 4.7.0 %s Error: too many commands",
                    var_myhostname);
        smtpd_close(s);
        return;
    }
    if (smtpcmd_parse(line, len, &s->line, &cmd, &err) < 0) {
        s->last_verb = SMTP_UNKNOWN;
        s->cmd_total[SMTP_UNKNOWN]++;
        smtpd_reply(s, "500 5.5.2 Error: bad syntax");
        return;
    }
    s->last_verb = cmd.verb;
    s->cmd_total[cmd.verb]++;
    if (smtpd_cmd_dispatch(s, &cmd))
        s->cmd_ok[cmd.verb]++;
}

/* smtpd_request_done - a command or DATA was handled: the next request
   gets a fresh smtpd_timeout (DATA's own deadline is set at its start) */
static void smtpd_request_done(struct smtpd_session *s)
{
    if (s->stream == NULL || s->closing || s->sleeping)
        return;
    if (s->txn.in_data || smtpd_bdat_active(s))
        smtpd_data_deadline(s, 0);
    else
        smtpd_idle_restart(s);
}

/* smtpd_process - handle every complete buffered line, in order */
static void smtpd_process(struct smtpd_session *s)
{
    while (s->stream != NULL && !s->closing && !s->sleeping
           && !s->tls_starting && !s->auth_waiting && !s->dns_pending
           && s->commit == NULL) {
        const char *line;
        size_t len;
        bool crlf;
        int rc;

        if (s->auth_exchange) {
            /* a SASL response, never a command */
            rc = stream_read_line(s->stream, &line, &len, &crlf);
            if (rc == 0)
                break;
            smtpd_auth_input(s, rc < 0 ? NULL : line, rc < 0 ? 0 : len);
            smtpd_request_done(s);
            continue;
        }
        if (s->txn.in_data) {
            if (!smtpd_data_input(s))
                break;
            if (!s->txn.in_data)
                smtpd_request_done(s);
            continue;
        }
        if (smtpd_bdat_active(s)) {
            if (!smtpd_bdat_input(s))
                break;
            if (!smtpd_bdat_active(s))
                smtpd_request_done(s);
            continue;
        }
        rc = stream_read_line(s->stream, &line, &len, &crlf);
        if (rc == 0)
            break;
        if (rc < 0) {
            s->any_command = true;
            s->last_verb = SMTP_UNKNOWN;
            smtpd_reply(s, "500 5.5.2 Error: line too long");
            smtpd_request_done(s);
            continue;
        }
        smtpd_line(s, line, len, crlf);
        smtpd_request_done(s);
    }
}

/* smtpd_resume - an asynchronous answer (AUTH, the client name lookup)
   was handled: the commands that came meanwhile run now */
void smtpd_resume(struct smtpd_session *s)
{
    smtpd_request_done(s);
    smtpd_process(s);
    smtpd_leave(s);
}

static void smtpd_on_read(stream_t *st, void *ctx)
{
    struct smtpd_session *s = ctx;

    (void)st;
    s->busy++;
    if (!s->sleeping && !var_smtpd_per_request_deadline)
        smtpd_idle_restart(s);
    smtpd_process(s);
    smtpd_leave(s);
}

static void smtpd_on_close(stream_t *st, void *ctx,
                           enum stream_close_reason why)
{
    struct smtpd_session *s = ctx;

    (void)st;
    s->busy++;
    s->stream = NULL;
    smtpd_dns_stop(s);
    if (!s->closing) {
        if (why == STREAM_TIMEOUT)
            log_info("timeout after %s from %s", smtpd_last_cmd(s),
                     s->namaddr);
        else
            log_info("lost connection after %s from %s", smtpd_last_cmd(s),
                     s->namaddr);
    }
    s->closing = true;
    smtpd_leave(s);
}

/* smtpd_idle_expired - smtpd_timeout without input */
static void smtpd_idle_expired(ev_loop_t *loop, void *arg)
{
    struct smtpd_session *s = arg;

    (void)loop;
    s->busy++;
    smtpd_dns_stop(s);
    if (s->stream != NULL && !s->closing && s->tls_starting) {
        /* nothing can be said in the middle of a handshake */
        log_info("timeout during TLS handshake from %s", s->namaddr);
        smtpd_close(s);
    } else if (s->stream != NULL && !s->closing) {
        log_info("timeout after %s from %s", smtpd_last_cmd(s), s->namaddr);
        stream_printf(s->stream, "421 4.4.2 %s Error: timeout exceeded\r\n",
                      var_myhostname);
        smtpd_close(s);
    }
    smtpd_leave(s);
}

/* smtpd_sleep_done - the error delay is over: say what was held back */
static void smtpd_sleep_done(ev_loop_t *loop, void *arg)
{
    struct smtpd_session *s = arg;

    (void)loop;
    s->busy++;
    s->sleeping = false;
    if (s->stream != NULL) {
        stream_write(s->stream, s->held.data, s->held.len);
        buf_reset(&s->held);
        if (s->closing) {
            smtpd_really_close(s);
        } else {
            stream_pause_read(s->stream, false);
            if (s->txn.in_data || smtpd_bdat_active(s))
                smtpd_data_deadline(s, 0);
            else
                smtpd_idle_restart(s);
            smtpd_process(s);
        }
    }
    smtpd_leave(s);
}

/* smtpd_greet - the 220 greeting, unless the client already talks: a
   client that talks before it is not waiting for it (Postfix
   postscreen's PREGREET), input already here is enough */
static void smtpd_greet(struct smtpd_session *s)
{
    if (!smtpd_pipelining_violation(s, "CONNECT")) {
        stream_printf(s->stream, "220 %s\r\n", var_smtpd_banner);
        smtpd_idle_restart(s);
    }
}

/* smtpd_tls_up - the handshake ended; error NULL: TLS is up. On an error
   the stream is already closed and no on_close follows. */
static void smtpd_tls_up(struct smtpd_session *s, const char *error,
                         bool wrapper)
{
    s->busy++;
    s->tls_starting = false;
    if (error != NULL) {
        log_info("SSL_accept error from %s: %s", s->namaddr, error);
        s->stream = NULL;
        s->closing = true;
    } else if (!smtpd_tls_accepted(s)) {
        smtpd_close(s);
    } else {
        /* RFC 3207 4.2: forget everything the client said in plaintext */
        smtpd_txn_reset(s);
        smtpd_auth_reset(s);
        s->have_helo = false;
        s->helo[0] = '\0';
        s->esmtp = false;
        if (wrapper) {
            smtpd_dns_hold(s);
            smtpd_greet(s);
        } else {
            smtpd_idle_restart(s);
        }
    }
    smtpd_leave(s);
}

static void smtpd_tls_done(stream_t *st, void *ctx, const char *error)
{
    (void)st;
    smtpd_tls_up(ctx, error, false);
}

static void smtpd_wrapper_done(stream_t *st, void *ctx, const char *error)
{
    (void)st;
    smtpd_tls_up(ctx, error, true);
}

int smtpd_tls_begin(struct smtpd_session *s, bool wrapper)
{
    size_t discarded;

    /* not through smtpd_reply: an error delay must not hold this line
       back past the start of TLS, after which it would be encrypted */
    if (!wrapper)
        stream_puts(s->stream, "220 2.0.0 Ready to start TLS\r\n");
    if (stream_start_tls(s->stream, smtpd_tls_ctx(), true,
                         wrapper ? smtpd_wrapper_done : smtpd_tls_done) < 0) {
        log_info("cannot start TLS for %s: %s", s->namaddr, strerror(errno));
        smtpd_close(s);
        return -1;
    }
    s->tls_starting = true;
    discarded = stream_tls_discarded(s->stream);
    if (discarded > 0)
        log_info("improper command pipelining after STARTTLS from %s: "
                 "%zu bytes discarded", s->namaddr, discarded);
    return 0;
}

static void smtpd_connect(ev_loop_t *loop, int fd, const struct sockaddr *peer,
                          socklen_t peerlen, const struct sockaddr *local)
{
    struct smtpd_session *s = xcalloc(1, sizeof(*s));
    int max_line = (int)var_line_length_limit + 2;
    int timeout = var_smtpd_timeout > 0 ? (int)var_smtpd_timeout + 30 : 0;

    (void)local;
    s->loop = loop;
    if (peerlen > sizeof(s->peer))
        peerlen = sizeof(s->peer);
    memcpy(&s->peer, peer, peerlen);
    netaddr_str(peer, s->addr, sizeof(s->addr));
    (void)snprintf(s->namaddr, sizeof(s->namaddr), "unknown[%s]", s->addr);
    buf_init(&s->held, 64 * 1024);
    buf_init(&s->line, (size_t)max_line + 1);
    buf_init(&s->dbuf, 0);
    ev_timer_init(&s->idle_timer, smtpd_idle_expired, s);
    ev_timer_init(&s->sleep_timer, smtpd_sleep_done, s);
    s->next = smtpd_sessions;
    if (smtpd_sessions != NULL)
        smtpd_sessions->prev = s;
    smtpd_sessions = s;
    smtpd_dns_start(s);             /* "connect from" when the name is known */
    s->stream = stream_new(loop, fd, (size_t)max_line, timeout,
                           &smtpd_handler, s);
    if (s->stream == NULL) {
        smtpd_dns_stop(s);
        log_warning("connection from %s: %s", s->namaddr, strerror(errno));
        (void)close(fd);
        s->busy = 1;
        smtpd_leave(s);
        return;
    }
    s->busy++;
    if (!var_smtpd_tls_wrappermode)
        smtpd_dns_hold(s);          /* wrapper mode: after the handshake */
    if (!smtpd_anvil_connect(s)) {
        /* in wrapper mode a plaintext reply would be noise to the client */
        if (!var_smtpd_tls_wrappermode)
            smtpd_reply(s, "421 4.7.0 %s Error: too many connections from %s",
                        var_myhostname, s->addr);
        smtpd_close(s);
    } else if (var_smtpd_tls_wrappermode) {
        if (smtpd_tls_ctx() == NULL) {
            log_info("no TLS for wrapper mode: disconnect %s", s->namaddr);
            smtpd_close(s);
        } else if (smtpd_tls_begin(s, true) == 0) {
            smtpd_idle_restart(s);      /* the handshake's deadline */
        }
    } else {
        smtpd_greet(s);
    }
    smtpd_leave(s);
}

/* smtpd_shutdown_session - master stops us: "421 4.3.2" and close. A
   message being received is discarded first (never a 250 without a
   commit); the client will send it again. Written directly, not through
   smtpd_reply: an error delay would hold it past our exit. */
static void smtpd_shutdown_session(struct smtpd_session *s)
{
    if (s->stream == NULL || s->closing)
        return;
    if (s->commit != NULL) {            /* its 250 (or 451) comes first */
        s->stop_after_commit = true;
        return;
    }
    s->busy++;
    if (s->tls_starting) {
        log_info("shutdown during TLS handshake from %s", s->namaddr);
    } else {
        bool receiving = s->txn.in_data || smtpd_bdat_active(s)
                         || s->txn.bdat;

        if (receiving)
            log_info("%s: shutdown: message from %s discarded",
                     s->txn.cleanup ? cleanup_qid(s->txn.cleanup) : "NOQUEUE",
                     s->namaddr);
        log_info("shutdown: disconnect %s after %s", s->namaddr,
                 smtpd_last_cmd(s));
        smtpd_txn_reset(s);
        if (s->sleeping) {              /* what was held, then the 421 */
            stream_write(s->stream, s->held.data, s->held.len);
            buf_reset(&s->held);
            ev_timer_stop(s->loop, &s->sleep_timer);
            s->sleeping = false;
        }
        stream_printf(s->stream, "421 4.3.2 %s Service shutting down\r\n",
                      var_myhostname);
    }
    smtpd_close(s);
    smtpd_leave(s);
}

/* smtpd_stop - SIGTERM: every open session is told and closed. No
   anvil disconnect requests: anvil releases what this process held when
   its connection to anvil ends with the process, and a request to an
   anvil that master is stopping too would wait for its timeout while
   master's grace period runs out. */
static void smtpd_stop(void)
{
    struct smtpd_session *s, *next;

    for (s = smtpd_sessions; s != NULL; s = s->next)
        s->anvil_counted = false;
    for (s = smtpd_sessions; s != NULL; s = next) {
        next = s->next;                 /* s may be freed below */
        smtpd_shutdown_session(s);
    }
}

static struct server_ops smtpd_ops;

static void smtpd_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    smtpd_ops.client_limit = var_smtpd_client_limit > 0
                             ? (size_t)var_smtpd_client_limit : 1;
    if (mailuser_init() < 0)
        log_fatal("cannot open the local user tables");
    if (smtpd_check_init() < 0 || smtpd_anvil_init() < 0)
        log_fatal("bad smtpd policy configuration");
    smtpd_tls_init();
    /* header_checks/body_checks: compiled now, before any chroot; a bad
       table is retried by each DATA, which answers 451 meanwhile */
    const char *why;
    if (cleanup_checks_open(&why) < 0)
        log_warning("%s; mail waits until the table is fixed", why);
    smtpd_auth_init();
    smtpd_dns_init();
}

static void smtpd_post_init(ev_loop_t *loop)
{
    smtpd_dns_attach(loop);
    smtpd_data_init(loop);
}

static void smtpd_pre_exit(void)
{
    smtpd_data_free();
    smtpd_check_free();
    smtpd_anvil_free();
    smtpd_tls_free();
    cleanup_checks_close();
    smtpd_dns_free();
}

int main(int argc, char **argv)
{
    smtpd_ops.pre_init = smtpd_pre_init;
    smtpd_ops.post_init = smtpd_post_init;
    smtpd_ops.pre_exit = smtpd_pre_exit;
    smtpd_ops.on_stop = smtpd_stop;
    smtpd_ops.on_connect = smtpd_connect;
    smtpd_ops.busy = smtpd_data_committing;
    smtpd_ops.client_limit = 100;   /* replaced by smtpd_client_limit */
    return event_server_main(argc, argv, &smtpd_ops);
}
