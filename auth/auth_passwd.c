/*
 * auth_passwd - where auth(8) finds password hashes and how it checks
 * them.
 *
 * Backends, in order: $virtual_password_maps (key: the user name,
 * looked up lowercased; value: a crypt(3) hash, yescrypt "$y$" or
 * SHA-512-crypt "$6$", optionally followed by blanks and the user's
 * SCRAM-SHA-256 secrets "scram-sha-256:..." as ternuser(1) writes them;
 * PLAIN and LOGIN use the first word only), then, when $auth_system_users is set and the
 * process runs as root, the system users (getpwnam_r, the hash from
 * getspnam_r). A user found in the virtual table is checked against that
 * entry only. System users with uid 0, locked or empty hashes ("!",
 * "*", "") and hashes not in the "$id$" form (traditional DES) never
 * authenticate. A name "user@domain" whose domain is one of
 * $mydestination is looked up as "user" (a mail client's login is often
 * the address); other domains are looked up whole.
 *
 * Security: every failure path costs one crypt(3): a user that does not
 * exist (or cannot log in) is checked against a dummy hash made at start
 * with the preferred method, so timing does not tell which names exist.
 * The computed hash is compared in constant time. Password copies made
 * here (crypt_data) are wiped after each check.
 *
 * SCRAM-SHA-256 uses the virtual table only: the secrets are the word
 * "scram-sha-256:..." after the hash. A user without them, an unknown
 * user and a system user get fake secrets derived from the name with a
 * random key made at start: the salt and iterations an attacker sees
 * are stable and plausible, and the proof then fails like a wrong
 * password. The key is shared by every auth process of the system
 * ($data_directory/auth_scram.key, 32 random bytes made at first start
 * under a lock, root-only, never rotated: a new key would change every
 * fake salt at once while real ones stay); without it (a file or
 * directory that is not safely ours) each process makes its own and
 * logs a warning, and an unknown name's fake salt may then differ
 * between connections.
 */
#include <crypt.h>
#include <ctype.h>
#include <errno.h>
#include <pwd.h>
#include <shadow.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "mail/config.h"
#include "mail/dict.h"
#include "mail/mailuser.h"
#include <openssl/rand.h>

#include "util/buf.h"
#include "util/keyfile.h"
#include "util/log.h"
#include "util/privs.h"
#include "util/util.h"

#define AUTH_SCRAM_KEY_FILE "auth_scram.key"

#define AUTH_DUMMY_SECRET "tern-auth-dummy-secret"
#define AUTH_PWBUF 16384

static maps_t *auth_virtual_maps;
static bool auth_system_on;
static char auth_dummy_hash[CRYPT_OUTPUT_SIZE];
static struct crypt_data auth_crypt_data;
static unsigned char auth_scram_key[32];

/* auth_scram_key_load - the shared key, made if missing (util/keyfile.h:
   a file that is not safely ours is refused, never replaced); false
   (with *why_r) when it cannot be used */
static bool auth_scram_key_load(const char **why_r)
{
    static const struct keyfile_spec spec = {
        .size = sizeof(auth_scram_key), .max_age = 0, .keep = 0,
        .strict = true, .dir_label = "data_directory",
    };
    int r = keyfile_load(var_data_directory, AUTH_SCRAM_KEY_FILE,
                         AUTH_SCRAM_KEY_FILE ".lock", &spec, auth_scram_key,
                         why_r);

    if (r == 2)
        log_info("new SCRAM key for unknown users in %s/%s",
                 var_data_directory, AUTH_SCRAM_KEY_FILE);
    return r > 0;
}

