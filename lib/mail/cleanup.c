/*
 * cleanup - envelope, header/body state machine, duplicate filter, size
 * limit and durable commit of a new queue file (interface and rules in
 * cleanup.h). The file itself is written by queue_writer, the only
 * code that creates queue files.
 *
 * Security: content is untrusted. Only the header section is buffered,
 * one header at a time and at most CLEANUP_HEADER_MAX bytes of it; the
 * body is never buffered here.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "config.h"
#include "queue_writer.h"
#include "util/buf.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/util.h"

#define CLEANUP_RECEIVED_MAX 4096   /* our Received: header */

enum cleanup_state {
    CL_ENVELOPE,        /* sender, attributes, recipients */
    CL_HEADER,          /* content: in the header section */
    CL_BODY,            /* content: in the body */
    CL_DONE,            /* committed */
    CL_FAILED           /* discarded */
};

struct cleanup {
    queue_writer_t w;
    unsigned flags;
    enum cleanup_state state;
    bool have_sender;
    uint64_t size;
    uint64_t size_limit;
    long dup_limit;
    htable_t *dups;             /* lowercased "orcpt\nrcpt" seen */
    size_t nrcpts;
    char *first_rcpt;           /* for Received: "for <...>" */
    /* attributes our Received: is made of */
    char *client_name;
    char *client_address;
    char *helo_name;
    char *protocol;
    char *tls_info;             /* "(using ...)", NULL without TLS */
    /* header section */
    buf_t hdr;                  /* the current header, as far as read */
    bool bol;                   /* at the start of a line */
    bool line_cont;             /* the line being read continues hdr */
    bool hdr_pass;              /* hdr was too long: its rest is written
                                   as it comes, unexamined */
    bool last_lf;               /* last content byte written was LF */
    bool have_message_id;
    bool have_date;
    cleanup_header_fn header_fn;
    cleanup_header_end_fn header_end_fn;
    void *hook_ctx;
};

static cleanup_clock_fn cleanup_clock;

/* cleanup_set_clock - test clock for Received:/Date:/Message-ID: */
void cleanup_set_clock(cleanup_clock_fn now)
{
    cleanup_clock = now;
}

static time_t cl_now(void)
{
    return cleanup_clock ? cleanup_clock() : time(NULL);
}

