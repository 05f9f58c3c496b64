/* Unit tests for lib/stream.c: a socketpair, our stream on one end and
   the test playing the peer on the other. */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/events.h"
#include "util/stream.h"
#include "util/util.h"

#define MAXREC 64
/* generous bound for waiting on a condition: reached only when the
   behaviour is broken (or the machine hangs), never asserted as a time */
#define WAIT_MSEC 20000

struct rec {
    int r;            /* 1 line, -1 overlong */
    bool crlf;
    size_t len;
    char data[256];   /* first bytes of the line */
};

struct tctx {
    ev_loop_t *loop;
    stream_t *s;
    int peer;
    struct rec rec[MAXREC];
    int nrec;
    int reads;                 /* on_read calls */
    int closes;
    uint64_t closed_at;        /* time_mono_msec() in on_close */
    enum stream_close_reason why;
    size_t peek_at_close;
    char peek_data[64];
    int drains;
    /* behaviour switches */
    bool pause_each_line;      /* take one line, then pause */
    bool raw;                  /* on_read only peeks, consumes raw_take */
    size_t raw_take;
    size_t raw_seen;
    size_t reply_size;         /* bytes written per line received */
    size_t max_pending;
    bool close_on_quit;        /* "QUIT" -> write quit_reply and close */
    size_t quit_reply;
    bool quit_silent;          /* QUIT closes without writing */
    bool closed_by_us;
};

static void t_on_read(stream_t *s, void *arg)
{
    struct tctx *t = arg;
    t->reads++;
    if (t->raw) {
        const char *p;
        t->raw_seen = stream_peek(s, &p);
        size_t take = t->raw_take < t->raw_seen ? t->raw_take : t->raw_seen;
        stream_consume(s, take);
        return;
    }
    const char *line;
    size_t len;
    bool crlf;
    int r;
    while ((r = stream_read_line(s, &line, &len, &crlf)) != 0) {
        ck_assert_int_lt(t->nrec, MAXREC * 1000);
        if (t->nrec < MAXREC) {
            struct rec *rc = &t->rec[t->nrec];
            rc->r = r;
            if (r == 1) {
                rc->crlf = crlf;
                rc->len = len;
                memcpy(rc->data, line, len < sizeof(rc->data) ? len : sizeof(rc->data));
            }
        }
        t->nrec++;
        if (r == 1 && t->close_on_quit && len == 4 && memcmp(line, "QUIT", 4) == 0) {
            if (t->quit_silent) {
                stream_close(s);   /* nothing queued: done at once, but
                                      the free waits until we return */
                t->closed_by_us = true;
                return;
            }
            char *big = xmalloc(t->quit_reply);
            memset(big, 'q', t->quit_reply);
            stream_write(s, big, t->quit_reply);
            free(big);
            stream_puts(s, "221 bye\r\n");
            stream_close(s);
            t->closed_by_us = true;
            return;
        }
        if (t->reply_size > 0) {
            char reply[512];
            ck_assert_uint_le(t->reply_size, sizeof(reply));
            memset(reply, 'r', t->reply_size - 2);
            memcpy(reply + t->reply_size - 2, "\r\n", 2);
            stream_write(s, reply, t->reply_size);
            if (stream_output_pending(s) > t->max_pending)
                t->max_pending = stream_output_pending(s);
        }
        if (t->pause_each_line) {
            stream_pause_read(s, true);
            return;
        }
    }
}

static void t_on_close(stream_t *s, void *arg, enum stream_close_reason why)
{
    struct tctx *t = arg;
    t->closes++;
    t->closed_at = time_mono_msec();
    t->why = why;
    const char *p;
    t->peek_at_close = stream_peek(s, &p);
    size_t n = t->peek_at_close < sizeof(t->peek_data) - 1
        ? t->peek_at_close : sizeof(t->peek_data) - 1;
    memcpy(t->peek_data, p, n);
    t->peek_data[n] = '\0';
    t->s = NULL;
}

static void t_on_drain(stream_t *s, void *arg)
{
    (void)s;
    struct tctx *t = arg;
    t->drains++;
}

static const struct stream_handler t_handler = { t_on_read, t_on_close, t_on_drain };

static struct tctx *t_new(size_t max_line, int timeout)
{
    struct tctx *t = xcalloc(1, sizeof(*t));
    t->loop = ev_loop_new();
    ck_assert_ptr_nonnull(t->loop);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t->peer = sv[1];
    t->s = stream_new(t->loop, sv[0], max_line, timeout, &t_handler, t);
    ck_assert_ptr_nonnull(t->s);
    return t;
}

