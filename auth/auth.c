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

#include "auth.h"
#include "mail/auth_proto.h"
#include "mail/config.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"

static void auth_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    if (auth_passwd_init() < 0)
        log_fatal("cannot initialize the password backends");
}

static void auth_post_init(ev_loop_t *loop)
{
    (void)loop;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        log_fatal("prctl PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
}

/* auth_handle - one decoded request: check and log */
static void auth_handle(const struct auth_request *rq, struct auth_reply *rp)
{
    const char *reason = AUTH_REASON_FAILURE;

    rp->status = auth_passwd_check(rq->user, rq->password, rp->user,
                                   sizeof(rp->user), &reason);
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
                    rq->mechanism, reason, rq->user);
        break;
    case AUTH_STATUS_TEMPFAIL:
        rp->user[0] = '\0';
        log_warning("%s[%s]: SASL %s authentication failed: temporary "
                    "failure: %s, sasl_username=%s", rq->client_name,
                    rq->client_address, rq->mechanism, reason, rq->user);
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

/* auth_serve - requests from one client until it closes or misbehaves */
static void auth_serve(int fd)
{
    buf_t in;
    attr_list_t req, reply;

    buf_init(&in, ATTR_MAX_MSG * 2);
    attr_list_init(&req);
    attr_list_init(&reply);
    for (;;) {
        struct auth_request rq;
        struct auth_reply rp;
        const char *err = NULL;
        int r = attr_read_fd(fd, &in, &req, (int)var_ipc_timeout, &err);

        if (r == 0)
            break;
        if (r < 0) {
            log_warning("auth client: %s: dropping the connection",
                        err ? err : "read error");
            break;
        }
        r = auth_request_decode(&req, &rq, &err);
        auth_proto_wipe(&req);
        if (r < 0) {
            log_warning("auth client: malformed request: %s: dropping the "
                        "connection", err);
            break;
        }
        memset(&rp, 0, sizeof(rp));
        auth_handle(&rq, &rp);
        auth_request_clear(&rq);
        attr_list_reset(&reply);
        if (auth_reply_encode(&rp, &reply, &err) < 0)
            log_panic("auth reply: %s", err);
        if (attr_write_fd(fd, &reply, (int)var_ipc_timeout) < 0) {
            log_warning("auth client: write failed: %s", strerror(errno));
            break;
        }
    }
    auth_proto_wipe(&req);
    if (in.data)
        explicit_bzero(in.data, in.cap);
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&in);
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
