/*
 * test_sasl - unit tests for lib/util/sasl.c: base64 (RFC 4648 vectors,
 * hostile spellings), SASL PLAIN and LOGIN messages from tables of good
 * and hostile client responses.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>

#include "util/buf.h"
#include "util/sasl.h"

/* ---- base64 ------------------------------------------------------------- */

static const struct { const char *plain, *b64; } b64_good[] = {
    { "", "" },
    { "f", "Zg==" },
    { "fo", "Zm8=" },
    { "foo", "Zm9v" },
    { "foob", "Zm9vYg==" },
    { "fooba", "Zm9vYmE=" },
    { "foobar", "Zm9vYmFy" },
    { "\xff\xfe\xfd", "//79" },
    { "\xfb\xff", "+/8=" },
};

START_TEST(test_b64_good)
{
    buf_t out = BUF_INIT;
    const char *err = NULL;
    const char *p = b64_good[_i].plain, *e = b64_good[_i].b64;

    ck_assert_int_eq(sasl_base64_encode(p, strlen(p), &out), 0);
    ck_assert_str_eq(buf_str(&out), e);
    buf_reset(&out);
    ck_assert_int_eq(sasl_base64_decode(e, strlen(e), &out, &err), 0);
    ck_assert_uint_eq(out.len, strlen(p));
    ck_assert(memcmp(buf_str(&out), p, out.len) == 0);
    buf_free(&out);
}
END_TEST

static const char *b64_bad[] = {
    "Z", "Zg", "Zg=", "Zm9", "Zm9vY",       /* length */
    "====", "Z===", "=Zg=", "Zg=a", "Z=g=",  /* padding */
    "Zg==Zg==", "Zm8=Zm9v",                  /* padding before the end */
    "Zh==", "Zm9=",                          /* non-zero trailing bits */
    "Zm9v\n", " Zm9v", "Zm 9", "Zm9v\r\n",   /* whitespace */
    "Zm-v", "Zm_v", "Zm9*", "*", "=",        /* bad characters, SASL specials */
    "Zm\x80v", "Zm9v\xff===",
};

START_TEST(test_b64_bad)
{
    buf_t out = BUF_INIT;
    const char *err = NULL;
    const char *s = b64_bad[_i];

    ck_assert_msg(sasl_base64_decode(s, strlen(s), &out, &err) == -1,
                  "accepted \"%s\"", s);
    ck_assert_ptr_nonnull(err);
    buf_free(&out);
}
END_TEST

START_TEST(test_b64_embedded_nul)
{
    buf_t out = BUF_INIT;
    const char *err = NULL;

    ck_assert_int_eq(sasl_base64_decode("Zm\0v", 4, &out, &err), -1);
    buf_free(&out);
}
END_TEST

START_TEST(test_b64_cap)
{
    buf_t out;
    const char *err = NULL;

    buf_init(&out, 4);
    ck_assert_int_eq(sasl_base64_decode("Zm9vYmFy", 8, &out, &err), -1);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&out);
}
END_TEST

/* ---- PLAIN -------------------------------------------------------------- */

