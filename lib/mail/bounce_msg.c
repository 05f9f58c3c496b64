/*
 * bounce_msg - build a non-delivery report (RFC 3464, RFC 6522); see
 * bounce_msg.h.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include "mail/bounce_msg.h"

#define BM_WIDTH    78      /* fold generated lines here when possible */
#define BM_MAX_WORD 900     /* longer words are cut: lines stay < 998 */
#define BM_HASHES "####################################" \
                  "####################################"   /* 72 */

/* bm_random - 64 random bits (getrandom; a weaker mix if that fails) */
static uint64_t bm_random(void)
{
    static uint64_t counter;
    uint64_t v;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) == (ssize_t)sizeof(v))
        return v;
    v = (uint64_t)time(NULL) * 6364136223846793005ULL
        ^ ((uint64_t)getpid() << 32) ^ ++counter * 1442695040888963407ULL;
    return v;
}

/* bm_clean - s with control characters and 8-bit bytes as '?' (a TAB
   becomes a space), into tmp (reset first) */
static const char *bm_clean(buf_t *tmp, const char *s)
{
    buf_reset(tmp);
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;

        if (c == '\t')
            c = ' ';
        else if (c < 0x20 || c >= 0x7f)
            c = '?';
        if (buf_putc(tmp, c) < 0)
            return NULL;
    }
    return buf_str(tmp);
}

/* bm_fold - prefix, then the words of text (cleaned already), folded
   at spaces onto lines starting with indent; one line end at the end */
static int bm_fold(buf_t *out, const char *prefix, const char *text,
                   const char *indent)
{
    size_t col = strlen(prefix);
    bool need_space = false;
    int r = buf_puts(out, prefix);

    while (r == 0 && *text != '\0') {
        size_t n;

        while (*text == ' ')
            text++;
        n = strcspn(text, " ");
        while (r == 0 && n > 0) {
            size_t take = n > BM_MAX_WORD ? BM_MAX_WORD : n;

            if (need_space && col + 1 + take > BM_WIDTH) {
                r |= buf_putc(out, '\n');
                r |= buf_puts(out, indent);
                col = strlen(indent);
            } else if (need_space) {
                r |= buf_putc(out, ' ');
                col++;
            }
            r |= buf_append(out, text, take);
            col += take;
            need_space = true;
            text += take;
            n -= take;
        }
    }
    if (r == 0)
        r = buf_putc(out, '\n');
    return r;
}

/* bm_field - "Name: value" as a folded header-style field */
static int bm_field(buf_t *out, buf_t *tmp, const char *name,
                    const char *type, const char *value)
{
    char prefix[128];
    const char *clean = bm_clean(tmp, value);

    if (clean == NULL)
        return -1;
    (void)snprintf(prefix, sizeof(prefix), "%s: %s%s", name,
                   type != NULL ? type : "", type != NULL ? "; " : "");
    return bm_fold(out, prefix, clean, "\t");
}

/* bm_date - RFC 5322 date-time of t, local time */
static void bm_date(time_t t, char *out, size_t size)
{
    struct tm tm;

    if (localtime_r(&t, &tm) == NULL
        || strftime(out, size, "%a, %d %b %Y %H:%M:%S %z", &tm) == 0)
        (void)snprintf(out, size, "Thu, 01 Jan 1970 00:00:00 +0000");
}

/* bm_is_smtp - does the reason start with an SMTP reply code? */
static bool bm_is_smtp(const char *s)
{
    return s[0] >= '2' && s[0] <= '5' && s[1] >= '0' && s[1] <= '9'
           && s[2] >= '0' && s[2] <= '9' && (s[3] == ' ' || s[3] == '-');
}

/* bm_header_len - length of the header section (up to, not including,
   the empty line that ends it) */
static size_t bm_header_len(const char *content, size_t len)
{
    const char *p;

    if (len > 0 && content[0] == '\n')
        return 0;
    p = memmem(content, len, "\n\n", 2);
    return p != NULL ? (size_t)(p - content) + 1 : len;
}

/* bm_default_status - the Status of a recipient without one */
static const char *bm_default_status(const struct bounce_info *b)
{
    return b->kind == BOUNCE_MSG_DELAYED ? "4.0.0"
           : b->kind == BOUNCE_MSG_SUCCESS ? "2.0.0" : "5.0.0";
}

/* bm_default_action - the Action of a recipient without one */
static const char *bm_default_action(const struct bounce_info *b)
{
    return b->kind == BOUNCE_MSG_DELAYED ? "delayed"
           : b->kind == BOUNCE_MSG_SUCCESS ? "delivered" : "failed";
}

