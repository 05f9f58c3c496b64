/*
 * fuzz_login_handover - libFuzzer harness for the login handover request
 * decoder (the mail side's view of what a login process sends): the
 * bytes are decoded as an attribute list, then as a request; whatever
 * decodes must re-encode and decode to the same request.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/login_handover.h"
#include "util/attr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct login_handover h, again;
    attr_list_t l, re;
    const char *err = NULL;
    size_t used = 0;

    attr_list_init(&l);
    attr_list_init(&re);
    if (attr_decode((const char *)data, size, &l, &used, &err) == 1) {
        err = NULL;
        if (login_handover_decode(&l, &h, &err) == 0) {
            if (login_handover_encode(&h, &re, &err) < 0
                || login_handover_decode(&re, &again, &err) < 0
                || memcmp(&h, &again, sizeof(h)) != 0)
                abort();
        } else if (err == NULL || h.token[0] != '\0' || h.input_len != 0) {
            abort();
        }
    }
    login_handover_clear(&h);
    login_handover_clear(&again);
    attr_list_free(&l);
    attr_list_free(&re);
    return 0;
}
