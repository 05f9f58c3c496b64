/*
 * queue_reader - parse a queue file's structure and mark recipients
 * (queue_reader.h).
 *
 * The reader trusts nothing: a queue file may be truncated by a crash or
 * damaged on disk, so every record is checked against the documented
 * order and length limits, and the 'M' content length must account for
 * the file size exactly.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_reader.h"
#include "queue_record.h"
#include "util/util.h"

#define QR_BLOCK_SIZE 16384

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

    if (n != QUEUE_CONTENT_DIGITS)
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
    unsigned notify;            /* pending 'N' */
    char *dsn_orcpt;            /* pending 'P' */
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
    m->rcpts[m->nrcpts].dsn_notify = p->notify;
    m->rcpts[m->nrcpts].dsn_orcpt = p->dsn_orcpt;
    m->rcpts[m->nrcpts].offset = off;
    m->rcpts[m->nrcpts].status = type;
    m->nrcpts++;
    p->orcpt = NULL;
    p->notify = 0;
    p->dsn_orcpt = NULL;
}

/* qp_content - 'M': length must account for the rest of the file */
static const char *qp_content(struct qparse *p, const char *data, size_t len,
                              off_t off, off_t *next)
{
    off_t start = off + QUEUE_REC_HDR_LEN + (off_t)len;
    uint64_t clen;

    if (qr_parse_digits(data, len, &clen) < 0)
        return qr_error(QREC_CONTENT, off, "bad content length");
    if (clen > (uint64_t)(p->rd.size - start)
        || (uint64_t)(p->rd.size - start) - clen != QUEUE_REC_HDR_LEN) {
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
        return len == QUEUE_CONTENT_DIGITS;
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
    if (queue_rec_text_type(type) && memchr(data, '\0', len) != NULL) {
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
    case QREC_NOTIFY: {
        int r = queue_notify_parse(data, len, &p->notify);
        free(data);
        return r < 0 ? qr_error(QREC_NOTIFY, off, "bad DSN NOTIFY") : NULL;
    }
    case QREC_DSN_ORCPT:
        if (!queue_rec_dsn_valid(QREC_DSN_ORCPT, data, len)) {
            free(data);
            return qr_error(QREC_DSN_ORCPT, off, "bad DSN ORCPT");
        }
        p->dsn_orcpt = data;
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
    unsigned char hdr[QUEUE_REC_HDR_LEN];
    off_t at = *off, left = p->rd.size - at, next;
    const char *err;
    uint32_t len;
    char type, *data;

    if (left == 0)
        return qr_error(-1, at, "unexpected end of file (no 'E' record)");
    if (qr_get(&p->rd, at, hdr, left < QUEUE_REC_HDR_LEN ? 1 : QUEUE_REC_HDR_LEN) < 0)
        return qr_error(-1, at, strerror(errno));
    type = (char)hdr[0];
    if (!queue_rec_known(type))
        return qr_error((unsigned char)type, at, "unknown record type");
    if (!queue_rec_follows(p->prev, type))
        return qr_error((unsigned char)type, at, "out of order");
    if (left < QUEUE_REC_HDR_LEN)
        return qr_error((unsigned char)type, at, "truncated");
    len = queue_rec_get_len(hdr + 1);
    if (!qp_len_ok(type, len))
        return qr_error((unsigned char)type, at, "bad length");
    if ((off_t)len > left - QUEUE_REC_HDR_LEN)
        return qr_error((unsigned char)type, at, "truncated");
    data = xmalloc((size_t)len + 1);
    if (len > 0 && qr_get(&p->rd, at + QUEUE_REC_HDR_LEN, data, len) < 0) {
        free(data);
        return qr_error((unsigned char)type, at, strerror(errno));
    }
    data[len] = '\0';
    next = at + QUEUE_REC_HDR_LEN + (off_t)len;
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
    free(p->dsn_orcpt);
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
        free(m->rcpts[i].dsn_orcpt);
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
    while (off < offset && r->size - off >= QUEUE_REC_HDR_LEN) {
        unsigned char hdr[QUEUE_REC_HDR_LEN];
        uint32_t len;

        if (qr_get(r, off, hdr, sizeof(hdr)) < 0)
            goto done;
        len = queue_rec_get_len(hdr + 1);
        if (hdr[0] == QREC_CONTENT || len > QREC_MAX_LEN)
            break;                      /* past the envelope */
        off += QUEUE_REC_HDR_LEN + (off_t)len;
    }
    if (off == offset && r->size - off >= QUEUE_REC_HDR_LEN) {
        char t;

        if (qr_get(r, off, &t, 1) == 0 && queue_rec_is_rcpt(t))
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

    if (!queue_rec_is_rcpt(new_type) || offset < 0) {
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

/* queue_msg_rcpt_at - index of the recipient record at offset, or -1
   (offsets are increasing: binary search) */
long queue_msg_rcpt_at(const queue_msg_t *m, off_t offset)
{
    size_t lo = 0, hi = m->nrcpts;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (m->rcpts[mid].offset == offset)
            return (long)mid;
        if (m->rcpts[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* queue_msg_mark - as queue_file_mark for recipient i of m, whose offset
   queue_file_read() has already validated: no walk, so marking every
   recipient of a message is linear, not quadratic */
int queue_msg_mark(int fd, queue_msg_t *m, size_t i, char new_type)
{
    char t = new_type;

    if (i >= m->nrcpts || !queue_rec_is_rcpt(new_type)) {
        errno = EINVAL;
        return -1;
    }
    if (pwrite_full(fd, &t, 1, m->rcpts[i].offset) < 0 || fdatasync(fd) < 0)
        return -1;
    m->rcpts[i].status = new_type;
    return 0;
}

/* queue_msg_mark_nosync - queue_msg_mark without the fdatasync. A
   pwrite that returned is in the page cache, so no process crash can
   lose it, and every reader (qmgr re-reads the byte) sees it; only a
   power loss can, and then the record reads pending again and the
   recipient is retried. For a mark whose loss can only repeat work that
   was made durable before it (a delivery, a forwarded copy), never drop
   mail. */
int queue_msg_mark_nosync(int fd, queue_msg_t *m, size_t i, char new_type)
{
    char t = new_type;

    if (i >= m->nrcpts || !queue_rec_is_rcpt(new_type)) {
        errno = EINVAL;
        return -1;
    }
    if (pwrite_full(fd, &t, 1, m->rcpts[i].offset) < 0)
        return -1;
    m->rcpts[i].status = new_type;
    return 0;
}

bool queue_fd_is_named(int fd, const char *path)
{
    struct stat fst, pst;

    return fstat(fd, &fst) == 0 && lstat(path, &pst) == 0
           && fst.st_dev == pst.st_dev && fst.st_ino == pst.st_ino
           && fst.st_nlink > 0;
}
