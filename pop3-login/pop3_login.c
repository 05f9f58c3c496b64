/*
 * pop3-login - the pre-authentication half of POP3 (RFC 1939, RFC 2449
 * CAPA, RFC 2595 STLS, RFC 5034 AUTH; implicit TLS with
 * -o pop3d_tls_wrappermode=yes, port 995). An event server (many
 * clients per process, $pop3d_client_limit) in login-process mode:
 * as root it runs as $login_user chrooted into $queue_directory/login,
 * where it finds nothing but the sockets auth (the auth service) and
 * pop3d (the mail side).
 *
 * The session: "+OK $pop3d_banner", then CAPA, STLS, USER/PASS, AUTH
 * (PLAIN, LOGIN, SCRAM-SHA-256 through mail/sasl_server.h, challenges
 * "+ base64", "*" cancels) and QUIT. Before TLS, with
 * pop3d_tls_auth_only=yes, USER, PASS and AUTH PLAIN/LOGIN get "-ERR
 * [AUTH] ..." and CAPA does not offer them. A failed login is answered
 * after $pop3d_auth_failure_delay (a timer: the process keeps serving
 * others) and ends the session at the $pop3d_sasl_failure_limit'th;
 * $pop3d_hard_error_limit errors (unknown commands, bad arguments,
 * overlong lines, ...) end it too; $pop3d_timeout idle ends it.
 *
 * After auth says ok (with its login token, mail/login_token.h) the
 * client goes to the mail side with mail/login_handover.h: plaintext,
 * the client descriptor itself (we close our copy after pop3d's ok, and
 * write nothing more to the client); TLS, the mail side's end of a
 * socketpair, and we copy between it and the TLS stream until either
 * side closes (bounded buffers, back-pressure both ways: a side's input
 * is not read while the other side has more than P3L_PROXY_HIGH bytes
 * queued). Bytes the client pipelined after the login command travel in
 * the request (input=). If pop3d refuses or does not answer:
 * "-ERR [SYS/TEMP] ...".
 *
 * STLS (RFC 2595): "+OK", then everything the client sent after the
 * STLS line and before the handshake is thrown away unanswered (the
 * STARTTLS injection: util/stream.h's barrier), the session forgets
 * USER, and capabilities are sent again only when asked.
 *
 * Logging (Dovecot's words, our prefix):
 *   pop3-login: Login: user=<NAME>, method=PLAIN, rip=ADDR, lip=ADDR, TLS
 *   pop3-login: Disconnected (auth failed, 1 attempts): user=<NAME>,
 *     method=PLAIN, rip=ADDR, lip=ADDR
 * and sasl_server's Postfix-style failure warnings (fail2ban).
 *
 * Security: everything here is pre-authentication and hostile input. It
 * runs without privileges in an empty root-owned directory; a
 * compromised pop3-login can ask auth to check passwords (as any
 * network client can, through us) and hand connections to pop3d, but
 * pop3d believes a user name only with auth's token for it, which only
 * auth can make (the key is root's); it cannot read the spool, the
 * mailboxes or the password data.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/login_handover.h"
#include "mail/pop3_cmd.h"
#include "mail/sasl_server.h"
#include "mail/server.h"
#include "mail/tls_server.h"
#include "util/buf.h"
#include "util/events.h"
#include "util/log.h"
#include "util/netaddr.h"
#include "util/sasl.h"
#include "util/stream.h"
#include "util/tls.h"
#include "util/util.h"

#define P3L_AUTH_PATH "auth"        /* in the login chroot (login/auth) */
#define P3L_MAIL_PATH "pop3d"       /* login/pop3d */
#define P3L_PROXY_HIGH (256 * 1024) /* proxy: pause the other side above */

enum p3l_state {
    P3L_CMD,            /* reading commands (or SASL responses) */
    P3L_TLS,            /* STLS / wrapper handshake running */
    P3L_AUTH,           /* auth asked: no input */
    P3L_DELAY,          /* failed login: the answer waits */
    P3L_HANDOVER,       /* waiting for pop3d's answer */
    P3L_PROXY,          /* logged in with TLS: copying */
    P3L_DONE,           /* handed over or closing */
};