#define F255 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static const struct {
    const char *msg;
    size_t len;
    int result;
    const char *authcid, *passwd;
} plain_table[] = {
#define M(s) s, sizeof(s) - 1
    { M("\0demo\0secret"), 0, "demo", "secret" },
    { M("demo\0demo\0secret"), 0, "demo", "secret" },
    { M("\0d\0p"), 0, "d", "p" },
    { M("\0demo\0pass word\x01\xff"), 0, "demo", "pass word\x01\xff" },
    { M("\0" F255 "\0" F255), 0, F255, F255 },
    { M(F255 "\0" F255 "\0" F255), 0, F255, F255 },
    /* hostile */
    { M(""), -1, NULL, NULL },
    { M("demo"), -1, NULL, NULL },
    { M("\0demo"), -1, NULL, NULL },
    { M("\0demo\0"), -1, NULL, NULL },          /* empty password */
    { M("\0\0secret"), -1, NULL, NULL },        /* empty user */
    { M("\0\0"), -1, NULL, NULL },
    { M("\0demo\0sec\0ret"), -1, NULL, NULL },  /* third NUL */
    { M("\0demo\0secret\0"), -1, NULL, NULL },
    { M("admin\0demo\0secret"), -1, NULL, NULL }, /* act as another */
    { M("Demo\0demo\0secret"), -1, NULL, NULL },
    { M("\0de\nmo\0secret"), -1, NULL, NULL },  /* control characters */
    { M("\0de\rmo\0secret"), -1, NULL, NULL },
    { M("\0demo\x7f\0secret"), -1, NULL, NULL },
    { M("x\ty\0x\ty\0secret"), -1, NULL, NULL },
    { M("\0" F255 "x\0secret"), -1, NULL, NULL },  /* 256 bytes */
    { M("\0demo\0" F255 "x"), -1, NULL, NULL },
    { M(F255 "x\0" F255 "x\0p"), -1, NULL, NULL },
#undef M
};

START_TEST(test_plain_table)
{
    struct sasl_plain p;
    const char *err = NULL;
    int r = sasl_plain_decode(plain_table[_i].msg, plain_table[_i].len, &p,
                              &err);

    ck_assert_int_eq(r, plain_table[_i].result);
    if (r == 0) {
        ck_assert_str_eq(p.authcid, plain_table[_i].authcid);
        ck_assert_str_eq(p.passwd, plain_table[_i].passwd);
    } else {
        ck_assert_ptr_nonnull(err);
        ck_assert_str_eq(p.passwd, "");   /* nothing left behind */
    }
    /* the same through base64 */
    buf_t b64 = BUF_INIT;
    ck_assert_int_eq(sasl_base64_encode(plain_table[_i].msg,
                                        plain_table[_i].len, &b64), 0);
    ck_assert_int_eq(sasl_plain_decode64(b64.data ? b64.data : "", b64.len,
                                         &p, &err),
                     plain_table[_i].result);
    sasl_plain_clear(&p);
    buf_free(&b64);
}
END_TEST

START_TEST(test_plain_encode)
{
    buf_t b = BUF_INIT;
    struct sasl_plain p;
    const char *err = NULL;

    ck_assert_int_eq(sasl_plain_encode("", "demo", "secret", &b), 0);
    ck_assert_str_eq(buf_str(&b), "AGRlbW8Ac2VjcmV0");
    ck_assert_int_eq(sasl_plain_decode64(b.data, b.len, &p, &err), 0);
    ck_assert_str_eq(p.authcid, "demo");
    ck_assert_str_eq(p.passwd, "secret");
    buf_reset(&b);
    ck_assert_int_eq(sasl_plain_encode("", "", "secret", &b), -1);
    ck_assert_int_eq(sasl_plain_encode("", "demo", "", &b), -1);
    ck_assert_int_eq(sasl_plain_encode("", F255 "x", "p", &b), -1);
    buf_free(&b);
}
END_TEST

START_TEST(test_plain_b64_hostile)
{
    struct sasl_plain p;
    const char *err = NULL;
    static const char *bad[] = { "", "*", "=", "AGRlbW8Ac2VjcmV0=",
                                 "AGRlbW8Ac2VjcmV", "AGRlbW8A c2VjcmV0" };
    char big[2048];

    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_int_eq(sasl_plain_decode64(bad[i], strlen(bad[i]), &p, &err), -1);
    memset(big, 'A', sizeof(big));
    ck_assert_int_eq(sasl_plain_decode64(big, sizeof(big), &p, &err), -1);
    ck_assert_str_eq(err, "PLAIN message too long");
}
END_TEST

/* ---- LOGIN -------------------------------------------------------------- */

