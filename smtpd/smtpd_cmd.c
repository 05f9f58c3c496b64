/* smtpd_cmd - the SMTP commands other than DATA's content (RFC 5321). */
#include "smtpd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "mail/queue_record.h"
#include "util/log.h"
#include "util/util.h"

/* cmd_set_helo - remember the HELO name with spaces, controls (C0, C1,
   U+2028/9, bidi) and broken UTF-8 replaced: it goes into the
   Received: header and the queue file */
static void cmd_set_helo(struct smtpd_session *s, const char *name)
{
    size_t i;

    for (i = 0; name[i] != '\0' && i < SMTPD_HELO_MAX; i++) {
        unsigned char c = (unsigned char)name[i];
        s->helo[i] = c == ' ' ? '?' : (char)c;
    }
    s->helo[i] = '\0';
    (void)log_scrub(s->helo);
    s->have_helo = true;
}

/* cmd_tls_active - the session is encrypted (REQUIRETLS) */
static bool cmd_tls_active(const struct smtpd_session *s)
{
    return s->stream != NULL && stream_tls_active(s->stream);
}

/* cmd_ascii - no byte above 127 (an SMTPUTF8 address otherwise) */
static bool cmd_ascii(const char *p)
{
    for (; *p != '\0'; p++)
        if ((unsigned char)*p > 127)
            return false;
    return true;
}

static bool cmd_helo(struct smtpd_session *s, const char *arg, bool esmtp)
{
    if (*arg == '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s hostname",
                    esmtp ? "EHLO" : "HELO");
        return false;
    }
    smtpd_txn_reset(s);
    cmd_set_helo(s, arg);
    s->esmtp = esmtp;
    if (!esmtp) {
        smtpd_reply(s, "250 %s", var_myhostname);
        return true;
    }
    smtpd_reply(s, "250-%s", var_myhostname);
    smtpd_reply(s, "250-PIPELINING");
    if (var_message_size_limit > 0)
        smtpd_reply(s, "250-SIZE %ld", var_message_size_limit);
    else
        smtpd_reply(s, "250-SIZE");
    smtpd_reply(s, "250-VRFY");
    if (smtpd_tls_offer(s))
        smtpd_reply(s, "250-STARTTLS");
    if (smtpd_auth_offer(s))
        smtpd_reply(s, "250-AUTH SCRAM-SHA-256 PLAIN LOGIN");
    smtpd_reply(s, "250-ENHANCEDSTATUSCODES");
    smtpd_reply(s, "250-8BITMIME");
    /* ESMTP extensions of smtpd_cmd.c / smtpd_bdat.c */
    if (cmd_tls_active(s))
        smtpd_reply(s, "250-REQUIRETLS");
    smtpd_reply(s, "250-BINARYMIME");
    smtpd_reply(s, "250-CHUNKING");
    smtpd_reply(s, "250-DSN");
    smtpd_reply(s, "250 SMTPUTF8");
    return true;
}

/* cmd_params - parse ESMTP parameters; replies and returns -1 on error */
static int cmd_params(struct smtpd_session *s, const char *rest,
                      struct esmtp_param *p, size_t *n)
{
    const char *err = NULL;

    if (esmtp_params_parse(rest, p, ESMTP_MAX_PARAMS, n, &err) < 0) {
        smtpd_reply(s, "501 5.5.4 Bad parameter syntax: %s",
                    err ? err : "malformed");
        return -1;
    }
    return 0;
}

/* cmd_mail_ext_param - RET, ENVID (RFC 3461), SMTPUTF8 (RFC 6531),
   REQUIRETLS (RFC 8689); replies and returns false if bad. Duplicates
   were refused by esmtp_params_parse. */
