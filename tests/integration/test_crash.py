"""Crash and supervision tests: kill -9 of any daemon (and of master)
while mail flows must lose no message that got a 250 and deliver none
twice; the queue must drain afterwards.

Uses real instances (ternlab). Everything is bounded in rounds and time.
"""
import os
import pwd
import random
import re
import signal
import smtplib
import shutil
import struct
import subprocess
import threading
import time
import unittest

from ternlab import (FAST_RETRY, TernTestCase, proc_children, subject_of,
                     wait_for)

def traced_by(pid, tracer):
    """pid is traced by tracer (a vanished pid needs no tracing)."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("TracerPid:"):
                    return int(line.split()[1]) == tracer
    except OSError:
        return True
    return False


def pid_alive(pid):
    """Running (a zombie or a vanished PID counts as gone)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# ---- queue files written by the test (lib/queue.h format) ---------------

QID_ALPHABET = "0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz"


def qid_digits(value, width):
    out = []
    for _ in range(width):
        out.append(QID_ALPHABET[value % 52])
        value //= 52
    return "".join(reversed(out))


def queue_file_bytes(sender, rcpts, body, usec):
    def rec(t, data):
        return t + struct.pack(">I", len(data)) + data
    out = rec(b"V", b"1")
    out += rec(b"T", ("%d.%06d" % (usec // 1000000, usec % 1000000)).encode())
    out += rec(b"S", sender.encode())
    out += rec(b"A", b"protocol=test")
    for r in rcpts:
        out += rec(b"R", r.encode())
    out += rec(b"M", b"%020d" % len(body)) + body + rec(b"E", b"")
    return out


def commit_queue_file(inst, queue, data, usec, seq=0, owner=True):
    """Write data as a queue file into spool/QUEUE the way a writer
    commits (temporary name, then the queue ID made of usec and the
    inode), without waking qmgr. Returns its queue ID."""
    d = os.path.join(inst.spool, queue)
    tmp = os.path.join(d, "t.test.%d" % seq)
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, 0o600)
    if owner and os.geteuid() == 0:       # qmgr runs as $mail_owner
        pw = pwd.getpwnam("tern")
        os.chown(tmp, pw.pw_uid, pw.pw_gid)
    ino = os.stat(tmp).st_ino
    qid = qid_digits(usec // 1000000, 6) + qid_digits(usec % 1000000, 4)
    tail = ""
    while True:
        tail = QID_ALPHABET[ino % 52] + tail
        ino //= 52
        if ino == 0:
            break
    qid += tail
    os.rename(tmp, os.path.join(d, qid))
    return qid


def drop_queue_file(inst, queue, subject, rcpt="demo@localhost", seq=0,
                    owner=True):
    """A complete queue file in spool/QUEUE, as smtpd would commit it
    (but without waking qmgr). Returns its queue ID."""
    usec = int(time.time() * 1e6) + seq
    body = ("Subject: %s\n\n%s\n" % (subject, subject)).encode()
    return commit_queue_file(
        inst, queue, queue_file_bytes("sender@example.org", [rcpt], body, usec),
        usec, seq, owner)


class Flow:
    """Sender threads that keep sending distinct messages until `target`
    got a 250. A message whose transaction broke off is 'uncertain': it
    may have been queued (at most once), it is never retried."""

    def __init__(self, inst, target, threads=5):
        self.inst, self.target = inst, target
        self.accepted, self.uncertain = set(), set()
        self.lock = threading.Lock()
        self.next = 0
        self.stop = False
        self.threads = [threading.Thread(target=self.run)
                        for _ in range(threads)]

    def subject(self):
        with self.lock:
            if len(self.accepted) >= self.target or self.stop:
                return None
            self.next += 1
            return "flow %05d" % self.next

    def run(self):
        deadline = time.monotonic() + 90
        s = None
        while time.monotonic() < deadline:
            subj = self.subject()
            if subj is None:
                break
            try:
                if s is None:
                    s = self.inst.smtp(timeout=20)
                s.sendmail("sender@example.org", ["demo@localhost"],
                           ("Subject: %s\r\n\r\n%s\r\n" % (subj, subj))
                           .encode())
            except (OSError, smtplib.SMTPException):
                with self.lock:
                    self.uncertain.add(subj)
                try:
                    if s is not None:
                        s.close()
                except OSError:
                    pass
                s = None
                time.sleep(0.05)   # pacing before reconnecting, no condition
                continue
            with self.lock:
                self.accepted.add(subj)
        if s is not None:
            try:
                s.quit()
            except (OSError, smtplib.SMTPException):
                pass

    def start(self):
        for t in self.threads:
            t.start()

    def join(self):
        for t in self.threads:
            t.join(120)


class Crash(TernTestCase):

    def check_exactly_once(self, inst, flow):
        inst.wait_messages("demo", len(flow.accepted), timeout=90)
        inst.wait_quiet(timeout=60)    # nothing in flight: Maildir is final
        got = [subject_of(m) for m in inst.messages("demo")]
        dups = sorted({s for s in got if got.count(s) > 1})
        self.assertEqual(dups, [], "delivered more than once")
        lost = sorted(flow.accepted - set(got))
        self.assertEqual(lost, [], "accepted (250) but never delivered")
        extra = sorted(set(got) - flow.accepted - flow.uncertain)
        self.assertEqual(extra, [], "delivered but never sent")

    def test_kill9_random_daemons_while_300_messages_flow(self):
        inst = self.instance(main=FAST_RETRY).start()
        rng = random.Random(os.environ.get("TERN_CRASH_SEED") or time.time())
        flow = Flow(inst, 300)
        flow.start()
        killed = []
        wait_for(lambda: len(flow.accepted) >= 10, 30, what="mail flowing")
        for _ in range(10):
            if len(flow.accepted) >= flow.target:
                break
            names = [n for n in ("smtpd", "qmgr", "local")
                     if inst.child_pids(n)]
            if not names:
                time.sleep(0.05)   # poll until a daemon runs again
                continue
            name = rng.choice(names)
            pids = inst.child_pids(name)
            if pids:
                pid = rng.choice(pids)
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append("%s[%d]" % (name, pid))
                except OSError:
                    pass
            # random spacing of the kills is the point, not a condition
            time.sleep(rng.uniform(0.02, 0.2))
        flow.join()
        self.assertGreaterEqual(len(flow.accepted), 300,
                                "uncertain: %d" % len(flow.uncertain))
        self.assertTrue(killed)
        if os.environ.get("TERN_CRASH_VERBOSE"):
            print("killed:", killed, "uncertain:", len(flow.uncertain))
        self.check_exactly_once(inst, flow)

    def test_kill9_master_children_exit_and_new_master_delivers(self):
        inst = self.instance(main=FAST_RETRY).start()
        with inst.smtp() as s:
            s.sendmail("sender@example.org", ["demo@localhost"],
                       b"Subject: before\r\n\r\nx\r\n")
        inst.wait_messages("demo", 1)     # local has run as the user
        qmgr = wait_for(lambda: inst.child_pids("qmgr"), 30, what="qmgr")
        # freeze qmgr so the next messages stay queued across the crash
        for p in qmgr:
            os.kill(p, signal.SIGSTOP)
        with inst.smtp() as s:
            for n in range(5):
                s.sendmail("sender@example.org", ["demo@localhost"],
                           ("Subject: queued %d\r\n\r\nx\r\n" % n).encode())
        kids = {}
        for name in ("smtpd", "qmgr", "local"):
            for k in inst.child_pids(name):
                kids[k] = name
        self.assertTrue(inst.child_pids("local"), "local should be running")
        os.kill(inst.master_pid, signal.SIGKILL)
        inst.proc.wait(30)
        for p in qmgr:
            os.kill(p, signal.SIGCONT)
        try:
            wait_for(lambda: not any(pid_alive(k) for k in kids), 30,
                     what="children to exit after master died")
        except AssertionError:
            left = ["%s[%d]" % (kids[k], k) for k in kids if pid_alive(k)]
            for k in kids:
                if pid_alive(k):
                    os.kill(k, signal.SIGKILL)
            self.fail("children outlived master: %r" % left)
        self.assertEqual(len(inst.messages("demo")), 1)
        inst.stdout.close()
        inst.proc = None
        inst.start()                      # the pid lock was released
        msgs = inst.wait_messages("demo", 6, timeout=60)
        self.assertEqual(sorted(subject_of(m) for m in msgs),
                         ["before"] + ["queued %d" % n for n in range(5)])
        inst.wait_queue_empty(30)

    def test_sigterm_master_with_busy_local_then_restart(self):
        inst = self.instance(main=FAST_RETRY).start()
        flow = Flow(inst, 60, threads=3)
        flow.start()
        wait_for(lambda: inst.child_pids("local") and len(inst.messages("demo"))
                 >= 5, 60, what="local busy delivering")
        kids = proc_children(inst.master_pid)
        inst.proc.send_signal(signal.SIGTERM)
        self.assertEqual(inst.proc.wait(60), 0)
        flow.stop = True
        flow.join()
        wait_for(lambda: not any(pid_alive(k) for k in kids), 30,
                 what="the old master's children to exit")
        inst.stdout.close()
        inst.proc = None
        inst.start()
        # whatever was cut off is delivered now, and nothing twice
        self.check_exactly_once(inst, flow)


class StraceMixin:
    """Run an action with master and its daemons under strace -f."""

    TRACED = ("trace=rename,renameat,renameat2,link,linkat,fsync,fdatasync,"
              "pwrite64,write,sendto")

    @staticmethod
    def read_trace(path, complete):
        """The trace as lines. While strace still writes (complete=False)
        a last line without its newline yet is left out."""
        with open(path, errors="replace") as f:
            text = f.read()
        lines = text.split("\n")
        if lines[-1] == "" or not complete:
            lines.pop()
        # "PID  syscall(...)": strace pads the PID column; one space
        return [re.sub(r"^(\d+)\s+", r"\1 ", line) for line in lines]

    def trace(self, inst, action, verify):
        """Run action() under strace -f; then wait until verify(lines)
        passes on the trace (strace writes each system call as it ends,
        so lines still arrive after the action's effects are visible), and
        return the lines. If it never passes, verify's failure is the
        test's, on the whole trace."""
        out = os.path.join(inst.dir, "log", "strace")
        pids = [inst.master_pid]
        for name in ("smtpd", "qmgr", "local"):
            pids += inst.child_pids(name)
        cmd = ["strace", "-f", "-y", "-qq", "-s", "200", "-o", out, "-e",
               self.TRACED]
        for p in pids:
            cmd += ["-p", str(p)]
        st = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)

        def verified():
            try:
                verify(self.read_trace(out, False))
                return True
            except Exception:      # incomplete yet; the last verify tells
                return False
        try:
            wait_for(lambda: all(traced_by(p, st.pid) for p in pids), 30,
                     what="strace attached to %r" % pids)
            action()
            try:
                wait_for(verified, 30, 0.1, what="a complete trace")
            except AssertionError:
                pass               # verify below reports what is missing
        finally:
            st.send_signal(signal.SIGINT)
            st.wait(30)
        lines = self.read_trace(out, True)
        verify(lines)
        return lines

    @staticmethod
    def first(lines, start, pred, what):
        for i in range(start, len(lines)):
            if pred(lines[i]):
                return i
        raise AssertionError("no %s after line %d in trace:\n%s"
                             % (what, start, "\n".join(lines[-80:])))


@unittest.skipUnless(shutil.which("strace"), "needs strace")
class Durability(StraceMixin, TernTestCase):
    """The order of the durability steps, as the daemons' system calls
    show it (strace -f on master and its children)."""

    def test_commit_move_deliver_defer_order(self):
        inst = self.instance(main=FAST_RETRY).start()
        wait_for(lambda: inst.child_pids("qmgr"), 30, what="qmgr")

        def action():
            with inst.smtp() as s:
                s.sendmail("sender@example.org", ["demo@localhost"],
                           b"Subject: local\r\n\r\nx\r\n")
                s.sendmail("sender@example.org", ["far@remote.example"],
                           b"Subject: remote\r\n\r\nx\r\n")
            inst.wait_messages("demo", 1)
            wait_for(lambda: inst.queue_files("deferred"), 60,
                     what="a deferred file")

        def verify(t):
            qids = re.findall(r"queued as (\w+)", "\n".join(t))
            self.assertEqual(len(set(qids)), 2, "\n".join(t[-50:]))
            local_qid, remote_qid = qids[0], [q for q in qids if q != qids[0]][0]
            for qid in (local_qid, remote_qid):
                # smtpd: fsync(file), rename, fsync(incoming/), then 250
                # (the reply may come from another thread of the process)
                r = self.first(t, 0, lambda l: "rename" in l and
                               '"incoming/%s"' % qid in l, "commit rename")
                pid = t[r].split()[0]
                tmp = re.search(r'"(incoming/t\.[^"]+)"', t[r]).group(1)
                self.assertTrue(any(l.startswith(pid + " fsync(") and
                                    tmp in l for l in t[:r]),
                                "file not fsync'd before its rename")
                d = self.first(t, r, lambda l: l.startswith(pid + " fsync(") and
                               l.split(">")[0].endswith("/spool/incoming"),
                               "fsync of incoming/")
                # the fsyncs and the rename run in smtpd's commit thread
                # (group commit), the 250 in its main thread
                ok = self.first(t, r, lambda l: "sendto(" in l and
                                "queued as %s" % qid in l, "250 reply")
                self.assertLess(d, ok, "250 before the directory fsync")
                # qmgr: rename into active/ before a request (not fsync'd:
                # incoming/ and active/ are both scanned at start-up)
                m = self.first(t, 0, lambda l: "rename" in l and
                               '"active/%s"' % qid in l and
                               '"incoming/%s"' % qid in l, "move to active/")
                qpid = t[m].split()[0]
                req = [i for i in range(len(t)) if t[i].startswith(qpid) and
                       "sendto(" in t[i] and qid in t[i]]
                if req:
                    self.assertLess(m, req[0], "request before the move")
            # local: fsync(tmp) < link < fsync(new/) < mark < reply (the
            # mark is not fdatasync'd: after a power loss it can only
            # make the recipient be tried again, and the Maildir name
            # check finds the copy already in new/)
            ln = self.first(t, 0, lambda l: "link" in l and local_qid in l and
                            "/Maildir/new/" in l, "link into new/")
            lpid = t[ln].split()[0]
            self.assertTrue(any(l.startswith(lpid + " fsync(") and "/Maildir/tmp/"
                                in l and local_qid in l for l in t[:ln]),
                            "Maildir file not fsync'd before link")
            fn = self.first(t, ln, lambda l: l.startswith(lpid + " fsync(") and
                            l.split(">")[0].endswith("/Maildir/new"),
                            "fsync of new/")
            mk = self.first(t, ln, lambda l: l.startswith(lpid + " pwrite64(") and
                            "active/%s" % local_qid in l and '"D"' in l, "mark D")
            rp = self.first(t, mk, lambda l: l.startswith(lpid) and
                            ("write(" in l or "sendto(" in l) and "status" in l,
                            "reply to qmgr")
            self.assertLess(fn, mk)
            self.assertLess(mk, rp)
            # qmgr: deferral renamed into deferred/X/ and that directory synced
            dr = self.first(t, 0, lambda l: "rename" in l and
                            re.search(r'"deferred/./%s"' % remote_qid, l),
                            "move to deferred/")
            qpid = t[dr].split()[0]
            sub = re.search(r'"(deferred/./)%s"' % remote_qid, t[dr]).group(1)
            self.first(t, dr, lambda l: l.startswith(qpid + " fsync(") and
                       l.split(">")[0].endswith("/spool/" + sub.rstrip("/")),
                       "fsync of %s" % sub)

        self.trace(inst, action, verify)


if __name__ == "__main__":
    unittest.main()
