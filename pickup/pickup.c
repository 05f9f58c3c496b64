/*
 * pickup - moves local submissions (sendmail -> postdrop -> maildrop/)
 * into the queue through cleanup, as Postfix's pickup(8). A trigger
 * server on public/pickup: every wake-up (postdrop's 'A', master's 'W'
 * every $wakeup seconds) and the start-up scan take every file in
 * maildrop/.
 *
 * Per file: open O_NOFOLLOW|O_NONBLOCK; fstat must show a regular file
 * with one link, in maildrop/'s group (only postdrop, set-gid to it,
 * makes such files), no larger than maildrop_file_max($message_size_limit).
 * Every record is checked by the strict reader (mail/maildrop.h). The
 * submitter is the file's owner uid, logged as Postfix does
 * ("QUEUEID: uid=1000 from=<user>"); nothing in the file can claim
 * another identity. The envelope, our Received: ("from userid N"),
 * the header section (with -t its To/Cc/Bcc, or the Resent- ones when
 * there are any, add recipients; Bcc headers are removed; a missing
 * From: is added from the sender and full name) and the body go through
 * cleanup (Message-ID:/Date: when missing, header/body checks, virtual
 * aliases, the durable commit into incoming/); then qmgr is woken and
 * the maildrop file removed. A crash between the commit and the removal
 * queues the message twice (at worst twice, never lost).
 *
 * The sender must be one that $local_login_sender_maps allows the file
 * owner's login name (mail/login_sender.h), as postdrop checked before:
 * a file that fails here did not come through postdrop, or the table
 * changed since. It is not delivered and not bounced (a bounce would go
 * to the sender it forged): it moves to corrupt/ with a warning that
 * names its queue ID, the user and the address. The owner's login name
 * comes from the password database, through proxymap when chrooted; a
 * table or proxymap that fails leaves the file for a later scan.
 *
 * Malformed, oversized or foreign-group files move to corrupt/ with a
 * log line; what cannot be moved safely (symlinks, hard links, FIFOs,
 * sockets, devices, directories) is removed by name, with a log line.
 * Postdrop's own t.PID.N files are left alone for a day.
 *
 * Security: runs as $mail_owner, chrooted (master.conf). Everything in
 * maildrop/ comes from local users: only the name is used for the
 * directory entry itself (openat, renameat, unlinkat in maildrop/, which
 * $mail_owner owns), the content only as data. Before the file's name
 * is removed or moved, it must still be the inode that was read.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/cleanup.h"
#include "mail/config.h"
#include "mail/dict_proxy.h"
#include "mail/login_sender.h"
#include "mail/maildrop.h"
#include "mail/queue.h"
#include "mail/queue_record.h"
#include "mail/server.h"
#include "util/buf.h"
#include "util/events.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define PICKUP_TEMP_MAX_AGE (24 * 3600)     /* postdrop's t.* files */
/* cleanup counts the Received: and From: pickup adds (a host name, a
   sender and a full name of at most MAILDROP_TEXT_MAX each); postdrop
   checked the message itself against $message_size_limit */
#define PICKUP_ADDED_MAX (4 * MAILDROP_TEXT_MAX + 1024)

static ev_loop_t *pk_loop;
static ev_timer_t pk_scan_timer;
static maps_t *pk_login_maps;       /* $local_login_sender_maps */
static bool pk_login_any;           /* it is the default, static:* */
static bool pk_login_broken;        /* it could not be opened */

/* one message on its way from a maildrop file into cleanup */
struct pk_msg {
    const char *name;
    uid_t uid;
    /* envelope */
    char *sender;
    char *fullname;
    char *dsn_ret, *dsn_envid;
    unsigned notify;
    bool extract;
    char **rcpts;
    size_t nrcpts, rcpt_cap;
    /* content before the header section is known to be complete */
    buf_t head;
    bool started;               /* cleanup has the envelope */
    cleanup_t *c;
    const char *fail;           /* why the message cannot be queued */
    buf_t why;                  /* room for a fail text of our own */
    bool temp_fail;             /* try again later */
};

