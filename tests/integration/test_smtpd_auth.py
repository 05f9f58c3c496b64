"""test_smtpd_auth - SMTP AUTH (RFC 4954) in smtpd against a live instance
made like `make run`: PLAIN and LOGIN checked by the auth service, every
reply of the exchange, Postfix's failure log line (read with fail2ban's
postfix filter regex), the failure limits, the submission policy
(smtpd_sasl_auth_required, relaying after AUTH), the Received: trace, and
real clients (swaks, msmtp) on the submission and smtps ports.

Ports of the shared instance:
  smtp_port        STARTTLS may, AUTH enabled: offered only after TLS
                   (smtpd_tls_auth_only's default)
  submission_port  TLS required, AUTH required (mkinstance)
  smtps_port       implicit TLS, AUTH required (mkinstance)
  plain            AUTH without TLS (smtpd_tls_auth_only=no), not required
  required         like plain, AUTH required
  off              AUTH disabled
  errlimit         no AUTH failure limit, smtpd_hard_error_limit=3
"""
import base64
import hashlib
import hmac
import os
import re
import shutil
import smtplib
import ssl
import subprocess
import tempfile
import unittest

from ternlab import (WAIT, Instance, SmtpClient, TernTestCase, free_port,
                     wait_for, client_context)

HAVE_OPENSSL = shutil.which("openssl") is not None

# fail2ban's filter.d/postfix.conf: mdpr-auth "warning:" is the prefix,
# mdre-auth the rest ((?i) moved into a group: Python wants global flags
# first; _port is "(?::\d+)?")
FAIL2BAN_AUTH = re.compile(
    r"warning: (?P<content>[^[]*\[(?P<host>[^\]]+)\](?::\d+)?: SASL "
    r"(?i:LOGIN|PLAIN|(?:CRAM|DIGEST)-MD5) authentication failed:"
    r"(?! Connection lost to authentication server"
    r"| Invalid authentication mechanism).*)$")


def b64(data):
    return base64.b64encode(data).decode()


def plain(user, password, authzid=""):
    return b64(("%s\0%s\0%s" % (authzid, user, password)).encode())


class Scram:
    """The client side of SCRAM-SHA-256 (RFC 5802, RFC 7677), enough to
    test the server: messages as str, tampering left to the caller."""

    def __init__(self, user, password, nonce=None, gs2="n,,"):
        self.user, self.password, self.gs2 = user, password, gs2
        self.nonce = nonce or base64.b64encode(os.urandom(18)).decode()
        name = user.replace("=", "=3D").replace(",", "=2C")
        self.first_bare = "n=%s,r=%s" % (name, self.nonce)

    def client_first(self):
        return self.gs2 + self.first_bare

    def client_final(self, server_first, proof_xor=0):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        self.salt = base64.b64decode(attrs["s"])
        self.iterations = int(attrs["i"])
        self.server_nonce = attrs["r"]
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(),
                                     self.salt, self.iterations)
        ckey = hmac.new(salted, b"Client Key", "sha256").digest()
        without = "c=%s,r=%s" % (b64(self.gs2.encode()), attrs["r"])
        am = ",".join((self.first_bare, server_first, without)).encode()
        sig = hmac.new(hashlib.sha256(ckey).digest(), am, "sha256").digest()
        proof = bytes(a ^ b for a, b in zip(ckey, sig))
        proof = bytes([proof[0] ^ proof_xor]) + proof[1:]
        skey = hmac.new(salted, b"Server Key", "sha256").digest()
        self.server_final = "v=" + b64(hmac.new(skey, am, "sha256").digest())
        return without + ",p=" + b64(proof)


def unb64(s):
    return base64.b64decode(s, validate=True).decode()


