"""test_smtp - the outbound smtp client (smtp(8)) end to end.

The seed flow: two Tern instances on loopback and a dnsmasq of our own
answering MX and A records for a.example.org and b.example.org. A user of instance A
submits on A's submission port (STARTTLS + AUTH); A's qmgr hands the
remote recipient to smtp, which looks up the MX of b.example.org (dnsmasq),
connects to instance B (known_tcp_ports = smtp=<B's port>: every MX
delivery goes to that port), and B stores the message in the Maildir.

The other tests talk to scripted servers in this file (a thread on a
loopback port that answers each command from a script), so every
reply the client must handle is under the test's control: 4xx then
success, 5xx bounces, a refused connection then a retry, a dead MX
before a live one, a null MX, PIPELINING/CHUNKING/DSN parameters,
dot-stuffing, hostile replies.
"""
import os
import re
import smtplib
import socket
import ssl
import threading
import time
import unittest

from ternlab import (HAVE_DNSMASQ, WAIT, Dnsmasq, Instance, TernTestCase,
                     free_port, wait_for)


def dns_conf(extra=""):
    return ("local=/a.example.org/\nlocal=/b.example.org/\nlocal=/c.example.org/\n"
            "local=/null.example.org/\nlocal=/dead.example.org/\nlocal=/nomx.example.org/\n"
            "mx-host=b.example.org,mx.b.example.org,10\n"
            "address=/mx.b.example.org/127.0.0.1\n"
            "address=/mail.a.example.org/127.0.0.1\n"
            "mx-host=null.example.org,,0\n"
            # dead.example.org: the better MX is an address nobody listens on
            "mx-host=dead.example.org,mx1.dead.example.org,10\n"
            "mx-host=dead.example.org,mx2.dead.example.org,20\n"
            "address=/mx1.dead.example.org/127.0.0.9\n"
            "address=/mx2.dead.example.org/127.0.0.1\n"
            "address=/nomx.example.org/127.0.0.1\n"
            # both families: smtp_address_preference, inet_protocols
            "mx-host=dual.example.org,mx.dual.example.org,10\n"
            "host-record=mx.dual.example.org,127.0.0.1,::1\n" + extra)


