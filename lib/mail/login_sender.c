/*
 * login_sender - local_login_sender_maps decisions (login_sender.h).
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "mail/config.h"
#include "mail/login_sender.h"
#include "util/util.h"

/* login_sender_strip - sender without its address extension, into out */
static void login_sender_strip(const char *sender, const char *delims,
                               buf_t *out)
{
    const char *at = strrchr(sender, '@');
    size_t local = at ? (size_t)(at - sender) : strlen(sender);
    size_t cut = local;

    buf_reset(out);
    if (delims != NULL && *delims != '\0') {
        /* a local part that starts with a delimiter has no extension */
        for (size_t i = 1; i < local; i++) {
            if (strchr(delims, sender[i]) != NULL) {
                cut = i;
                break;
            }
        }
    }
    (void)buf_append(out, sender, cut);
    (void)buf_puts(out, sender + local);
}

/* login_sender_one - does one pattern allow the (stripped) sender? */
static bool login_sender_one(const char *pat, const char *sender,
                             const char *null_key)
{
    const char *at;

    if (strcmp(pat, "*") == 0)
        return true;
    if (*sender == '\0')
        return null_key != NULL && strcmp(pat, null_key) == 0;
    if (null_key != NULL && strcmp(pat, null_key) == 0)
        return false;
    if (pat[0] == '@') {
        at = strrchr(sender, '@');
        return pat[1] != '\0' && at != NULL && strcasecmp(at, pat) == 0;
    }
    return strcasecmp(pat, sender) == 0;
}

bool login_sender_match(const char *patterns, const char *sender,
                        const char *null_key, const char *delims)
{
    char **v;
    size_t n = str_split_list(patterns ? patterns : "", &v);
    buf_t s = BUF_INIT;
    bool ok = false;

    login_sender_strip(sender ? sender : "", delims, &s);
    for (size_t i = 0; i < n && !ok; i++)
        ok = login_sender_one(v[i], buf_str(&s), null_key);
    strv_free(v, n);
    buf_free(&s);
    return ok;
}

void login_sender_key(uid_t uid, const char *name, buf_t *out)
{
    buf_reset(out);
    if (name != NULL && *name != '\0')
        (void)buf_puts(out, name);
    else
        (void)buf_printf(out, "uid:%lu", (unsigned long)uid);
}

int login_sender_check(maps_t *maps, const char *key, const char *sender)
{
    buf_t value = BUF_INIT;
    int rc = maps_lookup(maps, key, &value);

    if (rc == 1)
        rc = login_sender_match(buf_str(&value), sender,
                                var_empty_address_local_login_sender_maps_lookup_key,
                                var_recipient_delimiter) ? 1 : 0;
    buf_free(&value);
    return rc;
}
