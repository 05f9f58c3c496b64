"""smtpd's ESMTP extensions and limits: DSN (RFC 3461), SMTPUTF8 (RFC
6531), CHUNKING/BDAT (RFC 3030), REQUIRETLS (RFC 8689), the junk
command limit, and 421 4.3.2 when master shuts smtpd down.

The shared instance runs without qmgr, so every accepted message stays
in incoming/ and the test reads its queue file (format: lib/mail/queue.h)
to see exactly what smtpd stored.
"""
import os
import shutil
import signal
import smtplib
import ssl
import struct
import unittest

from ternlab import (WAIT, Instance, SmtpClient, TernTestCase, client_context,
                     wait_for)

HAVE_OPENSSL = shutil.which("openssl") is not None

MAIN = {
    "mynetworks": "192.0.2.0/24",
    "message_size_limit": "10000",
    "smtpd_error_sleep_time": "0",
    "smtpd_hard_error_limit": "8",
    "smtpd_soft_error_limit": "100",
    "smtpd_junk_command_limit": "5",
}


def read_queue_file(path):
    """(sender, {attr: value}, [recipient dicts], content) of a queue file."""
    with open(path, "rb") as f:
        data = f.read()
    off, sender, attrs, rcpts, pending, body = 0, None, {}, [], {}, None
    while off < len(data):
        t = chr(data[off])
        (n,) = struct.unpack(">I", data[off + 1:off + 5])
        val = data[off + 5:off + 5 + n]
        off += 5 + n
        if t == "S":
            sender = val.decode()
        elif t == "A":
            k, v = val.decode().split("=", 1)
            attrs[k] = v
        elif t in "ONP":
            pending[t] = val.decode()
        elif t in "RDB":
            rcpts.append(dict(pending, address=val.decode("utf-8")))
            pending = {}
        elif t == "M":
            clen = int(val)
            body = data[off:off + clen]
            off += clen
        elif t == "E":
            break
    return sender, attrs, rcpts, body


