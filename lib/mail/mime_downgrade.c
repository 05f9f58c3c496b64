/*
 * mime_downgrade - 8-bit MIME content to 7-bit (mime_downgrade.h).
 */
#include <ctype.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>
#include "mail/mime_downgrade.h"
#include "util/sys.h"

#define QP_LINE_MAX 76          /* RFC 2045 6.7 (5), with the soft break */
#define MD_BOUNDARY_MAX 70      /* RFC 2046 5.1.1 */

struct md_entity {
    const char *hdr, *hend;     /* header section (without the blank line) */
    const char *body, *end;     /* body */
    bool has_blank;             /* a blank line separates them */
    char type[32];              /* "text", "multipart", "" = none */
    char subtype[64];
    char boundary[MD_BOUNDARY_MAX + 1];
    char cte[32];               /* lowercased, "" = none */
    bool mime_version;
};

static bool md_has8(const char *p, const char *end)
{
    for (; p < end; p++)
        if ((unsigned char)*p >= 0x80)
            return true;
    return false;
}

/* md_line_end - the end of the line starting at p (after its LF) */
static const char *md_line_end(const char *p, const char *end)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    return nl != NULL ? nl + 1 : end;
}

/* md_field - the header field at p ("Name: value" with continuation
   lines) ends at *fend; the unfolded value (bounded) into val */
static void md_field(const char *p, const char *hend, const char **fend,
                     const char *colon, char *val, size_t size)
{
    const char *e = md_line_end(p, hend);
    size_t n = 0;

    while (e < hend && (*e == ' ' || *e == '\t'))
        e = md_line_end(e, hend);
    *fend = e;
    for (const char *q = colon + 1; q < e && n + 1 < size; q++)
        if (*q != '\n' && *q != '\r')
            val[n++] = *q == '\t' ? ' ' : *q;
    val[n] = '\0';
}

/* md_token - the next "token" of a Content-Type value at *sp, lowercased
   unless keep_case; quoted strings unquoted */
static void md_token(const char **sp, char *out, size_t size, bool keep_case)
{
    const char *s = *sp;
    size_t n = 0;

    while (*s == ' ')
        s++;
    if (*s == '"') {
        for (s++; *s && *s != '"'; s++) {
            if (*s == '\\' && s[1] != '\0')
                s++;
            if (n + 1 < size)
                out[n++] = *s;
        }
        if (*s == '"')
            s++;
    } else {
        for (; *s && *s != ';' && *s != '/' && *s != '=' && *s != ' '; s++)
            if (n + 1 < size)
                out[n++] = keep_case ? *s : (char)tolower((unsigned char)*s);
    }
    out[n] = '\0';
    while (*s == ' ')
        s++;
    *sp = s;
}

static void md_content_type(struct md_entity *e, const char *v)
{
    char name[32], value[MD_BOUNDARY_MAX + 2];

    md_token(&v, e->type, sizeof(e->type), false);
    if (*v == '/') {
        v++;
        md_token(&v, e->subtype, sizeof(e->subtype), false);
    }
    while (*v == ';') {
        v++;
        md_token(&v, name, sizeof(name), false);
        if (*v != '=')
            continue;
        v++;
        md_token(&v, value, sizeof(value), true);
        if (strcmp(name, "boundary") == 0 && strlen(value) <= MD_BOUNDARY_MAX)
            str_copy(e->boundary, value, sizeof(e->boundary));
        while (*v && *v != ';')
            v++;
    }
}