/* bm_intro - the words before the recipient lines */
static int bm_intro(const struct bounce_info *b, buf_t *out, buf_t *tmp)
{
    char until[64];
    int r = buf_printf(out, "This is the mail system at host %s.\n\n",
                       b->myhostname);

    switch (b->kind) {
    case BOUNCE_MSG_DELAYED:
        bm_date(b->will_retry_until, until, sizeof(until));
        r |= buf_puts(out,
            BM_HASHES "\n"
            "# THIS IS A WARNING ONLY. YOU DO NOT NEED TO SEND YOUR MESSAGE "
            "AGAIN. #\n"
            BM_HASHES "\n"
            "\n");
        buf_reset(tmp);
        r |= buf_printf(tmp, "Your message could not be delivered for %s to "
                        "one or more of its recipients. The mail system "
                        "keeps trying", b->delayed_for != NULL
                        ? b->delayed_for : "some time");
        if (b->will_retry_until != 0)
            r |= buf_printf(tmp, " until %s", until);
        r |= buf_puts(tmp, " and will tell you if it gives up. The reasons "
                      "so far are listed below, and the headers of your "
                      "message are attached.");
        if (r == 0)
            r = bm_fold(out, "", buf_str(tmp), "");
        r |= buf_putc(out, '\n');
        break;
    case BOUNCE_MSG_SUCCESS:
        r |= buf_puts(out,
            "Your message was delivered to the recipients listed below, as\n"
            "you asked in its delivery status notification request. A\n"
            "recipient reported as \"relayed\" was handed to a system that\n"
            "sends no further notifications. The headers of your message\n"
            "are attached.\n"
            "\n");
        break;
    default:
        r |= buf_puts(out,
            "Your message could not be delivered to one or more of its\n"
            "recipients; this is a permanent failure and the mail system will\n"
            "not try again. The reasons are listed below, and your message (or\n"
            "its headers) is attached to this report.\n"
            "\n");
        break;
    }
    r |= buf_puts(out,
        "If you need help, please write to the postmaster of this system\n"
        "and include this report. You may remove your own text from the\n"
        "attached message.\n"
        "\n"
        "                   The mail system\n"
        "\n");
    return r;
}

/* bm_part_len - how much of the original to attach: the header section
   only (hdrs), or all of it; either cut to limit bytes (0: no limit) at
   a line end, but never into the header section */
static size_t bm_part_len(const char *content, size_t len, bool hdrs,
                          size_t limit)
{
    size_t hlen = bm_header_len(content, len), n = hdrs ? hlen : len;
    const char *nl;

    if (limit == 0 || n <= limit)
        return n;
    if (hlen >= limit)
        return hlen;
    /* the last line end within the limit, after the headers */
    nl = limit > hlen ? memrchr(content + hlen, '\n', limit - hlen) : NULL;
    return nl != NULL ? (size_t)(nl - content) + 1 : hlen;
}

static int bm_text_part(const struct bounce_info *b, buf_t *out, buf_t *tmp)
{
    buf_t line = BUF_INIT;
    int r = 0;

    r |= buf_puts(out,
        "Content-Description: Notification\n"
        "Content-Type: text/plain; charset=us-ascii\n"
        "\n");
    r |= bm_intro(b, out, tmp);
    for (size_t i = 0; r == 0 && i < b->nrcpts; i++) {
        const struct bounce_rcpt *rc = &b->rcpts[i];
        const char *c;

        buf_reset(&line);
        r |= buf_printf(&line, "<%s>: %s", rc->address,
                        rc->diagnostic != NULL ? rc->diagnostic
                                               : "reason unknown");
        if (r == 0 && (c = bm_clean(tmp, buf_str(&line))) == NULL)
            r = -1;
        if (r == 0)
            r = bm_fold(out, "", c, "    ");
        r |= buf_putc(out, '\n');
    }
    buf_free(&line);
    return r;
}

static int bm_status_part(const struct bounce_info *b, buf_t *out,
                          buf_t *tmp)
{
    char date[64];
    int r = 0;

    r |= buf_puts(out, "Content-Description: Delivery report\n"
                       "Content-Type: message/delivery-status\n"
                       "\n");
    r |= bm_field(out, tmp, "Reporting-MTA", "dns", b->myhostname);
    if (b->envid != NULL && b->envid[0] != '\0')
        r |= bm_field(out, tmp, "Original-Envelope-Id", NULL, b->envid);
    bm_date(b->arrival, date, sizeof(date));
    r |= buf_printf(out, "Arrival-Date: %s\n", date);
    for (size_t i = 0; r == 0 && i < b->nrcpts; i++) {
        const struct bounce_rcpt *rc = &b->rcpts[i];
        const char *semi;

        r |= buf_putc(out, '\n');
        r |= bm_field(out, tmp, "Final-Recipient", "rfc822", rc->address);
        if (rc->dsn_orcpt != NULL
            && (semi = strchr(rc->dsn_orcpt, ';')) != NULL) {
            char type[32];
            size_t n = (size_t)(semi - rc->dsn_orcpt);

            if (n >= sizeof(type))
                n = sizeof(type) - 1;
            memcpy(type, rc->dsn_orcpt, n);
            type[n] = '\0';
            r |= bm_field(out, tmp, "Original-Recipient", type, semi + 1);
        } else if (rc->orig_rcpt != NULL && rc->orig_rcpt[0] != '\0'
                   && strcmp(rc->orig_rcpt, rc->address) != 0) {
            r |= bm_field(out, tmp, "Original-Recipient", "rfc822",
                          rc->orig_rcpt);
        }
        r |= bm_field(out, tmp, "Action", NULL, rc->action != NULL
                      ? rc->action : bm_default_action(b));
        r |= bm_field(out, tmp, "Status", NULL,
                      rc->status != NULL ? rc->status : bm_default_status(b));
        if (rc->diagnostic != NULL && rc->diagnostic[0] != '\0')
            r |= bm_field(out, tmp, "Diagnostic-Code",
                          bm_is_smtp(rc->diagnostic) ? "smtp" : "x-tern",
                          rc->diagnostic);
        if (b->kind == BOUNCE_MSG_DELAYED && b->will_retry_until != 0) {
            bm_date(b->will_retry_until, date, sizeof(date));
            r |= buf_printf(out, "Will-Retry-Until: %s\n", date);
        }
    }
    return r;
}

