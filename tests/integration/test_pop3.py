"""POP3 (RFC 1939, 2449, 2595, 5034) through pop3-login and pop3d, with
Python's poplib and a raw client: capabilities before and after TLS,
every login method, the transaction commands, UPDATE only at QUIT,
[IN-USE], the STLS injection, hostile input and limits."""
import base64
import os
import poplib
import unittest

from ternlab import (Pop3Client, SharedInstanceTestCase, TernTestCase, WAIT,
                     client_context, wait_for)
from test_smtpd_auth import Scram, plain

USERS = ("demo", "alice", "bob", "carol", "dave", "erin")


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


class Pop3Base(SharedInstanceTestCase):
    MAIN = {"pop3d_auth_failure_delay": "1s"}
    TLS = POP3 = True
    USERS = USERS

    def pop(self, user=None):
        """poplib session after STLS, logged in as user (if given)."""
        p = poplib.POP3("127.0.0.1", self.inst.pop3_port, timeout=WAIT)
        self.addCleanup(self._close, p)
        p.stls(client_context())
        if user:
            p.user(user)
            p.pass_(self.inst.password(user))
        return p

    @staticmethod
    def _close(p):
        if p.sock is not None:          # None after quit()
            try:
                p.sock.close()
            except OSError:
                pass

    def raw(self, tls=False, port=None):
        c = Pop3Client(port or (self.inst.pop3s_port if tls
                                else self.inst.pop3_port), tls=tls)
        self.addCleanup(c.close)
        self.assertTrue(c.greeting.startswith(b"+OK"), c.greeting)
        return c

    def raw_stls(self):
        c = self.raw()
        self.assertTrue(c.cmd("STLS").startswith(b"+OK"))
        c.starttls()
        return c

    def raw_login(self, user):
        c = self.raw_stls()
        self.assertTrue(c.cmd("USER " + user).startswith(b"+OK"))
        r = c.cmd("PASS " + self.inst.password(user))
        self.assertTrue(r.startswith(b"+OK"), r)
        return c


class Pop3CapaTest(Pop3Base):
    def test_greeting_and_capa_before_tls(self):
        c = self.raw()
        self.assertTrue(c.greeting.startswith(b"+OK"))
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        caps = [x.upper() for x in c.multi()]
        for want in (b"TOP", b"UIDL", b"RESP-CODES", b"AUTH-RESP-CODE",
                     b"PIPELINING", b"STLS"):
            self.assertIn(want, caps)
        # no password in clear before TLS (pop3d_tls_auth_only = yes)
        self.assertNotIn(b"USER", caps)
        sasl = [x for x in caps if x.startswith(b"SASL")]
        self.assertEqual(len(sasl), 1, caps)
        self.assertNotIn(b"PLAIN", sasl[0].split())
        self.assertNotIn(b"LOGIN", sasl[0].split())
        self.assertIn(b"SCRAM-SHA-256", sasl[0].split())

    def test_capa_after_stls(self):
        c = self.raw_stls()
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        caps = [x.upper() for x in c.multi()]
        self.assertIn(b"USER", caps)
        self.assertNotIn(b"STLS", caps)
        sasl = [x for x in caps if x.startswith(b"SASL")][0].split()
        for m in (b"PLAIN", b"LOGIN", b"SCRAM-SHA-256"):
            self.assertIn(m, sasl)

    def test_plaintext_login_refused_before_tls(self):
        c = self.raw()
        r = c.cmd("USER demo")
        if r.startswith(b"+OK"):        # refusal may come at PASS
            r = c.cmd("PASS " + self.inst.password("demo"))
        self.assertTrue(r.startswith(b"-ERR [AUTH]"), r)
        r = c.cmd("AUTH PLAIN " + plain("demo", self.inst.password("demo")))
        self.assertTrue(r.startswith(b"-ERR"), r)
        # still usable: STLS then login
        self.assertTrue(c.cmd("STLS").startswith(b"+OK"))

    def test_second_stls_refused(self):
        c = self.raw_stls()
        self.assertTrue(c.cmd("STLS").startswith(b"-ERR"))

    def test_stls_injection_not_answered(self):
        """Commands sent in the clear behind STLS, in the same segment,
        must be discarded, not answered inside the TLS session."""
        c = self.raw()
        c.send(b"STLS\r\nCAPA\r\nUSER demo\r\n")
        self.assertTrue(c.line().startswith(b"+OK"))
        c.starttls()
        c.send("QUIT\r\n")
        lines = []
        while True:
            ln = c.line()
            if not ln and not c.buf:
                break
            lines.append(ln)
        # only QUIT's reply: an answered CAPA would add its list and
        # USER its "+OK"
        self.assertEqual(len(lines), 1, lines)
        self.assertTrue(lines[0].startswith(b"+OK"), lines)

    def test_pop3s_implicit_tls(self):
        p = poplib.POP3_SSL("127.0.0.1", self.inst.pop3s_port,
                            context=client_context(), timeout=WAIT)
        self.addCleanup(self._close, p)
        caps = p.capa()
        self.assertIn("USER", caps)
        self.assertNotIn("STLS", caps)
        p.user("demo")
        self.assertTrue(p.pass_(self.inst.password("demo")).startswith(b"+OK"))
        p.stat()
        p.quit()


