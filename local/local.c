/*
 * local - the local delivery agent. A request server: qmgr sends one
 * delivery request per recipient (deliver.h); local expands aliases,
 * :include: lists and the user's .forward, runs |command and /file
 * targets and delivers to the user's own mailbox within the request (as
 * the owner of the alias table, include file or mailbox, never as root),
 * writes one new queue file with a recipient per plain address it
 * forwards to (local_deliver.c), marks the recipient done in the queue
 * file, then replies.
 *
 * Security: runs as root (it must become each mailbox owner); all
 * mailbox I/O happens with the owner's effective IDs (privs_become). A
 * request is a claim from whoever reached private/local: local_queue.c
 * checks the queue file it names and takes every envelope field from
 * that file, never from the request.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/attr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_log.h"
#include "mail/deliver_request.h"
#include "mail/dict.h"
#include "local.h"
#include "util/log.h"
#include "mail/mailuser.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/server.h"
#include "util/util.h"

static struct local_aliases *local_alias_maps;

static void local_pre_init(const char *service, char **args, int nargs)
{
    const char *err = NULL;
    if (mailuser_init() < 0)
        log_fatal("cannot open the user tables");
    if (*var_alias_maps) {
        local_alias_maps = local_aliases_open(var_alias_maps, &err);
        if (local_alias_maps == NULL)
            log_warning("alias_maps %s: %s", var_alias_maps, err ? err : "open failed");
    }
}

/* local_log - the Postfix-style per-recipient result line */
static void local_log(const struct local_request *r, const struct local_result *res,
                      uint64_t start_usec)
{
    static const char *status[] = { [DELIVER_OK] = "sent",
                                    [DELIVER_DEFER] = "deferred",
                                    [DELIVER_BOUNCE] = "bounced" };
    struct deliver_times t = { r->arrival_usec, r->active_usec, start_usec,
                               0, time_now_usec() };

    if (res->final_to[0] != '\0')
        deliver_log_status(r->queue_id, res->final_to, r->orig_rcpt, "local",
                           &t, res->dsn, status[res->status], res->reason);
    else
        deliver_log_status(r->queue_id, r->recipient, r->orig_rcpt, "local",
                           &t, res->dsn, status[res->status], res->reason);
}

/* local_handle - one request: check it, deliver, mark, reply */
static void local_handle(const attr_list_t *req, attr_list_t *reply)
{
    struct local_request r;
    struct local_result res = { DELIVER_DEFER, "4.3.0", "", "" };
    uint64_t start = time_now_usec();
    queue_msg_t m;

    if (local_queue_open(req, &r, &m, &res) < 0) {
        const char *qid = attr_get(req, DA_QUEUE_ID);

        log_warning("%s: delivery request refused: %s",
                    queue_id_valid(qid) ? qid : "(bad queue id)", res.reason);
    } else {
        local_deliver(&r, local_alias_maps, &res);
        if (res.status != DELIVER_DEFER) {
            char mark = res.status == DELIVER_OK ? QREC_DONE : QREC_BOUNCED;
            long i = queue_msg_rcpt_at(&m, r.rcpt_offset);

            /* no fdatasync: what the mark records is durable already (the
               Maildir/mbox file and its name, a forwarded copy's queue
               file) and qmgr removes the queue file only after our reply,
               so losing the mark in a power failure (a crash cannot) only
               retries the recipient: at worst twice, never lost. A bounce
               mark lost that way bounces again. */
            if (i < 0 || queue_msg_mark_nosync(r.queue_fd, &m, (size_t)i, mark) < 0) {
                log_warning("%s: cannot update queue file: %m", r.queue_id);
                local_result_set(&res, DELIVER_DEFER, "4.3.0",
                                 "cannot update queue file");
            }
        }
        local_log(&r, &res, start);
        local_queue_close(&r, &m);
    }
    deliver_reply_add(reply, 0, res.status, res.dsn, res.reason);
}

static int local_request_handle(attr_list_t *req, attr_list_t *reply,
                                void *ctx)
{
    (void)ctx;
    local_handle(req, reply);
    return 0;
}

/* local_serve - requests from one qmgr connection until it closes */
static void local_serve(int fd)
{
    server_attr_serve(fd, "qmgr", (int)var_ipc_timeout, false,
                      local_request_handle, NULL);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = local_pre_init,
        .on_request_conn = local_serve,
    };
    return request_server_main(argc, argv, &ops);
}
