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
 *       helo_name, protocol, size, ...; from smtpd's ESMTP parameters:
 *       dsn_envid (ENVID, xtext-decoded), dsn_ret (FULL or HDRS),
 *       smtputf8=yes, requiretls=yes; absent when not given)
 *   recipients, each an optional 'O' (original recipient: the address
 *       before alias expansion or forwarding, for orig_to= and
 *       duplicate filtering), an optional 'N' (DSN NOTIFY, RFC 3461:
 *       "NEVER" or a comma list of SUCCESS, FAILURE, DELAY; absent: the
 *       client gave none), an optional 'P' (DSN ORCPT as the client gave
 *       it, xtext-decoded: "rfc822;user@example.com"), in that order,
 *       then 'R' (pending), 'D' (done) or 'B' (bounced)
 *   'M' content: DATA is the content length as 20 decimal digits; the
 *       message bytes (LF line ends, dot-unstuffed) follow right after
 *       the record, outside it
 *   'E' end marker (empty): a file without it is corrupt
 * The recipient record's TYPE byte is rewritten in place (R -> D or B)
 * with one pwrite when that recipient is finished (followed by fdatasync,
 * except for local's marks: queue_msg_mark_nosync), so a process crash
 * never re-delivers a finished recipient.
 *
 * Completion: a file is written under a temporary name "t.<pid>.<n>" in
 * its queue directory, fsync'd, renamed to its queue ID, and the
 * directory is fsync'd. Only files named by a valid queue ID are
 * complete; readers skip everything else (queue_id_valid()).
 *
 * Directories: paths are relative to the queue directory (daemons chdir
 * there). deferred/ and defer/ are hashed one level by the last
 * microsecond digit ("deferred/X/QUEUEID"); the others are flat. defer/
 * holds qmgr's per-message logs of reasons (bounce_log.h), not queue
 * files. free/ keeps the inodes of finished queue files for reuse
 * (queue_recycle, queue_writer_open). maildrop/ and bounce/ come with the
 * services that use them.
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


/* queue names */
#define QUEUE_INCOMING "incoming"
#define QUEUE_ACTIVE   "active"
#define QUEUE_DEFERRED "deferred"
#define QUEUE_HOLD     "hold"
#define QUEUE_CORRUPT  "corrupt"
#define QUEUE_FREE     "free"       /* emptied files kept for reuse */
#define QUEUE_FREE_MAX 8192         /* at most this many, roughly */
#define QUEUE_DEFER    "defer"      /* per-message delivery logs (bounce_log.h) */
#define QUEUE_MAILDROP "maildrop"   /* sendmail's submissions (postdrop), for pickup */

/* the login processes' directory (pop3-login's chroot; the sockets
   login/NAME of master.conf's login/ services): owned by the caller of
   queue_login_dir_create (root), group $login_user's, 0750 */
#define QUEUE_LOGIN_DIR "login"

/* all spool subdirectories, NULL-terminated, for setup code */
extern const char *const queue_dir_names[];

void queue_id_make(uint64_t usec, uint64_t inode, char out[QUEUE_ID_SIZE]);
bool queue_id_valid(const char *s);
/* "incoming/ID" or "deferred/X/ID" into out (reset first) */
void queue_path(const char *queue, const char *qid, buf_t *out);
/* is queue hashed into one level of subdirectories (deferred/, defer/)? */
bool queue_is_hashed(const char *queue);
/* create spool subdirectories (and hash subdirs) under queue_dir, owned
   by owner:group, except: maildrop/ (01730) and public/ (02710) belong
   to owner:setgid_group (the group of the set-gid postdrop and queue
   tools; (gid_t)-1: group), pid/ (0755) to the caller. Existing
   directories get these owners and modes back. */
int queue_dirs_create(const char *queue_dir, uid_t owner, gid_t group,
                      gid_t setgid_group);
/* create (or fix) queue_dir/login: owned by the caller (euid, egid when
   group is (gid_t)-1), group group, mode 0750; refuses a symlink.
   0 ok, -1 errno */
int queue_login_dir_create(const char *queue_dir, gid_t group);
/* the mode queue_dirs_create gives spool subdirectory name (and its hash
   subdirectories); for `ternctl check` */
mode_t queue_dir_mode(const char *name);

/* Every move of a queue file from one queue to another goes through
   queue_move: it refuses an invalid queue ID (EINVAL), never replaces an
   existing file (EEXIST: the message is already there), creates a
   missing hash subdirectory (and fsyncs its parent), and with
   QUEUE_MOVE_SYNC fsyncs the destination directory. 0 moved; 1 moved
   but that fsync failed (errno set); -1 not moved (errno set). The source
   directory is not fsync'd (see qmgr_scan.c for why that is safe). */
#define QUEUE_MOVE_SYNC 1
int queue_move(const char *from_queue, const char *to_queue, const char *qid,
               int flags);
/* the same for a file a scan found at from (e.g. a deferred/ file not in
   its hash subdirectory); from's last component must be qid */
int queue_move_path(const char *from, const char *to_queue, const char *qid,
                    int flags);
/* rename(2) that never replaces an existing name (EEXIST) */
int queue_rename_noreplace(const char *from, const char *to);
/* unlink queue/qid (EINVAL for an invalid ID) */
int queue_remove(const char *queue, const char *qid);
/* The same end for a finished file open as fd, keeping its inode for the
   next queue_writer_open: when nothing else holds it (an exclusive
   flock is granted at once, one link, queue/qid is fd's inode) and
   free/ is not full, it is renamed into free/ and truncated (a writer
   uses only an empty one: queue_writer.c); otherwise
   queue/qid is unlinked. Either way queue/qid is gone on success.
   Reuse is safe for the delivery agents because they take a shared
   flock and then check queue_fd_is_named (queue_reader.h): a file
   recycled under them no longer has their name. 0, or -1 errno. */
int queue_recycle(const char *queue, const char *qid, int fd);


#endif
