"""qmgr's trigger socket (public/qmgr): a client may keep one connection
and send many trigger bytes over it (trigger_send does, from smtpd and
local); each byte wakes qmgr when it arrives, not when the connection
closes. Old one-shot clients (connect, one byte, close) still work.
"""
import os
import signal
import socket
import unittest

from ternlab import FAST_RETRY, TernTestCase, subject_of, wait_for
from test_crash import drop_queue_file

# no periodic queue run and no master wakeup during a test: only the
# triggers can make qmgr look at incoming/
QUIET = dict(FAST_RETRY, queue_run_delay="3600s")


def qmgr_socket(inst):
    return os.path.join(inst.spool, "public", "qmgr")


class TriggerSocket(TernTestCase):

    def start(self):
        inst = self.instance(main=QUIET)
        inst.edit_master_conf(" 300 1 qmgr", " 3600 1 qmgr")
        inst.start()
        # qmgr's start-up scans are over once the warm-up is delivered
        with inst.smtp() as s:
            s.sendmail("sender@example.org", ["demo@localhost"],
                       b"Subject: warm-up\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        inst.wait_queue_empty(30)
        return inst

    def test_many_triggers_over_one_connection(self):
        inst = self.start()
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(qmgr_socket(inst))
            for n in range(1, 4):
                drop_queue_file(inst, "incoming", "kept %d" % n, seq=n)
                s.sendall(b"A")
                # picked up while the connection stays open
                inst.wait_messages("demo", 1 + n, 60)
            # the connection is still usable: qmgr did not close it
            drop_queue_file(inst, "incoming", "kept 4", seq=4)
            s.sendall(b"A")
            inst.wait_messages("demo", 5, 60)
        got = sorted(subject_of(m) for m in inst.messages("demo"))
        self.assertEqual(got, ["kept 1", "kept 2", "kept 3", "kept 4",
                               "warm-up"])

    def test_one_shot_clients_still_work(self):
        inst = self.start()
        for n in range(1, 3):
            drop_queue_file(inst, "incoming", "once %d" % n, seq=n)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(qmgr_socket(inst))
                s.sendall(b"A")
            inst.wait_messages("demo", 1 + n, 60)

    def test_smtpd_reconnects_after_qmgr_restart(self):
        # smtpd's kept connection ends with the killed qmgr; its next
        # trigger reconnects (to the new qmgr) instead of being lost
        inst = self.start()
        old = inst.child_pids("qmgr")
        self.assertEqual(len(old), 1, old)
        os.kill(old[0], signal.SIGKILL)
        wait_for(lambda: inst.child_pids("qmgr")
                 and inst.child_pids("qmgr") != old, 60, what="a new qmgr")
        # the new qmgr has done its start-up scans once this is delivered
        drop_queue_file(inst, "incoming", "after restart", seq=1)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(qmgr_socket(inst))
            s.sendall(b"A")
        inst.wait_messages("demo", 2, 60)
        inst.wait_queue_empty(30)
        with inst.smtp() as s:
            s.sendmail("sender@example.org", ["demo@localhost"],
                       b"Subject: woken\r\n\r\nx\r\n")
        inst.wait_messages("demo", 3, 60)
        self.assertNotIn("cannot wake qmgr", inst.log_text())

    def test_idle_connections_do_not_lock_others_out(self):
        # more silent connections than qmgr keeps (client_limit 256):
        # the oldest make room, and a new client is still heard
        inst = self.start()
        idle = []
        try:
            for _ in range(300):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(qmgr_socket(inst))
                idle.append(s)
            drop_queue_file(inst, "incoming", "heard", seq=1)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.connect(qmgr_socket(inst))
                s.sendall(b"A")
                inst.wait_messages("demo", 2, 60)
        finally:
            for s in idle:
                s.close()


if __name__ == "__main__":
    unittest.main()
