/*
 * privs - permanent privilege drop (chroot + IDs + no_new_privs) and the
 * temporary effective-ID switch used by local delivery (privs.h).
 *
 * Security: privs_drop verifies that root cannot be regained before it
 * reports success; callers treat failure as fatal.
 */
#include "privs.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util.h"

static char privs_errbuf[512];

/* groups and egid as they were before the first privs_become */
static gid_t *saved_groups;
static int saved_ngroups = -1;
static gid_t saved_egid;

static const char *privs_err(const char *what, const char *arg)
{
    snprintf(privs_errbuf, sizeof(privs_errbuf), "%s%s%s: %s", what,
             arg ? " " : "", arg ? arg : "", strerror(errno));
    return privs_errbuf;
}

int privs_lookup_user(const char *name, uid_t *uid, gid_t *gid)
{
    struct passwd pw;
    char *buf;
    if (passwd_lookup(name, &pw, &buf) <= 0)
        return -1;
    *uid = pw.pw_uid;
    *gid = pw.pw_gid;
    free(buf);
    return 0;
}

bool privs_running_as_root(void)
{
    /* real uid: still 0 while privs_become has switched the effective uid */
    return getuid() == 0 || geteuid() == 0;
}

/* privs_verify - the drop stuck: IDs as asked, root not recoverable */
static int privs_verify(uid_t uid, gid_t gid, const char **error_r)
{
    uid_t r, e, s;
    gid_t rg, eg, sg;
    if (getresuid(&r, &e, &s) < 0 || getresgid(&rg, &eg, &sg) < 0) {
        *error_r = privs_err("getresuid", NULL);
        return -1;
    }
    if (r != uid || e != uid || s != uid || rg != gid || eg != gid
        || sg != gid) {
        *error_r = "privilege drop: IDs not as requested";
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        *error_r = "privilege drop: root could be regained";
        return -1;
    }
    if (gid != 0 && uid != 0 && setgid(0) == 0) {
        *error_r = "privilege drop: group 0 could be regained";
        return -1;
    }
    return 0;
}

int privs_drop(uid_t uid, gid_t gid, const char *chroot_dir,
               const char **error_r)
{
    if (!privs_running_as_root())
        return 0;
    if (geteuid() != 0 && seteuid(0) < 0) {   /* undo a privs_become */
        *error_r = privs_err("seteuid", "0");
        return -1;
    }
    if (chroot_dir && *chroot_dir) {
        if (chroot(chroot_dir) < 0) {
            *error_r = privs_err("chroot", chroot_dir);
            return -1;
        }
        if (chdir("/") < 0) {
            *error_r = privs_err("chdir", "/");
            return -1;
        }
    }
    if (setgroups(1, &gid) < 0) {
        *error_r = privs_err("setgroups", NULL);
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        *error_r = privs_err("setresgid", NULL);
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        *error_r = privs_err("setresuid", NULL);
        return -1;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        *error_r = privs_err("prctl", "PR_SET_NO_NEW_PRIVS");
        return -1;
    }
    return privs_verify(uid, gid, error_r);
}

/* privs_save - remember the groups and egid we run with as root */
static int privs_save(void)
{
    if (saved_ngroups >= 0)
        return 0;
    int n = getgroups(0, NULL);
    if (n < 0)
        return -1;
    gid_t *g = xcalloc((size_t)n + 1, sizeof(*g));
    if ((n = getgroups(n, g)) < 0) {
        free(g);
        return -1;
    }
    saved_groups = g;
    saved_ngroups = n;
    saved_egid = getegid();
    return 0;
}

/* privs_user_groups - the groups uid's account is in (as initgroups
   would set them), gid first, extra (unless (gid_t)-1) added; a uid
   with no passwd entry (a virtual user's) gets gid alone. Caller frees. */
static gid_t *privs_user_groups(uid_t uid, gid_t gid, gid_t extra, int *n_r)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = hint > 0 ? (size_t)hint : 4096;
    struct passwd pw, *res = NULL;
    char *buf = NULL;
    int rc;

    for (;;) {
        buf = xmalloc(len);
        rc = getpwuid_r(uid, &pw, buf, len, &res);
        if (rc != ERANGE || len >= (1 << 20))
            break;
        free(buf);
        len *= 2;
    }
    int n = 16;
    gid_t *g = xcalloc((size_t)n + 1, sizeof(*g));
    if (res == NULL) {
        g[0] = gid;
        n = 1;
    } else {
        int want = n;
        while (getgrouplist(pw.pw_name, gid, g, &want) < 0 && want > n
               && want < 65536) {
            n = want;
            g = xrealloc(g, ((size_t)n + 1) * sizeof(*g));
        }
        n = want > n ? n : want;
        if (n < 1) {
            g[0] = gid;
            n = 1;
        }
    }
    free(buf);
    if (extra != (gid_t)-1) {
        bool have = false;
        for (int i = 0; i < n; i++)
            have = have || g[i] == extra;
        if (!have)
            g[n++] = extra;     /* room for one more was allocated */
    }
    *n_r = n;
    return g;
}

/* privs_switch - root's groups/egid/euid to the user's */
static int privs_switch(uid_t uid, gid_t gid, gid_t extra)
{
    if (!privs_running_as_root())
        return 0;
    if (geteuid() != 0 && seteuid(0) < 0)
        return -1;
    if (privs_save() < 0)
        return -1;
    int n;
    gid_t *groups = privs_user_groups(uid, gid, extra, &n);
    /* groups first: only root may set them; then egid, then euid last */
    int rc = setgroups((size_t)n, groups);
    free(groups);
    if (rc < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
        int saved = errno;
        privs_restore();
        errno = saved;
        return -1;
    }
    return 0;
}

int privs_become(uid_t uid, gid_t gid)
{
    return privs_switch(uid, gid, (gid_t)-1);
}

int privs_become_with_group(uid_t uid, gid_t gid, gid_t extra)
{
    return privs_switch(uid, gid, extra);
}

int privs_restore(void)
{
    if (!privs_running_as_root())
        return 0;
    if (geteuid() != 0 && seteuid(0) < 0)
        return -1;
    if (saved_ngroups < 0)
        return 0;   /* never switched */
    if (setgroups((size_t)saved_ngroups, saved_groups) < 0
        || setegid(saved_egid) < 0)
        return -1;
    return 0;
}
