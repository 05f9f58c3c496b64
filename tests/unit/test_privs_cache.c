/*
 * test_privs_cache - unit tests for the account and group-list cache in
 * lib/util/privs.c: hits, expiry (positive and negative lifetimes, on a
 * test clock: nothing sleeps), different users and keys, the bound on
 * entries, lifetime 0, and (as root) that privs_become sets the cached
 * list, never root's groups. Only existing accounts (root, nobody) and
 * names that do not exist are looked up: no account is created.
 */
#include <check.h>

#include "check_main.h"
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/privs.h"
#include "util/util.h"

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static void setup(void)
{
    fake_now = 1000000;
    privs_cache_set_clock(fake_clock);
    privs_cache_set_lifetime(PRIVS_CACHE_LIFETIME, PRIVS_CACHE_NEG_LIFETIME);
    privs_cache_flush();
}

static void teardown(void)
{
    privs_cache_flush();
    privs_cache_set_clock(NULL);
}

static unsigned long account_lookups(void)
{
    struct privs_cache_stats st;
    privs_cache_stats(&st);
    return st.account_lookups;
}

static unsigned long group_lookups(void)
{
    struct privs_cache_stats st;
    privs_cache_stats(&st);
    return st.group_lookups;
}

START_TEST(test_account_hit)
{
    struct privs_account a;
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(a.uid, 0);
    ck_assert_str_eq(a.name, "root");
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(a.uid, 0);
    ck_assert_uint_eq(account_lookups(), 1);
    /* privs_lookup_user goes through the same cache */
    uid_t u;
    gid_t g;
    ck_assert_int_eq(privs_lookup_user("root", &u, &g), 0);
    ck_assert_int_eq(u, 0);
    ck_assert_uint_eq(account_lookups(), 1);
    /* by uid is a key of its own */
    ck_assert_int_eq(privs_account_by_uid(0, &a), 1);
    ck_assert_str_eq(a.name, "root");
    ck_assert_int_eq(privs_account_by_uid(0, &a), 1);
    ck_assert_uint_eq(account_lookups(), 2);
}
END_TEST

START_TEST(test_account_expiry)
{
    struct privs_account a;
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    fake_now += PRIVS_CACHE_LIFETIME * 1000 - 1;
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_uint_eq(account_lookups(), 1);
    fake_now += 1;      /* the lifetime is over: asked again */
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(a.uid, 0);
    ck_assert_uint_eq(account_lookups(), 2);
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_uint_eq(account_lookups(), 2);
}
END_TEST

START_TEST(test_account_negative)
{
    struct privs_account a;
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_uint_eq(account_lookups(), 1);
    /* "no such account" lives shorter: an account added is seen soon */
    fake_now += PRIVS_CACHE_NEG_LIFETIME * 1000 - 1;
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_uint_eq(account_lookups(), 1);
    fake_now += 1;
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_uint_eq(account_lookups(), 2);
    /* the empty name is never an account, and never asked */
    ck_assert_int_eq(privs_account_by_name("", &a), 0);
    ck_assert_uint_eq(account_lookups(), 2);
    uid_t u;
    gid_t g;
    ck_assert_int_eq(privs_lookup_user("no-such-user-xq7", &u, &g), -1);
}
END_TEST

START_TEST(test_account_different_users)
{
    struct privs_account a;
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        return;         /* no such account here: nothing to compare */
    uid_t nobody = pw->pw_uid;
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(privs_account_by_name("nobody", &a), 1);
    ck_assert_int_eq(a.uid, nobody);
    ck_assert_str_eq(a.name, "nobody");
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(a.uid, 0);
    ck_assert_int_eq(privs_account_by_name("nobody", &a), 1);
    ck_assert_int_eq(a.uid, nobody);
    ck_assert_uint_eq(account_lookups(), 2);
}
END_TEST

START_TEST(test_account_bounded)
{
    struct privs_account a;
    char name[64];
    /* more names than slots: the cache stays bounded, the oldest goes */
    for (int i = 0; i < PRIVS_CACHE_SLOTS + 4; i++) {
        snprintf(name, sizeof(name), "no-such-user-%d", i);
        ck_assert_int_eq(privs_account_by_name(name, &a), 0);
        fake_now += 10;
    }
    ck_assert_uint_eq(account_lookups(), PRIVS_CACHE_SLOTS + 4);
    snprintf(name, sizeof(name), "no-such-user-%d", PRIVS_CACHE_SLOTS + 3);
    ck_assert_int_eq(privs_account_by_name(name, &a), 0);
    ck_assert_uint_eq(account_lookups(), PRIVS_CACHE_SLOTS + 4);
    ck_assert_int_eq(privs_account_by_name("no-such-user-0", &a), 0);
    ck_assert_uint_eq(account_lookups(), PRIVS_CACHE_SLOTS + 5);
}
END_TEST

START_TEST(test_lifetime_zero)
{
    struct privs_account a;
    privs_cache_set_lifetime(0, 0);
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(privs_account_by_name("root", &a), 1);
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_int_eq(privs_account_by_name("no-such-user-xq7", &a), 0);
    ck_assert_uint_eq(account_lookups(), 4);
    int n;
    free(privs_groups(0, 0, (gid_t)-1, &n));
    free(privs_groups(0, 0, (gid_t)-1, &n));
    ck_assert_uint_eq(group_lookups(), 2);
}
END_TEST

