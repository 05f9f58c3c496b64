/*
 * smtp - the outbound SMTP client, a delivery agent. A request server:
 * qmgr sends delivery requests (deliver.h) naming one queue file and up
 * to DELIVER_MAX_RCPTS of its recipients for one next hop; smtp looks
 * up the servers (smtp_addr.c), tries them in order (smtp_proto.c),
 * marks each recipient that was delivered or bounced in the queue file,
 * logs every recipient's outcome and replies.
 *
 * One request at a time per process: the dialogue and the DNS lookups
 * block, each stage bounded by its timeout. A connection whose
 * transaction ended cleanly is kept (after RSET) for the next request
 * to the same next hop, for at most $smtp_connection_cache_time_limit
 * idle and $smtp_connection_reuse_time_limit after it was opened.
 *
 * Security: the servers are hostile; every read is bounded
 * (smtp_conn.c, smtp_reply.c) and timed. smtp runs as $mail_owner,
 * chrooted to the queue directory when master.conf says so; the
 * resolver and the TLS contexts (CA files) are prepared before that.
 * A request is only a claim: smtp_queue.c checks the file it names.
 */
#include "smtp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/deliver_log.h"
#include "mail/deliver_request.h"
#include "mail/queue.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/sys.h"

#define SMTP_ADDR_MAX 64

static smtp_conn_t smtp_cached;        /* a reusable session, or fd -1 */

static void smtp_pre_init(const char *service, char **args, int nargs)
{
    const char *err = NULL;
    char why[512];

    if (smtp_addr_init(&err) < 0)
        log_warning("DNS resolver set-up (dns_forwarders = %s, "
                    "dns_hosts_file = %s): %s; deliveries defer",
                    var_dns_forwarders, var_dns_hosts_file, err);
    if (smtp_tls_init(why, sizeof(why)) < 0)
        log_warning("TLS set-up: %s; deliveries that need TLS defer", why);
    smtp_conn_init(&smtp_cached);
}

static void smtp_post_init(ev_loop_t *loop)
{
    srandom((unsigned)(time_now_usec() ^ (uint64_t)getpid()));
    smtp_addr_post_init();
}

static void smtp_pre_exit(void)
{
    smtp_proto_quit(&smtp_cached);
    smtp_reply_free(&smtp_cached.reply);
}

/* smtp_log - the status line of one recipient */
static void smtp_log(const struct smtp_msg *msg, const struct smtp_rcpt *r,
                     const char *address)
{
    static const char *status[] = { [DELIVER_OK] = "sent",
                                    [DELIVER_DEFER] = "deferred",
                                    [DELIVER_BOUNCE] = "bounced" };
    struct deliver_times t = { msg->arrival_usec, msg->active_usec,
                               msg->start_usec, r->conn_usec, time_now_usec() };
    const char *orig = r->qr && r->qr->orcpt ? r->qr->orcpt : NULL;

    deliver_log_status(msg->queue_id, address, orig,
                       r->relay[0] ? r->relay : "none", &t, r->dsn,
                       status[r->status], r->reason);
}

/* smtp_cache_take - the cached session if it may serve key */
static bool smtp_cache_take(const char *key)
{
    uint64_t now = time_now_usec();
    smtp_conn_t *c = &smtp_cached;

    if (c->fd < 0)
        return false;
    if (strcmp(c->nexthop_key, key) != 0
        || now - c->idle_usec > (uint64_t)var_smtp_connection_cache_time_limit
                                * 1000000
        || now - c->opened_usec > (uint64_t)var_smtp_connection_reuse_time_limit
                                  * 1000000) {
        smtp_proto_quit(c);
        return false;
    }
    return true;
}

