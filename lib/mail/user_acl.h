/*
 * user_acl - who may use a queue tool: $authorized_mailq_users and
 * $authorized_flush_users, lists of words (Postfix's names and default,
 * "static:anyone"):
 *   NAME or a numeric UID   that user
 *   !NAME, !UID             not that user (the first match decides)
 *   static:ANYTHING         everyone (a static table matches every key)
 * Any other TYPE:NAME table is not supported: it matches nobody, and
 * user_acl_compile says so in *err. root and $mail_owner are always
 * allowed (they can read the queue files anyway).
 *
 * Names are resolved to uids when the list is compiled, so a chrooted
 * daemon (showq) compiles it in pre_init, before the chroot, and then
 * checks a peer's SO_PEERCRED uid without the password database. An
 * unknown name matches nobody (and is reported in *err).
 */
#ifndef TERN_USER_ACL_H
#define TERN_USER_ACL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
#include "util/buf.h"

struct user_acl_item {
    bool negate;
    bool anyone;
    bool none;          /* an unknown name or unsupported table */
    uid_t uid;
};

struct user_acl {
    struct user_acl_item *v;
    size_t n;
    uid_t owner_uid;    /* $mail_owner, or (uid_t)-1 when unknown */
};

/* 0 ok; -1 a malformed list (unbalanced braces); warnings (unknown
   user, unsupported table) are appended to err, one per line */
int user_acl_compile(const char *list, const char *mail_owner,
                     struct user_acl *acl, buf_t *err);
bool user_acl_allows(const struct user_acl *acl, uid_t uid);
void user_acl_free(struct user_acl *acl);

#endif
