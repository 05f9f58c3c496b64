"""header_checks and body_checks through smtpd with pcre: tables: every
action (REJECT with its code and text, DISCARD, HOLD, WARN, IGNORE,
REPLACE, PREPEND), body lines, a catastrophic regex that must not hang
the session, and a broken table that makes smtpd defer (451 4.3.0)
instead of accepting mail unchecked."""
import os
import smtplib
import unittest

from ternlab import SharedInstanceTestCase, TernTestCase, subject_of, wait_for, WAIT

HEADER_CHECKS = r"""# header_checks for the test
/^Subject: reject-me/          REJECT no thanks
/^Subject: reject-plain/       REJECT
/^Subject: discard-me/         DISCARD into the void
/^Subject: hold-me/            HOLD look at it later
/^Subject: warn-me/            WARN odd subject
/^X-Drop:/                     IGNORE
/^X-Old: (.*)/                 REPLACE X-New: was $1
/^X-Mark:/                     PREPEND X-Before: yes
if /^X-Slow:/
/^X-Slow: (a+)+$/              REJECT slow regex matched
endif
"""

BODY_CHECKS = r"""/^reject this body line$/     REJECT body says no
/^drop this line$/             IGNORE
/^old body line$/              REPLACE new body line
"""

FROM = "a@example.org"
TO = "demo@localhost"


def message(subject, headers="", body="hello\n"):
    text = "From: <%s>\nTo: <%s>\nSubject: %s\n%s\n%s" % (
        FROM, TO, subject, headers, body)
    return text.replace("\n", "\r\n").encode()