struct p3l {
    ev_loop_t *loop;
    stream_t *st;               /* the client; NULL once gone */
    stream_t *pair;             /* proxy: our end of the socketpair */
    int busy;
    enum p3l_state state;
    bool logged_in;
    bool tls_up;                /* TLS was established (for the log) */
    char addr[64], laddr[64];
    int port, lport;
    char namaddr[96];
    char id[13];
    char user[256];             /* USER's argument, until PASS */
    bool have_user;
    char last_user[256];        /* the last name tried, for the log */
    char method[16];            /* mechanism of the login in progress */
    sasl_server_t *sv;
    long errors, failures;
    ev_timer_t delay;           /* a failed login's answer */
    bool delay_close;
    /* handover */
    int ho_fd;                  /* the request's connection, or -1 */
    int pair_fd;                /* TLS: our end before the proxy, or -1 */
    ev_timer_t ho_timer;
    char auth_user[256];
    char token[LOGIN_TOKEN_MAX + 1];
    bool ho_pending;            /* waiting for our output to drain */
    struct p3l *prev, *next;
};

static tls_ctx_t *p3l_tls_ctx;
static struct p3l *p3l_sessions;
static struct server_ops p3l_ops;

static void p3l_process(struct p3l *s);
static void p3l_handover_send(struct p3l *s);

/* ---- session life ------------------------------------------------------ */

static bool p3l_tls_on(const struct p3l *s)
{
    return s->st != NULL && stream_tls_active(s->st);
}

static const char *p3l_tls_suffix(const struct p3l *s)
{
    return s->tls_up ? ", TLS" : "";
}

static void p3l_end(struct p3l *s)
{
    if (!s->logged_in) {
        if (s->failures > 0)
            log_info("Disconnected (auth failed, %ld attempts): user=<%s>, "
                     "method=%s, rip=%s, lip=%s%s", s->failures,
                     s->last_user, s->method[0] ? s->method : "PLAIN",
                     s->addr, s->laddr, p3l_tls_suffix(s));
        else
            log_info("Disconnected (no auth attempts): rip=%s, lip=%s%s",
                     s->addr, s->laddr, p3l_tls_suffix(s));
    }
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        p3l_sessions = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    sasl_server_free(s->sv);
    ev_timer_stop(s->loop, &s->delay);
    ev_timer_stop(s->loop, &s->ho_timer);
    if (s->ho_fd >= 0) {
        ev_io_remove(s->loop, s->ho_fd);
        (void)close(s->ho_fd);
    }
    if (s->pair_fd >= 0)
        (void)close(s->pair_fd);
    explicit_bzero(s, sizeof(*s));
    free(s);
    server_conn_done();
}

/* p3l_leave - end of one of our callbacks: free when nothing uses s */
static void p3l_leave(struct p3l *s)
{
    if (--s->busy == 0 && s->st == NULL && s->pair == NULL)
        p3l_end(s);
}

/* p3l_close - flush what is queued to the client, then close */
static void p3l_close(struct p3l *s)
{
    s->state = P3L_DONE;
    if (s->st != NULL) {
        stream_close(s->st);
        s->st = NULL;
    }
    if (s->pair != NULL) {
        stream_close(s->pair);
        s->pair = NULL;
    }
}

/* p3l_reply - one line to the client */
static void p3l_reply(struct p3l *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void p3l_reply(struct p3l *s, const char *fmt, ...)
{
    char line[512];
    va_list ap;

    if (s->st == NULL)
        return;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) - 2 ? (size_t)n : sizeof(line) - 3;
    memcpy(line + len, "\r\n", 2);
    stream_write(s->st, line, len + 2);
}

/* p3l_error - an -ERR that counts against $pop3d_hard_error_limit */
static void p3l_error(struct p3l *s, const char *text)
{
    p3l_reply(s, "-ERR %s", text);
    if (++s->errors >= var_pop3d_hard_error_limit) {
        log_info("too many errors from %s: disconnecting", s->namaddr);
        p3l_reply(s, "-ERR Too many errors, closing connection.");
        p3l_close(s);
    }
}

/* ---- policy -------------------------------------------------------------- */

static bool p3l_tls_offer(const struct p3l *s)
{
    return p3l_tls_ctx != NULL && !var_pop3d_tls_wrappermode
           && strcmp(var_pop3d_tls_security_level, "none") != 0
           && !p3l_tls_on(s);
}

/* p3l_encrypt_required - no login of any kind before TLS */
static bool p3l_encrypt_required(const struct p3l *s)
{
    return strcmp(var_pop3d_tls_security_level, "encrypt") == 0
           && !p3l_tls_on(s);
}

/* p3l_plaintext_ok - USER/PASS and AUTH PLAIN/LOGIN allowed now */
static bool p3l_plaintext_ok(const struct p3l *s)
{
    return p3l_tls_on(s) || (!var_pop3d_tls_auth_only
                             && !p3l_encrypt_required(s));
}

static bool p3l_mech_ok(const struct p3l *s, const char *mech)
{
    if (strcmp(mech, "PLAIN") == 0 || strcmp(mech, "LOGIN") == 0)
        return p3l_plaintext_ok(s);
    return !p3l_encrypt_required(s);
}

