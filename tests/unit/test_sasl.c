/*
 * test_sasl - unit tests for lib/util/sasl.c: base64 (RFC 4648 vectors,
 * hostile spellings), SASL PLAIN and LOGIN messages from tables of good
 * and hostile client responses; SCRAM-SHA-256 (lib/util/scram.c): the
 * RFC 7677 test vector, stored secrets, hostile client messages.
 */
#include <check.h>

#include "check_main.h"
#include <string.h>

#include "util/buf.h"
#include "util/sasl.h"
#include "util/scram.h"

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


/* ---- SCRAM-SHA-256 ------------------------------------------------------ */

/* RFC 7677 section 3 */
#define V_CFIRST "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
#define V_SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"
#define V_SFIRST "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
                 "s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
#define V_CFINAL "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0," \
                 "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
#define V_SFINAL "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
#define V_SALT "W22ZaJ0SNY7soEsUEjb6gQ=="

/* scram_vector_secrets - "pencil" with the RFC's salt */
static void scram_vector_secrets(struct scram_secrets *sec)
{
    buf_t salt = BUF_INIT;
    const char *err = NULL;

    ck_assert_int_eq(sasl_base64_decode(V_SALT, strlen(V_SALT), &salt, &err),
                     0);
    ck_assert_int_eq(scram_secrets_derive("pencil", 6,
                                          (const unsigned char *)salt.data,
                                          salt.len, 4096, sec), 0);
    buf_free(&salt);
}

/* scram_start - client-first and server-first of the vector */
static void scram_start(struct scram_server *st, const char *cfirst,
                        const struct scram_secrets *sec)
{
    buf_t out = BUF_INIT;
    const char *err = NULL;

    ck_assert_msg(scram_client_first(st, cfirst, strlen(cfirst), &err) == 0,
                  "%s: %s", cfirst, err);
    ck_assert_int_eq(scram_server_first(st, sec, V_SNONCE, &out, &err), 0);
    buf_free(&out);
}

START_TEST(test_scram_vector)
{
    struct scram_secrets sec;
    struct scram_server st;
    buf_t out = BUF_INIT;
    const char *err = NULL;

    scram_vector_secrets(&sec);
    ck_assert_int_eq(scram_client_first(&st, V_CFIRST, strlen(V_CFIRST),
                                        &err), 0);
    ck_assert_str_eq(st.user, "user");
    ck_assert_int_eq(scram_server_first(&st, &sec, V_SNONCE, &out, &err), 0);
    ck_assert_str_eq(buf_str(&out), V_SFIRST);
    /* out of order: a second server-first */
    ck_assert_int_eq(scram_server_first(&st, &sec, V_SNONCE, &out, &err), -1);
    buf_reset(&out);
    ck_assert_int_eq(scram_client_final(&st, V_CFINAL, strlen(V_CFINAL), &out,
                                        &err), 1);
    ck_assert_str_eq(buf_str(&out), V_SFINAL);
    scram_server_clear(&st);
    scram_secrets_clear(&sec);
    buf_free(&out);
}
END_TEST

