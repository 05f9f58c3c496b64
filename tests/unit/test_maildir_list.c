/* test_maildir_list - the Maildir listing: what is listed and skipped
   (dot files, symlinks, FIFOs, directories), UIDs in delivery order and
   stable across listings, never reused, kept by a file moved from new/
   to cur/, sizes from S=/W=, the index or the file, the UIDL rule, a lost
   or damaged index rebuilt with a new UIDVALIDITY, message open, unlink
   and flag changes after another client moved the file; name parsing. */
#include <check.h>

#include "check_main.h"
#include "check_maildir.h"
#include <errno.h>
#include <grp.h>
#include <sys/wait.h>
#include <time.h>

#include "mail/mailbox_index.h"
#include "mail/maildir_list.h"

static void list_ok(int dfd, struct maildir_listing *l)
{
    const char *err = NULL;
    int rc = maildir_list(dfd, l, &err);
    ck_assert_msg(rc == 0, "maildir_list: %s", err ? err : "?");
}

/* find - the message whose name starts with prefix */
static const struct maildir_msg *find(const struct maildir_listing *l,
                                      const char *prefix)
{
    for (size_t i = 0; i < l->count; i++) {
        if (strncmp(l->msgs[i].name, prefix, strlen(prefix)) == 0)
            return &l->msgs[i];
    }
    return NULL;
}

static char long_base[121];

/* the Maildir of most tests */
static void populate(int dfd)
{
    md_put(dfd, "new", "1700000003.M1.host", "Line1\nLine2\n");
    md_put(dfd, "new", "1700000001.M2.host,S=6,W=8", "ab\ncd\n");
    md_put(dfd, "cur", "1700000002.M3.host,S=7:2,SR", "ab\r\ncd\n");
    md_put(dfd, "cur", "1700000004.M4.host:2,", "");
    md_put(dfd, "new", "999999999.M0.host", "x");
    memset(long_base, 'L', sizeof(long_base) - 1);
    memcpy(long_base, "1700000005.", 11);
    md_put(dfd, "new", long_base, "y\n");
    /* never listed */
    md_put(dfd, "new", ".hidden", "h\n");
    md_put(dfd, "cur", ".dot:2,S", "d\n");
    md_put(dfd, "tmp", "1600000000.T.host", "t\n");
    ck_assert_int_eq(symlinkat("../cur/1700000004.M4.host:2,", dfd,
                               "new/1700000006.link"), 0);
    ck_assert_int_eq(symlinkat("/etc/passwd", dfd, "cur/1700000007.pw:2,S"), 0);
    ck_assert_int_eq(mkfifoat(dfd, "new/1700000008.fifo", 0600), 0);
    ck_assert_int_eq(mkdirat(dfd, "cur/1700000009.dir", 0700), 0);
}

START_TEST(test_listing)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing l;

    populate(dfd);
    list_ok(dfd, &l);
    ck_assert_uint_eq(l.count, 6);
    ck_assert_uint_ne(l.uidvalidity, 0);
    ck_assert_uint_eq(l.uidnext, 7);
    /* UID order = delivery order (999999999 is older than 1700000000) */
    static const char *const order[] = {
        "999999999.M0", "1700000001.M2", "1700000002.M3", "1700000003.M1",
        "1700000004.M4", "1700000005.LL",
    };
    for (size_t i = 0; i < 6; i++) {
        ck_assert_msg(strncmp(l.msgs[i].name, order[i], strlen(order[i])) == 0,
                      "msg %zu is %s", i, l.msgs[i].name);
        ck_assert_uint_eq(l.msgs[i].uid, i + 1);
    }
    const struct maildir_msg *m = find(&l, "1700000003.M1");
    ck_assert_int_eq(m->sub, MAILDIR_NEW);
    ck_assert_int_eq(m->size, 12);          /* stat */
    ck_assert_int_eq(m->vsize, 14);         /* counted */
    ck_assert_str_eq(m->flags, "");
    ck_assert_str_eq(m->uidl, "1700000003.M1.host");
    m = find(&l, "1700000001.M2");
    ck_assert_int_eq(m->size, 6);
    ck_assert_int_eq(m->vsize, 8);          /* W= */
    ck_assert_str_eq(m->uidl, "1700000001.M2.host,S=6,W=8");
    m = find(&l, "1700000002.M3");
    ck_assert_int_eq(m->sub, MAILDIR_CUR);
    ck_assert_int_eq(m->size, 7);           /* S= */
    ck_assert_int_eq(m->vsize, 8);          /* the CR LF counts once */
    ck_assert_str_eq(m->flags, "RS");
    ck_assert_uint_eq(m->base_len, strlen("1700000002.M3.host,S=7"));
    ck_assert_str_eq(m->uidl, "1700000002.M3.host,S=7");
    m = find(&l, "1700000004.M4");
    ck_assert_int_eq(m->size, 0);
    ck_assert_int_eq(m->vsize, 0);
    ck_assert_str_eq(m->uidl, "1700000004.M4.host");
    m = find(&l, "1700000005.");
    ck_assert_uint_eq(strlen(m->uidl), 33);
    ck_assert_int_eq(m->uidl[0], 'X');
    maildir_listing_free(&l);
    close(dfd);
}
END_TEST