static const char *const p3l_mechs[] = { "SCRAM-SHA-256", "PLAIN", "LOGIN",
                                         NULL };

/* ---- commands ------------------------------------------------------------ */

static void p3l_capa(struct p3l *s)
{
    buf_t mechs = BUF_INIT;

    p3l_reply(s, "+OK Capability list follows");
    p3l_reply(s, "TOP");
    p3l_reply(s, "UIDL");
    p3l_reply(s, "RESP-CODES");
    p3l_reply(s, "AUTH-RESP-CODE");
    p3l_reply(s, "PIPELINING");
    if (p3l_plaintext_ok(s))
        p3l_reply(s, "USER");
    for (const char *const *m = p3l_mechs; *m; m++)
        if (p3l_mech_ok(s, *m))
            (void)buf_printf(&mechs, " %s", *m);
    if (mechs.len > 0)
        p3l_reply(s, "SASL%s", buf_str(&mechs));
    if (p3l_tls_offer(s))
        p3l_reply(s, "STLS");
    p3l_reply(s, "IMPLEMENTATION Tern");
    p3l_reply(s, ".");
    buf_free(&mechs);
}

static void p3l_greet(struct p3l *s)
{
    p3l_reply(s, "+OK %s", var_pop3d_banner);
}

/* p3l_tls_done - the handshake ended (error: the stream is closed) */
static void p3l_tls_done(stream_t *st, void *ctx, const char *error)
{
    struct p3l *s = ctx;
    bool wrapper = var_pop3d_tls_wrappermode;

    (void)st;
    s->busy++;
    if (error != NULL) {
        log_info("TLS handshake failed: %s: rip=%s, lip=%s", error, s->addr,
                 s->laddr);
        s->st = NULL;
        s->state = P3L_DONE;
    } else {
        s->tls_up = true;
        /* RFC 2595 4: forget what the client said in plaintext */
        explicit_bzero(s->user, sizeof(s->user));
        s->have_user = false;
        sasl_server_abort(s->sv);
        s->state = P3L_CMD;
        if (wrapper)
            p3l_greet(s);
        p3l_process(s);
    }
    p3l_leave(s);
}

static void p3l_stls(struct p3l *s)
{
    if (p3l_tls_on(s)) {
        p3l_error(s, "TLS is already active.");
        return;
    }
    if (!p3l_tls_offer(s)) {
        p3l_error(s, "STLS not available.");
        return;
    }
    p3l_reply(s, "+OK Begin TLS negotiation now.");
    if (stream_start_tls(s->st, p3l_tls_ctx, true, p3l_tls_done) < 0) {
        log_info("cannot start TLS: %s: rip=%s", strerror(errno), s->addr);
        p3l_close(s);
        return;
    }
    s->state = P3L_TLS;
    size_t discarded = stream_tls_discarded(s->st);
    if (discarded > 0)
        log_info("improper command pipelining after STLS from %s: "
                 "%zu bytes discarded", s->namaddr, discarded);
}

/* p3l_auth_start - a login attempt (mech, initial response or NULL) */
static void p3l_auth_start(struct p3l *s, const char *mech,
                           const char *method, const char *initial)
{
    (void)str_copy(s->method, method, sizeof(s->method));
    s->state = P3L_AUTH;
    if (sasl_server_start(s->sv, mech, initial, s->addr, s->namaddr) < 0) {
        s->state = P3L_CMD;
        p3l_error(s, "Authentication already in progress.");
        return;
    }
    if (s->state == P3L_AUTH && !sasl_server_waiting(s->sv)
        && sasl_server_in_exchange(s->sv))
        s->state = P3L_CMD;     /* a challenge is out: read responses */
}

static void p3l_pass(struct p3l *s, char *pass)
{
    buf_t raw = BUF_INIT, b64 = BUF_INIT;

    if (!s->have_user) {
        p3l_error(s, "No username given.");
        return;
    }
    (void)str_copy(s->last_user, s->user, sizeof(s->last_user));
    /* USER/PASS is a PLAIN exchange with auth, as one initial response */
    if (buf_putc(&raw, '\0') < 0 || buf_puts(&raw, s->user) < 0
        || buf_putc(&raw, '\0') < 0 || buf_puts(&raw, pass) < 0
        || sasl_base64_encode(raw.data, raw.len, &b64) < 0
        || buf_putc(&b64, '\0') < 0) {
        p3l_reply(s, "-ERR [SYS/TEMP] Internal error.");
    } else {
        s->have_user = false;
        explicit_bzero(s->user, sizeof(s->user));
        p3l_auth_start(s, "PLAIN", "USER", b64.data);
    }
    if (raw.data != NULL)
        explicit_bzero(raw.data, raw.cap);
    if (b64.data != NULL)
        explicit_bzero(b64.data, b64.cap);
    buf_free(&raw);
    buf_free(&b64);
}

