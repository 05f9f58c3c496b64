/*
 * netaddr - IPv4/IPv6 address text conversion and network lists
 * ("127.0.0.0/8 [::1]/128 192.0.2.1", as Postfix's mynetworks).
 */
#ifndef TERN_NETADDR_H
#define TERN_NETADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define NETADDR_STRLEN 64

/* numeric text form of a socket address ("127.0.0.1", "::1");
   IPv4-mapped IPv6 is shown as IPv4. Returns buf. */
const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t size);
/* port of an AF_INET/AF_INET6 address, 0 otherwise */
int netaddr_port(const struct sockaddr *sa);

typedef struct netlist netlist_t;
/* NULL with *error_r for a malformed entry */
netlist_t *netlist_parse(const char *list, const char **error_r);
bool netlist_match(const netlist_t *l, const struct sockaddr *sa);
void netlist_free(netlist_t *l);

#endif
