/*
 * auth_proto - the request/reply contract of the auth service
 * (private/auth), shared by auth(8) and its clients (smtpd, the login
 * processes). Attribute lists (util/attr.h); one request, one reply, as
 * many times as the client likes on one connection.
 *
 * Request (client -> auth), every attribute required, no others:
 *   request=auth  version=1  mechanism=PLAIN|LOGIN  service=smtp|pop3|imap
 *   user=NAME  password=SECRET  client_address=ADDR  client_name=NAME
 * Reply (auth -> client):
 *   version=1  status=ok|fail|tempfail  reason=TEXT  [user=CANONICAL]
 * user is present only with status=ok: the name the user is known by
 * from now on (what was looked up, lowercased), for logs and mailbox
 * access. reason is for logs only, never shown to the remote client;
 * a wrong password and an unknown user get the same reply, byte for
 * byte. tempfail: a table or system error, try again later.
 *
 * Field rules (decoding enforces them, both ways): user 1..255 bytes
 * without control characters; password 1..255 bytes; client_address
 * 1..63 bytes of [0-9A-Za-z.:_%-] ("unknown" when there is none);
 * client_name 1..255 bytes of [0-9A-Za-z.-_] ("unknown"). A request that
 * breaks a rule, a duplicate or unknown attribute, or another version is
 * a protocol error: auth logs it and drops the connection.
 *
 * Security: the password travels in the request; attr_list_wipe()
 * clears an attribute list's values before it is reset or freed.
 */
#ifndef TERN_AUTH_PROTO_H
#define TERN_AUTH_PROTO_H

#include "util/attr.h"

#define AUTH_PROTO_VERSION 1
#define AUTH_FIELD_MAX 255
#define AUTH_ADDR_MAX 63

/* attribute names */
#define AUTH_A_REQUEST        "request"
#define AUTH_A_VERSION        "version"
#define AUTH_A_MECHANISM      "mechanism"
#define AUTH_A_SERVICE        "service"
#define AUTH_A_USER           "user"
#define AUTH_A_PASSWORD       "password"
#define AUTH_A_CLIENT_ADDRESS "client_address"
#define AUTH_A_CLIENT_NAME    "client_name"
#define AUTH_A_STATUS         "status"
#define AUTH_A_REASON         "reason"

#define AUTH_REQUEST_AUTH     "auth"

enum auth_status { AUTH_STATUS_OK, AUTH_STATUS_FAIL, AUTH_STATUS_TEMPFAIL };

struct auth_request {
    char mechanism[16];
    char service[16];
    char user[AUTH_FIELD_MAX + 1];
    char password[AUTH_FIELD_MAX + 1];
    char client_address[AUTH_ADDR_MAX + 1];
    char client_name[AUTH_FIELD_MAX + 1];
};

struct auth_reply {
    enum auth_status status;
    char user[AUTH_FIELD_MAX + 1];      /* empty unless AUTH_STATUS_OK */
    char reason[AUTH_FIELD_MAX + 1];
};

/* append the request's attributes to out; 0 ok, -1 a field breaks the
   rules (*error_r) */
int auth_request_encode(const struct auth_request *r, attr_list_t *out,
                        const char **error_r);
/* fill r from a received list; 0 ok, -1 protocol error (*error_r, never
   containing the password) */
int auth_request_decode(const attr_list_t *in, struct auth_request *r,
                        const char **error_r);
int auth_reply_encode(const struct auth_reply *r, attr_list_t *out,
                      const char **error_r);
int auth_reply_decode(const attr_list_t *in, struct auth_reply *r,
                      const char **error_r);

const char *auth_status_name(enum auth_status s);
/* wipe a decoded request (the password) */
void auth_request_clear(struct auth_request *r);

#endif
