/*
 * test_privs - unit tests for lib/privs.c. As non-root every call is a
 * no-op that succeeds; as root (CI), forked children drop to "nobody"
 * into a chroot and switch effective IDs back and forth, and report what
 * they saw through their exit status.
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/privs.h"
#include "util/util.h"

static char tmpdir[64];
static uid_t nobody_uid;
static gid_t nobody_gid;

static void setup(void)
{
    str_copy(tmpdir, "/tmp/test_privs.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    if (privs_lookup_user("nobody", &nobody_uid, &nobody_gid) < 0) {
        nobody_uid = 65534;
        nobody_gid = 65534;
    }
}

static void teardown(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/owned", tmpdir);
    unlink(path);
    rmdir(tmpdir);
}

/* run fn in a child; its exit status is the number of the failed check */
static int in_child(int (*fn)(void))
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(fn());
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert_msg(WIFEXITED(status), "child died with signal");
    return WEXITSTATUS(status);
}

START_TEST(test_lookup_user)
{
    uid_t u;
    gid_t g;
    ck_assert_int_eq(privs_lookup_user("root", &u, &g), 0);
    ck_assert_int_eq(u, 0);
    ck_assert_int_eq(g, 0);
    ck_assert_int_eq(privs_lookup_user("no-such-user-xq7", &u, &g), -1);
    ck_assert_int_eq(privs_lookup_user("", &u, &g), -1);
}
END_TEST

static int child_nonroot_noops(void)
{
    const char *why = NULL;
    uid_t uid = getuid();
    if (privs_running_as_root())
        return 1;
    if (privs_drop(0, 0, "/nonexistent", &why) != 0)
        return 2;
    if (privs_become(0, 0) != 0 || getuid() != uid || geteuid() != uid)
        return 3;
    if (privs_restore() != 0 || geteuid() != uid)
        return 4;
    return 0;
}

/* non-root: every call is a successful no-op (as root: run it as nobody) */
static int child_drop_then_noops(void)
{
    const char *why;
    if (getuid() == 0 && privs_drop(nobody_uid, nobody_gid, NULL, &why) != 0)
        return 10;
    return child_nonroot_noops();
}

START_TEST(test_nonroot_noops)
{
    ck_assert_int_eq(in_child(child_drop_then_noops), 0);
}
END_TEST

static int child_drop_chroot(void)
{
    const char *why = NULL;
    if (privs_drop(nobody_uid, nobody_gid, tmpdir, &why) != 0) {
        fprintf(stderr, "privs_drop: %s\n", why);
        return 1;
    }
    if (getuid() != nobody_uid || geteuid() != nobody_uid)
        return 2;
    if (getgid() != nobody_gid || getegid() != nobody_gid)
        return 3;
    gid_t groups[64];
    int n = getgroups(64, groups);
    if (n != 1 || groups[0] != nobody_gid)
        return 4;
    if (access("/etc/passwd", F_OK) == 0 || errno != ENOENT)
        return 5;
    char cwd[64];
    if (getcwd(cwd, sizeof(cwd)) == NULL || strcmp(cwd, "/") != 0)
        return 6;
    if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0)
        return 7;
    if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
        return 8;
    if (privs_running_as_root())
        return 9;
    return 0;
}

START_TEST(test_drop_chroot)
{
    TERN_SKIP_UNLESS_ROOT();   /* CI runs as root */
    ck_assert_int_eq(chmod(tmpdir, 0755), 0);   /* nobody may search "/" */
    ck_assert_int_eq(in_child(child_drop_chroot), 0);
}
END_TEST

static int child_drop_no_chroot(void)
{
    const char *why = NULL;
    if (privs_drop(nobody_uid, nobody_gid, NULL, &why) != 0)
        return 1;
    if (access("/etc/passwd", F_OK) != 0)   /* no chroot: still visible */
        return 2;
    if (getuid() != nobody_uid || getgid() != nobody_gid)
        return 3;
    return 0;
}

static int child_drop_bad_chroot(void)
{
    const char *why = NULL;
    if (privs_drop(nobody_uid, nobody_gid, "/nonexistent/dir", &why) != -1)
        return 1;
    if (why == NULL || strstr(why, "chroot") == NULL)
        return 2;
    if (getuid() != 0)   /* nothing changed */
        return 3;
    return 0;
}

START_TEST(test_drop_variants)
{
    TERN_SKIP_UNLESS_ROOT();
    ck_assert_int_eq(in_child(child_drop_no_chroot), 0);
    ck_assert_int_eq(in_child(child_drop_bad_chroot), 0);
}
END_TEST

static int child_become_restore(void)
{
    gid_t before[256];
    int nbefore = getgroups(256, before);
    gid_t egid_before = getegid();
    if (nbefore < 0)
        return 1;
    for (int round = 0; round < 2; round++) {
        if (privs_become(nobody_uid, nobody_gid) != 0)
            return 2;
        if (getuid() != 0 || geteuid() != nobody_uid
            || getegid() != nobody_gid)
            return 3;
        gid_t g[8];
        if (getgroups(8, g) != 1 || g[0] != nobody_gid)
            return 4;
        /* no longer root: the 0700 root directory is closed to us */
        char path[128];
        snprintf(path, sizeof(path), "%s/owned", tmpdir);
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd >= 0) {   /* tmpdir is 0700 root: expect EACCES */
            close(fd);
            return 5;
        }
        if (errno != EACCES)
            return 6;
        if (privs_restore() != 0)
            return 7;
        if (geteuid() != 0 || getegid() != egid_before)
            return 8;
        gid_t after[256];
        int nafter = getgroups(256, after);
        if (nafter != nbefore
            || memcmp(after, before, (size_t)nafter * sizeof(gid_t)) != 0)
            return 9;
        /* root again: can create the file, and chown it to nobody */
        int fd2 = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd2 < 0)
            return 10;
        close(fd2);
        unlink(path);
    }
    /* become twice without restore in between, then drop for good */
    if (privs_become(nobody_uid, nobody_gid) != 0
        || privs_become(1, 1) != 0 || geteuid() != 1 || getegid() != 1)
        return 11;
    const char *why;
    if (privs_drop(nobody_uid, nobody_gid, NULL, &why) != 0
        || getuid() != nobody_uid)
        return 12;
    return 0;
}

START_TEST(test_become_restore)
{
    TERN_SKIP_UNLESS_ROOT();
    ck_assert_int_eq(chmod(tmpdir, 0700), 0);
    ck_assert_int_eq(in_child(child_become_restore), 0);
}
END_TEST

static Suite *privs_suite(void)
{
    Suite *s = suite_create("privs");
    TCase *tc = tcase_create("privs");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_lookup_user);
    tcase_add_test(tc, test_nonroot_noops);
    tcase_add_test(tc, test_drop_chroot);
    tcase_add_test(tc, test_drop_variants);
    tcase_add_test(tc, test_become_restore);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(privs_suite(), true);
}
