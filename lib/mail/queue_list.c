/*
 * queue_list - walk the queue and format what is there (queue_list.h).
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

#include "mail/bounce_log.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/queue_reader.h"
#include "util/log.h"
#include "util/sys.h"
#include "util/util.h"

#define LIST_MAX_NAMES 1000000      /* per directory; the rest is not shown */

const char *const queue_list_queues[] = {
    QUEUE_INCOMING, QUEUE_ACTIVE, QUEUE_DEFERRED, QUEUE_HOLD, NULL,
};

/* queue_list_entry_free - release what queue_list_read allocated */
void queue_list_entry_free(struct queue_list_entry *e)
{
    for (size_t i = 0; i < e->nrcpts; i++) {
        free(e->rcpts[i].address);
        free(e->rcpts[i].reason);
    }
    free(e->rcpts);
    free(e->sender);
    memset(e, 0, sizeof(*e));
}

/* queue_list_read - one file's envelope and its recipients' reasons */
int queue_list_read(const char *queue, const char *qid, const char *path,
                    struct queue_list_entry *e)
{
    struct bounce_log log;
    queue_msg_t m;
    const char *err = NULL;
    struct stat st;
    int fd, rc;

    memset(e, 0, sizeof(*e));
    if (!queue_id_valid(qid))
        return 0;
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;           /* gone (moved or finished), or a symlink */
    if (fd_regular_or_close(fd, &st) < 0)
        return 0;
    str_copy(e->queue, queue, sizeof(e->queue));
    str_copy(e->qid, qid, sizeof(e->qid));
    e->size = (uint64_t)st.st_size;
    e->mtime_usec = (uint64_t)st.st_mtim.tv_sec * 1000000
                    + (uint64_t)st.st_mtim.tv_nsec / 1000;
    memset(&m, 0, sizeof(m));
    rc = queue_file_read(fd, qid, &m, &err);
    close(fd);
    if (rc < 0) {
        e->corrupt = true;
        e->sender = xstrdup("");
        return -1;
    }
    e->arrival_usec = m.arrival_usec;
    e->size = m.content_len;
    e->sender = xstrdup(m.sender ? m.sender : "");
    e->rcpts = xcalloc(m.nrcpts ? m.nrcpts : 1, sizeof(*e->rcpts));
    if (bounce_log_read(qid, &log) < 0)
        memset(&log, 0, sizeof(log));   /* no reasons: still list it */
    for (size_t i = 0; i < m.nrcpts; i++) {
        const struct bounce_log_entry *be;

        if (m.rcpts[i].status != QREC_RCPT)
            continue;
        e->rcpts[e->nrcpts].address = xstrdup(m.rcpts[i].address);
        be = bounce_log_find(&log, (uint64_t)m.rcpts[i].offset);
        if (be != NULL && be->status != 0 && be->reason != NULL)
            e->rcpts[e->nrcpts].reason = xstrdup(be->reason);
        e->nrcpts++;
    }
    bounce_log_free(&log);
    queue_msg_free(&m);
    return 1;
}

/* --- the walk ----------------------------------------------------------------- */

struct name_list {
    char (*v)[QUEUE_ID_SIZE + 8];   /* "X/QUEUEID" or "QUEUEID" */
    size_t n, cap;
};

static int name_cmp(const void *a, const void *b)
{
    const char *x = a, *y = b;
    const char *sx = strrchr(x, '/'), *sy = strrchr(y, '/');

    return strcmp(sx ? sx + 1 : x, sy ? sy + 1 : y);
}

static void name_add(struct name_list *l, const char *sub, const char *name)
{
    if (l->n >= LIST_MAX_NAMES)
        return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    snprintf(l->v[l->n], sizeof(l->v[0]), "%s%s%s", sub, *sub ? "/" : "",
             name);
    l->n++;
}

/* collect - queue IDs in dir (sub "" = the queue itself); with subs,
   also the names of real subdirectories (never a symlink) */
static void collect(const char *queue, const char *sub, struct name_list *l,
                    struct name_list *subs)
{
    buf_t dir = BUF_INIT;
    struct dirent *de;
    struct stat st;
    DIR *d;

    buf_printf(&dir, "%s%s%s", queue, *sub ? "/" : "", sub);
    d = opendir(buf_str(&dir));
    buf_free(&dir);
    if (d == NULL)
        return;         /* missing: empty (or not ours to read) */
    while ((de = readdir(d)) != NULL) {
        if (queue_id_valid(de->d_name)) {
            name_add(l, sub, de->d_name);
        } else if (subs != NULL && de->d_name[0] != '.'
                   && strlen(de->d_name) < 8
                   && fstatat(dirfd(d), de->d_name, &st,
                              AT_SYMLINK_NOFOLLOW) == 0
                   && S_ISDIR(st.st_mode)) {
            name_add(subs, "", de->d_name);
        }
    }
    closedir(d);
}