static bool cmd_mail_ext_param(struct smtpd_session *s,
                               const struct esmtp_param *p)
{
    struct smtpd_txn *t = &s->txn;
    buf_t envid;

    if (strcmp(p->keyword, "RET") == 0) {
        if (p->value != NULL && strcasecmp(p->value, "FULL") == 0)
            t->dsn_ret = "FULL";
        else if (p->value != NULL && strcasecmp(p->value, "HDRS") == 0)
            t->dsn_ret = "HDRS";
        else {
            smtpd_reply(s, "501 5.5.4 Bad RET parameter syntax");
            return false;
        }
        return true;
    }
    if (strcmp(p->keyword, "ENVID") == 0) {
        buf_init(&envid, ADDR_ENVID_MAX + 1);
        if (p->value == NULL || addr_envid_decode(p->value, &envid) < 0) {
            buf_free(&envid);
            smtpd_reply(s, "501 5.5.4 Bad ENVID parameter syntax");
            return false;
        }
        free(t->dsn_envid);
        t->dsn_envid = buf_strdup(&envid);
        buf_free(&envid);
        return true;
    }
    if (strcmp(p->keyword, "SMTPUTF8") == 0 && p->value == NULL) {
        t->smtputf8 = true;
        return true;
    }
    if (strcmp(p->keyword, "REQUIRETLS") == 0 && p->value == NULL) {
        if (!cmd_tls_active(s)) {
            /* RFC 8689 4.1: only over TLS; not offered here either */
            smtpd_reply(s, "530 5.7.10 Encryption needed: REQUIRETLS "
                           "requires a TLS session");
            return false;
        }
        t->requiretls = true;
        return true;
    }
    smtpd_reply(s, "555 5.5.4 Unsupported option: %s", p->keyword);
    return false;
}

/* cmd_mail_param - one MAIL parameter; replies and returns false if bad */
static bool cmd_mail_param(struct smtpd_session *s, const struct esmtp_param *p,
                           long *size_r)
{
    long size;

    if (strcmp(p->keyword, "SIZE") == 0) {
        if (p->value == NULL || p->value[0] < '0' || p->value[0] > '9'
            || parse_long(p->value, 0, (1L << 62), &size) < 0) {
            smtpd_reply(s, "501 5.5.4 Bad message size syntax");
            return false;
        }
        if (var_message_size_limit > 0 && size > var_message_size_limit) {
            smtpd_reply(s, "552 5.3.4 Message size exceeds fixed limit");
            return false;
        }
        *size_r = size;
        return true;
    }
    if (strcmp(p->keyword, "BODY") == 0) {
        if (p->value != NULL && (strcasecmp(p->value, "7BIT") == 0
                                 || strcasecmp(p->value, "8BITMIME") == 0))
            return true;
        if (p->value != NULL && strcasecmp(p->value, "BINARYMIME") == 0) {
            s->txn.binarymime = true;       /* RFC 3030 3: BDAT only */
            return true;
        }
        smtpd_reply(s, "501 5.5.4 Unsupported BODY parameter");
        return false;
    }
    return cmd_mail_ext_param(s, p);
}

static bool cmd_mail(struct smtpd_session *s, const char *arg)
{
    struct esmtp_param params[ESMTP_MAX_PARAMS];
    size_t nparams = 0;
    const char *path, *rest = NULL, *err = NULL;
    buf_t addr;
    bool ok = true;
    long size = 0;

    if (var_smtpd_helo_required && !s->have_helo) {
        smtpd_reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        return false;
    }
    if (s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: nested MAIL command");
        return false;
    }
    if ((path = smtpcmd_path_arg(arg, "FROM:")) == NULL) {
        smtpd_reply(s, "501 5.5.4 Syntax: MAIL FROM:<address>");
        return false;
    }
    buf_init(&addr, ADDR_MAX_PATH + 1);
    if (addr_parse_path(path, true, true, &addr, &rest, &err) < 0) {
        smtpd_reply(s, "501 5.1.7 Bad sender address syntax");
        buf_free(&addr);
        return false;
    }
    if (cmd_params(s, rest, params, &nparams) < 0) {
        buf_free(&addr);
        return false;
    }
    for (size_t i = 0; i < nparams && ok; i++)
        ok = cmd_mail_param(s, &params[i], &size);
    esmtp_params_free(params, nparams);
    if (ok && !s->txn.smtputf8 && !cmd_ascii(buf_str(&addr))) {
        /* RFC 6531 3.5 */
        smtpd_reply(s, "553 5.6.7 Error: non-ASCII sender address "
                       "requires SMTPUTF8");
        ok = false;
    }
    if (ok) {
        /* never accept what the queue has no room for (queue_minfree) */
        buf_t reply = BUF_INIT;

        if (smtpd_check_queue(s, buf_str(&addr), (uint64_t)size, &reply) < 0) {
            smtpd_reply(s, "%s", buf_str(&reply));
            ok = false;
        }
        buf_free(&reply);
    }
    if (!ok) {
        /* nothing of a refused MAIL may stay for the next one */
        free(s->txn.dsn_envid);
        s->txn.dsn_envid = NULL;
        s->txn.dsn_ret = NULL;
        s->txn.smtputf8 = s->txn.requiretls = s->txn.binarymime = false;
    }
    if (ok) {
        s->txn.sender = buf_strdup(&addr);
        s->txn.in_mail = true;
        smtpd_reply(s, "250 2.1.0 Ok");
    }
    buf_free(&addr);
    return ok;
}