static void p3l_auth(struct p3l *s, struct pop3_cmd *c)
{
    char mech[32];

    if (c->argc == 0) {         /* the mechanisms (RFC 1734 style) */
        p3l_reply(s, "+OK");
        for (const char *const *m = p3l_mechs; *m; m++)
            if (p3l_mech_ok(s, *m))
                p3l_reply(s, "%s", *m);
        p3l_reply(s, ".");
        return;
    }
    (void)str_copy(mech, c->argv[0], sizeof(mech));
    for (char *p = mech; *p; p++)
        if (*p >= 'a' && *p <= 'z')
            *p = (char)(*p - 'a' + 'A');
    if (!sasl_server_mech_known(mech)) {
        p3l_error(s, "Unsupported authentication mechanism.");
        return;
    }
    if (!p3l_mech_ok(s, mech)) {
        p3l_reply(s, "-ERR [AUTH] Plaintext authentication disallowed on "
                     "non-secure (SSL/TLS) connections.");
        return;
    }
    s->last_user[0] = '\0';
    p3l_auth_start(s, mech, mech, c->argc > 1 ? c->argv[1] : NULL);
}

/* p3l_command - one command line in the AUTHORIZATION state */
static void p3l_command(struct p3l *s, const char *line, size_t len)
{
    struct pop3_cmd c;
    enum pop3_parse_error e = pop3_cmd_parse(line, len, &c);

    if (e == POP3_ERR_TOO_LONG) {
        p3l_error(s, "Line too long.");
    } else if (e == POP3_ERR_UNKNOWN || (e != POP3_OK && c.verb == POP3_UNKNOWN)) {
        p3l_error(s, "Unknown command.");
    } else if (e != POP3_OK) {
        p3l_error(s, "Invalid arguments.");
    } else {
        switch (c.verb) {
        case POP3_CAPA:
            p3l_capa(s);
            break;
        case POP3_STLS:
            p3l_stls(s);
            break;
        case POP3_QUIT:
            p3l_reply(s, "+OK Logging out.");
            p3l_close(s);
            break;
        case POP3_USER:
            if (!p3l_plaintext_ok(s)) {
                p3l_reply(s, "-ERR [AUTH] Plaintext authentication "
                             "disallowed on non-secure (SSL/TLS) "
                             "connections.");
                break;
            }
            (void)str_copy(s->user, c.argv[0], sizeof(s->user));
            s->have_user = true;
            p3l_reply(s, "+OK");
            break;
        case POP3_PASS:
            if (!p3l_plaintext_ok(s)) {
                p3l_reply(s, "-ERR [AUTH] Plaintext authentication "
                             "disallowed on non-secure (SSL/TLS) "
                             "connections.");
                break;
            }
            p3l_pass(s, c.argv[0]);
            break;
        case POP3_AUTH:
            p3l_auth(s, &c);
            break;
        case POP3_STAT: case POP3_LIST: case POP3_RETR: case POP3_DELE:
        case POP3_NOOP: case POP3_RSET: case POP3_TOP: case POP3_UIDL:
            p3l_error(s, "[AUTH] Log in first.");
            break;
        default:
            p3l_error(s, "Unknown command.");
            break;
        }
    }
    pop3_cmd_clear(&c);
}

/* p3l_process - every buffered line while we read commands */
static void p3l_process(struct p3l *s)
{
    while (s->st != NULL && s->state == P3L_CMD) {
        const char *line;
        size_t len;
        bool crlf;
        int r = stream_read_line(s->st, &line, &len, &crlf);

        if (r == 0)
            break;
        if (sasl_server_in_exchange(s->sv)) {
            s->state = P3L_AUTH;
            sasl_server_input(s->sv, r < 0 ? NULL : line, r < 0 ? 0 : len);
            if (s->state == P3L_AUTH && !sasl_server_waiting(s->sv)
                && sasl_server_in_exchange(s->sv))
                s->state = P3L_CMD;
            continue;
        }
        if (r < 0)
            p3l_error(s, "Line too long.");
        else
            p3l_command(s, line, len);
    }
    /* no input while auth, the failure delay or pop3d has the word (a
       handshake drives its own reads) */
    if (s->st != NULL && s->state != P3L_TLS)
        stream_pause_read(s->st, s->state == P3L_AUTH
                                 || s->state == P3L_DELAY
                                 || s->state == P3L_HANDOVER);
}

/* ---- SASL callbacks -------------------------------------------------------- */

