/* fuzz_smtp_cmd - SMTP command line splitting and the MAIL/RCPT prefix. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtpcmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct smtp_cmd cmd;
    const char *err = NULL;
    buf_t copy;

    buf_init(&copy, 4096);
    if (smtpcmd_parse((const char *)data, size, &copy, &cmd, &err) == 0) {
        if (cmd.verb >= SMTP_VERB_COUNT || strlen(cmd.arg) > size)
            abort();
        (void)smtpcmd_name(cmd.verb);
        (void)smtpcmd_path_arg(cmd.arg, "FROM:");
        (void)smtpcmd_path_arg(cmd.arg, "TO:");
    } else if (err == NULL) {
        abort();
    }
    buf_free(&copy);
    return 0;
}
