/*
 * bounce_log - per-message logs of delivery results and sent notices in
 * defer/ (bounce_log.h). Only qmgr writes them, one process, so appends
 * need no lock; every open refuses symlinks and anything but a regular
 * file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "mail/bounce_log.h"
#include "mail/queue.h"
#include "util/sys.h"
#include "util/util.h"

#define BL_OPEN_FLAGS (O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)

int bounce_log_path(const char *qid, buf_t *out)
{
    buf_reset(out);
    if (!queue_id_valid(qid)) {
        errno = EINVAL;
        return -1;
    }
    queue_path(QUEUE_DEFER, qid, out);
    if (out->len == 0) {
        errno = ENOMEM;
        return -1;
    }
    return 0;
}

/* ---- the line format ---------------------------------------------------- */

/* bl_dsn_ok - an RFC 3463 status code: class "." subject "." detail */
static bool bl_dsn_ok(const char *dsn, size_t len)
{
    size_t i = 0, parts = 0;

    if (len == 0 || len >= BOUNCE_LOG_DSN_SIZE)
        return false;
    while (i < len) {
        size_t digits = 0;

        while (i < len && dsn[i] >= '0' && dsn[i] <= '9') {
            i++;
            digits++;
        }
        if (digits == 0 || digits > 3 || (parts == 0 && digits != 1))
            return false;
        parts++;
        if (i < len && (dsn[i] != '.' || ++i == len))
            return false;
    }
    return parts == 3;
}

int bounce_log_format(const struct bounce_log_rec *rec, buf_t *out)
{
    size_t start = out->len;
    const char *dsn = rec->dsn[0] != '\0'
                      && bl_dsn_ok(rec->dsn, strlen(rec->dsn)) ? rec->dsn : "-";
    int r = buf_printf(out, "%c %llu %d %s", rec->type,
                       (unsigned long long)rec->offset, rec->status, dsn);

    if (r == 0 && rec->reason != NULL && rec->reason[0] != '\0') {
        size_t n = strlen(rec->reason);

        if (n > BOUNCE_LOG_REASON_MAX)
            n = BOUNCE_LOG_REASON_MAX;
        r = buf_putc(out, ' ');
        for (size_t i = 0; r == 0 && i < n; i++) {
            unsigned char c = (unsigned char)rec->reason[i];

            if (c == '%' || c < 0x20 || c == 0x7f)
                r = buf_printf(out, "%%%02X", c);
            else
                r = buf_putc(out, c);
        }
    }
    if (r == 0)
        r = buf_putc(out, '\n');
    if (r < 0)
        buf_truncate(out, start);
    return r;
}

static int bl_hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* bl_field - the next space-separated field of [*p, end) */
static bool bl_field(const char **p, const char *end, const char **f,
                     size_t *n)
{
    const char *s = *p, *e = memchr(s, ' ', (size_t)(end - s));

    if (e == NULL)
        e = end;
    *f = s;
    *n = (size_t)(e - s);
    *p = e < end ? e + 1 : end;
    return *n > 0;
}

int bounce_log_parse(const char *line, size_t len, struct bounce_log_rec *rec)
{
    const char *p = line, *end = line + len, *f;
    size_t n;
    uint64_t off = 0;

    memset(rec, 0, sizeof(*rec));
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            return -1;
    if (!bl_field(&p, end, &f, &n) || n != 1
        || (f[0] != BOUNCE_LOG_RESULT && f[0] != BOUNCE_LOG_SUCCESS_SENT
            && f[0] != BOUNCE_LOG_DELAY_SENT))
        return -1;
    rec->type = f[0];
    if (!bl_field(&p, end, &f, &n) || n > 19)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (f[i] < '0' || f[i] > '9')
            return -1;
        off = off * 10 + (uint64_t)(f[i] - '0');
    }
    rec->offset = off;
    if (!bl_field(&p, end, &f, &n) || n != 1 || f[0] < '0' || f[0] > '9')
        return -1;
    rec->status = f[0] - '0';
    if (rec->type == BOUNCE_LOG_RESULT
        ? rec->status != 4 && rec->status != 5 : rec->status != 0)
        return -1;
    if (!bl_field(&p, end, &f, &n))
        return -1;
    if (!(n == 1 && f[0] == '-')) {
        if (!bl_dsn_ok(f, n))
            return -1;
        memcpy(rec->dsn, f, n);
        rec->dsn[n] = '\0';
    }
    if (p < end) {
        buf_t r = BUF_INIT;

        for (; p < end; p++) {
            int c = (unsigned char)*p, hi, lo;

            if (c == '%') {
                if (end - p < 3 || (hi = bl_hex(p[1])) < 0
                    || (lo = bl_hex(p[2])) < 0 || (hi == 0 && lo == 0)) {
                    buf_free(&r);
                    return -1;
                }
                c = hi * 16 + lo;
                p += 2;
            }
            if (buf_putc(&r, c) < 0) {
                buf_free(&r);
                return -1;
            }
        }
        if (r.len > BOUNCE_LOG_REASON_MAX)
            buf_truncate(&r, BOUNCE_LOG_REASON_MAX);
        rec->reason = r.len > 0 ? buf_strdup(&r) : NULL;
        buf_free(&r);
    }
    return 0;
}