static void p3l_challenge(void *ctx, const char *b64)
{
    struct p3l *s = ctx;

    p3l_reply(s, "+ %s", b64);
}

/* p3l_delay_done - the failed login's answer, now */
static void p3l_delay_done(ev_loop_t *loop, void *arg)
{
    struct p3l *s = arg;

    (void)loop;
    s->busy++;
    p3l_reply(s, "-ERR [AUTH] Authentication failed.");
    if (s->delay_close) {
        p3l_close(s);
    } else {
        s->state = P3L_CMD;
        p3l_process(s);
    }
    p3l_leave(s);
}

static void p3l_done(void *ctx, const struct sasl_server_result *r)
{
    struct p3l *s = ctx;

    s->state = P3L_CMD;
    if (r->tried[0] != '\0')
        (void)str_copy(s->last_user, r->tried, sizeof(s->last_user));
    switch (r->status) {
    case SASL_SERVER_OK:
        (void)str_copy(s->auth_user, r->user, sizeof(s->auth_user));
        (void)str_copy(s->last_user, r->user, sizeof(s->last_user));
        (void)str_copy(s->token, r->token, sizeof(s->token));
        if (s->token[0] == '\0') {
            log_warning("auth gave no login token for %s: rip=%s",
                        r->user, s->addr);
            p3l_reply(s, "-ERR [SYS/TEMP] Temporary authentication "
                         "failure.");
            break;
        }
        s->state = P3L_HANDOVER;
        s->ho_pending = true;
        if (s->st != NULL && stream_output_pending(s->st) == 0)
            p3l_handover_send(s);
        break;
    case SASL_SERVER_FAIL:
        s->failures++;
        s->delay_close = s->failures >= var_pop3d_sasl_failure_limit;
        s->state = P3L_DELAY;
        ev_timer_set(s->loop, &s->delay,
                     (uint64_t)var_pop3d_auth_failure_delay * 1000);
        break;
    case SASL_SERVER_TEMPFAIL:
        p3l_reply(s, "-ERR [SYS/TEMP] Temporary authentication failure.");
        break;
    case SASL_SERVER_MALFORMED:
        p3l_error(s, "Invalid base64 data in continued response.");
        break;
    case SASL_SERVER_CANCELLED:
        p3l_reply(s, "-ERR Authentication aborted by client.");
        break;
    case SASL_SERVER_TOO_LONG:
        p3l_error(s, "Authentication response too long.");
        break;
    }
}

static void p3l_reply_begin(void *ctx)
{
    struct p3l *s = ctx;

    s->busy++;
}

static void p3l_reply_end(void *ctx)
{
    struct p3l *s = ctx;

    if (s->state == P3L_AUTH && !sasl_server_waiting(s->sv))
        s->state = P3L_CMD;     /* e.g. SCRAM's server-first is out */
    p3l_process(s);
    p3l_leave(s);
}

static const struct sasl_server_ops p3l_sasl_ops = {
    .challenge = p3l_challenge,
    .done = p3l_done,
    .reply_begin = p3l_reply_begin,
    .reply_end = p3l_reply_end,
};

/* ---- hand-over and proxy ----------------------------------------------------- */

static void p3l_handover_failed(struct p3l *s, const char *why)
{
    log_warning("cannot hand user %s to pop3d: %s: rip=%s", s->auth_user,
                why, s->addr);
    explicit_bzero(s->token, sizeof(s->token));
    ev_timer_stop(s->loop, &s->ho_timer);
    if (s->ho_fd >= 0) {
        ev_io_remove(s->loop, s->ho_fd);
        (void)close(s->ho_fd);
        s->ho_fd = -1;
    }
    if (s->pair_fd >= 0) {
        (void)close(s->pair_fd);
        s->pair_fd = -1;
    }
    p3l_reply(s, "-ERR [SYS/TEMP] Internal login failure. Try again later.");
    if (s->st != NULL)
        stream_set_timeout(s->st, var_pop3d_timeout > 0
                                  ? (int)var_pop3d_timeout : 0);
    s->state = P3L_CMD;
    p3l_process(s);
}

static void p3l_proxy_read(stream_t *from, void *ctx);
static void p3l_proxy_drain(stream_t *st, void *ctx);
static void p3l_proxy_close(stream_t *st, void *ctx,
                            enum stream_close_reason why);
static const struct stream_handler p3l_pair_handler = {
    .on_read = p3l_proxy_read,
    .on_close = p3l_proxy_close,
    .on_drain = p3l_proxy_drain,
};

