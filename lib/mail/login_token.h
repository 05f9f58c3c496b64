/*
 * login_token - auth(8)'s proof, to a mail-side process (pop3d; imapd
 * later), that a user has just logged in through a login process.
 *
 * Why: a login process (pop3-login, as $login_user) hands a connection
 * to the mail side with the claim "this is USER". A compromised login
 * process could claim any user, so the mail side (started as root, it
 * becomes the user) believes only what auth signed: the token auth puts
 * in its ok reply for service pop3 (or imap) is checked by the mail side
 * with the same key before it takes the user's identity.
 *
 * Token text (fits an attribute value, no spaces):
 *   "1." EXPIRY "." NONCE "." MAC
 * EXPIRY: unix time in decimal, issue time + LOGIN_TOKEN_LIFETIME;
 * NONCE: 16 random bytes as 32 lowercase hex digits;
 * MAC: HMAC-SHA256(key, "1" NUL service NUL user NUL EXPIRY NUL NONCE)
 *   as 64 lowercase hex digits, compared in constant time.
 * A token names one service and one user; it is not single-use (a login
 * process that holds it already knew that user's credentials), and it
 * dies after LOGIN_TOKEN_LIFETIME seconds.
 *
 * Key: $data_directory/login_token.key, LOGIN_TOKEN_KEY_SIZE random
 * bytes, made by the first process that needs it (auth or pop3d) under
 * an flock on $data_directory/login_token.lock, written to a temporary
 * name, fsync'd and renamed. Same rules as smtpd's ticket key: the
 * directory must be ours (euid) and not writable by group or others
 * (made 0700 when missing), the file is opened O_NOFOLLOW and must be a
 * regular file of ours, mode 0600, of exactly the key size; anything
 * else is refused (logged) and the caller fails. Load it in pre_init, as
 * root, before any privilege drop; it stays in memory only.
 */
#ifndef TERN_LOGIN_TOKEN_H
#define TERN_LOGIN_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define LOGIN_TOKEN_MAX       160   /* longest token text, without NUL */
#define LOGIN_TOKEN_LIFETIME  30    /* seconds */
#define LOGIN_TOKEN_KEY_SIZE  32
#define LOGIN_TOKEN_KEY_FILE  "login_token.key"
#define LOGIN_TOKEN_LOCK_FILE "login_token.lock"

/* load (or make) the key from dir (normally var_data_directory);
   0 ok, -1 error (logged with the reason) */
int login_token_key_load(const char *dir);
/* for tests: use this key instead of a file */
void login_token_key_set(const unsigned char *key, size_t len);
/* forget the key (explicit_bzero) */
void login_token_key_wipe(void);

/* a token for (service, user), valid from now for LOGIN_TOKEN_LIFETIME;
   out has room for LOGIN_TOKEN_MAX + 1; 0 ok, -1 no key or bad input */
int login_token_make(const char *service, const char *user, time_t now,
                     char *out, size_t size);
/* is token what login_token_make made for (service, user), and is now
   before its expiry (and not more than LOGIN_TOKEN_LIFETIME + 60 s
   earlier than the time it was made, against clock jumps)? Any malformed
   token is simply false. */
bool login_token_check(const char *service, const char *user,
                       const char *token, time_t now);

#endif
