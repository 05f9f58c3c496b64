/*
 * user_acl - user lists for the queue tools (user_acl.h).
 */
#include <stdlib.h>
#include <string.h>

#include "mail/user_acl.h"
#include "util/privs.h"
#include "util/util.h"

/* user_acl_compile - the words of list, names resolved to uids now */
int user_acl_compile(const char *list, const char *mail_owner,
                     struct user_acl *acl, buf_t *err)
{
    const char *s = list ? list : "";
    gid_t gid;
    long len;

    memset(acl, 0, sizeof(*acl));
    acl->owner_uid = (uid_t)-1;
    if (mail_owner != NULL && privs_lookup_user(mail_owner, &acl->owner_uid,
                                                &gid) < 0)
        acl->owner_uid = (uid_t)-1;
    while ((len = str_list_next_word(&s)) > 0) {
        char *w = xstrndup(s, (size_t)len);
        const char *name = w;
        struct user_acl_item it = { 0 };
        long num;

        s += len;
        if (*name == '!') {
            it.negate = true;
            name++;
        }
        if (strncmp(name, "static:", 7) == 0) {
            it.anyone = true;
        } else if (strchr(name, ':') != NULL) {
            it.none = true;
            if (err != NULL)
                buf_printf(err, "%s: only static: tables and user names are "
                           "supported here; it matches nobody\n", name);
        } else if (parse_long(name, 0, (long)((uid_t)-1 >> 1), &num) == 0) {
            it.uid = (uid_t)num;
        } else if (privs_lookup_user(name, &it.uid, &gid) < 0) {
            it.none = true;
            if (err != NULL)
                buf_printf(err, "%s: unknown user; it matches nobody\n", name);
        }
        acl->v = xrealloc(acl->v, (acl->n + 1) * sizeof(*acl->v));
        acl->v[acl->n++] = it;
        free(w);
    }
    return len < 0 ? -1 : 0;
}

/* user_acl_allows - the first matching item decides; no match: no */
bool user_acl_allows(const struct user_acl *acl, uid_t uid)
{
    if (uid == 0 || (acl->owner_uid != (uid_t)-1 && uid == acl->owner_uid))
        return true;
    for (size_t i = 0; i < acl->n; i++) {
        const struct user_acl_item *it = &acl->v[i];

        if (it->none)
            continue;
        if (it->anyone || it->uid == uid)
            return !it->negate;
    }
    return false;
}

void user_acl_free(struct user_acl *acl)
{
    free(acl->v);
    memset(acl, 0, sizeof(*acl));
}
