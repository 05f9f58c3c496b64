/*
 * check_main - the one way every unit test program runs its Check suite:
 * run it, print Check's summary line, exit non-zero on any failure.
 */
#ifndef TERN_CHECK_MAIN_H
#define TERN_CHECK_MAIN_H

#include <check.h>
#include <stdbool.h>
#include <stdlib.h>

/* fork: false runs every test in this process (tests that need shared
   state across tests, or that must see their own leaks) */
static inline int tern_check_run(Suite *s, bool fork)
{
    SRunner *sr = srunner_create(s);
    if (!fork)
        srunner_set_fork_status(sr, CK_NOFORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
