"""smtpd access restrictions (smtpd_*_restrictions), one test per
restriction and per reply code, against one instance with several smtpd
services: the main one (port smtp) carries HELO/sender/recipient/DATA/
end-of-data restrictions in main.conf, the others (master.conf -o) a
client restriction or relay setting each.

The client (127.0.0.1) is outside mynetworks on every service but
"trusted". Tables are inline: in main.conf, and lmdb: built by ternmap.
"""
import os
import socket
import unittest

from ternlab import Instance, TernTestCase, SmtpClient, free_port, \
    ternmap, wait_for

SENDER_ACCESS = """\
rejectme@lmdb.example   REJECT no spam here
busy@lmdb.example       450 4.2.1 Mailbox busy
custom@lmdb.example     553 5.7.0 custom text
ok@lmdb.example         OK
hold@lmdb.example       HOLD held for review
discard@lmdb.example    DISCARD
warn@lmdb.example       WARN watch this one
dunno@lmdb.example      DUNNO
lmdb.example            REJECT whole domain
defer.example           DEFER try later
"""

RELAY_TABLE = "lmdbrelay.example x\n"

MAIN = {
    "mynetworks": "192.0.2.0/24",
    "smtpd_error_sleep_time": "0",
    "smtpd_hard_error_limit": "100",
    "smtpd_helo_restrictions":
        "check_helo_access inline:{bad.helo.test=REJECT fake helo}, "
        "reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
    "smtpd_recipient_restrictions":
        "check_recipient_access "
        "inline:{blocked@localhost=REJECT, "
        "nomail@localhost=550 5.1.1 no mail for you}",
    "smtpd_data_restrictions":
        "check_sender_access inline:{datareject@example.org=REJECT "
        "no data from you}",
    "smtpd_end_of_data_restrictions":
        "check_sender_access inline:{eodreject@example.org=REJECT 5.7.9 "
        "content refused, eodhold@example.org=HOLD}",
    "smtpd_sender_login_maps": "inline:{owned@example.org=demo}",
}

# the rest needs the instance's directory: (name, -o settings)
SERVICES = {
    "client": "-o { smtpd_client_restrictions = check_client_access "
              "inline:{127.0.0=REJECT go away} }",
    "unknown": "-o smtpd_client_restrictions="
               "reject_unknown_reverse_client_hostname",
    "trusted": "-o mynetworks=127.0.0.0/8",
    "deferrelay": "-o { smtpd_relay_restrictions = permit_mynetworks, "
                  "defer_unauth_destination }",
    "warn": "-o { smtpd_client_restrictions = warn_if_reject, reject }",
    "dip": "-o { smtpd_client_restrictions = check_client_access "
           "inline:{127.0.0.1=DEFER_IF_PERMIT slow down} }",
    "nounlisted": "-o smtpd_reject_unlisted_recipient=no",
    "nonfqdn": "-o smtpd_recipient_restrictions=reject_non_fqdn_recipient",
    "datareject": "-o smtpd_data_restrictions=reject",
    "defer": "-o smtpd_client_restrictions=defer",
    "permit": "-o { smtpd_client_restrictions = permit, reject }",
    "authdest": "-o { smtpd_recipient_restrictions = "
                "permit_auth_destination, reject }",
    "tablefail": "-o { smtpd_sender_restrictions = check_sender_access "
                 "lmdb:%(etc)s/missing }",
    "badname": "-o smtpd_recipient_restrictions=frobnicate",
    "notable": "-o smtpd_client_restrictions=check_client_access",
    "openrelay": "-o smtpd_relay_restrictions=permit_mynetworks",
}


