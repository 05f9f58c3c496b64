/* maildrop - the strict maildrop reader and its writer (maildrop.h). */
#include "maildrop.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "queue_record.h"
#include "util/sys.h"

#define MD_ATTR_RET    (1u << 0)
#define MD_ATTR_ENVID  (1u << 1)
#define MD_ATTR_NOTIFY (1u << 2)
#define MD_ATTR_EXTRACT (1u << 3)
#define MD_ATTR_BODY   (1u << 4)
#define MD_ENVID_MAX   100
#define MD_OUT_FLUSH   (MAILDROP_CHUNK_MAX + 4096)

/* maildrop_file_max - envelope bound plus content plus chunk headers */
uint64_t maildrop_file_max(uint64_t content_max)
{
    uint64_t env = (uint64_t)(MAILDROP_RCPT_MAX + 16)
                   * (MAILDROP_TEXT_MAX + QUEUE_REC_HDR_LEN);

    if (content_max == 0 || content_max > UINT64_MAX / 2)
        return UINT64_MAX;
    return env + content_max
           + (content_max / MAILDROP_CHUNK_MAX + 2) * QUEUE_REC_HDR_LEN;
}

bool maildrop_text_valid(const char *s, size_t n)
{
    if (n > MAILDROP_TEXT_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7F)
            return false;
    }
    return true;
}

void maildrop_reader_init(maildrop_reader_t *r, uint64_t content_max)
{
    memset(r, 0, sizeof(*r));
    r->content_max = content_max;
    buf_init(&r->data, MAILDROP_CHUNK_MAX + 1);
}

void maildrop_reader_free(maildrop_reader_t *r)
{
    buf_free(&r->data);
}

bool maildrop_reader_done(const maildrop_reader_t *r)
{
    return r->error == NULL && r->prev == MDREC_END;
}

/* md_max_len - the largest DATA a record of type t may have */
static long md_max_len(char t)
{
    switch (t) {
    case MDREC_VERSION:
        return 1;
    case MDREC_SENDER:
    case MDREC_FULLNAME:
    case MDREC_ATTR:
    case MDREC_RCPT:
        return MAILDROP_TEXT_MAX;
    case MDREC_CONTENT:
        return MAILDROP_CHUNK_MAX;
    case MDREC_END:
        return 0;
    default:
        return -1;
    }
}

/* md_order - may t come after the records read so far? */
static const char *md_order(const maildrop_reader_t *r, char t)
{
    char p = r->prev;
    bool envelope = p == MDREC_SENDER || p == MDREC_FULLNAME
                    || p == MDREC_ATTR;

    switch (t) {
    case MDREC_VERSION:
        return p == 0 ? NULL : "version record out of place";
    case MDREC_SENDER:
        return p == MDREC_VERSION ? NULL
               : p == 0 ? "no version record" : "sender record out of place";
    case MDREC_FULLNAME:
        return (p == MDREC_SENDER && !r->have_fullname) ? NULL
               : "full name record out of place";
    case MDREC_ATTR:
        return envelope ? NULL : "attribute record out of place";
    case MDREC_RCPT:
        return (envelope || p == MDREC_RCPT) ? NULL
               : "recipient record out of place";
    case MDREC_CONTENT:
        if (p == MDREC_CONTENT && r->short_chunk)
            return "content record after a short one";
        return (envelope || p == MDREC_RCPT || p == MDREC_CONTENT) ? NULL
               : "content record out of place";
    case MDREC_END:
        return (envelope || p == MDREC_RCPT || p == MDREC_CONTENT) ? NULL
               : "end record out of place";
    default:
        return "unknown record type";
    }
}

/* md_attr - check one "name=value" attribute */
static const char *md_attr(maildrop_reader_t *r, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    const char *v;
    size_t nl, vl;
    unsigned bit;
    unsigned mask;

    if (eq == NULL)
        return "attribute without '='";
    nl = (size_t)(eq - s);
    v = eq + 1;
    vl = n - nl - 1;
#define MD_IS(name) (nl == strlen(name) && memcmp(s, name, nl) == 0)
    if (MD_IS(MAILDROP_ATTR_DSN_RET)) {
        bit = MD_ATTR_RET;
        if (!((vl == 4 && memcmp(v, "FULL", 4) == 0)
              || (vl == 4 && memcmp(v, "HDRS", 4) == 0)))
            return "bad dsn_ret value";
    } else if (MD_IS(MAILDROP_ATTR_DSN_ENVID)) {
        bit = MD_ATTR_ENVID;
        if (vl == 0 || vl > MD_ENVID_MAX)
            return "bad dsn_envid length";
        for (size_t i = 0; i < vl; i++)
            if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7E)
                return "bad dsn_envid character";
    } else if (MD_IS(MAILDROP_ATTR_DSN_NOTIFY)) {
        bit = MD_ATTR_NOTIFY;
        if (queue_notify_parse(v, vl, &mask) < 0)
            return "bad dsn_notify value";
    } else if (MD_IS(MAILDROP_ATTR_EXTRACT)) {
        bit = MD_ATTR_EXTRACT;
        if (!(vl == 3 && memcmp(v, "yes", 3) == 0))
            return "bad extract value";
        r->extract = true;
    } else if (MD_IS(MAILDROP_ATTR_BODY)) {
        bit = MD_ATTR_BODY;
        if (!((vl == 4 && memcmp(v, "7BIT", 4) == 0)
              || (vl == 8 && memcmp(v, "8BITMIME", 8) == 0)))
            return "bad body value";
    } else {
        return "unknown attribute";
    }
