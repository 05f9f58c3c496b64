/*
 * tls_server - the server TLS context every Tern server with a
 * certificate makes the same way (smtpd, pop3-login): the protocol range
 * and cipher list from its parameters, and the certificate from its
 * chain_files (when set) or cert_file + key_file. What a daemon adds on
 * top (SNI contexts, session ticket keys, client certificates) stays in
 * the daemon.
 *
 * Security: call it in pre_init, as root before the privilege drop and
 * any chroot, so key files may be root's 0600; the context keeps what it
 * needs in memory.
 */
#ifndef TERN_TLS_SERVER_H
#define TERN_TLS_SERVER_H

#include "util/tls.h"

struct tls_server_params {
    const char *protocols;      /* "TLSv1.2 TLSv1.3", "!SSLv3 ..." */
    const char *protocols_name; /* its parameter, for messages */
    const char *ciphers;        /* grade: "medium" | "high" */
    const char *chain_files;    /* "" for none */
    const char *cert_file;      /* "" for none */
    const char *key_file;       /* "" for: in cert_file */
};

/* the grade's cipher list ($tls_high_cipherlist or
   $tls_medium_cipherlist) */
const char *tls_server_cipherlist(const char *grade);
/* the protocol range of p; 0 ok, -1 *error_r (malloc'd) */
int tls_server_versions(const struct tls_server_params *p, int *min_r,
                        int *max_r, char **error_r);
/* the whole context (certificate, versions, ciphers); NULL with
   *error_r (malloc'd), e.g. no certificate configured */
tls_ctx_t *tls_server_ctx_new(const struct tls_server_params *p,
                              char **error_r);

#endif