static void pk_rcpt_add(struct pk_msg *m, const char *rcpt)
{
    if (m->nrcpts == m->rcpt_cap) {
        size_t cap = m->rcpt_cap ? m->rcpt_cap * 2 : 8;
        m->rcpts = xrealloc(m->rcpts, cap * sizeof(*m->rcpts));
        m->rcpt_cap = cap;
    }
    m->rcpts[m->nrcpts++] = xstrdup(rcpt);
}

static void pk_msg_free(struct pk_msg *m)
{
    buf_free(&m->why);
    free(m->sender);
    free(m->fullname);
    free(m->dsn_ret);
    free(m->dsn_envid);
    for (size_t i = 0; i < m->nrcpts; i++)
        free(m->rcpts[i]);
    free(m->rcpts);
    buf_free(&m->head);
    if (m->c != NULL)
        cleanup_free(m->c);
}

/* --- the header section ------------------------------------------------- */

/* pk_header_end - where the header section of p[0..n) ends (the offset
   of the body, an empty separator line included in the headers), or -1
   when it may go on past n; at_end: no more content follows */
static long pk_header_end(const char *p, size_t n, bool at_end)
{
    size_t i = 0;

    while (i < n) {
        const char *lf = memchr(p + i, '\n', n - i);
        size_t end = lf ? (size_t)(lf - p) : n;

        if (lf == NULL && !at_end)
            return -1;              /* an incomplete line: wait */
        if (end == i || (end == i + 1 && p[i] == '\r'))
            return (long)(lf ? end + 1 : end);         /* empty line */
        if (p[i] == ' ' || p[i] == '\t') {
            if (i == 0)
                return 0;           /* a continuation of nothing */
        } else {
            size_t k = i;
            while (k < end && p[k] > ' ' && p[k] < 0x7F && p[k] != ':')
                k++;
            if (k == i || k >= end || p[k] != ':')
                return (long)i;     /* not a header: the body starts here */
        }
        i = lf ? end + 1 : end;
    }
    return at_end ? (long)n : -1;
}

struct pk_hdr_ctx {
    struct pk_msg *m;
    bool resent;
};

static int pk_addr_add(void *ctx, const char *addr)
{
    struct pk_msg *m = ctx;

    if (m->nrcpts >= MAILDROP_RCPT_MAX)
        return -1;
    pk_rcpt_add(m, addr);
    return 0;
}

static const char *const pk_rcpt_headers[] = { "To", "Cc", "Bcc" };
static const char *const pk_resent_headers[] = { "Resent-To", "Resent-Cc",
                                                 "Resent-Bcc" };

/* pk_rcpt_header - value offset if h is one of names, else 0 */
static size_t pk_rcpt_header(const char *h, size_t n,
                             const char *const names[3])
{
    size_t v;

    for (int k = 0; k < 3; k++)
        if ((v = maildrop_header_is(h, n, names[k])) > 0)
            return v;
    return 0;
}

/* pk_extract - -t: the recipients of the header section hdr[0..n);
   the Resent- headers when there is one, else To, Cc, Bcc */
static int pk_extract(struct pk_msg *m, const char *hdr, size_t n)
{
    bool resent = false;

    for (int pass = 0; pass < 2; pass++) {
        size_t i = 0;

        while (i < n) {
            /* one logical header: its first line and the continuations */
            size_t j = i;
            do {
                const char *lf = memchr(hdr + j, '\n', n - j);
                j = lf ? (size_t)(lf - hdr) + 1 : n;
            } while (j < n && (hdr[j] == ' ' || hdr[j] == '\t'));
            size_t v;
            if (pass == 0) {
                if (pk_rcpt_header(hdr + i, j - i, pk_resent_headers) > 0)
                    resent = true;
            } else if ((v = pk_rcpt_header(hdr + i, j - i,
                                           resent ? pk_resent_headers
                                                  : pk_rcpt_headers)) > 0) {
                if (maildrop_header_addrs(hdr + i + v, j - i - v, pk_addr_add,
                                          m) < 0)
                    return -1;
            }
            i = j;
        }
    }
    return 0;
}

