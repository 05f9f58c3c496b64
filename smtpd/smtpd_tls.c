/*
 * smtpd_tls - smtpd's TLS policy: the server context, STARTTLS (RFC 3207)
 * and smtpd_tls_security_level. The handshake itself and what happens
 * after it (log line, forgetting the session state) are in smtpd.c with
 * the rest of the session's life; the TLS layer is lib/util/stream.h.
 *
 *   none     STARTTLS is neither offered nor accepted (502)
 *   may      offered when a certificate is configured and loads
 *   encrypt  offered likewise; MAIL, RCPT, DATA and VRFY are refused
 *            (530 5.7.0) until the session is encrypted
 *
 * smtpd_tls_wrappermode (a per-service -o, port 465) starts TLS at
 * connect instead.
 *
 * Security: the certificate and key are read in pre_init, as root before
 * the privilege drop, so the key file may be root's 0600. Input the
 * client pipelined after STARTTLS is never executed: it is refused with
 * 554 when smtpd_forbid_unauth_pipelining is on, and thrown away by the
 * stream's STARTTLS barrier in any case (CVE-2011-0411).
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "util/log.h"
#include "util/tls.h"

static tls_ctx_t *smtpd_tls_context;

/* smtpd_tls_init - load the certificate (pre_init, as root) */
void smtpd_tls_init(void)
{
    char *err = NULL;

    if (strcmp(var_smtpd_tls_security_level, "none") == 0
        && !var_smtpd_tls_wrappermode)
        return;
    if (*var_smtpd_tls_cert_file == '\0') {
        log_warning("no server certificate (smtpd_tls_cert_file is empty): "
                    "%s", var_smtpd_tls_wrappermode
                    ? "TLS wrapper mode connections are closed"
                    : "STARTTLS is not offered");
        return;
    }
    smtpd_tls_context = tls_ctx_server_new(var_smtpd_tls_cert_file,
                                           *var_smtpd_tls_key_file != '\0'
                                           ? var_smtpd_tls_key_file : NULL,
                                           NULL, &err);
    if (smtpd_tls_context == NULL) {
        log_warning("cannot load the server certificate %s: %s; %s",
                    var_smtpd_tls_cert_file, err ? err : "unknown error",
                    var_smtpd_tls_wrappermode
                    ? "TLS wrapper mode connections are closed"
                    : "STARTTLS is not offered");
        free(err);
    }
}

void smtpd_tls_free(void)
{
    tls_ctx_free(smtpd_tls_context);
    smtpd_tls_context = NULL;
}

tls_ctx_t *smtpd_tls_ctx(void)
{
    return smtpd_tls_context;
}

/* smtpd_tls_on - the session is encrypted (or its handshake runs) */
static bool smtpd_tls_on(const struct smtpd_session *s)
{
    return s->stream != NULL && stream_tls(s->stream) != NULL;
}

bool smtpd_tls_offer(const struct smtpd_session *s)
{
    return smtpd_tls_context != NULL
           && strcmp(var_smtpd_tls_security_level, "none") != 0
           && !smtpd_tls_on(s);
}

bool smtpd_tls_refuse(struct smtpd_session *s)
{
    if (strcmp(var_smtpd_tls_security_level, "encrypt") != 0
        || (s->stream != NULL && stream_tls_active(s->stream)))
        return false;
    smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    return true;
}

bool smtpd_tls_starttls(struct smtpd_session *s, const char *arg)
{
    if (*arg != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return false;
    }
    if (smtpd_tls_on(s)) {
        smtpd_reply(s, "503 5.5.1 Error: TLS already active");
        return false;
    }
    if (strcmp(var_smtpd_tls_security_level, "none") == 0) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return false;
    }
    if (smtpd_tls_context == NULL) {
        smtpd_reply(s, "454 4.7.0 TLS not available due to local problem");
        return false;
    }
    /* STARTTLS ends a pipelined group: input after it was sent before
       our 220 and belongs to no protocol */
    if (smtpd_pipelining_violation(s, "STARTTLS"))
        return false;
    return smtpd_tls_begin(s, false) == 0;
}

/* smtpd_tls_info - "TLSv1.3 with cipher X (256/256 bits)" into buf, or
   NULL while the session is plaintext */
const char *smtpd_tls_info(const struct smtpd_session *s, char *buf,
                           size_t size)
{
    tls_conn_t *c;
    int bits;

    if (s->stream == NULL || !stream_tls_active(s->stream))
        return NULL;
    c = stream_tls(s->stream);
    bits = tls_conn_cipher_bits(c);
    if (snprintf(buf, size, "%s with cipher %s (%d/%d bits)",
                 tls_conn_version(c), tls_conn_cipher(c), bits, bits)
        >= (int)size)
        return NULL;
    return buf;
}
