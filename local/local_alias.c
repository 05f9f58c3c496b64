/*
 * local_alias - alias tables with their owners, the rights that commands
 * and files run with, and the list syntax of aliases, .forward and
 * :include: files (local.h).
 *
 * Whose rights: a command or file named in an alias table runs with the
 * rights of the table's owner (the owner of the lmdb or pcre file); a
 * table owned by root, and tables without a file (static:, inline:), use
 * $default_privs, as Postfix does. A table is looked up on its own (not
 * as one maps_t), so the table that answered is known.
 *
 * Security: the rights never resolve to root: local_rights_of_owner()
 * maps root to $default_privs and refuses a $default_privs that is root;
 * the command and file code refuses uid 0 again before it acts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "local.h"
#include "mail/config.h"
#include "mail/deliver.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

struct local_table {
    maps_t *maps;           /* one table */
    char *path;             /* its file, NULL when it has none */
};

struct local_aliases {
    struct local_table *t;
    size_t n;
};

/* table_file - the file behind a table spec ("proxy:" is only the way
   it is reached; the file is the same) */
static char *table_file(const char *spec)
{
    size_t n;
    if (strncmp(spec, "proxy:", 6) == 0)
        spec += 6;
    if (strncmp(spec, "lmdb:", 5) == 0 && spec[5] == '/') {
        n = strlen(spec + 5) + sizeof(".lmdb");
        char *p = xmalloc(n);
        snprintf(p, n, "%s.lmdb", spec + 5);
        return p;
    }
    if (strncmp(spec, "pcre:", 5) == 0 && spec[5] == '/')
        return xstrdup(spec + 5);
    return NULL;
}

struct local_aliases *local_aliases_open(const char *list, const char **error_r)
{
    struct local_aliases *a = xcalloc(1, sizeof(*a));
    const char *s = list ? list : "";
    long len;

    while ((len = str_list_next_word(&s)) > 0) {
        char *spec = xstrndup(s, (size_t)len);
        s += len;
        maps_t *m = maps_open_missing_ok(spec, error_r);
        if (m == NULL) {
            free(spec);
            local_aliases_close(a);
            return NULL;
        }
        a->t = xrealloc(a->t, (a->n + 1) * sizeof(*a->t));
        a->t[a->n].maps = m;
        a->t[a->n].path = table_file(spec);
        a->n++;
        free(spec);
    }
    if (len < 0) {
        *error_r = "unbalanced braces";
        local_aliases_close(a);
        return NULL;
    }
    return a;
}

void local_aliases_close(struct local_aliases *a)
{
    if (a == NULL)
        return;
    for (size_t i = 0; i < a->n; i++) {
        maps_close(a->t[i].maps);
        free(a->t[i].path);
    }
    free(a->t);
    free(a);
}

/* rights_from_account - an account's rights */
static void rights_from_account(const struct privs_account *a, struct local_rights *who)
{
    memset(who, 0, sizeof(*who));
    who->uid = a->uid;
    who->gid = a->gid;
    str_copy(who->user, a->name, sizeof(who->user));
    str_copy(who->home, *a->home ? a->home : "/", sizeof(who->home));
    str_copy(who->shell, a->shell, sizeof(who->shell));
}

/* default_privs - $default_privs' rights; 0 ok, -1 res says why */
static int default_privs(struct local_rights *who, struct local_result *res)
{
    struct privs_account a;
    int f = privs_account_by_name(var_default_privs, &a);

    if (f <= 0) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "default_privs account \"%.100s\" %s", var_default_privs,
                         f == 0 ? "does not exist" : "cannot be looked up");
        return -1;
    }
    rights_from_account(&a, who);
    if (who->uid == 0 && privs_running_as_root()) {
        local_result_set(res, DELIVER_DEFER, "4.3.0",
                         "default_privs must not be a privileged account");
        return -1;
    }
    return 0;
}

int local_rights_of_owner(uid_t uid, gid_t gid, struct local_rights *who,
                          struct local_result *res)
{
    struct privs_account a;

