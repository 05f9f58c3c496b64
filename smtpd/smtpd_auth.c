/*
 * smtpd_auth - SMTP AUTH (RFC 4954) with SCRAM-SHA-256 (RFC 7677),
 * PLAIN (RFC 4616) and LOGIN, checked by the auth service (private/auth,
 * mail/auth_proto.h), and the submission policy smtpd_sasl_auth_required.
 *
 * SCRAM-SHA-256: smtpd runs the exchange (util/scram.h) and makes the
 * server nonce; auth is asked twice, each time on a fresh connection
 * (scram-start: the salt and iterations; scram-finish: the three
 * messages, checked). The client's client-first (initial response or
 * after "334 "), "334 base64(server-first)", the client-final, then
 * "334 base64(server-final)" and, after the client's empty response,
 * 235. A malformed SCRAM message (channel binding "p=" included), a
 * tampered nonce and a wrong proof are all 535 like a wrong password.
 *
 * The exchange: "AUTH mech [initial-response]"; without an initial
 * response the server asks with "334 challenge" and every following
 * line is a base64 response (smtpd.c routes those lines here while
 * s->auth_exchange is set), "*" cancels. Once the credentials are
 * complete they go to private/auth on a fresh attr_client connection
 * (auth serves one client at a time, so it is not held for the
 * session); while the reply is awaited s->auth_waiting stops smtpd.c
 * from reading anything, like a TLS handshake does.
 *
 * Logging is Postfix's, so fail2ban's postfix filters read it: a
 * refused login is "warning: NAME[ADDR]: SASL PLAIN authentication
 * failed: authentication failure"; an unreachable auth service says
 * "Connection lost to authentication server", which those filters
 * deliberately ignore. Success shows on the queue-ID line (smtpd_data.c).
 *
 * Brute force: a 535 is an smtpd error (smtpd_soft_error_limit /
 * smtpd_error_sleep_time / smtpd_hard_error_limit apply), and after
 * smtpd_sasl_failure_limit failed AUTH commands the session ends with
 * 421 4.7.0; across connections smtpd_client_auth_rate_limit counts
 * AUTH commands per client in anvil (smtpd_anvil.c, a blocking local
 * round trip like the connection limits).
 *
 * Security: decoded passwords live on the stack or in the attribute
 * list only until the request is encoded, and are wiped there; the
 * LOGIN user name is wiped when the exchange ends. A wrong password
 * and an unknown user get the same reply (auth(8) makes them cost the
 * same). Client data in logs is limited to the validated user name.
 */
#include "smtpd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/auth_proto.h"
#include "mail/config.h"
#include "util/attr.h"
#include "util/attr_client.h"
#include "util/log.h"
#include "util/sasl.h"
#include "util/scram.h"
#include "util/util.h"

#include <openssl/rand.h>

#define SMTPD_AUTH_PATH "private/auth"
/* longest base64 response: a PLAIN message of three full fields
   (3 * SASL_FIELD_MAX + 2 bytes) */
#define SMTPD_AUTH_RESPONSE_MAX (((3 * SASL_FIELD_MAX + 2 + 2) / 3) * 4)
/* longest base64 SCRAM message */
#define SMTPD_SCRAM_RESPONSE_MAX (((SCRAM_MSG_MAX + 2) / 3) * 4)

enum auth_step {
    AUTH_STEP_NONE,
    AUTH_STEP_PLAIN,            /* 334 sent, waiting for the PLAIN message */
    AUTH_STEP_LOGIN_USER,       /* "Username:" asked */
    AUTH_STEP_LOGIN_PASS,       /* "Password:" asked */
    AUTH_STEP_SCRAM_FIRST,      /* waiting for client-first */
    AUTH_STEP_SCRAM_START,      /* scram-start asked */
    AUTH_STEP_SCRAM_FINAL,      /* server-first sent */
    AUTH_STEP_SCRAM_FINISH,     /* scram-finish asked */
    AUTH_STEP_SCRAM_DONE,       /* server-final sent, waiting for "" */
};

/* one SCRAM exchange: the messages auth checks at the end */
struct smtpd_scram {
    struct scram_server st;
    char client_first[SCRAM_MSG_MAX + 1];
    char server_first[SCRAM_MSG_MAX + 1];
};

