/*
 * queue_commit - group commit of new queue files, off the event loop.
 *
 * A receiver (smtpd) seals a finished file (cleanup_seal /
 * queue_writer_seal) and submits its struct queue_sync here. One worker
 * thread takes everything submitted since its last batch and makes it
 * durable in one go (queue_sync_run: writeback of all files, an fsync
 * each, the renames, one fsync per directory), while the loop keeps
 * serving the other sessions. Each job's callback then runs in the
 * event loop's thread, in submission order; only then may "250" be
 * said. Under load a batch holds every message that finished while the
 * previous batch was on its way to disk, so the number of journal
 * commits per message falls as the load rises, and a single message
 * waits no longer than it did with a synchronous commit.
 *
 * The worker touches nothing but the jobs it was given (file
 * descriptors and paths relative to the working directory); it logs
 * nothing, and every signal is blocked in it.
 */
#ifndef TERN_QUEUE_COMMIT_H
#define TERN_QUEUE_COMMIT_H

#include <stddef.h>
#include "util/events.h"
#include "mail/queue_writer.h"

typedef struct queue_committer queue_committer_t;
/* job->error tells the outcome (0: durable); call queue_writer_sealed /
   cleanup_sealed with it */
typedef void (*queue_commit_cb)(struct queue_sync *job, void *ctx);

/* the committer of this loop's process; NULL with errno when no thread
   or eventfd could be made (the caller commits synchronously then) */
queue_committer_t *queue_committer_new(ev_loop_t *loop);
/* hand a sealed job over; it and ctx must stay valid until cb ran.
   0, or -1 (ENOMEM) when nothing was queued: commit synchronously. */
int queue_committer_submit(queue_committer_t *qc, struct queue_sync *job,
                           queue_commit_cb cb, void *ctx);
/* jobs submitted whose callback has not run yet */
size_t queue_committer_pending(const queue_committer_t *qc);
/* stop the worker after what it was given (their callbacks do not run)
   and release everything */
void queue_committer_free(queue_committer_t *qc);

#endif