/* pk_from_header - "From: Full Name <sender>" (the name quoted when it
   is not a plain phrase), or "From: sender" */
static void pk_from_header(const struct pk_msg *m, buf_t *out)
{
    const char *s = m->sender;
    bool plain = true;

    (void)buf_puts(out, "From: ");
    if (m->fullname != NULL && m->fullname[0] != '\0') {
        for (const char *p = m->fullname; *p; p++)
            if (strchr("()<>[]:;@\\,.\"", *p) != NULL)
                plain = false;
        if (plain) {
            (void)buf_printf(out, "%s ", m->fullname);
        } else {
            (void)buf_putc(out, '"');
            for (const char *p = m->fullname; *p; p++) {
                if (*p == '"' || *p == '\\')
                    (void)buf_putc(out, '\\');
                (void)buf_putc(out, *p);
            }
            (void)buf_puts(out, "\" ");
        }
        (void)buf_printf(out, "<%s", s);
    } else {
        (void)buf_puts(out, s);
    }
    if (strchr(s, '@') == NULL && var_append_at_myorigin && var_myorigin
        && var_myorigin[0])
        (void)buf_printf(out, "@%s", var_myorigin);
    (void)buf_puts(out, m->fullname && m->fullname[0] ? ">\n" : "\n");
}

/* pk_received - our Received: header, as Postfix's pickup writes it */
static int pk_received(struct pk_msg *m)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    buf_t h = BUF_INIT;
    int rc;

    if (localtime_r(&now, &tm) == NULL
        || strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        str_copy(date, "Thu, 01 Jan 1970 00:00:00 +0000", sizeof(date));
    (void)buf_printf(&h, "Received: by %s (%s, from userid %ld)\n\tid %s; %s\n",
                     var_myhostname, var_mail_name, (long)m->uid,
                     cleanup_qid(m->c), date);
    rc = cleanup_content(m->c, h.data, h.len);
    buf_free(&h);
    return rc;
}

/* pk_start - the header section is complete (hlen bytes of m->head):
   give cleanup the envelope, our headers, the edited header section and
   what of the body was read with it */
static int pk_start(struct pk_msg *m, size_t hlen)
{
    const char *h = buf_str(&m->head);
    bool have_from = false;
    buf_t out = BUF_INIT;
    size_t i = 0;

    m->started = true;
    if (m->extract && pk_extract(m, h, hlen) < 0) {
        m->fail = "too many recipients";
        return -1;
    }
    if (m->nrcpts == 0) {
        m->fail = "no recipient addresses found in message header";
        return -1;
    }
    if ((m->c = cleanup_open(QUEUE_INCOMING, CLEANUP_FLAG_ADD_MISSING)) == NULL) {
        log_warning("cannot open a queue file: %s", strerror(errno));
        m->temp_fail = true;
        return -1;
    }
    if (var_message_size_limit > 0)
        cleanup_set_size_limit(m->c, (uint64_t)var_message_size_limit
                                     + PICKUP_ADDED_MAX);
    if (cleanup_sender(m->c, m->sender) < 0
        || cleanup_attr(m->c, "protocol", "local") < 0
        || (m->dsn_envid && cleanup_attr(m->c, "dsn_envid", m->dsn_envid) < 0)
        || (m->dsn_ret && cleanup_attr(m->c, "dsn_ret", m->dsn_ret) < 0))
        goto cleanup_failed;
    for (size_t k = 0; k < m->nrcpts; k++)
        if (cleanup_rcpt_dsn(m->c, NULL, m->rcpts[k], m->notify, NULL) < 0)
            goto cleanup_failed;
    log_info("%s: uid=%ld from=<%s>", cleanup_qid(m->c), (long)m->uid, m->sender);
    if (cleanup_content_begin(m->c) < 0 || pk_received(m) < 0)
        goto cleanup_failed;
    /* the header section without Bcc:/Resent-Bcc: */
    while (i < hlen) {
        size_t j = i;
        do {
            const char *lf = memchr(h + j, '\n', hlen - j);
            j = lf ? (size_t)(lf - h) + 1 : hlen;
        } while (j < hlen && (h[j] == ' ' || h[j] == '\t'));
        if (maildrop_header_is(h + i, j - i, "From") > 0)
            have_from = true;
        bool empty = (j - i == 1) || (j - i == 2 && h[i] == '\r');
        if (empty && !have_from && m->sender[0] != '\0') {
            pk_from_header(m, &out);
            have_from = true;
        }
        if (maildrop_header_is(h + i, j - i, "Bcc") == 0
            && maildrop_header_is(h + i, j - i, "Resent-Bcc") == 0)
            (void)buf_append(&out, h + i, j - i);
        i = j;
    }
    if (!have_from && m->sender[0] != '\0') {
        /* no separator line: the From: goes after the last header (which
           gets its LF), and the body, if any, gets its empty line */
        if (out.len > 0 && out.data[out.len - 1] != '\n')
            (void)buf_putc(&out, '\n');
        pk_from_header(m, &out);
        if (m->head.len > hlen)
            (void)buf_putc(&out, '\n');
    }
    if ((out.len > 0 && cleanup_content(m->c, out.data, out.len) < 0)
        || (m->head.len > hlen
            && cleanup_content(m->c, h + hlen, m->head.len - hlen) < 0)) {
        buf_free(&out);
        goto cleanup_failed;
    }
    buf_free(&out);
    buf_free(&m->head);
    return 0;

cleanup_failed:
    if (errno == EFBIG) {
        m->fail = "message too large";
    } else {
        log_warning("%s: cannot queue the message: %s",
                    m->c ? cleanup_qid(m->c) : "NOQUEUE", strerror(errno));
        m->temp_fail = true;
    }
    return -1;
}