/* p3l_logged_in - pop3d took the client */
static void p3l_logged_in(struct p3l *s)
{
    const char *p;
    size_t n = s->st != NULL ? stream_peek(s->st, &p) : 0;

    s->logged_in = true;
    log_info("Login: user=<%s>, method=%s, rip=%s, lip=%s%s", s->auth_user,
             s->method, s->addr, s->laddr, p3l_tls_suffix(s));
    if (s->st != NULL)
        stream_consume(s->st, n);       /* it went in the request */
    if (s->pair_fd < 0) {
        /* plaintext: pop3d has the descriptor; ours goes quietly */
        s->state = P3L_DONE;
        if (s->st != NULL) {
            stream_abandon(s->st);
            s->st = NULL;
        }
        return;
    }
    s->pair = stream_new(s->loop, s->pair_fd, 64 * 1024, 0,
                         &p3l_pair_handler, s);
    if (s->pair == NULL) {
        log_warning("proxy for %s: %s", s->auth_user, strerror(errno));
        (void)close(s->pair_fd);
        s->pair_fd = -1;
        p3l_close(s);
        return;
    }
    s->pair_fd = -1;
    s->state = P3L_PROXY;
    if (s->st != NULL) {
        /* pop3d keeps the session's idle timeout now (and says so to the
           client); ours is only the backstop */
        if (var_pop3d_timeout > 0)
            stream_set_timeout(s->st, (int)var_pop3d_timeout + 60);
        stream_pause_read(s->st, false);
    }
}

static void p3l_ho_readable(ev_loop_t *loop, int fd, unsigned events,
                            void *arg)
{
    struct p3l *s = arg;
    char reason[256];
    const char *err = NULL;

    (void)loop;
    (void)events;
    s->busy++;
    int r = login_handover_reply_read(fd, 1000, reason, sizeof(reason), &err);
    ev_io_remove(s->loop, s->ho_fd);
    (void)close(s->ho_fd);
    s->ho_fd = -1;
    ev_timer_stop(s->loop, &s->ho_timer);
    explicit_bzero(s->token, sizeof(s->token));
    if (r == 1)
        p3l_logged_in(s);
    else
        p3l_handover_failed(s, r == 0 ? reason : err);
    p3l_leave(s);
}

static void p3l_ho_timeout(ev_loop_t *loop, void *arg)
{
    struct p3l *s = arg;

    (void)loop;
    s->busy++;
    p3l_handover_failed(s, "no answer from pop3d");
    p3l_leave(s);
}

/* p3l_handover_send - the request to pop3d, with the client (or our
   socketpair's other end) attached */
static void p3l_handover_send(struct p3l *s)
{
    static struct login_handover h;
    const char *p, *err = NULL;
    size_t n = stream_peek(s->st, &p);
    int sp[2] = { -1, -1 }, pass_fd;

    s->ho_pending = false;
    memset(&h, 0, sizeof(h));
    if (n > LOGIN_INPUT_MAX) {
        p3l_handover_failed(s, "too much pipelined input");
        return;
    }
    (void)str_copy(h.service, "pop3", sizeof(h.service));
    (void)str_copy(h.user, s->auth_user, sizeof(h.user));
    (void)str_copy(h.token, s->token, sizeof(h.token));
    (void)str_copy(h.mechanism, s->method, sizeof(h.mechanism));
    (void)str_copy(h.client_address, s->addr, sizeof(h.client_address));
    (void)str_copy(h.local_address, s->laddr, sizeof(h.local_address));
    h.client_port = s->port;
    h.local_port = s->lport;
    h.tls = p3l_tls_on(s);
    if (h.tls) {
        tls_conn_t *c = stream_tls(s->st);
        (void)snprintf(h.tls_info, sizeof(h.tls_info), "%s with cipher %s",
                       tls_conn_version(c), tls_conn_cipher(c));
    }
    (void)str_copy(h.session, s->id, sizeof(h.session));
    memcpy(h.input, p, n);
    h.input_len = n;
    if (h.tls) {
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) {
            login_handover_clear(&h);
            p3l_handover_failed(s, strerror(errno));
            return;
        }
        pass_fd = sp[1];
        s->pair_fd = sp[0];
    } else {
        pass_fd = stream_fd(s->st);
    }
    /* from here on the client may be pop3d's: no idle timeout of ours
       may say goodbye on it (ho_timer bounds the wait) */
    stream_set_timeout(s->st, 0);
    s->ho_fd = login_handover_send(P3L_MAIL_PATH, &h, pass_fd, &err);
    login_handover_clear(&h);
    if (sp[1] >= 0)
        (void)close(sp[1]);     /* pop3d has its own copy now */
    if (s->ho_fd < 0) {
        p3l_handover_failed(s, err);
        return;
    }
    if (ev_io_add(s->loop, s->ho_fd, EV_READ, p3l_ho_readable, s) < 0) {
        p3l_handover_failed(s, strerror(errno));
        return;
    }
    ev_timer_set(s->loop, &s->ho_timer, (uint64_t)var_ipc_timeout * 1000);
}

