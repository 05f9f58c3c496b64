/*
 * proxymap - table lookups for daemons that cannot open the tables
 * themselves: chrooted smtpd and qmgr (their proxy: tables, dict_proxy.h)
 * send proxy_proto.h requests over private/proxymap, one reply each, on
 * a connection they keep.
 *
 *   request=lookup table=TYPE:NAME key=K   the table must be one of
 *       $proxy_read_maps (a "proxy:" prefix there is ignored; so are
 *       words that are not TYPE:NAME, as restriction lists and domain
 *       lists named there hold them); anything
 *       else is refused (status=denied) and logged: a request is a
 *       claim, and a compromised smtpd must not read arbitrary files
 *       through us. Tables are opened at their first request and kept;
 *       lmdb: tables notice a replaced file as they do everywhere.
 *   request=local_user key=NAME   getpwnam(NAME) -> "uid:gid:home"
 *       (what mailuser needs to call NAME a local recipient).
 *   request=local_login key=UID   getpwuid(UID) -> the login name
 *       (pickup's $local_login_sender_maps key for a file's owner).
 *
 * Privileges (master.conf: unpriv=y, chroot=n): runs as $mail_owner
 * outside the chroot, so it sees what that user may read and nothing
 * more: the tables smtpd itself could read before the chroot. Password
 * hashes ($virtual_password_maps, root-only) stay out of its reach and
 * must never be listed in $proxy_read_maps.
 *
 * One client at a time per process (request server); a client that
 * stays silent for PROXYMAP_IDLE_SEC is disconnected so an idle smtpd
 * does not hold a proxymap process (its next lookup reconnects).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_proxy.h"
#include "mail/proxy_proto.h"
#include "mail/server.h"
#include "util/attr.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define PROXYMAP_IDLE_SEC 10

struct proxymap_table {
    char *spec;
    maps_t *maps;           /* NULL until the first request */
};

static struct proxymap_table *tables;
static size_t ntables;

/* proxymap_allow - parse $proxy_read_maps into the allowed tables */
static void proxymap_allow(const char *list)
{
    const char *s = list ? list : "";
    long len;

    while ((len = str_list_next_word(&s)) > 0) {
        char *spec = xstrndup(s, (size_t)len);
        const char *name = spec;

        s += len;
        while (strncmp(name, "proxy:", 6) == 0)
            name += 6;
        bool dup = false;
        for (size_t i = 0; i < ntables && !dup; i++)
            dup = strcmp(tables[i].spec, name) == 0;
        /* restriction lists also hold words (permit_mynetworks) and
           domain lists plain names: only TYPE:NAME is a table */
        if (!dup && *name && strchr(name, ':') != NULL) {
            tables = xrealloc(tables, (ntables + 1) * sizeof(*tables));
            tables[ntables].spec = xstrdup(name);
            tables[ntables].maps = NULL;
            ntables++;
        }
        free(spec);
    }
    if (len < 0)
        log_fatal("proxy_read_maps: unbalanced braces");
}

/* proxymap_find - the allowed table named spec, or NULL */
static struct proxymap_table *proxymap_find(const char *spec)
{
    for (size_t i = 0; i < ntables; i++)
        if (strcmp(tables[i].spec, spec) == 0)
            return &tables[i];
    return NULL;
}

static void proxymap_pre_init(const char *service, char **args, int nargs)
{
    (void)service;
    (void)args;
    (void)nargs;
    if (dict_proxy_all())       /* chroot=y: it would ask itself */
        log_fatal("proxymap cannot run chrooted (master.conf chroot=n)");
    proxymap_allow(var_proxy_read_maps);
}

static void proxymap_pre_exit(void)
{
    for (size_t i = 0; i < ntables; i++) {
        maps_close(tables[i].maps);
        free(tables[i].spec);
    }
    free(tables);
    tables = NULL;
    ntables = 0;
}

/* proxymap_lookup - one table lookup */
static enum proxy_status proxymap_lookup(const struct proxy_request *rq,
                                         struct proxy_reply *rp)
{
    struct proxymap_table *t = proxymap_find(rq->table);
    buf_t value;
    int rc;

