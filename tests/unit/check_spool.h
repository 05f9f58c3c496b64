/*
 * check_spool.h - a scratch spool for Check suites that write queue
 * files: base_setup/base_teardown (unchecked fixture, in the parent: one
 * mkdtemp directory per run, removed even when a test fails in its
 * child) and spool_enter/spool_leave (per test: a fresh directory inside
 * it with the spool subdirectories, made the current directory as a
 * daemon's chdir to the spool would). Define SPOOL_TEST_NAME first.
 */
#ifndef TERN_CHECK_SPOOL_H
#define TERN_CHECK_SPOOL_H

#include <check.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mail/queue.h"

static char basedir[PATH_MAX];     /* removed by the parent process */
static char tmpdir[PATH_MAX];      /* one per test, inside basedir */
static char olddir[PATH_MAX];

static int rm_entry(const char *path, const struct stat *st, int flag,
                    struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void base_setup(void)
{
    const char *t = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    int n = snprintf(basedir, sizeof(basedir), "%s/tern-%s-XXXXXX", t,
                     SPOOL_TEST_NAME);

    if (n < 0 || (size_t)n >= sizeof(basedir) - 32 || mkdtemp(basedir) == NULL) {
        perror("mkdtemp");
        exit(EXIT_FAILURE);
    }
}

static void base_teardown(void)
{
    nftw(basedir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* spool_enter - a fresh tmpdir (not yet entered when before_chdir runs) */
static void spool_enter(void (*before_chdir)(void))
{
    ck_assert_ptr_nonnull(getcwd(olddir, sizeof(olddir)));
    int n = snprintf(tmpdir, sizeof(tmpdir), "%s/test-XXXXXX", basedir);

    ck_assert(n > 0 && (size_t)n < sizeof(tmpdir));
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
    if (before_chdir != NULL)
        before_chdir();
    ck_assert_int_eq(chdir(tmpdir), 0);
    ck_assert_int_eq(queue_dirs_create(".", (uid_t)-1, (gid_t)-1, (gid_t)-1), 0);
}

static void spool_leave(void)
{
    if (chdir(olddir) < 0)
        return;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
