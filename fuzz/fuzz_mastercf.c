/*
 * fuzz_mastercf - libFuzzer harness for the master.conf parser
 * (mastercf_parse_string) and inet service splitting.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "mail/mastercf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    struct master_conf mc;
    buf_t err = BUF_INIT;
    if (mastercf_parse_string(text, "master.conf", &mc, &err) == 0) {
        for (size_t i = 0; i < mc.count; i++) {
            char *host, *port;
            if (mc.entries[i].type == MASTER_INET
                && mastercf_inet_split(mc.entries[i].service, &host, &port) == 0) {
                free(host);
                free(port);
            }
        }
        mastercf_free(&mc);
    }
    char *host, *port;
    if (mastercf_inet_split(text, &host, &port) == 0) {
        free(host);
        free(port);
    }
    buf_free(&err);
    free(text);
    return 0;
}
