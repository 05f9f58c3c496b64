/*
 * virtual_alias - virtual_alias_maps lookups and their bounded,
 * loop-safe recursive expansion (rules in virtual_alias.h).
 *
 * The expansion is an explicit depth-first walk over a tree of nodes
 * (each knows its parent, for the loop check), not C recursion, so a
 * 1000-deep chain costs heap, not stack. Every address reached is
 * remembered (lowercased) so that each one is looked up at most once.
 */
#include "virtual_alias.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addr.h"
#include "config.h"
#include "dict.h"
#include "mailuser.h"
#include "util/htable.h"
#include "util/log.h"
#include "util/util.h"


/* ---- parsing a table value ------------------------------------------ */

static bool va_sep(char ch)
{
    return ch == ',' || ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

/* virtual_alias_parse - "a, b c" into addresses */
int virtual_alias_parse(const char *value, char ***addrs_r, size_t *n_r,
                        const char **error_r)
{
    char **v = NULL;
    size_t n = 0;
    const char *p = value;

    *addrs_r = NULL;
    *n_r = 0;
    for (;;) {
        const char *start;
        bool quoted = false;
        size_t len;

        while (va_sep(*p))
            p++;
        if (*p == '\0')
            break;
        start = p;
        for (bool escaped = false; *p != '\0' && (quoted || !va_sep(*p));
             p++) {
            unsigned char ch = (unsigned char)*p;
            if (ch < 32 || ch == 127) {
                *error_r = "control character in address";
                goto bad;
            }
            if (escaped)
                escaped = false;        /* a quoted-pair's second half */
            else if (ch == '\\' && quoted)
                escaped = true;
            else if (ch == '"')
                quoted = !quoted;
        }
        if (quoted) {
            *error_r = "unterminated quoted string";
            goto bad;
        }
        len = (size_t)(p - start);
        if (len >= 2 && start[0] == '<' && start[len - 1] == '>') {
            start++;
            len -= 2;
        }
        if (len == 0 || (len == 1 && *start == '@'))
            continue;                   /* "<>" or a lone "@": nothing */
        if (len > VIRTUAL_ALIAS_ADDR_MAX) {
            *error_r = "address too long";
            goto bad;
        }
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = xstrndup(start, len);
    }
    if (n == 0) {
        *error_r = "no address in the value";
        return -1;
    }
    *addrs_r = v;
    *n_r = n;
    return 0;
bad:
    strv_free(v, n);
    return -1;
}

/* ---- one lookup ------------------------------------------------------ */

/* va_ext_at - where the extension of local starts (strlen: none) */
static size_t va_ext_at(const char *local, const char *delims)
{
    size_t len = strlen(local), at;

    if (len < 2 || delims == NULL || *delims == '\0' || local[0] == '"')
        return len;
    /* Postfix's owner-list / list-request names keep their '-' */
    if (strchr(delims, '-') != NULL
        && ((len > 6 && strncasecmp(local, "owner-", 6) == 0)
            || (len > 8 && strcasecmp(local + len - 8, "-request") == 0)))
        return len;
    at = 1 + strcspn(local + 1, delims);
    return at;
}

/* va_try - look key up unless it cannot be a key: 1, 0, -1 */
static int va_try(const struct virtual_alias_ops *ops, const char *key,
                  buf_t *value)
{
    if (*key == '\0' || strlen(key) > DICT_KEY_MAX)
        return 0;
    return ops->lookup(ops->ctx, key, value);
}

/* va_rewrite - one result address as it is queued: @otherdomain,
   @$myorigin for none, the extension carried over */
static char *va_rewrite(const char *r, const char *local,
                        const char *ext, const struct virtual_alias_conf *conf)
{
    buf_t b = BUF_INIT;
    char *rl, *rd;
    char *out;

    if (r[0] == '@') {
        (void)buf_printf(&b, "%s%s", local, r);
        out = buf_strdup(&b);           /* local has the extension */
        buf_free(&b);
        return out;
    }
    addr_split(r, &rl, &rd);
    (void)buf_printf(&b, "%s%s", rl, ext != NULL ? ext : "");
    if (*rd != '\0')
        (void)buf_printf(&b, "@%s", rd);
    else if (conf->myorigin != NULL && *conf->myorigin != '\0')
        (void)buf_printf(&b, "@%s", conf->myorigin);
    free(rl);
    out = buf_strdup(&b);
    buf_free(&b);
    return out;
}

/* virtual_alias_find_ops - one lookup in Postfix's order */
int virtual_alias_find_ops(const struct virtual_alias_ops *ops,
                           const struct virtual_alias_conf *conf,
                           const char *addr,
                           struct virtual_alias_result *out, buf_t *err)
{
    buf_t key = BUF_INIT, value = BUF_INIT;
    char *local, *domain;
    const char *ext = NULL, *why = NULL;
    size_t at;
    char **v = NULL;
    size_t n = 0;
    bool is_local;
    int rc;

    memset(out, 0, sizeof(*out));
    addr_split(addr, &local, &domain);
    at = va_ext_at(local, conf->delimiters);
    is_local = *domain == '\0'
               || (ops->local_domain != NULL
                   && ops->local_domain(ops->ctx, domain));
    rc = va_try(ops, addr, &value);
    if (rc == 0 && local[at] != '\0') {         /* user@domain */
        buf_reset(&key);
        (void)buf_append(&key, local, at);
        if (*domain != '\0')
            (void)buf_printf(&key, "@%s", domain);
        if ((rc = va_try(ops, buf_str(&key), &value)) > 0)
            ext = local + at;
    }
    if (rc == 0 && is_local && *domain != '\0') {
        rc = va_try(ops, local, &value);        /* user+ext */
        if (rc == 0 && local[at] != '\0') {     /* user */
            buf_reset(&key);
            (void)buf_append(&key, local, at);
            if ((rc = va_try(ops, buf_str(&key), &value)) > 0)
                ext = local + at;
        }
    }
    if (rc == 0 && *domain != '\0') {           /* @domain */
        buf_reset(&key);
        (void)buf_printf(&key, "@%s", domain);
        rc = va_try(ops, buf_str(&key), &value);
    }
    if (!conf->propagate)
        ext = NULL;
    if (rc < 0) {
        (void)buf_printf(err, "virtual_alias_maps map lookup problem for %s",
                         addr);
    } else if (rc > 0) {
        if (virtual_alias_parse(buf_str(&value), &v, &n, &why) < 0) {
            (void)buf_printf(err, "virtual_alias_maps: bad value for %s: %s",
                             addr, why);
            rc = -1;
        } else {
            out->addrs = xcalloc(n, sizeof(*out->addrs));
            for (size_t i = 0; i < n; i++)
                out->addrs[i] = va_rewrite(v[i], local, ext, conf);
            out->n = n;
            out->changed = !(n == 1 && strcasecmp(out->addrs[0], addr) == 0);
            strv_free(v, n);
        }
    }
    free(local);
    buf_free(&key);
    buf_free(&value);
    return rc;
}

/* ---- expansion ----------------------------------------------------------- */

struct va_node {
    char *addr;
    size_t parent;              /* index; SIZE_MAX for the root */
    long depth;                 /* lookups made on the way here */
};

struct va_walk {
    struct va_node *nodes;
    size_t nnodes;
    size_t *stack;              /* nodes still to look up, top last */
    size_t nstack;
    htable_t *seen;             /* lowercased addresses of all nodes */
    struct virtual_alias_result *out;
};

static void va_lower_key(const char *addr, buf_t *k)
{
    buf_reset(k);
    (void)buf_puts(k, addr);
    for (size_t i = 0; i < k->len; i++)
        if (k->data[i] >= 'A' && k->data[i] <= 'Z')
            k->data[i] = (char)(k->data[i] - 'A' + 'a');
}

static void va_output(struct va_walk *w, const char *addr)
{
    struct virtual_alias_result *o = w->out;

    o->addrs = xrealloc(o->addrs, (o->n + 1) * sizeof(*o->addrs));
    o->addrs[o->n++] = xstrdup(addr);
}

static size_t va_node_add(struct va_walk *w, const char *addr, size_t parent,
                          long depth)
{
    w->nodes = xrealloc(w->nodes, (w->nnodes + 1) * sizeof(*w->nodes));
    w->nodes[w->nnodes].addr = xstrdup(addr);
    w->nodes[w->nnodes].parent = parent;
    w->nodes[w->nnodes].depth = depth;
    return w->nnodes++;
}

/* va_is_ancestor - addr is node i or one above it */
static bool va_is_ancestor(const struct va_walk *w, size_t i, const char *addr)
{
    for (; i != SIZE_MAX; i = w->nodes[i].parent)
        if (strcasecmp(w->nodes[i].addr, addr) == 0)
            return true;
    return false;
}

/* virtual_alias_expand_ops - the whole tree of addr */
int virtual_alias_expand_ops(const struct virtual_alias_ops *ops,
                             const struct virtual_alias_conf *conf,
                             const char *addr,
                             struct virtual_alias_result *out, buf_t *err)
{
    struct va_walk w;
    buf_t k = BUF_INIT;
    size_t outstanding = 1;     /* outputs plus nodes still to look up */
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&w, 0, sizeof(w));
    w.out = out;
    w.seen = htable_create();
    w.stack = xmalloc(sizeof(*w.stack));
    w.stack[w.nstack++] = va_node_add(&w, addr, SIZE_MAX, 0);
    va_lower_key(addr, &k);
    (void)htable_add(w.seen, buf_str(&k), NULL);
    while (rc == 0 && w.nstack > 0) {
        size_t i = w.stack[--w.nstack];
        struct virtual_alias_result r;
        int found;

        if (w.nodes[i].depth >= conf->recursion_limit) {
            (void)buf_printf(err, "unreasonable virtual_alias_maps map "
                             "nesting for %s", addr);
            rc = -1;
            break;
        }
        found = virtual_alias_find_ops(ops, conf, w.nodes[i].addr, &r, err);
        if (found < 0) {
            rc = -1;
            break;
        }
        if (found == 0 || !r.changed) {
            va_output(&w, w.nodes[i].addr);
            virtual_alias_result_free(&r);
            continue;
        }
        outstanding += r.n - 1;
        if (outstanding > (size_t)conf->expansion_limit) {
            (void)buf_printf(err, "unreasonable virtual_alias_maps map "
                             "expansion size for %s", addr);
            virtual_alias_result_free(&r);
            rc = -1;
            break;
        }
        /* pushed in reverse: the first result is looked up first */
        w.stack = xrealloc(w.stack, (w.nstack + r.n) * sizeof(*w.stack));
        size_t base = w.nstack, pushed = 0;
        for (size_t j = 0; j < r.n; j++) {
            const char *a = r.addrs[j];

            va_lower_key(a, &k);
            if (htable_add(w.seen, buf_str(&k), NULL) < 0) {
                if (va_is_ancestor(&w, i, a)) {
                    /* maps to itself, or back to an ancestor: keep it */
                    if (strcasecmp(a, w.nodes[i].addr) != 0)
                        log_warning("virtual_alias_maps: loop for %s "
                                    "(%s -> %s): %s kept as it is", addr,
                                    w.nodes[i].addr, a, a);
                    va_output(&w, a);
                } else {
                    outstanding--;      /* reached before: expanded once */
                }
                continue;
            }
            w.stack[base + pushed++] = va_node_add(&w, a, i,
                                                   w.nodes[i].depth + 1);
        }
        for (size_t lo = base, hi = base + pushed; hi > lo + 1; lo++, hi--) {
            size_t t = w.stack[lo];
            w.stack[lo] = w.stack[hi - 1];
            w.stack[hi - 1] = t;
        }
        w.nstack = base + pushed;
        virtual_alias_result_free(&r);
    }
    /* outputs in table order would be nicer to read than the order
       found; they are the order found, which is depth first */
    if (rc == 0)
        out->changed = !(out->n == 1 && strcmp(out->addrs[0], addr) == 0);
    else
        virtual_alias_result_free(out);
    for (size_t i = 0; i < w.nnodes; i++)
        free(w.nodes[i].addr);
    free(w.nodes);
    free(w.stack);
    htable_free(w.seen);
    buf_free(&k);
    return rc;
}

