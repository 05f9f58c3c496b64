/* fuzz_smtpdata - the DATA decoder: chunking never changes the result,
   DATA only ever ends right after CR LF "." CR LF, and the size is the
   RFC 1870 size of what was decoded. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/smtpdata.h"

static int run(const uint8_t *p, size_t n, size_t step, buf_t *out,
               size_t *used_r, smtpdata_t *d)
{
    size_t off = 0;
    int rc = 0;

    smtpdata_init(d);
    while (off < n) {
        size_t len = n - off < step ? n - off : step, used = 0;
        rc = smtpdata_feed(d, (const char *)p + off, len, out, &used);
        if (rc < 0)
            abort();
        off += used;
        if (rc == 1)
            break;
        if (used != len)
            abort();
    }
    *used_r = off;
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    buf_t a, b;
    size_t used_a, used_b, step;
    smtpdata_t da, db;
    int rc_a, rc_b;

    if (size < 1)
        return 0;
    step = 1 + data[0] % 16;
    data++;
    size--;
    buf_init(&a, 0);
    buf_init(&b, 0);
    rc_a = run(data, size, size ? size : 1, &a, &used_a, &da);
    rc_b = run(data, size, step, &b, &used_b, &db);
    if (rc_a != rc_b || used_a != used_b || a.len != b.len
        || (a.len && memcmp(a.data, b.data, a.len) != 0)
        || da.bare_lf != db.bare_lf || da.size != db.size
        || strcmp(da.message_id, db.message_id) != 0)
        abort();
    if (rc_a == 1) {
        /* RFC 1870 size: every output LF is a line end counted as CR LF */
        size_t lines = 0;
        for (size_t i = 0; i < a.len; i++)
            lines += a.data[i] == '\n';
        if (da.size != a.len + lines)
            abort();
        const char *end = (const char *)data + used_a;
        if (!(used_a == 3 && memcmp(data, ".\r\n", 3) == 0)
            && !(used_a >= 5 && memcmp(end - 5, "\r\n.\r\n", 5) == 0))
            abort();
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}