struct smtpd_auth {
    attr_client_t *client;      /* the request in flight, or NULL */
    enum auth_step step;
    char mech[16];              /* "PLAIN" | "LOGIN" | "SCRAM-SHA-256" */
    char user[SASL_FIELD_MAX + 1];  /* LOGIN: the name, until the password;
                                       SCRAM: the canonical name, until
                                       the client's last response */
    struct smtpd_scram *scram;  /* during a SCRAM exchange */
    long failures;              /* failed AUTH commands in this session */
};

void smtpd_auth_init(void)
{
    if (var_smtpd_sasl_auth_required && !var_smtpd_sasl_auth_enable)
        log_warning("smtpd_sasl_auth_required = yes without "
                    "smtpd_sasl_auth_enable = yes: no client can send mail");
}

/* auth_tls_ok - smtpd_tls_auth_only is satisfied */
static bool auth_tls_ok(const struct smtpd_session *s)
{
    return !var_smtpd_tls_auth_only
           || (s->stream != NULL && stream_tls_active(s->stream));
}

bool smtpd_auth_offer(const struct smtpd_session *s)
{
    return var_smtpd_sasl_auth_enable && auth_tls_ok(s)
           && s->sasl_username[0] == '\0';
}

bool smtpd_auth_refuse(struct smtpd_session *s)
{
    if (!var_smtpd_sasl_auth_required || s->sasl_username[0] != '\0')
        return false;
    smtpd_reply(s, "530 5.7.0 Authentication required");
    return true;
}

/* auth_end - the exchange is over, whatever its outcome */
static void auth_end(struct smtpd_session *s)
{
    struct smtpd_auth *a = s->auth;

    s->auth_exchange = false;
    if (a != NULL) {
        a->step = AUTH_STEP_NONE;
        explicit_bzero(a->user, sizeof(a->user));
        if (a->scram != NULL) {
            explicit_bzero(a->scram, sizeof(*a->scram));
            free(a->scram);
            a->scram = NULL;
        }
    }
}

void smtpd_auth_reset(struct smtpd_session *s)
{
    auth_end(s);
    s->sasl_username[0] = '\0';
    s->sasl_method[0] = '\0';
}

void smtpd_auth_free(struct smtpd_session *s)
{
    if (s->auth == NULL)
        return;
    auth_end(s);
    attr_client_free(s->auth->client);  /* no callback runs */
    free(s->auth);
    s->auth = NULL;
    s->auth_waiting = false;
}

/* auth_failed - the credentials were refused: Postfix's log line, 535,
   and the per-session limit */
static void auth_failed(struct smtpd_session *s, const char *mech)
{
    struct smtpd_auth *a = s->auth;

    auth_end(s);
    log_warning("%s: SASL %s authentication failed: authentication failure",
                s->namaddr, mech);
    a->failures++;
    smtpd_reply(s, "535 5.7.8 Error: authentication failed: "
                   "authentication failure");
    if (!s->closing && var_smtpd_sasl_failure_limit > 0
        && a->failures >= var_smtpd_sasl_failure_limit) {
        log_info("too many failed authentications after AUTH from %s",
                 s->namaddr);
        s->closing = true;          /* no "too many errors" on top */
        smtpd_reply(s, "421 4.7.0 %s Error: too many failed authentications",
                    var_myhostname);
        smtpd_close(s);
    }
}

/* auth_unavailable - the auth service could not answer */
static void auth_unavailable(struct smtpd_session *s, const char *mech,
                             const char *why)
{
    auth_end(s);
    log_warning("%s: SASL %s authentication failed: Connection lost to "
                "authentication server (%s)", s->namaddr, mech, why);
    smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
}

/* auth_success - the client is authenticated as user */
static void auth_success(struct smtpd_session *s, const char *user,
                         const char *mech)
{
    (void)snprintf(s->sasl_username, sizeof(s->sasl_username), "%s", user);
    (void)snprintf(s->sasl_method, sizeof(s->sasl_method), "%s", mech);
    auth_end(s);
    s->cmd_ok[SMTP_AUTH]++;
    smtpd_reply(s, "235 2.7.0 Authentication successful");
}

/* auth_scram_challenge - "334 base64(msg)"; false when it cannot be
   made */
