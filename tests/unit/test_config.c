/*
 * test_config - main.conf parser, expansion, typed values, overrides,
 * reloads and hostile input (table-driven).
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/config.h"
#include "util/util.h"

struct cfg_case {
    const char *text;
    size_t len;              /* 0: strlen(text) */
    int rc;
    const char *err_sub;     /* must occur in err (NULL: err may be empty) */
    const char *param;       /* on success: config_value(param) == value */
    const char *value;
};

static const struct cfg_case cases[] = {
    /* plain values and defaults */
    { "", 0, 0, NULL, "message_size_limit", "10240000" },
    { "", 0, 0, NULL, "smtpd_forbid_bare_newline", "normalize" },
    { "myhostname = mx.example.org\nmydomain = example.org\n", 0, 0, NULL,
      "mydestination", "mx.example.org, localhost.example.org, localhost" },
    { "myhostname = mx.example.org\n", 0, 0, NULL, "mydomain", "example.org" },
    { "myhostname = single\n", 0, 0, NULL, "mydomain", "localdomain" },
    { "myhostname=nospace.example\n", 0, 0, NULL, "myorigin", "nospace.example" },
    { "mail_name = A\nmail_name = B\n", 0, 0, NULL, "mail_name", "B" },
    { "relayhost =    \n", 0, 0, NULL, "relayhost", "" },
    { "relayhost =\n", 0, 0, NULL, "relayhost", "" },
    { "smtpd_banner = a # b\n", 0, 0, NULL, "smtpd_banner", "a # b" },
    { "mail_name = Win\r\n", 0, 0, NULL, "mail_name", "Win" },
    { "mail_name = NoNewline", 0, 0, NULL, "mail_name", "NoNewline" },
    /* expansion */
    { "mail_name = X\nmyhostname = h.d\n", 0, 0, NULL, "smtpd_banner", "h.d ESMTP X" },
    { "a = $b\nb = ${c}\nc = $(mail_name)!\nsmtpd_banner = [$a]\n", 0, 0,
      "unknown parameter: a", "smtpd_banner", "[Tern!]" },
    { "smtpd_banner = $x\nx = late\n", 0, 0, NULL, "smtpd_banner", "late" },
    { "smtpd_banner = a${nosuch}b$nosuch2|$(nosuch3)\n", 0, 0, NULL,
      "smtpd_banner", "ab|" },
    { "smtpd_banner = cost $$5 $${x}\n", 0, 0, NULL, "smtpd_banner", "cost $5 ${x}" },
    { "smtpd_banner = a $ b $\n", 0, 0, NULL, "smtpd_banner", "a $ b $" },
    { "x = 42\nsmtpd_recipient_limit = $x\n", 0, 0, NULL, "smtpd_recipient_limit", "42" },
    { "smtpd_banner = $a\na = $b\nb = $a\n", 0, -1, "main.conf:1: smtpd_banner: $name expansion loop", NULL, NULL },
    { "myorigin = $myorigin\n", 0, -1, "loop involving $myorigin", NULL, NULL },
    { "myhostname = $mydomain\n", 0, -1, "loop", NULL, NULL },
    { "smtpd_banner = ${mail_name\n", 0, -1, "main.conf:1: smtpd_banner: bad or unterminated", NULL, NULL },
    { "smtpd_banner = $(mail_name}\n", 0, -1, "unterminated", NULL, NULL },
    { "smtpd_banner = ${}\n", 0, -1, "unterminated", NULL, NULL },
    { "smtpd_banner = ${a-b}\n", 0, -1, "unterminated", NULL, NULL },
    /* continuation lines and comments */
    { "mydestination = a,\n  b,\n\tc\n", 0, 0, NULL, "mydestination", "a, b, c" },
    { "mynetworks = 10.0.0.0/8\n# comment\n  192.168.0.0/16\n", 0, 0, NULL,
      "mynetworks", "10.0.0.0/8 192.168.0.0/16" },
    { "mynetworks = 10.0.0.0/8\n\n  \n  192.168.0.0/16\n", 0, 0, NULL,
      "mynetworks", "10.0.0.0/8 192.168.0.0/16" },
    { "# smtpd_banner = x\n   # indented\n\nmail_name = X\n", 0, 0, NULL, "mail_name", "X" },
    { "# only a comment", 0, 0, NULL, "mail_name", "Tern" },
    { "  mail_name = X\n", 0, -1, "main.conf:1: continuation line", NULL, NULL },
    /* malformed lines */
    { "\nmyhostname mx\n", 0, -1, "main.conf:2: missing '='", NULL, NULL },
    { "= x\n", 0, -1, "main.conf:1: bad parameter name", NULL, NULL },
    { "my-host = x\n", 0, -1, "main.conf:1: bad parameter name", NULL, NULL },
    { "\xff\xfe = x\n", 0, -1, "main.conf:1:", NULL, NULL },
    /* numbers, times, sizes, booleans, enumerations */
    { "smtpd_recipient_limit = abc\n", 0, -1, "main.conf:1: bad value for smtpd_recipient_limit", NULL, NULL },
    { "smtpd_recipient_limit = 0\n", 0, -1, "bad value for smtpd_recipient_limit", NULL, NULL },
    { "smtpd_recipient_limit = -5\n", 0, -1, "bad value", NULL, NULL },
    { "smtpd_recipient_limit = 99999999999999999999999999\n", 0, -1, "bad value", NULL, NULL },
    { "smtpd_recipient_limit = 12 \n", 0, 0, NULL, "smtpd_recipient_limit", "12" },
    { "smtpd_recipient_limit = 1 2\n", 0, -1, "bad value", NULL, NULL },
    { "x = nope\n\nsmtpd_recipient_limit = $x\n", 0, -1, "main.conf:3: bad value for smtpd_recipient_limit: \"nope\"", NULL, NULL },
    { "smtpd_timeout = 5x\n", 0, -1, "bad value for smtpd_timeout", NULL, NULL },
    { "smtpd_timeout = 2d\n", 0, -1, "bad value for smtpd_timeout", NULL, NULL },
    { "smtpd_timeout = s\n", 0, -1, "bad value for smtpd_timeout", NULL, NULL },
    { "smtpd_timeout = 10m\n", 0, 0, NULL, "smtpd_timeout", "10m" },
    { "message_size_limit = 10q\n", 0, -1, "bad value for message_size_limit", NULL, NULL },
    { "message_size_limit = 99999999999999999999g\n", 0, -1, "bad value", NULL, NULL },
    { "message_size_limit = 0\n", 0, 0, NULL, "message_size_limit", "0" },
    { "smtpd_helo_required = maybe\n", 0, -1, "bad value for smtpd_helo_required", NULL, NULL },
    { "smtpd_helo_required = YES\n", 0, 0, NULL, "smtpd_helo_required", "YES" },
    { "smtpd_forbid_bare_newline = reject\n", 0, 0, NULL, "smtpd_forbid_bare_newline", "reject" },
    { "smtpd_forbid_bare_newline = sometimes\n", 0, -1, "bad value for smtpd_forbid_bare_newline", NULL, NULL },
    /* unknown parameters: warnings with file:line, not errors */
    { "\n\nbogus_param = 1\n", 0, 0, "main.conf:3: unknown parameter: bogus_param", "mail_name", "Tern" },
    { "mail_name = A\n# c\nzzz = 1\nyyy = 2\n", 0, 0, "main.conf:4: unknown parameter: yyy", "mail_name", "A" },
    /* hostile */
    { "mail_name = a\0b\n", 15, -1, "main.conf:1: NUL byte", NULL, NULL },
    { "mail_name = a\n\0", 15, -1, "main.conf:2: NUL byte", NULL, NULL },
    { "\0\0\0\0", 4, -1, "NUL byte", NULL, NULL },
    { "$$$$ = ${{{{\n", 0, -1, "main.conf:1:", NULL, NULL },
};