class Script(threading.Thread):
    """A scripted SMTP server on 127.0.0.1:port. replies: {VERB: [reply,
    ...]} (each connection/transaction takes the next one; the last
    repeats). It records every command and message body."""

    def __init__(self, port=0, greeting="220 sink ESMTP", ehlo=None,
                 replies=None, addr="127.0.0.1"):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET6 if ":" in addr
                                  else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((addr, port))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.greeting = greeting
        self.ehlo = ehlo if ehlo is not None else [
            "PIPELINING", "SIZE 10240000", "8BITMIME", "DSN"]
        self.replies = replies or {}
        self.used = {}
        self.commands = []
        self.bodies = []
        self.connections = 0
        self.stopping = False
        self.lock = threading.Lock()

    def reply_for(self, verb, default):
        with self.lock:
            lst = self.replies.get(verb)
            if not lst:
                return default
            i = self.used.get(verb, 0)
            self.used[verb] = i + 1
            return lst[min(i, len(lst) - 1)]

    def run(self):
        while not self.stopping:
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn,),
                             daemon=True).start()

    def serve(self, conn):
        f = conn.makefile("rb")
        conn.settimeout(30)

        def send(text):
            conn.sendall(text.encode() + b"\r\n")
        try:
            if self.greeting is None:       # never greet, never close
                while not self.stopping and conn.recv(100):
                    pass
                return
            if self.greeting.startswith("drip:"):
                # a greeting a byte at a time, never finished
                for ch in self.greeting[5:] * 1000:
                    if self.stopping:
                        return
                    conn.sendall(ch.encode())
                    time.sleep(0.2)
                return
            send(self.greeting)
            if not self.greeting.startswith("220"):
                conn.close()
                return
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode("latin-1").rstrip("\r\n")
                with self.lock:
                    self.commands.append(cmd)
                verb = cmd.split(" ")[0].split(":")[0].upper()
                if verb == "EHLO":
                    r = self.reply_for("EHLO", None)
                    if r:
                        send(r)
                        continue
                    lines = ["sink"] + self.ehlo
                    for i, l in enumerate(lines):
                        send("250%s%s" % (" " if i == len(lines) - 1
                                          else "-", l))
                elif verb == "HELO":
                    send(self.reply_for("HELO", "250 sink"))
                elif verb == "MAIL":
                    send(self.reply_for("MAIL", "250 2.1.0 Ok"))
                elif verb == "RCPT":
                    send(self.reply_for("RCPT", "250 2.1.5 Ok"))
                elif verb == "DATA":
                    r = self.reply_for("DATA", "354 End data with .")
                    send(r)
                    if not r.startswith("354"):
                        continue
                    body = b""
                    while True:
                        l = f.readline()
                        if not l or l == b".\r\n":
                            break
                        body += l
                    self.bodies.append(body)
                    send(self.reply_for("DOT", "250 2.0.0 Ok: queued as X1"))
                elif verb == "BDAT":
                    parts = cmd.split()
                    body = f.read(int(parts[1]))
                    self.bodies.append(body)
                    if len(parts) > 2:
                        send(self.reply_for("DOT", "250 2.0.0 Ok: queued"))
                    else:
                        send("250 2.0.0 chunk ok")
                elif verb == "STARTTLS":
                    r = self.reply_for("STARTTLS", "454 4.7.0 TLS not "
                                       "available")
                    send(r)
                    if r.startswith("220"):
                        # no TLS at all: the client's handshake fails
                        conn.sendall(b"this is not a TLS record\r\n")
                        return
                elif verb == "RSET":
                    send("250 2.0.0 Ok")
                elif verb == "QUIT":
                    send("221 2.0.0 Bye")
                    return
                else:
                    send("502 5.5.2 Error: command not recognized")
        except OSError:
            pass
        finally:
            conn.close()

    def stop(self):
        self.stopping = True
        self.sock.close()


@unittest.skipUnless(HAVE_DNSMASQ, "skipped: needs dnsmasq")
class SmtpTestBase(TernTestCase):
    def setUp(self):
        self.dns = None

    def start_dns(self, extra=""):
        self.dns = Dnsmasq(dns_conf(extra), probe="mx.b.example.org")
        self.addCleanup(self.dns.stop)

    def sender_instance(self, port, main=None, **kw):
        m = {"myhostname": "mail.a.example.org",
             "dns_forwarders": self.dns.forwarder, "dns_hosts_file": "",
             "known_tcp_ports": "smtp=%d" % port,
             "smtp_helo_name": "mail.a.example.org",
             "minimal_backoff_time": "1s", "maximal_backoff_time": "2s",
             "queue_run_delay": "1s"}
        m.update(main or {})
        inst = self.instance(main=m, **kw)
        inst.start()
        return inst

    def script(self, **kw):
        s = Script(**kw)
        s.start()
        self.addCleanup(s.stop)
        return s

    def submit(self, inst, rcpts, subject, body="hello\r\n",
               sender="demo@mail.a.example.org", headers=""):
        with smtplib.SMTP("127.0.0.1", inst.smtp_port, timeout=WAIT) as c:
            c.sendmail(sender, rcpts,
                       ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n%s\r\n%s"
                        % (sender, rcpts[0], subject, headers, body)).encode())

    def log_lines(self, inst, text):
        return [l for l in inst.log_text().splitlines() if text in l]

    def status_line(self, inst, rcpt, status, after=0):
        """smtp's status line for rcpt with status=STATUS, skipping its
        first `after` lines for rcpt."""
        def find():
            lines = [l for l in self.log_lines(inst, "to=<%s>" % rcpt)
                     if "tern/smtp" in l]
            for l in lines[after:]:
                if "status=" + status in l:
                    return l
            return None
        try:
            return wait_for(find, 120, 0.1, "%s %s" % (rcpt, status))
        except AssertionError:
            self.fail("no status=%s for %s; log:\n%s"
                      % (status, rcpt, inst.log_text()[-4000:]))