START_TEST(test_stable_and_cached)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing a, b;

    populate(dfd);
    list_ok(dfd, &a);
    /* grow M1 without renaming it: the second listing must take the
       vsize the first one stored, not count again */
    int fd = openat(dfd, "new/1700000003.M1.host", O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "more\n", 5), 5);
    close(fd);
    list_ok(dfd, &b);
    ck_assert_uint_eq(a.uidvalidity, b.uidvalidity);
    ck_assert_uint_eq(a.count, b.count);
    for (size_t i = 0; i < a.count; i++) {
        ck_assert_str_eq(a.msgs[i].name, b.msgs[i].name);
        ck_assert_uint_eq(a.msgs[i].uid, b.msgs[i].uid);
        ck_assert_str_eq(a.msgs[i].uidl, b.msgs[i].uidl);
    }
    ck_assert_int_eq(find(&b, "1700000003.M1")->vsize, 14);
    ck_assert_int_eq(find(&b, "1700000003.M1")->size, 17);
    maildir_listing_free(&a);
    maildir_listing_free(&b);
    close(dfd);
}
END_TEST

START_TEST(test_never_reused)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing a, b;

    populate(dfd);
    list_ok(dfd, &a);
    const struct maildir_msg *last = &a.msgs[a.count - 1];
    ck_assert_int_eq(maildir_msg_unlink(dfd, last), 0);
    ck_assert_int_eq(maildir_msg_unlink(dfd, last), 0);    /* gone: ok */
    list_ok(dfd, &b);
    ck_assert_uint_eq(b.count, a.count - 1);
    maildir_listing_free(&b);
    /* a new message, even one with an older name, gets UID 7, not 6 */
    md_put(dfd, "new", "1000000000.NEW.host", "n\n");
    list_ok(dfd, &b);
    ck_assert_uint_eq(b.count, a.count);
    ck_assert_uint_eq(find(&b, "1000000000.NEW")->uid, 7);
    ck_assert_uint_eq(b.msgs[b.count - 1].uid, 7);
    ck_assert_uint_eq(b.uidnext, 8);
    maildir_listing_free(&a);
    maildir_listing_free(&b);
    close(dfd);
}
END_TEST

