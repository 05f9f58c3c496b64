"""Bounces (RFC 3464): a message to a local alias whose target does not
exist bounces; qmgr sends the sender (demo@localhost, a local Maildir)
a multipart/report through cleanup and removes the original. The report
is parsed with Python's email package: its structure, the
delivery-status fields (ENVID and ORCPT echoed), RET=HDRS, NOTIFY=NEVER,
and bounces of null-sender mail (to postmaster, and never a loop).
"""
import email
import email.policy
import re
import time
import unittest

from ternlab import FAST_RETRY, TernTestCase
from test_crash import commit_queue_file, queue_file_bytes

SENDER = "demo@localhost"
ALIASES = {"lost": "nosuchuser"}


def send(inst, sender, rcpt, subject, mail_options=(), rcpt_options=()):
    body = ("Subject: %s\r\nFrom: <%s>\r\n\r\nthe body text\r\n"
            % (subject, sender or "MAILER-DAEMON")).encode()
    with inst.smtp() as s:
        s.ehlo()
        s.sendmail(sender, [rcpt], body, mail_options=list(mail_options),
                   rcpt_options=list(rcpt_options))


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def parts(report):
    return list(report.iter_parts())


class Bounce(TernTestCase):

    def start(self, **main):
        return self.instance(main=dict(FAST_RETRY, **main),
                             aliases=ALIASES).start()

    def test_full_report_with_envid_and_orcpt(self):
        inst = self.start()
        send(inst, SENDER, "lost@localhost", "lost mail",
             ["RET=FULL", "ENVID=env-42"],
             ["NOTIFY=FAILURE", "ORCPT=rfc822;Lost@localhost"])
        raw = inst.wait_messages("demo", 1)[0]
        m = parse(raw)
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m.get_param("report-type"), "delivery-status")
        self.assertEqual(m["Subject"], "Undelivered Mail Returned to Sender")
        self.assertIn("MAILER-DAEMON@", m["From"])
        self.assertEqual(m["To"], SENDER)
        self.assertEqual(m["Auto-Submitted"], "auto-replied")
        self.assertIsNotNone(m["Message-ID"])
        self.assertIsNotNone(m["Date"])
        self.assertEqual(m.defects, [])
        text, status, orig = parts(m)
        self.assertEqual(text.get_content_type(), "text/plain")
        self.assertIn("<lost@localhost>: unknown user", text.get_content())
        self.assertEqual(status.get_content_type(), "message/delivery-status")
        per_msg, per_rcpt = status.get_payload()
        self.assertTrue(per_msg["Reporting-MTA"].startswith("dns; "))
        self.assertEqual(per_msg["Original-Envelope-Id"], "env-42")
        self.assertIsNotNone(per_msg["Arrival-Date"])
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; lost@localhost")
        self.assertEqual(per_rcpt["Original-Recipient"],
                         "rfc822; Lost@localhost")
        self.assertEqual(per_rcpt["Action"], "failed")
        self.assertRegex(per_rcpt["Status"], r"^5\.\d{1,3}\.\d{1,3}$")
        self.assertIn("unknown user", per_rcpt["Diagnostic-Code"])
        self.assertEqual(orig.get_content_type(), "message/rfc822")
        inner = orig.get_payload()[0]
        self.assertEqual(inner["Subject"], "lost mail")
        self.assertIn("the body text", inner.get_content())
        # logged as Postfix does; the original is gone, nothing is held
        log = inst.log_text()
        found = re.search(r"(\w+): sender non-delivery notification: (\w+)",
                          log)
        self.assertIsNotNone(found, log[-3000:])
        self.assertIn("%s: removed" % found.group(1), log)
        inst.wait_queue_empty(30)
        self.assertEqual(inst.queue_files("hold"), [])
        # the bounce itself came from the null sender
        self.assertIn("%s: from=<>" % found.group(2), log)

    def test_ret_hdrs_returns_headers_only(self):
        inst = self.start()
        send(inst, SENDER, "lost@localhost", "headers only", ["RET=HDRS"])
        m = parse(inst.wait_messages("demo", 1)[0])
        _, status, orig = parts(m)
        self.assertEqual(orig.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: headers only", orig.get_content())
        self.assertNotIn("the body text", orig.get_content())
        self.assertIsNone(status.get_payload()[0]["Original-Envelope-Id"])
        self.assertIsNone(status.get_payload()[1]["Original-Recipient"])

    def test_notify_never_gives_no_bounce(self):
        inst = self.start()
        send(inst, SENDER, "lost@localhost", "never tell", (),
             ["NOTIFY=NEVER"])
        self.assertLogHas(inst, "no non-delivery notification: not requested")
        inst.wait_queue_empty(30)
        # a second one without NOTIFY bounces: the only report demo gets
        send(inst, SENDER, "lost@localhost", "do tell")
        msgs = inst.wait_messages("demo", 1)
        inst.wait_queue_empty(30)
        self.assertEqual(len(inst.messages("demo")), 1)
        inner = parts(parse(msgs[0]))[2].get_payload()[0]
        self.assertEqual(inner["Subject"], "do tell")

    def test_null_sender_bounce_goes_to_postmaster(self):
        inst = self.start()     # postmaster is an alias of demo
        send(inst, "", "lost@localhost", "bounce of a bounce")
        m = parse(inst.wait_messages("demo", 1)[0])
        self.assertEqual(m.get_content_type(), "multipart/report")
        self.assertEqual(m["To"], "postmaster")
        self.assertLogHas(inst, "postmaster non-delivery notification: ")
        inst.wait_queue_empty(30)

    def test_failed_postmaster_notice_is_only_logged(self):
        inst = self.start(**{"2bounce_notice_recipient": "gone@localhost"})
        send(inst, "", "lost@localhost", "nobody to tell")
        self.assertLogHas(inst, "postmaster non-delivery notification: ")
        self.assertLogHas(inst, "undeliverable postmaster notification "
                                "discarded")
        inst.wait_queue_empty(30)
        self.assertEqual(inst.messages("demo"), [])
        log = inst.log_text()
        self.assertEqual(log.count("non-delivery notification: "), 1,
                         log[-3000:])

    def test_bounced_before_restart_has_unknown_reason(self):
        # a file whose recipient is already marked B (what a qmgr that
        # died before reporting leaves): reported with 5.0.0, no reason
        inst = self.start()
        usec = int(time.time() * 1e6)
        data = queue_file_bytes(SENDER, ["lost@localhost"],
                                b"Subject: from before\n\nold\n", usec)
        data = data.replace(b"R\x00\x00\x00\x0elost@localhost",
                            b"B\x00\x00\x00\x0elost@localhost")
        self.assertIn(b"B\x00\x00\x00\x0elost@localhost", data)
        commit_queue_file(inst, "incoming", data, usec, seq=1)
        # found by the periodic queue run
        m = parse(inst.wait_messages("demo", 1)[0])
        per_rcpt = parts(m)[1].get_payload()[1]
        self.assertEqual(per_rcpt["Final-Recipient"], "rfc822; lost@localhost")
        self.assertEqual(per_rcpt["Status"], "5.0.0")
        self.assertIn("reason unknown", per_rcpt["Diagnostic-Code"])
        inst.wait_queue_empty(30)


if __name__ == "__main__":
    unittest.main()
