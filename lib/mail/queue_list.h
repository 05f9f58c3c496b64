/*
 * queue_list - what is in the queue, for people: the walk behind
 * showq(8), ternqueue -p/-j and ternqueue -Q, and the two output forms
 * (Postfix's mailq text and postqueue -j JSON lines).
 *
 * The walk reads incoming/, active/, deferred/ (one level of hash
 * subdirectories) and hold/, relative to the current directory (the
 * queue directory), each queue in queue-ID order (arrival order). For
 * every file named by a valid queue ID it reads the envelope with
 * queue_file_read (bounded, validated) and, for each pending recipient,
 * the last reason from the message's defer/ log (bounce_log.h).
 *
 * Security: files are opened O_NOFOLLOW|O_NONBLOCK and must be regular
 * (fstat); subdirectories are entered only when lstat says directory,
 * so no symlink is ever followed. A file that vanishes while we look
 * (qmgr moved or finished it) is skipped; a file that does not parse is
 * reported through the callback as corrupt (entry->corrupt) and listed
 * with what is known (its name and size), never trusted further.
 * Every string from a queue file or log is untrusted: the mailq form
 * replaces control characters, and the JSON form escapes them and
 * replaces malformed UTF-8 with U+FFFD, so output stays one line per
 * record and parses.
 */
#ifndef TERN_QUEUE_LIST_H
#define TERN_QUEUE_LIST_H

/*
 * The showq(8) protocol on public/showq (used by ternqueue): one
 * attribute-list request per connection,
 *   request=list format=mailq|json [queue=NAME]
 *   request=flush_site site=DOMAIN     deferred mail with a pending
 *       recipient in DOMAIN becomes due now (mtime), then qmgr is told
 *       to scan deferred/ (TRIGGER_DEFERRED)
 *   request=flush_id queue_id=ID       the same for one deferred message
 * answered by an attribute list status=ok|denied|error [reason=TEXT]
 * [count=N]; after status=ok to a list request the listing follows as
 * text until showq closes the connection. The client's uid is taken
 * from SO_PEERCRED, never from the request.
 */
#define SHOWQ_SOCKET   "public/showq"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "queue.h"
#include "util/buf.h"

struct queue_list_rcpt {
    char *address;
    char *reason;           /* last delay reason, or NULL */
};

struct queue_list_entry {
    char queue[16];         /* "incoming", "active", "deferred", "hold" */
    char qid[QUEUE_ID_SIZE];
    bool corrupt;           /* did not parse: only qid and size are known */
    uint64_t arrival_usec;
    uint64_t size;          /* message content size (file size if corrupt) */
    uint64_t mtime_usec;    /* file mtime (deferred: next attempt) */
    char *sender;           /* "" = null sender */
    struct queue_list_rcpt *rcpts;  /* pending recipients only */
    size_t nrcpts;
};

/* the queues the walk visits, in this order, NULL-terminated */
extern const char *const queue_list_queues[];

/* Read one queue file at path (queue/qid or deferred/X/qid) into e.
   1 ok (e filled: free with queue_list_entry_free); 0 gone, not a
   regular file, or not a queue ID (skip it); -1 corrupt (e->corrupt set,
   e filled with qid and size; still free it). */
int queue_list_read(const char *queue, const char *qid, const char *path,
                    struct queue_list_entry *e);
void queue_list_entry_free(struct queue_list_entry *e);

/* Called once per message; return 0 to go on, -1 to stop the walk. */
typedef int (*queue_list_fn)(const struct queue_list_entry *e, void *ctx);

/* Walk queue (one of queue_list_queues), or every queue when queue is
   NULL. 0 done (missing directories are empty), -1 stopped by fn, or
   -1 with errno for a name that is not a queue the walk knows. */
int queue_list_walk(const char *queue, queue_list_fn fn, void *ctx);

/* Does the entry have a pending recipient in domain (case-insensitive;
   the text after the last '@')? */
bool queue_list_has_domain(const struct queue_list_entry *e,
                           const char *domain);

/* Postfix mailq form. */
void queue_list_mailq_header(buf_t *out);
void queue_list_mailq_entry(const struct queue_list_entry *e, buf_t *out);
/* "-- N Kbytes in M Requests." or "Mail queue is empty" */
void queue_list_mailq_trailer(uint64_t total_size, size_t count, buf_t *out);

/* One JSON object and '\n', as postqueue -j: queue_name, queue_id,
   arrival_time (seconds), message_size, forced_expire (false), sender,
   recipients [{address, delay_reason?}] */
void queue_list_json_entry(const struct queue_list_entry *e, buf_t *out);
/* s[0..n) as a JSON string (with the quotes) */
void queue_list_json_string(const char *s, size_t n, buf_t *out);

/* qshape-like counts: pending recipients per recipient domain and
   message age (minutes: <5, <10, <20, ... <1280, older), the domains
   with most recipients first */
#define QUEUE_SHAPE_BUCKETS 10
struct queue_shape_row {
    char *domain;
    uint64_t total;
    uint64_t count[QUEUE_SHAPE_BUCKETS];
};
struct queue_shape {
    struct queue_shape_row *v;
    size_t n;
    struct queue_shape_row sum;     /* TOTAL */
};
void queue_shape_add(struct queue_shape *s, const struct queue_list_entry *e,
                     uint64_t now_usec);
void queue_shape_format(struct queue_shape *s, buf_t *out);
void queue_shape_free(struct queue_shape *s);

#endif