START_TEST(test_move_keeps_uid)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing a, b;

    populate(dfd);
    list_ok(dfd, &a);
    struct maildir_msg *m = &a.msgs[3];      /* 1700000003.M1, in new/ */
    ck_assert_int_eq(m->sub, MAILDIR_NEW);
    uint32_t uid = m->uid;
    char uidl[MAILDIR_UIDL_MAX + 1];
    memcpy(uidl, m->uidl, sizeof(uidl));
    ck_assert_int_eq(maildir_msg_add_flag(dfd, m, 'S'), 0);
    ck_assert_int_eq(m->sub, MAILDIR_CUR);
    ck_assert_str_eq(m->name, "1700000003.M1.host:2,S");
    ck_assert_str_eq(m->flags, "S");
    ck_assert_int_eq(faccessat(dfd, "cur/1700000003.M1.host:2,S", F_OK, 0), 0);
    ck_assert_int_eq(maildir_msg_add_flag(dfd, m, 'S'), 0);  /* no-op */
    ck_assert_int_eq(maildir_msg_add_flag(dfd, m, 's'), -1);
    ck_assert_int_eq(errno, EINVAL);
    list_ok(dfd, &b);
    const struct maildir_msg *n = find(&b, "1700000003.M1");
    ck_assert_uint_eq(n->uid, uid);
    ck_assert_str_eq(n->uidl, uidl);
    ck_assert_int_eq(n->sub, MAILDIR_CUR);
    ck_assert_int_eq(n->vsize, 14);
    ck_assert_uint_eq(b.count, a.count);
    maildir_listing_free(&b);

    /* keyword letters are kept, flags sorted */
    md_put(dfd, "cur", "1700000010.K.host:2,bSa", "k\n");
    list_ok(dfd, &b);
    struct maildir_msg *k = (struct maildir_msg *)find(&b, "1700000010.K");
    ck_assert_str_eq(k->flags, "S");
    ck_assert_int_eq(maildir_msg_add_flag(dfd, k, 'F'), 0);
    ck_assert_str_eq(k->name, "1700000010.K.host:2,FSab");
    ck_assert_str_eq(k->flags, "FS");
    maildir_listing_free(&a);
    maildir_listing_free(&b);
    close(dfd);
}
END_TEST

/* another client moved the file after our listing: open, unlink and
   add_flag find it under its new name */
START_TEST(test_moved_by_other_client)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing l;
    char buf[64];

    populate(dfd);
    list_ok(dfd, &l);
    struct maildir_msg *m = &l.msgs[3];      /* new/1700000003.M1.host */
    ck_assert_int_eq(renameat(dfd, "new/1700000003.M1.host", dfd,
                              "cur/1700000003.M1.host:2,T"), 0);
    int fd = maildir_msg_open(dfd, m);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(read(fd, buf, sizeof(buf)), 12);
    close(fd);
    ck_assert_int_eq(maildir_msg_add_flag(dfd, m, 'S'), 0);
    ck_assert_str_eq(m->name, "1700000003.M1.host:2,ST");
    ck_assert_int_eq(renameat(dfd, "cur/1700000003.M1.host:2,ST", dfd,
                              "cur/1700000003.M1.host:2,"), 0);
    ck_assert_int_eq(maildir_msg_unlink(dfd, m), 0);
    ck_assert_int_eq(faccessat(dfd, "cur/1700000003.M1.host:2,", F_OK, 0), -1);
    ck_assert_int_eq(errno, ENOENT);
    /* gone for good */
    ck_assert_int_eq(maildir_msg_open(dfd, m), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(maildir_msg_add_flag(dfd, m, 'S'), -1);
    ck_assert_int_eq(errno, ENOENT);
    maildir_listing_free(&l);
    close(dfd);
}
END_TEST

/* a message replaced by a symlink or a FIFO after the listing is not
   opened */
START_TEST(test_open_refuses_symlink_fifo)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing l;

    populate(dfd);
    list_ok(dfd, &l);
    const struct maildir_msg *m = &l.msgs[0];       /* new/999999999.M0.host */
    ck_assert_int_eq(unlinkat(dfd, "new/999999999.M0.host", 0), 0);
    ck_assert_int_eq(symlinkat("/etc/passwd", dfd, "new/999999999.M0.host"), 0);
    ck_assert_int_eq(maildir_msg_open(dfd, m), -1);
    ck_assert_int_eq(errno, ENOENT);
    ck_assert_int_eq(unlinkat(dfd, "new/999999999.M0.host", 0), 0);
    ck_assert_int_eq(mkfifoat(dfd, "new/999999999.M0.host", 0600), 0);
    ck_assert_int_eq(maildir_msg_open(dfd, m), -1);   /* does not block */
    ck_assert_int_eq(errno, ENOENT);
    maildir_listing_free(&l);
    close(dfd);
}
END_TEST