class Pop3LoginTest(Pop3Base):
    def test_user_pass(self):
        p = self.pop("demo")
        n, size = p.stat()
        self.assertGreaterEqual(n, 0)
        p.quit()
        self.assertLogHas(self.inst, "pop3-login[")
        self.assertLogHas(self.inst, "Login: user=<demo>")

    def test_user_with_domain(self):
        p = self.pop()
        p.user("demo@localhost")
        self.assertTrue(p.pass_(self.inst.password("demo")).startswith(b"+OK"))
        p.quit()

    def test_auth_plain_initial_response(self):
        c = self.raw_stls()
        r = c.cmd("AUTH PLAIN " + plain("alice", self.inst.password("alice")))
        self.assertTrue(r.startswith(b"+OK"), r)
        self.assertTrue(c.cmd("STAT").startswith(b"+OK"))
        self.assertTrue(c.cmd("QUIT").startswith(b"+OK"))

    def test_auth_plain_challenge(self):
        c = self.raw_stls()
        r = c.cmd("AUTH PLAIN")
        self.assertTrue(r.startswith(b"+ ") or r == b"+", r)
        r = c.cmd(plain("alice", self.inst.password("alice")))
        self.assertTrue(r.startswith(b"+OK"), r)
        c.cmd("QUIT")

    def test_auth_login(self):
        c = self.raw_stls()
        r = c.cmd("AUTH LOGIN")
        self.assertTrue(r.startswith(b"+ "), r)
        r = c.cmd(b64("bob"))
        self.assertTrue(r.startswith(b"+ "), r)
        r = c.cmd(b64(self.inst.password("bob")))
        self.assertTrue(r.startswith(b"+OK"), r)
        c.cmd("QUIT")

    def test_auth_scram_sha256_without_tls(self):
        """SCRAM never shows the password: allowed before TLS."""
        c = self.raw()
        sc = Scram("carol", self.inst.password("carol"))
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64(sc.client_first()))
        self.assertTrue(r.startswith(b"+ "), r)
        server_first = base64.b64decode(r[2:]).decode()
        r = c.cmd(b64(sc.client_final(server_first)))
        self.assertTrue(r.startswith(b"+ "), r)
        self.assertEqual(base64.b64decode(r[2:]).decode(), sc.server_final)
        r = c.cmd("")
        self.assertTrue(r.startswith(b"+OK"), r)
        self.assertTrue(c.cmd("STAT").startswith(b"+OK"))
        c.cmd("QUIT")

    def test_auth_scram_wrong_proof(self):
        c = self.raw()
        sc = Scram("carol", self.inst.password("carol"))
        r = c.cmd("AUTH SCRAM-SHA-256 " + b64(sc.client_first()))
        server_first = base64.b64decode(r[2:]).decode()
        r = c.cmd(b64(sc.client_final(server_first, proof_xor=1)))
        self.assertTrue(r.startswith(b"-ERR [AUTH]"), r)

    def test_auth_cancel(self):
        c = self.raw_stls()
        self.assertTrue(c.cmd("AUTH LOGIN").startswith(b"+ "))
        self.assertTrue(c.cmd("*").startswith(b"-ERR"))
        # the session goes on
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        c.multi()

    def test_auth_alone_lists_mechanisms(self):
        c = self.raw_stls()
        r = c.cmd("AUTH")
        self.assertTrue(r.startswith(b"+OK"), r)
        mechs = [x.upper() for x in c.multi()]
        self.assertIn(b"PLAIN", mechs)

    def test_wrong_password(self):
        c = self.raw_stls()
        c.cmd("USER demo")
        r = c.cmd("PASS not-the-password")
        self.assertTrue(r.startswith(b"-ERR [AUTH]"), r)
        # still in AUTHORIZATION: a right password works now
        c.cmd("USER demo")
        r = c.cmd("PASS " + self.inst.password("demo"))
        self.assertTrue(r.startswith(b"+OK"), r)
        c.cmd("QUIT")

    def test_unknown_user_same_reply(self):
        c = self.raw_stls()
        c.cmd("USER nosuchuser")
        r1 = c.cmd("PASS whatever")
        c.cmd("USER demo")
        r2 = c.cmd("PASS whatever")
        self.assertEqual(r1, r2)

    def test_failure_limit_disconnects(self):
        c = self.raw_stls()
        for _ in range(3):          # pop3d_sasl_failure_limit
            c.cmd("USER demo")
            r = c.cmd("PASS wrong")
            if not r:
                break
        self.assertTrue(c.closed())
        self.assertIn("auth failed", self.inst.log_text())

    def test_transaction_commands_need_login(self):
        c = self.raw_stls()
        for cmd in ("STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0"):
            self.assertTrue(c.cmd(cmd).startswith(b"-ERR"), cmd)
        self.assertTrue(c.cmd("QUIT").startswith(b"+OK"))

    def test_pass_without_user(self):
        c = self.raw_stls()
        self.assertTrue(c.cmd("PASS x").startswith(b"-ERR"))


