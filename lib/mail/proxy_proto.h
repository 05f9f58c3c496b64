/*
 * proxy_proto - the request/reply contract of the proxymap service
 * (private/proxymap), shared by proxymap(8) and its clients: the proxy:
 * table type (dict_proxy.c) and mailuser's system-user check in chrooted
 * daemons. Attribute lists (util/attr.h); one request, one reply, as
 * many times as the client likes on one connection.
 *
 * Requests (client -> proxymap), every attribute required, no others:
 *   request=lookup      version=1  table=TYPE:NAME  key=KEY
 *   request=local_user  version=1  key=NAME
 *   request=local_login version=1  key=UID   (decimal)
 * Replies (proxymap -> client):
 *   version=1  status=found|notfound|tempfail|denied  [value=VALUE]
 * value comes with status=found, and only then. For local_user it is
 * "uid:gid:home" (the system password database, getpwnam, read outside
 * the chroot); for local_login the login name of the uid (getpwuid:
 * pickup's $local_login_sender_maps key). denied: the table is not in $proxy_read_maps (proxymap
 * logs it); clients treat it as a temporary failure, so mail waits while
 * the admin fixes the configuration.
 *
 * Field rules (decoding enforces them, both ways): table 1..1023 bytes
 * without control characters or blanks, of the form TYPE:NAME; key
 * 1..PROXY_KEY_MAX bytes without control characters; value at most
 * PROXY_VALUE_MAX bytes, no NUL (the codec's rule). A request that breaks
 * a rule, a duplicate or unknown attribute, or another version is a
 * protocol error: proxymap logs it and drops the connection.
 */
#ifndef TERN_PROXY_PROTO_H
#define TERN_PROXY_PROTO_H

#include <stddef.h>
#include "util/attr.h"

#define PROXY_PROTO_VERSION 1
#define PROXY_TABLE_MAX 1023
#define PROXY_KEY_MAX 511           /* DICT_KEY_MAX */
#define PROXY_VALUE_MAX 8192

#define PROXY_A_REQUEST "request"
#define PROXY_A_VERSION "version"
#define PROXY_A_TABLE   "table"
#define PROXY_A_KEY     "key"
#define PROXY_A_STATUS  "status"
#define PROXY_A_VALUE   "value"

#define PROXY_REQUEST_LOOKUP     "lookup"
#define PROXY_REQUEST_LOCAL_USER "local_user"
#define PROXY_REQUEST_LOCAL_LOGIN "local_login"

enum proxy_request_type { PROXY_REQ_LOOKUP, PROXY_REQ_LOCAL_USER,
                          PROXY_REQ_LOCAL_LOGIN };

enum proxy_status {
    PROXY_STATUS_FOUND, PROXY_STATUS_NOTFOUND, PROXY_STATUS_TEMPFAIL,
    PROXY_STATUS_DENIED
};

struct proxy_request {
    enum proxy_request_type type;
    char table[PROXY_TABLE_MAX + 1];    /* empty but for lookup */
    char key[PROXY_KEY_MAX + 1];
};

struct proxy_reply {
    enum proxy_status status;
    char value[PROXY_VALUE_MAX + 1];    /* empty unless FOUND */
};

/* append the request's attributes to out; 0 ok, -1 a field breaks the
   rules (*error_r) */
int proxy_request_encode(const struct proxy_request *r, attr_list_t *out,
                         const char **error_r);
/* fill r from a received list; 0 ok, -1 protocol error (*error_r) */
int proxy_request_decode(const attr_list_t *in, struct proxy_request *r,
                         const char **error_r);
int proxy_reply_encode(const struct proxy_reply *r, attr_list_t *out,
                       const char **error_r);
int proxy_reply_decode(const attr_list_t *in, struct proxy_reply *r,
                       const char **error_r);

const char *proxy_status_name(enum proxy_status s);

#endif
