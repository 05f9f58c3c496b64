/*
 * cleanup - envelope, header/body state machine, duplicate filter, size
 * limit and durable commit of a new queue file (interface and rules in
 * cleanup.h). The file itself is written by queue_writer, the only
 * code that creates queue files.
 *
 * Security: content is untrusted. Only the header section is buffered,
 * one header at a time and at most CLEANUP_HEADER_MAX bytes of it; the
 * body is buffered one line (at most $line_length_limit bytes) at a
 * time, and only while body_checks look at it. The check tables are
 * opened once per process (dict_pcre compiles at open), regex matches
 * are bounded by dict_pcre's PCRE2 limits.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cleanup.h"
#include "config.h"
#include "content_check.h"
#include "dict.h"
#include "queue_writer.h"
#include "virtual_alias.h"
#include "util/buf.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/util.h"

#define CLEANUP_RECEIVED_MAX 4096   /* our Received: header */
#define CLEANUP_LOG_TEXT_MAX 200    /* header/body text in a log line */
#define CLEANUP_REJECT_TEXT "message content rejected"

/* header_checks and body_checks of this process (cleanup_checks_open) */
static maps_t *cl_header_maps;
static maps_t *cl_body_maps;
static bool cl_checks_loaded;

enum cleanup_state {
    CL_ENVELOPE,        /* sender, attributes, recipients */
    CL_HEADER,          /* content: in the header section */
    CL_BODY,            /* content: in the body */
    CL_SEALED,          /* complete, its commit running (cleanup_seal) */
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
    char *sender;               /* for the content check log lines */
    /* attributes our Received: is made of */
    char *client_name;
    char *client_address;
    char *helo_name;
    char *protocol;
    char *tls_info;             /* "(using ...)", NULL without TLS */
    char *auth_info;            /* authenticated sender, NULL without */
    /* header section */
    buf_t hdr;                  /* the current header, as far as read */
    bool bol;                   /* at the start of a line */
    bool line_cont;             /* the line being read continues hdr */
    bool hdr_pass;              /* hdr was too long: its rest is written
                                   as it comes, unexamined */
    bool last_lf;               /* last content byte written was LF */
    bool have_message_id;
    bool have_date;
    bool hdr_drop;              /* hdr was too long and IGNOREd or
                                   REPLACEd: drop its rest as well */
    uint64_t hdr_total;         /* bytes of the header section so far */
    /* body_checks */
    buf_t bline;                /* the body line being collected */
    uint64_t body_seen;         /* body bytes given to body_checks */
    /* content check outcome */
    bool voided;                /* REJECT/DISCARD: file gone, content
                                   swallowed until commit */
    bool checks_off;            /* no (further) checks: REJECT/DISCARD,
                                   or CLEANUP_FLAG_NO_CHECKS */
    bool hold;
    enum cleanup_outcome outcome;
    int reject_code;
    char *outcome_text;
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
    buf_free(&c->bline);
    errno = saved;
    return -1;
}

/* cl_usable - may the envelope/content calls go on? */
static bool cl_usable(const cleanup_t *c)
{
    if (c->state == CL_FAILED || c->state == CL_DONE
        || c->state == CL_SEALED) {
        errno = c->state == CL_FAILED ? EIO : EINVAL;
        return false;
    }
    return true;
}