/* pk_content - content bytes: buffered until the header section is
   complete (at most $header_size_limit of it is looked at), then
   straight into cleanup */
static int pk_content(struct pk_msg *m, const char *p, size_t n, bool at_end)
{
    long hend;

    if (m->started) {
        if (n > 0 && cleanup_content(m->c, p, n) < 0) {
            if (errno == EFBIG) {
                m->fail = "message too large";
            } else {
                log_warning("%s: cannot queue the message: %s",
                            cleanup_qid(m->c), strerror(errno));
                m->temp_fail = true;
            }
            return -1;
        }
        return 0;
    }
    if (n > 0 && buf_append(&m->head, p, n) < 0) {
        m->fail = "out of memory";
        return -1;
    }
    hend = pk_header_end(m->head.data ? m->head.data : "", m->head.len, at_end);
    if (hend < 0 && m->head.len > (size_t)var_header_size_limit)
        hend = (long)m->head.len;   /* cleanup ends it at its limit */
    if (hend < 0)
        return 0;
    return pk_start(m, (size_t)hend);
}

/* pk_login_key - the owner's $local_login_sender_maps key; 0 or -1
   (the password database or proxymap failed) */
static int pk_login_key(uid_t uid, buf_t *key)
{
    struct privs_account a;
    buf_t name = BUF_INIT;
    int rc;

    if (dict_proxy_all()) {     /* chrooted: no password database here */
        rc = dict_proxy_local_login((unsigned long)uid, &name);
        login_sender_key(uid, rc == 1 ? buf_str(&name) : NULL, key);
    } else {
        rc = privs_account_by_uid(uid, &a);
        login_sender_key(uid, rc == 1 ? a.name : NULL, key);
    }
    buf_free(&name);
    return rc < 0 ? -1 : 0;
}

/* pk_sender_ok - may the file's owner use this sender? 0 yes; -1 with
   m->fail (refused) or m->temp_fail */
