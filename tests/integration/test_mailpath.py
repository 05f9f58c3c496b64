"""The first mail path end to end: smtpd -> queue -> qmgr -> local -> Maildir.

Every test drives a real instance (master -f) with real clients.
"""
import os
import signal
import socket
import subprocess
import unittest

from ternlab import FAST_RETRY, TernTestCase, run_senders, wait_for

def strip_added_headers(msg):
    """Remove the headers Tern adds in front (Return-Path, Delivered-To,
    Received with its continuation lines); return the rest."""
    lines = msg.split(b"\n")
    i = 0
    added = (b"return-path:", b"delivered-to:", b"received:")
    while i < len(lines):
        low = lines[i].lower()
        if low.startswith(added):
            i += 1
            while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
                i += 1
            continue
        break
    return b"\n".join(lines[i:])


class MailPath(TernTestCase):

    def test_message_arrives_byte_for_byte(self):
        inst = self.instance().start()
        body = (b"From: Alice <alice@example.org>\r\n"
                b"To: demo@localhost\r\n"
                b"Subject: byte for byte\r\n"
                b"Message-ID: <bfb-1@example.org>\r\n"
                b"\r\n"
                b"plain line\r\n"
                b".leading dot\r\n"
                b"..two dots\r\n"
                b".\t\r\n"
                b"8-bit: \xc3\xa9\xe2\x82\xac\r\n"
                b"trailing spaces   \r\n"
                + b"x" * 1500 + b"\r\n"
                b"\r\n"
                b"last line without newline")
        with inst.smtp() as s:
            s.ehlo("client.test")
            code, resp = s.docmd("MAIL FROM:<alice@example.org> BODY=8BITMIME")
            self.assertEqual(code, 250)
            s.rcpt("demo@localhost")
            code, resp = s.data(body)
            self.assertEqual(code, 250)
            self.assertRegex(resp.decode(), r"^2\.0\.0 Ok: queued as [0-9A-Za-z]+$")
        msg = inst.wait_messages("demo", 1)[0]
        self.assertTrue(msg.startswith(b"Return-Path: <alice@example.org>\n"
                                       b"Delivered-To: demo@localhost\n"))
        self.assertIn(b"\nReceived: from client.test (unknown [127.0.0.1])\n", msg)
        want = body.replace(b"\r\n", b"\n") + b"\n"
        self.assertEqual(strip_added_headers(msg), want)
        qid = resp.decode().split()[-1]
        self.assertLogHas(inst, "%s: from=<alice@example.org>" % qid)
        self.assertLogHas(inst, "%s: to=<demo@localhost>, relay=local" % qid)
        self.assertLogHas(inst, "status=sent (delivered to maildir)")
        self.assertLogHas(inst, "%s: removed" % qid)
        inst.wait_queue_empty()

    def test_500_messages_20_connections(self):
        inst = self.instance().start()
        threads, accepted, errors = run_senders(inst.smtp_port, 500, 20)
        for t in threads:
            t.join(300)
        self.assertEqual(errors, [])
        self.assertEqual(len(accepted), 500)
        self.assertDeliveredOnce(inst, accepted, timeout=240)
        inst.wait_queue_empty()

    def test_unknown_user_and_relay_denied(self):
        # the client (127.0.0.1) is outside mynetworks here
        inst = self.instance(main={"mynetworks": "192.0.2.0/24"}).start()
        with inst.smtp() as s:
            s.ehlo("client.test")
            s.mail("someone@example.org")
            code, resp = s.rcpt("nosuchuser@localhost")
            self.assertEqual(code, 550)
            self.assertTrue(resp.startswith(b"5.1.1 <nosuchuser@localhost>"), resp)
            code, resp = s.rcpt("victim@elsewhere.example")
            self.assertEqual(code, 554)
            self.assertTrue(resp.startswith(b"5.7.1"), resp)
            self.assertIn(b"Relay access denied", resp)
            code, _ = s.rcpt("demo@localhost")
            self.assertEqual(code, 250)
            code, _ = s.rcpt("postmaster@localhost")   # via the aliases table
            self.assertEqual(code, 250)
        self.assertLogHas(inst, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 550 5.1.1")

    def test_aliases_expand(self):
        inst = self.instance(users=("demo", "bob"),
                             aliases={"team": "demo, bob", "boss": "team"}).start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["boss@localhost"],
                       b"Subject: to the team\r\n\r\nhi\r\n")
        self.assertEqual(len(inst.wait_messages("demo", 1)), 1)
        self.assertEqual(len(inst.wait_messages("bob", 1)), 1)
        self.assertIn(b"Delivered-To: boss@localhost\n", inst.messages("bob")[0])

    def test_transaction_reset_points(self):
        # RSET, EHLO and the end of DATA (accepted or refused) each end
        # the transaction: its sender, recipients and duplicate filter are
        # gone; the session (the EHLO name) is not
        inst = self.instance(users=("demo", "bob"),
                             main={"message_size_limit": "2000"}).start()
        with inst.smtp() as s:
            s.ehlo("first.test")
            self.assertEqual(s.docmd("MAIL FROM:<rset@example.org>")[0], 250)
            self.assertEqual(s.rcpt("bob@localhost")[0], 250)
            self.assertEqual(s.docmd("RSET")[0], 250)
            self.assertEqual(s.rcpt("demo@localhost")[0], 503)
            self.assertEqual(s.docmd("MAIL FROM:<one@example.org>")[0], 250)
            self.assertEqual(s.rcpt("demo@localhost")[0], 250)
            self.assertEqual(s.rcpt("DEMO@localhost")[0], 250)  # stored once
            self.assertEqual(s.data(b"Subject: one\r\n\r\n1\r\n")[0], 250)
            self.assertEqual(s.rcpt("demo@localhost")[0], 503)
            self.assertEqual(s.docmd("DATA")[0], 503)
            # a fresh duplicate filter: demo is a recipient again
            self.assertEqual(s.docmd("MAIL FROM:<two@example.org>")[0], 250)
            self.assertEqual(s.rcpt("demo@localhost")[0], 250)
            self.assertEqual(s.data(b"Subject: two\r\n\r\n2\r\n")[0], 250)
            # EHLO in the middle of a transaction ends it
            self.assertEqual(s.docmd("MAIL FROM:<helo@example.org>")[0], 250)
            self.assertEqual(s.rcpt("bob@localhost")[0], 250)
            self.assertEqual(s.ehlo("second.test")[0], 250)
            self.assertEqual(s.rcpt("bob@localhost")[0], 503)
            # a refused DATA ends it too
            self.assertEqual(s.docmd("MAIL FROM:<big@example.org>")[0], 250)
            self.assertEqual(s.rcpt("bob@localhost")[0], 250)
            self.assertEqual(s.data(b"Subject: big\r\n\r\n" + b"x" * 3000
                                    + b"\r\n")[0], 552)
            self.assertEqual(s.rcpt("bob@localhost")[0], 503)
            self.assertEqual(s.docmd("MAIL FROM:<four@example.org>")[0], 250)
            self.assertEqual(s.rcpt("bob@localhost")[0], 250)
            self.assertEqual(s.data(b"Subject: four\r\n\r\n4\r\n")[0], 250)
        inst.wait_messages("demo", 2)
        inst.wait_messages("bob", 1)
        inst.wait_quiet(("demo", "bob"))
        demo = sorted(inst.messages("demo"))
        self.assertEqual(len(demo), 2)
        self.assertTrue(any(m.startswith(b"Return-Path: <one@example.org>\n")
                            and b"Subject: one\n" in m for m in demo))
        self.assertTrue(any(m.startswith(b"Return-Path: <two@example.org>\n")
                            and b"Subject: two\n" in m for m in demo))
        bob = inst.messages("bob")
        self.assertEqual(len(bob), 1)
        self.assertTrue(bob[0].startswith(b"Return-Path: <four@example.org>\n"))
        self.assertIn(b"Received: from second.test (unknown", bob[0])

    def test_swaks(self):
        inst = self.instance().start()
        r = subprocess.run(["swaks", "--server", "127.0.0.1:%d" % inst.smtp_port,
                            "--to", "demo@localhost", "--from", "swaks@example.org",
                            "--header", "Subject: via swaks"],
                           capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stdout.decode() + r.stderr.decode())
        msg = inst.wait_messages("demo", 1)[0]
        self.assertIn(b"Subject: via swaks\n", msg)

    def test_too_many_clients_421(self):
        inst = self.instance(main={"smtpd_client_limit": "3"})
        conf = os.path.join(inst.etc, "master.conf")
        text = open(conf).read().replace("inet n - %s - - smtpd" % inst.jail,
                                         "inet n - %s - 1 smtpd" % inst.jail)
        open(conf, "w").write(text)
        inst.start()

        def probes_gone():     # smtpd has seen start()'s probes hang up
            log = inst.log_text()
            return log.count(": connect from ") == \
                log.count(": disconnect from ")
        wait_for(probes_gone, 60, 0.1, "smtpd to see the probes go")
        held = []
        try:
            for _ in range(3):          # smtpd_client_limit, one process
                s = socket.create_connection(("127.0.0.1", inst.smtp_port), 30)
                s.settimeout(30)
                held.append(s)
                self.assertTrue(s.recv(512).startswith(b"220"))
            s = socket.create_connection(("127.0.0.1", inst.smtp_port), 30)
            s.settimeout(30)
            held.append(s)
            self.assertTrue(s.recv(512).startswith(b"421 4.3.2"))
        finally:
            for s in held:
                s.close()
        # capacity comes back once clients leave
        wait_for(lambda: inst._smtp_ready(), 60, what="SMTP after overload")

    def test_kill_smtpd_worker(self):
        inst = self.instance().start()
        pids = wait_for(lambda: inst.child_pids("smtpd"), 30, what="an smtpd")
        for p in pids:
            os.kill(p, signal.SIGKILL)
        wait_for(lambda: not set(pids) & set(inst.child_pids("smtpd")), 30,
                 what="smtpd reaped")
        with inst.smtp() as s:
            s.sendmail("a@example.org", ["demo@localhost"], b"Subject: after kill\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        self.assertLogHas(inst, "killed by signal 9")

    def test_qmgr_comes_back_by_itself(self):
        # no new mail, no periodic wakeup soon: master must restart qmgr
        # at once, or mail it had in flight waits for minutes. The periodic
        # wakeup is moved an hour away, so a generous wait still tells
        # "at once" from "at the next wakeup".
        inst = self.instance(main=FAST_RETRY)
        inst.edit_master_conf("qmgr unix n - %s 300 1 qmgr" % inst.jail,
                              "qmgr unix n - %s 3600 1 qmgr" % inst.jail)
        inst.start()
        old = wait_for(lambda: inst.child_pids("qmgr"), 30, what="qmgr")
        os.kill(old[0], signal.SIGKILL)
        wait_for(lambda: [p for p in inst.child_pids("qmgr") if p not in old],
                 120, what="a new qmgr without any new mail")

    def test_kill_qmgr_and_local_mid_run(self):
        inst = self.instance(main=FAST_RETRY).start()
        threads, accepted, errors = run_senders(inst.smtp_port, 500, 20)
        wait_for(lambda: len(accepted) >= 100, 120, what="100 accepted")
        for p in wait_for(lambda: inst.child_pids("qmgr"), 30, what="qmgr"):
            os.kill(p, signal.SIGKILL)
        wait_for(lambda: len(accepted) >= 250, 120, what="250 accepted")
        for p in wait_for(lambda: inst.child_pids("local"), 30, what="local"):
            os.kill(p, signal.SIGKILL)
        wait_for(lambda: len(accepted) >= 350, 120, what="350 accepted")
        for p in inst.child_pids("qmgr") + inst.child_pids("local"):
            os.kill(p, signal.SIGKILL)
        for t in threads:
            t.join(300)
        self.assertEqual(errors, [])
        self.assertDeliveredOnce(inst, accepted, timeout=240)
        inst.wait_queue_empty()

    def test_restart_with_mail_queued(self):
        # no local transport: the mail waits in the queue
        inst = self.instance(main=FAST_RETRY)
        conf = os.path.join(inst.etc, "master.conf")
        full = open(conf).read()
        open(conf, "w").write(full.replace("local unix - n n - - local\n", ""))
        inst.start()
        subjects = []
        with inst.smtp() as s:
            for n in range(20):
                subj = "queued %d" % n
                s.sendmail("a@example.org", ["demo@localhost"],
                           ("Subject: %s\r\n\r\nx\r\n" % subj).encode())
                subjects.append(subj)
        wait_for(lambda: len(inst.queue_files("deferred")) == 20, 30,
                 what="20 deferred messages")
        inst.stop()
        self.assertEqual(inst.messages("demo"), [])
        open(conf, "w").write(full)
        inst.start()
        self.assertDeliveredOnce(inst, subjects, timeout=60)
        inst.wait_queue_empty()


if __name__ == "__main__":
    unittest.main()