void virtual_alias_result_free(struct virtual_alias_result *r)
{
    strv_free(r->addrs, r->n);
    r->addrs = NULL;
    r->n = 0;
    r->changed = false;
}

/* ---- this process's tables --------------------------------------------- */

static maps_t *va_maps;
static maps_t *va_domain_maps;
static char **va_domain_names;
static size_t va_ndomain_names;
static bool va_loaded;
static bool va_enabled;

/* va_has_tables - does a list name a TYPE:NAME? */
static bool va_has_tables(const char *list)
{
    for (const char *p = list ? list : ""; *p; p++)
        if (*p != ' ' && *p != '\t' && *p != '\n' && *p != ',')
            return true;
    return false;
}

/* va_domains_parse - names and TYPE:NAME specs (braces keep
   "inline:{a=b, c=d}" one word) */
static int va_domains_parse(const char *list, buf_t *err)
{
    buf_t tables = BUF_INIT;
    const char *s = list != NULL ? list : "", *why = NULL;
    int rc = 0;

    for (;;) {
        int depth = 0;
        const char *start;

        while (va_sep(*s))
            s++;
        if (*s == '\0')
            break;
        start = s;
        for (; *s != '\0'; s++) {
            if (*s == '{')
                depth++;
            else if (*s == '}')
                depth--;
            else if (depth <= 0 && va_sep(*s))
                break;
        }
        if (memchr(start, ':', (size_t)(s - start)) != NULL) {
            (void)buf_append(&tables, start, (size_t)(s - start));
            (void)buf_putc(&tables, ' ');
        } else {
            va_domain_names = xrealloc(va_domain_names,
                                       (va_ndomain_names + 1)
                                       * sizeof(*va_domain_names));
            va_domain_names[va_ndomain_names] =
                xstrndup(start, (size_t)(s - start));
            str_lower(va_domain_names[va_ndomain_names++]);
        }
    }
    if (tables.len > 0
        && (va_domain_maps = maps_open_missing_ok(buf_str(&tables),
                                                  &why)) == NULL) {
        (void)buf_printf(err, "virtual_alias_domains: %s",
                         why != NULL ? why : "bad table");
        rc = -1;
    }
    buf_free(&tables);
    return rc;
}

