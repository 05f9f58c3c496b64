/*
 * queue_writer - create a queue file under a temporary name, append
 * records in the documented order, commit it durably (queue_writer.h).
 */
#include <dirent.h>
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

static unsigned qw_counter;         /* t.<pid>.<n> */

/* qw_tmp_name - the next "queue/t.<pid>.<n>" */
static int qw_tmp_name(queue_writer_t *w, const char *queue)
{
    int n = snprintf(w->tmp_path, sizeof(w->tmp_path), "%s/t.%ld.%u",
                     queue, (long)getpid(), ++qw_counter);

    if (n < 0 || (size_t)n >= sizeof(w->tmp_path)) {
        w->tmp_path[0] = '\0';
        errno = ENAMETOOLONG;
        return -1;
    }
    return 0;
}

/* qw_create - exclusive create of "queue/t.<pid>.<n>" */
static int qw_create(queue_writer_t *w, const char *queue)
{
    for (int attempt = 0; attempt < 100; attempt++) {
        if (qw_tmp_name(w, queue) < 0)
            return -1;
        w->fd = open(w->tmp_path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (w->fd >= 0)
            return 0;
        if (errno != EEXIST)
            break;
    }
    w->tmp_path[0] = '\0';
    return -1;
}

/* Names seen in free/ (queue_recycle), taken one by one; a process
   reads the directory again when its list is used up and free/ changed
   since (its mtime), so an empty pool costs one stat per new file. */
#define QW_FREE_NAMES 64
static struct {
    char names[QW_FREE_NAMES][QUEUE_ID_SIZE];
    size_t n, next;
    struct timespec seen_mtime;
    bool seen;
} qw_free;

/* qw_free_refill - the next names of free/; false when there are none */
static bool qw_free_refill(void)
{
    struct stat st;
    DIR *d;
    struct dirent *e;

    qw_free.n = qw_free.next = 0;
    if (stat(QUEUE_FREE, &st) < 0
        || (qw_free.seen && st.st_mtim.tv_sec == qw_free.seen_mtime.tv_sec
            && st.st_mtim.tv_nsec == qw_free.seen_mtime.tv_nsec))
        return false;
    if ((d = opendir(QUEUE_FREE)) == NULL)
        return false;
    while (qw_free.n < QW_FREE_NAMES && (e = readdir(d)) != NULL)
        if (queue_id_valid(e->d_name))
            (void)str_copy(qw_free.names[qw_free.n++], e->d_name,
                           QUEUE_ID_SIZE);
    closedir(d);
    /* a full list may leave names behind: look again next time */
    qw_free.seen = qw_free.n < QW_FREE_NAMES;
    qw_free.seen_mtime = st.st_mtim;
    return qw_free.n > 0;
}

/* qw_free_strange - free/NAME is not a plain file: not ours to use */
static bool qw_free_strange(const char *path)
{
    struct stat st;

    if (lstat(path, &st) < 0)
        return true;                    /* gone: another process took it */
    if (S_ISREG(st.st_mode))
        return false;
    if (unlink(path) < 0 && errno == EISDIR)
        (void)rmdir(path);
    return true;
}

/* qw_claim_check - the claimed file is ours alone: a regular file with
   one link, owned by us, and empty. Empty matters: qmgr renames a file
   into free/ and then truncates it, so a file with content may still be
   truncated under us (it was taken too early, or a crash came between
   the two): it is not used. */
static bool qw_claim_check(int fd)
{
    struct stat st;

    return fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1
           && st.st_uid == geteuid() && st.st_size == 0
           && ((st.st_mode & 07777) == 0600 || fchmod(fd, 0600) == 0);
}

/* qw_claim - reuse a recycled inode: rename free/NAME to our temporary
   name (only one process can win it), open it without following links,
   check it. -1 when free/ has nothing usable (create a file then). */
static int qw_claim(queue_writer_t *w, const char *queue)
{
    char from[sizeof(QUEUE_FREE) + QUEUE_ID_SIZE + 1];

    for (int tries = 0; tries < 2 * QW_FREE_NAMES; tries++) {
        if (qw_free.next >= qw_free.n && !qw_free_refill())
            return -1;
        snprintf(from, sizeof(from), "%s/%s", QUEUE_FREE,
                 qw_free.names[qw_free.next++]);
        if (qw_free_strange(from))
            continue;
        if (qw_tmp_name(w, queue) < 0)
            return -1;
        if (queue_rename_noreplace(from, w->tmp_path) < 0)
            continue;                   /* another process took it */
        w->fd = open(w->tmp_path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
        if (w->fd >= 0 && qw_claim_check(w->fd))
            return 0;
        if (w->fd >= 0)
            close(w->fd);
        w->fd = -1;
        (void)unlink(w->tmp_path);      /* not a usable queue file */
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
    if (qw_claim(w, queue) < 0 && qw_create(w, queue) < 0) {
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

/* qw_finish - E record, real content length (no fsync yet) */
static int qw_finish(queue_writer_t *w)
{
    char digits[QUEUE_CONTENT_DIGITS + 1];

    if (!w->in_content && queue_writer_content_begin(w) < 0)
        return -1;
    if (qw_record(w, QREC_END, "", 0) < 0 || qw_flush(w) < 0)
        return -1;
    snprintf(digits, sizeof(digits), "%020llu",
             (unsigned long long)w->content_len);
    return pwrite_full(w->fd, digits, QUEUE_CONTENT_DIGITS, w->content_start);
}

/* qw_fail - the commit failed: remove the file, keep errno */
static int qw_fail(queue_writer_t *w, int err)
{
    w->failed = true;
    qw_cleanup(w);
    errno = err;
    return -1;
}

/* queue_writer_seal - the file complete on disk (not yet durable) and
   described in *job for queue_sync_run */
int queue_writer_seal(queue_writer_t *w, struct queue_sync *job)
{
    buf_t final = BUF_INIT;
    const char *slash;

    memset(job, 0, sizeof(*job));
    job->fd = -1;
    if (w->fd < 0) {
        errno = EBADF;
        return -1;
    }
    if (w->failed)
        return qw_fail(w, EIO);
    if (qw_finish(w) < 0)
        return qw_fail(w, errno);
    queue_path(w->queue, w->qid, &final);
    slash = final.len > 0 ? strrchr(buf_str(&final), '/') : NULL;
    if (slash == NULL
        || str_copy(job->final_path, buf_str(&final), sizeof(job->final_path))
               >= sizeof(job->final_path)
        || (size_t)(slash - buf_str(&final)) >= sizeof(job->dir)) {
        buf_free(&final);
        return qw_fail(w, final.len == 0 ? ENOMEM : ENAMETOOLONG);
    }
    /* the directory that gets the new name: queue/ or queue/X/ */
    memcpy(job->dir, buf_str(&final), (size_t)(slash - buf_str(&final)));
    job->dir[slash - buf_str(&final)] = '\0';
    buf_free(&final);
    (void)str_copy(job->tmp_path, w->tmp_path, sizeof(job->tmp_path));
    job->fd = w->fd;
    return 0;
}

/* qs_sync_dirs - one fsync per distinct directory of the renamed jobs;
   a job whose directory failed loses its new name again */
static void qs_sync_dirs(struct queue_sync *const *jobs, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        bool first = true;
        int err = 0;

        if (!jobs[i]->renamed)
            continue;
        for (size_t k = 0; k < i && first; k++)
            if (jobs[k]->renamed && strcmp(jobs[k]->dir, jobs[i]->dir) == 0)
                first = false;
        if (!first)
            continue;
        if (fsync_dir(jobs[i]->dir) < 0)
            err = errno;
        if (err == 0)
            continue;
        for (size_t k = i; k < n; k++) {
            if (jobs[k]->renamed && strcmp(jobs[k]->dir, jobs[i]->dir) == 0) {
                (void)unlink(jobs[k]->final_path);  /* not durable: not kept */
                jobs[k]->renamed = false;
                jobs[k]->error = err;
            }
        }
    }
}

void queue_sync_run(struct queue_sync *const *jobs, size_t n)
{
    /* start every file's writeback first: the first fsync then commits
       the journal for all of them and the others find it done */
    if (n > 1)
        for (size_t i = 0; i < n; i++)
            if (jobs[i]->error == 0)
                (void)sync_file_range(jobs[i]->fd, 0, 0,
                                      SYNC_FILE_RANGE_WRITE);
    for (size_t i = 0; i < n; i++)
        if (jobs[i]->error == 0 && fsync(jobs[i]->fd) < 0)
            jobs[i]->error = errno;
    for (size_t i = 0; i < n; i++) {
        if (jobs[i]->error != 0)
            continue;
        if (queue_rename_noreplace(jobs[i]->tmp_path, jobs[i]->final_path) < 0)
            jobs[i]->error = errno;
        else
            jobs[i]->renamed = true;
    }
    qs_sync_dirs(jobs, n);
}

int queue_writer_sealed(queue_writer_t *w, const struct queue_sync *job)
{
    if (job->error != 0) {
        if (job->renamed || access(w->tmp_path, F_OK) < 0)
            w->tmp_path[0] = '\0';     /* nothing left under the temp name */
        return qw_fail(w, job->error);
    }
    w->tmp_path[0] = '\0';
    close(w->fd);                   /* data is fsync'd; close cannot lose it */
    w->fd = -1;
    w->in_content = false;
    buf_free(&w->obuf);
    return 0;
}

/* queue_writer_commit - make the file durable under its queue ID:
   fsync(file), rename (never over an existing name), fsync(directory).
   A crash before the directory fsync may lose the new name, but then
   no "250" was sent; a temp name left behind is removed by qmgr after
   a day. */
int queue_writer_commit(queue_writer_t *w)
{
    struct queue_sync job, *jobs[1] = { &job };

    if (queue_writer_seal(w, &job) < 0)
        return -1;
    queue_sync_run(jobs, 1);
    return queue_writer_sealed(w, &job);
}

/* queue_writer_abort - throw the temp file away (safe to call twice) */
void queue_writer_abort(queue_writer_t *w)
{
    qw_cleanup(w);
}
