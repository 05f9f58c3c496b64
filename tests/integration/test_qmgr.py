"""qmgr end to end: deferral when no transport exists, expiry, corrupt
queue files, and kill -9 of qmgr while mail flows (exactly-once).

Every test drives a real instance (master -f) through smtpd.
"""
import os
import re
import signal
import time
import unittest

from ternlab import FAST_RETRY, TernTestCase, run_senders, subject_of, wait_for
from test_crash import drop_queue_file
import test_queue_safety    # its stalld instance helper (not its tests)

def send(inst, rcpt, subject, sender="sender@example.org"):
    with inst.smtp() as s:
        s.sendmail(sender, [rcpt],
                   ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


def queue_id_for(inst, rcpt):
    """The queue ID of the first logged line about rcpt."""
    m = re.search(r"(\w+): to=<%s>" % re.escape(rcpt), inst.log_text())
    return m.group(1) if m else None


class Qmgr(TernTestCase):

    def test_nonlocal_recipient_is_deferred(self):
        # 127.0.0.1 is in the default mynetworks, so smtpd relays; the
        # instance's resolver answers nothing (mkinstance), so the smtp
        # client cannot find the domain: deferred, never lost or bounced
        inst = self.instance(main=FAST_RETRY).start()
        send(inst, "someone@remote.example", "to the world")
        send(inst, "demo@localhost", "to demo")
        wait_for(lambda: len(inst.queue_files("deferred")) == 1, 30,
                 what="a file in deferred/")
        self.assertLogHas(
            inst, "to=<someone@remote.example>, relay=none, delay=")
        self.assertLogHas(
            inst, "status=deferred (Name service error for "
                  "name=remote.example type=MX")
        msgs = inst.wait_messages("demo", 1)
        self.assertEqual([subject_of(m) for m in msgs], ["to demo"])
        qid = queue_id_for(inst, "someone@remote.example")
        self.assertIsNotNone(qid)
        # retried on the back-off schedule, still deferred, never removed
        wait_for(lambda: inst.log_text().count(
            "to=<someone@remote.example>") >= 2, 30, what="a retry")
        # the retry's log line comes before qmgr moves the file back
        wait_for(lambda: inst.queue_files("deferred") == [qid], 30,
                 what="the message back in deferred/")
        self.assertNotIn(qid + ": removed", inst.log_text())

    def test_expired_message_bounces_and_leaves_queue(self):
        # the bounce to sender@example.org cannot leave either (no smtp
        # transport): bounce_queue_lifetime lets it go too
        main = dict(FAST_RETRY, maximal_queue_lifetime="0",
                    bounce_queue_lifetime="0")
        inst = self.instance(main=main).start()
        send(inst, "far@remote.example", "expires")
        self.assertLogHas(inst, "to=<far@remote.example>, relay=none")
        self.assertLogHas(inst, "status=bounced (message expired after")
        self.assertLogHas(inst, "sender non-delivery notification: ")
        self.assertLogHas(inst, "summary: from=<sender@example.org>, nrcpt=1, "
                                "delay=")
        self.assertLogHas(inst, "sent=0, bounced=1, deferred=0")
        inst.wait_queue_empty(30)

    def test_corrupt_file_is_quarantined(self):
        inst = self.instance(main=FAST_RETRY).start()
        send(inst, "demo@localhost", "first")
        inst.wait_messages("demo", 1)
        qid = re.search(r"(\w+): from=<sender@example.org>",
                        inst.log_text()).group(1)
        # another valid ID: same time digits, different inode digits
        bad = qid[:-1] + ("B" if qid[-1] != "B" else "C")
        path = os.path.join(inst.spool, "incoming", bad)
        with open(path, "wb") as f:
            f.write(b"this is not a queue file\n")
        os.chmod(path, 0o644)
        send(inst, "demo@localhost", "second")        # wakes qmgr
        inst.wait_messages("demo", 2)
        self.assertLogHas(inst, "warning: %s: corrupt queue file:" % bad)
        wait_for(lambda: os.path.exists(
            os.path.join(inst.spool, "corrupt", bad)), 30,
            what="file in corrupt/")
        inst.wait_queue_empty(30)

    def test_kill9_qmgr_while_200_messages_flow(self):
        inst = self.instance(main=FAST_RETRY).start()
        threads, accepted, errors = run_senders(inst.smtp_port, 200, 5, "flow")
        for mark in (40, 100, 160):
            wait_for(lambda: len(accepted) >= mark, 120,
                     what="%d accepted" % mark)
            for p in wait_for(lambda: inst.child_pids("qmgr"), 30,
                              what="a running qmgr"):
                os.kill(p, signal.SIGKILL)
        for t in threads:
            t.join(300)
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted), 200)
        self.assertDeliveredOnce(inst, accepted, timeout=240)
        inst.wait_queue_empty(60)
        self.assertIn("killed by signal 9", inst.log_text())

    def test_incoming_file_without_trigger_is_picked_up(self):
        # smtpd killed between its commit and its trigger: the periodic
        # queue run ($queue_run_delay, 1 s here) must find the file. The
        # only other way in, master's wakeup, is moved an hour away, so a
        # generous wait still tells the two apart.
        inst = self.instance(main=FAST_RETRY)
        inst.edit_master_conf("qmgr unix n - %s 300 1 qmgr" % inst.jail,
                              "qmgr unix n - %s 3600 1 qmgr" % inst.jail)
        inst.start()
        send(inst, "demo@localhost", "first")
        inst.wait_messages("demo", 1)
        drop_queue_file(inst, "incoming", "silent")
        msgs = inst.wait_messages("demo", 2, timeout=120)
        self.assertEqual(sorted(subject_of(m) for m in msgs),
                         ["first", "silent"])
        inst.wait_queue_empty(60)

    @unittest.skipUnless(os.geteuid() == 0, "needs a privileged instance")
    def test_foreign_or_unreadable_incoming_file_is_quarantined(self):
        inst = self.instance(main=FAST_RETRY).start()
        send(inst, "demo@localhost", "first")
        inst.wait_messages("demo", 1)
        # root's 0600 file: qmgr ($mail_owner) cannot even read it
        unreadable = drop_queue_file(inst, "incoming", "unreadable", seq=1,
                                     owner=False)
        # root's 0666 file: qmgr could change it, but it is not qmgr's
        foreign = drop_queue_file(inst, "incoming", "foreign", seq=2,
                                  owner=False)
        os.chmod(os.path.join(inst.spool, "incoming", foreign), 0o666)
        send(inst, "demo@localhost", "second")
        inst.wait_messages("demo", 2)
        for qid in (unreadable, foreign):
            wait_for(lambda: os.path.exists(
                os.path.join(inst.spool, "corrupt", qid)), 30,
                what="%s in corrupt/" % qid)
        self.assertLogHas(inst, "%s: corrupt queue file: open active/%s: "
                          "Permission denied" % (unreadable, unreadable))
        self.assertLogHas(inst, "%s: corrupt queue file: queue file is owned "
                          "by uid 0" % foreign)
        # both are in corrupt/ and nothing is in flight: nothing more can
        # be delivered, so the Maildir is final
        inst.wait_quiet()
        self.assertEqual(sorted(subject_of(m) for m in inst.messages("demo")),
                         ["first", "second"])

    def test_2000_files_in_incoming_at_start(self):
        # a backlog at start-up: all delivered, never more than
        # qmgr_message_active_limit files in active/ at once
        limit = 50
        inst = self.instance(main=dict(
            FAST_RETRY, qmgr_message_active_limit=str(limit)))
        os.makedirs(os.path.join(inst.spool, "incoming"), exist_ok=True)
        n = 2000
        for i in range(n):
            drop_queue_file(inst, "incoming", "backlog %04d" % i, seq=i)
        inst.start()
        most = 0
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            most = max(most, len(inst.queue_files("active")))
            if len(inst.messages("demo")) >= n:
                break
            time.sleep(0.02)       # sampling interval of the poll above
        got = [subject_of(m) for m in inst.messages("demo")]
        self.assertEqual(len(got), n)
        self.assertEqual(len(set(got)), n)
        self.assertLessEqual(most, limit)
        inst.wait_queue_empty(30)


class AgentConnection(TernTestCase):
    """qmgr's side of a delivery agent that goes away mid-request."""

    def test_agent_killed_mid_request_defers_and_retries(self):
        inst, record = test_queue_safety.DestinationConcurrency\
            .instance_with_stalld(self, FAST_RETRY)
        send(inst, "stall@localhost", "never answered")
        wait_for(lambda: "stall@localhost" in
                 test_queue_safety.DestinationConcurrency.requests(record),
                 30, what="the stall request")
        for p in inst.child_pids("local"):
            os.kill(p, signal.SIGKILL)
        self.assertLogHas(inst, "private/local: unexpected end of input "
                                "(delivery agent crashed?)")
        self.assertLogHas(inst, "to=<stall@localhost>, relay=none")
        self.assertLogHas(inst, "status=deferred (lost connection with "
                                "local)")
        # deferred, not lost: the retry reaches the (new) agent again
        wait_for(lambda: test_queue_safety.DestinationConcurrency.requests(
            record).count("stall@localhost") >= 2, 60, what="a retry")


if __name__ == "__main__":
    unittest.main()