@unittest.skipUnless(HAVE_OPENSSL, "skipped: needs the openssl command")
class EsmtpTest(TernTestCase):
    @classmethod
    def setUpClass(cls):
        cls.inst = Instance(main=MAIN, tls=True)
        try:
            cls.inst.edit_master_conf("qmgr unix n - %s 300 1 qmgr\n" % cls.inst.jail, "")
            cls.inst.start()
        except Exception:
            cls.inst.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    def connect(self, ehlo=True):
        c = SmtpClient(self.inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        if ehlo:
            c.send(b"EHLO client.test\r\n")
            self.assertTrue(c.reply()[-1].startswith("250 "))
        return c

    def queued(self, reply):
        """The queue file a "250 2.0.0 Ok: queued as QID" reply names."""
        self.assertTrue(reply.startswith("250 2.0.0 Ok: queued as "), reply)
        qid = reply.rsplit(" ", 1)[1]
        path = os.path.join(self.inst.spool, "incoming", qid)
        self.assertTrue(os.path.exists(path), "%s not in incoming/" % qid)
        return read_queue_file(path)

    def incoming(self):
        d = os.path.join(self.inst.spool, "incoming")
        return sorted(n for n in os.listdir(d) if not n.startswith("t."))

    # --- EHLO ---------------------------------------------------------------
    def test_ehlo_extensions(self):
        c = self.connect(ehlo=False)
        c.send(b"EHLO client.test\r\n")
        kw = [l[4:] for l in c.reply()[1:]]
        for k in ("DSN", "SMTPUTF8", "CHUNKING", "BINARYMIME", "8BITMIME"):
            self.assertIn(k, kw)
        self.assertNotIn("REQUIRETLS", kw)      # plaintext: not offered

    # --- DSN --------------------------------------------------------------
    def test_dsn_parameters_stored(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org> RET=HDRS ENVID=QQ+2Bx+3D1\r\n"
               b"RCPT TO:<demo@localhost> NOTIFY=success,DELAY "
               b"ORCPT=rfc822;Demo+2Bx@Example.ORG\r\n"
               b"RCPT TO:<demo@localhost> NOTIFY=NEVER\r\n"
               b"RCPT TO:<demo@localhost>\r\n"
               b"DATA\r\n")
        self.assertEqual(c.replies(5), ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                        "250 2.1.5 Ok", "250 2.1.5 Ok",
                                        "354 End data with <CR><LF>.<CR><LF>"])
        c.send(b"Subject: dsn\r\n\r\nbody\r\n.\r\n")
        sender, attrs, rcpts, body = self.queued(c.reply()[-1])
        self.assertEqual(sender, "a@example.org")
        self.assertEqual(attrs["dsn_ret"], "HDRS")
        self.assertEqual(attrs["dsn_envid"], "QQ+x=1")
        # the DSN values are part of the duplicate key: three recipients
        self.assertEqual(rcpts, [
            {"address": "demo@localhost", "N": "SUCCESS,DELAY",
             "P": "rfc822;Demo+x@Example.ORG"},
            {"address": "demo@localhost", "N": "NEVER"},
            {"address": "demo@localhost"}])
        self.assertNotIn("smtputf8", attrs)
        self.assertNotIn("requiretls", attrs)

    def test_dsn_not_carried_to_next_message(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org> RET=FULL ENVID=one\r\n"
               b"RSET\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
        self.assertEqual([r[:3] for r in c.replies(5)],
                         ["250", "250", "250", "250", "354"])
        c.send(b"Subject: plain\r\n\r\n.\r\n")
        _, attrs, rcpts, _ = self.queued(c.reply()[-1])
        self.assertNotIn("dsn_ret", attrs)
        self.assertNotIn("dsn_envid", attrs)
        self.assertEqual(rcpts, [{"address": "demo@localhost"}])

    def test_dsn_bad_syntax(self):
        mail = [b"RET=FOO", b"RET", b"RET=FULL RET=HDRS", b"ENVID=",
                b"ENVID=a+0D+0Ab", b"ENVID=a+80", b"ENVID=" + b"x" * 101,
                b"ENVID=a ENVID=b"]
        rcpt = [b"NOTIFY=NEVER,SUCCESS", b"NOTIFY=SOMETIMES", b"NOTIFY=",
                b"NOTIFY", b"NOTIFY=DELAY,DELAY", b"NOTIFY=SUCCESS NOTIFY=DELAY",
                b"ORCPT=x400;a", b"ORCPT=rfc822;a+0D+0Ab@example.org",
                b"ORCPT=rfc822;", b"ORCPT=rfc822;a@b ORCPT=rfc822;c@d",
                b"ORCPT=rfc822;user"]
        for p in mail:
            c = self.connect()
            c.send(b"MAIL FROM:<a@example.org> " + p + b"\r\n")
            r = c.reply()[-1]
            self.assertTrue(r.startswith("501 5.5.4 "), (p, r))
        for p in rcpt:
            c = self.connect()
            c.send(b"MAIL FROM:<a@example.org>\r\n"
                   b"RCPT TO:<demo@localhost> " + p + b"\r\n")
            r = c.replies(2)[-1]
            self.assertTrue(r.startswith("501 5.5.4 "), (p, r))

    # --- SMTPUTF8 ---------------------------------------------------------
    def test_smtputf8_needed_for_utf8_addresses(self):
        c = self.connect()
        c.send("MAIL FROM:<jörg@example.org>\r\n".encode())
        self.assertEqual(c.reply()[-1][:9], "553 5.6.7")
        c.send("MAIL FROM:<a@example.org>\r\n"
               "RCPT TO:<dëmo@localhost>\r\n".encode())
        self.assertEqual([r[:9] for r in c.replies(2)],
                         ["250 2.1.0", "553 5.6.7"])
        c.send(b"RSET\r\nMAIL FROM:<j\xc3@example.org> SMTPUTF8\r\n")
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "501"])

    def test_smtputf8_stored(self):
        c = self.connect()
        c.send("MAIL FROM:<jörg@exämple.org> SMTPUTF8\r\n"
               "RCPT TO:<demo@localhost>\r\nDATA\r\n".encode())
        self.assertEqual([r[:3] for r in c.replies(3)], ["250", "250", "354"])
        c.send("Subject: grüße\r\n\r\nbody\r\n.\r\n".encode())
        sender, attrs, _, body = self.queued(c.reply()[-1])
        self.assertEqual(sender, "jörg@exämple.org")
        self.assertEqual(attrs["smtputf8"], "yes")
        self.assertEqual(attrs["protocol"], "UTF8SMTP")
        self.assertIn(b"with UTF8SMTP id", body)

    # --- CHUNKING ---------------------------------------------------------
    def test_bdat_content_exact(self):
        c = self.connect()
        part1 = b"Subject: bdat\r\n\r\n.dot\r\n..two\r\n.\r\n"
        part2 = b"last line\r\n"
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT %d\r\n" % len(part1) + part1
               + b"BDAT %d LAST\r\n" % len(part2) + part2)
        r = c.replies(4)
        self.assertEqual(r[:3], ["250 2.1.0 Ok", "250 2.1.5 Ok",
                                 "250 2.0.0 Ok: %d octets received"
                                 % len(part1)])
        _, _, _, body = self.queued(r[3])
        # no dot-unstuffing, CR LF -> LF, nothing ended the data early
        self.assertTrue(body.endswith(
            b"Subject: bdat\n\n.dot\n..two\n.\nlast line\n"), body)
        c.send(b"NOOP\r\n")
        self.assertEqual(c.reply(), ["250 2.0.0 Ok"])

    def test_bdat_zero_last_and_counts(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT 5\r\nx: y\n"
               b"BDAT 0 LAST\r\nQUIT\r\n")
        r = c.replies(5)
        self.assertEqual(r[2], "250 2.0.0 Ok: 5 octets received")
        _, _, _, body = self.queued(r[3])
        self.assertTrue(body.endswith(b"x: y\n"))
        self.assertEqual(r[4][:3], "221")
        self.assertLogHas(self.inst, "ehlo=1 mail=1 rcpt=1 quit=1 bdat=2 "
                          "commands=6")

    def test_bdat_without_transaction_consumes_chunk(self):
        c = self.connect()
        c.send(b"BDAT 6\r\nQUIT\r\nNOOP\r\n")
        self.assertEqual(c.replies(2), ["503 5.5.1 Error: need MAIL command",
                                        "250 2.0.0 Ok"])
        c.send(b"MAIL FROM:<a@example.org>\r\nBDAT 13 LAST\r\n"
               b"RCPT TO:<x>\r\nNOOP\r\n")
        self.assertEqual(c.replies(3), ["250 2.1.0 Ok",
                                        "554 5.5.1 Error: no valid recipients",
                                        "250 2.0.0 Ok"])

    def test_data_after_bdat_refused(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT 3\r\nab\n")
        self.assertEqual([r[:3] for r in c.replies(3)], ["250", "250", "250"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply(), ["503 5.5.1 Error: DATA after BDAT"])
        c.send(b"BDAT 3 LAST\r\ncd\n")
        _, _, _, body = self.queued(c.reply()[-1])
        self.assertTrue(body.endswith(b"ab\ncd\n"))

    def test_binarymime_needs_bdat(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org> BODY=BINARYMIME\r\n"
               b"RCPT TO:<demo@localhost>\r\n")
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "250"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply(), ["503 5.5.1 Error: BODY=BINARYMIME "
                                     "requires BDAT"])
        c.send(b"BDAT 4 LAST\r\n\x00\x01\r\n")
        _, _, _, body = self.queued(c.reply()[-1])
        self.assertTrue(body.endswith(b"\x00\x01\n"))

    def test_bdat_size_limit(self):
        before = self.incoming()
        c = self.connect()
        big = b"x" * 8000 + b"\r\n"
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT %d\r\n" % len(big) + big
               + b"BDAT %d\r\n" % len(big) + big + b"NOOP\r\n")
        r = c.replies(5)
        self.assertEqual(r[2], "250 2.0.0 Ok: %d octets received" % len(big))
        self.assertEqual(r[3], "552 5.3.4 Error: message file too big")
        self.assertEqual(r[4], "250 2.0.0 Ok")      # the chunk was consumed
        # the transaction is over: a further chunk is refused and dropped
        c.send(b"BDAT 6 LAST\r\nNOOP\r\nNOOP\r\n")
        self.assertEqual(c.replies(2), ["503 5.5.1 Error: need MAIL command",
                                        "250 2.0.0 Ok"])
        self.assertEqual(self.incoming(), before)

    def test_bdat_and_data_store_the_same_bytes(self):
        # bare CR, bare LF, CR CR LF, a last CR: stored alike both ways
        raw = b"Subject: same\r\n\r\na\rb\nc\r\r\nd\r\n.e\r\nf\r"
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT %d LAST\r\n" % len(raw) + raw)
        _, _, _, via_bdat = self.queued(c.replies(3)[-1])
        stuffed = raw.replace(b"\r\n.", b"\r\n..") + b"\r\n.\r\n"
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"DATA\r\n")
        self.assertEqual(c.replies(3)[-1][:3], "354")
        c.send(stuffed)
        _, _, _, via_data = self.queued(c.reply()[-1])
        # the content after our Received: header
        cut = lambda b: b[b.index(b"Subject: same"):]
        self.assertEqual(cut(via_bdat), b"Subject: same\n\na\rb\nc\r\nd\n.e\nf\r")
        self.assertEqual(cut(via_data), cut(via_bdat) + b"\n")

    def test_bdat_malformed_closes(self):
        c = self.connect()
        c.send(b"BDAT 1x\r\nQUIT\r\n")
        self.assertEqual(c.reply(), ["501 5.5.4 Syntax: BDAT count [LAST]"])
        self.assertTrue(c.closed())

    # --- REQUIRETLS -------------------------------------------------------
    def test_requiretls_plaintext_refused(self):
        c = self.connect()
        c.send(b"MAIL FROM:<a@example.org> REQUIRETLS\r\n")
        self.assertEqual(c.reply()[-1][:10], "530 5.7.10")

    def test_requiretls_over_tls(self):
        s = smtplib.SMTP("127.0.0.1", self.inst.smtp_port, "client.test",
                         timeout=WAIT)
        self.addCleanup(s.close)
        s.ehlo()
        self.assertFalse(s.has_extn("requiretls"))
        s.starttls(context=client_context())
        s.ehlo()
        self.assertTrue(s.has_extn("requiretls"))
        code, _ = s.mail("a@example.org", ["REQUIRETLS"])
        self.assertEqual(code, 250)
        self.assertEqual(s.rcpt("demo@localhost")[0], 250)
        code, text = s.data(b"Subject: tls\r\n\r\nsecret\r\n")
        _, attrs, _, _ = self.queued("%d %s" % (code, text.decode()))
        self.assertEqual(attrs["requiretls"], "yes")
        self.assertEqual(attrs["protocol"], "ESMTPS")

    # --- limits -----------------------------------------------------------
    def test_junk_command_limit(self):
        # 5 free junk commands, then each is an error; the 8th error
        # (smtpd_hard_error_limit) ends the session
        c = self.connect()
        got = []
        for i in range(20):
            c.send(b"NOOP\r\n" if i % 2 else b"RSET\r\n")
            r = c.reply()[-1]
            got.append(r)
            if r.startswith("250 ") and len(got) == 13:
                break
        self.assertEqual(got, ["250 2.0.0 Ok"] * 13)
        self.assertRegex(c.reply()[-1],
                         r"^421 4\.7\.0 \S+ Error: too many errors$")
        self.assertTrue(c.closed())

    def test_junk_count_reset_by_a_message(self):
        c = self.connect()
        c.send(b"NOOP\r\n" * 5)
        self.assertEqual(c.replies(5), ["250 2.0.0 Ok"] * 5)
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n"
               b"BDAT 5 LAST\r\nx\r\n\r\n")
        self.queued(c.replies(3)[-1])
        c.send(b"NOOP\r\n" * 12)
        self.assertEqual(c.replies(12), ["250 2.0.0 Ok"] * 12)
        c.send(b"QUIT\r\n")
        self.assertEqual(c.reply()[-1][:3], "221")