/* cleanup_open - temp file and queue ID */
cleanup_t *cleanup_open(const char *queue, unsigned flags)
{
    cleanup_t *c;
    const char *why;

    if (!(flags & CLEANUP_FLAG_NO_CHECKS) && !cl_checks_loaded
        && cleanup_checks_open(&why) < 0) {
        log_warning("%s; mail waits until the table is fixed", why);
        errno = EIO;
        return NULL;
    }
    c = xcalloc(1, sizeof(*c));
    if (queue_writer_open(&c->w, queue) < 0) {
        int saved = errno;
        free(c);
        errno = saved;
        return NULL;
    }
    c->flags = flags;
    c->checks_off = (flags & CLEANUP_FLAG_NO_CHECKS) != 0;
    c->state = CL_ENVELOPE;
    c->dup_limit = var_duplicate_filter_limit;
    buf_init(&c->hdr, 0);
    buf_init(&c->bline, 0);
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

void cleanup_set_auth_info(cleanup_t *c, const char *user)
{
    free(c->auth_info);
    c->auth_info = user != NULL ? xstrdup(user) : NULL;
    if (c->auth_info != NULL)
        (void)log_scrub(c->auth_info);
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
/* cl_qualify - an address without a domain gets @$myorigin (Postfix's
   append_at_myorigin), so every queued address has one; out holds the
   result, the return value is what to use */
static const char *cl_qualify(const char *addr, buf_t *out)
{
    if (!var_append_at_myorigin || addr[0] == '\0' || strchr(addr, '@')
        || var_myorigin == NULL || var_myorigin[0] == '\0')
        return addr;
    buf_reset(out);
    (void)buf_printf(out, "%s@%s", addr, var_myorigin);
    return buf_str(out);
}

int cleanup_sender(cleanup_t *c, const char *given)
{
    buf_t q = BUF_INIT;
    const char *sender;

    if (!cl_usable(c))
        return -1;
    if (c->have_sender || c->state != CL_ENVELOPE) {
        errno = EINVAL;
        return cl_fail(c);
    }
    sender = cl_qualify(given, &q);
    if (queue_writer_record(&c->w, QREC_SENDER, sender, strlen(sender)) < 0) {
        buf_free(&q);
        return cl_fail(c);
    }
    c->have_sender = true;
    c->sender = xstrdup(sender);
    buf_free(&q);
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

/* cl_store_rcpt - optional 'O', 'N', 'P', then 'R', unless a
   duplicate; the DSN values are part of the duplicate key (as in
   Postfix), so the same address with another NOTIFY is kept */
static int cl_store_rcpt(cleanup_t *c, const char *orcpt, const char *rcpt,
                         unsigned notify, const char *ntext,
                         const char *dsn_orcpt, const char *given)
{
    buf_t key = BUF_INIT;
    bool dup;

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
        return -1;
    if (c->nrcpts++ == 0)
        c->first_rcpt = xstrdup(given);
    return 0;
}

/* cl_rcpt_qualified - virtual alias expansion (virtual_alias.h), then
   each resulting address stored with the original recipient as its
   'O' record (the producer's orcpt when it gave one) */
static int cl_rcpt_qualified(cleanup_t *c, const char *orcpt,
                             const char *rcpt, unsigned notify,
                             const char *dsn_orcpt);

/* cleanup_rcpt_dsn - an address without a domain is qualified first
   (the address as given stays the original recipient, as in Postfix's
   logs: to=<root@host>, orig_to=<root>) */
int cleanup_rcpt_dsn(cleanup_t *c, const char *orcpt, const char *rcpt,
                     unsigned notify, const char *dsn_orcpt)
{
    buf_t q = BUF_INIT;
    const char *qualified = cl_qualify(rcpt, &q);
    int rc;

    if (qualified != rcpt && orcpt == NULL)
        orcpt = rcpt;
    rc = cl_rcpt_qualified(c, orcpt, qualified, notify, dsn_orcpt);
    buf_free(&q);
    return rc;
}

static int cl_rcpt_qualified(cleanup_t *c, const char *orcpt,
                             const char *rcpt, unsigned notify,
                             const char *dsn_orcpt)
{
    char ntext[QREC_NOTIFY_TEXT_MAX] = "";
    struct virtual_alias_result r;
    buf_t err = BUF_INIT;
    int rc = 0;

    if (!cl_usable(c))
        return -1;
    if (!c->have_sender || c->state != CL_ENVELOPE
        || (notify != 0 && queue_notify_format(notify, ntext, sizeof(ntext)) < 0)) {
        errno = EINVAL;
        return cl_fail(c);
    }
    if ((c->flags & CLEANUP_FLAG_NO_VIRTUAL) || !virtual_alias_enabled())
        return cl_store_rcpt(c, orcpt, rcpt, notify, ntext, dsn_orcpt, rcpt)
               < 0 ? cl_fail(c) : 0;
    /* a table that fails must not drop or bounce the recipient: the
       whole message waits (temporary error, 451 4.3.0 in smtpd) */
    if (virtual_alias_expand(rcpt, &r, &err) < 0) {
        log_warning("%s: %s -- message not accepted, try again later",
                    c->w.qid, buf_str(&err));
        buf_free(&err);
        errno = EIO;
        return cl_fail(c);
    }
    buf_free(&err);
    for (size_t i = 0; rc == 0 && i < r.n; i++)
        rc = cl_store_rcpt(c, r.changed && orcpt == NULL ? rcpt : orcpt,
                           r.addrs[i], notify, ntext, dsn_orcpt, rcpt);
    virtual_alias_result_free(&r);
    return rc < 0 ? cl_fail(c) : 0;
}

/* cl_write - content bytes to the file (none once REJECT/DISCARD
   threw it away) */
static int cl_write(cleanup_t *c, const void *p, size_t n)
{
    if (n == 0 || c->voided)
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
    if (c->auth_info != NULL)
        (void)buf_printf(&h, "\t(Authenticated sender: %s)\n", c->auth_info);
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

/* ---- content checks ------------------------------------------------ */

/* cl_has_tables - does a table list name anything? */
static bool cl_has_tables(const char *list)
{
    for (const char *p = list ? list : ""; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != ',')
            return true;
    return false;
}

static bool cl_header_active;
static bool cl_body_active;

/* cleanup_checks_open - (re)open $header_checks and $body_checks */
int cleanup_checks_open(const char **error_r)
{
    static char err[1200];
    maps_t *h, *b;
    const char *why;

    cleanup_checks_close();
    if ((h = maps_open(var_header_checks, &why)) == NULL) {
        snprintf(err, sizeof(err), "header_checks: %s", why);
        *error_r = err;
        return -1;
    }
    if ((b = maps_open(var_body_checks, &why)) == NULL) {
        maps_close(h);
        snprintf(err, sizeof(err), "body_checks: %s", why);
        *error_r = err;
        return -1;
    }
    cl_header_maps = h;
    cl_body_maps = b;
    cl_header_active = cl_has_tables(var_header_checks);
    cl_body_active = cl_has_tables(var_body_checks);
    cl_checks_loaded = true;
    return 0;
}

void cleanup_checks_close(void)
{
    maps_close(cl_header_maps);
    maps_close(cl_body_maps);
    cl_header_maps = cl_body_maps = NULL;
    cl_header_active = cl_body_active = false;
    cl_checks_loaded = false;
}

/* cl_set_text - the outcome's text */
static void cl_set_text(cleanup_t *c, const char *text)
{
    free(c->outcome_text);
    c->outcome_text = xstrdup(text);
}

/* cl_void - REJECT/DISCARD: throw the file away now; later content is
   counted and swallowed, commit reports the outcome */
static void cl_void(cleanup_t *c, enum cleanup_outcome outcome)
{
    queue_writer_abort(&c->w);
    c->voided = true;
    c->checks_off = true;
    c->outcome = outcome;
}

/* cl_log_action - Postfix's line: "QID: reject: header TEXT from
   CLIENT; from=<S> to=<R> proto=P helo=<H>: REASON" */
static void cl_log_action(const cleanup_t *c, const char *action,
                          const char *where, const char *line, size_t len,
                          const char *reason)
{
    buf_t m = BUF_INIT;
    size_t at;

    (void)buf_printf(&m, "%s: %s: %s ", c->w.qid, action, where);
    at = m.len;
    (void)buf_append(&m, line, len > CLEANUP_LOG_TEXT_MAX
                     ? CLEANUP_LOG_TEXT_MAX : len);
    for (size_t i = at; i < m.len; i++)
        if (m.data[i] == '\n' || m.data[i] == '\0')
            m.data[i] = ' ';
    if (c->client_address != NULL)
        (void)buf_printf(&m, " from %s[%s]",
                         c->client_name ? c->client_name : "unknown",
                         c->client_address);
    else
        (void)buf_puts(&m, " from local");
    (void)buf_printf(&m, "; from=<%s> to=<%s>", c->sender ? c->sender : "",
                     c->first_rcpt ? c->first_rcpt : "");
    if (c->protocol != NULL)
        (void)buf_printf(&m, " proto=%s", c->protocol);
    if (c->helo_name != NULL)
        (void)buf_printf(&m, " helo=<%s>", c->helo_name);
    if (reason != NULL && *reason != '\0')
        (void)buf_printf(&m, ": %s", reason);
    log_info("%s", buf_str(&m));
    buf_free(&m);
}

/* cl_apply - carry out one verdict for line (len bytes, without its
   LF; lf: it had one). 1 the line is dropped, 0 it is written, -1 */
static int cl_apply(cleanup_t *c, const struct content_verdict *v,
                    const char *where, const char *line, size_t len,
                    bool lf)
{
    buf_t r = BUF_INIT;
    int ret = 0;

    switch (v->action) {
    case CC_DUNNO:
        break;
    case CC_REJECT:
        (void)buf_printf(&r, "%s %s", v->dsn,
                         *v->text ? v->text : CLEANUP_REJECT_TEXT);
        cl_log_action(c, "reject", where, line, len, buf_str(&r));
        cl_set_text(c, buf_str(&r));
        c->reject_code = v->code;
        cl_void(c, CLEANUP_REJECTED);
        ret = 1;
        break;
    case CC_DISCARD:
        cl_log_action(c, "discard", where, line, len, v->text);
        cl_set_text(c, v->text);
        cl_void(c, CLEANUP_DISCARDED);
        ret = 1;
        break;
    case CC_HOLD:
        cl_log_action(c, "hold", where, line, len, v->text);
        cl_set_text(c, v->text);
        c->hold = true;
        break;
    case CC_WARN:
        cl_log_action(c, "warning", where, line, len, v->text);
        break;
    case CC_IGNORE:
        ret = 1;
        break;
    case CC_REPLACE:
        cl_log_action(c, "replace", where, line, len, v->text);
        if (cl_write(c, v->text, strlen(v->text)) < 0
            || (lf && cl_write(c, "\n", 1) < 0))
            ret = -1;
        else
            ret = 1;
        break;
    case CC_PREPEND:
        cl_log_action(c, "prepend", where, line, len, v->text);
        if (cl_write(c, v->text, strlen(v->text)) < 0
            || cl_write(c, "\n", 1) < 0)
            ret = -1;
        break;
    }
    buf_free(&r);
    return ret;
}

/* cl_check - look one header or body line up in maps and apply the
   result: 1 the line is dropped, 0 it is written, -1 (errno) */
static int cl_check(cleanup_t *c, maps_t *maps, const char *where,
                    const char *line, size_t len, bool lf)
{
    buf_t key = BUF_INIT, val = BUF_INIT;
    struct content_verdict v;
    const char *why;
    int ret = 0, rc;

    if (buf_append(&key, line, len) < 0) {
        errno = ENOMEM;
        return -1;
    }
    for (size_t i = 0; i < key.len; i++)        /* no NUL cuts it short */
        if (key.data[i] == '\0')
            key.data[i] = ' ';
    rc = maps_lookup(maps, buf_str(&key), &val);
    if (rc < 0) {
        log_warning("%s: %s_checks: table lookup failed; mail waits",
                    c->w.qid, where);
        errno = EIO;
        ret = -1;
    } else if (rc > 0) {
        if (content_check_parse(buf_str(&val), &v, &why) < 0)
            log_warning("%s: %s_checks: %s in \"%.100s\"; ignored",
                        c->w.qid, where, why, buf_str(&val));
        else
            ret = cl_apply(c, &v, where, line, len, lf);
    }
    buf_free(&key);
    buf_free(&val);
    return ret;
}

/* cl_header_check - header_checks on the header in hdr */
static int cl_header_check(cleanup_t *c)
{
    size_t len = c->hdr.len;

    if (c->checks_off || !cl_header_active)
        return 0;
    if (len > 0 && c->hdr.data[len - 1] == '\n')
        len--;
    return cl_check(c, cl_header_maps, "header", c->hdr.data, len, true);
}

/* cl_body_line - bline is a complete line (or as long as a piece may
   get): body_checks, then write it */
static int cl_body_line(cleanup_t *c)
{
    size_t len = c->bline.len;
    bool lf = len > 0 && c->bline.data[len - 1] == '\n';
    int rc = 0;

    if (!c->checks_off)
        rc = cl_check(c, cl_body_maps, "body", c->bline.data,
                      len - (lf ? 1 : 0), lf);
    if (rc == 0)
        rc = cl_write(c, c->bline.data, len);
    else if (rc > 0)
        rc = 0;
    buf_reset(&c->bline);
    return rc;
}

/* cl_body_data - body bytes: line by line through body_checks while
   they look at the body, else straight to the file */
static int cl_body_data(cleanup_t *c, const char *p, size_t n)
{
    size_t max = var_line_length_limit > 0 ? (size_t)var_line_length_limit
                                           : 2048;

    while (n > 0) {
        if (c->bline.len == 0
            && (!cl_body_active || c->checks_off
                || c->body_seen >= (uint64_t)var_body_checks_size_limit))
            return cl_write(c, p, n);

        const char *lf = memchr(p, '\n', n);
        size_t take = lf ? (size_t)(lf - p) + 1 : n;
        bool done = lf != NULL;

        if (c->bline.len + take > max) {
            take = max - c->bline.len;
            done = true;
        }
        if (buf_append(&c->bline, p, take) < 0) {
            errno = ENOMEM;
            return -1;
        }
        c->body_seen += take;
        p += take;
        n -= take;
        if (done && cl_body_line(c) < 0)
            return -1;
    }
    return 0;
}

/* cleanup_outcome - what became of the message */
enum cleanup_outcome cleanup_outcome(const cleanup_t *c, int *code_r,
                                     const char **text_r)
{
    enum cleanup_outcome o = c->outcome;

    if (o == CLEANUP_QUEUED
        && (c->hold || strcmp(c->w.queue, QUEUE_HOLD) == 0))
        o = CLEANUP_HELD;
    if (code_r != NULL)
        *code_r = o == CLEANUP_REJECTED ? c->reject_code : 0;
    if (text_r != NULL)
        *text_r = c->outcome_text ? c->outcome_text : "";
    return o;
}

/* cleanup_hold - commit into hold/ */
void cleanup_hold(cleanup_t *c, const char *reason)
{
    c->hold = true;
    if (reason != NULL && c->outcome == CLEANUP_QUEUED)
        cl_set_text(c, reason);
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


/* cl_header_emit - the kept header (all of it, or its first
   CLEANUP_HEADER_MAX bytes when truncated): note Message-ID:/Date:,
   offer it to the hook, write it */
static int cl_header_emit(cleanup_t *c, bool truncated)
{
    size_t nlen = cl_name_len(c->hdr.data, c->hdr.len);

    if (nlen == 10 && strncasecmp(c->hdr.data, "message-id", 10) == 0)
        c->have_message_id = true;
    else if (nlen == 4 && strncasecmp(c->hdr.data, "date", 4) == 0)
        c->have_date = true;
    if (c->header_fn && c->header_fn(c->hook_ctx, c->hdr.data, c->hdr.len,
                                     truncated) < 0)
        return -1;
    if (cl_write(c, c->hdr.data, c->hdr.len) < 0)
        return -1;
    buf_reset(&c->hdr);
    return 0;
}

/* cl_header_flush - the current header is complete: note what it is,
   offer it to the hook, write it */
static int cl_header_flush(cleanup_t *c)
{
    bool truncated = c->hdr_pass;
    int rc;

    c->hdr_pass = false;
    c->hdr_drop = false;
    if (truncated || c->hdr.len == 0)
        return 0;                       /* written when it overflowed */
    if ((rc = cl_header_check(c)) < 0)
        return -1;
    if (rc > 0) {                       /* dropped or replaced */
        buf_reset(&c->hdr);
        return 0;
    }
    return cl_header_emit(c, false);
}

/* cl_header_overflow - the current header outgrew CLEANUP_HEADER_MAX:
   examine and write what we have, pass the rest through */
static int cl_header_overflow(cleanup_t *c)
{
    int rc;

    if ((rc = cl_header_check(c)) < 0)
        return -1;
    c->hdr_pass = true;
    if (rc > 0) {                       /* its rest goes as well */
        c->hdr_drop = true;
        buf_reset(&c->hdr);
        return 0;
    }
    return cl_header_emit(c, true);
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
    rc = cl_body_data(c, c->hdr.data, c->hdr.len);
    buf_reset(&c->hdr);
    return rc;
}

/* cl_header_data - content while in the header section; returns the
   bytes used (the rest, if any, is body) or -1 */
static long cl_header_data(cleanup_t *c, const char *p, size_t n)
{
    size_t i = 0;

    while (i < n && c->state == CL_HEADER) {
        if (c->bol && c->hdr_total > (uint64_t)var_header_size_limit
            && p[i] != '\n') {
            /* Postfix: header info past $header_size_limit starts the
               body; the empty line keeps readers of the file agreeing
               (unless the header section ends here anyway) */
            if (cl_header_flush(c) < 0)
                return -1;
            log_info("%s: header section longer than %ld bytes: the rest "
                     "of the message is body", c->w.qid,
                     var_header_size_limit);
            if (cl_header_end(c, false) < 0 || cl_write(c, "\n", 1) < 0)
                return -1;
            c->bol = false;
            break;
        }
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

        c->hdr_total += take;
        if (c->hdr_pass) {
            if (!c->hdr_drop && cl_write(c, p + i, take) < 0)
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
                || (!c->hdr_drop
                    && cl_write(c, p + i + room, take - room) < 0))
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
    if (n > 0 && cl_body_data(c, p, n) < 0)
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

/* cleanup_seal - finish the content; seal the file for the commit */
int cleanup_seal(cleanup_t *c, struct queue_sync *job)
{
    if (!cl_usable(c))
        return -1;
    if (c->state == CL_ENVELOPE && cl_begin(c) < 0)
        return cl_fail(c);
    if (c->state == CL_HEADER && cl_content_end(c) < 0)
        return cl_fail(c);
    if (c->bline.len > 0 && cl_body_line(c) < 0)
        return cl_fail(c);
    if (c->voided) {                    /* REJECT or DISCARD */
        bool rejected = c->outcome == CLEANUP_REJECTED;

        c->state = rejected ? CL_FAILED : CL_DONE;
        buf_free(&c->hdr);
        buf_free(&c->bline);
        if (rejected) {
            errno = EPERM;
            return -1;
        }
        return 0;
    }
    /* HOLD: the temporary file is renamed straight into hold/ (same file
       system, one rename), never committed into incoming/ first */
    if (c->hold && strcmp(c->w.queue, QUEUE_HOLD) != 0)
        str_copy(c->w.queue, QUEUE_HOLD, sizeof(c->w.queue));
    if (queue_writer_seal(&c->w, job) < 0) {
        int saved = errno;
        c->state = CL_FAILED;           /* the writer removed the file */
        buf_free(&c->hdr);
        errno = saved;
        return -1;
    }
    buf_free(&c->hdr);
    buf_free(&c->bline);
    c->state = CL_SEALED;
    return 1;
}

/* cleanup_sealed - the sealed file's commit is over */
int cleanup_sealed(cleanup_t *c, const struct queue_sync *job)
{
    if (c->state != CL_SEALED) {
        errno = EINVAL;
        return -1;
    }
    if (queue_writer_sealed(&c->w, job) < 0) {
        c->state = CL_FAILED;
        return -1;
    }
    c->state = CL_DONE;
    return 0;
}

/* cleanup_commit - finish the content, commit durably */
int cleanup_commit(cleanup_t *c)
{
    struct queue_sync job, *jobs[1] = { &job };
    int r = cleanup_seal(c, &job);

    if (r <= 0)
        return r;
    queue_sync_run(jobs, 1);
    return cleanup_sealed(c, &job);
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
    buf_free(&c->bline);
    htable_free(c->dups);
    free(c->first_rcpt);
    free(c->sender);
    free(c->outcome_text);
    free(c->client_name);
    free(c->client_address);
    free(c->helo_name);
    free(c->protocol);
    free(c->tls_info);
    free(c->auth_info);
    free(c);
}
