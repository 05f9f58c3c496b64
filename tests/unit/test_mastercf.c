/*
 * test_mastercf - master.conf parser and inet service splitting
 * (table-driven, with hostile input).
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/mastercf.h"
#include "util/util.h"

static const char postfix_style[] =
    "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
    "#               (yes)   (yes)   (no)    (never) (100)\n"
    "# ==========================================================================\n"
    "smtp      inet  n       -       n       -       -       smtpd\n"
    "submission inet n       -       n       -       -       smtpd\n"
    "  -o syslog_name=tern/submission\n"
    "  -o smtpd_helo_required=yes\n"
    "#628       inet  n       -       y       -       -       qmqpd\n"
    "127.0.0.1:2525 inet n - n - 10 smtpd -v\n"
    "[::1]:2526 inet n - n - 0 smtpd\n"
    "pickup    unix  n       -       y       60      1       pickup\n"
    "qmgr      unix  n       -       n       300?    1       qmgr\n"
    "\n"
    "local     unix  -       n       n       -       -       local\n"
    "smtp      unix  -       -       y       -       -       smtp -o a=b,c\n";

START_TEST(test_good_file)
{
    struct master_conf mc;
    buf_t err = BUF_INIT;
    ck_assert_int_eq(mastercf_parse_string(postfix_style, "master.conf", &mc, &err), 0);
    ck_assert_str_eq(buf_str(&err), "");
    ck_assert_uint_eq(mc.count, 8);

    const struct master_entry *e = &mc.entries[0];
    ck_assert_str_eq(e->service, "smtp");
    ck_assert_int_eq(e->type, MASTER_INET);
    ck_assert(!e->private_);
    ck_assert(e->unpriv);
    ck_assert(!e->chroot);
    ck_assert_int_eq(e->wakeup, 0);
    ck_assert_int_eq(e->maxproc, -1);
    ck_assert_str_eq(e->command, "smtpd");
    ck_assert_uint_eq(e->nargs, 0);
    ck_assert_ptr_null(e->args[0]);
    ck_assert_int_eq(e->line, 4);

    e = &mc.entries[1];
    ck_assert_str_eq(e->service, "submission");
    ck_assert_int_eq(e->line, 5);
    ck_assert_uint_eq(e->nargs, 4);
    ck_assert_str_eq(e->args[0], "-o");
    ck_assert_str_eq(e->args[1], "syslog_name=tern/submission");
    ck_assert_str_eq(e->args[2], "-o");
    ck_assert_str_eq(e->args[3], "smtpd_helo_required=yes");
    ck_assert_ptr_null(e->args[4]);

    e = &mc.entries[2];
    ck_assert_str_eq(e->service, "127.0.0.1:2525");
    ck_assert_int_eq(e->maxproc, 10);
    ck_assert_uint_eq(e->nargs, 1);
    ck_assert_str_eq(e->args[0], "-v");

    ck_assert_int_eq(mc.entries[3].maxproc, 0);
    ck_assert_int_eq(mc.entries[3].line, 10);

    e = &mc.entries[4];
    ck_assert_str_eq(e->service, "pickup");
    ck_assert_int_eq(e->type, MASTER_UNIX);
    ck_assert(e->chroot);
    ck_assert_int_eq(e->wakeup, 60);
    ck_assert_int_eq(e->maxproc, 1);

    ck_assert_int_eq(mc.entries[5].wakeup, 300);    /* "300?" */

    e = &mc.entries[6];
    ck_assert_str_eq(e->service, "local");
    ck_assert(e->private_);
    ck_assert(!e->unpriv);
    ck_assert_int_eq(e->line, 14);

    e = &mc.entries[7];                              /* smtp/unix != smtp/inet */
    ck_assert_str_eq(e->service, "smtp");
    ck_assert_int_eq(e->type, MASTER_UNIX);
    ck_assert_str_eq(e->args[1], "a=b,c");
    mastercf_free(&mc);
    ck_assert_uint_eq(mc.count, 0);
    mastercf_free(&mc);     /* twice is harmless */
    buf_free(&err);
}
END_TEST

struct bad_case {
    const char *text;
    const char *err_sub;
};

