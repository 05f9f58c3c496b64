/*
 * test_login_token - unit tests for lib/mail/login_token.c and the key
 * file rules of lib/util/keyfile.c: a token checks for its own service and
 * user only, not after its expiry nor long before it was made, not when a
 * byte is changed; a table of malformed tokens is refused; the key file is
 * made once (0600) and read back, and a key file that is a symlink, has
 * group/other bits, the wrong size or (as root) a foreign owner is
 * refused, as is a directory writable by others.
 */
#include <check.h>

#include "check_main.h"
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mail/login_token.h"
#include "util/keyfile.h"

static const unsigned char test_key[LOGIN_TOKEN_KEY_SIZE] = "0123456789abcdef0123456789abcdef";
static const time_t T0 = 1800000000;

static void token_for(const char *service, const char *user, time_t now,
                      char *out)
{
    ck_assert_int_eq(login_token_make(service, user, now, out,
                                      LOGIN_TOKEN_MAX + 1), 0);
}

START_TEST(test_good)
{
    char tok[LOGIN_TOKEN_MAX + 1], tok2[LOGIN_TOKEN_MAX + 1];

    login_token_key_set(test_key, sizeof(test_key));
    token_for("pop3", "demo", T0, tok);
    ck_assert_uint_le(strlen(tok), LOGIN_TOKEN_MAX);
    ck_assert(strncmp(tok, "1.", 2) == 0);
    ck_assert(login_token_check("pop3", "demo", tok, T0));
    ck_assert(login_token_check("pop3", "demo", tok,
                                T0 + LOGIN_TOKEN_LIFETIME - 1));
    /* clock a bit behind the issuer: still fine */
    ck_assert(login_token_check("pop3", "demo", tok, T0 - 60));
    /* two tokens for the same user differ (nonce) */
    token_for("pop3", "demo", T0, tok2);
    ck_assert_str_ne(tok, tok2);
    /* a user name with spaces and UTF-8 */
    token_for("imap", "J\xc3\xb6rg Smith", T0, tok);
    ck_assert(login_token_check("imap", "J\xc3\xb6rg Smith", tok, T0));
    login_token_key_wipe();
}
END_TEST

START_TEST(test_wrong_user_service_key)
{
    char tok[LOGIN_TOKEN_MAX + 1];
    unsigned char other[LOGIN_TOKEN_KEY_SIZE];

    login_token_key_set(test_key, sizeof(test_key));
    token_for("pop3", "demo", T0, tok);
    ck_assert(!login_token_check("pop3", "demo2", tok, T0));
    ck_assert(!login_token_check("pop3", "dem", tok, T0));
    ck_assert(!login_token_check("pop3", "DEMO", tok, T0));
    ck_assert(!login_token_check("imap", "demo", tok, T0));
    ck_assert(!login_token_check("pop", "3demo", tok, T0));
    ck_assert(!login_token_check("", "demo", tok, T0));
    ck_assert(!login_token_check("pop3", "", tok, T0));
    ck_assert(!login_token_check(NULL, "demo", tok, T0));
    ck_assert(!login_token_check("pop3", NULL, tok, T0));
    memcpy(other, test_key, sizeof(other));
    other[0] ^= 1;
    login_token_key_set(other, sizeof(other));
    ck_assert(!login_token_check("pop3", "demo", tok, T0));
    /* no key: nothing checks, nothing is made */
    login_token_key_wipe();
    login_token_key_set(test_key, sizeof(test_key));
    ck_assert(login_token_check("pop3", "demo", tok, T0));
    login_token_key_wipe();
    ck_assert(!login_token_check("pop3", "demo", tok, T0));
    ck_assert_int_eq(login_token_make("pop3", "demo", T0, tok, sizeof(tok)),
                     -1);
}
END_TEST

START_TEST(test_expired)
{
    char tok[LOGIN_TOKEN_MAX + 1];

    login_token_key_set(test_key, sizeof(test_key));
    token_for("pop3", "demo", T0, tok);
    ck_assert(!login_token_check("pop3", "demo", tok,
                                 T0 + LOGIN_TOKEN_LIFETIME));
    ck_assert(!login_token_check("pop3", "demo", tok, T0 + 100000));
    /* made far in the future from the checker's point of view */
    ck_assert(!login_token_check("pop3", "demo", tok, T0 - 61));
    ck_assert(!login_token_check("pop3", "demo", tok, 0));
    login_token_key_wipe();
}
END_TEST

START_TEST(test_tampered)
{
    char tok[LOGIN_TOKEN_MAX + 1], bad[LOGIN_TOKEN_MAX + 2];

    login_token_key_set(test_key, sizeof(test_key));
    token_for("pop3", "demo", T0, tok);
    size_t len = strlen(tok);
    for (size_t i = 0; i < len; i++) {
        static const char repl[] = "0123456789abcdef.A";
        for (const char *r = repl; *r; r++) {
            if (*r == tok[i])
                continue;
            memcpy(bad, tok, len + 1);
            bad[i] = *r;
            ck_assert_msg(!login_token_check("pop3", "demo", bad, T0),
                          "changed byte %zu to %c", i, *r);
        }
    }
    /* truncated, extended */
    for (size_t i = 0; i < len; i++) {
        memcpy(bad, tok, i);
        bad[i] = '\0';
        ck_assert(!login_token_check("pop3", "demo", bad, T0));
    }
    memcpy(bad, tok, len);
    bad[len] = '0';
    bad[len + 1] = '\0';
    ck_assert(!login_token_check("pop3", "demo", bad, T0));
    login_token_key_wipe();
}
END_TEST