/* cl_date - RFC 5322 date of now, local time */
static void cl_date(char *out, size_t size)
{
    time_t now = cl_now();
    struct tm tm;

    if (localtime_r(&now, &tm) == NULL
        || strftime(out, size, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm) == 0)
        (void)snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* cl_fail - discard the file; every later call fails. Keeps errno. */
static int cl_fail(cleanup_t *c)
{
    int saved = errno ? errno : EIO;

    if (c->state != CL_FAILED && c->state != CL_DONE)
        queue_writer_abort(&c->w);
    c->state = CL_FAILED;
    buf_free(&c->hdr);
    errno = saved;
    return -1;
}

/* cl_usable - may the envelope/content calls go on? */
static bool cl_usable(const cleanup_t *c)
{
    if (c->state == CL_FAILED || c->state == CL_DONE) {
        errno = c->state == CL_FAILED ? EIO : EINVAL;
        return false;
    }
    return true;
}

/* cleanup_open - temp file and queue ID */
cleanup_t *cleanup_open(const char *queue, unsigned flags)
{
    cleanup_t *c = xcalloc(1, sizeof(*c));

    if (queue_writer_open(&c->w, queue) < 0) {
        int saved = errno;
        free(c);
        errno = saved;
        return NULL;
    }
    c->flags = flags;
    c->state = CL_ENVELOPE;
    c->dup_limit = var_duplicate_filter_limit;
    buf_init(&c->hdr, 0);
    c->bol = true;
    c->last_lf = true;
    return c;
}

const char *cleanup_qid(const cleanup_t *c)
{
    return c->w.qid;
}

bool cleanup_ok(const cleanup_t *c)
{
    return c->state != CL_FAILED && c->state != CL_DONE;
}

void cleanup_set_size_limit(cleanup_t *c, uint64_t limit)
{
    c->size_limit = limit;
}

void cleanup_set_tls_info(cleanup_t *c, const char *info)
{
    free(c->tls_info);
    c->tls_info = info != NULL ? xstrdup(info) : NULL;
}

uint64_t cleanup_size(const cleanup_t *c)
{
    return c->size;
}

size_t cleanup_nrcpts(const cleanup_t *c)
{
    return c->nrcpts;
}

void cleanup_set_header_hook(cleanup_t *c, cleanup_header_fn header,
                             cleanup_header_end_fn header_end, void *ctx)
{
    c->header_fn = header;
    c->header_end_fn = header_end;
    c->hook_ctx = ctx;
}

/* cleanup_sender - the 'S' record (exactly once, first) */
int cleanup_sender(cleanup_t *c, const char *sender)
{
    if (!cl_usable(c))
        return -1;
    if (c->have_sender || c->state != CL_ENVELOPE) {
        errno = EINVAL;
        return cl_fail(c);
    }
    if (queue_writer_record(&c->w, QREC_SENDER, sender, strlen(sender)) < 0)
        return cl_fail(c);
    c->have_sender = true;
    return 0;
}

/* cl_keep_attr - remember what our Received: is made of */
static void cl_keep_attr(cleanup_t *c, const char *name, const char *value)
{
    char **slot = strcmp(name, "client_name") == 0 ? &c->client_name
        : strcmp(name, "client_address") == 0 ? &c->client_address
        : strcmp(name, "helo_name") == 0 ? &c->helo_name
        : strcmp(name, "protocol") == 0 ? &c->protocol : NULL;

    if (slot != NULL) {
        free(*slot);
        *slot = xstrdup(value);
    }
}

/* cleanup_attr - an 'A' record, after the sender, before recipients */
int cleanup_attr(cleanup_t *c, const char *name, const char *value)
{
    if (!cl_usable(c))
        return -1;
    if (!c->have_sender || c->state != CL_ENVELOPE || c->nrcpts > 0) {
        errno = EINVAL;
        return cl_fail(c);
    }
    if (queue_writer_attr(&c->w, name, value) < 0)
        return cl_fail(c);
    cl_keep_attr(c, name, value);
    return 0;
}

/* cl_duplicate - seen this pair before? (remembers up to the limit) */
static bool cl_duplicate(cleanup_t *c, const char *orcpt, const char *rcpt)
{
    buf_t key = BUF_INIT;
    bool dup;

    if (c->dup_limit <= 0)
        return false;
    if (c->dups == NULL)
        c->dups = htable_create();
    if (buf_printf(&key, "%s\n%s", orcpt ? orcpt : "", rcpt) < 0) {
        buf_free(&key);
        return false;               /* cannot remember: store it again */
    }
    for (size_t i = 0; i < key.len; i++)
        if (key.data[i] >= 'A' && key.data[i] <= 'Z')
            key.data[i] = (char)(key.data[i] - 'A' + 'a');
    dup = htable_find(c->dups, buf_str(&key)) != NULL;
    if (!dup && htable_count(c->dups) < (size_t)c->dup_limit)
        htable_add(c->dups, buf_str(&key), c);
    buf_free(&key);
    return dup;
}

/* cleanup_rcpt - optional 'O' plus 'R', unless a duplicate */
int cleanup_rcpt(cleanup_t *c, const char *orcpt, const char *rcpt)
{
    return cleanup_rcpt_dsn(c, orcpt, rcpt, 0, NULL);
}

/* cleanup_rcpt_dsn - optional 'O', 'N', 'P', then 'R', unless a
   duplicate; the DSN values are part of the duplicate key (as in
   Postfix), so the same address with another NOTIFY is kept */
int cleanup_rcpt_dsn(cleanup_t *c, const char *orcpt, const char *rcpt,
                     unsigned notify, const char *dsn_orcpt)
{
    char ntext[QREC_NOTIFY_TEXT_MAX];
    buf_t key = BUF_INIT;
    bool dup;

    if (!cl_usable(c))
        return -1;
    if (!c->have_sender || c->state != CL_ENVELOPE
        || (notify != 0 && queue_notify_format(notify, ntext, sizeof(ntext)) < 0)) {
        errno = EINVAL;
        return cl_fail(c);
    }
    if (notify != 0 || dsn_orcpt != NULL)
        (void)buf_printf(&key, "%s\n%u\n%s", orcpt ? orcpt : "", notify,
                         dsn_orcpt ? dsn_orcpt : "");
    dup = cl_duplicate(c, key.len > 0 ? buf_str(&key) : orcpt, rcpt);
    buf_free(&key);
    if (dup)
        return 0;
    if ((orcpt != NULL
         && queue_writer_record(&c->w, QREC_ORCPT, orcpt, strlen(orcpt)) < 0)
        || (notify != 0
            && queue_writer_record(&c->w, QREC_NOTIFY, ntext, strlen(ntext)) < 0)
        || (dsn_orcpt != NULL
            && queue_writer_record(&c->w, QREC_DSN_ORCPT, dsn_orcpt,
                                   strlen(dsn_orcpt)) < 0)
        || queue_writer_record(&c->w, QREC_RCPT, rcpt, strlen(rcpt)) < 0)
        return cl_fail(c);
    if (c->nrcpts++ == 0)
        c->first_rcpt = xstrdup(rcpt);
    return 0;
}

/* cl_write - content bytes to the file */
static int cl_write(cleanup_t *c, const void *p, size_t n)
{
    if (n == 0)
        return 0;
    if (queue_writer_content(&c->w, p, n) < 0)
        return -1;
    c->last_lf = ((const char *)p)[n - 1] == '\n';
    return 0;
}

/* cl_received - our Received: header (the "for" clause only for one
   recipient, so a Bcc list is not disclosed) */
static int cl_received(cleanup_t *c)
{
    const char *addr = c->client_address ? c->client_address : "";
    char date[64];
    buf_t h;
    int rc;

    cl_date(date, sizeof(date));
    buf_init(&h, CLEANUP_RECEIVED_MAX);
    (void)buf_printf(&h, "Received: from %s (%s [%s%s])\n",
                     c->helo_name ? c->helo_name : "unknown",
                     c->client_name ? c->client_name : "unknown",
                     strchr(addr, ':') ? "IPv6:" : "", addr);
    if (c->tls_info != NULL)
        (void)buf_printf(&h, "\t(using %s)\n", c->tls_info);
    (void)buf_printf(&h, "\tby %s (Tern) with %s id %s", var_myhostname,
                     c->protocol ? c->protocol : "unknown", c->w.qid);
    if (c->nrcpts == 1) {
        /* addresses may be UTF-8: no C1 or line separators in a header */
        char *shown = xstrdup(c->first_rcpt);

        (void)log_scrub(shown);
        (void)buf_printf(&h, "\n\tfor <%s>", shown);
        free(shown);
    }
    rc = buf_printf(&h, "; %s\n", date);
    if (rc < 0)
        errno = EMSGSIZE;
    else
        rc = cl_write(c, h.data, h.len);
    buf_free(&h);
    return rc;
}

/* cl_begin - 'M' record, our Received: */
static int cl_begin(cleanup_t *c)
{
    if (!c->have_sender) {
        errno = EINVAL;
        return -1;
    }
    if (queue_writer_content_begin(&c->w) < 0)
        return -1;
    c->state = CL_HEADER;
    if ((c->flags & CLEANUP_FLAG_RECEIVED) && cl_received(c) < 0)
        return -1;
    return 0;
}

/* cleanup_content_begin - the envelope is complete */
int cleanup_content_begin(cleanup_t *c)
{
    if (!cl_usable(c))
        return -1;
    if (c->state != CL_ENVELOPE) {
        errno = EINVAL;
        return cl_fail(c);
    }
    return cl_begin(c) < 0 ? cl_fail(c) : 0;
}

/* cl_name_len - length of the "field-name" when the line starting at
   p is "field-name:", else 0 */
static size_t cl_name_len(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n && p[i] != ':'; i++) {
        unsigned char ch = (unsigned char)p[i];
        if (ch < 33 || ch > 126)
            return 0;
    }
    return i < n ? i : 0;
}