/* smtp_deliver_dest - every open recipient of rcpts to one destination */
static void smtp_deliver_dest(const char *nexthop, const char *domain,
                              struct smtp_msg *msg, struct smtp_rcpt *rcpts,
                              size_t n, bool *dead_r)
{
    static struct smtp_addr addrs[SMTP_ADDR_MAX];
    const char *dest = *nexthop ? nexthop : domain;
    struct smtp_tls_policy tls;
    char reason[SMTP_REASON_MAX], dsn[SMTP_DSN_MAX];
    size_t max = var_smtp_mx_address_limit > 0
                 && var_smtp_mx_address_limit < SMTP_ADDR_MAX
                 ? (size_t)var_smtp_mx_address_limit : SMTP_ADDR_MAX;
    size_t naddr;
    int port = 25, status;
    bool reached = false, dead;
    smtp_conn_t *c = &smtp_cached;

    *dead_r = false;
    if (smtp_tls_policy(dest, &tls, reason, sizeof(reason)) < 0) {
        for (size_t i = 0; i < n; i++)
            if (!rcpts[i].done)
                smtp_rcpt_set(&rcpts[i], DELIVER_DEFER, "4.7.5", "%s", reason);
        return;
    }
    /* a cached session first: it was good a moment ago */
    if (smtp_cache_take(dest)) {
        if (smtp_proto_deliver(c, false, dest, &tls, msg, rcpts, n,
                               &dead) == 0) {
            if (smtp_proto_rset(c) == 0)
                c->idle_usec = time_now_usec();
            else
                smtp_conn_close(c);
            return;
        }
        smtp_conn_close(c);
        /* a lost cached session is no verdict on the server: retry the
           open recipients fresh */
        for (size_t i = 0; i < n; i++)
            if (!rcpts[i].done)
                rcpts[i].relay[0] = '\0';
    }
    naddr = smtp_addr_resolve(nexthop, domain, addrs, max, &port, &status,
                              dsn, reason, sizeof(reason));
    if (naddr == 0) {
        for (size_t i = 0; i < n; i++) {
            if (rcpts[i].done)
                continue;
            smtp_rcpt_set(&rcpts[i], status, dsn, "%s", reason);
            rcpts[i].done = status != DELIVER_DEFER;
        }
        return;
    }
    for (size_t a = 0; a < naddr; a++) {
        bool open = false, plain_retry = false;
        struct smtp_tls_policy use = tls;
        int rc;

        for (size_t i = 0; i < n; i++)
            open |= !rcpts[i].done;
        if (!open)
            break;
again:
        if (smtp_conn_open(c, &addrs[a], port,
                           (int)var_smtp_connect_timeout) < 0) {
            for (size_t i = 0; i < n; i++)
                if (!rcpts[i].done)
                    smtp_rcpt_set(&rcpts[i], DELIVER_DEFER, "4.4.1", "%s",
                                  c->error);
            continue;
        }
        rc = smtp_proto_deliver(c, true, dest, &use, msg, rcpts, n, &dead);
        if (!dead)
            reached = true;
        if (rc == -2 && !plain_retry) {
            /* 'may': the handshake failed, plain text over a new
               connection to the same address */
            smtp_conn_close(c);
            use.level = SMTP_TLS_NONE;
            plain_retry = true;
            goto again;
        }
        if (rc == 0 && var_smtp_connection_cache_time_limit > 0) {
            bool more = false;

            for (size_t i = 0; i < n; i++)
                more |= !rcpts[i].done;
            if (more && a + 1 < naddr) {
                /* open recipients (4xx) try the next address */
                smtp_proto_quit(c);
            } else if (smtp_proto_rset(c) == 0) {
                /* kept for the next request to this destination */
                (void)snprintf(c->nexthop_key, sizeof(c->nexthop_key), "%s",
                               dest);
                c->idle_usec = time_now_usec();
            } else {
                smtp_conn_close(c);
            }
        } else if (rc == 0) {
            smtp_proto_quit(c);
        } else {
            smtp_conn_close(c);
        }
    }
    *dead_r = !reached;
}

/* smtp_rcpt_domain - the domain of an address ("" when none) */
static const char *smtp_rcpt_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');

    return at ? at + 1 : "";
}

