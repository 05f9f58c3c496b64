/*
 * master_logic - pure decisions of the supervisor (see master_logic.h).
 * No sockets are opened and no processes started here.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "master_logic.h"
#include "mail/queue.h"
#include "util/util.h"

/* master_backoff_next - 1, 2, 4 ... capped at max (at least 1) */
long master_backoff_next(long current, long max)
{
    if (max < 1)
        max = 1;
    if (current < 1)
        return 1;
    if (current >= max / 2 + 1)
        return max;
    return current * 2 > max ? max : current * 2;
}

/* master_rate_ok - at most one event per interval */
bool master_rate_ok(uint64_t now_msec, uint64_t *last_msec,
                    uint64_t interval_msec)
{
    if (*last_msec != 0 && now_msec - *last_msec < interval_msec)
        return false;
    *last_msec = now_msec ? now_msec : 1;
    return true;
}

/* master_demand_decide - watch the listeners, fork, or reject. Below
   the spread target a client that arrives forks another child even when
   one has room (it may be the old child that takes this client: the new
   one takes later ones); not while a newborn has yet to take its first
   client, so one arrival forks one child, not a burst. */
enum master_demand master_demand_decide(const struct master_demand_state *s)
{
    if (s->throttled)
        return MASTER_DEMAND_IDLE;
    if (s->avail > 0)
        return s->count < s->spread && s->fresh == 0
               && (s->maxproc <= 0 || s->count < (size_t)s->maxproc)
               ? MASTER_DEMAND_WATCH : MASTER_DEMAND_IDLE;
    if (s->maxproc <= 0 || s->count < (size_t)s->maxproc)
        return MASTER_DEMAND_WATCH;
    return s->reject_when_full ? MASTER_DEMAND_REJECT : MASTER_DEMAND_FULL;
}

/* master_spread_target - see master_logic.h */
size_t master_spread_target(long process_min, long ncpu, long maxproc,
                            bool event_server)
{
    long n = process_min > 0 ? process_min : ncpu;

    if (!event_server || n < 1)
        return 1;
    if (maxproc > 0 && n > maxproc)
        n = maxproc;
    return (size_t)n;
}

/* master_expand - $name, ${name}, $(name) and $$ in raw, into out */
static void master_expand(const char *raw, master_lookup_fn lookup,
                          buf_t *out)
{
    for (const char *p = raw; *p;) {
        const char *name, *end;
        char close = 0;

        if (*p != '$') {
            (void)buf_putc(out, *p++);
            continue;
        }
        p++;
        if (*p == '$') {
            (void)buf_putc(out, *p++);
            continue;
        }
        if (*p == '{' || *p == '(')
            close = *p++ == '{' ? '}' : ')';
        name = p;
        while (isalnum((unsigned char)*p) || *p == '_')
            p++;
        end = p;
        if (close && *p == close)
            p++;
        else if (close || end == name) {    /* not a reference: literal */
            (void)buf_append(out, name - 1 - (close != 0),
                             (size_t)(p - name) + 1 + (close != 0));
            continue;
        }
        if (end > name) {
            char *n = xstrndup(name, (size_t)(end - name));
            const char *v = lookup(n);

            if (v)
                (void)buf_puts(out, v);
            free(n);
        }
    }
}

/* master_own_value - the value of "-o" argument arg when it sets
   master's own parameter (COMMAND_overload_reply), else NULL; accepts
   "name = value" from a "{ ... }" argument */
static const char *master_own_value(const struct master_entry *e,
                                    const char *arg)
{
    static const char suffix[] = "_overload_reply";
    size_t clen = strlen(e->command);
    const char *p = arg + clen;

    if (strncmp(arg, e->command, clen) != 0
        || strncmp(p, suffix, sizeof(suffix) - 1) != 0)
        return NULL;
    for (p += sizeof(suffix) - 1; *p == ' ' || *p == '\t'; p++)
        ;
    return *p == '=' ? p + 1 : NULL;
}

/* master_overload_reply - see master_logic.h */
char *master_overload_reply(const struct master_entry *e,
                            master_lookup_fn lookup)
{
    buf_t name = BUF_INIT, out = BUF_INIT;
    const char *raw = NULL, *v;
    char *reply = NULL;

    (void)buf_printf(&name, "%s_overload_reply", e->command);
    for (size_t i = 0; i + 1 < e->nargs; i++) {
        if (strcmp(e->args[i], "-o") != 0)
            continue;
        if ((v = master_own_value(e, e->args[++i])) != NULL)
            raw = v;            /* the last one wins */
    }
    if (raw) {
        char *copy = xstrdup(raw);

        master_expand(str_trim(copy), lookup, &out);
        free(copy);
        reply = buf_strdup(&out);
    } else if ((v = lookup(buf_str(&name))) != NULL) {
        reply = xstrdup(v);
    }
    buf_free(&out);
    buf_free(&name);
    return reply;
}