static bool auth_scram_challenge(struct smtpd_session *s, const char *msg)
{
    buf_t b = BUF_INIT;
    bool ok = sasl_base64_encode(msg, strlen(msg), &b) == 0;

    if (ok) {
        s->auth_exchange = true;
        smtpd_reply(s, "334 %s", buf_str(&b));
    }
    buf_free(&b);
    return ok;
}

/* auth_scram_reply - auth answered a scram-start or scram-finish */
static void auth_scram_reply(struct smtpd_session *s,
                             const struct auth_reply *rp)
{
    struct smtpd_auth *a = s->auth;
    struct smtpd_scram *sc = a->scram;
    struct scram_secrets sec;
    unsigned char rnd[18];
    buf_t snonce = BUF_INIT, sfirst;
    size_t n = 0;
    const char *err = NULL;
    bool ok;

    if (rp->status == AUTH_STATUS_TEMPFAIL) {
        auth_end(s);
        log_warning("%s: SASL %s authentication: temporary failure in the "
                    "authentication service", s->namaddr, SCRAM_MECH);
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
    } else if (a->step == AUTH_STEP_SCRAM_START
               && rp->status == AUTH_STATUS_CONTINUE) {
        memset(&sec, 0, sizeof(sec));
        sec.iter = (unsigned)rp->iterations;
        buf_init(&sfirst, SCRAM_MSG_MAX);
        ok = sasl_base64_decode(rp->salt, strlen(rp->salt), &sfirst, &err) == 0
             && sfirst.len >= SCRAM_SALT_MIN && sfirst.len <= SCRAM_SALT_MAX;
        if (ok) {
            sec.salt_len = sfirst.len;
            memcpy(sec.salt, sfirst.data, sfirst.len);
        }
        buf_reset(&sfirst);
        ok = ok && RAND_bytes(rnd, sizeof(rnd)) == 1
             && sasl_base64_encode(rnd, sizeof(rnd), &snonce) == 0
             && scram_server_first(&sc->st, &sec, buf_str(&snonce), &sfirst,
                                   &err) == 0
             && (n = sfirst.len) < sizeof(sc->server_first);
        if (ok) {
            memcpy(sc->server_first, sfirst.data, n);
            sc->server_first[n] = '\0';
            a->step = AUTH_STEP_SCRAM_FINAL;
            ok = auth_scram_challenge(s, sc->server_first);
        }
        buf_free(&sfirst);
        buf_free(&snonce);
        if (!ok)
            auth_unavailable(s, SCRAM_MECH, "cannot make server-first");
    } else if (a->step == AUTH_STEP_SCRAM_FINISH
               && rp->status == AUTH_STATUS_OK && rp->server_final[0]) {
        (void)snprintf(a->user, sizeof(a->user), "%s", rp->user);
        a->step = AUTH_STEP_SCRAM_DONE;
        if (!auth_scram_challenge(s, rp->server_final))
            auth_unavailable(s, SCRAM_MECH, "cannot send server-final");
    } else if (a->step == AUTH_STEP_SCRAM_FINISH
               && rp->status == AUTH_STATUS_FAIL) {
        auth_failed(s, SCRAM_MECH);
    } else {
        auth_unavailable(s, SCRAM_MECH, "unexpected reply");
    }
}

/* auth_reply_cb - private/auth answered (or did not) */
static void auth_reply_cb(attr_client_t *c, int error, const char *reason,
                          const attr_list_t *reply, void *arg)
{
    struct smtpd_session *s = arg;
    struct smtpd_auth *a = s->auth;
    struct auth_reply rp;
    const char *err = NULL;
    char mech[sizeof(a->mech)];

    s->busy++;
    attr_client_free(c);
    a->client = NULL;
    s->auth_waiting = false;
    memcpy(mech, a->mech, sizeof(mech));
    if (error != ATTR_CLIENT_OK) {
        auth_unavailable(s, mech, reason);
    } else if (auth_reply_decode(reply, &rp, &err) < 0) {
        auth_unavailable(s, mech, err);
    } else if (a->scram != NULL) {
        auth_scram_reply(s, &rp);
    } else if (rp.status == AUTH_STATUS_OK) {
        auth_end(s);
        (void)snprintf(s->sasl_username, sizeof(s->sasl_username), "%s",
                       rp.user);
        (void)snprintf(s->sasl_method, sizeof(s->sasl_method), "%s", mech);
        s->cmd_ok[SMTP_AUTH]++;
        smtpd_reply(s, "235 2.7.0 Authentication successful");
    } else if (rp.status == AUTH_STATUS_FAIL) {
        auth_failed(s, mech);
    } else {
        auth_end(s);
        log_warning("%s: SASL %s authentication: temporary failure in the "
                    "authentication service", s->namaddr, mech);
        smtpd_reply(s, "454 4.7.0 Temporary authentication failure");
    }
    smtpd_resume(s);
}