/* p3l_proxy_other - the stream across from st */
static stream_t *p3l_proxy_other(struct p3l *s, stream_t *st)
{
    return st == s->st ? s->pair : s->st;
}

/* p3l_proxy_move - copy what from has buffered to the other side; pause
   from while the other side has too much queued */
static void p3l_proxy_move(struct p3l *s, stream_t *from)
{
    stream_t *to = p3l_proxy_other(s, from);
    const char *p;
    size_t n;

    if (to == NULL)
        return;
    while ((n = stream_peek(from, &p)) > 0
           && stream_output_pending(to) < P3L_PROXY_HIGH) {
        size_t room = P3L_PROXY_HIGH - stream_output_pending(to);
        if (n > room)
            n = room;
        stream_write(to, p, n);
        stream_consume(from, n);
    }
    stream_pause_read(from, stream_output_pending(to) >= P3L_PROXY_HIGH);
}

static void p3l_proxy_read(stream_t *from, void *ctx)
{
    struct p3l *s = ctx;

    s->busy++;
    p3l_proxy_move(s, from);
    p3l_leave(s);
}

static void p3l_proxy_drain(stream_t *st, void *ctx)
{
    struct p3l *s = ctx;
    stream_t *other;

    s->busy++;
    other = p3l_proxy_other(s, st);
    if (other != NULL)
        p3l_proxy_move(s, other);     /* it may send again */
    p3l_leave(s);
}

/* p3l_proxy_close - one side ended: flush to the other and close it */
static void p3l_proxy_close(stream_t *st, void *ctx,
                            enum stream_close_reason why)
{
    struct p3l *s = ctx;
    stream_t *other;

    (void)why;
    s->busy++;
    other = p3l_proxy_other(s, st);
    if (other != NULL)
        p3l_proxy_move(s, st);        /* its last bytes */
    if (st == s->st)
        s->st = NULL;
    else
        s->pair = NULL;
    if (other != NULL) {
        stream_close(other);
        if (other == s->st)
            s->st = NULL;
        else
            s->pair = NULL;
    }
    s->state = P3L_DONE;
    p3l_leave(s);
}

/* ---- the client stream ------------------------------------------------------- */

static void p3l_on_read(stream_t *st, void *ctx)
{
    struct p3l *s = ctx;

    s->busy++;
    if (s->state == P3L_PROXY)
        p3l_proxy_move(s, st);
    else
        p3l_process(s);
    p3l_leave(s);
}

static void p3l_on_drain(stream_t *st, void *ctx)
{
    struct p3l *s = ctx;

    s->busy++;
    if (s->state == P3L_HANDOVER && s->ho_pending)
        p3l_handover_send(s);
    else
        p3l_proxy_drain(st, ctx);
    p3l_leave(s);
}

static void p3l_on_close(stream_t *st, void *ctx, enum stream_close_reason why)
{
    struct p3l *s = ctx;

    s->busy++;
    if (s->state == P3L_PROXY) {
        p3l_proxy_close(st, ctx, why);
    } else {
        if (why == STREAM_TIMEOUT) {
            /* the reply still goes out: the stream lingers */
            stream_puts(st, "-ERR Disconnected for inactivity.\r\n");
            log_info("Disconnected: Inactivity: rip=%s", s->addr);
        }
        s->st = NULL;
        s->state = P3L_DONE;
        sasl_server_abort(s->sv);
    }
    p3l_leave(s);
}

static const struct stream_handler p3l_handler = {
    .on_read = p3l_on_read,
    .on_close = p3l_on_close,
    .on_drain = p3l_on_drain,
};

