/*
 * dict - lookup tables (lmdb:, static:, inline:; pcre: in dict_pcre.c)
 * and table lists
 * (dict.h). The builder that compiles text sources is dict_build.c.
 *
 * Security: table files are trusted (root writes them).
 */
#include "dict.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict_pcre.h"
#include "dict_proxy.h"
#include "util/log.h"
#include "util/util.h"

#define DICT_CHECK_MSEC   1000

enum dict_type { DICT_LMDB, DICT_STATIC, DICT_INLINE, DICT_PCRE, DICT_PROXY };

struct dict {
    enum dict_type type;
    char *spec;
    /* lmdb */
    char *dbpath;
    MDB_env *env;
    MDB_txn *txn;            /* read txn kept reset between lookups */
    MDB_dbi dbi;
    struct stat st;          /* identity of the file env maps */
    uint64_t checked_ms;
    bool walking;            /* dict_walk active: do not swap the env */
    /* static */
    char *static_value;
    /* inline */
    char **keys;
    char **values;
    size_t count;
    /* pcre (dict_pcre.c) */
    dict_pcre_t *pcre;
    struct dict_proxy *proxy;    /* proxy: (dict_proxy.c) */
};

struct maps {
    dict_t **dicts;
    size_t count;
};

static char dict_errbuf[1024];

/* the clock of the once-a-second file check (dict_set_clock) */
static dict_clock_fn dict_clock = time_mono_msec;

/* dict_set_clock - replace the check clock (tests); NULL = the real one */
void dict_set_clock(dict_clock_fn now_msec)
{
    dict_clock = now_msec != NULL ? now_msec : time_mono_msec;
}

/* dict_err - format an error into the static buffer, return it */
static const char *dict_err(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static const char *dict_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dict_errbuf, sizeof(dict_errbuf), fmt, ap);
    va_end(ap);
    return dict_errbuf;
}

/* ascii_lower - locale-independent lowercase of n bytes */
static void ascii_lower(char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] >= 'A' && s[i] <= 'Z')
            s[i] = (char)(s[i] - 'A' + 'a');
}

/* ---- lmdb reader ----------------------------------------------------- */

static void lmdb_env_close(dict_t *d)
{
    if (d->txn)
        mdb_txn_abort(d->txn);
    if (d->env)
        mdb_env_close(d->env);
    d->txn = NULL;
    d->env = NULL;
}

/*
 * lmdb_env_open - map the file read-only. MDB_NOLOCK: the file is never
 * written in place (dict_lmdb_build renames a complete new file over it),
 * so readers need no lock table, and unprivileged or chrooted readers
 * need no writable "-lock" file next to it. A reader keeps the old inode
 * mapped until it notices the replacement.
 */
static int lmdb_env_open(dict_t *d, MDB_env **env_r, MDB_txn **txn_r,
                         MDB_dbi *dbi_r, const char **error_r)
{
    MDB_env *env = NULL;
    MDB_txn *txn = NULL;
    int rc = mdb_env_create(&env);
    if (rc == 0)
        rc = mdb_env_open(env, d->dbpath,
                          MDB_RDONLY | MDB_NOSUBDIR | MDB_NOLOCK, 0);
    if (rc == 0)
        rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn);
    if (rc == 0)
        rc = mdb_dbi_open(txn, NULL, 0, dbi_r);
    if (rc != 0) {
        *error_r = dict_err("%s: open %s: %s", d->spec, d->dbpath,
                            mdb_strerror(rc));
        if (txn)
            mdb_txn_abort(txn);
        if (env)
            mdb_env_close(env);
        return rc;
    }
    mdb_txn_reset(txn);
    *env_r = env;
    *txn_r = txn;
    return 0;
}

static bool same_file(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino
        && a->st_size == b->st_size
        && a->st_mtim.tv_sec == b->st_mtim.tv_sec
        && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* lmdb_reopen - switch to a new file; the old mapping stays on failure */
static int lmdb_reopen(dict_t *d, const struct stat *st, const char **error_r)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    int rc = lmdb_env_open(d, &env, &txn, &dbi, error_r);
    if (rc != 0)
        return rc;
    lmdb_env_close(d);
    d->env = env;
    d->txn = txn;
    d->dbi = dbi;
    d->st = *st;
    return 0;
}