static void t_free(struct tctx *t)
{
    if (t->s != NULL && !t->closed_by_us)
        stream_close(t->s);
    /* let a lingering stream finish so ASan sees no leak */
    for (int i = 0; i < 5; i++)
        ev_loop_run_once(t->loop, 0);
    if (t->peer >= 0)
        close(t->peer);
    for (int i = 0; i < 5; i++)
        ev_loop_run_once(t->loop, 0);
    ev_loop_free(t->loop);
    free(t);
}

static void peer_send(struct tctx *t, const void *p, size_t n)
{
    ck_assert_int_eq(write_full(t->peer, p, n), 0);
}

#define RUN_UNTIL(t, cond, ms) do {                                   \
        uint64_t end_ = time_mono_msec() + (ms);                      \
        while (!(cond) && time_mono_msec() < end_)                    \
            ev_loop_run_once((t)->loop, 20);                          \
    } while (0)

/* the peer has something to read: data, or EOF once the stream is gone */
static bool peer_readable(const struct tctx *t)
{
    struct pollfd p = { .fd = t->peer, .events = POLLIN };
    return poll(&p, 1, 0) > 0;
}

/* run the loop (a closed stream lingers in it) until the peer can read */
#define RUN_UNTIL_PEER_READABLE(t) do {                               \
        RUN_UNTIL(t, peer_readable(t), WAIT_MSEC);                    \
        ck_assert_msg(peer_readable(t), "nothing for the peer to read"); \
    } while (0)

/* ---- line endings --------------------------------------------------------- */

START_TEST(test_line_endings)
{
    struct tctx *t = t_new(1000, 0);
    static const char in[] = "a\r\nbb\ncc\r\n\r\n\nx\r\r\n\rz\n";
    static const struct { const char *s; size_t len; bool crlf; } want[] = {
        { "a", 1, true }, { "bb", 2, false }, { "cc", 2, true },
        { "", 0, true }, { "", 0, false }, { "x\r", 2, true }, { "\rz", 2, false },
    };
    const int nwant = (int)(sizeof(want) / sizeof(want[0]));
    peer_send(t, in, sizeof(in) - 1);
    RUN_UNTIL(t, t->nrec >= nwant, WAIT_MSEC);
    ck_assert_int_eq(t->nrec, nwant);
    for (int i = 0; i < nwant; i++) {
        ck_assert_int_eq(t->rec[i].r, 1);
        ck_assert_uint_eq(t->rec[i].len, want[i].len);
        ck_assert_int_eq(t->rec[i].crlf, want[i].crlf);
        ck_assert_int_eq(memcmp(t->rec[i].data, want[i].s, want[i].len), 0);
    }
    t_free(t);
}
END_TEST

START_TEST(test_line_split_writes)
{
    struct tctx *t = t_new(1000, 0);
    static const char in[] = "MAIL FROM:<someone@example.org>\r\n";
    for (size_t i = 0; i < sizeof(in) - 1; i++) {
        peer_send(t, in + i, 1);
        ev_loop_run_once(t->loop, 20);
        /* the CR alone does not complete the line */
        if (i < sizeof(in) - 2)
            ck_assert_int_eq(t->nrec, 0);
    }
    RUN_UNTIL(t, t->nrec >= 1, WAIT_MSEC);
    ck_assert_int_eq(t->nrec, 1);
    ck_assert_uint_eq(t->rec[0].len, sizeof(in) - 3);
    ck_assert(t->rec[0].crlf);
    ck_assert_int_eq(memcmp(t->rec[0].data, in, sizeof(in) - 3), 0);
    ck_assert_int_ge(t->reads, (int)sizeof(in) - 1);
    t_free(t);
}
END_TEST

START_TEST(test_nul_bytes)
{
    struct tctx *t = t_new(100, 0);
    static const char in[] = "a\0b\0\0c\r\n\0\n";
    peer_send(t, in, sizeof(in) - 1);
    RUN_UNTIL(t, t->nrec >= 2, WAIT_MSEC);
    ck_assert_int_eq(t->nrec, 2);
    ck_assert_uint_eq(t->rec[0].len, 6);
    ck_assert(t->rec[0].crlf);
    ck_assert_int_eq(memcmp(t->rec[0].data, "a\0b\0\0c", 6), 0);
    ck_assert_uint_eq(t->rec[1].len, 1);
    ck_assert(!t->rec[1].crlf);
    ck_assert_int_eq(t->rec[1].data[0], '\0');
    t_free(t);
}
END_TEST

/* ---- overlong lines ---------------------------------------------------------- */

/* total: line length including its terminator; chunk: peer write size
   (0 = all at once) */