static void auth_send(struct smtpd_session *s, struct auth_request *rq);

/* auth_request_init - the fields every request has */
static void auth_request_init(struct smtpd_session *s,
                              struct auth_request *rq,
                              enum auth_request_kind kind)
{
    memset(rq, 0, sizeof(*rq));
    rq->kind = kind;
    (void)snprintf(rq->mechanism, sizeof(rq->mechanism), "%s", s->auth->mech);
    (void)snprintf(rq->service, sizeof(rq->service), "smtp");
    (void)snprintf(rq->client_address, sizeof(rq->client_address), "%s",
                   s->addr[0] != '\0' ? s->addr : "unknown");
    (void)snprintf(rq->client_name, sizeof(rq->client_name), "unknown");
}

/* auth_submit - the credentials are complete: ask private/auth. The
   password is wiped here whatever happens. */
static void auth_submit(struct smtpd_session *s, const char *user,
                        char *password)
{
    struct auth_request rq;

    auth_request_init(s, &rq, AUTH_REQ_AUTH);
    (void)snprintf(rq.user, sizeof(rq.user), "%s", user);
    (void)snprintf(rq.password, sizeof(rq.password), "%s", password);
    explicit_bzero(password, strlen(password));
    auth_send(s, &rq);
}

/* auth_send - encode rq (and wipe it), send it on a fresh connection */
static void auth_send(struct smtpd_session *s, struct auth_request *rq)
{
    struct smtpd_auth *a = s->auth;
    attr_list_t req;
    attr_client_opts_t opts = { 0 };
    const char *err = NULL;
    int rc;

    attr_list_init(&req);
    rc = auth_request_encode(rq, &req, &err);
    auth_request_clear(rq);
    if (rc < 0) {
        /* a field auth would refuse (e.g. an empty password) */
        attr_list_wipe(&req);
        attr_list_free(&req);
        auth_failed(s, a->mech);
        return;
    }
    opts.connect_timeout_msec = (unsigned)var_ipc_timeout * 1000;
    a->client = attr_client_connect_unix(s->loop, SMTPD_AUTH_PATH, &opts);
    if (a->client == NULL) {
        err = strerror(errno);
    } else if (attr_client_request(a->client, &req,
                                   (unsigned)var_ipc_timeout * 1000,
                                   auth_reply_cb, s) < 0) {
        err = strerror(errno);
        attr_client_free(a->client);
        a->client = NULL;
    } else {
        err = NULL;
    }
    attr_list_wipe(&req);
    attr_list_free(&req);
    if (err != NULL) {
        auth_unavailable(s, a->mech, err);
        return;
    }
    s->auth_exchange = false;
    s->auth_waiting = true;
}

/* auth_scram - one SCRAM response: client-first, client-final, or the
   empty answer to server-final */
