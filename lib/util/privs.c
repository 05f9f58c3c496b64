/*
 * privs - permanent privilege drop (chroot + IDs + no_new_privs), the
 * temporary effective-ID switch used by local delivery, and the bounded
 * per-process cache of accounts and group lists behind both (privs.h).
 *
 * Security: privs_drop verifies that root cannot be regained before it
 * reports success; callers treat failure as fatal. The cache only ever
 * holds what the system database said within the last
 * PRIVS_CACHE_LIFETIME seconds: privs_become still sets exactly the
 * account's groups (never root's), from an answer at most that old.
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

#include "sys.h"
#include "util.h"

static char privs_errbuf[512];

/* the real uid: privs_become changes only the effective one, so it is
   asked once (privs_drop, the only change, forgets it) */
static bool privs_ruid_known;
static uid_t privs_ruid;
/* privs_become left a non-root effective uid (so privs_restore, or the
   next privs_become, must seteuid(0) first): tracked instead of asking
   geteuid() twice per switch. Wrong only if someone else changed the
   euid, and then setgroups fails (EPERM): a failed switch, never a
   wrong one. */
static bool privs_switched;

/* --- the cache --------------------------------------------------------- */

static privs_clock_fn privs_clock = time_mono_msec;
static uint64_t privs_found_msec = PRIVS_CACHE_LIFETIME * 1000ULL;
static uint64_t privs_none_msec = PRIVS_CACHE_NEG_LIFETIME * 1000ULL;
static struct privs_cache_stats privs_stats;

struct account_slot {
    bool used;
    bool by_uid;
    char *name;                 /* key, by name */
    uid_t uid;                  /* key, by uid */
    int found;                  /* 1, or 0: no such account */
    struct privs_account *acct; /* found */
    uint64_t expires;
};

struct group_slot {
    bool used;
    uid_t uid;
    gid_t gid, extra;
    gid_t *groups;
    int n;
    uint64_t expires;
};

static struct account_slot account_slots[PRIVS_CACHE_SLOTS];
static struct group_slot group_slots[PRIVS_CACHE_SLOTS];

static void account_slot_clear(struct account_slot *s)
{
    free(s->name);
    free(s->acct);
    memset(s, 0, sizeof(*s));
}

static void group_slot_clear(struct group_slot *s)
{
    free(s->groups);
    memset(s, 0, sizeof(*s));
}

void privs_cache_flush(void)
{
    for (size_t i = 0; i < PRIVS_CACHE_SLOTS; i++) {
        account_slot_clear(&account_slots[i]);
        group_slot_clear(&group_slots[i]);
    }
    memset(&privs_stats, 0, sizeof(privs_stats));
}

void privs_cache_set_clock(privs_clock_fn now_msec)
{
    privs_clock = now_msec != NULL ? now_msec : time_mono_msec;
}

void privs_cache_set_lifetime(unsigned found_sec, unsigned none_sec)
{
    privs_found_msec = found_sec * 1000ULL;
    privs_none_msec = none_sec * 1000ULL;
}

void privs_cache_stats(struct privs_cache_stats *st)
{
    *st = privs_stats;
}

/* slot_pick - index of the slot to (re)fill: unused, else expired, else
   the one that expires first */
#define SLOT_PICK(slots, now, best)                                         \
    do {                                                                    \
        best = 0;                                                           \
        for (size_t i_ = 0; i_ < PRIVS_CACHE_SLOTS; i_++) {                 \
            if (!slots[i_].used || slots[i_].expires <= now) {              \
                best = i_;                                                  \
                break;                                                      \
            }                                                               \
            if (slots[i_].expires < slots[best].expires)                    \
                best = i_;                                                  \
        }                                                                   \
    } while (0)

/* account_copy - pw into a; -1 (ENAMETOOLONG) when a field does not fit */
static int account_copy(const struct passwd *pw, struct privs_account *a)
{
    memset(a, 0, sizeof(*a));
    a->uid = pw->pw_uid;
    a->gid = pw->pw_gid;
    if (str_copy(a->name, pw->pw_name ? pw->pw_name : "", sizeof(a->name))
            >= sizeof(a->name)
        || str_copy(a->home, pw->pw_dir ? pw->pw_dir : "", sizeof(a->home))
            >= sizeof(a->home)
        || str_copy(a->shell, pw->pw_shell ? pw->pw_shell : "",
                    sizeof(a->shell)) >= sizeof(a->shell)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return 1;
}

/* account_fetch - the system database itself (by name, or by uid when
   name is NULL): 1, 0, -1 */
static int account_fetch(const char *name, uid_t uid, struct privs_account *a)
{
    long hint = sysconf(_SC_GETPW_R_SIZE_MAX);
    size_t len = hint > 0 ? (size_t)hint : 4096;

    privs_stats.account_lookups++;
    for (;;) {
        struct passwd pw, *res = NULL;
        char *buf = xmalloc(len);
        int rc = name ? getpwnam_r(name, &pw, buf, len, &res)
                      : getpwuid_r(uid, &pw, buf, len, &res);
        if (rc == ERANGE && len < (1 << 20)) {
            free(buf);
            len *= 2;
            continue;
        }
        int ret;
        if (res != NULL) {
            ret = account_copy(&pw, a);
        } else if (rc == 0 || rc == ENOENT || rc == ESRCH || rc == EBADF
                   || rc == EPERM) {
            ret = 0;    /* "not found" comes back as any of these */
        } else {
            errno = rc;
            ret = -1;
        }
        int saved = errno;
        free(buf);
        errno = saved;
        return ret;
    }
}

/* account_lookup - through the cache */
static int account_lookup(const char *name, uid_t uid, struct privs_account *a)
{
    uint64_t now = privs_clock();
    size_t i;

    for (i = 0; i < PRIVS_CACHE_SLOTS; i++) {
        struct account_slot *s = &account_slots[i];
        if (!s->used || s->by_uid != (name == NULL)
            || (name ? strcmp(s->name, name) != 0 : s->uid != uid))
            continue;
        if (s->expires > now) {
            if (s->found)
                *a = *s->acct;
            return s->found;
        }
        account_slot_clear(s);
        break;
    }
    int rc = account_fetch(name, uid, a);
    uint64_t life = rc > 0 ? privs_found_msec : privs_none_msec;
    if (rc < 0 || life == 0)
        return rc;      /* an error is asked again next time */
    SLOT_PICK(account_slots, now, i);
    struct account_slot *s = &account_slots[i];
    account_slot_clear(s);
    s->used = true;
    s->by_uid = name == NULL;
    s->name = name ? xstrdup(name) : NULL;
    s->uid = uid;
    s->found = rc;
    if (rc > 0) {
        s->acct = xmalloc(sizeof(*s->acct));
        *s->acct = *a;
    }
    s->expires = now + life;
    return rc;
}

int privs_account_by_name(const char *name, struct privs_account *a)
{
    if (*name == '\0')
        return 0;
    return account_lookup(name, 0, a);
}

int privs_account_by_uid(uid_t uid, struct privs_account *a)
{
    return account_lookup(NULL, uid, a);
}

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
    struct privs_account a;
    if (privs_account_by_name(name, &a) <= 0)
        return -1;
    *uid = a.uid;
    *gid = a.gid;
    return 0;
}