static int walk_queue(const char *queue, queue_list_fn fn, void *ctx)
{
    struct name_list l = { 0 }, subs = { 0 };
    buf_t path = BUF_INIT;
    int rc = 0;

    collect(queue, "", &l, queue_is_hashed(queue) ? &subs : NULL);
    for (size_t i = 0; i < subs.n; i++)
        collect(queue, subs.v[i], &l, NULL);
    if (l.n > 1)
        qsort(l.v, l.n, sizeof(*l.v), name_cmp);
    for (size_t i = 0; i < l.n && rc == 0; i++) {
        struct queue_list_entry e;
        const char *slash = strrchr(l.v[i], '/');
        const char *qid = slash ? slash + 1 : l.v[i];

        buf_reset(&path);
        buf_printf(&path, "%s/%s", queue, l.v[i]);
        if (queue_list_read(queue, qid, buf_str(&path), &e) != 0)
            rc = fn(&e, ctx) < 0 ? -1 : 0;
        queue_list_entry_free(&e);
    }
    buf_free(&path);
    free(l.v);
    free(subs.v);
    return rc;
}

/* queue_list_walk - every message of queue (NULL: of every queue) */
int queue_list_walk(const char *queue, queue_list_fn fn, void *ctx)
{
    for (size_t i = 0; queue_list_queues[i] != NULL; i++) {
        if (queue != NULL && strcmp(queue, queue_list_queues[i]) != 0)
            continue;
        if (walk_queue(queue_list_queues[i], fn, ctx) < 0)
            return -1;
        if (queue != NULL)
            return 0;
    }
    if (queue != NULL) {
        errno = EINVAL;
        return -1;
    }
    return 0;
}

/* queue_list_has_domain - a pending recipient in domain? */
bool queue_list_has_domain(const struct queue_list_entry *e,
                           const char *domain)
{
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *at = strrchr(e->rcpts[i].address, '@');

        if (at != NULL && strcasecmp(at + 1, domain) == 0)
            return true;
    }
    return false;
}

/* --- mailq form --------------------------------------------------------------- */

/* put_scrubbed - s with control characters and malformed UTF-8 as '?' */
static void put_scrubbed(buf_t *out, const char *s)
{
    char *t = xstrdup(s);

    log_scrub(t);
    buf_puts(out, t);
    free(t);
}

void queue_list_mailq_header(buf_t *out)
{
    buf_puts(out, "-Queue ID-  --Size-- ----Arrival Time---- "
             "-Sender/Recipient-------\n");
}

/* queue_list_mailq_entry - one message: ID (with * active, ! hold),
   size, arrival, sender; then each reason in parentheses before the
   recipients it applies to; then an empty line */
void queue_list_mailq_entry(const struct queue_list_entry *e, buf_t *out)
{
    char when[64] = "";
    time_t t = (time_t)(e->arrival_usec / 1000000);
    struct tm tm;
    char mark = ' ';
    const char *prev = NULL;

    if (strcmp(e->queue, QUEUE_ACTIVE) == 0)
        mark = '*';
    else if (strcmp(e->queue, QUEUE_HOLD) == 0)
        mark = '!';
    if (localtime_r(&t, &tm) == NULL
        || strftime(when, sizeof(when), "%a %b %e %H:%M:%S", &tm) == 0)
        str_copy(when, "?", sizeof(when));
    buf_printf(out, "%-10s%c %8llu %-20.20s ", e->qid, mark,
               (unsigned long long)e->size, when);
    if (e->corrupt)
        buf_puts(out, "(corrupt queue file)\n");
    else if (e->sender[0] == '\0')
        buf_puts(out, "MAILER-DAEMON\n");
    else {
        put_scrubbed(out, e->sender);
        buf_putc(out, '\n');
    }
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *r = e->rcpts[i].reason;

        if (r != NULL && (prev == NULL || strcmp(r, prev) != 0)) {
            buf_putc(out, '(');
            put_scrubbed(out, r);
            buf_puts(out, ")\n");
        }
        if (r != NULL)
            prev = r;
        buf_printf(out, "%41s", "");
        put_scrubbed(out, e->rcpts[i].address);
        buf_putc(out, '\n');
    }
    buf_putc(out, '\n');
}

void queue_list_mailq_trailer(uint64_t total_size, size_t count, buf_t *out)
{
    if (count == 0)
        buf_puts(out, "Mail queue is empty\n");
    else
        buf_printf(out, "-- %llu Kbytes in %zu Request%s.\n",
                   (unsigned long long)(total_size / 1024), count,
                   count == 1 ? "" : "s");
}

/* --- JSON form ------------------------------------------------------------------ */

/* utf8_len - length of the valid UTF-8 sequence at p (n bytes left), 0
   when it is not one (overlong, surrogate, beyond U+10FFFF, cut off) */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    unsigned c = p[0];
    size_t len;
    unsigned cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) { len = 2; cp = c & 0x1f; }
    else if (c >= 0xe0 && c <= 0xef) { len = 3; cp = c & 0x0f; }
    else if (c >= 0xf0 && c <= 0xf4) { len = 4; cp = c & 0x07; }
    else
        return 0;
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

