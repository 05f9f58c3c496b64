/*
 * smtpd_check - recipient policy: local recipients must exist, anything
 * else is relayed only for $mynetworks clients or $relay_domains.
 * Tables are set up in pre_init, before any chroot.
 */
#include "smtpd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "util/util.h"

static netlist_t *check_mynetworks;
static char **check_relay;
static size_t check_nrelay;

int smtpd_check_init(void)
{
    const char *err = NULL;

    check_mynetworks = netlist_parse(var_mynetworks, &err);
    if (check_mynetworks == NULL) {
        log_error("bad mynetworks value \"%s\": %s", var_mynetworks,
                  err ? err : "malformed");
        return -1;
    }
    check_nrelay = str_split_list(var_relay_domains, &check_relay);
    for (size_t i = 0; i < check_nrelay; i++) {
        if (strchr(check_relay[i], ':') != NULL)
            log_warning("relay_domains: lookup tables are not supported "
                        "yet, ignoring \"%s\"", check_relay[i]);
        str_lower(check_relay[i]);
    }
    return 0;
}

void smtpd_check_free(void)
{
    if (check_mynetworks != NULL)
        netlist_free(check_mynetworks);
    check_mynetworks = NULL;
    strv_free(check_relay, check_nrelay);
    check_relay = NULL;
    check_nrelay = 0;
}

/* check_relay_domain - domain is listed in relay_domains, or below one
   ("example.com" covers "mx.example.com", ".example.com" only those) */
static bool check_relay_domain(const char *domain)
{
    size_t dlen = strlen(domain);

    for (size_t i = 0; i < check_nrelay; i++) {
        const char *r = check_relay[i];
        size_t rlen = strlen(r);
        if (r[0] == '.') {
            if (dlen > rlen && strcasecmp(domain + dlen - rlen, r) == 0)
                return true;
        } else if (strcasecmp(domain, r) == 0
                   || (dlen > rlen && domain[dlen - rlen - 1] == '.'
                       && strcasecmp(domain + dlen - rlen, r) == 0)) {
            return true;
        }
    }
    return false;
}

/* check_local - recipient in a local domain */
static int check_local(const char *addr, const char *local, buf_t *reply)
{
    /* postmaster too: accepting it with nowhere to deliver it would
       drop it later (RFC 5321 4.5.1 wants it to exist: alias it) */
    int rc = mailuser_local_exists(local);
    if (rc > 0)
        return 0;
    if (rc < 0)
        (void)buf_printf(reply, "451 4.3.0 <%s>: Temporary lookup failure",
                         addr);
    else
        (void)buf_printf(reply, "550 5.1.1 <%s>: Recipient address "
                         "rejected: User unknown in local recipient table",
                         addr);
    return -1;
}

int smtpd_check_rcpt(const struct smtpd_session *s, const char *addr,
                     buf_t *reply)
{
    char *local = NULL, *domain = NULL;
    buf_t canon;
    int rc = 0;

    buf_init(&canon, 0);
    addr_canonical(addr, &canon);
    addr_split(buf_str(&canon), &local, &domain);
    if (domain[0] == '\0' || mailuser_domain_is_local(domain))
        rc = check_local(addr, local, reply);
    else if (s->sasl_username[0] == '\0' && !netlist_match(check_mynetworks,
                            (const struct sockaddr *)&s->peer)
             && !check_relay_domain(domain)) {
        (void)buf_printf(reply, "554 5.7.1 <%s>: Relay access denied", addr);
        rc = -1;
    }
    free(local);
    buf_free(&canon);
    return rc;
}
