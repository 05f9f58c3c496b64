/*
 * stream - buffered non-blocking connection on the event loop: bounded
 * line input, queued output, idle timeout, back-pressure, deferred free.
 *
 * Lifetime: every entry point from the loop (io callback, timers) and
 * every owner callback runs with depth > 0; the memory is only released
 * by stream_settle() once depth is back to 0, so stream_close() and
 * on_close may happen anywhere. After on_close or stream_close the stream
 * "lingers": it only flushes queued output (bounded by STREAM_LINGER_MSEC)
 * and then closes the fd and frees itself.
 *
 * A socket closed while the peer still sends (a pipelining client, junk
 * after QUIT) would answer with a RST, and a RST makes the kernel drop
 * our last reply if it is not yet delivered. So a lingering socket keeps
 * reading and discarding input, and once its output is flushed it sends
 * FIN (shutdown SHUT_WR) and waits for the peer's EOF before close():
 * bounded by STREAM_DISCARD_MAX bytes and STREAM_DRAIN_MSEC after FIN.
 *
 * TLS (stream_start_tls) is a state of the stream: FLUSH (output queued
 * before STARTTLS goes out in plaintext), HANDSHAKE (driven by the loop
 * with the events OpenSSL asks for), UP (reads and writes through
 * tls_stream_io). While TLS is up each direction waits for what its last
 * OpenSSL call asked for (a write may wait for readability), and
 * plaintext OpenSSL already decrypted is read from the kick, since epoll
 * will not report it. A closing TLS stream sends close_notify once its
 * output is flushed (bounded by the linger deadline), then continues as
 * above on the raw socket.
 */
#include "stream.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "tls.h"
#include "util.h"

#define STREAM_MIN_INBUF      (64u * 1024)
#define STREAM_OUT_HIGH       (256u * 1024)
#define STREAM_OUT_LOW        (64u * 1024)
#define STREAM_LINGER_MSEC    10000u
#define STREAM_DRAIN_MSEC     2000u           /* after FIN: wait for EOF */
#define STREAM_DISCARD_MAX    (1024u * 1024)  /* input dropped while closing */

struct stream {
    ev_loop_t *loop;
    int fd;
    struct stream_handler h;
    void *ctx;
    const struct stream_io *io;
    void *io_ctx;

    char *in;              /* input bytes live at in[in_start, in_start+in_len);
                              NULL while empty: allocated for a read, freed
                              when the owner has consumed everything */
    size_t in_cap;         /* its size once allocated */
    size_t in_start;
    size_t in_len;
    size_t scanned;        /* bytes from in_start known to hold no LF */
    size_t max_line;
    bool discarding;       /* inside an overlong line, dropping up to LF */

    buf_t out;             /* pending output is out.data[out_off, out.len) */
    size_t out_off;

    int timeout_sec;
    ev_timer_t idle;       /* idle timeout, or the linger deadline */
    ev_timer_t kick;       /* zero-delay re-dispatch */

    unsigned registered;   /* events currently requested from the loop */
    int depth;             /* > 0 while inside an entry point or callback */
    bool user_paused;
    bool bp_paused;        /* output over high water */
    bool eof;              /* read returned 0 */
    bool hup;              /* fd left the loop after a hang-up; kick drives I/O */
    bool closing;          /* no more owner callbacks; flush, then free */
    bool broken;           /* closing without flushing (I/O error, deadline) */
    bool failed;           /* epoll update failed; kick reports STREAM_ERROR */
    bool is_socket;
    bool shut;             /* closing: FIN sent, waiting for the peer's EOF */
    size_t discarded;      /* input bytes dropped while closing */

    tls_conn_t *tls;       /* set by stream_start_tls, freed with the stream */
    enum {
        STREAM_TLS_NONE = 0,
        STREAM_TLS_FLUSH,      /* plaintext output before the handshake */
        STREAM_TLS_HANDSHAKE,
        STREAM_TLS_UP,
    } tls_state;
    size_t tls_clear_out;  /* FLUSH: queued bytes still to go in plaintext */
    size_t tls_discarded;  /* input dropped by the STARTTLS barrier */
    stream_tls_cb tls_done;
    bool tls_shut;         /* closing: close_notify sent (or given up) */
};