/* p3l_session_id - 12 characters of [0-9A-Za-z] */
static void p3l_session_id(char *out)
{
    static const char digits[] =
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    unsigned char r[12];

    if (getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
        memset(r, 0, sizeof(r));
    for (size_t i = 0; i < sizeof(r); i++)
        out[i] = digits[r[i] % 62];
    out[sizeof(r)] = '\0';
}

/* p3l_addr - the address in auth_proto/login_handover's alphabet */
static void p3l_addr(const struct sockaddr *sa, char *out, size_t size,
                     int *port)
{
    if (sa == NULL || netaddr_str(sa, out, size) == NULL || *out == '\0'
        || strspn(out, "0123456789abcdefABCDEF.:_%-") != strlen(out))
        (void)str_copy(out, "unknown", size);
    *port = sa != NULL ? netaddr_port(sa) : 0;
    if (*port < 0 || *port > 65535)
        *port = 0;
}

static void p3l_connect(ev_loop_t *loop, int fd, const struct sockaddr *peer,
                        socklen_t peerlen, const struct sockaddr *local)
{
    struct p3l *s = xcalloc(1, sizeof(*s));
    size_t max_line = sasl_server_response_max("SCRAM-SHA-256");
    int timeout = var_pop3d_timeout > 0 ? (int)var_pop3d_timeout : 0;

    (void)peerlen;
    if (max_line < POP3_LINE_MAX)
        max_line = POP3_LINE_MAX;
    s->loop = loop;
    s->ho_fd = s->pair_fd = -1;
    p3l_addr(peer, s->addr, sizeof(s->addr), &s->port);
    p3l_addr(local, s->laddr, sizeof(s->laddr), &s->lport);
    (void)snprintf(s->namaddr, sizeof(s->namaddr), "unknown[%s]", s->addr);
    p3l_session_id(s->id);
    ev_timer_init(&s->delay, p3l_delay_done, s);
    ev_timer_init(&s->ho_timer, p3l_ho_timeout, s);
    s->next = p3l_sessions;
    if (p3l_sessions != NULL)
        p3l_sessions->prev = s;
    p3l_sessions = s;
    s->sv = sasl_server_new(loop, P3L_AUTH_PATH, "pop3",
                            (unsigned)var_ipc_timeout * 1000, &p3l_sasl_ops,
                            s);
    s->busy = 1;
    s->st = stream_new(loop, fd, max_line + 2, timeout, &p3l_handler, s);
    if (s->st == NULL) {
        log_warning("connection from %s: %s", s->addr, strerror(errno));
        (void)close(fd);
        p3l_leave(s);
        return;
    }
    if (var_pop3d_tls_wrappermode) {
        if (p3l_tls_ctx == NULL) {
            log_info("no TLS for wrapper mode: disconnect rip=%s", s->addr);
            p3l_close(s);
        } else if (stream_start_tls(s->st, p3l_tls_ctx, true,
                                    p3l_tls_done) < 0) {
            p3l_close(s);
        } else {
            s->state = P3L_TLS;
        }
    } else {
        p3l_greet(s);
    }
    p3l_leave(s);
}

/* p3l_stop - SIGTERM: every session is told and closed */
static void p3l_stop(void)
{
    struct p3l *s, *next;

    for (s = p3l_sessions; s != NULL; s = next) {
        next = s->next;
        s->busy++;
        if (s->state == P3L_HANDOVER && s->ho_fd >= 0 && s->pair_fd < 0
            && s->st != NULL) {
            /* pop3d may hold the client already: leave it alone */
            stream_abandon(s->st);
            s->st = NULL;
        } else if (s->state != P3L_PROXY && s->state != P3L_TLS
                   && s->state != P3L_DONE) {
            p3l_reply(s, "-ERR [SYS/TEMP] Server shutting down.");
        }
        p3l_close(s);
        p3l_leave(s);
    }
}

/* p3l_tls_init - the server context (pre_init, as root) */
static void p3l_tls_init(void)
{
    char *err = NULL;
    struct tls_server_params p = {
        .protocols = var_pop3d_tls_protocols,
        .protocols_name = "pop3d_tls_protocols",
        .ciphers = var_pop3d_tls_ciphers,
        .chain_files = var_pop3d_tls_chain_files,
        .cert_file = var_pop3d_tls_cert_file,
        .key_file = var_pop3d_tls_key_file,
    };

    if (strcmp(var_pop3d_tls_security_level, "none") == 0
        && !var_pop3d_tls_wrappermode)
        return;
    p3l_tls_ctx = tls_server_ctx_new(&p, &err);
    if (p3l_tls_ctx == NULL) {
        log_warning("pop3d TLS: %s; %s", err ? err : "unknown error",
                    var_pop3d_tls_wrappermode
                    ? "TLS wrapper mode connections are closed"
                    : "STLS is not offered");
        free(err);
    }
}

static void p3l_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    p3l_ops.client_limit = var_pop3d_client_limit > 0
                           ? (size_t)var_pop3d_client_limit : 1;
    p3l_tls_init();
}

static void p3l_pre_exit(void)
{
    tls_ctx_free(p3l_tls_ctx);
    p3l_tls_ctx = NULL;
}

int main(int argc, char **argv)
{
    p3l_ops.pre_init = p3l_pre_init;
    p3l_ops.pre_exit = p3l_pre_exit;
    p3l_ops.on_stop = p3l_stop;
    p3l_ops.on_connect = p3l_connect;
    p3l_ops.client_limit = 100;     /* replaced by pop3d_client_limit */
    p3l_ops.login_process = true;
    return event_server_main(argc, argv, &p3l_ops);
}