/* same_set - the groups as sets (getgrouplist's order may differ) */
static void assert_same_set(const gid_t *a, int na, const gid_t *b, int nb)
{
    ck_assert_int_eq(na, nb);
    for (int i = 0; i < na; i++) {
        bool found = false;
        for (int j = 0; j < nb; j++)
            found = found || a[i] == b[j];
        ck_assert_msg(found, "group %ld missing", (long)a[i]);
    }
}

START_TEST(test_groups_hit_and_expiry)
{
    gid_t direct[256];
    int ndirect = 256;
    ck_assert_int_ge(getgrouplist("root", 0, direct, &ndirect), 1);
    int n;
    gid_t *g = privs_groups(0, 0, (gid_t)-1, &n);
    assert_same_set(g, n, direct, ndirect);
    ck_assert_int_eq(g[0], 0);
    free(g);
    g = privs_groups(0, 0, (gid_t)-1, &n);
    assert_same_set(g, n, direct, ndirect);
    free(g);
    ck_assert_uint_eq(group_lookups(), 1);
    fake_now += PRIVS_CACHE_LIFETIME * 1000;
    g = privs_groups(0, 0, (gid_t)-1, &n);
    assert_same_set(g, n, direct, ndirect);
    free(g);
    ck_assert_uint_eq(group_lookups(), 2);
}
END_TEST

START_TEST(test_groups_keys)
{
    int n;
    struct passwd *pw = getpwnam("nobody");
    gid_t *g = privs_groups(0, 0, (gid_t)-1, &n);
    free(g);
    /* another extra group is another list, with that group in it */
    g = privs_groups(0, 0, 4242, &n);
    bool have = false;
    for (int i = 0; i < n; i++)
        have = have || g[i] == 4242;
    ck_assert(have);
    free(g);
    ck_assert_uint_eq(group_lookups(), 2);
    if (pw != NULL) {
        gid_t direct[256];
        int ndirect = 256;
        ck_assert_int_ge(getgrouplist("nobody", pw->pw_gid, direct, &ndirect), 1);
        g = privs_groups(pw->pw_uid, pw->pw_gid, (gid_t)-1, &n);
        assert_same_set(g, n, direct, ndirect);
        for (int i = 0; i < n; i++)
            ck_assert_int_ne(g[i], 0);  /* root's group is not nobody's */
        free(g);
        ck_assert_uint_eq(group_lookups(), 3);
    }
    /* a uid without an account: its gid alone, for the shorter time */
    g = privs_groups(3999999, 3999998, (gid_t)-1, &n);
    ck_assert_int_eq(n, 1);
    ck_assert_int_eq(g[0], 3999998);
    free(g);
    unsigned long before = group_lookups();
    fake_now += PRIVS_CACHE_NEG_LIFETIME * 1000 - 1;
    free(privs_groups(3999999, 3999998, (gid_t)-1, &n));
    ck_assert_uint_eq(group_lookups(), before);
    fake_now += 1;
    free(privs_groups(3999999, 3999998, (gid_t)-1, &n));
    ck_assert_uint_eq(group_lookups(), before + 1);
}
END_TEST

/* as root in a child: become nobody twice (one lookup), with root's
   groups set to something else first: the user's list replaces them */
static int child_become_cached(void)
{
    struct passwd *pw = getpwnam("nobody");
    if (pw == NULL)
        return 0;
    gid_t mine[2] = { 0, 4242 };
    if (setgroups(2, mine) < 0)
        return 1;
    gid_t direct[256];
    int ndirect = 256;
    if (getgrouplist("nobody", pw->pw_gid, direct, &ndirect) < 1)
        return 2;
    for (int round = 0; round < 3; round++) {
        if (privs_become(pw->pw_uid, pw->pw_gid) != 0)
            return 3;
        gid_t g[256];
        int n = getgroups(256, g);
        if (n != ndirect)
            return 4;
        for (int i = 0; i < n; i++)
            if (g[i] == 0 || g[i] == 4242)
                return 5;
        if (privs_restore() != 0)
            return 6;
        n = getgroups(256, g);
        if (n != 2 || g[0] != 0 || g[1] != 4242)
            return 7;
    }
    if (group_lookups() != 1)
        return 8;
    return 0;
}

START_TEST(test_become_uses_cache)
{
    TERN_SKIP_UNLESS_ROOT();
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        _exit(child_become_cached());
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
}
END_TEST

static Suite *privs_cache_suite(void)
{
    Suite *s = suite_create("privs_cache");
    TCase *tc = tcase_create("cache");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_account_hit);
    tcase_add_test(tc, test_account_expiry);
    tcase_add_test(tc, test_account_negative);
    tcase_add_test(tc, test_account_different_users);
    tcase_add_test(tc, test_account_bounded);
    tcase_add_test(tc, test_lifetime_zero);
    tcase_add_test(tc, test_groups_hit_and_expiry);
    tcase_add_test(tc, test_groups_keys);
    tcase_add_test(tc, test_become_uses_cache);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(privs_cache_suite(), true);
}