static int pk_sender_ok(struct pk_msg *m, const char *sender)
{
    buf_t key = BUF_INIT;
    int rc;

    if (pk_login_any)
        return 0;
    if (pk_login_broken || pk_login_key(m->uid, &key) < 0) {
        log_warning("%s/%s: uid=%ld: cannot check local_login_sender_maps; "
                    "will try again", QUEUE_MAILDROP, m->name, (long)m->uid);
        m->temp_fail = true;
        buf_free(&key);
        return -1;
    }
    rc = login_sender_check(pk_login_maps, buf_str(&key), sender);
    if (rc < 0) {
        log_warning("%s/%s: uid=%ld: local_login_sender_maps lookup of %s "
                    "failed; will try again", QUEUE_MAILDROP, m->name,
                    (long)m->uid, buf_str(&key));
        m->temp_fail = true;
    } else if (rc == 0) {
        buf_reset(&m->why);
        (void)buf_printf(&m->why, "User %s(%ld) is not allowed to use sender "
                         "address \"%s\"", buf_str(&key), (long)m->uid,
                         sender[0] ? sender
                         : var_empty_address_local_login_sender_maps_lookup_key);
        m->fail = buf_str(&m->why);
    }
    buf_free(&key);
    return rc == 1 ? 0 : -1;
}

/* pk_record - one checked record of the file */
static int pk_record(void *ctx, const struct maildrop_rec *r, const char **err)
{
    struct pk_msg *m = ctx;
    const char *eq;

    switch (r->type) {
    case MDREC_SENDER:
        if (pk_sender_ok(m, r->data) < 0) {
            *err = m->fail ? m->fail : "cannot check the sender";
            return -1;
        }
        m->sender = xstrdup(r->data);
        break;
    case MDREC_FULLNAME:
        m->fullname = xstrdup(r->data);
        break;
    case MDREC_ATTR:
        eq = strchr(r->data, '=');  /* the reader checked name and value */
        if (strncmp(r->data, "dsn_ret=", 8) == 0)
            m->dsn_ret = xstrdup(eq + 1);
        else if (strncmp(r->data, "dsn_envid=", 10) == 0)
            m->dsn_envid = xstrdup(eq + 1);
        else if (strncmp(r->data, "dsn_notify=", 11) == 0)
            (void)queue_notify_parse(eq + 1, strlen(eq + 1), &m->notify);
        else if (strcmp(r->data, "extract=yes") == 0)
            m->extract = true;
        break;
    case MDREC_RCPT:
        pk_rcpt_add(m, r->data);
        break;
    case MDREC_CONTENT:
        if (pk_content(m, r->data, r->len, false) < 0) {
            *err = m->fail ? m->fail : "cannot queue";
            return -1;
        }
        break;
    case MDREC_END:
        if (pk_content(m, "", 0, true) < 0) {
            *err = m->fail ? m->fail : "cannot queue";
            return -1;
        }
        break;
    default:
        break;
    }
    return 0;
}

/* --- one maildrop file ----------------------------------------------------- */

