/*
 * showq - the queue listing service for users who cannot read the
 * queue: ternqueue -p/-j (mailq) and the site and message flushes of
 * ternqueue -s/-i. A request server on public/showq (protocol in
 * mail/queue_list.h); master.conf: "showq unix n - y - - showq".
 *
 * Privileges: runs as $mail_owner, chrooted into the queue directory.
 * public/ is reachable only by $mail_owner and $setgid_group, so an
 * ordinary user reaches us only through the set-gid ternqueue; still,
 * what the client says is a claim. The uid that decides is the peer's
 * SO_PEERCRED uid, checked against $authorized_mailq_users (list) or
 * $authorized_flush_users (flushes), compiled in pre_init before the
 * chroot (user_acl.h). Refusals are logged with the uid.
 *
 * What a flush changes: only the mtime of deferred/ files (a deferred
 * file's mtime is its next-attempt time, which qmgr alone otherwise
 * sets); no file is moved. Then one TRIGGER_DEFERRED byte asks qmgr to
 * scan deferred/, where it finds those files due. A file qmgr moves
 * meanwhile is simply not found (or is touched on its way out, which
 * qmgr's own mtime at the next deferral overrides).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/server.h"
#include "mail/user_acl.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define SHOWQ_FLUSH_CHUNK 65536     /* listing bytes per write */

static struct user_acl mailq_acl, flush_acl;

struct list_ctx {
    int fd;
    bool json;
    buf_t out;
    uint64_t total;
    size_t count;
    bool failed;
};

static int send_text(struct list_ctx *c)
{
    if (c->out.len > 0 && write_full(c->fd, c->out.data, c->out.len) < 0) {
        c->failed = true;
        return -1;
    }
    buf_reset(&c->out);
    return 0;
}

static int list_one(const struct queue_list_entry *e, void *ctx)
{
    struct list_ctx *c = ctx;

    if (c->json)
        queue_list_json_entry(e, &c->out);
    else {
        if (c->count == 0)
            queue_list_mailq_header(&c->out);
        queue_list_mailq_entry(e, &c->out);
    }
    c->total += e->size;
    c->count++;
    if (c->out.len >= SHOWQ_FLUSH_CHUNK)
        return send_text(c);
    return 0;
}

struct flush_ctx {
    const char *site;
    const char *qid;        /* by queue ID instead */
    size_t count;
};

/* touch - make deferred/X/qid due now: futimens on the file we opened
   (never following a link), so only a regular file of ours changes */
static bool touch(const char *qid)
{
    buf_t path = BUF_INIT;
    struct stat st;
    int fd, ok = 0;

    queue_path(QUEUE_DEFERRED, qid, &path);
    fd = open(buf_str(&path), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
             && futimens(fd, NULL) == 0;
        close(fd);
    }
    buf_free(&path);
    return ok;
}

static int flush_one(const struct queue_list_entry *e, void *ctx)
{
    struct flush_ctx *c = ctx;

    if (!e->corrupt && queue_list_has_domain(e, c->site) && touch(e->qid))
        c->count++;
    return 0;
}

/* peer_uid - the connected client's uid; -1 when unknown */
static int peer_uid(int fd, uid_t *uid)
{
    struct ucred cr;
    socklen_t len = sizeof(cr);

    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) < 0
        || len != sizeof(cr))
        return -1;
    *uid = cr.uid;
    return 0;
}

static void reply(int fd, const char *status, const char *reason, long count)
{
    attr_list_t r;

    attr_list_init(&r);
    attr_add(&r, "status", status);
    if (reason != NULL)
        attr_add(&r, "reason", reason);
    if (count >= 0)
        attr_add_long(&r, "count", count);
    if (attr_write_fd(fd, &r, (int)var_ipc_timeout) < 0)
        log_warning("write reply to client: %s", strerror(errno));
    attr_list_free(&r);
}

static bool site_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || c == '@' || c == '/')
            return false;
    }
    return true;
}

static void do_list(int fd, uid_t uid, const attr_list_t *req)
{
    static const char *const names[] = { "request", "format", "queue", NULL };
    const char *format = attr_get(req, "format");
    const char *queue = attr_get(req, "queue");
    const char *why;
    struct list_ctx c;

    if (attr_check_names(req, names, 2, &why) < 0
        || (strcmp(format, "mailq") != 0 && strcmp(format, "json") != 0)) {
        log_warning("uid=%lu: malformed list request", (unsigned long)uid);
        reply(fd, "error", "malformed request", -1);
        return;
    }
    if (queue != NULL) {
        bool known = false;
        for (size_t i = 0; queue_list_queues[i] != NULL; i++)
            known |= strcmp(queue, queue_list_queues[i]) == 0;
        if (!known) {
            reply(fd, "error", "unknown queue name", -1);
            return;
        }
    }
    if (!user_acl_allows(&mailq_acl, uid)) {
        log_warning("uid=%lu: queue listing refused by authorized_mailq_users",
                    (unsigned long)uid);
        reply(fd, "denied", "Permission denied: not in authorized_mailq_users",
              -1);
        return;
    }
    reply(fd, "ok", NULL, -1);
    memset(&c, 0, sizeof(c));
    buf_init(&c.out, 0);
    c.fd = fd;
    c.json = strcmp(format, "json") == 0;
    (void)queue_list_walk(queue, list_one, &c);
    if (!c.failed && !c.json)
        queue_list_mailq_trailer(c.total, c.count, &c.out);
    if (!c.failed)
        (void)send_text(&c);
    buf_free(&c.out);
}

