/*
 * local_mbox - append a message in mbox form to a file, locked
 * (local.h): a user's mbox mailbox (local_mailbox.c) and "/file"
 * targets of aliases and .forward files (local_file).
 *
 * Format, as Postfix's local(8) writes it: a "From SENDER  DATE"
 * envelope line (MAILER-DAEMON for the null sender, the date in
 * asctime form), Return-Path:, X-Original-To: and Delivered-To:, the
 * content as stored in the queue file (LF line ends) with ">" in front
 * of every line that starts with "From " (and no other stuffing), a
 * newline if the last line lacked one, and one empty line.
 *
 * Locking ($mailbox_delivery_lock, "fcntl, dotlock"): the FILE.lock dot
 * lock first (created O_EXCL|O_NOFOLLOW; one older than $stale_lock_time
 * is removed), then the file is opened and fcntl- (or flock-) locked;
 * $deliver_lock_attempts tries $deliver_lock_delay apart, then a 4.2.0
 * deferral. A dot lock that cannot be created because the directory is
 * closed to the writer (EACCES, EPERM, EROFS) is skipped for files and
 * home mailboxes, as Postfix does; the fcntl lock still protects.
 *
 * Failure: the file is cut back to its size before the append
 * (ftruncate), so a partial message never stays; fsync before success.
 * $mailbox_size_limit caps the file's size after the append (bounce
 * 5.2.2, "mailbox full", as Postfix's file size limit does). Errors map
 * to Postfix's codes: EDQUOT 4.2.2, ENOSPC 4.3.1, EFBIG 5.2.2, other
 * I/O 4.3.0, locks 4.2.0.
 *
 * Security (DESIGN.md, "Security model in one rule"): the file is
 * opened O_NOFOLLOW|O_NONBLOCK and checked after the open (fstat: a
 * regular file with one link, owned by the user when it is a mailbox);
 * a missing file is created O_CREAT|O_EXCL|O_NOFOLLOW, mode 0600.
 * Every lookup runs with the writer's IDs (privs_become: uid, gid and
 * the account's supplementary groups), except in a mail spool directory
 * the user cannot write (Debian's /var/mail, root:mail 2775): there the
 * mailbox and its dot lock are opened with the user's IDs plus the
 * directory's group when that group may write it, and as root only
 * when nothing less will do (a directory only root may write, which no
 * less privileged user can plant anything in); a mailbox root creates
 * is fchown'd to the user before anything is written. The content is
 * copied only with the writer's IDs.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/server.h"
#include "local.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define MBOX_CHUNK 65536

/* local_mbox_from_line - "From SENDER  DATE\n"; blanks and controls in
   the sender become '_' so mbox readers split the line right */
void local_mbox_from_line(buf_t *out, const char *sender, time_t when)
{
    char date[64];
    struct tm tm;

    buf_puts(out, "From ");
    if (*sender == '\0') {
        buf_puts(out, "MAILER-DAEMON");
    } else {
        for (const unsigned char *p = (const unsigned char *)sender; *p; p++)
            buf_putc(out, *p <= ' ' || *p == 0x7f ? '_' : *p);
    }
    if (localtime_r(&when, &tm) == NULL
        || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        str_copy(date, "Thu Jan  1 00:00:00 1970", sizeof(date));
    buf_printf(out, "  %s\n", date);
}

/* local_mbox_escape - data with ">" before each line that starts with
   "From "; *bol says whether data starts a line, and is updated. A
   "From " split across two calls is caught: up to 4 bytes of a line
   start are held back in st until they decide. */
void local_mbox_escape(struct local_mbox_escape *st, const char *data,
                       size_t len, buf_t *out)
{
    size_t i = 0;

    while (i < len) {
        char c = data[i];
        if (st->held > 0 || (st->bol && c == 'F')) {
            st->hold[st->held++] = c;
            i++;
            if (memcmp(st->hold, "From ", st->held) != 0) {
                buf_append(out, st->hold, st->held);
                st->bol = c == '\n';
                st->held = 0;
            } else if (st->held == 5) {
                buf_putc(out, '>');
                buf_append(out, st->hold, st->held);
                st->bol = false;
                st->held = 0;
            }
            continue;
        }
        /* the rest of the line in one piece */
        const char *nl = memchr(data + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - data) + 1 : len;
        buf_append(out, data + i, end - i);
        st->bol = nl != NULL;
        i = end;
    }
}

/* local_mbox_escape_end - flush what is held back; ends the last line */
void local_mbox_escape_end(struct local_mbox_escape *st, buf_t *out)
{
    if (st->held > 0) {
        buf_append(out, st->hold, st->held);
        st->held = 0;
        st->bol = false;
    }
    if (!st->bol)
        buf_putc(out, '\n');
    st->bol = true;
}

/* local_mbox_lock_name - the dot lock of path: "path.lock" */
void local_mbox_lock_name(const char *path, buf_t *out)
{
    buf_reset(out);
    buf_printf(out, "%s.lock", path);
}

/* local_mbox_path_ok - an absolute path without "." or ".." components
   (a "/file" target); false with *why_r set */
bool local_mbox_path_ok(const char *path, const char **why_r)
{
    if (*path != '/') {
        *why_r = "not an absolute path";
        return false;
    }
    for (const char *p = path; *p;) {
        while (*p == '/')
            p++;
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.')) {
            *why_r = "\".\" or \"..\" path component";
            return false;
        }
        p += n;
    }
    if (path[strlen(path) - 1] == '/') {
        *why_r = "a directory";
        return false;
    }
    return true;
}