int privs_lookup_group(const char *name, gid_t *gid)
{
    struct group gr, *res = NULL;
    char buf[16384];

    if (getgrnam_r(name, &gr, buf, sizeof(buf), &res) != 0 || res == NULL)
        return -1;
    *gid = res->gr_gid;
    return 0;
}

bool privs_running_as_root(void)
{
    /* real uid: still 0 while privs_become has switched the effective uid */
    if (!privs_ruid_known) {
        privs_ruid = getuid();
        privs_ruid_known = true;
    }
    return privs_ruid == 0 || geteuid() == 0;
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
    privs_switched = false;
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
    privs_ruid_known = false;
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

/* groups_fetch - the groups uid's account is in (as initgroups would
   set them), gid first, extra (unless (gid_t)-1) added; a uid with no
   passwd entry (a virtual user's) gets gid alone. *found_r: 1 account
   found, 0 none, -1 lookup error (not to be cached). Caller frees. */
static gid_t *groups_fetch(uid_t uid, gid_t gid, gid_t extra, int *n_r,
                           int *found_r)
{
    struct privs_account a;
    int n = 16;
    gid_t *g = xcalloc((size_t)n + 1, sizeof(*g));

    privs_stats.group_lookups++;
    *found_r = privs_account_by_uid(uid, &a);
    if (*found_r <= 0) {
        g[0] = gid;
        n = 1;
    } else {
        int want = n;
        while (getgrouplist(a.name, gid, g, &want) < 0 && want > n
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

gid_t *privs_groups(uid_t uid, gid_t gid, gid_t extra, int *n_r)
{
    uint64_t now = privs_clock();
    size_t i;
    gid_t *g;

    for (i = 0; i < PRIVS_CACHE_SLOTS; i++) {
        struct group_slot *s = &group_slots[i];
        if (!s->used || s->uid != uid || s->gid != gid || s->extra != extra)
            continue;
        if (s->expires > now) {
            g = xmalloc((size_t)s->n * sizeof(*g));
            memcpy(g, s->groups, (size_t)s->n * sizeof(*g));
            *n_r = s->n;
            return g;
        }
        group_slot_clear(s);
        break;
    }
    int found;
    g = groups_fetch(uid, gid, extra, n_r, &found);
    uint64_t life = found > 0 ? privs_found_msec : privs_none_msec;
    if (found < 0 || life == 0)
        return g;
    SLOT_PICK(group_slots, now, i);
    struct group_slot *s = &group_slots[i];
    group_slot_clear(s);
    s->used = true;
    s->uid = uid;
    s->gid = gid;
    s->extra = extra;
    s->n = *n_r;
    s->groups = xmalloc((size_t)s->n * sizeof(*s->groups));
    memcpy(s->groups, g, (size_t)s->n * sizeof(*g));
    s->expires = now + life;
    return g;
}

/* privs_switch - root's groups/egid/euid to the user's */
static int privs_switch(uid_t uid, gid_t gid, gid_t extra)
{
    if (!privs_running_as_root())
        return 0;
    if (privs_switched) {
        if (seteuid(0) < 0)
            return -1;
        privs_switched = false;
    }
    if (privs_save() < 0)
        return -1;
    int n;
    gid_t *groups = privs_groups(uid, gid, extra, &n);
    /* groups first: only root may set them; then egid, then euid last */
    int rc = setgroups((size_t)n, groups);
    free(groups);
    if (rc < 0 || setegid(gid) < 0 || seteuid(uid) < 0) {
        int saved = errno;
        privs_restore();
        errno = saved;
        return -1;
    }
    privs_switched = uid != 0;
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
    if (privs_switched) {
        if (seteuid(0) < 0)
            return -1;
        privs_switched = false;
    }
    if (saved_ngroups < 0)
        return 0;   /* never switched */
    if (setgroups((size_t)saved_ngroups, saved_groups) < 0
        || setegid(saved_egid) < 0)
        return -1;
    return 0;
}
