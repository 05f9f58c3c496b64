"""queue_minfree (issue 7): smtpd never accepts mail the queue file
system has no room for. At MAIL FROM it answers "452 4.3.1 Insufficient
system storage" (and logs it) when the free space is below
queue_minfree, or below 1.5 times message_size_limit (also with
queue_minfree 0, as Postfix), or when the client's SIZE= is larger than what is free beyond
queue_minfree. The free space is measured here with os.statvfs and every
threshold is made far away from it, so the tests never depend on how
full the disk is. And when a write fails anyway (ENOSPC: as root,
incoming/ on a 1 MiB tmpfs), the message gets 451 4.3.0 and leaves no
file behind.
"""
import os
import smtplib
import subprocess
import unittest

from ternlab import SmtpClient, TernTestCase

GB = 1 << 30
REFUSED = "452 4.3.1 Insufficient system storage"


def free_bytes(path):
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def mail_reply(inst, params=""):
    c = SmtpClient(inst.smtp_port)
    try:
        c.reply()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(("MAIL FROM:<x@example.org>%s\r\n" % params).encode())
        return c.reply()[-1]
    finally:
        c.close()


class QueueMinfreeTest(TernTestCase):

    def spool_instance(self, main):
        """an instance whose main.conf settings depend on the free space
        of its own spool (known only once it exists)"""
        inst = self.instance()
        free = free_bytes(inst.spool)
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            for k, v in main(free).items():
                f.write("%s = %s\n" % (k, v))
        return inst

    def test_minfree_above_free_space(self):
        inst = self.spool_instance(lambda free: {
            "queue_minfree": str(2 * free + GB)})
        inst.start()
        self.assertEqual(mail_reply(inst), REFUSED)
        self.assertLogHas(inst, "NOQUEUE: reject: MAIL from unknown[127.0.0.1]: "
                                + REFUSED + "; from=<x@example.org> proto=ESMTP "
                                "helo=<client.test>")
        self.assertLogHas(inst, "not enough free space in mail queue")

    def test_one_and_a_half_message_size_limit(self):
        inst = self.instance()
        free = free_bytes(inst.spool)
        limit = free // 3 * 2 + GB          # 1.5 * limit > free
        if limit > 64 * GB:
            self.skipTest("more free space than message_size_limit can cover")
        # queue_minfree 0 (the default): the 1.5 x rule still holds
        with open(os.path.join(inst.etc, "main.conf"), "a") as f:
            f.write("message_size_limit = %d\n" % limit)
        inst.start()
        self.assertEqual(mail_reply(inst), REFUSED)

    def test_size_larger_than_free_space(self):
        # queue_minfree 0 (the default) still refuses a SIZE= that cannot fit
        inst = self.spool_instance(lambda free: {"message_size_limit": "0"})
        inst.start()
        free = free_bytes(inst.spool)
        self.assertEqual(mail_reply(inst, " SIZE=%d" % (2 * free + GB)), REFUSED)
        self.assertTrue(mail_reply(inst, " SIZE=1000").startswith("250"))

    def test_size_beyond_minfree_with_room(self):
        inst = self.spool_instance(lambda free: {
            "queue_minfree": str(free // 4), "message_size_limit": "0"})
        inst.start()
        free = free_bytes(inst.spool)
        self.assertEqual(mail_reply(inst, " SIZE=%d" % (free // 4 * 3 + GB)),
                         REFUSED)
        self.assertTrue(mail_reply(inst, " SIZE=1000").startswith("250"))

    def test_normal_values_accept(self):
        inst = self.spool_instance(lambda free: {
            "queue_minfree": "1", "message_size_limit": "100000"})
        inst.start()
        if free_bytes(inst.spool) < 10 * 150000:
            self.skipTest("the queue file system is nearly full")
        self.assertTrue(mail_reply(inst, " SIZE=500").startswith("250"))
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["demo@localhost"],
                       b"Subject: room\r\n\r\nthere is room\r\n")
        inst.wait_messages("demo", 1)


class EnospcTest(TernTestCase):

    def test_full_file_system_during_data(self):
        if os.geteuid() != 0:
            self.skipTest("needs root (mount)")
        inst = self.instance()
        inst.start()                        # master makes incoming/
        incoming = os.path.join(inst.spool, "incoming")
        st = os.stat(incoming)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o",
                            "size=1m,mode=%o,uid=%d,gid=%d"
                            % (st.st_mode & 0o7777, st.st_uid, st.st_gid),
                            "tmpfs", incoming], capture_output=True)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.decode())
        # runs before the instance's own cleanup (LIFO)
        self.addCleanup(subprocess.run, ["umount", "-l", incoming])
        body = b"Subject: too big for the disk\r\n\r\n" + \
            (b"x" * 998 + b"\r\n") * 2100          # about 2 MiB
        with inst.smtp() as s:
            with self.assertRaises(smtplib.SMTPDataError) as cm:
                s.sendmail("x@example.org", ["demo@localhost"], body)
        self.assertEqual(cm.exception.smtp_code, 451)
        self.assertIn(b"4.3.0", cm.exception.smtp_error)
        self.assertLogHas(inst, "No space left on device")
        self.assertEqual(os.listdir(incoming), [])

if __name__ == "__main__":
    unittest.main()