/* auth_passwd_init - tables, system backend, dummy hash */
int auth_passwd_init(void)
{
    const char *err = NULL;
    char salt[CRYPT_GENSALT_OUTPUT_SIZE];
    const char *hash;

    auth_virtual_maps = maps_open_missing_ok(var_virtual_password_maps, &err);
    if (auth_virtual_maps == NULL) {
        log_warning("virtual_password_maps %s: %s", var_virtual_password_maps,
                    err ? err : "open failed");
        return -1;
    }
    auth_system_on = var_auth_system_users && privs_running_as_root();
    if (var_auth_system_users && !auth_system_on)
        log_info("not running as root: system users cannot authenticate "
                 "(auth_system_users needs the shadow file)");
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, salt, sizeof(salt)) == NULL
        && crypt_gensalt_rn("$6$", 0, NULL, 0, salt, sizeof(salt)) == NULL) {
        log_warning("crypt_gensalt: %m");
        return -1;
    }
    if (!auth_scram_key_load(&err)) {
        log_warning("SCRAM key %s/%s: %s; the fake SCRAM salts of unknown "
                    "users are per process", var_data_directory,
                    AUTH_SCRAM_KEY_FILE, err ? err : "unknown error");
        if (RAND_bytes(auth_scram_key, sizeof(auth_scram_key)) != 1) {
            log_warning("RAND_bytes failed: cannot make the SCRAM key");
            return -1;
        }
    }
    memset(&auth_crypt_data, 0, sizeof(auth_crypt_data));
    hash = crypt_r(AUTH_DUMMY_SECRET, salt, &auth_crypt_data);
    if (hash == NULL || hash[0] == '*'
        || snprintf(auth_dummy_hash, sizeof(auth_dummy_hash), "%s", hash)
               >= (int)sizeof(auth_dummy_hash)) {
        log_warning("crypt: cannot make the dummy hash");
        return -1;
    }
    return 0;
}

/* auth_equal - constant-time string comparison (time depends on the
   length of a only: the computed hash) */
static bool auth_equal(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    unsigned char d = la != lb;

    for (size_t i = 0; i < la; i++)
        d |= (unsigned char)a[i] ^ (unsigned char)(i < lb ? b[i] : 0);
    return d == 0;
}

/* auth_verify - does password hash to stored? Only "$id$..." hashes
   are used (no traditional DES: a table value like "secret" must not
   become a DES salt); anything else, and a hash crypt(3) cannot use,
   costs a dummy crypt and fails. Locked ("!", "*") and empty hashes
   fail quietly, the rest with a warning. */
static bool auth_verify(const char *password, const char *stored)
{
    bool mcf = stored[0] == '$';
    bool locked = stored[0] == '\0' || stored[0] == '!' || stored[0] == '*';
    const char *out;
    bool ok;

    if (!mcf && !locked)
        log_warning("unusable password hash (not a $id$ crypt(3) hash)");
    out = crypt_r(password, mcf ? stored : auth_dummy_hash, &auth_crypt_data);
    if (mcf && (out == NULL || out[0] == '*')) {
        log_warning("unusable password hash (method not supported?)");
        out = crypt_r(password, auth_dummy_hash, &auth_crypt_data);
        mcf = false;
    }
    ok = mcf && out != NULL && auth_equal(out, stored);
    explicit_bzero(&auth_crypt_data, sizeof(auth_crypt_data));
    return ok;
}

/* auth_lower - lowercased copy; false when it does not fit */
static bool auth_lower(const char *s, char *out, size_t size)
{
    size_t n = strlen(s);

    if (n >= size)
        return false;
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)s[i]);
    return true;
}

/* auth_check_virtual - 1 decided (*st set), 0 not in the table */
static int auth_check_virtual(const char *user, const char *password,
                              char *canon, size_t size, enum auth_status *st,
                              const char **reason_r)
{
    buf_t value = BUF_INIT;
    int r = maps_lookup(auth_virtual_maps, user, &value);

    if (r < 0) {
        *st = AUTH_STATUS_TEMPFAIL;
        *reason_r = "password table lookup failed";
    } else if (r > 0) {
        /* the hash is the value's first word (SCRAM secrets may follow);
           surrounding blanks are not part of it */
        char empty[1] = "";
        char *h = value.data != NULL ? value.data : empty;
        size_t n = 0;

        while (*h && isspace((unsigned char)*h))
            h++;
        while (h[n] != '\0' && !isspace((unsigned char)h[n]))
            n++;
        h[n] = '\0';
        if (auth_verify(password, h) && auth_lower(user, canon, size)) {
            *st = AUTH_STATUS_OK;
            *reason_r = "authenticated";
        } else {
            *st = AUTH_STATUS_FAIL;
            *reason_r = AUTH_REASON_FAILURE;
        }
    }
    buf_free(&value);
    return r != 0;
}

