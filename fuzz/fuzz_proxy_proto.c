/*
 * fuzz_proxy_proto - libFuzzer harness for the proxymap(8) request/reply
 * decoders, fed through the attribute decoder as proxymap and its
 * clients see them: what decodes must re-encode and decode to the same
 * request or reply.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/proxy_proto.h"
#include "util/attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct proxy_request rq, rq2;
    static struct proxy_reply rp, rp2;
    attr_list_t in, again;
    const char *err = NULL;
    size_t used = 0;

    attr_list_init(&in);
    attr_list_init(&again);
    if (attr_decode((const char *)data, size, &in, &used, &err) == 1) {
        err = NULL;
        if (proxy_request_decode(&in, &rq, &err) == 0) {
            if (proxy_request_encode(&rq, &again, &err) < 0
                || proxy_request_decode(&again, &rq2, &err) < 0
                || rq.type != rq2.type || strcmp(rq.table, rq2.table) != 0
                || strcmp(rq.key, rq2.key) != 0)
                abort();
        } else if (err == NULL) {
            abort();
        }
        attr_list_reset(&again);
        err = NULL;
        if (proxy_reply_decode(&in, &rp, &err) == 0) {
            if (proxy_reply_encode(&rp, &again, &err) < 0
                || proxy_reply_decode(&again, &rp2, &err) < 0
                || rp.status != rp2.status
                || strcmp(rp.value, rp2.value) != 0)
                abort();
        } else if (err == NULL) {
            abort();
        }
    }
    attr_list_free(&in);
    attr_list_free(&again);
    return 0;
}
