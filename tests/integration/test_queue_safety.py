"""Mail that must not be lost, multiplied or stuck: a message is never
active twice, permanent failures stay findable (hold/ until bounces
exist), duplicate recipients get one copy, the active/ sweep, lookup
table failures are temporary. Each test drives a real instance."""
import os
import re
import socket
import unittest

from ternlab import FAST_RETRY, TernTestCase, subject_of, wait_for
from test_crash import drop_queue_file


def trigger(inst, byte):
    """Send one trigger byte to qmgr, as smtpd and master do."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(inst.spool, "public", "qmgr"))
        s.sendall(byte)


def send(inst, rcpts, subject, sender="sender@example.org"):
    with inst.smtp() as s:
        return s.sendmail(sender, rcpts,
                          ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


class NeverActiveTwice(TernTestCase):

    def test_second_name_of_an_active_message_waits(self):
        # the same queue file under two names (what a power loss can leave
        # after a move whose source directory was not synced): incoming/ID
        # and deferred/X/ID. One flush scans incoming/ then deferred/ in one
        # go; the second name must not make the message active a second
        # time while the first is still being delivered.
        main = dict(FAST_RETRY, queue_run_delay="3600s")
        inst = self.instance(main=main).start()
        send(inst, ["demo@localhost"], "warm-up")
        inst.wait_messages("demo", 1)
        qid = drop_queue_file(inst, "hold", "twice")
        hold = os.path.join(inst.spool, "hold", qid)
        os.link(hold, os.path.join(inst.spool, "deferred", qid[9], qid))
        os.rename(hold, os.path.join(inst.spool, "incoming", qid))
        trigger(inst, b"F")
        self.assertLogHas(inst, "%s: removed" % qid, timeout=30)
        # the second name converges: moved in once the first is gone,
        # found finished, removed
        trigger(inst, b"F")
        wait_for(lambda: inst.queue_files("deferred") == [], 30,
                 what="deferred/ empty")
        log = inst.log_text()
        first = log[:log.index("%s: removed" % qid)]
        self.assertEqual(first.count("%s: from=<" % qid), 1, first[-3000:])
        msgs = inst.wait_messages("demo", 2)
        self.assertEqual(sorted(subject_of(m) for m in msgs),
                         ["twice", "warm-up"])


if __name__ == "__main__":
    unittest.main()