/* md_parse - split an entity and read the fields that matter */
static void md_parse(const char *p, const char *end, struct md_entity *e)
{
    const char *q = p;

    memset(e, 0, sizeof(*e));
    e->hdr = p;
    while (q < end && *q != '\n')
        q = md_line_end(q, end);
    e->hend = q;
    e->has_blank = q < end;
    e->body = q < end ? q + 1 : end;
    e->end = end;
    for (q = e->hdr; q < e->hend;) {
        const char *colon = memchr(q, ':', (size_t)(md_line_end(q, e->hend) - q));
        const char *fend;
        char val[512];

        if (colon == NULL) {
            q = md_line_end(q, e->hend);
            continue;
        }
        md_field(q, e->hend, &fend, colon, val, sizeof(val));
        if ((size_t)(colon - q) == 12 && strncasecmp(q, "Content-Type", 12) == 0)
            md_content_type(e, val);
        else if ((size_t)(colon - q) == 25
                 && strncasecmp(q, "Content-Transfer-Encoding", 25) == 0) {
            const char *v = val;
            md_token(&v, e->cte, sizeof(e->cte), false);
        } else if ((size_t)(colon - q) == 12
                   && strncasecmp(q, "MIME-Version", 12) == 0)
            e->mime_version = true;
        q = fend;
    }
}

/* md_headers - the header section with every Content-Transfer-Encoding
   field left out (the caller adds its own) when drop_cte */
static int md_headers(const struct md_entity *e, bool drop_cte, buf_t *out)
{
    for (const char *q = e->hdr; q < e->hend;) {
        const char *line_end = md_line_end(q, e->hend), *fend = line_end;
        bool cte = (size_t)(e->hend - q) > 26
                   && strncasecmp(q, "Content-Transfer-Encoding:", 26) == 0;

        while (fend < e->hend && (*fend == ' ' || *fend == '\t'))
            fend = md_line_end(fend, e->hend);
        if (!(drop_cte && cte) && buf_append(out, q, (size_t)(fend - q)) < 0)
            return -1;
        q = fend;
    }
    return 0;
}

/* md_7bit - text that must be 7-bit but is not MIME content (preamble,
   epilogue): 8-bit bytes become '?' */
static int md_7bit(const char *p, const char *end, buf_t *out)
{
    for (; p < end; p++)
        if (buf_putc(out, (unsigned char)*p >= 0x80 ? '?' : *p) < 0)
            return -1;
    return 0;
}

/* md_qp - the body quoted-printable, LF line ends kept as hard breaks */
static int md_qp(const char *p, const char *end, buf_t *out)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    int r = 0;

    for (; p < end && r == 0; p++) {
        unsigned char c = (unsigned char)*p;
        bool eol = p + 1 == end || p[1] == '\n';
        char enc[3];
        size_t n = 1;

        if (c == '\n') {
            r = buf_putc(out, '\n');
            col = 0;
            continue;
        }
        enc[0] = (char)c;
        if (c == '=' || c >= 0x7f || (c < 0x20 && c != '\t')
            || ((c == ' ' || c == '\t') && eol)) {
            enc[0] = '=';
            enc[1] = hex[c >> 4];
            enc[2] = hex[c & 15];
            n = 3;
        }
        /* room for what comes, and a soft break "=" unless the line ends */
        if (col + n > (eol ? QP_LINE_MAX : QP_LINE_MAX - 1)) {
            r = buf_append(out, "=\n", 2);
            col = 0;
        }
        if (r == 0)
            r = buf_append(out, enc, n);
        col += n;
    }
    return r;
}

static int md_entity(const char *p, const char *end, int depth, bool top,
                     buf_t *out, const char **why_r);

/* md_delimiter - is the line at q "--boundary" (1) or "--boundary--" (2)? */
static int md_delimiter(const char *q, const char *end, const char *b,
                        size_t blen)
{
    const char *e = md_line_end(q, end), *t;

    if ((size_t)(e - q) < blen + 2 || q[0] != '-' || q[1] != '-'
        || memcmp(q + 2, b, blen) != 0)
        return 0;
    t = q + 2 + blen;
    int kind = 1;
    if (t + 1 < e && t[0] == '-' && t[1] == '-') {
        kind = 2;
        t += 2;
    }
    while (t < e && (*t == ' ' || *t == '\t' || *t == '\r' || *t == '\n'))
        t++;
    return t == e ? kind : 0;
}

