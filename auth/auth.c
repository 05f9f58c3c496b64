/*
 * auth - the authentication service: the only Tern process that reads
 * password data. A request server on private/auth; clients (smtpd, the
 * POP3/IMAP login processes) send auth_proto.h requests on a connection
 * they may keep open, one reply per request.
 *
 * Logging: a failure is logged in the form fail2ban's postfix filter
 * reads, e.g.
 *   warning: unknown[192.0.2.1]: SASL PLAIN authentication failed:
 *   authentication failure, sasl_username=demo
 * (one line); a success as "NAME[ADDR]: sasl_method=PLAIN,
 * sasl_username=demo, service=smtp". A malformed request is logged and
 * the connection dropped.
 *
 * Login token: an ok reply for service pop3 or imap carries token=, made
 * with login_token_make (the key, $data_directory/login_token.key, is
 * loaded in pre_init); the login process hands it to the mail side,
 * which believes the user name only with it. The same daemon serves
 * login/auth (the login processes' socket) and private/auth.
 *
 * SCRAM-SHA-256 (auth_proto.h): scram-start answers with the user's salt
 * and iterations (fake ones for a user without secrets, see
 * auth_passwd.c); scram-finish re-reads the secrets, accepts the
 * server-first only if it carries them, and checks the proof in
 * constant time (util/scram.c). Nothing is kept between the two, so a
 * remote client that stalls mid-exchange never holds this process.
 *
 * Privileges (master.conf: unpriv=n, chroot=n): run as root, auth stays
 * root. It must read the shadow file for every system-user check
 * (getspnam), and reopen $virtual_password_maps whenever ternuser
 * replaces it (the table is root-only, mode 0600); no other Tern
 * account may read either, and giving one of them that access would
 * hand the hashes to smtpd's user. So there is no uid to drop to that
 * would not be "root by another name"; instead auth sets
 * PR_SET_NO_NEW_PRIVS, serves one client at a time, decodes every
 * request strictly and never runs anything. Without root (developer
 * instance) it runs as the invoking user and only the virtual table is
 * consulted.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "auth.h"
#include "mail/auth_proto.h"
#include "mail/config.h"
#include "mail/login_token.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sasl.h"
#include "util/scram.h"

static void auth_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    if (auth_passwd_init() < 0)
        log_fatal("cannot initialize the password backends");
    /* the login token key (mail/login_token.h), as root before anything
       else; without it pop3/imap logins get tempfail, smtp is unaffected */
    if (login_token_key_load(var_data_directory) < 0)
        log_warning("no login token key: POP3/IMAP logins fail "
                    "temporarily");
}

/* auth_login_service - does a login for service get a login token? */
static bool auth_login_service(const char *service)
{
    return strcmp(service, "pop3") == 0 || strcmp(service, "imap") == 0;
}

