/*
 * route - transport and nexthop per recipient (see route.h): the pure
 * decision first, then the main.conf tables behind it.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/mailuser.h"
#include "mail/route.h"
#include "mail/domain_list.h"
#include "util/log.h"
#include "util/util.h"

/* ---- pieces ------------------------------------------------------------- */

bool route_transport_valid(const char *name)
{
    if (name[0] == '\0' || name[0] == '.'
        || strlen(name) >= ROUTE_TRANSPORT_MAX)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')
              || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_'
              || *p == '-'))
            return false;
    return true;
}

/* route_split - transport names hold no ':', so the first one splits */
bool route_split(const char *value, char *transport, size_t tsize,
                 char *nexthop, size_t nsize)
{
    const char *colon = strchr(value, ':');
    size_t tlen = colon ? (size_t)(colon - value) : strlen(value);
    const char *nh = colon ? colon + 1 : "";
    char t[ROUTE_TRANSPORT_MAX], n[ROUTE_NEXTHOP_MAX];

    if (tlen >= tsize || tlen >= sizeof(t) || strlen(nh) >= nsize
        || strlen(nh) >= sizeof(n))
        return false;
    memcpy(t, value, tlen);
    t[tlen] = '\0';
    str_copy(n, nh, sizeof(n));
    str_copy(transport, str_trim(t), tsize);
    str_copy(nexthop, str_trim(n), nsize);
    return true;
}

int route_nexthop_parse(const char *nexthop, char *host, size_t size,
                        unsigned *port, bool *mx_lookup)
{
    const char *end, *colon;
    size_t hlen;
    long n;

    *port = 0;
    *mx_lookup = nexthop[0] != '[';
    if (nexthop[0] == '[') {
        end = strchr(nexthop, ']');
        if (end == NULL)
            return -1;
        hlen = (size_t)(end - nexthop - 1);
        nexthop++;
        colon = end[1] == ':' ? end + 1 : NULL;
        if (end[1] != '\0' && colon == NULL)
            return -1;
    } else {
        colon = strchr(nexthop, ':');
        hlen = colon ? (size_t)(colon - nexthop) : strlen(nexthop);
        if (colon != NULL && strchr(colon + 1, ':') != NULL)
            return -1;      /* a bare IPv6 address needs brackets */
    }
    if (hlen == 0 || hlen >= size)
        return -1;
    for (size_t i = 0; i < hlen; i++)
        if (nexthop[i] <= ' ' || nexthop[i] == '[' || nexthop[i] == ']'
            || nexthop[i] == '/' || (unsigned char)nexthop[i] >= 0x7f)
            return -1;
    if (colon != NULL) {
        if (parse_long(colon + 1, 1, 65535, &n) < 0)
            return -1;
        *port = (unsigned)n;
    }
    memcpy(host, nexthop, hlen);
    host[hlen] = '\0';
    return 0;
}

bool route_strip_extension(const char *addr, const char *delimiter,
                           char *out, size_t size)
{
    const char *at = strrchr(addr, '@');
    size_t llen = at ? (size_t)(at - addr) : strlen(addr);
    size_t cut = llen;

    if (delimiter == NULL || *delimiter == '\0')
        return false;
    for (size_t i = 0; i < llen; i++)
        if (strchr(delimiter, addr[i]) != NULL) {
            cut = i;
            break;
        }
    if (cut == llen || cut == 0)
        return false;
    if (cut + strlen(addr + llen) >= size)
        return false;
    memcpy(out, addr, cut);
    str_copy(out + cut, addr + llen, size - cut);
    return true;
}

/* lookup - one table key; keys too long for a table are never found */
static int lookup(int (*fn)(void *, const char *, buf_t *), void *ctx,
                  const char *key, buf_t *value)
{
    if (fn == NULL || strlen(key) > DICT_KEY_MAX)
        return 0;
    return fn(ctx, key, value);
}

