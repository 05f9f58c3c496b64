/*
 * maildir_list - what a Maildir holds, as POP3 (and later IMAP) sees it:
 * one scan of new/ and cur/, each message with its stable key, flags,
 * sizes and its UID from the mailbox index (mailbox_index.h), in UID
 * order (the order POP3 numbers messages in, and IMAP's).
 *
 * Names (the Maildir convention, as Dovecot reads it):
 *   BASE[:2,FLAGS]   BASE has no ':' and no '/'; the stable key is BASE,
 *                    which never changes when a client moves the file
 *                    from new/ to cur/ or changes its flags.
 *   In BASE, ",S=N" is the file's size in bytes and ",W=N" the size
 *   with every LF counted as CRLF (what POP3 reports and RFC 822 counts);
 *   Tern's local(8) writes both. Names starting with '.' are skipped, as
 *   is anything not a regular file (checked with the d_type, else
 *   fstatat AT_SYMLINK_NOFOLLOW: a symlink is never followed).
 * Sizes: size from S= or fstatat; vsize from W=, else the index's cached
 *   value, else counted by reading the file once (O_NOFOLLOW) and
 *   written to the index for the next session.
 * UIDL (RFC 1939: 1..70 characters 0x21..0x7E): BASE when it is such a
 *   string, else "X" followed by the first 32 hex digits of SHA-256(BASE).
 *   Stable across sessions and across a lost index.
 *
 * Runs as the mailbox owner (pop3d after its privilege drop). A file
 * that vanishes between the scan and its use (another client deleted
 * it) is not an error of the scan; maildir_msg_open() then says ENOENT.
 * Bounds: at most MAILDIR_LIST_MAX messages are listed (more: the
 * oldest MAILDIR_LIST_MAX by UID, with a warning logged); names longer
 * than NAME_MAX are impossible, BASE is at most 255 bytes.
 */
#ifndef TERN_MAILDIR_LIST_H
#define TERN_MAILDIR_LIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define MAILDIR_LIST_MAX 1000000
#define MAILDIR_UIDL_MAX 70

enum maildir_sub { MAILDIR_NEW = 0, MAILDIR_CUR = 1 };

struct maildir_msg {
    enum maildir_sub sub;
    char *name;              /* file name in new/ or cur/ (owned) */
    size_t base_len;         /* the stable key is name[0..base_len) */
    char flags[27];          /* the letters after ":2,", sorted; "" */
    uint32_t uid;            /* from the index */
    off_t size;              /* bytes on disk */
    off_t vsize;             /* CRLF size */
    char uidl[MAILDIR_UIDL_MAX + 1];
};

struct maildir_listing {
    struct maildir_msg *msgs; /* in UID order */
    size_t count;
    uint32_t uidvalidity;
    uint32_t uidnext;         /* the index's, after this listing */
    char error[512];          /* where *error_r of maildir_list points */
};

/*
 * List the Maildir whose directory is open as maildir_fd (the caller
 * opened it O_DIRECTORY|O_NOFOLLOW as the owner): scan new/ and cur/,
 * open the index (mailbox_index_open in the same directory; created if
 * missing), give every key without a UID the next UIDs (in the order of
 * their names, which begin with the delivery time), fill sizes. 0 ok,
 * -1 with *error_r (the listing is then empty). The index is closed
 * again before return: no lock is held while the client reads.
 */
int maildir_list(int maildir_fd, struct maildir_listing *out,
                 const char **error_r);
void maildir_listing_free(struct maildir_listing *l);

/* open message m for reading (O_RDONLY|O_NOFOLLOW|O_CLOEXEC, relative
   to maildir_fd); fd, or -1 with errno (ENOENT: gone) */
int maildir_msg_open(int maildir_fd, const struct maildir_msg *m);
/* unlink m; 0 ok or already gone, -1 errno */
int maildir_msg_unlink(int maildir_fd, const struct maildir_msg *m);
/* add a flag letter (e.g. 'S'): from new/ or cur/ to cur/BASE:2,FLAGS
   (rename within the Maildir, no copy); m->name/sub/flags updated;
   0 ok, -1 errno (ENOENT: gone) */
int maildir_msg_add_flag(int maildir_fd, struct maildir_msg *m, char flag);

/* parse a file name: base length, flags, S= and W= values (-1 when
   absent); false when the name is not a message (dot file, empty,
   bad ":2," part is still a message with no flags) */
bool maildir_name_parse(const char *name, size_t *base_len, char flags[27],
                        long long *size, long long *vsize);
/* the UIDL of a key (rule above) */
void maildir_uidl(const char *base, size_t base_len,
                  char out[MAILDIR_UIDL_MAX + 1]);

#endif
