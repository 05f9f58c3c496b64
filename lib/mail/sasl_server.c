/*
 * sasl_server - PLAIN, LOGIN and SCRAM-SHA-256 exchanges checked by the
 * auth service; the contract is in sasl_server.h. (Moved from smtpd's
 * smtpd_auth.c so that the login processes share it.)
 */
#include "mail/sasl_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rand.h>

#include "mail/auth_proto.h"
#include "util/attr.h"
#include "util/attr_client.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sasl.h"
#include "util/scram.h"
#include "util/util.h"

/* longest base64 response: a PLAIN message of three full fields
   (3 * SASL_FIELD_MAX + 2 bytes) */
#define SV_RESPONSE_MAX (((3 * SASL_FIELD_MAX + 2 + 2) / 3) * 4)
/* longest base64 SCRAM message */
#define SV_SCRAM_RESPONSE_MAX (((SCRAM_MSG_MAX + 2) / 3) * 4)

enum sv_step {
    SV_NONE,
    SV_PLAIN,                   /* challenge sent, waiting for PLAIN */
    SV_LOGIN_USER,              /* "Username:" asked */
    SV_LOGIN_PASS,              /* "Password:" asked */
    SV_SCRAM_FIRST,             /* waiting for client-first */
    SV_SCRAM_START,             /* scram-start asked */
    SV_SCRAM_FINAL,             /* server-first sent */
    SV_SCRAM_FINISH,            /* scram-finish asked */
    SV_SCRAM_DONE,              /* server-final sent, waiting for "" */
};

/* one SCRAM exchange: the messages auth checks at the end */
struct sv_scram {
    struct scram_server st;
    char client_first[SCRAM_MSG_MAX + 1];
    char server_first[SCRAM_MSG_MAX + 1];
};

struct sasl_server {
    ev_loop_t *loop;
    char *auth_path;
    char service[16];
    unsigned timeout_ms;
    const struct sasl_server_ops *ops;
    void *ctx;
    attr_client_t *client;      /* the request in flight, or NULL */
    enum sv_step step;
    bool exchange;              /* a challenge is out: lines are responses */
    char mech[16];
    char client_address[AUTH_ADDR_MAX + 1];
    char log_name[320];
    char user[SASL_FIELD_MAX + 1];  /* LOGIN: the name, until the password;
                                       SCRAM: the canonical name, until
                                       the client's last response */
    struct sv_scram *scram;     /* during a SCRAM exchange */
    char token[LOGIN_TOKEN_MAX + 1];    /* SCRAM: auth's token, until the
                                           client's last response */
    char tried[SASL_FIELD_MAX + 1];     /* the name the client gave */
};

/* sasl_server_new - see sasl_server.h */
sasl_server_t *sasl_server_new(ev_loop_t *loop, const char *auth_path,
                               const char *service, unsigned timeout_ms,
                               const struct sasl_server_ops *ops, void *ctx)
{
    sasl_server_t *sv = xcalloc(1, sizeof(*sv));

    sv->loop = loop;
    sv->auth_path = xstrdup(auth_path);
    (void)str_copy(sv->service, service, sizeof(sv->service));
    sv->timeout_ms = timeout_ms;
    sv->ops = ops;
    sv->ctx = ctx;
    return sv;
}

/* sv_end - the exchange is over, whatever its outcome */
static void sv_end(sasl_server_t *sv)
{
    sv->exchange = false;
    sv->step = SV_NONE;
    explicit_bzero(sv->user, sizeof(sv->user));
    explicit_bzero(sv->token, sizeof(sv->token));
    sv->tried[0] = '\0';
    if (sv->scram != NULL) {
        explicit_bzero(sv->scram, sizeof(*sv->scram));
        free(sv->scram);
        sv->scram = NULL;
    }
}

/* sasl_server_abort - see sasl_server.h */
void sasl_server_abort(sasl_server_t *sv)
{
    if (sv == NULL)
        return;
    sv_end(sv);
    attr_client_free(sv->client);       /* no callback runs */
    sv->client = NULL;
}

