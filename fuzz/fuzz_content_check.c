/*
 * fuzz_content_check - libFuzzer harness for the header_checks /
 * body_checks action parser (content_check_parse): any NUL-terminated
 * input either fails with an error string or yields a known action whose
 * text lies inside the input and a REJECT code of 450 or 550.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/content_check.h"
#include "util/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *value = xstrndup((const char *)data, size);
    size_t len = strlen(value);
    struct content_verdict v;
    const char *why = NULL;

    if (content_check_parse(value, &v, &why) < 0) {
        if (why == NULL)
            abort();
    } else {
        if (v.action > CC_PREPEND || v.text < value || v.text > value + len)
            abort();
        if (v.action == CC_REJECT
            && ((v.code != 450 && v.code != 550)
                || strlen(v.dsn) >= sizeof(v.dsn) || v.dsn[1] != '.'))
            abort();
        (void)content_check_name(v.action);
    }
    free(value);
    return 0;
}