/* ---- default transport ---------------------------------------------------- */

static ssize_t plain_read(void *io_ctx, int fd, void *p, size_t n)
{
    (void)io_ctx;
    return read(fd, p, n);
}

static ssize_t plain_write(void *io_ctx, int fd, const void *p, size_t n)
{
    (void)io_ctx;
    return write(fd, p, n);
}

static ssize_t plain_send(void *io_ctx, int fd, const void *p, size_t n)
{
    (void)io_ctx;
    return send(fd, p, n, MSG_NOSIGNAL);
}

static const struct stream_io stream_io_fd = { plain_read, plain_write };
static const struct stream_io stream_io_socket = { plain_read, plain_send };

static bool fd_is_socket(int fd)
{
    struct stat st;
    return fstat(fd, &st) == 0 && S_ISSOCK(st.st_mode);
}

/* ---- helpers -------------------------------------------------------------- */

static bool stream_tls_handshaking(const stream_t *s)
{
    return s->tls_state == STREAM_TLS_FLUSH
        || s->tls_state == STREAM_TLS_HANDSHAKE;
}

/* TLS is up and still carries the stream's I/O (not after close_notify) */
static bool stream_tls_up(const stream_t *s)
{
    return s->tls_state == STREAM_TLS_UP && !s->tls_shut;
}

static size_t stream_pending(const stream_t *s)
{
    return s->out.len - s->out_off;
}

/* A closing socket reads (and drops) input, within the budget, so the
   peer's pending data does not turn our close() into a RST. */
static bool stream_may_discard(const stream_t *s)
{
    return s->closing && !s->broken && s->is_socket && !s->eof && !s->hup
        && s->discarded < STREAM_DISCARD_MAX;
}

static bool stream_want_read(const stream_t *s)
{
    if (stream_tls_handshaking(s))
        return false;   /* only OpenSSL reads now */
    if (s->closing)
        return stream_may_discard(s);
    return !s->eof && !s->user_paused && !s->bp_paused
        && s->in_len < s->in_cap;
}

static void stream_touch(stream_t *s)
{
    /* the handshake has a deadline (stream_start_tls), not an idle timer */
    if (!s->closing && s->timeout_sec > 0 && !stream_tls_handshaking(s))
        ev_timer_set(s->loop, &s->idle, (uint64_t)s->timeout_sec * 1000u);
}

static void stream_free(stream_t *s)
{
    if (!s->hup)
        ev_io_remove(s->loop, s->fd);
    ev_timer_stop(s->loop, &s->idle);
    ev_timer_stop(s->loop, &s->kick);
    tls_conn_free(s->tls);
    if (close(s->fd) < 0 && errno != EINTR)
        log_warning("stream: close fd %d: %m", s->fd);
    buf_free(&s->out);
    free(s->in);
    free(s);
}

static unsigned stream_tls_events(unsigned want, unsigned dflt)
{
    if (want == 0)
        return dflt;
    return ((want & TLS_WANT_READ) ? EV_READ : 0u)
         | ((want & TLS_WANT_WRITE) ? EV_WRITE : 0u);
}

/* closing with TLS up: close_notify still to send once output is out */
static bool stream_tls_closing(const stream_t *s)
{
    return s->closing && !s->broken && stream_tls_up(s)
        && stream_pending(s) == 0;
}

/* The events TLS needs for what the stream wants to do. */
static unsigned stream_tls_interest(const stream_t *s, bool want_read,
                                    bool want_write)
{
    unsigned ev = 0;

    switch (s->tls_state) {
    case STREAM_TLS_FLUSH:
        return EV_WRITE;
    case STREAM_TLS_HANDSHAKE:
        /* before the first step: writable at once, the step then says */
        return stream_tls_events(tls_conn_want(s->tls, TLS_OP_HANDSHAKE),
                                 EV_WRITE);
    default:
        break;
    }
    if (!stream_tls_up(s))
        return (want_read ? EV_READ : 0u) | (want_write ? EV_WRITE : 0u);
    if (want_read)
        ev |= stream_tls_events(tls_conn_want(s->tls, TLS_OP_READ), EV_READ);
    if (want_write)
        ev |= stream_tls_events(tls_conn_want(s->tls, TLS_OP_WRITE), EV_WRITE);
    else if (stream_tls_closing(s))
        ev |= stream_tls_events(tls_conn_want(s->tls, TLS_OP_SHUTDOWN),
                                EV_WRITE);
    return ev;
}