/* the stored form round-trips and the RFC secrets are what they are */
START_TEST(test_scram_secrets)
{
    struct scram_secrets sec, back, f1, f2;
    buf_t txt = BUF_INIT;
    const char *err = NULL;
    static const unsigned char key[] = "per-process key";

    scram_vector_secrets(&sec);
    ck_assert_int_eq(scram_secrets_format(&sec, &txt), 0);
    ck_assert_str_eq(buf_str(&txt), "scram-sha-256:4096:" V_SALT
                     ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
                     ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=");
    ck_assert_int_eq(scram_secrets_parse(txt.data, txt.len, &back, &err), 0);
    ck_assert(memcmp(&sec, &back, sizeof(sec)) == 0);
    ck_assert_int_eq(scram_secrets_make("pencil", 4096, &back), 0);
    ck_assert_uint_eq(back.salt_len, SCRAM_SALT_DEFAULT);
    ck_assert(memcmp(back.stored_key, sec.stored_key, SCRAM_KEY_LEN) != 0);
    ck_assert_int_eq(scram_secrets_derive("pencil", 6, sec.salt, 4, 4096,
                                          &back), -1);
    ck_assert_int_eq(scram_secrets_derive("pencil", 6, sec.salt, 16, 4095,
                                          &back), -1);
    /* fake secrets are stable per name and differ between names */
    ck_assert_int_eq(scram_secrets_fake("ghost", key, sizeof(key), &f1), 0);
    ck_assert_int_eq(scram_secrets_fake("ghost", key, sizeof(key), &f2), 0);
    ck_assert(memcmp(&f1, &f2, sizeof(f1)) == 0);
    ck_assert_uint_eq(f1.iter, SCRAM_ITER_DEFAULT);
    ck_assert_int_eq(scram_secrets_fake("ghost2", key, sizeof(key), &f2), 0);
    ck_assert(memcmp(f1.salt, f2.salt, f1.salt_len) != 0);
    buf_free(&txt);
}
END_TEST

static const char *scram_secrets_bad[] = {
    "",
    "$y$j9T$abc",
    "scram-sha-256:",
    "scram-sha-1:4096:" V_SALT ":AAAA:AAAA",
    "scram-sha-256:4095:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
    "scram-sha-256:04096:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
    "scram-sha-256:99999999:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
    "scram-sha-256:4096:AAAA:WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",           /* salt */
    "scram-sha-256:4096:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT"
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",            /* key */
    "scram-sha-256:4096:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=:",           /* extra */
    "scram-sha-256:4096:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=",
    "scram-sha-256:4x96:" V_SALT ":WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
        ":wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=",
};

START_TEST(test_scram_secrets_bad)
{
    struct scram_secrets sec;
    const char *err = NULL, *s = scram_secrets_bad[_i];

    ck_assert_msg(scram_secrets_parse(s, strlen(s), &sec, &err) == -1,
                  "accepted: %s", s);
    ck_assert_ptr_nonnull(err);
}
END_TEST

/* client-first messages: accepted (with the user they name) or refused */
static const struct { const char *msg, *user; } scram_first_table[] = {
    { V_CFIRST, "user" },
    { "y,,n=user,r=abc", "user" },
    { "n,a=user,n=user,r=abc", "user" },
    { "n,,n=a=2Cb=3Dc,r=abc", "a,b=c" },
    { "n,,n=user,r=abc,x=ext", "user" },
    { "p=tls-unique,,n=user,r=abc", NULL },     /* channel binding */
    { "p,,n=user,r=abc", NULL },
    { "x,,n=user,r=abc", NULL },
    { "n,n=user,r=abc", NULL },
    { "n,,", NULL },
    { "n,,n=,r=abc", NULL },
    { "n,,n=us=2Xer,r=abc", NULL },             /* bad escape */
    { "n,,n=us=er,r=abc", NULL },
    { "n,,n=us=2,r=abc", NULL },
    { "n,,n=us\ter,r=abc", NULL },              /* control character */
    { "n,,n=user", NULL },
    { "n,,n=user,r=", NULL },
    { "n,,n=user,r=a b", NULL },                /* nonce not printable */
    { "n,,n=user,r=ab\x7f", NULL },
    { "n,,r=abc,n=user", NULL },                /* order */
    { "n,,m=ext,n=user,r=abc", NULL },          /* mandatory extension */
    { "n,,n=user,r=abc,m=x", NULL },
    { "n,,n=user,r=abc,", NULL },
    { "n,,n=user,r=abc,x", NULL },
    { "n,a=other,n=user,r=abc", NULL },         /* authzid differs */
    { "n,a=,n=user,r=abc", NULL },
    { "", NULL },
};

START_TEST(test_scram_first_table)
{
    struct scram_server st;
    const char *err = NULL, *m = scram_first_table[_i].msg;
    int r = scram_client_first(&st, m, strlen(m), &err);

    if (scram_first_table[_i].user != NULL) {
        ck_assert_msg(r == 0, "refused %s: %s", m, err);
        ck_assert_str_eq(st.user, scram_first_table[_i].user);
    } else {
        ck_assert_msg(r == -1, "accepted %s", m);
        ck_assert_ptr_nonnull(err);
    }
}
END_TEST

START_TEST(test_scram_first_hostile)
{
    struct scram_server st;
    const char *err = NULL;
    char big[SCRAM_MSG_MAX + 64];
    static const char nul[] = "n,,n=us\0er,r=abc";

    ck_assert_int_eq(scram_client_first(&st, nul, sizeof(nul) - 1, &err), -1);
    ck_assert_int_eq(scram_client_first(&st, "p=x,,", 5, &err), -1);
    ck_assert_str_eq(err, "SCRAM channel binding is not supported");
    /* a user name of 256 bytes, a nonce of 129, a message over the cap */
    memcpy(big, "n,,n=", 5);
    memset(big + 5, 'u', 256);
    memcpy(big + 261, ",r=abc", 7);
    ck_assert_int_eq(scram_client_first(&st, big, strlen(big), &err), -1);
    memcpy(big, "n,,n=u,r=", 9);
    memset(big + 9, 'r', 129);
    big[138] = '\0';
    ck_assert_int_eq(scram_client_first(&st, big, strlen(big), &err), -1);
    big[137] = '\0';
    ck_assert_int_eq(scram_client_first(&st, big, strlen(big), &err), 0);
    memset(big, 'x', sizeof(big));
    memcpy(big, "n,,n=u,r=abc,x=", 15);
    ck_assert_int_eq(scram_client_first(&st, big, SCRAM_MSG_MAX + 1, &err),
                     -1);
    /* client-final before server-first */
    ck_assert_int_eq(scram_client_first(&st, V_CFIRST, strlen(V_CFIRST),
                                        &err), 0);
    ck_assert_int_eq(scram_client_final(&st, V_CFINAL, strlen(V_CFINAL), NULL,
                                        &err), -1);
}
END_TEST

/* client-final messages against the vector: 1 good proof, 0 wrong
   proof, -1 malformed or mismatched */
static const struct { const char *msg; int result; } scram_final_table[] = {
    { V_CFINAL, 1 },
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,x=1,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", 0 }, /* ext: new AM */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVM=", 0 }, /* bad proof */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 }, /* nonce */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 },  /* cnonce only */
    { "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 }, /* c= y,, */
    { "c=cD10bHMtdW5pcXVlLCw=,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)"
      "hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 },
    { "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 }, /* order */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", -1 },
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=", -1 },
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndQ==", -1 }, /* 31 bytes */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=,x=1", -1 }, /* p last */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", -1 }, /* padding */
    { "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,m=1,"
      "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", -1 },
    { "", -1 },
};

