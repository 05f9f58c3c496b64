/*
 * cleanup - the one way into the queue (Postfix's cleanup(8) is the
 * model). A producer (smtpd, local's forwarding; later pickup, bounces)
 * hands it, in this order:
 *
 *   1. the envelope: cleanup_sender(), any cleanup_attr() (client_name,
 *      client_address, helo_name, protocol, forwarded_from,
 *      alias_expanded, ...), then cleanup_rcpt() per recipient, each
 *      with an optional original recipient;
 *   2. the content, in chunks of any size (LF line ends, as stored):
 *      cleanup_content(), optionally preceded by cleanup_content_begin()
 *      to write the envelope (and our Received:) before the first byte;
 *   3. cleanup_commit(): durable exactly as queue_writer_commit() (queue
 *      ID, fsync, rename, directory fsync). Only after it returned 0 may
 *      a receiver say "250".
 *
 * What cleanup does itself, so every producer gets it:
 *   - virtual aliases ($virtual_alias_maps, virtual_alias.h; not with
 *     CLEANUP_FLAG_NO_VIRTUAL): each recipient is expanded before it
 *     is stored; every resulting address gets the given recipient as
 *     its original recipient ('O' record, so delivery logs show
 *     orig_to= and DSNs report it) unless the producer gave one, and
 *     the DSN NOTIFY/ORCPT of the given one. A table error, a
 *     malformed value or an expansion past the limits makes
 *     cleanup_rcpt fail with EIO (the message waits; nothing is
 *     dropped or bounced for it).
 *   - duplicate recipients: a recipient whose (original recipient,
 *     recipient) pair, compared without case, was given before is
 *     dropped; at most $duplicate_filter_limit pairs are remembered
 *     (0: no filter). Without original recipients this is smtpd's
 *     RCPT filter.
 *   - the message size, counted as RFC 1870 (and smtpd) counts it over
 *     the producer's content: every byte, plus one more per LF (a line
 *     end counts as CR LF). Headers cleanup adds are not counted. Over
 *     the limit (cleanup_set_size_limit) the file is discarded and
 *     calls fail with EFBIG.
 *   - the header/body boundary: the header section ends at the first
 *     empty line, at the first line that is neither "field-name:"
 *     (printable ASCII, no space, then a colon) nor a continuation
 *     (SP/TAB) of one, or at the end of the content. Each complete
 *     header (continuation lines included, at most CLEANUP_HEADER_MAX
 *     bytes examined) is offered to the header hook (for
 *     header_checks later); body bytes go straight to the file.
 *   - the header section also ends once it grew past
 *     $header_size_limit bytes (as Postfix: at the next line start; an
 *     empty line is written there and the rest is body, unexamined by
 *     header checks);
 *   - header_checks and body_checks ($header_checks, $body_checks;
 *     actions in content_check.h; not with CLEANUP_FLAG_NO_CHECKS): each complete header (all its
 *     lines, embedded LFs kept, without the final LF; at most
 *     CLEANUP_HEADER_MAX bytes of it) and each body line (without its
 *     LF, in pieces of at most $line_length_limit bytes, up to
 *     $body_checks_size_limit bytes of body) is looked up; headers
 *     cleanup adds itself are not. REJECT and DISCARD throw the file
 *     away at once and swallow the rest of the content; commit then
 *     fails with EPERM (REJECT) or returns 0 without a file (DISCARD).
 *     HOLD (or cleanup_hold(), or cleanup_open(QUEUE_HOLD)) commits
 *     into hold/ directly. A table that cannot be opened makes
 *     cleanup_open() fail (EIO, logged), a failed lookup fails the
 *     message (EIO): mail waits rather than passing unchecked. Actions
 *     are logged as Postfix does ("QID: reject: header ... from
 *     CLIENT; from=<> to=<> proto=P helo=<H>: 5.7.1 text").
 *   - CLEANUP_FLAG_RECEIVED: our Received: header, built from the
 *     attributes and the queue ID, in front of the content;
 *   - CLEANUP_FLAG_ADD_MISSING: Message-ID: and Date: when the message
 *     has none (submission), at the end of the header section.
 *
 * Errors: any failed call (I/O, ENOMEM, EINVAL for calls out of order,
 * EFBIG) discards the temporary file at once; every later call fails
 * too, cleanup_qid() stays valid. cleanup_free() aborts an uncommitted
 * file.
 */
#ifndef TERN_CLEANUP_H
#define TERN_CLEANUP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct queue_sync;              /* mail/queue_writer.h */

#define CLEANUP_FLAG_RECEIVED    (1u << 0)  /* prepend our Received: */
#define CLEANUP_FLAG_ADD_MISSING (1u << 1)  /* Message-ID:, Date: if none */
/* mail that was inspected when it entered the system (local's forwarded
   copies; bounces later): no header_checks/body_checks, as Postfix
   does not inspect internally re-injected mail either */
#define CLEANUP_FLAG_NO_CHECKS   (1u << 2)
/* no $virtual_alias_maps expansion of the recipients (a producer whose
   recipients were expanded already); every producer gets it otherwise:
   smtpd, local's forwarded copies and qmgr's bounces alike, as Postfix
   (a bounce to a virtual address reaches its real mailbox; a failed
   postmaster notice is only logged, so expansion cannot make it loop) */
#define CLEANUP_FLAG_NO_VIRTUAL  (1u << 3)