class CommandLimitTest(TernTestCase):
    """smtpd_command_limit: command lines per session, whatever they are
    (successful ones included), then 421 4.7.0 and close."""

    def test_command_limit(self):
        inst = Instance(main={"smtpd_command_limit": "6",
                              "smtpd_junk_command_limit": "1000"})
        self.addCleanup(inst.cleanup)
        inst.start()
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        c.send(b"EHLO client.test\r\n")
        self.assertTrue(c.reply()[-1].startswith("250 "))
        c.send(b"NOOP\r\n" * 5)
        self.assertEqual(c.replies(5), ["250 2.0.0 Ok"] * 5)
        c.send(b"NOOP\r\n")
        self.assertRegex(c.reply()[-1],
                         r"^421 4\.7\.0 \S+ Error: too many commands$")
        self.assertTrue(c.closed())
        wait_for(lambda: "too many commands after NOOP from" in inst.log_text(),
                 WAIT, 0.1, "the too-many-commands log line")
        # a new session starts from zero
        c2 = SmtpClient(inst.smtp_port)
        self.addCleanup(c2.close)
        self.assertTrue(c2.reply()[0].startswith("220 "))
        c2.send(b"NOOP\r\nQUIT\r\n")
        self.assertEqual(c2.replies(2)[0], "250 2.0.0 Ok")


