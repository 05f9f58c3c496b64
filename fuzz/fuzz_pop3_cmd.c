/* fuzz_pop3_cmd - the POP3 command parser and message numbers. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/pop3_cmd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pop3_cmd cmd;
    long n;

    enum pop3_parse_error rc = pop3_cmd_parse((const char *)data, size, &cmd);
    if (cmd.argc > POP3_ARG_MAX || strlen(cmd.keyword) > 4)
        abort();
    (void)pop3_verb_name(cmd.verb);
    if (rc == POP3_OK) {
        if (cmd.verb == POP3_UNKNOWN || size > POP3_LINE_MAX)
            abort();
        for (size_t i = 0; i < cmd.argc; i++) {
            size_t alen = strlen(cmd.argv[i]);
            if (alen == 0 || alen > size)
                abort();
            if (pop3_cmd_number(cmd.argv[i], i == 1, &n) == 0 &&
                (n < 0 || n > POP3_MSG_MAX))
                abort();
        }
    } else if (rc != POP3_ERR_TOO_LONG && rc != POP3_ERR_SYNTAX &&
               rc != POP3_ERR_UNKNOWN && rc != POP3_ERR_ARGS) {
        abort();
    }
    pop3_cmd_clear(&cmd);
    return 0;
}
