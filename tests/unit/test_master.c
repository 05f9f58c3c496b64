/*
 * test_master - the supervisor's pure logic (master/master_logic.c):
 * back-off, rate limit, demand decisions, child argv, exit wording,
 * socket paths and listener addresses, entry comparison.
 */
#include <check.h>

#include "check_main.h"
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "../../master/master_logic.c"

/* ---- back-off and rate limit -------------------------------------------- */

START_TEST(test_backoff)
{
    static const struct { long cur, max, want; } t[] = {
        { 0, 60, 1 }, { 1, 60, 2 }, { 2, 60, 4 }, { 4, 60, 8 },
        { 16, 60, 32 }, { 32, 60, 60 }, { 60, 60, 60 }, { 500, 60, 60 },
        { -5, 60, 1 }, { 1, 0, 1 }, { 1, -3, 1 }, { 2, 5, 4 }, { 3, 5, 5 },
        { LONG_MAX / 2 + 5, LONG_MAX, LONG_MAX }, { LONG_MAX, LONG_MAX, LONG_MAX },
        { LONG_MIN, 10, 1 },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(master_backoff_next(t[i].cur, t[i].max) == t[i].want,
                      "case %zu: backoff(%ld, %ld) = %ld, want %ld", i,
                      t[i].cur, t[i].max,
                      master_backoff_next(t[i].cur, t[i].max), t[i].want);
}
END_TEST

START_TEST(test_backoff_sequence)
{
    long b = 0, seen[8];

    for (int i = 0; i < 8; i++)
        seen[i] = b = master_backoff_next(b, 60);
    ck_assert_int_eq(seen[0], 1);
    ck_assert_int_eq(seen[1], 2);
    ck_assert_int_eq(seen[5], 32);
    ck_assert_int_eq(seen[6], 60);
    ck_assert_int_eq(seen[7], 60);
}
END_TEST

START_TEST(test_rate)
{
    uint64_t last = 0;

    ck_assert(master_rate_ok(1000, &last, 60000));
    ck_assert(!master_rate_ok(1000, &last, 60000));
    ck_assert(!master_rate_ok(60999, &last, 60000));
    ck_assert(master_rate_ok(61000, &last, 60000));
    ck_assert(!master_rate_ok(61001, &last, 60000));
    last = 0;
    ck_assert(master_rate_ok(0, &last, 60000));    /* time 0 still counts */
    ck_assert(!master_rate_ok(5, &last, 60000));
}
END_TEST

/* ---- demand ------------------------------------------------------------- */

START_TEST(test_demand)
{
    /* spread 1 = a request/trigger server, or event_server_process_min 1 */
    static const struct {
        struct master_demand_state s;
        enum master_demand want;
    } t[] = {
        /* count avail fresh spread maxproc throttled reply */
        { { 0, 0, 0, 1, 100, false, false }, MASTER_DEMAND_WATCH },
        { { 0, 0, 0, 1, 0, false, false }, MASTER_DEMAND_WATCH }, /* no limit */
        { { 5000, 0, 0, 1, 0, false, false }, MASTER_DEMAND_WATCH },
        { { 1, 1, 1, 1, 100, false, false }, MASTER_DEMAND_IDLE }, /* newborn */
        { { 3, 2, 0, 1, 3, false, true }, MASTER_DEMAND_IDLE },
        { { 0, 0, 0, 1, 100, true, false }, MASTER_DEMAND_IDLE }, /* back-off */
        { { 3, 0, 0, 1, 3, true, true }, MASTER_DEMAND_IDLE },
        { { 2, 0, 0, 1, 3, false, false }, MASTER_DEMAND_WATCH },
        { { 3, 0, 0, 1, 3, false, false }, MASTER_DEMAND_FULL },
        { { 3, 0, 0, 1, 3, false, true }, MASTER_DEMAND_REJECT },
        { { 4, 0, 0, 1, 3, false, false }, MASTER_DEMAND_FULL }, /* lowered */
        { { 0, 0, 0, 1, -1, false, false }, MASTER_DEMAND_WATCH },
        /* spread: one busy-but-not-full event server, another wanted */
        { { 1, 1, 0, 2, 100, false, false }, MASTER_DEMAND_WATCH },
        { { 1, 1, 0, 1, 100, false, false }, MASTER_DEMAND_IDLE },
        { { 3, 3, 0, 4, 0, false, false }, MASTER_DEMAND_WATCH },
        { { 4, 4, 0, 4, 0, false, false }, MASTER_DEMAND_IDLE }, /* reached */
        { { 5, 5, 0, 4, 0, false, false }, MASTER_DEMAND_IDLE },
        /* a newborn has yet to take a client: one arrival, one fork */
        { { 2, 2, 1, 4, 100, false, false }, MASTER_DEMAND_IDLE },
        { { 2, 1, 1, 4, 100, false, false }, MASTER_DEMAND_IDLE },
        /* the limit still rules (a lowered maxproc) */
        { { 2, 2, 0, 4, 2, false, false }, MASTER_DEMAND_IDLE },
        { { 1, 1, 0, 4, 1, false, true }, MASTER_DEMAND_IDLE },
        /* back-off beats the spread */
        { { 1, 1, 0, 4, 100, true, false }, MASTER_DEMAND_IDLE },
        /* all full below the spread target: the old rule */
        { { 1, 0, 0, 4, 100, false, false }, MASTER_DEMAND_WATCH },
        { { 2, 0, 1, 4, 2, false, true }, MASTER_DEMAND_REJECT },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(master_demand_decide(&t[i].s) == t[i].want,
                      "case %zu", i);
}
END_TEST

START_TEST(test_spread_target)
{
    static const struct {
        long process_min, ncpu, maxproc;
        bool event;
        size_t want;
    } t[] = {
        { 0, 8, 100, true, 8 },         /* default: one per CPU */
        { 0, 8, 100, false, 1 },        /* request/trigger servers */
        { 3, 8, 100, false, 1 },
        { 2, 8, 100, true, 2 },
        { 1, 8, 100, true, 1 },
        { 0, 8, 1, true, 1 },           /* anvil: maxproc 1 */
        { 5, 8, 3, true, 3 },           /* capped by maxproc */
        { 0, 8, 0, true, 8 },           /* maxproc 0 = no limit */
        { 200, 2, 0, true, 200 },
        { 0, 0, 100, true, 1 },         /* sysconf failed */
        { 0, -1, 100, true, 1 },
        { -3, 4, 100, true, 4 },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        ck_assert_msg(master_spread_target(t[i].process_min, t[i].ncpu,
                                           t[i].maxproc, t[i].event)
                      == t[i].want, "case %zu", i);
}
END_TEST

/* ---- argv ------------------------------------------------------------------ */

static void check_argv(char **v, size_t n, const char *const *want)
{
    size_t i;

    for (i = 0; want[i]; i++) {
        ck_assert_msg(i < n, "argv too short at %zu", i);
        ck_assert_str_eq(v[i], want[i]);
    }
    ck_assert_uint_eq(i, n);
    ck_assert_ptr_null(v[n]);
}

START_TEST(test_argv)
{
    /* master's own -o COMMAND_overload_reply is not passed on */
    char *args[] = { "-o", "max_use=2", "-o", "smtpd_overload_reply=421_x",
                     "-l", "5", "-o", "smtpd_overload_reply = 421 y",
                     "-o", "smtpd_overload_replyx=1", NULL };
    struct master_entry e = {
        .service = "127.0.0.1:2525", .type = MASTER_INET, .private_ = false,
        .unpriv = true, .chroot = true, .maxproc = -1, .command = "smtpd",
        .args = args, .nargs = 10,
    };
    struct master_argv_opts o = { .foreground = true, .verbose = 2 };
    static const char *const want1[] = {
        "/usr/libexec/tern/smtpd", "-n", "127.0.0.1:2525", "-t", "inet",
        "-s", "2", "-u", "-c", "-z", "-v", "-v", "-o", "max_use=2", "-l",
        "5", "-o", "smtpd_overload_replyx=1", NULL };
    static const char *const want2[] = {
        "/x/qmgr", "-n", "qmgr", "-t", "unix", "-s", "1", NULL };
    size_t n;
    char **v = master_argv_build(&e, "/usr/libexec/tern/smtpd", 2, &o, &n);

    check_argv(v, n, want1);
    strv_free(v, n);

    e.service = "qmgr";
    e.type = MASTER_UNIX;
    e.unpriv = e.chroot = false;
    e.nargs = 0;
    e.args = NULL;
    o.foreground = false;
    o.verbose = 0;
    v = master_argv_build(&e, "/x/qmgr", 1, &o, &n);
    check_argv(v, n, want2);
    strv_free(v, n);
}
END_TEST

/* ---- chroot=y needs root ---------------------------------------------------- */

START_TEST(test_check_chroot)
{
    struct master_conf mc;
    buf_t err = BUF_INIT;

    ck_assert_int_eq(mastercf_parse_string(
        "smtp inet n - n - - smtpd\n"
        "qmgr unix n - y 300 1 qmgr\n", "t", &mc, &err), 0);
    ck_assert_int_eq(master_conf_check_chroot(&mc, true, &err), 0);
    ck_assert_int_eq(master_conf_check_chroot(&mc, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "master.conf:2:"));
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "service qmgr: chroot=y "
                                 "needs master to run as root"));
    mastercf_free(&mc);
    buf_reset(&err);
    ck_assert_int_eq(mastercf_parse_string("smtp inet n - n - - smtpd\n",
                                           "t", &mc, &err), 0);
    ck_assert_int_eq(master_conf_check_chroot(&mc, false, &err), 0);
    mastercf_free(&mc);
    buf_free(&err);
}
END_TEST

/* ---- exit status wording ------------------------------------------------------ */

START_TEST(test_exit_describe)
{
    buf_t b = BUF_INIT;

    ck_assert(!master_exit_describe(0, &b));                 /* exit 0 */
    ck_assert(master_exit_describe(1 << 8, &b));
    ck_assert_str_eq(buf_str(&b), "exit status 1");
    ck_assert(master_exit_describe(127 << 8, &b));
    ck_assert_str_eq(buf_str(&b), "exit status 127");
    ck_assert(master_exit_describe(9, &b));                  /* SIGKILL */
    ck_assert_str_eq(buf_str(&b), "killed by signal 9");
    ck_assert(master_exit_describe(6 | 0x80, &b));           /* core dumped */
    ck_assert_str_eq(buf_str(&b), "killed by signal 6");
    buf_free(&b);
}
END_TEST

/* ---- UNIX socket paths ----------------------------------------------------------- */

START_TEST(test_unix_path)
{
    static const struct { const char *name; bool priv; const char *want; } t[] = {
        { "qmgr", true, "private/qmgr" },
        { "qmgr", false, "public/qmgr" },
        { "...", true, "private/..." },
        { "", true, NULL },
        { ".", true, NULL },
        { "..", true, NULL },
        { "a/b", true, NULL },
        { "/etc/passwd", true, NULL },
        { "sp ace", true, NULL },
        { "tab\t", true, NULL },
        { "ctl\x01", true, NULL },
        { "high\xff", true, NULL },
        { "del\x7f", true, NULL },
        { "login/pop3d", true, "login/pop3d" },
        { "login/auth", false, "login/auth" },
        { "login/", true, NULL },
        { "login/..", true, NULL },
        { "login/a/b", true, NULL },
        { "login/sp ace", true, NULL },
        { "logins/x", true, NULL },
        { "private/x", true, NULL },
    };
    buf_t out = BUF_INIT, err = BUF_INIT;
    char longname[300];

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int rc = master_unix_path(t[i].name, t[i].priv, &out, &err);

        if (t[i].want) {
            ck_assert_msg(rc == 0, "case %zu: %s", i, buf_str(&err));
            ck_assert_str_eq(buf_str(&out), t[i].want);
        } else {
            ck_assert_msg(rc < 0, "case %zu accepted", i);
            ck_assert(err.len > 0);
        }
        buf_reset(&err);
    }
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = 0;
    ck_assert_int_lt(master_unix_path(longname, true, &out, &err), 0);
    longname[100] = 0;      /* "private/" + 100 + NUL > 108 */
    ck_assert_int_lt(master_unix_path(longname, true, &out, &err), 0);
    longname[99] = 0;       /* exactly fits sun_path */
    ck_assert_int_eq(master_unix_path(longname, true, &out, &err), 0);
    buf_free(&out);
    buf_free(&err);
}
END_TEST