void queue_list_json_string(const char *s, size_t n, buf_t *out)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    buf_putc(out, '"');
    while (i < n) {
        unsigned c = p[i];
        size_t len;

        if (c == '"' || c == '\\') {
            buf_putc(out, '\\');
            buf_putc(out, (int)c);
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            buf_printf(out, "\\u%04x", c);
            i++;
        } else if ((len = utf8_len(p + i, n - i)) == 0) {
            buf_puts(out, "\\ufffd");
            i++;
        } else {
            buf_append(out, p + i, len);
            i += len;
        }
    }
    buf_putc(out, '"');
}

static void json_key_string(buf_t *out, const char *key, const char *value)
{
    buf_printf(out, "\"%s\": ", key);
    queue_list_json_string(value, strlen(value), out);
}

void queue_list_json_entry(const struct queue_list_entry *e, buf_t *out)
{
    buf_putc(out, '{');
    json_key_string(out, "queue_name", e->queue);
    buf_puts(out, ", ");
    json_key_string(out, "queue_id", e->qid);
    buf_printf(out, ", \"arrival_time\": %llu, \"message_size\": %llu, "
               "\"forced_expire\": false, ",
               (unsigned long long)(e->arrival_usec / 1000000),
               (unsigned long long)e->size);
    json_key_string(out, "sender", e->sender);
    if (e->corrupt)
        buf_puts(out, ", \"corrupt\": true");
    buf_puts(out, ", \"recipients\": [");
    for (size_t i = 0; i < e->nrcpts; i++) {
        buf_puts(out, i ? ", {" : "{");
        json_key_string(out, "address", e->rcpts[i].address);
        if (e->rcpts[i].reason != NULL) {
            buf_puts(out, ", ");
            json_key_string(out, "delay_reason", e->rcpts[i].reason);
        }
        buf_putc(out, '}');
    }
    buf_puts(out, "]}\n");
}

/* --- qshape-like counts ------------------------------------------------------------ */

static const unsigned shape_minutes[QUEUE_SHAPE_BUCKETS - 1] = {
    5, 10, 20, 40, 80, 160, 320, 640, 1280,
};

/* queue_shape_add - e's pending recipients by domain, in e's age bucket */
void queue_shape_add(struct queue_shape *s, const struct queue_list_entry *e,
                     uint64_t now_usec)
{
    uint64_t age_min = now_usec > e->arrival_usec
                       ? (now_usec - e->arrival_usec) / 60000000 : 0;
    size_t b = 0;

    while (b < QUEUE_SHAPE_BUCKETS - 1 && age_min >= shape_minutes[b])
        b++;
    for (size_t i = 0; i < e->nrcpts; i++) {
        const char *at = strrchr(e->rcpts[i].address, '@');
        char *dom = xstrdup(at ? at + 1 : "");
        size_t j;

        str_lower(dom);
        log_scrub(dom);
        for (j = 0; j < s->n && strcmp(s->v[j].domain, dom) != 0; j++)
            ;
        if (j == s->n) {
            s->v = xrealloc(s->v, (s->n + 1) * sizeof(*s->v));
            memset(&s->v[j], 0, sizeof(s->v[j]));
            s->v[j].domain = dom;
            s->n++;
        } else {
            free(dom);
        }
        s->v[j].total++;
        s->v[j].count[b]++;
        s->sum.total++;
        s->sum.count[b]++;
    }
}

static int shape_cmp(const void *a, const void *b)
{
    const struct queue_shape_row *x = a, *y = b;

    if (x->total != y->total)
        return x->total < y->total ? 1 : -1;
    return strcmp(x->domain, y->domain);
}

static void shape_row(buf_t *out, const char *name, const uint64_t *cells,
                      uint64_t total)
{
    buf_printf(out, "%24s %5llu", name, (unsigned long long)total);
    for (size_t b = 0; b < QUEUE_SHAPE_BUCKETS; b++)
        buf_printf(out, " %5llu", (unsigned long long)cells[b]);
    buf_putc(out, '\n');
}

void queue_shape_format(struct queue_shape *s, buf_t *out)
{
    buf_printf(out, "%24s %5s", "", "T");
    for (size_t b = 0; b < QUEUE_SHAPE_BUCKETS - 1; b++)
        buf_printf(out, " %5u", shape_minutes[b]);
    buf_printf(out, " %4u+\n", shape_minutes[QUEUE_SHAPE_BUCKETS - 2]);
    shape_row(out, "TOTAL", s->sum.count, s->sum.total);
    if (s->n > 1)
        qsort(s->v, s->n, sizeof(*s->v), shape_cmp);
    for (size_t i = 0; i < s->n; i++)
        shape_row(out, s->v[i].domain, s->v[i].count, s->v[i].total);
}

void queue_shape_free(struct queue_shape *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].domain);
    free(s->v);
    memset(s, 0, sizeof(*s));
}