/* pk_same - does name in dfd still refer to st's inode? */
static bool pk_same(int dfd, const char *name, const struct stat *st)
{
    struct stat now;

    return fstatat(dfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0
           && now.st_dev == st->st_dev && now.st_ino == st->st_ino;
}

/* pk_remove - take away a name that must not be read or moved */
static void pk_remove(int dfd, const char *name, const char *why, bool dir)
{
    if (unlinkat(dfd, name, dir ? AT_REMOVEDIR : 0) < 0 && errno != ENOENT)
        log_warning("%s/%s: %s: cannot remove it: %s", QUEUE_MAILDROP, name,
                    why, strerror(errno));
    else
        log_warning("%s/%s: %s: removed", QUEUE_MAILDROP, name, why);
}

/* pk_corrupt - keep a bad file in corrupt/ for the administrator */
static void pk_corrupt(int dfd, const char *name, uid_t uid, const char *why)
{
    buf_t to = BUF_INIT;
    int rc;

    (void)buf_printf(&to, "%s/%s", QUEUE_CORRUPT, name);
    rc = renameat2(dfd, name, AT_FDCWD, buf_str(&to), RENAME_NOREPLACE);
    if (rc < 0 && (errno == EINVAL || errno == ENOSYS))
        rc = renameat(dfd, name, AT_FDCWD, buf_str(&to));
    if (rc < 0 && errno == EEXIST) {
        buf_reset(&to);
        (void)buf_printf(&to, "%s/%s.%llu", QUEUE_CORRUPT, name,
                         (unsigned long long)time_now_usec());
        rc = renameat2(dfd, name, AT_FDCWD, buf_str(&to), RENAME_NOREPLACE);
    }
    if (rc < 0) {
        log_warning("%s/%s: uid=%ld: %s: cannot move it to %s/: %s",
                    QUEUE_MAILDROP, name, (long)uid, why, QUEUE_CORRUPT,
                    strerror(errno));
        pk_remove(dfd, name, why, false);
    } else {
        (void)fsync_dir(QUEUE_CORRUPT);
        log_warning("%s/%s: uid=%ld: %s: moved to %s", QUEUE_MAILDROP, name,
                    (long)uid, why, buf_str(&to));
    }
    buf_free(&to);
}

/* pk_read - the file's records into cleanup; 0 queued (or discarded),
   -1 with m->fail (bad file) or m->temp_fail */
static int pk_read(int fd, struct pk_msg *m)
{
    maildrop_reader_t r;
    char buf[65536];
    const char *why = NULL;
    ssize_t n;
    int rc = 0;

    maildrop_reader_init(&r, (uint64_t)var_message_size_limit);
    while (rc == 0 && (n = read(fd, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            log_warning("%s/%s: read: %s", QUEUE_MAILDROP, m->name,
                        strerror(errno));
            m->temp_fail = true;
            rc = -1;
            break;
        }
        rc = maildrop_reader_feed(&r, buf, (size_t)n, pk_record, m, &why);
    }
    if (rc == 0)
        rc = maildrop_reader_end(&r, &why);
    if (rc < 0 && !m->temp_fail && m->fail == NULL)
        m->fail = why ? why : "malformed file";
    maildrop_reader_free(&r);
    if (rc < 0)
        return -1;
    if (cleanup_commit(m->c) < 0) {
        if (errno == EFBIG) {
            m->fail = "message too large";
        } else if (cleanup_outcome(m->c, NULL, NULL) == CLEANUP_REJECTED) {
            return 0;       /* cleanup logged the reject; nothing to keep */
        } else {
            log_warning("%s: cannot queue the message: %s", cleanup_qid(m->c),
                        strerror(errno));
            m->temp_fail = true;
        }
        return -1;
    }
    return 0;
}

/* pk_file - take one maildrop file; true when it was dealt with (so a
   scan need not come back for it now) */
static bool pk_file(int dfd, gid_t group, const char *name)
{
    struct stat st;
    struct pk_msg m;
    uint64_t max = maildrop_file_max((uint64_t)var_message_size_limit);
    int fd;

    fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int err = errno;
        if (err == ENOENT)
            return true;
        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            return true;
        if (S_ISLNK(st.st_mode))
            pk_remove(dfd, name, "symbolic link", false);
        else if (S_ISREG(st.st_mode) && st.st_nlink == 1)
            pk_corrupt(dfd, name, st.st_uid, strerror(err));
        else
            pk_remove(dfd, name, "not a regular file", false);
        return true;
    }
    if (fstat(fd, &st) < 0) {
        log_warning("%s/%s: fstat: %s", QUEUE_MAILDROP, name, strerror(errno));
        close(fd);
        return false;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        pk_remove(dfd, name, S_ISDIR(st.st_mode) ? "a directory"
                             : "not a regular file", S_ISDIR(st.st_mode));
        return true;
    }
    if (st.st_nlink != 1) {
        close(fd);
        pk_remove(dfd, name, "file has several links", false);
        return true;
    }
    if (st.st_gid != group || (uint64_t)st.st_size > max) {
        close(fd);
        if (pk_same(dfd, name, &st))
            pk_corrupt(dfd, name, st.st_uid, st.st_gid != group
                       ? "file not written by postdrop (wrong group)"
                       : "file too large");
        return true;
    }
    memset(&m, 0, sizeof(m));
    m.name = name;
    m.uid = st.st_uid;
    buf_init(&m.head, (size_t)var_header_size_limit + 2 * MAILDROP_CHUNK_MAX);
    buf_init(&m.why, 0);
    if (pk_read(fd, &m) < 0) {
        close(fd);
        if (m.temp_fail) {
            pk_msg_free(&m);
            return false;
        }
        if (m.c != NULL)
            cleanup_abort(m.c);
        if (pk_same(dfd, name, &st))
            pk_corrupt(dfd, name, m.uid, m.fail);
        pk_msg_free(&m);
        return true;
    }
    close(fd);
    if (cleanup_outcome(m.c, NULL, NULL) != CLEANUP_DISCARDED
        && cleanup_outcome(m.c, NULL, NULL) != CLEANUP_REJECTED
        && trigger_send("public/qmgr", TRIGGER_NEW_MAIL) < 0)
        log_debug("trigger public/qmgr: %s", strerror(errno));
    if (pk_same(dfd, name, &st) && unlinkat(dfd, name, 0) < 0)
        log_warning("%s/%s: remove: %s", QUEUE_MAILDROP, name, strerror(errno));
    pk_msg_free(&m);
    return true;
}

/* pk_temp_file - a postdrop temporary file: removed when a day old */
static void pk_temp_file(int dfd, const char *name)
{
    struct stat st;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0
        && st.st_mtime + PICKUP_TEMP_MAX_AGE < time(NULL))
        pk_remove(dfd, name, "stale temporary file", S_ISDIR(st.st_mode));
}

