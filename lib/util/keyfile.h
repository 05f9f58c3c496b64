/*
 * keyfile - a secret key shared by every process of a system, kept in a
 * file only its owner (normally root) can read: load it, or make it when
 * it is missing (or, for keys that rotate, too old).
 *
 * keyfile_load(dir, name, lockname, ...) works in dir (made 0700 when
 * missing), which must be a directory of ours (euid) not writable by group
 * or others. Under an flock on dir/lockname (so that processes starting
 * together agree on one key), dir/name is opened O_NOFOLLOW and must be a
 * regular file of ours, mode 0600 (no group/other bits), of exactly the
 * key size. A new key is getrandom() bytes written to dir/name.tmp
 * (O_EXCL, 0600), fsync'd and renamed over dir/name, then dir is fsync'd.
 *
 * Security: the directory and file checks are what keep another user from
 * planting (symlink, own file) or reading the key. Call it as root before
 * any privilege drop or chroot; the caller keeps the bytes in memory only
 * and wipes them (explicit_bzero) when done.
 */
#ifndef TERN_KEYFILE_H
#define TERN_KEYFILE_H

#include <stdbool.h>
#include <stddef.h>

struct keyfile_spec {
    size_t size;        /* key bytes */
    /* > 0: a file whose mtime is at least this many seconds old (or more
       than 60 s in the future) is replaced by a new key (rotation) */
    long max_age;
    /* with rotation: the first keep bytes of the replaced key (if it was
       sound) become the last keep bytes of the new one (a previous key
       that still decrypts); 0 for none */
    size_t keep;
    /* true: an existing file that breaks a rule (symlink, owner, mode,
       size) is refused, the caller fails; false: it is replaced by a
       new key */
    bool strict;
    /* what to call dir in the reason (a parameter name); NULL: "the
       directory" */
    const char *dir_label;
};

/* 1 key loaded, 2 key made (out filled); -1 error, *why_r a static
   reason (valid until the next call), out wiped */
int keyfile_load(const char *dir, const char *name, const char *lockname,
                 const struct keyfile_spec *spec, unsigned char *out,
                 const char **why_r);

#endif
