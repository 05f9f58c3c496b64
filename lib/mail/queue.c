/*
 * queue - queue IDs, spool directories, and the queue file writer and
 * reader (record format in queue.h).
 *
 * The reader trusts nothing: a queue file may be truncated by a crash or
 * damaged on disk, so every record is checked against the documented
 * order and length limits, and the 'M' content length must account for
 * the file size exactly. queue_file_mark() walks the envelope records up
 * to the offset before writing, so it can never scribble on content.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue.h"
#include "util/util.h"

#define QW_BUF_SIZE   65536
#define QR_BLOCK_SIZE 16384
#define QREC_HDR_LEN  5
#define QCONTENT_DIGITS 20

static const char qid_alphabet[] =
    "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
#define QID_BASE 52
#define QID_SEC_DIGITS 6
#define QID_USEC_DIGITS 4
#define QID_HASH_INDEX (QID_SEC_DIGITS + QID_USEC_DIGITS - 1)

const char *const queue_dir_names[] = {
    QUEUE_MAILDROP, QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED,
    QUEUE_HOLD, QUEUE_CORRUPT, QUEUE_BOUNCE, QUEUE_DEFER,
    "public", "private", "pid", NULL
};

/* ---- queue IDs ------------------------------------------------------ */

/* qid_digits - value as exactly width base-52 digits (wraps modulo) */
static void qid_digits(uint64_t value, int width, char *out)
{
    for (int i = width - 1; i >= 0; i--) {
        out[i] = qid_alphabet[value % QID_BASE];
        value /= QID_BASE;
    }
}

/* queue_id_make - ID from arrival time (usec) and queue file inode */
void queue_id_make(uint64_t usec, uint64_t inode, char out[QUEUE_ID_SIZE])
{
    char ino[16];
    size_t n = 0;

    qid_digits(usec / 1000000, QID_SEC_DIGITS, out);
    qid_digits(usec % 1000000, QID_USEC_DIGITS, out + QID_SEC_DIGITS);
    do {
        ino[n++] = qid_alphabet[inode % QID_BASE];
        inode /= QID_BASE;
    } while (inode > 0);
    for (size_t i = 0; i < n; i++)
        out[QID_SEC_DIGITS + QID_USEC_DIGITS + i] = ino[n - 1 - i];
    out[QID_SEC_DIGITS + QID_USEC_DIGITS + n] = '\0';
}

/* queue_id_valid - the shape queue_id_make produces: 11..31 alphabet chars */
bool queue_id_valid(const char *s)
{
    size_t n = 0;

    if (s == NULL)
        return false;
    for (; s[n]; n++)
        if (n >= QUEUE_ID_SIZE - 1 || strchr(qid_alphabet, s[n]) == NULL)
            return false;
    return n >= QID_SEC_DIGITS + QID_USEC_DIGITS + 1;
}

/* queue_hashed - is this queue hashed into subdirectories? */
static bool queue_hashed(const char *queue)
{
    return strcmp(queue, QUEUE_DEFERRED) == 0 || strcmp(queue, QUEUE_DEFER) == 0;
}

/* queue_path - "queue/ID" or "queue/X/ID" for hashed queues */
void queue_path(const char *queue, const char *qid, buf_t *out)
{
    int r;

    buf_reset(out);
    if (queue_hashed(queue) && strlen(qid) > QID_HASH_INDEX)
        r = buf_printf(out, "%s/%c/%s", queue, qid[QID_HASH_INDEX], qid);
    else
        r = buf_printf(out, "%s/%s", queue, qid);
    if (r < 0)
        buf_reset(out);         /* an empty path fails loudly at open() */
}

/* ---- spool directories ------------------------------------------------ */

