/*
 * privs - dropping and switching privileges.
 *
 * privs_drop(): permanent. Optional chroot, then setgroups(gid only),
 * setresgid, setresuid, PR_SET_NO_NEW_PRIVS, and a check that root
 * cannot be regained. Used by every unprivileged daemon.
 * privs_become()/privs_restore(): temporary effective-ID switch for the
 * local delivery agent, which runs as root and writes a mailbox as its
 * owner, with the owner's supplementary groups. Both are no-ops when the process is not running as root (the
 * developer instance).
 */
#ifndef TERN_PRIVS_H
#define TERN_PRIVS_H

#include <stdbool.h>
#include <sys/types.h>

/* resolve user name -> uid/gid; 0 ok, -1 unknown */
int privs_lookup_user(const char *name, uid_t *uid, gid_t *gid);
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

#endif
