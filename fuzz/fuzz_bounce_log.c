/* fuzz_bounce_log - the defer/ log reader (bounce_log.h) on arbitrary
   bytes: every line that parses must format to one line that parses
   again to the same record; the whole-log parse must keep its entries
   sorted, unique and within bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/bounce_log.h"
#include "util/buf.h"

static void check_line(const char *line, size_t len)
{
    struct bounce_log_rec rec, again;
    buf_t out = BUF_INIT;

    if (bounce_log_parse(line, len, &rec) < 0)
        return;
    if (rec.reason != NULL
        && (rec.reason[0] == '\0' || strlen(rec.reason) > BOUNCE_LOG_REASON_MAX))
        abort();
    if (bounce_log_format(&rec, &out) < 0 || out.len == 0
        || out.data[out.len - 1] != '\n'
        || memchr(out.data, '\n', out.len - 1) != NULL
        || bounce_log_parse(out.data, out.len - 1, &again) < 0)
        abort();
    if (again.type != rec.type || again.offset != rec.offset
        || again.status != rec.status || strcmp(again.dsn, rec.dsn) != 0
        || (rec.reason == NULL) != (again.reason == NULL)
        || (rec.reason != NULL && strcmp(rec.reason, again.reason) != 0))
        abort();
    free(rec.reason);
    free(again.reason);
    buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;
    struct bounce_log log;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);

        check_line(p, n);
        p += n + 1;
    }
    bounce_log_parse_all((const char *)data, size, &log);
    if (log.n > BOUNCE_LOG_MAX_ENTRIES)
        abort();
    for (size_t i = 0; i < log.n; i++) {
        if (i > 0 && log.v[i - 1].offset >= log.v[i].offset)
            abort();
        if (bounce_log_find(&log, log.v[i].offset) != &log.v[i])
            abort();
    }
    bounce_log_free(&log);
    return 0;
}
