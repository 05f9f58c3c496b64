/* Unit tests for lib/util.c */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/sys.h"
#include "util/util.h"

static const struct { const char *in; long min, max; int ok; long out; } long_cases[] = {
    { "0", 0, 10, 0, 0 }, { "10", 0, 10, 0, 10 }, { "11", 0, 10, -1, 0 },
    { "-1", 0, 10, -1, 0 }, { "-1", -5, 10, 0, -1 }, { "", 0, 10, -1, 0 },
    { " 1", 0, 10, -1, 0 }, { "1 ", 0, 10, -1, 0 }, { "1x", 0, 10, -1, 0 },
    { "99999999999999999999999", 0, LONG_MAX, -1, 0 }, { "0x10", 0, 100, -1, 0 },
};

START_TEST(test_parse_long)
{
    long v = 12345;
    int r = parse_long(long_cases[_i].in, long_cases[_i].min, long_cases[_i].max, &v);
    ck_assert_int_eq(r, long_cases[_i].ok);
    if (r == 0)
        ck_assert_int_eq(v, long_cases[_i].out);
}
END_TEST

static const struct { const char *in; int ok; long out; } time_cases[] = {
    { "30", 0, 30 }, { "30s", 0, 30 }, { "5m", 0, 300 }, { "2h", 0, 7200 },
    { "1d", 0, 86400 }, { "5d", 0, 432000 }, { "1w", 0, 604800 }, { "1D", 0, 86400 },
    { "", -1, 0 }, { "s", -1, 0 }, { "1x", -1, 0 }, { "1ss", -1, 0 }, { "-1s", -1, 0 },
    { "99999999999999999w", -1, 0 }, { "1 s", -1, 0 },
};

START_TEST(test_parse_time)
{
    long v = 0;
    int r = parse_time(time_cases[_i].in, &v);
    ck_assert_int_eq(r, time_cases[_i].ok);
    if (r == 0)
        ck_assert_int_eq(v, time_cases[_i].out);
}
END_TEST

static const struct { const char *in; int ok; long out; } size_cases[] = {
    { "10240000", 0, 10240000 }, { "10k", 0, 10240 }, { "1m", 0, 1048576 },
    { "1G", 0, 1073741824L }, { "1t", -1, 0 }, { "k", -1, 0 }, { "-5", -1, 0 },
    { "9999999999999999999g", -1, 0 },
};

START_TEST(test_parse_size)
{
    long v = 0;
    int r = parse_size(size_cases[_i].in, &v);
    ck_assert_int_eq(r, size_cases[_i].ok);
    if (r == 0)
        ck_assert_int_eq(v, size_cases[_i].out);
}
END_TEST

START_TEST(test_parse_bool)
{
    bool b = false;
    ck_assert_int_eq(parse_bool("yes", &b), 0); ck_assert(b);
    ck_assert_int_eq(parse_bool("No", &b), 0); ck_assert(!b);
    ck_assert_int_eq(parse_bool("TRUE", &b), 0); ck_assert(b);
    ck_assert_int_eq(parse_bool("off", &b), 0); ck_assert(!b);
    ck_assert_int_eq(parse_bool("maybe", &b), -1);
    ck_assert_int_eq(parse_bool("", &b), -1);
    ck_assert_int_eq(parse_bool("yes ", &b), -1);
}
END_TEST

START_TEST(test_str_copy)
{
    char small[4];
    ck_assert_uint_eq(str_copy(small, "abcdef", sizeof(small)), 6);
    ck_assert_str_eq(small, "abc");
    ck_assert_uint_eq(str_copy(small, "ab", sizeof(small)), 2);
    ck_assert_str_eq(small, "ab");
    ck_assert_uint_eq(str_copy(small, "x", 0), 1);
}
END_TEST

START_TEST(test_split_trim)
{
    char **v;
    size_t n = str_split_list(" a, b\tc,,\n d ", &v);
    ck_assert_uint_eq(n, 4);
    ck_assert_str_eq(v[0], "a");
    ck_assert_str_eq(v[3], "d");
    strv_free(v, n);
    n = str_split_list("  ,, ", &v);
    ck_assert_uint_eq(n, 0);
    strv_free(v, n);
    char s[] = "  x y \t\n";
    ck_assert_str_eq(str_trim(s), "x y");
    char u[] = "MiXeD";
    str_lower(u);
    ck_assert_str_eq(u, "mixed");
    ck_assert(str_eq_ci("ABC", "abc"));
}
END_TEST