/* cl_header_flush - the current header is complete: note what it is,
   offer it to the hook, write it */
static int cl_header_flush(cleanup_t *c)
{
    bool truncated = c->hdr_pass;
    size_t nlen;

    c->hdr_pass = false;
    if (truncated || c->hdr.len == 0)
        return 0;                       /* written when it overflowed */
    nlen = cl_name_len(c->hdr.data, c->hdr.len);
    if (nlen == 10 && strncasecmp(c->hdr.data, "message-id", 10) == 0)
        c->have_message_id = true;
    else if (nlen == 4 && strncasecmp(c->hdr.data, "date", 4) == 0)
        c->have_date = true;
    if (c->header_fn && c->header_fn(c->hook_ctx, c->hdr.data, c->hdr.len,
                                     false) < 0)
        return -1;
    if (cl_write(c, c->hdr.data, c->hdr.len) < 0)
        return -1;
    buf_reset(&c->hdr);
    return 0;
}

/* cl_header_overflow - the current header outgrew CLEANUP_HEADER_MAX:
   examine and write what we have, pass the rest through */
static int cl_header_overflow(cleanup_t *c)
{
    size_t nlen = cl_name_len(c->hdr.data, c->hdr.len);

    if (nlen == 10 && strncasecmp(c->hdr.data, "message-id", 10) == 0)
        c->have_message_id = true;
    else if (nlen == 4 && strncasecmp(c->hdr.data, "date", 4) == 0)
        c->have_date = true;
    if (c->header_fn && c->header_fn(c->hook_ctx, c->hdr.data, c->hdr.len,
                                     true) < 0)
        return -1;
    if (cl_write(c, c->hdr.data, c->hdr.len) < 0)
        return -1;
    buf_reset(&c->hdr);
    c->hdr_pass = true;
    return 0;
}