/* virtual_alias_open - (re)open the configured tables */
int virtual_alias_open(buf_t *err)
{
    const char *why = NULL;

    virtual_alias_close();
    va_maps = maps_open_missing_ok(var_virtual_alias_maps != NULL
                                   ? var_virtual_alias_maps : "", &why);
    if (va_maps == NULL) {
        (void)buf_printf(err, "virtual_alias_maps: %s",
                         why != NULL ? why : "bad table");
        return -1;
    }
    if (va_domains_parse(var_virtual_alias_domains, err) < 0) {
        virtual_alias_close();
        return -1;
    }
    va_enabled = va_has_tables(var_virtual_alias_maps);
    va_loaded = true;
    return 0;
}

void virtual_alias_close(void)
{
    maps_close(va_maps);
    maps_close(va_domain_maps);
    va_maps = va_domain_maps = NULL;
    strv_free(va_domain_names, va_ndomain_names);
    va_domain_names = NULL;
    va_ndomain_names = 0;
    va_loaded = va_enabled = false;
}

/* va_load - open on first use */
static int va_load(buf_t *err)
{
    return va_loaded ? 0 : virtual_alias_open(err);
}

bool virtual_alias_enabled(void)
{
    buf_t err = BUF_INIT;

    if (va_load(&err) < 0) {
        buf_free(&err);
        return true;            /* configured, but broken: fail lookups */
    }
    buf_free(&err);
    return va_enabled;
}

