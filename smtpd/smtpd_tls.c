/*
 * smtpd_tls - smtpd's TLS policy: the server context, STARTTLS (RFC 3207)
 * and smtpd_tls_security_level. The handshake itself and what happens
 * after it (log line, forgetting the session state) are in smtpd.c with
 * the rest of the session's life; the TLS layer is lib/util/stream.h.
 *
 *   none     STARTTLS is neither offered nor accepted (502)
 *   may      offered when a certificate is configured and loads
 *   encrypt  offered likewise; MAIL, RCPT, DATA and VRFY are refused
 *            (530 5.7.0) until the session is encrypted
 *
 * smtpd_tls_wrappermode (a per-service -o, port 465) starts TLS at
 * connect instead.
 *
 * Everything is prepared in pre_init: the protocol range and cipher
 * grade (the mandatory_ variants at level encrypt), the default
 * certificate (smtpd_tls_chain_files, else cert_file/key_file), one
 * context per tls_server_sni_maps entry with the same settings, the
 * session ticket keys shared by all smtpd processes (data_directory,
 * see smtpd_tls_ticket_keys) and, with smtpd_tls_ask_ccert/req_ccert,
 * client certificate requests verified against smtpd_tls_CAfile. After
 * the handshake smtpd_tls_accepted logs Postfix's line and keeps the
 * client certificate's fingerprint in the session.
 *
 * Security: the certificates, keys, the SNI table with all its files and
 * the ticket keys are read in pre_init, as root before the privilege drop
 * (and any chroot), so key files may be root's 0600. Input the
 * client pipelined after STARTTLS is never executed: it is refused with
 * 554 when smtpd_forbid_unauth_pipelining is on, and thrown away by the
 * stream's STARTTLS barrier in any case (CVE-2011-0411).
 */
#include "smtpd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mail/config.h"
#include "mail/dict.h"
#include "mail/dict_proxy.h"
#include "mail/tls_server.h"
#include "util/keyfile.h"
#include "util/log.h"
#include "util/tls.h"
#include "util/util.h"

#define SMTPD_TICKET_FILE "smtpd_tls_ticket.key"
#define SMTPD_TICKET_LOCK "smtpd_tls_ticket.lock"
#define SMTPD_TICKET_ROTATE 86400L      /* at least daily */
#define SMTPD_TICKET_KEYS 2             /* the current and the previous */

static tls_ctx_t *smtpd_tls_context;

/* what the contexts of this process share (every SNI context gets the
   same settings: OpenSSL switches the whole SSL_CTX) */
static struct {
    int min_version, max_version;
    const char *ciphers;
    unsigned char keys[SMTPD_TICKET_KEYS * TLS_TICKET_KEY_SIZE];
    size_t nkeys;
} smtpd_tls_conf;

static bool smtpd_tls_mandatory(void)
{
    return strcmp(var_smtpd_tls_security_level, "encrypt") == 0;
}

/* smtpd_tls_require_ccert - smtpd_tls_req_ccert, where it applies */
static bool smtpd_tls_require_ccert(void)
{
    return var_smtpd_tls_req_ccert && smtpd_tls_mandatory();
}

/*
 * smtpd_tls_ticket_keys - the session ticket keys every smtpd process of
 * this system shares: $data_directory/smtpd_tls_ticket.key, two keys
 * (new tickets use the first; the second, the one before the last
 * rotation, still decrypts). Made at first start and rotated once it is
 * older than max(1 day, the ticket lifetime), under a lock so that
 * processes starting together agree; a ticket therefore stays
 * decryptable for at least its lifetime.
 *
 * Security: called in pre_init as root. The directory must belong to us
 * (root) and not be writable by group or others, the file is 0600 and
 * opened with O_NOFOLLOW, so neither mail_owner nor anyone else can read
 * or plant keys; after the privilege drop the keys live only in smtpd's
 * memory (they must: smtpd encrypts with them), until the process exits
 * (max_use, max_idle). Rotation bounds what a stolen key reveals: the TLS
 * 1.2 sessions whose tickets it encrypted (their master secret is in the
 * ticket), at most two periods' worth; TLS 1.3 resumption always runs a
 * fresh ECDHE exchange (OpenSSL refuses psk_ke unless told otherwise), so
 * there a stolen key lets its holder pose as this server to a client
 * that resumes such a ticket, but not decrypt recorded traffic.
 * On any failure the process falls back to OpenSSL's random per-process
 * key: resumption then works only with the same smtpd process. A process
 * keeps the keys it read: one that outlives the next rotation issues
 * tickets that others soon stop accepting (a full handshake, no harm).
 */