/* plaintext inside OpenSSL that epoll cannot announce */
static bool stream_tls_readable(const stream_t *s)
{
    return stream_tls_up(s) && tls_conn_pending(s->tls);
}

/* Ask the loop for exactly the events we can handle now. */
static void stream_update_interest(stream_t *s)
{
    bool want_read = stream_want_read(s);
    bool want_write = stream_pending(s) > 0;
    unsigned ev;
    if (s->tls == NULL) {
        ev = (want_read ? EV_READ : 0u) | (want_write ? EV_WRITE : 0u);
    } else {
        ev = stream_tls_interest(s, want_read, want_write);
        if (want_read && stream_tls_readable(s) && !ev_timer_active(&s->kick))
            ev_timer_set(s->loop, &s->kick, 0);
    }
    if (s->hup) {
        if (ev != 0 && !ev_timer_active(&s->kick))
            ev_timer_set(s->loop, &s->kick, 0);
        return;
    }
    if (ev == s->registered)
        return;
    if (ev_io_modify(s->loop, s->fd, ev) < 0) {
        /* we may be outside any callback here: report from the kick */
        log_warning("stream: epoll modify fd %d: %m", s->fd);
        s->failed = true;
        ev_timer_set(s->loop, &s->kick, 0);
        return;
    }
    s->registered = ev;
}

/* Outside callbacks, bring the loop registration up to date; never frees
   (the caller may hold pointers into the input buffer). */
static void stream_refresh(stream_t *s)
{
    if (s->depth == 0 && !s->closing && !s->failed)
        stream_update_interest(s);
}

/* Back-pressure bookkeeping after the pending output size changed. */
static void stream_bp_update(stream_t *s)
{
    size_t pending = stream_pending(s);
    if (!s->bp_paused && pending > STREAM_OUT_HIGH) {
        s->bp_paused = true;
    } else if (s->bp_paused && pending < STREAM_OUT_LOW) {
        s->bp_paused = false;
        /* lines held back by stream_read_line() can go now */
        if (s->in_len > 0 && !s->closing)
            ev_timer_set(s->loop, &s->kick, 0);
    }
}

/* Output is flushed: send FIN and wait (bounded) for the peer's EOF.
   false when there is nothing to wait for: close now. */
static bool stream_half_close(stream_t *s)
{
    if (s->shut)
        return stream_may_discard(s);
    if (!stream_may_discard(s) || s->failed)
        return false;
    if (shutdown(s->fd, SHUT_WR) < 0)
        return false;
    s->shut = true;
    ev_timer_set(s->loop, &s->idle, STREAM_DRAIN_MSEC);
    return true;
}

/* Closing with TLS up: send close_notify (best effort). true while it
   waits for the socket; then the raw socket carries the rest (FIN, the
   drain). */
static bool stream_tls_close_notify(stream_t *s)
{
    if (!stream_tls_closing(s))
        return false;
    int r = tls_conn_shutdown(s->tls);
    if (r == 0 && !s->hup && !s->failed)
        return true;
    s->tls_shut = true;
    s->io = s->is_socket ? &stream_io_socket : &stream_io_fd;
    s->io_ctx = NULL;
    return false;
}

/* stream_in_release - give an empty input buffer back: an idle
   connection holds none (10,000 idle clients would otherwise pin
   10,000 * 64 KiB of heap) */
static void stream_in_release(stream_t *s)
{
    if (s->in != NULL && s->in_len == 0) {
        free(s->in);
        s->in = NULL;
        s->in_start = 0;
        s->scanned = 0;
    }
}

/* Release the stream if nobody is inside it and it is done; otherwise
   bring the loop registration up to date. */
static void stream_settle(stream_t *s)
{
    if (s->depth > 0)
        return;
    if (s->closing && (s->broken || stream_pending(s) == 0)
        && (s->broken || !stream_tls_close_notify(s))
        && (s->broken || !stream_half_close(s))) {
        stream_free(s);
        return;
    }
    stream_in_release(s);
    if (!s->failed)
        stream_update_interest(s);
}

