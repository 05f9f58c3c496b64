/*
 * pop3d_session - POP3 TRANSACTION and UPDATE over a Maildir listing
 * (pop3d_session.h has the contract).
 *
 * Security: the input is the authenticated user's, but still untrusted
 * (a stolen password): every line is bounded (POP3D_INPUT_MAX, then
 * pop3_cmd's own limit), message numbers are range-checked against the
 * listing before any array is touched, and nothing from the client is
 * echoed back except a number that pop3_cmd_number parsed. Output is
 * bounded too: the buffer is written out whenever it holds
 * POP3D_FLUSH_AT bytes, and the writer blocks (with a deadline, in
 * pop3d.c) rather than letting a client that does not read make us
 * buffer more.
 */
#include "pop3d_session.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/pop3_cmd.h"
#include "util/log.h"
#include "util/util.h"

#define MARK_DELETED   0x01
#define MARK_RETRIEVED 0x02

struct pop3d_session {
    struct maildir_listing *l;
    unsigned char *mark;            /* per message, MARK_* */
    unsigned long n_deleted;
    unsigned long long del_vsize;
    struct pop3d_store store;
    pop3d_write_fn write;
    void *write_ctx;
    struct pop3d_params params;
    buf_t out;
    char in[POP3D_INPUT_MAX];
    size_t in_len;
    bool discarding;                /* inside an overlong line */
    enum pop3d_status status;
    bool gone;                      /* nothing more can be sent */
    const char *close_reason;
    struct pop3d_stats st;
    char *block;                    /* POP3D_READ_BLOCK bytes */
};

/* ---- the RETR/TOP conversion --------------------------------------- */

/* pop3d_conv_init - start converting a message */
void pop3d_conv_init(struct pop3d_conv *c, long body_lines)
{
    memset(c, 0, sizeof(*c));
    c->bol = true;
    c->body_lines = body_lines;
}

/* pop3d_conv_block - convert in[0..n) into out (see the header) */
ssize_t pop3d_conv_block(struct pop3d_conv *c, const char *in, size_t n,
                         buf_t *out)
{
    size_t i = 0;

    while (i < n && !c->done) {
        if (c->bol) {
            if (c->in_body && c->body_lines == 0) {
                c->done = true;
                break;
            }
            if (in[i] == '.' && buf_putc(out, '.') < 0)
                return -1;
            c->bol = false;
            c->line_len = 0;
        }
        const char *lf = memchr(in + i, '\n', n - i);
        size_t seg = lf ? (size_t)(lf - (in + i)) : n - i;

        if (seg > 0) {
            if (buf_append(out, in + i, seg) < 0)
                return -1;
            c->cr = in[i + seg - 1] == '\r';
            c->line_len += seg;
        }
        i += seg;
        if (lf == NULL)
            break;
        /* the LF: CRLF unless the line already ends in CR */
        if (buf_append(out, c->cr ? "\n" : "\r\n", c->cr ? 1 : 2) < 0)
            return -1;
        i++;
        bool blank = c->line_len == 0 || (c->line_len == 1 && c->cr);
        if (!c->in_body) {
            if (blank)
                c->in_body = true;
        } else if (c->body_lines > 0) {
            c->body_lines--;
        }
        c->cr = false;
        c->bol = true;
    }
    return (ssize_t)i;
}

/* pop3d_conv_end - end the last line, then the terminator */
int pop3d_conv_end(struct pop3d_conv *c, buf_t *out)
{
    if (!c->bol && buf_append(out, c->cr ? "\n" : "\r\n", c->cr ? 1 : 2) < 0)
        return -1;
    c->bol = true;
    return buf_append(out, ".\r\n", 3);
}

/* ---- output ------------------------------------------------------------ */

/* session_fail - end the session (the client is gone, or a message
   cannot be read after its "+OK"): nothing more is sent */
static void session_fail(pop3d_session_t *s, const char *why)
{
    s->gone = true;
    buf_reset(&s->out);
    if (s->status == POP3D_QUIT)
        return;                 /* UPDATE ran: only its "+OK" was lost */
    if (s->status != POP3D_CLOSE || s->close_reason == NULL)
        s->close_reason = why;
    s->status = POP3D_CLOSE;
}

/* pop3d_session_flush - write out what is queued */
int pop3d_session_flush(pop3d_session_t *s)
{
    if (s->gone)
        return -1;
    if (s->out.len == 0)
        return 0;
    if (s->write(s->write_ctx, s->out.data, s->out.len) < 0) {
        session_fail(s, "Connection closed");
        return -1;
    }
    buf_reset(&s->out);
    return 0;
}

