"""virtual_alias_maps: recipients rewritten before the message is queued
(issue 7), in cleanup, for every way into the queue.

An lmdb: table (built by ternmap, looked up through proxymap when smtpd
is chrooted) maps addresses of a virtual alias domain and of a local
domain to local users and to lists; delivery log lines show the address
the client gave as orig_to=. Unknown addresses of the virtual alias
domain are refused at RCPT (550 5.1.1 ... User unknown in virtual alias
table). A table that cannot be read makes mail wait (4.3.0), and is
used as soon as it is there. An inline: table expands a list with an
address extension. Local's forwarded copies and bounce reports are
expanded too.
"""
import os
import re
import smtplib
import unittest

from ternlab import SmtpClient, TernTestCase, ternmap, wait_for

VIRTUAL = """\
# the virtual alias domain itself (the value does not matter)
v.example           anything
info@v.example      demo@localhost
team@v.example      demo@localhost, alice@localhost
chain@v.example     team@v.example
sales@localhost     alice
@catch.example      demo
"""


def rcpt_reply(inst, rcpt):
    c = SmtpClient(inst.smtp_port)
    try:
        c.reply()
        c.send(b"EHLO client.test\r\n")
        c.reply()
        c.send(b"MAIL FROM:<x@example.org>\r\n")
        c.reply()
        c.send(b"RCPT TO:<%s>\r\n" % rcpt.encode())
        return c.reply()[-1]
    finally:
        c.close()