START_TEST(test_files)
{
    char tmpl[] = "/tmp/tern-util-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char path[256];
    snprintf(path, sizeof(path), "%s/a/b/c", tmpl);
    ck_assert_int_eq(mkdir_p(path, 0700), 0);
    ck_assert_int_eq(mkdir_p(path, 0700), 0);
    ck_assert_int_eq(fsync_dir(path), 0);
    char file[300];
    snprintf(file, sizeof(file), "%s/f", path);
    int fd = open(file, O_CREAT | O_RDWR, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write_full(fd, "hello world", 11), 0);
    ck_assert_int_eq(pwrite_full(fd, "W", 1, 6), 0);
    char rb[32] = { 0 };
    ck_assert_int_eq(lseek(fd, 0, SEEK_SET), 0);
    ck_assert_int_eq(read_full(fd, rb, sizeof(rb)), 11);
    ck_assert_str_eq(rb, "hello World");
    ck_assert_int_eq(fd_set_nonblock(fd, true), 0);
    ck_assert(fcntl(fd, F_GETFL) & O_NONBLOCK);
    ck_assert_int_eq(fd_set_cloexec(fd, true), 0);
    struct stat st;
    ck_assert_int_eq(fd_regular_or_close(fd, &st), 0);    /* still open */
    ck_assert_int_eq(st.st_size, 11);
    close(fd);
    ck_assert_int_eq(fsync_parent_dir(file), 0);
    /* a FIFO or a directory: refused, and the descriptor closed */
    char fifo[320];
    snprintf(fifo, sizeof(fifo), "%s/fifo", path);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    const char *odd[] = { fifo, path };
    for (size_t i = 0; i < 2; i++) {
        fd = open(odd[i], O_RDONLY | O_NONBLOCK);
        ck_assert_int_ge(fd, 0);
        errno = 0;
        ck_assert_int_eq(fd_regular_or_close(fd, NULL), -1);
        ck_assert_int_eq(errno, EINVAL);
        ck_assert_int_eq(fcntl(fd, F_GETFD), -1);
    }
    /* a file in the way of mkdir_p */
    ck_assert_int_eq(mkdir_p(file, 0700), -1);
    ck_assert_int_eq(fsync_dir("/nonexistent/tern"), -1);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpl);
    ck_assert_int_eq(system(cmd), 0);
}
END_TEST

START_TEST(test_passwd_lookup)
{
    struct passwd pw;
    char *buf = (char *)1;
    ck_assert_int_eq(passwd_lookup("root", &pw, &buf), 1);
    ck_assert_int_eq(pw.pw_uid, 0);
    ck_assert_str_eq(pw.pw_name, "root");
    free(buf);
    ck_assert_int_eq(passwd_lookup("no-such-user-tern-test", &pw, &buf), 0);
    ck_assert_ptr_null(buf);
    ck_assert_int_eq(passwd_lookup("", &pw, &buf), 0);
    ck_assert_ptr_null(buf);
}
END_TEST

START_TEST(test_time)
{
    uint64_t a = time_now_usec();
    ck_assert(a > 1600000000ull * 1000000ull);
    uint64_t m1 = time_mono_msec(), m2 = time_mono_msec();
    ck_assert(m2 >= m1);
}
END_TEST

/* str_list_next_word: the words of a Postfix-style list, braces kept */
START_TEST(test_list_next_word)
{
    static const struct {
        const char *in;
        const char *words;          /* the words joined by '|'; "!" = -1 */
    } cases[] = {
        { "", "" },
        { " ,\t\n", "" },
        { "a", "a" },
        { "a, b\tc\r\nd", "a|b|c|d" },
        { ",,a,,b,,", "a|b" },
        { "inline:{a=1, b=2}, lmdb:/x", "inline:{a=1, b=2}|lmdb:/x" },
        { "x{a {b c} d}y z", "x{a {b c} d}y|z" },
        { "a {b", "a|!" },
        { "a }b", "a|!" },
        { "}", "!" },
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char got[256] = "";
        size_t used = 0;
        const char *s = cases[i].in;
        long len;

        while ((len = str_list_next_word(&s)) > 0) {
            used += (size_t)snprintf(got + used, sizeof(got) - used, "%s%.*s",
                                     used ? "|" : "", (int)len, s);
            s += len;
        }
        if (len < 0)
            (void)snprintf(got + used, sizeof(got) - used, "%s!",
                           used ? "|" : "");
        ck_assert_msg(strcmp(got, cases[i].words) == 0,
                      "case %zu \"%s\": got \"%s\", want \"%s\"", i,
                      cases[i].in, got, cases[i].words);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("util");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_parse_long, 0, sizeof(long_cases) / sizeof(long_cases[0]));
    tcase_add_loop_test(tc, test_parse_time, 0, sizeof(time_cases) / sizeof(time_cases[0]));
    tcase_add_loop_test(tc, test_parse_size, 0, sizeof(size_cases) / sizeof(size_cases[0]));
    tcase_add_test(tc, test_parse_bool);
    tcase_add_test(tc, test_str_copy);
    tcase_add_test(tc, test_split_trim);
    tcase_add_test(tc, test_list_next_word);
    tcase_add_test(tc, test_files);
    tcase_add_test(tc, test_passwd_lookup);
    tcase_add_test(tc, test_time);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