/* out_room - make sure a short line fits; false once nothing is sent */
static bool out_room(pop3d_session_t *s)
{
    if (!s->gone && s->out.len >= POP3D_FLUSH_AT)
        (void)pop3d_session_flush(s);
    return !s->gone;
}

/* out_printf - one reply line, CRLF added */
static void out_printf(pop3d_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void out_printf(pop3d_session_t *s, const char *fmt, ...)
{
    va_list ap;

    if (!out_room(s))
        return;
    va_start(ap, fmt);
    int r = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (r < 0 || buf_append(&s->out, "\r\n", 2) < 0)
        log_panic("pop3d: reply does not fit the output buffer");
}

/* pop3d_session_reply - a reply line from the caller */
void pop3d_session_reply(pop3d_session_t *s, const char *line)
{
    out_printf(s, "%s", line);
}

/* session_bad - an erroneous command: its reply, and the error count */
static void session_bad(pop3d_session_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void session_bad(pop3d_session_t *s, const char *fmt, ...)
{
    char line[256];
    va_list ap;

    va_start(ap, fmt);
    int r = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (r < 0 || (size_t)r >= sizeof(line))
        log_panic("pop3d: error reply too long");
    out_printf(s, "%s", line);
    s->st.errors++;
    if (s->params.error_limit > 0
        && s->st.errors >= (unsigned long)s->params.error_limit) {
        out_printf(s, "-ERR Too many bad commands.");
        if (s->status == POP3D_CONTINUE) {
            s->status = POP3D_CLOSE;
            s->close_reason = "Too many bad commands";
        }
    }
}

/* ---- commands ------------------------------------------------------------ */

/* msg_arg - the message a number argument names; -1 (answered) if none */
static int msg_arg(pop3d_session_t *s, const char *arg, size_t *idx)
{
    long n;

    if (pop3_cmd_number(arg, false, &n) < 0) {
        session_bad(s, "-ERR Invalid message number.");
        return -1;
    }
    if ((unsigned long)n > s->l->count) {
        session_bad(s, "-ERR There's no message %ld.", n);
        return -1;
    }
    if (s->mark[n - 1] & MARK_DELETED) {
        session_bad(s, "-ERR Message is deleted.");
        return -1;
    }
    *idx = (size_t)n - 1;
    return 0;
}

static void cmd_capa(pop3d_session_t *s)
{
    out_printf(s, "+OK Capability list follows");
    out_printf(s, "TOP");
    out_printf(s, "UIDL");
    out_printf(s, "RESP-CODES");
    out_printf(s, "PIPELINING");
    out_printf(s, "IMPLEMENTATION Tern");
    out_printf(s, ".");
}

static void cmd_stat(pop3d_session_t *s)
{
    out_printf(s, "+OK %lu %llu", s->l->count - s->n_deleted,
               s->st.mailbox_size - s->del_vsize);
}

static void cmd_list(pop3d_session_t *s, const struct pop3_cmd *c)
{
    size_t i;

    if (c->argc == 1) {
        if (msg_arg(s, c->argv[0], &i) == 0)
            out_printf(s, "+OK %zu %lld", i + 1,
                       (long long)s->l->msgs[i].vsize);
        return;
    }
    out_printf(s, "+OK %lu messages:", s->l->count - s->n_deleted);
    for (i = 0; i < s->l->count; i++)
        if (!(s->mark[i] & MARK_DELETED))
            out_printf(s, "%zu %lld", i + 1, (long long)s->l->msgs[i].vsize);
    out_printf(s, ".");
}

static void cmd_uidl(pop3d_session_t *s, const struct pop3_cmd *c)
{
    size_t i;

    if (c->argc == 1) {
        if (msg_arg(s, c->argv[0], &i) == 0)
            out_printf(s, "+OK %zu %s", i + 1, s->l->msgs[i].uidl);
        return;
    }
    out_printf(s, "+OK");
    for (i = 0; i < s->l->count; i++)
        if (!(s->mark[i] & MARK_DELETED))
            out_printf(s, "%zu %s", i + 1, s->l->msgs[i].uidl);
    out_printf(s, ".");
}

/* send_message - RETR (body_lines < 0) or TOP of message i */
static void send_message(pop3d_session_t *s, size_t i, long body_lines)
{
    const struct maildir_msg *m = &s->l->msgs[i];
    struct pop3d_conv conv;
    unsigned long long sent = 0;
    off_t got = 0;
    int fd = s->store.open(s->store.ctx, m);

    if (fd < 0) {
        if (errno == ENOENT) {
            out_printf(s, "-ERR Message was deleted by another session.");
        } else {
            log_warning("cannot open message %s: %s", m->name,
                        strerror(errno));
            out_printf(s, "-ERR [SYS/TEMP] Cannot read the message.");
        }
        return;
    }
    if (body_lines < 0)
        out_printf(s, "+OK %lld octets", (long long)m->vsize);
    else
        out_printf(s, "+OK");
    pop3d_conv_init(&conv, body_lines);
    while (!conv.done && !s->gone) {
        ssize_t n = read(fd, s->block, POP3D_READ_BLOCK);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* the "+OK" is out: a truncated message must not look
               complete, so the connection ends instead */
            log_warning("read message %s: %s", m->name, strerror(errno));
            session_fail(s, "Message read error");
            break;
        }
        if (n == 0)
            break;
        size_t before = s->out.len;
        if (pop3d_conv_block(&conv, s->block, (size_t)n, &s->out) < 0)
            log_panic("pop3d: message block does not fit the output buffer");
        sent += s->out.len - before;
        got += n;
        if (s->out.len >= POP3D_FLUSH_AT)
            (void)pop3d_session_flush(s);
        /* a short read of a regular file is its end; when that is the
           size the listing knows, the read() that returns 0 is saved */
        if (n < POP3D_READ_BLOCK && got == m->size)
            break;
    }
    (void)close(fd);
    if (s->gone)
        return;
    size_t before = s->out.len;
    if (pop3d_conv_end(&conv, &s->out) < 0)
        log_panic("pop3d: message end does not fit the output buffer");
    sent += s->out.len - before - 3;
    if (body_lines < 0) {
        s->st.retr_count++;
        s->st.retr_bytes += sent;
        s->mark[i] |= MARK_RETRIEVED;
    } else {
        s->st.top_count++;
        s->st.top_bytes += sent;
    }
}

static void cmd_retr(pop3d_session_t *s, const struct pop3_cmd *c)
{
    size_t i;

    if (msg_arg(s, c->argv[0], &i) == 0)
        send_message(s, i, -1);
}

static void cmd_top(pop3d_session_t *s, const struct pop3_cmd *c)
{
    size_t i;
    long lines;

    if (msg_arg(s, c->argv[0], &i) < 0)
        return;
    if (pop3_cmd_number(c->argv[1], true, &lines) < 0) {
        session_bad(s, "-ERR Invalid number of lines.");
        return;
    }
    send_message(s, i, lines);
}

static void cmd_dele(pop3d_session_t *s, const struct pop3_cmd *c)
{
    size_t i;

    if (msg_arg(s, c->argv[0], &i) < 0)
        return;
    s->mark[i] |= MARK_DELETED;
    s->n_deleted++;
    s->del_vsize += (unsigned long long)s->l->msgs[i].vsize;
    out_printf(s, "+OK Marked to be deleted.");
}

static void cmd_rset(pop3d_session_t *s)
{
    memset(s->mark, 0, s->l->count ? s->l->count : 1);
    s->n_deleted = 0;
    s->del_vsize = 0;
    out_printf(s, "+OK");
}

/* cmd_quit - UPDATE: deletions, then the Seen flags, then the reply */
static void cmd_quit(pop3d_session_t *s)
{
    unsigned long failed = 0;

    for (size_t i = 0; i < s->l->count; i++) {
        if (!(s->mark[i] & MARK_DELETED))
            continue;
        if (s->store.unlink(s->store.ctx, &s->l->msgs[i]) < 0) {
            log_warning("cannot delete message %s: %s", s->l->msgs[i].name,
                        strerror(errno));
            failed++;
        } else {
            s->st.del_count++;
        }
    }
    for (size_t i = 0; s->params.mark_seen && i < s->l->count; i++) {
        struct maildir_msg *m = &s->l->msgs[i];

        if ((s->mark[i] & (MARK_DELETED | MARK_RETRIEVED)) != MARK_RETRIEVED
            || strchr(m->flags, 'S') != NULL)
            continue;
        if (s->store.add_flag(s->store.ctx, m, 'S') < 0 && errno != ENOENT)
            log_warning("cannot mark message %s as seen: %s", m->name,
                        strerror(errno));
    }
    if (failed > 0)
        out_printf(s, "-ERR [SYS/TEMP] Some deleted messages were not removed.");
    else if (s->st.del_count > 0)
        out_printf(s, "+OK Logging out, messages deleted.");
    else
        out_printf(s, "+OK Logging out.");
    if (s->status == POP3D_CONTINUE)
        s->status = POP3D_QUIT;
}

/* session_line - one command line, without its LF */
static void session_line(pop3d_session_t *s, const char *line, size_t len)
{
    struct pop3_cmd c;

    if (len > 0 && line[len - 1] == '\r')
        len--;
    enum pop3_parse_error err = pop3_cmd_parse(line, len, &c);
    switch (err) {
    case POP3_OK:
        break;
    case POP3_ERR_TOO_LONG:
        session_bad(s, "-ERR Line too long.");
        return;
    case POP3_ERR_UNKNOWN:
        session_bad(s, "-ERR Unknown command.");
        return;
    case POP3_ERR_ARGS:
        session_bad(s, "-ERR Invalid arguments.");
        return;
    case POP3_ERR_SYNTAX:
    default:
        session_bad(s, "-ERR Invalid command syntax.");
        return;
    }
    /* the parser checks the argument counts; these checks keep an array
       access here from ever depending on that */
    size_t min = 0, max = 0;
    switch (c.verb) {
    case POP3_LIST: case POP3_UIDL: max = 1; break;
    case POP3_RETR: case POP3_DELE: min = max = 1; break;
    case POP3_TOP: min = max = 2; break;
    default: max = POP3_ARG_MAX; break;
    }
    if (c.argc < min || c.argc > max) {
        pop3_cmd_clear(&c);
        session_bad(s, "-ERR Invalid arguments.");
        return;
    }
    switch (c.verb) {
    case POP3_CAPA: cmd_capa(s); break;
    case POP3_STAT: cmd_stat(s); break;
    case POP3_LIST: cmd_list(s, &c); break;
    case POP3_UIDL: cmd_uidl(s, &c); break;
    case POP3_RETR: cmd_retr(s, &c); break;
    case POP3_TOP: cmd_top(s, &c); break;
    case POP3_DELE: cmd_dele(s, &c); break;
    case POP3_NOOP: out_printf(s, "+OK"); break;
    case POP3_RSET: cmd_rset(s); break;
    case POP3_QUIT: cmd_quit(s); break;
    case POP3_USER: case POP3_PASS: case POP3_APOP: case POP3_AUTH:
    case POP3_STLS:
        session_bad(s, "-ERR Already logged in.");
        break;
    case POP3_UTF8:
    case POP3_UNKNOWN:
    default:
        session_bad(s, "-ERR Unknown command.");
        break;
    }
    pop3_cmd_clear(&c);
}

/* pop3d_session_input - split into lines, serve them, write the replies */
enum pop3d_status pop3d_session_input(pop3d_session_t *s, const char *p,
                                      size_t n)
{
    while (n > 0 && s->status == POP3D_CONTINUE) {
        if (s->discarding) {
            const char *lf = memchr(p, '\n', n);
            if (lf == NULL)
                return s->status;
            n -= (size_t)(lf + 1 - p);
            p = lf + 1;
            s->discarding = false;
            continue;
        }
        size_t room = sizeof(s->in) - s->in_len;
        size_t look = n < room ? n : room;
        const char *lf = memchr(p, '\n', look);

        if (lf == NULL) {
            if (n < room) {             /* a partial line: keep it */
                memcpy(s->in + s->in_len, p, n);
                s->in_len += n;
                break;
            }
            /* no LF within POP3D_INPUT_MAX: discard up to the next one */
            n -= room;
            p += room;
            s->in_len = 0;
            s->discarding = true;
            session_bad(s, "-ERR Line too long.");
            continue;
        }
        size_t take = (size_t)(lf - p);
        memcpy(s->in + s->in_len, p, take);
        s->in_len += take;
        n -= take + 1;
        p = lf + 1;
        session_line(s, s->in, s->in_len);
        explicit_bzero(s->in, s->in_len);
        s->in_len = 0;
    }
    (void)pop3d_session_flush(s);
    return s->status;
}

/* ---- life cycle ------------------------------------------------------------ */

pop3d_session_t *pop3d_session_new(struct maildir_listing *listing,
                                   const struct pop3d_store *store,
                                   pop3d_write_fn write, void *write_ctx,
                                   const struct pop3d_params *params)
{
    pop3d_session_t *s = xcalloc(1, sizeof(*s));

    s->l = listing;
    s->mark = xcalloc(listing->count ? listing->count : 1, 1);
    s->store = *store;
    s->write = write;
    s->write_ctx = write_ctx;
    s->params = *params;
    buf_init(&s->out, POP3D_OUTPUT_MAX);
    s->block = xmalloc(POP3D_READ_BLOCK);
    s->st.msg_count = listing->count;
    for (size_t i = 0; i < listing->count; i++)
        s->st.mailbox_size += (unsigned long long)listing->msgs[i].vsize;
    return s;
}

void pop3d_session_free(pop3d_session_t *s)
{
    if (s == NULL)
        return;
    explicit_bzero(s->in, sizeof(s->in));
    buf_free(&s->out);
    free(s->block);
    free(s->mark);
    free(s);
}

const struct pop3d_stats *pop3d_session_stats(const pop3d_session_t *s)
{
    return &s->st;
}

const char *pop3d_session_close_reason(const pop3d_session_t *s)
{
    return s->status == POP3D_CLOSE ? s->close_reason : NULL;
}
