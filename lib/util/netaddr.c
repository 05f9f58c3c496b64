/*
 * netaddr - numeric address text and mynetworks-style network lists.
 *
 * A list entry is "a.b.c.d", "a.b.c.d/len", "[ipv6]", "[ipv6]/len" or
 * "ipv6[/len]". Host bits beyond the prefix are masked off, not rejected.
 * IPv4-mapped IPv6 (entries and clients) is treated as IPv4, so a dual-stack
 * listener's "::ffff:192.0.2.1" client matches "192.0.2.0/24".
 * Error strings from netlist_parse point into a static buffer valid until
 * the next call.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netaddr.h"
#include "util.h"

#define NETLIST_ENTRY_MAX 64   /* longest entry text we look at */

struct net_entry {
    int family;               /* AF_INET or AF_INET6 */
    unsigned char addr[16];   /* network byte order, host bits cleared */
    unsigned prefix;
};

struct netlist {
    struct net_entry *v;
    size_t n;
};

static const unsigned char v4mapped_prefix[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff
};

const char *netaddr_str(const struct sockaddr *sa, char *buf, size_t size)
{
    const void *src = NULL;
    int family = sa ? sa->sa_family : AF_UNSPEC;

    if (size == 0)
        return buf;
    if (family == AF_INET) {
        src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (family == AF_INET6) {
        const struct in6_addr *a6 =
            &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        src = a6;
        if (IN6_IS_ADDR_V4MAPPED(a6)) {
            family = AF_INET;
            src = a6->s6_addr + 12;
        }
    }
    if (src == NULL || inet_ntop(family, src, buf, (socklen_t)size) == NULL)
        snprintf(buf, size, "%s", "unknown");
    return buf;
}

int netaddr_port(const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)(const void *)sa)->sin_port);
    if (sa->sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)(const void *)sa)->sin6_port);
    return 0;
}

/* net_mask - clear the bits after prefix */
static void net_mask(unsigned char *a, size_t bytes, unsigned prefix)
{
    for (size_t i = 0; i < bytes; i++) {
        unsigned bit = (unsigned)i * 8;
        if (bit >= prefix)
            a[i] = 0;
        else if (prefix - bit < 8)
            a[i] &= (unsigned char)(0xFF << (8 - (prefix - bit)));
    }
}

/* net_prefix - strict decimal prefix length 0..max */
static int net_prefix(const char *s, unsigned max, unsigned *out)
{
    unsigned v = 0;

    if (*s == '\0' || strlen(s) > 3)
        return -1;
    for (; *s != '\0'; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (unsigned)(*s - '0');
    }
    if (v > max)
        return -1;
    *out = v;
    return 0;
}

/* net_entry_parse - one entry of the list text (NUL-terminated copy) */
static int net_entry_parse(char *s, struct net_entry *e)
{
    char *slash = strchr(s, '/'), *host = s;
    bool bracket = *s == '[';
    bool has_prefix = slash != NULL;

    if (slash)
        *slash = '\0';
    if (bracket) {
        size_t len = strlen(s);
        if (len < 3 || s[len - 1] != ']')
            return -1;
        s[len - 1] = '\0';
        host = s + 1;
    }
    if (inet_pton(AF_INET, host, e->addr) == 1) {
        e->family = AF_INET;
        e->prefix = 32;
    } else if (inet_pton(AF_INET6, host, e->addr) == 1) {
        e->family = AF_INET6;
        e->prefix = 128;
    } else {
        return -1;
    }
    if (has_prefix && net_prefix(slash + 1, e->prefix, &e->prefix) < 0)
        return -1;
    if (e->family == AF_INET6 && e->prefix >= 96 &&
        memcmp(e->addr, v4mapped_prefix, 12) == 0) {
        memmove(e->addr, e->addr + 12, 4);
        e->family = AF_INET;
        e->prefix -= 96;
    }
    net_mask(e->addr, e->family == AF_INET ? 4 : 16, e->prefix);
    return 0;
}

/* net_error - "malformed network entry: TEXT" with TEXT made printable */
static const char *net_error(const char *tok, size_t len)
{
    static char msg[NETLIST_ENTRY_MAX + 64];
    size_t off = str_copy(msg, "malformed network entry: ", sizeof(msg));
    size_t show = len > NETLIST_ENTRY_MAX ? NETLIST_ENTRY_MAX : len;

    for (size_t i = 0; i < show; i++) {
        unsigned char c = (unsigned char)tok[i];
        msg[off++] = (c >= 0x20 && c < 0x7F) ? (char)c : '?';
    }
    msg[off] = '\0';
    return msg;
}

static bool net_is_sep(char c)
{
    return c == ',' || c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

netlist_t *netlist_parse(const char *list, const char **error_r)
{
    netlist_t *l = xcalloc(1, sizeof(*l));
    size_t cap = 0;
    const char *p = list ? list : "";

    for (;;) {
        char tok[NETLIST_ENTRY_MAX + 1];
        const char *start;
        size_t len;

        while (net_is_sep(*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && !net_is_sep(*p))
            p++;
        len = (size_t)(p - start);
        if (l->n == cap) {
            cap = cap ? cap * 2 : 8;
            l->v = xrealloc(l->v, cap * sizeof(*l->v));
        }
        if (len >= sizeof(tok)) {
            *error_r = net_error(start, len);
            netlist_free(l);
            return NULL;
        }
        memcpy(tok, start, len);
        tok[len] = '\0';
        if (net_entry_parse(tok, &l->v[l->n]) < 0) {
            *error_r = net_error(start, len);
            netlist_free(l);
            return NULL;
        }
        l->n++;
    }
    return l;
}

/* net_client - the client address as (family, bytes), mapped -> IPv4 */
static bool net_client(const struct sockaddr *sa, int *family,
                       unsigned char out[16])
{
    if (sa == NULL)
        return false;
    if (sa->sa_family == AF_INET) {
        memcpy(out, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, 4);
        *family = AF_INET;
        return true;
    }
    if (sa->sa_family == AF_INET6) {
        const unsigned char *a =
            ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(a, v4mapped_prefix, 12) == 0) {
            memcpy(out, a + 12, 4);
            *family = AF_INET;
        } else {
            memcpy(out, a, 16);
            *family = AF_INET6;
        }
        return true;
    }
    return false;
}

bool netlist_match(const netlist_t *l, const struct sockaddr *sa)
{
    unsigned char a[16], m[16];
    int family;

    if (l == NULL || !net_client(sa, &family, a))
        return false;
    for (size_t i = 0; i < l->n; i++) {
        const struct net_entry *e = &l->v[i];
        size_t bytes = e->family == AF_INET ? 4 : 16;
        if (e->family != family)
            continue;
        memcpy(m, a, bytes);
        net_mask(m, bytes, e->prefix);
        if (memcmp(m, e->addr, bytes) == 0)
            return true;
    }
    return false;
}

void netlist_free(netlist_t *l)
{
    if (l == NULL)
        return;
    free(l->v);
    free(l);
}
