/*
 * local_maildir - Maildir delivery as the mailbox owner.
 *
 * The file name is derived from the queue ID and the recipient record
 * ("<arrival>.Q<queueid>R<offset>.<host>,S=<size>,W=<crlf size>"),
 * unique per message and recipient as the Maildir spec requires, and the
 * same on a retry. S= is the file's size, W= its size with every LF not
 * already preceded by CR counted as CR LF: what a POP3 server sends for
 * RETR before byte-stuffing, so pop3d (maildir_list) needs neither a stat
 * nor a read to list it. W= is counted while the file is written; the
 * tmp/ file is named without it, the name in new/ has it.
 * The final step is link(tmp, new): if local was killed after that step
 * but before the queue file said "done", the retry finds the name taken
 * and does not deliver a second copy.
 *
 * Steps: the tmp file is created first; only when that fails for a
 * missing directory (ENOENT, ENOTDIR) is the home checked (stat: a
 * missing home defers) and the Maildir, tmp/, new/ and cur/ made, then
 * the create tried again (a link that finds new/ missing does the same).
 * So a delivery into an existing Maildir costs no stat or mkdir.
 * Order: privs_become happens before the first lookup below the home
 * directory (open, stat, mkdir, link, fsync), so a symlink planted in a
 * user's Maildir only ever lets the user write where the user may write,
 * and before the first look at the message content (the Delivered-To
 * loop scan), so a parser bug meets the recipient's privileges, not
 * root's. The head of the content (up to 256 KiB) is read once, for the
 * loop scan and the file.
 * Durability: a directory created here (the Maildir, tmp/, new/, cur/)
 * is fsync'd in its parent right after the mkdir; tmp file fsync'd,
 * linked into new/, new/ fsync'd; only then does local.c mark the
 * recipient done.
 * Remaining window: a crash after the link but before the mark makes the
 * retry find the name taken, which suppresses the duplicate only while
 * the message is still in new/; if the user's client has already moved
 * it to cur/ in between, the user sees it twice.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "local.h"
#include "util/log.h"
#include "util/privs.h"
#include "mail/server.h"
#include "util/util.h"

#define HEADER_SCAN_MAX (256 * 1024)

/* maildir_hostname - host part of the file name, '/' and ':' escaped.
   Asked once per process: a renamed host shows in the names of the
   processes master starts after it (max_use, max_idle). */
static void maildir_hostname(buf_t *out)
{
    static char escaped[4 * 256 + 1];
    static bool known;

    if (!known) {
        char host[256];
        size_t len = 0;
        if (gethostname(host, sizeof(host)) < 0)
            str_copy(host, "localhost", sizeof(host));
        host[sizeof(host) - 1] = '\0';
        for (const char *p = host; *p; p++) {
            const char *put = *p == '/' ? "\\057" : *p == ':' ? "\\072" : NULL;
            if (put) {
                memcpy(escaped + len, put, 4);
                len += 4;
            } else {
                escaped[len++] = *p;
            }
        }
        escaped[len] = '\0';
        known = true;
    }
    buf_puts(out, escaped);
}

/* delivered_to_scan - the Delivered-To check over the head of the
   content (NUL-terminated) */
static bool delivered_to_scan(const struct local_request *r, char *hdr)
{
    size_t rlen = strlen(r->recipient);
    bool first = r->expanded, found = false;

    for (char *line = hdr; line && *line && *line != '\n';) {
        char *next = strchr(line, '\n');
        if (first) {
            first = false;
        } else if (strncasecmp(line, "Delivered-To:", 13) == 0) {
            char *v = line + 13;
            while (*v == ' ' || *v == '\t')
                v++;
            size_t vlen = (size_t)((next ? next : v + strlen(v)) - v);
            if (vlen == rlen && strncasecmp(v, r->recipient, rlen) == 0)
                found = true;
        }
        line = next ? next + 1 : NULL;
    }
    return found;
}

/* local_delivered_to - is there a "Delivered-To: rcpt" header already?
   In a file local wrote for an alias list the first line is local's own
   Delivered-To of the list, which local_forward_write checked was not
   there before: skipped, so "a: a, b" delivers to a. */
bool local_delivered_to(const struct local_request *r)
{
    size_t want = r->content_size < HEADER_SCAN_MAX ? (size_t)r->content_size
                                                     : HEADER_SCAN_MAX;
    char *hdr = xmalloc(want + 1);
    ssize_t n = pread(r->queue_fd, hdr, want, r->content_offset);
    bool found = false;
    if (n > 0) {
        hdr[n] = '\0';
        found = delivered_to_scan(r, hdr);
    }
    free(hdr);
    return found;
}

