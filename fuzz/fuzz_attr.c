/*
 * fuzz_attr - libFuzzer harness for the IPC attribute decoder: whatever
 * decodes must re-encode, and the re-encoding must decode to the same
 * list using exactly the bytes the first decode consumed.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/attr.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attr_list_t first, second;
    buf_t wire = BUF_INIT;
    const char *err = NULL;
    size_t used = 0, used2 = 0;
    int r;

    attr_list_init(&first);
    attr_list_init(&second);
    r = attr_decode((const char *)data, size, &first, &used, &err);
    if (r < 0 && err == NULL)
        abort();
    if (r == 1) {
        if (used > size || used > ATTR_MAX_MSG)
            abort();
        if (attr_encode(&first, &wire) < 0 || wire.len != used
            || memcmp(wire.data, data, used) != 0)
            abort();
        if (attr_decode(wire.data, wire.len, &second, &used2, &err) != 1
            || used2 != used || second.count != first.count)
            abort();
        for (size_t i = 0; i < first.count; i++)
            if (strcmp(first.items[i].name, second.items[i].name) != 0
                || strcmp(first.items[i].value, second.items[i].value) != 0)
                abort();
    } else if (first.count != 0) {
        abort();
    }
    attr_list_free(&first);
    attr_list_free(&second);
    buf_free(&wire);
    return 0;
}