class ShutdownTest(TernTestCase):
    """master's shutdown (SIGTERM to smtpd): 421 4.3.2 to every session,
    a message being received is discarded, never acknowledged."""

    def test_shutdown_says_421(self):
        inst = self.instance(main=dict(MAIN))
        inst.edit_master_conf("qmgr unix n - %s 300 1 qmgr\n" % inst.jail, "")
        inst.start()
        idle = SmtpClient(inst.smtp_port)
        self.addCleanup(idle.close)
        self.assertEqual(idle.reply()[0][:3], "220")
        idle.send(b"EHLO client.test\r\n")
        idle.reply()
        data = SmtpClient(inst.smtp_port)
        self.addCleanup(data.close)
        data.reply()
        data.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                  b"RCPT TO:<demo@localhost>\r\nDATA\r\n")
        data.reply()
        self.assertEqual([r[:3] for r in data.replies(3)],
                         ["250", "250", "354"])
        data.send(b"Subject: half\r\n\r\nnot finished\r\n")
        bdat = SmtpClient(inst.smtp_port)
        self.addCleanup(bdat.close)
        bdat.reply()
        bdat.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
                  b"RCPT TO:<demo@localhost>\r\nBDAT 100 LAST\r\nabc")
        bdat.reply()
        self.assertEqual([r[:3] for r in bdat.replies(2)], ["250", "250"])
        wait_for(lambda: inst.log_text().count("client=unknown[127.0.0.1]")
                 >= 2, WAIT, 0.1, "both queue files open")
        os.kill(inst.master_pid, signal.SIGTERM)
        for c in (idle, data, bdat):
            self.assertRegex(c.reply()[-1],
                             r"^421 4\.3\.2 \S+ Service shutting down$")
            self.assertTrue(c.closed())
        inc = os.path.join(inst.spool, "incoming")
        wait_for(lambda: os.listdir(inc) == [], WAIT, 0.1,
                 "discarded queue files")
        self.assertIn("shutdown: message from unknown[127.0.0.1] discarded",
                      inst.log_text())