static void load_case(const struct cfg_case *c, buf_t *err)
{
    size_t len = c->len ? c->len : strlen(c->text);
    int rc = config_load_text(c->text, len, "/x/main.conf", NULL, err);
    ck_assert_msg(rc == c->rc, "input \"%s\": rc %d, want %d (err: %s)",
                  c->text, rc, c->rc, buf_str(err));
    if (c->err_sub)
        ck_assert_msg(strstr(buf_str(err), c->err_sub) != NULL,
                      "input \"%s\": err \"%s\" lacks \"%s\"", c->text,
                      buf_str(err), c->err_sub);
}

START_TEST(test_table)
{
    const struct cfg_case *c = &cases[_i];
    buf_t err = BUF_INIT;
    load_case(c, &err);
    if (c->rc == 0 && c->param) {
        const char *v = config_value(c->param);
        ck_assert_ptr_nonnull(v);
        ck_assert_msg(strcmp(v, c->value) == 0, "input \"%s\": %s = \"%s\", want \"%s\"",
                      c->text, c->param, v, c->value);
    }
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_defaults)
{
    config_init_defaults();
    ck_assert_int_eq(var_message_size_limit, 10240000);
    ck_assert_int_eq(var_mailbox_size_limit, 51200000);
    ck_assert_int_eq(var_maximal_queue_lifetime, 5 * 86400);
    ck_assert_int_eq(var_maximal_backoff_time, 4000);
    ck_assert_int_eq(var_smtpd_timeout, 300);
    ck_assert_int_eq(var_local_recursion_limit, 20);
    ck_assert(!var_smtpd_helo_required);
    ck_assert_str_eq(var_queue_directory, "/var/spool/tern");
    ck_assert_str_eq(var_home_mailbox, "Maildir/");
    ck_assert_str_eq(var_maillog_file, "");
    ck_assert_ptr_nonnull(strchr(var_myhostname, '.'));
    ck_assert_str_eq(var_myorigin, var_myhostname);
    ck_assert_str_eq(var_alias_maps, "lmdb:" TERN_DEFAULT_CONFIG_DIR "/aliases");
    /* mydomain: myhostname minus its first label */
    const char *dot = strchr(var_myhostname, '.');
    ck_assert_str_eq(var_mydomain, dot + 1);
    buf_t want = BUF_INIT;
    buf_printf(&want, "%s, localhost.%s, localhost", var_myhostname, var_mydomain);
    ck_assert_str_eq(var_mydestination, buf_str(&want));
    buf_free(&want);
    config_free();
    ck_assert_ptr_null(var_myhostname);
}
END_TEST