    if (t == NULL) {
        log_warning("request for table %s, which is not in "
                    "proxy_read_maps: refused", rq->table);
        return PROXY_STATUS_DENIED;
    }
    if (t->maps == NULL) {
        const char *why;

        /* missing_ok: a table not built yet fails temporarily */
        if ((t->maps = maps_open_missing_ok(t->spec, &why)) == NULL) {
            log_warning("%s", why);
            return PROXY_STATUS_TEMPFAIL;
        }
    }
    buf_init(&value, PROXY_VALUE_MAX + 1);
    rc = maps_lookup(t->maps, rq->key, &value);
    if (rc == 1 && value.len > PROXY_VALUE_MAX) {
        log_warning("%s: value for %s too large", t->spec, rq->key);
        rc = -1;
    }
    if (rc == 1)
        (void)str_copy(rp->value, value.data ? buf_str(&value) : "",
                       sizeof(rp->value));
    buf_free(&value);
    return rc == 1 ? PROXY_STATUS_FOUND
         : rc == 0 ? PROXY_STATUS_NOTFOUND : PROXY_STATUS_TEMPFAIL;
}

/* proxymap_local_user - the system password database, through the
   process's account cache (util/privs.h: found answers kept 60 s,
   "no such user" 10 s): every RCPT of every smtpd asks */
static enum proxy_status proxymap_local_user(const struct proxy_request *rq,
                                             struct proxy_reply *rp)
{
    struct privs_account a;
    int rc = privs_account_by_name(rq->key, &a);
    int n;

    if (rc < 0) {
        log_warning("getpwnam_r %s: %s", rq->key, strerror(errno));
        return PROXY_STATUS_TEMPFAIL;
    }
    if (rc == 0)
        return PROXY_STATUS_NOTFOUND;
    n = snprintf(rp->value, sizeof(rp->value), "%lu:%lu:%s",
                 (unsigned long)a.uid, (unsigned long)a.gid, a.home);
    if (n < 0 || (size_t)n >= sizeof(rp->value)) {
        log_warning("home directory of %s too long", rq->key);
        return PROXY_STATUS_TEMPFAIL;
    }
    return PROXY_STATUS_FOUND;
}

/* proxymap_local_login - the login name of a uid, through the cache */
static enum proxy_status proxymap_local_login(const struct proxy_request *rq,
                                              struct proxy_reply *rp)
{
    struct privs_account a;
    unsigned long uid;
    char *end;
    int rc;

    errno = 0;
    uid = strtoul(rq->key, &end, 10);   /* decoding checked the digits */
    if (errno != 0 || *end != '\0' || (unsigned long)(uid_t)uid != uid)
        return PROXY_STATUS_NOTFOUND;
    rc = privs_account_by_uid((uid_t)uid, &a);
    if (rc < 0) {
        log_warning("getpwuid_r %s: %s", rq->key, strerror(errno));
        return PROXY_STATUS_TEMPFAIL;
    }
    if (rc == 0)
        return PROXY_STATUS_NOTFOUND;
    (void)str_copy(rp->value, a.name, sizeof(rp->value));
    return PROXY_STATUS_FOUND;
}

/* proxymap_handle - one request: decode, look up, encode the reply */
static int proxymap_handle(attr_list_t *req, attr_list_t *reply, void *ctx)
{
    struct proxy_request rq;
    struct proxy_reply rp;
    const char *err = NULL;

    (void)ctx;
    if (proxy_request_decode(req, &rq, &err) < 0) {
        log_warning("proxymap client: malformed request: %s: dropping "
                    "the connection", err);
        return -1;
    }
    memset(&rp, 0, sizeof(rp));
    rp.status = rq.type == PROXY_REQ_LOOKUP ? proxymap_lookup(&rq, &rp)
              : rq.type == PROXY_REQ_LOCAL_USER ? proxymap_local_user(&rq, &rp)
              : proxymap_local_login(&rq, &rp);
    if (rp.status != PROXY_STATUS_FOUND)
        rp.value[0] = '\0';
    if (proxy_reply_encode(&rp, reply, &err) < 0)
        log_panic("proxymap reply: %s", err);
    return 0;
}

/* proxymap_serve - requests from one client until it closes, idles or
   misbehaves */
static void proxymap_serve(int fd)
{
    server_attr_serve(fd, "proxymap", PROXYMAP_IDLE_SEC, false,
                      proxymap_handle, NULL);
}

int main(int argc, char **argv)
{
    static const struct server_ops ops = {
        .pre_init = proxymap_pre_init,
        .pre_exit = proxymap_pre_exit,
        .on_request_conn = proxymap_serve,
    };
    return request_server_main(argc, argv, &ops);
}
