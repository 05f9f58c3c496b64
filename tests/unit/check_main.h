/*
 * check_main - the one way every unit test program runs its Check suite:
 * run it, print Check's summary line, exit non-zero on any failure.
 *
 * Skips: Check has no notion of a skipped test, so a test that cannot run
 * here (TERN_SKIP_UNLESS_ROOT) says "SKIPPED: <test>: <why>" on stderr and
 * records itself in a file shared with the forked test processes;
 * tern_check_run then prints "N of M tests skipped" after Check's summary.
 * A skipped test counts as passed for Check. When TERN_SKIP_RETURN_CODE is
 * set (ctest: the same value as the test's SKIP_RETURN_CODE property) a run
 * with no failure and at least one skip exits with that code, so ctest
 * reports the program as skipped, not passed.
 */
#ifndef TERN_CHECK_MAIN_H
#define TERN_CHECK_MAIN_H

#include <check.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* the skip record: one line per skipped test; -1 outside tern_check_run */
static int tern_check_skip_fd = -1;

/* tern_check_skip - note that the running test is skipped, and why */
static inline void tern_check_skip(const char *test, const char *why)
{
    char line[512];
    size_t tlen = strlen(test);
    /* START_TEST(name) defines name_fn: report the name */
    if (tlen > 3 && strcmp(test + tlen - 3, "_fn") == 0)
        tlen -= 3;
    int n = snprintf(line, sizeof(line), "SKIPPED: %.*s: %s\n", (int)tlen,
                     test, why);
    if (n < 0)
        return;
    size_t len = (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1;
    if (write(STDERR_FILENO, line, len) < 0) {
        /* nothing to do: the record below still counts the skip */
    }
    /* one write: forked tests share the file offset, so lines append */
    if (tern_check_skip_fd >= 0 && write(tern_check_skip_fd, line, len) < 0)
        fprintf(stderr, "check_main: cannot record the skip of %s\n", test);
}

/* skip (pass without running) the current test unless running as root */
#define TERN_SKIP_UNLESS_ROOT() do {                                  \
        if (geteuid() != 0) {                                         \
            tern_check_skip(__func__, "needs root");                  \
            return;                                                   \
        }                                                             \
    } while (0)

/* tern_check_count_skips - lines in the skip record */
static inline int tern_check_count_skips(int fd)
{
    char buf[4096];
    int lines = 0;
    off_t off = 0;
    for (;;) {
        ssize_t n = pread(fd, buf, sizeof(buf), off);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            lines += buf[i] == '\n';
        off += n;
    }
    return lines;
}

/* fork: false runs every test in this process (tests that need shared
   state across tests, or that must see their own leaks) */
static inline int tern_check_run(Suite *s, bool fork)
{
    char path[] = "/tmp/tern-check-skips.XXXXXX";
    tern_check_skip_fd = mkstemp(path);
    if (tern_check_skip_fd < 0) {
        perror("check_main: mkstemp");
        return EXIT_FAILURE;
    }
    (void)unlink(path);
    SRunner *sr = srunner_create(s);
    if (!fork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    int run = srunner_ntests_run(sr);
    srunner_free(sr);
    int skipped = tern_check_count_skips(tern_check_skip_fd);
    close(tern_check_skip_fd);
    tern_check_skip_fd = -1;
    if (skipped > 0)
        printf("%d of %d tests skipped (counted as passed above)\n",
               skipped, run);
    if (failed != 0)
        return EXIT_FAILURE;
    const char *code = getenv("TERN_SKIP_RETURN_CODE");
    if (skipped > 0 && code != NULL && *code != '\0')
        return atoi(code);
    return EXIT_SUCCESS;
}

#endif