/* cmd_rcpt_check - policy (smtpd_check.c logs the reject); replies,
   false if refused */
static bool cmd_rcpt_check(struct smtpd_session *s, const char *addr)
{
    buf_t reply;
    bool ok;

    buf_init(&reply, 4096);
    ok = smtpd_check_rcpt(s, addr, &reply) == 0;
    if (!ok)
        smtpd_reply(s, "%s", buf_str(&reply));
    buf_free(&reply);
    return ok;
}

/* cmd_rcpt_params - NOTIFY and ORCPT (RFC 3461 4.1, 4.2); replies and
   returns false if bad; *dsn_orcpt_r is malloc'd */
static bool cmd_rcpt_params(struct smtpd_session *s,
                            const struct esmtp_param *p, size_t n,
                            unsigned *notify_r, char **dsn_orcpt_r)
{
    const char *err = NULL;
    buf_t orcpt;

    for (size_t i = 0; i < n; i++) {
        if (strcmp(p[i].keyword, "NOTIFY") == 0) {
            if (p[i].value == NULL
                || queue_notify_parse(p[i].value, strlen(p[i].value),
                                      notify_r) < 0) {
                smtpd_reply(s, "501 5.5.4 Bad NOTIFY parameter syntax");
                return false;
            }
        } else if (strcmp(p[i].keyword, "ORCPT") == 0) {
            buf_init(&orcpt, 0);
            if (p[i].value == NULL
                || addr_orcpt_decode(p[i].value, &orcpt, &err) < 0) {
                buf_free(&orcpt);
                smtpd_reply(s, "501 5.5.4 Bad ORCPT parameter syntax");
                return false;
            }
            free(*dsn_orcpt_r);
            *dsn_orcpt_r = buf_strdup(&orcpt);
            buf_free(&orcpt);
        } else {
            smtpd_reply(s, "555 5.5.4 Unsupported option: %s", p[i].keyword);
            return false;
        }
    }
    return true;
}

static bool cmd_rcpt(struct smtpd_session *s, const char *arg)
{
    struct esmtp_param params[ESMTP_MAX_PARAMS];
    size_t nparams = 0;
    const char *path, *rest = NULL, *err = NULL;
    buf_t addr;
    bool ok = false;
    unsigned notify = 0;
    char *dsn_orcpt = NULL;

    if (!s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: need MAIL command");
        return false;
    }
    if ((path = smtpcmd_path_arg(arg, "TO:")) == NULL) {
        smtpd_reply(s, "501 5.5.4 Syntax: RCPT TO:<address>");
        return false;
    }
    buf_init(&addr, ADDR_MAX_PATH + 1);
    if (addr_parse_path(path, false, true, &addr, &rest, &err) < 0) {
        smtpd_reply(s, "501 5.1.3 Bad recipient address syntax");
    } else if (cmd_params(s, rest, params, &nparams) == 0) {
        if (!cmd_rcpt_params(s, params, nparams, &notify, &dsn_orcpt))
            ;                               /* replied */
        else if (!s->txn.smtputf8 && !cmd_ascii(buf_str(&addr)))
            smtpd_reply(s, "553 5.6.7 Error: non-ASCII recipient address "
                           "requires SMTPUTF8");
        else if (var_smtpd_recipient_limit > 0
                 && s->txn.nrcpts >= (size_t)var_smtpd_recipient_limit)
            smtpd_reply(s, "452 4.5.3 Error: too many recipients");
        else
            ok = cmd_rcpt_check(s, buf_str(&addr));
        esmtp_params_free(params, nparams);
    }
    if (ok) {
        struct smtpd_txn *t = &s->txn;

        t->rcpts = xrealloc(t->rcpts, (t->nrcpts + 1) * sizeof(*t->rcpts));
        t->rcpt_notify = xrealloc(t->rcpt_notify,
                                  (t->nrcpts + 1) * sizeof(*t->rcpt_notify));
        t->rcpt_dsn_orcpt = xrealloc(t->rcpt_dsn_orcpt, (t->nrcpts + 1)
                                     * sizeof(*t->rcpt_dsn_orcpt));
        t->rcpt_notify[t->nrcpts] = notify;
        t->rcpt_dsn_orcpt[t->nrcpts] = dsn_orcpt;
        dsn_orcpt = NULL;
        t->rcpts[t->nrcpts++] = buf_strdup(&addr);
        smtpd_reply(s, "250 2.1.5 Ok");
    }
    free(dsn_orcpt);
    buf_free(&addr);
    return ok;
}

