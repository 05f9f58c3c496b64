"""Delivery status notifications beyond the plain bounce (test_bounce.py):
the one delay warning after delay_warning_time, the final bounce after
maximal_queue_lifetime with the last deferral reason, reasons kept in
defer/ across deferrals and qmgr restarts, success notices for
NOTIFY=SUCCESS (once each, also across a restart), and
bounce_size_limit. Reports are parsed with Python's email package.

Deliveries to "slow" defer while its home directory is moved away
(local defers a missing home); "lost" is an alias of a user that does
not exist, so it bounces at once.
"""
import email
import email.policy
import os
import signal
import time
import unittest

from ternlab import FAST_RETRY, TernTestCase, wait_for

SENDER = "demo@localhost"
ALIASES = {"lost": "nosuchuser", "team": "other, slow"}
USERS = ("demo", "slow", "other")


def send(inst, sender, rcpts, subject, mail_options=(), rcpt_options=(),
         body="the body text\r\n"):
    msg = ("Subject: %s\r\nFrom: <%s>\r\n\r\n%s"
           % (subject, sender or "MAILER-DAEMON", body)).encode()
    with inst.smtp() as s:
        s.ehlo()
        s.sendmail(sender, rcpts, msg, mail_options=list(mail_options),
                   rcpt_options=list(rcpt_options))


def parse(raw):
    return email.message_from_bytes(raw, policy=email.policy.default)


def reports(inst, user="demo"):
    """The user's multipart/report messages, parsed, oldest first."""
    out = []
    for raw in inst.messages(user):
        m = parse(raw)
        if m.get_content_type() == "multipart/report":
            out.append(m)
    return out


def by_subject(msgs, subject):
    return [m for m in msgs if m["Subject"] == subject]


def status_fields(report):
    """(per-message fields, [per-recipient fields]) of a report"""
    status = list(report.iter_parts())[1]
    assert status.get_content_type() == "message/delivery-status"
    blocks = status.get_payload()
    return blocks[0], blocks[1:]


def original_headers(report):
    """the attached headers of the original as text"""
    part = list(report.iter_parts())[2]
    if part.get_content_type() == "message/rfc822":
        return str(part.get_payload()[0])
    return part.get_content()


