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
            "address=/nomx.example.org/127.0.0.1\n" + extra)


class Script(threading.Thread):
    """A scripted SMTP server on 127.0.0.1:port. replies: {VERB: [reply,
    ...]} (each connection/transaction takes the next one; the last
    repeats). It records every command and message body."""

    def __init__(self, port=0, greeting="220 sink ESMTP", ehlo=None,
                 replies=None, addr="127.0.0.1"):
        super().__init__(daemon=True)
        self.sock = socket.socket()
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
        text = open(msgs[0], "rb").read() if isinstance(msgs[0], str) else b""
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


if __name__ == "__main__":
    unittest.main()
