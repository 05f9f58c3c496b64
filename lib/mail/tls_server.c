/*
 * tls_server - a server TLS context from a daemon's parameters (see
 * tls_server.h).
 */
#include "mail/tls_server.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mail/config.h"
#include "util/util.h"

/* tls_server_cipherlist - see tls_server.h */
const char *tls_server_cipherlist(const char *grade)
{
    return strcmp(grade, "high") == 0 ? var_tls_high_cipherlist
                                      : var_tls_medium_cipherlist;
}

/* tls_server_versions - see tls_server.h */
int tls_server_versions(const struct tls_server_params *p, int *min_r,
                        int *max_r, char **error_r)
{
    char *err = NULL;

    if (tls_protocols_parse(p->protocols, min_r, max_r, &err) == 0)
        return 0;
    size_t n = strlen(p->protocols_name) + strlen(err ? err : "") + 3;
    *error_r = xmalloc(n);
    (void)snprintf(*error_r, n, "%s: %s", p->protocols_name,
                   err ? err : "");
    free(err);
    return -1;
}

/* tls_server_ctx_new - see tls_server.h */
tls_ctx_t *tls_server_ctx_new(const struct tls_server_params *p,
                              char **error_r)
{
    int min = 0, max = 0;
    tls_ctx_t *ctx;

    *error_r = NULL;
    if (*p->cert_file == '\0' && *p->chain_files == '\0') {
        *error_r = xstrdup("no server certificate configured");
        return NULL;
    }
    if (tls_server_versions(p, &min, &max, error_r) < 0)
        return NULL;
    if (*p->chain_files != '\0')
        ctx = tls_ctx_server_chain_new(p->chain_files, error_r);
    else
        ctx = tls_ctx_server_new(p->cert_file,
                                 *p->key_file != '\0' ? p->key_file : NULL,
                                 NULL, error_r);
    if (ctx != NULL
        && (tls_ctx_set_versions(ctx, min, max, error_r) < 0
            || tls_ctx_set_ciphers(ctx, tls_server_cipherlist(p->ciphers),
                                   error_r) < 0)) {
        tls_ctx_free(ctx);
        ctx = NULL;
    }
    return ctx;
}