class VirtualAliasTest(TernTestCase):

    def lmdb_instance(self, build_table=True, aliases=None):
        inst = self.instance(users=("demo", "alice"), aliases=aliases)
        path = os.path.join(inst.etc, "virtual")
        main = os.path.join(inst.etc, "main.conf")
        with open(main, "a") as f:
            f.write("virtual_alias_maps = lmdb:%s\n" % path)
        if build_table:
            ternmap(inst.etc, path, VIRTUAL)
        return inst, path

    def test_map_to_users_and_lists(self):
        inst, _ = self.lmdb_instance()
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["info@v.example"],
                       b"Subject: info\r\n\r\nto info\r\n")
            s.sendmail("x@example.org", ["team@v.example"],
                       b"Subject: team\r\n\r\nto team\r\n")
            s.sendmail("x@example.org", ["chain@v.example"],
                       b"Subject: chain\r\n\r\nvia chain\r\n")
            s.sendmail("x@example.org", ["sales@localhost"],
                       b"Subject: sales\r\n\r\nlocal domain\r\n")
            s.sendmail("x@example.org", ["whoever@catch.example"],
                       b"Subject: catch\r\n\r\ncatch-all\r\n")
        inst.wait_messages("demo", 4)       # info, team, chain, catch
        inst.wait_messages("alice", 3)      # team, chain, sales
        inst.wait_queue_empty()
        log = inst.log_text()
        self.assertRegex(log, r"to=<demo@localhost>, orig_to=<info@v\.example>, "
                              r"relay=local, .*status=sent")
        self.assertRegex(log, r"to=<alice@localhost>, orig_to=<team@v\.example>, "
                              r"relay=local, .*status=sent")
        self.assertRegex(log, r"to=<alice@localhost>, orig_to=<chain@v\.example>, "
                              r"relay=local, .*status=sent")
        # "alice" had no domain: @$myorigin
        self.assertRegex(log, r"to=<alice@localhost\.localdomain>, "
                              r"orig_to=<sales@localhost>, relay=local, "
                              r".*status=sent")
        self.assertRegex(log, r"to=<demo@localhost\.localdomain>, "
                              r"orig_to=<whoever@catch\.example>, .*status=sent")
        subjects = sorted(re.search(rb"Subject: (\w+)", m).group(1).decode()
                          for m in inst.messages("demo"))
        self.assertEqual(subjects, ["catch", "chain", "info", "team"])

    def test_unknown_in_virtual_alias_domain_rejected(self):
        inst, _ = self.lmdb_instance()
        inst.start()
        reply = rcpt_reply(inst, "nobody@v.example")
        self.assertEqual(reply, "550 5.1.1 <nobody@v.example>: Recipient address "
                                "rejected: User unknown in virtual alias table")
        self.assertLogHas(inst, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: "
                                "550 5.1.1 <nobody@v.example>: Recipient address "
                                "rejected: User unknown in virtual alias table; "
                                "from=<x@example.org> to=<nobody@v.example>")
        # listed ones, with an extension too, are fine; other domains are
        # not asked (127.0.0.1 is in $mynetworks: it may relay)
        self.assertTrue(rcpt_reply(inst, "info@v.example").startswith("250"))
        self.assertTrue(rcpt_reply(inst, "info+news@v.example").startswith("250"))
        self.assertTrue(rcpt_reply(inst, "sales@localhost").startswith("250"))
        self.assertTrue(rcpt_reply(inst, "x@other.example").startswith("250"))

    def test_table_missing_waits(self):
        inst, path = self.lmdb_instance(build_table=False)
        inst.start()
        # not built yet: every lookup fails, so mail waits, never bounces
        reply = rcpt_reply(inst, "demo@localhost")
        self.assertTrue(reply.startswith("451 4.3.0"), reply)
        ternmap(inst.etc, path, VIRTUAL)

        # every smtpd process (one per CPU) opens the table again on its
        # own: until the one a connection lands on has, RCPT still says
        # 451 and nothing is queued
        def sent():
            try:
                with inst.smtp() as s:
                    s.sendmail("x@example.org", ["info@v.example"],
                               b"Subject: later\r\n\r\nx\r\n")
                return True
            except smtplib.SMTPRecipientsRefused as e:
                code = e.recipients["info@v.example"][0]
                self.assertEqual(code, 451, e.recipients)
                return False
        wait_for(sent, 60, 0.5, "the table once built")
        inst.wait_messages("demo", 1)
        inst.wait_queue_empty()
        self.assertEqual(len(inst.messages("demo")), 1)

    def test_forwarded_copy_is_expanded(self):
        # local's alias list becomes a new queue file through cleanup:
        # its virtual member is rewritten there too, with the alias as
        # the original recipient
        inst, _ = self.lmdb_instance(aliases={"fwd": "info@v.example, alice"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["fwd@localhost"],
                       b"Subject: forwarded\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        inst.wait_messages("alice", 1)
        inst.wait_queue_empty()
        self.assertRegex(inst.log_text(), r"to=<demo@localhost>, "
                                          r"orig_to=<fwd@localhost>, .*status=sent")

    def test_bounce_to_virtual_sender(self):
        # the report to a virtual address reaches the real mailbox
        inst, _ = self.lmdb_instance(aliases={"lost": "nosuchuser"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("info@v.example", ["lost@localhost"],
                       b"Subject: will bounce\r\n\r\nx\r\n")
        raw = inst.wait_messages("demo", 1)[0]
        self.assertIn(b"multipart/report", raw)
        self.assertIn(b"Undelivered Mail Returned to Sender", raw)
        self.assertRegex(inst.log_text(), r"to=<demo@localhost>, "
                                          r"orig_to=<info@v\.example>, .*status=sent")

    def test_inline_list_with_extension(self):
        inst = self.instance(users=("demo", "alice"), main={
            "virtual_alias_maps":
                "inline:{list@l.example=demo@localhost alice@localhost, "
                "l.example=x}"})
        inst.start()
        with inst.smtp() as s:
            s.sendmail("x@example.org", ["list+tag@l.example"],
                       b"Subject: tagged\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)
        inst.wait_messages("alice", 1)
        inst.wait_queue_empty()
        log = inst.log_text()
        # the extension went along (propagate_unmatched_extensions)
        self.assertRegex(log, r"to=<demo\+tag@localhost>, "
                              r"orig_to=<list\+tag@l\.example>, .*status=sent")
        self.assertRegex(log, r"to=<alice\+tag@localhost>, "
                              r"orig_to=<list\+tag@l\.example>, .*status=sent")


if __name__ == "__main__":
    unittest.main()
