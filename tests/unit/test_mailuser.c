/*
 * test_mailuser - unit tests for lib/mailuser.c: virtual user table
 * entries (good and malformed), the password-file fallback, local
 * domains, "user+ext" splitting, and whether a local part exists via
 * aliases, virtual users or system users. Tables are built with
 * dict_lmdb_build in a temporary directory.
 */
#include <check.h>

#include "check_main.h"
#include <ftw.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_build.h"
#include "mail/mailuser.h"
#include "util/privs.h"
#include "util/util.h"

static char tmpdir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag,
                    struct FTW *ftw)
{
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

static void set_var(char **var, const char *value)
{
    free(*var);
    *var = xstrdup(value);
}

/* write tmpdir/name and build it (aliases format or plain) */
static void make_table(const char *name, const char *text, bool aliases)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    ck_assert_int_eq(fclose(fp), 0);
    buf_t err = BUF_INIT;
    ck_assert_msg(dict_lmdb_build(path, aliases, &err) == 0, "%s",
                  buf_str(&err));
    buf_free(&err);
}

static void set_table_var(char **var, const char *name)
{
    char spec[160];
    snprintf(spec, sizeof(spec), "lmdb:%s/%s", tmpdir, name);
    set_var(var, spec);
}

static void setup(void)
{
    str_copy(tmpdir, "/tmp/test_mailuser.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    config_init_defaults();
    make_table("vusers",
               "alice 2000:2000:/home/vmail/alice:$6$salt$hash\n"
               "bob 2001:2002:/srv/bob\n"
               "zero 0:0:/\n"
               "maxid 4294967294:4294967294:/x\n"
               "badnum x:1:/h\n"
               "neg -1:1:/h\n"
               "minusid 4294967295:1:/h\n"
               "huge 99999999999999999999:1:/h\n"
               "relhome 1:1:home\n"
               "emptyhome 1:1:\n"
               "short 1:1\n"
               "one 1\n"
               "spaced 1 :1:/h\n"
               "emptyuid :1:/h\n"
               "plus +1:1:/h\n",
               false);
    make_table("aliases",
               "postmaster: root\n"
               "info: alice\n"
               "sales+eu: bob\n"
               "team: alice, bob\n",
               true);
    set_table_var(&var_virtual_user_maps, "vusers");
    set_table_var(&var_alias_maps, "aliases");
    set_var(&var_recipient_delimiter, "+");
    ck_assert_int_eq(mailuser_init(), 0);
}

static void teardown(void)
{
    config_free();
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- mailuser_lookup ------------------------------------------------------- */

START_TEST(test_lookup_virtual)
{
    struct mail_user u;
    ck_assert_int_eq(mailuser_lookup("alice", &u), 1);
    ck_assert_str_eq(u.name, "alice");
    ck_assert_int_eq(u.uid, 2000);
    ck_assert_int_eq(u.gid, 2000);
    ck_assert_str_eq(u.home, "/home/vmail/alice");
    ck_assert_int_eq(mailuser_lookup("BOB", &u), 1);
    ck_assert_int_eq(u.uid, 2001);
    ck_assert_int_eq(u.gid, 2002);
    ck_assert_str_eq(u.home, "/srv/bob");
    ck_assert_int_eq(mailuser_lookup("zero", &u), 1);
    ck_assert_int_eq(u.uid, 0);
    ck_assert_str_eq(u.home, "/");
    ck_assert_int_eq(mailuser_lookup("maxid", &u), 1);
    ck_assert_uint_eq(u.uid, 4294967294u);
}
END_TEST

static const char *malformed_users[] = {
    "badnum", "neg", "minusid", "huge", "relhome", "emptyhome", "short",
    "one", "spaced", "emptyuid", "plus",
};

START_TEST(test_lookup_malformed)
{
    struct mail_user u;
    ck_assert_msg(mailuser_lookup(malformed_users[_i], &u) == -1,
                  "%s should defer", malformed_users[_i]);
}
END_TEST

START_TEST(test_lookup_passwd)
{
    struct mail_user u;
    struct passwd *pw = getpwnam("root");
    ck_assert_ptr_nonnull(pw);
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    ck_assert_int_eq(u.uid, 0);
    ck_assert_int_eq(u.gid, pw->pw_gid);
    ck_assert_str_eq(u.home, pw->pw_dir);
    ck_assert_str_eq(u.name, "root");
    ck_assert_int_eq(mailuser_lookup("no-such-user-q9z", &u), 0);
    ck_assert_int_eq(mailuser_lookup("", &u), 0);
    char longname[600];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(mailuser_lookup(longname, &u), 0);
}
END_TEST

static uint64_t fake_now;

static uint64_t fake_clock(void)
{
    return fake_now;
}

static unsigned long account_lookups(void)
{
    struct privs_cache_stats st;
    privs_cache_stats(&st);
    return st.account_lookups;
}

/* system users come from privs' cache: answered once per lifetime, and
   "no such user" asked again after the shorter one (so an account added
   to /etc/passwd is found within PRIVS_CACHE_NEG_LIFETIME seconds) */
START_TEST(test_lookup_passwd_cached)
{
    struct mail_user u;
    fake_now = 5000;
    privs_cache_set_clock(fake_clock);
    privs_cache_flush();
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    ck_assert_int_eq(u.uid, 0);
    ck_assert_int_eq(mailuser_lookup("no-such-user-q9z", &u), 0);
    ck_assert_int_eq(mailuser_lookup("no-such-user-q9z", &u), 0);
    ck_assert_uint_eq(account_lookups(), 2);
    fake_now += PRIVS_CACHE_NEG_LIFETIME * 1000;
    ck_assert_int_eq(mailuser_lookup("no-such-user-q9z", &u), 0);
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    ck_assert_uint_eq(account_lookups(), 3);
    fake_now += PRIVS_CACHE_LIFETIME * 1000;
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    ck_assert_str_eq(u.name, "root");
    ck_assert_uint_eq(account_lookups(), 4);
    privs_cache_flush();
    privs_cache_set_clock(NULL);
}
END_TEST

START_TEST(test_lookup_no_virtual_table)
{
    struct mail_user u;
    set_var(&var_virtual_user_maps, "");
    ck_assert_int_eq(mailuser_init(), 0);
    ck_assert_int_eq(mailuser_lookup("alice", &u), 0);
    ck_assert_int_eq(mailuser_lookup("root", &u), 1);
    set_var(&var_virtual_user_maps, "inline:{carol=7:8:/c}");
    ck_assert_int_eq(mailuser_init(), 0);
    ck_assert_int_eq(mailuser_lookup("Carol", &u), 1);
    ck_assert_int_eq(u.uid, 7);
    ck_assert_int_eq(u.gid, 8);
}
END_TEST

/* ---- mailuser_domain_is_local ------------------------------------------- */

static const struct {
    const char *domain;
    bool local;
} domain_cases[] = {
    { "example.com", true },
    { "EXAMPLE.COM", true },
    { "example.com.", true },
    { "mail.example.com", true },
    { "Localhost", true },
    { "xexample.com", false },
    { "example.co", false },
    { "example.com..", false },
    { "com", false },
    { "", false },
    { ".", false },
    { "example.com extra", false },
    { "[127.0.0.1]", false },
};

START_TEST(test_domain_is_local)
{
    set_var(&var_mydestination, "example.com, Mail.Example.COM\tlocalhost,");
    ck_assert_msg(mailuser_domain_is_local(domain_cases[_i].domain)
                  == domain_cases[_i].local, "%s", domain_cases[_i].domain);
}
END_TEST

START_TEST(test_domain_empty_destination)
{
    set_var(&var_mydestination, "");
    ck_assert(!mailuser_domain_is_local("example.com"));
    ck_assert(!mailuser_domain_is_local(""));
}
END_TEST

/* ---- mailuser_base_local ---------------------------------------------------- */

static const struct {
    const char *local, *delims, *base;
} base_cases[] = {
    { "User+ext", "+", "user" },
    { "user", "+", "user" },
    { "user+", "+", "user" },
    { "a+b+c", "+", "a" },
    { "+user", "+", "+user" },
    { "+", "+", "+" },
    { "", "+", "" },
    { "a-b+c", "+-", "a" },
    { "a+b-c", "-+", "a" },
    { "foo-bar", "-", "foo" },
    { "owner-list", "-", "owner-list" },
    { "list-request", "-", "list-request" },
    { "Owner-List", "+-", "owner-list" },
    { "list-request", "+", "list-request" },
    { "owner-list+x", "+", "owner-list" },
    { "Foo+Bar", "", "foo+bar" },
    { "x=y", "=", "x" },
};

START_TEST(test_base_local)
{
    char out[256];
    set_var(&var_recipient_delimiter, base_cases[_i].delims);
    mailuser_base_local(base_cases[_i].local, out, sizeof(out));
    ck_assert_msg(strcmp(out, base_cases[_i].base) == 0,
                  "%s with \"%s\": got \"%s\", want \"%s\"",
                  base_cases[_i].local, base_cases[_i].delims, out,
                  base_cases[_i].base);
}
END_TEST

START_TEST(test_base_local_truncates)
{
    char out[4] = "zzz";
    mailuser_base_local("ABCDEF+x", out, sizeof(out));
    ck_assert_str_eq(out, "abc");
    mailuser_base_local("ABCDEF", out, 0);   /* size 0: untouched */
    ck_assert_str_eq(out, "abc");
    char one[1];
    mailuser_base_local("A", one, 1);
    ck_assert_str_eq(one, "");
}
END_TEST

/* ---- mailuser_local_exists ------------------------------------------------- */

static const struct {
    const char *local;
    int want;
} exists_cases[] = {
    { "postmaster", 1 },      /* alias */
    { "PostMaster", 1 },
    { "info+tag", 1 },        /* alias of the base */
    { "sales+eu", 1 },        /* alias with the full local part */
    { "sales", 0 },
    { "sales+us", 0 },
    { "team", 1 },
    { "alice", 1 },           /* virtual user */
    { "Alice+folder", 1 },
    { "root", 1 },            /* system user */
    { "root+x", 1 },
    { "no-such-user-q9z", 0 },
    { "", 0 },
    { "relhome", -1 },        /* malformed virtual entry: defer */
    { "relhome+x", -1 },
};

START_TEST(test_local_exists)
{
    ck_assert_msg(mailuser_local_exists(exists_cases[_i].local)
                  == exists_cases[_i].want, "%s", exists_cases[_i].local);
}
END_TEST

START_TEST(test_local_exists_overlong)
{
    char longname[1000];
    memset(longname, 'r', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    ck_assert_int_eq(mailuser_local_exists(longname), 0);
}
END_TEST

static uint64_t alias_clock;
static uint64_t alias_clock_now(void)
{
    return alias_clock;
}

START_TEST(test_alias_table_missing)
{
    alias_clock = 1000000;
    dict_set_clock(alias_clock_now);
    set_table_var(&var_alias_maps, "not-built-yet");
    ck_assert_int_eq(mailuser_init(), 0);     /* only a warning */
    /* every recipient is a temporary failure (451 4.3.0), never "user
       unknown": aliases might have said where postmaster or alice go */
    ck_assert_int_eq(mailuser_local_exists("postmaster"), -1);
    ck_assert_int_eq(mailuser_local_exists("alice"), -1);
    /* newaliases runs later: the table is picked up within a second */
    make_table("not-built-yet", "postmaster: root\n", true);
    alias_clock += 1000;
    ck_assert_int_eq(mailuser_local_exists("postmaster"), 1);
    ck_assert_int_eq(mailuser_local_exists("alice"), 1);
    dict_set_clock(NULL);
}
END_TEST

START_TEST(test_bad_table_specs)
{
    set_var(&var_alias_maps, "bogus:/x");
    ck_assert_int_eq(mailuser_init(), -1);
    set_table_var(&var_alias_maps, "aliases");
    set_var(&var_virtual_user_maps, "inline:{broken");
    ck_assert_int_eq(mailuser_init(), -1);
    set_table_var(&var_virtual_user_maps, "missing-users");
    ck_assert_int_eq(mailuser_init(), -1);   /* only aliases may be late */
    set_table_var(&var_virtual_user_maps, "vusers");
    ck_assert_int_eq(mailuser_init(), 0);
}
END_TEST

/* ---- through main.conf -------------------------------------------------------- */

START_TEST(test_via_main_conf)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fprintf(fp, "myhostname = host.example.net\n"
                "mydestination = $myhostname, Example.ORG\n"
                "recipient_delimiter = -+\n"
                "virtual_user_maps = lmdb:%s/vusers\n"
                "alias_maps = lmdb:$config_directory/aliases\n", tmpdir);
    ck_assert_int_eq(fclose(fp), 0);
    buf_t err = BUF_INIT;
    ck_assert_msg(config_load(tmpdir, &err) == 0, "%s", buf_str(&err));
    buf_free(&err);
    ck_assert_int_eq(mailuser_init(), 0);
    ck_assert(mailuser_domain_is_local("HOST.example.net"));
    ck_assert(mailuser_domain_is_local("example.org"));
    ck_assert(!mailuser_domain_is_local("example.net"));
    char out[64];
    mailuser_base_local("Bob-Lists+x", out, sizeof(out));
    ck_assert_str_eq(out, "bob");
    ck_assert_int_eq(mailuser_local_exists("bob-lists"), 1);
    ck_assert_int_eq(mailuser_local_exists("info-x"), 1);
    ck_assert_int_eq(mailuser_local_exists("carol-x"), 0);
}
END_TEST

static Suite *mailuser_suite(void)
{
    Suite *s = suite_create("mailuser");
    TCase *tc = tcase_create("mailuser");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_lookup_virtual);
    tcase_add_loop_test(tc, test_lookup_malformed, 0,
                        sizeof(malformed_users) / sizeof(malformed_users[0]));
    tcase_add_test(tc, test_lookup_passwd);
    tcase_add_test(tc, test_lookup_passwd_cached);
    tcase_add_test(tc, test_lookup_no_virtual_table);
    tcase_add_loop_test(tc, test_domain_is_local, 0,
                        sizeof(domain_cases) / sizeof(domain_cases[0]));
    tcase_add_test(tc, test_domain_empty_destination);
    tcase_add_loop_test(tc, test_base_local, 0,
                        sizeof(base_cases) / sizeof(base_cases[0]));
    tcase_add_test(tc, test_base_local_truncates);
    tcase_add_loop_test(tc, test_local_exists, 0,
                        sizeof(exists_cases) / sizeof(exists_cases[0]));
    tcase_add_test(tc, test_local_exists_overlong);
    tcase_add_test(tc, test_alias_table_missing);
    tcase_add_test(tc, test_bad_table_specs);
    tcase_add_test(tc, test_via_main_conf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(mailuser_suite(), true);
}
