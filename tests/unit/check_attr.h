/*
 * check_attr - the wire round trip the IPC codec tests share: encode an
 * attribute list to bytes and decode it back, asserting that the bytes
 * decode whole.
 */
#ifndef TERN_CHECK_ATTR_H
#define TERN_CHECK_ATTR_H

#include <check.h>
#include "util/attr.h"
#include "util/buf.h"

static inline void wire_roundtrip(const attr_list_t *in, attr_list_t *out)
{
    buf_t wire = BUF_INIT;
    size_t used = 0;
    const char *err = NULL;

    ck_assert_int_eq(attr_encode(in, &wire), 0);
    ck_assert_int_eq(attr_decode(wire.data, wire.len, out, &used, &err), 1);
    ck_assert_uint_eq(used, wire.len);
    buf_free(&wire);
}

#endif