static int smtp_handle(attr_list_t *req, attr_list_t *reply, void *ctx)
{
    static struct smtp_rcpt rcpts[DELIVER_MAX_RCPTS];
    deliver_request_t dr;
    struct smtp_msg msg;
    queue_msg_t m;
    const char *err = NULL;
    char reason[SMTP_REASON_MAX];
    bool any_reached = false, any_dead = false;
    bool taken[DELIVER_MAX_RCPTS] = { false };

    (void)ctx;
    memset(&msg, 0, sizeof(msg));
    msg.start_usec = time_now_usec();
    if (deliver_request_parse(req, &dr, DELIVER_MAX_RCPTS, &err) < 0) {
        const char *qid = attr_get(req, DA_QUEUE_ID);

        log_warning("%s: delivery request refused: malformed delivery "
                    "request: %s", queue_id_valid(qid) ? qid
                    : "(bad queue id)", err);
        deliver_reply_add(reply, 0, DELIVER_DEFER, "4.3.0",
                          "malformed delivery request");
        return 0;
    }
    memset(rcpts, 0, sizeof(rcpts));
    for (size_t i = 0; i < dr.nrcpts; i++) {
        rcpts[i].k = i;
        rcpts[i].status = DELIVER_DEFER;
    }
    msg.active_usec = dr.active_usec;
    if (smtp_queue_open(dr.queue_id, dr.rcpts, dr.nrcpts, &m, &msg, rcpts,
                        reason, sizeof(reason)) < 0) {
        log_warning("%s: delivery request refused: %s", dr.queue_id, reason);
        for (size_t i = 0; i < dr.nrcpts; i++)
            deliver_reply_add(reply, i, DELIVER_DEFER, "4.3.0", reason);
        return 0;
    }
    for (size_t i = 0; i < dr.nrcpts; i++)
        if (rcpts[i].done)
            log_warning("%s: delivery request refused: %s", dr.queue_id,
                        rcpts[i].reason);
    /* with an empty next hop each recipient domain is a destination of
       its own; a grouped request is normally one domain */
    for (size_t i = 0; i < dr.nrcpts; i++) {
        static struct smtp_rcpt group[DELIVER_MAX_RCPTS];
        size_t idx[DELIVER_MAX_RCPTS], ng = 0;
        const char *dom;
        bool dead;

        if (rcpts[i].done || rcpts[i].qr == NULL || taken[i])
            continue;
        dom = smtp_rcpt_domain(rcpts[i].qr->address);
        for (size_t j = i; j < dr.nrcpts; j++) {
            if (rcpts[j].done || rcpts[j].qr == NULL || taken[j])
                continue;
            if (*dr.nexthop == '\0'
                && strcasecmp(smtp_rcpt_domain(rcpts[j].qr->address), dom) != 0)
                continue;
            idx[ng] = j;
            group[ng++] = rcpts[j];
            taken[j] = true;
        }
        smtp_deliver_dest(dr.nexthop, dom, &msg, group, ng, &dead);
        if (dead)
            any_dead = true;
        else
            any_reached = true;
        for (size_t g = 0; g < ng; g++)
            rcpts[idx[g]] = group[g];
    }
    for (size_t i = 0; i < dr.nrcpts; i++) {
        struct smtp_rcpt *r = &rcpts[i];

        if (r->qr != NULL) {
            /* no session: the time went into set-up (DNS, connect) */
            if (r->conn_usec == 0)
                r->conn_usec = time_now_usec();
            if (r->status != DELIVER_DEFER)
                (void)smtp_queue_mark(&m, &msg, r);
            smtp_log(&msg, r, r->qr->address);
        }
        if (r->qr != NULL && r->status == DELIVER_OK && r->no_dsn
            && (r->qr->dsn_notify & QREC_NOTIFY_SUCCESS)) {
            /* qmgr's success notice says "relayed" (RFC 3461 5.2.2.2) */
            char text[SMTP_REASON_MAX + 64];

            (void)snprintf(text, sizeof(text), "%s (relayed: the next hop "
                           "does not support DSN)", r->reason);
            deliver_reply_add(reply, i, r->status, r->dsn, text);
        } else {
            deliver_reply_add(reply, i, r->status, r->dsn, r->reason);
        }
    }
    if (any_dead && !any_reached)
        deliver_reply_dest_dead(reply);
    smtp_queue_close(&m, &msg);
    return 0;
}

static void smtp_serve(int fd)
{
    server_attr_serve(fd, "qmgr", (int)var_ipc_timeout, false, smtp_handle,
                      NULL);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = smtp_pre_init,
        .post_init = smtp_post_init,
        .pre_exit = smtp_pre_exit,
        .on_request_conn = smtp_serve,
    };
    return request_server_main(argc, argv, &ops);
}
