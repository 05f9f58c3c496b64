/*
 * local_command - delivery to a command: |command targets of aliases,
 * .forward and :include: files, and $mailbox_command (local.h).
 *
 * The command runs as "SHELL -c COMMAND" (SHELL = $local_command_shell,
 * else /bin/sh) in a child process of its own process group, with:
 *   - the rights it was given (uid, gid and, for an account with a name,
 *     its supplementary groups from the group database), set for good
 *     with setgroups/setresgid/setresuid before exec; root is refused,
 *     before the fork and again in the child;
 *   - a clean environment (local_command_env: HOME, USER, LOGNAME,
 *     SHELL, a fixed PATH, the recipient and sender variables Postfix
 *     documents, the client variables the queue file has);
 *   - the home directory as working directory (/ if the account cannot
 *     enter it), every signal unblocked and at its default;
 *   - the message on standard input: a "From SENDER DATE" line,
 *     Return-Path:, Delivered-To: (per $prepend_delivered_header), then
 *     the queued content unchanged;
 *   - standard output and error captured into one pipe, of which the
 *     first LOCAL_CMD_OUTPUT bytes are kept for the bounce text.
 * After $command_time_limit the whole process group is killed. The
 * result comes from the exit status (local_command_status): 0 delivered;
 * EX_TEMPFAIL, EX_OSERR and death by a signal defer (4.3.0); EX_NOUSER
 * 5.1.1, EX_NOHOST 5.1.2, EX_DATAERR 5.6.0, EX_NOPERM 5.7.0, anything else
 * 5.3.0, each bounce with the command's output in the reason.
 *
 * Security: the parent stays root only to read the queue file it already
 * holds open and to write into a pipe; it never parses what the command
 * prints beyond copying bytes. Nothing the queue file says decides the
 * command or its rights (local_deliver.c derives both from the alias
 * table or the user's own files at delivery time).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <time.h>
#include <unistd.h>

#include "local.h"
#include "mail/addr.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define LOCAL_CMD_OUTPUT   1024
#define LOCAL_CMD_PATH     "/usr/local/bin:/usr/bin:/bin"

static void env_add(char ***env, size_t *n, const char *name, const char *value)
{
    if (value == NULL)
        return;
    buf_t b;
    buf_init(&b, 0);
    buf_printf(&b, "%s=%s", name, value);
    *env = xrealloc(*env, (*n + 2) * sizeof(**env));
    (*env)[(*n)++] = buf_strdup(&b);
    (*env)[*n] = NULL;
    buf_free(&b);
}

size_t local_command_env(const struct local_request *r, const struct local_rights *who,
                         const struct local_cmd_ctx *ctx, char ***env_r)
{
    char **env = xcalloc(1, sizeof(*env));
    size_t n = 0;
    char *lp, *dom;

    addr_split(r->recipient, &lp, &dom);
    env_add(&env, &n, "HOME", *who->home ? who->home : "/");
    env_add(&env, &n, "USER", ctx->user);
    env_add(&env, &n, "LOGNAME", ctx->user);
    env_add(&env, &n, "SHELL", *who->shell ? who->shell : "/bin/sh");
    env_add(&env, &n, "PATH", LOCAL_CMD_PATH);
    env_add(&env, &n, "LOCAL", lp);
    env_add(&env, &n, "DOMAIN", dom);
    if (ctx->extension && *ctx->extension)
        env_add(&env, &n, "EXTENSION", ctx->extension);
    env_add(&env, &n, "RECIPIENT", r->recipient);
    env_add(&env, &n, "ORIGINAL_RECIPIENT", r->orig_rcpt);
    env_add(&env, &n, "SENDER", r->sender);
    if (r->msg != NULL) {
        static const struct { const char *env, *attr; } client[] = {
            { "CLIENT_ADDRESS", "client_address" },
            { "CLIENT_HOSTNAME", "client_name" },
            { "CLIENT_HELO", "helo_name" },
            { "CLIENT_PROTOCOL", "protocol" },
            { "ENVID", "dsn_envid" },
        };
        for (size_t i = 0; i < sizeof(client) / sizeof(client[0]); i++)
            env_add(&env, &n, client[i].env, queue_msg_attr(r->msg, client[i].attr));
    }
    free(lp);
    *env_r = env;
    return n;
}

/* output_text - the captured output as one printable line */
static void output_text(const char *output, char *out, size_t size)
{
    size_t j = 0;
    bool space = false;
    for (const char *p = output ? output : ""; *p && j + 1 < size; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) {
            space = j > 0;
            continue;
        }
        if (space && j + 2 < size)
            out[j++] = ' ';
        space = false;
        out[j++] = (char)c;
    }
    out[j] = '\0';
}

