/*
 * fuzz_logline - libFuzzer harness for the logical-line reader shared by
 * main.conf, master.conf and table sources. Invariants: entries come in
 * increasing line order, contain no newline, never start or end with
 * whitespace, respect the entry limit, and the reader always ends.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/logline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    logline_t ll;
    const char *error;
    char *entry;
    long lineno, last = 0;
    size_t max_entry = size > 0 ? (data[0] % 64) * 16 : 0;
    int r;

    logline_init(&ll, (const char *)data, size, 100, max_entry);
    while ((r = logline_next(&ll, &entry, &lineno, &error)) > 0) {
        size_t n = strlen(entry);

        if (lineno <= last || n == 0 || strchr(entry, '\n') != NULL
            || entry[0] == ' ' || entry[0] == '\t' || entry[n - 1] == ' '
            || (max_entry > 0 && n > max_entry))
            abort();
        last = lineno;
    }
    if (r < 0 && (error == NULL || lineno <= 0))
        abort();
    logline_free(&ll);
    return 0;
}
