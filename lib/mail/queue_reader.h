/*
 * queue_reader - read a committed queue file's envelope (format in
 * queue.h) and record recipient completion in place.
 */
#ifndef TERN_QUEUE_READER_H
#define TERN_QUEUE_READER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "queue.h"
#include "queue_record.h"

struct queue_rcpt {
    char *address;
    char *orcpt;            /* NULL if none */
    off_t offset;           /* of the TYPE byte, for queue_file_mark */
    char status;            /* QREC_RCPT, QREC_DONE or QREC_BOUNCED */
    unsigned dsn_notify;    /* 'N': QREC_NOTIFY_* bits; 0 if not given */
    char *dsn_orcpt;        /* 'P': DSN ORCPT "rfc822;addr" (decoded), or NULL */
};

typedef struct queue_msg {
    char qid[QUEUE_ID_SIZE];
    uint64_t arrival_usec;
    char *sender;
    struct queue_attr { char *name; char *value; } *attrs;
    size_t nattrs;
    struct queue_rcpt *rcpts;
    size_t nrcpts;
    off_t content_offset;
    uint64_t content_len;
} queue_msg_t;

/* A delivery agent, once it holds its shared flock on a queue file it
   opened by path: is the file still named path? false when qmgr
   finished and recycled it meanwhile (queue_recycle renames a file only
   under an exclusive lock, so the answer is final while the shared lock
   is held) */
bool queue_fd_is_named(int fd, const char *path);

/* Parse the whole file structure (content is skipped, not read).
   0 ok; -1 corrupt or I/O error with *error_r. */
int queue_file_read(int fd, const char *qid, queue_msg_t *m,
                    const char **error_r);
void queue_msg_free(queue_msg_t *m);
const char *queue_msg_attr(const queue_msg_t *m, const char *name);
/* Rewrite the recipient record type at offset (R -> D/B) durably; the
   envelope is walked to check that offset starts a recipient record. */
int queue_file_mark(int fd, off_t offset, char new_type);
/* The same for recipient i of m as read by queue_file_read() (its offset
   is known good: nothing is read, so fd may be write-only); also sets
   m->rcpts[i].status. */
int queue_msg_mark(int fd, queue_msg_t *m, size_t i, char new_type);
/* The same without fdatasync: only for a mark whose loss in a power
   failure can at worst repeat a delivery that is already durable
   (queue_reader.c says why a crash cannot lose it). */
int queue_msg_mark_nosync(int fd, queue_msg_t *m, size_t i, char new_type);
/* index of the recipient whose record starts at offset, -1 if none */
long queue_msg_rcpt_at(const queue_msg_t *m, off_t offset);

#endif
