/*
 * Unit tests for the local delivery agent's delivery logic
 * (local/local_deliver.c, local/local_maildir.c): Maildir layout and
 * names, idempotent retries, alias expansion, loops, limits, forwarding.
 */
#include <check.h>

#include "check_main.h"
#include <dirent.h>
#include <fcntl.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/util.h"

/* mkdir and fsync_parent_dir as local_maildir.c calls them, recorded in
   order (the real calls happen too): new directories must be fsync'd in
   their parent before a delivery counts */
static char dir_events[4096];
/* every mkdir and pread tried (a delivery into an existing Maildir needs
   no mkdir, and reads the content once) */
static unsigned mkdir_calls, pread_calls;
static int test_mkdir(const char *path, mode_t mode);
static int test_fsync_parent_dir(const char *path) __attribute__((unused));
static ssize_t test_pread(int fd, void *p, size_t n, off_t off);
#define mkdir test_mkdir
#define fsync_parent_dir test_fsync_parent_dir
#define pread test_pread
#include "../../local/local_deliver.c"
#include "../../local/local_alias.c"
#include "../../local/local_command.c"
#include "../../local/local_forward.c"
#include "../../local/local_maildir.c"
#include "../../local/local_mailbox.c"
#include "../../local/local_mbox.c"
#include "../../local/local_queue.c"
#undef mkdir
#undef fsync_parent_dir
#undef pread

static void dir_event(const char *what, const char *path)
{
    size_t len = strlen(dir_events);
    const char *base = strrchr(path, '/');
    snprintf(dir_events + len, sizeof(dir_events) - len, "%s %s;", what,
             base ? base + 1 : path);
}

static ssize_t test_pread(int fd, void *p, size_t n, off_t off)
{
    pread_calls++;
    return pread(fd, p, n, off);
}

static int test_mkdir(const char *path, mode_t mode)
{
    mkdir_calls++;
    int r = mkdir(path, mode);
    if (r == 0)
        dir_event("mkdir", path);
    return r;
}

static int test_fsync_parent_dir(const char *path)
{
    int r = fsync_parent_dir(path);
    dir_event(r == 0 ? "fsync-parent" : "fsync-parent-failed", path);
    return r;
}
#include "mail/config.h"
#include "mail/dict_build.h"
#include "mail/deliver.h"
#include "mail/queue.h"
#include "mail/queue_reader.h"
#include "mail/queue_writer.h"

static char topdir[] = "/tmp/tern-local-XXXXXX";
static char spool[512], home_demo[512], home_bob[512];

static struct local_aliases *test_aliases_maps;
/* the spool owner: "nobody" as root, so the test needs none of Tern's
   own accounts (a fresh machine has no "tern" user) */
static char owner_name[64];
static uid_t owner_uid;
static gid_t owner_gid;

static struct local_aliases *local_alias_maps_for_test(void)
{
    return test_aliases_maps;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static void setup(void)
{
    ck_assert_ptr_nonnull(mkdtemp(topdir));
    char etc[512], aliases[600], conf[4096], text[1024];
    snprintf(spool, sizeof(spool), "%s/spool", topdir);
    snprintf(etc, sizeof(etc), "%s/etc", topdir);
    snprintf(home_demo, sizeof(home_demo), "%s/demo", topdir);
    snprintf(home_bob, sizeof(home_bob), "%s/bob", topdir);
    ck_assert_int_eq(mkdir_p(etc, 0755), 0);
    ck_assert_int_eq(mkdir_p(home_demo, 0755), 0);
    ck_assert_int_eq(mkdir_p(home_bob, 0755), 0);
    /* as root, deliver as nobody: exercises the real privilege switch */
    uid_t uid = getuid();
    gid_t gid = getgid();
    if (uid == 0)
        ck_assert_int_eq(privs_lookup_user("nobody", &uid, &gid), 0);
    owner_uid = uid;
    owner_gid = gid;
    struct passwd *pw = getpwuid(uid);
    ck_assert_ptr_nonnull(pw);
    str_copy(owner_name, pw->pw_name, sizeof(owner_name));
    ck_assert_int_eq(chmod(topdir, 0755), 0);
    ck_assert_int_eq(chown(home_demo, uid, gid), 0);
    ck_assert_int_eq(chown(home_bob, uid, gid), 0);
    snprintf(aliases, sizeof(aliases), "%s/aliases", etc);
    snprintf(text, sizeof(text),
             "team: demo, bob\nboss: team\nloopa: loopb\nloopb: loopa\n"
             "out: friend@remote.example, demo\npiped: |/bin/cat\n"
             "self: \\self, bob\ncmdplus: |/bin/true, demo\n");
    write_file(aliases, text);
    buf_t err;
    buf_init(&err, 0);
    ck_assert_int_eq(dict_lmdb_build(aliases, true, &err), 0);
    snprintf(conf, sizeof(conf),
             "mydestination = localhost\nqueue_directory = %s\n"
             "alias_maps = lmdb:%s\n"
             "virtual_user_maps = inline:{demo=%d:%d:%s, bob=%d:%d:%s, self=%d:%d:%s, "
             "ghost=%d:%d:%s/ghost}\n"
             "mailbox_size_limit = 100000\nmail_owner = %s\n",
             spool, aliases, (int)uid, (int)gid, home_demo, (int)uid, (int)gid,
             home_bob, (int)uid, (int)gid, home_bob, (int)uid, (int)gid, topdir,
             owner_name);
    ck_assert_msg(config_load_text(conf, strlen(conf), "main.conf", etc, &err) == 0,
                  "%s", buf_str(&err));
    buf_free(&err);
    ck_assert_int_eq(mailuser_init(), 0);
    const char *merr = NULL;
    test_aliases_maps = local_aliases_open(var_alias_maps, &merr);
    ck_assert_ptr_nonnull(test_aliases_maps);
    ck_assert_int_eq(queue_dirs_create(spool, owner_uid, owner_gid, (gid_t)-1), 0);
    ck_assert_int_eq(chdir(spool), 0);
}

static void teardown(void)
{
    char cmd[600];
    local_aliases_close(test_aliases_maps);
    ck_assert_int_eq(chdir("/"), 0);
    snprintf(cmd, sizeof(cmd), "rm -rf %s", topdir);
    ck_assert_int_eq(system(cmd), 0);
    strcpy(topdir, "/tmp/tern-local-XXXXXX");
}

/* make a queue file in active/ for rcpt; fill a request pointing at it */
static void make_request(const char *rcpt, const char *body, struct local_request *r,
                         char *qid, queue_msg_t *m)
{
    queue_writer_t w;
    ck_assert_int_eq(queue_writer_open(&w, QUEUE_ACTIVE), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_SENDER, "a@example.org", 13), 0);
    ck_assert_int_eq(queue_writer_record(&w, QREC_RCPT, rcpt, strlen(rcpt)), 0);
    ck_assert_int_eq(queue_writer_content_begin(&w), 0);
    ck_assert_int_eq(queue_writer_content(&w, body, strlen(body)), 0);
    ck_assert_int_eq(queue_writer_commit(&w), 0);
    str_copy(qid, w.qid, QUEUE_ID_SIZE);
    buf_t path;
    buf_init(&path, 0);
    queue_path(QUEUE_ACTIVE, qid, &path);
    int fd = open(buf_str(&path), O_RDWR);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(fchown(fd, owner_uid, owner_gid), 0);
    buf_free(&path);
    const char *err = NULL;
    ck_assert_int_eq(queue_file_read(fd, qid, m, &err), 0);
    memset(r, 0, sizeof(*r));
    r->queue_name = QUEUE_ACTIVE;
    r->queue_id = qid;
    r->sender = "a@example.org";
    r->recipient = rcpt;
    r->orig_rcpt = rcpt;
    r->rcpt_offset = m->rcpts[0].offset;
    r->content_offset = m->content_offset;
    r->content_size = m->content_len;
    r->arrival_usec = m->arrival_usec;
    r->queue_fd = fd;
}

static int count_new(const char *home, char *name_out, size_t size)
{
    char dir[600];
    snprintf(dir, sizeof(dir), "%s/Maildir/new", home);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        n++;
        if (name_out)
            str_copy(name_out, e->d_name, size);
    }
    closedir(d);
    return n;
}

static struct local_result run(const char *rcpt, const char *body)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    make_request(rcpt, body, &r, qid, &m);
    local_deliver(&r, local_alias_maps_for_test(), &res);
    close(r.queue_fd);
    queue_msg_free(&m);
    return res;
}

