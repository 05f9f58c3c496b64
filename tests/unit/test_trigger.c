/*
 * test_trigger - trigger_send (lib/mail/server.c) against a plain UNIX
 * listener: one kept connection carries many triggers; a server that
 * went away is reconnected to once; a full socket buffer never blocks;
 * the kept descriptor is close-on-exec and a fork()ed child drops it;
 * more paths than it keeps still work (one-shot).
 */
#include <check.h>

#include "check_main.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include "mail/server.h"

static char dir[64];

/* listen_at - a listening UNIX socket at dir/name */
static int listen_at(const char *name)
{
    struct sockaddr_un sun;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    ck_assert_int_ge(fd, 0);
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s/%s", dir, name);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
    ck_assert_int_eq(listen(fd, 16), 0);
    return fd;
}

static const char *path_of(const char *name)
{
    static char path[128];

    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return path;
}

/* accept_now - a pending connection, or -1 when there is none */
static int accept_now(int lfd)
{
    return accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* read_wait - read what fd has, waiting (generously) for it */
static ssize_t read_wait(int fd, char *buf, size_t size)
{
    struct pollfd pfd = { .fd = fd, .events = POLLIN };

    ck_assert_int_eq(poll(&pfd, 1, 30000), 1);
    return read(fd, buf, size);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/tern-trigger-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "cannot remove %s\n", dir);
}

START_TEST(test_one_connection_many_triggers)
{
    int lfd = listen_at("qmgr"), c;
    char buf[16];

    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_WAKEUP), 0);
    c = accept_now(lfd);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(accept_now(lfd), -1);      /* one connection only */
    ck_assert_int_eq(errno, EAGAIN);
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 3);
    ck_assert(memcmp(buf, "AAW", 3) == 0);
    /* closing it is the server's EOF */
    trigger_close_all();
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 0);
    close(c);
    close(lfd);
}
END_TEST

START_TEST(test_reconnect_after_server_close)
{
    int lfd = listen_at("qmgr"), c;
    char buf[16];

    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    c = accept_now(lfd);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 1);
    close(c);                   /* qmgr exits (or is killed) */
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    c = accept_now(lfd);        /* the next qmgr's connection */
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 1);
    ck_assert_int_eq(buf[0], TRIGGER_NEW_MAIL);
    close(c);
    close(lfd);
}
END_TEST

START_TEST(test_listener_gone_then_back)
{
    int lfd, c;
    char buf[4];

    /* nothing listens: an error, and no connection is remembered */
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), -1);
    lfd = listen_at("qmgr");
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    c = accept_now(lfd);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 1);
    close(c);
    close(lfd);
}
END_TEST

START_TEST(test_full_buffer_never_blocks)
{
    int lfd = listen_at("qmgr"), n;

    /* nobody reads: the socket fills up, trigger_send still returns */
    for (n = 0; n < 200000; n++)
        ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    /* a byte that is not a mere wakeup is not silently dropped */
    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_FLUSH), -1);
    ck_assert_int_eq(errno, EAGAIN);
    close(lfd);
}
END_TEST

/* kept_sockets - socket descriptors other than those of the test */
static int kept_sockets(int skip1, int skip2, int *fd_r)
{
    int n = 0;

    for (int fd = 3; fd < 1024; fd++) {
        struct stat st;

        if (fd == skip1 || fd == skip2 || fstat(fd, &st) < 0
            || !S_ISSOCK(st.st_mode))
            continue;
        *fd_r = fd;
        n++;
    }
    return n;
}

START_TEST(test_cloexec_and_not_shared_with_children)
{
    int lfd = listen_at("qmgr"), c, fd = -1, go[2], status;
    char buf[4];
    pid_t pid;

    ck_assert_int_eq(trigger_send(path_of("qmgr"), TRIGGER_NEW_MAIL), 0);
    c = accept_now(lfd);
    ck_assert_int_ge(c, 0);
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 1);
    ck_assert_int_eq(kept_sockets(lfd, c, &fd), 1);
    ck_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    ck_assert_int_eq(pipe(go), 0);
    pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int dummy;

        close(go[1]);
        /* the child holds no copy of the kept connection */
        if (kept_sockets(lfd, c, &dummy) != 0)
            _exit(2);
        if (read(go[0], buf, 1) < 0)
            _exit(3);
        _exit(0);
    }
    close(go[0]);
    /* the parent lets it go while the child still lives: EOF at once */
    trigger_close_all();
    ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 0);
    close(go[1]);
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    close(c);
    close(lfd);
}
END_TEST

START_TEST(test_more_paths_than_kept)
{
    char name[16], buf[4];
    int lfd[8];

    for (int i = 0; i < 8; i++) {
        snprintf(name, sizeof(name), "s%d", i);
        lfd[i] = listen_at(name);
        ck_assert_int_eq(trigger_send(path_of(name), TRIGGER_NEW_MAIL), 0);
    }
    for (int i = 0; i < 8; i++) {
        int c = accept_now(lfd[i]);

        ck_assert_int_ge(c, 0);
        ck_assert_int_eq(read_wait(c, buf, sizeof(buf)), 1);
        close(c);
        close(lfd[i]);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("trigger");
    TCase *tc = tcase_create("client");

    signal(SIGPIPE, SIG_IGN);
    tcase_set_timeout(tc, 60);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_one_connection_many_triggers);
    tcase_add_test(tc, test_reconnect_after_server_close);
    tcase_add_test(tc, test_listener_gone_then_back);
    tcase_add_test(tc, test_full_buffer_never_blocks);
    tcase_add_test(tc, test_cloexec_and_not_shared_with_children);
    tcase_add_test(tc, test_more_paths_than_kept);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
