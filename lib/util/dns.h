/*
 * dns - asynchronous DNS lookups on the event loop, with libunbound.
 *
 * A resolver context is made once per process, before chroot and the
 * privilege drop (dns_ctx_new reads resolv.conf and the hosts file
 * then), and attached to the process's event loop later (dns_ctx_attach:
 * libunbound's result pipe, ub_fd, becomes a read event and ub_process
 * runs when it is readable). libunbound resolves in one background
 * thread of its own; every callback of ours runs from the loop, never
 * from inside dns_lookup_*() and never from that thread.
 *
 * Each query has its own deadline (an ev timer): when it passes, the
 * query is cancelled and its callback gets DNS_TIMEOUT. dns_cancel()
 * means the callback never runs, whatever libunbound still has in
 * flight: the query object stays with the context until libunbound lets
 * go of it, so a late answer finds no caller.
 *
 * Names from the network are hostile input: a PTR answer becomes a name
 * only if it is a valid host name (letters, digits, '-' and '_', labels
 * of 1..63 bytes, at most 253 bytes in text, not numeric like an
 * address); anything else is DNS_MALFORMED.
 *
 * DNSSEC: no trust anchor is configured yet, so every answer is
 * "insecure" (result.secure stays false). dns_ctx_new is where a trust
 * anchor file would be added (ub_ctx_add_ta_autr) for DANE.
 */
#ifndef TERN_DNS_H
#define TERN_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "util/events.h"

#define DNS_NAME_MAX 253          /* a host name in text, no final dot */
/* "f.e.d. ... .ip6.arpa": 32 nibbles * 2 + "ip6.arpa" */
#define DNS_REVERSE_MAX 80

typedef struct dns_ctx dns_ctx_t;

/* One MX record. A null MX (RFC 7505: preference 0, exchange ".") has
   name "". */
struct dns_mx {
    unsigned pref;
    char name[DNS_NAME_MAX + 1];
};
typedef struct dns_query dns_query_t;

enum dns_status {
    DNS_OK = 0,         /* data[] has what was asked for */
    DNS_NOTFOUND,       /* NXDOMAIN, or the name has no such record */
    DNS_TEMPFAIL,       /* SERVFAIL, REFUSED, a resolver error */
    DNS_TIMEOUT,        /* the query's deadline passed */
    DNS_MALFORMED,      /* an answer we refuse (a bad host name) */
};

struct dns_result {
    enum dns_status status;
    const char *error;              /* for logs when status != DNS_OK */
    const char *name;               /* PTR: the first name, validated */
    int family;                     /* A: AF_INET, AAAA: AF_INET6 */
    size_t naddrs;                  /* A/AAAA: addresses in addrs */
    const unsigned char *addrs;     /* naddrs * 4 or 16 bytes */
    bool secure;                    /* DNSSEC-validated (never, yet) */
    size_t nmx;                     /* MX: records in mx, as answered */
    const struct dns_mx *mx;
};

/* Everything in *r lives only for the call. */
typedef void (*dns_cb)(void *arg, const struct dns_result *r);

/*
 * forwarders: resolvers to ask instead of resolv.conf's nameservers,
 * separated by blanks or commas, each "ADDRESS" or "ADDRESS@PORT"
 * ("127.0.0.1@5353"); NULL or "" = /etc/resolv.conf. hosts_file: read
 * as /etc/hosts is; NULL or "" = none. NULL with *error_r (static text)
 * when a forwarder is malformed or the files cannot be read.
 */
dns_ctx_t *dns_ctx_new(const char *forwarders, const char *hosts_file,
                       const char **error_r);
/* Watch the context's results on loop; once, before the first lookup.
   0 ok, -1 with *error_r. */
int dns_ctx_attach(dns_ctx_t *ctx, ev_loop_t *loop, const char **error_r);
/* Stops the resolver thread; queries still open are dropped without
   their callbacks. */
void dns_ctx_free(dns_ctx_t *ctx);

/* The name of sa's address (PTR). NULL with *error_r when the query
   cannot be started (the callback will not run then). timeout_msec > 0. */
dns_query_t *dns_lookup_ptr(dns_ctx_t *ctx, const struct sockaddr *sa,
                            uint64_t timeout_msec, dns_cb cb, void *arg,
                            const char **error_r);
/* The addresses of name: family AF_INET (A) or AF_INET6 (AAAA). */
dns_query_t *dns_lookup_addr(dns_ctx_t *ctx, const char *name, int family,
                             uint64_t timeout_msec, dns_cb cb, void *arg,
                             const char **error_r);
/* The MX records of name (MX answers whose exchange is not a valid
   host name are dropped; none left is DNS_MALFORMED). Callers order
   them with dns_mx_sort. */
dns_query_t *dns_lookup_mx(dns_ctx_t *ctx, const char *name,
                           uint64_t timeout_msec, dns_cb cb, void *arg,
                           const char **error_r);
/* The callback of q will not run; q is gone. Not after the callback ran. */
void dns_cancel(dns_query_t *q);

/* --- helpers (pure; unit-tested) --------------------------------------- */

/* "4.3.2.1.in-addr.arpa" for 1.2.3.4, nibbles ".ip6.arpa" for IPv6;
   IPv4-mapped IPv6 as IPv4. 0 ok, -1 other family or no room. */
int dns_reverse_name(const struct sockaddr *sa, char *buf, size_t size);
/* Whether text is a host name we accept (see the top of this file);
   one final dot is allowed. */
bool dns_name_valid(const char *name);
/* A wire-format name (length-prefixed labels, no compression) of len
   bytes into text without the final dot, lower case kept as sent. 0 ok;
   -1 when malformed, too long, or not a valid host name. */
int dns_name_from_wire(const unsigned char *wire, size_t len, char *buf,
                       size_t size);
/* Whether sa's address (IPv4-mapped IPv6 as IPv4) is one of r's. */
bool dns_result_has_addr(const struct dns_result *r,
                         const struct sockaddr *sa);
const char *dns_status_str(enum dns_status st);
/* MX rdata (2-byte preference, wire-format exchange) of len bytes into
   *mx; the root name "." gives name "" (null MX). 0 ok, -1 malformed. */
int dns_mx_from_wire(const unsigned char *rdata, size_t len,
                     struct dns_mx *mx);
/* Sort by preference, equal preferences in random order (rnd: a random
   number source, NULL = random(3)). */
void dns_mx_sort(struct dns_mx *mx, size_t n, long (*rnd)(void));
/* Is this MX set a null MX (one record, exchange "")? */
bool dns_mx_is_null(const struct dns_mx *mx, size_t n);

#endif