static size_t smtpd_tls_ticket_keys(unsigned char *keys, long lifetime)
{
    struct keyfile_spec spec = {
        .size = SMTPD_TICKET_KEYS * TLS_TICKET_KEY_SIZE,
        .max_age = lifetime > SMTPD_TICKET_ROTATE ? lifetime
                                                  : SMTPD_TICKET_ROTATE,
        .keep = TLS_TICKET_KEY_SIZE,
        .strict = false,
        .dir_label = "data_directory",
    };
    const char *why = NULL;
    int r = keyfile_load(var_data_directory, SMTPD_TICKET_FILE,
                         SMTPD_TICKET_LOCK, &spec, keys, &why);

    if (r < 0) {
        log_warning("TLS session ticket key %s/%s: %s; TLS sessions resume "
                    "only with the same smtpd process", var_data_directory,
                    SMTPD_TICKET_FILE, why);
        return 0;
    }
    if (r == 2)
        log_info("new TLS session ticket key in %s/%s", var_data_directory,
                 SMTPD_TICKET_FILE);
    return SMTPD_TICKET_KEYS;
}

/* smtpd_tls_setup - the settings every context of this process gets */
static int smtpd_tls_setup(tls_ctx_t *ctx, char **err)
{
    if (tls_ctx_set_versions(ctx, smtpd_tls_conf.min_version,
                             smtpd_tls_conf.max_version, err) < 0
        || tls_ctx_set_ciphers(ctx, smtpd_tls_conf.ciphers, err) < 0
        || tls_ctx_set_tickets(ctx, smtpd_tls_conf.keys,
                               smtpd_tls_conf.nkeys,
                               var_smtpd_tls_session_cache_timeout, err) < 0)
        return -1;
    if ((var_smtpd_tls_ask_ccert || smtpd_tls_require_ccert())
        && tls_ctx_ask_peer_cert(ctx, *var_smtpd_tls_CAfile != '\0'
                                 ? var_smtpd_tls_CAfile : NULL, err) < 0)
        return -1;
    return 0;
}

/* smtpd_tls_sni_entry - one tls_server_sni_maps entry: its context */
static int smtpd_tls_sni_entry(const char *key, size_t klen, const char *value,
                               size_t vlen, void *arg)
{
    const char *table = arg;
    char *name = xstrndup(key, klen), *files = xstrndup(value, vlen);
    char *err = NULL;
    tls_ctx_t *sub = tls_ctx_server_chain_new(files, &err);
    int added = -1;

    if (sub == NULL || smtpd_tls_setup(sub, &err) < 0
        || (added = tls_ctx_sni_add(smtpd_tls_context, name, sub, &err)) < 0)
        log_warning("%s: SNI name %s: %s; it gets the default certificate",
                    table, name, err != NULL ? err : "unknown error");
    if (added != 0)       /* failed, or an earlier table has the name */
        tls_ctx_free(sub);
    free(err);
    free(name);
    free(files);
    return 0;
}

/* smtpd_tls_sni_load - every certificate of tls_server_sni_maps, now,
   as root (a chrooted smtpd cannot open the files later). A list of
   tables: the first that has a name wins, as in a lookup. */
