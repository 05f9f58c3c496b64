/*
 * stalld - test delivery agent in place of local: appends each request's
 * recipient to the file named by its first argument, then delivers (marks
 * the recipient done, replies OK) unless the recipient starts with
 * "stall", whose request it never answers: it waits until qmgr hangs up,
 * like a local stuck on a stalled home directory. Lets tests watch qmgr's
 * per-destination concurrency and its delivery time limit.
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

static const char *stalld_record;

static void stalld_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    if (nargs < 1)
        log_fatal("usage: stalld RECORD-FILE");
    stalld_record = args[0];
}

/* stalld_note - one line per request, appended atomically */
static void stalld_note(const char *rcpt)
{
    int fd = open(stalld_record, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    buf_t line = BUF_INIT;

    if (fd < 0)
        log_fatal("open %s: %m", stalld_record);
    buf_printf(&line, "%s\n", rcpt);
    if (write_full(fd, line.data, line.len) < 0)
        log_fatal("write %s: %m", stalld_record);
    close(fd);
    buf_free(&line);
}

/* stalld_mark - mark the recipient done in active/QUEUEID */
static int stalld_mark(const attr_list_t *req)
{
    const char *qid = attr_get(req, DA_QUEUE_ID);
    buf_t path = BUF_INIT;
    long off;
    int fd, r = -1;

    if (qid == NULL || attr_get_long(req, DA_RCPT_OFFSET "_0", 0, 1L << 40, &off) < 0)
        return -1;
    queue_path(QUEUE_ACTIVE, qid, &path);
    fd = open(buf_str(&path), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
    if (fd >= 0) {
        r = queue_file_mark(fd, (off_t)off, QREC_DONE);
        close(fd);
    }
    buf_free(&path);
    return r;
}

static void stalld_serve(int fd)
{
    buf_t in;
    attr_list_t req, reply;

    buf_init(&in, ATTR_MAX_MSG * 2);
    attr_list_init(&req);
    attr_list_init(&reply);
    for (;;) {
        const char *err = NULL, *rcpt;
        struct pollfd p = { .fd = fd, .events = POLLIN };

        if (attr_read_fd(fd, &in, &req, 3600, &err) <= 0)
            break;
        rcpt = attr_get(&req, DA_RECIPIENT "_0");
        stalld_note(rcpt ? rcpt : "?");
        if (rcpt != NULL && strncmp(rcpt, "stall", 5) == 0) {
            while (poll(&p, 1, -1) < 0)
                ;
            break;          /* qmgr gave up on us */
        }
        attr_list_reset(&reply);
        deliver_reply_add(&reply, 0,
                          stalld_mark(&req) == 0 ? DELIVER_OK : DELIVER_DEFER,
                          "2.0.0", "recorded by stalld");
        if (attr_write_fd(fd, &reply, 3600) < 0)
            break;
    }
    attr_list_free(&req);
    attr_list_free(&reply);
    buf_free(&in);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = stalld_pre_init,
        .on_request_conn = stalld_serve,
    };

    return request_server_main(argc, argv, &ops);
}