class Pop3MailTest(Pop3Base):
    MAIN = {"pop3d_auth_failure_delay": "1s", "pop3d_hard_error_limit": "20"}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.inst.deliver("demo", ["first", "second", "third"],
                         body="line one\r\n.hidden dot line\r\n..two dots\r\n"
                              "last\r\n")
        # a file another program left: no sizes in the name, no line end
        # at the end (its octet count includes the CR LF RETR adds)
        md = cls.inst.maildir("demo")
        path = os.path.join(md, "new", "2000000000.foreign.host")
        with open(path, "wb") as f:
            f.write(b"Subject: foreign\n\nno final line end")
        st = os.stat(md)
        os.chown(path, st.st_uid, st.st_gid)

    def test_stat_list_match_retr(self):
        p = self.pop("demo")
        n, total = p.stat()
        self.assertGreaterEqual(n, 3)
        resp, listing, _ = p.list()
        sizes = {int(a): int(b) for a, b in (x.split() for x in listing)}
        self.assertEqual(len(sizes), n)
        self.assertEqual(sum(sizes.values()), total)
        for i in range(1, n + 1):
            resp, lines, octets = p.retr(i)
            self.assertEqual(octets, sizes[i], "message %d" % i)
            self.assertEqual(int(p.list(i).split()[2]), sizes[i])
        p.rset()
        p.quit()

    def test_retr_content_crlf_and_stuffing(self):
        c = self.raw_login("demo")
        self.assertTrue(c.cmd("RETR 1").startswith(b"+OK"))
        lines = c.multi()
        self.assertIn(b"..hidden dot line", lines)
        self.assertIn(b"...two dots", lines)
        self.assertIn(b"Subject: first", lines)
        # every line ended with CRLF: no bare CR or LF inside a line
        self.assertNotIn(b"\r", b"".join(lines))
        self.assertNotIn(b"\n", b"".join(lines))
        unstuffed = [x[1:] if x.startswith(b"..") else x for x in lines]
        self.assertIn(b".hidden dot line", unstuffed)
        c.cmd("QUIT")

    def test_top(self):
        c = self.raw_login("demo")
        self.assertTrue(c.cmd("TOP 1 0").startswith(b"+OK"))
        head = c.multi()
        self.assertIn(b"Subject: first", head)
        self.assertEqual(head[-1], b"")             # the blank line
        self.assertNotIn(b"line one", head)
        self.assertTrue(c.cmd("TOP 1 2").startswith(b"+OK"))
        two = c.multi()
        self.assertEqual(two[len(head):], [b"line one", b"..hidden dot line"])
        self.assertTrue(c.cmd("TOP 1 1000").startswith(b"+OK"))
        self.assertEqual(c.multi()[-1], b"last")
        c.cmd("QUIT")

    def test_uidl_stable_and_valid(self):
        p = self.pop("demo")
        resp, a, _ = p.uidl()
        p.quit()
        p = self.pop("demo")
        resp, b, _ = p.uidl()
        single = p.uidl(1).split()
        p.quit()
        self.assertEqual(a, b)
        uids = [x.split()[1] for x in a]
        self.assertEqual(len(set(uids)), len(uids))
        for u in uids:
            self.assertTrue(1 <= len(u) <= 70, u)
            self.assertTrue(all(0x21 <= ch <= 0x7E for ch in u), u)
        self.assertEqual(single[2], uids[0])

    def test_bad_message_numbers(self):
        c = self.raw_login("demo")
        for cmd in ("RETR 0", "RETR 99999", "RETR -1", "RETR x", "LIST 0",
                    "TOP 1", "TOP 1 -1", "DELE 424242", "RETR",
                    "RETR 1 2", "UIDL 0"):
            self.assertTrue(c.cmd(cmd).startswith(b"-ERR"), cmd)
        self.assertTrue(c.cmd("NOOP").startswith(b"+OK"))
        c.cmd("QUIT")

    def test_capa_after_login(self):
        c = self.raw_login("demo")
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        caps = [x.upper() for x in c.multi()]
        self.assertIn(b"UIDL", caps)
        self.assertIn(b"TOP", caps)
        self.assertTrue(c.cmd("USER demo").startswith(b"-ERR"))
        c.cmd("QUIT")