class SmtpdPolicyTest(TernTestCase):
    @classmethod
    def setUpClass(cls):
        inst = cls.inst = Instance(main=MAIN)
        try:
            etc = inst.etc
            ternmap(etc, os.path.join(etc, "sender_access"), SENDER_ACCESS)
            ternmap(etc, os.path.join(etc, "relay_table"), RELAY_TABLE)
            with open(os.path.join(etc, "main.conf"), "a") as f:
                f.write("smtpd_sender_restrictions = reject_non_fqdn_sender,"
                        " check_sender_access lmdb:%s/sender_access,"
                        " reject_unauthenticated_sender_login_mismatch\n"
                        % etc)
                f.write("relay_domains = relay.example, "
                        "inline:{tablerelay.example=yes}, lmdb:%s/relay_table\n"
                        % etc)
            cls.ports = {}
            lines = []
            for name, opts in SERVICES.items():
                port = cls.ports[name] = free_port()
                lines.append("127.0.0.1:%d inet n - n - - smtpd %s"
                             % (port, opts % {"etc": etc}))
            with open(os.path.join(etc, "master.conf"), "a") as f:
                f.write("\n".join(lines) + "\n")
            inst.start()
        except Exception:
            inst.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.inst.cleanup()

    # --- helpers ---------------------------------------------------------
    def connect(self, service=None, helo="client.test"):
        port = self.ports[service] if service else self.inst.smtp_port
        c = SmtpClient(port)
        self.addCleanup(c.close)
        self.assertTrue(c.reply()[0].startswith("220 "))
        if helo is not None:
            c.send(b"EHLO " + helo.encode() + b"\r\n")
            self.assertTrue(c.reply()[-1].startswith("250 "))
        return c

    def rcpt(self, rcpt, sender="a@example.org", service=None,
             helo="client.test"):
        """The reply to RCPT TO:<rcpt> after MAIL FROM:<sender>."""
        c = self.connect(service, helo)
        c.send(b"MAIL FROM:<" + sender.encode() + b">\r\n")
        self.assertEqual(c.reply(), ["250 2.1.0 Ok"])
        c.send(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
        return c.reply()[-1]

    def send_message(self, sender, marker, service=None, rcpt="demo@localhost"):
        """A whole transaction; returns the reply to the end of DATA."""
        c = self.connect(service)
        c.send(b"MAIL FROM:<" + sender.encode() + b">\r\n")
        self.assertEqual(c.reply(), ["250 2.1.0 Ok"])
        c.send(b"RCPT TO:<" + rcpt.encode() + b">\r\n")
        self.assertEqual(c.reply(), ["250 2.1.5 Ok"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply()[0][:3], "354")
        c.send(b"Subject: " + marker.encode() + b"\r\n\r\nbody\r\n.\r\n")
        return c.reply()[-1]

    def delivered(self, marker):
        def find():
            return any(marker.encode() in m
                       for m in self.inst.messages("demo")) or None
        return wait_for(find, 60, 0.1, "message %r" % marker)

    def queue_has(self, queue, marker):
        base = os.path.join(self.inst.spool, queue)
        for dirpath, _, files in os.walk(base):
            for f in files:
                with open(os.path.join(dirpath, f), "rb") as fh:
                    if marker.encode() in fh.read():
                        return True
        return False

    # --- relay control (smtpd_relay_restrictions defaults) -----------------
    def test_relay_denied_554(self):
        self.assertEqual(self.rcpt("x@elsewhere.example"),
                         "554 5.7.1 <x@elsewhere.example>: Relay access denied")
        self.assertLogHas(
            self.inst, "NOQUEUE: reject: RCPT from unknown[127.0.0.1]: 554 "
            "5.7.1 <x@elsewhere.example>: Relay access denied; "
            "from=<a@example.org> to=<x@elsewhere.example> proto=ESMTP "
            "helo=<client.test>")

    def test_relay_domains_names_and_tables(self):
        for rcpt in ("a@relay.example", "a@mx.relay.example",
                     "a@tablerelay.example", "a@sub.tablerelay.example",
                     "a@lmdbrelay.example"):
            self.assertEqual(self.rcpt(rcpt), "250 2.1.5 Ok", rcpt)

    def test_permit_mynetworks_relays(self):
        self.assertEqual(self.rcpt("x@elsewhere.example", service="trusted"),
                         "250 2.1.5 Ok")

    def test_defer_unauth_destination_450(self):
        self.assertEqual(self.rcpt("x@elsewhere.example",
                                   service="deferrelay"),
                         "450 4.7.1 <x@elsewhere.example>: Relay access denied")

    def test_sender_ok_does_not_bypass_relay(self):
        # OK ends the sender stage only; the relay stage still runs
        self.assertEqual(self.rcpt("x@elsewhere.example",
                                   sender="ok@lmdb.example"),
                         "554 5.7.1 <x@elsewhere.example>: Relay access denied")
        self.assertEqual(self.rcpt("demo@localhost", sender="ok@lmdb.example"),
                         "250 2.1.5 Ok")

    # --- local recipients -----------------------------------------------------
    def test_unknown_local_user_550(self):
        self.assertEqual(self.rcpt("nosuch@localhost"),
                         "550 5.1.1 <nosuch@localhost>: Recipient address "
                         "rejected: User unknown in local recipient table")
        self.assertEqual(self.rcpt("demo@localhost"), "250 2.1.5 Ok")

    def test_reject_unlisted_recipient_off(self):
        self.assertEqual(self.rcpt("nosuch@localhost", service="nounlisted"),
                         "250 2.1.5 Ok")

    # --- client restrictions ---------------------------------------------------
    def test_check_client_access_network_prefix(self):
        self.assertEqual(self.rcpt("demo@localhost", service="client"),
                         "554 5.7.1 <unknown[127.0.0.1]>: Client host "
                         "rejected: go away")
        self.assertLogHas(self.inst, "NOQUEUE: reject: RCPT from "
                          "unknown[127.0.0.1]: 554 5.7.1 <unknown[127.0.0.1]>: "
                          "Client host rejected: go away; from=<a@example.org>"
                          " to=<demo@localhost>")

    def test_reject_unknown_reverse_client_hostname_450(self):
        self.assertEqual(self.rcpt("demo@localhost", service="unknown"),
                         "450 4.7.25 Client host rejected: cannot find your "
                         "reverse hostname, [127.0.0.1]")

    def test_warn_if_reject(self):
        self.assertEqual(self.rcpt("demo@localhost", service="warn"),
                         "250 2.1.5 Ok")
        self.assertLogHas(self.inst, "NOQUEUE: reject_warning: RCPT from "
                          "unknown[127.0.0.1]: 554 5.7.1 <unknown[127.0.0.1]>:"
                          " Client host rejected: Access denied;")

    def test_defer_if_permit(self):
        self.assertEqual(self.rcpt("demo@localhost", service="dip"),
                         "450 4.7.1 <unknown[127.0.0.1]>: Client host "
                         "rejected: slow down")

    def test_generic_defer_450(self):
        self.assertEqual(self.rcpt("demo@localhost", service="defer"),
                         "450 4.7.1 <unknown[127.0.0.1]>: Client host "
                         "rejected: Try again later")

    def test_permit_ends_its_list_only(self):
        # permit skips the rest of the client list, not the relay list
        self.assertEqual(self.rcpt("demo@localhost", service="permit"),
                         "250 2.1.5 Ok")
        self.assertEqual(self.rcpt("x@elsewhere.example", service="permit"),
                         "554 5.7.1 <x@elsewhere.example>: Relay access denied")

    def test_permit_auth_destination(self):
        self.assertEqual(self.rcpt("demo@localhost", service="authdest"),
                         "250 2.1.5 Ok")
        self.assertEqual(self.rcpt("a@relay.example", service="authdest"),
                         "250 2.1.5 Ok")

    # --- HELO restrictions --------------------------------------------------------
    def test_check_helo_access(self):
        self.assertEqual(self.rcpt("demo@localhost", helo="bad.helo.test"),
                         "554 5.7.1 <bad.helo.test>: Helo command rejected: "
                         "fake helo")

    def test_reject_invalid_helo_hostname_501(self):
        self.assertEqual(self.rcpt("demo@localhost", helo="bad_name!"),
                         "501 5.5.2 <bad_name!>: Helo command rejected: "
                         "Invalid name")

    def test_reject_non_fqdn_helo_hostname_504(self):
        self.assertEqual(self.rcpt("demo@localhost", helo="plainhost"),
                         "504 5.5.2 <plainhost>: Helo command rejected: need "
                         "fully-qualified hostname")

    def test_helo_restrictions_wait_for_rcpt(self):
        # smtpd_delay_reject: HELO and MAIL themselves succeed
        c = self.connect(helo="plainhost")
        c.send(b"MAIL FROM:<a@example.org>\r\n")
        self.assertEqual(c.reply(), ["250 2.1.0 Ok"])

    # --- sender restrictions (lmdb: table) ----------------------------------------
    def test_reject_non_fqdn_sender_504(self):
        self.assertEqual(self.rcpt("demo@localhost", sender="a@nodots"),
                         "504 5.5.2 <a@nodots>: Sender address rejected: need "
                         "fully-qualified address")

    def test_sender_access_reject_554(self):
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="rejectme@lmdb.example"),
                         "554 5.7.1 <rejectme@lmdb.example>: Sender address "
                         "rejected: no spam here")

    def test_sender_access_domain_and_dunno(self):
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="other@lmdb.example"),
                         "554 5.7.1 <other@lmdb.example>: Sender address "
                         "rejected: whole domain")
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="dunno@lmdb.example"),
                         "250 2.1.5 Ok")

    def test_sender_access_defer_450(self):
        self.assertEqual(self.rcpt("demo@localhost", sender="x@defer.example"),
                         "450 4.7.1 <x@defer.example>: Sender address "
                         "rejected: try later")

    def test_sender_access_custom_4xx_and_5xx(self):
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="busy@lmdb.example"),
                         "450 4.2.1 <busy@lmdb.example>: Sender address "
                         "rejected: Mailbox busy")
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="custom@lmdb.example"),
                         "553 5.7.0 <custom@lmdb.example>: Sender address "
                         "rejected: custom text")

    def test_sender_access_warn(self):
        self.assertEqual(self.send_message("warn@lmdb.example", "warned")[:3],
                         "250")
        self.assertLogHas(self.inst, "NOQUEUE: warn: RCPT from "
                          "unknown[127.0.0.1]: watch this one; "
                          "from=<warn@lmdb.example> to=<demo@localhost> "
                          "proto=ESMTP helo=<client.test>")
        self.delivered("warned")

    def test_sender_access_hold(self):
        reply = self.send_message("hold@lmdb.example", "held-at-rcpt")
        self.assertTrue(reply.startswith("250 2.0.0 Ok: queued as "), reply)
        qid = reply.split()[-1]
        self.assertLogHas(self.inst, "NOQUEUE: hold: RCPT from "
                          "unknown[127.0.0.1]: <hold@lmdb.example>: Sender "
                          "address held for review; from=<hold@lmdb.example>")
        self.assertLogHas(self.inst, "%s: held in hold" % qid)
        self.assertTrue(self.queue_has("hold", "held-at-rcpt"))
        self.assertFalse(self.queue_has("incoming", "held-at-rcpt"))

    def test_sender_access_discard(self):
        reply = self.send_message("discard@lmdb.example", "discarded")
        self.assertTrue(reply.startswith("250 2.0.0 Ok: queued as "), reply)
        qid = reply.split()[-1]
        self.assertLogHas(self.inst, "NOQUEUE: discard: RCPT from "
                          "unknown[127.0.0.1]: <discard@lmdb.example>: Sender "
                          "address triggers DISCARD action;")
        self.assertLogHas(self.inst, "%s: discard: END-OF-MESSAGE from "
                          "unknown[127.0.0.1]" % qid)
        # a message sent after it is delivered; the discarded one never is
        self.assertEqual(self.send_message("a@example.org", "after-discard")
                         [:3], "250")
        self.delivered("after-discard")
        self.inst.wait_quiet()
        self.assertFalse(any(b"discarded" in m
                             for m in self.inst.messages("demo")))
        for q in ("incoming", "active", "deferred", "hold"):
            self.assertFalse(self.queue_has(q, "discarded"), q)

    def test_sender_login_mismatch_not_logged_in_553(self):
        self.assertEqual(self.rcpt("demo@localhost",
                                   sender="owned@example.org"),
                         "553 5.7.1 <owned@example.org>: Sender address "
                         "rejected: not logged in")

    def test_table_error_is_temporary_451(self):
        self.assertEqual(self.rcpt("demo@localhost", service="tablefail"),
                         "451 4.3.0 <a@example.org>: Temporary lookup failure")

    # --- recipient restrictions (inline: table) -----------------------------------
    def test_recipient_access_reject(self):
        # before the unlisted-recipient check: the table's reply wins
        self.assertEqual(self.rcpt("blocked@localhost"),
                         "554 5.7.1 <blocked@localhost>: Recipient address "
                         "rejected: Access denied")
        self.assertEqual(self.rcpt("nomail@localhost"),
                         "550 5.1.1 <nomail@localhost>: Recipient address "
                         "rejected: no mail for you")

    def test_reject_non_fqdn_recipient_504(self):
        self.assertEqual(self.rcpt("demo@localhost", service="nonfqdn"),
                         "504 5.5.2 <demo@localhost>: Recipient address "
                         "rejected: need fully-qualified address")

    # --- DATA and end of data --------------------------------------------------
    def test_data_restrictions(self):
        c = self.connect()
        c.send(b"MAIL FROM:<datareject@example.org>\r\n")
        self.assertEqual(c.reply(), ["250 2.1.0 Ok"])
        c.send(b"RCPT TO:<demo@localhost>\r\n")
        self.assertEqual(c.reply(), ["250 2.1.5 Ok"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply(), ["554 5.7.1 <datareject@example.org>: "
                                     "Sender address rejected: no data from "
                                     "you"])
        self.assertLogHas(self.inst, "NOQUEUE: reject: DATA from "
                          "unknown[127.0.0.1]: 554 5.7.1 "
                          "<datareject@example.org>: Sender address rejected:"
                          " no data from you; from=<datareject@example.org> "
                          "to=<demo@localhost> proto=ESMTP")
        c.send(b"RSET\r\n")
        self.assertEqual(c.reply(), ["250 2.0.0 Ok"])

    def test_data_restriction_reject_names_data(self):
        c = self.connect("datareject")
        c.send(b"MAIL FROM:<a@example.org>\r\nRCPT TO:<demo@localhost>\r\n")
        self.assertEqual(c.replies(2), ["250 2.1.0 Ok", "250 2.1.5 Ok"])
        c.send(b"DATA\r\n")
        self.assertEqual(c.reply(), ["554 5.7.1 <DATA>: Data command "
                                     "rejected: Access denied"])

    def test_end_of_data_reject(self):
        reply = self.send_message("eodreject@example.org", "eod-rejected")
        self.assertEqual(reply, "554 5.7.9 <eodreject@example.org>: Sender "
                         "address rejected: content refused")
        self.assertLogHas(self.inst, ": reject: END-OF-MESSAGE from "
                          "unknown[127.0.0.1]: 554 5.7.9")
        for q in ("incoming", "active", "deferred", "hold"):
            self.assertFalse(self.queue_has(q, "eod-rejected"), q)

    def test_end_of_data_hold(self):
        reply = self.send_message("eodhold@example.org", "held-at-eod")
        self.assertTrue(reply.startswith("250 2.0.0 Ok: queued as "), reply)
        wait_for(lambda: self.queue_has("hold", "held-at-eod"), 30, 0.1,
                 "message in hold/")

    # --- configuration errors -----------------------------------------------------
    def poke(self, service):
        """Make master start the service's smtpd (which dies at once)."""
        s = socket.create_connection(("127.0.0.1", self.ports[service]), 5)
        self.addCleanup(s.close)

    def test_unknown_restriction_is_fatal(self):
        self.poke("badname")
        self.assertLogHas(self.inst, 'smtpd_recipient_restrictions: unknown '
                          'restriction "frobnicate"')

    def test_missing_table_argument_is_fatal(self):
        self.poke("notable")
        self.assertLogHas(self.inst, "smtpd_client_restrictions: "
                          "check_client_access needs a table (type:name) "
                          "argument")

    def test_open_relay_refused(self):
        self.poke("openrelay")
        self.assertLogHas(self.inst, "in parameters smtpd_relay_restrictions "
                          "or smtpd_recipient_restrictions, specify at least "
                          "one working instance of")


if __name__ == "__main__":
    unittest.main()
