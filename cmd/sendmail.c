/*
 * sendmail - the Sendmail-compatible submission command (Postfix's
 * sendmail(1) is the model). It reads a message on standard input and
 * hands it, as a maildrop-format stream (mail/maildrop.h), to the
 * set-gid postdrop in $daemon_directory, which queues it in maildrop/
 * for pickup; that works while the daemons are stopped.
 *
 * Modes: -bm (default) deliver; -bs SMTP on stdin/stdout, each message
 * through postdrop; -bp (and the name mailq) lists the queue with
 * "$command_directory/ternqueue -p"; -q flushes ("ternqueue -f"), -qRsite
 * ("ternqueue -s site"); -bi (and the name newaliases) runs
 * $daemon_directory/newaliases.
 *
 * Options: -t recipients from To/Cc/Bcc too (Resent- when present; Bcc
 * removed by pickup), -i/-oi a line with one '.' does not end the input,
 * -f/-r sender, -F full name, -N DSN notify, -R DSN ret, -V envelope ID,
 * -B body type, -v verbose, -C dir (or MAIL_CONFIG) the configuration
 * directory; every other option is ignored, as sendmail does (-h, -L,
 * -O, -X take an argument). Lines ending CR LF become LF; a first
 * line "From " (an mbox separator) is dropped.
 *
 * Exit status: postdrop's (0 queued, 65 malformed or too large, 75
 * temporary), 64 usage, 65 no recipients.
 *
 * Security: sendmail has no privilege; the set-gid postdrop checks all
 * it writes again. The sender defaults to the login name of the real
 * uid (cleanup appends @$myorigin); any -f is passed on, and pickup
 * logs the uid with it, as Postfix does.
 */
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mail/addr.h"
#include "mail/config.h"
#include "mail/maildrop.h"
#include "mail/queue_record.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

#define EX_USAGE    64
#define EX_DATAERR  65
#define EX_SOFTWARE 70
#define EX_TEMPFAIL 75
#define EX_NOPERM   77

#define SM_LINE_MAX 65536

struct sm_opts {
    const char *cdir;
    const char *sender;         /* NULL: the login name */
    const char *fullname;
    bool extract, dot_ok, verbose;
    unsigned notify;
    const char *ret, *envid, *body;
    char **rcpts;
    size_t nrcpts;
    char *owned;                /* the full name from the GECOS field */
};

static struct sm_opts opt;

static void __attribute__((noreturn, format(printf, 2, 3)))
sm_die(int status, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "sendmail: fatal: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(status);
}

/* sm_addr - "<a@b>" or "a@b" as the bare address */
static char *sm_addr(const char *s)
{
    size_t n = strlen(s);

    while (*s == ' ')
        s++, n--;
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n >= 2 && s[0] == '<' && s[n - 1] == '>')
        return xstrndup(s + 1, n - 2);
    return xstrndup(s, n);
}

/* --- one submission through postdrop ----------------------------------- */

struct submit {
    pid_t pid;
    int fd;
    maildrop_writer_t w;
    const char *why;            /* our own failure */
    int status;                 /* EX_ status of our failure */
    /* -t: the header section, to count its recipients */
    buf_t hdr;
    bool hdr_done;
    long hdr_rcpts;
};

static void sm_exec(const char *dir, const char *prog, const char *arg1,
                    const char *arg2)
{
    buf_t path = BUF_INIT;
    const char *argv[8];
    int n = 0;

    buf_printf(&path, "%s/%s", dir, prog);
    argv[n++] = prog;
    if (opt.cdir) {
        argv[n++] = "-c";
        argv[n++] = opt.cdir;
    }
    if (arg1)
        argv[n++] = arg1;
    if (arg2)
        argv[n++] = arg2;
    argv[n] = NULL;
    execv(buf_str(&path), (char *const *)argv);
    sm_die(EX_TEMPFAIL, "execute %s: %s", buf_str(&path), strerror(errno));
}

static int sm_count(void *ctx, const char *a)
{
    (void)a;
    (*(long *)ctx)++;
    return 0;
}