/* longest header (all its lines) examined by hooks and by the
   Message-ID/Date detection; a longer one is written unchanged */
#define CLEANUP_HEADER_MAX 102400

typedef struct cleanup cleanup_t;

/* Hook for header checks: called once per complete header of the
   message (its lines with their LFs; truncated when it was longer than
   CLEANUP_HEADER_MAX), before it is written. Return 0 to keep going,
   -1 (errno set) to fail the message. */
typedef int (*cleanup_header_fn)(void *ctx, const char *hdr, size_t len,
                                 bool truncated);
/* called once when the header section ends (before the first body
   byte, or at commit when the content ended in the header section) */
typedef int (*cleanup_header_end_fn)(void *ctx);

/* a new queue file in queue (QUEUE_INCOMING, or QUEUE_HOLD to hold it);
   NULL with errno (EIO: the content check tables could not be opened) */
cleanup_t *cleanup_open(const char *queue, unsigned flags);
const char *cleanup_qid(const cleanup_t *c);
/* false once the file was discarded (error, limit) or committed */
bool cleanup_ok(const cleanup_t *c);
/* RFC 1870 limit on the producer's content; 0 = none (the default) */
void cleanup_set_size_limit(cleanup_t *c, uint64_t limit);
/* CLEANUP_FLAG_RECEIVED: the client's TLS ("TLSv1.3 with cipher X (256/256
   bits)"), shown as "(using ...)" in our Received:; before the content */
void cleanup_set_tls_info(cleanup_t *c, const char *info);
/* CLEANUP_FLAG_RECEIVED: the authenticated sender (SMTP AUTH), shown as
   "(Authenticated sender: NAME)" in our Received:; before the content */
void cleanup_set_auth_info(cleanup_t *c, const char *user);
/* content size so far, counted as described above */
uint64_t cleanup_size(const cleanup_t *c);
void cleanup_set_header_hook(cleanup_t *c, cleanup_header_fn header,
                             cleanup_header_end_fn header_end, void *ctx);

int cleanup_sender(cleanup_t *c, const char *sender);
int cleanup_attr(cleanup_t *c, const char *name, const char *value);
/* orcpt may be NULL; a duplicate is dropped and still returns 0 */
int cleanup_rcpt(cleanup_t *c, const char *orcpt, const char *rcpt);
/* the same with the client's DSN parameters (RFC 3461): notify is a
   set of QREC_NOTIFY_* bits (0: none given), dsn_orcpt the decoded
   ORCPT "rfc822;addr" or NULL; stored as the 'N' and 'P' records */
int cleanup_rcpt_dsn(cleanup_t *c, const char *orcpt, const char *rcpt,
                     unsigned notify, const char *dsn_orcpt);
/* recipients stored (duplicates not counted) */
size_t cleanup_nrcpts(const cleanup_t *c);

int cleanup_content_begin(cleanup_t *c);
int cleanup_content(cleanup_t *c, const void *p, size_t n);
/* 0 durable under cleanup_qid(); -1 failed, nothing left behind */
int cleanup_commit(cleanup_t *c);
/* The same commit in steps, for group commit (queue_writer.h,
   queue_commit.h): cleanup_seal() finishes the content; 1 = the file
   is sealed and *job must go through queue_sync_run() (any thread),
   then cleanup_sealed(); 0 = done without a file (DISCARD); -1 = failed
   as cleanup_commit fails (a REJECT is EPERM). cleanup_sealed()
   returns what cleanup_commit would have. */
int cleanup_seal(cleanup_t *c, struct queue_sync *job);
int cleanup_sealed(cleanup_t *c, const struct queue_sync *job);
/* discard the file now (keeps errno); cleanup_qid() stays valid and
   every later call fails */
void cleanup_abort(cleanup_t *c);
void cleanup_free(cleanup_t *c);

/* What became of the message (meaningful after cleanup_commit):
   CLEANUP_QUEUED  committed into the queue it was opened in
   CLEANUP_HELD    committed into hold/ (HOLD, cleanup_hold, QUEUE_HOLD)
   CLEANUP_DISCARDED  DISCARD: commit returned 0, nothing was kept
   CLEANUP_REJECTED   REJECT: commit failed with EPERM; *code_r is the
                   SMTP code (550, or 450), *text_r "5.7.1 text"
   code_r and text_r may be NULL; *text_r is "" when there is none and
   stays valid until cleanup_free. */
enum cleanup_outcome {
    CLEANUP_QUEUED,
    CLEANUP_HELD,
    CLEANUP_DISCARDED,
    CLEANUP_REJECTED,
};
enum cleanup_outcome cleanup_outcome(const cleanup_t *c, int *code_r,
                                     const char **text_r);
/* commit into hold/ instead of the queue it was opened in (atomically:
   the file is renamed straight into hold/); reason is for the caller's
   log, kept as the outcome's text. Before cleanup_commit. */
void cleanup_hold(cleanup_t *c, const char *reason);

/* (Re)open $header_checks and $body_checks for this process (done by
   the first cleanup_open, and again by each one after a failure): call
   it before chroot or a privilege drop. 0, or -1 with *error_r. */
int cleanup_checks_open(const char **error_r);
void cleanup_checks_close(void);

/* test clock for the dates cleanup writes (NULL: time(2)) */
typedef time_t (*cleanup_clock_fn)(void);
void cleanup_set_clock(cleanup_clock_fn now);

#endif
