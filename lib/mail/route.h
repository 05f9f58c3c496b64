/*
 * route - where a recipient goes: the transport (a master.conf service,
 * reached at private/<transport>) and the nexthop it is given, decided
 * as Postfix's trivial-rewrite(8) resolves addresses:
 *
 *   1. the class of the recipient domain picks the default:
 *      $mydestination (or no domain) -> $local_transport
 *      ("local:$myhostname"), $relay_domains -> $relay_transport
 *      ("relay"), anything else -> $default_transport ("smtp");
 *   2. for the relay and default classes the nexthop is, in decreasing
 *      precedence, the transport setting's own ":nexthop",
 *      $sender_dependent_relayhost_maps (the sender address, then with
 *      its extension stripped, then "@domain"; the null sender as
 *      $empty_address_relayhost_maps_lookup_key; DUNNO = no entry),
 *      $relayhost, else the recipient domain; for the local class the
 *      setting's nexthop, else the recipient domain;
 *   3. $transport_maps (transport(5)) overrides: the full address, the
 *      address with its recipient_delimiter extension stripped, the
 *      domain, each parent domain as ".parent", then "*"; the value
 *      "transport:nexthop", where an empty transport or nexthop keeps
 *      the one from steps 1-2.
 *
 * A table that cannot be read makes the decision fail (temporarily: the
 * caller defers, 4.3.0); it never falls through to a default.
 *
 * route_resolve() is pure: it asks its tables through the callbacks in
 * struct route_lookups, so tests/unit/test_route.c checks it table by
 * table. route_tables_open() builds those callbacks from main.conf.
 */
#ifndef TERN_ROUTE_H
#define TERN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include "util/buf.h"

#define ROUTE_TRANSPORT_MAX 64      /* service names are short */
#define ROUTE_NEXTHOP_MAX   512

typedef struct route {
    char transport[ROUTE_TRANSPORT_MAX];
    char nexthop[ROUTE_NEXTHOP_MAX];
} route_t;

struct route_params {
    const char *local_transport;    /* "transport[:nexthop]" */
    const char *relay_transport;
    const char *default_transport;
    const char *relayhost;          /* "" = none */
    const char *recipient_delimiter;    /* "" = no extensions */
    const char *null_sender_key;    /* "<>" */
};

/* Each lookup: 1 found (value in *value), 0 not found, -1 table error.
   A NULL function means "no such table" (never found). */
struct route_lookups {
    void *ctx;
    int (*transport)(void *ctx, const char *key, buf_t *value);
    int (*sender_relay)(void *ctx, const char *key, buf_t *value);
    int (*is_local)(void *ctx, const char *domain);     /* 1/0/-1 */
    int (*is_relay)(void *ctx, const char *domain);     /* 1/0/-1 */
};

/*
 * Route rcpt (sent by sender, "" = the null sender) into *out.
 * 0 ok; -1 with a static reason in *error_r ("transport_maps lookup
 * failure", "invalid transport name in ...") that the caller defers
 * with.
 */
int route_resolve(const struct route_params *p, const struct route_lookups *l,
                  const char *sender, const char *rcpt, route_t *out,
                  const char **error_r);

/* "transport:nexthop" -> its parts ("" for a missing one); false when a
   part does not fit. */
bool route_split(const char *value, char *transport, size_t tsize,
                 char *nexthop, size_t nsize);
/* A usable transport name: [A-Za-z0-9._-], not starting with '.' */
bool route_transport_valid(const char *name);

/* A nexthop or relayhost: "[host]:port", "[host]", "host:port", "host"
   ("[...]" = no MX lookup; the host may be an IPv6 address inside the
   brackets). host into host (size bytes), port 0 when none given.
   0 ok, -1 malformed. */
int route_nexthop_parse(const char *nexthop, char *host, size_t size,
                        unsigned *port, bool *mx_lookup);

/* "user+ext@domain" -> "user@domain" per delimiter (any of its
   characters; the first one in the local part splits); false when the
   address has no extension (out unchanged). */
bool route_strip_extension(const char *addr, const char *delimiter,
                           char *out, size_t size);

/* The tables of main.conf: transport_maps, sender_dependent_relayhost_maps,
   relay_domains, $mydestination (mailuser). 0 ok; -1 with the problem
   logged (bad table spec). */
int route_tables_open(void);
/* route_resolve() with main.conf's settings and tables */
int route_config_resolve(const char *sender, const char *rcpt, route_t *out,
                         const char **error_r);
void route_tables_close(void);

#endif