static const struct {
    size_t max_line;
    size_t total;
    bool crlf;
    size_t chunk;
} long_cases[] = {
    { 100, 98, true, 0 },
    { 100, 99, true, 0 },
    { 100, 100, true, 0 },      /* exactly max_line: fits */
    { 100, 101, true, 0 },
    { 100, 102, true, 0 },
    { 100, 100, false, 0 },
    { 100, 101, false, 0 },
    { 100, 101, true, 1 },      /* CR arrives alone as byte 101 */
    { 100, 5000, true, 0 },
    { 100, 5000, false, 37 },
    { 100, 70000, true, 0 },    /* longer than the whole input buffer */
    { 100, 200000, true, 4096 },
    { 100000, 100000, true, 0 },  /* max_line above 64 KiB sizes the buffer */
    { 100000, 100001, true, 0 },
    { 100000, 100001, false, 777 },
    { 1, 1, false, 0 },         /* degenerate: only an empty bare-LF line */
    { 1, 2, true, 0 },
};

START_TEST(test_overlong)
{
    size_t max_line = long_cases[_i].max_line;
    size_t total = long_cases[_i].total;
    bool crlf = long_cases[_i].crlf;
    size_t chunk = long_cases[_i].chunk;
    struct tctx *t = t_new(max_line, 0);

    size_t n = total + 6;
    char *in = xmalloc(n);
    size_t body = total - (crlf ? 2 : 1);
    for (size_t i = 0; i < body; i++)
        in[i] = (char)('a' + i % 26);
    memcpy(in + body, crlf ? "\r\n" : "\n", crlf ? 2 : 1);
    memcpy(in + total, "nx\r\n", 4);
    n = total + 4;
    if (max_line < 4) {
        memcpy(in + total, "\n", 1);   /* next line: empty */
        n = total + 1;
    }

    /* the peer keeps writing while we run, so large inputs do not block */
    int fl = fcntl(t->peer, F_GETFL);
    ck_assert_int_ge(fcntl(t->peer, F_SETFL, fl | O_NONBLOCK), 0);
    size_t off = 0;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (off < n && time_mono_msec() < end) {
        size_t want = chunk == 0 ? n - off : (chunk < n - off ? chunk : n - off);
        ssize_t w = write(t->peer, in + off, want);
        if (w > 0)
            off += (size_t)w;
        else
            ck_assert(errno == EAGAIN);
        ev_loop_run_once(t->loop, 0);
    }
    ck_assert_uint_eq(off, n);
    RUN_UNTIL(t, t->nrec >= 2, WAIT_MSEC);
    ev_loop_run_once(t->loop, 20);

    ck_assert_int_eq(t->nrec, 2);
    if (total <= max_line) {
        ck_assert_int_eq(t->rec[0].r, 1);
        ck_assert_uint_eq(t->rec[0].len, body);
        ck_assert_int_eq(t->rec[0].crlf, crlf);
    } else {
        ck_assert_int_eq(t->rec[0].r, -1);
    }
    ck_assert_int_eq(t->rec[1].r, 1);
    if (max_line < 4) {
        ck_assert_uint_eq(t->rec[1].len, 0);
    } else {
        ck_assert_uint_eq(t->rec[1].len, 2);
        ck_assert_int_eq(memcmp(t->rec[1].data, "nx", 2), 0);
    }
    free(in);
    t_free(t);
}
END_TEST

/* ---- raw access ----------------------------------------------------------------- */

START_TEST(test_peek_consume)
{
    struct tctx *t = t_new(100, 0);
    t->raw = true;
    t->raw_take = 3;
    peer_send(t, "abcdef", 6);
    RUN_UNTIL(t, t->reads >= 1, WAIT_MSEC);
    ck_assert_uint_eq(t->raw_seen, 6);
    const char *p;
    ck_assert_uint_eq(stream_peek(t->s, &p), 3);
    ck_assert_int_eq(memcmp(p, "def", 3), 0);
    /* back to lines: the unconsumed bytes start the next line */
    t->raw = false;
    peer_send(t, "gh\r\n", 4);
    RUN_UNTIL(t, t->nrec >= 1, WAIT_MSEC);
    ck_assert_int_eq(t->nrec, 1);
    ck_assert_uint_eq(t->rec[0].len, 5);
    ck_assert_int_eq(memcmp(t->rec[0].data, "defgh", 5), 0);
    /* consuming more than is buffered is clamped */
    peer_send(t, "zz", 2);
    t->raw = true;
    t->raw_take = 1000;
    RUN_UNTIL(t, t->raw_seen == 2, WAIT_MSEC);
    ck_assert_uint_eq(stream_peek(t->s, &p), 0);
    t_free(t);
}
END_TEST

/* A raw consumer that never consumes: reading stops once the buffer is
   full (no busy loop), and resumes when it takes data. */
