/*
 * smtp_conn - one connection to a server: connect, bounded line reads,
 * writes, STARTTLS, each within a deadline.
 *
 * The socket is non-blocking and every wait is a poll(2) with what is
 * left of the operation's deadline, so a server that stops talking, or
 * talks one byte a minute, costs at most that stage's timeout. A reply
 * line is at most SMTP_REPLY_LINE_MAX bytes and a reply at most
 * smtp_reply.h's limits; anything else is an error and the connection
 * is dropped. With TLS the same reads and writes go through tls_conn_*
 * (lib/util/tls.h), waiting for what OpenSSL wants.
 */
#include "smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/sys.h"
#include "util/util.h"

static uint64_t smtp_ms_now(void)
{
    struct timespec ts;

    (void)clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void smtp_conn_fail(smtp_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void smtp_conn_fail(smtp_conn_t *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    (void)vsnprintf(c->error, sizeof(c->error), fmt, ap);
    va_end(ap);
}

/* smtp_conn_wait - poll for events until deadline: 1 ready, 0 timeout */
static int smtp_conn_wait(smtp_conn_t *c, short events, uint64_t deadline)
{
    for (;;) {
        uint64_t now = smtp_ms_now();
        struct pollfd p = { c->fd, events, 0 };
        int rc;

        if (now >= deadline)
            return 0;
        rc = poll(&p, 1, (int)(deadline - now > 60000 ? 60000
                                                      : deadline - now));
        if (rc > 0)
            return 1;
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

void smtp_conn_init(smtp_conn_t *c)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    smtp_reply_init(&c->reply);
}

int smtp_conn_open(smtp_conn_t *c, const struct smtp_addr *a, int port,
                   int timeout)
{
    struct sockaddr_storage sa = a->sa;
    uint64_t deadline = smtp_ms_now() + (uint64_t)timeout * 1000;
    int err = 0;
    socklen_t len = sizeof(err);

    smtp_conn_close(c);
    (void)snprintf(c->host, sizeof(c->host), "%s", a->host);
    (void)snprintf(c->ip, sizeof(c->ip), "%s", a->ip);
    c->port = port;
    (void)snprintf(c->relay, sizeof(c->relay), "%s[%s]:%d", a->host, a->ip,
                   port);
    (void)snprintf(c->peer, sizeof(c->peer), "%s[%s]", a->host, a->ip);
    if (sa.ss_family == AF_INET)
        ((struct sockaddr_in *)&sa)->sin_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in6 *)&sa)->sin6_port = htons((uint16_t)port);
    c->fd = socket(sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        smtp_conn_fail(c, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, a->salen) < 0) {
        if (errno != EINPROGRESS) {
            smtp_conn_fail(c, "connect to %s[%s]:%d: %s", a->host, a->ip,
                           port, strerror(errno));
            smtp_conn_close(c);
            return -1;
        }
        if (smtp_conn_wait(c, POLLOUT, deadline) <= 0) {
            smtp_conn_fail(c, "connect to %s[%s]:%d: Connection timed out",
                           a->host, a->ip, port);
            smtp_conn_close(c);
            return -1;
        }
        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            smtp_conn_fail(c, "connect to %s[%s]:%d: %s", a->host, a->ip,
                           port, strerror(err));
            smtp_conn_close(c);
            return -1;
        }
    }
    c->opened_usec = time_now_usec();
    return 0;
}

