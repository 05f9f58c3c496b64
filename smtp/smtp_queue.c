/*
 * smtp_queue - the queue file behind one delivery request.
 *
 * Security: whoever reaches private/smtp can send a request; it is only
 * a claim naming a queue file and some of its recipient records. smtp
 * runs as $mail_owner, the owner of active/, so it opens the file as
 * itself, but still with O_NOFOLLOW and O_NONBLOCK, and fstat must show
 * a regular file that we own with one link, as local_queue.c checks.
 * Sender, DSN fields, flags and content come from queue_file_read() of
 * that file; each named record must be a pending 'R' recipient holding
 * the address the request names.
 */
#include "smtp.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/queue.h"
#include "util/buf.h"
#include "util/log.h"

void smtp_rcpt_set(struct smtp_rcpt *r, int status, const char *dsn,
                   const char *fmt, ...)
{
    va_list ap;

    r->status = status;
    (void)snprintf(r->dsn, sizeof(r->dsn), "%s", dsn);
    va_start(ap, fmt);
    (void)vsnprintf(r->reason, sizeof(r->reason), fmt, ap);
    va_end(ap);
}

/* smtp_queue_fd - open and check what we opened */
static int smtp_queue_fd(const char *path, char *reason, size_t size)
{
    struct stat st;
    int fd = open(path, O_RDWR | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);

    if (fd < 0) {
        (void)snprintf(reason, size, "cannot open queue file %s: %s", path,
                       strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        (void)snprintf(reason, size, "fstat %s: %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()
               || st.st_nlink != 1) {
        (void)snprintf(reason, size, "queue file %s is not a regular file "
                       "owned by uid %ld with one link", path,
                       (long)geteuid());
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* smtp_addr_clean - no control characters: an address goes into SMTP
   commands as it is */
static bool smtp_addr_clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static bool smtp_ascii(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s >= 0x80)
            return false;
    return true;
}

/* smtp_queue_scan - 8-bit bytes in the content, and in its headers */
static int smtp_queue_scan(struct smtp_msg *msg, bool *header8_r)
{
    char buf[65536];
    uint64_t done = 0;
    bool in_header = true, bol = true;

    *header8_r = false;
    while (done < msg->content_len) {
        size_t want = msg->content_len - done < sizeof(buf)
                      ? (size_t)(msg->content_len - done) : sizeof(buf);
        ssize_t n = pread(msg->fd, buf, want,
                          msg->content_offset + (off_t)done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        for (ssize_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)buf[i];

            if (c >= 0x80) {
                msg->eightbit = true;
                if (in_header)
                    *header8_r = true;
            }
            if (c == '\n') {
                if (bol)
                    in_header = false;
                bol = true;
            } else {
                bol = false;
            }
        }
        if (msg->eightbit && !in_header)
            break;              /* nothing more to learn */
        done += (uint64_t)n;
    }
    return 0;
}

int smtp_queue_open(const char *qid, const struct deliver_rcpt *req,
                    size_t n, queue_msg_t *m, struct smtp_msg *msg,
                    struct smtp_rcpt *rcpts, char *reason, size_t size)
{
    const char *err = NULL;
    const char *v;
    bool header8, addr8;
    buf_t path;
    int fd;

    memset(m, 0, sizeof(*m));
    msg->fd = -1;
    buf_init(&path, 0);
    queue_path(QUEUE_ACTIVE, qid, &path);
    fd = smtp_queue_fd(buf_str(&path), reason, size);
    if (fd < 0) {
        buf_free(&path);
        return -1;
    }
    if (flock(fd, LOCK_SH) < 0) {
        (void)snprintf(reason, size, "cannot lock queue file: %s",
                       strerror(errno));
        buf_free(&path);
        close(fd);
        return -1;
    }
    if (!queue_fd_is_named(fd, buf_str(&path))) {
        /* finished and recycled before we held it (a stale request) */
        (void)snprintf(reason, size, "queue file is gone");
        buf_free(&path);
        close(fd);
        return -1;
    }
    buf_free(&path);
    if (queue_file_read(fd, qid, m, &err) < 0) {
        (void)snprintf(reason, size, "bad queue file: %s",
                       err ? err : "read error");
        queue_msg_free(m);
        close(fd);
        return -1;
    }
    if (m->sender != NULL && !smtp_addr_clean(m->sender)) {
        (void)snprintf(reason, size, "bad sender address in queue file");
        queue_msg_free(m);
        close(fd);
        return -1;
    }
    msg->fd = fd;
    msg->queue_id = m->qid;
    msg->sender = m->sender ? m->sender : "";
    msg->envid = queue_msg_attr(m, "dsn_envid");
    v = queue_msg_attr(m, "dsn_ret");
    msg->ret = v && (strcmp(v, "FULL") == 0 || strcmp(v, "HDRS") == 0) ? v
                                                                       : NULL;
    v = queue_msg_attr(m, "smtputf8");
    msg->smtputf8 = v != NULL && strcmp(v, "yes") == 0;
    msg->content_offset = m->content_offset;
    msg->content_len = m->content_len;
    msg->arrival_usec = m->arrival_usec;
    addr8 = !smtp_ascii(msg->sender);
    for (size_t i = 0; i < n; i++) {
        long idx = queue_msg_rcpt_at(m, (off_t)req[i].offset);
        struct smtp_rcpt *r = &rcpts[i];

        r->qr = NULL;
        if (idx < 0) {
            smtp_rcpt_set(r, DELIVER_DEFER, "4.3.0",
                          "no recipient record at offset %ld", req[i].offset);
        } else if (m->rcpts[idx].status != QREC_RCPT) {
            smtp_rcpt_set(r, DELIVER_DEFER, "4.3.0",
                          "recipient at offset %ld is not pending",
                          req[i].offset);
        } else if (strcmp(m->rcpts[idx].address, req[i].address) != 0) {
            smtp_rcpt_set(r, DELIVER_DEFER, "4.3.0",
                          "recipient at offset %ld is not the one requested",
                          req[i].offset);
        } else {
            /* the same record named twice is delivered once */
            bool dup = false;

            for (size_t j = 0; j < i; j++)
                if (rcpts[j].qr == &m->rcpts[idx])
                    dup = true;
            if (dup) {
                smtp_rcpt_set(r, DELIVER_DEFER, "4.3.0",
                              "recipient at offset %ld named twice",
                              req[i].offset);
            } else if (!smtp_addr_clean(m->rcpts[idx].address)) {
                /* a record of the file, so it is marked bounced */
                r->qr = &m->rcpts[idx];
                smtp_rcpt_set(r, DELIVER_BOUNCE, "5.1.3",
                              "bad recipient address syntax");
            } else {
                r->qr = &m->rcpts[idx];
                if (!smtp_ascii(r->qr->address))
                    addr8 = true;
                continue;
            }
        }
        r->done = true;
    }
    if (smtp_queue_scan(msg, &header8) < 0) {
        (void)snprintf(reason, size, "cannot read queue file content: %s",
                       strerror(errno));
        smtp_queue_close(m, msg);
        return -1;
    }
    msg->needs_utf8 = msg->smtputf8 && (addr8 || header8);
    return 0;
}

void smtp_queue_close(queue_msg_t *m, struct smtp_msg *msg)
{
    if (msg->fd >= 0)
        close(msg->fd);         /* also drops the shared lock */
    msg->fd = -1;
    queue_msg_free(m);
}

int smtp_queue_mark(queue_msg_t *m, struct smtp_msg *msg,
                    struct smtp_rcpt *r)
{
    char mark = r->status == DELIVER_OK ? QREC_DONE : QREC_BOUNCED;
    long i;

    if (r->status == DELIVER_DEFER || r->qr == NULL)
        return 0;
    i = queue_msg_rcpt_at(m, r->qr->offset);
    if (i < 0 || queue_msg_mark(msg->fd, m, (size_t)i, mark) < 0) {
        log_warning("%s: cannot update queue file: %m", msg->queue_id);
        smtp_rcpt_set(r, DELIVER_DEFER, "4.3.0", "cannot update queue file");
        return -1;
    }
    return 0;
}
