/*
 * mastercf - master.conf parser (Postfix master.cf columns), see mastercf.h.
 * Input is split into logical entries (continuation lines joined), each
 * entry into whitespace-separated fields; every error names path:line.
 */
#include "mastercf.h"

#include <ctype.h>
#include <stdarg.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/logline.h"
#include "util/util.h"

#define MASTERCF_MAX_FILE (1L * 1024 * 1024)
#define MASTERCF_COLUMNS  8
#define MASTERCF_MAX_WAKEUP (7L * 86400)
#define MASTERCF_MAX_PROC 1000000L

struct mc_parse {
    const char *name;
    struct master_conf *mc;
    buf_t *err;
    int line;
};

static int mc_error(struct mc_parse *ps, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int mc_error(struct mc_parse *ps, const char *fmt, ...)
{
    if (ps->err) {
        va_list ap;
        buf_printf(ps->err, "%s:%d: ", ps->name, ps->line);
        va_start(ap, fmt);
        buf_vprintf(ps->err, fmt, ap);
        va_end(ap);
    }
    return -1;
}

static void mc_entry_free(struct master_entry *e)
{
    free(e->service);
    free(e->command);
    strv_free(e->args, e->nargs);
    memset(e, 0, sizeof(*e));
}

void mastercf_free(struct master_conf *mc)
{
    if (mc == NULL)
        return;
    for (size_t i = 0; i < mc->count; i++)
        mc_entry_free(&mc->entries[i]);
    free(mc->entries);
    mc->entries = NULL;
    mc->count = 0;
}

/* mc_valid_port - decimal 1..65535 or a service name from /etc/services */
static bool mc_valid_port(const char *p)
{
    long n;
    if (*p == '\0')
        return false;
    if (isdigit((unsigned char)*p))
        return parse_long(p, 1, 65535, &n) == 0;
    if (!isalpha((unsigned char)*p))
        return false;
    for (const char *q = p; *q; q++)
        if (!isalnum((unsigned char)*q) && *q != '-' && *q != '_')
            return false;
    return true;
}

int mastercf_inet_split(const char *service, char **host_r, char **port_r)
{
    const char *host = NULL, *port;
    size_t hlen = 0;
    *host_r = *port_r = NULL;
    if (service == NULL || *service == '\0')
        return -1;
    if (*service == '[') {
        const char *close = strchr(service, ']');
        if (close == NULL || close == service + 1 || close[1] != ':')
            return -1;
        host = service + 1;
        hlen = (size_t)(close - host);
        port = close + 2;
        if (memchr(host, '[', hlen))
            return -1;
    } else {
        const char *colon = strrchr(service, ':');
        if (colon) {
            host = service;
            hlen = (size_t)(colon - service);
            port = colon + 1;
            /* IPv6 addresses need brackets; "*" means all interfaces */
            if (hlen == 0 || memchr(host, ':', hlen) || memchr(host, ']', hlen))
                return -1;
            if (hlen == 1 && *host == '*')
                host = NULL;
        } else {
            port = service;
        }
    }
    if (!mc_valid_port(port))
        return -1;
    for (size_t i = 0; host && i < hlen; i++)
        if (isspace((unsigned char)host[i]) || host[i] == '/')
            return -1;
    *host_r = host ? xstrndup(host, hlen) : NULL;
    *port_r = xstrdup(port);
    return 0;
}

/* mc_flag - y/n/- column */
static int mc_flag(struct mc_parse *ps, const char *col, const char *v,
                   bool dflt, bool *out)
{
    if (strcmp(v, "-") == 0)
        *out = dflt;
    else if (strcmp(v, "y") == 0)
        *out = true;
    else if (strcmp(v, "n") == 0)
        *out = false;
    else
        return mc_error(ps, "bad %s field \"%.100s\" (expected y, n or -)",
                        col, v);
    return 0;
}

static int mc_wakeup(struct mc_parse *ps, const char *v, long *out)
{
    if (strcmp(v, "-") == 0) {
        *out = 0;
        return 0;
    }
    char *num = xstrdup(v);
    size_t n = strlen(num);
    if (n > 1 && num[n - 1] == '?')
        num[n - 1] = '\0';
    int rc = parse_long(num, 0, MASTERCF_MAX_WAKEUP, out);
    free(num);
    if (rc < 0)
        return mc_error(ps, "bad wakeup field \"%.100s\" (expected seconds "
                        "0..%ld, optionally followed by '?', or -)", v,
                        MASTERCF_MAX_WAKEUP);
    return 0;
}

static int mc_maxproc(struct mc_parse *ps, const char *v, long *out)
{
    if (strcmp(v, "-") == 0) {
        *out = -1;
        return 0;
    }
    if (parse_long(v, 0, MASTERCF_MAX_PROC, out) < 0)
        return mc_error(ps, "bad maxproc field \"%.100s\" (expected 0..%ld "
                        "or -)", v, MASTERCF_MAX_PROC);
    return 0;
}

/* mastercf_login_name - see mastercf.h */
const char *mastercf_login_name(const char *service)
{
    const char *name;

    if (strncmp(service, "login/", 6) != 0)
        return NULL;
    name = service + 6;
    if (*name == '\0' || strchr(name, '/') || strcmp(name, ".") == 0
        || strcmp(name, "..") == 0)
        return NULL;
    return name;
}

static int mc_service(struct mc_parse *ps, const char *svc, const char *type,
                      enum master_type *t)
{
    if (strcmp(type, "inet") == 0) {
        char *h, *p;
        if (mastercf_inet_split(svc, &h, &p) < 0)
            return mc_error(ps, "bad inet service \"%.100s\" (expected port, "
                            "host:port or [address]:port)", svc);
        free(h);
        free(p);
        *t = MASTER_INET;
    } else if (strcmp(type, "unix") == 0) {
        if ((strchr(svc, '/') && mastercf_login_name(svc) == NULL)
            || strcmp(svc, ".") == 0 || strcmp(svc, "..") == 0)
            return mc_error(ps, "bad unix service name \"%.100s\" (a plain "
                            "name, no '/', or login/NAME)", svc);
        *t = MASTER_UNIX;
    } else {
        return mc_error(ps, "unsupported service type \"%.100s\" (expected "
                        "inet or unix)", type);
    }
    return 0;
}

/* mc_args - validate "-o name=value" pairs among the arguments */
static int mc_args(struct mc_parse *ps, char **f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(f[i], "-o") != 0)
            continue;
        if (i + 1 >= n)
            return mc_error(ps, "-o without name=value");
        const char *eq = strchr(f[i + 1], '=');
        if (eq == NULL || eq == f[i + 1])
            return mc_error(ps, "bad -o argument \"%.100s\" (expected "
                            "name=value)", f[i + 1]);
        i++;
    }
    return 0;
}

