/*
 * mailuser - local users (virtual_user_maps, then the password file),
 * local domains ($mydestination) and "user+ext" handling (mailuser.h).
 * In a process that chroots (dict_proxy_all()), the tables are proxy:
 * tables and the password file is read by proxymap(8); otherwise the
 * password file is read through privs_account_by_name's bounded cache.
 */
#include "mailuser.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/buf.h"
#include "config.h"
#include "dict.h"
#include "dict_proxy.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define MAILUSER_VALUE_MAX  8192

static maps_t *user_maps;
static maps_t *alias_maps;

void mailuser_close(void)
{
    maps_close(user_maps);
    maps_close(alias_maps);
    user_maps = NULL;
    alias_maps = NULL;
}

int mailuser_init(void)
{
    const char *why;
    mailuser_close();
    user_maps = maps_open(var_virtual_user_maps ? var_virtual_user_maps : "",
                          &why);
    if (user_maps == NULL) {
        log_error("virtual_user_maps: %s", why);
        return -1;
    }
    /* the alias database may not be built yet: that is only a warning
       (dict logs it), and the table is picked up once newaliases runs */
    alias_maps = maps_open_missing_ok(var_alias_maps ? var_alias_maps : "",
                                      &why);
    if (alias_maps == NULL) {
        log_error("alias_maps: %s", why);
        mailuser_close();
        return -1;
    }
    return 0;
}

/* parse_id - decimal uid/gid; (uid_t)-1 is not a valid ID */
static int parse_id(const char *s, unsigned long max, unsigned long *out)
{
    if (*s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || *end != '\0' || v >= max)
        return -1;
    *out = v;
    return 0;
}

/* virtual_parse - "uid:gid:home[:anything]" into u; 0 ok, -1 malformed */
static int virtual_parse(char *value, struct mail_user *u)
{
    char *uid_s = value, *gid_s, *home, *rest;
    if ((gid_s = strchr(uid_s, ':')) == NULL)
        return -1;
    *gid_s++ = '\0';
    if ((home = strchr(gid_s, ':')) == NULL)
        return -1;
    *home++ = '\0';
    if ((rest = strchr(home, ':')) != NULL)
        *rest = '\0';   /* password hash or whatever follows: not ours */
    unsigned long uid, gid;
    if (parse_id(uid_s, (uid_t)-1, &uid) < 0
        || parse_id(gid_s, (gid_t)-1, &gid) < 0)
        return -1;
    if (home[0] != '/' || str_copy(u->home, home, sizeof(u->home))
                              >= sizeof(u->home))
        return -1;
    u->uid = (uid_t)uid;
    u->gid = (gid_t)gid;
    return 0;
}

/* passwd_proxy - the password database through proxymap (chrooted:
   no /etc/passwd, no NSS modules in the jail): 1, 0, -1 */
static int passwd_proxy(const char *name, struct mail_user *u)
{
    buf_t value;
    buf_init(&value, MAILUSER_VALUE_MAX);
    int rc = dict_proxy_local_user(name, &value);
    if (rc == 1 && (value.data == NULL || virtual_parse(value.data, u) < 0)) {
        log_warning("proxymap: malformed local user entry for %s", name);
        rc = -1;
    }
    buf_free(&value);
    return rc;
}

/* passwd_user - the system password database, through privs' bounded
   cache (an account added or changed is seen within
   PRIVS_CACHE_LIFETIME / PRIVS_CACHE_NEG_LIFETIME seconds): 1, 0, -1 */
static int passwd_user(const char *name, struct mail_user *u)
{
    struct privs_account a;
    if (dict_proxy_all())
        return passwd_proxy(name, u);
    int ret = privs_account_by_name(name, &a);
    if (ret < 0) {
        log_warning("getpwnam_r %s: %s", name, strerror(errno));
    } else if (ret > 0) {
        if (str_copy(u->home, a.home, sizeof(u->home)) >= sizeof(u->home)) {
            log_warning("home directory of %s too long", name);
            ret = -1;
        } else {
            u->uid = a.uid;
            u->gid = a.gid;
        }
    }
    return ret;
}

int mailuser_lookup(const char *name, struct mail_user *u)
{
    if (*name == '\0' || strlen(name) >= sizeof(u->name))
        return 0;
    memset(u, 0, sizeof(*u));
    str_copy(u->name, name, sizeof(u->name));
    if (user_maps) {
        buf_t value;
        buf_init(&value, MAILUSER_VALUE_MAX);
        int rc = maps_lookup(user_maps, name, &value);
        if (rc == 1 && (value.data == NULL
                        || virtual_parse(value.data, u) < 0)) {
            /* a broken entry is the admin's mistake: defer, don't bounce */
            log_warning("virtual_user_maps: malformed entry for %s "
                        "(want uid:gid:/home[:...])", name);
            rc = -1;
        }
        buf_free(&value);
        if (rc != 0)
            return rc;
    }
    return passwd_user(name, u);
}

bool mailuser_domain_is_local(const char *domain)
{
    size_t dlen = strlen(domain);
    if (dlen > 0 && domain[dlen - 1] == '.')
        dlen--;   /* "example.com." is example.com */
    if (dlen == 0 || var_mydestination == NULL)
        return false;
    char **names;
    size_t n = str_split_list(var_mydestination, &names);
    bool found = false;
    for (size_t i = 0; i < n && !found; i++)
        found = strlen(names[i]) == dlen
            && strncasecmp(names[i], domain, dlen) == 0;
    strv_free(names, n);
    return found;
}

/* keeps_delimiter - Postfix's owner-list / list-request convention, when
   '-' is a delimiter: those names are not "list" plus an extension */
static bool keeps_delimiter(const char *local, size_t len)
{
    return (len > 6 && strncasecmp(local, "owner-", 6) == 0)
        || (len > 8 && strcasecmp(local + len - 8, "-request") == 0);
}

void mailuser_base_local(const char *local, char *out, size_t size)
{
    if (size == 0)
        return;
    const char *delims = var_recipient_delimiter ? var_recipient_delimiter
                                                 : "";
    size_t len = strlen(local);
    size_t base = len;
    /* from index 1: a leading delimiter is part of the name */
    if (len > 1 && *delims
        && !(strchr(delims, '-') && keeps_delimiter(local, len))) {
        size_t at = 1 + strcspn(local + 1, delims);
        if (at < len)
            base = at;
    }
    if (base >= size)
        base = size - 1;
    memcpy(out, local, base);
    out[base] = '\0';
    for (char *p = out; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
}

/* alias_exists - full local part, then its base: 1, 0, -1 */
static int alias_exists(const char *full, const char *base)
{
    if (alias_maps == NULL)
        return 0;
    buf_t value;
    buf_init(&value, 0);
    int rc = maps_lookup(alias_maps, full, &value);
    if (rc == 0 && strcmp(full, base) != 0)
        rc = maps_lookup(alias_maps, base, &value);
    buf_free(&value);
    return rc;
}

int mailuser_local_exists(const char *local)
{
    char base[256], full[256];
    if (*local == '\0' || str_copy(full, local, sizeof(full)) >= sizeof(full))
        return 0;
    for (char *p = full; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    mailuser_base_local(local, base, sizeof(base));
    int rc = alias_exists(full, base);
    if (rc != 0)
        return rc;
    struct mail_user u;
    return mailuser_lookup(base, &u);
}