/* submit_hdr_scan - count the recipients of the header section (-t) */
static void submit_hdr_scan(struct submit *s)
{
    static const char *const names[] = { "To", "Cc", "Bcc", "Resent-To",
                                         "Resent-Cc", "Resent-Bcc" };
    const char *h = buf_str(&s->hdr);
    size_t n = s->hdr.len, i = 0;

    while (i < n) {
        size_t j = i;
        do {
            const char *lf = memchr(h + j, '\n', n - j);
            j = lf ? (size_t)(lf - h) + 1 : n;
        } while (j < n && (h[j] == ' ' || h[j] == '\t'));
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            size_t v = maildrop_header_is(h + i, j - i, names[k]);
            if (v > 0)
                (void)maildrop_header_addrs(h + i + v, j - i - v, sm_count,
                                            &s->hdr_rcpts);
        }
        i = j;
    }
}

static int submit_start(struct submit *s, const char *sender,
                        char **rcpts, size_t nrcpts)
{
    int p[2];
    const char *why;

    memset(s, 0, sizeof(*s));
    buf_init(&s->hdr, (size_t)var_header_size_limit);
    if (pipe(p) < 0)
        sm_die(EX_TEMPFAIL, "pipe: %s", strerror(errno));
    fflush(stdout);
    if ((s->pid = fork()) < 0)
        sm_die(EX_TEMPFAIL, "fork: %s", strerror(errno));
    if (s->pid == 0) {
        if (dup2(p[0], STDIN_FILENO) < 0)
            _exit(EX_TEMPFAIL);
        close(p[0]);
        close(p[1]);
        sm_exec(var_daemon_directory, "postdrop", opt.verbose ? "-v" : NULL,
                NULL);
    }
    close(p[0]);
    s->fd = p[1];
    if (maildrop_writer_init(&s->w, s->fd, (uint64_t)var_message_size_limit,
                             &why) < 0
        || maildrop_writer_rec(&s->w, MDREC_SENDER, sender, &why) < 0
        || (opt.fullname && opt.fullname[0]
            && maildrop_writer_rec(&s->w, MDREC_FULLNAME, opt.fullname, &why) < 0)
        || (opt.ret && maildrop_writer_attr(&s->w, MAILDROP_ATTR_DSN_RET,
                                            opt.ret, &why) < 0)
        || (opt.envid && maildrop_writer_attr(&s->w, MAILDROP_ATTR_DSN_ENVID,
                                              opt.envid, &why) < 0)
        || (opt.body && maildrop_writer_attr(&s->w, MAILDROP_ATTR_BODY,
                                             opt.body, &why) < 0)
        || (opt.extract && maildrop_writer_attr(&s->w, MAILDROP_ATTR_EXTRACT,
                                                "yes", &why) < 0))
        goto bad;
    if (opt.notify != 0) {
        char text[QREC_NOTIFY_TEXT_MAX];
        if (queue_notify_format(opt.notify, text, sizeof(text)) < 0
            || maildrop_writer_attr(&s->w, MAILDROP_ATTR_DSN_NOTIFY, text,
                                    &why) < 0)
            goto bad;
    }
    for (size_t i = 0; i < nrcpts; i++)
        if (maildrop_writer_rec(&s->w, MDREC_RCPT, rcpts[i], &why) < 0)
            goto bad;
    return 0;
bad:
    s->why = why;
    s->status = EX_DATAERR;
    return -1;
}

static int submit_content(struct submit *s, const char *p, size_t n)
{
    const char *why;

    if (s->why != NULL)
        return -1;
    if (opt.extract && !s->hdr_done) {
        /* the header section ends at the first empty line */
        size_t room = s->hdr.max - s->hdr.len;
        (void)buf_append(&s->hdr, p, n < room ? n : room);
        if (n == 1 && p[0] == '\n' && (s->hdr.len < 2
                                       || s->hdr.data[s->hdr.len - 2] == '\n'))
            s->hdr_done = true;
        if (s->hdr.len >= s->hdr.max)
            s->hdr_done = true;
    }
    if (maildrop_writer_content(&s->w, p, n, &why) < 0) {
        s->why = why;
        s->status = strcmp(why, "write error") == 0 ? EX_TEMPFAIL : EX_DATAERR;
        return -1;
    }
    return 0;
}