/* cl_header_end - the header section is over; body_line: the body
   starts with a line that is not empty (no separator of its own) */
static int cl_header_end(cleanup_t *c, bool body_line)
{
    buf_t add = BUF_INIT;
    int rc = 0;

    c->state = CL_BODY;
    if (c->header_end_fn && c->header_end_fn(c->hook_ctx) < 0)
        return -1;
    if (c->flags & CLEANUP_FLAG_ADD_MISSING) {
        char date[64];
        struct tm tm;
        time_t now = cl_now();
        char stamp[32];

        if (!c->have_message_id) {
            if (gmtime_r(&now, &tm) == NULL
                || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
                str_copy(stamp, "19700101000000", sizeof(stamp));
            rc = buf_printf(&add, "Message-ID: <%s.%s@%s>\n", stamp,
                            c->w.qid, var_myhostname);
        }
        if (rc == 0 && !c->have_date) {
            cl_date(date, sizeof(date));
            rc = buf_printf(&add, "Date: %s\n", date);
        }
        if (rc == 0 && add.len > 0) {
            /* a last header without its LF gets one; a body that starts
               right after the headers gets the empty line it lacked */
            if ((!c->last_lf && cl_write(c, "\n", 1) < 0)
                || cl_write(c, add.data, add.len) < 0
                || (body_line && cl_write(c, "\n", 1) < 0))
                rc = -1;
        }
    }
    buf_free(&add);
    return rc;
}

/* cl_line_is_header - the line in hdr (not a continuation) so far */
static bool cl_line_is_header(const cleanup_t *c)
{
    return cl_name_len(c->hdr.data, c->hdr.len) > 0;
}

/* cl_to_body - the line buffered in hdr is the first body line */
static int cl_to_body(cleanup_t *c)
{
    int rc;

    if (cl_header_end(c, true) < 0)
        return -1;
    rc = cl_write(c, c->hdr.data, c->hdr.len);
    buf_reset(&c->hdr);
    return rc;
}

/* cl_header_data - content while in the header section; returns the
   bytes used (the rest, if any, is body) or -1 */
static long cl_header_data(cleanup_t *c, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && c->state == CL_HEADER) {
        if (c->bol) {
            char ch = p[i];
            bool pending = c->hdr.len > 0 || c->hdr_pass;

            if (pending && (ch == ' ' || ch == '\t')) {
                c->line_cont = true;
            } else {
                if (cl_header_flush(c) < 0)
                    return -1;
                if (ch == '\n' || ch == ' ' || ch == '\t') {
                    /* empty line, or a continuation of nothing */
                    if (cl_header_end(c, ch != '\n') < 0)
                        return -1;
                    break;
                }
                c->line_cont = false;
            }
            c->bol = false;
        }

        const char *lf = memchr(p + i, '\n', n - i);
        size_t take = lf ? (size_t)(lf - (p + i)) + 1 : n - i;

        if (c->hdr_pass) {
            if (cl_write(c, p + i, take) < 0)
                return -1;
        } else if (c->hdr.len + take > CLEANUP_HEADER_MAX) {
            size_t room = CLEANUP_HEADER_MAX - c->hdr.len;

            if (buf_append(&c->hdr, p + i, room) < 0) {
                errno = ENOMEM;
                return -1;
            }
            if (!c->line_cont && !cl_line_is_header(c)) {
                if (cl_to_body(c) < 0)
                    return -1;
                i += room;
                break;
            }
            if (cl_header_overflow(c) < 0
                || cl_write(c, p + i + room, take - room) < 0)
                return -1;
        } else if (buf_append(&c->hdr, p + i, take) < 0) {
            errno = ENOMEM;
            return -1;
        }
        i += take;
        if (lf) {
            c->bol = true;
            if (!c->hdr_pass && !c->line_cont && !cl_line_is_header(c)
                && cl_to_body(c) < 0)
                return -1;
        }
    }
    return (long)i;
}