/* ---- the parsed log ----------------------------------------------------- */

/* bl_search - binary search of the sorted entries: true with *pos the
   entry for offset, false with *pos where it would go */
static bool bl_search(const struct bounce_log *log, uint64_t offset,
                      size_t *pos)
{
    size_t lo = 0, hi = log->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;

        if (log->v[mid].offset == offset) {
            *pos = mid;
            return true;
        }
        if (log->v[mid].offset < offset)
            lo = mid + 1;
        else
            hi = mid;
    }
    *pos = lo;
    return false;
}

/* bl_slot - the entry for offset, inserted in order if new; NULL when
   the log is full */
static struct bounce_log_entry *bl_slot(struct bounce_log *log,
                                        uint64_t offset)
{
    size_t lo;

    if (bl_search(log, offset, &lo))
        return &log->v[lo];
    if (log->n >= BOUNCE_LOG_MAX_ENTRIES)
        return NULL;
    if (log->n == log->cap) {
        log->cap = log->cap ? log->cap * 2 : 16;
        log->v = xrealloc(log->v, log->cap * sizeof(*log->v));
    }
    memmove(&log->v[lo + 1], &log->v[lo], (log->n - lo) * sizeof(*log->v));
    memset(&log->v[lo], 0, sizeof(*log->v));
    log->v[lo].offset = offset;
    log->n++;
    return &log->v[lo];
}

/* bl_apply - one line into log */
static void bl_apply(struct bounce_log *log, const char *line, size_t len)
{
    struct bounce_log_rec rec;
    struct bounce_log_entry *e;

    if (len == 0)
        return;             /* the separator after a torn record */
    if (bounce_log_parse(line, len, &rec) < 0) {
        log->skipped++;
        return;
    }
    if (rec.type == BOUNCE_LOG_DELAY_SENT) {
        log->delay_sent = true;
    } else if ((e = bl_slot(log, rec.offset)) == NULL) {
        log->skipped++;
    } else if (rec.type == BOUNCE_LOG_SUCCESS_SENT) {
        e->success_sent = true;
    } else {
        e->status = rec.status;
        memcpy(e->dsn, rec.dsn, sizeof(e->dsn));
        free(e->reason);
        e->reason = rec.reason;
        rec.reason = NULL;
    }
    free(rec.reason);
}

/* line assembly over chunks: lines longer than the limit are skipped */
struct bl_reader {
    char line[BOUNCE_LOG_LINE_MAX];
    size_t len;
    bool overlong;
};

static void bl_feed(struct bl_reader *rd, struct bounce_log *log,
                    const char *data, size_t len)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t n = nl != NULL ? (size_t)(nl - data) : len;

        if (!rd->overlong && rd->len + n <= sizeof(rd->line)) {
            memcpy(rd->line + rd->len, data, n);
            rd->len += n;
        } else {
            rd->overlong = true;
        }
        if (nl == NULL)
            return;
        if (rd->overlong)
            log->skipped++;
        else
            bl_apply(log, rd->line, rd->len);
        rd->len = 0;
        rd->overlong = false;
        data = nl + 1;
        len -= n + 1;
    }
}

/* bl_end - an unterminated last line is a torn write: skipped */
static void bl_end(struct bl_reader *rd, struct bounce_log *log)
{
    if (rd->len > 0 || rd->overlong)
        log->skipped++;
}

void bounce_log_parse_all(const char *data, size_t len,
                          struct bounce_log *log)
{
    struct bl_reader *rd = xcalloc(1, sizeof(*rd));