class SeedFlowTest(SmtpTestBase):
    def test_submission_mx_lookup_delivery_to_other_instance(self):
        self.start_dns()
        b = self.instance(main={"myhostname": "mx.b.example.org",
                                "mydestination": "b.example.org, $myhostname"},
                          users=("bob",))
        b.start()
        a = self.instance(
            main={"myhostname": "mail.a.example.org",
                  "dns_forwarders": self.dns.forwarder,
                  "dns_hosts_file": "",
                  "known_tcp_ports": "smtp=%d" % b.smtp_port,
                  "mynetworks": "192.0.2.0/24",
                  "smtpd_sasl_auth_enable": "yes"},
            tls=True)
        a.start()
        with open(os.path.join(a.dir, "demo.password")) as f:
            pw = f.read().strip()
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP("127.0.0.1", a.submission_port, timeout=WAIT) as c:
            c.starttls(context=ctx)
            c.login("demo", pw)
            c.sendmail("demo@mail.a.example.org", ["bob@b.example.org"],
                       b"From: demo@mail.a.example.org\r\nTo: bob@b.example.org\r\n"
                       b"Subject: seed flow\r\n\r\n.leading dot\r\nbody\r\n")
        msgs = b.wait_messages("bob", 1, timeout=120)
        self.assertIn(b"Subject: seed flow", msgs[0])
        self.assertIn(b"\n.leading dot\n", msgs[0])
        self.assertDeliverLog(a, "bob@b.example.org", "sent")
        line = self.log_lines(a, "to=<bob@b.example.org>")[-1]
        self.assertRegex(line, r"relay=mx\.b\.example\.org\[127\.0\.0\.1\]:%d, "
                         r"delay=[0-9.]+, delays=[0-9.]+/[0-9.]+/[0-9.]+/"
                         r"[0-9.]+, dsn=2\.0\.0, status=sent \(250 "
                         % b.smtp_port)
        self.assertIn("mx.b.example.org", self.dns.text())

    def assertDeliverLog(self, inst, rcpt, status):
        self.assertLogHas(inst, "to=<%s>" % rcpt, timeout=120)
        wait_for(lambda: any("status=" + status in l for l in
                             self.log_lines(inst, "to=<%s>" % rcpt)),
                 120, 0.1, "status=%s for %s" % (status, rcpt))