/* cmd_junk - NOOP, VRFY, RSET: past smtpd_junk_command_limit each one
   counts as an error, so a client that only idles with them meets the
   error delays and, at smtpd_hard_error_limit, 421 (as in Postfix).
   Called after the command's reply. */
static void cmd_junk(struct smtpd_session *s)
{
    if (++s->junk_cmds > var_smtpd_junk_command_limit) {
        s->errors++;
        smtpd_error_limit(s);
    }
}

/* cmd_no_arg - commands that take no argument */
static bool cmd_no_arg(struct smtpd_session *s, const char *arg,
                       const char *name)
{
    if (*arg != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: %s", name);
        return false;
    }
    return true;
}

bool smtpd_cmd_dispatch(struct smtpd_session *s, const struct smtp_cmd *cmd)
{
    switch (cmd->verb) {
    case SMTP_HELO:
        return cmd_helo(s, cmd->arg, false);
    case SMTP_EHLO:
        return cmd_helo(s, cmd->arg, true);
    case SMTP_MAIL:
        return !smtpd_tls_refuse(s) && !smtpd_auth_refuse(s)
               && cmd_mail(s, cmd->arg);
    case SMTP_RCPT:
        return !smtpd_tls_refuse(s) && !smtpd_auth_refuse(s)
               && cmd_rcpt(s, cmd->arg);
    case SMTP_DATA:
        /* counted as ok by smtpd_data.c once the message is queued.
           DATA ends a pipelined group (RFC 2920): input after a refused
           DATA is a message body that must not run as commands */
        if (smtpd_tls_refuse(s) || smtpd_auth_refuse(s)
            || !cmd_no_arg(s, cmd->arg, "DATA")
            || !smtpd_data_begin(s))
            (void)smtpd_pipelining_violation(s, "DATA");
        return false;
    case SMTP_RSET:
        if (!cmd_no_arg(s, cmd->arg, "RSET"))
            return false;
        smtpd_txn_reset(s);
        smtpd_reply(s, "250 2.0.0 Ok");
        cmd_junk(s);
        return true;
    case SMTP_NOOP:
        smtpd_reply(s, "250 2.0.0 Ok");
        cmd_junk(s);
        return true;
    case SMTP_VRFY:
        if (smtpd_tls_refuse(s))
            return false;
        if (*cmd->arg == '\0') {
            smtpd_reply(s, "501 5.5.4 Syntax: VRFY address");
            return false;
        }
        smtpd_reply(s, "252 2.0.0 Cannot verify the user, but will accept "
                       "mail and attempt delivery");
        cmd_junk(s);
        return true;
    case SMTP_HELP:
        smtpd_reply(s, "214 2.0.0 Commands: HELO EHLO MAIL RCPT DATA BDAT "
                       "RSET NOOP VRFY HELP QUIT");
        return true;
    case SMTP_STARTTLS:
        return smtpd_tls_starttls(s, cmd->arg);
    case SMTP_AUTH:
        return smtpd_auth_cmd(s, cmd->arg);
    case SMTP_BDAT:
        return smtpd_bdat_cmd(s, cmd->arg);
    case SMTP_QUIT:
        smtpd_reply(s, "221 2.0.0 Bye");
        smtpd_close(s);
        return true;
    default:
        smtpd_reply(s, "502 5.5.2 Error: command not recognized");
        return false;
    }
}