#undef MD_IS
    if (r->attrs & bit)
        return "repeated attribute";
    r->attrs |= bit;
    return NULL;
}

/* md_check - the rules of one complete record's DATA */
static const char *md_check(maildrop_reader_t *r, char t, const char *s,
                            size_t n)
{
    switch (t) {
    case MDREC_VERSION:
        return (n == 1 && s[0] == '1') ? NULL : "unsupported version";
    case MDREC_FULLNAME:
        r->have_fullname = true;
        /* fall through */
    case MDREC_SENDER:
        return maildrop_text_valid(s, n) ? NULL : "bad character in text record";
    case MDREC_ATTR:
        if (!maildrop_text_valid(s, n))
            return "bad character in attribute";
        return md_attr(r, s, n);
    case MDREC_RCPT:
        if (n == 0)
            return "empty recipient";
        if (!maildrop_text_valid(s, n))
            return "bad character in recipient";
        if (++r->nrcpts > MAILDROP_RCPT_MAX)
            return "too many recipients";
        return NULL;
    case MDREC_CONTENT:
        if (n == 0)
            return "empty content record";
        if (n < MAILDROP_CHUNK_MAX)
            r->short_chunk = true;
        /* counted as cleanup and smtpd count (RFC 1870): a line end is
           CR LF, so what postdrop takes fits in cleanup's limit too */
        r->content += n;
        for (const char *lf = s; (lf = memchr(lf, '\n', n - (size_t)(lf - s)))
                                 != NULL; lf++)
            r->content++;
        if (r->content_max > 0 && r->content > r->content_max)
            return "message too large";
        return NULL;
    case MDREC_END:
        if (r->nrcpts == 0 && !r->extract)
            return "no recipients";
        return NULL;
    default:
        return "unknown record type";
    }
}

static int md_fail(maildrop_reader_t *r, const char *why, const char **error_r)
{
    if (r->error == NULL)
        r->error = why;
    if (error_r)
        *error_r = r->error;
    return -1;
}

/* md_record - a record's header is complete: may it come, how long? */
static const char *md_header(maildrop_reader_t *r)
{
    char t = (char)r->hdr[0];
    uint32_t len = queue_rec_get_len(r->hdr + 1);
    long max = md_max_len(t);
    const char *why;

    if (r->prev == MDREC_END)
        return "data after the end record";
    if ((why = md_order(r, t)) != NULL)
        return why;
    if (max < 0)
        return "unknown record type";
    if (len > (uint32_t)max)
        return t == MDREC_CONTENT ? "content record too long"
                                  : "record too long";
    r->need = len;
    buf_reset(&r->data);
    return NULL;
}

int maildrop_reader_feed(maildrop_reader_t *r, const void *p, size_t n,
                         maildrop_rec_fn fn, void *ctx, const char **error_r)
{
    const unsigned char *s = p;
    const char *why;

    if (r->error != NULL)
        return md_fail(r, r->error, error_r);
    while (n > 0) {
        if (r->prev == MDREC_END)
            return md_fail(r, "data after the end record", error_r);
        if (r->hdr_have < QUEUE_REC_HDR_LEN) {
            size_t take = QUEUE_REC_HDR_LEN - r->hdr_have;

            if (take > n)
                take = n;
            memcpy(r->hdr + r->hdr_have, s, take);
            r->hdr_have += take;
            s += take;
            n -= take;
            r->total += take;
            if (r->hdr_have < QUEUE_REC_HDR_LEN)
                break;
            if ((why = md_header(r)) != NULL)
                return md_fail(r, why, error_r);
        }
        if (r->data.len < r->need) {
            size_t take = r->need - r->data.len;

            if (take > n)
                take = n;
            if (take > 0 && buf_append(&r->data, s, take) < 0)
                return md_fail(r, "record too long", error_r);
            s += take;
            n -= take;
            r->total += take;
            if (r->data.len < r->need)
                break;
        }
        /* a whole record */
        char t = (char)r->hdr[0];
        struct maildrop_rec rec = { t, buf_str(&r->data), r->data.len };
        const char *cb_err = NULL;

        if ((why = md_check(r, t, rec.data, rec.len)) != NULL)
            return md_fail(r, why, error_r);
        r->prev = t;
        r->hdr_have = 0;
        r->need = 0;
        if (fn != NULL && fn(ctx, &rec, &cb_err) < 0)
            return md_fail(r, cb_err ? cb_err : "rejected by the reader's caller",
                           error_r);
    }
    return 0;
}