/* sasl_server_free - see sasl_server.h */
void sasl_server_free(sasl_server_t *sv)
{
    if (sv == NULL)
        return;
    sasl_server_abort(sv);
    free(sv->auth_path);
    free(sv);
}

bool sasl_server_in_exchange(const sasl_server_t *sv)
{
    return sv != NULL && sv->exchange;
}

bool sasl_server_waiting(const sasl_server_t *sv)
{
    return sv != NULL && sv->client != NULL;
}

/* sasl_server_mech_known - see sasl_server.h */
bool sasl_server_mech_known(const char *mech)
{
    return strcmp(mech, "PLAIN") == 0 || strcmp(mech, "LOGIN") == 0
           || strcmp(mech, SCRAM_MECH) == 0;
}

/* sasl_server_response_max - see sasl_server.h */
size_t sasl_server_response_max(const char *mech)
{
    return strcmp(mech, SCRAM_MECH) == 0 ? SV_SCRAM_RESPONSE_MAX
                                         : SV_RESPONSE_MAX;
}

/* sv_done - end the exchange and report; the last thing a caller does */
static void sv_done(sasl_server_t *sv, enum sasl_server_status st,
                    const char *user, const char *token)
{
    char mech[sizeof(sv->mech)], tried[sizeof(sv->tried)];
    struct sasl_server_result r = {
        .status = st, .mech = mech, .user = user != NULL ? user : "",
        .token = token != NULL ? token : "", .tried = tried,
    };

    memcpy(mech, sv->mech, sizeof(mech));
    memcpy(tried, sv->tried, sizeof(tried));
    sv_end(sv);
    sv->ops->done(sv->ctx, &r);
}

/* sv_failed - the credentials were refused: Postfix's log line */
static void sv_failed(sasl_server_t *sv)
{
    log_warning("%s: SASL %s authentication failed: authentication failure",
                sv->log_name, sv->mech);
    sv_done(sv, SASL_SERVER_FAIL, NULL, NULL);
}

/* sv_unavailable - the auth service could not answer */
static void sv_unavailable(sasl_server_t *sv, const char *why)
{
    log_warning("%s: SASL %s authentication failed: Connection lost to "
                "authentication server (%s)", sv->log_name, sv->mech, why);
    sv_done(sv, SASL_SERVER_TEMPFAIL, NULL, NULL);
}

/* sv_tempfail - auth answered tempfail */
static void sv_tempfail(sasl_server_t *sv)
{
    log_warning("%s: SASL %s authentication: temporary failure in the "
                "authentication service", sv->log_name, sv->mech);
    sv_done(sv, SASL_SERVER_TEMPFAIL, NULL, NULL);
}

/* sv_challenge - send one challenge, base64 already */
static void sv_challenge(sasl_server_t *sv, const char *b64)
{
    sv->exchange = true;
    sv->ops->challenge(sv->ctx, b64);
}

/* sv_scram_challenge - base64(msg) as a challenge; false when it cannot
   be made */
static bool sv_scram_challenge(sasl_server_t *sv, const char *msg)
{
    buf_t b = BUF_INIT;
    bool ok = sasl_base64_encode(msg, strlen(msg), &b) == 0;

    if (ok)
        sv_challenge(sv, buf_str(&b));
    buf_free(&b);
    return ok;
}