/* ---- inet listener addresses --------------------------------------------------------- */

START_TEST(test_inet_addrs)
{
    static const struct { const char *svc, *ifaces, *want; } t[] = {
        { "127.0.0.1:25", "all", "127.0.0.1:25" },
        { "25", "all", "0.0.0.0:25 [::]:25" },
        { "*:25", "loopback-only", "127.0.0.1:25 [::1]:25" },
        { "2525", "loopback-only", "127.0.0.1:2525 [::1]:2525" },
        { "[::1]:2525", "all", "[::1]:2525" },
        { "[2001:db8::1]:587", NULL, "[2001:db8::1]:587" },
        { "2525", "192.0.2.1, 192.0.2.2 [::1]", "192.0.2.1:2525 192.0.2.2:2525 [::1]:2525" },
        { "2525", "127.0.0.1 ::1", "127.0.0.1:2525 [::1]:2525" },
        { "65535", "127.0.0.1", "127.0.0.1:65535" },
        /* hostile */
        { "127.0.0.1:0", "all", NULL },
        { "127.0.0.1:65536", "all", NULL },
        { "127.0.0.1:99999999999999999999999", "all", NULL },
        { "127.0.0.1:-1", "all", NULL },
        { "127.0.0.1:", "all", NULL },
        { "", "all", NULL },
        { "999.1.1.1:25", "all", NULL },
        { "mail.example:25", "all", NULL },      /* no DNS in master */
        { "[::1:25", "all", NULL },
        { "::1:25", "all", NULL },
        { "25", "", NULL },
        { "25", "not-an-address", NULL },
        { "25", "all all all all all all all all all", NULL },  /* > 16 */
        { "127.0.0.1:25x", "all", NULL },
        { "127.0.0.1:nosuchservicename-xyz", "all", NULL },
    };
    struct master_addr a[16];
    buf_t key = BUF_INIT, err = BUF_INIT;

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int n = master_inet_addrs(t[i].svc, t[i].ifaces, a, 16, &err);

        if (t[i].want) {
            ck_assert_msg(n > 0, "case %zu (%s): %s", i, t[i].svc,
                          buf_str(&err));
            master_addrs_key(a, (size_t)n, &key);
            ck_assert_str_eq(buf_str(&key), t[i].want);
        } else {
            ck_assert_msg(n < 0, "case %zu (%s) accepted", i, t[i].svc);
        }
        buf_reset(&err);
    }
    buf_free(&key);
    buf_free(&err);
}
END_TEST