static void auth_scram(struct smtpd_session *s, const char *b64, size_t len)
{
    struct smtpd_auth *a = s->auth;
    struct smtpd_scram *sc;
    struct auth_request rq;
    buf_t raw;
    const char *err = NULL;
    char user[SASL_FIELD_MAX + 1];

    if (a->step == AUTH_STEP_SCRAM_DONE) {
        if (len != 0) {
            auth_failed(s, SCRAM_MECH);
            return;
        }
        memcpy(user, a->user, sizeof(user));
        auth_success(s, user, SCRAM_MECH);
        explicit_bzero(user, sizeof(user));
        return;
    }
    buf_init(&raw, SCRAM_MSG_MAX);
    if (len == 0 || (len == 1 && b64[0] == '=')
        || sasl_base64_decode(b64, len, &raw, &err) < 0) {
        buf_free(&raw);
        auth_end(s);
        smtpd_reply(s, "501 5.5.2 Cannot decode response");
        return;
    }
    if (a->scram == NULL)
        a->scram = xcalloc(1, sizeof(*a->scram));
    sc = a->scram;
    if (a->step == AUTH_STEP_SCRAM_FIRST) {
        if (raw.len >= sizeof(sc->client_first)
            || scram_client_first(&sc->st, raw.data, raw.len, &err) < 0) {
            buf_free(&raw);
            auth_failed(s, SCRAM_MECH);
            return;
        }
        memcpy(sc->client_first, raw.data, raw.len);
        sc->client_first[raw.len] = '\0';
        auth_request_init(s, &rq, AUTH_REQ_SCRAM_START);
        (void)snprintf(rq.user, sizeof(rq.user), "%s", sc->st.user);
        a->step = AUTH_STEP_SCRAM_START;
    } else {
        auth_request_init(s, &rq, AUTH_REQ_SCRAM_FINISH);
        if (raw.len >= sizeof(rq.client_final)
            || memchr(raw.data, '\0', raw.len) != NULL) {
            buf_free(&raw);
            auth_failed(s, SCRAM_MECH);
            return;
        }
        memcpy(rq.client_final, raw.data, raw.len);
        rq.client_final[raw.len] = '\0';
        memcpy(rq.client_first, sc->client_first, sizeof(rq.client_first));
        memcpy(rq.server_first, sc->server_first, sizeof(rq.server_first));
        a->step = AUTH_STEP_SCRAM_FINISH;
    }
    buf_free(&raw);
    auth_send(s, &rq);
}

/* auth_plain - a PLAIN response (base64, "=" for empty) */
static void auth_plain(struct smtpd_session *s, const char *b64, size_t len)
{
    struct sasl_plain p;
    buf_t raw;
    const char *err = NULL;
    int rc;

    buf_init(&raw, SMTPD_AUTH_RESPONSE_MAX);
    if (len == 1 && b64[0] == '=')
        rc = 0;
    else
        rc = sasl_base64_decode(b64, len, &raw, &err);
    if (rc < 0) {
        buf_free(&raw);
        auth_end(s);
        smtpd_reply(s, "501 5.5.2 Cannot decode response");
        return;
    }
    rc = sasl_plain_decode(raw.data != NULL ? raw.data : "", raw.len, &p,
                           &err);
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.cap);
    buf_free(&raw);
    if (rc < 0) {
        sasl_plain_clear(&p);
        auth_failed(s, "PLAIN");
        return;
    }
    auth_submit(s, p.authcid, p.passwd);
    sasl_plain_clear(&p);
}

/* auth_login - one LOGIN response: the user name, then the password */
static void auth_login(struct smtpd_session *s, const char *b64, size_t len)
{
    struct smtpd_auth *a = s->auth;
    char field[SASL_FIELD_MAX + 1];
    const char *err = NULL;
    bool user = a->step != AUTH_STEP_LOGIN_PASS;
    buf_t probe;

    /* "=" is an empty response: no valid user name or password */
    if (len == 1 && b64[0] == '=') {
        auth_failed(s, "LOGIN");
        return;
    }
    if (sasl_login_decode64(b64, len,
                            user ? SASL_LOGIN_USER : SASL_LOGIN_PASSWORD,
                            field, sizeof(field), &err) < 0) {
        /* tell malformed base64 from a field the rules refuse */
        buf_init(&probe, SMTPD_AUTH_RESPONSE_MAX);
        if (sasl_base64_decode(b64, len, &probe, &err) < 0) {
            auth_end(s);
            smtpd_reply(s, "501 5.5.2 Cannot decode response");
        } else {
            auth_failed(s, "LOGIN");
        }
        if (probe.data != NULL)
            explicit_bzero(probe.data, probe.cap);
        buf_free(&probe);
        explicit_bzero(field, sizeof(field));
        return;
    }
    if (user) {
        memcpy(a->user, field, sizeof(a->user));
        a->step = AUTH_STEP_LOGIN_PASS;
        s->auth_exchange = true;
        smtpd_reply(s, "334 " SASL_LOGIN_PASS_CHALLENGE);
    } else {
        char name[SASL_FIELD_MAX + 1];

        memcpy(name, a->user, sizeof(name));
        auth_submit(s, name, field);
        explicit_bzero(name, sizeof(name));
    }
    explicit_bzero(field, sizeof(field));
}

