/* Unit tests for lib/log.c: line format and sanitizing, file destination */
#include <check.h>

#include "check_main.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/log.h"

static char logpath[256];

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(f);
    static char data[65536];
    size_t n = fread(data, 1, sizeof(data) - 1, f);
    data[n] = '\0';
    fclose(f);
    return data;
}

static void setup(void)
{
    snprintf(logpath, sizeof(logpath), "/tmp/tern-log-%d", (int)getpid());
    unlink(logpath);
    log_init("tern", "/usr/libexec/tern/smtpd");
    ck_assert_int_eq(log_set_file(logpath), 0);
}

static void teardown(void)
{
    log_set_file("");
    unlink(logpath);
}

START_TEST(test_format)
{
    ck_assert_str_eq(log_ident(), "tern/smtpd");
    log_info("%s: from=<%s>, size=%d, nrcpt=%d", "4Zx2Kb", "a@b", 123, 1);
    log_warning("disk %s", "full");
    char *d = slurp(logpath);
    char want[128];
    snprintf(want, sizeof(want), " tern/smtpd[%d]: 4Zx2Kb: from=<a@b>, size=123, nrcpt=1\n", (int)getpid());
    ck_assert_ptr_nonnull(strstr(d, want));
    ck_assert_ptr_nonnull(strstr(d, "]: warning: disk full\n"));
}
END_TEST

START_TEST(test_hostile_text)
{
    log_info("evil %s", "a\r\nfake line\x01\x7f end");
    char *d = slurp(logpath);
    ck_assert_ptr_null(strstr(d, "\nfake"));
    ck_assert_ptr_nonnull(strstr(d, "evil a??fake line?? end\n"));
    /* an overlong message is truncated, never overflows */
    char *big = malloc(100000);
    memset(big, 'x', 99999);
    big[99999] = '\0';
    log_info("%s", big);
    free(big);
    d = slurp(logpath);
    ck_assert(strlen(d) < 10000);
}
END_TEST

START_TEST(test_debug_levels)
{
    log_set_verbose(0);
    log_debug("hidden");
    log_set_verbose(1);
    log_debug("shown");
    ck_assert_int_eq(log_verbose_level(), 1);
    log_set_verbose(0);
    char *d = slurp(logpath);
    ck_assert_ptr_null(strstr(d, "hidden"));
    ck_assert_ptr_nonnull(strstr(d, "shown"));
    ck_assert_int_eq(log_set_facility("mail"), 0);
    ck_assert_int_eq(log_set_facility("bogus"), -1);
}
END_TEST

START_TEST(test_fatal_exits)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0)
        log_fatal("cannot %s", "continue");
    int st;
    waitpid(pid, &st, 0);
    ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 1);
    ck_assert_ptr_nonnull(strstr(slurp(logpath), "]: fatal: cannot continue\n"));
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_hostile_text);
    tcase_add_test(tc, test_debug_levels);
    tcase_add_test(tc, test_fatal_exits);
    suite_add_tcase(s, tc);
    return tern_check_run(s, false);
}