/* local_mbox_lock_styles - $mailbox_delivery_lock as LOCAL_MBOX_LOCK_*
   bits; -1 for an unknown word */
int local_mbox_lock_styles(const char *spec, int *styles_r)
{
    int styles = 0;
    char word[32];

    for (const char *p = spec; *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, " \t,");
        if (n == 0)
            break;
        if (n >= sizeof(word))
            return -1;
        memcpy(word, p, n);
        word[n] = '\0';
        if (strcmp(word, "fcntl") == 0)
            styles |= LOCAL_MBOX_LOCK_FCNTL;
        else if (strcmp(word, "flock") == 0)
            styles |= LOCAL_MBOX_LOCK_FLOCK;
        else if (strcmp(word, "dotlock") == 0)
            styles |= LOCAL_MBOX_LOCK_DOT;
        else
            return -1;
        p += n;
    }
    *styles_r = styles;
    return 0;
}

/* mbox_errno_dsn - Postfix's mapping of a write error */
static const char *mbox_errno_dsn(int e, int *status_r)
{
    *status_r = DELIVER_DEFER;
    switch (e) {
    case EDQUOT:
        return "4.2.2";
    case ENOSPC:
        return "4.3.1";
    case EFBIG:
        *status_r = DELIVER_BOUNCE;
        return "5.2.2";
    case EAGAIN:
        return "4.2.0";
    default:
        return "4.3.0";
    }
}

static void mbox_errno_result(struct local_result *res, const char *what,
                              const char *path, int e)
{
    int status;
    const char *dsn = mbox_errno_dsn(e, &status);

    if (e == EFBIG)
        local_result_set(res, status, dsn, "cannot update mailbox %s: mailbox full "
                         "(mailbox_size_limit)", path);
    else
        local_result_set(res, status, dsn, "cannot update mailbox %s: %s: %s", path,
                         what, strerror(e));
}

/* mbox_privs - switch to a target's privileges for the given step */
static int mbox_privs(const struct local_mbox_target *t, bool for_open,
                      struct local_result *res)
{
    int rc;
    enum local_mbox_privs p = for_open ? t->open_privs : LOCAL_MBOX_AS_USER;

    if (p == LOCAL_MBOX_AS_ROOT)
        rc = privs_restore();
    else if (p == LOCAL_MBOX_AS_GROUP)
        rc = privs_become_with_group(t->uid, t->gid, t->extra_gid);
    else
        rc = privs_become(t->uid, t->gid);
    if (rc < 0)
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)t->uid);
    return rc;
}

/* mbox_dotlock - create path.lock (O_EXCL|O_NOFOLLOW), removing a stale
   one; 1 made, 0 skipped (directory closed to us, may_fail), -1 res set */
static int mbox_dotlock(const struct local_mbox_target *t, const char *lock,
                        struct local_result *res)
{
    int stale_removed = 0;

    for (long i = 0; i < var_deliver_lock_attempts; i++) {
        int fd = open(lock, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                      0600);
        if (fd >= 0) {
            /* the pid, as other dot-lockers write it; the name is the lock */
            char pid[32];
            int n = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
            if (write_full(fd, pid, (size_t)n) < 0 || close(fd) < 0) {
                unlink(lock);
                local_result_set(res, DELIVER_DEFER, "4.2.0",
                                 "cannot create lock file %s: %m", lock);
                return -1;
            }
            return 1;
        }
        if (errno != EEXIST) {
            if (t->dotlock_may_fail
                && (errno == EACCES || errno == EPERM || errno == EROFS))
                return 0;
            local_result_set(res, DELIVER_DEFER, "4.2.0",
                             "cannot acquire lock: cannot create lock file %s: %m",
                             lock);
            return -1;
        }
        struct stat st;
        if (lstat(lock, &st) == 0 && time(NULL) - st.st_mtime > var_stale_lock_time) {
            /* Postfix's rule: a lock this old is left over from a crash */
            if (unlink(lock) == 0) {
                log_warning("removed stale lock file %s", lock);
                if (stale_removed++ < 3)
                    i--;        /* try again at once, not as a new attempt */
                continue;
            }
        }
        if (i + 1 < var_deliver_lock_attempts)
            sleep((unsigned)var_deliver_lock_delay);
    }
    local_result_set(res, DELIVER_DEFER, "4.2.0",
                     "cannot update mailbox %s: mailbox is locked (lock file %s "
                     "exists)", t->path, lock);
    return -1;
}

