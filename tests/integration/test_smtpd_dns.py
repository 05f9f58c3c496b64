"""smtpd's client host name: PTR lookup plus forward confirmation with
libunbound, never blocking the greeting or other sessions.

No test here reaches outside DNS: smtpd's resolvers (dns_forwarders) are
a dnsmasq of our own on a free loopback port (normal answers), a tiny
UDP responder in this file (hostile PTR answers dnsmasq would not
serve), and a UDP socket that reads and never answers (the timeout).
Clients connect from 127.0.0.2, 127.0.0.3, ... (any 127/8 address is
ours on Linux' loopback), one smtpd service per resolver (master.conf -o
dns_forwarders=...), dns_hosts_file empty so /etc/hosts plays no part.
Three more services (smtpd_client_restrictions =
reject_unknown_client_hostname, reject_unknown_reverse_client_hostname,
check_reverse_client_hostname_access) check the restrictions that read
the lookup's outcome.
"""
import smtplib
import socket
import ssl
import struct
import threading
import time
import unittest

from ternlab import (HAVE_DNSMASQ, Dnsmasq, Instance, TernTestCase, WAIT,
                     wait_for)

LOOKUP_TIMEOUT = 6          # smtpd_peername_lookup_timeout of the blackhole

# dnsmasq's zone: address -> PTR name, name -> addresses
DNSMASQ_CONF = """\
local=/in-addr.arpa/
local=/example.net/
ptr-record=2.0.0.127.in-addr.arpa,good.example.net
address=/good.example.net/127.0.0.2
ptr-record=3.0.0.127.in-addr.arpa,liar.example.net
address=/liar.example.net/127.0.0.99
ptr-record=12.0.0.127.in-addr.arpa,tls.example.net
address=/tls.example.net/127.0.0.12
ptr-record=9.0.0.127.in-addr.arpa,nolookup.example.net
address=/nolookup.example.net/127.0.0.9
"""

# the hostile responder's PTR answers, as raw labels: each name's A
# record (asked only if smtpd accepted the name) would confirm it
HOSTILE = {
    "6.0.0.127.in-addr.arpa": [b"evil\x1b[31m\rname", b"example", b"test"],
    "7.0.0.127.in-addr.arpa": [b"a" * 64, b"example", b"test"],
    "8.0.0.127.in-addr.arpa": [b"1", b"2", b"3", b"4"],
    "10.0.0.127.in-addr.arpa": [b"bad name", b"example", b"test"],
}
HOSTILE_ADDRS = ["127.0.0.6", "127.0.0.7", "127.0.0.8", "127.0.0.10"]


def parse_question(pkt):
    """(id, flags, qname text, qtype, question bytes) of a query."""
    qid, flags = struct.unpack("!HH", pkt[:4])
    pos, labels = 12, []
    while pkt[pos] != 0:
        n = pkt[pos]
        labels.append(pkt[pos + 1:pos + 1 + n].decode("latin-1"))
        pos += 1 + n
    qtype = struct.unpack("!H", pkt[pos + 1:pos + 3])[0]
    return qid, flags, ".".join(labels), qtype, pkt[12:pos + 5]