START_TEST(test_table_sane)
{
    for (size_t i = 0; i < param_count; i++) {
        const struct param_def *p = &param_table[i];
        ck_assert_ptr_eq(config_find(p->name), p);
        ck_assert_msg(p->desc && *p->desc, "%s has no description", p->name);
        ck_assert_msg(p->min <= p->max, "%s bounds", p->name);
        ck_assert_ptr_nonnull(p->var);
        ck_assert_ptr_nonnull(config_default_value(p->name));
        for (size_t j = i + 1; j < param_count; j++)
            ck_assert_str_ne(p->name, param_table[j].name);
    }
    ck_assert_ptr_null(config_find("nosuch"));
    ck_assert_ptr_null(config_value("nosuch"));
    ck_assert_ptr_null(config_default_value("nosuch"));
    config_free();
}
END_TEST

START_TEST(test_typed_values)
{
    static const char text[] =
        "smtpd_timeout = 10m\nmaximal_queue_lifetime = 2w\n"
        "message_size_limit = 10m\nsmtpd_helo_required = yes\n"
        "max_use = 7\nmaximal_backoff_time = 1h\n";
    buf_t err = BUF_INIT;
    ck_assert_int_eq(config_load_text(text, strlen(text), "m", NULL, &err), 0);
    ck_assert_int_eq(var_smtpd_timeout, 600);
    ck_assert_int_eq(var_maximal_queue_lifetime, 14 * 86400);
    ck_assert_int_eq(var_message_size_limit, 10 * 1024 * 1024);
    ck_assert(var_smtpd_helo_required);
    ck_assert_int_eq(var_max_use, 7);
    ck_assert_int_eq(var_maximal_backoff_time, 3600);
    ck_assert_str_eq(buf_str(&err), "");
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_file_and_default_values)
{
    static const char text[] = "myorigin = $mydomain\nmyhostname = a.b.c\nzz = 1\n";
    ck_assert_int_eq(config_load_text(text, strlen(text), "m", NULL, NULL), 0);
    ck_assert_str_eq(config_file_value("myorigin"), "$mydomain");
    ck_assert_str_eq(config_value("myorigin"), "b.c");
    ck_assert_str_eq(var_myorigin, "b.c");
    ck_assert_ptr_null(config_file_value("mydomain"));
    ck_assert_ptr_null(config_file_value("zz"));
    /* defaults do not see the file */
    ck_assert_str_ne(config_default_value("myhostname"), "a.b.c");
    ck_assert_str_eq(config_default_value("myorigin"),
                     config_default_value("myhostname"));
    config_free();
}
END_TEST