void smtp_conn_close(smtp_conn_t *c)
{
    if (c->tls != NULL) {
        (void)tls_conn_shutdown(c->tls);
        tls_conn_free(c->tls);
        c->tls = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->in_pos = c->in_len = 0;
    c->features = 0;
    c->size_limit = 0;
    c->nexthop_key[0] = '\0';
}

/* smtp_conn_fill - read more input; 1 got some, -1 error/EOF/timeout */
static int smtp_conn_fill(smtp_conn_t *c, uint64_t deadline)
{
    if (c->in_pos > 0) {
        memmove(c->in, c->in + c->in_pos, c->in_len - c->in_pos);
        c->in_len -= c->in_pos;
        c->in_pos = 0;
    }
    for (;;) {
        ssize_t n;
        short ev = POLLIN;

        if (c->tls != NULL) {
            n = tls_conn_read(c->tls, c->fd, c->in + c->in_len,
                              sizeof(c->in) - c->in_len);
            if (n < 0 && errno == EAGAIN)
                ev = tls_conn_want(c->tls, TLS_OP_READ) & TLS_WANT_WRITE
                     ? POLLOUT : POLLIN;
        } else {
            n = read(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len);
        }
        if (n > 0) {
            c->in_len += (size_t)n;
            return 1;
        }
        if (n == 0) {
            smtp_conn_fail(c, "lost connection with %s", c->peer);
            return -1;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            smtp_conn_fail(c, "lost connection with %s (%s)", c->peer,
                           c->tls ? tls_conn_error(c->tls) : strerror(errno));
            return -1;
        }
        if (smtp_conn_wait(c, ev, deadline) <= 0) {
            smtp_conn_fail(c, "conversation with %s timed out", c->peer);
            return -1;
        }
    }
}

int smtp_conn_reply(smtp_conn_t *c, int timeout)
{
    uint64_t deadline = smtp_ms_now() + (uint64_t)timeout * 1000;
    const char *err = NULL;

    smtp_reply_reset(&c->reply);
    for (;;) {
        char *start = c->in + c->in_pos;
        char *nl = memchr(start, '\n', c->in_len - c->in_pos);
        size_t len;
        int rc;

        if (nl == NULL) {
            if (c->in_len - c->in_pos >= SMTP_REPLY_LINE_MAX) {
                smtp_conn_fail(c, "reply line from %s too long", c->peer);
                return -1;
            }
            if (smtp_conn_fill(c, deadline) < 0)
                return -1;
            continue;
        }
        len = (size_t)(nl - start);
        c->in_pos += len + 1;
        if (len > 0 && start[len - 1] == '\r')
            len--;
        if (len > SMTP_REPLY_LINE_MAX) {
            smtp_conn_fail(c, "reply line from %s too long", c->peer);
            return -1;
        }
        rc = smtp_reply_feed(&c->reply, start, len, &err);
        if (rc < 0) {
            smtp_conn_fail(c, "%s from %s", err, c->peer);
            return -1;
        }
        if (rc == 1)
            return 0;
    }
}

int smtp_conn_write(smtp_conn_t *c, const void *p, size_t n, int timeout)
{
    uint64_t deadline = smtp_ms_now() + (uint64_t)timeout * 1000;
    const char *s = p;

    while (n > 0) {
        ssize_t w;
        short ev = POLLOUT;

        if (c->tls != NULL) {
            w = tls_conn_write(c->tls, c->fd, s, n);
            if (w < 0 && errno == EAGAIN)
                ev = tls_conn_want(c->tls, TLS_OP_WRITE) & TLS_WANT_READ
                     ? POLLIN : POLLOUT;
        } else {
            w = send(c->fd, s, n, MSG_NOSIGNAL);
        }
        if (w > 0) {
            s += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w == 0 || errno != EAGAIN) {
            smtp_conn_fail(c, "lost connection with %s (%s)", c->peer,
                           c->tls ? tls_conn_error(c->tls) : strerror(errno));
            return -1;
        }
        if (smtp_conn_wait(c, ev, deadline) <= 0) {
            smtp_conn_fail(c, "conversation with %s timed out", c->peer);
            return -1;
        }
    }
    return 0;
}

int smtp_conn_printf(smtp_conn_t *c, int timeout, const char *fmt, ...)
{
    char line[2048];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(line)) {
        smtp_conn_fail(c, "command too long");
        return -1;
    }
    return smtp_conn_write(c, line, (size_t)n, timeout);
}

int smtp_conn_starttls(smtp_conn_t *c, tls_ctx_t *ctx, const char *sni,
                       const char *const *names, size_t nnames, int timeout)
{
    uint64_t deadline = smtp_ms_now() + (uint64_t)timeout * 1000;
    char *err = NULL;

    /* plaintext input after the 220 must never be read as TLS data */
    c->in_pos = c->in_len = 0;
    c->tls = tls_conn_new(ctx, c->fd, false, &err);
    if (c->tls == NULL) {
        smtp_conn_fail(c, "TLS set-up: %s", err ? err : "failed");
        free(err);
        return -1;
    }
    if (sni != NULL && *sni && tls_conn_set_servername(c->tls, sni) < 0) {
        smtp_conn_fail(c, "TLS set-up: bad server name %s", sni);
        return -1;
    }
    if (tls_conn_set_verify_names(c->tls, names, nnames) < 0) {
        smtp_conn_fail(c, "TLS set-up: bad certificate match names");
        return -1;
    }
    for (;;) {
        int rc = tls_conn_handshake(c->tls);
        unsigned want;

        if (rc == 1)
            return 0;
        if (rc < 0) {
            smtp_conn_fail(c, "TLS handshake with %s failed: %s", c->peer,
                           tls_conn_error(c->tls));
            return -1;
        }
        want = tls_conn_want(c->tls, TLS_OP_HANDSHAKE);
        if (smtp_conn_wait(c, want & TLS_WANT_WRITE ? POLLOUT : POLLIN,
                           deadline) <= 0) {
            smtp_conn_fail(c, "TLS handshake with %s timed out", c->peer);
            return -1;
        }
    }
}