START_TEST(test_full_buffer_stops_reading)
{
    struct tctx *t = t_new(100, 0);
    t->raw = true;
    t->raw_take = 0;
    int fl = fcntl(t->peer, F_GETFL);
    ck_assert_int_ge(fcntl(t->peer, F_SETFL, fl | O_NONBLOCK), 0);
    char blk[4096];
    memset(blk, 'd', sizeof(blk));
    size_t sent = 0;
    for (int i = 0; i < 200; i++) {
        ssize_t w = write(t->peer, blk, sizeof(blk));
        if (w > 0)
            sent += (size_t)w;
        ev_loop_run_once(t->loop, 0);
    }
    ck_assert_uint_eq(t->raw_seen, 64 * 1024);
    /* idle: with the buffer full the loop has nothing to do */
    int reads = t->reads;
    ck_assert_int_eq(ev_loop_run_once(t->loop, 50), 0);
    ck_assert_int_eq(t->reads, reads);
    const char *p;
    stream_consume(t->s, stream_peek(t->s, &p));   /* from outside */
    t->raw_take = SIZE_MAX;
    size_t got = 64 * 1024;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (got < sent && time_mono_msec() < end) {
        ev_loop_run_once(t->loop, 20);
        got += t->raw_seen;
        t->raw_seen = 0;
    }
    ck_assert_uint_eq(got, sent);
    t_free(t);
}
END_TEST

/* ---- timeout, EOF, close ------------------------------------------------------ */

/* The idle timer (1 s) restarts with input: a line sent 600 ms in moves
   the timeout to at least 1 s after it was sent (a lower bound; without
   the restart the stream would close 400 ms after the line). Should the
   machine stall so long that the first timeout fires before the line is
   read, that run says nothing about the restart: try again. */
START_TEST(test_timeout)
{
    for (int attempt = 0; attempt < 5; attempt++) {
        struct tctx *t = t_new(100, 1);
        ev_loop_run_once(t->loop, 600);   /* silence before the line */
        uint64_t sent = time_mono_msec();
        /* MSG_NOSIGNAL: after a stall the stream may be gone already */
        (void)send(t->peer, "x\r\n", 3, MSG_NOSIGNAL);
        RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
        ck_assert_int_eq(t->closes, 1);
        ck_assert_int_eq(t->why, STREAM_TIMEOUT);
        if (t->nrec == 0) {               /* timed out before the line */
            t_free(t);
            continue;
        }
        ck_assert_int_eq(t->nrec, 1);
        ck_assert_uint_ge(t->closed_at, sent + 1000);
        /* the stream is gone: the peer sees EOF */
        char c;
        RUN_UNTIL_PEER_READABLE(t);
        ck_assert_int_eq(read(t->peer, &c, 1), 0);
        t_free(t);
        return;
    }
    ck_abort_msg("every attempt timed out before its line was read");
}
END_TEST

/* stream_set_timeout: a stream made without a timeout gets one; a
   timeout taken away never fires */
START_TEST(test_set_timeout)
{
    struct tctx *t = t_new(100, 1);
    stream_set_timeout(t->s, 0);
    /* well past the old timeout: still open (nothing asserts a time:
       a slow machine only makes this weaker) */
    uint64_t end = time_mono_msec() + 1500;
    while (time_mono_msec() < end)
        ev_loop_run_once(t->loop, 100);
    ck_assert_int_eq(t->closes, 0);
    stream_set_timeout(t->s, 1);
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    ck_assert_int_eq(t->why, STREAM_TIMEOUT);
    t_free(t);
}
END_TEST

START_TEST(test_eof_after_partial_line)
{
    struct tctx *t = t_new(100, 0);
    peer_send(t, "full\r\npartial", 13);
    shutdown(t->peer, SHUT_WR);
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    ck_assert_int_eq(t->why, STREAM_EOF);
    ck_assert_int_eq(t->nrec, 1);
    ck_assert_uint_eq(t->rec[0].len, 4);
    ck_assert_uint_eq(t->peek_at_close, 7);
    ck_assert_str_eq(t->peek_data, "partial");
    t_free(t);
}
END_TEST

/* Output queued in on_close (a "421 timeout" reply) still reaches a peer
   that has only shut down its sending side. */
static void reply_on_close(stream_t *s, void *arg, enum stream_close_reason why)
{
    t_on_close(s, arg, why);
    stream_puts(s, "421 closing\r\n");
}

START_TEST(test_eof_reply_lingers)
{
    struct tctx *t = t_new(100, 0);
    static const struct stream_handler h = { t_on_read, reply_on_close, NULL };
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    stream_close(t->s);
    close(t->peer);
    t->peer = sv[1];
    t->s = stream_new(t->loop, sv[0], 100, 0, &h, t);
    ck_assert_ptr_nonnull(t->s);
    shutdown(t->peer, SHUT_WR);
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->why, STREAM_EOF);
    RUN_UNTIL_PEER_READABLE(t);
    char buf[64];
    ssize_t n = read(t->peer, buf, sizeof(buf));
    ck_assert_int_eq(n, 13);
    ck_assert_int_eq(memcmp(buf, "421 closing\r\n", 13), 0);
    RUN_UNTIL_PEER_READABLE(t);
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 0);
    t_free(t);
}
END_TEST

