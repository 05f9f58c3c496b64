/*
 * sasl_server - the server side of a SASL exchange (PLAIN, RFC 4616;
 * LOGIN; SCRAM-SHA-256, RFC 7677), checked by the auth service
 * (auth_proto.h) over an attr_client connection, for any protocol that
 * frames SASL as "challenge line / response line": SMTP AUTH (RFC 4954,
 * challenges "334 ..."), POP3 AUTH (RFC 5034, "+ ...") and IMAP
 * AUTHENTICATE later. The framing stays in the daemon: this module hands
 * it base64 challenges and takes base64 response lines.
 *
 * Use: sasl_server_new once per session; for each AUTH command
 * sasl_server_start(mech, initial response or NULL); while
 * sasl_server_in_exchange() every client line goes to sasl_server_input;
 * while sasl_server_waiting() the auth service has been asked and the
 * daemon must read nothing. The module calls back:
 *   challenge(ctx, b64)   send one challenge ("" for an empty one)
 *   done(ctx, result)     the exchange is over (see the statuses)
 * Callbacks that follow the auth service's answer come between
 * ops->reply_begin and ops->reply_end (the daemon guards its session
 * there, and resumes reading at the end); after done() the module does
 * not touch the exchange any more, so the daemon may free it from
 * reply_end on.
 *
 * SCRAM-SHA-256: the module runs the exchange (util/scram.h) and makes
 * the server nonce; auth is asked twice, each time on a fresh connection
 * (scram-start: salt and iterations; scram-finish: the three messages,
 * checked), so auth is never held while a remote client thinks. A
 * malformed SCRAM message, a tampered nonce and a wrong proof are all a
 * plain failure, like a wrong password.
 *
 * Logging (Postfix's words, so fail2ban's filters read them; log_name
 * is the daemon's "NAME[ADDR]"): "warning: NAME[ADDR]: SASL PLAIN
 * authentication failed: authentication failure"; an unreachable auth
 * service "... Connection lost to authentication server (why)".
 *
 * Security: decoded passwords live on the stack or in the attribute list
 * only until the request is encoded, and are wiped there; the LOGIN user
 * name and the SCRAM state are wiped when the exchange ends. The token
 * of an ok result (auth's login token, pop3/imap) is wiped after done().
 */
#ifndef TERN_SASL_SERVER_H
#define TERN_SASL_SERVER_H

#include <stdbool.h>
#include <stddef.h>

#include "util/events.h"

enum sasl_server_status {
    SASL_SERVER_OK,             /* authenticated: user (and token) */
    SASL_SERVER_FAIL,           /* credentials refused (logged) */
    SASL_SERVER_TEMPFAIL,       /* auth service unreachable or temporary
                                   failure (logged) */
    SASL_SERVER_MALFORMED,      /* a response that is not base64 */
    SASL_SERVER_CANCELLED,      /* the client sent "*" */
    SASL_SERVER_TOO_LONG,       /* a response line over the limit */
};

struct sasl_server_result {
    enum sasl_server_status status;
    const char *mech;           /* "PLAIN", "LOGIN", "SCRAM-SHA-256" */
    const char *user;           /* OK: auth's canonical name; else "" */
    const char *token;          /* OK: auth's login token ("" for smtp) */
    const char *tried;          /* the name the client gave (PLAIN's
                                   authcid, LOGIN's user, SCRAM's n=),
                                   for logs; "" when it gave none */
};

struct sasl_server_ops {
    void (*challenge)(void *ctx, const char *b64);
    void (*done)(void *ctx, const struct sasl_server_result *r);
    /* around callbacks that follow the auth service's answer; may be
       NULL */
    void (*reply_begin)(void *ctx);
    void (*reply_end)(void *ctx);
};

typedef struct sasl_server sasl_server_t;

/* auth_path: the auth service socket ("private/auth", "auth" in the
   login chroot); service: auth_proto's service (smtp, pop3, imap);
   timeout_ms bounds every request to auth */
sasl_server_t *sasl_server_new(ev_loop_t *loop, const char *auth_path,
                               const char *service, unsigned timeout_ms,
                               const struct sasl_server_ops *ops, void *ctx);
/* cancels an exchange in flight (no callback runs) */
void sasl_server_free(sasl_server_t *sv);

/* is mech one we serve (uppercase, as on the wire)? */
bool sasl_server_mech_known(const char *mech);
/* the longest response line sasl_server_input accepts for mech */
size_t sasl_server_response_max(const char *mech);

/* one AUTH command: mech (known), the initial response (base64, "=" for
   empty) or NULL; client_address for auth (auth_proto's rules; "unknown"
   when empty); log_name "NAME[ADDR]" for the log lines. Calls back
   (challenge, or done) before it returns, or asks auth (waiting).
   -1 (nothing called) for an unknown mechanism or an exchange already
   running. */
int sasl_server_start(sasl_server_t *sv, const char *mech,
                      const char *initial, const char *client_address,
                      const char *log_name);
/* one response line, without the line end; NULL: the line was too long
   (the exchange ends with SASL_SERVER_TOO_LONG) */
void sasl_server_input(sasl_server_t *sv, const char *line, size_t len);
/* abandon the exchange silently (the session ends) */
void sasl_server_abort(sasl_server_t *sv);

bool sasl_server_in_exchange(const sasl_server_t *sv);
bool sasl_server_waiting(const sasl_server_t *sv);

#endif