static int va_maps_lookup(void *ctx, const char *key, buf_t *value)
{
    (void)ctx;
    return maps_lookup(va_maps, key, value);
}

static bool va_local_domain(void *ctx, const char *domain)
{
    (void)ctx;
    return mailuser_domain_is_local(domain);
}

/* va_propagate - "virtual" in $propagate_unmatched_extensions */
static bool va_propagate(void)
{
    char **w;
    size_t n = str_split_list(var_propagate_unmatched_extensions != NULL
                              ? var_propagate_unmatched_extensions : "", &w);
    bool yes = false;

    for (size_t i = 0; i < n; i++)
        if (strcasecmp(w[i], "virtual") == 0)
            yes = true;
    strv_free(w, n);
    return yes;
}

static void va_conf(struct virtual_alias_conf *c)
{
    c->recursion_limit = var_virtual_alias_recursion_limit > 0
                         ? var_virtual_alias_recursion_limit : 1000;
    c->expansion_limit = var_virtual_alias_expansion_limit > 0
                         ? var_virtual_alias_expansion_limit : 1000;
    c->delimiters = var_recipient_delimiter;
    c->propagate = va_propagate();
    c->myorigin = var_myorigin;
}

static const struct virtual_alias_ops va_ops = {
    va_maps_lookup, va_local_domain, NULL,
};

int virtual_alias_find(const char *addr, struct virtual_alias_result *out,
                       buf_t *err)
{
    struct virtual_alias_conf c;

    memset(out, 0, sizeof(*out));
    if (va_load(err) < 0)
        return -1;
    if (!va_enabled)
        return 0;
    va_conf(&c);
    return virtual_alias_find_ops(&va_ops, &c, addr, out, err);
}

int virtual_alias_expand(const char *addr, struct virtual_alias_result *out,
                         buf_t *err)
{
    struct virtual_alias_conf c;

    memset(out, 0, sizeof(*out));
    if (va_load(err) < 0)
        return -1;
    if (!va_enabled) {
        out->addrs = xcalloc(1, sizeof(*out->addrs));
        out->addrs[0] = xstrdup(addr);
        out->n = 1;
        return 0;
    }
    va_conf(&c);
    return virtual_alias_expand_ops(&va_ops, &c, addr, out, err);
}

int virtual_alias_domain(const char *domain)
{
    buf_t err = BUF_INIT, value = BUF_INIT;
    int rc = 0;

    if (va_load(&err) < 0) {
        log_warning("%s", buf_str(&err));
        buf_free(&err);
        return -1;
    }
    buf_free(&err);
    if (*domain == '\0')
        return 0;
    for (size_t i = 0; i < va_ndomain_names; i++)
        if (strcasecmp(va_domain_names[i], domain) == 0)
            return 1;
    if (va_domain_maps != NULL && strlen(domain) <= DICT_KEY_MAX)
        rc = maps_lookup(va_domain_maps, domain, &value);
    buf_free(&value);
    if (rc < 0)
        log_warning("virtual_alias_domains: table lookup problem for %s",
                    domain);
    return rc;
}