/* cl_count - RFC 1870 size: a line end counts as CR LF */
static void cl_count(cleanup_t *c, const char *p, size_t n)
{
    const char *end = p + n;

    c->size += n;
    while (p < end && (p = memchr(p, '\n', (size_t)(end - p))) != NULL) {
        c->size++;
        p++;
    }
}

/* cleanup_content - message bytes (LF line ends), any chunking */
int cleanup_content(cleanup_t *c, const void *data, size_t n)
{
    const char *p = data;

    if (!cl_usable(c))
        return -1;
    if (c->state == CL_ENVELOPE && cl_begin(c) < 0)
        return cl_fail(c);
    cl_count(c, p, n);
    if (c->size_limit > 0 && c->size > c->size_limit) {
        errno = EFBIG;
        return cl_fail(c);
    }
    if (c->state == CL_HEADER) {
        long used = cl_header_data(c, p, n);

        if (used < 0)
            return cl_fail(c);
        p += used;
        n -= (size_t)used;
    }
    if (n > 0 && cl_write(c, p, n) < 0)
        return cl_fail(c);
    return 0;
}

/* cl_content_end - content ended inside the header section */
static int cl_content_end(cleanup_t *c)
{
    if (c->hdr.len > 0 && !c->bol && !c->line_cont && !c->hdr_pass
        && !cl_line_is_header(c))
        return cl_to_body(c);           /* a last line without LF */
    if (cl_header_flush(c) < 0)
        return -1;
    return cl_header_end(c, false);
}

/* cleanup_commit - finish the content, commit durably */
int cleanup_commit(cleanup_t *c)
{
    if (!cl_usable(c))
        return -1;
    if (c->state == CL_ENVELOPE && cl_begin(c) < 0)
        return cl_fail(c);
    if (c->state == CL_HEADER && cl_content_end(c) < 0)
        return cl_fail(c);
    if (queue_writer_commit(&c->w) < 0) {
        int saved = errno;
        c->state = CL_FAILED;           /* the writer removed the file */
        buf_free(&c->hdr);
        errno = saved;
        return -1;
    }
    c->state = CL_DONE;
    buf_free(&c->hdr);
    return 0;
}

/* cleanup_abort - discard an uncommitted file, keep the object */
void cleanup_abort(cleanup_t *c)
{
    int saved = errno;

    if (cleanup_ok(c))
        (void)cl_fail(c);
    errno = saved;
}

/* cleanup_free - release; an uncommitted file is discarded */
void cleanup_free(cleanup_t *c)
{
    if (c == NULL)
        return;
    if (c->state != CL_DONE && c->state != CL_FAILED)
        queue_writer_abort(&c->w);
    buf_free(&c->hdr);
    htable_free(c->dups);
    free(c->first_rcpt);
    free(c->client_name);
    free(c->client_address);
    free(c->helo_name);
    free(c->protocol);
    free(c->tls_info);
    free(c);
}
