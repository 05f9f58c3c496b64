/* Unit tests for lib/log.c: line format and sanitizing, file destination */
#include <check.h>

#include "check_main.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* the log file is never opened through a symlink, nor anything but a
   regular file (daemons open it as root) */
START_TEST(test_file_refuses_symlink_and_fifo)
{
    char victim[300], link[300];

    snprintf(victim, sizeof(victim), "%s.victim", logpath);
    snprintf(link, sizeof(link), "%s.link", logpath);
    unlink(victim);
    unlink(link);
    ck_assert_int_eq(close(open(victim, O_CREAT | O_WRONLY, 0600)), 0);
    ck_assert_int_eq(symlink(victim, link), 0);
    ck_assert_int_eq(log_set_file(link), -1);
    unlink(link);
    ck_assert_int_eq(mkfifo(link, 0600), 0);
    ck_assert_int_eq(log_set_file(link), -1);
    /* the old destination is still in use */
    log_info("still here");
    ck_assert_ptr_nonnull(strstr(slurp(logpath), "still here"));
    ck_assert_str_eq(slurp(victim), "");
    unlink(link);
    unlink(victim);
}
END_TEST

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

/* the pid in a line is the writer's, also in a fork()ed child after the
   parent has logged (the pid is looked up once per process) */
START_TEST(test_pid_after_fork)
{
    char want[128];
    int status;
    pid_t pid;

    log_info("parent line");
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        log_info("child line");
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    log_info("parent again");
    char *d = slurp(logpath);
    snprintf(want, sizeof(want), "[%d]: child line\n", (int)pid);
    ck_assert_ptr_nonnull(strstr(d, want));
    snprintf(want, sizeof(want), "[%d]: parent again\n", (int)getpid());
    ck_assert_ptr_nonnull(strstr(d, want));
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

/* hostile input -> what a log line (or header) may show */
static const struct { const char *in, *out; } scrub_cases[] = {
    { "plain text", "plain text" },
    { "", "" },
    { "a\r\nb\tc\x01\x1b[31m\x7f", "a??b?c??[31m?" },
    /* C1 controls as UTF-8: U+0085 NEL, U+009B CSI, U+0080, U+009F */
    { "x\xc2\x85y\xc2\x9b""31mz", "x?y?31mz" },
    { "\xc2\x80\xc2\x9f", "??" },
    /* the first code points after C1 stay: U+00A0, U+00E9 */
    { "\xc2\xa0\xc3\xa9t\xc3\xa9", "\xc2\xa0\xc3\xa9t\xc3\xa9" },
    /* line and paragraph separator */
    { "one\xe2\x80\xa8two\xe2\x80\xa9three", "one?two?three" },
    /* their neighbours are fine: U+2027, U+202F */
    { "\xe2\x80\xa7\xe2\x80\xaf", "\xe2\x80\xa7\xe2\x80\xaf" },
    /* bidi override / isolate (log spoofing) */
    { "user\xe2\x80\xaegnp.exe", "user?gnp.exe" },
    { "\xe2\x81\xa6x\xe2\x81\xa9", "?x?" },
    /* raw C1 bytes and other broken UTF-8, one '?' per byte */
    { "a\x9b""31mb\x85", "a?31mb?" },
    { "\xc0\xaf", "??" },                          /* overlong '/' */
    { "\xe0\x80\x8a", "???" },                      /* overlong LF */
    { "\xc1\x8a", "??" },                          /* overlong LF */
    { "\xed\xa0\x80", "???" },                      /* surrogate */
    { "\xf4\x90\x80\x80", "????" },                  /* > U+10FFFF */
    { "\xe2\x80", "??" },                          /* truncated */
    { "\xe2\x80x", "??x" },
    { "\xff\xfe", "??" },
    /* 4-byte UTF-8 passes: U+1F600 */
    { "\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80" },
    /* a continuation that would turn a kept byte into C1 is not eaten */
    { "\xc2\xc2\x85", "??" },
};

START_TEST(test_scrub_table)
{
    for (size_t i = 0; i < sizeof(scrub_cases) / sizeof(scrub_cases[0]); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", scrub_cases[i].in);
        size_t n = log_scrub(buf);
        ck_assert_msg(strcmp(buf, scrub_cases[i].out) == 0,
                      "case %zu: got \"%s\"", i, buf);
        ck_assert_uint_eq(n, strlen(scrub_cases[i].out));
    }
}
END_TEST

START_TEST(test_scrub_in_log_lines)
{
    log_info("helo=<%s> from=<%s>", "evil\xc2\x85\xe2\x80\xa8x",
             "a\x9b@b");
    char *d = slurp(logpath);
    ck_assert_ptr_nonnull(strstr(d, "helo=<evil??x> from=<a?@b>\n"));
    ck_assert_ptr_null(strstr(d, "\xc2\x85"));
    ck_assert_ptr_null(strstr(d, "\xe2\x80\xa8"));
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

/* child: stderr to path, run fn, exit 0 (77: syslog answers here) */
static void run_with_stderr(const char *path, void (*fn)(void))
{
    pid_t pid = fork();
    int st;

    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (fd < 0 || dup2(fd, 2) < 0)
            _exit(2);
        fn();
        _exit(0);
    }
    ck_assert_int_eq(waitpid(pid, &st, 0), pid);
    ck_assert(WIFEXITED(st));
    ck_assert(WEXITSTATUS(st) == 0 || WEXITSTATUS(st) == 77);
}

static void copy_to_stderr(void)
{
    log_set_stderr(true);
    log_warning("disk %s", "full");
    log_info("plain");
}

/* the copy for a person: "program: warning: text", not the log ident */
START_TEST(test_stderr_copy_prefix)
{
    char path[300];

    snprintf(path, sizeof(path), "%s.err", logpath);
    run_with_stderr(path, copy_to_stderr);
    ck_assert_str_eq(slurp(path), "smtpd: warning: disk full\nsmtpd: plain\n");
    ck_assert_ptr_nonnull(strstr(slurp(logpath), " tern/smtpd["));
    unlink(path);
}
END_TEST

static void journal_child(void)
{
    ck_assert_int_eq(log_set_file(""), 0);
    if (setenv("INVOCATION_ID", "0123456789abcdef", 1) < 0
        || unsetenv("JOURNAL_STREAM") < 0)
        _exit(2);
    if (log_syslog_probe() == LOG_SYSLOG_OK)
        _exit(77);              /* a syslog daemon answers: not testable */
    ck_assert_int_eq(log_syslog_probe(), LOG_SYSLOG_JOURNAL);
    log_info("to the journal");
    log_error("bad %d", 1);
}

/* no syslog socket under systemd: lines on stderr with the priority */
START_TEST(test_journal_on_stderr)
{
    char path[300], want[200];

    snprintf(path, sizeof(path), "%s.err", logpath);
    run_with_stderr(path, journal_child);
    if (*slurp(path) != '\0') {
        const char *text = slurp(path);
        const char *p = strstr(text, "]: to the journal\n");

        ck_assert_ptr_nonnull(p);
        ck_assert_int_eq(strncmp(text, "<6>tern/smtpd[", 14), 0);
        snprintf(want, sizeof(want), "<3>tern/smtpd[");
        ck_assert_ptr_nonnull(strstr(text, want));
        ck_assert_ptr_nonnull(strstr(text, "]: error: bad 1\n"));
    }
    unlink(path);
}
END_TEST

static void lost_child(void)
{
    ck_assert_int_eq(log_set_file(""), 0);
    if (unsetenv("INVOCATION_ID") < 0 || setenv("JOURNAL_STREAM", "1:2", 1) < 0)
        _exit(2);
    if (log_syslog_probe() == LOG_SYSLOG_OK)
        _exit(77);
    /* JOURNAL_STREAM names another file: not systemd's stream for us */
    ck_assert_int_eq(log_syslog_probe(), LOG_SYSLOG_LOST);
    log_info("nowhere");
}

START_TEST(test_no_syslog_without_systemd)
{
    char path[300];

    snprintf(path, sizeof(path), "%s.err", logpath);
    run_with_stderr(path, lost_child);
    ck_assert_str_eq(slurp(path), "");
    unlink(path);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("core");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_format);
    tcase_add_test(tc, test_pid_after_fork);
    tcase_add_test(tc, test_file_refuses_symlink_and_fifo);
    tcase_add_test(tc, test_hostile_text);
    tcase_add_test(tc, test_scrub_table);
    tcase_add_test(tc, test_scrub_in_log_lines);
    tcase_add_test(tc, test_debug_levels);
    tcase_add_test(tc, test_fatal_exits);
    tcase_add_test(tc, test_stderr_copy_prefix);
    tcase_add_test(tc, test_journal_on_stderr);
    tcase_add_test(tc, test_no_syslog_without_systemd);
    suite_add_tcase(s, tc);
    return tern_check_run(s, false);
}