/* lmdb_check - notice a replaced (or newly created) file, at most 1/s */
static void lmdb_check(dict_t *d)
{
    uint64_t now = dict_clock();
    if (d->walking || now - d->checked_ms < DICT_CHECK_MSEC)
        return;
    d->checked_ms = now;
    struct stat st;
    if (stat(d->dbpath, &st) < 0) {
        /* gone (or outside our chroot): keep what we have mapped; with
           nothing mapped every lookup fails, and this process says so
           (once per check, so at most once a second) */
        if (d->env == NULL)
            log_warning("%s: %s: %m; lookups fail until it exists "
                        "(run newaliases or ternmap)", d->spec, d->dbpath);
        return;
    }
    if (d->env && same_file(&d->st, &st))
        return;
    const char *why;
    if (lmdb_reopen(d, &st, &why) != 0)
        log_warning("%s (%s)", why, d->env ? "keeping the previous table"
                                           : "lookups fail until it opens");
}

static int lmdb_open(dict_t *d, const char *path, bool missing_ok,
                     const char **error_r)
{
    if (*path == '\0') {
        *error_r = dict_err("%s: missing file name", d->spec);
        return -1;
    }
    size_t n = strlen(path) + sizeof(".lmdb");
    d->dbpath = xmalloc(n);
    snprintf(d->dbpath, n, "%s.lmdb", path);
    d->checked_ms = dict_clock();
    struct stat st;
    if (stat(d->dbpath, &st) < 0) {
        if (errno == ENOENT && missing_ok) {
            log_warning("%s: %s does not exist yet; lookups fail "
                        "(temporarily) until it is built", d->spec, d->dbpath);
            return 0;
        }
        *error_r = dict_err("%s: %s: %s", d->spec, d->dbpath,
                            strerror(errno));
        return -1;
    }
    return lmdb_reopen(d, &st, error_r) == 0 ? 0 : -1;
}

static int lmdb_lookup(dict_t *d, const char *key, buf_t *value)
{
    lmdb_check(d);
    if (d->env == NULL)
        return -1;      /* not "not found": the caller defers (4.3.0) */
    size_t klen = strlen(key);
    if (klen == 0 || klen > DICT_KEY_MAX)
        return 0;   /* the builder never stores such keys */
    char kbuf[DICT_KEY_MAX + 1];
    memcpy(kbuf, key, klen);
    ascii_lower(kbuf, klen);
    MDB_val k = { klen, kbuf }, v;
    int rc = mdb_txn_renew(d->txn);
    if (rc != 0) {
        log_warning("%s: mdb_txn_renew: %s", d->spec, mdb_strerror(rc));
        return -1;
    }
    rc = mdb_get(d->txn, d->dbi, &k, &v);
    int ret = 1;
    if (rc == MDB_NOTFOUND) {
        ret = 0;
    } else if (rc != 0) {
        log_warning("%s: lookup %s: %s", d->spec, key, mdb_strerror(rc));
        ret = -1;
    } else {
        buf_reset(value);
        if (buf_append(value, v.mv_data, v.mv_size) < 0) {
            log_warning("%s: value for %s too large", d->spec, key);
            ret = -1;
        }
    }
    mdb_txn_reset(d->txn);
    return ret;
}