/* Enter the lingering state: no more callbacks, flush, bounded time. */
static void stream_linger(stream_t *s)
{
    s->closing = true;
    ev_timer_stop(s->loop, &s->kick);
    ev_timer_set(s->loop, &s->idle, STREAM_LINGER_MSEC);
}

/* The handshake ended (error NULL: done): tell the owner. On failure the
   stream is closed first, so the owner's callback is its close. */
static void stream_tls_finish(stream_t *s, const char *error)
{
    if (error != NULL) {
        stream_linger(s);
        s->broken = true;   /* nothing can be sent any more */
    } else {
        s->tls_state = STREAM_TLS_UP;
        s->io = &tls_stream_io;
        s->io_ctx = s->tls;
        stream_touch(s);
    }
    if (s->tls_done != NULL) {
        s->depth++;
        s->tls_done(s, s->ctx, error);
        s->depth--;
    }
}

/* Notify the owner exactly once; the stream lingers afterwards. */
static void stream_fail(stream_t *s, enum stream_close_reason why, bool broken)
{
    if (s->closing) {
        s->broken = s->broken || broken;
        return;
    }
    if (stream_tls_handshaking(s)) {
        /* the handshake's callback stands for on_close */
        stream_tls_finish(s, why == STREAM_TIMEOUT
                          ? "timeout during TLS handshake"
                          : why == STREAM_EOF
                          ? "connection closed during TLS handshake"
                          : "I/O error during TLS handshake");
        return;
    }
    stream_linger(s);
    s->broken = broken;
    if (s->h.on_close != NULL) {
        s->depth++;
        s->h.on_close(s, s->ctx, why);
        s->depth--;
    }
}

/* ---- output ---------------------------------------------------------------- */

/* Write what the transport takes. 1: emptied, 0: more pending (or nothing
   to do), -1: write error. */
static int stream_flush(stream_t *s)
{
    if (stream_pending(s) == 0)
        return 0;
    while (stream_pending(s) > 0) {
        ssize_t n = s->io->write(s->io_ctx, s->fd, s->out.data + s->out_off,
                                 stream_pending(s));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (s->hup) {
                errno = EPIPE;   /* hung up and not writable: give up */
                return -1;
            }
            break;
        }
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        s->out_off += (size_t)n;
        stream_touch(s);
    }
    if (stream_pending(s) == 0) {
        buf_free(&s->out);      /* an idle connection holds no buffer */
        s->out_off = 0;
    } else if (s->out_off >= s->out.len / 2) {
        buf_consume(&s->out, s->out_off);
        s->out_off = 0;
    }
    stream_bp_update(s);
    return stream_pending(s) == 0 ? 1 : 0;
}

static void stream_tls_advance(stream_t *s);

static void stream_do_write(stream_t *s)
{
    if (stream_tls_handshaking(s)) {
        stream_tls_advance(s);
        return;
    }
    int r = stream_flush(s);
    if (r < 0) {
        if (!s->closing && stream_tls_up(s) && *tls_conn_error(s->tls) != '\0')
            log_info("stream: TLS write fd %d: %s", s->fd,
                     tls_conn_error(s->tls));
        else if (!s->closing)
            log_info("stream: write fd %d: %m", s->fd);
        stream_fail(s, STREAM_ERROR, true);
        return;
    }
    if (r == 1 && !s->closing && s->h.on_drain != NULL) {
        s->depth++;
        s->h.on_drain(s, s->ctx);
        s->depth--;
    }
}

/* ---- input ------------------------------------------------------------------ */

/* Closing: read and drop what the peer still sends (see the top). */
static void stream_discard_input(stream_t *s)
{
    char p[16384];

    /* no input buffer is kept for this: read what is there, in chunks,
       until it would block (bounded by the discard budget) */
    s->in_start = 0;
    s->in_len = 0;
    while (stream_may_discard(s)) {
        size_t room = sizeof(p);

        if (STREAM_DISCARD_MAX - s->discarded < room)
            room = STREAM_DISCARD_MAX - s->discarded;
        ssize_t n = s->io->read(s->io_ctx, s->fd, p, room);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        if (n < 0)
            s->broken = true;  /* e.g. reset by the peer: nothing to wait for */
        else if (n == 0)
            s->eof = true;
        else
            s->discarded += (size_t)n;
    }
}

