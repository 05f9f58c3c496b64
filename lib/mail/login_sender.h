/*
 * login_sender - which envelope senders a local user may use on
 * submission (sendmail -f, -bs MAIL FROM): $local_login_sender_maps, with
 * Postfix 3.6's names and semantics.
 *
 * The tables are searched by the submitter's login name (the name of the
 * real uid in the password database; a uid without an entry is looked
 * up as "uid:N"). The value is a list of sender patterns separated by
 * commas or blanks:
 *   *          any sender, the null sender too
 *   <>         the null sender ($empty_address_local_login_sender_maps_lookup_key
 *              is the pattern that stands for it; "<>" by default)
 *   @domain    any address in domain (the domain part must be equal)
 *   address    that address; a bare login such as "alice" (what sendmail
 *              writes without -f) must be listed as such
 * Comparison ignores case and the sender's address extension (from the
 * first $recipient_delimiter character in the local part to the '@').
 * A login the tables do not know may use no sender at all. There is no
 * built-in exception for root or $mail_owner, as in Postfix: the
 * default "static:*" allows everyone everything, and a restrictive
 * table lists them ("inline:{root = *, tern = *}, lmdb:...").
 *
 * Enforced twice: by postdrop (the user sees why, exit 77) and again by
 * pickup on the file's owner uid (a file that fails goes to corrupt/).
 */
#ifndef TERN_LOGIN_SENDER_H
#define TERN_LOGIN_SENDER_H

#include <stdbool.h>
#include <sys/types.h>
#include "mail/dict.h"
#include "util/buf.h"

/* login_sender_match - does the pattern list allow sender ("" = the null
   sender)? null_key: the pattern of the null sender; delims: the
   recipient delimiter characters (NULL or "" for none) */
bool login_sender_match(const char *patterns, const char *sender,
                        const char *null_key, const char *delims);

/* login_sender_key - the lookup key of uid: name when it has one, else
   "uid:N" (into out, reset first) */
void login_sender_key(uid_t uid, const char *name, buf_t *out);

/* login_sender_check - look key up in maps and match sender against the
   patterns ($empty_address_local_login_sender_maps_lookup_key and
   $recipient_delimiter from the configuration): 1 allowed, 0 refused
   (also when the key is not in the tables), -1 a table failed (try
   again later) */
int login_sender_check(maps_t *maps, const char *key, const char *sender);

#endif
