/* fuzz_addr - RFC 5321 path parser with every flag combination; a parsed
   mailbox must parse again to itself, and split/canonical must not break. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mail/addr.h"
#include "util/util.h"

static void check_forms(const buf_t *addr)
{
    buf_t canon = BUF_INIT, wrapped = BUF_INIT, again = BUF_INIT;
    char *local, *domain;
    const char *rest, *err;

    if (addr->len > ADDR_MAX_PATH || strlen(buf_str(addr)) != addr->len)
        abort();
    for (size_t i = 0; i < addr->len; i++)
        if ((unsigned char)addr->data[i] < 0x20 || addr->data[i] == 0x7f)
            abort();

    /* the stored form is itself a valid path with the same mailbox */
    if (buf_printf(&wrapped, "<%s>", buf_str(addr)) < 0 ||
        addr_parse_path(buf_str(&wrapped), true, false, &again, &rest, &err) != 0 ||
        strcmp(buf_str(&again), buf_str(addr)) != 0 || *rest != '\0')
        abort();

    addr_split(buf_str(addr), &local, &domain);
    if (strlen(local) + (*domain ? strlen(domain) + 1 : 0) > addr->len)
        abort();
    if (*domain && !addr_domain_valid(domain, strlen(domain)))
        abort();

    /* the canonical form must split to the same domain */
    addr_canonical(buf_str(addr), &canon);
    if (canon.len > addr->len)
        abort();
    char *clocal, *cdomain;
    addr_split(buf_str(&canon), &clocal, &cdomain);
    if (strcasecmp(cdomain, domain) != 0)
        abort();
    free(clocal);
    free(local);
    buf_free(&canon);
    buf_free(&wrapped);
    buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = xmalloc(size + 1);
    buf_t out = BUF_INIT;

    memcpy(s, data, size);
    s[size] = '\0';
    for (int flags = 0; flags < 4; flags++) {
        const char *rest = NULL, *err = NULL;

        if (addr_parse_path(s, flags & 1, flags & 2, &out, &rest, &err) == 0) {
            if (rest < s || rest > s + strlen(s))
                abort();
            if (*rest != '\0' && *rest != ' ' && *rest != '\t')
                abort();
            check_forms(&out);
        } else if (err == NULL || out.len != 0) {
            abort();
        }
    }
    (void)addr_domain_valid(s, size);   /* raw bytes, NULs included */
    addr_canonical(s, &out);
    buf_free(&out);
    free(s);
    return 0;
}