/* md_multipart - the parts between the delimiter lines, each converted */
static int md_multipart(const struct md_entity *e, int depth, buf_t *out,
                        const char **why_r)
{
    size_t blen = strlen(e->boundary);
    const char *q = e->body, *part = NULL;
    int r = 0;

    while (q < e->end && r == 0) {
        const char *next = md_line_end(q, e->end);
        int kind = md_delimiter(q, e->end, e->boundary, blen);

        if (kind == 0) {
            q = next;
            continue;
        }
        if (part == NULL)
            r = md_7bit(e->body, q, out);                   /* preamble */
        else if (q > part)      /* the LF before a delimiter is its own */
            r = md_entity(part, q - 1, depth + 1, false, out, why_r);
        if (r == 0 && part != NULL && q > part)
            r = buf_putc(out, '\n');
        if (r == 0)
            r = buf_append(out, q, (size_t)(next - q));
        part = next;
        q = next;
        if (kind == 2)
            return r == 0 ? md_7bit(next, e->end, out) : r;  /* epilogue */
    }
    if (r == 0 && part == NULL)
        return md_7bit(e->body, e->end, out);   /* no delimiter at all */
    if (r == 0 && part < e->end)
        r = md_entity(part, e->end, depth + 1, false, out, why_r);
    return r;
}

static int md_entity(const char *p, const char *end, int depth, bool top,
                     buf_t *out, const char **why_r)
{
    struct md_entity e;
    bool composite;
    int r;

    if (!md_has8(p, end))
        return buf_append(out, p, (size_t)(end - p));
    if (depth > MIME_DOWNGRADE_MAX_DEPTH) {
        *why_r = "MIME structure nested too deeply to convert to 7 bit";
        return -1;
    }
    md_parse(p, end, &e);
    composite = strcmp(e.type, "multipart") == 0
                || (strcmp(e.type, "message") == 0
                    && strcmp(e.subtype, "rfc822") == 0);
    if (composite && !md_has8(e.body, e.end))
        return buf_append(out, p, (size_t)(end - p));  /* 8-bit headers */
    if (composite) {
        if (strcmp(e.type, "multipart") == 0 && e.boundary[0] == '\0') {
            *why_r = "multipart message without a boundary";
            return -1;
        }
        /* the body is 7-bit afterwards: say so if an encoding was given */
        r = md_headers(&e, e.cte[0] != '\0', out);
        if (r == 0 && e.cte[0] != '\0')
            r = buf_puts(out, "Content-Transfer-Encoding: 7bit\n");
        if (r == 0 && e.has_blank)
            r = buf_putc(out, '\n');
        if (r == 0)
            r = strcmp(e.type, "multipart") == 0
                ? md_multipart(&e, depth, out, why_r)
                : md_entity(e.body, e.end, depth + 1, true, out, why_r);
        return r;
    }
    if (!md_has8(e.body, e.end))
        return buf_append(out, p, (size_t)(end - p));  /* 8-bit headers */
    if (strcmp(e.cte, "base64") == 0 || strcmp(e.cte, "quoted-printable") == 0) {
        *why_r = "8-bit data in a part that says it is encoded";
        return -1;
    }
    r = md_headers(&e, true, out);
    /* a message that is not MIME yet: say what it is now */
    if (r == 0 && top && !e.mime_version)
        r = buf_puts(out, "MIME-Version: 1.0\n");
    if (r == 0 && top && e.type[0] == '\0')
        r = buf_puts(out, "Content-Type: text/plain; charset=unknown-8bit\n");
    if (r == 0)
        r = buf_puts(out, "Content-Transfer-Encoding: quoted-printable\n\n");
    if (r == 0)
        r = md_qp(e.body, e.end, out);
    return r;
}

int mime_downgrade(const char *in, size_t len, buf_t *out, const char **why_r)
{
    *why_r = "out of memory";
    if (md_entity(in, in + len, 0, true, out, why_r) < 0)
        return -1;
    return 0;
}