/* transport_find - transport_maps in transport(5) order */
static int transport_find(const struct route_params *p,
                          const struct route_lookups *l, const char *rcpt,
                          const char *domain, buf_t *value)
{
    char key[1024];
    int rc;

    if (l->transport == NULL)
        return 0;
    if (strlen(rcpt) < sizeof(key)) {
        str_copy(key, rcpt, sizeof(key));
        str_lower(key);
        if ((rc = lookup(l->transport, l->ctx, key, value)) != 0)
            return rc;
        if (route_strip_extension(rcpt, p->recipient_delimiter, key,
                                  sizeof(key))) {
            str_lower(key);
            if ((rc = lookup(l->transport, l->ctx, key, value)) != 0)
                return rc;
        }
    }
    if (*domain != '\0' && strlen(domain) + 1 < sizeof(key)) {
        str_copy(key, domain, sizeof(key));
        str_lower(key);
        if ((rc = lookup(l->transport, l->ctx, key, value)) != 0)
            return rc;
        /* ".example.com" entries match below example.com */
        for (const char *d = strchr(key + 1, '.'); d != NULL && d[1] != '\0';
             d = strchr(d + 1, '.'))
            if ((rc = lookup(l->transport, l->ctx, d, value)) != 0)
                return rc;
    }
    return lookup(l->transport, l->ctx, "*", value);
}

/* sender_relay_find - sender_dependent_relayhost_maps: the sender, the
   sender minus its extension, "@domain" */
static int sender_relay_find(const struct route_params *p,
                             const struct route_lookups *l,
                             const char *sender, buf_t *value)
{
    char key[1024];
    const char *at;
    int rc;

    if (l->sender_relay == NULL)
        return 0;
    if (*sender == '\0')
        return lookup(l->sender_relay, l->ctx,
                      p->null_sender_key ? p->null_sender_key : "<>", value);
    if (strlen(sender) >= sizeof(key))
        return 0;
    str_copy(key, sender, sizeof(key));
    str_lower(key);
    if ((rc = lookup(l->sender_relay, l->ctx, key, value)) != 0)
        return rc;
    if (route_strip_extension(sender, p->recipient_delimiter, key,
                              sizeof(key))) {
        str_lower(key);
        if ((rc = lookup(l->sender_relay, l->ctx, key, value)) != 0)
            return rc;
    }
    if ((at = strrchr(sender, '@')) != NULL && at[1] != '\0') {
        str_copy(key, at, sizeof(key));
        str_lower(key);
        return lookup(l->sender_relay, l->ctx, key, value);
    }
    return 0;
}

/* class_default - steps 1 and 2 of route.h */
static int class_default(const struct route_params *p,
                         const struct route_lookups *l, const char *sender,
                         const char *domain, route_t *out,
                         const char **error_r)
{
    const char *setting = p->default_transport, *name = "default_transport";
    bool local = *domain == '\0';
    buf_t value = BUF_INIT;
    int rc = 0;

    if (!local && l->is_local != NULL) {
        rc = l->is_local(l->ctx, domain);
        if (rc < 0) {
            *error_r = "mydestination lookup failure";
            return -1;
        }
        local = rc > 0;
    }
    if (local) {
        setting = p->local_transport;
        name = "local_transport";
    } else if (l->is_relay != NULL) {
        rc = l->is_relay(l->ctx, domain);
        if (rc < 0) {
            *error_r = "relay_domains lookup failure";
            return -1;
        }
        if (rc > 0) {
            setting = p->relay_transport;
            name = "relay_transport";
        }
    }
    if (!route_split(setting != NULL ? setting : "", out->transport,
                     sizeof(out->transport), out->nexthop,
                     sizeof(out->nexthop))
        || !route_transport_valid(out->transport)) {
        *error_r = strcmp(name, "local_transport") == 0
            ? "invalid transport name in local_transport"
            : strcmp(name, "relay_transport") == 0
            ? "invalid transport name in relay_transport"
            : "invalid transport name in default_transport";
        return -1;
    }
    if (out->nexthop[0] != '\0' || local) {
        if (out->nexthop[0] == '\0')
            str_copy(out->nexthop, domain, sizeof(out->nexthop));
        return 0;
    }
    rc = sender_relay_find(p, l, sender, &value);
    if (rc < 0) {
        buf_free(&value);
        *error_r = "sender_dependent_relayhost_maps lookup failure";
        return -1;
    }
    if (rc > 0) {
        char *v = str_trim((char *)buf_str(&value));

        if (*v != '\0' && strcasecmp(v, "DUNNO") != 0
            && strlen(v) < sizeof(out->nexthop)) {
            str_copy(out->nexthop, v, sizeof(out->nexthop));
            buf_free(&value);
            return 0;
        }
    }
    buf_free(&value);
    if (p->relayhost != NULL && p->relayhost[0] != '\0'
        && strlen(p->relayhost) < sizeof(out->nexthop))
        str_copy(out->nexthop, p->relayhost, sizeof(out->nexthop));
    else
        str_copy(out->nexthop, domain, sizeof(out->nexthop));
    return 0;
}

