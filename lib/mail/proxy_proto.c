/*
 * proxy_proto - encode and strictly decode proxymap(8) requests and
 * replies; the contract is in proxy_proto.h.
 */
#include <stdbool.h>
#include <string.h>

#include "proxy_proto.h"

static const char *const proxy_statuses[] = {
    [PROXY_STATUS_FOUND] = "found", [PROXY_STATUS_NOTFOUND] = "notfound",
    [PROXY_STATUS_TEMPFAIL] = "tempfail", [PROXY_STATUS_DENIED] = "denied",
    NULL
};

/* proxy_status_name - wire name of a status */
const char *proxy_status_name(enum proxy_status s)
{
    return (unsigned)s <= PROXY_STATUS_DENIED ? proxy_statuses[s] : "?";
}

/* proxy_text_ok - 1..max bytes, no control characters (nor blanks) */
static bool proxy_text_ok(const char *v, size_t max, bool blanks)
{
    size_t len = strlen(v);

    if (len == 0 || len > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (!blanks && *p == ' '))
            return false;
    return true;
}

/* proxy_table_ok - TYPE:NAME, TYPE non-empty lowercase letters/digits */
static bool proxy_table_ok(const char *t)
{
    const char *colon = strchr(t, ':');

    if (!proxy_text_ok(t, PROXY_TABLE_MAX, false) || colon == NULL
        || colon == t)
        return false;
    for (const char *p = t; p < colon; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9')))
            return false;
    return true;
}

/* proxy_check_names - the strict attribute set, then version 1 */
static int proxy_check_names(const attr_list_t *in, const char *const *names,
                             size_t nrequired, const char **error_r)
{
    if (attr_check_names(in, names, nrequired, error_r) < 0)
        return -1;
    if (strcmp(attr_get(in, PROXY_A_VERSION), "1") != 0) {
        *error_r = "unsupported protocol version";
        return -1;
    }
    return 0;
}

/* proxy_copy - copy of a field whose length was checked */
static void proxy_copy(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);

    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* proxy_request_check - the field rules, shared by encode and decode */
static int proxy_request_check(enum proxy_request_type type,
                               const char *table, const char *key,
                               const char **error_r)
{
    if (type == PROXY_REQ_LOOKUP && !proxy_table_ok(table))
        *error_r = "bad table name";
    else if (type != PROXY_REQ_LOOKUP && table && *table)
        *error_r = "table with a local_user or local_login request";
    else if (type == PROXY_REQ_LOCAL_LOGIN
             && (key == NULL || *key == '\0' || strlen(key) > 20
                 || strspn(key, "0123456789") != strlen(key)))
        *error_r = "bad uid";
    else if (!proxy_text_ok(key, PROXY_KEY_MAX, true))
        *error_r = "bad key";
    else
        return 0;
    return -1;
}

/* proxy_request_encode - a request as attributes */
int proxy_request_encode(const struct proxy_request *r, attr_list_t *out,
                         const char **error_r)
{
    if ((unsigned)r->type > PROXY_REQ_LOCAL_LOGIN) {
        *error_r = "bad request type";
        return -1;
    }
    if (proxy_request_check(r->type, r->table, r->key, error_r) < 0)
        return -1;
    attr_add(out, PROXY_A_REQUEST, r->type == PROXY_REQ_LOOKUP
                                   ? PROXY_REQUEST_LOOKUP
                                   : r->type == PROXY_REQ_LOCAL_USER
                                   ? PROXY_REQUEST_LOCAL_USER
                                   : PROXY_REQUEST_LOCAL_LOGIN);
    attr_add_long(out, PROXY_A_VERSION, PROXY_PROTO_VERSION);
    if (r->type == PROXY_REQ_LOOKUP)
        attr_add(out, PROXY_A_TABLE, r->table);
    attr_add(out, PROXY_A_KEY, r->key);
    return 0;
}

/* proxy_request_decode - strict: exactly the attributes of version 1 */
int proxy_request_decode(const attr_list_t *in, struct proxy_request *r,
                         const char **error_r)
{
    static const char *const lookup_names[] = {
        PROXY_A_REQUEST, PROXY_A_VERSION, PROXY_A_TABLE, PROXY_A_KEY, NULL
    };
    static const char *const user_names[] = {
        PROXY_A_REQUEST, PROXY_A_VERSION, PROXY_A_KEY, NULL
    };
    const char *req = attr_get(in, PROXY_A_REQUEST);
    const char *table, *key;

    memset(r, 0, sizeof(*r));
    if (req == NULL) {
        *error_r = "missing attribute";
        return -1;
    }
    if (strcmp(req, PROXY_REQUEST_LOOKUP) == 0) {
        r->type = PROXY_REQ_LOOKUP;
        if (proxy_check_names(in, lookup_names, 4, error_r) < 0)
            return -1;
    } else if (strcmp(req, PROXY_REQUEST_LOCAL_USER) == 0
               || strcmp(req, PROXY_REQUEST_LOCAL_LOGIN) == 0) {
        r->type = strcmp(req, PROXY_REQUEST_LOCAL_USER) == 0
                  ? PROXY_REQ_LOCAL_USER : PROXY_REQ_LOCAL_LOGIN;
        if (proxy_check_names(in, user_names, 3, error_r) < 0)
            return -1;
    } else {
        *error_r = "unknown request";
        return -1;
    }
    table = attr_get(in, PROXY_A_TABLE);
    key = attr_get(in, PROXY_A_KEY);
    if (proxy_request_check(r->type, table, key, error_r) < 0)
        return -1;
    if (table)
        proxy_copy(r->table, sizeof(r->table), table);
    proxy_copy(r->key, sizeof(r->key), key);
    return 0;
}

/* proxy_reply_check - value with found and only then */
static int proxy_reply_check(enum proxy_status st, const char *value,
                             const char **error_r)
{
    if ((unsigned)st > PROXY_STATUS_DENIED)
        *error_r = "bad status";
    else if ((st == PROXY_STATUS_FOUND) != (value != NULL))
        *error_r = "value must come with status=found, and only then";
    else if (value && strlen(value) > PROXY_VALUE_MAX)
        *error_r = "value too long";
    else
        return 0;
    return -1;
}

/* proxy_reply_encode - a reply as attributes */
int proxy_reply_encode(const struct proxy_reply *r, attr_list_t *out,
                       const char **error_r)
{
    const char *value = r->status == PROXY_STATUS_FOUND ? r->value : NULL;

    if (proxy_reply_check(r->status, value, error_r) < 0)
        return -1;
    attr_add_long(out, PROXY_A_VERSION, PROXY_PROTO_VERSION);
    attr_add(out, PROXY_A_STATUS, proxy_status_name(r->status));
    if (value)
        attr_add(out, PROXY_A_VALUE, value);
    return 0;
}

/* proxy_reply_decode - strict, as the request */
int proxy_reply_decode(const attr_list_t *in, struct proxy_reply *r,
                       const char **error_r)
{
    static const char *const names[] = {
        PROXY_A_VERSION, PROXY_A_STATUS, PROXY_A_VALUE, NULL
    };
    const char *st, *value;
    size_t i;

    memset(r, 0, sizeof(*r));
    if (proxy_check_names(in, names, 2, error_r) < 0)
        return -1;
    st = attr_get(in, PROXY_A_STATUS);
    for (i = 0; proxy_statuses[i]; i++)
        if (strcmp(st, proxy_statuses[i]) == 0)
            break;
    if (proxy_statuses[i] == NULL) {
        *error_r = "bad status";
        return -1;
    }
    value = attr_get(in, PROXY_A_VALUE);
    if (proxy_reply_check((enum proxy_status)i, value, error_r) < 0)
        return -1;
    r->status = (enum proxy_status)i;
    if (value)
        proxy_copy(r->value, sizeof(r->value), value);
    return 0;
}
