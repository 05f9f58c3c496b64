/*
 * test_restriction_pcre - check_*_access with a pcre: table
 * (lib/mail/restriction.c): as in Postfix, a regular expression table
 * sees only whole strings (the client name, the client address, the
 * HELO name, the whole address), never parent domains, network prefixes
 * or the user@ / domain parts. Skipped (exit 77) in a build without
 * pcre: tables.
 */
#include <check.h>

#include "check_main.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mail/dict.h"
#include "mail/restriction.h"
#include "util/buf.h"
#include "util/log.h"

static char dir[] = "/tmp/test_restriction_pcre.XXXXXX";
static char spec[300];
static bool have_pcre;

static void setup(void)
{
    char path[256];
    const char *err = NULL;
    FILE *f;
    maps_t *m;

    log_set_stderr(false);
    ck_assert_ptr_nonnull(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/access", dir);
    snprintf(spec, sizeof(spec), "pcre:%s", path);
    f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs("/^user@example\\.com$/ REJECT whole address\n"
          "/^example\\.org$/ REJECT domain part\n"
          "/^user@$/ REJECT user part\n"
          "/^192\\.0\\.2$/ REJECT network prefix\n"
          "/^192\\.0\\.2\\.7$/ REJECT whole address\n"
          "/^mail\\.example\\.net$/ REJECT parent domain\n", f);
    ck_assert_int_eq(fclose(f), 0);
    m = maps_open(spec, &err);
    have_pcre = m != NULL;
    maps_close(m);
}

static void teardown(void)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/access", dir);
    (void)unlink(path);
    (void)rmdir(dir);
}

/* eval - check_WHAT_access pcre:... against ctx; the reply or "" */
static enum restr_action eval(const char *what, const struct restr_ctx *ctx,
                              char *reply, size_t size)
{
    char list[400];
    buf_t err;
    struct restr_result r;
    restriction_list_t *l;
    enum restr_action a;

    snprintf(list, sizeof(list), "check_%s_access %s", what, spec);
    buf_init(&err, 0);
    l = restriction_parse("test", list, 0, &err);
    ck_assert_msg(l != NULL, "%s", buf_str(&err));
    buf_free(&err);
    restriction_result_init(&r);
    a = restriction_eval(l, ctx, "name", "Class", &r);
    snprintf(reply, size, "%s", a == RESTR_REJECT ? buf_str(&r.reply) : "");
    restriction_result_free(&r);
    restriction_free(l);
    return a;
}

START_TEST(pcre_whole_strings_only)
{
    struct restr_ctx ctx = { 0 };
    char reply[600];

    if (!have_pcre) {
        tern_check_skip(__func__, "no pcre: tables in this build");
        return;
    }
    ctx.client_addr = "192.0.2.1";
    ctx.client_name = "mx.mail.example.net";
    ctx.client_namaddr = "mx.mail.example.net[192.0.2.1]";
    ctx.helo = "mx.mail.example.net";
    ctx.sender = "user@example.org";
    ctx.recipient = "user@example.com";
    ctx.delimiters = "+";
    /* no parent domain, no network prefix */
    ck_assert_int_eq(eval("client", &ctx, reply, sizeof(reply)), RESTR_DUNNO);
    ck_assert_int_eq(eval("helo", &ctx, reply, sizeof(reply)), RESTR_DUNNO);
    /* no domain part, no user@ part */
    ck_assert_int_eq(eval("sender", &ctx, reply, sizeof(reply)), RESTR_DUNNO);
    /* the whole address matches */
    ck_assert_int_eq(eval("recipient", &ctx, reply, sizeof(reply)),
                     RESTR_REJECT);
    ck_assert_str_eq(reply, "554 5.7.1 <user@example.com>: Recipient "
                     "address rejected: whole address");
    ctx.client_addr = "192.0.2.7";
    ck_assert_int_eq(eval("client", &ctx, reply, sizeof(reply)),
                     RESTR_REJECT);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("restriction_pcre");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, setup, teardown);
    tcase_add_test(tc, pcre_whole_strings_only);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