static int mc_duplicate(struct mc_parse *ps, const struct master_entry *e)
{
    for (size_t i = 0; i < ps->mc->count; i++) {
        const struct master_entry *o = &ps->mc->entries[i];
        if (o->type == e->type && strcmp(o->service, e->service) == 0)
            return mc_error(ps, "duplicate service %s/%s (first at line %d)",
                            e->service, e->type == MASTER_INET ? "inet" : "unix",
                            o->line);
    }
    return 0;
}

static void mc_push(char ***f, size_t *n, size_t *cap, const char *s,
                    size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        *f = xrealloc(*f, *cap * sizeof(**f));
    }
    (*f)[(*n)++] = xstrndup(s, len);
}

/* mc_split - whitespace-separated fields (commas are data here); a field
   that starts with '{' runs to the matching '}' and may hold whitespace:
   the braces and the whitespace just inside them are dropped (Postfix
   3.0's "{ -o name = value }" style). -1 with a message in *why for an
   unbalanced brace or text glued to a closing one. */
static int mc_split(const char *text, char ***fields_r, size_t *n_r,
                    const char **why)
{
    char **f = NULL;
    size_t n = 0, cap = 0;

    for (const char *p = text; *p;) {
        while (*p && isspace((unsigned char)*p))
            p++;
        const char *s = p;
        if (*p == '{') {
            int depth = 0;
            for (; *p; p++) {
                if (*p == '{')
                    depth++;
                else if (*p == '}' && --depth == 0)
                    break;
            }
            if (*p != '}') {
                *why = "missing '}'";
                goto fail;
            }
            if (p[1] && !isspace((unsigned char)p[1])) {
                *why = "text after '}'";
                goto fail;
            }
            const char *e = p++;
            s++;
            while (s < e && isspace((unsigned char)*s))
                s++;
            while (e > s && isspace((unsigned char)e[-1]))
                e--;
            mc_push(&f, &n, &cap, s, (size_t)(e - s));
            continue;
        }
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (p > s)
            mc_push(&f, &n, &cap, s, (size_t)(p - s));
    }
    *fields_r = f;
    *n_r = n;
    return 0;
fail:
    strv_free(f, n);
    *fields_r = NULL;
    *n_r = 0;
    return -1;
}

