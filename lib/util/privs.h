/*
 * privs - dropping and switching privileges.
 *
 * privs_drop(): permanent. Optional chroot, then setgroups(gid only),
 * setresgid, setresuid, PR_SET_NO_NEW_PRIVS, and a check that root
 * cannot be regained. Used by every unprivileged daemon.
 * privs_become()/privs_restore(): temporary effective-ID switch for the
 * local delivery agent, which runs as root and writes a mailbox as its
 * owner, with the owner's supplementary groups. Both are no-ops when the
 * process is not running as root (the developer instance).
 *
 * Account cache: privs_account_by_name/_by_uid (getpwnam_r/getpwuid_r)
 * and the supplementary group lists privs_become sets (getgrouplist)
 * are kept per process for a bounded time (PRIVS_CACHE_LIFETIME seconds
 * for an answer, PRIVS_CACHE_NEG_LIFETIME for "no such account"), at most
 * PRIVS_CACHE_SLOTS entries of each kind, so a changed /etc/passwd or
 * /etc/group is seen within that time; errors are never cached. On
 * Debian NSS walks several userdb directories per lookup (libnss_systemd)
 * and local switches IDs several times per message: without the cache
 * that was most of local's system calls.
 */
#ifndef TERN_PRIVS_H
#define TERN_PRIVS_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVS_CACHE_LIFETIME     60     /* seconds, a found account */
#define PRIVS_CACHE_NEG_LIFETIME 10     /* seconds, "no such account" */
#define PRIVS_CACHE_SLOTS        16     /* entries per cache */

/* one password database entry */
struct privs_account {
    char name[256];
    uid_t uid;
    gid_t gid;
    char home[4096];
    char shell[256];
};

/* the password database through the cache: 1 found, 0 no such account,
   -1 lookup error or a field too long (errno) */
int privs_account_by_name(const char *name, struct privs_account *a);
int privs_account_by_uid(uid_t uid, struct privs_account *a);

/* resolve user name -> uid/gid; 0 ok, -1 unknown */
int privs_lookup_user(const char *name, uid_t *uid, gid_t *gid);
/* resolve group name -> gid; 0 ok, -1 unknown or lookup error */
int privs_lookup_group(const char *name, gid_t *gid);
/* 0 ok; -1 with *error_r. chroot_dir may be NULL. */
int privs_drop(uid_t uid, gid_t gid, const char *chroot_dir,
               const char **error_r);
bool privs_running_as_root(void);
/* set egid/supplementary groups/euid to the user; 0 ok, -1 errno. The
   supplementary groups are those of uid's passwd account (as initgroups
   sets them; gid alone for a uid without one). */
int privs_become(uid_t uid, gid_t gid);
/* privs_become plus one more supplementary group (e.g. the group that
   may write a mail spool directory) */
int privs_become_with_group(uid_t uid, gid_t gid, gid_t extra);
/* back to root (euid 0, egid 0, groups as at start) */
int privs_restore(void);

/* The groups privs_become_with_group(uid, gid, extra) sets (extra
   (gid_t)-1: none), from the cache; malloc'd, count in *n_r. */
gid_t *privs_groups(uid_t uid, gid_t gid, gid_t extra, int *n_r);

/* cache control, for tests: forget everything; replace the clock
   (monotonic milliseconds; NULL = the real one); lifetimes in seconds
   (0: no caching) */
void privs_cache_flush(void);
typedef uint64_t (*privs_clock_fn)(void);
void privs_cache_set_clock(privs_clock_fn now_msec);
void privs_cache_set_lifetime(unsigned found_sec, unsigned none_sec);
/* lookups that went to the system database since the last flush (tests
   count cache misses with it) */
struct privs_cache_stats {
    unsigned long account_lookups;
    unsigned long group_lookups;
};
void privs_cache_stats(struct privs_cache_stats *st);

#endif
