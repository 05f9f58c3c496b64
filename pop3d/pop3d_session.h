/*
 * pop3d_session - the TRANSACTION and UPDATE states of one POP3 session
 * (RFC 1939, RFC 2449), with no socket and no file system of its own:
 * input arrives as bytes (pop3d_session_input), replies leave through a
 * write callback, messages are opened, unlinked and flagged through a
 * store table (pop3d.c gives maildir_list.h's functions; the unit test
 * its own). So the whole protocol is tested without a client.
 *
 * Input: lines end in LF (CRLF or a bare LF); a line longer than
 * POP3D_INPUT_MAX is discarded up to its LF and answered once with
 * "-ERR Line too long."; pop3_cmd.h parses the rest. Replies are
 * batched: what the commands of one input chunk produce is written at
 * the end of pop3d_session_input (PIPELINING), or earlier when more than
 * POP3D_FLUSH_AT bytes are waiting. Lines after QUIT are ignored.
 *
 * Octet counts (STAT, LIST, the RETR "+OK N octets") are the listing's
 * vsize: the message with every LF that is not already preceded by CR
 * counted as CRLF. RETR and TOP send exactly that (a file whose lines
 * already end in CRLF is sent as it is, never as CR CR LF), with a '.'
 * added before every line that starts with '.' (byte-stuffing) and a
 * CRLF added at the end of a file that does not end with LF, then the
 * ".\r\n" terminator. Files are read in POP3D_READ_BLOCK pieces and
 * converted into the output buffer, so a message costs a few read() and
 * write() calls, never one per line.
 *
 * DELE only marks; QUIT runs UPDATE: unlink every marked message, then
 * (params.mark_seen) give the messages retrieved with RETR and not
 * deleted the flag S, then "+OK". If the session ends any other way
 * (the caller simply frees it) nothing changes in the mailbox. RSET
 * unmarks both the deletions and the retrievals.
 *
 * Errors: an unknown or malformed command, bad arguments, a message
 * number that is 0, too big or deleted, and the AUTHORIZATION commands
 * (already logged in) get "-ERR ..." and count; at params.error_limit
 * the session answers "-ERR Too many bad commands." after the command's
 * own reply and ends (POP3D_CLOSE).
 */
#ifndef TERN_POP3D_SESSION_H
#define TERN_POP3D_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "mail/maildir_list.h"
#include "util/buf.h"

#define POP3D_INPUT_MAX   8192          /* longest line kept, with CRLF */
#define POP3D_READ_BLOCK  (128 * 1024)  /* message file read size */
#define POP3D_FLUSH_AT    (128 * 1024)  /* write out once this much waits */
#define POP3D_OUTPUT_MAX  (1024 * 1024) /* output buffer bound */

/* what the session does with messages (relative to the caller's Maildir);
   same contracts as maildir_msg_open/_unlink/_add_flag */
struct pop3d_store {
    int (*open)(void *ctx, const struct maildir_msg *m);
    int (*unlink)(void *ctx, const struct maildir_msg *m);
    int (*add_flag)(void *ctx, struct maildir_msg *m, char flag);
    void *ctx;
};

/* where the replies go: write all n bytes, 0 ok, -1 the client is gone
   (or too slow); the session then ends (POP3D_CLOSE) */
typedef int (*pop3d_write_fn)(void *ctx, const char *p, size_t n);

struct pop3d_params {
    long error_limit;       /* $pop3d_hard_error_limit */
    bool mark_seen;         /* $pop3d_mark_retrieved_seen */
};

/* the numbers of the "Disconnected:" log line (Dovecot's) */
struct pop3d_stats {
    unsigned long top_count;
    unsigned long long top_bytes;
    unsigned long retr_count;
    unsigned long long retr_bytes;
    unsigned long del_count;        /* deleted at QUIT (marked, before) */
    unsigned long msg_count;        /* messages in the listing */
    unsigned long long mailbox_size; /* their vsizes */
    unsigned long errors;
};

enum pop3d_status {
    POP3D_CONTINUE = 0,     /* give more input */
    POP3D_QUIT,             /* QUIT done: UPDATE ran (its reply is written,
                               or lost if the client went away) */
    POP3D_CLOSE,            /* too many errors, or the client is gone */
};

typedef struct pop3d_session pop3d_session_t;

/* a session over listing (borrowed: must outlive the session; UPDATE
   changes the entries it flags) */
pop3d_session_t *pop3d_session_new(struct maildir_listing *listing,
                                   const struct pop3d_store *store,
                                   pop3d_write_fn write, void *write_ctx,
                                   const struct pop3d_params *params);
void pop3d_session_free(pop3d_session_t *s);

/* queue a reply line (CRLF added), e.g. "+OK Logged in."; written with
   the next flush */
void pop3d_session_reply(pop3d_session_t *s, const char *line);
/* write out what is queued; 0 ok, -1 the client is gone */
int pop3d_session_flush(pop3d_session_t *s);

/* bytes from the client: every complete line is served, then the
   replies are written. After POP3D_QUIT or POP3D_CLOSE the session
   takes no more input (further calls return the same status). */
enum pop3d_status pop3d_session_input(pop3d_session_t *s, const char *p,
                                      size_t n);

const struct pop3d_stats *pop3d_session_stats(const pop3d_session_t *s);
/* why POP3D_CLOSE happened, for the log: "Too many bad commands" or
   "Connection closed" (a write failed); NULL otherwise */
const char *pop3d_session_close_reason(const pop3d_session_t *s);

/*
 * The RETR/TOP conversion, exposed for tests: LF -> CRLF (unless CR is
 * there already), byte-stuffing, TOP's line limit. body_lines < 0: the
 * whole message; else the header, the blank line and that many body
 * lines. pop3d_conv_block appends the converted form of in[0..n) to
 * out and returns how many bytes of in it used (fewer than n once TOP's
 * limit is reached: conv->done); -1 when out is over its bound.
 * pop3d_conv_end appends the final CRLF if needed and ".\r\n".
 */
struct pop3d_conv {
    bool bol;               /* at the start of a line */
    bool cr;                /* the last byte copied was CR */
    size_t line_len;        /* bytes of the current line so far */
    bool in_body;           /* the header's blank line was passed */
    long body_lines;        /* TOP: body lines still to send; <0 all */
    bool done;
};
void pop3d_conv_init(struct pop3d_conv *c, long body_lines);
ssize_t pop3d_conv_block(struct pop3d_conv *c, const char *in, size_t n,
                         buf_t *out);
int pop3d_conv_end(struct pop3d_conv *c, buf_t *out);

#endif