class Notices(TernTestCase):

    def start(self, **main):
        inst = self.instance(main=dict(FAST_RETRY, **main), users=USERS,
                             aliases=ALIASES).start()
        self.home = os.path.join(inst.dir, "home", "slow")
        return inst

    def home_away(self):
        os.rename(self.home, self.home + ".away")

    def home_back(self):
        os.rename(self.home + ".away", self.home)

    def restart_qmgr(self, inst):
        """SIGKILL qmgr; master starts a new one (wakeup service)."""
        old = inst.child_pids("qmgr")
        self.assertEqual(len(old), 1, old)
        os.kill(old[0], signal.SIGKILL)
        wait_for(lambda: inst.child_pids("qmgr")
                 and inst.child_pids("qmgr") != old, 60,
                 what="a new qmgr")

    def defer_log_files(self, inst):
        return inst.queue_files("defer")

    def check_defer_owner(self, inst):
        """defer/, its hash subdirectories and the logs are qmgr's
        ($mail_owner's, tern as root), private to it"""
        owner = os.stat(os.path.join(inst.spool, "incoming")).st_uid
        top = os.path.join(inst.spool, "defer")
        for dirpath, dirs, files in os.walk(top):
            st = os.stat(dirpath)
            self.assertEqual((st.st_uid, st.st_mode & 0o7777),
                             (owner, 0o700), dirpath)
            for f in files:
                st = os.lstat(os.path.join(dirpath, f))
                self.assertEqual((st.st_uid, st.st_mode & 0o7777),
                                 (owner, 0o600), f)
        self.assertEqual(len(os.listdir(top)), 52)

    def test_one_delay_warning_then_bounce_with_last_reason(self):
        inst = self.start(delay_warning_time="2s",
                          maximal_queue_lifetime="10s",
                          bounce_queue_lifetime="10s")
        self.home_away()
        send(inst, SENDER, ["slow@localhost"], "warn me", ["ENVID=env-7"],
             ["ORCPT=rfc822;Slow@localhost"])
        send(inst, SENDER, ["slow@localhost"], "failures only", (),
             ["NOTIFY=FAILURE"])
        send(inst, "", ["slow@localhost"], "from the null sender")
        # the warning for "warn me" only; then a qmgr restart in the
        # middle of the retries must not send a second one
        self.assertLogHas(inst, "sender delay notification: ", 60)
        self.restart_qmgr(inst)
        # three bounces: two to the sender, one to the postmaster (demo)
        wait_for(lambda: len(by_subject(
                     reports(inst), "Undelivered Mail Returned to Sender"))
                 >= 3, 90, 0.2, "three bounces")
        inst.wait_quiet(USERS)
        got = reports(inst)
        warnings = by_subject(got, "Delayed Mail (still being retried)")
        self.assertEqual(len(warnings), 1, [m["Subject"] for m in got])
        self.assertEqual(len(got), 4, [m["Subject"] for m in got])
        log = inst.log_text()
        self.assertEqual(log.count("sender delay notification: "), 1)

        w = warnings[0]
        self.assertEqual(w["To"], SENDER)
        self.assertEqual(w.get_param("report-type"), "delivery-status")
        self.assertEqual(w.defects, [])
        text, _, orig = list(w.iter_parts())
        self.assertIn("WARNING ONLY", text.get_content())
        self.assertEqual(orig.get_content_type(), "text/rfc822-headers")
        self.assertIn("Subject: warn me", orig.get_content())
        self.assertNotIn("the body text", orig.get_content())
        per_msg, per_rcpt = status_fields(w)
        self.assertTrue(per_msg["Reporting-MTA"].startswith("dns; "))
        self.assertEqual(per_msg["Original-Envelope-Id"], "env-7")
        self.assertIsNotNone(per_msg["Arrival-Date"])
        self.assertEqual(len(per_rcpt), 1)
        r = per_rcpt[0]
        self.assertEqual(r["Final-Recipient"], "rfc822; slow@localhost")
        self.assertEqual(r["Original-Recipient"], "rfc822; Slow@localhost")
        self.assertEqual(r["Action"], "delayed")
        self.assertRegex(r["Status"], r"^4\.\d{1,3}\.\d{1,3}$")
        self.assertIn("cannot access home directory", r["Diagnostic-Code"])
        self.assertIsNotNone(r["Will-Retry-Until"])

        # the final bounces carry the last deferral reason
        subjects = set()
        for b in by_subject(got, "Undelivered Mail Returned to Sender"):
            _, rr = status_fields(b)
            self.assertEqual(rr[0]["Action"], "failed")
            self.assertEqual(rr[0]["Status"], "5.4.7")
            diag = " ".join(rr[0]["Diagnostic-Code"].split())  # unfolded
            self.assertIn("expired", diag)
            self.assertIn("last deferral reason: cannot access home "
                          "directory", diag)
            hdrs = original_headers(b)
            for s in ("warn me", "failures only", "from the null sender"):
                if "Subject: " + s in hdrs:
                    subjects.add(s)
            if "from the null sender" in hdrs:
                self.assertEqual(b["To"], "postmaster")
        self.assertEqual(subjects, {"warn me", "failures only",
                                    "from the null sender"})
        # every log went with its message
        self.assertEqual(self.defer_log_files(inst), [])

    def test_reason_survives_deferral_and_restart(self):
        inst = self.start()
        self.home_away()
        send(inst, SENDER, ["lost@localhost", "slow@localhost"],
             "half lost")
        self.assertLogHas(inst, "to=<slow@localhost>")
        wait_for(lambda: inst.queue_files("deferred"), 30,
                 what="a file in deferred/")
        self.assertEqual(len(self.defer_log_files(inst)), 1)
        self.check_defer_owner(inst)
        self.restart_qmgr(inst)
        self.home_back()
        wait_for(lambda: reports(inst), 60, 0.2, "the bounce")
        inst.wait_quiet(USERS)
        got = reports(inst)
        self.assertEqual(len(got), 1)
        _, rr = status_fields(got[0])
        self.assertEqual([r["Final-Recipient"] for r in rr],
                         ["rfc822; lost@localhost"])
        self.assertIn("unknown user", rr[0]["Diagnostic-Code"])
        self.assertNotIn("reason unknown", rr[0]["Diagnostic-Code"])
        self.assertEqual(len(inst.messages("slow")), 1)
        self.assertEqual(self.defer_log_files(inst), [])

    def test_success_notice_once_per_recipient(self):
        inst = self.start()
        self.home_away()
        send(inst, SENDER, ["other@localhost", "slow@localhost"],
             "tell me when", ["ENVID=env-ok", "RET=FULL"],
             ["NOTIFY=SUCCESS,FAILURE", "ORCPT=rfc822;Other@localhost"])
        wait_for(lambda: reports(inst), 60, 0.2, "the first success notice")
        # deferred with "other" delivered and reported: further attempts
        # and a qmgr restart do not report it again
        wait_for(lambda: inst.queue_files("deferred"), 30,
                 what="a file in deferred/")
        self.restart_qmgr(inst)
        self.assertLogHas(inst, "status=deferred (cannot access home")
        self.home_back()
        wait_for(lambda: len(reports(inst)) >= 2, 60, 0.2,
                 "the second success notice")
        inst.wait_quiet(USERS)
        got = reports(inst)
        self.assertEqual(len(got), 2, [m["Subject"] for m in got])
        finals = []
        for m in got:
            self.assertEqual(m["Subject"], "Successful Mail Delivery Report")
            self.assertEqual(m["To"], SENDER)
            self.assertEqual(m.defects, [])
            per_msg, rr = status_fields(m)
            self.assertEqual(per_msg["Original-Envelope-Id"], "env-ok")
            self.assertEqual(len(rr), 1)
            self.assertEqual(rr[0]["Action"], "delivered")
            self.assertEqual(rr[0]["Status"], "2.0.0")
            finals.append(rr[0]["Final-Recipient"])
            orig = list(m.iter_parts())[2]
            self.assertEqual(orig.get_content_type(), "text/rfc822-headers")
            self.assertIn("Subject: tell me when", orig.get_content())
        self.assertEqual(finals, ["rfc822; other@localhost",
                                  "rfc822; slow@localhost"])
        _, rr = status_fields(got[0])
        self.assertEqual(rr[0]["Original-Recipient"],
                         "rfc822; Other@localhost")
        self.assertEqual(len(inst.messages("other")), 1)
        self.assertEqual(len(inst.messages("slow")), 1)
        self.assertEqual(self.defer_log_files(inst), [])

    def test_success_notice_for_an_alias_list_says_expanded(self):
        inst = self.start()
        send(inst, SENDER, ["team@localhost"], "to the team", (),
             ["NOTIFY=SUCCESS"])
        m = wait_for(lambda: reports(inst), 60, 0.2, "the notice")[0]
        inst.wait_messages("other", 1)
        inst.wait_messages("slow", 1)
        inst.wait_quiet(USERS)
        _, rr = status_fields(m)
        self.assertEqual([(r["Final-Recipient"], r["Action"], r["Status"])
                          for r in rr],
                         [("rfc822; team@localhost", "expanded", "2.0.0")])
        self.assertEqual(len(reports(inst)), 1)

    def test_no_success_notice_without_notify_success(self):
        inst = self.start()
        send(inst, SENDER, ["other@localhost"], "quiet")
        inst.wait_messages("other", 1)
        inst.wait_quiet(USERS)
        self.assertEqual(reports(inst), [])
        self.assertNotIn("delivery status notification", inst.log_text())

    def test_bounce_size_limit_cuts_the_original(self):
        inst = self.start(bounce_size_limit="2000")
        body = "".join("line %05d of a long message\r\n" % i
                       for i in range(5000))
        send(inst, SENDER, ["lost@localhost"], "big one", ["RET=FULL"],
             body=body)
        m = wait_for(lambda: reports(inst), 60, 0.2, "the bounce")[0]
        orig = list(m.iter_parts())[2]
        self.assertEqual(orig.get_content_type(), "message/rfc822")
        inner = orig.get_payload()[0]
        self.assertEqual(inner["Subject"], "big one")
        content = inner.get_content()
        self.assertIn("line 00000 of a long message", content)
        self.assertFalse("line 04999" in content, "not cut: %d bytes"
                         % len(content))
        self.assertLessEqual(len(inner.as_bytes()), 2000 + 200)
        self.assertTrue(content.endswith("of a long message\n"), content[-80:])


if __name__ == "__main__":
    unittest.main()
