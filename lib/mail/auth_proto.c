/*
 * auth_proto - encode and strictly decode auth(8) requests and replies;
 * the contract is in auth_proto.h.
 */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "auth_proto.h"

enum field_kind { FK_NAME, FK_SECRET, FK_ADDR, FK_HOST };

/* auth_field_ok - value obeys the rules of its kind and length */
static bool auth_field_ok(const char *v, enum field_kind kind, size_t max)
{
    size_t len = strlen(v);

    if (len == 0 || len > max)
        return false;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        bool alnum = (*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'z')
                     || (*p >= 'A' && *p <= 'Z');

        switch (kind) {
        case FK_NAME:
            if (*p < 0x20 || *p == 0x7f)
                return false;
            break;
        case FK_SECRET:
            break;
        case FK_ADDR:
            if (!alnum && !strchr(".:_%-", *p))
                return false;
            break;
        case FK_HOST:
            if (!alnum && !strchr(".-_", *p))
                return false;
            break;
        }
    }
    return true;
}

static bool auth_one_of(const char *v, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

static const char *const auth_mechanisms[] = { "PLAIN", "LOGIN", NULL };
static const char *const auth_services[] = { "smtp", "pop3", "imap", NULL };
static const char *const auth_statuses[] = {
    [AUTH_STATUS_OK] = "ok", [AUTH_STATUS_FAIL] = "fail",
    [AUTH_STATUS_TEMPFAIL] = "tempfail", NULL
};

/* auth_status_name - wire name of a status */
const char *auth_status_name(enum auth_status s)
{
    return (unsigned)s <= AUTH_STATUS_TEMPFAIL ? auth_statuses[s] : "?";
}

static int auth_version_ok(const attr_list_t *in, const char **error_r)
{
    if (strcmp(attr_get(in, AUTH_A_VERSION), "1") != 0) {
        *error_r = "unsupported protocol version";
        return -1;
    }
    return 0;
}

/* auth_copy - checked copy of a field that auth_field_ok accepted */
static void auth_copy(char *dst, size_t size, const char *src)
{
    size_t len = strlen(src);

    if (len >= size)
        len = size - 1;
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* auth_request_check - the field rules, shared by encode and decode */
static int auth_request_check(const char *mech, const char *service,
                              const char *user, const char *password,
                              const char *addr, const char *name,
                              const char **error_r)
{
    if (!auth_one_of(mech, auth_mechanisms))
        *error_r = "bad mechanism";
    else if (!auth_one_of(service, auth_services))
        *error_r = "bad service";
    else if (!auth_field_ok(user, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad user name";
    else if (!auth_field_ok(password, FK_SECRET, AUTH_FIELD_MAX))
        *error_r = "bad password";
    else if (!auth_field_ok(addr, FK_ADDR, AUTH_ADDR_MAX))
        *error_r = "bad client_address";
    else if (!auth_field_ok(name, FK_HOST, AUTH_FIELD_MAX))
        *error_r = "bad client_name";
    else
        return 0;
    return -1;
}

/* auth_request_encode - a request as attributes */
int auth_request_encode(const struct auth_request *r, attr_list_t *out,
                        const char **error_r)
{
    if (auth_request_check(r->mechanism, r->service, r->user, r->password,
                           r->client_address, r->client_name, error_r) < 0)
        return -1;
    attr_add(out, AUTH_A_REQUEST, AUTH_REQUEST_AUTH);
    attr_add_long(out, AUTH_A_VERSION, AUTH_PROTO_VERSION);
    attr_add(out, AUTH_A_MECHANISM, r->mechanism);
    attr_add(out, AUTH_A_SERVICE, r->service);
    attr_add(out, AUTH_A_USER, r->user);
    attr_add(out, AUTH_A_PASSWORD, r->password);
    attr_add(out, AUTH_A_CLIENT_ADDRESS, r->client_address);
    attr_add(out, AUTH_A_CLIENT_NAME, r->client_name);
    return 0;
}

/* auth_request_decode - strict: exactly the attributes of version 1 */
int auth_request_decode(const attr_list_t *in, struct auth_request *r,
                        const char **error_r)
{
    static const char *const names[] = {
        AUTH_A_REQUEST, AUTH_A_VERSION, AUTH_A_MECHANISM, AUTH_A_SERVICE,
        AUTH_A_USER, AUTH_A_PASSWORD, AUTH_A_CLIENT_ADDRESS,
        AUTH_A_CLIENT_NAME, NULL
    };
    const char *mech, *service, *user, *password, *addr, *name;

    memset(r, 0, sizeof(*r));
    if (attr_check_names(in, names, 8, error_r) < 0)
        return -1;
    if (strcmp(attr_get(in, AUTH_A_REQUEST), AUTH_REQUEST_AUTH) != 0) {
        *error_r = "unknown request";
        return -1;
    }
    if (auth_version_ok(in, error_r) < 0)
        return -1;
    mech = attr_get(in, AUTH_A_MECHANISM);
    service = attr_get(in, AUTH_A_SERVICE);
    user = attr_get(in, AUTH_A_USER);
    password = attr_get(in, AUTH_A_PASSWORD);
    addr = attr_get(in, AUTH_A_CLIENT_ADDRESS);
    name = attr_get(in, AUTH_A_CLIENT_NAME);
    if (auth_request_check(mech, service, user, password, addr, name,
                           error_r) < 0)
        return -1;
    auth_copy(r->mechanism, sizeof(r->mechanism), mech);
    auth_copy(r->service, sizeof(r->service), service);
    auth_copy(r->user, sizeof(r->user), user);
    auth_copy(r->password, sizeof(r->password), password);
    auth_copy(r->client_address, sizeof(r->client_address), addr);
    auth_copy(r->client_name, sizeof(r->client_name), name);
    return 0;
}

/* auth_reply_check - user with ok and only then; reason always */
static int auth_reply_check(enum auth_status st, const char *user,
                            const char *reason, const char **error_r)
{
    if ((unsigned)st > AUTH_STATUS_TEMPFAIL)
        *error_r = "bad status";
    else if ((st == AUTH_STATUS_OK) != (user != NULL && *user != '\0'))
        *error_r = "user must come with status=ok, and only then";
    else if (user && *user && !auth_field_ok(user, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad user name";
    else if (!auth_field_ok(reason, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad reason";
    else
        return 0;
    return -1;
}

/* auth_reply_encode - a reply as attributes */
int auth_reply_encode(const struct auth_reply *r, attr_list_t *out,
                      const char **error_r)
{
    if (auth_reply_check(r->status, r->user, r->reason, error_r) < 0)
        return -1;
    attr_add_long(out, AUTH_A_VERSION, AUTH_PROTO_VERSION);
    attr_add(out, AUTH_A_STATUS, auth_status_name(r->status));
    attr_add(out, AUTH_A_REASON, r->reason);
    if (r->status == AUTH_STATUS_OK)
        attr_add(out, AUTH_A_USER, r->user);
    return 0;
}

/* auth_reply_decode - strict, as the request */
int auth_reply_decode(const attr_list_t *in, struct auth_reply *r,
                      const char **error_r)
{
    static const char *const names[] = {
        AUTH_A_VERSION, AUTH_A_STATUS, AUTH_A_REASON, AUTH_A_USER, NULL
    };
    const char *st, *user, *reason;
    size_t i;

    memset(r, 0, sizeof(*r));
    if (attr_check_names(in, names, 3, error_r) < 0
        || auth_version_ok(in, error_r) < 0)
        return -1;
    st = attr_get(in, AUTH_A_STATUS);
    for (i = 0; auth_statuses[i]; i++)
        if (strcmp(st, auth_statuses[i]) == 0)
            break;
    if (auth_statuses[i] == NULL) {
        *error_r = "bad status";
        return -1;
    }
    user = attr_get(in, AUTH_A_USER);
    reason = attr_get(in, AUTH_A_REASON);
    if (auth_reply_check((enum auth_status)i, user, reason, error_r) < 0)
        return -1;
    r->status = (enum auth_status)i;
    if (user)
        auth_copy(r->user, sizeof(r->user), user);
    auth_copy(r->reason, sizeof(r->reason), reason);
    return 0;
}

/* auth_request_clear - wipe the password (and the rest) */
void auth_request_clear(struct auth_request *r)
{
    explicit_bzero(r, sizeof(*r));
}