/* qdir_make - mkdir (existing is fine), then fix owner and mode */
static int qdir_make(const char *path, mode_t mode, uid_t owner, gid_t group)
{
    int fd, ret = 0;

    if (mkdir(path, mode) < 0 && errno != EEXIST)
        return -1;
    fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if ((owner != (uid_t)-1 || group != (gid_t)-1)
        && fchown(fd, owner, group) < 0)
        ret = -1;
    if (ret == 0 && fchmod(fd, mode) < 0)
        ret = -1;
    if (ret < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    close(fd);
    return 0;
}

/* qdir_mode - permissions of one spool subdirectory */
static mode_t qdir_mode(const char *name)
{
    if (strcmp(name, "public") == 0)
        return 0710;
    if (strcmp(name, QUEUE_MAILDROP) == 0)
        return 0730;
    if (strcmp(name, "pid") == 0)
        return 0755;
    return 0700;
}

/* queue_dirs_create - every spool subdirectory plus hash subdirectories */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group)
{
    buf_t path = BUF_INIT;
    int ret = -1;

    if (mkdir_p(queue_dir, 0755) < 0)
        return -1;
    for (const char *const *np = queue_dir_names; *np; np++) {
        mode_t mode = qdir_mode(*np);
        bool ours = strcmp(*np, "pid") == 0;

        /* pid/ is the caller's (root's, for a root master): master opens
           and truncates its pid file there, so $mail_owner must not be
           able to plant anything in it */
        buf_reset(&path);
        if (buf_printf(&path, "%s/%s", queue_dir, *np) < 0
            || qdir_make(buf_str(&path), mode, ours ? geteuid() : owner,
                         ours ? getegid() : group) < 0)
            goto done;
        if (!queue_hashed(*np))
            continue;
        for (const char *c = qid_alphabet; *c; c++) {
            buf_reset(&path);
            if (buf_printf(&path, "%s/%s/%c", queue_dir, *np, *c) < 0
                || qdir_make(buf_str(&path), mode, owner, group) < 0)
                goto done;
        }
    }
    ret = 0;
done:
    if (ret < 0) {
        int saved = errno;
        buf_free(&path);
        errno = saved;
        return -1;
    }
    buf_free(&path);
    return 0;
}

/* ---- record order (shared by writer and reader) ------------------------- */

static bool qrec_is_rcpt(char t)
{
    return t == QREC_RCPT || t == QREC_DONE || t == QREC_BOUNCED;
}

/* qrec_follows - may a record of type t come after one of type prev? */
static bool qrec_follows(char prev, char t)
{
    switch (t) {
    case QREC_VERSION:
        return prev == 0;
    case QREC_TIME:
        return prev == QREC_VERSION;
    case QREC_SENDER:
        return prev == QREC_TIME;
    case QREC_ATTR:
        return prev == QREC_SENDER || prev == QREC_ATTR;
    case QREC_ORCPT:
    case QREC_RCPT:
    case QREC_DONE:
    case QREC_BOUNCED:
        return prev == QREC_SENDER || prev == QREC_ATTR
               || (t != QREC_ORCPT && prev == QREC_ORCPT) || qrec_is_rcpt(prev);
    case QREC_CONTENT:
        return qrec_is_rcpt(prev);      /* so at least one recipient */
    case QREC_END:
        return prev == QREC_CONTENT;
    default:
        return false;
    }
}

/* qrec_text_type - records whose DATA is text (no NUL allowed) */
static bool qrec_text_type(char t)
{
    return t == QREC_SENDER || t == QREC_ATTR || t == QREC_ORCPT
           || qrec_is_rcpt(t);
}

static void qrec_put_len(unsigned char *p, uint32_t n)
{
    p[0] = (unsigned char)(n >> 24);
    p[1] = (unsigned char)(n >> 16);
    p[2] = (unsigned char)(n >> 8);
    p[3] = (unsigned char)n;
}

static uint32_t qrec_get_len(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8
           | (uint32_t)p[3];
}

/* ---- writer ------------------------------------------------------------- */

/* qw_flush - write out the buffer */
static int qw_flush(queue_writer_t *w)
{
    if (w->obuf.len == 0)
        return 0;
    if (write_full(w->fd, w->obuf.data, w->obuf.len) < 0) {
        w->failed = true;
        return -1;
    }
    w->written += (off_t)w->obuf.len;
    buf_reset(&w->obuf);
    return 0;
}