/* mbox_open - open or create the file and check what was opened */
static int mbox_open(const struct local_mbox_target *t, struct local_result *res)
{
    const int flags = O_WRONLY | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
    struct stat st;
    bool created = false;
    int fd = -1;

    for (int i = 0; i < 2 && fd < 0; i++) {
        fd = open(t->path, flags);
        if (fd < 0 && errno == ENOENT) {
            fd = open(t->path, flags | O_CREAT | O_EXCL, 0600);
            created = fd >= 0;
            if (fd < 0 && errno == EEXIST)
                continue;       /* made by someone else meanwhile: open it */
        }
        if (fd < 0)
            break;
    }
    if (fd < 0) {
        int e = errno;
        if (e == ELOOP)
            local_result_set(res, DELIVER_DEFER, "4.3.0",
                             "cannot update mailbox %s: it is a symbolic link",
                             t->path);
        else
            mbox_errno_result(res, "cannot open file", t->path, e);
        return -1;
    }
    if (created && geteuid() != t->uid && fchown(fd, t->uid, t->gid) < 0) {
        mbox_errno_result(res, "cannot set owner", t->path, errno);
        unlink(t->path);
        close(fd);
        return -1;
    }
    if (created && fsync_parent_dir(t->path) < 0) {
        mbox_errno_result(res, "fsync of the directory", t->path, errno);
        close(fd);
        return -1;
    }
    if (fstat(fd, &st) < 0) {
        mbox_errno_result(res, "fstat", t->path, errno);
    } else if (!S_ISREG(st.st_mode)) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot update mailbox %s: not a regular file", t->path);
    } else if (st.st_nlink != 1) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot update mailbox %s: file has %ld hard links", t->path,
                         (long)st.st_nlink);
    } else if (t->must_own && st.st_uid != t->uid) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot update mailbox %s: file is owned by uid %ld, not by "
                         "uid %ld", t->path, (long)st.st_uid, (long)t->uid);
    } else {
        return fd;
    }
    close(fd);
    return -1;
}

/* mbox_kernel_lock - fcntl/flock with bounded retries */
static int mbox_kernel_lock(const struct local_mbox_target *t, int fd, int styles,
                            struct local_result *res)
{
    for (long i = 0; i < var_deliver_lock_attempts; i++) {
        int rc = 0;
        if (styles & LOCAL_MBOX_LOCK_FCNTL) {
            struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
            rc = fcntl(fd, F_SETLK, &fl);
        }
        if (rc == 0 && (styles & LOCAL_MBOX_LOCK_FLOCK)) {
            rc = flock(fd, LOCK_EX | LOCK_NB);
            if (rc < 0 && (styles & LOCAL_MBOX_LOCK_FCNTL)) {
                int e = errno;
                struct flock un = { .l_type = F_UNLCK, .l_whence = SEEK_SET };
                (void)fcntl(fd, F_SETLK, &un);
                errno = e;
            }
        }
        if (rc == 0)
            return 0;
        if (errno != EAGAIN && errno != EACCES && errno != EWOULDBLOCK) {
            local_result_set(res, DELIVER_DEFER, "4.2.0",
                             "cannot update mailbox %s: cannot acquire lock: %m",
                             t->path);
            return -1;
        }
        if (i + 1 < var_deliver_lock_attempts)
            sleep((unsigned)var_deliver_lock_delay);
    }
    local_result_set(res, DELIVER_DEFER, "4.2.0",
                     "cannot update mailbox %s: cannot acquire lock: mailbox is locked",
                     t->path);
    return -1;
}

/* mbox_flush - write what is buffered, within the size limit */
static int mbox_flush(int fd, buf_t *b, off_t *size)
{
    if (b->len == 0)
        return 0;
    if (var_mailbox_size_limit > 0
        && (uint64_t)*size + b->len > (uint64_t)var_mailbox_size_limit) {
        errno = EFBIG;
        return -1;
    }
    if (write_full(fd, b->data, b->len) < 0)
        return -1;
    *size += (off_t)b->len;
    buf_reset(b);
    return 0;
}

