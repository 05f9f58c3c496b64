/*
 * local_mailbox - where a user's own mail goes (local.h):
 *   home_mailbox ending in '/'  a Maildir below the home (local_maildir.c);
 *   other non-empty home_mailbox  an mbox file relative to the home;
 *   empty home_mailbox          $mail_spool_directory/USER, an mbox file.
 * The mbox writer and its locks are local_mbox.c's.
 *
 * Security: everything below the home runs with the user's IDs. A mail
 * spool directory is checked first (a directory owned by root, or by us
 * in a developer instance, and not world-writable unless sticky); the
 * user's mailbox is opened there with the least that works: the user's
 * IDs when the user may write the directory (mode 1777), the user's IDs
 * plus the directory's group when that group may write it (Debian's
 * /var/mail, root:mail 2775), root only in a directory nobody else may
 * write. The Delivered-To loop scan of the content runs as the user.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "mail/server.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/privs.h"

int local_mailbox_spool_privs(const char *dir, uid_t uid, gid_t gid,
                              enum local_mbox_privs *privs_r, gid_t *extra_r,
                              struct local_result *res)
{
    struct stat st;
    bool root = privs_running_as_root();

    *extra_r = (gid_t)-1;
    if (stat(dir, &st) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "cannot access mail spool directory %s: %m", dir);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        local_result_set(res, DELIVER_DEFER, "4.3.5",
                         "mail_spool_directory %s is not a directory", dir);
        return -1;
    }
    if (st.st_uid != 0 && st.st_uid != (root ? 0 : getuid())) {
        local_result_set(res, DELIVER_DEFER, "4.3.5",
                         "mail spool directory %s: unsafe owner uid %ld", dir,
                         (long)st.st_uid);
        return -1;
    }
    if ((st.st_mode & S_IWOTH) && !(st.st_mode & S_ISVTX)) {
        local_result_set(res, DELIVER_DEFER, "4.3.5",
                         "mail spool directory %s: world-writable without the "
                         "sticky bit", dir);
        return -1;
    }
    *privs_r = LOCAL_MBOX_AS_USER;
    if (!root)
        return 0;
    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)uid);
        return -1;
    }
    bool user_may = faccessat(AT_FDCWD, dir, W_OK | X_OK, AT_EACCESS) == 0;
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();
    if (user_may)
        return 0;
    if ((st.st_mode & (S_IWGRP | S_IXGRP)) == (S_IWGRP | S_IXGRP) && st.st_gid != 0) {
        *privs_r = LOCAL_MBOX_AS_GROUP;
        *extra_r = st.st_gid;
    } else {
        *privs_r = LOCAL_MBOX_AS_ROOT;
    }
    return 0;
}

/* mailbox_loop - has the message passed through this recipient already?
   The content is parsed with the user's IDs. */
static bool mailbox_loop(const struct local_request *r, uid_t uid, gid_t gid,
                         struct local_result *res)
{
    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)uid);
        return true;
    }
    bool loop = local_delivered_to(r);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();
    if (loop)
        local_result_set(res, DELIVER_BOUNCE, "5.4.6", "mail forwarding loop for %s",
                         r->recipient);
    return loop;
}

/* mailbox_home_ok - local_home_ok with the user's IDs */
static bool mailbox_home_ok(const char *home, uid_t uid, gid_t gid,
                            struct local_result *res)
{
    bool ok;

    if (privs_become(uid, gid) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot switch to uid %ld: %m",
                         (long)uid);
        return false;
    }
    ok = local_home_ok(home, res);
    if (privs_restore() < 0)
        log_fatal("cannot restore root privileges: %m");
    server_pdeathsig_renew();
    return ok;
}

void local_mailbox(const struct local_request *r, const struct mail_user *u,
                   struct local_result *res)
{
    size_t hm = strlen(var_home_mailbox);
    struct local_mbox_target t = {
        .uid = u->uid, .gid = u->gid, .extra_gid = (gid_t)-1,
        .open_privs = LOCAL_MBOX_AS_USER, .must_own = true,
        .success = "delivered to mailbox",
    };
    const char *why;
    buf_t path;

    if (hm > 0 && var_home_mailbox[hm - 1] == '/') {
        local_maildir(r, u->name, u->uid, u->gid, u->home, res);
        return;
    }
    if (privs_running_as_root() && u->uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to deliver as root for \"%s\": alias it to a user",
                         u->name);
        return;
    }
    buf_init(&path, 0);
    if (hm > 0) {
        /* "/x" + home_mailbox must be a clean absolute path */
        buf_printf(&path, "/%s", var_home_mailbox);
        if (var_home_mailbox[0] == '/' || !local_mbox_path_ok(buf_str(&path), &why)) {
            local_result_set(res, DELIVER_DEFER, "4.3.5",
                             "home_mailbox \"%s\" must be a path relative to the "
                             "home directory, without . or .. components",
                             var_home_mailbox);
            buf_free(&path);
            return;
        }
        buf_reset(&path);
        buf_printf(&path, "%s/%s", u->home, var_home_mailbox);
        t.dotlock_may_fail = true;
        if (!mailbox_home_ok(u->home, u->uid, u->gid, res)) {
            buf_free(&path);
            return;
        }
    } else {
        size_t sl = strlen(var_mail_spool_directory);
        if (sl == 0 || var_mail_spool_directory[0] != '/'
            || var_mail_spool_directory[sl - 1] == '/') {
            local_result_set(res, DELIVER_DEFER, "4.3.5",
                             "mail_spool_directory \"%s\": an absolute directory "
                             "without a trailing / is supported (mbox files)",
                             var_mail_spool_directory);
            buf_free(&path);
            return;
        }
        if (u->name[0] == '\0' || u->name[0] == '.' || strchr(u->name, '/')) {
            local_result_set(res, DELIVER_DEFER, "4.3.0",
                             "user name \"%.100s\" cannot name a spool mailbox", u->name);
            buf_free(&path);
            return;
        }
        if (local_mailbox_spool_privs(var_mail_spool_directory, u->uid, u->gid,
                                      &t.open_privs, &t.extra_gid, res) < 0) {
            buf_free(&path);
            return;
        }
        buf_printf(&path, "%s/%s", var_mail_spool_directory, u->name);
    }
    t.path = buf_str(&path);
    if (!mailbox_loop(r, u->uid, u->gid, res))
        local_mbox_deliver(r, &t, res);
    buf_free(&path);
}