class ContentChecks(SharedInstanceTestCase):
    MAIN = {"header_checks": "pcre:$config_directory/header_checks",
            "body_checks": "pcre:$config_directory/body_checks",
            "header_size_limit": "4096"}

    @classmethod
    def setUpClass(cls):
        # the tables must exist before smtpd opens them: write them into
        # the instance's configuration directory before it starts
        from ternlab import Instance
        cls.inst = Instance(main=cls.MAIN, users=("demo", "alice"),
                            aliases={"staff": "alice, demo"})
        try:
            for name, text in (("header_checks", HEADER_CHECKS),
                               ("body_checks", BODY_CHECKS)):
                with open(os.path.join(cls.inst.etc, name), "w") as f:
                    f.write(text)
            cls.inst.start()
        except Exception:
            cls.inst.cleanup()
            raise

    def send(self, subject, to=TO, **kw):
        with self.inst.smtp() as s:
            s.ehlo("client.test")
            return s.sendmail(FROM, [to], message(subject, **kw))

    def refused(self, subject, **kw):
        with self.assertRaises(smtplib.SMTPDataError) as cm:
            self.send(subject, **kw)
        return cm.exception.smtp_code, cm.exception.smtp_error.decode()

    def delivered(self, subject, user="demo"):
        def find():
            for m in self.inst.messages(user):
                if subject_of(m) == subject:
                    return m
            return None
        return wait_for(find, 60, 0.1, "message %r" % subject)

    def not_delivered(self, subject):
        self.inst.wait_quiet(("demo", "alice"))
        got = [subject_of(m) for m in self.inst.messages("demo")]
        self.assertNotIn(subject, got)

    def test_reject_text_and_code(self):
        code, text = self.refused("reject-me please")
        self.assertEqual(code, 550)
        self.assertEqual(text, "5.7.1 no thanks")
        self.assertLogHas(
            self.inst, "reject: header Subject: reject-me please from "
            "unknown[127.0.0.1]; from=<a@example.org> to=<demo@localhost> "
            "proto=ESMTP helo=<client.test>: 5.7.1 no thanks")
        self.not_delivered("reject-me please")

    def test_reject_default_text(self):
        code, text = self.refused("reject-plain")
        self.assertEqual((code, text), (550, "5.7.1 message content rejected"))

    def test_discard_leaves_nothing(self):
        before = len(self.inst.queue_files("hold"))
        self.send("discard-me now")         # accepted: 250
        self.assertLogHas(self.inst, "discard: header Subject: discard-me now")
        self.not_delivered("discard-me now")
        for q in ("incoming", "active", "deferred"):
            self.assertEqual(self.inst.queue_files(q), [])
        self.assertEqual(len(self.inst.queue_files("hold")), before)

    def test_hold_goes_to_hold_queue(self):
        before = set(self.inst.queue_files("hold"))
        self.send("hold-me for review")
        self.assertLogHas(self.inst, "hold: header Subject: hold-me for "
                          "review from unknown[127.0.0.1]")
        new = set(self.inst.queue_files("hold")) - before
        self.assertEqual(len(new), 1)
        qid = new.pop()
        with open(os.path.join(self.inst.spool, "hold", qid), "rb") as f:
            self.assertIn(b"Subject: hold-me for review", f.read())
        self.not_delivered("hold-me for review")

    def test_warn_logs_and_delivers(self):
        self.send("warn-me")
        self.assertLogHas(self.inst, "warning: header Subject: warn-me from "
                          "unknown[127.0.0.1]")
        self.delivered("warn-me")

    def test_ignore_replace_prepend(self):
        self.send("edited", headers="X-Drop: secret\n\tfolded\nX-Old: value\n"
                  "X-Mark: 1\n",
                  body="keep\ndrop this line\nold body line\nend\n")
        m = self.delivered("edited")
        self.assertNotIn(b"X-Drop", m)
        self.assertNotIn(b"folded", m)
        self.assertNotIn(b"X-Old", m)
        self.assertIn(b"X-New: was value\n", m)
        self.assertIn(b"X-Before: yes\nX-Mark: 1\n", m)
        body = m.split(b"\n\n", 1)[1]
        self.assertEqual(body, b"keep\nnew body line\nend\n")

    def test_body_checks_reject(self):
        code, text = self.refused("body test",
                                  body="fine\nreject this body line\nmore\n")
        self.assertEqual((code, text), (550, "5.7.1 body says no"))
        self.assertLogHas(self.inst, "reject: body reject this body line from "
                          "unknown[127.0.0.1]")

    def test_catastrophic_regex_does_not_hang(self):
        # (a+)+$ against a's and a final b backtracks exponentially; the
        # match limit ends it, the rule is skipped, the session goes on
        self.send("slow", headers="X-Slow: %sb\n" % ("a" * 60))
        self.assertLogHas(self.inst, "match limit")
        self.delivered("slow")
        with self.inst.smtp() as s:        # the smtpd still answers
            self.assertEqual(s.noop()[0], 250)


    def test_forwarded_copy_not_checked_again(self):
        # local's alias expansion writes a new queue file through cleanup:
        # it was inspected on arrival, so PREPEND happens once
        self.send("to the list", to="staff@localhost", headers="X-Mark: 1\n")
        for user in ("demo", "alice"):
            m = self.delivered("to the list", user)
            self.assertEqual(m.count(b"X-Before: yes\n"), 1, m)

    def test_header_size_limit(self):
        # past header_size_limit (4096 here) the header ends: a Subject
        # after that is body, never meets header_checks, and an empty
        # line separates it from the headers
        filler = "".join("X-Filler-%03d: %s\n" % (i, "x" * 50)
                         for i in range(100))
        self.send("big header", headers=filler + "Subject: reject-me\n")
        m = self.delivered("big header")
        head, body = m.split(b"\n\n", 1)
        self.assertIn(b"Subject: reject-me\n", body)
        self.assertLess(len(head), 4096 + 1000)   # + Received, Return-Path
        self.assertLogHas(self.inst, "header section longer than 4096 bytes")


class BrokenTable(TernTestCase):
    def test_broken_table_defers(self):
        inst = self.instance(main={
            "header_checks": "pcre:$config_directory/header_checks"})
        with open(os.path.join(inst.etc, "header_checks"), "w") as f:
            f.write("/fine/ DUNNO\n/(unclosed/ REJECT\n")
        inst.start()
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail(FROM)
            s.rcpt(TO)
            code, text = s.docmd("DATA")
            self.assertEqual(code, 451)
            self.assertTrue(text.startswith(b"4.3.0"), text)
        self.assertLogHas(inst, "header_checks: ")
        self.assertLogHas(inst, "header_checks:2: regex /(unclosed/: "
                          "missing closing parenthesis")
        self.assertEqual(inst.queue_files("incoming"), [])


if __name__ == "__main__":
    unittest.main()
