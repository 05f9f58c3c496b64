/*
 * fuzz_auth_proto - libFuzzer harness for the auth(8) request/reply
 * decoders, fed through the attribute decoder as auth sees them: what
 * decodes must re-encode and decode to the same request or reply (the
 * SCRAM-SHA-256 requests and their salt / server_final replies too).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/auth_proto.h"
#include "util/attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attr_list_t in, again;
    struct auth_request rq, rq2;
    struct auth_reply rp, rp2;
    const char *err = NULL;
    size_t used = 0;

    attr_list_init(&in);
    attr_list_init(&again);
    if (attr_decode((const char *)data, size, &in, &used, &err) == 1) {
        err = NULL;
        if (auth_request_decode(&in, &rq, &err) == 0) {
            if (auth_request_encode(&rq, &again, &err) < 0
                || auth_request_decode(&again, &rq2, &err) < 0
                || memcmp(&rq, &rq2, sizeof(rq)) != 0)
                abort();
        } else if (err == NULL) {
            abort();
        }
        attr_list_reset(&again);
        err = NULL;
        if (auth_reply_decode(&in, &rp, &err) == 0) {
            if (auth_reply_encode(&rp, &again, &err) < 0
                || auth_reply_decode(&again, &rp2, &err) < 0
                || rp.status != rp2.status || strcmp(rp.user, rp2.user) != 0
                || strcmp(rp.reason, rp2.reason) != 0
                || strcmp(rp.salt, rp2.salt) != 0
                || strcmp(rp.server_final, rp2.server_final) != 0
                || rp.iterations != rp2.iterations)
                abort();
        } else if (err == NULL) {
            abort();
        }
    }
    attr_list_free(&in);
    attr_list_free(&again);
    return 0;
}