START_TEST(test_maildir_delivery_and_retry)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE], name[512], path[1200];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    make_request("demo@localhost", "Subject: x\n\nhello\n", &r, qid, &m);
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(res.dsn, "2.0.0");
    ck_assert_int_eq(count_new(home_demo, name, sizeof(name)), 1);
    ck_assert_ptr_nonnull(strstr(name, qid));
    /* the size in the name is the file's size */
    snprintf(path, sizeof(path), "%s/Maildir/new/%s", home_demo, name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char want[64];
    /* S= the size, W= the size with LF as CR LF (5 lines), at the end */
    snprintf(want, sizeof(want), ",S=%lld,W=%lld", (long long)st.st_size,
             (long long)st.st_size + 5);
    ck_assert_uint_gt(strlen(name), strlen(want));
    ck_assert_str_eq(name + strlen(name) - strlen(want), want);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    char data[256] = { 0 };
    ck_assert_int_gt(fread(data, 1, sizeof(data) - 1, f), 0);
    fclose(f);
    ck_assert_str_eq(data, "Return-Path: <a@example.org>\nDelivered-To: demo@localhost\n"
                           "Subject: x\n\nhello\n");
    /* a retry after a crash (not yet marked done) must not duplicate */
    res.status = DELIVER_DEFER;
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_int_eq(res.status, DELIVER_OK);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 1);
    /* tmp/ is left empty */
    char tmpdir[600];
    snprintf(tmpdir, sizeof(tmpdir), "%s/Maildir/tmp", home_demo);
    DIR *d = opendir(tmpdir);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)) != NULL)
        left += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(left, 0);
    close(r.queue_fd);
    queue_msg_free(&m);
}
END_TEST

/* file_crlf_size - the size of a file as CR LF text, counted here */
static long long file_crlf_size(const char *path)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    long long n = 0;
    int c, prev = EOF;
    while ((c = getc(f)) != EOF) {
        n += (c == '\n' && prev != '\r') ? 2 : 1;
        prev = c;
    }
    fclose(f);
    return n;
}

/* W= of content with CR LF, bare CR, bare LF and a CR LF split between
   the head local reads first (256 KiB of content) and the next chunk */
START_TEST(test_maildir_crlf_size_in_name)
{
    enum { BODY = 400000, HEAD = 256 * 1024 };
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE], name[512], path[1200];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    char *body = malloc(BODY + 1);

    ck_assert_ptr_nonnull(body);
    var_mailbox_size_limit = 0;                 /* this process only */
    memcpy(body, "Subject: crlf\n\n", 15);
    for (size_t i = 15; i < BODY; i++)
        body[i] = (i % 70 == 0) ? '\n' : (i % 333 == 0) ? '\r' : 'x';
    memcpy(body + 100, "a\r\nb\rc\n\r\r\n", 10);
    body[HEAD - 1] = '\r';
    body[HEAD] = '\n';
    body[HEAD + 65536 - 1] = '\r';             /* and between two chunks */
    body[HEAD + 65536] = '\n';
    body[BODY] = '\0';
    make_request("demo@localhost", body, &r, qid, &m);
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_demo, name, sizeof(name)), 1);
    snprintf(path, sizeof(path), "%s/Maildir/new/%s", home_demo, name);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    char want[64];
    snprintf(want, sizeof(want), ",S=%lld,W=%lld", (long long)st.st_size,
             file_crlf_size(path));
    ck_assert_uint_gt(strlen(name), strlen(want));
    ck_assert_str_eq(name + strlen(name) - strlen(want), want);
    /* the retry finds the same name */
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_int_eq(res.status, DELIVER_OK);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 1);
    close(r.queue_fd);
    queue_msg_free(&m);
    free(body);
}
END_TEST

/* the one complete queue file in incoming/ (a forwarded copy), read
   into m; 0 if there is none */
static int incoming_read(queue_msg_t *m, int *uid_out)
{
    DIR *d = opendir(QUEUE_INCOMING);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    char qid[QUEUE_ID_SIZE] = "";
    int n = 0;
    while ((e = readdir(d)) != NULL)
        if (queue_id_valid(e->d_name)) {
            str_copy(qid, e->d_name, sizeof(qid));
            n++;
        }
    closedir(d);
    if (n == 0)
        return 0;
    ck_assert_int_eq(n, 1);
    char path[128];
    snprintf(path, sizeof(path), "incoming/%s", qid);
    int fd = open(path, O_RDONLY);
    ck_assert_int_ge(fd, 0);
    struct stat st;
    ck_assert_int_eq(fstat(fd, &st), 0);
    if (uid_out)
        *uid_out = (int)st.st_uid;
    const char *err = NULL;
    ck_assert_int_eq(queue_file_read(fd, qid, m, &err), 0);
    close(fd);
    return 1;
}

START_TEST(test_maildir_dirs_fsynced)
{
    dir_events[0] = '\0';
    struct local_result res = run("demo@localhost", "Subject: d\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(dir_events,
                     "mkdir Maildir;fsync-parent Maildir;mkdir tmp;fsync-parent tmp;"
                     "mkdir new;fsync-parent new;mkdir cur;fsync-parent cur;");
    /* nothing new to make durable the second time */
    dir_events[0] = '\0';
    res = run("demo@localhost", "Subject: d2\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_OK);
    ck_assert_str_eq(dir_events, "");
}
END_TEST

/* an existing Maildir: no mkdir at all, the content read once */
START_TEST(test_maildir_existing_fast_path)
{
    struct local_result res = run("demo@localhost", "Subject: f1\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    mkdir_calls = pread_calls = 0;
    res = run("demo@localhost", "Subject: f2\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_uint_eq(mkdir_calls, 0);
    ck_assert_uint_eq(pread_calls, 1);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 2);
}
END_TEST

/* a missing tmp/ or new/ is made again (and fsync'd) on demand */
START_TEST(test_maildir_missing_subdir)
{
    char path[700], name[256];
    struct local_result res = run("demo@localhost", "Subject: m1\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    snprintf(path, sizeof(path), "%s/Maildir/tmp", home_demo);
    ck_assert_int_eq(rmdir(path), 0);
    dir_events[0] = '\0';
    res = run("demo@localhost", "Subject: m2\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(dir_events, "mkdir tmp;fsync-parent tmp;");
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 2);
    /* new/ gone (with what the user had in it) */
    char cmd[800];
    snprintf(cmd, sizeof(cmd), "rm -rf %s/Maildir/new", home_demo);
    ck_assert_int_eq(system(cmd), 0);
    dir_events[0] = '\0';
    res = run("demo@localhost", "Subject: m3\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(dir_events, "mkdir new;fsync-parent new;");
    ck_assert_int_eq(count_new(home_demo, name, sizeof(name)), 1);
    snprintf(path, sizeof(path), "%s/Maildir/tmp", home_demo);
    DIR *d = opendir(path);
    ck_assert_ptr_nonnull(d);
    struct dirent *e;
    int left = 0;
    while ((e = readdir(d)) != NULL)
        left += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(left, 0);
}
END_TEST

/* the done mark local writes (no fdatasync): the byte is in the file at
   once for any reader, and only recipient types at known records go in */
START_TEST(test_mark_nosync)
{
    struct local_request r;
    queue_msg_t m, again;
    char qid[QUEUE_ID_SIZE];
    const char *err = NULL;
    make_request("demo@localhost", "Subject: k\n\nx\n", &r, qid, &m);
    ck_assert_int_eq(queue_msg_mark_nosync(r.queue_fd, &m, 1, QREC_DONE), -1);
    ck_assert_int_eq(errno, EINVAL);
    ck_assert_int_eq(queue_msg_mark_nosync(r.queue_fd, &m, 0, 'X'), -1);
    ck_assert_int_eq(m.rcpts[0].status, QREC_RCPT);
    ck_assert_int_eq(queue_msg_mark_nosync(r.queue_fd, &m, 0, QREC_DONE), 0);
    ck_assert_int_eq(m.rcpts[0].status, QREC_DONE);
    buf_t path;
    buf_init(&path, 0);
    queue_path(QUEUE_ACTIVE, qid, &path);
    int fd = open(buf_str(&path), O_RDONLY);    /* another reader */
    buf_free(&path);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(queue_file_read(fd, qid, &again, &err), 0);
    close(fd);
    ck_assert_int_eq(again.rcpts[0].status, QREC_DONE);
    queue_msg_free(&again);
    close(r.queue_fd);
    queue_msg_free(&m);
}
END_TEST

/* table: recipient -> expected status, dsn, messages for demo and bob,
   recipients of the forwarded copy (one per alias target: several
   targets are never delivered within one request) */
static const struct {
    const char *rcpt;
    int status;
    const char *dsn;
    int demo, bob;
    const char *queued;
} alias_cases[] = {
    { "demo@localhost", DELIVER_OK, "2.0.0", 1, 0, "" },
    { "DEMO+tag@LOCALHOST", DELIVER_OK, "2.0.0", 1, 0, "" },
    { "team@localhost", DELIVER_OK, "2.0.0", 0, 0, "demo@localhost bob@localhost" },
    { "boss@localhost", DELIVER_OK, "2.0.0", 0, 0, "demo@localhost bob@localhost" },
    { "nobody-here@localhost", DELIVER_BOUNCE, "5.1.1", 0, 0, "" },
    { "loopa@localhost", DELIVER_BOUNCE, "5.4.6", 0, 0, "" },
    { "piped@localhost", DELIVER_OK, "2.0.0", 0, 0, "" },
    { "self@localhost", DELIVER_OK, "2.0.0", 0, 0, "self@localhost bob@localhost" },
    { "demo@remote.example", DELIVER_BOUNCE, "5.1.2", 0, 0, "" },
};

START_TEST(test_aliases)
{
    struct local_result res = run(alias_cases[_i].rcpt, "Subject: a\n\nb\n");
    ck_assert_msg(res.status == alias_cases[_i].status, "%s: %d %s",
                  alias_cases[_i].rcpt, res.status, res.reason);
    ck_assert_str_eq(res.dsn, alias_cases[_i].dsn);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), alias_cases[_i].demo);
    ck_assert_int_eq(count_new(home_bob, NULL, 0), alias_cases[_i].bob);
    queue_msg_t m;
    char got[512] = "";
    if (incoming_read(&m, NULL)) {
        for (size_t i = 0; i < m.nrcpts; i++) {
            size_t len = strlen(got);
            snprintf(got + len, sizeof(got) - len, "%s%s", i ? " " : "",
                     m.rcpts[i].address);
            ck_assert_str_eq(m.rcpts[i].orcpt, alias_cases[_i].rcpt);
            ck_assert_int_eq(m.rcpts[i].status, QREC_RCPT);
        }
        ck_assert_ptr_nonnull(queue_msg_attr(&m, LOCAL_ATTR_EXPANDED));
        queue_msg_free(&m);
    }
    ck_assert_str_eq(got, alias_cases[_i].queued);
}
END_TEST

/* a member of an expanded list: delivered to that user, not expanded
   again (self is "self: \\self, bob"), and the Delivered-To local put
   in front of the list's copy is not a loop */
START_TEST(test_expanded_member)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    make_request("self@localhost", "Delivered-To: self@localhost\nSubject: e\n\nx\n",
                 &r, qid, &m);
    r.expanded = true;
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_bob, NULL, 0), 1);     /* self's home */
    queue_msg_t q;
    ck_assert_int_eq(incoming_read(&q, NULL), 0);
    close(r.queue_fd);
    queue_msg_free(&m);
    /* an earlier Delivered-To of the member below local's own line is */
    res.status = DELIVER_DEFER;
    make_request("demo@localhost", "Delivered-To: team@localhost\n"
                 "Delivered-To: demo@localhost\nSubject: e\n\nx\n", &r, qid, &m);
    r.expanded = true;
    local_deliver(&r, local_alias_maps_for_test(), &res);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.4.6");
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 0);
    close(r.queue_fd);
    queue_msg_free(&m);
}
END_TEST

