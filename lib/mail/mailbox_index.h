/*
 * mailbox_index - the per-Maildir index: UIDVALIDITY, UIDNEXT and, per
 * stable message key (the file name's BASE, see maildir_list.h), the
 * message's UID and its CRLF size. The one authority for UIDs: a UID is
 * assigned once, under LMDB's writer lock, and never reused (UIDNEXT only
 * grows); a key whose file is gone is removed, its UID stays used.
 *
 * File: MAILDIR/tern-index.lmdb (MDB_NOSUBDIR; LMDB's lock file is
 * tern-index.lmdb-lock beside it), mode 0600, made by whoever opens the
 * index first, running as the mailbox owner. Two named databases:
 *   "meta":  "version" -> u32 1, "uidvalidity" -> u32, "uidnext" -> u32
 *   "keys":  BASE -> { u32 uid, i64 vsize (-1 unknown) }, little-endian;
 *            later versions append fields (flags, modseq for IMAP) and
 *            this version keeps what it does not know when it rewrites
 *            a record.
 * Everything in it can be rebuilt from the Maildir: an index that LMDB
 * refuses to open, or with missing or malformed records, is replaced by
 * an empty one with a new UIDVALIDITY (time-based, and greater than the
 * old one when that was readable); the caller then assigns UIDs again.
 * Two processes finding the same damage rebuild it once: the rebuild
 * holds flock() on the old file and the second one sees the new file.
 *
 * Security: opened relative to the Maildir descriptor; a symlink or
 * anything but a regular file at the index's name is refused (O_NOFOLLOW
 * open and fstat, then the file LMDB mapped is checked to be that same
 * inode). LMDB needs a path: /proc/self/fd/N/tern-index.lmdb.
 * Size: the map starts small and doubles when a transaction fills it.
 */
#ifndef TERN_MAILBOX_INDEX_H
#define TERN_MAILBOX_INDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAILBOX_INDEX_FILE "tern-index.lmdb"
#define MAILBOX_INDEX_KEY_MAX 255

/* results of the calls made inside an update */
enum {
    MAILBOX_INDEX_FOUND = 1,
    MAILBOX_INDEX_OK = 0,
    MAILBOX_INDEX_ERROR = -1,   /* the update fails (error text in idx) */
    MAILBOX_INDEX_FULL = -2,    /* map full: the update grows it, runs fn again */
    MAILBOX_INDEX_CORRUPT = -3, /* bad record: the update rebuilds, runs fn again */
};

struct mailbox_index;

struct mailbox_index_rec {
    uint32_t uid;
    int64_t vsize;              /* -1: not known */
};

/* open (or create) the index of the Maildir open as maildir_fd; an index
   LMDB cannot open is rebuilt. 0 ok, -1 with *error_r (static text or
   text in a buffer valid until the next call) */
int mailbox_index_open(int maildir_fd, struct mailbox_index **idx_r,
                       const char **error_r);
void mailbox_index_close(struct mailbox_index *idx);

/* the callback of an update: runs inside one write transaction, returns
   MAILBOX_INDEX_OK or passes on a negative result of the calls below.
   It may run more than once (after FULL or CORRUPT), each time from the
   start: it must not keep state from an earlier run. */
typedef int mailbox_index_fn(struct mailbox_index *idx, void *ctx);

/* run fn in a write transaction and commit (nothing is written when fn
   changed nothing); 0 ok, -1 with *error_r (valid until the next call on
   idx or its close) */
int mailbox_index_update(struct mailbox_index *idx, mailbox_index_fn *fn,
                         void *ctx, const char **error_r);

/* inside fn ------------------------------------------------------------ */
uint32_t mailbox_index_uidvalidity(const struct mailbox_index *idx);
uint32_t mailbox_index_uidnext(const struct mailbox_index *idx);
/* true when this index was created or rebuilt by this process (no old
   UIDs survive: the caller may want to log it) */
bool mailbox_index_is_new(const struct mailbox_index *idx);
/* FOUND (*rec filled), OK (no such key), CORRUPT, ERROR */
int mailbox_index_get(struct mailbox_index *idx, const char *key,
                      size_t key_len, struct mailbox_index_rec *rec);
/* give key (not yet in the index) the next UID; OK, FULL, CORRUPT (UIDs
   exhausted or the key was there), ERROR */
int mailbox_index_add(struct mailbox_index *idx, const char *key,
                      size_t key_len, int64_t vsize, uint32_t *uid_r);
/* set the vsize of an existing key; OK, FULL, CORRUPT, ERROR */
int mailbox_index_set_vsize(struct mailbox_index *idx, const char *key,
                            size_t key_len, int64_t vsize);
/* remove every key for which keep() is false; *removed_r counts them */
typedef bool mailbox_index_keep_fn(const char *key, size_t key_len,
                                   void *ctx);
int mailbox_index_expunge(struct mailbox_index *idx,
                          mailbox_index_keep_fn *keep, void *ctx,
                          size_t *removed_r);

#endif
