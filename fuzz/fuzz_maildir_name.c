/* fuzz_maildir_name - Maildir file name parsing and the UIDL rule. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mail/maildir_list.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char name[1024];
    char flags[27];
    char uidl[MAILDIR_UIDL_MAX + 1];
    size_t base_len;
    long long s, w;

    if (size >= sizeof(name))
        size = sizeof(name) - 1;
    memcpy(name, data, size);
    name[size] = '\0';
    if (!maildir_name_parse(name, &base_len, flags, &s, &w))
        return 0;
    if (base_len == 0 || base_len > 255 || base_len > strlen(name)
        || name[0] == '.' || memchr(name, ':', base_len) != NULL
        || memchr(name, '/', base_len) != NULL
        || (name[base_len] != '\0' && name[base_len] != ':'))
        abort();
    size_t fl = strlen(flags);
    if (fl > 26)
        abort();
    for (size_t i = 0; i < fl; i++) {
        if (flags[i] < 'A' || flags[i] > 'Z' || (i > 0 && flags[i] <= flags[i - 1]))
            abort();
    }
    if (s < -1 || w < -1)
        abort();
    maildir_uidl(name, base_len, uidl);
    size_t ul = strlen(uidl);
    if (ul == 0 || ul > MAILDIR_UIDL_MAX)
        abort();
    for (size_t i = 0; i < ul; i++) {
        if ((unsigned char)uidl[i] < 0x21 || (unsigned char)uidl[i] > 0x7e)
            abort();
    }
    return 0;
}