START_TEST(test_inet_addrs_family)
{
    struct master_addr a[4];
    buf_t err = BUF_INIT;
    int n = master_inet_addrs("2525", "all", a, 4, &err);

    ck_assert_int_eq(n, 2);
    ck_assert_int_eq(a[0].ss.ss_family, AF_INET);
    ck_assert_uint_eq(a[0].len, sizeof(struct sockaddr_in));
    ck_assert_int_eq(a[1].ss.ss_family, AF_INET6);
    ck_assert_uint_eq(a[1].len, sizeof(struct sockaddr_in6));
    ck_assert_int_lt(master_inet_addrs("2525", "all", a, 1, &err), 0);
    buf_free(&err);
}
END_TEST

/* ---- entries ------------------------------------------------------------------------ */

START_TEST(test_entry_copy_same)
{
    char *args[] = { "-o", "a=b", NULL };
    struct master_entry e = {
        .service = "smtp", .type = MASTER_INET, .private_ = false,
        .unpriv = true, .chroot = true, .wakeup = 0, .maxproc = 10,
        .command = "smtpd", .args = args, .nargs = 2, .line = 7,
    };
    struct master_entry c, d;

    master_entry_copy(&c, &e);
    ck_assert(c.service != e.service && c.args != e.args);
    ck_assert(master_entry_same(&c, &e));
    c.line = 99;                        /* position does not matter */
    ck_assert(master_entry_same(&c, &e));

    master_entry_copy(&d, &e);
    free(d.args[1]);
    d.args[1] = xstrdup("a=c");
    ck_assert(!master_entry_same(&d, &e));
    master_entry_free(&d);

    master_entry_copy(&d, &e);
    d.maxproc = 11;
    ck_assert(!master_entry_same(&d, &e));
    d.maxproc = 10;
    d.unpriv = false;
    ck_assert(!master_entry_same(&d, &e));
    d.unpriv = true;
    d.nargs = 1;
    ck_assert(!master_entry_same(&d, &e));
    d.nargs = 2;
    ck_assert(master_entry_same(&d, &e));
    free(d.command);
    d.command = xstrdup("smtpd2");
    ck_assert(!master_entry_same(&d, &e));
    master_entry_free(&d);
    master_entry_free(&c);

    e.args = NULL;
    e.nargs = 0;
    master_entry_copy(&c, &e);
    ck_assert(master_entry_same(&c, &e));
    master_entry_free(&c);
}
END_TEST

