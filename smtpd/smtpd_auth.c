/*
 * smtpd_auth - SMTP AUTH (RFC 4954) with SCRAM-SHA-256 (RFC 7677),
 * PLAIN (RFC 4616) and LOGIN, and the submission policy
 * smtpd_sasl_auth_required. The exchange itself, checked by the auth
 * service (private/auth, mail/auth_proto.h), is mail/sasl_server.h,
 * shared with the login processes; this file is SMTP's framing of it:
 * "AUTH mech [initial-response]", challenges as "334 base64", every
 * following line a response while s->auth_exchange is set (smtpd.c
 * routes them here), "*" cancels (501); while auth is asked
 * s->auth_waiting stops smtpd.c from reading anything, like a TLS
 * handshake does. A malformed SCRAM message, a tampered nonce and a
 * wrong proof are all 535 like a wrong password.
 *
 * Logging is Postfix's (sasl_server.c writes the failure lines), so
 * fail2ban's postfix filters read it: a refused login is "warning:
 * NAME[ADDR]: SASL PLAIN authentication failed: authentication
 * failure"; an unreachable auth service says "Connection lost to
 * authentication server", which those filters deliberately ignore.
 * Success shows on the queue-ID line (smtpd_data.c).
 *
 * Brute force: a 535 is an smtpd error (smtpd_soft_error_limit /
 * smtpd_error_sleep_time / smtpd_hard_error_limit apply), and after
 * smtpd_sasl_failure_limit failed AUTH commands the session ends with
 * 421 4.7.0; across connections smtpd_client_auth_rate_limit counts
 * AUTH commands per client in anvil (smtpd_anvil.c, a blocking local
 * round trip like the connection limits).
 *
 * Security: see sasl_server.h for the credentials; the AUTH command
 * line with an initial response is wiped here. A wrong password and an
 * unknown user get the same reply (auth(8) makes them cost the same).
 */
#include "smtpd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "mail/sasl_server.h"
#include "util/log.h"
#include "util/util.h"

#define SMTPD_AUTH_PATH "private/auth"

struct smtpd_auth {
    sasl_server_t *sv;
    long failures;              /* failed AUTH commands in this session */
};

void smtpd_auth_init(void)
{
    if (var_smtpd_sasl_auth_required && !var_smtpd_sasl_auth_enable)
        log_warning("smtpd_sasl_auth_required = yes without "
                    "smtpd_sasl_auth_enable = yes: no client can send mail");
}

/* auth_tls_ok - smtpd_tls_auth_only is satisfied */
static bool auth_tls_ok(const struct smtpd_session *s)
{
    return !var_smtpd_tls_auth_only
           || (s->stream != NULL && stream_tls_active(s->stream));
}

bool smtpd_auth_offer(const struct smtpd_session *s)
{
    return var_smtpd_sasl_auth_enable && auth_tls_ok(s)
           && s->sasl_username[0] == '\0';
}

bool smtpd_auth_refuse(struct smtpd_session *s)
{
    if (!var_smtpd_sasl_auth_required || s->sasl_username[0] != '\0')
        return false;
    smtpd_reply(s, "530 5.7.0 Authentication required");
    return true;
}

/* auth_sync - the session's view of the exchange */
static void auth_sync(struct smtpd_session *s)
{
    s->auth_exchange = s->auth != NULL && sasl_server_in_exchange(s->auth->sv);
    s->auth_waiting = s->auth != NULL && sasl_server_waiting(s->auth->sv);
}

void smtpd_auth_reset(struct smtpd_session *s)
{
    if (s->auth != NULL)
        sasl_server_abort(s->auth->sv);
    auth_sync(s);
    s->sasl_username[0] = '\0';
    s->sasl_method[0] = '\0';
}

void smtpd_auth_free(struct smtpd_session *s)
{
    if (s->auth == NULL)
        return;
    sasl_server_free(s->auth->sv);     /* no callback runs */
    free(s->auth);
    s->auth = NULL;
    s->auth_waiting = false;
    s->auth_exchange = false;
}

/* auth_failed - the credentials were refused (logged): 535, and the
   per-session limit */
static void auth_failed(struct smtpd_session *s)
{
    struct smtpd_auth *a = s->auth;

    a->failures++;
    smtpd_reply(s, "535 5.7.8 Error: authentication failed: "
                   "authentication failure");
    if (!s->closing && var_smtpd_sasl_failure_limit > 0
        && a->failures >= var_smtpd_sasl_failure_limit) {
        log_info("too many failed authentications after AUTH from %s",
                 s->namaddr);
        s->closing = true;          /* no "too many errors" on top */
        smtpd_reply(s, "421 4.7.0 %s Error: too many failed authentications",
                    var_myhostname);
        smtpd_close(s);
    }
}

