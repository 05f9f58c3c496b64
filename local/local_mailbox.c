/*
 * local_mailbox - where a user's own mail goes: $home_mailbox or
 * $mail_spool_directory (local.h).
 */
#include "local.h"

void local_mailbox(const struct local_request *r, const struct mail_user *u,
                   struct local_result *res)
{
    local_maildir(r, u->name, u->uid, u->gid, u->home, res);
}