/* lmdb_walk - own read txn, so fn may call dict_lookup on d */
static int lmdb_walk(dict_t *d, dict_walk_fn fn, void *ctx)
{
    lmdb_check(d);
    if (d->env == NULL)
        return 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = mdb_txn_begin(d->env, NULL, MDB_RDONLY, &txn);
    if (rc != 0) {
        log_warning("%s: %s", d->spec, mdb_strerror(rc));
        return -1;
    }
    if ((rc = mdb_cursor_open(txn, d->dbi, &cur)) != 0) {
        log_warning("%s: %s", d->spec, mdb_strerror(rc));
        mdb_txn_abort(txn);
        return -1;
    }
    d->walking = true;
    MDB_val k, v;
    int ret = 0;
    for (MDB_cursor_op op = MDB_FIRST;
         (rc = mdb_cursor_get(cur, &k, &v, op)) == 0; op = MDB_NEXT) {
        ret = fn(k.mv_data, k.mv_size, v.mv_data, v.mv_size, ctx);
        if (ret != 0)
            break;
    }
    d->walking = false;
    if (ret == 0 && rc != MDB_NOTFOUND) {
        log_warning("%s: %s", d->spec, mdb_strerror(rc));
        ret = -1;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return ret;
}

/* ---- static: and inline: ------------------------------------------- */

/* unbrace - "{text}" -> "text" trimmed, in place; NULL if malformed */
static char *unbrace(char *s)
{
    size_t n = strlen(s);
    if (n < 2 || s[0] != '{' || s[n - 1] != '}')
        return NULL;
    s[n - 1] = '\0';
    return str_trim(s + 1);
}

static int static_open(dict_t *d, const char *arg, const char **error_r)
{
    char *copy = xstrdup(arg);
    char *v = copy;
    if (*v == '{' && (v = unbrace(copy)) == NULL) {
        free(copy);
        *error_r = dict_err("%s: unbalanced braces", d->spec);
        return -1;
    }
    if (*v == '\0') {
        free(copy);
        *error_r = dict_err("%s: missing value", d->spec);
        return -1;
    }
    d->static_value = xstrdup(v);
    free(copy);
    return 0;
}

/* inline_add - parse one "key=value" element */
static int inline_add(dict_t *d, char *elem, const char **error_r)
{
    char *eq = strchr(elem, '=');
    if (eq == NULL) {
        *error_r = dict_err("%s: expected key=value, got \"%.100s\"",
                            d->spec, elem);
        return -1;
    }
    *eq = '\0';
    char *k = str_trim(elem), *v = str_trim(eq + 1);
    if (*k == '\0' || *v == '\0') {
        *error_r = dict_err("%s: empty key or value", d->spec);
        return -1;
    }
    d->keys = xrealloc(d->keys, (d->count + 1) * sizeof(*d->keys));
    d->values = xrealloc(d->values, (d->count + 1) * sizeof(*d->values));
    d->keys[d->count] = xstrdup(k);
    ascii_lower(d->keys[d->count], strlen(k));
    d->values[d->count] = xstrdup(v);
    d->count++;
    return 0;
}

static int inline_open(dict_t *d, const char *arg, const char **error_r)
{
    char *copy = xstrdup(arg);
    char *body = unbrace(copy);
    int ret = 0;
    if (body == NULL || strpbrk(body, "{}") != NULL) {
        *error_r = dict_err("%s: expected inline:{key=value, ...}", d->spec);
        ret = -1;
    }
    for (char *p = body; ret == 0 && p != NULL;) {
        char *comma = strchr(p, ',');
        if (comma)
            *comma = '\0';
        char *elem = str_trim(p);
        if (*elem != '\0')   /* "{}" and "{a=b,}" are fine */
            ret = inline_add(d, elem, error_r);
        p = comma ? comma + 1 : NULL;
    }
    free(copy);
    return ret;
}

static int inline_lookup(dict_t *d, const char *key, buf_t *value)
{
    for (size_t i = 0; i < d->count; i++) {
        const char *a = d->keys[i], *b = key;
        while (*a) {
            char c = *b;
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (*a != c)
                break;
            a++;
            b++;
        }
        if (*a == '\0' && *b == '\0') {
            buf_reset(value);
            return buf_puts(value, d->values[i]) < 0 ? -1 : 1;
        }
    }
    return 0;
}

/* ---- generic -------------------------------------------------------- */

static dict_t *dict_open_flags(const char *spec, bool missing_ok,
                               const char **error_r)
{
    const char *colon = strchr(spec, ':');
    if (colon == NULL || colon == spec) {
        *error_r = dict_err("%s: expected type:name", spec);
        return NULL;
    }
    size_t tlen = (size_t)(colon - spec);
    const char *arg = colon + 1;
    dict_t *d = xcalloc(1, sizeof(*d));
    d->spec = xstrdup(spec);
    int rc;
    if ((tlen == 5 && strncmp(spec, "proxy", 5) == 0)
        || (tlen == 4 && strncmp(spec, "lmdb", 4) == 0 && dict_proxy_all())) {
        d->type = DICT_PROXY;
        d->proxy = dict_proxy_open(tlen == 5 ? arg : spec, error_r);
        rc = d->proxy ? 0 : -1;
    } else if (tlen == 4 && strncmp(spec, "lmdb", 4) == 0) {
        d->type = DICT_LMDB;
        rc = lmdb_open(d, arg, missing_ok, error_r);
    } else if (tlen == 6 && strncmp(spec, "static", 6) == 0) {
        d->type = DICT_STATIC;
        rc = static_open(d, arg, error_r);
    } else if (tlen == 6 && strncmp(spec, "inline", 6) == 0) {
        d->type = DICT_INLINE;
        rc = inline_open(d, arg, error_r);
    } else if (tlen == 4 && strncmp(spec, "pcre", 4) == 0) {
        d->type = DICT_PCRE;
        d->pcre = dict_pcre_open(arg, error_r);
        rc = d->pcre != NULL ? 0 : -1;
    } else {
        *error_r = dict_err("%s: unsupported table type \"%.*s\"", spec,
                            (int)(tlen > 64 ? 64 : tlen), spec);
        rc = -1;
    }
    if (rc != 0) {
        dict_close(d);
        return NULL;
    }
    return d;
}

dict_t *dict_open(const char *spec, const char **error_r)
{
    return dict_open_flags(spec, false, error_r);
}

int dict_lookup(dict_t *d, const char *key, buf_t *value)
{
    switch (d->type) {
    case DICT_LMDB:
        return lmdb_lookup(d, key, value);
    case DICT_STATIC:
        buf_reset(value);
        return buf_puts(value, d->static_value) < 0 ? -1 : 1;
    case DICT_INLINE:
        return inline_lookup(d, key, value);
    case DICT_PCRE:
        return dict_pcre_lookup(d->pcre, key, value);
    case DICT_PROXY:
        return dict_proxy_lookup(d->proxy, key, value);
    }
    return -1;
}

int dict_walk(dict_t *d, dict_walk_fn fn, void *ctx)
{
    if (d->type == DICT_LMDB)
        return lmdb_walk(d, fn, ctx);
    for (size_t i = 0; i < d->count; i++) {
        int ret = fn(d->keys[i], strlen(d->keys[i]), d->values[i],
                     strlen(d->values[i]), ctx);
        if (ret != 0)
            return ret;
    }
    return 0;
}

void dict_close(dict_t *d)
{
    if (d == NULL)
        return;
    lmdb_env_close(d);
    dict_pcre_free(d->pcre);
    dict_proxy_close(d->proxy);
    for (size_t i = 0; i < d->count; i++) {
        free(d->keys[i]);
        free(d->values[i]);
    }
    free(d->keys);
    free(d->values);
    free(d->static_value);
    free(d->dbpath);
    free(d->spec);
    free(d);
}

const char *dict_name(const dict_t *d)
{
    return d->spec;
}

static maps_t *maps_open_flags(const char *list, bool missing_ok,
                               const char **error_r)
{
    maps_t *m = xcalloc(1, sizeof(*m));
    const char *s = list ? list : "";
    long len;
    while ((len = str_list_next_word(&s)) > 0) {
        char *spec = xstrndup(s, (size_t)len);
        s += len;
        dict_t *d = dict_open_flags(spec, missing_ok, error_r);
        free(spec);
        if (d == NULL) {
            maps_close(m);
            return NULL;
        }
        m->dicts = xrealloc(m->dicts, (m->count + 1) * sizeof(*m->dicts));
        m->dicts[m->count++] = d;
    }
    if (len < 0) {
        *error_r = dict_err("%.200s: unbalanced braces", list);
        maps_close(m);
        return NULL;
    }
    return m;
}

maps_t *maps_open(const char *list, const char **error_r)
{
    return maps_open_flags(list, false, error_r);
}

maps_t *maps_open_missing_ok(const char *list, const char **error_r)
{
    return maps_open_flags(list, true, error_r);
}

int maps_lookup(maps_t *m, const char *key, buf_t *value)
{
    for (size_t i = 0; i < m->count; i++) {
        int rc = dict_lookup(m->dicts[i], key, value);
        if (rc != 0)
            return rc;
    }
    return 0;
}

void maps_close(maps_t *m)
{
    if (m == NULL)
        return;
    for (size_t i = 0; i < m->count; i++)
        dict_close(m->dicts[i]);
    free(m->dicts);
    free(m);
}