static void maildir_errno_result(struct local_result *res, const char *what,
                                 const char *path)
{
    int e = errno;
    /* Postfix's codes: over quota, then a full file system */
    const char *dsn = e == EDQUOT ? "4.2.2" : e == ENOSPC ? "4.3.1" : "4.3.0";
    local_result_set(res, DELIVER_DEFER, dsn, "maildir delivery failed: %s %s: %s",
                     what, path, strerror(e));
}

static int maildir_mkdirs(const char *dir, struct local_result *res)
{
    static const char *subs[] = { "", "/tmp", "/new", "/cur" };
    buf_t p;
    buf_init(&p, 0);
    for (size_t i = 0; i < 4; i++) {
        buf_reset(&p);
        buf_printf(&p, "%s%s", dir, subs[i]);
        if (mkdir(buf_str(&p), 0700) == 0) {
            /* the new name must survive a crash before the message in it
               is reported delivered */
            if (fsync_parent_dir(buf_str(&p)) < 0) {
                maildir_errno_result(res, "fsync parent of", buf_str(&p));
                buf_free(&p);
                return -1;
            }
        } else if (errno != EEXIST) {
            maildir_errno_result(res, "create", buf_str(&p));
            buf_free(&p);
            return -1;
        }
    }
    buf_free(&p);
    return 0;
}

/* local_home_ok - the home must exist: a missing home is the admin's
   problem, so defer (as Postfix does) rather than create it or bounce.
   Called with the owner's IDs, like every other path lookup here. */
bool local_home_ok(const char *home, struct local_result *res)
{
    struct stat st;

    if (stat(home, &st) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot access home directory %s: %s", home,
                         strerror(errno));
        return false;
    }
    if (!S_ISDIR(st.st_mode)) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "home directory %s is not a directory", home);
        return false;
    }
    return true;
}

/* maildir_open_tmp - create tmp_path; a leftover of an attempt that was
   killed is replaced (O_EXCL: a symlink there is never followed) */
static int maildir_open_tmp(const char *tmp_path)
{
    int fd = open(tmp_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0 && errno == EEXIST) {
        unlink(tmp_path);
        fd = open(tmp_path, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
    }
    return fd;
}

/* maildir_create - the tmp file; only when that fails because a
   directory is missing: check the home, make (and fsync) what is
   missing, and try again */
static int maildir_create(const char *home, const char *dir, const char *tmp_path,
                          struct local_result *res)
{
    int fd = maildir_open_tmp(tmp_path);
    if (fd < 0 && (errno == ENOENT || errno == ENOTDIR)) {
        if (!local_home_ok(home, res) || maildir_mkdirs(dir, res) < 0)
            return -1;
        fd = maildir_open_tmp(tmp_path);
    }
    if (fd < 0)
        maildir_errno_result(res, "create", tmp_path);
    return fd;
}

/* maildir_crlf_extra - LFs in p[0..n) not preceded by CR (*prev: the
   byte before p, updated) */
static uint64_t maildir_crlf_extra(const char *p, size_t n, char *prev)
{
    uint64_t extra = 0;
    char last = *prev;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == '\n' && last != '\r')
            extra++;
        last = p[i];
    }
    *prev = last;
    return extra;
}

/* maildir_write - head (our headers + the first head_content bytes of
   the content, already read) and the rest of the content into the new
   tmp file, fsync'd; *crlf_size_r: the size as CR LF text */
static int maildir_write(const struct local_request *r, const char *home,
                         const char *dir, const char *head, size_t hlen,
                         uint64_t head_content, const char *tmp_path,
                         uint64_t *crlf_size_r, struct local_result *res)
{
    int fd = maildir_create(home, dir, tmp_path, res);
    if (fd < 0)
        return -1;
    char prev = '\0';
    uint64_t crlf = hlen + maildir_crlf_extra(head, hlen, &prev);
    int ok = write_full(fd, head, hlen) == 0;
    char chunk[65536];
    off_t off = r->content_offset + (off_t)head_content;
    uint64_t left = r->content_size - head_content;
    while (ok && left > 0) {
        size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        ssize_t n = pread(r->queue_fd, chunk, want, off);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            ok = 0;
            break;
        }
        ok = write_full(fd, chunk, (size_t)n) == 0;
        crlf += (uint64_t)n + maildir_crlf_extra(chunk, (size_t)n, &prev);
        off += n;
        left -= (uint64_t)n;
    }
    if (ok && fsync(fd) < 0)
        ok = 0;
    int saved = errno;
    if (close(fd) < 0 && ok) {
        saved = errno;
        ok = 0;
    }
    if (!ok) {
        errno = saved;
        maildir_errno_result(res, "write", tmp_path);
        unlink(tmp_path);
        return -1;
    }
    *crlf_size_r = crlf;
    return 0;
}

/* maildir_link - tmp into new/; a missing new/ is made (and fsync'd).
   EEXIST: a retry after a crash found its own earlier copy. */
