/*
 * agentd - test delivery agent for any transport (in place of smtp,
 * relay, ...): appends one line per request to the file named by its
 * first argument,
 *     <transport> <nexthop> <rcpt>[,<rcpt>...]
 * then answers each recipient by its local part:
 *     defer*   4.4.1 deferred (record left pending)
 *     bounce*  5.1.1 bounced (record marked 'B')
 *     dead*    deferred, and the reply says dest_status=dead
 *     stall*   the request is never answered (until qmgr hangs up)
 *     else     delivered (record marked 'D')
 * so tests watch qmgr's routing, recipient grouping, concurrency,
 * dead-site back-off and fairness.
 */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_request.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/server.h"

static const char *agentd_record;

static void agentd_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    if (nargs < 1)
        log_fatal("usage: agentd RECORD-FILE");
    agentd_record = args[0];
}

/* agentd_note - one line per request, appended in one write */
static void agentd_note(const deliver_request_t *req)
{
    int fd = open(agentd_record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                  0644);
    buf_t line = BUF_INIT;

    if (fd < 0)
        log_fatal("open %s: %m", agentd_record);
    buf_printf(&line, "%s %s ", req->transport,
               req->nexthop[0] ? req->nexthop : "-");
    for (size_t k = 0; k < req->nrcpts; k++)
        buf_printf(&line, "%s%s", k ? "," : "", req->rcpts[k].address);
    buf_putc(&line, '\n');
    if (write_full(fd, line.data, line.len) < 0)
        log_fatal("write %s: %m", agentd_record);
    close(fd);
    buf_free(&line);
}

static bool starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* agentd_answer - the reply for every recipient; false = stall */
static bool agentd_answer(const deliver_request_t *req, attr_list_t *reply)
{
    buf_t path = BUF_INIT;
    bool dead = false;
    int fd;

    for (size_t k = 0; k < req->nrcpts; k++)
        if (starts(req->rcpts[k].address, "stall"))
            return false;
    queue_path(QUEUE_ACTIVE, req->queue_id, &path);
    fd = open(buf_str(&path), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    buf_free(&path);
    for (size_t k = 0; k < req->nrcpts; k++) {
        const char *a = req->rcpts[k].address;
        off_t off = (off_t)req->rcpts[k].offset;

        if (starts(a, "defer")) {
            deliver_reply_add(reply, k, DELIVER_DEFER, "4.4.1",
                              "agentd: deferred as asked");
        } else if (starts(a, "dead")) {
            dead = true;
            deliver_reply_add(reply, k, DELIVER_DEFER, "4.4.1",
                              "agentd: connect to dead.example: refused");
        } else if (starts(a, "bounce")) {
            if (fd >= 0 && queue_file_mark(fd, off, QREC_BOUNCED) == 0)
                deliver_reply_add(reply, k, DELIVER_BOUNCE, "5.1.1",
                                  "agentd: bounced as asked");
            else
                deliver_reply_add(reply, k, DELIVER_DEFER, "4.3.0",
                                  "agentd: cannot mark the record");
        } else {
            if (fd >= 0 && queue_file_mark(fd, off, QREC_DONE) == 0)
                deliver_reply_add(reply, k, DELIVER_OK, "2.0.0",
                                  "agentd: delivered");
            else
                deliver_reply_add(reply, k, DELIVER_DEFER, "4.3.0",
                                  "agentd: cannot mark the record");
        }
    }
    if (fd >= 0)
        close(fd);
    if (dead)
        deliver_reply_dest_dead(reply);
    return true;
}

static void agentd_serve(int fd)
{
    buf_t in;
    attr_list_t req_attrs, reply;

    buf_init(&in, ATTR_MAX_MSG * 2);
    attr_list_init(&req_attrs);
    attr_list_init(&reply);
    for (;;) {
        const char *err = NULL;
        deliver_request_t req;
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (attr_read_fd(fd, &in, &req_attrs, 3600, &err) <= 0)
            break;
        if (deliver_request_parse(&req_attrs, &req, DELIVER_MAX_RCPTS,
                                  &err) < 0) {
            log_warning("bad request: %s", err);
            break;
        }
        agentd_note(&req);
        attr_list_reset(&reply);
        if (!agentd_answer(&req, &reply)) {
            while (poll(&p, 1, -1) < 0)
                ;
            break;          /* qmgr gave up on us */
        }
        if (attr_write_fd(fd, &reply, 3600) < 0)
            break;
    }
    attr_list_free(&req_attrs);
    attr_list_free(&reply);
    buf_free(&in);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = agentd_pre_init,
        .on_request_conn = agentd_serve,
    };

    return request_server_main(argc, argv, &ops);
}
