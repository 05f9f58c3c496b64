/*
 * fuzz_dns - libFuzzer harness for the parts of dns.c that see data from
 * the network: dns_name_from_wire (the rdata of a PTR answer), the host
 * name check dns_name_valid, dns_reverse_name (a peer's address) and
 * dns_result_has_addr (address records against a peer's address).
 *
 * The first input byte picks the parser, the second the output buffer
 * size; the rest is the data. Inputs and outputs live in heap blocks of their exact
 * size, so ASan sees any byte read or written past them. Besides crashes
 * the harness checks: a name accepted from the wire is a valid host name
 * that encodes back to exactly the input, a smaller buffer never gives a
 * different name, and every valid text name survives text -> wire -> text.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/dns.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* fuzz_to_wire - text (no final dot) to length-prefixed labels plus the
   root label; the length of the wire form, or 0 when it does not fit */
static size_t fuzz_to_wire(const char *name, unsigned char *wire, size_t size)
{
    size_t pos = 0;
    const char *p = name;

    while (*p != '\0') {
        const char *dot = strchr(p, '.');
        size_t l = dot != NULL ? (size_t)(dot - p) : strlen(p);

        if (l == 0 || l > 63 || pos + 1 + l >= size)
            return 0;
        wire[pos++] = (unsigned char)l;
        memcpy(wire + pos, p, l);
        pos += l;
        p += l;
        if (*p == '.')
            p++;
    }
    if (pos >= size)
        return 0;
    wire[pos++] = 0;
    return pos;
}

static void fuzz_wire(const uint8_t *data, size_t len, size_t bufsize)
{
    unsigned char *wire = malloc(len > 0 ? len : 1);
    char *buf = malloc(bufsize);
    char big[DNS_NAME_MAX + 1];
    unsigned char again[DNS_NAME_MAX + 2];
    int rc, rc_big;

    if (wire == NULL || buf == NULL)
        abort();
    memcpy(wire, data, len);
    rc = dns_name_from_wire(wire, len, buf, bufsize);
    rc_big = dns_name_from_wire(wire, len, big, sizeof(big));
    if (rc == 0) {
        size_t n = strnlen(buf, bufsize);

        if (n >= bufsize || n > DNS_NAME_MAX || !dns_name_valid(buf))
            abort();
        /* what fits a small buffer is what a big one gets */
        if (rc_big != 0 || strcmp(buf, big) != 0)
            abort();
        /* no compression, no trailing bytes: the input is the encoding */
        if (fuzz_to_wire(buf, again, sizeof(again)) != len
            || memcmp(again, wire, len) != 0)
            abort();
    } else if (rc != -1) {
        abort();
    }
    if (rc_big == 0 && bufsize > strlen(big) && rc != 0)
        abort();                    /* it did fit, yet was refused */
    free(buf);
    free(wire);
}

static void fuzz_text(const uint8_t *data, size_t len)
{
    char *name = malloc(len + 1);
    unsigned char wire[DNS_NAME_MAX + 2];
    char back[DNS_NAME_MAX + 1];
    size_t n, wlen;

    if (name == NULL)
        abort();
    memcpy(name, data, len);
    name[len] = '\0';
    if (dns_name_valid(name)) {
        n = strlen(name);
        if (n > 0 && name[n - 1] == '.')
            name[--n] = '\0';
        if (n == 0 || n > DNS_NAME_MAX)
            abort();
        /* a valid name is what a PTR answer may carry */
        if ((wlen = fuzz_to_wire(name, wire, sizeof(wire))) == 0
            || dns_name_from_wire(wire, wlen, back, sizeof(back)) != 0
            || strcmp(back, name) != 0)
            abort();
    }
    free(name);
}

static void fuzz_addr(const uint8_t *data, size_t len, size_t bufsize)
{
    struct sockaddr_storage ss;
    struct dns_result r;
    unsigned char *addrs;
    char *buf = malloc(bufsize);
    size_t alen;

    if (buf == NULL || len < 1)
        goto out;
    memset(&ss, 0, sizeof(ss));
    if (data[0] & 1) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, data + 1, len - 1 < 16 ? len - 1 : 16);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, data + 1, len - 1 < 4 ? len - 1 : 4);
    }
    if (dns_reverse_name((struct sockaddr *)&ss, buf, bufsize) == 0) {
        size_t n = strnlen(buf, bufsize);

        if (n >= bufsize || n >= DNS_REVERSE_MAX)
            abort();
    }
    /* the tail of the input as address records of the result */
    memset(&r, 0, sizeof(r));
    r.status = DNS_OK;
    r.family = data[0] & 2 ? AF_INET6 : AF_INET;
    alen = r.family == AF_INET ? 4 : 16;
    r.naddrs = (len - 1) / alen;
    addrs = malloc(r.naddrs * alen + 1);
    if (addrs == NULL)
        abort();
    memcpy(addrs, data + 1, r.naddrs * alen);
    r.addrs = addrs;
    (void)dns_result_has_addr(&r, (struct sockaddr *)&ss);
    free(addrs);
out:
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t bufsize;

    if (size < 2)
        return 0;
    /* 1..DNS_NAME_MAX + 2: the edges of every length check */
    bufsize = 1 + (size_t)data[1] % (DNS_NAME_MAX + 2);
    switch (data[0] & 3) {
    case 0:
        fuzz_wire(data + 2, size - 2, DNS_NAME_MAX + 1);
        break;
    case 1:
        fuzz_wire(data + 2, size - 2, bufsize);
        break;
    case 2:
        fuzz_text(data + 2, size - 2);
        break;
    default:
        fuzz_addr(data + 2, size - 2, bufsize);
        break;
    }
    return 0;
}