class BdatDeadlineTest(TernTestCase):
    """A BDAT chunk has DATA's deadline: a client that stops sending in
    the middle of a chunk is timed out (the bytes it still owes are not
    read as commands)."""

    def test_stalled_chunk_times_out(self):
        inst = self.instance(main=dict(MAIN, smtpd_timeout="2s"))
        inst.edit_master_conf("qmgr unix n - %s 300 1 qmgr\n" % inst.jail, "")
        inst.start()
        c = SmtpClient(inst.smtp_port)
        self.addCleanup(c.close)
        c.reply()
        c.send(b"EHLO client.test\r\nMAIL FROM:<a@example.org>\r\n"
               b"RCPT TO:<demo@localhost>\r\nBDAT 100 LAST\r\nQUIT\r\n")
        c.reply()
        self.assertEqual([r[:3] for r in c.replies(2)], ["250", "250"])
        self.assertRegex(c.reply()[-1],
                         r"^421 4\.4\.2 \S+ Error: timeout exceeded$")
        self.assertTrue(c.closed())
        self.assertLogHas(inst, "timeout after BDAT from unknown[127.0.0.1]")
        inc = os.path.join(inst.spool, "incoming")
        wait_for(lambda: os.listdir(inc) == [], WAIT, 0.1, "no queue file")


if __name__ == "__main__":
    unittest.main()