static const struct bad_case bad_cases[] = {
    { "smtp inet n - n - -\n", "m.conf:1: too few columns" },
    { "# c\n\nsmtp inet n - n -\n", "m.conf:3: too few columns" },
    { "smtp\n", "m.conf:1: too few columns" },
    { "smtp fifo n - n - - smtpd\n", "m.conf:1: unsupported service type" },
    { "smtp pass n - n - - smtpd\n", "unsupported service type" },
    { "smtp unix-dgram n - n - - smtpd\n", "unsupported service type" },
    { "smtp INET n - n - - smtpd\n", "unsupported service type" },
    { "smtp inet x - n - - smtpd\n", "bad private field" },
    { "smtp inet n yes n - - smtpd\n", "bad unpriv field" },
    { "smtp inet n - Y - - smtpd\n", "bad chroot field" },
    { "smtp inet n - n -5 - smtpd\n", "bad wakeup field" },
    { "smtp inet n - n ? - smtpd\n", "bad wakeup field" },
    { "smtp inet n - n 5?? - smtpd\n", "bad wakeup field" },
    { "smtp inet n - n 99999999999999999999 - smtpd\n", "bad wakeup field" },
    { "smtp inet n - n - many smtpd\n", "m.conf:1: bad maxproc field" },
    { "smtp inet n - n - -1 smtpd\n", "bad maxproc field" },
    { "smtp inet n - n - 1x smtpd\n", "bad maxproc field" },
    { "smtp inet n - n - 99999999999999999999999 smtpd\n", "bad maxproc field" },
    { "smtp inet n - n - - /usr/libexec/smtpd\n", "must be a program name" },
    { "smtp inet n - n - - ../smtpd\n", "must be a program name" },
    { "smtp inet n - n - - smtpd -o\n", "-o without name=value" },
    { "smtp inet n - n - - smtpd -o novalue\n", "bad -o argument" },
    { "smtp inet n - n - - smtpd -o =x\n", "bad -o argument" },
    { "smtp inet n - n - - smtpd\nqmgr unix n - n 300 1 qmgr\n"
      "smtp inet n - n - - smtpd\n", "m.conf:3: duplicate service smtp/inet (first at line 1)" },
    { "a unix n - n - - x\nb unix n - n - - x\n a2\na unix - - - - - y\n",
      "m.conf:4: duplicate service a/unix" },
    { "  smtp inet n - n - - smtpd\n", "m.conf:1: continuation line" },
    { "1.2.3.4 inet n - n - - smtpd\n", "bad inet service" },  /* not a port */
    { ":25 inet n - n - - smtpd\n", "bad inet service" },
    { "::1:25 inet n - n - - smtpd\n", "bad inet service" },
    { "[::1 inet n - n - - smtpd\n", "bad inet service" },
    { "host:99999 inet n - n - - smtpd\n", "bad inet service" },
    { "host:0 inet n - n - - smtpd\n", "bad inet service" },
    { "priv/x unix n - n - - smtpd\n", "bad unix service name" },
    { ".. unix n - n - - smtpd\n", "bad unix service name" },
    /* login/NAME is the one form with a '/' */
    { "login/ unix - n n - - auth\n", "bad unix service name" },
    { "login/a/b unix - n n - - auth\n", "bad unix service name" },
    { "login/.. unix - n n - - auth\n", "bad unix service name" },
    { "login/. unix - n n - - auth\n", "bad unix service name" },
    { "login//x unix - n n - - auth\n", "bad unix service name" },
    { "/login/x unix - n n - - auth\n", "bad unix service name" },
    { "private/x unix - n n - - auth\n", "bad unix service name" },
    { "Login/x unix - n n - - auth\n", "bad unix service name" },
    { "\xff\xfe\x01 inet n - n - - smtpd\n", "bad inet service" },
    { "smtp inet n - n - - smtpd -o { a = b\n", "m.conf:1: missing '}'" },
    { "smtp inet n - n - - smtpd { { a }\n", "missing '}'" },
    { "smtp inet n - n - - smtpd { a }b\n", "text after '}'" },
    { "smtp inet n - n - - smtpd -o {}\n", "bad -o argument" },
};

START_TEST(test_bad)
{
    const struct bad_case *c = &bad_cases[_i];
    struct master_conf mc = { (struct master_entry *)1, 99 };  /* garbage */
    buf_t err = BUF_INIT;
    ck_assert_int_eq(mastercf_parse_string(c->text, "m.conf", &mc, &err), -1);
    ck_assert_msg(strstr(buf_str(&err), c->err_sub) != NULL,
                  "input \"%s\": err \"%s\" lacks \"%s\"", c->text,
                  buf_str(&err), c->err_sub);
    ck_assert_ptr_null(mc.entries);
    ck_assert_uint_eq(mc.count, 0);
    buf_free(&err);
}
END_TEST