int maildrop_reader_end(maildrop_reader_t *r, const char **error_r)
{
    if (r->error != NULL)
        return md_fail(r, r->error, error_r);
    if (r->prev != MDREC_END || r->hdr_have != 0)
        return md_fail(r, r->total == 0 ? "empty file" : "truncated file",
                       error_r);
    return 0;
}

/* --- writer ------------------------------------------------------------ */

static int mw_fail(maildrop_writer_t *w, const char *why, const char **error_r)
{
    if (w->error == NULL)
        w->error = why;
    if (error_r)
        *error_r = w->error;
    errno = w->saved_errno;
    return -1;
}

static int mw_flush(maildrop_writer_t *w, const char **error_r)
{
    if (w->out.len == 0)
        return 0;
    if (write_full(w->fd, w->out.data, w->out.len) < 0) {
        w->saved_errno = errno;
        return mw_fail(w, "write error", error_r);
    }
    buf_reset(&w->out);
    return 0;
}

/* mw_put - check the record with the writer's own reader, then queue it */
static int mw_put(maildrop_writer_t *w, char t, const void *p, size_t n,
                  const char **error_r)
{
    unsigned char h[QUEUE_REC_HDR_LEN];
    const char *why;

    if (w->error != NULL)
        return mw_fail(w, w->error, error_r);
    if (n > UINT32_MAX)
        return mw_fail(w, "record too long", error_r);
    h[0] = (unsigned char)t;
    queue_rec_put_len(h + 1, (uint32_t)n);
    if (maildrop_reader_feed(&w->check, h, sizeof(h), NULL, NULL, &why) < 0
        || maildrop_reader_feed(&w->check, p, n, NULL, NULL, &why) < 0)
        return mw_fail(w, why, error_r);
    if (buf_append(&w->out, h, sizeof(h)) < 0
        || (n > 0 && buf_append(&w->out, p, n) < 0))
        return mw_fail(w, "out of memory", error_r);
    if (w->out.len >= MD_OUT_FLUSH)
        return mw_flush(w, error_r);
    return 0;
}

int maildrop_writer_init(maildrop_writer_t *w, int fd, uint64_t content_max,
                         const char **error_r)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    buf_init(&w->out, 0);
    buf_init(&w->chunk, MAILDROP_CHUNK_MAX);
    maildrop_reader_init(&w->check, content_max);
    return mw_put(w, MDREC_VERSION, "1", 1, error_r);
}

int maildrop_writer_rec(maildrop_writer_t *w, char type, const char *text,
                        const char **error_r)
{
    if (type != MDREC_SENDER && type != MDREC_FULLNAME && type != MDREC_ATTR
        && type != MDREC_RCPT)
        return mw_fail(w, "not an envelope record", error_r);
    return mw_put(w, type, text, strlen(text), error_r);
}

int maildrop_writer_attr(maildrop_writer_t *w, const char *name,
                         const char *value, const char **error_r)
{
    buf_t a = BUF_INIT;
    int rc;

    if (buf_printf(&a, "%s=%s", name, value) < 0) {
        buf_free(&a);
        return mw_fail(w, "attribute too long", error_r);
    }
    rc = mw_put(w, MDREC_ATTR, a.data, a.len, error_r);
    buf_free(&a);
    return rc;
}

int maildrop_writer_content(maildrop_writer_t *w, const void *p, size_t n,
                            const char **error_r)
{
    const char *s = p;

    while (n > 0) {
        size_t room = MAILDROP_CHUNK_MAX - w->chunk.len;
        size_t take = n < room ? n : room;

        if (buf_append(&w->chunk, s, take) < 0)
            return mw_fail(w, "out of memory", error_r);
        s += take;
        n -= take;
        if (w->chunk.len == MAILDROP_CHUNK_MAX) {
            if (mw_put(w, MDREC_CONTENT, w->chunk.data, w->chunk.len,
                       error_r) < 0)
                return -1;
            buf_reset(&w->chunk);
        }
    }
    return 0;
}