START_TEST(test_index_lost)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing a, b;

    populate(dfd);
    list_ok(dfd, &a);
    maildir_listing_free(&a);
    md_set_uidvalidity(path, 12345);
    list_ok(dfd, &a);
    ck_assert_uint_eq(a.uidvalidity, 12345);
    /* remove a message so the rebuilt numbering differs */
    ck_assert_int_eq(maildir_msg_unlink(dfd, &a.msgs[0]), 0);
    ck_assert_int_eq(unlinkat(dfd, MAILBOX_INDEX_FILE, 0), 0);
    list_ok(dfd, &b);
    ck_assert_uint_ne(b.uidvalidity, 12345);
    ck_assert_uint_eq(b.count, a.count - 1);
    for (size_t i = 0; i < b.count; i++) {
        ck_assert_uint_eq(b.msgs[i].uid, i + 1);
        /* the UIDL does not depend on the index */
        ck_assert_str_eq(b.msgs[i].uidl, a.msgs[i + 1].uidl);
    }
    maildir_listing_free(&a);
    maildir_listing_free(&b);
    close(dfd);
}
END_TEST

START_TEST(test_index_damaged)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing a, b;

    populate(dfd);
    list_ok(dfd, &a);
    md_write_garbage(dfd);
    list_ok(dfd, &b);
    ck_assert_uint_eq(b.count, a.count);
    for (size_t i = 0; i < b.count; i++)
        ck_assert_str_eq(b.msgs[i].uidl, a.msgs[i].uidl);
    maildir_listing_free(&a);
    maildir_listing_free(&b);

    /* a symlink in the index's place: refused, nothing followed */
    ck_assert_int_eq(unlinkat(dfd, MAILBOX_INDEX_FILE, 0), 0);
    ck_assert_int_eq(symlinkat("elsewhere", dfd, MAILBOX_INDEX_FILE), 0);
    const char *err = NULL;
    ck_assert_int_eq(maildir_list(dfd, &a, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "symbolic link"));
    ck_assert_uint_eq(a.count, 0);
    ck_assert_int_eq(faccessat(dfd, "elsewhere", F_OK, 0), -1);
    maildir_listing_free(&a);
    close(dfd);
}
END_TEST

/* the same key in new/ and cur/ (a copy, or a scan that raced a move):
   listed once, the cur/ file */
START_TEST(test_duplicate_key)
{
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    struct maildir_listing l;

    md_put(dfd, "new", "1700000001.D.host", "a\n");
    md_put(dfd, "cur", "1700000001.D.host:2,S", "a\n");
    md_put(dfd, "cur", "1700000002.E.host:2,S", "b\n");
    list_ok(dfd, &l);
    ck_assert_uint_eq(l.count, 2);
    ck_assert_int_eq(l.msgs[0].sub, MAILDIR_CUR);
    ck_assert_str_eq(l.msgs[0].name, "1700000001.D.host:2,S");
    maildir_listing_free(&l);
    close(dfd);
}
END_TEST

START_TEST(test_empty_and_missing_dirs)
{
    char path[PATH_MAX];
    int dfd = md_make(path, false);
    struct maildir_listing l;

    list_ok(dfd, &l);                        /* no new/, no cur/ */
    ck_assert_uint_eq(l.count, 0);
    ck_assert_uint_ne(l.uidvalidity, 0);
    maildir_listing_free(&l);
    ck_assert_int_eq(mkdirat(dfd, "new", 0700), 0);
    md_put(dfd, "new", "1.a", "z");
    md_put(dfd, "new", "2.b", "y\r");
    list_ok(dfd, &l);
    ck_assert_uint_eq(l.count, 2);
    /* no line end at the end: counted with the one RETR adds, CR LF
       (after a lone CR, only the LF) */
    ck_assert_int_eq(l.msgs[0].vsize, 3);
    ck_assert_int_eq(l.msgs[1].vsize, 3);
    maildir_listing_free(&l);
    /* cur/ is a symlink: not followed, an error */
    ck_assert_int_eq(symlinkat("new", dfd, "cur"), 0);
    const char *err = NULL;
    ck_assert_int_eq(maildir_list(dfd, &l, &err), -1);
    ck_assert_ptr_nonnull(strstr(err, "cur/"));
    maildir_listing_free(&l);
    close(dfd);
}
END_TEST