struct split_case {
    const char *in;
    int rc;
    const char *host;    /* NULL: no host */
    const char *port;
};

static const struct split_case split_cases[] = {
    { "25", 0, NULL, "25" },
    { "smtp", 0, NULL, "smtp" },
    { "submission", 0, NULL, "submission" },
    { "127.0.0.1:2525", 0, "127.0.0.1", "2525" },
    { "localhost:smtp", 0, "localhost", "smtp" },
    { "[::1]:25", 0, "::1", "25" },
    { "[2001:db8::1]:587", 0, "2001:db8::1", "587" },
    { "*:25", 0, NULL, "25" },
    { "[127.0.0.1]:25", 0, "127.0.0.1", "25" },
    { "65535", 0, NULL, "65535" },
    { "", -1, NULL, NULL },
    { "0", -1, NULL, NULL },
    { "65536", -1, NULL, NULL },
    { "99999999999999999999999", -1, NULL, NULL },
    { "-1", -1, NULL, NULL },
    { "host:", -1, NULL, NULL },
    { ":25", -1, NULL, NULL },
    { "::1:25", -1, NULL, NULL },
    { "[::1]", -1, NULL, NULL },
    { "[::1]25", -1, NULL, NULL },
    { "[]:25", -1, NULL, NULL },
    { "[::1:25", -1, NULL, NULL },
    { "[[::1]]:25", -1, NULL, NULL },
    { "host:port:25", -1, NULL, NULL },
    { "a/b:25", -1, NULL, NULL },
    { "host:2 5", -1, NULL, NULL },
    { "host:po$rt", -1, NULL, NULL },
};

START_TEST(test_login_service)
{
    struct master_conf mc;
    buf_t err = BUF_INIT;

    ck_assert_int_eq(mastercf_parse_string(
        "login/auth unix - n n - - auth\n"
        "login/pop3d unix - n n - 1000 pop3d\n"
        "auth unix - n n - - auth\n", "m.conf", &mc, &err), 0);
    ck_assert_uint_eq(mc.count, 3);
    ck_assert_str_eq(mc.entries[0].service, "login/auth");
    ck_assert_int_eq(mc.entries[0].type, MASTER_UNIX);
    ck_assert_int_eq(mc.entries[1].maxproc, 1000);
    mastercf_free(&mc);
    ck_assert_str_eq(mastercf_login_name("login/pop3d"), "pop3d");
    ck_assert_ptr_null(mastercf_login_name("pop3d"));
    ck_assert_ptr_null(mastercf_login_name("login/"));
    ck_assert_ptr_null(mastercf_login_name("login"));
    ck_assert_ptr_null(mastercf_login_name("login/x/y"));
    buf_free(&err);
}
END_TEST

START_TEST(test_inet_split)
{
    const struct split_case *c = &split_cases[_i];
    char *host = (char *)"junk", *port = (char *)"junk";
    int rc = mastercf_inet_split(c->in, &host, &port);
    ck_assert_msg(rc == c->rc, "\"%s\": rc %d want %d", c->in, rc, c->rc);
    if (rc == 0) {
        if (c->host)
            ck_assert_str_eq(host, c->host);
        else
            ck_assert_ptr_null(host);
        ck_assert_str_eq(port, c->port);
    } else {
        ck_assert_ptr_null(host);
        ck_assert_ptr_null(port);
    }
    free(host);
    free(port);
}
END_TEST

START_TEST(test_file)
{
    char dir[] = "/tmp/test_mastercf.XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof(path), "%s/master.conf", dir);
    struct master_conf mc;
    buf_t err = BUF_INIT;

    ck_assert_int_eq(mastercf_parse_file(path, &mc, &err), -1);   /* missing */
    ck_assert_ptr_nonnull(strstr(buf_str(&err), path));

    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("smtp inet n - n - - smtpd\nqmgr unix n - n 300 1 qmgr\n", f);
    ck_assert_int_eq(fclose(f), 0);
    buf_reset(&err);
    ck_assert_int_eq(mastercf_parse_file(path, &mc, &err), 0);
    ck_assert_uint_eq(mc.count, 2);
    mastercf_free(&mc);

    /* NUL byte inside the file */
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    static const char nul[] = "smtp inet n - n - - smtpd\nq\0mgr unix n - n 300 1 qmgr\n";
    ck_assert_uint_eq(fwrite(nul, 1, sizeof(nul) - 1, f), sizeof(nul) - 1);
    ck_assert_int_eq(fclose(f), 0);
    buf_reset(&err);
    ck_assert_int_eq(mastercf_parse_file(path, &mc, &err), -1);
    buf_t want = BUF_INIT;
    buf_printf(&want, "%s:2: NUL byte in line", path);
    ck_assert_str_eq(buf_str(&err), buf_str(&want));
    ck_assert_uint_eq(mc.count, 0);

    ck_assert_int_eq(unlink(path), 0);
    ck_assert_int_eq(rmdir(dir), 0);
    buf_free(&err);
    buf_free(&want);
}
END_TEST