/* qw_put - buffered write; large chunks bypass the buffer */
static int qw_put(queue_writer_t *w, const void *p, size_t n)
{
    if (w->failed)
        return -1;
    if (w->obuf.len + n > QW_BUF_SIZE && qw_flush(w) < 0)
        return -1;
    if (n >= QW_BUF_SIZE) {
        if (write_full(w->fd, p, n) < 0) {
            w->failed = true;
            return -1;
        }
        w->written += (off_t)n;
        return 0;
    }
    if (buf_append(&w->obuf, p, n) < 0) {
        w->failed = true;
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* qw_record - append one record, enforcing order and limits */
static int qw_record(queue_writer_t *w, char type, const void *p, size_t n)
{
    unsigned char hdr[QREC_HDR_LEN];

    if (w->fd < 0 || w->failed) {
        errno = w->fd < 0 ? EBADF : EIO;
        return -1;
    }
    if (!qrec_follows(w->last_type, type) || n > QREC_MAX_LEN
        || (qrec_text_type(type) && n > 0 && memchr(p, '\0', n) != NULL)) {
        errno = EINVAL;
        return -1;
    }
    hdr[0] = (unsigned char)type;
    qrec_put_len(hdr + 1, (uint32_t)n);
    if (qw_put(w, hdr, sizeof(hdr)) < 0 || (n > 0 && qw_put(w, p, n) < 0))
        return -1;
    w->last_type = type;
    if (qrec_is_rcpt(type))
        w->nrcpts++;
    return 0;
}

/* qw_cleanup - close and remove the temp file, keeping errno */
static void qw_cleanup(queue_writer_t *w)
{
    int saved = errno;

    if (w->fd >= 0) {
        close(w->fd);
        w->fd = -1;
    }
    if (w->tmp_path[0] != '\0') {
        unlink(w->tmp_path);
        w->tmp_path[0] = '\0';
    }
    buf_free(&w->obuf);
    w->in_content = false;
    errno = saved;
}

/* qw_create - exclusive create of "queue/t.<pid>.<n>" */
static int qw_create(queue_writer_t *w, const char *queue)
{
    static unsigned counter;

    for (int attempt = 0; attempt < 100; attempt++) {
        int n = snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/t.%ld.%u",
                         queue, (long)getpid(), ++counter);

        if (n < 0 || (size_t)n >= sizeof(w->tmp_path)) {
            w->tmp_path[0] = '\0';
            errno = ENAMETOOLONG;
            return -1;
        }
        w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    w->tmp_path[0] = '\0';
    return -1;
}

/* queue_writer_open - temp file, queue ID, V and T records */
int queue_writer_open(queue_writer_t *w, const char *queue)
{
    struct stat st;
    uint64_t usec;
    char tbuf[48];

    memset(w, 0, sizeof(*w));
    w->fd = -1;
    buf_init(&w->obuf, 0);
    if (str_copy(w->queue, queue, sizeof(w->queue)) >= sizeof(w->queue)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (qw_create(w, queue) < 0) {
        qw_cleanup(w);
        return -1;
    }
    if (fstat(w->fd, &st) < 0) {
        qw_cleanup(w);
        return -1;
    }
    usec = time_now_usec();
    queue_id_make(usec, (uint64_t)st.st_ino, w->qid);
    snprintf(tbuf, sizeof(tbuf), "%llu.%06llu",
             (unsigned long long)(usec / 1000000),
             (unsigned long long)(usec % 1000000));
    if (qw_record(w, QREC_VERSION, "1", 1) < 0
        || qw_record(w, QREC_TIME, tbuf, strlen(tbuf)) < 0) {
        qw_cleanup(w);
        return -1;
    }
    return 0;
}

/* queue_writer_record - one envelope record (S, A, O, R, D, B) */
int queue_writer_record(queue_writer_t *w, char type, const void *p, size_t n)
{
    if (type == QREC_VERSION || type == QREC_TIME || type == QREC_CONTENT
        || type == QREC_END || w->in_content) {
        errno = EINVAL;
        return -1;
    }
    return qw_record(w, type, p, n);
}

/* queue_writer_attr - 'A' record "name=value" */
int queue_writer_attr(queue_writer_t *w, const char *name, const char *value)
{
    buf_t rec = BUF_INIT;
    int r;

    if (*name == '\0' || strchr(name, '=') != NULL) {
        errno = EINVAL;
        return -1;
    }
    if (buf_printf(&rec, "%s=%s", name, value) < 0) {
        buf_free(&rec);
        errno = ENOMEM;
        return -1;
    }
    r = queue_writer_record(w, QREC_ATTR, rec.data, rec.len);
    buf_free(&rec);
    return r;
}

/* queue_writer_content_begin - 'M' record with a placeholder length */
int queue_writer_content_begin(queue_writer_t *w)
{
    static const char zeros[QCONTENT_DIGITS + 1] = "00000000000000000000";

    if (w->in_content) {
        errno = EINVAL;
        return -1;
    }
    if (qw_record(w, QREC_CONTENT, zeros, QCONTENT_DIGITS) < 0)
        return -1;
    w->content_start = w->written + (off_t)w->obuf.len - QCONTENT_DIGITS;
    w->content_len = 0;
    w->in_content = true;
    return 0;
}

/* queue_writer_content - message bytes */
int queue_writer_content(queue_writer_t *w, const void *p, size_t n)
{
    if (!w->in_content || w->fd < 0) {
        errno = EINVAL;
        return -1;
    }
    if (n > 0 && qw_put(w, p, n) < 0)
        return -1;
    w->content_len += n;
    return 0;
}

/* qw_finish - E record, real content length, fsync */
static int qw_finish(queue_writer_t *w)
{
    char digits[QCONTENT_DIGITS + 1];

    if (!w->in_content && queue_writer_content_begin(w) < 0)
        return -1;
    if (qw_record(w, QREC_END, "", 0) < 0 || qw_flush(w) < 0)
        return -1;
    snprintf(digits, sizeof(digits), "%020llu",
             (unsigned long long)w->content_len);
    if (pwrite_full(w->fd, digits, QCONTENT_DIGITS, w->content_start) < 0)
        return -1;
    return fsync(w->fd);
}

/* qw_rename - temp -> final without ever replacing an existing file */
static int qw_rename(const char *from, const char *to)
{
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS)
        return -1;
    return rename(from, to);    /* filesystem without RENAME_NOREPLACE */
}

/* queue_writer_commit - make the file durable under its queue ID:
   fsync(file), rename (never over an existing name), fsync(directory).
   A crash before the directory fsync may lose the new name, but then
   no "250" was sent; a temp name left behind is removed by qmgr after
   a day. */
int queue_writer_commit(queue_writer_t *w)
{
    buf_t final = BUF_INIT;
    int saved;

    if (w->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (w->failed) {
        errno = EIO;
        goto fail;
    }
    if (qw_finish(w) < 0)
        goto fail;
    queue_path(w->queue, w->qid, &final);
    if (final.len == 0 || qw_rename(w->tmp_path, buf_str(&final)) < 0)
        goto fail;
    if (fsync_parent_dir(buf_str(&final)) < 0
        || (queue_hashed(w->queue) && fsync_dir(w->queue) < 0)) {
        saved = errno;
        unlink(buf_str(&final));    /* not durable: do not keep it either */
        errno = saved;
        goto fail;
    }
    w->tmp_path[0] = '\0';
    close(w->fd);                   /* data is fsync'd; close cannot lose it */
    w->fd = -1;
    w->in_content = false;
    buf_free(&w->obuf);
    buf_free(&final);
    return 0;
fail:
    saved = errno;
    buf_free(&final);
    w->failed = true;
    qw_cleanup(w);
    errno = saved;
    return -1;
}

/* queue_writer_abort - throw the temp file away (safe to call twice) */
void queue_writer_abort(queue_writer_t *w)
{
    qw_cleanup(w);
}

/* ---- reader --------------------------------------------------------------- */

struct qreader {
    int fd;
    off_t size;
    off_t blk_off;
    size_t blk_len;
    char blk[QR_BLOCK_SIZE];
};

static char qr_errbuf[256];

/* qr_pread - exactly n bytes at off; -1 on error or short read */
static int qr_pread(int fd, void *p, size_t n, off_t off)
{
    char *cp = p;

    while (n > 0) {
        ssize_t r = pread(fd, cp, n, off);

        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = EIO;
            return -1;
        }
        cp += r;
        off += r;
        n -= (size_t)r;
    }
    return 0;
}

/* qr_get - n bytes at off (caller checked off + n <= size) */
static int qr_get(struct qreader *r, off_t off, void *dst, size_t n)
{
    if (off >= r->blk_off && off + (off_t)n <= r->blk_off + (off_t)r->blk_len) {
        memcpy(dst, r->blk + (off - r->blk_off), n);
        return 0;
    }
    if (n > sizeof(r->blk))
        return qr_pread(r->fd, dst, n, off);
    r->blk_off = off;
    r->blk_len = sizeof(r->blk);
    if (r->size - off < (off_t)r->blk_len)
        r->blk_len = (size_t)(r->size - off);
    if (qr_pread(r->fd, r->blk, r->blk_len, off) < 0) {
        r->blk_len = 0;
        return -1;
    }
    memcpy(dst, r->blk, n);
    return 0;
}

/* qr_init - reader over fd with its current size */
static int qr_init(struct qreader *r, int fd)
{
    struct stat st;

    if (fstat(fd, &st) < 0)
        return -1;
    r->fd = fd;
    r->size = st.st_size;
    r->blk_off = 0;
    r->blk_len = 0;
    return 0;
}

/* qr_error - format "record 'X' at offset N: why" into the static buffer */
static const char *qr_error(int type, off_t off, const char *why)
{
    if (type < 0)
        snprintf(qr_errbuf, sizeof(qr_errbuf), "at offset %lld: %s",
                 (long long)off, why);
    else if (isprint(type))
        snprintf(qr_errbuf, sizeof(qr_errbuf), "record '%c' at offset %lld: %s",
                 type, (long long)off, why);
    else
        snprintf(qr_errbuf, sizeof(qr_errbuf),
                 "record 0x%02x at offset %lld: %s", type, (long long)off, why);
    return qr_errbuf;
}

/* qr_parse_time - "SECONDS.MICROSECONDS" (exactly 6 fraction digits) */
static int qr_parse_time(const char *s, size_t n, uint64_t *usec)
{
    uint64_t sec = 0, frac = 0;
    size_t i = 0, digits = 0;

    for (; i < n && isdigit((unsigned char)s[i]); i++, digits++) {
        if (digits >= 12)
            return -1;
        sec = sec * 10 + (uint64_t)(s[i] - '0');
    }
    if (digits == 0 || i >= n || s[i] != '.' || n - i - 1 != 6)
        return -1;
    for (i++; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        frac = frac * 10 + (uint64_t)(s[i] - '0');
    }
    *usec = sec * 1000000 + frac;
    return 0;
}

/* qr_parse_digits - exactly 20 decimal digits that fit in 64 bits */
static int qr_parse_digits(const char *s, size_t n, uint64_t *out)
{
    uint64_t v = 0;

    if (n != QCONTENT_DIGITS)
        return -1;
    for (size_t i = 0; i < n; i++) {
        unsigned d;

        if (!isdigit((unsigned char)s[i]))
            return -1;
        d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

struct qparse {
    struct qreader rd;
    queue_msg_t *m;
    char prev;
    char *orcpt;                /* pending 'O' for the next recipient */
    size_t attr_cap, rcpt_cap;
    bool done;
};

/* qp_attr - store an "A" record */
static const char *qp_attr(struct qparse *p, char *data, off_t off)
{
    queue_msg_t *m = p->m;
    char *eq = strchr(data, '=');

    if (eq == NULL || eq == data)
        return qr_error(QREC_ATTR, off, "malformed attribute");
    if (m->nattrs == p->attr_cap) {
        p->attr_cap = p->attr_cap ? p->attr_cap * 2 : 8;
        m->attrs = xrealloc(m->attrs, p->attr_cap * sizeof(*m->attrs));
    }
    m->attrs[m->nattrs].name = xstrndup(data, (size_t)(eq - data));
    m->attrs[m->nattrs].value = xstrdup(eq + 1);
    m->nattrs++;
    free(data);
    return NULL;
}

/* qp_rcpt - store a recipient record (takes data) */
static void qp_rcpt(struct qparse *p, char type, char *data, off_t off)
{
    queue_msg_t *m = p->m;

    if (m->nrcpts == p->rcpt_cap) {
        p->rcpt_cap = p->rcpt_cap ? p->rcpt_cap * 2 : 8;
        m->rcpts = xrealloc(m->rcpts, p->rcpt_cap * sizeof(*m->rcpts));
    }
    m->rcpts[m->nrcpts].address = data;
    m->rcpts[m->nrcpts].orcpt = p->orcpt;
    m->rcpts[m->nrcpts].offset = off;
    m->rcpts[m->nrcpts].status = type;
    m->nrcpts++;
    p->orcpt = NULL;
}

/* qp_content - 'M': length must account for the rest of the file */
static const char *qp_content(struct qparse *p, const char *data, size_t len,
                              off_t off, off_t *next)
{
    off_t start = off + QREC_HDR_LEN + (off_t)len;
    uint64_t clen;

    if (qr_parse_digits(data, len, &clen) < 0)
        return qr_error(QREC_CONTENT, off, "bad content length");
    if (clen > (uint64_t)(p->rd.size - start)
        || (uint64_t)(p->rd.size - start) - clen != QREC_HDR_LEN) {
        snprintf(qr_errbuf, sizeof(qr_errbuf),
                 "record 'M' at offset %lld: content length %llu does not "
                 "match file size %lld", (long long)off,
                 (unsigned long long)clen, (long long)p->rd.size);
        return qr_errbuf;
    }
    p->m->content_offset = start;
    p->m->content_len = clen;
    *next = start + (off_t)clen;
    return NULL;
}

/* qp_len_ok - per-type length rules */
static bool qp_len_ok(char type, uint32_t len)
{
    switch (type) {
    case QREC_VERSION:
        return len == 1;
    case QREC_TIME:
        return len >= 8 && len <= 19;
    case QREC_CONTENT:
        return len == QCONTENT_DIGITS;
    case QREC_END:
        return len == 0;
    default:
        return len <= QREC_MAX_LEN;
    }
}

/* qp_data - handle one record's DATA (owned by us until stored) */
static const char *qp_data(struct qparse *p, char type, char *data,
                           uint32_t len, off_t off, off_t *next)
{
    if (qrec_text_type(type) && memchr(data, '\0', len) != NULL) {
        free(data);
        return qr_error(type, off, "contains a NUL byte");
    }
    switch (type) {
    case QREC_VERSION: {
        bool ok = data[0] == '1';
        free(data);
        return ok ? NULL : qr_error(QREC_VERSION, off, "unsupported version");
    }
    case QREC_TIME: {
        int r = qr_parse_time(data, len, &p->m->arrival_usec);
        free(data);
        return r < 0 ? qr_error(QREC_TIME, off, "bad arrival time") : NULL;
    }
    case QREC_SENDER:
        p->m->sender = data;
        return NULL;
    case QREC_ATTR: {
        const char *err = qp_attr(p, data, off);
        if (err)
            free(data);
        return err;
    }
    case QREC_ORCPT:
        p->orcpt = data;
        return NULL;
    case QREC_CONTENT: {
        const char *err = qp_content(p, data, len, off, next);
        free(data);
        return err;
    }
    case QREC_END:
        free(data);
        p->done = true;
        return NULL;
    default:                        /* R, D, B */
        qp_rcpt(p, type, data, off);
        return NULL;
    }
}

/* qp_record - read and check the record at *off, advance *off */
static const char *qp_record(struct qparse *p, off_t *off)
{
    unsigned char hdr[QREC_HDR_LEN];
    off_t at = *off, left = p->rd.size - at, next;
    const char *err;
    uint32_t len;
    char type, *data;

    if (left == 0)
        return qr_error(-1, at, "unexpected end of file (no 'E' record)");
    if (qr_get(&p->rd, at, hdr, left < QREC_HDR_LEN ? 1 : QREC_HDR_LEN) < 0)
        return qr_error(-1, at, strerror(errno));
    type = (char)hdr[0];
    if (type == '\0' || strchr("VTSAORDBME", type) == NULL)
        return qr_error((unsigned char)type, at, "unknown record type");
    if (!qrec_follows(p->prev, type))
        return qr_error((unsigned char)type, at, "out of order");
    if (left < QREC_HDR_LEN)
        return qr_error((unsigned char)type, at, "truncated");
    len = qrec_get_len(hdr + 1);
    if (!qp_len_ok(type, len))
        return qr_error((unsigned char)type, at, "bad length");
    if ((off_t)len > left - QREC_HDR_LEN)
        return qr_error((unsigned char)type, at, "truncated");
    data = xmalloc((size_t)len + 1);
    if (len > 0 && qr_get(&p->rd, at + QREC_HDR_LEN, data, len) < 0) {
        free(data);
        return qr_error((unsigned char)type, at, strerror(errno));
    }
    data[len] = '\0';
    next = at + QREC_HDR_LEN + (off_t)len;
    p->prev = type;
    err = qp_data(p, type, data, len, at, &next);
    *off = next;
    return err;
}

/* queue_file_read - parse and validate the whole envelope */
int queue_file_read(int fd, const char *qid, queue_msg_t *m,
                    const char **error_r)
{
    struct qparse *p;
    const char *err = NULL;
    off_t off = 0;

    memset(m, 0, sizeof(*m));
    if (qid != NULL
        && str_copy(m->qid, qid, sizeof(m->qid)) >= sizeof(m->qid))
        m->qid[0] = '\0';
    p = xcalloc(1, sizeof(*p));
    p->m = m;
    if (qr_init(&p->rd, fd) < 0)
        err = qr_error(-1, 0, strerror(errno));
    while (err == NULL && !p->done)
        err = qp_record(p, &off);
    free(p->orcpt);
    free(p);
    if (err != NULL) {
        queue_msg_free(m);
        if (error_r)
            *error_r = err;
        return -1;
    }
    return 0;
}

/* queue_msg_free - release everything, leave m zeroed */
void queue_msg_free(queue_msg_t *m)
{
    free(m->sender);
    for (size_t i = 0; i < m->nattrs; i++) {
        free(m->attrs[i].name);
        free(m->attrs[i].value);
    }
    free(m->attrs);
    for (size_t i = 0; i < m->nrcpts; i++) {
        free(m->rcpts[i].address);
        free(m->rcpts[i].orcpt);
    }
    free(m->rcpts);
    memset(m, 0, sizeof(*m));
}

/* queue_msg_attr - value of the first 'A' record called name, or NULL */
const char *queue_msg_attr(const queue_msg_t *m, const char *name)
{
    for (size_t i = 0; i < m->nattrs; i++)
        if (strcmp(m->attrs[i].name, name) == 0)
            return m->attrs[i].value;
    return NULL;
}

/* qm_find_rcpt - is offset the start of a recipient record? walk to it */
static int qm_find_rcpt(int fd, off_t offset)
{
    struct qreader *r = xmalloc(sizeof(*r));
    off_t off = 0;
    int ret = -1;

    if (qr_init(r, fd) < 0)
        goto done;
    while (off < offset && r->size - off >= QREC_HDR_LEN) {
        unsigned char hdr[QREC_HDR_LEN];
        uint32_t len;

        if (qr_get(r, off, hdr, sizeof(hdr)) < 0)
            goto done;
        len = qrec_get_len(hdr + 1);
        if (hdr[0] == QREC_CONTENT || len > QREC_MAX_LEN)
            break;                      /* past the envelope */
        off += QREC_HDR_LEN + (off_t)len;
    }
    if (off == offset && r->size - off >= QREC_HDR_LEN) {
        char t;

        if (qr_get(r, off, &t, 1) == 0 && qrec_is_rcpt(t))
            ret = 0;
    }
done:
    free(r);
    if (ret < 0 && errno == 0)
        errno = EINVAL;
    return ret;
}

/* queue_file_mark - durably set a recipient record's status byte. One
   byte in place never changes the size, so fdatasync is enough; a byte
   cannot be torn. The caller replies to qmgr only after this returns. */
int queue_file_mark(int fd, off_t offset, char new_type)
{
    char t = new_type;

    if (!qrec_is_rcpt(new_type) || offset < 0) {
        errno = EINVAL;
        return -1;
    }
    errno = 0;
    if (qm_find_rcpt(fd, offset) < 0)
        return -1;
    if (pwrite_full(fd, &t, 1, offset) < 0)
        return -1;
    return fdatasync(fd);
}
