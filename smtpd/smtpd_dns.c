/*
 * smtpd_dns - the client's host name: a PTR lookup of the client
 * address at connect, then forward confirmation (the PTR name must
 * resolve back to the client address, A for IPv4 clients, AAAA for
 * IPv6), as Postfix does: otherwise the name is "unknown". Both
 * lookups together have $smtpd_peername_lookup_timeout; after it the
 * client is unknown (status TEMP). $smtpd_peername_lookup = no skips it.
 *
 * Nothing waits for DNS but the session itself: the greeting goes out
 * at once, and the session's commands wait (smtpd.c's command loop does
 * not run while s->dns_pending) until the lookup ends. "connect from"
 * is logged when the name is known, so it carries the name as
 * Postfix's does; only lines logged while the lookup runs (a refused
 * connection, input before the greeting, a TLS wrapper handshake) come
 * before it and show unknown[addr].
 *
 * Security: the names come from the network and are hostile until
 * lib/util/dns.c has validated them (LDH, lengths); a session's query is
 * cancelled when the session ends, and dns_cancel guarantees the
 * callback never runs for a freed session.
 */
#include "smtpd.h"

#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define SMTPD_UNKNOWN "unknown"

static dns_ctx_t *smtpd_dns_ctx;   /* NULL: no lookups in this process */

/* smtpd_dns_init - read resolv.conf / the hosts file while we still can
   (before chroot); a broken resolver setup costs names, not mail */
void smtpd_dns_init(void)
{
    const char *error = NULL;

    if (!var_smtpd_peername_lookup)
        return;
    smtpd_dns_ctx = dns_ctx_new(var_dns_forwarders, var_dns_hosts_file,
                                &error);
    if (smtpd_dns_ctx == NULL)
        log_warning("client name lookups disabled: resolver set-up "
                    "(dns_forwarders = %s, dns_hosts_file = %s): %s",
                    var_dns_forwarders, var_dns_hosts_file, error);
}

void smtpd_dns_attach(ev_loop_t *loop)
{
    const char *error = NULL;

    if (smtpd_dns_ctx != NULL && dns_ctx_attach(smtpd_dns_ctx, loop,
                                                &error) < 0) {
        log_warning("client name lookups disabled: %s", error);
        dns_ctx_free(smtpd_dns_ctx);
        smtpd_dns_ctx = NULL;
    }
}

void smtpd_dns_free(void)
{
    dns_ctx_free(smtpd_dns_ctx);
    smtpd_dns_ctx = NULL;
}

/* smtpd_dns_status - a failed lookup's status: temporary or not */
static int smtpd_dns_status(enum dns_status st)
{
    return st == DNS_TIMEOUT || st == DNS_TEMPFAIL ? SMTPD_NAME_TEMP
                                                   : SMTPD_NAME_PERM;
}

static void smtpd_dns_log_connect(struct smtpd_session *s)
{
    if (!s->connect_logged) {
        s->connect_logged = true;
        log_info("connect from %s", s->namaddr);
    }
}

/* smtpd_dns_hold - see smtpd.h. A paused stream also holds back the
   peer's EOF, which a merely unread buffer would not: the stream reports
   EOF once the owner has had its chance at the input. */
void smtpd_dns_hold(struct smtpd_session *s)
{
    if (s->dns_pending && s->stream != NULL && !s->tls_starting)
        stream_pause_read(s->stream, true);
}

/* smtpd_dns_finish - the name is what it is now: log, run commands */
static void smtpd_dns_finish(struct smtpd_session *s)
{
    s->dns_pending = false;
    s->dns_query = NULL;
    if (s->stream != NULL && !s->sleeping && !s->tls_starting)
        stream_pause_read(s->stream, false);
    (void)snprintf(s->namaddr, sizeof(s->namaddr), "%s[%s]", s->client_name,
                   s->addr);
    smtpd_dns_log_connect(s);
    s->busy++;
    smtpd_resume(s);
}

/* smtpd_dns_remaining - what is left of the lookup's time (at least 1) */
static uint64_t smtpd_dns_remaining(const struct smtpd_session *s)
{
    uint64_t now = time_mono_msec();

    return s->dns_deadline > now ? s->dns_deadline - now : 1;
}

