/*
 * fuzz_deliver_request - libFuzzer harness for the delivery request and
 * reply parsers: any attribute list that decodes either fails with a
 * reason or yields a request within its limits whose rebuilt form
 * parses to the same request; reply lookups never read out of bounds.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/deliver_request.h"
#include "util/attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static deliver_request_t req, again;
    attr_list_t in, built;
    const char *err = NULL, *dsn, *reason;
    size_t used = 0;
    int status;

    attr_list_init(&in);
    attr_list_init(&built);
    if (attr_decode((const char *)data, size, &in, &used, &err) == 1) {
        if (deliver_request_parse(&in, &req, DELIVER_MAX_RCPTS, &err) < 0) {
            if (err == NULL)
                abort();
        } else {
            if (req.nrcpts < 1 || req.nrcpts > DELIVER_MAX_RCPTS)
                abort();
            deliver_request_build(&req, &built);
            if (deliver_request_parse(&built, &again, DELIVER_MAX_RCPTS,
                                      &err) < 0
                || again.nrcpts != req.nrcpts
                || strcmp(again.queue_id, req.queue_id) != 0
                || again.active_usec != req.active_usec)
                abort();
            for (size_t k = 0; k < req.nrcpts; k++)
                if (strcmp(again.rcpts[k].address, req.rcpts[k].address) != 0
                    || again.rcpts[k].offset != req.rcpts[k].offset
                    || req.rcpts[k].offset < 1)
                    abort();
        }
        for (size_t k = 0; k < 4; k++)
            if (deliver_reply_get(&in, k, &status, &dsn, &reason) == 0
                && (dsn == NULL || reason == NULL))
                abort();
        (void)deliver_reply_is_dest_dead(&in);
    }
    attr_list_free(&in);
    attr_list_free(&built);
    return 0;
}