START_TEST(test_close_in_on_read_flushes)
{
    struct tctx *t = t_new(100, 0);
    t->close_on_quit = true;
    t->quit_reply = 1024 * 1024;   /* far more than the socket buffer */
    peer_send(t, "NOOP\r\nQUIT\r\nNOOP\r\n", 18);
    int fl = fcntl(t->peer, F_GETFL);
    ck_assert_int_ge(fcntl(t->peer, F_SETFL, fl | O_NONBLOCK), 0);
    size_t want = t->quit_reply + 9;
    char *got = xmalloc(want + 100);
    size_t n = 0;
    bool eof = false;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (!eof && time_mono_msec() < end) {
        ev_loop_run_once(t->loop, 10);
        for (;;) {
            ssize_t r = read(t->peer, got + n, want + 100 - n);
            if (r > 0) {
                n += (size_t)r;
                continue;
            }
            if (r == 0)
                eof = true;
            break;
        }
    }
    ck_assert(eof);
    ck_assert_uint_eq(n, want);
    ck_assert_int_eq(memcmp(got + t->quit_reply, "221 bye\r\n", 9), 0);
    ck_assert_int_eq(t->closes, 0);      /* stream_close never calls on_close */
    ck_assert_int_eq(t->nrec, 2);        /* nothing after QUIT was handed out */
    free(got);
    t_free(t);
}
END_TEST

/* stream_abandon: our descriptor goes, the connection stays for the
   other copy (a descriptor passed to another process): no FIN, nothing
   flushed, no on_close, unread input left for the other copy */
START_TEST(test_abandon_keeps_connection)
{
    struct tctx *t = t_new(100, 0);
    int other = dup(stream_fd(t->s));
    ck_assert_int_ge(other, 0);
    t->raw = true;
    t->raw_take = 0;
    peer_send(t, "USER a\r\n", 8);
    RUN_UNTIL(t, t->raw_seen > 0, WAIT_MSEC);
    ck_assert_uint_eq(t->raw_seen, 8);
    stream_write(t->s, "queued\r\n", 8);     /* dropped, not flushed */
    stream_abandon(t->s);
    t->closed_by_us = true;
    for (int i = 0; i < 5; i++)
        ev_loop_run_once(t->loop, 0);
    ck_assert_int_eq(t->closes, 0);
    ck_assert(!peer_readable(t));               /* no FIN, no output */
    /* the other copy still talks to the peer */
    ck_assert_int_eq(write_full(other, "+OK\r\n", 5), 0);
    peer_send(t, "STAT\r\n", 6);
    char buf[16];
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 5);
    ck_assert_int_eq(memcmp(buf, "+OK\r\n", 5), 0);
    ck_assert_int_eq(read(other, buf, sizeof(buf)), 6);
    ck_assert_int_eq(memcmp(buf, "STAT\r\n", 6), 0);
    /* and the descriptor we had is closed */
    ck_assert_int_eq(close(other), 0);
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 0);
    t_free(t);
}
END_TEST

START_TEST(test_close_in_on_read_silent)
{
    struct tctx *t = t_new(100, 0);
    t->close_on_quit = true;
    t->quit_silent = true;
    peer_send(t, "QUIT\r\nNOOP\r\n", 12);
    RUN_UNTIL(t, t->closed_by_us, WAIT_MSEC);
    ck_assert(t->closed_by_us);
    char c;
    RUN_UNTIL_PEER_READABLE(t);
    ck_assert_int_eq(read(t->peer, &c, 1), 0);
    ck_assert_int_eq(t->closes, 0);
    ck_assert_int_eq(t->nrec, 1);
    t_free(t);
}
END_TEST

/* stream_close from on_close and from on_drain */
static void close_on_close(stream_t *s, void *arg, enum stream_close_reason why)
{
    t_on_close(s, arg, why);
    stream_close(s);
}

static void close_on_drain(stream_t *s, void *arg)
{
    struct tctx *t = arg;
    t->drains++;
    stream_close(s);
    t->closed_by_us = true;
}