static int maildir_link(const char *dir, const char *tmp_path, const char *new_path,
                        struct local_result *res)
{
    int rc = link(tmp_path, new_path);
    if (rc < 0 && errno == ENOENT) {
        if (maildir_mkdirs(dir, res) < 0)
            return -1;
        rc = link(tmp_path, new_path);
    }
    if (rc < 0 && errno != EEXIST) {
        maildir_errno_result(res, "link", new_path);
        return -1;
    }
    return 0;
}

/* maildir_deliver - everything that runs with the owner's IDs, content
   parsing included. The head of the content is read once: the loop scan
   looks at it and the file gets it. */
static void maildir_deliver(const struct local_request *r, const char *home,
                            const char *dir, struct local_result *res)
{
    buf_t hdrs, name, tmp_path, new_path, new_dir;
    buf_init(&hdrs, 0);
    buf_init(&name, 0);
    buf_init(&tmp_path, 0);
    buf_init(&new_path, 0);
    buf_init(&new_dir, 0);
    buf_printf(&hdrs, "Return-Path: <%s>\nDelivered-To: %s\n", r->sender, r->recipient);
    uint64_t size = hdrs.len + r->content_size;
    buf_printf(&name, "%llu.Q%sR%lld.", (unsigned long long)(r->arrival_usec / 1000000),
               r->queue_id, (long long)r->rcpt_offset);
    maildir_hostname(&name);
    buf_printf(&name, ",S=%llu", (unsigned long long)size);
    buf_printf(&tmp_path, "%s/tmp/%s", dir, buf_str(&name));
    buf_printf(&new_dir, "%s/new", dir);
    uint64_t crlf_size = 0;

    size_t want = r->content_size < HEADER_SCAN_MAX ? (size_t)r->content_size
                                                     : HEADER_SCAN_MAX;
    char *head = xmalloc(hdrs.len + want + 1);
    memcpy(head, buf_str(&hdrs), hdrs.len);
    ssize_t n = want > 0 ? pread(r->queue_fd, head + hdrs.len, want, r->content_offset)
                         : 0;
    bool read_ok = n >= 0 && (size_t)n == want;
    if (n >= 0 && !read_ok)
        errno = EIO;    /* the queue file is shorter than it says */
    head[hdrs.len + (read_ok ? want : 0)] = '\0';
    if (!read_ok) {
        maildir_errno_result(res, "read", "queue file");
    } else if (delivered_to_scan(r, head + hdrs.len)) {
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s",
                         r->recipient);
    } else if (maildir_write(r, home, dir, head, hdrs.len + want, want,
                             buf_str(&tmp_path), &crlf_size, res) == 0) {
        /* the same content gives the same W=: a retry finds its copy */
        buf_printf(&new_path, "%s/new/%s,W=%llu", dir, buf_str(&name),
                   (unsigned long long)crlf_size);
        if (maildir_link(dir, buf_str(&tmp_path), buf_str(&new_path), res) < 0) {
            /* res says why */
        } else if (fsync_dir(buf_str(&new_dir)) < 0) {
            maildir_errno_result(res, "fsync", buf_str(&new_dir));
        } else {
            local_result_set(res, DELIVER_OK, "2.0.0", "delivered to maildir");
        }
        unlink(buf_str(&tmp_path));
    }
    free(head);
    buf_free(&hdrs);
    buf_free(&name);
    buf_free(&tmp_path);
    buf_free(&new_path);
    buf_free(&new_dir);
}

void local_maildir(const struct local_request *r, const char *user, uid_t uid,
                   gid_t gid, const char *home, struct local_result *res)
{
    size_t hm = strlen(var_home_mailbox);
    if (hm == 0 || var_home_mailbox[hm - 1] != '/' || var_home_mailbox[0] == '/') {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "home_mailbox \"%s\": only a Maildir relative to the home "
                         "directory (ending in '/') is supported yet", var_home_mailbox);
        return;
    }
    if (privs_running_as_root() && uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to deliver as root for \"%s\": alias it to a user",
                         user);
        return;
    }
    if (var_mailbox_size_limit > 0
        && r->content_size > (uint64_t)var_mailbox_size_limit) {
        local_result_set(res, DELIVER_BOUNCE, "5.2.2",
                         "message is larger than the mailbox size limit");
        return;
    }
    buf_t dir;
    buf_init(&dir, 0);
    buf_printf(&dir, "%s/%.*s", home, (int)(hm - 1), var_home_mailbox);
    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)uid);
    } else {
        maildir_deliver(r, home, buf_str(&dir), res);
        if (privs_restore() < 0)
            log_fatal("cannot restore root privileges: %m");
        server_pdeathsig_renew();   /* the ID switch cleared it */
    }
    buf_free(&dir);
}