void local_command_status(int wstatus, bool timed_out, const char *output,
                          struct local_result *res)
{
    char text[400];
    output_text(output, text, sizeof(text));
    const char *sep = *text ? ": " : "";

    if (timed_out) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "command time limit exceeded%s%s", sep, text);
        return;
    }
    if (WIFSIGNALED(wstatus)) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "command killed by signal %d%s%s", WTERMSIG(wstatus), sep, text);
        return;
    }
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : EX_SOFTWARE;
    const char *dsn = "5.3.0";
    int status = DELIVER_BOUNCE;
    switch (code) {
    case 0:
        local_result_set(res, DELIVER_OK, "2.0.0", "delivered to command");
        return;
    case EX_TEMPFAIL:
    case EX_OSERR:
        status = DELIVER_DEFER;
        dsn = "4.3.0";
        break;
    case EX_NOUSER:
        dsn = "5.1.1";
        break;
    case EX_NOHOST:
        dsn = "5.1.2";
        break;
    case EX_DATAERR:
        dsn = "5.6.0";
        break;
    case EX_NOPERM:
        dsn = "5.7.0";
        break;
    default:
        break;
    }
    local_result_set(res, status, dsn, "command failed with exit status %d%s%s",
                     code, sep, text);
}

/* cmd_groups - supplementary groups of the account (its gid alone when it
   has no name); malloc'd, count in *n */
static gid_t *cmd_groups(const struct local_rights *who, int *n)
{
    int cnt = 32;
    gid_t *g = xcalloc((size_t)cnt, sizeof(*g));
    if (*who->user == '\0') {
        g[0] = who->gid;
        *n = 1;
        return g;
    }
    if (getgrouplist(who->user, who->gid, g, &cnt) < 0) {
        g = xrealloc(g, (size_t)cnt * sizeof(*g));
        if (getgrouplist(who->user, who->gid, g, &cnt) < 0) {
            g[0] = who->gid;
            cnt = 1;
        }
    }
    *n = cnt;
    return g;
}

/* cmd_child - in the child: become who for good, then exec. Never returns. */
static void cmd_child(const struct local_rights *who, const gid_t *groups, int ngroups,
                      int in_fd, int out_fd, const char *command, char **env)
{
    const char *shell = *var_local_command_shell ? var_local_command_shell : "/bin/sh";
    char *argv[] = { (char *)shell, (char *)"-c", (char *)command, NULL };
    sigset_t all;

    (void)setsid();
    if (dup2(in_fd, 0) < 0 || dup2(out_fd, 1) < 0 || dup2(out_fd, 2) < 0)
        _exit(EX_TEMPFAIL);
    fd_close_from(3);
    sigemptyset(&all);
    for (int s = 1; s < NSIG; s++)
        (void)signal(s, SIG_DFL);
    (void)sigprocmask(SIG_SETMASK, &all, NULL);
    if (privs_running_as_root()) {
        if (seteuid(0) < 0 || setgroups((size_t)ngroups, groups) < 0
            || setresgid(who->gid, who->gid, who->gid) < 0
            || setresuid(who->uid, who->uid, who->uid) < 0)
            _exit(EX_TEMPFAIL);
        if (who->uid == 0 || getuid() == 0 || geteuid() == 0 || setuid(0) == 0)
            _exit(EX_TEMPFAIL);     /* never exec anything as root */
    }
    if (chdir(*who->home ? who->home : "/") < 0 && chdir("/") < 0)
        _exit(EX_TEMPFAIL);
    execve(shell, argv, env);
    _exit(EX_TEMPFAIL);     /* no shell: the admin's problem, try later */
}