/* master_argv_build - "path -n SVC -t TYPE -s N [-u] [-c] [-z] [-v]... args" */
char **master_argv_build(const struct master_entry *e, const char *path,
                         size_t nlisten, const struct master_argv_opts *o,
                         size_t *argc_r)
{
    size_t max = 12 + (size_t)(o->verbose > 0 ? o->verbose : 0) + e->nargs;
    char **v = xcalloc(max + 1, sizeof(*v));
    size_t n = 0;
    char num[32];

    v[n++] = xstrdup(path);
    v[n++] = xstrdup("-n");
    v[n++] = xstrdup(e->service);
    v[n++] = xstrdup("-t");
    v[n++] = xstrdup(e->type == MASTER_INET ? "inet" : "unix");
    v[n++] = xstrdup("-s");
    (void)snprintf(num, sizeof(num), "%zu", nlisten);
    v[n++] = xstrdup(num);
    if (e->unpriv)
        v[n++] = xstrdup("-u");
    if (e->chroot)
        v[n++] = xstrdup("-c");
    if (o->foreground)
        v[n++] = xstrdup("-z");
    for (int i = 0; i < o->verbose; i++)
        v[n++] = xstrdup("-v");
    for (size_t i = 0; i < e->nargs; i++) {
        /* master's own parameter is not the child's business (an
           unknown name would only make it warn) */
        if (strcmp(e->args[i], "-o") == 0 && i + 1 < e->nargs
            && master_own_value(e, e->args[i + 1]) != NULL) {
            i++;
            continue;
        }
        v[n++] = xstrdup(e->args[i]);
    }
    v[n] = NULL;
    *argc_r = n;
    return v;
}

/* master_conf_check_chroot - refuse chroot=y without root, clearly */
int master_conf_check_chroot(const struct master_conf *mc, bool root,
                             buf_t *err)
{
    if (root)
        return 0;
    for (size_t i = 0; i < mc->count; i++)
        if (mc->entries[i].chroot) {
            (void)buf_printf(err, "master.conf:%d: service %s: chroot=y "
                             "needs master to run as root (set the chroot "
                             "column to n)", mc->entries[i].line,
                             mc->entries[i].service);
            return -1;
        }
    return 0;
}

/* master_exit_describe - Postfix wording of a child's end */
bool master_exit_describe(int wstatus, buf_t *out)
{
    buf_reset(out);
    if (WIFSIGNALED(wstatus)) {
        (void)buf_printf(out, "killed by signal %d", WTERMSIG(wstatus));
        return true;
    }
    if (WIFEXITED(wstatus) && WEXITSTATUS(wstatus) != 0) {
        (void)buf_printf(out, "exit status %d", WEXITSTATUS(wstatus));
        return true;
    }
    return false;
}

/* master_unix_path - private/NAME, public/NAME or login/NAME, checked */
int master_unix_path(const char *name, bool private_, buf_t *out, buf_t *err)
{
    struct sockaddr_un sun;
    const char *login = mastercf_login_name(name);
    const char *dir = login != NULL ? QUEUE_LOGIN_DIR
                      : private_ ? "private" : "public";

    if (login != NULL)
        name = login;
    size_t len = strlen(name);

    buf_reset(out);
    if (len == 0 || strchr(name, '/') || strcmp(name, ".") == 0
        || strcmp(name, "..") == 0) {
        (void)buf_printf(err, "bad unix service name \"%s\"", name);
        return -1;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];

        if (c <= ' ' || c >= 0x7f) {
            (void)buf_printf(err, "bad character in unix service name");
            return -1;
        }
    }
    (void)buf_printf(out, "%s/%s", dir, name);
    if (out->len >= sizeof(sun.sun_path)) {
        (void)buf_printf(err, "unix service name too long: \"%.40s...\"",
                         name);
        return -1;
    }
    return 0;
}

/* master_port_parse - numeric port or a name from /etc/services */
static int master_port_parse(const char *port, buf_t *err)
{
    long n;
    struct servent *se;

    if (parse_long(port, 1, 65535, &n) == 0)
        return (int)n;
    if (*port && strlen(port) < 64 && (se = getservbyname(port, "tcp")))
        return ntohs((uint16_t)se->s_port);
    (void)buf_printf(err, "bad port \"%.64s\"", port);
    return -1;
}

/* master_addr_add - one numeric address; 0 ok, -1 error */
static int master_addr_add(const char *host, int port, struct master_addr *out,
                           size_t max, size_t *n, buf_t *err)
{
    struct master_addr a;
    struct sockaddr_in *s4 = (struct sockaddr_in *)&a.ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a.ss;
    char tmp[INET6_ADDRSTRLEN + 2];
    size_t hl = strlen(host);

    memset(&a, 0, sizeof(a));
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') {
        if (hl - 2 >= sizeof(tmp))
            goto bad;
        memcpy(tmp, host + 1, hl - 2);
        tmp[hl - 2] = 0;
        host = tmp;
    }
    if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        a.len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        a.len = sizeof(*s6);
    } else {
        goto bad;
    }
    if (*n >= max) {
        (void)buf_printf(err, "too many listener addresses");
        return -1;
    }
    out[(*n)++] = a;
    return 0;