START_TEST(test_close_in_callbacks)
{
    struct tctx *t = t_new(100, 0);
    static const struct stream_handler h = { t_on_read, close_on_close, close_on_drain };
    stream_close(t->s);
    close(t->peer);
    int sv[2];
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t->peer = sv[1];
    t->s = stream_new(t->loop, sv[0], 100, 0, &h, t);
    ck_assert_ptr_nonnull(t->s);
    stream_puts(t->s, "hello\r\n");
    RUN_UNTIL(t, t->closed_by_us, WAIT_MSEC);
    ck_assert_int_eq(t->drains, 1);
    ck_assert_int_eq(t->closes, 0);
    char buf[16];
    RUN_UNTIL_PEER_READABLE(t);
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 7);
    RUN_UNTIL_PEER_READABLE(t);
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 0);
    close(t->peer);

    /* on_close that calls stream_close */
    ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    t->peer = sv[1];
    t->closed_by_us = false;
    t->s = stream_new(t->loop, sv[0], 100, 0, &h, t);
    ck_assert_ptr_nonnull(t->s);
    shutdown(t->peer, SHUT_WR);
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    ck_assert_int_eq(t->why, STREAM_EOF);
    t->closed_by_us = true;
    t_free(t);
}
END_TEST

START_TEST(test_write_error)
{
    struct tctx *t = t_new(100, 0);
    close(t->peer);
    t->peer = -1;
    stream_puts(t->s, "250 ok\r\n");
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    /* either the EOF or the failed write is noticed first */
    ck_assert(t->why == STREAM_ERROR || t->why == STREAM_EOF);
    t_free(t);
}
END_TEST

START_TEST(test_pipe_write_error)
{
    ev_loop_t *loop = ev_loop_new();
    struct tctx *t = xcalloc(1, sizeof(*t));
    t->loop = loop;
    int p[2];
    ck_assert_int_eq(pipe(p), 0);
    close(p[0]);
    t->s = stream_new(loop, p[1], 100, 0, &t_handler, t);
    ck_assert_ptr_nonnull(t->s);
    stream_puts(t->s, "data\n");
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    ck_assert_int_eq(t->why, STREAM_ERROR);
    t->peer = -1;
    t_free(t);
}
END_TEST

START_TEST(test_drain)
{
    struct tctx *t = t_new(100, 0);
    t->reply_size = 10;
    peer_send(t, "a\r\n", 3);
    RUN_UNTIL(t, t->drains > 0, WAIT_MSEC);
    ck_assert_int_eq(t->drains, 1);
    ck_assert_uint_eq(stream_output_pending(t->s), 0);
    char buf[32];
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 10);
    t_free(t);
}
END_TEST

/* ---- transport ops ------------------------------------------------------------- */

struct counting_io {
    int reads, writes;
};

/* a toy transport: upper-cases what it reads, counts calls */
static ssize_t upper_read(void *io_ctx, int fd, void *p, size_t n)
{
    struct counting_io *c = io_ctx;
    c->reads++;
    ssize_t r = read(fd, p, n);
    for (ssize_t i = 0; i < r; i++) {
        char *b = p;
        if (b[i] >= 'a' && b[i] <= 'z')
            b[i] = (char)(b[i] - 'a' + 'A');
    }
    return r;
}

static ssize_t counting_write(void *io_ctx, int fd, const void *p, size_t n)
{
    struct counting_io *c = io_ctx;
    c->writes++;
    return write(fd, p, n);
}

START_TEST(test_custom_io)
{
    struct tctx *t = t_new(100, 0);
    static const struct stream_io ops = { upper_read, counting_write };
    struct counting_io c = { 0 };
    stream_set_io(t->s, &ops, &c);
    ck_assert_int_ge(stream_fd(t->s), 0);
    peer_send(t, "ehlo x\r\n", 8);
    RUN_UNTIL(t, t->nrec >= 1, WAIT_MSEC);
    ck_assert_int_eq(memcmp(t->rec[0].data, "EHLO X", 6), 0);
    stream_printf(t->s, "%d-%s\r\n", 250, "ok");
    RUN_UNTIL(t, t->drains > 0, WAIT_MSEC);
    ck_assert_int_ge(c.reads, 1);
    ck_assert_int_ge(c.writes, 1);
    char buf[16];
    ck_assert_int_eq(read(t->peer, buf, sizeof(buf)), 8);
    ck_assert_int_eq(memcmp(buf, "250-ok\r\n", 8), 0);
    /* back to the plain transport */
    stream_set_io(t->s, NULL, NULL);
    peer_send(t, "quit\n", 5);
    RUN_UNTIL(t, t->nrec >= 2, WAIT_MSEC);
    ck_assert_int_eq(memcmp(t->rec[1].data, "quit", 4), 0);
    t_free(t);
}
END_TEST

/* ---- back-pressure ------------------------------------------------------------- */

