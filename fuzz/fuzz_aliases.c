/*
 * fuzz_aliases - libFuzzer harness for the table source parser and LMDB
 * builder (dict_lmdb_build): the input is written as a text file in a
 * temporary directory (on tmpfs when there is one, so the builder's
 * fsyncs are cheap), built in aliases or plain format (first byte), and
 * a successful build is read back: every stored key must be lowercase
 * and found again by lookup.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "mail/dict.h"
#include "mail/dict_build.h"
#include "util/log.h"
#include "util/util.h"

static char fuzz_dir[64];
static char fuzz_src[96];
static char fuzz_spec[128];

static void fuzz_cleanup(void)
{
    char db[128];
    snprintf(db, sizeof(db), "%s.lmdb", fuzz_src);
    unlink(db);
    unlink(fuzz_src);
    rmdir(fuzz_dir);
}

static void fuzz_setup(void)
{
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/fuzz_aliases.XXXXXX", base);
    if (mkdtemp(fuzz_dir) == NULL)
        abort();
    snprintf(fuzz_src, sizeof(fuzz_src), "%s/aliases", fuzz_dir);
    snprintf(fuzz_spec, sizeof(fuzz_spec), "lmdb:%s", fuzz_src);
    log_set_file("/dev/null");   /* duplicate-key warnings */
    atexit(fuzz_cleanup);
}

static int check_entry(const char *key, size_t klen, const char *value,
                       size_t vlen, void *ctx)
{
    dict_t *d = ctx;
    if (klen == 0 || vlen == 0 || memchr(key, '\0', klen)
        || memchr(value, '\0', vlen))
        abort();
    for (size_t i = 0; i < klen; i++)
        if (key[i] >= 'A' && key[i] <= 'Z')
            abort();
    char *k = xstrndup(key, klen);
    buf_t v = BUF_INIT;
    if (dict_lookup(d, k, &v) != 1 || v.len != vlen
        || memcmp(v.data, value, vlen) != 0)
        abort();
    buf_free(&v);
    free(k);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (fuzz_dir[0] == '\0')
        fuzz_setup();
    if (size == 0)
        return 0;
    bool aliases = (data[0] & 1) != 0;
    FILE *fp = fopen(fuzz_src, "w");
    if (fp == NULL)
        abort();
    if (fwrite(data + 1, 1, size - 1, fp) != size - 1 || fclose(fp) != 0)
        abort();
    buf_t err = BUF_INIT;
    if (dict_lmdb_build(fuzz_src, aliases, &err) == 0) {
        const char *why;
        dict_t *d = dict_open(fuzz_spec, &why);
        if (d == NULL || dict_walk(d, check_entry, d) != 0)
            abort();
        dict_close(d);
    } else if (err.len == 0) {
        abort();   /* a failure always says why */
    }
    buf_free(&err);
    return 0;
}