bad:
    (void)buf_printf(err, "bad listener address \"%.64s\" (numeric "
                     "addresses only)", host);
    return -1;
}

/* master_iface_add - one inet_interfaces token (all, loopback-only, addr) */
static int master_iface_add(const char *tok, int port, struct master_addr *out,
                            size_t max, size_t *n, buf_t *err)
{
    if (strcmp(tok, "all") == 0 || strcmp(tok, "*") == 0)
        return master_addr_add("0.0.0.0", port, out, max, n, err) < 0
               ? -1 : master_addr_add("::", port, out, max, n, err);
    if (strcmp(tok, "loopback-only") == 0)
        return master_addr_add("127.0.0.1", port, out, max, n, err) < 0
               ? -1 : master_addr_add("::1", port, out, max, n, err);
    return master_addr_add(tok, port, out, max, n, err);
}

/* master_inet_addrs - listener addresses of "host:port" / "port" */
int master_inet_addrs(const char *service, const char *inet_interfaces,
                      struct master_addr *out, size_t max, buf_t *err)
{
    char *host = NULL, *port = NULL, **toks = NULL;
    size_t n = 0, ntok = 0;
    int portnum, rc = -1;

    if (mastercf_inet_split(service, &host, &port) < 0) {
        (void)buf_printf(err, "bad inet service \"%.64s\"", service);
        return -1;
    }
    if ((portnum = master_port_parse(port, err)) < 0)
        goto out;
    if (host && *host && strcmp(host, "*") != 0) {
        rc = master_iface_add(host, portnum, out, max, &n, err);
        goto out;
    }
    ntok = str_split_list(inet_interfaces ? inet_interfaces : "all", &toks);
    if (ntok == 0) {
        (void)buf_printf(err, "inet_interfaces is empty");
        goto out;
    }
    rc = 0;
    for (size_t i = 0; i < ntok && rc == 0; i++)
        rc = master_iface_add(toks[i], portnum, out, max, &n, err);
out:
    strv_free(toks, ntok);
    free(host);
    free(port);
    return rc < 0 ? -1 : (int)n;
}

/* master_addrs_key - printable, comparable form of a listener set */
void master_addrs_key(const struct master_addr *a, size_t n, buf_t *out)
{
    char ip[INET6_ADDRSTRLEN];

    buf_reset(out);
    for (size_t i = 0; i < n; i++) {
        const struct sockaddr *sa = (const struct sockaddr *)&a[i].ss;

        if (sa->sa_family == AF_INET) {
            const struct sockaddr_in *s4 = (const void *)sa;

            if (!inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip)))
                str_copy(ip, "?", sizeof(ip));
            (void)buf_printf(out, "%s%s:%u", i ? " " : "", ip,
                             ntohs(s4->sin_port));
        } else {
            const struct sockaddr_in6 *s6 = (const void *)sa;

            if (!inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip)))
                str_copy(ip, "?", sizeof(ip));
            (void)buf_printf(out, "%s[%s]:%u", i ? " " : "", ip,
                             ntohs(s6->sin6_port));
        }
    }
}

static char *master_strdup_or_null(const char *s)
{
    return s ? xstrdup(s) : NULL;
}

/* master_entry_copy - deep copy */
void master_entry_copy(struct master_entry *dst, const struct master_entry *src)
{
    *dst = *src;
    dst->service = master_strdup_or_null(src->service);
    dst->command = master_strdup_or_null(src->command);
    dst->args = xcalloc(src->nargs + 1, sizeof(char *));
    for (size_t i = 0; i < src->nargs; i++)
        dst->args[i] = xstrdup(src->args[i]);
}

/* master_entry_free - free a copy made by master_entry_copy */
void master_entry_free(struct master_entry *e)
{
    free(e->service);
    free(e->command);
    if (e->args)
        strv_free(e->args, e->nargs);
    memset(e, 0, sizeof(*e));
}

static bool master_str_same(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* master_entry_same - identical columns and arguments */
bool master_entry_same(const struct master_entry *a,
                       const struct master_entry *b)
{
    if (!master_str_same(a->service, b->service) || a->type != b->type
        || a->private_ != b->private_ || a->unpriv != b->unpriv
        || a->chroot != b->chroot || a->wakeup != b->wakeup
        || a->maxproc != b->maxproc || !master_str_same(a->command, b->command)
        || a->nargs != b->nargs)
        return false;
    for (size_t i = 0; i < a->nargs; i++)
        if (!master_str_same(a->args[i], b->args[i]))
            return false;
    return true;
}
