/*
 * ternqueue - the user's view of the queue (Postfix's postqueue):
 *   -p             list the queue in mailq form (what mailq runs)
 *   -j             list it as JSON lines (postqueue -j)
 *   -f             flush: retry all deferred mail now (F to public/qmgr)
 *   -s SITE        retry deferred mail for one domain now (through showq)
 *   -i QUEUEID     retry one deferred message now (through showq)
 *   -Q [QUEUE...]  qshape-like counts by recipient domain and age
 *   -c DIR         configuration directory (also MAIL_CONFIG)
 *
 * Listings come from showq(8) on public/showq; flushes go to qmgr or
 * showq. Installed set-gid $setgid_group, ternqueue can reach public/
 * (02710 $mail_owner:$setgid_group) and nothing else of the queue.
 *
 * Security (set-gid): a configuration directory other than the default
 * is accepted only from root, when it is listed in the default
 * main.conf's alternate_config_directories, or when the program is not
 * running set-gid (a developer instance); the environment is cleared
 * (TZ kept). authorized_mailq_users / authorized_flush_users are
 * checked here for a clear message, and again by showq from the
 * socket's credentials. Without showq (the mail system is down) root
 * and $mail_owner read the queue directly; others get an error.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/queue.h"
#include "mail/queue_list.h"
#include "mail/server.h"
#include "mail/user_acl.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/cmd_msg.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/sys.h"
#include "util/util.h"

#define PROG "ternqueue"

#ifdef __SANITIZE_ADDRESS__
#include <sys/auxv.h>
/* sanitizer builds only: run set-gid, the process cannot be stopped by
   LeakSanitizer (it is not dumpable) and the runtime ignores
   ASAN_OPTIONS in secure mode, so the leak check would fail every run */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return getauxval(AT_SECURE) ? "detect_leaks=0" : "";
}
#endif
#define EX_UNAVAILABLE_ 69

static void usage(void)
{
    fprintf(stderr, "usage: " PROG " [-c config_dir] -p | -j | -f | -s site | "
            "-i queue_id | -Q [queue...]\n");
    exit(2);
}

/* load_config - the configuration, with the set-gid rules applied */
static void load_config(const char *cdir)
{
    bool setgid = getegid() != getgid();
    buf_t err = BUF_INIT;
    const char *tz = getenv("TZ");
    char *tz_copy = tz ? xstrdup(tz) : NULL;

    if (cdir == NULL || *cdir == '\0')
        cdir = getenv("MAIL_CONFIG");
    if (cdir != NULL && *cdir == '\0')
        cdir = NULL;
    if (cdir != NULL)
        cdir = xstrdup(cdir);
    if (setgid) {
        clearenv();
        if (tz_copy != NULL)
            setenv("TZ", tz_copy, 1);
    }
    free(tz_copy);
    if (!config_dir_allowed_setgid(cdir))
        cmd_fatal(1, "configuration directory %s: not allowed (not listed in "
              "alternate_config_directories of %s/main.conf)", cdir,
              TERN_DEFAULT_CONFIG_DIR);
    if (config_load(cdir != NULL ? cdir : TERN_DEFAULT_CONFIG_DIR, &err) < 0) {
        const char *m = buf_str(&err), *last = strrchr(m, '\n');
        cmd_fatal(1, "%s", last ? last + 1 : m);
    }
    buf_free(&err);
    free((char *)cdir);
    if (chdir(var_queue_directory) < 0)
        cmd_fatal(1, "chdir %s: %s", var_queue_directory, strerror(errno));
}

/* check_acl - the list named param allows us? (message and exit if not) */
static void check_acl(const char *param, const char *list)
{
    struct user_acl acl;

    if (user_acl_compile(list, var_mail_owner, &acl, NULL) < 0)
        cmd_fatal(1, "%s: malformed list", param);
    if (!user_acl_allows(&acl, getuid()))
        cmd_fatal(1, "Permission denied: uid %lu is not in %s",
              (unsigned long)getuid(), param);
    user_acl_free(&acl);
}

