/*
 * dict_build - compile a text source into an LMDB table (dict_build.h).
 *
 * Security: the source is read whole with a size bound, split into
 * logical lines with bounded line and entry lengths, and NUL bytes are
 * rejected. The new database is created inside a fresh mkdtemp directory,
 * so a less privileged user who can write the table's directory cannot
 * redirect the write (or the fchown that follows, as root) with a symlink.
 */
#include "dict_build.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dict.h"
#include "util/log.h"
#include "util/logline.h"
#include "util/util.h"

#define DICT_LINE_MAX     (64 * 1024)     /* one physical source line */
#define DICT_ENTRY_MAX    (1024 * 1024)   /* one entry with continuations */
#define DICT_SOURCE_MAX   ((size_t)1 << 32)
#define DICT_MAP_MIN      ((size_t)1 << 20)
#define DICT_MAP_MAX      ((size_t)1 << 40)

/* ---- entry parsing ------------------------------------------------------ */

/* parse_plain - "key value" -> key, value (pointers into text) */
static int parse_plain(char *text, char **key_r, char **value_r,
                       const char *where, buf_t *err)
{
    char *p = text;
    while (*p && !isspace((unsigned char)*p))
        p++;
    if (*p)
        *p++ = '\0';
    char *value = str_trim(p);
    if (*value == '\0') {
        buf_printf(err, "%s: missing value for \"%.100s\"", where, text);
        return -1;
    }
    *key_r = text;
    *value_r = value;
    return 0;
}

/* alias_name - the name before ':' (quotes removed), rest after ':' */
static int alias_name(char *text, char **name_r, char **rest_r,
                      const char *where, buf_t *err)
{
    char *name = text, *colon;
    if (*text == '"') {
        name = text + 1;
        char *q = strchr(name, '"');
        if (q == NULL) {
            buf_printf(err, "%s: unterminated quoted name", where);
            return -1;
        }
        *q = '\0';
        for (colon = q + 1; isspace((unsigned char)*colon); colon++)
            ;
        if (*colon != ':')
            colon = NULL;
    } else if ((colon = strchr(text, ':')) != NULL) {
        char *end = colon;
        while (end > text && isspace((unsigned char)end[-1]))
            end--;
        *end = '\0';
        if (strpbrk(name, " \t\r\f\v") != NULL) {
            buf_printf(err, "%s: whitespace in alias name \"%.100s\"",
                       where, name);
            return -1;
        }
    }
    if (colon == NULL) {
        buf_printf(err, "%s: expected \"name: value, ...\"", where);
        return -1;
    }
    if (*name == '\0') {
        buf_printf(err, "%s: empty alias name", where);
        return -1;
    }
    *name_r = name;
    *rest_r = colon + 1;
    return 0;
}

/* alias_values - split at commas outside quotes, trim, join with ", " */
static int alias_values(char *rest, buf_t *out, const char *name,
                        const char *where, buf_t *err)
{
    buf_reset(out);
    char *p = rest;
    while (*p) {
        char *start = p;
        bool quoted = false;
        for (; *p && (quoted || *p != ','); p++)
            if (*p == '"')
                quoted = !quoted;
        if (quoted) {
            buf_printf(err, "%s: unterminated quote in \"%.100s\"", where,
                       name);
            return -1;
        }
        bool more = (*p == ',');
        *p = '\0';
        char *v = str_trim(start);
        if (*v && ((out->len && buf_puts(out, ", ") < 0)
                   || buf_puts(out, v) < 0)) {
            buf_printf(err, "%s: out of memory", where);
            return -1;
        }
        p += more;
    }
    if (out->len == 0) {
        buf_printf(err, "%s: no value for alias \"%.100s\"", where, name);
        return -1;
    }
    return 0;
}

/* ---- builder -------------------------------------------------------------- */

struct build {
    const char *path;
    bool aliases;
    MDB_env *env;
    buf_t text;             /* the whole source */
    buf_t value;
    buf_t warnings;
};