START_TEST(test_delivered_to_loop)
{
    /* the message already passed through demo@localhost */
    struct local_result res = run("demo@localhost",
                                  "Delivered-To: demo@localhost\nSubject: l\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.4.6");
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 0);
    /* a Delivered-To in the body does not count */
    res = run("demo@localhost", "Subject: l\n\nDelivered-To: demo@localhost\n");
    ck_assert_int_eq(res.status, DELIVER_OK);
}
END_TEST

START_TEST(test_size_limit_and_mailbox_kind)
{
    char *big = malloc(200001);
    memset(big, 'x', 200000);
    big[200000] = '\0';
    struct local_result res = run("demo@localhost", big);
    free(big);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.2.2");
    char *saved = var_home_mailbox;    /* owned by config: put it back */
    var_home_mailbox = (char *)"Mailbox";      /* an mbox file, not a Maildir */
    res = run("demo@localhost", "Subject: m\n\nx\n");
    var_home_mailbox = saved;
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 0);
}
END_TEST

START_TEST(test_forward_remote)
{
    struct local_result res = run("out@localhost", "Subject: f\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 0);
    /* both targets became one new queue file in incoming/ */
    queue_msg_t m;
    int uid = -1;
    ck_assert_int_eq(incoming_read(&m, &uid), 1);
    ck_assert_int_eq(uid, (int)owner_uid);      /* qmgr must be able to move it */
    ck_assert_str_eq(m.sender, "a@example.org");
    ck_assert_uint_eq(m.nrcpts, 2);
    ck_assert_str_eq(m.rcpts[0].address, "demo@localhost");
    ck_assert_str_eq(m.rcpts[1].address, "friend@remote.example");
    ck_assert_str_eq(m.rcpts[1].orcpt, "out@localhost");
    ck_assert_uint_eq(m.content_len, strlen("Delivered-To: out@localhost\n"
                                            "Subject: f\n\nx\n"));
    queue_msg_free(&m);
    /* a copy that already went through out@localhost is a loop */
    res = run("out@localhost", "Delivered-To: out@localhost\nSubject: f\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.4.6");
}
END_TEST

START_TEST(test_home_missing_defers)
{
    char ghost[600];
    struct stat st;

    /* Postfix's choice: a missing home is an admin error, not the
       sender's: defer with a clear reason, create nothing */
    struct local_result res = run("ghost@localhost", "Subject: g\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.3.0");
    snprintf(ghost, sizeof(ghost), "%s/ghost", topdir);
    ck_assert_msg(strstr(res.reason, "home directory") != NULL
                  && strstr(res.reason, ghost) != NULL
                  && strstr(res.reason, "No such file or directory") != NULL,
                  "%s", res.reason);
    ck_assert_int_eq(stat(ghost, &st), -1);
    /* a home that is a file, not a directory */
    write_file(ghost, "x");
    res = run("ghost@localhost", "Subject: g\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_msg(strstr(res.reason, "home directory") != NULL, "%s", res.reason);
}
END_TEST

/* as root: a mailbox owner's symlinks never make root write anywhere */
START_TEST(test_symlinked_maildir_as_root)
{
    char target[600], maildir[600], link_new[700], name[256];

    TERN_SKIP_UNLESS_ROOT();   /* needs a real privilege switch */
    /* "/etc" stand-in: root-owned, world-readable, not writable by the user */
    snprintf(target, sizeof(target), "%s/rootdir", topdir);
    ck_assert_int_eq(mkdir(target, 0755), 0);
    snprintf(maildir, sizeof(maildir), "%s/Maildir", home_demo);
    ck_assert_int_eq(mkdir(maildir, 0700), 0);
    snprintf(link_new, sizeof(link_new), "%s/new", maildir);
    ck_assert_int_eq(symlink(target, link_new), 0);
    struct local_result res = run("demo@localhost", "Subject: s\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_int_eq(count_new(home_demo, name, sizeof(name)), 0);
    DIR *d = opendir(target);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(n, 0);
    /* the whole Maildir a symlink to the root directory */
    ck_assert_int_eq(unlink(link_new), 0);
    ck_assert_int_eq(rmdir(maildir), 0);
    ck_assert_int_eq(symlink(target, maildir), 0);
    res = run("demo@localhost", "Subject: s\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    d = opendir(target);
    n = 0;
    while ((e = readdir(d)) != NULL)
        n += e->d_name[0] != '.';
    closedir(d);
    ck_assert_int_eq(n, 0);
}
END_TEST

/* ---- local_queue_open: the request is a claim, the file is the fact ---- */

/* a request as qmgr would send it for make_request's file */
static void request_attrs(attr_list_t *a, const char *queue, const char *qid,
                          const char *sender, const char *rcpt, long offset)
{
    attr_list_init(a);
    attr_add(a, DA_REQUEST, DELIVER_REQUEST_DELIVER);
    attr_add(a, DA_QUEUE_NAME, queue);
    attr_add(a, DA_QUEUE_ID, qid);
    attr_add(a, "sender", sender);     /* not part of a request: ignored */
    attr_add_long(a, DA_RCPT_COUNT, 1);
    attr_add(a, DA_RECIPIENT "_0", rcpt);
    attr_add_long(a, DA_RCPT_OFFSET "_0", offset);
    attr_add_long(a, "content_offset", 0);
    attr_add_long(a, "content_size", 99999);
}

static int open_claim(const char *queue, const char *qid, const char *sender,
                      const char *rcpt, long offset, struct local_result *res)
{
    attr_list_t a;
    struct local_request r;
    queue_msg_t m;
    request_attrs(&a, queue, qid, sender, rcpt, offset);
    int rc = local_queue_open(&a, &r, &m, res);
    attr_list_free(&a);
    if (rc == 0)
        local_queue_close(&r, &m);
    return rc;
}

START_TEST(test_queue_open_uses_the_file)
{
    struct local_request r0, r;
    queue_msg_t m0, m;
    char qid[QUEUE_ID_SIZE];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    attr_list_t a;

    make_request("demo@localhost", "Subject: q\n\nx\n", &r0, qid, &m0);
    request_attrs(&a, QUEUE_ACTIVE, qid, "forged@evil.example", "demo@localhost",
                  (long)r0.rcpt_offset);
    ck_assert_msg(local_queue_open(&a, &r, &m, &res) == 0, "%s", res.reason);
    ck_assert_str_eq(r.sender, "a@example.org");
    ck_assert_str_eq(r.recipient, "demo@localhost");
    ck_assert_int_eq(r.content_offset, m0.content_offset);
    ck_assert_uint_eq(r.content_size, m0.content_len);
    ck_assert_uint_eq(r.arrival_usec, m0.arrival_usec);
    local_queue_close(&r, &m);
    ck_assert_int_eq(r.queue_fd, -1);
    attr_list_free(&a);
    close(r0.queue_fd);
    queue_msg_free(&m0);
}
END_TEST

START_TEST(test_queue_open_refusals)
{
    struct local_request r0;
    queue_msg_t m0;
    char qid[QUEUE_ID_SIZE], other[QUEUE_ID_SIZE], path[256], link_path[256];
    struct local_result res = { DELIVER_DEFER, "", "", "" };

    make_request("demo@localhost", "Subject: q\n\nx\n", &r0, qid, &m0);
    long off = (long)r0.rcpt_offset;
    snprintf(path, sizeof(path), "active/%s", qid);
    /* the request must name this recipient, pending, in active/ */
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "bob@localhost", off, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "not the one requested"));
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "demo@localhost", off + 1, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "no recipient record"));
    ck_assert_int_eq(open_claim(QUEUE_DEFERRED, qid, "", "demo@localhost", off, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "malformed"));
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, "../x", "", "demo@localhost", off, &res), -1);
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "demo@localhost", off, &res), 0);
    /* a second name for the file: neither name is accepted */
    queue_id_make(1, 12345, other);
    snprintf(link_path, sizeof(link_path), "active/%s", other);
    ck_assert_int_eq(link(path, link_path), 0);
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, other, "", "demo@localhost", off, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "one link"));
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "demo@localhost", off, &res), -1);
    ck_assert_int_eq(unlink(link_path), 0);
    /* a symlink to the (good) file is not followed */
    char target[1024];
    snprintf(target, sizeof(target), "%s/%s", spool, path);
    ck_assert_int_eq(symlink(target, link_path), 0);
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, other, "", "demo@localhost", off, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "cannot open"));
    ck_assert_int_eq(unlink(link_path), 0);
    /* a recipient already done */
    ck_assert_int_eq(queue_file_mark(r0.queue_fd, r0.rcpt_offset, QREC_DONE), 0);
    ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "demo@localhost", off, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "not pending"));
    /* as root: a file that is not $mail_owner's */
    if (getuid() == 0) {
        ck_assert_int_eq(queue_file_mark(r0.queue_fd, r0.rcpt_offset, QREC_RCPT), 0);
        ck_assert_int_eq(fchown(r0.queue_fd, 0, 0), 0);
        ck_assert_int_eq(fchmod(r0.queue_fd, 0666), 0);
        ck_assert_int_eq(open_claim(QUEUE_ACTIVE, qid, "", "demo@localhost", off, &res), -1);
        ck_assert_ptr_nonnull(strstr(res.reason, "owned by uid"));
    }
    close(r0.queue_fd);
    queue_msg_free(&m0);
}
END_TEST

