/*
 * local_queue - the queue file behind one delivery request.
 *
 * Security: any process that can reach private/local (every process of
 * $mail_owner, so an smtpd an attacker took over) can send a request,
 * and local runs as root. A request is therefore only a claim naming a
 * queue file and one of its recipients; local believes the file, and the
 * file only after checking that it is the one qmgr put there:
 *   - the queue must be "active" (the only queue qmgr delivers from) and
 *     the queue ID must be well formed, so the path stays in active/;
 *   - active/ is writable by $mail_owner, so the file is opened with
 *     $mail_owner's effective IDs (root never resolves a path there),
 *     O_NOFOLLOW (a planted symlink fails) and O_NONBLOCK (a FIFO cannot
 *     hang us), and fstat must show a regular file owned by $mail_owner
 *     with exactly one link (a hard link to another file is refused);
 *   - sender, recipient, original recipient, content offset and size
 *     and arrival time all come from queue_file_read() of that file; the
 *     request's rcpt_offset must be a pending ('R') recipient record
 *     whose address is the request's recipient. Every other field of the
 *     request is ignored.
 * The file's LOCAL_ATTR_EXPANDED attribute (set by local_forward_write on
 * an alias list's copy) makes local deliver to the named user without
 * alias expansion and skip the first Delivered-To line; $mail_owner can
 * set it in a file it writes, but gains nothing by it: it could address
 * that user directly anyway.
 * Content is not looked at here; it is parsed only with the mailbox
 * owner's IDs (local_maildir.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/deliver_request.h"
#include "mail/server.h"
#include "util/log.h"
#include "util/privs.h"

/* local_owner - who must own queue files: $mail_owner as root, else us */
int local_owner(uid_t *uid, gid_t *gid)
{
    if (!privs_running_as_root()) {
        *uid = getuid();
        *gid = getgid();
        return 0;
    }
    return privs_lookup_user(var_mail_owner, uid, gid);
}

/* local_queue_fd - open path as the owner, then check what we opened */
static int local_queue_fd(const char *path, uid_t uid, gid_t gid,
                          struct local_result *res)
{
    struct stat st;
    int fd, saved;

    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot switch to uid %ld: %m", (long)uid);
        return -1;
    }
    fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    saved = errno;
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();   /* the ID switch cleared it */
    if (fd < 0) {
        errno = saved;
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot open queue file %s: %m", path);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "fstat %s: %m", path);
    } else if (!S_ISREG(st.st_mode) || st.st_uid != uid || st.st_nlink != 1) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "queue file %s is not a regular file owned by uid %ld "
                         "with one link", path, (long)uid);
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* local_queue_rcpt - the pending recipient the request names */
static const struct queue_rcpt *local_queue_rcpt(const queue_msg_t *m, long offset,
                                                 const char *address,
                                                 struct local_result *res)
{
    long i = queue_msg_rcpt_at(m, (off_t)offset);
    const struct queue_rcpt *rc = i >= 0 ? &m->rcpts[i] : NULL;

    if (rc == NULL)
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "no recipient record at offset %ld", offset);
    else if (rc->status != QREC_RCPT)
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "recipient at offset %ld is not pending", offset);
    else if (strcmp(rc->address, address) != 0)
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "recipient at offset %ld is not the one requested",
                         offset);
    else
        return rc;
    return NULL;
}

int local_queue_open(const attr_list_t *req, struct local_request *r,
                     queue_msg_t *m, struct local_result *res)
{
    deliver_request_t dr;
    const char *err = NULL;
    const struct queue_rcpt *rc;
    const char *qid, *rcpt;
    long offset;
    uid_t uid;
    gid_t gid;
    buf_t path;
    int fd;

    memset(r, 0, sizeof(*r));
    memset(m, 0, sizeof(*m));
    r->queue_fd = -1;
    /* one recipient per request: each is a mailbox of its own */
    if (deliver_request_parse(req, &dr, 1, &err) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "malformed delivery request: %s", err);
        return -1;
    }
    qid = dr.queue_id;
    rcpt = dr.rcpts[0].address;
    offset = dr.rcpts[0].offset;
    r->active_usec = dr.active_usec;
    if (local_owner(&uid, &gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "mail_owner user \"%s\" does not exist", var_mail_owner);
        return -1;
    }
    buf_init(&path, 0);
    queue_path(QUEUE_ACTIVE, qid, &path);
    fd = local_queue_fd(buf_str(&path), uid, gid, res);
    if (fd < 0) {
        buf_free(&path);
        return -1;
    }
    if (flock(fd, LOCK_SH) < 0) {
        /* qmgr's crash recovery waits for files a delivery still holds */
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot lock queue file: %m");
    } else if (!queue_fd_is_named(fd, buf_str(&path))) {
        /* finished and recycled before we held it (a stale request) */
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "queue file %s is gone", qid);
    } else if (err = NULL, queue_file_read(fd, qid, m, &err) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "bad queue file: %s",
                         err ? err : "read error");
    } else if ((rc = local_queue_rcpt(m, offset, rcpt, res)) != NULL) {
        r->queue_name = QUEUE_ACTIVE;
        r->queue_id = m->qid;
        r->sender = m->sender ? m->sender : "";
        r->recipient = rc->address;
        r->orig_rcpt = rc->orcpt ? rc->orcpt : rc->address;
        r->rcpt_offset = rc->offset;
        r->content_offset = m->content_offset;
        r->content_size = m->content_len;
        r->arrival_usec = m->arrival_usec;
        r->queue_fd = fd;
        r->expanded = queue_msg_attr(m, LOCAL_ATTR_EXPANDED) != NULL;
        r->msg = m;
        buf_free(&path);
        return 0;
    }
    buf_free(&path);
    queue_msg_free(m);
    close(fd);
    return -1;
}

void local_queue_close(struct local_request *r, queue_msg_t *m)
{
    if (r->queue_fd >= 0)
        close(r->queue_fd);     /* also drops the shared lock */
    r->queue_fd = -1;
    queue_msg_free(m);
}
