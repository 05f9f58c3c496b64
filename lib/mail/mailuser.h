/*
 * mailuser - who a local recipient is, and whether an address is ours.
 *
 * A local user is found in virtual_user_maps first (value
 * "uid:gid:home[:password-hash]", the table ternuser will manage), then
 * in the system password database (getpwnam, cached per process for at
 * most PRIVS_CACHE_LIFETIME seconds, "no such user" for
 * PRIVS_CACHE_NEG_LIFETIME: lib/util/privs.h). Local domains are
 * $mydestination (names, or $myhostname style expansions already done by
 * config). recipient_delimiter ("+") splits "user+ext".
 *
 * Chrooted daemons (smtpd, qmgr with master.conf chroot=y) cannot see
 * the tables or /etc/passwd: there, automatically (server.c sets
 * dict_proxy_set_all before pre_init), every lmdb: table and the
 * password database are looked up through proxymap(8), so a table that
 * ternmap replaces is seen at once and NSS works as outside. Nothing in
 * main.conf needs "proxy:" for that (it may still be written, as in
 * Postfix); static: and inline: tables stay in the process.
 */
#ifndef TERN_MAILUSER_H
#define TERN_MAILUSER_H

#include <stdbool.h>
#include <sys/types.h>

struct mail_user {
    char name[256];
    uid_t uid;
    gid_t gid;
    char home[4096];
};

/* open the tables named by the config (call after config_load, before
   chroot); 0 ok, -1 fatal config problem (logged) */
int mailuser_init(void);
/* close the tables (unmapping them): before a process that looked a
   user up becomes that user (pop3d), so it cannot read the others */
void mailuser_close(void);
/* 1 found, 0 no such user, -1 temporary error */
int mailuser_lookup(const char *name, struct mail_user *u);
/* domain (any case) is listed in $mydestination */
bool mailuser_domain_is_local(const char *domain);
/* local-part minus "+extension" (per recipient_delimiter), lowercased,
   into out (size bytes) */
void mailuser_base_local(const char *local, char *out, size_t size);
/*
 * Would local delivery accept this local part? Checks alias_maps, then
 * mailuser_lookup of the base name. 1 yes, 0 unknown user, -1 temporary
 * error.
 */
int mailuser_local_exists(const char *local);

#endif