int route_resolve(const struct route_params *p, const struct route_lookups *l,
                  const char *sender, const char *rcpt, route_t *out,
                  const char **error_r)
{
    const char *at = strrchr(rcpt, '@');
    const char *domain = at ? at + 1 : "";
    char t[ROUTE_TRANSPORT_MAX] = "", nh[ROUTE_NEXTHOP_MAX] = "";
    buf_t value = BUF_INIT;
    int rc;

    memset(out, 0, sizeof(*out));
    rc = transport_find(p, l, rcpt, domain, &value);
    if (rc < 0) {
        buf_free(&value);
        *error_r = "transport_maps lookup failure";
        return -1;
    }
    if (rc > 0) {
        if (!route_split(buf_str(&value), t, sizeof(t), nh, sizeof(nh))
            || (t[0] != '\0' && !route_transport_valid(t))) {
            buf_free(&value);
            *error_r = "invalid transport name in transport_maps";
            return -1;
        }
    }
    buf_free(&value);
    if (t[0] == '\0' || nh[0] == '\0') {
        if (class_default(p, l, sender != NULL ? sender : "", domain, out,
                          error_r) < 0)
            return -1;
    }
    if (t[0] != '\0')
        str_copy(out->transport, t, sizeof(out->transport));
    if (nh[0] != '\0')
        str_copy(out->nexthop, nh, sizeof(out->nexthop));
    return 0;
}

/* ---- main.conf's tables -------------------------------------------------- */

static maps_t *rt_transport, *rt_sender_relay;
static domain_list_t rt_relay;      /* $relay_domains */

static int rt_maps_lookup(maps_t *m, const char *key, buf_t *value)
{
    return m == NULL ? 0 : maps_lookup(m, key, value);
}

static int rt_transport_cb(void *ctx, const char *key, buf_t *value)
{
    (void)ctx;
    return rt_maps_lookup(rt_transport, key, value);
}

static int rt_sender_cb(void *ctx, const char *key, buf_t *value)
{
    (void)ctx;
    return rt_maps_lookup(rt_sender_relay, key, value);
}

static int rt_local_cb(void *ctx, const char *domain)
{
    (void)ctx;
    return mailuser_domain_is_local(domain) ? 1 : 0;
}

/* rt_relay_cb - relay_domains as smtpd reads it (domain_list.h) */
static int rt_relay_cb(void *ctx, const char *domain)
{
    (void)ctx;
    return domain_list_match(&rt_relay, domain);
}

/* rt_open_maps - a table list, or NULL for an empty one */
static int rt_open_maps(const char *param, const char *list, maps_t **out)
{
    const char *err = NULL;

    *out = NULL;
    if (list == NULL || *list == '\0')
        return 0;
    *out = maps_open_missing_ok(list, &err);
    if (*out == NULL) {
        log_error("%s: %s", param, err != NULL ? err : "bad table");
        return -1;
    }
    return 0;
}

int route_tables_open(void)
{
    route_tables_close();
    if (rt_open_maps("transport_maps", var_transport_maps, &rt_transport) < 0
        || rt_open_maps("sender_dependent_relayhost_maps",
                        var_sender_dependent_relayhost_maps,
                        &rt_sender_relay) < 0)
        return -1;
    return domain_list_open(&rt_relay, "relay_domains", var_relay_domains);
}

int route_config_resolve(const char *sender, const char *rcpt, route_t *out,
                         const char **error_r)
{
    const struct route_params p = {
        .local_transport = var_local_transport,
        .relay_transport = var_relay_transport,
        .default_transport = var_default_transport,
        .relayhost = var_relayhost,
        .recipient_delimiter = var_recipient_delimiter,
        .null_sender_key = var_empty_address_relayhost_maps_lookup_key,
    };
    const struct route_lookups l = {
        .ctx = NULL,
        .transport = rt_transport_cb,
        .sender_relay = rt_sender_cb,
        .is_local = rt_local_cb,
        .is_relay = rt_relay_cb,
    };

    return route_resolve(&p, &l, sender, rcpt, out, error_r);
}

void route_tables_close(void)
{
    maps_close(rt_transport);
    maps_close(rt_sender_relay);
    rt_transport = rt_sender_relay = NULL;
    domain_list_close(&rt_relay);
}