/* ---- mailboxes: mbox format, locks, spool, /file targets (lmbox) ---- */

/* the whole of a file, NUL-terminated; "" when it is missing */
static char *mbox_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return xstrdup("");
    buf_t b;
    buf_init(&b, 0);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, n);
    fclose(f);
    char *s = buf_strdup(&b);
    buf_free(&b);
    return s;
}

/* the text after the From_ line (its date changes) */
static const char *mbox_after_from(const char *msg)
{
    ck_assert_msg(strncmp(msg, "From ", 5) == 0, "%s", msg);
    const char *nl = strchr(msg, '\n');
    ck_assert_ptr_nonnull(nl);
    return nl + 1;
}

/* run() with home_mailbox / mail_spool_directory set for one delivery */
static struct local_result run_mbox(const char *home_mailbox, const char *spooldir,
                                    const char *rcpt, const char *body)
{
    char *saved_hm = var_home_mailbox, *saved_sp = var_mail_spool_directory;
    var_home_mailbox = (char *)home_mailbox;
    if (spooldir)
        var_mail_spool_directory = (char *)spooldir;
    struct local_result res = run(rcpt, body);
    var_home_mailbox = saved_hm;
    var_mail_spool_directory = saved_sp;
    return res;
}

START_TEST(test_mbox_from_line)
{
    buf_t b;
    char *tz = getenv("TZ") ? xstrdup(getenv("TZ")) : NULL;
    setenv("TZ", "UTC", 1);
    tzset();
    buf_init(&b, 0);
    local_mbox_from_line(&b, "a@example.org", 86400 * 365 + 3661);
    ck_assert_str_eq(buf_str(&b), "From a@example.org  Fri Jan  1 01:01:01 1971\n");
    buf_reset(&b);
    local_mbox_from_line(&b, "", 0);
    ck_assert_str_eq(buf_str(&b), "From MAILER-DAEMON  Thu Jan  1 00:00:00 1970\n");
    buf_reset(&b);
    local_mbox_from_line(&b, "\"a b\"\t@x", 0);
    ck_assert_str_eq(buf_str(&b), "From \"a_b\"_@x  Thu Jan  1 00:00:00 1970\n");
    buf_free(&b);
    if (tz)
        setenv("TZ", tz, 1);
    else
        unsetenv("TZ");
    free(tz);
    tzset();
}
END_TEST

static const struct {
    const char *in, *out;
} escape_cases[] = {
    { "From x\n", ">From x\n" },
    { "a\nFrom me\nFrom\nFrom:\n", "a\n>From me\nFrom\nFrom:\n" },
    { ">From y\n>>From z\n", ">From y\n>>From z\n" },      /* no more stuffing */
    { "xFrom a\n From b\nFROM c\n", "xFrom a\n From b\nFROM c\n" },
    { "no newline", "no newline\n" },
    { "Fro", "Fro\n" },
    { "From ", ">From \n" },
    { "", "" },             /* right after the headers' newline */
    { "\n\nFrom \n", "\n\n>From \n" },
    { "FFrom x\nFrom From x\n", "FFrom x\n>From From x\n" },
};

START_TEST(test_mbox_escape)
{
    const char *in = escape_cases[_i].in;
    size_t len = strlen(in);
    /* every split into two chunks, and one byte at a time */
    for (size_t cut = 0; cut <= len + 1; cut++) {
        struct local_mbox_escape st = { .bol = true };
        buf_t out;
        buf_init(&out, 0);
        if (cut <= len) {
            local_mbox_escape(&st, in, cut, &out);
            local_mbox_escape(&st, in + cut, len - cut, &out);
        } else {
            for (size_t i = 0; i < len; i++)
                local_mbox_escape(&st, in + i, 1, &out);
        }
        local_mbox_escape_end(&st, &out);
        ck_assert_msg(strcmp(buf_str(&out), escape_cases[_i].out) == 0,
                      "in %s (cut %zu): got %s", in, cut, buf_str(&out));
        buf_free(&out);
    }
}
END_TEST

static const struct {
    const char *path;
    bool ok;
} path_cases[] = {
    { "/var/log/mail.copy", true },
    { "/dev/null", true },
    { "/a/..b/c.", true },
    { "relative/file", false },
    { "", false },
    { "/a/../etc/passwd", false },
    { "/a/./b", false },
    { "/a/..", false },
    { "/..", false },
    { "/a/dir/", false },
    { "/", false },
};

START_TEST(test_mbox_path_checks)
{
    const char *why = NULL;
    ck_assert_msg(local_mbox_path_ok(path_cases[_i].path, &why) == path_cases[_i].ok,
                  "%s", path_cases[_i].path);
    if (!path_cases[_i].ok)
        ck_assert_ptr_nonnull(why);
}
END_TEST

START_TEST(test_mbox_lock_names_and_styles)
{
    buf_t b;
    int st;
    buf_init(&b, 0);
    local_mbox_lock_name("/var/mail/demo", &b);
    ck_assert_str_eq(buf_str(&b), "/var/mail/demo.lock");
    buf_free(&b);
    ck_assert_int_eq(local_mbox_lock_styles("fcntl, dotlock", &st), 0);
    ck_assert_int_eq(st, LOCAL_MBOX_LOCK_FCNTL | LOCAL_MBOX_LOCK_DOT);
    ck_assert_int_eq(local_mbox_lock_styles(" flock ", &st), 0);
    ck_assert_int_eq(st, LOCAL_MBOX_LOCK_FLOCK);
    ck_assert_int_eq(local_mbox_lock_styles("", &st), 0);
    ck_assert_int_eq(st, 0);
    ck_assert_int_eq(local_mbox_lock_styles("fcntl,lockf", &st), -1);
    /* an unknown method is the admin's error: defer, write nothing */
    char *saved = var_mailbox_delivery_lock;
    var_mailbox_delivery_lock = (char *)"fcntl, bogus";
    struct local_result res = run_mbox("Mailbox", NULL, "demo@localhost", "S: x\n\nx\n");
    var_mailbox_delivery_lock = saved;
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.3.5");
}
END_TEST

