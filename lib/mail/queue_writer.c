/*
 * queue_writer - create a queue file under a temporary name, append
 * records in the documented order, commit it durably (queue_writer.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "queue_writer.h"
#include "queue_record.h"
#include "util/util.h"

#define QW_BUF_SIZE   65536

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
    unsigned char hdr[QUEUE_REC_HDR_LEN];

    if (w->fd < 0 || w->failed) {
        errno = w->fd < 0 ? EBADF : EIO;
        return -1;
    }
    if (!queue_rec_follows(w->last_type, type) || n > QREC_MAX_LEN
        || (queue_rec_text_type(type) && n > 0 && memchr(p, '\0', n) != NULL)
        || !queue_rec_dsn_valid(type, p, n)) {
        errno = EINVAL;
        return -1;
    }
    hdr[0] = (unsigned char)type;
    queue_rec_put_len(hdr + 1, (uint32_t)n);
    if (qw_put(w, hdr, sizeof(hdr)) < 0 || (n > 0 && qw_put(w, p, n) < 0))
        return -1;
    w->last_type = type;
    if (queue_rec_is_rcpt(type))
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
    static const char zeros[QUEUE_CONTENT_DIGITS + 1] = "00000000000000000000";

    if (w->in_content) {
        errno = EINVAL;
        return -1;
    }
    if (qw_record(w, QREC_CONTENT, zeros, QUEUE_CONTENT_DIGITS) < 0)
        return -1;
    w->content_start = w->written + (off_t)w->obuf.len - QUEUE_CONTENT_DIGITS;
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
    char digits[QUEUE_CONTENT_DIGITS + 1];

    if (!w->in_content && queue_writer_content_begin(w) < 0)
        return -1;
    if (qw_record(w, QREC_END, "", 0) < 0 || qw_flush(w) < 0)
        return -1;
    snprintf(digits, sizeof(digits), "%020llu",
             (unsigned long long)w->content_len);
    if (pwrite_full(w->fd, digits, QUEUE_CONTENT_DIGITS, w->content_start) < 0)
        return -1;
    return fsync(w->fd);
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
    if (final.len == 0 || queue_rename_noreplace(w->tmp_path, buf_str(&final)) < 0)
        goto fail;
    if (fsync_parent_dir(buf_str(&final)) < 0
        || (queue_is_hashed(w->queue) && fsync_dir(w->queue) < 0)) {
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