int maildrop_writer_finish(maildrop_writer_t *w, const char **error_r)
{
    const char *why;

    if (w->chunk.len > 0
        && mw_put(w, MDREC_CONTENT, w->chunk.data, w->chunk.len, error_r) < 0)
        return -1;
    buf_reset(&w->chunk);
    if (mw_put(w, MDREC_END, "", 0, error_r) < 0)
        return -1;
    if (maildrop_reader_end(&w->check, &why) < 0)
        return mw_fail(w, why, error_r);
    return mw_flush(w, error_r);
}

void maildrop_writer_free(maildrop_writer_t *w)
{
    buf_free(&w->out);
    buf_free(&w->chunk);
    maildrop_reader_free(&w->check);
}

/* --- header address lists ---------------------------------------------- */

/* md_addr_emit - trim, check and hand over one address */
static int md_addr_emit(buf_t *a, maildrop_addr_fn fn, void *ctx, long *count)
{
    size_t start = 0, end = a->len;
    const char *s = buf_str(a);

    while (start < end && (s[start] == ' ' || s[start] == '\t'))
        start++;
    while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
        end--;
    if (end > start && maildrop_text_valid(s + start, end - start)) {
        char *one = strndup(s + start, end - start);
        int rc;

        if (one == NULL)
            return -1;
        rc = fn(ctx, one);
        free(one);
        if (rc < 0)
            return -1;
        (*count)++;
    }
    buf_reset(a);
    return 0;
}

long maildrop_header_addrs(const char *v, size_t len, maildrop_addr_fn fn,
                           void *ctx)
{
    buf_t item = BUF_INIT;      /* the current address outside <> */
    buf_t angle = BUF_INIT;     /* what was inside <> */
    bool in_angle = false, have_angle = false, quoted = false;
    int comment = 0;
    long count = 0;
    long rc = 0;

    /* an item that outgrows these buffers is cut there, and so longer
       than MAILDROP_TEXT_MAX: md_addr_emit skips it, never passes on a
       truncated address */
    buf_init(&item, MAILDROP_TEXT_MAX * 4);
    buf_init(&angle, MAILDROP_TEXT_MAX * 4);
    for (size_t i = 0; i <= len && rc == 0; i++) {
        char c = i < len ? v[i] : ',';

        if (i == len) {         /* the end closes whatever is open */
            comment = 0;
            quoted = false;
            in_angle = false;
        }
        if (c == '\r' || c == '\n')
            c = ' ';
        if (comment > 0) {
            if (c == '\\' && i + 1 < len)
                i++;
            else if (c == '(')
                comment++;
            else if (c == ')')
                comment--;
            continue;
        }
        buf_t *out = in_angle ? &angle : &item;
        if (quoted) {
            if (c == '\\' && i + 1 < len) {
                (void)buf_putc(out, c);
                c = v[++i];
            } else if (c == '"') {
                quoted = false;
            }
            (void)buf_putc(out, c);
            continue;
        }
        switch (c) {
        case '"':
            quoted = true;
            (void)buf_putc(out, c);
            break;
        case '(':
            comment = 1;
            break;
        case '<':
            if (!in_angle) {
                in_angle = true;
                have_angle = true;
                buf_reset(&angle);
            }
            break;
        case '>':
            in_angle = false;
            break;
        case ':':
            if (in_angle) {     /* a source route: drop it */
                buf_reset(&angle);
            } else {
                buf_reset(&item);   /* a group's display name */
            }
            break;
        case ',':
        case ';':
            if (in_angle && c == ',') {     /* "@a,@b:" route list */
                (void)buf_putc(&angle, c);
                break;
            }
            if (i == len)
                in_angle = false;
            if (!in_angle) {
                if (have_angle) {
                    buf_reset(&item);
                    if (buf_append(&item, angle.data ? angle.data : "",
                                   angle.len) < 0)
                        buf_reset(&item);
                }
                if (md_addr_emit(&item, fn, ctx, &count) < 0)
                    rc = -1;
                have_angle = false;
                buf_reset(&angle);
            }
            break;
        default:
            (void)buf_putc(out, c);
            break;
        }
        if (i == len)
            break;
    }
    buf_free(&item);
    buf_free(&angle);
    return rc < 0 ? -1 : count;
}

size_t maildrop_header_is(const char *hdr, size_t len, const char *name)
{
    size_t n = strlen(name), i;

    if (len <= n || strncasecmp(hdr, name, n) != 0)
        return 0;
    for (i = n; i < len && (hdr[i] == ' ' || hdr[i] == '\t'); i++)
        ;
    return i < len && hdr[i] == ':' ? i + 1 : 0;
}
