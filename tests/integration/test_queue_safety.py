"""Mail that must not be lost, multiplied or stuck: a message is never
active twice, permanent failures stay findable (hold/ until bounces
exist), duplicate recipients get one copy, the active/ sweep, stale
temporary files are removed from incoming/ and hold/ while held mail
stays put, lookup table failures are temporary. Each test drives a real instance."""
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

from ternlab import BUILD, FAST_RETRY, TernTestCase, subject_of, wait_for
from test_crash import StraceMixin, drop_queue_file


def trigger(inst, byte):
    """Send one trigger byte to qmgr, as smtpd and master do."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(os.path.join(inst.spool, "public", "qmgr"))
        s.sendall(byte)


def send(inst, rcpts, subject, sender="sender@example.org"):
    with inst.smtp() as s:
        return s.sendmail(sender, rcpts,
                          ("Subject: %s\r\n\r\nbody\r\n" % subject).encode())


class NeverActiveTwice(TernTestCase):

    def test_second_name_of_an_active_message_waits(self):
        # the same queue file under two names (what a power loss can leave
        # after a move whose source directory was not synced): incoming/ID
        # and deferred/X/ID. One flush scans incoming/ then deferred/ in one
        # go; the second name must not make the message active a second
        # time while the first is still being delivered.
        main = dict(FAST_RETRY, queue_run_delay="3600s")
        inst = self.instance(main=main).start()
        send(inst, ["demo@localhost"], "warm-up")
        inst.wait_messages("demo", 1)
        qid = drop_queue_file(inst, "hold", "twice")
        hold = os.path.join(inst.spool, "hold", qid)
        os.link(hold, os.path.join(inst.spool, "deferred", qid[9], qid))
        os.rename(hold, os.path.join(inst.spool, "incoming", qid))
        trigger(inst, b"F")
        self.assertLogHas(inst, "%s: removed" % qid, timeout=30)
        # the stale name is dropped when the file is taken on (local
        # refuses a queue file with more than one link)
        self.assertLogHas(inst, "%s: removed deferred/%s/%s, a second name"
                          % (qid, qid[9], qid))
        # the second name converges: moved in once the first is gone,
        # found finished, removed
        trigger(inst, b"F")
        wait_for(lambda: inst.queue_files("deferred") == [], 30,
                 what="deferred/ empty")
        log = inst.log_text()
        first = log[:log.index("%s: removed\n" % qid)]
        self.assertEqual(first.count("%s: from=<" % qid), 1, first[-3000:])
        msgs = inst.wait_messages("demo", 2)
        self.assertEqual(sorted(subject_of(m) for m in msgs),
                         ["twice", "warm-up"])


class Findable(TernTestCase):

    def test_bounced_message_is_reported_then_removed(self):
        # the original goes only after its bounce is in the queue
        main = dict(FAST_RETRY, maximal_queue_lifetime="0")
        inst = self.instance(main=main).start()
        send(inst, ["far@remote.example"], "expires")
        self.assertLogHas(inst, "status=bounced (message expired after")
        self.assertLogHas(inst, "sender non-delivery notification: ")
        log = inst.log_text()
        qid, bounce = re.search(
            r"(\w+): sender non-delivery notification: (\w+)", log).groups()
        self.assertLogHas(inst, "%s: removed" % qid)
        log = inst.log_text()
        self.assertLess(log.index("non-delivery notification: %s" % bounce),
                        log.index("%s: removed" % qid))
        self.assertEqual(inst.queue_files("hold"), [])

    def test_unknown_user_after_alias_expansion_is_bounced(self):
        inst = self.instance(main=FAST_RETRY,
                             aliases={"lost": "nosuchuser"}).start()
        send(inst, ["lost@localhost", "demo@localhost"], "half")
        inst.wait_messages("demo", 1)
        self.assertLogHas(inst, "to=<lost@localhost>, relay=local")
        self.assertLogHas(inst, 'status=bounced (unknown user: "nosuchuser")')
        self.assertLogHas(inst, "sent=1, bounced=1")
        self.assertLogHas(inst, "sender non-delivery notification: ")
        self.assertEqual(inst.queue_files("hold"), [])

    def test_postmaster_without_alias_is_refused(self):
        inst = self.instance(main=FAST_RETRY,
                             aliases={"postmaster": None}).start()
        with inst.smtp() as s:
            s.ehlo()
            s.mail("a@example.org")
            code, msg = s.rcpt("postmaster@localhost")
            self.assertEqual(code, 550, msg)
            self.assertIn(b"5.1.1", msg)
            code, _ = s.rcpt("demo@localhost")
            self.assertEqual(code, 250)


class ActiveSweep(TernTestCase):

    def test_orphan_in_active_is_delivered_and_removal_retried(self):
        # a file in active/ that qmgr does not hold (its move or removal
        # out of active/ failed): the periodic sweep takes it on again;
        # while active/ cannot be written, removal fails and is retried
        inst = self.instance(main=FAST_RETRY).start()
        send(inst, ["demo@localhost"], "warm-up")
        inst.wait_messages("demo", 1)
        qid = drop_queue_file(inst, "hold", "orphan")
        active = os.path.join(inst.spool, "active")
        os.rename(os.path.join(inst.spool, "hold", qid),
                  os.path.join(active, qid))
        os.chmod(active, 0o500)
        try:
            msgs = inst.wait_messages("demo", 2, timeout=30)
            self.assertEqual(sorted(subject_of(m) for m in msgs),
                             ["orphan", "warm-up"])
            self.assertLogHas(inst, "%s: remove active/%s: Permission denied"
                              % (qid, qid), timeout=30)
        finally:
            os.chmod(active, 0o700)
        self.assertLogHas(inst, "%s: removed" % qid, timeout=30)
        inst.wait_queue_empty(30)
        self.assertEqual(len(inst.messages("demo")), 2)


class RecycleLeftover(TernTestCase):

    def test_empty_file_in_active_is_a_finished_message(self):
        # qmgr recycles a finished file by truncating it, then renaming it
        # into free/; a crash between the two leaves it empty in active/.
        # It is taken for a finished message, not quarantined as corrupt
        inst = self.instance()
        os.makedirs(inst.spool, exist_ok=True)
        inst.start()
        send(inst, ["demo@localhost"], "warm-up")
        inst.wait_messages("demo", 1)
        inst.wait_queue_empty(30)
        inst.stop()
        qid = "4jf9TC56sW1V1Qp"
        path = os.path.join(inst.spool, "active", qid)
        with open(path, "wb"):
            pass
        os.chmod(path, 0o600)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("tern")
            os.chown(path, pw.pw_uid, pw.pw_gid)
        inst.start()
        self.assertLogHas(inst, "%s: empty queue file (a finished message): "
                          "removed" % qid, timeout=30)
        self.assertFalse(os.path.exists(path))
        self.assertEqual(inst.queue_files("corrupt"), [])
        self.assertNotIn("corrupt queue file", inst.log_text())
        send(inst, ["demo@localhost"], "after")
        inst.wait_messages("demo", 2)


def plant_temp(inst, queue, name, age):
    """A temporary-named file in spool/QUEUE, as a writer killed before
    its commit leaves it, last written `age` seconds ago."""
    path = os.path.join(inst.spool, queue, name)
    with open(path, "wb") as f:
        f.write(b"V\x00\x00\x00\x011")
    os.chmod(path, 0o600)
    if os.geteuid() == 0:                 # the writers run as $mail_owner
        pw = pwd.getpwnam("tern")
        os.chown(path, pw.pw_uid, pw.pw_gid)
    then = time.time() - age
    os.utime(path, (then, then))
    return path


class TempSweep(TernTestCase):

    def test_stale_temp_files_go_held_mail_stays(self):
        # smtpd killed mid-DATA leaves cleanup's temporary file in the
        # queue it was writing to: incoming/, or hold/ for a HOLD action.
        # A queue run removes those untouched for a day, in both; a fresh
        # one and a held queue file are left alone, and nothing leaves
        # hold/ (held mail waits for postsuper -H)
        main = dict(FAST_RETRY, queue_run_delay="3600s")
        inst = self.instance(main=main).start()
        send(inst, ["demo@localhost"], "warm-up")
        inst.wait_messages("demo", 1)
        held = drop_queue_file(inst, "hold", "held")
        stale_in = plant_temp(inst, "incoming", "t.999999.1", 2 * 86400)
        stale_hold = plant_temp(inst, "hold", "t.999999.2", 2 * 86400)
        fresh_hold = plant_temp(inst, "hold", "t.999999.3", 60)
        trigger(inst, b"F")
        wait_for(lambda: not os.path.exists(stale_in), 30,
                 what="stale incoming/ temporary file removed")
        wait_for(lambda: not os.path.exists(stale_hold), 30,
                 what="stale hold/ temporary file removed")
        self.assertLogHas(inst, "removed stale temporary file hold/t.999999.2")
        self.assertTrue(os.path.exists(fresh_hold))
        self.assertEqual(inst.queue_files("hold"), [held])
        # another run: still held, never delivered
        trigger(inst, b"F")
        self.assertLogHas(inst, "removed stale temporary file "
                          "incoming/t.999999.1")
        inst.wait_queue_empty(30)
        self.assertEqual(inst.queue_files("hold"), [held])
        self.assertNotIn("%s: from=<" % held, inst.log_text())
        self.assertEqual([subject_of(m) for m in inst.messages("demo")],
                         ["warm-up"])


class Duplicates(TernTestCase):

    def test_duplicate_recipients_get_one_copy(self):
        inst = self.instance(main=FAST_RETRY).start()
        rcpts = ["demo@localhost"] * 300 + ["DEMO@LocalHost", "demo@localhost"]
        refused = send(inst, rcpts, "once")
        self.assertEqual(refused, {})
        inst.wait_messages("demo", 1)
        self.assertLogHas(inst, "nrcpt=1 (queue active)")
        self.assertLogHas(inst, "sent=1, bounced=0")
        inst.wait_queue_empty(30)
        self.assertEqual([subject_of(m) for m in inst.messages("demo")],
                         ["once"])

    def test_duplicate_filter_can_be_turned_off(self):
        inst = self.instance(main=dict(FAST_RETRY, duplicate_filter_limit="0")
                             ).start()
        send(inst, ["demo@localhost", "demo@localhost"], "twice")
        self.assertLogHas(inst, "nrcpt=2 (queue active)")


class DestinationConcurrency(TernTestCase):
    """local's destination is the recipient: a stalled mailbox holds at
    most $local_destination_concurrency_limit delivery slots, and each
    for at most $local_time_limit. stalld (tests/daemons) stands in for
    local and never answers for stall@ recipients."""

    def instance_with_stalld(self, main):
        libexec = tempfile.mkdtemp(prefix="tern-libexec-")
        self.addCleanup(shutil.rmtree, libexec, True)
        for name in os.listdir(os.path.join(BUILD, "libexec")):
            os.symlink(os.path.join(BUILD, "libexec", name),
                       os.path.join(libexec, name))
        os.unlink(os.path.join(libexec, "local"))
        os.symlink(os.path.join(BUILD, "tests", "daemons", "stalld"),
                   os.path.join(libexec, "local"))
        record = os.path.join(libexec, "requests")
        inst = self.instance(main=dict(main, daemon_directory=libexec),
                             users=("demo", "stall"))
        conf = os.path.join(inst.etc, "master.conf")
        with open(conf) as f:
            text = f.read()
        with open(conf, "w") as f:
            f.write(re.sub(r"^local (.*) local$", r"local \1 local " + record,
                           text, flags=re.M))
        return inst.start(), record

    @staticmethod
    def requests(record):
        try:
            with open(record) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def test_stalled_recipient_holds_at_most_two_slots(self):
        inst, record = self.instance_with_stalld(
            dict(FAST_RETRY, queue_run_delay="3600s"))
        for n in range(5):
            send(inst, ["stall@localhost"], "stall %d" % n)
            if n < 2:   # the first two are in flight before the rest arrive
                wait_for(lambda: len(self.requests(record)) == n + 1, 30,
                         what="request %d" % (n + 1))
        self.assertLogHas(inst, "nrcpt=1 (queue active)")
        send(inst, ["demo@localhost"], "other user")
        wait_for(lambda: "demo@localhost" in self.requests(record), 30,
                 what="the request for demo")
        self.assertEqual(self.requests(record).count("stall@localhost"), 2,
                         self.requests(record))
        self.assertLogHas(inst, "sent=1, bounced=0, deferred=0")

    def test_stalled_delivery_is_given_up_after_local_time_limit(self):
        inst, record = self.instance_with_stalld(
            dict(FAST_RETRY, queue_run_delay="3600s", local_time_limit="1s"))
        for n in range(3):
            send(inst, ["stall@localhost"], "stall %d" % n)
        # each of the three gets its turn as the earlier ones time out
        wait_for(lambda: self.requests(record).count("stall@localhost") >= 3,
                 60, what="three stall requests")
        self.assertLogHas(inst, "timeout after 1 s waiting for a reply")
        self.assertLogHas(inst, "status=deferred (conversation with local "
                                "timed out)")


class TableFailure(TernTestCase):

    def test_missing_alias_table_is_a_temporary_failure(self):
        # as after an install that never ran newaliases: smtpd must answer
        # 451 4.3.0 (and log why itself), never 550 User unknown
        inst = self.instance(main=FAST_RETRY)
        os.unlink(os.path.join(inst.etc, "aliases.lmdb"))
        inst.start()
        with inst.smtp() as s:
            s.ehlo()
            s.mail("a@example.org")
            for rcpt in ("postmaster@localhost", "demo@localhost"):
                code, msg = s.rcpt(rcpt)
                self.assertEqual(code, 451, msg)
                self.assertIn(b"4.3.0", msg)
        # chrooted (root), proxymap opens the table and says why, and
        # smtpd that the lookup failed
        self.assertTrue(re.search(
            r"tern/(smtpd|proxymap)\[\d+\]: warning: lmdb:\S*aliases: "
            r"\S*aliases.lmdb", inst.log_text()), inst.log_text()[-2000:])
        self.assertTrue(re.search(
            r"tern/smtpd\[\d+\]: warning: lmdb:\S*aliases: ",
            inst.log_text()), inst.log_text()[-2000:])
        # newaliases: the next lookups find the table
        subprocess.run([os.path.join(BUILD, "sbin", "newaliases"), "-c",
                        inst.etc], check=True)
        def accepted():
            with inst.smtp() as s:
                s.ehlo()
                s.mail("a@example.org")
                return s.rcpt("demo@localhost")[0] == 250
        wait_for(accepted, 30, what="RCPT accepted after newaliases")


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class NewDirectoriesAreDurable(StraceMixin, TernTestCase):
    TRACED = "trace=mkdir,mkdirat,fsync,rename,renameat,renameat2"

    def test_missing_hash_directory_is_made_and_synced(self):
        # a deferred/X/ that went missing is made again on the way into
        # deferred/, and its new name is fsync'd in deferred/ before the
        # message is moved there
        inst = self.instance(main=dict(FAST_RETRY, minimal_backoff_time="1h",
                                       maximal_backoff_time="1h")).start()
        wait_for(lambda: inst.child_pids("qmgr"), 30, what="qmgr")
        deferred = os.path.join(inst.spool, "deferred")
        for sub in os.listdir(deferred):
            os.rmdir(os.path.join(deferred, sub))

        def action():
            send(inst, ["far@remote.example"], "remote")
            wait_for(lambda: inst.queue_files("deferred"), 60,
                     what="a deferred file")

        def verify(lines):
            mk = self.first(lines, 0, lambda l: re.search(
                r'mkdir(at)?\(.*"deferred/\w"', l), "mkdir of deferred/X")
            sync = self.first(lines, mk, lambda l: re.search(
                r'fsync\(\d+</\S+/spool/deferred>\)', l),
                "fsync of deferred/ after the mkdir")
            self.first(lines, sync, lambda l: "rename" in l
                       and "deferred/" in l, "the move into deferred/X/")

        self.trace(inst, action, verify)


if __name__ == "__main__":
    unittest.main()