    memset(log, 0, sizeof(*log));
    bl_feed(rd, log, data, len);
    bl_end(rd, log);
    free(rd);
}

int bounce_log_read(const char *qid, struct bounce_log *log)
{
    buf_t path = BUF_INIT;
    struct bl_reader *rd;
    struct stat st;
    char chunk[65536];
    ssize_t n;
    int fd, saved;

    memset(log, 0, sizeof(*log));
    if (bounce_log_path(qid, &path) < 0)
        return -1;
    fd = open(buf_str(&path), O_RDONLY | BL_OPEN_FLAGS);
    saved = errno;
    buf_free(&path);
    if (fd < 0) {
        errno = saved;
        return saved == ENOENT ? 0 : -1;
    }
    if (fd_regular_or_close(fd, &st) < 0)
        return -1;
    rd = xcalloc(1, sizeof(*rd));
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            break;
        bl_feed(rd, log, chunk, (size_t)n);
    }
    saved = errno;
    bl_end(rd, log);
    free(rd);
    close(fd);
    if (n < 0) {
        bounce_log_free(log);
        errno = saved;
        return -1;
    }
    return 0;
}

const struct bounce_log_entry *bounce_log_find(const struct bounce_log *log,
                                               uint64_t offset)
{
    size_t pos;

    return bl_search(log, offset, &pos) ? &log->v[pos] : NULL;
}

void bounce_log_free(struct bounce_log *log)
{
    for (size_t i = 0; i < log->n; i++)
        free(log->v[i].reason);
    free(log->v);
    memset(log, 0, sizeof(*log));
}

/* ---- writing ------------------------------------------------------------ */

/* bl_mkdir - a missing directory of the log path, durably */
static int bl_mkdir(const char *dir)
{
    if (mkdir(dir, 0700) < 0)
        return errno == EEXIST ? 0 : -1;
    return fsync_parent_dir(dir);
}

/* bl_open - the log for appending; *created when the file is new */
static int bl_open(const char *path, bool *created)
{
    char dir[64];
    const char *slash = strrchr(path, '/');
    struct stat st;
    int fd;

    *created = false;
    fd = open(path, O_RDWR | O_APPEND | BL_OPEN_FLAGS);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL | BL_OPEN_FLAGS,
                  0600);
        if (fd < 0 && errno == ENOENT && slash != NULL
            && (size_t)(slash - path) < sizeof(dir)) {
            /* "defer/X" or "defer" went missing: make them again */
            memcpy(dir, path, (size_t)(slash - path));
            dir[slash - path] = '\0';
            char *top = strchr(dir, '/');

            if (top != NULL) {
                *top = '\0';
                if (bl_mkdir(dir) < 0)
                    return -1;
                *top = '/';
            }
            if (bl_mkdir(dir) < 0)
                return -1;
            fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_EXCL
                      | BL_OPEN_FLAGS, 0600);
        }
        if (fd >= 0)
            *created = true;
    }
    if (fd < 0 || fd_regular_or_close(fd, &st) < 0)
        return -1;
    return fd;
}

/* bl_write - append lines (formatted records) to qid's log */
static int bl_write(const char *qid, const buf_t *lines, bool sync)
{
    buf_t path = BUF_INIT;
    struct stat st;
    bool created;
    char last = '\n';
    int fd, r = -1, saved;

    if (bounce_log_path(qid, &path) < 0)
        return -1;
    fd = bl_open(buf_str(&path), &created);
    if (fd < 0)
        goto done;
    /* after a torn record, start on a line of our own */
    if (fstat(fd, &st) == 0 && st.st_size > 0
        && pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n'
        && write_full(fd, "\n", 1) < 0)
        goto done;
    if (write_full(fd, lines->data, lines->len) < 0)
        goto done;
    if (sync && (fdatasync(fd) < 0
                 || (created && fsync_parent_dir(buf_str(&path)) < 0)))
        goto done;
    r = 0;
done:
    saved = errno;
    if (fd >= 0)
        close(fd);
    buf_free(&path);
    errno = saved;
    return r;
}