/* smtpd_dns_on_addr - the PTR name's addresses: confirmed or forged */
static void smtpd_dns_on_addr(void *arg, const struct dns_result *r)
{
    struct smtpd_session *s = arg;

    s->dns_query = NULL;
    if (dns_result_has_addr(r, (const struct sockaddr *)&s->peer)) {
        free(s->client_name);
        s->client_name = xstrdup(s->reverse_name);
        s->client_name_status = SMTPD_NAME_OK;
    } else if (r->status == DNS_OK) {
        log_warning("hostname %s does not resolve to address %s",
                    s->reverse_name, s->addr);
        s->client_name_status = SMTPD_NAME_FORGED;
    } else {
        log_warning("hostname %s does not resolve to address %s: %s",
                    s->reverse_name, s->addr, r->error);
        s->client_name_status = r->status == DNS_TIMEOUT
                                        || r->status == DNS_TEMPFAIL
                                    ? SMTPD_NAME_TEMP : SMTPD_NAME_FORGED;
    }
    smtpd_dns_finish(s);
}

/* smtpd_dns_family - the record type that confirms the client address */
static int smtpd_dns_family(const struct smtpd_session *s)
{
    const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&s->peer;

    if (s->peer.ss_family == AF_INET6 && !IN6_IS_ADDR_V4MAPPED(&s6->sin6_addr))
        return AF_INET6;
    return AF_INET;
}

/* smtpd_dns_on_ptr - the client address's name: confirm it */
static void smtpd_dns_on_ptr(void *arg, const struct dns_result *r)
{
    struct smtpd_session *s = arg;
    const char *error = NULL;

    s->dns_query = NULL;
    if (r->status != DNS_OK) {
        if (r->status == DNS_MALFORMED)
            log_warning("%s: refused the PTR answer: %s", s->addr, r->error);
        else
            log_debug("%s: no client name: %s", s->addr, r->error);
        s->reverse_name_status = s->client_name_status
            = smtpd_dns_status(r->status);
        smtpd_dns_finish(s);
        return;
    }
    free(s->reverse_name);
    s->reverse_name = xstrdup(r->name);
    s->reverse_name_status = SMTPD_NAME_OK;
    s->dns_query = dns_lookup_addr(smtpd_dns_ctx, s->reverse_name,
                                   smtpd_dns_family(s),
                                   smtpd_dns_remaining(s), smtpd_dns_on_addr,
                                   s, &error);
    if (s->dns_query == NULL) {
        log_warning("hostname %s does not resolve to address %s: %s",
                    s->reverse_name, s->addr, error);
        s->client_name_status = SMTPD_NAME_TEMP;
        smtpd_dns_finish(s);
    }
}

void smtpd_dns_start(struct smtpd_session *s)
{
    const char *error = NULL;
    uint64_t timeout = (uint64_t)var_smtpd_peername_lookup_timeout * 1000;

    s->client_name = xstrdup(SMTPD_UNKNOWN);
    s->reverse_name = xstrdup(SMTPD_UNKNOWN);
    /* Postfix's status with the lookup turned off */
    s->client_name_status = s->reverse_name_status = SMTPD_NAME_PERM;
    if (smtpd_dns_ctx == NULL
        || (s->peer.ss_family != AF_INET && s->peer.ss_family != AF_INET6)) {
        smtpd_dns_log_connect(s);
        return;
    }
    s->dns_deadline = time_mono_msec() + timeout;
    s->dns_query = dns_lookup_ptr(smtpd_dns_ctx,
                                  (const struct sockaddr *)&s->peer, timeout,
                                  smtpd_dns_on_ptr, s, &error);
    if (s->dns_query == NULL) {
        log_warning("%s: cannot look up the client name: %s", s->addr,
                    error);
        s->client_name_status = s->reverse_name_status = SMTPD_NAME_TEMP;
        smtpd_dns_log_connect(s);
        return;
    }
    s->dns_pending = true;
}

void smtpd_dns_stop(struct smtpd_session *s)
{
    dns_cancel(s->dns_query);
    s->dns_query = NULL;
    s->dns_pending = false;
    smtpd_dns_log_connect(s);
}

void smtpd_dns_end(struct smtpd_session *s)
{
    smtpd_dns_stop(s);
    free(s->client_name);
    free(s->reverse_name);
    s->client_name = s->reverse_name = NULL;
}