class ScriptedServerTest(SmtpTestBase):
    """smtp against a scripted server (Script above)."""

    def setUp(self):
        super().setUp()
        self.start_dns()

    def test_plain_delivery_with_esmtp_parameters(self):
        srv = self.script(ehlo=["PIPELINING", "SIZE 100000", "8BITMIME",
                                "DSN"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.mail("demo@mail.a.example.org", ["RET=HDRS", "ENVID=env+2Bid"])
            c.rcpt("x@b.example.org", ["NOTIFY=SUCCESS,FAILURE",
                                       "ORCPT=rfc822;orig@b.example.org"])
            c.data(b"Subject: params\r\n\r\n.dot line\r\n"
                   b"caf\xc3\xa9\r\n")
        line = self.status_line(a, "x@b.example.org", "sent")
        self.assertIn("relay=mx.b.example.org[127.0.0.1]:%d" % srv.port, line)
        self.assertIn("(250 2.0.0 Ok: queued as X1)", line)
        mail = [c for c in srv.commands if c.startswith("MAIL")][0]
        self.assertRegex(mail, r"^MAIL FROM:<demo@mail\.a\.example\.org> "
                         r"SIZE=\d+ BODY=8BITMIME RET=HDRS ENVID=env\+2Bid$")
        rcpt = [c for c in srv.commands if c.startswith("RCPT")][0]
        self.assertEqual(rcpt, "RCPT TO:<x@b.example.org> "
                         "NOTIFY=SUCCESS,FAILURE "
                         "ORCPT=rfc822;orig@b.example.org")
        ehlo = [c for c in srv.commands if c.startswith("EHLO")][0]
        self.assertEqual(ehlo, "EHLO mail.a.example.org")
        body = srv.bodies[0]
        self.assertIn(b"\r\n..dot line\r\n", body)
        self.assertNotIn(b"\n\n", body.replace(b"\r\n", b"X"))
        self.assertIn(b"caf\xc3\xa9\r\n", body)

    def test_4xx_then_success(self):
        srv = self.script(replies={"RCPT": ["450 4.2.0 <x@b.example.org>: "
                                            "Recipient address rejected: "
                                            "try later", "250 2.1.5 Ok"]})
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "soft then ok")
        d = self.status_line(a, "x@b.example.org", "deferred")
        self.assertIn("dsn=4.2.0", d)
        self.assertIn("(host mx.b.example.org[127.0.0.1] said: 450 4.2.0 "
                      "<x@b.example.org>: Recipient address rejected: try "
                      "later (in reply to RCPT TO command))", d)
        self.status_line(a, "x@b.example.org", "sent")
        self.assertEqual(len(srv.bodies), 1)

    def test_5xx_rcpt_bounces_one_other_delivered(self):
        srv = self.script(replies={"RCPT": [
            "550 5.1.1 <bad@b.example.org>: Recipient address rejected: "
            "User unknown", "250 2.1.5 Ok"]})
        a = self.sender_instance(srv.port)
        self.submit(a, ["bad@b.example.org", "good@b.example.org"], "mixed")
        b = self.status_line(a, "bad@b.example.org", "bounced")
        self.assertIn("dsn=5.1.1", b)
        self.assertIn("(host mx.b.example.org[127.0.0.1] said: 550 5.1.1 "
                      "<bad@b.example.org>: Recipient address rejected: User "
                      "unknown (in reply to RCPT TO command))", b)
        self.status_line(a, "good@b.example.org", "sent")
        # the sender gets the bounce
        self.assertLogHas(a, "sender non-delivery notification")

    def test_5xx_after_data_bounces(self):
        srv = self.script(replies={"DOT": ["554 5.7.1 spam"]})
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "rejected content")
        b = self.status_line(a, "x@b.example.org", "bounced")
        self.assertIn("said: 554 5.7.1 spam (in reply to end of DATA "
                      "command)", b)

    def test_connection_refused_then_retry(self):
        port = free_port()
        a = self.sender_instance(port)
        self.submit(a, ["x@b.example.org"], "refused first")
        d = self.status_line(a, "x@b.example.org", "deferred")
        self.assertIn("relay=none", d)
        self.assertIn("connect to mx.b.example.org[127.0.0.1]:%d: "
                      "Connection refused" % port, d)
        srv = self.script(port=port)
        self.status_line(a, "x@b.example.org", "sent")
        self.assertEqual(len(srv.bodies), 1)

    def test_dead_mx_then_live_one(self):
        srv = self.script()
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@dead.example.org"], "dead mx first")
        line = self.status_line(a, "x@dead.example.org", "sent")
        self.assertIn("relay=mx2.dead.example.org[127.0.0.1]", line)

    def test_5xx_greeting_skips_to_next_mx(self):
        bad = self.script(greeting="554 5.3.2 go away", addr="127.0.0.9")
        srv = self.script(port=bad.port)
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@dead.example.org"], "bad greeting")
        line = self.status_line(a, "x@dead.example.org", "sent")
        self.assertIn("relay=mx2.dead.example.org[127.0.0.1]", line)
        self.assertGreaterEqual(bad.connections, 1)

    def test_null_mx_bounces_at_once(self):
        a = self.sender_instance(free_port())
        self.submit(a, ["x@null.example.org"], "null mx")
        line = self.status_line(a, "x@null.example.org", "bounced")
        self.assertIn("dsn=5.1.10", line)
        self.assertIn("nullMX", line)

    def test_no_mx_uses_address_record(self):
        srv = self.script()
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@nomx.example.org"], "no mx")
        line = self.status_line(a, "x@nomx.example.org", "sent")
        self.assertIn("relay=nomx.example.org[127.0.0.1]", line)

    def test_helo_fallback_without_esmtp(self):
        srv = self.script(replies={"EHLO": ["502 5.5.2 no EHLO here"]})
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "helo only")
        self.status_line(a, "x@b.example.org", "sent")
        self.assertIn("HELO mail.a.example.org", srv.commands)
        mail = [c for c in srv.commands if c.startswith("MAIL")][0]
        self.assertEqual(mail, "MAIL FROM:<demo@mail.a.example.org>")

    def test_chunking_uses_bdat(self):
        srv = self.script(ehlo=["PIPELINING", "CHUNKING", "8BITMIME"])
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "bdat", body=".dot\r\nend\r\n")
        self.status_line(a, "x@b.example.org", "sent")
        self.assertTrue(any(c.startswith("BDAT") and c.endswith(" LAST")
                            for c in srv.commands), srv.commands)
        self.assertFalse(any(c == "DATA" for c in srv.commands))
        self.assertIn(b"\r\n.dot\r\nend\r\n", b"".join(srv.bodies))

    def test_connection_reused_for_next_message(self):
        srv = self.script()
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "first")
        self.status_line(a, "x@b.example.org", "sent")
        self.submit(a, ["y@b.example.org"], "second")
        self.status_line(a, "y@b.example.org", "sent")
        self.assertEqual(len(srv.bodies), 2)
        self.assertEqual(srv.connections, 1, srv.commands)
        self.assertIn("RSET", srv.commands)

    def test_mail_loop_back_to_myself_bounces(self):
        srv = self.script(ehlo=["PIPELINING"])
        srv.replies["EHLO"] = ["250 mail.a.example.org"]
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "loop")
        line = self.status_line(a, "x@b.example.org", "bounced")
        self.assertIn("dsn=5.4.6", line)
        self.assertIn("mail for mx.b.example.org[127.0.0.1] loops back to "
                      "myself", line)
        self.assertEqual(srv.bodies, [])

    def test_smtputf8_needed_but_not_offered_bounces(self):
        srv = self.script(ehlo=["8BITMIME"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.mail("d\u00e9mo@mail.a.example.org", ["SMTPUTF8"])
            c.rcpt("x@b.example.org")
            c.data("Subject: utf8\r\n\r\nbody\r\n".encode())
        line = self.status_line(a, "x@b.example.org", "bounced")
        self.assertIn("dsn=5.6.7", line)
        self.assertIn("SMTPUTF8 is required, but was not offered by host "
                      "mx.b.example.org[127.0.0.1]", line)

    def test_smtputf8_offered_is_used(self):
        srv = self.script(ehlo=["8BITMIME", "SMTPUTF8"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.mail("d\u00e9mo@mail.a.example.org", ["SMTPUTF8"])
            c.rcpt("x@b.example.org")
            c.data("Subject: utf8\r\n\r\nbody\r\n".encode())
        self.status_line(a, "x@b.example.org", "sent")
        mail = [c for c in srv.commands if c.startswith("MAIL")][0]
        self.assertTrue(mail.endswith(" SMTPUTF8"), mail)

    def test_8bit_without_8bitmime_is_converted_to_7bit(self):
        # RFC 6152 3: the client converts (quoted-printable) or bounces
        srv = self.script(ehlo=["PIPELINING"])
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "8bit",
                    body="caf\u00e9\r\n")
        self.status_line(a, "x@b.example.org", "sent")
        mail = [c for c in srv.commands if c.startswith("MAIL")][0]
        self.assertNotIn("BODY=", mail)
        body = srv.bodies[0]
        self.assertTrue(all(b < 0x80 for b in body), body)
        self.assertIn(b"Content-Transfer-Encoding: quoted-printable\r\n", body)
        self.assertIn(b"caf=C3=A9\r\n", body)

    def test_success_notice_relayed_to_server_without_dsn(self):
        # NOTIFY=SUCCESS, but the next hop cannot pass it on: the sender
        # is told the message was relayed (RFC 3461 5.2.2.2)
        srv = self.script(ehlo=["PIPELINING"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.sendmail("demo@mail.a.example.org", ["x@b.example.org"],
                       b"Subject: tell me\r\n\r\nx\r\n",
                       rcpt_options=["NOTIFY=SUCCESS"])
        self.status_line(a, "x@b.example.org", "sent")
        rcpt = [c for c in srv.commands if c.startswith("RCPT")][0]
        self.assertNotIn("NOTIFY", rcpt)
        notice = a.wait_messages("demo", 1)[0]
        self.assertIn(b"Action: relayed", notice)
        self.assertIn(b"Final-Recipient: rfc822; x@b.example.org", notice)

    def test_8bit_that_cannot_be_converted_bounces(self):
        srv = self.script(ehlo=["PIPELINING"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.sendmail("demo@mail.a.example.org", ["x@b.example.org"],
                       b"MIME-Version: 1.0\r\nContent-Transfer-Encoding: "
                       b"base64\r\n\r\n\xe9\xe9\r\n")
        line = self.status_line(a, "x@b.example.org", "bounced")
        self.assertIn("dsn=5.6.3", line)
        self.assertIn("cannot be converted to 7 bit", line)
        self.assertFalse([c for c in srv.commands if c.startswith("MAIL")])

    def test_bare_cr_never_sent(self):
        # smtpd keeps a bare CR as content; RFC 5321 forbids sending one,
        # and "<CR>.<CR>" could end the data early at a lax receiver
        srv = self.script(ehlo=["PIPELINING", "8BITMIME"])
        a = self.sender_instance(srv.port)
        with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=WAIT) as c:
            c.ehlo("client")
            c.sendmail("demo@mail.a.example.org", ["x@b.example.org"],
                       b"Subject: cr\r\n\r\none\rtwo\r\n\r.\rsmuggled\r\n")
        self.status_line(a, "x@b.example.org", "sent")
        body = srv.bodies[0]
        self.assertNotIn(b"\r", body.replace(b"\r\n", b""))
        self.assertIn(b"one two\r\n . smuggled\r\n", body)

    def test_size_limit_of_server_bounces(self):
        srv = self.script(ehlo=["SIZE 100"])
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "big", body="x" * 500 + "\r\n")
        line = self.status_line(a, "x@b.example.org", "bounced")
        self.assertIn("dsn=5.3.4", line)
        self.assertIn("exceeds size limit 100 of server", line)

    def test_may_handshake_failure_falls_back_to_plain_text(self):
        srv = self.script(ehlo=["PIPELINING", "STARTTLS"],
                          replies={"STARTTLS": ["220 2.0.0 Ready"]})
        a = self.sender_instance(srv.port,
                                 {"smtp_tls_security_level": "may"})
        self.submit(a, ["x@b.example.org"], "tls fallback")
        self.status_line(a, "x@b.example.org", "sent")
        self.assertEqual(srv.commands.count("STARTTLS"), 1, srv.commands)
        self.assertGreaterEqual(srv.connections, 2)
        self.assertEqual(len(srv.bodies), 1)

    def test_runs_unprivileged_and_chrooted(self):
        if os.geteuid() != 0:
            self.skipTest("skipped: needs root")
        import pwd
        srv = self.script()
        a = self.sender_instance(srv.port)
        self.submit(a, ["x@b.example.org"], "privs")
        self.status_line(a, "x@b.example.org", "sent")
        pids = wait_for(lambda: a.child_pids("smtp"), 30, 0.1, "smtp")
        tern = pwd.getpwnam("tern")
        for pid in pids:
            with open("/proc/%d/status" % pid) as f:
                st = f.read()
            uids = re.search(r"^Uid:\s+(.*)$", st, re.M).group(1).split()
            gids = re.search(r"^Gid:\s+(.*)$", st, re.M).group(1).split()
            self.assertEqual(set(map(int, uids)), {tern.pw_uid}, st)
            self.assertEqual(set(map(int, gids)), {tern.pw_gid}, st)
            self.assertEqual(os.readlink("/proc/%d/root" % pid),
                             os.path.realpath(a.spool))

    def test_address_preference_and_inet_protocols(self):
        v4 = self.script()
        v6 = self.script(port=v4.port, addr="::1")
        a = self.sender_instance(v4.port,
                                 {"smtp_address_preference": "ipv6"})
        self.submit(a, ["x@dual.example.org"], "prefers v6")
        line = self.status_line(a, "x@dual.example.org", "sent")
        self.assertIn("relay=mx.dual.example.org[::1]:%d" % v4.port, line)
        self.assertEqual((len(v6.bodies), len(v4.bodies)), (1, 0))
        a.stop()
        b = self.sender_instance(v4.port, {"smtp_address_preference": "ipv6",
                                           "inet_protocols": "ipv4"})
        self.submit(b, ["y@dual.example.org"], "v4 only")
        line = self.status_line(b, "y@dual.example.org", "sent")
        self.assertIn("relay=mx.dual.example.org[127.0.0.1]:%d" % v4.port,
                      line)
        self.assertEqual(len(v4.bodies), 1)

    def test_mx_address_limit(self):
        srv = self.script()
        a = self.sender_instance(srv.port, {"smtp_mx_address_limit": "1"})
        self.submit(a, ["x@dead.example.org"], "one address only")
        line = self.status_line(a, "x@dead.example.org", "deferred")
        self.assertIn("connect to mx1.dead.example.org[127.0.0.9]", line)
        self.assertEqual(srv.connections, 0)

    def test_silent_and_dripping_servers_time_out(self):
        for greeting in (None, "drip:220 "):
            with self.subTest(greeting=greeting):
                srv = self.script(greeting=greeting)
                a = self.sender_instance(srv.port,
                                         {"smtp_helo_timeout": "2s"})
                self.submit(a, ["x@b.example.org"], "slow")
                line = self.status_line(a, "x@b.example.org", "deferred")
                self.assertIn("conversation with mx.b.example.org"
                              "[127.0.0.1] timed out while receiving the "
                              "initial server greeting", line)
                a.stop()
                srv.stop()

    def test_hostile_replies_defer(self):
        for bad in ("250-" + "x" * 5000, "abc", "999 nonsense",
                    "250-ok\r\n251 changed"):
            with self.subTest(reply=bad[:20]):
                srv = self.script(replies={"MAIL": [bad]})
                a = self.sender_instance(srv.port)
                self.submit(a, ["x@b.example.org"], "hostile")
                line = self.status_line(a, "x@b.example.org", "deferred")
                self.assertIn("dsn=4.4.2", line)
                a.stop()


class TlsTest(SmtpTestBase):
    """STARTTLS levels against instance B (Tern, STARTTLS offered, a
    self-signed certificate for mx.b.example.org) and a scripted server
    without STARTTLS."""

    @classmethod
    def setUpClass(cls):
        cls.b = Instance(main={"myhostname": "mx.b.example.org",
                               "mydestination": "b.example.org, $myhostname"},
                         users=("bob",), tls=True)
        try:
            cls.b.start()
        except Exception:
            cls.b.cleanup()
            raise
        cls.cafile = os.path.join(cls.b.etc, "smtpd.pem")

    @classmethod
    def tearDownClass(cls):
        cls.b.cleanup()

    def setUp(self):
        super().setUp()
        self.start_dns()

    def test_may_uses_starttls(self):
        a = self.sender_instance(self.b.smtp_port,
                                 {"smtp_tls_security_level": "may"})
        self.submit(a, ["bob@b.example.org"], "tls may")
        self.status_line(a, "bob@b.example.org", "sent")
        self.assertRegex(a.log_text(), r"Untrusted TLS connection established "
                         r"to mx\.b\.example\.org\[127\.0\.0\.1\]:%d: "
                         r"TLSv1\.[23] with cipher \S+ \(\d+/\d+ bits\)"
                         % self.b.smtp_port)

    def test_may_with_cafile_logs_trusted(self):
        a = self.sender_instance(self.b.smtp_port,
                                 {"smtp_tls_security_level": "may",
                                  "smtp_tls_CAfile": self.cafile,
                                  "smtp_tls_servername": "hostname"})
        self.submit(a, ["bob@b.example.org"], "tls trusted")
        self.status_line(a, "bob@b.example.org", "sent")
        self.assertIn("Trusted TLS connection established to "
                      "mx.b.example.org[127.0.0.1]:%d" % self.b.smtp_port,
                      a.log_text())

    def test_verify_with_cafile(self):
        # mkinstance's certificate names localhost.localdomain
        a = self.sender_instance(self.b.smtp_port, {
            "smtp_tls_security_level": "verify",
            "smtp_tls_CAfile": self.cafile,
            "smtp_tls_servername": "hostname",
            "smtp_tls_policy_maps":
                "inline:{.example.org=verify match=localhost.localdomain}"})
        self.submit(a, ["bob@b.example.org"], "tls verify")
        self.status_line(a, "bob@b.example.org", "sent")
        self.assertIn("Verified TLS connection established to "
                      "mx.b.example.org[127.0.0.1]:%d" % self.b.smtp_port,
                      a.log_text())

    def test_secure_name_mismatch_defers(self):
        # secure matches the next hop (b.example.org and its subdomains):
        # mx.b.example.org is a subdomain, so ask for another name
        a = self.sender_instance(self.b.smtp_port, {
            "smtp_tls_security_level": "none",
            "smtp_tls_CAfile": self.cafile,
            "smtp_tls_policy_maps":
                "inline:{b.example.org=secure match=other.example.org}"})
        self.submit(a, ["bob@b.example.org"], "tls mismatch")
        line = self.status_line(a, "bob@b.example.org", "deferred")
        self.assertIn("dsn=4.7.5", line)
        self.assertIn("TLS handshake with mx.b.example.org[127.0.0.1] failed",
                      line)

    def test_encrypt_required_but_not_offered(self):
        srv = self.script()
        a = self.sender_instance(srv.port,
                                 {"smtp_tls_security_level": "encrypt"})
        self.submit(a, ["x@b.example.org"], "tls required")
        line = self.status_line(a, "x@b.example.org", "deferred")
        self.assertIn("dsn=4.7.4", line)
        self.assertIn("TLS is required, but was not offered by host "
                      "mx.b.example.org[127.0.0.1]", line)
        self.assertEqual(srv.bodies, [])

    def test_policy_map_requires_tls_for_one_domain(self):
        srv = self.script()
        a = self.sender_instance(srv.port, {
            "smtp_tls_policy_maps": "inline:{nomx.example.org=encrypt}"})
        self.submit(a, ["x@b.example.org"], "plain ok")
        self.status_line(a, "x@b.example.org", "sent")
        self.submit(a, ["x@nomx.example.org"], "tls needed")
        line = self.status_line(a, "x@nomx.example.org", "deferred")
        self.assertIn("TLS is required", line)


if __name__ == "__main__":
    unittest.main()