START_TEST(test_overrides)
{
    static const char text[] = "smtpd_banner = file\nmail_name = M\n";
    buf_t err = BUF_INIT;
    ck_assert_int_eq(config_add_override("smtpd_banner=hi $mail_name"), 0);
    ck_assert_int_eq(config_add_override(" max_use = 3 "), 0);
    ck_assert_int_eq(config_add_override("user_thing=1"), 0);
    ck_assert_int_eq(config_add_override("noequals"), -1);
    ck_assert_int_eq(config_add_override("=x"), -1);
    ck_assert_int_eq(config_add_override("a b=x"), -1);
    ck_assert_int_eq(config_load_text(text, strlen(text), "m", NULL, &err), 0);
    ck_assert_str_eq(var_smtpd_banner, "hi M");
    ck_assert_int_eq(var_max_use, 3);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "unknown parameter: user_thing"));
    /* overrides persist across reloads until config_free */
    ck_assert_int_eq(config_load_text("", 0, "m", NULL, NULL), 0);
    ck_assert_str_eq(var_smtpd_banner, "hi Tern");
    ck_assert_int_eq(config_add_override("max_use=0"), 0);
    buf_reset(&err);
    ck_assert_int_eq(config_load_text("", 0, "m", NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "-o max_use=0: bad value for max_use"));
    buf_free(&err);
    config_free();
    ck_assert_int_eq(config_load_text("", 0, "m", NULL, NULL), 0);
    ck_assert_int_eq(var_max_use, 100);
    config_free();
}
END_TEST

START_TEST(test_reload_keeps_old_on_error)
{
    static const char good[] = "mail_name = A\nbogus = 1\n";
    static const char bad[] = "mail_name = B\nmax_use = x\n";
    ck_assert_int_eq(config_load_text(good, strlen(good), "m", NULL, NULL), 0);
    ck_assert_int_eq(config_load_text(good, strlen(good), "m", NULL, NULL), 0);
    ck_assert_str_eq(var_mail_name, "A");
    ck_assert_int_eq(config_load_text(bad, strlen(bad), "m", NULL, NULL), -1);
    ck_assert_str_eq(var_mail_name, "A");
    ck_assert_str_eq(config_value("mail_name"), "A");
    ck_assert_int_eq(config_load_text("", 0, "m", NULL, NULL), 0);
    ck_assert_str_eq(var_mail_name, "Tern");
    ck_assert_ptr_null(config_file_value("mail_name"));
    config_free();
}
END_TEST

/* chain x0 = $x1, x1 = $x2, ..., x(n-1) = end; smtpd_banner = $x0 */
static void chain_text(buf_t *b, int n)
{
    buf_puts(b, "smtpd_banner = $x0\n");
    for (int i = 0; i < n - 1; i++)
        buf_printf(b, "x%d = $x%d\n", i, i + 1);
    buf_printf(b, "x%d = end\n", n - 1);
}

START_TEST(test_deep_chain)
{
    buf_t t = BUF_INIT, err = BUF_INIT;
    chain_text(&t, 50);
    ck_assert_int_eq(config_load_text(t.data, t.len, "m", NULL, NULL), 0);
    ck_assert_str_eq(var_smtpd_banner, "end");
    buf_reset(&t);
    chain_text(&t, 5000);
    ck_assert_int_eq(config_load_text(t.data, t.len, "m", NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "m:1: smtpd_banner: $name expansion nested"));
    buf_free(&t);
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_exponential_expansion)
{
    /* a0 = $a1$a1, a1 = $a2$a2, ... : 2^60 bytes if nothing stopped it */
    buf_t t = BUF_INIT, err = BUF_INIT;
    buf_puts(&t, "smtpd_banner = $a0\n");
    for (int i = 0; i < 60; i++)
        buf_printf(&t, "a%d = $a%d$a%d\n", i, i + 1, i + 1);
    buf_puts(&t, "a60 = xxxxxxxx\n");
    ck_assert_int_eq(config_load_text(t.data, t.len, "m", NULL, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "too long"));
    buf_free(&t);
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_long_line)
{
    buf_t t = BUF_INIT;
    buf_puts(&t, "mynetworks =");
    for (int i = 0; i < 12800; i++)
        buf_puts(&t, " 10.0.0.1");
    buf_puts(&t, "\n");
    ck_assert_uint_gt(t.len, 100 * 1024);
    ck_assert_int_eq(config_load_text(t.data, t.len, "m", NULL, NULL), 0);
    ck_assert_uint_eq(strlen(var_mynetworks), 12800 * 9 - 1);
    buf_free(&t);
    config_free();
}
END_TEST

START_TEST(test_garbage)
{
    /* pseudo-random bytes: must not crash or leak, any result is fine */
    unsigned seed = 12345;
    char text[4096];
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < sizeof(text); i++) {
            seed = seed * 1103515245u + 12345u;
            text[i] = (char)(seed >> 16);
        }
        buf_t err = BUF_INIT;
        (void)config_load_text(text, sizeof(text), "m", NULL, &err);
        buf_free(&err);
    }
    config_free();
}
END_TEST

/* --- real directories ----------------------------------------------------- */
static char tmpdir[64];

