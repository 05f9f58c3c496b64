/*
 * smtp_addr - from a next hop to the server addresses to try, in order.
 *
 *   "domain", "domain:port": the MX records of domain, by preference,
 *       random among equals (dns_mx_sort); no MX: the domain's own A/AAAA
 *       records; a null MX (RFC 7505) bounces at once (5.1.10);
 *   "[host]", "[ip]", either with ":port": no MX lookup;
 *   "": the recipients' domain, as "domain".
 * Each host's addresses follow inet_protocols and smtp_address_preference;
 * at most $smtp_mx_address_limit addresses in all. A port is a number or
 * a name of $known_tcp_ports; the default is that table's "smtp".
 *
 * DNS: lib/util/dns.c (libunbound, with $dns_forwarders and
 * $dns_hosts_file as smtpd uses them), set up before chroot. Each smtp
 * process works on one request at a time, so the lookups block here: a
 * private event loop runs until the answer or $smtp_dns_timeout.
 */
#include "smtp.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "mail/smtp_nexthop.h"
#include "util/log.h"
#include "util/util.h"

#define SMTP_MX_MAX 64

static dns_ctx_t *smtp_dns;
static ev_loop_t *smtp_dns_loop;

int smtp_addr_init(const char **error_r)
{
    smtp_dns = dns_ctx_new(var_dns_forwarders, var_dns_hosts_file, error_r);
    return smtp_dns == NULL ? -1 : 0;
}

void smtp_addr_post_init(void)
{
    const char *err = NULL;

    if (smtp_dns == NULL)
        return;
    if ((smtp_dns_loop = ev_loop_new()) == NULL
        || dns_ctx_attach(smtp_dns, smtp_dns_loop, &err) < 0) {
        log_warning("DNS lookups disabled: %s", err ? err : "no event loop");
        dns_ctx_free(smtp_dns);
        smtp_dns = NULL;
    }
}

/* --- blocking lookups -------------------------------------------------- */

struct smtp_dns_wait {
    bool done;
    enum dns_status status;
    char error[128];
    struct dns_mx mx[SMTP_MX_MAX];
    size_t nmx;
    unsigned char addrs[16 * 32];
    size_t naddrs;
};

static void smtp_dns_answer(void *arg, const struct dns_result *r)
{
    struct smtp_dns_wait *w = arg;

    w->done = true;
    w->status = r->status;
    (void)snprintf(w->error, sizeof(w->error), "%s",
                   r->error ? r->error : dns_status_str(r->status));
    if (r->status != DNS_OK)
        return;
    for (size_t i = 0; i < r->nmx && w->nmx < SMTP_MX_MAX; i++)
        w->mx[w->nmx++] = r->mx[i];
    if (r->naddrs > 0) {
        size_t alen = r->family == AF_INET ? 4 : 16;
        size_t max = sizeof(w->addrs) / alen;

        w->naddrs = r->naddrs < max ? r->naddrs : max;
        memcpy(w->addrs, r->addrs, w->naddrs * alen);
    }
}

/* smtp_dns_run - wait for w (the query's own timer ends it) */
static void smtp_dns_run(struct smtp_dns_wait *w)
{
    while (!w->done)
        if (ev_loop_run_once(smtp_dns_loop, 1000) < 0)
            break;
}

static int smtp_lookup(const char *name, int qtype, struct smtp_dns_wait *w)
{
    const char *err = NULL;
    uint64_t ms = (uint64_t)var_smtp_dns_timeout * 1000;
    dns_query_t *q;

    memset(w, 0, sizeof(*w));
    if (smtp_dns == NULL) {
        w->status = DNS_TEMPFAIL;
        (void)snprintf(w->error, sizeof(w->error), "no DNS resolver");
        return -1;
    }
    q = qtype == 0 ? dns_lookup_mx(smtp_dns, name, ms, smtp_dns_answer, w, &err)
                   : dns_lookup_addr(smtp_dns, name, qtype, ms,
                                     smtp_dns_answer, w, &err);
    if (q == NULL) {
        w->status = DNS_MALFORMED;
        (void)snprintf(w->error, sizeof(w->error), "%s", err);
        return -1;
    }
    smtp_dns_run(w);
    if (!w->done) {
        dns_cancel(q);
        w->status = DNS_TEMPFAIL;
        (void)snprintf(w->error, sizeof(w->error), "resolver loop failed");
    }
    return w->status == DNS_OK ? 0 : -1;
}

/* --- the address list ---------------------------------------------------- */

struct smtp_addr_list {
    struct smtp_addr *out;
    size_t n, max;
    bool tempfail;              /* some lookup failed temporarily */
    char error[256];
};

static void smtp_addr_push(struct smtp_addr_list *l, const char *host,
                           int family, const unsigned char *a)
{
    struct smtp_addr *x;

    if (l->n >= l->max)
        return;
    x = &l->out[l->n];
    memset(x, 0, sizeof(*x));
    (void)snprintf(x->host, sizeof(x->host), "%s", host);
    if (family == AF_INET) {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&x->sa;

        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, a, 4);
        x->salen = sizeof(*s4);
    } else {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&x->sa;

        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, a, 16);
        x->salen = sizeof(*s6);
    }
    (void)inet_ntop(family, a, x->ip, sizeof(x->ip));
    /* the same address twice (two MX names for one host) is tried once */
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->out[i].ip, x->ip) == 0)
            return;
    l->n++;
}