START_TEST(test_scram_final_table)
{
    struct scram_secrets sec;
    struct scram_server st;
    buf_t out = BUF_INIT;
    const char *err = NULL, *m = scram_final_table[_i].msg;
    int r;

    scram_vector_secrets(&sec);
    scram_start(&st, V_CFIRST, &sec);
    r = scram_client_final(&st, m, strlen(m), &out, &err);
    ck_assert_msg(r == scram_final_table[_i].result, "%s: %d (%s)", m, r,
                  err ? err : "");
    ck_assert_uint_eq(out.len, r == 1 ? strlen(V_SFINAL) : 0);
    scram_server_clear(&st);
    buf_free(&out);
}
END_TEST

/* the stateless check: the vector's server-first is accepted, altered
   ones are not */
START_TEST(test_scram_first_check)
{
    static const char *bad[] = {
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqX%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4097",
        "r=rOprNGfwEbeRWgbNEkqO%hvYD,s=X22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "r=rOprNGfwEbeRWgbNEkqO%hvYD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,",
        "r=rOprNGfwEbeRWgbNEkqO%hv YD,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
        "",
    };
    struct scram_secrets sec;
    struct scram_server st;
    buf_t out = BUF_INIT;
    const char *err = NULL;

    scram_vector_secrets(&sec);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ck_assert_int_eq(scram_client_first(&st, V_CFIRST, strlen(V_CFIRST),
                                            &err), 0);
        ck_assert_msg(scram_server_first_check(&st, &sec, bad[i],
                                               strlen(bad[i]), &err) == -1,
                      "accepted %s", bad[i]);
        ck_assert_int_eq(scram_client_final(&st, V_CFINAL, strlen(V_CFINAL),
                                            &out, &err), -1);
    }
    ck_assert_int_eq(scram_client_first(&st, V_CFIRST, strlen(V_CFIRST), &err),
                     0);
    ck_assert_int_eq(scram_server_first_check(&st, &sec, V_SFIRST,
                                              strlen(V_SFIRST), &err), 0);
    ck_assert_int_eq(scram_client_final(&st, V_CFINAL, strlen(V_CFINAL), &out,
                                        &err), 1);
    ck_assert_str_eq(buf_str(&out), V_SFINAL);
    buf_free(&out);
}
END_TEST

/* a "y,," client binds "y,," (c=eSws); a wrong password is 0 */
START_TEST(test_scram_y_flag_and_wrong_password)
{
    struct scram_secrets sec, other;
    struct scram_server st;
    buf_t out = BUF_INIT;
    const char *err = NULL;
    static const char y_final[] =
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";

    scram_vector_secrets(&sec);
    scram_start(&st, "y,,n=user,r=rOprNGfwEbeRWgbNEkqO", &sec);
    /* the channel binding matches; the proof was for "n,," */
    ck_assert_int_eq(scram_client_final(&st, y_final, strlen(y_final), &out,
                                        &err), 0);
    ck_assert_int_eq(scram_secrets_derive("pencil2", 7, sec.salt,
                                          sec.salt_len, 4096, &other), 0);
    scram_start(&st, V_CFIRST, &other);
    ck_assert_int_eq(scram_client_final(&st, V_CFINAL, strlen(V_CFINAL), &out,
                                        &err), 0);
    ck_assert_uint_eq(out.len, 0);
    buf_free(&out);
}
END_TEST

static Suite *sasl_suite(void)
{
    Suite *s = suite_create("sasl");
    TCase *b = tcase_create("base64");
    TCase *p = tcase_create("plain");
    TCase *l = tcase_create("login");
    TCase *sc = tcase_create("scram");

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
    tcase_add_test(sc, test_scram_vector);
    tcase_add_test(sc, test_scram_secrets);
    tcase_add_loop_test(sc, test_scram_secrets_bad, 0,
                        sizeof(scram_secrets_bad) / sizeof(scram_secrets_bad[0]));
    tcase_add_loop_test(sc, test_scram_first_table, 0,
                        sizeof(scram_first_table) / sizeof(scram_first_table[0]));
    tcase_add_test(sc, test_scram_first_hostile);
    tcase_add_loop_test(sc, test_scram_final_table, 0,
                        sizeof(scram_final_table) / sizeof(scram_final_table[0]));
    tcase_add_test(sc, test_scram_y_flag_and_wrong_password);
    tcase_add_test(sc, test_scram_first_check);
    suite_add_tcase(s, sc);
    return s;
}

int main(void)
{
    return tern_check_run(sasl_suite(), true);
}
