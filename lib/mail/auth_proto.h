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
 *   [token=LOGIN_TOKEN]
 * token (mail/login_token.h) comes with status=ok, and only then, for
 * service=pop3 and imap (of an auth or scram-finish request): what the
 * login process passes to the mail side as auth's proof of the login.
 * 1..LOGIN_TOKEN_MAX bytes of [0-9a-f.]; never for smtp.
 *
 * SCRAM-SHA-256 (util/scram.h) is two requests, each answered on its
 * own and each free to use its own connection: auth keeps no state
 * between them (it serves one client at a time, and must not be held
 * while a remote SMTP client thinks). The client runs the exchange and
 * makes the server nonce; auth supplies the salt and checks the proof.
 *   request=scram-start  version=1  mechanism=SCRAM-SHA-256  service=...
 *     user=NAME  client_address=ADDR  client_name=NAME
 *   reply: version=1  status=continue|tempfail  reason=TEXT
 *     [salt=BASE64  iterations=N]           (with continue only)
 * An unknown user, one without SCRAM secrets and a system user get
 * continue with a salt and iteration count derived from the name and a
 * per-process key: the same for repeated probes, never "no such user".
 *   request=scram-finish  version=1  mechanism=SCRAM-SHA-256  service=...
 *     client_first=MSG  server_first=MSG  client_final=MSG
 *     client_address=ADDR  client_name=NAME
 *   reply: version=1  status=ok|fail|tempfail  reason=TEXT
 *     [user=CANONICAL  server_final=MSG]     (with ok only)
 * The three messages are the raw SCRAM messages (not base64), 1..
 * SCRAM_MSG_MAX bytes without control characters; the user is the n= of
 * client_first. auth accepts server_first only when it is what auth
 * would have made for that user (its salt and iterations), then checks
 * client_final's proof; a malformed message is a plain fail, like a
 * wrong password (it came from the remote client, not from a broken
 * peer). server_final ("v=...") goes to the remote client.
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

#include "mail/login_token.h"
#include "util/attr.h"
#include "util/scram.h"

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
#define AUTH_A_CLIENT_FIRST   "client_first"
#define AUTH_A_SERVER_FIRST   "server_first"
#define AUTH_A_CLIENT_FINAL   "client_final"
#define AUTH_A_SERVER_FINAL   "server_final"
#define AUTH_A_SALT           "salt"
#define AUTH_A_ITERATIONS     "iterations"
#define AUTH_A_TOKEN          "token"

#define AUTH_REQUEST_AUTH         "auth"
#define AUTH_REQUEST_SCRAM_START  "scram-start"
#define AUTH_REQUEST_SCRAM_FINISH "scram-finish"

enum auth_status { AUTH_STATUS_OK, AUTH_STATUS_FAIL, AUTH_STATUS_TEMPFAIL,
                   AUTH_STATUS_CONTINUE };
enum auth_request_kind { AUTH_REQ_AUTH, AUTH_REQ_SCRAM_START,
                         AUTH_REQ_SCRAM_FINISH };

/* base64 of the longest salt */
#define AUTH_SALT_B64_MAX (((SCRAM_SALT_MAX + 2) / 3) * 4)

struct auth_request {
    enum auth_request_kind kind;
    char mechanism[16];
    char service[16];
    char user[AUTH_FIELD_MAX + 1];
    char password[AUTH_FIELD_MAX + 1];
    char client_address[AUTH_ADDR_MAX + 1];
    char client_name[AUTH_FIELD_MAX + 1];
    /* AUTH_REQ_SCRAM_FINISH only (password and user are unused there;
       SCRAM_START has a user and no password) */
    char client_first[SCRAM_MSG_MAX + 1];
    char server_first[SCRAM_MSG_MAX + 1];
    char client_final[SCRAM_MSG_MAX + 1];
};

struct auth_reply {
    enum auth_status status;
    char user[AUTH_FIELD_MAX + 1];      /* empty unless AUTH_STATUS_OK */
    char reason[AUTH_FIELD_MAX + 1];
    /* AUTH_STATUS_CONTINUE only */
    char salt[AUTH_SALT_B64_MAX + 1];
    long iterations;
    /* with AUTH_STATUS_OK of a scram-finish; "" otherwise */
    char server_final[AUTH_FIELD_MAX + 1];
    /* with AUTH_STATUS_OK for service pop3/imap; "" otherwise */
    char token[LOGIN_TOKEN_MAX + 1];
};

/* append the request's attributes (of r->kind) to out; 0 ok, -1 a field breaks the
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
