/*
 * fuzz_pcre_table - libFuzzer harness for the pcre: table parser
 * (dict_pcre_parse): the input up to the first "\n\n\n" is a table
 * source, the rest a key. A table that compiles is looked up with that
 * key, with a few fixed keys and with the source itself; every result
 * must be a NUL-terminated string within the buffer's limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/dict_pcre.h"
#include "util/buf.h"
#include "util/log.h"
#include "util/util.h"

static void fuzz_lookup(dict_pcre_t *t, const char *key)
{
    buf_t v;

    buf_init(&v, 65536);
    int rc = dict_pcre_lookup(t, key, &v);
    if (rc < -1 || rc > 1)
        abort();
    if (rc == 1 && strlen(buf_str(&v)) > v.len)
        abort();
    buf_free(&v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *keys[] = { "", "Subject: hello", "a", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab" };
    const char *sep = memmem(data, size, "\n\n\n", 3);
    size_t tlen = sep ? (size_t)(sep - (const char *)data) : size;
    const char *why = NULL;
    static int once;

    if (!once++)
        log_set_file("/dev/null");      /* match-limit warnings */
    dict_pcre_t *t = dict_pcre_parse("fuzz", (const char *)data, tlen, &why);
    if (t == NULL) {
        if (why == NULL)
            abort();
        return 0;
    }
    char *key = sep ? xstrndup(sep + 3, size - tlen - 3)
                    : xstrndup((const char *)data, size);
    fuzz_lookup(t, key);
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        fuzz_lookup(t, keys[i]);
    free(key);
    dict_pcre_free(t);
    return 0;
}