    if (!privs_running_as_root()) {
        /* the developer instance: nothing changes user, every file is
           the invoking user's */
        uid = getuid();
        gid = getgid();
    } else if (uid == 0) {
        return default_privs(who, res);
    }
    if (privs_account_by_uid(uid, &a) > 0) {
        rights_from_account(&a, who);
        return 0;
    }
    /* an owner without an account: its uid and the file's group */
    memset(who, 0, sizeof(*who));
    who->uid = uid;
    who->gid = gid;
    str_copy(who->home, "/", sizeof(who->home));
    return 0;
}

void local_rights_of_user(const struct mail_user *u, struct local_rights *who)
{
    struct privs_account a;

    memset(who, 0, sizeof(*who));
    who->uid = u->uid;
    who->gid = u->gid;
    str_copy(who->home, u->home, sizeof(who->home));
    /* a system account of that name and uid lends its name (groups) and
       shell; a virtual user has neither */
    if (privs_account_by_name(u->name, &a) > 0 && a.uid == u->uid) {
        str_copy(who->user, u->name, sizeof(who->user));
        str_copy(who->shell, a.shell, sizeof(who->shell));
    }
}

int local_aliases_lookup(struct local_aliases *a, const char *key, buf_t *value,
                         struct local_rights *who, struct local_result *res)
{
    if (a == NULL)
        return 0;
    for (size_t i = 0; i < a->n; i++) {
        int f = maps_lookup(a->t[i].maps, key, value);
        if (f < 0) {
            local_result_set(res, DELIVER_DEFER, "4.3.0", "alias table lookup failed");
            return -1;
        }
        if (f == 0)
            continue;
        struct stat st;
        uid_t uid = 0;
        gid_t gid = 0;
        if (a->t[i].path != NULL) {
            if (stat(a->t[i].path, &st) < 0) {
                local_result_set(res, DELIVER_DEFER, "4.3.0",
                                 "cannot stat alias table %s: %m", a->t[i].path);
                return -1;
            }
            uid = st.st_uid;
            gid = st.st_gid;
        }
        return local_rights_of_owner(uid, gid, who, res) < 0 ? -1 : 1;
    }
    return 0;
}

size_t local_list_split(const char *text, size_t max, char ***tokens_r,
                        bool *truncated_r)
{
    char **v = NULL;
    size_t n = 0;
    const char *p = text;
    buf_t tok;

    *truncated_r = false;
    buf_init(&tok, 0);
    for (;;) {
        p += strspn(p, ", \t\r\n");
        if (*p == '\0')
            break;
        /* "# ..." at the start of a line: a comment (.forward, include) */
        const char *ls = p;
        while (ls > text && (ls[-1] == ' ' || ls[-1] == '\t'))
            ls--;
        if (*p == '#' && (ls == text || ls[-1] == '\n')) {
            p += strcspn(p, "\n");
            continue;
        }
        buf_reset(&tok);
        if (*p == '"') {
            for (p++; *p && *p != '"'; p++) {
                if (*p == '\\' && p[1] != '\0')
                    p++;
                buf_putc(&tok, *p);
            }
            if (*p == '"')
                p++;
        } else if (*p == '|') {
            /* "|cmd arg, next": a command runs to the comma */
            size_t len = strcspn(p, ",\n");
            while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'
                               || p[len - 1] == '\r'))
                len--;
            buf_append(&tok, p, len);
            p += strcspn(p, ",\n");
        } else {
            size_t len = strcspn(p, ", \t\r\n");
            buf_append(&tok, p, len);
            p += len;
        }
        if (tok.len == 0)
            continue;
        if (n >= max) {
            *truncated_r = true;
            break;
        }
        v = xrealloc(v, (n + 1) * sizeof(*v));
        v[n++] = buf_strdup(&tok);
    }
    buf_free(&tok);
    *tokens_r = v;
    return n;
}

bool local_class_allowed(const char *list, const char *cls)
{
    char **w;
    size_t n = str_split_list(list ? list : "", &w);
    bool ok = false;
    for (size_t i = 0; i < n && !ok; i++)
        ok = str_eq_ci(w[i], cls);
    strv_free(w, n);
    return ok;
}