static void setup_dir(void)
{
    str_copy(tmpdir, "/tmp/test_config.XXXXXX", sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown_dir(void)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    unlink(path);
    rmdir(path);
    rmdir(tmpdir);
}

static void write_main(const char *text)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    ck_assert_int_eq(fclose(f), 0);
}

START_TEST(test_dir_without_main_conf)
{
    buf_t err = BUF_INIT, want = BUF_INIT;
    ck_assert_int_eq(config_load(tmpdir, &err), 0);
    ck_assert_str_eq(var_config_directory, tmpdir);
    buf_printf(&want, "lmdb:%s/aliases", tmpdir);
    ck_assert_str_eq(var_alias_maps, buf_str(&want));
    ck_assert_str_eq(config_default_value("config_directory"), TERN_DEFAULT_CONFIG_DIR);
    buf_free(&err);
    buf_free(&want);
    config_free();
}
END_TEST

START_TEST(test_missing_dir)
{
    buf_t err = BUF_INIT;
    ck_assert_int_eq(config_load("/nonexistent/tern-test-dir", &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "/nonexistent/tern-test-dir"));
    buf_reset(&err);
    write_main("x = 1\n");
    char path[128];
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    ck_assert_int_eq(config_load(path, &err), -1);     /* a file, not a dir */
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "not a directory"));
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_main_conf_is_dir)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/main.conf", tmpdir);
    ck_assert_int_eq(mkdir(path, 0700), 0);
    buf_t err = BUF_INIT;
    ck_assert_int_eq(config_load(tmpdir, &err), -1);
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_reload_file)
{
    buf_t err = BUF_INIT;
    write_main("myhostname = mx.example.org\n\nunknown_one = 1\nmail_name = One\n");
    ck_assert_int_eq(config_load(tmpdir, &err), 0);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "main.conf:3: unknown parameter: unknown_one"));
    ck_assert_str_eq(var_mail_name, "One");
    ck_assert_str_eq(var_mydomain, "example.org");
    write_main("mail_name = Two\n");
    buf_reset(&err);
    ck_assert_int_eq(config_load(tmpdir, &err), 0);
    ck_assert_str_eq(buf_str(&err), "");
    ck_assert_str_eq(var_mail_name, "Two");
    ck_assert_ptr_null(config_file_value("myhostname"));
    write_main("mail_name = Three\nmax_idle = forever\n");
    buf_reset(&err);
    ck_assert_int_eq(config_load(tmpdir, &err), -1);
    ck_assert_ptr_nonnull(strstr(buf_str(&err), "/main.conf:2: bad value for max_idle"));
    ck_assert_str_eq(var_mail_name, "Two");
    buf_free(&err);
    config_free();
}
END_TEST

START_TEST(test_directory_default)
{
    unsetenv("MAIL_CONFIG");
    ck_assert_str_eq(config_directory_default(NULL), TERN_DEFAULT_CONFIG_DIR);
    setenv("MAIL_CONFIG", "/from/env", 1);
    ck_assert_str_eq(config_directory_default(NULL), "/from/env");
    ck_assert_str_eq(config_directory_default("/from/cmd"), "/from/cmd");
    setenv("MAIL_CONFIG", "", 1);
    ck_assert_str_eq(config_directory_default(NULL), TERN_DEFAULT_CONFIG_DIR);
    unsetenv("MAIL_CONFIG");
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("parse");
    tcase_add_loop_test(tc, test_table, 0, (int)(sizeof(cases) / sizeof(cases[0])));
    tcase_add_test(tc, test_defaults);
    tcase_add_test(tc, test_table_sane);
    tcase_add_test(tc, test_typed_values);
    tcase_add_test(tc, test_file_and_default_values);
    tcase_add_test(tc, test_overrides);
    tcase_add_test(tc, test_reload_keeps_old_on_error);
    tcase_add_test(tc, test_deep_chain);
    tcase_add_test(tc, test_exponential_expansion);
    tcase_add_test(tc, test_long_line);
    tcase_add_test(tc, test_garbage);
    tcase_add_test(tc, test_directory_default);
    suite_add_tcase(s, tc);
    TCase *td = tcase_create("files");
    tcase_add_checked_fixture(td, setup_dir, teardown_dir);
    tcase_add_test(td, test_dir_without_main_conf);
    tcase_add_test(td, test_missing_dir);
    tcase_add_test(td, test_main_conf_is_dir);
    tcase_add_test(td, test_reload_file);
    suite_add_tcase(s, td);
    return s;
}

int main(void)
{
    return tern_check_run(config_suite(), true);
}