int bounce_log_append(const char *qid, uint64_t offset, int status,
                      const char *dsn, const char *reason)
{
    struct bounce_log_rec rec = { .type = BOUNCE_LOG_RESULT, .offset = offset,
                                  .status = status,
                                  .reason = (char *)reason };
    buf_t line = BUF_INIT;
    int r;

    if (status != 4 && status != 5) {
        errno = EINVAL;
        return -1;
    }
    if (dsn != NULL)
        (void)str_copy(rec.dsn, dsn, sizeof(rec.dsn));
    if (bounce_log_format(&rec, &line) < 0) {
        errno = ENOMEM;
        r = -1;
    } else {
        r = bl_write(qid, &line, false);
    }
    buf_free(&line);
    return r;
}

int bounce_log_mark_delay(const char *qid)
{
    struct bounce_log_rec rec = { .type = BOUNCE_LOG_DELAY_SENT };
    buf_t line = BUF_INIT;
    int r = bounce_log_format(&rec, &line) < 0 ? -1
            : bl_write(qid, &line, true);

    buf_free(&line);
    return r;
}

int bounce_log_mark_success(const char *qid, const uint64_t *offsets,
                            size_t n)
{
    buf_t lines = BUF_INIT;
    int r = 0;

    for (size_t i = 0; r == 0 && i < n; i++) {
        struct bounce_log_rec rec = { .type = BOUNCE_LOG_SUCCESS_SENT,
                                      .offset = offsets[i] };

        r = bounce_log_format(&rec, &lines);
    }
    if (r == 0 && n > 0)
        r = bl_write(qid, &lines, true);
    buf_free(&lines);
    return r;
}

/* bl_compact_text - the records that say what log says now */
static int bl_compact_text(const struct bounce_log *log, buf_t *out)
{
    int r = 0;

    if (log->delay_sent) {
        struct bounce_log_rec rec = { .type = BOUNCE_LOG_DELAY_SENT };

        r = bounce_log_format(&rec, out);
    }
    for (size_t i = 0; r == 0 && i < log->n; i++) {
        const struct bounce_log_entry *e = &log->v[i];
        struct bounce_log_rec rec = { .offset = e->offset };

        if (e->status != 0) {
            rec.type = BOUNCE_LOG_RESULT;
            rec.status = e->status;
            memcpy(rec.dsn, e->dsn, sizeof(rec.dsn));
            rec.reason = e->reason;
            r = bounce_log_format(&rec, out);
        }
        if (r == 0 && e->success_sent) {
            memset(&rec, 0, sizeof(rec));
            rec.type = BOUNCE_LOG_SUCCESS_SENT;
            rec.offset = e->offset;
            r = bounce_log_format(&rec, out);
        }
    }
    return r;
}

int bounce_log_compact(const char *qid, size_t threshold)
{
    buf_t path = BUF_INIT, tmp = BUF_INIT, text = BUF_INIT;
    struct bounce_log log;
    struct stat st;
    int fd = -1, r = -1, saved;

    memset(&log, 0, sizeof(log));
    if (bounce_log_path(qid, &path) < 0)
        return -1;
    if (lstat(buf_str(&path), &st) < 0 || !S_ISREG(st.st_mode)
        || (uint64_t)st.st_size <= threshold) {
        r = 0;
        goto done;
    }
    if (bounce_log_read(qid, &log) < 0 || bl_compact_text(&log, &text) < 0
        || buf_printf(&tmp, "%s.new", buf_str(&path)) < 0)
        goto done;
    fd = open(buf_str(&tmp), O_WRONLY | O_CREAT | O_TRUNC | BL_OPEN_FLAGS,
              0600);
    if (fd < 0 || write_full(fd, text.data, text.len) < 0 || fdatasync(fd) < 0
        || rename(buf_str(&tmp), buf_str(&path)) < 0) {
        saved = errno;
        (void)unlink(buf_str(&tmp));
        errno = saved;
        goto done;
    }
    if (fsync_parent_dir(buf_str(&path)) < 0)
        goto done;
    r = 1;
done:
    saved = errno;
    if (fd >= 0)
        close(fd);
    bounce_log_free(&log);
    buf_free(&path);
    buf_free(&tmp);
    buf_free(&text);
    errno = saved;
    return r;
}

int bounce_log_remove(const char *qid)
{
    buf_t path = BUF_INIT;
    int r = -1, saved;

    if (bounce_log_path(qid, &path) == 0) {
        r = unlink(buf_str(&path));
        saved = errno;
        if (buf_puts(&path, ".new") == 0)
            (void)unlink(buf_str(&path));
        errno = saved;
    }
    saved = errno;
    buf_free(&path);
    errno = saved;
    return r;
}