class Pop3UpdateTest(Pop3Base):
    """Deletions happen at QUIT, and only then."""

    def fresh(self, user, n):
        self.inst.deliver(user, ["%s-%d" % (user, i) for i in range(n)])
        return len(self.inst.messages(user))

    def test_dele_then_quit_deletes(self):
        have = self.fresh("alice", 2)
        p = self.pop("alice")
        self.assertEqual(p.stat()[0], have)
        p.dele(1)
        with self.assertRaises(poplib.error_proto):
            p.retr(1)                      # deleted in this session
        self.assertEqual(p.stat()[0], have - 1)
        self.assertEqual(len(self.inst.messages("alice")), have)
        p.quit()
        self.assertEqual(len(self.inst.messages("alice")), have - 1)

    def test_dropped_connection_deletes_nothing(self):
        have = self.fresh("bob", 2)
        c = self.raw_login("bob")
        self.assertTrue(c.cmd("DELE 1").startswith(b"+OK"))
        self.assertTrue(c.cmd("DELE 2").startswith(b"+OK"))
        c.close()
        # the lock is free again once pop3d saw the end: a new session
        # lists everything
        def relisted():
            try:
                p = self.pop("bob")
            except poplib.error_proto:
                return None
            n = p.stat()[0]
            p.quit()
            return n
        self.assertEqual(wait_for(relisted, WAIT, what="bob's mailbox free"),
                         have)
        self.assertEqual(len(self.inst.messages("bob")), have)

    def test_rset_undoes_dele(self):
        have = self.fresh("carol", 1)
        p = self.pop("carol")
        p.dele(1)
        p.rset()
        self.assertEqual(p.stat()[0], have)
        p.quit()
        self.assertEqual(len(self.inst.messages("carol")), have)

    def test_retrieved_marked_seen(self):
        self.fresh("dave", 1)
        p = self.pop("dave")
        p.retr(1)
        p.quit()
        cur = os.listdir(os.path.join(self.inst.maildir("dave"), "cur"))
        self.assertTrue(any(n.endswith(":2,S") for n in cur), cur)
        # and still listed, with the same UIDL
        p = self.pop("dave")
        self.assertGreaterEqual(p.stat()[0], 1)
        p.quit()

    def test_in_use(self):
        self.fresh("erin", 1)
        first = self.pop("erin")
        c = self.raw_stls()
        c.cmd("USER erin")
        r = c.cmd("PASS " + self.inst.password("erin"))
        self.assertTrue(r.startswith(b"-ERR [IN-USE]"), r)
        first.quit()

    def test_new_mail_not_shown_in_session(self):
        self.fresh("erin", 1)
        p = self.pop("erin")
        n = p.stat()[0]
        self.inst.deliver("erin", ["during-session"])
        self.assertEqual(p.stat()[0], n)
        p.quit()
        p = self.pop("erin")
        self.assertEqual(p.stat()[0], n + 1)
        p.quit()