/* as pop3d runs it: root drops to the owner for good, then lists (the
   index path goes through /proc/self/fd, which a process whose IDs
   changed may still use for its own descriptors) */
START_TEST(test_as_owner_after_drop)
{
    TERN_SKIP_UNLESS_ROOT();
    char path[PATH_MAX];
    int dfd = md_make(path, true);
    const uid_t uid = 65534;
    const gid_t gid = 65534;

    populate(dfd);
    static const char *const subs[] = { "", "/new", "/cur", "/tmp" };
    for (size_t i = 0; i < 4; i++) {
        char p[PATH_MAX + 8];
        ck_assert_int_lt(snprintf(p, sizeof(p), "%s%s", path, subs[i]),
                         (int)sizeof(p));
        ck_assert_int_eq(chown(p, uid, gid), 0);
    }
    ck_assert_int_eq(chmod(md_basedir, 0755), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct maildir_listing l;
        const char *err;
        if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0
            || setresuid(uid, uid, uid) < 0)
            _exit(2);
        if (maildir_list(dfd, &l, &err) < 0) {
            fprintf(stderr, "maildir_list as %d: %s\n", (int)uid, err);
            _exit(3);
        }
        _exit(l.count == 6 ? 0 : 4);
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status));
    ck_assert_int_eq(WEXITSTATUS(status), 0);
    struct stat st;
    ck_assert_int_eq(fstatat(dfd, MAILBOX_INDEX_FILE, &st, 0), 0);
    ck_assert_uint_eq(st.st_uid, uid);
    ck_assert_uint_eq(st.st_mode & 0777, 0600);
    close(dfd);
}
END_TEST

struct name_case {
    const char *name;
    bool ok;
    size_t base_len;
    const char *flags;
    long long size, vsize;
};

static const struct name_case name_cases[] = {
    { "1700000000.Q1R2.host,S=10,W=12", true, 30, "", 10, 12 },
    { "1700000000.Q1R2.host,W=12,S=10:2,S", true, 30, "S", 10, 12 },
    { "1.x,S=10:2,SR", true, 8, "RS", 10, -1 },
    { "1.x:2,TSRFDP", true, 3, "DFPRST", -1, -1 },
    { "1.x:2,SSS", true, 3, "S", -1, -1 },
    { "1.x:2,aSb", true, 3, "S", -1, -1 },
    { "1.x:2,", true, 3, "", -1, -1 },
    { "1.x:1,S", true, 3, "", -1, -1 },
    { "1.x:2S", true, 3, "", -1, -1 },
    { "1.x:", true, 3, "", -1, -1 },
    { "1.x:2,S:2,R", true, 3, "RS", -1, -1 },
    { "1.x,S=", true, 6, "", -1, -1 },
    { "1.x,S=abc", true, 9, "", -1, -1 },
    { "1.x,S=12x", true, 9, "", -1, -1 },
    { "1.x,S=-1", true, 8, "", -1, -1 },
    { "1.x,S=+1", true, 8, "", -1, -1 },
    { "1.x,S=007", true, 9, "", 7, -1 },
    { "1.x,S=1,S=2", true, 11, "", 1, -1 },
    { "1.x,S=1234567890123456789", true, 25, "", -1, -1 },
    { "1.x,S=123456789012345678", true, 24, "", 123456789012345678LL, -1 },
    { "1.x,s=5", true, 7, "", -1, -1 },
    { "1.x,X=1,S=2", true, 11, "", 2, -1 },
    { "S=5", true, 3, "", -1, -1 },
    { ",S=5", true, 4, "", 5, -1 },
    { "1.x:2,S,S=5", true, 3, "S", -1, -1 },
    { "", false, 0, "", -1, -1 },
    { ".", false, 0, "", -1, -1 },
    { "..", false, 0, "", -1, -1 },
    { ".hidden", false, 0, "", -1, -1 },
    { ".1.x:2,S", false, 0, "", -1, -1 },
    { ":2,S", false, 0, "", -1, -1 },
    { "a/b", false, 0, "", -1, -1 },
};