START_TEST(test_mbox_home_mailbox)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/Mailbox", home_demo);
    struct local_result res = run_mbox("Mailbox", NULL, "demo@localhost",
                                       "Subject: one\n\nFrom here\n>From there\nx");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(res.dsn, "2.0.0");
    ck_assert_str_eq(res.reason, "delivered to mailbox");
    res = run_mbox("Mailbox", NULL, "demo+ext@localhost", "Subject: two\n\nFrom\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    char *text = mbox_read(path);
    ck_assert_msg(strncmp(text, "From a@example.org  ", 20) == 0, "%s", text);
    const char *second = strstr(text, "\n\nFrom a@example.org  ");
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(mbox_after_from(second + 2),
                     "Return-Path: <a@example.org>\nX-Original-To: demo+ext@localhost\n"
                     "Delivered-To: demo+ext@localhost\nSubject: two\n\nFrom\n\n");
    ((char *)second)[2] = '\0';
    ck_assert_str_eq(mbox_after_from(text),
                     "Return-Path: <a@example.org>\nX-Original-To: demo@localhost\n"
                     "Delivered-To: demo@localhost\nSubject: one\n\n>From here\n"
                     ">From there\nx\n\n");
    free(text);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    ck_assert_int_eq(st.st_uid, owner_uid);
    /* no dot lock left behind */
    char lock[700];
    snprintf(lock, sizeof(lock), "%s.lock", path);
    ck_assert_int_eq(access(lock, F_OK), -1);
    /* a loop is still a loop */
    res = run_mbox("Mailbox", NULL, "demo@localhost",
                   "Delivered-To: demo@localhost\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.4.6");
    /* home_mailbox must stay below the home */
    res = run_mbox("../Mailbox", NULL, "demo@localhost", "S: x\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.3.5");
}
END_TEST

START_TEST(test_mbox_size_limit_truncates)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/Mailbox", home_demo);
    /* mailbox_size_limit is 100000: an mbox of 99000 bytes has no room */
    char *fill = xmalloc(99001);
    memset(fill, 'y', 99000);
    fill[99000] = '\0';
    write_file(path, fill);
    ck_assert_int_eq(chown(path, owner_uid, owner_gid), 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
    char *body = xmalloc(5001);
    memset(body, 'z', 5000);
    body[5000] = '\0';
    struct local_result res = run_mbox("Mailbox", NULL, "demo@localhost", body);
    free(body);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.2.2");
    ck_assert_msg(strstr(res.reason, "mailbox full") != NULL, "%s", res.reason);
    /* nothing of the message stayed */
    char *text = mbox_read(path);
    ck_assert_str_eq(text, fill);
    free(text);
    free(fill);
    /* a small one still fits */
    res = run_mbox("Mailbox", NULL, "demo@localhost", "S: x\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
}
END_TEST

/* hold an fcntl lock on path in a child until the pipe closes */
static pid_t lock_holder(const char *path, int *release_fd)
{
    int go[2], ready[2];
    ck_assert_int_eq(pipe(go), 0);
    ck_assert_int_eq(pipe(ready), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        close(go[1]);
        close(ready[0]);
        int fd = open(path, O_RDWR);
        struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };
        char c = fd >= 0 && fcntl(fd, F_SETLK, &fl) == 0 ? 'y' : 'n';
        if (write(ready[1], &c, 1) != 1)
            _exit(1);
        (void)read(go[0], &c, 1);
        _exit(0);
    }
    close(go[0]);
    close(ready[1]);
    char c = 0;
    ck_assert_int_eq(read(ready[0], &c, 1), 1);
    ck_assert_int_eq(c, 'y');
    close(ready[0]);
    *release_fd = go[1];
    return pid;
}