/* submit_finish - the exit status of the whole submission; *why_r our
   own reason (postdrop printed its own) */
static int submit_finish(struct submit *s, size_t nrcpts, const char **why_r)
{
    const char *why;
    int st;

    *why_r = NULL;
    if (s->why == NULL && opt.extract) {
        submit_hdr_scan(s);
        if (nrcpts == 0 && s->hdr_rcpts == 0) {
            s->why = "no recipient addresses found in message header";
            s->status = EX_DATAERR;
        }
    }
    if (s->why == NULL && maildrop_writer_finish(&s->w, &why) < 0) {
        s->why = why;
        s->status = strcmp(why, "write error") == 0 ? EX_TEMPFAIL : EX_DATAERR;
    }
    /* our own failure: postdrop removes its file. A write error means
       postdrop is gone already, and its exit status says why. */
    bool write_error = s->why != NULL && strcmp(s->why, "write error") == 0;
    if (s->why != NULL && !write_error)
        (void)kill(s->pid, SIGTERM);
    close(s->fd);
    maildrop_writer_free(&s->w);
    buf_free(&s->hdr);
    while (waitpid(s->pid, &st, 0) < 0)
        if (errno != EINTR)
            sm_die(EX_TEMPFAIL, "waitpid: %s", strerror(errno));
    if (write_error && WIFEXITED(st) && WEXITSTATUS(st) != 0)
        return WEXITSTATUS(st);         /* postdrop said why */
    if (s->why != NULL) {
        *why_r = s->why;
        return s->status;
    }
    if (WIFEXITED(st))
        return WEXITSTATUS(st);
    *why_r = "postdrop was killed";
    return EX_TEMPFAIL;
}

/* --- reading standard input ---------------------------------------------- */

/* sm_line - the next line of stdin into buf (at most size bytes, NUL
   bytes kept): *n_r bytes without the LF and a CR before it, *eol_r
   whether a LF ended it (else the line goes on in the next call, or the
   input ended). false at the end of the input. */
static bool sm_line(char *buf, size_t size, size_t *n_r, bool *eol_r)
{
    size_t n = 0;
    int c = 0;

    *eol_r = false;
    while (n < size && (c = getc_unlocked(stdin)) != EOF) {
        if (c == '\n') {
            *eol_r = true;
            break;
        }
        buf[n++] = (char)c;
    }
    if (n == 0 && c == EOF)
        return false;
    if (*eol_r && n > 0 && buf[n - 1] == '\r')
        n--;
    *n_r = n;
    return true;
}

/* --- -bm: the message on stdin ------------------------------------------- */

static int sm_deliver(const char *sender)
{
    struct submit s;
    static char line[SM_LINE_MAX];
    bool bol = true, first = true;
    const char *why;
    int rc;

    if (opt.nrcpts == 0 && !opt.extract)
        sm_die(EX_USAGE, "no recipients specified");
    if (submit_start(&s, sender, opt.rcpts, opt.nrcpts) < 0)
        goto done;
    size_t n;
    bool eol;

    while (sm_line(line, sizeof(line), &n, &eol)) {
        if (bol && first && n >= 5 && memcmp(line, "From ", 5) == 0) {
            first = false;
            bol = eol;
            continue;               /* an mbox separator, not a header */
        }
        first = false;
        if (bol && eol && !opt.dot_ok && n == 1 && line[0] == '.')
            break;
        if (submit_content(&s, line, n) < 0)
            break;
        if (eol && submit_content(&s, "\n", 1) < 0)
            break;
        bol = eol;
    }
    if (ferror(stdin) && s.why == NULL) {
        s.why = "read error on standard input";
        s.status = EX_TEMPFAIL;
    }
done:
    rc = submit_finish(&s, opt.nrcpts, &why);
    if (why != NULL)
        fprintf(stderr, "sendmail: fatal: %s\n", why);
    return rc;
}