static void stream_dispatch_read(stream_t *s)
{
    if (s->closing || s->user_paused || s->h.on_read == NULL
        || stream_tls_handshaking(s))
        return;
    s->depth++;
    s->h.on_read(s, s->ctx);
    s->depth--;
}

/* EOF is reported once the owner has had its chance at buffered input. */
static void stream_check_eof(stream_t *s)
{
    if (!s->eof || s->closing || s->user_paused)
        return;
    if (s->bp_paused && s->in_len > 0)
        return;   /* lines still held back by back-pressure */
    stream_fail(s, STREAM_EOF, false);
}

static void stream_do_read(stream_t *s)
{
    if (!stream_want_read(s))
        return;
    if (s->closing) {
        stream_discard_input(s);
        return;
    }
    if (s->in == NULL) {
        s->in = xmalloc(s->in_cap);
        s->in_start = 0;
    } else if (s->in_start > 0) {
        memmove(s->in, s->in + s->in_start, s->in_len);
        s->in_start = 0;
    }
    ssize_t n = s->io->read(s->io_ctx, s->fd, s->in + s->in_len,
                            s->in_cap - s->in_len);
    if (n < 0 && s->hup && (errno == EAGAIN || errno == EWOULDBLOCK))
        n = 0;   /* hung up yet nothing to read: do not spin on the kick */
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (stream_tls_up(s))
            log_info("stream: TLS read fd %d: %s", s->fd,
                     tls_conn_error(s->tls));
        else
            log_info("stream: read fd %d: %m", s->fd);
        stream_fail(s, STREAM_ERROR, true);
        return;
    }
    if (n == 0) {
        s->eof = true;
        if (s->in_len > 0)
            stream_dispatch_read(s);
        stream_check_eof(s);
        return;
    }
    s->in_len += (size_t)n;
    stream_touch(s);
    stream_dispatch_read(s);
}

/* ---- TLS steps ------------------------------------------------------------------ */

/* FLUSH: send the output queued before stream_start_tls, in plaintext.
   1 done, 0 more pending, -1 write error. */
static int stream_tls_flush_clear(stream_t *s)
{
    while (s->tls_clear_out > 0) {
        ssize_t n = s->io->write(s->io_ctx, s->fd, s->out.data + s->out_off,
                                 s->tls_clear_out);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!s->hup)
                return 0;
            errno = EPIPE;
        }
        if (n <= 0) {
            if (n == 0)
                errno = EIO;
            return -1;
        }
        s->out_off += (size_t)n;
        s->tls_clear_out -= (size_t)n;
    }
    if (stream_pending(s) == 0) {
        buf_free(&s->out);
        s->out_off = 0;
    }
    stream_bp_update(s);
    return 1;
}

/* Move the TLS start along as far as the socket allows. */
static void stream_tls_advance(stream_t *s)
{
    char why[160];

    if (s->closing || !stream_tls_handshaking(s))
        return;
    if (s->tls_state == STREAM_TLS_FLUSH) {
        int r = stream_tls_flush_clear(s);
        if (r < 0) {
            (void)snprintf(why, sizeof(why), "write error before TLS "
                           "handshake: %s", strerror(errno));
            stream_tls_finish(s, why);
            return;
        }
        if (r == 0)
            return;
        s->tls_state = STREAM_TLS_HANDSHAKE;
    }
    int r = tls_conn_handshake(s->tls);
    if (r == 0)
        return;
    if (r < 0) {
        stream_tls_finish(s, tls_conn_error(s->tls));
        return;
    }
    stream_tls_finish(s, NULL);
    /* output queued meanwhile, and data that came with the handshake */
    if (!s->closing && stream_pending(s) > 0)
        stream_do_write(s);
    if (!s->closing && stream_want_read(s))
        stream_do_read(s);
}

/* An event for a TLS stream: each direction is tried whenever the loop
   reports anything, since either may wait for either event. */