static const char *const malformed[] = {
    "", "1", "1.", "1..", "1...", "2.1800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.01800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.+1800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.-1800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1. 1800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.99999999999999999999999.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.0000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.00000000000000000000000000000000."
    "000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.00000000000000000000000000000000."
    "00000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.0000000000000000000000000000000G."
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.00000000000000000000000000000000."
    "000000000000000000000000000000000000000000000000000000000000000A",
    "1.1800000030.00000000000000000000000000000000."
    "0000000000000000000000000000000000000000000000000000000000000000.",
    "1.1800000030.00000000000000000000000000000000"
    "0000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.00000000000000000000000000000000.\n"
    "000000000000000000000000000000000000000000000000000000000000000",
    "1.1800000030.00000000000000000000000000000000..",
    "\xff\xfe", "1.1800000030\x00.0",
};

START_TEST(test_malformed)
{
    char huge[4096];

    login_token_key_set(test_key, sizeof(test_key));
    ck_assert(!login_token_check("pop3", "demo", malformed[_i], T0));
    ck_assert(!login_token_check("pop3", "demo", NULL, T0));
    memset(huge, 'a', sizeof(huge) - 1);
    huge[sizeof(huge) - 1] = '\0';
    huge[0] = '1';
    huge[1] = '.';
    ck_assert(!login_token_check("pop3", "demo", huge, T0));
    login_token_key_wipe();
}
END_TEST

START_TEST(test_make_refuses_bad)
{
    char tok[LOGIN_TOKEN_MAX + 1];
    char user[300];

    login_token_key_set(test_key, sizeof(test_key));
    ck_assert_int_eq(login_token_make("pop3", "", T0, tok, sizeof(tok)), -1);
    ck_assert_int_eq(login_token_make("", "demo", T0, tok, sizeof(tok)), -1);
    ck_assert_int_eq(login_token_make("pop3", "de\nmo", T0, tok,
                                      sizeof(tok)), -1);
    memset(user, 'u', sizeof(user) - 1);
    user[sizeof(user) - 1] = '\0';
    ck_assert_int_eq(login_token_make("pop3", user, T0, tok, sizeof(tok)), -1);
    user[255] = '\0';
    ck_assert_int_eq(login_token_make("pop3", user, T0, tok, sizeof(tok)), 0);
    ck_assert(login_token_check("pop3", user, tok, T0));
    /* too small a buffer */
    ck_assert_int_eq(login_token_make("pop3", "demo", T0, tok, 20), -1);
    ck_assert_str_eq(tok, "");
    login_token_key_wipe();
}
END_TEST