static void smtpd_tls_sni_load(void)
{
    const char *s = var_tls_server_sni_maps;
    long len;

    while ((len = str_list_next_word(&s)) > 0) {
        char *spec = xstrndup(s, (size_t)len);
        s += len;
        const char *derr = NULL;
        /* read directly, now, even in a daemon that will chroot (where
           lmdb: would go through proxymap, which cannot walk a table) */
        bool proxied = dict_proxy_all();
        dict_proxy_set_all(false);
        dict_t *d = dict_open(spec, &derr);
        dict_proxy_set_all(proxied);
        if (d == NULL)
            log_warning("tls_server_sni_maps: %s: %s", spec,
                        derr != NULL ? derr : "cannot open");
        else if (dict_walk(d, smtpd_tls_sni_entry, spec) < 0)
            log_warning("tls_server_sni_maps: %s: cannot read the table",
                        spec);
        dict_close(d);
        free(spec);
    }
    if (len < 0)
        log_warning("tls_server_sni_maps: unbalanced braces in \"%s\"",
                    var_tls_server_sni_maps);
}

/* smtpd_tls_init - load the certificates (pre_init, as root) */
void smtpd_tls_init(void)
{
    char *err = NULL;
    const char *what = var_smtpd_tls_wrappermode
                       ? "TLS wrapper mode connections are closed"
                       : "STARTTLS is not offered";

    if (strcmp(var_smtpd_tls_security_level, "none") == 0
        && !var_smtpd_tls_wrappermode)
        return;
    if (*var_smtpd_tls_cert_file == '\0' && *var_smtpd_tls_chain_files == '\0') {
        log_warning("no server certificate (smtpd_tls_cert_file is empty): "
                    "%s", what);
        return;
    }
    bool mandatory = smtpd_tls_mandatory();
    const char *protocols = mandatory ? var_smtpd_tls_mandatory_protocols
                                      : var_smtpd_tls_protocols;
    const char *grade = mandatory ? var_smtpd_tls_mandatory_ciphers
                                  : var_smtpd_tls_ciphers;
    if (var_smtpd_tls_req_ccert && !mandatory)
        log_warning("smtpd_tls_req_ccert applies only with "
                    "smtpd_tls_security_level=encrypt: ignored");
    struct tls_server_params params = {
        .protocols = protocols,
        .protocols_name = mandatory ? "smtpd_tls_mandatory_protocols"
                                    : "smtpd_tls_protocols",
        .ciphers = grade,
        .chain_files = var_smtpd_tls_chain_files,
        .cert_file = var_smtpd_tls_cert_file,
        .key_file = var_smtpd_tls_key_file,
    };
    if (tls_server_versions(&params, &smtpd_tls_conf.min_version,
                            &smtpd_tls_conf.max_version, &err) < 0) {
        log_warning("%s; %s", err, what);
        free(err);
        return;
    }
    smtpd_tls_conf.ciphers = tls_server_cipherlist(grade);
    if (var_smtpd_tls_session_cache_timeout > 0)
        smtpd_tls_conf.nkeys =
            smtpd_tls_ticket_keys(smtpd_tls_conf.keys,
                                  var_smtpd_tls_session_cache_timeout);
    const char *source = *var_smtpd_tls_chain_files != '\0'
                         ? var_smtpd_tls_chain_files : var_smtpd_tls_cert_file;
    smtpd_tls_context = tls_server_ctx_new(&params, &err);
    if (smtpd_tls_context != NULL && smtpd_tls_setup(smtpd_tls_context, &err) < 0) {
        tls_ctx_free(smtpd_tls_context);
        smtpd_tls_context = NULL;
    }
    if (smtpd_tls_context == NULL) {
        explicit_bzero(smtpd_tls_conf.keys, sizeof(smtpd_tls_conf.keys));
        log_warning("cannot load the server certificate %s: %s; %s",
                    source, err ? err : "unknown error", what);
        free(err);
        return;
    }
    if (*var_tls_server_sni_maps != '\0')
        smtpd_tls_sni_load();
    explicit_bzero(smtpd_tls_conf.keys, sizeof(smtpd_tls_conf.keys));
}

void smtpd_tls_free(void)
{
    tls_ctx_free(smtpd_tls_context);
    smtpd_tls_context = NULL;
}

tls_ctx_t *smtpd_tls_ctx(void)
{
    return smtpd_tls_context;
}

/* smtpd_tls_on - the session is encrypted (or its handshake runs) */
static bool smtpd_tls_on(const struct smtpd_session *s)
{
    return s->stream != NULL && stream_tls(s->stream) != NULL;
}