/* mbox_append - the message at the end of fd; cut back on failure */
static int mbox_append(const struct local_request *r, const struct local_mbox_target *t,
                       int fd, struct local_result *res)
{
    struct stat st;
    struct local_mbox_escape esc = { .bol = true };
    char chunk[MBOX_CHUNK];
    buf_t out;
    int ok, e = 0;

    if (fstat(fd, &st) < 0) {
        mbox_errno_result(res, "fstat", t->path, errno);
        return -1;
    }
    off_t orig = st.st_size, size = st.st_size;
    buf_init(&out, 0);
    local_mbox_from_line(&out, r->sender, time(NULL));
    buf_printf(&out, "Return-Path: <%s>\nX-Original-To: %s\nDelivered-To: %s\n",
               r->sender, r->orig_rcpt, r->recipient);
    off_t off = r->content_offset;
    uint64_t left = r->content_size;
    bool read_error = false;
    ok = 1;
    while (ok && left > 0) {
        size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
        ssize_t n = pread(r->queue_fd, chunk, want, off);
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            read_error = true;
            ok = 0;
            break;
        }
        local_mbox_escape(&esc, chunk, (size_t)n, &out);
        off += n;
        left -= (uint64_t)n;
        if (out.len >= MBOX_CHUNK && mbox_flush(fd, &out, &size) < 0)
            ok = 0;
    }
    if (ok) {
        local_mbox_escape_end(&esc, &out);
        buf_putc(&out, '\n');
        ok = mbox_flush(fd, &out, &size) == 0 && fsync(fd) == 0;
    }
    e = errno;
    buf_free(&out);
    if (ok)
        return 0;
    if (ftruncate(fd, orig) < 0 || fsync(fd) < 0)
        log_warning("cannot truncate %s back to %lld bytes: %m", t->path,
                    (long long)orig);
    if (read_error)
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot read queue file: %s",
                         strerror(e));
    else
        mbox_errno_result(res, "cannot append message", t->path, e);
    return -1;
}

void local_mbox_deliver(const struct local_request *r, const struct local_mbox_target *t,
                        struct local_result *res)
{
    int styles;
    buf_t lock;
    int made = 0, fd = -1;

    if (local_mbox_lock_styles(var_mailbox_delivery_lock, &styles) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.5",
                         "mailbox_delivery_lock \"%s\": unknown lock method "
                         "(fcntl, flock, dotlock)", var_mailbox_delivery_lock);
        return;
    }
    if (privs_running_as_root() && t->uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to write %s as root", t->path);
        return;
    }
    buf_init(&lock, 0);
    local_mbox_lock_name(t->path, &lock);
    if (mbox_privs(t, true, res) == 0) {
        if ((styles & LOCAL_MBOX_LOCK_DOT) == 0
            || (made = mbox_dotlock(t, buf_str(&lock), res)) >= 0)
            fd = mbox_open(t, res);
        /* the rest only with the writer's IDs */
        if (fd >= 0 && mbox_privs(t, false, res) == 0
            && mbox_kernel_lock(t, fd, styles, res) == 0
            && mbox_append(r, t, fd, res) == 0) {
            local_result_set(res, DELIVER_OK, "2.0.0", "%s", t->success);
        }
        if (fd >= 0)
            close(fd);          /* drops the fcntl/flock lock */
        /* a scratch result: the delivery's outcome stands either way */
        struct local_result scratch;
        if (made > 0 && (mbox_privs(t, true, &scratch) < 0
                         || unlink(buf_str(&lock)) < 0))
            log_warning("cannot remove lock file %s: %m", buf_str(&lock));
    }
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();   /* the ID switch cleared it */
    buf_free(&lock);
}

void local_file(const struct local_request *r, const char *path, uid_t uid,
                gid_t gid, struct local_result *res)
{
    const char *why;
    char success[600];

    if (!local_mbox_path_ok(path, &why)) {
        local_result_set(res, DELIVER_BOUNCE, "5.3.5",
                         "cannot deliver to file %.200s: %s", path, why);
        return;
    }
    if (privs_running_as_root() && uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to deliver to file %.200s as root", path);
        return;
    }
    snprintf(success, sizeof(success), "delivered to file: %.500s", path);
    if (strcmp(path, "/dev/null") == 0) {
        /* as Postfix: the message is gone, and that is what was asked */
        local_result_set(res, DELIVER_OK, "2.0.0", "%s", success);
        return;
    }
    struct local_mbox_target t = {
        .path = path, .uid = uid, .gid = gid, .extra_gid = (gid_t)-1,
        .open_privs = LOCAL_MBOX_AS_USER, .must_own = false,
        .dotlock_may_fail = true, .success = success,
    };
    local_mbox_deliver(r, &t, res);
}