/* sv_scram_reply - auth answered a scram-start or scram-finish */
static void sv_scram_reply(sasl_server_t *sv, const struct auth_reply *rp)
{
    struct sv_scram *sc = sv->scram;
    struct scram_secrets sec;
    unsigned char rnd[18];
    buf_t snonce = BUF_INIT, sfirst;
    size_t n = 0;
    const char *err = NULL;
    bool ok;

    if (rp->status == AUTH_STATUS_TEMPFAIL) {
        sv_tempfail(sv);
    } else if (sv->step == SV_SCRAM_START
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
            sv->step = SV_SCRAM_FINAL;
        }
        buf_free(&sfirst);
        buf_free(&snonce);
        if (!ok || !sv_scram_challenge(sv, sc->server_first))
            sv_unavailable(sv, "cannot make server-first");
    } else if (sv->step == SV_SCRAM_FINISH
               && rp->status == AUTH_STATUS_OK && rp->server_final[0]) {
        (void)snprintf(sv->user, sizeof(sv->user), "%s", rp->user);
        /* the token waits with the name for the client's last word */
        (void)str_copy(sv->token, rp->token, sizeof(sv->token));
        sv->step = SV_SCRAM_DONE;
        if (!sv_scram_challenge(sv, rp->server_final))
            sv_unavailable(sv, "cannot send server-final");
    } else if (sv->step == SV_SCRAM_FINISH
               && rp->status == AUTH_STATUS_FAIL) {
        sv_failed(sv);
    } else {
        sv_unavailable(sv, "unexpected reply");
    }
}

/* sv_reply_cb - the auth service answered (or did not) */
static void sv_reply_cb(attr_client_t *c, int error, const char *reason,
                        const attr_list_t *reply, void *arg)
{
    sasl_server_t *sv = arg;
    const struct sasl_server_ops *ops = sv->ops;
    void *ctx = sv->ctx;
    struct auth_reply rp;
    const char *err = NULL;

    if (ops->reply_begin != NULL)
        ops->reply_begin(ctx);
    attr_client_free(c);
    sv->client = NULL;
    memset(&rp, 0, sizeof(rp));
    if (error != ATTR_CLIENT_OK) {
        sv_unavailable(sv, reason);
    } else if (auth_reply_decode(reply, &rp, &err) < 0) {
        sv_unavailable(sv, err);
    } else if (sv->scram != NULL) {
        sv_scram_reply(sv, &rp);
    } else if (rp.status == AUTH_STATUS_OK) {
        sv_done(sv, SASL_SERVER_OK, rp.user, rp.token);
    } else if (rp.status == AUTH_STATUS_FAIL) {
        sv_failed(sv);
    } else {
        sv_tempfail(sv);
    }
    explicit_bzero(&rp, sizeof(rp));
    if (ops->reply_end != NULL)
        ops->reply_end(ctx);
}

/* sv_request_init - the fields every request has */
static void sv_request_init(sasl_server_t *sv, struct auth_request *rq,
                            enum auth_request_kind kind)
{
    memset(rq, 0, sizeof(*rq));
    rq->kind = kind;
    (void)snprintf(rq->mechanism, sizeof(rq->mechanism), "%s", sv->mech);
    (void)snprintf(rq->service, sizeof(rq->service), "%s", sv->service);
    (void)snprintf(rq->client_address, sizeof(rq->client_address), "%s",
                   sv->client_address);
    (void)snprintf(rq->client_name, sizeof(rq->client_name), "unknown");
}

/* sv_send - encode rq (and wipe it), send it on a fresh connection */
static void sv_send(sasl_server_t *sv, struct auth_request *rq)
{
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
        sv_failed(sv);
        return;
    }
    opts.connect_timeout_msec = sv->timeout_ms;
    sv->client = attr_client_connect_unix(sv->loop, sv->auth_path, &opts);
    if (sv->client == NULL) {
        err = strerror(errno);
    } else if (attr_client_request(sv->client, &req, sv->timeout_ms,
                                   sv_reply_cb, sv) < 0) {
        err = strerror(errno);
        attr_client_free(sv->client);
        sv->client = NULL;
    } else {
        err = NULL;
    }
    attr_list_wipe(&req);
    attr_list_free(&req);
    if (err != NULL) {
        sv_unavailable(sv, err);
        return;
    }
    sv->exchange = false;
}

/* sv_submit - the credentials are complete: ask auth. The password is
   wiped here whatever happens. */
static void sv_submit(sasl_server_t *sv, const char *user, char *password)
{
    struct auth_request rq;

    sv_request_init(sv, &rq, AUTH_REQ_AUTH);
    (void)snprintf(rq.user, sizeof(rq.user), "%s", user);
    (void)snprintf(rq.password, sizeof(rq.password), "%s", password);
    explicit_bzero(password, strlen(password));
    sv_send(sv, &rq);
}