bool smtpd_tls_offer(const struct smtpd_session *s)
{
    return smtpd_tls_context != NULL
           && strcmp(var_smtpd_tls_security_level, "none") != 0
           && !smtpd_tls_on(s);
}

bool smtpd_tls_refuse(struct smtpd_session *s)
{
    if (strcmp(var_smtpd_tls_security_level, "encrypt") != 0
        || (s->stream != NULL && stream_tls_active(s->stream)))
        return false;
    smtpd_reply(s, "530 5.7.0 Must issue a STARTTLS command first");
    return true;
}

bool smtpd_tls_starttls(struct smtpd_session *s, const char *arg)
{
    if (*arg != '\0') {
        smtpd_reply(s, "501 5.5.4 Syntax: STARTTLS");
        return false;
    }
    if (smtpd_tls_on(s)) {
        smtpd_reply(s, "554 5.5.1 Error: TLS already active");
        return false;
    }
    if (strcmp(var_smtpd_tls_security_level, "none") == 0) {
        smtpd_reply(s, "502 5.5.1 Error: command not implemented");
        return false;
    }
    if (smtpd_tls_context == NULL) {
        smtpd_reply(s, "454 4.7.0 TLS not available due to local problem");
        return false;
    }
    /* STARTTLS ends a pipelined group: input after it was sent before
       our 220 and belongs to no protocol */
    if (smtpd_pipelining_violation(s, "STARTTLS"))
        return false;
    return smtpd_tls_begin(s, false) == 0;
}

/* smtpd_tls_info - "TLSv1.3 with cipher X (256/256 bits)" into buf, or
   NULL while the session is plaintext */
const char *smtpd_tls_info(const struct smtpd_session *s, char *buf,
                           size_t size)
{
    tls_conn_t *c;
    int bits;

    if (s->stream == NULL || !stream_tls_active(s->stream))
        return NULL;
    c = stream_tls(s->stream);
    bits = tls_conn_cipher_bits(c);
    if (snprintf(buf, size, "%s with cipher %s (%d/%d bits)",
                 tls_conn_version(c), tls_conn_cipher(c), bits, bits)
        >= (int)size)
        return NULL;
    return buf;
}

/* smtpd_tls_accepted - the handshake finished: note and log the client
   certificate and the session (Postfix's "Anonymous|Trusted|Untrusted TLS
   connection established|reused from ..."); false when
   smtpd_tls_req_ccert refuses the client (421 said, caller closes) */
bool smtpd_tls_accepted(struct smtpd_session *s)
{
    tls_conn_t *c = stream_tls(s->stream);
    char info[256], subject[128], issuer[128];
    const char *what = smtpd_tls_info(s, info, sizeof(info));
    const char *kind = "Anonymous";

    s->tls_peer_verified = false;
    if (tls_conn_peer_fingerprint(c, s->tls_peer_fingerprint,
                                  sizeof(s->tls_peer_fingerprint)) == 0) {
        s->tls_peer_verified = tls_conn_peer_verified(c);
        kind = s->tls_peer_verified ? "Trusted" : "Untrusted";
        tls_conn_peer_names(c, subject, issuer, sizeof(subject));
        log_info("%s: subject_CN=%s, issuer=%s, fingerprint=%s", s->namaddr,
                 subject, issuer, s->tls_peer_fingerprint);
        if (!s->tls_peer_verified)
            log_info("client certificate verification failed for %s: %s",
                     s->namaddr, tls_conn_peer_verify_error(c));
    }
    log_info("%s TLS connection %s from %s: %s", kind,
             tls_conn_resumed(c) ? "reused" : "established", s->namaddr,
             what != NULL ? what : "unknown parameters");
    if (smtpd_tls_require_ccert() && !s->tls_peer_verified) {
        const char *why = s->tls_peer_fingerprint[0] == '\0'
                          ? "No client certificate presented"
                          : "Client certificate not trusted";
        log_info("NOQUEUE: abort: TLS from %s: %s", s->namaddr, why);
        smtpd_reply(s, "421 4.7.1 %s Error: %s", var_myhostname, why);
        return false;
    }
    return true;
}