/* cmd_prefix - what comes before the content on the command's stdin */
static void cmd_prefix(const struct local_request *r, buf_t *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    if (localtime_r(&now, &tm) == NULL
        || strftime(date, sizeof(date), "%a %b %e %H:%M:%S %Y", &tm) == 0)
        str_copy(date, "Thu Jan  1 00:00:00 1970", sizeof(date));
    buf_printf(out, "From %s  %s\n", *r->sender ? r->sender : "MAILER-DAEMON", date);
    buf_printf(out, "Return-Path: <%s>\n", r->sender);
    if (local_class_allowed(var_prepend_delivered_header, "command"))
        buf_printf(out, "Delivered-To: %s\n", r->recipient);
}

/* cmd_feed - parent side: message in, output out, until the child is
   done or the time limit; returns the wait status, *timed_out, and
   *read_error when the queue file could not be read */
static int cmd_feed(const struct local_request *r, pid_t pid, int in_fd, int out_fd,
                    buf_t *output, bool *timed_out, bool *read_error)
{
    buf_t pre;
    char chunk[65536];
    size_t pending = 0, sent = 0;
    off_t off = r->content_offset;
    uint64_t left = r->content_size;
    bool prefix_done = false;
    uint64_t deadline = time_mono_msec() + (uint64_t)var_command_time_limit * 1000;
    int wstatus = 0;
    bool exited = false;

    buf_init(&pre, 0);
    cmd_prefix(r, &pre);
    *timed_out = *read_error = false;
    while (out_fd >= 0 || !exited) {
        if (in_fd >= 0 && sent == pending) {
            /* refill: prefix first, then the content */
            sent = pending = 0;
            if (!prefix_done) {
                size_t n = pre.len < sizeof(chunk) ? pre.len : sizeof(chunk);
                memcpy(chunk, buf_str(&pre), n);
                pending = n;
                prefix_done = true;
            } else if (left > 0) {
                size_t want = left < sizeof(chunk) ? (size_t)left : sizeof(chunk);
                ssize_t n = pread(r->queue_fd, chunk, want, off);
                if (n <= 0) {
                    /* the queue file went bad under us: kill, try later */
                    kill(-pid, SIGKILL);
                    *read_error = true;
                    close(in_fd);
                    in_fd = -1;
                    continue;
                }
                pending = (size_t)n;
                off += n;
                left -= (uint64_t)n;
            } else {
                close(in_fd);
                in_fd = -1;
            }
        }
        uint64_t now = time_mono_msec();
        if (now >= deadline) {
            kill(-pid, SIGKILL);
            *timed_out = true;
            break;
        }
        struct pollfd p[2];
        nfds_t np = 0;
        int in_i = -1, out_i = -1;
        if (in_fd >= 0) {
            p[np] = (struct pollfd){ .fd = in_fd, .events = POLLOUT };
            in_i = (int)np++;
        }
        if (out_fd >= 0) {
            p[np] = (struct pollfd){ .fd = out_fd, .events = POLLIN };
            out_i = (int)np++;
        }
        /* slices, so a child that exits while a grandchild keeps the
           output pipe open is noticed */
        uint64_t wait = deadline - now < 200 ? deadline - now : 200;
        int rc = np ? poll(p, np, (int)wait) : 0;
        if (np == 0) {
            struct timespec ts = { 0, 10 * 1000 * 1000 };
            nanosleep(&ts, NULL);
        }
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0 && in_i >= 0 && p[in_i].revents) {
            ssize_t n = write(in_fd, chunk + sent, pending - sent);
            if (n > 0) {
                sent += (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                /* EPIPE: the command does not want (the rest of) it;
                   its exit status decides */
                close(in_fd);
                in_fd = -1;
            }
        }
        if (rc > 0 && out_i >= 0 && p[out_i].revents) {
            char o[4096];
            ssize_t n = read(out_fd, o, sizeof(o));
            if (n > 0) {
                if (output->len < LOCAL_CMD_OUTPUT)
                    buf_append(output, o, (size_t)n < LOCAL_CMD_OUTPUT - output->len
                                              ? (size_t)n : LOCAL_CMD_OUTPUT - output->len);
            } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
                close(out_fd);
                out_fd = -1;
            }
        }
        if (!exited) {
            pid_t w = waitpid(pid, &wstatus, WNOHANG);
            if (w == pid)
                exited = true;
            else if (w < 0 && errno != EINTR)
                break;
        }
        if (exited && in_fd < 0 && out_fd >= 0) {
            /* drain what is there now; do not wait for a grandchild */
            char o[4096];
            ssize_t n;
            while ((n = read(out_fd, o, sizeof(o))) > 0)
                if (output->len < LOCAL_CMD_OUTPUT)
                    buf_append(output, o, (size_t)n < LOCAL_CMD_OUTPUT - output->len
                                              ? (size_t)n : LOCAL_CMD_OUTPUT - output->len);
            close(out_fd);
            out_fd = -1;
        }
        if (exited && in_fd >= 0) {
            close(in_fd);
            in_fd = -1;
        }
    }
    if (in_fd >= 0)
        close(in_fd);
    if (out_fd >= 0)
        close(out_fd);
    if (!exited) {
        if (!*timed_out)
            kill(-pid, SIGKILL);
        while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR)
            ;
    }
    /* whatever the command left behind in its group goes too */
    if (*timed_out)
        kill(-pid, SIGKILL);
    buf_free(&pre);
    return wstatus;
}