START_TEST(test_backpressure)
{
    struct tctx *t = t_new(1000, 0);
    enum { LINE = 10, NLINES = 40000, REPLY = 256 };   /* 10 MB of replies */
    const size_t total = (size_t)NLINES * LINE;
    t->reply_size = REPLY;
    char *cmds = xmalloc(total);
    for (size_t i = 0; i < NLINES; i++) {
        memset(cmds + i * LINE, 'c', LINE - 2);
        memcpy(cmds + i * LINE + LINE - 2, "\r\n", 2);
    }
    int fl = fcntl(t->peer, F_GETFL);
    ck_assert_int_ge(fcntl(t->peer, F_SETFL, fl | O_NONBLOCK), 0);

    /* phase 1: the peer writes commands but never reads replies, until
       the replies reach the limit and the peer's writes stop going in */
    size_t sent = 0;
    bool blocked = false;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (!(blocked && t->max_pending >= 256 * 1024)
           && sent < total && time_mono_msec() < end) {
        ssize_t w = write(t->peer, cmds + sent, total - sent);
        if (w > 0)
            sent += (size_t)w;
        else
            ck_assert(errno == EAGAIN);
        blocked = w < 0;
        ev_loop_run_once(t->loop, 5);
    }
    ck_assert_uint_le(t->max_pending, 256 * 1024 + REPLY);
    ck_assert_uint_ge(t->max_pending, 256 * 1024);
    /* input reading paused: the peer could only fill the socket buffers */
    ck_assert_uint_lt(sent, 2u * 1024 * 1024);
    ck_assert_int_lt(t->nrec, NLINES / 4);
    /* and it stays paused: more turns of the loop take no line and make
       no room (cannot flake: nothing can unpause it until the peer reads) */
    int nrec1 = t->nrec;
    for (int i = 0; i < 5; i++)
        ev_loop_run_once(t->loop, 10);
    ck_assert_int_eq(t->nrec, nrec1);
    ck_assert_int_lt(write(t->peer, cmds + sent, total - sent), 0);
    ck_assert(errno == EAGAIN);

    /* phase 2: the peer reads replies and sends the rest */
    size_t got = 0;
    char buf[65536];
    end = time_mono_msec() + WAIT_MSEC;
    while (got < (size_t)NLINES * REPLY && time_mono_msec() < end) {
        ssize_t r;
        while ((r = read(t->peer, buf, sizeof(buf))) > 0)
            got += (size_t)r;
        if (sent < total) {
            ssize_t w = write(t->peer, cmds + sent, total - sent);
            if (w > 0)
                sent += (size_t)w;
        }
        ev_loop_run_once(t->loop, 5);
    }
    free(cmds);
    ck_assert_uint_eq(got, (size_t)NLINES * REPLY);
    ck_assert_int_eq(t->nrec, NLINES);
    ck_assert_uint_le(t->max_pending, 256 * 1024 + REPLY);
    t_free(t);
}
END_TEST

/* ---- pause / resume -------------------------------------------------------------- */

START_TEST(test_pause_redispatch)
{
    struct tctx *t = t_new(100, 0);
    t->pause_each_line = true;
    peer_send(t, "a\r\nb\r\nc\r\n", 9);
    RUN_UNTIL(t, t->nrec >= 1, WAIT_MSEC);
    ev_loop_run_once(t->loop, 30);
    ck_assert_int_eq(t->nrec, 1);
    /* no new data from the peer: resuming alone must deliver b, then c */
    for (int i = 1; i < 3; i++) {
        stream_pause_read(t->s, false);
        RUN_UNTIL(t, t->nrec > i, WAIT_MSEC);
        ck_assert_int_eq(t->nrec, i + 1);
        ck_assert_int_eq(t->rec[i].data[0], 'a' + i);
        ev_loop_run_once(t->loop, 20);
        ck_assert_int_eq(t->nrec, i + 1);
    }
    /* resume with nothing buffered: reading from the socket resumes */
    stream_pause_read(t->s, false);
    peer_send(t, "d\n", 2);
    RUN_UNTIL(t, t->nrec >= 4, WAIT_MSEC);
    ck_assert_int_eq(t->rec[3].data[0], 'd');
    t_free(t);
}
END_TEST

/* EOF while the owner is paused waits until it resumes and has had the
   buffered lines. */
START_TEST(test_pause_eof)
{
    struct tctx *t = t_new(100, 0);
    t->pause_each_line = true;
    peer_send(t, "a\r\nb\r\n", 6);
    close(t->peer);
    t->peer = -1;
    RUN_UNTIL(t, t->nrec >= 1, WAIT_MSEC);
    ev_loop_run_once(t->loop, 30);
    /* the hang-up of a paused stream must not make the loop spin */
    ck_assert_int_eq(ev_loop_run_once(t->loop, 30), 0);
    ck_assert_int_eq(t->nrec, 1);
    ck_assert_int_eq(t->closes, 0);
    stream_pause_read(t->s, false);
    RUN_UNTIL(t, t->nrec >= 2, WAIT_MSEC);
    ev_loop_run_once(t->loop, 30);
    ck_assert_int_eq(t->nrec, 2);
    ck_assert_int_eq(t->closes, 0);
    stream_pause_read(t->s, false);
    RUN_UNTIL(t, t->closes > 0, WAIT_MSEC);
    ck_assert_int_eq(t->closes, 1);
    ck_assert_int_eq(t->why, STREAM_EOF);
    t_free(t);
}
END_TEST