def message(subject, headers=True):
    extra = ("Date: Tue, 1 Dec 2026 12:00:00 +0000\r\n"
             "Message-ID: <%s@client.test>\r\n" % subject.replace(" ", "-")
             if headers else "")
    return ("From: demo@localhost\r\nTo: demo@localhost\r\n%s"
            "Subject: %s\r\n\r\nbody\r\n" % (extra, subject))


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdAuthTest(TernTestCase):
    @classmethod
    def setUpClass(cls):
        cls.ports = {n: free_port() for n in
                     ("plain", "required", "off", "errlimit")}
        common = " -o smtpd_sasl_auth_enable=yes -o smtpd_tls_auth_only=no"
        extra = "".join([
            "127.0.0.1:%d inet n - n - - smtpd%s\n"
            % (cls.ports["plain"], common),
            "127.0.0.1:%d inet n - n - - smtpd%s"
            " -o smtpd_sasl_auth_required=yes\n"
            % (cls.ports["required"], common),
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_sasl_auth_enable=no\n" % cls.ports["off"],
            "127.0.0.1:%d inet n - n - - smtpd%s"
            " -o smtpd_sasl_failure_limit=0 -o smtpd_hard_error_limit=3\n"
            % (cls.ports["errlimit"], common),
        ])
        # loopback outside mynetworks: relaying needs AUTH
        cls.inst = Instance(main={"smtpd_error_sleep_time": "0",
                                  "mynetworks": "192.0.2.0/24",
                                  "smtpd_sasl_auth_enable": "yes",
                                  "smtpd_sasl_authenticated_header": "yes"},
                            services_extra=extra, tls=True)
        try:
            cls.inst.start()
        except Exception:
            cls.inst.cleanup()
            raise
        with open(os.path.join(cls.inst.dir, "demo.password")) as f:
            cls.pw = f.read().strip()

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    # --- helpers ----------------------------------------------------------
    def raw(self, port="plain"):
        c = SmtpClient(self.ports[port])
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        c.send(b"EHLO client.test\r\n")
        c.ehlo = c.reply()
        self.assertTrue(c.ehlo[-1].startswith("250 "))
        return c

    def cmd(self, c, line):
        c.send(line.encode() + b"\r\n")
        return c.reply()[-1]

    def smtp(self, port, tls=False):
        if tls:
            s = smtplib.SMTP_SSL("127.0.0.1", port, "client.test",
                                 timeout=WAIT, context=client_context())
        else:
            s = smtplib.SMTP("127.0.0.1", port, "client.test", timeout=WAIT)
        self.addCleanup(s.close)
        return s

    def log_count(self, text):
        return self.inst.log_text().count(text)

    def delivered(self, subject):
        def find():
            for m in self.inst.messages("demo"):
                if ("Subject: %s\n" % subject).encode() in m:
                    return m
            return None
        return wait_for(find, 60, 0.1, "message %r" % subject)

    # --- advertising --------------------------------------------------------
    def test_ehlo_without_auth_when_disabled(self):
        c = self.raw("off")
        self.assertFalse(any("AUTH" in l for l in c.ehlo))
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                         "503 5.5.1 Error: authentication not enabled")

    def test_ehlo_offers_auth(self):
        c = self.raw("plain")
        self.assertIn("250-AUTH SCRAM-SHA-256 PLAIN LOGIN", c.ehlo)

    def test_tls_auth_only_hides_auth_before_starttls(self):
        s = self.smtp(self.inst.smtp_port)
        s.ehlo()
        self.assertFalse(s.has_extn("auth"))
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain("demo", self.pw)),
                         (538, b"5.7.11 Encryption required for requested "
                               b"authentication mechanism"))
        s.starttls(context=client_context())
        s.ehlo()
        self.assertEqual(s.esmtp_features.get("auth"),
                         " SCRAM-SHA-256 PLAIN LOGIN")
        s.login("demo", self.pw)

    def test_not_offered_after_success(self):
        c = self.raw()
        self.assertTrue(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw))
                        .startswith("235 "))
        c.send(b"EHLO client.test\r\n")
        self.assertFalse(any("AUTH" in l for l in c.reply()))

    # --- PLAIN and LOGIN ------------------------------------------------------
    def test_plain_initial_response(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                         "235 2.7.0 Authentication successful")

    def test_plain_with_authzid(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH PLAIN " +
                                  plain("demo", self.pw, authzid="demo")),
                         "235 2.7.0 Authentication successful")

    def test_plain_continuation(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH PLAIN"), "334 ")
        self.assertEqual(self.cmd(c, plain("demo", self.pw)),
                         "235 2.7.0 Authentication successful")

    def test_login(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "auth login"), "334 VXNlcm5hbWU6")
        self.assertEqual(self.cmd(c, b64(b"demo")), "334 UGFzc3dvcmQ6")
        self.assertEqual(self.cmd(c, b64(self.pw.encode())),
                         "235 2.7.0 Authentication successful")

    def test_login_initial_response(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH LOGIN " + b64(b"demo")),
                         "334 UGFzc3dvcmQ6")
        self.assertEqual(self.cmd(c, b64(self.pw.encode())),
                         "235 2.7.0 Authentication successful")

    def test_login_as_address(self):
        line = ("client=unknown[127.0.0.1], sasl_method=PLAIN, "
                "sasl_username=demo\n")
        before = self.log_count(line)
        s = self.smtp(self.ports["plain"])
        s.login("demo@localhost", self.pw)
        s.sendmail("demo@localhost", ["demo@localhost"],
                   message("as address"))
        s.quit()
        self.delivered("as address")
        wait_for(lambda: self.log_count(line) > before,
                 WAIT, 0.1, "queue-ID line with sasl_username=demo")

    def test_empty_initial_response(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH PLAIN ="),
                         "535 5.7.8 Error: authentication failed: "
                         "authentication failure")

    def test_cancel(self):
        for mech, steps in (("PLAIN", []), ("LOGIN", []),
                            ("LOGIN", [b64(b"demo")])):
            c = self.raw()
            self.assertTrue(self.cmd(c, "AUTH " + mech).startswith("334 "))
            for line in steps:
                self.assertTrue(self.cmd(c, line).startswith("334 "))
            self.assertEqual(self.cmd(c, "*"),
                             "501 5.7.0 Authentication aborted")
            # the exchange is over: the next line is a command again
            self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")

    # --- SCRAM-SHA-256 ----------------------------------------------------
    FAILED = ("535 5.7.8 Error: authentication failed: "
              "authentication failure")

    def scram_first(self, c, sc, initial=True):
        """AUTH SCRAM-SHA-256 up to the server-first; returns it"""
        if initial:
            r = self.cmd(c, "AUTH SCRAM-SHA-256 " + b64(sc.client_first().encode()))
        else:
            self.assertEqual(self.cmd(c, "AUTH SCRAM-SHA-256"), "334 ")
            r = self.cmd(c, b64(sc.client_first().encode()))
        self.assertTrue(r.startswith("334 "), r)
        return unb64(r[4:])

    def test_scram_success(self):
        for initial in (True, False):
            c = self.raw()
            sc = Scram("demo", self.pw)
            sf = self.scram_first(c, sc, initial)
            self.assertRegex(sf, r"^r=%s[\x21-\x2b\x2d-\x7e]+,s=[A-Za-z0-9+/=]+,i=4096$"
                             % re.escape(sc.nonce))
            r = self.cmd(c, b64(sc.client_final(sf).encode()))
            self.assertTrue(r.startswith("334 "), r)
            self.assertEqual(unb64(r[4:]), sc.server_final)
            self.assertEqual(self.cmd(c, ""),
                             "235 2.7.0 Authentication successful")
            self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                             "503 5.5.1 Error: already authenticated")
        self.assertLogHas(self.inst, "sasl_method=SCRAM-SHA-256, "
                          "sasl_username=demo, service=smtp")

    def test_scram_relay_after_auth(self):
        line = ("client=unknown[127.0.0.1], sasl_method=SCRAM-SHA-256, "
                "sasl_username=demo\n")
        before = self.log_count(line)
        c = self.raw()
        sc = Scram("Demo@localhost", self.pw)
        sf = self.scram_first(c, sc)
        self.assertTrue(self.cmd(c, b64(sc.client_final(sf).encode()))
                        .startswith("334 "))
        self.assertEqual(self.cmd(c, ""), "235 2.7.0 Authentication successful")
        for cmd in ("MAIL FROM:<demo@localhost>", "RCPT TO:<demo@localhost>"):
            self.assertTrue(self.cmd(c, cmd).startswith("250 "), cmd)
        self.assertTrue(self.cmd(c, "DATA").startswith("354 "))
        self.assertTrue(self.cmd(c, message("scram relay") + ".")
                        .startswith("250 "))
        self.delivered("scram relay")
        wait_for(lambda: self.log_count(line) > before, WAIT, 0.1,
                 "queue-ID line with sasl_method=SCRAM-SHA-256")

    def test_scram_wrong_password_and_unknown_user(self):
        shapes = []
        for user, pw in (("demo", self.pw + "x"), ("nosuchuser", "x"),
                         ("nosuchuser", "y")):
            c = self.raw()
            sc = Scram(user, pw)
            sf = self.scram_first(c, sc)
            attrs = dict(kv.split("=", 1) for kv in sf.split(","))
            shapes.append((len(base64.b64decode(attrs["s"])), attrs["i"]))
            if user == "nosuchuser":
                shapes.append(attrs["s"])
            self.assertEqual(self.cmd(c, b64(sc.client_final(sf).encode())),
                             self.FAILED)
            self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")
        # same salt length and iterations; an unknown name's salt is stable
        self.assertEqual(shapes[0], shapes[1])
        self.assertEqual(shapes[0], shapes[3])
        self.assertEqual(shapes[2], shapes[4])
        self.assertLogHas(self.inst, "SASL SCRAM-SHA-256 authentication "
                          "failed: authentication failure, "
                          "sasl_username=nosuchuser")

    def test_scram_tampered(self):
        def final_nonce(sc, sf):
            f = sc.client_final(sf)
            # another last character (the nonce may end in "A" already)
            last = "B" if sc.server_nonce.endswith("A") else "A"
            return f.replace(",r=" + sc.server_nonce,
                             ",r=" + sc.server_nonce[:-1] + last)

        cases = [
            lambda sc, sf: sc.client_final(sf, proof_xor=1),   # bad proof
            final_nonce,                                        # nonce
            lambda sc, sf: sc.client_final(sf).replace("c=biws", "c=eSws"),
            lambda sc, sf: sc.client_final(sf).split(",p=")[0],  # no proof
            lambda sc, sf: "c=biws,%s,p=AAAA" % sf.split(",")[0],  # short
        ]
        for make in cases:
            c = self.raw()
            sc = Scram("demo", self.pw)
            sf = self.scram_first(c, sc)
            self.assertEqual(self.cmd(c, b64(make(sc, sf).encode())),
                             self.FAILED)
            self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")

    def test_scram_client_first_refused(self):
        for first in ("p=tls-server-end-point,,n=demo,r=abc",  # binding
                      "n,,r=abc,n=demo", "n,,n=demo", "n,a=root,n=demo,r=x",
                      "n,,m=x,n=demo,r=abc"):
            c = self.raw()
            self.assertEqual(self.cmd(c, "AUTH SCRAM-SHA-256 " +
                                      b64(first.encode())), self.FAILED)
            self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH SCRAM-SHA-256 ZGVt!!!"),
                         "501 5.5.2 Cannot decode response")

    def test_scram_y_flag(self):
        c = self.raw()
        sc = Scram("demo", self.pw, gs2="y,,")
        sf = self.scram_first(c, sc)
        self.assertTrue(self.cmd(c, b64(sc.client_final(sf).encode()))
                        .startswith("334 "))
        self.assertEqual(self.cmd(c, ""), "235 2.7.0 Authentication successful")

    def test_scram_cancel_and_last_response(self):
        for step in range(3):
            c = self.raw()
            sc = Scram("demo", self.pw)
            if step == 0:
                self.assertEqual(self.cmd(c, "AUTH SCRAM-SHA-256"), "334 ")
            else:
                sf = self.scram_first(c, sc)
            if step == 2:
                self.assertTrue(self.cmd(c, b64(sc.client_final(sf).encode()))
                                .startswith("334 "))
            self.assertEqual(self.cmd(c, "*"),
                             "501 5.7.0 Authentication aborted")
            self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")
            self.assertEqual(self.cmd(c, "MAIL FROM:<demo@localhost>"),
                             "250 2.1.0 Ok")
            self.assertFalse(self.cmd(c, "RCPT TO:<x@example.org>")
                             .startswith("250"))
        # anything but an empty answer to server-final is a failure
        c = self.raw()
        sc = Scram("demo", self.pw)
        sf = self.scram_first(c, sc)
        self.cmd(c, b64(sc.client_final(sf).encode()))
        self.assertEqual(self.cmd(c, b64(b"more")), self.FAILED)

    def test_invalid_base64(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH PLAIN ZGVt!!!"),
                         "501 5.5.2 Cannot decode response")
        self.assertEqual(self.cmd(c, "AUTH PLAIN"), "334 ")
        self.assertEqual(self.cmd(c, "not base64"),
                         "501 5.5.2 Cannot decode response")
        self.assertEqual(self.cmd(c, "AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(self.cmd(c, "ZGVtbw"),     # padding missing
                         "501 5.5.2 Cannot decode response")
        self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")

    def test_overlong_response(self):
        c = self.raw()
        long_b64 = b64(b"x" * 1200)                 # fits a line, not PLAIN
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + long_b64),
                         "500 5.5.6 Authentication exchange line is too long")
        self.assertEqual(self.cmd(c, "AUTH PLAIN"), "334 ")
        self.assertEqual(self.cmd(c, long_b64),
                         "500 5.5.6 Authentication exchange line is too long")
        self.assertEqual(self.cmd(c, "AUTH LOGIN"), "334 VXNlcm5hbWU6")
        self.assertEqual(self.cmd(c, "A" * 5000),   # over line_length_limit
                         "500 5.5.6 Authentication exchange line is too long")
        self.assertEqual(self.cmd(c, "NOOP"), "250 2.0.0 Ok")

    def test_auth_twice(self):
        c = self.raw()
        self.assertTrue(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw))
                        .startswith("235 "))
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                         "503 5.5.1 Error: already authenticated")

    def test_auth_in_transaction(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "MAIL FROM:<a@example.org>"),
                         "250 2.1.0 Ok")
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                         "503 5.5.1 Error: MAIL transaction in progress")

    def test_auth_before_ehlo(self):
        c = SmtpClient(self.ports["plain"])
        self.addCleanup(c.close)
        c.reply()
        self.assertEqual(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw)),
                         "503 5.5.1 Error: send EHLO first")

    def test_unknown_mechanism(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "AUTH CRAM-MD5"),
                         "504 5.5.4 Unsupported authentication mechanism")
        self.assertEqual(self.cmd(c, "AUTH"),
                         "501 5.5.4 Syntax: AUTH mechanism [initial-response]")

    def test_failure_identical_for_unknown_user(self):
        got = []
        for user, pw in (("demo", self.pw + "x"), ("nosuchuser", self.pw)):
            c = self.raw()
            got.append(self.cmd(c, "AUTH PLAIN " + plain(user, pw)))
        self.assertEqual(got[0], "535 5.7.8 Error: authentication failed: "
                                 "authentication failure")
        self.assertEqual(got[0], got[1])

    def test_pipelined_after_auth_waits_for_the_answer(self):
        c = self.raw("required")
        c.send(("AUTH PLAIN %s\r\nMAIL FROM:<demo@localhost>\r\n"
                % plain("demo", self.pw)).encode())
        self.assertEqual(c.replies(2), ["235 2.7.0 Authentication successful",
                                        "250 2.1.0 Ok"])

    # --- logging ---------------------------------------------------------------
    def test_failure_log_matches_fail2ban(self):
        c = self.raw()
        c.send(b"AUTH PLAIN " + plain("demo", "wrong").encode() + b"\r\n")
        c.reply()
        line = "warning: unknown[127.0.0.1]: SASL PLAIN authentication " \
               "failed: authentication failure"
        self.assertLogHas(self.inst, line + "\n")
        smtpd = [l for l in self.inst.log_text().splitlines()
                 if "/smtpd[" in l and line in l]
        m = FAIL2BAN_AUTH.search(smtpd[-1])
        self.assertIsNotNone(m, smtpd[-1])
        self.assertEqual(m.group("host"), "127.0.0.1")

    def test_auth_service_down_not_counted_by_fail2ban(self):
        line = ("warning: unknown[127.0.0.1]: SASL PLAIN authentication "
                "failed: Connection lost to authentication server (x)")
        self.assertIsNone(FAIL2BAN_AUTH.search(line))

    def test_disconnect_counts_and_after_auth(self):
        c = self.raw()
        self.cmd(c, "AUTH PLAIN " + plain("demo", "wrong"))
        self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw))
        self.cmd(c, "QUIT")
        self.assertLogHas(self.inst, " ehlo=1 auth=1/2 quit=1 commands=3/4")
        c2 = self.raw()
        self.assertEqual(self.cmd(c2, "AUTH LOGIN"), "334 VXNlcm5hbWU6")
        c2.close()
        self.assertLogHas(self.inst, "lost connection after AUTH from "
                                     "unknown[127.0.0.1]")

    # --- limits -----------------------------------------------------------------
    def test_failure_limit(self):
        c = self.raw()
        for _ in range(2):
            self.assertTrue(self.cmd(c, "AUTH PLAIN " + plain("demo", "bad"))
                            .startswith("535 "))
        c.send(b"AUTH PLAIN " + plain("demo", "bad").encode() + b"\r\n")
        self.assertTrue(c.reply()[-1].startswith("535 5.7.8 "))
        self.assertEqual(c.reply()[-1], "421 4.7.0 %s Error: too many failed "
                         "authentications" % "localhost.localdomain")
        self.assertTrue(c.closed())
        self.assertLogHas(self.inst, "too many failed authentications after "
                                     "AUTH from unknown[127.0.0.1]")

    def test_failures_are_smtpd_errors(self):
        c = self.raw("errlimit")
        for _ in range(2):
            self.assertTrue(self.cmd(c, "AUTH PLAIN " + plain("demo", "bad"))
                            .startswith("535 "))
        c.send(b"AUTH PLAIN " + plain("demo", "bad").encode() + b"\r\n")
        self.assertTrue(c.reply()[-1].startswith("535 "))
        self.assertEqual(c.reply()[-1], "421 4.7.0 localhost.localdomain "
                                        "Error: too many errors")
        self.assertTrue(c.closed())

    # --- submission policy -------------------------------------------------------
    def test_submission_requires_auth(self):
        s = self.smtp(self.inst.submission_port)
        s.ehlo()
        self.assertFalse(s.has_extn("auth"))
        self.assertEqual(s.docmd("AUTH", "PLAIN " + plain("demo", self.pw)),
                         (530, b"5.7.0 Must issue a STARTTLS command first"))
        s.starttls(context=client_context())
        s.ehlo()
        for cmd in ("MAIL FROM:<demo@localhost>", "RCPT TO:<demo@localhost>",
                    "DATA"):
            self.assertEqual(s.docmd(cmd),
                             (530, b"5.7.0 Authentication required"))
        s.login("demo", self.pw)
        self.assertEqual(s.docmd("MAIL FROM:<demo@localhost>")[0], 250)

    def test_smtps_requires_auth(self):
        s = self.smtp(self.inst.smtps_port, tls=True)
        s.ehlo()
        self.assertEqual(s.docmd("MAIL FROM:<demo@localhost>"),
                         (530, b"5.7.0 Authentication required"))

    def test_relay_after_auth(self):
        c = self.raw()
        self.assertEqual(self.cmd(c, "MAIL FROM:<demo@localhost>"),
                         "250 2.1.0 Ok")
        self.assertEqual(self.cmd(c, "RCPT TO:<someone@example.net>"),
                         "554 5.7.1 <someone@example.net>: Relay access denied")
        self.assertEqual(self.cmd(c, "RSET"), "250 2.0.0 Ok")
        self.assertTrue(self.cmd(c, "AUTH PLAIN " + plain("demo", self.pw))
                        .startswith("235 "))
        self.assertEqual(self.cmd(c, "MAIL FROM:<demo@localhost>"),
                         "250 2.1.0 Ok")
        self.assertEqual(self.cmd(c, "RCPT TO:<someone@example.net>"),
                         "250 2.1.5 Ok")
        self.assertEqual(self.cmd(c, "RSET"), "250 2.0.0 Ok")

    def test_starttls_forgets_auth(self):
        s = self.smtp(self.ports["plain"])
        s.login("demo", self.pw)
        s.starttls(context=client_context())
        s.ehlo()
        self.assertTrue(s.has_extn("auth"))
        s.docmd("MAIL FROM:<demo@localhost>")
        self.assertEqual(s.docmd("RCPT TO:<someone@example.net>")[0], 554)

    # --- trace --------------------------------------------------------------------
    def test_submission_delivers_with_trace(self):
        s = self.smtp(self.inst.submission_port)
        s.starttls(context=client_context())
        s.login("demo", self.pw)
        s.sendmail("demo@localhost", ["demo@localhost"],
                   message("submitted", headers=False))
        s.quit()
        m = self.delivered("submitted")
        self.assertRegex(m, rb"\t\(Authenticated sender: demo\)\n"
                            rb"\tby \S+ \(Tern\) with ESMTPSA id ")
        self.assertRegex(m, rb"\nMessage-ID: <[^>\n]+>\n")
        self.assertRegex(m, rb"\nDate: [^\n]+\n")
        self.assertRegex(self.inst.log_text(),
                         r": client=unknown\[127\.0\.0\.1\], "
                         r"sasl_method=PLAIN, sasl_username=demo\n")

    def test_port25_message_gets_no_message_id(self):
        s = self.smtp(self.ports["plain"])
        s.sendmail("a@example.org", ["demo@localhost"],
                   "Subject: unauthenticated\r\n\r\nbody\r\n")
        s.quit()
        m = self.delivered("unauthenticated")
        self.assertNotIn(b"Message-ID:", m)
        self.assertNotIn(b"Authenticated sender", m)
        self.assertIn(b" with ESMTP id ", m)

    # --- real clients ---------------------------------------------------------------
    @unittest.skipUnless(shutil.which("swaks"), "skipped: needs swaks")
    def test_swaks_auth(self):
        support = subprocess.run(["swaks", "--support"], capture_output=True,
                                 text=True).stdout
        if "TLS not available" in support:
            self.skipTest("skipped: swaks without TLS (Net::SSLeay)")
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d"
                            % self.inst.submission_port, "--tls",
                            "--auth", "PLAIN", "--auth-user", "demo",
                            "--auth-password", self.pw, "--to",
                            "demo@localhost", "--from", "demo@localhost",
                            "--helo", "client.test",
                            "--header", "Subject: swaks auth"],
                           capture_output=True, text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        self.assertIn(b"with ESMTPSA id ", self.delivered("swaks auth"))

    def msmtp(self, port, tls_mode, subject, auth="on"):
        d = tempfile.mkdtemp(prefix="tern-msmtp-")
        self.addCleanup(shutil.rmtree, d, True)
        rc = os.path.join(d, "msmtprc")
        with open(rc, "w") as f:
            f.write("account default\nhost 127.0.0.1\nport %d\n"
                    "auth %s\nuser demo\npassword %s\nfrom demo@localhost\n"
                    "tls on\ntls_starttls %s\ntls_certcheck off\n"
                    "logfile %s\n" % (port, auth, self.pw, tls_mode,
                                      os.path.join(d, "log")))
        os.chmod(rc, 0o600)
        r = subprocess.run(["msmtp", "-C", rc, "demo@localhost"],
                           input=message(subject), capture_output=True,
                           text=True, timeout=120)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return self.delivered(subject)

    @unittest.skipUnless(shutil.which("msmtp"), "skipped: needs msmtp")
    def test_msmtp_submission_starttls(self):
        m = self.msmtp(self.inst.submission_port, "on", "msmtp starttls")
        self.assertIn(b"with ESMTPSA id ", m)

    @unittest.skipUnless(shutil.which("msmtp"), "skipped: needs msmtp")
    def test_msmtp_smtps(self):
        m = self.msmtp(self.inst.smtps_port, "off", "msmtp smtps")
        self.assertIn(b"with ESMTPSA id ", m)

    def test_msmtp_scram(self):
        """an independent SCRAM-SHA-256 client: msmtp with GNU SASL"""
        v = subprocess.run(["msmtp", "--version"], capture_output=True,
                           text=True) if shutil.which("msmtp") else None
        if v is None or "scram-sha-256" not in v.stdout:
            self.skipTest("skipped: needs msmtp with SCRAM-SHA-256 (GNU SASL)")
        line = ("client=unknown[127.0.0.1], sasl_method=SCRAM-SHA-256, "
                "sasl_username=demo\n")
        before = self.log_count(line)
        m = self.msmtp(self.inst.submission_port, "on", "msmtp scram",
                       auth="scram-sha-256")
        self.assertIn(b"with ESMTPSA id ", m)
        wait_for(lambda: self.log_count(line) > before, WAIT, 0.1,
                 "queue-ID line with sasl_method=SCRAM-SHA-256")


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class SmtpdAuthServiceDownTest(TernTestCase):
    def test_tempfail_when_auth_is_down(self):
        port = free_port()
        inst = self.instance(services_extra="127.0.0.1:%d inet n - n - - "
                             "smtpd -o smtpd_sasl_auth_enable=yes "
                             "-o smtpd_tls_auth_only=no\n" % port)
        inst.edit_master_conf("auth unix - n n - - auth\n", "")
        inst.start()
        with inst.smtp() as s:          # smtpd_sasl_auth_enable: default no
            s.ehlo()
            self.assertFalse(s.has_extn("auth"))
            self.assertEqual(s.docmd("AUTH PLAIN")[0], 503)
        c = SmtpClient(port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(b"AUTH PLAIN " + plain("demo", "x").encode() + b"\r\n")
        self.assertEqual(c.reply()[-1],
                         "454 4.7.0 Temporary authentication failure")
        c.send(b"NOOP\r\n")
        self.assertEqual(c.reply()[-1], "250 2.0.0 Ok")
        self.assertLogHas(inst, "SASL PLAIN authentication failed: "
                                "Connection lost to authentication server")
        self.assertNotIn("authentication failed: authentication failure",
                         inst.log_text())


class SmtpdAuthRateTest(TernTestCase):
    def test_auth_rate_limit_across_connections(self):
        port = free_port()
        inst = self.instance(
            main={"smtpd_client_auth_rate_limit": "2",
                  "smtpd_client_event_limit_exceptions": "",
                  "anvil_rate_time_unit": "3600s",
                  "smtpd_error_sleep_time": "0"},
            services_extra="127.0.0.1:%d inet n - n - - smtpd "
                           "-o smtpd_sasl_auth_enable=yes "
                           "-o smtpd_tls_auth_only=no\n" % port)
        inst.start()
        got = []
        for _ in range(3):
            c = SmtpClient(port)
            self.addCleanup(c.close)
            c.reply()
            c.send(b"EHLO client.test\r\n")
            c.reply()
            c.send(b"AUTH PLAIN " + plain("demo", "bad").encode() + b"\r\n")
            got.append(c.reply()[-1])
            c.close()
        self.assertTrue(got[0].startswith("535 ") and got[1].startswith("535 "),
                        got)
        self.assertEqual(got[2], "450 4.7.1 Error: too many AUTH commands "
                                 "from 127.0.0.1")
        self.assertLogHas(inst, "warning: AUTH command rate limit exceeded: "
                                "3 from unknown[127.0.0.1] for service ")


if __name__ == "__main__":
    unittest.main()