/* mc_entry - one logical line split into fields */
static int mc_entry(struct mc_parse *ps, const char *text)
{
    char **f;
    size_t n;
    const char *why = NULL;
    struct master_entry e = { 0 };
    int rc = -1;
    if (mc_split(text, &f, &n, &why) < 0)
        return mc_error(ps, "%s", why);
    if (n < MASTERCF_COLUMNS) {
        mc_error(ps, "too few columns (%zu; need service type private unpriv "
                 "chroot wakeup maxproc command)", n);
        goto out;
    }
    if (mc_service(ps, f[0], f[1], &e.type) < 0
        || mc_flag(ps, "private", f[2], true, &e.private_) < 0
        || mc_flag(ps, "unpriv", f[3], true, &e.unpriv) < 0
        || mc_flag(ps, "chroot", f[4], false, &e.chroot) < 0
        || mc_wakeup(ps, f[5], &e.wakeup) < 0
        || mc_maxproc(ps, f[6], &e.maxproc) < 0)
        goto out;
    if (strchr(f[7], '/')) {
        mc_error(ps, "command \"%.100s\" must be a program name in "
                 "daemon_directory, not a path", f[7]);
        goto out;
    }
    if (mc_args(ps, f + 8, n - 8) < 0)
        goto out;
    e.service = f[0];
    e.line = ps->line;
    if (mc_duplicate(ps, &e) < 0) {
        e.service = NULL;
        goto out;
    }
    e.service = xstrdup(f[0]);
    e.command = xstrdup(f[7]);
    e.nargs = n - 8;
    e.args = xcalloc(e.nargs + 1, sizeof(char *));
    for (size_t i = 0; i < e.nargs; i++)
        e.args[i] = xstrdup(f[8 + i]);
    size_t n_now = ps->mc->count;   /* capacity: next power of two >= 8 */
    if (n_now >= 8 ? (n_now & (n_now - 1)) == 0 : n_now == 0)
        ps->mc->entries = xrealloc(ps->mc->entries,
                                   (n_now < 8 ? 8 : n_now * 2) * sizeof(e));
    ps->mc->entries[ps->mc->count++] = e;
    rc = 0;
out:
    strv_free(f, n);
    return rc;
}

/* mc_parse - split text[0..len) into logical entries */
static int mc_parse(struct mc_parse *ps, const char *text, size_t len)
{
    logline_t ll;
    const char *error;
    char *entry;
    long lineno;
    int rc;

    logline_init(&ll, text, len, 0, 0);
    while ((rc = logline_next(&ll, &entry, &lineno, &error)) > 0) {
        ps->line = (int)lineno;
        if (mc_entry(ps, entry) < 0)
            break;
    }
    if (rc < 0) {
        ps->line = (int)lineno;
        mc_error(ps, "%s", error);
    }
    logline_free(&ll);
    return rc != 0 ? -1 : 0;
}

static int mc_parse_mem(const char *text, size_t len, const char *name,
                        struct master_conf *mc, buf_t *err)
{
    struct mc_parse ps = { name, mc, err, 0 };
    mc->entries = NULL;
    mc->count = 0;
    if (mc_parse(&ps, text, len) < 0) {
        mastercf_free(mc);
        return -1;
    }
    return 0;
}

int mastercf_parse_string(const char *text, const char *name,
                          struct master_conf *mc, buf_t *err)
{
    return mc_parse_mem(text, strlen(text), name ? name : "master.conf",
                        mc, err);
}

int mastercf_parse_file(const char *path, struct master_conf *mc, buf_t *err)
{
    mc->entries = NULL;
    mc->count = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (err)
            buf_printf(err, "open %s: %s", path, strerror(errno));
        return -1;
    }
    buf_t text;
    buf_init(&text, MASTERCF_MAX_FILE);
    char chunk[16384];
    ssize_t r;
    int rc = 0;
    while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || buf_append(&text, chunk, (size_t)r) < 0) {
            if (err)
                buf_printf(err, "%s: %s", path, r < 0 ? strerror(errno)
                           : "file too large");
            rc = -1;
            break;
        }
    }
    close(fd);
    if (rc == 0)
        rc = mc_parse_mem(buf_str(&text), text.len, path, mc, err);
    buf_free(&text);
    return rc;
}