START_TEST(test_mbox_locked_defers)
{
    char path[600], lock[700];
    long saved_attempts = var_deliver_lock_attempts;
    snprintf(path, sizeof(path), "%s/Mailbox", home_demo);
    snprintf(lock, sizeof(lock), "%s.lock", path);
    write_file(path, "");
    ck_assert_int_eq(chown(path, owner_uid, owner_gid), 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
    var_deliver_lock_attempts = 1;
    /* an fcntl lock held by another process */
    int release;
    pid_t pid = lock_holder(path, &release);
    struct local_result res = run_mbox("Mailbox", NULL, "demo@localhost", "S: l\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.2.0");
    ck_assert_msg(strstr(res.reason, "cannot acquire lock") != NULL, "%s", res.reason);
    ck_assert_int_eq(access(lock, F_OK), -1);       /* our dot lock is gone */
    close(release);
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    char *text = mbox_read(path);
    ck_assert_str_eq(text, "");
    free(text);
    /* a fresh dot lock */
    write_file(lock, "1\n");
    res = run_mbox("Mailbox", NULL, "demo@localhost", "S: l\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.2.0");
    ck_assert_msg(strstr(res.reason, "mailbox is locked") != NULL, "%s", res.reason);
    ck_assert_int_eq(access(lock, F_OK), 0);        /* someone else's: kept */
    /* a stale one (older than stale_lock_time) is removed */
    struct timespec old[2] = { { time(NULL) - var_stale_lock_time - 10, 0 },
                               { time(NULL) - var_stale_lock_time - 10, 0 } };
    ck_assert_int_eq(utimensat(AT_FDCWD, lock, old, AT_SYMLINK_NOFOLLOW), 0);
    res = run_mbox("Mailbox", NULL, "demo@localhost", "S: l\n\nx\n");
    var_deliver_lock_attempts = saved_attempts;
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(access(lock, F_OK), -1);
}
END_TEST

/* a spool directory as Debian has it: root:mail 2775 (as root), else ours */
static void make_spool(char *dir, size_t size, mode_t mode)
{
    snprintf(dir, size, "%s/varmail", topdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    if (getuid() == 0)
        ck_assert_int_eq(chown(dir, 0, 8), 0);     /* Debian's group "mail" */
    ck_assert_int_eq(chmod(dir, mode), 0);
}

START_TEST(test_mbox_spool_delivery)
{
    char dir[600], path[700], other[700];
    make_spool(dir, sizeof(dir), 02775);
    snprintf(path, sizeof(path), "%s/demo", dir);
    struct local_result res = run_mbox("", dir, "demo@localhost", "S: s\n\nFrom x\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert(S_ISREG(st.st_mode));
    ck_assert_int_eq(st.st_mode & 07777, 0600);
    ck_assert_int_eq(st.st_uid, owner_uid);
    char *text = mbox_read(path);
    ck_assert_ptr_nonnull(strstr(text, "\nDelivered-To: demo@localhost\nS: s\n\n>From x\n\n"));
    free(text);
    /* a hard link to the mailbox: refused, neither name grows */
    snprintf(other, sizeof(other), "%s/other", dir);
    ck_assert_int_eq(link(path, other), 0);
    off_t before = st.st_size;
    res = run_mbox("", dir, "demo@localhost", "S: h\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_msg(strstr(res.reason, "hard links") != NULL, "%s", res.reason);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, before);
    ck_assert_int_eq(unlink(other), 0);
    /* a world-writable spool without the sticky bit is not used */
    ck_assert_int_eq(chmod(dir, 0777), 0);
    res = run_mbox("", dir, "demo@localhost", "S: w\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.3.5");
    ck_assert_int_eq(chmod(dir, 02775), 0);
    /* a mailbox that is somebody else's */
    if (getuid() == 0) {
        ck_assert_int_eq(chown(path, 0, 0), 0);
        ck_assert_int_eq(chmod(path, 0666), 0);
        res = run_mbox("", dir, "demo@localhost", "S: o\n\nx\n");
        ck_assert_int_eq(res.status, DELIVER_DEFER);
        ck_assert_msg(strstr(res.reason, "owned by uid 0") != NULL, "%s", res.reason);
    }
}
END_TEST

/* as root: a symlink planted in the spool never makes root write there */
START_TEST(test_mbox_spool_symlink_as_root)
{
    char dir[600], path[700], target[700];
    TERN_SKIP_UNLESS_ROOT();
    make_spool(dir, sizeof(dir), 02775);
    snprintf(path, sizeof(path), "%s/demo", dir);
    snprintf(target, sizeof(target), "%s/victim", topdir);
    write_file(target, "precious\n");
    ck_assert_int_eq(symlink(target, path), 0);
    struct local_result res = run_mbox("", dir, "demo@localhost", "S: s\n\nx\n");
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_msg(strstr(res.reason, "symbolic link") != NULL, "%s", res.reason);
    char *text = mbox_read(target);
    ck_assert_str_eq(text, "precious\n");
    free(text);
    /* the same for the dot lock: a symlink there is an existing lock */
    ck_assert_int_eq(unlink(path), 0);
    char lock[800];
    snprintf(lock, sizeof(lock), "%s.lock", path);
    ck_assert_int_eq(symlink(target, lock), 0);
    long saved = var_deliver_lock_attempts;
    var_deliver_lock_attempts = 1;
    res = run_mbox("", dir, "demo@localhost", "S: s\n\nx\n");
    var_deliver_lock_attempts = saved;
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.2.0");
    text = mbox_read(target);
    ck_assert_str_eq(text, "precious\n");
    free(text);
    /* a root-only spool (mode 0755): root creates it, the user owns it */
    ck_assert_int_eq(unlink(lock), 0);
    ck_assert_int_eq(chmod(dir, 0755), 0);
    res = run_mbox("", dir, "demo@localhost", "S: r\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    struct stat st;
    ck_assert_int_eq(lstat(path, &st), 0);
    ck_assert_int_eq(st.st_uid, owner_uid);
    ck_assert_int_eq(st.st_mode & 07777, 0600);
}
END_TEST

/* local_file through a request as make_request builds it */
static struct local_result run_file(const char *path, uid_t uid, gid_t gid)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    make_request("files@localhost", "Subject: f\n\nFrom me\n", &r, qid, &m);
    local_file(&r, path, uid, gid, &res);
    close(r.queue_fd);
    queue_msg_free(&m);
    return res;
}

START_TEST(test_local_file_targets)
{
    char dir[600], path[700], link_path[700];
    struct stat st;
    snprintf(dir, sizeof(dir), "%s/files", topdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    ck_assert_int_eq(chown(dir, owner_uid, owner_gid), 0);
    snprintf(path, sizeof(path), "%s/copy", dir);
    /* created 0600 as the writer, appended twice */
    struct local_result res = run_file(path, owner_uid, owner_gid);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_str_eq(res.dsn, "2.0.0");
    ck_assert_ptr_nonnull(strstr(res.reason, path));
    res = run_file(path, owner_uid, owner_gid);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_uid, owner_uid);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    char *text = mbox_read(path);
    const char *second = strstr(text, "\n\nFrom a@example.org  ");
    ck_assert_ptr_nonnull(second);
    ck_assert_str_eq(mbox_after_from(second + 2),
                     "Return-Path: <a@example.org>\nX-Original-To: files@localhost\n"
                     "Delivered-To: files@localhost\nSubject: f\n\n>From me\n\n");
    free(text);
    /* refused: relative, "..", symlink, hard link, a directory */
    res = run_file("copy", owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.3.5");
    char dotdot[800];
    snprintf(dotdot, sizeof(dotdot), "%s/../files/copy", dir);
    res = run_file(dotdot, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.3.5");
    snprintf(link_path, sizeof(link_path), "%s/sym", dir);
    ck_assert_int_eq(symlink(path, link_path), 0);
    res = run_file(link_path, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_msg(strstr(res.reason, "symbolic link") != NULL, "%s", res.reason);
    snprintf(link_path, sizeof(link_path), "%s/hard", dir);
    ck_assert_int_eq(link(path, link_path), 0);
    off_t size = st.st_size;
    res = run_file(link_path, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_msg(strstr(res.reason, "hard links") != NULL, "%s", res.reason);
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_size, size);
    res = run_file(dir, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    /* /dev/null takes anything and keeps nothing */
    res = run_file("/dev/null", owner_uid, owner_gid);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    /* a FIFO is not a file (and does not hang us) */
    char fifo[700];
    snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
    ck_assert_int_eq(mkfifo(fifo, 0666), 0);
    res = run_file(fifo, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
}
END_TEST

/* as root: the file is written with the uid asked for, never root's */
START_TEST(test_local_file_as_root)
{
    char dir[600], path[700];
    TERN_SKIP_UNLESS_ROOT();
    snprintf(dir, sizeof(dir), "%s/rootfiles", topdir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);   /* root's: nobody cannot create */
    snprintf(path, sizeof(path), "%s/new", dir);
    struct local_result res = run_file(path, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_int_eq(access(path, F_OK), -1);
    /* a root file nobody may not write */
    write_file(path, "root's\n");
    ck_assert_int_eq(chmod(path, 0644), 0);
    res = run_file(path, owner_uid, owner_gid);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    char *text = mbox_read(path);
    ck_assert_str_eq(text, "root's\n");
    free(text);
    /* one nobody may write: written, still root's, no dot lock needed
       in a directory nobody cannot write */
    ck_assert_int_eq(chmod(path, 0666), 0);
    res = run_file(path, owner_uid, owner_gid);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    text = mbox_read(path);
    ck_assert_ptr_nonnull(strstr(text, "root's\nFrom a@example.org  "));
    free(text);
    /* uid 0 is refused */
    res = run_file(path, 0, 0);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
}
END_TEST
/* write errors get Postfix's codes, for mbox files and Maildirs alike */
START_TEST(test_mailbox_errno_codes)
{
    static const struct {
        int e;
        int status;
        const char *dsn;
    } cases[] = {
        { EDQUOT, DELIVER_DEFER, "4.2.2" },     /* over quota */
        { ENOSPC, DELIVER_DEFER, "4.3.1" },     /* file system full */
        { EFBIG, DELIVER_BOUNCE, "5.2.2" },     /* mailbox_size_limit */
        { EIO, DELIVER_DEFER, "4.3.0" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct local_result res = { DELIVER_OK, "", "", "" };
        mbox_errno_result(&res, "write", "/x", cases[i].e);
        ck_assert_int_eq(res.status, cases[i].status);
        ck_assert_str_eq(res.dsn, cases[i].dsn);
        if (cases[i].e == EFBIG)
            continue;
        errno = cases[i].e;
        maildir_errno_result(&res, "write", "/x");
        ck_assert_int_eq(res.status, DELIVER_DEFER);
        ck_assert_str_eq(res.dsn, cases[i].dsn);
    }
}
END_TEST
/* a queue file that ends early, after part of the message was written:
   the mailbox is cut back, nothing of it stays */
START_TEST(test_mbox_read_error_truncates)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE], path[600];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    char *body = xmalloc(200001);
    memset(body, 'b', 200000);
    body[200000] = '\0';
    snprintf(path, sizeof(path), "%s/Mailbox", home_demo);
    write_file(path, "old\n");
    ck_assert_int_eq(chown(path, owner_uid, owner_gid), 0);
    ck_assert_int_eq(chmod(path, 0600), 0);
    make_request("demo@localhost", body, &r, qid, &m);
    free(body);
    r.content_size += 1000;         /* beyond the end of the file */
    long saved_limit = var_mailbox_size_limit;
    char *saved_hm = var_home_mailbox;
    var_mailbox_size_limit = 0;
    var_home_mailbox = (char *)"Mailbox";
    local_deliver(&r, local_alias_maps_for_test(), &res);
    var_mailbox_size_limit = saved_limit;
    var_home_mailbox = saved_hm;
    close(r.queue_fd);
    queue_msg_free(&m);
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_str_eq(res.dsn, "4.3.0");
    char *text = mbox_read(path);
    ck_assert_str_eq(text, "old\n");
    free(text);
}
END_TEST
/* ---- end of mailboxes (lmbox) ---- */

/* local_forward_paths: Postfix's default and conditional forms; an
   element naming an empty attribute is left out */
START_TEST(test_forward_paths)
{
    struct local_rights who = { 1, 1, "demo", "/home/demo", "/bin/sh" };
    char **p;
    size_t n = local_forward_paths("$home/.forward${recipient_delimiter}${extension}, "
                                   "$home/.forward", &who, "demo+lists@x.example",
                                   "lists", "+", &p);
    ck_assert_uint_eq(n, 2);
    ck_assert_str_eq(p[0], "/home/demo/.forward+lists");
    ck_assert_str_eq(p[1], "/home/demo/.forward");
    strv_free(p, n);
    n = local_forward_paths("$home/.forward${recipient_delimiter}${extension}, "
                            "$home/.forward", &who, "demo@x.example", "", "", &p);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(p[0], "/home/demo/.forward");
    strv_free(p, n);
    n = local_forward_paths("/var/fwd/${user}${extension?+}${extension}, "
                            "/var/fwd/$user.${domain}, /x/${extension:none}, $$home",
                            &who, "demo@x.example", "", "", &p);
    /* the first names an empty ${extension} outside a condition: out */
    ck_assert_uint_eq(n, 3);
    ck_assert_str_eq(p[0], "/var/fwd/demo.x.example");
    ck_assert_str_eq(p[1], "/x/none");
    ck_assert_str_eq(p[2], "$home");
    strv_free(p, n);
    /* unknown names and broken braces leave the element out */
    n = local_forward_paths("$nosuch/x, ${home", &who, "demo", "", "", &p);
    ck_assert_uint_eq(n, 0);
    strv_free(p, n);
}
END_TEST

/* local_list_split: commas, whitespace, quotes, commands, comments */
START_TEST(test_list_split)
{
    char **t;
    bool trunc;
    size_t n = local_list_split("# a comment, not a target\n"
                                "alice, bob carol\n"
                                "  \"|/bin/prog -x a\\\"b\", |/bin/cat -u , \\demo\n"
                                ":include:/etc/list\t/var/log/file\n",
                                100, &t, &trunc);
    ck_assert_uint_eq(n, 8);
    ck_assert_str_eq(t[0], "alice");
    ck_assert_str_eq(t[1], "bob");
    ck_assert_str_eq(t[2], "carol");
    ck_assert_str_eq(t[3], "|/bin/prog -x a\"b");
    ck_assert_str_eq(t[4], "|/bin/cat -u");
    ck_assert_str_eq(t[5], "\\demo");
    ck_assert_str_eq(t[6], ":include:/etc/list");
    ck_assert_str_eq(t[7], "/var/log/file");
    ck_assert(!trunc);
    strv_free(t, n);
    n = local_list_split("a b c", 2, &t, &trunc);
    ck_assert_uint_eq(n, 2);
    ck_assert(trunc);
    strv_free(t, n);
    n = local_list_split("\"unterminated, x", 10, &t, &trunc);
    ck_assert_uint_eq(n, 1);
    ck_assert_str_eq(t[0], "unterminated, x");
    strv_free(t, n);
    ck_assert(local_class_allowed("alias, forward", "forward"));
    ck_assert(local_class_allowed("Alias", "alias"));
    ck_assert(!local_class_allowed("alias, forward", "include"));
    ck_assert(!local_class_allowed("", "alias"));
}
END_TEST

/* local_command_status: sysexits and signals */
static const struct {
    int wstatus;
    bool timed_out;
    int status;
    const char *dsn;
} exit_cases[] = {
    { 0, false, DELIVER_OK, "2.0.0" },
    { 75 << 8, false, DELIVER_DEFER, "4.3.0" },     /* EX_TEMPFAIL */
    { 71 << 8, false, DELIVER_DEFER, "4.3.0" },     /* EX_OSERR */
    { 67 << 8, false, DELIVER_BOUNCE, "5.1.1" },    /* EX_NOUSER */
    { 68 << 8, false, DELIVER_BOUNCE, "5.1.2" },    /* EX_NOHOST */
    { 65 << 8, false, DELIVER_BOUNCE, "5.6.0" },    /* EX_DATAERR */
    { 77 << 8, false, DELIVER_BOUNCE, "5.7.0" },    /* EX_NOPERM */
    { 1 << 8, false, DELIVER_BOUNCE, "5.3.0" },
    { 255 << 8, false, DELIVER_BOUNCE, "5.3.0" },
    { 9, false, DELIVER_DEFER, "4.3.0" },           /* killed by SIGKILL */
    { 0, true, DELIVER_DEFER, "4.3.0" },
};

START_TEST(test_command_status)
{
    struct local_result res;
    local_command_status(exit_cases[_i].wstatus, exit_cases[_i].timed_out,
                         "line one\nline\ttwo\033[1m", &res);
    ck_assert_int_eq(res.status, exit_cases[_i].status);
    ck_assert_str_eq(res.dsn, exit_cases[_i].dsn);
    if (res.status != DELIVER_OK) {
        /* the output, on one line, control characters gone */
        ck_assert_msg(strstr(res.reason, "line one line two [1m") != NULL, "%s",
                      res.reason);
        ck_assert_ptr_null(strchr(res.reason, '\n'));
        ck_assert_ptr_null(strchr(res.reason, '\033'));
    }
}
END_TEST

/* local_command_env: exactly the documented variables, nothing of ours */
START_TEST(test_command_env)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE];
    struct local_rights who = { 1000, 1000, "demo", "/home/demo", "/bin/zsh" };
    struct local_cmd_ctx ctx = { "demo", "ext", "+" };
    char **env;

    setenv("TERN_SECRET_TEST", "x", 1);
    make_request("Demo+ext@localhost", "Subject: e\n\nx\n", &r, qid, &m);
    r.orig_rcpt = "list@localhost";
    size_t n = local_command_env(&r, &who, &ctx, &env);
    ck_assert_ptr_null(env[n]);
    char all[4096] = "";
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(all);
        snprintf(all + len, sizeof(all) - len, "%s;", env[i]);
    }
    ck_assert_str_eq(all, "HOME=/home/demo;USER=demo;LOGNAME=demo;SHELL=/bin/zsh;"
                          "PATH=" LOCAL_CMD_PATH ";LOCAL=Demo+ext;DOMAIN=localhost;"
                          "EXTENSION=ext;RECIPIENT=Demo+ext@localhost;"
                          "ORIGINAL_RECIPIENT=list@localhost;SENDER=a@example.org;");
    strv_free(env, n);
    /* no extension, no shell, no home: defaults, no EXTENSION */
    struct local_rights bare = { 1000, 1000, "", "", "" };
    struct local_cmd_ctx ctx2 = { "demo", "", "" };
    n = local_command_env(&r, &bare, &ctx2, &env);
    ck_assert_str_eq(env[0], "HOME=/");
    ck_assert_str_eq(env[3], "SHELL=/bin/sh");
    for (size_t i = 0; i < n; i++)
        ck_assert(strncmp(env[i], "EXTENSION=", 10) != 0);
    strv_free(env, n);
    unsetenv("TERN_SECRET_TEST");
    close(r.queue_fd);
    queue_msg_free(&m);
}
END_TEST

/* a command alias runs (as $default_privs when root), its output and exit
   status decide; it never runs as root */
START_TEST(test_command_run)
{
    struct local_request r;
    queue_msg_t m;
    char qid[QUEUE_ID_SIZE], cmd[2048], out[600];
    struct local_result res = { DELIVER_DEFER, "", "", "" };
    struct local_rights who;
    struct local_cmd_ctx ctx = { "demo", "", "" };

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(local_rights_of_owner(getuid(), getgid(), &who, &res), 0);
    snprintf(out, sizeof(out), "%s/cmd.out", topdir);
    ck_assert_int_eq(chmod(topdir, 01777), 0);
    make_request("demo@localhost", "Subject: c\n\nFrom me\n", &r, qid, &m);
    snprintf(cmd, sizeof(cmd), "id -u > %s; cat >> %s", out, out);
    local_command(&r, &who, &ctx, cmd, &res);
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    FILE *f = fopen(out, "r");
    ck_assert_ptr_nonnull(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof(text) - 1, f);
    text[len] = '\0';
    fclose(f);
    ck_assert_int_eq(atoi(text), (int)who.uid);
    ck_assert_int_ne(who.uid, 0);
    ck_assert_ptr_nonnull(strstr(text, "\nFrom a@example.org "));
    ck_assert_ptr_nonnull(strstr(text, "\nReturn-Path: <a@example.org>\n"
                                       "Delivered-To: demo@localhost\nSubject: c\n\nFrom me\n"));
    /* a command that does not read its input and fails */
    local_command(&r, &who, &ctx, "echo nope; exit 3", &res);
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_ptr_nonnull(strstr(res.reason, "exit status 3: nope"));
    /* the time limit kills the process group */
    long saved = var_command_time_limit;
    var_command_time_limit = 1;
    local_command(&r, &who, &ctx, "sleep 30 & sleep 30", &res);
    var_command_time_limit = saved;
    ck_assert_int_eq(res.status, DELIVER_DEFER);
    ck_assert_ptr_nonnull(strstr(res.reason, "time limit"));
    if (getuid() == 0) {
        struct local_rights root = { 0, 0, "root", "/root", "/bin/sh" };
        local_command(&r, &root, &ctx, "true", &res);
        ck_assert_int_eq(res.status, DELIVER_DEFER);
        ck_assert_ptr_nonnull(strstr(res.reason, "as root"));
    }
    close(r.queue_fd);
    queue_msg_free(&m);
}
END_TEST

/* local_list_read: what a .forward or include file must be */
START_TEST(test_list_read)
{
    char good[600], link_path[600], fifo[600], dir[600];
    struct local_rights who;
    struct local_result res;
    buf_t text;
    uid_t u;
    gid_t g;

    ck_assert_int_eq(local_rights_of_owner(owner_uid, owner_gid, &who, &res), 0);
    buf_init(&text, 0);
    snprintf(good, sizeof(good), "%s/.forward", home_demo);
    write_file(good, "alice\n");
    ck_assert_int_eq(chown(good, owner_uid, owner_gid), 0);
    ck_assert_int_eq(chmod(good, 0644), 0);
    ck_assert_int_eq(local_list_read(good, &who, true, owner_uid, &text, &u, &g, &res), 1);
    ck_assert_str_eq(buf_str(&text), "alice\n");
    ck_assert_int_eq(u, owner_uid);
    /* absent: not an error */
    snprintf(dir, sizeof(dir), "%s/nothing", home_demo);
    ck_assert_int_eq(local_list_read(dir, &who, true, owner_uid, &text, &u, &g, &res), 0);
    /* relative names are refused */
    ck_assert_int_eq(local_list_read("x/.forward", &who, true, owner_uid, &text, &u, &g,
                                     &res), -1);
    /* a symbolic link, even to a good file */
    snprintf(link_path, sizeof(link_path), "%s/.forward", home_bob);
    ck_assert_int_eq(symlink(good, link_path), 0);
    ck_assert_int_eq(local_list_read(link_path, &who, true, owner_uid, &text, &u, &g,
                                     &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "symbolic link"));
    /* writable by others */
    ck_assert_int_eq(chmod(good, 0666), 0);
    ck_assert_int_eq(local_list_read(good, &who, true, owner_uid, &text, &u, &g, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "writable by others"));
    ck_assert_int_eq(chmod(good, 0644), 0);
    /* a FIFO does not hang us, a directory is not a list */
    snprintf(fifo, sizeof(fifo), "%s/fifo", home_demo);
    ck_assert_int_eq(mkfifo(fifo, 0644), 0);
    ck_assert_int_eq(chown(fifo, owner_uid, owner_gid), 0);
    ck_assert_int_eq(local_list_read(fifo, &who, true, owner_uid, &text, &u, &g, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "not a regular file"));
    ck_assert_int_eq(local_list_read(home_demo, &who, true, owner_uid, &text, &u, &g,
                                     &res), -1);
    /* an include file with a second name (a hard link) is refused; a
       .forward (whose targets always get the user's rights) is not */
    char hard[600];
    snprintf(hard, sizeof(hard), "%s/hard", home_demo);
    ck_assert_int_eq(link(good, hard), 0);
    ck_assert_int_eq(local_list_read(hard, &who, false, 0, &text, &u, &g, &res), -1);
    ck_assert_ptr_nonnull(strstr(res.reason, "2 links"));
    ck_assert_int_eq(local_list_read(hard, &who, true, owner_uid, &text, &u, &g, &res), 1);
    ck_assert_int_eq(unlink(hard), 0);
    ck_assert_int_eq(local_list_read(good, &who, false, 0, &text, &u, &g, &res), 1);
    if (getuid() == 0) {
        /* as root: a .forward owned by someone else than the user or root */
        ck_assert_int_eq(chown(good, owner_uid + 1, owner_gid), 0);
        ck_assert_int_eq(local_list_read(good, &who, true, owner_uid, &text, &u, &g,
                                         &res), -1);
        ck_assert_ptr_nonnull(strstr(res.reason, "owned by uid"));
        /* root's is fine; read as the user, so a file the user may not
           read stays unread */
        ck_assert_int_eq(chown(good, 0, 0), 0);
        ck_assert_int_eq(local_list_read(good, &who, true, owner_uid, &text, &u, &g,
                                         &res), 1);
        ck_assert_int_eq(chmod(good, 0600), 0);
        ck_assert_int_eq(local_list_read(good, &who, true, owner_uid, &text, &u, &g,
                                         &res), -1);
        ck_assert_ptr_nonnull(strstr(res.reason, "Permission denied"));
        /* and the rights of a root-owned file are $default_privs' */
        struct local_rights dp;
        ck_assert_int_eq(local_rights_of_owner(0, 0, &dp, &res), 0);
        ck_assert_str_eq(dp.user, "nobody");
        ck_assert_int_ne(dp.uid, 0);
    }
    buf_free(&text);
}
END_TEST

/* local_deliver with a .forward: a pipe as the user plus \user; the
   pipe refused when .forward may not have commands; +ext files */
START_TEST(test_deliver_forward)
{
    char fwd[600], out[600], text[1200];
    struct stat st;

    signal(SIGPIPE, SIG_IGN);
    ck_assert_int_eq(chmod(topdir, 01777), 0);
    snprintf(out, sizeof(out), "%s/fwd.out", topdir);
    snprintf(fwd, sizeof(fwd), "%s/.forward", home_demo);
    snprintf(text, sizeof(text), "# mine\n\"|cat > %s\", \\demo\n", out);
    write_file(fwd, text);
    ck_assert_int_eq(chown(fwd, owner_uid, owner_gid), 0);
    struct local_result res = run("demo@localhost", "Subject: f\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 1);
    ck_assert_int_eq(stat(out, &st), 0);
    ck_assert_int_eq(st.st_uid, owner_uid);       /* ran as the user */
    /* .forward+ext first, the extension kept */
    snprintf(fwd, sizeof(fwd), "%s/.forward+x", home_demo);
    write_file(fwd, "bob\n");
    ck_assert_int_eq(chown(fwd, owner_uid, owner_gid), 0);
    res = run("demo+x@localhost", "Subject: f\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    queue_msg_t m;
    ck_assert_int_eq(incoming_read(&m, NULL), 1);
    ck_assert_uint_eq(m.nrcpts, 1);
    ck_assert_str_eq(m.rcpts[0].address, "bob@localhost");
    ck_assert_ptr_null(queue_msg_attr(&m, LOCAL_ATTR_EXPANDED));
    queue_msg_free(&m);
    /* commands only from aliases: the .forward pipe bounces */
    char *saved = var_allow_mail_to_commands;
    var_allow_mail_to_commands = (char *)"alias";
    ck_assert_int_eq(unlink(out), 0);
    res = run("demo@localhost", "Subject: f\n\nx\n");
    var_allow_mail_to_commands = saved;
    ck_assert_int_eq(res.status, DELIVER_BOUNCE);
    ck_assert_str_eq(res.dsn, "5.7.1");
    ck_assert_int_eq(stat(out, &st), -1);
}
END_TEST

/* an alias with a command and one user whose .forward is empty: the
   user still gets the mailbox copy */
START_TEST(test_command_and_user_empty_forward)
{
    char fwd[600];
    signal(SIGPIPE, SIG_IGN);
    snprintf(fwd, sizeof(fwd), "%s/.forward", home_demo);
    write_file(fwd, "# nothing here\n");
    ck_assert_int_eq(chown(fwd, owner_uid, owner_gid), 0);
    struct local_result res = run("cmdplus@localhost", "Subject: c\n\nx\n");
    ck_assert_msg(res.status == DELIVER_OK, "%s", res.reason);
    ck_assert_int_eq(count_new(home_demo, NULL, 0), 1);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("local");
    TCase *tc = tcase_create("deliver");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, test_maildir_delivery_and_retry);
    tcase_add_test(tc, test_maildir_crlf_size_in_name);
    tcase_add_test(tc, test_maildir_dirs_fsynced);
    tcase_add_test(tc, test_maildir_existing_fast_path);
    tcase_add_test(tc, test_mark_nosync);
    tcase_add_test(tc, test_maildir_missing_subdir);
    tcase_add_loop_test(tc, test_aliases, 0, sizeof(alias_cases) / sizeof(alias_cases[0]));
    tcase_add_test(tc, test_delivered_to_loop);
    tcase_add_test(tc, test_expanded_member);
    tcase_add_test(tc, test_size_limit_and_mailbox_kind);
    tcase_add_test(tc, test_forward_remote);
    tcase_add_test(tc, test_home_missing_defers);
    tcase_add_test(tc, test_symlinked_maildir_as_root);
    tcase_add_test(tc, test_queue_open_uses_the_file);
    tcase_add_test(tc, test_queue_open_refusals);
    /* mailboxes (lmbox) */
    tcase_add_test(tc, test_mbox_from_line);
    tcase_add_loop_test(tc, test_mbox_escape, 0,
                        sizeof(escape_cases) / sizeof(escape_cases[0]));
    tcase_add_loop_test(tc, test_mbox_path_checks, 0,
                        sizeof(path_cases) / sizeof(path_cases[0]));
    tcase_add_test(tc, test_mbox_lock_names_and_styles);
    tcase_add_test(tc, test_mbox_home_mailbox);
    tcase_add_test(tc, test_mbox_size_limit_truncates);
    tcase_add_test(tc, test_mbox_locked_defers);
    tcase_add_test(tc, test_mbox_spool_delivery);
    tcase_add_test(tc, test_mbox_spool_symlink_as_root);
    tcase_add_test(tc, test_local_file_targets);
    tcase_add_test(tc, test_local_file_as_root);
    tcase_add_test(tc, test_mailbox_errno_codes);
    tcase_add_test(tc, test_mbox_read_error_truncates);
    /* aliases, commands, .forward (lalias) */
    tcase_add_test(tc, test_forward_paths);
    tcase_add_test(tc, test_list_split);
    tcase_add_loop_test(tc, test_command_status, 0,
                        sizeof(exit_cases) / sizeof(exit_cases[0]));
    tcase_add_test(tc, test_command_env);
    tcase_add_test(tc, test_command_run);
    tcase_add_test(tc, test_list_read);
    tcase_add_test(tc, test_deliver_forward);
    tcase_add_test(tc, test_command_and_user_empty_forward);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