class HostileResponder(threading.Thread):
    """Answers PTR queries from HOSTILE with malformed names, A queries
    with every HOSTILE_ADDRS address, anything else with NXDOMAIN."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stopping = False
        self.asked = []

    def run(self):
        while not self.stopping:
            try:
                pkt, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            try:
                self.sock.sendto(self.answer(pkt), peer)
            except (OSError, IndexError, struct.error):
                pass

    def answer(self, pkt):
        qid, flags, qname, qtype, question = parse_question(pkt)
        self.asked.append((qname.lower(), qtype))
        rd = flags & 0x0100
        records = []
        if qtype == 12 and qname.lower() in HOSTILE:
            rdata = b"".join(bytes([len(l)]) + l
                             for l in HOSTILE[qname.lower()]) + b"\0"
            records.append((12, rdata))
        elif qtype == 1:
            for a in HOSTILE_ADDRS:
                records.append((1, socket.inet_aton(a)))
        rcode = 0 if records else 3
        out = struct.pack("!HHHHHH", qid, 0x8000 | 0x0400 | rd | 0x80 | rcode,
                          1, len(records), 0, 0) + question
        for rtype, rdata in records:
            out += b"\xc0\x0c" + struct.pack("!HHIH", rtype, 1, 60,
                                             len(rdata)) + rdata
        return out

    def stop(self):
        self.stopping = True
        self.join(5)
        self.sock.close()


@unittest.skipUnless(HAVE_DNSMASQ,
                     "dnsmasq not installed (apt-get install dnsmasq-base)")
class SmtpdClientName(TernTestCase):
    @classmethod
    def setUpClass(cls):
        cls.dnsmasq = None
        cls.hostile = HostileResponder()
        cls.hostile.start()
        cls.blackhole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        cls.blackhole.bind(("127.0.0.1", 0))
        cls.inst = None
        try:
            cls.start_dnsmasq()
            cls.start_instance()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def start_dnsmasq(cls):
        cls.dnsmasq = Dnsmasq(DNSMASQ_CONF, probe="good.example.net")

    @classmethod
    def dnsmasq_text(cls):
        return cls.dnsmasq.text()

    @classmethod
    def start_instance(cls):
        cls.hostile_port = free_port_tcp()
        cls.blackhole_port = free_port_tcp()
        cls.nolookup_port = free_port_tcp()
        cls.unknown_port = free_port_tcp()
        cls.unknown_reverse_port = free_port_tcp()
        cls.reverse_access_port = free_port_tcp()
        extra = (
            "127.0.0.1:%d inet n - n - - smtpd -o dns_forwarders=127.0.0.1@%d\n"
            "127.0.0.1:%d inet n - n - - smtpd -o dns_forwarders=127.0.0.1@%d"
            " -o smtpd_peername_lookup_timeout=%d\n"
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_peername_lookup=no\n"
            "127.0.0.1:%d inet n - n - - smtpd"
            " -o smtpd_client_restrictions=reject_unknown_client_hostname\n"
            "127.0.0.1:%d inet n - n - - smtpd -o smtpd_client_restrictions="
            "reject_unknown_reverse_client_hostname\n"
            "127.0.0.1:%d inet n - n - - smtpd -o { smtpd_client_restrictions"
            " = check_reverse_client_hostname_access"
            " inline:{example.net=REJECT no liars} }\n"
            % (cls.hostile_port, cls.hostile.port,
               cls.blackhole_port, cls.blackhole.getsockname()[1],
               LOOKUP_TIMEOUT, cls.nolookup_port, cls.unknown_port,
               cls.unknown_reverse_port, cls.reverse_access_port))
        cls.inst = Instance(main={
            "smtpd_peername_lookup": "yes",
            "dns_forwarders": cls.dnsmasq.forwarder,
            "dns_hosts_file": "",
        }, services_extra=extra, tls=True)
        cls.inst.start()

    @classmethod
    def tearDownClass(cls):
        if cls.inst is not None:
            cls.inst.cleanup()
        if cls.dnsmasq is not None:
            cls.dnsmasq.stop()
        cls.hostile.stop()
        cls.blackhole.close()

    # --- helpers ---------------------------------------------------------
    def mail_from(self, source, port=None, subject="dns test"):
        """One message to demo from source; returns the server's greeting."""
        with smtplib.SMTP("127.0.0.1", port or self.inst.smtp_port,
                          timeout=WAIT, source_address=(source, 0)) as c:
            c.ehlo("client.example")
            c.sendmail("sender@example.org", ["demo@localhost.localdomain"],
                       "Subject: %s\r\n\r\nhello\r\n" % subject)
        return subject

    def rcpt_from(self, source, port):
        """The RCPT reply (code, text) for a client at source."""
        with smtplib.SMTP("127.0.0.1", port, timeout=WAIT,
                          source_address=(source, 0)) as c:
            c.ehlo("client.example")
            c.mail("sender@example.org")
            code, text = c.rcpt("demo@localhost.localdomain")
            return code, text.decode("latin-1")

    def received_of(self, subject):
        def find():
            for m in self.inst.messages("demo"):
                if ("Subject: %s\n" % subject).encode() in m:
                    return m
            return None
        msg = wait_for(find, WAIT, 0.1, "message %r" % subject)
        return msg.split(b"\n\n", 1)[0].decode("latin-1")

    # --- the tests ---------------------------------------------------------
    def test_confirmed_name(self):
        subject = self.mail_from("127.0.0.2", subject="confirmed")
        self.assertLogHas(self.inst, "connect from good.example.net[127.0.0.2]")
        self.assertLogHas(self.inst, "client=good.example.net[127.0.0.2]")
        self.assertLogHas(self.inst,
                          "disconnect from good.example.net[127.0.0.2]")
        self.assertIn("(good.example.net [127.0.0.2])",
                      self.received_of(subject))

    def test_ptr_without_matching_address(self):
        subject = self.mail_from("127.0.0.3", subject="forged")
        self.assertLogHas(self.inst, "warning: hostname liar.example.net "
                          "does not resolve to address 127.0.0.3")
        self.assertLogHas(self.inst, "connect from unknown[127.0.0.3]")
        self.assertIn("(unknown [127.0.0.3])", self.received_of(subject))
        self.assertNotIn("liar.example.net[", self.inst.log_text())

    def test_no_ptr(self):
        subject = self.mail_from("127.0.0.4", subject="noptr")
        self.assertLogHas(self.inst, "connect from unknown[127.0.0.4]")
        self.assertLogHas(self.inst, "client=unknown[127.0.0.4]")
        self.assertIn("(unknown [127.0.0.4])", self.received_of(subject))
        self.assertIn("4.0.0.127.in-addr.arpa", self.dnsmasq_text())

    # --- restrictions on the outcome ---------------------------------------
    def test_reject_unknown_client_hostname(self):
        ok = (250, "2.1.5 Ok")
        # confirmed: passes, and a message goes through
        self.assertEqual(self.rcpt_from("127.0.0.2", self.unknown_port), ok)
        self.mail_from("127.0.0.2", port=self.unknown_port,
                       subject="confirmed and checked")
        self.assertIn("(good.example.net [127.0.0.2])",
                      self.received_of("confirmed and checked"))
        # no PTR, and a PTR name without the client's address: both fail
        for addr in ("127.0.0.4", "127.0.0.3"):
            with self.subTest(addr=addr):
                self.assertEqual(
                    self.rcpt_from(addr, self.unknown_port),
                    (450, "4.7.25 Client host rejected: cannot find your "
                          "hostname, [%s]" % addr))
                self.assertLogHas(
                    self.inst, "NOQUEUE: reject: RCPT from unknown[%s]: 450 "
                    "4.7.25 Client host rejected: cannot find your hostname, "
                    "[%s]; from=<sender@example.org> "
                    "to=<demo@localhost.localdomain> proto=ESMTP "
                    "helo=<client.example>" % (addr, addr))

    def test_reject_unknown_reverse_client_hostname(self):
        ok = (250, "2.1.5 Ok")
        self.assertEqual(self.rcpt_from("127.0.0.2",
                                        self.unknown_reverse_port), ok)
        # a PTR name is enough, confirmed or not
        self.assertEqual(self.rcpt_from("127.0.0.3",
                                        self.unknown_reverse_port), ok)
        self.assertEqual(
            self.rcpt_from("127.0.0.4", self.unknown_reverse_port),
            (450, "4.7.25 Client host rejected: cannot find your reverse "
                  "hostname, [127.0.0.4]"))

    def test_check_reverse_client_hostname_access(self):
        # the unconfirmed PTR name is looked up (parent domain here)
        self.assertEqual(
            self.rcpt_from("127.0.0.3", self.reverse_access_port),
            (554, "5.7.1 <unknown[127.0.0.3]>: Client host rejected: "
                  "no liars"))
        self.assertEqual(self.rcpt_from("127.0.0.4",
                                        self.reverse_access_port),
                         (250, "2.1.5 Ok"))

    def test_hostile_ptr(self):
        for addr in HOSTILE_ADDRS:
            with self.subTest(addr=addr):
                self.mail_from(addr, port=self.hostile_port,
                               subject="hostile " + addr)
                self.assertLogHas(self.inst, "connect from unknown[%s]" % addr)
                self.assertLogHas(self.inst, "client=unknown[%s]" % addr)
                self.assertIn("(unknown [%s])" % addr,
                              self.received_of("hostile " + addr))
        # the PTR queries reached the responder, the names never made it
        # to a forward lookup, and nothing of them reached the log
        asked = [q for q, t in self.hostile.asked if t == 12]
        for rev in HOSTILE:
            self.assertIn(rev, asked)
        self.assertEqual([q for q, t in self.hostile.asked if t in (1, 28)], [])
        log = self.inst.log_text()
        self.assertNotIn("\x1b", log)
        self.assertNotIn("evil", log)
        self.assertNotIn("bad name", log)
        self.assertNotIn("1.2.3.4[", log)
        self.assertLogHas(self.inst, "warning: 127.0.0.6: refused the PTR answer")

    def test_lookup_off(self):
        subject = self.mail_from("127.0.0.9", port=self.nolookup_port,
                                 subject="lookup off")
        self.assertLogHas(self.inst, "connect from unknown[127.0.0.9]")
        self.assertIn("(unknown [127.0.0.9])", self.received_of(subject))
        self.assertNotIn("9.0.0.127.in-addr.arpa", self.dnsmasq_text())

    def test_resolver_never_answers(self):
        """The greeting comes before the lookup ends, another session of
        the same smtpd process is served meanwhile, and after the
        timeout the waiting client is unknown and its commands run."""
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        slow.settimeout(WAIT)
        slow.bind(("127.0.0.5", 0))
        start = time.monotonic()
        slow.connect(("127.0.0.1", self.blackhole_port))
        buf = b""
        while b"\r\n" not in buf:
            chunk = slow.recv(4096)
            self.assertTrue(chunk, "connection closed before the greeting")
            buf += chunk
        self.assertTrue(buf.startswith(b"220 "), buf)
        # "connect from" is written only when the lookup has ended, which
        # is not before LOOKUP_TIMEOUT: what the log shows before then
        # was written while the lookup ran
        text = self.inst.log_text()
        if time.monotonic() - start < LOOKUP_TIMEOUT:
            self.assertNotIn("connect from unknown[127.0.0.5]", text)
        slow.sendall(b"EHLO slow.example\r\n")

        # 127.0.0.1 is localhost without asking the resolvers: this
        # session completes while the first one waits
        with smtplib.SMTP("127.0.0.1", self.blackhole_port, timeout=WAIT) as c:
            c.ehlo("fast.example")
            self.assertEqual(c.noop()[0], 250)
        self.assertLogHas(self.inst, "disconnect from localhost[127.0.0.1]")
        text = self.inst.log_text()
        slow.setblocking(False)
        try:
            early = slow.recv(4096)
        except BlockingIOError:
            early = b""
        slow.settimeout(WAIT)
        if time.monotonic() - start < LOOKUP_TIMEOUT:
            self.assertNotIn("connect from unknown[127.0.0.5]", text)
            self.assertEqual(early, b"", "EHLO answered before the lookup ended")
        buf += early

        while b"\r\n250 " not in buf and not buf.startswith(b"250 "):
            chunk = slow.recv(4096)
            self.assertTrue(chunk, "closed before the EHLO reply: %r" % buf)
            buf += chunk
        self.assertGreaterEqual(time.monotonic() - start, LOOKUP_TIMEOUT - 0.5)
        slow.sendall(b"QUIT\r\n")
        slow.close()
        self.assertLogHas(self.inst, "connect from unknown[127.0.0.5]")
        self.assertLogHas(self.inst, "disconnect from unknown[127.0.0.5] ehlo=1")
        log = self.inst.log_text()
        pids = set()
        for line in log.splitlines():
            # (other lines from 127.0.0.1 come from the start-up probe)
            if ("]: connect from unknown[127.0.0.5]" in line
                    or "disconnect from localhost[127.0.0.1] ehlo=1 noop=1"
                    in line):
                pids.add(line.split("smtpd[", 1)[1].split("]", 1)[0])
        self.assertEqual(len(pids), 1, "not one smtpd process: %s" % pids)

    def test_half_close_while_waiting(self):
        """A client that sends its commands and shuts down its sending
        side while the lookup runs still gets them answered."""
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.settimeout(WAIT)
        c.bind(("127.0.0.11", 0))
        c.connect(("127.0.0.1", self.blackhole_port))
        buf = b""
        while b"\r\n" not in buf:
            chunk = c.recv(4096)
            self.assertTrue(chunk, "connection closed before the greeting")
            buf += chunk
        c.sendall(b"EHLO half.example\r\nQUIT\r\n")
        c.shutdown(socket.SHUT_WR)
        while True:
            chunk = c.recv(4096)
            if not chunk:
                break
            buf += chunk
        c.close()
        self.assertIn(b"\r\n250 ", buf)
        self.assertIn(b"\r\n221 ", buf)
        self.assertLogHas(self.inst, "disconnect from unknown[127.0.0.11] "
                          "ehlo=1 quit=1 commands=2")

    def test_wrapper_mode(self):
        """Implicit TLS: the handshake runs while the lookup does, and the
        commands after it get the name."""
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        with smtplib.SMTP_SSL("127.0.0.1", self.inst.smtps_port, timeout=WAIT,
                              source_address=("127.0.0.12", 0),
                              context=ctx) as c:
            self.assertEqual(c.ehlo("tls.example")[0], 250)
            self.assertEqual(c.noop()[0], 250)
        self.assertLogHas(self.inst, "connect from tls.example.net[127.0.0.12]")
        self.assertLogHas(self.inst, "disconnect from tls.example.net[127.0.0.12] "
                          "ehlo=1 noop=1 quit=1 commands=3")


def free_port_tcp():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


if __name__ == "__main__":
    unittest.main()