static bool smtp_family_on(int family)
{
    const char *p = var_inet_protocols;

    if (strstr(p, "all") != NULL)
        return true;
    return strstr(p, family == AF_INET ? "ipv4" : "ipv6") != NULL;
}

/* smtp_addr_host - the addresses of one host name in preference order */
static void smtp_addr_host(struct smtp_addr_list *l, const char *host)
{
    int order[2] = { AF_INET, AF_INET6 };
    struct smtp_dns_wait w;

    if (strcmp(var_smtp_address_preference, "ipv6") == 0
        || (strcmp(var_smtp_address_preference, "any") == 0 && random() % 2))
        order[0] = AF_INET6, order[1] = AF_INET;
    for (int i = 0; i < 2; i++) {
        size_t alen = order[i] == AF_INET ? 4 : 16;

        if (!smtp_family_on(order[i]))
            continue;
        if (smtp_lookup(host, order[i], &w) < 0) {
            if (w.status != DNS_NOTFOUND) {
                l->tempfail = true;
                (void)snprintf(l->error, sizeof(l->error),
                               "Name service error for name=%s type=%s: %s",
                               host, order[i] == AF_INET ? "A" : "AAAA",
                               w.error);
            }
            continue;
        }
        for (size_t k = 0; k < w.naddrs; k++)
            smtp_addr_push(l, host, order[i], w.addrs + k * alen);
    }
}

size_t smtp_addr_resolve(const char *nexthop, const char *domain,
                         struct smtp_addr *out, size_t max, int *port_r,
                         int *status, char *dsn, char *reason,
                         size_t rsize)
{
    struct smtp_addr_list l = { out, 0, max, false, "" };
    char name[DNS_NAME_MAX + 2];
    unsigned char bin[16];
    bool bracket;
    int port;

    *status = DELIVER_DEFER;
    (void)snprintf(dsn, SMTP_DSN_MAX, "4.4.3");
    if (smtp_nexthop_parse(var_known_tcp_ports, *nexthop ? nexthop : domain, name, sizeof(name),
                           &bracket, &port) < 0) {
        *status = DELIVER_BOUNCE;
        (void)snprintf(dsn, SMTP_DSN_MAX, "5.1.2");
        (void)snprintf(reason, rsize, "bad next-hop destination: %s",
                       *nexthop ? nexthop : domain);
        return 0;
    }
    *port_r = port ? port : smtp_port_lookup(var_known_tcp_ports, "smtp");
    if (*port_r < 0)
        *port_r = 25;
    if (bracket && inet_pton(AF_INET, name, bin) == 1) {
        smtp_addr_push(&l, name, AF_INET, bin);
        return l.n;
    }
    if (bracket && strncasecmp(name, "ipv6:", 5) == 0
        && inet_pton(AF_INET6, name + 5, bin) == 1) {
        smtp_addr_push(&l, name + 5, AF_INET6, bin);
        return l.n;
    }
    if (bracket && inet_pton(AF_INET6, name, bin) == 1) {
        smtp_addr_push(&l, name, AF_INET6, bin);
        return l.n;
    }
    if (!dns_name_valid(name)) {
        *status = DELIVER_BOUNCE;
        (void)snprintf(dsn, SMTP_DSN_MAX, "5.1.2");
        (void)snprintf(reason, rsize, "bad host or domain name: %s", name);
        return 0;
    }
    if (!bracket) {
        struct smtp_dns_wait w;

        if (smtp_lookup(name, 0, &w) == 0) {
            if (dns_mx_is_null(w.mx, w.nmx)) {
                *status = DELIVER_BOUNCE;
                (void)snprintf(dsn, SMTP_DSN_MAX, "5.1.10");
                (void)snprintf(reason, rsize, "Host or domain name not found. "
                               "Domain %s does not accept mail (nullMX)",
                               name);
                return 0;
            }
            dns_mx_sort(w.mx, w.nmx, NULL);
            for (size_t i = 0; i < w.nmx && l.n < l.max; i++)
                if (w.mx[i].name[0] != '\0')
                    smtp_addr_host(&l, w.mx[i].name);
            if (l.n == 0) {
                if (!l.tempfail) {
                    *status = DELIVER_BOUNCE;
                    (void)snprintf(dsn, SMTP_DSN_MAX, "5.4.4");
                    (void)snprintf(reason, rsize, "Host or domain name not "
                                   "found. No address for the MX hosts of %s",
                                   name);
                } else {
                    (void)snprintf(reason, rsize, "%s", l.error);
                }
            }
            return l.n;
        }
        if (w.status != DNS_NOTFOUND) {
            (void)snprintf(reason, rsize, "Name service error for name=%s "
                           "type=MX: %s", name, w.error);
            return 0;
        }
    }
    smtp_addr_host(&l, name);
    if (l.n == 0) {
        if (l.tempfail) {
            (void)snprintf(reason, rsize, "%s", l.error);
        } else {
            *status = DELIVER_BOUNCE;
            (void)snprintf(dsn, SMTP_DSN_MAX, "5.4.4");
            (void)snprintf(reason, rsize, "Host or domain name not found. "
                           "Name service error for name=%s type=%s: Host "
                           "not found", name, bracket ? "A" : "MX");
        }
    }
    return l.n;
}