static void auth_post_init(ev_loop_t *loop)
{
    (void)loop;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        log_fatal("prctl PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
}

/* auth_scram_start - the salt and iterations of rq->user */
static void auth_scram_start(const struct auth_request *rq,
                             struct auth_reply *rp, const char **reason_r)
{
    struct scram_secrets sec;
    char canon[AUTH_FIELD_MAX + 1];
    buf_t salt;

    rp->status = auth_passwd_scram(rq->user, &sec, canon, sizeof(canon),
                                   reason_r);
    if (rp->status != AUTH_STATUS_TEMPFAIL) {
        buf_init(&salt, sizeof(rp->salt) - 1);
        if (sasl_base64_encode(sec.salt, sec.salt_len, &salt) < 0)
            log_panic("SCRAM salt does not fit");
        memcpy(rp->salt, salt.data, salt.len);
        rp->salt[salt.len] = '\0';
        buf_free(&salt);
        rp->iterations = (long)sec.iter;
        rp->status = AUTH_STATUS_CONTINUE;
    }
    scram_secrets_clear(&sec);
}

/* auth_scram_finish - check the exchange; *user_r is the name to log */
static enum auth_status auth_scram_finish(const struct auth_request *rq,
                                          struct auth_reply *rp,
                                          const char **user_r,
                                          const char **reason_r)
{
    static struct scram_server st;
    static char user[SASL_FIELD_MAX + 1];
    struct scram_secrets sec;
    enum auth_status found;
    buf_t out;
    const char *err = NULL;
    int r;

    *user_r = "unknown";
    *reason_r = AUTH_REASON_FAILURE;
    if (scram_client_first(&st, rq->client_first, strlen(rq->client_first),
                           &err) < 0) {
        scram_server_clear(&st);
        *reason_r = err;
        return AUTH_STATUS_FAIL;
    }
    memcpy(user, st.user, sizeof(user));
    *user_r = user;
    found = auth_passwd_scram(st.user, &sec, rp->user, sizeof(rp->user),
                              reason_r);
    if (found == AUTH_STATUS_TEMPFAIL) {
        scram_secrets_clear(&sec);
        scram_server_clear(&st);
        rp->user[0] = '\0';
        return AUTH_STATUS_TEMPFAIL;
    }
    *reason_r = AUTH_REASON_FAILURE;
    buf_init(&out, sizeof(rp->server_final) - 1);
    if (scram_server_first_check(&st, &sec, rq->server_first,
                                 strlen(rq->server_first), &err) < 0)
        r = -1;
    else
        r = scram_client_final(&st, rq->client_final,
                               strlen(rq->client_final), &out, &err);
    scram_secrets_clear(&sec);
    if (r == 1 && found == AUTH_STATUS_OK) {
        memcpy(rp->server_final, out.data, out.len);
        rp->server_final[out.len] = '\0';
        *reason_r = "authenticated";
    } else {
        if (r < 0)
            *reason_r = err;
        rp->user[0] = '\0';
        found = AUTH_STATUS_FAIL;
    }
    if (out.data != NULL)
        explicit_bzero(out.data, out.cap);
    buf_free(&out);
    /* the exchange's copy of the keys goes now; the name stays for the
       log line */
    scram_server_clear(&st);
    return found;
}

/* auth_handle - one decoded request: check and log */
static void auth_handle(const struct auth_request *rq, struct auth_reply *rp)
{
    const char *reason = AUTH_REASON_FAILURE, *user = rq->user;

    if (rq->kind == AUTH_REQ_SCRAM_START) {
        auth_scram_start(rq, rp, &reason);
        if (rp->status == AUTH_STATUS_TEMPFAIL)
            log_warning("%s[%s]: SASL %s authentication failed: temporary "
                        "failure: %s, sasl_username=%s", rq->client_name,
                        rq->client_address, rq->mechanism, reason, user);
        snprintf(rp->reason, sizeof(rp->reason), "%s",
                 rp->status == AUTH_STATUS_CONTINUE ? "continue"
                 : "temporary failure");
        return;
    }
    if (rq->kind == AUTH_REQ_SCRAM_FINISH)
        rp->status = auth_scram_finish(rq, rp, &user, &reason);
    else
        rp->status = auth_passwd_check(rq->user, rq->password, rp->user,
                                       sizeof(rp->user), &reason);
    if (rp->status == AUTH_STATUS_OK && auth_login_service(rq->service)
        && login_token_make(rq->service, rp->user, time(NULL), rp->token,
                            sizeof(rp->token)) < 0) {
        rp->status = AUTH_STATUS_TEMPFAIL;
        rp->server_final[0] = '\0';
        reason = "cannot make a login token";
    }
    switch (rp->status) {
    case AUTH_STATUS_OK:
        log_info("%s[%s]: sasl_method=%s, sasl_username=%s, service=%s",
                 rq->client_name, rq->client_address, rq->mechanism,
                 rp->user, rq->service);
        break;
    case AUTH_STATUS_FAIL:
        rp->user[0] = '\0';
        log_warning("%s[%s]: SASL %s authentication failed: %s, "
                    "sasl_username=%s", rq->client_name, rq->client_address,
                    rq->mechanism, reason, user);
        break;
    case AUTH_STATUS_TEMPFAIL:
    case AUTH_STATUS_CONTINUE:
        rp->status = AUTH_STATUS_TEMPFAIL;
        rp->user[0] = '\0';
        rp->token[0] = '\0';
        log_warning("%s[%s]: SASL %s authentication failed: temporary "
                    "failure: %s, sasl_username=%s", rq->client_name,
                    rq->client_address, rq->mechanism, reason, user);
        reason = "temporary failure";
        break;
    }
    /* the client learns only ok / fail / tempfail, never which backend
       or why a failure failed */
    snprintf(rp->reason, sizeof(rp->reason), "%s",
             rp->status == AUTH_STATUS_OK ? "authenticated"
             : rp->status == AUTH_STATUS_FAIL ? AUTH_REASON_FAILURE
             : "temporary failure");
}

/* auth_request_handle - one request: decode, check, answer; -1 drops a
   client that broke the protocol (server_attr_serve wipes the request) */
static int auth_request_handle(attr_list_t *req, attr_list_t *reply,
                               void *ctx)
{
    struct auth_request rq;
    struct auth_reply rp;
    const char *err = NULL;

    (void)ctx;
    if (auth_request_decode(req, &rq, &err) < 0) {
        log_warning("auth client: malformed request: %s: dropping the "
                    "connection", err);
        return -1;
    }
    memset(&rp, 0, sizeof(rp));
    auth_handle(&rq, &rp);
    auth_request_clear(&rq);
    int r = auth_reply_encode(&rp, reply, &err);
    explicit_bzero(rp.token, sizeof(rp.token));
    if (r < 0)
        log_panic("auth reply: %s", err);
    return 0;
}

/* auth_serve - requests from one client until it closes or misbehaves */
static void auth_serve(int fd)
{
    server_attr_serve(fd, "auth", (int)var_ipc_timeout, true,
                      auth_request_handle, NULL);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = auth_pre_init,
        .post_init = auth_post_init,
        .on_request_conn = auth_serve,
    };
    return request_server_main(argc, argv, &ops);
}