/* ---- overload reply ------------------------------------------------------ */

/* a main.conf stand-in: smtpd has its parameter, echod has none */
static const char *fake_lookup(const char *name)
{
    if (strcmp(name, "myhostname") == 0)
        return "mx.example";
    if (strcmp(name, "smtpd_overload_reply") == 0)
        return "421 4.7.0 mx.example Error: too many connections";
    return NULL;
}

START_TEST(test_overload_reply)
{
    static const struct {
        const char *command;
        const char *args[6];
        const char *want;           /* NULL: no reply, clients wait */
    } t[] = {
        { "smtpd", { NULL }, "421 4.7.0 mx.example Error: too many connections" },
        { "echod", { NULL }, NULL },                    /* not by name */
        { "smtpd", { "-o", "smtpd_overload_reply=", NULL }, "" },
        { "smtpd", { "-o", "smtpd_overload_reply=421_$myhostname", NULL },
          "421_mx.example" },
        { "echod", { "-o", "echod_overload_reply=-ERR:${myhostname}:$(myhostname)",
                     NULL }, "-ERR:mx.example:mx.example" },
        { "echod", { "-o", "echod_overload_reply=a", "-o",
                     "echod_overload_reply=b", NULL }, "b" },  /* last wins */
        { "echod", { "-o", "smtpd_overload_reply=x", NULL }, NULL },
        { "echod", { "-o", "echod_overload_reply_x=y", NULL }, NULL },
        { "echod", { "echod_overload_reply=y", NULL }, NULL },  /* not -o */
        { "echod", { "-o", "echod_overload_reply=$$1 $ ${x $(y $nosuch.", NULL },
          "$1 $ ${x $(y ." },
        { "echod", { "-o", NULL }, NULL },
        /* from a master.conf "{ ... }" argument: blanks around '=' */
        { "echod", { "-o", "echod_overload_reply = -ERR [SYS/TEMP] $myhostname busy ",
                     NULL }, "-ERR [SYS/TEMP] mx.example busy" },
        { "echod", { "-o", "echod_overload_reply =", NULL }, "" },
        { "echod", { "-o", "echod_overload_reply x=y", NULL }, NULL },
    };

    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct master_entry e = { .service = "1", .command = (char *)t[i].command,
                                  .args = (char **)t[i].args };
        char *r;

        while (t[i].args[e.nargs])
            e.nargs++;
        r = master_overload_reply(&e, fake_lookup);
        if (t[i].want == NULL)
            ck_assert_msg(r == NULL, "case %zu: got \"%s\"", i, r);
        else
            ck_assert_msg(r && strcmp(r, t[i].want) == 0,
                          "case %zu: got \"%s\"", i, r ? r : "(null)");
        free(r);
    }
}
END_TEST

static Suite *master_suite(void)
{
    Suite *s = suite_create("master");
    TCase *tc = tcase_create("logic");

    tcase_add_test(tc, test_backoff);
    tcase_add_test(tc, test_check_chroot);
    tcase_add_test(tc, test_backoff_sequence);
    tcase_add_test(tc, test_rate);
    tcase_add_test(tc, test_demand);
    tcase_add_test(tc, test_spread_target);
    tcase_add_test(tc, test_argv);
    tcase_add_test(tc, test_exit_describe);
    tcase_add_test(tc, test_unix_path);
    tcase_add_test(tc, test_inet_addrs);
    tcase_add_test(tc, test_inet_addrs_family);
    tcase_add_test(tc, test_entry_copy_same);
    tcase_add_test(tc, test_overload_reply);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(master_suite(), true);
}
