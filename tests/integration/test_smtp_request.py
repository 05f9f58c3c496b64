"""test_smtp_request - private/smtp played by hand, as qmgr (or anyone
who can reach the socket) would: multi-recipient requests with the next
hop forms "[address]:port" and "domain:port", the per-recipient replies,
the queue-file marks, dest_status=dead, and requests that smtp must
refuse because the queue file does not back them (symbolic links, hard
links, recipients that are not pending or not the named address).

No qmgr runs: the tests plant queue files in active/ themselves (owned
by the spool owner), as test_security.py does for local.
"""
import os
import pwd
import unittest

from ternlab import (HAVE_DNSMASQ, Dnsmasq, TernTestCase, agent_request,
                     free_port, wait_for)
from test_security import make_qid, queue_file
from test_smtp import Script, dns_conf


class SmtpRequests(TernTestCase):
    def setUp(self):
        self.dns = None
        main = {"smtp_helo_name": "client.example.org"}
        if HAVE_DNSMASQ:
            self.dns = Dnsmasq(dns_conf(), probe="mx.b.example.org")
            self.addCleanup(self.dns.stop)
            main.update(dns_forwarders=self.dns.forwarder, dns_hosts_file="")
        self.inst = self.instance(main=main)
        self.inst.edit_master_conf(
            "qmgr unix n - %s 300 1 qmgr\n" % self.inst.jail, "")
        self.inst.start()
        self.active = os.path.join(self.inst.spool, "active")
        if os.geteuid() == 0:
            t = pwd.getpwnam("tern")
            self.owner = (t.pw_uid, t.pw_gid)
        else:
            self.owner = (os.getuid(), os.getgid())
        self.srv = Script()
        self.srv.start()
        self.addCleanup(self.srv.stop)

    def plant(self, rcpts, content=b"Subject: by hand\n\nbody\n"):
        data, offs, _ = queue_file("a@example.org", rcpts, content)
        qid = make_qid()
        path = os.path.join(self.active, qid)
        with open(path, "wb") as f:
            f.write(data)
        os.chown(path, *self.owner)
        os.chmod(path, 0o600)
        return qid, path, offs

    def request(self, qid, rcpts, nexthop):
        attrs = {"request": "deliver", "queue_name": "active",
                 "queue_id": qid, "transport": "smtp", "nexthop": nexthop,
                 "rcpt_count": len(rcpts)}
        for k, (addr, off) in enumerate(rcpts):
            attrs["recipient_%d" % k] = addr
            attrs["rcpt_offset_%d" % k] = off
        return agent_request(os.path.join(self.inst.spool, "private", "smtp"),
                             attrs, 120)

    def record_types(self, path, offs):
        with open(path, "rb") as f:
            data = f.read()
        return [chr(data[o]) for o in offs]

    def test_three_recipients_one_transaction(self):
        self.srv.replies["RCPT"] = ["250 ok", "550 5.1.1 no such user",
                                    "250 ok"]
        rc = [(b"R", "a@x.example"), (b"R", "b@x.example"),
              (b"R", "c@x.example")]
        qid, path, offs = self.plant(rc)
        reply = self.request(qid, [(a, o) for (_, a), o in zip(rc, offs)],
                             "[127.0.0.1]:%d" % self.srv.port)
        self.assertEqual([reply.get("status_%d" % k) for k in range(3)],
                         ["0", "5", "0"], reply)
        self.assertEqual(reply["dsn_1"], "5.1.1")
        self.assertIn("said: 550 5.1.1 no such user (in reply to RCPT TO "
                      "command)", reply["reason_1"])
        self.assertNotIn("dest_status", reply)
        self.assertEqual(self.record_types(path, offs), ["D", "B", "D"])
        self.assertEqual(len(self.srv.bodies), 1)
        self.assertEqual(sum(c.startswith("MAIL") for c in
                             self.srv.commands), 1)
        self.assertIn("EHLO client.example.org", self.srv.commands)
        self.assertIn(b"Subject: by hand\r\n\r\nbody\r\n", self.srv.bodies[0])
        log = self.inst.log_text()
        self.assertIn("%s: to=<a@x.example>, relay=127.0.0.1[127.0.0.1]:%d"
                      % (qid, self.srv.port), log)

    def test_dead_destination(self):
        port = free_port()
        rc = [(b"R", "a@x.example"), (b"R", "b@x.example")]
        qid, path, offs = self.plant(rc)
        reply = self.request(qid, [(a, o) for (_, a), o in zip(rc, offs)],
                             "[127.0.0.1]:%d" % port)
        self.assertEqual(reply.get("dest_status"), "dead", reply)
        for k in range(2):
            self.assertEqual(reply["status_%d" % k], "4")
            self.assertIn("connect to 127.0.0.1[127.0.0.1]:%d: Connection "
                          "refused" % port, reply["reason_%d" % k])
        self.assertEqual(self.record_types(path, offs), ["R", "R"])

    @unittest.skipUnless(HAVE_DNSMASQ, "skipped: needs dnsmasq")
    def test_domain_nexthop_with_port(self):
        rc = [(b"R", "a@elsewhere.example")]
        qid, path, offs = self.plant(rc)
        reply = self.request(qid, [("a@elsewhere.example", offs[0])],
                             "b.example.org:%d" % self.srv.port)
        self.assertEqual(reply.get("status_0"), "0", reply)
        self.assertIn("relay=mx.b.example.org[127.0.0.1]:%d" % self.srv.port,
                      self.inst.log_text())

    def test_refused_requests(self):
        rc = [(b"R", "a@x.example"), (b"D", "done@x.example")]
        qid, path, offs = self.plant(rc)
        hop = "[127.0.0.1]:%d" % self.srv.port
        # not the address of the record
        r = self.request(qid, [("other@x.example", offs[0])], hop)
        self.assertEqual(r["status_0"], "4")
        self.assertIn("not the one requested", r["reason_0"])
        # a record that is done already
        r = self.request(qid, [("done@x.example", offs[1])], hop)
        self.assertIn("not pending", r["reason_0"])
        # an offset that is no record
        r = self.request(qid, [("a@x.example", offs[0] + 1)], hop)
        self.assertIn("no recipient record", r["reason_0"])
        # the same record twice: refused by the codec, nothing sent
        r = self.request(qid, [("a@x.example", offs[0]),
                               ("a@x.example", offs[0])], hop)
        self.assertEqual(r["status_0"], "4", r)
        self.assertIn("malformed delivery request", r["reason_0"])
        self.assertEqual(self.srv.bodies, [])
        # a symbolic link in active/
        qid2, path2, offs2 = self.plant([(b"R", "a@x.example")])
        link = make_qid()
        os.symlink(path2, os.path.join(self.active, link))
        r = self.request(link, [("a@x.example", offs2[0])], hop)
        self.assertIn("cannot open queue file", r["reason_0"])
        # a hard link
        hard = make_qid()
        os.link(path2, os.path.join(self.active, hard))
        r = self.request(hard, [("a@x.example", offs2[0])], hop)
        self.assertIn("with one link", r["reason_0"])
        os.unlink(os.path.join(self.active, hard))
        # a bad queue ID never names a path
        r = self.request("../../etc/passwd", [("a@x.example", 1)], hop)
        self.assertEqual(r["status_0"], "4")
        self.assertIn("malformed delivery request", r["reason_0"])
        self.assertEqual(self.srv.bodies, [])
        self.assertEqual(self.record_types(path2, offs2), ["R"])


if __name__ == "__main__":
    unittest.main()
