/*
 * fuzz_mainconf - libFuzzer harness for the main.conf parser, $name
 * expansion and value conversion (config_load_text).
 */
#include <stddef.h>
#include <stdint.h>

#include "util/buf.h"
#include "mail/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t err = BUF_INIT;
    (void)config_load_text((const char *)data, size, "main.conf", "/fuzz", &err);
    for (size_t i = 0; i < param_count; i++)
        (void)config_value(param_table[i].name);
    buf_free(&err);
    config_free();
    return 0;
}