/* ---- closing while the peer still sends (TCP) ------------------------------- */

/* a connected loopback TCP pair; the peer end gets a small receive buffer
   so our output sits in the kernel's send queue for a while */
static struct tctx *t_new_tcp(void)
{
    struct sockaddr_in sin = { .sin_family = AF_INET };
    socklen_t slen = sizeof(sin);
    int one = 4096;
    int l = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(l, 0);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ck_assert_int_eq(bind(l, (struct sockaddr *)&sin, sizeof(sin)), 0);
    ck_assert_int_eq(listen(l, 1), 0);
    ck_assert_int_eq(getsockname(l, (struct sockaddr *)&sin, &slen), 0);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(setsockopt(c, SOL_SOCKET, SO_RCVBUF, &one, sizeof(one)), 0);
    ck_assert_int_eq(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    int a = accept(l, NULL, NULL);
    ck_assert_int_ge(a, 0);
    close(l);
    struct tctx *t = xcalloc(1, sizeof(*t));
    t->loop = ev_loop_new();
    ck_assert_ptr_nonnull(t->loop);
    t->peer = c;
    t->s = stream_new(t->loop, a, 100, 0, &t_handler, t);
    ck_assert_ptr_nonnull(t->s);
    return t;
}

/* The peer pipelines far past QUIT and reads only slowly: the big reply
   and "221" must still arrive whole, followed by EOF, not a RST. */
START_TEST(test_close_while_peer_sends)
{
    struct tctx *t = t_new_tcp();
    t->close_on_quit = true;
    t->quit_reply = 512 * 1024;
    int fl = fcntl(t->peer, F_GETFL);
    ck_assert_int_ge(fcntl(t->peer, F_SETFL, fl | O_NONBLOCK), 0);
    size_t junk_total = 600 * 1024, junk_sent = 0;
    char junk[8192];
    memset(junk, 'j', sizeof(junk));
    peer_send(t, "QUIT\r\n", 6);
    size_t want = t->quit_reply + 9;
    char *got = xmalloc(want + 100);
    size_t n = 0;
    bool eof = false;
    int err = 0;
    uint64_t end = time_mono_msec() + WAIT_MSEC;
    while (!eof && err == 0 && time_mono_msec() < end) {
        ev_loop_run_once(t->loop, 5);
        while (junk_sent < junk_total) {
            size_t k = junk_total - junk_sent;
            ssize_t w = send(t->peer, junk, k < sizeof(junk) ? k : sizeof(junk),
                             MSG_NOSIGNAL);
            if (w <= 0)
                break;
            junk_sent += (size_t)w;
        }
        /* read a little at a time, like a slow client */
        ssize_t r = read(t->peer, got + n, want + 100 - n < 4096
                                           ? want + 100 - n : 4096);
        if (r > 0)
            n += (size_t)r;
        else if (r == 0)
            eof = true;
        else if (errno != EAGAIN)
            err = errno;
    }
    ck_assert_msg(err == 0, "peer read error: %s after %zu bytes",
                  strerror(err), n);
    ck_assert(eof);
    ck_assert_uint_eq(n, want);
    ck_assert_int_eq(memcmp(got + t->quit_reply, "221 bye\r\n", 9), 0);
    free(got);
    t_free(t);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("stream");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_line_endings);
    tcase_add_test(tc, test_line_split_writes);
    tcase_add_test(tc, test_nul_bytes);
    tcase_add_loop_test(tc, test_overlong, 0,
                        (int)(sizeof(long_cases) / sizeof(long_cases[0])));
    tcase_add_test(tc, test_peek_consume);
    tcase_add_test(tc, test_abandon_keeps_connection);
    tcase_add_test(tc, test_set_timeout);
    tcase_add_test(tc, test_full_buffer_stops_reading);
    tcase_add_test(tc, test_timeout);
    tcase_add_test(tc, test_eof_after_partial_line);
    tcase_add_test(tc, test_eof_reply_lingers);
    tcase_add_test(tc, test_close_in_on_read_flushes);
    tcase_add_test(tc, test_close_in_on_read_silent);
    tcase_add_test(tc, test_close_in_callbacks);
    tcase_add_test(tc, test_write_error);
    tcase_add_test(tc, test_pipe_write_error);
    tcase_add_test(tc, test_drain);
    tcase_add_test(tc, test_custom_io);
    tcase_add_test(tc, test_backpressure);
    tcase_add_test(tc, test_pause_redispatch);
    tcase_add_test(tc, test_pause_eof);
    tcase_add_test(tc, test_close_while_peer_sends);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
