/*
 * stream - a non-blocking buffered connection on an event loop: bounded
 * input buffer with line extraction, output buffer flushed as the socket
 * allows, idle timeout, and back-pressure (input is not read while the
 * output buffer is over its high-water mark, so a pipelining client that
 * does not read our replies cannot make us buffer without bound).
 *
 * Reads and writes go through an ops table; TLS (tls.h) is one such layer,
 * started on a live stream with stream_start_tls (STARTTLS, or at once
 * for implicit TLS) without the protocol code noticing afterwards.
 *
 * Lifetime: the stream owns the fd. on_close is called exactly once when
 * the peer disconnects, an I/O error happens, or the idle timeout fires;
 * the stream is freed right after on_close returns (while a TLS handshake
 * runs, its callback reports the end instead). stream_close() is the
 * owner's way out: it flushes what is queued (bounded by the timeout),
 * then closes without calling on_close. Calling stream_close() from
 * inside any callback is safe; the stream must not be used afterwards.
 */
#ifndef TERN_STREAM_H
#define TERN_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "events.h"
#include "buf.h"

typedef struct stream stream_t;
/* (repeated in tls.h) */
typedef struct tls_ctx tls_ctx_t;
typedef struct tls_conn tls_conn_t;

enum stream_close_reason {
    STREAM_EOF = 1,        /* peer closed */
    STREAM_ERROR = 2,      /* read/write error (errno logged) */
    STREAM_TIMEOUT = 3,    /* no input for the idle timeout */
};

struct stream_handler {
    /* New input is buffered; use stream_read_line / stream_peek. */
    void (*on_read)(stream_t *s, void *ctx);
    /* See above; may be NULL. */
    void (*on_close)(stream_t *s, void *ctx, enum stream_close_reason why);
    /* Output buffer became empty after having data; may be NULL. */
    void (*on_drain)(stream_t *s, void *ctx);
};

/* Transport ops (plain by default). Return bytes, 0 on EOF, -1 with
   errno (EAGAIN when the call would block). */
struct stream_io {
    ssize_t (*read)(void *io_ctx, int fd, void *p, size_t n);
    ssize_t (*write)(void *io_ctx, int fd, const void *p, size_t n);
};

/*
 * Wrap fd (made non-blocking). max_line bounds a line (including CRLF);
 * the input buffer holds at most max(max_line, 64 KiB) bytes.
 * timeout_sec: idle timeout (0 = none).
 */
stream_t *stream_new(ev_loop_t *loop, int fd, size_t max_line,
                     int timeout_sec, const struct stream_handler *h,
                     void *ctx);

/* Not once TLS started (stream_start_tls sets its own layer). */
void stream_set_io(stream_t *s, const struct stream_io *io, void *io_ctx);
int stream_fd(const stream_t *s);
/* A new idle timeout (0 = none), counted from now; a running TLS
   handshake keeps its deadline, and the new value applies after it. */
void stream_set_timeout(stream_t *s, int timeout_sec);

/*
 * Take the next line from the input buffer.
 *   1: *line and *len give the line WITHOUT its terminator; *crlf is
 *      true when it ended in CRLF, false for a bare LF. Valid until the
 *      next call that reads or consumes.
 *   0: no complete line buffered yet, or output back-pressure: while more
 *      than 256 KiB of output is pending no further line is handed out;
 *      on_read is dispatched again once it drains below 64 KiB.
 *  -1: the line is longer than max_line. Its bytes up to and including
 *      the next LF are discarded (may span several reads); the caller
 *      replies with an error once.
 */
int stream_read_line(stream_t *s, const char **line, size_t *len, bool *crlf);

/* Raw access to buffered input (for DATA): pointer + length; then consume. */
size_t stream_peek(stream_t *s, const char **p);
void stream_consume(stream_t *s, size_t n);

/*
 * Copy up to size bytes of input the peer has sent that the owner has
 * not consumed: from the input buffer, or when that is empty, peeked
 * from the socket without reading it (MSG_PEEK). Returns the count, 0
 * when nothing is waiting. For protocol-synchronization checks (input
 * before the greeting, input after a command that must end a group).
 */
size_t stream_input_sample(stream_t *s, char *buf, size_t size);

/* Stop/resume reading from the socket (buffered input stays). */
void stream_pause_read(stream_t *s, bool paused);

/* Queue output; flushed as the socket allows. Never blocks. */
void stream_write(stream_t *s, const void *p, size_t n);
void stream_puts(stream_t *s, const char *str);
void stream_printf(stream_t *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t stream_output_pending(const stream_t *s);

/* See the header comment. */
void stream_close(stream_t *s);
/* Close our descriptor without a goodbye: queued output and buffered
   input are dropped, no FIN (shutdown) and no TLS close_notify are sent,
   no on_close follows. For a connection that another process now holds
   a copy of (descriptor passing): the connection lives on there. Safe
   from inside a callback, like stream_close. */
void stream_abandon(stream_t *s);

/*
 * TLS as a step of the stream. error is NULL when the handshake is done;
 * otherwise it says why it failed (timeout, peer closed, OpenSSL's
 * errors) and the stream is already closed: no on_close follows, and the
 * stream must not be used after the callback returns.
 */
typedef void (*stream_tls_cb)(stream_t *s, void *ctx, const char *error);

/*
 * Start TLS on the stream: the STARTTLS barrier, then the handshake.
 *  - Every input byte buffered and not consumed is thrown away now
 *    (stream_tls_discarded() counts them): nothing read in plaintext is
 *    ever delivered after the handshake (CVE-2011-0411).
 *  - Output queued before this call (the "220 Ready to start TLS") is
 *    sent in plaintext first; output queued afterwards waits and is
 *    encrypted once the handshake is done.
 *  - No on_read while handshaking. The whole handshake must finish within
 *    the stream's timeout (a deadline, not reset by progress; none if 0).
 *    Then done(s, ctx, NULL) is called, and the stream carries TLS:
 *    stream_tls() describes it.
 *  - stream_close() during the handshake closes silently (no callback).
 * The stream owns conn afterwards (also when -1 is returned).
 * 0 ok, -1 with errno: EINVAL (TLS already started), ENOTCONN (stream
 * closing or the peer already closed), ENOMEM (ctx variant: tls_conn_new
 * failed, logged).
 */
int stream_start_tls(stream_t *s, tls_ctx_t *ctx, bool server_side,
                     stream_tls_cb done);
int stream_start_tls_conn(stream_t *s, tls_conn_t *conn, stream_tls_cb done);

/* Input bytes thrown away by the last stream_start_tls (0: none). */
size_t stream_tls_discarded(const stream_t *s);

/* The TLS layer (version, cipher, peer certificate: tls.h), or NULL while
   the stream is plaintext. During the handshake it exists but is not up. */
tls_conn_t *stream_tls(const stream_t *s);
/* true once the handshake is done */
bool stream_tls_active(const stream_t *s);

#endif
