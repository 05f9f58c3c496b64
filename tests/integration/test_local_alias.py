"""Alias lists: each member is its own recipient (issue 5).

An alias that expands to several targets is re-queued by local as one
new queue file with one recipient record per member, so a member that
defers is retried alone and a member that got the message is never
delivered to again.
"""
import os
import re
import unittest

from ternlab import FAST_RETRY, TernTestCase, wait_for


def deferred_lines(inst):
    return [l for l in inst.log_text().splitlines() if "status=deferred" in l]


class AliasList(TernTestCase):

    def test_deferring_member_does_not_redeliver_others(self):
        # root has no alias here: local refuses to deliver as root (as
        # root) or cannot write /root (as a normal user), so root defers
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice"),
                             aliases={"staff": "alice, root", "root": None})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("boss@example.org", ["staff@localhost"],
                       b"Subject: to staff\r\n\r\nhello staff\r\n")
        inst.wait_messages("alice", 1)
        # alice's mail client picks the message up (new/ -> cur/), so a
        # second copy could not hide behind the same name in new/
        md = inst.maildir("alice")
        for name in os.listdir(os.path.join(md, "new")):
            os.rename(os.path.join(md, "new", name),
                      os.path.join(md, "cur", name + ":2,S"))
        seen = len(deferred_lines(inst))
        wait_for(lambda: len(deferred_lines(inst)) >= seen + 4, 120, 0.2,
                 "four more retries of root")
        msgs = inst.messages("alice")
        self.assertEqual(len(msgs), 1, "alice got %d copies" % len(msgs))
        self.assertIn(b"Subject: to staff\n", msgs[0])
        self.assertIn(b"Delivered-To: staff@localhost\n", msgs[0])
        log = inst.log_text()
        # root is now its own recipient, retried alone, with its origin
        self.assertRegex(log, r"to=<root@localhost>, orig_to=<staff@localhost>, "
                              r"relay=local, .*status=deferred")
        self.assertNotRegex(log, r" to=<staff@localhost>.*status=deferred")
        # the list itself was done once: one new queue file, sender kept
        fwd = re.findall(r"(\w+): to=<staff@localhost>, relay=local, .*"
                         r"status=sent \(forwarded as (\w+)\)", log)
        self.assertEqual(len(fwd), 1, log[-3000:])
        self.assertIn("%s: from=<boss@example.org>" % fwd[0][1], log)
        self.assertRegex(log, r"%s: to=<alice@localhost>, orig_to=<staff@localhost>, "
                              r"relay=local, .*status=sent" % fwd[0][1])

    def test_single_alias_logs_the_mailbox_user(self):
        # "root: demo" is delivered within the request; the log line names
        # the mailbox it went to and the address it was sent to, as
        # Postfix's does (to=<demo@...>, orig_to=<root@...>)
        inst = self.instance(main=FAST_RETRY, users=("demo",),
                             aliases={"root": "demo"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["root@localhost"],
                       b"Subject: to root\r\n\r\nhi\r\n")
        inst.wait_messages("demo", 1)
        self.assertLogHas(inst, "to=<demo@localhost>, orig_to=<root@localhost>, "
                                "relay=local, delay=")
        self.assertNotIn(": to=<root@localhost>", inst.log_text())

    def test_list_containing_itself(self):
        # "a: a, b": a's own name delivers to a's mailbox, and the new
        # queue file is not expanded again (no endless forwarding)
        inst = self.instance(main=FAST_RETRY, users=("demo", "alice", "bob"),
                             aliases={"alice": "alice, bob"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["alice@localhost"],
                       b"Subject: self list\r\n\r\nhi\r\n")
        inst.wait_messages("alice", 1)
        inst.wait_messages("bob", 1)
        inst.wait_queue_empty()
        self.assertEqual(len(inst.messages("alice")), 1)
        self.assertEqual(len(inst.messages("bob")), 1)
        self.assertEqual(len(re.findall(r": forwarded as \w+ to ", inst.log_text())), 1)

    def test_forwarding_loop_bounces(self):
        # a message that already went through the list is not forwarded again
        inst = self.instance(users=("demo", "alice"),
                             aliases={"staff": "alice, demo"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["staff@localhost"],
                       b"Delivered-To: staff@localhost\r\nSubject: loop\r\n\r\nx\r\n")
        self.assertLogHas(inst, "status=bounced (mail forwarding loop for "
                                "staff@localhost)", timeout=60)
        # the sender is told; the report to the remote sender waits in
        # deferred/ (no smtp transport), the original is gone
        self.assertLogHas(inst, "sender non-delivery notification: ")
        bounce = re.search(r"sender non-delivery notification: (\w+)",
                           inst.log_text()).group(1)
        wait_for(lambda: inst.queue_files("deferred") == [bounce]
                 and not inst.queue_files("active")
                 and not inst.queue_files("incoming"), 60,
                 what="only the bounce in deferred/")
        self.assertEqual(inst.messages("alice"), [])


if __name__ == "__main__":
    unittest.main()