/* privileged - may we read the queue directly? */
static bool privileged(void)
{
    uid_t owner;
    gid_t g;

    return getuid() == 0
           || (privs_lookup_user(var_mail_owner, &owner, &g) == 0
               && getuid() == owner);
}

static int showq_connect(void)
{
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    int fd;

    str_copy(sa.sun_path, SHOWQ_SOCKET, sizeof(sa.sun_path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return -1;
    }
    return fd;
}

/* showq_ask - send req, read the status reply; the connection (for the
   listing that follows) or -1 with errno when showq cannot be reached;
   a refusal or error from showq is fatal */
static int showq_ask(attr_list_t *req, buf_t *in, long *count)
{
    attr_list_t rep;
    const char *err = NULL, *status;
    int fd = showq_connect(), r;

    if (fd < 0)
        return -1;
    if (attr_write_fd(fd, req, (int)var_ipc_timeout) < 0) {
        close(fd);
        errno = EPIPE;
        return -1;
    }
    attr_list_init(&rep);
    r = attr_read_fd(fd, in, &rep, (int)var_ipc_timeout, &err);
    if (r <= 0)
        cmd_fatal(EX_UNAVAILABLE_, "no reply from showq: %s",
              err ? err : r == 0 ? "connection closed" : strerror(errno));
    status = attr_get(&rep, "status");
    if (status == NULL || strcmp(status, "ok") != 0) {
        const char *reason = attr_get(&rep, "reason");
        cmd_fatal(1, "%s", reason ? reason : "showq refused the request");
    }
    if (count != NULL && attr_get_long(&rep, "count", 0, 1L << 40, count) < 0)
        *count = 0;
    attr_list_free(&rep);
    return fd;
}

struct direct_ctx {
    bool json;
    bool shape;
    buf_t out;
    uint64_t total;
    size_t count;
    uint64_t now;
    struct queue_shape sh;
};

static void out_flush(buf_t *b)
{
    if (b->len > 0 && write_full(STDOUT_FILENO, b->data, b->len) < 0)
        cmd_fatal(1, "write: %s", strerror(errno));
    buf_reset(b);
}

static int direct_one(const struct queue_list_entry *e, void *ctx)
{
    struct direct_ctx *c = ctx;

    if (c->shape)
        queue_shape_add(&c->sh, e, c->now);
    else if (c->json)
        queue_list_json_entry(e, &c->out);
    else {
        if (c->count == 0)
            queue_list_mailq_header(&c->out);
        queue_list_mailq_entry(e, &c->out);
    }
    c->total += e->size;
    c->count++;
    if (c->out.len >= 65536)
        out_flush(&c->out);
    return 0;
}

/* list_direct - the walk showq would do, in this process */
static void list_direct(bool json)
{
    struct direct_ctx c = { .json = json };

    buf_init(&c.out, 0);
    (void)queue_list_walk(NULL, direct_one, &c);
    if (!json)
        queue_list_mailq_trailer(c.total, c.count, &c.out);
    out_flush(&c.out);
    buf_free(&c.out);
}

static void do_list(bool json)
{
    attr_list_t req;
    buf_t in = BUF_INIT;
    char chunk[65536];
    ssize_t n;
    int fd;

    check_acl("authorized_mailq_users", var_authorized_mailq_users);
    attr_list_init(&req);
    attr_add(&req, "request", "list");
    attr_add(&req, "format", json ? "json" : "mailq");
    fd = showq_ask(&req, &in, NULL);
    attr_list_free(&req);
    if (fd < 0) {
        if (!privileged())
            cmd_fatal(EX_UNAVAILABLE_, "Queue report unavailable - mail system "
                  "is down");
        fprintf(stderr, PROG ": warning: Mail system is down -- accessing "
                "queue directly\n");
        list_direct(json);
        return;
    }
    out_flush(&in);
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            cmd_fatal(1, "read from showq: %s", strerror(errno));
        if (write_full(STDOUT_FILENO, chunk, (size_t)n) < 0)
            cmd_fatal(1, "write: %s", strerror(errno));
    }
    close(fd);
    buf_free(&in);
}