/* sv_scram - one SCRAM response: client-first, client-final, or the
   empty answer to server-final */
static void sv_scram(sasl_server_t *sv, const char *b64, size_t len)
{
    struct sv_scram *sc;
    struct auth_request rq;
    buf_t raw;
    const char *err = NULL;

    if (sv->step == SV_SCRAM_DONE) {
        char user[SASL_FIELD_MAX + 1], token[LOGIN_TOKEN_MAX + 1];

        if (len != 0) {
            sv_failed(sv);
            return;
        }
        memcpy(user, sv->user, sizeof(user));
        memcpy(token, sv->token, sizeof(token));
        sv_done(sv, SASL_SERVER_OK, user, token);
        explicit_bzero(user, sizeof(user));
        explicit_bzero(token, sizeof(token));
        return;
    }
    buf_init(&raw, SCRAM_MSG_MAX);
    if (len == 0 || (len == 1 && b64[0] == '=')
        || sasl_base64_decode(b64, len, &raw, &err) < 0) {
        buf_free(&raw);
        sv_done(sv, SASL_SERVER_MALFORMED, NULL, NULL);
        return;
    }
    if (sv->scram == NULL)
        sv->scram = xcalloc(1, sizeof(*sv->scram));
    sc = sv->scram;
    if (sv->step == SV_SCRAM_FIRST) {
        if (raw.len >= sizeof(sc->client_first)
            || scram_client_first(&sc->st, raw.data, raw.len, &err) < 0) {
            buf_free(&raw);
            sv_failed(sv);
            return;
        }
        memcpy(sc->client_first, raw.data, raw.len);
        sc->client_first[raw.len] = '\0';
        (void)str_copy(sv->tried, sc->st.user, sizeof(sv->tried));
        sv_request_init(sv, &rq, AUTH_REQ_SCRAM_START);
        (void)snprintf(rq.user, sizeof(rq.user), "%s", sc->st.user);
        sv->step = SV_SCRAM_START;
    } else {
        sv_request_init(sv, &rq, AUTH_REQ_SCRAM_FINISH);
        if (raw.len >= sizeof(rq.client_final)
            || memchr(raw.data, '\0', raw.len) != NULL) {
            buf_free(&raw);
            sv_failed(sv);
            return;
        }
        memcpy(rq.client_final, raw.data, raw.len);
        rq.client_final[raw.len] = '\0';
        memcpy(rq.client_first, sc->client_first, sizeof(rq.client_first));
        memcpy(rq.server_first, sc->server_first, sizeof(rq.server_first));
        sv->step = SV_SCRAM_FINISH;
    }
    buf_free(&raw);
    sv_send(sv, &rq);
}

/* sv_plain - a PLAIN response (base64, "=" for empty) */
static void sv_plain(sasl_server_t *sv, const char *b64, size_t len)
{
    struct sasl_plain p;
    buf_t raw;
    const char *err = NULL;
    int rc;

    buf_init(&raw, SV_RESPONSE_MAX);
    if (len == 1 && b64[0] == '=')
        rc = 0;
    else
        rc = sasl_base64_decode(b64, len, &raw, &err);
    if (rc < 0) {
        buf_free(&raw);
        sv_done(sv, SASL_SERVER_MALFORMED, NULL, NULL);
        return;
    }
    rc = sasl_plain_decode(raw.data != NULL ? raw.data : "", raw.len, &p,
                           &err);
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.cap);
    buf_free(&raw);
    if (rc < 0) {
        sasl_plain_clear(&p);
        sv_failed(sv);
        return;
    }
    (void)str_copy(sv->tried, p.authcid, sizeof(sv->tried));
    sv_submit(sv, p.authcid, p.passwd);
    sasl_plain_clear(&p);
}

