/*
 * queue - queue IDs and queue files.
 *
 * Queue ID: unique and sortable, from the arrival time and the queue
 * file's inode (like Postfix's long IDs): 6 base-52 digits of seconds,
 * 4 of microseconds, then the inode in base 52, over the alphabet
 * 0-9 B-D F-H J-N P-T V-Z b-d f-h j-n p-t v-z (no vowels: no words).
 *
 * Queue file: a sequence of records TYPE(1 byte) LEN(4 bytes, big-endian)
 * DATA(LEN bytes), in this order:
 *   'V' version "1"
 *   'T' arrival time "SECONDS.MICROSECONDS"
 *   'S' envelope sender (empty for the null sender)
 *   'A' "name=value" attributes, any number (client_name, client_address,
 *       helo_name, protocol, size, ...)
 *   recipients, each an optional 'O' (original recipient, for DSN)
 *       followed by 'R' (pending), 'D' (done) or 'B' (bounced)
 *   'M' content: DATA is the content length as 20 decimal digits; the
 *       message bytes (LF line ends, dot-unstuffed) follow right after
 *       the record, outside it
 *   'E' end marker (empty): a file without it is corrupt
 * The recipient record's TYPE byte is rewritten in place (R -> D or B)
 * with one pwrite + fdatasync when that recipient is finished, so a crash
 * never re-delivers a finished recipient.
 *
 * Completion: a file is written under a temporary name "t.<pid>.<n>" in
 * its queue directory, fsync'd, renamed to its queue ID, and the
 * directory is fsync'd. Only files named by a valid queue ID are
 * complete; readers skip everything else (queue_id_valid()).
 *
 * Directories: paths are relative to the queue directory (daemons chdir
 * there). deferred/ and defer/ are hashed one level by the last
 * microsecond digit ("deferred/X/QUEUEID"); the others are flat.
 * A deferred file's mtime is its next-attempt time.
 */
#ifndef TERN_QUEUE_H
#define TERN_QUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/buf.h"

#define QUEUE_ID_SIZE 32       /* buffer size for an ID incl. NUL */

#define QREC_VERSION   'V'
#define QREC_TIME      'T'
#define QREC_SENDER    'S'
#define QREC_ATTR      'A'
#define QREC_ORCPT     'O'
#define QREC_RCPT      'R'
#define QREC_DONE      'D'
#define QREC_BOUNCED   'B'
#define QREC_CONTENT   'M'
#define QREC_END       'E'
#define QREC_MAX_LEN   (1024 * 1024)   /* per record, content excluded */

/* queue names */
#define QUEUE_MAILDROP "maildrop"
#define QUEUE_INCOMING "incoming"
#define QUEUE_ACTIVE   "active"
#define QUEUE_DEFERRED "deferred"
#define QUEUE_HOLD     "hold"
#define QUEUE_CORRUPT  "corrupt"
#define QUEUE_BOUNCE   "bounce"
#define QUEUE_DEFER    "defer"

/* all spool subdirectories, NULL-terminated, for setup code */
extern const char *const queue_dir_names[];

void queue_id_make(uint64_t usec, uint64_t inode, char out[QUEUE_ID_SIZE]);
bool queue_id_valid(const char *s);
/* "incoming/ID" or "deferred/X/ID" into out (reset first) */
void queue_path(const char *queue, const char *qid, buf_t *out);
/* create spool subdirectories (and hash subdirs) under queue_dir */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group);

/* ---- writing ---------------------------------------------------------- */
typedef struct queue_writer {
    int fd;
    char qid[QUEUE_ID_SIZE];
    char queue[16];
    char tmp_path[128];
    off_t content_start;    /* offset of the 'M' record's DATA */
    uint64_t content_len;
    bool in_content;
    bool failed;            /* any write error: commit will fail */
    /* private to queue.c */
    buf_t obuf;             /* write buffer, flushed at 64 KB and commit */
    off_t written;          /* bytes already written to fd */
    char last_type;         /* previous record, for the order check */
    size_t nrcpts;
} queue_writer_t;

/* Create a temp file in queue (e.g. QUEUE_INCOMING), assign the ID,
   write V and T records. 0 ok, -1 errno. */
int queue_writer_open(queue_writer_t *w, const char *queue);
int queue_writer_record(queue_writer_t *w, char type, const void *p, size_t n);
int queue_writer_attr(queue_writer_t *w, const char *name, const char *value);
int queue_writer_content_begin(queue_writer_t *w);
int queue_writer_content(queue_writer_t *w, const void *p, size_t n);
/* Finish content + E record, fsync, rename to the ID, fsync the dir.
   0 = durable (only now may "250" be said); -1 = failed, file removed. */
int queue_writer_commit(queue_writer_t *w);
void queue_writer_abort(queue_writer_t *w);

/* ---- reading ---------------------------------------------------------- */
struct queue_rcpt {
    char *address;
    char *orcpt;            /* NULL if none */
    off_t offset;           /* of the TYPE byte, for queue_file_mark */
    char status;            /* QREC_RCPT, QREC_DONE or QREC_BOUNCED */
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

/* Parse the whole file structure (content is skipped, not read).
   0 ok; -1 corrupt or I/O error with *error_r. */
int queue_file_read(int fd, const char *qid, queue_msg_t *m,
                    const char **error_r);
void queue_msg_free(queue_msg_t *m);
const char *queue_msg_attr(const queue_msg_t *m, const char *name);
/* Rewrite the recipient record type at offset (R -> D/B) durably. */
int queue_file_mark(int fd, off_t offset, char new_type);

#endif