class Pop3HostileTest(Pop3Base):
    MAIN = {"pop3d_auth_failure_delay": "1s", "pop3d_hard_error_limit": "5"}

    def test_long_line(self):
        c = self.raw()
        r = c.cmd("NOOP " + "x" * 5000)
        self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        c.multi()

    def test_huge_line_without_end(self):
        c = self.raw()
        try:
            c.send(b"A" * (1 << 20))
        except OSError:
            pass
        # answered or dropped, but the server lives
        c2 = self.raw()
        self.assertTrue(c2.cmd("CAPA").startswith(b"+OK"))

    def test_error_limit(self):
        c = self.raw()
        for _ in range(10):
            r = c.cmd("BOGUS")
            if not r:
                break
            self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertTrue(c.closed())

    def test_nul_and_control_bytes(self):
        c = self.raw()
        r = c.cmd("US\0ER demo")
        self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertTrue(c.cmd("CAPA").startswith(b"+OK"))
        c.multi()

    def test_error_limit_after_login(self):
        c = self.raw_login("demo")
        for _ in range(10):
            r = c.cmd("RETR nonsense")
            if not r:
                break
            self.assertTrue(r.startswith(b"-ERR"), r)
        self.assertTrue(c.closed())

    def test_pipelined_login_and_commands(self):
        c = self.raw_stls()
        c.send("USER demo\r\nPASS %s\r\nSTAT\r\nNOOP\r\nQUIT\r\n"
               % self.inst.password("demo"))
        replies = [c.line() for _ in range(5)]
        for r in replies:
            self.assertTrue(r.startswith(b"+OK"), replies)
        self.assertTrue(c.closed())


class Pop3TimeoutTest(TernTestCase):
    def test_idle_timeout_before_and_after_login(self):
        inst = self.instance(tls=True, pop3=True,
                             main={"pop3d_timeout": "2s"})
        inst.start()
        inst.pop3_ready()
        c = Pop3Client(inst.pop3_port)
        self.addCleanup(c.close)
        self.assertTrue(c.closed(WAIT))
        c2 = Pop3Client(inst.pop3_port)
        self.addCleanup(c2.close)
        self.assertTrue(c2.cmd("STLS").startswith(b"+OK"))
        c2.starttls()
        c2.cmd("USER demo")
        self.assertTrue(c2.cmd("PASS " + inst.password()).startswith(b"+OK"))
        self.assertTrue(c2.closed(WAIT))
        # nothing was deleted and the mailbox is free again
        p = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=WAIT)
        p.stls(client_context())
        p.user("demo")
        p.pass_(inst.password())
        p.quit()


class Pop3PlaintextAllowedTest(TernTestCase):
    def test_user_pass_without_tls_when_allowed(self):
        inst = self.instance(pop3=True,
                             main={"pop3d_tls_auth_only": "no"})
        inst.start()
        inst.pop3_ready()
        inst.deliver("demo", ["plain"])
        p = poplib.POP3("127.0.0.1", inst.pop3_port, timeout=WAIT)
        self.assertNotIn("STLS", p.capa())
        self.assertIn("USER", p.capa())
        p.user("demo")
        p.pass_(inst.password())
        resp, lines, _ = p.retr(1)
        self.assertIn(b"Subject: plain", lines)
        p.quit()


if __name__ == "__main__":
    unittest.main()