static void stream_tls_on_io(stream_t *s, unsigned events)
{
    if (stream_tls_handshaking(s)) {
        stream_tls_advance(s);
        return;
    }
    if (stream_pending(s) > 0)
        stream_do_write(s);
    if (stream_want_read(s)) {
        stream_do_read(s);
    } else if ((events & EV_ERROR) && !s->closing) {
        ev_io_remove(s->loop, s->fd);
        s->registered = 0;
        s->hup = true;
    } else if ((events & EV_ERROR) && s->closing) {
        s->broken = true;
    }
    if (!s->closing && stream_pending(s) > 0 && !s->hup)
        stream_do_write(s);
}

/* ---- loop entry points -------------------------------------------------------- */

static void stream_on_io(ev_loop_t *loop, int fd, unsigned events, void *arg)
{
    (void)loop;
    (void)fd;
    stream_t *s = arg;
    s->depth++;
    if (s->tls != NULL && !s->tls_shut) {
        stream_tls_on_io(s, events);
        s->depth--;
        stream_settle(s);
        return;
    }
    if ((events & EV_WRITE) || ((events & EV_ERROR) && stream_pending(s) > 0))
        stream_do_write(s);
    if (events & EV_READ) {
        stream_do_read(s);
    } else if ((events & EV_ERROR) && !s->closing) {
        /* hang-up while we are not reading: leave the loop (the level-
           triggered HUP would spin) and drive I/O from the kick timer */
        ev_io_remove(s->loop, s->fd);
        s->registered = 0;
        s->hup = true;
    } else if ((events & EV_ERROR) && s->closing) {
        s->broken = true;
    }
    /* answer what on_read queued without another trip through epoll */
    if (!s->closing && stream_pending(s) > 0 && !s->hup)
        stream_do_write(s);
    s->depth--;
    stream_settle(s);
}

static void stream_on_kick(ev_loop_t *loop, void *arg)
{
    (void)loop;
    stream_t *s = arg;
    s->depth++;
    if (s->failed)
        stream_fail(s, STREAM_ERROR, true);
    if (s->hup && (stream_pending(s) > 0 || stream_tls_handshaking(s)))
        stream_do_write(s);   /* (a handshake step, while handshaking) */
    if (s->hup && stream_want_read(s))
        stream_do_read(s);
    else if (s->tls != NULL && stream_want_read(s) && stream_tls_readable(s))
        stream_do_read(s);
    else if (s->in_len > 0)
        stream_dispatch_read(s);
    stream_check_eof(s);
    if (!s->closing && stream_pending(s) > 0 && !s->hup)
        stream_do_write(s);
    s->depth--;
    stream_settle(s);
}

static void stream_on_timer(ev_loop_t *loop, void *arg)
{
    (void)loop;
    stream_t *s = arg;
    s->depth++;
    if (s->closing)
        s->broken = true;   /* linger deadline */
    else
        stream_fail(s, STREAM_TIMEOUT, false);
    s->depth--;
    stream_settle(s);
}

/* ---- public interface ------------------------------------------------------------ */

stream_t *stream_new(ev_loop_t *loop, int fd, size_t max_line,
                     int timeout_sec, const struct stream_handler *h,
                     void *ctx)
{
    if (fd < 0 || h == NULL || max_line == 0) {
        errno = EINVAL;
        return NULL;
    }
    if (fd_set_nonblock(fd, true) < 0)
        return NULL;
    stream_t *s = xcalloc(1, sizeof(*s));
    s->loop = loop;
    s->fd = fd;
    s->h = *h;
    s->ctx = ctx;
    s->is_socket = fd_is_socket(fd);
    if (s->is_socket) {
        s->io = &stream_io_socket;
    } else {
        /* write() to a pipe without reader raises SIGPIPE; we want EPIPE */
        s->io = &stream_io_fd;
        (void)signal(SIGPIPE, SIG_IGN);
    }
    s->max_line = max_line;
    s->in_cap = max_line > STREAM_MIN_INBUF ? max_line : STREAM_MIN_INBUF;
    buf_init(&s->out, 0);
    s->timeout_sec = timeout_sec > 0 ? timeout_sec : 0;
    ev_timer_init(&s->idle, stream_on_timer, s);
    ev_timer_init(&s->kick, stream_on_kick, s);
    if (ev_io_add(loop, fd, EV_READ, stream_on_io, s) < 0) {
        int saved = errno;
        buf_free(&s->out);
        free(s->in);
        free(s);
        errno = saved;
        return NULL;
    }
    s->registered = EV_READ;
    stream_touch(s);
    return s;
}