/* sv_login - one LOGIN response: the user name, then the password */
static void sv_login(sasl_server_t *sv, const char *b64, size_t len)
{
    char field[SASL_FIELD_MAX + 1];
    const char *err = NULL;
    bool user = sv->step != SV_LOGIN_PASS;
    buf_t probe;

    /* "=" is an empty response: no valid user name or password */
    if (len == 1 && b64[0] == '=') {
        sv_failed(sv);
        return;
    }
    if (sasl_login_decode64(b64, len,
                            user ? SASL_LOGIN_USER : SASL_LOGIN_PASSWORD,
                            field, sizeof(field), &err) < 0) {
        /* tell malformed base64 from a field the rules refuse */
        buf_init(&probe, SV_RESPONSE_MAX);
        bool malformed = sasl_base64_decode(b64, len, &probe, &err) < 0;
        if (probe.data != NULL)
            explicit_bzero(probe.data, probe.cap);
        buf_free(&probe);
        explicit_bzero(field, sizeof(field));
        if (malformed)
            sv_done(sv, SASL_SERVER_MALFORMED, NULL, NULL);
        else
            sv_failed(sv);
        return;
    }
    if (user) {
        memcpy(sv->user, field, sizeof(sv->user));
        (void)str_copy(sv->tried, field, sizeof(sv->tried));
        sv->step = SV_LOGIN_PASS;
        explicit_bzero(field, sizeof(field));
        sv_challenge(sv, SASL_LOGIN_PASS_CHALLENGE);
    } else {
        char name[SASL_FIELD_MAX + 1];

        memcpy(name, sv->user, sizeof(name));
        sv_submit(sv, name, field);
        explicit_bzero(name, sizeof(name));
        explicit_bzero(field, sizeof(field));
    }
}

/* sv_response - one response (initial or after a challenge) */
static void sv_response(sasl_server_t *sv, const char *b64, size_t len)
{
    bool scram = sv->scram != NULL || sv->step == SV_SCRAM_FIRST;

    if (len > (scram ? SV_SCRAM_RESPONSE_MAX : SV_RESPONSE_MAX))
        sv_done(sv, SASL_SERVER_TOO_LONG, NULL, NULL);
    else if (scram)
        sv_scram(sv, b64, len);
    else if (sv->step == SV_PLAIN)
        sv_plain(sv, b64, len);
    else
        sv_login(sv, b64, len);
}

/* sasl_server_input - see sasl_server.h */
void sasl_server_input(sasl_server_t *sv, const char *line, size_t len)
{
    if (sv->step == SV_NONE || sv->client != NULL) {
        sv->exchange = false;
        return;
    }
    if (line == NULL) {
        sv_done(sv, SASL_SERVER_TOO_LONG, NULL, NULL);
        return;
    }
    sv->exchange = false;
    if (len == 1 && line[0] == '*') {
        sv_done(sv, SASL_SERVER_CANCELLED, NULL, NULL);
        return;
    }
    sv_response(sv, line, len);
}

/* sasl_server_start - see sasl_server.h */
int sasl_server_start(sasl_server_t *sv, const char *mech,
                      const char *initial, const char *client_address,
                      const char *log_name)
{
    if (sv->step != SV_NONE || sv->client != NULL
        || !sasl_server_mech_known(mech))
        return -1;
    (void)str_copy(sv->mech, mech, sizeof(sv->mech));
    (void)str_copy(sv->client_address,
                   client_address != NULL && *client_address != '\0'
                   ? client_address : "unknown", sizeof(sv->client_address));
    (void)str_copy(sv->log_name, log_name, sizeof(sv->log_name));
    if (strcmp(mech, "PLAIN") == 0)
        sv->step = SV_PLAIN;
    else if (strcmp(mech, "LOGIN") == 0)
        sv->step = SV_LOGIN_USER;
    else
        sv->step = SV_SCRAM_FIRST;
    if (initial != NULL)
        sv_response(sv, initial, strlen(initial));
    else
        sv_challenge(sv, sv->step == SV_LOGIN_USER
                         ? SASL_LOGIN_USER_CHALLENGE : "");
    return 0;
}