/* build_put - parse one entry and store it; 0, 1 map full, -1 error */
static int build_put(struct build *b, MDB_txn *txn, MDB_dbi dbi,
                     char *text, long lineno, buf_t *err)
{
    char where[512];
    snprintf(where, sizeof(where), "%.450s:%ld", b->path, lineno);
    char *key, *value, *rest;
    if (b->aliases) {
        if (alias_name(text, &key, &rest, where, err) < 0
            || alias_values(rest, &b->value, key, where, err) < 0)
            return -1;
    } else {
        if (parse_plain(text, &key, &value, where, err) < 0)
            return -1;
        buf_reset(&b->value);
        buf_puts(&b->value, value);
    }
    size_t klen = strlen(key);
    if (klen > DICT_KEY_MAX) {
        buf_printf(err, "%s: key longer than %d bytes", where, DICT_KEY_MAX);
        return -1;
    }
    str_lower(key);
    MDB_val k = { klen, key }, v = { b->value.len, b->value.data };
    int rc = mdb_put(txn, dbi, &k, &v, MDB_NOOVERWRITE);
    if (rc == MDB_KEYEXIST) {
        buf_printf(&b->warnings, "%s: duplicate entry \"%.100s\" ignored "
                   "(the first one wins)\n", where, key);
        return 0;
    }
    if (rc == MDB_MAP_FULL)
        return 1;
    if (rc != 0) {
        buf_printf(err, "%s: %s", where, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* build_pass - read the whole source into one write txn: 0, 1 map full
   (txn aborted, caller grows the map and retries), -1 error */
static int build_pass(struct build *b, buf_t *err)
{
    MDB_txn *txn;
    MDB_dbi dbi;
    logline_t ll;
    const char *error;
    char *entry;
    buf_reset(&b->warnings);
    /* nothing of a failed pass was committed: the database is empty */
    int rc = mdb_txn_begin(b->env, NULL, 0, &txn);
    if (rc != 0) {
        buf_printf(err, "%s: %s", b->path, mdb_strerror(rc));
        return rc == MDB_MAP_FULL ? 1 : -1;
    }
    if ((rc = mdb_dbi_open(txn, NULL, 0, &dbi)) != 0) {
        mdb_txn_abort(txn);
        buf_printf(err, "%s: %s", b->path, mdb_strerror(rc));
        return -1;
    }
    long lineno = 0;
    int ret;
    logline_init(&ll, b->text.data, b->text.len, DICT_LINE_MAX, DICT_ENTRY_MAX);
    while ((ret = logline_next(&ll, &entry, &lineno, &error)) > 0)
        if ((ret = build_put(b, txn, dbi, entry, lineno, err)) != 0)
            break;
    if (ret < 0 && err->len == 0)
        buf_printf(err, "%s:%ld: %s", b->path, lineno, error);
    logline_free(&ll);
    if (ret != 0) {
        mdb_txn_abort(txn);
        return ret;
    }
    if ((rc = mdb_txn_commit(txn)) == MDB_MAP_FULL)
        return 1;
    if (rc != 0) {
        buf_printf(err, "%s: commit: %s", b->path, mdb_strerror(rc));
        return -1;
    }
    return 0;
}

/* build_env - create the temporary database and fill it */
static int build_env(struct build *b, const char *tmp, off_t src_size,
                     buf_t *err)
{
    /* a guess; build_pass says when the map is full and we double it */
    size_t mapsize = DICT_MAP_MIN + (size_t)src_size;
    int rc = mdb_env_create(&b->env);
    if (rc == 0)
        rc = mdb_env_set_mapsize(b->env, mapsize);
    /* NOSYNC: one explicit sync at the end; NOLOCK: nobody else can know
       the temporary name */
    if (rc == 0)
        rc = mdb_env_open(b->env, tmp,
                          MDB_NOSUBDIR | MDB_NOLOCK | MDB_NOSYNC, 0600);
    if (rc != 0) {
        buf_printf(err, "%s: create %s: %s", b->path, tmp, mdb_strerror(rc));
        return -1;
    }
    buf_reset(err);
    while ((rc = build_pass(b, err)) == 1) {
        if (mapsize >= DICT_MAP_MAX / 2) {
            buf_reset(err);
            buf_printf(err, "%s: table too large", b->path);
            return -1;
        }
        mapsize *= 2;
        buf_reset(err);
        if ((rc = mdb_env_set_mapsize(b->env, mapsize)) != 0) {
            buf_printf(err, "%s: %s", b->path, mdb_strerror(rc));
            return -1;
        }
    }
    if (rc == 0 && (rc = mdb_env_sync(b->env, 1)) != 0) {
        buf_printf(err, "%s: sync %s: %s", b->path, tmp, mdb_strerror(rc));
        return -1;
    }
    return rc;
}

/* build_finish - give tmp the source's mode/owner, make it durable, and
   rename it into place */
static int build_finish(const char *tmp, const char *dbpath,
                        const struct stat *src_st, buf_t *err)
{
    int fd = open(tmp, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fchmod(fd, src_st->st_mode & 0666) < 0
        || (geteuid() == 0 && fchown(fd, src_st->st_uid, src_st->st_gid) < 0)
        || fsync(fd) < 0) {
        buf_printf(err, "%s: %s", tmp, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    if (rename(tmp, dbpath) < 0) {
        buf_printf(err, "rename %s to %s: %s", tmp, dbpath, strerror(errno));
        return -1;
    }
    if (fsync_parent_dir(dbpath) < 0) {
        buf_printf(err, "fsync directory of %s: %s", dbpath,
                   strerror(errno));
        return -1;
    }
    return 0;
}

/* build_read_source - the whole text source, bounded */
static int build_read_source(struct build *b, struct stat *st, buf_t *err)
{
    int fd = open(b->path, O_RDONLY | O_CLOEXEC);
    char chunk[65536];
    ssize_t n;

    if (fd < 0 || fstat(fd, st) < 0) {
        buf_printf(err, "%s: %s", b->path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    while ((n = read(fd, chunk, sizeof(chunk))) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 || buf_append(&b->text, chunk, (size_t)n) < 0) {
            buf_printf(err, "%s: %s", b->path,
                       n < 0 ? strerror(errno) : "source too large");
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* build_tmpdir - "PATH.lmdb.XXXXXX", a fresh 0700 directory of ours */
static char *build_tmpdir(const char *dbpath, buf_t *err)
{
    size_t n = strlen(dbpath) + 8;
    char *dir = xmalloc(n);

    snprintf(dir, n, "%s.XXXXXX", dbpath);
    if (mkdtemp(dir) == NULL) {
        buf_printf(err, "%s: %s", dir, strerror(errno));
        free(dir);
        return NULL;
    }
    return dir;
}

int dict_lmdb_build(const char *path, bool aliases, buf_t *err)
{
    buf_reset(err);
    struct build b = { .path = path, .aliases = aliases };
    buf_init(&b.text, DICT_SOURCE_MAX);
    buf_init(&b.value, 0);
    buf_init(&b.warnings, 0);
    char *dbpath = NULL, *tmpdir = NULL, *tmp = NULL;
    int ret = -1;
    struct stat st;

    if (build_read_source(&b, &st, err) < 0)
        goto out;
    size_t n = strlen(path) + 64;
    dbpath = xmalloc(n);
    tmp = xmalloc(n + 16);
    snprintf(dbpath, n, "%s.lmdb", path);
    if ((tmpdir = build_tmpdir(dbpath, err)) == NULL)
        goto out;
    snprintf(tmp, n + 16, "%s/table", tmpdir);
    ret = build_env(&b, tmp, st.st_size, err);
    mdb_env_close(b.env);   /* LMDB accepts NULL */
    b.env = NULL;
    if (ret == 0)
        ret = build_finish(tmp, dbpath, &st, err);
    if (ret != 0)
        unlink(tmp);
    if (rmdir(tmpdir) < 0 && ret == 0) {
        buf_printf(err, "%s: %s", tmpdir, strerror(errno));
        ret = -1;
    }
out:
    if (ret == 0 && b.warnings.len > 0) {
        const char *w = buf_str(&b.warnings);
        for (const char *nl; (nl = strchr(w, '\n')) != NULL; w = nl + 1)
            log_warning("%.*s", (int)(nl - w), w);
        buf_append(err, b.warnings.data, b.warnings.len);
    }
    buf_free(&b.text);
    buf_free(&b.value);
    buf_free(&b.warnings);
    free(dbpath);
    free(tmpdir);
    free(tmp);
    return ret == 0 ? 0 : -1;
}