/* auth_challenge - sasl_server's challenge, SMTP's way */
static void auth_challenge(void *ctx, const char *b64)
{
    struct smtpd_session *s = ctx;

    s->auth_exchange = true;
    smtpd_reply(s, "334 %s", b64);
}

/* auth_done - the exchange is over */
static void auth_done(void *ctx, const struct sasl_server_result *r)
{
    struct smtpd_session *s = ctx;

    s->auth_exchange = false;
    s->auth_waiting = false;
    switch (r->status) {
    case SASL_SERVER_OK:
        (void)snprintf(s->sasl_username, sizeof(s->sasl_username), "%s",
                       r->user);
        (void)snprintf(s->sasl_method, sizeof(s->sasl_method), "%s",
                       r->mech);
        s->cmd_ok[SMTP_AUTH]++;
        smtpd_reply(s, "235 2.7.0 Authentication successful");
        break;
    case SASL_SERVER_FAIL:
        auth_failed(s);
        break;
    case SASL_SERVER_TEMPFAIL:
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
        break;
    case SASL_SERVER_MALFORMED:
        smtpd_reply(s, "501 5.5.2 Cannot decode response");
        break;
    case SASL_SERVER_CANCELLED:
        smtpd_reply(s, "501 5.7.0 Authentication aborted");
        break;
    case SASL_SERVER_TOO_LONG:
        smtpd_reply(s, "500 5.5.6 Authentication exchange line is too long");
        break;
    }
}

/* auth_reply_begin / auth_reply_end - around an answer of the auth
   service: the session stays while it is handled, then reads again */
static void auth_reply_begin(void *ctx)
{
    struct smtpd_session *s = ctx;

    s->busy++;
    s->auth_waiting = false;
}

static void auth_reply_end(void *ctx)
{
    struct smtpd_session *s = ctx;

    auth_sync(s);
    smtpd_resume(s);
}

static const struct sasl_server_ops smtpd_sasl_ops = {
    .challenge = auth_challenge,
    .done = auth_done,
    .reply_begin = auth_reply_begin,
    .reply_end = auth_reply_end,
};

void smtpd_auth_input(struct smtpd_session *s, const char *line, size_t len)
{
    if (s->auth == NULL || !sasl_server_in_exchange(s->auth->sv)) {
        s->auth_exchange = false;
        return;
    }
    if (line != NULL && len > 0 && line[len - 1] == '\r')
        len--;
    sasl_server_input(s->auth->sv, line, len);
    if (s->auth != NULL)
        auth_sync(s);
}

bool smtpd_auth_cmd(struct smtpd_session *s, const char *arg)
{
    const char *init = NULL;
    char mech[SMTPCMD_MECH_MAX + 1];

    if (!var_smtpd_sasl_auth_enable) {
        smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
        return false;
    }
    if (smtpd_tls_refuse(s))
        return false;
    if (!auth_tls_ok(s)) {
        smtpd_reply(s, "538 5.7.11 Encryption required for requested "
                       "authentication mechanism");
        return false;
    }
    if (!s->esmtp) {
        smtpd_reply(s, "503 5.5.1 Error: send EHLO first");
        return false;
    }
    if (s->sasl_username[0] != '\0') {
        smtpd_reply(s, "503 5.5.1 Error: already authenticated");
        return false;
    }
    if (s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return false;
    }
    if (smtpcmd_auth_arg(arg, mech, sizeof(mech), &init) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return false;
    }
    if (!smtpd_anvil_auth(s)) {
        smtpd_reply(s, "450 4.7.1 Error: too many AUTH commands from %s",
                    s->addr);
        return false;
    }
    if (!sasl_server_mech_known(mech)) {
        smtpd_reply(s, "504 5.5.4 Unsupported authentication mechanism");
        return false;
    }
    if (s->auth == NULL) {
        s->auth = xcalloc(1, sizeof(*s->auth));
        s->auth->sv = sasl_server_new(s->loop, SMTPD_AUTH_PATH, "smtp",
                                      (unsigned)var_ipc_timeout * 1000,
                                      &smtpd_sasl_ops, s);
    }
    if (sasl_server_start(s->auth->sv, mech, init, s->addr, s->namaddr) < 0)
        smtpd_reply(s, "503 5.5.1 Error: authentication in progress");
    /* the command line, and so init, is in s->line: it held the
       credentials */
    if (init != NULL && s->line.data != NULL)
        explicit_bzero(s->line.data, s->line.len);
    if (s->auth != NULL)
        auth_sync(s);
    return false;
}