/* auth_check_system - 1 decided (*st set), 0 no such (usable) user */
static int auth_check_system(const char *user, const char *password,
                             char *canon, size_t size, enum auth_status *st,
                             const char **reason_r)
{
    static char pwbuf[AUTH_PWBUF], spbuf[AUTH_PWBUF];
    struct passwd pw, *pwp = NULL;
    struct spwd sp, *spp = NULL;
    const char *hash;
    int e;

    e = getpwnam_r(user, &pw, pwbuf, sizeof(pwbuf), &pwp);
    if (e != 0 && e != ENOENT && e != ESRCH && e != EBADF && e != EPERM) {
        *st = AUTH_STATUS_TEMPFAIL;
        *reason_r = "system user lookup failed";
        return 1;
    }
    if (pwp == NULL || pw.pw_uid == 0)
        return 0;
    hash = pw.pw_passwd;
    if (strcmp(hash, "x") == 0) {
        e = getspnam_r(user, &sp, spbuf, sizeof(spbuf), &spp);
        if (spp == NULL && e != 0 && e != ENOENT) {
            *st = AUTH_STATUS_TEMPFAIL;
            *reason_r = "shadow lookup failed";
            return 1;
        }
        hash = spp ? sp.sp_pwdp : "*";
    }
    if (auth_verify(password, hash)
        && snprintf(canon, size, "%s", pw.pw_name) < (int)size) {
        *st = AUTH_STATUS_OK;
        *reason_r = "authenticated";
    } else {
        *st = AUTH_STATUS_FAIL;
        *reason_r = AUTH_REASON_FAILURE;
    }
    explicit_bzero(spbuf, sizeof(spbuf));
    return 1;
}

/* auth_local_name - "user@local.domain" as "user" (in local) */
static const char *auth_local_name(const char *user, char *local,
                                   size_t size)
{
    const char *at = strrchr(user, '@');

    if (at != NULL && at != user && mailuser_domain_is_local(at + 1)
        && (size_t)(at - user) < size) {
        memcpy(local, user, (size_t)(at - user));
        local[at - user] = '\0';
        return local;
    }
    return user;
}

/* auth_passwd_check - the backends in order; unknown costs a dummy crypt */
enum auth_status auth_passwd_check(const char *user, const char *password,
                                   char *canon, size_t size,
                                   const char **reason_r)
{
    enum auth_status st = AUTH_STATUS_FAIL;
    char local[AUTH_FIELD_MAX + 1];

    canon[0] = '\0';
    user = auth_local_name(user, local, sizeof(local));
    if (auth_check_virtual(user, password, canon, size, &st, reason_r))
        return st;
    if (auth_system_on
        && auth_check_system(user, password, canon, size, &st, reason_r))
        return st;
    (void)auth_verify(password, auth_dummy_hash);
    canon[0] = '\0';
    *reason_r = AUTH_REASON_FAILURE;
    return AUTH_STATUS_FAIL;
}

/* auth_scram_word - the "scram-sha-256:..." word of a table value */
static bool auth_scram_word(const char *v, struct scram_secrets *sec)
{
    const char *err = NULL;

    while (*v) {
        size_t n;

        while (*v && isspace((unsigned char)*v))
            v++;
        n = 0;
        while (v[n] && !isspace((unsigned char)v[n]))
            n++;
        if (n > strlen(SCRAM_PREFIX)
            && memcmp(v, SCRAM_PREFIX, strlen(SCRAM_PREFIX)) == 0) {
            if (scram_secrets_parse(v, n, sec, &err) == 0)
                return true;
            log_warning("unusable SCRAM-SHA-256 secrets in the password "
                        "table: %s", err);
            return false;
        }
        v += n;
    }
    return false;
}

/* auth_passwd_scram - stored secrets, or fake ones */
enum auth_status auth_passwd_scram(const char *user, struct scram_secrets *sec,
                                   char *canon, size_t size,
                                   const char **reason_r)
{
    char local[AUTH_FIELD_MAX + 1];
    buf_t value = BUF_INIT;
    enum auth_status st = AUTH_STATUS_FAIL;
    const char *name = auth_local_name(user, local, sizeof(local));
    int r;

    canon[0] = '\0';
    *reason_r = AUTH_REASON_FAILURE;
    r = maps_lookup(auth_virtual_maps, name, &value);
    if (r < 0) {
        *reason_r = "password table lookup failed";
        buf_free(&value);
        return AUTH_STATUS_TEMPFAIL;
    }
    if (r > 0 && value.data != NULL && auth_scram_word(value.data, sec)
        && auth_lower(name, canon, size)) {
        st = AUTH_STATUS_OK;
        *reason_r = "found";
    } else {
        canon[0] = '\0';
        if (scram_secrets_fake(name, auth_scram_key, sizeof(auth_scram_key),
                               sec) < 0) {
            *reason_r = "cannot make SCRAM secrets";
            st = AUTH_STATUS_TEMPFAIL;
        }
    }
    if (value.data != NULL)
        explicit_bzero(value.data, value.len);
    buf_free(&value);
    return st;
}
