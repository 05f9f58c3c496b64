/*
 * auth.h - the password backends of auth(8) (auth_passwd.c), used by
 * the protocol side (auth.c).
 */
#ifndef TERN_AUTH_AUTH_H
#define TERN_AUTH_AUTH_H

#include <stddef.h>
#include "mail/auth_proto.h"

/* open the tables, decide on the system backend, prepare the dummy
   hash; as root, before anything else. 0 ok, -1 fatal (logged) */
int auth_passwd_init(void);
/*
 * Check user/password. AUTH_STATUS_OK: canon (size bytes) holds the
 * canonical name. FAIL: wrong password, unknown, locked or refused user,
 * all alike (*reason_r is the same text). TEMPFAIL: a table or system
 * error (*reason_r says which, for logs).
 */
enum auth_status auth_passwd_check(const char *user, const char *password,
                                   char *canon, size_t size,
                                   const char **reason_r);

/*
 * The SCRAM-SHA-256 secrets of user (same name rules as above).
 * AUTH_STATUS_OK: *sec holds the stored ones, canon the canonical name.
 * FAIL: the user is unknown, has no (usable) SCRAM secrets or is a
 * system user: *sec holds fake ones (util/scram.h scram_secrets_fake
 * with a per-process key) that no proof matches. TEMPFAIL: a table error.
 */
enum auth_status auth_passwd_scram(const char *user, struct scram_secrets *sec,
                                   char *canon, size_t size,
                                   const char **reason_r);

#define AUTH_REASON_FAILURE "authentication failure"

#endif