static void do_flush(int fd, uid_t uid, const attr_list_t *req, bool by_id)
{
    static const char *const site_names[] = { "request", "site", NULL };
    static const char *const id_names[] = { "request", "queue_id", NULL };
    struct flush_ctx c = { 0 };
    const char *why;

    if (attr_check_names(req, by_id ? id_names : site_names, 2, &why) < 0
        || (by_id ? !queue_id_valid(attr_get(req, "queue_id"))
                  : !site_valid(attr_get(req, "site")))) {
        log_warning("uid=%lu: malformed flush request", (unsigned long)uid);
        reply(fd, "error", "malformed request", -1);
        return;
    }
    if (!user_acl_allows(&flush_acl, uid)) {
        log_warning("uid=%lu: flush refused by authorized_flush_users",
                    (unsigned long)uid);
        reply(fd, "denied", "Permission denied: not in authorized_flush_users",
              -1);
        return;
    }
    if (by_id) {
        c.qid = attr_get(req, "queue_id");
        c.count = touch(c.qid) ? 1 : 0;
    } else {
        c.site = attr_get(req, "site");
        (void)queue_list_walk(QUEUE_DEFERRED, flush_one, &c);
    }
    if (c.count > 0 && trigger_send("public/qmgr", TRIGGER_DEFERRED) < 0)
        log_warning("trigger public/qmgr: %s", strerror(errno));
    log_info("uid=%lu: flush %s=%s: %zu message%s made due",
             (unsigned long)uid, by_id ? "queue_id" : "site",
             by_id ? c.qid : c.site, c.count, c.count == 1 ? "" : "s");
    reply(fd, "ok", NULL, (long)c.count);
}

static void showq_conn(int fd)
{
    attr_list_t req;
    buf_t in = BUF_INIT;
    struct timeval tv = { .tv_sec = var_ipc_timeout > 0 ? var_ipc_timeout : 10 };
    const char *err = NULL, *what;
    uid_t uid;
    int r;

    if (peer_uid(fd, &uid) < 0) {
        log_warning("cannot get the client's credentials: %s", strerror(errno));
        return;
    }
    /* a client that stops reading must not hold this process for ever */
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        log_warning("setsockopt SO_SNDTIMEO: %s", strerror(errno));
    attr_list_init(&req);
    r = attr_read_fd(fd, &in, &req, (int)tv.tv_sec, &err);
    if (r < 0)
        log_warning("uid=%lu: bad request: %s", (unsigned long)uid,
                    err ? err : strerror(errno));
    else if (r > 0) {
        what = attr_get(&req, "request");
        if (what != NULL && strcmp(what, "list") == 0)
            do_list(fd, uid, &req);
        else if (what != NULL && strcmp(what, "flush_site") == 0)
            do_flush(fd, uid, &req, false);
        else if (what != NULL && strcmp(what, "flush_id") == 0)
            do_flush(fd, uid, &req, true);
        else {
            log_warning("uid=%lu: unknown request", (unsigned long)uid);
            reply(fd, "error", "unknown request", -1);
        }
    }
    attr_list_free(&req);
    buf_free(&in);
}

static void showq_pre_init(const char *service, char **args, int nargs)
{
    buf_t err = BUF_INIT;

    (void)service;
    (void)args;
    (void)nargs;
    if (user_acl_compile(var_authorized_mailq_users, var_mail_owner,
                         &mailq_acl, &err) < 0)
        log_fatal("authorized_mailq_users: malformed list");
    if (user_acl_compile(var_authorized_flush_users, var_mail_owner,
                         &flush_acl, &err) < 0)
        log_fatal("authorized_flush_users: malformed list");
    if (err.len > 0) {
        char *s = buf_strdup(&err), *line, *save = NULL;
        for (line = strtok_r(s, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            log_warning("%s", line);
        free(s);
    }
    buf_free(&err);
}

static void showq_pre_exit(void)
{
    user_acl_free(&mailq_acl);
    user_acl_free(&flush_acl);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = showq_pre_init,
        .pre_exit = showq_pre_exit,
        .on_request_conn = showq_conn,
    };

    return request_server_main(argc, argv, &ops);
}