/* pk_scan - every file in maildrop/ */
static void pk_scan(ev_loop_t *loop, void *arg)
{
    DIR *d;
    struct dirent *e;
    struct stat dst;
    int dfd;
    bool retry = false;

    (void)loop;
    (void)arg;
    dfd = open(QUEUE_MAILDROP, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0 || fstat(dfd, &dst) < 0 || (d = fdopendir(dfd)) == NULL) {
        log_warning("open %s: %s", QUEUE_MAILDROP, strerror(errno));
        if (dfd >= 0)
            close(dfd);
        return;
    }
    while ((e = readdir(d)) != NULL && !server_stopping()) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (strncmp(e->d_name, "t.", 2) == 0) {
            pk_temp_file(dfd, e->d_name);
            continue;
        }
        if (!pk_file(dfd, dst.st_gid, e->d_name))
            retry = true;
    }
    closedir(d);
    /* a temporary failure (queue full, tables down): try again soon */
    if (retry && !ev_timer_active(&pk_scan_timer))
        ev_timer_set(pk_loop, &pk_scan_timer, 10 * 1000);
}

static void pk_trigger(ev_loop_t *loop, const char *data, size_t len)
{
    (void)data;
    (void)len;
    ev_timer_set(loop, &pk_scan_timer, 0);
}

static void pk_pre_init(const char *service, char **args, int nargs)
{
    const char *why;

    (void)service;
    (void)args;
    (void)nargs;
    /* header/body check tables cannot be opened inside the jail */
    if (cleanup_checks_open(&why) < 0)
        log_warning("%s; local mail waits until the table is fixed", why);
    /* nor can the sender tables (lmdb: ones go through proxymap); the
       default allows every sender and needs no lookup at all */
    pk_login_any = strcmp(var_local_login_sender_maps, "static:*") == 0;
    if (!pk_login_any
        && (pk_login_maps = maps_open_missing_ok(var_local_login_sender_maps,
                                                 &why)) == NULL) {
        log_warning("local_login_sender_maps: %s; local mail waits until "
                    "the table is fixed", why ? why : "bad table");
        pk_login_broken = true;
    }
}

static void pk_post_init(ev_loop_t *loop)
{
    pk_loop = loop;
    ev_timer_init(&pk_scan_timer, pk_scan, NULL);
    ev_timer_set(loop, &pk_scan_timer, 0);      /* the start-up scan */
}

static void pk_pre_exit(void)
{
    cleanup_checks_close();
    maps_close(pk_login_maps);
    pk_login_maps = NULL;
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = pk_pre_init,
        .post_init = pk_post_init,
        .pre_exit = pk_pre_exit,
        .on_trigger = pk_trigger,
    };

    return trigger_server_main(argc, argv, &ops);
}