START_TEST(test_hostile)
{
    /* a 200 KB entry: many arguments on continuation lines */
    buf_t t = BUF_INIT, err = BUF_INIT;
    buf_puts(&t, "smtp inet n - n - - smtpd");
    for (int i = 0; i < 20000; i++)
        buf_printf(&t, "%s-o x%d=y", i % 100 ? " " : "\n  ", i);
    buf_puts(&t, "\n");
    struct master_conf mc;
    ck_assert_int_eq(mastercf_parse_string(t.data, "m", &mc, &err), 0);
    ck_assert_uint_eq(mc.count, 1);
    ck_assert_uint_eq(mc.entries[0].nargs, 40000);
    mastercf_free(&mc);

    /* many entries: the entry array grows */
    buf_reset(&t);
    for (int i = 0; i < 300; i++)
        buf_printf(&t, "svc%d unix - - - - - cmd%d\n", i, i);
    ck_assert_int_eq(mastercf_parse_string(t.data, "m", &mc, &err), 0);
    ck_assert_uint_eq(mc.count, 300);
    ck_assert_str_eq(mc.entries[299].command, "cmd299");
    ck_assert_int_eq(mc.entries[299].line, 300);
    mastercf_free(&mc);
    buf_free(&t);

    /* pseudo-random printable garbage: must not crash or leak */
    unsigned seed = 42;
    char text[2048];
    for (int round = 0; round < 300; round++) {
        for (size_t i = 0; i < sizeof(text) - 1; i++) {
            seed = seed * 1103515245u + 12345u;
            unsigned r = (seed >> 16) % 20;
            text[i] = r == 0 ? '\n' : r < 4 ? ' ' : r < 6 ? '-' : (char)('a' + r);
        }
        text[sizeof(text) - 1] = '\0';
        buf_reset(&err);
        if (mastercf_parse_string(text, "m", &mc, &err) == 0)
            mastercf_free(&mc);
    }
    buf_free(&err);
}
END_TEST

/* Postfix 3.0's "{ ... }": one argument that may hold whitespace */
START_TEST(test_braces)
{
    static const char text[] =
        "smtp inet n - n - - smtpd -o {  smtpd_overload_reply = 421 4.3.2 "
        "busy, {really}  } {}\n"
        "  { x }\t{\ta b\t}\n"
        "{ 127.0.0.1:25 } inet n - n - - smtpd -v\n";
    struct master_conf mc;
    buf_t err = BUF_INIT;

    ck_assert_int_eq(mastercf_parse_string(text, "m.conf", &mc, &err), 0);
    ck_assert_uint_eq(mc.count, 2);
    ck_assert_uint_eq(mc.entries[0].nargs, 5);
    ck_assert_str_eq(mc.entries[0].args[0], "-o");
    ck_assert_str_eq(mc.entries[0].args[1],
                     "smtpd_overload_reply = 421 4.3.2 busy, {really}");
    ck_assert_str_eq(mc.entries[0].args[2], "");
    ck_assert_str_eq(mc.entries[0].args[3], "x");
    ck_assert_str_eq(mc.entries[0].args[4], "a b");
    ck_assert_str_eq(mc.entries[1].service, "127.0.0.1:25");
    mastercf_free(&mc);
    buf_free(&err);
}
END_TEST

static Suite *mastercf_suite(void)
{
    Suite *s = suite_create("mastercf");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_good_file);
    tcase_add_test(tc, test_login_service);
    tcase_add_loop_test(tc, test_bad, 0, (int)(sizeof(bad_cases) / sizeof(bad_cases[0])));
    tcase_add_loop_test(tc, test_inet_split, 0,
                        (int)(sizeof(split_cases) / sizeof(split_cases[0])));
    tcase_add_test(tc, test_file);
    tcase_add_test(tc, test_hostile);
    tcase_add_test(tc, test_braces);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(mastercf_suite(), true);
}