void stream_set_io(stream_t *s, const struct stream_io *io, void *io_ctx)
{
    if (s->tls != NULL)
        return;   /* TLS owns the transport now */
    if (io == NULL)
        io = fd_is_socket(s->fd) ? &stream_io_socket : &stream_io_fd;
    s->io = io;
    s->io_ctx = io_ctx;
}

int stream_fd(const stream_t *s)
{
    return s->fd;
}

/* Drop n bytes from the front of the input buffer. */
static void stream_in_drop(stream_t *s, size_t n)
{
    if (n >= s->in_len) {
        s->in_start = 0;
        s->in_len = 0;
    } else {
        s->in_start += n;
        s->in_len -= n;
    }
    s->scanned = 0;
}

/* Discard input up to and including the next LF. true once it was seen. */
static bool stream_discard_line(stream_t *s)
{
    const char *p = s->in + s->in_start;
    const char *lf = memchr(p, '\n', s->in_len);
    if (lf == NULL) {
        stream_in_drop(s, s->in_len);
        return false;
    }
    stream_in_drop(s, (size_t)(lf - p) + 1);
    s->discarding = false;
    return true;
}

static int stream_line_take(stream_t *s, const char **line, size_t *len,
                            bool *crlf)
{
    /* back-pressure: hand out no new command while replies pile up */
    if (s->bp_paused)
        return 0;
    if (s->in_len == 0)
        return 0;              /* (s->in may be NULL) */
    if (s->discarding && !stream_discard_line(s))
        return 0;
    const char *p = s->in + s->in_start;
    const char *lf = memchr(p + s->scanned, '\n', s->in_len - s->scanned);
    if (lf == NULL) {
        s->scanned = s->in_len;
        if (s->in_len < s->max_line)
            return 0;
        /* no LF within max_line bytes: this line can no longer fit */
        stream_in_drop(s, s->in_len);
        s->discarding = true;
        return -1;
    }
    size_t n = (size_t)(lf - p);
    stream_in_drop(s, n + 1);
    if (n + 1 > s->max_line)
        return -1;
    /* the bytes stay in place until the next read compacts the buffer */
    *crlf = n > 0 && p[n - 1] == '\r';
    *line = p;
    *len = *crlf ? n - 1 : n;
    return 1;
}

int stream_read_line(stream_t *s, const char **line, size_t *len, bool *crlf)
{
    int r = stream_line_take(s, line, len, crlf);
    stream_refresh(s);   /* consuming may make room to read again */
    return r;
}

size_t stream_peek(stream_t *s, const char **p)
{
    *p = s->in != NULL ? s->in + s->in_start : "";
    return s->in_len;
}

void stream_consume(stream_t *s, size_t n)
{
    stream_in_drop(s, n);
    stream_refresh(s);
}

