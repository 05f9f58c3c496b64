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
static const char *const auth_scram_mechanisms[] = { SCRAM_MECH, NULL };
static const char *const auth_services[] = { "smtp", "pop3", "imap", NULL };
static const char *const auth_statuses[] = {
    [AUTH_STATUS_OK] = "ok", [AUTH_STATUS_FAIL] = "fail",
    [AUTH_STATUS_TEMPFAIL] = "tempfail", [AUTH_STATUS_CONTINUE] = "continue",
    NULL
};

/* auth_status_name - wire name of a status */
const char *auth_status_name(enum auth_status s)
{
    return (unsigned)s <= AUTH_STATUS_CONTINUE ? auth_statuses[s] : "?";
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
static int auth_request_check(enum auth_request_kind kind, const char *mech,
                              const char *service, const char *user,
                              const char *password, const char *addr,
                              const char *name, const char *cfirst,
                              const char *sfirst, const char *cfinal,
                              const char **error_r)
{
    bool scram = kind != AUTH_REQ_AUTH;

    if (!auth_one_of(mech, scram ? auth_scram_mechanisms : auth_mechanisms))
        *error_r = "bad mechanism";
    else if (!auth_one_of(service, auth_services))
        *error_r = "bad service";
    else if (kind != AUTH_REQ_SCRAM_FINISH
             && !auth_field_ok(user, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad user name";
    else if (kind == AUTH_REQ_AUTH
             && !auth_field_ok(password, FK_SECRET, AUTH_FIELD_MAX))
        *error_r = "bad password";
    else if (kind == AUTH_REQ_SCRAM_FINISH
             && (!auth_field_ok(cfirst, FK_NAME, SCRAM_MSG_MAX)
                 || !auth_field_ok(sfirst, FK_NAME, SCRAM_MSG_MAX)
                 || !auth_field_ok(cfinal, FK_NAME, SCRAM_MSG_MAX)))
        *error_r = "bad SCRAM message";
    else if (!auth_field_ok(addr, FK_ADDR, AUTH_ADDR_MAX))
        *error_r = "bad client_address";
    else if (!auth_field_ok(name, FK_HOST, AUTH_FIELD_MAX))
        *error_r = "bad client_name";
    else
        return 0;
    return -1;
}

static const char *const auth_request_names[] = {
    [AUTH_REQ_AUTH] = AUTH_REQUEST_AUTH,
    [AUTH_REQ_SCRAM_START] = AUTH_REQUEST_SCRAM_START,
    [AUTH_REQ_SCRAM_FINISH] = AUTH_REQUEST_SCRAM_FINISH, NULL
};

/* auth_request_encode - a request as attributes */
int auth_request_encode(const struct auth_request *r, attr_list_t *out,
                        const char **error_r)
{
    if ((unsigned)r->kind > AUTH_REQ_SCRAM_FINISH) {
        *error_r = "unknown request";
        return -1;
    }
    if (auth_request_check(r->kind, r->mechanism, r->service, r->user,
                           r->password, r->client_address, r->client_name,
                           r->client_first, r->server_first, r->client_final,
                           error_r) < 0)
        return -1;
    attr_add(out, AUTH_A_REQUEST, auth_request_names[r->kind]);
    attr_add_long(out, AUTH_A_VERSION, AUTH_PROTO_VERSION);
    attr_add(out, AUTH_A_MECHANISM, r->mechanism);
    attr_add(out, AUTH_A_SERVICE, r->service);
    if (r->kind != AUTH_REQ_SCRAM_FINISH)
        attr_add(out, AUTH_A_USER, r->user);
    if (r->kind == AUTH_REQ_AUTH)
        attr_add(out, AUTH_A_PASSWORD, r->password);
    if (r->kind == AUTH_REQ_SCRAM_FINISH) {
        attr_add(out, AUTH_A_CLIENT_FIRST, r->client_first);
        attr_add(out, AUTH_A_SERVER_FIRST, r->server_first);
        attr_add(out, AUTH_A_CLIENT_FINAL, r->client_final);
    }
    attr_add(out, AUTH_A_CLIENT_ADDRESS, r->client_address);
    attr_add(out, AUTH_A_CLIENT_NAME, r->client_name);
    return 0;
}

/* auth_opt - attribute value or "" */
static const char *auth_opt(const attr_list_t *in, const char *name)
{
    const char *v = attr_get(in, name);

    return v != NULL ? v : "";
}

/* auth_request_decode - strict: exactly the attributes of the request */
int auth_request_decode(const attr_list_t *in, struct auth_request *r,
                        const char **error_r)
{
    static const char *const names_auth[] = {
        AUTH_A_REQUEST, AUTH_A_VERSION, AUTH_A_MECHANISM, AUTH_A_SERVICE,
        AUTH_A_USER, AUTH_A_PASSWORD, AUTH_A_CLIENT_ADDRESS,
        AUTH_A_CLIENT_NAME, NULL
    };
    static const char *const names_start[] = {
        AUTH_A_REQUEST, AUTH_A_VERSION, AUTH_A_MECHANISM, AUTH_A_SERVICE,
        AUTH_A_USER, AUTH_A_CLIENT_ADDRESS, AUTH_A_CLIENT_NAME, NULL
    };
    static const char *const names_finish[] = {
        AUTH_A_REQUEST, AUTH_A_VERSION, AUTH_A_MECHANISM, AUTH_A_SERVICE,
        AUTH_A_CLIENT_FIRST, AUTH_A_SERVER_FIRST, AUTH_A_CLIENT_FINAL,
        AUTH_A_CLIENT_ADDRESS, AUTH_A_CLIENT_NAME, NULL
    };
    static const char *const *const names[] = {
        names_auth, names_start, names_finish
    };
    static const size_t counts[] = { 8, 7, 9 };
    const char *req = attr_get(in, AUTH_A_REQUEST);
    const char *mech, *service, *user, *password, *addr, *name, *cf, *sf,
        *cfin;
    size_t k;

    memset(r, 0, sizeof(*r));
    for (k = 0; req != NULL && auth_request_names[k]; k++)
        if (strcmp(req, auth_request_names[k]) == 0)
            break;
    if (req == NULL || auth_request_names[k] == NULL) {
        *error_r = req == NULL ? "missing attribute: request"
                               : "unknown request";
        return -1;
    }
    if (attr_check_names(in, names[k], counts[k], error_r) < 0)
        return -1;
    if (auth_version_ok(in, error_r) < 0)
        return -1;
    r->kind = (enum auth_request_kind)k;
    mech = attr_get(in, AUTH_A_MECHANISM);
    service = attr_get(in, AUTH_A_SERVICE);
    user = auth_opt(in, AUTH_A_USER);
    password = auth_opt(in, AUTH_A_PASSWORD);
    addr = attr_get(in, AUTH_A_CLIENT_ADDRESS);
    name = attr_get(in, AUTH_A_CLIENT_NAME);
    cf = auth_opt(in, AUTH_A_CLIENT_FIRST);
    sf = auth_opt(in, AUTH_A_SERVER_FIRST);
    cfin = auth_opt(in, AUTH_A_CLIENT_FINAL);
    if (auth_request_check(r->kind, mech, service, user, password, addr, name,
                           cf, sf, cfin, error_r) < 0)
        return -1;
    auth_copy(r->mechanism, sizeof(r->mechanism), mech);
    auth_copy(r->service, sizeof(r->service), service);
    auth_copy(r->user, sizeof(r->user), user);
    auth_copy(r->password, sizeof(r->password), password);
    auth_copy(r->client_address, sizeof(r->client_address), addr);
    auth_copy(r->client_name, sizeof(r->client_name), name);
    auth_copy(r->client_first, sizeof(r->client_first), cf);
    auth_copy(r->server_first, sizeof(r->server_first), sf);
    auth_copy(r->client_final, sizeof(r->client_final), cfin);
    return 0;
}

/* auth_b64_ok - 1..max base64 alphabet characters */
static bool auth_b64_ok(const char *v, size_t max)
{
    size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "0123456789+/=");

    return n > 0 && n <= max && v[n] == '\0';
}

/* auth_reply_check - user (and server_final) with ok and only then;
   salt and iterations with continue and only then; reason always */
static int auth_reply_check(const struct auth_reply *r, const char **error_r)
{
    bool ok = r->status == AUTH_STATUS_OK;
    bool cont = r->status == AUTH_STATUS_CONTINUE;

    if ((unsigned)r->status > AUTH_STATUS_CONTINUE)
        *error_r = "bad status";
    else if (ok != (r->user[0] != '\0'))
        *error_r = "user must come with status=ok, and only then";
    else if (r->user[0] && !auth_field_ok(r->user, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad user name";
    else if (!auth_field_ok(r->reason, FK_NAME, AUTH_FIELD_MAX))
        *error_r = "bad reason";
    else if (r->server_final[0] != '\0'
             && (!ok || !auth_field_ok(r->server_final, FK_NAME,
                                       AUTH_FIELD_MAX)))
        *error_r = "bad server_final";
    else if (r->token[0] != '\0'
             && (!ok || strlen(r->token) > LOGIN_TOKEN_MAX
                 || strspn(r->token, "0123456789abcdef.")
                        != strlen(r->token)))
        *error_r = "bad token (it comes with status=ok only)";
    else if (cont != (r->salt[0] != '\0')
             || (cont && !auth_b64_ok(r->salt, AUTH_SALT_B64_MAX)))
        *error_r = "salt must come with status=continue, and only then";
    else if (cont ? r->iterations < SCRAM_ITER_MIN
                        || r->iterations > SCRAM_ITER_MAX
                  : r->iterations != 0)
        *error_r = "bad iterations";
    else
        return 0;
    return -1;
}

/* auth_reply_encode - a reply as attributes */
int auth_reply_encode(const struct auth_reply *r, attr_list_t *out,
                      const char **error_r)
{
    if (auth_reply_check(r, error_r) < 0)
        return -1;
    attr_add_long(out, AUTH_A_VERSION, AUTH_PROTO_VERSION);
    attr_add(out, AUTH_A_STATUS, auth_status_name(r->status));
    attr_add(out, AUTH_A_REASON, r->reason);
    if (r->status == AUTH_STATUS_OK)
        attr_add(out, AUTH_A_USER, r->user);
    if (r->server_final[0] != '\0')
        attr_add(out, AUTH_A_SERVER_FINAL, r->server_final);
    if (r->token[0] != '\0')
        attr_add(out, AUTH_A_TOKEN, r->token);
    if (r->status == AUTH_STATUS_CONTINUE) {
        attr_add(out, AUTH_A_SALT, r->salt);
        attr_add_long(out, AUTH_A_ITERATIONS, r->iterations);
    }
    return 0;
}

/* auth_reply_decode - strict, as the request */
int auth_reply_decode(const attr_list_t *in, struct auth_reply *r,
                      const char **error_r)
{
    static const char *const names[] = {
        AUTH_A_VERSION, AUTH_A_STATUS, AUTH_A_REASON, AUTH_A_USER,
        AUTH_A_SERVER_FINAL, AUTH_A_SALT, AUTH_A_ITERATIONS, AUTH_A_TOKEN,
        NULL
    };
    const char *st, *user, *reason, *sfinal, *salt, *token;
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
    user = auth_opt(in, AUTH_A_USER);
    reason = attr_get(in, AUTH_A_REASON);
    sfinal = auth_opt(in, AUTH_A_SERVER_FINAL);
    salt = auth_opt(in, AUTH_A_SALT);
    token = auth_opt(in, AUTH_A_TOKEN);
    if (attr_get(in, AUTH_A_TOKEN) != NULL && *token == '\0') {
        *error_r = "bad token";
        return -1;
    }
    if (strlen(user) >= sizeof(r->user) || strlen(reason) >= sizeof(r->reason)
        || strlen(token) >= sizeof(r->token)
        || strlen(sfinal) >= sizeof(r->server_final)
        || strlen(salt) >= sizeof(r->salt)) {
        *error_r = "reply field too long";
        return -1;
    }
    if (attr_get(in, AUTH_A_ITERATIONS) != NULL
        && attr_get_long(in, AUTH_A_ITERATIONS, 1, SCRAM_ITER_MAX,
                         &r->iterations) < 0) {
        *error_r = "bad iterations";
        return -1;
    }
    r->status = (enum auth_status)i;
    auth_copy(r->user, sizeof(r->user), user);
    auth_copy(r->reason, sizeof(r->reason), reason);
    auth_copy(r->server_final, sizeof(r->server_final), sfinal);
    auth_copy(r->salt, sizeof(r->salt), salt);
    auth_copy(r->token, sizeof(r->token), token);
    if (auth_reply_check(r, error_r) < 0) {
        memset(r, 0, sizeof(*r));
        return -1;
    }
    return 0;
}

/* auth_request_clear - wipe the password (and the rest) */
void auth_request_clear(struct auth_request *r)
{
    explicit_bzero(r, sizeof(*r));
}