static const struct {
    const char *b64;
    enum sasl_login_field field;
    int result;
    const char *value;
} login_table[] = {
    { "ZGVtbw==", SASL_LOGIN_USER, 0, "demo" },
    { "c2VjcmV0", SASL_LOGIN_PASSWORD, 0, "secret" },
    { "dGFiCWluCXBhc3M=", SASL_LOGIN_PASSWORD, 0, "tab\tin\tpass" },
    { "dGFiCWluCXBhc3M=", SASL_LOGIN_USER, -1, NULL },   /* control char */
    { "ZGVtbwo=", SASL_LOGIN_USER, -1, NULL },           /* "demo\n" */
    { "", SASL_LOGIN_USER, -1, NULL },                   /* empty */
    { "", SASL_LOGIN_PASSWORD, -1, NULL },
    { "AA==", SASL_LOGIN_PASSWORD, -1, NULL },           /* NUL */
    { "ZGUAbW8=", SASL_LOGIN_USER, -1, NULL },           /* "de\0mo" */
    { "*", SASL_LOGIN_USER, -1, NULL },
    { "ZGVtbw", SASL_LOGIN_USER, -1, NULL },
    { "ZGVtbw==\r\n", SASL_LOGIN_USER, -1, NULL },
};

START_TEST(test_login_table)
{
    char out[SASL_FIELD_MAX + 1];
    const char *err = NULL;
    const char *s = login_table[_i].b64;
    int r = sasl_login_decode64(s, strlen(s), login_table[_i].field, out,
                                sizeof(out), &err);

    ck_assert_int_eq(r, login_table[_i].result);
    if (r == 0)
        ck_assert_str_eq(out, login_table[_i].value);
    else
        ck_assert_str_eq(out, "");
}
END_TEST

START_TEST(test_login_lengths)
{
    char out[SASL_FIELD_MAX + 1];
    const char *err = NULL;
    buf_t b = BUF_INIT;

    ck_assert_int_eq(sasl_base64_encode(F255, 255, &b), 0);
    ck_assert_int_eq(sasl_login_decode64(b.data, b.len, SASL_LOGIN_USER, out,
                                         sizeof(out), &err), 0);
    ck_assert_str_eq(out, F255);
    buf_reset(&b);
    ck_assert_int_eq(sasl_base64_encode(F255 "x", 256, &b), 0);
    ck_assert_int_eq(sasl_login_decode64(b.data, b.len, SASL_LOGIN_USER, out,
                                         sizeof(out), &err), -1);
    ck_assert_str_eq(err, "LOGIN response too long");
    /* too small an output buffer is refused, not overrun */
    ck_assert_int_eq(sasl_login_decode64("ZGVtbw==", 8, SASL_LOGIN_USER, out,
                                         10, &err), -1);
    buf_free(&b);
}
END_TEST

static Suite *sasl_suite(void)
{
    Suite *s = suite_create("sasl");
    TCase *b = tcase_create("base64");
    TCase *p = tcase_create("plain");
    TCase *l = tcase_create("login");

    tcase_add_loop_test(b, test_b64_good, 0, sizeof(b64_good) / sizeof(b64_good[0]));
    tcase_add_loop_test(b, test_b64_bad, 0, sizeof(b64_bad) / sizeof(b64_bad[0]));
    tcase_add_test(b, test_b64_embedded_nul);
    tcase_add_test(b, test_b64_cap);
    suite_add_tcase(s, b);
    tcase_add_loop_test(p, test_plain_table, 0,
                        sizeof(plain_table) / sizeof(plain_table[0]));
    tcase_add_test(p, test_plain_encode);
    tcase_add_test(p, test_plain_b64_hostile);
    suite_add_tcase(s, p);
    tcase_add_loop_test(l, test_login_table, 0,
                        sizeof(login_table) / sizeof(login_table[0]));
    tcase_add_test(l, test_login_lengths);
    suite_add_tcase(s, l);
    return s;
}

int main(void)
{
    return tern_check_run(sasl_suite(), true);
}