START_TEST(test_name_parse)
{
    const struct name_case *c = &name_cases[_i];
    size_t bl = 999;
    char flags[27];
    long long s = 5, w = 5;

    memset(flags, 'z', sizeof(flags));
    bool ok = maildir_name_parse(c->name, &bl, flags, &s, &w);
    ck_assert_msg(ok == c->ok, "case %d (%s)", _i, c->name);
    if (ok) {
        ck_assert_uint_eq(bl, c->base_len);
        ck_assert_str_eq(flags, c->flags);
        ck_assert_int_eq(s, c->size);
        ck_assert_int_eq(w, c->vsize);
    }
}
END_TEST

START_TEST(test_name_lengths)
{
    char name[600];
    size_t bl;
    char flags[27];
    long long s, w;

    memset(name, 'n', sizeof(name));
    name[256] = '\0';
    ck_assert(!maildir_name_parse(name, &bl, flags, &s, &w));  /* 256: too long */
    name[255] = '\0';
    ck_assert(maildir_name_parse(name, &bl, flags, &s, &w));
    ck_assert_uint_eq(bl, 255);
    memcpy(name + 250, ":2,S", 5);
    ck_assert(maildir_name_parse(name, &bl, flags, &s, &w));
    ck_assert_uint_eq(bl, 250);
    ck_assert_str_eq(flags, "S");
    memset(name, 'n', sizeof(name));
    name[sizeof(name) - 1] = '\0';
    ck_assert(!maildir_name_parse(name, &bl, flags, &s, &w));
}
END_TEST

struct uidl_case {
    const char *base;
    const char *uidl;
};

static const struct uidl_case uidl_cases[] = {
    { "1700000000.Q1R2.host,S=10,W=12", "1700000000.Q1R2.host,S=10,W=12" },
    { "!", "!" },
    { "~~~", "~~~" },
    { "a b", "Xc8687a08aa5d6ed2044328fa6a697ab8" },
    { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "X87a1e4c1c92b7b7a7c46433d780de6cc" },          /* 71 */
    { "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
      "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" },
};

START_TEST(test_uidl)
{
    const struct uidl_case *c = &uidl_cases[_i];
    char out[MAILDIR_UIDL_MAX + 1];

    maildir_uidl(c->base, strlen(c->base), out);
    ck_assert_str_eq(out, c->uidl);
}
END_TEST

START_TEST(test_uidl_hostile)
{
    char out[MAILDIR_UIDL_MAX + 1];
    static const char *const bad[] = { "a\tb", "a\x7f", "caf\xc3\xa9", "\x01" };

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        maildir_uidl(bad[i], strlen(bad[i]), out);
        ck_assert_int_eq(out[0], 'X');
        ck_assert_uint_eq(strlen(out), 33);
        for (size_t j = 1; j < 33; j++)
            ck_assert(strchr("0123456789abcdef", out[j]) != NULL);
    }
    /* only base_len bytes count: the info part is not part of the UIDL */
    maildir_uidl("abc:2,S", 3, out);
    ck_assert_str_eq(out, "abc");
}
END_TEST

int main(void)
{
    Suite *s = suite_create("maildir_list");
    TCase *tc = tcase_create("core");

    tcase_add_unchecked_fixture(tc, md_base_setup, md_base_teardown);
    tcase_add_test(tc, test_listing);
    tcase_add_test(tc, test_stable_and_cached);
    tcase_add_test(tc, test_never_reused);
    tcase_add_test(tc, test_move_keeps_uid);
    tcase_add_test(tc, test_moved_by_other_client);
    tcase_add_test(tc, test_open_refuses_symlink_fifo);
    tcase_add_test(tc, test_index_lost);
    tcase_add_test(tc, test_index_damaged);
    tcase_add_test(tc, test_duplicate_key);
    tcase_add_test(tc, test_empty_and_missing_dirs);
    tcase_add_test(tc, test_as_owner_after_drop);
    tcase_add_loop_test(tc, test_name_parse, 0,
                        sizeof(name_cases) / sizeof(name_cases[0]));
    tcase_add_test(tc, test_name_lengths);
    tcase_add_loop_test(tc, test_uidl, 0,
                        sizeof(uidl_cases) / sizeof(uidl_cases[0]));
    tcase_add_test(tc, test_uidl_hostile);
    suite_add_tcase(s, tc);
    return tern_check_run(s, true);
}
