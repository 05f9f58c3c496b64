/*
 * dict_proxy - the proxy: table type: lookups done by proxymap(8) over
 * private/proxymap, for daemons that cannot open a table themselves
 * (chrooted: the file is outside the jail, and a replaced lmdb file
 * could not be reopened there).
 *
 *   proxy:lmdb:/etc/tern/aliases    explicit, as in Postfix
 *   lmdb:/etc/tern/aliases          the same, in a process that called
 *                                   dict_proxy_set_all(true) (server.c
 *                                   does, before pre_init, when the
 *                                   daemon will chroot)
 *
 * Lookups are synchronous, as Postfix's proxymap clients are: a lookup
 * blocks the caller for at most $proxymap_timeout (then it fails
 * temporarily, -1). That is acceptable only because this is local IPC
 * to a process that answers from memory-mapped tables or the password
 * database; it must never be used for anything that waits on the
 * network. One connection per process is shared by every proxy table;
 * it is opened at the first lookup (proxymap need not run when tables
 * are opened) and reopened once when proxymap closed it (idle, restart).
 * The table must be listed in proxymap's $proxy_read_maps; a refused
 * table is a temporary failure, logged by both sides.
 */
#ifndef TERN_DICT_PROXY_H
#define TERN_DICT_PROXY_H

#include <stdbool.h>
#include "util/buf.h"

#define DICT_PROXY_SOCKET "private/proxymap"

struct dict_proxy;

/* spec: the table as proxymap opens it ("lmdb:/path"); NULL with
   *error_r for a malformed spec (no connection is made here) */
struct dict_proxy *dict_proxy_open(const char *spec, const char **error_r);
/* as dict_lookup: 1 found, 0 not found, -1 temporary failure */
int dict_proxy_lookup(struct dict_proxy *p, const char *key, buf_t *value);
void dict_proxy_close(struct dict_proxy *p);

/* The system password database, read by proxymap: 1 found with
   "uid:gid:home" in *value, 0 no such user, -1 temporary failure. */
int dict_proxy_local_user(const char *name, buf_t *value);

/* The login name of uid in the system password database, read by
   proxymap: 1 found (name in *value), 0 no such uid, -1 temporary failure. */
int dict_proxy_local_login(unsigned long uid, buf_t *value);

/* From now on every lmdb: table this process opens goes through
   proxymap (dict.c asks dict_proxy_all()). */
void dict_proxy_set_all(bool on);
bool dict_proxy_all(void);
/* The socket path (relative to the queue directory); NULL restores
   DICT_PROXY_SOCKET. Tests. Closes the current connection. */
void dict_proxy_set_socket(const char *path);

#endif
