/*
 * smtp_nexthop - next-hop and port syntax; see smtp_nexthop.h. Input is
 * configuration or qmgr's routing result: parsed with bounds, never
 * trusted to fit.
 */
#include "smtp_nexthop.h"

#include <string.h>
#include <strings.h>

#include "util/util.h"

int smtp_port_lookup(const char *table, const char *name)
{
    const char *p = table;
    long port;

    if (*name == '\0')
        return -1;
    if (parse_long(name, 1, 65535, &port) == 0)
        return (int)port;
    /* "lmtp=24, smtp=25, smtps=submissions=465" */
    while (*p) {
        const char *end = p + strcspn(p, ", \t");
        const char *last = NULL;

        for (const char *q = p; q < end; q++)
            if (*q == '=')
                last = q;
        if (last != NULL) {
            char num[8];
            size_t nl = (size_t)(end - last - 1);

            if (nl > 0 && nl < sizeof(num)) {
                memcpy(num, last + 1, nl);
                num[nl] = '\0';
                for (const char *w = p; w < last;) {
                    const char *we = memchr(w, '=', (size_t)(last - w + 1));
                    size_t wl = (size_t)(we - w);

                    if (wl == strlen(name) && strncasecmp(w, name, wl) == 0
                        && parse_long(num, 1, 65535, &port) == 0)
                        return (int)port;
                    w = we + 1;
                }
            }
        }
        p = end;
        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
    }
    return -1;
}

int smtp_nexthop_parse(const char *table, const char *nexthop, char *name,
                       size_t size, bool *bracket, int *port)
{
    const char *end, *colon;
    size_t len;

    *port = 0;
    *bracket = nexthop[0] == '[';
    if (*bracket) {
        end = strchr(nexthop, ']');
        if (end == NULL)
            return -1;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return -1;
        nexthop++;
    } else {
        colon = strrchr(nexthop, ':');
        end = colon ? colon : nexthop + strlen(nexthop);
    }
    len = (size_t)(end - nexthop);
    if (len == 0 || len >= size)
        return -1;
    memcpy(name, nexthop, len);
    name[len] = '\0';
    if (colon != NULL && (*port = smtp_port_lookup(table, colon + 1)) < 0)
        return -1;
    if (name[len - 1] == '.' && !*bracket)
        name[--len] = '\0';
    return len > 0 ? 0 : -1;        /* "." names nothing */
}