void local_command(const struct local_request *r, const struct local_rights *who,
                   const struct local_cmd_ctx *ctx, const char *command,
                   struct local_result *res)
{
    int in[2] = { -1, -1 }, out[2] = { -1, -1 };
    char **env;
    size_t nenv;
    int ngroups = 0;
    gid_t *groups;
    buf_t output;

    if (privs_running_as_root() && who->uid == 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "refusing to run command \"%.100s\" as root", command);
        return;
    }
    if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0", "pipe: %m");
        if (in[0] >= 0) {
            close(in[0]);
            close(in[1]);
        }
        return;
    }
    nenv = local_command_env(r, who, ctx, &env);
    groups = cmd_groups(who, &ngroups);
    pid_t pid = fork();
    if (pid == 0)
        cmd_child(who, groups, ngroups, in[0], out[1], command, env);
    int saved = errno;
    strv_free(env, nenv);
    free(groups);
    close(in[0]);
    close(out[1]);
    if (pid < 0) {
        errno = saved;
        local_result_set(res, DELIVER_DEFER, "4.3.0", "fork: %m");
        close(in[1]);
        close(out[0]);
        return;
    }
    (void)fcntl(in[1], F_SETFL, O_NONBLOCK);
    (void)fcntl(out[0], F_SETFL, O_NONBLOCK);
    buf_init(&output, 0);
    bool timed_out, read_error;
    int wstatus = cmd_feed(r, pid, in[1], out[0], &output, &timed_out, &read_error);
    if (read_error)
        local_result_set(res, DELIVER_DEFER, "4.3.0", "cannot read the queued message");
    else
        local_command_status(wstatus, timed_out, buf_str(&output), res);
    buf_free(&output);
}
