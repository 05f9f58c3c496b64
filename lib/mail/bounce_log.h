/*
 * bounce_log - what qmgr keeps on disk about a message besides its queue
 * file: the latest delivery result (status, dsn, reason) per recipient,
 * and which notices were already sent (the one delay warning, success
 * DSNs per recipient). The report that is finally sent needs the reason
 * a recipient bounced or was last deferred, possibly days and several
 * qmgr restarts ago.
 *
 * One text file per message, "defer/X/QUEUEID" (relative to the queue
 * directory, hashed like deferred/), appended one line per record:
 *   r OFFSET STATUS DSN REASON   a result (STATUS 4 defer, 5 bounce)
 *   s OFFSET 0 -                 a success DSN went out for OFFSET
 *   w 0 0 -                      the delay warning went out
 * OFFSET is the recipient record's offset in the queue file (stable for
 * the life of the file). REASON is cut to BOUNCE_LOG_REASON_MAX bytes
 * and escaped: '%', control characters and DEL as %XX (an empty or
 * absent REASON is none); a DSN that is not an RFC 3463 code (4.2.0) is "-". The latest record of a kind
 * for an offset wins. A line that does not parse (a torn write, a
 * damaged file) is skipped; a record that follows a torn one starts on
 * a line of its own.
 *
 * Durability: reasons are advisory. Result records are written without
 * fsync (a crash of qmgr loses nothing; a power loss may lose a reason,
 * the report then says "reason unknown"), and a failure to write one is
 * only logged by the caller: a lost reason never blocks or loses mail.
 * The "sent" marks are fdatasync'd, and written only after the notice
 * is committed to the queue, so a crash means a second notice at worst.
 *
 * A log that grows past a threshold is rewritten with only its latest
 * records (bounce_log_compact).
 *
 * The directory defer/ and its hash subdirectories are made by
 * queue_dirs_create (master); one that is missing is made here.
 */
#ifndef TERN_BOUNCE_LOG_H
#define TERN_BOUNCE_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"

#define BOUNCE_LOG_REASON_MAX  2000     /* bytes of reason kept */
#define BOUNCE_LOG_LINE_MAX    8192     /* longer lines are skipped */
#define BOUNCE_LOG_DSN_SIZE    16
#define BOUNCE_LOG_MAX_ENTRIES 100000   /* recipients remembered per log */

enum bounce_log_type {
    BOUNCE_LOG_RESULT = 'r',
    BOUNCE_LOG_SUCCESS_SENT = 's',
    BOUNCE_LOG_DELAY_SENT = 'w',
};

/* one parsed record */
struct bounce_log_rec {
    char type;                          /* enum bounce_log_type */
    uint64_t offset;
    int status;                         /* DELIVER_* for 'r', else 0 */
    char dsn[BOUNCE_LOG_DSN_SIZE];      /* "" when unknown */
    char *reason;                       /* unescaped; NULL when none */
};

/* the latest per recipient */
struct bounce_log_entry {
    uint64_t offset;
    int status;                         /* 0: no result record */
    char dsn[BOUNCE_LOG_DSN_SIZE];
    char *reason;                       /* NULL: none */
    bool success_sent;
};

struct bounce_log {
    struct bounce_log_entry *v;         /* sorted by offset */
    size_t n, cap;
    bool delay_sent;
    size_t skipped;                     /* lines that did not parse */
};

/* "defer/X/QUEUEID" into out (reset first); -1 EINVAL for a bad ID */
int bounce_log_path(const char *qid, buf_t *out);

/* The line for rec (with its '\n') appended to out; reason cut and
   escaped, dsn checked. 0, or -1 (out's limit). */
int bounce_log_format(const struct bounce_log_rec *rec, buf_t *out);
/* Parse one line (without its '\n'); 0 with rec filled (rec->reason
   malloc'd or NULL: free it), -1 when it is not a valid record. */
int bounce_log_parse(const char *line, size_t len,
                     struct bounce_log_rec *rec);

/* Append a result for recipient offset; no fsync. 0 or -1 (errno). */
int bounce_log_append(const char *qid, uint64_t offset, int status,
                      const char *dsn, const char *reason);
/* Record that the delay warning, or success DSNs for offsets[0..n),
   went out; fdatasync'd (and the directory fsync'd when the file is
   new). 0 or -1 (errno). */
int bounce_log_mark_delay(const char *qid);
int bounce_log_mark_success(const char *qid, const uint64_t *offsets,
                            size_t n);

/* Read the log of qid into log (initialised here). No log is an empty
   one (0). -1 (errno) when it cannot be read; log is empty then. */
int bounce_log_read(const char *qid, struct bounce_log *log);
/* Parse a log's bytes (what bounce_log_read does after reading). */
void bounce_log_parse_all(const char *data, size_t len,
                          struct bounce_log *log);
/* The entry for a recipient offset, or NULL. */
const struct bounce_log_entry *bounce_log_find(const struct bounce_log *log,
                                               uint64_t offset);
void bounce_log_free(struct bounce_log *log);

/* When the log is larger than threshold bytes (records pile up, one per
   deferred recipient and attempt), rewrite it with only what it says
   now: the latest result per recipient and the sent marks (written to
   "defer/X/QUEUEID.new", fdatasync'd, renamed over the log, directory
   fsync'd, so no mark is lost). 1 rewritten, 0 nothing to do, -1
   (errno). */
int bounce_log_compact(const char *qid, size_t threshold);

/* Remove the log (the message left the queue), and a leftover of
   compaction. 0, or -1 (errno; ENOENT: there was no log). */
int bounce_log_remove(const char *qid);

#endif
