/*
 * queue_writer - the only code that creates queue files (format in
 * queue.h). A file is written as "QUEUE/t.<pid>.<n>", then committed:
 * fsync, rename to its queue ID (never over an existing name), fsync of
 * the directory. Only after queue_writer_commit() returns 0 may a
 * receiver say "250".
 *
 * The same commit in three steps, for group commit (queue_commit.h):
 * queue_writer_seal() on the writer's thread finishes the file and
 * describes it in a struct queue_sync; queue_sync_run() makes any number
 * of sealed files durable at once (any thread; it touches nothing but
 * the jobs); queue_writer_sealed() back on the writer's thread settles
 * the writer. Per batch: every file's writeback is started before the
 * first fsync, so one journal commit covers the batch's file data; then
 * the renames, then one fsync of each directory involved.
 */
#ifndef TERN_QUEUE_WRITER_H
#define TERN_QUEUE_WRITER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util/buf.h"
#include "queue.h"
#include "queue_record.h"

typedef struct queue_writer {
    int fd;
    char qid[QUEUE_ID_SIZE];
    char queue[16];
    char tmp_path[128];
    off_t content_start;    /* offset of the 'M' record's DATA */
    uint64_t content_len;
    bool in_content;
    bool failed;            /* any write error: commit will fail */
    /* private to queue_writer.c */
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

struct queue_sync {
    int fd;                 /* the sealed file (owned by the writer) */
    char tmp_path[128];
    char final_path[128];   /* queue/ID */
    char dir[32];           /* the directory to fsync: queue or queue/X */
    bool renamed;           /* final_path exists (until an fsync failed) */
    int error;              /* 0: durable under final_path, else errno */
};

/* Finish content + E record, flush (no fsync); fill *job. 0 ok, -1 errno
   (the file is removed, as by a failed commit). */
int queue_writer_seal(queue_writer_t *w, struct queue_sync *job);
/* Make n sealed files durable: writeback of all, fsync each, rename each
   (never over an existing name), one fsync per directory. Sets each
   job's error; a file whose directory could not be fsync'd is unlinked
   again. Thread-safe: uses nothing but the jobs. */
void queue_sync_run(struct queue_sync *const *jobs, size_t n);
/* After queue_sync_run: 0 = durable (say "250" now); -1 = failed, errno
   set, file removed. Either way the writer is done. */
int queue_writer_sealed(queue_writer_t *w, const struct queue_sync *job);

#endif
