/*
 * smtp_nexthop - the pure parts of naming an SMTP destination: a next
 * hop as qmgr gives it ("domain", "domain:port", "[host]", "[address]",
 * "[ipv6:address]", "[host]:port") and a port as a number or a service
 * name of Postfix's known_tcp_ports table ("lmtp=24, smtp=25,
 * smtps=submissions=465, submission=587").
 */
#ifndef TERN_SMTP_NEXTHOP_H
#define TERN_SMTP_NEXTHOP_H

#include <stdbool.h>
#include <stddef.h>

/* name: a decimal port 1..65535 or a name in table (case-insensitive);
   the port, or -1. */
int smtp_port_lookup(const char *table, const char *name);

/* nexthop into name (without brackets or a final dot), bracket (MX
   lookup off) and port (0 = default; a name is looked up in table).
   0 ok; -1 malformed (empty name, no closing bracket, text after it,
   a bad port, or a name that does not fit size). */
int smtp_nexthop_parse(const char *table, const char *nexthop, char *name,
                       size_t size, bool *bracket, int *port);

#endif
