"""qmgr routing and scheduling end to end, with tests/daemons/agentd in
place of the smtp and relay agents (and any other transport a test
names): which transport and nexthop each recipient gets (default,
relay_domains, relayhost, sender_dependent_relayhost_maps,
transport_maps), recipients grouped per request, per-destination
concurrency, fairness between destinations, dead-site back-off, and a
transport without a socket.

agentd appends "<transport> <nexthop> <rcpt>,<rcpt>..." per request to a
record file and answers by local part (defer*, bounce*, dead*, stall*,
else delivered).
"""
import os
import re
import shutil
import subprocess
import tempfile

from ternlab import BUILD, FAST_RETRY, TernTestCase, wait_for


def send(inst, rcpts, subject="test", sender="sender@example.org"):
    with inst.smtp() as s:
        s.sendmail(sender, rcpts,
                   ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


class AgentCase(TernTestCase):

    def agent_instance(self, main, transports=("smtp", "relay")):
        """An instance whose transports run agentd; returns (inst, record)."""
        libexec = tempfile.mkdtemp(prefix="tern-libexec-")
        self.addCleanup(shutil.rmtree, libexec, True)
        for name in os.listdir(os.path.join(BUILD, "libexec")):
            os.symlink(os.path.join(BUILD, "libexec", name),
                       os.path.join(libexec, name))
        os.symlink(os.path.join(BUILD, "tests", "daemons", "agentd"),
                   os.path.join(libexec, "agentd"))
        record = os.path.join(libexec, "requests")
        inst = self.instance(main=dict(FAST_RETRY, daemon_directory=libexec,
                                       **main))
        conf = os.path.join(inst.etc, "master.conf")
        with open(conf) as f:
            text = f.read()
        for t in transports:    # replace a real agent's line, if any
            text = re.sub(r"^%s\s+unix\s.*\n" % re.escape(t), "", text,
                          flags=re.M)
            text += "%s unix - n n - - agentd %s\n" % (t, record)
        with open(conf, "w") as f:
            f.write(text)
        return inst.start(), record

    @staticmethod
    def requests(record):
        """[(transport, nexthop, [rcpts])] in the order agentd saw them."""
        try:
            with open(record) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            t, nh, rcpts = line.split(" ", 2)
            out.append((t, nh, rcpts.split(",")))
        return out

    def wait_requests(self, record, pred, what):
        wait_for(lambda: pred(self.requests(record)), 60, what=what)
        return self.requests(record)

    def request_for(self, record, rcpt):
        """The (transport, nexthop, rcpts) of the request that held rcpt."""
        def found():
            return [r for r in self.requests(record) if rcpt in r[2]]
        wait_for(found, 60, what="a request for %s" % rcpt)
        return found()[0]


class Routing(AgentCase):

    def test_default_transport_groups_recipients_per_nexthop(self):
        inst, record = self.agent_instance({})
        send(inst, ["a@one.example", "b@one.example", "c@two.example",
                    "demo@localhost"], "mixed")
        self.assertEqual(self.request_for(record, "a@one.example"),
                         ("smtp", "one.example",
                          ["a@one.example", "b@one.example"]))
        self.assertEqual(self.request_for(record, "c@two.example"),
                         ("smtp", "two.example", ["c@two.example"]))
        inst.wait_messages("demo", 1)
        inst.wait_queue_empty(60)
        self.assertLogHas(inst, "sent=4, bounced=0, deferred=0")
        # local mail never reaches agentd
        self.assertFalse(any("demo@localhost" in r[2]
                             for r in self.requests(record)))

    def test_relay_domains_relayhost_and_sender_dependent(self):
        inst, record = self.agent_instance({
            "relayhost": "[smart.example]:2525",
            "relay_domains": "relayed.example",
            "sender_dependent_relayhost_maps":
                "inline:{@vip.example=[vip-relay.example]}",
        })
        send(inst, ["x@far.example"])
        send(inst, ["y@sub.relayed.example"])
        send(inst, ["z@far.example"], sender="boss+tag@vip.example")
        self.assertEqual(self.request_for(record, "x@far.example")[:2],
                         ("smtp", "[smart.example]:2525"))
        self.assertEqual(self.request_for(record, "y@sub.relayed.example")[:2],
                         ("relay", "[smart.example]:2525"))
        self.assertEqual(self.request_for(record, "z@far.example")[:2],
                         ("smtp", "[vip-relay.example]"))
        inst.wait_queue_empty(60)

    def test_transport_maps(self):
        inst, record = self.agent_instance({
            "relayhost": "smart.example",
            "transport_maps": "inline:{special.example=slow:[hop.example]:26, "
                              ".sub.example=:[subhop.example], "
                              "one@mixed.example=relay:, "
                              "localhost=smtp:[inner.example]}",
        }, transports=("smtp", "relay", "slow"))
        send(inst, ["a@special.example", "b@x.sub.example", "c@sub.example",
                    "one+ext@mixed.example", "two@mixed.example",
                    "demo@localhost"])
        self.assertEqual(self.request_for(record, "a@special.example")[:2],
                         ("slow", "[hop.example]:26"))
        self.assertEqual(self.request_for(record, "b@x.sub.example")[:2],
                         ("smtp", "[subhop.example]"))
        # ".sub.example" covers subdomains only: the domain itself
        # goes the default way, to the relayhost
        self.assertEqual(self.request_for(record, "c@sub.example")[:2],
                         ("smtp", "smart.example"))
        # the address with its extension stripped; empty nexthop keeps
        # the default one
        self.assertEqual(self.request_for(record, "one+ext@mixed.example")[:2],
                         ("relay", "smart.example"))
        self.assertEqual(self.request_for(record, "two@mixed.example")[:2],
                         ("smtp", "smart.example"))
        # transport_maps overrides local delivery too
        self.assertEqual(self.request_for(record, "demo@localhost")[:2],
                         ("smtp", "[inner.example]"))
        inst.wait_queue_empty(60)
        self.assertEqual(inst.messages("demo"), [])

    def test_transport_without_socket_defers(self):
        inst, record = self.agent_instance({
            "transport_maps": "inline:{ghost.example=ghost:}",
        })
        send(inst, ["who@ghost.example", "ok@fine.example"])
        self.request_for(record, "ok@fine.example")
        self.assertLogHas(inst, "to=<who@ghost.example>, relay=none")
        self.assertLogHas(inst, "dsn=4.3.0, status=deferred (mail transport "
                                "unavailable)")
        wait_for(lambda: len(inst.queue_files("deferred")) == 1, 30,
                 what="the message in deferred/")
        self.assertNotIn("bounced", inst.log_text())

    def test_table_lookup_error_defers(self):
        # a table that does not exist (yet) is a temporary failure
        inst, record = self.agent_instance({
            "transport_maps": "lmdb:/nonexistent/transport",
        })
        send(inst, ["who@any.example"])
        self.assertLogHas(inst, "to=<who@any.example>, relay=none")
        self.assertLogHas(inst, "dsn=4.3.0, status=deferred (transport_maps "
                                "lookup failure)")
        self.assertEqual(self.requests(record), [])
        self.assertNotIn("bounced", inst.log_text())


class Scheduling(AgentCase):

    def test_recipient_limit_splits_requests(self):
        inst, record = self.agent_instance({
            "smtp_destination_recipient_limit": "2"})
        rcpts = ["r%d@one.example" % n for n in range(5)]
        send(inst, rcpts)
        reqs = self.wait_requests(
            record, lambda r: sum(len(x[2]) for x in r) >= 5,
            "five recipients in requests")
        self.assertEqual(sorted(len(x[2]) for x in reqs), [1, 2, 2])
        self.assertEqual(sorted(sum((x[2] for x in reqs), [])), rcpts)
        inst.wait_queue_empty(60)
        self.assertLogHas(inst, "sent=5, bounced=0, deferred=0")

    def test_per_recipient_outcomes_in_one_request(self):
        inst, record = self.agent_instance({})
        send(inst, ["bounce1@one.example", "defer1@one.example",
                    "ok1@one.example"])
        self.assertEqual(len(self.request_for(record, "ok1@one.example")[2]),
                         3)
        wait_for(lambda: len(inst.queue_files("deferred")) == 1, 30,
                 what="the message in deferred/ for defer1")
        # only the deferred recipient is tried again
        wait_for(lambda: sum(1 for r in self.requests(record)
                             if "defer1@one.example" in r[2]) >= 2, 30,
                 what="a retry of defer1")
        for r in self.requests(record)[1:]:
            self.assertNotIn("ok1@one.example", r[2])
            self.assertNotIn("bounce1@one.example", r[2])

    def test_concurrency_limit_and_fairness(self):
        inst, record = self.agent_instance({
            "smtp_destination_concurrency_limit": "2",
            "queue_run_delay": "3600s"})
        for n in range(4):
            send(inst, ["stall%d@slow.example" % n], "stall %d" % n)
        self.wait_requests(record, lambda r: len(r) >= 2,
                           "two stalled requests")
        # the stalled destination holds its two slots; another
        # destination of the same transport is not held up
        send(inst, ["fast@quick.example"], "fast")
        self.request_for(record, "fast@quick.example")
        self.assertLogHas(inst, "sent=1, bounced=0, deferred=0")
        slow = [r for r in self.requests(record) if r[1] == "slow.example"]
        self.assertEqual(len(slow), 2, slow)

    def test_dead_destination_defers_its_mail_at_once(self):
        inst, record = self.agent_instance({
            "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s",
            "queue_run_delay": "3600s"})
        send(inst, ["dead@down.example"], "first")
        self.request_for(record, "dead@down.example")
        self.assertLogHas(inst, "smtp/down.example: destination dead")
        send(inst, ["r1@down.example", "r2@down.example", "up@up.example"],
             "second")
        for rcpt in ("r1@down.example", "r2@down.example"):
            self.assertLogHas(
                inst, "to=<%s>, relay=none" % rcpt)
        self.assertLogHas(inst, "status=deferred (delivery temporarily "
                                "suspended: agentd: connect to dead.example: "
                                "refused)")
        self.request_for(record, "up@up.example")
        # no attempt for the dead destination's other mail
        down = [r for r in self.requests(record) if r[1] == "down.example"]
        self.assertEqual(len(down), 1, down)


    def test_flush_revives_a_dead_destination(self):
        inst, record = self.agent_instance({
            "minimal_backoff_time": "3600s", "maximal_backoff_time": "3600s",
            "queue_run_delay": "3600s"})
        send(inst, ["dead@down.example"], "first")
        self.request_for(record, "dead@down.example")
        self.assertLogHas(inst, "smtp/down.example: destination dead")
        send(inst, ["r1@down.example"], "second")
        self.assertLogHas(inst, "to=<r1@down.example>, relay=none")
        # a flush ends the back-off: both messages get an attempt now
        r = subprocess.run([os.path.join(BUILD, "sbin", "ternqueue"), "-c",
                            inst.etc, "-f"], capture_output=True, timeout=60)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.request_for(record, "r1@down.example")
        wait_for(lambda: len([q for q in self.requests(record)
                              if "dead@down.example" in q[2]]) >= 2, 60,
                 what="a second attempt for dead@down.example")


class CrashSafety(AgentCase):

    def test_kill9_qmgr_with_multi_recipient_requests(self):
        import signal
        inst, record = self.agent_instance({
            "smtp_destination_recipient_limit": "2"})
        expected = []
        for batch in range(3):
            for n in range(20):
                k = batch * 20 + n
                rcpts = ["m%da@one.example" % k, "m%db@one.example" % k,
                         "m%dc@two.example" % k, "demo@localhost"]
                expected += rcpts[:3]
                send(inst, rcpts, "crash %02d" % k)
            for p in wait_for(lambda: inst.child_pids("qmgr"), 30,
                              what="a running qmgr"):
                os.kill(p, signal.SIGKILL)
        # nothing lost: every remote recipient reached its agent (a
        # second time at worst), every local copy arrived once
        def all_seen():
            seen = set(sum((r[2] for r in self.requests(record)), []))
            return seen.issuperset(expected)
        wait_for(all_seen, 240, what="every recipient at the agent")
        self.assertDeliveredOnce(inst, ["crash %02d" % k for k in range(60)],
                                 timeout=240)
        inst.wait_queue_empty(120)
        self.assertIn("killed by signal 9", inst.log_text())
        for t, nh, rcpts in self.requests(record):
            self.assertLessEqual(len(rcpts), 2)
            self.assertEqual(t, "smtp")
