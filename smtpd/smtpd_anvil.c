/*
 * smtpd_anvil - per-client connection count and rate limits, counted by
 * the anvil service (anvil/anvil.c) across every smtpd process, over one
 * persistent connection to private/anvil per smtpd process.
 *
 * Requests are blocking (a local round trip, bounded by
 * SMTPD_ANVIL_TIMEOUT) like Postfix's anvil client. When anvil cannot be
 * reached the limits are not enforced (fail open: the alternative would
 * refuse every client); that is logged at most once a minute.
 */
#include "smtpd.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define SMTPD_ANVIL_PATH "private/anvil"
#define SMTPD_ANVIL_TIMEOUT 2           /* seconds per message */
#define SMTPD_ANVIL_WARN_MSEC 60000

static int anvil_fd = -1;
static buf_t anvil_inbuf = BUF_INIT;
static netlist_t *anvil_exceptions;
static uint64_t anvil_warned;

int smtpd_anvil_init(void)
{
    const char *err = NULL;

    anvil_exceptions = netlist_parse(var_smtpd_client_event_limit_exceptions,
                                     &err);
    if (anvil_exceptions == NULL) {
        log_error("bad smtpd_client_event_limit_exceptions value \"%s\": %s",
                  var_smtpd_client_event_limit_exceptions,
                  err ? err : "malformed");
        return -1;
    }
    return 0;
}

void smtpd_anvil_free(void)
{
    if (anvil_exceptions != NULL)
        netlist_free(anvil_exceptions);
    anvil_exceptions = NULL;
    if (anvil_fd >= 0)
        (void)close(anvil_fd);
    anvil_fd = -1;
    buf_free(&anvil_inbuf);
}

static void anvil_drop(const char *what, const char *why)
{
    uint64_t now = time_mono_msec();

    if (anvil_fd >= 0)
        (void)close(anvil_fd);
    anvil_fd = -1;
    buf_reset(&anvil_inbuf);
    if (anvil_warned == 0 || now - anvil_warned >= SMTPD_ANVIL_WARN_MSEC) {
        log_warning("%s %s: %s; client connection limits are not enforced",
                    what, SMTPD_ANVIL_PATH, why);
        anvil_warned = now ? now : 1;
    }
}

/* anvil_call - one request/reply; 0 ok, -1 (logged) anvil unavailable */
static int anvil_call(const attr_list_t *req, attr_list_t *reply)
{
    const char *err = NULL;
    bool in_progress;

    for (int attempt = 0; attempt < 2; attempt++) {
        if (anvil_fd < 0) {
            anvil_fd = unix_connect_nonblock(SMTPD_ANVIL_PATH, &in_progress);
            if (anvil_fd < 0 || in_progress) {
                anvil_drop("connect to", anvil_fd < 0 ? strerror(errno)
                                                      : "busy");
                return -1;
            }
        }
        /* a kept connection may have been closed by an anvil restart:
           a failure on it is retried once on a new one */
        if (attr_write_fd(anvil_fd, req, SMTPD_ANVIL_TIMEOUT) == 0
            && attr_read_fd(anvil_fd, &anvil_inbuf, reply,
                            SMTPD_ANVIL_TIMEOUT, &err) == 1)
            return 0;
        if (attempt == 1)
            anvil_drop("request to", err ? err : strerror(errno));
        else {
            (void)close(anvil_fd);
            anvil_fd = -1;
            buf_reset(&anvil_inbuf);
        }
    }
    return -1;
}

static void anvil_ident(const struct smtpd_session *s, buf_t *out)
{
    (void)buf_printf(out, "%s:%s", server_service_name(), s->addr);
}

bool smtpd_anvil_connect(struct smtpd_session *s)
{
    attr_list_t req, reply;
    buf_t ident = BUF_INIT;
    long count = 0, rate = 0;
    bool ok = true;

    if ((var_smtpd_client_connection_count_limit <= 0
         && var_smtpd_client_connection_rate_limit <= 0)
        || netlist_match(anvil_exceptions, (const struct sockaddr *)&s->peer))
        return true;
    attr_list_init(&req);
    attr_list_init(&reply);
    anvil_ident(s, &ident);
    attr_add(&req, "request", "connect");
    attr_add(&req, "ident", buf_str(&ident));
    if (anvil_call(&req, &reply) == 0) {
        if (attr_get_long(&reply, "count", 0, LONG_MAX, &count) < 0
            || attr_get_long(&reply, "rate", 0, LONG_MAX, &rate) < 0) {
            anvil_drop("reply from", "malformed");
        } else {
            s->anvil_counted = true;
            if (var_smtpd_client_connection_count_limit > 0
                && count > var_smtpd_client_connection_count_limit) {
                log_warning("Connection concurrency limit exceeded: %ld from "
                            "%s for service %s", count, s->namaddr,
                            server_service_name());
                ok = false;
            } else if (var_smtpd_client_connection_rate_limit > 0
                       && rate > var_smtpd_client_connection_rate_limit) {
                log_warning("Connection rate limit exceeded: %ld from %s for "
                            "service %s", rate, s->namaddr,
                            server_service_name());
                ok = false;
            }
        }
    }
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&ident);
    return ok;
}

bool smtpd_anvil_auth(struct smtpd_session *s)
{
    attr_list_t req, reply;
    buf_t ident = BUF_INIT;
    long rate = 0;
    bool ok = true;

    if (var_smtpd_client_auth_rate_limit <= 0
        || netlist_match(anvil_exceptions, (const struct sockaddr *)&s->peer))
        return true;
    attr_list_init(&req);
    attr_list_init(&reply);
    anvil_ident(s, &ident);
    attr_add(&req, "request", "auth");
    attr_add(&req, "ident", buf_str(&ident));
    if (anvil_call(&req, &reply) == 0) {
        if (attr_get_long(&reply, "rate", 0, LONG_MAX, &rate) < 0) {
            anvil_drop("reply from", "malformed");
        } else if (rate > var_smtpd_client_auth_rate_limit) {
            log_warning("AUTH command rate limit exceeded: %ld from %s for "
                        "service %s", rate, s->namaddr,
                        server_service_name());
            ok = false;
        }
    }
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&ident);
    return ok;
}

void smtpd_anvil_disconnect(struct smtpd_session *s)
{
    attr_list_t req, reply;
    buf_t ident = BUF_INIT;

    if (!s->anvil_counted)
        return;
    s->anvil_counted = false;
    attr_list_init(&req);
    attr_list_init(&reply);
    anvil_ident(s, &ident);
    attr_add(&req, "request", "disconnect");
    attr_add(&req, "ident", buf_str(&ident));
    (void)anvil_call(&req, &reply);
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&ident);
}