/* --- -bs: SMTP on stdin/stdout --------------------------------------------- */

static void bs_reply(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void bs_reply(const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fputs("\r\n", stdout);
    fflush(stdout);
}

static bool bs_cmd(const char *line, const char *cmd)
{
    size_t n = strlen(cmd);
    return strncasecmp(line, cmd, n) == 0
           && (line[n] == '\0' || line[n] == ' ' || line[n] == ':');
}

static int sm_smtp(void)
{
    static char line[SM_LINE_MAX];
    char *sender = NULL;
    char **rcpts = NULL;
    size_t nrcpts = 0;
    bool have_mail = false;
    size_t n;
    bool eol;

    bs_reply("220 %s ESMTP %s", var_myhostname, var_mail_name);
    while (sm_line(line, sizeof(line) - 1, &n, &eol)) {
        line[n] = '\0';
        if (eol && memchr(line, '\0', n) != NULL) {
            bs_reply("500 5.5.2 Error: NUL in command");
            continue;
        }
        if (!eol && n >= sizeof(line) - 1) {
            /* an over-long command: swallow the rest of it */
            while (!eol && sm_line(line, sizeof(line) - 1, &n, &eol))
                ;
            bs_reply("500 5.5.2 Error: line too long");
            continue;
        }
        if (bs_cmd(line, "EHLO")) {
            printf("250-%s\r\n250-PIPELINING\r\n250-8BITMIME\r\n", var_myhostname);
            bs_reply("250 ENHANCEDSTATUSCODES");
        } else if (bs_cmd(line, "HELO")) {
            bs_reply("250 %s", var_myhostname);
        } else if (bs_cmd(line, "MAIL")) {
            buf_t a = BUF_INIT;
            const char *rest, *err;
            if (have_mail) {
                bs_reply("503 5.5.1 Error: nested MAIL command");
            } else if (strncasecmp(line, "MAIL FROM:", 10) != 0
                       || addr_parse_path(line + 10, true, true, &a, &rest,
                                          &err) < 0) {
                bs_reply("501 5.5.4 Syntax: MAIL FROM:<address>");
            } else {
                free(sender);
                sender = buf_strdup(&a);
                have_mail = true;
                bs_reply("250 2.1.0 Ok");
            }
            buf_free(&a);
        } else if (bs_cmd(line, "RCPT")) {
            buf_t a = BUF_INIT;
            const char *rest, *err;
            if (!have_mail) {
                bs_reply("503 5.5.1 Error: need MAIL command");
            } else if (strncasecmp(line, "RCPT TO:", 8) != 0
                       || addr_parse_path(line + 8, false, true, &a, &rest,
                                          &err) < 0) {
                bs_reply("501 5.5.4 Syntax: RCPT TO:<address>");
            } else if (nrcpts >= MAILDROP_RCPT_MAX) {
                bs_reply("452 4.5.3 Error: too many recipients");
            } else {
                rcpts = xrealloc(rcpts, (nrcpts + 1) * sizeof(*rcpts));
                rcpts[nrcpts++] = buf_strdup(&a);
                bs_reply("250 2.1.5 Ok");
            }
            buf_free(&a);
        } else if (bs_cmd(line, "DATA")) {
            struct submit s;
            const char *why;
            bool bol = true, ended = false;
            int rc;

            if (!have_mail) {
                bs_reply("503 5.5.1 Error: need MAIL command");
                continue;
            }
            if (nrcpts == 0) {
                bs_reply("503 5.5.1 Error: need RCPT command");
                continue;
            }
            bs_reply("354 End data with <CR><LF>.<CR><LF>");
            bool extract = opt.extract;
            opt.extract = false;
            (void)submit_start(&s, sender, rcpts, nrcpts);
            while (sm_line(line, sizeof(line) - 1, &n, &eol)) {
                const char *p = line;
                if (bol && eol && n == 1 && line[0] == '.') {
                    ended = true;
                    break;
                }
                if (bol && n > 0 && line[0] == '.') {
                    p++;
                    n--;
                }
                (void)submit_content(&s, p, n);
                if (eol)
                    (void)submit_content(&s, "\n", 1);
                bol = eol;
            }
            if (!ended && s.why == NULL) {
                s.why = "unexpected end of input";
                s.status = EX_TEMPFAIL;
            }
            rc = submit_finish(&s, nrcpts, &why);
            opt.extract = extract;
            if (!ended)
                break;
            if (rc == 0)
                bs_reply("250 2.0.0 Ok: queued");
            else if (why != NULL && strcmp(why, "message too large") == 0)
                bs_reply("552 5.3.4 Error: message file too big");
            else if (rc == EX_DATAERR)
                bs_reply("554 5.6.0 Error: %s", why ? why : "malformed message");
            else if (rc == EX_NOPERM)   /* postdrop: local_login_sender_maps */
                bs_reply("553 5.7.1 Error: sender address not allowed for "
                         "this user");
            else
                bs_reply("451 4.3.0 Error: queue file write error");
            goto reset;
        } else if (bs_cmd(line, "RSET")) {
            bs_reply("250 2.0.0 Ok");
            goto reset;
        } else if (bs_cmd(line, "NOOP")) {
            bs_reply("250 2.0.0 Ok");
        } else if (bs_cmd(line, "QUIT")) {
            bs_reply("221 2.0.0 Bye");
            break;
        } else {
            bs_reply("502 5.5.2 Error: command not recognized");
        }
        continue;
reset:
        for (size_t i = 0; i < nrcpts; i++)
            free(rcpts[i]);
        free(rcpts);
        rcpts = NULL;
        nrcpts = 0;
        free(sender);
        sender = NULL;
        have_mail = false;
    }
    for (size_t i = 0; i < nrcpts; i++)
        free(rcpts[i]);
    free(rcpts);
    free(sender);
    return 0;
}

/* --- options -------------------------------------------------------------- */

static void usage(void)
{
    fprintf(stderr, "usage: sendmail [-t] [-i] [-f sender] [-F name] "
            "[-N dsn] [-R ret] [-V envid] [-C dir] [-bm|-bs|-bp|-bi|-q] "
            "[recipient ...]\n");
    exit(EX_USAGE);
}

enum sm_mode { MODE_DELIVER, MODE_SMTP, MODE_LIST, MODE_ALIASES, MODE_FLUSH };

/* sm_optarg - the option's argument: the rest of this word or the next */
static const char *sm_optarg(char **argv, int *i, const char *rest)
{
    if (*rest)
        return rest;
    if (argv[*i + 1] == NULL)
        usage();
    return argv[++*i];
}

static char *sm_upper(const char *s)
{
    char *u = xstrdup(s);
    for (char *p = u; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return u;
}

int main(int argc, char **argv)
{
    const char *prog = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    enum sm_mode mode = MODE_DELIVER;
    const char *site = NULL;
    buf_t err = BUF_INIT;
    char *sender;
    int i;

    (void)argc;
    if (strcmp(prog, "mailq") == 0)
        mode = MODE_LIST;
    else if (strcmp(prog, "newaliases") == 0)
        mode = MODE_ALIASES;
    opt.rcpts = xcalloc((size_t)argc + 1, sizeof(*opt.rcpts));
    for (i = 1; argv[i] != NULL; i++) {
        const char *a = argv[i];

        if (a[0] != '-' || a[1] == '\0')
            break;
        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        const char *rest = a + 2;
        switch (a[1]) {
        case 't': opt.extract = true; break;
        case 'i': opt.dot_ok = true; break;
        case 'v': opt.verbose = true; break;
        case 'f':
        case 'r': opt.sender = sm_optarg(argv, &i, rest); break;
        case 'F': opt.fullname = sm_optarg(argv, &i, rest); break;
        case 'C': opt.cdir = sm_optarg(argv, &i, rest); break;
        case 'N': {
            const char *v = sm_optarg(argv, &i, rest);
            if (queue_notify_parse(v, strlen(v), &opt.notify) < 0)
                sm_die(EX_USAGE, "-N %s: not NEVER or a list of SUCCESS, "
                       "FAILURE, DELAY", v);
            break;
        }
        case 'R': {
            const char *v = sm_optarg(argv, &i, rest);
            if (strcasecmp(v, "FULL") != 0 && strcasecmp(v, "HDRS") != 0)
                sm_die(EX_USAGE, "-R %s: not full or hdrs", v);
            free((char *)opt.ret);
            opt.ret = sm_upper(v);
            break;
        }
        case 'V': {
            opt.envid = sm_optarg(argv, &i, rest);
            break;
        }
        case 'B': {
            const char *v = sm_optarg(argv, &i, rest);
            if (strcasecmp(v, "7BIT") != 0 && strcasecmp(v, "8BITMIME") != 0)
                sm_die(EX_USAGE, "-B %s: not 7BIT or 8BITMIME", v);
            free((char *)opt.body);
            opt.body = sm_upper(v);
            break;
        }
        case 'o':
            if (rest[0] == 'i')
                opt.dot_ok = true;
            else if (rest[0] == '\0' && argv[i + 1] != NULL)
                i++;            /* "-o X": an option of its own */
            break;
        case 'b':
            switch (rest[0]) {
            case 's': mode = MODE_SMTP; break;
            case 'p': mode = MODE_LIST; break;
            case 'i': mode = MODE_ALIASES; break;
            case 'm': mode = MODE_DELIVER; break;
            case 'd':
            case 'D':
                sm_die(EX_USAGE, "-b%c: use the tern daemons (ternctl start)",
                       rest[0]);
            default:
                break;          /* -bv, -bt, ...: ignored */
            }
            break;
        case 'q':
            mode = MODE_FLUSH;
            if (rest[0] == 'R' || rest[0] == 'S')
                site = sm_optarg(argv, &i, rest + 1);
            break;
        case 'h':
        case 'L':
        case 'O':
        case 'X':
            (void)sm_optarg(argv, &i, rest);    /* ignored, with argument */
            break;
        default:
            break;              /* -n, -m, -e?, -U, -G, ...: ignored */
        }
    }
    for (; argv[i] != NULL; i++)
        opt.rcpts[opt.nrcpts++] = sm_addr(argv[i]);

    log_init("tern", "sendmail");
    log_set_stderr(true);
    if (config_load(config_directory_default(opt.cdir), &err) < 0) {
        const char *m = buf_str(&err), *last = strrchr(m, '\n');
        sm_die(EX_TEMPFAIL, "%s", last ? last + 1 : m);
    }
    buf_free(&err);
    if (opt.cdir == NULL && getenv("MAIL_CONFIG") && *getenv("MAIL_CONFIG"))
        opt.cdir = getenv("MAIL_CONFIG");
    signal(SIGPIPE, SIG_IGN);

    switch (mode) {
    case MODE_LIST:
        sm_exec(var_command_directory, "ternqueue", "-p", NULL);
        break;
    case MODE_FLUSH:
        sm_exec(var_command_directory, "ternqueue", site ? "-s" : "-f", site);
        break;
    case MODE_ALIASES:
        sm_exec(var_daemon_directory, "newaliases", NULL, NULL);
        break;
    default:
        break;
    }
    if (opt.sender != NULL) {
        sender = sm_addr(opt.sender);
    } else {
        struct passwd *pw = getpwuid(getuid());
        if (pw == NULL)
            sm_die(EX_TEMPFAIL, "no login name for uid %ld", (long)getuid());
        sender = xstrdup(pw->pw_name);
        if (opt.fullname == NULL && pw->pw_gecos && pw->pw_gecos[0]) {
            char *g = xstrdup(pw->pw_gecos), *c = strchr(g, ',');
            if (c)
                *c = '\0';
            opt.fullname = opt.owned = g;
        }
    }
    int rc = mode == MODE_SMTP ? sm_smtp() : sm_deliver(sender);

    free(sender);
    for (size_t k = 0; k < opt.nrcpts; k++)
        free(opt.rcpts[k]);
    free(opt.rcpts);
    free(opt.owned);
    free((char *)opt.ret);
    free((char *)opt.body);
    config_free();
    return rc;
}