/* a fresh private directory */
static void tmpdir(char *dir, size_t size)
{
    ck_assert_int_lt(snprintf(dir, size, "/tmp/test_login_token.XXXXXX"),
                     (int)size);
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void rmtree(const char *dir)
{
    char cmd[512];

    (void)snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void path_in(char *out, size_t size, const char *dir, const char *name)
{
    ck_assert_int_lt(snprintf(out, size, "%s/%s", dir, name), (int)size);
}

START_TEST(test_key_file_made_and_read)
{
    char dir[256], sub[300], key[400], tok[LOGIN_TOKEN_MAX + 1];
    struct stat st;

    tmpdir(dir, sizeof(dir));
    path_in(sub, sizeof(sub), dir, "data");     /* made 0700 */
    ck_assert_int_eq(login_token_key_load(sub), 0);
    ck_assert_int_eq(stat(sub, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0700);
    path_in(key, sizeof(key), sub, LOGIN_TOKEN_KEY_FILE);
    ck_assert_int_eq(lstat(key, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_size, LOGIN_TOKEN_KEY_SIZE);
    token_for("pop3", "demo", T0, tok);
    /* another process loads the same key */
    login_token_key_wipe();
    ck_assert_int_eq(login_token_key_load(sub), 0);
    ck_assert(login_token_check("pop3", "demo", tok, T0));
    ck_assert_int_eq(stat(key, &st), 0);
    login_token_key_wipe();
    rmtree(dir);
}
END_TEST

enum bad_key { BAD_MODE, BAD_GROUP_MODE, BAD_SIZE, BAD_SYMLINK, BAD_DIR_MODE,
               BAD_FIFO, BAD_KEYS };

START_TEST(test_key_file_refused)
{
    char dir[256], key[400], other[400];
    unsigned char k[LOGIN_TOKEN_KEY_SIZE] = { 1 };
    int fd;

    tmpdir(dir, sizeof(dir));
    path_in(key, sizeof(key), dir, LOGIN_TOKEN_KEY_FILE);
    path_in(other, sizeof(other), dir, "elsewhere");
    fd = open(_i == BAD_SYMLINK ? other : key,
              O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, k, _i == BAD_SIZE ? sizeof(k) - 1 : sizeof(k)),
                     (ssize_t)(_i == BAD_SIZE ? sizeof(k) - 1 : sizeof(k)));
    ck_assert_int_eq(close(fd), 0);
    switch (_i) {
    case BAD_MODE:
        ck_assert_int_eq(chmod(key, 0644), 0);
        break;
    case BAD_GROUP_MODE:
        ck_assert_int_eq(chmod(key, 0640), 0);
        break;
    case BAD_SYMLINK:
        ck_assert_int_eq(symlink(other, key), 0);
        break;
    case BAD_DIR_MODE:
        ck_assert_int_eq(chmod(dir, 0777), 0);
        break;
    case BAD_FIFO:
        ck_assert_int_eq(unlink(key), 0);
        ck_assert_int_eq(mkfifo(key, 0600), 0);
        break;
    default:
        break;
    }
    login_token_key_set(test_key, sizeof(test_key));
    ck_assert_int_eq(login_token_key_load(dir), -1);
    /* a failed load leaves no usable key behind */
    char tok[LOGIN_TOKEN_MAX + 1];
    ck_assert_int_eq(login_token_make("pop3", "demo", T0, tok, sizeof(tok)),
                     -1);
    /* and the bad file was not replaced */
    struct stat st;
    ck_assert_int_eq(lstat(key, &st), 0);
    if (_i == BAD_SYMLINK)
        ck_assert(S_ISLNK(st.st_mode));
    rmtree(dir);
}
END_TEST

START_TEST(test_key_file_foreign_owner)
{
    TERN_SKIP_UNLESS_ROOT();
    char dir[256], key[400];
    unsigned char k[LOGIN_TOKEN_KEY_SIZE] = { 1 };

    tmpdir(dir, sizeof(dir));
    path_in(key, sizeof(key), dir, LOGIN_TOKEN_KEY_FILE);
    int fd = open(key, O_WRONLY | O_CREAT | O_EXCL, 0600);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, k, sizeof(k)), (ssize_t)sizeof(k));
    ck_assert_int_eq(close(fd), 0);
    ck_assert_int_eq(chown(key, 65534, 65534), 0);
    ck_assert_int_eq(login_token_key_load(dir), -1);
    /* a directory of someone else */
    ck_assert_int_eq(unlink(key), 0);
    ck_assert_int_eq(chown(dir, 65534, 65534), 0);
    ck_assert_int_eq(login_token_key_load(dir), -1);
    rmtree(dir);
}
END_TEST

/* keyfile's rotation mode (smtpd's ticket keys): an unsound file is
   replaced; an old one is rotated keeping its first part */
START_TEST(test_keyfile_rotation)
{
    char dir[256], key[400];
    unsigned char a[16], b[16];
    const char *why = NULL;
    struct keyfile_spec spec = { .size = 16, .max_age = 3600, .keep = 8,
                                 .strict = false };
    struct timespec times[2] = { { .tv_sec = 1000 }, { .tv_sec = 1000 } };

    tmpdir(dir, sizeof(dir));
    path_in(key, sizeof(key), dir, "k");
    ck_assert_int_eq(keyfile_load(dir, "k", "k.lock", &spec, a, &why), 2);
    ck_assert_int_eq(keyfile_load(dir, "k", "k.lock", &spec, b, &why), 1);
    ck_assert(memcmp(a, b, 16) == 0);
    ck_assert_int_eq(utimensat(AT_FDCWD, key, times, 0), 0);
    ck_assert_int_eq(keyfile_load(dir, "k", "k.lock", &spec, b, &why), 2);
    ck_assert(memcmp(a, b + 8, 8) == 0);
    ck_assert(memcmp(a, b, 16) != 0);
    ck_assert_int_eq(chmod(key, 0644), 0);
    ck_assert_int_eq(keyfile_load(dir, "k", "k.lock", &spec, a, &why), 2);
    ck_assert(memcmp(a + 8, b, 8) != 0 || memcmp(a, b, 8) != 0);
    struct stat st;
    ck_assert_int_eq(stat(key, &st), 0);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    rmtree(dir);
}
END_TEST

static Suite *login_token_suite(void)
{
    Suite *s = suite_create("login_token");
    TCase *tc = tcase_create("token");

    tcase_add_test(tc, test_good);
    tcase_add_test(tc, test_wrong_user_service_key);
    tcase_add_test(tc, test_expired);
    tcase_add_test(tc, test_tampered);
    tcase_add_loop_test(tc, test_malformed, 0,
                        sizeof(malformed) / sizeof(malformed[0]));
    tcase_add_test(tc, test_make_refuses_bad);
    tcase_add_test(tc, test_key_file_made_and_read);
    tcase_add_loop_test(tc, test_key_file_refused, 0, BAD_KEYS);
    tcase_add_test(tc, test_key_file_foreign_owner);
    tcase_add_test(tc, test_keyfile_rotation);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return tern_check_run(login_token_suite(), true);
}