size_t stream_input_sample(stream_t *s, char *buf, size_t size)
{
    ssize_t n;

    if (size == 0 || s->closing)
        return 0;
    if (s->in_len > 0) {
        n = (ssize_t)(s->in_len < size ? s->in_len : size);
        memcpy(buf, s->in + s->in_start, (size_t)n);
        return (size_t)n;
    }
    if (s->tls != NULL) {
        if (!stream_tls_up(s))
            return 0;
        size_t got = tls_conn_peek(s->tls, buf, size);
        stream_refresh(s);   /* a record it pulled in is now pending */
        return got;
    }
    if (!s->is_socket || s->eof)
        return 0;
    do
        n = recv(s->fd, buf, size, MSG_PEEK | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n > 0 ? (size_t)n : 0;
}

void stream_pause_read(stream_t *s, bool paused)
{
    if (s->closing || s->user_paused == paused)
        return;
    s->user_paused = paused;
    if (!paused) {
        stream_touch(s);
        /* buffered input (or a pending EOF) gets on_read without waiting
           for the peer to send more */
        if (s->in_len > 0 || s->eof)
            ev_timer_set(s->loop, &s->kick, 0);
    }
    stream_refresh(s);
}

void stream_write(stream_t *s, const void *p, size_t n)
{
    if (n == 0 || (s->closing && s->broken))
        return;
    if (buf_append(&s->out, p, n) < 0) {
        log_warning("stream: output buffer limit on fd %d", s->fd);
        return;
    }
    stream_bp_update(s);
    stream_refresh(s);
}

void stream_puts(stream_t *s, const char *str)
{
    stream_write(s, str, strlen(str));
}

void stream_printf(stream_t *s, const char *fmt, ...)
{
    va_list ap;
    if (s->closing && s->broken)
        return;
    va_start(ap, fmt);
    int r = buf_vprintf(&s->out, fmt, ap);
    va_end(ap);
    if (r < 0) {
        log_warning("stream: output buffer limit on fd %d", s->fd);
        return;
    }
    stream_bp_update(s);
    stream_refresh(s);
}

size_t stream_output_pending(const stream_t *s)
{
    return stream_pending(s);
}

void stream_close(stream_t *s)
{
    if (s->closing)
        return;   /* already lingering (e.g. called from on_close) */
    stream_linger(s);
    if (stream_tls_handshaking(s))
        s->broken = true;   /* silently: no callback, nothing to flush */
    else if (!s->hup && stream_flush(s) < 0)
        s->broken = true;
    stream_settle(s);
}

void stream_set_timeout(stream_t *s, int timeout_sec)
{
    s->timeout_sec = timeout_sec > 0 ? timeout_sec : 0;
    if (s->closing || stream_tls_handshaking(s))
        return;         /* the linger or handshake deadline stays */
    if (s->timeout_sec > 0)
        ev_timer_set(s->loop, &s->idle, (uint64_t)s->timeout_sec * 1000u);
    else
        ev_timer_stop(s->loop, &s->idle);
}

void stream_abandon(stream_t *s)
{
    if (s->closing)
        return;
    stream_linger(s);
    s->broken = true;       /* nothing flushed, no FIN, no close_notify */
    stream_settle(s);
}

int stream_start_tls(stream_t *s, tls_ctx_t *ctx, bool server_side,
                     stream_tls_cb done)
{
    char *err = NULL;

    if (s->tls != NULL) {
        errno = EINVAL;
        return -1;
    }
    tls_conn_t *c = tls_conn_new(ctx, s->fd, server_side, &err);
    if (c == NULL) {
        log_warning("stream: TLS on fd %d: %s", s->fd, err);
        free(err);
        errno = ENOMEM;
        return -1;
    }
    return stream_start_tls_conn(s, c, done);
}

int stream_start_tls_conn(stream_t *s, tls_conn_t *conn, stream_tls_cb done)
{
    if (s->tls != NULL) {
        tls_conn_free(conn);
        errno = EINVAL;
        return -1;
    }
    if (s->closing || s->eof || s->hup) {
        tls_conn_free(conn);
        errno = ENOTCONN;
        return -1;
    }
    s->tls = conn;
    s->tls_done = done;
    /* the STARTTLS barrier: what came in plaintext stays plaintext */
    s->tls_discarded = s->in_len;
    s->in_start = 0;
    s->in_len = 0;
    s->scanned = 0;
    s->discarding = false;
    s->tls_clear_out = stream_pending(s);
    s->tls_state = s->tls_clear_out > 0 ? STREAM_TLS_FLUSH
                                        : STREAM_TLS_HANDSHAKE;
    if (s->timeout_sec > 0)
        ev_timer_set(s->loop, &s->idle, (uint64_t)s->timeout_sec * 1000u);
    stream_refresh(s);
    return 0;
}

size_t stream_tls_discarded(const stream_t *s)
{
    return s->tls_discarded;
}

tls_conn_t *stream_tls(const stream_t *s)
{
    return s->tls;
}

bool stream_tls_active(const stream_t *s)
{
    return s->tls_state == STREAM_TLS_UP;
}