/* auth_response - one response (initial or after 334) of the exchange */
static void auth_response(struct smtpd_session *s, const char *b64,
                          size_t len)
{
    bool scram = s->auth->scram != NULL
                 || s->auth->step == AUTH_STEP_SCRAM_FIRST;

    if (len > (scram ? SMTPD_SCRAM_RESPONSE_MAX : SMTPD_AUTH_RESPONSE_MAX)) {
        auth_end(s);
        smtpd_reply(s, "500 5.5.6 Authentication exchange line is too long");
    } else if (scram) {
        auth_scram(s, b64, len);
    } else if (s->auth->step == AUTH_STEP_PLAIN) {
        auth_plain(s, b64, len);
    } else {
        auth_login(s, b64, len);
    }
}

void smtpd_auth_input(struct smtpd_session *s, const char *line, size_t len)
{
    if (s->auth == NULL || s->auth->step == AUTH_STEP_NONE) {
        s->auth_exchange = false;
        return;
    }
    if (line == NULL) {
        auth_end(s);
        smtpd_reply(s, "500 5.5.6 Authentication exchange line is too long");
        return;
    }
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 1 && line[0] == '*') {
        auth_end(s);
        smtpd_reply(s, "501 5.7.0 Authentication aborted");
        return;
    }
    auth_response(s, line, len);
}

bool smtpd_auth_cmd(struct smtpd_session *s, const char *arg)
{
    struct smtpd_auth *a;
    const char *init = NULL;
    char mech[SMTPCMD_MECH_MAX + 1];

    if (!var_smtpd_sasl_auth_enable) {
        smtpd_reply(s, "503 5.5.1 Error: authentication not enabled");
        return false;
    }
    if (smtpd_tls_refuse(s))
        return false;
    if (!auth_tls_ok(s)) {
        smtpd_reply(s, "538 5.7.11 Encryption required for requested "
                       "authentication mechanism");
        return false;
    }
    if (!s->esmtp) {
        smtpd_reply(s, "503 5.5.1 Error: send EHLO first");
        return false;
    }
    if (s->sasl_username[0] != '\0') {
        smtpd_reply(s, "503 5.5.1 Error: already authenticated");
        return false;
    }
    if (s->txn.in_mail) {
        smtpd_reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        return false;
    }
    if (smtpcmd_auth_arg(arg, mech, sizeof(mech), &init) < 0) {
        smtpd_reply(s, "501 5.5.4 Syntax: AUTH mechanism [initial-response]");
        return false;
    }
    if (!smtpd_anvil_auth(s)) {
        smtpd_reply(s, "450 4.7.1 Error: too many AUTH commands from %s",
                    s->addr);
        return false;
    }
    if (s->auth == NULL)
        s->auth = xcalloc(1, sizeof(*s->auth));
    a = s->auth;
    if (strcmp(mech, "PLAIN") == 0) {
        (void)snprintf(a->mech, sizeof(a->mech), "PLAIN");
        a->step = AUTH_STEP_PLAIN;
    } else if (strcmp(mech, "LOGIN") == 0) {
        (void)snprintf(a->mech, sizeof(a->mech), "LOGIN");
        a->step = AUTH_STEP_LOGIN_USER;
    } else if (strcmp(mech, SCRAM_MECH) == 0) {
        (void)snprintf(a->mech, sizeof(a->mech), SCRAM_MECH);
        a->step = AUTH_STEP_SCRAM_FIRST;
    } else {
        smtpd_reply(s, "504 5.5.4 Unsupported authentication mechanism");
        return false;
    }
    if (init != NULL) {
        auth_response(s, init, strlen(init));
        /* the command line, and so init, is in s->line: it held the
           credentials */
        if (s->line.data != NULL)
            explicit_bzero(s->line.data, s->line.len);
    } else {
        s->auth_exchange = true;
        smtpd_reply(s, "334 %s", a->step == AUTH_STEP_LOGIN_USER
                                 ? SASL_LOGIN_USER_CHALLENGE : "");
    }
    return false;
}