static void do_flush(void)
{
    check_acl("authorized_flush_users", var_authorized_flush_users);
    if (trigger_send("public/qmgr", TRIGGER_FLUSH) < 0)
        cmd_fatal(EX_UNAVAILABLE_, "Cannot flush mail queue - mail system is "
              "down (public/qmgr: %s)", strerror(errno));
}

static void do_flush_one(const char *name, const char *value)
{
    attr_list_t req;
    buf_t in = BUF_INIT;
    long count = 0;
    int fd;

    check_acl("authorized_flush_users", var_authorized_flush_users);
    if (strcmp(name, "queue_id") == 0 && !queue_id_valid(value))
        cmd_fatal(1, "%s: not a queue ID", value);
    attr_list_init(&req);
    attr_add(&req, "request", strcmp(name, "site") == 0 ? "flush_site"
                                                         : "flush_id");
    attr_add(&req, name, value);
    fd = showq_ask(&req, &in, &count);
    attr_list_free(&req);
    buf_free(&in);
    if (fd < 0)
        cmd_fatal(EX_UNAVAILABLE_, "Cannot flush mail queue - mail system is "
              "down (%s: %s)", SHOWQ_SOCKET, strerror(errno));
    close(fd);
    if (strcmp(name, "queue_id") == 0 && count == 0)
        cmd_fatal(1, "%s: no such message in the deferred queue", value);
}

static void do_shape(char **queues, int nqueues)
{
    static const char *const defaults[] = { QUEUE_INCOMING, QUEUE_ACTIVE,
                                            QUEUE_DEFERRED, NULL };
    struct direct_ctx c = { .shape = true, .now = time_now_usec() };

    if (!privileged())
        cmd_fatal(1, "-Q reads the queue files: root or $mail_owner only");
    buf_init(&c.out, 0);
    if (nqueues == 0) {
        for (size_t i = 0; defaults[i] != NULL; i++)
            (void)queue_list_walk(defaults[i], direct_one, &c);
    } else {
        for (int i = 0; i < nqueues; i++)
            if (queue_list_walk(queues[i], direct_one, &c) < 0)
                cmd_fatal(1, "%s: not a queue (incoming, active, deferred, hold)",
                      queues[i]);
    }
    queue_shape_format(&c.sh, &c.out);
    out_flush(&c.out);
    buf_free(&c.out);
    queue_shape_free(&c.sh);
}

int main(int argc, char **argv)
{
    const char *cdir = NULL, *site = NULL, *qid = NULL;
    int ch, mode = 0;

    cmd_msg_init(PROG, NULL);

    while ((ch = getopt(argc, argv, "c:pjfs:i:Qv")) != -1) {
        if (ch != 'c' && ch != 'v') {
            if (mode != 0)
                usage();
            mode = ch;
        }
        switch (ch) {
        case 'c': cdir = optarg; break;
        case 's': site = optarg; break;
        case 'i': qid = optarg; break;
        case 'p': case 'j': case 'f': case 'Q': case 'v': break;
        default: usage();
        }
    }
    if (mode == 0 || (mode != 'Q' && optind != argc))
        usage();
    log_init("tern", PROG);
    log_set_stderr(true);
    load_config(cdir);
    switch (mode) {
    case 'p': do_list(false); break;
    case 'j': do_list(true); break;
    case 'f': do_flush(); break;
    case 's': do_flush_one("site", site); break;
    case 'i': do_flush_one("queue_id", qid); break;
    case 'Q': do_shape(argv + optind, argc - optind); break;
    }
    config_free();
    return 0;
}