int bounce_msg_build(const struct bounce_info *b, const char *content,
                     size_t len, buf_t *out)
{
    char boundary[128], msgid[64], date[64], stamp[32];
    buf_t tmp = BUF_INIT;
    bool hdrs = b->ret_hdrs || b->kind != BOUNCE_MSG_FAILED;
    size_t part_len = bm_part_len(content, len, hdrs, b->size_limit);
    bool eight_bit = false;
    struct tm tm;
    size_t start = out->len;
    int r = 0;

    if (b->nrcpts == 0) {
        errno = EINVAL;
        return -1;
    }
    for (size_t i = 0; i < part_len; i++)
        if ((unsigned char)content[i] >= 0x80) {
            eight_bit = true;
            break;
        }
    if (b->boundary != NULL) {
        (void)snprintf(boundary, sizeof(boundary), "%s", b->boundary);
    } else {
        /* "=_" cannot occur in quoted-printable or base64 text; the
           random part makes a collision with the original unlikely,
           and we look anyway */
        for (int tries = 0; tries < 8; tries++) {
            (void)snprintf(boundary, sizeof(boundary), "=_%s.%016llx/%s",
                           b->qid, (unsigned long long)bm_random(),
                           b->myhostname);
            if (memmem(content, part_len, boundary, strlen(boundary)) == NULL)
                break;
        }
    }
    if (gmtime_r(&b->now, &tm) == NULL
        || strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm) == 0)
        (void)snprintf(stamp, sizeof(stamp), "0");
    (void)snprintf(msgid, sizeof(msgid), "%s.%016llx", stamp,
                   (unsigned long long)bm_random());
    bm_date(b->now, date, sizeof(date));

    r |= buf_printf(out, "From: MAILER-DAEMON@%s (Mail Delivery System)\n",
                    b->myhostname);
    r |= bm_field(out, &tmp, "To", NULL, b->sender);
    r |= buf_printf(out, "Subject: %s\n",
                    b->kind == BOUNCE_MSG_DELAYED
                    ? "Delayed Mail (still being retried)"
                    : b->kind == BOUNCE_MSG_SUCCESS
                    ? "Successful Mail Delivery Report"
                    : "Undelivered Mail Returned to Sender");
    r |= buf_printf(out, "Date: %s\n", date);
    r |= buf_printf(out, "Message-ID: <%s@%s>\n", msgid, b->myhostname);
    r |= buf_puts(out, "Auto-Submitted: auto-replied\n"
                       "MIME-Version: 1.0\n");
    r |= buf_printf(out, "Content-Type: multipart/report; "
                         "report-type=delivery-status;\n"
                         "\tboundary=\"%s\"\n", boundary);
    r |= buf_printf(out, "Content-Transfer-Encoding: %s\n",
                    eight_bit ? "8bit" : "7bit");
    r |= buf_puts(out, "\nThis is a MIME-encapsulated message.\n\n");

    r |= buf_printf(out, "--%s\n", boundary);
    r |= bm_text_part(b, out, &tmp);
    r |= buf_printf(out, "\n--%s\n", boundary);
    r |= bm_status_part(b, out, &tmp);
    r |= buf_printf(out, "\n--%s\n", boundary);
    r |= buf_printf(out, "Content-Description: %s\n"
                         "Content-Type: %s\n",
                    b->kind == BOUNCE_MSG_SUCCESS ? "Delivered Message Headers"
                    : b->kind == BOUNCE_MSG_DELAYED ? "Delayed Message Headers"
                    : hdrs ? "Undelivered Message Headers"
                    : "Undelivered Message",
                    hdrs ? "text/rfc822-headers" : "message/rfc822");
    if (eight_bit)
        r |= buf_puts(out, "Content-Transfer-Encoding: 8bit\n");
    r |= buf_putc(out, '\n');
    r |= buf_append(out, content, part_len);
    if (part_len > 0 && content[part_len - 1] != '\n')
        r |= buf_putc(out, '\n');
    r |= buf_printf(out, "\n--%s--\n", boundary);
    buf_free(&tmp);
    if (r != 0) {
        buf_truncate(out, start);
        errno = ENOMEM;
        return -1;
    }
    return 0;
}
